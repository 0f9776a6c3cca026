// Whole-run determinism: the smoke scenario (producer, consumer group, worker and broker crashes) run twice per
// seed gives the same run hash; different seeds explore different interleavings; and the run loses nothing.
#include <gtest/gtest.h>

#include <set>

#include "sim/scenario/smoke.h"

namespace mephisto::sim {
namespace {

TEST(SmokeScenario, SameSeedSameRunHash) {
  for (uint64_t seed : {1, 2, 3, 42, 1234567}) {
    const SmokeOptions options{seed, 3000, true};
    const SmokeOutcome a = run_smoke(options);
    const SmokeOutcome b = run_smoke(options);
    EXPECT_EQ(a.hash, b.hash) << "seed " << seed << ": reproduce with build/bin/mephisto demo --seed " << seed
                              << " --records 3000 --check-determinism";
    EXPECT_EQ(a.events, b.events) << "seed " << seed;
    EXPECT_GT(a.events, 100u) << "the run logged almost nothing: the hash would prove little";
  }
}

TEST(SmokeScenario, DifferentSeedsExploreDifferentRuns) {
  std::set<uint64_t> hashes;
  for (uint64_t seed = 1; seed <= 5; ++seed) hashes.insert(run_smoke({seed, 2000, true}).hash);
  EXPECT_GE(hashes.size(), 4u) << "seeds should change latencies and same-time ordering";
}

TEST(SmokeScenario, EveryAcknowledgedRecordIsConsumedThroughCrashes) {
  for (uint64_t seed = 1; seed <= 4; ++seed) {
    const SmokeOutcome out = run_smoke({seed, 5000, true});
    EXPECT_TRUE(out.finished) << "seed " << seed;
    EXPECT_EQ(out.acked, 5000) << "seed " << seed;
    EXPECT_EQ(out.lost, 0) << "seed " << seed << ": reproduce with build/bin/mephisto demo --seed " << seed
                           << " --records 5000";
    EXPECT_EQ(out.consumed_distinct, out.acked) << "seed " << seed;
  }
}

TEST(SmokeScenario, FaultsChangeTheRun) {
  EXPECT_NE(run_smoke({7, 2000, true}).hash, run_smoke({7, 2000, false}).hash);
}

}  // namespace
}  // namespace mephisto::sim
