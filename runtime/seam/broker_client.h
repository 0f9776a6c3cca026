// The broker-client seam: admin, producer and consumer, modelled on Kafka's client semantics (and librdkafka's
// API shape) so that the production binding over librdkafka is thin and the simulator has a precise target.
// Every call that waits suspends the calling fiber (see clock.h), never the OS thread; such calls must be made from
// a fiber of the process that owns the client. Clients are not shared between processes.
#pragma once

#include <compare>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "runtime/seam/result.h"

namespace mephisto {

struct TopicPartition {
  std::string topic;
  int32_t partition = 0;
  auto operator<=>(const TopicPartition&) const = default;
};
std::ostream& operator<<(std::ostream& out, const TopicPartition& tp);

struct Header {
  std::string key;
  std::optional<std::string> value;
  bool operator==(const Header&) const = default;
};

// A record to produce. partition < 0 lets the producer choose: murmur2(key) % partitions for keyed records (Kafka's
// default partitioner, so keys land where Java and librdkafka clients put them), sticky/round-robin for null keys.
struct ProducerRecord {
  std::string topic;
  int32_t partition = -1;
  std::optional<std::string> key;
  std::optional<std::string> value;  // nullopt is a tombstone on compacted topics
  std::vector<Header> headers;
  int64_t timestamp_ms = -1;         // -1: the producer's clock at send
};

// A record as a consumer sees it.
struct ConsumerRecord {
  std::string topic;
  int32_t partition = 0;
  int64_t offset = 0;
  std::optional<std::string> key;
  std::optional<std::string> value;
  std::vector<Header> headers;
  int64_t timestamp_ms = 0;
};

// Where a record was written.
struct RecordMetadata {
  TopicPartition tp;
  int64_t offset = -1;
  int64_t timestamp_ms = -1;
};

// ---------------------------------------------------------------------------------------------------------------
// Admin

struct TopicSpec {
  std::string name;
  int32_t partitions = 1;
  int16_t replication_factor = 1;
  // Topic configs by Kafka name, e.g. {"cleanup.policy", "compact"}, {"min.insync.replicas", "2"}.
  std::map<std::string, std::string> configs;
};

struct PartitionDescription {
  int32_t partition = 0;
  int32_t leader = -1;  // broker id; -1 while no leader is available
  std::vector<int32_t> replicas;
  std::vector<int32_t> isr;
};

struct TopicDescription {
  std::string name;
  std::vector<PartitionDescription> partitions;  // ordered by partition id
};

class Admin {
 public:
  virtual ~Admin() = default;
  // Creates a topic and waits until its metadata is visible. Partition count and replication factor are explicit
  // (no "broker default" -1 through this API): < 1 fails with kInvalidPartitions / kInvalidReplicationFactor
  // before anything is sent. Errors: kTopicAlreadyExists, kInvalidTopicException (Kafka's legal names:
  // [a-zA-Z0-9._-]{1,249}, not "." or ".."), kInvalidPartitions, kInvalidReplicationFactor, kInvalidConfig,
  // kTimedOut.
  virtual Status create_topic(const TopicSpec& spec, int64_t timeout_ms) = 0;
  // Deletes a topic. Errors: kUnknownTopicOrPartition, kTimedOut.
  virtual Status delete_topic(const std::string& name, int64_t timeout_ms) = 0;
  // Describes one topic. Errors: kUnknownTopicOrPartition, kTimedOut.
  virtual Result<TopicDescription> describe_topic(const std::string& name, int64_t timeout_ms) = 0;
  // Names of all non-internal topics, sorted.
  virtual Result<std::vector<std::string>> list_topics(int64_t timeout_ms) = 0;
};

// ---------------------------------------------------------------------------------------------------------------
// Producer

struct ProducerConfig {
  std::string client_id = "mephisto";
  // acks: -1 (all in-sync replicas), 1 (leader) or 0. Idempotence and transactions require -1.
  int acks = -1;
  bool enable_idempotence = true;
  // Set to make the producer transactional (implies idempotence).
  std::optional<std::string> transactional_id;
  int64_t transaction_timeout_ms = 60000;
  int64_t linger_ms = 5;
  int64_t request_timeout_ms = 30000;
  // Upper bound from send() to a delivery report, retries included.
  int64_t delivery_timeout_ms = 120000;
  int32_t max_in_flight = 5;
  // Records waiting for delivery before send() fails with kQueueFull (a limit on memory, as librdkafka has).
  int32_t queue_max_records = 100000;
  // Any further client property by its librdkafka name, passed through by the production binding. The simulator
  // rejects names it does not model with kInvalidArg, so a typo is never silently ignored.
  std::map<std::string, std::string> extra;
};

// Consumer-group metadata a transactional producer sends with offsets (KIP-447): the coordinator rejects the
// commit if this member's generation is stale.
struct GroupMetadata {
  std::string group_id;
  int32_t generation_id = -1;
  std::string member_id;
  std::optional<std::string> group_instance_id;
};

// Called once per record, on the producer's process, from whichever of its fibers is running the client's
// background work (delivery is asynchronous). Must not block. The result is valid only during the call (a binding
// may reuse it for the next record): copy what you keep.
using DeliveryCallback = std::function<void(const Result<RecordMetadata>&)>;

class Producer {
 public:
  virtual ~Producer() = default;

