// Log compaction through the cluster: compact_now, tombstones, offsets preserved, open transactions respected.
#include "cluster_fixture.h"

namespace mephisto::sim::testing {
namespace {

class CompactionTest : public ClusterFixture {
 protected:
  static std::vector<std::pair<int64_t, std::string>> records_of(const std::vector<RecordBatch>& batches) {
    std::vector<std::pair<int64_t, std::string>> out;
    for (const auto& b : batches) {
      if (b.is_control()) continue;
      for (const auto& r : *b.records) {
        out.emplace_back(b.base_offset + r.offset_delta, r.key.value_or("") + "=" + r.value.value_or("<tombstone>"));
      }
    }
    return out;
  }

  // Opens transaction "tx" on `tp` and writes key=value in it (left open): the producer id and epoch, to end
  // it.
  InitProducerIdResponse produce_in_transaction(const TopicPartition& tp, const std::string& key,
                                                const std::string& value) {
    const BrokerId txn_coordinator = coordinator(CoordinatorType::kTransaction, "tx");
    InitProducerIdRequest init;
    init.transactional_id = "tx";
    auto id = call<InitProducerIdResponse>(txn_coordinator, init);
    EXPECT_EQ(id.error, ErrorCode::kNone);
    AddPartitionsToTxnRequest add{"tx", id.producer_id, id.producer_epoch, {tp}};
    EXPECT_EQ(call<AddPartitionsToTxnResponse>(txn_coordinator, add).partitions[0].error, ErrorCode::kNone);
    RecordBatch b = keyed({{key, value}});
    b.producer_id = id.producer_id;
    b.producer_epoch = id.producer_epoch;
    b.base_sequence = 0;
    b.is_transactional = true;
    ProduceRequest req = produce_request(tp, std::move(b));
    req.transactional_id = "tx";
    EXPECT_EQ(call<ProduceResponse>(leader(tp), req).partitions[0].error, ErrorCode::kNone);
    return id;
  }
};

TEST_F(CompactionTest, KeepsTheLatestRecordPerKeyWithOffsetGaps) {
  ClusterConfig config = default_config();
  config.delete_retention_ms = 1000;
  start(config);
  ASSERT_EQ(create_topic("c", 1, 3, {{"cleanup.policy", "compact"}}), ErrorCode::kNone);
  const TopicPartition tp{"c", 0};
  ASSERT_EQ(produce(tp, keyed({{"a", "1"}, {"b", "1"}})).error, ErrorCode::kNone);
  ASSERT_EQ(produce(tp, keyed({{"a", "2"}})).error, ErrorCode::kNone);
  ASSERT_EQ(produce(tp, keyed({{"c", "1"}})).error, ErrorCode::kNone);
  ASSERT_EQ(produce(tp, keyed({{"c", std::nullopt}})).error, ErrorCode::kNone);
  ASSERT_EQ(produce(tp, keyed({{"b", "2"}})).error, ErrorCode::kNone);
  ASSERT_EQ(produce(tp, keyed({{"z", "last"}})).error, ErrorCode::kNone);
  run_for(100);
  ASSERT_TRUE(cluster().compact_now("c").ok());
  using Rec = std::vector<std::pair<int64_t, std::string>>;
  EXPECT_EQ(records_of(fetch(tp, 0).batches),
            (Rec{{2, "a=2"}, {4, "c=<tombstone>"}, {5, "b=2"}, {6, "z=last"}}));
  // Every replica compacts the same way.
  for (BrokerId b : state(tp).replicas) {
    EXPECT_EQ(records_of(cluster().replica_log(tp, b)), (Rec{{2, "a=2"}, {4, "c=<tombstone>"}, {5, "b=2"}, {6, "z=last"}}));
  }
  EXPECT_EQ(state(tp).high_watermark, 7) << "offsets are never reused";
  run_for(2000);
  ASSERT_TRUE(cluster().compact_now("c").ok());
  EXPECT_EQ(records_of(fetch(tp, 0).batches), (Rec{{2, "a=2"}, {5, "b=2"}, {6, "z=last"}}));
  EXPECT_EQ(produce(tp, keyed({{"a", "3"}})).base_offset, 7);
  EXPECT_EQ(cluster().compact_now("nope").code(), ErrorCode::kUnknownTopicOrPartition);
  ASSERT_EQ(create_topic("plain"), ErrorCode::kNone);
  EXPECT_EQ(cluster().compact_now("plain").code(), ErrorCode::kInvalidConfig);
}

TEST_F(CompactionTest, NeverCleansAboveAnOpenTransaction) {
  start();
  ASSERT_EQ(create_topic("c", 1, 3, {{"cleanup.policy", "compact"}}), ErrorCode::kNone);
  const TopicPartition tp{"c", 0};
  ASSERT_EQ(produce(tp, keyed({{"k", "1"}})).error, ErrorCode::kNone);
  // An open transaction at offset 1 pins the cleanable range below it.
  (void)produce_in_transaction(tp, "k", "txn");
  ASSERT_FALSE(::testing::Test::HasFailure());
  ASSERT_EQ(produce(tp, keyed({{"k", "2"}})).error, ErrorCode::kNone);
  ASSERT_EQ(produce(tp, keyed({{"k", "3"}})).error, ErrorCode::kNone);
  ASSERT_TRUE(cluster().compact_now("c").ok());
  EXPECT_EQ(records_of(fetch(tp, 0).batches).size(), 4u) << "nothing at or above the LSO may be cleaned";
}

// Found by the tables property test: an aborted record must not shadow the committed value of its key (Kafka's
// cleaner leaves aborted batches out of its offset map), or a compacted changelog loses committed table state.
TEST_F(CompactionTest, AnAbortedRecordNeverShadowsTheCommittedValueOfItsKey) {
  start();
  ASSERT_EQ(create_topic("c", 1, 3, {{"cleanup.policy", "compact"}}), ErrorCode::kNone);
  const TopicPartition tp{"c", 0};
  ASSERT_EQ(produce(tp, keyed({{"k", "committed"}})).error, ErrorCode::kNone);
  const auto id = produce_in_transaction(tp, "k", "aborted");
  ASSERT_FALSE(::testing::Test::HasFailure());
  EndTxnRequest end{"tx", id.producer_id, id.producer_epoch, false};
  ASSERT_EQ(call<EndTxnResponse>(coordinator(CoordinatorType::kTransaction, "tx"), end).error, ErrorCode::kNone);
  run_for(1000);  // the abort marker is written
  ASSERT_EQ(produce(tp, keyed({{"z", "last"}})).error, ErrorCode::kNone);
  ASSERT_TRUE(cluster().compact_now("c").ok());
  const auto kept = records_of(fetch(tp, 0).batches);
  ASSERT_FALSE(kept.empty());
  EXPECT_EQ(kept.front(), (std::pair<int64_t, std::string>{0, "k=committed"}));
  for (const auto& [offset, text] : kept) EXPECT_NE(text, "k=aborted") << "aborted records are cleaned";
}

// Found by the long swarm (flagship seed 170581, issue #16's note): a follower that had not yet replicated an
// abort marker cleaned its log up to the leader's last stable offset. In its own log the transaction was
// still open, so the (later aborted) record shadowed the key's committed value, which was gone once the
// marker arrived; the follower then led the partition and a table restored from it lost the key. Each
// broker's cleaner is bounded by the first unstable offset of its own log, as Kafka's is.
TEST_F(CompactionTest, AFollowerNeverCleansPastATransactionItsOwnLogStillHoldsOpen) {
  start();
  ASSERT_EQ(create_topic("c", 1, 3, {{"cleanup.policy", "compact"}}), ErrorCode::kNone);
  const TopicPartition tp{"c", 0};
  ASSERT_EQ(produce(tp, keyed({{"k", "committed"}})).error, ErrorCode::kNone);
  const auto id = produce_in_transaction(tp, "k", "aborted");
  ASSERT_FALSE(::testing::Test::HasFailure());
  const BrokerId txn_coordinator = coordinator(CoordinatorType::kTransaction, "tx");
  ASSERT_EQ(produce(tp, keyed({{"y", "1"}})).error, ErrorCode::kNone);
  run_for(1000);  // every replica has offsets 0..2 and knows the high watermark 3
  // The follower that is neither the leader nor the transaction coordinator misses the abort marker.
  BrokerId follower = kNoBroker;
  for (BrokerId r : state(tp).replicas) {
    if (r != leader(tp) && r != txn_coordinator) follower = r;
  }
  ASSERT_NE(follower, kNoBroker);
  cluster().crash_broker(follower);
  EndTxnRequest end{"tx", id.producer_id, id.producer_epoch, false};
  ASSERT_EQ(call<EndTxnResponse>(txn_coordinator, end).error, ErrorCode::kNone);
  run_for(1000);  // the abort marker is on the leader
  cluster().restart_broker(follower);
  ASSERT_TRUE(cluster().compact_now("c").ok());  // before the follower fetched the marker
  run_for(5000);                                 // it catches up: the marker, and the aborted record cleaned
  ASSERT_TRUE(cluster().compact_now("c").ok());
  const auto kept = records_of(cluster().replica_log(tp, follower));
  ASSERT_FALSE(kept.empty());
  EXPECT_EQ(kept.front(), (std::pair<int64_t, std::string>{0, "k=committed"}))
      << "the follower lost the committed value of k";
}

}  // namespace
}  // namespace mephisto::sim::testing
