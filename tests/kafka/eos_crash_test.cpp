// Exactly-once under SIGKILL, on real processes and a real broker (issue #4): kafka_eos_worker
// (eos_worker.cpp) runs the consume-transform-produce loop through Mephisto's production binding; this driver
// feeds it input, kills it with SIGKILL at random points (inside open transactions, just after commits, at
// any time), restarts it with the same transactional id each time, freezes one instance (SIGSTOP) so that its
// successor fences it and checks that the zombie dies instead of committing, lets a last instance finish, and
// then checks with read_committed that every input has its output exactly once, in order, and nothing is
// lost.
//
// The broker side uses raw librdkafka (admin, the input producer, the readers), so a fault in the binding
// cannot hide itself in the checking.
//
//   MEPHISTO_KAFKA_BOOTSTRAP=host:port kafka_eos_crash_test [--worker PATH] [--seed N] [--records N]
//       [--kills N] [--zombies N] [--stalls N] [--commit-delay-ms N] [--max-poll-records N]
//       [--transaction-timeout-ms N] [--membership static|dynamic] [--assignor
//       range|roundrobin|cooperative-sticky]
//
// --worker defaults to kafka_eos_worker next to this binary. The seed fixes the kill plan (kinds, counts,
// delays), not the exact instant each kill lands: that depends on the machine, which is the point.

#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <sys/wait.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
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
// How long a worker may take to reach the line a kill waits for (start, init_transactions, group join, work).
constexpr int64_t kTriggerTimeoutMs = 60'000;
// How long the last worker may take to commit the remaining input.
constexpr int64_t kFinishTimeoutMs = 150'000;
// How long a signalled worker may take to exit.
constexpr int64_t kExitTimeoutMs = 30'000;

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
  int64_t records = 20'000;
  int kills = 8;
  int zombies = 1;
  int stalls = 1;
  // Short, so that a stall step outlives it; far above a transaction's normal length (~0.2 s).
  int64_t transaction_timeout_ms = 3'000;
  int64_t commit_delay_ms = 100;
  int64_t max_poll_records = 200;
  std::string membership = "static";
  std::string assignor = "range";
};

DriverOptions g_options;

// Best effort: the development broker is shared and long-lived, so the test cleans up after itself.
void DeleteTopicsQuietly(rd_kafka_t* client, const std::vector<std::string>& names) {
  try {
    rdt::DeleteTopics(client, names, kTimeoutMs);
  } catch (const std::exception& error) {
    std::cerr << "driver: cleanup failed (ignored): " << error.what() << '\n';
  }
}

struct OutputRecord {
  int32_t partition = 0;
  int64_t offset = 0;
  std::string key;
  std::string value;
  std::string src;  // the worker's "src" header: the input's partition:offset
};

// Everything in `topic` as a consumer with `isolation` sees it (ReadToEnd).
std::vector<OutputRecord> ReadAll(const std::string& bootstrap, const std::string& topic, int partitions,
                                  const std::string& isolation, const std::string& group) {
  std::vector<OutputRecord> records;
  ReadToEnd(bootstrap, topic, partitions, isolation, group, kTimeoutMs,
            [&](const rd_kafka_message_t& message) {
              OutputRecord record{message.partition, message.offset, rdt::Text(message.key, message.key_len),
                                  rdt::Text(message.payload, message.len), ""};
              rd_kafka_headers_t* headers = nullptr;
              const void* src = nullptr;
              size_t src_size = 0;
              if (rd_kafka_message_headers(&message, &headers) == RD_KAFKA_RESP_ERR_NO_ERROR &&
                  rd_kafka_header_get_last(headers, "src", &src, &src_size) == RD_KAFKA_RESP_ERR_NO_ERROR) {
                record.src = rdt::Text(src, src_size);
              }
              records.push_back(std::move(record));
            });
  return records;
}

// --- worker output
// -------------------------------------------------------------------------------------------

bool StartsWith(std::string_view line, std::string_view prefix) {
  return line.substr(0, prefix.size()) == prefix;
}

// The number after the first word of a worker line ("produced 200" -> 200), or 0.
int64_t Count(const std::string& line) {
  const size_t space = line.find(' ');
  return space == std::string::npos ? 0 : std::strtoll(line.c_str() + space + 1, nullptr, 10);
}