  // Queues a record. Immediate errors: kQueueFull, kInvalidArg, kState (transactional producer outside a
  // transaction), kFatal; kUnknownTopic and kMessageTooLarge may come either here or in the delivery report.
  // The callback (may be empty) receives the final outcome, exactly once.
  virtual Status send(ProducerRecord record, DeliveryCallback on_delivery) = 0;

  // Waits until every queued record has its delivery report. Errors: kTimedOut (records still queued).
  virtual Status flush(int64_t timeout_ms) = 0;

  // --- transactions (KIP-98). Errors carry retriable / txn_requires_abort / fatal as librdkafka reports them.
  // A fenced producer (another instance initialised the same transactional.id) gets kProducerFenced, fatal.

  // Registers the transactional id with its coordinator, fencing older instances and completing (aborting) their
  // open transaction. Call once before the first transaction.
  virtual Status init_transactions(int64_t timeout_ms) = 0;
  virtual Status begin_transaction() = 0;
  // Adds the consumer offsets to the transaction (committed iff the transaction commits), with the group metadata
  // of the consumer that read them (KIP-447 fencing).
  virtual Status send_offsets_to_transaction(const std::map<TopicPartition, int64_t>& offsets,
                                             const GroupMetadata& group, int64_t timeout_ms) = 0;
  // Flushes, then commits. On txn_requires_abort the caller must abort_transaction() and retry the work.
  virtual Status commit_transaction(int64_t timeout_ms) = 0;
  // Drops queued records of the transaction and aborts it.
  virtual Status abort_transaction(int64_t timeout_ms) = 0;
};

// ---------------------------------------------------------------------------------------------------------------
// Consumer

enum class IsolationLevel { kReadUncommitted, kReadCommitted };
enum class OffsetReset { kEarliest, kLatest, kError };
enum class AssignmentStrategy { kRange, kRoundRobin, kCooperativeSticky };

// The protocol name Kafka's clients use for the strategy ("range", "roundrobin", "cooperative-sticky"): the
// JoinGroup protocol name, and librdkafka's partition.assignment.strategy value.
[[nodiscard]] const char* assignment_strategy_name(AssignmentStrategy strategy);

struct ConsumerConfig {
  std::string group_id;  // required for subscribe() and commits; may be empty for assign()-only use
  std::string client_id = "mephisto";
  std::optional<std::string> group_instance_id;  // static membership (KIP-345)
  IsolationLevel isolation_level = IsolationLevel::kReadCommitted;
  OffsetReset auto_offset_reset = OffsetReset::kEarliest;
  AssignmentStrategy assignment_strategy = AssignmentStrategy::kRange;
  int64_t session_timeout_ms = 45000;
  int64_t heartbeat_interval_ms = 3000;
  int64_t max_poll_interval_ms = 300000;
  int32_t max_poll_records = 500;
  // Commits are explicit (Faust's model); auto-commit exists only for parity with plain Kafka clients.
  bool enable_auto_commit = false;
  int64_t auto_commit_interval_ms = 5000;
  std::map<std::string, std::string> extra;  // as ProducerConfig::extra
};

// Rebalance callbacks. They run inside poll(), on the polling fiber, as with librdkafka. With eager assignment
// (range, roundrobin) a rebalance revokes everything then assigns the new set; with cooperative-sticky only the
// partitions that move are revoked or assigned (incremental).
class RebalanceListener {
 public:
  virtual ~RebalanceListener() = default;
  virtual void on_partitions_revoked(const std::vector<TopicPartition>& partitions) = 0;
  virtual void on_partitions_assigned(const std::vector<TopicPartition>& partitions) = 0;
  // The partitions were lost without a clean revoke (session timeout, fencing): their commits will fail.
  // Default: treat as revoked.
  virtual void on_partitions_lost(const std::vector<TopicPartition>& partitions) { on_partitions_revoked(partitions); }
};

class Consumer {
 public:
  virtual ~Consumer() = default;

