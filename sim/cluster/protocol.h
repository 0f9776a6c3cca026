// The simulated cluster's wire protocol: Kafka's request APIs as in-memory structs (no bytes). Field names and
// semantics follow Kafka's request/response schemas (clients/src/main/resources/common/message/*.json); what a
// field means is Kafka's meaning unless a comment says otherwise. One request, one response, matched by type:
// a ProduceRequest is always answered by a ProduceResponse, etc. (see response_for / error_response).
//
// Errors come back the way Kafka returns them: per partition where Kafka has a per-partition error, else at the
// top level. A crashed broker never answers (the client's request timeout fires).
//
// Performance: record payloads travel in an immutable, shared `RecordBatch::records` vector, so a batch is copied
// by value (a few words plus a reference count) from producer to leader log to follower logs to fetch responses,
// and a client can keep a batch for retries without copying its records.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "runtime/seam/broker_client.h"
#include "runtime/seam/errors.h"
#include "sim/executor.h"

namespace mephisto::sim {

// Kafka broker id. The simulated cluster numbers its brokers 1..N (as librdkafka's mock cluster does).
using BrokerId = int32_t;
inline constexpr BrokerId kNoBroker = -1;
// Who sent a request: the simulated process of the client (kWorld for tests and tools outside any process).
using NodeId = ProcessId;

// Kafka's API keys, by number; used for error injection and logs.
enum class ApiKey : int16_t {
  kProduce = 0,
  kFetch = 1,
  kListOffsets = 2,
  kMetadata = 3,
  kOffsetCommit = 8,
  kOffsetFetch = 9,
  kFindCoordinator = 10,
  kJoinGroup = 11,
  kHeartbeat = 12,
  kLeaveGroup = 13,
  kSyncGroup = 14,
  kCreateTopics = 19,
  kDeleteTopics = 20,
  kInitProducerId = 22,
  kAddPartitionsToTxn = 24,
  kAddOffsetsToTxn = 25,
  kEndTxn = 26,
  kTxnOffsetCommit = 28,
};
[[nodiscard]] std::string_view api_name(ApiKey key);  // "Produce", "Fetch", ...

// --------------------------------------------------------------------------------------------------------------
// Records

// One record of a batch. Offsets are base_offset + offset_delta; compaction removes records but never renumbers
// them, so deltas can have gaps.
struct Record {
  int32_t offset_delta = 0;
  int64_t timestamp_ms = 0;  // CreateTime, as the producer set it
  std::optional<std::string> key;
  std::optional<std::string> value;  // nullopt: a tombstone
  std::vector<Header> headers;
};

// Control batches (transaction markers) hold exactly one record, with no key or value here (Kafka encodes the
// type in the key); the batch's `control` says which marker it is. A marker takes an offset like any record.
enum class ControlType : int8_t { kNone = 0, kAbort = 1, kCommit = 2 };

// Kafka's v2 record batch, minus the encoding. Immutable once appended to a log.
struct RecordBatch {
  // Set by the leader on append (the producer sends 0).
  int64_t base_offset = 0;
  // The batch spans [base_offset, base_offset + last_offset_delta], even after compaction emptied parts of it.
  // The producer sets it to records->size() - 1.
  int32_t last_offset_delta = 0;
  // Epoch of the leader that appended the batch (set by the leader).
  int32_t partition_leader_epoch = -1;
  // Idempotence/transactions (KIP-98); -1 for a plain producer.
  int64_t producer_id = -1;
  int16_t producer_epoch = -1;
  int32_t base_sequence = -1;  // sequence of the first record; the batch covers base..base+last_offset_delta
  bool is_transactional = false;
  ControlType control = ControlType::kNone;
  int64_t max_timestamp_ms = -1;
  // The leader's (virtual) clock at append; the cleaner ages tombstones and min.compaction.lag.ms by it.
  int64_t append_time_ms = -1;
  // Estimated encoded size (Kafka's v2 overheads), set by the leader on append; see batch_size_bytes().
  int32_t size_bytes = 0;
  // The records, shared and immutable. Never null in a valid batch.
  std::shared_ptr<const std::vector<Record>> records;

