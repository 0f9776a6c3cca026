// Benchmark (not a test): the overhead of the librdkafka binding (runtime/kafka) over raw librdkafka, against
// a real broker. Issue #4, item 7: goal <= 10% fewer records/s than raw librdkafka doing the same work.
//
// In one run, for each of --rounds rounds, it measures
//   produce  N records (keys "k0".."k999", --value-bytes values) into a fresh topic, timed from the first
//            send to the end of flush, every delivery report counted as a success; raw vs binding;
//   consume  the same N records from offset 0 of one topic, every value touched (one byte summed); raw vs
//            binding;
// with identical client settings on both sides, and the order of raw and binding alternating between rounds
// so that drift (broker JIT, page cache, the other tenants of the machine) does not favour one side. The
// summary uses the median records/s of each side; every round is printed too.
//
// Raw produce   rd_kafka_producev(RD_KAFKA_MSG_F_COPY), rd_kafka_poll(0) every --poll-every records, a
//               dr_msg_cb counting successes, rd_kafka_flush; on a full queue rd_kafka_poll(1000) waits.
// Raw consume   rd_kafka_assign(all partitions) + rd_kafka_consumer_poll loop, one message per call
//               (librdkafka's standard consumer API; --raw-consume batch: rd_kafka_consume_batch_queue).
// Binding       KafkaBrokerClient on an EventLoop; Producer::send with a DeliveryCallback counting
//               successes, EventLoop::yield() every --poll-every records, flush; on kQueueFull the fiber
//               parks until a delivery report makes room. Consumer::assign(all partitions) + poll().
//
//   build-bench/bin/bench_kafka_binding [--bootstrap HOST:PORT] [--records N] [--rounds R]
//                                       [--only raw|binding] [--consumer-property NAME=VALUE] ...
#include <librdkafka/rdkafka.h>
#include <time.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "runtime/kafka/kafka_broker_client.h"
#include "runtime/kafka/rd_handles.h"
#include "runtime/loop/event_loop.h"
#include "runtime/seam/broker_client.h"
#include "tools/rdkafka_raw/rd_raw.h"

