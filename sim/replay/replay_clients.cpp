#include "sim/replay/replay_clients.h"

#include <deque>
#include <set>
#include <sstream>

#include <fmt/format.h>

#include "runtime/store/memory_store.h"

namespace mephisto::replay {
namespace {

ConsumerRecord to_consumer_record(const trace::Record& r) {
  ConsumerRecord out;
  out.topic = r.topic();
  out.partition = r.partition();
  out.offset = r.offset();
  if (r.has_key()) out.key = r.key();
  if (r.has_value()) out.value = r.value();
  out.timestamp_ms = r.timestamp_ms();
  for (const auto& h : r.headers()) {
    out.headers.push_back({h.key(), h.has_value() ? std::optional<std::string>(h.value()) : std::nullopt});
  }
  return out;
}

std::vector<TopicPartition> to_partitions(const google::protobuf::RepeatedPtrField<trace::Partition>& in) {
  std::vector<TopicPartition> out;
  for (const auto& p : in) out.push_back({p.topic(), p.partition()});
  return out;
}

class ReplayAdmin final : public Admin {
 public:
  explicit ReplayAdmin(std::map<std::string, int32_t>* topics) : topics_(topics) {}
  Status create_topic(const TopicSpec& spec, int64_t timeout_ms) override {
    (void)timeout_ms;
    if (topics_->count(spec.name) > 0) {
      return Error::of(ErrorCode::kTopicAlreadyExists, "topic '" + spec.name + "' already exists");
    }
    (*topics_)[spec.name] = spec.partitions;
    return {};
  }
  Status delete_topic(const std::string& name, int64_t timeout_ms) override {
    (void)timeout_ms;
    return topics_->erase(name) > 0
               ? Status{}
               : Error::of(ErrorCode::kUnknownTopicOrPartition, "no topic '" + name + "'");
  }
  Result<TopicDescription> describe_topic(const std::string& name, int64_t timeout_ms) override {
    (void)timeout_ms;
    auto found = topics_->find(name);
    if (found == topics_->end()) {
      return Error::of(ErrorCode::kUnknownTopicOrPartition, "topic '" + name + "' is not in the recording");
    }
    TopicDescription description{name, {}};
    for (int32_t p = 0; p < found->second; ++p) description.partitions.push_back({p, 0, {0}, {0}});
    return description;
  }
  Result<std::vector<std::string>> list_topics(int64_t timeout_ms) override {
    (void)timeout_ms;
    std::vector<std::string> names;
    for (const auto& [name, count] : *topics_) names.push_back(name);
    return names;
  }

 private:
  std::map<std::string, int32_t>* topics_;
};

// Delivery reports come from a fiber of their own, after send() returned, as a real client's do.
class ReplayProducer final : public Producer {
 public:
  ReplayProducer(ReplaySession* session, Scheduler* scheduler) : state_(std::make_shared<State>()) {
    state_->session = session;
    state_->scheduler = scheduler;
  }
  Status send(ProducerRecord record, DeliveryCallback on_delivery) override {
    const ReplaySession::Delivery delivery = state_->session->take_delivery();
    Result<RecordMetadata> result = RecordMetadata{};
    if (!delivery.status.ok()) {
      result = delivery.status.error();
    } else {
      RecordMetadata metadata;
      metadata.tp = {record.topic,
                     delivery.partition >= 0 ? delivery.partition : std::max(record.partition, 0)};
      metadata.offset = delivery.offset;
      metadata.timestamp_ms = record.timestamp_ms;
      result = metadata;
    }
    if (delivery.not_before_event >= 0) {
      // A recorded failure: reported where the recorded worker got it, not at once (it may have gone on
      // processing for a while first).
      std::shared_ptr<State> state = state_;
      const int64_t at = delivery.not_before_event;
      state_->scheduler->spawn("replay-failed-delivery",
                               [state, at, callback = std::move(on_delivery), result = std::move(result)] {
                                 state->session->wait_until_fed(at);
                                 if (callback) callback(result);
                               });
      return {};
    }
    state_->queue.push_back({std::move(on_delivery), std::move(result)});
    if (!state_->delivering) {
      state_->delivering = true;
      std::shared_ptr<State> state = state_;
      state_->scheduler->spawn("replay-delivery", [state] { deliver(*state); });
    }
    return {};
  }
  Status flush(int64_t timeout_ms) override {
    (void)timeout_ms;  // deliveries take no virtual time
    while (!state_->queue.empty()) {
      state_->flushers.push_back(state_->scheduler->current());
      state_->scheduler->park_until(INT64_MAX);
    }
    return {};
  }
  Status init_transactions(int64_t timeout_ms) override {
    (void)timeout_ms;
    return {};
  }
  Status begin_transaction() override { return {}; }
  Status send_offsets_to_transaction(const std::map<TopicPartition, int64_t>& offsets,
                                     const GroupMetadata& group, int64_t timeout_ms) override {
    (void)offsets;
    (void)group;
    (void)timeout_ms;
    return {};
  }
  Status commit_transaction(int64_t timeout_ms) override { return flush(timeout_ms); }
  Status abort_transaction(int64_t timeout_ms) override { return flush(timeout_ms); }

