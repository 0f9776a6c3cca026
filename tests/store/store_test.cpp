// The TableStore contract, run against both stores (memory://, rocksdb://), plus the RocksDB specifics and a
// rapidcheck property: random operation sequences give the same results on RocksDbStore as on MemoryStore.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "runtime/store/memory_store.h"
#include "runtime/store/rocksdb_store.h"
#include "runtime/store/store.h"

namespace mephisto::store {
namespace {

namespace fs = std::filesystem;

// A fresh directory per test (or per property case), removed by the destructor.
class TempDir {
 public:
  TempDir() {
    static std::atomic<int> counter{0};
    path_ = fs::temp_directory_path() /
            ("mephisto-store-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  [[nodiscard]] std::string str() const { return path_.string(); }

 private:
  fs::path path_;
};

using Entries = std::vector<std::pair<std::string, std::string>>;

Entries entries_of(TableStore& store) {
  Entries out;
  const Status s = store.for_each([&](std::string_view k, std::string_view v) { out.emplace_back(k, v); });
  EXPECT_TRUE(s.ok()) << s.error();
  return out;
}

std::optional<std::string> get_ok(TableStore& store, std::string_view key) {
  auto r = store.get(key);
  EXPECT_TRUE(r.ok()) << r.error();
  return r.ok() ? *r : std::nullopt;
}

ChangelogRecord rec(int64_t offset, std::string key, std::optional<std::string> value) {
  return ChangelogRecord{offset, std::move(key), std::move(value)};
}

// ---------------------------------------------------------------------------------------------------------------
// The contract suite, parameterised by store URL.

class StoreContract : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    auto f = make_store_factory(GetParam(), dir_.str());
    ASSERT_TRUE(f.ok()) << f.error();
    factory_ = std::move(f).value();
    store_ = open_ok("t", 0);
    ASSERT_NE(store_, nullptr);
  }

  std::unique_ptr<TableStore> open_ok(const std::string& table, int32_t partition) {
    auto s = factory_->open(table, partition);
    EXPECT_TRUE(s.ok()) << s.error();
    return s.ok() ? std::move(s).value() : nullptr;
  }

  void reopen() {
    ASSERT_TRUE(store_->close().ok());
    store_.reset();
    store_ = open_ok("t", 0);
    ASSERT_NE(store_, nullptr);
  }

