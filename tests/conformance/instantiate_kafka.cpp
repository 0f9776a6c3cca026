// Runs every conformance case against real Kafka through the librdkafka binding (label kafka; the CTest
// broker fixture provides MEPHISTO_KAFKA_BOOTSTRAP). Simulator-only cases skip themselves: see README.md.
#include "tests/conformance/conformance.h"
#include "tests/conformance/kafka_world.h"

namespace mephisto::conformance {

INSTANTIATE_TEST_SUITE_P(, Conformance, ::testing::Values(WorldParam{"kafka", make_kafka_world}),
                         world_param_name);

}  // namespace mephisto::conformance
