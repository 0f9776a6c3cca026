// Producer over librdkafka. Delivery reports are events (rd_kafka_conf_set_events(RD_KAFKA_EVENT_DR)) on the
// main queue, served on the loop thread whenever its wake-up pipe fires; each runs its record's callback
// there. Using events, not dr_msg_cb, matters: librdkafka's flush and commit_transaction then wait for the
// application to serve the reports instead of serving them themselves, so those blocking calls can run on a
// helper thread while every callback still runs on the loop thread.
#include <algorithm>
#include <array>
#include <cstdio>

#include "runtime/kafka/kafka_clients.h"
#include "runtime/kafka/rd_config.h"
#include "runtime/kafka/rd_errors.h"
#include "runtime/kafka/rd_queue.h"

namespace mephisto::rd {
namespace {

// Bound on how long destruction waits for librdkafka to hand back purged records (their callbacks are
// dropped).
constexpr int kDestroyDrainMs = 5000;

Status validate(const ProducerConfig& config) {
  if (config.acks != -1 && config.acks != 0 && config.acks != 1) {
    return Error::of(ErrorCode::kInvalidArg, "acks must be -1, 0 or 1, not " + std::to_string(config.acks));
  }
  if ((config.enable_idempotence || config.transactional_id) && config.acks != -1) {
    return Error::of(ErrorCode::kInvalidArg, "idempotence and transactions require acks=-1 (all)");
  }
  if (config.transactional_id && config.transactional_id->empty()) {
    return Error::of(ErrorCode::kInvalidArg, "transactional_id must not be empty");
  }
  if (config.queue_max_records <= 0 || config.transaction_timeout_ms <= 0 || config.request_timeout_ms <= 0 ||
      config.delivery_timeout_ms <= 0 || config.linger_ms < 0 || config.max_in_flight <= 0) {
    return Error::of(ErrorCode::kInvalidArg,
                     "queue_max_records, max_in_flight and timeouts must be positive");
  }
  return {};
}

Properties typed_properties(const ProducerConfig& config) {
  Properties p = {
      {"client.id", config.client_id},
      {"acks", std::to_string(config.acks)},
      {"enable.idempotence", config.enable_idempotence || config.transactional_id ? "true" : "false"},
      {"linger.ms", std::to_string(config.linger_ms)},
      {"request.timeout.ms", std::to_string(config.request_timeout_ms)},
      // librdkafka requires a transactional producer's delivery timeout to fit in the transaction timeout.
      {"delivery.timeout.ms", std::to_string(config.transactional_id ? std::min(config.delivery_timeout_ms,
                                                                                config.transaction_timeout_ms)
                                                                     : config.delivery_timeout_ms)},
      {"max.in.flight.requests.per.connection", std::to_string(config.max_in_flight)},
      {"queue.buffering.max.messages", std::to_string(config.queue_max_records)},
      // The seam's partitioner is Kafka's (Java) default: murmur2 of the key, random for null keys.
      {"partitioner", "murmur2_random"},
      // Producing to a missing topic is an error, never a silent topic creation.
      {"allow.auto.create.topics", "false"},
  };
  if (config.transactional_id) {
    p.emplace_back("transactional.id", *config.transactional_id);
    p.emplace_back("transaction.timeout.ms", std::to_string(config.transaction_timeout_ms));
  }
  return p;
}

class KafkaProducer final : public Producer {
 public:
  KafkaProducer(EventLoop& loop, HandlePtr rk, bool transactional)
      : loop_(loop),
        rk_(std::move(rk)),
        main_(rd_kafka_queue_get_main(rk_.get())),
        transactional_(transactional) {
    watch_ = std::make_unique<QueueWatch>(loop_, main_.get(), [this] { serve_events(); });
  }

  ~KafkaProducer() override {
    // Records still queued are dropped (the seam has no close(); callers flush first). Their reports still
    // come back as events, which must be served so librdkafka can free them and we can free their callbacks.
    closing_ = true;
    rd_kafka_purge(rk_.get(), RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_NON_BLOCKING);
    for (int waited_ms = 0; rd_kafka_outq_len(rk_.get()) > 0 && waited_ms < kDestroyDrainMs;
         waited_ms += 10) {
      EventPtr event(rd_kafka_queue_poll(main_.get(), 10));
      if (event) handle_event(event.get());
    }
    serve_events();
    watch_.reset();
    main_.reset();
    rk_.reset();
  }

