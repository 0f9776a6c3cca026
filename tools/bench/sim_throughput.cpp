// Benchmark (not a test): simulated produce -> consume throughput on one core.
// 3 brokers, one topic of 12 partitions (RF 3, acks=all, idempotent producer), one consumer group of 3
// members. Prints simulated records per wall-second and the ratio of virtual to wall time.
//
//   build/bin/bench_sim_throughput [--records N] [--seed S]
#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdio>

#include "sim/client/sim_broker_client.h"
#include "sim/event_log.h"
#include "sim/executor.h"
#include "sim/sim_kafka.h"

using namespace mephisto;

int main(int argc, char** argv) {
  int64_t records = 1'000'000;
  uint64_t seed = 1;
  CLI::App app{"Simulated produce->consume throughput"};
  app.add_option("--records", records, "records to produce and consume");
  app.add_option("--seed", seed, "seed");
  CLI11_PARSE(app, argc, argv);

  sim::EventLog log(0);  // hash only: keeping events would measure memory, not the simulator
  sim::Executor executor(seed, &log);
  sim::SimKafka kafka(executor, sim::SimKafkaConfig{});
  const std::string topic = "bench";
  const std::string value(100, 'v');
  int64_t acked = 0, consumed = 0, failed = 0;
  bool created = false;

  const auto producer = executor.add_process("producer", [&](sim::ProcessContext& ctx) {
    auto client = sim::make_sim_broker_client(kafka, ctx);
    auto admin = client->admin();
    if (!(*admin)->create_topic(TopicSpec{topic, 12, 3, {}}, 30000).ok()) {
      std::fprintf(stderr, "create topic failed\n");
      return;
    }
    created = true;
    ProducerConfig config;
    config.queue_max_records = 200000;
    auto p = client->producer(config);
    Producer& producer = **p;
    for (int64_t i = 0; i < records;) {
      auto st = producer.send(ProducerRecord{topic, -1, "k" + std::to_string(i % 10007), value, {}, -1},
                              [&](const Result<RecordMetadata>& r) {
                                if (r.ok()) {
                                  ++acked;
                                } else {
                                  if (failed++ == 0)
                                    std::fprintf(stderr, "first delivery failure: %s\n",
                                                 r.error().to_string().c_str());
                                }
                              });
      if (st.ok()) {
        ++i;
      } else if (st.code() == ErrorCode::kQueueFull) {
        ctx.scheduler().wait_until_ms(ctx.clock().now_ms() + 5);
      } else {
        ++failed;
        ++i;
      }
    }
    (void)producer.flush(600000);
  });
  std::vector<sim::ProcessId> members;
  for (int m = 0; m < 3; ++m) {
    members.push_back(executor.add_process("consumer-" + std::to_string(m), [&](sim::ProcessContext& ctx) {
      auto client = sim::make_sim_broker_client(kafka, ctx);
      ConsumerConfig config;
      config.group_id = "bench";
      config.max_poll_records = 5000;
      config.isolation_level = IsolationLevel::kReadUncommitted;
      auto c = client->consumer(config);
      Consumer& consumer = **c;
      while (!created) ctx.scheduler().wait_until_ms(ctx.clock().now_ms() + 100);
      (void)consumer.subscribe({topic}, nullptr);
      while (true) {
        auto batch = consumer.poll(1000);
        if (batch.ok()) consumed += static_cast<int64_t>(batch->size());
      }
    }));
  }
  executor.start(producer);
  for (auto m : members) executor.start(m);

  const auto start = std::chrono::steady_clock::now();
  const bool done = executor.run_until([&] { return consumed >= records; }, 3'600'000);
  const double wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double virtual_s = static_cast<double>(executor.now_ms()) / 1000.0;
  for (auto m : members) executor.crash(m);
  if (executor.running(producer)) executor.crash(producer);

  std::printf("records produced (acked)   %lld (failed %lld)\n", static_cast<long long>(acked),
              static_cast<long long>(failed));
  std::printf("records consumed           %lld%s\n", static_cast<long long>(consumed),
              done ? "" : " (INCOMPLETE)");
  std::printf("wall time                  %.3f s\n", wall_s);
  std::printf("virtual time               %.3f s\n", virtual_s);
  std::printf(
      "throughput                 %.0f simulated records per wall-second (produce->consume, one core)\n",
      static_cast<double>(consumed) / wall_s);
  std::printf("virtual/wall time ratio    %.2f\n", virtual_s / wall_s);
  std::printf("executor steps             %llu, events hashed %llu\n",
              static_cast<unsigned long long>(executor.steps()),
              static_cast<unsigned long long>(log.count()));
  return done ? 0 : 1;
}
