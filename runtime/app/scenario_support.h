// ScenarioSupport: what `mephisto sim` needs to put an app through failure scenarios, declared next to the
// app's definition (AppDefinition::scenario) by whoever writes the app: the workload the harness writes to
// the app's input, and the app's model — how its committed input determines its results and its table — which
// the checkers hold every faulty run to.
//
// Plain data and pure functions: no simulator type appears here, so an app's library stays free of the
// simulator, and the same definition runs under `mephisto worker` on Kafka.
//
// Contract of every function here: deterministic (a pure function of its arguments: no clock, no global
// state, no std::*_distribution), because a seed must reproduce a whole run.
#pragma once

#include <charconv>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace mephisto {

// The shape of a scenario's workload (models/scenario.proto `Workload`), given to the app's generator.
struct WorkloadShape {
  int64_t events = 0;     // records the run writes, indexed 0..events-1
  int32_t keys = 0;       // distinct keys to draw from
  bool hot_keys = false;  // skewed: a few keys get most records (HOT), else uniform
  double skew = 1;        // how skewed, for hot_keys (0..10)
};

// One record of the workload (the input topic is ScenarioSupport::input_topic).
struct WorkloadRecord {
  std::optional<std::string> key;
  std::string value;
};

struct ScenarioSupport {
  // The topic the workload writes and the app consumes, and the topic the app writes its results to; the
  // harness creates both (the scenario's input and output partitions) before the workers start.
  std::string input_topic;
  std::string output_topic;

  // The index-th record of the workload (0 <= index < shape.events). `record_seed` is a 64-bit value the
  // harness derives from the run's seed and the index alone, so a record never depends on the ones before it:
  // draw from mephisto::Random(record_seed) or use its bits directly. Values must be unique across the run:
  // the checkers identify an input by its value (lost, unseen, duplicated).
  std::function<WorkloadRecord(int64_t index, const WorkloadShape& shape, uint64_t record_seed)> record;

  // --- the app's model (the checkers' oracle); each part is optional

  // The app sends exactly one result per input to output_topic; this names the input a result's value
  // answers, by the input's id (nullopt: not a result). Set, the checkers report an input the group committed
  // past without a committed result (lost-writes) and an input with two committed results (duplicates).
  std::function<std::optional<std::string>(std::string_view result_value)> input_of_result;
  // An input's id, from its value (what input_of_result names). Unset: the whole value is the id.
  std::function<std::string(std::string_view input_value)> input_id;

  // The app's table the model predicts ("" : none): its changelog's final committed contents must equal the
  // fold of the final input log (table-oracle).
  std::string table;
  // Folds one input record into the expected table (key -> value bytes as the changelog holds them). Called
  // for every committed input record, partition by partition in log order.
  std::function<void(const WorkloadRecord& input, std::map<std::string, std::string>& table)> fold;
  // Orders a changelog value against the model's (both as the changelog holds them): < 0 below the model (an
  // input lost: a lost write under exactly once), > 0 above (an input counted again: a duplicate), 0 equal;
  // nullopt if `actual` is not a value of this table at all. Unset: values are compared for equality only.
  std::function<std::optional<int>(std::string_view actual, std::string_view expected)> compare;
};

// For models of tables that hold integers (Table<K, int64_t> stores them as decimal text): the whole of
// `text` as a decimal integer (nullopt if it is not one), and a ScenarioSupport::compare ordering two such
// values.
[[nodiscard]] inline std::optional<int64_t> parse_decimal(std::string_view text) {
  int64_t value = 0;
  const auto [end, err] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (err != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}
[[nodiscard]] inline std::optional<int> compare_decimal(std::string_view actual, std::string_view expected) {
  const auto a = parse_decimal(actual);
  const auto e = parse_decimal(expected);
  if (!a || !e) return std::nullopt;
  return *a < *e ? -1 : *a > *e ? 1 : 0;
}

}  // namespace mephisto
