#include "sim/history.h"

namespace mephisto::sim {

void History::add(HistoryEvent event) {
  if (events_.size() >= max_events_) {
    // Checkers must know the history is incomplete rather than draw conclusions from a prefix.
    truncated_ = true;
    return;
  }
  events_.push_back(std::move(event));
  if (observer_) observer_(events_.back());
}

const char* history_kind_name(HistoryKind kind) {
  switch (kind) {
    case HistoryKind::kAssigned:
      return "assigned";
    case HistoryKind::kRevoked:
      return "revoked";
    case HistoryKind::kPositioned:
      return "positioned";
    case HistoryKind::kPolled:
      return "polled";
    case HistoryKind::kOffsetsCommitted:
      return "offsets-committed";
    case HistoryKind::kSendAcked:
      return "send-acked";
    case HistoryKind::kSendFailed:
      return "send-failed";
    case HistoryKind::kTxnOffsetsSent:
      return "txn-offsets-sent";
    case HistoryKind::kTxnCommitStarted:
      return "txn-commit-started";
    case HistoryKind::kTxnCommitted:
      return "txn-committed";
    case HistoryKind::kTxnAborted:
      return "txn-aborted";
  }
  return "unknown";
}

HistoryEvent stamped_event(HistoryKind kind, int64_t time_ms, const ProcessContext& process,
                           uint64_t client) {
  HistoryEvent e;
  e.kind = kind;
  e.time_ms = time_ms;
  e.process = process.id();
  e.incarnation = process.incarnation();
  e.client = client;
  return e;
}

}  // namespace mephisto::sim
