#include "sim/scenario/differential.h"

#include <fmt/format.h>

#include <algorithm>
#include <set>

#include "sim/app/app_harness.h"
#include "sim/cluster/cluster.h"
#include "sim/scenario/faults.h"
#include "sim/scenario/loader.h"
#include "sim/scenario/settle.h"

namespace mephisto::sim::scenario {
namespace {

namespace ms = mephisto::scenario;

// Distinct, fixed salts: the two reference runs of a seed differ from each other and from the faulty run.
constexpr uint64_t kFirstReferenceSalt = 0x5265'6631ULL;   // "Ref1"
constexpr uint64_t kSecondReferenceSalt = 0x5265'6632ULL;  // "Ref2"
// Longest value shown in a difference; longer ones are cut with their length said.
constexpr size_t kMaxShownBytes = 160;
// Step of the reference run's settle loop (virtual ms).
constexpr int64_t kSettleStepMs = 1000;

// A value as a reader wants it: printable text as is, other bytes as \xNN, cut at kMaxShownBytes.
std::string shown(const std::string& bytes) {
  std::string out = "\"";
  for (size_t i = 0; i < bytes.size() && i < kMaxShownBytes; ++i) {
    const auto c = static_cast<unsigned char>(bytes[i]);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      out += fmt::format("\\x{:02x}", c);
    }
  }
  out += "\"";
  if (bytes.size() > kMaxShownBytes) out += fmt::format(" (cut: {} bytes)", bytes.size());
  return out;
}

// Two values that differ, each shown from a little before their first differing byte when they are too long
// to show whole (so the difference is on screen): "(from byte N) ...".
std::pair<std::string, std::string> shown_pair(const std::string& a, const std::string& b) {
  if (a.size() <= kMaxShownBytes && b.size() <= kMaxShownBytes) return {shown(a), shown(b)};
  size_t first = 0;
  while (first < a.size() && first < b.size() && a[first] == b[first]) ++first;
  const size_t from = first < 16 ? 0 : first - 16;
  const auto tail = [from](const std::string& v) {
    const std::string text = shown(v.substr(std::min(from, v.size())));
    return from == 0 ? text : fmt::format("(from byte {} of {}) {}", from, v.size(), text);
  };
  return {tail(a), tail(b)};
}

class Differences {
 public:
  void add(std::string text) {
    ++count_;
    if (examples_.size() < kMaxDifferenceTexts) examples_.push_back(std::move(text));
  }
  [[nodiscard]] int64_t count() const { return count_; }
  [[nodiscard]] std::vector<std::string> take() { return std::move(examples_); }

