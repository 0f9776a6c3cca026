// Record on real Kafka, replay in the simulator (issue #8), end to end on real processes and a real broker:
// two `mephisto worker tablecount --record DIR` processes (exactly once, rocksdb:// stores in data dirs of
// their own; one of them with --record-segment-mb 1, so that its incarnations rotate into several segment
// files) count events fed to them in waves; one of them is SIGKILLed while it processes and restarted with
// the same data dir and the same DIR (so the group rebalances twice); once every event's result is in the
// read_committed output (checked as table_count_crash_test.cpp does: each event once, with its key's running
// count, and the changelog ending with each key's count), both are stopped with SIGTERM and `mephisto replay
// DIR` must replay every incarnation identically. A second case damages copies of the recording: a flipped
// byte inside a frame is reported as a corrupted file (exit 2), a file cut inside a frame still replays, its
// torn tail reported.
//
// The workers run the `mephisto` binary itself, because `mephisto replay` builds the app it replays from its
// own registry (agents/examples.h, without a topic prefix): so the app's topics are the plain `count-events`
// and `count-results`, which this test deletes and recreates empty at its start (no other test uses them),
// and its app id (`--set id=`; group, transactional ids and changelog topic) is unique to the run.
//
//   MEPHISTO_KAFKA_BOOTSTRAP=host:port kafka_record_replay_test [--mephisto PATH] [--seed N] [--events N]
//       [--keys N] [--value-bytes N]
//
// --mephisto defaults to `mephisto` next to this binary.

#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <sys/wait.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <regex>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <tuple>
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
// How long a step may wait for the worker lines it triggers on (start, group join, restore).
constexpr int64_t kTriggerTimeoutMs = 40'000;
// Until the input is fully committed, from the start of the workload (CTest gives the binary 180 s in all).
constexpr int64_t kRunBudgetMs = 90'000;
constexpr int64_t kExitTimeoutMs = 30'000;
// A replay of the whole recording, and of one damaged copy.
constexpr int64_t kReplayTimeoutMs = 30'000;
constexpr int kPartitions = 4;
constexpr int kSlots = 2;
// The app's own topics (agents/examples.h, no prefix: see the top of the file).
constexpr const char* kEventsTopic = "count-events";
constexpr const char* kResultsTopic = "count-results";

namespace rd = mephisto::rd;
namespace rdt = mephisto::rd_raw;
namespace fs = std::filesystem;
using namespace mephisto::kafka_test;

[[noreturn]] void Fail(const std::string& what) {
  throw std::runtime_error(what);
}

struct DriverOptions {
  std::string mephisto_path;
  std::optional<uint64_t> seed;
  int64_t events = 3'000;
  int keys = 20;
  // Padding in each event's value: makes the recording large enough (a few MB) for the worker recording with
  // --record-segment-mb 1 to rotate into several segments.
  int value_bytes = 1'000;
};

DriverOptions g_options;

std::string Lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text;
}

std::string Joined(const std::vector<std::string>& lines) {
  std::string text;
  for (const std::string& line : lines) text += line + '\n';
  return text;
}

// --- broker side -------------------------------------------------------------------------------------------

// Which of `names` exist on the broker.
std::set<std::string> ExistingTopics(rd_kafka_t* client, const std::vector<std::string>& names) {
  const rd_kafka_metadata_t* metadata = nullptr;
  if (rd_kafka_resp_err_t err = rd_kafka_metadata(client, 1, nullptr, &metadata, kTimeoutMs)) {
    Fail(std::string("metadata: ") + rd_kafka_err2str(err));
  }
  std::set<std::string> found;
  for (int i = 0; i < metadata->topic_cnt; ++i) {
    const std::string name = metadata->topics[i].topic;
    if (std::find(names.begin(), names.end(), name) != names.end()) found.insert(name);
  }
  rd_kafka_metadata_destroy(metadata);
  return found;
}

