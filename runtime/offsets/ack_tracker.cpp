#include "runtime/offsets/ack_tracker.h"

#include <algorithm>
#include <cassert>
#include <sstream>
#include <string>

namespace mephisto {

std::string_view ack_error_name(AckError error) {
  switch (error) {
    case AckError::kNone:
      return "None";
    case AckError::kNotAssigned:
      return "NotAssigned";
    case AckError::kNotDelivered:
      return "NotDelivered";
    case AckError::kAlreadyAcked:
      return "AlreadyAcked";
    case AckError::kOutOfOrderDelivery:
      return "OutOfOrderDelivery";
    case AckError::kTooManyOutstanding:
      return "TooManyOutstanding";
  }
  return "Unknown";
}

Status to_status(AckError error, const TopicPartition& tp, int64_t offset) {
  if (error == AckError::kNone) return {};
  ErrorCode code = ErrorCode::kInvalidArg;
  if (error == AckError::kNotAssigned) code = ErrorCode::kState;
  if (error == AckError::kTooManyOutstanding) code = ErrorCode::kQueueFull;
  std::ostringstream message;
  message << "ack tracker: " << ack_error_name(error) << " for " << tp << " offset " << offset;
  return Error::of(code, message.str());
}

AckTracker::AckTracker(size_t max_outstanding_per_partition)
    : max_outstanding_per_partition_(max_outstanding_per_partition) {
  assert(max_outstanding_per_partition > 0 && "a partition must be allowed at least one outstanding offset");
}

void AckTracker::assign(const TopicPartition& tp, int64_t position) {
  PartitionState state;
  state.commit_position = position;
  state.committed = position;  // the position assigned from is already committed (or is the reset position)
  state.next_deliverable = position;
  partitions_.insert_or_assign(tp, std::move(state));
}

void AckTracker::revoke(const std::vector<TopicPartition>& partitions) {
  for (const auto& tp : partitions) partitions_.erase(tp);
}

AckError AckTracker::on_delivered(const TopicPartition& tp, int64_t offset) {
  auto it = partitions_.find(tp);
  if (it == partitions_.end()) return AckError::kNotAssigned;
  PartitionState& state = it->second;
  if (offset < state.next_deliverable) return AckError::kOutOfOrderDelivery;
  if (state.window.size() >= max_outstanding_per_partition_) return AckError::kTooManyOutstanding;
  state.window.push_back({offset, false});
  state.next_deliverable = offset + 1;
  return AckError::kNone;
}

AckError AckTracker::ack(const TopicPartition& tp, int64_t offset) {
  auto it = partitions_.find(tp);
  if (it == partitions_.end()) return AckError::kNotAssigned;
  PartitionState& state = it->second;
  // Everything delivered below the commit position was acked, and the tracker no longer knows which of those
  // offsets were holes; calling them all "already acked" is the only answer that needs no memory of the past.
  if (offset < state.commit_position) return AckError::kAlreadyAcked;
  auto& window = state.window;
  if (window.empty() || offset < window.front().offset || offset > window.back().offset) {
    return AckError::kNotDelivered;
  }
  // The common case, acks in delivery order, hits the front without a search.
  auto entry = window.begin();
  if (entry->offset != offset) {
    entry = std::lower_bound(window.begin(), window.end(), offset,
                             [](const Delivered& d, int64_t o) { return d.offset < o; });
    if (entry == window.end() || entry->offset != offset) return AckError::kNotDelivered;
  }
  if (entry->acked) return AckError::kAlreadyAcked;
  entry->acked = true;
  // Each entry is popped once, so advancing is O(1) amortised per ack.
  while (!window.empty() && window.front().acked) {
    state.commit_position = window.front().offset + 1;
    window.pop_front();
  }
  return AckError::kNone;
}

std::map<TopicPartition, int64_t> AckTracker::committable() const {
  std::map<TopicPartition, int64_t> result;
  for (const auto& [tp, state] : partitions_) {
    if (state.commit_position > state.committed) result.emplace(tp, state.commit_position);
  }
  return result;
}

void AckTracker::mark_committed(const std::map<TopicPartition, int64_t>& offsets) {
  for (const auto& [tp, offset] : offsets) {
    auto it = partitions_.find(tp);
    if (it == partitions_.end()) continue;
    it->second.committed = std::max(it->second.committed, offset);
  }
}

std::optional<int64_t> AckTracker::commit_position(const TopicPartition& tp) const {
  auto it = partitions_.find(tp);
  if (it == partitions_.end()) return std::nullopt;
  return it->second.commit_position;
}

size_t AckTracker::outstanding(const TopicPartition& tp) const {
  auto it = partitions_.find(tp);
  return it == partitions_.end() ? 0 : it->second.window.size();
}

}  // namespace mephisto
