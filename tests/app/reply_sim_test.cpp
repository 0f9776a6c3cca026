// Agents fed by the app itself: cast, send with reply_to, ask with reply, and ask timeouts.
#include <gtest/gtest.h>

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "tests/app/sim_support.h"

namespace mephisto::apptest {
namespace {

TEST(ReplySim, CastDeliversToTheAgentsOwnTopic) {
  struct State {
    std::multiset<std::string> received;
    std::vector<bool> cast_ok;
  } st;
  AppHarness h({.seed = seed(21)});
  const AppDefinition casting = definition("cast", [&st](App& app) {
    auto greeter = app.agent<std::string, std::string>("greeter", [&st](StrStream& stream) {
      for (auto& event : stream) st.received.insert(event.key() + "=" + event.value());
    });
    app.task("caster", [&st, greeter] {
      for (int i = 0; i < 10; ++i) st.cast_ok.push_back(greeter.cast("k" + std::to_string(i), "hello").ok());
    });
  });
  const int w = h.add_worker(casting);
  ASSERT_TRUE(h.run_until([&] { return st.received.size() >= 10; }, kWaitMs)) << h.dump_logs();
  EXPECT_EQ(st.cast_ok, std::vector<bool>(10, true));
  std::multiset<std::string> expected;
  for (int i = 0; i < 10; ++i) expected.insert("k" + std::to_string(i) + "=hello");
  EXPECT_EQ(st.received, expected);
  EXPECT_EQ(h.stats(w).timer_runs, 1);  // the task, once
  stop_and_wait(h, w);
  EXPECT_EQ(values_of(h.read_all("cast-greeter")).size(), 10u);
}

TEST(ReplySim, SendWithReplyToPutsTheYieldedValueOnTheReplyTopic) {
  struct State {
    std::vector<bool> sent_ok;
    int processed = 0;
  } st;
  AppHarness h({.seed = seed(22)});
  create_topics(h, {{"answers", 1}});
  const AppDefinition doubling = definition("dbl", [&st](App& app) {
    auto doubler = app.agent<std::string, std::string, std::string>(
        "doubler", [&st](StrStream& stream, Output<std::string>& output) {
          for (auto& event : stream) {
            ++st.processed;
            output.yield(event.value() + event.value());
          }
        });
    app.task("requester", [&st, doubler] {
      for (int i = 0; i < 5; ++i) {
        st.sent_ok.push_back(doubler
                                 .send("k" + std::to_string(i), "ab" + std::to_string(i), -1, "answers",
                                       "corr-" + std::to_string(i))
                                 .ok());
      }
      // No reply_to: processed, nothing is replied.
      st.sent_ok.push_back(doubler.send("k", "quiet").ok());
    });
  });
  const int w = h.add_worker(doubling);
  ASSERT_TRUE(h.run_until([&] { return st.processed >= 6 && h.stats(w).records_delivered >= 11; }, kWaitMs))
      << h.dump_logs();
  EXPECT_EQ(st.sent_ok, std::vector<bool>(6, true));
  EXPECT_EQ(h.stats(w).replies_sent, 5);
  const auto replies = h.read_all("answers");
  ASSERT_EQ(replies.size(), 5u);
  std::set<std::pair<std::string, std::string>> got;
  for (const auto& r : replies) {
    std::optional<std::string> header;
    for (const auto& hd : r.headers) {
      if (hd.key == kCorrelationIdHeader) header = hd.value;
    }
    EXPECT_EQ(header, r.key) << "the reply carries its correlation id as key and header";
    got.insert({r.key.value_or(""), r.value.value_or("")});
  }
  std::set<std::pair<std::string, std::string>> expected;
  for (int i = 0; i < 5; ++i) {
    const std::string v = "ab" + std::to_string(i);
    expected.insert({"corr-" + std::to_string(i), v + v});
  }
  EXPECT_EQ(got, expected);
  stop_and_wait(h, w);
}

TEST(ReplySim, AskWaitsForTheReply) {
  struct State {
    std::vector<std::string> replies;
    std::vector<std::string> errors;
    bool done = false;
  } st;
  AppHarness h({.seed = seed(23)});
  const AppDefinition asking = definition("ask", [&st](App& app) {
    auto doubler = app.agent<std::string, std::string, std::string>(
        "doubler", [](StrStream& stream, Output<std::string>& output) {
          for (auto& event : stream) output.yield(event.value() + event.value());
        });
    app.task("asker", [&st, doubler] {
      for (int i = 0; i < 5; ++i) {
        auto reply = doubler.ask("k" + std::to_string(i), "x" + std::to_string(i), 30000);
        if (reply.ok()) {
          st.replies.push_back(reply.value());
        } else {
          st.errors.push_back(reply.error().to_string());
        }
      }
      st.done = true;
    });
  });
  const int w = h.add_worker(asking);
  ASSERT_TRUE(h.run_until([&] { return st.done; }, kWaitMs)) << h.dump_logs();
  EXPECT_TRUE(st.errors.empty()) << st.errors.front();
  EXPECT_EQ(st.replies, (std::vector<std::string>{"x0x0", "x1x1", "x2x2", "x3x3", "x4x4"}));
  EXPECT_EQ(h.stats(w).asks, 5);
  EXPECT_EQ(h.stats(w).ask_timeouts, 0);
  EXPECT_EQ(h.stats(w).replies_sent, 5);
  stop_and_wait(h, w);
}

TEST(ReplySim, AskTimesOutWhenNobodyReplies) {
  struct State {
    std::optional<ErrorCode> silent;  // the agent runs but never replies to this value
    std::optional<ErrorCode> nobody;  // no agent reads the topic at all
    std::optional<std::string> loud;  // a reply after the timeouts: the reply machinery still works
    int64_t silent_waited_ms = -1;
    bool done = false;
  } st;
  AppHarness h({.seed = seed(24)});
  const AppDefinition asking = definition("asktimeout", [&st](App& app) {
    auto picky = app.agent<std::string, std::string, std::string>(
        "picky", [](StrStream& stream, Output<std::string>& output) {
          for (auto& event : stream) {
            if (event.value() != "silent") output.yield("heard " + event.value());
          }
        });
    TopicOptions options;
    options.create = true;
    options.partitions = 1;
    auto unread = app.topic<std::string, std::string>("asktimeout-unread", options);
    Agent<std::string, std::string, std::string> ghost(nullptr, unread);
    app.task("asker", [&st, &app, picky, ghost] {
      const int64_t start = now_ms(app);
      auto silent = picky.ask("k", "silent", 3000);
      st.silent_waited_ms = now_ms(app) - start;
      st.silent = silent.code();
      st.nobody = ghost.ask("k", "anyone?", 2000).code();
      auto loud = picky.ask("k", "loud", 30000);
      if (loud.ok()) st.loud = loud.value();
      st.done = true;
    });
  });
  const int w = h.add_worker(asking);
  ASSERT_TRUE(h.run_until([&] { return st.done; }, kWaitMs)) << h.dump_logs();
  EXPECT_EQ(st.silent, ErrorCode::kTimedOut);
  EXPECT_GE(st.silent_waited_ms, 3000);
  EXPECT_LT(st.silent_waited_ms, 5000);  // the first ask also creates the reply topic
  EXPECT_EQ(st.nobody, ErrorCode::kTimedOut);
  EXPECT_EQ(st.loud, std::optional<std::string>("heard loud"));
  EXPECT_EQ(h.stats(w).asks, 3);
  EXPECT_EQ(h.stats(w).ask_timeouts, 2);
  EXPECT_TRUE(h.worker_running(w));
  stop_and_wait(h, w);
}

TEST(ReplySim, AsksAreAnsweredByWhicheverWorkerOwnsThePartition) {
  struct State {
    std::map<std::string, std::vector<std::string>> replies;   // asking worker -> replies
    std::map<std::string, std::set<std::string>> answered_by;  // asking worker -> answering workers
    std::vector<std::string> errors;
    int done = 0;
  } st;
  AppHarness h({.seed = seed(25)});
  const AppDefinition asking = definition("askx", [&st](App& app) {
    auto echo = app.agent<std::string, std::string, std::string>(
        "echo", [&app](StrStream& stream, Output<std::string>& output) {
          for (auto& event : stream) output.yield(app.settings().worker_id + "|" + event.value());
        });
    app.task("asker", [&st, &app, echo] {
      // Wait for the group to settle (both workers own partitions of the agent's topic).
      sleep_ms(app, 8000);
      const std::string me = app.settings().worker_id;
      for (int i = 0; i < 12; ++i) {
        auto reply = echo.ask("key-" + std::to_string(i), me + "#" + std::to_string(i), 20000);
        if (!reply.ok()) {
          st.errors.push_back(me + ": " + reply.error().to_string());
          continue;
        }
        const std::string& value = reply.value();
        st.replies[me].push_back(value.substr(value.find('|') + 1));
        st.answered_by[me].insert(value.substr(0, value.find('|')));
      }
      ++st.done;
    });
  });
  const int w0 = h.add_worker(asking);
  const int w1 = h.add_worker(asking);
  ASSERT_TRUE(h.run_until([&] { return st.done >= 2; }, kWaitMs)) << h.dump_logs();
  EXPECT_TRUE(st.errors.empty()) << st.errors.front();
  for (const std::string me : {"worker-0", "worker-1"}) {
    std::vector<std::string> expected;
    for (int i = 0; i < 12; ++i) expected.push_back(me + "#" + std::to_string(i));
    EXPECT_EQ(st.replies[me], expected) << me;
    EXPECT_EQ(st.answered_by[me], (std::set<std::string>{"worker-0", "worker-1"}))
        << me << ": 12 keys over 4 partitions should reach both workers";
  }
  EXPECT_EQ(h.stats(w0).replies_sent + h.stats(w1).replies_sent, 24);
  stop_and_wait(h, w0);
  stop_and_wait(h, w1);
}

}  // namespace
}  // namespace mephisto::apptest
