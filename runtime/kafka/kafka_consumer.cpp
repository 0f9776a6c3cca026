// Consumer over librdkafka's high-level (group) consumer. The main queue is forwarded to the consumer queue
// (rd_kafka_poll_set_consumer), whose wake-up pipe the loop watches; poll() takes what is ready with
// rd_kafka_consumer_poll(rk, 0) — which also runs the rebalance callback on the polling fiber, as the seam
// requires — and otherwise parks until the pipe fires or the deadline passes. Calls that wait for a broker
// answer (commit, committed, seek, watermarks) run on the loop's helper threads.
#include <algorithm>
#include <array>
#include <cstdio>
#include <cstring>
#include <set>

#include "runtime/kafka/kafka_clients.h"
#include "runtime/kafka/rd_config.h"
#include "runtime/kafka/rd_errors.h"
#include "runtime/kafka/rd_group_metadata.h"
#include "runtime/kafka/rd_queue.h"

namespace mephisto::rd {
namespace {

// Bounds on leaving the group: unsubscribe() and close() serve revocations for at most this long.
constexpr int64_t kLeaveTimeoutMs = 30000;
// How often a fiber waiting on librdkafka's own background progress re-checks without a wake-up.
constexpr int64_t kRecheckMs = 100;
// Upper bound on seek()'s wait for the fetcher to take the new position.
constexpr int kSeekTimeoutMs = 10000;
// Pause between seek attempts while a new assignment's fetcher starts.
constexpr int64_t kSeekRetryMs = 20;

Status validate(const ConsumerConfig& config) {
  if (config.session_timeout_ms <= 0 || config.heartbeat_interval_ms <= 0 ||
      config.max_poll_interval_ms <= 0) {
    return Error::of(ErrorCode::kInvalidArg, "consumer timeouts must be positive");
  }
  if (config.heartbeat_interval_ms >= config.session_timeout_ms) {
    return Error::of(ErrorCode::kInvalidArg, "heartbeat_interval_ms must be lower than session_timeout_ms");
  }
  if (config.max_poll_records <= 0)
    return Error::of(ErrorCode::kInvalidArg, "max_poll_records must be positive");
  return {};
}

const char* reset_name(OffsetReset reset) {
  switch (reset) {
    case OffsetReset::kEarliest:
      return "earliest";
    case OffsetReset::kLatest:
      return "latest";
    case OffsetReset::kError:
      return "error";
  }
  return "earliest";
}

Properties typed_properties(const ConsumerConfig& config, const std::string& group_id) {
  Properties p = {
      {"group.id", group_id},
      {"client.id", config.client_id},
      {"isolation.level",
       config.isolation_level == IsolationLevel::kReadCommitted ? "read_committed" : "read_uncommitted"},
      {"auto.offset.reset", reset_name(config.auto_offset_reset)},
      {"partition.assignment.strategy", assignment_strategy_name(config.assignment_strategy)},
      {"session.timeout.ms", std::to_string(config.session_timeout_ms)},
      {"heartbeat.interval.ms", std::to_string(config.heartbeat_interval_ms)},
      {"max.poll.interval.ms", std::to_string(config.max_poll_interval_ms)},
      {"enable.auto.commit", config.enable_auto_commit ? "true" : "false"},
      {"auto.commit.interval.ms", std::to_string(config.auto_commit_interval_ms)},
      // End-of-partition events carry the fetch position, which is past transaction markers: the only way
      // position() can pass a trailing commit marker (librdkafka 2.0.2 moves its own position only on records;
      // librdkafka#2539). A table restore waits for exactly that (runtime/app/table_reader.cpp).
      {"enable.partition.eof", "true"},
      {"allow.auto.create.topics", "false"},
      // librdkafka 2.0.2's fetcher idles about a second whenever the consumer queue (shared by all
      // partitions) passes queued.min.messages (default 100,000); bench_kafka_binding lost ~2/3 of consume
      // throughput to it. A higher count limit leaves queued.max.messages.kbytes (64 MiB by default) as the
      // memory bound.
      {"queued.min.messages", "1000000"},
      // A subscribed topic that another group member created moments ago may be missing from this client's
      // first metadata; librdkafka leaves it out of the subscription until the next refresh (default 5 min, an
      // unbalanced group for that long). 10 s bounds it.
      {"topic.metadata.refresh.interval.ms", "10000"},
  };
  if (config.group_instance_id) p.emplace_back("group.instance.id", *config.group_instance_id);
  return p;
}

std::vector<TopicPartition> to_vector(const rd_kafka_topic_partition_list_t* list) {
  std::vector<TopicPartition> out;
  if (list == nullptr) return out;
  out.reserve(static_cast<size_t>(list->cnt));
  for (int i = 0; i < list->cnt; ++i) out.push_back({list->elems[i].topic, list->elems[i].partition});
  std::sort(out.begin(), out.end());
  return out;
}

PartitionListPtr to_list(const std::vector<TopicPartition>& partitions) {
  PartitionListPtr list(rd_kafka_topic_partition_list_new(static_cast<int>(partitions.size())));
  for (const TopicPartition& tp : partitions)
    rd_kafka_topic_partition_list_add(list.get(), tp.topic.c_str(), tp.partition);
  return list;
}

// The name of a topic handle, cached: handles live as long as the client, and a consumer sees few topics.
class TopicNames {
 public:
  const std::string& of(rd_kafka_topic_t* rkt) {
    if (rkt == last_) return *last_name_;
    auto [it, added] = names_.try_emplace(rkt);
    if (added) it->second = rd_kafka_topic_name(rkt);
    last_ = rkt;
    last_name_ = &it->second;
    return it->second;
  }

