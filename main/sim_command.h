// `mephisto sim <scenario>`: runs a failure scenario (scenarios/*.textproto, sim/scenario/README.md) over one
// seed or many, in parallel worker processes, and prints a verdict per invariant. On a failing seed: its
// one-line reproduction, its trace on disk, exit code 1. Also: --shrink (minimal failing scenario file),
// --planted NAME (seeds until a planted bug is detected), --report FILE (a self-contained HTML page).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/app/app.h"

namespace CLI {
class App;
}

namespace mephisto::cli {

struct SimOptions {
  std::string program = "mephisto";  // the binary's name, for reproduction lines
  std::string scenario;              // the scenario file
  int64_t seed = -1;                 // one seed (-1: not given)
  int64_t seeds = 0;                 // how many seeds, from first_seed (0: not given)
  uint64_t first_seed = 1;
  int jobs = 1;                          // worker processes running seeds in parallel
  std::string report;                    // HTML report path ("" : none)
  std::string trace_dir = "sim-traces";  // where failing runs' traces go
  bool keep_traces = false;              // write every seed's trace, not only failing ones
  bool shrink = false;
  std::string shrink_out;  // the shrunk scenario's path ("" : next to the traces)
  int shrink_max_runs = 200;
  std::string planted;  // a planted bug's name ("" : none)
  bool list_planted = false;
  bool quiet = false;    // no progress bar
  bool verbose = false;  // one line per seed: verdict, run hash, wall time
  // Record the workers' decisions of one seed's run into this directory (`mephisto replay DIR` replays them
  // and re-runs the seed for its run hash). "" : none.
  std::string record_dir;
};

// Adds the `sim` subcommand to `app`; its callback runs the command and throws CLI::RuntimeError(code) on a
// non-zero exit code (run_cli's convention).
// `apps` are the binary's apps; a scenario names one of them (and the vector must outlive the command).
void add_sim_command(CLI::App& app, SimOptions& options, const std::vector<AppDefinition>& apps);
// The command itself. Returns the exit code: 0 every seed passed (a planted bug: it was detected), 1 a seed
// failed (a planted bug: not detected within the seeds), 2 usage (bad scenario file, bad option).
int run_sim(const SimOptions& options, const std::vector<AppDefinition>& apps);

}  // namespace mephisto::cli
