// SimKafka: one simulated Kafka deployment — the cluster's brokers plus the network that connects them to client
// processes — and the fault API on both.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "sim/cluster/protocol.h"
#include "sim/executor.h"

namespace mephisto::sim {

class Cluster;
class History;
class Network;
struct ClusterConfig;

struct SimKafkaConfig {
  int32_t brokers = 3;
  int16_t default_replication_factor = 3;
  int16_t min_insync_replicas = 2;
  bool unclean_leader_election = false;
  // A follower that has not caught up for this long leaves the ISR (replica.lag.time.max.ms).
  int64_t replica_lag_time_max_ms = 30000;
  // One-way network latency between any two nodes is drawn uniformly in [min, max] per message.
  int64_t latency_min_ms = 1;
  int64_t latency_max_ms = 3;
};

class SimKafka {
 public:
  SimKafka(Executor& executor, const SimKafkaConfig& config);
  ~SimKafka();

  Executor& executor();
  Cluster& cluster();
  Network& network();
  [[nodiscard]] int32_t broker_count() const;

  // Carries a request from a client process to a broker over the network, and the broker's answer back. The
  // answer may never come (crashed broker, cut link): the caller owns the timeout. `on_response` runs on an
  // executor event owned by `from`, so it is dropped if that process crashes first.
  void request(ProcessId from, int32_t broker, RequestHeader header, Request request,
               std::function<void(Response)> on_response);

  // The history the simulated clients record into (sim/history.h); nullptr (the default): nothing is
  // recorded. Not owned: `history` must outlive every client created while it is attached. Clients pick it up
  // when they are created, so attach it before creating the clients whose actions it should hold.
  void set_history(History* history);
  [[nodiscard]] History* history() const;

  // --- faults (each logged to the event log)
  void crash_broker(int32_t broker);
  void restart_broker(int32_t broker);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mephisto::sim
