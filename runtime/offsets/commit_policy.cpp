#include "runtime/offsets/commit_policy.h"

#include <cassert>

namespace mephisto {

CommitPolicy::CommitPolicy(int64_t commit_interval_ms, int64_t commit_every_acks, int64_t start_ms)
    : commit_interval_ms_(commit_interval_ms),
      commit_every_acks_(commit_every_acks),
      last_commit_ms_(start_ms) {
  assert(commit_interval_ms > 0 && "commit_interval_ms must be > 0");
  assert(commit_every_acks > 0 && "commit_every_acks must be > 0");
}

bool CommitPolicy::due(int64_t now_ms) const {
  if (acks_since_commit_ >= commit_every_acks_) return true;
  return acks_since_commit_ > 0 && now_ms - last_commit_ms_ >= commit_interval_ms_;
}

void CommitPolicy::on_committed(int64_t now_ms) {
  on_committed(now_ms, acks_since_commit_);
}

void CommitPolicy::on_committed(int64_t now_ms, int64_t acks_covered) {
  assert(acks_covered >= 0 && "acks_covered is a count");
  last_commit_ms_ = now_ms;
  acks_since_commit_ = acks_covered >= acks_since_commit_ ? 0 : acks_since_commit_ - acks_covered;
}

}  // namespace mephisto
