// The group coordinator (Kafka's classic consumer-group protocol), one shard per __consumer_offsets partition,
// living on that partition's leader. Membership is in memory (persisted at every completed rebalance, restored
// when another broker loads the shard); committed offsets are materialised from the log at its high watermark.
// The coordinator never computes assignments: the leader member does, and SyncGroup relays them.
//
// A rebalance: PreparingRebalance (members rejoin; completes when all known members have, or at the rebalance
// timeout, which kicks the missing) -> CompletingRebalance (new generation; JoinGroup answered, the leader gets
// the member list) -> Stable (the leader's SyncGroup assignments are persisted and handed out).
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cassert>

#include "sim/cluster/cluster_impl.h"

namespace mephisto::sim {

using internal_records::kOffsetsTopic;
using internal_records::OffsetValue;

std::string_view group_state_name(GroupState state) {
  switch (state) {
    case GroupState::kEmpty: return "Empty";
    case GroupState::kPreparingRebalance: return "PreparingRebalance";
    case GroupState::kCompletingRebalance: return "CompletingRebalance";
    case GroupState::kStable: return "Stable";
  }
  return "Unknown";
}

namespace {

bool same_subscription(const Subscription& a, const Subscription& b) {
  return a.topics == b.topics && a.owned_partitions == b.owned_partitions && a.user_data == b.user_data;
}

bool same_protocols(const std::vector<JoinGroupRequest::Protocol>& a, const std::vector<JoinGroupRequest::Protocol>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].name != b[i].name || !same_subscription(a[i].metadata, b[i].metadata)) return false;
  }
  return true;
}

// Protocols every member supports.
std::vector<std::string> candidate_protocols(const Group& group) {
  std::vector<std::string> candidates;
  bool first = true;
  for (const auto& [id, m] : group.members) {
    std::vector<std::string> names;
    for (const auto& p : m.protocols) names.push_back(p.name);
    std::sort(names.begin(), names.end());
    if (first) {
      candidates = std::move(names);
      first = false;
    } else {
      std::vector<std::string> both;
      std::set_intersection(candidates.begin(), candidates.end(), names.begin(), names.end(), std::back_inserter(both));
      candidates = std::move(both);
    }
  }
  return candidates;
}

// Kafka's selectProtocol: each member votes for its most preferred candidate; most votes wins (ties: by name).
std::string select_protocol(const Group& group) {
  const std::vector<std::string> candidates = candidate_protocols(group);
  std::map<std::string, int> votes;
  for (const auto& [id, m] : group.members) {
    for (const auto& p : m.protocols) {
      if (std::binary_search(candidates.begin(), candidates.end(), p.name)) {
        ++votes[p.name];
        break;
      }
    }
  }
  std::string best;
  int best_votes = -1;
  for (const auto& [name, n] : votes) {
    if (n > best_votes) {
      best = name;
      best_votes = n;
    }
  }
  return best;
}

const Subscription* metadata_for(const GroupMember& m, const std::string& protocol) {
  for (const auto& p : m.protocols) {
    if (p.name == protocol) return &p.metadata;
  }
  return nullptr;
}

}  // namespace

// ---------------------------------------------------------------------------------------------------------------
// Shards

GroupShard* Cluster::Impl::group_shard_on(BrokerId broker, const std::string& group_id, ErrorCode& error) {
  GroupShard& shard = group_shards[static_cast<size_t>(coordinator_partition(CoordinatorType::kGroup, group_id))];
  if (!shard.loaded || shard.broker != broker) {
    error = ErrorCode::kNotCoordinator;
    return nullptr;
  }
  error = ErrorCode::kNone;
  return &shard;
}

void Cluster::Impl::load_group_shard(GroupShard& shard, Partition& p) {
  assert(p.leader != kNoBroker);
  shard.loaded = true;
  shard.broker = p.leader;
  ++shard.load_id;
  shard.groups.clear();
  shard.txn_groups.clear();
  shard.applied_offset = p.leader_replica().log.log_start_offset();
  apply_group_batches(shard, p, true);
  size_t members = 0;
  for (auto& [id, group] : shard.groups) {
    for (auto& [member_id, m] : group.members) {
      arm_session_timer(shard, group, m);
      ++members;
    }
  }
  log(shard.broker, "group-load", fmt::format("{}-{}: {} groups, {} members", kOffsetsTopic, shard.partition,
                                              shard.groups.size(), members));
}

void Cluster::Impl::unload_group_shard(GroupShard& shard) {
  if (!shard.loaded) return;
  // Members waiting in JoinGroup/SyncGroup learn that this broker no longer coordinates (if it is still up).
  std::vector<std::pair<Responder, Response>> replies;
  for (auto& [id, group] : shard.groups) {
    for (auto& [member_id, m] : group.members) {
      if (m.join_responder) {
        JoinGroupResponse r;
        r.error = ErrorCode::kNotCoordinator;
        r.member_id = member_id;
        replies.emplace_back(std::move(m.join_responder), std::move(r));
      }
      if (m.sync_responder) {
        SyncGroupResponse r;
        r.error = ErrorCode::kNotCoordinator;
        replies.emplace_back(std::move(m.sync_responder), std::move(r));
      }
    }
  }
  shard.loaded = false;
  ++shard.load_id;
  shard.groups.clear();
  shard.txn_groups.clear();
  log(shard.broker, "group-unload", fmt::format("{}-{}", kOffsetsTopic, shard.partition));
  for (auto& [respond, response] : replies) respond(std::move(response));
}

