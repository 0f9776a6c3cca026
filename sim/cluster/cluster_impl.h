// Cluster internals shared by the cluster's .cpp files (not part of the public API). One Impl holds the whole
// cluster: brokers, topics with their replicated partitions, replica-fetch sessions, and the coordinator shards.
// Behaviour is split by concern:
//   cluster.cpp            construction, request dispatch, metadata/admin APIs, faults, controller elections
//   replication.cpp        replica fetching, ISR, high watermark, acks=all waiters, leader appends
//   produce_fetch.cpp      Produce, Fetch, ListOffsets, the log cleaner
//   txn_coordinator.cpp    InitProducerId, AddPartitionsToTxn, AddOffsetsToTxn, EndTxn, markers, timeouts
//   group_coordinator.cpp JoinGroup, SyncGroup, Heartbeat, LeaveGroup, OffsetCommit, OffsetFetch, TxnOffsetCommit
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "runtime/seam/random.h"
#include "sim/cluster/cluster.h"
#include "sim/cluster/group_state.h"
#include "sim/cluster/partition_log.h"
#include "sim/cluster/txn_state.h"

namespace mephisto::sim {

struct TopicConfig {
  bool compact = false;
  int32_t min_insync_replicas = 1;
  int32_t max_message_bytes = 1048588;
  bool unclean_leader_election = false;
  int64_t delete_retention_ms = 0;
  int64_t min_compaction_lag_ms = 0;
};

enum class InternalKind : uint8_t { kNone, kOffsets, kTransactions };

// One replica of a partition on one broker. The log survives the broker's crashes.
struct Replica {
  PartitionLog log;
  int64_t high_watermark = 0;
  int32_t reconciled_epoch = -1;  // follower: the leader epoch it last truncated against
  // The leader's view of this replica as a follower (meaningful on the current leader only).
  int64_t fetched_leo = -1;  // -1: unknown since the leader took over
  int64_t last_caught_up_ms = 0;
  int64_t last_fetch_ms = 0;
  int64_t last_fetch_leader_leo = 0;
};

using AppendDone = std::function<void(ErrorCode)>;

struct AcksWaiter {
  int64_t required_offset = 0;  // complete when the high watermark reaches it
  AppendDone done;
};

struct FetchWait;  // a consumer fetch parked until data arrives (produce_fetch.cpp)

struct Partition : std::enable_shared_from_this<Partition> {
  TopicPartition tp;
  uint64_t uid = 0;  // unique per partition object: a recreated topic's partitions are new objects
  InternalKind internal = InternalKind::kNone;
  std::shared_ptr<const TopicConfig> config;
  std::vector<BrokerId> replicas;
  std::vector<BrokerId> isr;
  BrokerId leader = kNoBroker;
  int32_t leader_epoch = 0;
  int64_t epoch_start_offset = 0;  // the leader's log end offset when it took over
  std::map<BrokerId, Replica> replica;
  std::deque<AcksWaiter> acks_waiters;  // ordered by required offset (appends are)
  std::vector<std::weak_ptr<FetchWait>> fetch_waits;
  bool deleted = false;

  [[nodiscard]] bool in_isr(BrokerId broker) const;
  [[nodiscard]] bool has_replica(BrokerId broker) const;
  Replica& leader_replica() { return replica.at(leader); }
  [[nodiscard]] int64_t last_stable_offset() const;  // of the leader; -1 while offline
};
using PartitionPtr = std::shared_ptr<Partition>;

struct Topic {
  std::string name;
  InternalKind internal = InternalKind::kNone;
  std::shared_ptr<TopicConfig> config;
  std::map<std::string, std::string> configs;
  std::vector<PartitionPtr> partitions;
};

struct BrokerState {
  bool alive = true;
  uint32_t incarnation = 1;
  bool failover_pending = false;  // crashed, the controller has not moved its leaderships yet
};

// A follower's fetch of one partition, as sent to the leader.
struct ReplicaFetchItem {
  std::weak_ptr<Partition> partition;
  uint64_t uid = 0;
  int32_t leader_epoch = 0;
  int64_t fetch_offset = 0;
};

// The leader's answer for one partition.
struct ReplicaFetchData {
  ReplicaFetchItem item;
  bool stale = false;  // the leader no longer leads it in this epoch
  int64_t high_watermark = 0;
  std::vector<RecordBatch> batches;
};

// One follower fetching from one leader (Kafka's replica fetcher thread), covering every partition the follower
// replicates from that leader. Long-polls: a fetch with no data parks at the leader until an append or
// replica_fetch_wait_max_ms.
struct ReplicaFetchSession {
  bool running = false;
  uint64_t token = 0;  // bumps when the session is (re)started or killed: stale events stop
  bool parked = false;
  std::vector<ReplicaFetchItem> parked_items;
  TimerId park_timer = 0;
};

struct Cluster::Impl {
  Impl(Executor& executor, ClusterConfig config);