  TempDir dir_;
  std::unique_ptr<StoreFactory> factory_;
  std::unique_ptr<TableStore> store_;
};

TEST_P(StoreContract, FreshStoreIsEmptyWithNoOffset) {
  EXPECT_EQ(get_ok(*store_, "k"), std::nullopt);
  EXPECT_EQ(store_->applied_offset(), std::nullopt);
  EXPECT_EQ(*store_->size(), 0u);
  EXPECT_TRUE(entries_of(*store_).empty());
}

TEST_P(StoreContract, PutGetEraseIncludingBinaryAndEmptyKeys) {
  const std::string binary_key("a\0b\xff", 4);
  const std::string binary_value("\0\x01\xfe", 3);
  ASSERT_TRUE(store_->put("k", "v1").ok());
  ASSERT_TRUE(store_->put("k", "v2").ok());
  ASSERT_TRUE(store_->put("", "empty key").ok());
  ASSERT_TRUE(store_->put(binary_key, binary_value).ok());
  ASSERT_TRUE(store_->put("novalue", "").ok());
  EXPECT_EQ(get_ok(*store_, "k"), "v2");
  EXPECT_EQ(get_ok(*store_, ""), "empty key");
  EXPECT_EQ(get_ok(*store_, binary_key), binary_value);
  EXPECT_EQ(get_ok(*store_, "novalue"), "");  // an empty value is a value, not a deletion
  EXPECT_EQ(get_ok(*store_, std::string("a\0b", 3)), std::nullopt);
  EXPECT_EQ(*store_->size(), 4u);
  ASSERT_TRUE(store_->erase("k").ok());
  ASSERT_TRUE(store_->erase("absent").ok());
  EXPECT_EQ(get_ok(*store_, "k"), std::nullopt);
  EXPECT_EQ(*store_->size(), 3u);
  EXPECT_EQ(store_->applied_offset(), std::nullopt);  // put/erase never move the offset
}

TEST_P(StoreContract, ForEachVisitsInBytewiseKeyOrder) {
  for (const std::string& k :
       std::vector<std::string>{"b", "a", "ab", "\xff", std::string("\0", 1), "", "B", "a\x80"}) {
    ASSERT_TRUE(store_->put(k, "v" + k).ok());
  }
  const Entries got = entries_of(*store_);
  std::vector<std::string> keys;
  for (const auto& [k, v] : got) {
    keys.push_back(k);
    EXPECT_EQ(v, "v" + k);
  }
  const std::vector<std::string> expected = {"", std::string("\0", 1), "B", "a", "ab", "a\x80", "b", "\xff"};
  EXPECT_EQ(keys, expected);
}

TEST_P(StoreContract, ApplyBatchSetsDataAndOffsetTogether) {
  ASSERT_TRUE(store_->apply_batch({rec(10, "a", "1"), rec(11, "b", "2"), rec(15, "a", "3")}).ok());
  EXPECT_EQ(store_->applied_offset(), 15);
  EXPECT_EQ(get_ok(*store_, "a"), "3");  // a later record for the same key wins
  EXPECT_EQ(get_ok(*store_, "b"), "2");
  reopen();
  EXPECT_EQ(store_->applied_offset(), 15);
  EXPECT_EQ(get_ok(*store_, "a"), "3");
  EXPECT_EQ(get_ok(*store_, "b"), "2");
}

TEST_P(StoreContract, TombstonesDelete) {
  ASSERT_TRUE(store_->apply_batch({rec(0, "a", "1"), rec(1, "b", "2"), rec(2, "c", "3")}).ok());
  ASSERT_TRUE(store_->apply_batch({rec(3, "a", std::nullopt), rec(4, "zz", std::nullopt)}).ok());
  EXPECT_EQ(get_ok(*store_, "a"), std::nullopt);
  EXPECT_EQ(store_->applied_offset(), 4);  // a tombstone of an absent key still advances the offset
  ASSERT_TRUE(store_->apply_batch({rec(5, "b", std::nullopt), rec(6, "b", "again")}).ok());
  EXPECT_EQ(get_ok(*store_, "b"), "again");
  ASSERT_TRUE(store_->write_batch({{"c", std::nullopt}, {"d", "4"}}, 7).ok());
  EXPECT_EQ(entries_of(*store_), (Entries{{"b", "again"}, {"d", "4"}}));
  reopen();
  EXPECT_EQ(entries_of(*store_), (Entries{{"b", "again"}, {"d", "4"}}));
  EXPECT_EQ(store_->applied_offset(), 7);
}

TEST_P(StoreContract, ApplyBatchRejectsReplayedOrUnorderedOffsetsAndWritesNothing) {
  ASSERT_TRUE(store_->apply_batch({rec(5, "a", "1")}).ok());
  for (const auto& bad : std::vector<std::vector<ChangelogRecord>>{
           {rec(5, "x", "1")},                    // not greater than the applied offset
           {rec(3, "x", "1")},                    // behind it
           {rec(6, "x", "1"), rec(6, "y", "1")},  // not strictly increasing
           {rec(7, "x", "1"), rec(6, "y", "1")},  // decreasing
           {rec(-1, "x", "1")}}) {                // negative
    const Status s = store_->apply_batch(bad);
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.code(), ErrorCode::kInvalidArg);
    EXPECT_NE(s.error().message.find("apply_batch"), std::string::npos) << s.error();
  }
  EXPECT_EQ(get_ok(*store_, "x"), std::nullopt);
  EXPECT_EQ(store_->applied_offset(), 5);
  ASSERT_TRUE(store_->apply_batch({}).ok());  // empty: a no-op
  EXPECT_EQ(store_->applied_offset(), 5);
}

TEST_P(StoreContract, WriteBatchOffsetIsOptional) {
  ASSERT_TRUE(store_->write_batch({{"a", "1"}}, std::nullopt).ok());
  EXPECT_EQ(store_->applied_offset(), std::nullopt);
  ASSERT_TRUE(store_->write_batch({{"b", "2"}}, 100).ok());
  EXPECT_EQ(store_->applied_offset(), 100);
  ASSERT_TRUE(store_->write_batch({{"c", "3"}}, std::nullopt).ok());
  EXPECT_EQ(store_->applied_offset(), 100);
  ASSERT_TRUE(store_->write_batch({}, 50).ok());  // no ordering check here: the runtime owns the meaning
  EXPECT_EQ(store_->applied_offset(), 50);
  const Status bad = store_->write_batch({{"d", "4"}}, -2);
  EXPECT_EQ(bad.code(), ErrorCode::kInvalidArg);
  EXPECT_EQ(get_ok(*store_, "d"), std::nullopt);
  reopen();
  EXPECT_EQ(store_->applied_offset(), 50);
  EXPECT_EQ(entries_of(*store_), (Entries{{"a", "1"}, {"b", "2"}, {"c", "3"}}));
}

TEST_P(StoreContract, ClearDropsDataAndOffset) {
  ASSERT_TRUE(store_->apply_batch({rec(1, "a", "1"), rec(2, "b", "2")}).ok());
  ASSERT_TRUE(store_->clear().ok());
  EXPECT_EQ(store_->applied_offset(), std::nullopt);
  EXPECT_EQ(*store_->size(), 0u);
  EXPECT_EQ(get_ok(*store_, "a"), std::nullopt);
  // Usable afterwards, and any offset is acceptable again.
  ASSERT_TRUE(store_->apply_batch({rec(0, "c", "3")}).ok());
  EXPECT_EQ(store_->applied_offset(), 0);
  reopen();
  EXPECT_EQ(entries_of(*store_), (Entries{{"c", "3"}}));
  EXPECT_EQ(store_->applied_offset(), 0);
  ASSERT_TRUE(store_->clear().ok());
  reopen();
  EXPECT_TRUE(entries_of(*store_).empty());
  EXPECT_EQ(store_->applied_offset(), std::nullopt);
}

TEST_P(StoreContract, ReopenAfterCloseFiftyTimes) {
  for (int i = 0; i < 50; ++i) {
    ASSERT_TRUE(store_->apply_batch({rec(i, "k" + std::to_string(i), std::to_string(i))}).ok()) << i;
    ASSERT_TRUE(store_->close().ok()) << i;
    store_.reset();
    auto again = factory_->open("t", 0);
    ASSERT_TRUE(again.ok()) << "cycle " << i << ": " << again.error();
    store_ = std::move(again).value();
    ASSERT_EQ(store_->applied_offset(), i);
    ASSERT_EQ(*store_->size(), static_cast<std::size_t>(i + 1));
  }
}

TEST_P(StoreContract, DestroyingWithoutCloseAlsoReleasesThePartition) {
  ASSERT_TRUE(store_->put("a", "1").ok());
  store_.reset();
  store_ = open_ok("t", 0);
  ASSERT_NE(store_, nullptr);
  EXPECT_EQ(get_ok(*store_, "a"), "1");
}

TEST_P(StoreContract, SecondOpenOfAnOpenPartitionIsAStateError) {
  auto second = factory_->open("t", 0);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.code(), ErrorCode::kState);
  EXPECT_NE(second.error().message.find("already open"), std::string::npos) << second.error();
  // Other partitions and tables are independent.
  auto other = open_ok("t", 1);
  auto table = open_ok("u", 0);
  ASSERT_TRUE(other && table);
  ASSERT_TRUE(other->put("a", "other").ok());
  EXPECT_EQ(get_ok(*store_, "a"), std::nullopt);
  // After close, it opens.
  ASSERT_TRUE(store_->close().ok());
  EXPECT_TRUE(factory_->open("t", 0).ok());
}