void Cluster::Impl::apply_group_batches(GroupShard& shard, Partition& p, bool loading) {
  const Replica& lr = p.leader_replica();
  // A load replays the whole log (Kafka loads up to the log end: the new leader's log is what will be committed);
  // afterwards, writes apply once replicated.
  const int64_t upto = loading ? lr.log.log_end_offset() : lr.high_watermark;
  if (shard.applied_offset >= upto) return;
  std::vector<RecordBatch> batches;
  lr.log.read(shard.applied_offset, upto, INT32_MAX, true, batches);
  for (const RecordBatch& batch : batches) {
    if (batch.is_control()) {
      if (batch.base_offset < shard.applied_offset) continue;
      const auto it = shard.txn_groups.find(batch.producer_id);
      if (it == shard.txn_groups.end()) continue;
      const bool commit = batch.control == ControlType::kCommit;
      for (const std::string& group_id : it->second) {
        Group& group = shard.groups[group_id];
        auto pending = group.pending_txn_offsets.find(batch.producer_id);
        if (pending == group.pending_txn_offsets.end()) continue;
        if (commit) {
          for (auto& [tp, value] : pending->second) {
            group.offsets[tp] = value;
            if (!loading) {  // a load replays history; group-load summarises it
              log(shard.broker, "commit", fmt::format("{} {}-{}={} (txn pid={})", group_id, tp.topic, tp.partition,
                                                      value.offset, batch.producer_id));
            }
          }
        } else if (!loading) {
          log(shard.broker, "commit", fmt::format("{} dropped {} offsets (txn pid={} aborted)", group_id,
                                                  pending->second.size(), batch.producer_id));
        }
        group.pending_txn_offsets.erase(pending);
      }
      shard.txn_groups.erase(it);
      continue;
    }
    for (const Record& record : *batch.records) {
      if (batch.base_offset + record.offset_delta < shard.applied_offset || !record.key) continue;
      switch (internal_records::key_type(*record.key)) {
        case internal_records::KeyType::kOffset: {
          const auto key = internal_records::decode_offset_key(*record.key);
          Group& group = shard.groups[key.group];
          group.id = key.group;
          if (!record.value) {
            group.offsets.erase(key.tp);
          } else if (batch.is_transactional) {
            group.pending_txn_offsets[batch.producer_id][key.tp] = internal_records::decode_offset_value(*record.value);
            shard.txn_groups[batch.producer_id].insert(key.group);
          } else {
            const OffsetValue value = internal_records::decode_offset_value(*record.value);
            group.offsets[key.tp] = value;
            if (!loading) {
              log(shard.broker, "commit",
                  fmt::format("{} {}-{}={}", key.group, key.tp.topic, key.tp.partition, value.offset));
            }
          }
          break;
        }
        case internal_records::KeyType::kGroup: {
          // Live, the in-memory membership is authoritative; the record only matters to a (re)load.
          if (!loading || !record.value) break;
          const std::string id = internal_records::decode_group_key(*record.key);
          const auto value = internal_records::decode_group_value(*record.value);
          Group& group = shard.groups[id];
          group.id = id;
          group.protocol_type = value.protocol_type;
          group.generation_id = value.generation_id;
          group.protocol_name = value.protocol_name;
          group.leader = value.leader;
          group.members.clear();
          group.static_members.clear();
          for (const auto& mv : value.members) {
            GroupMember m;
            m.member_id = mv.member_id;
            m.group_instance_id = mv.group_instance_id;
            m.client_id = mv.client_id;
            m.session_timeout_ms = mv.session_timeout_ms;
            m.rebalance_timeout_ms = mv.rebalance_timeout_ms;
            m.assignment.partitions = mv.assignment;
            m.assignment.user_data = mv.assignment_user_data;
            m.session_deadline_ms = now() + mv.session_timeout_ms;
            m.join_order = next_member_number++;
            if (m.group_instance_id) group.static_members[*m.group_instance_id] = m.member_id;
            group.members.emplace(m.member_id, std::move(m));
          }
          group.state = group.members.empty() ? GroupState::kEmpty : GroupState::kStable;
          break;
        }
        case internal_records::KeyType::kTransaction:
          assert(false && "transaction records do not belong in __consumer_offsets");
          break;
      }
    }
  }
  shard.applied_offset = upto;
}

// ---------------------------------------------------------------------------------------------------------------
// Membership machinery

