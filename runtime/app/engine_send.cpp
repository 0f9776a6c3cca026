// Engine, producing side: sends that hold their input events until delivered, in-memory channels, bad
// records, yields and replies, and ask().
#include <cassert>

#include <fmt/format.h>

#include "runtime/app/engine.h"
#include "runtime/app/engine_internal.h"

namespace mephisto {

using app_internal::EventCore;

namespace app_internal {

void retain(EventCore* core) {
  assert(core != nullptr && core->holders > 0);
  ++core->holders;
}

void release(EventCore* core) {
  assert(core != nullptr && core->holders > 0);
  if (--core->holders > 0) return;
  if (core->engine != nullptr) core->engine->on_event_released(core);
  for (EventCore* parent : core->upstream) {
    if (!core->ack_on_release) parent->ack_on_release = false;
    release(parent);
  }
  delete core;
}

}  // namespace app_internal

namespace {
// Events whose processing the worker's stop cut short (an ask it could not finish): not acked when released,
// so the partition's next owner processes them again rather than the final commit passing them (at least
// once).
void leave_unacked(const std::vector<EventCore*>& events) {
  for (EventCore* event : events) event->ack_on_release = false;
}
}  // namespace

// ---------------------------------------------------------------------------------------------------------------
// The current events of a fiber

void Engine::set_current(EventCore* event) {
  std::vector<EventCore*>& events = current_[env_.scheduler->current()];
  events.clear();
  events.push_back(event);
}

void Engine::set_current(std::vector<EventCore*> events) {
  current_[env_.scheduler->current()] = std::move(events);
}

void Engine::clear_current() {
  if (env_.scheduler == nullptr) return;
  auto found = current_.find(env_.scheduler->current());
  if (found != current_.end()) found->second.clear();
}

const std::vector<EventCore*>& Engine::current() const {
  static const std::vector<EventCore*> kNone;
  auto found = current_.find(env_.scheduler->current());
  return found == current_.end() ? kNone : found->second;
}

// ---------------------------------------------------------------------------------------------------------------
// Sends

Status Engine::send(ProducerRecord record) {
  if (!running_ || failed_) {
    return Error::of(ErrorCode::kState, "cannot send to '" + record.topic + "': the worker is not running");
  }
  auto found = topics_by_name_.find(record.topic);
  if (found != topics_by_name_.end() && found->second->in_memory)
    return send_to_channel(*found->second, std::move(record));
  return send_holding(std::move(record), current());
}

Status Engine::send_holding(ProducerRecord record, const std::vector<EventCore*>& holding,
                            DeliveryCallback also) {
  Scheduler& scheduler = *env_.scheduler;
  wait_for_transaction_gate();
  // Stay below the producer's queue limit by waiting for delivery reports, so send() never fails with
  // kQueueFull (which would lose the record: the seam's send() consumes it).
  while (sends_in_flight_ >= kProducerQueueMaxRecords - 1 && !failed_) {
    send_waiters_.push_back(scheduler.current());
    scheduler.park_until(INT64_MAX);
  }
  if (failed_) return Error::of(ErrorCode::kState, "the worker has failed");
  // planted bug (runtime/seam/planted.h): at_least_once sends hold no input, so an input is acked (and
  // committed) as soon as its agents are done, delivered or not (Faust's behaviour).
  const bool hold = env_.planted != PlantedBug::kCommitBeforeDelivery || exactly_once();
  EventCore* first = holding.empty() || !hold ? nullptr : holding.front();
  std::vector<EventCore*>* rest = nullptr;
  if (first != nullptr) app_internal::retain(first);
  if (hold && holding.size() > 1) {
    rest = new std::vector<EventCore*>(holding.begin() + 1, holding.end());
    for (EventCore* event : *rest) app_internal::retain(event);
  }
  ++sends_in_flight_;
  ++stats_.records_sent;
  ++transaction_sends_;
  std::string topic = record.topic;
  Recorder* recorder = env_.recorder;
  const uint64_t send_id = recorder != nullptr ? recorder->on_send(record, send_sources()) : 0;
  Status sent = producer_->send(std::move(record), [this, first, rest, also, recorder,
                                                    send_id](const Result<RecordMetadata>& result) {
    if (recorder != nullptr) recorder->on_delivered(send_id, result);
    if (also) also(result);
    on_delivery(result, first, rest);
  });
  if (!sent.ok()) {
    // The callback will not run: undo, and stop the worker (the record is gone with the call).
    const Error error = Error::of(sent.code(), "send to '" + topic + "': " + sent.error().message);
    if (recorder != nullptr) recorder->on_delivered(send_id, error);
    if (also) also(error);
    on_delivery(error, first, rest);
    return sent;
  }
  return {};
}

std::vector<SendSource> Engine::send_sources() const {
  std::vector<SendSource> sources;
  for (const EventCore* event : current()) {
    const EventCore* origin = app_internal::kafka_origin(event);
    if (origin == nullptr) continue;
    sources.push_back({origin->record.topic, origin->record.partition, origin->record.offset, {}});
  }
  if (sources.empty()) {
    auto timer = firing_timers_.find(env_.scheduler->current());
    if (timer != firing_timers_.end()) sources.push_back({{}, 0, -1, timer->second});
  }
  return sources;
}

void Engine::on_delivery(const Result<RecordMetadata>& result, EventCore* first,
                         std::vector<EventCore*>* rest) {
  --sends_in_flight_;
  if (result.ok()) {
    ++stats_.records_delivered;
  } else {
    ++stats_.send_failures;
    // At-least-once: the inputs this record came from must be processed again, so they are not acked and the
    // worker stops without committing (Faust would ack them and lose the output).
    if (first != nullptr) first->ack_on_release = false;
    if (rest != nullptr) {
      for (EventCore* event : *rest) event->ack_on_release = false;
    }
    // exactly_once: the transaction cannot commit without the record; a fresh worker redoes the work.
    if (exactly_once()) rejoin_ = true;
    fail(Error::of(result.code(), "a record could not be delivered: " + result.error().message));
  }
  if (first != nullptr) app_internal::release(first);
  if (rest != nullptr) {
    for (EventCore* event : *rest) app_internal::release(event);
    delete rest;
  }
  if (!send_waiters_.empty()) {
    const FiberId waiter = send_waiters_.front();
    send_waiters_.pop_front();
    env_.scheduler->wake(waiter);
  }
}

Status Engine::send_to_channel(const app_internal::TopicDecl& channel, ProducerRecord record) {
  Scheduler& scheduler = *env_.scheduler;
  ++stats_.records_sent;
  if (channel.subscribers.empty()) return {};  // nobody reads it: dropped, as Faust's channels do
  ConsumerRecord consumed;
  consumed.topic = record.topic;
  consumed.partition = 0;
  consumed.offset = channel_offset_++;
  consumed.key = std::move(record.key);
  consumed.value = std::move(record.value);
  consumed.headers = std::move(record.headers);
  consumed.timestamp_ms = record.timestamp_ms >= 0 ? record.timestamp_ms : env_.clock->now_ms();
  // Back-pressure: wait for room in every reader's buffer, so a fast sender cannot grow memory without bound.
  for (RawChannel* buffer : channel.subscribers) {
    while (buffer->room() == 0 && !buffer->closed()) {
      buffer->add_writer(scheduler.current());
      scheduler.park_until(INT64_MAX);
    }
  }
  auto* event = new EventCore{std::move(consumed), nullptr, 0, 0, true, nullptr, {}};
  event->holders = static_cast<int32_t>(channel.subscribers.size());
  // At-least-once through the channel: the inputs being processed stay unacked until this record is done.
  event->upstream = current();
  for (EventCore* parent : event->upstream) app_internal::retain(parent);
  for (RawChannel* buffer : channel.subscribers) {
    if (buffer->closed()) {
      app_internal::release(event);
    } else {
      buffer->push(scheduler, event);
    }
  }
  ++stats_.records_delivered;
  return {};
}

// ---------------------------------------------------------------------------------------------------------------
// Bad records

void Engine::on_bad_record(EventCore* event, const Error& error) {
  const ConsumerRecord& record = event->record;
  const bool dead_letter = settings_.bad_record_policy == BadRecordPolicy::kDeadLetter;
  const int64_t count = dead_letter ? ++stats_.records_dead_lettered : ++stats_.records_skipped;
  if (count <= kBadRecordLogFirst || count % kBadRecordLogEvery == 0) {
    log_.warn("undecodable record {}[{}]@{}: {}; {} (so far: {})", record.topic, record.partition,
              record.offset, error.message,
              dead_letter ? "sent to " + settings_.id + "-dead-letters" : "skipped", count);
  }
  if (!dead_letter) return;
  ProducerRecord out;
  out.topic = settings_.id + "-dead-letters";
  out.key = record.key;
  out.value = record.value;
  out.headers = record.headers;
  out.headers.push_back({kDeadLetterErrorHeader, error.message});
  out.headers.push_back({kDeadLetterTopicHeader, record.topic});
  out.headers.push_back({kDeadLetterPartitionHeader, std::to_string(record.partition)});
  out.headers.push_back({kDeadLetterOffsetHeader, std::to_string(record.offset)});
  out.timestamp_ms = record.timestamp_ms;
  // The bad record is acked only once its dead-letter copy is delivered: nothing is lost.
  Status sent = send_holding(std::move(out), {event});
  (void)sent;  // a failure stops the worker (on_delivery)
}

// ---------------------------------------------------------------------------------------------------------------
// Yields and replies

void Engine::yield(app_internal::AgentDecl& agent, const std::string& value_bytes) {
  const std::vector<EventCore*>& events = current();
  if (events.empty()) return;
  const ConsumerRecord& request = events.front()->record;
  const std::string* reply_to = nullptr;
  const std::string* correlation_id = nullptr;
  for (const Header& header : request.headers) {
    if (!header.value.has_value()) continue;
    if (header.key == kReplyToHeader) reply_to = &*header.value;
    if (header.key == kCorrelationIdHeader) correlation_id = &*header.value;
  }
  if (reply_to == nullptr || reply_to->empty()) return;
  ProducerRecord reply;
  reply.topic = *reply_to;
  reply.partition = 0;  // reply topics have one partition
  reply.key = correlation_id == nullptr ? std::string() : *correlation_id;
  reply.value = value_bytes;
  reply.headers.push_back({kCorrelationIdHeader, reply.key});
  ++stats_.replies_sent;
  Status sent = send(std::move(reply));
  if (!sent.ok()) log_.warn("reply of agent {} not sent: {}", agent.name, sent.error().message);
}

Result<std::optional<std::string>> Engine::ask(ProducerRecord record, int64_t timeout_ms) {
  // Allowed while a graceful stop drains the agents (stopping_): an event in flight finishes its asks, and
  // the final commit covers it. The reply consumer stops after the drain (shutdown), and asks fail from then
  // on.
  if (!running_ || failed_) {
    leave_unacked(current());
    return Error::of(ErrorCode::kState, "ask: the worker is not running");
  }
  if (exactly_once()) {
    // The request would sit in this worker's open transaction, invisible to the agent asked, while the
    // transaction waits for the asker to finish: it could only time out.
    return Error::of(ErrorCode::kState,
                     "ask: not available under processing_guarantee=exactly_once (a request is invisible "
                     "until the asker's transaction commits); use Agent::send with reply_to, or at_least_once");
  }
  if (!replies_) replies_ = std::make_unique<Replies>(*this);
  ++stats_.asks;
  auto reply = replies_->ask(std::move(record), timeout_ms);
  if (reply.code() == ErrorCode::kTimedOut) ++stats_.ask_timeouts;
  if (reply.code() == ErrorCode::kState) leave_unacked(current());
  return reply;
}

Status Engine::Replies::start() {
  Scheduler& scheduler = *engine_.env_.scheduler;
  while (starting_) {  // another fiber is starting it: wait for that
    start_waiters_.push_back(scheduler.current());
    scheduler.park_until(INT64_MAX);
  }
  if (started_) return {};
  starting_ = true;
  const AppSettings& settings = engine_.settings_;
  topic_ = settings.id + "-reply-" + settings.worker_id;
  app_internal::TopicDecl decl;
  decl.internal = true;
  decl.partitions = 1;
  // Replies are only useful for seconds; an hour's retention bounds what a restarted worker reads back.
  decl.configs = {{"retention.ms", "3600000"}};
  app_internal::TopicDecl* topic = engine_.declare_topic(topic_, std::move(decl));
  Status result = engine_.create_topic_if_missing(*topic);
  if (result.ok()) {
    ConsumerConfig config;
    config.client_id = settings.id + "-" + settings.worker_id + "-replies";
    config.isolation_level = IsolationLevel::kReadUncommitted;
    // From the beginning: a reply may be written before this consumer's first fetch; replies to earlier
    // incarnations carry correlation ids nobody waits for and are skipped.
    config.auto_offset_reset = OffsetReset::kEarliest;
    auto consumer = engine_.env_.broker->consumer(config);
    if (consumer.ok()) {
      consumer_ = std::move(consumer).value();
      result = consumer_->assign({TopicPartition{topic_, 0}});
    } else {
      result = consumer.error();
    }
  }
  if (result.ok()) {
    // Correlation ids are unique per worker incarnation: the worker id, a random nonce, a counter.
    id_prefix_ = fmt::format("{}-{:016x}-", settings.worker_id, engine_.env_.random->next_u64());
    started_ = true;
    engine_.spawn_helper("replies", [this] { poll_loop(); });
  }
  starting_ = false;
  while (!start_waiters_.empty()) {
    scheduler.wake(start_waiters_.front());
    start_waiters_.pop_front();
  }
  return result;
}

void Engine::Replies::poll_loop() {
  while (!stopped_) {
    auto polled = consumer_->poll(kPollTimeoutMs);
    if (!polled.ok()) {
      engine_.log_.warn("reply consumer: {}", polled.error().message);
      engine_.env_.scheduler->park_until(engine_.env_.clock->now_ms() + kPollTimeoutMs);
      continue;
    }
    for (ConsumerRecord& record : polled.value()) {
      if (!record.key.has_value()) continue;
      auto found = pending_.find(*record.key);
      if (found == pending_.end()) continue;  // an answer nobody waits for any more (timed out, older worker)
      found->second->done = true;
      found->second->value = std::move(record.value);
      engine_.env_.scheduler->wake(found->second->fiber);
    }
  }
  (void)consumer_->close();
}

Result<std::optional<std::string>> Engine::Replies::ask(ProducerRecord record, int64_t timeout_ms) {
  if (stopped_) return Error::of(ErrorCode::kState, "ask: the worker is stopping");
  Scheduler& scheduler = *engine_.env_.scheduler;
  const int64_t deadline_ms = engine_.env_.clock->now_ms() + timeout_ms;
  // The reply topic cannot always be created at once — a broker down leaves too few for its replication
  // factor —, which passes: retried until the ask's own deadline, then a timeout like any missing reply (so a
  // caller's retry policy covers both).
  Status started = start();
  while (!started.ok() && !stopped_ && engine_.env_.clock->now_ms() + kReplyStartRetryMs < deadline_ms) {
    scheduler.park_until(engine_.env_.clock->now_ms() + kReplyStartRetryMs);
    started = start();
  }
  if (stopped_) return Error::of(ErrorCode::kState, "ask: the worker is stopping");
  if (!started.ok()) {
    return Error::of(ErrorCode::kTimedOut, "ask: no reply topic within " + std::to_string(timeout_ms) +
                                               " ms: " + started.error().message);
  }
  const std::string correlation_id = id_prefix_ + std::to_string(next_id_++);
  record.headers.push_back({kReplyToHeader, topic_});
  record.headers.push_back({kCorrelationIdHeader, correlation_id});
  Pending pending{scheduler.current(), false, std::nullopt};
  pending_[correlation_id] = &pending;
  Status sent = engine_.send(std::move(record));
  if (!sent.ok()) {
    pending_.erase(correlation_id);
    return sent.error();
  }
  while (!pending.done && !stopped_ && engine_.env_.clock->now_ms() < deadline_ms)
    scheduler.park_until(deadline_ms);
  pending_.erase(correlation_id);
  if (pending.done) return std::move(pending.value);
  if (stopped_) return Error::of(ErrorCode::kState, "ask: the worker is stopping");
  return Error::of(ErrorCode::kTimedOut, "ask: no reply within " + std::to_string(timeout_ms) + " ms");
}

void Engine::Replies::stop() {
  stopped_ = true;
  for (auto& [id, pending] : pending_) engine_.env_.scheduler->wake(pending->fiber);
}

}  // namespace mephisto
