// Cluster: construction, request dispatch, Metadata/CreateTopics/DeleteTopics, faults, and the controller's
// leader elections. The controller is modelled as an always-available quorum outside the brokers (KRaft-like):
// it sees broker crashes (after broker_session_timeout_ms) and elects leaders instantly.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cassert>
#include <climits>

#include "sim/cluster/cluster_impl.h"

namespace mephisto::sim {

using internal_records::kOffsetsTopic;
using internal_records::kTransactionStateTopic;

// ---------------------------------------------------------------------------------------------------------------
// Partition helpers

bool Partition::in_isr(BrokerId broker) const { return std::find(isr.begin(), isr.end(), broker) != isr.end(); }

bool Partition::has_replica(BrokerId broker) const {
  return std::find(replicas.begin(), replicas.end(), broker) != replicas.end();
}

int64_t Partition::last_stable_offset() const {
  if (leader == kNoBroker) return -1;
  const Replica& r = replica.at(leader);
  return std::min(r.high_watermark, r.log.first_unstable_offset());
}

ErrorCode coordinator_write_error(ErrorCode error) {
  switch (error) {
    case ErrorCode::kNotEnoughReplicas:
    case ErrorCode::kNotEnoughReplicasAfterAppend:
    case ErrorCode::kRequestTimedOut:
    case ErrorCode::kUnknownTopicOrPartition:
      return ErrorCode::kCoordinatorNotAvailable;
    case ErrorCode::kNotLeaderOrFollower:
      return ErrorCode::kNotCoordinator;
    case ErrorCode::kMessageTooLarge:
    case ErrorCode::kRecordListTooLarge:
      return ErrorCode::kInvalidCommitOffsetSize;
    default:
      return error;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Construction

Cluster::Impl::Impl(Executor& executor_in, ClusterConfig config_in)
    : executor(executor_in), config(std::move(config_in)), rng(executor_in.random().fork("cluster")) {
  assert(config.brokers >= 1 && "a cluster needs at least one broker");
  assert(config.offsets_topic_partitions >= 1 && config.transaction_state_partitions >= 1);
  assert(config.replica_latency_min_ms >= 0 && config.replica_latency_min_ms <= config.replica_latency_max_ms);
  brokers.resize(static_cast<size_t>(config.brokers));
  group_shards.resize(static_cast<size_t>(config.offsets_topic_partitions));
  for (size_t i = 0; i < group_shards.size(); ++i) group_shards[i].partition = static_cast<int32_t>(i);
  txn_shards.resize(static_cast<size_t>(config.transaction_state_partitions));
  for (size_t i = 0; i < txn_shards.size(); ++i) txn_shards[i].partition = static_cast<int32_t>(i);
}

Cluster::Cluster(Executor& executor, ClusterConfig config)
    : impl_(std::make_unique<Impl>(executor, std::move(config))) {
  Impl& c = *impl_;
  c.log_controller("start", fmt::format("brokers {}", c.config.brokers));
  const auto internal_rf = [&](int16_t rf) { return static_cast<int16_t>(std::min<int32_t>(rf, c.config.brokers)); };
  std::string message;
  TopicSpec offsets{std::string(kOffsetsTopic), c.config.offsets_topic_partitions,
                    internal_rf(c.config.offsets_topic_replication_factor),
                    {{"cleanup.policy", "compact"},
                     {"min.insync.replicas",
                      std::to_string(std::min<int32_t>(c.config.min_insync_replicas,
                                                       internal_rf(c.config.offsets_topic_replication_factor)))}}};
  [[maybe_unused]] ErrorCode e1 = c.create_topic(offsets, InternalKind::kOffsets, false, message);
  assert(e1 == ErrorCode::kNone && "creating __consumer_offsets");
  TopicSpec txns{std::string(kTransactionStateTopic), c.config.transaction_state_partitions,
                 internal_rf(c.config.transaction_state_replication_factor),
                 {{"cleanup.policy", "compact"},
                  {"min.insync.replicas",
                   std::to_string(std::min<int32_t>(c.config.transaction_state_min_isr,
                                                    internal_rf(c.config.transaction_state_replication_factor)))}}};
  [[maybe_unused]] ErrorCode e2 = c.create_topic(txns, InternalKind::kTransactions, false, message);
  assert(e2 == ErrorCode::kNone && "creating __transaction_state");
  c.ensure_replica_fetchers();

  // Periodic duties: the leaders' ISR shrink check (every replica.lag.time.max.ms / 2, as Kafka), the
  // transaction timeout scan, the log cleaner.
  c.every(std::max<int64_t>(1, c.config.replica_lag_time_max_ms / 2), [&c] { c.check_isr(); });
  c.every(c.config.transaction_abort_scan_interval_ms, [&c] { c.scan_transaction_timeouts(); });
  c.every(c.config.log_cleaner_interval_ms, [&c] { c.run_cleaner(); });
}

Cluster::~Cluster() = default;

// ---------------------------------------------------------------------------------------------------------------
// Plumbing

void Cluster::Impl::log(BrokerId broker, std::string_view kind, std::string_view detail) {
  executor.log().record(now(), fmt::format("broker-{}", broker), kind, detail);
}

void Cluster::Impl::log_controller(std::string_view kind, std::string_view detail) {
  executor.log().record(now(), "controller", kind, detail);
}

void Cluster::Impl::every(int64_t interval_ms, std::function<void()> fn) {
  schedule(interval_ms, [this, interval_ms, fn = std::move(fn)]() mutable {
    fn();
    every(interval_ms, std::move(fn));
  });
}

TimerId Cluster::Impl::schedule(int64_t delay_ms, std::function<void()> fn) {
  return executor.after(delay_ms, kWorld, [weak = std::weak_ptr<int>(life), fn = std::move(fn)] {
    if (!weak.expired()) fn();
  });
}

bool Cluster::Impl::alive(BrokerId broker) const {
  return broker >= 1 && broker <= config.brokers && broker_state(broker).alive;
}

Responder Cluster::Impl::guard(BrokerId broker, Responder respond) {
  const uint32_t incarnation = broker_state(broker).incarnation;
  return [this, broker, incarnation, weak = std::weak_ptr<int>(life), respond = std::move(respond)](Response r) {
    if (weak.expired()) return;
    const BrokerState& state = broker_state(broker);
    // A broker that crashed after receiving the request never answers it.
    if (!state.alive || state.incarnation != incarnation) return;
    respond(std::move(r));
  };
}

bool Cluster::Impl::reachable(BrokerId from, BrokerId to) const {
  return from == to || !link_filter || link_filter(from, to);
}

int64_t Cluster::Impl::replica_latency_ms() {
  return rng.between(config.replica_latency_min_ms, config.replica_latency_max_ms);
}

Partition* Cluster::Impl::find_partition(const TopicPartition& tp) {
  const auto it = topics.find(tp.topic);
  if (it == topics.end() || tp.partition < 0 || tp.partition >= static_cast<int32_t>(it->second.partitions.size())) {
    return nullptr;
  }
  return it->second.partitions[static_cast<size_t>(tp.partition)].get();
}

const Partition* Cluster::Impl::find_partition(const TopicPartition& tp) const {
  return const_cast<Impl*>(this)->find_partition(tp);
}

PartitionPtr Cluster::Impl::partition_ptr(const TopicPartition& tp) {
  const auto it = topics.find(tp.topic);
  if (it == topics.end() || tp.partition < 0 || tp.partition >= static_cast<int32_t>(it->second.partitions.size())) {
    return nullptr;
  }
  return it->second.partitions[static_cast<size_t>(tp.partition)];
}

// ---------------------------------------------------------------------------------------------------------------
// Dispatch

void Cluster::handle(BrokerId to, RequestHeader header, Request request, Responder respond) {
  Impl& c = *impl_;
  if (!c.alive(to)) return;  // a crashed broker never answers
  Responder reply = c.guard(to, std::move(respond));
  const ApiKey key = api_key(request);
  if (auto it = c.injected_errors.find(key); it != c.injected_errors.end() && !it->second.empty()) {
    const ErrorCode error = it->second.front();
    it->second.pop_front();
    c.log(to, "inject", fmt::format("{} -> {}", api_name(key), error_name(error)));
    reply(error_response(request, error));
    return;
  }
  std::visit(
      [&](auto&& r) {
        using T = std::decay_t<decltype(r)>;
        if constexpr (std::is_same_v<T, MetadataRequest>) {
          MetadataResponse out;
          for (BrokerId b = 1; b <= c.config.brokers; ++b) out.brokers.push_back({b, c.alive(b)});
          for (BrokerId b = 1; b <= c.config.brokers; ++b) {
            if (c.alive(b)) {
              out.controller_id = b;
              break;
            }
          }
          const auto describe = [&](const Topic& topic) {
            MetadataResponse::Topic t;
            t.name = topic.name;
            t.is_internal = topic.internal != InternalKind::kNone;
            for (const auto& p : topic.partitions) {
              MetadataResponse::Partition mp;
              mp.partition = p->tp.partition;
              mp.leader = p->leader;
              mp.leader_epoch = p->leader_epoch;
              mp.replicas = p->replicas;
              mp.isr = p->isr;
              for (BrokerId b : p->replicas) {
                if (!c.alive(b)) mp.offline_replicas.push_back(b);
              }
              if (p->leader == kNoBroker) mp.error = ErrorCode::kLeaderNotAvailable;
              t.partitions.push_back(std::move(mp));
            }
            return t;
          };
          if (r.topics) {
            for (const auto& name : *r.topics) {
              const auto it = c.topics.find(name);
              if (it == c.topics.end()) {
                MetadataResponse::Topic t;
                t.name = name;
                t.error = c.validate_topic_name(name) != ErrorCode::kNone ? ErrorCode::kInvalidTopicException
                                                                           : ErrorCode::kUnknownTopicOrPartition;
                out.topics.push_back(std::move(t));
              } else {
                out.topics.push_back(describe(it->second));
              }
            }
          } else {
            for (const auto& [name, topic] : c.topics) out.topics.push_back(describe(topic));
          }
          reply(std::move(out));
        } else if constexpr (std::is_same_v<T, CreateTopicsRequest>) {
          CreateTopicsResponse out;
          for (const TopicSpec& spec : r.topics) {
            std::string message;
            const ErrorCode error = c.create_topic(spec, InternalKind::kNone, r.validate_only, message);
            out.topics.push_back({spec.name, error, std::move(message)});
          }
          c.ensure_replica_fetchers();
          reply(std::move(out));
        } else if constexpr (std::is_same_v<T, DeleteTopicsRequest>) {
          DeleteTopicsResponse out;
          for (const std::string& name : r.topics) {
            const auto it = c.topics.find(name);
            if (it == c.topics.end()) {
              out.topics.push_back({name, ErrorCode::kUnknownTopicOrPartition, "unknown topic"});
            } else if (it->second.internal != InternalKind::kNone) {
              out.topics.push_back({name, ErrorCode::kInvalidTopicException, "internal topics cannot be deleted"});
            } else {
              c.delete_topic(name);
              out.topics.push_back({name, ErrorCode::kNone, ""});
            }
          }
          reply(std::move(out));
        } else if constexpr (std::is_same_v<T, ProduceRequest>) {
          c.handle_produce(to, header, std::move(r), std::move(reply));
        } else if constexpr (std::is_same_v<T, FetchRequest>) {
          c.handle_fetch(to, std::move(r), std::move(reply));
        } else if constexpr (std::is_same_v<T, ListOffsetsRequest>) {
          c.handle_list_offsets(to, r, std::move(reply));
        } else if constexpr (std::is_same_v<T, FindCoordinatorRequest>) {
          FindCoordinatorResponse out;
          if (r.key.empty() && r.key_type == CoordinatorType::kGroup) {
            out.error = ErrorCode::kInvalidGroupId;
          } else {
            const BrokerId leader = coordinator(r.key_type, r.key);
            if (leader == kNoBroker || !c.alive(leader)) {
              out.error = ErrorCode::kCoordinatorNotAvailable;
            } else {
              out.node_id = leader;
            }
          }
          reply(std::move(out));
        } else if constexpr (std::is_same_v<T, InitProducerIdRequest>) {
          c.handle_init_producer_id(to, r, std::move(reply));
        } else if constexpr (std::is_same_v<T, AddPartitionsToTxnRequest>) {
          c.handle_add_partitions_to_txn(to, r, std::move(reply));
        } else if constexpr (std::is_same_v<T, AddOffsetsToTxnRequest>) {
          c.handle_add_offsets_to_txn(to, r, std::move(reply));
        } else if constexpr (std::is_same_v<T, EndTxnRequest>) {
          c.handle_end_txn(to, r, std::move(reply));
        } else if constexpr (std::is_same_v<T, TxnOffsetCommitRequest>) {
          c.handle_txn_offset_commit(to, r, std::move(reply));
        } else if constexpr (std::is_same_v<T, JoinGroupRequest>) {
          c.handle_join_group(to, header, std::move(r), std::move(reply));
        } else if constexpr (std::is_same_v<T, SyncGroupRequest>) {
          c.handle_sync_group(to, std::move(r), std::move(reply));
        } else if constexpr (std::is_same_v<T, HeartbeatRequest>) {
          c.handle_heartbeat(to, r, std::move(reply));
        } else if constexpr (std::is_same_v<T, LeaveGroupRequest>) {
          c.handle_leave_group(to, r, std::move(reply));
        } else if constexpr (std::is_same_v<T, OffsetCommitRequest>) {
          c.handle_offset_commit(to, r, std::move(reply));
        } else {
          static_assert(std::is_same_v<T, OffsetFetchRequest>);
          c.handle_offset_fetch(to, r, std::move(reply));
        }
      },
      request);
}

// ---------------------------------------------------------------------------------------------------------------
// Topics

ErrorCode Cluster::Impl::validate_topic_name(const std::string& name) const {
  if (name.empty() || name == "." || name == ".." || name.size() > 249) return ErrorCode::kInvalidTopicException;
  for (char ch : name) {
    const bool legal = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                       ch == '.' || ch == '_' || ch == '-';
    if (!legal) return ErrorCode::kInvalidTopicException;
  }
  return ErrorCode::kNone;
}

namespace {

bool parse_int64(const std::string& s, int64_t& out) {
  if (s.empty()) return false;
  size_t i = (s[0] == '-') ? 1 : 0;
  if (i == s.size()) return false;
  int64_t v = 0;
  for (; i < s.size(); ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    if (v > (INT64_MAX - (s[i] - '0')) / 10) return false;
    v = v * 10 + (s[i] - '0');
  }
  out = s[0] == '-' ? -v : v;
  return true;
}

}  // namespace

ErrorCode Cluster::Impl::parse_topic_configs(const std::map<std::string, std::string>& configs, TopicConfig& out,
                                             std::string& message) const {
  // Configs accepted but with no effect on the model (see README): storage layout, retention, compression.
  static const std::map<std::string, int64_t> kNumericMinimum = {
      {"retention.ms", -1},        {"retention.bytes", -1},         {"segment.ms", 1},
      {"segment.bytes", 14},       {"max.compaction.lag.ms", 1},    {"flush.messages", 1},
      {"flush.ms", 0},             {"file.delete.delay.ms", 0},     {"index.interval.bytes", 0},
      {"segment.index.bytes", 4},  {"segment.jitter.ms", 0},        {"local.retention.ms", -2},
      {"local.retention.bytes", -2}, {"message.timestamp.difference.max.ms", 0}};
  for (const auto& [key, value] : configs) {
    int64_t n = 0;
    const auto bad = [&](std::string_view why) {
      message = fmt::format("invalid value '{}' for config {}: {}", value, key, why);
      return ErrorCode::kInvalidConfig;
    };
    if (key == "cleanup.policy") {
      if (value == "delete") {
        out.compact = false;
      } else if (value == "compact" || value == "compact,delete" || value == "delete,compact") {
        out.compact = true;
      } else {
        return bad("expected delete, compact or compact,delete");
      }
    } else if (key == "min.insync.replicas") {
      if (!parse_int64(value, n) || n < 1 || n > INT32_MAX) return bad("expected an integer >= 1");
      out.min_insync_replicas = static_cast<int32_t>(n);
    } else if (key == "max.message.bytes") {
      if (!parse_int64(value, n) || n < 0 || n > INT32_MAX) return bad("expected an integer >= 0");
      out.max_message_bytes = static_cast<int32_t>(n);
    } else if (key == "unclean.leader.election.enable") {
      if (value != "true" && value != "false") return bad("expected true or false");
      out.unclean_leader_election = value == "true";
    } else if (key == "delete.retention.ms") {
      if (!parse_int64(value, n) || n < 0) return bad("expected an integer >= 0");
      out.delete_retention_ms = n;
    } else if (key == "min.compaction.lag.ms") {
      if (!parse_int64(value, n) || n < 0) return bad("expected an integer >= 0");
      out.min_compaction_lag_ms = n;
    } else if (key == "message.timestamp.type") {
      if (value != "CreateTime" && value != "LogAppendTime") return bad("expected CreateTime or LogAppendTime");
    } else if (key == "compression.type") {
      static const std::vector<std::string> kTypes = {"uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"};
      if (std::find(kTypes.begin(), kTypes.end(), value) == kTypes.end()) return bad("unknown compression type");
    } else if (key == "preallocate" || key == "message.downconversion.enable") {
      if (value != "true" && value != "false") return bad("expected true or false");
    } else if (key == "min.cleanable.dirty.ratio") {
      // A ratio in [0, 1]; a plain check of the form "0.x" or "1".
      if (value.empty() || value.find_first_not_of("0123456789.") != std::string::npos) return bad("expected [0,1]");
    } else if (auto it = kNumericMinimum.find(key); it != kNumericMinimum.end()) {
      if (!parse_int64(value, n) || n < it->second) return bad(fmt::format("expected an integer >= {}", it->second));
    } else {
      message = fmt::format("unknown topic config {}", key);
      return ErrorCode::kInvalidConfig;
    }
  }
  return ErrorCode::kNone;
}

ErrorCode Cluster::Impl::create_topic(const TopicSpec& spec, InternalKind internal, bool validate_only,
                                      std::string& message) {
  if (validate_topic_name(spec.name) != ErrorCode::kNone) {
    message = "topic names are 1-249 characters of [a-zA-Z0-9._-], not '.' or '..'";
    return ErrorCode::kInvalidTopicException;
  }
  if (topics.count(spec.name) != 0) {
    message = fmt::format("topic {} already exists", spec.name);
    return ErrorCode::kTopicAlreadyExists;
  }
  // Kafka refuses names that collide once '.' and '_' are confused (metric names).
  const auto collision_key = [](std::string s) {
    std::replace(s.begin(), s.end(), '.', '_');
    return s;
  };
  for (const auto& [name, topic] : topics) {
    if (collision_key(name) == collision_key(spec.name)) {
      message = fmt::format("topic {} collides with existing topic {}", spec.name, name);
      return ErrorCode::kInvalidTopicException;
    }
  }
  const int32_t partitions = spec.partitions == -1 ? config.default_partitions : spec.partitions;
  if (partitions < 1) {
    message = "partitions must be >= 1";
    return ErrorCode::kInvalidPartitions;
  }
  std::vector<BrokerId> live;
  for (BrokerId b = 1; b <= config.brokers; ++b) {
    if (alive(b)) live.push_back(b);
  }
  const int32_t rf = spec.replication_factor == -1 ? config.default_replication_factor : spec.replication_factor;
  if (rf < 1 || rf > static_cast<int32_t>(live.size())) {
    message = fmt::format("replication factor {} but {} brokers are available", rf, live.size());
    return ErrorCode::kInvalidReplicationFactor;
  }
  auto topic_config = std::make_shared<TopicConfig>();
  topic_config->min_insync_replicas = config.min_insync_replicas;
  topic_config->max_message_bytes = config.max_message_bytes;
  topic_config->unclean_leader_election = config.unclean_leader_election;
  topic_config->delete_retention_ms = config.delete_retention_ms;
  topic_config->min_compaction_lag_ms = config.min_compaction_lag_ms;
  if (ErrorCode e = parse_topic_configs(spec.configs, *topic_config, message); e != ErrorCode::kNone) return e;
  if (validate_only) return ErrorCode::kNone;

  // Kafka's rack-unaware assignment (AdminUtils.assignReplicasToBrokersRackUnaware): a random start and shift.
  const auto n = static_cast<int32_t>(live.size());
  const auto start = static_cast<int32_t>(rng.below(static_cast<uint64_t>(n)));
  auto shift = static_cast<int32_t>(rng.below(static_cast<uint64_t>(n)));
  Topic topic;
  topic.name = spec.name;
  topic.internal = internal;
  topic.config = topic_config;
  topic.configs = spec.configs;
  for (int32_t p = 0; p < partitions; ++p) {
    if (p > 0 && p % n == 0) ++shift;
    const int32_t first = (p + start) % n;
    auto part = std::make_shared<Partition>();
    part->tp = TopicPartition{spec.name, p};
    part->uid = next_partition_uid++;
    part->internal = internal;
    part->config = topic_config;
    part->replicas.push_back(live[static_cast<size_t>(first)]);
    for (int32_t j = 0; j < rf - 1; ++j) {
      part->replicas.push_back(live[static_cast<size_t>((first + 1 + (shift + j) % (n - 1)) % n)]);
    }
    part->isr = part->replicas;
    for (BrokerId b : part->replicas) {
      Replica& r = part->replica[b];
      r.last_caught_up_ms = now();
      r.last_fetch_ms = now();
    }
    part->leader = part->replicas.front();
    part->leader_epoch = 0;
    part->replica[part->leader].reconciled_epoch = 0;
    topic.partitions.push_back(std::move(part));
  }
  log_controller("create", fmt::format("{} partitions={} rf={}{}", spec.name, partitions, rf,
                                       topic_config->compact ? " compact" : ""));
  auto& stored = topics.emplace(spec.name, std::move(topic)).first->second;
  for (auto& p : stored.partitions) {
    log_controller("leader", fmt::format("{}-{} leader={} epoch={} replicas=[{}] isr=[{}] (create)", p->tp.topic,
                                         p->tp.partition, p->leader, p->leader_epoch, fmt::join(p->replicas, ","),
                                         fmt::join(p->isr, ",")));
    if (internal == InternalKind::kOffsets) load_group_shard(group_shards[static_cast<size_t>(p->tp.partition)], *p);
    if (internal == InternalKind::kTransactions) load_txn_shard(txn_shards[static_cast<size_t>(p->tp.partition)], *p);
  }
  return ErrorCode::kNone;
}

void Cluster::Impl::delete_topic(const std::string& name) {
  auto it = topics.find(name);
  assert(it != topics.end());
  for (auto& p : it->second.partitions) {
    p->deleted = true;
    fail_acks_waiters(*p, ErrorCode::kUnknownTopicOrPartition);
  }
  Topic doomed = std::move(it->second);
  topics.erase(it);
  // Parked fetches re-evaluate against the topic map, where the topic no longer is.
  for (auto& p : doomed.partitions) wake_fetch_waits(*p);
  log_controller("delete", name);
}

// ---------------------------------------------------------------------------------------------------------------
// Controller: failures and elections

void Cluster::Impl::change_leader(Partition& p, BrokerId leader, std::string_view reason) {
  p.leader = leader;
  ++p.leader_epoch;
  fail_acks_waiters(p, ErrorCode::kNotLeaderOrFollower);
  if (leader != kNoBroker) {
    Replica& r = p.replica.at(leader);
    r.reconciled_epoch = p.leader_epoch;
    p.epoch_start_offset = r.log.log_end_offset();
    // The new leader starts from its own (follower) high watermark; it rises as the ISR fetches from it.
    r.high_watermark = std::min(r.high_watermark, r.log.log_end_offset());
    r.log.on_high_watermark(r.high_watermark);
    for (auto& [b, other] : p.replica) {
      if (b == leader) continue;
      other.fetched_leo = -1;
      other.last_caught_up_ms = now();
      other.last_fetch_ms = now();
      other.last_fetch_leader_leo = r.log.log_end_offset();
    }
  }
  log_controller("leader", fmt::format("{}-{} leader={} epoch={} isr=[{}] ({})", p.tp.topic, p.tp.partition, leader,
                                       p.leader_epoch, fmt::join(p.isr, ","), reason));
  wake_fetch_waits(p);
  if (p.internal == InternalKind::kOffsets) {
    GroupShard& shard = group_shards[static_cast<size_t>(p.tp.partition)];
    unload_group_shard(shard);
    if (leader != kNoBroker) load_group_shard(shard, p);
  } else if (p.internal == InternalKind::kTransactions) {
    TxnShard& shard = txn_shards[static_cast<size_t>(p.tp.partition)];
    unload_txn_shard(shard);
    if (leader != kNoBroker) load_txn_shard(shard, p);
  }
  if (leader != kNoBroker) maybe_advance_high_watermark(p);
}

void Cluster::Impl::handle_broker_failure(BrokerId broker) {
  BrokerState& state = broker_state(broker);
  if (!state.failover_pending) return;
  state.failover_pending = false;
  for_each_partition([&](Partition& p) {
    if (!p.has_replica(broker)) return;
    if (p.leader == broker) {
      BrokerId chosen = kNoBroker;
      for (BrokerId b : p.replicas) {
        if (b != broker && alive(b) && p.in_isr(b)) {
          chosen = b;
          break;
        }
      }
      if (chosen != kNoBroker) {
        p.isr.erase(std::remove(p.isr.begin(), p.isr.end(), broker), p.isr.end());
        change_leader(p, chosen, fmt::format("broker {} failed", broker));
      } else if (p.config->unclean_leader_election) {
        for (BrokerId b : p.replicas) {
          if (b != broker && alive(b)) {
            chosen = b;
            break;
          }
        }
        if (chosen != kNoBroker) {
          p.isr = {chosen};
          change_leader(p, chosen, fmt::format("broker {} failed, UNCLEAN election", broker));
        } else {
          change_leader(p, kNoBroker, fmt::format("broker {} failed, no live replica", broker));
        }
      } else {
        // Kafka keeps the last in-sync replica in the ISR so that it can lead again when it returns.
        change_leader(p, kNoBroker, fmt::format("broker {} failed, no live in-sync replica", broker));
      }
    } else if (p.in_isr(broker) && p.leader != kNoBroker) {
      p.isr.erase(std::remove(p.isr.begin(), p.isr.end(), broker), p.isr.end());
      log_controller("isr", fmt::format("{}-{} isr=[{}] (broker {} failed)", p.tp.topic, p.tp.partition,
                                        fmt::join(p.isr, ","), broker));
      maybe_advance_high_watermark(p);
    }
  });
  ensure_replica_fetchers();
}

void Cluster::crash_broker(BrokerId broker) {
  Impl& c = *impl_;
  assert(broker >= 1 && broker <= c.config.brokers && "crash_broker: no such broker");
  if (!c.alive(broker)) return;
  BrokerState& state = c.broker_state(broker);
  state.alive = false;
  ++state.incarnation;
  state.failover_pending = true;
  c.log(broker, "crash", "");
  c.kill_sessions_of(broker);
  // The broker's coordinators die with it (their in-memory state); they reload wherever leadership goes.
  for (auto& shard : c.group_shards) {
    if (shard.loaded && shard.broker == broker) c.unload_group_shard(shard);
  }
  for (auto& shard : c.txn_shards) {
    if (shard.loaded && shard.broker == broker) c.unload_txn_shard(shard);
  }
  if (c.config.broker_session_timeout_ms <= 0) {
    c.handle_broker_failure(broker);
  } else {
    const uint32_t incarnation = state.incarnation;
    c.schedule(c.config.broker_session_timeout_ms, [&c, broker, incarnation] {
      if (c.broker_state(broker).incarnation == incarnation) c.handle_broker_failure(broker);
    });
  }
}

void Cluster::restart_broker(BrokerId broker) {
  Impl& c = *impl_;
  assert(broker >= 1 && broker <= c.config.brokers && "restart_broker: no such broker");
  if (c.alive(broker)) return;
  c.handle_broker_failure(broker);  // if the controller had not noticed the crash yet, it does now
  BrokerState& state = c.broker_state(broker);
  state.alive = true;
  ++state.incarnation;
  c.log(broker, "restart", "");
  c.for_each_partition([&](Partition& p) {
    if (!p.has_replica(broker)) return;
    Replica& r = p.replica[broker];
    r.reconciled_epoch = -1;
    if (p.leader != kNoBroker) return;
    if (p.in_isr(broker)) {
      c.change_leader(p, broker, "last in-sync replica returned");
    } else if (p.config->unclean_leader_election) {
      p.isr = {broker};
      c.change_leader(p, broker, "replica returned, UNCLEAN election");
    }
  });
  c.ensure_replica_fetchers();
}

void Cluster::inject_errors(ApiKey api, ErrorCode error, int32_t count) {
  Impl& c = *impl_;
  for (int32_t i = 0; i < count; ++i) c.injected_errors[api].push_back(error);
  c.log_controller("inject", fmt::format("next {} {} -> {}", count, api_name(api), error_name(error)));
}

Status Cluster::move_leader(const TopicPartition& tp, BrokerId to) {
  Impl& c = *impl_;
  Partition* p = c.find_partition(tp);
  if (p == nullptr) return Error::of(ErrorCode::kUnknownTopicOrPartition, fmt::format("{}", tp.topic));
  BrokerId target = to;
  if (target == kNoBroker) {
    // The next live in-sync replica after the current leader, in replica order.
    const auto n = p->replicas.size();
    const auto pos = std::find(p->replicas.begin(), p->replicas.end(), p->leader) - p->replicas.begin();
    for (size_t i = 1; i <= n; ++i) {
      const BrokerId b = p->replicas[(static_cast<size_t>(pos) + i) % n];
      if (b != p->leader && c.alive(b) && p->in_isr(b)) {
        target = b;
        break;
      }
    }
  }
  if (target == kNoBroker || !c.alive(target) || !p->in_isr(target) || target == p->leader) {
    return Error::of(ErrorCode::kNotEnoughReplicas, "no live in-sync replica to move the leadership to");
  }
  c.change_leader(*p, target, "moved");
  c.ensure_replica_fetchers();
  return {};
}

Status Cluster::move_coordinator(CoordinatorType type, const std::string& key, BrokerId to) {
  const std::string topic(type == CoordinatorType::kGroup ? kOffsetsTopic : kTransactionStateTopic);
  return move_leader(TopicPartition{topic, coordinator_partition(type, key)}, to);
}

void Cluster::set_broker_link_filter(std::function<bool(BrokerId, BrokerId)> reachable) {
  impl_->link_filter = std::move(reachable);
}

Status Cluster::compact_now(const std::string& topic) {
  Impl& c = *impl_;
  const auto it = c.topics.find(topic);
  if (it == c.topics.end()) return Error::of(ErrorCode::kUnknownTopicOrPartition, topic);
  if (!it->second.config->compact) return Error::of(ErrorCode::kInvalidConfig, topic + " is not compacted");
  for (auto& p : it->second.partitions) (void)c.compact_partition(*p);
  return {};
}

// ---------------------------------------------------------------------------------------------------------------
// Introspection

const ClusterConfig& Cluster::config() const { return impl_->config; }

std::vector<BrokerId> Cluster::broker_ids() const {
  std::vector<BrokerId> out;
  for (BrokerId b = 1; b <= impl_->config.brokers; ++b) out.push_back(b);
  return out;
}

bool Cluster::broker_alive(BrokerId broker) const { return impl_->alive(broker); }

std::optional<PartitionState> Cluster::partition_state(const TopicPartition& tp) const {
  const Partition* p = impl_->find_partition(tp);
  if (p == nullptr) return std::nullopt;
  PartitionState out;
  out.tp = tp;
  out.leader = p->leader;
  out.leader_epoch = p->leader_epoch;
  out.replicas = p->replicas;
  out.isr = p->isr;
  if (p->leader != kNoBroker) {
    const Replica& r = p->replica.at(p->leader);
    out.high_watermark = r.high_watermark;
    out.last_stable_offset = p->last_stable_offset();
    out.log_start_offset = r.log.log_start_offset();
  }
  for (const auto& [b, r] : p->replica) out.log_end_offsets.emplace_back(b, r.log.log_end_offset());
  return out;
}

std::vector<RecordBatch> Cluster::replica_log(const TopicPartition& tp, BrokerId replica) const {
  const Partition* p = impl_->find_partition(tp);
  if (p == nullptr) return {};
  const auto it = p->replica.find(replica);
  if (it == p->replica.end()) return {};
  return it->second.log.batches();
}

int32_t Cluster::Impl::coordinator_partition(CoordinatorType type, const std::string& key) const {
  const int32_t partitions =
      type == CoordinatorType::kGroup ? config.offsets_topic_partitions : config.transaction_state_partitions;
  const int32_t hash = Cluster::java_string_hash(key);
  // Kafka's Utils.abs: abs(Integer.MIN_VALUE) is 0, not negative.
  const int32_t abs_hash = hash == INT32_MIN ? 0 : (hash < 0 ? -hash : hash);
  return abs_hash % partitions;
}

int32_t Cluster::coordinator_partition(CoordinatorType type, const std::string& key) const {
  return impl_->coordinator_partition(type, key);
}

BrokerId Cluster::coordinator(CoordinatorType type, const std::string& key) const {
  const std::string topic(type == CoordinatorType::kGroup ? kOffsetsTopic : kTransactionStateTopic);
  const Partition* p = impl_->find_partition(TopicPartition{topic, coordinator_partition(type, key)});
  return p == nullptr ? kNoBroker : p->leader;
}

std::vector<std::string> Cluster::topics() const {
  std::vector<std::string> out;
  for (const auto& [name, topic] : impl_->topics) {
    if (topic.internal == InternalKind::kNone) out.push_back(name);
  }
  return out;
}

int32_t Cluster::java_string_hash(std::string_view utf8) {
  uint32_t h = 0;
  const auto add = [&h](uint32_t unit) { h = 31 * h + unit; };
  size_t i = 0;
  while (i < utf8.size()) {
    const auto b0 = static_cast<uint8_t>(utf8[i]);
    uint32_t cp = 0xFFFD;  // what Java's decoder substitutes for malformed input
    size_t len = 1;
    const auto cont = [&](size_t k) {
      return i + k < utf8.size() && (static_cast<uint8_t>(utf8[i + k]) & 0xC0) == 0x80;
    };
    if (b0 < 0x80) {
      cp = b0;
    } else if ((b0 & 0xE0) == 0xC0 && cont(1)) {
      cp = ((b0 & 0x1Fu) << 6) | (static_cast<uint8_t>(utf8[i + 1]) & 0x3Fu);
      len = 2;
    } else if ((b0 & 0xF0) == 0xE0 && cont(1) && cont(2)) {
      cp = ((b0 & 0x0Fu) << 12) | ((static_cast<uint8_t>(utf8[i + 1]) & 0x3Fu) << 6) |
           (static_cast<uint8_t>(utf8[i + 2]) & 0x3Fu);
      len = 3;
    } else if ((b0 & 0xF8) == 0xF0 && cont(1) && cont(2) && cont(3)) {
      cp = ((b0 & 0x07u) << 18) | ((static_cast<uint8_t>(utf8[i + 1]) & 0x3Fu) << 12) |
           ((static_cast<uint8_t>(utf8[i + 2]) & 0x3Fu) << 6) | (static_cast<uint8_t>(utf8[i + 3]) & 0x3Fu);
      len = 4;
    }
    i += len;
    if (cp >= 0x10000) {  // a surrogate pair in UTF-16
      cp -= 0x10000;
      add(0xD800 + (cp >> 10));
      add(0xDC00 + (cp & 0x3FF));
    } else {
      add(cp);
    }
  }
  return static_cast<int32_t>(h);
}

}  // namespace mephisto::sim
