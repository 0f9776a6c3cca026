#include "sim/sim_kafka.h"

#include "sim/cluster/cluster.h"
#include "sim/network.h"

namespace mephisto::sim {

struct SimKafka::Impl {
  Impl(Executor& executor, const SimKafkaConfig& config)
      : executor(executor),
        config(config),
        network(executor, LinkConfig{config.latency_min_ms, config.latency_max_ms}),
        cluster(executor, make_cluster_config(config)) {}

  static ClusterConfig make_cluster_config(const SimKafkaConfig& c) {
    ClusterConfig cc;
    cc.brokers = c.brokers;
    cc.default_replication_factor = c.default_replication_factor;
    cc.min_insync_replicas = c.min_insync_replicas;
    cc.unclean_leader_election = c.unclean_leader_election;
    cc.replica_lag_time_max_ms = c.replica_lag_time_max_ms;
    return cc;
  }

  Executor& executor;
  SimKafkaConfig config;
  Network network;
  Cluster cluster;
  History* history = nullptr;
};

SimKafka::SimKafka(Executor& executor, const SimKafkaConfig& config)
    : impl_(std::make_unique<Impl>(executor, config)) {
  // Broker-to-broker traffic (replica fetches, transaction markers) obeys the same network partitions as clients.
  Network* network = &impl_->network;
  impl_->cluster.set_broker_link_filter(
      [network](BrokerId from, BrokerId to) { return !network->is_cut(broker_node(from), broker_node(to)); });
}
SimKafka::~SimKafka() = default;

Executor& SimKafka::executor() { return impl_->executor; }
Cluster& SimKafka::cluster() { return impl_->cluster; }
Network& SimKafka::network() { return impl_->network; }
int32_t SimKafka::broker_count() const { return impl_->config.brokers; }

void SimKafka::request(ProcessId from, int32_t broker, RequestHeader header, Request request,
                       std::function<void(Response)> on_response) {
  Impl* impl = impl_.get();
  impl->network.send(
      process_node(from), broker_node(broker),
      [impl, from, broker, header = std::move(header), request = std::move(request),
       on_response = std::move(on_response)]() mutable {
        impl->cluster.handle(broker, std::move(header), std::move(request),
                             [impl, from, broker, on_response = std::move(on_response)](Response response) mutable {
                               impl->network.send(broker_node(broker), process_node(from),
                                                  [on_response = std::move(on_response),
                                                   response = std::move(response)]() mutable {
                                                    on_response(std::move(response));
                                                  });
                             });
      });
}

void SimKafka::set_history(History* history) {
  impl_->history = history;
}
History* SimKafka::history() const {
  return impl_->history;
}

void SimKafka::crash_broker(int32_t broker) { impl_->cluster.crash_broker(broker); }
void SimKafka::restart_broker(int32_t broker) { impl_->cluster.restart_broker(broker); }

}  // namespace mephisto::sim
