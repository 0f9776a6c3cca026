// Consumer groups: assignment by the range, roundrobin and cooperative-sticky assignors, rebalances on join, leave
// and crash, generations, committed offsets across member restarts and crashes, and stale members' commits.
#include <algorithm>

#include "tests/conformance/conformance.h"

namespace mephisto::conformance {
namespace {

// What every member of a group owns, published after each of its polls, so members in different processes can
// wait for one settled assignment. Shared by the clients' fibers (one OS thread).
struct GroupBoard {
  std::map<std::string, std::set<TopicPartition>> owned;
  std::map<std::string, int32_t> generation;

  void publish(const std::string& member, GroupMember& consumer) {
    owned[member] = consumer.assignment();
    generation[member] = consumer.generation();
  }
  void withdraw(const std::string& member) {
    owned.erase(member);
    generation.erase(member);
  }
  // Exactly these members own disjoint sets covering `all`, each of size `per_member` when given, all in one
  // generation.
  [[nodiscard]] bool settled(const std::set<std::string>& members, const std::set<TopicPartition>& all,
                             std::optional<size_t> per_member = std::nullopt) const {
    if (owned.size() != members.size()) return false;
    std::set<TopicPartition> seen;
    size_t total = 0;
    std::optional<int32_t> common_generation;
    for (const auto& name : members) {
      auto it = owned.find(name);
      if (it == owned.end()) return false;
      if (per_member && it->second.size() != *per_member) return false;
      if (it->second.empty()) return false;
      total += it->second.size();
      seen.insert(it->second.begin(), it->second.end());
      const int32_t gen = generation.at(name);
      if (common_generation && *common_generation != gen) return false;
      common_generation = gen;
    }
    return seen == all && total == all.size();
  }
};

// Polls `member` until the board says the group settled (publishing its own assignment each time).
bool poll_until_settled(GroupMember& member, const std::string& name, GroupBoard& board,
                        const std::set<std::string>& members, const std::set<TopicPartition>& all,
                        std::optional<size_t> per_member = std::nullopt, int64_t timeout_ms = kGroupSettleMs) {
  return member.poll_until(
      [&] {
        board.publish(name, member);
        return board.settled(members, all, per_member);
      },
      timeout_ms);
}

bool contiguous(const std::vector<int32_t>& sorted_partitions) {
  for (size_t i = 1; i < sorted_partitions.size(); ++i) {
    if (sorted_partitions[i] != sorted_partitions[i - 1] + 1) return false;
  }
  return true;
}

std::vector<int32_t> partitions_in(const std::set<TopicPartition>& owned, const std::string& topic) {
  std::vector<int32_t> out;
  for (const auto& tp : owned) {
    if (tp.topic == topic) out.push_back(tp.partition);
  }
  return out;  // sorted: std::set orders by (topic, partition)
}

TEST_P(Conformance, SingleMemberIsAssignedEveryPartitionOfEverySubscribedTopic) {
  const std::string first = unique("single-a");
  const std::string second = unique("single-b");
  const std::string group = unique("group");
  ASSERT_TRUE(create_topics({{first, 4}, {second, 2}}));
  std::set<TopicPartition> all = partitions_of(first, 4);
  for (const auto& tp : partitions_of(second, 2)) all.insert(tp);
  std::set<TopicPartition> assignment;
  std::set<TopicPartition> by_callbacks;
  int32_t generation = -1;
  client("member", [&](Env& env) {
    GroupMember member(env, member_config(group));
    ASSERT_TRUE(member.valid());
    ASSERT_TRUE(is_ok(member.subscribe({first, second})));
    EXPECT_TRUE(member.poll_until([&] { return member.assignment() == all; }));
    assignment = member.assignment();
    by_callbacks = member.rebalances().owned();
    generation = member.generation();
    EXPECT_TRUE(is_ok(member.close()));
  });
  ASSERT_TRUE(run_clients());
  EXPECT_EQ(assignment, all);
  EXPECT_EQ(by_callbacks, all) << "on_partitions_assigned must have reported the assignment";
  EXPECT_GE(generation, 1) << "a joined member has a generation";
}

TEST_P(Conformance, RangeAssignorGivesEachMemberAContiguousRangePerTopic) {
  const std::string six = unique("range-six");
  const std::string three = unique("range-three");
  const std::string group = unique("group");
  ASSERT_TRUE(create_topics({{six, 6}, {three, 3}}));
  std::set<TopicPartition> all = partitions_of(six, 6);
  for (const auto& tp : partitions_of(three, 3)) all.insert(tp);
  GroupBoard board;
  std::map<std::string, std::set<TopicPartition>> final_owned;
  for (const std::string name : {"a", "b"}) {
    client(name, [&, name](Env& env) {
      GroupMember member(env, member_config(group, AssignmentStrategy::kRange));
      ASSERT_TRUE(member.valid());
      ASSERT_TRUE(is_ok(member.subscribe({six, three})));
      EXPECT_TRUE(poll_until_settled(member, name, board, {"a", "b"}, all));
      final_owned[name] = member.assignment();
      // Stay until both saw the settled state, so neither's leave disturbs the other's observation.
      EXPECT_TRUE(member.poll_until([&] { return final_owned.size() == 2; }));
      EXPECT_TRUE(is_ok(member.close()));
    });
  }
  ASSERT_TRUE(run_clients());
  ASSERT_EQ(final_owned.size(), 2U);
  const auto& a = final_owned["a"];
  const auto& b = final_owned["b"];
  for (const auto& owned : {a, b}) {
    EXPECT_EQ(partitions_in(owned, six).size(), 3U);
    EXPECT_TRUE(contiguous(partitions_in(owned, six))) << "range assigns a contiguous range of each topic";
    EXPECT_TRUE(contiguous(partitions_in(owned, three)));
  }
  ASSERT_FALSE(partitions_in(a, six).empty());
  ASSERT_FALSE(partitions_in(b, six).empty());
  // The member sorted first takes the first range of every topic, and the larger one of the 3-partition topic.
  const auto& leader_of_ranges = partitions_in(a, six).front() == 0 ? a : b;
  const auto& other = partitions_in(a, six).front() == 0 ? b : a;
  EXPECT_EQ(partitions_in(leader_of_ranges, six), (std::vector<int32_t>{0, 1, 2}));
  EXPECT_EQ(partitions_in(leader_of_ranges, three), (std::vector<int32_t>{0, 1}));
  EXPECT_EQ(partitions_in(other, six), (std::vector<int32_t>{3, 4, 5}));
  EXPECT_EQ(partitions_in(other, three), (std::vector<int32_t>{2}));
}

TEST_P(Conformance, RoundRobinAssignorDealsPartitionsAlternately) {
  const std::string first = unique("rr-a");
  const std::string second = unique("rr-b");
  const std::string group = unique("group");
  ASSERT_TRUE(create_topics({{first, 3}, {second, 3}}));
  std::set<TopicPartition> all = partitions_of(first, 3);
  for (const auto& tp : partitions_of(second, 3)) all.insert(tp);
  GroupBoard board;
  std::map<std::string, std::set<TopicPartition>> final_owned;
  for (const std::string name : {"a", "b"}) {
    client(name, [&, name](Env& env) {
      GroupMember member(env, member_config(group, AssignmentStrategy::kRoundRobin));
      ASSERT_TRUE(member.valid());
      ASSERT_TRUE(is_ok(member.subscribe({first, second})));
      EXPECT_TRUE(poll_until_settled(member, name, board, {"a", "b"}, all, 3));
      final_owned[name] = member.assignment();
      EXPECT_TRUE(member.poll_until([&] { return final_owned.size() == 2; }));
      EXPECT_TRUE(is_ok(member.close()));
    });
  }
  ASSERT_TRUE(run_clients());
  ASSERT_EQ(final_owned.size(), 2U);
  // All six partitions sorted (first-0, first-1, first-2, second-0, ...) and dealt to the two sorted members.
  const std::set<TopicPartition> even = {{first, 0}, {first, 2}, {second, 1}};
  const std::set<TopicPartition> odd = {{first, 1}, {second, 0}, {second, 2}};
  const auto& a = final_owned["a"];
  const auto& b = final_owned["b"];
  EXPECT_TRUE((a == even && b == odd) || (a == odd && b == even)) << "round robin deals alternately";
}

TEST_P(Conformance, CooperativeStickyBalancesPartitionsAcrossTwoMembers) {
  const std::string topic = unique("coop-balance");
  const std::string group = unique("group");
  ASSERT_TRUE(create_topics({{topic, 7}}));
  const auto all = partitions_of(topic, 7);
  GroupBoard board;
  std::map<std::string, std::set<TopicPartition>> final_owned;
  for (const std::string name : {"a", "b"}) {
    client(name, [&, name](Env& env) {
      GroupMember member(env, member_config(group, AssignmentStrategy::kCooperativeSticky));
      ASSERT_TRUE(member.valid());
      ASSERT_TRUE(is_ok(member.subscribe({topic})));
      EXPECT_TRUE(poll_until_settled(member, name, board, {"a", "b"}, all));
      final_owned[name] = member.assignment();
      EXPECT_TRUE(member.poll_until([&] { return final_owned.size() == 2; }));
      EXPECT_TRUE(is_ok(member.close()));
    });
  }
  ASSERT_TRUE(run_clients());
  ASSERT_EQ(final_owned.size(), 2U);
  const size_t a = final_owned["a"].size();
  const size_t b = final_owned["b"].size();
  EXPECT_EQ(a + b, 7U);
  EXPECT_LE(std::max(a, b) - std::min(a, b), 1U) << "balanced: counts differ by at most one";
}

}  // namespace

// A fixture member (declared in conformance.h), so it is defined outside the anonymous namespace.
struct Conformance::JoinObservation {
  std::set<TopicPartition> all;
  std::set<TopicPartition> first_before;
  std::vector<RebalanceRecorder::Event> first_events_after_join;
  std::set<TopicPartition> first_after;
  std::set<TopicPartition> second_after;
  std::vector<RebalanceRecorder::Event> second_events;
  int32_t first_generation_before = -1;
  int32_t first_generation_after = -1;
  int32_t second_generation_after = -1;
  bool finished = false;
};

Conformance::JoinObservation Conformance::observe_second_member_joining(AssignmentStrategy strategy,
                                                                        int32_t partitions) {
  JoinObservation seen;
  const std::string topic = unique("join");
  const std::string group = unique("group");
  if (!create_topics({{topic, partitions}})) {
    ADD_FAILURE() << "could not create " << topic;
    return seen;
  }
  seen.all = partitions_of(topic, partitions);
  const auto& all = seen.all;
  const size_t settle_polls = static_cast<size_t>(partitions) / 2;
  GroupBoard board;
  bool first_alone = false;
  bool first_saw_settled = false;
  bool second_done = false;
  client("first", [&](Env& env) {
    GroupMember member(env, member_config(group, strategy));
    ASSERT_TRUE(member.valid());
    ASSERT_TRUE(is_ok(member.subscribe({topic})));
    ASSERT_TRUE(poll_until_settled(member, "first", board, {"first"}, all));
    seen.first_before = member.assignment();
    seen.first_generation_before = member.generation();
    const size_t events_before = member.rebalances().events().size();
    first_alone = true;
    EXPECT_TRUE(poll_until_settled(member, "first", board, {"first", "second"}, all, settle_polls));
    first_saw_settled = true;
    seen.first_after = member.assignment();
    seen.first_generation_after = member.generation();
    EXPECT_TRUE(member.poll_until([&] { return second_done; }));
    const auto& events = member.rebalances().events();
    seen.first_events_after_join.assign(events.begin() + static_cast<std::ptrdiff_t>(events_before), events.end());
    EXPECT_TRUE(is_ok(member.close()));
  });
  client("second", [&](Env& env) {
    ASSERT_TRUE(wait_until(env, [&] { return first_alone; }, kGroupSettleMs));
    GroupMember member(env, member_config(group, strategy));
    ASSERT_TRUE(member.valid());
    ASSERT_TRUE(is_ok(member.subscribe({topic})));
    EXPECT_TRUE(poll_until_settled(member, "second", board, {"first", "second"}, all, settle_polls));
    // Stay (publishing) until the first member saw the settled state too.
    EXPECT_TRUE(member.poll_until([&] {
      board.publish("second", member);
      return first_saw_settled;
    }));
    seen.second_after = member.assignment();
    seen.second_generation_after = member.generation();
    seen.second_events = member.rebalances().events();
    second_done = true;
    board.withdraw("second");
    EXPECT_TRUE(is_ok(member.close()));
  });
  const auto ran = run_clients();
  if (!ran) ADD_FAILURE() << ran.message();
  seen.finished = static_cast<bool>(ran);
  return seen;
}

namespace {

TEST_P(Conformance, CooperativeStickyRevokesOnlyTheMovedPartitionsWhenAMemberJoins) {
  const JoinObservation seen = observe_second_member_joining(AssignmentStrategy::kCooperativeSticky, 6);
  ASSERT_TRUE(seen.finished);
  EXPECT_EQ(seen.first_before, seen.all);
  ASSERT_EQ(seen.first_after.size(), 3U);
  ASSERT_EQ(seen.second_after.size(), 3U);
  // Only the partitions that moved to the newcomer were revoked; the kept ones never were, and nothing was lost.
  std::set<TopicPartition> revoked;
  for (const auto& event : seen.first_events_after_join) {
    EXPECT_NE(event.kind, RebalanceRecorder::Kind::kLost);
    if (event.kind == RebalanceRecorder::Kind::kRevoked) revoked.insert(event.partitions.begin(), event.partitions.end());
    if (event.kind == RebalanceRecorder::Kind::kAssigned) {
      EXPECT_TRUE(event.partitions.empty()) << "the first member gained partitions it already had";
    }
  }
  EXPECT_EQ(revoked, seen.second_after) << "exactly the moved partitions are revoked";
  for (const auto& tp : seen.first_after) EXPECT_EQ(revoked.count(tp), 0U) << "kept partition " << tp << " was revoked";
  // The newcomer's assignment came incrementally and never included a partition twice.
  std::set<TopicPartition> assigned_to_second;
  for (const auto& event : seen.second_events) {
    EXPECT_EQ(event.kind, RebalanceRecorder::Kind::kAssigned);
    assigned_to_second.insert(event.partitions.begin(), event.partitions.end());
  }
  EXPECT_EQ(assigned_to_second, seen.second_after);
}

TEST_P(Conformance, EagerAssignorRevokesTheWholeAssignmentWhenAMemberJoins) {
  const JoinObservation seen = observe_second_member_joining(AssignmentStrategy::kRange, 4);
  ASSERT_TRUE(seen.finished);
  ASSERT_FALSE(seen.first_events_after_join.empty());
  const auto& first_event = seen.first_events_after_join.front();
  EXPECT_EQ(first_event.kind, RebalanceRecorder::Kind::kRevoked);
  EXPECT_EQ((std::set<TopicPartition>(first_event.partitions.begin(), first_event.partitions.end())), seen.all)
      << "eager rebalancing revokes everything first";
  EXPECT_EQ(seen.first_after.size(), 2U);
  EXPECT_EQ(seen.second_after.size(), 2U);
  EXPECT_GT(seen.first_generation_after, seen.first_generation_before);
  EXPECT_EQ(seen.first_generation_after, seen.second_generation_after);
}

TEST_P(Conformance, GenerationsStrictlyIncreaseAcrossJoinsAndLeaves) {
  const std::string topic = unique("generations");
  const std::string group = unique("group");
  ASSERT_TRUE(create_topics({{topic, 6}}));
  const auto all = partitions_of(topic, 6);
  GroupBoard board;
  int phase = 0;  // 0: first alone; 1: second joined; 2: third joined; 3: second left; 4: done
  std::vector<int32_t> generations;
  client("first", [&](Env& env) {
    GroupMember member(env, member_config(group));
    ASSERT_TRUE(member.valid());
    ASSERT_TRUE(is_ok(member.subscribe({topic})));
    ASSERT_TRUE(poll_until_settled(member, "first", board, {"first"}, all));
    generations.push_back(member.generation());
    phase = 1;
    ASSERT_TRUE(poll_until_settled(member, "first", board, {"first", "second"}, all, 3));
    generations.push_back(member.generation());
    phase = 2;
    ASSERT_TRUE(poll_until_settled(member, "first", board, {"first", "second", "third"}, all, 2));
    generations.push_back(member.generation());
    phase = 3;
    ASSERT_TRUE(poll_until_settled(member, "first", board, {"first", "third"}, all, 3));
    generations.push_back(member.generation());
    phase = 4;
    EXPECT_TRUE(is_ok(member.close()));
  });
  auto joiner = [&](const std::string& name, int join_at, int leave_at) {
    return [&, name, join_at, leave_at](Env& env) {
      ASSERT_TRUE(wait_until(env, [&] { return phase >= join_at; }, kGroupSettleMs * 2));
      GroupMember member(env, member_config(group));
      ASSERT_TRUE(member.valid());
      ASSERT_TRUE(is_ok(member.subscribe({topic})));
      EXPECT_TRUE(member.poll_until(
          [&] {
            board.publish(name, member);
            return phase >= leave_at;
          },
          kGroupSettleMs * 4));
      board.withdraw(name);
      EXPECT_TRUE(is_ok(member.close()));
    };
  };
  client("second", joiner("second", 1, 3));
  client("third", joiner("third", 2, 4));
  ASSERT_TRUE(run_clients());
  ASSERT_EQ(generations.size(), 4U);
  for (size_t i = 1; i < generations.size(); ++i) {
    EXPECT_GT(generations[i], generations[i - 1]) << "rebalance " << i << " did not start a new generation";
  }
}

TEST_P(Conformance, ClosingMemberHandsItsPartitionsToTheSurvivorWithoutWaitingForSessionTimeout) {
  const std::string topic = unique("leave");
  const std::string group = unique("group");
  ASSERT_TRUE(create_topics({{topic, 4}}));
  const auto all = partitions_of(topic, 4);
  GroupBoard board;
  int64_t closed_at = -1;
  int64_t taken_over_at = -1;
  int32_t generation_before = -1;
  int32_t generation_after = -1;
  std::optional<Status> closed;
  client("survivor", [&](Env& env) {
    GroupMember member(env, member_config(group));
    ASSERT_TRUE(member.valid());
    ASSERT_TRUE(is_ok(member.subscribe({topic})));
    ASSERT_TRUE(poll_until_settled(member, "survivor", board, {"survivor", "leaver"}, all, 2));
    generation_before = member.generation();
    ASSERT_TRUE(member.poll_until([&] { return closed_at >= 0; }));
    EXPECT_TRUE(member.poll_until([&] { return member.assignment() == all; }));
    taken_over_at = env.clock->now_ms();
    generation_after = member.generation();
    EXPECT_TRUE(is_ok(member.close()));
  });
  client("leaver", [&](Env& env) {
    GroupMember member(env, member_config(group));
    ASSERT_TRUE(member.valid());
    ASSERT_TRUE(is_ok(member.subscribe({topic})));
    ASSERT_TRUE(poll_until_settled(member, "leaver", board, {"survivor", "leaver"}, all, 2));
    // Make sure the survivor saw the settled state too before leaving.
    ASSERT_TRUE(member.poll_until([&] { return generation_before >= 0; }));
    board.withdraw("leaver");
    closed = member.close();
    closed_at = env.clock->now_ms();
  });
  ASSERT_TRUE(run_clients());
  ASSERT_TRUE(closed.has_value());
  EXPECT_TRUE(is_ok(*closed));
  ASSERT_GE(taken_over_at, 0);
  EXPECT_LT(taken_over_at - closed_at, kSessionTimeoutMs)
      << "a clean leave must trigger the rebalance at once, not after the session timeout";
  EXPECT_GT(generation_after, generation_before);
}

TEST_P(Conformance, UnsubscribeRevokesTheAssignmentThroughTheListener) {
  const std::string topic = unique("unsubscribe");
  const std::string group = unique("group");
  ASSERT_TRUE(create_topics({{topic, 3}}));
  const auto all = partitions_of(topic, 3);
  std::set<TopicPartition> before;
  std::set<TopicPartition> revoked;
  std::set<TopicPartition> owned_after;
  std::vector<TopicPartition> assignment_after;
  client("member", [&](Env& env) {
    GroupMember member(env, member_config(group));
    ASSERT_TRUE(member.valid());
    ASSERT_TRUE(is_ok(member.subscribe({topic})));
    ASSERT_TRUE(member.poll_until([&] { return member.assignment() == all; }));
    before = member.rebalances().owned();
    ASSERT_TRUE(is_ok(member.consumer().unsubscribe()));
    // Callbacks run inside poll(): give them the chance.
    member.poll_for(500);
    revoked = member.rebalances().all_revoked();
    owned_after = member.rebalances().owned();
    assignment_after = member.consumer().assignment();
    EXPECT_TRUE(is_ok(member.close()));
  });
  ASSERT_TRUE(run_clients());
  EXPECT_EQ(before, all);
  EXPECT_EQ(revoked, all);
  EXPECT_TRUE(owned_after.empty());
  EXPECT_TRUE(assignment_after.empty());
}

TEST_P(Conformance, RestartedMemberResumesFromTheCommittedOffset) {
  const std::string topic = unique("restart");
  const std::string group = unique("group");
  ASSERT_TRUE(create_topics({{topic, 1}}));
  const TopicPartition tp{topic, 0};
  std::vector<ConsumerRecord> first_run;
  std::vector<ConsumerRecord> second_run;
  client("first-incarnation", [&](Env& env) {
    auto producer = make_producer(env);
    ASSERT_NE(producer, nullptr);
    ASSERT_EQ(produce_ok(*producer, records_for(tp, numbered("r", 20))).size(), 20U);
    auto config = member_config(group);
    config.max_poll_records = 4;
    GroupMember member(env, config);
    ASSERT_TRUE(member.valid());
    ASSERT_TRUE(is_ok(member.subscribe({topic})));
    ASSERT_TRUE(member.poll_until([&] { return member.records().size() >= 10; }));
    first_run = member.records();
    // Commit after the first ten, although more may have been read: the restart must honour the commit.
    ASSERT_TRUE(is_ok(member.consumer().commit({{tp, 10}}, kCommitTimeoutMs)));
    EXPECT_TRUE(is_ok(member.close()));
  });
  ASSERT_TRUE(run_clients());
  client("second-incarnation", [&](Env& env) {
    GroupMember member(env, member_config(group));
    ASSERT_TRUE(member.valid());
    ASSERT_TRUE(is_ok(member.subscribe({topic})));
    EXPECT_TRUE(member.poll_until([&] { return member.records().size() >= 10; }));
    member.poll_for(500);
    second_run = member.records();
    EXPECT_TRUE(is_ok(member.close()));
  });
  ASSERT_TRUE(run_clients());
  ASSERT_GE(first_run.size(), 10U);
  EXPECT_EQ(offsets_of(second_run, tp), range_of(10, 10));
  EXPECT_EQ(values_of(second_run), numbered("r", 10, 10));
}

TEST_P(Conformance, CommitFromAMemberThatWasKickedOutIsRejected) {
  const std::string topic = unique("stale-commit");
  const std::string group = unique("group");
  ASSERT_TRUE(create_topics({{topic, 2}}));
  const auto all = partitions_of(topic, 2);
  const TopicPartition p0{topic, 0};
  bool stale_stopped_polling = false;
  bool newcomer_owns_all = false;
  bool stale_committed = false;
  std::optional<Status> stale_commit;
  std::optional<Result<std::map<TopicPartition, int64_t>>> committed_after;
  client("stale", [&](Env& env) {
    auto config = member_config(group);
    config.max_poll_interval_ms = 10000;  // >= session timeout, as librdkafka requires
    GroupMember member(env, config);
    ASSERT_TRUE(member.valid());
    ASSERT_TRUE(is_ok(member.subscribe({topic})));
    ASSERT_TRUE(member.poll_until([&] { return member.assignment() == all; }));
    // Stop polling: past max.poll.interval the member leaves (and the join of the newcomer cannot wait for it).
    stale_stopped_polling = true;
    ASSERT_TRUE(wait_until(env, [&] { return newcomer_owns_all; }, 120000, 100));
    stale_commit = member.consumer().commit({{p0, 1}}, kCommitTimeoutMs);
    stale_committed = true;
    EXPECT_TRUE(is_ok(member.close()));
  });
  client("newcomer", [&](Env& env) {
    ASSERT_TRUE(wait_until(env, [&] { return stale_stopped_polling; }, kGroupSettleMs));
    GroupMember member(env, member_config(group));
    ASSERT_TRUE(member.valid());
    ASSERT_TRUE(is_ok(member.subscribe({topic})));
    EXPECT_TRUE(member.poll_until([&] { return member.assignment() == all; }, 120000));
    newcomer_owns_all = true;
    EXPECT_TRUE(member.poll_until([&] { return stale_committed; }));
    committed_after = member.consumer().committed({p0}, kCommitTimeoutMs);
    EXPECT_TRUE(is_ok(member.close()));
  });
  ASSERT_TRUE(run_clients());
  ASSERT_TRUE(stale_commit.has_value());
  EXPECT_TRUE(has_code_in(*stale_commit, {ErrorCode::kIllegalGeneration, ErrorCode::kUnknownMemberId,
                                          ErrorCode::kRebalanceInProgress}));
  ASSERT_TRUE(committed_after.has_value());
  ASSERT_TRUE(is_ok(*committed_after));
  EXPECT_EQ(committed_after->value().count(p0), 0U) << "the rejected commit was stored";
}

// Simulator-only: needs SimFaults::inject_errors to hold the commit in its retry loop while the group
// rebalances. librdkafka retries a failed OffsetCommit with the request it built (the old generation baked
// in), and the Java consumer cannot rejoin while commitSync blocks its thread, so on Kafka such a commit is
// rejected too.
TEST_P(Conformance, ACommitRetriedAcrossARebalanceIsRejectedNotStoredUnderTheNewGeneration) {
  CONFORMANCE_REQUIRE_SIM_FAULTS("holds an OffsetCommit in retries (SimFaults::inject_errors)");
  const std::string topic = unique("commit-across-rebalance");
  const std::string group = unique("group");
  ASSERT_TRUE(create_topics({{topic, 2}}));
  const auto all = partitions_of(topic, 2);
  const TopicPartition p0{topic, 0};
  GroupBoard board;
  bool second_may_join = false;
  int32_t generation_at_commit = -1;
  int32_t generation_when_rebalanced = -1;
  int64_t rebalanced_at_ms = -1;
  int64_t commit_returned_at_ms = -1;
  std::optional<Status> held_commit;
  std::optional<Result<std::map<TopicPartition, int64_t>>> committed_after;
  client("first", [&](Env& env) {
    GroupMember member(env, member_config(group));
    ASSERT_TRUE(member.valid());
    ASSERT_TRUE(is_ok(member.subscribe({topic})));
    ASSERT_TRUE(member.poll_until([&] { return member.assignment() == all; }));
    generation_at_commit = member.generation();
    // About ten seconds of retriable errors: the commit keeps retrying while the second member joins.
    world().faults()->inject_errors("OffsetCommit", ErrorCode::kCoordinatorLoadInProgress, 100);
    env.scheduler->spawn("held-commit", [&] {
      held_commit = member.consumer().commit({{p0, 7}}, kCommitTimeoutMs);
      commit_returned_at_ms = env.clock->now_ms();
    });
    second_may_join = true;
    ASSERT_TRUE(poll_until_settled(member, "first", board, {"first", "second"}, all, 1));
    rebalanced_at_ms = env.clock->now_ms();
    generation_when_rebalanced = member.generation();
    ASSERT_TRUE(member.poll_until([&] { return held_commit.has_value(); }, kCommitTimeoutMs + 10000));
    committed_after = member.consumer().committed({p0}, kCommitTimeoutMs);
    EXPECT_TRUE(is_ok(member.close()));
  });
  client("second", [&](Env& env) {
    ASSERT_TRUE(wait_until(
        env, [&] { return second_may_join; }, kGroupSettleMs));
    GroupMember member(env, member_config(group));
    ASSERT_TRUE(member.valid());
    ASSERT_TRUE(is_ok(member.subscribe({topic})));
    ASSERT_TRUE(poll_until_settled(member, "second", board, {"first", "second"}, all, 1));
    EXPECT_TRUE(member.poll_until([&] { return committed_after.has_value(); }, kCommitTimeoutMs + 20000));
    EXPECT_TRUE(is_ok(member.close()));
  });
  ASSERT_TRUE(run_clients());
  // The case only means something if the group moved on while the commit was still retrying.
  ASSERT_GT(generation_when_rebalanced, generation_at_commit);
  ASSERT_GE(commit_returned_at_ms, rebalanced_at_ms)
      << "the commit finished before the rebalance: retune the errors";
  ASSERT_TRUE(held_commit.has_value());
  EXPECT_TRUE(has_code_in(*held_commit, {ErrorCode::kIllegalGeneration, ErrorCode::kUnknownMemberId,
                                         ErrorCode::kRebalanceInProgress}))
      << "a commit made in generation " << generation_at_commit << " was stored in generation "
      << generation_when_rebalanced;
  ASSERT_TRUE(committed_after.has_value());
  ASSERT_TRUE(is_ok(*committed_after));
  EXPECT_EQ(committed_after->value().count(p0), 0U) << "the rejected commit was stored";
}

// --- crashes (simulator-only: need SimFaults::kill_client)

TEST_P(Conformance, CrashedMemberIsEvictedOnlyAfterTheSessionTimeout) {
  CONFORMANCE_REQUIRE_SIM_FAULTS("kills a client process without LeaveGroup (SimFaults::kill_client)");
  const std::string topic = unique("crash-evict");
  const std::string group = unique("group");
  ASSERT_TRUE(create_topics({{topic, 4}}));
  const auto all = partitions_of(topic, 4);
  GroupBoard board;
  ClientId victim = 0;
  int64_t killed_at = -1;
  int64_t taken_over_at = -1;
  int32_t generation_before = -1;
  int32_t generation_after = -1;
  client("survivor", [&](Env& env) {
    GroupMember member(env, member_config(group));
    ASSERT_TRUE(member.valid());
    ASSERT_TRUE(is_ok(member.subscribe({topic})));
    ASSERT_TRUE(poll_until_settled(member, "survivor", board, {"survivor", "victim"}, all, 2));
    generation_before = member.generation();
    world().faults()->kill_client(victim);
    killed_at = env.clock->now_ms();
    board.withdraw("victim");
    EXPECT_TRUE(member.poll_until([&] { return member.assignment() == all; }, kSessionTimeoutMs + 60000));
    taken_over_at = env.clock->now_ms();
    generation_after = member.generation();
    EXPECT_TRUE(is_ok(member.close()));
  });
  victim = client("victim", [&](Env& env) {
    GroupMember member(env, member_config(group));
    ASSERT_TRUE(member.valid());
    ASSERT_TRUE(is_ok(member.subscribe({topic})));
    // Publishes its assignment and polls until killed (the bound only matters if the kill never comes).
    member.poll_until(
        [&] {
          board.publish("victim", member);
          return false;
        },
        300000);
    ADD_FAILURE() << "the victim was never killed";
  });
  ASSERT_TRUE(run_clients());
  ASSERT_GE(taken_over_at, 0);
  // The coordinator expires the member a session timeout after its last heartbeat, which preceded the kill by at
  // most one heartbeat interval (plus network latency).
  EXPECT_GE(taken_over_at - killed_at, kSessionTimeoutMs - 2 * kHeartbeatIntervalMs)
      << "the dead member's partitions moved before its session could have expired";
  EXPECT_LE(taken_over_at - killed_at, kSessionTimeoutMs + 30000);
  EXPECT_GT(generation_after, generation_before);
}

TEST_P(Conformance, KilledMembersPartitionResumesAtTheCommittedOffsetOnTheSurvivor) {
  CONFORMANCE_REQUIRE_SIM_FAULTS("kills a client process mid-stream (SimFaults::kill_client)");
  const std::string topic = unique("crash-resume");
  const std::string group = unique("group");
  ASSERT_TRUE(create_topics({{topic, 2}}));
  const auto all = partitions_of(topic, 2);
  constexpr int kPerPartition = 30;
  constexpr int64_t kCommittedByVictim = 7;
  GroupBoard board;
  ClientId victim = 0;
  bool settled = false;
  bool victim_committed = false;
  std::optional<TopicPartition> victim_partition;
  size_t victim_read = 0;
  int64_t killed_at = -1;
  int64_t taken_over_at = -1;
  std::optional<Result<std::map<TopicPartition, int64_t>>> committed_seen_by_survivor;
  std::vector<ConsumerRecord> survivor_records_of_victim_partition;

  client("survivor", [&](Env& env) {
    auto config = member_config(group);
    config.max_poll_records = 5;
    GroupMember member(env, config);
    ASSERT_TRUE(member.valid());
    ASSERT_TRUE(is_ok(member.subscribe({topic})));
    ASSERT_TRUE(poll_until_settled(member, "survivor", board, {"survivor", "victim"}, all, 1));
    settled = true;
    ASSERT_TRUE(member.poll_until([&] { return killed_at >= 0; }, 120000));
    ASSERT_TRUE(victim_partition.has_value());
    const TopicPartition stolen = *victim_partition;
    ASSERT_TRUE(member.poll_until([&] { return member.assignment().count(stolen) == 1; },
                                  kSessionTimeoutMs + 60000));
    taken_over_at = env.clock->now_ms();
    committed_seen_by_survivor = member.consumer().committed({stolen}, kCommitTimeoutMs);
    EXPECT_TRUE(member.poll_until(
        [&] {
          return static_cast<int64_t>(offsets_of(member.records(), stolen).size()) >=
                 kPerPartition - kCommittedByVictim;
        },
        kConsumeTimeoutMs));
    member.poll_for(500);
    for (const auto& record : member.records()) {
      if (record.topic == stolen.topic && record.partition == stolen.partition) {
        survivor_records_of_victim_partition.push_back(record);
      }
    }
    EXPECT_TRUE(is_ok(member.close()));
  });

  victim = client("victim", [&](Env& env) {
    auto config = member_config(group);
    config.max_poll_records = 5;
    GroupMember member(env, config);
    ASSERT_TRUE(member.valid());
    ASSERT_TRUE(is_ok(member.subscribe({topic})));
    ASSERT_TRUE(poll_until_settled(member, "victim", board, {"survivor", "victim"}, all, 1));
    const TopicPartition mine = *member.assignment().begin();
    victim_partition = mine;
    // Read past the point it commits, so that "resume at the commit" differs from "resume where it stopped".
    ASSERT_TRUE(member.poll_until([&] { return offsets_of(member.records(), mine).size() >= 12; },
                                  kConsumeTimeoutMs));
    ASSERT_TRUE(is_ok(member.consumer().commit({{mine, kCommittedByVictim}}, kCommitTimeoutMs)));
    victim_read = offsets_of(member.records(), mine).size();
    victim_committed = true;
    member.poll_until([&] { return false; }, 300000);  // until killed
    ADD_FAILURE() << "the victim was never killed";
  });

  client("producer-and-killer", [&](Env& env) {
    ASSERT_TRUE(wait_until(env, [&] { return settled; }, kGroupSettleMs * 2));
    auto producer = make_producer(env);
    ASSERT_NE(producer, nullptr);
    std::vector<ProducerRecord> records;
    for (int32_t p = 0; p < 2; ++p) {
      auto some = records_for({topic, p}, numbered("p" + std::to_string(p), kPerPartition));
      records.insert(records.end(), some.begin(), some.end());
    }
    ASSERT_EQ(produce_ok(*producer, records).size(), records.size());
    ASSERT_TRUE(wait_until(env, [&] { return victim_committed; }, kConsumeTimeoutMs * 2));
    world().faults()->kill_client(victim);
    killed_at = env.clock->now_ms();
    board.withdraw("victim");
  });

  ASSERT_TRUE(run_clients());
  ASSERT_TRUE(victim_partition.has_value());
  EXPECT_GE(victim_read, 12U) << "the victim read past its commit before dying";
  ASSERT_GE(taken_over_at, 0);
  EXPECT_GE(taken_over_at - killed_at, kSessionTimeoutMs - 2 * kHeartbeatIntervalMs)
      << "the survivor took over before the victim's session could have expired";
  ASSERT_TRUE(committed_seen_by_survivor.has_value());
  ASSERT_TRUE(is_ok(*committed_seen_by_survivor));
  EXPECT_EQ(committed_seen_by_survivor->value(),
            (std::map<TopicPartition, int64_t>{{*victim_partition, kCommittedByVictim}}));
  ASSERT_FALSE(survivor_records_of_victim_partition.empty());
  EXPECT_EQ(survivor_records_of_victim_partition.front().offset, kCommittedByVictim)
      << "the survivor must resume exactly at the committed offset";
  EXPECT_EQ(offsets_of(survivor_records_of_victim_partition, *victim_partition),
            range_of(kCommittedByVictim, kPerPartition - kCommittedByVictim))
      << "from the committed offset to the end, once each, in order";
}

}  // namespace
}  // namespace mephisto::conformance
