// Benchmark (not a test): the restore rate of the table stores — changelog records applied per second, as a
// restore does it: apply_batch() over batches read from the changelog, each batch one atomic write of its
// records plus the applied offset. Records: keys drawn (seeded) from a space of 100,000, 100-byte values,
// offsets 0..N-1. Only the apply_batch calls are timed (generating the batches is not). Also timed and shown
// apart: the first read after the restore (a get(); for RocksDB it ends the restore: the store flushes its
// restore memtable and reopens for serving, see runtime/store/rocksdb_store.h) and close. Goal: >= 500,000
// records/s into RocksDB on one core.
//
//   build/bin/bench_store_restore [--records N] [--batch N] [--keys N] [--dir DIR]
#include <CLI/CLI.hpp>

#include <unistd.h>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <random>
#include <string>

#include "runtime/store/store.h"

using namespace mephisto;
using namespace mephisto::store;

namespace {

using Clock = std::chrono::steady_clock;

struct Figures {
  double apply_s = 0;
  double first_read_s = 0;
  double close_s = 0;
  size_t final_size = 0;
};

bool run(StoreFactory& factory, int64_t records, int64_t batch_size, int64_t keys, Figures& out) {
  auto opened = factory.open("bench", 0);
  if (!opened) {
    std::fprintf(stderr, "open: %s\n", opened.error().to_string().c_str());
    return false;
  }
  auto store = std::move(opened).value();
  std::mt19937_64 rng(42);
  std::uniform_int_distribution<int64_t> key_of(0, keys - 1);
  std::string value(100, 'v');
  std::vector<ChangelogRecord> batch;
  batch.reserve(static_cast<size_t>(batch_size));
  Clock::duration applying{};
  for (int64_t offset = 0; offset < records;) {
    batch.clear();
    for (int64_t i = 0; i < batch_size && offset < records; ++i, ++offset) {
      value[0] = static_cast<char>('a' + offset % 26);
      batch.push_back(ChangelogRecord{offset, "key-" + std::to_string(key_of(rng)), value});
    }
    const auto start = Clock::now();
    const Status s = store->apply_batch(batch);
    applying += Clock::now() - start;
    if (!s) {
      std::fprintf(stderr, "apply_batch: %s\n", s.error().to_string().c_str());
      return false;
    }
  }
  const auto read_start = Clock::now();
  if (auto r = store->get("key-0"); !r) {
    std::fprintf(stderr, "get: %s\n", r.error().to_string().c_str());
    return false;
  }
  out.first_read_s = std::chrono::duration<double>(Clock::now() - read_start).count();
  auto size = store->size();
  out.final_size = size ? *size : 0;
  const auto start = Clock::now();
  if (const Status s = store->close(); !s) {
    std::fprintf(stderr, "close: %s\n", s.error().to_string().c_str());
    return false;
  }
  out.close_s = std::chrono::duration<double>(Clock::now() - start).count();
  out.apply_s = std::chrono::duration<double>(applying).count();
  return true;
}

void print(const char* name, int64_t records, const Figures& f) {
  std::printf(
      "%-8s  %10.0f records/s   (%lld records in %.3f s; %zu distinct keys at the end; first read %.3f s; "
      "close %.3f s)\n",
      name, static_cast<double>(records) / f.apply_s, static_cast<long long>(records), f.apply_s,
      f.final_size, f.first_read_s, f.close_s);
  std::printf("          %10.0f records/s   including the first read\n",
              static_cast<double>(records) / (f.apply_s + f.first_read_s));
}

}  // namespace

int main(int argc, char** argv) {
  int64_t records = 1'000'000;
  int64_t batch = 10'000;
  int64_t keys = 100'000;
  std::string dir;
  CLI::App app{"Table store restore rate: changelog records/s applied with apply_batch"};
  app.add_option("--records", records, "changelog records to apply")->check(CLI::PositiveNumber);
  app.add_option("--batch", batch, "records per apply_batch (one atomic write)")->check(CLI::PositiveNumber);
  app.add_option("--keys", keys, "size of the key space")->check(CLI::PositiveNumber);
  app.add_option("--dir", dir, "data directory for RocksDB (default: a fresh temp dir, removed at the end)");
  CLI11_PARSE(app, argc, argv);

  const bool temp = dir.empty();
  if (temp) {
    dir = (std::filesystem::temp_directory_path() / ("mephisto-bench-store-" + std::to_string(::getpid())))
              .string();
  }
  std::printf("restore: %lld records, batches of %lld, %lld keys, 100-byte values; RocksDB in %s\n",
              static_cast<long long>(records), static_cast<long long>(batch), static_cast<long long>(keys),
              dir.c_str());

  int rc = 0;
  auto rocks = make_store_factory("rocksdb://", dir);
  if (!rocks) {
    std::fprintf(stderr, "%s\n", rocks.error().to_string().c_str());
    return 1;
  }
  if (const Status s = (*rocks)->wipe("bench", 0); !s) {
    std::fprintf(stderr, "wipe: %s\n", s.error().to_string().c_str());
    return 1;
  }
  Figures rf;
  if (run(**rocks, records, batch, keys, rf)) {
    print("rocksdb", records, rf);
    const double rate = static_cast<double>(records) / rf.apply_s;
    std::printf("          goal >= 500000 records/s: %s\n", rate >= 500'000 ? "met" : "NOT met");
  } else {
    rc = 1;
  }
  (void)(*rocks)->wipe("bench", 0);
  if (temp) std::filesystem::remove_all(dir);

  auto memory = make_store_factory("memory://", "");
  Figures mf;
  if (memory && run(**memory, records, batch, keys, mf)) {
    print("memory", records, mf);
  } else {
    rc = 1;
  }
  return rc;
}
