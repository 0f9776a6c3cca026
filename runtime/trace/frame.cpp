#include "runtime/trace/frame.h"

#include <array>

#include "models/trace.pb.h"

namespace mephisto::trace::internal {
namespace {

constexpr uint32_t kCastagnoliReflected = 0x82F63B78u;

constexpr std::array<uint32_t, 256> make_crc_table() {
  std::array<uint32_t, 256> table{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t crc = i;
    for (int bit = 0; bit < 8; ++bit) crc = (crc & 1u) != 0 ? (crc >> 1) ^ kCastagnoliReflected : crc >> 1;
    table[i] = crc;
  }
  return table;
}

// Computed at compile time: a constant, not mutable global state.
constexpr std::array<uint32_t, 256> kCrcTable = make_crc_table();

uint32_t crc32c_table(std::string_view bytes) {
  uint32_t crc = 0xFFFFFFFFu;
  for (const char c : bytes) crc = kCrcTable[(crc ^ static_cast<uint8_t>(c)) & 0xFFu] ^ (crc >> 8);
  return crc ^ 0xFFFFFFFFu;
}

#if defined(__x86_64__)
// SSE4.2's crc32 instruction computes CRC-32C (the same polynomial), 8 bytes per step: the writer checksums
// every frame on the worker's hot path.
__attribute__((target("sse4.2"))) uint32_t crc32c_sse42(std::string_view bytes) {
  uint64_t crc = 0xFFFFFFFFu;
  const char* at = bytes.data();
  size_t left = bytes.size();
  while (left >= 8) {
    uint64_t word = 0;
    __builtin_memcpy(&word, at, 8);
    crc = __builtin_ia32_crc32di(crc, word);
    at += 8;
    left -= 8;
  }
  auto crc32 = static_cast<uint32_t>(crc);
  while (left > 0) {
    crc32 = __builtin_ia32_crc32qi(crc32, static_cast<unsigned char>(*at));
    ++at;
    --left;
  }
  return crc32 ^ 0xFFFFFFFFu;
}
#endif

}  // namespace

uint32_t crc32c(std::string_view bytes) {
#if defined(__x86_64__)
  static const bool kHardware = __builtin_cpu_supports("sse4.2");
  if (kHardware) return crc32c_sse42(bytes);
#endif
  return crc32c_table(bytes);
}

void append_event_frame(std::string& out, const Event& event) {
  constexpr char kFrameEventTag = 0x12;  // field 2, length-delimited
  const size_t event_bytes = event.ByteSizeLong();
  std::string prefix;
  append_varint(prefix, event_bytes);
  const size_t payload_bytes = 1 + prefix.size() + event_bytes;
  append_varint(out, payload_bytes);
  const size_t crc_at = out.size();
  out.append(kCrcBytes, '\0');
  const size_t payload_at = out.size();
  out.push_back(kFrameEventTag);
  out.append(prefix);
  const size_t event_at = out.size();
  out.resize(event_at + event_bytes);
  event.SerializeWithCachedSizesToArray(reinterpret_cast<uint8_t*>(out.data() + event_at));
  const uint32_t crc = crc32c(std::string_view(out).substr(payload_at, payload_bytes));
  for (size_t i = 0; i < kCrcBytes; ++i) out[crc_at + i] = static_cast<char>((crc >> (8 * i)) & 0xFFu);
}

void append_varint(std::string& out, uint64_t value) {
  while (value >= 0x80) {
    out.push_back(static_cast<char>((value & 0x7F) | 0x80));
    value >>= 7;
  }
  out.push_back(static_cast<char>(value));
}

void append_frame(std::string& out, std::string_view payload) {
  append_varint(out, payload.size());
  const uint32_t crc = crc32c(payload);
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((crc >> (8 * i)) & 0xFFu));
  out.append(payload);
}

VarintRead read_varint(std::string_view bytes, size_t* offset, uint64_t* value) {
  uint64_t result = 0;
  size_t at = *offset;
  for (size_t i = 0; i < kMaxVarintBytes; ++i, ++at) {
    if (at >= bytes.size()) return VarintRead::kTruncated;
    const auto byte = static_cast<uint8_t>(bytes[at]);
    // The tenth byte holds bit 63 only: anything more does not fit in 64 bits.
    if (i == kMaxVarintBytes - 1 && byte > 1) return VarintRead::kOverlong;
    result |= static_cast<uint64_t>(byte & 0x7F) << (7 * i);
    if ((byte & 0x80) == 0) {
      *offset = at + 1;
      *value = result;
      return VarintRead::kOk;
    }
  }
  return VarintRead::kOverlong;
}

uint32_t read_le32(std::string_view bytes, size_t offset) {
  uint32_t value = 0;
  for (size_t i = 0; i < 4; ++i)
    value |= static_cast<uint32_t>(static_cast<uint8_t>(bytes[offset + i])) << (8 * i);
  return value;
}

}  // namespace mephisto::trace::internal
