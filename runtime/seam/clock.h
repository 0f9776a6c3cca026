// Clock and Scheduler: time and fibers, the two halves of "when" in the seam. Production binds them to the real
// clock and an event loop; the simulator to virtual time, where waiting costs no wall time at all.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

namespace mephisto {

// Milliseconds on the process's clock. In simulation each process has its own (skew and jumps are faults).
class Clock {
 public:
  virtual ~Clock() = default;
  // Milliseconds since the Unix epoch as this process sees it. Not monotonic under simulated clock jumps.
  [[nodiscard]] virtual int64_t now_ms() const = 0;
};

using FiberId = uint64_t;
inline constexpr FiberId kNoFiber = 0;

// Cooperative fibers (Boost.Context) on one OS thread. Every call that waits (poll, flush, commit) suspends the
// calling fiber through park_until(); the OS thread is never blocked while another fiber could run.
class Scheduler {
 public:
  virtual ~Scheduler() = default;

  // Starts `body` in a new fiber of the calling process; it first runs after the caller yields or parks (never
  // inline). An exception escaping `body` is a bug in the caller: the scheduler stops with its message.
  virtual FiberId spawn(std::string name, std::function<void()> body) = 0;

  // The calling fiber. Precondition: called from inside a fiber.
  [[nodiscard]] virtual FiberId current() const = 0;

  // Suspends the calling fiber until wake(current()) is called or the process clock reaches deadline_ms.
  // Returns true if woken, false at the deadline. A wake() that arrives while the fiber is not parked is kept
  // (one permit, like a binary semaphore), so a completion that races ahead of the park is never lost.
  // Precondition: called from inside a fiber.
  virtual bool park_until(int64_t deadline_ms) = 0;

  // Makes a parked fiber runnable (or leaves it a permit). Waking a finished or unknown fiber does nothing.
  virtual void wake(FiberId fiber) = 0;

  // Lets every other runnable fiber run once, then continues. Precondition: called from inside a fiber.
  virtual void yield() = 0;

  // The clock park_until() deadlines are measured on (the calling process's clock).
  [[nodiscard]] virtual const Clock& clock() const = 0;

  // Suspends the calling fiber until the process clock reaches deadline_ms, ignoring wakes meanwhile.
  void wait_until_ms(int64_t deadline_ms) {
    while (clock().now_ms() < deadline_ms) park_until(deadline_ms);
  }
};

}  // namespace mephisto