  Status send(ProducerRecord record, DeliveryCallback on_delivery) override {
    if (fatal_) return *fatal_;
    if (record.topic.empty()) return Error::of(ErrorCode::kInvalidArg, "record has no topic");
    rd_kafka_headers_t* headers = nullptr;
    if (!record.headers.empty()) {
      headers = rd_kafka_headers_new(record.headers.size());
      for (const Header& h : record.headers) {
        (void)rd_kafka_header_add(headers, h.key.data(), static_cast<ssize_t>(h.key.size()),
                                  h.value ? h.value->data() : nullptr,
                                  h.value ? static_cast<ssize_t>(h.value->size()) : 0);
      }
    }
    auto* callback = on_delivery ? new DeliveryCallback(std::move(on_delivery)) : nullptr;
    std::array<rd_kafka_vu_t, 8> vus{};
    size_t n = 0;
    vus[n].vtype = RD_KAFKA_VTYPE_TOPIC;
    vus[n++].u.cstr = record.topic.c_str();
    vus[n].vtype = RD_KAFKA_VTYPE_PARTITION;
    vus[n++].u.i32 = record.partition < 0 ? RD_KAFKA_PARTITION_UA : record.partition;
    vus[n].vtype = RD_KAFKA_VTYPE_MSGFLAGS;
    vus[n++].u.i = RD_KAFKA_MSG_F_COPY;
    vus[n].vtype = RD_KAFKA_VTYPE_KEY;
    vus[n].u.mem.ptr = record.key ? const_cast<char*>(record.key->data()) : nullptr;
    vus[n++].u.mem.size = record.key ? record.key->size() : 0;
    vus[n].vtype = RD_KAFKA_VTYPE_VALUE;
    vus[n].u.mem.ptr = record.value ? const_cast<char*>(record.value->data()) : nullptr;
    vus[n++].u.mem.size = record.value ? record.value->size() : 0;
    vus[n].vtype = RD_KAFKA_VTYPE_OPAQUE;
    vus[n++].u.ptr = callback;
    if (record.timestamp_ms >= 0) {
      vus[n].vtype = RD_KAFKA_VTYPE_TIMESTAMP;
      vus[n++].u.i64 = record.timestamp_ms;
    }
    if (headers != nullptr) {
      vus[n].vtype = RD_KAFKA_VTYPE_HEADERS;
      vus[n++].u.headers = headers;
    }
    ErrorPtr error(rd_kafka_produceva(rk_.get(), vus.data(), n));
    if (!error) return {};
    // On failure librdkafka keeps nothing: the headers and the callback are still ours.
    if (headers != nullptr) rd_kafka_headers_destroy(headers);
    delete callback;
    return classify(to_error(error.get(), "send to topic " + record.topic));
  }

  Status flush(int64_t timeout_ms) override {
    // rd_kafka_flush also makes librdkafka send lingering batches at once. In event mode it only waits for
    // the reports to be served, which the loop keeps doing while this fiber is parked.
    rd_kafka_resp_err_t err =
        loop_.run_blocking([&] { return rd_kafka_flush(rk_.get(), static_cast<int>(timeout_ms)); });
    if (err == RD_KAFKA_RESP_ERR__TIMED_OUT) {
      return Error::of(ErrorCode::kTimedOut, std::to_string(rd_kafka_outq_len(rk_.get())) +
                                                 " records still awaiting delivery after " +
                                                 std::to_string(timeout_ms) + " ms");
    }
    if (err) return to_error(err, "flush");
    return {};
  }

  Status init_transactions(int64_t timeout_ms) override {
    if (!transactional_) return Error::of(ErrorCode::kState, "init_transactions() needs a transactional_id");
    return txn_call("init_transactions",
                    [&] { return rd_kafka_init_transactions(rk_.get(), static_cast<int>(timeout_ms)); });
  }

  Status begin_transaction() override {
    if (!transactional_) return Error::of(ErrorCode::kState, "begin_transaction() needs a transactional_id");
    // Local state change only: no broker round trip, so no helper thread.
    ErrorPtr error(rd_kafka_begin_transaction(rk_.get()));
    return txn_result(std::move(error), "begin_transaction");
  }

  Status send_offsets_to_transaction(const std::map<TopicPartition, int64_t>& offsets,
                                     const GroupMetadata& group, int64_t timeout_ms) override {
    if (!transactional_)
      return Error::of(ErrorCode::kState, "send_offsets_to_transaction() needs a transactional_id");
    if (group.group_id.empty()) return Error::of(ErrorCode::kInvalidArg, "group metadata has no group id");
    PartitionListPtr list(rd_kafka_topic_partition_list_new(static_cast<int>(offsets.size())));
    for (const auto& [tp, offset] : offsets) {
      rd_kafka_topic_partition_list_add(list.get(), tp.topic.c_str(), tp.partition)->offset = offset;
    }
    GroupMetadataPtr metadata(rd_kafka_consumer_group_metadata_new_with_genid(
        group.group_id.c_str(), group.generation_id, group.member_id.c_str(),
        group.group_instance_id ? group.group_instance_id->c_str() : nullptr));
    return txn_call("send_offsets_to_transaction", [&] {
      return rd_kafka_send_offsets_to_transaction(rk_.get(), list.get(), metadata.get(),
                                                  static_cast<int>(timeout_ms));
    });
  }

  Status commit_transaction(int64_t timeout_ms) override {
    if (!transactional_) return Error::of(ErrorCode::kState, "commit_transaction() needs a transactional_id");
    return txn_call("commit_transaction",
                    [&] { return rd_kafka_commit_transaction(rk_.get(), static_cast<int>(timeout_ms)); });
  }

