// Records that do not decode with their topic's codec: skipped and counted, or dead-lettered with their
// origin; either way acked (the commit passes them) and the worker keeps running.
#include <gtest/gtest.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "models/examples.pb.h"
#include "runtime/codec/codec.h"
#include "tests/app/sim_support.h"

namespace mephisto::apptest {
namespace {

using examples::PageView;

struct ViewsState {
  std::vector<std::string> pages;
};

AppDefinition views_app(const std::string& id, ViewsState& st) {
  return definition(id, [&st](App& app) {
    auto views = app.topic<std::string, PageView>("views");
    app.agent("pages", views, [&st](Stream<std::string, PageView>& stream) {
      for (auto& event : stream) st.pages.push_back(event.value().page());
    });
  });
}

// Ten records on one partition, the fifth (offset 4) not JSON at all.
std::vector<ProducerRecord> views_with_garbage() {
  const ProtobufJsonCodec<PageView> codec;
  std::vector<ProducerRecord> out;
  for (int i = 0; i < 10; ++i) {
    PageView view;
    view.set_page("p" + std::to_string(i));
    view.set_user("u");
    view.set_timestamp_ms(1000 + i);
    out.push_back(record("views", "u", i == 4 ? std::string("this is not json {") : codec.encode(view), 0));
  }
  return out;
}

std::vector<std::string> expected_pages() {
  std::vector<std::string> out;
  for (int i = 0; i < 10; ++i) {
    if (i != 4) out.push_back("p" + std::to_string(i));
  }
  return out;
}

std::optional<std::string> header(const ConsumerRecord& record, const std::string& key) {
  for (const auto& h : record.headers) {
    if (h.key == key) return h.value;
  }
  return std::nullopt;
}

TEST(BadInputSim, SkipCountsTheRecordAndTheCommitPassesIt) {
  ViewsState st;
  AppHarness h({.seed = seed(91)});
  create_topics(h, {{"views", 1}});
  const int w = h.add_worker(views_app("skip", st));
  ASSERT_EQ(h.produce(views_with_garbage()), 10);
  ASSERT_TRUE(h.run_until([&] { return st.pages.size() >= 9; }, kWaitMs)) << h.dump_logs();
  h.run_for(2500);
  EXPECT_EQ(st.pages, expected_pages());
  EXPECT_EQ(h.stats(w).records_skipped, 1);
  EXPECT_EQ(h.stats(w).records_dead_lettered, 0);
  EXPECT_EQ(h.stats(w).events_acked, 10);
  EXPECT_TRUE(h.worker_running(w));
  EXPECT_EQ(h.committed("skip", "views"), (std::map<TopicPartition, int64_t>{{{"views", 0}, 10}}));
  bool logged = false;
  for (const auto& line : h.worker_log(w)) logged = logged || line.find("views[0]@4") != std::string::npos;
  EXPECT_TRUE(logged) << h.dump_logs();
  stop_and_wait(h, w);
}

TEST(BadInputSim, DeadLetterKeepsTheRecordWithItsOrigin) {
  ViewsState st;
  AppHarness h({.seed = seed(92)});
  create_topics(h, {{"views", 1}});
  const int w = h.add_worker(views_app("dlq", st),
                             [](AppSettings& s) { s.bad_record_policy = BadRecordPolicy::kDeadLetter; });
  const auto input = views_with_garbage();
  ASSERT_EQ(h.produce(input), 10);
  ASSERT_TRUE(h.run_until([&] { return st.pages.size() >= 9 && h.stats(w).events_acked >= 10; }, kWaitMs))
      << h.dump_logs();
  h.run_for(2500);
  EXPECT_EQ(st.pages, expected_pages());
  EXPECT_EQ(h.stats(w).records_dead_lettered, 1);
  EXPECT_EQ(h.stats(w).records_skipped, 0);
  EXPECT_TRUE(h.worker_running(w));
  EXPECT_EQ(h.committed("dlq", "views"), (std::map<TopicPartition, int64_t>{{{"views", 0}, 10}}));

  const auto dead = h.read_all("dlq-dead-letters");
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0].value, input[4].value);
  EXPECT_EQ(dead[0].key, input[4].key);
  EXPECT_EQ(header(dead[0], kDeadLetterTopicHeader), std::optional<std::string>("views"));
  EXPECT_EQ(header(dead[0], kDeadLetterPartitionHeader), std::optional<std::string>("0"));
  EXPECT_EQ(header(dead[0], kDeadLetterOffsetHeader), std::optional<std::string>("4"));
  const auto error = header(dead[0], kDeadLetterErrorHeader);
  ASSERT_TRUE(error.has_value());
  EXPECT_FALSE(error->empty());
  stop_and_wait(h, w);
}

}  // namespace
}  // namespace mephisto::apptest
