// librdkafka errors → the seam's Error. The seam's codes reuse Kafka's and librdkafka's numbers, so a code
// maps 1:1 when the seam knows it; a code the seam does not name becomes kFail with librdkafka's name in the
// message (nothing is silently turned into success). Flags (retriable, fatal, txn_requires_abort) are taken
// from librdkafka where it reports them (rd_kafka_error_t), else derived from the code as Error::of does.
#pragma once

#include <librdkafka/rdkafka.h>

#include <string>

#include "runtime/seam/errors.h"

namespace mephisto::rd {

// The seam's code for a librdkafka code (kFail for codes the seam does not name).
[[nodiscard]] ErrorCode to_code(rd_kafka_resp_err_t err);

// An Error for a bare librdkafka code; `context` says which call failed (e.g. "commit").
[[nodiscard]] Error to_error(rd_kafka_resp_err_t err, const std::string& context);

// An Error from a rd_kafka_error_t (not consumed), keeping librdkafka's classification.
[[nodiscard]] Error to_error(const rd_kafka_error_t* error, const std::string& context);

// Fencing is one distinct, fatal code the runtime can act on: librdkafka reports a fenced transactional
// producer as a fatal error whose underlying code is PRODUCER_FENCED, INVALID_PRODUCER_EPOCH or _FENCED
// (and a fenced static member as FENCED_INSTANCE_ID). If `rk` has such a fatal error, `error` becomes
// kProducerFenced (or kFencedInstanceId), fatal, with librdkafka's reason appended.
[[nodiscard]] Error with_fatal_cause(rd_kafka_t* rk, Error error);

}  // namespace mephisto::rd
