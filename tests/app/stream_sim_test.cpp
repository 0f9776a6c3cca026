// Stream operators in the simulator: items, events (metadata), filter, map, group_by, take, enumerate,
// through, echo, noack with manual acks.
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "tests/app/sim_support.h"

namespace mephisto::apptest {
namespace {

// One worker of `app`, fed `input`; waits until `done`, then stops it gracefully.
template <typename Done>
void run_one(AppHarness& h, const AppDefinition& app, const std::vector<ProducerRecord>& input, Done done) {
  const int w = h.add_worker(app);
  ASSERT_EQ(h.produce(input), static_cast<int64_t>(input.size()));
  ASSERT_TRUE(h.run_until(done, kWaitMs)) << h.dump_logs();
  stop_and_wait(h, w);
}

TEST(StreamSim, ItemsAreKeyValuePairs) {
  std::multiset<std::pair<std::string, std::string>> seen;
  AppHarness h({.seed = seed(41)});
  create_topics(h, {{"in", 3}});
  const AppDefinition app = definition("items", [&seen](App& app) {
    app.agent("pairs", app.topic<std::string, std::string>("in"), [&seen](StrStream& stream) {
      for (auto [key, value] : stream.items()) seen.insert({key, value});
    });
  });
  const auto input = numbered("in", 50);
  run_one(h, app, input, [&] { return seen.size() >= 50; });
  std::multiset<std::pair<std::string, std::string>> expected;
  for (const auto& r : input) expected.insert({*r.key, *r.value});
  EXPECT_EQ(seen, expected);
  EXPECT_EQ(h.committed("items", "in"), nonempty(h.end_offsets("in")));
}

TEST(StreamSim, EventsCarryTopicPartitionOffsetAndTimestamp) {
  using Meta = std::tuple<std::string, int32_t, int64_t, std::string, std::string>;
  std::set<Meta> seen;
  std::set<Meta> timestamps_bad;
  AppHarness h({.seed = seed(42)});
  create_topics(h, {{"in", 3}});
  const AppDefinition app = definition("meta", [&](App& app) {
    app.agent("meta", app.topic<std::string, std::string>("in"),
              [&seen, &timestamps_bad, &app](StrStream& stream) {
                for (auto& event : stream.events()) {
                  Meta meta{event.topic(), event.partition(), event.offset(), event.key(), event.value()};
                  seen.insert(meta);
                  if (event.timestamp_ms() <= 0 || event.timestamp_ms() > now_ms(app))
                    timestamps_bad.insert(meta);
                  EXPECT_EQ(event.record().offset, event.offset());
                }
              });
  });
  run_one(h, app, numbered("in", 45), [&] { return seen.size() >= 45; });
  std::set<Meta> expected;
  for (const auto& r : h.read_all("in")) {
    expected.insert({r.topic, r.partition, r.offset, r.key.value_or(""), r.value.value_or("")});
  }
  EXPECT_EQ(expected.size(), 45u);
  EXPECT_EQ(seen, expected);
  EXPECT_TRUE(timestamps_bad.empty());
}

TEST(StreamSim, FilterPassesMatchesAndAcksTheRest) {
  std::multiset<std::string> passed;
  AppHarness h({.seed = seed(43)});
  create_topics(h, {{"in", 2}});
  int worker_acked = 0;
  const AppDefinition app = definition("filter", [&passed](App& app) {
    app.agent("evens", app.topic<std::string, std::string>("in"), [&passed](StrStream& stream) {
      auto evens = stream.filter([](const std::string& v) { return std::stoi(v) % 2 == 0; });
      for (auto& event : evens) passed.insert(event.value());
    });
  });
  const auto input = numbered("in", 40, "");
  const int w = h.add_worker(app);
  ASSERT_EQ(h.produce(input), 40);
  ASSERT_TRUE(h.run_until([&] { return h.stats(w).events_acked >= 40; }, kWaitMs)) << h.dump_logs();
  worker_acked = static_cast<int>(h.stats(w).events_acked);
  stop_and_wait(h, w);
  std::multiset<std::string> expected;
  for (int i = 0; i < 40; i += 2) expected.insert(std::to_string(i));
  EXPECT_EQ(passed, expected);
  EXPECT_EQ(worker_acked, 40);  // filtered-out events are acked too
  EXPECT_EQ(h.committed("filter", "in"), nonempty(h.end_offsets("in")));
}

TEST(StreamSim, MapChangesTheValue) {
  std::multiset<int64_t> lengths;
  std::multiset<std::string> keys;
  AppHarness h({.seed = seed(44)});
  create_topics(h, {{"in", 2}});
  const AppDefinition app = definition("map", [&](App& app) {
    app.agent("len", app.topic<std::string, std::string>("in"), [&lengths, &keys](StrStream& stream) {
      auto mapped = stream.map([](const std::string& v) { return static_cast<int64_t>(v.size()); });
      for (auto& event : mapped) {
        lengths.insert(event.value());
        keys.insert(event.key());
      }
    });
  });
  std::vector<ProducerRecord> input;
  for (int i = 0; i < 20; ++i) input.push_back(record("in", "key" + std::to_string(i), std::string(i, 'x')));
  run_one(h, app, input, [&] { return lengths.size() >= 20; });
  std::multiset<int64_t> expected;
  for (int i = 0; i < 20; ++i) expected.insert(i);
  EXPECT_EQ(lengths, expected);
  EXPECT_EQ(keys.size(), 20u);
  EXPECT_EQ(h.committed("map", "in"), nonempty(h.end_offsets("in")));
}

TEST(StreamSim, GroupByBringsEveryEventOfAKeyToOneWorkerAndPartition) {
  struct State {
    std::map<std::string, std::set<std::string>> workers;  // page -> workers that saw it
    std::map<std::string, std::set<int32_t>> partitions;   // page -> repartition partitions
    std::set<std::string> topics;
    int count = 0;
  } st;
  AppHarness h({.seed = seed(45)});
  create_topics(h, {{"views", 4}, {"out", 4}});
  const AppDefinition app = definition("grp", [&st](App& app) {
    auto views = app.topic<std::string, std::string>("views");
    auto out = app.topic<std::string, std::string>("out");
    app.agent("by-page", views, [&st, &app, out](StrStream& stream) {
      auto by_page = stream.group_by(
          [](const StrEvent& event) { return event.value().substr(0, event.value().find(':')); }, "page");
      for (auto& event : by_page) {
        st.workers[event.key()].insert(app.settings().worker_id);
        st.partitions[event.key()].insert(event.partition());
        st.topics.insert(event.topic());
        ++st.count;
        Status sent = out.send(event.key(), event.value());
        EXPECT_TRUE(sent.ok());
      }
    });
  });
  const int w0 = h.add_worker(app);
  const int w1 = h.add_worker(app);
  // Let the group settle before any record flows, so no key moves between workers.
  ASSERT_TRUE(h.run_until([&] { return assigned(h, w0) && assigned(h, w1); }, kWaitMs)) << h.dump_logs();
  h.run_for(5000);
  std::vector<ProducerRecord> input;
  for (int i = 0; i < 120; ++i) {
    input.push_back(record("views", "user-" + std::to_string(i % 13),
                           "page" + std::to_string(i % 7) + ":" + std::to_string(i)));
  }
  ASSERT_EQ(h.produce(input), 120);
  ASSERT_TRUE(h.run_until([&] { return st.count >= 120; }, kWaitMs)) << h.dump_logs();
  h.run_for(2000);
  EXPECT_EQ(st.count, 120);
  EXPECT_EQ(st.workers.size(), 7u);
  std::set<std::string> workers_used;
  for (const auto& [page, workers] : st.workers) {
    EXPECT_EQ(workers.size(), 1u) << page;
    workers_used.insert(workers.begin(), workers.end());
  }
  for (const auto& [page, partitions] : st.partitions) EXPECT_EQ(partitions.size(), 1u) << page;
  EXPECT_EQ(st.topics, std::set<std::string>{"grp-views-page-repartition"});
  EXPECT_EQ(workers_used.size(), 2u) << "7 keys over 4 partitions should reach both workers";
  stop_and_wait(h, w0);
  stop_and_wait(h, w1);
  EXPECT_EQ(values_of(h.read_all("out")), values_of(input));
  EXPECT_EQ(values_of(h.read_all("grp-views-page-repartition")), values_of(input));
  // The source is committed once the repartitioned copies are delivered.
  EXPECT_EQ(h.committed("grp", "views"), nonempty(h.end_offsets("views")));
}

TEST(StreamSim, TakeBatchesUpToNAndFlushesATrickleAfterWithin) {
  struct Batch {
    size_t size = 0;
    int64_t at_ms = 0;
    int64_t first_timestamp_ms = 0;
  };
  std::vector<Batch> batches;
  std::multiset<std::string> seen;
  AppHarness h({.seed = seed(46)});
  create_topics(h, {{"in", 1}});
  const AppDefinition app = definition("take", [&](App& app) {
    app.agent("batches", app.topic<std::string, std::string>("in"),
              [&batches, &seen, &app](StrStream& stream) {
                for (auto& batch : stream.take(10, 2000)) {
                  batches.push_back({batch.size(), now_ms(app), batch.front().timestamp_ms()});
                  for (auto& event : batch) seen.insert(event.value());
                }
              });
  });
  const int w = h.add_worker(app);
  const auto burst = numbered("in", 95);
  ASSERT_EQ(h.produce(burst), 95);
  ASSERT_TRUE(h.run_until([&] { return seen.size() >= 95; }, kWaitMs)) << h.dump_logs();
  EXPECT_EQ(seen, values_of(burst));
  size_t total = 0;
  for (const auto& b : batches) {
    EXPECT_GE(b.size, 1u);
    EXPECT_LE(b.size, 10u);
    total += b.size;
  }
  EXPECT_EQ(total, 95u);
  EXPECT_GE(batches.size(), 10u);
  // A single record: the batch waits `within` for more, then goes with one.
  const size_t before = batches.size();
  ASSERT_EQ(h.produce({record("in", "k", "lonely")}), 1);
  ASSERT_TRUE(h.run_until([&] { return batches.size() > before; }, kWaitMs)) << h.dump_logs();
  const Batch& last = batches.back();
  EXPECT_EQ(last.size, 1u);
  EXPECT_GE(last.at_ms - last.first_timestamp_ms, 2000);
  EXPECT_LT(last.at_ms - last.first_timestamp_ms, 3000);
  // The batch is acked when the next is asked for.
  h.run_for(1500);
  EXPECT_EQ(h.stats(w).events_acked, 96);
  stop_and_wait(h, w);
  EXPECT_EQ(h.committed("take", "in"), nonempty(h.end_offsets("in")));
}

TEST(StreamSim, EnumerateCountsFromZero) {
  std::vector<int64_t> indexes;
  std::vector<std::string> values;
  AppHarness h({.seed = seed(47)});
  create_topics(h, {{"in", 1}});
  const AppDefinition app = definition("enum", [&](App& app) {
    app.agent("enum", app.topic<std::string, std::string>("in"), [&indexes, &values](StrStream& stream) {
      for (auto [index, event] : stream.enumerate()) {
        indexes.push_back(index);
        values.push_back(event.value());
      }
    });
  });
  const auto input = numbered("in", 25);
  run_one(h, app, input, [&] { return indexes.size() >= 25; });
  ASSERT_EQ(indexes.size(), 25u);
  for (size_t i = 0; i < indexes.size(); ++i) EXPECT_EQ(indexes[i], static_cast<int64_t>(i));
  // One partition: in offset order.
  for (size_t i = 0; i < values.size(); ++i) EXPECT_EQ(values[i], "v" + std::to_string(i));
}

TEST(StreamSim, ThroughReadsTheStreamBackFromATopic) {
  std::multiset<std::string> seen;
  std::set<std::string> topics;
  AppHarness h({.seed = seed(48)});
  create_topics(h, {{"in", 2}});
  const AppDefinition app = definition("thr", [&](App& app) {
    TopicOptions options;
    options.create = true;
    options.partitions = 3;
    auto middle = app.topic<std::string, std::string>("thr-middle", options);
    app.agent("thr", app.topic<std::string, std::string>("in"), [&seen, &topics, middle](StrStream& stream) {
      auto back = stream.through(middle);
      for (auto& event : back) {
        seen.insert(event.value());
        topics.insert(event.topic());
      }
    });
  });
  const auto input = numbered("in", 30);
  run_one(h, app, input, [&] { return seen.size() >= 30; });
  EXPECT_EQ(seen, values_of(input));
  EXPECT_EQ(topics, std::set<std::string>{"thr-middle"});
  EXPECT_EQ(values_of(h.read_all("thr-middle")), values_of(input));
  EXPECT_EQ(h.committed("thr", "in"), nonempty(h.end_offsets("in")));
  EXPECT_EQ(h.committed("thr", "thr-middle"), nonempty(h.end_offsets("thr-middle")));
}

TEST(StreamSim, EchoCopiesEveryEventAndGoesOn) {
  std::multiset<std::string> seen;
  AppHarness h({.seed = seed(49)});
  create_topics(h, {{"in", 2}, {"copy-a", 2}, {"copy-b", 1}});
  const AppDefinition app = definition("echo", [&](App& app) {
    auto a = app.topic<std::string, std::string>("copy-a");
    auto b = app.topic<std::string, std::string>("copy-b");
    app.agent("echo", app.topic<std::string, std::string>("in"), [&seen, a, b](StrStream& stream) {
      for (auto& event : stream.echo({a, b})) seen.insert(event.value());
    });
  });
  const auto input = numbered("in", 30);
  run_one(h, app, input, [&] { return seen.size() >= 30; });
  EXPECT_EQ(seen, values_of(input));
  EXPECT_EQ(values_of(h.read_all("copy-a")), values_of(input));
  EXPECT_EQ(values_of(h.read_all("copy-b")), values_of(input));
  EXPECT_EQ(h.committed("echo", "in"), nonempty(h.end_offsets("in")));
}

TEST(StreamSim, NoackCommitsStopAtAnUnackedEventUntilItIsAcked) {
  struct State {
    int processed = 0;
    int held = 0;
  } st;
  AppHarness h({.seed = seed(50)});
  create_topics(h, {{"in", 1}});
  const AppDefinition app = definition("noack", [&st](App& app) {
    app.agent("manual", app.topic<std::string, std::string>("in"), [&st](StrStream& stream) {
      // Held in the actor's own frame: a crash unwinds it before the App goes.
      std::vector<StrEvent> held;
      for (auto& event : stream.noack()) {
        ++st.processed;
        if (event.value() == "go") held.clear();  // dropping a held event acks it
        if (event.value() == "hold") {
          held.push_back(std::move(event));
        } else {
          event.ack();
        }
        st.held = static_cast<int>(held.size());
      }
    });
  });
  const int w = h.add_worker(app);
  auto input = numbered("in", 20);
  input[7].value = "hold";
  ASSERT_EQ(h.produce(input), 20);
  ASSERT_TRUE(h.run_until([&] { return st.processed >= 20; }, kWaitMs)) << h.dump_logs();
  h.run_for(3000);  // commit intervals pass
  EXPECT_EQ(st.held, 1);
  EXPECT_EQ(h.stats(w).events_acked, 19);
  EXPECT_EQ(h.committed("noack", "in"), (std::map<TopicPartition, int64_t>{{{"in", 0}, 7}}));
  ASSERT_EQ(h.produce({record("in", "k", "go")}), 1);
  ASSERT_TRUE(h.run_until([&] { return st.processed >= 21; }, kWaitMs)) << h.dump_logs();
  h.run_for(3000);
  EXPECT_EQ(st.held, 0);
  EXPECT_EQ(h.stats(w).events_acked, 21);
  EXPECT_EQ(h.committed("noack", "in"), (std::map<TopicPartition, int64_t>{{{"in", 0}, 21}}));
  stop_and_wait(h, w);
}

}  // namespace
}  // namespace mephisto::apptest
