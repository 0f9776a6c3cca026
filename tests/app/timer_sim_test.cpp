// Timers (every interval; on_leader: one worker of the group) and tasks (once per start).
#include <gtest/gtest.h>

#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "tests/app/sim_support.h"

namespace mephisto::apptest {
namespace {

TEST(TimerSim, IntervalTimerRunsEveryInterval) {
  std::vector<int64_t> runs;
  AppHarness h({.seed = seed(81)});
  create_topics(h, {{"in", 1}});
  const AppDefinition app = definition("tick", [&runs](App& app) {
    app.agent("idle", app.topic<std::string, std::string>("in"), [](StrStream& stream) {
      for (auto& event : stream) (void)event;
    });
    app.timer("tick", 1000, [&runs, &app] { runs.push_back(now_ms(app)); });
  });
  const int w = h.add_worker(app);
  ASSERT_TRUE(h.run_until([&] { return !runs.empty(); }, kWaitMs)) << h.dump_logs();
  h.run_for(9500);
  EXPECT_EQ(runs.size(), 10u);
  for (size_t i = 1; i < runs.size(); ++i) EXPECT_EQ(runs[i] - runs[i - 1], 1000) << i;
  EXPECT_EQ(h.stats(w).timer_runs, static_cast<int64_t>(runs.size()));
  EXPECT_EQ(h.stats(w).timer_errors, 0);
  stop_and_wait(h, w);
  const size_t at_stop = runs.size();
  h.run_for(5000);
  EXPECT_EQ(runs.size(), at_stop) << "a stopped worker's timers do not run";
}

TEST(TimerSim, TimerErrorsAreCountedAndTheTimerGoesOn) {
  int runs = 0;
  AppHarness h({.seed = seed(82)});
  create_topics(h, {{"in", 1}});
  const AppDefinition app = definition("tickerr", [&runs](App& app) {
    app.agent("idle", app.topic<std::string, std::string>("in"), [](StrStream& stream) {
      for (auto& event : stream) (void)event;
    });
    app.timer("flaky", 500, [&runs] {
      ++runs;
      if (runs % 2 == 1) throw std::runtime_error("odd run");
    });
  });
  const int w = h.add_worker(app);
  ASSERT_TRUE(h.run_until([&] { return runs >= 6; }, kWaitMs)) << h.dump_logs();
  EXPECT_EQ(h.stats(w).timer_errors, 3);
  EXPECT_TRUE(h.worker_running(w));
  stop_and_wait(h, w);
}

TEST(TimerSim, OnLeaderTimerRunsOnOneWorkerOnly) {
  std::map<std::string, int> runs;
  AppHarness h({.seed = seed(83)});
  create_topics(h, {{"in", 2}});
  const AppDefinition app = definition("leader", [&runs](App& app) {
    app.agent("idle", app.topic<std::string, std::string>("in"), [](StrStream& stream) {
      for (auto& event : stream) (void)event;
    });
    TimerOptions options;
    options.on_leader = true;
    app.timer(
        "leader-tick", 500, [&runs, &app] { ++runs[app.settings().worker_id]; }, options);
  });
  const int w0 = h.add_worker(app);
  const int w1 = h.add_worker(app);
  ASSERT_TRUE(h.run_until([&] { return assigned(h, w0) && assigned(h, w1); }, kWaitMs)) << h.dump_logs();
  h.run_for(5000);
  const auto before = runs;
  h.run_for(10000);
  const int d0 = runs["worker-0"] - (before.count("worker-0") ? before.at("worker-0") : 0);
  const int d1 = runs["worker-1"] - (before.count("worker-1") ? before.at("worker-1") : 0);
  ASSERT_NE(h.app(w0), nullptr);
  ASSERT_NE(h.app(w1), nullptr);
  EXPECT_NE(h.app(w0)->is_leader(), h.app(w1)->is_leader()) << "exactly one leader";
  const int leader = h.app(w0)->is_leader() ? w0 : w1;
  const int follower = leader == w0 ? w1 : w0;
  EXPECT_EQ(leader == w0 ? d0 : d1, 20);
  EXPECT_EQ(leader == w0 ? d1 : d0, 0);

  // The leader leaves: the other worker takes the leader partition and the timer with it.
  const std::string follower_name = "worker-" + std::to_string(follower);
  const int follower_before = runs[follower_name];
  stop_and_wait(h, leader);
  ASSERT_TRUE(
      h.run_until([&] { return h.app(follower) != nullptr && h.app(follower)->is_leader(); }, kWaitMs))
      << h.dump_logs();
  h.run_for(5000);
  EXPECT_GE(runs[follower_name] - follower_before, 9);
  stop_and_wait(h, follower);
}

TEST(TimerSim, TaskRunsOnceAtEveryStart) {
  std::map<std::string, int> task_runs;
  AppHarness h({.seed = seed(84)});
  create_topics(h, {{"in", 1}});
  const AppDefinition app = definition("task", [&task_runs](App& app) {
    app.agent("idle", app.topic<std::string, std::string>("in"), [](StrStream& stream) {
      for (auto& event : stream) (void)event;
    });
    app.task("hello", [&task_runs, &app] { ++task_runs[app.settings().worker_id]; });
  });
  const int w = h.add_worker(app);
  h.run_for(5000);
  EXPECT_EQ(task_runs["worker-0"], 1);
  EXPECT_EQ(h.stats(w).timer_runs, 1);
  h.crash_worker(w);
  h.restart_worker(w);
  h.run_for(5000);
  EXPECT_EQ(task_runs["worker-0"], 2);
  EXPECT_EQ(h.stats(w).timer_runs, 1) << "a restart is a fresh App";
  stop_and_wait(h, w);
}

}  // namespace
}  // namespace mephisto::apptest
