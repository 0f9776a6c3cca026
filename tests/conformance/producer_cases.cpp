// Producer: offsets and order, the default partitioner, explicit partitions, what round-trips (headers,
// timestamps, null and binary keys and values), delivery reports and flush, and produce errors; idempotent retries.
#include <algorithm>
#include <set>

#include "tests/conformance/conformance.h"

namespace mephisto::conformance {
namespace {

// The reference murmur2 against values the Java client computes (UtilsTest.testMurmur2 in Apache Kafka, plus the
// empty key, derived from the same algorithm). Not parameterised: it checks the test's own expectation source.
TEST(Murmur2Reference, MatchesKafkaJavaClientGoldenValues) {
  EXPECT_EQ(kafka_murmur2("21"), -973932308);
  EXPECT_EQ(kafka_murmur2("foobar"), -790332482);
  EXPECT_EQ(kafka_murmur2("a-little-bit-long-string"), -985981536);
  EXPECT_EQ(kafka_murmur2("a-little-bit-longer-string"), -1486304829);
  EXPECT_EQ(kafka_murmur2("lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8"), -58897971);
  EXPECT_EQ(kafka_murmur2("abc"), 479470107);
  EXPECT_EQ(kafka_murmur2("kafka"), -798503068);  // 0xd067cf64, librdkafka's rdmurmur2 unit test
  EXPECT_EQ(kafka_murmur2(""), 275646681);
  // Utils.toPositive(murmur2(key)) % 10.
  EXPECT_EQ(kafka_partition_for_key("", 10), 1);
  EXPECT_EQ(kafka_partition_for_key("kafka", 10), 0);
  EXPECT_EQ(kafka_partition_for_key("abc", 10), 7);
  EXPECT_EQ(kafka_partition_for_key("foobar", 10), 6);
}

TEST_P(Conformance, RecordsOfOnePartitionGetContiguousOffsetsFromZero) {
  const std::string topic = unique("offsets");
  ASSERT_TRUE(create_topics({{topic, 2}}));
  const TopicPartition p0{topic, 0};
  const TopicPartition p1{topic, 1};
  std::vector<RecordMetadata> first_batch;
  std::vector<RecordMetadata> second_batch;
  client("producer", [&](Env& env) {
    auto producer = make_producer(env);
    ASSERT_NE(producer, nullptr);
    // Interleave the two partitions: each partition's offsets must still be its own contiguous sequence.
    std::vector<ProducerRecord> records;
    for (int i = 0; i < 20; ++i) {
      records.push_back(records_for(i % 2 == 0 ? p0 : p1, {"v" + std::to_string(i)})[0]);
    }
    first_batch = produce_ok(*producer, records);
    second_batch = produce_ok(*producer, records_for(p0, numbered("later", 5)));
  });
  ASSERT_TRUE(run_clients());
  ASSERT_EQ(first_batch.size(), 20U);
  std::map<int32_t, std::vector<int64_t>> offsets;
  for (const auto& metadata : first_batch) {
    EXPECT_EQ(metadata.tp.topic, topic);
    offsets[metadata.tp.partition].push_back(metadata.offset);
  }
  EXPECT_EQ(offsets[0], range_of(0, 10));
  EXPECT_EQ(offsets[1], range_of(0, 10));
  ASSERT_EQ(second_batch.size(), 5U);
  for (size_t i = 0; i < second_batch.size(); ++i) {
    EXPECT_EQ(second_batch[i].tp, p0);
    EXPECT_EQ(second_batch[i].offset, 10 + static_cast<int64_t>(i)) << "offsets continue where the log ended";
  }
}

TEST_P(Conformance, ConsumerReadsEachPartitionInProducedOrderAtTheReportedOffsets) {
  const std::string topic = unique("order");
  ASSERT_TRUE(create_topics({{topic, 3}}));
  std::vector<ProducerRecord> sent;
  for (int i = 0; i < 45; ++i) {
    sent.push_back(records_for({topic, i % 3}, {"value-" + std::to_string(i)})[0]);
  }
  std::vector<RecordMetadata> reports;
  std::vector<ConsumerRecord> read;
  client("producer-then-reader", [&](Env& env) {
    auto producer = make_producer(env);
    ASSERT_NE(producer, nullptr);
    reports = produce_ok(*producer, sent);
    read = read_records(env, partition_list(topic, 3), sent.size());
  });
  ASSERT_TRUE(run_clients());
  ASSERT_EQ(reports.size(), sent.size());
  ASSERT_EQ(read.size(), sent.size());
  // Where each value was reported written.
  std::map<std::pair<int32_t, int64_t>, std::string> written;
  for (size_t i = 0; i < sent.size(); ++i) {
    written[{reports[i].tp.partition, reports[i].offset}] = *sent[i].value;
  }
  for (int32_t p = 0; p < 3; ++p) {
    const TopicPartition tp{topic, p};
    EXPECT_EQ(offsets_of(read, tp), range_of(0, 15)) << tp;
    std::vector<std::string> expected_values;
    for (size_t i = static_cast<size_t>(p); i < sent.size(); i += 3) expected_values.push_back(*sent[i].value);
    EXPECT_EQ(values_of(read, tp), expected_values) << tp;
  }
  for (const auto& record : read) {
    EXPECT_EQ((written[{record.partition, record.offset}]), record.value.value_or("<null>"))
        << "the consumer read a different value at " << record.partition << "@" << record.offset
        << " than the delivery report placed there";
  }
}

TEST_P(Conformance, KeyedRecordsLandOnTheMurmur2Partition) {
  const std::string topic = unique("keyed");
  ASSERT_TRUE(create_topics({{topic, 10}}));
  std::vector<std::string> keys = {"", "kafka", "abc", "foobar"};
  for (int i = 0; i < 40; ++i) keys.push_back("key-" + std::to_string(i));
  std::vector<Result<RecordMetadata>> reports;
  client("producer", [&](Env& env) {
    auto producer = make_producer(env);
    ASSERT_NE(producer, nullptr);
    std::vector<ProducerRecord> records;
    for (const auto& key : keys) {
      ProducerRecord record;
      record.topic = topic;
      record.key = key;
      record.value = "for " + key;
      records.push_back(std::move(record));
    }
    reports = produce_and_wait(*producer, records);
  });
  ASSERT_TRUE(run_clients());
  ASSERT_EQ(reports.size(), keys.size());
  for (const auto& report : reports) ASSERT_TRUE(is_ok(report));
  // Golden values: where the Java client puts these keys in a 10-partition topic.
  EXPECT_EQ(reports[0].value().tp.partition, 1) << "key \"\" (empty, not null)";
  EXPECT_EQ(reports[1].value().tp.partition, 0) << "key \"kafka\"";
  EXPECT_EQ(reports[2].value().tp.partition, 7) << "key \"abc\"";
  EXPECT_EQ(reports[3].value().tp.partition, 6) << "key \"foobar\"";
  std::set<int32_t> used;
  for (size_t i = 0; i < keys.size(); ++i) {
    EXPECT_EQ(reports[i].value().tp.partition, kafka_partition_for_key(keys[i], 10)) << "key \"" << keys[i] << "\"";
    used.insert(reports[i].value().tp.partition);
  }
  EXPECT_GE(used.size(), 5U) << "44 keys should spread over most of 10 partitions";
}

TEST_P(Conformance, ExplicitPartitionOverridesTheKeyHash) {
  const std::string topic = unique("explicit");
  ASSERT_TRUE(create_topics({{topic, 10}}));
  ASSERT_EQ(kafka_partition_for_key("kafka", 10), 0);
  std::vector<RecordMetadata> reports;
  std::vector<ConsumerRecord> read;
  client("producer-then-reader", [&](Env& env) {
    auto producer = make_producer(env);
    ASSERT_NE(producer, nullptr);
    ProducerRecord record;
    record.topic = topic;
    record.partition = 7;
    record.key = "kafka";  // hashes to partition 0
    record.value = "pinned";
    reports = produce_ok(*producer, {record});
    read = read_records(env, {{topic, 7}}, 1);
  });
  ASSERT_TRUE(run_clients());
  ASSERT_EQ(reports.size(), 1U);
  EXPECT_EQ(reports[0].tp, (TopicPartition{topic, 7}));
  ASSERT_EQ(read.size(), 1U);
  EXPECT_EQ(read[0].partition, 7);
  EXPECT_EQ(read[0].key, std::optional<std::string>("kafka"));
  EXPECT_EQ(read[0].value, std::optional<std::string>("pinned"));
}

TEST_P(Conformance, SendToAPartitionBeyondTheTopicFails) {
  const std::string topic = unique("two-partitions");
  ASSERT_TRUE(create_topics({{topic, 2}}));
  std::vector<Result<RecordMetadata>> reports;
  client("producer", [&](Env& env) {
    auto producer = make_producer(env);
    ASSERT_NE(producer, nullptr);
    reports = produce_and_wait(*producer, records_for({topic, 5}, {"nowhere"}));
  });
  ASSERT_TRUE(run_clients());
  ASSERT_EQ(reports.size(), 1U);
  // At send() or in the delivery report, as librdkafka reports it.
  EXPECT_TRUE(has_code_in(reports[0], {ErrorCode::kUnknownPartition, ErrorCode::kUnknownTopicOrPartition}));
}

TEST_P(Conformance, HeadersRoundTripInOrderWithDuplicateKeysAndNullValues) {
  const std::string topic = unique("headers");
  ASSERT_TRUE(create_topics({{topic, 1}}));
  const std::vector<Header> headers = {
      {"trace-id", "abc-123"}, {"dup", "first"}, {"dup", "second"}, {"null-valued", std::nullopt}, {"empty", ""}};
  std::vector<ConsumerRecord> read;
  client("producer-then-reader", [&](Env& env) {
    auto producer = make_producer(env);
    ASSERT_NE(producer, nullptr);
    auto records = records_for({topic, 0}, {"with-headers", "without-headers"});
    records[0].headers = headers;
    ASSERT_EQ(produce_ok(*producer, records).size(), 2U);
    read = read_records(env, {{topic, 0}}, 2);
  });
  ASSERT_TRUE(run_clients());
  ASSERT_EQ(read.size(), 2U);
  EXPECT_EQ(read[0].headers, headers);
  EXPECT_TRUE(read[1].headers.empty());
}

TEST_P(Conformance, ExplicitTimestampRoundTrips) {
  const std::string topic = unique("timestamps");
  ASSERT_TRUE(create_topics({{topic, 1}}));
  constexpr int64_t kTimestampMs = 1'600'000'000'123;
  std::vector<RecordMetadata> reports;
  std::vector<ConsumerRecord> read;
  client("producer-then-reader", [&](Env& env) {
    auto producer = make_producer(env);
    ASSERT_NE(producer, nullptr);
    auto records = records_for({topic, 0}, {"old", "older"});
    records[0].timestamp_ms = kTimestampMs;
    records[1].timestamp_ms = kTimestampMs - 86'400'000;  // timestamps need not increase
    reports = produce_ok(*producer, records);
    read = read_records(env, {{topic, 0}}, 2);
  });
  ASSERT_TRUE(run_clients());
  ASSERT_EQ(reports.size(), 2U);
  EXPECT_EQ(reports[0].timestamp_ms, kTimestampMs) << "CreateTime topics report the record's own timestamp";
  ASSERT_EQ(read.size(), 2U);
  EXPECT_EQ(read[0].timestamp_ms, kTimestampMs);
  EXPECT_EQ(read[1].timestamp_ms, kTimestampMs - 86'400'000);
}

TEST_P(Conformance, DefaultTimestampIsTheProducersClockAtSend) {
  const std::string topic = unique("default-timestamp");
  ASSERT_TRUE(create_topics({{topic, 1}}));
  int64_t before_send = 0;
  int64_t after_flush = 0;
  std::vector<ConsumerRecord> read;
  client("producer-then-reader", [&](Env& env) {
    auto producer = make_producer(env);
    ASSERT_NE(producer, nullptr);
    before_send = env.clock->now_ms();
    ASSERT_EQ(produce_ok(*producer, records_for({topic, 0}, {"now"})).size(), 1U);
    after_flush = env.clock->now_ms();
    read = read_records(env, {{topic, 0}}, 1);
  });
  ASSERT_TRUE(run_clients());
  ASSERT_EQ(read.size(), 1U);
  EXPECT_GE(read[0].timestamp_ms, before_send);
  EXPECT_LE(read[0].timestamp_ms, after_flush);
}

TEST_P(Conformance, NullKeyAndNullValueRoundTripDistinctFromEmpty) {
  const std::string topic = unique("nulls");
  ASSERT_TRUE(create_topics({{topic, 1}}));
  std::vector<ConsumerRecord> read;
  client("producer-then-reader", [&](Env& env) {
    auto producer = make_producer(env);
    ASSERT_NE(producer, nullptr);
    std::vector<ProducerRecord> records(4);
    for (auto& record : records) {
      record.topic = topic;
      record.partition = 0;
    }
    // [0] null key, null value (a tombstone without key); [1] empty key, empty value;
    // [2] key with a null value (a tombstone); [3] null key with a value.
    records[1].key = "";
    records[1].value = "";
    records[2].key = "k";
    records[3].value = "v";
    ASSERT_EQ(produce_ok(*producer, records).size(), 4U);
    read = read_records(env, {{topic, 0}}, 4);
  });
  ASSERT_TRUE(run_clients());
  ASSERT_EQ(read.size(), 4U);
  EXPECT_EQ(read[0].key, std::nullopt);
  EXPECT_EQ(read[0].value, std::nullopt);
  EXPECT_EQ(read[1].key, std::optional<std::string>(""));
  EXPECT_EQ(read[1].value, std::optional<std::string>(""));
  EXPECT_EQ(read[2].key, std::optional<std::string>("k"));
  EXPECT_EQ(read[2].value, std::nullopt);
  EXPECT_EQ(read[3].key, std::nullopt);
  EXPECT_EQ(read[3].value, std::optional<std::string>("v"));
}

TEST_P(Conformance, BinaryKeysAndValuesRoundTripByteForByte) {
  const std::string topic = unique("binary");
  ASSERT_TRUE(create_topics({{topic, 1}}));
  const std::string key("\0\x01\xff k", 5);
  std::string value;
  for (int i = 0; i < 256; ++i) value.push_back(static_cast<char>(i));
  std::vector<ConsumerRecord> read;
  client("producer-then-reader", [&](Env& env) {
    auto producer = make_producer(env);
    ASSERT_NE(producer, nullptr);
    ProducerRecord record;
    record.topic = topic;
    record.partition = 0;
    record.key = key;
    record.value = value;
    ASSERT_EQ(produce_ok(*producer, {record}).size(), 1U);
    read = read_records(env, {{topic, 0}}, 1);
  });
  ASSERT_TRUE(run_clients());
  ASSERT_EQ(read.size(), 1U);
  EXPECT_EQ(read[0].key, std::optional<std::string>(key));
  EXPECT_EQ(read[0].value, std::optional<std::string>(value));
}

TEST_P(Conformance, FlushReturnsOnlyAfterEveryDeliveryReport) {
  const std::string topic = unique("flush");
  ASSERT_TRUE(create_topics({{topic, 3}}));
  int reported = 0;
  int reported_at_flush_return = -1;
  std::optional<Status> flushed;
  client("producer", [&](Env& env) {
    auto producer = make_producer(env);
    ASSERT_NE(producer, nullptr);
    for (int i = 0; i < 60; ++i) {
      ASSERT_TRUE(is_ok(producer->send(records_for({topic, i % 3}, {"r" + std::to_string(i)})[0],
                                       [&](const Result<RecordMetadata>& report) {
                                         EXPECT_TRUE(is_ok(report));
                                         ++reported;
                                       })));
    }
    flushed = producer->flush(kFlushTimeoutMs);
    reported_at_flush_return = reported;
  });
  ASSERT_TRUE(run_clients());
  ASSERT_TRUE(flushed.has_value());
  EXPECT_TRUE(is_ok(*flushed));
  EXPECT_EQ(reported_at_flush_return, 60);
}

TEST_P(Conformance, EachRecordGetsExactlyOneDeliveryReport) {
  const std::string topic = unique("exactly-once-reports");
  ASSERT_TRUE(create_topics({{topic, 2}}));
  std::vector<int> reports_per_record(100, 0);
  std::set<std::pair<int32_t, int64_t>> positions;
  client("producer", [&](Env& env) {
    auto producer = make_producer(env);
    ASSERT_NE(producer, nullptr);
    for (int i = 0; i < 100; ++i) {
      ASSERT_TRUE(is_ok(producer->send(records_for({topic, i % 2}, {"r" + std::to_string(i)})[0],
                                       [&, i](const Result<RecordMetadata>& report) {
                                         ++reports_per_record[static_cast<size_t>(i)];
                                         if (report.ok()) {
                                           positions.insert({report->tp.partition, report->offset});
                                         } else {
                                           ADD_FAILURE() << "record " << i << ": " << describe(report.error());
                                         }
                                       })));
    }
    ASSERT_TRUE(is_ok(producer->flush(kFlushTimeoutMs)));
    // A late duplicate report would show up here.
    sleep_for(env, 5000);
    ASSERT_TRUE(is_ok(producer->flush(kFlushTimeoutMs)));
  });
  ASSERT_TRUE(run_clients());
  for (size_t i = 0; i < reports_per_record.size(); ++i) {
    EXPECT_EQ(reports_per_record[i], 1) << "record " << i;
  }
  EXPECT_EQ(positions.size(), 100U) << "every record has its own (partition, offset)";
}

TEST_P(Conformance, SendToAnUnknownTopicFails) {
  const std::string topic = unique("does-not-exist");
  std::vector<Result<RecordMetadata>> reports;
  bool topic_still_unknown = false;
  client("producer", [&](Env& env) {
    auto producer = make_producer(env);
    ASSERT_NE(producer, nullptr);
    ProducerRecord record;
    record.topic = topic;
    record.value = "lost";
    // librdkafka fails such records after topic.metadata.propagation.max.ms (30 s): allow for that.
    reports = produce_and_wait(*producer, {record}, 90000);
    auto admin = make_admin(env);
    ASSERT_NE(admin, nullptr);
    topic_still_unknown =
        admin->describe_topic(topic, kAdminTimeoutMs).code() == ErrorCode::kUnknownTopicOrPartition;
  });
  ASSERT_TRUE(run_clients());
  ASSERT_EQ(reports.size(), 1U);
  // kUnknownTopic locally (at send or in the report) or kUnknownTopicOrPartition from the broker.
  EXPECT_TRUE(has_code_in(reports[0], {ErrorCode::kUnknownTopic, ErrorCode::kUnknownTopicOrPartition}));
  EXPECT_TRUE(topic_still_unknown) << "producing must not auto-create the topic";
}

TEST_P(Conformance, OversizedRecordFailsWithMessageTooLargeAndWritesNothing) {
  const std::string topic = unique("too-large");
  ASSERT_TRUE(create_topics({{topic, 1}}));
  std::vector<Result<RecordMetadata>> oversized;
  std::vector<RecordMetadata> normal;
  std::vector<ConsumerRecord> read;
  client("producer-then-reader", [&](Env& env) {
    auto producer = make_producer(env);
    ASSERT_NE(producer, nullptr);
    // Above the broker's max.message.bytes default (1048588) and librdkafka's message.max.bytes (1000000).
    oversized = produce_and_wait(*producer, records_for({topic, 0}, {std::string(1'100'000, 'x')}));
    normal = produce_ok(*producer, records_for({topic, 0}, {"fits"}));
    read = read_records(env, {{topic, 0}}, 1);
  });
  ASSERT_TRUE(run_clients());
  ASSERT_EQ(oversized.size(), 1U);
  EXPECT_TRUE(has_code(oversized[0], ErrorCode::kMessageTooLarge));
  ASSERT_EQ(normal.size(), 1U) << "the producer stays usable after a rejected record";
  EXPECT_EQ(normal[0].offset, 0) << "the rejected record took no offset";
  ASSERT_EQ(read.size(), 1U);
  EXPECT_EQ(read[0].value, std::optional<std::string>("fits"));
}

TEST_P(Conformance, SendFailsWithQueueFullWhenTooManyRecordsAwaitDelivery) {
  const std::string topic = unique("queue-full");
  ASSERT_TRUE(create_topics({{topic, 1}}));
  int accepted = 0;
  int queue_full = 0;
  int delivered = 0;
  client("producer", [&](Env& env) {
    ProducerConfig config;
    config.queue_max_records = 5;
    auto producer = make_producer(env, config);
    ASSERT_NE(producer, nullptr);
    // No yield between sends: nothing can be delivered meanwhile, so the sixth record finds the queue full.
    for (int i = 0; i < 20; ++i) {
      Status sent = producer->send(records_for({topic, 0}, {"q" + std::to_string(i)})[0],
                                   [&](const Result<RecordMetadata>& report) {
                                     EXPECT_TRUE(is_ok(report));
                                     ++delivered;
                                   });
      if (sent.ok()) {
        ++accepted;
      } else {
        EXPECT_TRUE(has_code(sent, ErrorCode::kQueueFull));
        ++queue_full;
      }
    }
    ASSERT_TRUE(is_ok(producer->flush(kFlushTimeoutMs)));
  });
  ASSERT_TRUE(run_clients());
  EXPECT_EQ(accepted, 5);
  EXPECT_EQ(queue_full, 15);
  EXPECT_EQ(delivered, accepted) << "every accepted record is delivered";
}

// --- idempotence (simulator-only: needs injected produce errors)

TEST_P(Conformance, IdempotentRetryAfterNotLeaderErrorWritesNoDuplicatesAndKeepsOrder) {
  CONFORMANCE_REQUIRE_SIM_FAULTS("injects NOT_LEADER_OR_FOLLOWER into Produce responses");
  const std::string topic = unique("idempotent-not-leader");
  ASSERT_TRUE(create_topics({{topic, 1}}));
  world().faults()->inject_errors("Produce", ErrorCode::kNotLeaderOrFollower, 3);
  const auto values = numbered("idem", 40);
  std::vector<RecordMetadata> reports;
  std::vector<ConsumerRecord> read;
  client("producer-then-reader", [&](Env& env) {
    auto producer = make_producer(env);
    ASSERT_NE(producer, nullptr);
    reports = produce_ok(*producer, records_for({topic, 0}, values));
    read = read_records(env, {{topic, 0}}, values.size(), IsolationLevel::kReadUncommitted, 2000);
  });
  ASSERT_TRUE(run_clients());
  ASSERT_EQ(reports.size(), values.size());
  for (size_t i = 0; i < reports.size(); ++i) EXPECT_EQ(reports[i].offset, static_cast<int64_t>(i));
  EXPECT_EQ(values_of(read), values) << "no duplicates, no gaps, send order kept";
  EXPECT_EQ(offsets_of(read, {topic, 0}), range_of(0, static_cast<int64_t>(values.size())));
}

TEST_P(Conformance, IdempotentRetryAfterRequestTimeoutWritesNoDuplicatesAndKeepsOrder) {
  CONFORMANCE_REQUIRE_SIM_FAULTS("injects REQUEST_TIMED_OUT into Produce responses");
  const std::string topic = unique("idempotent-timeout");
  ASSERT_TRUE(create_topics({{topic, 1}}));
  world().faults()->inject_errors("Produce", ErrorCode::kRequestTimedOut, 3);
  const auto values = numbered("idem", 40);
  std::vector<RecordMetadata> reports;
  std::vector<ConsumerRecord> read;
  client("producer-then-reader", [&](Env& env) {
    auto producer = make_producer(env);
    ASSERT_NE(producer, nullptr);
    reports = produce_ok(*producer, records_for({topic, 0}, values));
    read = read_records(env, {{topic, 0}}, values.size(), IsolationLevel::kReadUncommitted, 2000);
  });
  ASSERT_TRUE(run_clients());
  ASSERT_EQ(reports.size(), values.size());
  for (size_t i = 0; i < reports.size(); ++i) EXPECT_EQ(reports[i].offset, static_cast<int64_t>(i));
  EXPECT_EQ(values_of(read), values) << "no duplicates, no gaps, send order kept";
  EXPECT_EQ(offsets_of(read, {topic, 0}), range_of(0, static_cast<int64_t>(values.size())));
}

TEST_P(Conformance, IdempotentRetryAfterALostProduceResponseWritesNoDuplicates) {
  CONFORMANCE_REQUIRE_SIM_FAULTS("loses the broker's Produce responses after the append (drop_responses_to)");
  const std::string topic = unique("idempotent-lost-response");
  ASSERT_TRUE(create_topics({{topic, 1}}));
  const TopicPartition tp{topic, 0};
  const auto values = numbered("idem", 20);
  ClientId self = 0;
  std::vector<RecordMetadata> warmup;
  std::vector<RecordMetadata> reports;
  int64_t sent_at = -1;
  int64_t flushed_at = -1;
  std::vector<ConsumerRecord> read;
  self = client("producer-then-reader", [&](Env& env) {
    ProducerConfig config;
    config.request_timeout_ms = 5000;
    auto producer = make_producer(env, config);
    ASSERT_NE(producer, nullptr);
    // Metadata and producer id first, so that only the data's responses are lost.
    warmup = produce_ok(*producer, records_for(tp, {"warmup"}));
    ASSERT_EQ(warmup.size(), 1U);
    world().faults()->drop_responses_to(self, 3000);
    sent_at = env.clock->now_ms();
    reports = produce_ok(*producer, records_for(tp, values), 60000);
    flushed_at = env.clock->now_ms();
    read = read_records(env, {tp}, values.size() + 1, IsolationLevel::kReadUncommitted, 2000);
  });
  ASSERT_TRUE(run_clients());
  EXPECT_GE(flushed_at - sent_at, 3000) << "the responses were not lost: the case did not exercise a retry";
  ASSERT_EQ(reports.size(), values.size());
  for (size_t i = 0; i < reports.size(); ++i) {
    EXPECT_EQ(reports[i].offset, static_cast<int64_t>(i) + 1) << "the retry must report the first write's offset";
  }
  auto expected = values;
  expected.insert(expected.begin(), "warmup");
  EXPECT_EQ(values_of(read), expected) << "the broker must drop the retried batch as a duplicate";
  EXPECT_EQ(offsets_of(read, tp), range_of(0, static_cast<int64_t>(expected.size())));
}

TEST_P(Conformance, AcknowledgedRecordsSurviveLeaderFailover) {
  CONFORMANCE_REQUIRE_SIM_FAULTS("crashes the partition leader's broker (needs 3 brokers)");
  const std::string topic = unique("failover");
  ASSERT_TRUE(create_topics({{topic, 1, {}, 3}}));
  int32_t old_leader = -1;
  int32_t new_leader = -1;
  std::vector<RecordMetadata> before;
  std::vector<RecordMetadata> after;
  std::vector<ConsumerRecord> read;
  const auto first_values = numbered("before", 10);
  const auto second_values = numbered("after", 10);
  client("producer", [&](Env& env) {
    auto admin = make_admin(env);
    auto producer = make_producer(env);
    ASSERT_TRUE(admin != nullptr && producer != nullptr);
    auto described = admin->describe_topic(topic, kAdminTimeoutMs);
    ASSERT_TRUE(is_ok(described));
    old_leader = described->partitions.at(0).leader;
    before = produce_ok(*producer, records_for({topic, 0}, first_values));
    world().faults()->crash_broker(old_leader);
    after = produce_ok(*producer, records_for({topic, 0}, second_values), 60000);
    ASSERT_TRUE(wait_until(
        env,
        [&] {
          auto now = admin->describe_topic(topic, kAdminTimeoutMs);
          if (!now.ok()) return false;
          new_leader = now->partitions.at(0).leader;
          return new_leader != -1 && new_leader != old_leader;
        },
        kAdminTimeoutMs, 100));
    read = read_records(env, {{topic, 0}}, 20, IsolationLevel::kReadUncommitted, 1000);
  });
  ASSERT_TRUE(run_clients());
  EXPECT_EQ(before.size(), 10U);
  EXPECT_EQ(after.size(), 10U);
  EXPECT_NE(new_leader, old_leader);
  auto expected = first_values;
  expected.insert(expected.end(), second_values.begin(), second_values.end());
  EXPECT_EQ(values_of(read), expected) << "acknowledged records survive the failover, once each, in order";
}

}  // namespace
}  // namespace mephisto::conformance
