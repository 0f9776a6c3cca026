// AppSettings (runtime/app/settings.h): Faust's defaults, parsing every setting from text, the environment,
// and validate()'s checks, each error naming the setting, the bad value and what is accepted.
#include "runtime/app/settings.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>

namespace mephisto {
namespace {

using ::testing::HasSubstr;

AppSettings valid_settings() {
  AppSettings settings;
  settings.id = "orders-app";
  return settings;
}

// The error message of a failed status; fails the test if it succeeded.
std::string error_of(const Status& status) {
  EXPECT_FALSE(status.ok());
  if (status.ok()) return {};
  EXPECT_EQ(status.code(), ErrorCode::kInvalidArg);
  return status.error().message;
}

TEST(AppSettingsTest, DefaultsAreFaustsUnlessDocumentedOtherwise) {
  const AppSettings settings;
  EXPECT_EQ(settings.broker_commit_interval_ms, 2800);  // Faust: broker_commit_interval 2.8 s
  EXPECT_EQ(settings.broker_commit_every, 10000);
  EXPECT_EQ(settings.stream_buffer_maxsize, 4096);
  EXPECT_EQ(settings.broker_session_timeout_ms, 60000);
  EXPECT_EQ(settings.broker_heartbeat_interval_ms, 3000);
  EXPECT_EQ(settings.broker_max_poll_interval_ms, 1000000);
  EXPECT_EQ(settings.consumer_auto_offset_reset, OffsetReset::kEarliest);
  EXPECT_EQ(settings.producer_acks, -1);  // acks=all
  EXPECT_EQ(settings.topic_partitions, 8);
  EXPECT_EQ(settings.processing_guarantee, ProcessingGuarantee::kAtLeastOnce);
  EXPECT_EQ(settings.broker, "kafka://localhost:9092");
  EXPECT_EQ(settings.store, "memory://");
  EXPECT_TRUE(settings.id.empty());  // required: validate() says so
}

TEST(AppSettingsTest, DefaultsWithAnIdAreValid) {
  EXPECT_TRUE(validate(valid_settings()).ok());
}

TEST(AppSettingsTest, SettingNamesAreSortedAndEachIsAccepted) {
  const auto names = setting_names();
  EXPECT_TRUE(std::is_sorted(names.begin(), names.end()));
  EXPECT_THAT(names, ::testing::Contains("broker_commit_interval_ms"));
  EXPECT_THAT(names, ::testing::Contains("consumer_assignment_strategy"));
  EXPECT_THAT(names, ::testing::Contains("id"));
  EXPECT_EQ(names.size(), 25u);
  // Each name takes some text: any error must be about the value, never "unknown setting".
  for (const auto& name : names) {
    AppSettings settings;
    Status status = set_setting(settings, name, "1");
    if (!status.ok()) {
      EXPECT_THAT(status.error().message, ::testing::Not(HasSubstr("unknown setting"))) << name;
    }
  }
}

TEST(AppSettingsTest, SetsIntegers) {
  AppSettings settings;
  ASSERT_TRUE(set_setting(settings, "broker_commit_interval_ms", "1000").ok());
  ASSERT_TRUE(set_setting(settings, "broker_commit_every", "7").ok());
  ASSERT_TRUE(set_setting(settings, "stream_buffer_maxsize", "100").ok());
  ASSERT_TRUE(set_setting(settings, "topic_partitions", "3").ok());
  ASSERT_TRUE(set_setting(settings, "topic_replication_factor", "3").ok());
  ASSERT_TRUE(set_setting(settings, "producer_linger_ms", "0").ok());
  ASSERT_TRUE(set_setting(settings, "stop_timeout_ms", "5000").ok());
  ASSERT_TRUE(set_setting(settings, "agent_max_restarts", "0").ok());
  EXPECT_EQ(settings.broker_commit_interval_ms, 1000);
  EXPECT_EQ(settings.broker_commit_every, 7);
  EXPECT_EQ(settings.stream_buffer_maxsize, 100);
  EXPECT_EQ(settings.topic_partitions, 3);
  EXPECT_EQ(settings.topic_replication_factor, 3);
  EXPECT_EQ(settings.producer_linger_ms, 0);
  EXPECT_EQ(settings.stop_timeout_ms, 5000);
  EXPECT_EQ(settings.agent_max_restarts, 0);
}

TEST(AppSettingsTest, RejectsBadIntegersNamingSettingValueAndWhatIsAccepted) {
  AppSettings settings;
  EXPECT_EQ(error_of(set_setting(settings, "broker_commit_interval_ms", "abc")),
            "broker_commit_interval_ms: 'abc' is not an integer (milliseconds, >= 1)");
  EXPECT_EQ(error_of(set_setting(settings, "broker_commit_interval_ms", "0")),
            "broker_commit_interval_ms: '0' is out of range (milliseconds, >= 1)");
  EXPECT_THAT(error_of(set_setting(settings, "stream_buffer_maxsize", "12x")),
              HasSubstr("'12x' is not an integer"));
  EXPECT_THAT(error_of(set_setting(settings, "stream_buffer_maxsize", "")),
              HasSubstr("'' is not an integer"));
  EXPECT_THAT(error_of(set_setting(settings, "stream_buffer_maxsize", "99999999999")),
              HasSubstr("stream_buffer_maxsize: '99999999999' is out of range (events, 1..2147483647)"));
  EXPECT_THAT(error_of(set_setting(settings, "topic_replication_factor", "40000")), HasSubstr("1..32767"));
  EXPECT_THAT(error_of(set_setting(settings, "producer_linger_ms", "-1")), HasSubstr(">= 0"));
  EXPECT_THAT(error_of(set_setting(settings, "ask_timeout_ms", "99999999999999999999999")),
              HasSubstr("out of range"));
  EXPECT_EQ(settings.broker_commit_interval_ms, 2800) << "a rejected value changes nothing";
}

TEST(AppSettingsTest, SetsStrings) {
  AppSettings settings;
  ASSERT_TRUE(set_setting(settings, "id", "my-app").ok());
  ASSERT_TRUE(set_setting(settings, "broker", "kafka://k1:9092,k2:9092").ok());
  ASSERT_TRUE(set_setting(settings, "store", "memory://").ok());
  ASSERT_TRUE(set_setting(settings, "worker_id", "host-12").ok());
  EXPECT_EQ(settings.id, "my-app");
  EXPECT_EQ(settings.broker, "kafka://k1:9092,k2:9092");
  EXPECT_EQ(settings.worker_id, "host-12");
}

TEST(AppSettingsTest, ParsesEveryEnumByName) {
  AppSettings s;
  ASSERT_TRUE(set_setting(s, "processing_guarantee", "exactly_once").ok());
  EXPECT_EQ(s.processing_guarantee, ProcessingGuarantee::kExactlyOnce);
  ASSERT_TRUE(set_setting(s, "processing_guarantee", "at_least_once").ok());
  EXPECT_EQ(s.processing_guarantee, ProcessingGuarantee::kAtLeastOnce);

  ASSERT_TRUE(set_setting(s, "consumer_auto_offset_reset", "latest").ok());
  EXPECT_EQ(s.consumer_auto_offset_reset, OffsetReset::kLatest);
  ASSERT_TRUE(set_setting(s, "consumer_auto_offset_reset", "error").ok());
  EXPECT_EQ(s.consumer_auto_offset_reset, OffsetReset::kError);
  ASSERT_TRUE(set_setting(s, "consumer_auto_offset_reset", "earliest").ok());
  EXPECT_EQ(s.consumer_auto_offset_reset, OffsetReset::kEarliest);

  ASSERT_TRUE(set_setting(s, "consumer_assignment_strategy", "roundrobin").ok());
  EXPECT_EQ(s.consumer_assignment_strategy, AssignmentStrategy::kRoundRobin);
  ASSERT_TRUE(set_setting(s, "consumer_assignment_strategy", "cooperative-sticky").ok());
  EXPECT_EQ(s.consumer_assignment_strategy, AssignmentStrategy::kCooperativeSticky);
  ASSERT_TRUE(set_setting(s, "consumer_assignment_strategy", "range").ok());
  EXPECT_EQ(s.consumer_assignment_strategy, AssignmentStrategy::kRange);

  ASSERT_TRUE(set_setting(s, "bad_record_policy", "dead_letter").ok());
  EXPECT_EQ(s.bad_record_policy, BadRecordPolicy::kDeadLetter);
  ASSERT_TRUE(set_setting(s, "bad_record_policy", "skip").ok());
  EXPECT_EQ(s.bad_record_policy, BadRecordPolicy::kSkip);

  ASSERT_TRUE(set_setting(s, "producer_acks", "1").ok());
  EXPECT_EQ(s.producer_acks, 1);
  ASSERT_TRUE(set_setting(s, "producer_acks", "0").ok());
  EXPECT_EQ(s.producer_acks, 0);
  ASSERT_TRUE(set_setting(s, "producer_acks", "all").ok());
  EXPECT_EQ(s.producer_acks, -1);
  ASSERT_TRUE(set_setting(s, "producer_acks", "-1").ok());
  EXPECT_EQ(s.producer_acks, -1);
}

TEST(AppSettingsTest, RejectsUnknownEnumNamesListingTheChoices) {
  AppSettings s;
  EXPECT_EQ(error_of(set_setting(s, "processing_guarantee", "at_most_once")),
            "processing_guarantee: 'at_most_once' is not accepted (one of at_least_once, exactly_once)");
  EXPECT_EQ(error_of(set_setting(s, "consumer_auto_offset_reset", "smallest")),
            "consumer_auto_offset_reset: 'smallest' is not accepted (one of earliest, latest, error)");
  EXPECT_EQ(error_of(set_setting(s, "consumer_assignment_strategy", "sticky")),
            "consumer_assignment_strategy: 'sticky' is not accepted (one of range, roundrobin, "
            "cooperative-sticky)");
  EXPECT_EQ(error_of(set_setting(s, "bad_record_policy", "drop")),
            "bad_record_policy: 'drop' is not accepted (one of skip, dead_letter)");
  EXPECT_EQ(error_of(set_setting(s, "producer_acks", "2")),
            "producer_acks: '2' is not accepted (one of all, -1, 1, 0)");
  EXPECT_THAT(error_of(set_setting(s, "processing_guarantee", "AT_LEAST_ONCE")), HasSubstr("not accepted"))
      << "names are exact, lower case";
}

TEST(AppSettingsTest, SetsClientProperties) {
  AppSettings s;
  ASSERT_TRUE(set_setting(s, "consumer.fetch.max.bytes", "1048576").ok());
  ASSERT_TRUE(set_setting(s, "producer.compression.type", "lz4").ok());
  EXPECT_EQ(s.consumer_properties.at("fetch.max.bytes"), "1048576");
  EXPECT_EQ(s.producer_properties.at("compression.type"), "lz4");
  EXPECT_THAT(error_of(set_setting(s, "consumer.", "x")), HasSubstr("no property name"));
}

TEST(AppSettingsTest, RejectsUnknownSettingsListingTheKnownOnes) {
  AppSettings s;
  const std::string message = error_of(set_setting(s, "broker_commit_intervall_ms", "1"));
  EXPECT_THAT(message, HasSubstr("unknown setting 'broker_commit_intervall_ms'"));
  EXPECT_THAT(message, HasSubstr("broker_commit_interval_ms"));
  EXPECT_THAT(message, HasSubstr("consumer.<property>"));
}

TEST(AppSettingsTest, AppliesMephistoVariables) {
  AppSettings s;
  const std::map<std::string, std::string> environment = {
      {"MEPHISTO_ID", "env-app"},
      {"MEPHISTO_BROKER", "kafka://k:1"},
      {"MEPHISTO_BROKER_COMMIT_INTERVAL_MS", "500"},
      {"MEPHISTO_CONSUMER_AUTO_OFFSET_RESET", "latest"},
      {"MEPHISTO_PRODUCER_ACKS", "all"},
      {"PATH", "/usr/bin"},                            // not ours: ignored
      {"MEPHISTO_KAFKA_BOOTSTRAP", "127.0.0.1:9092"},  // the project's test tooling: ignored
  };
  ASSERT_TRUE(apply_environment(s, environment).ok());
  EXPECT_EQ(s.id, "env-app");
  EXPECT_EQ(s.broker, "kafka://k:1");
  EXPECT_EQ(s.broker_commit_interval_ms, 500);
  EXPECT_EQ(s.consumer_auto_offset_reset, OffsetReset::kLatest);
  EXPECT_EQ(s.producer_acks, -1);
}

TEST(AppSettingsTest, EmptyEnvironmentChangesNothing) {
  AppSettings s = valid_settings();
  ASSERT_TRUE(apply_environment(s, {}).ok());
  EXPECT_EQ(s.id, "orders-app");
  EXPECT_EQ(s.broker_commit_every, 10000);
}

TEST(AppSettingsTest, UnknownMephistoVariableIsAnErrorNamingIt) {
  AppSettings s;
  const std::string message = error_of(apply_environment(s, {{"MEPHISTO_BROKR", "kafka://k:1"}}));
  EXPECT_THAT(message, HasSubstr("MEPHISTO_BROKR"));
  EXPECT_THAT(message, HasSubstr("not a setting"));
  EXPECT_THAT(message, HasSubstr("broker"));
  EXPECT_EQ(s.broker, "kafka://localhost:9092");
}

TEST(AppSettingsTest, BadEnvironmentValueNamesTheVariableAndTheSetting) {
  AppSettings s;
  EXPECT_EQ(error_of(apply_environment(s, {{"MEPHISTO_STREAM_BUFFER_MAXSIZE", "lots"}})),
            "MEPHISTO_STREAM_BUFFER_MAXSIZE: stream_buffer_maxsize: 'lots' is not an integer (events, >= 1)");
}

TEST(AppSettingsTest, ValidateRequiresALegalId) {
  AppSettings s = valid_settings();
  s.id = "";
  EXPECT_THAT(error_of(validate(s)), HasSubstr("id: required"));
  s.id = "my app";
  EXPECT_THAT(error_of(validate(s)), HasSubstr("id: 'my app' is not accepted"));
  s.id = "app/1";
  EXPECT_THAT(error_of(validate(s)), HasSubstr("[a-zA-Z0-9._-]"));
  s.id = std::string(250, 'a');
  EXPECT_THAT(error_of(validate(s)), HasSubstr("at most 249"));
  s.id = "My.App_1-x";
  EXPECT_TRUE(validate(s).ok());
}

TEST(AppSettingsTest, ValidateRequiresALegalWorkerId) {
  AppSettings s = valid_settings();
  s.worker_id = "host:1";
  EXPECT_THAT(error_of(validate(s)), HasSubstr("worker_id: 'host:1' is not accepted"));
  s.worker_id = "";
  EXPECT_THAT(error_of(validate(s)), HasSubstr("worker_id: required"));
}

TEST(AppSettingsTest, ValidateChecksTheBrokerUrl) {
  AppSettings s = valid_settings();
  s.broker = "localhost:9092";
  EXPECT_THAT(error_of(validate(s)), HasSubstr("broker: 'localhost:9092' is not a Kafka URL"));
  s.broker = "kafka://localhost";
  EXPECT_THAT(error_of(validate(s)), HasSubstr("without host:port"));
}

TEST(AppSettingsTest, ValidateAcceptsMemoryAndRocksDbStores) {
  AppSettings s = valid_settings();
  s.store = "rocksdb://";
  EXPECT_TRUE(validate(s).ok());
  s.store = "rocksdb:///var/lib/app";
  EXPECT_THAT(error_of(validate(s)),
              HasSubstr("store: 'rocksdb:///var/lib/app' is not accepted (memory:// or rocksdb://)"));
  s.store = "redis://x";
  EXPECT_THAT(error_of(validate(s)), HasSubstr("store: 'redis://x' is not accepted (memory:// or rocksdb://)"));
}

TEST(AppSettingsTest, ExactlyOnceNeedsAcksAllAndCommitsEvery100MsByDefault) {
  AppSettings s = valid_settings();
  s.processing_guarantee = ProcessingGuarantee::kExactlyOnce;
  EXPECT_TRUE(validate(s).ok());
  EXPECT_EQ(effective_commit_interval_ms(s), 100);
  s.broker_commit_interval_ms = 500;
  EXPECT_EQ(effective_commit_interval_ms(s), 500);
  s.producer_acks = 1;
  EXPECT_THAT(error_of(validate(s)), HasSubstr("producer_acks: 1 cannot be used with processing_guarantee=exactly_once"));
  s = valid_settings();
  EXPECT_EQ(effective_commit_interval_ms(s), 2800);
  EXPECT_EQ(effective_data_dir(s), s.id + "-data");
  s.table_standby_replicas = 2;
  EXPECT_THAT(error_of(validate(s)), HasSubstr("table_standby_replicas: 2 is not accepted"));
}

TEST(AppSettingsTest, ValidateRequiresHeartbeatBelowSessionTimeout) {
  AppSettings s = valid_settings();
  s.broker_heartbeat_interval_ms = 60000;
  EXPECT_THAT(
      error_of(validate(s)),
      HasSubstr("broker_heartbeat_interval_ms: 60000 must be below broker_session_timeout_ms (60000)"));
  s.broker_heartbeat_interval_ms = 59999;
  EXPECT_TRUE(validate(s).ok());
}

TEST(AppSettingsTest, ValidateRequiresMaxPollIntervalAtLeastSessionTimeout) {
  AppSettings s = valid_settings();
  s.broker_max_poll_interval_ms = 30000;
  EXPECT_THAT(error_of(validate(s)), HasSubstr("broker_max_poll_interval_ms: 30000 must be at least"));
}

TEST(AppSettingsTest, ValidateRequiresPositiveNumbers) {
  const std::vector<std::pair<std::string, std::function<void(AppSettings&)>>> cases = {
      {"topic_partitions", [](AppSettings& s) { s.topic_partitions = 0; }},
      {"topic_replication_factor", [](AppSettings& s) { s.topic_replication_factor = 0; }},
      {"broker_commit_interval_ms", [](AppSettings& s) { s.broker_commit_interval_ms = 0; }},
      {"broker_commit_every", [](AppSettings& s) { s.broker_commit_every = -5; }},
      {"stream_buffer_maxsize", [](AppSettings& s) { s.stream_buffer_maxsize = 0; }},
      {"broker_session_timeout_ms", [](AppSettings& s) { s.broker_session_timeout_ms = 0; }},
      {"producer_linger_ms", [](AppSettings& s) { s.producer_linger_ms = -1; }},
      {"ask_timeout_ms", [](AppSettings& s) { s.ask_timeout_ms = 0; }},
      {"agent_restart_window_ms", [](AppSettings& s) { s.agent_restart_window_ms = 0; }},
  };
  for (const auto& [name, spoil] : cases) {
    AppSettings s = valid_settings();
    spoil(s);
    EXPECT_THAT(error_of(validate(s)), HasSubstr(name + ": ")) << name;
  }
}

TEST(AppSettingsTest, ValidateChecksProducerAcks) {
  AppSettings s = valid_settings();
  s.producer_acks = 2;
  EXPECT_EQ(error_of(validate(s)), "producer_acks: 2 is not accepted (one of all, -1, 1, 0)");
  for (int acks : {-1, 0, 1}) {
    s.producer_acks = acks;
    EXPECT_TRUE(validate(s).ok()) << acks;
  }
}

TEST(BootstrapServersTest, StripsTheSchemeAndKeepsEveryHost) {
  EXPECT_EQ(bootstrap_servers("kafka://localhost:9092").value(), "localhost:9092");
  EXPECT_EQ(bootstrap_servers("kafka://a:9092,b:9093,c.example.com:19092").value(),
            "a:9092,b:9093,c.example.com:19092");
  EXPECT_EQ(bootstrap_servers("kafka://127.0.0.1:1").value(), "127.0.0.1:1");
  EXPECT_EQ(bootstrap_servers("kafka://[::1]:9092").value(), "[::1]:9092");
}

TEST(BootstrapServersTest, RejectsMalformedUrlsNamingTheUrlAndTheForm) {
  for (const char* url : {"localhost:9092", "http://a:9092", "kafka:/a:9092", "", "KAFKA://a:1"}) {
    auto result = bootstrap_servers(url);
    ASSERT_FALSE(result.ok()) << url;
    EXPECT_EQ(result.code(), ErrorCode::kInvalidArg);
    EXPECT_THAT(result.error().message, HasSubstr(std::string("'") + url + "'"));
    EXPECT_THAT(result.error().message, HasSubstr("kafka://host:port[,host:port...]"));
  }
  for (const char* url :
       {"kafka://", "kafka://a", "kafka://a:9092,", "kafka://a:9092,b", "kafka://:9092", "kafka://a:x",
        "kafka://a:0", "kafka://a:65536", "kafka://a:1:2", "kafka://[::1]"}) {
    auto result = bootstrap_servers(url);
    ASSERT_FALSE(result.ok()) << url;
    EXPECT_THAT(result.error().message, HasSubstr(std::string("'") + url + "'")) << url;
  }
}

}  // namespace
}  // namespace mephisto
