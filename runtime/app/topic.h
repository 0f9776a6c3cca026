// Topic<K, V>: a typed handle on a Kafka topic or an in-memory channel declared by an App (app.h). Cheap to
// copy; valid as long as its App. Keys and values are std::string or generated protobuf messages (models/),
// carried by the codecs of runtime/codec.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "runtime/app/engine.h"
#include "runtime/codec/codec.h"

namespace mephisto {

struct TopicOptions {
  // Codecs by kind. Defaults, as Faust's (key serializer raw, value serializer json): std::string keys and
  // values are raw bytes; protobuf keys and values are protobuf JSON.
  std::optional<CodecKind> key_codec;
  std::optional<CodecKind> value_codec;
  // Create the topic at start if it is missing (internal topics always are). External topics are not created
  // unless asked: a missing one is a startup error naming it.
  bool create = false;
  std::optional<int32_t> partitions;           // when created; default AppSettings::topic_partitions
  std::optional<int16_t> replication_factor;   // when created; default AppSettings::topic_replication_factor
  std::map<std::string, std::string> configs;  // topic configs when created, e.g. {"retention.ms", "3600000"}
};

struct SendOptions {
  int32_t partition = -1;  // -1: Kafka's default partitioner over the encoded key
  std::vector<Header> headers;
  int64_t timestamp_ms = -1;
};

namespace app_internal {
template <typename T>
CodecKind default_codec_kind() {
  if constexpr (ProtobufMessage<T>) {
    return CodecKind::kJson;
  } else {
    return CodecKind::kRaw;
  }
}

// A codec of the chosen kind, or the process stops: a kind that cannot carry T is a declaration error in the
// program itself (App::topic checks it with a clear message before this is reached).
template <typename T>
SelectedCodec<T> codec_or_die(CodecKind kind, const std::string& topic);
}  // namespace app_internal

template <typename K, typename V>
class Topic {
 public:
  Topic() = default;

  [[nodiscard]] const std::string& name() const { return decl_->name; }
  [[nodiscard]] bool valid() const { return decl_ != nullptr; }

  // Encodes and sends a record. Inside an agent the input event being processed is acked only once this
  // record is delivered (at-least-once). Errors: kState (the worker is not running); delivery failures stop
  // the worker (Engine::send).
  Status send(const K& key, const V& value, const SendOptions& options = {}) const {
    return engine_->send(record(key, value, options));
  }

  // The record send() would produce (encoded).
  [[nodiscard]] ProducerRecord record(const K& key, const V& value, const SendOptions& options = {}) const {
    ProducerRecord out;
    out.topic = decl_->name;
    out.partition = options.partition;
    out.key = key_codec_.encode(key);
    out.value = value_codec_.encode(value);
    out.headers = options.headers;
    out.timestamp_ms = options.timestamp_ms;
    return out;
  }

  [[nodiscard]] const SelectedCodec<K>& key_codec() const { return key_codec_; }
  [[nodiscard]] const SelectedCodec<V>& value_codec() const { return value_codec_; }
  [[nodiscard]] app_internal::TopicDecl* decl() const { return decl_; }
  [[nodiscard]] Engine* engine() const { return engine_; }

  Topic(Engine* engine, app_internal::TopicDecl* decl, SelectedCodec<K> key_codec,
        SelectedCodec<V> value_codec)
      : engine_(engine), decl_(decl), key_codec_(key_codec), value_codec_(value_codec) {}

 private:
  Engine* engine_ = nullptr;
  app_internal::TopicDecl* decl_ = nullptr;
  SelectedCodec<K> key_codec_ = app_internal::codec_or_die<K>(app_internal::default_codec_kind<K>(), "");
  SelectedCodec<V> value_codec_ = app_internal::codec_or_die<V>(app_internal::default_codec_kind<V>(), "");
};

namespace app_internal {
template <typename T>
SelectedCodec<T> codec_or_die(CodecKind kind, const std::string& topic) {
  auto codec = SelectedCodec<T>::make(kind);
  if (!codec.ok()) {
    fmt::print(stderr, "mephisto: topic '{}': {}\n", topic, codec.error().message);
    std::abort();
  }
  return codec.value();
}
}  // namespace app_internal

}  // namespace mephisto
