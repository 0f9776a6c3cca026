// Produce/fetch ordering, acks, the high watermark, ISR shrink/expand, min.insync.replicas, failover (clean and
// unclean), follower truncation, restarts.
#include <algorithm>

#include "cluster_fixture.h"

namespace mephisto::sim::testing {
namespace {

class ReplicationTest : public ClusterFixture {
 protected:
  // Cuts every link to and from `broker` (replica fetches, markers).
  void isolate(BrokerId broker) {
    cluster().set_broker_link_filter([broker](BrokerId from, BrokerId to) { return from != broker && to != broker; });
  }
  void heal() { cluster().set_broker_link_filter(nullptr); }
  BrokerId follower_of(const TopicPartition& tp) {
    const auto s = state(tp);
    for (BrokerId b : s.replicas) {
      if (b != s.leader) return b;
    }
    return kNoBroker;
  }
  int64_t leo(const TopicPartition& tp, BrokerId b) {
    for (auto [id, leo] : state(tp).log_end_offsets) {
      if (id == b) return leo;
    }
    return -1;
  }
};

TEST_F(ReplicationTest, ProduceAssignsOffsetsInOrderAndFetchReturnsThem) {
  start();
  ASSERT_EQ(create_topic("t", 1, 3), ErrorCode::kNone);
  const TopicPartition tp{"t", 0};
  EXPECT_EQ(produce(tp, batch_of({"a", "b"})).base_offset, 0);
  EXPECT_EQ(produce(tp, batch_of({"c"})).base_offset, 2);
  EXPECT_EQ(produce(tp, batch_of({"d", "e", "f"})).base_offset, 3);
  auto data = fetch(tp, 0);
  EXPECT_EQ(data.error, ErrorCode::kNone);
  EXPECT_EQ(data.high_watermark, 6);
  EXPECT_EQ(values(data.batches), (std::vector<std::string>{"a", "b", "c", "d", "e", "f"}));
  // Fetching from the middle of a batch returns the whole batch (the client skips what it already has).
  data = fetch(tp, 4);
  ASSERT_FALSE(data.batches.empty());
  EXPECT_EQ(data.batches[0].base_offset, 3);
  EXPECT_EQ(values(data.batches, 4), (std::vector<std::string>{"e", "f"}));
  EXPECT_EQ(fetch(tp, 7).error, ErrorCode::kOffsetOutOfRange);
  EXPECT_EQ(fetch(tp, 0, IsolationLevel::kReadUncommitted, other_than(leader(tp))).error,
            ErrorCode::kNotLeaderOrFollower);
}

TEST_F(ReplicationTest, ProduceValidation) {
  ClusterConfig config = default_config();
  config.max_message_bytes = 1000;
  start(config);
  ASSERT_EQ(create_topic("t", 1, 3), ErrorCode::kNone);
  ASSERT_EQ(create_topic("c", 1, 3, {{"cleanup.policy", "compact"}}), ErrorCode::kNone);
  const TopicPartition tp{"t", 0};
  EXPECT_EQ(produce({"nope", 0}, batch_of({"a"}), -1, 1).error, ErrorCode::kUnknownTopicOrPartition);
  EXPECT_EQ(produce({"t", 5}, batch_of({"a"}), -1, 1).error, ErrorCode::kUnknownTopicOrPartition);
  EXPECT_EQ(produce(tp, batch_of({"a"}), -1, other_than(leader(tp))).error, ErrorCode::kNotLeaderOrFollower);
  EXPECT_EQ(produce(tp, batch_of({std::string(2000, 'x')})).error, ErrorCode::kMessageTooLarge);
  EXPECT_EQ(produce(tp, batch_of({"a"}), 2).error, ErrorCode::kInvalidRequiredAcks);
  EXPECT_EQ(produce({"c", 0}, batch_of({"no key"})).error, ErrorCode::kInvalidRecord);
  EXPECT_EQ(produce({"c", 0}, batch_of({"keyed"}, "k")).error, ErrorCode::kNone);
  EXPECT_EQ(produce({"__consumer_offsets", 0}, batch_of({"x"}, "k")).error, ErrorCode::kInvalidTopicException);
  // Nothing of the failed batches was written.
  EXPECT_EQ(state(tp).high_watermark, 0);
}

TEST_F(ReplicationTest, AcksAllWaitsForTheIsrAcksOneDoesNot) {
  start();
  ASSERT_EQ(create_topic("t", 1, 3), ErrorCode::kNone);
  const TopicPartition tp{"t", 0};
  run_for(1000);  // followers settle into their long polls
  auto all = send(leader(tp), produce_request(tp, batch_of({"a"}), -1));
  EXPECT_FALSE(all->done()) << "acks=all must wait for the followers";
  EXPECT_EQ(state(tp).high_watermark, 0);
  ASSERT_TRUE(wait(all));
  EXPECT_GT(now(), 1000);
  EXPECT_EQ(all->as<ProduceResponse>().partitions[0].error, ErrorCode::kNone);
  EXPECT_EQ(state(tp).high_watermark, 1);
  for (auto [b, leo] : state(tp).log_end_offsets) EXPECT_EQ(leo, 1) << "replica " << b;

  auto one = send(leader(tp), produce_request(tp, batch_of({"b"}), 1));
  ASSERT_TRUE(one->done()) << "acks=1 answers once the leader has it";
  EXPECT_EQ(one->as<ProduceResponse>().partitions[0].base_offset, 1);
  // Not visible to consumers until replicated.
  EXPECT_EQ(values(fetch(tp, 0).batches), std::vector<std::string>{"a"});
  run_for(100);
  EXPECT_EQ(values(fetch(tp, 0).batches), (std::vector<std::string>{"a", "b"}));
}

TEST_F(ReplicationTest, AcksAllTimesOutWhenFollowersCannotFetch) {
  start();
  ASSERT_EQ(create_topic("t", 1, 3), ErrorCode::kNone);
  const TopicPartition tp{"t", 0};
  isolate(follower_of(tp));
  auto r = call<ProduceResponse>(leader(tp), produce_request(tp, batch_of({"a"}), -1, 2000));
  EXPECT_EQ(r.partitions[0].error, ErrorCode::kRequestTimedOut);
}

TEST_F(ReplicationTest, IsrShrinksAfterLagTimeAndExpandsWhenCaughtUp) {
  ClusterConfig config = default_config();
  config.replica_lag_time_max_ms = 10000;
  start(config);
  ASSERT_EQ(create_topic("t", 1, 3), ErrorCode::kNone);
  const TopicPartition tp{"t", 0};
  const BrokerId lagging = follower_of(tp);
  isolate(lagging);
  auto pending = send(leader(tp), produce_request(tp, batch_of({"a"}), -1, 60000));
  run_for(4000);
  EXPECT_FALSE(pending->done());
  EXPECT_EQ(state(tp).isr.size(), 3u);
  ASSERT_TRUE(wait(pending, 30000));
  // The lagging follower left the ISR, which let the high watermark (and the acks=all produce) through.
  EXPECT_EQ(pending->as<ProduceResponse>().partitions[0].error, ErrorCode::kNone);
  const auto shrunk = state(tp);
  EXPECT_EQ(shrunk.isr.size(), 2u);
  EXPECT_EQ(std::count(shrunk.isr.begin(), shrunk.isr.end(), lagging), 0);
  EXPECT_GE(now(), 10000);
  heal();
  run_for(3000);
  EXPECT_EQ(state(tp).isr.size(), 3u);
  EXPECT_EQ(leo(tp, lagging), 1);
}

TEST_F(ReplicationTest, MinInsyncReplicasRejectsWritesWhenTheIsrIsTooSmall) {
  start();
  ASSERT_EQ(create_topic("t", 1, 3, {{"min.insync.replicas", "3"}}), ErrorCode::kNone);
  const TopicPartition tp{"t", 0};
  EXPECT_EQ(produce(tp, batch_of({"a"})).error, ErrorCode::kNone);
  cluster().crash_broker(follower_of(tp));
  EXPECT_EQ(state(tp).isr.size(), 2u);
  EXPECT_EQ(produce(tp, batch_of({"b"})).error, ErrorCode::kNotEnoughReplicas);
  // acks=1 does not check min.insync.replicas.
  EXPECT_EQ(produce(tp, batch_of({"c"}), 1).error, ErrorCode::kNone);
}

TEST_F(ReplicationTest, CleanFailoverKeepsAcknowledgedRecords) {
  start();
  ASSERT_EQ(create_topic("t", 1, 3), ErrorCode::kNone);
  const TopicPartition tp{"t", 0};
  for (int i = 0; i < 10; ++i) ASSERT_EQ(produce(tp, batch_of({"v" + std::to_string(i)})).error, ErrorCode::kNone);
  const auto before = state(tp);
  cluster().crash_broker(before.leader);
  const auto after = state(tp);
  EXPECT_NE(after.leader, before.leader);
  EXPECT_NE(after.leader, kNoBroker);
  EXPECT_EQ(after.leader_epoch, before.leader_epoch + 1);
  EXPECT_EQ(after.isr.size(), 2u);
  run_for(100);  // the new leader's high watermark catches up as the remaining follower fetches
  auto data = fetch(tp, 0);
  EXPECT_EQ(data.high_watermark, 10);
  EXPECT_EQ(values(data.batches).size(), 10u);
  // The old leader comes back as a follower and rejoins the ISR.
  cluster().restart_broker(before.leader);
  EXPECT_EQ(produce(tp, batch_of({"after"})).error, ErrorCode::kNone);
  run_for(1000);
  EXPECT_EQ(state(tp).isr.size(), 3u);
  EXPECT_EQ(leo(tp, before.leader), 11);
  EXPECT_EQ(state(tp).leader, after.leader);
}

TEST_F(ReplicationTest, NoLiveInSyncReplicaLeavesThePartitionOfflineUntilItReturns) {
  start();
  ASSERT_EQ(create_topic("t", 1, 2), ErrorCode::kNone);
  const TopicPartition tp{"t", 0};
  const BrokerId first = leader(tp);
  const BrokerId second = follower_of(tp);
  ASSERT_EQ(produce(tp, batch_of({"a"})).error, ErrorCode::kNone);
  cluster().crash_broker(second);
  EXPECT_EQ(state(tp).isr, std::vector<BrokerId>{first});
  ASSERT_EQ(produce(tp, batch_of({"b"})).error, ErrorCode::kNone);  // acked by the ISR {first}
  cluster().crash_broker(first);
  cluster().restart_broker(second);
  EXPECT_EQ(leader(tp), kNoBroker) << "clean election cannot pick an out-of-sync replica";
  MetadataRequest md;
  md.topics = std::vector<std::string>{"t"};
  EXPECT_EQ(call<MetadataResponse>(second, md).topics[0].partitions[0].error, ErrorCode::kLeaderNotAvailable);
  cluster().restart_broker(first);
  EXPECT_EQ(leader(tp), first);
  run_for(100);
  EXPECT_EQ(values(fetch(tp, 0).batches), (std::vector<std::string>{"a", "b"}));
}

TEST_F(ReplicationTest, UncleanElectionLosesAcknowledgedRecords) {
  ClusterConfig config = default_config();
  config.unclean_leader_election = true;
  start(config);
  ASSERT_EQ(create_topic("t", 1, 2), ErrorCode::kNone);
  const TopicPartition tp{"t", 0};
  const BrokerId first = leader(tp);
  const BrokerId second = follower_of(tp);
  ASSERT_EQ(produce(tp, batch_of({"a"})).error, ErrorCode::kNone);
  cluster().crash_broker(second);
  ASSERT_EQ(produce(tp, batch_of({"b"})).error, ErrorCode::kNone);  // acknowledged
  cluster().crash_broker(first);
  cluster().restart_broker(second);
  EXPECT_EQ(leader(tp), second) << "unclean election picks the out-of-sync replica";
  ASSERT_EQ(produce(tp, batch_of({"c"})).error, ErrorCode::kNone);
  EXPECT_EQ(values(fetch(tp, 0).batches), (std::vector<std::string>{"a", "c"}));  // "b" is gone
  // The old leader returns, truncates its divergent "b" and copies "c".
  cluster().restart_broker(first);
  run_for(1000);
  const auto log_first = cluster().replica_log(tp, first);
  EXPECT_EQ(values(log_first), (std::vector<std::string>{"a", "c"}));
  EXPECT_EQ(state(tp).isr.size(), 2u);
}

TEST_F(ReplicationTest, DivergentFollowerTruncatesToTheNewLeader) {
  ClusterConfig config = default_config();
  config.replica_lag_time_max_ms = 60000;
  start(config);
  ASSERT_EQ(create_topic("t", 1, 3), ErrorCode::kNone);
  const TopicPartition tp{"t", 0};
  ASSERT_EQ(produce(tp, batch_of({"a"})).error, ErrorCode::kNone);
  const BrokerId old_leader = leader(tp);
  // The leader appends with acks=1 while cut off: nobody else gets it.
  isolate(old_leader);
  ASSERT_EQ(produce(tp, batch_of({"lost1", "lost2"}), 1).error, ErrorCode::kNone);
  EXPECT_EQ(leo(tp, old_leader), 3);
  cluster().crash_broker(old_leader);
  heal();
  const BrokerId new_leader = leader(tp);
  ASSERT_NE(new_leader, kNoBroker);
  ASSERT_EQ(produce(tp, batch_of({"b"})).error, ErrorCode::kNone);
  cluster().restart_broker(old_leader);
  run_for(1000);
  EXPECT_EQ(values(cluster().replica_log(tp, old_leader)), (std::vector<std::string>{"a", "b"}));
  bool truncated = false;
  for (const auto& e : event_log().events()) truncated = truncated || e.kind == "truncate";
  EXPECT_TRUE(truncated);
}

TEST_F(ReplicationTest, MoveLeaderBumpsTheEpoch) {
  start();
  ASSERT_EQ(create_topic("t", 1, 3), ErrorCode::kNone);
  const TopicPartition tp{"t", 0};
  ASSERT_EQ(produce(tp, batch_of({"a"})).error, ErrorCode::kNone);
  const auto before = state(tp);
  ASSERT_TRUE(cluster().move_leader(tp).ok());
  const auto after = state(tp);
  EXPECT_NE(after.leader, before.leader);
  EXPECT_EQ(after.leader_epoch, before.leader_epoch + 1);
  EXPECT_EQ(produce(tp, batch_of({"b"}), -1, before.leader).error, ErrorCode::kNotLeaderOrFollower);
  EXPECT_EQ(produce(tp, batch_of({"b"})).error, ErrorCode::kNone);
  EXPECT_EQ(cluster().move_leader({"nope", 0}).code(), ErrorCode::kUnknownTopicOrPartition);
}

TEST_F(ReplicationTest, FetchLongPollsUntilDataOrTimeout) {
  start();
  ASSERT_EQ(create_topic("t", 1, 3), ErrorCode::kNone);
  const TopicPartition tp{"t", 0};
  FetchRequest req;
  req.isolation_level = IsolationLevel::kReadUncommitted;
  req.max_wait_ms = 500;
  req.partitions.push_back({tp, 0, 1 << 20});
  auto empty = send(leader(tp), req);
  EXPECT_FALSE(empty->done());
  const int64_t start_ms = now();
  ASSERT_TRUE(wait(empty));
  EXPECT_EQ(now() - start_ms, 500);
  EXPECT_TRUE(empty->as<FetchResponse>().partitions[0].batches.empty());

  auto parked = send(leader(tp), req);
  run_for(100);
  EXPECT_FALSE(parked->done());
  send(leader(tp), produce_request(tp, batch_of({"x"})));
  ASSERT_TRUE(wait(parked, 400));
  EXPECT_EQ(values(parked->as<FetchResponse>().partitions[0].batches), std::vector<std::string>{"x"});
}

TEST_F(ReplicationTest, ListOffsets) {
  start();
  ASSERT_EQ(create_topic("t", 1, 3), ErrorCode::kNone);
  const TopicPartition tp{"t", 0};
  std::vector<Record> records(3);
  for (int i = 0; i < 3; ++i) records[i].timestamp_ms = 100 * (i + 1);
  ASSERT_EQ(produce(tp, make_batch(std::move(records))).error, ErrorCode::kNone);
  ListOffsetsRequest req;
  req.isolation_level = IsolationLevel::kReadUncommitted;
  req.partitions = {{tp, kEarliestTimestamp}, {tp, kLatestTimestamp}, {tp, 150}, {tp, 1000}};
  auto r = call<ListOffsetsResponse>(leader(tp), req);
  EXPECT_EQ(r.partitions[0].offset, 0);
  EXPECT_EQ(r.partitions[1].offset, 3);
  EXPECT_EQ(r.partitions[2].offset, 1);
  EXPECT_EQ(r.partitions[2].timestamp_ms, 200);
  EXPECT_EQ(r.partitions[3].offset, -1);
  EXPECT_EQ(call<ListOffsetsResponse>(other_than(leader(tp)), req).partitions[0].error,
            ErrorCode::kNotLeaderOrFollower);
}

TEST_F(ReplicationTest, RestartedFollowerCatchesUp) {
  start();
  ASSERT_EQ(create_topic("t", 2, 3), ErrorCode::kNone);
  const TopicPartition tp{"t", 0};
  const BrokerId f = follower_of(tp);
  cluster().crash_broker(f);
  for (int i = 0; i < 20; ++i) ASSERT_EQ(produce(tp, batch_of({"v"})).error, ErrorCode::kNone);
  EXPECT_EQ(leo(tp, f), 0);
  cluster().restart_broker(f);
  run_for(500);
  EXPECT_EQ(leo(tp, f), 20);
  EXPECT_EQ(state(tp).isr.size(), 3u);
}

}  // namespace
}  // namespace mephisto::sim::testing
