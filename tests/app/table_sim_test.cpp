// Tables under the simulator (label sim): the tablecount example (agents/table_count.cpp) — a table per key,
// exactly once — through crashes with and without disk, and the startup error for a changelog whose partition
// count differs from its source's.
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "agents/examples.h"
#include "tests/app/sim_support.h"

namespace mephisto::apptest {
namespace {

constexpr int kEvents = 600;
constexpr int kKeys = 12;

// The final table, read from its changelog: the last value per key.
std::map<std::string, std::string> table_from_changelog(AppHarness& h, const std::string& changelog) {
  std::map<std::string, std::string> table;
  for (const ConsumerRecord& record : h.read_all(changelog)) {
    if (record.value.has_value()) {
      table[record.key.value_or("")] = *record.value;
    } else {
      table.erase(record.key.value_or(""));
    }
  }
  return table;
}

struct Outcome {
  std::map<std::string, int> results_per_event;  // event id -> times in the output
  std::map<std::string, std::set<int64_t>> counts_per_key;
  int64_t outputs = 0;
};

Outcome read_results(AppHarness& h) {
  Outcome out;
  for (const ConsumerRecord& record : h.read_all("count-results")) {
    const std::string value = record.value.value_or("");
    const auto space = value.find(' ');
    ++out.results_per_event[value.substr(0, space)];
    out.counts_per_key[record.key.value_or("")].insert(std::stoll(value.substr(space + 1)));
    ++out.outputs;
  }
  return out;
}

class TableSim : public ::testing::TestWithParam<bool> {};

TEST_P(TableSim, CountsExactlyOnceThroughCrashes) {
  const bool wipe_disk = GetParam();
  AppHarness h({.seed = seed(wipe_disk ? 61 : 60)});
  ASSERT_TRUE(h.create_topic({"count-events", 4, 3, {}}).ok());
  ASSERT_TRUE(h.create_topic({"count-results", 4, 3, {}}).ok());
  const AppDefinition app = examples::table_count_app();
  const auto adjust = [](AppSettings& s) {
    const AppSettings base = sim_settings("tablecount");
    s.topic_partitions = base.topic_partitions;
    s.topic_replication_factor = base.topic_replication_factor;
    s.broker_session_timeout_ms = base.broker_session_timeout_ms;
    s.broker_heartbeat_interval_ms = base.broker_heartbeat_interval_ms;
    s.stop_timeout_ms = base.stop_timeout_ms;
  };
  const int w0 = h.add_worker(app, adjust);
  const int w1 = h.add_worker(app, adjust);
  h.produce(numbered("count-events", kEvents / 2, "e", kKeys));
  ASSERT_TRUE(h.run_until([&] { return h.stats(w0).events_acked + h.stats(w1).events_acked > 100; }, kWaitMs))
      << h.dump_logs();
  h.crash_worker(w0, wipe_disk);
  h.produce(numbered("count-events", kEvents / 2, "e", kKeys, kEvents / 2));
  h.run_for(3000);
  h.restart_worker(w0);
  h.crash_worker(w1, wipe_disk);
  h.run_for(2000);
  h.restart_worker(w1);
  for (int i = 0; i < 120 && read_results(h).results_per_event.size() < kEvents; ++i) h.run_for(1000);
  ASSERT_EQ(read_results(h).results_per_event.size(), static_cast<size_t>(kEvents)) << h.dump_logs();
  h.run_for(5000);

  const Outcome outcome = read_results(h);
  EXPECT_EQ(outcome.outputs, kEvents) << "duplicates in the read_committed output";
  for (const auto& [id, times] : outcome.results_per_event) EXPECT_EQ(times, 1) << id;
  const std::map<std::string, std::string> table = table_from_changelog(h, "tablecount-counts-changelog");
  ASSERT_EQ(table.size(), static_cast<size_t>(kKeys));
  for (int k = 0; k < kKeys; ++k) {
    const std::string key = "k" + std::to_string(k);
    EXPECT_EQ(table.at(key), std::to_string(kEvents / kKeys)) << key;
    // Each count 1..n appears once: no increment lost or applied twice, even inside the output.
    EXPECT_EQ(outcome.counts_per_key.at(key).size(), static_cast<size_t>(kEvents / kKeys)) << key;
  }
}

INSTANTIATE_TEST_SUITE_P(Disk, TableSim, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "DiskWiped" : "DiskKept"; });

// A graceful failover under at_least_once onto a worker that holds standbys: the survivor continues every count
// exactly (nothing is lost or redone on a graceful stop), restoring only what its standbys had not applied.
TEST(TableSimFailover, SurvivorContinuesFromItsStandbys) {
  AppHarness h({.seed = seed(63)});
  ASSERT_TRUE(h.create_topic({"count-events", 4, 3, {}}).ok());
  ASSERT_TRUE(h.create_topic({"count-results", 4, 3, {}}).ok());
  const auto adjust = [](AppSettings& s) {
    s.processing_guarantee = ProcessingGuarantee::kAtLeastOnce;
    s.topic_replication_factor = 3;
    s.broker_session_timeout_ms = 10000;
    s.broker_heartbeat_interval_ms = 1000;
    s.broker_commit_interval_ms = 1000;
  };
  const int w0 = h.add_worker(examples::table_count_app(), adjust);
  const int w1 = h.add_worker(examples::table_count_app(), adjust);
  h.produce(numbered("count-events", kEvents, "e", kKeys));
  ASSERT_TRUE(h.run_until([&] { return h.stats(w0).events_acked + h.stats(w1).events_acked == kEvents; }, kWaitMs))
      << h.dump_logs();
  h.run_for(5000);
  const int64_t standby_applied = h.stats(w1).table_records_restored;
  h.stop_worker(w0);
  h.run_for(3000);
  h.produce(numbered("count-events", kEvents, "e", kKeys, kEvents));
  for (int i = 0; i < 120 && read_results(h).results_per_event.size() < 2 * kEvents; ++i) h.run_for(1000);
  const Outcome outcome = read_results(h);
  ASSERT_EQ(outcome.results_per_event.size(), static_cast<size_t>(2 * kEvents)) << h.dump_logs();
  EXPECT_EQ(outcome.outputs, 2 * kEvents) << "a graceful failover redoes nothing";
  for (int k = 0; k < kKeys; ++k) {
    const std::string key = "k" + std::to_string(k);
    EXPECT_EQ(outcome.counts_per_key.at(key).size(), static_cast<size_t>(2 * kEvents / kKeys)) << key;
    EXPECT_EQ(*outcome.counts_per_key.at(key).rbegin(), 2 * kEvents / kKeys) << key;
  }
  EXPECT_GT(standby_applied, 0) << "the survivor tailed the other worker's changelog partitions";
  EXPECT_EQ(h.stats(w1).table_records_restored, standby_applied) << "nothing left to restore at failover";
}

TEST(TableSimStartup, ChangelogWithOtherPartitionCountIsAStartupError) {
  AppHarness h({.seed = seed(62)});
  ASSERT_TRUE(h.create_topic({"count-events", 4, 3, {}}).ok());
  ASSERT_TRUE(h.create_topic({"count-results", 4, 3, {}}).ok());
  ASSERT_TRUE(h.create_topic({"tablecount-counts-changelog", 2, 3, {{"cleanup.policy", "compact"}}}).ok());
  const int w =
      h.add_worker(examples::table_count_app(), [](AppSettings& s) { s.topic_replication_factor = 3; });
  ASSERT_TRUE(h.run_until([&] { return h.worker_result(w).has_value(); }, kWaitMs)) << h.dump_logs();
  const Status result = *h.worker_result(w);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.code(), ErrorCode::kInvalidArg);
  EXPECT_NE(
      result.error().message.find("changelog topic 'tablecount-counts-changelog' has 2 partition(s) but "
                                  "its source topic 'count-events' has 4"),
      std::string::npos)
      << result.error().message;
}

}  // namespace
}  // namespace mephisto::apptest
