#include "runtime/app/log.h"

#include <spdlog/spdlog.h>

namespace mephisto {

const char* log_level_name(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarn:
      return "warn";
    case LogLevel::kError:
      return "error";
  }
  return "unknown";
}

AppLog::AppLog(std::string prefix)
    : sink_([prefix = std::move(prefix)](LogLevel level, const std::string& line) {
        // The default logger is looked up per line (not captured) so that a logger installed after the App
        // was built (the CLI sets the level and pattern after parsing its options) is the one used.
        switch (level) {
          case LogLevel::kDebug:
            spdlog::debug("[{}] {}", prefix, line);
            break;
          case LogLevel::kInfo:
            spdlog::info("[{}] {}", prefix, line);
            break;
          case LogLevel::kWarn:
            spdlog::warn("[{}] {}", prefix, line);
            break;
          case LogLevel::kError:
            spdlog::error("[{}] {}", prefix, line);
            break;
        }
      }) {}

}  // namespace mephisto
