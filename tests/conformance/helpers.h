// Helpers for conformance cases: produce-and-wait, consume-until, group members that record their rebalances, and
// waits on the client's own scheduler. Everything here talks to the seam only (runtime/seam/), never to a binding,
// and every wait is bounded by a timeout so that a broken binding fails a case instead of hanging it.
//
// All functions taking an Env& must run inside a client body (a fiber of that client's process).
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/seam/env.h"

namespace mephisto::conformance {

// Bounds on single operations (generous: the real-Kafka world runs them in wall time on a loaded machine).
inline constexpr int64_t kAdminTimeoutMs = 30000;
inline constexpr int64_t kFlushTimeoutMs = 30000;
inline constexpr int64_t kTxnTimeoutMs = 30000;
inline constexpr int64_t kCommitTimeoutMs = 30000;
// How long a case waits for a group to settle into an expected assignment.
inline constexpr int64_t kGroupSettleMs = 60000;
// How long a case waits for records that must arrive.
inline constexpr int64_t kConsumeTimeoutMs = 30000;
// Group timings used by the group cases: short (Kafka's minimum session timeout is 6 s) so that session expiry is
// cheap in wall time on real Kafka, and a heartbeat well inside it.
inline constexpr int64_t kSessionTimeoutMs = 6000;
inline constexpr int64_t kHeartbeatIntervalMs = 500;

// ------------------------------------------------------------------------------------------------------------
// Assertions on Result / Status

std::string describe(const Error& error);

// ASSERT_TRUE(is_ok(result)) prints the error on failure.
template <typename T>
::testing::AssertionResult is_ok(const Result<T>& result) {
  if (result.ok()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "expected success, got " << describe(result.error());
}

// EXPECT_TRUE(has_code(result, ErrorCode::kState)).
template <typename T>
::testing::AssertionResult has_code(const Result<T>& result, ErrorCode expected) {
  if (result.code() == expected) return ::testing::AssertionSuccess();
  if (result.ok()) return ::testing::AssertionFailure() << "expected " << expected << ", got success";
  return ::testing::AssertionFailure() << "expected " << expected << ", got " << describe(result.error());
}

// EXPECT_TRUE(has_code_in(result, {A, B})): failed with one of the codes.
template <typename T>
::testing::AssertionResult has_code_in(const Result<T>& result, std::initializer_list<ErrorCode> expected) {
  for (ErrorCode code : expected) {
    if (!result.ok() && result.code() == code) return ::testing::AssertionSuccess();
  }
  auto failure = ::testing::AssertionFailure() << "expected one of {";
  for (ErrorCode code : expected) failure << ' ' << code;
  failure << " }, got ";
  if (result.ok()) return failure << "success";
  return failure << describe(result.error());
}

// ------------------------------------------------------------------------------------------------------------
// Time

// Suspends the calling fiber for duration_ms of the client's clock (virtual in the simulator).
void sleep_for(Env& env, int64_t duration_ms);

// Re-checks `condition` every step_ms until it holds or timeout_ms passed. Returns whether it held.
bool wait_until(Env& env, const std::function<bool()>& condition, int64_t timeout_ms, int64_t step_ms = 10);

// ------------------------------------------------------------------------------------------------------------
// Clients. On failure these record a gtest failure (with the error) and return nullptr.

std::unique_ptr<Admin> make_admin(Env& env);
std::unique_ptr<Producer> make_producer(Env& env, const ProducerConfig& config = {});
std::unique_ptr<Consumer> make_consumer(Env& env, const ConsumerConfig& config);

// A transactional producer config with the given id.
ProducerConfig transactional_config(const std::string& transactional_id);
// A consumer config for a group member with the case timings (session/heartbeat above).
ConsumerConfig member_config(const std::string& group_id,
                             AssignmentStrategy strategy = AssignmentStrategy::kRange,
                             IsolationLevel isolation = IsolationLevel::kReadCommitted);

// A consumer config for assign()-only reading (no group), from the earliest offset.
ConsumerConfig reader_config(IsolationLevel isolation = IsolationLevel::kReadCommitted);

// Creates a topic (replication factor 1 unless said: it must run on a one-broker Kafka too).
Status create_topic(Env& env, const std::string& name, int32_t partitions,
                    const std::map<std::string, std::string>& configs = {}, int16_t replication_factor = 1);

// ------------------------------------------------------------------------------------------------------------
// Producing

// Sends every record, then flushes; returns the delivery reports in send order. A record whose send() failed at
// once gets that error as its report; a record with no report after the flush gets kTimedOut (and a failure is
// recorded if a report is missing although flush() succeeded, or if a report came twice).
std::vector<Result<RecordMetadata>> produce_and_wait(Producer& producer, const std::vector<ProducerRecord>& records,
                                                     int64_t timeout_ms = kFlushTimeoutMs);

// Records with the given values for one partition (no key).
std::vector<ProducerRecord> records_for(const TopicPartition& tp, const std::vector<std::string>& values);

// produce_and_wait + assert every report is a success; returns the metadata (empty on failure).
std::vector<RecordMetadata> produce_ok(Producer& producer, const std::vector<ProducerRecord>& records,
                                       int64_t timeout_ms = kFlushTimeoutMs);

// "prefix-0", "prefix-1", ...: unique values make duplicates and losses decidable.
std::vector<std::string> numbered(const std::string& prefix, int count, int first = 0);

// ------------------------------------------------------------------------------------------------------------
// Consuming

// Polls until at least `count` records were collected, a poll fails (recorded as a gtest failure), or timeout_ms
// passed. Returns everything collected.
std::vector<ConsumerRecord> consume_until(Env& env, Consumer& consumer, size_t count,
                                          int64_t timeout_ms = kConsumeTimeoutMs);

// A fresh assign()-only reader of `partitions`: reads until `expected` records came (or timeout_ms), then keeps
// polling for settle_ms to catch anything extra (duplicates), closes, and returns all it read.
std::vector<ConsumerRecord> read_records(Env& env, const std::vector<TopicPartition>& partitions, size_t expected,
                                         IsolationLevel isolation = IsolationLevel::kReadCommitted,
                                         int64_t settle_ms = 500, int64_t timeout_ms = kConsumeTimeoutMs);

// Polls for duration_ms and returns everything that came (to show that nothing, or nothing more, arrives).
std::vector<ConsumerRecord> poll_for(Env& env, Consumer& consumer, int64_t duration_ms);

// Polls until poll() fails; returns the error, or nullopt if none came within timeout_ms.
std::optional<Error> poll_until_error(Env& env, Consumer& consumer, int64_t timeout_ms);

// Values / offsets of the records of one partition, in the order received.
std::vector<std::string> values_of(const std::vector<ConsumerRecord>& records);
std::vector<std::string> values_of(const std::vector<ConsumerRecord>& records, const TopicPartition& tp);
std::vector<int64_t> offsets_of(const std::vector<ConsumerRecord>& records, const TopicPartition& tp);
std::vector<int64_t> range_of(int64_t first, int64_t count);  // first, first+1, ...

// ------------------------------------------------------------------------------------------------------------
// Groups

// Records every rebalance callback of one consumer, with the consumer's generation when it ran.
class RebalanceRecorder : public RebalanceListener {
 public:
  enum class Kind { kAssigned, kRevoked, kLost };
  struct Event {
    Kind kind;
    std::vector<TopicPartition> partitions;
    int64_t time_ms;
  };

  explicit RebalanceRecorder(Env& env) : env_(env) {}

  void on_partitions_assigned(const std::vector<TopicPartition>& partitions) override;
  void on_partitions_revoked(const std::vector<TopicPartition>& partitions) override;
  void on_partitions_lost(const std::vector<TopicPartition>& partitions) override;

  // What the callbacks say this consumer owns now (assigned minus revoked/lost, applied in order).
  [[nodiscard]] const std::set<TopicPartition>& owned() const { return owned_; }
  [[nodiscard]] const std::vector<Event>& events() const { return events_; }
  // Every partition ever revoked or lost.
  [[nodiscard]] std::set<TopicPartition> all_revoked() const;

 private:
  Env& env_;
  std::set<TopicPartition> owned_;
  std::vector<Event> events_;
};

// A subscribed consumer plus its rebalance log and everything it polled.
class GroupMember {
 public:
  GroupMember(Env& env, const ConsumerConfig& config);
  GroupMember(const GroupMember&) = delete;
  GroupMember& operator=(const GroupMember&) = delete;

  // False if the consumer could not be created (a failure was recorded).
  [[nodiscard]] bool valid() const { return consumer_ != nullptr; }
  Consumer& consumer() { return *consumer_; }
  RebalanceRecorder& rebalances() { return recorder_; }

  Status subscribe(const std::vector<std::string>& topics);
  // One poll; appends its records. A poll error is recorded as a gtest failure and returned.
  Status poll_once(int64_t timeout_ms = 100);
  // Polls until condition() holds (checked after every poll) or timeout_ms passed. Returns whether it held.
  bool poll_until(const std::function<bool()>& condition, int64_t timeout_ms = kGroupSettleMs);
  // Polls for duration_ms (to stay in the group while others act).
  void poll_for(int64_t duration_ms);

  [[nodiscard]] std::set<TopicPartition> assignment() const;
  [[nodiscard]] int32_t generation() const { return consumer_->group_metadata().generation_id; }
  [[nodiscard]] const std::vector<ConsumerRecord>& records() const { return records_; }
  std::vector<ConsumerRecord>& records() { return records_; }

  Status close();

 private:
  Env& env_;
  std::unique_ptr<Consumer> consumer_;
  RebalanceRecorder recorder_;
  std::vector<ConsumerRecord> records_;
};

// All partitions 0..partitions-1 of a topic.
std::set<TopicPartition> partitions_of(const std::string& topic, int32_t partitions);
std::vector<TopicPartition> partition_list(const std::string& topic, int32_t partitions);

// ------------------------------------------------------------------------------------------------------------
// Kafka's default partitioner, as the Java client computes it, for expectations.

// org.apache.kafka.common.utils.Utils.murmur2.
int32_t kafka_murmur2(std::string_view bytes);
// Utils.toPositive(Utils.murmur2(key)) % partitions (BuiltInPartitioner.partitionForKey).
int32_t kafka_partition_for_key(std::string_view key, int32_t partitions);

}  // namespace mephisto::conformance
