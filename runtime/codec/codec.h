// Codecs: how a topic's keys and values become bytes and back (Faust's `key_serializer` /
// `value_serializer`).
//
// A codec is a small value with two calls:
//   std::string encode(const Value&) const   -- cannot fail for a valid Value (a failure is a broken
//   invariant
//                                                and stops the process with context);
//   Result<Value> decode(std::string_view) const -- bytes come from outside (another producer, another
//   version of
//                                                this program, a corrupt record), so failure is an expected
//                                                value: ErrorCode::kBadMessage, with a message that names the
//                                                codec, the type and what was wrong. Decoders never throw and
//                                                never crash on any input; the caller routes the record by
//                                                its configured policy.
// Codecs are stateless and cheap to copy; one instance may serve any number of records.
//
// Empty input (a Kafka record with an empty, non-null key or value) is decoded as follows:
//   raw, string  -> the empty string;
//   protobuf     -> the message with every field at its default (that is the binary encoding of such a
//   message); json         -> kBadMessage (empty text is not a JSON object; the default message is "{}").
// A *null* key or value (a tombstone) is not an empty byte string; it is the topic layer's business, not a
// codec's.
#pragma once

#include <concepts>
#include <cstddef>
#include <string>
#include <string_view>
#include <type_traits>

#include <google/protobuf/message.h>

#include "runtime/seam/result.h"

namespace mephisto {

// C is a codec for C::Value.
template <typename C>
concept Codec = requires(const C& codec, const typename C::Value& value, std::string_view bytes) {
  { codec.encode(value) } -> std::same_as<std::string>;
  { codec.decode(bytes) } -> std::same_as<Result<typename C::Value>>;
};

// C is a codec for values of type T (for typed topics: Topic<K, V> asks for CodecFor<KeyCodec, K>).
template <typename C, typename T>
concept CodecFor = Codec<C> && std::same_as<typename C::Value, T>;

// A generated protobuf message type (full runtime, not lite: JSON needs descriptors and reflection).
template <typename M>
concept ProtobufMessage = std::derived_from<M, google::protobuf::Message> && std::default_initializable<M>;

// The bytes as they are. Never fails.
struct RawCodec {
  using Value = std::string;
  [[nodiscard]] std::string encode(const std::string& value) const { return value; }
  [[nodiscard]] Result<std::string> decode(std::string_view bytes) const { return std::string(bytes); }
};

// Text that must be well-formed UTF-8 (RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF).
// Decoding invalid UTF-8 gives kBadMessage naming the byte offset. encode does not validate: a program that
// puts invalid UTF-8 into a string topic is caught by its consumers, not by a crash in the producer.
struct StringCodec {
  using Value = std::string;
  [[nodiscard]] std::string encode(const std::string& value) const { return value; }
  [[nodiscard]] Result<std::string> decode(std::string_view bytes) const;
};

// Byte offset of the first invalid UTF-8 sequence in `text`, or text.size() if it is all valid.
[[nodiscard]] size_t first_invalid_utf8_offset(std::string_view text);

namespace codec_internal {
// The message-typed halves of the protobuf codecs, compiled once rather than per message type.
// Preconditions: `message` is non-null. On failure the message's content is unspecified.
[[nodiscard]] std::string encode_protobuf_binary(const google::protobuf::Message& message);
[[nodiscard]] Status decode_protobuf_binary(std::string_view bytes, google::protobuf::Message* message);
[[nodiscard]] std::string encode_protobuf_json(const google::protobuf::Message& message);
[[nodiscard]] Status decode_protobuf_json(std::string_view text, google::protobuf::Message* message);
}  // namespace codec_internal

// Protobuf binary wire format. decode fails (kBadMessage) on a truncated varint or field, an invalid wire
// type or tag, an unmatched group, invalid UTF-8 in a string field, or a malformed nested message; the
// message says which (best effort: it locates structural faults at the top level by byte offset). What the
// format cannot reject: the wire format has no end marker or length, so trailing bytes that happen to form
// valid fields are read as fields, and fields this schema does not know are kept as unknown fields (and
// re-encoded), which is protobuf's forward-compatibility rule. Bytes of one message type may therefore decode
// "successfully" as another; the topic's declared type is the only guard.
template <ProtobufMessage M>
struct ProtobufCodec {
  using Value = M;
  [[nodiscard]] std::string encode(const M& value) const {
    return codec_internal::encode_protobuf_binary(value);
  }
  [[nodiscard]] Result<M> decode(std::string_view bytes) const {
    M message;
    Status status = codec_internal::decode_protobuf_binary(bytes, &message);
    if (!status.ok()) return status.error();
    return message;
  }
};

// Protobuf's JSON mapping (https://protobuf.dev/programming-guides/proto3/#json), as Faust's `json`
// serializer. encode writes the proto field names (`timestamp_ms`, as Faust records and most non-protobuf
// consumers spell them) and every field, defaults included, so a reader without the schema sees the whole
// record; int64 values are JSON strings, as the mapping requires. decode accepts either field-name spelling
// and int64 as string or number, and rejects with kBadMessage anything else: malformed JSON, a top level that
// is not an object, a value of the wrong type, invalid UTF-8, and unknown fields. Unknown fields are rejected
// on purpose: JSON is usually written by hand or by another program, and a misspelt field silently dropped
// would lose data. The error message is one line: protobuf's reason (with the field path for type errors)
// and, for syntax errors, an excerpt of the input with the fault marked ">>here>>". A leniency of protobuf's
// parser (3.21), not ours to remove: a trailing comma in an object is accepted.
template <ProtobufMessage M>
struct ProtobufJsonCodec {
  using Value = M;
  [[nodiscard]] std::string encode(const M& value) const {
    return codec_internal::encode_protobuf_json(value);
  }
  [[nodiscard]] Result<M> decode(std::string_view text) const {
    M message;
    Status status = codec_internal::decode_protobuf_json(text, &message);
    if (!status.ok()) return status.error();
    return message;
  }
};

// A codec chosen by name in configuration (Faust's `serializer='json'`).
enum class CodecKind { kRaw, kString, kProtobuf, kJson };

// "raw", "string", "protobuf" or "json" (exact, lower case). Anything else is kInvalidArg naming the valid
// choices.
[[nodiscard]] Result<CodecKind> parse_codec_kind(std::string_view name);
// The name parse_codec_kind accepts for `kind`.
[[nodiscard]] std::string_view codec_kind_name(CodecKind kind);

// A codec for T whose kind is chosen at run time. Strings (std::string) take raw or string; protobuf messages
// take protobuf or json. make() refuses any other pairing with kInvalidArg, so a configuration mistake is
// reported when the topic is declared, not when the first record arrives.
template <typename T>
class SelectedCodec {
 public:
  using Value = T;

