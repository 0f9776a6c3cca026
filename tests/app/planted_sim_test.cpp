// Planted bugs (runtime/seam/planted.h) under the simulator (label sim): the catalogue's names, App::run's
// refusal of a planted bug on a broker client that is not the simulator's, and for each bug a focused run
// that shows its observable defect next to the same run without it (so each test also proves the run can
// tell).
#include <gtest/gtest.h>

#include <cctype>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "agents/examples.h"
#include "runtime/seam/planted.h"
#include "sim/cluster/cluster.h"
#include "sim/cluster/protocol.h"
#include "tests/app/sim_support.h"

namespace mephisto::apptest {
namespace {

// ---------------------------------------------------------------------------------------------------------------
// The catalogue and the refusal

TEST(PlantedCatalogue, NamesRoundTrip) {
  const auto bugs = planted_bugs();
  ASSERT_EQ(bugs.size(), 7u);
  std::set<std::string_view> names;
  for (size_t i = 0; i < bugs.size(); ++i) {
    const PlantedBugInfo& info = bugs[i];
    EXPECT_EQ(static_cast<size_t>(info.bug), i + 1) << "in enum order";
    EXPECT_EQ(planted_bug_name(info.bug), info.name);
    EXPECT_EQ(planted_bug_named(info.name), info.bug) << info.name;
    EXPECT_FALSE(info.what.empty()) << info.name;
    for (char c : info.name)
      EXPECT_TRUE(std::islower(static_cast<unsigned char>(c)) || c == '-') << info.name;
    names.insert(info.name);
  }
  EXPECT_EQ(names.size(), bugs.size()) << "names are unique";
  EXPECT_EQ(planted_bug_named("no-fencing"), PlantedBug::kNoFencing);
  EXPECT_EQ(planted_bug_named("revoked-commit-kept"), PlantedBug::kRevokedCommitKept);
  EXPECT_EQ(planted_bug_name(PlantedBug::kNone), "none");
  EXPECT_EQ(planted_bug_named("none"), PlantedBug::kNone);
  EXPECT_EQ(planted_bug_named("No-Fencing"), std::nullopt);
  EXPECT_EQ(planted_bug_named(""), std::nullopt);
}

// A broker client that is not the simulator's (simulated() keeps its default, false). Every call fails and is
// counted: the refusal must come before any of them.
class NotSimulatedClient final : public BrokerClient {
 public:
  Result<std::unique_ptr<Admin>> admin() override {
    ++calls;
    return Error::of(ErrorCode::kFail, "not for this test");
  }
  Result<std::unique_ptr<Producer>> producer(const ProducerConfig&) override {
    ++calls;
    return Error::of(ErrorCode::kFail, "not for this test");
  }
  Result<std::unique_ptr<Consumer>> consumer(const ConsumerConfig&) override {
    ++calls;
    return Error::of(ErrorCode::kFail, "not for this test");
  }
  int calls = 0;
};

TEST(PlantedRefusal, AppRunRefusesAPlantedBugOffTheSimulator) {
  NotSimulatedClient client;
  ASSERT_FALSE(client.simulated());
  App app(sim_settings("refused"));
  // No clock, scheduler or random: run() must return before it needs any of them.
  Env env;
  env.broker = &client;
  env.planted = PlantedBug::kNoFencing;
  const Status result = app.run(env);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.code(), ErrorCode::kInvalidArg);
  EXPECT_EQ(result.error().message,
            "planted bug 'no-fencing' requested on a broker client that is not the simulator's: planted bugs "
            "exist only in the simulator");
  EXPECT_EQ(client.calls, 0) << "nothing else is done";
  EXPECT_FALSE(app.should_rejoin());
}

TEST(PlantedRefusal, TheSimulatorsClientIsSimulated) {
  // The harness's workers run with a planted bug: their client says it is the simulator's.
  AppHarness h({.seed = seed(90), .planted = PlantedBug::kAckBeforeProcessing});
  create_topics(h, {{"in", 1}, {"out", 1}});
  const int w = h.add_worker(definition("accepted", [](App& app) {
    auto in = app.topic<std::string, std::string>("in");
    app.agent("sink", in, [](StrStream& stream) {
      for (auto& event : stream) (void)event;
    });
  }));
  ASSERT_TRUE(h.run_until([&] { return assigned(h, w); }, kWaitMs)) << h.dump_logs();
  stop_and_wait(h, w);
}

// ---------------------------------------------------------------------------------------------------------------
// Helpers

// in -> out, one record per event (its value), then `hook` (may park the actor, holding the event).
AppDefinition passthrough_app(const std::string& id, ProcessingGuarantee guarantee,
                              std::function<void(App&, const StrEvent&)> hook = {}) {
  AppDefinition out = definition(id, [hook](App& app) {
    auto in = app.topic<std::string, std::string>("in");
    auto sink = app.topic<std::string, std::string>("out");
    app.agent("pass", in, [&app, sink, hook](StrStream& stream) {
      for (auto& event : stream) {
        Status sent = sink.send(event.key(), event.value());
        (void)sent;  // a failed delivery stops the worker
        if (hook) hook(app, event);
      }
    });
  });
  const auto defaults = out.default_settings;
  out.default_settings = [defaults, guarantee] {
    AppSettings settings = defaults();
    settings.processing_guarantee = guarantee;
    return settings;
  };
  return out;
}

// Runs until the group's committed offsets of `topic` reach its end offsets (or `rounds` seconds pass).
bool wait_committed(AppHarness& h, const std::string& group, const std::string& topic, int rounds = 60) {
  for (int i = 0; i < rounds; ++i) {
    if (h.committed(group, topic) == nonempty(h.end_offsets(topic))) return true;
    h.run_for(1000);
  }
  return false;
}

std::map<std::string, int> times_per_value(const std::vector<ConsumerRecord>& records) {
  std::map<std::string, int> out;
  for (const ConsumerRecord& record : records) ++out[record.value.value_or("<null>")];
  return out;
}

int64_t committed_sum(const std::map<TopicPartition, int64_t>& offsets) {
  int64_t sum = 0;
  for (const auto& [tp, offset] : offsets) sum += offset;
  return sum;
}

std::vector<int32_t> partitions_of(AppHarness& h, int worker, const std::string& topic) {
  std::vector<int32_t> out;
  App* app = h.app(worker);
  if (app == nullptr) return out;
  for (const TopicPartition& tp : app->assignment()) {
    if (tp.topic == topic) out.push_back(tp.partition);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// One aborted transaction of the tablecount example (exactly_once, one worker): offsets-outside-transaction,
// table-write-not-rolled-back, changelog-read-uncommitted.

constexpr int kBatch = 48;
constexpr int kKeys = 12;

struct AbortOutcome {
  std::map<std::string, int> results_per_event;  // "eN" -> times in the read_committed output
  std::map<std::string, std::string> table;      // the changelog's last value per key
  bool rejoined = false;                         // the worker aborted a transaction and started afresh
};

AbortOutcome run_with_one_abort(PlantedBug bug, uint64_t seed_base) {
  AppHarness h({.seed = seed(seed_base), .planted = bug});
  AbortOutcome out;
  EXPECT_TRUE(h.create_topic({"count-events", 4, 3, {}}).ok());
  EXPECT_TRUE(h.create_topic({"count-results", 4, 3, {}}).ok());
  const int w = h.add_worker(examples::table_count_app(), [](AppSettings& s) {
    const AppSettings base = sim_settings("tablecount");
    s.topic_partitions = base.topic_partitions;
    s.topic_replication_factor = base.topic_replication_factor;
    s.broker_session_timeout_ms = base.broker_session_timeout_ms;
    s.broker_heartbeat_interval_ms = base.broker_heartbeat_interval_ms;
    s.stop_timeout_ms = base.stop_timeout_ms;
  });
  h.produce(numbered("count-events", kBatch, "e", kKeys));
  EXPECT_TRUE(wait_committed(h, "tablecount", "count-events")) << h.dump_logs();
  // The next transaction's commit is refused (not retriable): the worker aborts it and rejoins.
  h.kafka().cluster().inject_errors(sim::ApiKey::kEndTxn, ErrorCode::kInvalidTxnState, 1);
  h.produce(numbered("count-events", kBatch, "e", kKeys, kBatch));
  EXPECT_TRUE(wait_committed(h, "tablecount", "count-events")) << h.dump_logs();
  h.run_for(3000);
  for (const std::string& line : h.worker_log(w))
    out.rejoined = out.rejoined || line.find("rejoining") != std::string::npos;
  for (const ConsumerRecord& record : h.read_all("count-results")) {
    const std::string value = record.value.value_or("");
    ++out.results_per_event[value.substr(0, value.find(' '))];
  }
  for (const ConsumerRecord& record : h.read_all("tablecount-counts-changelog")) {
    if (record.value.has_value()) {
      out.table[record.key.value_or("")] = *record.value;
    } else {
      out.table.erase(record.key.value_or(""));
    }
  }
  // The harness's log notes the rejoin; keep the worker's run visible on failure.
  if (::testing::Test::HasFailure()) ADD_FAILURE() << h.dump_logs(60);
  return out;
}

// Keys whose final count is not the number of events they had.
std::vector<std::string> wrong_counts(const AbortOutcome& outcome) {
  std::vector<std::string> out;
  for (int k = 0; k < kKeys; ++k) {
    const std::string key = "k" + std::to_string(k);
    auto found = outcome.table.find(key);
    const std::string want = std::to_string(2 * kBatch / kKeys);
    if (found == outcome.table.end() || found->second != want)
      out.push_back(key + "=" + (found == outcome.table.end() ? "-" : found->second));
  }
  return out;
}

TEST(PlantedAbortSim, WithoutABugTheAbortedTransactionIsRedone) {
  const AbortOutcome outcome = run_with_one_abort(PlantedBug::kNone, 91);
  EXPECT_TRUE(outcome.rejoined);
  ASSERT_EQ(outcome.results_per_event.size(), static_cast<size_t>(2 * kBatch));
  for (const auto& [id, times] : outcome.results_per_event) EXPECT_EQ(times, 1) << id;
  EXPECT_TRUE(wrong_counts(outcome).empty()) << ::testing::PrintToString(wrong_counts(outcome));
}

TEST(PlantedAbortSim, OffsetsOutsideTransactionLoseTheAbortedEvents) {
  const AbortOutcome outcome = run_with_one_abort(PlantedBug::kOffsetsOutsideTransaction, 91);
  EXPECT_TRUE(outcome.rejoined);
  // The offsets were committed by the consumer before the transaction was refused: its events are never
  // processed again, so their outputs (and increments) are gone.
  EXPECT_LT(outcome.results_per_event.size(), static_cast<size_t>(2 * kBatch));
  for (int i = 0; i < kBatch; ++i)
    EXPECT_EQ(outcome.results_per_event.count("e" + std::to_string(i)), 1u) << i;
  EXPECT_FALSE(wrong_counts(outcome).empty());
}

TEST(PlantedAbortSim, TableWriteNotRolledBackCountsTheAbortedIncrementsTwice) {
  const AbortOutcome outcome = run_with_one_abort(PlantedBug::kTableWriteNotRolledBack, 91);
  EXPECT_TRUE(outcome.rejoined);
  ASSERT_EQ(outcome.results_per_event.size(), static_cast<size_t>(2 * kBatch)) << "nothing is lost";
  // The aborted increments stayed in the store; redoing the events counted them again.
  const std::vector<std::string> wrong = wrong_counts(outcome);
  EXPECT_FALSE(wrong.empty());
  for (const auto& [key, value] : outcome.table) EXPECT_GE(std::stoll(value), 2 * kBatch / kKeys) << key;
}

TEST(PlantedAbortSim, ChangelogReadUncommittedRestoresTheAbortedIncrements) {
  const AbortOutcome outcome = run_with_one_abort(PlantedBug::kChangelogReadUncommitted, 91);
  EXPECT_TRUE(outcome.rejoined);
  ASSERT_EQ(outcome.results_per_event.size(), static_cast<size_t>(2 * kBatch)) << "nothing is lost";
  // The rejoined worker restored the aborted changelog records, then redid their events on top of them.
  const std::vector<std::string> wrong = wrong_counts(outcome);
  EXPECT_FALSE(wrong.empty());
  for (const auto& [key, value] : outcome.table) EXPECT_GE(std::stoll(value), 2 * kBatch / kKeys) << key;
}

// ---------------------------------------------------------------------------------------------------------------
// no-fencing: a zombie (worker 0, paused like SIGSTOP mid-transaction past its session) resumes and commits
// after the group gave its partitions to worker 1, which redid the same event.

int zombie_outputs(PlantedBug bug) {
  AppHarness h({.seed = seed(92), .planted = bug});
  create_topics(h, {{"in", 4}, {"out", 4}});
  auto paused = std::make_shared<bool>(false);
  AppHarness* harness = &h;
  const auto hook = [harness, paused](App& app, const StrEvent& event) {
    if (event.value() != "zombie" || app.settings().worker_id != "worker-0" || *paused) return;
    *paused = true;
    // Long enough for the commit fiber to stand at its commit point, waiting for this event.
    sleep_ms(app, 300);
    harness->executor().pause(harness->worker_process(0));
    sleep_ms(app, 1);  // the pause takes effect here
  };
  const auto adjust = [](AppSettings& s) {
    s.broker_session_timeout_ms = 6000;  // the cluster's minimum: well inside the 10 s transaction timeout
    s.broker_heartbeat_interval_ms = 1000;
    s.broker_commit_interval_ms = 100;
  };
  const AppDefinition app = passthrough_app("zf", ProcessingGuarantee::kExactlyOnce, hook);
  const int w0 = h.add_worker(app, adjust);
  const int w1 = h.add_worker(app, adjust);
  h.produce(numbered("in", 40));
  EXPECT_TRUE(h.run_until([&] { return assigned(h, w0) && assigned(h, w1); }, kWaitMs)) << h.dump_logs();
  EXPECT_TRUE(wait_committed(h, "zf", "in")) << h.dump_logs();
  const std::vector<int32_t> mine = partitions_of(h, w0, "in");
  EXPECT_FALSE(mine.empty());
  if (mine.empty()) return -1;
  // "pre" is acked first, so the commit fiber has something to commit and stands at its commit point (which
  // keeps the poll fiber, and the consumer's news of the lost partitions, away) while "zombie" is processed.
  h.produce({record("in", "z", "pre", mine.front()), record("in", "z", "zombie", mine.front())});
  EXPECT_TRUE(h.run_until([&] { return *paused && h.executor().paused(h.worker_process(w0)); }, kWaitMs))
      << h.dump_logs();
  // The group expires worker 0 and gives everything to worker 1, which redoes the event. Resume before the
  // zombie's transaction times out on the broker (10 s).
  const int64_t acked_before = h.stats(w1).events_acked;
  EXPECT_TRUE(h.run_until(
      [&] { return partitions_of(h, w1, "in").size() == 4 && h.stats(w1).events_acked > acked_before; },
      9000))
      << h.dump_logs();
  h.executor().resume(h.worker_process(w0));
  h.run_for(15000);
  const int times = times_per_value(h.read_all("out"))["zombie"];
  if (::testing::Test::HasFailure()) ADD_FAILURE() << h.dump_logs(80);
  return times;
}

TEST(PlantedFencingSim, WithFencingTheZombieCommitIsRefused) {
  EXPECT_EQ(zombie_outputs(PlantedBug::kNone), 1);
}

TEST(PlantedFencingSim, NoFencingLetsTheZombieCommitADuplicate) {
  EXPECT_EQ(zombie_outputs(PlantedBug::kNoFencing), 2);
}

// ---------------------------------------------------------------------------------------------------------------
// ack-before-processing (at_least_once): a crash while slow events are still buffered loses them.

constexpr int kSlowEvents = 20;

int distinct_after_crash(PlantedBug bug) {
  AppHarness h({.seed = seed(93), .planted = bug});
  create_topics(h, {{"in", 1}, {"out", 1}});
  const AppDefinition app = passthrough_app("abp", ProcessingGuarantee::kAtLeastOnce,
                                            [](App& self, const StrEvent&) { sleep_ms(self, 200); });
  const int w = h.add_worker(app);
  h.produce(numbered("in", kSlowEvents));
  EXPECT_TRUE(h.run_until([&] { return h.stats(w).records_sent >= 3; }, kWaitMs)) << h.dump_logs();
  h.run_for(1500);  // past a commit interval (1 s), with most events still buffered
  EXPECT_LT(h.stats(w).records_sent, kSlowEvents);
  h.crash_worker(w);
  h.run_for(1000);
  h.restart_worker(w);
  EXPECT_TRUE(wait_committed(h, "abp", "in")) << h.dump_logs();
  h.run_for(3000);
  return static_cast<int>(times_per_value(h.read_all("out")).size());
}

TEST(PlantedAckSim, WithoutTheBugACrashLosesNothing) {
  EXPECT_EQ(distinct_after_crash(PlantedBug::kNone), kSlowEvents);
}

TEST(PlantedAckSim, AckBeforeProcessingLosesTheBufferedEvents) {
  const int distinct = distinct_after_crash(PlantedBug::kAckBeforeProcessing);
  EXPECT_LT(distinct, kSlowEvents);
  EXPECT_GT(distinct, 0) << "the events processed before the crash are there";
}

// ---------------------------------------------------------------------------------------------------------------
// commit-before-delivery (at_least_once): outputs whose delivery keeps failing (retriable) while the inputs
// are committed; a crash then leaves committed inputs with no output.

struct DeliveryOutcome {
  int64_t committed = 0;
  size_t outputs = 0;
};

DeliveryOutcome commit_with_deliveries_outstanding(PlantedBug bug) {
  AppHarness h({.seed = seed(94), .planted = bug});
  create_topics(h, {{"in", 1}, {"out", 1}});
  h.produce(numbered("in", 10));
  // From now on every produce request fails retriably: the worker's outputs stay undelivered (the inputs
  // are already written).
  h.kafka().cluster().inject_errors(sim::ApiKey::kProduce, ErrorCode::kNotEnoughReplicas, 1'000'000);
  const int w = h.add_worker(passthrough_app("cbd", ProcessingGuarantee::kAtLeastOnce));
  EXPECT_TRUE(h.run_until([&] { return h.stats(w).records_sent >= 10; }, kWaitMs)) << h.dump_logs();
  h.run_for(3000);  // three commit intervals
  EXPECT_EQ(h.stats(w).records_delivered, 0);
  h.crash_worker(w);
  DeliveryOutcome out;
  out.committed = committed_sum(h.committed("cbd", "in"));
  out.outputs = h.read_all("out").size();
  return out;
}

TEST(PlantedDeliverySim, WithoutTheBugNothingIsCommittedBeforeDelivery) {
  const DeliveryOutcome outcome = commit_with_deliveries_outstanding(PlantedBug::kNone);
  EXPECT_EQ(outcome.outputs, 0u);
  EXPECT_EQ(outcome.committed, 0);
}

TEST(PlantedDeliverySim, CommitBeforeDeliveryCommitsInputsWithNoOutput) {
  const DeliveryOutcome outcome = commit_with_deliveries_outstanding(PlantedBug::kCommitBeforeDelivery);
  EXPECT_EQ(outcome.outputs, 0u);
  EXPECT_EQ(outcome.committed, 10) << "every input committed, none of its outputs on the broker";
}

// ---------------------------------------------------------------------------------------------------------------
// revoked-commit-kept (at_least_once): worker 0 loses partitions to worker 1 when it joins, keeps their
// positions, and commits them when it stops gracefully — after worker 1 moved on. Worker 1 then redoes them.

struct RevokeOutcome {
  size_t outputs = 0;
  size_t distinct = 0;
  size_t inputs = 0;
};

RevokeOutcome graceful_handover(PlantedBug bug) {
  AppHarness h({.seed = seed(95), .planted = bug});
  create_topics(h, {{"in", 4}, {"out", 4}});
  const AppDefinition app = passthrough_app("rck", ProcessingGuarantee::kAtLeastOnce);
  const int w0 = h.add_worker(app);
  h.produce(numbered("in", 40));
  EXPECT_TRUE(wait_committed(h, "rck", "in")) << h.dump_logs();
  const int w1 = h.add_worker(app);
  EXPECT_TRUE(h.run_until([&] { return assigned(h, w1) && assigned(h, w0); }, kWaitMs)) << h.dump_logs();
  h.run_for(2000);
  // New records only on worker 1's partitions: worker 0 has nothing of its own to commit meanwhile.
  std::vector<ProducerRecord> more;
  for (int32_t p : partitions_of(h, w1, "in")) {
    for (int i = 0; i < 10; ++i)
      more.push_back(record("in", "k", "w" + std::to_string(p) + "-" + std::to_string(i), p));
  }
  EXPECT_FALSE(more.empty());
  h.produce(more);
  const size_t inputs = 40 + more.size();
  EXPECT_TRUE(wait_committed(h, "rck", "in")) << h.dump_logs();
  stop_and_wait(h, w0);  // its final commit (before it leaves the group)
  EXPECT_TRUE(wait_committed(h, "rck", "in")) << h.dump_logs();
  h.run_for(3000);
  const auto times = times_per_value(h.read_all("out"));
  RevokeOutcome out;
  for (const auto& [value, n] : times) out.outputs += static_cast<size_t>(n);
  out.distinct = times.size();
  out.inputs = inputs;
  return out;
}

TEST(PlantedRevokeSim, WithoutTheBugAGracefulHandoverRedoesNothing) {
  const RevokeOutcome outcome = graceful_handover(PlantedBug::kNone);
  EXPECT_EQ(outcome.distinct, outcome.inputs);
  EXPECT_EQ(outcome.outputs, outcome.distinct);
}

TEST(PlantedRevokeSim, RevokedCommitKeptMovesTheGroupBackwards) {
  const RevokeOutcome outcome = graceful_handover(PlantedBug::kRevokedCommitKept);
  EXPECT_EQ(outcome.distinct, outcome.inputs);
  // Worker 1 restarted its partitions from the stale positions worker 0 committed: their records again.
  EXPECT_GT(outcome.outputs, outcome.distinct);
}

}  // namespace
}  // namespace mephisto::apptest
