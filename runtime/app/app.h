// App: Faust's application in C++ — topics, agents, timers and tasks declared in code, then run as one worker
// of a consumer group. The same App definition runs under `mephisto worker` on real Kafka and in the
// simulator: it receives everything from the world through the Env given to run() (runtime/seam/env.h).
//
//   App app(settings);                                   // settings.id is the group and internal-topic
//   prefix auto views = app.topic<std::string, PageView>("page-views"); auto counts = app.topic<std::string,
//   std::string>("page-view-counts"); app.agent("count", views, [=](Stream<std::string, PageView>& stream) {
//     for (auto& event : stream) counts.send(event.value().page(), "1");
//   });
//   Status done = app.run(env);                          // on a fiber; returns after stop() or a fatal error
//
// Declarations (topic, channel, agent, timer, task) are made before run(). One App object is one worker: a
// simulation with three workers builds three Apps from the same definition function (see AppDefinition).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "runtime/app/engine.h"
#include "runtime/app/scenario_support.h"
#include "runtime/app/stream.h"
#include "runtime/app/table.h"
#include "runtime/app/topic.h"

namespace mephisto {

// An agent whose actors yield nothing (no sinks, no replies).
struct NoReply {};

// Where an agent's yielded values go: a topic (keyed by the input event's key, so the output stays
// co-partitioned with its input), another agent (likewise), or a function.
template <typename R>
class Sink {
 public:
  template <typename K2>
  static Sink to(const Topic<K2, R>& topic) {
    Sink sink;
    sink.name_ = "topic:" + topic.name();
    sink.fn_ = [topic](const R& value, app_internal::EventCore* current) {
      ProducerRecord record;
      record.topic = topic.name();
      if (current != nullptr) record.key = current->record.key;
      record.value = topic.value_codec().encode(value);
      Status sent = topic.engine()->send(std::move(record));
      (void)sent;  // failures stop the worker (Engine::send)
    };
    return sink;
  }
  static Sink function(std::string name, std::function<void(const R&)> fn) {
    Sink sink;
    sink.name_ = "function:" + name;
    sink.fn_ = [fn = std::move(fn)](const R& value, app_internal::EventCore*) { fn(value); };
    return sink;
  }
  [[nodiscard]] const std::string& name() const { return name_; }
  void operator()(const R& value, app_internal::EventCore* current) const { fn_(value, current); }

 private:
  std::string name_;
  std::function<void(const R&, app_internal::EventCore*)> fn_;
};

template <typename R>
struct AgentOptions {
  int32_t concurrency = 1;  // actors sharing the agent's buffer (events may then finish out of order)
  SupervisorStrategy supervisor = SupervisorStrategy::kOneForOne;
  std::vector<Sink<R>> sinks;
  std::string description;
};

// What an agent's body yields through: sinks, and the reply to an ask().
template <typename R>
class Output {
 public:
  Output(Engine* engine, app_internal::AgentDecl* agent, std::shared_ptr<std::vector<Sink<R>>> sinks)
      : engine_(engine), agent_(agent), sinks_(std::move(sinks)) {}
  // Sends `value` to every sink and, if the event being processed came from ask(), as its reply.
  void yield(const R& value) {
    app_internal::EventCore* current = engine_->current().empty() ? nullptr : engine_->current().front();
    for (const auto& sink : *sinks_) sink(value, current);
    engine_->yield(*agent_, reply_codec().encode(value));
  }
  static SelectedCodec<R> reply_codec() {
    return app_internal::codec_or_die<R>(app_internal::internal_codec_kind<R>(), "reply");
  }

 private:
  Engine* engine_;
  app_internal::AgentDecl* agent_;
  std::shared_ptr<std::vector<Sink<R>>> sinks_;
};

template <>
class Output<NoReply> {
 public:
  Output(Engine*, app_internal::AgentDecl*, std::shared_ptr<std::vector<Sink<NoReply>>>) {}
};

// A typed handle on a declared agent: send it events, or ask it and wait for its reply.
template <typename K, typename V, typename R>
class Agent {
 public:
  Agent() = default;
  Agent(app_internal::AgentDecl* decl, Topic<K, V> topic) : decl_(decl), topic_(std::move(topic)) {}

  [[nodiscard]] const std::string& name() const { return decl_->name; }
  [[nodiscard]] const Topic<K, V>& topic() const { return topic_; }

  // Sends an event to the agent's topic, no reply expected (Faust's cast).
  Status cast(const K& key, const V& value) const { return topic_.send(key, value); }

