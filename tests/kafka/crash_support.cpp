#include "tests/kafka/crash_support.h"

#include <cstdlib>

#include <algorithm>
#include <iostream>
#include <optional>
#include <stdexcept>
#include <utility>

#include "tests/kafka/worker_process.h"

namespace mephisto::kafka_test {

namespace rdt = mephisto::rd_raw;

void OnClientError(rd_kafka_t*, int error, const char* reason, void*) {
  std::cerr << "driver: librdkafka " << rd_kafka_err2name(static_cast<rd_kafka_resp_err_t>(error)) << ": "
            << reason << '\n';
}

rd::HandlePtr MakeDriverProducer(const std::string& bootstrap, rdt::DeliveryCount& count) {
  rd::ConfPtr conf =
      rdt::MakeConf({{"bootstrap.servers", bootstrap},
                     {"enable.idempotence", "true"},  // keeps each partition in send order under retries
                     {"linger.ms", "5"}},
                    OnClientError);
  rdt::CountDeliveries(conf.get(), count);
  return rdt::MakeProducer(std::move(conf));
}

rdt::ConsumerPtr MakeDriverConsumer(const std::string& bootstrap, const std::string& group,
                                    const std::string& isolation) {
  return rdt::MakeConsumer(rdt::MakeConf({{"bootstrap.servers", bootstrap},
                                          {"group.id", group},
                                          {"enable.auto.commit", "false"},
                                          {"enable.auto.offset.store", "false"},
                                          {"enable.partition.eof", "true"},
                                          {"auto.offset.reset", "earliest"},
                                          {"isolation.level", isolation}},
                                         OnClientError));
}

std::vector<int64_t> CommittedOffsets(rd_kafka_t* consumer, const std::string& topic, int partitions,
                                      int timeout_ms) {
  rd::PartitionListPtr list(rd_kafka_topic_partition_list_new(partitions));
  for (int p = 0; p < partitions; ++p) rd_kafka_topic_partition_list_add(list.get(), topic.c_str(), p);
  if (rd_kafka_resp_err_t err = rd_kafka_committed(consumer, list.get(), timeout_ms)) {
    throw std::runtime_error(std::string("committed: ") + rd_kafka_err2str(err));
  }
  std::vector<int64_t> offsets(partitions, -1);
  for (int i = 0; i < list->cnt; ++i) {
    const rd_kafka_topic_partition_t& element = list->elems[i];
    if (element.err) throw std::runtime_error(std::string("committed: ") + rd_kafka_err2str(element.err));
    offsets.at(element.partition) = element.offset;
  }
  return offsets;
}

std::vector<int64_t> EndOffsets(rd_kafka_t* client, const std::string& topic, int partitions,
                                int timeout_ms) {
  std::vector<int64_t> ends;
  for (int p = 0; p < partitions; ++p) {
    int64_t low = 0;
    int64_t high = 0;
    if (rd_kafka_resp_err_t err =
            rd_kafka_query_watermark_offsets(client, topic.c_str(), p, &low, &high, timeout_ms)) {
      throw std::runtime_error("watermarks of " + topic + ": " + rd_kafka_err2str(err));
    }
    ends.push_back(high);
  }
  return ends;
}

void ReadToEnd(const std::string& bootstrap, const std::string& topic, int partitions,
               const std::string& isolation, const std::string& group, int timeout_ms,
               const std::function<void(const rd_kafka_message_t&)>& on_record) {
  rdt::ConsumerPtr consumer = MakeDriverConsumer(bootstrap, group, isolation);
  rdt::AssignFromBeginning(consumer.get(), topic, partitions);
  constexpr int64_t kSettleMs = 1'000;
  int64_t records = 0;
  std::vector<bool> at_end(partitions, false);
  std::optional<SteadyClock::time_point> all_at_end_since;
  const auto deadline = After(2 * static_cast<int64_t>(timeout_ms));
  for (;;) {
    if (SteadyClock::now() > deadline) {
      throw std::runtime_error("reading " + topic + " (" + isolation + ") timed out after " +
                               std::to_string(records) + " records");
    }
    if (all_at_end_since && MillisSince(*all_at_end_since) >= kSettleMs) return;
    rd::MessagePtr message(rd_kafka_consumer_poll(consumer.get(), 100));
    if (!message) continue;
    if (message->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      at_end.at(message->partition) = true;
      if (!all_at_end_since && std::all_of(at_end.begin(), at_end.end(), [](bool end) { return end; })) {
        all_at_end_since = SteadyClock::now();
      }
      continue;
    }
    if (message->err) {
      // Mostly transient; the deadline catches lasting trouble.
      std::cerr << "driver: reader: " << rd_kafka_message_errstr(message.get()) << '\n';
      continue;
    }
    at_end.at(message->partition) = false;
    all_at_end_since.reset();
    on_record(*message);
    ++records;
  }
}

std::vector<Record> ReadAll(const std::string& bootstrap, const std::string& topic, int partitions,
                            const std::string& isolation, const std::string& group, int timeout_ms) {
  std::vector<Record> records;
  ReadToEnd(
      bootstrap, topic, partitions, isolation, group, timeout_ms, [&](const rd_kafka_message_t& message) {
        records.push_back({message.partition, message.offset, rd_raw::Text(message.key, message.key_len),
                           rd_raw::Text(message.payload, message.len), message.payload == nullptr});
      });
  return records;
}

bool Contains(std::string_view text, std::string_view part) {
  return text.find(part) != std::string_view::npos;
}

int TablePartition(std::string_view line) {
  constexpr std::string_view kMarker = "table 'counts' partition ";
  const size_t at = line.find(kMarker);
  if (at == std::string_view::npos) return -1;
  return std::atoi(std::string(line.substr(at + kMarker.size(), 8)).c_str());
}

WorkerState StateOf(const std::vector<std::string>& lines) {
  WorkerState state;
  for (const std::string& line : lines) {
    if (Contains(line, "starting on")) state.started = true;
    if (Contains(line, "] assigned ")) {
      // Eager rebalances revoke everything first; each table partition assigned now logs its restore next.
      state.assigned = true;
      state.restoring.clear();
    }
    if (Contains(line, "rejoining the group with a fresh worker")) {
      state.assigned = false;
      state.restoring.clear();
    }
    const int partition = TablePartition(line);
    if (partition < 0) continue;
    if (Contains(line, ": restoring from changelog offset")) {
      state.restoring.insert(partition);
      ++state.restores_started;
    } else if (Contains(line, ": restored ")) {
      state.restoring.erase(partition);
    }
  }
  return state;
}

}  // namespace mephisto::kafka_test
