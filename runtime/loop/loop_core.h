// LoopCore: the engine behind EventLoop (internal to runtime/loop; EventLoop forwards to it). Split over two
// files: loop_fibers.cpp (construction and teardown, fibers, the timer heap) and event_loop.cpp (the run
// loop, posts, watches, run_blocking). The helper threads live in blocking_pool.cpp; the stack pool, the
// stack switches and their ASan annotations in runtime/fiber (shared with the simulator). A production
// binding file: it names the thread type (for the loop-thread check).
//
// Invariants worth knowing before reading the code:
//   - Exactly one thing runs on the loop thread at a time: run() itself (on the caller's stack), a post or a
//     watch callback (same stack), or one fiber (on its own stack). Only run() resumes fibers; only ~LoopCore
//     unwinds them.
//   - A live fiber is in exactly one place: the run queue (kNew, kRunnable), parked (kParked, with at most
//     one live timer entry), or running (kRunning). A fiber that finishes is released at once.
//   - Timer cancellation is lazy: a fiber woken before its deadline leaves its heap entry behind; the entry
//     is skipped when it surfaces (its seq no longer matches the fiber's timer_seq), and such entries are
//     removed in bulk when they pile up.
//   - Other threads touch only the post queue (under its mutex), stop_requested_ (atomic) and the eventfd.
#pragma once

#include <atomic>
#include <climits>
#include <cstdint>
#include <cstring>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include <boost/context/fiber.hpp>

#include "runtime/fiber/fiber_stack.h"
#include "runtime/loop/blocking_pool.h"
#include "runtime/loop/event_loop.h"
#include "runtime/loop/loop_internal.h"

namespace mephisto::loop_internal {

namespace ctx = boost::context;

constexpr int64_t kNever = INT64_MAX;
// The eventfd's epoll token. WatchIds start at 1, so they never collide with it.
constexpr uint64_t kWakeupToken = 0;
constexpr int kMaxEventsPerPoll = 64;
// While a deadline is pending, the loop re-reads the wall clock at least this often: epoll measures its
// timeout on the monotonic clock, so after a step of the wall clock a deadline would otherwise fire late by
// the whole step.
constexpr int64_t kMaxWaitMs = 1000;
// Lazily cancelled timer entries are removed in bulk past this many (and more than the live ones).
constexpr size_t kCompactAfterStaleTimers = 1024;
// Posts waiting beyond this mean the loop thread is stuck or a producer runs away; either way memory would
// grow without bound, so stop with context instead.
constexpr size_t kMaxPendingPosts = 1'000'000;
// How often a fiber being unwound may swallow the forced_unwind (see keep_unwinding) before we call it a bug.
constexpr uint32_t kMaxUnwindRethrows = 100;
// Idle fiber stacks kept for reuse (fibers::StackPool); beyond this many (16 MiB of address space, of which
// only touched pages are resident) they go back to the OS.
constexpr size_t kMaxIdleStacks = 64;

enum class FiberState : uint8_t { kNew, kRunnable, kRunning, kParked, kDone };

struct Fiber {
  FiberId id = kNoFiber;
  std::string name;
  std::function<void()> body;  // until the fiber starts; then it lives on the fiber's own stack
  FiberState state = FiberState::kNew;
  // The Boost.Context fiber exists. Created at first run, so a fiber that never ran costs no stack.
  bool started = false;
  bool permit = false;        // a wake() that arrived while not parked
  bool park_result = false;   // what the current park_until returns: woken (true) or deadline (false)
  bool unwinding = false;     // ~LoopCore is unwinding the stack: park/yield return at once
  uint64_t timer_seq = 0;     // seq of the live timer entry while parked with a deadline; 0: none
  ctx::fiber context;         // the suspended fiber, while it is not running
  ctx::fiber caller;          // while running: the loop's context, to switch back to
  std::exception_ptr unwind;  // the forced_unwind in flight, to rethrow if user code swallows it
  uint32_t unwind_rethrows = 0;
  fibers::StackBounds bounds;  // for ASan's stack-switch annotations
};

struct TimerEntry {
  int64_t deadline_ms;
  uint64_t seq;  // unique: equal deadlines fire in park order, independent of the heap algorithm
  FiberId fiber;
};

// std::*_heap build a max-heap; "a fires later than b" puts the earliest deadline on top.
struct FiresLater {
  bool operator()(const TimerEntry& a, const TimerEntry& b) const {
    if (a.deadline_ms != b.deadline_ms) return a.deadline_ms > b.deadline_ms;
    return a.seq > b.seq;
  }
};

struct Watch {
  int fd;
  std::function<void()> on_ready;
};

inline std::string describe(const Fiber* fiber) {
  return "fiber '" + fiber->name + "' (id " + std::to_string(fiber->id) + ")";
}

inline std::string errno_text(int error) {
  return std::to_string(error) + " (" + std::strerror(error) + ")";
}

class LoopCore {
 public:
  explicit LoopCore(const EventLoopOptions& options);
  ~LoopCore();
  LoopCore(const LoopCore&) = delete;
  LoopCore& operator=(const LoopCore&) = delete;

