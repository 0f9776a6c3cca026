// RawChannel: one agent's input buffer — a bounded FIFO of events shared by the agent's actors, with fibers
// parking on it (Faust's stream buffer, stream_buffer_maxsize). Single OS thread; no locks.
#pragma once

#include <cstddef>
#include <deque>
#include <functional>
#include <string>

#include "runtime/app/event.h"
#include "runtime/seam/clock.h"

namespace mephisto {

class RawChannel {
 public:
  // capacity > 0.
  RawChannel(std::string name, size_t capacity);

  [[nodiscard]] const std::string& name() const { return name_; }
  [[nodiscard]] size_t size() const { return events_.size(); }
  [[nodiscard]] size_t capacity() const { return capacity_; }
  [[nodiscard]] size_t room() const { return events_.size() >= capacity_ ? 0 : capacity_ - events_.size(); }
  [[nodiscard]] bool closed() const { return closed_; }

  // Appends an event (the channel takes over one holder reference) and wakes one waiting reader. The poll
  // fiber may overfill by up to one poll batch (it pauses fetching instead of waiting); senders into
  // in-memory channels wait for room first (wait_for_room).
  void push(Scheduler& scheduler, app_internal::EventCore* event);
  // The oldest event, or nullptr if empty. The caller takes over the holder reference.
  app_internal::EventCore* try_pop(Scheduler& scheduler);
  // Registers the calling fiber as waiting for an event (woken by push or close); the caller parks itself.
  void add_reader(FiberId fiber) { readers_.push_back(fiber); }
  // Registers the calling fiber as waiting for room; woken when the size falls below capacity.
  void add_writer(FiberId fiber) { writers_.push_back(fiber); }
  // Called once the buffer falls to half its capacity (flow control's resume signal).
  void set_room_hook(std::function<void()> hook) { room_hook_ = std::move(hook); }

  // Removes (without acking) the events `drop` selects and returns them, oldest first: the caller disposes of
  // them (a revoked partition's buffered records are redelivered to its next owner, not acked here).
  std::deque<app_internal::EventCore*> remove_if(
      const std::function<bool(const app_internal::EventCore&)>& drop);
  // No more pushes; readers drain what is left and then see the end. Wakes every waiting fiber.
  void close(Scheduler& scheduler);
  // Wakes every waiting reader (a supervisor restart: they re-check their generation).
  void wake_readers(Scheduler& scheduler);

 private:
  void wake_writers(Scheduler& scheduler);

  std::string name_;
  size_t capacity_;
  std::deque<app_internal::EventCore*> events_;
  std::deque<FiberId> readers_;
  std::deque<FiberId> writers_;
  std::function<void()> room_hook_;
  bool above_half_ = false;
  bool closed_ = false;
};

}  // namespace mephisto
