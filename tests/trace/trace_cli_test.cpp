// `mephisto worker --record`: the options reach the worker, and a directory the worker cannot record to is a
// usage error before anything connects. Runs cli_test_app (tests/app) as a child process; no broker.
#include <signal.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "cli_child.h"
#include "trace_test_support.h"

namespace mephisto::trace {
namespace {

using cli_test::Child;
using cli_test::describe;
using cli_test::Outcome;
using ::testing::AllOf;
using ::testing::HasSubstr;

// Nothing listens on port 1 of the loopback interface.
constexpr const char* kNoBroker = "kafka://127.0.0.1:1";

TEST(TraceCli, ARecordPathThatIsAFileIsAUsageError) {
  testing::ScratchDir dir("cli-file");
  testing::write_bytes(dir.file("a-file"), "x");
  const Outcome r = cli_test::run_to_end(
      CLI_TEST_APP, {"worker", "tiny", "--broker", kNoBroker, "--record", dir.file("a-file")}, 20000);
  EXPECT_EQ(r.exit_code, 2) << describe(r);
  EXPECT_THAT(r.err, AllOf(HasSubstr("error: --record"), HasSubstr("a-file"), HasSubstr("cannot create")))
      << describe(r);
}

TEST(TraceCli, RecordOptionsNeedRecord) {
  const Outcome r = cli_test::run_to_end(CLI_TEST_APP, {"worker", "tiny", "--record-hashes"}, 20000);
  EXPECT_NE(r.exit_code, 0) << describe(r);
  EXPECT_THAT(r.err + r.out, HasSubstr("--record")) << describe(r);
}

TEST(TraceCli, TheWorkerSaysWhereItRecords) {
  testing::ScratchDir dir("cli-record");
  const std::string record_dir = dir.file("traces");
  Child worker(CLI_TEST_APP,
               {"worker", "tiny", "--broker", kNoBroker, "--record", record_dir, "--record-hashes"});
  ASSERT_TRUE(worker.wait_for_stderr("recording to " + record_dir + " (hashes)", 20000)) << worker.describe();
  EXPECT_TRUE(std::filesystem::is_directory(record_dir));
  // No broker: a graceful stop would wait for the startup to give up; a second signal ends it at once.
  worker.signal(SIGTERM);
  ASSERT_TRUE(worker.wait_for_stderr("SIGTERM: stopping", 20000)) << worker.describe();
  worker.signal(SIGINT);
  worker.wait_exit(20000);
  EXPECT_FALSE(worker.timed_out()) << worker.describe();
}

}  // namespace
}  // namespace mephisto::trace
