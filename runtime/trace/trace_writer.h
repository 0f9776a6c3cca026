// TraceWriter: the Recorder (runtime/seam/recorder.h) that writes a worker's decisions to trace files
// (models/trace.proto) in a directory, for `mephisto worker --record DIR` and `mephisto sim --trace DIR`.
//
// Files: DIR/<writer_name>.i<incarnation>.s<segment>.mtrace, one incarnation per Engine::run (on_start), a
// new segment when the current one passes segment_max_bytes. When the writer's files together pass
// total_max_bytes, its oldest segment files are deleted (rotation): a replay then starts at the oldest
// incarnation that still has its segment 0.
//
// Crash safety: frames are buffered and written with write(2) when the buffer passes flush_bytes, at every
// assignment change, commit and transaction outcome, and at stop; a SIGKILL loses at most that buffer (the
// tail), never a frame in the middle. Nothing is fsync'ed (a process crash keeps the page cache).
//
// Errors writing (disk full, directory gone) never stop the worker: the writer logs once through `on_error`,
// stops recording and reports it in error().
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "runtime/seam/clock.h"
#include "runtime/seam/recorder.h"

namespace mephisto::trace {

struct TraceWriterOptions {
  std::string dir;               // created if missing
  std::string writer_name;       // unique per recording process; [A-Za-z0-9._-]+
  std::string app_name;          // the registry name the replayer builds the app from
  std::string source = "kafka";  // "kafka" | "sim"
  bool payloads = true;  // false: keys and values as hashes only (far smaller; replay needs the payloads
                         // from elsewhere)
  std::map<std::string, std::string> settings;  // the app's `--set` pairs, for the replayer
  int64_t segment_max_bytes = 64LL << 20;
  int64_t total_max_bytes = 1LL << 30;
  int64_t flush_bytes = 256 << 10;
  std::function<void(const std::string&)> on_error;  // may be empty
};

class TraceWriter final : public Recorder {
 public:
  // `clock` stamps events (milliseconds since the incarnation's start); it must outlive the writer.
  // Errors: kInvalidArg (empty dir or a bad writer_name), kFail (the directory cannot be created).
  static Result<std::unique_ptr<TraceWriter>> open(TraceWriterOptions options, const Clock* clock);
  ~TraceWriter() override;  // flushes and closes

  // Recorder.
  void on_start(const RecordedStart& start) override;
  void on_assigned(const std::vector<TopicPartition>& partitions, int32_t generation) override;
  void on_revoked(const std::vector<TopicPartition>& partitions, bool lost) override;
  void on_polled(const std::vector<const ConsumerRecord*>& records) override;
  void on_table_opened(const std::string& table, int32_t partition, std::optional<int64_t> applied_offset,
                       const std::vector<std::pair<std::string, std::string>>& contents) override;
  void on_dropped(const std::vector<const ConsumerRecord*>& records) override;
  void on_table_applied(const std::vector<ConsumerRecord>& records) override;
  void on_restore_end(const TopicPartition& changelog, int64_t end_offset) override;
  void on_table_active(const std::string& table, int32_t partition) override;
  void on_timer(const std::string& timer) override;
  // mephisto::SendSource, qualified: models/trace.pb.h declares a trace::SendSource message too.
  uint64_t on_send(const ProducerRecord& record, const std::vector<mephisto::SendSource>& sources) override;
  void on_delivered(uint64_t send_id, const Result<RecordMetadata>& result) override;
  void on_commit(const std::map<TopicPartition, int64_t>& offsets, const Status& result) override;
  void on_transaction(TransactionStep step, const std::map<TopicPartition, int64_t>& offsets,
                      const Status& result) override;
  void on_stop(const Status& result) override;

  // A simulator fault that concerns this worker (written into the current incarnation, if one is open).
  void on_fault(const std::string& description);
  // Writes the buffer out now.
  void flush();

  [[nodiscard]] int64_t bytes_written() const;
  [[nodiscard]] uint64_t events_written() const;
  [[nodiscard]] const std::optional<std::string>& error() const;

 private:
  struct Impl;
  explicit TraceWriter(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace mephisto::trace
