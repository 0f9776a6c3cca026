// `worker APP`: runs one worker of an app on real Kafka until SIGTERM / SIGINT (warm shutdown) or a fatal
// error. With --record DIR, one TraceWriter (runtime/trace) records every incarnation of the worker.
//
// A production binding file (tests/unit/determinism_exceptions.inc): it seeds Random from std::random_device,
// reads the process environment, host name and pid, and takes signals through a signalfd.
#include <pthread.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>

#include <fmt/format.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "runtime/cli/commands.h"
#include "runtime/kafka/kafka_broker_client.h"
#include "runtime/loop/event_loop.h"
#include "runtime/trace/trace_writer.h"

extern char** environ;  // NOLINT: POSIX declares it nowhere in a header

namespace mephisto::cli {
namespace {

LogLevel parse_log_level(const std::string& name) {
  if (name == "debug") return LogLevel::kDebug;
  if (name == "warn") return LogLevel::kWarn;
  if (name == "error") return LogLevel::kError;
  return LogLevel::kInfo;  // CLI11 checked the name
}

// Log lines go to stderr (spdlog's own default is stdout), so that stdout stays for what commands print.
void use_stderr_logger(LogLevel level) {
  auto logger =
      std::make_shared<spdlog::logger>("mephisto", std::make_shared<spdlog::sinks::stderr_color_sink_mt>());
  logger->set_pattern("%Y-%m-%d %H:%M:%S.%e %^%l%$ %v");
  switch (level) {
    case LogLevel::kDebug:
      logger->set_level(spdlog::level::debug);
      break;
    case LogLevel::kInfo:
      logger->set_level(spdlog::level::info);
      break;
    case LogLevel::kWarn:
      logger->set_level(spdlog::level::warn);
      break;
    case LogLevel::kError:
      logger->set_level(spdlog::level::err);
      break;
  }
  spdlog::set_default_logger(std::move(logger));
}

// "<hostname>-<pid>", with characters Kafka does not allow in topic names replaced (the worker id names its
// reply topic).
std::string default_worker_id() {
  char host[256] = {};
  if (::gethostname(host, sizeof(host) - 1) != 0 || host[0] == '\0') std::strcpy(host, "worker");
  std::string id = fmt::format("{}-{}", host, ::getpid());
  for (char& c : id) {
    const bool legal = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                       c == '.' || c == '_' || c == '-';
    if (!legal) c = '-';
  }
  return id;
}

const char* signal_name(int signal) {
  return signal == SIGTERM ? "SIGTERM" : "SIGINT";
}

std::string stats_line(const AppStats& s) {
  return fmt::format(
      "stats: received={} acked={} sent={} delivered={} send_failures={} commits={} commit_failures={} "
      "rebalances={} revoked={} lost={} skipped={} dead_lettered={} agent_errors={} agent_restarts={} "
      "timer_runs={} timer_errors={} asks={} ask_timeouts={} replies={} pauses={}",
      s.records_received, s.events_acked, s.records_sent, s.records_delivered, s.send_failures, s.commits,
      s.commit_failures, s.rebalances, s.partitions_revoked, s.partitions_lost, s.records_skipped,
      s.records_dead_lettered, s.agent_errors, s.agent_restarts, s.timer_runs, s.timer_errors, s.asks,
      s.ask_timeouts, s.replies_sent, s.flow_control_pauses);
}

// Restores the thread's signal mask and closes the signalfd when run_worker returns, so that run_cli leaves a
// program that called it in-process as it found it.
class SignalGuard {
 public:
  SignalGuard() {
    sigemptyset(&signals_);
    sigaddset(&signals_, SIGTERM);
    sigaddset(&signals_, SIGINT);
    blocked_ = ::pthread_sigmask(SIG_BLOCK, &signals_, &previous_) == 0;
    if (blocked_) fd_ = ::signalfd(-1, &signals_, SFD_NONBLOCK | SFD_CLOEXEC);
  }
  ~SignalGuard() {
    if (fd_ >= 0) ::close(fd_);
    if (blocked_) ::pthread_sigmask(SIG_SETMASK, &previous_, nullptr);
  }
  SignalGuard(const SignalGuard&) = delete;
  SignalGuard& operator=(const SignalGuard&) = delete;

  [[nodiscard]] int fd() const { return fd_; }
  // The next pending signal's number, or 0 when none is pending.
  [[nodiscard]] int take() const {
    signalfd_siginfo info{};
    if (::read(fd_, &info, sizeof(info)) != static_cast<ssize_t>(sizeof(info))) return 0;
    return static_cast<int>(info.ssi_signo);
  }

