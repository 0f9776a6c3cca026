// LoopCore, part 1: construction and teardown, fibers (spawn, park, wake, yield, switching stacks, unwinding)
// and the timer heap of park deadlines. Read loop_core.h first.
#include "runtime/loop/loop_core.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

namespace mephisto::loop_internal {

// ---------------------------------------------------------------------------------------------------------------
// Construction and teardown

LoopCore::LoopCore(const EventLoopOptions& options) {
  epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
  MEPHISTO_LOOP_CHECK(epoll_fd_ >= 0, "epoll_create1 failed: " + errno_text(errno));
  wakeup_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  MEPHISTO_LOOP_CHECK(wakeup_fd_ >= 0, "eventfd failed: " + errno_text(errno));
  epoll_event event{};
  event.events = EPOLLIN;
  event.data.u64 = kWakeupToken;
  MEPHISTO_LOOP_CHECK(::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wakeup_fd_, &event) == 0,
                      "epoll_ctl(ADD eventfd) failed: " + errno_text(errno));
  // Completions travel back through post(): the fiber's state may only be touched on the loop thread.
  blocking_ = std::make_unique<BlockingPool>(options.blocking_threads, options.blocking_queue_max,
                                             [this](BlockingCall* call) {
                                               post([this, call] {
                                                 call->done = true;
                                                 wake(call->fiber);
                                               });
                                             });
}

LoopCore::~LoopCore() {
  MEPHISTO_LOOP_CHECK(!running_.load() && current_ == nullptr,
                      std::string("EventLoop destroyed while run() is active (from a fiber, a callback or "
                                  "another thread)"));
  destroying_ = true;
  // Helper threads first: a call still running may use its fiber's stack, which the unwinding below frees.
  blocking_.reset();
  run_queue_.clear();
  timers_.clear();
  stale_timers_ = 0;
  // Newest first, like destruction order in a scope. Unstarted fibers just lose their body.
  std::vector<FiberId> ids;
  ids.reserve(fibers_.size());
  for (const auto& entry : fibers_) ids.push_back(entry.first);
  std::sort(ids.begin(), ids.end(), [](FiberId a, FiberId b) { return a > b; });
  for (const FiberId id : ids) {
    const auto it = fibers_.find(id);
    if (it->second->started) unwind(it->second.get());
    fibers_.erase(it);
  }
  std::deque<std::function<void()>> dropped_posts;
  {
    std::lock_guard<std::mutex> lock(posts_mutex_);
    dropped_posts.swap(posts_);
  }
  dropped_posts.clear();  // outside the lock: a capture's destructor may post()
  watches_.clear();
  ::close(wakeup_fd_);
  ::close(epoll_fd_);
}

// ---------------------------------------------------------------------------------------------------------------
// Fibers

void LoopCore::check_loop_thread(const char* operation) const {
  // While run() is active its thread owns every piece of fiber state; another thread must go through post().
  MEPHISTO_LOOP_CHECK(
      !running_.load(std::memory_order_relaxed) ||
          loop_thread_.load(std::memory_order_relaxed) == std::this_thread::get_id(),
      std::string(operation) + "() called from another thread while the loop runs; use post()");
}

Fiber* LoopCore::calling_fiber(const char* operation) const {
  check_loop_thread(operation);
  MEPHISTO_LOOP_CHECK(current_ != nullptr,
                      std::string(operation) + "() called outside any fiber (only fibers can be suspended)");
  return current_;
}

Fiber* LoopCore::find(FiberId id) const {
  const auto it = fibers_.find(id);
  return it == fibers_.end() ? nullptr : it->second.get();
}

FiberId LoopCore::spawn(std::string name, std::function<void()> body) {
  check_loop_thread("spawn");
  // During teardown nothing new may start: it would never run, and ~LoopCore is already past its fiber list.
  if (destroying_) return kNoFiber;
  MEPHISTO_LOOP_CHECK(body != nullptr, "spawn of fiber '" + name + "' with an empty body");
  auto fiber = std::make_unique<Fiber>();
  fiber->id = next_fiber_id_++;
  fiber->name = std::move(name);
  fiber->body = std::move(body);
  Fiber* raw = fiber.get();
  fibers_.emplace(raw->id, std::move(fiber));
  // Never inline: the caller keeps running until it yields or parks, as the Scheduler contract says.
  run_queue_.push_back(raw);
  return raw->id;
}

