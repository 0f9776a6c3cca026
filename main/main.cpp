#include "main/main.h"

#include <CLI/CLI.hpp>

#include <cstdio>
#include <filesystem>

#include "main/demo.h"
#include "main/replay_command.h"
#include "main/sim_command.h"
#include "runtime/cli/cli.h"

namespace mephisto {

int main(const std::vector<AppDefinition>& apps, int argc, char** argv) {
  cli::DemoOptions demo_options;
  cli::SimOptions sim_options;
  if (argc > 0 && argv[0] != nullptr)
    sim_options.program = std::filesystem::path(argv[0]).filename().string();
  cli::ReplayCommandOptions replay_options;
  return cli::run_cli(apps, argc, argv, [&](CLI::App& app) {
    app.description("Mephisto: Faust's stream-processing model in C++, with a deterministic simulated Kafka");

    auto* version = app.add_subcommand("version", "Print the version");
    version->callback([] { std::printf("mephisto %s\n", MEPHISTO_VERSION); });

    cli::add_sim_command(app, sim_options, apps);
    cli::add_replay_command(app, replay_options, apps);

    auto* demo = app.add_subcommand("demo",
                                    "Run a simulated failure scenario (worker and broker crashes) and check "
                                    "nothing acknowledged is lost");
    demo->add_option("--seed", demo_options.seed, "Seed of the run (same seed, same run)");
    demo->add_option("--records", demo_options.records, "Records to produce")
        ->check(CLI::Range(1, 10'000'000));
    demo->add_flag("--check-determinism", demo_options.check_determinism, "Run twice and compare run hashes");
    demo->callback([&] {
      // run_cli's convention for an added command's exit code.
      if (const int code = cli::run_demo(demo_options); code != 0) throw CLI::RuntimeError(code);
    });
  });
}

}  // namespace mephisto
