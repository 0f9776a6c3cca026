#include "runtime/app/raw_channel.h"

#include <cassert>

namespace mephisto {

RawChannel::RawChannel(std::string name, size_t capacity) : name_(std::move(name)), capacity_(capacity) {
  assert(capacity_ > 0);
}

void RawChannel::push(Scheduler& scheduler, app_internal::EventCore* event) {
  assert(!closed_ && "push into a closed channel");
  events_.push_back(event);
  if (events_.size() > capacity_ / 2) above_half_ = true;
  // Wake every waiting reader (at most the agent's actors and relays): a registration can be stale (a reader
  // that stopped waiting at its deadline), so waking only one could leave a live reader asleep.
  wake_readers(scheduler);
}

app_internal::EventCore* RawChannel::try_pop(Scheduler& scheduler) {
  if (events_.empty()) return nullptr;
  app_internal::EventCore* event = events_.front();
  events_.pop_front();
  if (events_.size() < capacity_) wake_writers(scheduler);
  if (above_half_ && events_.size() <= capacity_ / 2) {
    above_half_ = false;
    if (room_hook_) room_hook_();
  }
  return event;
}

std::deque<app_internal::EventCore*> RawChannel::remove_if(
    const std::function<bool(const app_internal::EventCore&)>& drop) {
  std::deque<app_internal::EventCore*> removed;
  std::deque<app_internal::EventCore*> kept;
  for (app_internal::EventCore* event : events_) (drop(*event) ? removed : kept).push_back(event);
  events_.swap(kept);
  if (above_half_ && events_.size() <= capacity_ / 2) {
    above_half_ = false;
    if (room_hook_) room_hook_();
  }
  return removed;
}

void RawChannel::close(Scheduler& scheduler) {
  closed_ = true;
  wake_readers(scheduler);
  wake_writers(scheduler);
}

void RawChannel::wake_readers(Scheduler& scheduler) {
  std::deque<FiberId> readers;
  readers.swap(readers_);
  for (FiberId reader : readers) scheduler.wake(reader);
}

void RawChannel::wake_writers(Scheduler& scheduler) {
  std::deque<FiberId> writers;
  writers.swap(writers_);
  for (FiberId writer : writers) scheduler.wake(writer);
}

}  // namespace mephisto
