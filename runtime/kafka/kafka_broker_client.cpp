#include "runtime/kafka/kafka_broker_client.h"

#include "runtime/kafka/kafka_clients.h"
#include "runtime/kafka/rd_config.h"

namespace mephisto {

KafkaBrokerClient::KafkaBrokerClient(EventLoop& loop, KafkaOptions options)
    : loop_(loop), options_(std::move(options)) {}

KafkaBrokerClient::~KafkaBrokerClient() = default;

Status KafkaBrokerClient::check_config() const {
  Result<rd::ConfPtr> conf = rd::build_conf(options_, {}, {});
  if (!conf.ok()) return conf.error();
  return {};
}

Result<std::unique_ptr<Admin>> KafkaBrokerClient::admin() {
  return rd::make_admin(loop_, options_);
}

Result<std::unique_ptr<Producer>> KafkaBrokerClient::producer(const ProducerConfig& config) {
  return rd::make_producer(loop_, options_, config);
}

Result<std::unique_ptr<Consumer>> KafkaBrokerClient::consumer(const ConsumerConfig& config) {
  return rd::make_consumer(loop_, options_, config);
}

}  // namespace mephisto
