// Internal to runtime/kafka: constructors of the three librdkafka-backed clients, used by KafkaBrokerClient.
#pragma once

#include <memory>

#include "runtime/kafka/kafka_broker_client.h"

namespace mephisto::rd {

[[nodiscard]] Result<std::unique_ptr<Admin>> make_admin(EventLoop& loop, const KafkaOptions& options);
[[nodiscard]] Result<std::unique_ptr<Producer>> make_producer(EventLoop& loop, const KafkaOptions& options,
                                                              const ProducerConfig& config);
[[nodiscard]] Result<std::unique_ptr<Consumer>> make_consumer(EventLoop& loop, const KafkaOptions& options,
                                                              const ConsumerConfig& config);

}  // namespace mephisto::rd
