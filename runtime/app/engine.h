// Engine: the type-erased core of one running worker, under the typed API of app.h. It owns the clients (one
// group consumer, one producer), the agents' input buffers, the offset bookkeeping and the fibers:
//
//   poll fiber    polls the group consumer, runs rebalance callbacks, hands records to agent buffers, pauses
//                 fetching while any buffer is too full (flow control) and resumes it when they drain;
//   commit fiber  commits AckTracker::committable() when CommitPolicy says so;
//   actor fibers  one per agent actor (concurrency N), under a supervisor;
//   timer / task fibers, the reply consumer fiber (ask), group_by forwarders.
//
// Tables (tables.h) hang off the engine: their partitions follow the assignment of their source topics.
//
// Exactly-once (processing_guarantee=exactly_once, Kafka's EOS v2): one transactional producer; every commit
// interval (100 ms by default) or N acks the commit fiber reaches a commit point — the poll fiber stops
// dispatching, every dispatched event finishes (its sends delivered) — then sends the input offsets with the
// consumer's group metadata and commits the transaction, and only then flushes table overlays into stores.
// Any failure of the transaction aborts it, drops the overlays and stops the worker with should_rejoin() set:
// the caller (the CLI's worker, the simulator's harness) starts a fresh worker, which resumes from the last
// commit. A fenced producer is such a failure too.
//
// At-least-once, as Faust, and stricter where Faust loses data: an input record is acked only when every
// stream it went to is done with it *and* every record sent while processing it has its delivery report; a
// send that finally fails stops the worker without committing, so the input is reprocessed rather than lost.
//
// Everything runs on fibers of the Env's scheduler (one OS thread); nothing here blocks the thread.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "runtime/app/event.h"
#include "runtime/app/log.h"
#include "runtime/app/raw_channel.h"
#include "runtime/app/settings.h"
#include "runtime/app/stats.h"
#include "runtime/offsets/ack_tracker.h"
#include "runtime/offsets/commit_policy.h"
#include "runtime/seam/env.h"

namespace mephisto {

enum class SupervisorStrategy {
  kOneForOne,  // restart only the actor that crashed (Faust's default)
  kOneForAll,  // restart every actor of the agent
  kCrashing,   // stop the worker with the error
};

// Headers of a request sent by ask() / Agent::send with reply_to: where the reply goes and how it is matched.
inline constexpr const char* kReplyToHeader = "mephisto-reply-to";
inline constexpr const char* kCorrelationIdHeader = "mephisto-correlation-id";
// Headers of a dead-lettered record: why it was rejected and where it came from.
inline constexpr const char* kDeadLetterErrorHeader = "mephisto-error";
inline constexpr const char* kDeadLetterTopicHeader = "mephisto-source-topic";
inline constexpr const char* kDeadLetterPartitionHeader = "mephisto-source-partition";
inline constexpr const char* kDeadLetterOffsetHeader = "mephisto-source-offset";

namespace app_internal {

class Tables;

// A topic or in-memory channel as declared.
struct TopicDecl {
  std::string name;
  bool in_memory = false;   // a channel: records never leave the process, nothing to commit
  bool internal = false;    // created by the app at start (repartition, reply, dead letters, create=true)
  int32_t partitions = -1;  // -1: AppSettings::topic_partitions
  int16_t replication_factor = -1;
  std::map<std::string, std::string> configs;
  std::string key_codec;  // for `mephisto topics`
  std::string value_codec;
  std::vector<RawChannel*> subscribers;  // agent buffers fed by this topic
  bool prepared = false;                 // created or found to exist at start
  int32_t actual_partitions = -1;        // the partition count it has (known once prepared)
};

// An agent as declared; the actor body is typed (app.h) and erased here.
struct AgentDecl {
  std::string name;
  TopicDecl* source = nullptr;
  RawChannel* buffer = nullptr;
  int32_t concurrency = 1;
  SupervisorStrategy supervisor = SupervisorStrategy::kOneForOne;
  std::string description;
  // Runs one actor's body over the agent's buffer until its stream ends. Throws what the body throws.
  std::function<void(int32_t actor_index)> run_actor;
  std::vector<std::string> sink_names;        // for `mephisto agents`
  std::map<std::string, RawChannel*> relays;  // by topic name (group_by, through)
  // Supervisor state.
  uint64_t restart_generation = 0;
  std::deque<int64_t> restart_times_ms;
};

struct TimerDecl {
  std::string name;
  int64_t interval_ms = 0;  // 0: a one-shot task at start
  bool on_leader = false;
  std::function<void()> body;
};

// Thrown into an actor's stream when its supervisor restarts every actor (one-for-all). Not an error.
struct ActorRestart {};

}  // namespace app_internal

class Engine final : private RebalanceListener {
  friend class app_internal::Tables;

