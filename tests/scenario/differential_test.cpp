// The differential oracle's comparison (sim/scenario/differential.h): what counts as a difference under each
// guarantee, how a difference reads, and what the committed view of a log is. The oracle end to end
// (reference runs in the simulator) is exercised by the shipped example scenarios and tests/own_app.
#include "sim/scenario/differential.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace mephisto::sim::scenario {
namespace {

using ::testing::HasSubstr;

LogRecord record(int64_t offset, std::string key, std::optional<std::string> value,
                 LogRecord::Status status = LogRecord::kCommitted) {
  LogRecord r;
  r.offset = offset;
  r.key = std::move(key);
  r.value = std::move(value);
  r.status = status;
  return r;
}

Observed outputs(std::map<std::string, std::vector<std::string>> by_key) {
  Observed o;
  o.outputs["out"] = std::move(by_key);
  return o;
}

TEST(DifferentialObserve, KeepsCommittedAndPlainRecordsPerKeyInLogOrder) {
  TopicLog out;
  out[0] = {record(0, "a", "1"), record(1, "a", "x", LogRecord::kAborted),
            record(2, "b", "1", LogRecord::kPlain), record(3, "a", "2"),
            record(4, "a", "y", LogRecord::kOpen)};
  const Observed o = observe({{"out", out}}, {});
  EXPECT_EQ(o.outputs.at("out").at("a"), (std::vector<std::string>{"1", "2"}));
  EXPECT_EQ(o.outputs.at("out").at("b"), (std::vector<std::string>{"1"}));
}

TEST(DifferentialObserve, ATableIsEachKeysLastCommittedValueAndATombstoneDeletes) {
  TopicLog changelog;
  changelog[1] = {record(0, "k", "1"), record(1, "k", "2"), record(2, "gone", "1"),
                  record(3, "gone", std::nullopt), record(4, "k", "3", LogRecord::kAborted)};
  const Observed o = observe({}, {{"t-changelog", changelog}});
  const auto& table = o.tables.at("t-changelog");
  ASSERT_EQ(table.size(), 1U);
  EXPECT_EQ(table.at({1, "k"}), "2");
}

TEST(DifferentialInput, IsThePlainAndCommittedRecordsOfEachPartitionInOrder) {
  TopicLog in;
  in[0] = {record(0, "a", "v0", LogRecord::kPlain), record(1, "a", "v1", LogRecord::kAborted),
           record(2, "a", "v2", LogRecord::kPlain)};
  const InputRecords input = committed_input(in);
  ASSERT_EQ(input.at(0).size(), 2U);
  EXPECT_EQ(input.at(0)[1].value, "v2");
}

TEST(DifferentialCompare, EqualRunsHoldUnderEitherGuarantee) {
  const Observed a = outputs({{"k", {"1", "2"}}});
  EXPECT_EQ(compare_runs(a, a, true).differences, 0);
  EXPECT_EQ(compare_runs(a, a, false).differences, 0);
  EXPECT_EQ(compare_runs(a, a, false).allowed_duplicates, 0);
}

TEST(DifferentialCompare, ADifferentRecordNamesTheKeyThePositionAndBothValues) {
  const DifferentialOutcome d =
      compare_runs(outputs({{"apple", {"1", "3"}}}), outputs({{"apple", {"1", "2"}}}), true);
  EXPECT_EQ(d.differences, 1);
  ASSERT_EQ(d.examples.size(), 1U);
  EXPECT_EQ(d.examples[0], "out key \"apple\": record 2 of the key is \"3\", the reference's \"2\"");
}

TEST(DifferentialCompare, AMissingAndAnExtraRecordAreDifferences) {
  const DifferentialOutcome missing =
      compare_runs(outputs({{"k", {"1"}}}), outputs({{"k", {"1", "2"}}}), true);
  EXPECT_EQ(missing.differences, 1);
  EXPECT_THAT(missing.examples[0], HasSubstr("1 record(s), the reference 2; first missing: \"2\""));
  const DifferentialOutcome extra = compare_runs(outputs({{"k", {"1", "1"}}}), outputs({{"k", {"1"}}}), true);
  EXPECT_EQ(extra.differences, 1) << "exactly once allows no second copy";
  EXPECT_THAT(extra.examples[0], HasSubstr("first extra: \"1\""));
  const DifferentialOutcome absent = compare_runs(outputs({}), outputs({{"k", {"1"}}}), true);
  EXPECT_EQ(absent.differences, 1);
}

TEST(DifferentialCompare, AtLeastOnceAllowsAReplayedRecordButNotAChangedOne) {
  // A replay after a crash: records 2 and 3 came out again.
  const DifferentialOutcome replay = compare_runs(outputs({{"k", {"1", "2", "3", "2", "3", "4"}}}),
                                                  outputs({{"k", {"1", "2", "3", "4"}}}), false);
  EXPECT_EQ(replay.differences, 0);
  EXPECT_EQ(replay.allowed_duplicates, 2);
  // Counted twice: the count moved on (3 where the reference has 2); no replay explains it.
  const DifferentialOutcome twice =
      compare_runs(outputs({{"k", {"1", "3"}}}), outputs({{"k", {"1", "2"}}}), false);
  EXPECT_EQ(twice.differences, 1);
}

TEST(DifferentialCompare, TablesDifferByValueOrPresence) {
  Observed faulty;
  faulty.tables["t"][{0, "a"}] = "5";
  faulty.tables["t"][{0, "b"}] = "1";
  Observed reference;
  reference.tables["t"][{0, "a"}] = "4";
  reference.tables["t"][{1, "c"}] = "1";
  const DifferentialOutcome d = compare_runs(faulty, reference, true);
  EXPECT_EQ(d.differences, 3);
  EXPECT_THAT(d.examples, ::testing::Contains("table t partition 0 key \"a\": \"5\", the reference's \"4\""));
  EXPECT_THAT(d.examples,
              ::testing::Contains("table t partition 0 key \"b\": \"1\", absent in the reference"));
  EXPECT_THAT(d.examples,
              ::testing::Contains("table t partition 1 key \"c\": absent, the reference holds \"1\""));
}

TEST(DifferentialCompare, AtLeastOnceATableOffTheReferenceIsAllowedAndReported) {
  Observed faulty;
  faulty.tables["t"][{0, "a"}] = "4";
  Observed reference;
  reference.tables["t"][{0, "a"}] = "5";
  const DifferentialOutcome d = compare_runs(faulty, reference, false);
  EXPECT_EQ(d.differences, 0);
  EXPECT_EQ(d.allowed_table_differences, 1);
  EXPECT_EQ(d.allowed_table_example, "table t partition 0 key \"a\": \"4\", the reference's \"5\"");
}

TEST(DifferentialCompare, BinaryValuesAreShownEscapedAndLongOnesCutWithTheirLength) {
  const std::string binary("\x08\x01\x12", 3);
  const std::string long_value(400, 'x');
  const DifferentialOutcome d =
      compare_runs(outputs({{"k", {binary, long_value}}}), outputs({{"k", {binary, "y"}}}), true);
  ASSERT_EQ(d.examples.size(), 1U);
  EXPECT_THAT(d.examples[0], HasSubstr("(cut: 400 bytes)"));
  const DifferentialOutcome b = compare_runs(outputs({{"k", {binary}}}), outputs({{"k", {"z"}}}), true);
  EXPECT_THAT(b.examples[0], HasSubstr("\"\\x08\\x01\\x12\""));
}

TEST(DifferentialCompare, KeepsTheFirstFewTextsAndCountsEveryDifference) {
  std::map<std::string, std::vector<std::string>> faulty;
  std::map<std::string, std::vector<std::string>> reference;
  for (int i = 0; i < 12; ++i) {
    faulty["k" + std::to_string(i)] = {"a"};
    reference["k" + std::to_string(i)] = {"b"};
  }
  const DifferentialOutcome d = compare_runs(outputs(faulty), outputs(reference), true);
  EXPECT_EQ(d.differences, 12);
  EXPECT_EQ(d.examples.size(), kMaxDifferenceTexts);
}

}  // namespace
}  // namespace mephisto::sim::scenario
