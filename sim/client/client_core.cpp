#include "sim/client/client_core.h"

#include <cassert>

#include "sim/sim_kafka.h"

namespace mephisto::sim {

bool is_stale_metadata_error(ErrorCode code) {
  return code == ErrorCode::kNotLeaderOrFollower || code == ErrorCode::kLeaderNotAvailable ||
         code == ErrorCode::kUnknownTopicOrPartition || code == ErrorCode::kRequestTimedOut ||
         code == ErrorCode::kNetworkException || code == ErrorCode::kBrokerNotAvailable ||
         code == ErrorCode::kTransport;
}

bool is_coordinator_error(ErrorCode code) {
  return code == ErrorCode::kNotCoordinator || code == ErrorCode::kCoordinatorNotAvailable ||
         code == ErrorCode::kCoordinatorLoadInProgress || code == ErrorCode::kRequestTimedOut ||
         code == ErrorCode::kNetworkException || code == ErrorCode::kTransport;
}

ClientCore::ClientCore(SimKafka& kafka, ProcessContext& process, std::string client_id)
    : kafka_(kafka), process_(process), client_id_(std::move(client_id)) {
  // Start the bootstrap rotation at a per-client point so clients do not all pile onto broker 1.
  bootstrap_cursor_ = process_.random().below(static_cast<uint64_t>(kafka_.broker_count()));
}

ClientCore::~ClientCore() = default;

void ClientCore::send(BrokerId broker, Request request, int64_t timeout_ms,
                      std::function<void(Result<Response>)> on_response) {
  struct Pending {
    bool done = false;
    TimerId timeout_timer = 0;
    std::function<void(Result<Response>)> on_response;
  };
  auto pending = std::make_shared<Pending>();
  pending->on_response = std::move(on_response);
  std::weak_ptr<int> alive = alive_;
  Executor& executor = kafka_.executor();

  pending->timeout_timer = executor.after(timeout_ms, process_.id(), [pending, alive] {
    if (pending->done || alive.expired()) return;
    pending->done = true;
    pending->on_response(Error::of(ErrorCode::kRequestTimedOut, "no response within the request timeout"));
  });

  RequestHeader header;
  header.correlation_id = next_correlation_id_++;
  header.client_id = client_id_;
  header.from = process_.id();
  kafka_.request(process_.id(), broker, std::move(header), std::move(request),
                 [pending, alive, &executor](Response response) {
                   if (pending->done || alive.expired()) return;
                   pending->done = true;
                   executor.cancel(pending->timeout_timer);
                   pending->on_response(std::move(response));
                 });
}

Result<Response> ClientCore::call(BrokerId broker, Request request, int64_t timeout_ms) {
  struct Slot {
    std::optional<Result<Response>> result;
  };
  auto slot = std::make_shared<Slot>();
  Scheduler& scheduler = process_.scheduler();
  const FiberId self = scheduler.current();
  send(broker, std::move(request), timeout_ms, [slot, &scheduler, self](Result<Response> r) {
    slot->result.emplace(std::move(r));
    scheduler.wake(self);
  });
  // The send() timeout guarantees an answer; the extra margin only guards against a lost wake.
  const int64_t deadline_ms = now_ms() + timeout_ms + 1000;
  while (!slot->result.has_value()) {
    if (!scheduler.park_until(deadline_ms) && now_ms() >= deadline_ms) break;
  }
  if (!slot->result.has_value()) return Error::of(ErrorCode::kTimedOut, "request timed out");
  return std::move(*slot->result);
}

BrokerId ClientCore::next_bootstrap_broker() {
  const auto n = static_cast<size_t>(kafka_.broker_count());
  return static_cast<BrokerId>(bootstrap_cursor_++ % n) + 1;
}

bool ClientCore::backoff(int64_t deadline_ms) {
  const int64_t until = std::min(deadline_ms, now_ms() + kRetryBackoffMs);
  scheduler().wait_until_ms(until);
  return now_ms() < deadline_ms;
}

Result<MetadataResponse> ClientCore::refresh_metadata(std::optional<std::vector<std::string>> topics,
                                                      int64_t deadline_ms) {
  Error last = Error::of(ErrorCode::kTimedOut, "metadata request timed out");
  while (now_ms() < deadline_ms) {
    const int64_t timeout_ms = std::min<int64_t>(deadline_ms - now_ms(), 5000);
    auto r = call_as<MetadataResponse>(next_bootstrap_broker(), MetadataRequest{topics}, timeout_ms);
    if (!r.ok()) {
      last = r.error();
      if (!backoff(deadline_ms)) break;
      continue;
    }
    for (const auto& t : r->topics) {
      TopicMeta& meta = topics_[t.name];
      meta.exists = t.error == ErrorCode::kNone;
      meta.leaders.assign(t.partitions.size(), kNoBroker);
      for (const auto& p : t.partitions) {
        if (p.partition >= 0 && static_cast<size_t>(p.partition) < meta.leaders.size())
          meta.leaders[static_cast<size_t>(p.partition)] = p.error == ErrorCode::kNone ? p.leader : kNoBroker;
      }
    }
    return std::move(r).value();
  }
  return last;
}

BrokerId ClientCore::leader_of(const TopicPartition& tp) const {
  const auto it = topics_.find(tp.topic);
  if (it == topics_.end() || !it->second.exists || tp.partition < 0 ||
      static_cast<size_t>(tp.partition) >= it->second.leaders.size())
    return kNoBroker;
  return it->second.leaders[static_cast<size_t>(tp.partition)];
}

std::optional<int32_t> ClientCore::partition_count(const std::string& topic) const {
  const auto it = topics_.find(topic);
  if (it == topics_.end() || !it->second.exists) return std::nullopt;
  return static_cast<int32_t>(it->second.leaders.size());
}

bool ClientCore::known_missing(const std::string& topic) const {
  const auto it = topics_.find(topic);
  return it != topics_.end() && !it->second.exists;
}

void ClientCore::invalidate_leader(const TopicPartition& tp) {
  const auto it = topics_.find(tp.topic);
  if (it != topics_.end() && tp.partition >= 0 && static_cast<size_t>(tp.partition) < it->second.leaders.size())
    it->second.leaders[static_cast<size_t>(tp.partition)] = kNoBroker;
}

Result<BrokerId> ClientCore::find_coordinator(const std::string& key, CoordinatorType type, int64_t deadline_ms) {
  const auto cached = coordinators_.find({key, type});
  if (cached != coordinators_.end()) return cached->second;
  Error last = Error::of(ErrorCode::kCoordinatorNotAvailable, "no coordinator found for " + key);
  while (now_ms() < deadline_ms) {
    const int64_t timeout_ms = std::min<int64_t>(deadline_ms - now_ms(), 5000);
    auto r = call_as<FindCoordinatorResponse>(next_bootstrap_broker(), FindCoordinatorRequest{key, type}, timeout_ms);
    if (r.ok() && r->error == ErrorCode::kNone && r->node_id != kNoBroker) {
      coordinators_[{key, type}] = r->node_id;
      return r->node_id;
    }
    last = r.ok() ? Error::of(r->error, "FindCoordinator for " + key) : r.error();
    if (!backoff(deadline_ms)) break;
  }
  return last;
}

void ClientCore::invalidate_coordinator(const std::string& key, CoordinatorType type) {
  coordinators_.erase({key, type});
}

}  // namespace mephisto::sim
