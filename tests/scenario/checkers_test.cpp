// The checkers on hand-built histories and final logs: each invariant holds on a clean pipeline run and is
// violated by an anomaly crafted for it; at least once allows duplicates; expected violations flip the
// verdict.
#include "sim/scenario/checkers.h"

#include "agents/examples.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace mephisto::sim::scenario {
namespace {

using mephisto::scenario::ABORTED_READS;
using mephisto::scenario::DIFFERENTIAL;
using mephisto::scenario::DUPLICATES;
using mephisto::scenario::INCONSISTENT_OFFSETS;
using mephisto::scenario::LIVENESS;
using mephisto::scenario::LOST_WRITES;
using mephisto::scenario::NON_MONOTONIC;
using mephisto::scenario::POLL_SKIPS;
using mephisto::scenario::TABLE_ORACLE;
using mephisto::scenario::UNSEEN;
using ::testing::HasSubstr;

constexpr ProcessId kWorkload = 1;
constexpr ProcessId kWorker = 2;
constexpr uint64_t kWorkloadClient = 1;
constexpr uint64_t kConsumerClient = 2;
constexpr uint64_t kWorkerProducer = 3;

HistoryEvent event(HistoryKind kind, int64_t time_ms, ProcessId process, uint64_t client, TopicPartition tp,
                   int64_t offset) {
  HistoryEvent e;
  e.kind = kind;
  e.time_ms = time_ms;
  e.process = process;
  e.incarnation = 1;
  e.client = client;
  e.tp = std::move(tp);
  e.offset = offset;
  return e;
}

LogRecord record(int64_t offset, std::string key, std::optional<std::string> value,
                 LogRecord::Status status = LogRecord::kPlain) {
  return LogRecord{offset, std::move(key), std::move(value), status, status == LogRecord::kPlain ? -1 : 7};
}

// A clean tablecount run (its model from agents/, as `mephisto sim` gets it): the workload writes v0..v3
// (keys a, b, a, c) to in/0; the worker polls them all (read_committed, group g), writes "<value> <count>" to
// out/0 and the counts to the changelog, and commits offset 4.
class Pipeline {
 public:
  Pipeline() {
    in.app = &model;
    in.input_topic = "in";
    in.output_topic = "out";
    in.changelog_topic = "changelog";
    in.group = "g";
    in.workload_process = kWorkload;
    in.worker_processes = {kWorker};
    in.settled = true;
    in.settled_after_ms = 100;
    in.liveness_bound_ms = 1000;
    in.committed[TopicPartition{"in", 0}] = 4;
    const std::vector<std::pair<std::string, std::string>> inputs = {
        {"a", "v0"}, {"b", "v1"}, {"a", "v2"}, {"c", "v3"}};
    for (size_t i = 0; i < inputs.size(); ++i) {
      const auto offset = static_cast<int64_t>(i);
      in.input_log[0].push_back(record(offset, inputs[i].first, inputs[i].second));
      ack(10 + offset, "in", 0, offset, inputs[i].first, inputs[i].second);
    }
    // Output: one committed transaction (results at 0..3, its marker at 4).
    const std::vector<std::string> results = {"v0 1", "v1 1", "v2 2", "v3 1"};
    for (size_t i = 0; i < results.size(); ++i)
      in.output_log[0].push_back(
          record(static_cast<int64_t>(i), inputs[i].first, results[i], LogRecord::kCommitted));
    in.changelog_log[0] = {
        record(0, "a", "1", LogRecord::kCommitted), record(1, "b", "1", LogRecord::kCommitted),
        record(2, "a", "2", LogRecord::kCommitted), record(3, "c", "1", LogRecord::kCommitted)};
    HistoryEvent assigned = event(HistoryKind::kAssigned, 20, kWorker, kConsumerClient, {"in", 0}, -1);
    assigned.group = "g";
    assigned.generation = 1;
    add(assigned);
    add(consumer_event(HistoryKind::kPositioned, 21, "in", 0, 0));
    for (int64_t offset = 0; offset < 4; ++offset) poll(30 + offset, "in", 0, offset);
  }

