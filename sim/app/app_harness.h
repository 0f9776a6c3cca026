// AppHarness: runs Apps (runtime/app/app.h) as simulated worker processes against a simulated Kafka cluster,
// for deterministic tests of the runtime and of applications. One harness is one simulated world: an Executor
// (virtual time, seeded), a SimKafka (3 brokers by default) and an EventLog whose hash summarises the run.
//
//   AppHarness h({.seed = 7});
//   h.create_topic({"in", 4, 3, {}});
//   int w = h.add_worker(definition, [](AppSettings& s) { s.broker_commit_interval_ms = 1000; });
//   h.produce(records);
//   h.run_until([&] { return h.stats(w).events_acked == 100; }, 60000);
//   h.stop_worker(w);
//   h.run_until([&] { return !h.worker_running(w); }, 60000);
//   auto out = h.read_all("out");
//
// Each worker is a simulated process "worker-<index>": its main fiber builds the App from the definition and
// runs app.run(env) with the process's Env. The App and its broker client live in the process's memory, so
// crashing the worker destroys them (as SIGKILL would); restarting builds a fresh App from the same
// definition.
//
// The calls that run the simulation (create_topic, produce, read_all, committed, run_until, run_for) must be
// made from outside the simulation (the test's own code), never from a fiber or an executor event.
// crash_worker, restart_worker and stop_worker may be called from anywhere, including an agent's body or a
// run_until predicate: from inside the simulation they take effect as an executor event at the current
// virtual time (in the order they were called); from outside, crash_worker and restart_worker take effect at
// once and stop_worker at the next run.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "runtime/app/app.h"
#include "runtime/seam/broker_client.h"
#include "runtime/seam/planted.h"
#include "runtime/store/store.h"
#include "sim/event_log.h"
#include "sim/executor.h"
#include "sim/sim_kafka.h"

namespace mephisto::sim {

struct AppHarnessOptions {
  uint64_t seed = 1;
  SimKafkaConfig kafka{};  // 3 brokers, replication factor 3, min.insync.replicas 2
  // Events the event log keeps in memory (the hash covers all of them regardless).
  size_t max_kept_events = 200'000;
  // Upper bound (virtual ms) for the harness's own helper steps: create_topic, produce, read_all, committed.
  int64_t helper_timeout_ms = 300'000;
  // A deliberate runtime defect (runtime/seam/planted.h) every worker runs with: set in each worker's Env.
  PlantedBug planted = PlantedBug::kNone;
  // The recorder of a worker (by index), put in each of its incarnations' Env (`mephisto sim --trace`); may
  // return null. Empty: nothing is recorded.
  std::function<Recorder*(int worker)> recorder{};
};

class AppHarness {
 public:
  explicit AppHarness(AppHarnessOptions options = {});
  // Ends every process (workers first) before the cluster goes away.
  ~AppHarness();
  AppHarness(const AppHarness&) = delete;
  AppHarness& operator=(const AppHarness&) = delete;

  Executor& executor() { return *executor_; }
  SimKafka& kafka() { return *kafka_; }
  EventLog& event_log() { return log_; }

  // Creates a topic from a setup process and runs the executor until done. Returns the status
  // (kTopicAlreadyExists if it exists).
  Status create_topic(const TopicSpec& spec);

  // Adds a worker process "worker-<index>" (index from 0, in order of adding) that builds `App app(settings)`
  // with settings = definition.default_settings() (AppSettings{} if empty) adjusted by `adjust`, then
  // worker_id = "worker-<index>", calls definition.define(app), and runs app.run(env) in the process's main
  // fiber. Started at once (it first runs at the next run of the executor). The App lives in the process: a
  // crash destroys it. The App's log lines go to worker_log(index), prefixed with virtual time "[t=12345ms]".
  int add_worker(const AppDefinition& definition, std::function<void(AppSettings&)> adjust = {});
  [[nodiscard]] int worker_count() const { return static_cast<int>(workers_.size()); }
  [[nodiscard]] ProcessId worker_process(int worker) const;

  // The worker's App: nullptr unless its process is running, the App is constructed and run() has not
  // returned.
  App* app(int worker);
  // The worker's latest counters: live while its App exists, else as they were when the App last went away
  // (run() returned, or the crash destroyed it). Zero before the first start. Reset by a restart (new App).
  [[nodiscard]] AppStats stats(int worker) const;

