// The example apps (agents/) under the simulator's AppHarness (label sim): the very definitions `mephisto
// worker` runs, as simulated workers against a simulated 3-broker cluster. Deterministic per seed.
//
// The examples keep their state (counts, balances) in memory until tables arrive, so the exact-output checks
// start the input only once the group has settled; the crash case checks what at-least-once promises without
// tables (every order answered, no negative balance).
#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "agents/examples.h"
#include "models/examples.pb.h"
#include "runtime/app/app.h"
#include "runtime/codec/codec.h"
#include "runtime/seam/random.h"
#include "sim/app/app_harness.h"

namespace mephisto::examples {
namespace {

using sim::AppHarness;

constexpr int32_t kPartitions = 4;
constexpr int64_t kWaitMs = 120'000;  // virtual time

// The examples' default settings with what the simulated cluster needs (internal topics replicated 3 times:
// its min.insync.replicas is 2) and short group timeouts, so that virtual time stays short.
void sim_settings(AppSettings& settings) {
  settings.topic_partitions = kPartitions;
  settings.topic_replication_factor = 3;
  settings.broker_session_timeout_ms = 10'000;
  settings.broker_heartbeat_interval_ms = 1'000;
  settings.broker_commit_interval_ms = 1'000;
  settings.stop_timeout_ms = 15'000;
  settings.rebalance_drain_timeout_ms = 2'000;
  settings.ask_timeout_ms = 10'000;
}

void create_topics(AppHarness& h, const std::vector<std::string>& names) {
  for (const auto& name : names) {
    const Status created = h.create_topic(TopicSpec{name, kPartitions, 3, {}});
    ASSERT_TRUE(created.ok()) << name << ": " << created.error().to_string();
  }
}

// Waits until every worker owns an equal share of every partition of `topics` (range assignment), then checks
// that the assignment stays put for a while: input sent earlier could be counted by a worker that then loses
// the partition, and the examples' in-memory state would not follow it.
void wait_for_balanced_group(AppHarness& h, const std::vector<std::string>& topics) {
  const int workers = h.worker_count();
  auto balanced = [&] {
    std::set<TopicPartition> seen;
    for (int w = 0; w < workers; ++w) {
      App* app = h.app(w);
      if (app == nullptr) return false;
      std::map<std::string, int32_t> per_topic;
      for (const auto& tp : app->assignment()) {
        if (!seen.insert(tp).second) return false;
        ++per_topic[tp.topic];
      }
      for (const auto& topic : topics) {
        if (per_topic[topic] != kPartitions / workers) return false;
      }
    }
    return true;
  };
  ASSERT_TRUE(h.run_until(balanced, kWaitMs)) << "the group did not settle\n" << h.dump_logs();
  std::vector<int64_t> rebalances;
  for (int w = 0; w < workers; ++w) rebalances.push_back(h.stats(w).rebalances);
  h.run_for(5'000);
  for (int w = 0; w < workers; ++w) {
    ASSERT_EQ(h.stats(w).rebalances, rebalances[w]) << "worker " << w << " rebalanced again\n"
                                                    << h.dump_logs();
    ASSERT_TRUE(h.worker_running(w)) << h.dump_logs();
  }
}

void stop_all(AppHarness& h) {
  for (int w = 0; w < h.worker_count(); ++w) h.stop_worker(w);
  ASSERT_TRUE(h.run_until(
      [&] {
        for (int w = 0; w < h.worker_count(); ++w) {
          if (h.worker_running(w)) return false;
        }
        return true;
      },
      kWaitMs))
      << h.dump_logs();
  for (int w = 0; w < h.worker_count(); ++w) {
    ASSERT_TRUE(h.worker_result(w).has_value()) << w;
    EXPECT_TRUE(h.worker_result(w)->ok())
        << "worker " << w << ": " << h.worker_result(w)->error().to_string();
  }
}

// Every count per key of a WordCount topic, in offset order per partition (all counts of a key share one).
std::map<std::string, std::vector<int64_t>> counts_of(const std::vector<ConsumerRecord>& records) {
  const auto codec = SelectedCodec<WordCount>::make(CodecKind::kJson).value();
  std::map<std::string, std::vector<int64_t>> out;
  for (const auto& record : records) {
    auto count = codec.decode(record.value.value_or(""));
    EXPECT_TRUE(count.ok()) << count.error().to_string();
    if (!count.ok()) continue;
    EXPECT_EQ(record.key.value_or(""), count.value().word());
    out[count.value().word()].push_back(count.value().count());
  }
  return out;
}

std::map<std::string, int64_t> last_counts(const std::map<std::string, std::vector<int64_t>>& all) {
  std::map<std::string, int64_t> out;
  for (const auto& [key, counts] : all) out[key] = counts.back();
  return out;
}

// Runs the simulation a second at a time until the counts topic shows `truth` as every key's last count.
void wait_for_counts(AppHarness& h, const std::string& topic, const std::map<std::string, int64_t>& truth) {
  for (int64_t waited = 0; waited < kWaitMs; waited += 1'000) {
    if (last_counts(counts_of(h.read_all(topic))) == truth) return;
    h.run_for(1'000);
  }
  ADD_FAILURE() << "the counts in " << topic << " did not reach the truth within " << kWaitMs << " ms\n"
                << h.dump_logs();
}

// Every key's counts are exactly 1, 2, ..., truth, in order: nothing counted twice or lost.
void expect_exact_counts(const std::map<std::string, int64_t>& truth,
                         const std::map<std::string, std::vector<int64_t>>& all) {
  EXPECT_EQ(last_counts(all), truth);
  for (const auto& [key, total] : truth) {
    auto it = all.find(key);
    ASSERT_NE(it, all.end()) << key;
    std::vector<int64_t> expected;
    for (int64_t n = 1; n <= total; ++n) expected.push_back(n);
    EXPECT_EQ(it->second, expected) << key;
  }
}

// ---- word count

struct WordCountRun {
  std::map<std::string, int64_t> truth;
  std::map<std::string, std::vector<int64_t>> counts;
  std::vector<int64_t> received;  // per worker
  uint64_t hash = 0;
};

WordCountRun run_word_count(uint64_t seed) {
  WordCountRun run;
  AppHarness h({.seed = seed});
  create_topics(h, {"wordcount-lines", "wordcount-counts"});
  const AppDefinition definition = word_count_app();
  h.add_worker(definition, sim_settings);
  h.add_worker(definition, sim_settings);
  wait_for_balanced_group(h, {"wordcount-lines", "wordcount-wordcount-words-word-repartition"});
  if (::testing::Test::HasFatalFailure()) return run;

  // 400 lines of 1-10 words from a vocabulary of 50, mixed case and punctuation; keyed by line (spread).
  Random random(seed);
  std::vector<ProducerRecord> input;
  for (int i = 0; i < 400; ++i) {
    std::string line;
    const int64_t words = random.between(1, 10);
    for (int64_t w = 0; w < words; ++w) {
      const uint64_t word = random.below(50);
      line += (word % 4 == 0 ? "Word" : "word") + std::to_string(word) + (w % 3 == 2 ? ". " : " ");
    }
    for (const auto& word : split_words(line)) ++run.truth[word];
    ProducerRecord record;
    record.topic = "wordcount-lines";
    record.key = "line-" + std::to_string(i);
    record.value = line;
    input.push_back(std::move(record));
  }
  EXPECT_EQ(h.produce(input), static_cast<int64_t>(input.size()));
  wait_for_counts(h, "wordcount-counts", run.truth);
  stop_all(h);
  run.counts = counts_of(h.read_all("wordcount-counts"));
  for (int w = 0; w < h.worker_count(); ++w) run.received.push_back(h.stats(w).records_received);
  run.hash = h.run_hash();
  return run;
}

TEST(ExamplesSim, WordCountWithTwoWorkersCountsEveryWordExactly) {
  const WordCountRun run = run_word_count(101);
  if (HasFatalFailure()) return;
  EXPECT_EQ(run.truth.size(), 50u);
  expect_exact_counts(run.truth, run.counts);
  ASSERT_EQ(run.received.size(), 2u);
  EXPECT_GT(run.received[0], 0) << "both workers take part";
  EXPECT_GT(run.received[1], 0) << "both workers take part";
}

TEST(ExamplesSim, WordCountIsDeterministicPerSeed) {
  const WordCountRun first = run_word_count(102);
  const WordCountRun second = run_word_count(102);
  if (HasFatalFailure()) return;
  EXPECT_EQ(first.hash, second.hash);
  EXPECT_EQ(first.counts, second.counts);
}

// ---- page views

TEST(ExamplesSim, PageViewsWithTwoWorkersCountEveryPageExactly) {
  AppHarness h({.seed = 201});
  create_topics(h, {"page-views", "page-view-counts"});
  const AppDefinition definition = page_views_app();
  h.add_worker(definition, sim_settings);
  h.add_worker(definition, sim_settings);
  wait_for_balanced_group(h, {"page-views", "pageviews-page-views-page-repartition"});
  if (HasFatalFailure()) return;

  const auto codec = SelectedCodec<PageView>::make(CodecKind::kJson).value();
  Random random(201);
  std::vector<ProducerRecord> input;
  std::map<std::string, int64_t> truth;
  for (int i = 0; i < 600; ++i) {
    PageView view;
    view.set_page("/page/" + std::to_string(random.below(30)));
    view.set_user("user-" + std::to_string(random.below(80)));
    view.set_timestamp_ms(h.now_ms() + i);
    ++truth[view.page()];
    ProducerRecord record;
    record.topic = "page-views";
    record.key = view.user();  // keyed by user: group_by(page) re-partitions
    record.value = codec.encode(view);
    input.push_back(std::move(record));
  }
  EXPECT_EQ(h.produce(input), static_cast<int64_t>(input.size()));
  wait_for_counts(h, "page-view-counts", truth);
  stop_all(h);
  expect_exact_counts(truth, counts_of(h.read_all("page-view-counts")));
  EXPECT_GT(h.stats(0).records_received, 0);
  EXPECT_GT(h.stats(1).records_received, 0);
}

// ---- orders

struct Orders {
  std::vector<ProducerRecord> records;
  std::map<std::string, WithdrawalResult> expected;  // by order_id, replayed in order per account
};

// n orders over `accounts` accounts with amounts up to 2,500 cents (most accounts run dry: both outcomes
// occur).
Orders make_orders(uint64_t seed, int n, int accounts) {
  Orders orders;
  const auto codec = SelectedCodec<Order>::make(CodecKind::kJson).value();
  Random random(seed);
  std::map<std::string, int64_t> balance;
  for (int i = 0; i < n; ++i) {
    Order order;
    order.set_order_id("order-" + std::to_string(i));
    order.set_account("acct-" + std::to_string(random.below(static_cast<uint64_t>(accounts))));
    order.set_amount_cents(random.between(1, 2'500));
    auto [it, inserted] = balance.try_emplace(order.account(), kInitialBalanceCents);
    (void)inserted;
    WithdrawalResult result;
    result.set_correlation_id(order.order_id());
    if (order.amount_cents() <= it->second) {
      it->second -= order.amount_cents();
      result.set_accepted(true);
    } else {
      result.set_reason("insufficient funds");
    }
    result.set_balance_cents(it->second);
    orders.expected[order.order_id()] = result;
    ProducerRecord record;
    record.topic = "orders";
    record.key = order.account();  // every order of an account in one partition, in order
    record.value = codec.encode(order);
    orders.records.push_back(std::move(record));
  }
  return orders;
}

// Results by order_id (a redelivered order may have several).
std::map<std::string, std::vector<WithdrawalResult>> results_of(const std::vector<ConsumerRecord>& records) {
  const auto codec = SelectedCodec<WithdrawalResult>::make(CodecKind::kJson).value();
  std::map<std::string, std::vector<WithdrawalResult>> out;
  for (const auto& record : records) {
    auto result = codec.decode(record.value.value_or(""));
    EXPECT_TRUE(result.ok()) << result.error().to_string();
    if (!result.ok()) continue;
    EXPECT_EQ(record.key.value_or(""), result.value().correlation_id());
    out[record.key.value_or("")].push_back(result.value());
  }
  return out;
}

void wait_for_results(AppHarness& h, size_t orders, int64_t wait_ms = kWaitMs, int64_t step_ms = 1'000) {
  for (int64_t waited = 0; waited < wait_ms; waited += step_ms) {
    if (results_of(h.read_all("order-results")).size() >= orders) return;
    h.run_for(step_ms);
  }
  ADD_FAILURE() << "results for " << results_of(h.read_all("order-results")).size() << " of " << orders
                << " orders after " << wait_ms << " ms\n"
                << h.dump_logs();
}

TEST(ExamplesSim, OrdersWithTwoWorkersGetExactlyOneCorrectResultEach) {
  AppHarness h({.seed = 301});
  create_topics(h, {"orders", "order-results"});
  const AppDefinition definition = orders_app();
  h.add_worker(definition, sim_settings);
  h.add_worker(definition, sim_settings);
  wait_for_balanced_group(h, {"orders", "orders-withdraw"});
  if (HasFatalFailure()) return;

  const Orders orders = make_orders(301, 300, 15);
  EXPECT_EQ(h.produce(orders.records), static_cast<int64_t>(orders.records.size()));
  wait_for_results(h, orders.expected.size());
  stop_all(h);

  const auto results = results_of(h.read_all("order-results"));
  EXPECT_EQ(results.size(), orders.expected.size());
  int accepted = 0;
  int refused = 0;
  for (const auto& [order_id, got] : results) {
    ASSERT_EQ(got.size(), 1u) << order_id << ": no crash, so exactly one result";
    EXPECT_GE(got.front().balance_cents(), 0) << order_id;
    auto want = orders.expected.find(order_id);
    ASSERT_NE(want, orders.expected.end()) << "a result for an unknown order " << order_id;
    EXPECT_EQ(got.front().SerializeAsString(), want->second.SerializeAsString())
        << order_id << ": got " << got.front().ShortDebugString() << ", expected "
        << want->second.ShortDebugString();
    (got.front().accepted() ? accepted : refused) += 1;
  }
  EXPECT_GT(accepted, 0);
  EXPECT_GT(refused, 0);
  EXPECT_EQ(h.stats(0).asks + h.stats(1).asks, static_cast<int64_t>(orders.expected.size()));
  EXPECT_EQ(h.stats(0).ask_timeouts + h.stats(1).ask_timeouts, 0);
  EXPECT_GT(h.stats(0).asks, 0) << "both workers process orders";
  EXPECT_GT(h.stats(1).asks, 0) << "both workers process orders";
}

TEST(ExamplesSim, OrdersSurviveAWorkerCrashAtLeastOnce) {
  AppHarness h({.seed = 302});
  create_topics(h, {"orders", "order-results"});
  const AppDefinition definition = orders_app();
  h.add_worker(definition, sim_settings);
  h.add_worker(definition, sim_settings);
  wait_for_balanced_group(h, {"orders", "orders-withdraw"});
  if (HasFatalFailure()) return;

  const Orders orders = make_orders(302, 400, 15);
  EXPECT_EQ(h.produce(orders.records), static_cast<int64_t>(orders.records.size()));
  // Crash worker 0 once some results are out, restart it a little later.
  ASSERT_TRUE(h.run_until([&] { return h.stats(0).asks + h.stats(1).asks >= 100; }, kWaitMs))
      << h.dump_logs();
  h.crash_worker(0);
  h.run_for(3'000);
  h.restart_worker(0);
  wait_for_results(h, orders.expected.size());
  stop_all(h);

  // At-least-once: every order has a result (deduplicated by order_id), none for an unknown order, and no
  // result shows a negative balance. (Without tables a re-owned account starts again from the initial
  // balance, so the results are not checked against the single-owner replay here.)
  const auto results = results_of(h.read_all("order-results"));
  EXPECT_EQ(results.size(), orders.expected.size());
  for (const auto& [order_id, got] : results) {
    EXPECT_EQ(orders.expected.count(order_id), 1u) << "a result for an unknown order " << order_id;
    for (const auto& result : got) {
      EXPECT_GE(result.balance_cents(), 0) << order_id << ": " << result.ShortDebugString();
      EXPECT_TRUE(result.accepted() || !result.reason().empty()) << order_id;
    }
  }
}

// A backlog of more than one agent buffer (stream_buffer_maxsize 4096) of orders on one worker: flow control
// must pause only the partitions feeding the full buffer. Pausing the whole assignment (as an earlier engine
// did) also stops the withdraw agent's topic, so every ask() of process_orders times out and the worker
// crawls at one order per ask_timeout_ms.
TEST(ExamplesSim, OrdersBacklogBeyondOneBufferIsAnsweredWithoutAskTimeouts) {
  AppHarness h({.seed = 303});
  create_topics(h, {"orders", "order-results"});
  const AppDefinition definition = orders_app();
  h.add_worker(definition, sim_settings);
  wait_for_balanced_group(h, {"orders", "orders-withdraw"});
  if (HasFatalFailure()) return;
  const Orders orders = make_orders(303, 5'000, 40);
  EXPECT_EQ(h.produce(orders.records), static_cast<int64_t>(orders.records.size()));
  // One actor asks one order at a time: about 35 orders per virtual second here.
  wait_for_results(h, orders.expected.size(), 400'000, 10'000);
  EXPECT_GT(h.stats(0).flow_control_pauses, 0) << "the backlog filled the buffer";
  EXPECT_EQ(h.stats(0).ask_timeouts, 0);
  stop_all(h);
  const auto results = results_of(h.read_all("order-results"));
  EXPECT_EQ(results.size(), orders.expected.size());
  for (const auto& [order_id, got] : results) {
    ASSERT_EQ(got.size(), 1u) << order_id;
    EXPECT_EQ(got.front().SerializeAsString(), orders.expected.at(order_id).SerializeAsString()) << order_id;
  }
}

}  // namespace
}  // namespace mephisto::examples
