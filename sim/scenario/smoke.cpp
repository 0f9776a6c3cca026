#include "sim/scenario/smoke.h"

#include <map>
#include <memory>
#include <set>
#include <string>

#include "runtime/seam/env.h"
#include "sim/client/sim_broker_client.h"
#include "sim/event_log.h"
#include "sim/executor.h"
#include "sim/sim_kafka.h"

namespace mephisto::sim {
namespace {

constexpr int32_t kPartitions = 6;
constexpr int32_t kWorkers = 3;
constexpr int64_t kRunLimitMs = 600'000;
const char* const kTopic = "orders";
const char* const kGroup = "smoke-workers";

}  // namespace

SmokeOutcome run_smoke(const SmokeOptions& options) {
  SmokeOutcome out;
  EventLog log(0);
  Executor executor(options.seed, &log);
  SimKafka kafka(executor, SimKafkaConfig{});
  std::set<std::string> acked_values;
  std::set<std::string> seen;
  bool producer_done = false;

  const auto producer = executor.add_process("producer", [&](ProcessContext& ctx) {
    auto client = make_sim_broker_client(kafka, ctx);
    auto admin = client->admin();
    if (!admin.ok()) return;
    TopicSpec spec{kTopic, kPartitions, 3, {{"min.insync.replicas", "2"}}};
    auto created = (*admin)->create_topic(spec, 30000);
    if (!created.ok() && created.code() != ErrorCode::kTopicAlreadyExists) return;
    auto p = client->producer(ProducerConfig{});
    if (!p.ok()) return;
    for (int64_t i = 0; i < options.records; ++i) {
      std::string value = "order-" + std::to_string(i);
      ProducerRecord rec{kTopic, -1, "customer-" + std::to_string(i % 97), value, {}, -1};
      auto st = (*p)->send(std::move(rec), [&, value](const Result<RecordMetadata>& r) {
        if (r.ok()) acked_values.insert(value);
        else ++out.send_failures;
      });
      if (!st.ok()) ++out.send_failures;
      // About one record per virtual millisecond, in bursts of 50.
      if (i % 50 == 49) ctx.scheduler().wait_until_ms(ctx.clock().now_ms() + 50);
    }
    (void)(*p)->flush(120000);
    producer_done = true;
  });

  std::vector<ProcessId> workers;
  for (int w = 1; w <= kWorkers; ++w) {
    workers.push_back(executor.add_process("worker-" + std::to_string(w), [&](ProcessContext& ctx) {
      auto client = make_sim_broker_client(kafka, ctx);
      ConsumerConfig config;
      config.group_id = kGroup;
      config.session_timeout_ms = 10000;
      config.heartbeat_interval_ms = 1000;
      auto c = client->consumer(config);
      if (!c.ok()) return;
      Consumer& consumer = **c;
      // The producer process creates the topic; subscribe once it can exist.
      ctx.scheduler().wait_until_ms(ctx.clock().now_ms() + 500);
      if (!consumer.subscribe({kTopic}, nullptr).ok()) return;
      while (true) {
        auto batch = consumer.poll(1000);
        if (!batch.ok()) continue;
        std::map<TopicPartition, int64_t> offsets;
        for (const auto& r : *batch) {
          ++out.deliveries;
          if (r.value) seen.insert(*r.value);
          offsets[{r.topic, r.partition}] = r.offset + 1;
        }
        // At-least-once: commit after processing; a crash before this line replays the batch.
        if (!offsets.empty()) (void)consumer.commit(offsets, 10000);
      }
    }));
  }

  executor.start(producer);
  for (auto w : workers) executor.start(w);
  if (options.faults) {
    executor.at(3000, kWorld, [&] { executor.crash(workers[1]); });
    executor.at(6000, kWorld, [&] { kafka.crash_broker(1); });
    executor.at(12000, kWorld, [&] { kafka.restart_broker(1); });
    executor.at(15000, kWorld, [&] { executor.start(workers[1]); });
  }

  out.finished = executor.run_until(
      [&] { return producer_done && seen.size() >= acked_values.size() && executor.now_ms() > 16000; }, kRunLimitMs);
  out.acked = static_cast<int64_t>(acked_values.size());
  out.consumed_distinct = static_cast<int64_t>(seen.size());
  for (const auto& v : acked_values)
    if (seen.count(v) == 0) ++out.lost;
  // Stop every process before the cluster and the captured locals go away.
  for (auto w : workers)
    if (executor.running(w)) executor.crash(w);
  if (executor.running(producer)) executor.crash(producer);
  out.hash = log.hash();
  out.events = log.count();
  out.virtual_ms = executor.now_ms();
  return out;
}

}  // namespace mephisto::sim
