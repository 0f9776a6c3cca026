// The simulated Consumer: librdkafka's consumer model over the simulated cluster. A member fiber runs the
// group protocol (FindCoordinator, JoinGroup, SyncGroup with the leader computing the assignment client-side,
// heartbeats, max.poll.interval enforcement, LeaveGroup); poll() serves rebalance callbacks on the polling
// fiber, fetches from partition leaders and filters read_committed results (aborted transactions, control
// batches). As librdkafka's fetch versions: every assignment and seek gives a partition a new fetch version,
// and a Fetch response asked for under another version is dropped (a reassigned partition never inherits an
// old one). As rd_kafka_assign(), assign() replaces the whole assignment: a partition kept in the new list
// starts again.
#pragma once

#include <memory>

#include "runtime/seam/broker_client.h"
#include "sim/executor.h"

namespace mephisto::sim {

class SimKafka;

class SimConsumer final : public Consumer {
 public:
  SimConsumer(SimKafka& kafka, ProcessContext& process, ConsumerConfig config);
  // Without close(): the member stops heartbeating and is expired by the coordinator after the session timeout.
  ~SimConsumer() override;

  Status subscribe(const std::vector<std::string>& topics, RebalanceListener* listener) override;
  Status unsubscribe() override;
  Status assign(const std::vector<TopicPartition>& partitions) override;
  [[nodiscard]] std::vector<TopicPartition> assignment() const override;
  Result<std::vector<ConsumerRecord>> poll(int64_t timeout_ms) override;
  Status seek(const TopicPartition& tp, int64_t offset) override;
  Result<int64_t> position(const TopicPartition& tp) override;
  Status pause(const std::vector<TopicPartition>& partitions) override;
  Status resume(const std::vector<TopicPartition>& partitions) override;
  Status commit(const std::map<TopicPartition, int64_t>& offsets, int64_t timeout_ms) override;
  Result<std::map<TopicPartition, int64_t>> committed(const std::vector<TopicPartition>& partitions,
                                                      int64_t timeout_ms) override;
  Result<std::pair<int64_t, int64_t>> watermarks(const TopicPartition& tp, int64_t timeout_ms) override;
  [[nodiscard]] GroupMetadata group_metadata() const override;
  Status close() override;

  struct State;

 private:
  std::shared_ptr<State> state_;
};

}  // namespace mephisto::sim
