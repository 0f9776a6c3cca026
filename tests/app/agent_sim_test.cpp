// Agents in the simulator: consume, send, commit on stop; concurrency; sinks (topic, agent, function).
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <set>
#include <string>
#include <vector>

#include "tests/app/sim_support.h"

namespace mephisto::apptest {
namespace {

TEST(AgentSim, EveryInputReachesTheOutputAndStopCommitsTheEnd) {
  AppHarness h({.seed = seed(11)});
  create_topics(h, {{"in", 4}, {"out", 4}});
  const AppDefinition relay = definition("relay", [](App& app) {
    auto in = app.topic<std::string, std::string>("in");
    auto out = app.topic<std::string, std::string>("out");
    app.agent("relay", in, [out](StrStream& stream) {
      for (auto& event : stream) {
        Status sent = out.send(event.key(), event.value() + "!");
        EXPECT_TRUE(sent.ok());
      }
    });
  });
  // No commit before stop: neither the interval nor the ack count is reached, so only the stop commits.
  const int w = h.add_worker(relay, [](AppSettings& s) {
    s.broker_commit_interval_ms = 3'600'000;
    s.broker_commit_every = 1'000'000;
  });
  const auto input = numbered("in", 200);
  ASSERT_EQ(h.produce(input), 200);
  ASSERT_TRUE(h.run_until([&] { return h.stats(w).events_acked >= 200; }, kWaitMs)) << h.dump_logs();
  EXPECT_TRUE(h.committed("relay", "in").empty()) << describe(h.committed("relay", "in"));
  EXPECT_EQ(h.stats(w).records_received, 200);
  EXPECT_EQ(h.stats(w).records_delivered, 200);

  stop_and_wait(h, w);
  const auto out = h.read_all("out");
  std::multiset<std::string> expected;
  for (const auto& r : input) expected.insert(*r.value + "!");
  EXPECT_EQ(values_of(out), expected);
  // Keys go through unchanged.
  std::set<std::pair<std::string, std::string>> in_pairs, out_pairs;
  for (const auto& r : input) in_pairs.insert({*r.key, *r.value + "!"});
  for (const auto& r : out) out_pairs.insert({r.key.value_or(""), r.value.value_or("")});
  EXPECT_EQ(out_pairs, in_pairs);
  // The stop's commit covers every record.
  const auto ends = nonempty(h.end_offsets("in"));
  EXPECT_EQ(ends.size(), 4u);
  EXPECT_EQ(h.committed("relay", "in"), ends) << describe(h.committed("relay", "in"));
  EXPECT_GE(h.stats(w).commits, 1);
}

TEST(AgentSim, ConcurrencyRunsNActorsOverOneBuffer) {
  struct State {
    int bodies = 0;
    int in_flight = 0;
    int max_in_flight = 0;
    std::multiset<std::string> processed;
  } st;
  AppHarness h({.seed = seed(12)});
  create_topics(h, {{"in", 2}});
  const AppDefinition slow = definition("conc", [&st](App& app) {
    auto in = app.topic<std::string, std::string>("in");
    AgentOptions<NoReply> options;
    options.concurrency = 4;
    app.agent(
        "slow", in,
        [&st, &app](StrStream& stream) {
          ++st.bodies;
          for (auto& event : stream) {
            ++st.in_flight;
            st.max_in_flight = std::max(st.max_in_flight, st.in_flight);
            sleep_ms(app, 50);
            --st.in_flight;
            st.processed.insert(event.value());
          }
        },
        options);
  });
  const int w = h.add_worker(slow);
  const auto input = numbered("in", 40);
  ASSERT_EQ(h.produce(input), 40);
  ASSERT_TRUE(h.run_until([&] { return st.processed.size() >= 40; }, kWaitMs)) << h.dump_logs();
  EXPECT_EQ(st.processed, values_of(input));
  EXPECT_EQ(st.bodies, 4);
  EXPECT_EQ(st.max_in_flight, 4);
  ASSERT_NE(h.app(w), nullptr);
  const auto agents = h.app(w)->agents();
  ASSERT_EQ(agents.size(), 1u);
  EXPECT_EQ(agents[0].concurrency, 4);
  stop_and_wait(h, w);
  // Events finished out of order across actors; the commit still reaches the end of each partition.
  EXPECT_EQ(h.committed("conc", "in"), nonempty(h.end_offsets("in")));
}

TEST(AgentSim, SinksReceiveEveryYieldedValue) {
  struct State {
    std::multiset<std::string> collected;   // the agent sink's reader
    std::multiset<std::string> functioned;  // the function sink
  } st;
  AppHarness h({.seed = seed(13)});
  create_topics(h, {{"in", 3}, {"out", 3}});
  const AppDefinition sinks = definition("sinks", [&st](App& app) {
    auto in = app.topic<std::string, std::string>("in");
    auto out = app.topic<std::string, std::string>("out");
    auto collector = app.agent<std::string, std::string>("collector", [&st](StrStream& stream) {
      for (auto& event : stream) st.collected.insert(event.value());
    });
    AgentOptions<std::string> options;
    options.sinks.push_back(Sink<std::string>::to(out));
    options.sinks.push_back(Sink<std::string>::to(collector.topic()));
    options.sinks.push_back(Sink<std::string>::function(
        "record", [&st](const std::string& value) { st.functioned.insert(value); }));
    app.agent<std::string>(
        "upper", in,
        [](StrStream& stream, Output<std::string>& output) {
          for (auto& event : stream) {
            std::string value = event.value();
            std::transform(value.begin(), value.end(), value.begin(),
                           [](unsigned char c) { return std::toupper(c); });
            output.yield(value);
          }
        },
        options);
  });
  const int w = h.add_worker(sinks);
  const auto input = numbered("in", 60, "word");
  ASSERT_EQ(h.produce(input), 60);
  ASSERT_TRUE(h.run_until([&] { return st.collected.size() >= 60 && st.functioned.size() >= 60; }, kWaitMs))
      << h.dump_logs();
  std::multiset<std::string> expected;
  for (const auto& r : input) {
    std::string value = *r.value;
    std::transform(value.begin(), value.end(), value.begin(),
                   [](unsigned char c) { return std::toupper(c); });
    expected.insert(value);
  }
  EXPECT_EQ(st.collected, expected);
  EXPECT_EQ(st.functioned, expected);
  ASSERT_NE(h.app(w), nullptr);
  std::vector<std::string> sink_names;
  for (const auto& agent : h.app(w)->agents()) {
    if (agent.name == "upper") sink_names = agent.sinks;
  }
  EXPECT_EQ(sink_names, (std::vector<std::string>{"topic:out", "topic:sinks-collector", "function:record"}));
  stop_and_wait(h, w);
  const auto out = h.read_all("out");
  EXPECT_EQ(values_of(out), expected);
  // A topic sink keys the output by the input event's key.
  std::set<std::string> out_keys;
  for (const auto& r : out) out_keys.insert(r.key.value_or("<null>"));
  std::set<std::string> in_keys;
  for (const auto& r : input) in_keys.insert(*r.key);
  EXPECT_EQ(out_keys, in_keys);
  EXPECT_EQ(values_of(h.read_all("sinks-collector")), expected);
}

}  // namespace
}  // namespace mephisto::apptest
