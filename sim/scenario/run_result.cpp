#include "sim/scenario/run_result.h"

namespace mephisto::sim::scenario {

bool verdict_fails(VerdictStatus status) {
  switch (status) {
    case VerdictStatus::kViolated:
    case VerdictStatus::kExpectedMissing:
    case VerdictStatus::kUndecided:
      return true;
    case VerdictStatus::kHeld:
    case VerdictStatus::kAllowed:
    case VerdictStatus::kExpectedSeen:
    case VerdictStatus::kNotChecked:
      return false;
  }
  return true;
}

const char* verdict_status_name(VerdictStatus status) {
  switch (status) {
    case VerdictStatus::kHeld:
      return "held";
    case VerdictStatus::kViolated:
      return "VIOLATED";
    case VerdictStatus::kAllowed:
      return "allowed";
    case VerdictStatus::kExpectedSeen:
      return "expected";
    case VerdictStatus::kExpectedMissing:
      return "EXPECTED-MISSING";
    case VerdictStatus::kUndecided:
      return "undecided";
    case VerdictStatus::kNotChecked:
      return "not checked";
  }
  return "unknown";
}

std::string invariant_name(Invariant invariant) {
  switch (invariant) {
    case mephisto::scenario::DUPLICATES:
      return "duplicates";
    case mephisto::scenario::LOST_WRITES:
      return "lost-writes";
    case mephisto::scenario::ABORTED_READS:
      return "aborted-reads";
    case mephisto::scenario::INCONSISTENT_OFFSETS:
      return "inconsistent-offsets";
    case mephisto::scenario::NON_MONOTONIC:
      return "non-monotonic";
    case mephisto::scenario::POLL_SKIPS:
      return "poll-skips";
    case mephisto::scenario::UNSEEN:
      return "unseen";
    case mephisto::scenario::TABLE_ORACLE:
      return "table-oracle";
    case mephisto::scenario::LIVENESS:
      return "liveness";
    case mephisto::scenario::DIFFERENTIAL:
      return "differential";
    default:
      return "unspecified";
  }
}

}  // namespace mephisto::sim::scenario
