// Helpers shared by the table benchmarks (bench_table_pipeline, bench_table_failover): running a function on
// a fiber of an EventLoop, creating / deleting the benchmark's topics and preloading an input topic, against
// a real broker through KafkaBrokerClient. Structure as in bench_app_pipeline.cpp.
#pragma once

#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "runtime/app/app.h"
#include "runtime/kafka/kafka_broker_client.h"
#include "runtime/loop/event_loop.h"
#include "runtime/seam/broker_client.h"

namespace mephisto::bench {

// Anything that makes the figures meaningless: the run stops with this message and a non-zero exit.
struct BenchFailure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

inline double wall_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

inline double process_cpu_s() {
  timespec now{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &now);
  return static_cast<double>(now.tv_sec) + static_cast<double>(now.tv_nsec) * 1e-9;
}

inline void check(const Status& status, const std::string& what) {
  if (!status.ok()) throw BenchFailure(what + ": " + status.error().to_string());
}

// Runs fn on a fiber of the loop and the loop until fn returns; rethrows what fn threw.
inline void on_fiber(EventLoop& loop, const std::string& name, const std::function<void()>& fn,
                     int64_t timeout_ms) {
  bool finished = false;
  std::exception_ptr error;
  loop.spawn(name, [&] {
    try {
      fn();
    } catch (...) {
      error = std::current_exception();
    }
    finished = true;
  });
  const RealClock clock;
  if (!loop.run([&] { return finished; }, clock.now_ms() + timeout_ms)) {
    throw BenchFailure(name + ": did not finish within " + std::to_string(timeout_ms) + " ms");
  }
  if (error) std::rethrow_exception(error);
}

inline void create_topics(EventLoop& loop, BrokerClient& client, const std::vector<std::string>& names,
                          int32_t partitions) {
  on_fiber(
      loop, "create-topics",
      [&] {
        auto admin = client.admin();
        if (!admin.ok()) throw BenchFailure("admin: " + admin.error().to_string());
        for (const auto& name : names)
          check(admin.value()->create_topic({name, partitions, 1, {}}, 60'000), name);
      },
      120'000);
}

inline void delete_topics_with_prefix(EventLoop& loop, BrokerClient& client, const std::string& prefix) {
  try {
    on_fiber(
        loop, "delete-topics",
        [&] {
          auto admin = client.admin();
          if (!admin.ok()) throw BenchFailure("admin: " + admin.error().to_string());
          auto names = admin.value()->list_topics(30'000);
          if (!names.ok()) throw BenchFailure("list topics: " + names.error().to_string());
          for (const auto& name : names.value()) {
            if (name.rfind(prefix, 0) == 0)
              check(admin.value()->delete_topic(name, 30'000), "delete " + name);
          }
        },
        120'000);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "warning: deleting the benchmark topics failed (%s); delete %s* by hand\n", e.what(),
                 prefix.c_str());
  }
}

// Produces `records` records (keys "k0".."k{keys-1}" round robin, values of value_bytes bytes) into `topic`,
// waiting for every delivery report. Runs on a fiber of the loop; other fibers (workers) keep running.
inline void preload(EventLoop& loop, BrokerClient& client, const std::string& topic, int64_t records,
                    int64_t keys, int32_t value_bytes) {
  const double start = wall_s();
  on_fiber(
      loop, "preload",
      [&] {
        ProducerConfig config;
        config.client_id = "bench-table-preload";
        config.extra = {{"batch.num.messages", "10000"}, {"batch.size", "1000000"}};
        auto producer = client.producer(config);
        if (!producer.ok()) throw BenchFailure("preload producer: " + producer.error().to_string());
        int64_t delivered = 0;
        std::string failure;
        const std::string body(static_cast<size_t>(value_bytes), 'v');
        for (int64_t i = 0; i < records; ++i) {
          ProducerRecord record;
          record.topic = topic;
          record.key = "k" + std::to_string(i % keys);
          record.value = body;
          for (;;) {
            const Status sent = producer.value()->send(record, [&](const Result<RecordMetadata>& result) {
              if (result.ok()) {
                ++delivered;
              } else if (failure.empty()) {
                failure = result.error().to_string();
              }
            });
            if (sent.ok()) break;
            if (sent.code() != ErrorCode::kQueueFull) check(sent, "preload send");
            loop.park_until(loop.clock().now_ms() + 1);
          }
          if (i % 1000 == 0) loop.yield();
        }
        check(producer.value()->flush(120'000), "preload flush");
        if (delivered != records)
          throw BenchFailure("preload: " + std::to_string(delivered) + " delivered; " + failure);
      },
      300'000);
  std::printf("preloaded %lld records of %d bytes (%lld keys) into %s in %.1f s\n",
              static_cast<long long>(records), value_bytes, static_cast<long long>(keys), topic.c_str(),
              wall_s() - start);
  std::fflush(stdout);
}

// The App's log lines go to stderr, so stdout holds only the figures.
inline void log_to_stderr(App& app, const std::string& prefix) {
  app.set_log_sink([prefix](LogLevel level, const std::string& line) {
    std::fprintf(stderr, "%s[%s] %s\n", prefix.c_str(), log_level_name(level), line.c_str());
  });
}

// Before an App that may still run is destroyed (a failed measurement): stop it, or end the process (its
// fibers would resume on a destroyed App).
inline void stop_before_destroy(EventLoop& loop, App& app, const std::optional<Status>& result) {
  if (result.has_value()) return;
  loop.spawn("stop-on-failure", [&app] { app.stop(); });
  const RealClock clock;
  if (!loop.run([&] { return result.has_value(); }, clock.now_ms() + 60'000)) {
    std::fprintf(stderr, "error: a worker did not stop within 60 s after a failure; exiting\n");
    std::fflush(stdout);
    std::_Exit(1);
  }
}

inline double median(std::vector<double> values) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const size_t n = values.size();
  return n % 2 == 1 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

}  // namespace mephisto::bench
