// The ground truth the checkers compare the history against: each partition's log with every data record's
// transaction outcome resolved from the control markers that follow it.
#include <map>

#include "sim/cluster/cluster.h"
#include "sim/scenario/checkers.h"

namespace mephisto::sim::scenario {
namespace {

// The replica whose log stands for the partition: its leader, else (offline) the replica with the longest
// log, the lowest broker id on ties so the choice never depends on container order.
BrokerId replica_to_read(const PartitionState& state) {
  if (state.leader != kNoBroker) return state.leader;
  BrokerId best = kNoBroker;
  int64_t best_end = -1;
  for (const auto& [broker, log_end] : state.log_end_offsets) {
    if (log_end > best_end || (log_end == best_end && broker < best)) {
      best = broker;
      best_end = log_end;
    }
  }
  return best;
}

std::vector<LogRecord> read_partition(const std::vector<RecordBatch>& batches) {
  std::vector<LogRecord> out;
  // Per producer id, the indexes in `out` of its transactional records still waiting for their marker: a
  // marker decides exactly the records written by that producer since its previous marker.
  std::map<int64_t, std::vector<size_t>> open_by_producer;
  for (const auto& batch : batches) {
    if (batch.is_control()) {
      auto open = open_by_producer.find(batch.producer_id);
      if (open == open_by_producer.end()) continue;
      const auto status = batch.control == ControlType::kCommit ? LogRecord::kCommitted : LogRecord::kAborted;
      for (size_t index : open->second) out[index].status = status;
      open_by_producer.erase(open);
      continue;
    }
    if (!batch.records) continue;
    for (const auto& rec : *batch.records) {
      LogRecord& lr = out.emplace_back();
      lr.offset = batch.base_offset + rec.offset_delta;
      lr.key = rec.key;
      lr.value = rec.value;
      lr.producer_id = batch.producer_id;
      if (batch.is_transactional) {
        lr.status = LogRecord::kOpen;
        open_by_producer[batch.producer_id].push_back(out.size() - 1);
      }
    }
  }
  return out;
}

}  // namespace

TopicLog read_final_log(const Cluster& cluster, const std::string& topic) {
  TopicLog log;
  for (int32_t partition = 0;; ++partition) {
    const auto state = cluster.partition_state(TopicPartition{topic, partition});
    if (!state) break;
    const BrokerId replica = replica_to_read(*state);
    if (replica == kNoBroker) {
      log[partition];
      continue;
    }
    log[partition] = read_partition(cluster.replica_log(state->tp, replica));
  }
  return log;
}

}  // namespace mephisto::sim::scenario
