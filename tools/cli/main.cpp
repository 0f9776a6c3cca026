// build/bin/mephisto: the command-line entry point.
#include <CLI/CLI.hpp>

#include <cstdio>

#include "demo.h"

int main(int argc, char** argv) {
  CLI::App app{"Mephisto: Faust's stream-processing model in C++, with a deterministic simulated Kafka"};
  app.require_subcommand(1);

  auto* version = app.add_subcommand("version", "Print the version");
  version->callback([] { std::printf("mephisto %s\n", MEPHISTO_VERSION); });

  mephisto::cli::DemoOptions demo_options;
  auto* demo = app.add_subcommand(
      "demo", "Run a simulated failure scenario (worker and broker crashes) and check nothing acknowledged is lost");
  demo->add_option("--seed", demo_options.seed, "Seed of the run (same seed, same run)");
  demo->add_option("--records", demo_options.records, "Records to produce")->check(CLI::Range(1, 10'000'000));
  demo->add_flag("--check-determinism", demo_options.check_determinism, "Run twice and compare run hashes");

  int exit_code = 0;
  demo->callback([&] { exit_code = mephisto::cli::run_demo(demo_options); });

  CLI11_PARSE(app, argc, argv);
  return exit_code;
}