void Cluster::Impl::arm_session_timer(GroupShard& shard, Group& group, GroupMember& member) {
  if (member.session_timer_armed) return;
  member.session_timer_armed = true;
  const auto index = static_cast<size_t>(shard.partition);
  schedule(std::max<int64_t>(0, member.session_deadline_ms - now()),
           [this, index, load_id = shard.load_id, group_id = group.id, member_id = member.member_id] {
             GroupShard& s = group_shards[index];
             if (!s.loaded || s.load_id != load_id) return;
             auto g = s.groups.find(group_id);
             if (g == s.groups.end()) return;
             auto m = g->second.members.find(member_id);
             if (m == g->second.members.end()) return;
             m->second.session_timer_armed = false;
             // A member waiting in JoinGroup/SyncGroup is kept alive (Kafka's shouldKeepAlive).
             if (m->second.join_responder || m->second.sync_responder) {
               m->second.session_deadline_ms = now() + m->second.session_timeout_ms;
             }
             if (now() < m->second.session_deadline_ms) {
               arm_session_timer(s, g->second, m->second);
               return;
             }
             remove_member(s, g->second, member_id, "session timeout");
           });
}

void Cluster::Impl::arm_rebalance_timers(GroupShard& shard, Group& group) {
  const auto index = static_cast<size_t>(shard.partition);
  const auto check = [this, index, load_id = shard.load_id, group_id = group.id,
                      rebalance_id = group.rebalance_id](bool deadline) {
    GroupShard& s = group_shards[index];
    if (!s.loaded || s.load_id != load_id) return;
    auto g = s.groups.find(group_id);
    if (g == s.groups.end() || g->second.rebalance_id != rebalance_id ||
        g->second.state != GroupState::kPreparingRebalance) {
      return;
    }
    if (deadline) {
      complete_join(s, g->second);  // kicks whoever did not rejoin
    } else {
      maybe_complete_join(s, g->second);
    }
  };
  if (group.rebalance_not_before_ms > now()) {
    schedule(group.rebalance_not_before_ms - now(), [check] { check(false); });
  }
  schedule(std::max<int64_t>(0, group.rebalance_deadline_ms - now()), [check] { check(true); });
}

void Cluster::Impl::prepare_rebalance(GroupShard& shard, Group& group, std::string_view reason) {
  std::vector<Responder> syncs;
  if (group.state == GroupState::kCompletingRebalance) {
    for (auto& [id, m] : group.members) {
      if (m.sync_responder) syncs.push_back(std::move(m.sync_responder));
      m.sync_responder = nullptr;
    }
  }
  const bool from_empty = group.state == GroupState::kEmpty;
  group.state = GroupState::kPreparingRebalance;
  ++group.rebalance_id;
  int64_t rebalance_timeout_ms = 0;
  for (const auto& [id, m] : group.members) rebalance_timeout_ms = std::max<int64_t>(rebalance_timeout_ms, m.rebalance_timeout_ms);
  group.rebalance_deadline_ms = now() + rebalance_timeout_ms;
  // group.initial.rebalance.delay.ms: an empty group waits for more members before its first generation.
  group.rebalance_not_before_ms =
      from_empty ? std::min(now() + config.group_initial_rebalance_delay_ms, group.rebalance_deadline_ms) : now();
  log(shard.broker, "group", fmt::format("{} PreparingRebalance after generation {} ({})", group.id,
                                         group.generation_id, reason));
  arm_rebalance_timers(shard, group);
  for (auto& respond : syncs) {
    SyncGroupResponse r;
    r.error = ErrorCode::kRebalanceInProgress;
    respond(std::move(r));
  }
  maybe_complete_join(shard, group);
}

void Cluster::Impl::maybe_complete_join(GroupShard& shard, Group& group) {
  if (group.state != GroupState::kPreparingRebalance || now() < group.rebalance_not_before_ms) return;
  for (const auto& [id, m] : group.members) {
    if (!m.join_responder) return;
  }
  complete_join(shard, group);
}

