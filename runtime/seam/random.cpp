#include "runtime/seam/random.h"

#include <cassert>

namespace mephisto {
namespace {

constexpr uint64_t rotl(uint64_t x, int k) {
  return (x << k) | (x >> (64 - k));
}

// splitmix64 (Steele, Lea, Flood): the seeding generator the xoshiro authors recommend, because it turns any
// seed (0, 1, 2, ...) into well-mixed, never-all-zero state.
constexpr uint64_t splitmix64_next(uint64_t& state) {
  state += 0x9e3779b97f4a7c15ULL;
  uint64_t z = state;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

}  // namespace

Random::Random(uint64_t seed) : seed_(seed) {
  uint64_t sm = seed;
  for (auto& word : state_) word = splitmix64_next(sm);
}

// xoshiro256** 1.0 (Blackman, Vigna).
uint64_t Random::next_u64() {
  const uint64_t result = rotl(state_[1] * 5, 7) * 9;
  const uint64_t t = state_[1] << 17;
  state_[2] ^= state_[0];
  state_[3] ^= state_[1];
  state_[1] ^= state_[2];
  state_[0] ^= state_[3];
  state_[2] ^= t;
  state_[3] = rotl(state_[3], 45);
  return result;
}

// Lemire's multiply-and-reject ("Fast Random Integer Generation in an Interval", 2019): unbiased, and divides
// only in the rare rejection zone. The exact algorithm is part of the determinism contract: changing it
// changes every run's hash.
uint64_t Random::below(uint64_t bound) {
  assert(bound > 0 && "Random::below: bound must be > 0");
  unsigned __int128 m = static_cast<unsigned __int128>(next_u64()) * bound;
  uint64_t low = static_cast<uint64_t>(m);
  if (low < bound) {
    const uint64_t threshold = (0 - bound) % bound;  // 2^64 mod bound
    while (low < threshold) {
      m = static_cast<unsigned __int128>(next_u64()) * bound;
      low = static_cast<uint64_t>(m);
    }
  }
  return static_cast<uint64_t>(m >> 64);
}

int64_t Random::between(int64_t lo, int64_t hi) {
  assert(lo <= hi && "Random::between: lo must be <= hi");
  // Unsigned arithmetic: hi - lo may not fit an int64 (e.g. the full range), but it always fits a uint64.
  const uint64_t span = static_cast<uint64_t>(hi) - static_cast<uint64_t>(lo);
  const uint64_t offset = span == UINT64_MAX ? next_u64() : below(span + 1);
  return static_cast<int64_t>(static_cast<uint64_t>(lo) + offset);
}

bool Random::chance(double p) {
  // Always draw, even for p <= 0 or p >= 1, so that tuning a probability never shifts later draws.
  const double u = unit();
  if (!(p > 0.0)) return false;  // also NaN
  if (p >= 1.0) return true;
  return u < p;
}

double Random::unit() {
  return static_cast<double>(next_u64() >> 11) * 0x1.0p-53;
}

Random Random::fork(std::string_view component) const {
  // Mixed through splitmix64 so that nearby seeds and similar names still give unrelated children; seed_ (not
  // the current state) keeps the child independent of how much the parent has drawn.
  uint64_t mix = seed_ ^ rotl(stable_hash(component), 29);
  return Random(splitmix64_next(mix));
}

uint64_t stable_hash(std::string_view bytes, uint64_t basis) {
  uint64_t hash = basis;
  for (const char c : bytes) {
    hash ^= static_cast<unsigned char>(c);
    hash *= 0x100000001b3ULL;
  }
  return hash;
}

}  // namespace mephisto