TEST_P(StoreContract, ClosedStoreRefusesCallsAndKeepsItsOffset) {
  ASSERT_TRUE(store_->apply_batch({rec(3, "a", "1")}).ok());
  ASSERT_TRUE(store_->close().ok());
  ASSERT_TRUE(store_->close().ok());  // idempotent
  EXPECT_EQ(store_->applied_offset(), 3);
  EXPECT_EQ(store_->get("a").code(), ErrorCode::kState);
  EXPECT_EQ(store_->put("a", "b").code(), ErrorCode::kState);
  EXPECT_EQ(store_->erase("a").code(), ErrorCode::kState);
  EXPECT_EQ(store_->apply_batch({rec(4, "a", "1")}).code(), ErrorCode::kState);
  EXPECT_EQ(store_->write_batch({}, 5).code(), ErrorCode::kState);
  EXPECT_EQ(store_->for_each([](auto, auto) {}).code(), ErrorCode::kState);
  EXPECT_EQ(store_->clear().code(), ErrorCode::kState);
  EXPECT_EQ(store_->size().code(), ErrorCode::kState);
}

TEST_P(StoreContract, WipeRemovesAClosedPartitionAndRefusesAnOpenOne) {
  ASSERT_TRUE(store_->apply_batch({rec(1, "a", "1")}).ok());
  EXPECT_EQ(factory_->wipe("t", 0).code(), ErrorCode::kState);
  ASSERT_TRUE(store_->close().ok());
  ASSERT_TRUE(factory_->wipe("t", 0).ok());
  ASSERT_TRUE(factory_->wipe("t", 0).ok());      // nothing there: fine
  ASSERT_TRUE(factory_->wipe("never", 3).ok());  // never existed: fine
  store_ = open_ok("t", 0);
  ASSERT_NE(store_, nullptr);
  EXPECT_EQ(*store_->size(), 0u);
  EXPECT_EQ(store_->applied_offset(), std::nullopt);
}

