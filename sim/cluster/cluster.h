// Cluster: the broker side of the simulated Kafka deployment — N brokers serving Kafka's request APIs (as the
// structs of protocol.h) over replicated partition logs, with a controller that elects leaders, a group
// coordinator and a transaction coordinator per internal partition, and the fault hooks scenarios need.
// Everything runs on the executor's virtual time, as kWorld events: no threads, no wall clock, and every random
// choice (replica assignment, replication latency jitter) comes from a fork of the executor's PRNG.
//
// What is modelled and what is simplified: sim/cluster/README.md.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "runtime/seam/result.h"
#include "sim/cluster/protocol.h"
#include "sim/executor.h"

namespace mephisto::sim {

struct ClusterConfig {
  int32_t brokers = 3;  // ids 1..brokers
  // Topic defaults (num.partitions, default.replication.factor, min.insync.replicas, unclean.leader.election
  // .enable, message.max.bytes).
  int32_t default_partitions = 1;
  int16_t default_replication_factor = 3;
  int16_t min_insync_replicas = 1;
  bool unclean_leader_election = false;
  int32_t max_message_bytes = 1048588;

  // Replication: followers long-poll their leader (replica.fetch.wait.max.ms); each leg of a replica fetch takes
  // a latency drawn in [min, max]. A follower that has not caught up for replica.lag.time.max.ms leaves the ISR.
  int64_t replica_lag_time_max_ms = 30000;
  int64_t replica_fetch_wait_max_ms = 500;
  int32_t replica_fetch_max_bytes = 1048576;
  int64_t replica_latency_min_ms = 1;
  int64_t replica_latency_max_ms = 3;
  // How long the controller takes to notice a crashed broker and move its leaderships (0: at once; KRaft's
  // broker.session.timeout.ms is 9000).
  int64_t broker_session_timeout_ms = 0;

  // Internal topics. Replication factors are clamped to the broker count; each coordinator is the leader of
  // partition abs(javaHashCode(id)) % partitions of its topic, as in Kafka.
  int32_t offsets_topic_partitions = 50;
  int16_t offsets_topic_replication_factor = 3;
  int32_t transaction_state_partitions = 50;
  int16_t transaction_state_replication_factor = 3;
  int16_t transaction_state_min_isr = 2;
  // How long a coordinator waits for its internal write to replicate (offsets.commit.timeout.ms).
  int64_t coordinator_write_timeout_ms = 5000;

  // Transactions.
  int64_t transaction_max_timeout_ms = 900000;
  int64_t transaction_abort_scan_interval_ms = 10000;  // transaction.abort.timed.out.transaction.cleanup.interval
  int64_t txn_marker_retry_backoff_ms = 20;
  // KIP-890 part 1: a partition leader checks with the coordinator that a transactional producer added the
  // partition before its first write (else kInvalidTxnState). Off reproduces pre-3.6 Kafka's hanging-txn hazard.
  bool verify_transactional_partitions = true;

  // Consumer groups.
  int64_t group_min_session_timeout_ms = 6000;
  int64_t group_max_session_timeout_ms = 1800000;
  int64_t group_initial_rebalance_delay_ms = 3000;

  // Compaction (log.cleaner.backoff.ms, log.cleaner.delete.retention.ms, log.cleaner.min.compaction.lag.ms).
  int64_t log_cleaner_interval_ms = 15000;
  int64_t delete_retention_ms = 86400000;
  int64_t min_compaction_lag_ms = 0;
};

// A partition as the controller and the leader see it (for tests, checkers and scenario assertions).
struct PartitionState {
  TopicPartition tp;
  BrokerId leader = kNoBroker;
  int32_t leader_epoch = -1;
  std::vector<BrokerId> replicas;
  std::vector<BrokerId> isr;
  int64_t high_watermark = -1;     // the leader's; -1 while offline
  int64_t last_stable_offset = -1;
  int64_t log_start_offset = 0;
  std::vector<std::pair<BrokerId, int64_t>> log_end_offsets;  // per replica, by broker id
};

class Cluster {
 public:
  // `executor` must outlive the cluster. Creates the brokers (all up) and the internal topics.
  Cluster(Executor& executor, ClusterConfig config);
  ~Cluster();
  Cluster(const Cluster&) = delete;
  Cluster& operator=(const Cluster&) = delete;

