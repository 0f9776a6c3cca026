// Record and replay in the simulator: a scenario run recorded with `record_dir` (what `mephisto sim --trace`
// does) replays identically, incarnation by incarnation; an agent whose logic changed diverges at the first
// recorded send it changes; --stop-at and what-ifs; and `mephisto replay` on good and damaged recordings.
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/support/run_command.h"

#include "agents/examples.h"
#include "runtime/trace/trace_reader.h"
#include "sim/replay/replayer.h"
#include "sim/scenario/loader.h"
#include "sim/scenario/runner.h"
#include "tests/support/example_apps.h"

namespace mephisto::replay {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

using test_support::Ran;

Ran run_cli(const std::string& args) {
  return test_support::run_command(std::string(MEPHISTO_BIN) + " " + args);
}

std::string scenario_path(const std::string& name) {
  return std::string(MEPHISTO_SOURCE_DIR) + "/scenarios/" + name + ".textproto";
}

class Replay : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("mephisto-replay-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override {
    if (!HasFailure()) fs::remove_all(dir_);
  }

  // Runs a shipped scenario's seed with recording on; returns its run hash.
  uint64_t record(const std::string& name, uint64_t seed, const fs::path& into) {
    auto scenario = sim::scenario::load_scenario_file(scenario_path(name), test::example_apps());
    EXPECT_TRUE(scenario.ok()) << scenario.error().message;
    sim::scenario::RunOptions options;
    options.app = test::scenario_app(*scenario);
    options.seed = seed;
    options.timeline = false;
    options.record_dir = into.string();
    const sim::scenario::RunResult result = sim::scenario::run_scenario(*scenario, options);
    EXPECT_TRUE(result.passed) << name << " seed " << seed;
    return result.run_hash;
  }

  trace::TraceSet read(const fs::path& from) {
    auto traces = trace::read_trace_dir(from.string());
    EXPECT_TRUE(traces.ok()) << traces.error().message;
    return traces.ok() ? std::move(traces).value() : trace::TraceSet{};
  }

  fs::path dir_;
};

// tablecount, changed: a count of one key goes up by two. Same declarations, so the replay accepts it.
AppDefinition changed_table_count(const std::string& changed_key) {
  AppDefinition definition = examples::table_count_app();
  definition.define = [changed_key](App& app) {
    auto events = app.topic<std::string, std::string>(std::string(examples::kCountEventsTopic),
                                                      examples::create_if_missing());
    auto results = app.topic<std::string, std::string>(std::string(examples::kCountResultsTopic),
                                                       examples::create_if_missing());
    TableOptions<int64_t> options;
    options.help = "events counted per key";
    auto counts = app.table<std::string, int64_t>("counts", events, options);
    app.agent("count", events, [counts, results, changed_key](Stream<std::string, std::string>& stream) {
      for (auto& event : stream) {
        const int64_t count = counts.add(event.key(), event.key() == changed_key ? 2 : 1);
        (void)results.send(event.key(), event.value() + " " + std::to_string(count));
      }
    });
  };
  return definition;
}

TEST_F(Replay, SimulatorRecordingReplaysIdenticallyAndRecordingDoesNotChangeTheRun) {
  // flagship: swarm faults (crashes, pauses, partitions) under exactly-once, two workers and restarts.
  const uint64_t recorded_hash = record("flagship", 3, dir_);
  auto scenario = sim::scenario::load_scenario_file(scenario_path("flagship"), test::example_apps());
  ASSERT_TRUE(scenario.ok());
  sim::scenario::RunOptions plain;
  plain.app = test::scenario_app(*scenario);
  plain.seed = 3;
  plain.timeline = false;
  EXPECT_EQ(sim::scenario::run_scenario(*scenario, plain).run_hash, recorded_hash)
      << "recording must not change what the simulated run does";

  const trace::TraceSet traces = read(dir_);
  ASSERT_GE(traces.incarnations.size(), 3u);
  uint64_t sends = 0;
  for (const trace::Incarnation& incarnation : traces.incarnations) {
    auto report = replay_incarnation(incarnation, examples::table_count_app(), {});
    ASSERT_TRUE(report.ok()) << report.error().message;
    EXPECT_TRUE(report->identical()) << report->writer << "/" << report->incarnation << ": "
                                     << (report->first_divergence
                                             ? report->first_divergence->expected + " vs " +
                                                   report->first_divergence->actual
                                             : report->fatal.value_or(""));
    EXPECT_EQ(report->inputs_consumed, report->inputs_total);
    EXPECT_EQ(report->sends_matched, report->sends_recorded);
    sends += report->sends_matched;
  }
  EXPECT_GT(sends, 500u);
}