namespace {

using namespace mephisto;
namespace rdt = mephisto::rd_raw;

// Anything that makes the figures meaningless: the run stops with this message and a non-zero exit.
struct BenchFailure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct Settings {
  std::string bootstrap;
  int64_t records = 1'000'000;
  int32_t value_bytes = 100;
  int32_t partitions = 6;
  int32_t rounds = 3;
  int64_t warmup_records = 100'000;
  int64_t linger_ms = 5;
  int32_t batch_num_messages = 10'000;
  int32_t batch_size_bytes = 1'000'000;
  int32_t queue_max_records = 100'000;
  int32_t max_poll_records = 500;
  int64_t poll_every_records = 1000;
  int64_t stall_timeout_ms = 60'000;
  std::string raw_consume = "poll";
  std::string only;  // empty: both sides
  // Further librdkafka properties for both sides, applied after the benchmark's own.
  std::map<std::string, std::string> producer_properties;
  std::map<std::string, std::string> consumer_properties;
  bool keep_topics = false;
};

bool run_raw(const Settings& s) {
  return s.only.empty() || s.only == "raw";
}
bool run_binding(const Settings& s) {
  return s.only.empty() || s.only == "binding";
}

// Keys cycle through 1000 values so that records spread over every partition the way keyed traffic does; both
// sides take them from this one table so key construction costs the same.
constexpr int kKeyCount = 1000;

// The last byte of record i's value; consumers sum it so reading the value cannot be optimised away, and the
// sum proves both sides read every record intact.
char value_tail(int64_t i) {
  return static_cast<char>('a' + i % 26);
}

uint64_t expected_checksum(int64_t records) {
  uint64_t sum = 0;
  for (int64_t i = 0; i < records; ++i) sum += static_cast<unsigned char>(value_tail(i));
  return sum;
}

// --- settings shared by both sides -------------------------------------------------------------------------

// Producer properties the binding receives through ProducerConfig::extra (it has no typed field for them).
std::map<std::string, std::string> producer_extra(const Settings& s) {
  std::map<std::string, std::string> extra = {
      {"batch.num.messages", std::to_string(s.batch_num_messages)},
      {"batch.size", std::to_string(s.batch_size_bytes)},
      {"compression.type", "none"},
      // Kafka's default partitioner, as the seam promises for keyed records (librdkafka's default differs).
      {"partitioner", "murmur2_random"},
  };
  for (const auto& [name, value] : s.producer_properties) extra[name] = value;
  return extra;
}

ProducerConfig binding_producer_config(const Settings& s) {
  ProducerConfig config;
  config.client_id = "bench-kafka-binding";
  config.acks = -1;
  config.enable_idempotence = true;
  config.linger_ms = s.linger_ms;
  config.request_timeout_ms = 30'000;
  config.delivery_timeout_ms = 120'000;
  config.max_in_flight = 5;
  config.queue_max_records = s.queue_max_records;
  config.extra = producer_extra(s);
  return config;
}

// The same settings by their librdkafka names: the typed fields of binding_producer_config(), then its extra
// (the binding's order, so a --producer-property overrides a typed setting on both sides alike).
std::map<std::string, std::string> raw_producer_properties(const Settings& s) {
  const ProducerConfig typed = binding_producer_config(s);
  std::map<std::string, std::string> properties;
  properties["client.id"] = typed.client_id;
  properties["acks"] = "all";
  properties["enable.idempotence"] = typed.enable_idempotence ? "true" : "false";
  properties["linger.ms"] = std::to_string(typed.linger_ms);
  properties["request.timeout.ms"] = std::to_string(typed.request_timeout_ms);
  properties["delivery.timeout.ms"] = std::to_string(typed.delivery_timeout_ms);
  properties["max.in.flight.requests.per.connection"] = std::to_string(typed.max_in_flight);
  properties["queue.buffering.max.messages"] = std::to_string(typed.queue_max_records);
  // As the binding sets it (librdkafka's default for producers is true).
  properties["allow.auto.create.topics"] = "false";
  for (const auto& [name, value] : typed.extra) properties[name] = value;
  return properties;
}

// Fetch settings, set explicitly so that both sides fetch alike whatever either side's defaults are:
// librdkafka's defaults, except queued.min.messages, which is the binding's default (see
// runtime/kafka/kafka_consumer.cpp).
std::map<std::string, std::string> consumer_extra(const Settings& s) {
  std::map<std::string, std::string> extra = {
      {"fetch.min.bytes", "1"},           {"fetch.wait.max.ms", "500"},
      {"fetch.max.bytes", "52428800"},    {"max.partition.fetch.bytes", "1048576"},
      {"queued.min.messages", "1000000"}, {"queued.max.messages.kbytes", "65536"},
      {"enable.partition.eof", "false"},
  };
  for (const auto& [name, value] : s.consumer_properties) extra[name] = value;
  return extra;
}

ConsumerConfig binding_consumer_config(const Settings& s, const std::string& group_id) {
  ConsumerConfig config;
  config.group_id = group_id;
  config.client_id = "bench-kafka-binding";
  // Nothing in the benchmark's topics is transactional, so the isolation level changes nothing but is pinned.
  config.isolation_level = IsolationLevel::kReadUncommitted;
  config.auto_offset_reset = OffsetReset::kEarliest;
  config.max_poll_records = s.max_poll_records;
  config.enable_auto_commit = false;
  config.extra = consumer_extra(s);
  return config;
}

std::map<std::string, std::string> raw_consumer_properties(const Settings& s, const std::string& group_id) {
  const ConsumerConfig typed = binding_consumer_config(s, group_id);
  std::map<std::string, std::string> properties;
  properties["client.id"] = typed.client_id;
  properties["group.id"] = typed.group_id;
  properties["isolation.level"] = "read_uncommitted";
  properties["auto.offset.reset"] = "earliest";
  properties["enable.auto.commit"] = typed.enable_auto_commit ? "true" : "false";
  properties["session.timeout.ms"] = std::to_string(typed.session_timeout_ms);
  properties["heartbeat.interval.ms"] = std::to_string(typed.heartbeat_interval_ms);
  properties["max.poll.interval.ms"] = std::to_string(typed.max_poll_interval_ms);
  // The rest of what the binding derives from ConsumerConfig (inert with assign(), pinned for parity).
  properties["partition.assignment.strategy"] = "range";
  properties["auto.commit.interval.ms"] = std::to_string(typed.auto_commit_interval_ms);
  properties["allow.auto.create.topics"] = "false";
  for (const auto& [name, value] : typed.extra) properties[name] = value;
  return properties;
}

std::string join_properties(const std::map<std::string, std::string>& properties) {
  std::string out;
  for (const auto& [name, value] : properties) {
    if (name == "client.id" || name == "group.id") continue;  // per client, not a setting being compared
    if (!out.empty()) out += ' ';
    out += name + '=' + value;
  }
  return out;
}

// --- measurement -------------------------------------------------------------------------------------------

double cpu_clock_s(clockid_t clock) {
  timespec now{};
  clock_gettime(clock, &now);
  return static_cast<double>(now.tv_sec) + static_cast<double>(now.tv_nsec) * 1e-9;
}

// Over one timed phase: wall time; CPU time of the calling thread, which is where the binding's own work
// happens (the EventLoop runs its fibers on the thread that calls run()); and CPU time of the whole process,
// which adds librdkafka's threads (the same work on both sides, but they compete for the same cores).
class Stopwatch {
 public:
  void start() {
    wall_start_ = std::chrono::steady_clock::now();
    thread_start_s_ = cpu_clock_s(CLOCK_THREAD_CPUTIME_ID);
    process_start_s_ = cpu_clock_s(CLOCK_PROCESS_CPUTIME_ID);
  }
  void stop() {
    wall_s_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start_).count();
    thread_cpu_s_ = cpu_clock_s(CLOCK_THREAD_CPUTIME_ID) - thread_start_s_;
    process_cpu_s_ = cpu_clock_s(CLOCK_PROCESS_CPUTIME_ID) - process_start_s_;
  }
  [[nodiscard]] double wall_s() const { return wall_s_; }
  [[nodiscard]] double thread_cpu_s() const { return thread_cpu_s_; }
  [[nodiscard]] double process_cpu_s() const { return process_cpu_s_; }

