#include "runtime/loop/blocking_pool.h"

#include <pthread.h>

#include <string>
#include <utility>

#include "runtime/loop/loop_internal.h"

namespace mephisto::loop_internal {

BlockingPool::BlockingPool(int32_t threads, int32_t queue_max, OnComplete on_complete)
    : thread_count_(threads),
      queue_max_(static_cast<size_t>(queue_max)),
      on_complete_(std::move(on_complete)) {
  MEPHISTO_LOOP_CHECK(
      threads >= 1, "EventLoopOptions::blocking_threads must be at least 1, got " + std::to_string(threads));
  MEPHISTO_LOOP_CHECK(queue_max >= 1, "EventLoopOptions::blocking_queue_max must be at least 1, got " +
                                          std::to_string(queue_max));
  MEPHISTO_LOOP_CHECK(on_complete_ != nullptr, std::string("BlockingPool needs a completion callback"));
}

BlockingPool::~BlockingPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    exiting_ = true;
  }
  work_ready_.notify_all();
  for (auto& thread : threads_) thread.join();
}

void BlockingPool::submit(BlockingCall* call) {
  if (threads_.empty()) {
    // Lazily: most processes never make a blocking call, and idle threads would still cost stacks.
    threads_.reserve(static_cast<size_t>(thread_count_));
    for (int32_t i = 0; i < thread_count_; ++i) threads_.emplace_back([this] { helper_main(); });
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    MEPHISTO_LOOP_CHECK(queue_.size() < queue_max_,
                        "run_blocking(): " + std::to_string(queue_.size()) +
                            " calls already wait for one of " + std::to_string(thread_count_) +
                            " helper threads (EventLoopOptions::blocking_queue_max = " +
                            std::to_string(queue_max_) + "); the caller floods the pool");
    queue_.push_back(call);
  }
  work_ready_.notify_one();
}

void BlockingPool::helper_main() {
  // A name shows up in top, gdb and perf, which is where one looks for a stuck synchronous call.
  pthread_setname_np(pthread_self(), "mephisto-block");
  for (;;) {
    BlockingCall* call = nullptr;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      work_ready_.wait(lock, [this] { return exiting_ || !queue_.empty(); });
      if (exiting_) return;
      call = queue_.front();
      queue_.pop_front();
    }
    try {
      call->job();
    } catch (...) {
      // run_blocking()'s wrapper catches everything itself; this keeps a raw job from killing the process.
      call->error = std::current_exception();
    }
    on_complete_(call);
  }
}

}  // namespace mephisto::loop_internal
