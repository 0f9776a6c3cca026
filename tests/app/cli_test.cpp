// The command line (runtime/cli): runs cli_test_app — run_cli over tiny test definitions — as a child process
// and checks exit codes and messages. No broker: the worker and send cases point at a port nothing listens
// on.
#include <signal.h>
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "cli_child.h"

namespace mephisto {
namespace {

using cli_test::Child;
using cli_test::describe;
using cli_test::Outcome;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

Outcome cli(const std::vector<std::string>& args, int64_t timeout_ms = 20000,
            const std::map<std::string, std::string>& environment = {}) {
  return cli_test::run_to_end(CLI_TEST_APP, args, timeout_ms, environment);
}

// Nothing listens on port 1 of the loopback interface: connections are refused at once.
constexpr const char* kNoBroker = "kafka://127.0.0.1:1";

TEST(CliTest, HelpExitsZeroForEveryCommand) {
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{{"--help"},
                                                                                    {"worker", "--help"},
                                                                                    {"send", "--help"},
                                                                                    {"agents", "--help"},
                                                                                    {"topics", "--help"},
                                                                                    {"apps", "--help"},
                                                                                    {"ping", "--help"}}) {
    const Outcome r = cli(args);
    EXPECT_EQ(r.exit_code, 0) << args[0] << "\n" << describe(r);
    EXPECT_THAT(r.out, HasSubstr("--help")) << args[0];
  }
}

TEST(CliTest, HelpNamesTheCommandsAndTheirOptions) {
  EXPECT_THAT(cli({"--help"}).out, AllOf(HasSubstr("worker"), HasSubstr("send"), HasSubstr("agents"),
                                         HasSubstr("topics"), HasSubstr("apps"), HasSubstr("ping")));
  EXPECT_THAT(cli({"worker", "--help"}).out,
              AllOf(HasSubstr("--broker"), HasSubstr("--set"), HasSubstr("--log-level")));
  EXPECT_THAT(cli({"send", "--help"}).out,
              AllOf(HasSubstr("--key"), HasSubstr("--value"), HasSubstr("--value-file"),
                    HasSubstr("--partition"), HasSubstr("--repeat"), HasSubstr("--app")));
}

TEST(CliTest, NoCommandIsAnError) {
  const Outcome r = cli({});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("subcommand"));
}

TEST(CliTest, AppsListsTheDefinitions) {
  const Outcome r = cli({"apps"});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_THAT(r.out, HasSubstr("tiny"));
  EXPECT_THAT(r.out, HasSubstr("A tiny app for the CLI's tests"));
  EXPECT_THAT(r.out, HasSubstr("empty"));
}

TEST(CliTest, AgentsPrintsTheAgentsTable) {
  const Outcome r = cli({"agents", "tiny"});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_THAT(r.out, HasSubstr("AGENT"));
  EXPECT_THAT(r.out, HasSubstr("DESCRIPTION"));
  EXPECT_THAT(r.out, HasSubstr("echo"));
  EXPECT_THAT(r.out, HasSubstr("tiny-app-input"));
  EXPECT_THAT(r.out, HasSubstr("topic:tiny-app-output"));
  EXPECT_THAT(r.out, HasSubstr("echoes {id}-input to {id}-output"));
  EXPECT_THAT(r.out, HasSubstr("one_for_one"));
  // An agent declared without a topic reads {id}-{agent}.
  EXPECT_THAT(r.out, HasSubstr("tiny-app-count"));
  // The echo line shows its concurrency.
  const auto line_start = r.out.find("echo ");
  ASSERT_NE(line_start, std::string::npos);
  const std::string line = r.out.substr(line_start, r.out.find('\n', line_start) - line_start);
  EXPECT_THAT(line, HasSubstr(" 2 "));
}

TEST(CliTest, AgentsOfAnAppWithoutAgentsSaysSo) {
  const Outcome r = cli({"agents", "empty"});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_THAT(r.out, HasSubstr("declares no agents"));
}

