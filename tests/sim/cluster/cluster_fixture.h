// A test fixture that drives the simulated Cluster directly through handle() on a virtual-time executor, with no
// client or network in between: each call delivers a request and runs the executor until it is answered.
#pragma once

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "sim/cluster/cluster.h"
#include "sim/event_log.h"
#include "sim/executor.h"

namespace mephisto::sim::testing {

// A request in flight: the response lands here when the broker answers.
struct Pending {
  std::optional<Response> response;
  [[nodiscard]] bool done() const { return response.has_value(); }
  template <typename T>
  [[nodiscard]] const T& as() const {
    EXPECT_TRUE(response.has_value()) << "no response yet";
    return std::get<T>(*response);
  }
};

class ClusterFixture : public ::testing::Test {
 protected:
  // A fast-moving default: no initial rebalance delay, quick scans; tests override what they pin.
  static ClusterConfig default_config() {
    ClusterConfig config;
    config.brokers = 3;
    config.default_replication_factor = 3;
    config.offsets_topic_partitions = 5;
    config.transaction_state_partitions = 5;
    config.group_initial_rebalance_delay_ms = 0;
    config.transaction_abort_scan_interval_ms = 100;
    return config;
  }

  void start(ClusterConfig config = default_config(), uint64_t seed = 42) {
    log_ = std::make_unique<EventLog>(100000);
    executor_ = std::make_unique<Executor>(seed, log_.get());
    cluster_ = std::make_unique<Cluster>(*executor_, config);
  }

  void TearDown() override {
    // On failure, the tail of the event log says what the cluster did.
    if (HasFailure() && log_) {
      const auto& events = log_->events();
      // CLUSTER_TEST_DUMP=1 prints every kept event instead of the last 150.
      const bool all = std::getenv("CLUSTER_TEST_DUMP") != nullptr;
      const size_t from = (all || events.size() <= 150) ? 0 : events.size() - 150;
      for (size_t i = from; i < events.size(); ++i) {
        std::printf("  %6lld %-10s %-12s %s\n", static_cast<long long>(events[i].time_ms), events[i].actor.c_str(),
                    events[i].kind.c_str(), events[i].detail.c_str());
      }
    }
    cluster_.reset();
    executor_.reset();
  }

  Cluster& cluster() { return *cluster_; }
  Executor& executor() { return *executor_; }
  EventLog& event_log() { return *log_; }
  int64_t now() const { return executor_->now_ms(); }

  // Sends without waiting.
  std::shared_ptr<Pending> send(BrokerId to, Request request, std::string client_id = "test") {
    auto pending = std::make_shared<Pending>();
    cluster_->handle(to, RequestHeader{next_correlation_++, std::move(client_id), kWorld}, std::move(request),
                     [pending](Response r) {
                       EXPECT_FALSE(pending->response.has_value()) << "answered twice";
                       pending->response = std::move(r);
                     });
    return pending;
  }

  // Runs until `pending` is answered or `max_wait_ms` of virtual time passes.
  bool wait(const std::shared_ptr<Pending>& pending, int64_t max_wait_ms = 120000) {
    return executor_->run_until([&] { return pending->done(); }, now() + max_wait_ms);
  }

  template <typename T>
  T call(BrokerId to, Request request, std::string client_id = "test") {
    auto pending = send(to, std::move(request), std::move(client_id));
    EXPECT_TRUE(wait(pending)) << "request to broker " << to << " not answered";
    if (!pending->done()) return T{};
    return std::get<T>(*pending->response);
  }

  void run_for(int64_t ms) { executor_->run_until(now() + ms); }

  // --- helpers

  ErrorCode create_topic(const std::string& name, int32_t partitions = 1, int16_t rf = 3,
                         std::map<std::string, std::string> configs = {}) {
    CreateTopicsRequest req;
    req.topics.push_back(TopicSpec{name, partitions, rf, std::move(configs)});
    return call<CreateTopicsResponse>(1, req).topics.at(0).error;
  }

  BrokerId leader(const TopicPartition& tp) { return cluster_->partition_state(tp)->leader; }
  PartitionState state(const TopicPartition& tp) { return *cluster_->partition_state(tp); }

  static RecordBatch batch_of(const std::vector<std::string>& values, std::optional<std::string> key = std::nullopt) {
    std::vector<Record> records;
    for (const auto& v : values) {
      Record r;
      r.key = key;
      r.value = v;
      r.timestamp_ms = 1000;
      records.push_back(std::move(r));
    }
    return make_batch(std::move(records));
  }

  static RecordBatch keyed(const std::vector<std::pair<std::string, std::optional<std::string>>>& kvs,
                           int64_t timestamp_ms = 1000) {
    std::vector<Record> records;
    for (const auto& [k, v] : kvs) {
      Record r;
      r.key = k;
      r.value = v;
      r.timestamp_ms = timestamp_ms;
      records.push_back(std::move(r));
    }
    return make_batch(std::move(records));
  }

  static ProduceRequest produce_request(const TopicPartition& tp, RecordBatch batch, int16_t acks = -1,
                                        int32_t timeout_ms = 30000) {
    ProduceRequest req;
    req.acks = acks;
    req.timeout_ms = timeout_ms;
    req.partitions.push_back({tp, std::move(batch)});
    return req;
  }

  ProduceResponse::PartitionResult produce(const TopicPartition& tp, RecordBatch batch, int16_t acks = -1,
                                           std::optional<BrokerId> to = std::nullopt) {
    return call<ProduceResponse>(to.value_or(leader(tp)), produce_request(tp, std::move(batch), acks)).partitions.at(0);
  }

  FetchResponse::PartitionData fetch(const TopicPartition& tp, int64_t offset,
                                     IsolationLevel isolation = IsolationLevel::kReadUncommitted,
                                     std::optional<BrokerId> to = std::nullopt, int32_t max_wait_ms = 0) {
    FetchRequest req;
    req.isolation_level = isolation;
    req.max_wait_ms = max_wait_ms;
    req.partitions.push_back({tp, offset, 1048576});
    return call<FetchResponse>(to.value_or(leader(tp)), req).partitions.at(0);
  }

  // The data records (not control markers) of fetched batches at or after `from`, as values.
  static std::vector<std::string> values(const std::vector<RecordBatch>& batches, int64_t from = 0) {
    std::vector<std::string> out;
    for (const auto& b : batches) {
      if (b.is_control()) continue;
      for (const auto& r : *b.records) {
        if (b.base_offset + r.offset_delta >= from) out.push_back(r.value.value_or("<null>"));
      }
    }
    return out;
  }

  BrokerId coordinator(CoordinatorType type, const std::string& key) {
    auto r = call<FindCoordinatorResponse>(any_live_broker(), FindCoordinatorRequest{key, type});
    EXPECT_EQ(r.error, ErrorCode::kNone);
    return r.node_id;
  }

  BrokerId any_live_broker() { return other_than(kNoBroker); }

  // A broker that is not `b` (and alive), for "wrong broker" checks.
  BrokerId other_than(BrokerId b) {
    for (BrokerId id : cluster_->broker_ids()) {
      if (id != b && cluster_->broker_alive(id)) return id;
    }
    return kNoBroker;
  }

 private:
  std::unique_ptr<EventLog> log_;
  std::unique_ptr<Executor> executor_;
  std::unique_ptr<Cluster> cluster_;
  int32_t next_correlation_ = 1;
};

}  // namespace mephisto::sim::testing