 private:
  std::chrono::steady_clock::time_point wall_start_;
  double thread_start_s_ = 0;
  double process_start_s_ = 0;
  double wall_s_ = 0;
  double thread_cpu_s_ = 0;
  double process_cpu_s_ = 0;
};

struct Measurement {
  int64_t records = 0;
  double wall_s = 0;
  double thread_cpu_s = 0;
  double process_cpu_s = 0;
  uint64_t checksum = 0;  // consume only

  void take_times(const Stopwatch& watch) {
    wall_s = watch.wall_s();
    thread_cpu_s = watch.thread_cpu_s();
    process_cpu_s = watch.process_cpu_s();
  }
  [[nodiscard]] double records_per_s() const { return static_cast<double>(records) / wall_s; }
  [[nodiscard]] double thread_us_per_record() const {
    return thread_cpu_s * 1e6 / static_cast<double>(records);
  }
  [[nodiscard]] double process_us_per_record() const {
    return process_cpu_s * 1e6 / static_cast<double>(records);
  }
};

// Fails a consume loop that has seen no record for stall_timeout_ms. Called only after a poll that returned
// nothing, so that the clock is not read per record (which would tax the raw side's one-message polls).
class StallGuard {
 public:
  explicit StallGuard(int64_t timeout_ms)
      : timeout_ms_(timeout_ms), last_(std::chrono::steady_clock::now()) {}
  void check(const char* side, int64_t seen, int64_t wanted) {
    const auto now = std::chrono::steady_clock::now();
    if (seen != last_seen_) {
      last_seen_ = seen;
      last_ = now;
    } else if (now - last_ > std::chrono::milliseconds(timeout_ms_)) {
      throw BenchFailure(std::string(side) + " consume stalled: no record for " +
                         std::to_string(timeout_ms_) + " ms after " + std::to_string(seen) + " of " +
                         std::to_string(wanted) + " records");
    }
  }

 private:
  int64_t timeout_ms_;
  int64_t last_seen_ = 0;
  std::chrono::steady_clock::time_point last_;
};

// --- raw librdkafka ----------------------------------------------------------------------------------------

rd::ConfPtr raw_conf(const std::string& bootstrap, const std::map<std::string, std::string>& properties) {
  rdt::Properties all = {{"bootstrap.servers", bootstrap}};
  all.insert(all.end(), properties.begin(), properties.end());
  return rdt::MakeConf(all);
}

// Topic creation, leader wait and deletion through librdkafka's admin API (both sides use the same topics, so
// it does not matter which client creates them).
class RawAdmin {
 public:
  explicit RawAdmin(const std::string& bootstrap)
      : rk_(rdt::MakeProducer(raw_conf(bootstrap, {{"client.id", "bench-kafka-binding-admin"},
                                                   {"allow.auto.create.topics", "false"}}))) {}

  // Fails with advice when no broker answers: the usual cause is that none was started.
  void check_reachable(const std::string& bootstrap, int timeout_ms) {
    const rd_kafka_metadata_t* metadata = nullptr;
    const rd_kafka_resp_err_t err = rd_kafka_metadata(rk_.get(), 0, nullptr, &metadata, timeout_ms);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      throw BenchFailure(
          "cannot reach a Kafka broker at " + bootstrap + " (" + rd_kafka_err2str(err) +
          "). Start one with `tools/kafka/broker start` and pass its address with --bootstrap or "
          "MEPHISTO_KAFKA_BOOTSTRAP.");
    }
    rd_kafka_metadata_destroy(metadata);
  }

  void create_topics(const std::vector<std::string>& names, int32_t partitions, int timeout_ms) {
    try {
      rdt::CreateTopics(rk_.get(), names, partitions, timeout_ms);
    } catch (const std::exception& e) {
      throw BenchFailure(std::string("creating the benchmark topics failed: ") + e.what());
    }
    for (const auto& name : names) wait_for_leaders(name, partitions, timeout_ms);
  }

  // Best effort: a failure here loses no figures, so it is reported and not fatal.
  void delete_topics(const std::vector<std::string>& names, int timeout_ms) {
    try {
      rdt::DeleteTopics(rk_.get(), names, timeout_ms);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "warning: deleting the benchmark topics failed (%s); delete them by hand\n",
                   e.what());
    }
  }

 private:
  // CreateTopics returns once the controller has the topic; producers and consumers need partition leaders.
  void wait_for_leaders(const std::string& name, int32_t partitions, int timeout_ms) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    rd_kafka_topic_t* topic = rd_kafka_topic_new(rk_.get(), name.c_str(), nullptr);
    bool ready = false;
    while (!ready && std::chrono::steady_clock::now() < deadline) {
      const rd_kafka_metadata_t* metadata = nullptr;
      if (rd_kafka_metadata(rk_.get(), 0, topic, &metadata, 5000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        const rd_kafka_metadata_topic& t = metadata->topics[0];
        ready = metadata->topic_cnt == 1 && t.err == RD_KAFKA_RESP_ERR_NO_ERROR &&
                t.partition_cnt == partitions &&
                std::all_of(t.partitions, t.partitions + t.partition_cnt,
                            [](const rd_kafka_metadata_partition& p) { return p.leader >= 0; });
        rd_kafka_metadata_destroy(metadata);
      }
      if (!ready) usleep(100'000);
    }
    rd_kafka_topic_destroy(topic);
    if (!ready) throw BenchFailure("topic " + name + " has no leader for every partition after creation");
  }

  rd::HandlePtr rk_;
};

