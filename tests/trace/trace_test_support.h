// Shared by the trace tests and the fuzz driver: a settable clock, a scratch directory, and a writer run that
// exercises every Recorder hook.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "runtime/seam/clock.h"
#include "runtime/trace/trace_writer.h"

namespace mephisto::trace::testing {

struct FakeClock final : Clock {
  int64_t now = 1'000'000;
  [[nodiscard]] int64_t now_ms() const override { return now; }
};

// A fresh directory under the system's temporary directory, removed with the object.
class ScratchDir {
 public:
  explicit ScratchDir(const std::string& name) {
    path_ = std::filesystem::temp_directory_path() /
            ("mephisto-trace-" + name + "-" + std::to_string(::getpid()));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~ScratchDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;

  [[nodiscard]] std::string str() const { return path_.string(); }
  [[nodiscard]] std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

inline std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

inline void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

inline RecordedStart test_start(int64_t time_ms, const std::string& worker_id = "w0") {
  RecordedStart start;
  start.app_id = "tablecount";
  start.worker_id = worker_id;
  start.processing_guarantee = "exactly_once";
  start.declarations = {"agent count topic=words", "table counts partitions=4"};
  start.time_ms = time_ms;
  return start;
}

inline ConsumerRecord consumer_record(const std::string& topic, int32_t partition, int64_t offset,
                                      std::optional<std::string> key, std::optional<std::string> value) {
  ConsumerRecord record;
  record.topic = topic;
  record.partition = partition;
  record.offset = offset;
  record.key = std::move(key);
  record.value = std::move(value);
  record.timestamp_ms = 500 + offset;
  return record;
}

// One incarnation that calls every hook once (Polled twice, the second with a null key and a tombstone),
// advancing the clock by 10 ms before each hook after the start. Returns the number of events it writes
// (Stopped included).
inline int record_every_kind(TraceWriter& writer, FakeClock& clock) {
  writer.on_start(test_start(clock.now));
  const auto tick = [&] { clock.now += 10; };
  tick();
  writer.on_assigned({{"words", 0}, {"words", 1}}, 7);
  tick();
  ConsumerRecord a = consumer_record("words", 0, 41, "k1", "v1");
  a.headers = {{"trace-id", "abc"}, {"empty", std::nullopt}};
  const ConsumerRecord b = consumer_record("words", 1, 3, std::nullopt, std::nullopt);
  writer.on_polled({&a});
  tick();
  writer.on_polled({&b, &a});
  tick();
  writer.on_table_opened("counts", 2, 99, {{"zeta", "1"}, {"alpha", "2"}, {"", ""}});
  tick();
  writer.on_table_applied({consumer_record("tablecount-counts-changelog", 2, 100, "alpha", "3")});
  tick();
  writer.on_restore_end({"tablecount-counts-changelog", 2}, 101);
  tick();
  writer.on_table_active("counts", 2);
  tick();
  writer.on_timer("every-5s");
  tick();
  ProducerRecord sent;
  sent.topic = "out";
  sent.key = "k1";
  sent.value = "payload";
  sent.headers = {{"h", "x"}};
  sent.timestamp_ms = 1234;
  const uint64_t send_id = writer.on_send(sent, {{"words", 0, 41, ""}, {"", 0, -1, "every-5s"}});
  tick();
  writer.on_delivered(send_id, RecordMetadata{{"out", 5}, 77, 1234});
  tick();
  writer.on_delivered(send_id + 1, Error::of(ErrorCode::kMessageTimedOut, "timed out"));
  tick();
  writer.on_commit({{{"words", 0}, 42}}, Status{});
  tick();
  writer.on_transaction(TransactionStep::kCommit, {{{"words", 1}, 4}},
                        Error::of(ErrorCode::kProducerFenced, "fenced by a newer instance"));
  tick();
  writer.on_revoked({{"words", 1}}, true);
  tick();
  writer.on_fault("partition: w0 <-> broker 1");
  tick();
  writer.on_stop(Status{});
  return 16;
}

}  // namespace mephisto::trace::testing
