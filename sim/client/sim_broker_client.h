// The simulated binding of the broker-client seam: Admin, Producer and Consumer implemented the way librdkafka
// implements them (batching, retries, idempotent sequences, a transaction manager, a group member with
// heartbeats and assignors), talking Kafka's request APIs to the simulated cluster over the simulated network.
#pragma once

#include <memory>

#include "runtime/seam/broker_client.h"
#include "sim/executor.h"

namespace mephisto::sim {

class SimKafka;

// A BrokerClient for one simulated process. Clients it creates live in that process: their background fibers
// and timers die with it on a crash. `kafka` must outlive the returned object.
[[nodiscard]] std::unique_ptr<BrokerClient> make_sim_broker_client(SimKafka& kafka, ProcessContext& process);

}  // namespace mephisto::sim
