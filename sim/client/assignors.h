// Partition assignors, computed by the group leader client-side as in Kafka: range and roundrobin (eager) and
// cooperative-sticky (KIP-429, incremental). Pure functions of their input, deterministic (sorted everywhere),
// so the simulator's assignments are the ones real clients would compute from the same membership.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "runtime/seam/broker_client.h"

namespace mephisto::sim {

struct MemberSubscription {
  std::vector<std::string> topics;          // what the member subscribed to
  std::vector<TopicPartition> owned;        // cooperative: what it owns now (empty for eager)
};

using GroupAssignment = std::map<std::string, std::vector<TopicPartition>>;  // member id -> partitions (sorted)

// Partition counts of the subscribed topics that exist.
using TopicPartitionCounts = std::map<std::string, int32_t>;

// Kafka's RangeAssignor: per topic, members sorted by id take contiguous ranges; the first (n % members) get one more.
[[nodiscard]] GroupAssignment assign_range(const std::map<std::string, MemberSubscription>& members,
                                      const TopicPartitionCounts& topics);

// Kafka's RoundRobinAssignor: all partitions sorted, dealt to the subscribed members in id order.
[[nodiscard]] GroupAssignment assign_round_robin(const std::map<std::string, MemberSubscription>& members,
                                            const TopicPartitionCounts& topics);

// Cooperative-sticky: a balanced assignment (counts differ by at most one among members with the same
// subscription) that keeps as many owned partitions in place as possible; then, cooperatively, a partition that
// moves from one member to another is withheld from its new owner this round (its old owner revokes it and
// rejoins, and the follow-up rebalance hands it over).
[[nodiscard]] GroupAssignment assign_cooperative_sticky(const std::map<std::string, MemberSubscription>& members,
                                                   const TopicPartitionCounts& topics);

[[nodiscard]] GroupAssignment assign(AssignmentStrategy strategy, const std::map<std::string, MemberSubscription>& members,
                                const TopicPartitionCounts& topics);


}  // namespace mephisto::sim
