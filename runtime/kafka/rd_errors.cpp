#include "runtime/kafka/rd_errors.h"

#include <array>
#include <string_view>

namespace mephisto::rd {
namespace {

// Every code the seam names. error_name() answers "UNKNOWN" for any other value, which is how to_code tells a
// named code from one the seam does not model.
bool seam_knows(int value) {
  if (value < INT16_MIN || value > INT16_MAX) return false;
  return error_name(static_cast<ErrorCode>(value)) != "UNKNOWN";
}

std::string describe(rd_kafka_resp_err_t err, std::string_view text, const std::string& context) {
  std::string message = context;
  message += ": ";
  message += text;
  message += " (";
  message += rd_kafka_err2name(err);
  message += ")";
  return message;
}

}  // namespace

ErrorCode to_code(rd_kafka_resp_err_t err) {
  const int value = static_cast<int>(err);
  return seam_knows(value) ? static_cast<ErrorCode>(value) : ErrorCode::kFail;
}

Error to_error(rd_kafka_resp_err_t err, const std::string& context) {
  return Error::of(to_code(err), describe(err, rd_kafka_err2str(err), context));
}

Error to_error(const rd_kafka_error_t* error, const std::string& context) {
  const rd_kafka_resp_err_t err = rd_kafka_error_code(error);
  Error result = Error::of(to_code(err), describe(err, rd_kafka_error_string(error), context));
  result.retriable = rd_kafka_error_is_retriable(error) != 0;
  result.fatal = rd_kafka_error_is_fatal(error) != 0 || result.fatal;
  result.txn_requires_abort = rd_kafka_error_txn_requires_abort(error) != 0;
  if (result.fatal) result.retriable = false;
  return result;
}

Error with_fatal_cause(rd_kafka_t* rk, Error error) {
  std::array<char, 512> reason{};
  const rd_kafka_resp_err_t cause = rd_kafka_fatal_error(rk, reason.data(), reason.size());
  if (cause == RD_KAFKA_RESP_ERR_NO_ERROR) return error;
  std::string message = error.message + "; fatal: " + reason.data() + " (" + rd_kafka_err2name(cause) + ")";
  switch (cause) {
    case RD_KAFKA_RESP_ERR_PRODUCER_FENCED:
    case RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH:
    case RD_KAFKA_RESP_ERR__FENCED:
      error = Error::of(ErrorCode::kProducerFenced, std::move(message));
      break;
    case RD_KAFKA_RESP_ERR_FENCED_INSTANCE_ID:
      error = Error::of(ErrorCode::kFencedInstanceId, std::move(message));
      break;
    default:
      error.message = std::move(message);
      break;
  }
  error.fatal = true;
  error.retriable = false;
  error.txn_requires_abort = false;
  return error;
}

}  // namespace mephisto::rd
