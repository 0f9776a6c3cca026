// The broker client and store factory a replayed worker runs against (sim/replay): every input comes from the
// ReplaySession, in recorded order; every output goes to it to be compared.
//
//   ReplayBrokerClient  admin: the topics the recorded app declared, with their recorded partition counts;
//                       consumers: the app's group consumer gets the recorded assignments and batches, the
//                       table reader the recorded changelog records, the restore's end-offset client the
//                       recorded end offsets; producers: deliver each record with its recorded outcome.
//   ReplayStoreFactory  in-memory table stores that start with what the recorded worker's store held when it
//                       opened the partition (the recorded snapshot).
#pragma once

#include <map>
#include <memory>
#include <string>

#include "runtime/seam/broker_client.h"
#include "runtime/store/store.h"
#include "sim/replay/replay_session.h"

namespace mephisto::replay {

class ReplayBrokerClient final : public BrokerClient {
 public:
  // `topics`: name -> partition count, from the recorded declarations. `app_id` names the group consumer
  // (group id == app id); consumers of other groups (ask() replies) are never fed. Both must outlive clients.
  ReplayBrokerClient(ReplaySession* session, Scheduler* scheduler, const Clock* clock, std::string app_id,
                     std::map<std::string, int32_t> topics);
  Result<std::unique_ptr<Admin>> admin() override;
  Result<std::unique_ptr<Producer>> producer(const ProducerConfig& config) override;
  Result<std::unique_ptr<Consumer>> consumer(const ConsumerConfig& config) override;
  [[nodiscard]] bool simulated() const override { return true; }

 private:
  ReplaySession* session_;
  Scheduler* scheduler_;
  const Clock* clock_;
  std::string app_id_;
  std::map<std::string, int32_t> topics_;  // shared by every admin client (creates add to it)
};

class ReplayStoreFactory final : public store::StoreFactory {
 public:
  explicit ReplayStoreFactory(ReplaySession* session);
  // Errors: kInvalidArg when the recorded snapshot had contents but the trace holds only their hash.
  Result<std::unique_ptr<store::TableStore>> open(const std::string& table, int32_t partition) override;
  Status wipe(const std::string& table, int32_t partition) override;
  [[nodiscard]] std::string url() const override { return "replay://"; }

 private:
  ReplaySession* session_;
};

// The partition counts a trace header's declarations name ("topic NAME partitions=N ...").
[[nodiscard]] std::map<std::string, int32_t> declared_topics(const trace::TraceHeader& header);

}  // namespace mephisto::replay