TEST(CliTest, AgentsFollowsTheEnvironment) {
  const Outcome r = cli({"agents", "tiny"}, 20000, {{"MEPHISTO_ID", "other-id"}});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_THAT(r.out, HasSubstr("other-id-count"));
}

TEST(CliTest, TopicsPrintsTheDeclaredTopics) {
  const Outcome r = cli({"topics", "tiny"});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_THAT(r.out, HasSubstr("TOPIC"));
  EXPECT_THAT(r.out, HasSubstr("tiny-app-input"));
  EXPECT_THAT(r.out, HasSubstr("tiny-app-output"));
  EXPECT_THAT(r.out, HasSubstr("tiny-app-count"));
  EXPECT_THAT(r.out, HasSubstr("tiny-channel"));
  EXPECT_THAT(r.out, HasSubstr("channel"));
  EXPECT_THAT(r.out, HasSubstr("external"));
  EXPECT_THAT(r.out, HasSubstr("created"));
}

TEST(CliTest, UnknownAppFailsListingTheKnownOnes) {
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"agents", "nope"}, {"topics", "nope"}, {"worker", "nope"}, {"send", "t", "--app", "nope"}}) {
    const Outcome r = cli(args);
    EXPECT_EQ(r.exit_code, 2) << args[0] << "\n" << describe(r);
    EXPECT_THAT(r.err, HasSubstr("error: unknown app 'nope' (known apps: tiny, empty)")) << args[0];
  }
}

TEST(CliTest, BadSetExitsTwoNamingTheSetting) {
  Outcome r = cli({"worker", "tiny", "--set", "broker_commit_interval_ms=abc"});
  EXPECT_EQ(r.exit_code, 2) << describe(r);
  EXPECT_THAT(r.err, HasSubstr("broker_commit_interval_ms: 'abc' is not an integer (milliseconds, >= 1)"));

  r = cli({"worker", "tiny", "--set", "no_such_setting=1"});
  EXPECT_EQ(r.exit_code, 2) << describe(r);
  EXPECT_THAT(r.err, HasSubstr("unknown setting 'no_such_setting'"));

  r = cli({"worker", "tiny", "--set", "stream_buffer_maxsize"});
  EXPECT_EQ(r.exit_code, 2) << describe(r);
  EXPECT_THAT(r.err, HasSubstr("--set 'stream_buffer_maxsize' is not name=value"));
}

TEST(CliTest, SetBeforeTheAppNameTakesOnePair) {
  const Outcome r = cli({"worker", "--set", "broker_commit_every=x", "tiny"});
  EXPECT_EQ(r.exit_code, 2) << describe(r);
  EXPECT_THAT(r.err, HasSubstr("broker_commit_every: 'x' is not an integer"));
}

TEST(CliTest, InvalidConfigurationExitsTwo) {
  Outcome r = cli({"worker", "tiny", "--set", "processing_guarantee=exactly_once", "--set", "producer_acks=1"});
  EXPECT_EQ(r.exit_code, 2) << describe(r);
  EXPECT_THAT(r.err, HasSubstr("producer_acks: 1 cannot be used with processing_guarantee=exactly_once"));

  r = cli({"worker", "tiny", "--broker", "localhost:9092"});
  EXPECT_EQ(r.exit_code, 2) << describe(r);
  EXPECT_THAT(r.err, HasSubstr("broker: 'localhost:9092' is not a Kafka URL"));

  r = cli({"worker", "tiny", "--set", "broker_heartbeat_interval_ms=90000"});
  EXPECT_EQ(r.exit_code, 2) << describe(r);
  EXPECT_THAT(r.err,
              HasSubstr("broker_heartbeat_interval_ms: 90000 must be below broker_session_timeout_ms"));
}

TEST(CliTest, UnknownMephistoVariableExitsTwoNamingIt) {
  const Outcome r = cli({"worker", "tiny"}, 20000, {{"MEPHISTO_BROKR", "kafka://x:1"}});
  EXPECT_EQ(r.exit_code, 2) << describe(r);
  EXPECT_THAT(r.err, HasSubstr("MEPHISTO_BROKR: not a setting"));
}

