#include "sim/client/sim_producer.h"

#include <cassert>
#include <deque>
#include <set>

#include "sim/client/client_core.h"
#include "sim/client/partitioner.h"
#include "sim/history.h"
#include "sim/sim_kafka.h"

namespace mephisto::sim {
namespace {

constexpr int64_t kFarFutureMs = INT64_MAX / 4;
// Kafka's v2 record batch overheads, as batch_size_bytes() (protocol.h) estimates them.
constexpr int64_t kBatchHeaderBytes = 61;
constexpr int64_t kRecordFramingBytes = 10;

int64_t encoded_record_bytes(const Record& r) {
  int64_t n = kRecordFramingBytes + (r.key ? static_cast<int64_t>(r.key->size()) : 0) +
              (r.value ? static_cast<int64_t>(r.value->size()) : 0);
  for (const auto& h : r.headers) n += static_cast<int64_t>(h.key.size() + (h.value ? h.value->size() : 0)) + 2;
  return n;
}

enum class TxnState { kUninit, kReady, kInTransaction, kAbortableError, kFatalError };

struct QueuedRecord {
  TopicPartition tp;  // partition -1 until routed
  Record record;
  DeliveryCallback on_delivery;
  int64_t enqueued_ms = 0;
};

struct Batch {
  RecordBatch batch;
  std::vector<DeliveryCallback> callbacks;
  int64_t first_enqueued_ms = 0;
  int64_t retry_at_ms = 0;
  bool in_flight = false;
};

// A partition's records not yet in a batch, column-wise so that a batch can usually take the whole queue by
// moving its vectors. [head, size) are queued.
struct RecordQueue {
  std::vector<Record> records;
  std::vector<DeliveryCallback> callbacks;
  std::vector<int64_t> enqueued_ms;
  size_t head = 0;
  size_t reserve_hint = 16;  // capacity to start an emptied queue with (the last batch's size)

  [[nodiscard]] bool empty() const { return head == records.size(); }
  [[nodiscard]] size_t size() const { return records.size() - head; }
  [[nodiscard]] int64_t front_enqueued_ms() const { return enqueued_ms[head]; }
  void push(Record&& r, DeliveryCallback&& cb, int64_t at_ms) {
    if (records.capacity() == 0) {
      records.reserve(reserve_hint);
      callbacks.reserve(reserve_hint);
      enqueued_ms.reserve(reserve_hint);
    }
    records.push_back(std::move(r));
    callbacks.push_back(std::move(cb));
    enqueued_ms.push_back(at_ms);
  }
  void clear() {
    records.clear();
    callbacks.clear();
    enqueued_ms.clear();
    head = 0;
  }
};

struct PartitionState {
  RecordQueue queue;
  std::optional<Batch> batch;  // built: in flight or waiting for its retry
  int32_t next_sequence = 0;
};

}  // namespace

struct SimProducer::State {
  State(SimKafka& kafka, ProcessContext& process, ProducerConfig cfg)
      : core(kafka, process, cfg.client_id), config(std::move(cfg)), history(kafka.history()) {
    if (history != nullptr) history_client = history->new_client();
  }

  ClientCore core;
  ProducerConfig config;
  // The run's history (sim/history.h), taken from the SimKafka at creation; nullptr: nothing is recorded.
  History* history = nullptr;
  uint64_t history_client = 0;
  bool closing = false;
  FiberId sender = kNoFiber;

  std::deque<QueuedRecord> unrouted;  // waiting for metadata
  std::map<TopicPartition, PartitionState> partitions;  // never erased from: cached pointers stay valid
  // send()'s cache of the last topic's partition states (by partition index).
  std::string cached_topic;
  std::vector<PartitionState*> cached_states;
  int64_t outstanding = 0;            // records sent to send() without a delivery report yet
  int32_t flushing = 0;               // flush() callers: linger is ignored while > 0
  std::vector<FiberId> flush_waiters;

  int64_t producer_id = -1;
  int16_t producer_epoch = -1;

  TxnState txn_state = TxnState::kUninit;
  std::optional<Error> txn_error;     // the abortable or fatal error
  std::set<TopicPartition> txn_partitions;
  bool txn_offsets_added = false;

  [[nodiscard]] bool transactional() const { return config.transactional_id.has_value(); }
  [[nodiscard]] bool idempotent() const { return config.enable_idempotence || transactional(); }
  [[nodiscard]] int64_t now_ms() const { return core.now_ms(); }

  void wake_sender() {
    if (sender != kNoFiber) core.scheduler().wake(sender);
  }
  void wake_flushers() {
    auto waiters = std::move(flush_waiters);
    flush_waiters.clear();
    for (FiberId f : waiters) core.scheduler().wake(f);
  }

