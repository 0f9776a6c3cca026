// bench_sim_seeds: how many seeds of a failure scenario `mephisto sim` checks per hour on this machine (issue
// #7, item 9: the flagship scenario, 60 virtual seconds of chaos, --jobs 2; goal >= 10,000 seeds/hour).
//
//   build/bin/bench_sim_seeds [--scenario scenarios/flagship.textproto] [--seeds 600] [--jobs 2]
//
// Runs the seeds through the same fork-based pool and the same runner as `mephisto sim` (checkers included,
// no report, no traces), first with --jobs, then with one job for comparison, and prints seeds/hour, the mean
// wall time per seed and the virtual time a seed covers (chaos phase + the liveness phase until it settled).
// Every seed must pass (a failing seed is a finding, printed with its reproduction line, and the exit code is
// 1).
#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdio>

#include "agents/examples.h"
#include "main/seed_pool.h"
#include "sim/scenario/loader.h"
#include "sim/scenario/runner.h"

namespace {

using namespace mephisto;
namespace sc = mephisto::sim::scenario;

struct Round {
  double wall_s = 0;
  int64_t seeds = 0;
  int64_t failed = 0;
  double virtual_s = 0;    // summed over seeds: chaos start to the end of the run
  double run_wall_ms = 0;  // summed per-seed wall time
};

Round round(const sc::Scenario& s, const AppDefinition& app, const std::string& file, int64_t seeds,
            int jobs) {
  std::vector<uint64_t> list;
  for (int64_t i = 1; i <= seeds; ++i) list.push_back(static_cast<uint64_t>(i));
  Round r;
  const auto start = std::chrono::steady_clock::now();
  cli::run_seeds(
      list, jobs,
      [&](uint64_t seed) {
        sc::RunOptions options;
        options.app = &app;
        options.seed = seed;
        options.scenario_file = file;
        options.timeline = false;
        return cli::run_timed(s, options);
      },
      [&](const sc::RunResult& result) {
        ++r.seeds;
        r.virtual_s += static_cast<double>(result.end_ms) / 1000.0;
        r.run_wall_ms += static_cast<double>(result.wall_ms);
        if (!result.passed) {
          ++r.failed;
          std::printf("FAILED seed %llu: %s\n", static_cast<unsigned long long>(result.seed),
                      result.reproduce.c_str());
        }
        return true;
      });
  r.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return r;
}

void print(const char* label, const Round& r, int jobs) {
  std::printf(
      "%-8s jobs=%d: %lld seeds in %.2f s wall = %.0f seeds/hour; %.1f ms wall per seed; %.1f virtual s per "
      "seed (%.0fx faster than real time per job)\n",
      label, jobs, static_cast<long long>(r.seeds), r.wall_s,
      static_cast<double>(r.seeds) * 3600.0 / r.wall_s, r.run_wall_ms / static_cast<double>(r.seeds),
      r.virtual_s / static_cast<double>(r.seeds), r.virtual_s * 1000.0 / r.run_wall_ms);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Seeds per hour of a failure scenario, through mephisto sim's seed pool"};
  std::string file = std::string(MEPHISTO_SOURCE_DIR) + "/scenarios/flagship.textproto";
  int64_t seeds = 600;
  int jobs = 2;
  app.add_option("--scenario", file, "Scenario file");
  app.add_option("--seeds", seeds, "Seeds per round")->check(CLI::Range(1, 10'000'000));
  app.add_option("--jobs", jobs, "Worker processes")->check(CLI::Range(1, 64));
  CLI11_PARSE(app, argc, argv);
  const std::vector<AppDefinition> apps = examples::example_apps();
  Result<sc::Scenario> s = sc::load_scenario_file(file, apps);
  if (!s.ok()) {
    std::fprintf(stderr, "error: %s\n", s.error().message.c_str());
    return 2;
  }
  std::printf("scenario %s: chaos phase %lld virtual s, liveness bound %lld virtual s\n", s->name().c_str(),
              static_cast<long long>(s->phases().chaos_ms() / 1000),
              static_cast<long long>(s->phases().liveness_bound_ms() / 1000));
  const AppDefinition& scenario_app = *sc::find_scenario_app(apps, s->app().name()).value();
  const Round parallel = round(*s, scenario_app, file, seeds, jobs);
  print("parallel", parallel, jobs);
  const Round single = round(*s, scenario_app, file, std::max<int64_t>(1, seeds / 2), 1);
  print("single", single, 1);
  std::printf("seeds/hour with %d jobs: %.0f (goal >= 10000); speed-up over one job: %.2fx\n", jobs,
              static_cast<double>(parallel.seeds) * 3600.0 / parallel.wall_s,
              (static_cast<double>(parallel.seeds) / parallel.wall_s) /
                  (static_cast<double>(single.seeds) / single.wall_s));
  return parallel.failed + single.failed == 0 ? 0 : 1;
}
