// The simulated Producer: librdkafka's producer model over the simulated cluster. Records queue per partition; a
// sender fiber builds batches and sends Produce requests to partition leaders, one batch in flight per partition
// (so ordering holds under retries without librdkafka's in-flight reordering machinery: see sim/README.md);
// idempotent sequence numbers; a transaction manager (KIP-98, KIP-447) talking to the transaction coordinator.
#pragma once

#include <memory>

#include "runtime/seam/broker_client.h"
#include "sim/executor.h"

namespace mephisto::sim {

class SimKafka;

// Limits: what one Produce batch carries at most (librdkafka's batch.num.messages default is 10000).
inline constexpr size_t kMaxBatchRecords = 10000;
inline constexpr int64_t kMaxBatchBytes = 1000000;
// librdkafka's message.max.bytes default: larger records fail at send().
inline constexpr int64_t kMaxRecordBytes = 1000000;

class SimProducer final : public Producer {
 public:
  SimProducer(SimKafka& kafka, ProcessContext& process, ProducerConfig config);
  // Records not yet delivered get kDestroy in their delivery reports (as rd_kafka_destroy without a flush).
  ~SimProducer() override;

  Status send(ProducerRecord record, DeliveryCallback on_delivery) override;
  Status flush(int64_t timeout_ms) override;
  Status init_transactions(int64_t timeout_ms) override;
  Status begin_transaction() override;
  Status send_offsets_to_transaction(const std::map<TopicPartition, int64_t>& offsets, const GroupMetadata& group,
                                     int64_t timeout_ms) override;
  Status commit_transaction(int64_t timeout_ms) override;
  Status abort_transaction(int64_t timeout_ms) override;

  struct State;

 private:
  std::shared_ptr<State> state_;
};

}  // namespace mephisto::sim
