// Fault plans as generated, shrinkable values (rapidcheck, label property): the flagship scenario's setup
// with a generated seed and a generated timed plan of up to 8 faults of every kind.
//   - With no planted bug, every invariant holds.
//   - With a planted bug, rapidcheck finds a failing plan and shrinks it (fewer faults, earlier, shorter: the
//     fault's numbers shrink towards zero), and the shrunk plan still fails.
//
// Cases: kCases in the default build, fewer under AddressSanitizer; RC_PARAMS="max_success=N" overrides. A
// failure prints the case as a one-line plan plus `mephisto sim` reproduction data.
#include <gtest/gtest.h>
#include <rapidcheck.h>

#include <cstdlib>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "sim/scenario/loader.h"
#include "sim/scenario/runner.h"
#include "tests/support/example_apps.h"

namespace mephisto::sim::scenario {
namespace {

namespace ms = mephisto::scenario;

#if defined(__SANITIZE_ADDRESS__)
constexpr int kCases = 8;
#else
constexpr int kCases = 60;
#endif
// The planted-bug search: at most this many cases from this rapidcheck seed (it stops at the first failure).
constexpr int kPlantedCases = 60;
constexpr uint64_t kPlantedSeed = 1;

struct GenFault {
  int kind = 0;  // ms::FaultKind
  int64_t at_ms = 0;
  int64_t duration_ms = 0;
  int32_t target = 0;
  int32_t broker_mask = 0;
};

struct Case {
  uint64_t seed = 1;
  std::vector<GenFault> faults;
};

Scenario base_scenario() {
  Result<Scenario> s = load_scenario_file(std::string(MEPHISTO_SOURCE_DIR) + "/scenarios/flagship.textproto",
                                          test::example_apps());
  if (!s.ok()) {
    std::cerr << s.error().message << std::endl;
    std::abort();
  }
  Scenario out = *s;
  out.clear_swarm();
  return out;
}

Scenario with_case(const Scenario& base, const Case& c) {
  Scenario s = base;
  for (const GenFault& f : c.faults) {
    *s.add_fault() = make_fault(base, *test::scenario_app(base)->scenario, static_cast<ms::FaultKind>(f.kind),
                                f.at_ms, f.duration_ms, f.target, f.broker_mask);
  }
  return s;
}

void showValue(const Case& c, std::ostream& os) {
  os << "{seed=" << c.seed << " faults=[";
  const Scenario s = with_case(base_scenario(), c);
  for (int i = 0; i < s.fault_size(); ++i) os << (i ? "; " : "") << fault_text(s.fault(i));
  os << "]}";
}

rc::Gen<GenFault> gen_fault() {
  return rc::gen::build<GenFault>(
      rc::gen::set(&GenFault::kind, rc::gen::inRange<int>(ms::FaultKind_MIN, ms::FaultKind_MAX + 1)),
      rc::gen::set(&GenFault::at_ms, rc::gen::inRange<int64_t>(0, 50'000)),
      rc::gen::set(&GenFault::duration_ms, rc::gen::inRange<int64_t>(100, 15'000)),
      rc::gen::set(&GenFault::target, rc::gen::inRange<int32_t>(0, 64)),
      rc::gen::set(&GenFault::broker_mask, rc::gen::inRange<int32_t>(0, 8)));
}

rc::Gen<Case> gen_case() {
  return rc::gen::build<Case>(
      rc::gen::set(&Case::seed, rc::gen::resize(100, rc::gen::arbitrary<uint64_t>())),
      rc::gen::set(&Case::faults, rc::gen::resize(8, rc::gen::container<std::vector<GenFault>>(
                                                         rc::gen::resize(100, gen_fault())))));
}

std::string describe(const RunResult& r) {
  std::string out;
  for (const Verdict& v : r.verdicts) {
    if (!verdict_fails(v.status)) continue;
    out += invariant_name(v.invariant) + " " + verdict_status_name(v.status);
    if (!v.examples.empty()) out += ": " + v.examples.front().text;
    out += "\n";
  }
  return out;
}

rc::detail::TestParams params_with(int cases) {
  rc::detail::TestParams params = rc::detail::configuration().testParams;
  const char* env = std::getenv("RC_PARAMS");
  if (env == nullptr || std::string(env).find("max_success") == std::string::npos) params.maxSuccess = cases;
  return params;
}

// The planted-bug search is a claim about a number of cases, so it runs from a fixed rapidcheck seed (unless
// RC_PARAMS gives one): the same cases in every build and every run. Under ASan (a run is ~20x slower) it does not
// shrink: finding the bug is checked there, shrinking in the default build.
rc::detail::TestParams planted_params() {
  rc::detail::TestParams params = params_with(kPlantedCases);
  const char* env = std::getenv("RC_PARAMS");
  if (env == nullptr || std::string(env).find("seed") == std::string::npos) params.seed = kPlantedSeed;
#if defined(__SANITIZE_ADDRESS__)
  params.disableShrinking = true;
#endif
  return params;
}

rc::detail::TestResult check(const char* id, const rc::detail::TestParams& params, PlantedBug planted,
                             size_t* smallest_failing_plan) {
  const Scenario base = base_scenario();
  const auto property = [&base, planted, smallest_failing_plan] {
    const Case c = *gen_case();
    RunOptions options;
    options.app = test::scenario_app(base);
    options.seed = c.seed;
    options.planted = planted;
    options.timeline = false;
    const RunResult r = run_scenario(with_case(base, c), options);
    if (!r.passed && smallest_failing_plan != nullptr) {
      *smallest_failing_plan = std::min(*smallest_failing_plan, c.faults.size());
    }
    RC_CLASSIFY(c.faults.empty(), "no faults");
    if (!r.passed) RC_FAIL(describe(r));
  };
  rc::detail::TestMetadata metadata;
  metadata.id = id;
  metadata.description = id;
  return rc::detail::checkProperty(rc::detail::toProperty(property), metadata, params);
}

TEST(ScenarioProperty, EveryInvariantHoldsForGeneratedFaultPlans) {
  const rc::detail::TestResult result = check("ScenarioProperty/Holds", params_with(kCases), PlantedBug::kNone, nullptr);
  std::ostringstream message;
  rc::detail::printResultMessage(result, message);
  ASSERT_TRUE(result.template is<rc::detail::SuccessResult>()) << message.str();
  std::cout << message.str() << std::endl;
}

// table-write-not-rolled-back: an aborted transaction's table writes stay in the store. Rapidcheck must find
// a plan that exposes it within kCases cases and shrink it to a plan that still fails.
TEST(ScenarioProperty, FindsAndShrinksAPlantedBug) {
  size_t smallest = SIZE_MAX;
  const rc::detail::TestResult result =
      check("ScenarioProperty/Planted", planted_params(), PlantedBug::kTableWriteNotRolledBack, &smallest);
  std::ostringstream message;
  rc::detail::printResultMessage(result, message);
  rc::detail::FailureResult failure;
  ASSERT_TRUE(result.match(failure)) << "the planted bug was not found in " << kPlantedCases << " cases:\n"
                                     << message.str();
  std::cout << "found after " << failure.numSuccess << " passing case(s); shrunk counterexample:\n";
  for (const auto& [type, value] : failure.counterExample) std::cout << "  " << value << "\n";
  std::cout << "smallest failing plan seen: " << smallest << " fault(s)" << std::endl;
#if !defined(__SANITIZE_ADDRESS__)
  EXPECT_LE(smallest, 3u) << "shrinking left a large plan:\n" << message.str();
#endif
}

}  // namespace
}  // namespace mephisto::sim::scenario
