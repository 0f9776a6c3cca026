// Consumer without group rebalancing: auto.offset.reset, seek, position, pause/resume, max_poll_records,
// watermarks, commit/committed, argument validation; compaction as a consumer sees it.
#include <algorithm>
#include <tuple>

#include "tests/conformance/conformance.h"

namespace mephisto::conformance {
namespace {

// Polls until position(tp) is known (the consumer resolved its start offset) or timeout_ms passed.
Result<int64_t> resolved_position(Env& env, Consumer& consumer, const TopicPartition& tp, int64_t timeout_ms) {
  const int64_t deadline = env.clock->now_ms() + timeout_ms;
  while (true) {
    auto position = consumer.position(tp);
    if (position.ok() || position.code() != ErrorCode::kNoOffset || env.clock->now_ms() >= deadline) {
      return position;
    }
    auto batch = consumer.poll(100);
    if (!batch.ok()) return batch.error();
    EXPECT_TRUE(batch->empty()) << "records arrived while resolving the start position";
  }
}

TEST_P(Conformance, AutoOffsetResetEarliestStartsAtTheFirstRecord) {
  const std::string topic = unique("reset-earliest");
  const std::string group = unique("group");
  ASSERT_TRUE(create_topics({{topic, 1}}));
  std::vector<ConsumerRecord> read;
  client("producer-then-consumer", [&](Env& env) {
    auto producer = make_producer(env);
    ASSERT_NE(producer, nullptr);
    ASSERT_EQ(produce_ok(*producer, records_for({topic, 0}, numbered("early", 5))).size(), 5U);
    auto config = member_config(group);
    config.auto_offset_reset = OffsetReset::kEarliest;
    auto consumer = make_consumer(env, config);
    ASSERT_NE(consumer, nullptr);
    ASSERT_TRUE(is_ok(consumer->assign({{topic, 0}})));
    read = consume_until(env, *consumer, 5);
    EXPECT_TRUE(is_ok(consumer->close()));
  });
  ASSERT_TRUE(run_clients());
  EXPECT_EQ(values_of(read), numbered("early", 5));
  EXPECT_EQ(offsets_of(read, {topic, 0}), range_of(0, 5));
}

TEST_P(Conformance, AutoOffsetResetLatestSkipsRecordsWrittenBeforeTheConsumerStarted) {
  const std::string topic = unique("reset-latest");
  const std::string group = unique("group");
  ASSERT_TRUE(create_topics({{topic, 1}}));
  std::optional<Result<int64_t>> start;
  std::vector<ConsumerRecord> read;
  client("producer-then-consumer", [&](Env& env) {
    auto producer = make_producer(env);
    ASSERT_NE(producer, nullptr);
    ASSERT_EQ(produce_ok(*producer, records_for({topic, 0}, numbered("old", 5))).size(), 5U);
    auto config = member_config(group);
    config.auto_offset_reset = OffsetReset::kLatest;
    auto consumer = make_consumer(env, config);
    ASSERT_NE(consumer, nullptr);
    ASSERT_TRUE(is_ok(consumer->assign({{topic, 0}})));
    start = resolved_position(env, *consumer, {topic, 0}, kConsumeTimeoutMs);
    ASSERT_TRUE(is_ok(*start));
    ASSERT_EQ(produce_ok(*producer, records_for({topic, 0}, numbered("new", 3))).size(), 3U);
    read = consume_until(env, *consumer, 3);
    for (auto& record : poll_for(env, *consumer, 500)) read.push_back(std::move(record));
    EXPECT_TRUE(is_ok(consumer->close()));
  });
  ASSERT_TRUE(run_clients());
  ASSERT_TRUE(start.has_value() && start->ok());
  EXPECT_EQ(start->value(), 5) << "latest = the log end when the consumer started";
  EXPECT_EQ(values_of(read), numbered("new", 3));
  EXPECT_EQ(offsets_of(read, {topic, 0}), range_of(5, 3));
}

TEST_P(Conformance, AutoOffsetResetErrorFailsPollWithNoOffset) {
  const std::string topic = unique("reset-error");
  const std::string group = unique("group");
  ASSERT_TRUE(create_topics({{topic, 1}}));
  std::optional<Error> error;
  client("producer-then-consumer", [&](Env& env) {
    auto producer = make_producer(env);
    ASSERT_NE(producer, nullptr);
    ASSERT_EQ(produce_ok(*producer, records_for({topic, 0}, numbered("r", 3))).size(), 3U);
    auto config = member_config(group);
    config.auto_offset_reset = OffsetReset::kError;
    auto consumer = make_consumer(env, config);
    ASSERT_NE(consumer, nullptr);
    ASSERT_TRUE(is_ok(consumer->assign({{topic, 0}})));
    error = poll_until_error(env, *consumer, kConsumeTimeoutMs);
    EXPECT_TRUE(is_ok(consumer->close()));
  });
  ASSERT_TRUE(run_clients());
  ASSERT_TRUE(error.has_value()) << "poll() never reported the missing offset";
  EXPECT_EQ(error->code, ErrorCode::kNoOffset) << describe(*error);
}

TEST_P(Conformance, CommittedOffsetTakesPrecedenceOverAutoOffsetReset) {
  const std::string topic = unique("committed-start");
  const std::string group = unique("group");
  ASSERT_TRUE(create_topics({{topic, 1}}));
  std::vector<ConsumerRecord> read;
  client("producer-committer-consumer", [&](Env& env) {
    auto producer = make_producer(env);
    ASSERT_NE(producer, nullptr);
    ASSERT_EQ(produce_ok(*producer, records_for({topic, 0}, numbered("r", 10))).size(), 10U);
    {
      auto committer = make_consumer(env, member_config(group));
      ASSERT_NE(committer, nullptr);
      ASSERT_TRUE(is_ok(committer->assign({{topic, 0}})));
      ASSERT_TRUE(is_ok(committer->commit({{{topic, 0}, 3}}, kCommitTimeoutMs)));
      ASSERT_TRUE(is_ok(committer->close()));
    }
    // With reset=error, any read at all proves the start came from the committed offset.
    auto config = member_config(group);
    config.auto_offset_reset = OffsetReset::kError;
    auto consumer = make_consumer(env, config);
    ASSERT_NE(consumer, nullptr);
    ASSERT_TRUE(is_ok(consumer->assign({{topic, 0}})));
    read = consume_until(env, *consumer, 7);
    EXPECT_TRUE(is_ok(consumer->close()));
  });
  ASSERT_TRUE(run_clients());
  EXPECT_EQ(offsets_of(read, {topic, 0}), range_of(3, 7));
  EXPECT_EQ(values_of(read), numbered("r", 7, 3));
}

TEST_P(Conformance, SeekMovesTheNextFetchBackwardAndForward) {
  const std::string topic = unique("seek");
  ASSERT_TRUE(create_topics({{topic, 1}}));
  const TopicPartition tp{topic, 0};
  std::vector<ConsumerRecord> first_pass;
  std::vector<ConsumerRecord> after_back;
  std::vector<ConsumerRecord> after_forward;
  std::vector<ConsumerRecord> seek_before_first_poll;
  client("producer-then-consumer", [&](Env& env) {
    auto producer = make_producer(env);
    ASSERT_NE(producer, nullptr);
    ASSERT_EQ(produce_ok(*producer, records_for(tp, numbered("r", 10))).size(), 10U);
    auto consumer = make_consumer(env, reader_config());
    ASSERT_NE(consumer, nullptr);
    ASSERT_TRUE(is_ok(consumer->assign({tp})));
    first_pass = consume_until(env, *consumer, 10);
    ASSERT_TRUE(is_ok(consumer->seek(tp, 4)));
    after_back = consume_until(env, *consumer, 6);
    ASSERT_TRUE(is_ok(consumer->seek(tp, 2)));
    ASSERT_TRUE(is_ok(consumer->seek(tp, 8)));  // the last seek wins
    after_forward = consume_until(env, *consumer, 2);
    for (auto& record : poll_for(env, *consumer, 500)) after_forward.push_back(std::move(record));
    EXPECT_TRUE(is_ok(consumer->close()));

    auto fresh = make_consumer(env, reader_config());
    ASSERT_NE(fresh, nullptr);
    ASSERT_TRUE(is_ok(fresh->assign({tp})));
    ASSERT_TRUE(is_ok(fresh->seek(tp, 7)));
    seek_before_first_poll = consume_until(env, *fresh, 3);
    EXPECT_TRUE(is_ok(fresh->close()));
  });
  ASSERT_TRUE(run_clients());
  EXPECT_EQ(offsets_of(first_pass, tp), range_of(0, 10));
  EXPECT_EQ(offsets_of(after_back, tp), range_of(4, 6));
  EXPECT_EQ(values_of(after_back), numbered("r", 6, 4));
  EXPECT_EQ(offsets_of(after_forward, tp), range_of(8, 2));
  EXPECT_EQ(offsets_of(seek_before_first_poll, tp), range_of(7, 3));
}

// A Fetch sent before a partition was unassigned must not deliver its records after the partition is assigned
// back and positioned elsewhere. librdkafka tags each partition's fetch state with a version that every
// assign, unassign and seek bumps and drops responses of older versions (the Java consumer drops data whose
// position no longer matches). The simulated consumer once restarted a reassigned partition's version at 0,
// so a stale Fetch whose version matched again delivered offset 10 to a consumer positioned at 5,
// skipping 5..9 (issue #16: exactly-once lost a record after a rebalance).
TEST_P(Conformance, APartitionAssignedBackIgnoresAFetchSentBeforeItWasUnassigned) {
  const std::string topic = unique("reassign-stale-fetch");
  ASSERT_TRUE(create_topics({{topic, 1}}));
  const TopicPartition tp{topic, 0};
  std::vector<ConsumerRecord> first_pass;
  std::vector<ConsumerRecord> after_reassign;
  client("producer-then-consumer", [&](Env& env) {
    auto producer = make_producer(env);
    ASSERT_NE(producer, nullptr);
    ASSERT_EQ(produce_ok(*producer, records_for(tp, numbered("r", 10))).size(), 10U);
    auto consumer = make_consumer(env, reader_config());
    ASSERT_NE(consumer, nullptr);
    ASSERT_TRUE(is_ok(consumer->assign({tp})));
    ASSERT_TRUE(is_ok(consumer->seek(tp, 0)));
    first_pass = consume_until(env, *consumer, 10);
    // Polling at the log end leaves a Fetch from offset 10 waiting at the broker (fetch.wait.max.ms).
    EXPECT_TRUE(poll_for(env, *consumer, 50).empty());
    ASSERT_TRUE(is_ok(consumer->assign({})));
    ASSERT_TRUE(is_ok(consumer->assign({tp})));
    ASSERT_TRUE(is_ok(consumer->seek(tp, 5)));
    // New records answer the waiting Fetch; its response arrives while the partition is positioned at 5.
    ASSERT_EQ(produce_ok(*producer, records_for(tp, numbered("r", 2, 10))).size(), 2U);
    sleep_for(env, 1000);
    after_reassign = consume_until(env, *consumer, 7);
    for (auto& record : poll_for(env, *consumer, 500)) after_reassign.push_back(std::move(record));
    EXPECT_TRUE(is_ok(consumer->close()));
  });
  ASSERT_TRUE(run_clients());
  EXPECT_EQ(offsets_of(first_pass, tp), range_of(0, 10));
  EXPECT_EQ(offsets_of(after_reassign, tp), range_of(5, 7)) << "the first record after the seek is offset 5";
  EXPECT_EQ(values_of(after_reassign), numbered("r", 7, 5));
}

// assign() replaces the whole assignment (librdkafka's rd_kafka_assign): a partition in the old and the new
// list is started again, from the committed offset (with a group) or the auto.offset.reset position
// (without), not left where it was. The simulated consumer once kept such a partition's position (found while
// looking into issue #16).
TEST_P(Conformance, AssignAgainRestartsAKeptPartitionFromItsStartPosition) {
  const std::string topic = unique("reassign-kept");
  const std::string group = unique("group");
  ASSERT_TRUE(create_topics({{topic, 1}}));
  const TopicPartition tp{topic, 0};
  std::vector<ConsumerRecord> first_pass;
  std::vector<ConsumerRecord> without_group_again;
  std::vector<ConsumerRecord> with_group_again;
  client("producer-then-consumers", [&](Env& env) {
    auto producer = make_producer(env);
    ASSERT_NE(producer, nullptr);
    ASSERT_EQ(produce_ok(*producer, records_for(tp, numbered("r", 10))).size(), 10U);
    auto reader = make_consumer(env, reader_config());
    ASSERT_NE(reader, nullptr);
    ASSERT_TRUE(is_ok(reader->assign({tp})));
    first_pass = consume_until(env, *reader, 10);
    ASSERT_TRUE(is_ok(reader->assign({tp})));
    without_group_again = consume_until(env, *reader, 10);
    for (auto& record : poll_for(env, *reader, 500)) without_group_again.push_back(std::move(record));
    EXPECT_TRUE(is_ok(reader->close()));

    auto config = member_config(group);
    config.auto_offset_reset = OffsetReset::kEarliest;
    auto member = make_consumer(env, config);
    ASSERT_NE(member, nullptr);
    ASSERT_TRUE(is_ok(member->assign({tp})));
    EXPECT_EQ(consume_until(env, *member, 10).size(), 10U);
    ASSERT_TRUE(is_ok(member->commit({{tp, 4}}, kConsumeTimeoutMs)));
    ASSERT_TRUE(is_ok(member->assign({tp})));
    with_group_again = consume_until(env, *member, 6);
    for (auto& record : poll_for(env, *member, 500)) with_group_again.push_back(std::move(record));
    EXPECT_TRUE(is_ok(member->close()));
  });
  ASSERT_TRUE(run_clients());
  EXPECT_EQ(offsets_of(first_pass, tp), range_of(0, 10));
  EXPECT_EQ(offsets_of(without_group_again, tp), range_of(0, 10))
      << "no group: from auto.offset.reset (earliest)";
  EXPECT_EQ(offsets_of(with_group_again, tp), range_of(4, 6)) << "a group: from its committed offset";
}

TEST_P(Conformance, SeekAndPositionOnAnUnassignedPartitionFailWithState) {
  const std::string topic = unique("unassigned");
  ASSERT_TRUE(create_topics({{topic, 2}}));
  std::optional<Status> seek;
  std::optional<Result<int64_t>> position;
  client("consumer", [&](Env& env) {
    auto consumer = make_consumer(env, reader_config());
    ASSERT_NE(consumer, nullptr);
    ASSERT_TRUE(is_ok(consumer->assign({{topic, 0}})));
    seek = consumer->seek({topic, 1}, 0);
    position = consumer->position({topic, 1});
    EXPECT_TRUE(is_ok(consumer->close()));
  });
  ASSERT_TRUE(run_clients());
  ASSERT_TRUE(seek.has_value() && position.has_value());
  EXPECT_TRUE(has_code(*seek, ErrorCode::kState));
  EXPECT_TRUE(has_code(*position, ErrorCode::kState));
}

TEST_P(Conformance, PositionIsTheOffsetAfterTheLastRecordReturned) {
  const std::string topic = unique("position");
  ASSERT_TRUE(create_topics({{topic, 1}}));
  const TopicPartition tp{topic, 0};
  std::vector<std::pair<int64_t, int64_t>> last_offset_and_position;
  client("producer-then-consumer", [&](Env& env) {
    auto producer = make_producer(env);
    ASSERT_NE(producer, nullptr);
    ASSERT_EQ(produce_ok(*producer, records_for(tp, numbered("r", 12))).size(), 12U);
    auto config = reader_config();
    config.max_poll_records = 4;
    auto consumer = make_consumer(env, config);
    ASSERT_NE(consumer, nullptr);
    ASSERT_TRUE(is_ok(consumer->assign({tp})));
    int read = 0;
    const int64_t deadline = env.clock->now_ms() + kConsumeTimeoutMs;
    while (read < 12 && env.clock->now_ms() < deadline) {
      auto batch = consumer->poll(200);
      ASSERT_TRUE(is_ok(batch));
      if (batch->empty()) continue;
      read += static_cast<int>(batch->size());
      auto position = consumer->position(tp);
      ASSERT_TRUE(is_ok(position));
      last_offset_and_position.emplace_back(batch->back().offset, position.value());
    }
    EXPECT_EQ(read, 12);
    EXPECT_TRUE(is_ok(consumer->close()));
  });
  ASSERT_TRUE(run_clients());
  ASSERT_FALSE(last_offset_and_position.empty());
  for (const auto& [last_offset, position] : last_offset_and_position) {
    EXPECT_EQ(position, last_offset + 1);
  }
  EXPECT_EQ(last_offset_and_position.back().second, 12);
}

TEST_P(Conformance, PausedPartitionDeliversNothingUntilResumed) {
  const std::string topic = unique("pause");
  ASSERT_TRUE(create_topics({{topic, 2}}));
  const TopicPartition paused{topic, 0};
  const TopicPartition running{topic, 1};
  std::vector<ConsumerRecord> while_paused;
  std::vector<ConsumerRecord> after_resume;
  client("producer-then-consumer", [&](Env& env) {
    auto consumer = make_consumer(env, reader_config());
    ASSERT_NE(consumer, nullptr);
    ASSERT_TRUE(is_ok(consumer->assign({paused, running})));
    ASSERT_TRUE(is_ok(consumer->pause({paused})));
    auto producer = make_producer(env);
    ASSERT_NE(producer, nullptr);
    auto records = records_for(paused, numbered("paused", 5));
    auto more = records_for(running, numbered("running", 5));
    records.insert(records.end(), more.begin(), more.end());
    ASSERT_EQ(produce_ok(*producer, records).size(), 10U);
    while_paused = consume_until(env, *consumer, 5);
    for (auto& record : poll_for(env, *consumer, 3000)) while_paused.push_back(std::move(record));
    ASSERT_TRUE(is_ok(consumer->resume({paused})));
    after_resume = consume_until(env, *consumer, 5);
    for (auto& record : poll_for(env, *consumer, 500)) after_resume.push_back(std::move(record));
    EXPECT_TRUE(is_ok(consumer->close()));
  });
  ASSERT_TRUE(run_clients());
  EXPECT_TRUE(offsets_of(while_paused, paused).empty()) << "a paused partition returned records";
  EXPECT_EQ(values_of(while_paused, running), numbered("running", 5));
  EXPECT_EQ(values_of(after_resume, paused), numbered("paused", 5));
  EXPECT_EQ(offsets_of(after_resume, paused), range_of(0, 5));
  EXPECT_TRUE(offsets_of(after_resume, running).empty()) << "the running partition was re-delivered";
}

TEST_P(Conformance, PollReturnsAtMostMaxPollRecords) {
  const std::string topic = unique("max-poll");
  ASSERT_TRUE(create_topics({{topic, 1}}));
  std::vector<size_t> batch_sizes;
  size_t total = 0;
  client("producer-then-consumer", [&](Env& env) {
    auto producer = make_producer(env);
    ASSERT_NE(producer, nullptr);
    ASSERT_EQ(produce_ok(*producer, records_for({topic, 0}, numbered("r", 20))).size(), 20U);
    auto config = reader_config();
    config.max_poll_records = 3;
    auto consumer = make_consumer(env, config);
    ASSERT_NE(consumer, nullptr);
    ASSERT_TRUE(is_ok(consumer->assign({{topic, 0}})));
    const int64_t deadline = env.clock->now_ms() + kConsumeTimeoutMs;
    while (total < 20 && env.clock->now_ms() < deadline) {
      auto batch = consumer->poll(200);
      ASSERT_TRUE(is_ok(batch));
      if (!batch->empty()) batch_sizes.push_back(batch->size());
      total += batch->size();
    }
    EXPECT_TRUE(is_ok(consumer->close()));
  });
  ASSERT_TRUE(run_clients());
  EXPECT_EQ(total, 20U);
  for (size_t size : batch_sizes) EXPECT_LE(size, 3U);
}

TEST_P(Conformance, WatermarksReportTheLogStartAndTheHighWatermark) {
  const std::string topic = unique("watermarks");
  ASSERT_TRUE(create_topics({{topic, 1}}));
  std::optional<Result<std::pair<int64_t, int64_t>>> marks;
  client("producer-then-consumer", [&](Env& env) {
    auto producer = make_producer(env);
    ASSERT_NE(producer, nullptr);
    ASSERT_EQ(produce_ok(*producer, records_for({topic, 0}, numbered("r", 7))).size(), 7U);
    auto consumer = make_consumer(env, reader_config(IsolationLevel::kReadUncommitted));
    ASSERT_NE(consumer, nullptr);
    ASSERT_TRUE(is_ok(consumer->assign({{topic, 0}})));
    EXPECT_EQ(consume_until(env, *consumer, 7).size(), 7U);
    marks = consumer->watermarks({topic, 0}, kConsumeTimeoutMs);
    EXPECT_TRUE(is_ok(consumer->close()));
  });
  ASSERT_TRUE(run_clients());
  ASSERT_TRUE(marks.has_value());
  ASSERT_TRUE(is_ok(*marks));
  EXPECT_EQ(marks->value(), (std::pair<int64_t, int64_t>{0, 7}));
}

TEST_P(Conformance, SubscribeWithoutGroupIdOrTopicsFailsWithInvalidArg) {
  const std::string topic = unique("no-group");
  ASSERT_TRUE(create_topics({{topic, 1}}));
  std::optional<Status> without_group;
  std::optional<Status> without_topics;
  client("consumer", [&](Env& env) {
    auto groupless = make_consumer(env, reader_config());  // group_id ""
    ASSERT_NE(groupless, nullptr);
    without_group = groupless->subscribe({topic}, nullptr);
    EXPECT_TRUE(is_ok(groupless->close()));
    auto member = make_consumer(env, member_config(unique("group")));
    ASSERT_NE(member, nullptr);
    without_topics = member->subscribe({}, nullptr);
    EXPECT_TRUE(is_ok(member->close()));
  });
  ASSERT_TRUE(run_clients());
  ASSERT_TRUE(without_group.has_value() && without_topics.has_value());
  EXPECT_TRUE(has_code(*without_group, ErrorCode::kInvalidArg));
  EXPECT_TRUE(has_code(*without_topics, ErrorCode::kInvalidArg));
}

TEST_P(Conformance, CommittedReturnsWhatWasCommittedAndOmitsTheRest) {
  const std::string topic = unique("commit");
  const std::string group = unique("group");
  ASSERT_TRUE(create_topics({{topic, 3}}));
  const TopicPartition p0{topic, 0};
  const TopicPartition p1{topic, 1};
  const TopicPartition p2{topic, 2};
  std::optional<Result<std::map<TopicPartition, int64_t>>> first_view;
  std::optional<Result<std::map<TopicPartition, int64_t>>> after_rewind;
  client("committer", [&](Env& env) {
    auto consumer = make_consumer(env, member_config(group));
    ASSERT_NE(consumer, nullptr);
    ASSERT_TRUE(is_ok(consumer->assign({p0, p1, p2})));
    ASSERT_TRUE(is_ok(consumer->commit({{p0, 5}, {p1, 7}}, kCommitTimeoutMs)));
    ASSERT_TRUE(is_ok(consumer->close()));
  });
  ASSERT_TRUE(run_clients());
  // Another process of the same group sees the commits; committing a lower offset later is allowed.
  client("other-process", [&](Env& env) {
    auto consumer = make_consumer(env, member_config(group));
    ASSERT_NE(consumer, nullptr);
    ASSERT_TRUE(is_ok(consumer->assign({p0, p1, p2})));
    first_view = consumer->committed({p0, p1, p2}, kCommitTimeoutMs);
    ASSERT_TRUE(is_ok(consumer->commit({{p0, 2}}, kCommitTimeoutMs)));
    after_rewind = consumer->committed({p0, p1, p2}, kCommitTimeoutMs);
    EXPECT_TRUE(is_ok(consumer->close()));
  });
  ASSERT_TRUE(run_clients());
  ASSERT_TRUE(first_view.has_value() && after_rewind.has_value());
  ASSERT_TRUE(is_ok(*first_view));
  EXPECT_EQ(first_view->value(), (std::map<TopicPartition, int64_t>{{p0, 5}, {p1, 7}}));
  ASSERT_TRUE(is_ok(*after_rewind));
  EXPECT_EQ(after_rewind->value(), (std::map<TopicPartition, int64_t>{{p0, 2}, {p1, 7}}));
}

TEST_P(Conformance, CommittedOffsetsBelongToTheirGroupOnly) {
  const std::string topic = unique("per-group");
  const std::string group_a = unique("group-a");
  const std::string group_b = unique("group-b");
  ASSERT_TRUE(create_topics({{topic, 1}}));
  const TopicPartition tp{topic, 0};
  std::optional<Result<std::map<TopicPartition, int64_t>>> seen_by_b;
  client("two-groups", [&](Env& env) {
    auto a = make_consumer(env, member_config(group_a));
    auto b = make_consumer(env, member_config(group_b));
    ASSERT_TRUE(a != nullptr && b != nullptr);
    ASSERT_TRUE(is_ok(a->assign({tp})));
    ASSERT_TRUE(is_ok(b->assign({tp})));
    ASSERT_TRUE(is_ok(a->commit({{tp, 4}}, kCommitTimeoutMs)));
    seen_by_b = b->committed({tp}, kCommitTimeoutMs);
    EXPECT_TRUE(is_ok(a->close()));
    EXPECT_TRUE(is_ok(b->close()));
  });
  ASSERT_TRUE(run_clients());
  ASSERT_TRUE(seen_by_b.has_value());
  ASSERT_TRUE(is_ok(*seen_by_b));
  EXPECT_TRUE(seen_by_b->value().empty()) << "group B sees group A's commit";
}

// --- compaction (simulator-only: real Kafka compacts on its own schedule and never the active segment)

// Writes each (key, value) as its own batch (nullopt value: a tombstone), then a sentinel record that stands in
// for the active segment, which Kafka never cleans (the simulator treats the last batch so).
void write_one_batch_each(Env& env, const TopicPartition& tp,
                          const std::vector<std::pair<std::string, std::optional<std::string>>>& writes) {
  auto producer = make_producer(env);
  ASSERT_NE(producer, nullptr);
  for (const auto& [key, value] : writes) {
    auto record = records_for(tp, {""})[0];
    record.key = key;
    record.value = value;
    ASSERT_EQ(produce_ok(*producer, {record}).size(), 1U);
  }
  auto sentinel = records_for(tp, {"active"})[0];
  sentinel.key = "sentinel";
  ASSERT_EQ(produce_ok(*producer, {sentinel}).size(), 1U);
}

TEST_P(Conformance, CompactionKeepsTheLastValuePerKeyAtItsOriginalOffset) {
  CONFORMANCE_REQUIRE_SIM_FAULTS("compacts on demand (SimFaults::compact_now)");
  const std::string topic = unique("compacted");
  ASSERT_TRUE(create_topics({{topic, 1, {{"cleanup.policy", "compact"}}}}));
  const TopicPartition tp{topic, 0};
  std::vector<ConsumerRecord> read;
  // Offsets 0..5, then the sentinel at 6.
  client("producer", [&](Env& env) {
    write_one_batch_each(env, tp, {{"k1", "a"}, {"k2", "b"}, {"k1", "c"}, {"k3", "d"}, {"k2", "e"}, {"k1", "f"}});
  });
  ASSERT_TRUE(run_clients());
  world().faults()->compact_now(topic);
  client("reader", [&](Env& env) { read = read_records(env, {tp}, 4, IsolationLevel::kReadUncommitted, 1000); });
  ASSERT_TRUE(run_clients());
  ASSERT_EQ(read.size(), 4U) << "expected the latest value of k1, k2, k3 and the sentinel";
  const std::vector<std::tuple<int64_t, std::string, std::string>> expected = {
      {3, "k3", "d"}, {4, "k2", "e"}, {5, "k1", "f"}, {6, "sentinel", "active"}};
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(read[i].offset, std::get<0>(expected[i])) << "compaction never renumbers offsets";
    EXPECT_EQ(read[i].key, std::optional<std::string>(std::get<1>(expected[i])));
    EXPECT_EQ(read[i].value, std::optional<std::string>(std::get<2>(expected[i])));
  }
}

TEST_P(Conformance, CompactionRemovesValuesOverwrittenByATombstoneAndKeepsTheTombstone) {
  CONFORMANCE_REQUIRE_SIM_FAULTS("compacts on demand (SimFaults::compact_now)");
  const std::string topic = unique("compacted-tombstone");
  ASSERT_TRUE(create_topics({{topic, 1, {{"cleanup.policy", "compact"}}}}));
  const TopicPartition tp{topic, 0};
  std::vector<ConsumerRecord> read;
  // deleted=a@0, kept=b@1, tombstone for deleted@2, other=c@3, sentinel@4.
  client("producer", [&](Env& env) {
    write_one_batch_each(env, tp, {{"deleted", "a"}, {"kept", "b"}, {"deleted", std::nullopt}, {"other", "c"}});
  });
  ASSERT_TRUE(run_clients());
  world().faults()->compact_now(topic);
  client("reader", [&](Env& env) { read = read_records(env, {tp}, 4, IsolationLevel::kReadUncommitted, 1000); });
  ASSERT_TRUE(run_clients());
  // The tombstone stays for delete.retention.ms (24 h by default), so readers learn of the delete.
  ASSERT_EQ(read.size(), 4U);
  EXPECT_EQ(read[0].offset, 1);
  EXPECT_EQ(read[0].value, std::optional<std::string>("b"));
  EXPECT_EQ(read[1].offset, 2);
  EXPECT_EQ(read[1].key, std::optional<std::string>("deleted"));
  EXPECT_EQ(read[1].value, std::nullopt);
  EXPECT_EQ(read[2].offset, 3);
  EXPECT_EQ(read[2].value, std::optional<std::string>("c"));
  EXPECT_EQ(read[3].offset, 4);
}

}  // namespace
}  // namespace mephisto::conformance