// Deletes `names` where they exist, waits until they are gone, and creates them empty with kPartitions. Kafka
// deletes asynchronously, so creating can fail for a while (the topic is still marked for deletion): retried.
void RecreateTopics(rd_kafka_t* client, const std::vector<std::string>& names) {
  const std::set<std::string> existing = ExistingTopics(client, names);
  if (!existing.empty()) {
    rdt::DeleteTopics(client, {existing.begin(), existing.end()}, kTimeoutMs);
    const auto deadline = After(kTimeoutMs);
    while (!ExistingTopics(client, names).empty()) {
      if (SteadyClock::now() > deadline) Fail("the old topics were not deleted within the timeout");
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
  }
  const auto deadline = After(kTimeoutMs);
  for (;;) {
    try {
      rdt::CreateTopics(client, names, kPartitions, kTimeoutMs);
      return;
    } catch (const std::exception& error) {
      if (SteadyClock::now() > deadline) throw;
      std::cerr << "driver: creating the topics failed (retrying): " << error.what() << '\n';
      // A topic created by an earlier attempt that only timed out: delete it again, start over.
      const std::set<std::string> left = ExistingTopics(client, names);
      if (!left.empty()) rdt::DeleteTopics(client, {left.begin(), left.end()}, kTimeoutMs);
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
  }
}

// --- worker output -----------------------------------------------------------------------------------------

// The table partition number in "table 'counts' partition 3: ..." lines, or -1.
// Runs `argv` with its stderr sent to its stdout (WorkerProcess reads stdout only): through the shell, which
// execs the program, so the pid signalled is the program's.
// `line_buffered`: through stdbuf -oL where it exists, so that a program killed at a timeout has shown its
// output so far (stdout into a pipe is block-buffered).
std::unique_ptr<WorkerProcess> Spawn(const std::string& name, const std::vector<std::string>& argv,
                                     bool line_buffered = false) {
  std::vector<std::string> shell = {
      "/bin/sh", "-c",
      line_buffered ? "if command -v stdbuf >/dev/null 2>&1; then exec stdbuf -oL \"$0\" \"$@\" 2>&1; fi; "
                      "exec \"$0\" \"$@\" 2>&1"
                    : "exec \"$0\" \"$@\" 2>&1"};
  shell.insert(shell.end(), argv.begin(), argv.end());
  return std::make_unique<WorkerProcess>(name, shell);
}

// --- mephisto replay ---------------------------------------------------------------------------------------

struct ReplayRun {
  std::optional<int> exit_code;  // nullopt: killed by a signal, or did not finish in time
  std::string status;            // how it ended, for messages
  std::vector<std::string> lines;
  [[nodiscard]] std::string output() const { return Joined(lines); }
};

ReplayRun RunReplay(const fs::path& dir, const std::string& name) {
  std::unique_ptr<WorkerProcess> process =
      Spawn(name, {g_options.mephisto_path, "replay", dir.string()}, true);
  ReplayRun run;
  const std::optional<int> status = process->WaitExit(After(kReplayTimeoutMs));
  if (!status) {
    process->Kill(SIGKILL);
    run.status = "did not finish within " + std::to_string(kReplayTimeoutMs) + " ms (killed)";
  } else {
    run.status = WorkerProcess::DescribeStatus(*status);
    if (WIFEXITED(*status)) run.exit_code = WEXITSTATUS(*status);
  }
  run.lines = process->lines();
  return run;
}

// One "incarnation <writer>/<n>: <events> events, <sends> sends, identical|DIVERGED" line of the replay.
struct ReplayedIncarnation {
  std::string name;
  int64_t events = 0;
  int64_t sends = 0;
  bool identical = false;
};

std::vector<ReplayedIncarnation> ParseIncarnations(const std::vector<std::string>& lines) {
  // Also "incarnation W/N (worker ID): E events, I/J inputs, S/T sends, identical (notes)": S is the sends
  // matched.
  static const std::regex kLine(
      R"(incarnation\s+(\S+?)(?:\s+\([^)]*\))?:\s+(\d+)\s+events?,.*?\b(\d+)(?:/\d+)?\s+sends?,\s+(identical|DIVERGED))");
  std::vector<ReplayedIncarnation> found;
  for (const std::string& line : lines) {
    std::smatch match;
    if (!std::regex_search(line, match, kLine)) continue;
    found.push_back({match[1].str(), std::stoll(match[2].str()), std::stoll(match[3].str()),
                     match[4].str() == "identical"});
  }
  return found;
}

// --- trace files -------------------------------------------------------------------------------------------

// DIR/<writer>.i<incarnation>.s<segment>.mtrace (runtime/trace/trace_writer.h).
struct TraceFileName {
  fs::path path;
  std::string incarnation;  // "<writer>.i<n>"
  int segment = 0;
};

std::vector<TraceFileName> TraceFiles(const fs::path& dir) {
  static const std::regex kName(R"((.+\.i\d+)\.s(\d+)\.mtrace)");
  std::vector<TraceFileName> files;
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    std::smatch match;
    if (!entry.is_regular_file() || !std::regex_match(name, match, kName)) continue;
    files.push_back({entry.path(), match[1].str(), std::stoi(match[2].str())});
  }
  std::sort(files.begin(), files.end(), [](const TraceFileName& a, const TraceFileName& b) {
    return std::tie(a.incarnation, a.segment) < std::tie(b.incarnation, b.segment);
  });
  return files;
}

std::string ReadBytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) Fail("cannot read " + path.string());
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void WriteBytes(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) Fail("cannot write " + path.string());
}

