// AppLog: where a worker's log lines go. Production writes them to stderr through spdlog; the simulator's
// harness installs a sink that stamps virtual time and keeps lines per worker, so a run's log is
// deterministic too.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include <fmt/format.h>

namespace mephisto {

enum class LogLevel { kDebug, kInfo, kWarn, kError };

[[nodiscard]] const char* log_level_name(LogLevel level);

// Receives one line, without a trailing newline.
using LogSink = std::function<void(LogLevel level, const std::string& line)>;

class AppLog {
 public:
  // The default sink: spdlog's default logger (stderr), tagged with `prefix`.
  explicit AppLog(std::string prefix);
  void set_sink(LogSink sink) { sink_ = std::move(sink); }
  void set_min_level(LogLevel level) { min_level_ = level; }

  template <typename... Args>
  void write(LogLevel level, fmt::format_string<Args...> format, Args&&... args) {
    if (level < min_level_) return;
    sink_(level, fmt::format(format, std::forward<Args>(args)...));
  }
  template <typename... Args>
  void info(fmt::format_string<Args...> format, Args&&... args) {
    write(LogLevel::kInfo, format, std::forward<Args>(args)...);
  }
  template <typename... Args>
  void warn(fmt::format_string<Args...> format, Args&&... args) {
    write(LogLevel::kWarn, format, std::forward<Args>(args)...);
  }
  template <typename... Args>
  void error(fmt::format_string<Args...> format, Args&&... args) {
    write(LogLevel::kError, format, std::forward<Args>(args)...);
  }

 private:
  LogSink sink_;
  LogLevel min_level_ = LogLevel::kInfo;
};

}  // namespace mephisto