 private:
  struct Pending {
    DeliveryCallback callback;
    Result<RecordMetadata> result;
  };
  struct State {
    ReplaySession* session = nullptr;
    Scheduler* scheduler = nullptr;
    std::deque<Pending> queue;
    std::vector<FiberId> flushers;
    bool delivering = false;
  };
  static void deliver(State& state) {
    while (!state.queue.empty()) {
      Pending pending = std::move(state.queue.front());
      state.queue.pop_front();
      if (pending.callback) pending.callback(pending.result);
    }
    state.delivering = false;
    for (FiberId fiber : state.flushers) state.scheduler->wake(fiber);
    state.flushers.clear();
  }
  std::shared_ptr<State> state_;
};

class ReplayConsumer final : public Consumer {
 public:
  ReplayConsumer(ReplaySession* session, Scheduler* scheduler, const Clock* clock, ConsumerConfig config,
                 bool group)
      : session_(session), scheduler_(scheduler), clock_(clock), config_(std::move(config)), group_(group) {}

  Status subscribe(const std::vector<std::string>& topics, RebalanceListener* listener) override {
    if (config_.group_id.empty() || topics.empty()) {
      return Error::of(ErrorCode::kInvalidArg, "subscribe needs a group id and topics");
    }
    subscribed_ = true;
    listener_ = listener;
    return {};
  }
  Status unsubscribe() override {
    subscribed_ = false;
    return {};
  }
  Status assign(const std::vector<TopicPartition>& partitions) override {
    assigned_ = {partitions.begin(), partitions.end()};
    return {};
  }
  [[nodiscard]] std::vector<TopicPartition> assignment() const override {
    return {assigned_.begin(), assigned_.end()};
  }

  Result<std::vector<ConsumerRecord>> poll(int64_t timeout_ms) override {
    const int64_t deadline_ms = clock_->now_ms() + std::max<int64_t>(timeout_ms, 0);
    std::vector<ConsumerRecord> out;
    if (group_ && subscribed_) {
      std::vector<const trace::Record*> records;
      const trace::Event* event = session_->next_group_input(paused_, deadline_ms, &records);
      if (event == nullptr) return out;
      if (event->has_assigned()) {
        const std::vector<TopicPartition> partitions = to_partitions(event->assigned().partitions());
        assigned_.insert(partitions.begin(), partitions.end());
        if (listener_ != nullptr) listener_->on_partitions_assigned(partitions);
      } else if (event->has_revoked()) {
        const std::vector<TopicPartition> partitions = to_partitions(event->revoked().partitions());
        for (const TopicPartition& tp : partitions) {
          assigned_.erase(tp);
          paused_.erase(tp);
        }
        if (listener_ != nullptr && event->revoked().lost()) listener_->on_partitions_lost(partitions);
        if (listener_ != nullptr && !event->revoked().lost()) listener_->on_partitions_revoked(partitions);
      } else {
        for (const trace::Record* r : records) out.push_back(to_consumer_record(*r));
      }
      return out;
    }
    if (!group_ && !assigned_.empty()) {
      const trace::Event* event = session_->next_table_batch(assigned_, deadline_ms);
      if (event == nullptr) return out;
      for (const auto& r : event->table_applied().records()) {
        out.push_back(to_consumer_record(r));
        positions_[{r.topic(), r.partition()}] = r.offset() + 1;
      }
      return out;
    }
    // Nothing to read for this consumer (another group's, or nothing assigned): wait out the timeout.
    if (deadline_ms > clock_->now_ms()) scheduler_->park_until(deadline_ms);
    return out;
  }

