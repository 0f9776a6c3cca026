// The scenario runner: one run of a loaded scenario (loader.h) with one seed, in the simulator, checked by
// the checkers (checkers.h). A run is a pure function of (scenario, seed, planted bug): the same three give
// the same run hash, history and verdicts.
//
// Phases of a run (virtual time from the start of the chaos phase, after the topics exist and the workers
// were added): the workload producer writes workload.events unique values "v<i>" at workload.rate_per_s from
// workload.start_ms; the fault plan runs (each fault undone after its duration, all of them by
// phases.chaos_ms); at chaos_ms everything is healed (links, brokers, paused and stopped workers); the
// liveness phase then runs until the run settles (workload done, the group's committed offsets at the input's
// end, no open transaction on the output or changelog) or phases.liveness_bound_ms passes; then the checkers
// read the history and logs.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "models/scenario.pb.h"
#include "runtime/app/app.h"
#include "runtime/seam/planted.h"
#include "sim/scenario/run_result.h"

namespace mephisto::sim::scenario {

using mephisto::scenario::Fault;
using mephisto::scenario::Scenario;

struct RunOptions {
  // The scenario's app (find_scenario_app over the binary's apps): its definition runs in every worker, its
  // ScenarioSupport supplies the workload and the model. Required; must be the app the scenario names.
  const AppDefinition* app = nullptr;
  uint64_t seed = 1;
  PlantedBug planted = PlantedBug::kNone;
  // The program and the file the scenario came from, for the reproduction line ("" : "<scenario>"): the
  // binary's name ("mephisto", or a user's binary built on mephisto::main).
  std::string program = "mephisto";
  std::string scenario_file;
  // Build the report's timeline and ownership spans (costs a pass over the history).
  bool timeline = true;
  // Write the run's trace (event log, history, worker logs) to this path when the run fails, or always if
  // `trace_always`. "" writes nothing.
  std::string trace_path;
  bool trace_always = false;
  // Record every worker's decisions (runtime/trace) into this directory, for `mephisto replay`: one writer per
  // worker ("sim-worker-<i>"), faults noted in the workers' traces. "" records nothing.
  std::string record_dir;
};

// Runs the scenario. Precondition: `scenario` came from parse_scenario/load_scenario_file (defaults filled,
// valid). Never throws for a failing run: failures are verdicts.
[[nodiscard]] RunResult run_scenario(const Scenario& scenario, const RunOptions& options);

// The faults a seed runs: the scenario's timed faults, or those the swarm profile draws for the seed (a
// deterministic function of the seed), sorted by start time.
[[nodiscard]] std::vector<Fault> fault_plan(const Scenario& scenario, const ScenarioSupport& app,
                                            uint64_t seed);
// A fault of `kind` for the scenario, its targets chosen by two numbers (for generators: the swarm's draws
// and the property tests' shrinkable values): `target` picks the worker (target % workers), broker, partition
// (of the app's input or output topic) or coordinator; `broker_mask` the brokers a worker's links to are cut
// or clogged (bit b-1 for broker b; 0: the group's coordinator). at_ms is clamped into the chaos phase,
// duration_ms to at least 1.
[[nodiscard]] Fault make_fault(const Scenario& scenario, const ScenarioSupport& app,
                               mephisto::scenario::FaultKind kind, int64_t at_ms, int64_t duration_ms,
                               int32_t target, int32_t broker_mask);
// One line: "crash-worker(w0, wipe)@12000+5000", "crash-broker(leader of count-events/0)@3000+8000".
[[nodiscard]] std::string fault_text(const Fault& fault);
// The reproduction line for a run.
[[nodiscard]] std::string reproduce_line(const std::string& program, const std::string& scenario_file,
                                         uint64_t seed, PlantedBug planted);

}  // namespace mephisto::sim::scenario
