// The production event loop: the Scheduler contract on real time (spawn order, permits, deadlines, yield),
// run()'s ways to return, cross-thread post()/stop(), fd watches, run_blocking() on helper threads, and
// teardown of unfinished fibers (run it under the asan preset too: stack switches and unwinding must be
// clean).
#include "runtime/loop/event_loop.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <climits>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace mephisto {
namespace {

constexpr int64_t kForever = INT64_MAX;
// Generous upper bounds for "promptly": the machine is shared and the asan build is slow, so only gross
// delays (a missed wake-up that waits for some unrelated timeout) should fail these.
constexpr int64_t kPromptlyMs = 500;

void sleep_ms(int64_t ms) {
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
}

// A pipe closed on scope exit: the watched fd of the watch tests.
struct Pipe {
  int read_fd = -1;
  int write_fd = -1;
  Pipe() {
    int fds[2] = {-1, -1};
    EXPECT_EQ(::pipe(fds), 0);
    read_fd = fds[0];
    write_fd = fds[1];
  }
  ~Pipe() {
    ::close(read_fd);
    ::close(write_fd);
  }
  void write_byte() const {
    const char byte = 'x';
    EXPECT_EQ(::write(write_fd, &byte, 1), 1);
  }
  void read_byte() const {
    char byte = 0;
    EXPECT_EQ(::read(read_fd, &byte, 1), 1);
  }
};

// Records its own destruction (stands for an object on a fiber's stack).
struct Probe {
  std::vector<std::string>* trace;
  std::string name;
  ~Probe() { trace->push_back(name + " destroyed"); }
};

// ---------------------------------------------------------------------------------------------------------------
// Spawning, current(), the run queue

TEST(EventLoop, SpawnNeverRunsInlineAndRunsFifo) {
  EventLoop loop;
  std::vector<std::string> trace;
  loop.spawn("a", [&] {
    trace.push_back("a starts");
    loop.spawn("c", [&] { trace.push_back("c"); });
    loop.spawn("d", [&] { trace.push_back("d"); });
    trace.push_back("a spawned");
  });
  loop.spawn("b", [&] { trace.push_back("b"); });
  EXPECT_TRUE(trace.empty());
  EXPECT_EQ(loop.live_fibers(), 2);
  EXPECT_TRUE(loop.run());
  EXPECT_EQ(trace, (std::vector<std::string>{"a starts", "a spawned", "b", "c", "d"}));
  EXPECT_EQ(loop.live_fibers(), 0);
}

TEST(EventLoop, CurrentIsTheRunningFiberAndIdsAreNeverReused) {
  EventLoop loop;
  EXPECT_EQ(loop.current(), kNoFiber);
  std::vector<FiberId> seen;
  const FiberId first = loop.spawn("first", [&] { seen.push_back(loop.current()); });
  const FiberId second = loop.spawn("second", [&] { seen.push_back(loop.current()); });
  EXPECT_TRUE(loop.run());
  EXPECT_EQ(seen, (std::vector<FiberId>{first, second}));
  EXPECT_EQ(loop.current(), kNoFiber);
  const FiberId third = loop.spawn("third", [] {});
  EXPECT_NE(first, kNoFiber);
  EXPECT_LT(first, second);
  EXPECT_LT(second, third);  // a finished fiber's id is not handed out again
  EXPECT_TRUE(loop.run());
}

TEST(EventLoop, YieldLetsEveryOtherRunnableFiberRunOnce) {
  EventLoop loop;
  std::vector<std::string> trace;
  for (const std::string name : {"a", "b"}) {
    loop.spawn(name, [&, name] {
      for (int i = 1; i <= 3; ++i) {
        trace.push_back(name + std::to_string(i));
        loop.yield();
      }
    });
  }
  EXPECT_TRUE(loop.run());
  EXPECT_EQ(trace, (std::vector<std::string>{"a1", "b1", "a2", "b2", "a3", "b3"}));
}

TEST(EventLoop, ManyShortFibersReuseStacks) {
  EventLoop loop;
  int finished = 0;
  // Sequential waves: each wave's stacks come back to the pool before the next wave starts.
  loop.spawn("spawner", [&] {
    for (int wave = 0; wave < 20; ++wave) {
      for (int i = 0; i < 50; ++i) loop.spawn("short", [&] { ++finished; });
      loop.yield();
    }
  });
  EXPECT_TRUE(loop.run());
  EXPECT_EQ(finished, 1000);
}

// ---------------------------------------------------------------------------------------------------------------
// Parking, waking, deadlines

TEST(EventLoop, WakeBeforeParkLeavesExactlyOnePermit) {
  EventLoop loop;
  std::vector<bool> results;
  loop.spawn("self", [&] {
    loop.wake(loop.current());
    loop.wake(loop.current());  // a second wake adds nothing: a binary semaphore
    results.push_back(loop.park_until(kForever));
    results.push_back(loop.park_until(loop.clock().now_ms() + 20));
  });
  EXPECT_TRUE(loop.run());
  EXPECT_EQ(results, (std::vector<bool>{true, false}));
}

TEST(EventLoop, WakeFromAnotherFiberBeforeAndWhileParked) {
  EventLoop loop;
  std::vector<std::string> trace;
  FiberId sleeper = kNoFiber;
  sleeper = loop.spawn("sleeper", [&] {
    // "waker" already ran once and woke us while we were runnable: the permit is waiting.
    trace.push_back(loop.park_until(kForever) ? "permit" : "timeout");
    trace.push_back(loop.park_until(kForever) ? "woken" : "timeout");
  });
  loop.spawn("waker", [&] {
    loop.wake(sleeper);
    loop.yield();  // sleeper consumes the permit and parks again
    loop.yield();
    trace.push_back("waking");
    loop.wake(sleeper);
  });
  EXPECT_TRUE(loop.run());
  EXPECT_EQ(trace, (std::vector<std::string>{"permit", "waking", "woken"}));
}

TEST(EventLoop, WakeOfFinishedOrUnknownFiberDoesNothing) {
  EventLoop loop;
  const FiberId done = loop.spawn("done", [] {});
  EXPECT_TRUE(loop.run());
  loop.wake(done);
  loop.wake(987654);
  loop.wake(kNoFiber);
  EXPECT_EQ(loop.live_fibers(), 0);
  EXPECT_TRUE(loop.run());
}

TEST(EventLoop, ParkUntilReturnsFalseNoEarlierThanTheDeadline) {
  EventLoop loop;
  int64_t start_ms = 0;
  int64_t end_ms = 0;
  bool result = true;
  loop.spawn("sleeper", [&] {
    start_ms = loop.clock().now_ms();
    result = loop.park_until(start_ms + 60);
    end_ms = loop.clock().now_ms();
  });
  EXPECT_TRUE(loop.run());
  EXPECT_FALSE(result);
  EXPECT_GE(end_ms - start_ms, 60);
  EXPECT_LT(end_ms - start_ms, 60 + kPromptlyMs);
}

TEST(EventLoop, ParkUntilPastDeadlineReturnsFalseAfterOthersRan) {
  EventLoop loop;
  std::vector<std::string> trace;
  loop.spawn("a", [&] {
    const int64_t before_ms = loop.clock().now_ms();
    trace.push_back(loop.park_until(before_ms - 1000) ? "a woken" : "a timeout");
    EXPECT_LT(loop.clock().now_ms() - before_ms, kPromptlyMs);
  });
  loop.spawn("b", [&] { trace.push_back("b"); });
  EXPECT_TRUE(loop.run());
  EXPECT_EQ(trace, (std::vector<std::string>{"b", "a timeout"}));
}

TEST(EventLoop, DeadlinesFireInDeadlineOrder) {
  EventLoop loop;
  std::vector<int> order;
  const int64_t base_ms = loop.clock().now_ms();
  for (const int offset_ms : {45, 15, 30}) {
    loop.spawn("sleeper", [&, offset_ms] {
      EXPECT_FALSE(loop.park_until(base_ms + offset_ms));
      order.push_back(offset_ms);
    });
  }
  EXPECT_TRUE(loop.run());
  EXPECT_EQ(order, (std::vector<int>{15, 30, 45}));
}

TEST(EventLoop, ManyEarlyWakesLeaveDeadlinesCorrect) {
  // Every early wake leaves a cancelled deadline in the timer heap; thousands of them must not disturb the
  // deadlines still live (and exercise the heap's compaction).
  EventLoop loop;
  FiberId sleeper = kNoFiber;
  int woken = 0;
  bool finished = false;
  sleeper = loop.spawn("sleeper", [&] {
    const int64_t far_ms = loop.clock().now_ms() + 3'600'000;
    for (int i = 0; i < 5000; ++i) woken += loop.park_until(far_ms + i) ? 1 : 0;
    const int64_t start_ms = loop.clock().now_ms();
    EXPECT_FALSE(loop.park_until(start_ms + 20));
    EXPECT_GE(loop.clock().now_ms() - start_ms, 20);
    finished = true;
  });
  loop.spawn("waker", [&] {
    for (int i = 0; i < 5000; ++i) {
      loop.wake(sleeper);
      loop.yield();
    }
  });
  EXPECT_TRUE(loop.run());
  EXPECT_EQ(woken, 5000);
  EXPECT_TRUE(finished);
}

// ---------------------------------------------------------------------------------------------------------------
// run(): done, deadline, stop, post

TEST(EventLoop, RunReturnsTrueAsSoonAsDoneHolds) {
  EventLoop loop;
  int steps = 0;
  loop.spawn("counter", [&] {
    for (;;) {
      ++steps;
      loop.yield();
    }
  });
  EXPECT_TRUE(loop.run([&] { return steps >= 10; }));
  EXPECT_EQ(steps, 10);
  EXPECT_EQ(loop.live_fibers(), 1);  // still there, suspended in yield(); the destructor unwinds it
  EXPECT_TRUE(loop.run([] { return true; }));
  EXPECT_EQ(steps, 10);  // done is checked before anything runs
}

TEST(EventLoop, RunReturnsFalseAtItsDeadline) {
  EventLoop loop;
  loop.spawn("parked forever", [&] { loop.park_until(kForever); });
  const int64_t start_ms = loop.clock().now_ms();
  EXPECT_FALSE(loop.run({}, start_ms + 50));
  const int64_t elapsed_ms = loop.clock().now_ms() - start_ms;
  EXPECT_GE(elapsed_ms, 50);
  EXPECT_LT(elapsed_ms, 50 + kPromptlyMs);
  EXPECT_FALSE(loop.run([] { return false; }, start_ms));  // a deadline already past
}

TEST(EventLoop, StopFromAnotherThreadEndsRun) {
  EventLoop loop;
  loop.spawn("parked forever", [&] { loop.park_until(kForever); });
  const int64_t start_ms = loop.clock().now_ms();
  std::thread stopper([&] {
    sleep_ms(30);
    loop.stop();
  });
  EXPECT_FALSE(loop.run());
  stopper.join();
  EXPECT_LT(loop.clock().now_ms() - start_ms, 30 + kPromptlyMs);
}

TEST(EventLoop, StopBeforeRunMakesTheNextRunReturnAtOnce) {
  EventLoop loop;
  loop.spawn("parked forever", [&] { loop.park_until(kForever); });
  loop.stop();
  EXPECT_FALSE(loop.run());
  // Consumed: the following run goes on until its deadline.
  const int64_t start_ms = loop.clock().now_ms();
  EXPECT_FALSE(loop.run({}, start_ms + 20));
  EXPECT_GE(loop.clock().now_ms() - start_ms, 20);
}

TEST(EventLoop, PostFromAnotherThreadWakesAnIdleLoopPromptly) {
  EventLoop loop;
  FiberId sleeper = kNoFiber;
  bool woken = false;
  sleeper = loop.spawn("sleeper", [&] { woken = loop.park_until(kForever); });
  std::atomic<int64_t> posted_ms{0};
  int64_t ran_ms = 0;
  std::thread poster([&] {
    sleep_ms(30);  // the loop is blocked in epoll_wait with no timeout by now
    posted_ms = loop.clock().now_ms();
    loop.post([&] {
      ran_ms = loop.clock().now_ms();
      loop.wake(sleeper);
    });
  });
  EXPECT_TRUE(loop.run());
  poster.join();
  EXPECT_TRUE(woken);
  EXPECT_LT(ran_ms - posted_ms.load(), kPromptlyMs);
}

TEST(EventLoop, PostsRunInOrderOutsideFibers) {
  EventLoop loop;
  std::vector<int> order;
  for (int i = 0; i < 5; ++i) {
    loop.post([&, i] {
      EXPECT_EQ(loop.current(), kNoFiber);
      order.push_back(i);
    });
  }
  EXPECT_TRUE(loop.run([&] { return order.size() == 5; }));
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4}));
}

