// Recorder: what a running worker decided, reported as it happens, so that a run on real Kafka can be
// replayed in the simulator (runtime/trace writes it down; sim/replay reads it back and drives a worker with
// it).
//
// The engine and its tables call these hooks on the worker's fibers, in the order things happened to the
// worker: an assignment, each batch of polled records that became events, the changelog records the table
// reader applied, a restore's end offset, a table partition turning active, each timer firing, each send with
// the input events it was made from, delivery reports, commits and transaction steps. The inputs among them
// (assignments, batches, applied changelog records, restore ends, timer firings, store contents at open) are
// everything a worker's outputs depend on besides its code, which is what makes the replay exact.
//
// Hooks must not park or throw: they run inside the engine's critical paths (rebalance callbacks, dispatch).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "runtime/seam/broker_client.h"
#include "runtime/seam/result.h"

namespace mephisto {

// Who a worker is, reported once per Engine::run (an incarnation: a restart, or a rejoin after an aborted
// transaction, starts a new one).
struct RecordedStart {
  std::string app_id;
  std::string worker_id;
  std::string processing_guarantee;  // "at_least_once" | "exactly_once"
  // What the app declares (topics, agents, tables, timers), one line each, sorted: a replay refuses a trace
  // whose app declares something else.
  std::vector<std::string> declarations;
  int64_t time_ms = 0;  // the worker's clock at start
};

// An input a send was made from: a consumed record (topic/partition/offset of the root event, through
// group_by and channels), or a timer firing (timer set, topic empty).
struct SendSource {
  std::string topic;
  int32_t partition = 0;
  int64_t offset = -1;
  std::string timer;
  auto operator<=>(const SendSource&) const = default;
};

enum class TransactionStep { kBegin, kCommit, kAbort };

class Recorder {
 public:
  virtual ~Recorder() = default;

  virtual void on_start(const RecordedStart& start) = 0;
  // Rebalance callbacks of the group consumer, as the engine ran them. `generation` is the group generation
  // of the new assignment (-1 when unknown).
  virtual void on_assigned(const std::vector<TopicPartition>& partitions, int32_t generation) = 0;
  virtual void on_revoked(const std::vector<TopicPartition>& partitions, bool lost) = 0;
  // One poll's records that became events (records of revoked or restoring partitions are not in it), in the
  // order they were handed to agents. Never empty.
  virtual void on_polled(const std::vector<const ConsumerRecord*>& records) = 0;
  // Polled records dropped from the agents' buffers before any agent took them (a revoke).
  virtual void on_dropped(const std::vector<const ConsumerRecord*>& records) = 0;
  // A table partition's store was opened: what it held (key, value) and the changelog offset it had applied.
  virtual void on_table_opened(const std::string& table, int32_t partition,
                               std::optional<int64_t> applied_offset,
                               const std::vector<std::pair<std::string, std::string>>& contents) = 0;
  // Changelog records the table reader applied to a store (restore or standby), one partition's run; empty
  // when the store already held all of a polled run.
  virtual void on_table_applied(const std::vector<ConsumerRecord>& records) = 0;
  // The end offset a restore of the changelog partition runs to.
  virtual void on_restore_end(const TopicPartition& changelog, int64_t end_offset) = 0;
  virtual void on_table_active(const std::string& table, int32_t partition) = 0;
  // A timer's body is about to run.
  virtual void on_timer(const std::string& timer) = 0;
  // A record is being sent (before Producer::send); returns an id for its delivery report.
  virtual uint64_t on_send(const ProducerRecord& record, const std::vector<SendSource>& sources) = 0;
  virtual void on_delivered(uint64_t send_id, const Result<RecordMetadata>& result) = 0;
  // A consumer offset commit (at least once) and its outcome.
  virtual void on_commit(const std::map<TopicPartition, int64_t>& offsets, const Status& result) = 0;
  // A transaction step (exactly once) and its outcome; a commit carries the offsets sent with it. An abort is
  // reported when the worker decides it, before the producer's abort purges queued records, with its cause as
  // the outcome (OK: an open transaction aborted at a clean stop).
  virtual void on_transaction(TransactionStep step, const std::map<TopicPartition, int64_t>& offsets,
                              const Status& result) = 0;
  // Engine::run is returning with `result`.
  virtual void on_stop(const Status& result) = 0;

  // ---- replay only (sim/replay): the recorder drives timers instead of the clock.
  // True when timers fire only when await_timer() says so.
  [[nodiscard]] virtual bool drives_timers() const { return false; }
  // Parks the calling timer fiber until the replay fires `timer` (true) or the worker stops (false).
  virtual bool await_timer(const std::string& timer) {
    (void)timer;
    return false;
  }
};

}  // namespace mephisto