// A frame of a trace file (models/trace.proto): a varint length, a 4-byte CRC-32C, the payload.
struct FrameSpan {
  size_t start = 0;    // the length varint
  size_t payload = 0;  // the payload's first byte
  size_t end = 0;      // one past the payload
};

// The complete frames after the 8-byte magic, walked independently of runtime/trace, so that the damage
// below lands where the test means it to.
std::vector<FrameSpan> Frames(const std::string& bytes) {
  std::vector<FrameSpan> frames;
  size_t at = 8;
  while (at < bytes.size()) {
    uint64_t length = 0;
    size_t p = at;
    int shift = 0;
    for (;;) {
      if (p >= bytes.size() || shift > 63) return frames;
      const auto byte = static_cast<uint8_t>(bytes[p++]);
      length |= static_cast<uint64_t>(byte & 0x7f) << shift;
      shift += 7;
      if ((byte & 0x80) == 0) break;
    }
    const size_t payload = p + 4;
    if (payload + length > bytes.size()) return frames;
    frames.push_back({at, payload, payload + static_cast<size_t>(length)});
    at = payload + static_cast<size_t>(length);
  }
  return frames;
}

// --- the recorded workload ---------------------------------------------------------------------------------

// Where the recorded run is, once one ran in this process (the second case reuses the first's).
struct Recording {
  fs::path work_dir;
  fs::path record_dir;
};
std::optional<Recording> g_recording;

class Workload {
 public:
  explicit Workload(std::string bootstrap) : bootstrap_(std::move(bootstrap)) {}

  ~Workload() {
    for (Slot& slot : slots_) slot.process.reset();  // kills and reaps a worker still running
  }

