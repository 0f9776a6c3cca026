// Engine: declarations, the run/stop lifecycle, actors under supervisors, timers and tasks. The consumer side
// (poll, flow control, rebalances, commits) is in engine_consume.cpp; sends, bad records and ask() in
// engine_send.cpp.
#include "runtime/app/engine.h"

#include <algorithm>
#include <cassert>
#include <exception>

#include <fmt/format.h>
#include <boost/context/fiber.hpp>

#include "runtime/app/engine_internal.h"
#include "runtime/app/tables.h"

namespace mephisto {

using app_internal::AgentDecl;
using app_internal::EventCore;
using app_internal::TimerDecl;
using app_internal::TopicDecl;

namespace {
// The AckTracker window per partition: the buffer plus room for events in processing and awaiting delivery.
// Fetching pauses well before it is reached (partitions_to_pause), so on_delivered never overflows it.
size_t tracker_window(const AppSettings& settings) {
  return static_cast<size_t>(settings.stream_buffer_maxsize) * 4 + 4 * kMaxPollRecords;
}
}  // namespace

Engine::Engine(AppSettings settings)
    : settings_(std::move(settings)),
      log_(settings_.id.empty() ? std::string("app") : settings_.id),
      tracker_(tracker_window(settings_)),
      policy_(settings_.broker_commit_interval_ms > 0 ? settings_.broker_commit_interval_ms : 1,
              settings_.broker_commit_every > 0 ? settings_.broker_commit_every : 1, 0) {
  tables_ = std::make_unique<app_internal::Tables>(*this);
}

Engine::~Engine() {
  // Clients first, while the state their callbacks touch still exists (a producer may report undelivered
  // records as it goes).
  replies_.reset();
  consumer_.reset();
  // The producer before the tables: a producer going away reports its undelivered records, and the tables'
  // delivery callbacks point into their partitions.
  producer_.reset();
  tables_.reset();
  admin_.reset();
  // Records still buffered belong to nobody once the worker is gone (a crash): free them without acking.
  for (auto& buffer : buffers_) {
    for (EventCore* event : buffer->remove_if([](const EventCore&) { return true; })) {
      event->engine = nullptr;
      app_internal::release(event);
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Declarations

TopicDecl* Engine::declare_topic(const std::string& name, TopicDecl spec) {
  auto found = topics_by_name_.find(name);
  if (found != topics_by_name_.end()) return found->second;
  spec.name = name;
  topics_.push_back(std::make_unique<TopicDecl>(std::move(spec)));
  topics_by_name_[name] = topics_.back().get();
  return topics_.back().get();
}

RawChannel* Engine::subscribe(TopicDecl* topic, const std::string& buffer_name) {
  buffers_.push_back(std::make_unique<RawChannel>(buffer_name + "<-" + topic->name,
                                                  static_cast<size_t>(settings_.stream_buffer_maxsize)));
  RawChannel* buffer = buffers_.back().get();
  buffer->set_room_hook([this] { wake_fiber(poll_fiber_); });
  topic->subscribers.push_back(buffer);
  if (subscribed_ && !topic->in_memory) resubscribe_ = true;
  return buffer;
}

AgentDecl* Engine::declare_agent(AgentDecl agent) {
  agents_.push_back(std::make_unique<AgentDecl>(std::move(agent)));
  return agents_.back().get();
}

void Engine::declare_timer(TimerDecl timer) {
  timers_.push_back(std::make_unique<TimerDecl>(std::move(timer)));
}

TopicDecl* Engine::declare_repartition(const std::string& source_topic, const std::string& name,
                                       int32_t partitions, const std::string& key_codec,
                                       const std::string& value_codec) {
  TopicDecl spec;
  spec.internal = true;
  spec.partitions = partitions;
  spec.key_codec = key_codec;
  spec.value_codec = value_codec;
  return declare_topic(settings_.id + "-" + source_topic + "-" + name + "-repartition", std::move(spec));
}

Engine::Relay Engine::relay(AgentDecl& agent, TopicDecl* topic) {
  auto found = agent.relays.find(topic->name);
  if (found != agent.relays.end()) return {found->second, false};
  // Created while the group is already consuming (a group_by reached after start): create the topic now and
  // update the subscription; the group rebalances once.
  if (subscribed_ && topic->internal) {
    Status created = create_topic_if_missing(*topic);
    if (!created.ok()) log_.error("cannot create {}: {}", topic->name, created.error().message);
  }
  RawChannel* buffer = subscribe(topic, agent.name);
  agent.relays[topic->name] = buffer;
  return {buffer, true};
}

std::vector<TopicPartition> Engine::assignment() const {
  std::vector<TopicPartition> out;
  for (const auto& [tp, state] : partitions_) {
    if (state.assigned) out.push_back(tp);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Lifecycle

Status Engine::run(const Env& env) {
  Status result = run_worker(env);
  if (recording_) env_.recorder->on_stop(result);
  return result;
}

void Engine::record_start() {
  if (env_.recorder == nullptr) return;
  RecordedStart start;
  start.app_id = settings_.id;
  start.worker_id = settings_.worker_id;
  start.processing_guarantee = exactly_once() ? "exactly_once" : "at_least_once";
  start.time_ms = env_.clock->now_ms();
  for (const auto& topic : topics_) {
    start.declarations.push_back(fmt::format("topic {} partitions={}{}{}", topic->name, topic->actual_partitions,
                                             topic->in_memory ? " (channel)" : "",
                                             topic->internal ? " (internal)" : ""));
  }
  for (const auto& agent : agents_) {
    start.declarations.push_back(fmt::format("agent {} <- {} x{}", agent->name,
                                             agent->source != nullptr ? agent->source->name : "-",
                                             agent->concurrency));
  }
  for (const auto& timer : timers_) {
    start.declarations.push_back(fmt::format("timer {} every {} ms{}", timer->name, timer->interval_ms,
                                             timer->on_leader ? " (leader)" : ""));
  }
  std::sort(start.declarations.begin(), start.declarations.end());
  env_.recorder->on_start(start);
  recording_ = true;
}

Status Engine::run_worker(const Env& env) {
  assert(!running_ && !shutting_down_ && "Engine::run is called once");
  // A planted bug (runtime/seam/planted.h) is a deliberate defect: whatever asked for it, it must never run
  // against real Kafka, so nothing at all is done unless the broker client is the simulator's.
  if (env.planted != PlantedBug::kNone && (env.broker == nullptr || !env.broker->simulated())) {
    return Error::of(ErrorCode::kInvalidArg,
                     fmt::format("planted bug '{}' requested on a broker client that is not the simulator's: "
                                 "planted bugs exist only in the simulator",
                                 planted_bug_name(env.planted)));
  }
  if (Status valid = validate(settings_); !valid.ok()) return valid;
  assert(env.clock != nullptr && env.scheduler != nullptr && env.random != nullptr && env.broker != nullptr);
  env_ = env;
  main_fiber_ = env_.scheduler->current();
  policy_ = CommitPolicy(effective_commit_interval_ms(settings_), settings_.broker_commit_every,
                         env_.clock->now_ms());

  if (Status started = start_clients(); !started.ok()) return started;
  leader_topic_ = settings_.id + "-__assignor-__leader";
  {
    TopicDecl leader;
    leader.internal = true;
    leader.partitions = 1;
    declare_topic(leader_topic_, std::move(leader));
  }
  if (settings_.bad_record_policy == BadRecordPolicy::kDeadLetter) {
    TopicDecl dead_letters;
    dead_letters.internal = true;
    declare_topic(settings_.id + "-dead-letters", std::move(dead_letters));
  }
  if (Status ready = prepare_topics(); !ready.ok()) {
    shutdown();
    return ready;
  }
  running_ = true;
  log_.info("worker {} of app {} starting: {} agent(s), {} topic(s)", settings_.worker_id, settings_.id,
            agents_.size(), topics_.size());

  // Actors first, as Faust starts agents before the consumer: each runs to its first wait, declaring any
  // group_by/through relays on the way, so the first subscription already includes their topics.
  for (auto& agent : agents_) {
    for (int32_t i = 0; i < agent->concurrency; ++i) {
      AgentDecl* decl = agent.get();
      ++fibers_running_;
      const FiberId fiber = env_.scheduler->spawn(agent->name + "[" + std::to_string(i) + "]",
                                                  [this, decl, i] { run_actor(decl, i); });
      actor_fibers_[fiber] = decl;
    }
  }
  env_.scheduler->yield();
  if (Status ready = prepare_topics(); !ready.ok()) {
    fail(ready.error());
    shutdown();
    return *error_;
  }
  record_start();
  if (Status ready = tables_->start(); !ready.ok()) {
    fail(ready.error());
    shutdown();
    return *error_;
  }

  if (Status subscribed = consumer_->subscribe(subscription(), this); !subscribed.ok()) {
    fail(subscribed.error());
    shutdown();
    return *error_;
  }
  subscribed_ = true;
  ++fibers_running_;
  poll_fiber_ = env_.scheduler->spawn("poll", [this] {
    poll_loop();
    finish_fiber();
  });
  ++fibers_running_;
  commit_fiber_ = env_.scheduler->spawn("commit", [this] {
    commit_loop();
    finish_fiber();
  });
  for (auto& timer : timers_) {
    TimerDecl* decl = timer.get();
    ++fibers_running_;
    timer_fibers_.push_back(env_.scheduler->spawn("timer:" + timer->name, [this, decl] {
      run_timer(decl);
      finish_fiber();
    }));
  }

  while (!stopping_) env_.scheduler->park_until(INT64_MAX);
  shutdown();
  if (error_.has_value()) return *error_;
  return {};
}

void Engine::stop() {
  if (stopping_) return;
  stopping_ = true;
  wake_fiber(main_fiber_);
  wake_fiber(poll_fiber_);
  wake_fiber(commit_fiber_);
  for (FiberId& timer : timer_fibers_) wake_fiber(timer);
}

void Engine::fail(Error error) {
  if (!failed_) {
    log_.error("worker stopping on error: {}", error.message);
    error_ = std::move(error);
    failed_ = true;
  }
  stop();
}

void Engine::wake_fiber(FiberId& fiber) {
  if (fiber != kNoFiber && env_.scheduler != nullptr) env_.scheduler->wake(fiber);
}

void Engine::finish_fiber() {
  --fibers_running_;
  if (shutting_down_) wake_fiber(main_fiber_);
}

void Engine::shutdown() {
  shutting_down_ = true;
  stopping_ = true;
  Scheduler& scheduler = *env_.scheduler;
  const Clock& clock = *env_.clock;
  const int64_t deadline_ms = clock.now_ms() + settings_.stop_timeout_ms;
  // The poll fiber leaves its loop within one poll timeout; wait for it so no new records arrive.
  while (poll_fiber_ != kNoFiber && !poll_done_ && clock.now_ms() < deadline_ms) {
    scheduler.park_until(std::min(deadline_ms, clock.now_ms() + kPollTimeoutMs));
  }
  // Let the agents drain what is buffered and finish in-flight events (their outputs delivered), so the final
  // commit covers them. Bounded: what is left is redelivered to the partitions' next owner.
  if (!failed_) {
    while (clock.now_ms() < deadline_ms) {
      bool buffered = false;
      for (const auto& buffer : buffers_) buffered = buffered || buffer->size() > 0;
      if (!buffered && events_alive_ == 0) break;
      drain_waiter_ = scheduler.current();
      scheduler.park_until(std::min(deadline_ms, clock.now_ms() + kPollTimeoutMs));
      drain_waiter_ = kNoFiber;
    }
  }
  // What is still buffered goes to the partitions' next owner (not acked); actors see the end of their
  // streams.
  for (auto& buffer : buffers_) {
    for (EventCore* event : buffer->remove_if([](const EventCore&) { return true; })) {
      event->ack_on_release = false;
      app_internal::release(event);
    }
    buffer->close(scheduler);
  }
  if (replies_) replies_->stop();
  if (!failed_ && consumer_ && subscribed_) {
    const Status committed = exactly_once() ? commit_transaction(false) : commit_now(nullptr);
    if (!committed.ok()) log_.warn("final commit failed: {}", committed.error().message);
  }
  if (consumer_) {
    // Closing leaves the group: a last revoke may run (and, under exactly_once, commit) in here.
    if (Status closed = consumer_->close(); !closed.ok())
      log_.warn("consumer close: {}", closed.error().message);
  }
  if (exactly_once() && transaction_open_ && producer_) {
    // A transaction still open (a failed worker's, or one begun by the last revoke): abort it now rather than
    // let it hold back read_committed readers until the transaction timeout. A commit parked in a producer
    // call on the commit fiber (abort_and_rejoin left the abort to here) finishes first: two transactional
    // calls at once are refused by librdkafka (a conflicting call in progress).
    lock_commits();
    if (transaction_open_) {
      // Recorded before the abort purges queued records (see abort_and_rejoin), with why it is aborted.
      if (env_.recorder != nullptr) {
        env_.recorder->on_transaction(TransactionStep::kAbort, {}, error_.has_value() ? Status(*error_) : Status());
      }
      Status aborted = producer_->abort_transaction(kCommitTimeoutMs);
      if (!aborted.ok()) {
        log_.warn("abort_transaction at stop: {}", aborted.error().message);
      }
      transaction_open_ = false;
    }
    unlock_commits();
  }
  tables_->stop();
  if (producer_ && !failed_) {
    if (Status flushed = producer_->flush(settings_.stop_timeout_ms); !flushed.ok()) {
      log_.warn("producer flush at stop: {}", flushed.error().message);
    }
  }
  // Every fiber of this worker must be gone before run() returns: they point into this object.
  while (fibers_running_ > 0 && clock.now_ms() < deadline_ms + settings_.stop_timeout_ms) {
    for (FiberId timer : timer_fibers_) scheduler.wake(timer);
    wake_fiber(commit_fiber_);
    scheduler.park_until(std::min(deadline_ms + settings_.stop_timeout_ms, clock.now_ms() + kPollTimeoutMs));
  }
  if (fibers_running_ > 0) {
    log_.error("{} fiber(s) of the worker did not finish within the stop timeout", fibers_running_);
  }
  running_ = false;
  log_.info("worker {} stopped: received {}, acked {}, sent {}, commits {}, errors {}", settings_.worker_id,
            stats_.records_received, stats_.events_acked, stats_.records_sent, stats_.commits,
            stats_.agent_errors);
}

Status Engine::start_clients() {
  auto admin = env_.broker->admin();
  if (!admin.ok()) return admin.error();
  admin_ = std::move(admin).value();

  ProducerConfig producer;
  producer.client_id = settings_.id + "-" + settings_.worker_id;
  if (exactly_once()) {
    // One transactional producer per worker (EOS v2): a restarted worker with the same id fences its
    // predecessor's producer and aborts its open transaction at once.
    producer.transactional_id = settings_.id + "-" + settings_.worker_id;
    // planted bug (runtime/seam/planted.h): a fresh id per incarnation, so a restart fences nobody.
    if (env_.planted == PlantedBug::kNoFencing) {
      *producer.transactional_id += fmt::format("-{:016x}", env_.random->next_u64());
    }
    producer.transaction_timeout_ms = kTransactionTimeoutMs;
  }
  producer.acks = settings_.producer_acks;
  producer.enable_idempotence = settings_.producer_acks == -1;
  producer.linger_ms = settings_.producer_linger_ms;
  producer.queue_max_records = kProducerQueueMaxRecords;
  producer.extra = settings_.producer_properties;
  auto made_producer = env_.broker->producer(producer);
  if (!made_producer.ok()) return made_producer.error();
  producer_ = std::move(made_producer).value();
  if (exactly_once()) {
    if (Status ready = producer_->init_transactions(kAdminTimeoutMs); !ready.ok()) {
      rejoin_ = ready.code() == ErrorCode::kProducerFenced || ready.error().retriable;
      return Error::of(ready.code(), "init_transactions: " + ready.error().message);
    }
    if (Status begun = begin_transaction(); !begun.ok()) return begun;
  }

  ConsumerConfig consumer;
  consumer.group_id = settings_.id;
  consumer.client_id = settings_.id + "-" + settings_.worker_id;
  // At-least-once reads what is written, as Kafka Streams does; exactly-once (the tables issue) reads
  // committed.
  consumer.isolation_level = settings_.processing_guarantee == ProcessingGuarantee::kExactlyOnce
                                 ? IsolationLevel::kReadCommitted
                                 : IsolationLevel::kReadUncommitted;
  consumer.auto_offset_reset = settings_.consumer_auto_offset_reset;
  consumer.assignment_strategy = settings_.consumer_assignment_strategy;
  consumer.session_timeout_ms = settings_.broker_session_timeout_ms;
  consumer.heartbeat_interval_ms = settings_.broker_heartbeat_interval_ms;
  consumer.max_poll_interval_ms = settings_.broker_max_poll_interval_ms;
  consumer.max_poll_records = kMaxPollRecords;
  consumer.extra = settings_.consumer_properties;
  auto made_consumer = env_.broker->consumer(consumer);
  if (!made_consumer.ok()) return made_consumer.error();
  consumer_ = std::move(made_consumer).value();
  return {};
}

Status Engine::prepare_topics() {
  for (auto& topic : topics_) {
    if (topic->in_memory || topic->prepared) continue;
    if (topic->internal) {
      if (Status created = create_topic_if_missing(*topic); !created.ok()) return created;
      continue;
    }
    auto described = admin_->describe_topic(topic->name, kAdminTimeoutMs);
    if (!described.ok()) {
      if (described.code() == ErrorCode::kUnknownTopicOrPartition ||
          described.code() == ErrorCode::kUnknownTopic) {
        return Error::of(ErrorCode::kUnknownTopicOrPartition,
                         "topic '" + topic->name +
                             "' does not exist: create it first (e.g. kafka-topics.sh --create --topic " +
                             topic->name + "), or declare it with TopicOptions{.create = true}");
      }
      return Error::of(described.code(),
                       "cannot describe topic '" + topic->name + "': " + described.error().message);
    }
    topic->prepared = true;
    topic->actual_partitions = static_cast<int32_t>(described->partitions.size());
  }
  return {};
}

Status Engine::create_topic_if_missing(TopicDecl& topic) {
  if (topic.prepared) return {};
  TopicSpec spec;
  spec.name = topic.name;
  spec.partitions = topic.partitions > 0 ? topic.partitions : settings_.topic_partitions;
  spec.replication_factor =
      topic.replication_factor > 0 ? topic.replication_factor : settings_.topic_replication_factor;
  spec.configs = topic.configs;
  // One replica can never satisfy a cluster-wide min.insync.replicas of 2 (a common production setting):
  // every acks=all write to the topic would fail. Its own replica is all the ISR a single-replica topic can
  // have.
  if (spec.replication_factor == 1) spec.configs.emplace("min.insync.replicas", "1");
  Status created = admin_->create_topic(spec, kAdminTimeoutMs);
  topic.actual_partitions = spec.partitions;
  if (!created.ok() && created.code() != ErrorCode::kTopicAlreadyExists) {
    return Error::of(created.code(), "cannot create topic '" + topic.name + "': " + created.error().message);
  }
  if (created.code() == ErrorCode::kTopicAlreadyExists) {
    // Another worker may be creating it right now: wait until it is visible with leaders, so the subscription
    // that follows includes it (a client leaves unknown topics out until its next metadata refresh).
    const int64_t deadline_ms = env_.clock->now_ms() + kAdminTimeoutMs;
    for (;;) {
      auto described = admin_->describe_topic(topic.name, kAdminTimeoutMs);
      bool ready = described.ok() && !described->partitions.empty();
      if (ready) {
        for (const PartitionDescription& partition : described->partitions)
          ready = ready && partition.leader >= 0;
      }
      if (ready) {
        topic.actual_partitions = static_cast<int32_t>(described->partitions.size());
        break;
      }
      if (env_.clock->now_ms() >= deadline_ms) {
        return Error::of(ErrorCode::kTimedOut, "topic '" + topic.name + "' exists but has no leaders after " +
                                                   std::to_string(kAdminTimeoutMs) + " ms");
      }
      env_.scheduler->wait_until_ms(env_.clock->now_ms() + kPollTimeoutMs);
    }
  }
  topic.prepared = true;
  return {};
}

std::vector<std::string> Engine::subscription() const {
  std::vector<std::string> names;
  for (const auto& topic : topics_) {
    if (!topic->in_memory && !topic->subscribers.empty()) names.push_back(topic->name);
  }
  names.push_back(leader_topic_);
  return names;
}

// ---------------------------------------------------------------------------------------------------------------
// Actors and supervisors

void Engine::run_actor(AgentDecl* agent, int32_t index) {
  for (;;) {
    bool restart = false;
    try {
      agent->run_actor(index);
    } catch (const app_internal::ActorRestart&) {
      restart = true;
      ++stats_.agent_restarts;
    } catch (const std::exception& error) {
      restart = on_actor_crash(agent, index, error.what());
    } catch (const boost::context::detail::forced_unwind&) {
      throw;  // the scheduler is destroying this fiber (a simulated crash): let the unwinding go on
    } catch (...) {
      restart = on_actor_crash(agent, index, "an exception not derived from std::exception");
    }
    clear_current();
    if (!restart || stopping_) break;
  }
  actor_fibers_.erase(env_.scheduler->current());
  current_.erase(env_.scheduler->current());
  finish_fiber();
}

bool Engine::on_actor_crash(AgentDecl* agent, int32_t index, const std::string& what) {
  ++stats_.agent_errors;
  log_.error("agent {}[{}] raised: {} (the event it was processing is acked, not retried)", agent->name,
             index, what);
  if (stopping_) return false;
  if (agent->supervisor == SupervisorStrategy::kCrashing) {
    fail(Error::of(ErrorCode::kFail, "agent " + agent->name + " crashed (supervisor: crashing): " + what));
    return false;
  }
  const int64_t now_ms = env_.clock->now_ms();
  agent->restart_times_ms.push_back(now_ms);
  while (!agent->restart_times_ms.empty() &&
         agent->restart_times_ms.front() < now_ms - settings_.agent_restart_window_ms) {
    agent->restart_times_ms.pop_front();
  }
  if (static_cast<int64_t>(agent->restart_times_ms.size()) > settings_.agent_max_restarts) {
    fail(Error::of(ErrorCode::kFail, "agent " + agent->name + " crashed more than " +
                                         std::to_string(settings_.agent_max_restarts) + " times within " +
                                         std::to_string(settings_.agent_restart_window_ms) +
                                         " ms; last: " + what));
    return false;
  }
  ++stats_.agent_restarts;
  if (agent->supervisor == SupervisorStrategy::kOneForAll) {
    // The other actors leave their loops at their next pull (ActorRestart) and start again; the buffered
    // events stay in the buffer for the restarted actors.
    ++agent->restart_generation;
    agent->buffer->wake_readers(*env_.scheduler);
  }
  return true;
}

void Engine::spawn_helper(std::string name, std::function<void()> body) {
  ++fibers_running_;
  env_.scheduler->spawn(name, [this, name, body = std::move(body)] {
    try {
      body();
    } catch (const std::exception& error) {
      ++stats_.timer_errors;
      log_.error("{} raised: {}", name, error.what());
    }
    current_.erase(env_.scheduler->current());
    finish_fiber();
  });
}

EventCore* Engine::pull(RawChannel* buffer, const AgentDecl* agent, uint64_t generation,
                        int64_t deadline_ms) {
  Scheduler& scheduler = *env_.scheduler;
  for (;;) {
    if (agent != nullptr && agent->restart_generation != generation) {
      auto actor = actor_fibers_.find(scheduler.current());
      if (actor != actor_fibers_.end() && actor->second == agent) throw app_internal::ActorRestart{};
    }
    if (EventCore* event = buffer->try_pop(scheduler)) return event;
    if (buffer->closed()) return nullptr;
    if (deadline_ms != INT64_MAX && env_.clock->now_ms() >= deadline_ms) return nullptr;
    buffer->add_reader(scheduler.current());
    scheduler.park_until(deadline_ms);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Timers and tasks

void Engine::run_timer(TimerDecl* timer) {
  Scheduler& scheduler = *env_.scheduler;
  const auto run_body = [&] {
    ++stats_.timer_runs;
    if (env_.recorder != nullptr && timer->interval_ms > 0) env_.recorder->on_timer(timer->name);
    firing_timers_[scheduler.current()] = timer->name;
    try {
      timer->body();
    } catch (const std::exception& error) {
      ++stats_.timer_errors;
      log_.error("timer {} raised: {}", timer->name, error.what());
    }
    firing_timers_.erase(scheduler.current());
  };
  if (timer->interval_ms == 0) {  // a task
    run_body();
    return;
  }
  if (env_.recorder != nullptr && env_.recorder->drives_timers()) {
    // A replay (sim/replay): the timer fires exactly where the recorded worker's did, not by the clock.
    while (!stopping_ && env_.recorder->await_timer(timer->name)) {
      if (stopping_) break;
      run_body();
    }
    return;
  }
  int64_t next_ms = env_.clock->now_ms() + timer->interval_ms;
  while (!stopping_) {
    scheduler.park_until(next_ms);
    if (stopping_) break;
    const int64_t now_ms = env_.clock->now_ms();
    if (now_ms < next_ms) continue;
    if (!timer->on_leader || leader_) run_body();
    next_ms += timer->interval_ms;
    // A late wake-up (a long pause, a clock jump) runs once, not once per missed interval.
    if (next_ms <= now_ms) next_ms = now_ms + timer->interval_ms;
  }
}

}  // namespace mephisto
