// The command line against a real broker (label kafka; MEPHISTO_KAFKA_BOOTSTRAP from
// tools/kafka/with-broker): `worker` runs the tiny test app, `send` feeds it through an agent's name, and
// SIGTERM stops it cleanly with its stats. Every run uses a fresh app id, so its topics and group are its own
// on a shared broker.
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "cli_child.h"
#include "runtime/kafka/kafka_broker_client.h"
#include "runtime/loop/event_loop.h"

namespace mephisto {
namespace {

using cli_test::Child;
using cli_test::describe;
using cli_test::Outcome;
using ::testing::HasSubstr;

Status create_topics(const std::string& bootstrap, const std::vector<std::string>& names,
                     int32_t partitions) {
  EventLoop loop;
  KafkaBrokerClient broker(loop, KafkaOptions{bootstrap, {}});
  Status result;
  loop.spawn("create topics", [&] {
    auto admin = broker.admin();
    if (!admin.ok()) {
      result = admin.error();
      return;
    }
    for (const auto& name : names) {
      result = admin.value()->create_topic(TopicSpec{name, partitions, 1, {}}, 30000);
      if (!result.ok()) return;
    }
  });
  loop.run();
  return result;
}

TEST(CliKafkaTest, WorkerProcessesSentRecordsAndStopsCleanlyOnSigterm) {
  const char* bootstrap = std::getenv("MEPHISTO_KAFKA_BOOTSTRAP");
  if (bootstrap == nullptr)
    GTEST_SKIP() << "MEPHISTO_KAFKA_BOOTSTRAP is not set (run under tools/kafka/with-broker)";
  const std::string broker = std::string("kafka://") + bootstrap;
  const std::string id =
      fmt::format("cli-kafka-{}-{}", ::getpid(), std::chrono::system_clock::now().time_since_epoch().count());
  ASSERT_TRUE(create_topics(bootstrap, {id + "-input", id + "-output"}, 2).ok());
  const std::map<std::string, std::string> environment = {{"MEPHISTO_ID", id}};

  Child worker(CLI_TEST_APP, {"worker", "tiny", "--broker", broker, "--set", "broker_commit_interval_ms=200"},
               environment);
  ASSERT_TRUE(worker.wait_for_stderr("assigned ", 60000)) << worker.describe();
  // worker_id defaults to <hostname>-<pid>.
  EXPECT_THAT(worker.err(), HasSubstr(fmt::format("-{})", worker.pid()))) << worker.describe();

  // An agent's name stands for its topic; one key, so one partition and consecutive offsets.
  Outcome sent = cli_test::run_to_end(CLI_TEST_APP,
                                      {"send", "echo", "--app", "tiny", "--key", "k", "--value", "hello",
                                       "--repeat", "3", "--broker", broker},
                                      60000, environment);
  ASSERT_EQ(sent.exit_code, 0) << describe(sent);
  EXPECT_THAT(sent.out, HasSubstr(fmt::format("sent 3 record(s) to {}-input (partition ", id)));
  EXPECT_THAT(sent.out, HasSubstr("offsets 0-2)"));

  // An agent declared without a topic reads {id}-count, which the worker created at start.
  sent = cli_test::run_to_end(CLI_TEST_APP,
                              {"send", "count", "--app", "tiny", "--value", "x", "--broker", broker}, 60000,
                              environment);
  ASSERT_EQ(sent.exit_code, 0) << describe(sent);
  EXPECT_THAT(sent.out, HasSubstr(fmt::format("sent 1 record(s) to {}-count (partition ", id)));

  const Outcome missing = cli_test::run_to_end(
      CLI_TEST_APP, {"send", id + "-missing", "--value", "x", "--broker", broker}, 60000);
  EXPECT_EQ(missing.exit_code, 1) << describe(missing);
  EXPECT_THAT(missing.err, HasSubstr(fmt::format("topic '{}-missing' does not exist on {}", id, broker)));

  const Outcome bad_partition = cli_test::run_to_end(
      CLI_TEST_APP, {"send", id + "-input", "--partition", "5", "--broker", broker}, 60000);
  EXPECT_EQ(bad_partition.exit_code, 2) << describe(bad_partition);
  EXPECT_THAT(bad_partition.err, HasSubstr("--partition 5: topic"));
  EXPECT_THAT(bad_partition.err, HasSubstr("has 2 partition(s)"));

  // Time to fetch the records (the commit interval is 200 ms); a warm shutdown drains whatever is buffered.
  std::this_thread::sleep_for(std::chrono::seconds(5));
  worker.signal(SIGTERM);
  const int exit_code = worker.wait_exit(90000);
  EXPECT_FALSE(worker.timed_out()) << worker.describe();
  EXPECT_EQ(exit_code, 0) << worker.describe();
  EXPECT_THAT(worker.err(), HasSubstr("SIGTERM: stopping (warm shutdown")) << worker.describe();
  EXPECT_THAT(worker.err(),
              HasSubstr("stats: received=4 acked=4 sent=3 delivered=3 send_failures=0 commits="))
      << worker.describe();
  EXPECT_THAT(worker.err(), HasSubstr("worker of app 'tiny' stopped cleanly")) << worker.describe();
}

}  // namespace
}  // namespace mephisto
