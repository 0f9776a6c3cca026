// TestDriver (sim/testing/test_driver.h): records in, outputs and table contents out, for a small app defined
// here — a running total per account in a table and a receipt per payment, exactly once — plus what the
// driver says when the test asks for something the app does not have, or the worker cannot settle.
#include "sim/testing/test_driver.h"

#include <gtest/gtest.h>

#include <string>

#include "models/examples.pb.h"

namespace mephisto {
namespace {

using examples::Order;

Order order(int64_t cents) {
  Order o;
  o.set_order_id("o" + std::to_string(cents));
  o.set_amount_cents(cents);
  return o;
}

AppDefinition totals_app(ProcessingGuarantee guarantee, bool creates_topics = false) {
  AppDefinition app;
  app.name = "totals";
  app.default_settings = [guarantee] {
    AppSettings settings;
    settings.id = "totals";
    settings.processing_guarantee = guarantee;
    return settings;
  };
  app.define = [creates_topics](App& a) {
    TopicOptions options;
    options.create = creates_topics;
    options.partitions = 2;
    auto payments = a.topic<std::string, Order>("payments", options);  // protobuf JSON, the default codec
    auto receipts = a.topic<std::string, std::string>("receipts", options);
    auto totals = a.table<std::string, int64_t>("totals", payments);
    a.agent("settle", payments, [=](Stream<std::string, Order>& stream) {
      for (auto& payment : stream) {
        const int64_t total = totals.get(payment.key()) + payment.value().amount_cents();
        totals.set(payment.key(), total);
        (void)receipts.send(payment.key(), std::to_string(total));
      }
    });
  };
  return app;
}

class TestDriverTest : public ::testing::TestWithParam<ProcessingGuarantee> {};

TEST_P(TestDriverTest, RecordsInOutputsAndTheTableOut) {
  TestDriver driver(totals_app(GetParam()), {.partitions = 3});
  driver.send<std::string, Order>("payments", "a", order(10));
  driver.send<std::string, Order>("payments", "b", order(5));
  driver.send<std::string, Order>("payments", "a", order(7));
  ASSERT_TRUE(driver.process().ok()) << driver.log();

  const auto receipts = driver.read<std::string, std::string>("receipts");
  std::map<std::string, std::vector<std::string>> by_key;
  for (const auto& [key, value] : receipts) by_key[key].push_back(value);
  EXPECT_EQ(by_key["a"], (std::vector<std::string>{"10", "17"}));
  EXPECT_EQ(by_key["b"], (std::vector<std::string>{"5"}));
  using Totals = std::map<std::string, int64_t>;
  const Totals totals = driver.table<std::string, int64_t>("totals");
  EXPECT_EQ(totals, (Totals{{"a", 17}, {"b", 5}}));

  // A second batch continues from the committed state.
  driver.send<std::string, Order>("payments", "b", order(1));
  ASSERT_TRUE(driver.process().ok()) << driver.log();
  const auto after = driver.table<std::string, int64_t>("totals");
  EXPECT_EQ(after.at("b"), 6);
  EXPECT_EQ(driver.read_raw("receipts").size(), 4U);
}

INSTANTIATE_TEST_SUITE_P(Guarantees, TestDriverTest,
                         ::testing::Values(ProcessingGuarantee::kAtLeastOnce,
                                           ProcessingGuarantee::kExactlyOnce),
                         [](const auto& info) {
                           return info.param == ProcessingGuarantee::kExactlyOnce ? "ExactlyOnce"
                                                                                  : "AtLeastOnce";
                         });

TEST(TestDriver, TheSameInputGivesTheSameRunEveryTime) {
  auto run = [] {
    TestDriver driver(totals_app(ProcessingGuarantee::kExactlyOnce), {.seed = 9, .partitions = 2});
    for (int i = 0; i < 20; ++i)
      driver.send<std::string, Order>("payments", "k" + std::to_string(i % 3), order(i));
    EXPECT_TRUE(driver.process().ok()) << driver.log();
    return std::make_pair(driver.now_ms(), driver.read_raw("receipts").size());
  };
  EXPECT_EQ(run(), run());
}

TEST(TestDriver, TopicsTheAppCreatesAreWrittenOnceItCreatedThem) {
  TestDriver driver(totals_app(ProcessingGuarantee::kExactlyOnce, /*creates_topics=*/true));
  driver.send<std::string, Order>("payments", "a", order(4));
  ASSERT_TRUE(driver.process().ok()) << driver.log();
  const auto receipts = driver.read<std::string, std::string>("receipts");
  ASSERT_EQ(receipts.size(), 1U);
  EXPECT_EQ(receipts.front().second, "4");
}

TEST(TestDriver, AnUndecodableRecordIsSkippedAndTheRestProcessed) {
  TestDriver driver(totals_app(ProcessingGuarantee::kExactlyOnce));
  driver.send<std::string, Order>("payments", "a", order(1));
  driver.send_raw("payments", "a", "not json");  // skipped (bad_record_policy), logged
  driver.send<std::string, Order>("payments", "a", order(2));
  ASSERT_TRUE(driver.process().ok()) << driver.log();
  const auto totals = driver.table<std::string, int64_t>("totals");
  EXPECT_EQ(totals.at("a"), 3);
  EXPECT_NE(driver.log().find("undecodable record payments"), std::string::npos) << driver.log();
}

void send_to_an_unknown_topic() {
  TestDriver driver(totals_app(ProcessingGuarantee::kAtLeastOnce));
  driver.send<std::string, Order>("payment", "a", order(1));
}
void read_an_unknown_table() {
  TestDriver driver(totals_app(ProcessingGuarantee::kAtLeastOnce));
  (void)driver.table_raw("total");
}

TEST(TestDriverDeathTest, AnUnknownTopicOrTableNamesWhatTheAppHas) {
  EXPECT_DEATH(send_to_an_unknown_topic(),
               "app 'totals' declares no topic 'payment'; its topics: payments, receipts");
  EXPECT_DEATH(read_an_unknown_table(), "declares no table 'total'; its tables: totals");
}

}  // namespace
}  // namespace mephisto
