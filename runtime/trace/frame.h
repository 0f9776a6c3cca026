// The framing shared by the trace writer and reader (models/trace.proto): magic, then frames of
// varint length + CRC-32C (little-endian) + payload. Internal to runtime/trace.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace mephisto::trace {
class Event;
}  // namespace mephisto::trace

namespace mephisto::trace::internal {

// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), as iSCSI and LevelDB's log use: it detects every
// burst error of up to 32 bits, which covers a torn or flipped sector within a frame.
[[nodiscard]] uint32_t crc32c(std::string_view bytes);

// A varint takes at most this many bytes for 64 bits; more is corruption.
inline constexpr size_t kMaxVarintBytes = 10;
inline constexpr size_t kCrcBytes = 4;

void append_varint(std::string& out, uint64_t value);
// Appends one frame around `payload`.
void append_frame(std::string& out, std::string_view payload);
// Appends the frame of a Frame message holding `event` (field 2), serializing in place.
void append_event_frame(std::string& out, const Event& event);

enum class VarintRead { kOk, kTruncated, kOverlong };
// Reads a varint at bytes[*offset], advancing *offset past it on kOk. kTruncated: the bytes end inside it;
// kOverlong: more than kMaxVarintBytes, or bits beyond 64.
VarintRead read_varint(std::string_view bytes, size_t* offset, uint64_t* value);

[[nodiscard]] uint32_t read_le32(std::string_view bytes, size_t offset);

}  // namespace mephisto::trace::internal
