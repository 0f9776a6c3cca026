// The broker side shared by the SIGKILL drivers (eos_crash_test.cpp, table_count_crash_test.cpp): their
// event producer, their non-joining consumers, a group's committed offsets, a topic's end offsets, and
// reading a topic to its end. Raw librdkafka on top of tools/rdkafka_raw/rd_raw.h, so that a fault in
// Mephisto's binding cannot hide in the checking. Every helper throws std::runtime_error, naming what failed.
#pragma once

#include <librdkafka/rdkafka.h>

#include <cstdint>
#include <functional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/kafka/rd_handles.h"
#include "tools/rdkafka_raw/rd_raw.h"

namespace mephisto::kafka_test {

// librdkafka's error callback of the drivers' clients: logs "driver: librdkafka NAME: reason" to stderr.
void OnClientError(rd_kafka_t* rk, int error, const char* reason, void* opaque);

// An idempotent producer (each partition stays in send order under retries) whose delivery reports go to
// `count`, which must outlive the producer.
rd::HandlePtr MakeDriverProducer(const std::string& bootstrap, rd_raw::DeliveryCount& count);

// A consumer that never joins its group: it reads by assign() or fetches a group's committed offsets.
rd_raw::ConsumerPtr MakeDriverConsumer(const std::string& bootstrap, const std::string& group,
                                       const std::string& isolation);

// The group's committed offsets for partitions 0..partitions-1 of `topic`; -1 where none is committed. The
// consumer must be read_uncommitted: read_committed asks for stable offsets only, and the broker then answers
// UNSTABLE_OFFSET_COMMIT for as long as a worker keeps a transaction open, which it nearly always does.
std::vector<int64_t> CommittedOffsets(rd_kafka_t* consumer, const std::string& topic, int partitions,
                                      int timeout_ms);

// The high watermarks of partitions 0..partitions-1 of `topic`.
std::vector<int64_t> EndOffsets(rd_kafka_t* client, const std::string& topic, int partitions, int timeout_ms);

// Passes every record of `topic` as a consumer with `isolation` sees it to `on_record`, in offset order per
// partition: reads until every partition is at its end (for read_committed, the last stable offset), then
// keeps reading for a short while, in case the transaction markers of the last commit were still on their way
// (the coordinator writes them after answering EndTxn). Fails after 2 * timeout_ms.
void ReadToEnd(const std::string& bootstrap, const std::string& topic, int partitions,
               const std::string& isolation, const std::string& group, int timeout_ms,
               const std::function<void(const rd_kafka_message_t&)>& on_record);

// A record as the drivers read it back.
struct Record {
  int32_t partition = 0;
  int64_t offset = 0;
  std::string key;
  std::string value;
  bool null_value = false;
};

// Everything in `topic` as a consumer with `isolation` sees it, in offset order per partition (ReadToEnd).
std::vector<Record> ReadAll(const std::string& bootstrap, const std::string& topic, int partitions,
                            const std::string& isolation, const std::string& group, int timeout_ms);

// ---- a tablecount worker's state from its log lines (runtime/app: engine_consume.cpp's "assigned N
// partition(s)", tables.cpp's "restoring from changelog offset", table_reader.cpp's "restored ... active";
// worker.cpp's "starting on" and "rejoining" (a fresh App in the same process)).

[[nodiscard]] bool Contains(std::string_view text, std::string_view part);
// The table partition number in "table 'counts' partition 3: ..." lines, or -1.
[[nodiscard]] int TablePartition(std::string_view line);

struct WorkerState {
  bool started = false;  // "starting on": the CLI handles SIGTERM from here on
  bool assigned = false;
  std::set<int> restoring;  // table partitions restoring now
  int restores_started = 0;
  // Assigned, and every table partition it restores is active.
  [[nodiscard]] bool processing() const { return assigned && restoring.empty(); }
};
[[nodiscard]] WorkerState StateOf(const std::vector<std::string>& lines);

}  // namespace mephisto::kafka_test
