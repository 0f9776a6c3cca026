// build/bin/mephisto: the one entry point (main/main.h) over the example apps of agents/ — exactly what a
// user's own binary is over theirs.
#include "main/main.h"
#include "agents/examples.h"

int main(int argc, char** argv) {
  static const std::vector<mephisto::AppDefinition> apps = mephisto::examples::example_apps();
  return mephisto::main(apps, argc, argv);
}
