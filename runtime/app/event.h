// Events: one consumed record on its way through a worker's agents, and the ack that releases its offset.
//
// An EventCore is shared by everyone who still needs the record: each stream it was dispatched to, and each
// send made while processing it (until that send's delivery report). When the last holder lets go, the record
// is acked to the worker's offset bookkeeping (Faust's rule: commit the highest contiguous acked offset + 1).
// So in at-least-once, an input offset is never committed before the outputs made from it are on the broker.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "runtime/seam/broker_client.h"

namespace mephisto {

class Engine;

namespace app_internal {

struct EventCore {
  ConsumerRecord record;
  Engine* engine = nullptr;  // null for records that came through an in-memory channel: nothing to ack
  // The partition's assignment epoch when the record was fetched: an ack from an older epoch (the partition
  // was revoked, perhaps re-assigned, meanwhile) must not reach the new assignment's bookkeeping.
  uint64_t assignment_epoch = 0;
  int32_t holders = 0;
  // False once the record must not be acked when released: dropped from a revoked partition's buffer, or an
  // output made from it failed. Its offset then stays uncommitted, and the next owner reprocesses it.
  bool ack_on_release = true;
  void* partition = nullptr;  // the engine's per-partition state (opaque here)
  // Events this one was made from (a record sent into an in-memory channel holds the input being processed
  // when it was sent): released with this one, so an input is acked only when what it fed into a channel is
  // done too.
  std::vector<EventCore*> upstream;
};

// Adds a holder. Precondition: core != nullptr and it still has a holder (the caller's).
void retain(EventCore* core);
// Drops a holder; the last one acks the record (if tracked) and frees the core.
void release(EventCore* core);

}  // namespace app_internal

// A typed event as an agent sees it: key, value and the record's position and metadata. Holds one reference
// to its record: the record is acked when every Event and pending send made from it is done. Move-only.
//
// Acks are automatic: the stream acks the event when the agent asks for the next one (or leaves the loop, or
// throws). On a noack() stream the agent owns the ack: move the event out to keep it and call ack() when
// done; an event dropped without ack() is acked when dropped (so a forgotten ack never stalls the partition's
// commits).
template <typename K, typename V>
class Event {
 public:
  // Takes over one holder reference of `core`.
  Event(app_internal::EventCore* core, K key, V value, bool key_is_null = false, bool value_is_null = false)
      : core_(core),
        key_(std::move(key)),
        value_(std::move(value)),
        key_is_null_(key_is_null),
        value_is_null_(value_is_null) {}
  Event(Event&& other) noexcept
      : core_(std::exchange(other.core_, nullptr)),
        key_(std::move(other.key_)),
        value_(std::move(other.value_)),
        key_is_null_(other.key_is_null_),
        value_is_null_(other.value_is_null_) {}
  Event& operator=(Event&& other) noexcept {
    if (this != &other) {
      ack();
      core_ = std::exchange(other.core_, nullptr);
      key_ = std::move(other.key_);
      value_ = std::move(other.value_);
      key_is_null_ = other.key_is_null_;
      value_is_null_ = other.value_is_null_;
    }
    return *this;
  }
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;
  ~Event() { ack(); }

  [[nodiscard]] const K& key() const { return key_; }
  [[nodiscard]] const V& value() const { return value_; }
  [[nodiscard]] V& value() { return value_; }
  // The record had no key (a null key decodes as K{}).
  [[nodiscard]] bool key_is_null() const { return key_is_null_; }
  // The record was a tombstone (a null value decodes as V{}).
  [[nodiscard]] bool value_is_null() const { return value_is_null_; }
  // Topic, partition, offset, timestamp and headers of the record. Precondition: not acked.
  [[nodiscard]] const ConsumerRecord& record() const { return core_->record; }
  [[nodiscard]] const std::string& topic() const { return core_->record.topic; }
  [[nodiscard]] int32_t partition() const { return core_->record.partition; }
  [[nodiscard]] int64_t offset() const { return core_->record.offset; }
  [[nodiscard]] int64_t timestamp_ms() const { return core_->record.timestamp_ms; }
  [[nodiscard]] const std::vector<Header>& headers() const { return core_->record.headers; }

  // Releases this event's hold on its record. Idempotent.
  void ack() {
    if (core_ != nullptr) app_internal::release(std::exchange(core_, nullptr));
  }
  [[nodiscard]] bool acked() const { return core_ == nullptr; }
  // For the runtime (sinks, replies): the shared record. Null once acked.
  [[nodiscard]] app_internal::EventCore* core() const { return core_; }
  // For the runtime's operators (map): hands this event's holder reference to the caller; the event is then
  // acked() from its own point of view.
  [[nodiscard]] app_internal::EventCore* take_core() { return std::exchange(core_, nullptr); }

 private:
  app_internal::EventCore* core_;
  K key_;
  V value_;
  bool key_is_null_ = false;
  bool value_is_null_ = false;
};

}  // namespace mephisto