 private:
  std::map<rd_kafka_topic_t*, std::string> names_;
  rd_kafka_topic_t* last_ = nullptr;
  const std::string* last_name_ = nullptr;
};

ConsumerRecord to_record(const rd_kafka_message_t& message, TopicNames& names) {
  ConsumerRecord record;
  record.topic = names.of(message.rkt);
  record.partition = message.partition;
  record.offset = message.offset;
  if (message.key != nullptr) record.key.emplace(static_cast<const char*>(message.key), message.key_len);
  if (message.payload != nullptr)
    record.value.emplace(static_cast<const char*>(message.payload), message.len);
  record.timestamp_ms = rd_kafka_message_timestamp(&message, nullptr);
  rd_kafka_headers_t* headers = nullptr;
  if (rd_kafka_message_headers(&message, &headers) == RD_KAFKA_RESP_ERR_NO_ERROR && headers != nullptr) {
    const char* name = nullptr;
    const void* value = nullptr;
    size_t size = 0;
    for (size_t i = 0;
         rd_kafka_header_get_all(headers, i, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR; ++i) {
      Header header{.key = name, .value = std::nullopt};
      if (value != nullptr) header.value.emplace(static_cast<const char*>(value), size);
      record.headers.push_back(std::move(header));
    }
  }
  return record;
}

class KafkaConsumer final : public Consumer {
 public:
  KafkaConsumer(EventLoop& loop, ConsumerConfig config)
      : loop_(loop), config_(std::move(config)), taken_(static_cast<size_t>(config_.max_poll_records)) {}

  // Second phase of construction: the rebalance callback's opaque is `this`, so the handle is made here.
  Status open(const KafkaOptions& options, const std::string& group_id) {
    Result<ConfPtr> conf = build_conf(options, typed_properties(config_, group_id), config_.extra);
    if (!conf.ok()) return conf.error();
    rd_kafka_conf_set_opaque(conf->get(), this);
    rd_kafka_conf_set_rebalance_cb(conf->get(), &KafkaConsumer::rebalance_callback);
    Result<HandlePtr> rk = new_handle(RD_KAFKA_CONSUMER, std::move(*conf), "consumer");
    if (!rk.ok()) return rk.error();
    rk_ = std::move(*rk);
    // Errors, logs and rebalances all come through the consumer queue, served by rd_kafka_consumer_poll.
    if (rd_kafka_resp_err_t err = rd_kafka_poll_set_consumer(rk_.get()); err)
      return to_error(err, "consumer setup");
    queue_.reset(rd_kafka_queue_get_consumer(rk_.get()));
    watch_ = std::make_unique<QueueWatch>(loop_, queue_.get(), [this] { wake_waiters(); });
    return {};
  }

  ~KafkaConsumer() override {
    if (rk_ && !closed_) {
      // Destroyed without close(): leave without serving callbacks (the listener may be gone already).
      listener_ = nullptr;
      destroying_ = true;
      rd_kafka_consumer_close(rk_.get());
    }
    watch_.reset();
    queue_.reset();
    rk_.reset();
  }

  Status subscribe(const std::vector<std::string>& topics, RebalanceListener* listener) override {
    if (closed_) return Error::of(ErrorCode::kDestroy, "consumer is closed");
    if (config_.group_id.empty()) return Error::of(ErrorCode::kInvalidArg, "subscribe() needs a group_id");
    if (topics.empty()) return Error::of(ErrorCode::kInvalidArg, "subscribe() needs at least one topic");
    PartitionListPtr list(rd_kafka_topic_partition_list_new(static_cast<int>(topics.size())));
    for (const std::string& topic : topics) {
      rd_kafka_topic_partition_list_add(list.get(), topic.c_str(), RD_KAFKA_PARTITION_UA);
    }
    listener_ = listener;
    if (rd_kafka_resp_err_t err = rd_kafka_subscribe(rk_.get(), list.get()); err)
      return to_error(err, "subscribe");
    subscribed_ = true;
    return {};
  }

  Status unsubscribe() override {
    if (closed_ || !subscribed_) return {};
    if (rd_kafka_resp_err_t err = rd_kafka_unsubscribe(rk_.get()); err) return to_error(err, "unsubscribe");
    subscribed_ = false;
    // The revocation arrives as a rebalance on the consumer queue: serve it here, so the listener has seen it
    // when unsubscribe() returns (as with the Java client). Records fetched meanwhile are dropped: they
    // belong to partitions being given up.
    const int64_t deadline_ms = loop_.clock().now_ms() + kLeaveTimeoutMs;
    while (!current_assignment().empty() && loop_.clock().now_ms() < deadline_ms) {
      if (MessagePtr message{rd_kafka_consumer_poll(rk_.get(), 0)}) continue;
      park(std::min(deadline_ms, loop_.clock().now_ms() + kRecheckMs));
    }
    if (!current_assignment().empty()) {
      return Error::of(ErrorCode::kTimedOut, "unsubscribe: the group did not revoke the assignment in time");
    }
    return {};
  }

  Status assign(const std::vector<TopicPartition>& partitions) override {
    if (closed_) return Error::of(ErrorCode::kDestroy, "consumer is closed");
    if (subscribed_) return Error::of(ErrorCode::kState, "assign() while subscribed");
    PartitionListPtr list = to_list(partitions);
    // RD_KAFKA_OFFSET_INVALID (the list's default): start at the committed offset, else auto.offset.reset.
    // Without a group there is nothing committed: start at the reset position directly. Asking a private
    // group's offsets instead is a request librdkafka 2.0.2 never retries when it fails once (a broker still
    // loading its offsets), which left the partition unfetchable and every later seek failing.
    if (config_.group_id.empty() && config_.auto_offset_reset != OffsetReset::kError) {
      const int64_t start = config_.auto_offset_reset == OffsetReset::kEarliest ? RD_KAFKA_OFFSET_BEGINNING
                                                                               : RD_KAFKA_OFFSET_END;
      for (int i = 0; i < list->cnt; ++i) list->elems[i].offset = start;
    }
    if (rd_kafka_resp_err_t err = rd_kafka_assign(rk_.get(), list.get()); err) return to_error(err, "assign");
    forget_positions_except(partitions);
    return {};
  }

  [[nodiscard]] std::vector<TopicPartition> assignment() const override { return current_assignment(); }

  Result<std::vector<ConsumerRecord>> poll(int64_t timeout_ms) override {
    if (closed_) return Error::of(ErrorCode::kDestroy, "consumer is closed");
    const int64_t deadline_ms = loop_.clock().now_ms() + timeout_ms;
    std::vector<ConsumerRecord> batch;
    // Sized once from what is already queued: growing the vector record by record showed in profiles.
    batch.reserve(static_cast<size_t>(std::min<int64_t>(
        config_.max_poll_records, static_cast<int64_t>(rd_kafka_queue_length(queue_.get())) + 1)));
    while (true) {
      if (deferred_error_) {
        Error error = std::move(*deferred_error_);
        deferred_error_.reset();
        return error;
      }
      // The first take is rd_kafka_consumer_poll: it runs callbacks (rebalances) and restarts librdkafka's
      // max.poll.interval.ms clock. The rest of the batch comes in one rd_kafka_consume_batch_queue call,
      // which takes the queue's lock once instead of once per record.
      size_t taken = 0;
      if (rd_kafka_message_t* first = rd_kafka_consumer_poll(rk_.get(), 0)) {
        taken_[taken++] = first;
        if (!first->err && config_.max_poll_records > 1) {
          const ssize_t more =
              rd_kafka_consume_batch_queue(queue_.get(), 0, taken_.data() + 1, taken_.size() - 1);
          if (more > 0) taken += static_cast<size_t>(more);
        }
      }
      for (size_t i = 0; i < taken; ++i) {
        MessagePtr message(taken_[i]);
        if (!message->err) {
          batch.push_back(to_record(*message, topic_names_));
          continue;
        }
        if (message->err == RD_KAFKA_RESP_ERR__PARTITION_EOF && message->rkt != nullptr) {
          note_end_of_partition(*message);
          continue;
        }
        if (std::optional<Error> error = consumer_error(*message)) {
          // Records already taken go out first; the error comes with the next poll. Records after the error
          // in this take are kept too (they are later in their partitions).
          if (!deferred_error_) deferred_error_ = std::move(error);
        }
      }
      if (batch.empty() && deferred_error_) continue;
      if (taken > 0 && batch.empty()) continue;  // only errors or callbacks: look again before parking
      if (!batch.empty()) {
        forget_sought_positions(batch);
        return batch;
      }
      if (closed_) return Error::of(ErrorCode::kDestroy, "consumer closed during poll");
      if (loop_.clock().now_ms() >= deadline_ms) return batch;
      // Park until the queue's wake-up (or the deadline); park_unless_ready covers ops left in the queue.
      park_unless_ready(deadline_ms);
    }
  }

  Status seek(const TopicPartition& tp, int64_t offset) override {
    if (!is_assigned(tp)) return Error::of(ErrorCode::kState, "seek() on a partition that is not assigned");
    if (offset < 0) return Error::of(ErrorCode::kInvalidArg, "seek() to a negative offset");
    PartitionListPtr list = to_list({tp});
    list->elems[0].offset = offset;
    if (Status s = seek_fetcher(tp, offset); !s.ok()) return s;
    positions_[tp] = offset;
    return {};
  }

  Result<int64_t> position(const TopicPartition& tp) override {
    if (!is_assigned(tp))
      return Error::of(ErrorCode::kState, "position() of a partition that is not assigned");
    if (auto it = positions_.find(tp); it != positions_.end()) return it->second;
    PartitionListPtr list = to_list({tp});
    if (rd_kafka_resp_err_t err = rd_kafka_position(rk_.get(), list.get()); err)
      return to_error(err, "position");
    if (list->elems[0].offset >= 0) return list->elems[0].offset;
    return resolve_position(tp);
  }

  Status pause(const std::vector<TopicPartition>& partitions) override {
    for (const TopicPartition& tp : partitions) {
      if (!is_assigned(tp))
        return Error::of(ErrorCode::kState, "pause() of a partition that is not assigned");
    }
    PartitionListPtr list = to_list(partitions);
    if (rd_kafka_resp_err_t err = rd_kafka_pause_partitions(rk_.get(), list.get()); err)
      return to_error(err, "pause");
    return {};
  }

  Status resume(const std::vector<TopicPartition>& partitions) override {
    for (const TopicPartition& tp : partitions) {
      if (!is_assigned(tp))
        return Error::of(ErrorCode::kState, "resume() of a partition that is not assigned");
    }
    PartitionListPtr list = to_list(partitions);
    if (rd_kafka_resp_err_t err = rd_kafka_resume_partitions(rk_.get(), list.get()); err) {
      return to_error(err, "resume");
    }
    return {};
  }

  Status commit(const std::map<TopicPartition, int64_t>& offsets, int64_t timeout_ms) override {
    if (closed_) return Error::of(ErrorCode::kDestroy, "consumer is closed");
    if (config_.group_id.empty()) return Error::of(ErrorCode::kInvalidArg, "commit() needs a group_id");
    if (offsets.empty()) return {};
    PartitionListPtr list(rd_kafka_topic_partition_list_new(static_cast<int>(offsets.size())));
    for (const auto& [tp, offset] : offsets) {
      rd_kafka_topic_partition_list_add(list.get(), tp.topic.c_str(), tp.partition)->offset = offset;
    }
    // Not rd_kafka_commit(..., async=0): it waits without a bound, and a member that was expelled (past
    // max.poll.interval.ms) can have its commit parked inside librdkafka until it rejoins, which it never
    // does while the caller waits. The result comes to a private queue instead, waited for at most
    // timeout_ms.
    QueuePtr results(rd_kafka_queue_new(rk_.get()));
    if (rd_kafka_resp_err_t err =
            rd_kafka_commit_queue(rk_.get(), list.get(), results.get(), nullptr, nullptr))
      return with_fatal_cause(rk_.get(), to_error(err, "commit"));
    EventPtr event(loop_.run_blocking([&] {
      return rd_kafka_queue_poll(results.get(), static_cast<int>(std::max<int64_t>(timeout_ms, 0)));
    }));
    if (!event) {
      return Error::of(ErrorCode::kTimedOut, "commit: no answer within " + std::to_string(timeout_ms) +
                                                 " ms (is the member still in "
                                                 "its group, and its coordinator reachable?)");
    }
    rd_kafka_resp_err_t err = rd_kafka_event_error(event.get());
    const rd_kafka_topic_partition_list_t* answered = rd_kafka_event_topic_partition_list(event.get());
    for (int i = 0; err == RD_KAFKA_RESP_ERR_NO_ERROR && answered != nullptr && i < answered->cnt; ++i)
      err = answered->elems[i].err;
    if (err) return with_fatal_cause(rk_.get(), to_error(err, "commit"));
    return {};
  }

  Result<std::map<TopicPartition, int64_t>> committed(const std::vector<TopicPartition>& partitions,
                                                      int64_t timeout_ms) override {
    if (config_.group_id.empty()) return Error::of(ErrorCode::kInvalidArg, "committed() needs a group_id");
    PartitionListPtr list = to_list(partitions);
    rd_kafka_resp_err_t err = loop_.run_blocking(
        [&] { return rd_kafka_committed(rk_.get(), list.get(), static_cast<int>(timeout_ms)); });
    if (err) return to_error(err, "committed");
    std::map<TopicPartition, int64_t> out;
    for (int i = 0; i < list->cnt; ++i) {
      const rd_kafka_topic_partition_t& p = list->elems[i];
      if (p.err) return to_error(p.err, "committed");
      if (p.offset >= 0) out[{p.topic, p.partition}] = p.offset;
    }
    return out;
  }

  Result<std::pair<int64_t, int64_t>> watermarks(const TopicPartition& tp, int64_t timeout_ms) override {
    int64_t low = -1;
    int64_t high = -1;
    // Asks the partition leader (ListOffsets with this consumer's isolation level: the LSO for
    // read_committed).
    rd_kafka_resp_err_t err = loop_.run_blocking([&] {
      return rd_kafka_query_watermark_offsets(rk_.get(), tp.topic.c_str(), tp.partition, &low, &high,
                                              static_cast<int>(timeout_ms));
    });
    if (err) return to_error(err, "watermarks of " + tp.topic + "/" + std::to_string(tp.partition));
    return std::pair<int64_t, int64_t>{low, high};
  }

  [[nodiscard]] GroupMetadata group_metadata() const override {
    GroupMetadataPtr metadata(rd_kafka_consumer_group_metadata(rk_.get()));
    if (!metadata) return {config_.group_id, -1, "", config_.group_instance_id};
    Result<GroupMetadata> read = read_group_metadata(metadata.get());
    // A librdkafka whose layout we cannot read would make every transactional offset commit unfenced: refuse.
    if (!read.ok()) {
      std::fprintf(stderr, "mephisto: %s\n", read.error().message.c_str());
      std::abort();
    }
    return *read;
  }

  Status close() override {
    if (closed_) return {};
    QueuePtr close_queue(rd_kafka_queue_new(rk_.get()));
    // Rebalance callbacks of the final revoke run on this queue, served here on the calling fiber.
    QueueWatch close_watch(loop_, close_queue.get(), [this] { wake_waiters(); });
    ErrorPtr error(rd_kafka_consumer_close_queue(rk_.get(), close_queue.get()));
    Status result;
    if (error) result = to_error(error.get(), "close");
    const int64_t deadline_ms = loop_.clock().now_ms() + kLeaveTimeoutMs;
    while (!error && !rd_kafka_consumer_closed(rk_.get()) && loop_.clock().now_ms() < deadline_ms) {
      // rd_kafka_consume_queue runs callback ops (the final rebalance) and hands back anything else (a record
      // or an error still in flight), which is dropped: the consumer is leaving.
      if (MessagePtr leftover{rd_kafka_consume_queue(close_queue.get(), 0)}) continue;
      park(std::min(deadline_ms, loop_.clock().now_ms() + kRecheckMs));
    }
    closed_ = true;
    subscribed_ = false;
    wake_waiters();
    return result;
  }

 private:
  // Moves librdkafka's fetcher to `offset`. Right after an assignment the partition's fetcher is not started
  // yet and librdkafka answers _STATE; Kafka's clients accept a seek at any time after assign, so retry until
  // the fetcher takes it (bounded).
  Status seek_fetcher(const TopicPartition& tp, int64_t offset) {
    const int64_t deadline_ms = loop_.clock().now_ms() + kSeekTimeoutMs;
    while (true) {
      PartitionListPtr list = to_list({tp});
      list->elems[0].offset = offset;
      ErrorPtr error(loop_.run_blocking(
          [&] { return rd_kafka_seek_partitions(rk_.get(), list.get(), kSeekTimeoutMs); }));
      rd_kafka_resp_err_t err = error ? rd_kafka_error_code(error.get()) : list->elems[0].err;
      if (err == RD_KAFKA_RESP_ERR_NO_ERROR) return {};
      if (err != RD_KAFKA_RESP_ERR__STATE || !is_assigned(tp) || loop_.clock().now_ms() >= deadline_ms) {
        return error ? to_error(error.get(), "seek") : to_error(err, "seek");
      }
      // librdkafka's own threads start the fetcher meanwhile.
      loop_.wait_until_ms(loop_.clock().now_ms() + kSeekRetryMs);
    }
  }

  // librdkafka reports a position only once a record was consumed. Kafka's position() resolves the start the
  // way the fetcher will — the committed offset, else auto.offset.reset against the log — and so does this;
  // the fetcher is then moved there, so the answer and the next record agree even if the log grew meanwhile.
  Result<int64_t> resolve_position(const TopicPartition& tp) {
    std::optional<int64_t> start;
    if (!config_.group_id.empty()) {
      Result<std::map<TopicPartition, int64_t>> committed_offsets = committed({tp}, kSeekTimeoutMs);
      if (!committed_offsets.ok()) return committed_offsets.error();
      if (auto it = committed_offsets->find(tp); it != committed_offsets->end()) start = it->second;
    }
    if (!start) {
      if (config_.auto_offset_reset == OffsetReset::kError) {
        return Error::of(ErrorCode::kNoOffset, "no committed offset and auto.offset.reset=error");
      }
      Result<std::pair<int64_t, int64_t>> marks = watermarks(tp, kSeekTimeoutMs);
      if (!marks.ok()) return marks.error();
      start = config_.auto_offset_reset == OffsetReset::kEarliest ? marks->first : marks->second;
    }
    // A record may have arrived while this fiber waited: then that record's successor is the position.
    if (auto it = positions_.find(tp); it != positions_.end()) return it->second;
    PartitionListPtr consumed = to_list({tp});
    if (rd_kafka_position(rk_.get(), consumed.get()) == RD_KAFKA_RESP_ERR_NO_ERROR &&
        consumed->elems[0].offset >= 0) {
      return consumed->elems[0].offset;
    }
    if (Status s = seek_fetcher(tp, *start); !s.ok()) return s.error();
    positions_[tp] = *start;
    return *start;
  }

  static void rebalance_callback(rd_kafka_t* rk, rd_kafka_resp_err_t err,
                                 rd_kafka_topic_partition_list_t* partitions, void* opaque) {
    static_cast<KafkaConsumer*>(opaque)->on_rebalance(rk, err, partitions);
  }

  void on_rebalance(rd_kafka_t* rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* partitions) {
    // NULL once the member has left the group (e.g. past max.poll.interval.ms, then close()): no protocol, so
    // the eager path (assign nothing) releases what is left.
    const char* protocol = rd_kafka_rebalance_protocol(rk);
    const bool cooperative = protocol != nullptr && std::strcmp(protocol, "COOPERATIVE") == 0;
    const std::vector<TopicPartition> tps = to_vector(partitions);
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
      if (cooperative) {
        ErrorPtr error(rd_kafka_incremental_assign(rk, partitions));
      } else {
        rd_kafka_assign(rk, partitions);
      }
      for (const TopicPartition& tp : tps) positions_.erase(tp);
      // After the assignment took effect, so the listener may seek() the new partitions.
      if (listener_ != nullptr && !destroying_ && !tps.empty()) listener_->on_partitions_assigned(tps);
      return;
    }
    if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS && listener_ != nullptr && !destroying_ && !tps.empty()) {
      // Before the partitions go, so the listener can still commit their offsets (unless they were lost).
      if (rd_kafka_assignment_lost(rk)) {
        listener_->on_partitions_lost(tps);
      } else {
        listener_->on_partitions_revoked(tps);
      }
    }
    if (cooperative) {
      ErrorPtr error(rd_kafka_incremental_unassign(rk, partitions));
    } else {
      rd_kafka_assign(rk, nullptr);
    }
    for (const TopicPartition& tp : tps) positions_.erase(tp);
  }

