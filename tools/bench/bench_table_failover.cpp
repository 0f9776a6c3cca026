// Benchmark (not a test): how long a table partition takes to be active again after a failover, with and
// without standby replicas (AppSettings::table_standby_replicas 1 and 0), against a real broker.
//
// It preloads --records updates (keys "k0".."k{--keys - 1}", --value-bytes values) into one input topic of
// --partitions partitions. Each run then starts two workers of a fresh app (same id, worker ids "a" and "b",
// in this process on one EventLoop, each with its own KafkaBrokerClient and its own rocksdb:// data dir),
// with one agent:
//
//   for (auto& event : stream) table.set(event.key(), event.value());   // Table<string, string>, rocksdb://
//
// and waits until every update is processed and the workers are quiet (no ack, commit or changelog record
// applied for --quiet-ms: the last offsets are committed and, with standbys, each worker's standby partitions
// have caught up). Then it stops worker "a" gracefully (App::stop) and measures on the survivor "b":
//
//   assigned    from the stop to b holding every input partition (the group's rebalance; includes a's
//               graceful stop and b's next heartbeat, the same with and without standbys)
//   active      from the stop to every table partition active on b (no source partition blocked by a
//               restore): the failover time
//   restore     active - assigned: the restores themselves
//   restored    changelog records b applied between the stop and the end (AppStats::table_records_restored)
//   last ms     AppStats::table_last_restore_ms of b (the last partition's restore, assignment to active)
//
// --rounds rounds each run standby=1 and standby=0 (the order alternating), fresh ids and data dirs each run;
// the summary is the medians and the ratio standby=0 / standby=1.
//
//   build/bin/bench_table_failover [--bootstrap HOST:PORT] [--records N] [--keys K] [--rounds R] ...
//   tools/kafka/with-broker -- build/bin/bench_table_failover
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "runtime/app/app.h"
#include "runtime/app/tables.h"
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
  int64_t records = 300'000;
  int64_t keys = 100'000;
  int32_t value_bytes = 100;
  int32_t partitions = 8;
  int32_t rounds = 3;
  int64_t quiet_ms = 4'000;  // > broker_commit_interval_ms (2.8 s): the last commit is in
  int64_t timeout_ms = 300'000;
  std::string data_root;
  bool keep_topics = false;
  std::map<std::string, std::string> consumer_properties;  // AppSettings::consumer_properties
};

// One worker: its own client, App and data dir.
struct Worker {
  Worker(EventLoop& loop, const Settings& s, AppSettings settings, uint64_t seed)
      : client(loop, KafkaOptions{s.bootstrap, {}}), random(seed), app(std::move(settings)) {}
  KafkaBrokerClient client;
  RealClock clock;
  Random random;
  App app;
  Table<std::string, std::string> table;
  std::optional<Status> result;
  double stopped_at = -1;
};

struct Measurement {
  int32_t standby = 0;
  double fill_s = 0;      // both workers started -> every update processed
  double stop_s = 0;      // stop() -> a's run() returned
  double assigned_s = 0;  // stop() -> b holds every input partition
  double active_s = 0;    // stop() -> every table partition active on b
  int64_t restored = 0;   // changelog records b applied after the stop
  int64_t last_restore_ms = 0;
  int64_t standby_applied = 0;  // changelog records b applied before the stop (standby tailing, restores)
  [[nodiscard]] double restore_s() const { return active_s - assigned_s; }
};

AppSettings app_settings(const Settings& s, const std::string& id, const std::string& worker, int32_t standby,
                         const std::string& data_dir) {
  AppSettings settings;
  settings.id = id;
  settings.broker = "kafka://" + s.bootstrap;
  settings.worker_id = worker;
  settings.topic_partitions = s.partitions;
  settings.table_standby_replicas = standby;
  settings.store = "rocksdb://";
  settings.data_dir = data_dir;
  settings.consumer_properties = s.consumer_properties;
  return settings;
}

Table<std::string, std::string> define(App& app, const std::string& input) {
  auto source = app.topic<std::string, std::string>(input);
  auto table = app.table<std::string, std::string>("values", source);
  app.agent("fill", source, [table](Stream<std::string, std::string>& stream) {
    for (auto& event : stream) table.set(event.key(), event.value());
  });
  return table;
}

void fail_if_stopped(const Worker& w, const char* name) {
  if (w.result.has_value()) {
    throw BenchFailure(std::string("worker ") + name +
                       " stopped: " + (w.result->ok() ? std::string("ok") : w.result->error().to_string()));
  }
}