Measurement raw_produce(const Settings& s, const std::string& topic, int64_t records,
                        const std::vector<std::string>& keys) {
  rdt::DeliveryCount deliveries;
  rd::ConfPtr conf = raw_conf(s.bootstrap, raw_producer_properties(s));
  rdt::CountDeliveries(conf.get(), deliveries);
  rd::HandlePtr rk = rdt::MakeProducer(std::move(conf));

  std::string value(static_cast<size_t>(s.value_bytes), 'v');
  Stopwatch watch;
  watch.start();
  for (int64_t i = 0; i < records;) {
    if (!value.empty()) value.back() = value_tail(i);
    const std::string& key = keys[static_cast<size_t>(i % kKeyCount)];
    const rd_kafka_resp_err_t err =
        rd_kafka_producev(rk.get(), RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_KEY(key.data(), key.size()),
                          RD_KAFKA_V_VALUE(value.data(), value.size()),
                          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      ++i;
      if (i % s.poll_every_records == 0) rd_kafka_poll(rk.get(), 0);
    } else if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
      rd_kafka_poll(rk.get(), 1000);  // serves delivery reports, which makes room
    } else {
      throw BenchFailure(std::string("raw produce: rd_kafka_producev failed: ") + rd_kafka_err2str(err));
    }
  }
  const rd_kafka_resp_err_t flushed = rd_kafka_flush(rk.get(), static_cast<int>(s.stall_timeout_ms));
  watch.stop();
  if (flushed != RD_KAFKA_RESP_ERR_NO_ERROR) {
    throw BenchFailure(std::string("raw produce: rd_kafka_flush: ") + rd_kafka_err2str(flushed));
  }
  if (deliveries.failed > 0 || deliveries.delivered != records) {
    throw BenchFailure("raw produce: " + std::to_string(deliveries.delivered) + " of " +
                       std::to_string(records) + " records delivered, " + std::to_string(deliveries.failed) +
                       " failed (first: " + deliveries.first_failure + ")");
  }
  Measurement m;
  m.records = records;
  m.take_times(watch);
  return m;
}

Measurement raw_consume(const Settings& s, const std::string& topic, int64_t records,
                        const std::string& group_id) {
  rdt::ConsumerPtr rk = rdt::MakeConsumer(raw_conf(s.bootstrap, raw_consumer_properties(s, group_id)));
  rd_kafka_poll_set_consumer(rk.get());
  rd::QueuePtr queue(rd_kafka_queue_get_consumer(rk.get()));

  rd::PartitionListPtr partitions(rd_kafka_topic_partition_list_new(s.partitions));
  for (int32_t p = 0; p < s.partitions; ++p) {
    // OFFSET_INVALID: the committed offset, else auto.offset.reset, as Consumer::assign() promises.
    rd_kafka_topic_partition_list_add(partitions.get(), topic.c_str(), p)->offset = RD_KAFKA_OFFSET_INVALID;
  }

  Measurement m;
  std::string failure;
  StallGuard stall(s.stall_timeout_ms);
  std::vector<rd_kafka_message_t*> batch(static_cast<size_t>(s.max_poll_records));
  Stopwatch watch;
  watch.start();
  const rd_kafka_resp_err_t assigned = rd_kafka_assign(rk.get(), partitions.get());
  partitions.reset();
  if (assigned != RD_KAFKA_RESP_ERR_NO_ERROR)
    failure = std::string("rd_kafka_assign: ") + rd_kafka_err2str(assigned);
  // Consumes one message; an error message sets failure.
  auto take = [&](rd_kafka_message_t* message) {
    if (message->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      failure = rd_kafka_message_errstr(message);
    } else {
      ++m.records;
      if (message->len > 0)
        m.checksum += static_cast<const unsigned char*>(message->payload)[message->len - 1];
    }
    rd_kafka_message_destroy(message);
  };
  while (failure.empty() && m.records < records) {
    const int64_t before = m.records;
    if (s.raw_consume == "batch") {
      const ssize_t n = rd_kafka_consume_batch_queue(queue.get(), 100, batch.data(), batch.size());
      if (n < 0)
        failure = std::string("rd_kafka_consume_batch_queue: ") + rd_kafka_err2str(rd_kafka_last_error());
      for (ssize_t i = 0; i < n; ++i) take(batch[static_cast<size_t>(i)]);
    } else if (rd_kafka_message_t* message = rd_kafka_consumer_poll(rk.get(), 100)) {
      take(message);
    }
    if (m.records == before && failure.empty()) stall.check("raw", m.records, records);
  }
  watch.stop();
  queue.reset();
  rk.reset();  // closes the consumer
  if (!failure.empty()) throw BenchFailure("raw consume: " + failure);
  m.take_times(watch);
  return m;
}

