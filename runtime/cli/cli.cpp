// The command tree: CLI11 options bound to the commands of commands.h.
#include "runtime/cli/cli.h"

#include <CLI/CLI.hpp>

#include <exception>

#include "runtime/cli/commands.h"

namespace mephisto::cli {

int run_cli(const std::vector<AppDefinition>& apps, int argc, char** argv,
            const std::function<void(CLI::App&)>& extend) {
  CLI::App root{"Mephisto: Faust's stream-processing model in C++, on Kafka"};
  root.require_subcommand(1);
  int exit_code = kExitOk;

  WorkerOptions worker_options;
  auto* worker = root.add_subcommand("worker", "Run one worker of an app on Kafka until SIGTERM or SIGINT");
  worker->footer(
      "Settings: the app's defaults, then MEPHISTO_<SETTING> variables (e.g. MEPHISTO_STOP_TIMEOUT_MS), then "
      "each --set, then --broker.\n"
      "The first SIGTERM or SIGINT stops gracefully (drain, commit, leave the group), a second at once.\n"
      "Exit codes: 0 clean stop, 1 failure, 2 bad configuration.");
  worker->add_option("app", worker_options.app, "The app to run (see `apps`)")->required();
  worker->add_option("--broker", worker_options.broker,
                     "Kafka to connect to: kafka://host:port[,host:port...]");
  // One pair per --set, so that `--set a=1 APP` cannot swallow the app's name.
  worker
      ->add_option("--set", worker_options.sets,
                   "A setting as name=value (repeatable), e.g. --set stream_buffer_maxsize=100")
      ->allow_extra_args(false);
  worker->add_option("--log-level", worker_options.log_level, "debug, info, warn or error")
      ->check(CLI::IsMember({"debug", "info", "warn", "error"}))
      ->capture_default_str();
  auto* record =
      worker->add_option("--record", worker_options.record_dir,
                         "Record what the worker decides to trace files in this directory (created if "
                         "missing), to replay it in the simulator");
  worker
      ->add_flag("--record-hashes", worker_options.record_hashes,
                 "Record keys and values as hashes only (far smaller; the replay needs the payloads from "
                 "elsewhere)")
      ->needs(record);
  worker
      ->add_option("--record-max-mb", worker_options.record_max_mb,
                   "The trace files together stay under this size: the oldest are deleted")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 30))
      ->capture_default_str()
      ->needs(record);
  worker
      ->add_option("--record-segment-mb", worker_options.record_segment_mb,
                   "A new trace file (segment) when the current one passes this size")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 20))
      ->capture_default_str()
      ->needs(record);
  worker->callback([&] { exit_code = run_worker(apps, worker_options); });

  SendCommandOptions send_options;
  auto* send = root.add_subcommand("send", "Send raw records to a topic, or to an agent's topic with --app");
  send->add_option("target", send_options.target, "A topic, or an agent's name when --app is given")
      ->required();
  send->add_option("--key", send_options.key, "The key (default: none)");
  auto* value = send->add_option("--value", send_options.value, "The value (default: none, a null value)");
  send->add_option("--value-file", send_options.value_file,
                   "Read the value from this file (bytes as they are)")
      ->check(CLI::ExistingFile)
      ->excludes(value);
  send->add_option("--partition", send_options.partition,
                   "The partition (default: Kafka's partitioner on the key)")
      ->check(CLI::NonNegativeNumber);
  send->add_option("--repeat", send_options.repeat, "Send the record this many times")
      ->check(CLI::Range(int64_t{1}, int64_t{100'000'000}))
      ->capture_default_str();
  send->add_option(
      "--broker", send_options.broker,
      "Kafka to connect to: kafka://host:port[,host:port...] (default: the app's, MEPHISTO_BROKER, "
      "kafka://localhost:9092)");
  send->add_option("--app", send_options.app, "Resolve agent names (and the broker) through this app");
  send->add_option("--timeout-ms", send_options.timeout_ms, "How long to wait for the broker")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  send->callback([&] { exit_code = run_send(apps, send_options); });

  std::string agents_app;
  auto* agents = root.add_subcommand("agents", "List an app's agents (no broker needed)");
  agents->add_option("app", agents_app, "The app (see `apps`)")->required();
  agents->callback([&] { exit_code = print_agents(apps, agents_app); });

  std::string topics_app;
  auto* topics =
      root.add_subcommand("topics", "List the topics and channels an app declares (no broker needed)");
  topics->add_option("app", topics_app, "The app (see `apps`)")->required();
  topics->callback([&] { exit_code = print_topics(apps, topics_app); });

  root.add_subcommand("apps", "List the apps this program can run")->callback([&] {
    exit_code = print_apps(apps);
  });

  if (extend) extend(root);

  try {
    root.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    return root.exit(error);
  } catch (const std::exception& error) {
    // An exception from an app's own code (its definition), not from the command line.
    print_error(error.what());
    return kExitFailure;
  }
  return exit_code;
}

}  // namespace mephisto::cli