std::vector<TopicPartition> input_partitions(const App& app, const std::string& input) {
  std::vector<TopicPartition> out;
  for (const auto& tp : app.assignment()) {
    if (tp.topic == input) out.push_back(tp);
  }
  return out;
}

Measurement run_failover(EventLoop& loop, const Settings& s, int32_t standby, const std::string& input,
                         const std::string& id, const std::filesystem::path& data_root) {
  const RealClock clock;
  Measurement m;
  m.standby = standby;
  auto make = [&](const char* name, uint64_t seed) {
    const std::filesystem::path dir = data_root / (id + "-" + name);
    std::filesystem::remove_all(dir);
    AppSettings settings = app_settings(s, id, name, standby, dir.string());
    check(validate(settings), "settings");
    auto w = std::make_unique<Worker>(loop, s, settings, seed);
    check(w->client.check_config(), "KafkaBrokerClient");
    w->table = define(w->app, input);
    log_to_stderr(w->app, std::string("[") + name + "] ");
    return w;
  };
  auto a = make("a", static_cast<uint64_t>(clock.now_ms()));
  auto b = make("b", static_cast<uint64_t>(clock.now_ms()) + 1);
  auto start = [&](Worker& w, const char* name) {
    loop.spawn(std::string("worker-") + name, [&w, &loop] {
      const Env env{&w.clock, &loop, &w.random, &w.client};
      w.result = w.app.run(env);
      w.stopped_at = wall_s();
    });
  };

  // Fill: both workers process every update, then stay quiet (last commit in, standbys caught up).
  const double fill_begin = wall_s();
  start(*a, "a");
  start(*b, "b");
  double filled_at = -1;
  double last_change = wall_s();
  std::vector<int64_t> seen;
  bool done = loop.run(
      [&] {
        if (a->result.has_value() || b->result.has_value()) return true;
        const AppStats& sa = a->app.stats();
        const AppStats& sb = b->app.stats();
        const double now = wall_s();
        if (filled_at < 0 && sa.events_acked + sb.events_acked >= s.records) filled_at = now;
        std::vector<int64_t> current = {
            sa.events_acked,           sb.events_acked,           sa.commits,    sb.commits,
            sa.table_records_restored, sb.table_records_restored, sa.rebalances, sb.rebalances};
        if (current != seen) {
          seen = current;
          last_change = now;
        }
        const bool balanced =
            !input_partitions(a->app, input).empty() && !input_partitions(b->app, input).empty();
        return filled_at >= 0 && balanced && now - last_change > static_cast<double>(s.quiet_ms) / 1000;
      },
      clock.now_ms() + s.timeout_ms);
  if (!done || a->result.has_value() || b->result.has_value()) {
    stop_before_destroy(loop, a->app, a->result);
    stop_before_destroy(loop, b->app, b->result);
  }
  fail_if_stopped(*a, "a");
  fail_if_stopped(*b, "b");
  if (!done) {
    throw BenchFailure("fill: " + std::to_string(a->app.stats().events_acked + b->app.stats().events_acked) +
                       " of " + std::to_string(s.records) + " acked after " + std::to_string(s.timeout_ms) +
                       " ms (a holds " + std::to_string(input_partitions(a->app, input).size()) +
                       " partitions, b " + std::to_string(input_partitions(b->app, input).size()) + ")");
  }
  m.fill_s = filled_at - fill_begin;
  const int64_t b_restored_before = b->app.stats().table_records_restored;
  m.standby_applied = b_restored_before;
  const size_t a_held = input_partitions(a->app, input).size();

  // Failover: stop a gracefully; b takes every partition.
  const double stop_at = wall_s();
  loop.spawn("stop-a", [&] { a->app.stop(); });
  double assigned_at = -1;
  double active_at = -1;
  done = loop.run(
      [&] {
        if (b->result.has_value()) return true;
        const auto held = input_partitions(b->app, input);
        if (held.size() != static_cast<size_t>(s.partitions)) return false;
        const double now = wall_s();
        if (assigned_at < 0) assigned_at = now;
        auto& tables = b->app.engine().tables();
        for (const auto& tp : held) {
          if (tables.blocked(tp)) return false;
        }
        active_at = now;
        return a->result.has_value();  // also wait for a's run() to return (its stop time is reported)
      },
      clock.now_ms() + s.timeout_ms);
  if (!done || b->result.has_value()) {
    stop_before_destroy(loop, a->app, a->result);
    stop_before_destroy(loop, b->app, b->result);
  }
  fail_if_stopped(*b, "b");
  if (!done) throw BenchFailure("failover: b not active on every partition after the timeout");
  check(*a->result, "worker a: run()");
  m.stop_s = a->stopped_at - stop_at;
  m.assigned_s = assigned_at - stop_at;
  m.active_s = active_at - stop_at;
  m.restored = b->app.stats().table_records_restored - b_restored_before;
  m.last_restore_ms = b->app.stats().table_last_restore_ms;
  // The failover must also be right: every key updated during the fill is in b's table now.
  int64_t present = 0;
  on_fiber(
      loop, "verify",
      [&] {
        for (int64_t k = 0; k < s.keys; ++k) present += b->table.contains("k" + std::to_string(k)) ? 1 : 0;
      },
      120'000);
  if (present != std::min(s.keys, s.records)) {
    throw BenchFailure("after the failover b's table holds " + std::to_string(present) + " of " +
                       std::to_string(std::min(s.keys, s.records)) + " keys");
  }
  std::printf("  (verified: b's table holds all %lld keys after the failover)\n",
              static_cast<long long>(present));
  std::printf("  (run %s: a held %zu partitions; b applied %lld changelog records before the stop)\n",
              id.c_str(), a_held, static_cast<long long>(m.standby_applied));

  loop.spawn("stop-b", [&] { b->app.stop(); });
  if (!loop.run([&] { return b->result.has_value(); }, clock.now_ms() + 60'000)) {
    throw BenchFailure("worker b did not stop within 60 s");
  }
  check(*b->result, "worker b: run()");
  for (const auto* w : {a.get(), b.get()}) {
    const AppStats& st = w->app.stats();
    if (st.send_failures > 0 || st.agent_errors > 0)
      throw BenchFailure(std::to_string(st.send_failures) + " send failures, " +
                         std::to_string(st.agent_errors) + " agent errors");
  }
  a.reset();
  b.reset();
  std::filesystem::remove_all(data_root / (id + "-a"));
  std::filesystem::remove_all(data_root / (id + "-b"));
  return m;
}

constexpr const char* kRowFormat = "%-12s %7s %7s %7s %9s %9s %9s %9s %8s\n";

void print_header() {
  std::printf("\n");
  std::printf(kRowFormat, "round", "standby", "fill s", "stop s", "assigned", "active s", "restore s",
              "restored", "last ms");
}

void print_row(const std::string& label, const Measurement& m) {
  char c[8][32];
  std::snprintf(c[0], 32, "%d", m.standby);
  std::snprintf(c[1], 32, "%.2f", m.fill_s);
  std::snprintf(c[2], 32, "%.3f", m.stop_s);
  std::snprintf(c[3], 32, "%.3f", m.assigned_s);
  std::snprintf(c[4], 32, "%.3f", m.active_s);
  std::snprintf(c[5], 32, "%.3f", m.restore_s());
  std::snprintf(c[6], 32, "%lld", static_cast<long long>(m.restored));
  std::snprintf(c[7], 32, "%lld", static_cast<long long>(m.last_restore_ms));
  std::printf(kRowFormat, label.c_str(), c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]);
  std::fflush(stdout);
}

int run(const Settings& s) {
  const RealClock clock;
  const std::string prefix =
      "bench-table-failover-" + std::to_string(getpid()) + "-" + std::to_string(clock.now_ms());
  const std::string input = prefix + "-input";
  const std::filesystem::path data_root = s.data_root.empty()
                                              ? std::filesystem::temp_directory_path() / prefix
                                              : std::filesystem::path(s.data_root);

  std::printf("bench_table_failover: broker %s\n", s.bootstrap.c_str());
  std::printf("  input        %lld updates, %d-byte values, keys \"k0\"..\"k%lld\", %d partitions (RF 1)\n",
              static_cast<long long>(s.records), s.value_bytes, static_cast<long long>(s.keys - 1),
              s.partitions);
  std::printf(
      "  app          two workers (a, b) in this process on one EventLoop, own KafkaBrokerClient and "
      "rocksdb://\n"
      "               data dir each; one agent: table.set(key, value); at_least_once, default settings\n"
      "               (commit interval 2.8 s, session 60 s, heartbeat 3 s, range assignor)\n"
      "  failover     after the fill and %lld ms quiet, a.stop(); times from the stop, on b:\n"
      "               assigned = b holds all %d input partitions; active = no partition blocked by a "
      "restore\n"
      "               restored = changelog records b applied after the stop\n"
      "  rounds       %d, each standby=1 and standby=0 (order alternating); summary: medians\n"
      "  data dir     %s\n",
      static_cast<long long>(s.quiet_ms), s.partitions, s.rounds, data_root.c_str());
  std::fflush(stdout);

  int exit_code = 0;
  EventLoop loop;
  KafkaBrokerClient client(loop, KafkaOptions{s.bootstrap, {}});
  try {
    check(client.check_config(), "KafkaBrokerClient");
    create_topics(loop, client, {input}, s.partitions);
    preload(loop, client, input, s.records, s.keys, s.value_bytes);
    std::vector<Measurement> with, without;
    print_header();
    for (int round = 1; round <= s.rounds; ++round) {
      const bool standby_first = round % 2 == 1;
      for (int turn = 0; turn < 2; ++turn) {
        const int32_t standby = ((turn == 0) == standby_first) ? 1 : 0;
        const std::string id = prefix + "-r" + std::to_string(round) + "-sb" + std::to_string(standby);
        Measurement m = run_failover(loop, s, standby, input, id, data_root);
        print_row(std::to_string(round) + (standby_first ? " (sb1 1st)" : " (sb0 1st)"), m);
        (standby == 1 ? with : without).push_back(m);
      }
    }
    auto med = [](const std::vector<Measurement>& runs, auto field) {
      std::vector<double> values;
      for (const auto& m : runs) values.push_back(field(m));
      return median(values);
    };
    auto active = [](const Measurement& m) { return m.active_s; };
    auto restore = [](const Measurement& m) { return m.restore_s(); };
    auto assigned = [](const Measurement& m) { return m.assigned_s; };
    auto restored = [](const Measurement& m) { return static_cast<double>(m.restored); };
    std::printf("\n%-12s %7s %9s %9s %9s %9s\n", "median", "standby", "assigned", "active s", "restore s",
                "restored");
    for (const auto& [runs, standby] : {std::pair{&with, 1}, {&without, 0}}) {
      std::printf("%-12s %7d %9.3f %9.3f %9.3f %9.0f\n", "", standby, med(*runs, assigned),
                  med(*runs, active), med(*runs, restore), med(*runs, restored));
    }
    std::printf(
        "\nfailover time standby=0 / standby=1: active %.2fx (%.3f s vs %.3f s), restore part %.2fx (%.3f s "
        "vs "
        "%.3f s); records restored %.0f vs %.0f\n",
        med(without, active) / med(with, active), med(without, active), med(with, active),
        med(without, restore) / med(with, restore), med(without, restore), med(with, restore),
        med(without, restored), med(with, restored));
    std::fflush(stdout);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_table_failover: error: %s\n", e.what());
    exit_code = 1;
  }
  clean_up_topics(loop, client, prefix, s.keep_topics);
  if (s.data_root.empty()) std::filesystem::remove_all(data_root);
  return exit_code;
}

}  // namespace

