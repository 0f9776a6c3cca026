// Helpers shared by the Kafka benchmarks (bench_app_pipeline, bench_table_pipeline, bench_table_failover):
// running a function on a fiber of an EventLoop, creating / deleting the benchmark's topics, preloading an
// input topic against a real broker through KafkaBrokerClient, and the command line's common checks.
#pragma once

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <functional>
#include <initializer_list>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

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

// Produces `records` records (keys "k0".."k{keys-1}" round robin, values of value_bytes bytes) into `topic`
// with a producer named `client_id`, waiting for every delivery report. Runs on a fiber of the loop; other
// fibers (workers) keep running.
inline void produce_records(EventLoop& loop, BrokerClient& client, const std::string& client_id,
                            const std::string& topic, int64_t records, int64_t keys, int32_t value_bytes) {
  on_fiber(
      loop, "preload",
      [&] {
        ProducerConfig config;
        config.client_id = client_id;
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
}

// After a run: deletes the benchmark's topics (best effort), or with `keep` says that they are kept.
inline void clean_up_topics(EventLoop& loop, BrokerClient& client, const std::string& prefix, bool keep) {
  if (keep) {
    std::printf("topics kept: %s*\n", prefix.c_str());
  } else {
    delete_topics_with_prefix(loop, client, prefix);
  }
}

// --bootstrap, defaulting to $MEPHISTO_KAFKA_BOOTSTRAP.
inline void add_bootstrap_option(CLI::App& app, std::string& bootstrap) {
  if (const char* env = std::getenv("MEPHISTO_KAFKA_BOOTSTRAP")) bootstrap = env;
  app.add_option("--bootstrap", bootstrap, "broker address (default: $MEPHISTO_KAFKA_BOOTSTRAP)");
}

// Reads NAME=VALUE arguments into `properties`; false (after an error message naming `program`) at one that
// is not NAME=VALUE.
inline bool parse_properties(const char* program, const std::vector<std::string>& arguments,
                             std::map<std::string, std::string>& properties) {
  for (const std::string& argument : arguments) {
    const size_t equals = argument.find('=');
    if (equals == std::string::npos || equals == 0) {
      std::fprintf(stderr, "%s: error: property '%s' is not NAME=VALUE\n", program, argument.c_str());
      return false;
    }
    properties[argument.substr(0, equals)] = argument.substr(equals + 1);
  }
  return true;
}

// False (after an error message naming `program`) when no broker address was given.
inline bool have_bootstrap(const char* program, const std::string& bootstrap) {
  if (!bootstrap.empty()) return true;
  std::fprintf(
      stderr,
      "%s: error: no broker address: pass --bootstrap HOST:PORT or set MEPHISTO_KAFKA_BOOTSTRAP (start a "
      "broker with `tools/kafka/broker start`)\n",
      program);
  return false;
}

// run()'s exit code, or 1 (after an error message naming `program`) if it threw.
inline int run_reporting_errors(const char* program, const std::function<int()>& run) {
  try {
    return run();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: error: %s\n", program, e.what());
    return 1;
  }
}

// NAME=VALUE arguments of a repeatable option and the map they go to.
struct PropertyArguments {
  const std::vector<std::string>& arguments;
  std::map<std::string, std::string>& properties;
};

// The end of a benchmark's main, after CLI11 parsed the command line: the properties into their maps and the
// broker address checked (exit code 2 if either is wrong), then run() (exit code 1 if it throws).
inline int finish_main(const char* program, const std::string& bootstrap,
                       std::initializer_list<PropertyArguments> properties, const std::function<int()>& run) {
  for (const PropertyArguments& property : properties) {
    if (!parse_properties(program, property.arguments, property.properties)) return 2;
  }
  if (!have_bootstrap(program, bootstrap)) return 2;
  return run_reporting_errors(program, run);
}

}  // namespace mephisto::bench
