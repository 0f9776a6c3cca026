// The RocksDB table store: the only file that includes RocksDB. See rocksdb_store.h for the layout and the
// durability argument.
#include "runtime/store/rocksdb_store.h"

#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/memtablerep.h>
#include <rocksdb/options.h>
#include <rocksdb/perf_level.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <filesystem>
#include <mutex>
#include <numeric>
#include <set>
#include <system_error>

namespace mephisto::store {
namespace {

namespace fs = std::filesystem;

constexpr const char* kMetaFamily = "mephisto.meta";
constexpr const char* kAppliedOffsetKey = "applied_offset";

// The directories of the databases open in this process. RocksDB would refuse a second open with an IO error
// on its LOCK file; this turns that into a clear kState before RocksDB is asked.
std::mutex& registry_mutex() {
  static std::mutex m;
  return m;
}
std::set<std::string>& open_dirs() {
  static std::set<std::string> dirs;
  return dirs;
}

bool register_dir(const std::string& dir) {
  std::lock_guard lock(registry_mutex());
  return open_dirs().insert(dir).second;
}
void unregister_dir(const std::string& dir) {
  std::lock_guard lock(registry_mutex());
  open_dirs().erase(dir);
}
bool is_registered(const std::string& dir) {
  std::lock_guard lock(registry_mutex());
  return open_dirs().count(dir) > 0;
}

Error rocks_error(const std::string& op, const std::string& dir, const rocksdb::Status& s) {
  return Error::of(ErrorCode::kFail, "rocksdb " + op + " " + dir + ": " + s.ToString());
}
Error fs_error(const std::string& op, const std::string& path, const std::error_code& ec) {
  return Error::of(ErrorCode::kFail, "rocksdb store: " + op + " " + path + ": " + ec.message());
}
Error closed_error(const std::string& dir) {
  return Error::of(ErrorCode::kState, "rocksdb store " + dir + ": the store is closed");
}

std::string encode_offset(int64_t offset) {
  std::string out(8, '\0');
  auto v = static_cast<uint64_t>(offset);
  for (int i = 7; i >= 0; --i) {
    out[static_cast<size_t>(i)] = static_cast<char>(v & 0xff);
    v >>= 8;
  }
  return out;
}

std::optional<int64_t> decode_offset(const std::string& bytes) {
  if (bytes.size() != 8) return std::nullopt;
  uint64_t v = 0;
  for (const char c : bytes) v = (v << 8) | static_cast<uint8_t>(c);
  return static_cast<int64_t>(v);
}

rocksdb::Slice slice(std::string_view s) {
  return {s.data(), s.size()};
}

// The two ways the database is opened (see rocksdb_store.h): serving (skiplist memtable: ordered, cheap to
// read) and restoring (vector memtable: an append per record, sorted once when flushed; every read of it
// copies and sorts it, so it is only used while nothing but apply_batch runs).
enum class Mode { kServing, kRestoring };

// Options for the data (default) column family and the database: large write buffers so a bulk restore writes
// few, large L0 files; bloom filters for point reads.
rocksdb::Options make_options(Mode mode) {
  rocksdb::Options o;
  o.create_if_missing = true;
  o.create_missing_column_families = true;
  o.write_buffer_size = 64u << 20;
  o.max_write_buffer_number = 4;
  o.max_total_wal_size = 256u << 20;
  o.max_background_jobs = 2;
  o.wal_recovery_mode = rocksdb::WALRecoveryMode::kPointInTimeRecovery;
  o.keep_log_file_num = 2;
  o.max_log_file_size = 1u << 20;
  rocksdb::BlockBasedTableOptions table;
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  o.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  if (mode == Mode::kRestoring) {
    o.memtable_factory = std::make_shared<rocksdb::VectorRepFactory>();
    // Small buffers: each flush sorts one vector, and a sort over 16 MiB of entries stays in cache (64 MiB:
    // faster apply_batch calls but a slower restore overall, the sorts only deferred; see README).
    o.write_buffer_size = 16u << 20;
    o.allow_concurrent_memtable_write = false;  // the vector memtable does not support it (one writer anyway)
  }
  return o;
}

// The meta column family holds one key: small buffers.
rocksdb::ColumnFamilyOptions meta_options() {
  rocksdb::ColumnFamilyOptions o;
  o.write_buffer_size = 1u << 20;
  return o;
}

rocksdb::WriteOptions write_options() {
  rocksdb::WriteOptions w;
  w.sync = false;  // WAL on, no fsync per batch: see rocksdb_store.h
  w.disableWAL = false;
  return w;
}

}  // namespace

struct RocksDbStore::Impl {
  std::string dir;  // canonical path; registered while !closed
  std::unique_ptr<rocksdb::DB> db;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;  // [0] default, [1] meta
  std::optional<int64_t> offset;
  bool closed = false;
  Mode mode = Mode::kServing;
  uint64_t restore_threshold = RocksDbStore::kDefaultRestoreThreshold;
  uint64_t restore_run = 0;   // records given to apply_batch since the last other operation
  rocksdb::WriteBatch batch;  // reused, so its buffer is allocated once