  // SIGKILL: the process's fibers, timers and memory (the App, its clients) are dropped at once; nothing is
  // committed or left cleanly (the group expires the member after its session timeout). wipe_disk applies to
  // the next restart. A no-op if the worker is not running.
  void crash_worker(int worker, bool wipe_disk = false);
  // Starts the worker again as a fresh incarnation (a fresh App from the same definition and settings); if it
  // is still running, crashes it first.
  void restart_worker(int worker);
  // Graceful: app.stop() from a fiber of the worker; the process ends when run() returns.
  void stop_worker(int worker);
  // True while the process is up and its run() has not returned.
  [[nodiscard]] bool worker_running(int worker) const;
  // What run() returned, once it returned (cleared by a restart).
  [[nodiscard]] std::optional<Status> worker_result(int worker) const;
  // The worker's log lines, kept across restarts; the harness adds its own lines ("harness: ...").
  [[nodiscard]] const std::vector<std::string>& worker_log(int worker) const;
  // Every worker's log, one line per entry prefixed with the worker's name, for failure messages.
  [[nodiscard]] std::string dump_logs(size_t last_lines_per_worker = 200) const;

  // Produces records from a dedicated producer process (idempotent, acks=all), runs until every delivery
  // report arrived; returns the number acked. Virtual time passes meanwhile, and everything else in the world
  // runs with it: while a partition's leader is down a call can take up to the producer's delivery timeout
  // (tens of virtual seconds), stretching a test's fault timeline. To write records while the clock keeps its
  // schedule, run a producer process of your own, as the scenario runner's workload does (runner.cpp).
  int64_t produce(std::vector<ProducerRecord> records);
  // Every record of the topic from the beginning up to its end (last stable offset) at the time of reading,
  // read by a fresh read_committed consumer with assign() in a reader process; ordered by partition, then
  // offset.
  std::vector<ConsumerRecord> read_all(const std::string& topic);
  // Committed offsets of a group for the topic's partitions (partitions without a commit are absent), read by
  // a consumer of the group (not a member) in a helper process.
  std::map<TopicPartition, int64_t> committed(const std::string& group, const std::string& topic);
  // End offsets (last stable offset, read_committed) of every partition of the topic, empty partitions
  // included.
  std::map<TopicPartition, int64_t> end_offsets(const std::string& topic);

  // Runs the simulation until done() (checked after every event) or timeout_ms of virtual time from now.
  // Returns done().
  bool run_until(const std::function<bool()>& done, int64_t timeout_ms);
  // Runs the simulation for duration_ms of virtual time.
  void run_for(int64_t duration_ms);
  [[nodiscard]] int64_t now_ms() const { return executor_->now_ms(); }
  // The event log's hash: the same scenario and seed give the same value.
  [[nodiscard]] uint64_t run_hash() const { return log_.hash(); }

 private:
  struct Worker {
    std::string name;
    int index = 0;
    ProcessId process = 0;
    AppDefinition definition;
    std::function<void(AppSettings&)> adjust;
    App* app = nullptr;  // while the App exists and run() has not returned
    bool returned = false;
    bool wipe_on_restart = false;
    std::optional<Status> result;
    std::optional<AppStats> last_stats;
    std::vector<std::string> log;
    // Table stores: the worker's "disk", kept across crashes, replaced when a restart wipes the disk.
    std::shared_ptr<store::StoreFactory> stores;
  };

  void worker_main(Worker& worker, ProcessContext& context);
  void note(Worker& worker, const std::string& line);
  // Runs `action` in order with other harness actions: at once from outside the simulation, else as a world
  // event at the current virtual time.
  void post(std::function<void()> action);
  void drain_actions();
  // Runs `body` in a fresh helper process until it returns (or the helper timeout); the process is then
  // ended. Returns false on timeout.
  bool run_helper(const std::string& kind, const std::function<void(ProcessContext&, BrokerClient&)>& body);
  bool run_executor_until(const std::function<bool()>& done, int64_t deadline_ms);
  void require_outside(const char* what) const;
  Worker& worker_at(int worker);
  [[nodiscard]] const Worker& worker_at(int worker) const;

  AppHarnessOptions options_;
  EventLog log_;
  std::unique_ptr<Executor> executor_;
  std::unique_ptr<SimKafka> kafka_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::vector<ProcessId> helpers_;
  std::deque<std::function<void()>> actions_;
  TimerId drain_timer_ = 0;
  int helper_count_ = 0;
  bool in_run_ = false;
};

}  // namespace mephisto::sim
