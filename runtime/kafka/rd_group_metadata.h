// Reading librdkafka's consumer group metadata into the seam's GroupMetadata. librdkafka keeps the fields
// (generation, member id, instance id) private; its only export is rd_kafka_consumer_group_metadata_write's
// "CGMDv2:" serialisation: magic, int32 generation (host order), group id NUL, member id NUL, one byte
// "instance id is null", then the instance id NUL if present. A layout this parser does not recognise is an
// error, never a guess; a unit test round-trips it through rd_kafka_consumer_group_metadata_new_with_genid.
#pragma once

#include <librdkafka/rdkafka.h>

#include "runtime/seam/broker_client.h"

namespace mephisto::rd {

// Errors: kFail when librdkafka's serialisation is not the layout above (a different librdkafka version).
[[nodiscard]] Result<GroupMetadata> read_group_metadata(const rd_kafka_consumer_group_metadata_t* metadata);

}  // namespace mephisto::rd
