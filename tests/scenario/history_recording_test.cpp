// The simulated clients record what they did into an attached History, and read_final_log resolves
// transaction outcomes: a tiny world with one transactional producer (one committed and one aborted
// transaction) and two consumers (a read_committed group member and a read_uncommitted assign()-only one).
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "sim/client/sim_broker_client.h"
#include "sim/cluster/cluster.h"
#include "sim/event_log.h"
#include "sim/executor.h"
#include "sim/history.h"
#include "sim/scenario/checkers.h"
#include "sim/sim_kafka.h"

namespace mephisto::sim {
namespace {

using scenario::LogRecord;

constexpr char kTopic[] = "events";

struct WorldOutcome {
  bool done = false;
  std::vector<std::string> committed_reads;    // values the read_committed consumer returned
  std::vector<std::string> uncommitted_reads;  // values the read_uncommitted consumer returned
  scenario::TopicLog final_log;
  ProcessId process = kWorld;
  uint64_t run_hash = 0;
};

// Runs the world with `history` attached (or none) and returns what the application saw.
WorldOutcome run_world(uint64_t seed, History* history) {
  EventLog log;
  auto executor = std::make_unique<Executor>(seed, &log);
  auto kafka = std::make_unique<SimKafka>(*executor, SimKafkaConfig{});
  kafka->set_history(history);
  WorldOutcome out;
  SimKafka* k = kafka.get();
  out.process = executor->add_process("app", [k, &out](ProcessContext& context) {
    auto client = make_sim_broker_client(*k, context);
    auto admin = client->admin();
    ASSERT_TRUE(admin.ok());
    ASSERT_TRUE((*admin)->create_topic(TopicSpec{kTopic, 2, 3, {}}, 30000).ok());

    ProducerConfig pc;
    pc.transactional_id = "txn-1";
    auto producer = client->producer(pc);
    ASSERT_TRUE(producer.ok());
    Producer& p = **producer;
    ASSERT_TRUE(p.init_transactions(30000).ok());
    ASSERT_TRUE(p.begin_transaction().ok());
    for (const char* v : {"c0", "c1", "c2", "c3"})
      ASSERT_TRUE(
          p.send(ProducerRecord{kTopic, -1, std::string("k") + v[1], std::string(v), {}, -1}, nullptr).ok());
    ASSERT_TRUE(p.commit_transaction(30000).ok());
    ASSERT_TRUE(p.begin_transaction().ok());
    for (const char* v : {"a0", "a1"})
      ASSERT_TRUE(
          p.send(ProducerRecord{kTopic, -1, std::string("k") + v[1], std::string(v), {}, -1}, nullptr).ok());
    ASSERT_TRUE(p.flush(30000).ok());
    ASSERT_TRUE(p.abort_transaction(30000).ok());

    ConsumerConfig cc;
    cc.group_id = "group-1";
    cc.isolation_level = IsolationLevel::kReadCommitted;
    auto consumer = client->consumer(cc);
    ASSERT_TRUE(consumer.ok());
    ASSERT_TRUE((*consumer)->subscribe({kTopic}, nullptr).ok());
    std::map<TopicPartition, int64_t> next;
    for (int i = 0; i < 200 && out.committed_reads.size() < 4; ++i) {
      auto polled = (*consumer)->poll(100);
      ASSERT_TRUE(polled.ok());
      for (const auto& r : *polled) {
        out.committed_reads.push_back(*r.value);
        next[TopicPartition{r.topic, r.partition}] = r.offset + 1;
      }
    }
    ASSERT_TRUE((*consumer)->commit(next, 30000).ok());
    ASSERT_TRUE((*consumer)->close().ok());

    ConsumerConfig uc;
    uc.isolation_level = IsolationLevel::kReadUncommitted;
    auto reader = client->consumer(uc);
    ASSERT_TRUE(reader.ok());
    ASSERT_TRUE((*reader)->assign({TopicPartition{kTopic, 0}, TopicPartition{kTopic, 1}}).ok());
    for (int i = 0; i < 200 && out.uncommitted_reads.size() < 6; ++i) {
      auto polled = (*reader)->poll(100);
      ASSERT_TRUE(polled.ok());
      for (const auto& r : *polled) out.uncommitted_reads.push_back(*r.value);
    }
    out.done = true;
  });
  executor->start(out.process);
  executor->run_until([&out] { return out.done; }, 600000);
  out.final_log = scenario::read_final_log(kafka->cluster(), kTopic);
  // Clients refer to the SimKafka: end the process before the cluster goes.
  if (executor->running(out.process)) executor->crash(out.process);
  out.run_hash = log.hash();
  kafka.reset();
  executor.reset();
  return out;
}

std::vector<const HistoryEvent*> of_kind(const History& history, HistoryKind kind) {
  std::vector<const HistoryEvent*> out;
  for (const auto& e : history.events())
    if (e.kind == kind) out.push_back(&e);
  return out;
}

TEST(HistoryRecording, AcksPollsAndTransactionOutcomesAreRecorded) {
  History history;
  const WorldOutcome out = run_world(7, &history);
  ASSERT_TRUE(out.done);
  ASSERT_FALSE(history.truncated());

  // Final log: the first transaction committed, the second aborted; markers are not records.
  std::map<std::string, LogRecord> by_value;
  for (const auto& [partition, records] : out.final_log)
    for (const auto& r : records) by_value[*r.value] = r;
  ASSERT_EQ(by_value.size(), 6u);
  for (const char* v : {"c0", "c1", "c2", "c3"}) EXPECT_EQ(by_value[v].status, LogRecord::kCommitted) << v;
  for (const char* v : {"a0", "a1"}) EXPECT_EQ(by_value[v].status, LogRecord::kAborted) << v;

  // Every record acked once, at the offset the final log holds it.
  const auto acks = of_kind(history, HistoryKind::kSendAcked);
  ASSERT_EQ(acks.size(), 6u);
  std::set<uint64_t> producer_clients;
  for (const HistoryEvent* e : acks) {
    producer_clients.insert(e->client);
    EXPECT_EQ(e->transactional_id, "txn-1");
    EXPECT_EQ(e->process, out.process);
    EXPECT_EQ(e->incarnation, 1u);
    const LogRecord& r = by_value[*e->value];
    EXPECT_EQ(e->offset, r.offset) << *e->value;
    EXPECT_EQ(e->key, r.key);
    EXPECT_EQ(out.final_log.at(e->tp.partition).size() > 0, true);
  }
  EXPECT_EQ(producer_clients.size(), 1u);
  EXPECT_TRUE(of_kind(history, HistoryKind::kSendFailed).empty());

  // The polls are exactly what poll() handed to the application, matching the acks.
  const auto polls = of_kind(history, HistoryKind::kPolled);
  std::vector<std::string> rc, ru;
  std::map<uint64_t, bool> isolation_by_client;
  for (const HistoryEvent* e : polls) {
    (e->read_committed ? rc : ru).push_back(*e->value);
    isolation_by_client[e->client] = e->read_committed;
    const LogRecord& r = by_value[*e->value];
    EXPECT_EQ(e->offset, r.offset);
    EXPECT_EQ(e->tp.topic, kTopic);
    if (e->read_committed)
      EXPECT_EQ(e->group, "group-1");
    else
      EXPECT_EQ(e->group, "");
  }
  EXPECT_EQ(rc, out.committed_reads);
  EXPECT_EQ(ru, out.uncommitted_reads);
  EXPECT_EQ(isolation_by_client.size(), 2u);
  EXPECT_EQ(rc.size(), 4u);
  EXPECT_EQ(ru.size(), 6u);  // read_uncommitted sees the aborted records too
  EXPECT_EQ(producer_clients.count(isolation_by_client.begin()->first), 0u) << "client ids are per instance";

  // Group assignment with a generation; assign() with -1; positions; the consumer's commit; revocation on
  // close.
  const auto assigned = of_kind(history, HistoryKind::kAssigned);
  ASSERT_EQ(assigned.size(), 4u);
  int group_assignments = 0;
  for (const HistoryEvent* e : assigned) {
    if (e->group == "group-1") {
      ++group_assignments;
      EXPECT_GE(e->generation, 1);
    } else {
      EXPECT_EQ(e->generation, -1);
    }
  }
  EXPECT_EQ(group_assignments, 2);
  EXPECT_EQ(of_kind(history, HistoryKind::kPositioned).size(), 4u);
  EXPECT_EQ(of_kind(history, HistoryKind::kRevoked).size(), 2u);
  const auto commits = of_kind(history, HistoryKind::kOffsetsCommitted);
  EXPECT_FALSE(commits.empty());
  for (const HistoryEvent* e : commits) EXPECT_EQ(e->group, "group-1");

  // Transaction events, in order: commit started, committed, aborted.
  std::vector<HistoryKind> txn;
  for (const auto& e : history.events())
    if (e.kind == HistoryKind::kTxnCommitStarted || e.kind == HistoryKind::kTxnCommitted ||
        e.kind == HistoryKind::kTxnAborted) {
      txn.push_back(e.kind);
      EXPECT_EQ(e.transactional_id, "txn-1");
    }
  EXPECT_EQ(txn, (std::vector<HistoryKind>{HistoryKind::kTxnCommitStarted, HistoryKind::kTxnCommitted,
                                           HistoryKind::kTxnAborted}));

  // Times never go backwards in the history.
  int64_t last_ms = 0;
  for (const auto& e : history.events()) {
    EXPECT_GE(e.time_ms, last_ms);
    last_ms = e.time_ms;
  }

  // The checkers find this clean history clean, and the uncommitted reads of aborted records are not
  // aborted-reads (they were read_uncommitted).
  scenario::CheckInput in;
  in.history = &history;
  in.input_topic = kTopic;
  in.input_log = out.final_log;
  in.group = "group-1";
  const auto verdicts =
      scenario::run_checkers(in,
                             {mephisto::scenario::ABORTED_READS, mephisto::scenario::INCONSISTENT_OFFSETS,
                              mephisto::scenario::NON_MONOTONIC, mephisto::scenario::POLL_SKIPS},
                             {});
  for (const auto& v : verdicts) {
    if (v.status == scenario::VerdictStatus::kNotChecked) continue;
    EXPECT_EQ(v.status, scenario::VerdictStatus::kHeld)
        << scenario::invariant_name(v.invariant) << ": " << (v.examples.empty() ? "" : v.examples[0].text);
  }
}

TEST(HistoryRecording, RecordingChangesNothingTheApplicationSees) {
  History history;
  const WorldOutcome with = run_world(11, &history);
  const WorldOutcome without = run_world(11, nullptr);
  EXPECT_EQ(with.committed_reads, without.committed_reads);
  EXPECT_EQ(with.uncommitted_reads, without.uncommitted_reads);
  EXPECT_EQ(with.run_hash, without.run_hash) << "recording must not change the run (random draws, order)";
  EXPECT_FALSE(history.events().empty());
}

TEST(HistoryRecording, TruncatesAtTheLimit) {
  History history(3);
  const WorldOutcome out = run_world(7, &history);
  ASSERT_TRUE(out.done);
  EXPECT_EQ(history.events().size(), 3u);
  EXPECT_TRUE(history.truncated());
}

}  // namespace
}  // namespace mephisto::sim
