// The simulator's ConformanceWorld: a virtual-time Executor, a SimKafka cluster (3 brokers) and, per client, a
// simulated process with its own Env. Each case gets a fresh world seeded from the case's name (stable across runs),
// so a failure reproduces exactly; the seed and the tail of the event log are printed when a case fails.
#pragma once

#include <memory>

#include "tests/conformance/world.h"

namespace mephisto::conformance {

// A fresh simulated world for the currently running gtest case. The seed is stable_hash(<suite>.<case>), or the
// value of the environment variable MEPHISTO_CONFORMANCE_SEED when set (to explore other interleavings).
[[nodiscard]] std::unique_ptr<ConformanceWorld> make_sim_world();

}  // namespace mephisto::conformance
