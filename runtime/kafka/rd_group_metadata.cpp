#include "runtime/kafka/rd_group_metadata.h"

#include <cstdlib>
#include <cstring>
#include <string_view>

namespace mephisto::rd {
namespace {

constexpr std::string_view kMagic("CGMDv2:", 7);

// Reads a NUL-terminated string at `at`, advancing it past the NUL. False if no NUL before the end.
bool read_cstring(std::string_view bytes, size_t& at, std::string& out) {
  const size_t end = bytes.find('\0', at);
  if (end == std::string_view::npos) return false;
  out.assign(bytes.substr(at, end - at));
  at = end + 1;
  return true;
}

}  // namespace

Result<GroupMetadata> read_group_metadata(const rd_kafka_consumer_group_metadata_t* metadata) {
  void* buffer = nullptr;
  size_t size = 0;
  if (rd_kafka_error_t* error = rd_kafka_consumer_group_metadata_write(metadata, &buffer, &size)) {
    Error e =
        Error::of(ErrorCode::kFail, std::string("reading group metadata: ") + rd_kafka_error_string(error));
    rd_kafka_error_destroy(error);
    return e;
  }
  const std::string_view bytes(static_cast<const char*>(buffer), size);
  const auto unknown_layout = [&] {
    rd_kafka_mem_free(nullptr, buffer);
    return Error::of(
        ErrorCode::kFail,
        "librdkafka's consumer group metadata has an unknown layout (this binding reads CGMDv2)");
  };
  GroupMetadata out;
  size_t at = kMagic.size();
  int32_t generation = 0;
  if (bytes.substr(0, kMagic.size()) != kMagic || bytes.size() < at + sizeof(generation))
    return unknown_layout();
  std::memcpy(&generation, bytes.data() + at, sizeof(generation));
  at += sizeof(generation);
  out.generation_id = generation;
  if (!read_cstring(bytes, at, out.group_id) || !read_cstring(bytes, at, out.member_id) ||
      at >= bytes.size()) {
    return unknown_layout();
  }
  const bool instance_is_null = bytes[at++] != 0;
  if (!instance_is_null) {
    std::string instance;
    if (!read_cstring(bytes, at, instance)) return unknown_layout();
    out.group_instance_id = std::move(instance);
  }
  if (at != bytes.size()) return unknown_layout();
  rd_kafka_mem_free(nullptr, buffer);
  return out;
}

}  // namespace mephisto::rd
