// Supervisors: an exception in an agent acks the event, is counted, and restarts one actor (one_for_one),
// every actor (one_for_all), or stops the worker (crashing).
#include <gtest/gtest.h>

#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "tests/app/sim_support.h"

namespace mephisto::apptest {
namespace {

struct PoisonState {
  int bodies = 0;
  std::multiset<std::string> processed;
};

// An agent that throws on the value "poison" and sends everything else to "out".
AppDefinition poison_app(const std::string& id, PoisonState& st, SupervisorStrategy supervisor,
                         int concurrency) {
  return definition(id, [&st, supervisor, concurrency](App& app) {
    auto in = app.topic<std::string, std::string>("in");
    auto out = app.topic<std::string, std::string>("out");
    AgentOptions<NoReply> options;
    options.supervisor = supervisor;
    options.concurrency = concurrency;
    app.agent(
        "fragile", in,
        [&st, &app, out](StrStream& stream) {
          ++st.bodies;
          for (auto& event : stream) {
            if (event.value() == "poison")
              throw std::runtime_error("poison value at offset " + std::to_string(event.offset()));
            st.processed.insert(event.value());
            Status sent = out.send(event.key(), event.value());
            EXPECT_TRUE(sent.ok());
            sleep_ms(app, 5);
          }
        },
        options);
  });
}

std::vector<ProducerRecord> with_poison(int n, int poison_at) {
  auto records = numbered("in", n);
  records[static_cast<size_t>(poison_at)].value = "poison";
  return records;
}

TEST(SupervisorSim, OneForOneAcksThePoisonEventAndGoesOn) {
  PoisonState st;
  AppHarness h({.seed = seed(31)});
  create_topics(h, {{"in", 2}, {"out", 2}});
  const int w = h.add_worker(poison_app("sup1", st, SupervisorStrategy::kOneForOne, 1));
  const auto input = with_poison(30, 10);
  ASSERT_EQ(h.produce(input), 30);
  ASSERT_TRUE(h.run_until([&] { return h.stats(w).events_acked >= 30; }, kWaitMs)) << h.dump_logs();
  EXPECT_EQ(st.processed.size(), 29u);
  EXPECT_EQ(st.processed.count("poison"), 0u);
  EXPECT_EQ(h.stats(w).agent_errors, 1);
  EXPECT_EQ(h.stats(w).agent_restarts, 1);
  EXPECT_EQ(st.bodies, 2);
  EXPECT_TRUE(h.worker_running(w));
  stop_and_wait(h, w);
  auto expected = values_of(input);
  expected.erase("poison");
  EXPECT_EQ(values_of(h.read_all("out")), expected);
  // The poison event was acked: the commit passes it.
  EXPECT_EQ(h.committed("sup1", "in"), nonempty(h.end_offsets("in")));
}

TEST(SupervisorSim, OneForAllRestartsEveryActor) {
  PoisonState st;
  AppHarness h({.seed = seed(32)});
  create_topics(h, {{"in", 2}, {"out", 2}});
  const int w = h.add_worker(poison_app("supall", st, SupervisorStrategy::kOneForAll, 3));
  const auto input = with_poison(30, 10);
  ASSERT_EQ(h.produce(input), 30);
  ASSERT_TRUE(h.run_until([&] { return h.stats(w).events_acked >= 30; }, kWaitMs)) << h.dump_logs();
  EXPECT_EQ(h.stats(w).agent_errors, 1);
  EXPECT_EQ(h.stats(w).agent_restarts, 3);  // the crashed actor and its two siblings
  EXPECT_EQ(st.bodies, 6);
  auto expected = values_of(input);
  expected.erase("poison");
  EXPECT_EQ(st.processed, expected);
  stop_and_wait(h, w);
  EXPECT_EQ(h.committed("supall", "in"), nonempty(h.end_offsets("in")));
}

TEST(SupervisorSim, CrashingStopsTheWorkerWithTheError) {
  PoisonState st;
  AppHarness h({.seed = seed(33)});
  create_topics(h, {{"in", 1}, {"out", 1}});
  const int w = h.add_worker(poison_app("supcrash", st, SupervisorStrategy::kCrashing, 1));
  ASSERT_EQ(h.produce(with_poison(30, 10)), 30);
  ASSERT_TRUE(h.run_until([&] { return !h.worker_running(w); }, kWaitMs)) << h.dump_logs();
  ASSERT_TRUE(h.worker_result(w).has_value());
  ASSERT_FALSE(h.worker_result(w)->ok());
  EXPECT_NE(h.worker_result(w)->error().message.find("poison value at offset 10"), std::string::npos)
      << h.worker_result(w)->error().to_string();
  EXPECT_EQ(h.stats(w).agent_errors, 1);
  EXPECT_EQ(h.stats(w).agent_restarts, 0);
  EXPECT_EQ(st.processed.size(), 10u);
  EXPECT_EQ(h.app(w), nullptr);
  // Nothing at or past the poison event is committed by the failed worker.
  const auto committed = h.committed("supcrash", "in");
  if (!committed.empty()) {
    EXPECT_LE(committed.at({"in", 0}), 10);
  }
}

}  // namespace
}  // namespace mephisto::apptest
