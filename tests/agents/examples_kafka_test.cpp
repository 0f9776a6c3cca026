// The example apps (agents/) against a real Kafka broker (label kafka): each app runs in-process on an
// EventLoop with the librdkafka binding, input is produced with a plain binding producer, and the outputs are
// read back from the beginning with an assign()ed binding consumer. Word count and orders run two workers of
// one group (orders then asks across workers). Every run uses fresh topics and app ids (a random prefix), so
// tests can share the fixture broker and re-runs never meet old data.
//
// Run through CTest (ctest -L kafka) or `tools/kafka/with-broker -- build/bin/examples_kafka_test`; both set
// MEPHISTO_KAFKA_BOOTSTRAP.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "agents/examples.h"
#include "models/examples.pb.h"
#include "runtime/app/app.h"
#include "runtime/codec/codec.h"
#include "runtime/kafka/kafka_broker_client.h"
#include "runtime/loop/event_loop.h"
#include "runtime/seam/env.h"
#include "runtime/seam/random.h"

namespace mephisto::examples {
namespace {

constexpr int32_t kPartitions = 4;
// The longest a test waits for a group to settle or for its outputs (wall time).
constexpr int64_t kSettleTimeoutMs = 30'000;
constexpr int64_t kOutputTimeoutMs = 40'000;

// One worker of an app: the App and the status its run() returned.
struct Worker {
  std::unique_ptr<App> app;
  std::optional<Status> result;
};

// An assign()ed consumer of every partition of a topic, read from the beginning on its own fiber.
struct Reader {
  std::vector<ConsumerRecord> records;
  bool stop = false;
  bool finished = false;
  std::string error;
};

class ExamplesKafka : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* bootstrap = std::getenv("MEPHISTO_KAFKA_BOOTSTRAP");
    if (bootstrap == nullptr || *bootstrap == '\0') {
      GTEST_FAIL()
          << "MEPHISTO_KAFKA_BOOTSTRAP is not set. This test needs a running Kafka broker: run it through "
             "CTest (ctest -L kafka) or tools/kafka/with-broker -- <test binary>";
    }
    bootstrap_ = bootstrap;
    std::random_device device;
    const uint64_t seed = (static_cast<uint64_t>(device()) << 32) ^ device();
    random_ = std::make_unique<Random>(seed);
    prefix_ = "ex-" + std::to_string(seed % 1'000'000'007ULL) + "-";
    client_ = std::make_unique<KafkaBrokerClient>(loop_, KafkaOptions{bootstrap_, {}});
  }

