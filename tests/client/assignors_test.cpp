// The assignors the group leader computes client-side: Kafka's range and roundrobin, and cooperative-sticky.
#include <gtest/gtest.h>

#include "sim/client/assignors.h"

namespace mephisto::sim {
namespace {

std::vector<TopicPartition> tps(const std::string& topic, std::initializer_list<int32_t> ps) {
  std::vector<TopicPartition> out;
  for (int32_t p : ps) out.push_back({topic, p});
  return out;
}

TEST(RangeAssignor, GivesContiguousRangesPerTopicWithTheRemainderToTheFirstMembers) {
  std::map<std::string, MemberSubscription> members = {{"a", {{"t", "u"}, {}}}, {"b", {{"t", "u"}, {}}}};
  const auto a = assign_range(members, {{"t", 3}, {"u", 3}});
  // Kafka's RangeAssignor: per topic, member "a" (first by id) gets the extra partition of each topic.
  auto expect_a = tps("t", {0, 1});
  for (const auto& tp : tps("u", {0, 1})) expect_a.push_back(tp);
  auto expect_b = tps("t", {2});
  for (const auto& tp : tps("u", {2})) expect_b.push_back(tp);
  EXPECT_EQ(a.at("a"), expect_a);
  EXPECT_EQ(a.at("b"), expect_b);
}

TEST(RangeAssignor, OnlyAssignsTopicsAMemberSubscribedTo) {
  std::map<std::string, MemberSubscription> members = {{"a", {{"t"}, {}}}, {"b", {{"u"}, {}}}};
  const auto a = assign_range(members, {{"t", 2}, {"u", 1}});
  EXPECT_EQ(a.at("a"), tps("t", {0, 1}));
  EXPECT_EQ(a.at("b"), tps("u", {0}));
}

TEST(RoundRobinAssignor, DealsPartitionsInMemberOrder) {
  std::map<std::string, MemberSubscription> members = {{"a", {{"t"}, {}}}, {"b", {{"t"}, {}}}, {"c", {{"t"}, {}}}};
  const auto a = assign_round_robin(members, {{"t", 5}});
  EXPECT_EQ(a.at("a"), tps("t", {0, 3}));
  EXPECT_EQ(a.at("b"), tps("t", {1, 4}));
  EXPECT_EQ(a.at("c"), tps("t", {2}));
}

TEST(CooperativeStickyAssignor, FirstAssignmentIsBalanced) {
  std::map<std::string, MemberSubscription> members = {{"a", {{"t"}, {}}}, {"b", {{"t"}, {}}}};
  const auto a = assign_cooperative_sticky(members, {{"t", 6}});
  EXPECT_EQ(a.at("a").size(), 3u);
  EXPECT_EQ(a.at("b").size(), 3u);
}

TEST(CooperativeStickyAssignor, ANewMemberGetsNothingThatIsStillOwnedElsewhere) {
  // a owns everything; b joins. Cooperative: nothing moves in this round (a must revoke first), a keeps only
  // what stays with it.
  std::map<std::string, MemberSubscription> members = {{"a", {{"t"}, tps("t", {0, 1, 2, 3})}}, {"b", {{"t"}, {}}}};
  const auto round1 = assign_cooperative_sticky(members, {{"t", 4}});
  EXPECT_EQ(round1.at("a").size(), 2u) << "a keeps half";
  EXPECT_TRUE(round1.at("b").empty()) << "b waits until a has revoked";
  // Round 2: a now owns only its half; b gets the rest.
  members["a"].owned = round1.at("a");
  const auto round2 = assign_cooperative_sticky(members, {{"t", 4}});
  EXPECT_EQ(round2.at("a"), round1.at("a")) << "sticky: a keeps what it kept";
  EXPECT_EQ(round2.at("b").size(), 2u);
}

TEST(CooperativeStickyAssignor, SurvivorKeepsItsPartitionsWhenAMemberLeaves) {
  std::map<std::string, MemberSubscription> members = {{"a", {{"t"}, tps("t", {0, 1})}}};
  const auto a = assign_cooperative_sticky(members, {{"t", 4}});
  EXPECT_EQ(a.at("a"), tps("t", {0, 1, 2, 3}));
}

}  // namespace
}  // namespace mephisto::sim