  void set_abortable(const Error& e) {
    if (!transactional() || txn_state == TxnState::kFatalError) return;
    if (txn_state == TxnState::kInTransaction) {
      Error err = e;
      err.txn_requires_abort = true;
      err.retriable = false;
      txn_error = err;
      txn_state = TxnState::kAbortableError;
    }
  }
  void set_fatal(const Error& e) {
    Error err = e;
    err.fatal = true;
    err.retriable = false;
    err.txn_requires_abort = false;
    txn_error = err;
    txn_state = TxnState::kFatalError;
  }
  [[nodiscard]] bool fatal() const { return txn_state == TxnState::kFatalError; }

  // Only called when history != nullptr, so an unrecorded run pays one null check per site.
  HistoryEvent history_event(HistoryKind kind) {
    HistoryEvent e = stamped_event(kind, core.kafka().executor().now_ms(), core.process(), history_client);
    if (config.transactional_id) e.transactional_id = *config.transactional_id;
    return e;
  }
  // Recorded before the application's callback runs, so the history shows the ack before what it caused.
  void record_delivery(const TopicPartition& tp, const Record& rec, int64_t offset, const Error* error) {
    if (history == nullptr) return;
    HistoryEvent e = history_event(error == nullptr ? HistoryKind::kSendAcked : HistoryKind::kSendFailed);
    e.tp = tp;
    e.key = rec.key;
    e.value = rec.value;
    if (error == nullptr)
      e.offset = offset;
    else
      e.detail = error->to_string();
    history->add(std::move(e));
  }
  void record_txn(HistoryKind kind, std::string detail) {
    if (history == nullptr) return;
    HistoryEvent e = history_event(kind);
    e.detail = std::move(detail);
    history->add(std::move(e));
  }

  void report(DeliveryCallback& cb, const Result<RecordMetadata>& r) {
    --outstanding;
    assert(outstanding >= 0 && "more delivery reports than records sent");
    if (cb) cb(r);
  }
  void fail_record(QueuedRecord& q, const Error& e) {
    record_delivery(q.tp, q.record, -1, &e);
    report(q.on_delivery, e);
  }
  void fail_batch(const TopicPartition& tp, Batch& b, const Error& e) {
    for (size_t i = 0; i < b.callbacks.size(); ++i) {
      record_delivery(tp, (*b.batch.records)[i], -1, &e);
      report(b.callbacks[i], e);
    }
  }
  void fail_queue(const TopicPartition& tp, RecordQueue& q, const Error& e) {
    for (size_t i = q.head; i < q.records.size(); ++i) {
      record_delivery(tp, q.records[i], -1, &e);
      report(q.callbacks[i], e);
    }
    q.clear();
  }
  PartitionState& partition_state(const TopicPartition& tp, int32_t count) {
    if (tp.topic != cached_topic || cached_states.size() != static_cast<size_t>(count)) {
      cached_topic = tp.topic;
      cached_states.assign(static_cast<size_t>(count), nullptr);
    }
    PartitionState*& ps = cached_states[static_cast<size_t>(tp.partition)];
    if (ps == nullptr) ps = &partitions[tp];
    return *ps;
  }
  void enqueue(QueuedRecord&& q, int32_t count) {
    partition_state(q.tp, count).queue.push(std::move(q.record), std::move(q.on_delivery), q.enqueued_ms);
  }

