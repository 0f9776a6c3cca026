// Random: one fixed-algorithm PRNG (xoshiro256**, seeded through splitmix64), identical on every standard library
// and platform, so that a seed reproduces a run. Never use std::*_distribution with it: their output differs between
// standard libraries. Not thread-safe; give each component its own sub-stream with fork().
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

namespace mephisto {

class Random {
 public:
  explicit Random(uint64_t seed);

  // The seed this stream was created with (for reproduction lines).
  [[nodiscard]] uint64_t seed() const { return seed_; }

  // Uniform over all 64-bit values.
  uint64_t next_u64();
  // Uniform in [0, bound). Precondition: bound > 0. Unbiased (rejection sampling).
  uint64_t below(uint64_t bound);
  // Uniform in [lo, hi]. Precondition: lo <= hi.
  int64_t between(int64_t lo, int64_t hi);
  // True with probability p (p outside [0,1] is clamped).
  bool chance(double p);
  // Uniform in [0, 1) with 53 bits of precision.
  double unit();

  // An independent sub-stream for a named component: the same (seed, name) always gives the same stream, and
  // drawing from the child does not disturb the parent. This keeps one component's extra draws (say, a new
  // fault) from shifting every other component's choices.
  [[nodiscard]] Random fork(std::string_view component) const;

 private:
  uint64_t seed_;
  std::array<uint64_t, 4> state_;
};

// 64-bit FNV-1a, the project's stable string hash (std::hash is not stable across implementations).
[[nodiscard]] uint64_t stable_hash(std::string_view bytes, uint64_t basis = 0xcbf29ce484222325ULL);

}  // namespace mephisto
