// The first test against a real broker: proves the plumbing (Maven-resolved broker, CTest fixture,
// librdkafka) works before anything of Mephisto's runs on it, and pins the two broker behaviours the
// runtime's Kafka binding relies on first: per-partition order with keys, and transactional visibility
// (read_committed vs read_uncommitted).
//
// Run it through CTest (`ctest --test-dir build -L kafka`) or against a running broker with
// `tools/kafka/with-broker -- build/bin/kafka_plumbing_test`; both set MEPHISTO_KAFKA_BOOTSTRAP.

#include <librdkafka/rdkafka.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace {

// Every wait is bounded by this, so a broken broker fails the test instead of hanging it.
constexpr int kTimeoutMs = 30'000;
constexpr auto kTimeout = std::chrono::milliseconds(kTimeoutMs);

// --- RAII for librdkafka's C handles ---------------------------------------------------------------------

struct ConfDeleter {
  void operator()(rd_kafka_conf_t* conf) const noexcept { rd_kafka_conf_destroy(conf); }
};
struct ProducerDeleter {
  void operator()(rd_kafka_t* rk) const noexcept { rd_kafka_destroy(rk); }
};
struct ConsumerDeleter {
  void operator()(rd_kafka_t* rk) const noexcept {
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
  }
};
struct MessageDeleter {
  void operator()(rd_kafka_message_t* message) const noexcept { rd_kafka_message_destroy(message); }
};
struct ErrorDeleter {
  void operator()(rd_kafka_error_t* error) const noexcept { rd_kafka_error_destroy(error); }
};
struct QueueDeleter {
  void operator()(rd_kafka_queue_t* queue) const noexcept { rd_kafka_queue_destroy(queue); }
};
struct EventDeleter {
  void operator()(rd_kafka_event_t* event) const noexcept { rd_kafka_event_destroy(event); }
};
struct NewTopicDeleter {
  void operator()(rd_kafka_NewTopic_t* topic) const noexcept { rd_kafka_NewTopic_destroy(topic); }
};
struct AdminOptionsDeleter {
  void operator()(rd_kafka_AdminOptions_t* options) const noexcept { rd_kafka_AdminOptions_destroy(options); }
};
struct PartitionListDeleter {
  void operator()(rd_kafka_topic_partition_list_t* list) const noexcept {
    rd_kafka_topic_partition_list_destroy(list);
  }
};

using ConfPtr = std::unique_ptr<rd_kafka_conf_t, ConfDeleter>;
using ProducerPtr = std::unique_ptr<rd_kafka_t, ProducerDeleter>;
using ConsumerPtr = std::unique_ptr<rd_kafka_t, ConsumerDeleter>;
using MessagePtr = std::unique_ptr<rd_kafka_message_t, MessageDeleter>;
using ErrorPtr = std::unique_ptr<rd_kafka_error_t, ErrorDeleter>;
using QueuePtr = std::unique_ptr<rd_kafka_queue_t, QueueDeleter>;
using EventPtr = std::unique_ptr<rd_kafka_event_t, EventDeleter>;
using NewTopicPtr = std::unique_ptr<rd_kafka_NewTopic_t, NewTopicDeleter>;
using AdminOptionsPtr = std::unique_ptr<rd_kafka_AdminOptions_t, AdminOptionsDeleter>;
using PartitionListPtr = std::unique_ptr<rd_kafka_topic_partition_list_t, PartitionListDeleter>;

// Failures in the helpers throw; GoogleTest reports the message as the test's failure.
[[noreturn]] void Fail(const std::string& what) { throw std::runtime_error(what); }

void ThrowIfError(rd_kafka_error_t* raw_error, const std::string& what) {
  ErrorPtr error(raw_error);
  if (error) Fail(what + ": " + rd_kafka_error_string(error.get()));
}

// Outcome of the producer's callbacks. librdkafka calls them from rd_kafka_poll/flush on the calling thread.
struct ProducerReport {
  int delivered = 0;
  int failed = 0;
  std::string first_failure;
};

void OnDelivery(rd_kafka_t*, const rd_kafka_message_t* message, void* opaque) {
  auto* report = static_cast<ProducerReport*>(opaque);
  if (message->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
    ++report->delivered;
    return;
  }
  if (report->failed++ == 0) report->first_failure = rd_kafka_err2str(message->err);
}

