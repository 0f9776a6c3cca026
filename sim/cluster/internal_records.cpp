#include "sim/cluster/internal_records.h"

#include <cassert>
#include <cstdio>
#include <cstdlib>

namespace mephisto::sim::internal_records {
namespace {

class Writer {
 public:
  void u64(uint64_t v) {
    while (v >= 0x80) {
      out_.push_back(static_cast<char>((v & 0x7f) | 0x80));
      v >>= 7;
    }
    out_.push_back(static_cast<char>(v));
  }
  void i64(int64_t v) { u64((static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63)); }  // zigzag
  void str(std::string_view s) {
    u64(s.size());
    out_.append(s);
  }
  void opt_str(const std::optional<std::string>& s) {
    i64(s ? 1 : 0);
    if (s) str(*s);
  }
  void tp(const TopicPartition& tp) {
    str(tp.topic);
    i64(tp.partition);
  }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}
  uint64_t u64() {
    uint64_t v = 0;
    for (int shift = 0;; shift += 7) {
      check(pos_ < in_.size() && shift < 64);
      const auto byte = static_cast<uint8_t>(in_[pos_++]);
      v |= static_cast<uint64_t>(byte & 0x7f) << shift;
      if ((byte & 0x80) == 0) return v;
    }
  }
  int64_t i64() {
    const uint64_t z = u64();
    return static_cast<int64_t>(z >> 1) ^ -static_cast<int64_t>(z & 1);
  }
  int32_t i32() { return static_cast<int32_t>(i64()); }
  std::string str() {
    const uint64_t n = u64();
    check(n <= in_.size() - pos_);
    std::string s(in_.substr(pos_, n));
    pos_ += n;
    return s;
  }
  std::optional<std::string> opt_str() {
    if (i64() == 0) return std::nullopt;
    return str();
  }
  TopicPartition tp() {
    TopicPartition out;
    out.topic = str();
    out.partition = i32();
    return out;
  }
  void done() const { check(pos_ == in_.size()); }

 private:
  void check(bool ok) const {
    if (!ok) {
      // Only the coordinators write internal records: a malformed one is a bug here, not bad input.
      std::fprintf(stderr, "internal_records: malformed record at byte %zu of %zu\n", pos_, in_.size());
      std::abort();
    }
  }
  std::string_view in_;
  size_t pos_ = 0;
};

}  // namespace

std::string_view txn_state_name(TxnState state) {
  switch (state) {
    case TxnState::kEmpty: return "Empty";
    case TxnState::kOngoing: return "Ongoing";
    case TxnState::kPrepareCommit: return "PrepareCommit";
    case TxnState::kPrepareAbort: return "PrepareAbort";
    case TxnState::kCompleteCommit: return "CompleteCommit";
    case TxnState::kCompleteAbort: return "CompleteAbort";
  }
  return "Unknown";
}

std::string encode_offset_key(const OffsetKey& key) {
  Writer w;
  w.u64(static_cast<uint64_t>(KeyType::kOffset));
  w.str(key.group);
  w.tp(key.tp);
  return w.take();
}

std::string encode_offset_value(const OffsetValue& value) {
  Writer w;
  w.i64(value.offset);
  w.i64(value.leader_epoch);
  w.str(value.metadata);
  w.i64(value.commit_time_ms);
  return w.take();
}

std::string encode_group_key(std::string_view group) {
  Writer w;
  w.u64(static_cast<uint64_t>(KeyType::kGroup));
  w.str(group);
  return w.take();
}

std::string encode_group_value(const GroupValue& value) {
  Writer w;
  w.str(value.protocol_type);
  w.i64(value.generation_id);
  w.str(value.protocol_name);
  w.str(value.leader);
  w.u64(value.members.size());
  for (const auto& m : value.members) {
    w.str(m.member_id);
    w.opt_str(m.group_instance_id);
    w.str(m.client_id);
    w.i64(m.session_timeout_ms);
    w.i64(m.rebalance_timeout_ms);
    w.u64(m.assignment.size());
    for (const auto& tp : m.assignment) w.tp(tp);
    w.str(m.assignment_user_data);
  }
  return w.take();
}

std::string encode_txn_key(std::string_view transactional_id) {
  Writer w;
  w.u64(static_cast<uint64_t>(KeyType::kTransaction));
  w.str(transactional_id);
  return w.take();
}

std::string encode_txn_value(const TxnValue& value) {
  Writer w;
  w.i64(value.producer_id);
  w.i64(value.producer_epoch);
  w.i64(value.timeout_ms);
  w.u64(static_cast<uint64_t>(value.state));
  w.i64(value.start_time_ms);
  w.u64(value.partitions.size());
  for (const auto& tp : value.partitions) w.tp(tp);
  return w.take();
}

KeyType key_type(std::string_view key) {
  Reader r(key);
  const uint64_t type = r.u64();
  assert(type <= static_cast<uint64_t>(KeyType::kGroup) && "unknown internal record key type");
  return static_cast<KeyType>(type);
}

OffsetKey decode_offset_key(std::string_view key) {
  Reader r(key);
  const uint64_t type = r.u64();
  assert(type == static_cast<uint64_t>(KeyType::kOffset));
  (void)type;
  OffsetKey out;
  out.group = r.str();
  out.tp = r.tp();
  r.done();
  return out;
}

OffsetValue decode_offset_value(std::string_view value) {
  Reader r(value);
  OffsetValue out;
  out.offset = r.i64();
  out.leader_epoch = r.i32();
  out.metadata = r.str();
  out.commit_time_ms = r.i64();
  r.done();
  return out;
}

std::string decode_group_key(std::string_view key) {
  Reader r(key);
  const uint64_t type = r.u64();
  assert(type == static_cast<uint64_t>(KeyType::kGroup));
  (void)type;
  std::string out = r.str();
  r.done();
  return out;
}

GroupValue decode_group_value(std::string_view value) {
  Reader r(value);
  GroupValue out;
  out.protocol_type = r.str();
  out.generation_id = r.i32();
  out.protocol_name = r.str();
  out.leader = r.str();
  const uint64_t members = r.u64();
  for (uint64_t i = 0; i < members; ++i) {
    GroupMemberValue m;
    m.member_id = r.str();
    m.group_instance_id = r.opt_str();
    m.client_id = r.str();
    m.session_timeout_ms = r.i32();
    m.rebalance_timeout_ms = r.i32();
    const uint64_t n = r.u64();
    for (uint64_t j = 0; j < n; ++j) m.assignment.push_back(r.tp());
    m.assignment_user_data = r.str();
    out.members.push_back(std::move(m));
  }
  r.done();
  return out;
}

std::string decode_txn_key(std::string_view key) {
  Reader r(key);
  const uint64_t type = r.u64();
  assert(type == static_cast<uint64_t>(KeyType::kTransaction));
  (void)type;
  std::string out = r.str();
  r.done();
  return out;
}

TxnValue decode_txn_value(std::string_view value) {
  Reader r(value);
  TxnValue out;
  out.producer_id = r.i64();
  out.producer_epoch = static_cast<int16_t>(r.i64());
  out.timeout_ms = r.i32();
  const uint64_t state = r.u64();
  assert(state <= static_cast<uint64_t>(TxnState::kCompleteAbort) && "unknown transaction state");
  out.state = static_cast<TxnState>(state);
  out.start_time_ms = r.i64();
  const uint64_t n = r.u64();
  for (uint64_t i = 0; i < n; ++i) out.partitions.push_back(r.tp());
  r.done();
  return out;
}

}  // namespace mephisto::sim::internal_records
