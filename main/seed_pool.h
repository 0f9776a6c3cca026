// SeedPool: runs simulator seeds in parallel worker processes (fork), each run single-threaded and
// deterministic, and hands each seed's summary to the caller as it arrives. A simulation is a pure function
// of its seed, so a seed's result does not depend on which process ran it or on how many ran at once.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "sim/scenario/run_result.h"
#include "sim/scenario/runner.h"

namespace mephisto::cli {

// What a worker process sends back for one seed: the RunResult without its timeline, and one example per
// verdict.
using SeedSummary = sim::scenario::RunResult;

// run_scenario with its wall time filled in (RunResult::wall_ms: the simulator itself has no wall clock).
[[nodiscard]] SeedSummary run_timed(const sim::scenario::Scenario& scenario,
                                    const sim::scenario::RunOptions& options);

// Runs `run_one(seed)` for every seed, in `jobs` forked processes (jobs == 1: in this process), seed k of the
// list in process k % jobs. `on_result` gets each summary in completion order and returns false to stop early
// (the workers are then killed). A worker process that dies without reporting its seeds is reported as a
// failed summary for its next seed (passed = false, reproduce set, a verdict-less "worker process died"
// note), so nothing is silently dropped.
void run_seeds(const std::vector<uint64_t>& seeds, int jobs,
               const std::function<SeedSummary(uint64_t)>& run_one,
               const std::function<bool(const SeedSummary&)>& on_result);

}  // namespace mephisto::cli