TEST_F(Replay, SwarmAtLeastOnceRecordingReplaysIdentically) {
  record("swarm-at-least-once", 5, dir_);
  for (const trace::Incarnation& incarnation : read(dir_).incarnations) {
    auto report = replay_incarnation(incarnation, examples::table_count_app(), {});
    ASSERT_TRUE(report.ok()) << report.error().message;
    EXPECT_TRUE(report->identical()) << report->writer << "/" << report->incarnation;
  }
}

TEST_F(Replay, ChangedAgentDivergesAtTheFirstSendItChanges) {
  record("flagship", 3, dir_);
  const trace::TraceSet traces = read(dir_);
  ASSERT_FALSE(traces.incarnations.empty());
  const trace::Incarnation& first = traces.incarnations.front();
  // The key of the 10th input record of the first incarnation: the changed app counts it by two.
  std::string key;
  int seen = 0;
  for (const trace::Event& event : first.events) {
    if (!event.has_polled()) continue;
    for (const auto& record : event.polled().records()) {
      if (++seen == 10) key = record.key();
    }
  }
  ASSERT_FALSE(key.empty());
  // Where it must diverge: the first recorded send made from the first input with that key.
  std::optional<uint64_t> expected_index;
  std::string source;
  for (const trace::Event& event : first.events) {
    if (source.empty() && event.has_polled()) {
      for (const auto& record : event.polled().records()) {
        if (source.empty() && record.key() == key) {
          source = record.topic() + "/" + std::to_string(record.partition()) + "/" +
                   std::to_string(record.offset());
        }
      }
    }
    if (!source.empty() && event.has_sent() && !expected_index.has_value() &&
        event.sent().sources_size() == 1) {
      const auto& s = event.sent().sources(0);
      if (s.topic() + "/" + std::to_string(s.partition()) + "/" + std::to_string(s.offset()) == source) {
        expected_index = event.index();
      }
    }
  }
  ASSERT_TRUE(expected_index.has_value());

  auto same = replay_incarnation(first, examples::table_count_app(), {});
  ASSERT_TRUE(same.ok());
  EXPECT_TRUE(same->identical());

  auto changed = replay_incarnation(first, changed_table_count(key), {});
  ASSERT_TRUE(changed.ok()) << changed.error().message;
  ASSERT_TRUE(changed->first_divergence.has_value());
  EXPECT_EQ(changed->first_divergence->event_index, *expected_index);
  EXPECT_EQ(changed->first_divergence->what, "send");
  EXPECT_THAT(changed->first_divergence->expected, HasSubstr(key));
}

TEST_F(Replay, StopAtFeedsOnlyTheEarlierInputsAndReportsNothingMissing) {
  record("flagship", 3, dir_);
  const trace::TraceSet traces = read(dir_);
  ASSERT_FALSE(traces.incarnations.empty());
  const trace::Incarnation& first = traces.incarnations.front();
  ASSERT_GT(first.events.size(), 200u);
  ReplayOptions options;
  options.stop_at = static_cast<int64_t>(first.events.size() / 2);
  auto report = replay_incarnation(first, examples::table_count_app(), options);
  ASSERT_TRUE(report.ok());
  EXPECT_TRUE(report->identical());
  EXPECT_LT(report->inputs_consumed, report->inputs_total);
  EXPECT_GT(report->sends_matched, 0u);
  EXPECT_LT(report->sends_matched, report->sends_recorded);
}

TEST_F(Replay, WhatIfADroppedBatchChangesLaterCounts) {
  record("flagship", 3, dir_);
  const trace::TraceSet traces = read(dir_);
  ASSERT_FALSE(traces.incarnations.empty());
  const trace::Incarnation& first = traces.incarnations.front();
  int64_t batch_at = -1;
  int batches = 0;
  for (const trace::Event& event : first.events) {
    if (event.has_polled() && ++batches == 3) batch_at = static_cast<int64_t>(event.index());
  }
  ASSERT_GE(batch_at, 0);
  ReplayOptions options;
  options.fault = InjectedFault::kDrop;
  options.fault_at = batch_at;
  auto report = replay_incarnation(first, examples::table_count_app(), options);
  ASSERT_TRUE(report.ok());
  ASSERT_TRUE(report->first_divergence.has_value());
  EXPECT_GE(report->first_divergence->event_index, static_cast<uint64_t>(batch_at));
}

