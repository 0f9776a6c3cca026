// Commit semantics: every N acks, every interval; a crashed worker's partitions resume at the last committed
// offset on a survivor (at-least-once); a revoke drops the late acks of the old assignment.
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "tests/app/sim_support.h"

namespace mephisto::apptest {
namespace {

struct Processed {
  std::string worker;
  TopicPartition tp;
  int64_t offset = 0;
  int64_t at_ms = 0;
  std::string value;
};

// Processes each event in `sleep` ms, recording it, and sends it on to "out".
AppDefinition recording_app(const std::string& id, std::vector<Processed>& log, int64_t sleep) {
  return definition(id, [&log, sleep](App& app) {
    auto in = app.topic<std::string, std::string>("in");
    auto out = app.topic<std::string, std::string>("out");
    app.agent("rec", in, [&log, &app, out, sleep](StrStream& stream) {
      for (auto& event : stream) {
        if (sleep > 0) sleep_ms(app, sleep);
        log.push_back({app.settings().worker_id,
                       {event.topic(), event.partition()},
                       event.offset(),
                       now_ms(app),
                       event.value()});
        Status sent = out.send(event.key(), event.value());
        EXPECT_TRUE(sent.ok());
      }
    });
  });
}

TEST(CommitSim, CommitsEveryNAcks) {
  std::vector<Processed> log;
  AppHarness h({.seed = seed(61)});
  create_topics(h, {{"in", 1}, {"out", 1}});
  const int w = h.add_worker(recording_app("every", log, 20), [](AppSettings& s) {
    s.broker_commit_every = 5;
    s.broker_commit_interval_ms = 3'600'000;
  });
  ASSERT_EQ(h.produce(numbered("in", 23)), 23);
  ASSERT_TRUE(h.run_until([&] { return h.stats(w).events_acked >= 23; }, kWaitMs)) << h.dump_logs();
  h.run_for(500);
  const auto committed = h.committed("every", "in");
  ASSERT_EQ(committed.size(), 1u);
  const int64_t offset = committed.begin()->second;
  EXPECT_GE(offset, 20) << "a commit after every 5 acks";
  EXPECT_LT(offset, 23) << "the last 3 acks do not reach 5, and the interval is an hour";
  EXPECT_GE(h.stats(w).commits, 4);
  EXPECT_LE(h.stats(w).commits, 5);
  stop_and_wait(h, w);
  EXPECT_EQ(h.committed("every", "in"), (std::map<TopicPartition, int64_t>{{{"in", 0}, 23}}));
}

TEST(CommitSim, CommitsEveryInterval) {
  std::vector<Processed> log;
  AppHarness h({.seed = seed(62)});
  create_topics(h, {{"in", 2}, {"out", 2}});
  const int w = h.add_worker(recording_app("interval", log, 0), [](AppSettings& s) {
    s.broker_commit_every = 1'000'000;
    s.broker_commit_interval_ms = 1000;
  });
  ASSERT_EQ(h.produce(numbered("in", 10)), 10);
  ASSERT_TRUE(h.run_until([&] { return h.stats(w).events_acked >= 10; }, kWaitMs)) << h.dump_logs();
  h.run_for(1500);
  EXPECT_EQ(h.committed("interval", "in"), nonempty(h.end_offsets("in")));
  const int64_t commits = h.stats(w).commits;
  EXPECT_GE(commits, 1);
  // Nothing new acked: idle intervals commit nothing.
  h.run_for(5000);
  EXPECT_EQ(h.stats(w).commits, commits);
  stop_and_wait(h, w);
}

void crash_and_resume(uint64_t seed) {
  SCOPED_TRACE("seed " + std::to_string(apptest::seed(seed)));
  std::vector<Processed> log;
  AppHarness h({.seed = apptest::seed(seed)});
  create_topics(h, {{"in", 4}, {"out", 4}});
  const AppDefinition app = recording_app("resume", log, 20);
  const int w0 = h.add_worker(app);
  const int w1 = h.add_worker(app);
  ASSERT_TRUE(h.run_until([&] { return assigned(h, w0) && assigned(h, w1); }, kWaitMs)) << h.dump_logs();
  h.run_for(3000);
  const auto input = numbered("in", 400);
  ASSERT_EQ(h.produce(input), 400);
  ASSERT_TRUE(h.run_until([&] { return log.size() >= 150; }, kWaitMs)) << h.dump_logs();

  h.crash_worker(w0);
  EXPECT_FALSE(h.worker_running(w0));
  EXPECT_EQ(h.app(w0), nullptr);
  const int64_t crash_ms = h.now_ms();
  const size_t processed_before_crash = log.size();
  const auto at_crash = h.committed("resume", "in");
  std::set<TopicPartition> owned_by_w0;
  for (const auto& p : log) {
    if (p.worker == "worker-0") owned_by_w0.insert(p.tp);
  }
  ASSERT_FALSE(owned_by_w0.empty());

  std::set<std::string> all_inputs;
  for (const auto& r : input) all_inputs.insert(*r.value);
  std::set<std::string> seen;
  size_t scanned = 0;
  auto everything_processed = [&] {
    for (; scanned < log.size(); ++scanned) seen.insert(log[scanned].value);
    return seen == all_inputs;
  };
  ASSERT_TRUE(h.run_until(everything_processed, kWaitMs)) << h.dump_logs();
  stop_and_wait(h, w1);

  // Nothing lost: every input is in the output.
  std::set<std::string> out_values;
  for (const auto& v : values_of(h.read_all("out"))) out_values.insert(v);
  EXPECT_EQ(out_values, all_inputs);
  // The survivor picks up each of the crashed worker's partitions exactly at its last committed offset.
  for (const TopicPartition& tp : owned_by_w0) {
    int64_t first = -1;
    for (size_t i = processed_before_crash; i < log.size(); ++i) {
      if (log[i].tp == tp && log[i].worker == "worker-1") {
        first = log[i].offset;
        break;
      }
    }
    const int64_t expected = at_crash.count(tp) ? at_crash.at(tp) : 0;
    EXPECT_EQ(first, expected) << tp.topic << "/" << tp.partition;
  }
  // Duplicates only after the crash, and only of the crashed worker's uncommitted records.
  std::map<std::string, int> times;
  for (const auto& p : log) ++times[p.value];
  for (size_t i = processed_before_crash; i < log.size(); ++i) {
    const auto& p = log[i];
    if (times[p.value] < 2) continue;
    EXPECT_TRUE(owned_by_w0.count(p.tp)) << p.value;
    EXPECT_GE(p.at_ms, crash_ms);
    EXPECT_GE(p.offset, at_crash.count(p.tp) ? at_crash.at(p.tp) : 0) << p.value;
  }
  for (size_t i = 0; i < processed_before_crash; ++i) {
    int before = 0;
    for (size_t j = 0; j < processed_before_crash; ++j) before += log[j].value == log[i].value ? 1 : 0;
    EXPECT_EQ(before, 1) << "a duplicate before any crash: " << log[i].value;
  }
  EXPECT_EQ(h.committed("resume", "in"), nonempty(h.end_offsets("in")));
}

TEST(CommitSim, CrashedWorkersPartitionsResumeAtTheLastCommitOnASurvivor) {
  crash_and_resume(63);
}

// The same scenario under other interleavings.
TEST(CommitSim, CrashResumeUnderManySeeds) {
  for (uint64_t seed = 1000; seed < 1016; ++seed) crash_and_resume(seed);
}

void revoke_during_processing(uint64_t seed) {
  SCOPED_TRACE("seed " + std::to_string(apptest::seed(seed)));
  struct State {
    int slow_started = 0;
    int slow_finished = 0;
    std::vector<Processed> log;
  } st;
  AppHarness h({.seed = apptest::seed(seed)});
  create_topics(h, {{"in", 1}});
  const AppDefinition app = definition("revoke", [&st](App& app) {
    app.agent("slowpoke", app.topic<std::string, std::string>("in"), [&st, &app](StrStream& stream) {
      for (auto& event : stream) {
        if (event.value() == "slow") {
          ++st.slow_started;
          sleep_ms(app, 8000);
          ++st.slow_finished;
        }
        st.log.push_back({app.settings().worker_id,
                          {event.topic(), event.partition()},
                          event.offset(),
                          now_ms(app),
                          event.value()});
      }
    });
  });
  const auto adjust = [](AppSettings& s) { s.rebalance_drain_timeout_ms = 500; };
  const int w0 = h.add_worker(app, adjust);
  auto input = numbered("in", 10);
  input[5].value = "slow";
  ASSERT_EQ(h.produce(input), 10);
  ASSERT_TRUE(h.run_until([&] { return st.slow_started >= 1; }, kWaitMs)) << h.dump_logs();
  h.run_for(1500);
  EXPECT_EQ(h.committed("revoke", "in"), (std::map<TopicPartition, int64_t>{{{"in", 0}, 5}}));

  // A second worker joins: worker-0's partition is revoked while offset 5 is still in processing. The revoke
  // waits 500 ms, commits what is done (5) and gives the partition up.
  const int w1 = h.add_worker(app, adjust);
  ASSERT_TRUE(h.run_until([&] { return st.slow_finished >= 1; }, kWaitMs)) << h.dump_logs();
  EXPECT_GE(h.stats(w0).partitions_revoked, 1);
  // The old assignment's ack of offset 5 comes late and must not move the commit: offset 5 is being processed
  // again by the partition's new owner (whoever it is) and is not done yet.
  h.run_for(1500);
  EXPECT_EQ(h.committed("revoke", "in"), (std::map<TopicPartition, int64_t>{{{"in", 0}, 5}}))
      << h.dump_logs();
  ASSERT_TRUE(h.run_until([&] { return st.slow_finished >= 2 && st.log.size() >= 11; }, kWaitMs))
      << h.dump_logs();
  h.run_for(2000);
  EXPECT_EQ(h.committed("revoke", "in"), (std::map<TopicPartition, int64_t>{{{"in", 0}, 10}}));
  EXPECT_EQ(st.slow_started, 2) << "offset 5 is processed again after the revoke (at-least-once)";
  stop_and_wait(h, w0);
  stop_and_wait(h, w1);
}

TEST(CommitSim, RevokeDropsTheLateAckOfTheOldAssignment) {
  for (uint64_t seed = 64; seed < 72; ++seed) revoke_during_processing(seed);
}

}  // namespace
}  // namespace mephisto::apptest
