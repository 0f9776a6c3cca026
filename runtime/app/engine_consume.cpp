// Engine, consumer side: the poll loop, flow control, dispatch into agent buffers, acks, rebalances and
// commits.
#include <algorithm>
#include <cassert>
#include <set>

#include "runtime/app/engine.h"
#include "runtime/app/engine_internal.h"
#include "runtime/app/tables.h"

namespace mephisto {

using app_internal::EventCore;

Engine::PartitionState& Engine::partition_state(const TopicPartition& tp) {
  auto found = partitions_.find(tp);
  if (found == partitions_.end()) found = partitions_.emplace(tp, PartitionState{tp}).first;
  return found->second;
}

void Engine::poll_loop() {
  Scheduler& scheduler = *env_.scheduler;
  while (!stopping_) {
    if (barrier_) {
      // exactly_once: a commit point is being reached; dispatch nothing until the transaction is committed
      // (commit_transaction wakes this fiber).
      poll_waits_for_commit_ = true;
      scheduler.park_until(env_.clock->now_ms() + kPollTimeoutMs);
      poll_waits_for_commit_ = false;
      continue;
    }
    if (resubscribe_) {
      resubscribe_ = false;
      if (Status subscribed = consumer_->subscribe(subscription(), this); !subscribed.ok()) {
        fail(subscribed.error());
        break;
      }
    }
    if (paused_partitions_.empty() && !flow_control_pauses().empty()) wait_for_room();
    if (stopping_) break;
    update_flow_control();
    if (paused_) {
      // Buffers are full: fetch nothing, but keep polling so rebalances and the group session are served.
      scheduler.park_until(env_.clock->now_ms() + kPollTimeoutMs);
      if (stopping_) break;
      update_flow_control();
    }
    auto polled = consumer_->poll(paused_ ? 0 : kPollTimeoutMs);
    if (!polled.ok()) {
      if (polled.error().fatal || polled.code() == ErrorCode::kFatal ||
          polled.code() == ErrorCode::kFencedInstanceId) {
        fail(polled.error());
        break;
      }
      log_.warn("poll: {}", polled.error().message);
      scheduler.park_until(env_.clock->now_ms() + kPollTimeoutMs);
      continue;
    }
    if (!polled.value().empty()) dispatch(std::move(polled).value());
  }
  poll_done_ = true;
  if (shutting_down_) wake_fiber(main_fiber_);
}

void Engine::wait_for_room() {
  // Pausing is the slow path: librdkafka restarts a resumed partition's fetch only after a fetch round trip
  // (about fetch.wait.max.ms, 500 ms), far longer than a fast agent needs to drain half its buffer. So first
  // give the agents a moment without polling; pause only if that was not enough (a slow or stuck agent), so
  // that polling can go on serving rebalances meanwhile.
  Scheduler& scheduler = *env_.scheduler;
  const int64_t deadline_ms = env_.clock->now_ms() + kFlowControlGraceMs;
  while (!stopping_ && env_.clock->now_ms() < deadline_ms && !flow_control_pauses().empty()) {
    scheduler.park_until(deadline_ms);  // woken by a buffer draining to half (RawChannel's room hook)
  }
}

std::set<TopicPartition> Engine::partitions_to_pause() const {
  std::set<TopicPartition> out = flow_control_pauses();
  // A partition whose tables are restoring waits for them (tables.h).
  for (const auto& [tp, state] : partitions_) {
    if (state.assigned && tables_->blocked(tp)) out.insert(tp);
  }
  return out;
}

std::set<TopicPartition> Engine::flow_control_pauses() const {
  // Per partition, as Faust: only the partitions feeding a full buffer stop. Pausing everything would also
  // stop the records an agent of this worker waits for (an ask() answered by another agent here) and
  // deadlock.
  std::set<std::string> full_topics;
  for (const auto& topic : topics_) {
    for (const RawChannel* buffer : topic->subscribers) {
      if (buffer->room() < static_cast<size_t>(kMaxPollRecords)) full_topics.insert(topic->name);
    }
  }
  // A partition whose acks lag far behind (a stuck event, manual acks held back) stops before the tracker's
  // window would overflow.
  const size_t limit = tracker_.max_outstanding_per_partition() - 2 * kMaxPollRecords;
  std::set<TopicPartition> out;
  for (const auto& [tp, state] : partitions_) {
    if (!state.assigned) continue;
    if (full_topics.count(tp.topic) > 0 || tracker_.outstanding(tp) >= limit) out.insert(tp);
  }
  return out;
}

void Engine::update_flow_control() {
  std::set<TopicPartition> wanted = partitions_to_pause();
  std::vector<TopicPartition> to_pause;
  std::vector<TopicPartition> to_resume;
  for (const TopicPartition& tp : wanted) {
    if (paused_partitions_.count(tp) == 0) to_pause.push_back(tp);
  }
  for (const TopicPartition& tp : paused_partitions_) {
    if (wanted.count(tp) == 0 && partition_state(tp).assigned) to_resume.push_back(tp);
  }
  if (!to_pause.empty()) {
    ++stats_.flow_control_pauses;
    if (Status paused = consumer_->pause(to_pause); !paused.ok())
      log_.warn("pause: {}", paused.error().message);
  }
  if (!to_resume.empty()) {
    if (Status resumed = consumer_->resume(to_resume); !resumed.ok()) {
      log_.warn("resume: {}", resumed.error().message);
    }
  }
  paused_partitions_ = std::move(wanted);
  size_t assigned = 0;
  for (const auto& [tp, state] : partitions_) assigned += state.assigned ? 1 : 0;
  paused_ = assigned > 0 && paused_partitions_.size() == assigned;
}

void Engine::dispatch(std::vector<ConsumerRecord> records) {
  Scheduler& scheduler = *env_.scheduler;
  PartitionState* state = nullptr;
  const app_internal::TopicDecl* topic = nullptr;
  bool blocked = false;
  // What became events, for the recorder (runtime/seam/recorder.h): nothing runs until dispatch returns, so
  // the events (and their records) are alive when it is told.
  std::vector<const ConsumerRecord*> dispatched;
  for (ConsumerRecord& record : records) {
    if (state == nullptr || state->tp.partition != record.partition || state->tp.topic != record.topic) {
      state = &partition_state(TopicPartition{record.topic, record.partition});
      auto found = topics_by_name_.find(record.topic);
      topic = found == topics_by_name_.end() ? nullptr : found->second;
      blocked = tables_->blocked(state->tp);
    }
    if (!state->assigned) continue;  // a record of a partition revoked within this poll
    if (blocked) {
      // Fetched before the pause took effect: its tables are not restored yet. Fetch it again later.
      if (state->refetch_from < 0) {
        state->refetch_from = record.offset;
        if (Status sought = consumer_->seek(state->tp, record.offset); !sought.ok()) {
          fail(Error::of(sought.code(), "seek back while tables restore: " + sought.error().message));
          return;
        }
      }
      continue;
    }
    if (state->refetch_from >= 0) {
      if (record.offset != state->refetch_from) continue;  // fetched before the seek back
      state->refetch_from = -1;
    }
    if (!state->tracking) {
      tracker_.assign(state->tp, record.offset);
      state->tracking = true;
    }
    AckError delivered = tracker_.on_delivered(state->tp, record.offset);
    if (delivered == AckError::kOutOfOrderDelivery) {
      if (!restart_after_position_reset(*state, record.offset)) return;  // exactly once: the worker rejoins
      delivered = tracker_.on_delivered(state->tp, record.offset);
    }
    if (delivered != AckError::kNone) {
      // Flow control keeps the window from overflowing and the consumer returns offsets in order; anything
      // else is a broken invariant of the binding or of this engine.
      log_.error("offset bookkeeping refused {}@{}: {}", record.topic, record.offset,
                 ack_error_name(delivered));
      assert(false && "AckTracker::on_delivered refused a polled record");
      continue;
    }
    ++stats_.records_received;
    const size_t subscribers = topic == nullptr ? 0 : topic->subscribers.size();
    auto* event = new EventCore{std::move(record), this, state->epoch, 0, true, state, {}};
    ++state->alive;
    ++events_alive_;
    if (subscribers == 0) {
      // Nobody reads it (the leader topic): acked at once.
      event->holders = 1;
      app_internal::release(event);
      continue;
    }
    event->holders = static_cast<int32_t>(subscribers);
    if (env_.planted == PlantedBug::kAckBeforeProcessing) {
      // planted bug (runtime/seam/planted.h): acked on hand-off, so its offset may be committed before any
      // agent has processed it; its release acks nothing more.
      if (tracker_.ack(state->tp, event->record.offset) == AckError::kNone) {
        ++stats_.events_acked;
        policy_.on_ack();
      }
      event->ack_on_release = false;
    }
    if (env_.recorder != nullptr) dispatched.push_back(&event->record);
    for (RawChannel* buffer : topic->subscribers) buffer->push(scheduler, event);
  }
  if (env_.recorder != nullptr && !dispatched.empty()) env_.recorder->on_polled(dispatched);
}

// The consumer moved a partition's position back without a rebalance: the position fell out of the log's
// range (an unclean leader election truncated the log below it, or retention deleted it) and
// auto.offset.reset chose an earlier offset. librdkafka 2.0 does that (it has no KIP-320 truncation
// detection), and so does the simulator; the records from here on are the log as it now is. Under
// exactly-once the open transaction holds work of the old log's numbering, so it is aborted and the worker
// rejoins from the last commit (returns false: stop dispatching). Otherwise the partition's bookkeeping
// starts again at the new position: events handed out before keep the old epoch (their acks no longer count)
// and those still buffered are dropped.
bool Engine::restart_after_position_reset(PartitionState& state, int64_t offset) {
  const std::string what = fmt::format(
      "{}[{}]: the consumer's position moved back to {} without a rebalance (out of range: the log was "
      "truncated or deleted below it, and auto.offset.reset chose an earlier offset)",
      state.tp.topic, state.tp.partition, offset);
  ++stats_.position_resets;
  if (exactly_once()) {
    abort_and_rejoin(Error::of(ErrorCode::kOffsetOutOfRange, what));
    return false;
  }
  log_.warn("{}; its processing restarts there", what);
  drop_buffered({state.tp});
  ++state.epoch;
  tracker_.revoke({state.tp});
  tracker_.assign(state.tp, offset);
  return true;
}

void Engine::on_event_released(EventCore* event) {
  auto* state = static_cast<PartitionState*>(event->partition);
  assert(state != nullptr);
  --state->alive;
  --events_alive_;
  if (event->ack_on_release && state->assigned && state->tracking &&
      event->assignment_epoch == state->epoch) {
    const AckError acked = tracker_.ack(state->tp, event->record.offset);
    if (acked == AckError::kNone) {
      ++stats_.events_acked;
      policy_.on_ack();
      if (policy_.acks_since_commit() >= policy_.commit_every_acks()) wake_fiber(commit_fiber_);
    } else {
      log_.error("ack of {}@{} refused: {}", state->tp.topic, event->record.offset, ack_error_name(acked));
    }
  }
  if (drain_waiter_ != kNoFiber) wake_fiber(drain_waiter_);
  if (events_alive_ == 0 && commit_point_waiter_ != kNoFiber) wake_fiber(commit_point_waiter_);
}

// ---------------------------------------------------------------------------------------------------------------
// Rebalances (on the poll fiber, inside poll())

void Engine::on_partitions_assigned(const std::vector<TopicPartition>& partitions) {
  ++stats_.rebalances;
  for (const TopicPartition& tp : partitions) {
    PartitionState& state = partition_state(tp);
    state.assigned = true;
    state.tracking = false;
    state.refetch_from = -1;
    paused_partitions_.erase(tp);  // the client fetches a newly assigned partition; flow control re-pauses it
    kept_revoked_offsets_.erase(tp);  // (planted bug kRevokedCommitKept) back here: its own progress counts
    if (tp.topic == leader_topic_) leader_ = true;
  }
  log_.info("assigned {} partition(s){}", partitions.size(), leader_ ? " (leader)" : "");
  assignment_group_ = consumer_->group_metadata();
  if (env_.recorder != nullptr) env_.recorder->on_assigned(partitions, assignment_group_.generation_id);
  tables_->on_assigned(partitions);
  // Pause partitions whose tables restore before the client fetches anything for them.
  std::vector<TopicPartition> restoring;
  for (const TopicPartition& tp : partitions) {
    if (tables_->blocked(tp)) restoring.push_back(tp);
  }
  if (!restoring.empty()) {
    if (Status paused = consumer_->pause(restoring); !paused.ok()) {
      log_.warn("pause while tables restore: {}", paused.error().message);
    }
    paused_partitions_.insert(restoring.begin(), restoring.end());
  }
}

void Engine::on_partitions_revoked(const std::vector<TopicPartition>& partitions) {
  stats_.partitions_revoked += static_cast<int64_t>(partitions.size());
  if (env_.recorder != nullptr) env_.recorder->on_revoked(partitions, false);
  // Also while shutting down (the other members' leaving can revoke during the last poll): what was processed
  // is committed, so a graceful stop leaves no duplicates behind.
  give_up(partitions, !failed_);
}

void Engine::on_partitions_lost(const std::vector<TopicPartition>& partitions) {
  stats_.partitions_lost += static_cast<int64_t>(partitions.size());
  if (env_.recorder != nullptr) env_.recorder->on_revoked(partitions, true);
  log_.warn(
      "lost {} partition(s) without a clean revoke; their uncommitted progress is redone by the next owner",
      partitions.size());
  if (exactly_once()) {
    // The open transaction holds work of the lost partitions, which their next owner redoes: it must never
    // commit. Aborting it drops this worker's uncommitted work on every partition, so the worker rejoins.
    abort_and_rejoin(Error::of(ErrorCode::kRebalanceInProgress, "partitions lost under exactly_once"));
  }
  give_up(partitions, false);
}

void Engine::give_up(const std::vector<TopicPartition>& partitions, bool commit_first) {
  const std::set<TopicPartition> gone(partitions.begin(), partitions.end());
  drop_buffered(gone);
  bool committed_all = false;
  if (commit_first && exactly_once()) {
    // The transaction covers every partition: commit it all before the partitions go (Kafka Streams commits
    // on revoke too), so the next owner starts exactly where this worker stopped.
    committed_all = commit_transaction(true).ok();
  } else if (commit_first) {
    // Faust commits what was processed before giving partitions away; waiting (bounded) for in-flight events
    // lets that commit cover them, so the next owner repeats as little as possible.
    wait_in_flight(gone, settings_.rebalance_drain_timeout_ms);
    if (Status committed = commit_now(&gone); !committed.ok()) {
      log_.warn("commit on revoke failed: {}", committed.error().message);
    } else {
      committed_all = true;
    }
  }
  tables_->on_revoked(partitions, committed_all);
  if (env_.planted == PlantedBug::kRevokedCommitKept) {
    // planted bug (runtime/seam/planted.h): the revoked partitions' positions are kept for a later commit,
    // instead of being dropped with the tracker's state below.
    for (const TopicPartition& tp : partitions) {
      if (auto position = tracker_.commit_position(tp)) kept_revoked_offsets_[tp] = *position;
    }
  }
  for (const TopicPartition& tp : partitions) {
    PartitionState& state = partition_state(tp);
    paused_partitions_.erase(tp);
    state.assigned = false;
    state.tracking = false;
    ++state.epoch;
    if (tp.topic == leader_topic_) leader_ = false;
  }
  tracker_.revoke(partitions);
}

void Engine::drop_buffered(const std::set<TopicPartition>& partitions) {
  for (auto& buffer : buffers_) {
    auto dropped = buffer->remove_if([&](const EventCore& event) {
      if (event.partition == nullptr) return false;  // an in-memory channel's event
      return partitions.count(static_cast<const PartitionState*>(event.partition)->tp) > 0;
    });
    if (env_.recorder != nullptr && !dropped.empty()) {
      std::vector<const ConsumerRecord*> records;
      for (const EventCore* event : dropped) records.push_back(&event->record);
      env_.recorder->on_dropped(records);
    }
    for (EventCore* event : dropped) {
      // Not processed here: the next owner gets it again, so it must not count as acked.
      event->ack_on_release = false;
      app_internal::release(event);
    }
  }
}

void Engine::wait_in_flight(const std::set<TopicPartition>& partitions, int64_t timeout_ms) {
  Scheduler& scheduler = *env_.scheduler;
  const int64_t deadline_ms = env_.clock->now_ms() + timeout_ms;
  for (;;) {
    int64_t alive = 0;
    for (const TopicPartition& tp : partitions) alive += partition_state(tp).alive;
    if (alive == 0 || env_.clock->now_ms() >= deadline_ms) return;
    drain_waiter_ = scheduler.current();
    scheduler.park_until(deadline_ms);
    drain_waiter_ = kNoFiber;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Commits

void Engine::lock_commits() {
  while (committing_) {
    commit_waiters_.push_back(env_.scheduler->current());
    env_.scheduler->park_until(INT64_MAX);
  }
  committing_ = true;
}

void Engine::unlock_commits() {
  committing_ = false;
  if (!commit_waiters_.empty()) {
    const FiberId next = commit_waiters_.front();
    commit_waiters_.pop_front();
    env_.scheduler->wake(next);
  }
}

Status Engine::commit_now(const std::set<TopicPartition>* only) {
  if (failed_) return {};
  lock_commits();
  std::map<TopicPartition, int64_t> offsets = tracker_.committable();
  if (only != nullptr) {
    std::erase_if(offsets, [&](const auto& entry) { return only->count(entry.first) == 0; });
  } else {
    add_kept_revoked_offsets(offsets);
  }
  // The acks the snapshot covers: acks arriving while the commit is in flight stay counted (CommitPolicy), or a
  // quiet partition's last offsets would never be committed.
  const int64_t acks_covered = policy_.acks_since_commit();
  Status result;
  if (!offsets.empty()) {
    // Outputs before offsets (Faust flushes the producer here): an input is acked only after its sends are
    // delivered (Engine::send), so every offset in `offsets` already has its outputs on the broker.
    result = consumer_->commit(offsets, kCommitTimeoutMs);
    if (env_.recorder != nullptr) env_.recorder->on_commit(offsets, result);
    if (result.ok()) {
      tracker_.mark_committed(offsets);
      if (only == nullptr) kept_revoked_offsets_.clear();
      ++stats_.commits;
      tables_->on_committed();
    } else {
      ++stats_.commit_failures;
    }
  }
  if (only == nullptr && result.ok()) policy_.on_committed(env_.clock->now_ms(), acks_covered);
  unlock_commits();
  return result;
}

void Engine::add_kept_revoked_offsets(std::map<TopicPartition, int64_t>& offsets) const {
  // Empty unless the planted bug kRevokedCommitKept filled it (give_up).
  for (const auto& [tp, offset] : kept_revoked_offsets_) offsets.emplace(tp, offset);
}

void Engine::commit_loop() {
  Scheduler& scheduler = *env_.scheduler;
  while (!stopping_) {
    scheduler.park_until(policy_.interval_deadline_ms());
    if (stopping_) break;
    const int64_t now_ms = env_.clock->now_ms();
    if (policy_.due(now_ms) && exactly_once()) {
      // A failure stops the worker to rejoin; either way the next commit is an interval away (never a spin).
      if (!commit_transaction(true).ok()) policy_.on_committed(now_ms, 0);
    } else if (policy_.due(now_ms)) {
      if (Status committed = commit_now(nullptr); !committed.ok()) {
        log_.warn("commit failed (retried at the next interval): {}", committed.error().message);
        // Wait an interval before retrying, instead of spinning; the acks stay counted, so the retry happens
        // (forgetting them left the offsets uncommitted for good once the input went quiet).
        policy_.on_committed(now_ms, 0);
      }
    } else if (now_ms >= policy_.interval_deadline_ms()) {
      policy_.on_committed(now_ms);  // nothing acked this interval: start the next one
    }
  }
}

}  // namespace mephisto