void Cluster::Impl::complete_join(GroupShard& shard, Group& group) {
  std::vector<std::string> kicked;
  for (const auto& [id, m] : group.members) {
    if (!m.join_responder) kicked.push_back(id);
  }
  for (const auto& id : kicked) {
    const auto& m = group.members.at(id);
    if (m.group_instance_id) group.static_members.erase(*m.group_instance_id);
    group.members.erase(id);
    log(shard.broker, "group", fmt::format("{} member {} removed (did not rejoin within the rebalance timeout)",
                                           group.id, id));
  }
  ++group.generation_id;
  if (group.members.empty()) {
    group.state = GroupState::kEmpty;
    group.protocol_name.clear();
    group.leader.clear();
    log(shard.broker, "group", fmt::format("{} Empty generation {}", group.id, group.generation_id));
    return;
  }
  group.protocol_name = select_protocol(group);
  if (group.members.count(group.leader) == 0) {
    const auto first = std::min_element(group.members.begin(), group.members.end(), [](const auto& a, const auto& b) {
      return a.second.join_order < b.second.join_order;
    });
    group.leader = first->first;
  }
  group.state = GroupState::kCompletingRebalance;
  std::vector<JoinGroupResponse::Member> member_list;
  for (const auto& [id, m] : group.members) {
    const Subscription* metadata = metadata_for(m, group.protocol_name);
    member_list.push_back({id, m.group_instance_id, metadata ? *metadata : Subscription{}});
  }
  std::vector<std::string> ids;
  for (const auto& [id, m] : group.members) ids.push_back(id);
  log(shard.broker, "group", fmt::format("{} CompletingRebalance generation {} protocol {} leader {} members [{}]",
                                         group.id, group.generation_id, group.protocol_name, group.leader,
                                         fmt::join(ids, ",")));
  std::vector<std::pair<Responder, JoinGroupResponse>> replies;
  for (auto& [id, m] : group.members) {
    JoinGroupResponse r;
    r.generation_id = group.generation_id;
    r.protocol_type = group.protocol_type;
    r.protocol_name = group.protocol_name;
    r.leader = group.leader;
    r.member_id = id;
    if (id == group.leader) r.members = member_list;
    m.session_deadline_ms = now() + m.session_timeout_ms;
    replies.emplace_back(std::move(m.join_responder), std::move(r));
    m.join_responder = nullptr;
    arm_session_timer(shard, group, m);
  }
  for (auto& [respond, r] : replies) respond(std::move(r));
}

void Cluster::Impl::remove_member(GroupShard& shard, Group& group, const std::string& member_id,
                                  std::string_view reason) {
  auto it = group.members.find(member_id);
  if (it == group.members.end()) return;
  Responder join = std::move(it->second.join_responder);
  Responder sync = std::move(it->second.sync_responder);
  if (it->second.group_instance_id) group.static_members.erase(*it->second.group_instance_id);
  group.members.erase(it);
  log(shard.broker, "group", fmt::format("{} member {} removed ({})", group.id, member_id, reason));
  if (join) {
    JoinGroupResponse r;
    r.error = ErrorCode::kUnknownMemberId;
    join(std::move(r));
  }
  if (sync) {
    SyncGroupResponse r;
    r.error = ErrorCode::kUnknownMemberId;
    sync(std::move(r));
  }
  if (group.state == GroupState::kStable || group.state == GroupState::kCompletingRebalance) {
    prepare_rebalance(shard, group, fmt::format("member {} removed: {}", member_id, reason));
  } else if (group.state == GroupState::kPreparingRebalance) {
    maybe_complete_join(shard, group);
  }
}

ErrorCode Cluster::Impl::validate_member(const Group& group, const std::string& member_id,
                                         const std::optional<std::string>& instance_id, int32_t generation) const {
  if (instance_id) {
    const auto it = group.static_members.find(*instance_id);
    if (it != group.static_members.end() && it->second != member_id) return ErrorCode::kFencedInstanceId;
  }
  if (group.members.count(member_id) == 0) return ErrorCode::kUnknownMemberId;
  if (generation != group.generation_id) return ErrorCode::kIllegalGeneration;
  return ErrorCode::kNone;
}

// ---------------------------------------------------------------------------------------------------------------
// JoinGroup / SyncGroup / Heartbeat / LeaveGroup

