// FaultDriver: carries out a scenario's fault plan in a running AppHarness — starts each fault at its time
// (or at its trigger: a worker's client doing something, seen through the History observer), undoes it after
// its duration (never later than the end of the chaos phase), and heals everything at the end of the chaos
// phase. Every start and undo is a world event of the executor (so a fault never runs inside a client's
// fiber) and a mark on the report's timeline.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "models/scenario.pb.h"
#include "sim/app/app_harness.h"
#include "sim/history.h"
#include "sim/network.h"
#include "sim/scenario/run_result.h"

namespace mephisto::sim::scenario {

// splitmix64's finalizer: the workload's keys and the swarm's draws are pure functions of (seed, index)
// through it.
[[nodiscard]] inline uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

class FaultDriver {
 public:
  // `t0`: the chaos phase's start (global virtual ms). `add_worker` adds a worker of the scenario's app and
  // returns its index.
  FaultDriver(AppHarness& harness, const mephisto::scenario::Scenario& scenario, std::string group,
              int64_t t0, std::function<int()> add_worker);
  FaultDriver(const FaultDriver&) = delete;
  FaultDriver& operator=(const FaultDriver&) = delete;

  // Arms one fault: a timed one as a world event at t0 + at_ms; a triggered one waits for observe().
  void schedule(const mephisto::scenario::Fault& fault);
  // The History observer: starts armed triggered faults whose trigger this event is. Never runs the executor.
  void observe(const HistoryEvent& event);
  // The end of the chaos phase: undoes every fault still active, heals every link, restarts crashed brokers,
  // resumes paused workers and restarts every worker that is not running (except added workers that left).
  void heal_all();
  [[nodiscard]] const std::vector<TimelineEvent>& timeline() const { return timeline_; }
  // When each worker process was crashed by a fault (global virtual ms, in order).
  [[nodiscard]] const std::map<ProcessId, std::vector<int64_t>>& crashes() const { return crashes_; }
  // Told each fault as it starts (its fault_text and the worker it concerns, -1 for the cluster): the
  // recording notes it in the workers' traces.
  void set_on_started(std::function<void(const std::string& text, int worker)> on_started) {
    on_started_ = std::move(on_started);
  }

 private:
  using Link = std::pair<NetNode, NetNode>;
  struct Active {
    mephisto::scenario::Fault fault;
    bool armed = true;     // triggered faults: not fired yet
    bool started = false;  // it did something that must be undone
    bool undone = false;
    int worker = -1;
    int32_t broker = -1;
    std::vector<Link> links;
    std::string lane;
    std::string text;
  };

  void start(Active& a);
  void undo(Active& a);
  void fire_at(Active& a, int64_t time_ms);
  [[nodiscard]] int32_t resolve(const mephisto::scenario::BrokerTarget& target) const;
  [[nodiscard]] std::vector<Link> worker_links(int worker, const mephisto::scenario::LinkFault& fault) const;
  void cut(const Link& l);
  void uncut(const Link& l);
  void clog(const Link& l);
  void unclog(const Link& l);
  void mark(const std::string& lane, TimelineEvent::Kind kind, std::string text);

  AppHarness& h_;
  const mephisto::scenario::Scenario& scenario_;
  std::string group_;
  int64_t t0_;
  int64_t chaos_end_;
  std::function<int()> add_worker_;
  std::vector<std::unique_ptr<Active>> active_;
  // Cuts and clogs, counted per directed link so that overlapping faults undo only their own share.
  std::map<Link, int> cuts_;
  std::map<Link, int> clogs_;
  std::set<int> left_;  // added workers that left on purpose: not restarted by the heal
  std::vector<TimelineEvent> timeline_;
  std::map<ProcessId, std::vector<int64_t>> crashes_;
  std::function<void(const std::string&, int)> on_started_;
};

}  // namespace mephisto::sim::scenario