// ---------------------------------------------------------------------------------------------------------------
// Watches

TEST(EventLoop, WatchedPipeCallbackWakesParkedFiber) {
  EventLoop loop;
  Pipe pipe;
  FiberId reader = kNoFiber;
  bool woken = false;
  int callbacks = 0;
  reader = loop.spawn("reader", [&] { woken = loop.park_until(kForever); });
  const WatchId watch = loop.watch_readable(pipe.read_fd, [&] {
    EXPECT_EQ(loop.current(), kNoFiber);
    pipe.read_byte();  // level-triggered: clear the condition
    ++callbacks;
    loop.wake(reader);
  });
  std::thread writer([&] {
    sleep_ms(20);
    pipe.write_byte();
  });
  EXPECT_TRUE(loop.run());
  writer.join();
  EXPECT_TRUE(woken);
  EXPECT_EQ(callbacks, 1);
  loop.unwatch(watch);
  loop.unwatch(watch);  // twice: ignored
}

TEST(EventLoop, UnwatchInsideItsOwnCallbackStopsFurtherCalls) {
  EventLoop loop;
  Pipe pipe;
  int callbacks = 0;
  WatchId watch = 0;
  watch = loop.watch_readable(pipe.read_fd, [&] {
    ++callbacks;
    loop.unwatch(watch);  // destroys this very callback's registration; the byte stays unread
  });
  pipe.write_byte();
  EXPECT_FALSE(loop.run([] { return false; }, loop.clock().now_ms() + 50));
  EXPECT_EQ(callbacks, 1);  // still readable, but no longer watched
}

