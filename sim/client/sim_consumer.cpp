#include "sim/client/sim_consumer.h"

#include <algorithm>
#include <cassert>
#include <deque>
#include <set>

#include "sim/client/assignors.h"
#include "sim/client/client_core.h"
#include "sim/history.h"
#include "sim/sim_kafka.h"

namespace mephisto::sim {
namespace {

constexpr int64_t kFarFutureMs = INT64_MAX / 4;
// How long one Fetch may wait at the broker for data (fetch.wait.max.ms; librdkafka's default is 500).
constexpr int32_t kFetchMaxWaitMs = 500;

// fetch.wait.max.ms from the client's extra properties (checked as a number by check_extra), else the default.
int32_t fetch_max_wait_ms(const ConsumerConfig& config) {
  auto found = config.extra.find("fetch.wait.max.ms");
  if (found == config.extra.end()) return kFetchMaxWaitMs;
  return static_cast<int32_t>(std::stol(found->second));
}

// Group membership phases of the member fiber.
enum class Phase {
  kIdle,          // not subscribed
  kNeedJoin,      // must (re)join once poll() has served pending callbacks
  kStable,        // member of the current generation; heartbeating
  kLeftMaxPoll,   // left the group because poll() was not called within max.poll.interval; rejoin on next poll
};

struct PartitionFetch {
  std::optional<int64_t> fetch_offset;  // next offset to fetch; nullopt until resolved (committed / reset)
  bool reset_only = false;              // resolve by auto.offset.reset, not the committed offset (out of range)
  bool paused = false;
  bool fetch_in_flight = false;
  // The fetch version (librdkafka's per-partition fetch/op version): a response is used only if it was asked
  // for under the partition's current version. Every seek and every (re)assignment takes a new version from
  // the consumer-wide counter (State::last_fetch_version), never 0 again: a partition revoked and assigned
  // back while a Fetch from its old position was in flight must not accept that Fetch's records at its new
  // position.
  uint64_t fetch_version = 0;
  // Fetched, filtered, not yet returned by poll(): ranges of the broker's (shared, immutable) record batches.
  // ConsumerRecords are built straight into poll()'s result, so each record is copied once.
  struct Chunk {
    std::shared_ptr<const std::vector<Record>> records;
    int64_t base_offset = 0;
    size_t next = 0;         // first record not yet returned
    int64_t min_offset = 0;  // records below this offset are not returned
  };
  std::deque<Chunk> buffer;
  [[nodiscard]] int64_t buffered_front_offset() const {
    const Chunk& c = buffer.front();
    return c.base_offset + (*c.records)[c.next].offset_delta;
  }
};

std::vector<TopicPartition> sorted_unique(std::vector<TopicPartition> v) {
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
  return v;
}

}  // namespace

struct SimConsumer::State {
  State(SimKafka& kafka, ProcessContext& process, ConsumerConfig cfg)
      : core(kafka, process, cfg.client_id), config(std::move(cfg)), history(kafka.history()) {
    if (history != nullptr) history_client = history->new_client();
  }

  ClientCore core;
  ConsumerConfig config;
  bool closed = false;
  // The run's history (sim/history.h), taken from the SimKafka at creation; nullptr: nothing is recorded.
  History* history = nullptr;
  uint64_t history_client = 0;

  // --- group membership
  std::vector<std::string> subscription;
  RebalanceListener* listener = nullptr;
  Phase phase = Phase::kIdle;
  std::string member_id;
  int32_t generation = -1;
  FiberId member_fiber = kNoFiber;
  uint64_t member_epoch = 0;  // bumped by unsubscribe/close so an old member fiber exits
  int64_t last_poll_ms = 0;
  bool rejoin_after_revoke = false;  // cooperative: the second rebalance after giving partitions up
  std::vector<TopicPartition> pending_lost, pending_revoke, pending_assign;
  // The generation pending_assign came from: the member may rejoin before poll() hands the partitions over.
  int32_t pending_assign_generation = -1;

  // --- assignment and fetching
  std::map<TopicPartition, PartitionFetch> assigned;
  uint64_t last_fetch_version = 0;  // the consumer-wide fetch version counter (PartitionFetch::fetch_version)
  FiberId poller = kNoFiber;
  std::optional<Error> poll_error;
  size_t rr_cursor = 0;  // fairness across partitions when filling a poll batch

  [[nodiscard]] int64_t now_ms() const { return core.now_ms(); }
  // The fetch state of a partition that was just assigned: position unresolved, under a version no Fetch in
  // flight can carry.
  [[nodiscard]] PartitionFetch new_partition_fetch() {
    PartitionFetch pf;
    pf.fetch_version = ++last_fetch_version;
    return pf;
  }
  [[nodiscard]] bool cooperative() const {
    return config.assignment_strategy == AssignmentStrategy::kCooperativeSticky;
  }
  [[nodiscard]] bool has_pending_events() const {
    return !pending_lost.empty() || !pending_revoke.empty() || !pending_assign.empty();
  }
  void wake_member() {
    if (member_fiber != kNoFiber) core.scheduler().wake(member_fiber);
  }
  void wake_poller() {
    if (poller != kNoFiber) core.scheduler().wake(poller);
  }
  void log(const std::string& kind, const std::string& detail) {
    core.kafka().executor().log().record(core.kafka().executor().now_ms(), core.process().name(), kind,
                                         config.group_id + " " + detail);
  }

