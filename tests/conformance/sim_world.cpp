#include "tests/conformance/sim_world.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <optional>
#include <iostream>
#include <string>
#include <vector>

#include "sim/client/sim_broker_client.h"
#include "sim/cluster/cluster.h"
#include "sim/event_log.h"
#include "sim/executor.h"
#include "sim/network.h"
#include "sim/sim_kafka.h"

namespace mephisto::conformance {
namespace {

// Kafka's request APIs by the names SimFaults::inject_errors takes ("Produce", "Fetch", ...).
std::optional<sim::ApiKey> api_by_name(const std::string& name) {
  static constexpr sim::ApiKey kAll[] = {
      sim::ApiKey::kProduce,         sim::ApiKey::kFetch,           sim::ApiKey::kListOffsets,
      sim::ApiKey::kMetadata,        sim::ApiKey::kOffsetCommit,    sim::ApiKey::kOffsetFetch,
      sim::ApiKey::kFindCoordinator, sim::ApiKey::kJoinGroup,       sim::ApiKey::kHeartbeat,
      sim::ApiKey::kLeaveGroup,      sim::ApiKey::kSyncGroup,       sim::ApiKey::kCreateTopics,
      sim::ApiKey::kDeleteTopics,    sim::ApiKey::kInitProducerId,  sim::ApiKey::kAddPartitionsToTxn,
      sim::ApiKey::kAddOffsetsToTxn, sim::ApiKey::kEndTxn,          sim::ApiKey::kTxnOffsetCommit,
  };
  for (sim::ApiKey key : kAll) {
    if (sim::api_name(key) == name) return key;
  }
  return std::nullopt;
}

std::optional<uint64_t> seed_from_environment() {
  const char* text = std::getenv("MEPHISTO_CONFORMANCE_SEED");
  if (text == nullptr || *text == '\0') return std::nullopt;
  return std::strtoull(text, nullptr, 0);
}

size_t log_tail_from_environment() {
  const char* text = std::getenv("MEPHISTO_CONFORMANCE_LOG_TAIL");
  if (text == nullptr || *text == '\0') return 60;
  return static_cast<size_t>(std::strtoull(text, nullptr, 10));
}

class SimWorld final : public ConformanceWorld, public SimFaults {
 public:
  SimWorld(uint64_t seed, std::string case_name)
      : seed_(seed),
        case_name_(std::move(case_name)),
        executor_(std::make_unique<sim::Executor>(seed, &log_)),
        kafka_(std::make_unique<sim::SimKafka>(*executor_, kafka_config())) {
    ::testing::Test::RecordProperty("sim_seed", std::to_string(seed_));
  }

  ~SimWorld() override {
    if (::testing::Test::HasFailure() || std::getenv("MEPHISTO_CONFORMANCE_VERBOSE") != nullptr) report_failure();
    // Clients (kept by their processes) refer to the SimKafka: end every process before the cluster goes.
    for (const auto& client : clients_) {
      if (client.started && executor_->running(client.process)) executor_->crash(client.process);
    }
    kafka_.reset();
    executor_.reset();
  }

  [[nodiscard]] std::string binding() const override { return "sim"; }

  std::string unique_name(const std::string& base) override { return base + "-" + std::to_string(++names_); }

  ClientId add_client(const std::string& name, std::function<void(Env&)> body) override {
    const auto id = static_cast<ClientId>(clients_.size() + 1);
    Client client;
    client.name = name;
    client.body = std::move(body);
    client.process = executor_->add_process("client-" + std::to_string(id) + "-" + name,
                                            [this, id](sim::ProcessContext& context) { run_body(id, context); });
    clients_.push_back(std::move(client));
    return id;
  }

  bool run(int64_t limit_ms) override {
    for (auto& client : clients_) {
      if (!client.started) {
        client.started = true;
        executor_->start(client.process);
      }
    }
    const int64_t deadline = executor_->now_ms() + limit_ms;
    return executor_->run_until([this] { return all_done(); }, deadline);
  }

  [[nodiscard]] int64_t now_ms() const override { return executor_->now_ms(); }

  SimFaults* faults() override { return this; }

  // --- SimFaults

  void kill_client(ClientId id) override {
    if (id == 0 || id > clients_.size()) {
      ADD_FAILURE() << "kill_client: no client " << id;
      return;
    }
    on_world([this, id] {
      Client& client = clients_[id - 1];
      if (client.started && executor_->running(client.process)) executor_->crash(client.process);
      client.killed = true;
    });
  }

  void crash_broker(int32_t broker) override {
    on_world([this, broker] { kafka_->crash_broker(broker); });
  }

  void restart_broker(int32_t broker) override {
    on_world([this, broker] { kafka_->restart_broker(broker); });
  }