  [[nodiscard]] static Result<SelectedCodec> make(CodecKind kind) {
    if (!accepts(kind)) {
      return Error::of(ErrorCode::kInvalidArg, "codec '" + std::string(codec_kind_name(kind)) +
                                                   "' cannot carry " + type_name() + " (use " + choices() +
                                                   ")");
    }
    return SelectedCodec(kind);
  }

  [[nodiscard]] CodecKind kind() const { return kind_; }

  [[nodiscard]] std::string encode(const T& value) const {
    if constexpr (ProtobufMessage<T>) {
      return kind_ == CodecKind::kJson ? ProtobufJsonCodec<T>{}.encode(value)
                                       : ProtobufCodec<T>{}.encode(value);
    } else {
      return kind_ == CodecKind::kString ? StringCodec{}.encode(value) : RawCodec{}.encode(value);
    }
  }

  [[nodiscard]] Result<T> decode(std::string_view bytes) const {
    if constexpr (ProtobufMessage<T>) {
      return kind_ == CodecKind::kJson ? ProtobufJsonCodec<T>{}.decode(bytes)
                                       : ProtobufCodec<T>{}.decode(bytes);
    } else {
      return kind_ == CodecKind::kString ? StringCodec{}.decode(bytes) : RawCodec{}.decode(bytes);
    }
  }

 private:
  static_assert(ProtobufMessage<T> || std::same_as<T, std::string>,
                "SelectedCodec carries std::string or a generated protobuf message");

  explicit SelectedCodec(CodecKind kind) : kind_(kind) {}

  static bool accepts(CodecKind kind) {
    if constexpr (ProtobufMessage<T>) return kind == CodecKind::kProtobuf || kind == CodecKind::kJson;
    return kind == CodecKind::kRaw || kind == CodecKind::kString;
  }
  static std::string type_name() {
    if constexpr (ProtobufMessage<T>) return T::descriptor()->full_name();
    return "std::string";
  }
  static std::string choices() {
    if constexpr (ProtobufMessage<T>) return "'protobuf' or 'json'";
    return "'raw' or 'string'";
  }

  CodecKind kind_;
};

static_assert(CodecFor<RawCodec, std::string>);
static_assert(CodecFor<StringCodec, std::string>);
static_assert(Codec<SelectedCodec<std::string>>);

}  // namespace mephisto
