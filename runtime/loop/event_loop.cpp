// EventLoop: RealClock, and LoopCore, part 2: the run loop (timers, fibers, posts, epoll), posts and stop,
// watches, run_blocking; then EventLoop forwarding to the core. Read loop_core.h first.
#include "runtime/loop/event_loop.h"

#include <sys/epoll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>

#include "runtime/loop/loop_core.h"

namespace mephisto {

int64_t RealClock::now_ms() const {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

namespace loop_internal {

// ---------------------------------------------------------------------------------------------------------------
// The run loop

bool LoopCore::run(const std::function<bool()>& done, int64_t deadline_ms) {
  MEPHISTO_LOOP_CHECK(
      !running_.load() && current_ == nullptr,
      std::string("run() is not reentrant (called from a fiber, a callback, or a second thread)"));
  struct Guard {
    LoopCore* core;
    ~Guard() {
      core->done_ = nullptr;
      core->running_.store(false);
    }
  } guard{this};
  loop_thread_.store(std::this_thread::get_id());
  running_.store(true);
  done_ = &done;
  done_seen_ = false;
  for (;;) {
    if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
    if (stop_requested_.exchange(false)) return false;
    if (done_seen_ || (done ? done() : fibers_.empty())) return true;
    const int64_t now_ms = clock_.now_ms();
    if (now_ms >= deadline_ms) return false;
    fire_timers(now_ms);
    if (run_fibers()) continue;
    if (drain_posts()) continue;
    (void)poll(deadline_ms);  // whatever it decided, the checks above see it
  }
}

// After every step in which something ran. Remembers done() so run() does not ask twice.
bool LoopCore::step_ends_run() {
  if (error_ || stop_requested_.load()) return true;
  done_seen_ = *done_ ? (*done_)() : fibers_.empty();
  return done_seen_;
}

void LoopCore::run_callback(const std::function<void()>& fn) {
  try {
    fn();
  } catch (...) {
    // Like an exception escaping a fiber: a bug, which run() rethrows after this step.
    if (!error_) error_ = std::current_exception();
  }
}

bool LoopCore::run_fibers() {
  // Only the fibers runnable now: one that yields goes to the back and runs in the next round, after timers,
  // posts and file descriptors have been looked at, so a busy fiber cannot starve them.
  for (size_t turns = run_queue_.size(); turns > 0 && !run_queue_.empty(); --turns) {
    Fiber* fiber = run_queue_.front();
    run_queue_.pop_front();
    resume(fiber);
    if (step_ends_run()) return true;
  }
  return false;
}

bool LoopCore::drain_posts() {
  // Only the posts queued now (a post that posts again runs next round), and one at a time, so an exception
  // stops the loop without losing the posts behind it.
  size_t budget = 0;
  {
    std::lock_guard<std::mutex> lock(posts_mutex_);
    budget = posts_.size();
  }
  for (; budget > 0; --budget) {
    std::function<void()> fn;
    {
      std::lock_guard<std::mutex> lock(posts_mutex_);
      if (posts_.empty()) return false;
      fn = std::move(posts_.front());
      posts_.pop_front();
    }
    run_callback(fn);
    if (step_ends_run()) return true;
  }
  return false;
}

bool LoopCore::posts_pending() {
  std::lock_guard<std::mutex> lock(posts_mutex_);
  return !posts_.empty();
}

bool LoopCore::poll(int64_t deadline_ms) {
  int timeout_ms = 0;  // something is runnable: only look at the file descriptors
  if (run_queue_.empty() && !posts_pending()) {
    // Sleep until the earliest deadline (a fiber's or run()'s). now_ms() truncates to whole milliseconds, so
    // target - now is never less than the true remaining time: a deadline never fires early.
    while (!timers_.empty() && !timer_is_live(timers_.front())) {
      --stale_timers_;
      pop_timer();
    }
    int64_t target_ms = deadline_ms;
    if (!timers_.empty()) target_ms = std::min(target_ms, timers_.front().deadline_ms);
    if (target_ms == kNever) {
      timeout_ms = -1;  // only a post(), stop() or watched fd can make progress now
    } else {
      int64_t remaining_ms = 0;
      if (__builtin_sub_overflow(target_ms, clock_.now_ms(), &remaining_ms)) {
        remaining_ms = target_ms < 0 ? 0 : kMaxWaitMs;  // far past or far future
      }
      timeout_ms = static_cast<int>(std::clamp<int64_t>(remaining_ms, 0, kMaxWaitMs));
    }
  }
  epoll_event events[kMaxEventsPerPoll];
  const int count = ::epoll_wait(epoll_fd_, events, kMaxEventsPerPoll, timeout_ms);
  if (count < 0) {
    MEPHISTO_LOOP_CHECK(errno == EINTR, "epoll_wait failed: " + errno_text(errno));
    return false;  // a signal: just go round again
  }
  for (int i = 0; i < count; ++i) {
    const uint64_t token = events[i].data.u64;
    if (token == kWakeupToken) {
      // Reset the counter; the posts themselves are drained in the next round.
      uint64_t value = 0;
      [[maybe_unused]] const ssize_t bytes = ::read(wakeup_fd_, &value, sizeof value);
      continue;
    }
    const auto it = watches_.find(token);
    if (it == watches_.end()) continue;  // unwatched by an earlier callback of this batch
    // Holds the watch while its callback runs, which may unwatch it (and so erase it from watches_).
    const std::shared_ptr<Watch> watch = it->second;
    run_callback(watch->on_ready);
    // Leaving with events unhandled is safe: they are level-triggered, so the next epoll_wait reports them
    // again.
    if (step_ends_run()) return true;
  }
  return false;
}

void LoopCore::signal_wakeup() const {
  // Async-signal-safe (stop() may run in a signal handler): one write, errno preserved. It fails only when
  // the counter is near overflow, and then the eventfd is readable anyway.
  const int saved_errno = errno;
  const uint64_t one = 1;
  [[maybe_unused]] const ssize_t bytes = ::write(wakeup_fd_, &one, sizeof one);
  errno = saved_errno;
}

void LoopCore::stop() {
  stop_requested_.store(true);
  signal_wakeup();
}

void LoopCore::post(std::function<void()> fn) {
  MEPHISTO_LOOP_CHECK(fn != nullptr, std::string("post() of an empty function"));
  {
    std::lock_guard<std::mutex> lock(posts_mutex_);
    MEPHISTO_LOOP_CHECK(posts_.size() < kMaxPendingPosts,
                        std::to_string(posts_.size()) +
                            " posts wait for the loop thread: it is stuck (or not running), or a producer "
                            "runs away");
    posts_.push_back(std::move(fn));
  }
  signal_wakeup();
}

WatchId LoopCore::watch_readable(int fd, std::function<void()> on_ready) {
  check_loop_thread("watch_readable");
  MEPHISTO_LOOP_CHECK(fd >= 0, "watch_readable() of invalid fd " + std::to_string(fd));
  MEPHISTO_LOOP_CHECK(on_ready != nullptr,
                      "watch_readable(fd " + std::to_string(fd) + ") with an empty callback");
  const WatchId id = next_watch_id_++;
  epoll_event event{};
  event.events = EPOLLIN;  // level-triggered: a callback that reads only part is called again
  event.data.u64 = id;
  const int result = ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &event);
  const int error = errno;  // before the message's allocations can touch it
  MEPHISTO_LOOP_CHECK(result == 0,
                      "watch_readable(fd " + std::to_string(fd) +
                          "): epoll_ctl(ADD) failed: " + errno_text(error) +
                          (error == EEXIST ? "; the fd is already watched (one watch per fd)" : ""));
  watches_.emplace(id, std::make_shared<Watch>(Watch{fd, std::move(on_ready)}));
  return id;
}

void LoopCore::unwatch(WatchId id) {
  check_loop_thread("unwatch");
  const auto it = watches_.find(id);
  if (it == watches_.end()) return;
  const std::shared_ptr<Watch> watch = std::move(it->second);
  watches_.erase(it);
  if (::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, watch->fd, nullptr) != 0) {
    const int error = errno;
    // EBADF / ENOENT: the fd was closed before unwatch() (against the contract), and closing already removed
    // it from epoll. Nothing is left to undo, so that is not worth stopping the process for.
    MEPHISTO_LOOP_CHECK(
        error == EBADF || error == ENOENT,
        "unwatch(fd " + std::to_string(watch->fd) + "): epoll_ctl(DEL) failed: " + errno_text(error));
  }
}  // `watch` (with its callback) dies here, unless poll() holds it because its callback is the caller

void LoopCore::run_blocking(std::function<void()> job) {
  Fiber* fiber = calling_fiber("run_blocking");
  if (fiber->unwinding) {
    // ~EventLoop is unwinding this fiber and a destructor makes the call; the helper threads are gone. Run it
    // here: blocking the thread costs nothing now, and skipping the call could leak what it releases.
    job();
    return;
  }
  BlockingCall call;
  call.job = std::move(job);
  call.fiber = fiber->id;
  blocking_->submit(&call);
  // Only our completion ends the wait. Any other wake is kept and handed back as the permit it would have
  // been, so a wake meant for the caller's next park is not swallowed here.
  bool other_wake = false;
  while (!call.done) {
    if (park_until(kNever) && !call.done) other_wake = true;
  }
  if (other_wake) fiber->permit = true;
  if (call.error) std::rethrow_exception(call.error);
}

}  // namespace loop_internal