  [[nodiscard]] int64_t last_offset() const { return base_offset + last_offset_delta; }
  [[nodiscard]] int64_t next_offset() const { return last_offset() + 1; }
  // Sequences wrap from INT32_MAX to 0, as in Kafka.
  [[nodiscard]] int32_t last_sequence() const {
    return static_cast<int32_t>((static_cast<int64_t>(base_sequence) + last_offset_delta) % (int64_t{INT32_MAX} + 1));
  }
  [[nodiscard]] bool is_control() const { return control != ControlType::kNone; }
};

// Makes a producer batch from records (sets offset deltas 0..n-1, last_offset_delta, max timestamp).
// Precondition: !records.empty().
[[nodiscard]] RecordBatch make_batch(std::vector<Record> records);

// Kafka's v2 encoded size estimate: 61 bytes of batch header plus, per record, ~10 bytes of varint framing plus
// key, value and header bytes. Used for max.message.bytes and fetch byte limits.
[[nodiscard]] int32_t batch_size_bytes(const RecordBatch& batch);

// --------------------------------------------------------------------------------------------------------------
// Common header

struct RequestHeader {
  int32_t correlation_id = 0;
  std::string client_id;   // appears in generated member ids, as in Kafka ("<client_id>-<n>")
  NodeId from = kWorld;
};

// --------------------------------------------------------------------------------------------------------------
// Metadata (3)

struct MetadataRequest {
  std::optional<std::vector<std::string>> topics;  // nullopt: all topics (internal ones included, flagged)
};

struct MetadataResponse {
  struct Broker {
    BrokerId id = kNoBroker;
    // Kafka lists only live brokers; the simulator lists all of them and says which are up (clients should treat
    // a dead one as absent).
    bool alive = false;
  };
  struct Partition {
    ErrorCode error = ErrorCode::kNone;  // kLeaderNotAvailable while no leader
    int32_t partition = 0;
    BrokerId leader = kNoBroker;
    int32_t leader_epoch = -1;
    std::vector<BrokerId> replicas;
    std::vector<BrokerId> isr;
    std::vector<BrokerId> offline_replicas;
  };
  struct Topic {
    ErrorCode error = ErrorCode::kNone;  // kUnknownTopicOrPartition, kInvalidTopicException
    std::string name;
    bool is_internal = false;
    std::vector<Partition> partitions;  // by partition id
  };
  std::vector<Broker> brokers;  // by id
  BrokerId controller_id = kNoBroker;
  std::vector<Topic> topics;    // in request order; sorted by name for "all topics"
};

// --------------------------------------------------------------------------------------------------------------
// CreateTopics (19), DeleteTopics (20)

struct CreateTopicsRequest {
  // partitions == -1 or replication_factor == -1 mean "the broker's default", as in Kafka.
  // Configs Kafka knows and the simulator models: cleanup.policy, min.insync.replicas, max.message.bytes,
  // retention.ms, retention.bytes, segment.ms, segment.bytes, min.compaction.lag.ms, delete.retention.ms,
  // message.timestamp.type, unclean.leader.election.enable, compression.type (accepted, some not modelled; see
  // README). Anything else: kInvalidConfig.
  std::vector<TopicSpec> topics;
  int32_t timeout_ms = 30000;
  bool validate_only = false;
};

struct TopicError {
  std::string name;
  ErrorCode error = ErrorCode::kNone;
  std::string error_message;
};

struct CreateTopicsResponse {
  std::vector<TopicError> topics;  // in request order
};

struct DeleteTopicsRequest {
  std::vector<std::string> topics;
  int32_t timeout_ms = 30000;
};

struct DeleteTopicsResponse {
  std::vector<TopicError> topics;  // in request order
};

// --------------------------------------------------------------------------------------------------------------
// Produce (0)

struct ProduceRequest {
  std::optional<std::string> transactional_id;
  int16_t acks = -1;         // -1 all ISR, 1 leader, 0 none (the broker still answers; the client may ignore it)
  int32_t timeout_ms = 30000;  // how long acks=-1 may wait for the ISR: then kRequestTimedOut
  struct PartitionData {
    TopicPartition tp;
    RecordBatch batch;
  };
  std::vector<PartitionData> partitions;
};

struct ProduceResponse {
  struct PartitionResult {
    TopicPartition tp;
    ErrorCode error = ErrorCode::kNone;
    // Offset of the batch's first record. With kDuplicateSequenceNumber: the offset the batch got when first
    // written (the client treats the duplicate as success).
    int64_t base_offset = -1;
    int64_t log_append_time_ms = -1;  // -1: CreateTime topics (the only kind modelled)
    int64_t log_start_offset = -1;
    std::string error_message;
  };
  std::vector<PartitionResult> partitions;  // in request order
};

// --------------------------------------------------------------------------------------------------------------
// Fetch (1)

struct FetchRequest {
  // The broker answers as soon as it has min_bytes for any partition, else after max_wait_ms.
  int32_t max_wait_ms = 500;
  int32_t min_bytes = 1;
  int32_t max_bytes = 52428800;  // response limit (at least one batch is always returned, KIP-74)
  IsolationLevel isolation_level = IsolationLevel::kReadCommitted;
  struct PartitionData {
    TopicPartition tp;
    int64_t fetch_offset = 0;
    int32_t partition_max_bytes = 1048576;
  };
  std::vector<PartitionData> partitions;
};

struct AbortedTransaction {
  int64_t producer_id = -1;
  int64_t first_offset = -1;  // first offset of the aborted transaction in this partition
};

struct FetchResponse {
  ErrorCode error = ErrorCode::kNone;  // top-level
  struct PartitionData {
    TopicPartition tp;
    ErrorCode error = ErrorCode::kNone;  // kNotLeaderOrFollower, kOffsetOutOfRange, kUnknownTopicOrPartition
    int64_t high_watermark = -1;
    int64_t last_stable_offset = -1;
    int64_t log_start_offset = -1;
    // read_committed only, as Kafka returns them: aborted transactions overlapping the returned range. The
    // CLIENT filters: it skips a transactional batch of producer P from first_offset on until P's abort marker
    // (a control batch). Control batches are returned and occupy offsets; clients never hand them to the app.
    std::vector<AbortedTransaction> aborted_transactions;
    // Whole batches, in offset order. The first may start below fetch_offset (Kafka returns the batch containing
    // it; the client skips records below its position). read_committed: nothing at or above the LSO;
    // read_uncommitted: nothing at or above the high watermark.
    std::vector<RecordBatch> batches;
  };
  std::vector<PartitionData> partitions;  // in request order
};

// --------------------------------------------------------------------------------------------------------------
// ListOffsets (2)

inline constexpr int64_t kLatestTimestamp = -1;
inline constexpr int64_t kEarliestTimestamp = -2;

struct ListOffsetsRequest {
  IsolationLevel isolation_level = IsolationLevel::kReadCommitted;  // latest = LSO (committed) or HW
  struct PartitionData {
    TopicPartition tp;
    int64_t timestamp_ms = kLatestTimestamp;  // or kEarliestTimestamp, or: first offset with timestamp >= this
  };
  std::vector<PartitionData> partitions;
};

struct ListOffsetsResponse {
  struct PartitionResult {
    TopicPartition tp;
    ErrorCode error = ErrorCode::kNone;
    int64_t timestamp_ms = -1;
    int64_t offset = -1;  // -1 when no record has a timestamp >= the one asked
    int32_t leader_epoch = -1;
  };
  std::vector<PartitionResult> partitions;  // in request order
};

// --------------------------------------------------------------------------------------------------------------
// FindCoordinator (10)

enum class CoordinatorType : int8_t { kGroup = 0, kTransaction = 1 };

struct FindCoordinatorRequest {
  std::string key;  // group id or transactional id
  CoordinatorType key_type = CoordinatorType::kGroup;
};

struct FindCoordinatorResponse {
  ErrorCode error = ErrorCode::kNone;  // kCoordinatorNotAvailable while the internal partition has no leader
  BrokerId node_id = kNoBroker;
};

// --------------------------------------------------------------------------------------------------------------
// Transactions (KIP-98): InitProducerId (22), AddPartitionsToTxn (24), AddOffsetsToTxn (25), EndTxn (26),
// TxnOffsetCommit (28)

struct InitProducerIdRequest {
  std::optional<std::string> transactional_id;  // nullopt: idempotent-only producer (any broker answers)
  int32_t transaction_timeout_ms = 60000;
  // KIP-360: a producer that already has an id may pass it to get an epoch bump; -1 otherwise.
  int64_t producer_id = -1;
  int16_t producer_epoch = -1;
};

struct InitProducerIdResponse {
  // kNotCoordinator, kCoordinatorNotAvailable, kConcurrentTransactions (the previous transaction is still
  // completing: retry), kInvalidTransactionTimeout, kProducerFenced (KIP-360 epoch mismatch).
  ErrorCode error = ErrorCode::kNone;
  int64_t producer_id = -1;
  int16_t producer_epoch = -1;
};

struct AddPartitionsToTxnRequest {
  std::string transactional_id;
  int64_t producer_id = -1;
  int16_t producer_epoch = -1;
  std::vector<TopicPartition> partitions;
};

struct AddPartitionsToTxnResponse {
  struct PartitionResult {
    TopicPartition tp;
    ErrorCode error = ErrorCode::kNone;  // kProducerFenced, kInvalidTxnState, kConcurrentTransactions, ...
  };
  std::vector<PartitionResult> partitions;  // in request order
};

struct AddOffsetsToTxnRequest {
  std::string transactional_id;
  int64_t producer_id = -1;
  int16_t producer_epoch = -1;
  std::string group_id;
};

struct AddOffsetsToTxnResponse {
  ErrorCode error = ErrorCode::kNone;
};

struct EndTxnRequest {
  std::string transactional_id;
  int64_t producer_id = -1;
  int16_t producer_epoch = -1;
  bool committed = true;  // false: abort
};

struct EndTxnResponse {
  // Answered once the coordinator has written PrepareCommit/PrepareAbort; the markers follow asynchronously
  // (as in Kafka), and the next InitProducerId/AddPartitions gets kConcurrentTransactions until they are done.
  ErrorCode error = ErrorCode::kNone;
};

struct OffsetAndMetadata {
  TopicPartition tp;
  int64_t offset = -1;  // the next offset to consume
  int32_t leader_epoch = -1;
  std::string metadata;
};

struct TxnOffsetCommitRequest {
  std::string transactional_id;
  std::string group_id;
  int64_t producer_id = -1;
  int16_t producer_epoch = -1;
  // KIP-447 group metadata: the coordinator rejects a stale generation or unknown member.
  int32_t generation_id = -1;
  std::string member_id;
  std::optional<std::string> group_instance_id;
  std::vector<OffsetAndMetadata> offsets;
};

struct PartitionError {
  TopicPartition tp;
  ErrorCode error = ErrorCode::kNone;
};

struct TxnOffsetCommitResponse {
  std::vector<PartitionError> partitions;  // in request order
};

// --------------------------------------------------------------------------------------------------------------
// Consumer groups: JoinGroup (11), SyncGroup (14), Heartbeat (12), LeaveGroup (13), OffsetCommit (8),
// OffsetFetch (9). The coordinator never computes assignments: the leader member does, and SyncGroup relays it.

// The "consumer" protocol's subscription metadata (ConsumerProtocolSubscription), as a struct.
struct Subscription {
  std::vector<std::string> topics;
  std::vector<TopicPartition> owned_partitions;  // cooperative protocol (KIP-429)
  int32_t generation_id = -1;                     // the member's last generation (sticky assignors)
  std::string user_data;
};

// ConsumerProtocolAssignment, as a struct.
struct Assignment {
  std::vector<TopicPartition> partitions;
  std::string user_data;
};

struct JoinGroupRequest {
  std::string group_id;
  int32_t session_timeout_ms = 45000;
  int32_t rebalance_timeout_ms = 300000;  // the consumer's max.poll.interval.ms
  std::string member_id;                  // empty on the first join: the coordinator assigns one
  std::optional<std::string> group_instance_id;  // static membership (KIP-345)
  std::string protocol_type = "consumer";
  struct Protocol {
    std::string name;  // assignor name: "range", "roundrobin", "cooperative-sticky"
    Subscription metadata;
  };
  std::vector<Protocol> protocols;  // in preference order
};

struct JoinGroupResponse {
  // kUnknownMemberId, kInvalidSessionTimeout, kInconsistentGroupProtocol, kNotCoordinator,
  // kCoordinatorNotAvailable, kRebalanceInProgress (never: the join waits), kFencedInstanceId, kInvalidGroupId.
  ErrorCode error = ErrorCode::kNone;
  int32_t generation_id = -1;
  std::string protocol_type;
  std::string protocol_name;  // the assignor the group chose (one every member supports)
  std::string leader;
  std::string member_id;
  struct Member {
    std::string member_id;
    std::optional<std::string> group_instance_id;
    Subscription metadata;  // for protocol_name
  };
  std::vector<Member> members;  // filled for the leader only, ordered by member id
};

struct SyncGroupRequest {
  std::string group_id;
  int32_t generation_id = -1;
  std::string member_id;
  std::optional<std::string> group_instance_id;
  std::string protocol_type = "consumer";
  std::string protocol_name;
  struct MemberAssignment {
    std::string member_id;
    Assignment assignment;
  };
  std::vector<MemberAssignment> assignments;  // the leader's; empty from followers
};

struct SyncGroupResponse {
  // kIllegalGeneration, kUnknownMemberId, kRebalanceInProgress (a new rebalance began: rejoin), kNotCoordinator.
  ErrorCode error = ErrorCode::kNone;
  std::string protocol_type;
  std::string protocol_name;
  Assignment assignment;
};

struct HeartbeatRequest {
  std::string group_id;
  int32_t generation_id = -1;
  std::string member_id;
  std::optional<std::string> group_instance_id;
};

struct HeartbeatResponse {
  // kRebalanceInProgress (rejoin), kIllegalGeneration, kUnknownMemberId (session expired: rejoin with empty id),
  // kFencedInstanceId, kNotCoordinator, kCoordinatorNotAvailable.
  ErrorCode error = ErrorCode::kNone;
};

struct LeaveGroupRequest {
  std::string group_id;
  struct Member {
    std::string member_id;
    std::optional<std::string> group_instance_id;
  };
  std::vector<Member> members;
};

struct LeaveGroupResponse {
  ErrorCode error = ErrorCode::kNone;
  struct MemberResult {
    std::string member_id;
    std::optional<std::string> group_instance_id;
    ErrorCode error = ErrorCode::kNone;
  };
  std::vector<MemberResult> members;
};

struct OffsetCommitRequest {
  std::string group_id;
  // -1 and an empty member id: a "simple" commit (assign() users), accepted only while the group has no members.
  int32_t generation_id = -1;
  std::string member_id;
  std::optional<std::string> group_instance_id;
  std::vector<OffsetAndMetadata> offsets;
};

struct OffsetCommitResponse {
  // Per partition: kIllegalGeneration, kUnknownMemberId, kRebalanceInProgress, kNotCoordinator,
  // kCoordinatorNotAvailable, kOffsetMetadataTooLarge is not modelled.
  std::vector<PartitionError> partitions;  // in request order
};

struct OffsetFetchRequest {
  std::string group_id;
  std::optional<std::vector<TopicPartition>> partitions;  // nullopt: every partition with a committed offset
  bool require_stable = false;  // KIP-447: kUnstableOffsetCommit while a transactional commit is pending
};

struct OffsetFetchResponse {
  ErrorCode error = ErrorCode::kNone;  // top-level: kNotCoordinator, kCoordinatorNotAvailable, ...
  struct PartitionResult {
    TopicPartition tp;
    int64_t offset = -1;  // -1: nothing committed
    int32_t leader_epoch = -1;
    std::string metadata;
    ErrorCode error = ErrorCode::kNone;  // kUnstableOffsetCommit (require_stable, pending txn commit)
  };
  std::vector<PartitionResult> partitions;  // request order, or sorted for "all"
};

// --------------------------------------------------------------------------------------------------------------
// The request/response pair. Alternative i of Response answers alternative i of Request.

using Request = std::variant<MetadataRequest, CreateTopicsRequest, DeleteTopicsRequest, ProduceRequest, FetchRequest,
                             ListOffsetsRequest, FindCoordinatorRequest, InitProducerIdRequest,
                             AddPartitionsToTxnRequest, AddOffsetsToTxnRequest, EndTxnRequest,
                             TxnOffsetCommitRequest, JoinGroupRequest, SyncGroupRequest, HeartbeatRequest,
                             LeaveGroupRequest, OffsetCommitRequest, OffsetFetchRequest>;

using Response = std::variant<MetadataResponse, CreateTopicsResponse, DeleteTopicsResponse, ProduceResponse,
                              FetchResponse, ListOffsetsResponse, FindCoordinatorResponse, InitProducerIdResponse,
                              AddPartitionsToTxnResponse, AddOffsetsToTxnResponse, EndTxnResponse,
                              TxnOffsetCommitResponse, JoinGroupResponse, SyncGroupResponse, HeartbeatResponse,
                              LeaveGroupResponse, OffsetCommitResponse, OffsetFetchResponse>;

static_assert(std::variant_size_v<Request> == std::variant_size_v<Response>);

// Called at most once per request (never if the broker crashes first), from an executor event.
using Responder = std::function<void(Response)>;

[[nodiscard]] ApiKey api_key(const Request& request);

// The response of the request's type carrying `error` everywhere Kafka would put it (top level and/or every
// partition/topic/member of the request). For error injection, and for a network layer that must answer on a
// broker's behalf.
[[nodiscard]] Response error_response(const Request& request, ErrorCode error);

// The error a response carries: the top-level one, else the first non-kNone per-partition one (for logs/tests).
[[nodiscard]] ErrorCode first_error(const Response& response);

}  // namespace mephisto::sim
