// Exactly-once tables under SIGKILL, on real processes and a real broker (issue #6, item 7): two worker
// processes of the tablecount example (agents/table_count.cpp, run by kafka_table_count_worker, i.e. run_cli)
// under exactly_once with rocksdb:// stores count events per key in table `counts`; this driver feeds them
// events in waves and SIGKILLs one of them at a time at random points — right after it started, while it
// restores its table partitions, under load, at any time — restarting it each time with its slot's worker_id
// (so its transactional id fences its predecessor's at once) and its slot's data_dir, wiped before some
// restarts (a crash without its disk). At the end, read_committed:
//
//   - the output topic holds every event id exactly once, nothing lost, each with the count its key had after
//     that event (the event's position among its key's events): so per key the counts are exactly 1..n,
//     each once, and in order;
//   - the table's changelog (last value per key) holds each key's number of events.
//
// The broker side uses raw librdkafka (admin, the event producer, the readers), so that a fault in Mephisto's
// binding cannot hide itself in the checking.
//
//   MEPHISTO_KAFKA_BOOTSTRAP=host:port kafka_table_count_crash_test [--worker PATH] [--seed N] [--events N]
//       [--keys N] [--kills N]
//
// --worker defaults to kafka_table_count_worker next to this binary. The seed fixes the plan (events, keys,
// kill kinds, targets, delays, wipes), not the exact instant each kill lands: that depends on the machine.

#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <sys/wait.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "runtime/kafka/rd_handles.h"
#include "tests/kafka/cli_args.h"
#include "tests/kafka/crash_support.h"
#include "tests/kafka/worker_process.h"
#include "tools/rdkafka_raw/rd_raw.h"

