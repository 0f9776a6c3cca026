// The simulated Admin client: CreateTopics / DeleteTopics / Metadata against the simulated cluster.
#pragma once

#include <memory>

#include "runtime/seam/broker_client.h"
#include "sim/client/client_core.h"

namespace mephisto::sim {

class SimAdmin final : public Admin {
 public:
  SimAdmin(SimKafka& kafka, ProcessContext& process, std::string client_id);

  Status create_topic(const TopicSpec& spec, int64_t timeout_ms) override;
  Status delete_topic(const std::string& name, int64_t timeout_ms) override;
  Result<TopicDescription> describe_topic(const std::string& name, int64_t timeout_ms) override;
  Result<std::vector<std::string>> list_topics(int64_t timeout_ms) override;

 private:
  // Waits until metadata shows the topic (exists == true) or its absence (false), as the Java AdminClient's
  // callers usually do, so that a producer created next sees it.
  Status await_metadata(const std::string& name, bool exists, int64_t deadline_ms);

  ClientCore core_;
};

}  // namespace mephisto::sim
