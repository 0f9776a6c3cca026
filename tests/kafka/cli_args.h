// Command-line pieces shared by the Kafka test programs (eos_crash_test.cpp, table_count_crash_test.cpp,
// eos_worker.cpp). Header-only, so that the workers need not link the drivers' helpers.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <system_error>

namespace mephisto::kafka_test {

// Reports a bad command line and exits; never returns.
using UsageFunction = void (*)(const std::string& problem);

// `text` as an integer >= min; anything else goes to `usage`, naming the option `name`.
inline int64_t ParseInt(const std::string& name, const std::string& text, int64_t min, UsageFunction usage) {
  char* end = nullptr;
  const long long value = std::strtoll(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || value < min) {
    usage(name + " needs an integer >= " + std::to_string(min) + ", got '" + text + "'");
    std::abort();  // `usage` does not return
  }
  return value;
}

// Calls on_option(name, value) for each "--name value" pair of argv[1..]; `usage` where a name lacks its
// value.
inline void ForEachOption(
    int argc, char** argv, UsageFunction usage,
    const std::function<void(const std::string& name, const std::string& value)>& on_option) {
  for (int i = 1; i < argc; i += 2) {
    const std::string name = argv[i];
    if (i + 1 >= argc) {
      usage(name + " needs a value");
      std::abort();  // `usage` does not return
    }
    on_option(name, argv[i + 1]);
  }
}

// The options of every SIGKILL driver: --worker PATH and --seed N. False if `name` is neither.
inline bool ParseDriverOption(const std::string& name, const std::string& value, std::string& worker_path,
                              std::optional<uint64_t>& seed) {
  if (name == "--worker") {
    worker_path = value;
  } else if (name == "--seed") {
    seed = static_cast<uint64_t>(std::strtoull(value.c_str(), nullptr, 10));
  } else {
    return false;
  }
  return true;
}

// The program `name` next to this executable, or plain `name` if /proc/self/exe cannot be read.
inline std::string SiblingProgram(const std::string& name) {
  std::error_code error;
  const std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", error);
  return error ? name : (self.parent_path() / name).string();
}

}  // namespace mephisto::kafka_test
