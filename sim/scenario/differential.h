// The differential oracle: holds a faulty run to a fault-free reference run of the same app over the same
// committed input, so an app needs no model of its own to be checked (invariant DIFFERENTIAL).
//
// What is compared: the committed records of the app's output topic, per key in log order (the order a
// guarantee promises: Kafka orders a partition, and a key stays in one), and every table's final contents
// per (changelog partition, key). Under exactly once both must be equal. Under at least once a record may
// come out again (a replay after a crash or a rebalance): the faulty run's output per key, with every record
// equal to an earlier one of the same key left out, must equal the reference's; the records left out are
// reported as allowed duplicates. A table off its reference under at least once is allowed too (reported):
// nothing fences a worker that lost a partition from writing its changelog late (the table-oracle allows the
// same). So at least once the outputs carry the check — an input applied twice shows in every later output
// that depends on it —, and an app whose state matters should be checked under exactly once.
//
// Assumptions (each stated in the verdict when it does not hold):
// - the app is deterministic: its outputs and tables are a function of its input in per-partition order (no
//   wall clock, no randomness, no dependence on how partitions interleave or which worker owns what). Two
//   reference runs (different seeds, one worker and the scenario's workers) must agree, else the verdict is
//   undecided and names the first difference: the oracle cannot judge an app that disagrees with itself.
// - the input is what the workload wrote: the committed input is the final input log (plain or committed
//   records), replayed into the reference partition by partition in offset order.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "models/scenario.pb.h"
#include "runtime/app/app.h"
#include "sim/scenario/checkers.h"

namespace mephisto::sim::scenario {

// What a run produced, as the oracle compares it.
struct Observed {
  // Output topic -> key ("" for a null key) -> committed values (null values as "") in log order.
  std::map<std::string, std::map<std::string, std::vector<std::string>>> outputs;
  // Changelog topic -> (partition, key) -> the key's last committed value (deleted keys absent).
  std::map<std::string, std::map<std::pair<int32_t, std::string>, std::string>> tables;
};

// The committed records of the given topics' final logs (read_final_log).
[[nodiscard]] Observed observe(const std::map<std::string, TopicLog>& outputs,
                               const std::map<std::string, TopicLog>& changelogs);

// The same, read from the cluster: the output topic's and the changelogs' final logs.
[[nodiscard]] Observed observe_run(const Cluster& cluster, const std::string& output_topic,
                                   const std::vector<std::string>& changelogs);

// The committed input: per partition, the plain or committed records of the final input log in offset order.
using InputRecords = std::map<int32_t, std::vector<LogRecord>>;
[[nodiscard]] InputRecords committed_input(const TopicLog& input_log);

struct ReferenceRun {
  bool settled = false;
  std::string why;  // when not settled: what was still missing at the bound
  Observed observed;
};

// A fault-free run of `app` with `workers` workers (the scenario's cluster shape and settings) that reads
// `input`, written partition by partition in order once every worker holds partitions, until the group has
// consumed every topic it reads and no transaction is open on the output or a changelog (`changelogs`: the
// app's, changelog_topics), or the scenario's chaos and liveness phases' length passes.
[[nodiscard]] ReferenceRun run_reference(const mephisto::scenario::Scenario& scenario,
                                         const AppDefinition& app, const std::vector<std::string>& changelogs,
                                         const InputRecords& input, int workers, uint64_t seed);

// The changelog topics of the app's tables, as its definition declares them.
[[nodiscard]] std::vector<std::string> changelog_topics(const AppDefinition& app,
                                                        const mephisto::scenario::Scenario& scenario);

// The number of differences whose text the outcome keeps.
inline constexpr size_t kMaxDifferenceTexts = 5;

// Compares a faulty run with the reference (`exactly_once`: the guarantee the app ran under).
[[nodiscard]] DifferentialOutcome compare_runs(const Observed& faulty, const Observed& reference,
                                               bool exactly_once);

// The oracle end to end for a faulty run: two reference runs over the committed input — one worker, and the
// scenario's workers, with seeds derived from `seed` — checked against each other (the determinism
// assumption: neither timing nor ownership may change the outcome), then the faulty run against the first.
[[nodiscard]] DifferentialOutcome differential_check(const mephisto::scenario::Scenario& scenario,
                                                     const AppDefinition& app,
                                                     const std::vector<std::string>& changelogs,
                                                     const TopicLog& input_log, const Observed& faulty,
                                                     bool exactly_once, uint64_t seed);

}  // namespace mephisto::sim::scenario