  Executor& executor;
  ClusterConfig config;
  Random rng;
  std::shared_ptr<int> life = std::make_shared<int>(0);  // timers check it: none runs after the cluster dies
  std::vector<BrokerState> brokers;                       // index = id - 1
  std::map<std::string, Topic> topics;
  std::map<std::pair<BrokerId, BrokerId>, ReplicaFetchSession> sessions;  // (follower, leader)
  std::vector<GroupShard> group_shards;
  std::vector<TxnShard> txn_shards;
  std::map<ApiKey, std::deque<ErrorCode>> injected_errors;
  std::function<bool(BrokerId, BrokerId)> link_filter;
  uint64_t next_partition_uid = 1;
  int64_t next_producer_id = 1000;
  uint64_t next_member_number = 1;

  // --- plumbing (cluster.cpp)
  [[nodiscard]] int64_t now() const { return executor.now_ms(); }
  void log(BrokerId broker, std::string_view kind, std::string_view detail);
  void log_controller(std::string_view kind, std::string_view detail);
  // Runs fn after delay_ms unless the cluster is gone by then.
  TimerId schedule(int64_t delay_ms, std::function<void()> fn);
  // Runs fn every interval_ms, for the cluster's lifetime.
  void every(int64_t interval_ms, std::function<void()> fn);
  [[nodiscard]] bool alive(BrokerId broker) const;
  BrokerState& broker_state(BrokerId broker) { return brokers.at(static_cast<size_t>(broker - 1)); }
  [[nodiscard]] const BrokerState& broker_state(BrokerId broker) const { return brokers.at(static_cast<size_t>(broker - 1)); }
  // A responder that does nothing if `broker` crashed (or crashed and restarted) since the request arrived.
  [[nodiscard]] Responder guard(BrokerId broker, Responder respond);
  [[nodiscard]] bool reachable(BrokerId from, BrokerId to) const;
  [[nodiscard]] int64_t replica_latency_ms();
  [[nodiscard]] Partition* find_partition(const TopicPartition& tp);
  [[nodiscard]] const Partition* find_partition(const TopicPartition& tp) const;
  [[nodiscard]] PartitionPtr partition_ptr(const TopicPartition& tp);
  // Every partition, in (topic, partition) order.
  template <typename Fn>
  void for_each_partition(Fn&& fn) {
    for (auto& [name, topic] : topics) {
      for (auto& p : topic.partitions) fn(*p);
    }
  }

  // --- controller (cluster.cpp)
  [[nodiscard]] ErrorCode validate_topic_name(const std::string& name) const;
  [[nodiscard]] ErrorCode parse_topic_configs(const std::map<std::string, std::string>& configs, TopicConfig& out,
                                              std::string& message) const;
  ErrorCode create_topic(const TopicSpec& spec, InternalKind internal, bool validate_only, std::string& message);
  void delete_topic(const std::string& name);
  void handle_broker_failure(BrokerId broker);
  // Makes `leader` (kNoBroker: offline) the partition's leader with a new epoch and does everything that follows.
  void change_leader(Partition& p, BrokerId leader, std::string_view reason);
  [[nodiscard]] int32_t coordinator_partition(CoordinatorType type, const std::string& key) const;

  // --- replication (replication.cpp)
  void ensure_replica_fetchers();
  void kill_sessions_of(BrokerId broker);
  void replica_fetch_send(BrokerId follower, BrokerId leader, uint64_t token);
  void replica_fetch_arrive(BrokerId follower, BrokerId leader, uint64_t token, uint32_t follower_incarnation,
                            std::vector<ReplicaFetchItem> items);
  void replica_fetch_respond(BrokerId follower, BrokerId leader, uint64_t token, uint32_t follower_incarnation,
                             const std::vector<ReplicaFetchItem>& items);
  void replica_fetch_complete(BrokerId follower, BrokerId leader, uint64_t token, uint32_t follower_incarnation,
                              std::vector<ReplicaFetchData> data);
  void replica_fetch_retry_later(BrokerId follower, BrokerId leader, uint64_t token);
  [[nodiscard]] bool session_current(BrokerId follower, BrokerId leader, uint64_t token,
                                     uint32_t follower_incarnation) const;
  void reconcile_follower(Partition& p, BrokerId follower);
  void wake_parked_replica_fetches(Partition& p);
  // Answers a parked replica fetch now (with whatever data there is).
  void unpark_replica_fetch(BrokerId follower, BrokerId leader);
  void check_isr();
  void maybe_advance_high_watermark(Partition& p);
  void on_high_watermark_advanced(Partition& p);
  // Validates and appends a batch on the leader (assigning offsets), waking followers. With
  // kDuplicateSequenceNumber, base/last are the original batch's offsets and nothing is appended.
  struct LeaderAppend {
    ErrorCode error = ErrorCode::kNone;
    int64_t base_offset = -1;
    int64_t last_offset = -1;
  };
  LeaderAppend append_as_leader(Partition& p, RecordBatch batch, bool require_min_isr);
  // Calls done(kNone | kNotEnoughReplicasAfterAppend) when the high watermark passes required_offset,
  // kNotLeaderOrFollower if leadership moves first, kRequestTimedOut after timeout_ms.
  void await_replication(Partition& p, int64_t required_offset, int64_t timeout_ms, AppendDone done);
  void fail_acks_waiters(Partition& p, ErrorCode error);
  // A coordinator's write to its internal partition (or a transaction marker): appended by the partition's
  // leader with min.insync.replicas enforced, done(error) once replicated or failed.
  void coordinator_write(Partition& p, RecordBatch batch, AppendDone done);
  [[nodiscard]] int64_t allocate_producer_id();

