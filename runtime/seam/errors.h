// Errors of the broker-client seam. Codes >= 0 are Kafka's protocol error codes, by the same name and number
// (see Kafka's org.apache.kafka.common.protocol.Errors); codes < 0 are client-side conditions and reuse
// librdkafka's numbers (rd_kafka_resp_err_t "local" errors), so the production binding maps 1:1.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <string_view>

namespace mephisto {

enum class ErrorCode : int16_t {
  // --- client-side (librdkafka local errors) ---
  kBadMessage = -199,           // a record could not be parsed (corrupt batch)
  kDestroy = -197,              // the client was closed while the call was outstanding
  kFail = -196,                 // generic local failure; the message says what
  kTransport = -195,            // broker connection lost
  kMessageTimedOut = -192,      // a record was not delivered within delivery.timeout.ms
  kPartitionEof = -191,         // reached the end of a partition (informational)
  kUnknownPartition = -190,     // partition not in the topic's metadata
  kUnknownTopic = -188,         // topic not in the cluster's metadata
  kAllBrokersDown = -187,       // no broker could be reached
  kInvalidArg = -186,           // the caller passed an invalid argument
  kTimedOut = -185,             // the operation did not finish within the caller's timeout
  kQueueFull = -184,            // the producer's queue limit was reached; retry after delivery reports
  kState = -172,                // the call is not valid in the object's current state (e.g. commit with no txn)
  kNotImplemented = -170,       // the binding does not support this call
  kFatal = -150,                // a fatal error occurred earlier; the client must be recreated
  kFenced = -144,               // this producer or consumer was fenced by a newer instance (local view)
  kNoOffset = -168,             // no committed offset and auto.offset.reset=error

  // --- Kafka protocol errors ---
  kNone = 0,
  kOffsetOutOfRange = 1,              // the requested offset is outside the log
  kCorruptMessage = 2,                // the record failed its CRC or is malformed
  kUnknownTopicOrPartition = 3,       // the broker does not host this topic-partition
  kLeaderNotAvailable = 5,            // a leader election is in progress
  kNotLeaderOrFollower = 6,           // this broker is not the partition's leader; refresh metadata
  kRequestTimedOut = 7,               // the broker timed out waiting (e.g. for acks=all replication)
  kBrokerNotAvailable = 8,            // the broker is down
  kMessageTooLarge = 10,              // the record exceeds max.message.bytes
  kNetworkException = 13,             // the connection broke mid-request
  kCoordinatorLoadInProgress = 14,    // the coordinator is loading its state; retry
  kCoordinatorNotAvailable = 15,      // no coordinator is available for the group or transactional id
  kNotCoordinator = 16,               // this broker is not the coordinator; find it again
  kInvalidTopicException = 17,        // the topic name is invalid (or internal)
  kRecordListTooLarge = 18,           // the batch exceeds the broker's limit
  kNotEnoughReplicas = 19,            // fewer in-sync replicas than min.insync.replicas; not written
  kNotEnoughReplicasAfterAppend = 20, // written, but too few in-sync replicas acknowledged it
  kInvalidRequiredAcks = 21,          // acks must be -1, 0 or 1
  kIllegalGeneration = 22,            // the member's generation is stale
  kInconsistentGroupProtocol = 23,    // the member's protocols do not match the group's
  kInvalidGroupId = 24,               // empty or invalid group id
  kUnknownMemberId = 25,              // the coordinator does not know this member (e.g. after session timeout)
  kInvalidSessionTimeout = 26,        // session timeout outside the broker's allowed range
  kRebalanceInProgress = 27,          // the group is rebalancing; rejoin
  kInvalidCommitOffsetSize = 28,      // offset metadata too large
  kInvalidTimestamp = 32,             // the record's timestamp is out of the allowed range
  kTopicAlreadyExists = 36,           // create of an existing topic
  kInvalidPartitions = 37,            // partition count must be >= 1
  kInvalidReplicationFactor = 38,     // replication factor must be >= 1 and <= the number of brokers
  kInvalidConfig = 40,                // an unknown or invalid topic config
  kInvalidRequest = 42,               // the request is malformed
  kOutOfOrderSequenceNumber = 45,     // idempotence: a sequence gap; the broker refuses the batch
  kDuplicateSequenceNumber = 46,      // idempotence: the batch was already written (treated as success)
  kInvalidProducerEpoch = 47,         // the producer's epoch is stale (a newer instance exists)
  kInvalidTxnState = 48,              // the transactional call is not valid in the transaction's state
  kInvalidProducerIdMapping = 49,     // the producer id is not mapped to this transactional id
  kInvalidTransactionTimeout = 50,    // transaction.timeout.ms exceeds the broker's maximum
  kConcurrentTransactions = 51,       // the previous transaction is still completing; retry
  kTransactionCoordinatorFenced = 52, // the coordinator was replaced
  kUnknownProducerId = 59,            // the broker has no state for this producer id
  kGroupIdNotFound = 69,              // the group does not exist
  kMemberIdRequired = 79,             // rejoin with the member id the coordinator assigned
  kGroupMaxSizeReached = 81,          // the group is full
  kFencedInstanceId = 82,             // a static member with the same instance id replaced this one
  kInvalidRecord = 87,                // the broker rejected the record (e.g. no key on a compacted topic)
  kUnstableOffsetCommit = 88,         // a transactional offset commit for this partition is pending
  kProducerFenced = 90,               // a newer producer with the same transactional.id exists
};

// The Kafka name of a code, e.g. "PRODUCER_FENCED" or "_TIMED_OUT" for local errors.
[[nodiscard]] std::string_view error_name(ErrorCode code);

// Kafka's classification of protocol errors: the client may retry the same request.
[[nodiscard]] bool is_retriable(ErrorCode code);

// An error value: the code plus what the caller needs to decide what to do next. Mirrors rd_kafka_error_t.
struct Error {
  ErrorCode code = ErrorCode::kNone;
  std::string message;
  // The operation may succeed if repeated as is.
  bool retriable = false;
  // The client instance is unusable (e.g. fenced producer, idempotence broken); recreate it.
  bool fatal = false;
  // Transactional producer only: the current transaction must be aborted before anything else.
  bool txn_requires_abort = false;

  [[nodiscard]] bool ok() const { return code == ErrorCode::kNone; }
  [[nodiscard]] std::string to_string() const;

  // An error with flags derived from the code (retriable from Kafka's table; fatal for fencing).
  static Error of(ErrorCode code, std::string message = {});
};

std::ostream& operator<<(std::ostream& out, ErrorCode code);
std::ostream& operator<<(std::ostream& out, const Error& error);

}  // namespace mephisto
