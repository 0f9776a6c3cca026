// When a run has settled: the app's group has consumed everything it reads and no transaction it wrote is
// still open. Shared by the scenario runner's liveness phase and the differential oracle's reference runs.
#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

#include "sim/app/app_harness.h"

namespace mephisto::sim::scenario {

// The Kafka topics the app's group reads, as the running workers declare them: every agent's source (not
// in-memory channels) and every topic its stream relays through (group_by, through). Workers not running
// add nothing.
[[nodiscard]] std::set<std::string> consumed_topics(AppHarness& h);

// "" when, for every topic in `consumed`, the group's committed offset of each partition is past its last
// plain or committed record (partitions with nothing to consume need no commit), and no partition of a topic
// in `transactional` has an open transaction; otherwise what is still missing, readable ("group committed
// {...}, count-events ends {...}"). Runs the harness's helper processes (virtual time passes).
[[nodiscard]] std::string unsettled(AppHarness& h, const std::string& group,
                                    const std::set<std::string>& consumed,
                                    const std::vector<std::string>& transactional);

// The offsets as "{ topic/p=o ... }".
[[nodiscard]] std::string describe_offsets(const std::map<TopicPartition, int64_t>& offsets);

}  // namespace mephisto::sim::scenario
