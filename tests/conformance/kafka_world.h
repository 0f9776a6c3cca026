// The real-Kafka ConformanceWorld: one production EventLoop in wall time, and per client a fiber with its own
// Env (real clock, the loop as scheduler, a seeded Random, a KafkaBrokerClient) against the broker named by
// MEPHISTO_KAFKA_BOOTSTRAP (set by the CTest broker fixture). Cases share that broker, so unique_name() adds
// a random suffix. faults() is nullptr: simulator-only cases skip themselves.
#pragma once

#include <memory>

#include "tests/conformance/world.h"

namespace mephisto::conformance {

// A fresh world on the fixture's broker. Fails the current test (and returns a world whose clients cannot
// connect) if MEPHISTO_KAFKA_BOOTSTRAP is not set.
[[nodiscard]] std::unique_ptr<ConformanceWorld> make_kafka_world();

}  // namespace mephisto::conformance
