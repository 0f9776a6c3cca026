// The virtual-time executor: ordering and determinism of events, fibers (park/wake/permits/yield/deadlines),
// process crash/restart semantics, pause/resume, and per-process clocks.
#include "sim/executor.h"

#include <chrono>
#include <climits>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace mephisto::sim {
namespace {

constexpr int64_t kForever = INT64_MAX;
constexpr int64_t kHourMs = 3'600'000;

// Appends what happened to `trace` and records it in the executor's log, so tests can check both order and
// hash.
class Tracer {
 public:
  explicit Tracer(std::vector<std::string>* trace) : trace_(trace) {}
  void operator()(Executor& ex, const std::string& what) const {
    trace_->push_back(what);
    ex.log().record(ex.now_ms(), "test", "note", what);
  }

 private:
  std::vector<std::string>* trace_;
};

// Records its own destruction (stands for an object of a process's memory or a fiber's stack).
struct Probe {
  std::vector<std::string>* trace;
  std::string name;
  ~Probe() { trace->push_back(name + " destroyed"); }
};

std::vector<int> same_time_order(uint64_t seed, uint64_t* hash) {
  std::vector<int> order;
  EventLog log;
  Executor ex(seed, &log);
  for (int i = 0; i < 16; ++i) {
    ex.at(5, kWorld, [&, i] {
      order.push_back(i);
      log.record(ex.now_ms(), "test", "timer", std::to_string(i));
    });
  }
  ex.run_until(10);
  *hash = log.hash();
  return order;
}

// ---------------------------------------------------------------------------------------------------------------
// Events and time

TEST(Executor, TimersRunInTimeOrder) {
  std::vector<int64_t> fired;
  EventLog log;
  Executor ex(1, &log);
  for (int64_t t : {30, 10, 20, 10}) ex.at(t, kWorld, [&] { fired.push_back(ex.now_ms()); });
  ex.run_until(100);
  EXPECT_EQ(fired, (std::vector<int64_t>{10, 10, 20, 30}));
  EXPECT_EQ(ex.now_ms(), 100);
  EXPECT_EQ(ex.steps(), 4u);
}

TEST(Executor, RunUntilIncludesTheLimitAndAdvancesTime) {
  std::vector<int64_t> fired;
  EventLog log;
  Executor ex(1, &log);
  ex.at(10, kWorld, [&] { fired.push_back(ex.now_ms()); });
  ex.at(11, kWorld, [&] { fired.push_back(ex.now_ms()); });
  ex.run_until(10);
  EXPECT_EQ(fired, (std::vector<int64_t>{10}));
  EXPECT_EQ(ex.now_ms(), 10);
  ex.run_until(5);  // the past: nothing to do, time never goes back
  EXPECT_EQ(ex.now_ms(), 10);
  ex.run_until(kForever);  // "until idle": stops at the last event, not at the end of time
  EXPECT_EQ(fired, (std::vector<int64_t>{10, 11}));
  EXPECT_EQ(ex.now_ms(), 11);
  ex.after(7, kWorld, [&] { fired.push_back(ex.now_ms()); });
  ex.run_until(100);
  EXPECT_EQ(fired.back(), 18);
}

TEST(Executor, SameTimeOrderIsDrawnFromTheSeedAndReproducible) {
  uint64_t hash_a = 0, hash_b = 0;
  const auto first = same_time_order(7, &hash_a);
  const auto again = same_time_order(7, &hash_b);
  EXPECT_EQ(first, again);
  EXPECT_EQ(hash_a, hash_b);
  std::set<std::vector<int>> orders;
  std::set<uint64_t> hashes;
  for (uint64_t seed = 1; seed <= 8; ++seed) {
    uint64_t hash = 0;
    orders.insert(same_time_order(seed, &hash));
    hashes.insert(hash);
  }
  EXPECT_GT(orders.size(), 1u) << "same-time events must interleave differently under different seeds";
  EXPECT_EQ(orders.size(), hashes.size());
}

TEST(Executor, CancelledTimersNeverFire) {
  int fired = 0;
  EventLog log;
  Executor ex(1, &log);
  const TimerId a = ex.at(10, kWorld, [&] { ++fired; });
  const TimerId b = ex.at(20, kWorld, [&] { ++fired; });
  EXPECT_NE(a, 0u);
  EXPECT_NE(a, b);
  ex.cancel(a);
  ex.cancel(a);              // twice: harmless
  ex.cancel(0xdeadbeefULL);  // unknown: harmless
  ex.run_until(100);
  EXPECT_EQ(fired, 1);
  ex.cancel(b);  // already fired: harmless
  EXPECT_EQ(ex.steps(), 1u);
}

TEST(Executor, TimersMayScheduleAndCancelFromTheirCallback) {
  std::vector<std::string> trace;
  EventLog log;
  Executor ex(1, &log);
  TimerId doomed = 0;
  TimerId self = 0;
  self = ex.at(10, kWorld, [&] {
    trace.push_back("first");
    ex.cancel(self);    // cancelling the running timer does nothing
    ex.cancel(doomed);  // a later one is cancelled
    ex.after(0, kWorld, [&] { trace.push_back("same time"); });
    ex.after(5, kWorld, [&] { trace.push_back("later"); });
  });
  doomed = ex.at(12, kWorld, [&] { trace.push_back("doomed"); });
  ex.run_until(100);
  EXPECT_EQ(trace, (std::vector<std::string>{"first", "same time", "later"}));
}

TEST(Executor, RunUntilPredicate) {
  int ticks = 0;
  EventLog log;
  Executor ex(1, &log);
  const ProcessId p = ex.add_process("ticker", [&](ProcessContext& ctx) {
    for (;;) {
      ctx.scheduler().wait_until_ms(ctx.clock().now_ms() + 10);
      ++ticks;
    }
  });
  ex.start(p);
  EXPECT_TRUE(ex.run_until([&] { return ticks >= 5; }, 1000));
  EXPECT_EQ(ticks, 5);
  EXPECT_EQ(ex.now_ms(), 50);  // stopped right after the event that made it true
  EXPECT_FALSE(ex.run_until([] { return false; }, 200));
  EXPECT_EQ(ex.now_ms(), 200);
  EXPECT_TRUE(ex.run_until([] { return true; }, 10'000));  // already true: runs nothing
  EXPECT_EQ(ex.now_ms(), 200);
}

TEST(Executor, CurrentProcess) {
  std::vector<ProcessId> seen;
  EventLog log;
  Executor ex(1, &log);
  ProcessId p = kWorld;
  p = ex.add_process("p", [&](ProcessContext& ctx) {
    seen.push_back(ex.current_process());
    ex.after(1, ctx.id(), [&] { seen.push_back(ex.current_process()); });
  });
  ex.at(0, kWorld, [&] { seen.push_back(ex.current_process()); });
  EXPECT_EQ(ex.current_process(), kWorld);
  ex.start(p);
  ex.run_until(10);
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_EQ(std::count(seen.begin(), seen.end(), p), 2);
  EXPECT_EQ(std::count(seen.begin(), seen.end(), kWorld), 1);
  EXPECT_EQ(ex.current_process(), kWorld);
}

// ---------------------------------------------------------------------------------------------------------------
// Fibers

TEST(Executor, SpawnNeverRunsInline) {
  std::vector<std::string> trace;
  Tracer note(&trace);
  EventLog log;
  Executor ex(1, &log);
  const ProcessId p = ex.add_process("p", [&](ProcessContext& ctx) {
    note(ex, "main before spawn");
    const FiberId child = ctx.scheduler().spawn("child", [&] { note(ex, "child runs"); });
    EXPECT_NE(child, kNoFiber);
    EXPECT_NE(child, ctx.scheduler().current());
    note(ex, "main after spawn");
    ctx.scheduler().yield();
    note(ex, "main after yield");
  });
  ex.start(p);
  EXPECT_TRUE(trace.empty()) << "start() must not run main inline either";
  ex.run_until(0);
  EXPECT_EQ(trace, (std::vector<std::string>{"main before spawn", "main after spawn", "child runs",
                                             "main after yield"}));
}

TEST(Executor, AnHourLongParkTakesNoWallTime) {
  bool woke = false;
  int64_t woke_at_ms = -1;
  EventLog log;
  Executor ex(1, &log);
  const ProcessId p = ex.add_process("sleeper", [&](ProcessContext& ctx) {
    woke = ctx.scheduler().park_until(ctx.clock().now_ms() + kHourMs);
    woke_at_ms = ctx.clock().now_ms();
  });
  ex.start(p);
  const auto wall_start = std::chrono::steady_clock::now();
  ex.run_until(kForever);
  const auto wall = std::chrono::steady_clock::now() - wall_start;
  EXPECT_FALSE(woke) << "reaching the deadline returns false";
  EXPECT_EQ(woke_at_ms, kHourMs);
  EXPECT_EQ(ex.now_ms(), kHourMs);
  EXPECT_LT(std::chrono::duration_cast<std::chrono::milliseconds>(wall).count(), 1000);
}

TEST(Executor, WakeEndsParkEarly) {
  FiberId sleeper = kNoFiber;
  bool woke = false;
  int64_t woke_at_ms = -1;
  EventLog log;
  Executor ex(1, &log);
  const ProcessId p = ex.add_process("p", [&](ProcessContext& ctx) {
    sleeper = ctx.scheduler().current();
    woke = ctx.scheduler().park_until(1000);
    woke_at_ms = ctx.clock().now_ms();
  });
  ex.start(p);
  ex.at(300, kWorld, [&] { ex.context(p).scheduler().wake(sleeper); });
  ex.run_until(5000);
  EXPECT_TRUE(woke);
  EXPECT_EQ(woke_at_ms, 300);
  EXPECT_EQ(ex.steps(), 3u) << "the cancelled deadline must not run as an event";
}

TEST(Executor, ParkWithoutDeadlineWaitsForAWake) {
  FiberId sleeper = kNoFiber;
  int64_t woke_at_ms = -1;
  EventLog log;
  Executor ex(1, &log);
  const ProcessId p = ex.add_process("p", [&](ProcessContext& ctx) {
    sleeper = ctx.scheduler().current();
    EXPECT_TRUE(ctx.scheduler().park_until(kForever));
    woke_at_ms = ctx.clock().now_ms();
  });
  ex.start(p);
  ex.run_until(10 * kHourMs);
  EXPECT_EQ(woke_at_ms, -1);
  ex.context(p).scheduler().wake(sleeper);  // from outside the loop: runs at the current time
  ex.run_until(kForever);
  EXPECT_EQ(woke_at_ms, 10 * kHourMs);
}

TEST(Executor, WakeBeforeParkLeavesOnePermit) {
  std::vector<std::string> trace;
  EventLog log;
  Executor ex(1, &log);
  const ProcessId p = ex.add_process("p", [&](ProcessContext& ctx) {
    Scheduler& s = ctx.scheduler();
    s.wake(s.current());
    s.wake(s.current());  // permits do not accumulate: one, like a binary semaphore
    EXPECT_TRUE(s.park_until(ctx.clock().now_ms() + 1000));
    trace.push_back("permit at " + std::to_string(ctx.clock().now_ms()));
    EXPECT_FALSE(s.park_until(ctx.clock().now_ms() + 1000));
    trace.push_back("deadline at " + std::to_string(ctx.clock().now_ms()));
  });
  ex.start(p);
  ex.run_until(kForever);
  EXPECT_EQ(trace, (std::vector<std::string>{"permit at 0", "deadline at 1000"}));
}

TEST(Executor, WakeOfANewFiberLeavesAPermit) {
  bool woke = false;
  EventLog log;
  Executor ex(1, &log);
  const ProcessId p = ex.add_process("p", [&](ProcessContext& ctx) {
    const FiberId child =
        ctx.scheduler().spawn("child", [&] { woke = ctx.scheduler().park_until(kForever); });
    ctx.scheduler().wake(child);  // before it ever ran: the completion raced ahead of the park
  });
  ex.start(p);
  ex.run_until(kForever);
  EXPECT_TRUE(woke);
  EXPECT_EQ(ex.now_ms(), 0);
}

TEST(Executor, ParkWithADeadlineDueReturnsAtOnce) {
  std::vector<int64_t> times;
  EventLog log;
  Executor ex(1, &log);
  const ProcessId p = ex.add_process("p", [&](ProcessContext& ctx) {
    ctx.scheduler().wait_until_ms(500);
    EXPECT_FALSE(ctx.scheduler().park_until(500));  // now
    EXPECT_FALSE(ctx.scheduler().park_until(0));    // the past
    EXPECT_FALSE(ctx.scheduler().park_until(INT64_MIN));
    times.push_back(ctx.clock().now_ms());
  });
  ex.start(p);
  ex.run_until(kForever);
  EXPECT_EQ(times, (std::vector<int64_t>{500}));
}

TEST(Executor, WakeOfFinishedOrUnknownFibersDoesNothing) {
  FiberId finished = kNoFiber;
  bool done = false;
  EventLog log;
  Executor ex(1, &log);
  const ProcessId p = ex.add_process("p", [&](ProcessContext& ctx) {
    finished = ctx.scheduler().spawn("short", [] {});
    ctx.scheduler().yield();
    ctx.scheduler().wake(finished);
    ctx.scheduler().wake(kNoFiber);
    ctx.scheduler().wake(0xffff'ffff'0000'1234ULL);
    // The finished fiber's slot is reused by the next spawn; the old id must not reach the new fiber.
    ctx.scheduler().spawn("reuser", [&] {
      EXPECT_FALSE(ctx.scheduler().park_until(ctx.clock().now_ms() + 10));
      done = true;
    });
    ctx.scheduler().yield();
    ctx.scheduler().wake(finished);
  });
  ex.start(p);
  ex.run_until(kForever);
  EXPECT_TRUE(done);
}

TEST(Executor, YieldLetsEveryOtherRunnableFiberRunOnce) {
  std::vector<std::string> trace;
  EventLog log;
  Executor ex(3, &log);
  const ProcessId p = ex.add_process("p", [&](ProcessContext& ctx) {
    for (const char* name : {"a", "b", "c"}) {
      ctx.scheduler().spawn(name, [&, name] {
        for (int round = 0; round < 4; ++round) {
          trace.push_back(name);
          ctx.scheduler().yield();
        }
      });
    }
  });
  ex.start(p);
  ex.run_until(kForever);
  ASSERT_EQ(trace.size(), 12u);
  for (size_t round = 0; round < 4; ++round) {
    std::set<std::string> names(trace.begin() + round * 3, trace.begin() + round * 3 + 3);
    EXPECT_EQ(names.size(), 3u) << "round " << round << ": a fiber ran twice before another ran once";
  }
  EXPECT_EQ(ex.now_ms(), 0) << "yield does not advance time";
}

TEST(Executor, ManyShortFibersReuseStacks) {
  int finished = 0;
  EventLog log;
  Executor ex(1, &log);
  const ProcessId p = ex.add_process("p", [&](ProcessContext& ctx) {
    for (int i = 0; i < 5000; ++i) {
      ctx.scheduler().spawn("worker", [&, i] {
        ctx.scheduler().wait_until_ms(ctx.clock().now_ms() + 1 + i % 7);
        ++finished;
      });
      if (i % 100 == 0) ctx.scheduler().wait_until_ms(ctx.clock().now_ms() + 1);
    }
  });
  ex.start(p);
  ex.run_until(kForever);
  EXPECT_EQ(finished, 5000);
}

TEST(Executor, WokenParksDoNotLeaveStaleEventsBehind) {
  // Each park's deadline is an hour away and each is woken at once: the cancelled deadlines must neither run
  // nor hold time hostage (the run ends at time 0), however many pile up.
  int rounds = 0;
  EventLog log;
  Executor ex(1, &log);
  const ProcessId p = ex.add_process("p", [&](ProcessContext& ctx) {
    Scheduler& s = ctx.scheduler();
    const FiberId sleeper = s.spawn("sleeper", [&] {
      for (int i = 0; i < 20'000; ++i) {
        EXPECT_TRUE(s.park_until(ctx.clock().now_ms() + kHourMs));
        ++rounds;
      }
    });
    for (int i = 0; i < 20'000; ++i) {
      s.yield();
      s.wake(sleeper);
    }
  });
  ex.start(p);
  ex.run_until(kForever);
  EXPECT_EQ(rounds, 20'000);
  EXPECT_EQ(ex.now_ms(), 0);
}

// ---------------------------------------------------------------------------------------------------------------
// Crash and restart

TEST(Executor, CrashUnwindsParkedFibers) {
  std::vector<std::string> trace;
  EventLog log;
  Executor ex(1, &log);
  FiberId spawned_in_destructor = 123;
  bool park_in_destructor = true;
  struct Cleanup {
    ProcessContext* ctx;
    std::vector<std::string>* trace;
    FiberId* spawned;
    bool* parked;
    ~Cleanup() {
      // Runs while the crash unwinds the fiber: the process is down; nothing may be scheduled for it.
      *parked = ctx->scheduler().park_until(ctx->clock().now_ms() + 1000);
      ctx->scheduler().yield();
      *spawned = ctx->scheduler().spawn("late", [] {});
      trace->push_back("cleanup at " + std::to_string(ctx->clock().now_ms()));
    }
  };
  const ProcessId p = ex.add_process("p", [&](ProcessContext& ctx) {
    ctx.scheduler().spawn("worker", [&] {
      Cleanup cleanup{&ctx, &trace, &spawned_in_destructor, &park_in_destructor};
      ctx.scheduler().park_until(kForever);
      trace.push_back("worker after park");  // never: the crash unwinds the stack from the park
    });
    ctx.scheduler().wait_until_ms(10'000);
    trace.push_back("main after wait");  // never
  });
  ex.start(p);
  ex.at(100, kWorld, [&] {
    EXPECT_TRUE(ex.running(p));
    ex.crash(p);
    EXPECT_FALSE(ex.running(p));
  });
  ex.run_until(kForever);
  EXPECT_EQ(trace, (std::vector<std::string>{"cleanup at 100"}));
  EXPECT_FALSE(park_in_destructor);
  EXPECT_EQ(spawned_in_destructor, kNoFiber);
  EXPECT_EQ(ex.now_ms(), 100) << "nothing of the crashed process may remain scheduled";
  ex.crash(p);  // crashing a process that is down is a no-op
}

TEST(Executor, CrashDestroysKeptObjectsAfterFibersNewestFirst) {
  std::vector<std::string> trace;
  EventLog log;
  Executor ex(1, &log);
  const ProcessId p = ex.add_process("p", [&](ProcessContext& ctx) {
    ctx.keep(std::make_shared<Probe>(&trace, "client"));
    ctx.keep(std::make_shared<Probe>(&trace, "table"));
    ctx.scheduler().spawn("worker", [&] {
      Probe on_stack{&trace, "worker stack"};
      ctx.scheduler().park_until(kForever);
    });
    Probe on_stack{&trace, "main stack"};
    ctx.scheduler().park_until(kForever);
  });
  ex.start(p);
  ex.run_until(10);
  EXPECT_TRUE(trace.empty());
  ex.crash(p);
  ASSERT_EQ(trace.size(), 4u);
  // Fibers first (newest first), then the process's memory (newest first).
  EXPECT_EQ(trace[0], "worker stack destroyed");
  EXPECT_EQ(trace[1], "main stack destroyed");
  EXPECT_EQ(trace[2], "table destroyed");
  EXPECT_EQ(trace[3], "client destroyed");
}

TEST(Executor, CrashDropsTheProcessTimers) {
  std::vector<std::string> trace;
  EventLog log;
  Executor ex(1, &log);
  const ProcessId p = ex.add_process("p", [&](ProcessContext& ctx) {
    auto memory = std::make_shared<Probe>(&trace, "captured");
    ex.after(100, ctx.id(), [&, memory] { trace.push_back("process timer"); });
    ex.after(10, ctx.id(), [&] { trace.push_back("early process timer"); });
  });
  ex.start(p);
  ex.at(50, kWorld, [&] { ex.crash(p); });
  ex.at(150, kWorld, [&] { trace.push_back("world timer"); });
  ex.run_until(kForever);
  // The dropped timer's captures die with the crash, not when its time would have come.
  EXPECT_EQ(trace, (std::vector<std::string>{"early process timer", "captured destroyed", "world timer"}));
  // A timer for a process that is down is dropped at once.
  ex.after(10, p, [&] { trace.push_back("timer for a dead process"); });
  ex.run_until(kForever);
  EXPECT_EQ(trace.back(), "world timer");
}

TEST(Executor, RestartKeepsOrWipesTheDisk) {
  struct Boot {
    uint32_t incarnation;
    int boots_on_disk;
    uint64_t first_draw;
  };
  std::vector<Boot> boots;
  EventLog log;
  Executor ex(1, &log);
  const ProcessId p = ex.add_process("worker-1", [&](ProcessContext& ctx) {
    std::string& count = ctx.disk()["boots"];
    count = std::to_string(count.empty() ? 1 : std::stoi(count) + 1);
    boots.push_back({ctx.incarnation(), std::stoi(count), ctx.random().next_u64()});
    ctx.scheduler().park_until(kForever);
  });
  EXPECT_FALSE(ex.running(p));
  ex.start(p);
  ex.run_until(10);
  ex.crash(p);
  ex.start(p);  // disk kept
  ex.run_until(20);
  ex.crash(p);
  ex.start(p, /*wipe_disk=*/true);
  ex.run_until(30);
  ASSERT_EQ(boots.size(), 3u);
  EXPECT_EQ(boots[0].incarnation, 1u);
  EXPECT_EQ(boots[0].boots_on_disk, 1);
  EXPECT_EQ(boots[1].incarnation, 2u);
  EXPECT_EQ(boots[1].boots_on_disk, 2);
  EXPECT_EQ(boots[2].incarnation, 3u);
  EXPECT_EQ(boots[2].boots_on_disk, 1);
  EXPECT_EQ(ex.context(p).incarnation(), 3u);
  // Each incarnation draws from its own stream.
  EXPECT_NE(boots[0].first_draw, boots[1].first_draw);
  EXPECT_NE(boots[1].first_draw, boots[2].first_draw);

  std::vector<std::string> lifecycle;
  for (const auto& e : log.events()) lifecycle.push_back(e.actor + " " + e.kind + " " + e.detail);
  EXPECT_EQ(lifecycle, (std::vector<std::string>{
                           "worker-1 start incarnation=1 disk=kept",
                           "worker-1 crash incarnation=1 fibers=1 timers=0",
                           "worker-1 restart incarnation=2 disk=kept",
                           "worker-1 crash incarnation=2 fibers=1 timers=0",
                           "worker-1 restart incarnation=3 disk=wiped",
                       }));
}

TEST(Executor, ACrashedIncarnationsContextIsAHarmlessZombie) {
  ProcessContext* first = nullptr;
  EventLog log;
  Executor ex(1, &log);
  const ProcessId p = ex.add_process("p", [&](ProcessContext& ctx) {
    if (first == nullptr) first = &ctx;
    ctx.scheduler().park_until(kForever);
  });
  ex.start(p);
  ex.run_until(1);
  ex.crash(p);
  ASSERT_NE(first, nullptr);
  EXPECT_EQ(first->scheduler().spawn("zombie", [] { ADD_FAILURE() << "a zombie spawned a fiber"; }),
            kNoFiber);
  std::weak_ptr<int> dropped;
  {
    auto object = std::make_shared<int>(1);
    dropped = object;
    first->keep(object);
  }
  EXPECT_TRUE(dropped.expired());
  ex.start(p);
  ex.run_until(kForever);
  EXPECT_EQ(first->scheduler().spawn("zombie", [] { ADD_FAILURE() << "a zombie spawned a fiber"; }),
            kNoFiber);
  ex.run_until(kForever);
}

TEST(Executor, AFiberOfAnotherProcessMayCrashAProcess) {
  std::vector<std::string> trace;
  EventLog log;
  Executor ex(1, &log);
  const ProcessId victim = ex.add_process("victim", [&](ProcessContext& ctx) {
    Probe on_stack{&trace, "victim stack"};
    ctx.scheduler().park_until(kForever);
  });
  const ProcessId killer = ex.add_process("killer", [&](ProcessContext& ctx) {
    ctx.scheduler().wait_until_ms(5);
    trace.push_back("killing");
    ex.crash(victim);
    trace.push_back("killed");
    ctx.scheduler().wait_until_ms(10);
    trace.push_back("killer continues");
  });
  ex.start(victim);
  ex.start(killer);
  ex.run_until(kForever);
  EXPECT_EQ(trace,
            (std::vector<std::string>{"killing", "victim stack destroyed", "killed", "killer continues"}));
}

TEST(Executor, WorldFibers) {
  int64_t done_at_ms = -1;
  EventLog log;
  Executor ex(1, &log);
  EXPECT_TRUE(ex.running(kWorld));
  Scheduler& world = ex.context(kWorld).scheduler();
  world.spawn("broker-loop", [&] {
    world.wait_until_ms(250);
    done_at_ms = world.clock().now_ms();
  });
  ex.run_until(kForever);
  EXPECT_EQ(done_at_ms, 250);
}

TEST(Executor, SwallowedForcedUnwindIsResumed) {
  // A catch (...) that swallows the crash's forced_unwind: the next park resumes the unwinding.
  std::vector<std::string> trace;
  EventLog log;
  Executor ex(1, &log);
  const ProcessId p = ex.add_process("p", [&](ProcessContext& ctx) {
    try {
      ctx.scheduler().park_until(kForever);
    } catch (...) {
      trace.push_back("swallowed");
    }
    trace.push_back("went on");
    ctx.scheduler().park_until(kForever);
    trace.push_back("never");
  });
  ex.start(p);
  ex.run_until(1);
  ex.crash(p);
  EXPECT_EQ(trace, (std::vector<std::string>{"swallowed", "went on"}));
  ex.start(p);  // the slot and stack are reusable afterwards
  ex.run_until(2);
  ex.crash(p);
}

TEST(Executor, DestructionUnwindsFibersThenKeptObjects) {
  std::vector<std::string> trace;
  {
    EventLog log;
    Executor ex(1, &log);
    const ProcessId p = ex.add_process("p", [&](ProcessContext& ctx) {
      ctx.keep(std::make_shared<Probe>(&trace, "kept"));
      Probe on_stack{&trace, "stack"};
      ctx.scheduler().park_until(kForever);
    });
    ex.start(p);
    ex.at(kHourMs, kWorld, [&] { trace.push_back("never"); });
    ex.run_until(10);
  }
  EXPECT_EQ(trace, (std::vector<std::string>{"stack destroyed", "kept destroyed"}));
}

// ---------------------------------------------------------------------------------------------------------------
// Clocks

TEST(Executor, ClockOffsetShiftsNowAndDeadlines) {
  std::vector<std::string> trace;
  EventLog log;
  Executor ex(1, &log);
  const ProcessId p = ex.add_process("skewed", [&](ProcessContext& ctx) {
    EXPECT_EQ(ctx.clock().now_ms(), ex.now_ms() + 5000);
    EXPECT_EQ(&ctx.scheduler().clock(), &ctx.clock());
    // A deadline 1 s ahead on the process clock is 1 s ahead in global time.
    EXPECT_FALSE(ctx.scheduler().park_until(ctx.clock().now_ms() + 1000));
    trace.push_back("global " + std::to_string(ex.now_ms()) + " local " +
                    std::to_string(ctx.clock().now_ms()));
    // Park until local 16'000 (global 11'000); at global 2'000 the clock jumps 5 s ahead: the deadline comes
    // 5 s early in global time.
    EXPECT_FALSE(ctx.scheduler().park_until(16'000));
    trace.push_back("global " + std::to_string(ex.now_ms()) + " local " +
                    std::to_string(ctx.clock().now_ms()));
    // A jump past the deadline fires it at once.
    EXPECT_FALSE(ctx.scheduler().park_until(ctx.clock().now_ms() + kHourMs));
    trace.push_back("global " + std::to_string(ex.now_ms()) + " local " +
                    std::to_string(ctx.clock().now_ms()));
  });
  ex.set_clock_offset(p, 5000);  // before start: the machine's clock, kept across restarts
  ex.start(p);
  ex.at(2000, kWorld, [&] { ex.set_clock_offset(p, 10'000); });
  ex.at(7000, kWorld, [&] { ex.set_clock_offset(p, 10'000 + 2 * kHourMs); });
  ex.run_until(kForever);
  EXPECT_EQ(trace,
            (std::vector<std::string>{"global 1000 local 6000", "global 6000 local 16000",
                                      "global 7000 local " + std::to_string(7000 + 10'000 + 2 * kHourMs)}));
  int clock_events = 0;
  for (const auto& e : log.events()) clock_events += (e.kind == "clock" && e.actor == "skewed") ? 1 : 0;
  EXPECT_EQ(clock_events, 3);
}

TEST(Executor, NegativeOffsetAndFarDeadlinesDoNotOverflow) {
  bool woke = true;
  EventLog log;
  Executor ex(1, &log);
  const ProcessId p = ex.add_process("p", [&](ProcessContext& ctx) {
    EXPECT_EQ(ctx.clock().now_ms(), -1000);
    woke = ctx.scheduler().park_until(INT64_MAX - 10);  // beyond global time's end: no deadline
  });
  ex.set_clock_offset(p, -1000);
  ex.start(p);
  ex.run_until(kForever);
  EXPECT_TRUE(woke) << "the park must still be pending";
  EXPECT_EQ(ex.now_ms(), 0);
}

// ---------------------------------------------------------------------------------------------------------------
// Pause and resume (SIGSTOP / SIGCONT)

// What the log recorded for `actor`: "kind detail", in order.
std::vector<std::string> log_of(const EventLog& log, const std::string& actor) {
  std::vector<std::string> lines;
  for (const Event& e : log.events()) {
    if (e.actor == actor) lines.push_back(e.kind + " " + e.detail);
  }
  return lines;
}

TEST(Executor, PauseHoldsEverythingOfTheProcessAndResumeRunsItInOrder) {
  std::vector<std::string> trace;
  EventLog log;
  Executor ex(3, &log);
  const auto note = [&](const std::string& what) {
    trace.push_back(what + "@" + std::to_string(ex.now_ms()));
  };
  FiberId waiter = kNoFiber;
  const ProcessId p = ex.add_process("p", [&](ProcessContext& ctx) {
    for (int64_t t : {10, 20, 30, 60}) ex.at(t, ctx.id(), [&, t] { note("timer" + std::to_string(t)); });
    waiter = ctx.scheduler().spawn(
        "waiter", [&] { note(ctx.scheduler().park_until(kForever) ? "woken" : "waiter deadline"); });
    ctx.scheduler().spawn("sleeper",
                          [&] { note(ctx.scheduler().park_until(25) ? "sleeper woken" : "deadline25"); });
  });
  ex.start(p);
  ex.at(5, kWorld, [&] {
    ex.pause(p);
    EXPECT_TRUE(ex.paused(p));
    EXPECT_TRUE(ex.running(p)) << "a stopped process is still alive";
  });
  // A message to the paused process (the network delivers on behalf of the receiver) and a wake from outside.
  ex.at(12, kWorld, [&] { ex.at(13, p, [&] { note("delivery13"); }); });
  ex.at(15, kWorld, [&] { ex.context(kWorld).scheduler().wake(waiter); });
  ex.at(40, kWorld, [&] { note("world40"); });
  ex.at(50, kWorld, [&] {
    ex.resume(p);
    EXPECT_FALSE(ex.paused(p));
  });
  ex.run_until(kForever);
  // Everything that came due while stopped runs at the resume, in the order it would have run; later events
  // keep their times.
  EXPECT_EQ(trace, (std::vector<std::string>{"world40@40", "timer10@50", "delivery13@50", "woken@50",
                                             "timer20@50", "deadline25@50", "timer30@50", "timer60@60"}));
  EXPECT_EQ(log_of(log, "p"),
            (std::vector<std::string>{"start incarnation=1 disk=kept", "pause incarnation=1",
                                      "resume incarnation=1 held=6"}));
}

TEST(Executor, HeldEventsNotYetDueKeepTheirTimes) {
  std::vector<std::string> trace;
  EventLog log;
  Executor ex(4, &log);
  const ProcessId p = ex.add_process("p", [&](ProcessContext& ctx) {
    ex.at(10, ctx.id(), [&] { trace.push_back("timer10@" + std::to_string(ex.now_ms())); });
    ex.at(20, ctx.id(), [&] { trace.push_back("timer20@" + std::to_string(ex.now_ms())); });
  });
  ex.start(p);
  ex.run_until(1);
  ex.pause(p);
  // Idle: the held events have not run, so time stays at the last event that did.
  ex.run_until(kForever);
  EXPECT_EQ(ex.now_ms(), 1);
  EXPECT_TRUE(trace.empty());
  ex.resume(p);
  ex.run_until(15);
  EXPECT_EQ(trace, (std::vector<std::string>{"timer10@10"}));
  ex.pause(p);
  ex.run_until(30);
  ex.resume(p);  // outside the loop: the overdue timer runs at the next step, at the current time
  ex.run_until(kForever);
  EXPECT_EQ(trace, (std::vector<std::string>{"timer10@10", "timer20@30"}));
}

TEST(Executor, CrashOfAPausedProcessDropsItsHeldEventsAndEndsThePause) {
  std::vector<std::string> trace;
  EventLog log;
  Executor ex(5, &log);
  const ProcessId p = ex.add_process("p", [&](ProcessContext& ctx) {
    const uint32_t incarnation = ctx.incarnation();
    auto memory = std::make_shared<Probe>(&trace, "captured " + std::to_string(incarnation));
    ex.after(10, ctx.id(), [&, memory, incarnation] {
      trace.push_back("timer of " + std::to_string(incarnation) + "@" + std::to_string(ex.now_ms()));
    });
    Probe on_stack{&trace, "stack " + std::to_string(incarnation)};
    ctx.scheduler().park_until(ctx.clock().now_ms() + 15);
    trace.push_back("main " + std::to_string(incarnation) + " woke@" + std::to_string(ex.now_ms()));
  });
  ex.start(p);
  ex.at(5, kWorld, [&] { ex.pause(p); });
  ex.at(30, kWorld, [&] {
    ex.crash(p);  // both the timer (due at 10) and the deadline (due at 15) are held now
    EXPECT_FALSE(ex.paused(p));
    EXPECT_FALSE(ex.running(p));
    ex.resume(p);  // not paused any more: a no-op
    ex.pause(p);   // down: a no-op
    EXPECT_FALSE(ex.paused(p));
  });
  ex.at(40, kWorld, [&] { ex.start(p); });
  ex.run_until(kForever);
  EXPECT_EQ(trace, (std::vector<std::string>{"stack 1 destroyed", "captured 1 destroyed", "timer of 2@50",
                                             "main 2 woke@55", "stack 2 destroyed", "captured 2 destroyed"}));
  EXPECT_EQ(
      log_of(log, "p"),
      (std::vector<std::string>{"start incarnation=1 disk=kept", "pause incarnation=1",
                                "crash incarnation=1 fibers=1 timers=1", "restart incarnation=2 disk=kept"}));
}

TEST(Executor, PauseAndResumeWhenTheyDoNotApplyAreNoOps) {
  EventLog log;
  Executor ex(6, &log);
  int fired = 0;
  const ProcessId p =
      ex.add_process("p", [&](ProcessContext& ctx) { ex.after(10, ctx.id(), [&] { ++fired; }); });
  ex.pause(p);  // not started yet
  EXPECT_FALSE(ex.paused(p));
  ex.start(p);
  ex.resume(p);  // running, not paused
  ex.resume(kWorld);
  EXPECT_FALSE(ex.paused(p));
  ex.run_until(5);
  ex.pause(p);
  ex.pause(p);  // already paused
  EXPECT_TRUE(ex.paused(p));
  ex.run_until(20);
  EXPECT_EQ(fired, 0);
  ex.resume(p);
  ex.resume(p);
  ex.run_until(kForever);
  EXPECT_EQ(fired, 1);
  EXPECT_EQ(ex.now_ms(), 20);
  EXPECT_EQ(log_of(log, "p"),
            (std::vector<std::string>{"start incarnation=1 disk=kept", "pause incarnation=1",
                                      "resume incarnation=1 held=1"}));
}

TEST(Executor, ManyHeldEventsSurviveCompaction) {
  // Enough timers cancelled while held that the next push compacts the heap and the held list.
  EventLog log;
  Executor ex(7, &log);
  std::vector<int> fired;
  std::vector<TimerId> timers;
  const ProcessId p = ex.add_process("p", [&](ProcessContext& ctx) {
    for (int i = 0; i < 20'000; ++i)
      timers.push_back(ex.at(10 + i / 8, ctx.id(), [&, i] { fired.push_back(i); }));
  });
  ex.start(p);
  ex.run_until(1);
  ex.pause(p);
  ex.run_until(3'000);  // every timer has come due and is held
  for (size_t i = 0; i < timers.size(); ++i) {
    if (i % 3 != 0) ex.cancel(timers[i]);
  }
  ex.at(3'000, kWorld, [&] { ex.resume(p); });
  ex.run_until(kForever);
  std::vector<int> expected;
  for (int i = 0; i < 20'000; i += 3) expected.push_back(i);
  // Same-time timers run in a drawn order, so compare per time step: within one, any order; across, in time.
  ASSERT_EQ(fired.size(), expected.size());
  for (size_t k = 1; k < fired.size(); ++k) EXPECT_LE(fired[k - 1] / 8, fired[k] / 8) << "at " << k;
  EXPECT_EQ(std::set<int>(fired.begin(), fired.end()), std::set<int>(expected.begin(), expected.end()));
  EXPECT_EQ(ex.now_ms(), 3'000);
}

// ---------------------------------------------------------------------------------------------------------------
// Whole runs

// With `pauses`, worker-0 is stopped for a while and worker-1 is crashed while stopped.
uint64_t scenario_hash(uint64_t seed, bool pauses = false) {
  EventLog log;
  Executor ex(seed, &log);
  std::vector<ProcessId> ids;
  for (int w = 0; w < 3; ++w) {
    ids.push_back(ex.add_process("worker-" + std::to_string(w), [&ex](ProcessContext& ctx) {
      for (int f = 0; f < 3; ++f) {
        ctx.scheduler().spawn("f" + std::to_string(f), [&ex, &ctx, f] {
          for (int i = 0; i < 20; ++i) {
            ctx.scheduler().wait_until_ms(ctx.clock().now_ms() + static_cast<int64_t>(ctx.random().below(5)));
            ex.log().record(ex.now_ms(), ctx.name(), "step",
                            "f" + std::to_string(f) + " i=" + std::to_string(i));
            if (ctx.random().chance(0.3)) ctx.scheduler().yield();
          }
        });
      }
      ctx.scheduler().park_until(INT64_MAX);
    }));
  }
  for (ProcessId id : ids) ex.start(id);
  ex.at(17, kWorld, [&] { ex.crash(ids[1]); });
  ex.at(23, kWorld, [&] { ex.start(ids[1]); });
  ex.at(30, kWorld, [&] { ex.set_clock_offset(ids[2], 7); });
  if (pauses) {
    ex.at(9, kWorld, [&] { ex.pause(ids[0]); });
    ex.at(12, kWorld, [&] { ex.pause(ids[1]); });
    ex.at(26, kWorld, [&] { ex.resume(ids[0]); });
  }
  ex.run_until(kForever);
  return log.hash() ^ log.count();
}

TEST(Executor, SameSeedSameRun) {
  EXPECT_EQ(scenario_hash(42), scenario_hash(42));
  std::set<uint64_t> hashes;
  for (uint64_t seed = 1; seed <= 5; ++seed) hashes.insert(scenario_hash(seed));
  EXPECT_GT(hashes.size(), 1u);
}

TEST(Executor, SameSeedSameRunWithPauses) {
  EXPECT_EQ(scenario_hash(42, true), scenario_hash(42, true));
  EXPECT_NE(scenario_hash(42, true), scenario_hash(42));
  std::set<uint64_t> hashes;
  for (uint64_t seed = 1; seed <= 5; ++seed) hashes.insert(scenario_hash(seed, true));
  EXPECT_GT(hashes.size(), 1u);
}

// ---------------------------------------------------------------------------------------------------------------
// Bugs stop with context

TEST(ExecutorDeathTest, AnExceptionEscapingAFiberStopsWithItsName) {
  EXPECT_DEATH(
      {
        EventLog log;
        Executor ex(9, &log);
        const ProcessId p = ex.add_process("p", [](ProcessContext& ctx) {
          ctx.scheduler().spawn("boom", [] { throw std::runtime_error("kaboom"); });
        });
        ex.start(p);
        ex.run_until(kForever);
      },
      "fiber 'boom'.*process 'p'.*kaboom.*seed=9");
}

TEST(ExecutorDeathTest, AProcessCannotCrashItselfFromItsOwnFiber) {
  EXPECT_DEATH(
      {
        EventLog log;
        Executor ex(1, &log);
        ProcessId p = kWorld;
        p = ex.add_process("p", [&](ProcessContext&) { ex.crash(p); });
        ex.start(p);
        ex.run_until(kForever);
      },
      "from a timer");
}

TEST(ExecutorDeathTest, ParkOutsideAFiberIsABug) {
  EXPECT_DEATH(
      {
        EventLog log;
        Executor ex(1, &log);
        (void)ex.context(kWorld).scheduler().park_until(10);
      },
      "outside any fiber");
}

TEST(ExecutorDeathTest, SwallowingForcedUnwindInALoopIsABug) {
  EXPECT_DEATH(
      {
        EventLog log;
        Executor ex(1, &log);
        const ProcessId p = ex.add_process("p", [](ProcessContext& ctx) {
          for (;;) {
            try {
              ctx.scheduler().park_until(INT64_MAX);
            } catch (...) {
            }
          }
        });
        ex.start(p);
        ex.run_until(1);
        ex.crash(p);
      },
      "swallowing the forced_unwind");
}

TEST(ExecutorDeathTest, PausingTheWorldIsABug) {
  EXPECT_DEATH(
      {
        EventLog log;
        Executor ex(1, &log);
        ex.pause(kWorld);
      },
      "world process cannot be paused");
}

TEST(ExecutorDeathTest, TimersInThePastAreABug) {
  EXPECT_DEATH(
      {
        EventLog log;
        Executor ex(1, &log);
        ex.run_until(100);
        ex.at(50, kWorld, [] {});
      },
      "in the past");
}

}  // namespace
}  // namespace mephisto::sim
