// The smoke scenario behind `mephisto demo`, the most end-to-end run that exists today: a simulated 3-broker
// cluster, an idempotent producer, a consumer group of three workers, a worker crash and a broker crash with
// restarts, and a check that every acknowledged record was consumed (at-least-once).
#pragma once

#include <cstdint>
#include <vector>

namespace mephisto::sim {

struct SmokeOptions {
  uint64_t seed = 1;
  int64_t records = 20000;
  bool faults = true;  // the crash/restart plan; off for a fault-free baseline
};

struct SmokeOutcome {
  uint64_t hash = 0;       // the run hash (event log)
  uint64_t events = 0;
  int64_t virtual_ms = 0;
  int64_t acked = 0;       // distinct acknowledged records
  int64_t send_failures = 0;
  int64_t consumed_distinct = 0;
  int64_t deliveries = 0;  // records handed to workers, duplicates included
  int64_t lost = 0;        // acknowledged but never consumed
  bool finished = false;   // every acknowledged record consumed within the time limit
};

// Runs the scenario once. Deterministic: the same options give the same outcome and hash.
[[nodiscard]] SmokeOutcome run_smoke(const SmokeOptions& options);

}  // namespace mephisto::sim