  // An error delivered in place of a record: kNoOffset and fatal errors go to the caller; connection trouble
  // and the like are retried by librdkafka, and only logged.
  std::optional<Error> consumer_error(const rd_kafka_message_t& message) {
    switch (message.err) {
      case RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET:
        return Error::of(ErrorCode::kNoOffset,
                         std::string("no committed offset and auto.offset.reset=error: ") +
                             rd_kafka_message_errstr(&message));
      case RD_KAFKA_RESP_ERR__FATAL:
        return with_fatal_cause(rk_.get(), to_error(message.err, "consumer"));
      case RD_KAFKA_RESP_ERR__PARTITION_EOF:
      case RD_KAFKA_RESP_ERR__TRANSPORT:
      case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN:
        return std::nullopt;
      default:
        std::fprintf(stderr, "mephisto: Kafka consumer %s: %s (%s)\n", config_.client_id.c_str(),
                     rd_kafka_message_errstr(&message), rd_kafka_err2name(message.err));
        return std::nullopt;
    }
  }

  std::vector<TopicPartition> current_assignment() const {
    rd_kafka_topic_partition_list_t* list = nullptr;
    if (rd_kafka_assignment(rk_.get(), &list) != RD_KAFKA_RESP_ERR_NO_ERROR) return {};
    PartitionListPtr owned(list);
    return to_vector(list);
  }

