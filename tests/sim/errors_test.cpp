// The error seam: Kafka's names and retriable/fatal classification, which both bindings and every retry loop
// depend on.
#include "runtime/seam/errors.h"

#include <sstream>

#include <gtest/gtest.h>

#include "runtime/seam/broker_client.h"
#include "runtime/seam/result.h"

namespace mephisto {
namespace {

TEST(Errors, NamesAreKafkasAndLibrdkafkas) {
  EXPECT_EQ(error_name(ErrorCode::kNone), "NONE");
  EXPECT_EQ(error_name(ErrorCode::kProducerFenced), "PRODUCER_FENCED");
  EXPECT_EQ(error_name(ErrorCode::kNotLeaderOrFollower), "NOT_LEADER_OR_FOLLOWER");
  EXPECT_EQ(error_name(ErrorCode::kUnstableOffsetCommit), "UNSTABLE_OFFSET_COMMIT");
  EXPECT_EQ(error_name(ErrorCode::kTimedOut), "_TIMED_OUT");
  EXPECT_EQ(error_name(ErrorCode::kMessageTimedOut), "_MSG_TIMED_OUT");
  EXPECT_EQ(error_name(ErrorCode::kFenced), "_FENCED");
  EXPECT_EQ(error_name(static_cast<ErrorCode>(12345)), "UNKNOWN");
}

TEST(Errors, CodesKeepKafkaNumbers) {
  // The production binding casts librdkafka's numbers straight in; spot-check the mapping.
  EXPECT_EQ(static_cast<int>(ErrorCode::kProducerFenced), 90);
  EXPECT_EQ(static_cast<int>(ErrorCode::kNotLeaderOrFollower), 6);
  EXPECT_EQ(static_cast<int>(ErrorCode::kTimedOut), -185);
  EXPECT_EQ(static_cast<int>(ErrorCode::kFenced), -144);
}

TEST(Errors, RetriableFollowsKafka) {
  for (ErrorCode code :
       {ErrorCode::kNotLeaderOrFollower, ErrorCode::kRequestTimedOut, ErrorCode::kNetworkException,
        ErrorCode::kCoordinatorLoadInProgress, ErrorCode::kCoordinatorNotAvailable,
        ErrorCode::kNotCoordinator, ErrorCode::kNotEnoughReplicas, ErrorCode::kNotEnoughReplicasAfterAppend,
        ErrorCode::kLeaderNotAvailable, ErrorCode::kUnknownTopicOrPartition,
        ErrorCode::kConcurrentTransactions, ErrorCode::kUnstableOffsetCommit, ErrorCode::kCorruptMessage,
        ErrorCode::kTransport, ErrorCode::kTimedOut, ErrorCode::kAllBrokersDown}) {
    EXPECT_TRUE(is_retriable(code)) << code;
  }
  for (ErrorCode code :
       {ErrorCode::kNone, ErrorCode::kProducerFenced, ErrorCode::kInvalidProducerEpoch,
        ErrorCode::kOffsetOutOfRange, ErrorCode::kRebalanceInProgress, ErrorCode::kIllegalGeneration,
        ErrorCode::kUnknownMemberId, ErrorCode::kInvalidTxnState, ErrorCode::kOutOfOrderSequenceNumber,
        ErrorCode::kTopicAlreadyExists, ErrorCode::kMessageTooLarge, ErrorCode::kFatal, ErrorCode::kState,
        ErrorCode::kInvalidArg}) {
    EXPECT_FALSE(is_retriable(code)) << code;
  }
}

TEST(Errors, OfDerivesFlags) {
  const Error fenced = Error::of(ErrorCode::kProducerFenced, "epoch 3 < 4");
  EXPECT_TRUE(fenced.fatal);
  EXPECT_FALSE(fenced.retriable);
  EXPECT_FALSE(fenced.ok());
  EXPECT_EQ(fenced.message, "epoch 3 < 4");
  EXPECT_TRUE(Error::of(ErrorCode::kInvalidProducerEpoch).fatal);
  EXPECT_TRUE(Error::of(ErrorCode::kFenced).fatal);
  EXPECT_TRUE(Error::of(ErrorCode::kFatal).fatal);

  const Error moved = Error::of(ErrorCode::kNotLeaderOrFollower);
  EXPECT_TRUE(moved.retriable);
  EXPECT_FALSE(moved.fatal);
  EXPECT_FALSE(moved.txn_requires_abort);

  EXPECT_TRUE(Error::of(ErrorCode::kNone).ok());
}

TEST(Errors, Printing) {
  EXPECT_EQ(Error::of(ErrorCode::kProducerFenced, "newer epoch").to_string(),
            "PRODUCER_FENCED: newer epoch [fatal]");
  EXPECT_EQ(Error::of(ErrorCode::kRequestTimedOut).to_string(), "REQUEST_TIMED_OUT [retriable]");
  std::ostringstream out;
  out << static_cast<ErrorCode>(12345) << ' ' << ErrorCode::kTimedOut;
  EXPECT_EQ(out.str(), "UNKNOWN(12345) _TIMED_OUT");
}

TEST(Errors, ResultCarriesTheError) {
  Result<int> bad = Error::of(ErrorCode::kNotCoordinator);
  EXPECT_FALSE(bad.ok());
  EXPECT_EQ(bad.code(), ErrorCode::kNotCoordinator);
  EXPECT_TRUE(bad.error().retriable);
  Result<int> good = 5;
  EXPECT_EQ(*good, 5);
  Status fine = Error::of(ErrorCode::kNone);  // a kNone error is success
  EXPECT_TRUE(fine.ok());
}

TEST(TopicPartition, PrintsLikeKafka) {
  std::ostringstream out;
  out << TopicPartition{"orders", 3};
  EXPECT_EQ(out.str(), "orders-3");
}

}  // namespace
}  // namespace mephisto