// ---------------------------------------------------------------------------------------------------------------
// EventLoop: the public face.

struct EventLoop::Impl {
  loop_internal::LoopCore core;
  explicit Impl(const EventLoopOptions& options) : core(options) {}
};

EventLoop::EventLoop(EventLoopOptions options) : impl_(std::make_unique<Impl>(options)) {}
EventLoop::~EventLoop() = default;

FiberId EventLoop::spawn(std::string name, std::function<void()> body) {
  return impl_->core.spawn(std::move(name), std::move(body));
}
FiberId EventLoop::current() const {
  return impl_->core.current();
}
bool EventLoop::park_until(int64_t deadline_ms) {
  return impl_->core.park_until(deadline_ms);
}
void EventLoop::wake(FiberId fiber) {
  impl_->core.wake(fiber);
}
void EventLoop::yield() {
  impl_->core.yield();
}
const Clock& EventLoop::clock() const {
  return impl_->core.clock();
}
bool EventLoop::run(const std::function<bool()>& done, int64_t deadline_ms) {
  return impl_->core.run(done, deadline_ms);
}
void EventLoop::stop() {
  impl_->core.stop();
}
void EventLoop::post(std::function<void()> fn) {
  impl_->core.post(std::move(fn));
}
WatchId EventLoop::watch_readable(int fd, std::function<void()> on_ready) {
  return impl_->core.watch_readable(fd, std::move(on_ready));
}
void EventLoop::unwatch(WatchId watch) {
  impl_->core.unwatch(watch);
}
void EventLoop::run_blocking_erased(std::function<void()> job) {
  impl_->core.run_blocking(std::move(job));
}
int64_t EventLoop::live_fibers() const {
  return impl_->core.live_fibers();
}

}  // namespace mephisto