// --- the binding -------------------------------------------------------------------------------------------

// Runs body in a fiber of loop until it returns; an exception in it (a BenchFailure) is rethrown here.
void run_in_fiber(EventLoop& loop, const std::string& name, const std::function<void()>& body) {
  bool finished = false;
  std::optional<std::string> failure;
  loop.spawn(name, [&] {
    try {
      body();
    } catch (const std::exception& e) {
      failure = e.what();
    }
    finished = true;
  });
  if (!loop.run([&] { return finished; })) throw BenchFailure(name + ": the event loop stopped early");
  if (failure) throw BenchFailure(*failure);
}

Measurement binding_produce(EventLoop& loop, BrokerClient& client, const Settings& s,
                            const std::string& topic, int64_t records, const std::vector<std::string>& keys) {
  Measurement m;
  run_in_fiber(loop, "bench-binding-produce", [&] {
    auto created = client.producer(binding_producer_config(s));
    if (!created.ok())
      throw BenchFailure("binding produce: creating the producer: " + created.error().to_string());
    Producer& producer = **created;

    struct Deliveries {
      int64_t succeeded = 0;
      int64_t failed = 0;
      std::string first_failure;
      bool waiting_for_room = false;  // the producing fiber is parked on kQueueFull
      EventLoop* loop = nullptr;
      FiberId fiber = kNoFiber;
    } deliveries;
    deliveries.loop = &loop;
    deliveries.fiber = loop.current();
    // One pointer captured: std::function stores it inline, so the callback adds no allocation per send.
    auto on_delivery = [d = &deliveries](const Result<RecordMetadata>& result) {
      if (result.ok()) {
        ++d->succeeded;
      } else if (d->failed++ == 0) {
        d->first_failure = result.error().to_string();
      }
      if (d->waiting_for_room) {
        d->waiting_for_room = false;
        d->loop->wake(d->fiber);
      }
    };

    std::string value(static_cast<size_t>(s.value_bytes), 'v');
    Stopwatch watch;
    watch.start();
    for (int64_t i = 0; i < records;) {
      if (!value.empty()) value.back() = value_tail(i);
      ProducerRecord record;
      record.topic = topic;
      record.key = keys[static_cast<size_t>(i % kKeyCount)];
      record.value = value;
      const Status sent = producer.send(std::move(record), on_delivery);
      if (sent.ok()) {
        ++i;
        if (i % s.poll_every_records == 0) loop.yield();
      } else if (sent.code() == ErrorCode::kQueueFull) {
        deliveries.waiting_for_room = true;  // the next delivery report wakes this fiber
        loop.park_until(loop.clock().now_ms() + 1000);
        deliveries.waiting_for_room = false;
      } else {
        throw BenchFailure("binding produce: send failed: " + sent.error().to_string());
      }
    }
    const Status flushed = producer.flush(s.stall_timeout_ms);
    watch.stop();
    if (!flushed.ok()) throw BenchFailure("binding produce: flush: " + flushed.error().to_string());
    if (deliveries.failed > 0 || deliveries.succeeded != records) {
      throw BenchFailure("binding produce: " + std::to_string(deliveries.succeeded) + " of " +
                         std::to_string(records) + " records delivered, " +
                         std::to_string(deliveries.failed) + " failed (first: " + deliveries.first_failure +
                         ")");
    }
    created->reset();  // close the producer inside the fiber, untimed
    m.records = records;
    m.take_times(watch);
  });
  return m;
}

Measurement binding_consume(EventLoop& loop, BrokerClient& client, const Settings& s,
                            const std::string& topic, int64_t records, const std::string& group_id) {
  Measurement m;
  run_in_fiber(loop, "bench-binding-consume", [&] {
    auto created = client.consumer(binding_consumer_config(s, group_id));
    if (!created.ok())
      throw BenchFailure("binding consume: creating the consumer: " + created.error().to_string());
    Consumer& consumer = **created;
    std::vector<TopicPartition> partitions;
    for (int32_t p = 0; p < s.partitions; ++p) partitions.push_back(TopicPartition{topic, p});

    StallGuard stall(s.stall_timeout_ms);
    Stopwatch watch;
    watch.start();
    const Status assigned = consumer.assign(partitions);
    if (!assigned.ok()) throw BenchFailure("binding consume: assign: " + assigned.error().to_string());
    while (m.records < records) {
      auto batch = consumer.poll(100);
      if (!batch.ok()) throw BenchFailure("binding consume: poll: " + batch.error().to_string());
      if (batch->empty()) {
        stall.check("binding", m.records, records);
        continue;
      }
      for (const ConsumerRecord& record : *batch) {
        ++m.records;
        if (record.value && !record.value->empty())
          m.checksum += static_cast<unsigned char>(record.value->back());
      }
    }
    watch.stop();
    const Status closed = consumer.close();
    if (!closed.ok()) throw BenchFailure("binding consume: close: " + closed.error().to_string());
    m.take_times(watch);
  });
  return m;
}

