// PartitionLog: one replica's copy of a partition: its record batches, and the state Kafka derives from them —
// idempotent-producer state (epoch and the last 5 batch sequences per producer id), open and completed
// transactions (for the last stable offset and the aborted-transaction index), and the leader-epoch cache used to
// truncate a diverged follower (KIP-101/279). Leaders and followers keep the same structure; only leaders validate
// producer batches.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <utility>
#include <vector>

#include "sim/cluster/protocol.h"

namespace mephisto::sim {

// Kafka keeps the metadata of the last 5 batches per producer to answer retries (max.in.flight <= 5).
inline constexpr size_t kProducerBatchesKept = 5;

struct ProducerCheck {
  ErrorCode error = ErrorCode::kNone;
  // With kDuplicateSequenceNumber: the original batch's offsets.
  int64_t duplicate_base_offset = -1;
  int64_t duplicate_last_offset = -1;
};

struct CompactionStats {
  int64_t records_removed = 0;
  int64_t batches_removed = 0;
};

class PartitionLog {
 public:
  PartitionLog() = default;

  [[nodiscard]] int64_t log_start_offset() const { return log_start_offset_; }
  [[nodiscard]] int64_t log_end_offset() const { return log_end_offset_; }
  [[nodiscard]] const std::vector<RecordBatch>& batches() const { return batches_; }

  // Leader-side idempotence/epoch check of a batch about to be appended (Kafka's ProducerStateManager rules):
  // stale epoch -> kInvalidProducerEpoch; a retry of one of the last 5 batches -> kDuplicateSequenceNumber with
  // the original offset; a sequence gap, or a non-zero first sequence of a new producer or epoch ->
  // kOutOfOrderSequenceNumber. Batches without a producer id, or with base_sequence -1 (coordinator writes), skip
  // the sequence rules.
  [[nodiscard]] ProducerCheck check_producer(const RecordBatch& batch) const;

  // Appends a batch whose offsets are already assigned (by the leader) and updates the derived state.
  // Precondition: batch.base_offset >= log_end_offset() (compaction on the leader can leave offset gaps).
  void append(RecordBatch batch);

  // Removes every batch at or above `offset` (a batch straddling it goes too) and rebuilds the derived state.
  void truncate_to(int64_t offset);
  // Drops everything and restarts the log at `offset` (a follower that shares nothing with its leader).
  void reset_to(int64_t offset);

  // Appends to `out` whole batches covering offsets from `from` up to (excluding) `upto`, the first being the one
  // containing `from`, until `max_bytes` is reached; the first batch is returned even if larger when
  // `at_least_one`. Returns the bytes added.
  int32_t read(int64_t from, int64_t upto, int32_t max_bytes, bool at_least_one, std::vector<RecordBatch>& out) const;

  // The first offset of the oldest open transaction, or of a completed one whose marker the high watermark has
  // not passed yet (Kafka's "unreplicated transactions"); INT64_MAX if none. LSO = min(this, HW).
  [[nodiscard]] int64_t first_unstable_offset() const;
  // Forgets completed transactions whose markers are below the high watermark.
  void on_high_watermark(int64_t high_watermark);
  // Aborted transactions overlapping [from, upto), as a read_committed fetch returns them.
  void aborted_in_range(int64_t from, int64_t upto, std::vector<AbortedTransaction>& out) const;
  // True if `producer_id` has an open transaction in this partition.
  [[nodiscard]] bool has_open_transaction(int64_t producer_id) const;
  // True if the record at `offset` of `producer_id` belongs to an aborted transaction.
  [[nodiscard]] bool is_aborted(int64_t producer_id, int64_t offset) const;

  // Leader-epoch cache (KIP-101): the largest epoch <= `epoch` this log has, and the offset where it ends (the
  // next epoch's start offset, or the log end offset). {-1, -1} if the log has no epoch <= `epoch`.
  [[nodiscard]] std::pair<int32_t, int64_t> end_offset_for_epoch(int32_t epoch) const;
  [[nodiscard]] int32_t latest_epoch() const { return epochs_.empty() ? -1 : epochs_.back().first; }

  // The first record at or after `timestamp_ms` below `upto`: {offset, timestamp}. nullopt if none.
  [[nodiscard]] std::optional<std::pair<int64_t, int64_t>> offset_for_timestamp(int64_t timestamp_ms,
                                                                               int64_t upto) const;

  // Log compaction over batches ending below `clean_upto` and appended at least `min_lag_ms` ago: keeps the
  // latest record per key, drops records of aborted transactions, and drops tombstones older than
  // `delete_retention_ms`. Offsets never change; emptied batches are dropped unless they carry producer state
  // (producer id >= 0, or a control marker), which a later truncation needs to rebuild from.
  CompactionStats compact(int64_t clean_upto, int64_t now_ms, int64_t delete_retention_ms, int64_t min_lag_ms);

 private:
  struct BatchInfo {
    int32_t first_sequence = 0;
    int32_t last_sequence = 0;
    int64_t base_offset = 0;
    int64_t last_offset = 0;
  };
  struct Producer {
    int16_t epoch = -1;
    std::deque<BatchInfo> recent;  // at most kProducerBatchesKept, oldest first
    int64_t txn_first_offset = -1;  // -1: no open transaction here
  };
  struct CompletedTxn {
    int64_t producer_id = -1;
    int64_t first_offset = 0;
    int64_t last_offset = 0;  // the marker's offset
  };

  void apply_state(const RecordBatch& batch);
  void rebuild_state();

  std::vector<RecordBatch> batches_;
  int64_t log_start_offset_ = 0;
  int64_t log_end_offset_ = 0;
  std::map<int64_t, Producer> producers_;
  std::map<int64_t, int64_t> open_txns_;            // first offset -> producer id
  std::deque<CompletedTxn> unreplicated_txns_;      // completed, marker not yet below the high watermark
  std::vector<CompletedTxn> aborted_;               // ordered by marker offset
  std::vector<std::pair<int32_t, int64_t>> epochs_;  // (leader epoch, start offset), increasing
};

}  // namespace mephisto::sim