  // Records the run described at the top of the file and checks its output; gtest failures on any problem.
  // Returns the recording (kept on disk) if the workers ran to the end.
  std::optional<Recording> Run() {
    start_ = SteadyClock::now();
    const uint64_t seed = g_options.seed.value_or(std::random_device{}());
    const std::string suffix = rdt::RandomSuffix();
    app_id_ = "rr-tablecount-" + suffix;
    changelog_topic_ = app_id_ + "-counts-changelog";
    recording_.work_dir = fs::temp_directory_path() / ("mephisto-record-replay-" + suffix);
    recording_.record_dir = recording_.work_dir / "trace";
    fs::create_directories(recording_.record_dir);
    for (int i = 0; i < kSlots; ++i) {
      slots_[i].worker_id = "w" + std::to_string(i);
      slots_[i].data_dir = recording_.work_dir / slots_[i].worker_id;
      slots_[i].segment_mb = i == 0 ? 1 : 0;  // slot 0 rotates its segments at 1 MB
    }
    std::cerr << "driver: seed " << seed << ", app id " << app_id_ << ", recording in "
              << recording_.record_dir.string() << "\n"
              << "driver: reproduce: tools/kafka/with-broker -- build/bin/kafka_record_replay_test --seed "
              << seed << " --events " << g_options.events << " --keys " << g_options.keys << '\n';

    // Events: key k<n> in partition n % kPartitions, value "e<i>:<padding>".
    const int64_t total_events = g_options.events;
    const int keys = g_options.keys;
    std::mt19937_64 random{seed};
    std::vector<int> event_key(static_cast<size_t>(total_events));
    std::vector<int64_t> expected_count(static_cast<size_t>(total_events));
    std::vector<int64_t> key_events(static_cast<size_t>(keys), 0);
    for (int64_t i = 0; i < total_events; ++i) {
      const int key = static_cast<int>(random() % static_cast<uint64_t>(keys));
      event_key[i] = key;
      expected_count[i] = ++key_events[key];
    }
    const std::string padding(static_cast<size_t>(g_options.value_bytes), 'x');
    auto event_value = [&](int64_t id) { return "e" + std::to_string(id) + ":" + padding; };

    rdt::DeliveryCount delivery;
    rd::HandlePtr producer = MakeDriverProducer(bootstrap_, delivery);
    RecreateTopics(producer.get(), {kEventsTopic, kResultsTopic});
    int64_t produced = 0;
    auto produce_until = [&](int64_t end) {
      for (; produced < end; ++produced) {
        const int key = event_key[produced];
        rdt::Produce(producer.get(), kEventsTopic, key % kPartitions, "k" + std::to_string(key),
                     event_value(produced));
        if (produced % 500 == 499) rd_kafka_poll(producer.get(), 0);
      }
      rdt::Flush(producer.get(), kTimeoutMs);
      if (delivery.failed != 0) Fail("event delivery failed: " + delivery.first_failure);
      std::cerr << "driver: " << produced << " events produced after " << MillisSince(start_) << " ms\n";
    };

    // Wave 1 before the workers start; wave 2 while both process, and the kill; wave 3 after the restart.
    produce_until(total_events / 3);
    for (Slot& slot : slots_) StartWorker(slot);
    if (!PumpUntil([&] { return AllProcessing(); }, TriggerDeadline())) {
      ADD_FAILURE() << "the two workers were not both assigned and restored within " << kTriggerTimeoutMs
                    << " ms; going on";
    }
    produce_until(2 * total_events / 3);
    PumpFor(1'500);  // the wave is being processed: a few transactions committed, more under way
    Slot& victim = slots_[0];
    victim.process->Kill(SIGKILL);
    std::cerr << "driver: SIGKILLed " << victim.process->name() << " (it was "
              << (StateOf(victim.process->lines()).processing() ? "processing" : "not yet processing")
              << ")\n";
    StartWorker(victim);
    if (!PumpUntil([&] { return AllProcessing(); }, TriggerDeadline())) {
      ADD_FAILURE() << "the group did not settle within " << kTriggerTimeoutMs << " ms after the restart";
    }
    produce_until(total_events);
    const std::vector<int64_t> input_ends = EndOffsets(producer.get(), kEventsTopic, kPartitions, kTimeoutMs);

    // Done once the group's committed offsets reach the input's end.
    rdt::ConsumerPtr offsets_reader = MakeDriverConsumer(bootstrap_, app_id_, "read_uncommitted");
    std::vector<int64_t> committed;
    auto next_check = SteadyClock::now();
    const bool caught_up = PumpUntil(
        [&] {
          if (SteadyClock::now() < next_check) return false;
          next_check = After(500);
          committed = CommittedOffsets(offsets_reader.get(), kEventsTopic, kPartitions, kTimeoutMs);
          return committed == input_ends;
        },
        start_ + std::chrono::milliseconds(kRunBudgetMs));
    if (!caught_up) {
      std::ostringstream offsets;
      for (int p = 0; p < kPartitions; ++p) {
        offsets << " " << p << ":" << (p < static_cast<int>(committed.size()) ? committed[p] : -1) << "/"
                << input_ends[p];
      }
      ADD_FAILURE() << "the input was not fully committed within " << kRunBudgetMs
                    << " ms; committed/end per partition:" << offsets.str();
    }

    // Graceful stop: every worker writes the rest of its recording and exits 0.
    (void)PumpUntil(
        [&] {
          return std::all_of(slots_.begin(), slots_.end(),
                             [](const Slot& slot) { return StateOf(slot.process->lines()).started; });
        },
        After(kTriggerTimeoutMs));
    for (Slot& slot : slots_) slot.process->Signal(SIGTERM);
    bool stopped = true;
    for (Slot& slot : slots_) {
      std::optional<int> status = slot.process->WaitExit(After(kExitTimeoutMs));
      if (!status) {
        ADD_FAILURE() << slot.process->name() << " did not stop within " << kExitTimeoutMs
                      << " ms after SIGTERM";
        slot.process->Kill(SIGKILL);
        stopped = false;
        continue;
      }
      EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0)
          << slot.process->name() << " after SIGTERM: " << WorkerProcess::DescribeStatus(*status);
    }
    std::cerr << "driver: workers stopped after " << MillisSince(start_) << " ms; " << unexpected_exits_
              << " unexpected exit(s)\n";
    EXPECT_EQ(unexpected_exits_, 0);

    Verify(total_events, keys, event_key, expected_count, key_events, padding);
    if (!caught_up || !stopped) return std::nullopt;
    return recording_;
  }