TEST(EventLoop, CallbackMayUnwatchAnotherReadyWatch) {
  EventLoop loop;
  Pipe first;
  Pipe second;
  int callbacks = 0;
  WatchId watches[2] = {0, 0};
  // Both fds are ready in the same epoll batch; whichever callback runs first removes both watches.
  auto on_ready = [&] {
    ++callbacks;
    loop.unwatch(watches[0]);
    loop.unwatch(watches[1]);
  };
  watches[0] = loop.watch_readable(first.read_fd, on_ready);
  watches[1] = loop.watch_readable(second.read_fd, on_ready);
  first.write_byte();
  second.write_byte();
  EXPECT_FALSE(loop.run([] { return false; }, loop.clock().now_ms() + 50));
  EXPECT_EQ(callbacks, 1);
}

TEST(EventLoop, WatchCallbackMaySpawn) {
  EventLoop loop;
  Pipe pipe;
  bool ran = false;
  WatchId watch = 0;
  watch = loop.watch_readable(pipe.read_fd, [&] {
    pipe.read_byte();
    loop.unwatch(watch);
    loop.spawn("from callback", [&] { ran = true; });
  });
  pipe.write_byte();
  EXPECT_TRUE(loop.run([&] { return ran; }, loop.clock().now_ms() + 5000));
}

