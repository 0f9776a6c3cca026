// ConformanceWorld: where a conformance case runs. One implementation per binding (the simulator now; real Kafka
// in the production-binding issue), so one suite of broker-interface cases keeps the simulator honest: where the
// simulator and real Kafka disagree, the simulator is wrong.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "runtime/seam/env.h"

namespace mephisto::conformance {

using ClientId = uint32_t;

// Faults only the simulator can inject. Cases that need them are listed as simulator-only with the reason.
class SimFaults {
 public:
  virtual ~SimFaults() = default;
  // Kills the client process at once (SIGKILL-like: no close, no LeaveGroup, no commit).
  virtual void kill_client(ClientId client) = 0;
  virtual void crash_broker(int32_t broker) = 0;
  virtual void restart_broker(int32_t broker) = 0;
  // The next `count` requests of the given Kafka API ("Produce", "Fetch", "OffsetCommit", ...) fail with `code`.
  virtual void inject_errors(const std::string& api, ErrorCode code, int count) = 0;
  // Runs compaction on every partition of the topic now.
  virtual void compact_now(const std::string& topic) = 0;
  // Loses every message from any broker to the client for duration_ms of world time: its requests still arrive
  // and are acted on, but their responses never come (a connection that breaks after the broker acted), so the
  // client's request timeout fires and it retries something the broker already did.
  virtual void drop_responses_to(ClientId client, int64_t duration_ms) = 0;
};

class ConformanceWorld {
 public:
  virtual ~ConformanceWorld() = default;
  [[nodiscard]] virtual std::string binding() const = 0;  // "sim" or "kafka"

  // A topic name unique to this world and case (cases share a real broker).
  [[nodiscard]] virtual std::string unique_name(const std::string& base) = 0;

  // Adds a client process whose body runs in a fiber with its own Env (clock, scheduler, random, broker client).
  // The body starts when run() is next called.
  virtual ClientId add_client(const std::string& name, std::function<void(Env&)> body) = 0;

  // Runs until every client body has returned (or was killed), or until limit_ms of the world's time passed.
  // Returns true if all finished. In the simulator the limit is virtual time and costs no wall time.
  virtual bool run(int64_t limit_ms) = 0;

  // Milliseconds of the world's time (virtual in the simulator).
  [[nodiscard]] virtual int64_t now_ms() const = 0;

  // nullptr on real Kafka.
  virtual SimFaults* faults() = 0;
};

// Creates a fresh world for one case. Registered per binding by the test main.
using WorldFactory = std::function<std::unique_ptr<ConformanceWorld>()>;

}  // namespace mephisto::conformance
