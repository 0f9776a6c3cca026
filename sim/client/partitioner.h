// Kafka's default partitioner for keyed records: toPositive(murmur2(key)) % partitions, bit-for-bit as the Java
// client (Utils.murmur2) and librdkafka's murmur2_random partitioner compute it, so keys land on the same
// partitions in the simulator as on real Kafka.
#pragma once

#include <cstdint>
#include <string_view>

namespace mephisto::sim {

[[nodiscard]] int32_t kafka_murmur2(std::string_view bytes);
[[nodiscard]] int32_t partition_for_key(std::string_view key, int32_t partitions);

}  // namespace mephisto::sim