void OnError(rd_kafka_t*, int error, const char* reason, void*) {
  std::cerr << "librdkafka error " << rd_kafka_err2name(static_cast<rd_kafka_resp_err_t>(error)) << ": "
            << reason << '\n';
}

ConfPtr MakeConf(const std::vector<std::pair<std::string, std::string>>& settings) {
  ConfPtr conf(rd_kafka_conf_new());
  char errstr[512];
  for (const auto& [name, value] : settings) {
    if (rd_kafka_conf_set(conf.get(), name.c_str(), value.c_str(), errstr, sizeof errstr) !=
        RD_KAFKA_CONF_OK) {
      Fail("config " + name + "=" + value + ": " + errstr);
    }
  }
  rd_kafka_conf_set_error_cb(conf.get(), OnError);
  return conf;
}

// `report` must outlive the producer.
ProducerPtr MakeProducer(const std::string& bootstrap, ProducerReport& report,
                         std::vector<std::pair<std::string, std::string>> settings = {}) {
  settings.emplace_back("bootstrap.servers", bootstrap);
  // Idempotence keeps a partition's records in send order even when the client retries.
  settings.emplace_back("enable.idempotence", "true");
  ConfPtr conf = MakeConf(settings);
  rd_kafka_conf_set_dr_msg_cb(conf.get(), OnDelivery);
  rd_kafka_conf_set_opaque(conf.get(), &report);
  char errstr[512];
  ProducerPtr producer(rd_kafka_new(RD_KAFKA_PRODUCER, conf.get(), errstr, sizeof errstr));
  if (!producer) Fail(std::string("creating producer: ") + errstr);
  conf.release();  // rd_kafka_new took ownership.
  return producer;
}

// A consumer assigned partition 0 of `topic` from the beginning, outside any group rebalance (the group id
// only satisfies rd_kafka_consumer_poll; nothing is committed).
ConsumerPtr MakeConsumer(const std::string& bootstrap, const std::string& group, const std::string& topic,
                         const std::string& isolation_level) {
  ConfPtr conf = MakeConf({{"bootstrap.servers", bootstrap},
                           {"group.id", group},
                           {"enable.auto.commit", "false"},
                           {"enable.partition.eof", "true"},
                           {"isolation.level", isolation_level}});
  char errstr[512];
  ConsumerPtr consumer(rd_kafka_new(RD_KAFKA_CONSUMER, conf.get(), errstr, sizeof errstr));
  if (!consumer) Fail(std::string("creating consumer: ") + errstr);
  conf.release();
  PartitionListPtr partitions(rd_kafka_topic_partition_list_new(1));
  rd_kafka_topic_partition_list_add(partitions.get(), topic.c_str(), 0)->offset = RD_KAFKA_OFFSET_BEGINNING;
  if (rd_kafka_resp_err_t err = rd_kafka_assign(consumer.get(), partitions.get())) {
    Fail(std::string("assign: ") + rd_kafka_err2str(err));
  }
  return consumer;
}

void CreateTopic(rd_kafka_t* client, const std::string& topic, int partitions) {
  char errstr[512];
  NewTopicPtr new_topic(rd_kafka_NewTopic_new(topic.c_str(), partitions, 1, errstr, sizeof errstr));
  if (!new_topic) Fail(std::string("NewTopic: ") + errstr);
  AdminOptionsPtr options(rd_kafka_AdminOptions_new(client, RD_KAFKA_ADMIN_OP_CREATETOPICS));
  // The operation timeout makes the broker answer only once the topic exists (has a leader).
  if (rd_kafka_AdminOptions_set_operation_timeout(options.get(), kTimeoutMs, errstr, sizeof errstr) ||
      rd_kafka_AdminOptions_set_request_timeout(options.get(), kTimeoutMs, errstr, sizeof errstr)) {
    Fail(std::string("admin options: ") + errstr);
  }
  QueuePtr queue(rd_kafka_queue_new(client));
  rd_kafka_NewTopic_t* topics[] = {new_topic.get()};
  rd_kafka_CreateTopics(client, topics, 1, options.get(), queue.get());

  EventPtr event(rd_kafka_queue_poll(queue.get(), kTimeoutMs + 5'000));
  if (!event) Fail("CreateTopics: no answer within the timeout");
  if (rd_kafka_event_type(event.get()) != RD_KAFKA_EVENT_CREATETOPICS_RESULT) {
    Fail(std::string("CreateTopics: unexpected event ") + rd_kafka_event_name(event.get()));
  }
  if (rd_kafka_event_error(event.get())) {
    Fail(std::string("CreateTopics: ") + rd_kafka_event_error_string(event.get()));
  }
  size_t count = 0;
  const rd_kafka_topic_result_t** results =
      rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(event.get()), &count);
  if (count != 1) Fail("CreateTopics: expected 1 result, got " + std::to_string(count));
  if (rd_kafka_resp_err_t err = rd_kafka_topic_result_error(results[0])) {
    const char* message = rd_kafka_topic_result_error_string(results[0]);
    Fail("CreateTopics " + topic + ": " + rd_kafka_err2name(err) +
         (message ? std::string(": ") + message : ""));
  }
}

void Produce(rd_kafka_t* producer, const std::string& topic, const std::string& key,
             const std::string& value) {
  rd_kafka_resp_err_t err =
      rd_kafka_producev(producer, RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_PARTITION(0),
                        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_KEY(key.data(), key.size()),
                        RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()), RD_KAFKA_V_END);
  if (err) Fail("produce " + key + ": " + rd_kafka_err2str(err));
}

