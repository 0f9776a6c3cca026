// run_cli: Mephisto's command line as a library, so that a user's own binary — linking its own agents — gets
// the same commands as build/bin/mephisto:
//
//   int main(int argc, char** argv) {
//     return mephisto::cli::run_cli({my_app_definition()}, argc, argv);
//   }
//
// Commands (each with --help): `worker APP` runs an app on real Kafka until SIGTERM / SIGINT; `send` produces
// raw records to a topic or an agent's topic; `agents APP` and `topics APP` print what an app declares;
// `apps` lists the definitions given here. See runtime/cli/README.md.
#pragma once

#include <functional>
#include <vector>

#include "runtime/app/app.h"

namespace CLI {
class App;
}  // namespace CLI

namespace mephisto::cli {

// Parses argv and runs the chosen command; returns the process exit code: 0 success, 1 a failure while
// running (the error printed on one line), 2 a usage or configuration error (likewise), CLI11's own codes for
// parse errors. `extend` may add subcommands (and options) to the root before parsing; a subcommand added
// there reports a non-zero exit code by throwing CLI::RuntimeError(code) from its callback.
int run_cli(const std::vector<AppDefinition>& apps, int argc, char** argv,
            const std::function<void(CLI::App&)>& extend = {});

}  // namespace mephisto::cli
