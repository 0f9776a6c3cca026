#include "runtime/store/store.h"

#include <map>

#include "runtime/store/memory_store.h"
#include "runtime/store/rocksdb_store.h"

namespace mephisto::store {
namespace {

std::string partition_name(const std::string& table, int32_t partition) {
  return table + "-" + std::to_string(partition);
}

class MemoryStoreFactory final : public StoreFactory {
 public:
  Result<std::unique_ptr<TableStore>> open(const std::string& table, int32_t partition) override {
    if (auto s = validate_partition_name(table, partition); !s) return s.error();
    const std::string name = partition_name(table, partition);
    auto& slot = partitions_[name];
    if (!slot) slot = std::make_shared<MemoryPartition>();
    if (slot->open) {
      return Error::of(
          ErrorCode::kState,
          "memory store " + name + ": the partition is already open in this process; close it first");
    }
    return std::unique_ptr<TableStore>(std::make_unique<MemoryStore>(slot));
  }

  Status wipe(const std::string& table, int32_t partition) override {
    if (auto s = validate_partition_name(table, partition); !s) return s;
    const std::string name = partition_name(table, partition);
    const auto it = partitions_.find(name);
    if (it == partitions_.end()) return {};
    if (it->second->open) {
      return Error::of(ErrorCode::kState,
                       "memory store wipe " + name + ": the partition is open; close it first");
    }
    partitions_.erase(it);
    return {};
  }

  [[nodiscard]] std::string url() const override { return "memory://"; }

 private:
  std::map<std::string, std::shared_ptr<MemoryPartition>> partitions_;
};

class RocksDbStoreFactory final : public StoreFactory {
 public:
  explicit RocksDbStoreFactory(std::string data_dir) : data_dir_(std::move(data_dir)) {}

  Result<std::unique_ptr<TableStore>> open(const std::string& table, int32_t partition) override {
    if (auto s = validate_partition_name(table, partition); !s) return s.error();
    auto store = RocksDbStore::open(path(table, partition));
    if (!store) return store.error();
    return std::unique_ptr<TableStore>(std::move(store).value());
  }

  Status wipe(const std::string& table, int32_t partition) override {
    if (auto s = validate_partition_name(table, partition); !s) return s;
    return RocksDbStore::destroy(path(table, partition));
  }

  [[nodiscard]] std::string url() const override { return "rocksdb://"; }

 private:
  [[nodiscard]] std::string path(const std::string& table, int32_t partition) const {
    return data_dir_ + "/" + partition_name(table, partition);
  }

  std::string data_dir_;
};

}  // namespace

Status validate_partition_name(const std::string& table, int32_t partition) {
  if (table.empty() || table == "." || table == ".." || table.find('/') != std::string::npos ||
      table.find('\0') != std::string::npos) {
    return Error::of(ErrorCode::kInvalidArg,
                     "table store: invalid table name '" + table +
                         "' (must be non-empty, not '.' or '..', without '/' or NUL)");
  }
  if (partition < 0) {
    return Error::of(ErrorCode::kInvalidArg, "table store: invalid partition " + std::to_string(partition) +
                                                 " of table '" + table + "'");
  }
  return {};
}

Status validate_changelog_batch(const std::vector<ChangelogRecord>& records, std::optional<int64_t> applied) {
  std::optional<int64_t> previous = applied;
  for (std::size_t i = 0; i < records.size(); ++i) {
    const int64_t offset = records[i].offset;
    if (offset < 0) {
      return Error::of(ErrorCode::kInvalidArg, "apply_batch: record " + std::to_string(i) +
                                                   " has negative offset " + std::to_string(offset));
    }
    if (previous && offset <= *previous) {
      return Error::of(ErrorCode::kInvalidArg,
                       "apply_batch: record " + std::to_string(i) + " has offset " + std::to_string(offset) +
                           ", not greater than " +
                           (i == 0 ? "the applied offset " : "the previous record's ") +
                           std::to_string(*previous) + " (a record applied twice or out of order)");
    }
    previous = offset;
  }
  return {};
}

Result<std::unique_ptr<StoreFactory>> make_store_factory(std::string_view url, const std::string& data_dir) {
  if (url == "memory://") return std::unique_ptr<StoreFactory>(std::make_unique<MemoryStoreFactory>());
  if (url == "rocksdb://") {
    if (data_dir.empty()) {
      return Error::of(ErrorCode::kInvalidArg,
                       "table store URL 'rocksdb://' needs a data directory; none was given");
    }
    return std::unique_ptr<StoreFactory>(std::make_unique<RocksDbStoreFactory>(data_dir));
  }
  return Error::of(ErrorCode::kInvalidArg, "unsupported table store URL '" + std::string(url) +
                                               "': accepted forms are 'memory://' and 'rocksdb://'");
}

}  // namespace mephisto::store