// Where in the transaction cycle a killed worker was, judged from its last transaction line. The line
// "committing" is printed before commit_transaction is called, so a worker whose last such line is "produced"
// had an open transaction with flushed records and had not asked to commit it: that transaction can only be
// aborted.
enum class KillLanded {
  kBeforeFirstTransaction,  // starting, initialising, joining, first poll
  kPollingOrProducing,      // after a commit: polling, or a new transaction not yet flushed
  kOpenTransaction,         // records flushed and offsets added; commit not yet called: certainly aborted
  kDuringCommit,            // commit_transaction called: the coordinator may or may not have committed
};

const char* Name(KillLanded landed) {
  switch (landed) {
    case KillLanded::kBeforeFirstTransaction:
      return "before-first-transaction";
    case KillLanded::kOpenTransaction:
      return "open-transaction";
    case KillLanded::kDuringCommit:
      return "during-commit";
    case KillLanded::kPollingOrProducing:
      return "polling-or-producing";
  }
  return "?";
}

struct LastTransactionLine {
  KillLanded landed = KillLanded::kBeforeFirstTransaction;
  int64_t open_records = 0;  // records of the open transaction, for kOpenTransaction
};

LastTransactionLine Classify(const std::vector<std::string>& lines) {
  for (auto line = lines.rbegin(); line != lines.rend(); ++line) {
    if (StartsWith(*line, "produced ")) return {KillLanded::kOpenTransaction, Count(*line)};
    if (StartsWith(*line, "committing ")) return {KillLanded::kDuringCommit, 0};
    if (StartsWith(*line, "committed ") || StartsWith(*line, "aborted ")) {
      return {KillLanded::kPollingOrProducing, 0};
    }
  }
  return {};
}

// --- the test ----------------------------------------------------------------------------------------------

// What a step of the kill plan waits for before it acts.
enum class StepKind {
  kKillInOpenTransaction,  // SIGKILL as soon as the nth "produced" line arrives
  kKillAfterCommit,        // SIGKILL delay_ms after the nth "committed" line
  kKillDuringCommit,       // SIGKILL as soon as the nth "committing" line arrives
  kKillAnyTime,            // SIGKILL delay_ms after the start, whatever the worker is doing
  kZombie,                 // SIGSTOP at the nth "produced"; a successor fences it; SIGCONT; it must die
  kStall,  // SIGSTOP at the nth "produced" for delay_ms (past the transaction timeout); SIGCONT
};

const char* Name(StepKind kind) {
  switch (kind) {
    case StepKind::kKillInOpenTransaction:
      return "kill-in-open-transaction";
    case StepKind::kKillAfterCommit:
      return "kill-after-commit";
    case StepKind::kKillDuringCommit:
      return "kill-during-commit";
    case StepKind::kKillAnyTime:
      return "kill-any-time";
    case StepKind::kZombie:
      return "zombie";
    case StepKind::kStall:
      return "stall";
  }
  return "?";
}

struct Step {
  StepKind kind = StepKind::kKillAnyTime;
  int nth = 1;
  int64_t delay_ms = 0;
};

std::string Describe(const Step& step) {
  std::ostringstream text;
  text << Name(step.kind) << "(nth=" << step.nth << ", delay_ms=" << step.delay_ms << ")";
  return text.str();
}

