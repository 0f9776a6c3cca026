// Benchmark (not a test): what the App runtime (runtime/app) costs over a hand-written consume -> produce
// loop on the same librdkafka binding, against a real broker. Goal: the runtime moves at least 0.8x the raw
// loop's events/s (total, below).
//
// It preloads --records records (keys "k0".."k999", --value-bytes values) into one input topic of
// --partitions partitions, then for each of --rounds rounds measures, one after the other (the order
// alternating between rounds so that drift does not favour one side):
//
//   raw      the binding used by hand on one fiber of an EventLoop: a KafkaBrokerClient group consumer
//            (subscribe, read_uncommitted, poll) and producer; every record's bytes are sent unchanged to an
//            output topic; at-least-once commits as the runtime does them, of offsets whose output has its
//            delivery report (AckTracker + CommitPolicy: every --commit-every acks or --commit-interval-ms);
//   runtime  an App with one agent: `for (auto& event : stream.map(copy)) output.send(key, value)`
//   (at-least-once,
//            the same commit settings), run on the same kind of EventLoop and binding.
//
// Each side reads the whole input topic in a fresh consumer group and writes a fresh output topic, until
// --records records are delivered (delivery reports with success). Figures per side: `total` events/s from
// subscribe / App::run to the last delivery report (startup included: the goal is checked on it), and
// `running` events/s from the first record received (startup excluded; librdkafka prefetches meanwhile, which
// favours the side that starts slower). The summary is the median of the rounds per side and the ratio
// runtime/raw. Both sides use the client settings AppSettings derives for the runtime (acks=all +
// idempotence, linger 5 ms, Faust's session/heartbeat/poll-interval, max_poll_records 500).
//
//   build/bin/bench_app_pipeline [--bootstrap HOST:PORT] [--records N] [--rounds R] [--only raw|runtime] ...
//   tools/kafka/with-broker -- build/bin/bench_app_pipeline
#include <time.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "bench_common.h"
#include "runtime/app/app.h"
#include "runtime/kafka/kafka_broker_client.h"
#include "runtime/loop/event_loop.h"
#include "runtime/offsets/ack_tracker.h"
#include "runtime/offsets/commit_policy.h"
#include "runtime/seam/broker_client.h"
#include "runtime/seam/env.h"
#include "runtime/seam/random.h"

namespace {

using namespace mephisto;
using namespace mephisto::bench;

struct Settings {
  std::string bootstrap;
  int64_t records = 200'000;
  int32_t value_bytes = 100;
  int32_t partitions = 8;
  int32_t rounds = 3;
  int64_t commit_every = kDefaultCommitEveryAcks;
  int64_t commit_interval_ms = kDefaultCommitIntervalMs;
  int64_t timeout_ms = 120'000;          // per side and round
  int32_t stream_buffer_maxsize = 4096;  // the runtime's per-agent buffer (AppSettings; Faust's default)
  // Further librdkafka properties for both sides (AppSettings::consumer_properties / producer_properties).
  std::map<std::string, std::string> consumer_properties;
  std::map<std::string, std::string> producer_properties;
  std::string only;  // empty: both sides
  bool keep_topics = false;
};

constexpr int kKeyCount = 1000;

double cpu_s(clockid_t clock) {
  timespec now{};
  clock_gettime(clock, &now);
  return static_cast<double>(now.tv_sec) + static_cast<double>(now.tv_nsec) * 1e-9;
}

// One side's run. Two figures: `total`, events/s from the start (subscribe, or App::run) to the last delivery
// report, startup included; and `running`, events/s from the first record received to the last delivery
// report (startup excluded, but note that librdkafka keeps fetching during a side's startup, so a side with a
// longer startup starts with more records already fetched). `startup` is the time from the start to the first
// record; CPU per event is the process's (loop thread and librdkafka threads) from the start to the end.
struct Measurement {
  int64_t events = 0;
  double startup_s = 0;
  double total_s = 0;
  double cpu_s = 0;
  int64_t pauses = 0;  // runtime: times flow control paused fetching (AppStats::flow_control_pauses)
  [[nodiscard]] double total_events_per_s() const { return static_cast<double>(events) / total_s; }
  [[nodiscard]] double running_events_per_s() const {
    return static_cast<double>(events) / (total_s - startup_s);
  }
  [[nodiscard]] double cpu_us_per_event() const { return cpu_s * 1e6 / static_cast<double>(events); }
};

// Marks the points of a run: start (construction), first record, end.
class Span {
 public:
  Span() : begin_(::wall_s()), cpu_begin_(cpu_s(CLOCK_PROCESS_CPUTIME_ID)) {}
  // Called as the run goes (after each poll, or each step of the loop); cheap.
  void progress(int64_t received) {
    if (received > 0 && first_record_ < 0) first_record_ = ::wall_s();
  }
  Measurement finish(int64_t delivered) const {
    Measurement m;
    m.events = delivered;
    m.total_s = ::wall_s() - begin_;
    m.startup_s = first_record_ - begin_;
    m.cpu_s = cpu_s(CLOCK_PROCESS_CPUTIME_ID) - cpu_begin_;
    return m;
  }

