#include "runtime/seam/broker_client.h"

#include <ostream>

namespace mephisto {

// Kafka's own spelling (TopicPartition.toString): "orders-3".
std::ostream& operator<<(std::ostream& out, const TopicPartition& tp) {
  return out << tp.topic << '-' << tp.partition;
}

const char* assignment_strategy_name(AssignmentStrategy strategy) {
  switch (strategy) {
    case AssignmentStrategy::kRange:
      return "range";
    case AssignmentStrategy::kRoundRobin:
      return "roundrobin";
    case AssignmentStrategy::kCooperativeSticky:
      return "cooperative-sticky";
  }
  return "unknown";
}

}  // namespace mephisto
