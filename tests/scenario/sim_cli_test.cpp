// `mephisto sim` as a user runs it (the real binary, as a child process): the README's main command prints
// the verdict table; --jobs does not change any seed's run; a violation prints a one-line reproduction,
// writes the trace and exits 1; --planted reports seeds-to-detect; --shrink writes a smaller scenario that
// still fails;
// --report writes a page headless Chromium renders with the first violation highlighted; bad input exits 2
// with a message naming what is wrong.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/support/run_command.h"
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>

#include "sim/scenario/loader.h"
#include "tests/scenario/headless_chromium.h"
#include "tests/support/example_apps.h"

namespace mephisto::sim::scenario {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

using test_support::Ran;

Ran run(const std::string& args) { return test_support::run_command(std::string(MEPHISTO_BIN) + " " + args); }

std::string scenario(const std::string& name) {
  return std::string(MEPHISTO_SOURCE_DIR) + "/scenarios/" + name + ".textproto";
}

class SimCli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("mephisto-sim-cli-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override {
    if (!HasFailure()) fs::remove_all(dir_);
  }
  // The unclean-election scenario with every invariant checked and nothing declared: a run that fails.
  std::string failing_scenario() {
    Result<Scenario> s = load_scenario_file(scenario("unclean-leader-election"), test::example_apps());
    EXPECT_TRUE(s.ok());
    Scenario failing = *s;
    failing.set_name("unclean-undeclared");
    failing.clear_check();
    failing.clear_expect_violation();
    const fs::path path = dir_ / "unclean-undeclared.textproto";
    std::ofstream(path) << scenario_to_text(failing);
    return path.string();
  }
  std::string traces() const { return "--trace-dir '" + (dir_ / "traces").string() + "'"; }
  fs::path dir_;
};

TEST_F(SimCli, MainCommandPrintsTheVerdictTable) {
  const Ran ran = run("sim " + scenario("flagship") + " --seeds 20 --jobs 2 " + traces());
  EXPECT_EQ(ran.exit_code, 0) << ran.output;
  EXPECT_THAT(ran.output,
              HasSubstr("invariant                 held  allowed  expected  VIOLATED  undecided"));
  for (const char* row : {"duplicates", "lost-writes", "aborted-reads", "inconsistent-offsets",
                          "non-monotonic", "poll-skips", "unseen", "table-oracle", "liveness"}) {
    EXPECT_THAT(ran.output, HasSubstr(std::string("\n") + row + " ")) << row;
  }
  EXPECT_THAT(ran.output, HasSubstr("20 passed, 0 failed"));
  EXPECT_THAT(ran.output, HasSubstr("verdict: PASS"));
}

TEST_F(SimCli, JobsDoNotChangeAnySeedsRun) {
  const auto hashes = [&](int jobs) {
    const Ran ran = run("sim " + scenario("flagship") + " --seeds 6 -q -v --jobs " + std::to_string(jobs) +
                        " " + traces());
    std::map<std::string, std::string> out;  // seed -> hash
    const std::regex line(R"(seed (\d+): \w+ run hash ([0-9a-f]+))");
    for (std::sregex_iterator it(ran.output.begin(), ran.output.end(), line), end; it != end; ++it) {
      out[(*it)[1]] = (*it)[2];
    }
    return out;
  };
  const auto one = hashes(1);
  EXPECT_EQ(one.size(), 6u);
  EXPECT_EQ(one, hashes(2));
}

TEST_F(SimCli, AViolationPrintsItsReproductionWritesTheTraceAndExits1) {
  const std::string file = failing_scenario();
  const Ran ran = run("sim '" + file + "' --seeds 3 -q " + traces());
  EXPECT_EQ(ran.exit_code, 1) << ran.output;
  EXPECT_THAT(ran.output, HasSubstr("verdict: FAIL"));
  std::smatch m;
  ASSERT_TRUE(std::regex_search(ran.output, m, std::regex(R"(reproduce: (mephisto sim \S+ --seed (\d+)))")))
      << ran.output;
  const std::string seed = m[2];
  ASSERT_TRUE(std::regex_search(ran.output, m, std::regex(R"(trace: (\S+))")));
  const std::string trace = m[1];
  std::ifstream in(trace);
  ASSERT_TRUE(in.good()) << "no trace at " << trace;
  std::stringstream text;
  text << in.rdbuf();
  EXPECT_THAT(text.str(), HasSubstr("# reproduce: mephisto sim"));
  EXPECT_THAT(text.str(), HasSubstr("## event log"));
  EXPECT_THAT(text.str(), HasSubstr("## history"));
  // The reproduction line reproduces: the same seed alone fails again with the same run hash.
  const Ran again = run("sim '" + file + "' --seed " + seed + " -q -v " + traces());
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_THAT(again.output, HasSubstr("seed " + seed + ": FAIL"));
  const Ran twice = run("sim '" + file + "' --seed " + seed + " -q -v " + traces());
  const std::regex hash(R"(run hash ([0-9a-f]+))");
  std::smatch h1;
  std::smatch h2;
  ASSERT_TRUE(std::regex_search(again.output, h1, hash));
  ASSERT_TRUE(std::regex_search(twice.output, h2, hash));
  EXPECT_EQ(h1[1], h2[1]);
}

