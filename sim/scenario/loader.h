// Scenario files: textproto of models/scenario.proto (scenarios/*.textproto). Loading parses, checks every
// value against its documented range and fills in the defaults, so the runner only ever sees a complete,
// valid scenario. A bad file is an error naming FILE:LINE:COLUMN, the field, what was found and what was
// expected.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "models/scenario.pb.h"
#include "runtime/app/app.h"
#include "runtime/app/settings.h"
#include "runtime/seam/result.h"
#include "sim/sim_kafka.h"

namespace mephisto::sim::scenario {

using mephisto::scenario::Scenario;

// The app named `name` among `apps` (the binary's apps), if it can be simulated (AppDefinition::scenario is
// set). Errors (kInvalidArg): an unknown name (the message lists the apps that can be simulated), or an app
// without scenario support (the message says what to add).
[[nodiscard]] Result<const AppDefinition*> find_scenario_app(const std::vector<AppDefinition>& apps,
                                                             const std::string& name);

// Parses `text` (file name `origin` for messages) and validates it; app.name must be one of `apps` that can
// be simulated (find_scenario_app). Errors: kInvalidArg "origin:LINE:COL: ...".
[[nodiscard]] Result<Scenario> parse_scenario(std::string_view text, const std::string& origin,
                                              const std::vector<AppDefinition>& apps);
// Reads and parses a file. Errors: kInvalidArg if unreadable, else as parse_scenario.
[[nodiscard]] Result<Scenario> load_scenario_file(const std::string& path,
                                                  const std::vector<AppDefinition>& apps);
// The simulated cluster the scenario describes (brokers, replication, min.insync, latencies, elections).
[[nodiscard]] SimKafkaConfig scenario_cluster(const Scenario& scenario);
// The settings a scenario's workers run with: `base` (the app's defaults) with the simulator's short timeouts
// (10 s session, 1 s heartbeat and commit interval, 30 s max.poll.interval: virtual time stays short), the
// scenario's topic layout, then the scenario's own app.settings. The loader validates the result
// (validate()), so a scenario whose settings contradict each other is refused at load, with the file's line.
[[nodiscard]] AppSettings scenario_settings(const Scenario& scenario, const AppSettings& base);
// The same settings as `--set` pairs, in the order they apply (a recording's header keeps them for replay).
[[nodiscard]] std::vector<std::pair<std::string, std::string>> recorded_scenario_settings(const Scenario& scenario);

// The scenario as textproto (what --shrink writes); parse_scenario(to_text(s)) gives s back.
[[nodiscard]] std::string scenario_to_text(const Scenario& scenario);

}  // namespace mephisto::sim::scenario
