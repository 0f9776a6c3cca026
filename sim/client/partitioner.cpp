#include "sim/client/partitioner.h"

#include <cassert>

namespace mephisto::sim {

int32_t kafka_murmur2(std::string_view data) {
  // org.apache.kafka.common.utils.Utils.murmur2, with Java's wrapping int arithmetic done in uint32_t.
  const auto length = static_cast<uint32_t>(data.size());
  const uint32_t seed = 0x9747b28c;
  const uint32_t m = 0x5bd1e995;
  const int r = 24;
  uint32_t h = seed ^ length;
  const uint32_t length4 = length / 4;
  const auto* bytes = reinterpret_cast<const unsigned char*>(data.data());
  for (uint32_t i = 0; i < length4; i++) {
    const uint32_t i4 = i * 4;
    uint32_t k = static_cast<uint32_t>(bytes[i4 + 0]) | (static_cast<uint32_t>(bytes[i4 + 1]) << 8) |
                 (static_cast<uint32_t>(bytes[i4 + 2]) << 16) | (static_cast<uint32_t>(bytes[i4 + 3]) << 24);
    k *= m;
    k ^= k >> r;
    k *= m;
    h *= m;
    h ^= k;
  }
  switch (length % 4) {
    case 3:
      h ^= static_cast<uint32_t>(bytes[(length & ~3u) + 2]) << 16;
      [[fallthrough]];
    case 2:
      h ^= static_cast<uint32_t>(bytes[(length & ~3u) + 1]) << 8;
      [[fallthrough]];
    case 1:
      h ^= static_cast<uint32_t>(bytes[length & ~3u]);
      h *= m;
  }
  h ^= h >> 13;
  h *= m;
  h ^= h >> 15;
  return static_cast<int32_t>(h);
}

int32_t partition_for_key(std::string_view key, int32_t partitions) {
  assert(partitions > 0);
  // Utils.toPositive: clear the sign bit (not abs(), which overflows for INT_MIN).
  const int32_t positive = kafka_murmur2(key) & 0x7fffffff;
  return positive % partitions;
}

}  // namespace mephisto::sim
