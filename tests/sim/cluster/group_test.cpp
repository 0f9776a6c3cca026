// Consumer groups through the coordinator's API: join/sync generations, heartbeats, session expiry, rebalance
// timeouts, leave, committed offsets with generation checks, coordinator moves and failover.
#include "cluster_fixture.h"

namespace mephisto::sim::testing {
namespace {

class GroupTest : public ClusterFixture {
 protected:
  JoinGroupRequest join_request(const std::string& member_id, std::vector<std::string> topics = {"in"},
                                std::string protocol = "range") {
    JoinGroupRequest r;
    r.group_id = "g";
    r.member_id = member_id;
    r.session_timeout_ms = 10000;
    r.rebalance_timeout_ms = 20000;
    r.protocols.push_back({protocol, Subscription{std::move(topics), {}, -1, ""}});
    return r;
  }
  BrokerId gc() { return coordinator(CoordinatorType::kGroup, "g"); }
  std::shared_ptr<Pending> join(const std::string& member_id, const std::string& client = "c") {
    return send(gc(), join_request(member_id), client);
  }
  SyncGroupResponse sync(const JoinGroupResponse& j, std::vector<SyncGroupRequest::MemberAssignment> assignments = {}) {
    SyncGroupRequest r;
    r.group_id = "g";
    r.generation_id = j.generation_id;
    r.member_id = j.member_id;
    r.protocol_name = j.protocol_name;
    r.assignments = std::move(assignments);
    return call<SyncGroupResponse>(gc(), r);
  }
  ErrorCode heartbeat(const std::string& member_id, int32_t generation) {
    return call<HeartbeatResponse>(gc(), HeartbeatRequest{"g", generation, member_id, std::nullopt}).error;
  }
  ErrorCode commit(const std::string& member_id, int32_t generation, int64_t offset) {
    OffsetCommitRequest r;
    r.group_id = "g";
    r.generation_id = generation;
    r.member_id = member_id;
    r.offsets.push_back({{"in", 0}, offset, -1, ""});
    return call<OffsetCommitResponse>(gc(), r).partitions.at(0).error;
  }
  int64_t committed() {
    OffsetFetchRequest r;
    r.group_id = "g";
    r.partitions = std::vector<TopicPartition>{{"in", 0}};
    return call<OffsetFetchResponse>(gc(), r).partitions.at(0).offset;
  }
  // One member joins and syncs alone.
  JoinGroupResponse solo() {
    auto p = join("");
    EXPECT_TRUE(wait(p));
    auto j = p->as<JoinGroupResponse>();
    EXPECT_EQ(j.error, ErrorCode::kNone);
    EXPECT_EQ(sync(j, {{j.member_id, Assignment{{{"in", 0}}, ""}}}).error, ErrorCode::kNone);
    return j;
  }
};

TEST_F(GroupTest, FirstMemberLeadsAndGetsItsAssignment) {
  start();
  auto j = solo();
  EXPECT_EQ(j.generation_id, 1);
  EXPECT_EQ(j.leader, j.member_id);
  EXPECT_EQ(j.protocol_name, "range");
  EXPECT_EQ(j.member_id.rfind("c-", 0), 0u) << "member ids start with the client id: " << j.member_id;
  ASSERT_EQ(j.members.size(), 1u);
  EXPECT_EQ(j.members[0].metadata.topics, std::vector<std::string>{"in"});
  EXPECT_EQ(heartbeat(j.member_id, 1), ErrorCode::kNone);
  // A follower's SyncGroup in Stable returns its assignment again.
  auto again = sync(j);
  EXPECT_EQ(again.assignment.partitions, (std::vector<TopicPartition>{{"in", 0}}));
}

TEST_F(GroupTest, InitialRebalanceDelayWaitsForMoreMembers) {
  ClusterConfig config = default_config();
  config.group_initial_rebalance_delay_ms = 3000;
  start(config);
  auto a = join("", "a");
  run_for(1000);
  auto b = join("", "b");
  run_for(1000);
  EXPECT_FALSE(a->done());
  ASSERT_TRUE(wait(a, 2000));
  ASSERT_TRUE(wait(b, 10));
  EXPECT_EQ(a->as<JoinGroupResponse>().generation_id, 1);
  EXPECT_EQ(b->as<JoinGroupResponse>().generation_id, 1);
  EXPECT_EQ(a->as<JoinGroupResponse>().leader, a->as<JoinGroupResponse>().member_id);
  EXPECT_EQ(a->as<JoinGroupResponse>().members.size(), 2u);
  EXPECT_TRUE(b->as<JoinGroupResponse>().members.empty()) << "only the leader gets the member list";
}

TEST_F(GroupTest, NewMemberTriggersARebalanceAndANewGeneration) {
  start();
  auto first = solo();
  auto second = join("", "d");
  run_for(10);
  EXPECT_FALSE(second->done()) << "waits for the existing member to rejoin";
  EXPECT_EQ(heartbeat(first.member_id, 1), ErrorCode::kRebalanceInProgress);
  auto rejoin = join(first.member_id);
  ASSERT_TRUE(wait(rejoin));
  ASSERT_TRUE(wait(second));
  const auto& lj = rejoin->as<JoinGroupResponse>();
  const auto& fj = second->as<JoinGroupResponse>();
  EXPECT_EQ(lj.generation_id, 2);
  EXPECT_EQ(fj.generation_id, 2);
  EXPECT_EQ(lj.leader, first.member_id) << "the leader stays leader";
  EXPECT_EQ(lj.members.size(), 2u);
  // The follower's SyncGroup waits for the leader's.
  SyncGroupRequest follower_sync;
  follower_sync.group_id = "g";
  follower_sync.generation_id = 2;
  follower_sync.member_id = fj.member_id;
  auto fs = send(gc(), follower_sync);
  run_for(100);
  EXPECT_FALSE(fs->done());
  EXPECT_EQ(sync(lj, {{lj.member_id, Assignment{{{"in", 0}}, ""}}, {fj.member_id, Assignment{{{"in", 1}}, ""}}}).error,
            ErrorCode::kNone);
  ASSERT_TRUE(wait(fs));
  EXPECT_EQ(fs->as<SyncGroupResponse>().assignment.partitions, (std::vector<TopicPartition>{{"in", 1}}));
  // The old generation is stale now.
  EXPECT_EQ(heartbeat(first.member_id, 1), ErrorCode::kIllegalGeneration);
  EXPECT_EQ(commit(first.member_id, 1, 5), ErrorCode::kIllegalGeneration);
  EXPECT_EQ(commit(first.member_id, 2, 5), ErrorCode::kNone);
  EXPECT_EQ(committed(), 5);
}

TEST_F(GroupTest, SessionTimeoutRemovesTheMember) {
  start();
  auto j = solo();
  run_for(5000);
  EXPECT_EQ(heartbeat(j.member_id, 1), ErrorCode::kNone);
  run_for(9000);
  EXPECT_EQ(heartbeat(j.member_id, 1), ErrorCode::kNone);
  run_for(10500);
  EXPECT_EQ(heartbeat(j.member_id, 1), ErrorCode::kUnknownMemberId);
  bool expired = false;
  for (const auto& e : event_log().events()) {
    expired = expired || (e.kind == "group" && e.detail.find("session timeout") != std::string::npos);
  }
  EXPECT_TRUE(expired);
}

TEST_F(GroupTest, RebalanceTimeoutKicksMembersThatDoNotRejoin) {
  start();
  auto first = solo();
  auto second = join("", "late");
  // The first member keeps heartbeating but never rejoins.
  for (int i = 0; i < 8; ++i) {
    run_for(3000);
    (void)heartbeat(first.member_id, 1);
  }
  ASSERT_TRUE(wait(second, 1000));
  const auto& j = second->as<JoinGroupResponse>();
  EXPECT_EQ(j.generation_id, 2);
  EXPECT_EQ(j.leader, j.member_id);
  EXPECT_EQ(j.members.size(), 1u);
  EXPECT_EQ(heartbeat(first.member_id, 1), ErrorCode::kUnknownMemberId);
}

TEST_F(GroupTest, LeaveGroupTriggersARebalance) {
  start();
  auto first = solo();
  LeaveGroupRequest leave;
  leave.group_id = "g";
  leave.members.push_back({first.member_id, std::nullopt});
  leave.members.push_back({"unknown", std::nullopt});
  auto r = call<LeaveGroupResponse>(gc(), leave);
  EXPECT_EQ(r.members[0].error, ErrorCode::kNone);
  EXPECT_EQ(r.members[1].error, ErrorCode::kUnknownMemberId);
  EXPECT_EQ(heartbeat(first.member_id, 1), ErrorCode::kUnknownMemberId);
  // The group is empty (generation 2): simple commits are allowed again.
  EXPECT_EQ(commit("", -1, 9), ErrorCode::kNone);
  EXPECT_EQ(committed(), 9);
}

TEST_F(GroupTest, CommitRules) {
  start();
  EXPECT_EQ(commit("", -1, 1), ErrorCode::kNone) << "a group nobody manages accepts simple commits";
  auto j = solo();
  EXPECT_EQ(commit("", -1, 2), ErrorCode::kUnknownMemberId) << "not while it has members";
  EXPECT_EQ(commit("nobody", 1, 2), ErrorCode::kUnknownMemberId);
  EXPECT_EQ(commit(j.member_id, 7, 2), ErrorCode::kIllegalGeneration);
  EXPECT_EQ(commit(j.member_id, 1, 3), ErrorCode::kNone);
  EXPECT_EQ(committed(), 3);
  OffsetCommitRequest bad;
  EXPECT_EQ(call<OffsetCommitResponse>(gc(), bad).partitions.size(), 0u);
  bad.offsets.push_back({{"in", 0}, 1, -1, ""});
  EXPECT_EQ(call<OffsetCommitResponse>(gc(), bad).partitions[0].error, ErrorCode::kInvalidGroupId);
  OffsetCommitRequest wrong = bad;
  wrong.group_id = "g";
  EXPECT_EQ(call<OffsetCommitResponse>(other_than(gc()), wrong).partitions[0].error, ErrorCode::kNotCoordinator);
  // OffsetFetch of everything committed.
  OffsetFetchRequest all;
  all.group_id = "g";
  auto r = call<OffsetFetchResponse>(gc(), all);
  ASSERT_EQ(r.partitions.size(), 1u);
  EXPECT_EQ(r.partitions[0].offset, 3);
}

TEST_F(GroupTest, JoinValidation) {
  start();
  JoinGroupRequest r = join_request("");
  r.session_timeout_ms = 10;
  EXPECT_EQ(call<JoinGroupResponse>(gc(), r).error, ErrorCode::kInvalidSessionTimeout);
  r = join_request("");
  r.group_id = "";
  EXPECT_EQ(call<JoinGroupResponse>(1, r).error, ErrorCode::kInvalidGroupId);
  r = join_request("");
  r.protocols.clear();
  EXPECT_EQ(call<JoinGroupResponse>(gc(), r).error, ErrorCode::kInconsistentGroupProtocol);
  EXPECT_EQ(call<JoinGroupResponse>(gc(), join_request("ghost")).error, ErrorCode::kUnknownMemberId);
  EXPECT_EQ(call<JoinGroupResponse>(other_than(gc()), join_request("")).error, ErrorCode::kNotCoordinator);
  (void)solo();
  EXPECT_EQ(call<JoinGroupResponse>(gc(), join_request("", {"in"}, "roundrobin")).error,
            ErrorCode::kInconsistentGroupProtocol);
}

TEST_F(GroupTest, CoordinatorMoveKeepsOffsetsAndMembership) {
  start();
  auto j = solo();
  ASSERT_EQ(commit(j.member_id, 1, 11), ErrorCode::kNone);
  const BrokerId before = gc();
  ASSERT_TRUE(cluster().move_coordinator(CoordinatorType::kGroup, "g").ok());
  const BrokerId after = gc();
  EXPECT_NE(before, after);
  EXPECT_EQ(call<HeartbeatResponse>(before, HeartbeatRequest{"g", 1, j.member_id, std::nullopt}).error,
            ErrorCode::kNotCoordinator);
  run_for(50);  // the new leader's high watermark catches up with the replicated log
  EXPECT_EQ(heartbeat(j.member_id, 1), ErrorCode::kNone) << "membership persisted at the last rebalance";
  EXPECT_EQ(committed(), 11);
  EXPECT_EQ(commit(j.member_id, 1, 12), ErrorCode::kNone);
  EXPECT_EQ(committed(), 12);
}

TEST_F(GroupTest, CoordinatorCrashFailsOverWithCommittedOffsets) {
  start();
  auto j = solo();
  ASSERT_EQ(commit(j.member_id, 1, 21), ErrorCode::kNone);
  const BrokerId before = gc();
  // A join waiting on the crashing coordinator is never answered.
  auto waiting = join("", "x");
  cluster().crash_broker(before);
  const BrokerId after = gc();
  EXPECT_NE(after, before);
  run_for(50);
  EXPECT_FALSE(waiting->done());
  EXPECT_EQ(committed(), 21);
}

TEST_F(GroupTest, StaticMemberRejoiningFencesItsOldId) {
  start();
  JoinGroupRequest r = join_request("");
  r.group_instance_id = "pod-1";
  auto first = call<JoinGroupResponse>(gc(), r);
  ASSERT_EQ(first.error, ErrorCode::kNone);
  ASSERT_EQ(sync(first, {{first.member_id, Assignment{}}}).error, ErrorCode::kNone);
  auto second = send(gc(), r);  // the same instance restarted, with no member id
  ASSERT_TRUE(wait(second));
  const auto& sj = second->as<JoinGroupResponse>();
  EXPECT_NE(sj.member_id, first.member_id);
  EXPECT_EQ(call<HeartbeatResponse>(gc(), HeartbeatRequest{"g", first.generation_id, first.member_id, "pod-1"}).error,
            ErrorCode::kFencedInstanceId);
}

}  // namespace
}  // namespace mephisto::sim::testing
