// Faust's commit rule, pinned: per partition, commit the highest offset such that it and every offset
// delivered before it are acked, plus one; holes in the log are skipped; revoked partitions commit nothing;
// and when to commit (every interval or every N acks).
#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <map>
#include <vector>

#include "runtime/offsets/ack_tracker.h"
#include "runtime/offsets/commit_policy.h"

namespace mephisto {
namespace {

const TopicPartition kTp{"orders", 0};
const TopicPartition kOther{"orders", 1};

using Commits = std::map<TopicPartition, int64_t>;

void deliver(AckTracker& tracker, const TopicPartition& tp, const std::vector<int64_t>& offsets) {
  for (int64_t offset : offsets) ASSERT_EQ(tracker.on_delivered(tp, offset), AckError::kNone) << offset;
}

TEST(AckTracker, InOrderAcksAdvanceOnePastEachAck) {
  AckTracker tracker(16);
  tracker.assign(kTp, 0);
  deliver(tracker, kTp, {0, 1, 2});
  EXPECT_TRUE(tracker.committable().empty());
  ASSERT_EQ(tracker.ack(kTp, 0), AckError::kNone);
  EXPECT_EQ(tracker.committable(), (Commits{{kTp, 1}}));
  ASSERT_EQ(tracker.ack(kTp, 1), AckError::kNone);
  ASSERT_EQ(tracker.ack(kTp, 2), AckError::kNone);
  EXPECT_EQ(tracker.committable(), (Commits{{kTp, 3}}));
  EXPECT_EQ(tracker.outstanding(kTp), 0u);
}

TEST(AckTracker, OutOfOrderAcksHoldThePositionAtTheFirstUnackedOffset) {
  AckTracker tracker(16);
  tracker.assign(kTp, 10);
  deliver(tracker, kTp, {10, 11, 12, 13});
  ASSERT_EQ(tracker.ack(kTp, 12), AckError::kNone);
  ASSERT_EQ(tracker.ack(kTp, 11), AckError::kNone);
  EXPECT_TRUE(tracker.committable().empty()) << "10 is not acked";
  EXPECT_EQ(tracker.commit_position(kTp), 10);
  ASSERT_EQ(tracker.ack(kTp, 10), AckError::kNone);
  EXPECT_EQ(tracker.committable(), (Commits{{kTp, 13}})) << "13 is not acked";
  EXPECT_EQ(tracker.outstanding(kTp), 1u);
}

// The README's example: 7 is a transaction marker, never delivered.
TEST(AckTracker, HolesInTheDeliveredOffsetsAreSkipped) {
  AckTracker tracker(16);
  tracker.assign(kTp, 5);
  deliver(tracker, kTp, {5, 6, 8});
  ASSERT_EQ(tracker.ack(kTp, 6), AckError::kNone);
  ASSERT_EQ(tracker.ack(kTp, 8), AckError::kNone);
  EXPECT_TRUE(tracker.committable().empty()) << "5 is not acked";
  ASSERT_EQ(tracker.ack(kTp, 5), AckError::kNone);
  EXPECT_EQ(tracker.committable(), (Commits{{kTp, 9}}));
}

TEST(AckTracker, AHoleBeforeTheFirstDeliveredOffsetIsSkippedToo) {
  AckTracker tracker(16);
  tracker.assign(kTp, 3);  // 3 and 4 were compacted away
  deliver(tracker, kTp, {5});
  EXPECT_TRUE(tracker.committable().empty());
  ASSERT_EQ(tracker.ack(kTp, 5), AckError::kNone);
  EXPECT_EQ(tracker.committable(), (Commits{{kTp, 6}}));
}

TEST(AckTracker, DoubleAckAndAckOfUndeliveredAreErrorsThatChangeNothing) {
  AckTracker tracker(16);
  tracker.assign(kTp, 0);
  deliver(tracker, kTp, {0, 1, 3});
  EXPECT_EQ(tracker.ack(kTp, 2), AckError::kNotDelivered) << "a hole";
  EXPECT_EQ(tracker.ack(kTp, 4), AckError::kNotDelivered) << "beyond the last delivered";
  ASSERT_EQ(tracker.ack(kTp, 1), AckError::kNone);
  EXPECT_EQ(tracker.ack(kTp, 1), AckError::kAlreadyAcked) << "acked, waiting behind 0";
  ASSERT_EQ(tracker.ack(kTp, 0), AckError::kNone);
  EXPECT_EQ(tracker.ack(kTp, 0), AckError::kAlreadyAcked) << "below the commit position";
  EXPECT_EQ(tracker.ack(kOther, 0), AckError::kNotAssigned);
  EXPECT_EQ(tracker.committable(), (Commits{{kTp, 2}}));
  EXPECT_EQ(tracker.outstanding(kTp), 1u);
}

TEST(AckTracker, DeliveriesMustIncreaseAndStartAtTheAssignedPosition) {
  AckTracker tracker(16);
  EXPECT_EQ(tracker.on_delivered(kTp, 0), AckError::kNotAssigned);
  tracker.assign(kTp, 10);
  EXPECT_EQ(tracker.on_delivered(kTp, 9), AckError::kOutOfOrderDelivery);
  deliver(tracker, kTp, {10, 12});
  EXPECT_EQ(tracker.on_delivered(kTp, 12), AckError::kOutOfOrderDelivery);
  EXPECT_EQ(tracker.on_delivered(kTp, 11), AckError::kOutOfOrderDelivery);
  EXPECT_EQ(tracker.outstanding(kTp), 2u);
}

TEST(AckTracker, ErrorsConvertToSeamStatuses) {
  EXPECT_TRUE(to_status(AckError::kNone, kTp, 1).ok());
  EXPECT_EQ(to_status(AckError::kNotAssigned, kTp, 1).code(), ErrorCode::kState);
  EXPECT_EQ(to_status(AckError::kTooManyOutstanding, kTp, 1).code(), ErrorCode::kQueueFull);
  const Status status = to_status(AckError::kAlreadyAcked, kTp, 7);
  EXPECT_EQ(status.code(), ErrorCode::kInvalidArg);
  EXPECT_NE(status.error().message.find("AlreadyAcked"), std::string::npos) << status.error().message;
  EXPECT_NE(status.error().message.find(" 7"), std::string::npos) << status.error().message;
}

TEST(AckTracker, RevokeDropsPendingCommitsAndState) {
  AckTracker tracker(16);
  tracker.assign(kTp, 0);
  tracker.assign(kOther, 0);
  deliver(tracker, kTp, {0, 1});
  deliver(tracker, kOther, {0});
  ASSERT_EQ(tracker.ack(kTp, 0), AckError::kNone);
  ASSERT_EQ(tracker.ack(kOther, 0), AckError::kNone);
  tracker.revoke({kTp});
  EXPECT_EQ(tracker.committable(), (Commits{{kOther, 1}}));
  EXPECT_EQ(tracker.commit_position(kTp), std::nullopt);
  EXPECT_EQ(tracker.outstanding(kTp), 0u);
  EXPECT_EQ(tracker.ack(kTp, 1), AckError::kNotAssigned) << "an ack arriving after the revoke";
  // A commit that was in flight when the partition was revoked is marked without effect.
  tracker.mark_committed({{kTp, 1}});
  EXPECT_EQ(tracker.commit_position(kTp), std::nullopt);
}

TEST(AckTracker, ReassignmentStartsFreshFromTheNewPosition) {
  AckTracker tracker(16);
  tracker.assign(kTp, 0);
  deliver(tracker, kTp, {0, 1, 2});
  ASSERT_EQ(tracker.ack(kTp, 1), AckError::kNone);
  tracker.revoke({kTp});
  tracker.assign(kTp, 40);  // another member committed up to 40 meanwhile
  EXPECT_TRUE(tracker.committable().empty()) << "the assigned position is already committed";
  EXPECT_EQ(tracker.outstanding(kTp), 0u);
  EXPECT_EQ(tracker.on_delivered(kTp, 2), AckError::kOutOfOrderDelivery);
  deliver(tracker, kTp, {40});
  ASSERT_EQ(tracker.ack(kTp, 40), AckError::kNone);
  EXPECT_EQ(tracker.committable(), (Commits{{kTp, 41}}));
}

TEST(AckTracker, AssignWithoutRevokeAlsoReplacesTheState) {
  AckTracker tracker(16);
  tracker.assign(kTp, 0);
  deliver(tracker, kTp, {0});
  tracker.assign(kTp, 100);
  EXPECT_EQ(tracker.commit_position(kTp), 100);
  EXPECT_EQ(tracker.outstanding(kTp), 0u);
}

TEST(AckTracker, MarkCommittedReportsOnlyAdvances) {
  AckTracker tracker(16);
  tracker.assign(kTp, 0);
  tracker.assign(kOther, 0);
  deliver(tracker, kTp, {0, 1});
  deliver(tracker, kOther, {0});
  ASSERT_EQ(tracker.ack(kTp, 0), AckError::kNone);
  ASSERT_EQ(tracker.ack(kOther, 0), AckError::kNone);
  const Commits snapshot = tracker.committable();
  EXPECT_EQ(snapshot, (Commits{{kTp, 1}, {kOther, 1}}));
  ASSERT_EQ(tracker.ack(kTp, 1), AckError::kNone);  // acked while the commit is in flight
  tracker.mark_committed(snapshot);
  EXPECT_EQ(tracker.committable(), (Commits{{kTp, 2}})) << "kOther did not advance since the commit";
  tracker.mark_committed({{kTp, 2}});
  EXPECT_TRUE(tracker.committable().empty());
  tracker.mark_committed(snapshot);  // a stale snapshot marked late does not move the committed position back
  EXPECT_TRUE(tracker.committable().empty());
}

TEST(AckTracker, TheOutstandingLimitCountsOffsetsWaitingBehindAnUnackedOne) {
  AckTracker tracker(3);
  tracker.assign(kTp, 0);
  deliver(tracker, kTp, {0, 1, 2});
  EXPECT_EQ(tracker.on_delivered(kTp, 3), AckError::kTooManyOutstanding);
  // Acking 1 and 2 frees nothing while 0 holds the position: their entries must stay to advance past them
  // later.
  ASSERT_EQ(tracker.ack(kTp, 2), AckError::kNone);
  ASSERT_EQ(tracker.ack(kTp, 1), AckError::kNone);
  EXPECT_EQ(tracker.outstanding(kTp), 3u);
  EXPECT_EQ(tracker.on_delivered(kTp, 3), AckError::kTooManyOutstanding);
  EXPECT_EQ(tracker.ack(kTp, 3), AckError::kNotDelivered) << "a rejected delivery is not recorded";
  ASSERT_EQ(tracker.ack(kTp, 0), AckError::kNone);
  EXPECT_EQ(tracker.outstanding(kTp), 0u);
  EXPECT_EQ(tracker.on_delivered(kTp, 3), AckError::kNone)
      << "the same offset, delivered again after the pause";
  EXPECT_EQ(tracker.committable(), (Commits{{kTp, 3}}));
}

TEST(AckTracker, PartitionsAreIndependent) {
  AckTracker tracker(2);
  tracker.assign(kTp, 0);
  tracker.assign(kOther, 50);
  deliver(tracker, kTp, {0, 1});
  deliver(tracker, kOther, {50, 51});
  ASSERT_EQ(tracker.ack(kOther, 50), AckError::kNone);
  EXPECT_EQ(tracker.committable(), (Commits{{kOther, 51}}));
  EXPECT_EQ(tracker.ack(kTp, 50), AckError::kNotDelivered);
}

// ---------------------------------------------------------------------------------------------------------------
// CommitPolicy

TEST(CommitPolicy, DefaultsAreFausts) {
  const CommitPolicy policy;
  EXPECT_EQ(policy.commit_interval_ms(), 2800);
  EXPECT_EQ(policy.commit_every_acks(), 10000);
}

TEST(CommitPolicy, DueWhenTheIntervalElapsedWithSomethingAcked) {
  CommitPolicy policy(/*commit_interval_ms=*/1000, /*commit_every_acks=*/100, /*start_ms=*/500);
  EXPECT_FALSE(policy.due(5000)) << "nothing acked: nothing to commit";
  policy.on_ack();
  EXPECT_FALSE(policy.due(1499));
  EXPECT_EQ(policy.interval_deadline_ms(), 1500);
  EXPECT_TRUE(policy.due(1500));
  policy.on_committed(1600);
  EXPECT_EQ(policy.acks_since_commit(), 0);
  policy.on_ack();
  EXPECT_FALSE(policy.due(2599));
  EXPECT_TRUE(policy.due(2600));
  EXPECT_FALSE(policy.due(100)) << "a clock that went backwards delays, never hastens, a commit";
}

TEST(CommitPolicy, DueEveryNAcksWhateverTheTime) {
  CommitPolicy policy(/*commit_interval_ms=*/1000, /*commit_every_acks=*/3);
  policy.on_ack();
  policy.on_ack();
  EXPECT_FALSE(policy.due(0));
  policy.on_ack();
  EXPECT_TRUE(policy.due(0));
  policy.on_committed(10);
  EXPECT_FALSE(policy.due(10));
  for (int i = 0; i < 3; ++i) policy.on_ack();
  EXPECT_TRUE(policy.due(11));
}

// Found by `mephisto sim scenarios/swarm-at-least-once.textproto --seed 85`: an ack that arrived while a commit was
// in flight was forgotten when the commit finished, so the partition's last offset was never committed (the
// group's lag stayed at 1 for good once the input went quiet).
TEST(CommitPolicy, AcksArrivingDuringACommitKeepItDue) {
  CommitPolicy policy(/*commit_interval_ms=*/1000, /*commit_every_acks=*/100);
  policy.on_ack();
  const int64_t snapshot = policy.acks_since_commit();  // the commit takes its offsets here...
  policy.on_ack();                                       // ...and this ack arrives before it finishes
  policy.on_committed(1000, snapshot);
  EXPECT_EQ(policy.acks_since_commit(), 1);
  EXPECT_TRUE(policy.due(2000)) << "the ack that missed the commit must be committed at the next interval";
}

TEST(CommitPolicy, NotCallingOnCommittedAfterAFailureKeepsItDue) {
  CommitPolicy policy(/*commit_interval_ms=*/1000, /*commit_every_acks=*/100);
  policy.on_ack();
  EXPECT_TRUE(policy.due(1000));
  EXPECT_TRUE(policy.due(1001)) << "the commit failed, so it is still due";
}

// ---------------------------------------------------------------------------------------------------------------
// Property: against a model that keeps every delivered offset with an acked flag.

struct Model {
  int64_t assigned = 0;
  std::vector<int64_t> delivered;  // increasing
  std::vector<bool> acked;
  // Faust's rule, written the obvious way: one past the longest prefix of delivered offsets that are all
  // acked.
  int64_t commit_position() const {
    int64_t position = assigned;
    for (size_t i = 0; i < delivered.size() && acked[i]; ++i) position = delivered[i] + 1;
    return position;
  }
};

RC_GTEST_PROP(AckTrackerProperty, CommitPositionIsTheModelsAndNeverDecreases, ()) {
  const auto assigned = *rc::gen::inRange<int64_t>(0, 1000);
  const auto steps = *rc::gen::inRange<int>(1, 300);
  AckTracker tracker(1000);  // larger than any run: this property is about positions, not the limit
  tracker.assign(kTp, assigned);
  Model model;
  model.assigned = assigned;
  int64_t next = assigned + *rc::gen::inRange<int64_t>(0, 3);  // the log may start with a hole too
  int64_t committed = assigned;
  int64_t last_position = assigned;

  for (int step = 0; step < steps; ++step) {
    std::vector<size_t> unacked;
    for (size_t i = 0; i < model.delivered.size(); ++i) {
      if (!model.acked[i]) unacked.push_back(i);
    }
    const int action = *rc::gen::inRange(0, 10);
    if (unacked.empty() || action < 4) {
      RC_ASSERT(tracker.on_delivered(kTp, next) == AckError::kNone);
      model.delivered.push_back(next);
      model.acked.push_back(false);
      next += 1 + *rc::gen::weightedElement<int64_t>({{6, 0}, {2, 1}, {1, 5}});  // holes of random size
    } else if (action < 9) {
      const size_t i = unacked[*rc::gen::inRange<size_t>(0, unacked.size())];
      RC_ASSERT(tracker.ack(kTp, model.delivered[i]) == AckError::kNone);
      model.acked[i] = true;
    } else {
      // Caller bugs are rejected and change nothing.
      if (!model.delivered.empty()) {
        std::vector<size_t> acked;
        for (size_t i = 0; i < model.delivered.size(); ++i) {
          if (model.acked[i]) acked.push_back(i);
        }
        if (!acked.empty()) {
          const size_t i = acked[*rc::gen::inRange<size_t>(0, acked.size())];
          RC_ASSERT(tracker.ack(kTp, model.delivered[i]) == AckError::kAlreadyAcked);
        }
        RC_ASSERT(tracker.on_delivered(kTp, model.delivered.back()) == AckError::kOutOfOrderDelivery);
      }
      RC_ASSERT(tracker.ack(kTp, next + 1) == AckError::kNotDelivered);
      // And sometimes the committable positions are committed.
      tracker.mark_committed(tracker.committable());
      committed = tracker.commit_position(kTp).value();
    }

    const int64_t position = model.commit_position();
    RC_ASSERT(tracker.commit_position(kTp) == position);
    RC_ASSERT(position >= last_position);
    last_position = position;
    const Commits expected = position > committed ? Commits{{kTp, position}} : Commits{};
    RC_ASSERT(tracker.committable() == expected);
    size_t outstanding = 0;
    for (size_t i = 0; i < model.delivered.size(); ++i) outstanding += model.delivered[i] >= position ? 1 : 0;
    RC_ASSERT(tracker.outstanding(kTp) == outstanding);
  }
}

}  // namespace
}  // namespace mephisto
