#include "sim/scenario/loader.h"

#include <google/protobuf/io/tokenizer.h>
#include <google/protobuf/text_format.h>

#include <fstream>
#include <sstream>
#include <utility>
#include <vector>

#include "runtime/app/settings.h"

namespace mephisto::sim::scenario {
namespace {

namespace pb = google::protobuf;
namespace ms = mephisto::scenario;

Error invalid(std::string message) {
  return Error{ErrorCode::kInvalidArg, std::move(message)};
}

// Collects protoc's syntax errors ("line:col: message"); only the first is reported, as later ones tend to
// follow from it.
class FirstError final : public pb::io::ErrorCollector {
 public:
  void AddError(int line, pb::io::ColumnNumber column, const std::string& message) override {
    if (!error_.empty()) return;
    error_ = std::to_string(line + 1) + ":" + std::to_string(column + 1) + ": " + message;
  }
  void AddWarning(int, pb::io::ColumnNumber, const std::string&) override {}
  [[nodiscard]] const std::string& error() const { return error_; }

 private:
  std::string error_;
};

// Where a field was written in the file: a path of (field name, index) from the root message, looked up in
// the parser's ParseInfoTree. A field left out of the file has no location: the nearest written parent is
// named.
class Locator {
 public:
  Locator(const std::string& origin, const pb::TextFormat::ParseInfoTree* tree)
      : origin_(origin), tree_(tree) {}

  struct Step {
    const char* field;
    int index = -1;  // -1 for a singular field
  };

  [[nodiscard]] std::string where(const std::vector<Step>& path) const {
    const pb::Descriptor* descriptor = ms::Scenario::descriptor();
    const pb::TextFormat::ParseInfoTree* tree = tree_;
    std::string at = origin_;
    for (const Step& step : path) {
      if (tree == nullptr || descriptor == nullptr) break;
      const pb::FieldDescriptor* field = descriptor->FindFieldByName(step.field);
      if (field == nullptr) break;
      // A repeated field named without an index (a map such as app.settings, whose parsed order is lost): its
      // first entry.
      const int index = field->is_repeated() && step.index < 0 ? 0 : step.index;
      const pb::TextFormat::ParseLocationRange range = tree->GetLocationRange(field, index);
      if (range.start.line >= 0) {
        at = origin_ + ":" + std::to_string(range.start.line + 1) + ":" +
             std::to_string(range.start.column + 1);
      }
      if (field->type() != pb::FieldDescriptor::TYPE_MESSAGE) break;
      tree = tree->GetTreeForNested(field, index);
      descriptor = field->message_type();
    }
    return at;
  }

