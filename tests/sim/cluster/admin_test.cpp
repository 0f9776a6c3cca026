// Metadata, CreateTopics/DeleteTopics validation, FindCoordinator hashing, protocol helpers, error injection,
// determinism of the cluster's event log.
#include "cluster_fixture.h"

namespace mephisto::sim::testing {
namespace {

class AdminTest : public ClusterFixture {};

TEST(Protocol, ApiKeysAndErrorResponsesMatchTheRequestType) {
  Request req = ProduceRequest{};
  std::get<ProduceRequest>(req).partitions.push_back({{"t", 0}, {}});
  EXPECT_EQ(api_key(req), ApiKey::kProduce);
  Response r = error_response(req, ErrorCode::kNotLeaderOrFollower);
  ASSERT_TRUE(std::holds_alternative<ProduceResponse>(r));
  EXPECT_EQ(std::get<ProduceResponse>(r).partitions.at(0).error, ErrorCode::kNotLeaderOrFollower);
  EXPECT_EQ(first_error(r), ErrorCode::kNotLeaderOrFollower);
  EXPECT_EQ(api_key(Request{OffsetFetchRequest{}}), ApiKey::kOffsetFetch);
  EXPECT_EQ(first_error(error_response(Request{JoinGroupRequest{}}, ErrorCode::kNotCoordinator)),
            ErrorCode::kNotCoordinator);
  // The variants line up: alternative i answers alternative i.
  EXPECT_EQ(Request{EndTxnRequest{}}.index(), Response{EndTxnResponse{}}.index());
}

TEST(Protocol, MakeBatchNumbersRecords) {
  std::vector<Record> records(3);
  records[2].timestamp_ms = 77;
  records[1].value = std::string(100, 'x');
  const RecordBatch b = make_batch(std::move(records));
  EXPECT_EQ(b.last_offset_delta, 2);
  EXPECT_EQ(b.max_timestamp_ms, 77);
  EXPECT_EQ((*b.records)[2].offset_delta, 2);
  EXPECT_EQ(batch_size_bytes(b), 61 + 3 * 10 + 100);
}

TEST(Protocol, JavaStringHashMatchesJava) {
  EXPECT_EQ(Cluster::java_string_hash(""), 0);
  EXPECT_EQ(Cluster::java_string_hash("hello"), 99162322);
  EXPECT_EQ(Cluster::java_string_hash("\xc3\xa9"), 233);  // "é"
  // U+1F600 is the surrogate pair D83D DE00 in UTF-16.
  EXPECT_EQ(Cluster::java_string_hash("\xf0\x9f\x98\x80"), 0xD83D * 31 + 0xDE00);
  // "polygenelubricants".hashCode() == Integer.MIN_VALUE: Kafka's Utils.abs maps it to 0.
  EXPECT_EQ(Cluster::java_string_hash("polygenelubricants"), INT32_MIN);
}

TEST_F(AdminTest, CoordinatorIsLeaderOfTheHashedInternalPartition) {
  start();
  EXPECT_EQ(cluster().coordinator_partition(CoordinatorType::kGroup, "hello"), 99162322 % 5);
  EXPECT_EQ(cluster().coordinator_partition(CoordinatorType::kGroup, "polygenelubricants"), 0);
  const BrokerId b = coordinator(CoordinatorType::kGroup, "hello");
  EXPECT_EQ(b, leader({"__consumer_offsets", 99162322 % 5}));
  EXPECT_EQ(coordinator(CoordinatorType::kTransaction, "tx"),
            leader({"__transaction_state", cluster().coordinator_partition(CoordinatorType::kTransaction, "tx")}));
}

TEST_F(AdminTest, CreateTopicValidation) {
  start();
  EXPECT_EQ(create_topic("orders", 3, 3), ErrorCode::kNone);
  EXPECT_EQ(create_topic("orders", 3, 3), ErrorCode::kTopicAlreadyExists);
  EXPECT_EQ(create_topic(""), ErrorCode::kInvalidTopicException);
  EXPECT_EQ(create_topic("."), ErrorCode::kInvalidTopicException);
  EXPECT_EQ(create_topic(".."), ErrorCode::kInvalidTopicException);
  EXPECT_EQ(create_topic("has space"), ErrorCode::kInvalidTopicException);
  EXPECT_EQ(create_topic(std::string(250, 'a')), ErrorCode::kInvalidTopicException);
  EXPECT_EQ(create_topic(std::string(249, 'a')), ErrorCode::kNone);
  EXPECT_EQ(create_topic("my.topic"), ErrorCode::kNone);
  EXPECT_EQ(create_topic("my_topic"), ErrorCode::kInvalidTopicException);  // collides with my.topic
  EXPECT_EQ(create_topic("zero", 0), ErrorCode::kInvalidPartitions);
  EXPECT_EQ(create_topic("wide", 1, 4), ErrorCode::kInvalidReplicationFactor);
  EXPECT_EQ(create_topic("none", 1, 0), ErrorCode::kInvalidReplicationFactor);
  EXPECT_EQ(create_topic("cfg", 1, 3, {{"no.such.config", "1"}}), ErrorCode::kInvalidConfig);
  EXPECT_EQ(create_topic("cfg", 1, 3, {{"cleanup.policy", "shred"}}), ErrorCode::kInvalidConfig);
  EXPECT_EQ(create_topic("cfg", 1, 3, {{"min.insync.replicas", "two"}}), ErrorCode::kInvalidConfig);
  EXPECT_EQ(create_topic("cfg", 1, 3, {{"cleanup.policy", "compact"}, {"min.insync.replicas", "2"},
                                       {"retention.ms", "1000"}}),
            ErrorCode::kNone);
  EXPECT_EQ(create_topic("__consumer_offsets"), ErrorCode::kTopicAlreadyExists);
  // Defaults (-1) come from the cluster config.
  EXPECT_EQ(create_topic("defaults", -1, -1), ErrorCode::kNone);
  EXPECT_EQ(state({"defaults", 0}).replicas.size(), 3u);
  // A crashed broker does not count towards the replication factor.
  cluster().crash_broker(3);
  EXPECT_EQ(create_topic("after-crash", 1, 3), ErrorCode::kInvalidReplicationFactor);
  EXPECT_EQ(create_topic("after-crash", 1, 2), ErrorCode::kNone);
  for (BrokerId b : state({"after-crash", 0}).replicas) EXPECT_NE(b, 3);
}

TEST_F(AdminTest, ValidateOnlyCreatesNothing) {
  start();
  CreateTopicsRequest req;
  req.validate_only = true;
  req.topics.push_back(TopicSpec{"ghost", 2, 3, {}});
  EXPECT_EQ(call<CreateTopicsResponse>(1, req).topics.at(0).error, ErrorCode::kNone);
  EXPECT_FALSE(cluster().partition_state({"ghost", 0}).has_value());
}

TEST_F(AdminTest, MetadataDescribesTopicsBrokersAndLiveness) {
  start();
  ASSERT_EQ(create_topic("t", 3, 2), ErrorCode::kNone);
  MetadataRequest req;
  req.topics = std::vector<std::string>{"t", "missing", "bad name"};
  auto md = call<MetadataResponse>(2, req);
  ASSERT_EQ(md.brokers.size(), 3u);
  for (const auto& b : md.brokers) EXPECT_TRUE(b.alive);
  ASSERT_EQ(md.topics.size(), 3u);
  EXPECT_EQ(md.topics[0].error, ErrorCode::kNone);
  ASSERT_EQ(md.topics[0].partitions.size(), 3u);
  for (const auto& p : md.topics[0].partitions) {
    EXPECT_EQ(p.replicas.size(), 2u);
    EXPECT_EQ(p.leader, p.replicas[0]);
    EXPECT_EQ(p.isr, p.replicas);
  }
  EXPECT_EQ(md.topics[1].error, ErrorCode::kUnknownTopicOrPartition);
  EXPECT_EQ(md.topics[2].error, ErrorCode::kInvalidTopicException);

  cluster().crash_broker(1);
  md = call<MetadataResponse>(2, MetadataRequest{});
  EXPECT_FALSE(md.brokers[0].alive);
  bool saw_internal = false;
  for (const auto& t : md.topics) {
    saw_internal = saw_internal || t.is_internal;
    for (const auto& p : t.partitions) {
      EXPECT_NE(p.leader, 1) << t.name << "-" << p.partition;
      const bool replicated_on_1 = std::find(p.replicas.begin(), p.replicas.end(), 1) != p.replicas.end();
      EXPECT_EQ(replicated_on_1, p.offline_replicas == std::vector<BrokerId>{1});
    }
  }
  EXPECT_TRUE(saw_internal);
}

TEST_F(AdminTest, CrashedBrokerNeverAnswers) {
  start();
  cluster().crash_broker(2);
  auto pending = send(2, MetadataRequest{});
  run_for(10000);
  EXPECT_FALSE(pending->done());
  EXPECT_FALSE(cluster().broker_alive(2));
  cluster().restart_broker(2);
  EXPECT_TRUE(call<MetadataResponse>(2, MetadataRequest{}).brokers[1].alive);
}

TEST_F(AdminTest, DeleteTopic) {
  start();
  ASSERT_EQ(create_topic("t"), ErrorCode::kNone);
  DeleteTopicsRequest req;
  req.topics = {"t", "missing", "__consumer_offsets"};
  auto r = call<DeleteTopicsResponse>(1, req);
  EXPECT_EQ(r.topics[0].error, ErrorCode::kNone);
  EXPECT_EQ(r.topics[1].error, ErrorCode::kUnknownTopicOrPartition);
  EXPECT_EQ(r.topics[2].error, ErrorCode::kInvalidTopicException);
  EXPECT_FALSE(cluster().partition_state({"t", 0}).has_value());
  auto p = call<ProduceResponse>(1, produce_request({"t", 0}, batch_of({"x"})));
  EXPECT_EQ(p.partitions[0].error, ErrorCode::kUnknownTopicOrPartition);
  EXPECT_EQ(cluster().topics(), std::vector<std::string>{});
}

TEST_F(AdminTest, InjectedErrorsFailTheNextRequestsOfThatApi) {
  start();
  ASSERT_EQ(create_topic("t", 1, 3), ErrorCode::kNone);
  const TopicPartition tp{"t", 0};
  cluster().inject_errors(ApiKey::kProduce, ErrorCode::kNotLeaderOrFollower, 2);
  EXPECT_EQ(produce(tp, batch_of({"a"})).error, ErrorCode::kNotLeaderOrFollower);
  // Other APIs are unaffected.
  EXPECT_EQ(fetch(tp, 0).error, ErrorCode::kNone);
  EXPECT_EQ(produce(tp, batch_of({"a"})).error, ErrorCode::kNotLeaderOrFollower);
  EXPECT_EQ(produce(tp, batch_of({"a"})).error, ErrorCode::kNone);
}

// The same seed gives the same run, event for event.
TEST(ClusterDeterminism, SameSeedSameEventLog) {
  const auto run = [](uint64_t seed) {
    EventLog log(0);
    Executor executor(seed, &log);
    ClusterConfig config;
    config.offsets_topic_partitions = 3;
    config.transaction_state_partitions = 3;
    Cluster cluster(executor, config);
    CreateTopicsRequest create;
    create.topics.push_back(TopicSpec{"t", 4, 3, {}});
    cluster.handle(1, create, [](Response) {});
    for (int i = 0; i < 50; ++i) {
      const TopicPartition tp{"t", i % 4};
      const BrokerId leader = cluster.partition_state(tp)->leader;
      std::vector<Record> records(3);
      ProduceRequest req;
      req.partitions.push_back({tp, make_batch(std::move(records))});
      cluster.handle(leader, req, [](Response) {});
      executor.run_until(executor.now_ms() + 7);
      if (i == 20) cluster.crash_broker(2);
      if (i == 35) cluster.restart_broker(2);
    }
    executor.run_until(executor.now_ms() + 5000);
    return std::make_pair(log.hash(), log.count());
  };
  EXPECT_EQ(run(7), run(7));
  EXPECT_NE(run(7).first, run(8).first);
}

}  // namespace
}  // namespace mephisto::sim::testing