  Status abort_transaction(int64_t timeout_ms) override {
    if (!transactional_) return Error::of(ErrorCode::kState, "abort_transaction() needs a transactional_id");
    return txn_call("abort_transaction",
                    [&] { return rd_kafka_abort_transaction(rk_.get(), static_cast<int>(timeout_ms)); });
  }

 private:
  // Runs a blocking transactional call on a helper thread (it waits for the coordinator, and commit also for
  // every delivery report, which this loop serves meanwhile).
  template <typename F>
  Status txn_call(const char* what, F&& call) {
    if (fatal_) return *fatal_;
    ErrorPtr error(loop_.run_blocking(std::forward<F>(call)));
    return txn_result(std::move(error), what);
  }

  Status txn_result(ErrorPtr error, const char* what) {
    if (!error) return {};
    return classify(to_error(error.get(), what));
  }

  // Keeps fatal errors sticky and names fencing distinctly (kProducerFenced).
  Error classify(Error error) {
    if (error.fatal || error.code == ErrorCode::kFatal) {
      error = with_fatal_cause(rk_.get(), std::move(error));
      fatal_ = error;
    }
    return error;
  }

  void serve_events() {
    while (EventPtr event{rd_kafka_queue_poll(main_.get(), 0)}) handle_event(event.get());
  }

  void handle_event(rd_kafka_event_t* event) {
    switch (rd_kafka_event_type(event)) {
      case RD_KAFKA_EVENT_DR: {
        while (const rd_kafka_message_t* message = rd_kafka_event_message_next(event)) deliver(*message);
        break;
      }
      case RD_KAFKA_EVENT_ERROR: {
        const rd_kafka_resp_err_t err = rd_kafka_event_error(event);
        if (rd_kafka_event_error_is_fatal(event)) {
          fatal_ = with_fatal_cause(rk_.get(), to_error(err, "producer"));
        } else if (err != RD_KAFKA_RESP_ERR__TRANSPORT && err != RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) {
          // Transient connection errors are retried by librdkafka and only add noise.
          std::fprintf(stderr, "mephisto: Kafka producer: %s (%s)\n", rd_kafka_event_error_string(event),
                       rd_kafka_err2name(err));
        }
        break;
      }
      default:
        break;
    }
  }

  void deliver(const rd_kafka_message_t& message) {
    auto* callback = static_cast<DeliveryCallback*>(message._private);
    if (callback == nullptr) return;
    std::unique_ptr<DeliveryCallback> owned(callback);
    if (closing_) return;
    const char* topic = rd_kafka_topic_name(message.rkt);
    if (message.err) {
      Error error = to_error(message.err,
                             std::string("delivery to ") + topic + "/" + std::to_string(message.partition));
      // In a transaction any failed record makes the transaction abortable (librdkafka's rule).
      if (transactional_) error.txn_requires_abort = true;
      if (error.fatal || message.err == RD_KAFKA_RESP_ERR__FATAL) error = classify(std::move(error));
      (*owned)(Result<RecordMetadata>(std::move(error)));
      return;
    }
    // One report object reused while the topic stays the same: a new topic string per record was the largest
    // cost of serving delivery reports. Callbacks get it by const reference and must copy what they keep.
    if (message.rkt != report_topic_) {
      report_topic_ = message.rkt;
      report_ = Result<RecordMetadata>(RecordMetadata{.tp = {topic, 0}, .offset = -1, .timestamp_ms = -1});
    }
    RecordMetadata& metadata = report_->value();
    metadata.tp.partition = message.partition;
    metadata.offset = message.offset;
    metadata.timestamp_ms = rd_kafka_message_timestamp(&message, nullptr);
    (*owned)(*report_);
  }

  EventLoop& loop_;
  HandlePtr rk_;
  QueuePtr main_;
  std::unique_ptr<QueueWatch> watch_;
  const bool transactional_;
  bool closing_ = false;
  std::optional<Error> fatal_;
  // The reused success report of deliver() and the topic handle it names.
  rd_kafka_topic_t* report_topic_ = nullptr;
  std::optional<Result<RecordMetadata>> report_;
};

}  // namespace

Result<std::unique_ptr<Producer>> make_producer(EventLoop& loop, const KafkaOptions& options,
                                                const ProducerConfig& config) {
  if (Status s = validate(config); !s.ok()) return s.error();
  Result<ConfPtr> conf = build_conf(options, typed_properties(config), config.extra);
  if (!conf.ok()) return conf.error();
  rd_kafka_conf_set_events(conf->get(), RD_KAFKA_EVENT_DR | RD_KAFKA_EVENT_ERROR);
  Result<HandlePtr> rk = new_handle(RD_KAFKA_PRODUCER, std::move(*conf), "producer");
  if (!rk.ok()) return rk.error();
  return std::unique_ptr<Producer>(
      std::make_unique<KafkaProducer>(loop, std::move(*rk), config.transactional_id.has_value()));
}

}  // namespace mephisto::rd
