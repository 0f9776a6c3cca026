// Benchmark (not a test): what recording a worker's decisions (issue #8: `mephisto worker --record DIR`,
// runtime/trace/trace_writer.h) costs a real-Kafka pipeline, and how fast a recording replays in the
// simulator. Goals: with key/value hashes only (--record-hashes) the worker keeps at least 0.9x the events/s
// it has without recording; with payloads at least 0.7x.
//
// It preloads --records records (keys "k0".."k999", --value-bytes values) into one input topic of
// --partitions partitions, then for each of --rounds rounds runs three configurations one after the other
// (the order rotates between rounds so that drift does not favour one), each in a fresh app id (consumer
// group) with a fresh output topic, reading the whole input:
//
//   off       no recorder (Env::recorder null)
//   hashes    a TraceWriter with payloads off (what --record-hashes does)
//   payloads  a TraceWriter with payloads on (what --record does)
//
// The app is a stateless at-least-once pipeline, as in bench_app_pipeline: one agent,
// `for (auto& event : stream) output.send(event.key(), event.value())`, run in process on an EventLoop and
// the librdkafka binding, with the TraceWriter set up as `mephisto worker --record` sets it up (default
// segment and flush sizes, files in a fresh directory per run).
//
// Figures per run:
//   total       events/s from App::run to the last delivery report (every output visible; startup included).
//               The ratios hashes/off and payloads/off are of the medians of this figure.
//   to stop     events/s from App::run until run() returned after stop(): the final commit and the trace's
//               last flush included.
//   cpu us      process CPU per event (loop thread and librdkafka threads), App::run to the last delivery.
//   trace       bytes and events the recorder wrote (B/event: bytes per input event).
//
// Replay: the last round's payloads recording is read back (runtime/trace's read_trace_dir) and each of its
// incarnations replayed in the simulator (sim/replay/replayer.h, the library behind `mephisto replay`) with
// the same app definition; printed: trace events replayed per second (the recorded events count of the
// incarnations, over the wall time of replay_incarnation, reading excluded; also with reading), input records
// per second, and whether every incarnation replayed identically. The replay runs in a child process, cut off
// after --replay-timeout-s.
//
//   build/bin/bench_record_overhead [--bootstrap HOST:PORT] [--records N] [--rounds R] [--trace-dir DIR] ...
//   tools/kafka/with-broker -- build/bin/bench_record_overhead
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "bench_common.h"
#include "runtime/app/app.h"
#include "runtime/kafka/kafka_broker_client.h"
#include "runtime/loop/event_loop.h"
#include "runtime/seam/env.h"
#include "runtime/seam/random.h"
#include "runtime/trace/trace_reader.h"
#include "runtime/trace/trace_writer.h"
#include "sim/replay/replayer.h"

