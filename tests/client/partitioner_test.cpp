// Kafka's default partitioner, pinned to the Java client's own golden values (UtilsTest.testMurmur2), so keyed
// records land on the same partitions in the simulator as on real Kafka.
#include <gtest/gtest.h>

#include "sim/client/partitioner.h"

namespace mephisto::sim {
namespace {

TEST(Murmur2, MatchesKafkaJavaClientGoldenValues) {
  EXPECT_EQ(kafka_murmur2("21"), -973932308);
  EXPECT_EQ(kafka_murmur2("foobar"), -790332482);
  EXPECT_EQ(kafka_murmur2("a-little-bit-long-string"), -985981536);
  EXPECT_EQ(kafka_murmur2("a-little-bit-longer-string"), -1486304829);
  EXPECT_EQ(kafka_murmur2("lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8"), -58897971);
  EXPECT_EQ(kafka_murmur2("abc"), 479470107);
}

TEST(Partitioner, ClearsTheSignBitLikeUtilsToPositive) {
  // -973932308 & 0x7fffffff = 1173551340; 1173551340 % 12 = 0.
  EXPECT_EQ(partition_for_key("21", 12), (-973932308 & 0x7fffffff) % 12);
  for (int32_t n = 1; n <= 64; ++n) {
    const int32_t p = partition_for_key("foobar", n);
    EXPECT_GE(p, 0);
    EXPECT_LT(p, n);
  }
}

}  // namespace
}  // namespace mephisto::sim