 private:
  sigset_t signals_{};
  sigset_t previous_{};
  bool blocked_ = false;
  int fd_ = -1;
};

// A stop that cannot unwind: the fibers still hold references into the App, whose clients need the loop, so
// no destruction order is safe. Prints why and ends the process.
// A worker that must rejoin (App::should_rejoin) starts afresh after this pause, at most this many times.
constexpr int64_t kRejoinDelayMs = 1000;
constexpr int kMaxRejoins = 100;

[[noreturn]] void exit_now(const std::string& message, const App& app) {
  spdlog::default_logger()->flush();
  std::fflush(stdout);
  fmt::print(stderr, "{}\n{}\n", message, stats_line(app.stats()));
  std::fflush(stderr);
  std::_Exit(kExitFailure);
}

// The settings a replay needs to build the same app: the MEPHISTO_ variables and --set pairs the user gave
// (in that precedence), and the worker id, which the worker may have named itself. Left out: what binds the
// worker to this machine and this cluster (broker, store, data_dir, librdkafka properties), which a replay in
// the simulator must not reuse.
std::map<std::string, std::string> recorded_settings(const std::map<std::string, std::string>& environment,
                                                     const std::vector<std::string>& sets,
                                                     const AppSettings& settings) {
  std::map<std::string, std::string> out;
  const auto keep = [](const std::string& name) {
    return name != "broker" && name != "store" && name != "data_dir" && !name.starts_with("consumer.") &&
           !name.starts_with("producer.");
  };
  for (const auto& name : setting_names()) {
    std::string variable = "MEPHISTO_";
    for (const char c : name) variable += (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c;
    const auto found = environment.find(variable);
    if (found != environment.end() && keep(name)) out[name] = found->second;
  }
  for (const auto& pair : sets) {
    const size_t equals = pair.find('=');  // settings_from() checked the form
    const std::string name = pair.substr(0, equals);
    if (keep(name)) out[name] = pair.substr(equals + 1);
  }
  out["worker_id"] = settings.worker_id;
  return out;
}

// The trace files' writer name: unique per recording process, and legal in a file name.
std::string record_writer_name(const std::string& worker_id, int64_t start_ms) {
  std::string name = fmt::format("w-{}-{}", worker_id, start_ms);
  for (char& c : name) {
    const bool legal = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                       c == '.' || c == '_' || c == '-';
    if (!legal) c = '-';
  }
  return name;
}

}  // namespace

std::map<std::string, std::string> process_environment() {
  std::map<std::string, std::string> environment;
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    const std::string text = *entry;
    const size_t equals = text.find('=');
    if (equals == std::string::npos) continue;
    environment.emplace(text.substr(0, equals), text.substr(equals + 1));
  }
  return environment;
}

int run_worker(const std::vector<AppDefinition>& apps, const WorkerOptions& options) {
  auto definition = find_app(apps, options.app);
  if (!definition.ok()) {
    print_error(definition.error().message);
    return kExitUsage;
  }
  const std::map<std::string, std::string> environment = process_environment();
  auto built = settings_from({definition.value(), environment, options.sets, options.broker});
  if (!built.ok()) {
    print_error(built.error().message);
    return kExitUsage;
  }
  AppSettings settings = std::move(built.value().settings);
  if (!built.value().worker_id_given) settings.worker_id = default_worker_id();
  if (Status valid = validate(settings); !valid.ok()) {
    print_error(valid.error().message);
    return kExitUsage;
  }
  const std::string servers = bootstrap_servers(settings.broker).value();  // validate() checked the URL

  RealClock clock;
  // Opened before anything connects, so that a bad --record directory is a usage error, at once. One writer
  // for the whole process: each Engine::run (a rejoin too) is a new incarnation in it.
  std::unique_ptr<trace::TraceWriter> recorder;
  if (!options.record_dir.empty()) {
    trace::TraceWriterOptions record;
    record.dir = options.record_dir;
    record.writer_name = record_writer_name(settings.worker_id, clock.now_ms());
    record.app_name = options.app;
    record.source = "kafka";
    record.payloads = !options.record_hashes;
    record.settings = recorded_settings(environment, options.sets, settings);
    record.segment_max_bytes = options.record_segment_mb << 20;
    record.total_max_bytes = options.record_max_mb << 20;
    // The worker goes on without its trace: recording must never be the reason a worker stops.
    record.on_error = [](const std::string& message) { spdlog::error("{}", message); };
    auto opened = trace::TraceWriter::open(std::move(record), &clock);
    if (!opened.ok()) {
      print_error(fmt::format("--record {}: {}", options.record_dir, opened.error().message));
      return kExitUsage;
    }
    recorder = std::move(opened).value();
  }
  const LogLevel level = parse_log_level(options.log_level);
  use_stderr_logger(level);

  // Blocked before the loop (and librdkafka) start threads: they inherit the mask, so SIGTERM and SIGINT
  // reach the process only through the signalfd, read on the loop thread.
  SignalGuard signals;
  if (signals.fd() < 0) {
    print_error(fmt::format("cannot take SIGTERM/SIGINT through a signalfd: {}", std::strerror(errno)));
    return kExitFailure;
  }

  EventLoop loop;
  KafkaBrokerClient broker(loop, KafkaOptions{servers, {}});
  if (Status config = broker.check_config(); !config.ok()) {
    print_error(config.error().message);
    return kExitUsage;
  }
  std::random_device device;
  Random random((static_cast<uint64_t>(device()) << 32) ^ device());
  Env env{&clock, &loop, &random, &broker};
  env.recorder = recorder.get();
  const auto make_app = [&] {
    auto app = std::make_unique<App>(settings);
    if (definition.value()->define) definition.value()->define(*app);
    app->log().set_min_level(level);
    return app;
  };
  std::unique_ptr<App> app = make_app();

  std::optional<Status> result;
  bool stop_requested = false;
  loop.spawn("worker", [&] {
    for (int rejoins = 0;; ++rejoins) {
      Status status = app->run(env);
      // An aborted or fenced transaction (exactly_once): a fresh worker resumes from the last commit. Bounded,
      // and paced, so a persistent cause shows as a failure instead of a crash loop.
      if (status.ok() || !app->should_rejoin() || stop_requested || rejoins >= kMaxRejoins) {
        result = status;
        return;
      }
      app->log().warn("rejoining the group with a fresh worker in {} ms (rejoin {} of at most {}): {}",
                      kRejoinDelayMs, rejoins + 1, kMaxRejoins, status.error().message);
      loop.park_until(clock.now_ms() + kRejoinDelayMs);
      if (stop_requested) {
        result = status;
        return;
      }
      app = make_app();
    }
  });
  int signals_seen = 0;
  const WatchId watch = loop.watch_readable(signals.fd(), [&] {
    for (int signal = signals.take(); signal != 0; signal = signals.take()) {
      ++signals_seen;
      if (signals_seen == 1) {
        app->log().info(
            "{}: stopping (warm shutdown: drain, commit, leave the group); send it again to stop at once",
            signal_name(signal));
        stop_requested = true;
        // Engine::stop runs on a fiber of the worker's scheduler; a watch callback runs outside any fiber.
        loop.spawn("stop", [&app] { app->stop(); });
      } else {
        app->log().warn("second signal ({}): stopping at once", signal_name(signal));
        loop.stop();
      }
    }
  });
  app->log().info("worker of app '{}' (id {}, worker_id {}) starting on {}", options.app, settings.id,
                 settings.worker_id, settings.broker);
  if (recorder) {
    app->log().info("recording to {} ({})", options.record_dir,
                    options.record_hashes ? "hashes" : "payloads");
  }

  bool finished = false;
  try {
    finished = loop.run([&] { return result.has_value(); });
  } catch (const std::exception& error) {
    if (recorder) recorder->flush();  // exit_now skips destructors: keep what was recorded
    exit_now(fmt::format("error: internal error in the worker (a bug): {}", error.what()), *app);
  }
  if (!finished) {
    if (recorder) recorder->flush();
    exit_now(
        "error: stopped at once on a second signal, without a graceful shutdown: records processed since the "
        "last commit will be processed again",
        *app);
  }
  loop.unwatch(watch);
  if (recorder) {
    recorder->flush();
    if (recorder->error().has_value()) {
      app->log().warn("the trace in {} is incomplete: {}", options.record_dir, *recorder->error());
    } else {
      app->log().info("recorded {} events ({} bytes) to {}", recorder->events_written(),
                      recorder->bytes_written(), options.record_dir);
    }
  }
  spdlog::default_logger()->flush();
  fmt::print(stderr, "{}\n", stats_line(app->stats()));
  if (!result->ok()) {
    print_error(fmt::format("worker of app '{}' failed: {}", options.app, result->error().to_string()));
    return kExitFailure;
  }
  fmt::print(stderr, "worker of app '{}' stopped cleanly\n", options.app);
  return kExitOk;
}

}  // namespace mephisto::cli
