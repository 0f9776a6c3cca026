// Table stores: the local state of ONE table partition, and the factories that open them.
//
// A table's source of truth is its changelog topic; a store is a cache of the changelog applied up to some
// offset. Every store therefore keeps, atomically with its data, the changelog offset of the last record it
// applied (applied_offset()), so a restore after a crash or a rebalance resumes at applied_offset() + 1 and
// never applies a record twice or skips one.
//
// Threading: a TableStore is not thread-safe; one fiber (or one thread) uses it at a time. Expected failures
// are returned as Status / Result values with a message naming what failed; nothing here throws (except
// std::bad_alloc).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "runtime/seam/result.h"

namespace mephisto::store {

// One record of a table's changelog topic, as a restore reads it.
struct ChangelogRecord {
  int64_t offset = 0;                // the record's offset in the changelog partition (>= 0)
  std::string key;                   // arbitrary bytes (may be empty, may contain '\0')
  std::optional<std::string> value;  // std::nullopt is a tombstone: delete `key`
};

// One write of a per-commit batch: key -> value, or key -> std::nullopt (delete).
using WriteOp = std::pair<std::string, std::optional<std::string>>;

// The local state of one table partition: a map from byte-string keys to byte-string values, ordered bytewise
// (as memcmp orders them; shorter prefixes first), plus the changelog offset the data reflects.
//
// After close() (or a failed close), every call returns a kState error, applied_offset() keeps its last value
// and the destructor does nothing more; destroying a store that was not closed closes it and drops any error.
class TableStore {
 public:
  TableStore() = default;
  virtual ~TableStore() = default;
  TableStore(const TableStore&) = delete;
  TableStore& operator=(const TableStore&) = delete;

  // The value stored under `key`, std::nullopt if there is none. Fails (kFail) only if the underlying storage
  // cannot be read, or (kState) after close().
  virtual Result<std::optional<std::string>> get(std::string_view key) = 0;

  // Stores `value` under `key`, replacing any previous value. Does not change applied_offset(). The store
  // copies both; the caller keeps ownership of its arguments. Fails (kFail) if the write cannot be made; then
  // nothing changed.
  virtual Status put(std::string_view key, std::string_view value) = 0;

  // Removes `key` if present (erasing an absent key succeeds). Does not change applied_offset().
  virtual Status erase(std::string_view key) = 0;

  // The changelog offset of the last record applied (apply_batch) or recorded (write_batch), std::nullopt if
  // none was since the store was created or last cleared. Read once when the store is opened and kept in
  // memory, so this cannot fail; it is persisted in the same atomic write as the data it describes.
  [[nodiscard]] virtual std::optional<int64_t> applied_offset() const = 0;

  // The restore path: applies every record in order (a value is a put, std::nullopt a delete; a later record
  // for the same key wins) AND sets applied_offset() to the last record's offset, in ONE atomic write: after
  // a crash the store holds either all of the batch, offset included, or none of it. An empty batch is a
  // successful no-op. kInvalidArg (and nothing written) if an offset is negative, offsets are not strictly
  // increasing within the batch, or the first is not greater than applied_offset() — each of which means the
  // caller would apply a record twice or out of order. kFail if the write fails (nothing applied).
  virtual Status apply_batch(const std::vector<ChangelogRecord>& records) = 0;

  // The runtime's per-commit write: applies `ops` in order and, if `applied_offset` has a value, sets
  // applied_offset() to it, in ONE atomic write (std::nullopt leaves the offset as it is). No ordering check
  // on the offset: the caller owns its meaning. kInvalidArg if `applied_offset` is negative; kFail if the
  // write fails; in either case nothing changed. An empty `ops` with an offset just records the offset.
  virtual Status write_batch(const std::vector<WriteOp>& ops, std::optional<int64_t> applied_offset) = 0;

  // Calls `fn(key, value)` for every entry in key order. The views are valid only during the call. `fn` must
  // not modify the store. Sees a consistent snapshot (as of the call). kFail if the storage cannot be read
  // part-way (some entries may then have been visited).
  virtual Status for_each(const std::function<void(std::string_view key, std::string_view value)>& fn) = 0;

  // Wipes the partition: drops every entry and the applied offset, atomically with respect to crashes (a
  // crash leaves either the old state or an empty store). Used before a full restore from the changelog.
  virtual Status clear() = 0;

  // The number of entries. Exact; for RocksDB this scans the partition (O(entries)), so it is for tests,
  // tools and metrics, not for hot paths.
  virtual Result<std::size_t> size() = 0;

  // Releases the store and any lock on the partition, so the same partition can be opened again at once (in
  // this process or another); what was written stays as durable as the implementation made it (see
  // rocksdb_store.h). Idempotent: closing a closed store succeeds. kFail if the storage reports an error
  // while closing; the store is closed (and the partition released) all the same.
  virtual Status close() = 0;
};

// Opens table partitions of one kind of store (memory or RocksDB). A partition may be open at most once at a
// time per process: a second open() of an open partition is a kState error until the first store is
// closed/destroyed.
class StoreFactory {
 public:
  StoreFactory() = default;
  virtual ~StoreFactory() = default;
  StoreFactory(const StoreFactory&) = delete;
  StoreFactory& operator=(const StoreFactory&) = delete;

  // Opens (creating if needed) the store of `table`'s partition `partition`. The caller owns the store. It
  // may outlive the factory. kInvalidArg if `table` is empty, contains '/' or '\0' or is "." or "..", or
  // `partition` is negative; kState if the partition is already open in this process; kFail if the storage
  // cannot be opened (the message names the path and the cause, e.g. another process holds its lock).
  virtual Result<std::unique_ptr<TableStore>> open(const std::string& table, int32_t partition) = 0;

  // Deletes the partition's stored state (data and offset); succeeds if there is none. kState if the
  // partition is open; kInvalidArg as for open(); kFail if the files cannot be removed.
  virtual Status wipe(const std::string& table, int32_t partition) = 0;

  // "memory://" or "rocksdb://": what make_store_factory was given.
  [[nodiscard]] virtual std::string url() const = 0;
};

// The factory a store URL names:
//  - "memory://": partitions held in memory (std::map), kept by the factory for its lifetime, so a partition
//  that
//    is closed and reopened from the same factory still holds its data; gone when the factory (and every
//    store it opened) is destroyed. `data_dir` is ignored.
//  - "rocksdb://": one RocksDB database per partition under `<data_dir>/<table>-<partition>/` (directories
//  are
//    created on open). kInvalidArg if `data_dir` is empty.
// Anything else is kInvalidArg naming the URL and the accepted forms.
Result<std::unique_ptr<StoreFactory>> make_store_factory(std::string_view url, const std::string& data_dir);

// Checks a (table, partition) pair as open() and wipe() do: kInvalidArg with the reason, or ok.
Status validate_partition_name(const std::string& table, int32_t partition);

// The checks apply_batch makes on its records against the current offset (shared by the implementations).
Status validate_changelog_batch(const std::vector<ChangelogRecord>& records, std::optional<int64_t> applied);

}  // namespace mephisto::store