void Flush(rd_kafka_t* producer) {
  if (rd_kafka_resp_err_t err = rd_kafka_flush(producer, kTimeoutMs)) {
    Fail(std::string("flush: ") + rd_kafka_err2str(err));
  }
}

struct Record {
  std::string key;
  std::string value;
  int64_t offset = -1;
};

std::string Text(const void* data, size_t size) {
  return data ? std::string(static_cast<const char*>(data), size) : std::string();
}

// Polls until `done(records, at_end)` holds; `at_end` is true when the consumer has caught up with the
// partition (for read_committed: with the last stable offset). Fails after kTimeout.
template <typename Done>
std::vector<Record> ConsumeUntil(rd_kafka_t* consumer, Done done) {
  std::vector<Record> records;
  bool at_end = false;
  const auto deadline = std::chrono::steady_clock::now() + kTimeout;
  while (!done(records, at_end)) {
    if (std::chrono::steady_clock::now() > deadline) {
      Fail("consumer timed out after " + std::to_string(records.size()) + " records" +
           (at_end ? " (at end of partition)" : ""));
    }
    MessagePtr message(rd_kafka_consumer_poll(consumer, 100));
    if (!message) continue;
    if (message->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      at_end = true;
      continue;
    }
    if (message->err) {
      // Mostly transient (the broker is still electing a leader, say); the deadline catches lasting trouble.
      std::cerr << "consumer: " << rd_kafka_message_errstr(message.get()) << '\n';
      char reason[512];
      if (rd_kafka_fatal_error(consumer, reason, sizeof reason)) {
        Fail(std::string("consumer fatal: ") + reason);
      }
      continue;
    }
    at_end = false;
    records.push_back({Text(message->key, message->key_len), Text(message->payload, message->len),
                       message->offset});
  }
  return records;
}

std::vector<std::string> Values(const std::vector<Record>& records) {
  std::vector<std::string> values;
  for (const Record& record : records) values.push_back(record.value);
  return values;
}

// Names unique to this run, so tests can share the broker and re-runs never see old data.
std::string UniqueName(const std::string& prefix) {
  static std::mt19937_64 generator{std::random_device{}()};
  static constexpr char kHex[] = "0123456789abcdef";
  std::string name = prefix + "-";
  for (int i = 0; i < 12; ++i) name += kHex[generator() % 16];
  return name;
}

class KafkaPlumbing : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* bootstrap = std::getenv("MEPHISTO_KAFKA_BOOTSTRAP");
    if (bootstrap == nullptr || *bootstrap == '\0') {
      FAIL() << "MEPHISTO_KAFKA_BOOTSTRAP is not set. This test needs a running Kafka broker: run it through "
                "ctest (ctest --test-dir build -L kafka), which starts one, or start one with "
                "`tools/kafka/broker start` and run the test under "
                "`tools/kafka/with-broker -- <test binary>`.";
    }
    bootstrap_ = bootstrap;
  }

  std::string bootstrap_;
};

