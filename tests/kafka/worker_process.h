// The process control of eos_crash_test.cpp: a kafka_eos_worker child process (fork/exec), its standard
// output read line by line, and signalling, killing and reaping it.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <vector>

#include <sys/types.h>

namespace mephisto::kafka_test {

using SteadyClock = std::chrono::steady_clock;

inline SteadyClock::time_point After(int64_t ms) {
  return SteadyClock::now() + std::chrono::milliseconds(ms);
}

inline int64_t MillisSince(SteadyClock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now() - start).count();
}

// A kafka_eos_worker child process and its stdout, read line by line. The destructor kills and reaps it, so
// no worker outlives a failed test; PR_SET_PDEATHSIG covers the driver itself being killed (a CTest timeout).
// Every line is echoed to stderr, prefixed with the worker's name. Failures of the system calls throw
// std::runtime_error.
class WorkerProcess {
 public:
  WorkerProcess(std::string name, const std::vector<std::string>& argv);
  ~WorkerProcess();

  WorkerProcess(const WorkerProcess&) = delete;
  WorkerProcess& operator=(const WorkerProcess&) = delete;

  [[nodiscard]] const std::string& name() const { return name_; }
  [[nodiscard]] const std::vector<std::string>& lines() const { return lines_; }
  [[nodiscard]] SteadyClock::time_point started() const { return started_; }
  [[nodiscard]] bool running() { return !Reap(false).has_value(); }

  // The next line of output, or nullopt at the deadline or once the output has ended.
  std::optional<std::string> NextLine(SteadyClock::time_point deadline);

  // Reads (and echoes) output until the deadline; keeps the pipe from filling up while the driver waits.
  void PumpUntil(SteadyClock::time_point deadline);

  void Signal(int signal_number);

  // SIGKILLs the process (if still running), reaps it, and reads the rest of its output.
  void Kill(int signal_number);

  // After SIGSTOP: waits until the process has stopped (bounded in practice: SIGSTOP cannot be caught).
  void WaitStopped();

  // Waits for the process to exit on its own (reading its output meanwhile); its wait status, or nullopt.
  std::optional<int> WaitExit(SteadyClock::time_point deadline);

  // The wait status once the process has been reaped.
  std::optional<int> Reap(bool block);

  static std::string DescribeStatus(int status);

 private:
  void ReadAvailable();
  void AddLine(std::string line);

  std::string name_;
  pid_t pid_ = -1;
  int out_fd_ = -1;
  SteadyClock::time_point started_;
  std::string partial_;
  std::deque<std::string> pending_;
  std::vector<std::string> lines_;
  std::optional<int> status_;
};

}  // namespace mephisto::kafka_test