  // Best effort, after a passing test.
  void CleanUp() {
    try {
      rdt::DeliveryCount delivery;
      rd::HandlePtr client = MakeDriverProducer(bootstrap_, delivery);
      const std::vector<std::string> names = {kEventsTopic, kResultsTopic, changelog_topic_};
      const std::set<std::string> existing = ExistingTopics(client.get(), names);
      if (!existing.empty()) rdt::DeleteTopics(client.get(), {existing.begin(), existing.end()}, kTimeoutMs);
    } catch (const std::exception& error) {
      std::cerr << "driver: cleanup failed (ignored): " << error.what() << '\n';
    }
  }

 private:
  struct Slot {
    std::string worker_id;
    fs::path data_dir;
    int segment_mb = 0;  // 0: the default segment size
    std::unique_ptr<WorkerProcess> process;
    int incarnation = 0;
  };

  void StartWorker(Slot& slot) {
    std::vector<std::string> argv = {g_options.mephisto_path,
                                     "worker",
                                     "tablecount",
                                     "--broker",
                                     "kafka://" + bootstrap_,
                                     "--set",
                                     "id=" + app_id_,
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
                                     "topic_partitions=" + std::to_string(kPartitions),
                                     "--record",
                                     recording_.record_dir.string()};
    if (slot.segment_mb > 0) {
      argv.push_back("--record-segment-mb");
      argv.push_back(std::to_string(slot.segment_mb));
    }
    ++slot.incarnation;
    slot.process = Spawn(slot.worker_id + "." + std::to_string(slot.incarnation), argv);
  }

  [[nodiscard]] bool AllProcessing() const {
    return std::all_of(slots_.begin(), slots_.end(),
                       [](const Slot& slot) { return StateOf(slot.process->lines()).processing(); });
  }

  // Reads both workers' output until `done` says so or the deadline passes. A worker that exits on its own is
  // a failure; it is restarted so that the run goes on.
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

  [[nodiscard]] SteadyClock::time_point TriggerDeadline() const {
    return std::min(After(kTriggerTimeoutMs), start_ + std::chrono::milliseconds(kRunBudgetMs));
  }

  // The read_committed output: every event once, with its key's count after it; the changelog's last value
  // per key: the key's number of events.
  void Verify(int64_t total_events, int keys, const std::vector<int>& event_key,
              const std::vector<int64_t>& expected_count, const std::vector<int64_t>& key_events,
              const std::string& padding) {
    const std::vector<Record> output = ReadAll(bootstrap_, kResultsTopic, kPartitions, "read_committed",
                                               app_id_ + ".verify-output", kTimeoutMs);
    const std::vector<Record> changelog = ReadAll(bootstrap_, changelog_topic_, kPartitions, "read_committed",
                                                  app_id_ + ".verify-changelog", kTimeoutMs);
    constexpr int kShown = 10;
    std::vector<int> copies(static_cast<size_t>(total_events), 0);
    int64_t malformed = 0;
    int64_t duplicates = 0;
    int64_t wrong_counts = 0;
    for (const Record& record : output) {
      // "e<id>:<padding> <count>", keyed by the event's key.
      int64_t id = -1;
      int64_t count = -1;
      const size_t space = record.value.rfind(' ');
      if (!record.value.empty() && record.value[0] == 'e' && space != std::string::npos) {
        id = std::strtoll(record.value.c_str() + 1, nullptr, 10);
        count = std::strtoll(record.value.c_str() + space + 1, nullptr, 10);
      }
      if (id < 0 || id >= total_events ||
          record.value != "e" + std::to_string(id) + ":" + padding + " " + std::to_string(count) ||
          record.key != "k" + std::to_string(event_key[id])) {
        if (malformed++ < kShown) {
          ADD_FAILURE() << "unexpected output record at " << record.partition << ":" << record.offset
                        << ": key '" << record.key << "' value '" << record.value.substr(0, 40) << "...'";
        }
        continue;
      }
      if (copies[id]++ > 0 && duplicates++ < kShown) {
        ADD_FAILURE() << "duplicate output for event e" << id << " at " << record.partition << ":"
                      << record.offset;
      }
      if (count != expected_count[id] && wrong_counts++ < kShown) {
        ADD_FAILURE() << "event e" << id << " (key k" << event_key[id] << ") was counted " << count
                      << ", expected " << expected_count[id];
      }
    }
    int64_t missing = 0;
    for (int64_t i = 0; i < total_events; ++i) {
      if (copies[i] == 0 && missing++ < kShown) ADD_FAILURE() << "no output for event e" << i;
    }
    std::map<std::string, std::optional<std::string>> table;
    for (const Record& record : changelog) {
      table[record.key] = record.null_value ? std::nullopt : std::optional<std::string>(record.value);
    }
    int64_t table_mismatches = 0;
    for (int key = 0; key < keys; ++key) {
      const std::string name = "k" + std::to_string(key);
      auto found = table.find(name);
      const std::string actual = found == table.end() ? "absent"
                                 : !found->second     ? "deleted"
                                                      : *found->second;
      const std::string expected = key_events[key] == 0 ? "absent" : std::to_string(key_events[key]);
      if (actual != expected && table_mismatches++ < kShown) {
        ADD_FAILURE() << "table 'counts' key " << name << ": changelog ends with " << actual << ", expected "
                      << expected;
      }
    }
    std::cerr << "driver: output " << output.size() << " committed records (duplicates " << duplicates
              << ", missing " << missing << ", wrong counts " << wrong_counts << ", malformed " << malformed
              << "), changelog " << changelog.size() << " records (" << table_mismatches << " mismatches)\n";
    EXPECT_EQ(static_cast<int64_t>(output.size()), total_events);
    EXPECT_EQ(duplicates, 0);
    EXPECT_EQ(missing, 0);
    EXPECT_EQ(wrong_counts, 0);
    EXPECT_EQ(malformed, 0);
    EXPECT_EQ(table_mismatches, 0);
  }

