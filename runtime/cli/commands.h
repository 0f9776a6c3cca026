// The commands behind run_cli (cli.h), one function each, for cli.cpp's command tree. Internal to
// runtime/cli, and to main/, whose sim and replay commands share its exit codes and error line.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "runtime/app/app.h"
#include "runtime/seam/result.h"

namespace mephisto::cli {

// Exit codes shared by every command.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;  // the command ran and failed (broker unreachable, worker error)
inline constexpr int kExitUsage = 2;    // the command was not run: unknown app, bad setting, bad option value

// Prints "error: <message>" on stderr, one line.
void print_error(const std::string& message);

// The definition named `name`, or kInvalidArg naming it and listing the known ones.
[[nodiscard]] Result<const AppDefinition*> find_app(const std::vector<AppDefinition>& apps,
                                                    const std::string& name);

// Where an app's settings come from, lowest precedence first: the definition's defaults (AppSettings{}
// without a definition), the MEPHISTO_ environment, `--set name=value` pairs, `--broker`. Not validated here.
struct SettingsSources {
  const AppDefinition* definition = nullptr;
  std::map<std::string, std::string> environment;
  std::vector<std::string> sets;  // "name=value"
  std::string broker;             // empty: not given
};
struct CliSettings {
  AppSettings settings;
  bool worker_id_given = false;  // by the definition, the environment or --set (else the worker names itself)
};
// Errors: kInvalidArg from set_setting / apply_environment, or a --set pair without '='.
[[nodiscard]] Result<CliSettings> settings_from(const SettingsSources& sources);

// The process's environment as name -> value (worker.cpp: a production binding file).
[[nodiscard]] std::map<std::string, std::string> process_environment();

struct WorkerOptions {
  std::string app;
  std::string broker;
  std::vector<std::string> sets;
  std::string log_level = "info";
  // --record DIR: write what the worker decides to trace files there (runtime/trace), for a replay in the
  // simulator. Empty: nothing is recorded.
  std::string record_dir;
  bool record_hashes = false;  // keys and values as hashes only
  int64_t record_max_mb = 1024;  // the writer's files together; the oldest are deleted beyond it
  int64_t record_segment_mb = 64;
};
int run_worker(const std::vector<AppDefinition>& apps, const WorkerOptions& options);

struct SendCommandOptions {
  std::string target;  // a topic, or an agent of `app`
  std::optional<std::string> key;
  std::optional<std::string> value;
  std::string value_file;
  int32_t partition = -1;
  int64_t repeat = 1;
  std::string broker;
  std::string app;
  int64_t timeout_ms = 30000;
};
int run_send(const std::vector<AppDefinition>& apps, const SendCommandOptions& options);

int print_agents(const std::vector<AppDefinition>& apps, const std::string& app);
int print_topics(const std::vector<AppDefinition>& apps, const std::string& app);
int print_apps(const std::vector<AppDefinition>& apps);

}  // namespace mephisto::cli