  // Delivers `request` to broker `to`. `respond` is called at most once, possibly before handle() returns (the
  // caller's transport must tolerate that) or later from an executor event: produce with acks=-1 waits for the
  // ISR (bounded by timeout_ms), fetch waits up to max_wait_ms for data, JoinGroup for the rebalance, internal
  // coordinator writes for their replication. A request to a crashed broker (or one that crashes before
  // answering) is never answered; the client's request timeout must fire.
  void handle(BrokerId to, RequestHeader header, Request request, Responder respond);
  void handle(BrokerId to, Request request, Responder respond) { handle(to, RequestHeader{}, std::move(request), std::move(respond)); }

  [[nodiscard]] const ClusterConfig& config() const;
  [[nodiscard]] std::vector<BrokerId> broker_ids() const;  // 1..N
  [[nodiscard]] bool broker_alive(BrokerId broker) const;

  // --- faults (each logged) ----------------------------------------------------------------------------------

  // Kills the broker: it answers nothing more, its pending requests are dropped, its leaderships fail over
  // (after broker_session_timeout_ms) to another in-sync replica, or with unclean election to any live replica.
  // Its log survives (a process crash, not a disk loss). No-op if already down.
  void crash_broker(BrokerId broker);
  // Brings a crashed broker back: it rejoins as a follower, truncates where it diverged from the leader, catches
  // up and re-enters the ISR; or becomes leader of partitions that were offline waiting for it.
  void restart_broker(BrokerId broker);
  // The next `count` requests of `api` (to any broker) fail with `error` (like librdkafka's mock cluster
  // rd_kafka_mock_push_request_errors).
  void inject_errors(ApiKey api, ErrorCode error, int32_t count);
  // Moves the partition's leadership to `to` (or, if kNoBroker, to the next live in-sync replica), with a leader
  // epoch bump. Errors: kUnknownTopicOrPartition, kNotEnoughReplicas (no eligible target).
  Status move_leader(const TopicPartition& tp, BrokerId to = kNoBroker);
  // Moves the coordinator of a group or transactional id (the leadership of its internal partition).
  Status move_coordinator(CoordinatorType type, const std::string& key, BrokerId to = kNoBroker);
  // Decides whether broker `from` can reach broker `to` (replica fetches, transaction markers); nullptr: always.
  // For the network layer's partitions between brokers.
  void set_broker_link_filter(std::function<bool(BrokerId from, BrokerId to)> reachable);
  // Runs the log cleaner on every partition of a compacted topic now. Errors: kUnknownTopicOrPartition,
  // kInvalidConfig (the topic is not compacted).
  Status compact_now(const std::string& topic);

  // --- introspection ------------------------------------------------------------------------------------------

  [[nodiscard]] std::optional<PartitionState> partition_state(const TopicPartition& tp) const;
  // A replica's log batches (tests and checkers).
  [[nodiscard]] std::vector<RecordBatch> replica_log(const TopicPartition& tp, BrokerId replica) const;
  // The internal partition a group / transactional id maps to, and its current leader (kNoBroker if offline).
  [[nodiscard]] int32_t coordinator_partition(CoordinatorType type, const std::string& key) const;
  [[nodiscard]] BrokerId coordinator(CoordinatorType type, const std::string& key) const;
  // Names of the non-internal topics, sorted.
  [[nodiscard]] std::vector<std::string> topics() const;

  // Java's String.hashCode of a UTF-8 string (over its UTF-16 code units), as Kafka hashes coordinator keys.
  [[nodiscard]] static int32_t java_string_hash(std::string_view utf8);

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace mephisto::sim
