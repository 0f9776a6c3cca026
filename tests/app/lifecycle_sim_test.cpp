// A worker's life: a graceful stop drains buffered events before its final commit; a crash destroys the App
// and a restart resumes from the last commit; a missing source topic stops run() with a message naming it;
// agents over in-memory channels.
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include "tests/app/sim_support.h"

namespace mephisto::apptest {
namespace {

TEST(LifecycleSim, GracefulStopDrainsBufferedEvents) {
  std::vector<std::string> processed;
  AppHarness h({.seed = seed(101)});
  create_topics(h, {{"in", 1}});
  const AppDefinition app = definition("drain", [&processed](App& app) {
    app.agent("slow", app.topic<std::string, std::string>("in"), [&processed, &app](StrStream& stream) {
      for (auto& event : stream) {
        sleep_ms(app, 100);
        processed.push_back(event.value());
      }
    });
  });
  const int w = h.add_worker(app, [](AppSettings& s) { s.broker_commit_interval_ms = 3'600'000; });
  const auto input = numbered("in", 50);
  ASSERT_EQ(h.produce(input), 50);
  ASSERT_TRUE(h.run_until([&] { return processed.size() >= 5; }, kWaitMs)) << h.dump_logs();
  EXPECT_GE(h.stats(w).records_received, 40) << "the rest is buffered";
  stop_and_wait(h, w);
  EXPECT_EQ(processed.size(), 50u);
  EXPECT_EQ(h.stats(w).events_acked, 50);
  EXPECT_EQ(h.committed("drain", "in"), (std::map<TopicPartition, int64_t>{{{"in", 0}, 50}}));
}

TEST(LifecycleSim, CrashDestroysTheAppAndARestartResumesFromTheLastCommit) {
  std::vector<std::pair<uint32_t, std::string>> processed;  // (start number, value)
  uint32_t starts = 0;
  AppHarness h({.seed = seed(102)});
  create_topics(h, {{"in", 1}});
  const AppDefinition app = definition("restart", [&processed, &starts](App& app) {
    const uint32_t start = ++starts;
    app.agent("slow", app.topic<std::string, std::string>("in"),
              [&processed, &app, start](StrStream& stream) {
                for (auto& event : stream) {
                  sleep_ms(app, 50);
                  processed.push_back({start, event.value()});
                }
              });
  });
  const int w = h.add_worker(app);
  ASSERT_EQ(h.produce(numbered("in", 60)), 60);
  ASSERT_TRUE(h.run_until([&] { return processed.size() >= 30; }, kWaitMs)) << h.dump_logs();
  h.crash_worker(w);
  EXPECT_FALSE(h.worker_running(w));
  EXPECT_EQ(h.app(w), nullptr);
  EXPECT_FALSE(h.worker_result(w).has_value()) << "a crash returns nothing";
  EXPECT_GE(h.stats(w).events_acked, 30) << "the counters of the crashed App are kept";
  const auto at_crash = h.committed("restart", "in");
  ASSERT_EQ(at_crash.size(), 1u);
  const int64_t resume_at = at_crash.begin()->second;
  EXPECT_GT(resume_at, 0);
  EXPECT_LE(resume_at, 30);

  // The session of the crashed member must expire before its partition is handed out again.
  h.restart_worker(w);
  ASSERT_TRUE(
      h.run_until([&] { return processed.size() >= 60 + static_cast<size_t>(30 - resume_at); }, kWaitMs))
      << h.dump_logs();
  h.run_for(1000);
  stop_and_wait(h, w);
  EXPECT_EQ(starts, 2u);
  std::vector<std::string> second;
  for (const auto& [start, value] : processed) {
    if (start == 2) second.push_back(value);
  }
  ASSERT_FALSE(second.empty());
  EXPECT_EQ(second.front(), "v" + std::to_string(resume_at)) << "the restart resumes at the committed offset";
  EXPECT_EQ(second.back(), "v59");
  EXPECT_EQ(h.committed("restart", "in"), (std::map<TopicPartition, int64_t>{{{"in", 0}, 60}}));
  bool restart_logged = false;
  for (const auto& line : h.worker_log(w))
    restart_logged = restart_logged || line.find("harness: restart") != std::string::npos;
  EXPECT_TRUE(restart_logged) << "the log is kept across restarts";
}

TEST(LifecycleSim, MissingSourceTopicStopsRunWithItsName) {
  AppHarness h({.seed = seed(103)});
  const AppDefinition app = definition("missing", [](App& app) {
    app.agent("reader", app.topic<std::string, std::string>("no-such-topic"), [](StrStream& stream) {
      for (auto& event : stream) (void)event;
    });
  });
  const int w = h.add_worker(app);
  ASSERT_TRUE(h.run_until([&] { return !h.worker_running(w); }, kWaitMs)) << h.dump_logs();
  ASSERT_TRUE(h.worker_result(w).has_value());
  ASSERT_FALSE(h.worker_result(w)->ok());
  EXPECT_EQ(h.worker_result(w)->code(), ErrorCode::kUnknownTopicOrPartition);
  EXPECT_NE(h.worker_result(w)->error().message.find("no-such-topic"), std::string::npos);
}

TEST(LifecycleSim, InMemoryChannelAgent) {
  struct State {
    std::multiset<std::string> received;
    std::set<std::string> topics;
  } st;
  AppHarness h({.seed = seed(104)});
  create_topics(h, {{"in", 2}});
  const AppDefinition app = definition("chan", [&st](App& app) {
    auto channel = app.channel<std::string, std::string>("memo");
    app.agent("collector", channel, [&st](StrStream& stream) {
      for (auto& event : stream) {
        st.received.insert(event.key() + "=" + event.value());
        st.topics.insert(event.topic());
      }
    });
    app.agent("feeder", app.topic<std::string, std::string>("in"), [channel](StrStream& stream) {
      for (auto& event : stream) {
        Status sent = channel.send(event.key(), event.value() + "*");
        EXPECT_TRUE(sent.ok());
      }
    });
  });
  const int w = h.add_worker(app);
  const auto input = numbered("in", 30);
  ASSERT_EQ(h.produce(input), 30);
  ASSERT_TRUE(h.run_until([&] { return st.received.size() >= 30; }, kWaitMs)) << h.dump_logs();
  std::multiset<std::string> expected;
  for (const auto& r : input) expected.insert(*r.key + "=" + *r.value + "*");
  EXPECT_EQ(st.received, expected);
  EXPECT_EQ(st.topics, std::set<std::string>{"memo"});
  bool channel_listed = false;
  for (const auto& topic : h.app(w)->topics())
    channel_listed = channel_listed || (topic.name == "memo" && topic.in_memory);
  EXPECT_TRUE(channel_listed);
  stop_and_wait(h, w);
  EXPECT_EQ(h.committed("chan", "in"), nonempty(h.end_offsets("in")));
  EXPECT_EQ(h.stats(w).records_received, 30) << "channel records are not Kafka records";
}

// At-least-once through an in-memory channel: an input whose channel record is still being processed is not
// committed, even across several commit intervals; once the reader finishes it, the commit moves past it.
TEST(LifecycleSim, AnInputIsNotCommittedBeforeItsChannelRecordIsProcessed) {
  bool release_blocked = false;
  int processed = 0;
  AppHarness h({.seed = seed(106)});
  create_topics(h, {{"in", 1}});
  const AppDefinition app = definition("chanack", [&](App& app) {
    auto channel = app.channel<std::string, std::string>("memo");
    app.agent("reader", channel, [&](StrStream& stream) {
      for (auto& event : stream) {
        while (event.value() == "v5" && !release_blocked) sleep_ms(app, 100);
        ++processed;
      }
    });
    app.agent("feeder", app.topic<std::string, std::string>("in"), [channel](StrStream& stream) {
      for (auto& event : stream) {
        Status sent = channel.send(event.key(), event.value());
        EXPECT_TRUE(sent.ok());
      }
    });
  });
  const int w = h.add_worker(app);
  ASSERT_EQ(h.produce(numbered("in", 10)), 10);
  ASSERT_TRUE(h.run_until([&] { return processed >= 5; }, kWaitMs)) << h.dump_logs();
  h.run_for(5000);  // five commit intervals
  EXPECT_EQ(processed, 5);
  // v0..v4 are done; v5 is stuck in the channel's reader, so offset 5 is the furthest the group may commit.
  const auto blocked = h.committed("chanack", "in");
  ASSERT_EQ(blocked.size(), 1u) << describe(blocked);
  EXPECT_EQ(blocked.begin()->second, 5) << describe(blocked);
  release_blocked = true;
  ASSERT_TRUE(h.run_until([&] { return processed >= 10; }, kWaitMs)) << h.dump_logs();
  h.run_for(3000);
  EXPECT_EQ(h.committed("chanack", "in"), nonempty(h.end_offsets("in")));
  stop_and_wait(h, w);
}

TEST(LifecycleSim, FullBuffersPauseFetchingAndNothingIsLost) {
  std::multiset<std::string> processed;
  AppHarness h({.seed = seed(105)});
  create_topics(h, {{"in", 2}});
  const AppDefinition app = definition("flow", [&processed](App& app) {
    app.agent("slow", app.topic<std::string, std::string>("in"), [&processed, &app](StrStream& stream) {
      for (auto& event : stream) {
        // Slow enough that draining half the buffer takes longer than the flow-control grace (1 s): fetching
        // must then pause.
        sleep_ms(app, 5);
        processed.insert(event.value());
      }
    });
  });
  const int w = h.add_worker(app, [](AppSettings& s) { s.stream_buffer_maxsize = 700; });
  const auto input = numbered("in", 3000);
  ASSERT_EQ(h.produce(input), 3000);
  ASSERT_TRUE(h.run_until([&] { return processed.size() >= 3000; }, kWaitMs)) << h.dump_logs();
  EXPECT_EQ(processed, values_of(input));
  EXPECT_GE(h.stats(w).flow_control_pauses, 1);
  EXPECT_EQ(h.stats(w).records_received, 3000);
  stop_and_wait(h, w);
  EXPECT_EQ(h.committed("flow", "in"), nonempty(h.end_offsets("in")));
}

TEST(LifecycleSim, StopRightAfterAddingStopsCleanly) {
  AppHarness h({.seed = seed(106)});
  create_topics(h, {{"in", 1}});
  const AppDefinition app = definition("quick", [](App& app) {
    app.agent("idle", app.topic<std::string, std::string>("in"), [](StrStream& stream) {
      for ([[maybe_unused]] auto& event : stream) {
      }
    });
  });
  const int w = h.add_worker(app);
  stop_and_wait(h, w);
  EXPECT_EQ(h.app(w), nullptr);
  h.restart_worker(w);
  ASSERT_TRUE(h.run_until([&] { return assigned(h, w); }, kWaitMs)) << h.dump_logs();
  EXPECT_FALSE(h.worker_result(w).has_value()) << "a restart clears the previous result";
  stop_and_wait(h, w);
}

}  // namespace
}  // namespace mephisto::apptest