  // Sends an event with Faust's full options: a partition, and where the reply goes (a topic name and a
  // correlation id; the agent's yield() sends its reply there).
  Status send(const K& key, const V& value, int32_t partition = -1, const std::string& reply_to = {},
              const std::string& correlation_id = {}) const {
    SendOptions options;
    options.partition = partition;
    if (!reply_to.empty()) {
      options.headers.push_back({kReplyToHeader, reply_to});
      options.headers.push_back({kCorrelationIdHeader, correlation_id});
    }
    return topic_.send(key, value, options);
  }

  // Sends an event and waits (parking the calling fiber) for the agent's reply, up to timeout_ms (default
  // AppSettings::ask_timeout_ms). Errors: kTimedOut, kBadMessage (the reply did not decode), kState.
  Result<R> ask(const K& key, const V& value, int64_t timeout_ms = -1) const
      requires(!std::is_same_v<R, NoReply>) {
    Engine* engine = topic_.engine();
    auto reply = engine->ask(topic_.record(key, value),
                             timeout_ms < 0 ? engine->settings().ask_timeout_ms : timeout_ms);
    if (!reply.ok()) return reply.error();
    if (!reply.value().has_value()) return R{};
    return Output<R>::reply_codec().decode(*reply.value());
  }

 private:
  app_internal::AgentDecl* decl_ = nullptr;
  Topic<K, V> topic_;
};

struct TimerOptions {
  bool on_leader =
      false;  // run only on the worker holding the group's leader partition (one worker at a time)
};

// Everything `mephisto agents` and `mephisto topics` print about a declaration.
struct AgentInfo {
  std::string name;
  std::string topic;
  int32_t concurrency = 1;
  std::string supervisor;
  std::vector<std::string> sinks;
  std::string description;
  // Topics its stream re-partitions or passes through (group_by, through), once the body reached them: the
  // agent reads these too.
  std::vector<std::string> relays;
};
struct TopicInfo {
  std::string name;
  bool internal = false;
  bool in_memory = false;
  int32_t partitions = -1;  // when the app creates it
  std::string key_codec;
  std::string value_codec;
};
struct TableInfo {
  std::string name;
  std::string kind;       // "table", "global", "set"
  std::string changelog;  // `{id}-{name}-changelog`
  std::string source;     // the topic it is partitioned like ("" for a GlobalTable)
  std::string help;
};

class App {
 public:
  explicit App(AppSettings settings) : engine_(std::make_unique<Engine>(std::move(settings))) {}

  // A Kafka topic. Codec kinds that cannot carry K or V stop the program with a message naming the topic (a
  // mistake in the program, found at declaration, not at the first record).
  template <typename K, typename V>
  Topic<K, V> topic(const std::string& name, const TopicOptions& options = {}) {
    app_internal::TopicDecl spec;
    spec.name = name;
    spec.internal = options.create;
    spec.partitions = options.partitions.value_or(-1);
    spec.replication_factor = options.replication_factor.value_or(-1);
    spec.configs = options.configs;
    const CodecKind key_kind = options.key_codec.value_or(app_internal::default_codec_kind<K>());
    const CodecKind value_kind = options.value_codec.value_or(app_internal::default_codec_kind<V>());
    spec.key_codec = codec_kind_name(key_kind);
    spec.value_codec = codec_kind_name(value_kind);
    app_internal::TopicDecl* decl = engine_->declare_topic(name, std::move(spec));
    return Topic<K, V>(engine_.get(), decl, app_internal::codec_or_die<K>(key_kind, name),
                       app_internal::codec_or_die<V>(value_kind, name));
  }

  // An in-memory channel (Faust's app.channel()): records sent to it go straight to the agents reading it,
  // never to Kafka, and do not survive the process. At-least-once still holds across a channel: an input
  // being processed when a record was sent into the channel is acked only once that record is processed too.
  template <typename K, typename V>
  Topic<K, V> channel(const std::string& name) {
    app_internal::TopicDecl spec;
    spec.name = name;
    spec.in_memory = true;
    spec.key_codec = codec_kind_name(app_internal::internal_codec_kind<K>());
    spec.value_codec = codec_kind_name(app_internal::internal_codec_kind<V>());
    app_internal::TopicDecl* decl = engine_->declare_topic(name, std::move(spec));
    return Topic<K, V>(engine_.get(), decl,
                       app_internal::codec_or_die<K>(app_internal::internal_codec_kind<K>(), name),
                       app_internal::codec_or_die<V>(app_internal::internal_codec_kind<V>(), name));
  }

