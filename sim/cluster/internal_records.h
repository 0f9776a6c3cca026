// The records coordinators write to the internal topics, as Kafka does: committed offsets and group metadata to
// __consumer_offsets, transaction state to __transaction_state. Coordinator state is rebuilt by replaying these
// logs, so it survives a coordinator move exactly when the internal partition's data does. The encoding is ours
// (a small tagged varint format), not Kafka's; only the keying matters for compaction: the latest record per key
// wins, as in Kafka.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/seam/broker_client.h"

namespace mephisto::sim::internal_records {

inline constexpr std::string_view kOffsetsTopic = "__consumer_offsets";
inline constexpr std::string_view kTransactionStateTopic = "__transaction_state";

enum class KeyType : uint8_t { kTransaction = 0, kOffset = 1, kGroup = 2 };

// __consumer_offsets: the committed offset of one (group, partition).
struct OffsetKey {
  std::string group;
  TopicPartition tp;
};
struct OffsetValue {
  int64_t offset = -1;
  int32_t leader_epoch = -1;
  std::string metadata;
  int64_t commit_time_ms = 0;
};

// __consumer_offsets: a group's membership as of its last completed rebalance (written at SyncGroup).
struct GroupMemberValue {
  std::string member_id;
  std::optional<std::string> group_instance_id;
  std::string client_id;
  int32_t session_timeout_ms = 0;
  int32_t rebalance_timeout_ms = 0;
  std::vector<TopicPartition> assignment;
  std::string assignment_user_data;
};
struct GroupValue {
  std::string protocol_type;
  int32_t generation_id = 0;
  std::string protocol_name;
  std::string leader;
  std::vector<GroupMemberValue> members;
};

// __transaction_state: one transactional id's coordinator state (TransactionLogValue).
enum class TxnState : uint8_t {
  kEmpty = 0,
  kOngoing = 1,
  kPrepareCommit = 2,
  kPrepareAbort = 3,
  kCompleteCommit = 4,
  kCompleteAbort = 5,
};
[[nodiscard]] std::string_view txn_state_name(TxnState state);

struct TxnValue {
  int64_t producer_id = -1;
  int16_t producer_epoch = -1;
  int32_t timeout_ms = 0;
  TxnState state = TxnState::kEmpty;
  int64_t start_time_ms = -1;  // when the transaction became Ongoing
  std::vector<TopicPartition> partitions;  // sorted
};

[[nodiscard]] std::string encode_offset_key(const OffsetKey& key);
[[nodiscard]] std::string encode_offset_value(const OffsetValue& value);
[[nodiscard]] std::string encode_group_key(std::string_view group);
[[nodiscard]] std::string encode_group_value(const GroupValue& value);
[[nodiscard]] std::string encode_txn_key(std::string_view transactional_id);
[[nodiscard]] std::string encode_txn_value(const TxnValue& value);

// Decoding asserts on malformed input: only the coordinators write these topics.
[[nodiscard]] KeyType key_type(std::string_view key);
[[nodiscard]] OffsetKey decode_offset_key(std::string_view key);
[[nodiscard]] OffsetValue decode_offset_value(std::string_view value);
[[nodiscard]] std::string decode_group_key(std::string_view key);
[[nodiscard]] GroupValue decode_group_value(std::string_view value);
[[nodiscard]] std::string decode_txn_key(std::string_view key);
[[nodiscard]] TxnValue decode_txn_value(std::string_view value);

}  // namespace mephisto::sim::internal_records
