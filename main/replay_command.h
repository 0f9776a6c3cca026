// `mephisto replay DIR`: replays every recorded worker incarnation in DIR (written by `mephisto worker
// --record` or `mephisto sim --trace`) in the deterministic simulator, and says whether each produced the
// recorded sends and table writes; on a mismatch, the first divergence (event index, worker, expected vs
// actual). A simulator recording is also re-run from its seed: the run hash must be the recorded one.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/app/app.h"

namespace CLI {
class App;
}

namespace mephisto::cli {

struct ReplayCommandOptions {
  std::string dir;
  std::string app;            // "" : the app each trace names
  int64_t stop_at = -1;       // replay the inputs before this event index only
  std::string inject;         // "fail-send@N" | "drop@N" ("" : none)
  std::string incarnation;    // "WRITER/N" : only that one ("" : all)
  bool verbose = false;       // the replayed workers' logs
  bool print_events = false;  // print the recorded events instead of replaying
};

void add_replay_command(CLI::App& app, ReplayCommandOptions& options, const std::vector<AppDefinition>& apps);
// Exit code: 0 identical (or a what-if ran), 1 a divergence, 2 bad input (no traces, a defective trace,
// an unknown app, a bad option).
int run_replay(const ReplayCommandOptions& options, const std::vector<AppDefinition>& apps);

// A simulator recording's run file (DIR/sim-run.txt), written by `mephisto sim --trace DIR`.
inline constexpr const char* kSimRunFile = "sim-run.txt";
inline constexpr const char* kSimScenarioFile = "scenario.textproto";

}  // namespace mephisto::cli
