#include "sim/app/app_harness.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <utility>

#include "runtime/seam/env.h"
#include "runtime/store/store.h"
#include "sim/client/sim_broker_client.h"

namespace mephisto::sim {
namespace {

// Destroyed just before the App it watches (a process's kept objects go newest first): runs `on_destroy`
// while the App still exists.
struct AppWatch {
  std::function<void()> on_destroy;
  ~AppWatch() {
    if (on_destroy) on_destroy();
  }
};

// A worker that must rejoin (App::should_rejoin) starts a fresh App after this pause, at most this often.
constexpr int64_t kRejoinDelayMs = 1000;
constexpr int kMaxRejoins = 100;

[[noreturn]] void harness_bug(const std::string& message) {
  std::fprintf(stderr, "mephisto sim: AppHarness: %s\n", message.c_str());
  std::abort();
}

}  // namespace

AppHarness::AppHarness(AppHarnessOptions options)
    : options_(std::move(options)),
      log_(options_.max_kept_events),
      executor_(std::make_unique<Executor>(options_.seed, &log_)),
      kafka_(std::make_unique<SimKafka>(*executor_, options_.kafka)) {}

AppHarness::~AppHarness() {
  // Apps and clients live in their processes and refer to the cluster: end them all while it still exists.
  actions_.clear();
  if (drain_timer_ != 0) executor_->cancel(drain_timer_);
  for (auto& worker : workers_) {
    if (executor_->running(worker->process)) executor_->crash(worker->process);
  }
  kafka_.reset();
  executor_.reset();
}

// ---------------------------------------------------------------------------------------------------------------
// Workers

int AppHarness::add_worker(const AppDefinition& definition, std::function<void(AppSettings&)> adjust) {
  const int index = static_cast<int>(workers_.size());
  auto worker = std::make_unique<Worker>();
  worker->name = "worker-" + std::to_string(index);
  worker->index = index;
  worker->definition = definition;
  worker->adjust = std::move(adjust);
  Worker* raw = worker.get();
  worker->process = executor_->add_process(
      worker->name, [this, raw](ProcessContext& context) { worker_main(*raw, context); });
  workers_.push_back(std::move(worker));
  post([this, raw] {
    note(*raw, "start");
    executor_->start(raw->process);
  });
  return index;
}

void AppHarness::worker_main(Worker& worker, ProcessContext& context) {
  // The broker client first: kept objects are destroyed newest first, so the App (which uses it) goes before
  // it.
  std::unique_ptr<BrokerClient> owned = make_sim_broker_client(*kafka_, context);
  BrokerClient* broker = owned.get();
  context.keep(std::shared_ptr<BrokerClient>(std::move(owned)));

  // The worker's "disk": table stores kept across crashes unless the restart wipes it.
  if (!worker.stores || context.disk().count("stores") == 0) {
    auto made = store::make_store_factory("memory://", "");
    if (!made.ok()) harness_bug("memory store factory: " + made.error().message);
    worker.stores = std::shared_ptr<store::StoreFactory>(std::move(made).value());
    context.disk()["stores"] = "memory";
  }
  Worker* raw_worker = &worker;
  std::shared_ptr<App> app;
  Status result;
  for (int attempt = 0;; ++attempt) {
    AppSettings settings =
        worker.definition.default_settings ? worker.definition.default_settings() : AppSettings{};
    if (worker.adjust) worker.adjust(settings);
    settings.worker_id = worker.name;
    app = std::make_shared<App>(std::move(settings));
    context.keep(app);
    App* raw_app = app.get();
    auto watch = std::make_shared<AppWatch>();
    watch->on_destroy = [this, raw_worker, raw_app] {
      if (raw_worker->app != raw_app) return;
      raw_worker->last_stats = raw_app->stats();
      note(*raw_worker, "the App is destroyed (crash)");
      raw_worker->app = nullptr;
    };
    context.keep(watch);

    app->set_log_sink([this, raw_worker](LogLevel level, const std::string& line) {
      raw_worker->log.push_back(
          fmt::format("[t={}ms] {} {}", executor_->now_ms(), log_level_name(level), line));
    });
    worker.returned = false;
    worker.result.reset();
    if (worker.definition.define) worker.definition.define(*app);
    worker.app = raw_app;

    Env env{&context.clock(), &context.scheduler(), &context.random(), broker, worker.stores.get()};
    env.planted = options_.planted;  // App::run accepts it: `broker` is the simulator's
    if (options_.recorder) env.recorder = options_.recorder(worker.index);
    result = app->run(env);
    worker.last_stats = app->stats();
    // As the CLI's worker does: a worker whose transaction was aborted or fenced starts afresh (bounded).
    if (result.ok() || !app->should_rejoin() || attempt >= kMaxRejoins) break;
    note(worker, "run() returned " + result.error().to_string() + "; rejoining");
    worker.app = nullptr;
    context.scheduler().park_until(context.clock().now_ms() + kRejoinDelayMs);
  }

  worker.app = nullptr;
  worker.returned = true;
  worker.result = result;
  note(worker,
       result.ok() ? std::string("run() returned ok") : "run() returned " + result.error().to_string());
  // The process ends with run(): its clients' fibers and the App go with it.
  const uint32_t incarnation = context.incarnation();
  post([this, raw_worker, incarnation] {
    if (executor_->running(raw_worker->process) &&
        executor_->context(raw_worker->process).incarnation() == incarnation) {
      executor_->crash(raw_worker->process);
    }
  });
}

void AppHarness::note(Worker& worker, const std::string& line) {
  worker.log.push_back(fmt::format("[t={}ms] harness: {}", executor_->now_ms(), line));
}

ProcessId AppHarness::worker_process(int worker) const {
  return worker_at(worker).process;
}

App* AppHarness::app(int worker) {
  Worker& w = worker_at(worker);
  if (!executor_->running(w.process)) return nullptr;
  return w.app;
}

AppStats AppHarness::stats(int worker) const {
  const Worker& w = worker_at(worker);
  if (w.app != nullptr && executor_->running(w.process)) return w.app->stats();
  return w.last_stats.value_or(AppStats{});
}

void AppHarness::crash_worker(int worker, bool wipe_disk) {
  Worker* w = &worker_at(worker);
  post([this, w, wipe_disk] {
    if (wipe_disk) w->wipe_on_restart = true;
    if (!executor_->running(w->process)) return;
    note(*w, wipe_disk ? "crash (disk wiped at restart)" : "crash");
    executor_->crash(w->process);
  });
}

void AppHarness::restart_worker(int worker) {
  Worker* w = &worker_at(worker);
  post([this, w] {
    if (executor_->running(w->process)) {
      note(*w, "crash before restart");
      executor_->crash(w->process);
    }
    note(*w, w->wipe_on_restart ? "restart (disk wiped)" : "restart");
    w->returned = false;
    w->result.reset();
    executor_->start(w->process, w->wipe_on_restart);
    w->wipe_on_restart = false;
  });
}

void AppHarness::stop_worker(int worker) {
  Worker* w = &worker_at(worker);
  post([this, w] {
    if (!executor_->running(w->process) || w->returned) return;
    note(*w, "stop");
    ProcessContext& context = executor_->context(w->process);
    Scheduler* scheduler = &context.scheduler();
    const Clock* clock = &context.clock();
    scheduler->spawn("harness-stop", [w, scheduler, clock] {
      // A worker added a moment ago may not have built its App yet (its main fiber has not run).
      while (w->app == nullptr && !w->returned) scheduler->park_until(clock->now_ms() + 1);
      if (w->app != nullptr) w->app->stop();
    });
  });
}

bool AppHarness::worker_running(int worker) const {
  const Worker& w = worker_at(worker);
  return executor_->running(w.process) && !w.returned;
}

std::optional<Status> AppHarness::worker_result(int worker) const {
  return worker_at(worker).result;
}

const std::vector<std::string>& AppHarness::worker_log(int worker) const {
  return worker_at(worker).log;
}

std::string AppHarness::dump_logs(size_t last_lines_per_worker) const {
  std::string out;
  for (const auto& worker : workers_) {
    const size_t skip =
        worker->log.size() > last_lines_per_worker ? worker->log.size() - last_lines_per_worker : 0;
    if (skip > 0) out += fmt::format("{}: ... {} earlier lines\n", worker->name, skip);
    for (size_t i = skip; i < worker->log.size(); ++i)
      out += fmt::format("{}: {}\n", worker->name, worker->log[i]);
  }
  return out;
}

AppHarness::Worker& AppHarness::worker_at(int worker) {
  if (worker < 0 || static_cast<size_t>(worker) >= workers_.size())
    harness_bug(fmt::format("no worker {} ({} added)", worker, workers_.size()));
  return *workers_[static_cast<size_t>(worker)];
}

const AppHarness::Worker& AppHarness::worker_at(int worker) const {
  if (worker < 0 || static_cast<size_t>(worker) >= workers_.size())
    harness_bug(fmt::format("no worker {} ({} added)", worker, workers_.size()));
  return *workers_[static_cast<size_t>(worker)];
}

// ---------------------------------------------------------------------------------------------------------------
// Ordered actions

void AppHarness::post(std::function<void()> action) {
  actions_.push_back(std::move(action));
  if (executor_->current_process() == kWorld) {
    // Outside any process's fiber or timer (the test's code, a run_until predicate, a world event): at once.
    drain_actions();
    return;
  }
  // From inside a process (an agent body, say): a process cannot crash itself from its own fiber, so the
  // action runs as a world event at the current virtual time.
  if (drain_timer_ == 0) {
    drain_timer_ = executor_->after(0, kWorld, [this] {
      drain_timer_ = 0;
      drain_actions();
    });
  }
}

void AppHarness::drain_actions() {
  if (drain_timer_ != 0) {
    executor_->cancel(drain_timer_);
    drain_timer_ = 0;
  }
  while (!actions_.empty()) {
    std::function<void()> action = std::move(actions_.front());
    actions_.pop_front();
    action();
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Running

void AppHarness::require_outside(const char* what) const {
  if (in_run_ || executor_->current_process() != kWorld)
    harness_bug(
        fmt::format("{}() runs the simulation: call it from the test's code, not from inside a run", what));
}

bool AppHarness::run_executor_until(const std::function<bool()>& done, int64_t deadline_ms) {
  in_run_ = true;
  const bool finished = executor_->run_until(done, deadline_ms);
  in_run_ = false;
  return finished;
}

bool AppHarness::run_until(const std::function<bool()>& done, int64_t timeout_ms) {
  require_outside("run_until");
  return run_executor_until(done, executor_->now_ms() + timeout_ms);
}

void AppHarness::run_for(int64_t duration_ms) {
  require_outside("run_for");
  in_run_ = true;
  executor_->run_until(executor_->now_ms() + duration_ms);
  in_run_ = false;
}

bool AppHarness::run_helper(const std::string& kind,
                            const std::function<void(ProcessContext&, BrokerClient&)>& body) {
  auto done = std::make_shared<bool>(false);
  const std::string name = fmt::format("harness-{}-{}", kind, ++helper_count_);
  const ProcessId process = executor_->add_process(name, [this, done, body](ProcessContext& context) {
    std::unique_ptr<BrokerClient> owned = make_sim_broker_client(*kafka_, context);
    BrokerClient* broker = owned.get();
    context.keep(std::shared_ptr<BrokerClient>(std::move(owned)));
    body(context, *broker);
    *done = true;
  });
  executor_->start(process);
  const bool finished =
      run_executor_until([&done] { return *done; }, executor_->now_ms() + options_.helper_timeout_ms);
  // The body's clients and captures must not outlive this call.
  executor_->crash(process);
  return finished;
}

Status AppHarness::create_topic(const TopicSpec& spec) {
  require_outside("create_topic");
  Status status = Error::of(ErrorCode::kTimedOut, "create_topic: the setup process did not finish");
  run_helper("setup", [&](ProcessContext&, BrokerClient& broker) {
    auto admin = broker.admin();
    if (!admin.ok()) {
      status = admin.error();
      return;
    }
    status = (*admin)->create_topic(spec, 30000);
  });
  return status;
}

int64_t AppHarness::produce(std::vector<ProducerRecord> records) {
  require_outside("produce");
  int64_t acked = 0;
  run_helper("producer", [&](ProcessContext&, BrokerClient& broker) {
    ProducerConfig config;
    config.client_id = "harness-producer";
    config.acks = -1;
    config.enable_idempotence = true;
    auto producer = broker.producer(config);
    if (!producer.ok()) return;
    for (auto& record : records) {
      Status sent = (*producer)->send(std::move(record), [&acked](const Result<RecordMetadata>& delivered) {
        if (delivered.ok()) ++acked;
      });
      (void)sent;  // counted as not acked
    }
    (void)(*producer)->flush(options_.helper_timeout_ms);
  });
  return acked;
}

std::map<TopicPartition, int64_t> AppHarness::end_offsets(const std::string& topic) {
  require_outside("end_offsets");
  std::map<TopicPartition, int64_t> ends;
  run_helper("offsets", [&](ProcessContext&, BrokerClient& broker) {
    auto admin = broker.admin();
    if (!admin.ok()) return;
    auto described = (*admin)->describe_topic(topic, 30000);
    if (!described.ok()) return;
    ConsumerConfig config;
    config.client_id = "harness-offsets";
    config.isolation_level = IsolationLevel::kReadCommitted;
    auto consumer = broker.consumer(config);
    if (!consumer.ok()) return;
    for (const auto& partition : described->partitions) {
      TopicPartition tp{topic, partition.partition};
      auto marks = (*consumer)->watermarks(tp, 30000);
      if (marks.ok()) ends[tp] = marks->second;
    }
    (void)(*consumer)->close();
  });
  return ends;
}

std::vector<ConsumerRecord> AppHarness::read_all(const std::string& topic) {
  require_outside("read_all");
  std::map<TopicPartition, std::vector<ConsumerRecord>> by_partition;
  run_helper("reader", [&](ProcessContext& context, BrokerClient& broker) {
    auto admin = broker.admin();
    if (!admin.ok()) return;
    auto described = (*admin)->describe_topic(topic, 30000);
    if (!described.ok()) return;
    ConsumerConfig config;
    config.client_id = "harness-reader";
    config.isolation_level = IsolationLevel::kReadCommitted;
    config.auto_offset_reset = OffsetReset::kEarliest;
    auto consumer = broker.consumer(config);
    if (!consumer.ok()) return;
    Consumer& c = **consumer;
    std::map<TopicPartition, int64_t> ends;
    std::vector<TopicPartition> partitions;
    for (const auto& partition : described->partitions) {
      TopicPartition tp{topic, partition.partition};
      auto marks = c.watermarks(tp, 30000);
      if (!marks.ok()) return;
      if (marks->second > marks->first) {
        ends[tp] = marks->second;
        partitions.push_back(tp);
      }
    }
    if (partitions.empty()) return;
    if (!c.assign(partitions).ok()) return;
    const int64_t deadline_ms = context.clock().now_ms() + 120000;
    auto finished = [&] {
      for (const auto& [tp, end] : ends) {
        auto position = c.position(tp);
        if (!position.ok() || *position < end) return false;
      }
      return true;
    };
    while (!finished() && context.clock().now_ms() < deadline_ms) {
      auto batch = c.poll(200);
      if (!batch.ok()) continue;
      for (auto& record : *batch) {
        TopicPartition tp{record.topic, record.partition};
        auto end = ends.find(tp);
        if (end != ends.end() && record.offset < end->second) by_partition[tp].push_back(std::move(record));
      }
    }
    (void)c.close();
  });
  std::vector<ConsumerRecord> out;
  for (auto& [tp, records] : by_partition) {
    for (auto& record : records) out.push_back(std::move(record));
  }
  return out;
}

std::map<TopicPartition, int64_t> AppHarness::committed(const std::string& group, const std::string& topic) {
  require_outside("committed");
  std::map<TopicPartition, int64_t> out;
  run_helper("offsets", [&](ProcessContext&, BrokerClient& broker) {
    auto admin = broker.admin();
    if (!admin.ok()) return;
    auto described = (*admin)->describe_topic(topic, 30000);
    if (!described.ok()) return;
    ConsumerConfig config;
    config.group_id = group;
    config.client_id = "harness-offsets";
    auto consumer = broker.consumer(config);
    if (!consumer.ok()) return;
    std::vector<TopicPartition> partitions;
    for (const auto& partition : described->partitions) partitions.push_back({topic, partition.partition});
    auto offsets = (*consumer)->committed(partitions, 30000);
    if (offsets.ok()) out = std::move(offsets).value();
    (void)(*consumer)->close();
  });
  return out;
}

}  // namespace mephisto::sim