  void inject_errors(const std::string& api, ErrorCode code, int count) override {
    auto key = api_by_name(api);
    if (!key) {
      ADD_FAILURE() << "inject_errors: unknown Kafka API \"" << api << "\"";
      return;
    }
    on_world([this, key = *key, code, count] { kafka_->cluster().inject_errors(key, code, count); });
  }

  void drop_responses_to(ClientId id, int64_t duration_ms) override {
    if (id == 0 || id > clients_.size()) {
      ADD_FAILURE() << "drop_responses_to: no client " << id;
      return;
    }
    on_world([this, id, duration_ms] {
      const sim::NetNode client = sim::process_node(clients_[id - 1].process);
      for (int32_t broker = 1; broker <= kafka_->broker_count(); ++broker) {
        kafka_->network().cut(sim::broker_node(broker), client);
      }
      executor_->after(duration_ms, sim::kWorld, [this, client] {
        for (int32_t broker = 1; broker <= kafka_->broker_count(); ++broker) {
          kafka_->network().heal(sim::broker_node(broker), client);
        }
      });
    });
  }

  void compact_now(const std::string& topic) override {
    on_world([this, topic] {
      Status compacted = kafka_->cluster().compact_now(topic);
      EXPECT_TRUE(compacted.ok()) << "compact_now(" << topic << "): " << compacted.error().to_string();
    });
  }

 private:
  struct Client {
    std::string name;
    sim::ProcessId process = 0;
    std::function<void(Env&)> body;
    bool started = false;
    bool finished = false;
    bool killed = false;
  };

  // Kafka's broker defaults where one broker's worth of test settings would differ: min.insync.replicas=1 (the
  // cases create replication-factor-1 topics so that they also run on a one-broker Kafka).
  static sim::SimKafkaConfig kafka_config() {
    sim::SimKafkaConfig config;
    config.brokers = 3;
    config.default_replication_factor = 3;
    config.min_insync_replicas = 1;
    return config;
  }

  void run_body(ClientId id, sim::ProcessContext& context) {
    auto broker = sim::make_sim_broker_client(*kafka_, context);
    BrokerClient* broker_client = broker.get();
    context.keep(std::shared_ptr<BrokerClient>(std::move(broker)));
    Env env{&context.clock(), &context.scheduler(), &context.random(), broker_client};
    // Copied: clients_ may grow (and move) while the body runs.
    std::function<void(Env&)> body = clients_[id - 1].body;
    body(env);
    clients_[id - 1].finished = true;
  }

  [[nodiscard]] bool all_done() const {
    for (const auto& client : clients_) {
      if (client.started && !client.finished && !client.killed) return false;
    }
    return true;
  }

  // Faults change the world between events: from inside a client's fiber they run as a world event at the
  // current virtual time (right after the calling fiber yields), from outside any process at once.
  void on_world(std::function<void()> fault) {
    if (executor_->current_process() == sim::kWorld) {
      fault();
    } else {
      executor_->at(executor_->now_ms(), sim::kWorld, std::move(fault));
    }
  }

  void report_failure() const {
    std::cerr << "[sim world] " << case_name_ << (::testing::Test::HasFailure() ? " failed" : " ended")
              << " at virtual time " << executor_->now_ms()
              << " ms; seed " << seed_ << ", " << log_.count() << " events, run hash " << std::hex << log_.hash()
              << std::dec << "\n[sim world] reproduce: MEPHISTO_CONFORMANCE_SEED=" << seed_
              << " build/bin/conformance_test --gtest_filter='" << case_name_ << "'\n";
    const auto& events = log_.events();
    const size_t tail = std::min(events.size(), log_tail_from_environment());
    if (tail == 0) return;
    std::cerr << "[sim world] last " << tail << " kept events (MEPHISTO_CONFORMANCE_LOG_TAIL=N for more):\n";
    for (size_t i = events.size() - tail; i < events.size(); ++i) {
      const auto& event = events[i];
      std::cerr << "  " << event.time_ms << " " << event.actor << " " << event.kind << " " << event.detail << "\n";
    }
  }

  uint64_t seed_;
  std::string case_name_;
  sim::EventLog log_;
  std::unique_ptr<sim::Executor> executor_;
  std::unique_ptr<sim::SimKafka> kafka_;
  std::vector<Client> clients_;
  uint64_t names_ = 0;
};

}  // namespace

std::unique_ptr<ConformanceWorld> make_sim_world() {
  const ::testing::TestInfo* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string case_name = info == nullptr ? std::string("<no test>")
                                          : std::string(info->test_suite_name()) + "." + info->name();
  const uint64_t seed = seed_from_environment().value_or(stable_hash(case_name));
  return std::make_unique<SimWorld>(seed, std::move(case_name));
}

}  // namespace mephisto::conformance