namespace {

// Every broker wait is bounded by this, so a broken broker fails the test instead of hanging it.
constexpr int kTimeoutMs = 30'000;
// How long a step may wait for the worker line it triggers on (start, group join, restore).
constexpr int64_t kTriggerTimeoutMs = 40'000;
// The whole run (events, kills and the final catch-up) must be done by then, measured from the start, so
// that verification still fits in CTest's 240 s; beyond it the test fails instead of being killed.
constexpr int64_t kRunBudgetMs = 200'000;
// How long a signalled worker may take to exit.
constexpr int64_t kExitTimeoutMs = 30'000;
constexpr int kPartitions = 4;
constexpr int kSlots = 2;

namespace rd = mephisto::rd;
namespace rdt = mephisto::rd_raw;
using namespace mephisto::kafka_test;

[[noreturn]] void Fail(const std::string& what) {
  throw std::runtime_error(what);
}

// --- options -----------------------------------------------------------------------------------------------

struct DriverOptions {
  std::string worker_path;
  std::optional<uint64_t> seed;
  int64_t events = 100'000;
  int keys = 150;
  int kills = 12;
};

DriverOptions g_options;

// Best effort: the development broker is shared and long-lived, so the test cleans up after itself.
void DeleteTopicsWithPrefix(rd_kafka_t* client, const std::string& prefix) {
  try {
    const rd_kafka_metadata_t* metadata = nullptr;
    if (rd_kafka_resp_err_t err = rd_kafka_metadata(client, 1, nullptr, &metadata, kTimeoutMs)) {
      Fail(std::string("metadata: ") + rd_kafka_err2str(err));
    }
    std::vector<std::string> names;
    for (int i = 0; i < metadata->topic_cnt; ++i) {
      const std::string name = metadata->topics[i].topic;
      if (name.rfind(prefix, 0) == 0) names.push_back(name);
    }
    rd_kafka_metadata_destroy(metadata);
    if (!names.empty()) rdt::DeleteTopics(client, names, kTimeoutMs);
  } catch (const std::exception& error) {
    std::cerr << "driver: cleanup failed (ignored): " << error.what() << '\n';
  }
}

// --- worker output -----------------------------------------------------------------------------------------

// Where a worker was when it was killed, judged from its log lines (runtime/app: engine_consume.cpp's
// "assigned N partition(s)", tables.cpp's "restoring from changelog offset", table_reader.cpp's "restored ...
// active"; worker.cpp's "rejoining" starts a fresh App in the same process).
enum class Landed {
  kStarting,    // before its first assignment: init_transactions, topics, standby catch-up, group join
  kRestoring,   // assigned, at least one table partition still restoring
  kProcessing,  // assigned, every assigned table partition active (processing, or inside a rebalance)
};

const char* Name(Landed landed) {
  switch (landed) {
    case Landed::kStarting:
      return "starting";
    case Landed::kRestoring:
      return "restoring";
    case Landed::kProcessing:
      return "processing";
  }
  return "?";
}

Landed Classify(const std::vector<std::string>& lines) {
  const WorkerState state = StateOf(lines);
  if (!state.assigned) return Landed::kStarting;
  return state.restoring.empty() ? Landed::kProcessing : Landed::kRestoring;
}

// --- the plan ----------------------------------------------------------------------------------------------

// What a step waits for before it SIGKILLs its target.
enum class StepKind {
  kUnderLoad,      // the group settled after the last restart, target restored: delay_ms more, then kill
  kAfterStart,     // the worker restarted by the previous step, delay_ms after its start
  kDuringRestore,  // the worker restarted (wiped) by the previous step, delay_ms after it starts restoring
  kAnyTime,        // a random worker, delay_ms after the step begins, whatever it is doing
};

const char* Name(StepKind kind) {
  switch (kind) {
    case StepKind::kUnderLoad:
      return "under-load";
    case StepKind::kAfterStart:
      return "after-start";
    case StepKind::kDuringRestore:
      return "during-restore";
    case StepKind::kAnyTime:
      return "any-time";
  }
  return "?";
}

struct Step {
  StepKind kind = StepKind::kAnyTime;
  int slot = 0;
  int64_t delay_ms = 0;
  bool wipe = false;  // wipe the slot's data_dir before restarting it (a crash that loses the disk)
};

std::string Describe(const Step& step) {
  std::ostringstream text;
  text << Name(step.kind) << "(slot " << step.slot << ", delay_ms=" << step.delay_ms
       << (step.wipe ? ", wipe" : "") << ")";
  return text.str();
}

// Kinds in equal shares, in a seeded random order; the first step never depends on a previous restart. A step
// that kills during a restore follows a wipe, so the restore starts from an empty store and is long.
std::vector<Step> MakePlan(std::mt19937_64& random, int kills) {
  // Inclusive bounds. Not std::uniform_int_distribution, whose output differs between standard libraries: a
  // seed must give the same plan everywhere.
  auto uniform = [&random](int64_t low, int64_t high) {
    return low + static_cast<int64_t>(random() % static_cast<uint64_t>(high - low + 1));
  };
  std::vector<StepKind> kinds;
  constexpr std::array kCycle = {StepKind::kUnderLoad, StepKind::kAfterStart, StepKind::kDuringRestore,
                                 StepKind::kAnyTime};
  for (int i = 0; i < kills; ++i) kinds.push_back(kCycle[i % kCycle.size()]);
  for (size_t i = kinds.size(); i > 1; --i) {  // Fisher-Yates, for the same reason
    std::swap(kinds[i - 1], kinds[uniform(0, static_cast<int64_t>(i) - 1)]);
  }
  if (!kinds.empty() && (kinds[0] == StepKind::kAfterStart || kinds[0] == StepKind::kDuringRestore)) {
    auto independent = std::find_if(kinds.begin(), kinds.end(), [](StepKind kind) {
      return kind == StepKind::kUnderLoad || kind == StepKind::kAnyTime;
    });
    if (independent != kinds.end()) std::iter_swap(kinds.begin(), independent);
  }
  std::vector<Step> plan;
  for (size_t i = 0; i < kinds.size(); ++i) {
    Step step;
    step.kind = kinds[i];
    switch (step.kind) {
      case StepKind::kUnderLoad:
        step.slot = static_cast<int>(uniform(0, kSlots - 1));
        step.delay_ms = uniform(300, 3'000);
        break;
      case StepKind::kAfterStart:
        step.slot = plan.empty() ? 0 : plan.back().slot;
        step.delay_ms = uniform(0, 2'500);
        break;
      case StepKind::kDuringRestore:
        step.slot = plan.empty() ? 0 : plan.back().slot;
        step.delay_ms = uniform(0, 150);
        if (!plan.empty()) plan.back().wipe = true;
        break;
      case StepKind::kAnyTime:
        step.slot = static_cast<int>(uniform(0, kSlots - 1));
        step.delay_ms = uniform(0, 5'000);
        break;
    }
    step.wipe = uniform(0, 99) < 35;
    plan.push_back(step);
  }
  return plan;
}

// --- the test ----------------------------------------------------------------------------------------------

class TableCountCrashTest : public ::testing::Test {
 protected:
  struct Slot {
    std::string worker_id;
    std::filesystem::path data_dir;
    std::unique_ptr<WorkerProcess> process;
    int incarnation = 0;
  };

  void SetUp() override {
    const char* bootstrap = std::getenv("MEPHISTO_KAFKA_BOOTSTRAP");
    if (bootstrap == nullptr || *bootstrap == '\0') {
      FAIL() << "MEPHISTO_KAFKA_BOOTSTRAP is not set. This test needs a running Kafka broker: run it through "
                "ctest (ctest --test-dir build -L kafka), which starts one, or against a running broker with "
                "`tools/kafka/with-broker -- <test binary>`.";
    }
    bootstrap_ = bootstrap;
    if (!std::filesystem::exists(g_options.worker_path)) {
      FAIL() << "worker binary not found: " << g_options.worker_path << " (pass --worker PATH)";
    }
    seed_ = g_options.seed.value_or(std::random_device{}());
    const std::string suffix = rdt::RandomSuffix();
    prefix_ = "mephisto.tablecount-" + suffix + ".";
    events_topic_ = prefix_ + "count-events";
    results_topic_ = prefix_ + "count-results";
    app_id_ = prefix_ + "tablecount";
    changelog_topic_ = app_id_ + "-counts-changelog";
    work_dir_ = std::filesystem::temp_directory_path() / ("mephisto-tablecount-" + suffix);
    std::filesystem::create_directories(work_dir_);
    for (int i = 0; i < kSlots; ++i) {
      slots_[i].worker_id = "w" + std::to_string(i);
      slots_[i].data_dir = work_dir_ / slots_[i].worker_id;
    }
    std::cerr << "driver: seed " << seed_ << "; " << Reproduce() << "\n";
  }

  void TearDown() override {
    for (Slot& slot : slots_) slot.process.reset();  // kills and reaps a worker still running
    if (HasFailure()) {
      std::cerr << "driver: FAILED with seed " << seed_ << "; topics (prefix " << prefix_
                << ") and data dirs (" << work_dir_.string() << ") kept for inspection\n"
                << "driver: " << Reproduce() << '\n';
    }
  }

  [[nodiscard]] std::string Reproduce() const {
    std::ostringstream text;
    text << "reproduce: tools/kafka/with-broker -- build/bin/kafka_table_count_crash_test --seed " << seed_
         << " --events " << g_options.events << " --keys " << g_options.keys << " --kills "
         << g_options.kills;
    return text.str();
  }

  void StartWorker(Slot& slot) {
    const std::vector<std::string> argv = {g_options.worker_path,
                                           "--prefix",
                                           prefix_,
                                           "worker",
                                           "tablecount",
                                           "--broker",
                                           "kafka://" + bootstrap_,
                                           "--set",
                                           "worker_id=" + slot.worker_id,
                                           "--set",
                                           "store=rocksdb://",
                                           "--set",
                                           "data_dir=" + slot.data_dir.string(),
                                           "--set",
                                           "processing_guarantee=exactly_once",
                                           "--set",
                                           "broker_session_timeout_ms=6000",
                                           "--set",
                                           "broker_heartbeat_interval_ms=1000",
                                           "--set",
                                           "topic_partitions=" + std::to_string(kPartitions)};
    ++slot.incarnation;
    slot.process =
        std::make_unique<WorkerProcess>(slot.worker_id + "." + std::to_string(slot.incarnation), argv);
  }

  // Reads both workers' output until `done` says so (it is asked after each line and at least every few
  // milliseconds) or the deadline passes; returns whether `done` said so. A worker that exits on its own is a
  // failure (a worker recovers from aborts and fencing in-process, by rejoining): it is recorded and
  // restarted, so that the run and its final checks still go on.
  bool PumpUntil(const std::function<bool()>& done, SteadyClock::time_point deadline) {
    for (;;) {
      if (done()) return true;
      if (SteadyClock::now() >= deadline) return false;
      for (Slot& slot : slots_) {
        if (!slot.process) continue;
        while (slot.process->NextLine(After(5))) {
          if (done()) return true;
        }
        if (!slot.process->running()) {
          ++unexpected_exits_;
          ADD_FAILURE() << slot.process->name()
                        << " exited on its own: " << WorkerProcess::DescribeStatus(*slot.process->Reap(false))
                        << " (its output is echoed above)";
          StartWorker(slot);
        }
      }
    }
  }

  void PumpFor(int64_t ms) {
    PumpUntil([] { return false; }, After(ms));
  }

  void CheckBudget(const char* what) const {
    if (MillisSince(test_start_) > kRunBudgetMs) {
      Fail(std::string("over the run budget of ") + std::to_string(kRunBudgetMs) + " ms " + what);
    }
  }

  SteadyClock::time_point TriggerDeadline() const {
    return std::min(After(kTriggerTimeoutMs), test_start_ + std::chrono::milliseconds(kRunBudgetMs));
  }

  std::string bootstrap_;
  uint64_t seed_ = 0;
  std::string prefix_;
  std::string events_topic_;
  std::string results_topic_;
  std::string app_id_;
  std::string changelog_topic_;
  std::filesystem::path work_dir_;
  std::array<Slot, kSlots> slots_;
  int unexpected_exits_ = 0;
  SteadyClock::time_point test_start_ = SteadyClock::now();
};

TEST_F(TableCountCrashTest, CountsAndOutputsAreExactAcrossSigkillsOfTwoWorkers) {
  test_start_ = SteadyClock::now();
  const int64_t total_events = g_options.events;
  const int keys = g_options.keys;
  std::mt19937_64 random{seed_};
  const std::vector<Step> plan = MakePlan(random, g_options.kills);
  std::cerr << "driver: plan:";
  for (const Step& step : plan) std::cerr << ' ' << Describe(step);
  std::cerr << '\n';

  // --- events: key k<n> (n < keys) in partition n % kPartitions, value e<i>; expected_count[i] is the count
  // of its key after event i, i.e. i's position among its key's events.
  std::vector<int> event_key(static_cast<size_t>(total_events));
  std::vector<int64_t> expected_count(static_cast<size_t>(total_events));
  std::vector<int64_t> key_events(static_cast<size_t>(keys), 0);
  for (int64_t i = 0; i < total_events; ++i) {
    const int key = static_cast<int>(random() % static_cast<uint64_t>(keys));
    event_key[i] = key;
    expected_count[i] = ++key_events[key];
  }
  // Waves: a fifth before the workers start, the rest spread over the steps (each produces its wave first).
  std::vector<int64_t> wave_ends;
  {
    const int64_t first = plan.empty() ? total_events : total_events / 5;
    wave_ends.push_back(first);
    for (size_t s = 0; s < plan.size(); ++s) {
      wave_ends.push_back(first + (total_events - first) * static_cast<int64_t>(s + 1) /
                                      static_cast<int64_t>(plan.size()));
    }
  }
  rdt::DeliveryCount delivery;
  rd::HandlePtr producer = MakeDriverProducer(bootstrap_, delivery);
  rdt::CreateTopics(producer.get(), {events_topic_, results_topic_}, kPartitions, kTimeoutMs);
  int64_t produced = 0;
  auto produce_until = [&](int64_t end) {
    for (; produced < end; ++produced) {
      const int key = event_key[produced];
      rdt::Produce(producer.get(), events_topic_, key % kPartitions, "k" + std::to_string(key),
                   "e" + std::to_string(produced));
      if (produced % 1000 == 999) rd_kafka_poll(producer.get(), 0);
    }
    rdt::Flush(producer.get(), kTimeoutMs);
    if (delivery.failed != 0) Fail("event delivery failed: " + delivery.first_failure);
    std::cerr << "driver: " << produced << " events produced after " << MillisSince(test_start_) << " ms\n";
  };
  produce_until(wave_ends[0]);

  // --- the workers and the kill plan.
  for (Slot& slot : slots_) StartWorker(slot);
  std::map<Landed, int> landed;
  std::map<StepKind, int> kinds_done;
  int kills = 0;
  int restarts = 0;
  int wiped_restarts = 0;
  int kills_of_wiped = 0;  // kills of a worker whose store had been wiped before it started
  std::array<bool, kSlots> started_wiped{};
  int last_restarted = -1;
  const auto kills_start = SteadyClock::now();
  for (size_t s = 0; s < plan.size(); ++s) {
    const Step& step = plan[s];
    CheckBudget("during the kills");
    produce_until(wave_ends[s + 1]);
    Slot& target = slots_[step.slot];
    std::cerr << "driver: step " << s + 1 << "/" << plan.size() << ": " << Describe(step) << " on "
              << target.process->name() << '\n';
    switch (step.kind) {
      case StepKind::kUnderLoad: {
        // Settled: the worker restarted last has its first assignment (the survivor is assigned in the same
        // generation), and the target restores nothing.
        const bool settled = PumpUntil(
            [&] {
              if (last_restarted >= 0 && !StateOf(slots_[last_restarted].process->lines()).assigned) {
                return false;
              }
              return Classify(target.process->lines()) == Landed::kProcessing;
            },
            TriggerDeadline());
        if (!settled) {
          ADD_FAILURE() << "the group did not settle (assigned and restored) within " << kTriggerTimeoutMs
                        << " ms after the last restart; killing anyway";
        }
        PumpFor(step.delay_ms);
        break;
      }
      case StepKind::kAfterStart:
        PumpUntil([] { return false; }, target.process->started() + std::chrono::milliseconds(step.delay_ms));
        break;
      case StepKind::kDuringRestore: {
        const bool restoring = PumpUntil(
            [&] { return StateOf(target.process->lines()).restores_started > 0; }, TriggerDeadline());
        if (!restoring) {
          ADD_FAILURE() << target.process->name() << " started no restore within " << kTriggerTimeoutMs
                        << " ms; killing anyway";
        }
        PumpFor(step.delay_ms);
        break;
      }
      case StepKind::kAnyTime:
        PumpFor(step.delay_ms);
        break;
    }
    target.process->Kill(SIGKILL);
    const Landed where = Classify(target.process->lines());
    ++kills;
    ++landed[where];
    ++kinds_done[step.kind];
    if (started_wiped[step.slot]) ++kills_of_wiped;
    std::cerr << "driver: kill " << kills << " (" << Describe(step) << ") of " << target.process->name()
              << " landed " << Name(where) << '\n';
    if (step.wipe) {
      std::filesystem::remove_all(target.data_dir);
      ++wiped_restarts;
      std::cerr << "driver: wiped " << target.data_dir << '\n';
    }
    started_wiped[step.slot] = step.wipe;
    StartWorker(target);
    ++restarts;
    last_restarted = step.slot;
  }
  const int64_t kills_ms = MillisSince(kills_start);
  produce_until(total_events);
  const std::vector<int64_t> input_ends = EndOffsets(producer.get(), events_topic_, kPartitions, kTimeoutMs);

  // --- both workers finish the input: done once the group's committed offsets reach the input's end.
  const auto finish_start = SteadyClock::now();
  rdt::ConsumerPtr offsets_reader = MakeDriverConsumer(bootstrap_, app_id_, "read_uncommitted");
  std::vector<int64_t> committed;
  auto next_check = SteadyClock::now();
  const bool caught_up = PumpUntil(
      [&] {
        if (SteadyClock::now() < next_check) return false;
        next_check = After(500);
        committed = CommittedOffsets(offsets_reader.get(), events_topic_, kPartitions, kTimeoutMs);
        return committed == input_ends;
      },
      test_start_ + std::chrono::milliseconds(kRunBudgetMs));
  const int64_t finish_ms = MillisSince(finish_start);
  if (!caught_up) {
    std::ostringstream offsets;
    for (int p = 0; p < kPartitions; ++p) offsets << " " << p << ":" << committed[p] << "/" << input_ends[p];
    ADD_FAILURE() << "the input was not fully committed within the run budget (" << kRunBudgetMs
                  << " ms); committed/end per partition:" << offsets.str()
                  << "; checking what was committed anyway";
  }
  // A worker restarted moments ago may not have taken over SIGTERM yet (the CLI blocks it and reads it from a
  // signalfd once it starts): wait for its start line, so the graceful stop below is a fair check.
  const auto signals_ready = [&] {
    for (Slot& slot : slots_) {
      bool started = false;
      for (const std::string& line : slot.process->lines())
        started = started || line.find("starting on") != std::string::npos;
      if (!started) return false;
    }
    return true;
  };
  (void)PumpUntil(signals_ready, SteadyClock::now() + std::chrono::milliseconds(30000));
  for (Slot& slot : slots_) slot.process->Signal(SIGTERM);
  for (Slot& slot : slots_) {
    std::optional<int> status = slot.process->WaitExit(After(kExitTimeoutMs));
    if (!status) {
      ADD_FAILURE() << slot.process->name() << " did not stop within " << kExitTimeoutMs
                    << " ms after SIGTERM";
      slot.process->Kill(SIGKILL);
      continue;
    }
    EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0)
        << slot.process->name() << " after SIGTERM: " << WorkerProcess::DescribeStatus(*status);
  }
  const int64_t run_ms = MillisSince(test_start_);

  // --- the output and the table, read_committed.
  const auto verify_start = SteadyClock::now();
  const std::vector<Record> output = ReadAll(bootstrap_, results_topic_, kPartitions, "read_committed",
                                             app_id_ + ".verify-output", kTimeoutMs);
  const std::vector<Record> output_uncommitted =
      ReadAll(bootstrap_, results_topic_, kPartitions, "read_uncommitted", app_id_ + ".verify-uncommitted",
              kTimeoutMs);
  const std::vector<Record> changelog = ReadAll(bootstrap_, changelog_topic_, kPartitions, "read_committed",
                                                app_id_ + ".verify-changelog", kTimeoutMs);

  constexpr int kShown = 10;
  std::vector<int> copies(static_cast<size_t>(total_events), 0);
  std::vector<int64_t> last_count(static_cast<size_t>(keys), 0);
  std::vector<std::set<int64_t>> counts_seen(static_cast<size_t>(keys));
  std::vector<int64_t> outputs_per_key(static_cast<size_t>(keys), 0);
  int64_t malformed = 0;
  int64_t duplicates = 0;
  int64_t wrong_counts = 0;
  int64_t out_of_order = 0;
  for (const Record& record : output) {
    // "<event id> <count>", keyed by the event's key.
    const size_t space = record.value.find(' ');
    int64_t id = -1;
    int64_t count = -1;
    if (space != std::string::npos && record.value[0] == 'e') {
      id = std::strtoll(record.value.c_str() + 1, nullptr, 10);
      count = std::strtoll(record.value.c_str() + space + 1, nullptr, 10);
    }
    if (id < 0 || id >= total_events ||
        record.value != "e" + std::to_string(id) + " " + std::to_string(count) ||
        record.key != "k" + std::to_string(event_key[id])) {
      if (malformed++ < kShown) {
        ADD_FAILURE() << "unexpected output record at " << record.partition << ":" << record.offset
                      << ": key '" << record.key << "' value '" << record.value << "'";
      }
      continue;
    }
    const int key = event_key[id];
    if (copies[id]++ > 0 && duplicates++ < kShown) {
      ADD_FAILURE() << "duplicate output for event e" << id << " (key k" << key << "): '" << record.value
                    << "' at " << record.partition << ":" << record.offset;
    }
    if (count != expected_count[id] && wrong_counts++ < kShown) {
      ADD_FAILURE() << "event e" << id << " (key k" << key << ") was counted " << count << ", expected "
                    << expected_count[id] << " (its position among its key's events), at " << record.partition
                    << ":" << record.offset;
    }
    if (count <= last_count[key] && out_of_order++ < kShown) {
      ADD_FAILURE() << "key k" << key << ": count " << count << " (event e" << id << ") at "
                    << record.partition << ":" << record.offset << " after count " << last_count[key];
    }
    last_count[key] = std::max(last_count[key], count);
    counts_seen[key].insert(count);
    ++outputs_per_key[key];
  }
  int64_t missing = 0;
  for (int64_t i = 0; i < total_events; ++i) {
    if (copies[i] == 0 && missing++ < kShown) {
      ADD_FAILURE() << "no output for event e" << i << " (key k" << event_key[i] << ", count "
                    << expected_count[i] << ")";
    }
  }
  // Per key, the counts in the output are exactly 1..n, each once.
  int64_t keys_with_bad_counts = 0;
  for (int key = 0; key < keys; ++key) {
    const std::set<int64_t>& seen = counts_seen[key];
    const bool exact = static_cast<int64_t>(seen.size()) == key_events[key] &&
                       (seen.empty() || (*seen.begin() == 1 && *seen.rbegin() == key_events[key]));
    const int64_t outputs = outputs_per_key[key];
    if ((!exact || outputs != key_events[key]) && keys_with_bad_counts++ < kShown) {
      ADD_FAILURE() << "key k" << key << ": " << outputs << " outputs with " << seen.size()
                    << " distinct counts in [" << (seen.empty() ? 0 : *seen.begin()) << ", "
                    << (seen.empty() ? 0 : *seen.rbegin()) << "], expected exactly 1.." << key_events[key];
    }
  }
  // The table: the changelog's last value per key (each key lives in one partition, read in offset order).
  std::map<std::string, std::optional<std::string>> table;
  for (const Record& record : changelog) {
    table[record.key] = record.null_value ? std::nullopt : std::optional<std::string>(record.value);
  }
  int64_t table_mismatches = 0;
  for (int key = 0; key < keys; ++key) {
    const std::string name = "k" + std::to_string(key);
    auto found = table.find(name);
    const std::string actual = found == table.end() ? "absent" : !found->second ? "deleted" : *found->second;
    const std::string expected = key_events[key] == 0 ? "absent" : std::to_string(key_events[key]);
    if (actual != expected && table_mismatches++ < kShown) {
      ADD_FAILURE() << "table 'counts' key " << name << ": changelog ends with " << actual << ", expected "
                    << expected << " (its number of events)";
    }
    if (found != table.end()) table.erase(found);
  }
  for (const auto& [key, value] : table) {
    if (table_mismatches++ < kShown) {
      ADD_FAILURE() << "table 'counts' holds key '" << key << "' = " << value.value_or("(deleted)")
                    << ", which no event has";
    }
  }
  const int64_t verify_ms = MillisSince(verify_start);
  const int64_t elapsed_ms = MillisSince(test_start_);

  // --- figures.
  std::ostringstream kinds_text;
  for (const auto& [kind, count] : kinds_done)
    kinds_text << (kinds_text.tellp() > 0 ? ", " : "") << count << " " << Name(kind);
  std::ostringstream landed_text;
  for (const auto& [where, count] : landed)
    landed_text << (landed_text.tellp() > 0 ? ", " : "") << count << " " << Name(where);
  std::cerr << "driver: figures: kills " << kills_ms << " ms, finish " << finish_ms << " ms (run " << run_ms
            << " ms), verify " << verify_ms << " ms; " << output.size() << " committed outputs, "
            << output_uncommitted.size() - std::min(output_uncommitted.size(), output.size())
            << " aborted (read_uncommitted " << output_uncommitted.size() << "); changelog "
            << changelog.size() << " committed records; " << kills_of_wiped
            << " kill(s) of a worker started on a wiped store; " << unexpected_exits_
            << " unexpected worker exit(s)\n";
  std::cout << "tablecount-sigkill summary: seed " << seed_ << ", events " << total_events << ", keys "
            << keys << ", workers " << kSlots << ", kills " << kills << " (" << kinds_text.str()
            << "; landed " << landed_text.str() << "), restarts " << restarts << " (" << wiped_restarts
            << " with a wiped data_dir), duplicates " << duplicates << ", missing " << missing
            << ", wrong counts " << wrong_counts << ", out of order " << out_of_order << ", malformed "
            << malformed << ", table mismatches " << table_mismatches << ", elapsed " << elapsed_ms << " ms"
            << std::endl;

  EXPECT_EQ(duplicates, 0);
  EXPECT_EQ(missing, 0);
  EXPECT_EQ(wrong_counts, 0);
  EXPECT_EQ(out_of_order, 0);
  EXPECT_EQ(malformed, 0);
  EXPECT_EQ(keys_with_bad_counts, 0);
  EXPECT_EQ(table_mismatches, 0);
  EXPECT_EQ(static_cast<int64_t>(output.size()), total_events);
  EXPECT_EQ(kills, g_options.kills);
  EXPECT_EQ(unexpected_exits_, 0);

  if (!HasFailure()) {
    DeleteTopicsWithPrefix(producer.get(), prefix_);
    std::error_code ignored;
    std::filesystem::remove_all(work_dir_, ignored);
  }
}

[[noreturn]] void Usage(const std::string& problem) {
  std::cerr << "kafka_table_count_crash_test: " << problem << "\n"
            << "usage: kafka_table_count_crash_test [--worker PATH] [--seed N] [--events N] [--keys N] "
               "[--kills N]\n";
  std::exit(2);
}

int64_t ParseInt(const std::string& name, const std::string& text, int64_t min) {
  return mephisto::kafka_test::ParseInt(name, text, min, Usage);
}

}  // namespace

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);  // removes the --gtest_* flags
  g_options.worker_path = SiblingProgram("kafka_table_count_worker");
  ForEachOption(argc, argv, Usage, [&](const std::string& name, const std::string& value) {
    if (ParseDriverOption(name, value, g_options.worker_path, g_options.seed)) return;
    if (name == "--events") {
      g_options.events = ParseInt(name, value, 1);
    } else if (name == "--keys") {
      g_options.keys = static_cast<int>(ParseInt(name, value, 1));
    } else if (name == "--kills") {
      g_options.kills = static_cast<int>(ParseInt(name, value, 0));
    } else {
      Usage("unknown argument '" + name + "'");
    }
  });
  return RUN_ALL_TESTS();
}
