// The example apps (agents/) as the binary's apps in tests of the scenario runner and replay: what
// build/bin/mephisto passes to its commands. A scenario names one of them.
#pragma once

#include <vector>

#include "agents/examples.h"
#include "sim/scenario/loader.h"

namespace mephisto::test {

inline const std::vector<AppDefinition>& example_apps() {
  static const std::vector<AppDefinition> apps = examples::example_apps();
  return apps;
}

// The example app a loaded scenario names (precondition: the scenario loaded against example_apps()).
inline const AppDefinition* scenario_app(const sim::scenario::Scenario& scenario) {
  return sim::scenario::find_scenario_app(example_apps(), scenario.app().name()).value();
}

}  // namespace mephisto::test
