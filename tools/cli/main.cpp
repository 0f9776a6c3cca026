// build/bin/mephisto: the command-line entry point. The commands that run apps (worker, send, agents, topics,
// apps) come from runtime/cli over the example apps of agents/; `version`, `sim` (failure scenarios), `replay` (recorded workers) and
// `demo` (the simulator) are added here.
#include <CLI/CLI.hpp>

#include <cstdio>

#include "agents/examples.h"
#include "demo.h"
#include "runtime/cli/cli.h"
#include "replay_command.h"
#include "sim_command.h"

int main(int argc, char** argv) {
  mephisto::cli::DemoOptions demo_options;
  mephisto::cli::SimOptions sim_options;
  mephisto::cli::ReplayCommandOptions replay_options;
  const std::vector<mephisto::AppDefinition> apps = mephisto::examples::example_apps();
  return mephisto::cli::run_cli(apps, argc, argv, [&](CLI::App& app) {
    app.description("Mephisto: Faust's stream-processing model in C++, with a deterministic simulated Kafka");

    auto* version = app.add_subcommand("version", "Print the version");
    version->callback([] { std::printf("mephisto %s\n", MEPHISTO_VERSION); });

    mephisto::cli::add_sim_command(app, sim_options, apps);
    mephisto::cli::add_replay_command(app, replay_options, apps);

    auto* demo = app.add_subcommand("demo",
                                    "Run a simulated failure scenario (worker and broker crashes) and check "
                                    "nothing acknowledged is lost");
    demo->add_option("--seed", demo_options.seed, "Seed of the run (same seed, same run)");
    demo->add_option("--records", demo_options.records, "Records to produce")
        ->check(CLI::Range(1, 10'000'000));
    demo->add_flag("--check-determinism", demo_options.check_determinism, "Run twice and compare run hashes");
    demo->callback([&] {
      // run_cli's convention for an added command's exit code.
      if (const int code = mephisto::cli::run_demo(demo_options); code != 0) throw CLI::RuntimeError(code);
    });
  });
}