TEST_P(StoreContract, InvalidTableNamesAndPartitions) {
  for (const std::string& bad : std::vector<std::string>{"", ".", "..", "a/b", std::string("a\0b", 3)}) {
    auto s = factory_->open(bad, 0);
    EXPECT_EQ(s.code(), ErrorCode::kInvalidArg) << bad;
    EXPECT_EQ(factory_->wipe(bad, 0).code(), ErrorCode::kInvalidArg) << bad;
  }
  EXPECT_EQ(factory_->open("t", -1).code(), ErrorCode::kInvalidArg);
}

INSTANTIATE_TEST_SUITE_P(Stores, StoreContract, ::testing::Values("memory://", "rocksdb://"),
                         [](const auto& info) { return info.param.substr(0, info.param.find(':')); });

// ---------------------------------------------------------------------------------------------------------------
// Factory URLs.

TEST(StoreFactoryUrl, AcceptsMemoryAndRocksDb) {
  TempDir dir;
  auto m = make_store_factory("memory://", "");
  ASSERT_TRUE(m.ok());
  EXPECT_EQ((*m)->url(), "memory://");
  auto r = make_store_factory("rocksdb://", dir.str());
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)->url(), "rocksdb://");
}

TEST(StoreFactoryUrl, RejectsAnythingElseNamingTheUrlAndTheAcceptedForms) {
  for (const std::string url :
       {"", "memory", "memory:/", "rocksdb:", "redis://", "rocksdb:///tmp/x", "MEMORY://"}) {
    auto f = make_store_factory(url, "/tmp");
    ASSERT_FALSE(f.ok()) << url;
    EXPECT_EQ(f.code(), ErrorCode::kInvalidArg) << url;
    const std::string& msg = f.error().message;
    EXPECT_NE(msg.find("'" + url + "'"), std::string::npos) << msg;
    EXPECT_NE(msg.find("memory://"), std::string::npos) << msg;
    EXPECT_NE(msg.find("rocksdb://"), std::string::npos) << msg;
  }
}

TEST(StoreFactoryUrl, RocksDbNeedsADataDir) {
  auto f = make_store_factory("rocksdb://", "");
  EXPECT_EQ(f.code(), ErrorCode::kInvalidArg);
}

// ---------------------------------------------------------------------------------------------------------------
// RocksDB specifics.