void Cluster::Impl::handle_join_group(BrokerId to, const RequestHeader& header, JoinGroupRequest request,
                                      Responder respond) {
  const auto fail = [&](ErrorCode e) {
    JoinGroupResponse r;
    r.error = e;
    r.member_id = request.member_id;
    respond(std::move(r));
  };
  if (request.group_id.empty()) return fail(ErrorCode::kInvalidGroupId);
  ErrorCode error = ErrorCode::kNone;
  GroupShard* shard = group_shard_on(to, request.group_id, error);
  if (shard == nullptr) return fail(error);
  if (request.session_timeout_ms < config.group_min_session_timeout_ms ||
      request.session_timeout_ms > config.group_max_session_timeout_ms) {
    return fail(ErrorCode::kInvalidSessionTimeout);
  }
  if (request.protocol_type.empty() || request.protocols.empty()) return fail(ErrorCode::kInconsistentGroupProtocol);
  Group& group = shard->groups[request.group_id];
  group.id = request.group_id;
  if (!group.members.empty()) {
    // Kafka's supportsProtocols: same protocol type, and at least one protocol every member supports.
    if (group.protocol_type != request.protocol_type) return fail(ErrorCode::kInconsistentGroupProtocol);
    const std::vector<std::string> candidates = candidate_protocols(group);
    const bool shared = std::any_of(request.protocols.begin(), request.protocols.end(), [&](const auto& p) {
      return std::binary_search(candidates.begin(), candidates.end(), p.name);
    });
    if (!shared) return fail(ErrorCode::kInconsistentGroupProtocol);
  } else {
    group.protocol_type = request.protocol_type;
  }

  if (request.member_id.empty()) {
    std::string reason = "new member";
    if (request.group_instance_id) {
      // A static member restarting: the new instance takes over; the old member id is fenced.
      auto it = group.static_members.find(*request.group_instance_id);
      if (it != group.static_members.end()) {
        const std::string old_id = it->second;
        group.static_members.erase(it);
        auto old = group.members.find(old_id);
        if (old != group.members.end()) {
          Responder old_join = std::move(old->second.join_responder);
          Responder old_sync = std::move(old->second.sync_responder);
          group.members.erase(old);
          if (old_join) {
            JoinGroupResponse r;
            r.error = ErrorCode::kFencedInstanceId;
            old_join(std::move(r));
          }
          if (old_sync) {
            SyncGroupResponse r;
            r.error = ErrorCode::kFencedInstanceId;
            old_sync(std::move(r));
          }
        }
        reason = fmt::format("static member {} replaced {}", *request.group_instance_id, old_id);
      }
    }
    GroupMember m;
    m.member_id = fmt::format("{}-{}", header.client_id.empty() ? "member" : header.client_id, next_member_number++);
    m.group_instance_id = request.group_instance_id;
    m.client_id = header.client_id;
    m.session_timeout_ms = request.session_timeout_ms;
    m.rebalance_timeout_ms = request.rebalance_timeout_ms;
    m.protocols = std::move(request.protocols);
    m.join_responder = std::move(respond);
    m.join_order = next_member_number;
    m.session_deadline_ms = now() + m.session_timeout_ms;
    const std::string id = m.member_id;
    if (m.group_instance_id) group.static_members[*m.group_instance_id] = id;
    group.members.emplace(id, std::move(m));
    log(to, "group", fmt::format("{} member {} joins ({})", group.id, id, reason));
    arm_session_timer(*shard, group, group.members.at(id));
    if (group.state == GroupState::kPreparingRebalance) {
      // A rebalance in progress can wait a little for a newcomer: at least until its own rebalance timeout.
      maybe_complete_join(*shard, group);
    } else {
      prepare_rebalance(*shard, group, reason);
    }
    return;
  }

  auto it = group.members.find(request.member_id);
  if (request.group_instance_id) {
    auto s = group.static_members.find(*request.group_instance_id);
    if (s != group.static_members.end() && s->second != request.member_id) return fail(ErrorCode::kFencedInstanceId);
  }
  if (it == group.members.end()) return fail(ErrorCode::kUnknownMemberId);
  GroupMember& m = it->second;
  const bool changed = !same_protocols(m.protocols, request.protocols);
  m.protocols = std::move(request.protocols);
  m.session_timeout_ms = request.session_timeout_ms;
  m.rebalance_timeout_ms = request.rebalance_timeout_ms;
  m.join_responder = std::move(respond);
  m.session_deadline_ms = now() + m.session_timeout_ms;
  const auto answer_current = [&] {
    // Kafka answers a rejoin with unchanged metadata with the current generation (no new rebalance).
    JoinGroupResponse r;
    r.generation_id = group.generation_id;
    r.protocol_type = group.protocol_type;
    r.protocol_name = group.protocol_name;
    r.leader = group.leader;
    r.member_id = m.member_id;
    if (m.member_id == group.leader) {
      for (const auto& [id, other] : group.members) {
        const Subscription* metadata = metadata_for(other, group.protocol_name);
        r.members.push_back({id, other.group_instance_id, metadata ? *metadata : Subscription{}});
      }
    }
    Responder reply = std::move(m.join_responder);
    m.join_responder = nullptr;
    reply(std::move(r));
  };
  switch (group.state) {
    case GroupState::kPreparingRebalance:
      maybe_complete_join(*shard, group);
      return;
    case GroupState::kCompletingRebalance:
      if (!changed) return answer_current();
      prepare_rebalance(*shard, group, fmt::format("member {} changed its metadata", m.member_id));
      return;
    case GroupState::kStable:
      if (!changed && m.member_id != group.leader) return answer_current();
      prepare_rebalance(*shard, group,
                        fmt::format("member {} rejoined{}", m.member_id, changed ? " with new metadata" : " (leader)"));
      return;
    case GroupState::kEmpty:
      prepare_rebalance(*shard, group, "member rejoined an empty group");
      return;
  }
}

