// What one run of a scenario produced (sim/scenario/runner.h): the verdict per invariant, the run's hash and
// its reproduction line, and the timeline the HTML report draws (sim/scenario/report_html.h).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "models/scenario.pb.h"
#include "runtime/seam/broker_client.h"

namespace mephisto::sim::scenario {

using mephisto::scenario::Invariant;

enum class VerdictStatus : uint8_t {
  kHeld,             // checked, no violation
  kViolated,         // a violation the scenario does not allow: the run fails
  kAllowed,          // seen, but allowed by the guarantee (duplicates at least once): the run passes
  kExpectedSeen,     // a declared expected violation (expect_violation), seen: the run passes
  kExpectedMissing,  // a declared expected violation that did not happen: the run fails
  kUndecided,        // the checker could not decide (history truncated, the run never healed): the run fails
  kNotChecked,       // not in the scenario's `check` list
};

struct Violation {
  int64_t time_ms = -1;  // virtual time of the first evidence, -1 if none (e.g. found in the final log)
  std::string text;      // one line: what, where (topic/partition@offset), which value, which client
};

struct Verdict {
  Invariant invariant = mephisto::scenario::INVARIANT_UNSPECIFIED;
  VerdictStatus status = VerdictStatus::kHeld;
  int64_t count = 0;                // violations found
  std::vector<Violation> examples;  // the first few (≤ 5), earliest first
  std::string note;                 // e.g. "allowed: at_least_once", "settled 2300 ms after the heal"
};

[[nodiscard]] bool verdict_fails(VerdictStatus status);
[[nodiscard]] const char* verdict_status_name(VerdictStatus status);  // "held", "VIOLATED", ...
[[nodiscard]] std::string invariant_name(Invariant invariant);        // "duplicates", "lost-writes", ...

// One thing on the report's timeline.
struct TimelineEvent {
  enum Kind : uint8_t {
    kFault,      // a fault started (text says which)
    kFaultEnd,   // a fault was undone
    kRebalance,  // a worker received an assignment (text: generation and partitions)
    kCommit,     // a transaction committed / offsets committed
    kAbort,      // a transaction aborted
    kHeal,       // the chaos phase ended: everything healed
    kSettled,    // the liveness phase reached lag zero with no open transaction
    kViolation,  // the first evidence of a violation
    kNote,       // anything else worth a mark
  };
  int64_t time_ms = 0;
  std::string lane;  // "worker-0", "broker-2", "workload", "cluster"
  Kind kind = kNote;
  std::string text;
};

// A worker owned an input partition from `from_ms` to `to_ms` (to_ms = the run's end if still owned).
struct OwnershipSpan {
  std::string worker;  // "worker-0"
  TopicPartition tp;
  int32_t generation = -1;
  int64_t from_ms = 0;
  int64_t to_ms = 0;
};

struct RunResult {
  std::string scenario;  // its name
  uint64_t seed = 0;
  uint64_t run_hash = 0;
  std::string planted;                  // the planted bug's name, "" if none
  std::string reproduce;                // one line: `mephisto sim <file> --seed S [--planted NAME]`
  bool passed = false;                  // no verdict fails
  // A problem with the app rather than a verdict on the run (e.g. the differential oracle's reference runs
  // disagreed: the app is not deterministic). `mephisto sim` prints it and exits 2. "" if none.
  std::string app_error;
  std::vector<Verdict> verdicts;        // one per invariant, in enum order
  std::vector<std::string> fault_plan;  // the faults this seed ran, one line each
  std::vector<TimelineEvent> timeline;  // sorted by time
  std::vector<OwnershipSpan> ownership;
  std::vector<std::string> workers;  // lane names of the workers, in order
  int64_t chaos_end_ms = 0;          // virtual times, from the start of the chaos phase
  int64_t healed_at_ms = 0;
  int64_t settled_at_ms = -1;  // -1: never settled within the bound
  int64_t end_ms = 0;
  int64_t events_acked = 0;   // workload records acknowledged by the cluster
  int64_t events_failed = 0;  // workload records whose send failed (not acknowledged; not required anywhere)
  int64_t wall_ms = 0;  // wall-clock time of the run, set by the caller (the simulator has no wall clock)
};

}  // namespace mephisto::sim::scenario
