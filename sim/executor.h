// Executor: the simulated world's single-threaded, virtual-time event loop. Time jumps to the next event;
// events at the same time run in an order drawn from the seeded PRNG (so a seed explores one interleaving and
// another seed a different one). Simulated processes (worker instances) own fibers (Boost.Context) and a
// local disk; crashing a process drops its fibers, timers and memory at once.
//
// Limits and rules: fibers run on fixed 256 KiB stacks with a guard page (no deep recursion in simulated
// code); a fiber calls only its own process's scheduler; an exception escaping a fiber or a timer is a bug
// and stops the run with the fiber's and process's names and the seed; everything runs on the calling OS
// thread. See sim/README.md.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "runtime/seam/clock.h"
#include "runtime/seam/random.h"
#include "sim/event_log.h"

namespace mephisto::sim {

using ProcessId = uint32_t;
// The simulated infrastructure (brokers, network): always running, never crashes. It has a context like any
// process (context(kWorld)), so infrastructure code may own timers and run fibers on global virtual time.
inline constexpr ProcessId kWorld = 0;
using TimerId = uint64_t;

// A process's local disk: files by name. Survives a crash unless the restart wipes it.
using Disk = std::map<std::string, std::string>;

class Executor;

// What a simulated process sees of the world: its scheduler (fibers on its own clock), its clock, randomness,
// and its disk. Valid until the process crashes; a restart builds a new one.
class ProcessContext {
 public:
  virtual ~ProcessContext() = default;
  [[nodiscard]] virtual ProcessId id() const = 0;
  [[nodiscard]] virtual const std::string& name() const = 0;
  [[nodiscard]] virtual uint32_t incarnation() const = 0;  // 1 on first start, +1 per restart
  virtual Scheduler& scheduler() = 0;
  virtual Clock& clock() = 0;
  virtual Random& random() = 0;  // a sub-stream per process and incarnation
  virtual Disk& disk() = 0;
  // Keeps an object alive exactly as long as this incarnation of the process: destroyed (after the fibers,
  // newest object first) when the process crashes or the executor is destroyed. For the process's "memory":
  // clients, agents, tables. Called on a crashed incarnation's context, keeps nothing.
  virtual void keep(std::shared_ptr<void> object) = 0;
};

// The body of a process: runs in the process's first fiber at start and at every restart.
using ProcessMain = std::function<void(ProcessContext&)>;

class Executor {
 public:
  // `log` must outlive the executor. Every random choice of the run derives from `seed`.
  Executor(uint64_t seed, EventLog* log);
  ~Executor();
  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;

  [[nodiscard]] int64_t now_ms() const;
  [[nodiscard]] uint64_t seed() const;
  EventLog& log();
  // The world's random stream (network latency draws, broker choices). Processes have their own.
  Random& random();

  // Runs `fn` at virtual time time_ms (>= now; earlier is a bug and stops) outside any fiber, on behalf of
  // `owner`. Timers owned by a process are dropped if that process crashes before they fire (so a callback
  // never reaches a dead process's memory); a timer for a process that is not running is dropped at once.
  // Same-time events run in an order drawn from the seed. Returned ids are never 0.
  TimerId at(int64_t time_ms, ProcessId owner, std::function<void()> fn);
  TimerId after(int64_t delay_ms, ProcessId owner, std::function<void()> fn) {
    return at(now_ms() + delay_ms, owner, std::move(fn));
  }
  // Cancels a pending timer; its callback is destroyed now. Unknown, fired or cancelled ids are ignored.
  void cancel(TimerId timer);

  // Adds a process (not yet started). Names must be unique; they appear in the event log.
  ProcessId add_process(std::string name, ProcessMain main);
  // Starts (or, after a crash, restarts) the process: a fresh incarnation runs `main` in a new fiber. The
  // disk is kept unless wipe_disk. Precondition: the process is not running.
  void start(ProcessId process, bool wipe_disk = false);
  // Kills the process at once: its fibers are dropped (their stacks unwound with no further scheduling: every
  // park/yield in an unwinding fiber returns immediately and spawn returns kNoFiber), its timers cancelled,
  // its kept objects destroyed. running() is already false while those destructors run. A no-op if the
  // process is not running. Must not be called from one of the process's own fibers (that fiber's stack
  // cannot be unwound from under itself): crash it from a timer, e.g. after(0, kWorld, ...).
  void crash(ProcessId process);
  [[nodiscard]] bool running(ProcessId process) const;
  // SIGSTOP / SIGCONT. While paused, nothing of the process runs: every event it owns (timers, fiber starts,
  // wake-ups, yield turns, park deadlines, network deliveries to it) is held as it comes due, and resume()
  // runs the held ones at the then-current time, first among that time's events, in their original order
  // (deadlines that passed fire at once); the rest keep their times. The process stays running(): it may be
  // woken, get timers and messages, and be crashed (which drops everything and ends the pause). pause() of a
  // process that is not running or already paused, and resume() of one that is not paused, are no-ops.
  // Pausing kWorld is a bug. Called from the process's own fiber or timer, pause() takes effect when that
  // returns or suspends.
  void pause(ProcessId process);
  void resume(ProcessId process);
  [[nodiscard]] bool paused(ProcessId process) const;
  ProcessContext& context(ProcessId process);  // Precondition: running(process)
  // Clock skew of a process relative to global virtual time (a fault; may be negative, may jump). Survives
  // restarts (it belongs to the machine). Parked fibers' deadlines move with the clock: a jump forward past a
  // deadline fires it now.
  void set_clock_offset(ProcessId process, int64_t offset_ms);

  // The process whose fiber or timer is running now, or kWorld.
  [[nodiscard]] ProcessId current_process() const;

  // Runs every event up to time_ms (events at time_ms included), then sets virtual time to time_ms (never
  // back). run_until(INT64_MAX) runs until nothing is left and leaves the time at the last event's. Not
  // reentrant.
  void run_until(int64_t time_ms);
  // Like run_until(time_ms), but stops as soon as `done()` is true (checked first and after every event; time
  // stays at that event's). Returns done().
  bool run_until(const std::function<bool()>& done, int64_t time_ms);
  // Events executed so far (a cheap progress measure for benchmarks).
  [[nodiscard]] uint64_t steps() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mephisto::sim