  FiberId spawn(std::string name, std::function<void()> body);
  [[nodiscard]] FiberId current() const { return current_ != nullptr ? current_->id : kNoFiber; }
  bool park_until(int64_t deadline_ms);
  void wake(FiberId id);
  void yield();
  [[nodiscard]] const Clock& clock() const { return clock_; }

  bool run(const std::function<bool()>& done, int64_t deadline_ms);
  void stop();
  void post(std::function<void()> fn);
  WatchId watch_readable(int fd, std::function<void()> on_ready);
  void unwatch(WatchId id);
  void run_blocking(std::function<void()> job);
  [[nodiscard]] int64_t live_fibers() const { return static_cast<int64_t>(fibers_.size()); }

 private:
  void check_loop_thread(const char* operation) const;
  Fiber* calling_fiber(const char* operation) const;
  Fiber* find(FiberId id) const;
  void resume(Fiber* fiber);
  void suspend(Fiber* fiber);
  ctx::fiber fiber_main(Fiber* fiber, ctx::fiber&& caller);
  void keep_unwinding(Fiber* fiber);
  void unwind(Fiber* fiber);
  void release(Fiber* fiber);

  void push_timer(Fiber* fiber, int64_t deadline_ms);
  void cancel_timer(Fiber* fiber);
  [[nodiscard]] bool timer_is_live(const TimerEntry& entry) const;
  void pop_timer();
  void fire_timers(int64_t now_ms);

  // The steps of run(). Each returns whether run() should return now (the top of its loop decides how).
  bool step_ends_run();
  void run_callback(const std::function<void()>& fn);
  bool run_fibers();
  bool drain_posts();
  [[nodiscard]] bool posts_pending();
  bool poll(int64_t deadline_ms);
  void signal_wakeup() const;

  // Declared first so it is destroyed last: fibers hand their stacks back to it while they are torn down.
  fibers::StackPool stacks_{kMaxIdleStacks};
  RealClock clock_;
  int epoll_fd_ = -1;
  int wakeup_fd_ = -1;  // eventfd: post() and stop() make epoll_wait return

  // Loop thread only.
  std::unordered_map<FiberId, std::unique_ptr<Fiber>> fibers_;  // live fibers; unique_ptr: stable addresses
  std::deque<Fiber*> run_queue_;
  std::vector<TimerEntry> timers_;  // a heap under FiresLater
  size_t stale_timers_ = 0;
  uint64_t next_timer_seq_ = 1;
  FiberId next_fiber_id_ = 1;  // monotonic: ids are never reused, so a stale id can never wake a newer fiber
  Fiber* current_ = nullptr;
  // shared_ptr: poll() holds the watch whose callback runs, which may unwatch (erase) itself.
  std::unordered_map<WatchId, std::shared_ptr<Watch>> watches_;
  WatchId next_watch_id_ = 1;
  const std::function<bool()>* done_ = nullptr;  // run()'s predicate, while running
  bool done_seen_ = false;
  std::exception_ptr error_;  // the first exception that escaped a fiber or callback; run() rethrows it
  bool destroying_ = false;
  std::unique_ptr<BlockingPool> blocking_;

  // Shared with other threads.
  std::mutex posts_mutex_;
  std::deque<std::function<void()>> posts_;  // guarded by posts_mutex_
  std::atomic<bool> stop_requested_{false};
  std::atomic<bool> running_{false};
  std::atomic<std::thread::id> loop_thread_{};
};

}  // namespace mephisto::loop_internal