void Cluster::Impl::handle_sync_group(BrokerId to, SyncGroupRequest request, Responder respond) {
  const auto fail = [&](ErrorCode e) {
    SyncGroupResponse r;
    r.error = e;
    respond(std::move(r));
  };
  ErrorCode error = ErrorCode::kNone;
  GroupShard* shard = group_shard_on(to, request.group_id, error);
  if (shard == nullptr) return fail(error);
  auto g = shard->groups.find(request.group_id);
  if (g == shard->groups.end()) return fail(ErrorCode::kUnknownMemberId);
  Group& group = g->second;
  if (ErrorCode e = validate_member(group, request.member_id, request.group_instance_id, request.generation_id);
      e != ErrorCode::kNone) {
    return fail(e);
  }
  if ((!request.protocol_type.empty() && request.protocol_type != group.protocol_type) ||
      (!request.protocol_name.empty() && request.protocol_name != group.protocol_name)) {
    return fail(ErrorCode::kInconsistentGroupProtocol);
  }
  GroupMember& m = group.members.at(request.member_id);
  switch (group.state) {
    case GroupState::kEmpty:
      return fail(ErrorCode::kUnknownMemberId);
    case GroupState::kPreparingRebalance:
      return fail(ErrorCode::kRebalanceInProgress);
    case GroupState::kStable: {
      SyncGroupResponse r;
      r.protocol_type = group.protocol_type;
      r.protocol_name = group.protocol_name;
      r.assignment = m.assignment;
      m.session_deadline_ms = now() + m.session_timeout_ms;
      respond(std::move(r));
      return;
    }
    case GroupState::kCompletingRebalance:
      break;
  }
  m.sync_responder = std::move(respond);
  if (request.member_id != group.leader) return;

  // The leader's assignment: persist the group (Kafka's storeGroup), then hand every member its part.
  std::map<std::string, Assignment> assignments;
  for (auto& a : request.assignments) {
    if (group.members.count(a.member_id) != 0) assignments[a.member_id] = std::move(a.assignment);
  }
  internal_records::GroupValue value;
  value.protocol_type = group.protocol_type;
  value.generation_id = group.generation_id;
  value.protocol_name = group.protocol_name;
  value.leader = group.leader;
  for (const auto& [id, member] : group.members) {
    internal_records::GroupMemberValue mv;
    mv.member_id = id;
    mv.group_instance_id = member.group_instance_id;
    mv.client_id = member.client_id;
    mv.session_timeout_ms = member.session_timeout_ms;
    mv.rebalance_timeout_ms = member.rebalance_timeout_ms;
    if (auto a = assignments.find(id); a != assignments.end()) {
      mv.assignment = a->second.partitions;
      mv.assignment_user_data = a->second.user_data;
    }
    value.members.push_back(std::move(mv));
  }
  Record record;
  record.timestamp_ms = now();
  record.key = internal_records::encode_group_key(group.id);
  record.value = internal_records::encode_group_value(value);
  std::vector<Record> records;
  records.push_back(std::move(record));
  Partition* p = find_partition(TopicPartition{std::string(kOffsetsTopic), shard->partition});
  assert(p != nullptr && "the offsets topic always exists");
  const auto index = static_cast<size_t>(shard->partition);
  coordinator_write(*p, make_batch(std::move(records)),
                    [this, index, load_id = shard->load_id, group_id = group.id, generation = group.generation_id,
                     assignments = std::move(assignments)](ErrorCode write_error) mutable {
                      GroupShard& s = group_shards[index];
                      if (!s.loaded || s.load_id != load_id) return;
                      auto found = s.groups.find(group_id);
                      if (found == s.groups.end()) return;
                      Group& gr = found->second;
                      if (gr.generation_id != generation || gr.state != GroupState::kCompletingRebalance) return;
                      std::vector<std::pair<Responder, SyncGroupResponse>> replies;
                      const ErrorCode e = coordinator_write_error(write_error);
                      for (auto& [id, member] : gr.members) {
                        if (e == ErrorCode::kNone) {
                          auto a = assignments.find(id);
                          member.assignment = a == assignments.end() ? Assignment{} : std::move(a->second);
                        }
                        if (!member.sync_responder) continue;
                        SyncGroupResponse r;
                        r.error = e;
                        if (e == ErrorCode::kNone) {
                          r.protocol_type = gr.protocol_type;
                          r.protocol_name = gr.protocol_name;
                          r.assignment = member.assignment;
                          member.session_deadline_ms = now() + member.session_timeout_ms;
                        }
                        replies.emplace_back(std::move(member.sync_responder), std::move(r));
                        member.sync_responder = nullptr;
                      }
                      if (e == ErrorCode::kNone) {
                        gr.state = GroupState::kStable;
                        log(s.broker, "group", fmt::format("{} Stable generation {}", gr.id, gr.generation_id));
                      } else {
                        prepare_rebalance(s, gr, fmt::format("storing the group failed: {}", error_name(e)));
                      }
                      for (auto& [reply, r] : replies) reply(std::move(r));
                    });
}

void Cluster::Impl::handle_heartbeat(BrokerId to, const HeartbeatRequest& request, Responder respond) {
  ErrorCode error = ErrorCode::kNone;
  GroupShard* shard = group_shard_on(to, request.group_id, error);
  if (shard == nullptr) return respond(HeartbeatResponse{error});
  auto g = shard->groups.find(request.group_id);
  if (g == shard->groups.end()) return respond(HeartbeatResponse{ErrorCode::kUnknownMemberId});
  Group& group = g->second;
  if (group.state == GroupState::kEmpty) return respond(HeartbeatResponse{ErrorCode::kUnknownMemberId});
  if (ErrorCode e = validate_member(group, request.member_id, request.group_instance_id, request.generation_id);
      e != ErrorCode::kNone) {
    return respond(HeartbeatResponse{e});
  }
  GroupMember& m = group.members.at(request.member_id);
  m.session_deadline_ms = now() + m.session_timeout_ms;
  respond(HeartbeatResponse{group.state == GroupState::kPreparingRebalance ? ErrorCode::kRebalanceInProgress
                                                                           : ErrorCode::kNone});
}