TEST(CliTest, BadLogLevelIsAUsageError) {
  const Outcome r = cli({"worker", "tiny", "--log-level", "loud"});
  EXPECT_NE(r.exit_code, 0) << describe(r);
  EXPECT_THAT(r.err, HasSubstr("loud"));
}

TEST(CliTest, ExtendHookSubcommandSetsTheExitCode) {
  const Outcome r = cli({"ping"});
  EXPECT_EQ(r.exit_code, 7) << describe(r);
}

TEST(CliTest, WorkerWithoutABrokerFailsWithinBoundedTime) {
  const Outcome r = cli({"worker", "tiny", "--broker", kNoBroker}, 120000);
  EXPECT_FALSE(r.timed_out) << describe(r);
  EXPECT_EQ(r.exit_code, 1) << describe(r);
  EXPECT_THAT(r.err, HasSubstr("error: worker of app 'tiny' failed: ")) << describe(r);
  EXPECT_THAT(r.err, HasSubstr("stats: received=0")) << describe(r);
}

TEST(CliTest, WorkerStopsAtOnceOnASecondSignal) {
  Child worker(CLI_TEST_APP, {"worker", "tiny", "--broker", kNoBroker});
  // The worker is starting (and cannot reach a broker): a first signal asks for a graceful stop, which waits
  // for the startup to give up; a second one ends the process at once.
  ASSERT_TRUE(worker.wait_for_stderr("starting on", 20000)) << worker.describe();
  worker.signal(SIGTERM);
  ASSERT_TRUE(worker.wait_for_stderr("SIGTERM: stopping (warm shutdown", 20000)) << worker.describe();
  worker.signal(SIGINT);
  const int exit_code = worker.wait_exit(20000);
  EXPECT_FALSE(worker.timed_out()) << worker.describe();
  EXPECT_EQ(exit_code, 1) << worker.describe();
  // Unless the startup happened to fail on its own just before the second signal.
  if (worker.err().find("failed:") == std::string::npos) {
    EXPECT_THAT(worker.err(), HasSubstr("second signal (SIGINT): stopping at once")) << worker.describe();
    EXPECT_THAT(worker.err(), HasSubstr("error: stopped at once on a second signal")) << worker.describe();
  }
  EXPECT_THAT(worker.err(), HasSubstr("stats: received=0")) << worker.describe();
}

TEST(CliTest, SendWithoutABrokerFailsNamingTheTopic) {
  const Outcome r =
      cli({"send", "tiny-input", "--value", "v", "--broker", kNoBroker, "--timeout-ms", "3000"}, 60000);
  EXPECT_FALSE(r.timed_out) << describe(r);
  EXPECT_EQ(r.exit_code, 1) << describe(r);
  EXPECT_THAT(r.err, HasSubstr("topic 'tiny-input'")) << describe(r);
  EXPECT_THAT(r.out, Not(HasSubstr("sent"))) << describe(r);
}

TEST(CliTest, SendResolvesAnAgentToItsTopic) {
  const Outcome r =
      cli({"send", "count", "--app", "tiny", "--value", "v", "--broker", kNoBroker, "--timeout-ms", "2000"},
          60000);
  EXPECT_EQ(r.exit_code, 1) << describe(r);
  EXPECT_THAT(r.err, HasSubstr("topic 'tiny-app-count'")) << describe(r);
}

TEST(CliTest, SendRejectsValueAndValueFileTogether) {
  const std::string file = ::testing::TempDir() + "cli_test_value.bin";
  std::ofstream(file) << "bytes";
  const Outcome r = cli({"send", "t", "--value", "v", "--value-file", file});
  EXPECT_NE(r.exit_code, 0) << describe(r);
  EXPECT_THAT(r.err, HasSubstr("excludes"));
}

TEST(CliTest, SendRejectsABadBrokerUrl) {
  const Outcome r = cli({"send", "t", "--broker", "kafka://nohost"});
  EXPECT_EQ(r.exit_code, 2) << describe(r);
  EXPECT_THAT(r.err, HasSubstr("broker: 'kafka://nohost'"));
}

}  // namespace
}  // namespace mephisto
