// Engine internals shared by its .cpp files: limits, per-partition state, the ask() reply machinery.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "runtime/app/engine.h"

namespace mephisto {

// Records per poll (the consumer's max.poll.records): also the margin flow control keeps free in each buffer.
inline constexpr int32_t kMaxPollRecords = 500;
// How long one poll waits for records; bounds how quickly the poll fiber notices stop() and resubscriptions.
inline constexpr int64_t kPollTimeoutMs = 100;
// Between attempts to start ask()'s reply topic and consumer when a broker is missing (Replies::ask).
inline constexpr int64_t kReplyStartRetryMs = 1000;
inline constexpr int64_t kAdminTimeoutMs = 30000;
// How long the poll fiber waits for full buffers to drain before it pauses their partitions (wait_for_room).
inline constexpr int64_t kFlowControlGraceMs = 1000;
inline constexpr int64_t kCommitTimeoutMs = 30000;
// The producer's queue limit; send() waits for delivery reports before reaching it (never kQueueFull).
inline constexpr int32_t kProducerQueueMaxRecords = 100000;
// Log the first undecodable records one by one, then every Nth, so bad data cannot flood the log.
inline constexpr int64_t kBadRecordLogFirst = 10;
inline constexpr int64_t kBadRecordLogEvery = 1000;
// Changelog records per reader poll: restores apply them to a store in batches of up to this many.
inline constexpr int32_t kRestoreBatchRecords = 10000;
// How often a restore logs its progress.
inline constexpr int64_t kRestoreProgressLogMs = 5000;
// exactly_once: the transaction timeout (Kafka Streams' 10 s under EOS): how long a crashed worker's open
// transaction can hold back read_committed readers before the broker aborts it.
inline constexpr int64_t kTransactionTimeoutMs = 10000;
// exactly_once: how long a commit waits for in-flight events to finish (the commit point) before giving up
// on the transaction; below the transaction timeout, so the broker never aborts it first.
inline constexpr int64_t kCommitPointTimeoutMs = 5000;

namespace app_internal {
// The Kafka record an event descends from (an in-memory channel's event carries the input that fed it); null
// for an event with no Kafka input.
inline const EventCore* kafka_origin(const EventCore* event) {
  while (event != nullptr && event->partition == nullptr) {
    event = event->upstream.empty() ? nullptr : event->upstream.front();
  }
  return event;
}
}  // namespace app_internal

struct Engine::PartitionState {
  TopicPartition tp;
  bool assigned = false;
  // Whether the AckTracker tracks the partition yet: it starts at the first record after an assignment (the
  // record's offset is the assignment's start position).
  bool tracking = false;
  // Bumped on every revoke or loss: an event of an older epoch is never acked into the new assignment.
  uint64_t epoch = 1;
  int64_t alive = 0;  // events of this partition not yet released
  // Records fetched while the partition's tables were restoring were not dispatched: the consumer was sought
  // back to the first of them. Until that offset comes again, records are stale fetches and are skipped.
  int64_t refetch_from = -1;
};

// ask(): a per-worker reply topic `{id}-reply-{worker_id}` read by its own consumer (assign(), no group), and
// the asks waiting for their correlation ids. Started on the first ask.
class Engine::Replies {
 public:
  explicit Replies(Engine& engine) : engine_(engine) {}
  Result<std::optional<std::string>> ask(ProducerRecord record, int64_t timeout_ms);
  // Ends the reply fiber and fails waiting asks with kState.
  void stop();

 private:
  struct Pending {
    FiberId fiber = kNoFiber;
    bool done = false;
    std::optional<std::string> value;
  };
  Status start();
  void poll_loop();

  Engine& engine_;
  std::string topic_;
  std::unique_ptr<Consumer> consumer_;
  bool started_ = false;
  bool starting_ = false;
  bool stopped_ = false;
  std::string id_prefix_;
  uint64_t next_id_ = 0;
  std::map<std::string, Pending*> pending_;
  std::deque<FiberId> start_waiters_;
};

}  // namespace mephisto