  HistoryEvent consumer_event(HistoryKind kind, int64_t time_ms, const std::string& topic, int32_t partition,
                              int64_t offset) {
    HistoryEvent e = event(kind, time_ms, kWorker, kConsumerClient, {topic, partition}, offset);
    e.group = "g";
    e.read_committed = true;
    return e;
  }
  void add(HistoryEvent e) { history.add(std::move(e)); }
  void ack(int64_t time_ms, const std::string& topic, int32_t partition, int64_t offset, std::string key,
           std::string value, ProcessId process = kWorkload, uint64_t client = kWorkloadClient) {
    HistoryEvent e = event(HistoryKind::kSendAcked, time_ms, process, client, {topic, partition}, offset);
    e.key = std::move(key);
    e.value = std::move(value);
    add(std::move(e));
  }
  // Polls what the final log holds at (topic, partition, offset), as the read_committed worker consumer.
  void poll(int64_t time_ms, const std::string& topic, int32_t partition, int64_t offset,
            bool read_committed = true) {
    const TopicLog& log = topic == "in" ? in.input_log : topic == "out" ? in.output_log : in.changelog_log;
    const LogRecord* found = nullptr;
    for (const auto& r : log.at(partition))
      if (r.offset == offset) found = &r;
    ASSERT_NE(found, nullptr);
    poll_as(time_ms, topic, partition, offset, found->key, found->value, read_committed);
  }
  void poll_as(int64_t time_ms, const std::string& topic, int32_t partition, int64_t offset,
               std::optional<std::string> key, std::optional<std::string> value, bool read_committed = true) {
    HistoryEvent e = consumer_event(HistoryKind::kPolled, time_ms, topic, partition, offset);
    e.key = std::move(key);
    e.value = std::move(value);
    e.read_committed = read_committed;
    add(std::move(e));
  }

  Verdict check(Invariant invariant, std::vector<Invariant> expected = {}) {
    in.history = &history;
    const auto verdicts = run_checkers(in, {}, expected);
    EXPECT_EQ(verdicts.size(), 10u);  // DUPLICATES..DIFFERENTIAL
    for (const auto& v : verdicts)
      if (v.invariant == invariant) return v;
    ADD_FAILURE() << "no verdict for " << invariant_name(invariant);
    return {};
  }

