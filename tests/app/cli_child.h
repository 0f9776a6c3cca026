// A command-line child process for the CLI's tests (cli_test.cpp, cli_kafka_test.cpp): fork/exec with its
// stdout and stderr captured, the MEPHISTO_ variables of the test's environment removed (so a developer's
// shell cannot change the outcome) and the test's own added. The destructor kills and reaps a child still
// running.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

extern char** environ;  // NOLINT: POSIX declares it nowhere in a header

namespace mephisto::cli_test {

using SteadyClock = std::chrono::steady_clock;

class Child {
 public:
  Child(const std::string& binary, const std::vector<std::string>& args,
        const std::map<std::string, std::string>& environment = {}) {
    int out_pipe[2];
    int err_pipe[2];
    if (::pipe2(out_pipe, O_CLOEXEC) != 0 || ::pipe2(err_pipe, O_CLOEXEC) != 0) {
      throw std::runtime_error(std::string("pipe2: ") + std::strerror(errno));
    }
    std::vector<std::string> env_strings;
    for (char** entry = environ; *entry != nullptr; ++entry) {
      if (std::strncmp(*entry, "MEPHISTO_", 9) != 0) env_strings.emplace_back(*entry);
    }
    for (const auto& [name, value] : environment) env_strings.push_back(name + "=" + value);
    std::vector<char*> envp;
    for (auto& entry : env_strings) envp.push_back(entry.data());
    envp.push_back(nullptr);
    std::vector<std::string> argv_strings = {binary};
    argv_strings.insert(argv_strings.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& arg : argv_strings) argv.push_back(arg.data());
    argv.push_back(nullptr);

    started_ = SteadyClock::now();
    pid_ = ::fork();
    if (pid_ < 0) throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
    if (pid_ == 0) {
      ::dup2(out_pipe[1], 1);
      ::dup2(err_pipe[1], 2);
      ::execve(binary.c_str(), argv.data(), envp.data());
      ::_exit(127);
    }
    ::close(out_pipe[1]);
    ::close(err_pipe[1]);
    fds_[0] = out_pipe[0];
    fds_[1] = err_pipe[0];
  }
  ~Child() {
    if (!reaped_) {
      ::kill(pid_, SIGKILL);
      wait_exit(30000);
    }
    for (int fd : fds_) {
      if (fd >= 0) ::close(fd);
    }
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  [[nodiscard]] pid_t pid() const { return pid_; }
  [[nodiscard]] const std::string& out() const { return out_; }
  [[nodiscard]] const std::string& err() const { return err_; }
  [[nodiscard]] int64_t elapsed_ms() const {
    return std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now() - started_).count();
  }
  void signal(int number) const { ::kill(pid_, number); }

  // Reads output until stderr contains `text` (true) or timeout_ms passed or the output ended (false).
  bool wait_for_stderr(const std::string& text, int64_t timeout_ms) {
    const int64_t deadline = elapsed_ms() + timeout_ms;
    while (err_.find(text) == std::string::npos) {
      if (elapsed_ms() >= deadline || !pump(50)) return err_.find(text) != std::string::npos;
    }
    return true;
  }

  // Waits up to timeout_ms for the child to exit (reading its output meanwhile); SIGKILLs it then. Returns
  // its exit code, or -1 when it was killed (timed_out() tells whether by this timeout).
  int wait_exit(int64_t timeout_ms) {
    const int64_t deadline = elapsed_ms() + timeout_ms;
    while (pump(50)) {
      if (elapsed_ms() >= deadline) {
        timed_out_ = true;
        ::kill(pid_, SIGKILL);
        break;
      }
    }
    int status = 0;
    ::waitpid(pid_, &status, 0);
    reaped_ = true;
    while (pump(0)) {
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  [[nodiscard]] bool timed_out() const { return timed_out_; }

  [[nodiscard]] std::string describe() const { return "stdout:\n" + out_ + "\nstderr:\n" + err_; }

 private:
  // Reads what is available within wait_ms; false once both pipes reached their end.
  bool pump(int wait_ms) {
    pollfd polled[2] = {{fds_[0], POLLIN, 0}, {fds_[1], POLLIN, 0}};
    if (fds_[0] < 0 && fds_[1] < 0) return false;
    ::poll(polled, 2, wait_ms);
    std::string* sinks[2] = {&out_, &err_};
    for (int i = 0; i < 2; ++i) {
      if (fds_[i] < 0 || (polled[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
      char buffer[4096];
      const ssize_t n = ::read(fds_[i], buffer, sizeof(buffer));
      if (n > 0) {
        sinks[i]->append(buffer, static_cast<size_t>(n));
      } else {
        ::close(fds_[i]);
        fds_[i] = -1;
      }
    }
    return fds_[0] >= 0 || fds_[1] >= 0;
  }

  pid_t pid_ = -1;
  int fds_[2] = {-1, -1};
  std::string out_;
  std::string err_;
  SteadyClock::time_point started_;
  bool reaped_ = false;
  bool timed_out_ = false;
};

// A finished run: exit code and output.
struct Outcome {
  int exit_code = -1;  // -1: killed (timeout or signal)
  bool timed_out = false;
  std::string out;
  std::string err;
  int64_t elapsed_ms = 0;
};

inline Outcome run_to_end(const std::string& binary, const std::vector<std::string>& args, int64_t timeout_ms,
                          const std::map<std::string, std::string>& environment = {}) {
  Child child(binary, args, environment);
  Outcome outcome;
  outcome.exit_code = child.wait_exit(timeout_ms);
  outcome.timed_out = child.timed_out();
  outcome.out = child.out();
  outcome.err = child.err();
  outcome.elapsed_ms = child.elapsed_ms();
  return outcome;
}

inline std::string describe(const Outcome& outcome) {
  return "stdout:\n" + outcome.out + "\nstderr:\n" + outcome.err;
}

}  // namespace mephisto::cli_test
