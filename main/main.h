// mephisto::main: the whole Mephisto command line for a binary's own apps — what Faust's `app.main()` is. A
// user's program is one call:
//
//   int main(int argc, char** argv) {
//     return mephisto::main({fraudwatch_app()}, argc, argv);
//   }
//
// and that binary has every command `mephisto` has, over its apps: `worker APP` (run on Kafka), `send`,
// `agents`, `topics`, `apps`, `sim SCENARIO` (failure scenarios for any app with AppDefinition::scenario),
// `replay DIR` (recordings of its workers), `demo` and `version`. build/bin/mephisto is this same call with
// the example apps (tools/cli/main.cpp). Each command has --help; see main/README.md.
#pragma once

#include <vector>

#include "runtime/app/app.h"

namespace mephisto {

// Parses argv and runs the chosen command over `apps`. Returns the process exit code: 0 success, 1 a failure
// while running (a failing seed, a diverged replay, a worker error), 2 a usage or configuration error (a bad
// scenario file, an unknown app: the message names what is wrong and what to do), CLI11's own codes for parse
// errors. `apps` must outlive the call (the commands refer to them).
int main(const std::vector<AppDefinition>& apps, int argc, char** argv);

}  // namespace mephisto