  rocksdb::ColumnFamilyHandle* data_cf() const { return handles[0]; }
  rocksdb::ColumnFamilyHandle* meta_cf() const { return handles[1]; }

  // Opens the database in `dir` (which exists) in `m` and reads the applied offset.
  Status open_db(Mode m) {
    mode = m;
    const rocksdb::Options options = make_options(m);
    std::vector<rocksdb::ColumnFamilyDescriptor> families = {
        {rocksdb::kDefaultColumnFamilyName, rocksdb::ColumnFamilyOptions(options)},
        {kMetaFamily, meta_options()},
    };
    rocksdb::DB* raw = nullptr;
    std::vector<rocksdb::ColumnFamilyHandle*> opened;
    const rocksdb::Status s = rocksdb::DB::Open(rocksdb::DBOptions(options), dir, families, &opened, &raw);
    if (!s.ok()) return rocks_error("open", dir, s);
    db.reset(raw);
    handles = std::move(opened);
    std::string bytes;
    const rocksdb::Status g = db->Get(rocksdb::ReadOptions(), meta_cf(), kAppliedOffsetKey, &bytes);
    if (g.IsNotFound()) {
      offset.reset();
    } else if (!g.ok()) {
      (void)close_db(/*flush=*/false);
      return rocks_error("read applied offset", dir, g);
    } else if (auto decoded = decode_offset(bytes); !decoded || *decoded < 0) {
      (void)close_db(/*flush=*/false);
      return Error::of(ErrorCode::kFail, "rocksdb open " + dir + ": corrupt applied offset (" +
                                             std::to_string(bytes.size()) + " bytes)");
    } else {
      offset = decoded;
    }
    return {};
  }

  // Closes the database and releases its LOCK (does not touch the registry). In restoring mode the memtables
  // are flushed first (unless `flush` is false), so that the next open, in serving mode, does not replay the
  // restore's WAL into a skiplist.
  Status close_db(bool flush = true) {
    if (!db) return {};
    rocksdb::Status first;
    if (flush && mode == Mode::kRestoring) first = flush_all();
    for (auto* h : handles) {
      const rocksdb::Status s = db->DestroyColumnFamilyHandle(h);
      if (first.ok() && !s.ok()) first = s;
    }
    handles.clear();
    const rocksdb::Status s = db->Close();
    if (first.ok() && !s.ok()) first = s;
    db.reset();  // the LOCK is released here
    if (!first.ok()) return rocks_error("close", dir, first);
    return {};
  }

  // Flushes both column families' memtables (waiting for the flush), so no WAL is needed to recover them.
  rocksdb::Status flush_all() {
    rocksdb::FlushOptions f;
    f.wait = true;
    return db->Flush(f, handles);
  }

  // Reopens the database in `m` (flushing first when leaving restoring mode). On failure the store is left
  // without a database; the caller closes it.
  Status switch_mode(Mode m) {
    if (auto s = close_db(); !s) return s;
    return open_db(m);
  }

