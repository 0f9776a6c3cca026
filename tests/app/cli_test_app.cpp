// The binary cli_test.cpp and cli_kafka_test.cpp run: run_cli over two tiny app definitions, plus a `ping`
// subcommand added through the extend hook (exit code 7), as a user's own binary would.
#include <CLI/CLI.hpp>

#include <string>

#include "runtime/cli/cli.h"

namespace {

using mephisto::AgentOptions;
using mephisto::App;
using mephisto::AppDefinition;
using mephisto::AppSettings;
using mephisto::Output;
using mephisto::Sink;
using mephisto::Stream;

AppDefinition tiny_app() {
  AppDefinition definition;
  definition.name = "tiny";
  definition.description = "A tiny app for the CLI's tests";
  definition.default_settings = [] {
    AppSettings settings;
    settings.id = "tiny-app";
    return settings;
  };
  definition.define = [](App& app) {
    // Topic names follow the id, so that cli_kafka_test's runs (a fresh id each) never meet an earlier run's.
    auto input = app.topic<std::string, std::string>(app.settings().id + "-input");
    auto output = app.topic<std::string, std::string>(app.settings().id + "-output");
    AgentOptions<std::string> options;
    options.concurrency = 2;
    options.description = "echoes {id}-input to {id}-output";
    options.sinks.push_back(Sink<std::string>::to(output));
    app.agent<std::string>(
        "echo", input,
        [](Stream<std::string, std::string>& stream, Output<std::string>& out) {
          for (auto& event : stream) out.yield(event.value());
        },
        options);
    // Declared without a topic: it reads its own, {id}-count.
    app.agent<std::string, std::string>("count", [](Stream<std::string, std::string>& stream) {
      for (auto& event : stream) (void)event;
    });
    app.channel<std::string, std::string>("tiny-channel");
  };
  return definition;
}

AppDefinition empty_app() {
  AppDefinition definition;
  definition.name = "empty";
  definition.default_settings = [] {
    AppSettings settings;
    settings.id = "empty-app";
    return settings;
  };
  definition.define = [](App&) {};
  return definition;
}

}  // namespace

int main(int argc, char** argv) {
  return mephisto::cli::run_cli({tiny_app(), empty_app()}, argc, argv, [](CLI::App& root) {
    root.add_subcommand("ping", "Exit with code 7 (the extend hook's exit codes)")->callback([] {
      throw CLI::RuntimeError(7);
    });
  });
}
