#include "runtime/seam/errors.h"

#include <sstream>

namespace mephisto {

std::string_view error_name(ErrorCode code) {
  // Names are Kafka's (org.apache.kafka.common.protocol.Errors) for protocol codes and librdkafka's
  // (rd_kafka_err2name) for local ones, so logs read the same in both worlds and grep across them.
  switch (code) {
    case ErrorCode::kBadMessage:
      return "_BAD_MSG";
    case ErrorCode::kDestroy:
      return "_DESTROY";
    case ErrorCode::kFail:
      return "_FAIL";
    case ErrorCode::kTransport:
      return "_TRANSPORT";
    case ErrorCode::kMessageTimedOut:
      return "_MSG_TIMED_OUT";
    case ErrorCode::kPartitionEof:
      return "_PARTITION_EOF";
    case ErrorCode::kUnknownPartition:
      return "_UNKNOWN_PARTITION";
    case ErrorCode::kUnknownTopic:
      return "_UNKNOWN_TOPIC";
    case ErrorCode::kAllBrokersDown:
      return "_ALL_BROKERS_DOWN";
    case ErrorCode::kInvalidArg:
      return "_INVALID_ARG";
    case ErrorCode::kTimedOut:
      return "_TIMED_OUT";
    case ErrorCode::kQueueFull:
      return "_QUEUE_FULL";
    case ErrorCode::kState:
      return "_STATE";
    case ErrorCode::kNotImplemented:
      return "_NOT_IMPLEMENTED";
    case ErrorCode::kFatal:
      return "_FATAL";
    case ErrorCode::kFenced:
      return "_FENCED";
    case ErrorCode::kNoOffset:
      return "_NO_OFFSET";

    case ErrorCode::kNone:
      return "NONE";
    case ErrorCode::kOffsetOutOfRange:
      return "OFFSET_OUT_OF_RANGE";
    case ErrorCode::kCorruptMessage:
      return "CORRUPT_MESSAGE";
    case ErrorCode::kUnknownTopicOrPartition:
      return "UNKNOWN_TOPIC_OR_PARTITION";
    case ErrorCode::kLeaderNotAvailable:
      return "LEADER_NOT_AVAILABLE";
    case ErrorCode::kNotLeaderOrFollower:
      return "NOT_LEADER_OR_FOLLOWER";
    case ErrorCode::kRequestTimedOut:
      return "REQUEST_TIMED_OUT";
    case ErrorCode::kBrokerNotAvailable:
      return "BROKER_NOT_AVAILABLE";
    case ErrorCode::kMessageTooLarge:
      return "MESSAGE_TOO_LARGE";
    case ErrorCode::kNetworkException:
      return "NETWORK_EXCEPTION";
    case ErrorCode::kCoordinatorLoadInProgress:
      return "COORDINATOR_LOAD_IN_PROGRESS";
    case ErrorCode::kCoordinatorNotAvailable:
      return "COORDINATOR_NOT_AVAILABLE";
    case ErrorCode::kNotCoordinator:
      return "NOT_COORDINATOR";
    case ErrorCode::kInvalidTopicException:
      return "INVALID_TOPIC_EXCEPTION";
    case ErrorCode::kRecordListTooLarge:
      return "RECORD_LIST_TOO_LARGE";
    case ErrorCode::kNotEnoughReplicas:
      return "NOT_ENOUGH_REPLICAS";
    case ErrorCode::kNotEnoughReplicasAfterAppend:
      return "NOT_ENOUGH_REPLICAS_AFTER_APPEND";
    case ErrorCode::kInvalidRequiredAcks:
      return "INVALID_REQUIRED_ACKS";
    case ErrorCode::kIllegalGeneration:
      return "ILLEGAL_GENERATION";
    case ErrorCode::kInconsistentGroupProtocol:
      return "INCONSISTENT_GROUP_PROTOCOL";
    case ErrorCode::kInvalidGroupId:
      return "INVALID_GROUP_ID";
    case ErrorCode::kUnknownMemberId:
      return "UNKNOWN_MEMBER_ID";
    case ErrorCode::kInvalidSessionTimeout:
      return "INVALID_SESSION_TIMEOUT";
    case ErrorCode::kRebalanceInProgress:
      return "REBALANCE_IN_PROGRESS";
    case ErrorCode::kInvalidCommitOffsetSize:
      return "INVALID_COMMIT_OFFSET_SIZE";
    case ErrorCode::kInvalidTimestamp:
      return "INVALID_TIMESTAMP";
    case ErrorCode::kTopicAlreadyExists:
      return "TOPIC_ALREADY_EXISTS";
    case ErrorCode::kInvalidPartitions:
      return "INVALID_PARTITIONS";
    case ErrorCode::kInvalidReplicationFactor:
      return "INVALID_REPLICATION_FACTOR";
    case ErrorCode::kInvalidConfig:
      return "INVALID_CONFIG";
    case ErrorCode::kInvalidRequest:
      return "INVALID_REQUEST";
    case ErrorCode::kOutOfOrderSequenceNumber:
      return "OUT_OF_ORDER_SEQUENCE_NUMBER";
    case ErrorCode::kDuplicateSequenceNumber:
      return "DUPLICATE_SEQUENCE_NUMBER";
    case ErrorCode::kInvalidProducerEpoch:
      return "INVALID_PRODUCER_EPOCH";
    case ErrorCode::kInvalidTxnState:
      return "INVALID_TXN_STATE";
    case ErrorCode::kInvalidProducerIdMapping:
      return "INVALID_PRODUCER_ID_MAPPING";
    case ErrorCode::kInvalidTransactionTimeout:
      return "INVALID_TRANSACTION_TIMEOUT";
    case ErrorCode::kConcurrentTransactions:
      return "CONCURRENT_TRANSACTIONS";
    case ErrorCode::kTransactionCoordinatorFenced:
      return "TRANSACTION_COORDINATOR_FENCED";
    case ErrorCode::kUnknownProducerId:
      return "UNKNOWN_PRODUCER_ID";
    case ErrorCode::kGroupIdNotFound:
      return "GROUP_ID_NOT_FOUND";
    case ErrorCode::kMemberIdRequired:
      return "MEMBER_ID_REQUIRED";
    case ErrorCode::kGroupMaxSizeReached:
      return "GROUP_MAX_SIZE_REACHED";
    case ErrorCode::kFencedInstanceId:
      return "FENCED_INSTANCE_ID";
    case ErrorCode::kInvalidRecord:
      return "INVALID_RECORD";
    case ErrorCode::kUnstableOffsetCommit:
      return "UNSTABLE_OFFSET_COMMIT";
    case ErrorCode::kProducerFenced:
      return "PRODUCER_FENCED";
  }
  // A value outside the enum (e.g. a newer broker's code cast in by a binding): operator<< adds the number.
  return "UNKNOWN";
}

bool is_retriable(ErrorCode code) {
  switch (code) {
    // Kafka: the exception classes of these codes extend RetriableException.
    case ErrorCode::kCorruptMessage:  // CorruptRecordException: a corrupt fetch may read fine the next time
    case ErrorCode::kUnknownTopicOrPartition:
    case ErrorCode::kLeaderNotAvailable:
    case ErrorCode::kNotLeaderOrFollower:
    case ErrorCode::kRequestTimedOut:
    case ErrorCode::kNetworkException:
    case ErrorCode::kCoordinatorLoadInProgress:
    case ErrorCode::kCoordinatorNotAvailable:
    case ErrorCode::kNotCoordinator:
    case ErrorCode::kNotEnoughReplicas:
    case ErrorCode::kNotEnoughReplicasAfterAppend:
    case ErrorCode::kConcurrentTransactions:
    case ErrorCode::kUnstableOffsetCommit:
    // Local conditions that a later attempt of the same call can get past (connection re-established, broker
    // back, producer queue drained by delivery reports).
    case ErrorCode::kTransport:
    case ErrorCode::kTimedOut:
    case ErrorCode::kAllBrokersDown:
    case ErrorCode::kQueueFull:
      return true;
    default:
      return false;
  }
}

namespace {

// Fatal to the client instance: a newer instance owns the identity (fencing), or the client already hit a
// fatal error. Kafka's transactional producer treats PRODUCER_FENCED and INVALID_PRODUCER_EPOCH as fatal, and
// librdkafka raises a fatal error when a static group member is fenced (FENCED_INSTANCE_ID).
bool is_fatal(ErrorCode code) {
  switch (code) {
    case ErrorCode::kProducerFenced:
    case ErrorCode::kInvalidProducerEpoch:
    case ErrorCode::kFencedInstanceId:
    case ErrorCode::kFenced:
    case ErrorCode::kFatal:
      return true;
    default:
      return false;
  }
}

}  // namespace

Error Error::of(ErrorCode code, std::string message) {
  Error error;
  error.code = code;
  error.message = std::move(message);
  error.fatal = is_fatal(code);
  // A fatal error is never worth retrying, whatever the code's class.
  error.retriable = !error.fatal && is_retriable(code);
  return error;
}

std::string Error::to_string() const {
  std::ostringstream out;
  out << *this;
  return out.str();
}

std::ostream& operator<<(std::ostream& out, ErrorCode code) {
  const std::string_view name = error_name(code);
  out << name;
  if (name == "UNKNOWN") out << '(' << static_cast<int>(code) << ')';
  return out;
}

std::ostream& operator<<(std::ostream& out, const Error& error) {
  out << error.code;
  if (!error.message.empty()) out << ": " << error.message;
  if (error.retriable) out << " [retriable]";
  if (error.fatal) out << " [fatal]";
  if (error.txn_requires_abort) out << " [txn requires abort]";
  return out;
}

}  // namespace mephisto
