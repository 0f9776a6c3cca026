// Random is part of the determinism contract: these golden values pin the algorithm (xoshiro256** seeded by
// splitmix64, Lemire's bounded draw, the fork derivation) on every platform and standard library. If one of
// them changes, every recorded seed replays differently: change them only on purpose.
#include "runtime/seam/random.h"

#include <array>
#include <cmath>
#include <cstdint>
#include <set>
#include <vector>

#include <gtest/gtest.h>

namespace mephisto {
namespace {

// Reference values from the xoshiro authors' C code (xoshiro256starstar.c + splitmix64.c), seeded the same
// way.
TEST(Random, MatchesReferenceImplementation) {
  Random r42(42);
  EXPECT_EQ(r42.next_u64(), 0x15780b2e0c2ec716ULL);
  EXPECT_EQ(r42.next_u64(), 0x6104d9866d113a7eULL);
  EXPECT_EQ(r42.next_u64(), 0xae17533239e499a1ULL);
  EXPECT_EQ(r42.next_u64(), 0xecb8ad4703b360a1ULL);
  EXPECT_EQ(r42.next_u64(), 0xfde6dc7fe2ec5e64ULL);

  Random r0(0);
  EXPECT_EQ(r0.next_u64(), 0x99ec5f36cb75f2b4ULL);
  EXPECT_EQ(r0.next_u64(), 0xbf6e1f784956452aULL);
  EXPECT_EQ(r0.next_u64(), 0x1a5f849d4933e6e0ULL);
}

TEST(Random, GoldenDerivedDraws) {
  Random r(7);
  std::vector<uint64_t> below;
  for (int i = 0; i < 8; ++i) below.push_back(r.below(10));
  EXPECT_EQ(below, (std::vector<uint64_t>{7, 2, 8, 9, 9, 8, 0, 1}));
  EXPECT_EQ(r.between(-5, 5), -1);
  EXPECT_EQ(r.unit(), 0x1.36eb5d000c7p-3);
  EXPECT_EQ(Random(7).fork("broker-1").seed(), 0x79cd75a9f77c64e5ULL);
  EXPECT_EQ(Random(7).fork("broker-1").next_u64(), 0xe6e47331ec03727dULL);
}

TEST(Random, SeedIsReported) {
  EXPECT_EQ(Random(123).seed(), 123u);
  Random r(123);
  (void)r.next_u64();
  EXPECT_EQ(r.seed(), 123u);  // the creation seed, not the current state
}

TEST(Random, SameSeedSameStream) {
  Random a(99), b(99);
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(a.next_u64(), b.next_u64());
}

TEST(Random, BelowStaysInRange) {
  Random r(1);
  for (uint64_t bound : std::vector<uint64_t>{1, 2, 3, 7, 10, 1000, (1ULL << 63) + 1, UINT64_MAX}) {
    for (int i = 0; i < 2000; ++i) ASSERT_LT(r.below(bound), bound) << "bound " << bound;
  }
  for (int i = 0; i < 100; ++i) EXPECT_EQ(r.below(1), 0u);
}

TEST(Random, BelowIsRoughlyUniform) {
  // 7 does not divide 2^64, so a biased `next % 7` would still pass; this catches gross errors (wrong range,
  // stuck buckets). Chi-square with 6 degrees of freedom: 22.46 is the 0.999 quantile.
  Random r(2024);
  constexpr int kBuckets = 7;
  constexpr int kDraws = 70'000;
  std::array<int, kBuckets> counts{};
  for (int i = 0; i < kDraws; ++i) ++counts[r.below(kBuckets)];
  double chi2 = 0;
  const double expected = static_cast<double>(kDraws) / kBuckets;
  for (int c : counts) chi2 += (c - expected) * (c - expected) / expected;
  EXPECT_LT(chi2, 22.46);
}

TEST(Random, BetweenIsInclusive) {
  Random r(3);
  std::set<int64_t> seen;
  for (int i = 0; i < 1000; ++i) {
    const int64_t v = r.between(-2, 2);
    ASSERT_GE(v, -2);
    ASSERT_LE(v, 2);
    seen.insert(v);
  }
  EXPECT_EQ(seen.size(), 5u);
  EXPECT_EQ(r.between(5, 5), 5);
  // The full range does not overflow.
  (void)r.between(INT64_MIN, INT64_MAX);
  const int64_t low = r.between(INT64_MIN, INT64_MIN + 1);
  EXPECT_TRUE(low == INT64_MIN || low == INT64_MIN + 1);
}

TEST(Random, UnitIsInHalfOpenInterval) {
  Random r(4);
  double sum = 0;
  for (int i = 0; i < 10'000; ++i) {
    const double u = r.unit();
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    sum += u;
  }
  EXPECT_NEAR(sum / 10'000, 0.5, 0.02);
}

TEST(Random, ChanceClampsAndAlwaysDraws) {
  Random r(5), shadow(5);
  for (int i = 0; i < 100; ++i) {
    EXPECT_FALSE(r.chance(0.0));
    EXPECT_FALSE(r.chance(-1.0));
    EXPECT_TRUE(r.chance(1.0));
    EXPECT_TRUE(r.chance(2.0));
  }
  // Each chance() consumed exactly one draw, whatever p was: tuning a probability never shifts later draws.
  for (int i = 0; i < 400; ++i) (void)shadow.next_u64();
  EXPECT_EQ(r.next_u64(), shadow.next_u64());

  Random q(6);
  int hits = 0;
  for (int i = 0; i < 10'000; ++i) hits += q.chance(0.25) ? 1 : 0;
  EXPECT_NEAR(hits, 2500, 200);
}

TEST(Random, ForkIsStableAndIndependentOfParentDraws) {
  Random parent(11);
  const Random before = parent.fork("network");
  for (int i = 0; i < 50; ++i) (void)parent.next_u64();
  Random after = parent.fork("network");
  Random before_copy = before;
  EXPECT_EQ(before_copy.seed(), after.seed());
  for (int i = 0; i < 100; ++i) ASSERT_EQ(before_copy.next_u64(), after.next_u64());
}

TEST(Random, ForkDoesNotDisturbParent) {
  Random forked(12), plain(12);
  Random child = forked.fork("faults");
  for (int i = 0; i < 10; ++i) (void)child.next_u64();
  for (int i = 0; i < 100; ++i) ASSERT_EQ(forked.next_u64(), plain.next_u64());
}

TEST(Random, ForksAreDistinct) {
  const Random root(13);
  std::set<uint64_t> seeds{root.seed()};
  std::set<uint64_t> firsts;
  for (const char* name : {"a", "b", "broker-1", "broker-2", "worker-1", "worker-10", ""}) {
    Random child = root.fork(name);
    EXPECT_TRUE(seeds.insert(child.seed()).second) << name;
    EXPECT_TRUE(firsts.insert(child.next_u64()).second) << name;
  }
  // The same name under different seeds gives different children.
  EXPECT_NE(Random(13).fork("a").seed(), Random(14).fork("a").seed());
  // A fork is a plain stream: Random(child.seed()) reproduces it (reproduction lines print sub-seeds).
  Random child = root.fork("a");
  Random again(child.seed());
  for (int i = 0; i < 10; ++i) ASSERT_EQ(child.next_u64(), again.next_u64());
}

TEST(StableHash, IsFnv1a64) {
  EXPECT_EQ(stable_hash(""), 0xcbf29ce484222325ULL);
  EXPECT_EQ(stable_hash("a"), 0xaf63dc4c8601ec8cULL);
  EXPECT_EQ(stable_hash("foobar"), 0x85944171f73967e8ULL);
  // The basis chains hashes: hashing "foo" then "bar" equals hashing "foobar".
  EXPECT_EQ(stable_hash("bar", stable_hash("foo")), stable_hash("foobar"));
}

}  // namespace
}  // namespace mephisto