 private:
  double begin_;
  double cpu_begin_;
  double first_record_ = -1;
};

// The runtime's settings for a round; the raw side takes its client settings from the same object.
AppSettings app_settings(const Settings& s, const std::string& id) {
  AppSettings settings;
  settings.id = id;
  settings.broker = "kafka://" + s.bootstrap;
  settings.worker_id = "bench";
  settings.topic_partitions = s.partitions;
  settings.processing_guarantee = ProcessingGuarantee::kAtLeastOnce;
  settings.broker_commit_every = s.commit_every;
  settings.broker_commit_interval_ms = s.commit_interval_ms;
  settings.stream_buffer_maxsize = s.stream_buffer_maxsize;
  settings.consumer_properties = s.consumer_properties;
  settings.producer_properties = s.producer_properties;
  return settings;
}

ProducerConfig producer_config(const AppSettings& settings) {
  ProducerConfig config;
  config.client_id = settings.id + "-" + settings.worker_id;
  config.acks = settings.producer_acks;
  config.enable_idempotence = settings.producer_acks == -1;
  config.linger_ms = settings.producer_linger_ms;
  config.extra = settings.producer_properties;
  return config;
}

ConsumerConfig consumer_config(const AppSettings& settings) {
  ConsumerConfig config;
  config.group_id = settings.id;
  config.client_id = settings.id + "-" + settings.worker_id;
  config.isolation_level = IsolationLevel::kReadUncommitted;
  config.auto_offset_reset = settings.consumer_auto_offset_reset;
  config.assignment_strategy = settings.consumer_assignment_strategy;
  config.session_timeout_ms = settings.broker_session_timeout_ms;
  config.heartbeat_interval_ms = settings.broker_heartbeat_interval_ms;
  config.max_poll_interval_ms = settings.broker_max_poll_interval_ms;
  config.enable_auto_commit = false;
  config.extra = settings.consumer_properties;
  return config;
}

// --- setup -------------------------------------------------------------------------------------------------

void preload(EventLoop& loop, BrokerClient& client, const Settings& s, const std::string& topic) {
  const double start = wall_s();
  produce_records(loop, client, "bench-app-pipeline-preload", topic, s.records, kKeyCount, s.value_bytes);
  std::printf("preloaded %lld records of %d bytes into %s (%d partitions) in %.1f s\n",
              static_cast<long long>(s.records), s.value_bytes, topic.c_str(), s.partitions,
              wall_s() - start);
  std::fflush(stdout);
}

// --- raw: the binding by hand ------------------------------------------------------------------------------

// Tracks the partitions the group gives this member (fresh group: every partition starts where its first
// record is).
class RawListener final : public RebalanceListener {
 public:
  explicit RawListener(AckTracker& tracker) : tracker_(tracker) {}
  void on_partitions_revoked(const std::vector<TopicPartition>& partitions) override {
    tracker_.revoke(partitions);
  }
  void on_partitions_assigned(const std::vector<TopicPartition>& partitions) override {
    for (const auto& tp : partitions) assigned_.insert({tp, false});
  }
  // Starts tracking a partition at its first record.
  void on_record(const TopicPartition& tp, int64_t offset) {
    auto it = assigned_.find(tp);
    if (it == assigned_.end() || it->second) return;
    it->second = true;
    tracker_.assign(tp, offset);
  }

