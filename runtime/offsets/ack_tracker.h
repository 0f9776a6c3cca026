// AckTracker: which offset a consumer may commit, per partition, given the offsets handed to processing and
// the acks that came back — Faust's rule: the highest offset such that it and every offset delivered before
// it are acked, plus one (Kafka's commit position is "the next offset to read").
//
// "Contiguous" means contiguous among *delivered* offsets, not among integers: a partition's log has holes
// that are never delivered (compacted-away records, transaction markers, aborted records under
// read_committed), and the commit position simply skips them. Example: delivered 5, 6, 8 (7 is a marker);
// acks 6 and 8 commit nothing, since 5 is not acked; the ack of 5 then moves the commit position to 9.
//
// Pure bookkeeping: no clock, no I/O, no threads. One tracker belongs to one consumer (one fiber drives it).
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string_view>
#include <vector>

#include "runtime/seam/broker_client.h"
#include "runtime/seam/result.h"

namespace mephisto {

// What a call to the tracker got wrong, or kNone. Every non-kNone value is a caller bug (or, for
// kTooManyOutstanding, a pause the caller missed). They come back as values, not crashes, because the stream
// must survive its own mistakes without losing the offset position: a rejected call leaves the tracker
// unchanged.
enum class [[nodiscard]] AckError : uint8_t{
    kNone = 0,
    // The partition is not assigned (never assigned, or revoked since).
    kNotAssigned,
    // ack() of an offset that was not delivered (a hole in the log, or beyond the last delivered offset).
    kNotDelivered,
    // ack() of an offset acked before. Offsets below the commit position are reported so too, even if they
    // were never delivered: the tracker forgets everything below the commit position (that is what bounds its
    // memory).
    kAlreadyAcked,
    // on_delivered() of an offset not above every offset delivered before, or below the assigned position.
    kOutOfOrderDelivery,
    // on_delivered() with max_outstanding_per_partition offsets already outstanding: the caller should have
    // paused the partition. The offset is not recorded; deliver it again once acks have drained the window.
    kTooManyOutstanding,
};

// The enumerator's name without the k, e.g. "NotDelivered".
[[nodiscard]] std::string_view ack_error_name(AckError error);

// The error as a seam Status, for callers that report through Result: kNone -> ok; kNotAssigned -> kState;
// kTooManyOutstanding -> kQueueFull; the rest -> kInvalidArg. The message names the error, partition and
// offset.
[[nodiscard]] Status to_status(AckError error, const TopicPartition& tp, int64_t offset);

class AckTracker {
 public:
  // max_outstanding_per_partition (> 0; the stream's buffer size, Faust's stream_buffer_maxsize) bounds the
  // offsets a partition may have outstanding, i.e. delivered and not yet below its commit position. Note that
  // this counts acked offsets waiting behind an unacked one too, not only unacked ones: with out-of-order
  // acks (concurrency > 1, manual acks) a single stuck record would otherwise let acked entries pile up
  // without bound.
  explicit AckTracker(size_t max_outstanding_per_partition);

  // Starts tracking a partition whose next offset to read is `position` (its committed offset, or wherever
  // the consumer was seeked to). Replaces any state the partition had: a re-assignment starts fresh.
  void assign(const TopicPartition& tp, int64_t position);

  // Forgets the partitions: their outstanding offsets and any commit not yet marked committed are dropped
  // (Faust drops pending commits of revoked partitions; committing them would overwrite the new owner's
  // progress). Partitions not assigned are ignored.
  void revoke(const std::vector<TopicPartition>& partitions);

  // Records that `offset` was handed to processing. Offsets of one partition must come in increasing order,
  // at or above the assigned position; gaps are expected (holes in the log). O(1). Errors: kNotAssigned,
  // kOutOfOrderDelivery, kTooManyOutstanding. On error nothing changes.
  [[nodiscard]] AckError on_delivered(const TopicPartition& tp, int64_t offset);

  // Records that processing of a delivered `offset` finished (successfully or not: a record skipped or sent
  // to a dead-letter topic is acked too, so bad data never holds back or loses the position). Acks may come
  // in any order. O(1) amortised when acks come in delivery order, O(log outstanding) otherwise. Errors:
  // kNotAssigned, kNotDelivered, kAlreadyAcked. On error nothing changes.
  [[nodiscard]] AckError ack(const TopicPartition& tp, int64_t offset);

  // The partitions whose commit position advanced beyond what was last marked committed (or assigned), each
  // with that position: what the consumer should commit now. Ordered by partition (a std::map), so commits
  // and logs are deterministic.
  [[nodiscard]] std::map<TopicPartition, int64_t> committable() const;

  // Records that the offsets were committed (typically a committable() result after a successful commit). A
  // partition no longer assigned is ignored: it was revoked while the commit was in flight. The committed
  // position only moves forward, so marking an older snapshot after a newer one is harmless.
  void mark_committed(const std::map<TopicPartition, int64_t>& offsets);

  // The partition's current commit position (whether or not committed yet); nullopt if not assigned.
  [[nodiscard]] std::optional<int64_t> commit_position(const TopicPartition& tp) const;

  // Offsets outstanding for the partition (delivered, not yet below the commit position); 0 if not assigned.
  // The caller pauses the partition when this reaches max_outstanding_per_partition().
  [[nodiscard]] size_t outstanding(const TopicPartition& tp) const;

  [[nodiscard]] size_t max_outstanding_per_partition() const { return max_outstanding_per_partition_; }

 private:
  struct Delivered {
    int64_t offset = 0;
    bool acked = false;
  };
  struct PartitionState {
    int64_t commit_position = 0;   // every delivered offset below it is acked
    int64_t committed = 0;         // the commit position last marked committed (or assigned)
    int64_t next_deliverable = 0;  // deliveries must be at or above it: one past the last delivered offset
    // Delivered offsets at or above commit_position, increasing. The front is unacked whenever the window is
    // non-empty (acked fronts are popped at once), so commit_position is always "one past the acked prefix".
    std::deque<Delivered> window;
  };

  size_t max_outstanding_per_partition_;
  std::map<TopicPartition, PartitionState> partitions_;
};

}  // namespace mephisto
