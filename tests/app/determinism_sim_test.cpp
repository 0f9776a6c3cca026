// Determinism: one scenario (two workers, a crash, a restart, a graceful stop) run twice with one seed gives
// the same run hash, outputs and logs; another seed gives another run.
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include "tests/app/sim_support.h"

namespace mephisto::apptest {
namespace {

struct Outcome {
  uint64_t hash = 0;
  uint64_t events = 0;
  int64_t end_ms = 0;
  std::vector<std::string> processed;  // in processing order, with the worker
  std::vector<std::string> out;        // the output topic as read back
  std::string logs;
};

Outcome run_scenario(uint64_t seed) {
  Outcome outcome;
  std::set<std::string> seen;
  AppHarness h({.seed = apptest::seed(seed)});
  create_topics(h, {{"in", 4}, {"out", 4}});
  const AppDefinition app = definition("det", [&outcome, &seen](App& app) {
    auto out = app.topic<std::string, std::string>("out");
    app.agent("relay", app.topic<std::string, std::string>("in"),
              [&outcome, &seen, &app, out](StrStream& stream) {
                for (auto& event : stream) {
                  sleep_ms(app, 10);
                  outcome.processed.push_back(app.settings().worker_id + ":" + event.value());
                  seen.insert(event.value());
                  Status sent = out.send(event.key(), event.value());
                  EXPECT_TRUE(sent.ok());
                }
              });
  });
  const int w0 = h.add_worker(app);
  const int w1 = h.add_worker(app);
  EXPECT_EQ(h.produce(numbered("in", 100)), 100);
  EXPECT_TRUE(h.run_until([&] { return seen.size() >= 50; }, kWaitMs));
  h.crash_worker(w0);
  h.run_for(2000);
  h.restart_worker(w0);
  EXPECT_EQ(h.produce(numbered("in", 100, "v", 16, 100)), 100);
  EXPECT_TRUE(h.run_until([&] { return seen.size() >= 200; }, kWaitMs)) << h.dump_logs();
  stop_and_wait(h, w0);
  stop_and_wait(h, w1);
  for (const auto& r : h.read_all("out")) outcome.out.push_back(r.value.value_or(""));
  outcome.hash = h.run_hash();
  outcome.events = h.event_log().count();
  outcome.end_ms = h.now_ms();
  outcome.logs = h.dump_logs(1'000'000);
  return outcome;
}

TEST(DeterminismSim, SameSeedSameRunOtherSeedOtherRun) {
  const Outcome a = run_scenario(7);
  const Outcome b = run_scenario(7);
  EXPECT_EQ(a.hash, b.hash);
  EXPECT_EQ(a.events, b.events);
  EXPECT_EQ(a.end_ms, b.end_ms);
  EXPECT_EQ(a.processed, b.processed);
  EXPECT_EQ(a.out, b.out);
  EXPECT_EQ(a.logs, b.logs);
  EXPECT_GE(a.out.size(), 200u);

  const Outcome c = run_scenario(8);
  EXPECT_NE(a.hash, c.hash);
  std::set<std::string> a_out(a.out.begin(), a.out.end()), c_out(c.out.begin(), c.out.end());
  EXPECT_EQ(a_out, c_out) << "another interleaving, the same records";
}

}  // namespace
}  // namespace mephisto::apptest