// ---------------------------------------------------------------------------------------------------------------
// run_blocking

TEST(EventLoop, RunBlockingReturnsTheValueFromAnotherThread) {
  EventLoop loop;
  const std::thread::id loop_thread = std::this_thread::get_id();
  std::thread::id job_thread;
  std::string value;
  loop.spawn("caller", [&] {
    value = loop.run_blocking([&] {
      job_thread = std::this_thread::get_id();
      return std::string("forty-two");
    });
  });
  EXPECT_TRUE(loop.run());
  EXPECT_EQ(value, "forty-two");
  EXPECT_NE(job_thread, std::thread::id());
  EXPECT_NE(job_thread, loop_thread);
}

TEST(EventLoop, RunBlockingRethrowsInTheCallingFiber) {
  EventLoop loop;
  std::string caught;
  bool void_call_ran = false;
  loop.spawn("caller", [&] {
    try {
      loop.run_blocking([]() -> int { throw std::runtime_error("broker said no"); });
    } catch (const std::runtime_error& e) {
      caught = e.what();
    }
    loop.run_blocking([&] { void_call_ran = true; });
  });
  EXPECT_TRUE(loop.run());
  EXPECT_EQ(caught, "broker said no");
  EXPECT_TRUE(void_call_ran);
}

TEST(EventLoop, OtherFibersRunWhileOneBlocks) {
  EventLoop loop;
  bool blocked_done = false;
  int progress = 0;
  loop.spawn("blocker", [&] {
    loop.run_blocking([] { sleep_ms(200); });
    blocked_done = true;
  });
  loop.spawn("ticker", [&] {
    while (!blocked_done) {
      ++progress;
      loop.park_until(loop.clock().now_ms() + 5);
    }
  });
  const int64_t start_ms = loop.clock().now_ms();
  EXPECT_TRUE(loop.run());
  EXPECT_GE(loop.clock().now_ms() - start_ms, 200);
  EXPECT_GE(progress, 10);  // ~40 ticks of 5 ms fit in 200 ms; 10 leaves room for a slow machine
}

