// Checkers: decide each invariant of models/scenario.proto over a run's History (sim/history.h) and the
// cluster's final logs (the ground truth: every record with its transaction's outcome), for a pipeline app: a
// workload producer writes unique values to the app's input topic; workers consume it in a group, write
// results to the output topic and fold it into a table. What the results and the table must hold comes from
// the app's model (ScenarioSupport, runtime/app/scenario_support.h): which input a result answers, and the
// table's fold of the input.
//
// Definitions (docs/reference/kafka-semantics.md, Jepsen's Kafka checker):
//
// - duplicates: a value at more than one offset of the input; an input with more than one committed result;
//   a table value above the model's. Allowed (kAllowed) when !exactly_once.
// - lost-writes: an acknowledged input value missing from the final input log; an input below the group's
//   committed offset with no committed result; under exactly once, a table value below the model's.
// - aborted-reads: a read_committed poll returned a record whose transaction aborted (or never committed).
// - inconsistent-offsets: one (partition, offset) seen with two different (key, value)s across polls, acks
// and
//   the final log.
// - non-monotonic: within one consumer's positioning of a partition (between kPositioned/kAssigned events)
//   polled offsets not increasing; one producer's acked offsets on a partition not increasing.
// - poll-skips: within one positioning, two consecutive polls of a partition at o1 < o2 with a record the
//   consumer should have read in between (in the final log, visible to its isolation level).
// - unseen: an acknowledged input value that no worker's group consumer ever polled (healed runs only).
// - table-oracle: the changelog's last committed value per key differs from the model's fold of the final
//   input log. Allowed when !exactly_once: values above (inputs counted again) and below (a late changelog
//   write from a worker that lost the partition: nothing fences it at least once).
// - liveness: the run settled (group lag zero, no open transaction on output/changelog) within the bound.
// - differential: the outcome of the differential oracle (differential.h), run by the runner before the
//   checkers: differences violate it, replayed records under at least once are allowed, a reference run that
//   did not settle or disagreed with the other leaves it undecided.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "runtime/app/scenario_support.h"
#include "sim/history.h"
#include "sim/scenario/run_result.h"

namespace mephisto::sim {
class Cluster;
}

namespace mephisto::sim::scenario {

// One data record of a partition's final log (control records left out).
struct LogRecord {
  enum Status : uint8_t {
    kPlain,      // not transactional
    kCommitted,  // its transaction committed
    kAborted,    // its transaction aborted
    kOpen,       // its transaction has no marker yet (hanging, or still open at the end)
  };
  int64_t offset = 0;
  std::optional<std::string> key;
  std::optional<std::string> value;
  Status status = kPlain;
  int64_t producer_id = -1;
};
using TopicLog = std::map<int32_t, std::vector<LogRecord>>;  // partition -> records by offset

// A record a read_committed consumer reads: not transactional, or its transaction committed.
[[nodiscard]] inline bool committed_or_plain(LogRecord::Status status) {
  return status == LogRecord::kPlain || status == LogRecord::kCommitted;
}

// The topic's final log as its current leader holds it (for each partition, up to its log end), with each
// record's transaction outcome worked out from the control markers that follow it. Partitions without a
// leader are read from the replica with the longest log. Unknown topic: empty.
[[nodiscard]] TopicLog read_final_log(const Cluster& cluster, const std::string& topic);

// The differential oracle's outcome for a run (differential.h).
struct DifferentialOutcome {
  int64_t differences = 0;
  std::vector<std::string> examples;  // the first few differences, readable
  int64_t allowed_duplicates = 0;     // records left out as replays (at least once)
  // Table entries off the reference at least once (a late changelog write of a worker that lost the
  // partition: unfenced at least once), and the first of them.
  int64_t allowed_table_differences = 0;
  std::string allowed_table_example;
  std::string undecided;  // why the oracle could not decide ("" if it could)
  // The undecided verdict is the app's fault: two reference runs disagreed (a problem with the app, exit 2).
  bool nondeterministic = false;
  std::string note;
};

struct CheckInput {
  const History* history = nullptr;
  // The app's model (its result per input, its table fold); nullptr or unset parts: those checks are skipped
  // (lost-writes and duplicates then rest on the input and the table alone; table-oracle is not checked).
  const ScenarioSupport* app = nullptr;
  std::string input_topic;      // written by the workload
  std::string output_topic;     // written by the workers
  std::string changelog_topic;  // "" if the app has no table
  std::string group;            // the app's consumer group
  bool exactly_once = true;
  TopicLog input_log;
  TopicLog output_log;
  TopicLog changelog_log;
  std::set<ProcessId> worker_processes;         // whose group consumers count for `unseen`
  ProcessId workload_process = kWorld;          // whose acks count for lost-writes / unseen
  std::map<TopicPartition, int64_t> committed;  // the group's final committed offsets on the input
  // Liveness: whether and when the run settled after the heal.
  bool healed = true;  // the run reached its liveness phase (false: `unseen` is undecided)
  bool settled = false;
  int64_t settled_after_ms = -1;  // from the heal
  int64_t liveness_bound_ms = 0;
  std::string not_settled_why;  // what was still missing at the bound
  // The differential oracle's outcome, when it ran (nullopt: DIFFERENTIAL is not checked).
  std::optional<DifferentialOutcome> differential;
};

// One verdict per invariant (DUPLICATES..DIFFERENTIAL, in enum order). Invariants not in `checks` (empty:
// all) are kNotChecked; those in `expected` become kExpectedSeen / kExpectedMissing.
[[nodiscard]] std::vector<Verdict> run_checkers(const CheckInput& input, const std::vector<Invariant>& checks,
                                                const std::vector<Invariant>& expected);

// The report's data from the history: ownership spans of the input topic's partitions per worker process
// (group consumers of `group` only), and timeline marks for assignments, transaction commits/aborts and
// offset commits (commits thinned to at most `max_commit_marks` per worker, evenly). `lane_of` names a
// process's lane ("" to leave it out).
struct HistoryTimeline {
  std::vector<OwnershipSpan> ownership;
  std::vector<TimelineEvent> events;
};
[[nodiscard]] HistoryTimeline timeline_from_history(
    const History& history, const std::string& group, const std::string& input_topic,
    const std::map<ProcessId, std::string>& lane_of, int64_t end_ms, int max_commit_marks = 200,
    const std::map<ProcessId, std::vector<int64_t>>& crashed_at = {});

}  // namespace mephisto::sim::scenario
