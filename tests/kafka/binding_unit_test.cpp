// Unit tests of the librdkafka binding that need no broker: configuration errors name the property, the group
// metadata reader round-trips librdkafka's serialisation, errors map onto the seam's codes, and a broker that
// is down gives a bounded, named error instead of a hang.
#include <gtest/gtest.h>
#include <librdkafka/rdkafka.h>

#include <memory>
#include <optional>
#include <string>

#include "runtime/kafka/kafka_broker_client.h"
#include "runtime/kafka/rd_errors.h"
#include "runtime/kafka/rd_group_metadata.h"
#include "runtime/kafka/rd_handles.h"
#include "runtime/loop/event_loop.h"

namespace mephisto {
namespace {

// An address nothing listens on (port 1 is reserved and closed on test machines).
constexpr const char* kDeadBroker = "127.0.0.1:1";

TEST(KafkaBindingConfig, UnknownPropertyIsAnErrorNamingIt) {
  EventLoop loop;
  KafkaBrokerClient client(loop,
                           {.bootstrap_servers = kDeadBroker, .properties = {{"sasl.mechanismz", "PLAIN"}}});
  Status status = client.check_config();
  ASSERT_EQ(status.code(), ErrorCode::kInvalidArg);
  EXPECT_NE(status.error().message.find("sasl.mechanismz"), std::string::npos) << status.error().message;
}

TEST(KafkaBindingConfig, InvalidValueIsAnErrorNamingPropertyAndValue) {
  EventLoop loop;
  KafkaBrokerClient client(loop,
                           {.bootstrap_servers = kDeadBroker, .properties = {{"socket.timeout.ms", "soon"}}});
  Status status = client.check_config();
  ASSERT_EQ(status.code(), ErrorCode::kInvalidArg);
  EXPECT_NE(status.error().message.find("socket.timeout.ms"), std::string::npos) << status.error().message;
  EXPECT_NE(status.error().message.find("soon"), std::string::npos) << status.error().message;
}

TEST(KafkaBindingConfig, SecretValuesAreNotEchoed) {
  EventLoop loop;
  KafkaBrokerClient client(loop,
                           {.bootstrap_servers = kDeadBroker, .properties = {{"sasl.passwordz", "hunter2"}}});
  Status status = client.check_config();
  ASSERT_EQ(status.code(), ErrorCode::kInvalidArg);
  EXPECT_EQ(status.error().message.find("hunter2"), std::string::npos) << status.error().message;
}

TEST(KafkaBindingConfig, MissingBootstrapIsAnError) {
  EventLoop loop;
  KafkaBrokerClient client(loop, {});
  Status status = client.check_config();
  ASSERT_EQ(status.code(), ErrorCode::kInvalidArg);
  EXPECT_NE(status.error().message.find("bootstrap"), std::string::npos) << status.error().message;
}

TEST(KafkaBindingConfig, PassThroughPropertiesAreAccepted) {
  EventLoop loop;
  KafkaBrokerClient client(loop, {.bootstrap_servers = kDeadBroker,
                                  .properties = {{"security.protocol", "plaintext"},
                                                 {"socket.timeout.ms", "10000"},
                                                 {"reconnect.backoff.ms", "50"}}});
  EXPECT_TRUE(client.check_config().ok());
  ProducerConfig producer;
  producer.extra = {{"batch.num.messages", "1000"}, {"compression.type", "lz4"}};
  EXPECT_TRUE(client.producer(producer).ok());
  ConsumerConfig consumer;
  consumer.group_id = "g";
  consumer.extra = {{"fetch.max.bytes", "1048576"}};
  EXPECT_TRUE(client.consumer(consumer).ok());
}

TEST(KafkaBindingConfig, ClientSettingsAreValidatedAsTheSeamSays) {
  EventLoop loop;
  KafkaBrokerClient client(loop, {.bootstrap_servers = kDeadBroker, .properties = {}});
  ProducerConfig bad_acks;
  bad_acks.acks = 2;
  EXPECT_EQ(client.producer(bad_acks).code(), ErrorCode::kInvalidArg);
  ProducerConfig idempotent_acks1;
  idempotent_acks1.acks = 1;
  EXPECT_EQ(client.producer(idempotent_acks1).code(), ErrorCode::kInvalidArg);
  ProducerConfig unknown_extra;
  unknown_extra.extra = {{"lingerz.ms", "5"}};
  auto producer = client.producer(unknown_extra);
  ASSERT_EQ(producer.code(), ErrorCode::kInvalidArg);
  EXPECT_NE(producer.error().message.find("lingerz.ms"), std::string::npos);
  ConsumerConfig heartbeat_too_long;
  heartbeat_too_long.group_id = "g";
  heartbeat_too_long.heartbeat_interval_ms = heartbeat_too_long.session_timeout_ms;
  EXPECT_EQ(client.consumer(heartbeat_too_long).code(), ErrorCode::kInvalidArg);
}

TEST(KafkaBindingConfig, TransactionalProducerFitsDeliveryTimeoutInTransactionTimeout) {
  // librdkafka refuses delivery.timeout.ms > transaction.timeout.ms; the seam's defaults (120 s / 60 s) must
  // work.
  EventLoop loop;
  KafkaBrokerClient client(loop, {.bootstrap_servers = kDeadBroker, .properties = {}});
  ProducerConfig config;
  config.transactional_id = "t";
  auto producer = client.producer(config);
  EXPECT_TRUE(producer.ok()) << (producer.ok() ? "" : producer.error().to_string());
}

TEST(KafkaBindingGroupMetadata, RoundTripsLibrdkafkasSerialisation) {
  rd::GroupMetadataPtr with_instance(
      rd_kafka_consumer_group_metadata_new_with_genid("orders", 42, "member-7", "pod-3"));
  Result<GroupMetadata> read = rd::read_group_metadata(with_instance.get());
  ASSERT_TRUE(read.ok()) << read.error().to_string();
  EXPECT_EQ(read->group_id, "orders");
  EXPECT_EQ(read->generation_id, 42);
  EXPECT_EQ(read->member_id, "member-7");
  EXPECT_EQ(read->group_instance_id, "pod-3");

  rd::GroupMetadataPtr without(rd_kafka_consumer_group_metadata_new_with_genid("g", -1, "", nullptr));
  read = rd::read_group_metadata(without.get());
  ASSERT_TRUE(read.ok()) << read.error().to_string();
  EXPECT_EQ(read->group_id, "g");
  EXPECT_EQ(read->generation_id, -1);
  EXPECT_EQ(read->member_id, "");
  EXPECT_FALSE(read->group_instance_id.has_value());
}

TEST(KafkaBindingErrors, CodesMapOneToOneAndUnknownCodesAreFailures) {
  EXPECT_EQ(rd::to_code(RD_KAFKA_RESP_ERR_PRODUCER_FENCED), ErrorCode::kProducerFenced);
  EXPECT_EQ(rd::to_code(RD_KAFKA_RESP_ERR__TIMED_OUT), ErrorCode::kTimedOut);
  EXPECT_EQ(rd::to_code(RD_KAFKA_RESP_ERR__QUEUE_FULL), ErrorCode::kQueueFull);
  EXPECT_EQ(rd::to_code(RD_KAFKA_RESP_ERR_UNSTABLE_OFFSET_COMMIT), ErrorCode::kUnstableOffsetCommit);
  EXPECT_EQ(rd::to_code(RD_KAFKA_RESP_ERR_NOT_COORDINATOR), ErrorCode::kNotCoordinator);
  // A code the seam does not name is never success.
  EXPECT_EQ(rd::to_code(RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED), ErrorCode::kFail);
  Error error = rd::to_error(RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED, "connect");
  EXPECT_NE(error.message.find("SASL_AUTHENTICATION_FAILED"), std::string::npos) << error.message;
  // Kafka's classification survives the mapping.
  EXPECT_TRUE(rd::to_error(RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION, "x").retriable);
  EXPECT_TRUE(rd::to_error(RD_KAFKA_RESP_ERR_PRODUCER_FENCED, "x").fatal);
}

TEST(KafkaBindingBrokerDown, AdminCallsFailInBoundedTimeWithANamedError) {
  EventLoop loop;
  KafkaBrokerClient client(loop, {.bootstrap_servers = kDeadBroker, .properties = {}});
  std::optional<Error> failure;
  bool listed = false;
  loop.spawn("admin", [&] {
    auto admin = client.admin();
    ASSERT_TRUE(admin.ok());
    auto topics = (*admin)->list_topics(1500);
    listed = topics.ok();
    if (!topics.ok()) failure = topics.error();
  });
  const int64_t started_ms = loop.clock().now_ms();
  ASSERT_TRUE(loop.run({}, started_ms + 20000));
  EXPECT_LT(loop.clock().now_ms() - started_ms, 10000);
  ASSERT_FALSE(listed);
  ASSERT_TRUE(failure.has_value());
  EXPECT_TRUE(failure->code == ErrorCode::kTimedOut || failure->code == ErrorCode::kTransport ||
              failure->code == ErrorCode::kAllBrokersDown)
      << failure->to_string();
}

}  // namespace
}  // namespace mephisto
