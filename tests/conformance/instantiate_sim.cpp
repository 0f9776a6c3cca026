// Runs every conformance case against the simulator. (The real-Kafka binding adds its own executable with the same
// cases and one instantiation line of its own: see README.md.)
#include "tests/conformance/conformance.h"
#include "tests/conformance/sim_world.h"

namespace mephisto::conformance {

INSTANTIATE_TEST_SUITE_P(, Conformance, ::testing::Values(WorldParam{"sim", make_sim_world}), world_param_name);

}  // namespace mephisto::conformance