 public:
  explicit Engine(AppSettings settings);
  ~Engine() override;
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // ---- declarations (before run(), except where noted)

  // The topic of that name, declared once (later declarations of the same name return the first).
  app_internal::TopicDecl* declare_topic(const std::string& name, app_internal::TopicDecl spec);
  // A new agent buffer fed by the topic. Also while running (group_by inside an agent): the subscription is
  // then updated, which makes the group rebalance.
  RawChannel* subscribe(app_internal::TopicDecl* topic, const std::string& buffer_name);
  app_internal::AgentDecl* declare_agent(app_internal::AgentDecl agent);
  void declare_timer(app_internal::TimerDecl timer);
  // Declares the internal repartition topic `{id}-{source}-{name}-repartition` of a group_by.
  app_internal::TopicDecl* declare_repartition(const std::string& source_topic, const std::string& name,
                                               int32_t partitions, const std::string& key_codec,
                                               const std::string& value_codec);
  // A relay of `agent` through `topic` (group_by, through): the agent's buffer fed by the topic; `created` is
  // true for the first call only, which tells the caller to start the forwarder that feeds the topic. Every
  // actor of the agent shares one relay per topic.
  struct Relay {
    RawChannel* buffer = nullptr;
    bool created = false;
  };
  Relay relay(app_internal::AgentDecl& agent, app_internal::TopicDecl* topic);

  [[nodiscard]] const AppSettings& settings() const { return settings_; }
  [[nodiscard]] const std::vector<std::unique_ptr<app_internal::TopicDecl>>& topics() const {
    return topics_;
  }
  [[nodiscard]] const std::vector<std::unique_ptr<app_internal::AgentDecl>>& agents() const {
    return agents_;
  }
  void set_log_sink(LogSink sink) { log_.set_sink(std::move(sink)); }
  AppLog& log() { return log_; }

  // ---- running

  // Runs the worker on the calling fiber until stop() and a graceful shutdown, or a fatal error. Once per
  // Engine. Errors: settings (kInvalidArg), a missing source topic (kUnknownTopicOrPartition, naming it),
  // client creation, a failed send (the worker stops without committing), a crashing supervisor's error.
  Status run(const Env& env);
  // Asks run() to shut down gracefully: stop fetching, let agents drain their buffers (up to
  // stop_timeout_ms), commit, leave the group. Any fiber of the worker's scheduler; idempotent.
  void stop();
  // Stops the worker with an error (a fatal send failure, a crashing supervisor). Nothing more is committed.
  void fail(Error error);
  [[nodiscard]] bool running() const { return running_; }
  [[nodiscard]] bool stopping() const { return stopping_; }
  [[nodiscard]] bool is_leader() const { return leader_; }
  [[nodiscard]] const AppStats& stats() const { return stats_; }
  // After run() returned an error: true when the error is one a fresh worker recovers from (an aborted or
  // fenced transaction, partitions lost under exactly_once), so the caller should start the worker again.
  [[nodiscard]] bool should_rejoin() const { return rejoin_; }
  app_internal::Tables& tables() { return *tables_; }
  [[nodiscard]] std::vector<TopicPartition> assignment() const;
  // Precondition: running.
  [[nodiscard]] const Env& env() const { return env_; }

  // ---- for the typed layer (from fibers of the running worker)