// --- report ------------------------------------------------------------------------------------------------

struct PhaseRuns {
  std::vector<Measurement> raw;
  std::vector<Measurement> binding;
};

double median(std::vector<double> values) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const size_t n = values.size();
  return n % 2 == 1 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

double best(const std::vector<double>& values) {
  return values.empty() ? 0 : *std::max_element(values.begin(), values.end());
}

std::vector<double> figures(const std::vector<Measurement>& runs, double (Measurement::*figure)() const) {
  std::vector<double> out;
  for (const auto& m : runs) out.push_back((m.*figure)());
  return out;
}

// A number, or "-" for a side that did not run (--only).
std::string cell(bool present, double value, const char* format) {
  if (!present) return "-";
  char text[32];
  std::snprintf(text, sizeof text, format, value);
  return text;
}

void print_header(const char* first_columns) {
  std::printf("\n%-24s %12s %14s %7s %9s %11s %11s %11s %11s\n", first_columns, "raw rec/s", "binding rec/s",
              "ratio", "overhead", "raw thr us", "bind thr us", "raw proc us", "bind proc us");
}

// One row: records/s of each side, their ratio and overhead, and CPU microseconds per record (thread,
// process).
void print_row(const std::string& label, bool has_raw, bool has_binding, double raw_rate, double binding_rate,
               double raw_thread_us, double binding_thread_us, double raw_process_us,
               double binding_process_us) {
  const bool both = has_raw && has_binding;
  std::printf(
      "%-24s %12s %14s %7s %9s %11s %11s %11s %11s\n", label.c_str(), cell(has_raw, raw_rate, "%.0f").c_str(),
      cell(has_binding, binding_rate, "%.0f").c_str(), cell(both, binding_rate / raw_rate, "%.3f").c_str(),
      cell(both, (1 - binding_rate / raw_rate) * 100, "%.1f%%").c_str(),
      cell(has_raw, raw_thread_us, "%.2f").c_str(), cell(has_binding, binding_thread_us, "%.2f").c_str(),
      cell(has_raw, raw_process_us, "%.2f").c_str(), cell(has_binding, binding_process_us, "%.2f").c_str());
  std::fflush(stdout);
}

void print_round(int round, const char* phase, const char* first, const std::optional<Measurement>& raw,
                 const std::optional<Measurement>& binding) {
  char label[64];
  std::snprintf(label, sizeof label, "%-6d %-8s %-8s", round, phase, first);
  const Measurement none;
  const Measurement& r = raw ? *raw : none;
  const Measurement& b = binding ? *binding : none;
  print_row(label, raw.has_value(), binding.has_value(), raw ? r.records_per_s() : 0,
            binding ? b.records_per_s() : 0, raw ? r.thread_us_per_record() : 0,
            binding ? b.thread_us_per_record() : 0, raw ? r.process_us_per_record() : 0,
            binding ? b.process_us_per_record() : 0);
}

// Prints the median and the best of each side; returns the overhead in percent of the medians (0 with one
// side).
double print_summary(const char* phase, const PhaseRuns& runs) {
  const bool has_raw = !runs.raw.empty();
  const bool has_binding = !runs.binding.empty();
  const double raw_rate = median(figures(runs.raw, &Measurement::records_per_s));
  const double binding_rate = median(figures(runs.binding, &Measurement::records_per_s));
  print_row(std::string(phase) + " median", has_raw, has_binding, raw_rate, binding_rate,
            median(figures(runs.raw, &Measurement::thread_us_per_record)),
            median(figures(runs.binding, &Measurement::thread_us_per_record)),
            median(figures(runs.raw, &Measurement::process_us_per_record)),
            median(figures(runs.binding, &Measurement::process_us_per_record)));
  // Best: the highest rate and the lowest CPU cost of each side, each from whichever round had it.
  auto lowest = [](std::vector<double> values) {
    return values.empty() ? 0 : *std::min_element(values.begin(), values.end());
  };
  print_row(std::string(phase) + " best", has_raw, has_binding,
            best(figures(runs.raw, &Measurement::records_per_s)),
            best(figures(runs.binding, &Measurement::records_per_s)),
            lowest(figures(runs.raw, &Measurement::thread_us_per_record)),
            lowest(figures(runs.binding, &Measurement::thread_us_per_record)),
            lowest(figures(runs.raw, &Measurement::process_us_per_record)),
            lowest(figures(runs.binding, &Measurement::process_us_per_record)));
  return has_raw && has_binding ? (1 - binding_rate / raw_rate) * 100 : 0;
}

