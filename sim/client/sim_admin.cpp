#include "sim/client/sim_admin.h"

#include <algorithm>

namespace mephisto::sim {

SimAdmin::SimAdmin(SimKafka& kafka, ProcessContext& process, std::string client_id)
    : core_(kafka, process, std::move(client_id)) {}

Status SimAdmin::create_topic(const TopicSpec& spec, int64_t timeout_ms) {
  // The seam has no "broker default" (Kafka's -1): counts are explicit, and checked before anything is sent.
  if (spec.partitions < 1)
    return Error::of(ErrorCode::kInvalidPartitions,
                     "topic " + spec.name + ": partitions must be >= 1, not " + std::to_string(spec.partitions));
  if (spec.replication_factor < 1)
    return Error::of(ErrorCode::kInvalidReplicationFactor, "topic " + spec.name +
                                                               ": replication factor must be >= 1, not " +
                                                               std::to_string(spec.replication_factor));
  const int64_t deadline_ms = core_.now_ms() + timeout_ms;
  while (true) {
    CreateTopicsRequest req;
    req.topics.push_back(spec);
    req.timeout_ms = static_cast<int32_t>(std::min<int64_t>(timeout_ms, INT32_MAX));
    // CreateTopics goes to the controller in Kafka; any live broker forwards it in the simulator.
    auto r = core_.call_as<CreateTopicsResponse>(core_.next_bootstrap_broker(), std::move(req),
                                                 std::min<int64_t>(deadline_ms - core_.now_ms(), 5000));
    if (r.ok()) {
      if (r->topics.empty()) return Error::of(ErrorCode::kInvalidRequest, "empty CreateTopics response");
      const TopicError& e = r->topics.front();
      if (e.error != ErrorCode::kNone) {
        if (is_retriable(e.error) && core_.backoff(deadline_ms)) continue;
        return Error::of(e.error, e.error_message.empty() ? "create topic " + spec.name : e.error_message);
      }
      return await_metadata(spec.name, true, deadline_ms);
    }
    if (!core_.backoff(deadline_ms)) return Error::of(ErrorCode::kTimedOut, "create topic " + spec.name + " timed out");
  }
}

Status SimAdmin::delete_topic(const std::string& name, int64_t timeout_ms) {
  const int64_t deadline_ms = core_.now_ms() + timeout_ms;
  while (true) {
    DeleteTopicsRequest req;
    req.topics.push_back(name);
    auto r = core_.call_as<DeleteTopicsResponse>(core_.next_bootstrap_broker(), std::move(req),
                                                 std::min<int64_t>(deadline_ms - core_.now_ms(), 5000));
    if (r.ok()) {
      if (r->topics.empty()) return Error::of(ErrorCode::kInvalidRequest, "empty DeleteTopics response");
      const TopicError& e = r->topics.front();
      if (e.error != ErrorCode::kNone) {
        if (is_retriable(e.error) && e.error != ErrorCode::kUnknownTopicOrPartition && core_.backoff(deadline_ms))
          continue;
        return Error::of(e.error, e.error_message.empty() ? "delete topic " + name : e.error_message);
      }
      return await_metadata(name, false, deadline_ms);
    }
    if (!core_.backoff(deadline_ms)) return Error::of(ErrorCode::kTimedOut, "delete topic " + name + " timed out");
  }
}

Status SimAdmin::await_metadata(const std::string& name, bool exists, int64_t deadline_ms) {
  while (true) {
    auto md = core_.refresh_metadata(std::vector<std::string>{name}, deadline_ms);
    if (md.ok() && !md->topics.empty() && (md->topics.front().error == ErrorCode::kNone) == exists)
      return {};
    if (!core_.backoff(deadline_ms))
      return Error::of(ErrorCode::kTimedOut, "topic " + name + " metadata did not settle in time");
  }
}

Result<TopicDescription> SimAdmin::describe_topic(const std::string& name, int64_t timeout_ms) {
  auto md = core_.refresh_metadata(std::vector<std::string>{name}, core_.now_ms() + timeout_ms);
  if (!md.ok()) return md.error();
  if (md->topics.empty()) return Error::of(ErrorCode::kUnknownTopicOrPartition, "unknown topic " + name);
  const auto& t = md->topics.front();
  if (t.error != ErrorCode::kNone) return Error::of(t.error, "describe topic " + name);
  TopicDescription out;
  out.name = t.name;
  for (const auto& p : t.partitions) {
    out.partitions.push_back({p.partition, p.leader, p.replicas, p.isr});
  }
  std::sort(out.partitions.begin(), out.partitions.end(),
            [](const auto& a, const auto& b) { return a.partition < b.partition; });
  return out;
}

Result<std::vector<std::string>> SimAdmin::list_topics(int64_t timeout_ms) {
  auto md = core_.refresh_metadata(std::nullopt, core_.now_ms() + timeout_ms);
  if (!md.ok()) return md.error();
  std::vector<std::string> names;
  for (const auto& t : md->topics)
    if (!t.is_internal && t.error == ErrorCode::kNone) names.push_back(t.name);
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace mephisto::sim