bool LoopCore::park_until(int64_t deadline_ms) {
  Fiber* fiber = calling_fiber("park_until");
  if (fiber->unwinding) {
    keep_unwinding(fiber);
    return false;
  }
  if (fiber->permit) {
    fiber->permit = false;
    return true;
  }
  fiber->state = FiberState::kParked;
  fiber->park_result = false;
  // A deadline already past still goes through the heap: it fires at the next timer pass, after the other
  // runnable fibers had their turn, so a fiber polling with a past deadline cannot starve the loop.
  if (deadline_ms != kNever) push_timer(fiber, deadline_ms);
  suspend(fiber);
  return fiber->park_result;
}

void LoopCore::wake(FiberId id) {
  check_loop_thread("wake");
  if (destroying_) return;  // fibers being unwound are never scheduled again
  Fiber* fiber = find(id);
  if (fiber == nullptr) return;  // finished or unknown: ids are never reused, so this is always harmless
  switch (fiber->state) {
    case FiberState::kParked:
      cancel_timer(fiber);
      fiber->park_result = true;
      fiber->state = FiberState::kRunnable;
      run_queue_.push_back(fiber);
      return;
    case FiberState::kNew:
    case FiberState::kRunnable:
    case FiberState::kRunning:
      // Not parked: keep one permit, so a completion that races ahead of the park is not lost.
      fiber->permit = true;
      return;
    case FiberState::kDone:
      return;
  }
}

void LoopCore::yield() {
  Fiber* fiber = calling_fiber("yield");
  if (fiber->unwinding) {
    keep_unwinding(fiber);
    return;
  }
  // To the back of the FIFO: every fiber runnable now runs once before this one continues.
  fiber->state = FiberState::kRunnable;
  run_queue_.push_back(fiber);
  suspend(fiber);
}

void LoopCore::resume(Fiber* fiber) {
  MEPHISTO_LOOP_CHECK(current_ == nullptr, describe(fiber) + " resumed from inside " + describe(current_));
  fiber->state = FiberState::kRunning;
  current_ = fiber;
  if (!fiber->started) {
    fiber->started = true;
    fiber->context = fibers::create(stacks_, fiber->bounds, [this, fiber](ctx::fiber&& caller) {
      return fiber_main(fiber, std::move(caller));
    });
  }
  fibers::switch_in(fiber->context, fiber->bounds);
  current_ = nullptr;
  if (fiber->state == FiberState::kDone) release(fiber);
}

void LoopCore::suspend(Fiber* fiber) {
  // If ~LoopCore destroys this fiber meanwhile, this throws the forced_unwind that unwinds its stack.
  fibers::switch_out(fiber->caller, fiber->bounds, fiber->unwind);
}

ctx::fiber LoopCore::fiber_main(Fiber* fiber, ctx::fiber&& caller) {
  fiber->caller = std::move(caller);
  fibers::fiber_entered(fiber->bounds);
  try {
    // Moved onto this stack so that its captures die with the fiber, by return or by unwinding.
    const std::function<void()> body = std::move(fiber->body);
    fiber->body = nullptr;
    body();
  } catch (const ctx::detail::forced_unwind&) {
    // Leaving this stack for good; Boost.Context catches it and switches to whoever destroyed the fiber.
    fibers::fiber_leaving(fiber->bounds);
    throw;
  } catch (...) {
    // A bug in the caller (expected failures are values): run() stops and rethrows it on the loop thread.
    if (!fiber->unwinding && !error_) error_ = std::current_exception();
  }
  if (fiber->unwinding) {
    // The body swallowed the forced_unwind and returned: finish the unwinding Boost.Context started.
    MEPHISTO_LOOP_CHECK(fiber->unwind != nullptr, describe(fiber) + " unwinding without a forced_unwind");
    fibers::fiber_leaving(fiber->bounds);
    std::rethrow_exception(fiber->unwind);
  }
  fiber->state = FiberState::kDone;
  fibers::fiber_leaving(fiber->bounds);
  return std::move(fiber->caller);
}

