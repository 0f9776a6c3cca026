// Settings for a command: the definition's defaults, then the environment, then --set, then --broker.
#include <cstdio>

#include <fmt/format.h>

#include "runtime/cli/commands.h"

namespace mephisto::cli {

void print_error(const std::string& message) {
  std::fflush(stdout);  // keep the error after anything already printed when both go to one terminal
  fmt::print(stderr, "error: {}\n", message);
}

Result<const AppDefinition*> find_app(const std::vector<AppDefinition>& apps, const std::string& name) {
  std::vector<std::string> known;
  for (const auto& definition : apps) {
    if (definition.name == name) return &definition;
    known.push_back(definition.name);
  }
  if (known.empty()) {
    return Error::of(ErrorCode::kInvalidArg,
                     fmt::format("unknown app '{}' (this program registers no apps)", name));
  }
  return Error::of(ErrorCode::kInvalidArg,
                   fmt::format("unknown app '{}' (known apps: {})", name, fmt::join(known, ", ")));
}

Result<CliSettings> settings_from(const SettingsSources& sources) {
  CliSettings out;
  if (sources.definition != nullptr && sources.definition->default_settings) {
    out.settings = sources.definition->default_settings();
  }
  out.worker_id_given = out.settings.worker_id != AppSettings{}.worker_id;
  if (Status status = apply_environment(out.settings, sources.environment); !status.ok())
    return status.error();
  if (sources.environment.contains("MEPHISTO_WORKER_ID")) out.worker_id_given = true;
  for (const auto& pair : sources.sets) {
    const size_t equals = pair.find('=');
    if (equals == std::string::npos || equals == 0) {
      return Error::of(
          ErrorCode::kInvalidArg,
          fmt::format("--set '{}' is not name=value (e.g. --set broker_commit_interval_ms=1000)", pair));
    }
    const std::string name = pair.substr(0, equals);
    if (Status status = set_setting(out.settings, name, pair.substr(equals + 1)); !status.ok()) {
      return status.error();
    }
    if (name == "worker_id") out.worker_id_given = true;
  }
  if (!sources.broker.empty()) out.settings.broker = sources.broker;
  return out;
}

}  // namespace mephisto::cli
