#include "runtime/store/memory_store.h"

#include <cassert>

namespace mephisto::store {

MemoryStore::MemoryStore() : MemoryStore(std::make_shared<MemoryPartition>()) {}

MemoryStore::MemoryStore(std::shared_ptr<MemoryPartition> partition) : partition_(std::move(partition)) {
  assert(partition_ && !partition_->open);
  partition_->open = true;
}

MemoryStore::~MemoryStore() {
  (void)close();
}

Status MemoryStore::check_open() const {
  if (closed_) return Error::of(ErrorCode::kState, "memory store: the store is closed");
  return {};
}

Result<std::optional<std::string>> MemoryStore::get(std::string_view key) {
  if (auto s = check_open(); !s) return s.error();
  const auto it = partition_->data.find(key);
  if (it == partition_->data.end()) return std::optional<std::string>();
  return std::optional<std::string>(it->second);
}

Status MemoryStore::put(std::string_view key, std::string_view value) {
  if (auto s = check_open(); !s) return s;
  partition_->data.insert_or_assign(std::string(key), std::string(value));
  return {};
}

Status MemoryStore::erase(std::string_view key) {
  if (auto s = check_open(); !s) return s;
  const auto it = partition_->data.find(key);
  if (it != partition_->data.end()) partition_->data.erase(it);
  return {};
}

std::optional<int64_t> MemoryStore::applied_offset() const {
  return closed_ ? last_offset_ : partition_->applied_offset;
}

Status MemoryStore::apply_batch(const std::vector<ChangelogRecord>& records) {
  if (auto s = check_open(); !s) return s;
  if (auto s = validate_changelog_batch(records, partition_->applied_offset); !s) return s;
  if (records.empty()) return {};
  auto& data = partition_->data;
  for (const auto& r : records) {
    if (r.value) {
      data.insert_or_assign(r.key, *r.value);
    } else if (const auto it = data.find(r.key); it != data.end()) {
      data.erase(it);
    }
  }
  partition_->applied_offset = records.back().offset;
  return {};
}

Status MemoryStore::write_batch(const std::vector<WriteOp>& ops, std::optional<int64_t> applied_offset) {
  if (auto s = check_open(); !s) return s;
  if (applied_offset && *applied_offset < 0) {
    return Error::of(ErrorCode::kInvalidArg,
                     "write_batch: applied offset " + std::to_string(*applied_offset) + " is negative");
  }
  auto& data = partition_->data;
  for (const auto& [key, value] : ops) {
    if (value) {
      data.insert_or_assign(key, *value);
    } else if (const auto it = data.find(key); it != data.end()) {
      data.erase(it);
    }
  }
  if (applied_offset) partition_->applied_offset = applied_offset;
  return {};
}

Status MemoryStore::for_each(const std::function<void(std::string_view key, std::string_view value)>& fn) {
  if (auto s = check_open(); !s) return s;
  for (const auto& [key, value] : partition_->data) fn(key, value);
  return {};
}

Status MemoryStore::clear() {
  if (auto s = check_open(); !s) return s;
  partition_->data.clear();
  partition_->applied_offset.reset();
  return {};
}

Result<std::size_t> MemoryStore::size() {
  if (auto s = check_open(); !s) return s.error();
  return partition_->data.size();
}

Status MemoryStore::close() {
  if (closed_) return {};
  last_offset_ = partition_->applied_offset;
  partition_->open = false;
  closed_ = true;
  return {};
}

}  // namespace mephisto::store