void Cluster::Impl::handle_leave_group(BrokerId to, const LeaveGroupRequest& request, Responder respond) {
  LeaveGroupResponse out;
  ErrorCode error = ErrorCode::kNone;
  GroupShard* shard = group_shard_on(to, request.group_id, error);
  if (shard == nullptr) {
    out.error = error;
    return respond(std::move(out));
  }
  auto g = shard->groups.find(request.group_id);
  for (const auto& leaving : request.members) {
    LeaveGroupResponse::MemberResult result{leaving.member_id, leaving.group_instance_id, ErrorCode::kNone};
    if (g == shard->groups.end()) {
      result.error = ErrorCode::kUnknownMemberId;
      out.members.push_back(std::move(result));
      continue;
    }
    Group& group = g->second;
    std::string member_id = leaving.member_id;
    if (leaving.group_instance_id) {
      auto s = group.static_members.find(*leaving.group_instance_id);
      if (s == group.static_members.end()) {
        result.error = ErrorCode::kUnknownMemberId;
      } else if (!member_id.empty() && s->second != member_id) {
        result.error = ErrorCode::kFencedInstanceId;
      } else {
        member_id = s->second;
      }
    }
    if (result.error == ErrorCode::kNone && group.members.count(member_id) == 0) {
      result.error = ErrorCode::kUnknownMemberId;
    }
    if (result.error == ErrorCode::kNone) remove_member(*shard, group, member_id, "left the group");
    out.members.push_back(std::move(result));
  }
  respond(std::move(out));
}

// ---------------------------------------------------------------------------------------------------------------
// Offsets

void Cluster::Impl::write_offsets(GroupShard& shard, Group& group, const std::vector<OffsetAndMetadata>& offsets,
                                  int64_t producer_id, int16_t producer_epoch, std::function<void(ErrorCode)> done) {
  std::vector<Record> records;
  records.reserve(offsets.size());
  for (const auto& o : offsets) {
    Record record;
    record.timestamp_ms = now();
    record.key = internal_records::encode_offset_key({group.id, o.tp});
    record.value = internal_records::encode_offset_value({o.offset, o.leader_epoch, o.metadata, now()});
    records.push_back(std::move(record));
    ++group.inflight_commits[o.tp];
  }
  RecordBatch batch = make_batch(std::move(records));
  batch.producer_id = producer_id;
  batch.producer_epoch = producer_epoch;
  batch.base_sequence = -1;
  batch.is_transactional = producer_id >= 0;
  Partition* p = find_partition(TopicPartition{std::string(kOffsetsTopic), shard.partition});
  assert(p != nullptr && "the offsets topic always exists");
  std::vector<TopicPartition> tps;
  for (const auto& o : offsets) tps.push_back(o.tp);
  const auto index = static_cast<size_t>(shard.partition);
  coordinator_write(*p, std::move(batch),
                    [this, index, load_id = shard.load_id, group_id = group.id, tps = std::move(tps),
                     done = std::move(done)](ErrorCode error) {
                      GroupShard& s = group_shards[index];
                      if (s.loaded && s.load_id == load_id) {
                        if (auto g = s.groups.find(group_id); g != s.groups.end()) {
                          for (const auto& tp : tps) {
                            auto it = g->second.inflight_commits.find(tp);
                            if (it != g->second.inflight_commits.end() && --it->second <= 0) {
                              g->second.inflight_commits.erase(it);
                            }
                          }
                        }
                      }
                      done(coordinator_write_error(error));
                    });
}

namespace {

OffsetCommitResponse commit_errors(const std::vector<OffsetAndMetadata>& offsets, ErrorCode e) {
  OffsetCommitResponse out;
  for (const auto& o : offsets) out.partitions.push_back({o.tp, e});
  return out;
}

}  // namespace

void Cluster::Impl::handle_offset_commit(BrokerId to, const OffsetCommitRequest& request, Responder respond) {
  if (request.group_id.empty()) return respond(commit_errors(request.offsets, ErrorCode::kInvalidGroupId));
  ErrorCode error = ErrorCode::kNone;
  GroupShard* shard = group_shard_on(to, request.group_id, error);
  if (shard == nullptr) return respond(commit_errors(request.offsets, error));
  auto g = shard->groups.find(request.group_id);
  const bool as_member = request.generation_id >= 0 || !request.member_id.empty() || request.group_instance_id;
  if (g == shard->groups.end()) {
    // A group Kafka does not manage (assign() users) may commit with generation -1; anything else is stale.
    if (as_member) return respond(commit_errors(request.offsets, ErrorCode::kIllegalGeneration));
    g = shard->groups.emplace(request.group_id, Group{}).first;
    g->second.id = request.group_id;
  }
  Group& group = g->second;
  if (as_member) {
    error = validate_member(group, request.member_id, request.group_instance_id, request.generation_id);
  } else if (!group.members.empty()) {
    error = ErrorCode::kUnknownMemberId;  // a "simple" commit to a group with live members
  }
  if (error == ErrorCode::kNone && group.state == GroupState::kCompletingRebalance) {
    error = ErrorCode::kRebalanceInProgress;
  }
  if (error != ErrorCode::kNone) return respond(commit_errors(request.offsets, error));
  if (request.offsets.empty()) return respond(OffsetCommitResponse{});
  if (as_member) group.members.at(request.member_id).session_deadline_ms = now() + group.members.at(request.member_id).session_timeout_ms;
  write_offsets(*shard, group, request.offsets, -1, -1, [respond, offsets = request.offsets](ErrorCode e) {
    respond(commit_errors(offsets, e));
  });
}