TEST(RocksDbStore, PartitionDirectoryLayout) {
  TempDir dir;
  auto factory = std::move(make_store_factory("rocksdb://", dir.str() + "/nested/data")).value();
  auto store = std::move(factory->open("orders", 7)).value();
  EXPECT_TRUE(fs::exists(dir.str() + "/nested/data/orders-7/CURRENT"));
  ASSERT_TRUE(store->close().ok());
  ASSERT_TRUE(factory->wipe("orders", 7).ok());
  EXPECT_FALSE(fs::exists(dir.str() + "/nested/data/orders-7"));
}

TEST(RocksDbStore, SameDirectoryUnderAnotherSpellingIsStillTheSamePartition) {
  TempDir dir;
  auto first = RocksDbStore::open(dir.str() + "/p");
  ASSERT_TRUE(first.ok()) << first.error();
  auto second = RocksDbStore::open(dir.str() + "/./p/");
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.code(), ErrorCode::kState);
}

TEST(RocksDbStore, LeftoverFromAnInterruptedClearIsRemovedOnOpen) {
  TempDir dir;
  const std::string p = dir.str() + "/t-0";
  fs::create_directories(p + ".wiping");
  auto store = RocksDbStore::open(p);
  ASSERT_TRUE(store.ok()) << store.error();
  EXPECT_FALSE(fs::exists(p + ".wiping"));
}

// Another process holding the database's LOCK: a kFail naming the path and RocksDB's reason. The child only
// takes a POSIX record lock on the LOCK file (as RocksDB does) with plain syscalls, so fork() is safe here.
TEST(RocksDbStore, LockHeldByAnotherProcessIsAClearFailure) {
  TempDir dir;
  const std::string p = dir.str() + "/t-0";
  {
    auto store = RocksDbStore::open(p);
    ASSERT_TRUE(store.ok()) << store.error();
  }
  int to_parent[2], to_child[2];
  ASSERT_EQ(::pipe(to_parent), 0);
  ASSERT_EQ(::pipe(to_child), 0);
  const std::string lock_file = p + "/LOCK";
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    const int fd = ::open(lock_file.c_str(), O_RDWR);
    struct flock fl = {};
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    const char ok = (fd >= 0 && ::fcntl(fd, F_SETLK, &fl) == 0) ? 'y' : 'n';
    (void)!::write(to_parent[1], &ok, 1);
    char c;
    (void)!::read(to_child[0], &c, 1);
    ::_exit(0);
  }
  char ok = 0;
  ASSERT_EQ(::read(to_parent[0], &ok, 1), 1);
  ASSERT_EQ(ok, 'y');
  auto store = RocksDbStore::open(p);
  const char go = 'g';
  (void)!::write(to_child[1], &go, 1);
  int status = 0;
  ::waitpid(pid, &status, 0);
  for (int fd : {to_parent[0], to_parent[1], to_child[0], to_child[1]}) ::close(fd);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.code(), ErrorCode::kFail);
  EXPECT_NE(store.error().message.find("rocksdb open " + fs::canonical(p).string() + ":"), std::string::npos)
      << store.error();
  EXPECT_NE(store.error().message.find("lock"), std::string::npos) << store.error();
  // The failed open released its registration: once the other process is gone, it opens.
  auto again = RocksDbStore::open(p);
  EXPECT_TRUE(again.ok()) << again.error();
}

TEST(RocksDbStore, LargeBatchSurvivesReopen) {
  TempDir dir;
  auto factory = std::move(make_store_factory("rocksdb://", dir.str())).value();
  std::vector<ChangelogRecord> batch;
  for (int i = 0; i < 20000; ++i)
    batch.push_back(rec(i, "key" + std::to_string(i % 5000), std::string(100, 'x')));
  {
    auto store = std::move(factory->open("t", 0)).value();
    ASSERT_TRUE(store->apply_batch(batch).ok());
  }
  auto store = std::move(factory->open("t", 0)).value();
  EXPECT_EQ(store->applied_offset(), 19999);
  EXPECT_EQ(*store->size(), 5000u);
}

