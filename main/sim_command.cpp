#include "main/sim_command.h"

#include <fmt/format.h>
#include <unistd.h>
#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "main/replay_command.h"
#include "main/seed_pool.h"
#include "runtime/cli/commands.h"
#include "runtime/seam/planted.h"
#include "sim/scenario/loader.h"
#include "sim/scenario/report_html.h"
#include "sim/scenario/runner.h"
#include "sim/scenario/shrink.h"

namespace mephisto::cli {
namespace {

namespace sc = sim::scenario;
namespace ms = mephisto::scenario;

constexpr size_t kMaxListedFailures = 10;

// Counts of each verdict status per invariant over the seeds run, and the first seed that failed each.
struct Tally {
  std::map<int, std::map<sc::VerdictStatus, int64_t>> counts;  // invariant -> status -> seeds
  std::map<int, uint64_t> first_failing_seed;
  std::vector<sc::RunResult> failures;  // in the order they arrived
  std::vector<sc::RunResult> all;
  int64_t passed = 0;
  int64_t done = 0;

  void add(const sc::RunResult& r) {
    ++done;
    if (r.passed) ++passed;
    for (const sc::Verdict& v : r.verdicts) {
      ++counts[v.invariant][v.status];
      if (sc::verdict_fails(v.status) && first_failing_seed.count(v.invariant) == 0) {
        first_failing_seed[v.invariant] = r.seed;
      }
    }
    if (!r.passed) failures.push_back(r);
    all.push_back(r);
  }
};

class Progress {
 public:
  Progress(int64_t total, bool enabled)
      : total_(total), enabled_(enabled && total > 1), tty_(::isatty(2) != 0) {}
  void update(const Tally& tally, double seeds_per_s) {
    if (!enabled_) return;
    constexpr int kWidth = 30;
    const int filled = static_cast<int>(kWidth * tally.done / std::max<int64_t>(1, total_));
    const std::string bar = std::string(static_cast<size_t>(filled), '#') +
                            std::string(static_cast<size_t>(kWidth - filled), '.');
    const std::string line = fmt::format("[{}] {}/{} seeds, {} failing, {:.1f} seeds/s", bar, tally.done,
                                         total_, tally.failures.size(), seeds_per_s);
    if (tty_) {
      std::fprintf(stderr, "\r%s", line.c_str());
      if (tally.done == total_) std::fprintf(stderr, "\n");
    } else if (tally.done * 10 / total_ != last_decile_ || tally.done == total_) {
      last_decile_ = tally.done * 10 / total_;
      std::fprintf(stderr, "%s\n", line.c_str());
    }
    std::fflush(stderr);
  }
  void finish() {
    if (enabled_ && tty_) std::fprintf(stderr, "\n");
  }