void LoopCore::keep_unwinding(Fiber* fiber) {
  // Inside the unwinding (a destructor runs with the forced_unwind in flight): return at once, schedule
  // nothing.
  if (std::uncaught_exceptions() > 0 || !fiber->unwind) return;
  // No exception in flight: a catch (...) caught the forced_unwind and the code went on. Returning would let
  // it run on as if nothing happened, so resume the unwinding from here; a catch (...) in a loop catches that
  // again, forever, so past a bound it is the bug it is.
  MEPHISTO_LOOP_CHECK(++fiber->unwind_rethrows <= kMaxUnwindRethrows,
                      describe(fiber) +
                          " keeps swallowing the forced_unwind that destroys it: a catch (...) must rethrow "
                          "boost::context::detail::forced_unwind (catch it first and `throw;`)");
  std::rethrow_exception(fiber->unwind);
}

void LoopCore::unwind(Fiber* fiber) {
  MEPHISTO_LOOP_CHECK(fiber->state != FiberState::kRunning, describe(fiber) + " unwound while running");
  fiber->unwinding = true;
  current_ = fiber;  // the unwinding runs the fiber's destructors, which may call current()
  // Throws forced_unwind at the fiber's suspension point (in suspend()); returns once the stack is unwound
  // and back in the pool. Chosen over resume_with() because it is the path Boost.Context itself takes.
  fibers::destroy(fiber->context, fiber->bounds);
  current_ = nullptr;
}

void LoopCore::release(Fiber* fiber) {
  MEPHISTO_LOOP_CHECK(!fiber->context && !fiber->caller, describe(fiber) + " released with a live context");
  MEPHISTO_LOOP_CHECK(fiber->timer_seq == 0, describe(fiber) + " finished with a pending deadline");
  fibers_.erase(fiber->id);
}

// ---------------------------------------------------------------------------------------------------------------
// Timers: one min-heap of park deadlines.

void LoopCore::push_timer(Fiber* fiber, int64_t deadline_ms) {
  MEPHISTO_LOOP_CHECK(fiber->timer_seq == 0, describe(fiber) + " already has a pending deadline");
  if (stale_timers_ > kCompactAfterStaleTimers && stale_timers_ * 2 > timers_.size()) {
    // Removing entries and re-heapifying keeps the firing order: (deadline, seq) keys are unique.
    std::erase_if(timers_, [this](const TimerEntry& entry) { return !timer_is_live(entry); });
    std::make_heap(timers_.begin(), timers_.end(), FiresLater{});
    stale_timers_ = 0;
  }
  fiber->timer_seq = next_timer_seq_++;
  timers_.push_back(TimerEntry{deadline_ms, fiber->timer_seq, fiber->id});
  std::push_heap(timers_.begin(), timers_.end(), FiresLater{});
}

void LoopCore::cancel_timer(Fiber* fiber) {
  if (fiber->timer_seq == 0) return;
  fiber->timer_seq = 0;
  ++stale_timers_;
}

bool LoopCore::timer_is_live(const TimerEntry& entry) const {
  const Fiber* fiber = find(entry.fiber);
  return fiber != nullptr && fiber->timer_seq == entry.seq;
}

void LoopCore::pop_timer() {
  std::pop_heap(timers_.begin(), timers_.end(), FiresLater{});
  timers_.pop_back();
}

void LoopCore::fire_timers(int64_t now_ms) {
  while (!timers_.empty()) {
    const TimerEntry top = timers_.front();
    if (!timer_is_live(top)) {
      MEPHISTO_LOOP_CHECK(stale_timers_ > 0, std::string("stale-timer count out of step with the heap"));
      --stale_timers_;
      pop_timer();
      continue;
    }
    if (top.deadline_ms > now_ms) return;
    pop_timer();
    Fiber* fiber = find(top.fiber);
    MEPHISTO_LOOP_CHECK(fiber->state == FiberState::kParked,
                        describe(fiber) + " has a deadline but is not parked");
    fiber->timer_seq = 0;
    fiber->park_result = false;
    fiber->state = FiberState::kRunnable;
    run_queue_.push_back(fiber);
  }
}

}  // namespace mephisto::loop_internal
