// The virtual-time executor. Layout of this file:
//   1. constants (the fiber stacks, their pool and the stack switches are runtime/fiber's);
//   2. the records: queue entries, timer slots, fibers, processes;
//   3. ExecutorCore, the whole engine (event queue, fibers, processes);
//   4. the per-process Clock / Scheduler / ProcessContext views, and Executor forwarding to the core.
//
// Invariants worth knowing before reading the code:
//   - Exactly one thing runs at a time: the event loop (on the caller's stack), a timer callback (on the same
//     stack), or one fiber (on its own stack). Only the event loop resumes fibers, except crash(), which
//     unwinds the crashed process's fibers from wherever it is called.
//   - Every pending thing is one entry in the binary heap `queue_`, ordered by (time, tie, seq): the tie
//     is drawn from the seeded PRNG at insertion, so same-time events interleave differently per seed yet
//     identically for one seed; seq makes every key unique, so the pop order does not depend on the
//     standard library's heap code.
//   - Cancellation is lazy: a cancelled entry stays in the heap and is skipped when popped (its generation no
//     longer matches its slot). When skipped entries pile up, the heap is compacted.
//   - A fiber has at most one pending queue entry: its start, its wake-up, its yield turn, or its
//     park deadline.
//   - A paused process's entries are moved, as they come due, from the heap to the process's `held` list (in
//     pop order, which is their original order) and pushed back on resume. stale_entries_ counts dead
//     entries in the heap and in the held lists alike, and compact() purges both.
#include "sim/executor.h"

#include <algorithm>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <boost/context/fiber.hpp>

#include "runtime/fiber/fiber_stack.h"

namespace mephisto::sim {
namespace {

namespace ctx = boost::context;

// Idle fiber stacks kept for reuse (fibers::StackPool; 256 KiB each, so 10k parked fibers cost 2.5 GiB of
// address space but only the memory they touch). Beyond this many idle stacks, they are returned to the OS.
constexpr size_t kMaxIdleStacks = 256;
// Lazy cancellation leaves dead entries in the heap; past this many (and more than the live ones) we rebuild.
constexpr size_t kCompactAfterStaleEntries = 4096;
constexpr int64_t kNever = INT64_MAX;
// Yield's tie: after every event already queued for the current time (ties are drawn below this... almost
// always; seq settles the rare equal draw), so every other runnable fiber runs once first.
constexpr uint64_t kYieldTie = UINT64_MAX;
// Resume's tie: entries held while a process was paused were due before anything still queued, so they go
// first at the current time, in their original order (seq), as one block. A constant rather than a draw, so
// a resume does not shift the order stream.
constexpr uint64_t kResumeTie = 0;
// How many times a fiber being unwound may swallow the forced_unwind (see keep_unwinding) before we stop.
constexpr uint32_t kMaxUnwindRethrows = 100;
// Marks a queue entry's target as a fiber slot (else a timer slot).
constexpr uint32_t kFiberBit = 0x8000'0000u;
constexpr uint32_t kNil = UINT32_MAX;

// ---------------------------------------------------------------------------------------------------------------
// Records

struct QueueEntry {
  int64_t time_ms;
  uint64_t tie;
  uint64_t seq;
  uint32_t target;      // timer slot index, or fiber slot index | kFiberBit
  uint32_t generation;  // must match the slot's, or the entry was cancelled
};
static_assert(sizeof(QueueEntry) == 32, "keep queue entries small: the heap moves them on every operation");

// std::*_heap build a max-heap; "a runs later than b" makes the top the earliest event. seq only decides
// between equal (time, tie) keys, which in practice means yields (all drawn kYieldTie) at the same time.
struct RunsLater {
  bool operator()(const QueueEntry& a, const QueueEntry& b) const {
    if (a.time_ms != b.time_ms) return a.time_ms > b.time_ms;
    if (a.tie != b.tie) return a.tie > b.tie;
    return a.seq > b.seq;
  }
};

struct Process;

struct TimerSlot {
  std::function<void()> fn;
  uint32_t generation = 1;  // part of the TimerId; bumped when the slot is freed
  bool pending = false;
  ProcessId owner = kWorld;
  // The owner's list of pending timers (not kept for kWorld, which never crashes), so crash() finds them.
  uint32_t prev = kNil;
  uint32_t next = kNil;
};

enum class FiberState : uint8_t { kFree, kNew, kRunnable, kRunning, kParked, kDone };

struct Fiber {
  uint32_t index = 0;
  uint32_t generation = 1;        // part of the FiberId; bumped when the slot is freed
  uint32_t event_generation = 0;  // the pending queue entry's; bumped when that entry is cancelled
  bool event_pending = false;
  FiberState state = FiberState::kFree;
  bool started = false;      // the Boost.Context fiber exists (created lazily at first run)
  bool permit = false;       // a wake() that arrived while not parked
  bool park_result = false;  // what the current park_until returns: woken (true) or deadline (false)
  bool unwinding = false;    // crash(): the stack is being unwound; park/yield/spawn return at once
  Process* process = nullptr;
  uint32_t incarnation = 0;
  int64_t park_deadline_ms = kNever;  // on the process clock, while parked (re-armed when the clock moves)
  std::string name;
  std::function<void()> body;  // until the fiber starts; then it lives on the fiber's own stack
  ctx::fiber context;          // the suspended fiber, while it is not running
  ctx::fiber caller;           // while running: where to switch back to
  std::exception_ptr unwind;   // the forced_unwind in flight, to rethrow if user code swallows it
  uint32_t unwind_rethrows = 0;
  Fiber* newer = nullptr;  // the process's list of live fibers, newest first
  Fiber* older = nullptr;
  fibers::StackBounds bounds;  // for ASan's stack-switch annotations

