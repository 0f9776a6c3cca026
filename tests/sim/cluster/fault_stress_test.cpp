// Randomised faults against the replication invariants, over many seeds: once the faults heal every replica holds
// the same log (divergent followers truncated correctly), and with clean elections and min.insync.replicas=2 no
// acknowledged (acks=all) record is ever lost or moved. Seeds above 20 run with unclean leader election, where
// acknowledged records may be lost but the logs must still converge.
#include <cstdio>
#include <map>
#include <set>

#include "cluster_fixture.h"
#include "runtime/seam/random.h"

namespace mephisto::sim::testing {
namespace {

class FaultStressTest : public ClusterFixture, public ::testing::WithParamInterface<uint64_t> {};

TEST_P(FaultStressTest, AcknowledgedRecordsSurviveCrashesAndPartitions) {
  const uint64_t seed = GetParam();
  ClusterConfig config = default_config();
  config.replica_lag_time_max_ms = 2000;
  config.broker_session_timeout_ms = static_cast<int64_t>(seed % 3) * 100;
  const bool unclean = seed > 20;
  config.unclean_leader_election = unclean;
  start(config, seed);
  ASSERT_EQ(create_topic("t", 3, 3, {{"min.insync.replicas", "2"}}), ErrorCode::kNone);
  Random rng(seed * 7919);

  std::map<std::string, std::pair<TopicPartition, int64_t>> acked;  // value -> where it was acknowledged
  std::set<BrokerId> cut;
  const auto apply_cuts = [&] {
    if (cut.empty()) {
      cluster().set_broker_link_filter(nullptr);
    } else {
      cluster().set_broker_link_filter([cut](BrokerId from, BrokerId to) { return !cut.count(from) && !cut.count(to); });
    }
  };
  int next_value = 0;
  for (int step = 0; step < 2000; ++step) {
    const TopicPartition tp{"t", static_cast<int32_t>(rng.below(3))};
    const BrokerId leader = state(tp).leader;
    if (leader != kNoBroker && cluster().broker_alive(leader)) {
      const std::string value = "v" + std::to_string(next_value++);
      cluster().handle(leader, produce_request(tp, batch_of({value}), -1, 3000), [&acked, tp, value](Response r) {
        const auto& result = std::get<ProduceResponse>(r).partitions[0];
        if (result.error == ErrorCode::kNone) acked[value] = {tp, result.base_offset};
      });
    }
    const uint64_t dice = rng.below(1000);
    if (dice < 6) {
      const auto b = static_cast<BrokerId>(1 + rng.below(3));
      if (cluster().broker_alive(b)) {
        cluster().crash_broker(b);
      } else {
        cluster().restart_broker(b);
      }
    } else if (dice < 9) {
      const auto b = static_cast<BrokerId>(1 + rng.below(3));
      if (!cut.erase(b)) cut.insert(b);
      apply_cuts();
    } else if (dice < 12) {
      (void)cluster().move_leader(tp);
    }
    run_for(1 + static_cast<int64_t>(rng.below(10)));
  }
  // Heal: everything up, links restored, time to catch up.
  cut.clear();
  apply_cuts();
  for (BrokerId b : cluster().broker_ids()) cluster().restart_broker(b);
  run_for(20000);

  ASSERT_FALSE(acked.empty());
  int crashes = 0, elections = 0, truncations = 0, unclean_elections = 0;
  for (const auto& e : event_log().events()) {
    crashes += e.kind == "crash";
    elections += e.kind == "leader" && e.detail.rfind("t-", 0) == 0;
    truncations += e.kind == "truncate";
    unclean_elections += e.kind == "leader" && e.detail.find("UNCLEAN") != std::string::npos;
  }
  std::printf("seed %llu: %zu of %d acknowledged, %d crashes, %d elections (%d unclean), %d truncations\n",
              static_cast<unsigned long long>(seed), acked.size(), next_value, crashes, elections, unclean_elections,
              truncations);
  for (int32_t p = 0; p < 3; ++p) {
    const TopicPartition tp{"t", p};
    const auto s = state(tp);
    ASSERT_NE(s.leader, kNoBroker);
    EXPECT_EQ(s.isr.size(), 3u) << "seed " << seed << " partition " << p;
    // Every replica holds the same records at the same offsets.
    std::map<int64_t, std::string> reference;
    for (const auto& b : cluster().replica_log(tp, s.leader)) {
      for (const auto& r : *b.records) reference[b.base_offset + r.offset_delta] = r.value.value_or("");
    }
    for (BrokerId replica : s.replicas) {
      std::map<int64_t, std::string> mine;
      for (const auto& b : cluster().replica_log(tp, replica)) {
        for (const auto& r : *b.records) mine[b.base_offset + r.offset_delta] = r.value.value_or("");
      }
      EXPECT_EQ(mine, reference) << "seed " << seed << " partition " << p << " replica " << replica;
    }
    // No value twice.
    std::set<std::string> seen;
    for (const auto& [offset, value] : reference) EXPECT_TRUE(seen.insert(value).second) << value;
  }
  if (unclean) return;
  // Every acknowledged value is where it was acknowledged.
  for (const auto& [value, where] : acked) {
    const auto& [tp, offset] = where;
    bool found = false;
    for (const auto& b : cluster().replica_log(tp, state(tp).leader)) {
      for (const auto& r : *b.records) {
        if (b.base_offset + r.offset_delta == offset) found = r.value == value;
      }
    }
    EXPECT_TRUE(found) << "seed " << seed << ": acknowledged " << value << " lost from " << tp.topic << "-"
                       << tp.partition << "@" << offset;
  }
}

INSTANTIATE_TEST_SUITE_P(Seeds, FaultStressTest, ::testing::Range<uint64_t>(1, 31));

}  // namespace
}  // namespace mephisto::sim::testing
