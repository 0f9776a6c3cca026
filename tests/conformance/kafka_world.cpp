#include "tests/conformance/kafka_world.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "runtime/kafka/kafka_broker_client.h"
#include "runtime/loop/event_loop.h"

namespace mephisto::conformance {
namespace {

class KafkaWorld final : public ConformanceWorld {
 public:
  KafkaWorld() {
    const char* bootstrap = std::getenv("MEPHISTO_KAFKA_BOOTSTRAP");
    if (bootstrap == nullptr || *bootstrap == '\0') {
      ADD_FAILURE() << "MEPHISTO_KAFKA_BOOTSTRAP is not set: run through CTest (ctest -L kafka) or "
                       "tools/kafka/with-broker -- <test binary>";
    } else {
      options_.bootstrap_servers = bootstrap;
    }
    std::random_device device;
    suffix_seed_ = (static_cast<uint64_t>(device()) << 32) ^ device();
  }

  ~KafkaWorld() override {
    // Clients' bodies hold references into their Env; fibers that never finished are unwound by the loop's
    // destructor, before the clients' broker clients go.
    loop_.reset();
    clients_.clear();
  }

  [[nodiscard]] std::string binding() const override { return "kafka"; }

  std::string unique_name(const std::string& base) override {
    // One broker serves every case (and earlier runs' topics may still exist): a random suffix per world.
    return base + "-" + std::to_string(suffix_seed_ % 1000000007ULL) + "-" + std::to_string(++names_);
  }

  ClientId add_client(const std::string& name, std::function<void(Env&)> body) override {
    auto client = std::make_unique<Client>();
    client->name = name;
    client->body = std::move(body);
    client->random = std::make_unique<Random>(suffix_seed_ ^ (clients_.size() + 1));
    client->broker = std::make_unique<KafkaBrokerClient>(*loop_, options_);
    client->env = Env{&clock_, loop_.get(), client->random.get(), client->broker.get()};
    clients_.push_back(std::move(client));
    return static_cast<ClientId>(clients_.size());
  }

  bool run(int64_t limit_ms) override {
    for (auto& client : clients_) {
      if (client->started) continue;
      client->started = true;
      Client* c = client.get();
      loop_->spawn("client-" + c->name, [c] {
        c->body(c->env);
        c->finished = true;
      });
    }
    const int64_t deadline_ms = clock_.now_ms() + limit_ms;
    return loop_->run([this] { return all_done(); }, deadline_ms);
  }

  [[nodiscard]] int64_t now_ms() const override { return clock_.now_ms(); }

  SimFaults* faults() override { return nullptr; }

 private:
  struct Client {
    std::string name;
    std::function<void(Env&)> body;
    std::unique_ptr<Random> random;
    std::unique_ptr<KafkaBrokerClient> broker;
    Env env;
    bool started = false;
    bool finished = false;
  };

  [[nodiscard]] bool all_done() const {
    for (const auto& client : clients_) {
      if (client->started && !client->finished) return false;
    }
    return true;
  }

  KafkaOptions options_;
  RealClock clock_;
  std::unique_ptr<EventLoop> loop_ = std::make_unique<EventLoop>();
  std::vector<std::unique_ptr<Client>> clients_;
  uint64_t suffix_seed_ = 0;
  uint64_t names_ = 0;
};

}  // namespace

std::unique_ptr<ConformanceWorld> make_kafka_world() {
  return std::make_unique<KafkaWorld>();
}

}  // namespace mephisto::conformance