namespace {

using namespace mephisto;
using namespace mephisto::bench;
namespace fs = std::filesystem;

struct Settings {
  std::string bootstrap;
  int64_t records = 200'000;
  int32_t value_bytes = 100;
  int32_t partitions = 8;
  int32_t rounds = 1;
  int64_t timeout_ms = 180'000;  // per run
  std::string trace_dir;         // default: a fresh directory under the temp directory
  bool keep_topics = false;
  bool keep_traces = false;
  bool skip_replay = false;
  int32_t replay_timeout_s = 600;
};

constexpr int kKeyCount = 1000;

enum class Mode { kOff, kHashes, kPayloads };
constexpr Mode kModes[] = {Mode::kOff, Mode::kHashes, Mode::kPayloads};

const char* mode_name(Mode mode) {
  switch (mode) {
    case Mode::kOff:
      return "off";
    case Mode::kHashes:
      return "hashes";
    case Mode::kPayloads:
      return "payloads";
  }
  return "?";
}

double cpu_s() {
  timespec now{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &now);
  return static_cast<double>(now.tv_sec) + static_cast<double>(now.tv_nsec) * 1e-9;
}

struct Measurement {
  int64_t events = 0;
  double total_s = 0;    // App::run to the last delivery report
  double stopped_s = 0;  // App::run to run() returning after stop()
  double cpu_s = 0;
  int64_t trace_bytes = 0;
  uint64_t trace_events = 0;
  [[nodiscard]] double total_events_per_s() const { return static_cast<double>(events) / total_s; }
  [[nodiscard]] double stopped_events_per_s() const { return static_cast<double>(events) / stopped_s; }
  [[nodiscard]] double cpu_us_per_event() const { return cpu_s * 1e6 / static_cast<double>(events); }
};

// The pipeline app: its settings (a fresh id per run comes from `id`) and its one agent. The replay builds it
// from this definition too, with the recorded settings applied on top of default_settings.
AppDefinition pipeline_app(const Settings& s, const std::string& input, const std::string& output) {
  AppDefinition definition;
  definition.name = "bench-record-pipeline";
  definition.description = "input -> the same key and value -> output, at least once";
  definition.default_settings = [&s] {
    AppSettings settings;
    settings.broker = "kafka://" + s.bootstrap;
    settings.worker_id = "bench";
    settings.topic_partitions = s.partitions;
    settings.processing_guarantee = ProcessingGuarantee::kAtLeastOnce;
    return settings;
  };
  definition.define = [input, output](App& app) {
    auto source = app.topic<std::string, std::string>(input);
    auto sink = app.topic<std::string, std::string>(output);
    app.agent("pipe", source, [sink](Stream<std::string, std::string>& stream) {
      for (auto& event : stream) {
        Status sent = sink.send(event.key(), event.value());
        (void)sent;  // a failed delivery stops the worker: run() returns the error
      }
    });
  };
  return definition;
}

Measurement run_one(EventLoop& loop, BrokerClient& client, Random& random, const Settings& s, Mode mode,
                    const AppDefinition& definition, const std::string& id, const fs::path& trace_dir) {
  RealClock clock;
  AppSettings settings = definition.default_settings();
  settings.id = id;
  std::unique_ptr<trace::TraceWriter> writer;
  if (mode != Mode::kOff) {
    trace::TraceWriterOptions options;
    options.dir = trace_dir.string();
    options.writer_name = "w-bench-" + std::string(mode_name(mode));
    options.app_name = definition.name;
    options.source = "kafka";
    options.payloads = mode == Mode::kPayloads;
    // What `mephisto worker` records (runtime/cli/worker.cpp): the settings a replay applies, not the ones
    // binding the worker to this machine and broker.
    options.settings = {{"id", id},
                        {"worker_id", settings.worker_id},
                        {"processing_guarantee", "at_least_once"},
                        {"topic_partitions", std::to_string(s.partitions)}};
    options.on_error = [](const std::string& message) {
      std::fprintf(stderr, "bench_record_overhead: recorder: %s\n", message.c_str());
    };
    auto opened = trace::TraceWriter::open(std::move(options), &clock);
    if (!opened.ok()) throw BenchFailure("TraceWriter::open: " + opened.error().to_string());
    writer = std::move(opened).value();
  }
  App app(settings);
  definition.define(app);
  Env env{&clock, &loop, &random, &client};
  env.recorder = writer.get();
  std::optional<Status> result;
  const double begin = wall_s();
  const double cpu_begin = cpu_s();
  loop.spawn("worker", [&] { result = app.run(env); });
  const bool done = loop.run([&] { return result.has_value() || app.stats().records_delivered >= s.records; },
                             clock.now_ms() + s.timeout_ms);
  Measurement m;
  m.events = app.stats().records_delivered;
  m.total_s = wall_s() - begin;
  m.cpu_s = cpu_s() - cpu_begin;
  if (result.has_value()) {
    throw BenchFailure(std::string(mode_name(mode)) + ": the worker stopped: " +
                       (result->ok() ? std::string("ok") : result->error().to_string()));
  }
  if (!done) {
    throw BenchFailure(std::string(mode_name(mode)) + ": " + std::to_string(m.events) + " of " +
                       std::to_string(s.records) + " delivered after " + std::to_string(s.timeout_ms) +
                       " ms");
  }
  loop.spawn("stop", [&] { app.stop(); });
  if (!loop.run([&] { return result.has_value(); }, clock.now_ms() + 60'000)) {
    throw BenchFailure(std::string(mode_name(mode)) + ": the worker did not stop within 60 s");
  }
  check(*result, std::string(mode_name(mode)) + ": run()");
  if (writer) writer->flush();
  m.stopped_s = wall_s() - begin;
  const AppStats& stats = app.stats();
  if (stats.send_failures > 0 || stats.agent_errors > 0) {
    throw BenchFailure(std::string(mode_name(mode)) + ": " + std::to_string(stats.send_failures) +
                       " send failures, " + std::to_string(stats.agent_errors) + " agent errors");
  }
  if (writer) {
    if (writer->error()) throw BenchFailure(std::string(mode_name(mode)) + ": recorder: " + *writer->error());
    m.trace_bytes = writer->bytes_written();
    m.trace_events = writer->events_written();
  }
  return m;
}

// --- replay ------------------------------------------------------------------------------------------------

struct ReplayFigures {
  size_t incarnations = 0;
  size_t identical = 0;
  uint64_t events = 0;
  uint64_t input_records = 0;  // records in the Polled events
  uint64_t sends_matched = 0;
  uint64_t sends_recorded = 0;
  double read_s = 0;
  double replay_s = 0;
  std::vector<std::string> problems;
};

ReplayFigures replay_dir(const fs::path& dir, const AppDefinition& definition) {
  ReplayFigures f;
  const double read_begin = wall_s();
  auto set = trace::read_trace_dir(dir.string());
  f.read_s = wall_s() - read_begin;
  if (!set.ok()) throw BenchFailure("reading the trace: " + set.error().to_string());
  for (const std::string& skipped : set.value().skipped) f.problems.push_back("skipped: " + skipped);
  for (const trace::Incarnation& incarnation : set.value().incarnations) {
    for (const trace::Event& event : incarnation.events) {
      if (event.has_polled()) f.input_records += static_cast<uint64_t>(event.polled().records_size());
    }
    const double begin = wall_s();
    auto report = replay::replay_incarnation(incarnation, definition, {});
    f.replay_s += wall_s() - begin;
    ++f.incarnations;
    if (!report.ok()) {
      f.problems.push_back(incarnation.header.writer_name() + "/" +
                           std::to_string(incarnation.header.incarnation()) + ": " +
                           report.error().to_string());
      f.events += incarnation.events.size();
      continue;
    }
    const replay::IncarnationReport& r = report.value();
    f.events += r.events;
    f.sends_matched += r.sends_matched;
    f.sends_recorded += r.sends_recorded;
    if (r.identical()) {
      ++f.identical;
    } else {
      std::string what = r.writer + "/" + std::to_string(r.incarnation) + ": ";
      if (r.fatal) what += *r.fatal;
      if (r.first_divergence) {
        what += " first divergence at event " + std::to_string(r.first_divergence->event_index) + " (" +
                r.first_divergence->what + "): expected " + r.first_divergence->expected + ", actual " +
                r.first_divergence->actual;
      }
      f.problems.push_back(what);
    }
  }
  return f;
}

// Replays in a child process (fork), so that a replay that does not finish (the simulator's stuck detection
// is 600 virtual seconds after the recording's end, which can take long) is cut off after timeout_s instead
// of hanging the benchmark. The child prints the replay figures; the exit code is 0 when every incarnation
// replayed identically.
int replay_in_child(const fs::path& dir, const AppDefinition& definition, int32_t timeout_s) {
  std::fflush(stdout);
  std::fflush(stderr);
  const pid_t child = fork();
  if (child < 0) throw BenchFailure("fork for the replay failed");
  if (child == 0) {
    alarm(static_cast<unsigned>(timeout_s));  // SIGALRM ends a replay that does not finish
    int code = 1;
    try {
      const ReplayFigures f = replay_dir(dir, definition);
      std::printf(
          "  replay       %zu incarnation(s), %zu identical; %llu trace events, %llu input records, sends "
          "matched %llu/%llu\n",
          f.incarnations, f.identical, static_cast<unsigned long long>(f.events),
          static_cast<unsigned long long>(f.input_records), static_cast<unsigned long long>(f.sends_matched),
          static_cast<unsigned long long>(f.sends_recorded));
      std::printf(
          "  replay speed %.0f trace events/s (%.2f s replaying; %.0f events/s with the %.2f s of "
          "reading), %.0f input records/s\n",
          static_cast<double>(f.events) / f.replay_s, f.replay_s,
          static_cast<double>(f.events) / (f.replay_s + f.read_s), f.read_s,
          static_cast<double>(f.input_records) / f.replay_s);
      for (const std::string& problem : f.problems) std::printf("  replay problem: %s\n", problem.c_str());
      code = f.identical == f.incarnations && f.incarnations > 0 ? 0 : 1;
    } catch (const std::exception& e) {
      std::printf("  replay       failed: %s\n", e.what());
    }
    std::fflush(stdout);
    _exit(code);
  }
  const double begin = wall_s();
  int status = 0;
  while (waitpid(child, &status, 0) < 0) {
    if (errno != EINTR) throw BenchFailure("waitpid for the replay failed");
  }
  if (WIFSIGNALED(status)) {
    std::printf("  replay       did not finish: %s after %.0f s (--replay-timeout-s %d)\n",
                WTERMSIG(status) == SIGALRM ? "cut off" : strsignal(WTERMSIG(status)), wall_s() - begin,
                timeout_s);
    return 1;
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

// --- report ------------------------------------------------------------------------------------------------

double median(std::vector<double> values) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const size_t n = values.size();
  return n % 2 == 1 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

constexpr const char* kRowFormat = "%-10s %-9s %10s %10s %8s %12s %10s %8s\n";

void print_row(const std::string& round, Mode mode, const Measurement& m) {
  char total[32], stopped[32], cpu[32], bytes[32], events[32], per_event[32];
  std::snprintf(total, sizeof total, "%.0f", m.total_events_per_s());
  std::snprintf(stopped, sizeof stopped, "%.0f", m.stopped_events_per_s());
  std::snprintf(cpu, sizeof cpu, "%.2f", m.cpu_us_per_event());
  std::snprintf(bytes, sizeof bytes, "%lld", static_cast<long long>(m.trace_bytes));
  std::snprintf(events, sizeof events, "%llu", static_cast<unsigned long long>(m.trace_events));
  std::snprintf(per_event, sizeof per_event, "%.1f",
                m.events > 0 ? static_cast<double>(m.trace_bytes) / static_cast<double>(m.events) : 0.0);
  std::printf(kRowFormat, round.c_str(), mode_name(mode), total, stopped, cpu, bytes, events, per_event);
  std::fflush(stdout);
}

int run(const Settings& s) {
  const RealClock clock;
  const std::string prefix =
      "bench-record-overhead-" + std::to_string(getpid()) + "-" + std::to_string(clock.now_ms());
  const std::string input = prefix + "-input";
  const std::string output = prefix + "-output";  // shared by the runs: each only counts its own deliveries
  const fs::path trace_root =
      s.trace_dir.empty() ? fs::temp_directory_path() / prefix : fs::path(s.trace_dir) / prefix;
  const AppDefinition definition = pipeline_app(s, input, output);

  std::printf("bench_record_overhead: broker %s\n", s.bootstrap.c_str());
  std::printf("  input     %lld records, %d-byte values, keys \"k0\"..\"k%d\", %d partitions (RF 1)\n",
              static_cast<long long>(s.records), s.value_bytes, kKeyCount - 1, s.partitions);
  std::printf(
      "  app       one agent: stream -> Topic::send of the same key and value; at_least_once, default\n"
      "            commit settings; a fresh app id per run\n");
  std::printf(
      "  modes     off (no recorder), hashes (TraceWriter, payloads off = --record-hashes),\n"
      "            payloads (TraceWriter, payloads on = --record); traces in %s\n",
      trace_root.string().c_str());
  std::printf("  rounds    %d, the order of the modes rotating; ratios of the medians of `total`\n",
              s.rounds);
  std::fflush(stdout);

  int exit_code = 0;
  EventLoop loop;
  KafkaBrokerClient client(loop, KafkaOptions{s.bootstrap, {}});
  Random random(static_cast<uint64_t>(clock.now_ms()));
  try {
    check(client.check_config(), "KafkaBrokerClient");
    create_topics(loop, client, {input, output}, s.partitions);
    const double preload_begin = wall_s();
    produce_records(loop, client, "bench-record-overhead-preload", input, s.records, kKeyCount,
                    s.value_bytes);
    std::printf("  preload   %.1f s\n\n", wall_s() - preload_begin);
    std::printf(kRowFormat, "round", "mode", "total ev/s", "stop ev/s", "cpu us", "trace bytes", "trace ev",
                "B/event");
    std::fflush(stdout);

    std::map<Mode, std::vector<double>> totals;
    std::map<Mode, std::vector<double>> stops;
    std::map<Mode, std::vector<double>> cpus;
    std::map<Mode, std::vector<double>> bytes_per_event;
    fs::path last_payloads_dir;
    for (int round = 1; round <= s.rounds; ++round) {
      for (int turn = 0; turn < 3; ++turn) {
        const Mode mode = kModes[(turn + round - 1) % 3];
        const std::string id = prefix + "-r" + std::to_string(round) + "-" + mode_name(mode);
        const fs::path dir = trace_root / ("r" + std::to_string(round) + "-" + mode_name(mode));
        const Measurement m = run_one(loop, client, random, s, mode, definition, id, dir);
        print_row(std::to_string(round), mode, m);
        totals[mode].push_back(m.total_events_per_s());
        stops[mode].push_back(m.stopped_events_per_s());
        cpus[mode].push_back(m.cpu_us_per_event());
        bytes_per_event[mode].push_back(static_cast<double>(m.trace_bytes) / static_cast<double>(m.events));
        if (mode == Mode::kPayloads) last_payloads_dir = dir;
        if (mode == Mode::kHashes && !s.keep_traces) {
          std::error_code ignored;
          fs::remove_all(dir, ignored);
        }
      }
    }

    const double off = median(totals[Mode::kOff]);
    const double hashes = median(totals[Mode::kHashes]);
    const double payloads = median(totals[Mode::kPayloads]);
    const double hashes_ratio = hashes / off;
    const double payloads_ratio = payloads / off;
    std::printf("\n=== bench_record_overhead figures (%lld events of %d bytes, %d round(s), medians) ===\n",
                static_cast<long long>(s.records), s.value_bytes, s.rounds);
    for (const Mode mode : kModes) {
      std::printf("  %-9s total %9.0f ev/s   to stop %9.0f ev/s   cpu %6.2f us/event   trace %7.1f B/event\n",
                  mode_name(mode), median(totals[mode]), median(stops[mode]), median(cpus[mode]),
                  median(bytes_per_event[mode]));
    }
    std::printf("  hashes/off   %.3f (goal >= 0.9): %s\n", hashes_ratio,
                hashes_ratio >= 0.9 ? "met" : "NOT met");
    std::printf("  payloads/off %.3f (goal >= 0.7): %s\n", payloads_ratio,
                payloads_ratio >= 0.7 ? "met" : "NOT met");
    std::fflush(stdout);
    if (!s.skip_replay && replay_in_child(last_payloads_dir, definition, s.replay_timeout_s) != 0)
      exit_code = 1;
    std::fflush(stdout);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_record_overhead: error: %s\n", e.what());
    exit_code = 1;
  }
  if (s.keep_traces) {
    std::printf("traces kept: %s\n", trace_root.string().c_str());
  } else {
    std::error_code ignored;
    fs::remove_all(trace_root, ignored);
  }
  clean_up_topics(loop, client, prefix, s.keep_topics);
  return exit_code;
}

}  // namespace

int main(int argc, char** argv) {
  Settings s;
  CLI::App app{
      "Events/s of a real-Kafka pipeline with recording off, hashes-only and with payloads; replay speed"};
  add_bootstrap_option(app, s.bootstrap);
  app.add_option("--records", s.records, "records preloaded and moved per run")->check(CLI::PositiveNumber);
  app.add_option("--value-bytes", s.value_bytes, "value size")->check(CLI::PositiveNumber);
  app.add_option("--partitions", s.partitions, "partitions of the topics")->check(CLI::PositiveNumber);
  app.add_option("--rounds", s.rounds, "rounds of the three modes (their order rotates)")
      ->check(CLI::PositiveNumber);
  app.add_option("--timeout-ms", s.timeout_ms, "fail a run that has not delivered everything by then")
      ->check(CLI::PositiveNumber);
  app.add_option("--trace-dir", s.trace_dir, "where the recordings go (default: the temp directory)");
  app.add_flag("--keep-topics", s.keep_topics, "do not delete the benchmark's topics");
  app.add_flag("--keep-traces", s.keep_traces, "do not delete the recordings");
  app.add_flag("--skip-replay", s.skip_replay, "do not replay the payloads recording");
  app.add_option("--replay-timeout-s", s.replay_timeout_s, "cut off a replay that has not finished by then")
      ->check(CLI::PositiveNumber);
  CLI11_PARSE(app, argc, argv);
  return finish_main("bench_record_overhead", s.bootstrap, {}, [&] { return run(s); });
}
