// EventLog: every observable step of a simulated run (send, append, fetch, commit, rebalance, fault, timer), in
// order, and a 64-bit hash that summarises the run. The same scenario and seed must give the same hash; any
// change to one event changes it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace mephisto::sim {

struct Event {
  int64_t time_ms = 0;   // global virtual time
  std::string actor;     // who did it: "broker-1", "worker-2", "network", "fault", ...
  std::string kind;      // what: "append", "fetch", "commit", "rebalance", "crash", ...
  std::string detail;    // the rest, human-readable and stable (no pointers, no unordered iteration)
};

class EventLog {
 public:
  // Keeps at most max_kept_events events in memory (the hash covers every event regardless), so a long run's
  // memory is bounded; 0 keeps none (hash only, fastest).
  explicit EventLog(size_t max_kept_events = 1'000'000);

  void record(int64_t time_ms, std::string_view actor, std::string_view kind, std::string_view detail);

  [[nodiscard]] uint64_t hash() const { return hash_; }
  [[nodiscard]] uint64_t count() const { return count_; }
  [[nodiscard]] const std::vector<Event>& events() const { return events_; }
  // Events recorded but not kept because of the limit.
  [[nodiscard]] uint64_t dropped() const { return count_ - events_.size(); }

 private:
  size_t max_kept_events_;
  uint64_t hash_;
  uint64_t count_ = 0;
  std::vector<Event> events_;
};

}  // namespace mephisto::sim
