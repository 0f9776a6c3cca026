// Engine, exactly-once commits (processing_guarantee=exactly_once, EOS v2): commit points, transactions, and
// the abort that makes the worker rejoin. At-least-once commits are in engine_consume.cpp.
#include <fmt/format.h>

#include "runtime/app/engine.h"
#include "runtime/app/engine_internal.h"
#include "runtime/app/tables.h"

namespace mephisto {

namespace {
// What commit_transaction returns when the worker has failed: nothing was committed.
Error not_committed(const std::optional<Error>& failure) {
  return Error::of(ErrorCode::kState,
                   fmt::format("the worker has failed ({}): its transaction is not committed",
                               failure.has_value() ? failure->message : std::string("stopping")));
}
}  // namespace

Status Engine::begin_transaction() {
  Status begun = producer_->begin_transaction();
  if (env_.recorder != nullptr) env_.recorder->on_transaction(TransactionStep::kBegin, {}, begun);
  if (!begun.ok()) {
    rejoin_ = true;
    return Error::of(begun.code(), "begin_transaction: " + begun.error().message);
  }
  transaction_open_ = true;
  transaction_sends_ = 0;
  return {};
}

void Engine::wait_for_transaction_gate() {
  while (transaction_gate_ && !failed_) {
    gate_waiters_.push_back(env_.scheduler->current());
    env_.scheduler->park_until(INT64_MAX);
  }
}

Status Engine::reach_commit_point() {
  // The commit point: no event half-processed. The poll fiber stops dispatching (barrier_), and every event
  // already dispatched finishes, its sends delivered. Offsets committed with the transaction then cover
  // exactly the inputs whose every effect is in it.
  barrier_ = true;
  Scheduler& scheduler = *env_.scheduler;
  const int64_t deadline_ms = env_.clock->now_ms() + kCommitPointTimeoutMs;
  while (events_alive_ > 0 && !failed_) {
    if (env_.clock->now_ms() >= deadline_ms) {
      return Error::of(ErrorCode::kTimedOut,
                       fmt::format("{} event(s) still in processing after {} ms: no commit point (under "
                                   "exactly_once an agent must finish each event, and ack held events, "
                                   "within that time)",
                                   events_alive_, kCommitPointTimeoutMs));
    }
    commit_point_waiter_ = scheduler.current();
    scheduler.park_until(deadline_ms);
    commit_point_waiter_ = kNoFiber;
  }
  return {};
}

Status Engine::commit_transaction(bool begin_next) {
  // OK means the open transaction's work is committed (or there was none): callers act on it — a revoke
  // (give_up) then moves the transaction's table writes into the stores (Tables::on_revoked). A failed
  // worker commits nothing, so it must say so: its transaction is aborted (at stop, or by the coordinator).
  if (failed_) return not_committed(error_);
  if (!transaction_open_) return {};
  lock_commits();
  Status result = reach_commit_point();
  // The worker may fail while this waits for the commit point or for another commit (a send failed: the
  // producer is fenced, ...); reach_commit_point then returns at once, with nothing committed.
  if (result.ok() && failed_) result = not_committed(error_);
  std::map<TopicPartition, int64_t> offsets;
  const bool work = result.ok() && !failed_ && !aborting_;
  if (work) offsets = tracker_.committable();
  if (work) add_kept_revoked_offsets(offsets);
  // Acks after this snapshot are not in the transaction: they stay counted for the next one (CommitPolicy).
  const int64_t acks_covered = policy_.acks_since_commit();
  if (work && (transaction_sends_ > 0 || !offsets.empty())) {
    transaction_gate_ = true;
    if (!offsets.empty() && env_.planted == PlantedBug::kOffsetsOutsideTransaction) {
      // planted bug (runtime/seam/planted.h): the consumer commits the offsets on its own, before (and
      // whatever becomes of) the transaction that holds the events' outputs.
      result = consumer_->commit(offsets, kCommitTimeoutMs);
    } else if (!offsets.empty()) {
      GroupMetadata group = assignment_group_;
      if (env_.planted == PlantedBug::kNoFencing) {
        // planted bug (runtime/seam/planted.h): no member, generation -1: the coordinator takes the offsets
        // as a non-member's, so KIP-447's check never rejects a zombie.
        group.generation_id = -1;
        group.member_id.clear();
        group.group_instance_id.reset();
      }
      result = producer_->send_offsets_to_transaction(offsets, group, kCommitTimeoutMs);
    }
    // Partitions lost while the offsets were on their way: this transaction must not commit.
    if (result.ok() && aborting_) result = Error::of(ErrorCode::kRebalanceInProgress, "partitions lost");
    if (result.ok()) result = producer_->commit_transaction(kCommitTimeoutMs);
    if (env_.recorder != nullptr) env_.recorder->on_transaction(TransactionStep::kCommit, offsets, result);
    if (result.ok()) {
      transaction_open_ = false;
      tracker_.mark_committed(offsets);
      kept_revoked_offsets_.clear();
      ++stats_.commits;
      ++stats_.transactions_committed;
      // Only now may table state include this transaction's writes.
      tables_->on_committed();
      if (begin_next && !failed_) result = begin_transaction();
    }
    transaction_gate_ = false;
    while (!gate_waiters_.empty()) {
      env_.scheduler->wake(gate_waiters_.front());
      gate_waiters_.pop_front();
    }
  }
  if (result.ok() && aborting_)
    result = Error::of(ErrorCode::kRebalanceInProgress, "the transaction is aborted");
  if (result.ok()) policy_.on_committed(env_.clock->now_ms(), acks_covered);
  barrier_ = false;
  // Only while it parks for the barrier: a fiber inside the client's poll must not be woken by anyone else.
  if (poll_waits_for_commit_) wake_fiber(poll_fiber_);
  unlock_commits();
  if (!result.ok() && !failed_) {
    ++stats_.commit_failures;
    abort_and_rejoin(result.error());
  }
  return result;
}

void Engine::abort_and_rejoin(const Error& error) {
  if (failed_ || aborting_) return;
  // Recorded as the decision, with its cause, before the producer's abort purges queued records: a replay
  // then knows those failed deliveries were this abort's doing (sim/replay).
  if (env_.recorder != nullptr) env_.recorder->on_transaction(TransactionStep::kAbort, {}, error);
  aborting_ = true;
  rejoin_ = true;
  ++stats_.transactions_aborted;
  tables_->discard_uncommitted();
  // A commit in progress on another fiber (parked in a producer call) sees aborting_ and does not commit; the
  // shutdown then aborts the transaction (two transactional calls at once would fail each other).
  const bool abort_here =
      transaction_open_ && !committing_ && error.code != ErrorCode::kProducerFenced && !error.fatal;
  if (abort_here) transaction_open_ = false;
  // Stop first: the abort below parks this fiber, and nothing else may go on committing or processing
  // meanwhile.
  fail(Error::of(error.code, "transaction aborted (" + error.message +
                                 "); the worker stops and rejoins from the last commit"));
  if (abort_here) {
    Status aborted = producer_->abort_transaction(kCommitTimeoutMs);
    if (!aborted.ok()) {
      log_.warn("abort_transaction: {}", aborted.error().message);
    }
  }
}

}  // namespace mephisto
