// CommitPolicy: when a consumer should commit — every commit interval, or every N acks, whichever comes first
// (Faust's broker_commit_interval and broker_commit_every). Pure logic: time is passed in by the caller (from
// the environment's Clock), never read here, so the simulator decides what "now" is.
//
// Typical use, from the stream's commit fiber and ack path:
//   on every ack:          tracker.ack(...); policy.on_ack();
//   on a timer / after ack: if (policy.due(now_ms)) { flush producer; commit tracker.committable(); on
//   success
//                           tracker.mark_committed(...); policy.on_committed(now_ms); }
#pragma once

#include <cstdint>

namespace mephisto {

// Faust's defaults (the Faust reference, faust.md, "Settings users expect"): broker_commit_interval [2.8 s],
// broker_commit_every [10000 acks].
inline constexpr int64_t kDefaultCommitIntervalMs = 2800;
inline constexpr int64_t kDefaultCommitEveryAcks = 10000;

class CommitPolicy {
 public:
  // Both limits must be > 0 (asserted: settings are validated where the user gives them). start_ms is the
  // clock's time when consuming starts; the first interval counts from it.
  explicit CommitPolicy(int64_t commit_interval_ms = kDefaultCommitIntervalMs,
                        int64_t commit_every_acks = kDefaultCommitEveryAcks, int64_t start_ms = 0);

  // One more ack since the last commit.
  void on_ack() { ++acks_since_commit_; }

  // Whether to commit now: commit_every_acks acks since the last commit, or commit_interval_ms elapsed since
  // it with at least one ack since (no ack, nothing new to commit). An ack does not always advance a commit
  // position (it may wait behind an unacked offset), so the caller still checks AckTracker::committable() for
  // emptiness. A clock that moves backwards only delays an interval commit, never brings one forward.
  [[nodiscard]] bool due(int64_t now_ms) const;

  // A commit attempt finished at now_ms (also one that found nothing to commit, so the interval starts
  // again). After a failed commit, not calling this keeps the policy due, so the next check retries.
  void on_committed(int64_t now_ms);
  // As above, for a commit of a snapshot taken when `acks_covered` acks had come in (acks_since_commit()
  // then): acks that arrived while the commit was in flight are not in it, so they stay counted and keep the
  // policy due at the next interval. (Forgetting them left the last offsets of a quiet partition uncommitted
  // for good.)
  void on_committed(int64_t now_ms, int64_t acks_covered);

  // When the interval condition will hold (if an ack comes): where the commit fiber's timer should fire.
  [[nodiscard]] int64_t interval_deadline_ms() const { return last_commit_ms_ + commit_interval_ms_; }

  [[nodiscard]] int64_t acks_since_commit() const { return acks_since_commit_; }
  [[nodiscard]] int64_t commit_interval_ms() const { return commit_interval_ms_; }
  [[nodiscard]] int64_t commit_every_acks() const { return commit_every_acks_; }

 private:
  int64_t commit_interval_ms_;
  int64_t commit_every_acks_;
  int64_t last_commit_ms_;
  int64_t acks_since_commit_ = 0;
};

}  // namespace mephisto
