// Shrinking a failing run: the smallest fault plan (fewer faults, earlier, shorter) that still fails the same
// way with the same seed, as a scenario file a user can keep (`mephisto sim ... --shrink`).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "sim/scenario/runner.h"

namespace mephisto::sim::scenario {

struct ShrinkResult {
  Scenario minimal;                // the scenario with its swarm replaced by the minimal timed plan
  RunResult failing;               // the minimal scenario's failing run
  int runs = 0;                    // runs tried
  std::vector<std::string> steps;  // what each accepted step did, one line each
};

// Precondition: run_scenario(scenario, options) fails. Greedy: removes faults (halves of the plan, then one
// at a time), then moves each fault earlier and shortens it (halving the distance each time), keeping a
// change only if the run still fails on one of the invariants the original run failed on. At most `max_runs`
// runs. `progress` (may be empty) gets the number of runs so far after each.
[[nodiscard]] ShrinkResult shrink_failure(const Scenario& scenario, const RunOptions& options, int max_runs,
                                          const std::function<void(int)>& progress);

}  // namespace mephisto::sim::scenario
