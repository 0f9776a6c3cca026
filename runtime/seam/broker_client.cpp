#include "runtime/seam/broker_client.h"

#include <ostream>

namespace mephisto {

// Kafka's own spelling (TopicPartition.toString): "orders-3".
std::ostream& operator<<(std::ostream& out, const TopicPartition& tp) {
  return out << tp.topic << '-' << tp.partition;
}

}  // namespace mephisto
