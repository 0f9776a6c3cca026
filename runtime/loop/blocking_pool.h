// BlockingPool: the helper threads behind EventLoop::run_blocking() (internal to runtime/loop). A fixed
// number of threads, started on first use, take calls from one bounded FIFO queue, run them, and report each
// completion through a callback on the helper thread (the loop's post()). A production binding file: it owns
// threads.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "runtime/seam/clock.h"

namespace mephisto::loop_internal {

// One run_blocking() call. Lives in the calling fiber's stack frame, which stays alive until the call
// completed: the fiber stays parked until `done`, and the loop's destructor joins the helper threads before
// it unwinds any fiber.
struct BlockingCall {
  std::function<void()> job;
  FiberId fiber = kNoFiber;
  // Written by the helper thread before it reports completion; read by the fiber after `done` (the report
  // goes through the loop's post queue, whose mutex orders the two).
  std::exception_ptr error;
  // Loop thread only: set by the posted completion, so the fiber can tell its completion from other wakes.
  bool done = false;
};

class BlockingPool {
 public:
  // Called on a helper thread after call->job returned (or threw). Must be thread-safe.
  using OnComplete = std::function<void(BlockingCall* call)>;

  // threads >= 1 and queue_max >= 1 (checked).
  BlockingPool(int32_t threads, int32_t queue_max, OnComplete on_complete);
  // Helper threads finish the call they are running (and report it), then exit; queued calls are dropped
  // without being run or reported.
  ~BlockingPool();
  BlockingPool(const BlockingPool&) = delete;
  BlockingPool& operator=(const BlockingPool&) = delete;

  // Queues `call` (not owned) for a helper thread, starting the threads on first use. More than queue_max
  // calls waiting is a bug in the caller (a flood, not load) and stops the process with context. One
  // submitting thread at a time (the loop thread).
  void submit(BlockingCall* call);

 private:
  void helper_main();

  const int32_t thread_count_;
  const size_t queue_max_;
  const OnComplete on_complete_;

  std::mutex mutex_;
  std::condition_variable work_ready_;
  std::deque<BlockingCall*> queue_;   // guarded by mutex_
  bool exiting_ = false;              // guarded by mutex_
  std::vector<std::thread> threads_;  // submitting thread and destructor only
};

}  // namespace mephisto::loop_internal