// A bulk restore (restoring mode: vector memtable, several flushes) then reads, writes, a reopen, and a
// restore closed in restoring mode (close flushes).
TEST(RocksDbStore, BulkRestoreThenServeAndReopen) {
  TempDir dir;
  const std::string p = dir.str() + "/t-0";
  std::map<std::string, std::string> model;
  int64_t offset = 0;
  auto restore = [&](TableStore& store, int batches) {
    for (int b = 0; b < batches; ++b) {
      std::vector<ChangelogRecord> batch;
      for (int i = 0; i < 10000; ++i, ++offset) {
        std::string key = "k" + std::to_string((offset * 7919) % 30000);
        std::string value(100, static_cast<char>('a' + offset % 26));
        model[key] = value;
        batch.push_back(rec(offset, std::move(key), std::move(value)));
      }
      ASSERT_TRUE(store.apply_batch(batch).ok());
    }
  };
  {
    auto store = std::move(RocksDbStore::open(p)).value();
    restore(*store, 30);  // ~40 MiB of entries: flushes in restoring mode
    EXPECT_EQ(get_ok(*store, "k1"), model["k1"]);
    ASSERT_TRUE(store->put("extra", "x").ok());
    model["extra"] = "x";
    restore(*store, 3);
    EXPECT_EQ(store->applied_offset(), offset - 1);
    Entries expected(model.begin(), model.end());
    EXPECT_EQ(entries_of(*store), expected);
    restore(*store, 3);
  }  // closed by the destructor, in restoring mode
  {
    auto store = std::move(RocksDbStore::open(p)).value();
    EXPECT_EQ(store->applied_offset(), offset - 1);
    EXPECT_EQ(entries_of(*store), Entries(model.begin(), model.end()));
  }
}

// A process killed (SIGKILL) in the middle of a bulk restore: the reopened store holds exactly the records up
// to its applied offset, and at least every batch whose apply_batch returned. The child writes in restoring
// mode and reports each applied offset on a pipe; the parent kills it after a few batches.
TEST(RocksDbStore, KilledDuringBulkRestoreReopensConsistent) {
  TempDir dir;
  const std::string p = dir.str() + "/t-0";
  auto record = [](int64_t offset) {
    return rec(offset, "k" + std::to_string((offset * 7919) % 20000),
               std::string(100, static_cast<char>('a' + offset % 26)));
  };
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::close(fds[0]);
    auto store = RocksDbStore::open(p, 1);
    if (!store.ok()) ::_exit(2);
    for (int64_t offset = 0;;) {
      std::vector<ChangelogRecord> batch;
      for (int i = 0; i < 5000; ++i) batch.push_back(record(offset++));
      if (!(*store)->apply_batch(batch).ok()) ::_exit(3);
      const int64_t done = offset - 1;
      if (::write(fds[1], &done, sizeof done) != sizeof done) ::_exit(4);
    }
  }
  ::close(fds[1]);
  int64_t acknowledged = -1;
  for (int i = 0; i < 40; ++i) ASSERT_EQ(::read(fds[0], &acknowledged, sizeof acknowledged), 8);
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  ::close(fds[0]);
  ASSERT_TRUE(WIFSIGNALED(status));
  auto store = RocksDbStore::open(p);
  ASSERT_TRUE(store.ok()) << store.error();  // no stale lock
  const auto applied = (*store)->applied_offset();
  ASSERT_TRUE(applied.has_value());
  EXPECT_GE(*applied, acknowledged);
  EXPECT_EQ((*applied + 1) % 5000, 0) << "a batch boundary";
  std::map<std::string, std::string> model;
  for (int64_t o = 0; o <= *applied; ++o) {
    auto r = record(o);
    model[r.key] = *r.value;
  }
  EXPECT_EQ(entries_of(**store), Entries(model.begin(), model.end()));
}

// ---------------------------------------------------------------------------------------------------------------
// Property: RocksDbStore behaves as MemoryStore (the model) under random operation sequences, reopens
// included.