 private:
  int64_t count_ = 0;
  std::vector<std::string> examples_;
};

// Under at least once, a record equal to an earlier record of its key is a replay: left out, counted.
std::vector<std::string> without_replays(const std::vector<std::string>& values, int64_t& replays) {
  std::vector<std::string> out;
  std::set<std::string> seen;
  for (const std::string& value : values) {
    if (seen.insert(value).second) {
      out.push_back(value);
    } else {
      ++replays;
    }
  }
  return out;
}

void compare_key(const std::string& topic, const std::string& key, const std::vector<std::string>& faulty,
                 const std::vector<std::string>& reference, Differences& out) {
  const size_t common = std::min(faulty.size(), reference.size());
  for (size_t i = 0; i < common; ++i) {
    if (faulty[i] == reference[i]) continue;
    const auto [f, r] = shown_pair(faulty[i], reference[i]);
    out.add(fmt::format("{} key {}: record {} of the key is {}, the reference's {}", topic, shown(key), i + 1,
                        f, r));
    return;
  }
  if (faulty.size() == reference.size()) return;
  if (faulty.size() < reference.size()) {
    out.add(fmt::format("{} key {}: {} record(s), the reference {}; first missing: {}", topic, shown(key),
                        faulty.size(), reference.size(), shown(reference[common])));
  } else {
    out.add(fmt::format("{} key {}: {} record(s), the reference {}; first extra: {}", topic, shown(key),
                        faulty.size(), reference.size(), shown(faulty[common])));
  }
}

// Calls visit(key, a's value or null, b's value or null) for every key of either map, in key order.
template <typename Map, typename Visit>
void for_each_key_of_either(const Map& a, const Map& b, Visit visit) {
  std::set<typename Map::key_type> keys;
  for (const auto& [key, _] : a) keys.insert(key);
  for (const auto& [key, _] : b) keys.insert(key);
  for (const auto& key : keys) {
    const auto in_a = a.find(key);
    const auto in_b = b.find(key);
    visit(key, in_a == a.end() ? nullptr : &in_a->second, in_b == b.end() ? nullptr : &in_b->second);
  }
}

using Values = std::vector<std::string>;
using ByKey = std::map<std::string, Values>;
using Entries = std::map<std::pair<int32_t, std::string>, std::string>;

void compare_outputs(const Observed& faulty, const Observed& reference, bool exactly_once,
                     DifferentialOutcome& outcome, Differences& out) {
  static const ByKey kNoKeys;
  static const Values kNoValues;
  for_each_key_of_either(
      faulty.outputs, reference.outputs, [&](const std::string& topic, const ByKey* f, const ByKey* r) {
        for_each_key_of_either(f != nullptr ? *f : kNoKeys, r != nullptr ? *r : kNoKeys,
                               [&](const std::string& key, const Values* fv, const Values* rv) {
                                 const Values& faulty_values = fv != nullptr ? *fv : kNoValues;
                                 const Values& reference_values = rv != nullptr ? *rv : kNoValues;
                                 compare_key(topic, key,
                                             exactly_once
                                                 ? faulty_values
                                                 : without_replays(faulty_values, outcome.allowed_duplicates),
                                             reference_values, out);
                               });
      });
}

void compare_tables(const Observed& faulty, const Observed& reference, Differences& out) {
  static const Entries kNoEntries;
  for_each_key_of_either(
      faulty.tables, reference.tables, [&](const std::string& changelog, const Entries* f, const Entries* r) {
        for_each_key_of_either(
            f != nullptr ? *f : kNoEntries, r != nullptr ? *r : kNoEntries,
            [&](const std::pair<int32_t, std::string>& key, const std::string* fv, const std::string* rv) {
              const std::string where =
                  fmt::format("table {} partition {} key {}", changelog, key.first, shown(key.second));
              if (fv == nullptr) {
                out.add(fmt::format("{}: absent, the reference holds {}", where, shown(*rv)));
              } else if (rv == nullptr) {
                out.add(fmt::format("{}: {}, absent in the reference", where, shown(*fv)));
              } else if (*fv != *rv) {
                const auto [fs, rs] = shown_pair(*fv, *rv);
                out.add(fmt::format("{}: {}, the reference's {}", where, fs, rs));
              }
            });
      });
}

size_t record_count(const Observed& observed) {
  size_t n = 0;
  for (const auto& [_, keys] : observed.outputs) {
    for (const auto& [__, values] : keys) n += values.size();
  }
  return n;
}

size_t entry_count(const Observed& observed) {
  size_t n = 0;
  for (const auto& [_, entries] : observed.tables) n += entries.size();
  return n;
}

}  // namespace

Observed observe(const std::map<std::string, TopicLog>& outputs,
                 const std::map<std::string, TopicLog>& changelogs) {
  Observed out;
  for (const auto& [topic, log] : outputs) {
    auto& by_key = out.outputs[topic];
    for (const auto& [partition, records] : log) {
      for (const LogRecord& record : records) {
        if (!committed_or_plain(record.status)) continue;
        by_key[record.key.value_or("")].push_back(record.value.value_or(""));
      }
    }
  }
  for (const auto& [topic, log] : changelogs) {
    auto& table = out.tables[topic];
    for (const auto& [partition, records] : log) {
      for (const LogRecord& record : records) {
        if (!committed_or_plain(record.status)) continue;
        const std::pair<int32_t, std::string> key{partition, record.key.value_or("")};
        if (record.value) {
          table[key] = *record.value;
        } else {
          table.erase(key);
        }
      }
    }
  }
  return out;
}

Observed observe_run(const Cluster& cluster, const std::string& output_topic,
                     const std::vector<std::string>& changelogs) {
  std::map<std::string, TopicLog> changelog_logs;
  for (const std::string& changelog : changelogs)
    changelog_logs[changelog] = read_final_log(cluster, changelog);
  return observe({{output_topic, read_final_log(cluster, output_topic)}}, changelog_logs);
}

InputRecords committed_input(const TopicLog& input_log) {
  InputRecords out;
  for (const auto& [partition, records] : input_log) {
    auto& kept = out[partition];
    for (const LogRecord& record : records) {
      if (committed_or_plain(record.status)) kept.push_back(record);
    }
  }
  return out;
}

std::vector<std::string> changelog_topics(const AppDefinition& app, const ms::Scenario& scenario) {
  App probe(scenario_settings(scenario, app.default_settings()));
  app.define(probe);
  std::vector<std::string> out;
  for (const TableInfo& table : probe.tables()) out.push_back(table.changelog);
  return out;
}