int main(int argc, char** argv) {
  Settings s;
  CLI::App app{"Table failover time with and without standby replicas (two workers, one stopped)"};
  add_bootstrap_option(app, s.bootstrap);
  app.add_option("--records", s.records, "table updates preloaded")->check(CLI::PositiveNumber);
  app.add_option("--keys", s.keys, "distinct keys")->check(CLI::PositiveNumber);
  app.add_option("--value-bytes", s.value_bytes, "value size")->check(CLI::PositiveNumber);
  app.add_option("--partitions", s.partitions, "partitions of the input topic")->check(CLI::PositiveNumber);
  app.add_option("--rounds", s.rounds, "rounds (each: standby=1 and standby=0)")->check(CLI::PositiveNumber);
  app.add_option("--quiet-ms", s.quiet_ms, "quiet time after the fill before the stop")
      ->check(CLI::PositiveNumber);
  app.add_option("--timeout-ms", s.timeout_ms, "fail a phase that has not finished by then")
      ->check(CLI::PositiveNumber);
  app.add_option("--data-dir", s.data_root, "where the rocksdb:// data dirs go (default: a temp dir)");
  app.add_flag("--keep-topics", s.keep_topics, "do not delete the benchmark's topics");
  std::vector<std::string> consumer_properties;
  app.add_option("--consumer-property", consumer_properties,
                 "NAME=VALUE: a further librdkafka consumer property for the workers (repeatable)");
  CLI11_PARSE(app, argc, argv);
  return finish_main("bench_table_failover", s.bootstrap, {{consumer_properties, s.consumer_properties}},
                     [&] { return run(s); });
}