  // An agent reading `source`. `body` is called once per actor (and again after each supervisor restart) as
  // body(Stream<K, V>&) or, to yield, body(Stream<K, V>&, Output<R>&); it loops over the stream and returns
  // when the stream ends. An exception thrown by the body acks the event being processed (it is not retried:
  // that would break ordering), is logged and counted, and the supervisor restarts the actor (or the agent,
  // or stops the worker).
  template <typename R = NoReply, typename K, typename V, typename F>
  Agent<K, V, R> agent(const std::string& name, const Topic<K, V>& source, F body,
                       AgentOptions<R> options = {}) {
    app_internal::AgentDecl decl;
    decl.name = name;
    decl.source = source.decl();
    decl.concurrency = options.concurrency < 1 ? 1 : options.concurrency;
    decl.supervisor = options.supervisor;
    decl.description = options.description;
    for (const auto& sink : options.sinks) decl.sink_names.push_back(sink.name());
    decl.buffer = engine_->subscribe(source.decl(), name);
    app_internal::AgentDecl* agent = engine_->declare_agent(std::move(decl));
    auto sinks = std::make_shared<std::vector<Sink<R>>>(std::move(options.sinks));
    Engine* engine = engine_.get();
    agent->run_actor = [engine, agent, source, sinks, body](int32_t /*actor_index*/) {
      auto input = std::make_shared<app_internal::BufferSource<K, V>>(agent->buffer, source.key_codec(),
                                                                      source.value_codec());
      input->engine = engine;
      input->agent = agent;
      input->generation = agent->restart_generation;
      Stream<K, V> stream(std::move(input));
      if constexpr (std::is_invocable_v<F, Stream<K, V>&, Output<R>&>) {
        Output<R> output(engine, agent, sinks);
        body(stream, output);
      } else {
        static_assert(std::is_invocable_v<F, Stream<K, V>&>,
                      "an agent body is callable as body(Stream<K, V>&) or body(Stream<K, V>&, Output<R>&)");
        body(stream);
      }
    };
    return Agent<K, V, R>(agent, source);
  }

  // An agent with its own topic `{id}-{name}` (created by the app), for agents fed by send/cast/ask:
  // app.agent<std::string, Withdrawal, WithdrawalResult>("withdraw", body).
  template <typename K, typename V, typename R = NoReply, typename F>
  Agent<K, V, R> agent(const std::string& name, F body, AgentOptions<R> options = {}) {
    return agent<R>(name, agent_topic<K, V>(name), std::move(body), std::move(options));
  }
  // The topic `{id}-{name}` of the agent `name` declared without a source (above), declared now so a table
  // can be partitioned like it before the agent's body, which writes the table, is declared:
  //
  //   auto requests = app.agent_topic<std::string, Withdrawal>("withdraw");
  //   auto balances = app.table<std::string, int64_t>("balances", requests);
  //   app.agent<WithdrawalResult>("withdraw", requests, [=](Stream<std::string, Withdrawal>& s, ...) {...});
  template <typename K, typename V>
  Topic<K, V> agent_topic(const std::string& name) {
    TopicOptions topic_options;
    topic_options.create = true;
    topic_options.key_codec = app_internal::internal_codec_kind<K>();
    topic_options.value_codec = app_internal::internal_codec_kind<V>();
    return topic<K, V>(settings().id + "-" + name, topic_options);
  }

  // A table partitioned like `source` (its changelog gets the source's partition count; an existing changelog
  // with another count is a startup error naming both). See table.h.
  template <typename K, typename V, typename K2, typename V2>
  Table<K, V> table(const std::string& name, const Topic<K2, V2>& source, TableOptions<V> options = {}) {
    app_internal::TableDecl decl;
    decl.name = name;
    decl.kind = app_internal::TableKind::kTable;
    decl.source = source.decl();
    decl.help = options.help;
    return Table<K, V>(engine_.get(), engine_->tables().declare(std::move(decl)),
                       std::move(options.default_value));
  }
  // The internal topic `{id}-{source}-{name}-repartition` that `group_by(key_fn, name)` in an agent reading
  // `source` re-partitions through, declared now so that a table can be partitioned like it: Faust's table
  // written after a group_by.
  //
  //   auto views = app.topic<std::string, PageView>("page-views");
  //   auto by_page = app.repartition_topic<std::string>(views, "page");
  //   auto counts = app.table<std::string, int64_t>("page-counts", by_page);
  //   app.agent("count", views, [=](Stream<std::string, PageView>& stream) {
  //     for (auto& event : stream.group_by([](auto& e) { return e.value().page(); }, "page"))
  //       counts.add(event.key(), 1);
  //   });
  //
  // `partitions` as group_by's (-1: AppSettings::topic_partitions); the key codec is group_by's default.
  template <typename K2, typename K, typename V>
  Topic<K2, V> repartition_topic(const Topic<K, V>& source, const std::string& name,
                                 int32_t partitions = -1) {
    const CodecKind key_kind = app_internal::internal_codec_kind<K2>();
    const CodecKind value_kind = app_internal::internal_codec_kind<V>();
    app_internal::TopicDecl* decl =
        engine_->declare_repartition(source.name(), name, partitions, std::string(codec_kind_name(key_kind)),
                                     std::string(codec_kind_name(value_kind)));
    return Topic<K2, V>(engine_.get(), decl, app_internal::codec_or_die<K2>(key_kind, decl->name),
                        app_internal::codec_or_die<V>(value_kind, decl->name));
  }

