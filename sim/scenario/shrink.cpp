#include "sim/scenario/shrink.h"

#include <set>
#include <utility>

namespace mephisto::sim::scenario {
namespace {

std::set<int> failing_invariants(const RunResult& run) {
  std::set<int> out;
  for (const Verdict& v : run.verdicts) {
    if (verdict_fails(v.status)) out.insert(v.invariant);
  }
  return out;
}

Scenario with_plan(const Scenario& base, const std::vector<Fault>& plan) {
  Scenario s = base;
  s.clear_swarm();
  s.clear_fault();
  for (const Fault& f : plan) *s.add_fault() = f;
  return s;
}

class Shrinker {
 public:
  Shrinker(const Scenario& base, const RunOptions& options, int max_runs,
           const std::function<void(int)>& progress)
      : base_(base), options_(options), max_runs_(max_runs), progress_(progress) {
    options_.trace_path.clear();
    options_.timeline = false;
  }

  ShrinkResult run() {
    ShrinkResult result;
    std::vector<Fault> plan = fault_plan(base_, *options_.app->scenario, options_.seed);
    RunOptions first = options_;
    first.timeline = true;
    result.failing = run_scenario(with_plan(base_, plan), first);
    ++runs_;
    target_ = failing_invariants(result.failing);
    if (target_.empty()) {
      // The timed version of the plan does not fail (cannot happen for a timed scenario; a swarm's drawn plan
      // runs the same faults): nothing to shrink.
      result.minimal = with_plan(base_, plan);
      result.runs = runs_;
      result.steps.push_back("the plan as drawn does not fail: nothing to shrink");
      return result;
    }
    bool changed = true;
    while (changed && runs_ < max_runs_) {
      changed = false;
      // Fewer faults: halves first (cheap big steps), then one at a time.
      for (size_t chunk = plan.size() / 2; chunk >= 1 && runs_ < max_runs_; chunk /= 2) {
        for (size_t begin = 0; begin + chunk <= plan.size() && runs_ < max_runs_;) {
          std::vector<Fault> candidate = plan;
          candidate.erase(candidate.begin() + static_cast<long>(begin),
                          candidate.begin() + static_cast<long>(begin + chunk));
          if (fails(candidate, result)) {
            result.steps.push_back("removed " + std::to_string(chunk) + " fault(s) at position " +
                                   std::to_string(begin + 1));
            plan = std::move(candidate);
            changed = true;
          } else {
            begin += chunk;
          }
        }
        if (chunk == 1) break;
      }
      // Earlier and shorter.
      for (size_t i = 0; i < plan.size() && runs_ < max_runs_; ++i) {
        for (int64_t step = plan[i].at_ms() / 2; step >= 100 && runs_ < max_runs_; step /= 2) {
          std::vector<Fault> candidate = plan;
          candidate[i].set_at_ms(plan[i].at_ms() - step);
          if (fails(candidate, result)) {
            result.steps.push_back(fault_text(plan[i]) + " moved earlier by " + std::to_string(step) + " ms");
            plan = std::move(candidate);
            changed = true;
          }
        }
        for (int64_t step = plan[i].duration_ms() / 2; step >= 100 && runs_ < max_runs_; step /= 2) {
          std::vector<Fault> candidate = plan;
          candidate[i].set_duration_ms(plan[i].duration_ms() - step);
          if (fails(candidate, result)) {
            result.steps.push_back(fault_text(plan[i]) + " shortened by " + std::to_string(step) + " ms");
            plan = std::move(candidate);
            changed = true;
          }
        }
      }
    }
    result.minimal = with_plan(base_, plan);
    result.minimal.set_name(base_.name() + "-shrunk");
    result.minimal.set_description(
        "Shrunk from " + base_.name() + " (seed " + std::to_string(options_.seed) +
        ") by mephisto sim --shrink: the smallest fault plan found that still fails. " + base_.description());
    result.runs = runs_;
    return result;
  }

 private:
  bool fails(const std::vector<Fault>& plan, ShrinkResult& result) {
    RunOptions options = options_;
    options.timeline = true;
    RunResult run = run_scenario(with_plan(base_, plan), options);
    ++runs_;
    if (progress_) progress_(runs_);
    const std::set<int> failing = failing_invariants(run);
    for (int invariant : failing) {
      if (target_.count(invariant) != 0) {
        result.failing = std::move(run);
        return true;
      }
    }
    return false;
  }

  const Scenario& base_;
  RunOptions options_;
  int max_runs_;
  const std::function<void(int)>& progress_;
  std::set<int> target_;
  int runs_ = 0;
};

}  // namespace

ShrinkResult shrink_failure(const Scenario& scenario, const RunOptions& options, int max_runs,
                            const std::function<void(int)>& progress) {
  return Shrinker(scenario, options, max_runs, progress).run();
}

}  // namespace mephisto::sim::scenario
