// Admin: create / describe / list / delete topics, and the validation errors Kafka's CreateTopics returns.
#include <algorithm>

#include "tests/conformance/conformance.h"

namespace mephisto::conformance {
namespace {

TEST_P(Conformance, CreatedTopicIsDescribedWithItsPartitionsReplicasAndLeaders) {
  const std::string topic = unique("described");
  std::optional<Result<TopicDescription>> described;
  client("admin", [&](Env& env) {
    auto admin = make_admin(env);
    ASSERT_NE(admin, nullptr);
    TopicSpec spec;
    spec.name = topic;
    spec.partitions = 3;
    spec.replication_factor = 1;
    ASSERT_TRUE(is_ok(admin->create_topic(spec, kAdminTimeoutMs)));
    described = admin->describe_topic(topic, kAdminTimeoutMs);
  });
  ASSERT_TRUE(run_clients());
  ASSERT_TRUE(described.has_value());
  ASSERT_TRUE(is_ok(*described));
  const TopicDescription& description = described->value();
  EXPECT_EQ(description.name, topic);
  ASSERT_EQ(description.partitions.size(), 3U);
  for (int32_t p = 0; p < 3; ++p) {
    const PartitionDescription& partition = description.partitions[static_cast<size_t>(p)];
    EXPECT_EQ(partition.partition, p) << "partitions must be ordered by id";
    EXPECT_EQ(partition.replicas.size(), 1U) << "replication factor 1";
    EXPECT_NE(std::find(partition.replicas.begin(), partition.replicas.end(), partition.leader),
              partition.replicas.end())
        << "partition " << p << "'s leader " << partition.leader << " is not one of its replicas";
    EXPECT_FALSE(partition.isr.empty()) << "a fresh partition has its leader in sync";
    for (int32_t broker : partition.isr) {
      EXPECT_NE(std::find(partition.replicas.begin(), partition.replicas.end(), broker), partition.replicas.end())
          << "in-sync replica " << broker << " is not a replica of partition " << p;
    }
  }
}

TEST_P(Conformance, ListTopicsIsSortedAndIncludesCreatedTopics) {
  const std::string second = unique("listed-b");
  const std::string first = unique("listed-a");
  std::optional<Result<std::vector<std::string>>> listed;
  client("admin", [&](Env& env) {
    ASSERT_TRUE(is_ok(create_topic(env, second, 1)));
    ASSERT_TRUE(is_ok(create_topic(env, first, 2)));
    auto admin = make_admin(env);
    ASSERT_NE(admin, nullptr);
    listed = admin->list_topics(kAdminTimeoutMs);
  });
  ASSERT_TRUE(run_clients());
  ASSERT_TRUE(listed.has_value());
  ASSERT_TRUE(is_ok(*listed));
  const auto& names = listed->value();
  EXPECT_TRUE(std::is_sorted(names.begin(), names.end()));
  EXPECT_NE(std::find(names.begin(), names.end(), first), names.end());
  EXPECT_NE(std::find(names.begin(), names.end(), second), names.end());
  for (const auto& name : names) {
    EXPECT_FALSE(name.starts_with("__")) << "internal topic " << name << " must not be listed";
  }
}

TEST_P(Conformance, DeletedTopicDisappearsFromDescribeAndList) {
  const std::string topic = unique("deleted");
  std::optional<Status> deleted;
  bool gone_from_describe = false;
  bool gone_from_list = false;
  client("admin", [&](Env& env) {
    ASSERT_TRUE(is_ok(create_topic(env, topic, 2)));
    auto admin = make_admin(env);
    ASSERT_NE(admin, nullptr);
    deleted = admin->delete_topic(topic, kAdminTimeoutMs);
    // Deletion completes asynchronously on real Kafka: wait (bounded) until metadata stops showing the topic.
    gone_from_describe = wait_until(
        env,
        [&] {
          return admin->describe_topic(topic, kAdminTimeoutMs).code() == ErrorCode::kUnknownTopicOrPartition;
        },
        kAdminTimeoutMs, 100);
    auto names = admin->list_topics(kAdminTimeoutMs);
    ASSERT_TRUE(is_ok(names));
    gone_from_list = std::find(names->begin(), names->end(), topic) == names->end();
  });
  ASSERT_TRUE(run_clients());
  ASSERT_TRUE(deleted.has_value());
  EXPECT_TRUE(is_ok(*deleted));
  EXPECT_TRUE(gone_from_describe) << "describe_topic still finds the deleted topic";
  EXPECT_TRUE(gone_from_list) << "list_topics still lists the deleted topic";
}

TEST_P(Conformance, CreatingAnExistingTopicFailsWithTopicAlreadyExistsAndKeepsIt) {
  const std::string topic = unique("existing");
  std::optional<Status> second_create;
  std::optional<Result<TopicDescription>> described;
  client("admin", [&](Env& env) {
    ASSERT_TRUE(is_ok(create_topic(env, topic, 3)));
    second_create = create_topic(env, topic, 5);
    auto admin = make_admin(env);
    ASSERT_NE(admin, nullptr);
    described = admin->describe_topic(topic, kAdminTimeoutMs);
  });
  ASSERT_TRUE(run_clients());
  ASSERT_TRUE(second_create.has_value());
  EXPECT_TRUE(has_code(*second_create, ErrorCode::kTopicAlreadyExists));
  ASSERT_TRUE(described.has_value());
  ASSERT_TRUE(is_ok(*described));
  EXPECT_EQ(described->value().partitions.size(), 3U) << "the failed create must not have changed the topic";
}

TEST_P(Conformance, InvalidTopicNamesAreRejectedWithInvalidTopicException) {
  // Kafka's legal names: [a-zA-Z0-9._-]{1,249}, except "." and "..".
  const std::vector<std::string> invalid = {"", "a/b", std::string(250, 'a'), ".", "..", "has space", "star*"};
  std::vector<Status> results;
  std::optional<Status> longest_legal;
  std::string legal_249 = unique("max-length");
  legal_249.resize(249, 'x');
  client("admin", [&](Env& env) {
    for (const auto& name : invalid) results.push_back(create_topic(env, name, 1));
    longest_legal = create_topic(env, legal_249, 1);
  });
  ASSERT_TRUE(run_clients());
  ASSERT_EQ(results.size(), invalid.size());
  for (size_t i = 0; i < invalid.size(); ++i) {
    EXPECT_TRUE(has_code(results[i], ErrorCode::kInvalidTopicException))
        << "name \"" << invalid[i].substr(0, 20) << (invalid[i].size() > 20 ? "...\"" : "\"") << " (length "
        << invalid[i].size() << ")";
  }
  ASSERT_TRUE(longest_legal.has_value());
  EXPECT_TRUE(is_ok(*longest_legal)) << "a 249-character name is legal";
}

TEST_P(Conformance, NonPositivePartitionCountIsRejectedWithInvalidPartitions) {
  const std::string zero = unique("zero-partitions");
  const std::string negative = unique("negative-partitions");
  std::optional<Status> zero_result;
  std::optional<Status> negative_result;
  std::optional<Result<TopicDescription>> after;
  client("admin", [&](Env& env) {
    zero_result = create_topic(env, zero, 0);
    negative_result = create_topic(env, negative, -1);
    auto admin = make_admin(env);
    ASSERT_NE(admin, nullptr);
    after = admin->describe_topic(zero, kAdminTimeoutMs);
  });
  ASSERT_TRUE(run_clients());
  ASSERT_TRUE(zero_result.has_value() && negative_result.has_value());
  EXPECT_TRUE(has_code(*zero_result, ErrorCode::kInvalidPartitions));
  EXPECT_TRUE(has_code(*negative_result, ErrorCode::kInvalidPartitions));
  ASSERT_TRUE(after.has_value());
  EXPECT_TRUE(has_code(*after, ErrorCode::kUnknownTopicOrPartition)) << "a rejected create must not create it";
}

TEST_P(Conformance, ReplicationFactorAboveBrokerCountIsRejectedWithInvalidReplicationFactor) {
  const std::string too_many = unique("rf-too-large");
  const std::string zero = unique("rf-zero");
  std::optional<Status> too_many_result;
  std::optional<Status> zero_result;
  std::optional<Result<TopicDescription>> after;
  client("admin", [&](Env& env) {
    too_many_result = create_topic(env, too_many, 1, {}, 99);
    zero_result = create_topic(env, zero, 1, {}, 0);
    auto admin = make_admin(env);
    ASSERT_NE(admin, nullptr);
    after = admin->describe_topic(too_many, kAdminTimeoutMs);
  });
  ASSERT_TRUE(run_clients());
  ASSERT_TRUE(too_many_result.has_value() && zero_result.has_value());
  EXPECT_TRUE(has_code(*too_many_result, ErrorCode::kInvalidReplicationFactor));
  EXPECT_TRUE(has_code(*zero_result, ErrorCode::kInvalidReplicationFactor));
  ASSERT_TRUE(after.has_value());
  EXPECT_TRUE(has_code(*after, ErrorCode::kUnknownTopicOrPartition)) << "a rejected create must not create it";
}

TEST_P(Conformance, UnknownOrInvalidTopicConfigIsRejectedWithInvalidConfig) {
  const std::string unknown_name = unique("unknown-config");
  const std::string bad_value = unique("bad-config-value");
  std::optional<Status> unknown_result;
  std::optional<Status> bad_value_result;
  std::optional<Result<TopicDescription>> after;
  client("admin", [&](Env& env) {
    unknown_result = create_topic(env, unknown_name, 1, {{"no.such.config", "1"}});
    bad_value_result = create_topic(env, bad_value, 1, {{"cleanup.policy", "shred"}});
    auto admin = make_admin(env);
    ASSERT_NE(admin, nullptr);
    after = admin->describe_topic(unknown_name, kAdminTimeoutMs);
  });
  ASSERT_TRUE(run_clients());
  ASSERT_TRUE(unknown_result.has_value() && bad_value_result.has_value());
  EXPECT_TRUE(has_code(*unknown_result, ErrorCode::kInvalidConfig));
  EXPECT_TRUE(has_code(*bad_value_result, ErrorCode::kInvalidConfig));
  ASSERT_TRUE(after.has_value());
  EXPECT_TRUE(has_code(*after, ErrorCode::kUnknownTopicOrPartition)) << "a rejected create must not create it";
}

TEST_P(Conformance, DescribingAnUnknownTopicFailsWithUnknownTopicOrPartition) {
  const std::string topic = unique("never-created");
  std::optional<Result<TopicDescription>> described;
  client("admin", [&](Env& env) {
    auto admin = make_admin(env);
    ASSERT_NE(admin, nullptr);
    described = admin->describe_topic(topic, kAdminTimeoutMs);
  });
  ASSERT_TRUE(run_clients());
  ASSERT_TRUE(described.has_value());
  EXPECT_TRUE(has_code(*described, ErrorCode::kUnknownTopicOrPartition));
}

TEST_P(Conformance, DeletingAnUnknownTopicFailsWithUnknownTopicOrPartition) {
  const std::string topic = unique("never-created");
  std::optional<Status> deleted;
  client("admin", [&](Env& env) {
    auto admin = make_admin(env);
    ASSERT_NE(admin, nullptr);
    deleted = admin->delete_topic(topic, kAdminTimeoutMs);
  });
  ASSERT_TRUE(run_clients());
  ASSERT_TRUE(deleted.has_value());
  EXPECT_TRUE(has_code(*deleted, ErrorCode::kUnknownTopicOrPartition));
}

}  // namespace
}  // namespace mephisto::conformance
