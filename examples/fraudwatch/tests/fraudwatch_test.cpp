// fraudwatch's own tests: the rule as a pure function, then the binary's commands — its scenario passes under
// faults, and the differential oracle finds the planted cache and shrinks the failure.
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <string>

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

TEST(Binary, ListsItsApps) {
  const Ran ran = fraudwatch("apps");
  ASSERT_EQ(ran.exit_code, 0) << ran.output;
  EXPECT_NE(ran.output.find("fraudwatch-cached"), std::string::npos) << ran.output;
}

TEST(Binary, TheScenarioPassesUnderFaults) {
  const Ran ran = fraudwatch("sim " + scenario("fraudwatch") + " --seeds 20 --jobs 2 -q");
  EXPECT_EQ(ran.exit_code, 0) << ran.output;
  EXPECT_NE(ran.output.find("verdict: PASS"), std::string::npos) << ran.output;
  EXPECT_NE(ran.output.find("differential"), std::string::npos) << "the differential oracle did not run\n"
                                                                << ran.output;
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
