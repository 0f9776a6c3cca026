// Benchmark (not a test): a table pipeline — consume -> table update -> produce — run by the App runtime
// against a real broker, at_least_once vs exactly_once. Goal: exactly_once moves at least 0.7x the events/s
// of at_least_once (total, medians, below).
//
// It preloads --records events (keys "k0".."k{--keys - 1}", --value-bytes values) into one input topic of
// --partitions partitions, then runs --rounds rounds; each round runs both guarantees one after the other
// (the order alternating between rounds so that drift does not favour one side), each in a fresh app id
// (consumer group, changelog topic), a fresh output topic and a fresh rocksdb:// data dir. The App has one
// agent:
//
//   for (auto& event : stream) {
//     const int64_t count = counts.add(event.key(), 1);            // Table<std::string, int64_t>, rocksdb://
//     output.send(event.key(), event.value() + ":" + std::to_string(count));
//   }
//
// Commit settings are the same for both except the guarantee: broker_commit_every 10,000 and
// broker_commit_interval_ms left at Faust's default 2,800 ms, which under exactly_once becomes the EOS
// default 100 ms (effective_commit_interval_ms; --commit-interval-ms sets one interval for both instead).
//
// Figures per run:
//   total       events/s from App::run to the end: at_least_once, the last input acked (every output and
//               changelog record delivered: AppStats::events_acked); exactly_once, the last transaction
//               committed (its outputs visible to read_committed readers). The goal is checked on it.
//   running     the same end, from the first record received (startup excluded).
//   acked       events/s from App::run to the last input acked (both guarantees; exactly_once's outputs are
//               then delivered but not yet committed).
//   committed   events/s from App::run to the last commit (offsets commit, or transaction) after which no
//               commit follows (at_least_once: up to one commit interval after the last ack).
//   cpu us      process CPU per event (loop thread and librdkafka / RocksDB threads), App::run to the end.
//   txns        exactly_once: transactions committed; at_least_once: offset commits.
//
//   build/bin/bench_table_pipeline [--bootstrap HOST:PORT] [--records N] [--rounds R] [--only alo|eos] ...
//   tools/kafka/with-broker -- build/bin/bench_table_pipeline
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "runtime/app/app.h"
#include "runtime/kafka/kafka_broker_client.h"
#include "runtime/loop/event_loop.h"
#include "runtime/seam/env.h"
#include "runtime/seam/random.h"
#include "table_bench_common.h"

