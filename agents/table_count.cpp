// "tablecount": the exactly-once table example — a running count per key kept in a changelogged table.
#include <algorithm>
#include <cmath>

#include "agents/examples.h"

namespace mephisto::examples {
namespace {

// tablecount's scenario support: unique event ids "v<i>" under keys "k<j>" (uniform, or a few hot keys), one
// result "<event id> <count>" per event, and a table whose changelog holds each key's number of events.
ScenarioSupport table_count_scenario(const std::string& prefix) {
  ScenarioSupport support;
  support.input_topic = prefix + std::string(kCountEventsTopic);
  support.output_topic = prefix + std::string(kCountResultsTopic);
  support.record = [](int64_t index, const WorkloadShape& shape, uint64_t record_seed) {
    // The record seed's top 53 bits as a uniform number in [0, 1); a power above 1 crowds the keys near k0.
    const double u = static_cast<double>(record_seed >> 11) * 0x1p-53;
    const double exponent = shape.hot_keys ? 1.0 + 2.0 * shape.skew : 1.0;
    const int key = std::min(shape.keys - 1, static_cast<int>(shape.keys * std::pow(u, exponent)));
    return WorkloadRecord{"k" + std::to_string(key), "v" + std::to_string(index)};
  };
  support.input_of_result = [](std::string_view result) -> std::optional<std::string> {
    return std::string(result.substr(0, result.find(' ')));
  };
  support.table = "counts";
  support.fold = [](const WorkloadRecord& event, std::map<std::string, std::string>& counts) {
    if (!event.key) return;
    std::string& count = counts[*event.key];
    count = std::to_string(parse_decimal(count).value_or(0) + 1);
  };
  support.compare = compare_decimal;
  return support;
}

}  // namespace

AppDefinition table_count_app(const std::string& prefix) {
  AppDefinition definition;
  definition.name = "tablecount";
  definition.description =
      "counts events per key in a table (exactly once): count-events -> table counts -> count-results";
  definition.default_settings = [prefix] {
    AppSettings settings;
    settings.id = prefix + "tablecount";
    settings.processing_guarantee = ProcessingGuarantee::kExactlyOnce;
    return settings;
  };
  definition.define = [prefix](App& app) {
    auto events =
        app.topic<std::string, std::string>(prefix + std::string(kCountEventsTopic), create_if_missing());
    auto results =
        app.topic<std::string, std::string>(prefix + std::string(kCountResultsTopic), create_if_missing());
    TableOptions<int64_t> options;
    options.help = "events counted per key";
    auto counts = app.table<std::string, int64_t>("counts", events, options);
    app.agent("count", events, [counts, results](Stream<std::string, std::string>& stream) {
      for (auto& event : stream) {
        const int64_t count = counts.add(event.key(), 1);
        Status sent = results.send(event.key(), event.value() + " " + std::to_string(count));
        (void)sent;  // a failed delivery stops the worker (and, under exactly_once, aborts the transaction)
      }
    });
  };
  definition.scenario = table_count_scenario(prefix);
  return definition;
}

}  // namespace mephisto::examples
