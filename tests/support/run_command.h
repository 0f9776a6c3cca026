// Runs a command line through the shell and captures what it prints (stdout and stderr) and its exit code: the
// CLI tests run the real `mephisto` binary this way.
#pragma once

#include <sys/wait.h>

#include <cstdio>
#include <string>

namespace mephisto::test_support {

struct Ran {
  int exit_code = -1;  // -1: it did not exit normally (or could not start)
  std::string output;  // stdout and stderr
};

inline Ran run_command(const std::string& command_line) {
  const std::string command = command_line + " 2>&1";
  Ran ran;
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return ran;
  char buffer[4096];
  size_t n = 0;
  while ((n = fread(buffer, 1, sizeof buffer, pipe)) > 0) ran.output.append(buffer, n);
  const int status = pclose(pipe);
  ran.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return ran;
}

}  // namespace mephisto::test_support
