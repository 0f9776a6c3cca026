// The conformance suite's fixture: one parameterised GoogleTest suite, `Conformance`, instantiated once per binding
// (worlds.cpp). A case builds its own topics (unique names), adds client processes whose bodies run in fibers with
// their own Env, runs the world, and asserts what the clients observed. Cases use the seam only: never a binding's
// headers.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <string>

#include "tests/conformance/helpers.h"
#include "tests/conformance/world.h"

namespace mephisto::conformance {

// One binding's world factory and its name ("sim", "kafka"), the suite's parameter.
struct WorldParam {
  std::string name;
  WorldFactory make_world;
};

// gtest prints the parameter of a failed case with this (instead of its bytes).
void PrintTo(const WorldParam& param, std::ostream* out);

// Names the instantiated cases "<Case>/<binding>".
std::string world_param_name(const ::testing::TestParamInfo<WorldParam>& info);

// World-time bound of one run() phase: a case whose clients have not finished by then fails (no hanging).
inline constexpr int64_t kRunLimitMs = 10 * 60 * 1000;

class Conformance : public ::testing::TestWithParam<WorldParam> {
 protected:
  void SetUp() override;
  void TearDown() override;

  ConformanceWorld& world() { return *world_; }

  // A name unique to this case (topics, groups, transactional ids).
  std::string unique(const std::string& base) { return world_->unique_name(base); }

  // Adds a client process; its body starts at the next run().
  ClientId client(const std::string& name, std::function<void(Env&)> body) {
    return world_->add_client(name, std::move(body));
  }

  // Runs the world until every client finished. Use as ASSERT_TRUE(run_clients()).
  ::testing::AssertionResult run_clients(int64_t limit_ms = kRunLimitMs);

  // Creates topics in a setup client and runs it. Use as ASSERT_TRUE(create_topics({...})).
  struct NewTopic {
    NewTopic(std::string name_, int32_t partitions_ = 1, std::map<std::string, std::string> configs_ = {},
             int16_t replication_factor_ = 1)
        : name(std::move(name_)),
          partitions(partitions_),
          configs(std::move(configs_)),
          replication_factor(replication_factor_) {}
    std::string name;
    int32_t partitions;
    std::map<std::string, std::string> configs;
    int16_t replication_factor;
  };
  ::testing::AssertionResult create_topics(const std::vector<NewTopic>& topics);

  // One member owns every partition of a new topic, then a second member joins the group; records both members'
  // assignments and callbacks (group_cases.cpp). Failures inside are reported as test failures; the result is
  // only meaningful if the run finished (checked inside with ASSERT, so callers stop on HasFatalFailure()).
  struct JoinObservation;
  JoinObservation observe_second_member_joining(AssignmentStrategy strategy, int32_t partitions);

 private:
  std::unique_ptr<ConformanceWorld> world_;
};

}  // namespace mephisto::conformance

// Skips a case that needs a simulator-only fault when the world has none (real Kafka). Every use must be listed in
// tests/conformance/README.md with its reason.
#define CONFORMANCE_REQUIRE_SIM_FAULTS(reason)                            \
  do {                                                                    \
    if (world().faults() == nullptr) {                                    \
      GTEST_SKIP() << "simulator-only: " << (reason);                     \
    }                                                                     \
  } while (false)