  // --- data plane (produce_fetch.cpp)
  void handle_produce(BrokerId to, const RequestHeader& header, ProduceRequest request, Responder respond);
  void handle_fetch(BrokerId to, FetchRequest request, Responder respond);
  void handle_list_offsets(BrokerId to, const ListOffsetsRequest& request, Responder respond);
  void wake_fetch_waits(Partition& p);
  [[nodiscard]] ErrorCode verify_transactional_write(const ProduceRequest& request, const TopicPartition& tp,
                                                     const RecordBatch& batch) const;
  void run_cleaner();
  CompactionStats compact_partition(Partition& p);

  // --- transaction coordinator (txn_coordinator.cpp)
  void handle_init_producer_id(BrokerId to, const InitProducerIdRequest& request, Responder respond);
  void handle_add_partitions_to_txn(BrokerId to, const AddPartitionsToTxnRequest& request, Responder respond);
  void handle_add_offsets_to_txn(BrokerId to, const AddOffsetsToTxnRequest& request, Responder respond);
  void handle_end_txn(BrokerId to, const EndTxnRequest& request, Responder respond);
  [[nodiscard]] TxnShard* txn_shard_on(BrokerId broker, const std::string& transactional_id, ErrorCode& error);
  [[nodiscard]] const TxnShard* loaded_txn_shard(const std::string& transactional_id) const;
  void load_txn_shard(TxnShard& shard, Partition& p);
  void unload_txn_shard(TxnShard& shard);
  void apply_txn_batches(TxnShard& shard, Partition& p, bool loading);
  // Writes a new state for `meta` to the shard's partition; done(error) after replication.
  void write_txn_state(TxnShard& shard, TxnMetadata& meta, internal_records::TxnValue value,
                       std::function<void(ErrorCode)> done);
  void start_markers(TxnShard& shard, TxnMetadata& meta);
  void write_marker(int32_t shard_index, uint64_t load_id, std::string transactional_id, TopicPartition tp);
  void scan_transaction_timeouts();

  // --- group coordinator (group_coordinator.cpp)
  void handle_join_group(BrokerId to, const RequestHeader& header, JoinGroupRequest request, Responder respond);
  void handle_sync_group(BrokerId to, SyncGroupRequest request, Responder respond);
  void handle_heartbeat(BrokerId to, const HeartbeatRequest& request, Responder respond);
  void handle_leave_group(BrokerId to, const LeaveGroupRequest& request, Responder respond);
  void handle_offset_commit(BrokerId to, const OffsetCommitRequest& request, Responder respond);
  void handle_txn_offset_commit(BrokerId to, const TxnOffsetCommitRequest& request, Responder respond);
  void handle_offset_fetch(BrokerId to, const OffsetFetchRequest& request, Responder respond);
  [[nodiscard]] GroupShard* group_shard_on(BrokerId broker, const std::string& group_id, ErrorCode& error);
  void load_group_shard(GroupShard& shard, Partition& p);
  void unload_group_shard(GroupShard& shard);
  void apply_group_batches(GroupShard& shard, Partition& p, bool loading);
  void prepare_rebalance(GroupShard& shard, Group& group, std::string_view reason);
  void maybe_complete_join(GroupShard& shard, Group& group);
  void complete_join(GroupShard& shard, Group& group);
  void remove_member(GroupShard& shard, Group& group, const std::string& member_id, std::string_view reason);
  void arm_session_timer(GroupShard& shard, Group& group, GroupMember& member);
  void arm_rebalance_timers(GroupShard& shard, Group& group);
  void write_offsets(GroupShard& shard, Group& group, const std::vector<OffsetAndMetadata>& offsets,
                     int64_t producer_id, int16_t producer_epoch, std::function<void(ErrorCode)> done);
  [[nodiscard]] ErrorCode validate_member(const Group& group, const std::string& member_id,
                                          const std::optional<std::string>& instance_id, int32_t generation) const;
};

// Maps a coordinator's internal write error to what Kafka's coordinators return for it.
[[nodiscard]] ErrorCode coordinator_write_error(ErrorCode error);

}  // namespace mephisto::sim
