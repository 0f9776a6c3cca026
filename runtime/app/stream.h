// Stream<K, V>: what an agent iterates — Faust's stream as a plain C++ loop. The loop's fiber suspends while
// no event is ready; the loop ends when the worker stops (after the buffer drains).
//
//   for (auto& event : stream) { ... event.key(), event.value(), event.offset() ... }
//   for (const auto& [key, value] : stream.items()) { ... }
//
// Each event is acked when the loop asks for the next one (or leaves, or throws). Operators build new streams
// over the same input; call them once, before looping:
//   filter(pred)           only values for which pred is true go on (the others are acked at once);
//   map(fn)                the value becomes fn(value);
//   group_by(key_fn, name) re-partitions through the internal topic {app}-{topic}-{name}-repartition: every
//   event
//                          is sent there with key key_fn(event), and the returned stream reads that topic's
//                          partitions assigned to this worker (so all events of a key meet in one actor);
//   through(topic)         sends every event to `topic` and reads it back from there;
//   echo(topics)           also sends every event to each of `topics`, and goes on;
//   take(n, within_ms)     batches of up to n events, or fewer once within_ms passed since the batch's first;
//   enumerate()            (index, event) pairs, counting from 0;
//   noack()                the loop does not ack: move events out and ack() them yourself (see event.h).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "runtime/app/event.h"
#include "runtime/app/topic.h"

namespace mephisto {

namespace app_internal {

// The chain of pullers behind a Stream.
template <typename K, typename V>
class Source {
 public:
  virtual ~Source() = default;
  // The next event, parking until one is ready or deadline_ms passes (worker clock); nullopt at the deadline
  // or once the stream has ended (then ended() is true).
  virtual std::optional<Event<K, V>> next(int64_t deadline_ms = INT64_MAX) = 0;
  [[nodiscard]] virtual bool ended() const = 0;
  Engine* engine = nullptr;
  AgentDecl* agent = nullptr;
  uint64_t generation = 0;
};

// Reads an agent buffer and decodes; undecodable records go to the bad-record policy and are skipped.
template <typename K, typename V>
class BufferSource final : public Source<K, V> {
 public:
  BufferSource(RawChannel* buffer, SelectedCodec<K> key_codec, SelectedCodec<V> value_codec)
      : buffer_(buffer), key_codec_(key_codec), value_codec_(value_codec) {}

  [[nodiscard]] bool ended() const override { return buffer_->closed() && buffer_->size() == 0; }
  std::optional<Event<K, V>> next(int64_t deadline_ms) override {
    for (;;) {
      EventCore* core = this->engine->pull(buffer_, this->agent, this->generation, deadline_ms);
      if (core == nullptr) return std::nullopt;
      const ConsumerRecord& record = core->record;
      K key{};
      if (record.key.has_value()) {
        auto decoded = key_codec_.decode(*record.key);
        if (!decoded.ok()) {
          this->engine->on_bad_record(core,
                                      Error::of(decoded.error().code, "key: " + decoded.error().message));
          release(core);
          continue;
        }
        key = std::move(decoded).value();
      }
      V value{};
      if (record.value.has_value()) {
        auto decoded = value_codec_.decode(*record.value);
        if (!decoded.ok()) {
          this->engine->on_bad_record(core,
                                      Error::of(decoded.error().code, "value: " + decoded.error().message));
          release(core);
          continue;
        }
        value = std::move(decoded).value();
      }
      return Event<K, V>(core, std::move(key), std::move(value), !record.key.has_value(),
                         !record.value.has_value());
    }
  }

 private:
  RawChannel* buffer_;
  SelectedCodec<K> key_codec_;
  SelectedCodec<V> value_codec_;
};

template <typename K, typename V>
class FilterSource final : public Source<K, V> {
 public:
  FilterSource(std::shared_ptr<Source<K, V>> parent, std::function<bool(const V&)> pred)
      : parent_(std::move(parent)), pred_(std::move(pred)) {}
  [[nodiscard]] bool ended() const override { return parent_->ended(); }
  std::optional<Event<K, V>> next(int64_t deadline_ms) override {
    for (;;) {
      auto event = parent_->next(deadline_ms);
      if (!event || pred_(event->value())) return event;
      // Filtered out: acked when `event` goes out of scope.
    }
  }

