#include "tests/conformance/helpers.h"

#include <algorithm>
#include <sstream>

namespace mephisto::conformance {

std::string describe(const Error& error) {
  std::ostringstream out;
  out << error.code << " (" << static_cast<int>(error.code) << ")";
  if (!error.message.empty()) out << ": " << error.message;
  if (error.retriable) out << " [retriable]";
  if (error.fatal) out << " [fatal]";
  if (error.txn_requires_abort) out << " [txn_requires_abort]";
  return out.str();
}

// ------------------------------------------------------------------------------------------------------------
// Time

void sleep_for(Env& env, int64_t duration_ms) {
  env.scheduler->wait_until_ms(env.clock->now_ms() + duration_ms);
}

bool wait_until(Env& env, const std::function<bool()>& condition, int64_t timeout_ms, int64_t step_ms) {
  const int64_t deadline = env.clock->now_ms() + timeout_ms;
  while (!condition()) {
    if (env.clock->now_ms() >= deadline) return false;
    env.scheduler->wait_until_ms(std::min(deadline, env.clock->now_ms() + step_ms));
  }
  return true;
}

// ------------------------------------------------------------------------------------------------------------
// Clients

namespace {
// A client the case needs, or nullptr with the binding's error recorded as a test failure.
template <typename Client>
std::unique_ptr<Client> client_or_failure(Result<std::unique_ptr<Client>> created, const char* what) {
  if (!created.ok()) {
    ADD_FAILURE() << what << ": " << describe(created.error());
    return nullptr;
  }
  return std::move(created).value();
}
}  // namespace

std::unique_ptr<Admin> make_admin(Env& env) { return client_or_failure(env.broker->admin(), "admin()"); }

std::unique_ptr<Producer> make_producer(Env& env, const ProducerConfig& config) {
  return client_or_failure(env.broker->producer(config), "producer()");
}

std::unique_ptr<Consumer> make_consumer(Env& env, const ConsumerConfig& config) {
  return client_or_failure(env.broker->consumer(config), "consumer()");
}

ProducerConfig transactional_config(const std::string& transactional_id) {
  ProducerConfig config;
  config.client_id = transactional_id;
  config.transactional_id = transactional_id;
  config.transaction_timeout_ms = 60000;
  return config;
}

ConsumerConfig member_config(const std::string& group_id, AssignmentStrategy strategy, IsolationLevel isolation) {
  ConsumerConfig config;
  config.group_id = group_id;
  config.assignment_strategy = strategy;
  config.isolation_level = isolation;
  config.session_timeout_ms = kSessionTimeoutMs;
  config.heartbeat_interval_ms = kHeartbeatIntervalMs;
  config.auto_offset_reset = OffsetReset::kEarliest;
  config.enable_auto_commit = false;
  return config;
}

ConsumerConfig reader_config(IsolationLevel isolation) {
  ConsumerConfig config;
  config.isolation_level = isolation;
  config.auto_offset_reset = OffsetReset::kEarliest;
  config.enable_auto_commit = false;
  return config;
}

Status create_topic(Env& env, const std::string& name, int32_t partitions,
                    const std::map<std::string, std::string>& configs, int16_t replication_factor) {
  auto admin = make_admin(env);
  if (!admin) return Error::of(ErrorCode::kFail, "no admin client");
  TopicSpec spec;
  spec.name = name;
  spec.partitions = partitions;
  spec.replication_factor = replication_factor;
  spec.configs = configs;
  return admin->create_topic(spec, kAdminTimeoutMs);
}

// ------------------------------------------------------------------------------------------------------------
// Producing

std::vector<Result<RecordMetadata>> produce_and_wait(Producer& producer, const std::vector<ProducerRecord>& records,
                                                     int64_t timeout_ms) {
  // Shared so that a report arriving after this function gave up (a broken binding) writes into live memory.
  struct Reports {
    std::vector<std::optional<Result<RecordMetadata>>> by_index;
    std::vector<int> count;
  };
  auto reports = std::make_shared<Reports>();
  reports->by_index.resize(records.size());
  reports->count.resize(records.size(), 0);

  for (size_t i = 0; i < records.size(); ++i) {
    Status sent = producer.send(records[i], [reports, i](const Result<RecordMetadata>& report) {
      ++reports->count[i];
      reports->by_index[i] = report;
    });
    if (!sent.ok()) {
      ++reports->count[i];
      reports->by_index[i] = Result<RecordMetadata>(sent.error());
    }
  }
  Status flushed = producer.flush(timeout_ms);

  std::vector<Result<RecordMetadata>> out;
  out.reserve(records.size());
  for (size_t i = 0; i < records.size(); ++i) {
    EXPECT_LE(reports->count[i], 1) << "record " << i << " got " << reports->count[i] << " delivery reports";
    if (reports->by_index[i].has_value()) {
      out.push_back(*reports->by_index[i]);
    } else {
      if (flushed.ok()) ADD_FAILURE() << "flush() succeeded but record " << i << " has no delivery report";
      out.push_back(Result<RecordMetadata>(Error::of(ErrorCode::kTimedOut, "no delivery report")));
    }
  }
  return out;
}

std::vector<ProducerRecord> records_for(const TopicPartition& tp, const std::vector<std::string>& values) {
  std::vector<ProducerRecord> records;
  records.reserve(values.size());
  for (const auto& value : values) {
    ProducerRecord record;
    record.topic = tp.topic;
    record.partition = tp.partition;
    record.value = value;
    records.push_back(std::move(record));
  }
  return records;
}

std::vector<RecordMetadata> produce_ok(Producer& producer, const std::vector<ProducerRecord>& records,
                                       int64_t timeout_ms) {
  auto reports = produce_and_wait(producer, records, timeout_ms);
  std::vector<RecordMetadata> out;
  bool all_ok = true;
  for (size_t i = 0; i < reports.size(); ++i) {
    if (reports[i].ok()) {
      out.push_back(reports[i].value());
    } else {
      ADD_FAILURE() << "record " << i << " not delivered: " << describe(reports[i].error());
      all_ok = false;
    }
  }
  if (!all_ok) out.clear();
  return out;
}

std::vector<std::string> numbered(const std::string& prefix, int count, int first) {
  std::vector<std::string> values;
  values.reserve(static_cast<size_t>(count));
  for (int i = first; i < first + count; ++i) values.push_back(prefix + "-" + std::to_string(i));
  return values;
}

// ------------------------------------------------------------------------------------------------------------
// Consuming

std::vector<ConsumerRecord> consume_until(Env& env, Consumer& consumer, size_t count, int64_t timeout_ms) {
  std::vector<ConsumerRecord> collected;
  const int64_t deadline = env.clock->now_ms() + timeout_ms;
  while (collected.size() < count) {
    const int64_t left = deadline - env.clock->now_ms();
    if (left <= 0) break;
    auto batch = consumer.poll(std::min<int64_t>(left, 200));
    if (!batch.ok()) {
      ADD_FAILURE() << "poll(): " << describe(batch.error());
      break;
    }
    for (auto& record : batch.value()) collected.push_back(std::move(record));
  }
  return collected;
}

std::vector<ConsumerRecord> read_records(Env& env, const std::vector<TopicPartition>& partitions, size_t expected,
                                         IsolationLevel isolation, int64_t settle_ms, int64_t timeout_ms) {
  auto consumer = make_consumer(env, reader_config(isolation));
  if (!consumer) return {};
  Status assigned = consumer->assign(partitions);
  if (!assigned.ok()) {
    ADD_FAILURE() << "assign(): " << describe(assigned.error());
    return {};
  }
  auto records = consume_until(env, *consumer, expected, timeout_ms);
  for (auto& record : poll_for(env, *consumer, settle_ms)) records.push_back(std::move(record));
  EXPECT_TRUE(is_ok(consumer->close()));
  return records;
}

std::vector<ConsumerRecord> poll_for(Env& env, Consumer& consumer, int64_t duration_ms) {
  std::vector<ConsumerRecord> collected;
  const int64_t deadline = env.clock->now_ms() + duration_ms;
  while (true) {
    const int64_t left = deadline - env.clock->now_ms();
    if (left <= 0) break;
    auto batch = consumer.poll(std::min<int64_t>(left, 200));
    if (!batch.ok()) {
      ADD_FAILURE() << "poll(): " << describe(batch.error());
      break;
    }
    for (auto& record : batch.value()) collected.push_back(std::move(record));
  }
  return collected;
}

std::optional<Error> poll_until_error(Env& env, Consumer& consumer, int64_t timeout_ms) {
  const int64_t deadline = env.clock->now_ms() + timeout_ms;
  while (true) {
    const int64_t left = deadline - env.clock->now_ms();
    if (left <= 0) return std::nullopt;
    auto batch = consumer.poll(std::min<int64_t>(left, 200));
    if (!batch.ok()) return batch.error();
    EXPECT_TRUE(batch.value().empty()) << "poll returned " << batch.value().size()
                                       << " records while an error was expected";
  }
}

std::vector<std::string> values_of(const std::vector<ConsumerRecord>& records) {
  std::vector<std::string> values;
  for (const auto& record : records) values.push_back(record.value.value_or("<null>"));
  return values;
}

std::vector<std::string> values_of(const std::vector<ConsumerRecord>& records, const TopicPartition& tp) {
  std::vector<std::string> values;
  for (const auto& record : records) {
    if (record.topic == tp.topic && record.partition == tp.partition) {
      values.push_back(record.value.value_or("<null>"));
    }
  }
  return values;
}

std::vector<int64_t> offsets_of(const std::vector<ConsumerRecord>& records, const TopicPartition& tp) {
  std::vector<int64_t> offsets;
  for (const auto& record : records) {
    if (record.topic == tp.topic && record.partition == tp.partition) offsets.push_back(record.offset);
  }
  return offsets;
}

std::vector<int64_t> range_of(int64_t first, int64_t count) {
  std::vector<int64_t> out;
  for (int64_t i = 0; i < count; ++i) out.push_back(first + i);
  return out;
}

// ------------------------------------------------------------------------------------------------------------
// Groups

void RebalanceRecorder::on_partitions_assigned(const std::vector<TopicPartition>& partitions) {
  events_.push_back({Kind::kAssigned, partitions, env_.clock->now_ms()});
  for (const auto& tp : partitions) {
    EXPECT_TRUE(owned_.insert(tp).second) << "assigned " << tp << " which this member already owns";
  }
}

void RebalanceRecorder::on_partitions_revoked(const std::vector<TopicPartition>& partitions) {
  events_.push_back({Kind::kRevoked, partitions, env_.clock->now_ms()});
  for (const auto& tp : partitions) {
    EXPECT_EQ(owned_.erase(tp), 1U) << "revoked " << tp << " which this member does not own";
  }
}

void RebalanceRecorder::on_partitions_lost(const std::vector<TopicPartition>& partitions) {
  events_.push_back({Kind::kLost, partitions, env_.clock->now_ms()});
  for (const auto& tp : partitions) {
    EXPECT_EQ(owned_.erase(tp), 1U) << "lost " << tp << " which this member does not own";
  }
}

std::set<TopicPartition> RebalanceRecorder::all_revoked() const {
  std::set<TopicPartition> out;
  for (const auto& event : events_) {
    if (event.kind != Kind::kAssigned) out.insert(event.partitions.begin(), event.partitions.end());
  }
  return out;
}

GroupMember::GroupMember(Env& env, const ConsumerConfig& config)
    : env_(env), consumer_(make_consumer(env, config)), recorder_(env) {}

Status GroupMember::subscribe(const std::vector<std::string>& topics) {
  return consumer_->subscribe(topics, &recorder_);
}

Status GroupMember::poll_once(int64_t timeout_ms) {
  auto batch = consumer_->poll(timeout_ms);
  if (!batch.ok()) {
    ADD_FAILURE() << "poll(): " << describe(batch.error());
    return batch.error();
  }
  for (auto& record : batch.value()) records_.push_back(std::move(record));
  return {};
}

bool GroupMember::poll_until(const std::function<bool()>& condition, int64_t timeout_ms) {
  const int64_t deadline = env_.clock->now_ms() + timeout_ms;
  while (!condition()) {
    const int64_t left = deadline - env_.clock->now_ms();
    if (left <= 0) return false;
    if (!poll_once(std::min<int64_t>(left, 100)).ok()) return false;
  }
  return true;
}

void GroupMember::poll_for(int64_t duration_ms) {
  const int64_t deadline = env_.clock->now_ms() + duration_ms;
  while (true) {
    const int64_t left = deadline - env_.clock->now_ms();
    if (left <= 0) return;
    if (!poll_once(std::min<int64_t>(left, 100)).ok()) return;
  }
}

std::set<TopicPartition> GroupMember::assignment() const {
  auto list = consumer_->assignment();
  return {list.begin(), list.end()};
}

Status GroupMember::close() { return consumer_->close(); }

std::set<TopicPartition> partitions_of(const std::string& topic, int32_t partitions) {
  std::set<TopicPartition> out;
  for (int32_t p = 0; p < partitions; ++p) out.insert(TopicPartition{topic, p});
  return out;
}

std::vector<TopicPartition> partition_list(const std::string& topic, int32_t partitions) {
  std::vector<TopicPartition> out;
  for (int32_t p = 0; p < partitions; ++p) out.push_back(TopicPartition{topic, p});
  return out;
}

// ------------------------------------------------------------------------------------------------------------
// Kafka's murmur2, transcribed from org.apache.kafka.common.utils.Utils.murmur2 (Java int arithmetic: 32-bit
// wrap-around, `>>>` is a logical shift, bytes are masked with 0xff).

int32_t kafka_murmur2(std::string_view bytes) {
  const auto length = static_cast<uint32_t>(bytes.size());
  const uint32_t seed = 0x9747b28cU;
  const uint32_t m = 0x5bd1e995U;
  const int r = 24;
  auto byte_at = [&](size_t i) { return static_cast<uint32_t>(static_cast<unsigned char>(bytes[i])); };

  uint32_t h = seed ^ length;
  const uint32_t length4 = length / 4;
  for (uint32_t i = 0; i < length4; ++i) {
    const uint32_t i4 = i * 4;
    uint32_t k = byte_at(i4) + (byte_at(i4 + 1) << 8) + (byte_at(i4 + 2) << 16) + (byte_at(i4 + 3) << 24);
    k *= m;
    k ^= k >> r;
    k *= m;
    h *= m;
    h ^= k;
  }
  const uint32_t tail = length & ~3U;
  switch (length % 4) {
    case 3:
      h ^= byte_at(tail + 2) << 16;
      [[fallthrough]];
    case 2:
      h ^= byte_at(tail + 1) << 8;
      [[fallthrough]];
    case 1:
      h ^= byte_at(tail);
      h *= m;
      break;
    default:
      break;
  }
  h ^= h >> 13;
  h *= m;
  h ^= h >> 15;
  return static_cast<int32_t>(h);
}

int32_t kafka_partition_for_key(std::string_view key, int32_t partitions) {
  const auto positive = static_cast<int32_t>(static_cast<uint32_t>(kafka_murmur2(key)) & 0x7fffffffU);
  return positive % partitions;
}

}  // namespace mephisto::conformance
