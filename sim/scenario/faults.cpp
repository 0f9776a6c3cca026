#include "sim/scenario/faults.h"

#include <fmt/format.h>

#include <algorithm>

#include "runtime/seam/random.h"
#include "sim/cluster/cluster.h"
#include "sim/scenario/runner.h"

namespace mephisto::sim::scenario {
namespace {

namespace ms = mephisto::scenario;

std::string broker_text(const ms::BrokerTarget& b) {
  switch (b.which_case()) {
    case ms::BrokerTarget::kBroker:
      return "b" + std::to_string(b.broker());
    case ms::BrokerTarget::kLeaderOf:
      return "leader of " + b.leader_of();
    case ms::BrokerTarget::kGroupCoordinator:
      return "group coordinator";
    case ms::BrokerTarget::kTransactionCoordinatorOfWorker:
      return "txn coordinator of w" + std::to_string(b.transaction_coordinator_of_worker());
    case ms::BrokerTarget::WHICH_NOT_SET:
      break;
  }
  return "?";
}

std::string link_text(const ms::LinkFault& l) {
  std::string out = "w" + std::to_string(l.worker()) + ", ";
  if (l.brokers_size() == 0 && !l.group_coordinator()) {
    return out + (l.except_group_coordinator() ? "all brokers but the group coordinator" : "all brokers");
  }
  std::string sep;
  for (int32_t b : l.brokers()) {
    out += sep + "b" + std::to_string(b);
    sep = "+";
  }
  if (l.group_coordinator()) out += sep + "group coordinator";
  if (l.except_group_coordinator()) out += " except the group coordinator";
  return out;
}

const char* trigger_text(ms::Trigger trigger) {
  switch (trigger) {
    case ms::ON_TXN_COMMIT:
      return "txn-commit";
    case ms::ON_ASSIGNED:
      return "assigned";
    case ms::ON_OFFSET_COMMIT:
      return "offset-commit";
    default:
      return "time";
  }
}

// One fault of kind `kind` drawn for the swarm profile.
ms::Fault draw_fault(const Scenario& s, const ScenarioSupport& app, ms::FaultKind kind, Random& rng) {
  const ms::Swarm& sw = s.swarm();
  const int64_t at_ms = rng.between(0, std::max<int64_t>(0, s.phases().chaos_ms() - 1000));
  const int64_t duration_ms = rng.between(sw.min_duration_ms(), sw.max_duration_ms());
  const auto target = static_cast<int32_t>(rng.below(1 << 16));
  const auto broker_mask = static_cast<int32_t>(rng.below(1 << 9));
  return make_fault(s, app, kind, at_ms, duration_ms, target, broker_mask);
}

}  // namespace

Fault make_fault(const Scenario& s, const ScenarioSupport& app, ms::FaultKind kind, int64_t at_ms,
                 int64_t duration_ms, int32_t target, int32_t broker_mask) {
  ms::Fault f;
  f.set_at_ms(std::clamp<int64_t>(at_ms, 0, s.phases().chaos_ms() - 1));
  f.set_duration_ms(std::max<int64_t>(1, duration_ms));
  target = std::max(0, target);
  const int32_t worker = target % s.app().workers();
  const int32_t broker = 1 + target % s.cluster().brokers();
  // Links: the brokers in the mask, or (mask 0) the group's coordinator.
  const auto links = [&](ms::LinkFault* l) {
    l->set_worker(worker);
    for (int32_t b = 1; b <= s.cluster().brokers(); ++b) {
      if ((broker_mask & (1 << (b - 1))) != 0) l->add_brokers(b);
    }
    if (l->brokers_size() == 0) l->set_group_coordinator(true);
  };
  switch (kind) {
    case ms::CRASH_WORKER:
    case ms::CRASH_WORKER_WIPE:
      f.mutable_crash_worker()->set_worker(worker);
      f.mutable_crash_worker()->set_wipe_disk(kind == ms::CRASH_WORKER_WIPE);
      break;
    case ms::STOP_WORKER:
      f.mutable_stop_worker()->set_worker(worker);
      break;
    case ms::PAUSE_WORKER:
      f.mutable_pause_worker()->set_worker(worker);
      break;
    case ms::ADD_WORKER:
      f.mutable_add_worker()->set_leave((target & 1) != 0);
      break;
    case ms::CRASH_BROKER:
      f.mutable_crash_broker()->set_broker(broker);
      break;
    case ms::ISOLATE_BROKER:
      f.mutable_isolate_broker()->mutable_broker()->set_broker(broker);
      f.mutable_isolate_broker()->set_brokers_only((broker_mask & 1) != 0);
      break;
    case ms::PARTITION_WORKER:
      links(f.mutable_partition_worker());
      break;
    case ms::CLOG_WORKER:
      links(f.mutable_clog_worker());
      break;
    case ms::CRASH_COORDINATOR:
      if ((target & 1) == 0) {
        f.mutable_crash_broker()->set_group_coordinator(true);
      } else {
        f.mutable_crash_broker()->set_transaction_coordinator_of_worker(worker);
      }
      break;
    case ms::CRASH_LEADER: {
      const bool input = (broker_mask & 1) == 0;
      const int32_t partitions = input ? s.cluster().input_partitions() : s.cluster().output_partitions();
      f.mutable_crash_broker()->set_leader_of(
          fmt::format("{}/{}", input ? app.input_topic : app.output_topic, target % partitions));
      break;
    }
    default:
      f.mutable_crash_worker()->set_worker(worker);
      break;
  }
  return f;
}

std::vector<Fault> fault_plan(const Scenario& s, const ScenarioSupport& app, uint64_t seed) {
  std::vector<Fault> plan(s.fault().begin(), s.fault().end());
  if (s.has_swarm()) {
    // Its own stream, so the plan is a function of the seed alone (not of anything the run does).
    Random rng(splitmix64(seed ^ 0x5377'6172'6d21ULL));
    std::map<int, int32_t> weights;  // kind -> weight; ordered for determinism
    for (int k = ms::FaultKind_MIN; k <= ms::FaultKind_MAX; ++k) weights[k] = 1;
    if (s.swarm().weight_size() > 0) {
      for (auto& [kind, weight] : weights) weight = 0;
      for (const ms::SwarmWeight& w : s.swarm().weight()) weights[w.kind()] = w.weight();
    }
    if (s.swarm().swarm_kinds()) {
      std::map<int, int32_t> enabled;
      for (const auto& [kind, weight] : weights) {
        if (weight > 0 && rng.chance(0.5)) enabled[kind] = weight;
      }
      if (enabled.empty()) {
        for (const auto& [kind, weight] : weights) {
          if (weight > 0) {
            enabled[kind] = weight;
            break;
          }
        }
      }
      weights = enabled;
    }
    int64_t total = 0;
    for (const auto& [kind, weight] : weights) total += weight;
    const int64_t count = total == 0 ? 0 : rng.between(0, s.swarm().max_faults());
    for (int64_t i = 0; i < count; ++i) {
      int64_t pick = static_cast<int64_t>(rng.below(static_cast<uint64_t>(total)));
      int kind = weights.begin()->first;
      for (const auto& [k, weight] : weights) {
        if (pick < weight) {
          kind = k;
          break;
        }
        pick -= weight;
      }
      plan.push_back(draw_fault(s, app, static_cast<ms::FaultKind>(kind), rng));
    }
  }
  std::stable_sort(plan.begin(), plan.end(),
                   [](const Fault& a, const Fault& b) { return a.at_ms() < b.at_ms(); });
  return plan;
}

std::string fault_text(const Fault& f) {
  std::string what;
  switch (f.kind_case()) {
    case Fault::kCrashWorker:
      what = fmt::format("crash-worker(w{}{})", f.crash_worker().worker(),
                         f.crash_worker().wipe_disk() ? ", wipe" : "");
      break;
    case Fault::kStopWorker:
      what = fmt::format("stop-worker(w{})", f.stop_worker().worker());
      break;
    case Fault::kPauseWorker:
      what = fmt::format("pause-worker(w{})", f.pause_worker().worker());
      break;
    case Fault::kAddWorker:
      what = f.add_worker().leave() ? "add-worker(leaves)" : "add-worker";
      break;
    case Fault::kCrashBroker:
      what = "crash-broker(" + broker_text(f.crash_broker()) + ")";
      break;
    case Fault::kIsolateBroker:
      what = "isolate-broker(" + broker_text(f.isolate_broker().broker()) +
             (f.isolate_broker().brokers_only() ? ", from brokers only" : "") + ")";
      break;
    case Fault::kPartitionWorker:
      what = "partition-worker(" + link_text(f.partition_worker()) + ")";
      break;
    case Fault::kClogWorker:
      what = "clog-worker(" + link_text(f.clog_worker()) + ")";
      break;
    case Fault::KIND_NOT_SET:
      what = "none";
      break;
  }
  std::string when = "@" + std::to_string(f.at_ms());
  if (f.trigger() != ms::AT_TIME)
    when += fmt::format("(on {} of w{})", trigger_text(f.trigger()), f.trigger_worker());
  return what + when + "+" + std::to_string(f.duration_ms());
}

// ---- the driver

FaultDriver::FaultDriver(AppHarness& harness, const Scenario& scenario, std::string group, int64_t t0,
                         std::function<int()> add_worker)
    : h_(harness),
      scenario_(scenario),
      group_(std::move(group)),
      t0_(t0),
      chaos_end_(t0 + scenario.phases().chaos_ms()),
      add_worker_(std::move(add_worker)) {}

void FaultDriver::schedule(const Fault& fault) {
  auto active = std::make_unique<Active>();
  active->fault = fault;
  active->text = fault_text(fault);
  Active* a = active.get();
  active_.push_back(std::move(active));
  if (fault.trigger() == ms::AT_TIME) fire_at(*a, t0_ + fault.at_ms());
}

void FaultDriver::fire_at(Active& a, int64_t time_ms) {
  a.armed = false;
  Executor& ex = h_.executor();
  Active* p = &a;
  ex.at(time_ms, kWorld, [this, p] { start(*p); });
  // Undone after its duration, and always before the chaos phase ends (the heal then finds nothing of it).
  const int64_t end = std::min(time_ms + a.fault.duration_ms(), chaos_end_ - 1);
  ex.at(std::max(end, time_ms), kWorld, [this, p] { undo(*p); });
}

void FaultDriver::observe(const HistoryEvent& e) {
  if (h_.now_ms() < t0_ || h_.now_ms() >= chaos_end_ - 1) return;
  for (auto& active : active_) {
    Active& a = *active;
    if (!a.armed || h_.now_ms() < t0_ + a.fault.at_ms()) continue;
    const int w = a.fault.trigger_worker();
    if (w >= h_.worker_count() || e.process != h_.worker_process(w)) continue;
    bool hit = false;
    switch (a.fault.trigger()) {
      case ms::ON_TXN_COMMIT:
        hit = e.kind == HistoryKind::kTxnCommitStarted;
        break;
      case ms::ON_ASSIGNED:
        hit = e.kind == HistoryKind::kAssigned && e.group == group_;
        break;
      case ms::ON_OFFSET_COMMIT:
        hit = e.kind == HistoryKind::kTxnOffsetsSent || e.kind == HistoryKind::kOffsetsCommitted;
        break;
      default:
        break;
    }
    // A world event at the current time: the fault must not run inside the client's fiber that reported it.
    if (hit) fire_at(a, h_.now_ms());
  }
}

int32_t FaultDriver::resolve(const ms::BrokerTarget& target) const {
  const Cluster& cluster = h_.kafka().cluster();
  switch (target.which_case()) {
    case ms::BrokerTarget::kBroker:
      return target.broker();
    case ms::BrokerTarget::kLeaderOf: {
      const std::string& tp = target.leader_of();
      const auto slash = tp.rfind('/');
      const auto state = cluster.partition_state({tp.substr(0, slash), std::stoi(tp.substr(slash + 1))});
      return state ? state->leader : kNoBroker;
    }
    case ms::BrokerTarget::kGroupCoordinator:
      return cluster.coordinator(CoordinatorType::kGroup, group_);
    case ms::BrokerTarget::kTransactionCoordinatorOfWorker:
      return cluster.coordinator(
          CoordinatorType::kTransaction,
          group_ + "-worker-" + std::to_string(target.transaction_coordinator_of_worker()));
    case ms::BrokerTarget::WHICH_NOT_SET:
      break;
  }
  return kNoBroker;
}

std::vector<FaultDriver::Link> FaultDriver::worker_links(int worker, const ms::LinkFault& fault) const {
  std::set<int32_t> brokers(fault.brokers().begin(), fault.brokers().end());
  const int32_t coordinator = h_.kafka().cluster().coordinator(CoordinatorType::kGroup, group_);
  if (fault.group_coordinator()) {
    if (coordinator != kNoBroker) brokers.insert(coordinator);
  } else if (brokers.empty()) {
    for (int32_t b = 1; b <= scenario_.cluster().brokers(); ++b) brokers.insert(b);
  }
  if (fault.except_group_coordinator()) brokers.erase(coordinator);
  std::vector<Link> out;
  const NetNode node = process_node(h_.worker_process(worker));
  for (int32_t b : brokers) {
    out.emplace_back(node, broker_node(b));
    out.emplace_back(broker_node(b), node);
  }
  return out;
}

void FaultDriver::cut(const Link& l) {
  if (cuts_[l]++ == 0) h_.kafka().network().cut(l.first, l.second);
}
void FaultDriver::uncut(const Link& l) {
  if (--cuts_[l] == 0) h_.kafka().network().heal(l.first, l.second);
}
void FaultDriver::clog(const Link& l) {
  if (clogs_[l]++ == 0) h_.kafka().network().clog(l.first, l.second);
}
void FaultDriver::unclog(const Link& l) {
  if (--clogs_[l] == 0) h_.kafka().network().unclog(l.first, l.second);
}

void FaultDriver::mark(const std::string& lane, TimelineEvent::Kind kind, std::string text) {
  timeline_.push_back({h_.now_ms(), lane, kind, std::move(text)});
}

void FaultDriver::start(Active& a) {
  if (a.started || a.undone) return;
  const Fault& f = a.fault;
  const auto worker_up = [this](int w) { return w < h_.worker_count() && h_.worker_running(w); };
  switch (f.kind_case()) {
    case Fault::kCrashWorker:
    case Fault::kStopWorker:
    case Fault::kPauseWorker: {
      const int w = f.has_crash_worker()  ? f.crash_worker().worker()
                    : f.has_stop_worker() ? f.stop_worker().worker()
                                          : f.pause_worker().worker();
      if (!worker_up(w) || h_.executor().paused(h_.worker_process(w))) return;
      a.worker = w;
      if (f.has_crash_worker()) {
        h_.crash_worker(w, f.crash_worker().wipe_disk());
        crashes_[h_.worker_process(w)].push_back(h_.now_ms());
      } else if (f.has_stop_worker()) {
        h_.stop_worker(w);
      } else {
        h_.executor().pause(h_.worker_process(w));
      }
      a.lane = "worker-" + std::to_string(w);
      break;
    }
    case Fault::kAddWorker:
      a.worker = add_worker_();
      a.lane = "worker-" + std::to_string(a.worker);
      break;
    case Fault::kCrashBroker: {
      const int32_t b = resolve(f.crash_broker());
      if (b == kNoBroker || !h_.kafka().cluster().broker_alive(b)) return;
      a.broker = b;
      h_.kafka().crash_broker(b);
      a.lane = "broker-" + std::to_string(b);
      break;
    }
    case Fault::kIsolateBroker: {
      const int32_t b = resolve(f.isolate_broker().broker());
      if (b == kNoBroker) return;
      a.broker = b;
      for (int32_t other = 1; other <= scenario_.cluster().brokers(); ++other) {
        if (other == b) continue;
        a.links.emplace_back(broker_node(b), broker_node(other));
        a.links.emplace_back(broker_node(other), broker_node(b));
      }
      if (!f.isolate_broker().brokers_only()) {
        for (int w = 0; w < h_.worker_count(); ++w) {
          a.links.emplace_back(broker_node(b), process_node(h_.worker_process(w)));
          a.links.emplace_back(process_node(h_.worker_process(w)), broker_node(b));
        }
      }
      for (const Link& l : a.links) cut(l);
      a.lane = "broker-" + std::to_string(b);
      break;
    }
    case Fault::kPartitionWorker:
    case Fault::kClogWorker: {
      const bool is_cut = f.has_partition_worker();
      const ms::LinkFault& l = is_cut ? f.partition_worker() : f.clog_worker();
      if (l.worker() >= h_.worker_count()) return;
      a.worker = l.worker();
      a.links = worker_links(l.worker(), l);
      for (const Link& link : a.links) is_cut ? cut(link) : clog(link);
      a.lane = "worker-" + std::to_string(l.worker());
      break;
    }
    case Fault::KIND_NOT_SET:
      return;
  }
  a.started = true;
  mark(a.lane, TimelineEvent::kFault, a.text);
  if (on_started_) on_started_(a.text, a.worker);
}

void FaultDriver::undo(Active& a) {
  if (a.undone) return;
  a.undone = true;
  if (!a.started) return;
  const Fault& f = a.fault;
  switch (f.kind_case()) {
    case Fault::kCrashWorker:
    case Fault::kStopWorker:
      h_.restart_worker(a.worker);
      break;
    case Fault::kPauseWorker:
      h_.executor().resume(h_.worker_process(a.worker));
      break;
    case Fault::kAddWorker:
      if (!f.add_worker().leave()) return;  // it stays: nothing to undo, no mark
      left_.insert(a.worker);
      h_.stop_worker(a.worker);
      break;
    case Fault::kCrashBroker:
      h_.kafka().restart_broker(a.broker);
      break;
    case Fault::kIsolateBroker:
    case Fault::kPartitionWorker:
      for (const Link& l : a.links) uncut(l);
      break;
    case Fault::kClogWorker:
      for (const Link& l : a.links) unclog(l);
      break;
    case Fault::KIND_NOT_SET:
      break;
  }
  mark(a.lane, TimelineEvent::kFaultEnd, "end of " + a.text);
}

void FaultDriver::heal_all() {
  for (auto& a : active_) {
    a->armed = false;
    undo(*a);
  }
  cuts_.clear();
  clogs_.clear();
  h_.kafka().network().heal_all();
  for (int32_t b = 1; b <= scenario_.cluster().brokers(); ++b) {
    if (!h_.kafka().cluster().broker_alive(b)) h_.kafka().restart_broker(b);
  }
  for (int w = 0; w < h_.worker_count(); ++w) {
    if (h_.executor().paused(h_.worker_process(w))) h_.executor().resume(h_.worker_process(w));
    if (left_.count(w) != 0 || h_.worker_running(w)) continue;
    mark("worker-" + std::to_string(w), TimelineEvent::kNote, "restarted by the heal (it had stopped)");
    h_.restart_worker(w);
  }
}

}  // namespace mephisto::sim::scenario