 private:
  std::shared_ptr<Source<K, V>> parent_;
  std::function<bool(const V&)> pred_;
};

template <typename K, typename V, typename V2>
class MapSource final : public Source<K, V2> {
 public:
  MapSource(std::shared_ptr<Source<K, V>> parent, std::function<V2(const V&)> fn)
      : parent_(std::move(parent)), fn_(std::move(fn)) {}
  [[nodiscard]] bool ended() const override { return parent_->ended(); }
  std::optional<Event<K, V2>> next(int64_t deadline_ms) override {
    auto event = parent_->next(deadline_ms);
    if (!event) return std::nullopt;
    V2 mapped = fn_(event->value());  // may throw: `event` still holds the record and acks it on unwinding
    const bool key_is_null = event->key_is_null();
    K key = event->key();
    return Event<K, V2>(event->take_core(), std::move(key), std::move(mapped), key_is_null, false);
  }

 private:
  std::shared_ptr<Source<K, V>> parent_;
  std::function<V2(const V&)> fn_;
};

// Passes events on after sending a copy of each to `topics` (the copy holds the event until delivered).
template <typename K, typename V>
class EchoSource final : public Source<K, V> {
 public:
  EchoSource(std::shared_ptr<Source<K, V>> parent, std::vector<Topic<K, V>> topics)
      : parent_(std::move(parent)), topics_(std::move(topics)) {}
  [[nodiscard]] bool ended() const override { return parent_->ended(); }
  std::optional<Event<K, V>> next(int64_t deadline_ms) override {
    auto event = parent_->next(deadline_ms);
    if (!event) return std::nullopt;
    this->engine->set_current(event->core());
    for (const auto& topic : topics_) {
      Status sent = topic.send(event->key(), event->value());
      (void)sent;  // a failed delivery stops the worker (Engine::send); the queueing itself only fails when
                   // the worker is stopping, and then the event is redelivered to the next owner anyway
    }
    this->engine->clear_current();
    return event;
  }

 private:
  std::shared_ptr<Source<K, V>> parent_;
  std::vector<Topic<K, V>> topics_;
};

}  // namespace app_internal

template <typename K, typename V>
class Stream {
 public:
  using EventType = Event<K, V>;

  Stream(std::shared_ptr<app_internal::Source<K, V>> source, bool ack_on_advance = true)
      : source_(std::move(source)), ack_on_advance_(ack_on_advance) {}

  // ---- iteration
  class iterator {
   public:
    using value_type = Event<K, V>;
    using difference_type = std::ptrdiff_t;
    iterator() = default;
    explicit iterator(Stream* stream) : stream_(stream) { advance(); }
    iterator(iterator&&) noexcept = default;
    iterator& operator=(iterator&&) noexcept = default;
    ~iterator() { finish_current(); }
    Event<K, V>& operator*() { return *current_; }
    Event<K, V>* operator->() { return &*current_; }
    iterator& operator++() {
      advance();
      return *this;
    }
    bool operator==(std::default_sentinel_t) const { return !current_.has_value(); }

   private:
    void finish_current() {
      if (!current_) return;
      if (stream_->ack_on_advance_) current_->ack();
      current_.reset();  // a noack event the agent did not move out is acked here (event.h)
      stream_->source_->engine->clear_current();
    }
    void advance() {
      finish_current();
      current_ = stream_->source_->next();
      if (current_) stream_->source_->engine->set_current(current_->core());
    }
    Stream* stream_ = nullptr;
    std::optional<Event<K, V>> current_;
  };
  iterator begin() { return iterator(this); }
  std::default_sentinel_t end() { return {}; }

  // The next event, parking until one is ready; nullopt once the stream has ended. For agents that drive the
  // stream by hand; the returned event is the caller's to ack (by dropping it or calling ack()).
  std::optional<Event<K, V>> next() { return source_->next(); }

  // (key, value) pairs.
  class Items {
   public:
    explicit Items(Stream* stream) : stream_(stream) {}
    class iterator {
     public:
      explicit iterator(typename Stream::iterator inner) : inner_(std::move(inner)) {}
      std::pair<const K&, const V&> operator*() { return {inner_->key(), inner_->value()}; }
      iterator& operator++() {
        ++inner_;
        return *this;
      }
      bool operator==(std::default_sentinel_t s) const { return inner_ == s; }

     private:
      typename Stream::iterator inner_;
    };
    iterator begin() { return iterator(stream_->begin()); }
    std::default_sentinel_t end() { return {}; }

   private:
    Stream* stream_;
  };
  Items items() { return Items(this); }
  // The events themselves (the stream is already a range of events; for Faust's spelling).
  Stream& events() { return *this; }

