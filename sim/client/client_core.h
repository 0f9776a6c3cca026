// ClientCore: what every simulated client (admin, producer, consumer) shares — its process, request/response
// exchange with brokers over the simulated network, the bootstrap broker list, and a metadata cache. The
// equivalent of librdkafka's rd_kafka_t broker threads, minus the threads: responses arrive as executor events
// on the client's process and wake the fiber that waits for them.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "runtime/seam/result.h"
#include "sim/cluster/protocol.h"
#include "sim/executor.h"

namespace mephisto::sim {

class SimKafka;

// Upper bound on one retry loop of a client call (coordinator lookups, metadata refreshes): a broken cluster
// makes a call fail with kTimedOut after its timeout, never spin forever.
inline constexpr int64_t kRetryBackoffMs = 100;

class ClientCore {
 public:
  ClientCore(SimKafka& kafka, ProcessContext& process, std::string client_id);
  ~ClientCore();
  ClientCore(const ClientCore&) = delete;
  ClientCore& operator=(const ClientCore&) = delete;

  [[nodiscard]] ProcessContext& process() { return process_; }
  [[nodiscard]] Scheduler& scheduler() { return process_.scheduler(); }
  [[nodiscard]] int64_t now_ms() const { return process_.clock().now_ms(); }
  [[nodiscard]] const std::string& client_id() const { return client_id_; }
  [[nodiscard]] SimKafka& kafka() { return kafka_; }

  // Sends `request` to `broker`. `on_response` runs exactly once, from an executor event on this process: with
  // the broker's response, or with kRequestTimedOut when none arrived within timeout_ms (a crashed broker, a cut
  // link, a lost message). Never runs after this ClientCore is destroyed.
  void send(BrokerId broker, Request request, int64_t timeout_ms, std::function<void(Result<Response>)> on_response);

  // Fiber-blocking send: suspends the calling fiber until the response or the timeout.
  Result<Response> call(BrokerId broker, Request request, int64_t timeout_ms);

  // call() and unwrap the expected response type. Precondition: Resp answers the request's type.
  template <typename Resp>
  Result<Resp> call_as(BrokerId broker, Request request, int64_t timeout_ms) {
    auto r = call(broker, std::move(request), timeout_ms);
    if (!r.ok()) return r.error();
    return std::get<Resp>(std::move(r).value());
  }

  // A broker to ask cluster-wide questions (metadata, create topics), rotating through the bootstrap list so a
  // dead broker is skipped on the next attempt.
  BrokerId next_bootstrap_broker();

  // Fetches metadata for the topics (nullopt: all), trying brokers until one answers or the deadline passes.
  // Updates the cache.
  Result<MetadataResponse> refresh_metadata(std::optional<std::vector<std::string>> topics, int64_t deadline_ms);

  // Cached partition leader, or kNoBroker if unknown. Cached partition count, or nullopt if the topic is unknown.
  [[nodiscard]] BrokerId leader_of(const TopicPartition& tp) const;
  [[nodiscard]] std::optional<int32_t> partition_count(const std::string& topic) const;
  // The cache says the topic does not exist (as of the last refresh that asked for it).
  [[nodiscard]] bool known_missing(const std::string& topic) const;
  void invalidate_leader(const TopicPartition& tp);

  // Finds the coordinator for a group or transactional id, retrying until the deadline. Cached until
  // invalidate_coordinator().
  Result<BrokerId> find_coordinator(const std::string& key, CoordinatorType type, int64_t deadline_ms);
  void invalidate_coordinator(const std::string& key, CoordinatorType type);

  // Sleeps the calling fiber for a retry backoff, but never past the deadline. Returns false if the deadline passed.
  bool backoff(int64_t deadline_ms);

 private:
  SimKafka& kafka_;
  ProcessContext& process_;
  std::string client_id_;
  int32_t next_correlation_id_ = 1;
  size_t bootstrap_cursor_ = 0;
  // Destroyed with the client: pending callbacks hold a weak_ptr and are skipped once it is gone.
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);

  struct TopicMeta {
    bool exists = false;
    std::vector<BrokerId> leaders;  // by partition
  };
  std::map<std::string, TopicMeta> topics_;
  std::map<std::pair<std::string, CoordinatorType>, BrokerId> coordinators_;
};

// True for errors after which a client refreshes metadata and retries the same request.
[[nodiscard]] bool is_stale_metadata_error(ErrorCode code);
// True for coordinator errors after which a client looks the coordinator up again.
[[nodiscard]] bool is_coordinator_error(ErrorCode code);

}  // namespace mephisto::sim