std::string gen_key() {
  // A small key space (so operations collide) over bytes that stress ordering: NUL, 0x7f/0x80 and 0xff.
  const auto len = *rc::gen::inRange<size_t>(0, 4);
  std::string k;
  for (size_t i = 0; i < len; ++i)
    k.push_back(*rc::gen::element<char>('\0', 'a', 'b', '\x7f', '\x80', '\xff'));
  return k;
}

std::optional<std::string> gen_value() {
  if (*rc::gen::inRange(0, 4) == 0) return std::nullopt;
  return *rc::gen::container<std::string>(*rc::gen::inRange<size_t>(0, 20), rc::gen::arbitrary<char>());
}

// `restore_threshold` as RocksDbStore::open takes it: the default (small batches stay in serving mode) or 1
// (every apply_batch switches to restoring mode, and the next other operation back).
void check_against_model(uint64_t restore_threshold) {
  TempDir dir;
  const std::string path = dir.str() + "/t-0";
  auto open = [&]() -> std::unique_ptr<TableStore> {
    auto s = RocksDbStore::open(path, restore_threshold);
    RC_ASSERT(s.ok());
    return std::move(s).value();
  };
  auto rocks = open();
  MemoryStore model;
  const int steps = *rc::gen::inRange(1, 60);
  for (int step = 0; step < steps; ++step) {
    switch (*rc::gen::inRange(0, 9)) {
      case 0: {
        const auto k = gen_key();
        const auto v = gen_value().value_or("");
        RC_ASSERT(rocks->put(k, v).ok());
        RC_ASSERT(model.put(k, v).ok());
        break;
      }
      case 1: {
        const auto k = gen_key();
        RC_ASSERT(rocks->erase(k).ok());
        RC_ASSERT(model.erase(k).ok());
        break;
      }
      case 2:
      case 3: {
        // Usually a valid batch after the applied offset; sometimes a replay, which both must refuse.
        std::vector<ChangelogRecord> batch;
        int64_t next = model.applied_offset().value_or(-1) + 1 - (*rc::gen::inRange(0, 6) == 0 ? 1 : 0);
        const auto n = *rc::gen::inRange(0, 8);
        for (int i = 0; i < n; ++i) {
          batch.push_back(rec(next, gen_key(), gen_value()));
          next += 1 + *rc::gen::inRange(0, 3);
        }
        const Status a = rocks->apply_batch(batch);
        const Status b = model.apply_batch(batch);
        RC_ASSERT(a.code() == b.code());
        break;
      }
      case 4: {
        std::vector<WriteOp> ops;
        const auto n = *rc::gen::inRange(0, 6);
        for (int i = 0; i < n; ++i) ops.emplace_back(gen_key(), gen_value());
        const auto offset = *rc::gen::element<std::optional<int64_t>>(std::nullopt, 0, 7, 1000);
        RC_ASSERT(rocks->write_batch(ops, offset).ok());
        RC_ASSERT(model.write_batch(ops, offset).ok());
        break;
      }
      case 5:
        if (*rc::gen::inRange(0, 3) == 0) {
          RC_ASSERT(rocks->clear().ok());
          RC_ASSERT(model.clear().ok());
        }
        break;
      case 6: {
        RC_ASSERT(rocks->close().ok());
        rocks.reset();
        rocks = open();
        break;
      }
      default: {
        const auto k = gen_key();
        auto a = rocks->get(k);
        auto b = model.get(k);
        RC_ASSERT(a.ok() && b.ok());
        RC_ASSERT(*a == *b);
        break;
      }
    }
    RC_ASSERT(rocks->applied_offset() == model.applied_offset());
  }
  RC_ASSERT(entries_of(*rocks) == entries_of(model));
  RC_ASSERT(*rocks->size() == *model.size());
}

RC_GTEST_PROP(StoreProperty, RocksDbMatchesMemoryModel, ()) {
  check_against_model(RocksDbStore::kDefaultRestoreThreshold);
}

RC_GTEST_PROP(StoreProperty, RocksDbInRestoringModeMatchesMemoryModel, ()) {
  check_against_model(1);
}

}  // namespace
}  // namespace mephisto::store
