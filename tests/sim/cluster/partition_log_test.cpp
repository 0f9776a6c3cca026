// PartitionLog on its own: producer-state rules, transaction bookkeeping, truncation, reads, compaction.
#include "sim/cluster/partition_log.h"

#include <gtest/gtest.h>

namespace mephisto::sim {
namespace {

RecordBatch batch(int64_t base, int n, int32_t epoch = 0, int64_t pid = -1, int16_t producer_epoch = -1,
                  int32_t seq = -1, bool txn = false) {
  std::vector<Record> records;
  for (int i = 0; i < n; ++i) {
    Record r;
    r.key = "k" + std::to_string(i);
    r.value = "v" + std::to_string(base + i);
    r.timestamp_ms = 100 + base + i;
    records.push_back(std::move(r));
  }
  RecordBatch b = make_batch(std::move(records));
  b.base_offset = base;
  b.partition_leader_epoch = epoch;
  b.producer_id = pid;
  b.producer_epoch = producer_epoch;
  b.base_sequence = seq;
  b.is_transactional = txn;
  b.size_bytes = batch_size_bytes(b);
  b.append_time_ms = 0;
  return b;
}

RecordBatch marker(int64_t base, int64_t pid, int16_t epoch, ControlType type, int32_t leader_epoch = 0) {
  RecordBatch b = batch(base, 1, leader_epoch, pid, epoch, -1, true);
  b.control = type;
  return b;
}

TEST(PartitionLog, IdempotentProducerRules) {
  PartitionLog log;
  EXPECT_EQ(log.check_producer(batch(0, 2, 0, 7, 0, 0)).error, ErrorCode::kNone);
  log.append(batch(0, 2, 0, 7, 0, 0));
  // The same batch again is a duplicate with its original offset.
  const ProducerCheck dup = log.check_producer(batch(0, 2, 0, 7, 0, 0));
  EXPECT_EQ(dup.error, ErrorCode::kDuplicateSequenceNumber);
  EXPECT_EQ(dup.duplicate_base_offset, 0);
  EXPECT_EQ(dup.duplicate_last_offset, 1);
  // A gap.
  EXPECT_EQ(log.check_producer(batch(2, 1, 0, 7, 0, 5)).error, ErrorCode::kOutOfOrderSequenceNumber);
  // The next sequence.
  EXPECT_EQ(log.check_producer(batch(2, 1, 0, 7, 0, 2)).error, ErrorCode::kNone);
  // A stale epoch.
  log.append(batch(2, 1, 0, 7, 1, 0));
  EXPECT_EQ(log.check_producer(batch(3, 1, 0, 7, 0, 3)).error, ErrorCode::kInvalidProducerEpoch);
  // A new epoch must restart at 0.
  EXPECT_EQ(log.check_producer(batch(3, 1, 0, 7, 2, 4)).error, ErrorCode::kOutOfOrderSequenceNumber);
  EXPECT_EQ(log.check_producer(batch(3, 1, 0, 7, 2, 0)).error, ErrorCode::kNone);
  // A new producer must start at 0.
  EXPECT_EQ(log.check_producer(batch(3, 1, 0, 8, 0, 3)).error, ErrorCode::kOutOfOrderSequenceNumber);
}

TEST(PartitionLog, OnlyTheLastFiveBatchesAreRemembered) {
  PartitionLog log;
  for (int i = 0; i < 6; ++i) log.append(batch(i, 1, 0, 7, 0, i));
  EXPECT_EQ(log.check_producer(batch(0, 1, 0, 7, 0, 5)).error, ErrorCode::kDuplicateSequenceNumber);
  EXPECT_EQ(log.check_producer(batch(0, 1, 0, 7, 0, 1)).error, ErrorCode::kDuplicateSequenceNumber);
  // Sequence 0 fell out of the window: no longer recognised as a duplicate.
  EXPECT_EQ(log.check_producer(batch(0, 1, 0, 7, 0, 0)).error, ErrorCode::kOutOfOrderSequenceNumber);
}

TEST(PartitionLog, TransactionsDriveTheUnstableOffsetAndAbortedIndex) {
  PartitionLog log;
  log.append(batch(0, 2));                                  // 0,1 plain
  log.append(batch(2, 2, 0, 7, 0, 0, true));                // 2,3 txn of pid 7
  log.append(batch(4, 1, 0, 8, 0, 0, true));                // 4 txn of pid 8
  EXPECT_EQ(log.first_unstable_offset(), 2);
  log.append(marker(5, 7, 0, ControlType::kAbort));         // 5 abort pid 7
  // The marker is not below the high watermark yet: the completed transaction still holds the LSO.
  EXPECT_EQ(log.first_unstable_offset(), 2);
  log.on_high_watermark(6);
  EXPECT_EQ(log.first_unstable_offset(), 4);
  std::vector<AbortedTransaction> aborted;
  log.aborted_in_range(0, 6, aborted);
  ASSERT_EQ(aborted.size(), 1u);
  EXPECT_EQ(aborted[0].producer_id, 7);
  EXPECT_EQ(aborted[0].first_offset, 2);
  EXPECT_TRUE(log.is_aborted(7, 3));
  EXPECT_FALSE(log.is_aborted(8, 4));
  log.append(marker(6, 8, 0, ControlType::kCommit));
  log.on_high_watermark(7);
  EXPECT_EQ(log.first_unstable_offset(), INT64_MAX);
}

TEST(PartitionLog, TruncationRebuildsStateAndEpochCache) {
  PartitionLog log;
  log.append(batch(0, 2, 0, 7, 0, 0));
  log.append(batch(2, 2, 1, 7, 0, 2));
  log.append(batch(4, 2, 2, 7, 0, 4, true));
  EXPECT_EQ(log.latest_epoch(), 2);
  EXPECT_EQ(log.end_offset_for_epoch(1), std::make_pair(1, int64_t{4}));
  EXPECT_EQ(log.end_offset_for_epoch(5), std::make_pair(2, int64_t{6}));
  log.truncate_to(4);
  EXPECT_EQ(log.log_end_offset(), 4);
  EXPECT_EQ(log.latest_epoch(), 1);
  EXPECT_EQ(log.first_unstable_offset(), INT64_MAX);
  // Producer state is back to "next sequence 4".
  EXPECT_EQ(log.check_producer(batch(4, 1, 3, 7, 0, 4)).error, ErrorCode::kNone);
  // Truncating inside a batch drops it whole.
  log.truncate_to(3);
  EXPECT_EQ(log.log_end_offset(), 2);
}

TEST(PartitionLog, ReadReturnsWholeBatchesWithinLimits) {
  PartitionLog log;
  for (int i = 0; i < 5; ++i) log.append(batch(i * 2, 2));
  std::vector<RecordBatch> out;
  log.read(3, 10, 1 << 20, true, out);
  ASSERT_EQ(out.size(), 4u);
  EXPECT_EQ(out[0].base_offset, 2);  // the batch containing offset 3
  out.clear();
  log.read(0, 4, 1 << 20, true, out);  // upto excludes batches reaching it
  EXPECT_EQ(out.size(), 2u);
  out.clear();
  log.read(0, 10, 1, true, out);  // at least one batch even over the byte limit
  EXPECT_EQ(out.size(), 1u);
  out.clear();
  log.read(0, 10, 1, false, out);
  EXPECT_TRUE(out.empty());
}

TEST(PartitionLog, CompactionKeepsLatestPerKeyAndOffsets) {
  PartitionLog log;
  const auto kv = [](int64_t base, std::string k, std::optional<std::string> v, int64_t append_ms) {
    std::vector<Record> records(1);
    records[0].key = std::move(k);
    records[0].value = std::move(v);
    RecordBatch b = make_batch(std::move(records));
    b.base_offset = base;
    b.partition_leader_epoch = 0;
    b.append_time_ms = append_ms;
    b.size_bytes = batch_size_bytes(b);
    return b;
  };
  log.append(kv(0, "a", "a1", 0));
  log.append(kv(1, "b", "b1", 0));
  log.append(kv(2, "a", "a2", 0));
  log.append(kv(3, "c", std::nullopt, 0));  // tombstone
  log.append(kv(4, "b", "b2", 0));
  log.append(kv(5, "z", "active", 0));  // the "active segment": never cleaned
  CompactionStats stats = log.compact(6, /*now_ms=*/10, /*delete_retention_ms=*/100, 0);
  EXPECT_EQ(stats.records_removed, 2);  // a1, b1
  std::vector<int64_t> offsets;
  for (const auto& b : log.batches()) offsets.push_back(b.base_offset);
  EXPECT_EQ(offsets, (std::vector<int64_t>{2, 3, 4, 5}));
  EXPECT_EQ(log.log_end_offset(), 6);
  // Past delete.retention.ms the tombstone goes too.
  stats = log.compact(6, 200, 100, 0);
  EXPECT_EQ(stats.records_removed, 1);
  offsets.clear();
  for (const auto& b : log.batches()) offsets.push_back(b.base_offset);
  EXPECT_EQ(offsets, (std::vector<int64_t>{2, 4, 5}));
}

}  // namespace
}  // namespace mephisto::sim