  Status write(rocksdb::WriteBatch& batch, const char* op) {
    // RocksDB's perf counters (thread-local, on by default) count every key comparison the memtable makes: a
    // thread-local access per comparison through the shared library, ~10% of a restore. Off while writing.
    const rocksdb::PerfLevel level = rocksdb::GetPerfLevel();
    rocksdb::SetPerfLevel(rocksdb::PerfLevel::kDisable);
    const rocksdb::Status s = db->Write(write_options(), &batch);
    rocksdb::SetPerfLevel(level);
    if (!s.ok()) return rocks_error(op, dir, s);
    return {};
  }
};

RocksDbStore::RocksDbStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

// Every operation but apply_batch starts here: it ends a restore run, and a store in restoring mode goes back
// to serving mode (flush + reopen) before anything reads or writes it. kState if closed; kFail (and the store
// closed) if the reopen fails.
Status RocksDbStore::serve() {
  if (impl_->closed) return closed_error(impl_->dir);
  impl_->restore_run = 0;
  if (impl_->mode == Mode::kServing) return {};
  if (auto s = impl_->switch_mode(Mode::kServing); !s) return fail_closed(s.error());
  return {};
}

Status RocksDbStore::fail_closed(Error e) {
  (void)impl_->close_db(/*flush=*/false);
  impl_->closed = true;
  unregister_dir(impl_->dir);
  return e;
}

RocksDbStore::~RocksDbStore() {
  (void)close();
}

const std::string& RocksDbStore::dir() const {
  return impl_->dir;
}

Result<std::unique_ptr<RocksDbStore>> RocksDbStore::open(const std::string& dir, uint64_t restore_threshold) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return fs_error("create directory", dir, ec);
  const std::string canonical = fs::canonical(dir, ec).string();
  if (ec) return fs_error("resolve", dir, ec);
  if (!register_dir(canonical)) {
    return Error::of(
        ErrorCode::kState,
        "rocksdb open " + canonical + ": the partition is already open in this process; close it first");
  }
  // A clear() interrupted by a crash may have left its renamed-aside copy.
  fs::remove_all(canonical + ".wiping", ec);
  auto impl = std::make_unique<Impl>();
  impl->dir = canonical;
  impl->restore_threshold = restore_threshold;
  if (auto s = impl->open_db(Mode::kServing); !s) {
    unregister_dir(canonical);
    return s.error();
  }
  return std::unique_ptr<RocksDbStore>(new RocksDbStore(std::move(impl)));
}

Status RocksDbStore::destroy(const std::string& dir) {
  std::error_code ec;
  const std::string path = fs::weakly_canonical(dir, ec).string();
  if (ec) return fs_error("resolve", dir, ec);
  if (is_registered(path)) {
    return Error::of(ErrorCode::kState, "rocksdb wipe " + path + ": the partition is open; close it first");
  }
  fs::remove_all(path, ec);
  if (ec) return fs_error("remove", path, ec);
  fs::remove_all(path + ".wiping", ec);
  if (ec) return fs_error("remove", path + ".wiping", ec);
  return {};
}

Result<std::optional<std::string>> RocksDbStore::get(std::string_view key) {
  if (auto s = serve(); !s) return s.error();
  std::string value;
  const rocksdb::Status s = impl_->db->Get(rocksdb::ReadOptions(), impl_->data_cf(), slice(key), &value);
  if (s.IsNotFound()) return std::optional<std::string>();
  if (!s.ok()) return rocks_error("get", impl_->dir, s);
  return std::optional<std::string>(std::move(value));
}

Status RocksDbStore::put(std::string_view key, std::string_view value) {
  if (auto s = serve(); !s) return s;
  const rocksdb::Status s = impl_->db->Put(write_options(), impl_->data_cf(), slice(key), slice(value));
  if (!s.ok()) return rocks_error("put", impl_->dir, s);
  return {};
}

Status RocksDbStore::erase(std::string_view key) {
  if (auto s = serve(); !s) return s;
  const rocksdb::Status s = impl_->db->Delete(write_options(), impl_->data_cf(), slice(key));
  if (!s.ok()) return rocks_error("delete", impl_->dir, s);
  return {};
}

std::optional<int64_t> RocksDbStore::applied_offset() const {
  return impl_->offset;
}

Status RocksDbStore::apply_batch(const std::vector<ChangelogRecord>& records) {
  if (impl_->closed) return closed_error(impl_->dir);
  if (auto s = validate_changelog_batch(records, impl_->offset); !s) return s;
  if (records.empty()) return {};
  impl_->restore_run += records.size();
  if (impl_->mode == Mode::kServing && impl_->restore_run >= impl_->restore_threshold) {
    if (auto s = impl_->switch_mode(Mode::kRestoring); !s) return fail_closed(s.error());
  }
  rocksdb::WriteBatch& batch = impl_->batch;
  batch.Clear();
  rocksdb::ColumnFamilyHandle* const data = impl_->data_cf();
  auto add = [&](const ChangelogRecord& r) {
    return r.value ? batch.Put(data, slice(r.key), slice(*r.value)) : batch.Delete(data, slice(r.key));
  };
  if (impl_->mode == Mode::kRestoring) {
    // The vector memtable appends whatever it is given and sorts once, at flush: write the records as they
    // are. Each entry of a WriteBatch gets its own sequence number, so a later record for a key wins.
    for (const ChangelogRecord& r : records) {
      if (const rocksdb::Status s = add(r); !s.ok()) return rocks_error("apply_batch", impl_->dir, s);
    }
  } else {
    // Only the last record per key matters within one atomic write, and the skiplist memtable inserts keys in
    // ascending order far faster than random ones (it reuses the previous insert's search path): so write the
    // last record of each key, in key order.
    std::vector<uint32_t> order(records.size());
    std::iota(order.begin(), order.end(), 0u);
    std::stable_sort(order.begin(), order.end(),
                     [&](uint32_t x, uint32_t y) { return records[x].key < records[y].key; });
    for (std::size_t i = 0; i < order.size(); ++i) {
      if (i + 1 < order.size() && records[order[i + 1]].key == records[order[i]].key) continue;  // superseded
      if (const rocksdb::Status s = add(records[order[i]]); !s.ok()) {
        return rocks_error("apply_batch", impl_->dir, s);
      }
    }
  }
  const int64_t last = records.back().offset;
  if (const rocksdb::Status s = batch.Put(impl_->meta_cf(), kAppliedOffsetKey, encode_offset(last));
      !s.ok()) {
    return rocks_error("apply_batch", impl_->dir, s);
  }
  if (auto s = impl_->write(batch, "apply_batch"); !s) return s;
  impl_->offset = last;
  return {};
}

