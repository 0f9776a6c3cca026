// MemoryStore: a TableStore over std::map, for tests, the simulator and `memory://` tables. Its data lives in
// a MemoryPartition shared with the factory that opened it, so a closed and reopened partition keeps its
// contents (like a store on disk) for the factory's lifetime.
#pragma once

#include <map>
#include <memory>

#include "runtime/store/store.h"

namespace mephisto::store {

// The state of one in-memory partition. `open` is true while a MemoryStore uses it (the double-open guard).
struct MemoryPartition {
  std::map<std::string, std::string, std::less<>>
      data;  // std::less on std::string orders bytewise, as RocksDB
  std::optional<int64_t> applied_offset;
  bool open = false;
};

class MemoryStore final : public TableStore {
 public:
  // A store with its own, fresh partition (nobody else can reopen it).
  MemoryStore();
  // A store over `partition`, which must not be open (precondition; the factory checks it). Marks it open.
  explicit MemoryStore(std::shared_ptr<MemoryPartition> partition);
  ~MemoryStore() override;

  Result<std::optional<std::string>> get(std::string_view key) override;
  Status put(std::string_view key, std::string_view value) override;
  Status erase(std::string_view key) override;
  [[nodiscard]] std::optional<int64_t> applied_offset() const override;
  Status apply_batch(const std::vector<ChangelogRecord>& records) override;
  Status write_batch(const std::vector<WriteOp>& ops, std::optional<int64_t> applied_offset) override;
  Status for_each(const std::function<void(std::string_view key, std::string_view value)>& fn) override;
  Status clear() override;
  Result<std::size_t> size() override;
  Status close() override;

 private:
  [[nodiscard]] Status check_open() const;

  std::shared_ptr<MemoryPartition> partition_;
  std::optional<int64_t> last_offset_;  // applied_offset() after close
  bool closed_ = false;
};

}  // namespace mephisto::store