  // ---- operators
  Stream filter(std::function<bool(const V&)> pred) {
    return derive<K, V>(std::make_shared<app_internal::FilterSource<K, V>>(source_, std::move(pred)));
  }

  template <typename F, typename V2 = std::invoke_result_t<F, const V&>>
  Stream<K, V2> map(F fn) {
    return derive<K, V2>(std::make_shared<app_internal::MapSource<K, V, V2>>(
        source_, std::function<V2(const V&)>(std::move(fn))));
  }

  Stream echo(std::vector<Topic<K, V>> topics) {
    return derive<K, V>(std::make_shared<app_internal::EchoSource<K, V>>(source_, std::move(topics)));
  }

  Stream noack() { return Stream(source_, false); }

  // Re-partitions by key_fn(event) through the internal topic {app}-{source topic}-{name}-repartition
  // (partitions: `partitions`, default AppSettings::topic_partitions; the new key's codec `key_codec`,
  // default as for topics). Every actor of the agent may call it with the same name: one forwarder feeds them
  // all.
  template <typename F, typename K2 = std::invoke_result_t<F, const Event<K, V>&>>
  Stream<K2, V> group_by(F key_fn, const std::string& name, std::optional<CodecKind> key_codec = std::nullopt,
                         int32_t partitions = -1);

  // Sends every event to `topic` and returns the stream that reads `topic` back (a buffer of this agent).
  Stream through(const Topic<K, V>& topic);

  // Batches of up to `max` events, cut short once within_ms passed since a batch's first event (so a slow
  // trickle still moves). The previous batch is acked when the next is asked for.
  class Batches;
  Batches take(size_t max, int64_t within_ms);

  // (index, event) pairs counting from 0.
  class Enumerated;
  Enumerated enumerate();

  [[nodiscard]] const std::shared_ptr<app_internal::Source<K, V>>& source() const { return source_; }

 private:
  template <typename K2, typename V2>
  Stream<K2, V2> derive(std::shared_ptr<app_internal::Source<K2, V2>> next) {
    next->engine = source_->engine;
    next->agent = source_->agent;
    next->generation = source_->generation;
    return Stream<K2, V2>(std::move(next), ack_on_advance_);
  }

  std::shared_ptr<app_internal::Source<K, V>> source_;
  bool ack_on_advance_ = true;
};

// ---- take()
template <typename K, typename V>
class Stream<K, V>::Batches {
 public:
  Batches(Stream* stream, size_t max, int64_t within_ms)
      : stream_(stream), max_(max), within_ms_(within_ms) {}
  class iterator {
   public:
    explicit iterator(Batches* batches) : batches_(batches) { advance(); }
    ~iterator() { batches_->stream_->source_->engine->clear_current(); }
    std::vector<Event<K, V>>& operator*() { return batch_; }
    iterator& operator++() {
      advance();
      return *this;
    }
    bool operator==(std::default_sentinel_t) const { return batch_.empty(); }

   private:
    void advance();
    Batches* batches_;
    std::vector<Event<K, V>> batch_;
  };
  iterator begin() { return iterator(this); }
  std::default_sentinel_t end() { return {}; }

 private:
  friend class iterator;
  Stream* stream_;
  size_t max_;
  int64_t within_ms_;
};

template <typename K, typename V>
typename Stream<K, V>::Batches Stream<K, V>::take(size_t max, int64_t within_ms) {
  return Batches(this, max == 0 ? 1 : max, within_ms);
}

// ---- enumerate()
template <typename K, typename V>
class Stream<K, V>::Enumerated {
 public:
  explicit Enumerated(Stream* stream) : stream_(stream) {}
  class iterator {
   public:
    explicit iterator(typename Stream::iterator inner) : inner_(std::move(inner)) {}
    std::pair<int64_t, Event<K, V>&> operator*() { return {index_, *inner_}; }
    iterator& operator++() {
      ++inner_;
      ++index_;
      return *this;
    }
    bool operator==(std::default_sentinel_t s) const { return inner_ == s; }

   private:
    typename Stream::iterator inner_;
    int64_t index_ = 0;
  };
  iterator begin() { return iterator(stream_->begin()); }
  std::default_sentinel_t end() { return {}; }

 private:
  Stream* stream_;
};

template <typename K, typename V>
typename Stream<K, V>::Enumerated Stream<K, V>::enumerate() {
  return Enumerated(this);
}

}  // namespace mephisto

#include "runtime/app/stream_impl.h"