Status RocksDbStore::write_batch(const std::vector<WriteOp>& ops, std::optional<int64_t> applied_offset) {
  if (auto s = serve(); !s) return s;
  if (applied_offset && *applied_offset < 0) {
    return Error::of(ErrorCode::kInvalidArg,
                     "write_batch: applied offset " + std::to_string(*applied_offset) + " is negative");
  }
  rocksdb::WriteBatch batch;
  for (const auto& [key, value] : ops) {
    const rocksdb::Status s =
        value ? batch.Put(impl_->data_cf(), key, *value) : batch.Delete(impl_->data_cf(), key);
    if (!s.ok()) return rocks_error("write_batch", impl_->dir, s);
  }
  if (applied_offset) {
    const rocksdb::Status s = batch.Put(impl_->meta_cf(), kAppliedOffsetKey, encode_offset(*applied_offset));
    if (!s.ok()) return rocks_error("write_batch", impl_->dir, s);
  }
  if (batch.Count() == 0) return {};
  if (auto s = impl_->write(batch, "write_batch"); !s) return s;
  if (applied_offset) impl_->offset = applied_offset;
  return {};
}

Status RocksDbStore::for_each(const std::function<void(std::string_view key, std::string_view value)>& fn) {
  if (auto s = serve(); !s) return s;
  rocksdb::ReadOptions options;
  options.fill_cache = false;
  std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator(options, impl_->data_cf()));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    fn(std::string_view(it->key().data(), it->key().size()),
       std::string_view(it->value().data(), it->value().size()));
  }
  if (!it->status().ok()) return rocks_error("scan", impl_->dir, it->status());
  return {};
}

Result<std::size_t> RocksDbStore::size() {
  if (auto s = serve(); !s) return s.error();
  rocksdb::ReadOptions options;
  options.fill_cache = false;
  std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator(options, impl_->data_cf()));
  std::size_t n = 0;
  for (it->SeekToFirst(); it->Valid(); it->Next()) ++n;
  if (!it->status().ok()) return rocks_error("scan", impl_->dir, it->status());
  return n;
}

Status RocksDbStore::clear() {
  if (impl_->closed) return closed_error(impl_->dir);
  // On any failure below the store ends closed (and unregistered): its state on disk is then whatever the
  // crash argument in rocksdb_store.h says, and reopening sorts it out.
  auto fail = [this](Error e) -> Status { return fail_closed(std::move(e)); };
  impl_->restore_run = 0;
  // No flush in restoring mode: the data is about to be deleted.
  if (auto s = impl_->close_db(/*flush=*/false); !s) return fail(s.error());
  const std::string& dir = impl_->dir;
  const std::string aside = dir + ".wiping";
  std::error_code ec;
  fs::remove_all(aside, ec);
  if (ec) return fail(fs_error("remove", aside, ec));
  fs::rename(dir, aside, ec);  // atomic: from here the old database is gone
  if (ec) return fail(fs_error("rename", dir, ec));
  fs::remove_all(aside, ec);
  if (ec) return fail(fs_error("remove", aside, ec));
  fs::create_directories(dir, ec);
  if (ec) return fail(fs_error("create directory", dir, ec));
  if (auto s = impl_->open_db(Mode::kServing); !s) return fail(s.error());
  return {};
}

Status RocksDbStore::close() {
  if (impl_->closed) return {};
  Status s = impl_->close_db();
  impl_->closed = true;
  unregister_dir(impl_->dir);
  return s;
}

}  // namespace mephisto::store
