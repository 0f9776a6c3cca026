// Shared helpers of the App simulator tests (tests/app/*_sim_test.cpp): settings with short timeouts so that
// virtual time stays short, record generators, and small comparisons over what the harness reads back.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "runtime/app/app.h"
#include "sim/app/app_harness.h"

namespace mephisto::apptest {

using sim::AppHarness;
using sim::AppHarnessOptions;
using StrStream = Stream<std::string, std::string>;
using StrEvent = Event<std::string, std::string>;
using StrTopic = Topic<std::string, std::string>;

// A test's seed: `base`, shifted by the environment variable MEPHISTO_APP_SIM_SEED when set (to explore other
// interleavings of the same scenarios: MEPHISTO_APP_SIM_SEED=17 ctest -L sim -R 'sim\.[A-Za-z]+Sim\.').
inline uint64_t seed(uint64_t base) {
  const char* shift = std::getenv("MEPHISTO_APP_SIM_SEED");
  if (shift == nullptr || *shift == '\0') return base;
  return base + std::strtoull(shift, nullptr, 0) * 1'000'003;
}

// Virtual-time limit for one wait in a test.
inline constexpr int64_t kWaitMs = 120'000;

// Settings of a simulated worker: Faust's defaults with short group timeouts and a 1 s commit interval, and
// internal topics replicated 3 times (the simulated cluster's min.insync.replicas is 2, so replication factor
// 1 topics would refuse acks=all writes).
inline AppSettings sim_settings(const std::string& id) {
  AppSettings settings;
  settings.id = id;
  settings.broker_session_timeout_ms = 10000;
  settings.broker_heartbeat_interval_ms = 1000;
  settings.broker_commit_interval_ms = 1000;
  settings.topic_partitions = 4;
  settings.topic_replication_factor = 3;
  settings.stop_timeout_ms = 15000;
  settings.rebalance_drain_timeout_ms = 2000;
  settings.ask_timeout_ms = 10000;
  return settings;
}

inline AppDefinition definition(const std::string& id, std::function<void(App&)> define) {
  AppDefinition out;
  out.name = id;
  out.description = "test app " + id;
  out.default_settings = [id] { return sim_settings(id); };
  out.define = std::move(define);
  return out;
}

// n records "<prefix><first+i>" keyed "k<i % keys>".
inline std::vector<ProducerRecord> numbered(const std::string& topic, int n, const std::string& prefix = "v",
                                            int keys = 16, int first = 0) {
  std::vector<ProducerRecord> out;
  for (int i = first; i < first + n; ++i) {
    ProducerRecord record;
    record.topic = topic;
    record.key = "k" + std::to_string(i % keys);
    record.value = prefix + std::to_string(i);
    out.push_back(std::move(record));
  }
  return out;
}

inline ProducerRecord record(const std::string& topic, const std::string& key, const std::string& value,
                             int32_t partition = -1) {
  ProducerRecord out;
  out.topic = topic;
  out.partition = partition;
  out.key = key;
  out.value = value;
  return out;
}

inline std::multiset<std::string> values_of(const std::vector<ConsumerRecord>& records) {
  std::multiset<std::string> out;
  for (const auto& r : records) out.insert(r.value.value_or("<null>"));
  return out;
}

inline std::multiset<std::string> values_of(const std::vector<ProducerRecord>& records) {
  std::multiset<std::string> out;
  for (const auto& r : records) out.insert(r.value.value_or("<null>"));
  return out;
}

// End offsets of the partitions that hold records (committed() lists only partitions with a commit).
inline std::map<TopicPartition, int64_t> nonempty(const std::map<TopicPartition, int64_t>& ends) {
  std::map<TopicPartition, int64_t> out;
  for (const auto& [tp, end] : ends) {
    if (end > 0) out[tp] = end;
  }
  return out;
}

inline std::string describe(const std::map<TopicPartition, int64_t>& offsets) {
  std::string out = "{";
  for (const auto& [tp, offset] : offsets)
    out += " " + tp.topic + "/" + std::to_string(tp.partition) + "=" + std::to_string(offset);
  return out + " }";
}

// Parks the calling fiber (an agent's actor, a timer) for `ms` of the worker's clock.
inline void sleep_ms(App& app, int64_t ms) {
  const Env& env = app.engine().env();
  env.scheduler->wait_until_ms(env.clock->now_ms() + ms);
}

inline int64_t now_ms(App& app) {
  return app.engine().env().clock->now_ms();
}

inline void create_topics(AppHarness& h, const std::vector<std::pair<std::string, int32_t>>& topics) {
  for (const auto& [name, partitions] : topics) {
    Status created = h.create_topic(TopicSpec{name, partitions, 3, {}});
    ASSERT_TRUE(created.ok()) << name << ": " << created.error().to_string();
  }
}

// True once the worker's App exists and holds at least one partition.
inline bool assigned(AppHarness& h, int worker) {
  App* app = h.app(worker);
  return app != nullptr && !app->assignment().empty();
}

// Stops the worker gracefully and waits for run() to return; expects it to return ok.
inline void stop_and_wait(AppHarness& h, int worker) {
  h.stop_worker(worker);
  ASSERT_TRUE(h.run_until([&] { return !h.worker_running(worker); }, kWaitMs)) << h.dump_logs();
  ASSERT_TRUE(h.worker_result(worker).has_value());
  EXPECT_TRUE(h.worker_result(worker)->ok()) << h.worker_result(worker)->error().to_string() << "\n"
                                             << h.dump_logs();
}

}  // namespace mephisto::apptest