TEST(EventLoop, MoreBlockingCallsThanThreadsAllComplete) {
  EventLoopOptions options;
  options.blocking_threads = 2;
  EventLoop loop(options);
  constexpr int kCalls = 24;
  std::vector<int> results(kCalls, -1);
  std::atomic<int> in_flight{0};
  std::atomic<int> max_in_flight{0};
  for (int i = 0; i < kCalls; ++i) {
    loop.spawn("caller", [&, i] {
      results[i] = loop.run_blocking([&, i] {
        const int now = ++in_flight;
        int seen = max_in_flight.load();
        while (now > seen && !max_in_flight.compare_exchange_weak(seen, now)) {
        }
        sleep_ms(5);
        --in_flight;
        return i * i;
      });
    });
  }
  EXPECT_TRUE(loop.run());
  for (int i = 0; i < kCalls; ++i) EXPECT_EQ(results[i], i * i) << i;
  EXPECT_LE(max_in_flight.load(), 2);  // never more calls at once than helper threads
}

TEST(EventLoop, RunBlockingKeepsAWakeThatArrivesMeanwhileAsThePermit) {
  EventLoop loop;
  FiberId caller = kNoFiber;
  bool permit_kept = false;
  caller = loop.spawn("caller", [&] {
    loop.run_blocking([] { sleep_ms(50); });
    permit_kept = loop.park_until(loop.clock().now_ms() - 1);  // past deadline: only a permit says true
  });
  loop.spawn("waker", [&] {
    loop.yield();  // the caller is inside run_blocking now
    loop.wake(caller);
  });
  EXPECT_TRUE(loop.run());
  EXPECT_TRUE(permit_kept);
}

