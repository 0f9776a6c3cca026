// A user's own app through the one entry point (tests/own_app/paytotals.cpp: nothing from agents/): its
// binary has every command, `sim` runs its scenario with its model as the oracle, and the model finds the bug
// a user writes (an actor-local cache in front of the table); a scenario naming an app the binary lacks is
// refused with the apps it has.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "tests/support/run_command.h"

namespace mephisto {
namespace {

using test_support::Ran;
using ::testing::HasSubstr;

Ran run(const std::string& args) {
  return test_support::run_command(std::string(PAYTOTALS_BIN) + " " + args);
}

std::string scenario(const std::string& name) {
  return std::string(MEPHISTO_SOURCE_DIR) + "/tests/own_app/" + name + ".textproto";
}

class OwnApp : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("own-app-" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string traces() const { return " --trace-dir " + (dir_ / "traces").string(); }

  std::filesystem::path dir_;
};

TEST_F(OwnApp, TheBinaryHasEveryCommand) {
  const Ran help = run("--help");
  ASSERT_EQ(help.exit_code, 0) << help.output;
  for (const char* command :
       {"worker", "send", "agents", "topics", "apps", "sim", "replay", "demo", "version"}) {
    EXPECT_THAT(help.output, HasSubstr(command));
  }
  const Ran apps = run("apps");
  ASSERT_EQ(apps.exit_code, 0) << apps.output;
  EXPECT_THAT(apps.output, HasSubstr("paytotals"));
}

TEST_F(OwnApp, TopicsListsTheChangelogOfItsTable) {
  const Ran topics = run("topics paytotals");
  ASSERT_EQ(topics.exit_code, 0) << topics.output;
  EXPECT_THAT(topics.output, HasSubstr("payments"));
  EXPECT_THAT(topics.output, ::testing::ContainsRegex(
                                 "paytotals-totals-changelog +changelog of table 'totals' +as payments"));
}

TEST_F(OwnApp, ItsScenarioPassesWithItsModelAsTheOracle) {
  const Ran ran = run("sim " + scenario("paytotals") + " --seeds 24 --jobs 2 -q" + traces());
  EXPECT_EQ(ran.exit_code, 0) << ran.output;
  EXPECT_THAT(ran.output, HasSubstr("verdict: PASS"));
  // The model's checks ran (not "not checked"): receipts per payment and the table of totals.
  EXPECT_THAT(ran.output, ::testing::ContainsRegex("table-oracle +24 "));
  EXPECT_THAT(ran.output, ::testing::ContainsRegex("lost-writes +24 "));
}

TEST_F(OwnApp, TheModelFindsAnActorLocalCacheInFrontOfTheTable) {
  // Budget: the cache goes stale at the first crash, restart or partition move, which most seeds draw.
  const Ran ran = run("sim " + scenario("paytotals-cached") + " --seeds 20 --jobs 2 -q" + traces());
  EXPECT_EQ(ran.exit_code, 1) << ran.output;
  EXPECT_THAT(ran.output, HasSubstr("verdict: FAIL"));
  EXPECT_THAT(ran.output, HasSubstr("table-oracle"));
  EXPECT_THAT(ran.output, HasSubstr("paytotals-cached.textproto --seed "));
}

TEST_F(OwnApp, TheDifferentialOracleFindsTheCacheWithoutAModel) {
  // Only DIFFERENTIAL is checked: the faulty run against fault-free runs of the same app, no model involved.
  const Ran ran =
      run("sim " + scenario("paytotals-cached-differential") + " --seeds 20 --jobs 2 -q" + traces());
  EXPECT_EQ(ran.exit_code, 1) << ran.output;
  EXPECT_THAT(ran.output, HasSubstr("verdict: FAIL"));
  EXPECT_THAT(ran.output, HasSubstr("differential VIOLATED: "));
  EXPECT_THAT(ran.output, ::testing::ContainsRegex("table-oracle +\\(not checked\\)"));
}

TEST_F(OwnApp, TheDifferentialOracleHoldsTheCorrectAppToItsReference) {
  const Ran ran = run("sim " + scenario("paytotals-differential") + " --seeds 12 --jobs 2 -q" + traces());
  EXPECT_EQ(ran.exit_code, 0) << ran.output;
  EXPECT_THAT(ran.output, ::testing::ContainsRegex("differential +12 "));
}

TEST_F(OwnApp, AnAppThatIsNotDeterministicIsRefusedByTheDifferentialOracle) {
  const Ran ran = run("sim " + scenario("arrival-order") + " --seeds 4 --jobs 1 -q" + traces());
  EXPECT_EQ(ran.exit_code, 2) << ran.output;
  EXPECT_THAT(ran.output, HasSubstr("app 'arrival-order' is not deterministic: two fault-free reference runs "
                                    "over the same input disagree"));
  EXPECT_THAT(ran.output, HasSubstr("reproduce: "));
}

TEST_F(OwnApp, AnAppThatCannotDecodeItsOwnWorkloadIsRefusedNotPassed) {
  const Ran ran = run("sim " + scenario("wrong-codec") + " --seeds 2 --jobs 1 -q" + traces());
  EXPECT_EQ(ran.exit_code, 2) << ran.output;
  EXPECT_THAT(ran.output, HasSubstr("app 'wrong-codec' could not decode its own workload"));
  EXPECT_THAT(ran.output, HasSubstr("undecodable record payments["));
  EXPECT_THAT(ran.output, ::testing::Not(HasSubstr("verdict: PASS")));
}

TEST_F(OwnApp, AScenarioForAnAppTheBinaryLacksIsRefusedWithTheAppsItHas) {
  const Ran ran = run("sim " + std::string(MEPHISTO_SOURCE_DIR) + "/scenarios/flagship.textproto --seed 1");
  EXPECT_EQ(ran.exit_code, 2) << ran.output;
  EXPECT_THAT(ran.output, HasSubstr("app.name is 'tablecount', which this binary does not have; apps it can "
                                    "simulate: paytotals, paytotals-cached, arrival-order, wrong-codec"));
}

}  // namespace
}  // namespace mephisto