 private:
  int64_t total_;
  bool enabled_;
  bool tty_;
  int64_t last_decile_ = 0;
};

void print_table(const Tally& tally) {
  std::printf("\n%-22s %7s %8s %9s %9s %10s  %s\n", "invariant", "held", "allowed", "expected", "VIOLATED",
              "undecided", "first failing seed");
  for (int inv = ms::DUPLICATES; inv <= ms::DIFFERENTIAL; ++inv) {
    const auto it = tally.counts.find(inv);
    const auto count = [&](sc::VerdictStatus s) -> int64_t {
      if (it == tally.counts.end()) return 0;
      const auto c = it->second.find(s);
      return c == it->second.end() ? 0 : c->second;
    };
    if (count(sc::VerdictStatus::kNotChecked) == tally.done && tally.done > 0) {
      std::printf("%-22s %7s\n", sc::invariant_name(static_cast<sc::Invariant>(inv)).c_str(),
                  "(not checked)");
      continue;
    }
    const auto first = tally.first_failing_seed.find(inv);
    std::printf("%-22s %7lld %8lld %9lld %9lld %10lld  %s\n",
                sc::invariant_name(static_cast<sc::Invariant>(inv)).c_str(),
                static_cast<long long>(count(sc::VerdictStatus::kHeld)),
                static_cast<long long>(count(sc::VerdictStatus::kAllowed)),
                static_cast<long long>(count(sc::VerdictStatus::kExpectedSeen)),
                static_cast<long long>(count(sc::VerdictStatus::kViolated) +
                                       count(sc::VerdictStatus::kExpectedMissing)),
                static_cast<long long>(count(sc::VerdictStatus::kUndecided)),
                first == tally.first_failing_seed.end() ? "-" : std::to_string(first->second).c_str());
  }
}

std::string first_problem(const sc::RunResult& r) {
  for (const sc::Verdict& v : r.verdicts) {
    if (!sc::verdict_fails(v.status)) continue;
    std::string text = sc::invariant_name(v.invariant) + " " + sc::verdict_status_name(v.status);
    if (!v.examples.empty()) text += ": " + v.examples.front().text;
    if (v.examples.empty() && !v.note.empty()) text += ": " + v.note;
    return text;
  }
  return r.verdicts.empty() ? r.reproduce : "";
}

// The run file of a recording (replay_command.h): what `mephisto replay` re-runs to compare run hashes.
void write_sim_run(const SimOptions& o, const sc::RunResult& r, const std::string& planted_name) {
  const std::filesystem::path dir(o.record_dir);
  std::error_code copied;
  std::filesystem::copy_file(o.scenario, dir / kSimScenarioFile,
                             std::filesystem::copy_options::overwrite_existing, copied);
  std::ofstream out(dir / kSimRunFile);
  out << "scenario_file: " << o.scenario << "\n"
      << "seed: " << r.seed << "\n"
      << "planted: " << (planted_name.empty() ? "none" : planted_name) << "\n"
      << "run_hash: " << fmt::format("{:016x}", r.run_hash) << "\n"
      << "passed: " << (r.passed ? "yes" : "no") << "\n";
  if (copied || !out) print_error("--trace " + o.record_dir + ": cannot write the run file");
}

std::string trace_path_for(const SimOptions& o, const sc::Scenario& s, uint64_t seed,
                           const std::string& planted) {
  return fmt::format("{}/{}{}-seed-{}.trace", o.trace_dir, s.name(), planted.empty() ? "" : "-" + planted,
                     seed);
}

int list_planted() {
  std::printf(
      "Planted bugs (switch one on with `mephisto sim <scenario> --planted NAME`; simulator only):\n");
  for (const PlantedBugInfo& info : planted_bugs()) {
    std::printf("  %-30s %s\n", std::string(info.name).c_str(), std::string(info.what).c_str());
  }
  return kExitOk;
}

}  // namespace

int run_sim(const SimOptions& o, const std::vector<AppDefinition>& apps) {
  if (o.list_planted) return list_planted();
  if (o.scenario.empty()) {
    print_error(
        "mephisto sim needs a scenario file, e.g. `mephisto sim scenarios/flagship.textproto --seeds 100`");
    return kExitUsage;
  }
  Result<sc::Scenario> loaded = sc::load_scenario_file(o.scenario, apps);
  if (!loaded.ok()) {
    print_error(loaded.error().message);
    return kExitUsage;
  }
  const sc::Scenario& scenario = *loaded;
  const AppDefinition* app = sc::find_scenario_app(apps, scenario.app().name()).value();
  PlantedBug planted = PlantedBug::kNone;
  if (!o.planted.empty()) {
    const auto bug = planted_bug_named(o.planted);
    if (!bug) {
      std::string names;
      for (const PlantedBugInfo& info : planted_bugs()) names += " " + std::string(info.name);
      print_error("--planted: no planted bug named '" + o.planted + "'; the catalogue:" + names);
      return kExitUsage;
    }
    planted = *bug;
  }
  if (o.seed >= 0 && o.seeds > 0) {
    print_error("--seed and --seeds: give one seed or a number of seeds, not both");
    return kExitUsage;
  }
  std::vector<uint64_t> seeds;
  if (o.seed >= 0) {
    seeds.push_back(static_cast<uint64_t>(o.seed));
  } else {
    const int64_t n = o.seeds > 0 ? o.seeds : (planted != PlantedBug::kNone ? 100 : 1);
    for (int64_t i = 0; i < n; ++i) seeds.push_back(o.first_seed + static_cast<uint64_t>(i));
  }
  if (!o.record_dir.empty()) {
    if (seeds.size() != 1) {
      print_error("--trace records one run: give it one --seed");
      return kExitUsage;
    }
    std::error_code made;
    std::filesystem::create_directories(o.record_dir, made);
    if (made || !std::filesystem::is_directory(o.record_dir)) {
      print_error("--trace " + o.record_dir + ": cannot create the directory" +
                  (made ? ": " + made.message() : ""));
      return kExitUsage;
    }
    for (const auto& entry : std::filesystem::directory_iterator(o.record_dir)) {
      if (entry.path().extension() == ".mtrace" || entry.path().filename() == kSimRunFile) {
        print_error("--trace " + o.record_dir + ": already holds a recording; give an empty directory");
        return kExitUsage;
      }
    }
  }
  std::error_code ignored;
  std::filesystem::create_directories(o.trace_dir, ignored);
  const std::string planted_name = planted == PlantedBug::kNone ? "" : std::string(planted_bug_name(planted));

  // The options every run of this command shares; the callers add what differs.
  const auto base_run_options = [&](uint64_t seed) {
    sc::RunOptions options;
    options.app = app;
    options.program = o.program;
    options.seed = seed;
    options.planted = planted;
    options.scenario_file = o.scenario;
    return options;
  };
  const auto run_one = [&](uint64_t seed) {
    sc::RunOptions options = base_run_options(seed);
    options.timeline = false;
    options.trace_path = trace_path_for(o, scenario, seed, planted_name);
    options.trace_always = o.keep_traces;
    options.record_dir = o.record_dir;
    return run_timed(scenario, options);
  };

  std::printf("scenario %s (%s): %zu seed(s) from %llu, %d job(s)%s\n", scenario.name().c_str(),
              o.scenario.c_str(), seeds.size(), static_cast<unsigned long long>(seeds.front()), o.jobs,
              planted_name.empty() ? "" : (", planted bug " + planted_name).c_str());
  std::fflush(stdout);
  Tally tally;
  Progress progress(static_cast<int64_t>(seeds.size()), !o.quiet);
  std::set<uint64_t> done_seeds;
  std::optional<size_t>
      detected_index;  // planted: index in `seeds` of the first failing seed, once all before it ran
  const auto wall_start = std::chrono::steady_clock::now();
  std::optional<sc::RunResult> app_error;  // the first run that found a problem with the app itself
  run_seeds(seeds, o.jobs, run_one, [&](const sc::RunResult& r) {
    if (!r.app_error.empty()) {
      app_error = r;
      return false;
    }
    if (!o.record_dir.empty()) write_sim_run(o, r, planted_name);
    tally.add(r);
    done_seeds.insert(r.seed);
    if (o.verbose) {
      std::printf("seed %llu: %s run hash %016llx, %lld ms wall%s%s\n",
                  static_cast<unsigned long long>(r.seed), r.passed ? "pass" : "FAIL",
                  static_cast<unsigned long long>(r.run_hash), static_cast<long long>(r.wall_ms),
                  r.passed ? "" : ": ", r.passed ? "" : first_problem(r).c_str());
      std::fflush(stdout);
    }
    const double elapsed_s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
    progress.update(tally, static_cast<double>(tally.done) / std::max(elapsed_s, 1e-3));
    if (planted == PlantedBug::kNone) return true;
    // Seeds-to-detect counts in seed order, whatever order the jobs finish in: stop once the earliest failing
    // seed has every seed before it done.
    for (size_t i = 0; i < seeds.size(); ++i) {
      if (done_seeds.count(seeds[i]) == 0) return true;
      const bool failed = std::any_of(tally.failures.begin(), tally.failures.end(),
                                      [&](const sc::RunResult& f) { return f.seed == seeds[i]; });
      if (failed) {
        detected_index = i;
        return false;
      }
    }
    return true;
  });
  progress.finish();
  if (app_error) {
    print_error(fmt::format("seed {}: {}\n  reproduce: {}", app_error->seed, app_error->app_error,
                            app_error->reproduce));
    return kExitUsage;
  }
  const double wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();

  print_table(tally);
  std::printf("\n%lld seed(s) in %.1f s wall (%.0f seeds/hour with %d job(s)); %lld passed, %zu failed\n",
              static_cast<long long>(tally.done), wall_s,
              static_cast<double>(tally.done) * 3600.0 / std::max(wall_s, 1e-3), o.jobs,
              static_cast<long long>(tally.passed), tally.failures.size());
  std::sort(tally.failures.begin(), tally.failures.end(),
            [](const sc::RunResult& a, const sc::RunResult& b) { return a.seed < b.seed; });
  for (size_t i = 0; i < tally.failures.size() && i < kMaxListedFailures; ++i) {
    const sc::RunResult& f = tally.failures[i];
    std::printf("FAIL seed %llu: %s\n  reproduce: %s\n  trace: %s\n", static_cast<unsigned long long>(f.seed),
                first_problem(f).c_str(), f.reproduce.c_str(),
                trace_path_for(o, scenario, f.seed, planted_name).c_str());
  }
  if (tally.failures.size() > kMaxListedFailures) {
    std::printf("... and %zu more failing seed(s)\n", tally.failures.size() - kMaxListedFailures);
  }

  if (!o.report.empty()) {
    // The detailed run (the first failing seed, else the first seed) is run again here with its timeline: a
    // seed is a pure function, so this is the same run the workers did.
    const uint64_t detailed_seed = tally.failures.empty() ? seeds.front() : tally.failures.front().seed;
    sc::RunOptions options = base_run_options(detailed_seed);
    options.timeline = true;
    sc::RunResult detailed = sc::run_scenario(scenario, options);
    sc::ReportInput input;
    input.title = "mephisto sim: " + scenario.name();
    input.scenario_file = o.scenario;
    input.description = scenario.description();
    std::sort(tally.all.begin(), tally.all.end(),
              [](const sc::RunResult& a, const sc::RunResult& b) { return a.seed < b.seed; });
    input.runs = tally.all;
    for (size_t i = 0; i < input.runs.size(); ++i) {
      if (input.runs[i].seed == detailed_seed) {
        detailed.wall_ms = input.runs[i].wall_ms;
        input.runs[i] = detailed;
        input.detailed = i;
      }
    }
    std::ofstream out(o.report);
    out << sc::render_report_html(input);
    if (!out) {
      print_error("--report: cannot write " + o.report);
      return kExitUsage;
    }
    std::printf("report: %s (timeline of seed %llu)\n", o.report.c_str(),
                static_cast<unsigned long long>(detailed_seed));
  }

  if (o.shrink) {
    if (tally.failures.empty()) {
      std::printf("shrink: no failing seed to shrink\n");
    } else {
      const uint64_t seed = tally.failures.front().seed;
      const sc::RunOptions options = base_run_options(seed);
      std::printf("shrinking seed %llu's fault plan (%zu fault(s); at most %d runs)\n",
                  static_cast<unsigned long long>(seed), tally.failures.front().fault_plan.size(),
                  o.shrink_max_runs);
      std::fflush(stdout);
      const sc::ShrinkResult shrunk = sc::shrink_failure(scenario, options, o.shrink_max_runs, [&](int runs) {
        if (!o.quiet && ::isatty(2) != 0) std::fprintf(stderr, "\r  %d run(s)", runs);
      });
      if (!o.quiet && ::isatty(2) != 0) std::fprintf(stderr, "\n");
      const std::string path = o.shrink_out.empty() ? fmt::format("{}/{}-seed-{}-shrunk.textproto",
                                                                  o.trace_dir, scenario.name(), seed)
                                                    : o.shrink_out;
      std::ofstream out(path);
      out << "# " << shrunk.minimal.description()
          << "\n# reproduce: " << sc::reproduce_line(o.program, path, seed, planted) << "\n"
          << sc::scenario_to_text(shrunk.minimal);
      for (const std::string& step : shrunk.steps) std::printf("  %s\n", step.c_str());
      std::printf("shrunk in %d run(s) to %d fault(s): %s\n  still fails: %s\n  reproduce: %s\n", shrunk.runs,
                  shrunk.minimal.fault_size(), path.c_str(), first_problem(shrunk.failing).c_str(),
                  sc::reproduce_line(o.program, path, seed, planted).c_str());
    }
  }

  if (planted != PlantedBug::kNone) {
    if (detected_index) {
      std::printf("planted bug %s: DETECTED after %zu seed(s) (seed %llu: %s)\n", planted_name.c_str(),
                  *detected_index + 1, static_cast<unsigned long long>(seeds[*detected_index]),
                  first_problem(tally.failures.front()).c_str());
      return kExitOk;
    }
    std::printf("planted bug %s: NOT detected in %zu seed(s)\n", planted_name.c_str(), seeds.size());
    return kExitFailure;
  }
  std::printf("verdict: %s\n", tally.failures.empty() ? "PASS" : "FAIL");
  return tally.failures.empty() ? kExitOk : kExitFailure;
}

void add_sim_command(CLI::App& app, SimOptions& o, const std::vector<AppDefinition>& apps) {
  auto* sim = app.add_subcommand(
      "sim", "Run a failure scenario in the simulator over one or many seeds and check its invariants");
  sim->add_option("scenario", o.scenario, "Scenario file (scenarios/*.textproto)");
  sim->add_option("--seed", o.seed, "Run this one seed")->check(CLI::NonNegativeNumber);
  sim->add_option("--seeds", o.seeds, "Run this many seeds (from --first-seed)")
      ->check(CLI::Range(1, 100'000'000));
  sim->add_option("--first-seed", o.first_seed, "First seed of --seeds");
  sim->add_option("--jobs,-j", o.jobs, "Worker processes running seeds in parallel")
      ->check(CLI::Range(1, 64));
  sim->add_option("--report", o.report, "Write a self-contained HTML report here");
  sim->add_option("--trace-dir", o.trace_dir, "Where failing seeds' traces (and shrunk scenarios) go");
  sim->add_option("--trace", o.record_dir,
                  "Record the workers of one --seed's run into this directory, for `mephisto replay`");
  sim->add_flag("--keep-traces", o.keep_traces,
                "Write every seed's trace to --trace-dir, not only failing ones");
  sim->add_flag("--shrink", o.shrink,
                "Minimise the first failing seed's fault plan; write the minimal scenario");
  sim->add_option("--shrink-out", o.shrink_out, "Where --shrink writes the minimal scenario");
  sim->add_option("--shrink-max-runs", o.shrink_max_runs, "Runs --shrink may take")
      ->check(CLI::Range(1, 100'000));
  sim->add_option("--planted", o.planted,
                  "Switch on a planted bug and run seeds until it is detected (see --list-planted)");
  sim->add_flag("--list-planted", o.list_planted, "List the planted bugs");
  sim->add_flag("--quiet,-q", o.quiet, "No progress bar");
  sim->add_flag("--verbose,-v", o.verbose, "One line per seed (verdict, run hash, wall time)");
  sim->callback([&o, &apps] {
    if (const int code = run_sim(o, apps); code != 0) throw CLI::RuntimeError(code);
  });
}

}  // namespace mephisto::cli