  bool is_assigned(const TopicPartition& tp) const {
    const std::vector<TopicPartition> current = current_assignment();
    return std::binary_search(current.begin(), current.end(), tp);
  }

  // Once a partition delivered records, librdkafka's position() is exact again; only positions set by seek()
  // or resolve_position() and not yet followed by a record need remembering. Nothing to do in the common
  // case.
  void forget_sought_positions(const std::vector<ConsumerRecord>& batch) {
    if (positions_.empty()) return;
    for (const ConsumerRecord& record : batch) positions_.erase({record.topic, record.partition});
  }

  // The fetcher reached the end of a partition at message.offset (librdkafka drops end events of fetches
  // older than the last seek, so this is the current fetch's). Never moves a sought position backwards.
  void note_end_of_partition(const rd_kafka_message_t& message) {
    const TopicPartition tp{rd_kafka_topic_name(message.rkt), message.partition};
    auto pinned = positions_.find(tp);
    if (pinned != positions_.end() && message.offset < pinned->second) return;
    PartitionListPtr consumed = to_list({tp});
    if (pinned == positions_.end() && rd_kafka_position(rk_.get(), consumed.get()) == RD_KAFKA_RESP_ERR_NO_ERROR &&
        consumed->elems[0].offset > message.offset) {
      return;
    }
    positions_[tp] = message.offset;
  }

