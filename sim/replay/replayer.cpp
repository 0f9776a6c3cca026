#include "sim/replay/replayer.h"

#include <fmt/format.h>

#include "sim/event_log.h"
#include "sim/executor.h"
#include "sim/replay/replay_clients.h"

namespace mephisto::replay {
namespace {

// After the last input, how long (virtual) the worker gets to finish what it was given before it is stopped.
constexpr int64_t kSettleMs = 2000;
// A replay that has not finished this long (virtual) after the recording's last event is stuck.
constexpr int64_t kStuckAfterMs = 600000;
constexpr size_t kLogLinesKept = 200;

bool has_payloads(const trace::Incarnation& incarnation) {
  if (incarnation.header.payloads()) return true;
  for (const trace::Event& event : incarnation.events) {
    if (event.has_polled() && event.polled().records_size() > 0) return false;
    if (event.has_table_applied() && event.table_applied().records_size() > 0) return false;
  }
  return true;  // no inputs with payloads needed
}

}  // namespace

Result<IncarnationReport> replay_incarnation(const trace::Incarnation& incarnation,
                                             const AppDefinition& definition, const ReplayOptions& options) {
  const trace::TraceHeader& header = incarnation.header;
  if (!has_payloads(incarnation)) {
    return Error::of(
        ErrorCode::kInvalidArg,
        fmt::format("incarnation {}/{} was recorded with hashes instead of payloads "
                    "(--record-hashes): its inputs cannot be fed to the agents; record with payloads "
                    "to replay",
                    header.writer_name(), header.incarnation()));
  }
  AppSettings settings = definition.default_settings ? definition.default_settings() : AppSettings{};
  for (const auto& [name, value] : header.settings()) {
    if (Status set = set_setting(settings, name, value); !set.ok()) {
      return Error::of(ErrorCode::kInvalidArg,
                       fmt::format("the recorded setting {}={} does not apply to app '{}': {}", name, value,
                                   definition.name, set.error().message));
    }
  }
  settings.id = header.app_id();
  settings.worker_id = header.worker_id();

  IncarnationReport report;
  report.writer = header.writer_name();
  report.worker_id = header.worker_id();
  report.incarnation = header.incarnation();
  report.events = incarnation.events.size();
  report.truncated = incarnation.truncated;
  report.complete = incarnation.complete;

  ReplaySession session(incarnation, options);
  sim::EventLog log(1000);
  sim::Executor executor(1, &log);
  bool finished = false;
  std::vector<std::string> lines;
  const std::map<std::string, int32_t> topics = declared_topics(header);
  const sim::ProcessId process =
      executor.add_process("replay-" + header.worker_id(), [&](sim::ProcessContext& context) {
        session.attach(&context.scheduler(), &context.clock(), context.clock().now_ms());
        auto app = std::make_shared<App>(settings);
        context.keep(app);
        auto broker = std::make_shared<ReplayBrokerClient>(&session, &context.scheduler(), &context.clock(),
                                                           header.app_id(), topics);
        context.keep(broker);
        auto stores = std::make_shared<ReplayStoreFactory>(&session);
        context.keep(stores);
        app->set_log_sink([&lines, &context](LogLevel level, const std::string& line) {
          lines.push_back(
              fmt::format("[t={}ms] {} {}", context.clock().now_ms(), log_level_name(level), line));
          if (lines.size() > 4 * kLogLinesKept) lines.erase(lines.begin(), lines.begin() + kLogLinesKept);
        });
        if (definition.define) definition.define(*app);
        // Stops the worker once every input was consumed and it had time to finish with them (or the replay
        // cannot go on).
        App* raw = app.get();
        context.scheduler().spawn("replay-driver", [&session, &context, raw] {
          int64_t done_since_ms = -1;
          for (;;) {
            context.scheduler().park_until(context.clock().now_ms() + 100);
            if (session.fatal().has_value()) break;
            if (!session.inputs_done()) continue;
            if (done_since_ms < 0) done_since_ms = context.clock().now_ms();
            if (context.clock().now_ms() - done_since_ms >= kSettleMs) break;
          }
          raw->stop();
          session.wake_all();
        });
        Env env{&context.clock(), &context.scheduler(), &context.random(), broker.get(), stores.get()};
        env.recorder = &session;
        const Status result = app->run(env);
        report.worker_result = result.ok() ? "ok" : result.error().to_string();
        finished = true;
      });
  executor.start(process);
  const int64_t recorded_ms = incarnation.events.empty() ? 0 : incarnation.events.back().time_ms();
  executor.run_until([&] { return finished; }, recorded_ms + kStuckAfterMs);
  report.virtual_ms = executor.now_ms();
  session.finish();
  report.inputs_consumed = session.inputs_consumed();
  report.inputs_total = session.inputs_total();
  report.sends_matched = session.sends_matched();
  report.sends_recorded = session.sends_recorded();
  report.sends_beyond_tail = session.sends_beyond_tail();
  report.divergences = session.divergences();
  report.first_divergence = session.first_divergence();
  report.fatal = session.fatal();
  if (!finished && !report.fatal.has_value()) {
    report.fatal = fmt::format(
        "the replayed worker did not finish within {} ms of virtual time after the "
        "recording's end; {} of {} inputs consumed",
        kStuckAfterMs, session.inputs_consumed(), session.inputs_total());
  }
  const size_t keep = std::min(lines.size(), kLogLinesKept);
  report.log.assign(lines.end() - static_cast<std::ptrdiff_t>(keep), lines.end());
  return report;
}

}  // namespace mephisto::replay
