// The group coordinator's state for the groups of one __consumer_offsets partition (Kafka's GroupMetadata and
// GroupMetadataManager caches). Membership lives in memory on the partition's leader and is persisted at each
// completed rebalance; committed offsets are materialised from the partition's log up to its high watermark.
// Behaviour is in group_coordinator.cpp.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "sim/cluster/internal_records.h"
#include "sim/cluster/protocol.h"

namespace mephisto::sim {

enum class GroupState : uint8_t { kEmpty, kPreparingRebalance, kCompletingRebalance, kStable };
[[nodiscard]] std::string_view group_state_name(GroupState state);

struct GroupMember {
  std::string member_id;
  std::optional<std::string> group_instance_id;
  std::string client_id;
  int32_t session_timeout_ms = 0;
  int32_t rebalance_timeout_ms = 0;
  std::vector<JoinGroupRequest::Protocol> protocols;
  Assignment assignment;
  // Set while the member waits in JoinGroup / SyncGroup (such a member is kept alive without heartbeats).
  Responder join_responder;
  Responder sync_responder;
  int64_t session_deadline_ms = 0;
  bool session_timer_armed = false;
  uint64_t join_order = 0;  // the first joiner of a generation becomes leader when the old leader is gone
};

struct Group {
  std::string id;
  GroupState state = GroupState::kEmpty;
  int32_t generation_id = 0;
  std::string protocol_type;
  std::string protocol_name;
  std::string leader;
  std::map<std::string, GroupMember> members;           // by member id
  std::map<std::string, std::string> static_members;    // group instance id -> member id
  // The rebalance in progress: its number (timers of an older one are stale), when it may complete at the
  // earliest (group.initial.rebalance.delay.ms for an empty group) and when it must (the rebalance timeout).
  uint64_t rebalance_id = 0;
  int64_t rebalance_not_before_ms = 0;
  int64_t rebalance_deadline_ms = 0;
  // Committed offsets (materialised from the log at the high watermark).
  std::map<TopicPartition, internal_records::OffsetValue> offsets;
  // Transactional offsets written but not yet committed/aborted by a marker, per producer id.
  std::map<int64_t, std::map<TopicPartition, internal_records::OffsetValue>> pending_txn_offsets;
  // Offset writes in flight (not yet replicated), per partition: make require_stable fetches unstable.
  std::map<TopicPartition, int32_t> inflight_commits;
};

struct GroupShard {
  int32_t partition = 0;       // of __consumer_offsets
  bool loaded = false;
  BrokerId broker = kNoBroker;  // the leader that loaded it
  uint64_t load_id = 0;        // bumps on every load/unload: timers and callbacks of an older load are stale
  int64_t applied_offset = 0;  // the log is materialised below this offset
  std::map<std::string, Group> groups;
  std::map<int64_t, std::set<std::string>> txn_groups;  // producer id -> groups with pending offsets
};

}  // namespace mephisto::sim
