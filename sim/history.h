// History: what the simulated clients did, as the checkers (sim/scenario/checkers.h) and the run report see
// it. The simulated client binding (sim/client) appends an event for every record a consumer's poll()
// returned, every delivery report, every assignment and revocation, every offset commit and every transaction
// outcome, when a History is attached to the SimKafka (SimKafka::set_history). Without one, nothing is
// recorded.
//
// Limits: at most `max_events` events are kept (default 4,000,000); past that, recording stops and
// truncated() is true (a checker must then say it could not decide). Values are kept whole: workloads use
// short unique values.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "runtime/seam/broker_client.h"
#include "sim/executor.h"

namespace mephisto::sim {

enum class HistoryKind : uint8_t {
  // Consumer side. `client` is the consumer instance; `group` its group id ("" for assign()-only consumers).
  kAssigned,    // a partition assigned (group assignment: generation set; assign(): generation -1)
  kRevoked,     // a partition revoked or lost (detail: "lost" when lost)
  kPositioned,  // the consumer's next fetch position for the partition set (start, seek, reset): `offset`
  kPolled,      // poll() returned this record (offset, key, value); `read_committed` says the isolation
  kOffsetsCommitted,  // a successful commit of `offset` for the partition (consumer commit) by the group
                      // `group`
  // Producer side. `client` is the producer instance; `transactional_id` set for transactional producers.
  kSendAcked,         // delivery report: the record (key, value) was written at `offset`
  kSendFailed,        // delivery report: an error (detail)
  kTxnOffsetsSent,    // sendOffsetsToTransaction: `offset` for the partition, for group `group`
  kTxnCommitStarted,  // EndTxn(commit) about to be sent
  kTxnCommitted,      // the transaction committed (the producer's commit returned success)
  kTxnAborted,  // the transaction aborted (abort returned, or a commit failed and was aborted) (detail: why)
};

struct HistoryEvent {
  HistoryKind kind = HistoryKind::kPolled;
  int64_t time_ms = 0;         // global virtual time
  ProcessId process = kWorld;  // the client's process
  uint32_t incarnation = 0;    // the process's incarnation
  uint64_t client = 0;         // a unique id per consumer / producer instance within the run (from 1)
  TopicPartition tp;           // empty topic for transaction events
  int64_t offset = -1;
  std::optional<std::string> key;
  std::optional<std::string> value;
  int32_t generation = -1;  // kAssigned: the group generation
  bool read_committed = false;
  std::string group;
  std::string transactional_id;
  std::string detail;
};

class History {
 public:
  explicit History(size_t max_events = 4'000'000) : max_events_(max_events) {}
  History(const History&) = delete;
  History& operator=(const History&) = delete;

  // Appends `event` (time_ms, process, incarnation already filled in by the caller) unless full; then calls
  // the observer, if any (the scenario runner uses it for triggered faults: it must not run the executor).
  void add(HistoryEvent event);
  // A fresh client id (1, 2, ...), for a consumer or producer instance at creation.
  uint64_t new_client() { return ++last_client_; }

  [[nodiscard]] const std::vector<HistoryEvent>& events() const { return events_; }
  [[nodiscard]] bool truncated() const { return truncated_; }
  void set_observer(std::function<void(const HistoryEvent&)> observer) { observer_ = std::move(observer); }

 private:
  size_t max_events_;
  std::vector<HistoryEvent> events_;
  bool truncated_ = false;
  uint64_t last_client_ = 0;
  std::function<void(const HistoryEvent&)> observer_;
};

[[nodiscard]] const char* history_kind_name(HistoryKind kind);

// An event of `kind` by `client`, stamped with the global virtual time and the client's process and
// incarnation: what every recording site starts from before adding its own fields.
[[nodiscard]] HistoryEvent stamped_event(HistoryKind kind, int64_t time_ms, const ProcessContext& process,
                                         uint64_t client);

}  // namespace mephisto::sim
