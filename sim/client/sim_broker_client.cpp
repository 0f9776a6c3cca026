#include "sim/client/sim_broker_client.h"

#include "sim/client/sim_admin.h"
#include "sim/client/sim_consumer.h"
#include "sim/client/sim_producer.h"

namespace mephisto::sim {
namespace {

// Client properties the simulated binding understands in `extra`; anything else is a typo or a property the
// simulator does not model, and is refused by name rather than silently ignored.
bool known_extra_property(const std::string& name) {
  static const char* const kKnown[] = {"bootstrap.servers", "security.protocol", "sasl.mechanisms",
                                       "sasl.username", "sasl.password", "ssl.ca.location",
                                       "socket.timeout.ms", "retry.backoff.ms", "statistics.interval.ms",
                                       "fetch.wait.max.ms"};
  for (const char* k : kKnown)
    if (name == k) return true;
  return false;
}

Status check_extra(const std::map<std::string, std::string>& extra) {
  for (const auto& [name, value] : extra) {
    if (!known_extra_property(name))
      return Error::of(ErrorCode::kInvalidArg, "unknown client property '" + name + "' (value '" + value + "')");
    if (name == "fetch.wait.max.ms" &&
        (value.empty() || value.size() > 6 || value.find_first_not_of("0123456789") != std::string::npos)) {
      return Error::of(ErrorCode::kInvalidArg, "fetch.wait.max.ms: '" + value + "' is not a number of milliseconds");
    }
  }
  return {};
}

class SimBrokerClient final : public BrokerClient {
 public:
  SimBrokerClient(SimKafka& kafka, ProcessContext& process) : kafka_(kafka), process_(process) {}

  Result<std::unique_ptr<Admin>> admin() override {
    return std::unique_ptr<Admin>(std::make_unique<SimAdmin>(kafka_, process_, process_.name() + "-admin"));
  }

  Result<std::unique_ptr<Producer>> producer(const ProducerConfig& config) override {
    if (auto st = check_extra(config.extra); !st.ok()) return st.error();
    if (config.acks != -1 && config.acks != 0 && config.acks != 1)
      return Error::of(ErrorCode::kInvalidArg, "acks must be -1, 0 or 1, not " + std::to_string(config.acks));
    if ((config.enable_idempotence || config.transactional_id) && config.acks != -1)
      return Error::of(ErrorCode::kInvalidArg, "idempotence and transactions require acks=-1 (all)");
    if (config.transactional_id && config.transactional_id->empty())
      return Error::of(ErrorCode::kInvalidArg, "transactional_id must not be empty");
    if (config.queue_max_records <= 0 || config.request_timeout_ms <= 0 || config.delivery_timeout_ms <= 0)
      return Error::of(ErrorCode::kInvalidArg, "queue_max_records and timeouts must be positive");
    return std::unique_ptr<Producer>(std::make_unique<SimProducer>(kafka_, process_, config));
  }

  Result<std::unique_ptr<Consumer>> consumer(const ConsumerConfig& config) override {
    if (auto st = check_extra(config.extra); !st.ok()) return st.error();
    if (config.session_timeout_ms <= 0 || config.heartbeat_interval_ms <= 0 || config.max_poll_interval_ms <= 0)
      return Error::of(ErrorCode::kInvalidArg, "consumer timeouts must be positive");
    if (config.heartbeat_interval_ms >= config.session_timeout_ms)
      return Error::of(ErrorCode::kInvalidArg, "heartbeat_interval_ms must be lower than session_timeout_ms");
    if (config.max_poll_records <= 0) return Error::of(ErrorCode::kInvalidArg, "max_poll_records must be positive");
    return std::unique_ptr<Consumer>(std::make_unique<SimConsumer>(kafka_, process_, config));
  }

  // The simulated world is the only one where App::run accepts a planted bug (runtime/seam/planted.h).
  [[nodiscard]] bool simulated() const override { return true; }

 private:
  SimKafka& kafka_;
  ProcessContext& process_;
};

}  // namespace

std::unique_ptr<BrokerClient> make_sim_broker_client(SimKafka& kafka, ProcessContext& process) {
  return std::make_unique<SimBrokerClient>(kafka, process);
}

}  // namespace mephisto::sim
