#include "tests/conformance/conformance.h"

namespace mephisto::conformance {

void PrintTo(const WorldParam& param, std::ostream* out) { *out << param.name; }

std::string world_param_name(const ::testing::TestParamInfo<WorldParam>& info) { return info.param.name; }

void Conformance::SetUp() {
  world_ = GetParam().make_world();
  ASSERT_NE(world_, nullptr) << "the " << GetParam().name << " world factory returned no world";
  ASSERT_EQ(world_->binding(), GetParam().name);
}

void Conformance::TearDown() { world_.reset(); }

::testing::AssertionResult Conformance::run_clients(int64_t limit_ms) {
  const int64_t started = world_->now_ms();
  if (world_->run(limit_ms)) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "some client had not finished after " << (world_->now_ms() - started)
                                       << " ms of world time (limit " << limit_ms << " ms)";
}

::testing::AssertionResult Conformance::create_topics(const std::vector<NewTopic>& topics) {
  std::vector<std::string> failures;
  client("setup", [&](Env& env) {
    for (const auto& topic : topics) {
      Status created = create_topic(env, topic.name, topic.partitions, topic.configs, topic.replication_factor);
      if (!created.ok()) failures.push_back(topic.name + ": " + describe(created.error()));
    }
  });
  auto ran = run_clients();
  if (!ran) return ran;
  if (failures.empty()) return ::testing::AssertionSuccess();
  auto failure = ::testing::AssertionFailure() << "create_topic failed:";
  for (const auto& line : failures) failure << "\n  " << line;
  return failure;
}

}  // namespace mephisto::conformance