// The plan: kills of every kind (every fourth right at "produced", so that some land in open transactions,
// whose records read_uncommitted must then show as aborted) and the zombie rounds, in a seeded random order.
std::vector<Step> MakePlan(std::mt19937_64& random, const DriverOptions& options) {
  // Inclusive bounds. Not std::uniform_int_distribution, whose output differs between standard libraries: a
  // seed must give the same plan everywhere.
  auto uniform = [&random](int64_t low, int64_t high) {
    return low + static_cast<int64_t>(random() % static_cast<uint64_t>(high - low + 1));
  };
  std::vector<Step> plan;
  for (int i = 0; i < options.kills; ++i) {
    Step step;
    switch (i % 4) {
      case 0:
        step = {StepKind::kKillInOpenTransaction, static_cast<int>(uniform(1, 3)), 0};
        break;
      case 1:
        // Short: the next transaction's polling and producing take a few tens of milliseconds, then the
        // worker sits in --commit-delay-ms.
        step = {StepKind::kKillAfterCommit, static_cast<int>(uniform(1, 3)), uniform(0, 30)};
        break;
      case 2:
        step = {StepKind::kKillDuringCommit, static_cast<int>(uniform(1, 3)), 0};
        break;
      default:
        step = {StepKind::kKillAnyTime, 1, uniform(0, 2'000)};
        break;
    }
    plan.push_back(step);
  }
  for (int i = 0; i < options.zombies; ++i) {
    plan.push_back({StepKind::kZombie, static_cast<int>(uniform(1, 2)), 0});
  }
  for (int i = 0; i < options.stalls; ++i) {
    // The broker aborts a transaction that outlived its timeout at its next scan for them, which runs every
    // transaction.abort.timed.out.transaction.cleanup.interval.ms (10 s by default).
    plan.push_back(
        {StepKind::kStall, static_cast<int>(uniform(1, 2)), options.transaction_timeout_ms + 12'000});
  }
  for (size_t i = plan.size(); i > 1; --i) {  // Fisher-Yates, for the same reason
    std::swap(plan[i - 1], plan[uniform(0, static_cast<int64_t>(i) - 1)]);
  }
  return plan;
}

std::string DescribeOutcomes(const std::map<std::string, int>& outcomes) {
  std::ostringstream text;
  for (const auto& [outcome, count] : outcomes)
    text << (text.tellp() > 0 ? ", " : "") << count << "x " << outcome;
  return outcomes.empty() ? "none" : text.str();
}

// What the worker instances said about themselves, summed over all of them.
struct WorkerReports {
  int64_t commits = 0;
  int64_t committed_records = 0;
  int64_t aborts = 0;  // transactions the worker itself aborted after an error

  void Add(const WorkerProcess& worker) {
    for (const std::string& line : worker.lines()) {
      if (StartsWith(line, "committed ")) {
        ++commits;
        committed_records += Count(line);
      } else if (StartsWith(line, "aborted ")) {
        ++aborts;
      }
    }
  }
};

class EosCrashTest : public ::testing::Test {
 protected:
  static constexpr int kPartitions = 3;

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
    input_ = "mephisto.eos.in-" + suffix;
    output_ = "mephisto.eos.out-" + suffix;
    group_ = "mephisto.eos.group-" + suffix;
    transactional_id_ = "mephisto.eos.txn-" + suffix;
    std::cerr << "driver: seed " << seed_ << " (reproduce the plan with --seed " << seed_ << " --records "
              << g_options.records << " --kills " << g_options.kills << " --zombies " << g_options.zombies
              << " --stalls " << g_options.stalls << " --transaction-timeout-ms "
              << g_options.transaction_timeout_ms << " --commit-delay-ms " << g_options.commit_delay_ms
              << " --membership " << g_options.membership << " --assignor " << g_options.assignor << ")\n";
  }

  std::unique_ptr<WorkerProcess> StartWorker() {
    std::vector<std::string> argv = {g_options.worker_path,
                                     "--bootstrap",
                                     bootstrap_,
                                     "--input",
                                     input_,
                                     "--output",
                                     output_,
                                     "--group",
                                     group_,
                                     "--transactional-id",
                                     transactional_id_,
                                     "--assignor",
                                     g_options.assignor,
                                     "--commit-delay-ms",
                                     std::to_string(g_options.commit_delay_ms),
                                     "--max-poll-records",
                                     std::to_string(g_options.max_poll_records),
                                     "--transaction-timeout-ms",
                                     std::to_string(g_options.transaction_timeout_ms)};
    if (g_options.membership == "static") {
      // Every instance is the same static member, so a restart takes over the dead one's assignment at once
      // instead of waiting out its session timeout.
      argv.insert(argv.end(), {"--group-instance-id", "eos-worker-" + group_});
    }
    return std::make_unique<WorkerProcess>("w" + std::to_string(++incarnations_), argv);
  }

  // Reads the worker's output until the nth line starting with `prefix` (counted from now); false if the
  // worker's output ended or the deadline passed first.
  static bool AwaitLines(WorkerProcess& worker, std::string_view prefix, int nth,
                         SteadyClock::time_point deadline) {
    int seen = 0;
    while (auto line = worker.NextLine(deadline)) {
      if (StartsWith(*line, prefix) && ++seen == nth) return true;
    }
    return false;
  }

  [[noreturn]] static void WorkerFailed(WorkerProcess& worker, const std::string& what) {
    std::string status = "still running";
    if (auto reaped = worker.Reap(false)) status = WorkerProcess::DescribeStatus(*reaped);
    Fail(worker.name() + ": " + what + " (" + status + "; " + std::to_string(worker.lines().size()) +
         " lines of output, echoed above)");
  }

  std::string bootstrap_;
  uint64_t seed_ = 0;
  std::string input_;
  std::string output_;
  std::string group_;
  std::string transactional_id_;
  int incarnations_ = 0;
};

TEST_F(EosCrashTest, EveryInputIsOutputExactlyOnceAcrossSigkills) {
  const auto test_start = SteadyClock::now();
  const int64_t records = g_options.records;
  std::mt19937_64 random{seed_};
  const std::vector<Step> plan = MakePlan(random, g_options);

  // --- topics and input: keys k<i>, values in-<i>, input i in partition i % kPartitions.
  rdt::DeliveryCount delivery;
  rd::HandlePtr producer = MakeDriverProducer(bootstrap_, delivery);
  rdt::CreateTopics(producer.get(), {input_, output_}, kPartitions, kTimeoutMs);
  for (int64_t i = 0; i < records; ++i) {
    rdt::Produce(producer.get(), input_, static_cast<int32_t>(i % kPartitions), "k" + std::to_string(i),
                 "in-" + std::to_string(i));
  }
  ASSERT_EQ(rd_kafka_flush(producer.get(), kTimeoutMs), RD_KAFKA_RESP_ERR_NO_ERROR);
  ASSERT_EQ(delivery.failed, 0) << "first input delivery failure: " << delivery.first_failure;
  ASSERT_EQ(delivery.delivered, records);
  const std::vector<int64_t> input_ends = EndOffsets(producer.get(), input_, kPartitions, kTimeoutMs);
  std::cerr << "driver: " << records << " inputs in " << input_ << " after " << MillisSince(test_start)
            << " ms\n";

  // --- the kill plan.
  std::map<KillLanded, int> kills_landed;
  int64_t open_records_killed = 0;  // records of open transactions killed before commit: certainly aborted
  int kills = 0;
  int zombies_fenced = 0;
  std::map<std::string, int> stall_outcomes;
  WorkerReports reports;
  const auto kills_start = SteadyClock::now();
  std::unique_ptr<WorkerProcess> worker = StartWorker();
  for (const Step& step : plan) {
    std::cerr << "driver: step " << Describe(step) << " on " << worker->name() << '\n';
    const auto deadline = After(kTriggerTimeoutMs);
    switch (step.kind) {
      case StepKind::kKillInOpenTransaction:
        if (!AwaitLines(*worker, "produced ", step.nth, deadline)) {
          WorkerFailed(*worker, "no 'produced' line");
        }
        break;
      case StepKind::kKillAfterCommit:
        if (!AwaitLines(*worker, "committed ", step.nth, deadline)) {
          WorkerFailed(*worker, "no 'committed' line");
        }
        worker->PumpUntil(After(step.delay_ms));
        break;
      case StepKind::kKillDuringCommit:
        if (!AwaitLines(*worker, "committing ", step.nth, deadline)) {
          WorkerFailed(*worker, "no 'committing' line");
        }
        break;
      case StepKind::kKillAnyTime:
        worker->PumpUntil(worker->started() + std::chrono::milliseconds(step.delay_ms));
        break;
      case StepKind::kStall: {
        if (!AwaitLines(*worker, "produced ", step.nth, deadline)) {
          WorkerFailed(*worker, "no 'produced' line");
        }
        worker->Signal(SIGSTOP);
        worker->WaitStopped();
        worker->PumpUntil(After(50));
        const LastTransactionLine at_stop = Classify(worker->lines());
        std::cerr << "driver: " << worker->name() << " stalled " << Name(at_stop.landed) << " for "
                  << step.delay_ms << " ms\n";
        // Nothing to read meanwhile: a stopped process writes nothing.
        std::this_thread::sleep_for(std::chrono::milliseconds(step.delay_ms));
        worker->Signal(SIGCONT);
        // The broker has aborted the open transaction (timeout) and, the session timeout having passed too,
        // removed the member from the group. Either the binding reports an abortable error (the worker
        // aborts, rewinds and carries on) or a fatal one (the worker exits with code 3 and is restarted); a
        // commit that succeeds means the broker had not aborted the transaction yet.
        std::string outcome;
        const auto outcome_deadline = After(kTriggerTimeoutMs);
        while (outcome.empty()) {
          std::optional<std::string> line = worker->NextLine(outcome_deadline);
          if (!line) break;
          if (StartsWith(*line, "aborted ")) outcome = "aborted and carried on";
          if (StartsWith(*line, "committed ")) outcome = "committed (not yet aborted by the broker)";
        }
        if (outcome.empty()) {
          std::optional<int> status = worker->WaitExit(After(kExitTimeoutMs));
          if (!status) WorkerFailed(*worker, "neither recovered nor exited after a stall");
          EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 3)
              << worker->name() << " after a stall: " << WorkerProcess::DescribeStatus(*status)
              << "; expected to carry on or exit with code 3 (fatal)";
          outcome = "exited: " + WorkerProcess::DescribeStatus(*status);
          reports.Add(*worker);
          worker = StartWorker();
        }
        std::cerr << "driver: stall outcome: " << outcome << '\n';
        ++stall_outcomes[outcome];
        continue;
      }
      case StepKind::kZombie: {
        if (!AwaitLines(*worker, "produced ", step.nth, deadline)) {
          WorkerFailed(*worker, "no 'produced' line");
        }
        worker->Signal(SIGSTOP);
        std::unique_ptr<WorkerProcess> zombie = std::move(worker);
        zombie->WaitStopped();
        // Everything it wrote before it stopped is in the pipe now; it writes nothing more until SIGCONT.
        zombie->PumpUntil(After(50));
        const LastTransactionLine at_stop = Classify(zombie->lines());
        std::cerr << "driver: " << zombie->name() << " frozen " << Name(at_stop.landed) << '\n';
        // The successor's init_transactions fences the frozen instance and aborts its open transaction; with
        // static membership its consumer takes over the zombie's member too.
        worker = StartWorker();
        if (!AwaitLines(*worker, "committed ", 1, After(kTriggerTimeoutMs))) {
          WorkerFailed(*worker, "no 'committed' line while its predecessor was frozen");
        }
        const size_t zombie_lines_before = zombie->lines().size();
        zombie->Signal(SIGCONT);
        // The successor's output waits in its pipe meanwhile (a few lines per transaction: far below 64 KiB).
        std::optional<int> status = zombie->WaitExit(After(kExitTimeoutMs));
        if (!status) WorkerFailed(*zombie, "a fenced zombie kept running");
        EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 3)
            << zombie->name() << " as a fenced zombie: " << WorkerProcess::DescribeStatus(*status)
            << "; expected exit code 3 (fatal: fenced)";
        // Frozen before it called commit_transaction, it must not commit after its successor fenced it.
        // (Frozen inside commit_transaction, its commit may have reached the coordinator first, and then
        // succeeds.)
        for (size_t i = zombie_lines_before; i < zombie->lines().size(); ++i) {
          if (at_stop.landed == KillLanded::kDuringCommit) break;
          EXPECT_FALSE(StartsWith(zombie->lines()[i], "committed "))
              << zombie->name() << " committed after its successor fenced it: " << zombie->lines()[i];
        }
        ++zombies_fenced;
        reports.Add(*zombie);
        continue;
      }
    }
    if (!worker->running()) WorkerFailed(*worker, "exited before its kill");
    worker->Kill(SIGKILL);
    reports.Add(*worker);
    const LastTransactionLine last = Classify(worker->lines());
    ++kills;
    ++kills_landed[last.landed];
    if (last.landed == KillLanded::kOpenTransaction) open_records_killed += last.open_records;
    std::cerr << "driver: kill " << kills << " (" << Describe(step) << ") landed " << Name(last.landed)
              << '\n';
    worker = StartWorker();
  }
  const int64_t kills_ms = MillisSince(kills_start);

  // --- the last worker finishes the input: done once the group's committed offsets reach the input's end.
  const auto finish_start = SteadyClock::now();
  rdt::ConsumerPtr offsets_reader = MakeDriverConsumer(bootstrap_, group_, "read_uncommitted");
  const auto finish_deadline = After(kFinishTimeoutMs);
  std::vector<int64_t> committed;
  for (;;) {
    committed = CommittedOffsets(offsets_reader.get(), input_, kPartitions, kTimeoutMs);
    if (committed == input_ends) break;
    if (SteadyClock::now() > finish_deadline) {
      WorkerFailed(*worker, "the input was not fully committed in time");
    }
    if (!worker->running()) WorkerFailed(*worker, "exited before the input was fully committed");
    worker->PumpUntil(After(500));
  }
  worker->Signal(SIGTERM);
  std::optional<int> final_status = worker->WaitExit(After(kExitTimeoutMs));
  if (!final_status) WorkerFailed(*worker, "did not stop within the timeout after SIGTERM");
  EXPECT_TRUE(WIFEXITED(*final_status) && WEXITSTATUS(*final_status) == 0)
      << "the last worker after SIGTERM: " << WorkerProcess::DescribeStatus(*final_status);
  const int64_t finish_ms = MillisSince(finish_start);
  reports.Add(*worker);

  // --- the output, as read_committed and read_uncommitted consumers see it.
  const auto verify_start = SteadyClock::now();
  const std::vector<OutputRecord> committed_output =
      ReadAll(bootstrap_, output_, kPartitions, "read_committed", group_ + ".verify-committed");
  const std::vector<OutputRecord> all_output =
      ReadAll(bootstrap_, output_, kPartitions, "read_uncommitted", group_ + ".verify-uncommitted");

  std::vector<int> copies(static_cast<size_t>(records), 0);
  std::vector<std::string> first_copy_src(static_cast<size_t>(records));
  std::vector<int64_t> last_index(kPartitions, -1);
  int64_t malformed = 0;
  int64_t duplicates = 0;
  int64_t out_of_order = 0;
  constexpr int kShown = 10;
  for (const OutputRecord& record : committed_output) {
    const std::string_view prefix = "out:in-";
    int64_t index = -1;
    if (StartsWith(record.value, prefix)) {
      index = std::strtoll(record.value.c_str() + prefix.size(), nullptr, 10);
    }
    if (index < 0 || index >= records || record.value != "out:in-" + std::to_string(index) ||
        record.key != "k" + std::to_string(index) || record.partition != index % kPartitions) {
      if (malformed++ < kShown) {
        ADD_FAILURE() << "unexpected output record at " << record.partition << ":" << record.offset
                      << ": key '" << record.key << "' value '" << record.value << "' src " << record.src;
      }
      continue;
    }
    if (copies[index]++ == 0) {
      first_copy_src[index] = record.src;
    } else if (duplicates++ < kShown) {
      ADD_FAILURE() << "duplicate committed output for input " << index << ": at " << record.partition << ":"
                    << record.offset << " (src " << record.src << "), first from src "
                    << first_copy_src[index];
    }
    if (index <= last_index[record.partition] && out_of_order++ < kShown) {
      ADD_FAILURE() << "output out of input order in partition " << record.partition << ": input " << index
                    << " at offset " << record.offset << " after input " << last_index[record.partition];
    }
    last_index[record.partition] = std::max(last_index[record.partition], index);
  }
  int64_t missing = 0;
  for (int64_t i = 0; i < records; ++i) {
    if (copies[i] == 0 && missing++ < kShown) ADD_FAILURE() << "no committed output for input " << i;
  }
  std::vector<int> copies_seen_uncommitted(static_cast<size_t>(records), 0);
  for (const OutputRecord& record : all_output) {
    const std::string_view prefix = "out:in-";
    if (!StartsWith(record.value, prefix)) continue;
    const int64_t index = std::strtoll(record.value.c_str() + prefix.size(), nullptr, 10);
    if (index >= 0 && index < records) ++copies_seen_uncommitted[index];
  }
  const int64_t inputs_with_aborted_copies = std::count_if(
      copies_seen_uncommitted.begin(), copies_seen_uncommitted.end(), [](int n) { return n > 1; });
  const auto aborted_records =
      static_cast<int64_t>(all_output.size()) - static_cast<int64_t>(committed_output.size());
  const int64_t verify_ms = MillisSince(verify_start);

  // --- figures.
  std::cerr << "driver: figures: seed " << seed_ << "; " << records << " inputs; " << kills << " SIGKILLs ("
            << kills_landed[KillLanded::kOpenTransaction] << " in open transactions, "
            << kills_landed[KillLanded::kDuringCommit] << " during commit, "
            << kills_landed[KillLanded::kPollingOrProducing] << " polling or producing, "
            << kills_landed[KillLanded::kBeforeFirstTransaction] << " before the first); " << zombies_fenced
            << " zombie(s) fenced; stalls: " << DescribeOutcomes(stall_outcomes) << "; " << incarnations_
            << " worker processes, which reported " << reports.commits << " commits of "
            << reports.committed_records << " records and " << reports.aborts << " aborts of their own; "
            << static_cast<int64_t>(committed_output.size()) - reports.committed_records
            << " records committed without their worker seeing it (killed inside commit_transaction)\n"
            << "driver: figures: read_committed " << committed_output.size() << " records (" << missing
            << " missing, " << duplicates << " duplicates, " << malformed << " malformed, " << out_of_order
            << " out of order); read_uncommitted " << all_output.size() << " records, so " << aborted_records
            << " aborted records (at least " << open_records_killed << " expected from kills in open "
            << "transactions), " << inputs_with_aborted_copies << " inputs with more than one copy\n"
            << "driver: figures: input " << MillisSince(test_start) - kills_ms - finish_ms - verify_ms
            << " ms, kills " << kills_ms << " ms, finish " << finish_ms << " ms, verify " << verify_ms
            << " ms, total " << MillisSince(test_start) << " ms\n";

  EXPECT_EQ(missing, 0);
  EXPECT_EQ(duplicates, 0);
  EXPECT_EQ(malformed, 0);
  EXPECT_EQ(out_of_order, 0);
  EXPECT_EQ(static_cast<int64_t>(committed_output.size()), records);
  EXPECT_EQ(kills, g_options.kills);
  // A kill whose worker had flushed records and not yet asked to commit leaves those records in the log,
  // aborted by the successor's init_transactions: read_uncommitted must see them. The plan has kills right at
  // "produced"; the worker then waits --commit-delay-ms before committing, so at least one lands inside.
  const auto kills_at_produced = std::count_if(plan.begin(), plan.end(), [](const Step& step) {
    return step.kind == StepKind::kKillInOpenTransaction;
  });
  if (kills_at_produced >= 2 && g_options.commit_delay_ms >= 50) {
    EXPECT_GE(kills_landed[KillLanded::kOpenTransaction], 1)
        << "no kill landed inside an open transaction; raise --commit-delay-ms";
  }
  EXPECT_GE(aborted_records, open_records_killed)
      << "records of transactions killed before commit must stay in the log as aborted records";

  if (!HasFailure()) DeleteTopicsQuietly(producer.get(), {input_, output_});
}

[[noreturn]] void Usage(const std::string& problem) {
  std::cerr
      << "kafka_eos_crash_test: " << problem << "\n"
      << "usage: kafka_eos_crash_test [--worker PATH] [--seed N] [--records N] [--kills N] [--zombies N]\n"
         "         [--stalls N] [--commit-delay-ms N] [--max-poll-records N] [--transaction-timeout-ms N]\n"
         "         [--membership static|dynamic] [--assignor range|roundrobin|cooperative-sticky]\n";
  std::exit(2);
}

int64_t ParseInt(const std::string& name, const std::string& text, int64_t min) {
  return mephisto::kafka_test::ParseInt(name, text, min, Usage);
}

}  // namespace

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);  // removes the --gtest_* flags
  g_options.worker_path = SiblingProgram("kafka_eos_worker");
  ForEachOption(argc, argv, Usage, [&](const std::string& name, const std::string& value) {
    if (ParseDriverOption(name, value, g_options.worker_path, g_options.seed)) return;
    if (name == "--records") {
      g_options.records = ParseInt(name, value, 1);
    } else if (name == "--kills") {
      g_options.kills = static_cast<int>(ParseInt(name, value, 0));
    } else if (name == "--zombies") {
      g_options.zombies = static_cast<int>(ParseInt(name, value, 0));
    } else if (name == "--stalls") {
      g_options.stalls = static_cast<int>(ParseInt(name, value, 0));
    } else if (name == "--transaction-timeout-ms") {
      g_options.transaction_timeout_ms = ParseInt(name, value, 1);
    } else if (name == "--commit-delay-ms") {
      g_options.commit_delay_ms = ParseInt(name, value, 0);
    } else if (name == "--max-poll-records") {
      g_options.max_poll_records = ParseInt(name, value, 1);
    } else if (name == "--membership") {
      if (value != "static" && value != "dynamic") Usage("--membership is static or dynamic");
      g_options.membership = value;
    } else if (name == "--assignor") {
      g_options.assignor = value;
    } else {
      Usage("unknown argument '" + name + "'");
    }
  });
  return RUN_ALL_TESTS();
}