TEST_F(SimCli, PlantedReportsSeedsToDetect) {
  const Ran ran = run("sim " + scenario("flagship") +
                      " --planted table-write-not-rolled-back --seeds 10 --jobs 2 -q " + traces());
  EXPECT_EQ(ran.exit_code, 0) << ran.output;
  EXPECT_THAT(ran.output, HasSubstr("planted bug table-write-not-rolled-back: DETECTED after 3 seed(s)"));
  const Ran listed = run("sim --list-planted");
  EXPECT_EQ(listed.exit_code, 0);
  EXPECT_THAT(listed.output, HasSubstr("commit-before-delivery"));
  const Ran unknown = run("sim " + scenario("flagship") + " --planted no-such-bug");
  EXPECT_EQ(unknown.exit_code, 2);
  EXPECT_THAT(unknown.output,
              HasSubstr("no planted bug named 'no-such-bug'; the catalogue: offsets-outside-transaction"));
}

TEST_F(SimCli, ShrinkWritesASmallerScenarioThatStillFails) {
  const std::string out = (dir_ / "shrunk.textproto").string();
  const Ran ran = run("sim " + scenario("flagship") +
                      " --planted table-write-not-rolled-back --seed 3 --shrink --shrink-out '" + out +
                      "' -q " + traces());
  EXPECT_THAT(ran.output, HasSubstr("shrunk in")) << ran.output;
  Result<Scenario> shrunk = load_scenario_file(out, test::example_apps());
  ASSERT_TRUE(shrunk.ok()) << shrunk.error().message;
  EXPECT_FALSE(shrunk->has_swarm());
  EXPECT_GE(shrunk->fault_size(), 1);
  EXPECT_LE(shrunk->fault_size(), 3) << ran.output;
  const Ran again = run("sim '" + out + "' --planted table-write-not-rolled-back --seed 3 -q " + traces());
  EXPECT_THAT(again.output, HasSubstr("DETECTED after 1 seed(s)")) << again.output;
}

TEST_F(SimCli, ReportRendersInHeadlessChromiumWithTheFirstViolation) {
  const std::string page = (dir_ / "report.html").string();
  const Ran ran = run("sim '" + failing_scenario() + "' --seed 1 -q --report '" + page + "' " + traces());
  ASSERT_EQ(ran.exit_code, 1) << ran.output;
  ASSERT_TRUE(fs::exists(page)) << ran.output;
  ASSERT_FALSE(testing::chromium_path().empty()) << "chromium is not installed; run tools/install-deps.sh";
  const testing::DumpedDom dom = testing::dump_dom(page, dir_);
  ASSERT_EQ(dom.status, 0) << dom.command << "\n" << dom.stderr_text;
  EXPECT_THAT(dom.dom, HasSubstr("data-rendered=\"ok\""));
  EXPECT_THAT(dom.dom, HasSubstr("id=\"first-violation\""));
  EXPECT_THAT(dom.dom, HasSubstr("worker-0"));
}

TEST_F(SimCli, BadInputExits2WithWhatIsWrong) {
  const fs::path bad = dir_ / "bad.textproto";
  std::ofstream(bad) << "app { name: \"tablecount\" }\nworkload { events: -5 }\n";
  const Ran ran = run("sim '" + bad.string() + "'");
  EXPECT_EQ(ran.exit_code, 2);
  EXPECT_THAT(ran.output, HasSubstr("bad.textproto:2:12: workload.events is -5; expected 1..1000000"));
  const Ran missing = run("sim /nonexistent.textproto");
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_THAT(missing.output, HasSubstr("/nonexistent.textproto: cannot read the scenario file"));
  const Ran both = run("sim " + scenario("flagship") + " --seed 1 --seeds 3");
  EXPECT_EQ(both.exit_code, 2);
  EXPECT_THAT(both.output, HasSubstr("--seed and --seeds"));
}

}  // namespace
}  // namespace mephisto::sim::scenario
