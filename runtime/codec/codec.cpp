#include "runtime/codec/codec.h"

#include <algorithm>
#include <climits>
#include <cstdio>
#include <cstdlib>

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <google/protobuf/util/json_util.h>
#include <google/protobuf/wire_format_lite.h>

namespace mephisto {
namespace {

using google::protobuf::Message;
using google::protobuf::internal::WireFormatLite;

// Encoding a valid message cannot fail; if it does, the program is broken, not the data: stop with context.
[[noreturn]] void encode_invariant_broken(const char* codec, const Message& message, const std::string& why) {
  std::fprintf(stderr, "mephisto: %s codec could not encode %s: %s\n", codec,
               message.GetDescriptor()->full_name().c_str(), why.c_str());
  std::abort();
}

Error bad_message(const char* codec, const Message& message, size_t size_bytes, const std::string& why) {
  return Error::of(ErrorCode::kBadMessage, std::string(codec) + " codec: cannot decode " +
                                               message.GetDescriptor()->full_name() + " from " +
                                               std::to_string(size_bytes) + " bytes: " + why);
}

// ParseFromArray only says "false". To tell the operator *what* was wrong, walk the top level of the wire
// format again and report the first structural fault by offset; if there is none, the fault is inside a
// field.
std::string describe_wire_fault(std::string_view bytes) {
  google::protobuf::io::CodedInputStream input(reinterpret_cast<const uint8_t*>(bytes.data()),
                                               static_cast<int>(bytes.size()));
  while (true) {
    const int tag_offset = input.CurrentPosition();
    if (static_cast<size_t>(tag_offset) == bytes.size()) break;
    const uint32_t tag = input.ReadTagNoLastTag();
    const std::string at = " at byte " + std::to_string(tag_offset);
    if (tag == 0) return "malformed tag" + at + " (truncated varint, or field number 0)";
    const int field_number = WireFormatLite::GetTagFieldNumber(tag);
    const int wire_type = static_cast<int>(WireFormatLite::GetTagWireType(tag));
    if (field_number == 0) return "field number 0" + at;
    if (wire_type > WireFormatLite::WIRETYPE_FIXED32) {
      return "invalid wire type " + std::to_string(wire_type) + " for field " + std::to_string(field_number) +
             at;
    }
    if (wire_type == WireFormatLite::WIRETYPE_END_GROUP) return "end-group tag with no open group" + at;
    if (!WireFormatLite::SkipField(&input, tag)) {
      return "field " + std::to_string(field_number) + " (wire type " + std::to_string(wire_type) + ")" + at +
             " is truncated or malformed";
    }
  }
  return "the top-level fields are well-formed, so a string field holds invalid UTF-8 or a nested message is "
         "malformed";
}

// Error text goes into logs and dead-letter headers as one line: bytes outside printable ASCII become \xNN.
std::string printable(std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (char c : text) {
    const auto byte = static_cast<uint8_t>(c);
    if (byte >= 0x20 && byte < 0x7f && c != '\\') {
      out += c;
    } else {
      out += "\\x";
      out += kHex[byte >> 4];
      out += kHex[byte & 0xf];
    }
  }
  return out;
}

// Protobuf's JSON parser reports "<reason>\n<up to 20 bytes either side of the fault>\n<spaces>^". Turn that
// into one line that keeps the excerpt and marks the fault in it. No absolute offset: the parser measures the
// caret from the part of the input it has not consumed yet, not from the start, so an offset would be a
// guess.
std::string describe_json_fault(std::string_view error) {
  if (error.substr(0, 2) == ": ") error.remove_prefix(2);  // an empty field path
  const size_t first_newline = error.find('\n');
  const size_t last_newline = error.rfind('\n');
  if (first_newline == std::string_view::npos || first_newline == last_newline) return printable(error);
  const std::string_view caret_line = error.substr(last_newline + 1);
  if (caret_line.empty() || caret_line.back() != '^' ||
      caret_line.find_first_not_of(' ') != caret_line.size() - 1) {
    return printable(error);
  }
  const std::string_view excerpt = error.substr(first_newline + 1, last_newline - first_newline - 1);
  const size_t column = std::min(caret_line.size() - 1, excerpt.size());
  std::string out = printable(error.substr(0, first_newline));
  if (!excerpt.empty()) {
    out += " (near \"" + printable(excerpt.substr(0, column)) + "\" >>here>> \"" +
           printable(excerpt.substr(column)) + "\")";
  }
  return out;
}

}  // namespace

size_t first_invalid_utf8_offset(std::string_view text) {
  size_t i = 0;
  while (i < text.size()) {
    const auto lead = static_cast<uint8_t>(text[i]);
    if (lead < 0x80) {
      i += 1;
      continue;
    }
    // The length of the sequence and the range of its second byte (RFC 3629, table 3-7 of the Unicode
    // standard): narrowing the second byte's range is what rules out overlong forms, surrogates and code
    // points > U+10FFFF.
    size_t length = 0;
    uint8_t second_min = 0x80;
    uint8_t second_max = 0xBF;
    if (lead >= 0xC2 && lead <= 0xDF) {
      length = 2;
    } else if (lead == 0xE0) {
      length = 3, second_min = 0xA0;
    } else if (lead >= 0xE1 && lead <= 0xEC) {
      length = 3;
    } else if (lead == 0xED) {
      length = 3, second_max = 0x9F;
    } else if (lead >= 0xEE && lead <= 0xEF) {
      length = 3;
    } else if (lead == 0xF0) {
      length = 4, second_min = 0x90;
    } else if (lead >= 0xF1 && lead <= 0xF3) {
      length = 4;
    } else if (lead == 0xF4) {
      length = 4, second_max = 0x8F;
    } else {
      return i;
    }
    if (text.size() - i < length) return i;
    const auto second = static_cast<uint8_t>(text[i + 1]);
    if (second < second_min || second > second_max) return i;
    for (size_t k = 2; k < length; ++k) {
      const auto next = static_cast<uint8_t>(text[i + k]);
      if (next < 0x80 || next > 0xBF) return i;
    }
    i += length;
  }
  return text.size();
}

Result<std::string> StringCodec::decode(std::string_view bytes) const {
  const size_t bad_offset = first_invalid_utf8_offset(bytes);
  if (bad_offset != bytes.size()) {
    return Error::of(ErrorCode::kBadMessage,
                     "string codec: cannot decode std::string from " + std::to_string(bytes.size()) +
                         " bytes: invalid UTF-8 at byte " + std::to_string(bad_offset));
  }
  return std::string(bytes);
}

namespace codec_internal {

std::string encode_protobuf_binary(const Message& message) {
  std::string bytes;
  {
    // Deterministic: map fields in key order, so equal messages give equal bytes (tables compare and
    // compact by bytes; the simulator's oracles compare runs byte for byte).
    google::protobuf::io::StringOutputStream raw(&bytes);
    google::protobuf::io::CodedOutputStream out(&raw);
    out.SetSerializationDeterministic(true);
    if (!message.SerializeToCodedStream(&out))
      encode_invariant_broken("protobuf", message, "SerializeToCodedStream failed");
  }
  return bytes;
}

Status decode_protobuf_binary(std::string_view bytes, Message* message) {
  // Protobuf sizes are int; Kafka's record limit is far below this, so a larger input is corrupt, not a
  // record.
  if (bytes.size() > static_cast<size_t>(INT_MAX)) {
    return bad_message("protobuf", *message, bytes.size(), "larger than protobuf's 2 GiB limit");
  }
  if (!message->ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return bad_message("protobuf", *message, bytes.size(), describe_wire_fault(bytes));
  }
  return {};
}

std::string encode_protobuf_json(const Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = true;
  std::string text;
  const auto status = google::protobuf::util::MessageToJsonString(message, &text, options);
  if (!status.ok()) encode_invariant_broken("json", message, status.ToString());
  return text;
}

Status decode_protobuf_json(std::string_view text, Message* message) {
  // Said outright because protobuf's own message for empty input does not mention the empty-message spelling.
  if (text.empty()) return bad_message("json", *message, 0, "empty input is not a JSON object (use {})");
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = false;  // see ProtobufJsonCodec: a misspelt field must not vanish silently
  const auto status = google::protobuf::util::JsonStringToMessage(
      google::protobuf::StringPiece(text.data(), text.size()), message, options);
  if (!status.ok()) {
    return bad_message(
        "json", *message, text.size(),
        describe_json_fault(std::string_view(status.message().data(), status.message().size())));
  }
  return {};
}

}  // namespace codec_internal

Result<CodecKind> parse_codec_kind(std::string_view name) {
  for (CodecKind kind : {CodecKind::kRaw, CodecKind::kString, CodecKind::kProtobuf, CodecKind::kJson}) {
    if (name == codec_kind_name(kind)) return kind;
  }
  return Error::of(ErrorCode::kInvalidArg,
                   "unknown codec '" + std::string(name) + "' (valid: raw, string, protobuf, json)");
}

std::string_view codec_kind_name(CodecKind kind) {
  switch (kind) {
    case CodecKind::kRaw:
      return "raw";
    case CodecKind::kString:
      return "string";
    case CodecKind::kProtobuf:
      return "protobuf";
    case CodecKind::kJson:
      return "json";
  }
  // Unreachable for a valid enumerator; a cast-in value is a broken invariant.
  std::fprintf(stderr, "mephisto: invalid CodecKind %d\n", static_cast<int>(kind));
  std::abort();
}

}  // namespace mephisto
