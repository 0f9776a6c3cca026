#include "main/replay_command.h"

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "runtime/cli/commands.h"
#include "runtime/trace/trace_reader.h"
#include "sim/replay/replayer.h"
#include "sim/scenario/loader.h"
#include "sim/scenario/runner.h"

namespace mephisto::cli {
namespace {

constexpr int kExitDiverged = 1;
constexpr size_t kLogLinesShown = 40;

struct Injection {
  replay::InjectedFault fault = replay::InjectedFault::kNone;
  int64_t at = -1;
};

Result<Injection> parse_injection(const std::string& text) {
  if (text.empty()) return Injection{};
  const size_t at = text.find('@');
  const std::string kind = text.substr(0, at);
  Injection out;
  if (kind == "fail-send") {
    out.fault = replay::InjectedFault::kFailSend;
  } else if (kind == "drop") {
    out.fault = replay::InjectedFault::kDrop;
  } else {
    return Error::of(ErrorCode::kInvalidArg,
                     "--inject '" + text + "': unknown fault '" + kind + "'; expected fail-send@N or drop@N");
  }
  try {
    if (at == std::string::npos) throw std::invalid_argument("no @");
    size_t used = 0;
    out.at = std::stoll(text.substr(at + 1), &used);
    if (used != text.size() - at - 1 || out.at < 0) throw std::invalid_argument("not a number");
  } catch (const std::exception&) {
    return Error::of(ErrorCode::kInvalidArg,
                     "--inject '" + text + "': expected KIND@N with N an event index >= 0");
  }
  return out;
}

// A simulator recording: re-run the scenario from its seed; the run hash must be the recorded one.
int check_sim_run(const std::string& dir, const std::vector<AppDefinition>& apps, bool& checked) {
  const std::filesystem::path run_file = std::filesystem::path(dir) / kSimRunFile;
  if (!std::filesystem::exists(run_file)) return kExitOk;
  checked = true;
  std::ifstream in(run_file);
  std::map<std::string, std::string> fields;
  std::string line;
  while (std::getline(in, line)) {
    const size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string value = line.substr(colon + 1);
    value.erase(0, value.find_first_not_of(' '));
    fields[line.substr(0, colon)] = value;
  }
  if (fields.count("seed") == 0 || fields.count("run_hash") == 0) {
    print_error(run_file.string() + ": no seed or run_hash line: not a recording of `mephisto sim --trace`");
    return kExitUsage;
  }
  const std::string scenario_path = (std::filesystem::path(dir) / kSimScenarioFile).string();
  auto scenario = sim::scenario::load_scenario_file(scenario_path, apps);
  if (!scenario.ok()) {
    print_error(scenario_path + ": " + scenario.error().message);
    return kExitUsage;
  }
  sim::scenario::RunOptions run_options;
  run_options.app = sim::scenario::find_scenario_app(apps, scenario->app().name()).value();
  try {
    run_options.seed = std::stoull(fields["seed"]);
  } catch (const std::exception&) {
    print_error(run_file.string() + ": seed '" + fields["seed"] + "' is not a number");
    return kExitUsage;
  }
  if (!fields["planted"].empty() && fields["planted"] != "none") {
    const std::optional<PlantedBug> planted = planted_bug_named(fields["planted"]);
    if (!planted.has_value()) {
      print_error(run_file.string() + ": unknown planted bug '" + fields["planted"] + "'");
      return kExitUsage;
    }
    run_options.planted = *planted;
  }
  run_options.timeline = false;
  const sim::scenario::RunResult result = sim::scenario::run_scenario(*scenario, run_options);
  const std::string hash = fmt::format("{:016x}", result.run_hash);
  const bool same = hash == fields["run_hash"];
  std::printf("simulator run: %s seed %llu: run hash %s, recorded %s: %s\n", fields["scenario_file"].c_str(),
              static_cast<unsigned long long>(run_options.seed), hash.c_str(), fields["run_hash"].c_str(),
              same ? "same" : "DIFFERENT");
  return same ? kExitOk : kExitDiverged;
}

}  // namespace

void add_replay_command(CLI::App& app, ReplayCommandOptions& options,
                        const std::vector<AppDefinition>& apps) {
  auto* replay = app.add_subcommand("replay",
                                    "Replay recorded workers (mephisto worker --record, mephisto sim "
                                    "--trace) in the deterministic simulator "
                                    "and report the first divergence from the recording");
  replay->add_option("dir", options.dir, "The recording's directory")->required();
  replay->add_option("--app", options.app, "Replay with this app instead of the one each trace names");
  replay->add_option("--stop-at", options.stop_at, "Feed only the inputs before this event index");
  replay->add_option(
      "--inject", options.inject,
      "What-if: a fault at an event, fail-send@N (the first send for an input at or after event N "
      "fails) or drop@N (the batch at event N never arrives)");
  replay->add_option("--incarnation", options.incarnation, "Replay only WRITER/N");
  replay->add_flag("-v,--verbose", options.verbose, "Print the replayed workers' log lines");
  replay->add_flag("--print-events", options.print_events,
                   "Print the recorded events, one line each, instead of replaying");
  replay->callback([&options, &apps] {
    if (const int code = run_replay(options, apps); code != 0) throw CLI::RuntimeError(code);
  });
}

int run_replay(const ReplayCommandOptions& options, const std::vector<AppDefinition>& apps) {
  // One line per incarnation as it is done, also into a pipe (a long replay shows its progress).
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  auto injection = parse_injection(options.inject);
  if (!injection.ok()) {
    print_error(injection.error().message);
    return kExitUsage;
  }
  const auto wall_start = std::chrono::steady_clock::now();
  bool sim_checked = false;
  const int sim_code = options.print_events ? kExitOk : check_sim_run(options.dir, apps, sim_checked);
  if (sim_code == kExitUsage) return sim_code;

  auto traces = trace::read_trace_dir(options.dir);
  if (!traces.ok()) {
    print_error(traces.error().message);
    return kExitUsage;
  }
  for (const std::string& skipped : traces->skipped) std::printf("skipped: %s\n", skipped.c_str());

  replay::ReplayOptions replay_options;
  replay_options.stop_at = options.stop_at;
  replay_options.fault = injection->fault;
  replay_options.fault_at = injection->at;

  uint64_t events = 0;
  uint64_t sends = 0;
  int replayed = 0;
  std::optional<std::pair<replay::IncarnationReport, replay::Divergence>> first;
  bool fatal = false;
  for (const trace::Incarnation& incarnation : traces->incarnations) {
    const std::string name =
        fmt::format("{}/{}", incarnation.header.writer_name(), incarnation.header.incarnation());
    if (!options.incarnation.empty() && options.incarnation != name) continue;
    if (options.print_events) {
      std::printf("incarnation %s (worker %s, app %s, %s, %s):\n", name.c_str(),
                  incarnation.header.worker_id().c_str(), incarnation.header.app_name().c_str(),
                  incarnation.header.source().c_str(), incarnation.header.payloads() ? "payloads" : "hashes");
      for (const trace::Event& event : incarnation.events) {
        std::printf("%s\n", replay::describe_trace_event(event).c_str());
      }
      ++replayed;
      continue;
    }
    const std::string app_name = options.app.empty() ? incarnation.header.app_name() : options.app;
    const AppDefinition* definition = nullptr;
    for (const AppDefinition& candidate : apps) {
      if (candidate.name == app_name) definition = &candidate;
    }
    if (definition == nullptr) {
      std::string known;
      for (const AppDefinition& candidate : apps) known += (known.empty() ? "" : ", ") + candidate.name;
      if (!options.app.empty()) {
        print_error(fmt::format(
            "--app {}: this binary has no such app (its apps: {}); incarnation {} was recorded by "
            "app '{}'",
            options.app, known, name, incarnation.header.app_name()));
      } else {
        print_error(
            fmt::format("incarnation {} was recorded by app '{}', which this binary does not have (its apps: "
                        "{}); replay it with the binary that runs that app, or pick one with --app NAME",
                        name, app_name, known));
      }
      return kExitUsage;
    }
    auto report = replay::replay_incarnation(incarnation, *definition, replay_options);
    if (!report.ok()) {
      print_error(report.error().message);
      return kExitUsage;
    }
    ++replayed;
    events += report->events;
    sends += report->sends_matched;
    std::string notes;
    if (report->truncated) {
      notes += fmt::format(" (torn tail: the worker died while writing; {} send(s) beyond it not compared)",
                           report->sends_beyond_tail);
    } else if (!report->complete) {
      notes += fmt::format(
          " (the recording ends without a stop: the worker was killed; {} send(s) beyond it "
          "not compared)",
          report->sends_beyond_tail);
    }
    const char* verdict = report->identical() ? "identical" : "DIVERGED";
    std::printf("incarnation %s (worker %s): %llu events, %llu/%llu inputs, %llu/%llu sends, %s%s\n",
                name.c_str(), report->worker_id.c_str(), static_cast<unsigned long long>(report->events),
                static_cast<unsigned long long>(report->inputs_consumed),
                static_cast<unsigned long long>(report->inputs_total),
                static_cast<unsigned long long>(report->sends_matched),
                static_cast<unsigned long long>(report->sends_recorded), verdict, notes.c_str());
    if (report->fatal.has_value()) {
      fatal = true;
      std::printf("  stopped: %s\n", report->fatal->c_str());
      for (const replay::Divergence& divergence : report->divergences) {
        if (divergence.what != "app") continue;
        print_error(fmt::format("incarnation {}: {}", name, *report->fatal));
        return kExitUsage;
      }
    }
    if (options.verbose || report->fatal.has_value()) {
      const size_t from = report->log.size() > kLogLinesShown ? report->log.size() - kLogLinesShown : 0;
      for (size_t i = options.verbose ? 0 : from; i < report->log.size(); ++i) {
        std::printf("    %s\n", report->log[i].c_str());
      }
    }
    if (options.verbose) {
      for (const replay::Divergence& divergence : report->divergences) {
        std::printf("  divergence at event %llu: %s\n    expected: %s\n    actual:   %s\n",
                    static_cast<unsigned long long>(divergence.event_index), divergence.what.c_str(),
                    divergence.expected.c_str(), divergence.actual.c_str());
      }
    }
    if (report->first_divergence.has_value() && !first.has_value())
      first.emplace(*report, *report->first_divergence);
  }
  if (replayed == 0) {
    print_error(options.incarnation.empty() ? "no incarnation to replay in " + options.dir
                                            : "no incarnation " + options.incarnation + " in " + options.dir);
    return kExitUsage;
  }
  if (options.print_events) return kExitOk;
  const double wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
  const std::string figures =
      fmt::format("{} incarnation(s), {} events, {} sends matched, {:.2f} s, {:.0f} events/s", replayed,
                  events, sends, wall_s, wall_s > 0 ? events / wall_s : 0.0);
  if (first.has_value()) {
    const auto& [report, divergence] = *first;
    std::printf("first divergence: event %llu, worker %s (%s/%llu): %s\n  expected: %s\n  actual:   %s\n",
                static_cast<unsigned long long>(divergence.event_index), report.worker_id.c_str(),
                report.writer.c_str(), static_cast<unsigned long long>(report.incarnation),
                divergence.what.c_str(), divergence.expected.c_str(), divergence.actual.c_str());
  }
  if (injection->fault != replay::InjectedFault::kNone) {
    std::printf("replay: what-if %s ran: %s (%s)\n", options.inject.c_str(),
                first.has_value() ? "the outputs differ from the recording from the event above"
                                  : "the outputs are the recorded ones",
                figures.c_str());
    return kExitOk;
  }
  if (first.has_value() || fatal || sim_code != kExitOk) {
    std::printf("replay: DIVERGED (%s)\n", figures.c_str());
    return kExitDiverged;
  }
  std::printf("replay: identical (%s)%s\n", figures.c_str(),
              sim_checked ? ", simulator run hash reproduced" : "");
  return kExitOk;
}

}  // namespace mephisto::cli
