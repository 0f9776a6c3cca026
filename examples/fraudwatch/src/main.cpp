// The fraudwatch binary: every Mephisto command (worker, send, agents, topics, apps, sim, replay, ...) over
// its two apps — fraudwatch, and fraudwatch-cached with the planted bug.
#include <mephisto/mephisto.h>

#include "fraudwatch.h"

int main(int argc, char** argv) {
  static const std::vector<mephisto::AppDefinition> apps = {fraudwatch::app(false), fraudwatch::app(true)};
  return mephisto::main(apps, argc, argv);
}