  [[nodiscard]] FiberId id() const { return (static_cast<uint64_t>(generation) << 32) | index; }
};

class ExecutorCore;
class Context;

struct Process {
  ProcessId id = kWorld;
  std::string name;
  ProcessMain main;
  bool running = false;
  bool paused = false;  // pause(): its due entries go to `held` instead of running
  uint32_t incarnation = 0;
  int64_t clock_offset_ms = 0;
  Disk disk;
  // One per incarnation, never freed: a stale reference to a crashed incarnation's context (say, captured in
  // a leaked lambda) reaches a harmless zombie whose spawn() returns kNoFiber, instead of freed memory.
  std::vector<std::unique_ptr<Context>> contexts;
  std::vector<std::shared_ptr<void>> kept;
  Fiber* newest_fiber = nullptr;
  uint32_t newest_timer = kNil;
  std::vector<QueueEntry> held;  // while paused: the entries that came due, in their original order
};

// ---------------------------------------------------------------------------------------------------------------
// The engine.

class ExecutorCore {
 public:
  ExecutorCore(uint64_t seed, EventLog* log);
  ~ExecutorCore();

  [[nodiscard]] int64_t now_ms() const { return now_ms_; }
  [[nodiscard]] uint64_t seed() const { return seed_; }
  EventLog& log() { return *log_; }
  Random& random() { return world_random_; }
  [[nodiscard]] uint64_t steps() const { return steps_; }
  [[nodiscard]] ProcessId current_process() const { return current_process_; }

  TimerId at(int64_t time_ms, ProcessId owner, std::function<void()> fn);
  void cancel(TimerId timer);

  ProcessId add_process(std::string name, ProcessMain main);
  void start(ProcessId id, bool wipe_disk);
  void crash(ProcessId id);
  [[nodiscard]] bool running(ProcessId id) const { return process(id).running; }
  void pause(ProcessId id);
  void resume(ProcessId id);
  [[nodiscard]] bool paused(ProcessId id) const { return process(id).paused; }
  ProcessContext& context(ProcessId id);
  void set_clock_offset(ProcessId id, int64_t offset_ms);

  bool run(const std::function<bool()>* done, int64_t limit_ms);

  // Scheduler operations, on behalf of `process`'s incarnation `incarnation` (see Context).
  FiberId spawn(Process* process, uint32_t incarnation, std::string name, std::function<void()> body);
  [[nodiscard]] FiberId current_fiber(const Process* process, uint32_t incarnation) const;
  bool park_until(Process* process, uint32_t incarnation, int64_t deadline_ms);
  void wake(FiberId fiber);
  void yield(Process* process, uint32_t incarnation);

 private:
  [[noreturn]] void fail(const char* file, int line, const char* condition, const std::string& message) const;

  [[nodiscard]] const Process& process(ProcessId id) const;
  Process& process(ProcessId id) { return const_cast<Process&>(std::as_const(*this).process(id)); }
  [[nodiscard]] std::string describe(const Fiber* fiber) const;

  // --- queue
  uint64_t draw_tie() { return order_random_.next_u64(); }
  void push(int64_t time_ms, uint64_t tie, uint32_t target, uint32_t generation);
  [[nodiscard]] bool is_live(const QueueEntry& entry) const;
  [[nodiscard]] Process& owner_of(const QueueEntry& entry) const;
  void compact();
  // Pops and runs the next live event at or before limit_ms. False if there is none.
  bool step(int64_t limit_ms);

  // --- timers
  uint32_t allocate_timer();
  // Unlinks and frees a slot; returns its callback so the caller destroys it when the core is consistent
  // again.
  std::function<void()> release_timer(uint32_t index);
  void run_timer(uint32_t index);

  // --- fibers
  [[nodiscard]] Fiber* find_fiber(FiberId id) const;
  Fiber* calling_fiber(const Process* process, uint32_t incarnation, const char* operation) const;
  void schedule_fiber(Fiber* fiber, int64_t time_ms, uint64_t tie);
  void cancel_fiber_event(Fiber* fiber);
  void resume(Fiber* fiber);                                 // event loop -> fiber
  void suspend(Fiber* fiber);                                // fiber -> event loop
  ctx::fiber fiber_main(Fiber* fiber, ctx::fiber&& caller);  // the fiber's first frame
  [[noreturn]] void fiber_threw(const Fiber* fiber, const char* what) const;
  // Called from park/yield while a crash unwinds the fiber: returns if we are inside the unwinding
  // (destructors), rethrows the forced_unwind if user code swallowed it (catch (...)) and went on.
  void keep_unwinding(Fiber* fiber) const;
  void unwind(Fiber* fiber);
  void release_fiber(Fiber* fiber);
  [[nodiscard]] int64_t to_global_ms(const Process* process, int64_t process_ms) const;

  // --- processes
  void drop_fibers_and_timers(Process* process);
  // Forgets the held entries of a crashed process (all dead by then) and ends its pause.
  void drop_held(Process* process);

  // Declared first, destroyed last: fibers return their stacks here while they are torn down.
  fibers::StackPool stacks_{kMaxIdleStacks};
  const uint64_t seed_;
  EventLog* const log_;
  const Random root_random_;
  Random world_random_;
  Random order_random_;  // ties only, so that other draws never shift the interleaving (and vice versa)

