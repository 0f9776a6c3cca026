// The scenario loader (sim/scenario/loader.h): every shipped scenario loads; a bad file gets an error naming
// FILE:LINE:COLUMN and what was expected; defaults are filled; the text form round-trips.
#include "sim/scenario/loader.h"
#include "tests/support/example_apps.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>

namespace mephisto::sim::scenario {
namespace {

using ::testing::HasSubstr;

std::string error_of(const std::string& text) {
  Result<Scenario> parsed = parse_scenario(text, "bad.textproto", test::example_apps());
  return parsed.ok() ? "(parsed)" : parsed.error().message;
}

TEST(ScenarioLoader, EveryShippedScenarioLoads) {
  int loaded = 0;
  for (const auto& entry :
       std::filesystem::directory_iterator(std::string(MEPHISTO_SOURCE_DIR) + "/scenarios")) {
    if (entry.path().extension() != ".textproto") continue;
    Result<Scenario> s = load_scenario_file(entry.path().string(), test::example_apps());
    ASSERT_TRUE(s.ok()) << s.error().message;
    EXPECT_FALSE(s->description().empty()) << entry.path() << " has no description";
    ++loaded;
  }
  EXPECT_GE(loaded, 9);
}

TEST(ScenarioLoader, FillsDefaults) {
  Result<Scenario> s =
      parse_scenario("app { name: \"tablecount\" }", "dir/mine.textproto", test::example_apps());
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_EQ(s->name(), "mine");
  EXPECT_EQ(s->cluster().brokers(), 3);
  EXPECT_EQ(s->cluster().min_insync_replicas(), 2);
  EXPECT_EQ(s->app().workers(), 2);
  EXPECT_EQ(s->workload().events(), 500);
  EXPECT_EQ(s->phases().chaos_ms(), 60000);
}

TEST(ScenarioLoader, SyntaxErrorNamesLineAndColumn) {
  EXPECT_THAT(error_of("app { name: \"tablecount\" }\nworkload { events: }\n"),
              HasSubstr("bad.textproto:2:"));
  EXPECT_THAT(error_of("app { name: \"tablecount\" }\n\nworkload { eventz: 3 }\n"),
              HasSubstr("bad.textproto:3:18:"));
  EXPECT_THAT(error_of("app { name: \"tablecount\" }\n\nworkload { eventz: 3 }\n"), HasSubstr("eventz"));
}

TEST(ScenarioLoader, OutOfRangeValueNamesItsLineAndTheRange) {
  const std::string message =
      error_of("app { name: \"tablecount\" }\ncluster {\n  brokers: 3\n  replication_factor: 5\n}\n");
  EXPECT_THAT(message, HasSubstr("bad.textproto:4:3: cluster.replication_factor is 5; expected 1..3"));
}

TEST(ScenarioLoader, FaultProblemsNameTheFault) {
  EXPECT_THAT(error_of("app { name: \"tablecount\" }\nfault { at_ms: 100 }\n"),
              HasSubstr("bad.textproto:2:1: fault 1 has no kind"));
  EXPECT_THAT(
      error_of("app { name: \"tablecount\" workers: 2 }\nfault { at_ms: 100 crash_worker { worker: 5 } }\n"),
      HasSubstr("fault 1 worker is 5; expected 0..1"));
  EXPECT_THAT(error_of("app { name: \"tablecount\" }\nfault { at_ms: 70000 crash_worker { } }\n"),
              HasSubstr("bad.textproto:2:9: fault 1 at_ms is 70000; expected 0..59999"));
  EXPECT_THAT(error_of("app { name: \"tablecount\" }\nfault { crash_broker { leader_of: \"nope/0\" } }\n"),
              HasSubstr("expected \"count-events/P\""));
  EXPECT_THAT(error_of("app { name: \"tablecount\" }\nfault { crash_worker { } }\nswarm { }\n"),
              HasSubstr("bad.textproto:3:1: a scenario has timed `fault`s or a `swarm` profile, not both"));
}

TEST(ScenarioLoader, AnAppWithoutScenarioSupportIsRefusedWithWhatToAdd) {
  AppDefinition plain = examples::table_count_app();
  plain.name = "plain";
  plain.scenario.reset();
  const std::vector<AppDefinition> apps = {plain, examples::table_count_app()};
  Result<Scenario> parsed = parse_scenario("app { name: \"plain\" }", "mine.textproto", apps);
  ASSERT_FALSE(parsed.ok());
  EXPECT_THAT(
      parsed.error().message,
      HasSubstr("mine.textproto:1:7: app 'plain' cannot be simulated: its AppDefinition has no scenario "
                "support (set AppDefinition::scenario"));
  EXPECT_TRUE(parse_scenario("app { name: \"tablecount\" }", "mine.textproto", apps).ok());
}

TEST(ScenarioLoader, AppAndSettingsAreChecked) {
  EXPECT_THAT(
      error_of("app { name: \"fraudwatch\" }"),
      HasSubstr("bad.textproto:1:7: app.name is 'fraudwatch', which this binary does not have; apps it "
                "can simulate: wordcount, pageviews, orders, tablecount"));
  EXPECT_THAT(
      error_of("app { name: \"tablecount\" settings { key: \"processing_guarantee\" value: \"twice\" } }"),
      HasSubstr("app.settings: "));
  EXPECT_THAT(error_of("app { name: \"tablecount\" settings { key: \"no_such_setting\" value: \"1\" } }"),
              HasSubstr("no_such_setting"));
}

TEST(ScenarioLoader, MissingFileSaysSo) {
  Result<Scenario> s = load_scenario_file("/nonexistent/x.textproto", test::example_apps());
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.error().message, HasSubstr("/nonexistent/x.textproto: cannot read"));
}

TEST(ScenarioLoader, TextRoundTrips) {
  Result<Scenario> s = load_scenario_file(
      std::string(MEPHISTO_SOURCE_DIR) + "/scenarios/crash-during-commit.textproto", test::example_apps());
  ASSERT_TRUE(s.ok()) << s.error().message;
  Result<Scenario> again = parse_scenario(scenario_to_text(*s), "again.textproto", test::example_apps());
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_EQ(again->SerializeAsString(), s->SerializeAsString());
}

}  // namespace
}  // namespace mephisto::sim::scenario