  // The next record of an agent buffer, parking until one is there or deadline_ms (on the worker's clock);
  // nullptr at the deadline or when the stream has ended (the worker is stopping and the buffer is empty:
  // buffer->closed()). Throws ActorRestart when the actor's agent restarts (pass the generation the actor
  // started under; agent may be null for forwarders, which never restart).
  app_internal::EventCore* pull(RawChannel* buffer, const app_internal::AgentDecl* agent, uint64_t generation,
                                int64_t deadline_ms = INT64_MAX);
  // The events the calling fiber is processing now: sends made by this fiber hold them until delivered.
  void set_current(app_internal::EventCore* event);
  void set_current(std::vector<app_internal::EventCore*> events);
  void clear_current();
  [[nodiscard]] const std::vector<app_internal::EventCore*>& current() const;
  // Sends a record (to Kafka, or into an in-memory channel's subscribers). Holds the calling fiber's current
  // events until its delivery report. Parks while the producer's queue (or a channel buffer) is full.
  // Errors: kState when the worker is not running (or has failed); a failed delivery is not returned here: it
  // stops the worker (see class comment).
  Status send(ProducerRecord record);
  // The typed layer's decode failure: apply AppSettings::bad_record_policy. The caller still releases its
  // hold.
  void on_bad_record(app_internal::EventCore* event, const Error& error);
  // ask(): sends `record` with reply headers and waits for the reply value (encoded). Errors: kTimedOut,
  // kState.
  Result<std::optional<std::string>> ask(ProducerRecord record, int64_t timeout_ms);
  // A yielded value of `agent` (encoded): to its sinks, and as the reply if the current event asked for one.
  void yield(app_internal::AgentDecl& agent, const std::string& value_bytes);
  // Spawns a fiber of the worker that ends with it (group_by forwarders). Exceptions are logged and counted.
  void spawn_helper(std::string name, std::function<void()> body);

  // ---- for EventCore (event.h)
  void on_event_released(app_internal::EventCore* event);

  // ---- for Tables
  // exactly_once: parks while a transaction is being committed (nothing may be sent between commit and the
  // next begin). Returns at once otherwise.
  void wait_for_transaction_gate();

 private:
  struct PartitionState;
  class Replies;

  // RebalanceListener (runs on the poll fiber, inside poll()).
  void on_partitions_revoked(const std::vector<TopicPartition>& partitions) override;
  void on_partitions_assigned(const std::vector<TopicPartition>& partitions) override;
  void on_partitions_lost(const std::vector<TopicPartition>& partitions) override;

  // run() without the recorder's on_stop (engine.cpp).
  Status run_worker(const Env& env);
  // Recorder (runtime/seam/recorder.h) reports; no-ops without a recorder.
  void record_start();
  [[nodiscard]] std::vector<SendSource> send_sources() const;
  Status start_clients();
  Status prepare_topics();
  Status create_topic_if_missing(app_internal::TopicDecl& topic);
  Status send_holding(ProducerRecord record, const std::vector<app_internal::EventCore*>& holding,
                      DeliveryCallback also = {});
  Status send_to_channel(const app_internal::TopicDecl& channel, ProducerRecord record);
  void on_delivery(const Result<RecordMetadata>& result, app_internal::EventCore* first,
                   std::vector<app_internal::EventCore*>* rest);
  [[nodiscard]] bool exactly_once() const {
    return settings_.processing_guarantee == ProcessingGuarantee::kExactlyOnce;
  }
  // exactly_once (engine_commit.cpp): reaches a commit point, commits the transaction with the offsets, and
  // begins the next one when begin_next. On failure the transaction is aborted and the worker stops to rejoin.
  Status commit_transaction(bool begin_next);
  Status begin_transaction();
  void abort_and_rejoin(const Error& error);
  Status reach_commit_point();
  PartitionState& partition_state(const TopicPartition& tp);
  void lock_commits();
  void unlock_commits();
  void finish_fiber();
  [[nodiscard]] std::vector<std::string> subscription() const;
  void poll_loop();
  void commit_loop();
  void dispatch(std::vector<ConsumerRecord> records);
  // Partitions feeding a full buffer (flow control), and those plus partitions whose tables restore.
  [[nodiscard]] std::set<TopicPartition> flow_control_pauses() const;
  [[nodiscard]] std::set<TopicPartition> partitions_to_pause() const;
  void wait_for_room();
  void update_flow_control();
  void drop_buffered(const std::set<TopicPartition>& partitions);
  // A partition's position moved back without a rebalance (engine_consume.cpp). False: the worker stops.
  [[nodiscard]] bool restart_after_position_reset(PartitionState& state, int64_t offset);
  void wait_in_flight(const std::set<TopicPartition>& partitions, int64_t timeout_ms);
  Status commit_now(const std::set<TopicPartition>* only);
  // Planted bug kRevokedCommitKept: adds the kept offsets of revoked partitions to a commit.
  void add_kept_revoked_offsets(std::map<TopicPartition, int64_t>& offsets) const;
  void give_up(const std::vector<TopicPartition>& partitions, bool commit_first);
  void run_actor(app_internal::AgentDecl* agent, int32_t index);
  // Returns whether the actor restarts.
  bool on_actor_crash(app_internal::AgentDecl* agent, int32_t index, const std::string& what);
  void run_timer(app_internal::TimerDecl* timer);
  void shutdown();
  void wake_fiber(FiberId& fiber);