  int64_t now_ms_ = 0;
  uint64_t steps_ = 0;
  uint64_t next_seq_ = 0;
  std::vector<QueueEntry> queue_;
  size_t stale_entries_ = 0;

  std::vector<TimerSlot> timers_;
  std::vector<uint32_t> free_timers_;
  std::vector<std::unique_ptr<Fiber>> fibers_;  // unique_ptr: a Fiber's address is stable while it runs
  std::vector<uint32_t> free_fibers_;
  std::vector<std::unique_ptr<Process>> processes_;  // [0] is kWorld
  size_t paused_processes_ = 0;  // while 0, step() skips the owner lookup: runs that never pause pay nothing

  Fiber* current_fiber_ = nullptr;
  ProcessId current_process_ = kWorld;
  bool running_events_ = false;
  bool destroying_ = false;
};

#define SIM_CHECK(condition, ...)                                       \
  do {                                                                  \
    if (!(condition)) [[unlikely]]                                      \
      fail(__FILE__, __LINE__, #condition, ::fmt::format(__VA_ARGS__)); \
  } while (false)

// ---------------------------------------------------------------------------------------------------------------
// The per-process views handed to simulated code.

class ProcessClock final : public Clock {
 public:
  ProcessClock(const ExecutorCore* core, const Process* process) : core_(core), process_(process) {}
  [[nodiscard]] int64_t now_ms() const override { return core_->now_ms() + process_->clock_offset_ms; }

 private:
  const ExecutorCore* core_;
  const Process* process_;
};

class ProcessScheduler final : public Scheduler {
 public:
  ProcessScheduler(ExecutorCore* core, Process* process, uint32_t incarnation, const Clock* clock)
      : core_(core), process_(process), incarnation_(incarnation), clock_(clock) {}
  FiberId spawn(std::string name, std::function<void()> body) override {
    return core_->spawn(process_, incarnation_, std::move(name), std::move(body));
  }
  [[nodiscard]] FiberId current() const override { return core_->current_fiber(process_, incarnation_); }
  bool park_until(int64_t deadline_ms) override {
    return core_->park_until(process_, incarnation_, deadline_ms);
  }
  void wake(FiberId fiber) override { core_->wake(fiber); }
  void yield() override { core_->yield(process_, incarnation_); }
  [[nodiscard]] const Clock& clock() const override { return *clock_; }

 private:
  ExecutorCore* core_;
  Process* process_;
  uint32_t incarnation_;
  const Clock* clock_;
};

class Context final : public ProcessContext {
 public:
  Context(ExecutorCore* core, Process* process, Random random)
      : process_(process),
        incarnation_(process->incarnation),
        random_(random),
        clock_(core, process),
        scheduler_(core, process, process->incarnation, &clock_) {}

  [[nodiscard]] ProcessId id() const override { return process_->id; }
  [[nodiscard]] const std::string& name() const override { return process_->name; }
  [[nodiscard]] uint32_t incarnation() const override { return incarnation_; }
  Scheduler& scheduler() override { return scheduler_; }
  Clock& clock() override { return clock_; }
  Random& random() override { return random_; }
  Disk& disk() override { return process_->disk; }
  void keep(std::shared_ptr<void> object) override {
    // A zombie incarnation keeps nothing: the object dies with the caller's last reference.
    if (process_->running && process_->incarnation == incarnation_)
      process_->kept.push_back(std::move(object));
  }

 private:
  Process* process_;
  uint32_t incarnation_;
  Random random_;
  ProcessClock clock_;
  ProcessScheduler scheduler_;
};

// ---------------------------------------------------------------------------------------------------------------
// ExecutorCore: construction, failure, lookup

ExecutorCore::ExecutorCore(uint64_t seed, EventLog* log)
    : seed_(seed),
      log_(log),
      root_random_(seed),
      world_random_(root_random_.fork("world")),
      order_random_(root_random_.fork("executor/order")) {
  if (log_ == nullptr) {
    std::fprintf(stderr, "mephisto sim: Executor needs an EventLog (got nullptr)\n");
    std::abort();
  }
  // kWorld is a process that is always running and never crashes: the simulated infrastructure may own timers
  // and fibers through it like any process.
  auto world = std::make_unique<Process>();
  world->id = kWorld;
  world->name = "world";
  world->running = true;
  world->incarnation = 1;
  Process* raw = world.get();
  processes_.push_back(std::move(world));
  raw->contexts.push_back(std::make_unique<Context>(this, raw, root_random_.fork("process/world/1")));
  queue_.reserve(1024);
}

ExecutorCore::~ExecutorCore() {
  if (running_events_ || current_fiber_ != nullptr) {
    std::fprintf(stderr, "mephisto sim: Executor destroyed from inside its own event loop\n");
    std::abort();
  }
  // Tear down as if every process crashed at once: no process is running while destructors run, so nothing
  // they do schedules anything. All fibers go before any kept object, as in crash().
  destroying_ = true;
  for (auto& p : processes_) p->running = false;
  for (auto& p : processes_) drop_fibers_and_timers(p.get());
  std::vector<std::function<void()>> world_timers;
  for (uint32_t i = 0; i < timers_.size(); ++i) {
    if (timers_[i].pending) world_timers.push_back(release_timer(i));
  }
  world_timers.clear();
  for (auto it = processes_.rbegin(); it != processes_.rend(); ++it) {
    auto kept = std::move((*it)->kept);
    while (!kept.empty()) kept.pop_back();
  }
}

void ExecutorCore::fail(const char* file, int line, const char* condition, const std::string& message) const {
  std::fprintf(stderr, "mephisto sim: invariant broken at %s:%d: %s\n  %s\n  (seed=%llu, time_ms=%lld)\n",
               file, line, condition, message.c_str(), static_cast<unsigned long long>(seed_),
               static_cast<long long>(now_ms_));
  std::fflush(stderr);
  std::abort();
}

const Process& ExecutorCore::process(ProcessId id) const {
  SIM_CHECK(id < processes_.size(), "unknown process id {} (there are {})", id, processes_.size());
  return *processes_[id];
}

std::string ExecutorCore::describe(const Fiber* fiber) const {
  return fmt::format("fiber '{}' (id {:#x}) of process '{}' incarnation {}", fiber->name, fiber->id(),
                     fiber->process->name, fiber->incarnation);
}

// ---------------------------------------------------------------------------------------------------------------
// Queue

void ExecutorCore::push(int64_t time_ms, uint64_t tie, uint32_t target, uint32_t generation) {
  if (stale_entries_ > kCompactAfterStaleEntries && stale_entries_ * 2 > queue_.size()) compact();
  queue_.push_back(QueueEntry{time_ms, tie, next_seq_++, target, generation});
  std::push_heap(queue_.begin(), queue_.end(), RunsLater{});
}

bool ExecutorCore::is_live(const QueueEntry& entry) const {
  if (entry.target & kFiberBit) {
    const Fiber& fiber = *fibers_[entry.target & ~kFiberBit];
    return fiber.event_pending && fiber.event_generation == entry.generation;
  }
  const TimerSlot& slot = timers_[entry.target];
  return slot.pending && slot.generation == entry.generation;
}

Process& ExecutorCore::owner_of(const QueueEntry& entry) const {
  if (entry.target & kFiberBit) return *fibers_[entry.target & ~kFiberBit]->process;
  return *processes_[timers_[entry.target].owner];
}

void ExecutorCore::compact() {
  // Removing entries and re-heapifying keeps the pop order: keys are unique, so the heap's top is always the
  // one smallest live key. Held lists keep their order (erase_if is stable).
  const auto dead = [this](const QueueEntry& entry) { return !is_live(entry); };
  std::erase_if(queue_, dead);
  std::make_heap(queue_.begin(), queue_.end(), RunsLater{});
  for (auto& p : processes_) std::erase_if(p->held, dead);
  stale_entries_ = 0;
}

bool ExecutorCore::step(int64_t limit_ms) {
  while (!queue_.empty()) {
    const QueueEntry top = queue_.front();
    if (top.time_ms > limit_ms) return false;
    std::pop_heap(queue_.begin(), queue_.end(), RunsLater{});
    queue_.pop_back();
    if (!is_live(top)) {
      SIM_CHECK(stale_entries_ > 0, "stale-entry count out of step with the queue");
      --stale_entries_;
      continue;
    }
    if (paused_processes_ > 0) {
      // SIGSTOP: the event stays pending, set aside in order. Time does not move for it: it has not run.
      Process& owner = owner_of(top);
      if (owner.paused) {
        owner.held.push_back(top);
        continue;
      }
    }
    SIM_CHECK(top.time_ms >= now_ms_, "event at {} ms is before now", top.time_ms);
    now_ms_ = top.time_ms;
    ++steps_;
    if (top.target & kFiberBit) {
      Fiber* fiber = fibers_[top.target & ~kFiberBit].get();
      fiber->event_pending = false;
      // A parked fiber's only pending entry is its deadline (a wake() replaces it with a runnable entry).
      if (fiber->state == FiberState::kParked) fiber->park_result = false;
      resume(fiber);
    } else {
      run_timer(top.target);
    }
    return true;
  }
  return false;
}

bool ExecutorCore::run(const std::function<bool()>* done, int64_t limit_ms) {
  SIM_CHECK(!running_events_ && current_fiber_ == nullptr,
            "run_until() called from inside the event loop (a timer or a fiber); it is not reentrant");
  struct Guard {
    bool& flag;
    ~Guard() { flag = false; }
  } guard{running_events_};
  running_events_ = true;
  if (done != nullptr && (*done)()) return true;
  while (step(limit_ms)) {
    if (done != nullptr && (*done)()) return true;
  }
  // Every event up to limit_ms has run: time has reached the limit (kNever means "until idle").
  if (limit_ms != kNever && limit_ms > now_ms_) now_ms_ = limit_ms;
  return done == nullptr || (*done)();
}

// ---------------------------------------------------------------------------------------------------------------
// Timers

uint32_t ExecutorCore::allocate_timer() {
  if (!free_timers_.empty()) {
    const uint32_t index = free_timers_.back();
    free_timers_.pop_back();
    return index;
  }
  SIM_CHECK(timers_.size() < kFiberBit, "too many pending timers ({})", timers_.size());
  timers_.emplace_back();
  return static_cast<uint32_t>(timers_.size() - 1);
}

std::function<void()> ExecutorCore::release_timer(uint32_t index) {
  TimerSlot& slot = timers_[index];
  if (slot.owner != kWorld) {
    Process& owner = *processes_[slot.owner];
    if (slot.prev != kNil) timers_[slot.prev].next = slot.next;
    if (slot.next != kNil) timers_[slot.next].prev = slot.prev;
    if (owner.newest_timer == index) owner.newest_timer = slot.next;
  }
  slot.prev = slot.next = kNil;
  slot.pending = false;
  if (++slot.generation == 0) slot.generation = 1;  // TimerIds are never 0
  std::function<void()> fn = std::move(slot.fn);
  slot.fn = nullptr;
  free_timers_.push_back(index);
  return fn;
}

TimerId ExecutorCore::at(int64_t time_ms, ProcessId owner, std::function<void()> fn) {
  SIM_CHECK(time_ms >= now_ms_, "timer at {} ms is in the past (now is {} ms, owner '{}')", time_ms, now_ms_,
            process(owner).name);
  SIM_CHECK(fn != nullptr, "timer with an empty callback (owner '{}')", process(owner).name);
  Process& p = process(owner);
  const uint32_t index = allocate_timer();
  TimerSlot& slot = timers_[index];
  const TimerId id = (static_cast<uint64_t>(slot.generation) << 32) | index;
  if (!p.running) {
    // The owner is down (or crashing, or the executor is being destroyed): the timer is dropped at once.
    free_timers_.push_back(index);
    if (++slot.generation == 0) slot.generation = 1;
    return id;
  }
  slot.fn = std::move(fn);
  slot.pending = true;
  slot.owner = owner;
  if (owner != kWorld) {
    slot.next = p.newest_timer;
    if (p.newest_timer != kNil) timers_[p.newest_timer].prev = index;
    p.newest_timer = index;
  }
  push(time_ms, draw_tie(), index, slot.generation);
  return id;
}

void ExecutorCore::cancel(TimerId timer) {
  const uint64_t index = timer & 0xffff'ffffu;
  const auto generation = static_cast<uint32_t>(timer >> 32);
  if (index >= timers_.size()) return;
  if (!timers_[index].pending || timers_[index].generation != generation) return;  // fired or cancelled
  ++stale_entries_;
  // Destroyed here, after the slot is consistent: the callback's captures may cancel other timers.
  std::function<void()> fn = release_timer(static_cast<uint32_t>(index));
}

void ExecutorCore::run_timer(uint32_t index) {
  const ProcessId owner = timers_[index].owner;
  // Freed before the call: the callback may add timers (reallocating timers_), cancel itself, or crash its
  // owner.
  std::function<void()> fn = release_timer(index);
  current_process_ = owner;
  try {
    fn();
  } catch (const std::exception& e) {
    SIM_CHECK(false, "a timer of process '{}' threw: {}", process(owner).name, e.what());
  } catch (...) {
    SIM_CHECK(false, "a timer of process '{}' threw a non-std exception", process(owner).name);
  }
  current_process_ = kWorld;
}

// ---------------------------------------------------------------------------------------------------------------
// Fibers

Fiber* ExecutorCore::find_fiber(FiberId id) const {
  const uint64_t index = id & 0xffff'ffffu;
  if (index >= fibers_.size()) return nullptr;
  Fiber* fiber = fibers_[index].get();
  if (fiber->generation != static_cast<uint32_t>(id >> 32) || fiber->state == FiberState::kFree)
    return nullptr;
  return fiber;
}

Fiber* ExecutorCore::calling_fiber(const Process* process, uint32_t incarnation,
                                   const char* operation) const {
  Fiber* fiber = current_fiber_;
  SIM_CHECK(fiber != nullptr, "{}() of process '{}' called outside any fiber (from a timer or the test body)",
            operation, process->name);
  SIM_CHECK(
      fiber->process == process && fiber->incarnation == incarnation,
      "{}() of process '{}' incarnation {} called from {}: a fiber may only use its own process's scheduler",
      operation, process->name, incarnation, describe(fiber));
  return fiber;
}

void ExecutorCore::schedule_fiber(Fiber* fiber, int64_t time_ms, uint64_t tie) {
  SIM_CHECK(!fiber->event_pending, "{} already has a pending event", describe(fiber));
  fiber->event_pending = true;
  push(time_ms, tie, fiber->index | kFiberBit, fiber->event_generation);
}

void ExecutorCore::cancel_fiber_event(Fiber* fiber) {
  if (!fiber->event_pending) return;
  fiber->event_pending = false;
  ++fiber->event_generation;
  ++stale_entries_;
}

FiberId ExecutorCore::spawn(Process* process, uint32_t incarnation, std::string name,
                            std::function<void()> body) {
  // A crashed incarnation (or one whose destructors are running) starts nothing.
  if (!process->running || process->incarnation != incarnation) return kNoFiber;
  SIM_CHECK(body != nullptr, "spawn of fiber '{}' in process '{}' with an empty body", name, process->name);
  uint32_t index;
  if (!free_fibers_.empty()) {
    index = free_fibers_.back();
    free_fibers_.pop_back();
  } else {
    SIM_CHECK(fibers_.size() < kFiberBit, "too many fibers ({})", fibers_.size());
    index = static_cast<uint32_t>(fibers_.size());
    fibers_.push_back(std::make_unique<Fiber>());
    fibers_.back()->index = index;
  }
  Fiber* fiber = fibers_[index].get();
  fiber->state = FiberState::kNew;
  fiber->started = false;
  fiber->permit = false;
  fiber->park_result = false;
  fiber->unwinding = false;
  fiber->unwind_rethrows = 0;
  fiber->process = process;
  fiber->incarnation = incarnation;
  fiber->park_deadline_ms = kNever;
  fiber->name = std::move(name);
  fiber->body = std::move(body);
  fiber->older = process->newest_fiber;
  fiber->newer = nullptr;
  if (process->newest_fiber != nullptr) process->newest_fiber->newer = fiber;
  process->newest_fiber = fiber;
  // Never inline: the new fiber first runs from the event loop, in an order drawn like any same-time event.
  schedule_fiber(fiber, now_ms_, draw_tie());
  return fiber->id();
}

FiberId ExecutorCore::current_fiber(const Process* process, uint32_t incarnation) const {
  return calling_fiber(process, incarnation, "current")->id();
}

int64_t ExecutorCore::to_global_ms(const Process* process, int64_t process_ms) const {
  if (process_ms == kNever) return kNever;
  int64_t global_ms;
  if (__builtin_sub_overflow(process_ms, process->clock_offset_ms, &global_ms)) {
    // Overflow: a deadline beyond the end of time is no deadline; one before its start is already due.
    return process->clock_offset_ms < 0 ? kNever : INT64_MIN;
  }
  return global_ms;
}

bool ExecutorCore::park_until(Process* process, uint32_t incarnation, int64_t deadline_ms) {
  Fiber* fiber = calling_fiber(process, incarnation, "park_until");
  if (fiber->unwinding) {
    keep_unwinding(fiber);
    return false;
  }
  if (fiber->permit) {
    fiber->permit = false;
    return true;
  }
  const int64_t deadline_global_ms = to_global_ms(process, deadline_ms);
  if (deadline_global_ms <= now_ms_) return false;
  fiber->state = FiberState::kParked;
  fiber->park_deadline_ms = deadline_ms;
  if (deadline_global_ms != kNever) schedule_fiber(fiber, deadline_global_ms, draw_tie());
  suspend(fiber);
  fiber->park_deadline_ms = kNever;
  return fiber->park_result;
}

void ExecutorCore::wake(FiberId id) {
  Fiber* fiber = find_fiber(id);
  if (fiber == nullptr || !fiber->process->running || fiber->unwinding) return;
  switch (fiber->state) {
    case FiberState::kParked:
      cancel_fiber_event(fiber);  // the deadline, if any
      fiber->park_result = true;
      fiber->state = FiberState::kRunnable;
      schedule_fiber(fiber, now_ms_, draw_tie());
      return;
    case FiberState::kNew:
    case FiberState::kRunnable:
    case FiberState::kRunning:
      // Not parked: keep one permit, so a completion that races ahead of the park is not lost.
      fiber->permit = true;
      return;
    case FiberState::kFree:
    case FiberState::kDone:
      return;
  }
}

void ExecutorCore::yield(Process* process, uint32_t incarnation) {
  Fiber* fiber = calling_fiber(process, incarnation, "yield");
  if (fiber->unwinding) {
    keep_unwinding(fiber);
    return;
  }
  fiber->state = FiberState::kRunnable;
  schedule_fiber(fiber, now_ms_, kYieldTie);
  suspend(fiber);
}

void ExecutorCore::keep_unwinding(Fiber* fiber) const {
  // Inside the unwinding (a destructor runs with the forced_unwind in flight): return at once, schedule
  // nothing.
  if (std::uncaught_exceptions() > 0 || !fiber->unwind) return;
  // No exception in flight: a catch (...) caught the forced_unwind and the code went on (or is cleaning up
  // before its own `throw;`). Returning would let it run on as if nothing happened, so resume the unwinding
  // from here. A catch (...) in a loop catches that again, forever: past a bound, call it the bug it is.
  SIM_CHECK(++fiber->unwind_rethrows <= kMaxUnwindRethrows,
            "{} keeps swallowing the forced_unwind that destroys it on crash: a catch (...) must rethrow "
            "boost::context::detail::forced_unwind (catch it first and `throw;`)",
            describe(fiber));
  std::rethrow_exception(fiber->unwind);
}

void ExecutorCore::resume(Fiber* fiber) {
  SIM_CHECK(current_fiber_ == nullptr, "{} resumed from inside {}", describe(fiber),
            describe(current_fiber_));
  fiber->state = FiberState::kRunning;
  current_fiber_ = fiber;
  current_process_ = fiber->process->id;
  if (!fiber->started) {
    // Created at first run rather than at spawn: a fiber that never ran costs no stack, and dropping it needs
    // no unwinding.
    fiber->started = true;
    fiber->context = fibers::create(stacks_, fiber->bounds, [this, fiber](ctx::fiber&& caller) {
      return fiber_main(fiber, std::move(caller));
    });
  }
  fibers::switch_in(fiber->context, fiber->bounds);
  current_fiber_ = nullptr;
  current_process_ = kWorld;
  if (fiber->state == FiberState::kDone) release_fiber(fiber);
}

void ExecutorCore::suspend(Fiber* fiber) {
  // If crash() destroys this fiber meanwhile, this throws the forced_unwind that unwinds its stack.
  fibers::switch_out(fiber->caller, fiber->bounds, fiber->unwind);
}

ctx::fiber ExecutorCore::fiber_main(Fiber* fiber, ctx::fiber&& caller) {
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
  } catch (const std::exception& e) {
    fiber_threw(fiber, e.what());
  } catch (...) {
    fiber_threw(fiber, "(an exception not derived from std::exception)");
  }
  if (fiber->unwinding) {
    // The body swallowed the forced_unwind and returned: finish the unwinding Boost.Context started.
    fibers::fiber_leaving(fiber->bounds);
    std::rethrow_exception(fiber->unwind);
  }
  fiber->state = FiberState::kDone;
  fibers::fiber_leaving(fiber->bounds);
  return std::move(fiber->caller);
}

void ExecutorCore::fiber_threw(const Fiber* fiber, const char* what) const {
  // An exception escaping a fiber body is a bug in simulated code (expected failures are values): stop here,
  // with everything needed to reproduce it.
  std::fprintf(stderr, "mephisto sim: %s threw: %s\n  (seed=%llu, time_ms=%lld)\n", describe(fiber).c_str(),
               what, static_cast<unsigned long long>(seed_), static_cast<long long>(now_ms_));
  std::fflush(stderr);
  std::abort();
}

void ExecutorCore::unwind(Fiber* fiber) {
  SIM_CHECK(fiber->state != FiberState::kRunning,
            "{} is running: a process cannot crash itself from one of its own fibers (crash it from a timer, "
            "e.g. executor.after(0, kWorld, ...))",
            describe(fiber));
  Fiber* const saved_fiber = current_fiber_;
  const ProcessId saved_process = current_process_;
  fiber->unwinding = true;
  current_fiber_ = fiber;
  current_process_ = fiber->process->id;
  // Throws forced_unwind at the fiber's suspension point (in suspend()); returns once the fiber's stack is
  // unwound and released.
  fibers::destroy(fiber->context, fiber->bounds);
  current_fiber_ = saved_fiber;
  current_process_ = saved_process;
}

void ExecutorCore::release_fiber(Fiber* fiber) {
  Process* process = fiber->process;
  if (fiber->newer != nullptr) fiber->newer->older = fiber->older;
  if (fiber->older != nullptr) fiber->older->newer = fiber->newer;
  if (process->newest_fiber == fiber) process->newest_fiber = fiber->older;
  fiber->newer = fiber->older = nullptr;
  cancel_fiber_event(fiber);
  SIM_CHECK(!fiber->context && !fiber->caller, "{} released with a live context", describe(fiber));
  fiber->state = FiberState::kFree;
  fiber->process = nullptr;
  fiber->unwind = nullptr;
  fiber->body = nullptr;
  fiber->name.clear();
  if (++fiber->generation == 0) fiber->generation = 1;  // FiberIds are never kNoFiber
  free_fibers_.push_back(fiber->index);
}

// ---------------------------------------------------------------------------------------------------------------
// Processes

ProcessId ExecutorCore::add_process(std::string name, ProcessMain main) {
  SIM_CHECK(!name.empty(), "a process needs a name");
  SIM_CHECK(main != nullptr, "process '{}' has an empty main", name);
  for (const auto& p : processes_) SIM_CHECK(p->name != name, "process name '{}' is already taken", name);
  auto p = std::make_unique<Process>();
  p->id = static_cast<ProcessId>(processes_.size());
  p->name = std::move(name);
  p->main = std::move(main);
  processes_.push_back(std::move(p));
  return processes_.back()->id;
}

void ExecutorCore::start(ProcessId id, bool wipe_disk) {
  SIM_CHECK(id != kWorld, "the world process is always running");
  Process& p = process(id);
  SIM_CHECK(!p.running, "start of process '{}', which is already running (incarnation {})", p.name,
            p.incarnation);
  SIM_CHECK(!destroying_, "start of process '{}' while the executor is being destroyed", p.name);
  if (wipe_disk) p.disk.clear();
  ++p.incarnation;
  p.running = true;
  p.contexts.push_back(std::make_unique<Context>(
      this, &p, root_random_.fork(fmt::format("process/{}/{}", p.name, p.incarnation))));
  log_->record(now_ms_, p.name, p.incarnation == 1 ? "start" : "restart",
               fmt::format("incarnation={} disk={}", p.incarnation, wipe_disk ? "wiped" : "kept"));
  Context* context = p.contexts.back().get();
  Process* raw = &p;
  spawn(raw, p.incarnation, "main", [raw, context] { raw->main(*context); });
}

void ExecutorCore::drop_fibers_and_timers(Process* p) {
  // Timers first, so no callback can observe a half-dead process. Their callbacks are destroyed only after
  // all are unlinked: a capture's destructor may touch the timer list.
  std::vector<std::function<void()>> dropped;
  while (p->newest_timer != kNil) {
    dropped.push_back(release_timer(p->newest_timer));
    ++stale_entries_;
  }
  dropped.clear();
  // Newest fiber first, like destruction order in a scope. Fibers that never ran just lose their body.
  while (Fiber* fiber = p->newest_fiber) {
    cancel_fiber_event(fiber);
    if (fiber->started && fiber->state != FiberState::kDone) unwind(fiber);
    release_fiber(fiber);
  }
}

void ExecutorCore::drop_held(Process* p) {
  // Every held entry is dead now (its timer released, its fiber's event cancelled) and was counted stale
  // when it died.
  for (const QueueEntry& entry : p->held) {
    SIM_CHECK(!is_live(entry), "a held entry of crashed process '{}' is still live", p->name);
    SIM_CHECK(stale_entries_ > 0, "stale-entry count out of step with the held entries");
    --stale_entries_;
  }
  p->held.clear();
  if (p->paused) {
    p->paused = false;
    --paused_processes_;
  }
}

void ExecutorCore::pause(ProcessId id) {
  SIM_CHECK(id != kWorld, "the world process cannot be paused (pause a process instead)");
  Process& p = process(id);
  // Like crash(), a no-op when it cannot apply, so fault schedules may overlap.
  if (!p.running || p.paused) return;
  p.paused = true;
  ++paused_processes_;
  log_->record(now_ms_, p.name, "pause", fmt::format("incarnation={}", p.incarnation));
}

void ExecutorCore::resume(ProcessId id) {
  Process& p = process(id);
  if (!p.paused) return;
  p.paused = false;
  --paused_processes_;
  // Moved out first: a push below may compact, which purges the held lists.
  std::vector<QueueEntry> held = std::move(p.held);
  p.held.clear();
  std::erase_if(held, [this](const QueueEntry& entry) {
    if (is_live(entry)) return false;
    SIM_CHECK(stale_entries_ > 0, "stale-entry count out of step with the held entries");
    --stale_entries_;
    return true;
  });
  log_->record(now_ms_, p.name, "resume", fmt::format("incarnation={} held={}", p.incarnation, held.size()));
  // Overdue entries run now (a deadline that passed fires at once); an entry is later than now only when
  // run_until(INT64_MAX) went idle with it held, and then it keeps its time.
  for (const QueueEntry& entry : held)
    push(std::max(now_ms_, entry.time_ms), kResumeTie, entry.target, entry.generation);
}

void ExecutorCore::crash(ProcessId id) {
  SIM_CHECK(id != kWorld, "the world process cannot crash");
  Process& p = process(id);
  if (!p.running) return;  // crashing a process that is down is a no-op (fault schedules may overlap)
  for (const Fiber* f = p.newest_fiber; f != nullptr; f = f->older) {
    SIM_CHECK(f->state != FiberState::kRunning,
              "crash of process '{}' from its own {}: schedule the crash from a timer instead", p.name,
              describe(f));
  }
  size_t fibers = 0;
  for (const Fiber* f = p.newest_fiber; f != nullptr; f = f->older) ++fibers;
  size_t timers = 0;
  for (uint32_t t = p.newest_timer; t != kNil; t = timers_[t].next) ++timers;
  log_->record(now_ms_, p.name, "crash",
               fmt::format("incarnation={} fibers={} timers={}", p.incarnation, fibers, timers));
  // Down before anything is torn down: destructors that run below see running() == false, and anything they
  // try to schedule for this process is dropped.
  p.running = false;
  drop_fibers_and_timers(&p);
  drop_held(&p);
  // The process's memory goes last, newest object first: fibers may have referred to it until they were
  // unwound.
  auto kept = std::move(p.kept);
  p.kept.clear();
  while (!kept.empty()) kept.pop_back();
}

ProcessContext& ExecutorCore::context(ProcessId id) {
  Process& p = process(id);
  SIM_CHECK(p.running, "context() of process '{}', which is not running", p.name);
  return *p.contexts.back();
}

void ExecutorCore::set_clock_offset(ProcessId id, int64_t offset_ms) {
  SIM_CHECK(id != kWorld, "the world's clock is global virtual time; skew a process instead");
  Process& p = process(id);
  const int64_t previous_ms = p.clock_offset_ms;
  p.clock_offset_ms = offset_ms;
  log_->record(now_ms_, p.name, "clock",
               fmt::format("offset_ms={} previous_offset_ms={}", offset_ms, previous_ms));
  if (!p.running) return;  // no fibers (or, mid-crash, fibers about to be dropped)
  // Deadlines are on the process clock: when it jumps, parked fibers' wake-up times move with it (a jump
  // forward fires them early, as a real clock jump fires real timeouts early).
  for (Fiber* f = p.newest_fiber; f != nullptr; f = f->older) {
    if (f->state != FiberState::kParked || f->park_deadline_ms == kNever) continue;
    cancel_fiber_event(f);
    schedule_fiber(f, std::max(now_ms_, to_global_ms(&p, f->park_deadline_ms)), draw_tie());
  }
}

}  // namespace

// ---------------------------------------------------------------------------------------------------------------
// Executor: the public face.

struct Executor::Impl {
  ExecutorCore core;
  Impl(uint64_t seed, EventLog* log) : core(seed, log) {}
};

Executor::Executor(uint64_t seed, EventLog* log) : impl_(std::make_unique<Impl>(seed, log)) {}
Executor::~Executor() = default;

int64_t Executor::now_ms() const {
  return impl_->core.now_ms();
}
uint64_t Executor::seed() const {
  return impl_->core.seed();
}
EventLog& Executor::log() {
  return impl_->core.log();
}
Random& Executor::random() {
  return impl_->core.random();
}
TimerId Executor::at(int64_t time_ms, ProcessId owner, std::function<void()> fn) {
  return impl_->core.at(time_ms, owner, std::move(fn));
}
void Executor::cancel(TimerId timer) {
  impl_->core.cancel(timer);
}
ProcessId Executor::add_process(std::string name, ProcessMain main) {
  return impl_->core.add_process(std::move(name), std::move(main));
}
void Executor::start(ProcessId process, bool wipe_disk) {
  impl_->core.start(process, wipe_disk);
}
void Executor::crash(ProcessId process) {
  impl_->core.crash(process);
}
bool Executor::running(ProcessId process) const {
  return impl_->core.running(process);
}
void Executor::pause(ProcessId process) {
  impl_->core.pause(process);
}
void Executor::resume(ProcessId process) {
  impl_->core.resume(process);
}
bool Executor::paused(ProcessId process) const {
  return impl_->core.paused(process);
}
ProcessContext& Executor::context(ProcessId process) {
  return impl_->core.context(process);
}
void Executor::set_clock_offset(ProcessId process, int64_t offset_ms) {
  impl_->core.set_clock_offset(process, offset_ms);
}
ProcessId Executor::current_process() const {
  return impl_->core.current_process();
}
void Executor::run_until(int64_t time_ms) {
  (void)impl_->core.run(nullptr, time_ms);
}
bool Executor::run_until(const std::function<bool()>& done, int64_t time_ms) {
  return impl_->core.run(&done, time_ms);
}
uint64_t Executor::steps() const {
  return impl_->core.steps();
}

}  // namespace mephisto::sim