ReferenceRun run_reference(const ms::Scenario& s, const AppDefinition& app,
                           const std::vector<std::string>& changelogs, const InputRecords& input, int workers,
                           uint64_t seed) {
  const ScenarioSupport& support = *app.scenario;
  AppHarnessOptions options;
  options.seed = seed;
  options.kafka = scenario_cluster(s);
  options.max_kept_events = 0;
  AppHarness h(options);
  const int16_t rf = static_cast<int16_t>(s.cluster().replication_factor());
  ReferenceRun run;
  if (!h.create_topic({support.input_topic, s.cluster().input_partitions(), rf, {}}).ok() ||
      !h.create_topic({support.output_topic, s.cluster().output_partitions(), rf, {}}).ok()) {
    run.why = "could not create the scenario's topics";
    return run;
  }
  for (int w = 0; w < workers; ++w) {
    h.add_worker(app, [&s](AppSettings& settings) { settings = scenario_settings(s, settings); });
  }
  // The input goes in once every worker holds partitions, so that no rebalance moves a partition while it is
  // being processed: the reference has no fault, and no ownership change either.
  const bool assigned = h.run_until(
      [&h, workers] {
        for (int w = 0; w < workers; ++w) {
          if (h.app(w) == nullptr || h.app(w)->assignment().empty()) return false;
        }
        return true;
      },
      s.phases().liveness_bound_ms());
  if (!assigned) {
    run.why = fmt::format("the {} worker(s) were not all assigned partitions", workers);
    return run;
  }
  std::vector<ProducerRecord> records;
  for (const auto& [partition, partition_records] : input) {
    for (const LogRecord& in : partition_records) {
      ProducerRecord& record = records.emplace_back();
      record.topic = support.input_topic;
      record.partition = partition;
      record.key = in.key;
      record.value = in.value;
    }
  }
  const size_t expected = records.size();
  if (static_cast<size_t>(h.produce(std::move(records))) != expected) {
    run.why = "the reference run could not write its input";
    return run;
  }
  const std::string group = app.default_settings().id;
  std::vector<std::string> transactional = changelogs;
  transactional.push_back(support.output_topic);
  const int64_t bound_ms = s.phases().chaos_ms() + s.phases().liveness_bound_ms();
  const int64_t started_ms = h.now_ms();
  while (h.now_ms() - started_ms < bound_ms) {
    h.run_for(kSettleStepMs);
    std::set<std::string> consumed = consumed_topics(h);
    consumed.insert(support.input_topic);
    run.why = unsettled(h, group, consumed, transactional);
    if (run.why.empty()) {
      run.settled = true;
      break;
    }
  }
  run.observed = observe_run(h.kafka().cluster(), support.output_topic, changelogs);
  return run;
}

DifferentialOutcome compare_runs(const Observed& faulty, const Observed& reference, bool exactly_once) {
  DifferentialOutcome outcome;
  Differences differences;
  compare_outputs(faulty, reference, exactly_once, outcome, differences);
  // At least once nothing fences a worker that lost a partition: its late changelog write can leave a table
  // behind its reference (the table-oracle allows the same). Reported, allowed; the outputs still catch an
  // input applied twice, through every later output that depends on it.
  Differences table_differences;
  compare_tables(faulty, reference, exactly_once ? differences : table_differences);
  outcome.allowed_table_differences = table_differences.count();
  if (!exactly_once && table_differences.count() > 0)
    outcome.allowed_table_example = table_differences.take().front();
  outcome.differences = differences.count();
  outcome.examples = differences.take();
  outcome.note = fmt::format("{} output record(s) and {} table entr(ies) of the reference compared{}",
                             record_count(reference), entry_count(reference),
                             exactly_once ? "" : " (at least once: replayed records allowed)");
  return outcome;
}

DifferentialOutcome differential_check(const ms::Scenario& s, const AppDefinition& app,
                                       const std::vector<std::string>& changelogs, const TopicLog& input_log,
                                       const Observed& faulty, bool exactly_once, uint64_t seed) {
  const InputRecords input = committed_input(input_log);
  const ReferenceRun first =
      run_reference(s, app, changelogs, input, 1, splitmix64(seed ^ kFirstReferenceSalt));
  DifferentialOutcome outcome;
  if (!first.settled) {
    outcome.undecided = "the fault-free reference run did not settle: " + first.why;
    return outcome;
  }
  const ReferenceRun second = run_reference(s, app, changelogs, input, std::max(1, s.app().workers()),
                                            splitmix64(seed ^ kSecondReferenceSalt));
  if (!second.settled) {
    outcome.undecided = "the second fault-free reference run did not settle: " + second.why;
    return outcome;
  }
  const DifferentialOutcome self = compare_runs(second.observed, first.observed, true);
  if (self.differences > 0) {
    outcome.undecided = fmt::format(
        "app '{}' is not deterministic: two fault-free reference runs over the same input disagree ({}). The "
        "differential oracle assumes an app's outputs and tables are a function of its input in "
        "per-partition "
        "order: no wall clock, no randomness, nothing that depends on timing or on which worker owns what",
        app.name, self.examples.front());
    outcome.nondeterministic = true;
    return outcome;
  }
  return compare_runs(faulty, first.observed, exactly_once);
}

}  // namespace mephisto::sim::scenario
