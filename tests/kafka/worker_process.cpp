#include "tests/kafka/worker_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <iostream>
#include <stdexcept>
#include <utility>

namespace mephisto::kafka_test {
namespace {

[[noreturn]] void Fail(const std::string& what) {
  throw std::runtime_error(what);
}

}  // namespace

WorkerProcess::WorkerProcess(std::string name, const std::vector<std::string>& argv)
    : name_(std::move(name)) {
  std::vector<char*> args;
  for (const std::string& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) Fail(std::string("pipe2: ") + std::strerror(errno));
  const pid_t parent = getpid();
  pid_ = fork();
  if (pid_ < 0) Fail(std::string("fork: ") + std::strerror(errno));
  if (pid_ == 0) {
    // Only async-signal-safe calls between fork and exec: the driver has librdkafka threads.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    if (dup2(fds[1], STDOUT_FILENO) < 0) _exit(127);  // the duplicate does not inherit O_CLOEXEC
    execv(args[0], args.data());
    _exit(127);
  }
  close(fds[1]);
  out_fd_ = fds[0];
  fcntl(out_fd_, F_SETFL, fcntl(out_fd_, F_GETFL) | O_NONBLOCK);
  started_ = SteadyClock::now();
  std::cerr << "driver: started " << name_ << " (pid " << pid_ << ")\n";
}

WorkerProcess::~WorkerProcess() {
  Kill(SIGKILL);
  if (out_fd_ >= 0) close(out_fd_);
}

std::optional<std::string> WorkerProcess::NextLine(SteadyClock::time_point deadline) {
  for (;;) {
    if (!pending_.empty()) {
      std::string line = std::move(pending_.front());
      pending_.pop_front();
      return line;
    }
    if (out_fd_ < 0 || SteadyClock::now() >= deadline) return std::nullopt;
    const auto left_ms = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now());
    pollfd ready{out_fd_, POLLIN, 0};
    const int polled = poll(&ready, 1, static_cast<int>(std::clamp<int64_t>(left_ms.count(), 0, 100)));
    if (polled < 0 && errno != EINTR) Fail(std::string("poll: ") + std::strerror(errno));
    if (polled > 0) ReadAvailable();
  }
}

void WorkerProcess::PumpUntil(SteadyClock::time_point deadline) {
  while (NextLine(deadline)) {
  }
}

void WorkerProcess::Signal(int signal_number) {
  if (status_) return;
  if (kill(pid_, signal_number) != 0 && errno != ESRCH) Fail(std::string("kill: ") + std::strerror(errno));
}

void WorkerProcess::Kill(int signal_number) {
  if (!status_) {
    kill(pid_, signal_number);
    Reap(true);
  }
  // A killed process's pipe is closed by the kernel, so the rest reads at once.
  const auto deadline = After(1'000);
  while (out_fd_ >= 0 && SteadyClock::now() < deadline) {
    pollfd ready{out_fd_, POLLIN, 0};
    if (poll(&ready, 1, 100) > 0) ReadAvailable();
  }
}

void WorkerProcess::WaitStopped() {
  int status = 0;
  pid_t reaped = 0;
  do {
    reaped = waitpid(pid_, &status, WUNTRACED);
  } while (reaped < 0 && errno == EINTR);
  if (reaped != pid_) Fail(name_ + ": waitpid(WUNTRACED): " + std::strerror(errno));
  if (!WIFSTOPPED(status)) {
    status_ = status;
    Fail(name_ + ": " + DescribeStatus(status) + " instead of stopping");
  }
}

std::optional<int> WorkerProcess::WaitExit(SteadyClock::time_point deadline) {
  for (;;) {
    if (auto status = Reap(false)) {
      PumpUntil(After(1'000));
      return status;
    }
    if (SteadyClock::now() >= deadline) return std::nullopt;
    PumpUntil(std::min(deadline, After(50)));
  }
}

std::optional<int> WorkerProcess::Reap(bool block) {
  if (status_) return status_;
  int status = 0;
  pid_t reaped = 0;
  do {
    reaped = waitpid(pid_, &status, block ? 0 : WNOHANG);
  } while (reaped < 0 && errno == EINTR);
  if (reaped == pid_) {
    status_ = status;
    std::cerr << "driver: " << name_ << " " << DescribeStatus(status) << " after " << MillisSince(started_)
              << " ms\n";
  } else if (reaped < 0) {
    Fail(std::string("waitpid: ") + std::strerror(errno));
  }
  return status_;
}

std::string WorkerProcess::DescribeStatus(int status) {
  if (WIFEXITED(status)) return "exited with code " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return std::string("killed by ") + strsignal(WTERMSIG(status));
  return "status " + std::to_string(status);
}

void WorkerProcess::ReadAvailable() {
  char buffer[8192];
  for (;;) {
    const ssize_t n = read(out_fd_, buffer, sizeof buffer);
    if (n > 0) {
      partial_.append(buffer, static_cast<size_t>(n));
      size_t newline = 0;
      while ((newline = partial_.find('\n')) != std::string::npos) {
        AddLine(partial_.substr(0, newline));
        partial_.erase(0, newline + 1);
      }
      continue;
    }
    if (n == 0) {  // end of output
      if (!partial_.empty()) AddLine(std::exchange(partial_, {}));
      close(out_fd_);
      out_fd_ = -1;
      return;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return;
    Fail(std::string("read: ") + std::strerror(errno));
  }
}

void WorkerProcess::AddLine(std::string line) {
  std::cerr << "[" << name_ << " +" << MillisSince(started_) << "ms] " << line << '\n';
  lines_.push_back(line);
  pending_.push_back(std::move(line));
}

}  // namespace mephisto::kafka_test