 private:
  std::string origin_;
  const pb::TextFormat::ParseInfoTree* tree_;
};

void apply_defaults(ms::Scenario& s, const std::string& origin) {
  if (s.name().empty()) {
    std::string base = origin.substr(origin.find_last_of('/') + 1);
    if (const auto dot = base.find('.'); dot != std::string::npos) base.resize(dot);
    s.set_name(base);
  }
  ms::ClusterSpec& c = *s.mutable_cluster();
  if (c.brokers() == 0) c.set_brokers(3);
  if (c.replication_factor() == 0) c.set_replication_factor(std::min(3, c.brokers()));
  if (c.min_insync_replicas() == 0) c.set_min_insync_replicas(std::min(2, c.replication_factor()));
  if (c.input_partitions() == 0) c.set_input_partitions(4);
  if (c.output_partitions() == 0) c.set_output_partitions(4);
  if (c.replica_lag_time_max_ms() == 0) c.set_replica_lag_time_max_ms(30'000);
  if (c.latency_min_ms() == 0) c.set_latency_min_ms(1);
  if (c.latency_max_ms() == 0) c.set_latency_max_ms(std::max<int64_t>(3, c.latency_min_ms()));
  ms::AppSpec& a = *s.mutable_app();
  if (a.workers() == 0) a.set_workers(2);
  ms::Workload& w = *s.mutable_workload();
  if (w.events() == 0) w.set_events(500);
  if (w.keys() == 0) w.set_keys(16);
  if (w.skew() == 0) w.set_skew(1);
  if (w.rate_per_s() == 0) w.set_rate_per_s(50);
  for (ms::Fault& f : *s.mutable_fault()) {
    if (f.duration_ms() == 0) f.set_duration_ms(5000);
  }
  if (s.has_swarm()) {
    ms::Swarm& sw = *s.mutable_swarm();
    if (sw.max_faults() == 0) sw.set_max_faults(8);
    if (sw.min_duration_ms() == 0) sw.set_min_duration_ms(100);
    if (sw.max_duration_ms() == 0) sw.set_max_duration_ms(15'000);
  }
  ms::Phases& p = *s.mutable_phases();
  if (p.chaos_ms() == 0) p.set_chaos_ms(60'000);
  if (p.liveness_bound_ms() == 0) p.set_liveness_bound_ms(120'000);
}

// Checks every value against its documented range (models/scenario.proto). Returns the first problem.
class Validator {
 public:
  Validator(const ms::Scenario& s, const Locator& at, const std::vector<AppDefinition>& apps)
      : s_(s), at_(at), apps_(apps) {}

  [[nodiscard]] Status run() {
    cluster();
    app();
    workload();
    phases();
    faults();
    swarm();
    invariants();
    if (problem_.empty()) return {};
    return invalid(problem_);
  }

 private:
  using Path = std::vector<Locator::Step>;

  void fail(const Path& path, const std::string& what) {
    if (problem_.empty()) problem_ = at_.where(path) + ": " + what;
  }
  void range(const Path& path, const std::string& name, int64_t value, int64_t lo, int64_t hi) {
    if (value < lo || value > hi) {
      fail(path, name + " is " + std::to_string(value) + "; expected " + std::to_string(lo) + ".." +
                     std::to_string(hi));
    }
  }

  void cluster() {
    const ms::ClusterSpec& c = s_.cluster();
    range({{"cluster"}, {"brokers"}}, "cluster.brokers", c.brokers(), 1, 9);
    range({{"cluster"}, {"replication_factor"}}, "cluster.replication_factor", c.replication_factor(), 1,
          c.brokers());
    range({{"cluster"}, {"min_insync_replicas"}}, "cluster.min_insync_replicas", c.min_insync_replicas(), 1,
          c.replication_factor());
    range({{"cluster"}, {"input_partitions"}}, "cluster.input_partitions", c.input_partitions(), 1, 64);
    range({{"cluster"}, {"output_partitions"}}, "cluster.output_partitions", c.output_partitions(), 1, 64);
    range({{"cluster"}, {"replica_lag_time_max_ms"}}, "cluster.replica_lag_time_max_ms",
          c.replica_lag_time_max_ms(), 100, 600'000);
    range({{"cluster"}, {"latency_min_ms"}}, "cluster.latency_min_ms", c.latency_min_ms(), 0, 10'000);
    range({{"cluster"}, {"latency_max_ms"}}, "cluster.latency_max_ms", c.latency_max_ms(), c.latency_min_ms(),
          10'000);
  }

  void app() {
    const ms::AppSpec& a = s_.app();
    auto found = find_scenario_app(apps_, a.name());
    if (!found.ok()) {
      fail({{"app"}, {"name"}}, found.error().message);
      return;
    }
    app_ = *found;
    range({{"app"}, {"workers"}}, "app.workers", a.workers(), 1, 8);
    // The settings must be ones `mephisto worker --set` accepts, with valid values. Sorted for a stable
    // message.
    std::map<std::string, std::string> sorted(a.settings().begin(), a.settings().end());
    AppSettings settings = app_->default_settings();
    for (const auto& [name, value] : sorted) {
      if (name == "id" || name == "worker_id" || name == "broker") {
        fail({{"app"}, {"settings"}}, "app.settings: '" + name + "' is set by the simulator; leave it out");
        return;
      }
      if (Status set = set_setting(settings, name, value); !set.ok()) {
        fail({{"app"}, {"settings"}}, "app.settings: " + set.error().message);
        return;
      }
    }
    if (Status valid = validate(scenario_settings(s_, app_->default_settings())); !valid.ok()) {
      fail({{"app"}, {"settings"}},
           "app.settings (with the simulator's timeouts: 10 s session, 30 s "
           "max.poll.interval unless set here): " +
               valid.error().message);
    }
  }

  void workload() {
    const ms::Workload& w = s_.workload();
    range({{"workload"}, {"events"}}, "workload.events", w.events(), 1, 1'000'000);
    range({{"workload"}, {"keys"}}, "workload.keys", w.keys(), 1, 100'000);
    if (w.skew() < 0 || w.skew() > 10) fail({{"workload"}, {"skew"}}, "workload.skew: expected 0..10");
    if (w.rate_per_s() <= 0 || w.rate_per_s() > 100'000) {
      fail({{"workload"}, {"rate_per_s"}}, "workload.rate_per_s: expected more than 0 and at most 100000");
    }
    range({{"workload"}, {"start_ms"}}, "workload.start_ms", w.start_ms(), 0, s_.phases().chaos_ms());
  }

  void phases() {
    range({{"phases"}, {"chaos_ms"}}, "phases.chaos_ms", s_.phases().chaos_ms(), 1000, 3'600'000);
    range({{"phases"}, {"liveness_bound_ms"}}, "phases.liveness_bound_ms", s_.phases().liveness_bound_ms(),
          1000, 3'600'000);
  }

  [[nodiscard]] int max_workers() const {
    int workers = s_.app().workers();
    for (const ms::Fault& f : s_.fault()) {
      if (f.has_add_worker()) ++workers;
    }
    return workers;
  }

  void broker_target(const Path& path, const ms::BrokerTarget& b) {
    switch (b.which_case()) {
      case ms::BrokerTarget::kBroker:
        range(path, "broker", b.broker(), 1, s_.cluster().brokers());
        break;
      case ms::BrokerTarget::kLeaderOf: {
        const std::string& tp = b.leader_of();
        const auto slash = tp.rfind('/');
        const std::string topic = slash == std::string::npos ? "" : tp.substr(0, slash);
        int64_t partition = -1;
        try {
          partition = slash == std::string::npos ? -1 : std::stoll(tp.substr(slash + 1));
        } catch (const std::exception&) {
          partition = -1;
        }
        if (app_ == nullptr) break;  // the app is unknown: already reported
        const ScenarioSupport& support = *app_->scenario;
        const int32_t partitions = topic == support.input_topic    ? s_.cluster().input_partitions()
                                   : topic == support.output_topic ? s_.cluster().output_partitions()
                                                                   : 0;
        if (partitions == 0 || partition < 0 || partition >= partitions) {
          fail(path, "leader_of is \"" + tp + "\"; expected \"" + support.input_topic + "/P\" or \"" +
                         support.output_topic + "/P\" with P below the topic's partition count");
        }
        break;
      }
      case ms::BrokerTarget::kGroupCoordinator:
        break;
      case ms::BrokerTarget::kTransactionCoordinatorOfWorker:
        range(path, "transaction_coordinator_of_worker", b.transaction_coordinator_of_worker(), 0,
              max_workers() - 1);
        break;
      case ms::BrokerTarget::WHICH_NOT_SET:
        fail(path,
             "no broker given; expected one of broker, leader_of, group_coordinator, "
             "transaction_coordinator_of_worker");
        break;
    }
  }

  void faults() {
    if (s_.fault_size() > 0 && s_.has_swarm()) {
      fail({{"swarm"}}, "a scenario has timed `fault`s or a `swarm` profile, not both");
    }
    const int workers = max_workers();
    for (int i = 0; i < s_.fault_size(); ++i) {
      const ms::Fault& f = s_.fault(i);
      const Path path{{"fault", i}};
      const std::string name = "fault " + std::to_string(i + 1);
      range(Path{{"fault", i}, {"at_ms"}}, name + " at_ms", f.at_ms(), 0, s_.phases().chaos_ms() - 1);
      range(Path{{"fault", i}, {"duration_ms"}}, name + " duration_ms", f.duration_ms(), 1, 3'600'000);
      if (f.trigger() != ms::AT_TIME) {
        range(Path{{"fault", i}, {"trigger_worker"}}, name + " trigger_worker", f.trigger_worker(), 0,
              workers - 1);
      }
      const auto worker = [&](const char* field, int32_t w) {
        range(Path{{"fault", i}, {field}}, name + " worker", w, 0, workers - 1);
      };
      switch (f.kind_case()) {
        case ms::Fault::kCrashWorker:
          worker("crash_worker", f.crash_worker().worker());
          break;
        case ms::Fault::kStopWorker:
          worker("stop_worker", f.stop_worker().worker());
          break;
        case ms::Fault::kPauseWorker:
          worker("pause_worker", f.pause_worker().worker());
          break;
        case ms::Fault::kAddWorker:
          break;
        case ms::Fault::kCrashBroker:
          broker_target(Path{{"fault", i}, {"crash_broker"}}, f.crash_broker());
          break;
        case ms::Fault::kIsolateBroker:
          broker_target(Path{{"fault", i}, {"isolate_broker"}}, f.isolate_broker().broker());
          break;
        case ms::Fault::kPartitionWorker:
        case ms::Fault::kClogWorker: {
          const bool cut = f.kind_case() == ms::Fault::kPartitionWorker;
          const ms::LinkFault& l = cut ? f.partition_worker() : f.clog_worker();
          const char* field = cut ? "partition_worker" : "clog_worker";
          worker(field, l.worker());
          for (int32_t b : l.brokers())
            range(Path{{"fault", i}, {field}}, name + " broker", b, 1, s_.cluster().brokers());
          if (l.group_coordinator() && l.except_group_coordinator()) {
            fail(Path{{"fault", i}, {field}},
                 name + ": group_coordinator and except_group_coordinator contradict each other");
          }
          break;
        }
        case ms::Fault::KIND_NOT_SET:
          fail(path, name +
                         " has no kind; expected one of crash_worker, stop_worker, pause_worker, add_worker, "
                         "crash_broker, isolate_broker, partition_worker, clog_worker");
          break;
      }
    }
  }

  void swarm() {
    if (!s_.has_swarm()) return;
    const ms::Swarm& sw = s_.swarm();
    range({{"swarm"}, {"max_faults"}}, "swarm.max_faults", sw.max_faults(), 0, 64);
    range({{"swarm"}, {"min_duration_ms"}}, "swarm.min_duration_ms", sw.min_duration_ms(), 1,
          s_.phases().chaos_ms());
    range({{"swarm"}, {"max_duration_ms"}}, "swarm.max_duration_ms", sw.max_duration_ms(),
          sw.min_duration_ms(), 3'600'000);
    for (int i = 0; i < sw.weight_size(); ++i) {
      range({{"swarm"}, {"weight", i}}, "swarm weight", sw.weight(i).weight(), 0, 1000);
    }
  }

  void invariants() {
    for (int i = 0; i < s_.check_size(); ++i) {
      if (s_.check(i) == ms::INVARIANT_UNSPECIFIED) fail({{"check", i}}, "check: expected an invariant name");
    }
    for (int i = 0; i < s_.expect_violation_size(); ++i) {
      if (s_.expect_violation(i) == ms::INVARIANT_UNSPECIFIED) {
        fail({{"expect_violation", i}}, "expect_violation: expected an invariant name");
      }
    }
  }

  const ms::Scenario& s_;
  const Locator& at_;
  const std::vector<AppDefinition>& apps_;
  const AppDefinition* app_ = nullptr;  // the scenario's app, once app() found it
  std::string problem_;
};

}  // namespace

Result<const AppDefinition*> find_scenario_app(const std::vector<AppDefinition>& apps,
                                               const std::string& name) {
  std::string known;
  for (const AppDefinition& app : apps) {
    if (app.name == name) {
      if (app.scenario && app.scenario->record) return &app;
      return invalid("app '" + name +
                     "' cannot be simulated: its AppDefinition has no scenario support (set "
                     "AppDefinition::scenario: the workload's input and output topics, its record generator "
                     "and the app's model; runtime/app/scenario_support.h)");
    }
    if (app.scenario && app.scenario->record) known += (known.empty() ? "" : ", ") + app.name;
  }
  return invalid("app.name is '" + name + "', which this binary does not have; apps it can simulate: " +
                 (known.empty() ? std::string("none") : known) + " (the `apps` command lists every app)");
}

Result<Scenario> parse_scenario(std::string_view text, const std::string& origin,
                                const std::vector<AppDefinition>& apps) {
  Scenario scenario;
  pb::TextFormat::Parser parser;
  FirstError errors;
  pb::TextFormat::ParseInfoTree tree;
  parser.RecordErrorsTo(&errors);
  parser.WriteLocationsTo(&tree);
  if (!parser.ParseFromString(std::string(text), &scenario)) {
    return invalid(origin + ":" + errors.error() +
                   " (a scenario file is textproto of mephisto.scenario.Scenario, models/scenario.proto)");
  }
  apply_defaults(scenario, origin);
  const Locator locator(origin, &tree);
  if (Status valid = Validator(scenario, locator, apps).run(); !valid.ok()) return valid.error();
  return scenario;
}

Result<Scenario> load_scenario_file(const std::string& path, const std::vector<AppDefinition>& apps) {
  std::ifstream in(path);
  if (!in)
    return invalid(path + ": cannot read the scenario file (does it exist? scenarios/ has the shipped ones)");
  std::ostringstream text;
  text << in.rdbuf();
  return parse_scenario(text.str(), path, apps);
}

std::vector<std::pair<std::string, std::string>> recorded_scenario_settings(const Scenario& scenario) {
  // The simulator's timeouts first, then the scenario's own settings (which may override them), sorted: the
  // order settings apply in must not depend on the map's iteration order.
  std::vector<std::pair<std::string, std::string>> out = {
      {"broker_session_timeout_ms", "10000"},
      {"broker_heartbeat_interval_ms", "1000"},
      {"broker_commit_interval_ms", "1000"},
      {"broker_max_poll_interval_ms", "30000"},
      {"topic_partitions", std::to_string(scenario.cluster().input_partitions())},
      {"topic_replication_factor", std::to_string(scenario.cluster().replication_factor())},
      {"stop_timeout_ms", "15000"},
      {"rebalance_drain_timeout_ms", "2000"},
  };
  const std::map<std::string, std::string> sorted(scenario.app().settings().begin(),
                                                  scenario.app().settings().end());
  out.insert(out.end(), sorted.begin(), sorted.end());
  return out;
}

SimKafkaConfig scenario_cluster(const Scenario& s) {
  SimKafkaConfig config;
  config.brokers = s.cluster().brokers();
  config.default_replication_factor = static_cast<int16_t>(s.cluster().replication_factor());
  config.min_insync_replicas = static_cast<int16_t>(s.cluster().min_insync_replicas());
  config.unclean_leader_election = s.cluster().unclean_leader_election();
  config.replica_lag_time_max_ms = s.cluster().replica_lag_time_max_ms();
  config.latency_min_ms = s.cluster().latency_min_ms();
  config.latency_max_ms = s.cluster().latency_max_ms();
  return config;
}

AppSettings scenario_settings(const Scenario& scenario, const AppSettings& base) {
  AppSettings s = base;
  for (const auto& [name, value] : recorded_scenario_settings(scenario)) (void)set_setting(s, name, value);
  return s;
}

std::string scenario_to_text(const Scenario& scenario) {
  std::string out;
  pb::TextFormat::Printer printer;
  printer.SetUseShortRepeatedPrimitives(true);
  (void)printer.PrintToString(scenario, &out);
  return out;
}

}  // namespace mephisto::sim::scenario
