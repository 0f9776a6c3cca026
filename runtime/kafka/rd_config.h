// Building librdkafka configurations from the seam's configs: the typed settings a client needs, the
// application-wide properties of KafkaOptions, and per-client extra properties, each validated by librdkafka
// as it is set so that an unknown name or a bad value is a startup error naming the property.
#pragma once

#include <librdkafka/rdkafka.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "runtime/kafka/kafka_broker_client.h"
#include "runtime/kafka/rd_handles.h"
#include "runtime/seam/result.h"

namespace mephisto::rd {

using Properties = std::vector<std::pair<std::string, std::string>>;

// A configuration with, in this order (later wins): bootstrap.servers, options.properties, `typed` (what the
// binding derives from a ProducerConfig/ConsumerConfig and must hold for the seam's contract) and `extra`
// (the client's own pass-through properties). Errors: kInvalidArg naming the property and librdkafka's reason
// (values of secret-looking properties are not echoed).
[[nodiscard]] Result<ConfPtr> build_conf(const KafkaOptions& options, const Properties& typed,
                                         const std::map<std::string, std::string>& extra);

// Creates a client of `type` from `conf` (consumed on success and on failure). Errors: kInvalidArg with
// librdkafka's reason (e.g. conflicting properties, which librdkafka checks only here).
[[nodiscard]] Result<HandlePtr> new_handle(rd_kafka_type_t type, ConfPtr conf, const std::string& what);

}  // namespace mephisto::rd