  Status seek(const TopicPartition& tp, int64_t offset) override {
    positions_[tp] = offset;
    return {};
  }
  Result<int64_t> position(const TopicPartition& tp) override {
    auto found = positions_.find(tp);
    const int64_t fallback = found == positions_.end() ? -1 : found->second;
    const int64_t position = session_->reader_position(tp, fallback);
    if (position < 0) return Error::of(ErrorCode::kNoOffset, "no position yet");
    return position;
  }
  Status pause(const std::vector<TopicPartition>& partitions) override {
    paused_.insert(partitions.begin(), partitions.end());
    return {};
  }
  Status resume(const std::vector<TopicPartition>& partitions) override {
    for (const TopicPartition& tp : partitions) paused_.erase(tp);
    return {};
  }
  Status commit(const std::map<TopicPartition, int64_t>& offsets, int64_t timeout_ms) override {
    (void)offsets;
    (void)timeout_ms;
    return {};
  }
  Result<std::map<TopicPartition, int64_t>> committed(const std::vector<TopicPartition>& partitions,
                                                      int64_t timeout_ms) override {
    (void)partitions;
    (void)timeout_ms;
    return std::map<TopicPartition, int64_t>{};
  }
  Result<std::pair<int64_t, int64_t>> watermarks(const TopicPartition& tp, int64_t timeout_ms) override {
    const std::optional<int64_t> end =
        session_->next_restore_end(tp, clock_->now_ms() + std::max<int64_t>(timeout_ms, 0));
    if (!end.has_value()) {
      return Error::of(ErrorCode::kTimedOut,
                       fmt::format("{}[{}]: no recorded end offset is due", tp.topic, tp.partition));
    }
    return std::pair<int64_t, int64_t>{0, *end};
  }
  [[nodiscard]] GroupMetadata group_metadata() const override {
    return {config_.group_id, 1, "replay", std::nullopt};
  }
  Status close() override { return {}; }

 private:
  ReplaySession* session_;
  Scheduler* scheduler_;
  const Clock* clock_;
  ConsumerConfig config_;
  bool group_;
  bool subscribed_ = false;
  RebalanceListener* listener_ = nullptr;
  std::set<TopicPartition> assigned_;
  std::set<TopicPartition> paused_;
  std::map<TopicPartition, int64_t> positions_;
};

}  // namespace

std::map<std::string, int32_t> declared_topics(const trace::TraceHeader& header) {
  std::map<std::string, int32_t> out;
  for (const std::string& line : header.declarations()) {
    std::istringstream words(line);
    std::string kind;
    std::string name;
    std::string partitions;
    words >> kind >> name >> partitions;
    if (kind != "topic" || partitions.rfind("partitions=", 0) != 0) continue;
    try {
      out[name] = std::stoi(partitions.substr(11));
    } catch (const std::exception&) {
      // A damaged declaration leaves the topic unknown: the replayed worker then says which topic is missing.
    }
  }
  return out;
}

ReplayBrokerClient::ReplayBrokerClient(ReplaySession* session, Scheduler* scheduler, const Clock* clock,
                                       std::string app_id, std::map<std::string, int32_t> topics)
    : session_(session),
      scheduler_(scheduler),
      clock_(clock),
      app_id_(std::move(app_id)),
      topics_(std::move(topics)) {}

Result<std::unique_ptr<Admin>> ReplayBrokerClient::admin() {
  return std::unique_ptr<Admin>(std::make_unique<ReplayAdmin>(&topics_));
}

Result<std::unique_ptr<Producer>> ReplayBrokerClient::producer(const ProducerConfig& config) {
  (void)config;
  return std::unique_ptr<Producer>(std::make_unique<ReplayProducer>(session_, scheduler_));
}

Result<std::unique_ptr<Consumer>> ReplayBrokerClient::consumer(const ConsumerConfig& config) {
  const bool group = !config.group_id.empty() && config.group_id == app_id_;
  return std::unique_ptr<Consumer>(
      std::make_unique<ReplayConsumer>(session_, scheduler_, clock_, config, group));
}

ReplayStoreFactory::ReplayStoreFactory(ReplaySession* session) : session_(session) {}

Result<std::unique_ptr<store::TableStore>> ReplayStoreFactory::open(const std::string& table,
                                                                    int32_t partition) {
  auto partition_state = std::make_shared<store::MemoryPartition>();
  const std::optional<const trace::TableOpened*> snapshot = session_->take_table_snapshot(table, partition);
  if (snapshot.has_value()) {
    const trace::TableOpened& opened = **snapshot;
    if (opened.entries() > 0 && opened.contents_size() == 0) {
      return Error::of(
          ErrorCode::kInvalidArg,
          fmt::format("table '{}' partition {}: the recorded store held {} entries but the trace has "
                      "only their hash (recorded with --record-hashes): replay needs a trace "
                      "recorded with payloads",
                      table, partition, opened.entries()));
    }
    for (const auto& entry : opened.contents()) partition_state->data[entry.key()] = entry.value();
    if (opened.has_applied_offset()) partition_state->applied_offset = opened.applied_offset();
  }
  return std::unique_ptr<store::TableStore>(std::make_unique<store::MemoryStore>(partition_state));
}

Status ReplayStoreFactory::wipe(const std::string& table, int32_t partition) {
  (void)table;
  (void)partition;
  return {};
}

}  // namespace mephisto::replay