  // A GlobalTable: every worker holds all its partitions (options.partitions, default topic_partitions).
  template <typename K, typename V>
  GlobalTable<K, V> global_table(const std::string& name, TableOptions<V> options = {}) {
    app_internal::TableDecl decl;
    decl.name = name;
    decl.kind = app_internal::TableKind::kGlobal;
    decl.partitions = options.partitions.value_or(-1);
    decl.help = options.help;
    return GlobalTable<K, V>(engine_.get(), engine_->tables().declare(std::move(decl)),
                             std::move(options.default_value));
  }
  // A SetTable partitioned like `source`.
  template <typename K, typename M, typename K2, typename V2>
  SetTable<K, M> set_table(const std::string& name, const Topic<K2, V2>& source, std::string help = {}) {
    app_internal::TableDecl decl;
    decl.name = name;
    decl.kind = app_internal::TableKind::kSet;
    decl.source = source.decl();
    decl.help = std::move(help);
    return SetTable<K, M>(
        Table<K, std::string>(engine_.get(), engine_->tables().declare(std::move(decl)), std::string()));
  }

  // Runs body every interval_ms (the first run one interval after start). Exceptions are logged and counted.
  void timer(const std::string& name, int64_t interval_ms, std::function<void()> body,
             TimerOptions options = {}) {
    engine_->declare_timer({name, interval_ms < 1 ? 1 : interval_ms, options.on_leader, std::move(body)});
  }
  // Runs body once, when the worker has started (topics ready, before the first rebalance completes).
  void task(const std::string& name, std::function<void()> body) {
    engine_->declare_timer({name, 0, false, std::move(body)});
  }

  // Runs this worker on the calling fiber (see Engine::run): returns after stop() and a graceful shutdown, or
  // with the error that stopped it.
  Status run(const Env& env) { return engine_->run(env); }
  // Graceful stop (Engine::stop). From a fiber of the worker's scheduler (production: via EventLoop::post).
  void stop() { engine_->stop(); }

  [[nodiscard]] const AppSettings& settings() const { return engine_->settings(); }
  [[nodiscard]] const AppStats& stats() const { return engine_->stats(); }
  [[nodiscard]] bool is_leader() const { return engine_->is_leader(); }
  // After run() returned an error: start a fresh worker (Engine::should_rejoin).
  [[nodiscard]] bool should_rejoin() const { return engine_->should_rejoin(); }
  [[nodiscard]] bool running() const { return engine_->running(); }
  [[nodiscard]] std::vector<TopicPartition> assignment() const { return engine_->assignment(); }
  [[nodiscard]] std::vector<AgentInfo> agents() const;
  [[nodiscard]] std::vector<TopicInfo> topics() const;
  [[nodiscard]] std::vector<TableInfo> tables() const;
  void set_log_sink(LogSink sink) { engine_->set_log_sink(std::move(sink)); }
  AppLog& log() { return engine_->log(); }
  Engine& engine() { return *engine_; }

 private:
  std::unique_ptr<Engine> engine_;
};

// A named app definition: what `mephisto worker NAME` runs and what the simulator's harness instantiates once
// per simulated worker. `define` declares the app's topics and agents on a fresh App.
struct AppDefinition {
  std::string name;
  std::string description;
  std::function<AppSettings()> default_settings;
  std::function<void(App&)> define;
  // What `mephisto sim` needs to run failure scenarios on this app (scenario_support.h); nullopt: the app
  // cannot be simulated, and a scenario naming it is refused with that reason.
  std::optional<ScenarioSupport> scenario;
};

}  // namespace mephisto