int run(const Settings& s) {
  std::printf("bench_kafka_binding: librdkafka %s, broker %s\n", rd_kafka_version_str(), s.bootstrap.c_str());
  RawAdmin admin(s.bootstrap);
  admin.check_reachable(s.bootstrap, 10'000);

  // Unique per run so that concurrent runs and earlier runs' leftovers never meet.
  const std::string prefix = "bench-kafka-binding-" + std::to_string(getpid()) + "-" +
                             std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(
                                                std::chrono::system_clock::now().time_since_epoch())
                                                .count());
  auto raw_topic = [&](int round) { return prefix + "-r" + std::to_string(round) + "-raw"; };
  auto binding_topic = [&](int round) { return prefix + "-r" + std::to_string(round) + "-binding"; };
  std::vector<std::string> topics;
  // Round 0 is the warm-up (JIT of the broker, connections, allocator), not reported.
  for (int round = s.warmup_records > 0 ? 0 : 1; round <= s.rounds; ++round) {
    topics.push_back(raw_topic(round));
    topics.push_back(binding_topic(round));
  }
  admin.create_topics(topics, s.partitions, 60'000);

  std::printf("settings:\n");
  std::printf(
      "  records      %lld per phase and side, %d-byte values, keys \"k0\"..\"k%d\", %d partitions (RF 1)\n",
      static_cast<long long>(s.records), s.value_bytes, kKeyCount - 1, s.partitions);
  std::printf("  rounds       %d, order alternating (odd rounds raw first), warm-up %lld records\n", s.rounds,
              static_cast<long long>(s.warmup_records));
  std::printf("  producer     %s\n", join_properties(raw_producer_properties(s)).c_str());
  std::printf("  consumer     %s\n", join_properties(raw_consumer_properties(s, "")).c_str());
  std::printf(
      "  raw          produce: rd_kafka_producev(F_COPY) + rd_kafka_poll(0) every %lld + rd_kafka_flush\n",
      static_cast<long long>(s.poll_every_records));
  std::printf("               consume: rd_kafka_assign + %s\n",
              s.raw_consume == "batch" ? "rd_kafka_consume_batch_queue(max_poll_records) loop"
                                       : "rd_kafka_consumer_poll loop (one message per call)");
  std::printf(
      "  binding      produce: Producer::send + DeliveryCallback, EventLoop::yield every %lld, flush\n",
      static_cast<long long>(s.poll_every_records));
  std::printf("               consume: Consumer::assign + poll (max_poll_records %d)\n", s.max_poll_records);
  std::printf(
      "  cpu          us per record; thr: the thread that produces or polls (the binding's EventLoop\n");
  std::printf(
      "               thread), proc: the whole process (adds librdkafka's threads); not the broker\n");
  std::fflush(stdout);

  std::vector<std::string> keys;
  for (int k = 0; k < kKeyCount; ++k) keys.push_back("k" + std::to_string(k));

  int exit_code = 0;
  try {
    EventLoop loop;
    KafkaBrokerClient client(loop, KafkaOptions{s.bootstrap, {}});
    if (const Status ok = client.check_config(); !ok.ok()) {
      throw BenchFailure("binding: KafkaBrokerClient::check_config: " + ok.error().to_string());
    }
    int consumer_groups = 0;
    auto group_id = [&] { return prefix + "-g" + std::to_string(consumer_groups++); };

    PhaseRuns produce;
    PhaseRuns consume;
    const uint64_t checksum_wanted = expected_checksum(s.records);
    print_header("round  phase    first");
    for (int round = s.warmup_records > 0 ? 0 : 1; round <= s.rounds; ++round) {
      const bool warmup = round == 0;
      const int64_t records = warmup ? s.warmup_records : s.records;
      const bool raw_first = round % 2 == 1 || warmup;
      std::optional<Measurement> raw;
      std::optional<Measurement> binding;
      for (int turn = 0; turn < 2; ++turn) {
        const bool is_raw = (turn == 0) == raw_first;
        if (is_raw && run_raw(s)) raw = raw_produce(s, raw_topic(round), records, keys);
        if (!is_raw && run_binding(s)) {
          binding = binding_produce(loop, client, s, binding_topic(round), records, keys);
        }
      }
      if (!warmup) {
        print_round(round, "produce", raw_first ? "raw" : "binding", raw, binding);
        if (raw) produce.raw.push_back(*raw);
        if (binding) produce.binding.push_back(*binding);
      }

      // Both consumers read one topic (whichever side produced it), so they fetch identical batches.
      const std::string source = run_raw(s) ? raw_topic(round) : binding_topic(round);
      raw.reset();
      binding.reset();
      for (int turn = 0; turn < 2; ++turn) {
        const bool is_raw = (turn == 0) == raw_first;
        if (is_raw && run_raw(s)) raw = raw_consume(s, source, records, group_id());
        if (!is_raw && run_binding(s))
          binding = binding_consume(loop, client, s, source, records, group_id());
      }
      const uint64_t wanted = warmup ? expected_checksum(records) : checksum_wanted;
      for (const auto& [side, m] : {std::pair{"raw", raw}, std::pair{"binding", binding}}) {
        if (m && (m->records != records || m->checksum != wanted)) {
          throw BenchFailure(std::string(side) + " consume read " + std::to_string(m->records) +
                             " records with value checksum " + std::to_string(m->checksum) + ", expected " +
                             std::to_string(records) + " with " + std::to_string(wanted));
        }
      }
      if (warmup) {
        std::printf("%-6s warm-up done (%lld records each way)\n", "0", static_cast<long long>(records));
        std::fflush(stdout);
      } else {
        print_round(round, "consume", raw_first ? "raw" : "binding", raw, binding);
        if (raw) consume.raw.push_back(*raw);
        if (binding) consume.binding.push_back(*binding);
      }
    }

    print_header("summary");
    const double produce_overhead = print_summary("produce", produce);
    const double consume_overhead = print_summary("consume", consume);
    if (s.only.empty()) {
      std::printf("\noverhead: produce %.1f%%  consume %.1f%%  (goal <= 10%%; median of %d rounds)\n",
                  produce_overhead, consume_overhead, s.rounds);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_kafka_binding: error: %s\n", e.what());
    exit_code = 1;
  }
  if (s.keep_topics) {
    std::printf("topics kept: %s-*\n", prefix.c_str());
  } else {
    admin.delete_topics(topics, 60'000);
  }
  return exit_code;
}

}  // namespace

int main(int argc, char** argv) {
  Settings s;
  if (const char* env = std::getenv("MEPHISTO_KAFKA_BOOTSTRAP")) s.bootstrap = env;
  CLI::App app{"Throughput of the librdkafka binding vs raw librdkafka (produce and consume), as a ratio"};
  app.add_option("--bootstrap", s.bootstrap, "broker address (default: $MEPHISTO_KAFKA_BOOTSTRAP)");
  app.add_option("--records", s.records, "records per phase and side")->check(CLI::PositiveNumber);
  app.add_option("--value-bytes", s.value_bytes, "value size")->check(CLI::PositiveNumber);
  app.add_option("--partitions", s.partitions, "partitions per topic")->check(CLI::PositiveNumber);
  app.add_option("--rounds", s.rounds, "rounds (raw/binding order alternates)")->check(CLI::PositiveNumber);
  app.add_option("--warmup-records", s.warmup_records, "records of the unreported warm-up round (0: none)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--linger-ms", s.linger_ms, "producer linger.ms")->check(CLI::NonNegativeNumber);
  app.add_option("--batch-num-messages", s.batch_num_messages, "producer batch.num.messages")
      ->check(CLI::PositiveNumber);
  app.add_option("--batch-size-bytes", s.batch_size_bytes, "producer batch.size")->check(CLI::PositiveNumber);
  app.add_option("--queue-max-records", s.queue_max_records,
                 "producer queue limit (queue.buffering.max.messages / queue_max_records)")
      ->check(CLI::PositiveNumber);
  app.add_option("--max-poll-records", s.max_poll_records, "binding consumer max_poll_records")
      ->check(CLI::PositiveNumber);
  app.add_option("--poll-every", s.poll_every_records, "records between rd_kafka_poll(0) / EventLoop::yield")
      ->check(CLI::PositiveNumber);
  app.add_option("--stall-timeout-ms", s.stall_timeout_ms, "fail when no progress for this long")
      ->check(CLI::PositiveNumber);
  app.add_option("--raw-consume", s.raw_consume, "raw consume API: poll (rd_kafka_consumer_poll) or batch")
      ->check(CLI::IsMember({"poll", "batch"}));
  app.add_option("--only", s.only, "run one side only, e.g. to profile it")
      ->check(CLI::IsMember({"raw", "binding"}));
  std::vector<std::string> producer_properties;
  std::vector<std::string> consumer_properties;
  app.add_option("--producer-property", producer_properties,
                 "NAME=VALUE: a further librdkafka producer property for both sides (repeatable)");
  app.add_option("--consumer-property", consumer_properties,
                 "NAME=VALUE: a further librdkafka consumer property for both sides (repeatable), e.g. "
                 "queued.min.messages=1000000");
  app.add_flag("--keep-topics", s.keep_topics, "do not delete the benchmark's topics");
  CLI11_PARSE(app, argc, argv);

  for (const auto& [arguments, properties] : {std::pair{&producer_properties, &s.producer_properties},
                                              {&consumer_properties, &s.consumer_properties}}) {
    for (const std::string& argument : *arguments) {
      const size_t equals = argument.find('=');
      if (equals == std::string::npos || equals == 0) {
        std::fprintf(stderr, "bench_kafka_binding: error: property '%s' is not NAME=VALUE\n",
                     argument.c_str());
        return 2;
      }
      (*properties)[argument.substr(0, equals)] = argument.substr(equals + 1);
    }
  }
  if (s.bootstrap.empty()) {
    std::fprintf(stderr,
                 "bench_kafka_binding: error: no broker address: pass --bootstrap HOST:PORT or set "
                 "MEPHISTO_KAFKA_BOOTSTRAP (start a broker with `tools/kafka/broker start`)\n");
    return 2;
  }
  try {
    return run(s);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_kafka_binding: error: %s\n", e.what());
    return 1;
  }
}
