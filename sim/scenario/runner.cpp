#include "sim/scenario/runner.h"

#include <fmt/format.h>

#include <algorithm>
#include <cassert>
#include <cmath>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <utility>

#include "runtime/app/settings.h"
#include "runtime/seam/random.h"
#include "runtime/trace/trace_writer.h"
#include "sim/app/app_harness.h"
#include "sim/client/sim_broker_client.h"
#include "sim/cluster/cluster.h"
#include "sim/history.h"
#include "sim/network.h"
#include "sim/scenario/checkers.h"
#include "sim/scenario/differential.h"
#include "sim/scenario/faults.h"
#include "sim/scenario/loader.h"
#include "sim/scenario/settle.h"

namespace mephisto::sim::scenario {
namespace {

namespace ms = mephisto::scenario;

// The workload's shape for the app's record generator.
WorkloadShape shape_of(const ms::Workload& w) {
  return {w.events(), w.keys(), w.key_distribution() == ms::HOT, w.skew()};
}

// The seed of the workload's index-th record: a function of the run's seed and the index alone.
uint64_t record_seed(uint64_t seed, int64_t index) {
  return splitmix64(seed ^ splitmix64(static_cast<uint64_t>(index)));
}

// Writes the trace of a run: the fault plan, the event log (as kept), the history and the workers' logs.
void write_trace(const std::string& path, const RunResult& result, AppHarness& h, const History& history) {
  std::ofstream out(path);
  if (!out) return;
  out << "# mephisto sim trace: scenario " << result.scenario << ", seed " << result.seed << ", run hash "
      << result.run_hash << "\n# reproduce: " << result.reproduce << "\n# fault plan:\n";
  for (const std::string& f : result.fault_plan) out << "#   " << f << "\n";
  out << "# verdicts:\n";
  for (const Verdict& v : result.verdicts) {
    out << "#   " << invariant_name(v.invariant) << ": " << verdict_status_name(v.status) << " (" << v.count
        << ")";
    if (!v.examples.empty()) out << " first: " << v.examples.front().text;
    out << "\n";
  }
  out << "\n## event log (" << h.event_log().count() << " events, " << h.event_log().dropped()
      << " not kept)\n";
  for (const Event& e : h.event_log().events()) {
    out << e.time_ms << " " << e.actor << " " << e.kind << " " << e.detail << "\n";
  }
  out << "\n## history (" << history.events().size() << " events"
      << (history.truncated() ? ", truncated" : "") << ")\n";
  for (const HistoryEvent& e : history.events()) {
    out << e.time_ms << " p" << e.process << "." << e.incarnation << " c" << e.client << " "
        << history_kind_name(e.kind);
    if (!e.tp.topic.empty()) out << " " << e.tp.topic << "/" << e.tp.partition;
    if (e.offset >= 0) out << "@" << e.offset;
    if (e.key) out << " key=" << *e.key;
    if (e.value) out << " value=" << *e.value;
    if (e.generation >= 0) out << " gen=" << e.generation;
    if (!e.transactional_id.empty()) out << " txn=" << e.transactional_id;
    if (!e.detail.empty()) out << " (" << e.detail << ")";
    out << "\n";
  }
  out << "\n## worker logs\n" << h.dump_logs(1'000'000);
}

bool no_open_transaction(AppHarness& h, const std::string& topic, int32_t partitions) {
  for (int32_t p = 0; p < partitions; ++p) {
    const auto state = h.kafka().cluster().partition_state({topic, p});
    if (!state || state->last_stable_offset != state->high_watermark) return false;
  }
  return true;
}

std::map<TopicPartition, int64_t> nonempty(const std::map<TopicPartition, int64_t>& ends) {
  std::map<TopicPartition, int64_t> out;
  for (const auto& [tp, end] : ends) {
    if (end > 0) out[tp] = end;
  }
  return out;
}

// The workload: a producer process writing the scenario's events at its rate, counting acks and failures.
struct Workload {
  ProcessId process = kWorld;
  int64_t acked = 0;
  int64_t failed = 0;
  bool done = false;  // every send has its delivery report
};

void start_workload(AppHarness& h, const Scenario& s, const ScenarioSupport& app, uint64_t seed, int64_t t0,
                    Workload& workload) {
  Executor& ex = h.executor();
  workload.process = ex.add_process("workload", [&h, &s, &app, seed, t0, &workload](ProcessContext& context) {
    auto broker = make_sim_broker_client(h.kafka(), context);
    ProducerConfig config;
    config.client_id = "workload";
    config.acks = -1;
    config.enable_idempotence = true;
    auto producer = broker->producer(config);
    if (!producer.ok()) {
      workload.done = true;
      return;
    }
    const ms::Workload& w = s.workload();
    const WorkloadShape shape = shape_of(w);
    const double interval_ms = 1000.0 / w.rate_per_s();
    for (int64_t i = 0; i < w.events(); ++i) {
      const int64_t due = t0 + w.start_ms() + static_cast<int64_t>(static_cast<double>(i) * interval_ms);
      if (due > context.clock().now_ms()) (void)context.scheduler().park_until(due);
      WorkloadRecord generated = app.record(i, shape, record_seed(seed, i));
      ProducerRecord record;
      record.topic = app.input_topic;
      record.key = std::move(generated.key);
      record.value = std::move(generated.value);
      Status sent =
          (*producer)->send(std::move(record), [&workload](const Result<RecordMetadata>& delivered) {
            ++(delivered.ok() ? workload.acked : workload.failed);
          });
      if (!sent.ok()) ++workload.failed;
    }
    (void)(*producer)->flush(300'000);
    workload.done = true;
  });
  ex.start(workload.process);
}

// The invariants a run checks: the scenario's `check` list, or, if it has none, every invariant but
// DIFFERENTIAL — which costs two reference runs per seed and joins only when the app has no model of its own
// to be held to (no input_of_result, no fold).
std::vector<Invariant> checks_of(const Scenario& s, const ScenarioSupport& support) {
  std::vector<Invariant> checks;
  for (int v : s.check()) checks.push_back(static_cast<Invariant>(v));
  for (int v : s.expect_violation()) checks.push_back(static_cast<Invariant>(v));
  if (!s.check().empty()) return checks;
  for (int v = ms::DUPLICATES; v <= ms::LIVENESS; ++v) checks.push_back(static_cast<Invariant>(v));
  if (!support.input_of_result && !support.fold) checks.push_back(ms::DIFFERENTIAL);
  return checks;
}

// The workload is the app's own (ScenarioSupport::record), so a record its worker cannot decode is a mistake
// in the app's scenario support, not a finding about faults: without this a run whose every input is skipped
// as undecodable would "pass" with nothing processed. The first such log line of any worker, or "".
std::string undecodable_input(const AppHarness& h) {
  for (int w = 0; w < h.worker_count(); ++w) {
    for (const std::string& line : h.worker_log(w)) {
      if (line.find("undecodable record") != std::string::npos) return line;
    }
  }
  return "";
}

}  // namespace

std::string reproduce_line(const std::string& program, const std::string& scenario_file, uint64_t seed,
                           PlantedBug planted) {
  std::string line =
      fmt::format("{} sim {} --seed {}", program, scenario_file.empty() ? "<scenario>" : scenario_file, seed);
  if (planted != PlantedBug::kNone) line += " --planted " + std::string(planted_bug_name(planted));
  return line;
}

RunResult run_scenario(const Scenario& s, const RunOptions& options) {
  assert(options.app != nullptr && options.app->scenario && options.app->name == s.app().name());
  const AppDefinition& app = *options.app;
  const ScenarioSupport& support = *app.scenario;
  const std::string& input_topic = support.input_topic;
  const std::string& output_topic = support.output_topic;
  RunResult result;
  result.scenario = s.name();
  result.seed = options.seed;
  result.planted = options.planted == PlantedBug::kNone ? "" : std::string(planted_bug_name(options.planted));
  result.reproduce = reproduce_line(options.program, options.scenario_file, options.seed, options.planted);
  const std::vector<Fault> plan = fault_plan(s, support, options.seed);
  for (const Fault& f : plan) result.fault_plan.push_back(fault_text(f));

  // Declared before the harness: world events the harness's executor still holds refer to them.
  History history;
  Workload workload;
  std::unique_ptr<FaultDriver> driver;

  AppHarnessOptions harness_options;
  harness_options.seed = options.seed;
  harness_options.kafka = scenario_cluster(s);
  harness_options.max_kept_events = options.trace_path.empty() ? 0 : 300'000;
  harness_options.planted = options.planted;
  // Recording (`mephisto sim --trace`): stamped on global virtual time; created before the harness, whose
  // workers hold pointers to them.
  struct GlobalClock final : Clock {
    const AppHarness* harness = nullptr;
    [[nodiscard]] int64_t now_ms() const override { return harness->now_ms(); }
  };
  GlobalClock record_clock;
  std::map<int, std::unique_ptr<trace::TraceWriter>> recorders;
  if (!options.record_dir.empty()) {
    harness_options.recorder = [&](int worker) -> Recorder* {
      auto& slot = recorders[worker];
      if (!slot) {
        trace::TraceWriterOptions record;
        record.dir = options.record_dir;
        record.writer_name = "sim-worker-" + std::to_string(worker);
        record.app_name = app.name;
        record.source = "sim";
        for (const auto& [name, value] : recorded_scenario_settings(s)) record.settings[name] = value;
        auto opened = trace::TraceWriter::open(std::move(record), &record_clock);
        if (!opened.ok()) return nullptr;  // the caller checked the directory; a worker runs without a trace
        slot = std::move(opened).value();
      }
      return slot.get();
    };
  }
  AppHarness h(harness_options);
  record_clock.harness = &h;
  h.kafka().set_history(&history);

  const int16_t rf = static_cast<int16_t>(s.cluster().replication_factor());
  const std::string group = app.default_settings().id;
  const std::string changelog = support.table.empty() ? "" : group + "-" + support.table + "-changelog";
  const AppSettings effective = scenario_settings(s, app.default_settings());
  const bool exactly_once = effective.processing_guarantee == ProcessingGuarantee::kExactlyOnce;
  const std::vector<Invariant> checks = checks_of(s, support);
  const bool differential = std::find(checks.begin(), checks.end(), ms::DIFFERENTIAL) != checks.end();
  // For the differential oracle the run settles only once every topic the group reads (repartition and
  // agent topics too) is consumed and no table's transaction is open: its outputs are then final.
  const std::vector<std::string> changelogs =
      differential ? changelog_topics(app, s) : std::vector<std::string>{};

  if (!h.create_topic({input_topic, s.cluster().input_partitions(), rf, {}}).ok() ||
      !h.create_topic({output_topic, s.cluster().output_partitions(), rf, {}}).ok()) {
    // Cannot happen with a valid scenario on a healthy fresh cluster; reported as a failed liveness verdict.
    result.verdicts.push_back({mephisto::scenario::LIVENESS,
                               VerdictStatus::kUndecided,
                               1,
                               {{0, "could not create the scenario's topics"}},
                               ""});
    return result;
  }
  const auto adjust = [&s](AppSettings& settings) { settings = scenario_settings(s, settings); };
  for (int w = 0; w < s.app().workers(); ++w) h.add_worker(app, adjust);
  const int64_t t0 = h.now_ms();
  result.workers.clear();

  driver = std::make_unique<FaultDriver>(h, s, group, t0,
                                         [&h, &app, adjust] { return h.add_worker(app, adjust); });
  history.set_observer([&driver](const HistoryEvent& e) { driver->observe(e); });
  driver->set_on_started([&recorders](const std::string& text, int worker) {
    for (auto& [index, writer] : recorders) {
      if (worker < 0 || worker == index) writer->on_fault(text);
    }
  });
  for (const Fault& f : plan) driver->schedule(f);
  start_workload(h, s, support, options.seed, t0, workload);

  const int64_t chaos_end = t0 + s.phases().chaos_ms();
  h.run_for(chaos_end - h.now_ms());

  // Healed: every fault undone, and every worker running (one that stopped on an error during the chaos is
  // started again, as its supervisor would).
  driver->heal_all();
  const int64_t healed_at = h.now_ms();
  const int64_t bound = s.phases().liveness_bound_ms();
  bool settled = false;
  std::string why;
  while (h.now_ms() - healed_at < bound) {
    const int64_t elapsed = h.now_ms() - healed_at;
    h.run_for(std::min<int64_t>(elapsed < 20'000 ? 1000 : 5000, bound - elapsed));
    if (!workload.done) {
      why = "the workload producer still has records without delivery reports";
      continue;
    }
    const auto committed = h.committed(group, input_topic);
    const auto ends = nonempty(h.end_offsets(input_topic));
    const bool open_output = !no_open_transaction(h, output_topic, s.cluster().output_partitions());
    const bool open_changelog =
        !changelog.empty() && !no_open_transaction(h, changelog, s.cluster().input_partitions());
    settled = committed == ends && !open_output && !open_changelog;
    if (!settled) {
      why = "group committed " + describe_offsets(committed) + ", input ends " + describe_offsets(ends) +
            (open_output ? ", a transaction open on " + output_topic : "") +
            (open_changelog ? ", a transaction open on " + changelog : "");
      continue;
    }
    if (differential) {
      std::set<std::string> others = consumed_topics(h);
      others.erase(input_topic);
      why = unsettled(h, group, others, changelogs);
      settled = why.empty();
    }
    if (settled) break;
  }
  const int64_t settled_at = settled ? h.now_ms() : -1;

  CheckInput input;
  input.history = &history;
  input.input_topic = input_topic;
  input.output_topic = output_topic;
  input.app = &support;
  input.changelog_topic = changelog;
  input.group = group;
  input.exactly_once = exactly_once;
  input.input_log = read_final_log(h.kafka().cluster(), input_topic);
  input.output_log = read_final_log(h.kafka().cluster(), output_topic);
  if (!changelog.empty()) input.changelog_log = read_final_log(h.kafka().cluster(), changelog);
  for (int w = 0; w < h.worker_count(); ++w) input.worker_processes.insert(h.worker_process(w));
  input.workload_process = workload.process;
  input.committed = h.committed(group, input_topic);
  input.healed = true;
  input.settled = settled;
  input.settled_after_ms = settled ? settled_at - healed_at : -1;
  input.liveness_bound_ms = bound;
  input.not_settled_why = why;
  if (differential) {
    const Observed faulty = observe_run(h.kafka().cluster(), output_topic, changelogs);
    input.differential =
        differential_check(s, app, changelogs, input.input_log, faulty, exactly_once, options.seed);
    result.app_error = input.differential->nondeterministic ? input.differential->undecided : "";
  }
  if (const std::string line = undecodable_input(h); !line.empty()) {
    result.app_error = fmt::format(
        "app '{}' could not decode its own workload: {}. ScenarioSupport::record must return bytes the input "
        "topic's codecs decode (a protobuf value's default codec is JSON: encode with "
        "mephisto::ProtobufJsonCodec<M>, or declare the topic with value_codec = CodecKind::kProtobuf)",
        app.name, line);
  }
  std::vector<Invariant> expected;
  for (int v : s.expect_violation()) expected.push_back(static_cast<Invariant>(v));
  result.verdicts = run_checkers(input, checks, expected);
  result.passed = std::none_of(result.verdicts.begin(), result.verdicts.end(),
                               [](const Verdict& v) { return verdict_fails(v.status); });

  result.run_hash = h.run_hash();
  result.chaos_end_ms = chaos_end - t0;
  result.healed_at_ms = healed_at - t0;
  result.settled_at_ms = settled ? settled_at - t0 : -1;
  result.end_ms = h.now_ms() - t0;
  result.events_acked = workload.acked;
  result.events_failed = workload.failed;
  for (int w = 0; w < h.worker_count(); ++w) result.workers.push_back("worker-" + std::to_string(w));

  if (options.timeline) {
    std::map<ProcessId, std::string> lanes;
    for (int w = 0; w < h.worker_count(); ++w) lanes[h.worker_process(w)] = "worker-" + std::to_string(w);
    HistoryTimeline timeline =
        timeline_from_history(history, group, input_topic, lanes, h.now_ms(), 200, driver->crashes());
    for (OwnershipSpan& span : timeline.ownership) {
      span.from_ms -= t0;
      span.to_ms -= t0;
    }
    result.ownership = std::move(timeline.ownership);
    for (TimelineEvent& e : timeline.events) e.time_ms -= t0;
    result.timeline = std::move(timeline.events);
    for (TimelineEvent e : driver->timeline()) {
      e.time_ms -= t0;
      result.timeline.push_back(std::move(e));
    }
    result.timeline.push_back(
        {result.healed_at_ms, "cluster", TimelineEvent::kHeal, "healed: every fault undone"});
    if (settled) {
      result.timeline.push_back({result.settled_at_ms, "cluster", TimelineEvent::kSettled,
                                 fmt::format("settled {} ms after the heal", settled_at - healed_at)});
    }
    for (const Verdict& v : result.verdicts) {
      if (v.status != VerdictStatus::kViolated && v.status != VerdictStatus::kExpectedSeen) continue;
      for (const Violation& example : v.examples) {
        if (example.time_ms < 0) continue;
        result.timeline.push_back({example.time_ms - t0, "cluster", TimelineEvent::kViolation,
                                   invariant_name(v.invariant) + ": " + example.text});
      }
    }
    std::stable_sort(result.timeline.begin(), result.timeline.end(),
                     [](const TimelineEvent& a, const TimelineEvent& b) { return a.time_ms < b.time_ms; });
  }
  if (!options.trace_path.empty() && (options.trace_always || !result.passed)) {
    write_trace(options.trace_path, result, h, history);
  }
  history.set_observer({});
  return result;
}

}  // namespace mephisto::sim::scenario
