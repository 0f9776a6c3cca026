// The production binding of the broker-client seam over librdkafka. This header does not include librdkafka;
// only the .cpp files of runtime/kafka do (DESIGN.md: the only place librdkafka is included).
//
// Every client's waits suspend the calling fiber of the EventLoop, never the loop's thread: queue wake-ups
// come through librdkafka's io-event pipes watched by the loop, and librdkafka's synchronous calls
// (transactions, synchronous commits, committed offsets, metadata) run on the loop's helper threads via
// run_blocking(). Delivery reports are events served on the loop thread; each one runs its record's
// DeliveryCallback there.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "runtime/loop/event_loop.h"
#include "runtime/seam/broker_client.h"

namespace mephisto {

struct KafkaOptions {
  // "host:port,host:port" (librdkafka's bootstrap.servers). Required.
  std::string bootstrap_servers;
  // librdkafka properties applied to every client before the client's own settings, e.g. security.protocol,
  // sasl.*, ssl.*, socket.timeout.ms, debug. A name librdkafka does not know, or a value it rejects, fails
  // client creation with kInvalidArg and librdkafka's message (which names the property).
  std::map<std::string, std::string> properties;
};

// Creates librdkafka-backed clients whose fibers run on `loop`. The loop must outlive the clients; clients
// must be used only from fibers of that loop. Config errors are returned when a client is created (admin(),
// producer(), consumer()); check_config() validates the options up front for a clear startup error.
class KafkaBrokerClient final : public BrokerClient {
 public:
  KafkaBrokerClient(EventLoop& loop, KafkaOptions options);
  ~KafkaBrokerClient() override;

  // Validates bootstrap_servers and every property by building (not connecting) a librdkafka configuration.
  // Errors: kInvalidArg naming the property and the reason.
  [[nodiscard]] Status check_config() const;

  Result<std::unique_ptr<Admin>> admin() override;
  Result<std::unique_ptr<Producer>> producer(const ProducerConfig& config) override;
  Result<std::unique_ptr<Consumer>> consumer(const ConsumerConfig& config) override;

 private:
  EventLoop& loop_;
  KafkaOptions options_;
};

}  // namespace mephisto