  // tablecount's model: one result "<input value> <count>" per input, a count per key in the table.
  ScenarioSupport model = *examples::table_count_app().scenario;
  History history;
  CheckInput in;
};

std::string first_example(const Verdict& v) {
  return v.examples.empty() ? std::string() : v.examples[0].text;
}

TEST(Checkers, CleanPipelineHoldsEverything) {
  Pipeline p;
  p.in.history = &p.history;
  const auto verdicts = run_checkers(p.in, {}, {});
  ASSERT_EQ(verdicts.size(), 10u);
  int expected_invariant = DUPLICATES;
  for (const auto& v : verdicts) {
    EXPECT_EQ(v.invariant, expected_invariant++) << "one verdict per invariant, in enum order";
    // The differential oracle's outcome comes from the runner (reference runs); none given, none checked.
    const VerdictStatus status =
        v.invariant == DIFFERENTIAL ? VerdictStatus::kNotChecked : VerdictStatus::kHeld;
    EXPECT_EQ(v.status, status) << invariant_name(v.invariant) << ": " << first_example(v);
    EXPECT_EQ(v.count, 0);
  }
  EXPECT_EQ(verdicts[LIVENESS - DUPLICATES].note, "settled 100 ms after the heal (bound 1000 ms)");
}

TEST(Checkers, DuplicateInputValueAndDuplicateResult) {
  Pipeline p;
  // The workload's value v1 written twice (a producer retry without idempotence), processed twice.
  p.in.input_log[0].push_back(record(4, "b", "v1"));
  p.in.output_log[0].push_back(record(4, "b", "v1 2", LogRecord::kCommitted));
  p.in.changelog_log[0].push_back(record(4, "b", "2", LogRecord::kCommitted));
  const Verdict v = p.check(DUPLICATES);
  EXPECT_EQ(v.status, VerdictStatus::kViolated);
  EXPECT_EQ(v.count, 2);
  EXPECT_THAT(first_example(v), HasSubstr("in/0@1"));
  EXPECT_THAT(first_example(v), HasSubstr("in/0@4"));
}

TEST(Checkers, ResultOfAnAbortedTransactionIsNoDuplicate) {
  Pipeline p;
  p.in.output_log[0].push_back(record(4, "b", "v1 2", LogRecord::kAborted));
  EXPECT_EQ(p.check(DUPLICATES).status, VerdictStatus::kHeld);
}

TEST(Checkers, DuplicatesAreAllowedAtLeastOnce) {
  Pipeline p;
  p.in.exactly_once = false;
  p.in.output_log[0].push_back(record(4, "b", "v1 2"));
  const Verdict v = p.check(DUPLICATES);
  EXPECT_EQ(v.status, VerdictStatus::kAllowed);
  EXPECT_EQ(v.count, 1);
  EXPECT_EQ(v.note, "allowed: at_least_once");
  EXPECT_FALSE(verdict_fails(v.status));
}

TEST(Checkers, AckedWriteMissingFromTheLogIsLost) {
  Pipeline p;
  p.ack(15, "in", 0, 4, "d", "v4");  // acknowledged, then truncated away by an unclean election
  const Verdict v = p.check(LOST_WRITES);
  EXPECT_EQ(v.status, VerdictStatus::kViolated);
  EXPECT_EQ(v.count, 1);
  EXPECT_EQ(v.examples[0].time_ms, 15);
  EXPECT_THAT(first_example(v), HasSubstr("\"v4\""));
  // Lost writes are never allowed, whatever the guarantee.
  p.in.exactly_once = false;
  EXPECT_EQ(p.check(LOST_WRITES).status, VerdictStatus::kViolated);
}

TEST(Checkers, CommittedInputWithoutOutputIsLost) {
  Pipeline p;
  p.in.output_log[0][2].status = LogRecord::kAborted;  // v2's result aborted, but offset 4 was committed
  const Verdict v = p.check(LOST_WRITES);
  EXPECT_EQ(v.status, VerdictStatus::kViolated);
  EXPECT_THAT(first_example(v), HasSubstr("committed input with no output: in/0@2"));
  // Below the committed offset only: with offset 2 committed, v2 is still to be processed.
  p.in.committed[TopicPartition{"in", 0}] = 2;
  EXPECT_EQ(p.check(LOST_WRITES).status, VerdictStatus::kHeld);
}

TEST(Checkers, ReadCommittedPollOfAnAbortedRecord) {
  Pipeline p;
  p.in.output_log[0].push_back(record(4, "x", "zombie 1", LogRecord::kAborted));
  p.in.output_log[0].push_back(record(5, "y", "hanging 1", LogRecord::kOpen));
  p.poll(50, "out", 0, 4, /*read_committed=*/false);  // read_uncommitted may see it
  EXPECT_EQ(p.check(ABORTED_READS).status, VerdictStatus::kHeld);
  p.poll(51, "out", 0, 4);
  p.poll(52, "out", 0, 5);
  const Verdict v = p.check(ABORTED_READS);
  EXPECT_EQ(v.status, VerdictStatus::kViolated);
  EXPECT_EQ(v.count, 2);
  EXPECT_THAT(first_example(v), HasSubstr("out/0@4"));
  EXPECT_THAT(first_example(v), HasSubstr("aborted"));
  EXPECT_THAT(v.examples[1].text, HasSubstr("open"));
}

TEST(Checkers, OneOffsetReadAsTwoRecords) {
  Pipeline p;
  p.poll_as(50, "in", 0, 1, "b", "v9");
  const Verdict v = p.check(INCONSISTENT_OFFSETS);
  EXPECT_EQ(v.status, VerdictStatus::kViolated);
  EXPECT_THAT(first_example(v), HasSubstr("in/0@1"));
  EXPECT_THAT(first_example(v), HasSubstr("\"v9\""));
}

TEST(Checkers, OffsetsOutsideTheFinalLogAreComparedAcrossTheHistory) {
  Pipeline p;
  // Offset 9 of in/0 is not in the final log (truncated): an ack and a poll disagree about it.
  p.ack(40, "in", 0, 9, "z", "v9");
  p.poll_as(41, "in", 0, 9, "z", "v9");
  EXPECT_EQ(p.check(INCONSISTENT_OFFSETS).status, VerdictStatus::kHeld);
  p.poll_as(42, "in", 0, 9, "z", "v10");
  EXPECT_EQ(p.check(INCONSISTENT_OFFSETS).status, VerdictStatus::kViolated);
}

TEST(Checkers, PollGoingBackwardsWithinOnePositioning) {
  Pipeline p;
  p.poll(50, "in", 0, 2);  // after 3, no seek in between
  const Verdict v = p.check(NON_MONOTONIC);
  EXPECT_EQ(v.status, VerdictStatus::kViolated);
  EXPECT_THAT(first_example(v), HasSubstr("in/0@2"));
}

TEST(Checkers, PollAfterARepositioningMayGoBack) {
  Pipeline p;
  p.add(p.consumer_event(HistoryKind::kPositioned, 49, "in", 0, 2));
  p.poll(50, "in", 0, 2);
  p.poll(51, "in", 0, 3);
  EXPECT_EQ(p.check(NON_MONOTONIC).status, VerdictStatus::kHeld);
  EXPECT_EQ(p.check(POLL_SKIPS).status, VerdictStatus::kHeld);
}

TEST(Checkers, ProducerAcksGoingBackwards) {
  Pipeline p;
  p.ack(40, "out", 0, 3, "c", "v3 1", kWorker, kWorkerProducer);
  p.ack(41, "out", 0, 1, "b", "v1 1", kWorker, kWorkerProducer);
  const Verdict v = p.check(NON_MONOTONIC);
  EXPECT_EQ(v.status, VerdictStatus::kViolated);
  EXPECT_THAT(first_example(v), HasSubstr("send acked at out/0@1"));
}

TEST(Checkers, PollSkippingAVisibleRecord) {
  Pipeline p;
  p.add(p.consumer_event(HistoryKind::kPositioned, 49, "out", 0, 0));
  p.poll(50, "out", 0, 0);
  p.poll(51, "out", 0, 2);  // 1 is committed: a read_committed consumer must return it
  const Verdict v = p.check(POLL_SKIPS);
  EXPECT_EQ(v.status, VerdictStatus::kViolated);
  EXPECT_THAT(first_example(v), HasSubstr("first out/0@1"));
}

TEST(Checkers, ReadCommittedMayJumpOverAbortedRecords) {
  Pipeline p;
  p.in.output_log[0][1].status = LogRecord::kAborted;
  p.add(p.consumer_event(HistoryKind::kPositioned, 49, "out", 0, 0));
  p.poll(50, "out", 0, 0);
  p.poll(51, "out", 0, 2);
  EXPECT_EQ(p.check(POLL_SKIPS).status, VerdictStatus::kHeld);
}

TEST(Checkers, FirstPollAboveThePositionIsASkip) {
  Pipeline p;
  p.add(p.consumer_event(HistoryKind::kPositioned, 49, "out", 0, 0));
  p.poll(50, "out", 0, 2);
  EXPECT_EQ(p.check(POLL_SKIPS).status, VerdictStatus::kViolated);
}

TEST(Checkers, AckedInputNobodyPolled) {
  Pipeline p;
  p.in.input_log[0].push_back(record(4, "d", "v4"));
  p.ack(16, "in", 0, 4, "d", "v4");
  // A consumer outside the worker processes does not count.
  HistoryEvent other = p.consumer_event(HistoryKind::kPolled, 60, "in", 0, 4);
  other.process = 9;
  other.value = "v4";
  p.add(other);
  const Verdict v = p.check(UNSEEN);
  EXPECT_EQ(v.status, VerdictStatus::kViolated);
  EXPECT_THAT(first_example(v), HasSubstr("\"v4\""));
  p.in.healed = false;
  EXPECT_EQ(p.check(UNSEEN).status, VerdictStatus::kUndecided);
}

TEST(Checkers, TableOffTheFoldIsAViolationOnlyUnderExactlyOnce) {
  Pipeline above;
  above.in.changelog_log[0].push_back(record(4, "c", "2", LogRecord::kCommitted));
  EXPECT_EQ(above.check(TABLE_ORACLE).status, VerdictStatus::kViolated);
  above.in.exactly_once = false;
  const Verdict allowed = above.check(TABLE_ORACLE);
  EXPECT_EQ(allowed.status, VerdictStatus::kAllowed);
  EXPECT_EQ(allowed.note, "allowed: at_least_once");
  EXPECT_EQ(above.check(DUPLICATES).status, VerdictStatus::kAllowed);

  Pipeline below;
  below.in.changelog_log[0].push_back(record(4, "a", std::nullopt, LogRecord::kCommitted));  // a tombstone
  const Verdict v = below.check(TABLE_ORACLE);
  EXPECT_EQ(v.status, VerdictStatus::kViolated);
  EXPECT_THAT(first_example(v), HasSubstr("key \"a\": table value (none) at (no entry), the model's \"2\""));
  EXPECT_EQ(below.check(LOST_WRITES).status, VerdictStatus::kViolated);
  // At least once does not fence a worker that lost the partition: its late changelog write can leave the table
  // behind the fold. Counted and shown, but allowed by the guarantee (and not a lost input or output).
  below.in.exactly_once = false;
  const Verdict late = below.check(TABLE_ORACLE);
  EXPECT_EQ(late.status, VerdictStatus::kAllowed);
  EXPECT_EQ(late.count, 1);
  EXPECT_THAT(late.note, HasSubstr("late changelog write"));
  EXPECT_EQ(below.check(LOST_WRITES).status, VerdictStatus::kHeld);
}

TEST(Checkers, UncommittedChangelogValuesAreNotTheTable) {
  Pipeline p;
  p.in.changelog_log[0].push_back(record(4, "c", "5", LogRecord::kAborted));
  EXPECT_EQ(p.check(TABLE_ORACLE).status, VerdictStatus::kHeld);
}

TEST(Checkers, NotSettledIsALivenessViolation) {
  Pipeline p;
  p.in.settled = false;
  p.in.not_settled_why = "lag 12 records on in/1";
  const Verdict v = p.check(LIVENESS);
  EXPECT_EQ(v.status, VerdictStatus::kViolated);
  EXPECT_THAT(first_example(v), HasSubstr("lag 12 records on in/1"));
}

TEST(Checkers, ExpectedViolationsSeenAndMissing) {
  Pipeline p;
  EXPECT_EQ(p.check(LOST_WRITES, {LOST_WRITES}).status, VerdictStatus::kExpectedMissing);
  EXPECT_TRUE(verdict_fails(VerdictStatus::kExpectedMissing));
  p.ack(15, "in", 0, 4, "d", "v4");
  EXPECT_EQ(p.check(LOST_WRITES, {LOST_WRITES}).status, VerdictStatus::kExpectedSeen);
  EXPECT_FALSE(verdict_fails(VerdictStatus::kExpectedSeen));
}

TEST(Checkers, OnlyTheCheckedInvariantsAreDecided) {
  Pipeline p;
  p.in.history = &p.history;
  const auto verdicts = run_checkers(p.in, {DUPLICATES, LIVENESS}, {UNSEEN});
  for (const auto& v : verdicts) {
    const bool checked = v.invariant == DUPLICATES || v.invariant == LIVENESS;
    if (v.invariant == UNSEEN)
      EXPECT_EQ(v.status, VerdictStatus::kExpectedMissing);
    else if (checked)
      EXPECT_EQ(v.status, VerdictStatus::kHeld);
    else
      EXPECT_EQ(v.status, VerdictStatus::kNotChecked) << invariant_name(v.invariant);
  }
}

TEST(Checkers, TruncatedHistoryLeavesHistoryInvariantsUndecided) {
  Pipeline p;
  History small(2);
  for (const auto& e : p.history.events()) small.add(e);
  ASSERT_TRUE(small.truncated());
  p.in.history = &small;
  const auto verdicts = run_checkers(p.in, {}, {});
  for (const auto& v : verdicts) {
    const bool from_history = v.invariant == LOST_WRITES || v.invariant == ABORTED_READS ||
                              v.invariant == INCONSISTENT_OFFSETS || v.invariant == NON_MONOTONIC ||
                              v.invariant == POLL_SKIPS || v.invariant == UNSEEN;
    if (v.invariant == DIFFERENTIAL) continue;  // not given an outcome here: not checked
    EXPECT_EQ(v.status, from_history ? VerdictStatus::kUndecided : VerdictStatus::kHeld)
        << invariant_name(v.invariant);
  }
}

TEST(Checkers, ExamplesAreTheFirstFiveByTime) {
  Pipeline p;
  for (int i = 9; i >= 0; --i) p.ack(100 + i, "in", 0, 10 + i, "k", "lost" + std::to_string(i));
  const Verdict v = p.check(LOST_WRITES);
  EXPECT_EQ(v.count, 10);
  ASSERT_EQ(v.examples.size(), 5u);
  for (size_t i = 0; i < 5; ++i) EXPECT_EQ(v.examples[i].time_ms, 100 + static_cast<int64_t>(i));
}

TEST(Checkers, NoTableMeansTheOracleIsNotChecked) {
  Pipeline p;
  p.in.changelog_topic.clear();
  p.in.changelog_log.clear();
  EXPECT_EQ(p.check(TABLE_ORACLE).status, VerdictStatus::kNotChecked);
}

TEST(RunResult, Names) {
  EXPECT_STREQ(verdict_status_name(VerdictStatus::kViolated), "VIOLATED");
  EXPECT_STREQ(verdict_status_name(VerdictStatus::kExpectedMissing), "EXPECTED-MISSING");
  EXPECT_STREQ(verdict_status_name(VerdictStatus::kNotChecked), "not checked");
  EXPECT_EQ(invariant_name(INCONSISTENT_OFFSETS), "inconsistent-offsets");
  EXPECT_EQ(invariant_name(TABLE_ORACLE), "table-oracle");
  EXPECT_TRUE(verdict_fails(VerdictStatus::kUndecided));
  EXPECT_FALSE(verdict_fails(VerdictStatus::kAllowed));
  EXPECT_FALSE(verdict_fails(VerdictStatus::kNotChecked));
}

TEST(Timeline, OwnershipSpansAndMarks) {
  History h;
  auto assigned = [&](int64_t t, uint64_t client, ProcessId process, uint32_t incarnation,
                      int32_t partition) {
    HistoryEvent e = event(HistoryKind::kAssigned, t, process, client, {"in", partition}, -1);
    e.incarnation = incarnation;
    e.group = "g";
    e.generation = 1;
    h.add(e);
  };
  assigned(10, 1, 2, 1, 0);
  assigned(10, 1, 2, 1, 1);
  HistoryEvent revoked = event(HistoryKind::kRevoked, 50, 2, 1, {"in", 1}, -1);
  revoked.group = "g";
  h.add(revoked);
  HistoryEvent committed = event(HistoryKind::kTxnCommitted, 60, 2, 3, {}, -1);
  committed.transactional_id = "t-0";
  h.add(committed);
  // Process 2 restarts: its first incarnation's consumer owned in/0 until its last act (t=60 is the
  // producer's).
  HistoryEvent poll = event(HistoryKind::kPolled, 55, 2, 1, {"in", 0}, 0);
  poll.group = "g";
  h.add(poll);
  assigned(90, 4, 2, 2, 0);
  const HistoryTimeline t = timeline_from_history(h, "g", "in", {{2, "worker-0"}}, 200);
  ASSERT_EQ(t.ownership.size(), 3u);
  EXPECT_EQ(t.ownership[0].tp.partition, 0);
  EXPECT_EQ(t.ownership[0].from_ms, 10);
  EXPECT_EQ(t.ownership[0].to_ms, 55);
  EXPECT_EQ(t.ownership[1].tp.partition, 1);
  EXPECT_EQ(t.ownership[1].to_ms, 50);
  EXPECT_EQ(t.ownership[2].from_ms, 90);
  EXPECT_EQ(t.ownership[2].to_ms, 200);
  ASSERT_EQ(t.events.size(), 3u);
  EXPECT_EQ(t.events[0].kind, TimelineEvent::kRebalance);
  EXPECT_EQ(t.events[0].text, "generation 1: assigned in-0 in-1");
  EXPECT_EQ(t.events[0].lane, "worker-0");
  EXPECT_EQ(t.events[1].kind, TimelineEvent::kCommit);
  EXPECT_EQ(t.events[2].time_ms, 90);
}

TEST(Timeline, CommitMarksAreThinned) {
  History h;
  for (int i = 0; i < 1000; ++i) h.add(event(HistoryKind::kTxnCommitted, i, 2, 3, {}, -1));
  const HistoryTimeline t = timeline_from_history(h, "g", "in", {{2, "worker-0"}}, 2000, 50);
  ASSERT_EQ(t.events.size(), 50u);
  EXPECT_EQ(t.events.front().time_ms, 0);
  EXPECT_EQ(t.events.back().time_ms, 980);
}

}  // namespace
}  // namespace mephisto::sim::scenario
