// Out-of-line templates of stream.h: group_by, through and take. Included at the end of stream.h only.
#pragma once

namespace mephisto {

namespace app_internal {

// Internal topics (repartition) carry values compactly: protobuf binary, or the raw bytes of strings.
template <typename T>
CodecKind internal_codec_kind() {
  if constexpr (ProtobufMessage<T>) {
    return CodecKind::kProtobuf;
  } else {
    return CodecKind::kRaw;
  }
}

// Starts (once per agent and topic) the forwarder that sends every event of `source` to `topic` under the key
// key_fn(event), and returns a stream of the agent reading `topic`. Each forwarded event is acked once its
// copy is delivered.
template <typename K, typename V, typename K2>
Stream<K2, V> relay_through(const std::shared_ptr<Source<K, V>>& source, const Topic<K2, V>& topic,
                            std::function<K2(const Event<K, V>&)> key_fn, bool ack_on_advance) {
  Engine* engine = source->engine;
  AgentDecl* agent = source->agent;
  const Engine::Relay relay = engine->relay(*agent, topic.decl());
  if (relay.created) {
    engine->spawn_helper(agent->name + "/relay:" + topic.name(), [engine, source, topic, key_fn] {
      for (;;) {
        std::optional<Event<K, V>> event = source->next();
        if (!event) return;
        engine->set_current(event->core());
        Status sent = topic.send(key_fn(*event), event->value());
        (void)sent;  // see EchoSource
        engine->clear_current();
      }
    });
  }
  auto next = std::make_shared<BufferSource<K2, V>>(relay.buffer, topic.key_codec(), topic.value_codec());
  next->engine = engine;
  next->agent = agent;
  next->generation = source->generation;
  return Stream<K2, V>(std::move(next), ack_on_advance);
}

}  // namespace app_internal

template <typename K, typename V>
template <typename F, typename K2>
Stream<K2, V> Stream<K, V>::group_by(F key_fn, const std::string& name, std::optional<CodecKind> key_codec,
                                     int32_t partitions) {
  Engine* engine = source_->engine;
  const CodecKind key_kind = key_codec.value_or(app_internal::internal_codec_kind<K2>());
  const CodecKind value_kind = app_internal::internal_codec_kind<V>();
  app_internal::TopicDecl* decl = engine->declare_repartition(source_->agent->source->name, name, partitions,
                                                              std::string(codec_kind_name(key_kind)),
                                                              std::string(codec_kind_name(value_kind)));
  Topic<K2, V> topic(engine, decl, app_internal::codec_or_die<K2>(key_kind, decl->name),
                     app_internal::codec_or_die<V>(value_kind, decl->name));
  return app_internal::relay_through<K, V, K2>(
      source_, topic, std::function<K2(const Event<K, V>&)>(std::move(key_fn)), ack_on_advance_);
}

template <typename K, typename V>
Stream<K, V> Stream<K, V>::through(const Topic<K, V>& topic) {
  return app_internal::relay_through<K, V, K>(
      source_, topic, [](const Event<K, V>& event) { return event.key(); }, ack_on_advance_);
}

template <typename K, typename V>
void Stream<K, V>::Batches::iterator::advance() {
  Stream* stream = batches_->stream_;
  Engine* engine = stream->source_->engine;
  engine->clear_current();
  batch_.clear();  // acks the previous batch (events ack when dropped)
  std::optional<Event<K, V>> first = stream->source_->next();
  if (!first) return;
  batch_.push_back(std::move(*first));
  const int64_t deadline_ms = engine->env().clock->now_ms() + batches_->within_ms_;
  while (batch_.size() < batches_->max_) {
    std::optional<Event<K, V>> more = stream->source_->next(deadline_ms);
    if (!more) break;
    batch_.push_back(std::move(*more));
  }
  std::vector<app_internal::EventCore*> cores;
  cores.reserve(batch_.size());
  for (auto& event : batch_) cores.push_back(event.core());
  engine->set_current(std::move(cores));
}

}  // namespace mephisto