TEST_F(Replay, CliReplaysASimulatorRecordingAndReproducesItsRunHash) {
  const fs::path recording = dir_ / "rec";
  Ran sim = run_cli("sim " + scenario_path("flagship") + " --seed 3 -q --trace " + recording.string());
  ASSERT_EQ(sim.exit_code, 0) << sim.output;
  Ran replayed = run_cli("replay " + recording.string());
  EXPECT_EQ(replayed.exit_code, 0) << replayed.output;
  EXPECT_THAT(replayed.output, HasSubstr("simulator run hash reproduced"));
  EXPECT_THAT(replayed.output, HasSubstr("replay: identical"));
  EXPECT_THAT(replayed.output, HasSubstr(": same"));

  // A second recording into the same directory is refused (it would mix two runs).
  Ran again = run_cli("sim " + scenario_path("flagship") + " --seed 4 -q --trace " + recording.string());
  EXPECT_EQ(again.exit_code, 2) << again.output;
  EXPECT_THAT(again.output, HasSubstr("already holds a recording"));

  // Another app than the recorded one: refused, naming the difference.
  Ran other = run_cli("replay " + recording.string() + " --app wordcount");
  EXPECT_EQ(other.exit_code, 2) << other.output;
  EXPECT_THAT(other.output, HasSubstr("different app"));

  // An app the binary lacks: the name asked for is reported as asked, beside the recorded one.
  Ran unknown = run_cli("replay " + recording.string() + " --app nosuch");
  EXPECT_EQ(unknown.exit_code, 2) << unknown.output;
  EXPECT_THAT(unknown.output, HasSubstr("--app nosuch: this binary has no such app (its apps: "));
  EXPECT_THAT(unknown.output, HasSubstr("was recorded by app 'tablecount'"));

  // Another binary (a user's, built on mephisto::main) without the recorded app: refused, naming it.
  Ran elsewhere = test_support::run_command(std::string(PAYTOTALS_BIN) + " replay " + recording.string());
  EXPECT_EQ(elsewhere.exit_code, 2) << elsewhere.output;
  EXPECT_THAT(elsewhere.output, HasSubstr("'tablecount', which this binary does not have"));
}

TEST_F(Replay, CliRejectsDamagedRecordingsWithoutCrashing) {
  const fs::path recording = dir_ / "rec";
  ASSERT_EQ(
      run_cli("sim " + scenario_path("flagship") + " --seed 3 -q --trace " + recording.string()).exit_code,
      0);
  fs::path biggest;
  for (const auto& entry : fs::directory_iterator(recording)) {
    if (entry.path().extension() != ".mtrace") continue;
    if (biggest.empty() || fs::file_size(entry.path()) > fs::file_size(biggest)) biggest = entry.path();
  }
  ASSERT_FALSE(biggest.empty());
  const auto copy_with = [&](const std::string& name, const std::function<void(std::string&)>& damage) {
    const fs::path damaged = dir_ / name;
    fs::create_directories(damaged);
    std::ifstream in(biggest, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    damage(bytes);
    std::ofstream(damaged / biggest.filename(), std::ios::binary) << bytes;
    return damaged;
  };
  // A flipped byte in the middle: the frame's CRC fails.
  const fs::path corrupted = copy_with("corrupted", [](std::string& b) { b[b.size() / 2] ^= 0x5a; });
  Ran ran = run_cli("replay " + corrupted.string());
  EXPECT_EQ(ran.exit_code, 2) << ran.output;
  EXPECT_THAT(ran.output, HasSubstr("corrupted"));
  EXPECT_THAT(ran.output, HasSubstr(biggest.filename().string()));
  // Cut inside a frame (a worker killed while writing): the complete frames replay; the torn tail is said.
  const fs::path truncated = copy_with("truncated", [](std::string& b) { b.resize(b.size() - 7); });
  ran = run_cli("replay " + truncated.string());
  EXPECT_TRUE(ran.exit_code == 0 || ran.exit_code == 1) << ran.output;
  EXPECT_THAT(ran.output, HasSubstr("torn"));
  // Not a trace at all, and an empty directory.
  const fs::path garbage = copy_with("garbage", [](std::string& b) { b = "hello, not a trace\n"; });
  ran = run_cli("replay " + garbage.string());
  EXPECT_EQ(ran.exit_code, 2) << ran.output;
  EXPECT_THAT(ran.output, HasSubstr("not a trace"));
  fs::create_directories(dir_ / "empty");
  ran = run_cli("replay " + (dir_ / "empty").string());
  EXPECT_EQ(ran.exit_code, 2) << ran.output;
  ran = run_cli("replay " + recording.string() + " --inject explode@3");
  EXPECT_EQ(ran.exit_code, 2) << ran.output;
  EXPECT_THAT(ran.output, HasSubstr("fail-send@N or drop@N"));
}

}  // namespace
}  // namespace mephisto::replay