  // Joins the group and subscribes to the topics (replacing any earlier subscription). The listener (may be null)
  // must outlive the subscription. Errors: kInvalidArg (no group id, empty list).
  virtual Status subscribe(const std::vector<std::string>& topics, RebalanceListener* listener) = 0;
  // Leaves the group (revoking the assignment through the listener).
  virtual Status unsubscribe() = 0;
  // Manual assignment, no group membership. Positions start at the committed offset, else per auto.offset.reset.
  virtual Status assign(const std::vector<TopicPartition>& partitions) = 0;
  [[nodiscard]] virtual std::vector<TopicPartition> assignment() const = 0;

  // Returns up to max_poll_records records, waiting up to timeout_ms for the first one. Runs rebalance callbacks.
  // Records of one partition come in offset order; read_committed skips aborted records and control markers and
  // never returns anything at or above the last stable offset. An empty batch at the deadline is not an error.
  // Errors: kNoOffset (auto.offset.reset=error), kFatal, kFencedInstanceId.
  virtual Result<std::vector<ConsumerRecord>> poll(int64_t timeout_ms) = 0;

  // Sets the next offset to fetch. Precondition: the partition is assigned. Errors: kState (not assigned).
  virtual Status seek(const TopicPartition& tp, int64_t offset) = 0;
  // The next offset poll() will return for the partition. Errors: kState (not assigned), kNoOffset (not known yet).
  virtual Result<int64_t> position(const TopicPartition& tp) = 0;
  virtual Status pause(const std::vector<TopicPartition>& partitions) = 0;
  virtual Status resume(const std::vector<TopicPartition>& partitions) = 0;

  // Commits offsets (the next offset to read, per partition) synchronously. Errors: kIllegalGeneration /
  // kRebalanceInProgress / kUnknownMemberId when the member's generation is stale (the commit is rejected),
  // kTimedOut.
  virtual Status commit(const std::map<TopicPartition, int64_t>& offsets, int64_t timeout_ms) = 0;
  // Committed offsets; partitions with none are absent. read_committed consumers wait (up to timeout_ms, then
  // kUnstableOffsetCommit) while a transactional commit for a partition is pending.
  virtual Result<std::map<TopicPartition, int64_t>> committed(const std::vector<TopicPartition>& partitions,
                                                              int64_t timeout_ms) = 0;
  // The high watermark and, for read_committed, the last stable offset, as of the last fetch: {low, high}.
  virtual Result<std::pair<int64_t, int64_t>> watermarks(const TopicPartition& tp, int64_t timeout_ms) = 0;

  // This member's group metadata, for Producer::send_offsets_to_transaction.
  [[nodiscard]] virtual GroupMetadata group_metadata() const = 0;

  // Leaves the group (if subscribed) and releases the client. Idempotent.
  virtual Status close() = 0;
};

// Creates clients bound to one cluster. Owned by the environment; clients must not outlive it.
class BrokerClient {
 public:
  virtual ~BrokerClient() = default;
  // Errors: kInvalidArg (a config value out of range or an unknown extra property, named in the message).
  virtual Result<std::unique_ptr<Admin>> admin() = 0;
  virtual Result<std::unique_ptr<Producer>> producer(const ProducerConfig& config) = 0;
  virtual Result<std::unique_ptr<Consumer>> consumer(const ConsumerConfig& config) = 0;
  // True only for the simulator's client: planted bugs (planted.h) may run only there, never on real Kafka.
  [[nodiscard]] virtual bool simulated() const { return false; }
};

}  // namespace mephisto
