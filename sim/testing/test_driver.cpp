#include "sim/testing/test_driver.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <set>

#include "sim/app/app_harness.h"
#include "sim/cluster/cluster.h"
#include "sim/scenario/settle.h"

namespace mephisto {
namespace {

// Between the driver's checks whether the worker has settled (virtual ms).
constexpr int64_t kSettleStepMs = 200;
// Log lines of the worker carried by a process() error.
constexpr size_t kLogLinesInError = 40;

AppSettings settings_of(const AppDefinition& app, const std::function<void(AppSettings&)>& adjust) {
  AppSettings settings = app.default_settings ? app.default_settings() : AppSettings{};
  if (adjust) adjust(settings);
  return settings;
}

sim::AppHarnessOptions harness_options(const TestDriverOptions& options) {
  sim::AppHarnessOptions out;
  out.seed = options.seed;
  // One broker: a unit test of agents needs no replication; the cluster's faults are `mephisto sim`'s job.
  out.kafka.brokers = 1;
  out.kafka.default_replication_factor = 1;
  out.kafka.min_insync_replicas = 1;
  return out;
}

std::string names_of(const std::vector<std::string>& names) {
  return names.empty() ? "(none)" : fmt::format("{}", fmt::join(names, ", "));
}

}  // namespace

struct TestDriver::World {
  World(const AppDefinition& definition, const TestDriverOptions& opts, std::function<void(AppSettings&)> adj)
      : app(definition),
        options(opts),
        adjust(std::move(adj)),
        settings(settings_of(app, adjust)),
        harness(harness_options(opts)) {}

  AppDefinition app;
  TestDriverOptions options;
  std::function<void(AppSettings&)> adjust;
  AppSettings settings;
  sim::AppHarness harness;
  std::vector<TopicInfo> topics;
  std::vector<TableInfo> tables;
  std::vector<ProducerRecord> queued;
  int worker = -1;
};

TestDriver::TestDriver(const AppDefinition& app, TestDriverOptions options,
                       std::function<void(AppSettings&)> adjust)
    : world_(std::make_unique<World>(app, options, std::move(adjust))) {
  World& w = *world_;
  if (!w.app.define) die("app '" + w.app.name + "' has no define function");
  {
    // The declarations, read from an App that never runs (as `mephisto topics` does).
    App declared(w.settings);
    w.app.define(declared);
    w.topics = declared.topics();
    w.tables = declared.tables();
  }
  // Topics the app expects to exist (it refuses to start without them); it creates its own.
  for (const TopicInfo& topic : w.topics) {
    if (topic.in_memory || topic.internal) continue;
    Status created = w.harness.create_topic({topic.name, w.options.partitions, 1, {}});
    if (!created.ok() && created.error().code != ErrorCode::kTopicAlreadyExists)
      die("creating topic '" + topic.name + "': " + created.error().to_string());
  }
  w.worker = w.harness.add_worker(w.app, w.adjust);
  // The worker creates its own topics (with its counts and configs) as it starts: records sent to them can be
  // written once they exist. A worker that fails first is reported by process().
  std::vector<std::string> own;
  for (const TopicInfo& topic : w.topics)
    if (topic.internal && !topic.in_memory) own.push_back(topic.name);
  for (const TableInfo& table : w.tables) own.push_back(table.changelog);
  (void)w.harness.run_until(
      [&] {
        const std::vector<std::string> existing = w.harness.kafka().cluster().topics();
        return !w.harness.worker_running(w.worker) ||
               std::all_of(own.begin(), own.end(), [&](const std::string& name) {
                 return std::find(existing.begin(), existing.end(), name) != existing.end();
               });
      },
      w.options.process_timeout_ms);
}

TestDriver::~TestDriver() = default;

void TestDriver::send_raw(const std::string& topic, std::optional<std::string> key,
                          std::optional<std::string> value) {
  (void)topic_info(topic);
  ProducerRecord record;
  record.topic = topic;
  record.key = std::move(key);
  record.value = std::move(value);
  world_->queued.push_back(std::move(record));
}

Status TestDriver::process() {
  World& w = *world_;
  if (!w.queued.empty()) {
    const auto sent = static_cast<int64_t>(w.queued.size());
    const int64_t acked = w.harness.produce(std::move(w.queued));
    w.queued.clear();
    if (acked != sent)
      return Error::of(ErrorCode::kTimedOut, fmt::format("only {} of {} records were written", acked, sent));
  }
  std::vector<std::string> transactional;
  for (const TopicInfo& topic : w.topics)
    if (!topic.in_memory) transactional.push_back(topic.name);
  for (const TableInfo& table : w.tables) transactional.push_back(table.changelog);
  const int64_t started_ms = w.harness.now_ms();
  std::string why = "not started";
  while (w.harness.now_ms() - started_ms < w.options.process_timeout_ms) {
    w.harness.run_for(kSettleStepMs);
    if (!w.harness.worker_running(w.worker)) {
      const std::optional<Status> result = w.harness.worker_result(w.worker);
      return Error::of(ErrorCode::kState,
                       fmt::format("the worker stopped: {}\n{}",
                                   result && !result->ok() ? result->error().to_string() : "run() returned",
                                   w.harness.dump_logs(kLogLinesInError)));
    }
    std::set<std::string> consumed = sim::scenario::consumed_topics(w.harness);
    if (consumed.empty()) continue;  // the worker has not declared its sources yet
    why = sim::scenario::unsettled(w.harness, w.settings.id, consumed, transactional);
    if (why.empty()) return {};
  }
  return Error::of(ErrorCode::kTimedOut,
                   fmt::format("not processed within {} virtual ms: {}\n{}", w.options.process_timeout_ms,
                               why, w.harness.dump_logs(kLogLinesInError)));
}

std::vector<TestRecord> TestDriver::read_raw(const std::string& topic) {
  (void)topic_info(topic);
  std::vector<TestRecord> out;
  for (ConsumerRecord& r : world_->harness.read_all(topic))
    out.push_back({r.partition, r.offset, std::move(r.key), std::move(r.value)});
  return out;
}

std::map<std::string, std::string> TestDriver::table_raw(const std::string& name) {
  const auto it = std::find_if(world_->tables.begin(), world_->tables.end(),
                               [&](const TableInfo& t) { return t.name == name; });
  if (it == world_->tables.end()) {
    std::vector<std::string> names;
    for (const TableInfo& t : world_->tables) names.push_back(t.name);
    die("app '" + world_->app.name + "' declares no table '" + name + "'; its tables: " + names_of(names));
  }
  std::map<std::string, std::string> contents;
  for (ConsumerRecord& r : world_->harness.read_all(it->changelog)) {
    if (!r.key) continue;
    if (r.value) {
      contents[*r.key] = std::move(*r.value);
    } else {
      contents.erase(*r.key);
    }
  }
  return contents;
}

std::string TestDriver::log() const {
  return world_->harness.dump_logs();
}

int64_t TestDriver::now_ms() const {
  return world_->harness.now_ms();
}

const TopicInfo& TestDriver::topic_info(const std::string& topic) const {
  for (const TopicInfo& info : world_->topics)
    if (info.name == topic) return info;
  std::vector<std::string> names;
  for (const TopicInfo& info : world_->topics) names.push_back(info.name);
  die("app '" + world_->app.name + "' declares no topic '" + topic + "'; its topics: " + names_of(names));
}

void TestDriver::die(const std::string& message) {
  std::fprintf(stderr, "mephisto::TestDriver: %s\n", message.c_str());
  std::abort();
}

}  // namespace mephisto