  std::string bootstrap_;
  std::string app_id_;
  std::string changelog_topic_;
  Recording recording_;
  std::array<Slot, kSlots> slots_;
  int unexpected_exits_ = 0;
  SteadyClock::time_point start_ = SteadyClock::now();
};

// --- the tests ---------------------------------------------------------------------------------------------

class RecordReplayTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* bootstrap = std::getenv("MEPHISTO_KAFKA_BOOTSTRAP");
    if (bootstrap == nullptr || *bootstrap == '\0') {
      FAIL() << "MEPHISTO_KAFKA_BOOTSTRAP is not set. This test needs a running Kafka broker: run it through "
                "ctest (ctest --test-dir build -L kafka), which starts one, or against a running broker with "
                "`tools/kafka/with-broker -- <test binary>`.";
    }
    bootstrap_ = bootstrap;
    if (!fs::exists(g_options.mephisto_path)) {
      FAIL() << "mephisto binary not found: " << g_options.mephisto_path << " (pass --mephisto PATH)";
    }
  }

  // The recording of this process's workload, running it first if no case did yet.
  std::optional<Recording> RecordingOrRun(bool& ran_here) {
    ran_here = false;
    if (!g_recording) {
      ran_here = true;
      workload_ = std::make_unique<Workload>(bootstrap_);
      g_recording = workload_->Run();
    }
    return g_recording;
  }

  std::string bootstrap_;
  std::unique_ptr<Workload> workload_;
};

TEST_F(RecordReplayTest, RecordedKillAndRestartReplayIdentically) {
  bool ran_here = false;
  const std::optional<Recording> recording = RecordingOrRun(ran_here);
  ASSERT_TRUE(recording.has_value()) << "the recorded run did not finish; nothing to replay";
  const std::vector<TraceFileName> files = TraceFiles(recording->record_dir);
  std::map<std::string, int> segments;
  for (const TraceFileName& file : files) ++segments[file.incarnation];
  std::cerr << "driver: " << files.size() << " trace file(s) of " << segments.size() << " incarnation(s):";
  for (const TraceFileName& file : files) std::cerr << ' ' << file.path.filename().string();
  std::cerr << '\n';
  ASSERT_FALSE(files.empty()) << "no *.mtrace files in " << recording->record_dir;
  EXPECT_TRUE(std::any_of(segments.begin(), segments.end(), [](const auto& entry) {
    return entry.second > 1;
  })) << "no incarnation rotated into a second segment (the worker with --record-segment-mb 1 should have)";

  const auto replay_start = SteadyClock::now();
  const ReplayRun replay = RunReplay(recording->record_dir, "replay");
  const int64_t replay_ms = MillisSince(replay_start);
  const std::vector<ReplayedIncarnation> incarnations = ParseIncarnations(replay.lines);
  int64_t events = 0;
  int64_t sends = 0;
  int identical = 0;
  for (const ReplayedIncarnation& incarnation : incarnations) {
    events += incarnation.events;
    sends += incarnation.sends;
    identical += incarnation.identical ? 1 : 0;
  }
  const bool says_identical =
      std::any_of(replay.lines.begin(), replay.lines.end(),
                  [](const std::string& line) { return line.rfind("replay: identical", 0) == 0; });
  std::cout << "record-replay summary: " << files.size() << " trace files, " << incarnations.size()
            << " incarnations replayed (" << identical << " identical), " << events << " events, " << sends
            << " sends, replay " << replay.status << " in " << replay_ms << " ms" << std::endl;

  const std::string output = "mephisto replay " + recording->record_dir.string() + " " + replay.status +
                             "; its output:\n" + replay.output();
  EXPECT_EQ(replay.exit_code, std::optional<int>(0)) << output;
  EXPECT_TRUE(says_identical) << "no line starting 'replay: identical'; " << output;
  EXPECT_GE(incarnations.size(), 3u) << "expected the two first starts and the restart; " << output;
  EXPECT_EQ(identical, static_cast<int>(incarnations.size())) << output;
  EXPECT_GT(events, g_options.events) << output;
  EXPECT_GE(sends, g_options.events) << output;

  if (ran_here && !HasFailure()) workload_->CleanUp();
  if (HasFailure()) {
    std::cerr << "driver: FAILED; the recording and data dirs are kept in " << recording->work_dir.string()
              << '\n';
  }
}