  void TearDown() override {
    // Stop whatever still runs (a failed test), then let the fibers end before the clients go.
    stop_workers();
    for (auto& reader : readers_) reader->stop = true;
    loop_.run([this] { return readers_done(); }, clock_.now_ms() + 10'000);
    workers_.clear();
    readers_.clear();
    client_.reset();
  }

  Env env() { return Env{&clock_, &loop_, random_.get(), client_.get()}; }

  // Runs fn on a fiber (other fibers keep running) and the loop until it returns.
  void on_fiber(const std::function<void()>& fn, int64_t timeout_ms = 60'000) {
    bool finished = false;
    loop_.spawn("test", [&] {
      fn();
      finished = true;
    });
    ASSERT_TRUE(loop_.run([&] { return finished; }, clock_.now_ms() + timeout_ms)) << "timed out";
  }

  void create_topics(const std::vector<std::string>& names) {
    on_fiber([&] {
      auto admin = client_->admin();
      ASSERT_TRUE(admin.ok()) << admin.error();
      for (const auto& name : names) {
        const Status created = admin.value()->create_topic(TopicSpec{name, kPartitions, 1, {}}, 30'000);
        ASSERT_TRUE(created.ok()) << name << ": " << created.error();
      }
    });
  }

  // Starts a worker of `definition` (prefixed app id, this test's broker, internal topics of kPartitions).
  Worker& start_worker(const AppDefinition& definition, const std::string& worker_id,
                       const std::function<void(AppSettings&)>& adjust = {}) {
    AppSettings settings = definition.default_settings();
    if (adjust) adjust(settings);
    settings.broker = "kafka://" + bootstrap_;
    settings.worker_id = worker_id;
    settings.topic_partitions = kPartitions;
    auto worker = std::make_unique<Worker>();
    worker->app = std::make_unique<App>(settings);
    definition.define(*worker->app);
    Worker* w = worker.get();
    const Env worker_env = env();
    loop_.spawn("worker-" + worker_id, [w, worker_env] { w->result = w->app->run(worker_env); });
    workers_.push_back(std::move(worker));
    return *workers_.back();
  }

  // Starts `count` workers one after the other, each once the group including the previous ones has settled,
  // and returns when all have an equal share of `topics`. One at a time because of a start-up race of
  // concurrent workers: the second one's create_topic of an internal topic returns "already exists" while the
  // first one is still creating it, it subscribes before the topic is in its metadata, and librdkafka then
  // leaves it out of the member's subscription until the next metadata refresh (5 minutes), so the group
  // stays unbalanced.
  void start_workers(const AppDefinition& definition, int count, const std::vector<std::string>& topics,
                     const std::function<void(AppSettings&)>& adjust = {}) {
    for (int i = 1; i <= count; ++i) {
      start_worker(definition, "w" + std::to_string(i), adjust);
      wait_for_balanced_group(topics);
      if (HasFatalFailure()) return;
    }
  }

  // Waits until every worker owns an equal share (range assignment) of every partition of `topics`, then
  // checks that nothing moves for a while: input sent before that could be counted by a worker that then
  // loses the partition (the examples keep their state in memory until tables arrive).
  void wait_for_balanced_group(const std::vector<std::string>& topics) {
    auto balanced = [&] {
      std::set<TopicPartition> seen;
      for (const auto& worker : workers_) {
        if (worker->result.has_value()) return true;  // a worker stopped: fail below with its status
        std::map<std::string, int32_t> per_topic;
        for (const auto& tp : worker->app->assignment()) {
          if (!seen.insert(tp).second) return false;
          ++per_topic[tp.topic];
        }
        for (const auto& topic : topics) {
          if (per_topic[topic] != kPartitions / static_cast<int32_t>(workers_.size())) return false;
        }
      }
      return true;
    };
    ASSERT_TRUE(loop_.run(balanced, clock_.now_ms() + kSettleTimeoutMs))
        << "the group did not settle within " << kSettleTimeoutMs << " ms: " << describe_workers();
    assert_running();
    std::vector<int64_t> rebalances;
    for (const auto& worker : workers_) rebalances.push_back(worker->app->stats().rebalances);
    loop_.run([] { return false; }, clock_.now_ms() + 1'000);
    assert_running();
    for (size_t i = 0; i < workers_.size(); ++i) {
      ASSERT_EQ(workers_[i]->app->stats().rebalances, rebalances[i])
          << "worker " << i << " rebalanced again after the group looked settled: " << describe_workers();
    }
  }

  void assert_running() {
    for (size_t i = 0; i < workers_.size(); ++i) {
      if (workers_[i]->result.has_value()) {
        GTEST_FAIL() << "worker " << i << " stopped: "
                     << (workers_[i]->result->ok() ? std::string("ok")
                                                   : workers_[i]->result->error().to_string());
      }
    }
  }

  std::string describe_workers() {
    std::string out;
    for (size_t i = 0; i < workers_.size(); ++i) {
      const auto& worker = *workers_[i];
      out += "\n  worker " + std::to_string(i) + (worker.result ? " (stopped)" : "") + ": ";
      for (const auto& tp : worker.app->assignment())
        out += tp.topic + "/" + std::to_string(tp.partition) + " ";
      const AppStats& s = worker.app->stats();
      out += "| received " + std::to_string(s.records_received) + " acked " + std::to_string(s.events_acked) +
             " sent " + std::to_string(s.records_sent) + " delivered " + std::to_string(s.records_delivered) +
             " rebalances " + std::to_string(s.rebalances) + " agent_errors " +
             std::to_string(s.agent_errors) + " asks " + std::to_string(s.asks) + " ask_timeouts " +
             std::to_string(s.ask_timeouts);
    }
    return out;
  }

  void produce(const std::vector<ProducerRecord>& records) {
    on_fiber([&] {
      ProducerConfig config;
      config.client_id = "examples-kafka-test";
      auto producer = client_->producer(config);
      ASSERT_TRUE(producer.ok()) << producer.error();
      int64_t delivered = 0;
      std::string failure;
      for (const auto& record : records) {
        for (;;) {
          const Status sent = producer.value()->send(record, [&](const Result<RecordMetadata>& result) {
            if (result.ok()) {
              ++delivered;
            } else if (failure.empty()) {
              failure = result.error().to_string();
            }
          });
          if (sent.ok()) break;
          ASSERT_EQ(sent.code(), ErrorCode::kQueueFull) << sent.error();
          loop_.park_until(clock_.now_ms() + 10);
        }
      }
      const Status flushed = producer.value()->flush(30'000);
      ASSERT_TRUE(flushed.ok()) << flushed.error();
      ASSERT_EQ(delivered, static_cast<int64_t>(records.size())) << failure;
    });
  }

  // Starts reading every partition of `topic` from the beginning.
  Reader& read(const std::string& topic) {
    readers_.push_back(std::make_unique<Reader>());
    Reader* reader = readers_.back().get();
    KafkaBrokerClient* client = client_.get();
    loop_.spawn("reader-" + topic, [reader, client, topic] {
      ConsumerConfig config;
      config.client_id = "examples-kafka-test-reader";
      config.isolation_level = IsolationLevel::kReadUncommitted;
      auto consumer = client->consumer(config);
      if (!consumer.ok()) {
        reader->error = consumer.error().to_string();
        reader->finished = true;
        return;
      }
      std::vector<TopicPartition> partitions;
      for (int32_t p = 0; p < kPartitions; ++p) partitions.push_back({topic, p});
      if (const Status assigned = consumer.value()->assign(partitions); !assigned.ok()) {
        reader->error = assigned.error().to_string();
      }
      while (!reader->stop && reader->error.empty()) {
        auto batch = consumer.value()->poll(100);
        if (!batch.ok()) {
          reader->error = batch.error().to_string();
          break;
        }
        for (auto& record : batch.value()) reader->records.push_back(std::move(record));
      }
      (void)consumer.value()->close();
      reader->finished = true;
    });
    return *reader;
  }

  bool readers_done() const {
    for (const auto& reader : readers_) {
      if (!reader->finished) return false;
    }
    return true;
  }

  // Waits until done() holds (checked as the loop runs); false at the deadline or when a worker stopped.
  bool wait_for(const std::function<bool()>& done, int64_t timeout_ms) {
    bool stopped = false;
    loop_.run(
        [&] {
          for (const auto& worker : workers_) stopped = stopped || worker->result.has_value();
          for (const auto& reader : readers_) stopped = stopped || !reader->error.empty();
          return stopped || done();
        },
        clock_.now_ms() + timeout_ms);
    return !stopped && done();
  }

  // Graceful stop of every worker still running; each must then return ok.
  void stop_workers() {
    bool any = false;
    for (auto& worker : workers_) {
      if (worker->result.has_value()) continue;
      any = true;
      App* app = worker->app.get();
      loop_.spawn("stop", [app] { app->stop(); });
    }
    if (!any) return;
    const bool stopped = loop_.run(
        [this] {
          for (const auto& worker : workers_) {
            if (!worker->result.has_value()) return false;
          }
          return true;
        },
        clock_.now_ms() + 40'000);
    EXPECT_TRUE(stopped) << "workers did not stop within 40 s: " << describe_workers();
  }

  void expect_stopped_ok() {
    stop_workers();
    for (size_t i = 0; i < workers_.size(); ++i) {
      ASSERT_TRUE(workers_[i]->result.has_value());
      EXPECT_TRUE(workers_[i]->result->ok()) << "worker " << i << ": " << workers_[i]->result->error();
    }
  }

  // Every count per key of a WordCount output read so far, in order (decoded incrementally, as the wait
  // predicates ask for it after every step of the loop).
  struct Counts {
    explicit Counts(const Reader* source) : reader(source) {}
    const Reader* reader;
    size_t decoded = 0;
    std::map<std::string, std::vector<int64_t>> all;
    std::string error;

    void update() {
      const auto codec = SelectedCodec<WordCount>::make(CodecKind::kJson).value();
      for (; decoded < reader->records.size(); ++decoded) {
        const ConsumerRecord& record = reader->records[decoded];
        auto count = codec.decode(record.value.value_or(""));
        if (!count.ok()) {
          error = count.error().to_string();
          continue;
        }
        if (record.key.value_or("") != count.value().word() && error.empty()) {
          error = "key " + record.key.value_or("") + " holds the count of " + count.value().word();
        }
        all[count.value().word()].push_back(count.value().count());
      }
    }
    std::map<std::string, int64_t> last() {
      update();
      std::map<std::string, int64_t> out;
      for (const auto& [key, counts] : all) out[key] = counts.back();
      return out;
    }
  };

  // Every key's counts are exactly 1, 2, ..., truth, in order (no record counted twice or lost: no crash
  // here).
  static void expect_exact_counts(const std::map<std::string, int64_t>& truth,
                                  const std::map<std::string, std::vector<int64_t>>& all) {
    EXPECT_EQ(all.size(), truth.size());
    for (const auto& [key, total] : truth) {
      auto it = all.find(key);
      ASSERT_NE(it, all.end()) << key;
      std::vector<int64_t> expected;
      for (int64_t n = 1; n <= total; ++n) expected.push_back(n);
      EXPECT_EQ(it->second, expected) << key;
    }
  }

  EventLoop loop_;
  RealClock clock_;
  std::string bootstrap_;
  std::string prefix_;
  std::unique_ptr<Random> random_;
  std::unique_ptr<KafkaBrokerClient> client_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::vector<std::unique_ptr<Reader>> readers_;
};

std::string topic_name(const std::string& prefix, std::string_view topic) {
  return prefix + std::string(topic);
}

TEST_F(ExamplesKafka, WordCountWithTwoWorkers) {
  const std::string lines = topic_name(prefix_, kWordCountLinesTopic);
  const std::string counts = topic_name(prefix_, kWordCountCountsTopic);
  create_topics({lines, counts});
  const AppDefinition definition = word_count_app(prefix_);
  // The repartition topic is named after the app id and the channel (not prefixed: channels are in memory).
  const std::string repartition = prefix_ + "wordcount-wordcount-words-word-repartition";
  start_workers(definition, 2, {lines, repartition});
  if (HasFatalFailure()) return;

  // 300 lines of 1-8 words from a vocabulary of 40 (mixed case and punctuation on purpose).
  static const std::vector<std::string> kVocabulary = [] {
    std::vector<std::string> words;
    for (int i = 0; i < 40; ++i) words.push_back((i % 3 == 0 ? "Word" : "word") + std::to_string(i));
    return words;
  }();
  std::vector<ProducerRecord> input;
  std::map<std::string, int64_t> truth;
  for (int i = 0; i < 300; ++i) {
    std::string text;
    const int64_t n = random_->between(1, 8);
    for (int64_t w = 0; w < n; ++w)
      text += kVocabulary[random_->below(kVocabulary.size())] + (w % 2 ? ", " : " ");
    for (const auto& word : split_words(text)) ++truth[word];
    ProducerRecord record;
    record.topic = lines;
    record.key = "line-" + std::to_string(i);
    record.value = text;
    input.push_back(std::move(record));
  }
  Reader& output = read(counts);
  produce(input);
  if (HasFatalFailure()) return;

  Counts seen(&output);
  const bool complete = wait_for([&] { return seen.last() == truth; }, kOutputTimeoutMs);
  const std::map<std::string, int64_t> last = seen.last();
  const std::map<std::string, std::vector<int64_t>>& all = seen.all;
  EXPECT_EQ(seen.error, "");
  EXPECT_TRUE(complete) << "outputs incomplete after " << kOutputTimeoutMs << " ms (" << output.records.size()
                        << " counts read, reader error '" << output.error << "'): " << describe_workers();
  EXPECT_EQ(last, truth);
  expect_exact_counts(truth, all);
  for (const auto& worker : workers_)
    EXPECT_GT(worker->app->stats().records_received, 0) << describe_workers();
  expect_stopped_ok();
}

// Page views per page; one malformed record in the input goes to the dead-letter topic (bad_record_policy
// dead_letter) with the error and its source in headers, and the worker keeps counting the rest.
TEST_F(ExamplesKafka, PageViews) {
  const std::string views = topic_name(prefix_, kPageViewsTopic);
  const std::string counts = topic_name(prefix_, kPageViewCountsTopic);
  create_topics({views, counts});
  const AppDefinition definition = page_views_app(prefix_);
  start_workers(definition, 1, {views, prefix_ + "pageviews-" + views + "-page-repartition"},
                [](AppSettings& settings) { settings.bad_record_policy = BadRecordPolicy::kDeadLetter; });
  if (HasFatalFailure()) return;

  const auto codec = SelectedCodec<PageView>::make(CodecKind::kJson).value();
  std::vector<ProducerRecord> input;
  std::map<std::string, int64_t> truth;
  for (int i = 0; i < 500; ++i) {
    PageView view;
    view.set_page("/page/" + std::to_string(random_->below(25)));
    view.set_user("user-" + std::to_string(random_->below(60)));
    view.set_timestamp_ms(1'700'000'000'000 + i);
    ++truth[view.page()];
    ProducerRecord record;
    record.topic = views;
    record.key = view.user();  // keyed by user: group_by(page) re-partitions
    record.value = codec.encode(view);
    input.push_back(std::move(record));
  }
  ProducerRecord malformed;
  malformed.topic = views;
  malformed.key = "user-x";
  malformed.value = "{\"page\": \"/page/1\", oops";  // not JSON
  input.insert(input.begin() + 250, malformed);
  Reader& output = read(counts);
  Reader& dead_letters = read(prefix_ + "pageviews-dead-letters");
  produce(input);
  if (HasFatalFailure()) return;

  Counts seen(&output);
  const bool complete = wait_for([&] { return seen.last() == truth; }, kOutputTimeoutMs);
  const std::map<std::string, int64_t> last = seen.last();
  const std::map<std::string, std::vector<int64_t>>& all = seen.all;
  EXPECT_EQ(seen.error, "");
  EXPECT_TRUE(complete) << "outputs incomplete after " << kOutputTimeoutMs << " ms: " << describe_workers();
  EXPECT_EQ(last, truth);
  expect_exact_counts(truth, all);
  EXPECT_TRUE(wait_for([&] { return !dead_letters.records.empty(); }, kOutputTimeoutMs));
  ASSERT_EQ(dead_letters.records.size(), 1u);
  const ConsumerRecord& dead = dead_letters.records.front();
  EXPECT_EQ(dead.value, malformed.value);
  std::map<std::string, std::string> headers;
  for (const Header& header : dead.headers) headers[header.key] = header.value.value_or("");
  EXPECT_EQ(headers["mephisto-source-topic"], views);
  EXPECT_NE(headers["mephisto-source-offset"], "");
  EXPECT_NE(headers["mephisto-error"].find("value"), std::string::npos) << headers["mephisto-error"];
  EXPECT_EQ(workers_.front()->app->stats().records_dead_lettered, 1);
  expect_stopped_ok();
}

TEST_F(ExamplesKafka, OrdersWithTwoWorkers) {
  const std::string orders = topic_name(prefix_, kOrdersTopic);
  const std::string results = topic_name(prefix_, kOrderResultsTopic);
  create_topics({orders, results});
  const AppDefinition definition = orders_app(prefix_);
  start_workers(definition, 2, {orders, prefix_ + "orders-withdraw"});
  if (HasFatalFailure()) return;

  // 200 orders over 12 accounts, amounts up to 2,500 cents: most accounts run out, so both outcomes occur.
  const auto codec = SelectedCodec<Order>::make(CodecKind::kJson).value();
  std::vector<ProducerRecord> input;
  std::map<std::string, int64_t> balance;            // the expected outcome, replayed in order per account
  std::map<std::string, WithdrawalResult> expected;  // by order_id
  for (int i = 0; i < 200; ++i) {
    Order order;
    order.set_order_id("order-" + std::to_string(i));
    order.set_account("acct-" + std::to_string(random_->below(12)));
    order.set_amount_cents(random_->between(1, 2'500));
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
    expected[order.order_id()] = result;
    ProducerRecord record;
    record.topic = orders;
    record.key = order.account();  // all orders of an account in one partition, in order
    record.value = codec.encode(order);
    input.push_back(std::move(record));
  }
  Reader& output = read(results);
  produce(input);
  if (HasFatalFailure()) return;

  const auto result_codec = SelectedCodec<WithdrawalResult>::make(CodecKind::kJson).value();
  auto distinct_results = [&] {
    std::set<std::string> ids;
    for (const auto& record : output.records) ids.insert(record.key.value_or(""));
    return ids.size();
  };
  const bool complete = wait_for([&] { return distinct_results() == expected.size(); }, kOutputTimeoutMs);
  EXPECT_TRUE(complete) << "results for " << distinct_results() << " of " << expected.size()
                        << " orders after " << kOutputTimeoutMs << " ms: " << describe_workers();
  std::map<std::string, int> seen;
  for (const auto& record : output.records) {
    const std::string order_id = record.key.value_or("");
    ++seen[order_id];
    auto result = result_codec.decode(record.value.value_or(""));
    ASSERT_TRUE(result.ok()) << result.error();
    EXPECT_GE(result.value().balance_cents(), 0) << order_id;
    auto want = expected.find(order_id);
    ASSERT_NE(want, expected.end()) << "a result for an unknown order " << order_id;
    EXPECT_EQ(result.value().SerializeAsString(), want->second.SerializeAsString())
        << order_id << ": got " << result.value().ShortDebugString() << ", expected "
        << want->second.ShortDebugString();
  }
  for (const auto& [order_id, n] : seen) EXPECT_EQ(n, 1) << order_id << " has " << n << " results";
  int64_t total_asks = 0;
  for (const auto& worker : workers_) total_asks += worker->app->stats().asks;
  EXPECT_EQ(total_asks, static_cast<int64_t>(expected.size())) << describe_workers();
  expect_stopped_ok();
}

}  // namespace
}  // namespace mephisto::examples