// ---------------------------------------------------------------------------------------------------------------
// Failures and teardown

TEST(EventLoop, ExceptionEscapingAFiberIsRethrownFromRun) {
  EventLoop loop;
  bool other_ran_after = false;
  loop.spawn("thrower", [] { throw std::runtime_error("bug in agent"); });
  loop.spawn("other", [&] { other_ran_after = true; });
  try {
    loop.run();
    FAIL() << "run() returned normally";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "bug in agent");
  }
  EXPECT_FALSE(other_ran_after);  // the loop stopped right after the failing step
  EXPECT_EQ(loop.live_fibers(), 1);
  EXPECT_TRUE(loop.run());  // the loop stays usable
  EXPECT_TRUE(other_ran_after);
}

TEST(EventLoop, ExceptionEscapingAPostIsRethrownFromRun) {
  EventLoop loop;
  loop.post([] { throw std::logic_error("bad post"); });
  EXPECT_THROW(loop.run([] { return false; }), std::logic_error);
}

TEST(EventLoop, DestroyingTheLoopUnwindsUnfinishedFibers) {
  std::vector<std::string> trace;
  {
    EventLoop loop;
    loop.spawn("parked", [&] {
      Probe probe{&trace, "parked"};
      loop.park_until(kForever);
      trace.push_back("parked resumed");  // must never happen
    });
    loop.spawn("yielding", [&] {
      Probe probe{&trace, "yielding"};
      for (;;) loop.yield();
    });
    loop.spawn("cleanup", [&] {
      // Its destructor parks and yields while being unwound: both return at once.
      struct ParksInDestructor {
        EventLoop* loop;
        std::vector<std::string>* trace;
        ~ParksInDestructor() {
          trace->push_back(loop->park_until(kForever) ? "cleanup woken" : "cleanup park returned");
          loop->yield();
          trace->push_back(loop->spawn("late", [] {}) == kNoFiber ? "cleanup spawn refused" : "spawned");
        }
      } guard{&loop, &trace};
      loop.park_until(kForever);
    });
    loop.spawn("blocking", [&] {
      Probe probe{&trace, "blocking"};
      loop.run_blocking([] { sleep_ms(30); });
      loop.park_until(kForever);
    });
    EXPECT_FALSE(loop.run([] { return false; }, loop.clock().now_ms() + 10));
    loop.spawn("never started", [&, probe = std::make_shared<Probe>(&trace, "never started")] {
      trace.push_back("never started ran");
    });
    EXPECT_EQ(loop.live_fibers(), 5);
  }
  // Newest first; the blocking call (still running on its helper) completed before its fiber was unwound.
  EXPECT_EQ(trace, (std::vector<std::string>{"never started destroyed", "blocking destroyed",
                                             "cleanup park returned", "cleanup spawn refused",
                                             "yielding destroyed", "parked destroyed"}));
}

TEST(EventLoop, TeardownSurvivesBodiesThatSwallowTheUnwinding) {
  // A catch (...) that does not rethrow catches Boost.Context's forced_unwind too; the loop must still finish
  // unwinding such a fiber, whether it parks again or simply returns.
  std::vector<std::string> trace;
  {
    EventLoop loop;
    loop.spawn("parks again", [&] {
      try {
        loop.park_until(kForever);
      } catch (...) {
        trace.push_back("first swallowed");
      }
      loop.park_until(kForever);
      trace.push_back("first went on");  // must never happen
    });
    loop.spawn("returns", [&] {
      try {
        loop.park_until(kForever);
      } catch (...) {
        trace.push_back("second swallowed");
      }
    });
    EXPECT_FALSE(loop.run([] { return false; }, loop.clock().now_ms() + 5));
  }
  EXPECT_EQ(trace, (std::vector<std::string>{"second swallowed", "first swallowed"}));
}

}  // namespace
}  // namespace mephisto