TEST_F(KafkaPlumbing, ProducedRecordsComeBackInOrderWithKeys) {
  constexpr int kRecords = 100;
  const std::string topic = UniqueName("mephisto.plumbing.order");

  ProducerReport report;
  ProducerPtr producer = MakeProducer(bootstrap_, report);
  CreateTopic(producer.get(), topic, 1);
  for (int i = 0; i < kRecords; ++i) {
    Produce(producer.get(), topic, "key-" + std::to_string(i), "value-" + std::to_string(i));
  }
  Flush(producer.get());
  ASSERT_EQ(report.failed, 0) << "first delivery failure: " << report.first_failure;
  ASSERT_EQ(report.delivered, kRecords);

  ConsumerPtr consumer =
      MakeConsumer(bootstrap_, UniqueName("mephisto.plumbing.group"), topic, "read_committed");
  // Reads to the end of the partition rather than to the 100th record, so extra records would show up too.
  std::vector<Record> records =
      ConsumeUntil(consumer.get(), [](const std::vector<Record>& got, bool at_end) {
        return at_end && got.size() >= static_cast<size_t>(kRecords);
      });

  ASSERT_EQ(records.size(), static_cast<size_t>(kRecords));
  for (int i = 0; i < kRecords; ++i) {
    EXPECT_EQ(records[i].offset, i);
    EXPECT_EQ(records[i].key, "key-" + std::to_string(i));
    EXPECT_EQ(records[i].value, "value-" + std::to_string(i));
  }
}

TEST_F(KafkaPlumbing, ReadCommittedHidesAbortedTransactions) {
  constexpr int kPerTransaction = 5;
  const std::string topic = UniqueName("mephisto.plumbing.txn");

  ProducerReport report;
  ProducerPtr producer =
      MakeProducer(bootstrap_, report, {{"transactional.id", UniqueName("mephisto.plumbing.txn-producer")}});
  CreateTopic(producer.get(), topic, 1);
  ThrowIfError(rd_kafka_init_transactions(producer.get(), kTimeoutMs), "init_transactions");

  // Sends one transaction of `prefix`-<first>..<first + kPerTransaction - 1>, then commits or aborts it.
  auto transaction = [&](const std::string& prefix, int first, bool commit) {
    ThrowIfError(rd_kafka_begin_transaction(producer.get()), "begin_transaction");
    for (int i = first; i < first + kPerTransaction; ++i) {
      Produce(producer.get(), topic, prefix + "-key-" + std::to_string(i), prefix + "-" + std::to_string(i));
    }
    // Written to the log before the outcome: abort_transaction would otherwise purge unsent records, and a
    // read_uncommitted consumer would have no aborted records to see.
    Flush(producer.get());
    if (commit) {
      ThrowIfError(rd_kafka_commit_transaction(producer.get(), kTimeoutMs), "commit_transaction");
    } else {
      ThrowIfError(rd_kafka_abort_transaction(producer.get(), kTimeoutMs), "abort_transaction");
    }
  };
  transaction("committed", 0, true);
  transaction("aborted", 0, false);
  // A committed transaction after the aborted one: once a consumer reads its last record it has read past the
  // aborted ones, which gives both consumers an exact place to stop.
  transaction("committed", kPerTransaction, true);
  ASSERT_EQ(report.failed, 0) << "first delivery failure: " << report.first_failure;
  ASSERT_EQ(report.delivered, 3 * kPerTransaction);

  const std::string last = "committed-" + std::to_string(2 * kPerTransaction - 1);
  auto read_through_last = [&](const std::vector<Record>& got, bool) {
    return !got.empty() && got.back().value == last;
  };

  std::vector<std::string> committed;
  for (int i = 0; i < 2 * kPerTransaction; ++i) committed.push_back("committed-" + std::to_string(i));
  std::vector<std::string> everything;
  for (int i = 0; i < kPerTransaction; ++i) everything.push_back("committed-" + std::to_string(i));
  for (int i = 0; i < kPerTransaction; ++i) everything.push_back("aborted-" + std::to_string(i));
  for (int i = kPerTransaction; i < 2 * kPerTransaction; ++i) {
    everything.push_back("committed-" + std::to_string(i));
  }

  {
    ConsumerPtr consumer =
        MakeConsumer(bootstrap_, UniqueName("mephisto.plumbing.group"), topic, "read_committed");
    EXPECT_EQ(Values(ConsumeUntil(consumer.get(), read_through_last)), committed);
  }
  {
    ConsumerPtr consumer =
        MakeConsumer(bootstrap_, UniqueName("mephisto.plumbing.group"), topic, "read_uncommitted");
    EXPECT_EQ(Values(ConsumeUntil(consumer.get(), read_through_last)), everything);
  }
}

}  // namespace
