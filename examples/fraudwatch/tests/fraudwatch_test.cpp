// fraudwatch's own tests: the rule as a pure function, then the binary's commands — its scenario passes under
// faults, and the differential oracle finds the planted cache and shrinks the failure.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <filesystem>
#include <regex>
#include <string>
#include <vector>

#include "fraudwatch.h"

namespace {

struct Ran {
  int exit_code = -1;
  std::string output;
};

// Runs the fraudwatch binary with `args`, stdout and stderr together.
Ran fraudwatch(const std::string& args) {
  Ran ran;
  const std::string command = std::string(FRAUDWATCH_BIN) + " " + args + " 2>&1";
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return ran;
  std::array<char, 4096> buffer{};
  while (size_t n = std::fread(buffer.data(), 1, buffer.size(), pipe)) ran.output.append(buffer.data(), n);
  const int status = ::pclose(pipe);
  ran.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return ran;
}

std::string scenario(const std::string& name) {
  return std::string(FRAUDWATCH_SCENARIOS) + "/" + name + ".textproto";
}

fraudwatch::Payment payment(const std::string& id, int64_t cents) {
  fraudwatch::Payment p;
  p.set_id(id);
  p.set_amount_cents(cents);
  return p;
}

TEST(Decide, FlagsAPaymentOverFiveTimesTheAverageOnlyAfterThreePayments) {
  fraudwatch::AccountState state;
  for (int i = 0; i < 3; ++i) {
    const fraudwatch::Decision d = fraudwatch::decide(state, payment("p" + std::to_string(i), 100));
    EXPECT_FALSE(d.verdict.flagged());
    state = d.after;
  }
  EXPECT_EQ(state.total_cents(), 300);
  EXPECT_EQ(state.payments(), 3);
  const fraudwatch::Decision normal = fraudwatch::decide(state, payment("p3", 500));
  EXPECT_FALSE(normal.verdict.flagged());
  const fraudwatch::Decision odd = fraudwatch::decide(state, payment("p4", 501));
  EXPECT_TRUE(odd.verdict.flagged());
  EXPECT_EQ(odd.after.flagged(), 1);
  EXPECT_EQ(odd.verdict.total_cents(), 801);
}

TEST(Decide, FlagsAnyPaymentOverTheLimit) {
  const fraudwatch::Decision d = fraudwatch::decide({}, payment("p0", 1'000'001));
  EXPECT_TRUE(d.verdict.flagged());
  EXPECT_EQ(d.after.largest_cents(), 1'000'001);
}

// The app itself, records in and out, through mephisto::TestDriver (no Kafka: one simulated worker).
TEST(Driver, OneVerdictPerPaymentAndEachAccountsStateInTheTable) {
  mephisto::TestDriver driver(fraudwatch::app(false), {.partitions = 4});
  for (int i = 0; i < 4; ++i)
    driver.send<std::string, fraudwatch::Payment>("payments", "acct-1",
                                                  payment("p" + std::to_string(i), 100));
  driver.send<std::string, fraudwatch::Payment>("payments", "acct-1", payment("p4", 1000));
  driver.send<std::string, fraudwatch::Payment>("payments", "acct-2", payment("p5", 2'000'000));
  const mephisto::Status processed = driver.process();
  ASSERT_TRUE(processed.ok()) << processed.error().to_string();

  const auto verdicts = driver.read<std::string, fraudwatch::Verdict>("verdicts");
  ASSERT_EQ(verdicts.size(), 6U);
  std::vector<std::string> flagged;
  for (const auto& [account, verdict] : verdicts)
    if (verdict.flagged()) flagged.push_back(verdict.payment_id());
  std::sort(flagged.begin(), flagged.end());
  EXPECT_EQ(flagged, (std::vector<std::string>{"p4", "p5"}));

  const auto accounts = driver.table<std::string, fraudwatch::AccountState>("accounts");
  ASSERT_EQ(accounts.size(), 2U);
  EXPECT_EQ(accounts.at("acct-1").total_cents(), 1400);
  EXPECT_EQ(accounts.at("acct-1").payments(), 5);
  EXPECT_EQ(accounts.at("acct-1").flagged(), 1);
  EXPECT_EQ(accounts.at("acct-2").largest_cents(), 2'000'000);
}

TEST(Binary, ListsItsApps) {
  const Ran ran = fraudwatch("apps");
  ASSERT_EQ(ran.exit_code, 0) << ran.output;
  EXPECT_NE(ran.output.find("fraudwatch-cached"), std::string::npos) << ran.output;
}

TEST(Binary, TheScenarioPassesUnderFaults) {
  const Ran ran = fraudwatch("sim " + scenario("fraudwatch") + " --seeds 20 --jobs 2 -q");
  EXPECT_EQ(ran.exit_code, 0) << ran.output;
  EXPECT_NE(ran.output.find("verdict: PASS"), std::string::npos) << ran.output;
  // Judged on every seed ("differential (not checked)" would mean it never ran).
  EXPECT_TRUE(std::regex_search(ran.output, std::regex("differential +20 +0 +0 +0 +0"))) << ran.output;
}

TEST(Binary, TheDifferentialOracleFindsThePlantedCacheAndShrinksIt) {
  const std::filesystem::path dir = std::filesystem::temp_directory_path() / "fraudwatch-test-shrink";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const std::string shrunk = (dir / "shrunk.textproto").string();
  const Ran ran =
      fraudwatch("sim " + scenario("fraudwatch-cached") + " --seeds 20 --jobs 2 -q --shrink --shrink-out " +
                 shrunk + " --trace-dir " + (dir / "traces").string());
  EXPECT_EQ(ran.exit_code, 1) << ran.output;
  EXPECT_NE(ran.output.find("verdict: FAIL"), std::string::npos) << ran.output;
  EXPECT_NE(ran.output.find("differential VIOLATED"), std::string::npos) << ran.output;
  ASSERT_TRUE(std::filesystem::exists(shrunk)) << ran.output;

  // The minimal scenario fails on its own with the seed the shrinker names ("reproduce: ... --seed N").
  const size_t shrunk_at = ran.output.find("shrunk in ");
  ASSERT_NE(shrunk_at, std::string::npos) << ran.output;
  const size_t seed_at = ran.output.find("--seed ", ran.output.find("reproduce: ", shrunk_at));
  ASSERT_NE(seed_at, std::string::npos) << ran.output;
  const std::string seed =
      ran.output.substr(seed_at + 7, ran.output.find_first_of(" \n", seed_at + 7) - seed_at - 7);
  const Ran again =
      fraudwatch("sim " + shrunk + " --seed " + seed + " -q --trace-dir " + (dir / "traces").string());
  EXPECT_EQ(again.exit_code, 1) << again.output;
  EXPECT_NE(again.output.find("differential VIOLATED"), std::string::npos) << again.output;
  std::filesystem::remove_all(dir);
}

}  // namespace
