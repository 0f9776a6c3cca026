// The transaction coordinator's state for the transactional ids of one __transaction_state partition (Kafka's
// TransactionMetadata cache). The state is materialised from the partition's log up to its high watermark; a
// write in flight makes the id "pending" (concurrent requests get kConcurrentTransactions). Behaviour is in
// txn_coordinator.cpp.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>

#include "sim/cluster/internal_records.h"
#include "sim/cluster/protocol.h"

namespace mephisto::sim {

struct TxnMetadata {
  std::string transactional_id;
  internal_records::TxnValue value;  // as of the high watermark; producer_id -1 until the first write lands
  bool pending = false;              // a state write is in flight
  bool markers_in_flight = false;    // markers of a PrepareCommit/PrepareAbort are being written
  std::set<TopicPartition> markers_remaining;
};

struct TxnShard {
  int32_t partition = 0;  // of __transaction_state
  bool loaded = false;
  BrokerId broker = kNoBroker;
  uint64_t load_id = 0;
  int64_t applied_offset = 0;
  std::map<std::string, TxnMetadata> txns;
};

}  // namespace mephisto::sim