  void sender_loop();
  void route_unrouted();
  void ensure_producer_id();
  void add_partitions_to_txn();
  void send_batch(const TopicPartition& tp, PartitionState& ps, BrokerId leader);
  void on_produce_response(const TopicPartition& tp, Result<Response> r);
  Status wait_all_delivered(int64_t deadline_ms);
  Status txn_call_end(bool commit, int64_t deadline_ms);
};

SimProducer::SimProducer(SimKafka& kafka, ProcessContext& process, ProducerConfig config)
    : state_(std::make_shared<State>(kafka, process, std::move(config))) {
  if (state_->transactional()) state_->txn_state = TxnState::kUninit;
  else state_->txn_state = TxnState::kReady;
  // The sender fiber keeps the state alive while it runs; it exits once `closing` is set.
  std::shared_ptr<State> s = state_;
  s->sender = s->core.scheduler().spawn(s->config.client_id + "/sender", [s] { s->sender_loop(); });
}

SimProducer::~SimProducer() {
  State& s = *state_;
  s.closing = true;
  const Error destroyed = Error::of(ErrorCode::kDestroy, "producer destroyed before delivery");
  for (auto& q : s.unrouted) s.fail_record(q, destroyed);
  s.unrouted.clear();
  for (auto& [tp, ps] : s.partitions) {
    s.fail_queue(tp, ps.queue, destroyed);
    if (ps.batch) s.fail_batch(tp, *ps.batch, destroyed);
    ps.batch.reset();
  }
  s.wake_sender();
}

// ------------------------------------------------------------------------------------------------------------
// send / flush

Status SimProducer::send(ProducerRecord record, DeliveryCallback on_delivery) {
  State& s = *state_;
  if (s.closing) return Error::of(ErrorCode::kDestroy, "producer is closed");
  if (s.fatal()) return *s.txn_error;
  if (s.transactional()) {
    if (s.txn_state == TxnState::kAbortableError) return *s.txn_error;
    if (s.txn_state != TxnState::kInTransaction)
      return Error::of(ErrorCode::kState, "send() on a transactional producer outside a transaction");
  }
  if (record.topic.empty()) return Error::of(ErrorCode::kInvalidArg, "record has no topic");
  if (s.outstanding >= s.config.queue_max_records)
    return Error::of(ErrorCode::kQueueFull, "producer queue is full (queue_max_records)");
  int64_t size_bytes = 0;
  if (record.key) size_bytes += static_cast<int64_t>(record.key->size());
  if (record.value) size_bytes += static_cast<int64_t>(record.value->size());
  for (const auto& h : record.headers) size_bytes += static_cast<int64_t>(h.key.size() + (h.value ? h.value->size() : 0));
  if (size_bytes > kMaxRecordBytes)
    return Error::of(ErrorCode::kMessageTooLarge, "record of " + std::to_string(size_bytes) +
                                                      " bytes exceeds message.max.bytes (" +
                                                      std::to_string(kMaxRecordBytes) + ")");

  QueuedRecord q;
  q.tp = {std::move(record.topic), record.partition};
  q.record.timestamp_ms = record.timestamp_ms >= 0 ? record.timestamp_ms : s.now_ms();
  q.record.key = std::move(record.key);
  q.record.value = std::move(record.value);
  q.record.headers = std::move(record.headers);
  q.on_delivery = std::move(on_delivery);
  q.enqueued_ms = s.now_ms();
  ++s.outstanding;

  const auto count = s.core.partition_count(q.tp.topic);
  if (count && q.tp.partition >= *count) {
    --s.outstanding;
    return Error::of(ErrorCode::kUnknownPartition,
                     "partition " + std::to_string(q.tp.partition) + " of " + q.tp.topic + " does not exist");
  }
  if (count && q.tp.partition < 0) {
    q.tp.partition = q.record.key ? partition_for_key(*q.record.key, *count)
                                  : static_cast<int32_t>(s.core.process().random().below(static_cast<uint64_t>(*count)));
  }
  // Without metadata the partition (chosen or explicit) cannot be checked yet: route it once metadata arrives.
  if (q.tp.partition < 0 || !count) {
    s.unrouted.push_back(std::move(q));
  } else {
    s.enqueue(std::move(q), *count);
  }
  s.wake_sender();
  return {};
}

Status SimProducer::flush(int64_t timeout_ms) {
  State& s = *state_;
  return s.wait_all_delivered(s.now_ms() + timeout_ms);
}

Status SimProducer::State::wait_all_delivered(int64_t deadline_ms) {
  ++flushing;
  wake_sender();
  while (outstanding > 0 && now_ms() < deadline_ms && !closing) {
    flush_waiters.push_back(core.scheduler().current());
    core.scheduler().park_until(deadline_ms);
  }
  --flushing;
  if (outstanding > 0)
    return Error{ErrorCode::kTimedOut, std::to_string(outstanding) + " records still undelivered", true, false, false};
  return {};
}

// ------------------------------------------------------------------------------------------------------------
// The sender fiber

void SimProducer::State::sender_loop() {
  while (!closing) {
    if (idempotent() && !transactional() && producer_id < 0 && !fatal()) ensure_producer_id();
    if (closing) break;
    if (!unrouted.empty()) route_unrouted();
    if (closing) break;
    if (transactional() && txn_state == TxnState::kInTransaction) add_partitions_to_txn();
    if (closing) break;

    int64_t next_wake_ms = kFarFutureMs;
    std::vector<std::string> need_metadata;
    const bool can_send = !idempotent() || producer_id >= 0;
    for (auto& [tp, ps] : partitions) {
      if (!can_send) break;
      if (ps.batch && ps.batch->in_flight) continue;
      if (!ps.batch && ps.queue.empty()) continue;
      if (transactional() && txn_partitions.count(tp) == 0) continue;  // waits for AddPartitionsToTxn
      if (ps.batch && now_ms() < ps.batch->retry_at_ms) {
        next_wake_ms = std::min(next_wake_ms, ps.batch->retry_at_ms);
        continue;
      }
      if (!ps.batch && flushing == 0 && ps.queue.size() < kMaxBatchRecords &&
          ps.queue.front_enqueued_ms() + config.linger_ms > now_ms()) {
        next_wake_ms = std::min(next_wake_ms, ps.queue.front_enqueued_ms() + config.linger_ms);
        continue;
      }
      const BrokerId leader = core.leader_of(tp);
      if (leader == kNoBroker) {
        need_metadata.push_back(tp.topic);
        continue;
      }
      send_batch(tp, ps, leader);
    }
    if (!need_metadata.empty()) {
      std::sort(need_metadata.begin(), need_metadata.end());
      need_metadata.erase(std::unique(need_metadata.begin(), need_metadata.end()), need_metadata.end());
      (void)core.refresh_metadata(need_metadata, now_ms() + 5000);
      if (!core.backoff(kFarFutureMs)) break;
      continue;
    }
    core.scheduler().park_until(next_wake_ms);
  }
}

void SimProducer::State::ensure_producer_id() {
  while (!closing && producer_id < 0) {
    InitProducerIdRequest req;
    auto r = core.call_as<InitProducerIdResponse>(core.next_bootstrap_broker(), req, config.request_timeout_ms);
    if (r.ok() && r->error == ErrorCode::kNone) {
      producer_id = r->producer_id;
      producer_epoch = r->producer_epoch;
      for (auto& [tp, ps] : partitions) ps.next_sequence = 0;
      return;
    }
    core.backoff(kFarFutureMs);
  }
}

void SimProducer::State::route_unrouted() {
  std::vector<std::string> topics;
  for (const auto& q : unrouted)
    if (!core.partition_count(q.tp.topic)) topics.push_back(q.tp.topic);
  std::sort(topics.begin(), topics.end());
  topics.erase(std::unique(topics.begin(), topics.end()), topics.end());
  if (!topics.empty()) (void)core.refresh_metadata(topics, now_ms() + config.request_timeout_ms);
  std::deque<QueuedRecord> still;
  for (auto& q : unrouted) {
    const auto count = core.partition_count(q.tp.topic);
    if (!count) {
      if (core.known_missing(q.tp.topic)) {
        const Error e = Error::of(ErrorCode::kUnknownTopicOrPartition, "topic " + q.tp.topic + " does not exist");
        set_abortable(e);
        fail_record(q, e);
      } else if (now_ms() - q.enqueued_ms >= config.delivery_timeout_ms) {
        fail_record(q, Error::of(ErrorCode::kMessageTimedOut, "no metadata for " + q.tp.topic));
      } else {
        still.push_back(std::move(q));
      }
      continue;
    }
    if (q.tp.partition >= *count) {
      const Error e = Error::of(ErrorCode::kUnknownPartition, "partition does not exist");
      set_abortable(e);
      fail_record(q, e);
      continue;
    }
    if (q.tp.partition < 0)
      q.tp.partition = q.record.key ? partition_for_key(*q.record.key, *count)
                                    : static_cast<int32_t>(core.process().random().below(static_cast<uint64_t>(*count)));
    enqueue(std::move(q), *count);
  }
  unrouted = std::move(still);
  if (unrouted.empty()) wake_flushers();
  else core.backoff(kFarFutureMs);
}

void SimProducer::State::add_partitions_to_txn() {
  std::vector<TopicPartition> to_add;
  for (const auto& [tp, ps] : partitions)
    if ((!ps.queue.empty() || ps.batch) && txn_partitions.count(tp) == 0) to_add.push_back(tp);
  if (to_add.empty()) return;
  const int64_t deadline_ms = now_ms() + config.transaction_timeout_ms;
  while (!closing && txn_state == TxnState::kInTransaction) {
    auto coordinator = core.find_coordinator(*config.transactional_id, CoordinatorType::kTransaction, deadline_ms);
    if (!coordinator.ok()) {
      set_abortable(coordinator.error());
      break;
    }
    AddPartitionsToTxnRequest req{*config.transactional_id, producer_id, producer_epoch, to_add};
    auto r = core.call_as<AddPartitionsToTxnResponse>(*coordinator, std::move(req), config.request_timeout_ms);
    ErrorCode err = r.ok() ? ErrorCode::kNone : r.error().code;
    if (r.ok())
      for (const auto& p : r->partitions)
        if (p.error != ErrorCode::kNone) err = p.error;
    if (err == ErrorCode::kNone) {
      for (const auto& tp : to_add) txn_partitions.insert(tp);
      return;
    }
    if (err == ErrorCode::kProducerFenced || err == ErrorCode::kInvalidProducerEpoch) {
      set_fatal(Error::of(ErrorCode::kProducerFenced, "fenced by a newer producer with the same transactional.id"));
      break;
    }
    if (is_coordinator_error(err)) core.invalidate_coordinator(*config.transactional_id, CoordinatorType::kTransaction);
    if ((is_coordinator_error(err) || err == ErrorCode::kConcurrentTransactions || is_retriable(err)) &&
        core.backoff(deadline_ms))
      continue;
    set_abortable(Error::of(err, "AddPartitionsToTxn failed"));
    break;
  }
  // The transaction cannot take these records: fail them now rather than leave them queued forever.
  if (txn_state != TxnState::kInTransaction) {
    const Error e = txn_error.value_or(Error::of(ErrorCode::kState, "transaction is not in progress"));
    for (const auto& tp : to_add) {
      auto& ps = partitions[tp];
      fail_queue(tp, ps.queue, e);
    }
    wake_flushers();
  }
}

void SimProducer::State::send_batch(const TopicPartition& tp, PartitionState& ps, BrokerId leader) {
  if (!ps.batch) {
    Batch b;
    RecordQueue& q = ps.queue;
    b.first_enqueued_ms = q.front_enqueued_ms();
    // Sized the way the broker measures a batch (batch_size_bytes: v2 header plus per-record framing), so a full
    // batch never exceeds max.message.bytes. The first record always goes in: send() bounded its size.
    int64_t bytes = kBatchHeaderBytes;
    size_t end = q.head;
    while (end < q.records.size() && end - q.head < kMaxBatchRecords) {
      const int64_t record_bytes = encoded_record_bytes(q.records[end]);
      if (end > q.head && bytes + record_bytes > kMaxBatchBytes) break;
      bytes += record_bytes;
      ++end;
    }
    const size_t n = end - q.head;
    q.reserve_hint = std::max<size_t>(n, 16);
    std::vector<Record> records;
    if (q.head == 0 && end == q.records.size()) {
      records = std::move(q.records);
      b.callbacks = std::move(q.callbacks);
      q.records = {};
      q.callbacks = {};
      q.clear();
    } else {
      records.reserve(n);
      b.callbacks.reserve(n);
      for (size_t i = q.head; i < end; ++i) {
        records.push_back(std::move(q.records[i]));
        b.callbacks.push_back(std::move(q.callbacks[i]));
      }
      q.head = end;
      if (q.empty()) {
        q.clear();
      } else if (q.head * 2 >= q.records.size()) {
        const auto h = static_cast<std::ptrdiff_t>(q.head);
        q.records.erase(q.records.begin(), q.records.begin() + h);
        q.callbacks.erase(q.callbacks.begin(), q.callbacks.begin() + h);
        q.enqueued_ms.erase(q.enqueued_ms.begin(), q.enqueued_ms.begin() + h);
        q.head = 0;
      }
    }
    b.batch = make_batch(std::move(records));
    if (idempotent()) {
      b.batch.producer_id = producer_id;
      b.batch.producer_epoch = producer_epoch;
      b.batch.base_sequence = ps.next_sequence;
      ps.next_sequence += b.batch.last_offset_delta + 1;
    }
    b.batch.is_transactional = transactional();
    ps.batch = std::move(b);
  }
  ps.batch->in_flight = true;
  ProduceRequest req;
  req.transactional_id = config.transactional_id;
  req.acks = static_cast<int16_t>(config.acks);
  req.timeout_ms = static_cast<int32_t>(std::min<int64_t>(config.request_timeout_ms, INT32_MAX));
  req.partitions.push_back({tp, ps.batch->batch});
  core.send(leader, std::move(req), config.request_timeout_ms,
            [this, tp](Result<Response> r) { on_produce_response(tp, std::move(r)); });
}

void SimProducer::State::on_produce_response(const TopicPartition& tp, Result<Response> r) {
  // Runs on an executor event of this process; `this` is alive because ClientCore (a member) drops callbacks
  // once destroyed.
  auto it = partitions.find(tp);
  if (it == partitions.end() || !it->second.batch) return;
  PartitionState& ps = it->second;
  Batch& b = *ps.batch;
  b.in_flight = false;

  ErrorCode err;
  int64_t base_offset = -1;
  std::string message;
  if (!r.ok()) {
    err = r.error().code;
  } else {
    const auto& resp = std::get<ProduceResponse>(r.value());
    assert(resp.partitions.size() == 1);
    err = resp.partitions.front().error;
    base_offset = resp.partitions.front().base_offset;
    message = resp.partitions.front().error_message;
  }

  if (err == ErrorCode::kNone || err == ErrorCode::kDuplicateSequenceNumber) {
    for (size_t i = 0; i < b.callbacks.size(); ++i) {
      const auto& rec = (*b.batch.records)[i];
      record_delivery(tp, rec, base_offset + rec.offset_delta, nullptr);
      report(b.callbacks[i], RecordMetadata{tp, base_offset + rec.offset_delta, rec.timestamp_ms});
    }
    ps.batch.reset();
  } else if (err == ErrorCode::kProducerFenced || err == ErrorCode::kInvalidProducerEpoch ||
             (err == ErrorCode::kOutOfOrderSequenceNumber && idempotent()) ||
             (err == ErrorCode::kUnknownProducerId && idempotent())) {
    const Error e = Error::of(err == ErrorCode::kInvalidProducerEpoch ? ErrorCode::kProducerFenced : err,
                              "produce to " + tp.topic + "-" + std::to_string(tp.partition) + " failed: " + message);
    if (transactional() || err == ErrorCode::kProducerFenced || err == ErrorCode::kInvalidProducerEpoch) set_fatal(e);
    else producer_id = -1;  // idempotence broken: start a new producer id (librdkafka bumps the epoch)
    fail_batch(tp, b, e);
    ps.batch.reset();
  } else if (is_stale_metadata_error(err) || is_retriable(err)) {
    core.invalidate_leader(tp);
    if (now_ms() - b.first_enqueued_ms >= config.delivery_timeout_ms) {
      // The batch may or may not have been written: an idempotent producer cannot reuse its sequences safely.
      const Error e = Error::of(ErrorCode::kMessageTimedOut, "delivery.timeout.ms expired");
      set_abortable(e);
      if (idempotent() && !transactional()) producer_id = -1;
      fail_batch(tp, b, e);
      ps.batch.reset();
    } else {
      b.retry_at_ms = now_ms() + kRetryBackoffMs;
    }
  } else {
    // Permanent for this batch (too large, invalid record, ...): it was not written, so its sequence numbers
    // were not consumed and the next batch reuses them.
    const Error e = Error::of(err, message.empty() ? "produce failed" : message);
    set_abortable(e);
    if (idempotent()) ps.next_sequence = b.batch.base_sequence;
    fail_batch(tp, b, e);
    ps.batch.reset();
  }
  wake_sender();
  if (outstanding == 0 || !ps.batch) wake_flushers();
}

// ------------------------------------------------------------------------------------------------------------
// Transactions

Status SimProducer::init_transactions(int64_t timeout_ms) {
  State& s = *state_;
  if (!s.transactional()) return Error::of(ErrorCode::kState, "init_transactions() needs a transactional_id");
  if (s.fatal()) return *s.txn_error;
  if (s.txn_state != TxnState::kUninit) return Error::of(ErrorCode::kState, "transactions already initialised");
  const int64_t deadline_ms = s.now_ms() + timeout_ms;
  const std::string& id = *s.config.transactional_id;
  while (true) {
    auto coordinator = s.core.find_coordinator(id, CoordinatorType::kTransaction, deadline_ms);
    if (coordinator.ok()) {
      InitProducerIdRequest req;
      req.transactional_id = id;
      req.transaction_timeout_ms = static_cast<int32_t>(s.config.transaction_timeout_ms);
      auto r = s.core.call_as<InitProducerIdResponse>(*coordinator, req,
                                                      std::min(s.config.request_timeout_ms, deadline_ms - s.now_ms()));
      const ErrorCode err = r.ok() ? r->error : r.error().code;
      if (err == ErrorCode::kNone) {
        s.producer_id = r->producer_id;
        s.producer_epoch = r->producer_epoch;
        for (auto& [tp, ps] : s.partitions) ps.next_sequence = 0;
        s.txn_state = TxnState::kReady;
        return {};
      }
      if (err == ErrorCode::kInvalidTransactionTimeout) return Error::of(err, "transaction_timeout_ms rejected");
      if (err == ErrorCode::kProducerFenced) {
        s.set_fatal(Error::of(err, "fenced while initialising"));
        return *s.txn_error;
      }
      if (is_coordinator_error(err)) s.core.invalidate_coordinator(id, CoordinatorType::kTransaction);
    }
    if (!s.core.backoff(deadline_ms))
      return Error{ErrorCode::kTimedOut, "init_transactions timed out", true, false, false};
  }
}

Status SimProducer::begin_transaction() {
  State& s = *state_;
  if (s.fatal()) return *s.txn_error;
  if (s.txn_state != TxnState::kReady || !s.transactional())
    return Error::of(ErrorCode::kState, "begin_transaction() needs an initialised producer outside a transaction");
  s.txn_state = TxnState::kInTransaction;
  s.txn_partitions.clear();
  s.txn_offsets_added = false;
  s.txn_error.reset();
  return {};
}

Status SimProducer::send_offsets_to_transaction(const std::map<TopicPartition, int64_t>& offsets,
                                                const GroupMetadata& group, int64_t timeout_ms) {
  State& s = *state_;
  if (s.fatal() || s.txn_state == TxnState::kAbortableError) return *s.txn_error;
  if (s.txn_state != TxnState::kInTransaction)
    return Error::of(ErrorCode::kState, "send_offsets_to_transaction() outside a transaction");
  if (offsets.empty()) return {};
  if (group.group_id.empty()) return Error::of(ErrorCode::kInvalidArg, "group metadata has no group id");
  const int64_t deadline_ms = s.now_ms() + timeout_ms;
  const std::string& id = *s.config.transactional_id;

  auto fail = [&](ErrorCode err, const std::string& what) -> Status {
    if (err == ErrorCode::kProducerFenced || err == ErrorCode::kInvalidProducerEpoch) {
      s.set_fatal(Error::of(ErrorCode::kProducerFenced, what + ": fenced by a newer producer"));
    } else {
      s.set_abortable(Error::of(err, what));
    }
    // No error recorded if the state moved on meanwhile (an abort_transaction() on another fiber, which
    // librdkafka would refuse as a conflicting call): this call's own error, never an empty optional.
    return s.txn_error.value_or(Error::of(err, what));
  };

  // 1. AddOffsetsToTxn at the transaction coordinator (once per transaction and group).
  while (!s.txn_offsets_added) {
    auto coordinator = s.core.find_coordinator(id, CoordinatorType::kTransaction, deadline_ms);
    ErrorCode err = coordinator.ok() ? ErrorCode::kNone : coordinator.error().code;
    if (coordinator.ok()) {
      auto r = s.core.call_as<AddOffsetsToTxnResponse>(
          *coordinator, AddOffsetsToTxnRequest{id, s.producer_id, s.producer_epoch, group.group_id},
          s.config.request_timeout_ms);
      err = r.ok() ? r->error : r.error().code;
      if (err == ErrorCode::kNone) {
        s.txn_offsets_added = true;
        break;
      }
    }
    if (is_coordinator_error(err)) s.core.invalidate_coordinator(id, CoordinatorType::kTransaction);
    if (err == ErrorCode::kProducerFenced || err == ErrorCode::kInvalidProducerEpoch) return fail(err, "AddOffsetsToTxn");
    const bool retry = is_coordinator_error(err) || err == ErrorCode::kConcurrentTransactions || is_retriable(err);
    if (!retry) return fail(err, "AddOffsetsToTxn");
    if (!s.core.backoff(deadline_ms)) return Error{ErrorCode::kTimedOut, "AddOffsetsToTxn timed out", true, false, false};
  }

  // 2. TxnOffsetCommit at the group coordinator, with the consumer's group metadata (KIP-447).
  while (true) {
    auto coordinator = s.core.find_coordinator(group.group_id, CoordinatorType::kGroup, deadline_ms);
    ErrorCode err = coordinator.ok() ? ErrorCode::kNone : coordinator.error().code;
    if (coordinator.ok()) {
      TxnOffsetCommitRequest req;
      req.transactional_id = id;
      req.group_id = group.group_id;
      req.producer_id = s.producer_id;
      req.producer_epoch = s.producer_epoch;
      req.generation_id = group.generation_id;
      req.member_id = group.member_id;
      req.group_instance_id = group.group_instance_id;
      for (const auto& [tp, offset] : offsets) req.offsets.push_back({tp, offset, -1, {}});
      auto r = s.core.call_as<TxnOffsetCommitResponse>(*coordinator, std::move(req), s.config.request_timeout_ms);
      err = r.ok() ? ErrorCode::kNone : r.error().code;
      if (r.ok())
        for (const auto& p : r->partitions)
          if (p.error != ErrorCode::kNone) err = p.error;
      if (err == ErrorCode::kNone) {
        if (s.history != nullptr) {
          for (const auto& [tp, offset] : offsets) {
            HistoryEvent e = s.history_event(HistoryKind::kTxnOffsetsSent);
            e.tp = tp;
            e.offset = offset;
            e.group = group.group_id;
            s.history->add(std::move(e));
          }
        }
        return {};
      }
    }
    if (is_coordinator_error(err)) s.core.invalidate_coordinator(group.group_id, CoordinatorType::kGroup);
    if (err == ErrorCode::kIllegalGeneration || err == ErrorCode::kUnknownMemberId ||
        err == ErrorCode::kFencedInstanceId || err == ErrorCode::kProducerFenced ||
        err == ErrorCode::kInvalidProducerEpoch || err == ErrorCode::kRebalanceInProgress)
      return fail(err, "TxnOffsetCommit rejected");
    const bool retry = is_coordinator_error(err) || err == ErrorCode::kConcurrentTransactions ||
                       err == ErrorCode::kUnstableOffsetCommit || is_retriable(err);
    if (!retry) return fail(err, "TxnOffsetCommit");
    if (!s.core.backoff(deadline_ms)) return Error{ErrorCode::kTimedOut, "TxnOffsetCommit timed out", true, false, false};
  }
}

Status SimProducer::State::txn_call_end(bool commit, int64_t deadline_ms) {
  const std::string& id = *config.transactional_id;
  while (true) {
    auto coordinator = core.find_coordinator(id, CoordinatorType::kTransaction, deadline_ms);
    ErrorCode err = coordinator.ok() ? ErrorCode::kNone : coordinator.error().code;
    if (coordinator.ok()) {
      auto r = core.call_as<EndTxnResponse>(*coordinator, EndTxnRequest{id, producer_id, producer_epoch, commit},
                                            config.request_timeout_ms);
      err = r.ok() ? r->error : r.error().code;
      if (err == ErrorCode::kNone) return {};
    }
    if (err == ErrorCode::kProducerFenced || err == ErrorCode::kInvalidProducerEpoch) {
      set_fatal(Error::of(ErrorCode::kProducerFenced, "EndTxn: fenced by a newer producer"));
      return *txn_error;
    }
    if (is_coordinator_error(err)) core.invalidate_coordinator(id, CoordinatorType::kTransaction);
    const bool retry = is_coordinator_error(err) || err == ErrorCode::kConcurrentTransactions || is_retriable(err);
    if (!retry) {
      if (commit) set_abortable(Error::of(err, "EndTxn(commit) failed"));
      return txn_error.value_or(Error::of(err, "EndTxn failed"));
    }
    if (!core.backoff(deadline_ms)) return Error{ErrorCode::kTimedOut, "EndTxn timed out", true, false, false};
  }
}

Status SimProducer::commit_transaction(int64_t timeout_ms) {
  State& s = *state_;
  if (s.fatal() || s.txn_state == TxnState::kAbortableError) return *s.txn_error;
  if (s.txn_state != TxnState::kInTransaction)
    return Error::of(ErrorCode::kState, "commit_transaction() outside a transaction");
  const int64_t deadline_ms = s.now_ms() + timeout_ms;
  if (auto flushed = s.wait_all_delivered(deadline_ms); !flushed.ok()) return flushed;
  // A delivery failure during the flush made the transaction abortable.
  if (s.fatal() || s.txn_state == TxnState::kAbortableError) return *s.txn_error;
  if (!s.txn_partitions.empty() || s.txn_offsets_added) {
    s.record_txn(HistoryKind::kTxnCommitStarted, "");
    if (auto ended = s.txn_call_end(true, deadline_ms); !ended.ok()) return ended;
  }
  s.txn_state = TxnState::kReady;
  s.record_txn(HistoryKind::kTxnCommitted, "");
  return {};
}

Status SimProducer::abort_transaction(int64_t timeout_ms) {
  State& s = *state_;
  if (s.fatal()) return *s.txn_error;
  if (s.txn_state != TxnState::kInTransaction && s.txn_state != TxnState::kAbortableError)
    return Error::of(ErrorCode::kState, "abort_transaction() outside a transaction");
  const int64_t deadline_ms = s.now_ms() + timeout_ms;
  // Records not yet in a batch are purged; batches already built (maybe written) must finish, so the abort
  // marker lands after them.
  const Error purged = Error::of(ErrorCode::kFail, "purged: the transaction was aborted");
  for (auto& q : s.unrouted) s.fail_record(q, purged);
  s.unrouted.clear();
  for (auto& [tp, ps] : s.partitions) {
    s.fail_queue(tp, ps.queue, purged);
  }
  if (auto flushed = s.wait_all_delivered(deadline_ms); !flushed.ok()) return flushed;
  if (s.fatal()) return *s.txn_error;
  // Why the transaction ends this way, for the history: the abortable error, if one forced the abort.
  std::string why;
  if (s.history != nullptr)
    why = s.txn_error ? s.txn_error->to_string() : std::string("aborted by the application");
  if (!s.txn_partitions.empty() || s.txn_offsets_added) {
    s.txn_error.reset();
    if (auto ended = s.txn_call_end(false, deadline_ms); !ended.ok()) return ended;
  }
  s.txn_state = TxnState::kReady;
  s.txn_error.reset();
  s.record_txn(HistoryKind::kTxnAborted, std::move(why));
  return {};
}

}  // namespace mephisto::sim
