// EventLoop: the production Scheduler and Clock. Fibers (Boost.Context) run cooperatively on the one OS
// thread that calls run(); when no fiber is runnable the thread waits in epoll for the earliest fiber
// deadline, a watched file descriptor (librdkafka's queue wake-up pipes) or a post() from another thread.
// Calls that must block an OS thread (librdkafka's synchronous transaction and commit calls) go to a small
// pool of helper threads through run_blocking(), which parks only the calling fiber.
//
// This is a production binding file: it reads the wall clock and owns threads, so it is listed in
// tests/unit/determinism_exceptions.inc. The simulator's Executor implements the same Scheduler contract in
// virtual time.
#pragma once

#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>

#include "runtime/seam/clock.h"

namespace mephisto {

// Wall-clock milliseconds since the Unix epoch (std::chrono::system_clock).
class RealClock final : public Clock {
 public:
  [[nodiscard]] int64_t now_ms() const override;
};

using WatchId = uint64_t;

struct EventLoopOptions {
  // Helper threads for run_blocking(). Each blocking call holds one for its duration; further calls queue
  // (FIFO).
  int32_t blocking_threads = 4;
  // Upper bound on blocking calls waiting for a helper thread; beyond it run_blocking() stops the process
  // with context (a caller that floods the pool is a bug, not load).
  int32_t blocking_queue_max = 4096;
};

class EventLoop final : public Scheduler {
 public:
  explicit EventLoop(EventLoopOptions options = {});
  // Precondition: not running. Fibers that never finished are destroyed without being resumed (their stacks
  // are unwound); helper threads are joined after their current call returns.
  ~EventLoop() override;
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  // --- Scheduler (contract in runtime/seam/clock.h). spawn() and wake() may also be called from the loop
  // thread outside any fiber (e.g. from a watch callback); never from another thread (use post()). Specifics
  // here: the run queue is FIFO; current() outside a fiber returns kNoFiber; FiberIds are never reused;
  // park_until() with a deadline already past (and no permit) returns false after the other runnable fibers
  // had a turn. While the destructor unwinds fibers, spawn() returns kNoFiber and park/yield/wake return at
  // once.
  FiberId spawn(std::string name, std::function<void()> body) override;
  [[nodiscard]] FiberId current() const override;
  bool park_until(int64_t deadline_ms) override;
  void wake(FiberId fiber) override;
  void yield() override;
  [[nodiscard]] const Clock& clock() const override;

  // Runs fibers, timers, watches and posts on the calling thread until `done()` is true (checked after every
  // step in which something ran; an empty function means "until every fiber has finished"), stop() is called,
  // or the wall clock reaches deadline_ms. Returns true if done (or all fibers finished), false on stop() or
  // deadline. An exception escaping a fiber body, a post or a watch callback stops the loop and is rethrown
  // from run() (a bug in the caller); the loop stays usable. Precondition: not already running (not
  // reentrant).
  bool run(const std::function<bool()>& done = {}, int64_t deadline_ms = INT64_MAX);

  // Thread-safe and async-signal-safe (an atomic flag and one eventfd write): makes run() return false soon.
  // A stop() that arrives while run() is not running makes the next run() return false at once (so a stop
  // racing with the start of run() is never lost).
  void stop();

  // Thread-safe: queues fn to run on the loop thread, outside any fiber, and wakes the loop. FIFO. Posts
  // still queued when the loop is destroyed are dropped unrun.
  void post(std::function<void()> fn);

  // Calls on_ready (on the loop thread, outside any fiber) whenever fd is readable (level-triggered: it must
  // read or otherwise clear the condition, or it is called again). The fd stays owned by the caller and must
  // stay open until unwatch(). One watch per fd. Only from the loop thread.
  WatchId watch_readable(int fd, std::function<void()> on_ready);
  // Stops the watch; its callback is not called again. Safe from inside any watch callback, its own included.
  // Unknown or already removed ids are ignored.
  void unwatch(WatchId watch);

  // From a fiber: runs fn on a helper thread, parks the calling fiber (other fibers keep running) until it
  // returns, and returns its result. An exception thrown by fn is rethrown in the calling fiber. fn must not
  // touch fiber state or call into this loop except post(). A wake() of the caller that arrives meanwhile is
  // kept as its permit. While the destructor unwinds the calling fiber, fn runs inline on the loop thread.
  template <typename F>
  auto run_blocking(F&& fn) -> decltype(fn());

  // Number of fibers that have not finished (started or not).
  [[nodiscard]] int64_t live_fibers() const;

 private:
  struct Impl;
  // Type-erased core of run_blocking: runs job on a helper thread and parks the current fiber until it
  // returned.
  void run_blocking_erased(std::function<void()> job);
  std::unique_ptr<Impl> impl_;
};

template <typename F>
auto EventLoop::run_blocking(F&& fn) -> decltype(fn()) {
  using R = decltype(fn());
  std::exception_ptr error;
  if constexpr (std::is_void_v<R>) {
    run_blocking_erased([&] {
      try {
        fn();
      } catch (...) {
        error = std::current_exception();
      }
    });
    if (error) std::rethrow_exception(error);
  } else {
    std::optional<R> result;
    run_blocking_erased([&] {
      try {
        result.emplace(fn());
      } catch (...) {
        error = std::current_exception();
      }
    });
    if (error) std::rethrow_exception(error);
    return std::move(*result);
  }
}

}  // namespace mephisto