  // Only called when history != nullptr, so an unrecorded run pays one null check per site.
  HistoryEvent history_event(HistoryKind kind, const TopicPartition& tp, int64_t offset) {
    HistoryEvent e = stamped_event(kind, core.kafka().executor().now_ms(), core.process(), history_client);
    e.tp = tp;
    e.offset = offset;
    e.read_committed = config.isolation_level == IsolationLevel::kReadCommitted;
    e.group = config.group_id;
    return e;
  }
  void record_partitions(HistoryKind kind, const std::vector<TopicPartition>& tps, int32_t generation_id,
                         const char* detail) {
    if (history == nullptr) return;
    for (const auto& tp : tps) {
      HistoryEvent e = history_event(kind, tp, -1);
      e.generation = generation_id;
      e.detail = detail;
      history->add(std::move(e));
    }
  }
  void record_positioned(const TopicPartition& tp, int64_t offset, const char* how) {
    if (history == nullptr) return;
    HistoryEvent e = history_event(HistoryKind::kPositioned, tp, offset);
    e.detail = how;
    history->add(std::move(e));
  }

  void member_loop(uint64_t epoch);
  void join_group();
  void heartbeat_once();
  void leave_group();
  void mark_lost(const std::string& why);
  void serve_rebalance_events();
  void resolve_positions(int64_t deadline_ms);
  void send_fetches();
  void on_fetch_response(BrokerId broker, const std::vector<std::pair<TopicPartition, uint64_t>>& asked,
                         Result<Response> r);
  std::vector<ConsumerRecord> take_buffered();
  [[nodiscard]] std::vector<TopicPartition> assignment_list() const {
    std::vector<TopicPartition> out;
    for (const auto& [tp, _] : assigned) out.push_back(tp);
    return out;
  }
};

SimConsumer::SimConsumer(SimKafka& kafka, ProcessContext& process, ConsumerConfig config)
    : state_(std::make_shared<State>(kafka, process, std::move(config))) {}

SimConsumer::~SimConsumer() {
  state_->closed = true;
  ++state_->member_epoch;
  state_->wake_member();
}

// ------------------------------------------------------------------------------------------------------------
// Group membership (member fiber)

void SimConsumer::State::member_loop(uint64_t epoch) {
  int64_t last_heartbeat_ms = now_ms();
  while (!closed && epoch == member_epoch) {
    switch (phase) {
      case Phase::kIdle:
        return;
      case Phase::kLeftMaxPoll:
        core.scheduler().park_until(kFarFutureMs);
        break;
      case Phase::kNeedJoin: {
        // Eager protocols give everything up before rejoining; both wait until poll() served the callbacks,
        // so the application can commit in its revoke callback (as with librdkafka).
        if (!cooperative() && !assigned.empty() && pending_revoke.empty() && pending_lost.empty()) {
          for (const auto& [tp, _] : assigned) pending_revoke.push_back(tp);
          wake_poller();
        }
        if (has_pending_events()) {
          core.scheduler().park_until(kFarFutureMs);
          break;
        }
        join_group();
        last_heartbeat_ms = now_ms();
        break;
      }
      case Phase::kStable: {
        const int64_t next_ms = last_heartbeat_ms + config.heartbeat_interval_ms;
        if (now_ms() < next_ms) {
          core.scheduler().park_until(next_ms);
          break;
        }
        last_heartbeat_ms = now_ms();
        if (now_ms() - last_poll_ms > config.max_poll_interval_ms) {
          log("max-poll-exceeded", member_id);
          leave_group();
          mark_lost("max.poll.interval.ms exceeded");
          phase = Phase::kLeftMaxPoll;
          break;
        }
        heartbeat_once();
        break;
      }
    }
  }
}

void SimConsumer::State::mark_lost(const std::string& why) {
  log("lost", member_id + " " + why);
  pending_revoke.clear();
  pending_assign.clear();
  pending_lost.clear();
  for (const auto& [tp, _] : assigned) pending_lost.push_back(tp);
  generation = -1;
  wake_poller();
}

void SimConsumer::State::heartbeat_once() {
  auto coordinator = core.find_coordinator(config.group_id, CoordinatorType::kGroup, now_ms() + config.session_timeout_ms);
  if (!coordinator.ok()) return;
  auto r = core.call_as<HeartbeatResponse>(
      *coordinator, HeartbeatRequest{config.group_id, generation, member_id, config.group_instance_id},
      config.session_timeout_ms);
  const ErrorCode err = r.ok() ? r->error : r.error().code;
  switch (err) {
    case ErrorCode::kNone:
      return;
    case ErrorCode::kRebalanceInProgress:
      log("rebalance", member_id + " generation " + std::to_string(generation));
      phase = Phase::kNeedJoin;
      return;
    case ErrorCode::kUnknownMemberId:
    case ErrorCode::kIllegalGeneration:
    case ErrorCode::kFencedInstanceId:
      if (err == ErrorCode::kUnknownMemberId) member_id.clear();
      mark_lost(std::string("heartbeat: ") + std::string(error_name(err)));
      phase = Phase::kNeedJoin;
      return;
    default:
      if (is_coordinator_error(err)) core.invalidate_coordinator(config.group_id, CoordinatorType::kGroup);
      return;
  }
}

void SimConsumer::State::join_group() {
  auto coordinator = core.find_coordinator(config.group_id, CoordinatorType::kGroup, now_ms() + config.session_timeout_ms);
  if (!coordinator.ok()) {
    core.backoff(kFarFutureMs);
    return;
  }
  JoinGroupRequest join;
  join.group_id = config.group_id;
  join.session_timeout_ms = static_cast<int32_t>(config.session_timeout_ms);
  join.rebalance_timeout_ms = static_cast<int32_t>(config.max_poll_interval_ms);
  join.member_id = member_id;
  join.group_instance_id = config.group_instance_id;
  Subscription sub;
  sub.topics = subscription;
  sub.generation_id = generation;
  if (cooperative())
    for (const auto& [tp, _] : assigned) sub.owned_partitions.push_back(tp);
  join.protocols.push_back({assignment_strategy_name(config.assignment_strategy), sub});
  const uint64_t epoch = member_epoch;
  auto jr = core.call_as<JoinGroupResponse>(*coordinator, std::move(join), config.max_poll_interval_ms + 5000);
  if (closed || epoch != member_epoch) return;
  const ErrorCode jerr = jr.ok() ? jr->error : jr.error().code;
  if (jerr != ErrorCode::kNone) {
    if (jerr == ErrorCode::kUnknownMemberId) member_id.clear();
    if (jerr == ErrorCode::kMemberIdRequired && jr.ok()) member_id = jr->member_id;
    if (is_coordinator_error(jerr)) core.invalidate_coordinator(config.group_id, CoordinatorType::kGroup);
    if (jerr == ErrorCode::kInconsistentGroupProtocol || jerr == ErrorCode::kInvalidSessionTimeout ||
        jerr == ErrorCode::kInvalidGroupId || jerr == ErrorCode::kFencedInstanceId) {
      poll_error = Error::of(jerr, "JoinGroup rejected");
      wake_poller();
    }
    core.backoff(kFarFutureMs);
    return;
  }
  member_id = jr->member_id;
  const int32_t join_generation = jr->generation_id;

  SyncGroupRequest sync;
  sync.group_id = config.group_id;
  sync.generation_id = join_generation;
  sync.member_id = member_id;
  sync.group_instance_id = config.group_instance_id;
  sync.protocol_name = jr->protocol_name;
  if (jr->leader == member_id) {
    // The leader computes the assignment client-side, as Kafka consumers do.
    std::map<std::string, MemberSubscription> members;
    std::vector<std::string> topics;
    for (const auto& m : jr->members) {
      members[m.member_id] = {m.metadata.topics, m.metadata.owned_partitions};
      topics.insert(topics.end(), m.metadata.topics.begin(), m.metadata.topics.end());
    }
    std::sort(topics.begin(), topics.end());
    topics.erase(std::unique(topics.begin(), topics.end()), topics.end());
    auto md = core.refresh_metadata(topics, now_ms() + config.session_timeout_ms);
    TopicPartitionCounts counts;
    if (md.ok())
      for (const auto& t : md->topics)
        if (t.error == ErrorCode::kNone) counts[t.name] = static_cast<int32_t>(t.partitions.size());
    const GroupAssignment a = sim::assign(config.assignment_strategy, members, counts);
    for (const auto& [id, parts] : a) sync.assignments.push_back({id, {parts, {}}});
  }
  auto sr = core.call_as<SyncGroupResponse>(*coordinator, std::move(sync), config.session_timeout_ms);
  if (closed || epoch != member_epoch) return;
  const ErrorCode serr = sr.ok() ? sr->error : sr.error().code;
  if (serr != ErrorCode::kNone) {
    if (serr == ErrorCode::kUnknownMemberId) member_id.clear();
    if (is_coordinator_error(serr)) core.invalidate_coordinator(config.group_id, CoordinatorType::kGroup);
    phase = Phase::kNeedJoin;
    return;
  }
  generation = join_generation;
  const auto target = sorted_unique(sr->assignment.partitions);
  std::vector<TopicPartition> owned;
  for (const auto& [tp, _] : assigned) owned.push_back(tp);
  std::vector<TopicPartition> revoked, added;
  std::set_difference(owned.begin(), owned.end(), target.begin(), target.end(), std::back_inserter(revoked));
  std::set_difference(target.begin(), target.end(), owned.begin(), owned.end(), std::back_inserter(added));
  pending_revoke = revoked;
  pending_assign = added;
  pending_assign_generation = generation;
  // Cooperative: partitions given up now are handed to their new owner by a follow-up rebalance (KIP-429).
  rejoin_after_revoke = cooperative() && !revoked.empty();
  std::string detail = member_id + " generation " + std::to_string(generation) + " assigned";
  for (const auto& tp : target) detail += " " + tp.topic + "-" + std::to_string(tp.partition);
  log("assignment", detail);
  phase = Phase::kStable;
  wake_poller();
}

void SimConsumer::State::leave_group() {
  if (member_id.empty()) return;
  auto coordinator = core.find_coordinator(config.group_id, CoordinatorType::kGroup, now_ms() + 5000);
  if (coordinator.ok()) {
    LeaveGroupRequest req;
    req.group_id = config.group_id;
    req.members.push_back({member_id, config.group_instance_id});
    (void)core.call(*coordinator, std::move(req), 5000);
  }
  log("leave", member_id);
  member_id.clear();
  generation = -1;
}

// ------------------------------------------------------------------------------------------------------------
// Subscription and assignment

Status SimConsumer::subscribe(const std::vector<std::string>& topics, RebalanceListener* listener) {
  State& s = *state_;
  if (s.closed) return Error::of(ErrorCode::kDestroy, "consumer is closed");
  if (s.config.group_id.empty()) return Error::of(ErrorCode::kInvalidArg, "subscribe() needs a group_id");
  if (topics.empty()) return Error::of(ErrorCode::kInvalidArg, "subscribe() needs at least one topic");
  if (!s.subscription.empty() || s.phase != Phase::kIdle) {
    if (auto st = unsubscribe(); !st.ok()) return st;
  }
  if (!s.assigned.empty() && s.phase == Phase::kIdle) {  // manual assignment replaced
    if (s.history != nullptr) s.record_partitions(HistoryKind::kRevoked, s.assignment_list(), -1, "");
    s.assigned.clear();
  }
  s.subscription = topics;
  std::sort(s.subscription.begin(), s.subscription.end());
  s.subscription.erase(std::unique(s.subscription.begin(), s.subscription.end()), s.subscription.end());
  s.listener = listener;
  s.phase = Phase::kNeedJoin;
  s.last_poll_ms = s.now_ms();
  const uint64_t epoch = ++s.member_epoch;
  std::shared_ptr<State> keep = state_;
  s.member_fiber =
      s.core.scheduler().spawn(s.config.client_id + "/member", [keep, epoch] { keep->member_loop(epoch); });
  return {};
}

Status SimConsumer::unsubscribe() {
  State& s = *state_;
  if (s.phase == Phase::kIdle) return {};
  std::vector<TopicPartition> owned;
  for (const auto& [tp, _] : s.assigned) owned.push_back(tp);
  s.assigned.clear();
  s.pending_assign.clear();
  s.pending_revoke.clear();
  s.pending_lost.clear();
  if (!owned.empty() && s.listener) s.listener->on_partitions_revoked(owned);
  s.record_partitions(HistoryKind::kRevoked, owned, -1, "");
  ++s.member_epoch;
  s.wake_member();
  s.phase = Phase::kIdle;
  s.leave_group();
  s.subscription.clear();
  s.member_fiber = kNoFiber;
  return {};
}

// As librdkafka's rd_kafka_assign(): the new list replaces the whole assignment. A partition in both lists is
// stopped and started again too: its position is resolved anew (committed offset, else auto.offset.reset),
// its buffered records and any Fetch in flight are dropped, and a pause ends with the old assignment.
Status SimConsumer::assign(const std::vector<TopicPartition>& partitions) {
  State& s = *state_;
  if (s.closed) return Error::of(ErrorCode::kDestroy, "consumer is closed");
  if (s.phase != Phase::kIdle) return Error::of(ErrorCode::kState, "assign() while subscribed");
  const std::vector<TopicPartition> next = sorted_unique(partitions);
  if (s.history != nullptr) {
    s.record_partitions(HistoryKind::kRevoked, s.assignment_list(), -1, "");
    s.record_partitions(HistoryKind::kAssigned, next, -1, "");
  }
  s.assigned.clear();
  for (const auto& tp : next) s.assigned.emplace(tp, s.new_partition_fetch());
  return {};
}

std::vector<TopicPartition> SimConsumer::assignment() const {
  std::vector<TopicPartition> out;
  for (const auto& [tp, _] : state_->assigned) out.push_back(tp);
  return out;
}

void SimConsumer::State::serve_rebalance_events() {
  if (!pending_lost.empty()) {
    auto lost = std::move(pending_lost);
    pending_lost.clear();
    for (const auto& tp : lost) assigned.erase(tp);
    record_partitions(HistoryKind::kRevoked, lost, -1, "lost");
    if (listener) listener->on_partitions_lost(lost);
    wake_member();
  }
  if (!pending_revoke.empty()) {
    auto revoked = std::move(pending_revoke);
    pending_revoke.clear();
    if (listener) listener->on_partitions_revoked(revoked);
    for (const auto& tp : revoked) assigned.erase(tp);
    record_partitions(HistoryKind::kRevoked, revoked, -1, "");
    if (rejoin_after_revoke) {
      rejoin_after_revoke = false;
      phase = Phase::kNeedJoin;
    }
    wake_member();
  }
  if (!pending_assign.empty()) {
    auto added = std::move(pending_assign);
    pending_assign.clear();
    // Positions resolve before the next fetch; a partition already held keeps its fetch state.
    for (const auto& tp : added) {
      if (assigned.count(tp) == 0) assigned.emplace(tp, new_partition_fetch());
    }
    record_partitions(HistoryKind::kAssigned, added, pending_assign_generation, "");
    if (listener) listener->on_partitions_assigned(added);
    wake_member();
  }
}

// ------------------------------------------------------------------------------------------------------------
// Positions and fetching

void SimConsumer::State::resolve_positions(int64_t deadline_ms) {
  std::vector<TopicPartition> from_committed, by_reset;
  for (auto& [tp, pf] : assigned) {
    if (pf.fetch_offset) continue;
    if (pf.reset_only || config.group_id.empty()) by_reset.push_back(tp);
    else from_committed.push_back(tp);
  }
  if (!from_committed.empty()) {
    auto coordinator = core.find_coordinator(config.group_id, CoordinatorType::kGroup, deadline_ms);
    if (!coordinator.ok()) return;
    OffsetFetchRequest req{config.group_id, from_committed, config.isolation_level == IsolationLevel::kReadCommitted};
    auto r = core.call_as<OffsetFetchResponse>(*coordinator, std::move(req), std::max<int64_t>(deadline_ms - now_ms(), 1000));
    if (!r.ok() || r->error != ErrorCode::kNone) {
      if (!r.ok() || is_coordinator_error(r->error))
        core.invalidate_coordinator(config.group_id, CoordinatorType::kGroup);
      return;
    }
    for (const auto& p : r->partitions) {
      auto it = assigned.find(p.tp);
      if (it == assigned.end() || it->second.fetch_offset) continue;
      if (p.error == ErrorCode::kUnstableOffsetCommit) continue;  // a transactional commit is pending: ask later
      if (p.error == ErrorCode::kNone && p.offset >= 0) {
        it->second.fetch_offset = p.offset;
        record_positioned(p.tp, p.offset, "committed");
      } else {
        by_reset.push_back(p.tp);
      }
    }
  }
  for (const auto& tp : by_reset) {
    auto it = assigned.find(tp);
    if (it == assigned.end()) continue;
    if (config.auto_offset_reset == OffsetReset::kError) {
      poll_error = Error::of(ErrorCode::kNoOffset, "no committed offset for " + tp.topic + "-" +
                                                       std::to_string(tp.partition) + " and auto.offset.reset=error");
      continue;
    }
    BrokerId leader = core.leader_of(tp);
    if (leader == kNoBroker) {
      (void)core.refresh_metadata(std::vector<std::string>{tp.topic}, deadline_ms);
      leader = core.leader_of(tp);
      if (leader == kNoBroker) continue;
    }
    ListOffsetsRequest req;
    req.isolation_level = config.isolation_level;
    req.partitions.push_back(
        {tp, config.auto_offset_reset == OffsetReset::kEarliest ? kEarliestTimestamp : kLatestTimestamp});
    auto r = core.call_as<ListOffsetsResponse>(leader, std::move(req), std::max<int64_t>(deadline_ms - now_ms(), 1000));
    if (!r.ok() || r->partitions.empty() || r->partitions.front().error != ErrorCode::kNone) {
      core.invalidate_leader(tp);
      continue;
    }
    it = assigned.find(tp);
    if (it == assigned.end()) continue;
    it->second.fetch_offset = r->partitions.front().offset;
    it->second.reset_only = false;
    record_positioned(tp, r->partitions.front().offset, "reset");
  }
}

void SimConsumer::State::send_fetches() {
  std::map<BrokerId, std::vector<std::pair<TopicPartition, uint64_t>>> by_leader;
  std::vector<std::string> need_metadata;
  for (auto& [tp, pf] : assigned) {
    if (pf.paused || pf.fetch_in_flight || !pf.fetch_offset || !pf.buffer.empty()) continue;
    const BrokerId leader = core.leader_of(tp);
    if (leader == kNoBroker) {
      need_metadata.push_back(tp.topic);
      continue;
    }
    by_leader[leader].push_back({tp, pf.fetch_version});
  }
  if (!need_metadata.empty()) {
    std::sort(need_metadata.begin(), need_metadata.end());
    need_metadata.erase(std::unique(need_metadata.begin(), need_metadata.end()), need_metadata.end());
    (void)core.refresh_metadata(need_metadata, now_ms() + 5000);
  }
  for (auto& [leader, parts] : by_leader) {
    FetchRequest req;
    req.max_wait_ms = fetch_max_wait_ms(config);
    req.isolation_level = config.isolation_level;
    for (const auto& [tp, _] : parts) {
      PartitionFetch& pf = assigned[tp];
      pf.fetch_in_flight = true;
      req.partitions.push_back({tp, *pf.fetch_offset, 1048576});
    }
    core.send(leader, std::move(req), fetch_max_wait_ms(config) + 30000,
              [this, leader, parts](Result<Response> r) { on_fetch_response(leader, parts, std::move(r)); });
  }
}

void SimConsumer::State::on_fetch_response(BrokerId broker, const std::vector<std::pair<TopicPartition, uint64_t>>& asked,
                                           Result<Response> r) {
  for (const auto& [tp, version] : asked) {
    auto it = assigned.find(tp);
    if (it != assigned.end() && it->second.fetch_version == version) it->second.fetch_in_flight = false;
  }
  if (!r.ok()) {
    for (const auto& [tp, _] : asked) core.invalidate_leader(tp);
    (void)broker;
    wake_poller();
    return;
  }
  const auto& resp = std::get<FetchResponse>(r.value());
  for (size_t i = 0; i < resp.partitions.size() && i < asked.size(); ++i) {
    const auto& pd = resp.partitions[i];
    auto it = assigned.find(pd.tp);
    if (it == assigned.end() || it->second.fetch_version != asked[i].second || !it->second.fetch_offset)
      continue;
    PartitionFetch& pf = it->second;
    if (pd.error != ErrorCode::kNone) {
      if (pd.error == ErrorCode::kOffsetOutOfRange) {
        pf.fetch_offset.reset();
        pf.reset_only = true;
      } else {
        core.invalidate_leader(pd.tp);
      }
      continue;
    }
    // read_committed: skip transactional batches of producers whose transaction aborted (Kafka's client-side
    // algorithm: an aborted producer's batches are skipped from its first_offset until its abort marker).
    std::vector<AbortedTransaction> aborted = pd.aborted_transactions;
    std::sort(aborted.begin(), aborted.end(),
              [](const auto& a, const auto& b) { return a.first_offset < b.first_offset; });
    size_t next_aborted = 0;
    std::set<int64_t> aborted_producers;
    const bool read_committed = config.isolation_level == IsolationLevel::kReadCommitted;
    int64_t offset = *pf.fetch_offset;
    for (const auto& batch : pd.batches) {
      if (batch.next_offset() <= offset) continue;
      while (next_aborted < aborted.size() && aborted[next_aborted].first_offset <= batch.last_offset())
        aborted_producers.insert(aborted[next_aborted++].producer_id);
      if (batch.is_control()) {
        if (batch.control == ControlType::kAbort) aborted_producers.erase(batch.producer_id);
        offset = batch.next_offset();
        continue;
      }
      if (read_committed && batch.is_transactional && aborted_producers.count(batch.producer_id) > 0) {
        offset = batch.next_offset();
        continue;
      }
      if (batch.records) {
        const auto& recs = *batch.records;
        size_t first = 0;
        while (first < recs.size() && batch.base_offset + recs[first].offset_delta < offset) ++first;
        if (first < recs.size()) pf.buffer.push_back(PartitionFetch::Chunk{batch.records, batch.base_offset, first, offset});
      }
      offset = batch.next_offset();
    }
    pf.fetch_offset = offset;
  }
  wake_poller();
}

std::vector<ConsumerRecord> SimConsumer::State::take_buffered() {
  std::vector<ConsumerRecord> out;
  const auto limit = static_cast<size_t>(std::max(config.max_poll_records, 1));
  if (assigned.empty()) return out;
  // Start at a rotating partition so one busy partition cannot starve the others.
  std::vector<std::pair<const TopicPartition*, PartitionFetch*>> order;
  order.reserve(assigned.size());
  size_t available = 0;
  for (auto& [tp, pf] : assigned) {
    order.emplace_back(&tp, &pf);
    if (!pf.paused)
      for (const auto& c : pf.buffer) available += c.records->size() - c.next;
  }
  const size_t start = rr_cursor++ % order.size();
  if (available == 0) return out;
  out.reserve(std::min(limit, available));
  for (size_t k = 0; k < order.size() && out.size() < limit; ++k) {
    const auto& [tp, pfp] = order[(start + k) % order.size()];
    PartitionFetch& pf = *pfp;
    if (pf.paused) continue;
    while (!pf.buffer.empty() && out.size() < limit) {
      PartitionFetch::Chunk& c = pf.buffer.front();
      const auto& recs = *c.records;
      while (c.next < recs.size() && out.size() < limit) {
        const Record& rec = recs[c.next++];
        const int64_t rec_offset = c.base_offset + rec.offset_delta;
        if (rec_offset < c.min_offset) continue;
        ConsumerRecord& cr = out.emplace_back();
        cr.topic = tp->topic;
        cr.partition = tp->partition;
        cr.offset = rec_offset;
        cr.key = rec.key;
        cr.value = rec.value;
        cr.headers = rec.headers;
        cr.timestamp_ms = rec.timestamp_ms;
      }
      if (c.next >= recs.size()) pf.buffer.pop_front();
    }
  }
  return out;
}

Result<std::vector<ConsumerRecord>> SimConsumer::poll(int64_t timeout_ms) {
  State& s = *state_;
  if (s.closed) return Error::of(ErrorCode::kDestroy, "consumer is closed");
  const int64_t deadline_ms = s.now_ms() + timeout_ms;
  s.last_poll_ms = s.now_ms();
  if (s.phase == Phase::kLeftMaxPoll) {
    s.phase = Phase::kNeedJoin;
    s.wake_member();
  }
  while (true) {
    s.serve_rebalance_events();
    if (s.poll_error) {
      Error e = *s.poll_error;
      s.poll_error.reset();
      return e;
    }
    s.resolve_positions(deadline_ms);
    if (s.poll_error) continue;
    auto batch = s.take_buffered();
    if (!batch.empty()) {
      if (s.history != nullptr) {
        for (const auto& cr : batch) {
          HistoryEvent e =
              s.history_event(HistoryKind::kPolled, TopicPartition{cr.topic, cr.partition}, cr.offset);
          e.key = cr.key;
          e.value = cr.value;
          s.history->add(std::move(e));
        }
      }
      return batch;
    }
    s.send_fetches();
    if (s.now_ms() >= deadline_ms) return std::vector<ConsumerRecord>{};
    s.poller = s.core.scheduler().current();
    // Unresolved positions are retried after a backoff rather than spinning.
    bool unresolved = false;
    for (const auto& [tp, pf] : s.assigned) unresolved = unresolved || !pf.fetch_offset;
    s.core.scheduler().park_until(unresolved ? std::min(deadline_ms, s.now_ms() + kRetryBackoffMs) : deadline_ms);
    s.poller = kNoFiber;
    s.last_poll_ms = s.now_ms();
    if (s.closed) return Error::of(ErrorCode::kDestroy, "consumer closed during poll");
  }
}

Status SimConsumer::seek(const TopicPartition& tp, int64_t offset) {
  auto it = state_->assigned.find(tp);
  if (it == state_->assigned.end()) return Error::of(ErrorCode::kState, "seek() on a partition that is not assigned");
  if (offset < 0) return Error::of(ErrorCode::kInvalidArg, "seek() to a negative offset");
  PartitionFetch& pf = it->second;
  pf.fetch_offset = offset;
  pf.reset_only = false;
  pf.buffer.clear();
  pf.fetch_in_flight = false;
  pf.fetch_version = ++state_->last_fetch_version;
  state_->record_positioned(tp, offset, "seek");
  return {};
}

Result<int64_t> SimConsumer::position(const TopicPartition& tp) {
  auto it = state_->assigned.find(tp);
  if (it == state_->assigned.end()) return Error::of(ErrorCode::kState, "position() of a partition that is not assigned");
  const PartitionFetch& pf = it->second;
  if (!pf.buffer.empty()) return pf.buffered_front_offset();
  if (pf.fetch_offset) return *pf.fetch_offset;
  return Error::of(ErrorCode::kNoOffset, "position not known yet (poll first)");
}

Status SimConsumer::pause(const std::vector<TopicPartition>& partitions) {
  for (const auto& tp : partitions) {
    auto it = state_->assigned.find(tp);
    if (it == state_->assigned.end()) return Error::of(ErrorCode::kState, "pause() of a partition that is not assigned");
    it->second.paused = true;
  }
  return {};
}

Status SimConsumer::resume(const std::vector<TopicPartition>& partitions) {
  for (const auto& tp : partitions) {
    auto it = state_->assigned.find(tp);
    if (it == state_->assigned.end()) return Error::of(ErrorCode::kState, "resume() of a partition that is not assigned");
    it->second.paused = false;
  }
  return {};
}

// ------------------------------------------------------------------------------------------------------------
// Offsets

Status SimConsumer::commit(const std::map<TopicPartition, int64_t>& offsets, int64_t timeout_ms) {
  State& s = *state_;
  if (s.closed) return Error::of(ErrorCode::kDestroy, "consumer is closed");
  if (s.config.group_id.empty()) return Error::of(ErrorCode::kInvalidArg, "commit() needs a group_id");
  if (offsets.empty()) return {};
  const int64_t deadline_ms = s.now_ms() + timeout_ms;
  // The commit speaks for the membership it was called in, on every retry: a commit that waits out a
  // coordinator outage while the member is removed and rejoins must not land under the new generation (the
  // partitions may now be someone else's, and the offsets would move their committed position back). The
  // coordinator rejects the old identity (ILLEGAL_GENERATION / UNKNOWN_MEMBER_ID), as it rejects librdkafka's
  // commit after a lost session.
  const bool member = s.phase != Phase::kIdle;
  const int32_t generation_id = member ? s.generation : -1;
  const std::string member_id = member ? s.member_id : "";
  while (true) {
    auto coordinator = s.core.find_coordinator(s.config.group_id, CoordinatorType::kGroup, deadline_ms);
    ErrorCode err = coordinator.ok() ? ErrorCode::kNone : coordinator.error().code;
    if (coordinator.ok()) {
      OffsetCommitRequest req;
      req.group_id = s.config.group_id;
      req.generation_id = generation_id;
      req.member_id = member_id;
      req.group_instance_id = s.config.group_instance_id;
      for (const auto& [tp, offset] : offsets) req.offsets.push_back({tp, offset, -1, {}});
      auto r = s.core.call_as<OffsetCommitResponse>(*coordinator, std::move(req),
                                                    std::max<int64_t>(deadline_ms - s.now_ms(), 1));
      err = r.ok() ? ErrorCode::kNone : r.error().code;
      if (r.ok())
        for (const auto& p : r->partitions)
          if (p.error != ErrorCode::kNone) err = p.error;
      if (err == ErrorCode::kNone) {
        if (s.history != nullptr)
          for (const auto& [tp, offset] : offsets)
            s.history->add(s.history_event(HistoryKind::kOffsetsCommitted, tp, offset));
        std::string detail = "commit";
        for (const auto& [tp, offset] : offsets)
          detail += " " + tp.topic + "-" + std::to_string(tp.partition) + "@" + std::to_string(offset);
        s.log("commit", detail);
        return {};
      }
    }
    if (err == ErrorCode::kIllegalGeneration || err == ErrorCode::kUnknownMemberId ||
        err == ErrorCode::kRebalanceInProgress || err == ErrorCode::kFencedInstanceId) {
      s.log("commit-rejected", std::string(error_name(err)));
      return Error::of(err, "commit rejected: this member's generation is stale");
    }
    if (is_coordinator_error(err)) s.core.invalidate_coordinator(s.config.group_id, CoordinatorType::kGroup);
    if (!(is_coordinator_error(err) || is_retriable(err))) return Error::of(err, "commit failed");
    if (!s.core.backoff(deadline_ms)) return Error{ErrorCode::kTimedOut, "commit timed out", true, false, false};
  }
}

Result<std::map<TopicPartition, int64_t>> SimConsumer::committed(const std::vector<TopicPartition>& partitions,
                                                                 int64_t timeout_ms) {
  State& s = *state_;
  if (s.config.group_id.empty()) return Error::of(ErrorCode::kInvalidArg, "committed() needs a group_id");
  const int64_t deadline_ms = s.now_ms() + timeout_ms;
  while (true) {
    auto coordinator = s.core.find_coordinator(s.config.group_id, CoordinatorType::kGroup, deadline_ms);
    ErrorCode err = coordinator.ok() ? ErrorCode::kNone : coordinator.error().code;
    if (coordinator.ok()) {
      OffsetFetchRequest req{s.config.group_id, partitions,
                             s.config.isolation_level == IsolationLevel::kReadCommitted};
      auto r = s.core.call_as<OffsetFetchResponse>(*coordinator, std::move(req),
                                                   std::max<int64_t>(deadline_ms - s.now_ms(), 1));
      err = r.ok() ? r->error : r.error().code;
      if (err == ErrorCode::kNone) {
        std::map<TopicPartition, int64_t> out;
        for (const auto& p : r->partitions) {
          if (p.error != ErrorCode::kNone) err = p.error;
          else if (p.offset >= 0) out[p.tp] = p.offset;
        }
        if (err == ErrorCode::kNone) return out;
      }
    }
    if (is_coordinator_error(err)) s.core.invalidate_coordinator(s.config.group_id, CoordinatorType::kGroup);
    const bool retry = is_coordinator_error(err) || err == ErrorCode::kUnstableOffsetCommit || is_retriable(err);
    if (!retry) return Error::of(err, "committed() failed");
    if (!s.core.backoff(deadline_ms)) return Error{err, "committed() did not settle in time", true, false, false};
  }
}

Result<std::pair<int64_t, int64_t>> SimConsumer::watermarks(const TopicPartition& tp, int64_t timeout_ms) {
  State& s = *state_;
  const int64_t deadline_ms = s.now_ms() + timeout_ms;
  while (true) {
    BrokerId leader = s.core.leader_of(tp);
    if (leader == kNoBroker) {
      auto md = s.core.refresh_metadata(std::vector<std::string>{tp.topic}, deadline_ms);
      if (s.core.known_missing(tp.topic)) return Error::of(ErrorCode::kUnknownTopicOrPartition, "unknown topic " + tp.topic);
      leader = s.core.leader_of(tp);
    }
    if (leader != kNoBroker) {
      ListOffsetsRequest req;
      req.isolation_level = s.config.isolation_level;
      req.partitions.push_back({tp, kEarliestTimestamp});
      req.partitions.push_back({tp, kLatestTimestamp});
      auto r = s.core.call_as<ListOffsetsResponse>(leader, std::move(req), std::max<int64_t>(deadline_ms - s.now_ms(), 1));
      if (r.ok() && r->partitions.size() == 2 && r->partitions[0].error == ErrorCode::kNone &&
          r->partitions[1].error == ErrorCode::kNone)
        return std::pair<int64_t, int64_t>{r->partitions[0].offset, r->partitions[1].offset};
      s.core.invalidate_leader(tp);
    }
    if (!s.core.backoff(deadline_ms)) return Error{ErrorCode::kTimedOut, "watermarks timed out", true, false, false};
  }
}

GroupMetadata SimConsumer::group_metadata() const {
  const State& s = *state_;
  return {s.config.group_id, s.generation, s.member_id, s.config.group_instance_id};
}

Status SimConsumer::close() {
  State& s = *state_;
  if (s.closed) return {};
  auto st = unsubscribe();
  if (s.history != nullptr) s.record_partitions(HistoryKind::kRevoked, s.assignment_list(), -1, "");
  s.assigned.clear();
  s.closed = true;
  s.wake_poller();
  return st;
}

}  // namespace mephisto::sim