  void forget_positions_except(const std::vector<TopicPartition>& keep) {
    const std::set<TopicPartition> kept(keep.begin(), keep.end());
    std::erase_if(positions_, [&](const auto& entry) { return !kept.contains(entry.first); });
  }

  // librdkafka writes the wake-up byte only when its queue goes from empty to non-empty, and
  // rd_kafka_consumer_poll(rk, 0) can return nothing while ops are still queued (it serves an internal op,
  // such as an outdated fetch after a seek, and returns). Parking then would wait for a wake-up that never
  // comes (seen as polls sleeping to their deadline with thousands of records queued), so park only on an
  // empty queue.
  void park_unless_ready(int64_t deadline_ms) {
    if (rd_kafka_queue_length(queue_.get()) > 0) {
      loop_.yield();
      return;
    }
    park(deadline_ms);
  }

  // Parks the calling fiber until the consumer's queue (or the close queue) has something, or the deadline.
  void park(int64_t deadline_ms) {
    const FiberId self = loop_.current();
    waiters_.insert(self);
    loop_.park_until(deadline_ms);
    waiters_.erase(self);
  }

  void wake_waiters() {
    for (FiberId fiber : waiters_) loop_.wake(fiber);
  }

  EventLoop& loop_;
  const ConsumerConfig config_;
  HandlePtr rk_;
  QueuePtr queue_;
  std::unique_ptr<QueueWatch> watch_;
  RebalanceListener* listener_ = nullptr;
  std::set<FiberId> waiters_;
  // Positions set by seek() or resolve_position() that no record has followed yet (librdkafka's position()
  // reports only consumed records).
  std::map<TopicPartition, int64_t> positions_;
  // Messages of one take (rd_kafka_consumer_poll + rd_kafka_consume_batch_queue), max_poll_records long.
  std::vector<rd_kafka_message_t*> taken_;
  // Topic names by librdkafka topic handle, so a record's topic is a copy, not a strlen + construct.
  TopicNames topic_names_;
  std::optional<Error> deferred_error_;
  bool subscribed_ = false;
  bool closed_ = false;
  bool destroying_ = false;
};

// Kafka wants a group id for any consumer; assign()-only use without one gets a private group that never
// commits, so "committed offset" is always absent and auto.offset.reset decides, as the seam says.
std::string effective_group_id(const ConsumerConfig& config, const void* unique) {
  if (!config.group_id.empty()) return config.group_id;
  std::array<char, 64> name{};
  std::snprintf(name.data(), name.size(), "mephisto-assign-only-%p", unique);
  return name.data();
}

}  // namespace

Result<std::unique_ptr<Consumer>> make_consumer(EventLoop& loop, const KafkaOptions& options,
                                                const ConsumerConfig& config) {
  if (Status s = validate(config); !s.ok()) return s.error();
  auto consumer = std::make_unique<KafkaConsumer>(loop, config);
  if (Status s = consumer->open(options, effective_group_id(config, consumer.get())); !s.ok())
    return s.error();
  return std::unique_ptr<Consumer>(std::move(consumer));
}

}  // namespace mephisto::rd
