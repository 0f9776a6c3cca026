#include "runtime/kafka/rd_config.h"

#include <array>

namespace mephisto::rd {
namespace {

// Passwords and keys must not end up in logs through an error message.
bool is_secret(const std::string& name) {
  for (const char* word : {"password", "secret", "key.pem", "private.key", "jaas"}) {
    if (name.find(word) != std::string::npos) return true;
  }
  return false;
}

Status set(rd_kafka_conf_t* conf, const std::string& name, const std::string& value, const char* source) {
  std::array<char, 512> reason{};
  const rd_kafka_conf_res_t res =
      rd_kafka_conf_set(conf, name.c_str(), value.c_str(), reason.data(), reason.size());
  if (res == RD_KAFKA_CONF_OK) return {};
  std::string message = std::string("invalid Kafka client property '") + name + "'";
  if (!is_secret(name)) message += " = '" + value + "'";
  message += std::string(" (from ") + source + "): " + reason.data();
  message += res == RD_KAFKA_CONF_UNKNOWN
                 ? "; check the name against librdkafka's CONFIGURATION.md"
                 : "; check the value's type and range in librdkafka's CONFIGURATION.md";
  return Error::of(ErrorCode::kInvalidArg, std::move(message));
}

}  // namespace

Result<ConfPtr> build_conf(const KafkaOptions& options, const Properties& typed,
                           const std::map<std::string, std::string>& extra) {
  if (options.bootstrap_servers.empty()) {
    return Error::of(ErrorCode::kInvalidArg,
                     "no Kafka bootstrap servers configured: set the broker URL (host:port[,host:port...])");
  }
  ConfPtr conf(rd_kafka_conf_new());
  if (Status s = set(conf.get(), "bootstrap.servers", options.bootstrap_servers, "broker URL"); !s.ok()) {
    return s.error();
  }
  for (const auto& [name, value] : options.properties) {
    if (Status s = set(conf.get(), name, value, "application Kafka properties"); !s.ok()) return s.error();
  }
  for (const auto& [name, value] : typed) {
    if (Status s = set(conf.get(), name, value, "client settings"); !s.ok()) return s.error();
  }
  for (const auto& [name, value] : extra) {
    if (Status s = set(conf.get(), name, value, "client extra properties"); !s.ok()) return s.error();
  }
  return conf;
}

Result<HandlePtr> new_handle(rd_kafka_type_t type, ConfPtr conf, const std::string& what) {
  std::array<char, 512> reason{};
  // rd_kafka_new takes ownership of conf only when it succeeds.
  rd_kafka_t* rk = rd_kafka_new(type, conf.get(), reason.data(), reason.size());
  if (rk == nullptr) {
    return Error::of(ErrorCode::kInvalidArg, "cannot create the Kafka " + what + ": " + reason.data() +
                                                 " (check the client properties)");
  }
  (void)conf.release();
  return HandlePtr(rk);
}

}  // namespace mephisto::rd