 private:
  AckTracker& tracker_;
  std::map<TopicPartition, bool> assigned_;
};

Measurement run_raw(EventLoop& loop, BrokerClient& client, const Settings& s, const std::string& input,
                    const std::string& output, const std::string& group) {
  Measurement m;
  on_fiber(
      loop, "raw",
      [&] {
        const AppSettings settings = app_settings(s, group);
        auto producer = client.producer(producer_config(settings));
        if (!producer.ok()) throw BenchFailure("raw producer: " + producer.error().to_string());
        auto consumer = client.consumer(consumer_config(settings));
        if (!consumer.ok()) throw BenchFailure("raw consumer: " + consumer.error().to_string());
        AckTracker tracker(static_cast<size_t>(settings.stream_buffer_maxsize) * 64);
        const Clock& clock = loop.clock();
        CommitPolicy policy(settings.broker_commit_interval_ms, settings.broker_commit_every, clock.now_ms());
        RawListener listener(tracker);
        Span span;
        int64_t received = 0;
        check(consumer.value()->subscribe({input}, &listener), "raw subscribe");

        int64_t delivered = 0;
        int64_t failed = 0;
        std::string failure;
        auto commit = [&] {
          const auto offsets = tracker.committable();
          if (!offsets.empty()) {
            check(consumer.value()->commit(offsets, 30'000), "raw commit");
            tracker.mark_committed(offsets);
          }
          policy.on_committed(clock.now_ms());
        };
        const int64_t deadline_ms = clock.now_ms() + s.timeout_ms;
        while (delivered < s.records) {
          if (failed > 0) throw BenchFailure("raw: delivery failed: " + failure);
          if (clock.now_ms() > deadline_ms) {
            throw BenchFailure("raw: " + std::to_string(delivered) + " of " + std::to_string(s.records) +
                               " delivered after " + std::to_string(s.timeout_ms) + " ms");
          }
          // Once everything is in, poll briefly: the loop only waits for the last delivery reports.
          auto batch = consumer.value()->poll(received >= s.records ? 5 : 100);
          if (!batch.ok()) throw BenchFailure("raw poll: " + batch.error().to_string());
          received += static_cast<int64_t>(batch.value().size());
          span.progress(received);
          for (auto& record : batch.value()) {
            TopicPartition tp{record.topic, record.partition};
            listener.on_record(tp, record.offset);
            const int64_t offset = record.offset;
            if (const AckError e = tracker.on_delivered(tp, offset); e != AckError::kNone) {
              throw BenchFailure("raw: on_delivered: " + std::string(ack_error_name(e)));
            }
            ProducerRecord out;
            out.topic = output;
            out.key = std::move(record.key);
            out.value = std::move(record.value);
            for (;;) {
              const Status sent =
                  producer.value()->send(out, [&, tp, offset](const Result<RecordMetadata>& result) {
                    if (!result.ok()) {
                      if (failed++ == 0) failure = result.error().to_string();
                      return;
                    }
                    ++delivered;
                    if (tracker.ack(tp, offset) == AckError::kNone) policy.on_ack();
                    span.progress(received);
                    if (delivered == s.records)
                      m = span.finish(delivered);  // the end, to the delivery report
                  });
              if (sent.ok()) break;
              if (sent.code() != ErrorCode::kQueueFull) check(sent, "raw send");
              loop.park_until(clock.now_ms() + 1);
            }
          }
          if (policy.due(clock.now_ms())) commit();
        }
        commit();
        check(consumer.value()->close(), "raw close");
      },
      s.timeout_ms + 60'000);
  return m;
}

// --- runtime: an App ---------------------------------------------------------------------------------------

Measurement run_runtime(EventLoop& loop, BrokerClient& client, Random& random, const Settings& s,
                        const std::string& input, const std::string& output, const std::string& id) {
  RealClock clock;
  App app(app_settings(s, id));
  auto source = app.topic<std::string, std::string>(input);
  auto sink = app.topic<std::string, std::string>(output);
  app.agent("pipe", source, [sink](Stream<std::string, std::string>& stream) {
    for (auto& event : stream.map([](const std::string& value) { return value; })) {
      Status sent = sink.send(event.key(), event.value());
      (void)sent;  // a failed delivery stops the worker: run() returns the error
    }
  });
  std::optional<Status> result;
  const Env env{&clock, &loop, &random, &client};
  Span span;
  loop.spawn("runtime", [&] { result = app.run(env); });
  const bool done = loop.run(
      [&] {
        span.progress(app.stats().records_received);
        return result.has_value() || app.stats().records_delivered >= s.records;
      },
      clock.now_ms() + s.timeout_ms);
  Measurement m = span.finish(app.stats().records_delivered);
  m.pauses = app.stats().flow_control_pauses;
  if (result.has_value()) {
    throw BenchFailure("runtime: the worker stopped: " +
                       (result->ok() ? std::string("ok") : result->error().to_string()));
  }
  if (!done) {
    throw BenchFailure("runtime: " + std::to_string(app.stats().records_delivered) + " of " +
                       std::to_string(s.records) + " delivered after " + std::to_string(s.timeout_ms) +
                       " ms");
  }
  loop.spawn("runtime-stop", [&] { app.stop(); });
  if (!loop.run([&] { return result.has_value(); }, clock.now_ms() + 60'000)) {
    throw BenchFailure("runtime: the worker did not stop within 60 s");
  }
  check(*result, "runtime: run()");
  const AppStats& stats = app.stats();
  if (stats.send_failures > 0 || stats.agent_errors > 0) {
    throw BenchFailure("runtime: " + std::to_string(stats.send_failures) + " send failures, " +
                       std::to_string(stats.agent_errors) + " agent errors");
  }
  return m;
}

// --- report ------------------------------------------------------------------------------------------------

double median(std::vector<double> values) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const size_t n = values.size();
  return n % 2 == 1 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

// What a row prints (of one round, or the medians over the rounds).
struct Figures {
  double total_events_per_s = 0;
  double running_events_per_s = 0;
  double cpu_us_per_event = 0;
  double startup_s = 0;
  double pauses = 0;
};

Figures figures(const Measurement& m) {
  return {m.total_events_per_s(), m.running_events_per_s(), m.cpu_us_per_event(), m.startup_s,
          static_cast<double>(m.pauses)};
}

std::optional<Figures> medians(const std::vector<Measurement>& runs) {
  if (runs.empty()) return std::nullopt;
  std::vector<Figures> all;
  for (const auto& m : runs) all.push_back(figures(m));
  auto of = [&](double Figures::*field) {
    std::vector<double> values;
    for (const auto& f : all) values.push_back(f.*field);
    return median(values);
  };
  return Figures{of(&Figures::total_events_per_s), of(&Figures::running_events_per_s),
                 of(&Figures::cpu_us_per_event), of(&Figures::startup_s), of(&Figures::pauses)};
}

std::string cell(bool present, double value, const char* format) {
  if (!present) return "-";
  char text[32];
  std::snprintf(text, sizeof text, format, value);
  return text;
}

constexpr const char* kRowFormat = "%-12s %10s %10s %7s | %10s %10s %7s | %7s %7s | %7s %7s | %6s\n";

void print_header() {
  std::printf("\n%-12s %10s %10s %7s | %10s %10s %7s | %7s %7s | %7s %7s | %6s\n", "", "total", "", "",
              "running", "", "", "cpu us", "/event", "startup", "s", "rt");
  std::printf(kRowFormat, "round", "raw ev/s", "rt ev/s", "rt/raw", "raw ev/s", "rt ev/s", "rt/raw", "raw",
              "rt", "raw", "rt", "pauses");
}

void print_row(const std::string& label, const std::optional<Figures>& raw,
               const std::optional<Figures>& runtime) {
  const bool both = raw && runtime;
  const Figures none;
  const Figures& r = raw ? *raw : none;
  const Figures& t = runtime ? *runtime : none;
  std::printf(kRowFormat, label.c_str(), cell(raw.has_value(), r.total_events_per_s, "%.0f").c_str(),
              cell(runtime.has_value(), t.total_events_per_s, "%.0f").c_str(),
              cell(both, both ? t.total_events_per_s / r.total_events_per_s : 0, "%.3f").c_str(),
              cell(raw.has_value(), r.running_events_per_s, "%.0f").c_str(),
              cell(runtime.has_value(), t.running_events_per_s, "%.0f").c_str(),
              cell(both, both ? t.running_events_per_s / r.running_events_per_s : 0, "%.3f").c_str(),
              cell(raw.has_value(), r.cpu_us_per_event, "%.2f").c_str(),
              cell(runtime.has_value(), t.cpu_us_per_event, "%.2f").c_str(),
              cell(raw.has_value(), r.startup_s, "%.2f").c_str(),
              cell(runtime.has_value(), t.startup_s, "%.2f").c_str(),
              cell(runtime.has_value(), t.pauses, "%.0f").c_str());
  std::fflush(stdout);
}

int run(const Settings& s) {
  const bool do_raw = s.only.empty() || s.only == "raw";
  const bool do_runtime = s.only.empty() || s.only == "runtime";
  const RealClock clock;
  const std::string prefix =
      "bench-app-pipeline-" + std::to_string(getpid()) + "-" + std::to_string(clock.now_ms());
  const std::string input = prefix + "-input";
  auto output = [&](int round, const char* side) {
    return prefix + "-r" + std::to_string(round) + "-" + side + "-out";
  };

  std::printf("bench_app_pipeline: broker %s\n", s.bootstrap.c_str());
  std::printf("  input        %lld records, %d-byte values, keys \"k0\"..\"k%d\", %d partitions (RF 1)\n",
              static_cast<long long>(s.records), s.value_bytes, kKeyCount - 1, s.partitions);
  std::printf(
      "  raw          KafkaBrokerClient consumer (group, read_uncommitted) -> Producer::send of the same\n"
      "               bytes; at-least-once commits (AckTracker/CommitPolicy) every %lld acks or %lld ms\n",
      static_cast<long long>(s.commit_every), static_cast<long long>(s.commit_interval_ms));
  std::printf(
      "  runtime      App, one agent: stream.map(copy) -> Topic::send; at-least-once, same commit "
      "settings\n");
  std::printf("  rounds       %d, the side that goes first alternating; summary: medians\n", s.rounds);
  std::printf(
      "  total        events/s from subscribe / App::run to the last delivery report (startup included)\n");
  std::printf(
      "  running      events/s from the first record received to the last delivery report (startup "
      "excluded;\n"
      "               librdkafka prefetches during startup, which favours the side with the longer "
      "startup)\n");
  std::printf("  cpu us       process CPU per event (loop thread and librdkafka threads), start to end\n");
  std::printf("  startup s    from subscribe / App::run to the first record received\n");
  std::printf("  rt pauses    times the runtime's flow control paused fetching (agent buffer %d events)\n",
              s.stream_buffer_maxsize);
  std::fflush(stdout);

  int exit_code = 0;
  EventLoop loop;
  KafkaBrokerClient client(loop, KafkaOptions{s.bootstrap, {}});
  Random random(static_cast<uint64_t>(clock.now_ms()));
  try {
    check(client.check_config(), "KafkaBrokerClient");
    std::vector<std::string> topics = {input};
    for (int round = 1; round <= s.rounds; ++round) {
      topics.push_back(output(round, "raw"));
      topics.push_back(output(round, "runtime"));
    }
    create_topics(loop, client, topics, s.partitions);
    preload(loop, client, s, input);

    std::vector<Measurement> raws;
    std::vector<Measurement> runtimes;
    print_header();
    for (int round = 1; round <= s.rounds; ++round) {
      const bool raw_first = round % 2 == 1;
      std::optional<Measurement> raw;
      std::optional<Measurement> runtime;
      for (int turn = 0; turn < 2; ++turn) {
        const bool is_raw = (turn == 0) == raw_first;
        const std::string id = prefix + "-r" + std::to_string(round) + (is_raw ? "-raw" : "-app");
        if (is_raw && do_raw) raw = run_raw(loop, client, s, input, output(round, "raw"), id);
        if (!is_raw && do_runtime)
          runtime = run_runtime(loop, client, random, s, input, output(round, "runtime"), id);
      }
      print_row(std::to_string(round) + (raw_first ? " (raw 1st)" : " (rt 1st)"),
                raw ? std::optional<Figures>(figures(*raw)) : std::nullopt,
                runtime ? std::optional<Figures>(figures(*runtime)) : std::nullopt);
      if (raw) raws.push_back(*raw);
      if (runtime) runtimes.push_back(*runtime);
    }
    const auto raw_median = medians(raws);
    const auto runtime_median = medians(runtimes);
    print_row("median", raw_median, runtime_median);
    if (raw_median && runtime_median) {
      const double ratio = runtime_median->total_events_per_s / raw_median->total_events_per_s;
      const double running_ratio = runtime_median->running_events_per_s / raw_median->running_events_per_s;
      std::printf("\nruntime/raw: total %.3f, running %.3f (goal: total >= 0.8; medians of %d rounds): %s\n",
                  ratio, running_ratio, s.rounds, ratio >= 0.8 ? "met" : "NOT met");
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_app_pipeline: error: %s\n", e.what());
    exit_code = 1;
  }
  clean_up_topics(loop, client, prefix, s.keep_topics);
  return exit_code;
}

}  // namespace

int main(int argc, char** argv) {
  Settings s;
  CLI::App app{"Events/s of the App runtime vs a hand-written binding loop (consume -> produce), as a ratio"};
  add_bootstrap_option(app, s.bootstrap);
  app.add_option("--records", s.records, "records preloaded and moved per side and round")
      ->check(CLI::PositiveNumber);
  app.add_option("--value-bytes", s.value_bytes, "value size")->check(CLI::PositiveNumber);
  app.add_option("--partitions", s.partitions, "partitions of every topic")->check(CLI::PositiveNumber);
  app.add_option("--rounds", s.rounds, "rounds (the side that goes first alternates)")
      ->check(CLI::PositiveNumber);
  app.add_option("--commit-every", s.commit_every, "commit every N acks (both sides)")
      ->check(CLI::PositiveNumber);
  app.add_option("--commit-interval-ms", s.commit_interval_ms, "commit interval (both sides)")
      ->check(CLI::PositiveNumber);
  app.add_option("--timeout-ms", s.timeout_ms, "fail a side that has not delivered everything by then")
      ->check(CLI::PositiveNumber);
  app.add_option("--stream-buffer-maxsize", s.stream_buffer_maxsize, "the runtime's agent buffer (events)")
      ->check(CLI::PositiveNumber);
  app.add_option("--only", s.only, "run one side only, e.g. to profile it")
      ->check(CLI::IsMember({"raw", "runtime"}));
  app.add_flag("--keep-topics", s.keep_topics, "do not delete the benchmark's topics");
  std::vector<std::string> consumer_properties;
  std::vector<std::string> producer_properties;
  app.add_option("--consumer-property", consumer_properties,
                 "NAME=VALUE: a further librdkafka consumer property for both sides (repeatable)");
  app.add_option("--producer-property", producer_properties,
                 "NAME=VALUE: a further librdkafka producer property for both sides (repeatable)");
  CLI11_PARSE(app, argc, argv);
  return finish_main(
      "bench_app_pipeline", s.bootstrap,
      {{consumer_properties, s.consumer_properties}, {producer_properties, s.producer_properties}},
      [&] { return run(s); });
}