void Cluster::Impl::handle_txn_offset_commit(BrokerId to, const TxnOffsetCommitRequest& request, Responder respond) {
  const auto reply_all = [&request](ErrorCode e) {
    TxnOffsetCommitResponse out;
    for (const auto& o : request.offsets) out.partitions.push_back({o.tp, e});
    return out;
  };
  if (request.group_id.empty()) return respond(reply_all(ErrorCode::kInvalidGroupId));
  ErrorCode error = ErrorCode::kNone;
  GroupShard* shard = group_shard_on(to, request.group_id, error);
  if (shard == nullptr) return respond(reply_all(error));
  Group& group = shard->groups[request.group_id];
  group.id = request.group_id;
  // KIP-447: offsets from a member of a stale generation (a zombie) are rejected.
  if (request.generation_id >= 0 || !request.member_id.empty() || request.group_instance_id) {
    error = validate_member(group, request.member_id, request.group_instance_id, request.generation_id);
    if (error != ErrorCode::kNone) return respond(reply_all(error));
  }
  if (config.verify_transactional_partitions) {
    // The group's offsets partition must be in the producer's ongoing transaction (AddOffsetsToTxn).
    const TxnShard* txn_shard = loaded_txn_shard(request.transactional_id);
    if (txn_shard == nullptr) return respond(reply_all(ErrorCode::kCoordinatorNotAvailable));
    const auto it = txn_shard->txns.find(request.transactional_id);
    const TopicPartition offsets_tp{std::string(kOffsetsTopic), shard->partition};
    if (it == txn_shard->txns.end() || it->second.value.producer_id != request.producer_id) {
      return respond(reply_all(ErrorCode::kInvalidProducerIdMapping));
    }
    if (it->second.value.producer_epoch > request.producer_epoch) return respond(reply_all(ErrorCode::kProducerFenced));
    if (it->second.value.state != internal_records::TxnState::kOngoing ||
        !std::binary_search(it->second.value.partitions.begin(), it->second.value.partitions.end(), offsets_tp)) {
      return respond(reply_all(ErrorCode::kInvalidTxnState));
    }
  }
  if (request.offsets.empty()) return respond(TxnOffsetCommitResponse{});
  write_offsets(*shard, group, request.offsets, request.producer_id, request.producer_epoch,
                [respond, reply_all = reply_all(ErrorCode::kNone)](ErrorCode e) mutable {
                  // A stale producer epoch at the partition is a fenced producer (KIP-588).
                  if (e == ErrorCode::kInvalidProducerEpoch) e = ErrorCode::kProducerFenced;
                  for (auto& p : reply_all.partitions) p.error = e;
                  respond(std::move(reply_all));
                });
}

void Cluster::Impl::handle_offset_fetch(BrokerId to, const OffsetFetchRequest& request, Responder respond) {
  OffsetFetchResponse out;
  if (request.group_id.empty()) {
    out.error = ErrorCode::kInvalidGroupId;
    return respond(std::move(out));
  }
  ErrorCode error = ErrorCode::kNone;
  GroupShard* shard = group_shard_on(to, request.group_id, error);
  if (shard == nullptr) {
    out.error = error;
    return respond(std::move(out));
  }
  const auto g = shard->groups.find(request.group_id);
  const Group* group = g == shard->groups.end() ? nullptr : &g->second;
  std::vector<TopicPartition> partitions;
  if (request.partitions) {
    partitions = *request.partitions;
  } else if (group != nullptr) {
    for (const auto& [tp, value] : group->offsets) partitions.push_back(tp);
  }
  for (const auto& tp : partitions) {
    OffsetFetchResponse::PartitionResult result;
    result.tp = tp;
    if (group != nullptr) {
      bool unstable = group->inflight_commits.count(tp) != 0;
      for (const auto& [pid, pending] : group->pending_txn_offsets) unstable = unstable || pending.count(tp) != 0;
      if (request.require_stable && unstable) {
        result.error = ErrorCode::kUnstableOffsetCommit;
      } else if (auto it = group->offsets.find(tp); it != group->offsets.end()) {
        result.offset = it->second.offset;
        result.leader_epoch = it->second.leader_epoch;
        result.metadata = it->second.metadata;
      }
    }
    out.partitions.push_back(std::move(result));
  }
  respond(std::move(out));
}

}  // namespace mephisto::sim
