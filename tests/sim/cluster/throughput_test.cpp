// A throughput check of the broker side: records produced with acks=all to a 3-replica topic and read back by a
// long-polling fetcher, all through Cluster::handle(). The cluster's cost is per batch (records are shared, never
// copied), so the rate is dominated by building the records. Prints records/s; asserts only completeness.
#include <chrono>
#include <cstdio>

#include "cluster_fixture.h"

namespace mephisto::sim::testing {
namespace {

class ThroughputTest : public ClusterFixture {};

TEST_F(ThroughputTest, ProduceReplicateAndFetchOneMillionRecords) {
  ClusterConfig config = default_config();
  start(config);
  ASSERT_EQ(create_topic("t", 4, 3), ErrorCode::kNone);
  constexpr int kPartitions = 4;
  constexpr int kBatchRecords = 1000;
  constexpr int kBatches = 1000;
  constexpr int kInFlightPerPartition = 5;

  const auto wall_start = std::chrono::steady_clock::now();
  int sent = 0;
  int acked = 0;
  int64_t fetched_records = 0;
  std::vector<int64_t> positions(kPartitions, 0);
  std::vector<int> in_flight(kPartitions, 0);
  std::vector<bool> fetching(kPartitions, false);
  const std::string value(100, 'v');

  std::function<void(int)> pump_produce;
  std::function<void(int)> pump_fetch;
  pump_produce = [&](int p) {
    while (in_flight[p] < kInFlightPerPartition && sent < kBatches) {
      std::vector<Record> records(kBatchRecords);
      for (int i = 0; i < kBatchRecords; ++i) {
        records[i].key = "k";
        records[i].value = value;
      }
      ++sent;
      ++in_flight[p];
      const TopicPartition tp{"t", p};
      cluster().handle(leader(tp), produce_request(tp, make_batch(std::move(records))), [&, p](Response r) {
        EXPECT_EQ(first_error(r), ErrorCode::kNone);
        ++acked;
        --in_flight[p];
        pump_produce(p);
      });
    }
  };
  pump_fetch = [&](int p) {
    if (fetching[p]) return;
    fetching[p] = true;
    const TopicPartition tp{"t", p};
    FetchRequest req;
    req.isolation_level = IsolationLevel::kReadUncommitted;
    req.max_wait_ms = 500;
    req.partitions.push_back({tp, positions[p], 50 << 20});
    cluster().handle(leader(tp), req, [&, p](Response r) {
      fetching[p] = false;
      for (const auto& batch : std::get<FetchResponse>(r).partitions[0].batches) {
        for (const auto& record : *batch.records) {
          if (batch.base_offset + record.offset_delta >= positions[p]) ++fetched_records;
        }
        positions[p] = batch.next_offset();
      }
      if (fetched_records < int64_t{kBatches} * kBatchRecords) pump_fetch(p);
    });
  };
  for (int p = 0; p < kPartitions; ++p) {
    pump_produce(p);
    pump_fetch(p);
  }
  executor().run_until([&] { return fetched_records == int64_t{kBatches} * kBatchRecords; }, now() + 600000);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
  EXPECT_EQ(acked, kBatches);
  EXPECT_EQ(fetched_records, int64_t{kBatches} * kBatchRecords);
  std::printf("  %d records produced (acks=all, rf=3) and fetched in %.3f s wall, %.1f s virtual: %.0f records/s\n",
              kBatches * kBatchRecords, seconds, static_cast<double>(now()) / 1000.0,
              kBatches * kBatchRecords / seconds);
}

}  // namespace
}  // namespace mephisto::sim::testing
