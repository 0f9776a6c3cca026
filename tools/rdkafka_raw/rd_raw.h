// Raw-librdkafka helpers shared by the programs that check Mephisto's Kafka binding from the outside: the
// tests against a real broker (tests/kafka) and the binding benchmark
// (tools/bench/bench_kafka_binding.cpp). They use librdkafka directly, never the binding, so that a fault in
// the binding cannot hide in the checking. Every helper throws std::runtime_error, naming what failed.
#pragma once

#include <librdkafka/rdkafka.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "runtime/kafka/rd_handles.h"

namespace mephisto::rd_raw {

// librdkafka properties, set in this order (a later one overrides an earlier one of the same name).
using Properties = std::vector<std::pair<std::string, std::string>>;

// librdkafka's error callback (rd_kafka_conf_set_error_cb).
using ErrorCallback = void (*)(rd_kafka_t* rk, int error, const char* reason, void* opaque);

// A consumer handle that is closed (rd_kafka_consumer_close) before it is destroyed.
struct ConsumerDeleter {
  void operator()(rd_kafka_t* rk) const noexcept {
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
  }
};
using ConsumerPtr = std::unique_ptr<rd_kafka_t, ConsumerDeleter>;

// A configuration with `properties` set; throws naming the property librdkafka rejects. `on_error`, if given,
// becomes the error callback.
rd::ConfPtr MakeConf(const Properties& properties, ErrorCallback on_error = nullptr);

// A producer or consumer made from `conf`, which it takes over.
rd::HandlePtr MakeProducer(rd::ConfPtr conf);
ConsumerPtr MakeConsumer(rd::ConfPtr conf);

// What a producer's delivery reports said: librdkafka calls the callback from rd_kafka_poll/flush.
struct DeliveryCount {
  int64_t delivered = 0;
  int64_t failed = 0;
  std::string first_failure;
};

// Counts the delivery reports of the producer made from `conf` into `count`, which must outlive it (uses the
// configuration's opaque).
void CountDeliveries(rd_kafka_conf_t* conf, DeliveryCount& count);

// Sends one record (copied) to `partition` of `topic`; on a full queue serves delivery reports and retries.
void Produce(rd_kafka_t* producer, const std::string& topic, int32_t partition, const std::string& key,
             const std::string& value);

void Flush(rd_kafka_t* producer, int timeout_ms);

// Assigns partitions 0..partitions-1 of `topic` to `consumer`, each read from the beginning (no group
// rebalance; nothing is committed).
void AssignFromBeginning(rd_kafka_t* consumer, const std::string& topic, int partitions);

// Creates the topics (replication factor 1) through the Admin API. The operation timeout makes the broker
// answer only once they exist (have leaders); no answer within `timeout_ms` (+5 s) is a failure, as is an
// error for any topic.
void CreateTopics(rd_kafka_t* client, const std::vector<std::string>& names, int partitions, int timeout_ms);

// Deletes the topics through the Admin API; fails as CreateTopics does.
void DeleteTopics(rd_kafka_t* client, const std::vector<std::string>& names, int timeout_ms);

// A key or payload as a string (empty for a null one).
std::string Text(const void* data, size_t size);

// 12 random hex digits, for topic, group and transactional-id names unique to a run, so that programs can
// share a broker and re-runs never see old data.
std::string RandomSuffix();

}  // namespace mephisto::rd_raw