  AppSettings settings_;
  AppLog log_;
  AppStats stats_;
  Env env_;
  std::vector<std::unique_ptr<app_internal::TopicDecl>> topics_;
  std::vector<std::unique_ptr<RawChannel>> buffers_;
  std::vector<std::unique_ptr<app_internal::AgentDecl>> agents_;
  std::vector<std::unique_ptr<app_internal::TimerDecl>> timers_;

  std::unique_ptr<Admin> admin_;
  std::unique_ptr<Producer> producer_;
  std::unique_ptr<Consumer> consumer_;
  std::unique_ptr<Replies> replies_;
  std::unique_ptr<app_internal::Tables> tables_;
  AckTracker tracker_;
  CommitPolicy policy_;
  std::map<TopicPartition, PartitionState> partitions_;
  std::set<TopicPartition> paused_partitions_;
  std::map<FiberId, std::vector<app_internal::EventCore*>> current_;
  std::map<FiberId, app_internal::AgentDecl*> actor_fibers_;
  std::map<std::string, app_internal::TopicDecl*> topics_by_name_;
  std::vector<FiberId> timer_fibers_;
  // The timer whose body a fiber is running: sends made there are attributed to the firing (recorder.h).
  std::map<FiberId, std::string> firing_timers_;
  bool recording_ = false;  // on_start reported: on_stop follows
  // Commits are serialised (the commit fiber and a rebalance may both want one).
  bool committing_ = false;
  std::deque<FiberId> commit_waiters_;
  // ask(): producers waiting for the queue to drain below its limit.
  std::deque<FiberId> send_waiters_;
  int64_t channel_offset_ = 0;
  std::string leader_topic_;

  bool running_ = false;
  bool stopping_ = false;
  bool failed_ = false;
  bool leader_ = false;
  bool paused_ = false;  // every assigned partition is paused (the poll fiber then waits for room instead)
  bool resubscribe_ = false;
  bool subscribed_ = false;
  bool shutting_down_ = false;
  bool poll_done_ = false;
  // exactly_once.
  bool barrier_ = false;           // a commit point is being reached: the poll fiber dispatches nothing
  bool poll_waits_for_commit_ = false;  // the poll fiber is parked on barrier_
  bool transaction_gate_ = false;  // a transaction is being committed: sends wait
  bool transaction_open_ = false;
  bool rejoin_ = false;
  bool aborting_ = false;  // the open transaction must never commit (set before anything else on abort)
  // The group metadata of the current assignment (KIP-447): offsets are committed under the generation that
  // owned them, so a worker the group has moved on from is rejected (the consumer's own metadata falls back to
  // generation -1 once it learns it was removed, which a coordinator accepts).
  GroupMetadata assignment_group_;
  // Planted bug kRevokedCommitKept (runtime/seam/planted.h) only: commit positions of partitions revoked from
  // this worker, committed again at its next commit (over their new owner's progress).
  std::map<TopicPartition, int64_t> kept_revoked_offsets_;
  std::deque<FiberId> gate_waiters_;
  FiberId commit_point_waiter_ = kNoFiber;
  int64_t transaction_sends_ = 0;  // records sent in the open transaction
  std::optional<Error> error_;
  int64_t events_alive_ = 0;
  int64_t sends_in_flight_ = 0;
  int32_t fibers_running_ = 0;
  FiberId main_fiber_ = kNoFiber;
  FiberId poll_fiber_ = kNoFiber;
  FiberId commit_fiber_ = kNoFiber;
  FiberId drain_waiter_ = kNoFiber;
};

}  // namespace mephisto
