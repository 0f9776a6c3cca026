// Planted bugs (runtime/seam/planted.h) are detected by the shipped scenarios within a stated seed budget:
// the proof that the checkers find real bugs. Each bug runs on the scenario that exercises it, seeds 1, 2,
// ... until the first failing run; the test fails if none of the budget's seeds fails. The budgets are about
// 2-3x the seeds the detection took when they were set (printed on every run: `seeds to detect`), so a
// checker or scenario that gets blind shows up here. `mephisto sim <scenario> --planted NAME --seeds N` is
// the same search.
#include <gtest/gtest.h>

#include <cstdint>
#include <iostream>
#include <string>

#include "sim/scenario/loader.h"
#include "sim/scenario/runner.h"
#include "tests/support/example_apps.h"

namespace mephisto::sim::scenario {
namespace {

struct Case {
  std::string bug;
  std::string scenario;
  uint64_t budget;  // seeds (a run is a pure function of its seed, so the count is the same in every build)
};

std::ostream& operator<<(std::ostream& os, const Case& c) {
  return os << c.bug;
}

class PlantedBugDetection : public ::testing::TestWithParam<Case> {};

// Under AddressSanitizer a seed runs ~40x slower, and the long searches (no-fencing alone took ~390 s) were
// the sanitizer half's biggest cost in .ci/run. A search is a pure function of its seeds, so it finds the bug
// at the same seed in every build: the sanitizer build runs the short searches (they exercise the planted
// code paths under ASan) and leaves the long ones to the normal build, which runs every case in the same CI
// run.
#if defined(__SANITIZE_ADDRESS__)
constexpr uint64_t kMaxBudgetUnderSanitizer = 20;
#else
constexpr uint64_t kMaxBudgetUnderSanitizer = UINT64_MAX;
#endif

TEST_P(PlantedBugDetection, DetectedWithinItsSeedBudget) {
  const Case& c = GetParam();
  if (c.budget > kMaxBudgetUnderSanitizer) {
    GTEST_SKIP() << "a " << c.budget
                 << "-seed search: run by the normal build (tools/dev test), not under ASan";
  }
  const auto bug = planted_bug_named(c.bug);
  ASSERT_TRUE(bug.has_value()) << c.bug;
  Result<Scenario> s = load_scenario_file(
      std::string(MEPHISTO_SOURCE_DIR) + "/scenarios/" + c.scenario + ".textproto", test::example_apps());
  ASSERT_TRUE(s.ok()) << s.error().message;
  for (uint64_t seed = 1; seed <= c.budget; ++seed) {
    RunOptions options;
    options.app = test::scenario_app(*s);
    options.seed = seed;
    options.planted = *bug;
    options.scenario_file = "scenarios/" + c.scenario + ".textproto";
    options.timeline = false;
    const RunResult r = run_scenario(*s, options);
    if (r.passed) continue;
    std::string first;
    for (const Verdict& v : r.verdicts) {
      if (verdict_fails(v.status) && first.empty()) {
        first = invariant_name(v.invariant) + (v.examples.empty() ? "" : ": " + v.examples.front().text);
      }
    }
    std::cout << "planted bug " << c.bug << " on " << c.scenario << ": seeds to detect " << seed
              << " (budget " << c.budget << "); " << first << "\n  reproduce: " << r.reproduce << std::endl;
    return;
  }
  ADD_FAILURE() << "planted bug " << c.bug << " was not detected by " << c.scenario << " in " << c.budget
                << " seeds";
}

INSTANTIATE_TEST_SUITE_P(Catalogue, PlantedBugDetection,
                         ::testing::Values(Case{"offsets-outside-transaction", "flagship", 20},
                                           Case{"no-fencing", "flagship", 250},
                                           Case{"changelog-read-uncommitted", "flagship", 10},
                                           Case{"table-write-not-rolled-back", "flagship", 10},
                                           Case{"ack-before-processing", "swarm-at-least-once", 100},
                                           Case{"commit-before-delivery", "swarm-at-least-once", 100},
                                           Case{"revoked-commit-kept", "flagship", 100}),
                         [](const auto& info) {
                           std::string name = info.param.bug;
                           for (char& ch : name) {
                             if (ch == '-') ch = '_';
                           }
                           return name;
                         });

TEST(PlantedBugCatalogue, EveryBugHasADetectionCase) {
  // The list above must cover the whole catalogue: a new planted bug needs a scenario that finds it.
  EXPECT_EQ(planted_bugs().size(), 7u);
}

}  // namespace
}  // namespace mephisto::sim::scenario