TEST_F(RecordReplayTest, CorruptedFileIsRefusedAndTornTailStillReplays) {
  bool ran_here = false;
  const std::optional<Recording> recording = RecordingOrRun(ran_here);
  ASSERT_TRUE(recording.has_value()) << "the recorded run did not finish; nothing to damage";
  const std::vector<TraceFileName> files = TraceFiles(recording->record_dir);
  ASSERT_FALSE(files.empty()) << "no *.mtrace files in " << recording->record_dir;

  // --- a copy of the whole recording with one byte flipped inside a frame's payload (the largest file's
  // middle frame): its CRC no longer matches.
  const fs::path corrupted_dir = recording->work_dir / "corrupted";
  fs::remove_all(corrupted_dir);
  fs::create_directories(corrupted_dir);
  for (const TraceFileName& file : files) fs::copy_file(file.path, corrupted_dir / file.path.filename());
  const TraceFileName& largest =
      *std::max_element(files.begin(), files.end(), [](const TraceFileName& a, const TraceFileName& b) {
        return fs::file_size(a.path) < fs::file_size(b.path);
      });
  const fs::path corrupted_file = corrupted_dir / largest.path.filename();
  {
    std::string bytes = ReadBytes(corrupted_file);
    const std::vector<FrameSpan> frames = Frames(bytes);
    ASSERT_GE(frames.size(), 2u) << largest.path << " holds fewer than 2 frames";
    const auto middle = std::find_if(frames.begin(), frames.end(),
                                     [&](const FrameSpan& frame) { return frame.end > bytes.size() / 2; });
    const FrameSpan& frame = middle == frames.end() ? frames.back() : *middle;
    ASSERT_LT(frame.payload, frame.end) << "an empty frame";
    const size_t at = frame.payload + (frame.end - frame.payload) / 2;
    bytes[at] = static_cast<char>(bytes[at] ^ 0x5a);
    WriteBytes(corrupted_file, bytes);
    std::cerr << "driver: flipped byte " << at << " of " << corrupted_file.string() << " (" << bytes.size()
              << " bytes)\n";
  }
  const ReplayRun corrupted = RunReplay(corrupted_dir, "replay-corrupted");
  const std::string corrupted_output = "mephisto replay " + corrupted_dir.string() + " " + corrupted.status +
                                       "; its output:\n" + corrupted.output();
  EXPECT_EQ(corrupted.exit_code, std::optional<int>(2)) << corrupted_output;
  EXPECT_TRUE(Contains(corrupted.output(), corrupted_file.filename().string()))
      << "the message does not name the file " << corrupted_file.filename() << "; " << corrupted_output;
  EXPECT_TRUE(Contains(Lower(corrupted.output()), "corrupted"))
      << "the message does not say 'corrupted'; " << corrupted_output;

  // --- a copy of one incarnation (all its segments) whose last segment is cut inside a frame in its middle,
  // as a crash while writing would leave it. The incarnation with the most frames in its last segment.
  std::map<std::string, std::vector<const TraceFileName*>> by_incarnation;
  for (const TraceFileName& file : files) by_incarnation[file.incarnation].push_back(&file);
  const TraceFileName* last_segment = nullptr;
  size_t most_frames = 0;
  for (const auto& [name, segments] : by_incarnation) {
    const TraceFileName* last = segments.back();
    const size_t count = Frames(ReadBytes(last->path)).size();
    if (count > most_frames) {
      most_frames = count;
      last_segment = last;
    }
  }
  ASSERT_NE(last_segment, nullptr);
  ASSERT_GE(most_frames, 3u) << "no incarnation's last segment holds 3 frames to cut one of";
  const fs::path truncated_dir = recording->work_dir / "truncated";
  fs::remove_all(truncated_dir);
  fs::create_directories(truncated_dir);
  for (const TraceFileName* file : by_incarnation[last_segment->incarnation]) {
    fs::copy_file(file->path, truncated_dir / file->path.filename());
  }
  const fs::path truncated_file = truncated_dir / last_segment->path.filename();
  {
    const std::string bytes = ReadBytes(truncated_file);
    const std::vector<FrameSpan> frames = Frames(bytes);
    const FrameSpan& frame = frames[std::max<size_t>(1, frames.size() / 2)];  // never the header frame
    const size_t cut = frame.start + (frame.end - frame.start) / 2;
    ASSERT_GT(cut, frame.start);
    ASSERT_LT(cut, frame.end);
    fs::resize_file(truncated_file, cut);
    std::cerr << "driver: cut " << truncated_file.string() << " from " << bytes.size() << " to " << cut
              << " bytes (inside its frame " << std::max<size_t>(1, frames.size() / 2) << " of "
              << frames.size() << ")\n";
  }
  const ReplayRun truncated = RunReplay(truncated_dir, "replay-truncated");
  const std::string truncated_output = "mephisto replay " + truncated_dir.string() + " " + truncated.status +
                                       "; its output:\n" + truncated.output();
  EXPECT_TRUE(truncated.exit_code == 0 || truncated.exit_code == 1)
      << "expected exit 0 or 1 (a torn tail is not bad input); " << truncated_output;
  const std::string lower = Lower(truncated.output());
  EXPECT_TRUE(Contains(lower, "torn") || Contains(lower, "truncated"))
      << "the output mentions neither 'torn' nor 'truncated'; " << truncated_output;
  std::cout << "record-replay damage: corrupted copy " << corrupted.status << ", torn copy "
            << truncated.status << std::endl;

  if (ran_here && !HasFailure()) workload_->CleanUp();
  if (!HasFailure()) {
    std::error_code ignored;
    fs::remove_all(corrupted_dir, ignored);
    fs::remove_all(truncated_dir, ignored);
  }
}