namespace {

using namespace mephisto;
using namespace mephisto::bench;

struct Settings {
  std::string bootstrap;
  int64_t records = 200'000;
  int64_t keys = 10'000;
  int32_t value_bytes = 100;
  int32_t partitions = 8;
  int32_t rounds = 3;
  int64_t commit_every = 10'000;
  int64_t commit_interval_ms = 2'800;  // Faust's default: 100 ms under exactly_once
  int64_t timeout_ms = 300'000;        // per run
  std::string only;                    // empty: both guarantees
  std::string data_root;               // empty: a temp dir
  bool keep_topics = false;
  bool trace = false;  // print a timeline of the counters (stderr), to see where a run's time goes
  // Further librdkafka properties (AppSettings::consumer_properties / producer_properties).
  std::map<std::string, std::string> consumer_properties;
  std::map<std::string, std::string> producer_properties;
};

struct Measurement {
  bool eos = false;
  int64_t events = 0;
  double startup_s = 0;    // App::run to the first record received
  double acked_s = 0;      // App::run to the last input acked
  double committed_s = 0;  // App::run to the last commit
  double cpu_s = 0;        // to the end
  int64_t commits = 0;
  int64_t pauses = 0;
  [[nodiscard]] double end_s() const { return eos ? committed_s : acked_s; }
  [[nodiscard]] double total() const { return static_cast<double>(events) / end_s(); }
  [[nodiscard]] double running() const { return static_cast<double>(events) / (end_s() - startup_s); }
  [[nodiscard]] double acked() const { return static_cast<double>(events) / acked_s; }
  [[nodiscard]] double committed() const { return static_cast<double>(events) / committed_s; }
  [[nodiscard]] double cpu_us() const { return cpu_s * 1e6 / static_cast<double>(events); }
};

AppSettings app_settings(const Settings& s, const std::string& id, bool eos, const std::string& data_dir) {
  AppSettings settings;
  settings.id = id;
  settings.broker = "kafka://" + s.bootstrap;
  settings.worker_id = "bench";
  settings.topic_partitions = s.partitions;
  settings.processing_guarantee = eos ? ProcessingGuarantee::kExactlyOnce : ProcessingGuarantee::kAtLeastOnce;
  settings.broker_commit_every = s.commit_every;
  settings.broker_commit_interval_ms = s.commit_interval_ms;
  settings.store = "rocksdb://";
  settings.data_dir = data_dir;
  settings.consumer_properties = s.consumer_properties;
  settings.producer_properties = s.producer_properties;
  return settings;
}

Measurement run_app(EventLoop& loop, BrokerClient& client, Random& random, const Settings& s, bool eos,
                    const std::string& input, const std::string& output, const std::string& id,
                    const std::string& data_dir) {
  RealClock clock;
  const AppSettings settings = app_settings(s, id, eos, data_dir);
  check(validate(settings), "settings");
  const int64_t interval_ms = effective_commit_interval_ms(settings);
  App app(settings);
  log_to_stderr(app, "");
  auto source = app.topic<std::string, std::string>(input);
  auto sink = app.topic<std::string, std::string>(output);
  auto counts = app.table<std::string, int64_t>("counts", source);
  app.agent("count", source, [sink, counts](Stream<std::string, std::string>& stream) {
    for (auto& event : stream) {
      const int64_t count = counts.add(event.key(), 1);
      Status sent = sink.send(event.key(), event.value() + ":" + std::to_string(count));
      (void)sent;  // a failed delivery stops the worker: run() returns the error
    }
  });
  std::optional<Status> result;
  const Env env{&clock, &loop, &random, &client};
  Measurement m;
  m.eos = eos;
  const double begin = wall_s();
  const double cpu_begin = process_cpu_s();
  double first_record = -1;
  double acked_at = -1;
  double last_commit_at = -1;
  int64_t commits_seen = 0;
  double last_trace = 0;
  // After the last ack, the run ends once no commit has come for this long (the last commit then covered
  // everything: a commit after the last ack takes every acked offset).
  const double quiet_s = static_cast<double>(interval_ms + 1500) / 1000;
  loop.spawn("app", [&] { result = app.run(env); });
  const bool done = loop.run(
      [&] {
        const AppStats& stats = app.stats();
        const double now = wall_s();
        if (first_record < 0 && stats.records_received > 0) first_record = now;
        if (s.trace && (now - last_trace >= 0.01 || stats.commits != commits_seen)) {
          last_trace = now;
          std::fprintf(
              stderr,
              "trace %8.3f received %7lld acked %7lld sent %7lld delivered %7lld commits %4lld pauses %lld\n",
              now - begin, static_cast<long long>(stats.records_received),
              static_cast<long long>(stats.events_acked), static_cast<long long>(stats.records_sent),
              static_cast<long long>(stats.records_delivered), static_cast<long long>(stats.commits),
              static_cast<long long>(stats.flow_control_pauses));
        }
        if (stats.commits != commits_seen) {
          commits_seen = stats.commits;
          last_commit_at = now;
        }
        if (acked_at < 0 && stats.events_acked >= s.records) acked_at = now;
        if (result.has_value()) return true;
        return acked_at >= 0 && last_commit_at >= acked_at - 1e-9 &&
               now - std::max(acked_at, last_commit_at) > quiet_s;
      },
      clock.now_ms() + s.timeout_ms);
  if (!done) {
    const std::string message =
        std::string(eos ? "eos" : "alo") + ": " + std::to_string(app.stats().events_acked) + " of " +
        std::to_string(s.records) + " acked after " + std::to_string(s.timeout_ms) + " ms";
    stop_before_destroy(loop, app, result);
    throw BenchFailure(message);
  }
  if (result.has_value()) {
    throw BenchFailure(std::string(eos ? "eos" : "alo") + ": the worker stopped: " +
                       (result->ok() ? std::string("ok") : result->error().to_string()));
  }
  m.events = s.records;
  m.startup_s = first_record - begin;
  m.acked_s = acked_at - begin;
  m.committed_s = last_commit_at - begin;
  m.cpu_s = process_cpu_s() - cpu_begin;  // includes the quiet wait (idle: little CPU)
  m.commits = eos ? app.stats().transactions_committed : app.stats().commits;
  m.pauses = app.stats().flow_control_pauses;
  loop.spawn("app-stop", [&] { app.stop(); });
  if (!loop.run([&] { return result.has_value(); }, clock.now_ms() + 60'000)) {
    throw BenchFailure("the worker did not stop within 60 s");
  }
  check(*result, "run()");
  const AppStats& stats = app.stats();
  if (stats.send_failures > 0 || stats.agent_errors > 0 || stats.transactions_aborted > 0) {
    throw BenchFailure(std::to_string(stats.send_failures) + " send failures, " +
                       std::to_string(stats.agent_errors) + " agent errors, " +
                       std::to_string(stats.transactions_aborted) + " transactions aborted");
  }
  if (stats.events_acked != s.records) {
    throw BenchFailure(std::to_string(stats.events_acked) + " events acked, expected " +
                       std::to_string(s.records));
  }
  return m;
}

constexpr const char* kRowFormat = "%-14s %-4s %9s %9s %9s %9s %8s %6s %8s %7s\n";

void print_header() {
  std::printf("\n");
  std::printf(kRowFormat, "round", "", "total", "running", "acked", "committed", "cpu us", "txns", "startup",
              "pauses");
  std::printf(kRowFormat, "", "", "ev/s", "ev/s", "ev/s", "ev/s", "/event", "", "s", "");
}

void print_row(const std::string& label, const char* side, const Measurement& m) {
  char cells[8][32];
  std::snprintf(cells[0], 32, "%.0f", m.total());
  std::snprintf(cells[1], 32, "%.0f", m.running());
  std::snprintf(cells[2], 32, "%.0f", m.acked());
  std::snprintf(cells[3], 32, "%.0f", m.committed());
  std::snprintf(cells[4], 32, "%.2f", m.cpu_us());
  std::snprintf(cells[5], 32, "%lld", static_cast<long long>(m.commits));
  std::snprintf(cells[6], 32, "%.2f", m.startup_s);
  std::snprintf(cells[7], 32, "%lld", static_cast<long long>(m.pauses));
  std::printf(kRowFormat, label.c_str(), side, cells[0], cells[1], cells[2], cells[3], cells[4], cells[5],
              cells[6], cells[7]);
  std::fflush(stdout);
}

struct Medians {
  double total = 0, running = 0, acked = 0, committed = 0, cpu_us = 0;
};

Medians medians(const std::vector<Measurement>& runs) {
  auto of = [&](double (Measurement::*field)() const) {
    std::vector<double> values;
    for (const auto& m : runs) values.push_back((m.*field)());
    return median(values);
  };
  return {of(&Measurement::total), of(&Measurement::running), of(&Measurement::acked),
          of(&Measurement::committed), of(&Measurement::cpu_us)};
}

int run(const Settings& s) {
  const bool do_alo = s.only.empty() || s.only == "alo";
  const bool do_eos = s.only.empty() || s.only == "eos";
  const RealClock clock;
  const std::string prefix =
      "bench-table-pipeline-" + std::to_string(getpid()) + "-" + std::to_string(clock.now_ms());
  const std::string input = prefix + "-input";
  const std::filesystem::path data_root = s.data_root.empty()
                                              ? std::filesystem::temp_directory_path() / prefix
                                              : std::filesystem::path(s.data_root);

  AppSettings alo_settings = app_settings(s, "x", false, "");
  AppSettings eos_settings = app_settings(s, "x", true, "");
  std::printf("bench_table_pipeline: broker %s\n", s.bootstrap.c_str());
  std::printf("  input        %lld events, %d-byte values, keys \"k0\"..\"k%lld\", %d partitions (RF 1)\n",
              static_cast<long long>(s.records), s.value_bytes, static_cast<long long>(s.keys - 1),
              s.partitions);
  std::printf(
      "  app          one agent: counts.add(key, 1) (Table<string, int64>, rocksdb://, fresh data dir per "
      "run)\n"
      "               then output.send(key, value + \":\" + count); fresh app id and output topic per run\n");
  std::printf(
      "  commits      broker_commit_every %lld; broker_commit_interval_ms %lld -> effective: "
      "at_least_once %lld ms, exactly_once %lld ms\n",
      static_cast<long long>(s.commit_every), static_cast<long long>(s.commit_interval_ms),
      static_cast<long long>(effective_commit_interval_ms(alo_settings)),
      static_cast<long long>(effective_commit_interval_ms(eos_settings)));
  std::printf("  rounds       %d, the guarantee that goes first alternating; summary: medians\n", s.rounds);
  std::printf(
      "  total        events/s from App::run to the end: alo the last input acked (outputs + changelog\n"
      "               delivered), eos the last transaction committed\n"
      "  running      the same, from the first record received\n"
      "  acked        events/s from App::run to the last input acked (both)\n"
      "  committed    events/s from App::run to the last commit (alo: offsets, up to one interval later)\n"
      "  data dir     %s\n",
      data_root.c_str());
  std::fflush(stdout);

  int exit_code = 0;
  EventLoop loop;
  KafkaBrokerClient client(loop, KafkaOptions{s.bootstrap, {}});
  Random random(static_cast<uint64_t>(clock.now_ms()));
  try {
    check(client.check_config(), "KafkaBrokerClient");
    auto output = [&](int round, const char* side) {
      return prefix + "-r" + std::to_string(round) + "-" + side + "-out";
    };
    std::vector<std::string> topics = {input};
    for (int round = 1; round <= s.rounds; ++round) {
      topics.push_back(output(round, "alo"));
      topics.push_back(output(round, "eos"));
    }
    create_topics(loop, client, topics, s.partitions);
    preload(loop, client, input, s.records, s.keys, s.value_bytes);

    std::vector<Measurement> alos;
    std::vector<Measurement> eoss;
    print_header();
    for (int round = 1; round <= s.rounds; ++round) {
      const bool alo_first = round % 2 == 1;
      for (int turn = 0; turn < 2; ++turn) {
        const bool eos = (turn == 0) != alo_first;
        if ((eos && !do_eos) || (!eos && !do_alo)) continue;
        const char* side = eos ? "eos" : "alo";
        const std::string id = prefix + "-r" + std::to_string(round) + "-" + side;
        const std::filesystem::path dir = data_root / id;
        std::filesystem::remove_all(dir);
        Measurement m = run_app(loop, client, random, s, eos, input, output(round, side), id, dir.string());
        std::filesystem::remove_all(dir);
        print_row(std::to_string(round) + (alo_first ? " (alo 1st)" : " (eos 1st)"), side, m);
        (eos ? eoss : alos).push_back(m);
      }
    }
    std::printf("\n");
    std::printf("%-14s %-4s %9s %9s %9s %9s %8s\n", "median", "", "total", "running", "acked", "committed",
                "cpu us");
    Medians a, e;
    if (!alos.empty()) {
      a = medians(alos);
      std::printf("%-14s %-4s %9.0f %9.0f %9.0f %9.0f %8.2f\n", "", "alo", a.total, a.running, a.acked,
                  a.committed, a.cpu_us);
    }
    if (!eoss.empty()) {
      e = medians(eoss);
      std::printf("%-14s %-4s %9.0f %9.0f %9.0f %9.0f %8.2f\n", "", "eos", e.total, e.running, e.acked,
                  e.committed, e.cpu_us);
    }
    if (!alos.empty() && !eoss.empty()) {
      const double ratio = e.total / a.total;
      std::printf(
          "\neos/alo: total %.3f, running %.3f, acked %.3f, committed %.3f (goal: total >= 0.7; medians of "
          "%d "
          "rounds): %s\n",
          ratio, e.running / a.running, e.acked / a.acked, e.committed / a.committed, s.rounds,
          ratio >= 0.7 ? "met" : "NOT met");
    }
    std::fflush(stdout);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_table_pipeline: error: %s\n", e.what());
    exit_code = 1;
  }
  clean_up_topics(loop, client, prefix, s.keep_topics);
  if (s.data_root.empty()) std::filesystem::remove_all(data_root);
  return exit_code;
}

}  // namespace

int main(int argc, char** argv) {
  Settings s;
  CLI::App app{"Events/s of a consume -> table update -> produce App, at_least_once vs exactly_once"};
  add_bootstrap_option(app, s.bootstrap);
  app.add_option("--records", s.records, "events preloaded and processed per run")
      ->check(CLI::PositiveNumber);
  app.add_option("--keys", s.keys, "distinct keys")->check(CLI::PositiveNumber);
  app.add_option("--value-bytes", s.value_bytes, "value size")->check(CLI::PositiveNumber);
  app.add_option("--partitions", s.partitions, "partitions of every topic")->check(CLI::PositiveNumber);
  app.add_option("--rounds", s.rounds, "rounds (each runs both guarantees, alternating which goes first)")
      ->check(CLI::PositiveNumber);
  app.add_option("--commit-every", s.commit_every, "broker_commit_every (both)")->check(CLI::PositiveNumber);
  app.add_option("--commit-interval-ms", s.commit_interval_ms,
                 "broker_commit_interval_ms (both; 2800, Faust's default, means 100 ms under exactly_once)")
      ->check(CLI::PositiveNumber);
  app.add_option("--timeout-ms", s.timeout_ms, "fail a run that has not finished by then")
      ->check(CLI::PositiveNumber);
  app.add_option("--only", s.only, "run one guarantee only, e.g. to profile it")
      ->check(CLI::IsMember({"alo", "eos"}));
  app.add_option("--data-dir", s.data_root, "where the rocksdb:// data dirs go (default: a temp dir)");
  app.add_flag("--trace", s.trace, "print a timeline of the App's counters to stderr every 10 ms");
  app.add_flag("--keep-topics", s.keep_topics, "do not delete the benchmark's topics");
  std::vector<std::string> consumer_properties;
  std::vector<std::string> producer_properties;
  app.add_option("--consumer-property", consumer_properties,
                 "NAME=VALUE: a further librdkafka consumer property (repeatable)");
  app.add_option("--producer-property", producer_properties,
                 "NAME=VALUE: a further librdkafka producer property (repeatable)");
  CLI11_PARSE(app, argc, argv);
  return finish_main(
      "bench_table_pipeline", s.bootstrap,
      {{consumer_properties, s.consumer_properties}, {producer_properties, s.producer_properties}},
      [&] { return run(s); });
}
