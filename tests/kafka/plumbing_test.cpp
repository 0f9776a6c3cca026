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
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "runtime/kafka/rd_handles.h"
#include "tools/rdkafka_raw/rd_raw.h"

namespace {

namespace rd = mephisto::rd;
namespace rdt = mephisto::rd_raw;

// Every wait is bounded by this, so a broken broker fails the test instead of hanging it.
constexpr int kTimeoutMs = 30'000;
constexpr auto kTimeout = std::chrono::milliseconds(kTimeoutMs);

// Failures in the helpers throw; GoogleTest reports the message as the test's failure.
[[noreturn]] void Fail(const std::string& what) {
  throw std::runtime_error(what);
}

void ThrowIfError(rd_kafka_error_t* raw_error, const std::string& what) {
  rd::ErrorPtr error(raw_error);
  if (error) Fail(what + ": " + rd_kafka_error_string(error.get()));
}

void OnError(rd_kafka_t*, int error, const char* reason, void*) {
  std::cerr << "librdkafka error " << rd_kafka_err2name(static_cast<rd_kafka_resp_err_t>(error)) << ": "
            << reason << '\n';
}

// `report` must outlive the producer.
rd::HandlePtr MakeProducer(const std::string& bootstrap, rdt::DeliveryCount& report,
                           rdt::Properties settings = {}) {
  settings.emplace_back("bootstrap.servers", bootstrap);
  // Idempotence keeps a partition's records in send order even when the client retries.
  settings.emplace_back("enable.idempotence", "true");
  rd::ConfPtr conf = rdt::MakeConf(settings, OnError);
  rdt::CountDeliveries(conf.get(), report);
  return rdt::MakeProducer(std::move(conf));
}

// A consumer assigned partition 0 of `topic` from the beginning, outside any group rebalance (the group id
// only satisfies rd_kafka_consumer_poll; nothing is committed).
rdt::ConsumerPtr MakeConsumer(const std::string& bootstrap, const std::string& group,
                              const std::string& topic, const std::string& isolation_level) {
  rdt::ConsumerPtr consumer = rdt::MakeConsumer(rdt::MakeConf({{"bootstrap.servers", bootstrap},
                                                               {"group.id", group},
                                                               {"enable.auto.commit", "false"},
                                                               {"enable.partition.eof", "true"},
                                                               {"isolation.level", isolation_level}},
                                                              OnError));
  rdt::AssignFromBeginning(consumer.get(), topic, 1);
  return consumer;
}

void CreateTopic(rd_kafka_t* client, const std::string& topic, int partitions) {
  rdt::CreateTopics(client, {topic}, partitions, kTimeoutMs);
}

void Produce(rd_kafka_t* producer, const std::string& topic, const std::string& key,
             const std::string& value) {
  rdt::Produce(producer, topic, 0, key, value);
}

void Flush(rd_kafka_t* producer) {
  rdt::Flush(producer, kTimeoutMs);
}

struct Record {
  std::string key;
  std::string value;
  int64_t offset = -1;
};

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
    rd::MessagePtr message(rd_kafka_consumer_poll(consumer, 100));
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
    records.push_back({rdt::Text(message->key, message->key_len), rdt::Text(message->payload, message->len),
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
  return prefix + "-" + rdt::RandomSuffix();
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

  rdt::DeliveryCount report;
  rd::HandlePtr producer = MakeProducer(bootstrap_, report);
  CreateTopic(producer.get(), topic, 1);
  for (int i = 0; i < kRecords; ++i) {
    Produce(producer.get(), topic, "key-" + std::to_string(i), "value-" + std::to_string(i));
  }
  Flush(producer.get());
  ASSERT_EQ(report.failed, 0) << "first delivery failure: " << report.first_failure;
  ASSERT_EQ(report.delivered, kRecords);

  rdt::ConsumerPtr consumer =
      MakeConsumer(bootstrap_, UniqueName("mephisto.plumbing.group"), topic, "read_committed");
  // Reads to the end of the partition rather than to the 100th record, so extra records would show up too.
  std::vector<Record> records = ConsumeUntil(consumer.get(), [](const std::vector<Record>& got, bool at_end) {
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

  rdt::DeliveryCount report;
  rd::HandlePtr producer =
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
    rdt::ConsumerPtr consumer =
        MakeConsumer(bootstrap_, UniqueName("mephisto.plumbing.group"), topic, "read_committed");
    EXPECT_EQ(Values(ConsumeUntil(consumer.get(), read_through_last)), committed);
  }
  {
    rdt::ConsumerPtr consumer =
        MakeConsumer(bootstrap_, UniqueName("mephisto.plumbing.group"), topic, "read_uncommitted");
    EXPECT_EQ(Values(ConsumeUntil(consumer.get(), read_through_last)), everything);
  }
}

}  // namespace