[[noreturn]] void Usage(const std::string& problem) {
  std::cerr << "kafka_record_replay_test: " << problem << "\n"
            << "usage: kafka_record_replay_test [--mephisto PATH] [--seed N] [--events N] [--keys N] "
               "[--value-bytes N]\n";
  std::exit(2);
}

int64_t ParseInt(const std::string& name, const std::string& text, int64_t min) {
  return mephisto::kafka_test::ParseInt(name, text, min, Usage);
}

// Deletes the recording once every case passed (the cases keep it for inspection otherwise).
class RemoveRecordingOnSuccess : public ::testing::EmptyTestEventListener {
  void OnTestProgramEnd(const ::testing::UnitTest& unit_test) override {
    if (g_recording && unit_test.Passed()) {
      std::error_code ignored;
      fs::remove_all(g_recording->work_dir, ignored);
    }
  }
};

}  // namespace

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);  // removes the --gtest_* flags
  g_options.mephisto_path = SiblingProgram("mephisto");
  ForEachOption(argc, argv, Usage, [&](const std::string& name, const std::string& value) {
    if (name == "--mephisto") {
      g_options.mephisto_path = value;
    } else if (name == "--seed") {
      g_options.seed = static_cast<uint64_t>(std::strtoull(value.c_str(), nullptr, 10));
    } else if (name == "--events") {
      g_options.events = ParseInt(name, value, 3);
    } else if (name == "--keys") {
      g_options.keys = static_cast<int>(ParseInt(name, value, 1));
    } else if (name == "--value-bytes") {
      g_options.value_bytes = static_cast<int>(ParseInt(name, value, 0));
    } else {
      Usage("unknown argument '" + name + "'");
    }
  });
  ::testing::UnitTest::GetInstance()->listeners().Append(new RemoveRecordingOnSuccess);
  return RUN_ALL_TESTS();
}
