#include "sim/cluster/partition_log.h"

#include <algorithm>
#include <cassert>
#include <climits>
#include <string_view>
#include <unordered_map>

namespace mephisto::sim {
namespace {

int32_t next_sequence(int32_t sequence) { return sequence == INT32_MAX ? 0 : sequence + 1; }

}  // namespace

ProducerCheck PartitionLog::check_producer(const RecordBatch& batch) const {
  if (batch.producer_id < 0) return {};
  const auto it = producers_.find(batch.producer_id);
  if (it == producers_.end()) {
    // A new producer's first batch must start at sequence 0 (coordinator writes carry no sequence).
    if (batch.base_sequence > 0) return {ErrorCode::kOutOfOrderSequenceNumber, -1, -1};
    return {};
  }
  const Producer& producer = it->second;
  if (batch.producer_epoch < producer.epoch) return {ErrorCode::kInvalidProducerEpoch, -1, -1};
  if (batch.is_control() || batch.base_sequence < 0) return {};
  if (batch.producer_epoch == producer.epoch) {
    for (const BatchInfo& info : producer.recent) {
      if (info.first_sequence == batch.base_sequence && info.last_sequence == batch.last_sequence()) {
        return {ErrorCode::kDuplicateSequenceNumber, info.base_offset, info.last_offset};
      }
    }
    const int32_t expected = producer.recent.empty() ? 0 : next_sequence(producer.recent.back().last_sequence);
    if (batch.base_sequence != expected) return {ErrorCode::kOutOfOrderSequenceNumber, -1, -1};
    return {};
  }
  // A bumped epoch restarts the sequence.
  if (batch.base_sequence != 0) return {ErrorCode::kOutOfOrderSequenceNumber, -1, -1};
  return {};
}

void PartitionLog::append(RecordBatch batch) {
  assert(batch.records && "a batch must carry its records");
  assert(batch.base_offset >= log_end_offset_ && "appends never go below the log end offset");
  if (batch.partition_leader_epoch >= 0 &&
      (epochs_.empty() || batch.partition_leader_epoch > epochs_.back().first)) {
    epochs_.emplace_back(batch.partition_leader_epoch, batch.base_offset);
  }
  log_end_offset_ = batch.next_offset();
  apply_state(batch);
  batches_.push_back(std::move(batch));
}

void PartitionLog::apply_state(const RecordBatch& batch) {
  if (batch.producer_id < 0) return;
  Producer& producer = producers_[batch.producer_id];
  if (batch.producer_epoch > producer.epoch) {
    producer.epoch = batch.producer_epoch;
    producer.recent.clear();
  }
  if (batch.is_control()) {
    if (producer.txn_first_offset >= 0) {
      const CompletedTxn done{batch.producer_id, producer.txn_first_offset, batch.base_offset};
      open_txns_.erase(producer.txn_first_offset);
      unreplicated_txns_.push_back(done);
      if (batch.control == ControlType::kAbort) aborted_.push_back(done);
      producer.txn_first_offset = -1;
    }
    return;
  }
  if (batch.base_sequence >= 0) {
    producer.recent.push_back({batch.base_sequence, batch.last_sequence(), batch.base_offset, batch.last_offset()});
    if (producer.recent.size() > kProducerBatchesKept) producer.recent.pop_front();
  }
  if (batch.is_transactional && producer.txn_first_offset < 0) {
    producer.txn_first_offset = batch.base_offset;
    open_txns_.emplace(batch.base_offset, batch.producer_id);
  }
}

void PartitionLog::rebuild_state() {
  producers_.clear();
  open_txns_.clear();
  unreplicated_txns_.clear();
  aborted_.clear();
  for (const RecordBatch& batch : batches_) apply_state(batch);
}

void PartitionLog::truncate_to(int64_t offset) {
  if (offset >= log_end_offset_) return;
  if (offset <= log_start_offset_) {
    reset_to(log_start_offset_);
    return;
  }
  // Keep batches that end below `offset`; a straddling batch is dropped whole (Kafka truncates at batch bounds).
  const auto keep_end = std::partition_point(batches_.begin(), batches_.end(),
                                             [offset](const RecordBatch& b) { return b.last_offset() < offset; });
  log_end_offset_ = (keep_end != batches_.end() && keep_end->base_offset < offset) ? keep_end->base_offset : offset;
  batches_.erase(keep_end, batches_.end());
  while (!epochs_.empty() && epochs_.back().second >= log_end_offset_) epochs_.pop_back();
  rebuild_state();
}

void PartitionLog::reset_to(int64_t offset) {
  batches_.clear();
  epochs_.clear();
  log_start_offset_ = offset;
  log_end_offset_ = offset;
  rebuild_state();
}

int32_t PartitionLog::read(int64_t from, int64_t upto, int32_t max_bytes, bool at_least_one,
                           std::vector<RecordBatch>& out) const {
  auto it = std::partition_point(batches_.begin(), batches_.end(),
                                 [from](const RecordBatch& b) { return b.last_offset() < from; });
  int32_t bytes = 0;
  for (; it != batches_.end(); ++it) {
    // The high watermark and the LSO always fall on batch boundaries (replication copies whole batches).
    if (it->last_offset() >= upto) break;
    if (bytes + it->size_bytes > max_bytes && !(at_least_one && bytes == 0)) break;
    bytes += it->size_bytes;
    out.push_back(*it);
  }
  return bytes;
}

int64_t PartitionLog::first_unstable_offset() const {
  int64_t first = open_txns_.empty() ? INT64_MAX : open_txns_.begin()->first;
  for (const CompletedTxn& txn : unreplicated_txns_) first = std::min(first, txn.first_offset);
  return first;
}

void PartitionLog::on_high_watermark(int64_t high_watermark) {
  while (!unreplicated_txns_.empty() && unreplicated_txns_.front().last_offset < high_watermark) {
    unreplicated_txns_.pop_front();
  }
}

void PartitionLog::aborted_in_range(int64_t from, int64_t upto, std::vector<AbortedTransaction>& out) const {
  auto it = std::partition_point(aborted_.begin(), aborted_.end(),
                                 [from](const CompletedTxn& t) { return t.last_offset < from; });
  for (; it != aborted_.end(); ++it) {
    if (it->first_offset < upto) out.push_back({it->producer_id, it->first_offset});
  }
}

bool PartitionLog::has_open_transaction(int64_t producer_id) const {
  const auto it = producers_.find(producer_id);
  return it != producers_.end() && it->second.txn_first_offset >= 0;
}

bool PartitionLog::is_aborted(int64_t producer_id, int64_t offset) const {
  auto it = std::partition_point(aborted_.begin(), aborted_.end(),
                                 [offset](const CompletedTxn& t) { return t.last_offset < offset; });
  for (; it != aborted_.end(); ++it) {
    if (it->producer_id == producer_id && it->first_offset <= offset) return true;
  }
  return false;
}

std::pair<int32_t, int64_t> PartitionLog::end_offset_for_epoch(int32_t epoch) const {
  const auto after = std::partition_point(epochs_.begin(), epochs_.end(),
                                          [epoch](const auto& e) { return e.first <= epoch; });
  if (after == epochs_.begin()) return {-1, -1};
  const int32_t found = std::prev(after)->first;
  return {found, after == epochs_.end() ? log_end_offset_ : after->second};
}

std::optional<std::pair<int64_t, int64_t>> PartitionLog::offset_for_timestamp(int64_t timestamp_ms,
                                                                              int64_t upto) const {
  for (const RecordBatch& batch : batches_) {
    if (batch.last_offset() >= upto) break;
    if (batch.is_control() || batch.max_timestamp_ms < timestamp_ms) continue;
    for (const Record& record : *batch.records) {
      if (record.timestamp_ms >= timestamp_ms) {
        return std::make_pair(batch.base_offset + record.offset_delta, record.timestamp_ms);
      }
    }
  }
  return std::nullopt;
}

CompactionStats PartitionLog::compact(int64_t clean_upto, int64_t now_ms, int64_t delete_retention_ms,
                                      int64_t min_lag_ms) {
  CompactionStats stats;
  // Kafka never cleans the active segment; the last batch stands in for it.
  if (batches_.size() < 2) return stats;
  const int64_t limit = std::min(clean_upto, batches_.back().base_offset);
  const auto cleanable = [&](const RecordBatch& b) {
    return b.last_offset() < limit && b.append_time_ms + min_lag_ms <= now_ms;
  };
  // Pass 1: the latest offset of every key in the cleanable range. Views point into record vectors that stay
  // alive until pass 2 is done (the old vectors are only released when batches_ is replaced).
  std::unordered_map<std::string_view, int64_t> latest;
  for (const RecordBatch& batch : batches_) {
    if (!cleanable(batch)) break;
    if (batch.is_control()) continue;
    for (const Record& record : *batch.records) {
      const int64_t offset = batch.base_offset + record.offset_delta;
      // An aborted record never shadows a committed one (Kafka's cleaner skips aborted batches when it builds
      // its offset map): it is dropped below, and the key's last committed value must survive it.
      if (batch.is_transactional && is_aborted(batch.producer_id, offset)) continue;
      if (record.key) latest[*record.key] = offset;
    }
  }
  std::vector<RecordBatch> kept;
  kept.reserve(batches_.size());
  for (RecordBatch& batch : batches_) {
    if (!cleanable(batch) || batch.is_control()) {
      kept.push_back(batch);
      continue;
    }
    std::vector<Record> records;
    bool changed = false;
    for (const Record& record : *batch.records) {
      const int64_t offset = batch.base_offset + record.offset_delta;
      bool drop = false;
      if (batch.is_transactional && is_aborted(batch.producer_id, offset)) {
        drop = true;
      } else if (record.key) {
        const auto it = latest.find(*record.key);
        if (it != latest.end() && it->second > offset) drop = true;
        if (!drop && !record.value && batch.append_time_ms + delete_retention_ms <= now_ms) drop = true;
      }
      if (drop) {
        changed = true;
        ++stats.records_removed;
      } else {
        records.push_back(record);
      }
    }
    if (!changed) {
      kept.push_back(batch);
      continue;
    }
    if (records.empty() && batch.producer_id < 0) {
      ++stats.batches_removed;
      continue;
    }
    RecordBatch cleaned = batch;
    cleaned.records = std::make_shared<const std::vector<Record>>(std::move(records));
    cleaned.size_bytes = batch_size_bytes(cleaned);
    kept.push_back(std::move(cleaned));
  }
  latest.clear();
  batches_ = std::move(kept);
  return stats;
}

}  // namespace mephisto::sim
