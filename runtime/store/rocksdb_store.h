// RocksDbStore: a TableStore over one RocksDB database (one per table partition). RocksDB itself is included
// only by rocksdb_store.cpp; this header does not expose it.
//
// Layout: the table's entries are the database's default column family, keys and values as given. The applied
// offset lives in a separate column family, "mephisto.meta" (key "applied_offset", 8-byte big-endian value):
// a column family is its own key space, so no user key — arbitrary bytes — can collide with it, user keys
// need no escaping, and for_each/size never have to skip it; a WriteBatch spanning both column families is
// still one atomic write (one WAL record), which is what ties the offset to the data.
//
// Durability: WAL on, no fsync per write (WriteOptions::sync = false), point-in-time WAL recovery. A process
// crash loses nothing (the WAL is in the OS page cache); a machine crash may lose the last few batches, but
// recovery stops at a batch boundary, so the store comes back at an older but consistent (data, applied
// offset) pair, and the restore simply resumes from that offset + 1 — the changelog topic is the source of
// truth, the store a cache of it. Fsyncing every batch would cost a disk round trip per batch during restores
// and buy nothing.
//
// Tuned for bulk restore: 64 MiB write buffers (up to 4), so a restore writes few, large L0 files; bloom
// filters for point reads.
//
// Two modes, each a way of opening the same database (the memtable is fixed when a database is opened):
//  - serving (as opened): skiplist memtable, cheap to read. apply_batch writes the last record per key, in
//  key
//    order (the skiplist inserts ascending keys faster).
//  - restoring: vector memtable (16 MiB buffers): an insert is an append; the vector is sorted once, when it
//    is flushed. Reading an active vector memtable copies and sorts it, so this mode only lasts while nothing
//    but apply_batch runs: consecutive apply_batch calls reaching `restore_threshold` records switch to it
//    (close + reopen), and the next other operation (get, put, erase, write_batch, for_each, size) switches
//    back first: flush both column families, close, reopen serving. close() in restoring mode flushes too.
// The switch changes neither the durability nor the atomicity above: every write is still one WriteBatch
// with the offset, through the WAL; a crash in either mode, or mid-switch, recovers by WAL replay (into the
// mode the next open uses) to a batch boundary. The store keeps its registry entry across the switch; if the
// reopen fails (e.g. another process took the LOCK in between) the store ends closed and the call is kFail.
// The switch back costs a flush (the sort the appends deferred), so a restore is only ready for reads after
// it; bench_store_restore times it apart ("first read").
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "runtime/store/store.h"

namespace mephisto::store {

class RocksDbStore final : public TableStore {
 public:
  // Opens (creating directories and the database as needed) the database in `dir`. kState if `dir` is already
  // open in this process (through any RocksDbStore), kFail naming `dir` and RocksDB's reason if it cannot be
  // opened (e.g. another process holds its LOCK, or the files are corrupt).
  //
  // `restore_threshold`: how many records consecutive apply_batch calls (with no other operation between
  // them) must reach before the store switches to restoring mode (see above); tests lower it.
  static Result<std::unique_ptr<RocksDbStore>> open(const std::string& dir,
                                                    uint64_t restore_threshold = kDefaultRestoreThreshold);

  static constexpr uint64_t kDefaultRestoreThreshold = 20'000;

  // Removes the database in `dir` (succeeds if there is none). kState if it is open in this process.
  static Status destroy(const std::string& dir);

  ~RocksDbStore() override;

  Result<std::optional<std::string>> get(std::string_view key) override;
  Status put(std::string_view key, std::string_view value) override;
  Status erase(std::string_view key) override;
  [[nodiscard]] std::optional<int64_t> applied_offset() const override;
  Status apply_batch(const std::vector<ChangelogRecord>& records) override;
  Status write_batch(const std::vector<WriteOp>& ops, std::optional<int64_t> applied_offset) override;
  Status for_each(const std::function<void(std::string_view key, std::string_view value)>& fn) override;
  // Closes the database, renames its directory aside (atomic), deletes it and opens a fresh database: a crash
  // part-way leaves either the old database or none (a leftover "<dir>.wiping" is removed by the next open).
  Status clear() override;
  Result<std::size_t> size() override;
  // Closes the database (its background work is cancelled and waited for) and releases its LOCK.
  Status close() override;

  // The directory this store uses.
  [[nodiscard]] const std::string& dir() const;

  struct Impl;

 private:
  explicit RocksDbStore(std::unique_ptr<Impl> impl);
  Status serve();
  Status fail_closed(Error e);
  std::unique_ptr<Impl> impl_;
};

}  // namespace mephisto::store
