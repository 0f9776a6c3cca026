#include "sim/client/assignors.h"

#include <algorithm>
#include <cassert>
#include <set>

namespace mephisto::sim {
namespace {

bool subscribes(const MemberSubscription& m, const std::string& topic) {
  return std::find(m.topics.begin(), m.topics.end(), topic) != m.topics.end();
}

GroupAssignment empty_for(const std::map<std::string, MemberSubscription>& members) {
  GroupAssignment out;
  for (const auto& [id, _] : members) out[id];
  return out;
}

void sort_all(GroupAssignment& a) {
  for (auto& [_, parts] : a) std::sort(parts.begin(), parts.end());
}

}  // namespace

GroupAssignment assign_range(const std::map<std::string, MemberSubscription>& members, const TopicPartitionCounts& topics) {
  GroupAssignment out = empty_for(members);
  for (const auto& [topic, count] : topics) {
    std::vector<std::string> subscribers;  // std::map iteration: sorted by member id
    for (const auto& [id, m] : members)
      if (subscribes(m, topic)) subscribers.push_back(id);
    if (subscribers.empty()) continue;
    const int32_t n = static_cast<int32_t>(subscribers.size());
    const int32_t per = count / n;
    const int32_t extra = count % n;
    int32_t next = 0;
    for (int32_t i = 0; i < n; ++i) {
      const int32_t take = per + (i < extra ? 1 : 0);
      for (int32_t k = 0; k < take; ++k) out[subscribers[i]].push_back({topic, next++});
    }
    assert(next == count);
  }
  sort_all(out);
  return out;
}

GroupAssignment assign_round_robin(const std::map<std::string, MemberSubscription>& members,
                              const TopicPartitionCounts& topics) {
  GroupAssignment out = empty_for(members);
  std::vector<std::string> ids;
  for (const auto& [id, _] : members) ids.push_back(id);
  if (ids.empty()) return out;
  size_t cursor = 0;
  for (const auto& [topic, count] : topics) {
    for (int32_t p = 0; p < count; ++p) {
      // Deal to the next member (cyclically) that subscribes to this topic.
      for (size_t tries = 0; tries < ids.size(); ++tries) {
        const std::string& id = ids[cursor % ids.size()];
        ++cursor;
        if (subscribes(members.at(id), topic)) {
          out[id].push_back({topic, p});
          break;
        }
      }
    }
  }
  sort_all(out);
  return out;
}

GroupAssignment assign_cooperative_sticky(const std::map<std::string, MemberSubscription>& members,
                                     const TopicPartitionCounts& topics) {
  GroupAssignment target = empty_for(members);
  if (members.empty()) return target;

  // Every partition that exists and someone subscribes to.
  std::set<TopicPartition> all;
  for (const auto& [topic, count] : topics) {
    bool wanted = false;
    for (const auto& [_, m] : members) wanted = wanted || subscribes(m, topic);
    if (!wanted) continue;
    for (int32_t p = 0; p < count; ++p) all.insert({topic, p});
  }

  // 1. Keep valid ownership: the partition exists, the owner still subscribes, and nobody claimed it first
  //    (members are visited in id order, so a double claim resolves deterministically).
  std::map<TopicPartition, std::string> owner_now;
  std::set<TopicPartition> unassigned = all;
  for (const auto& [id, m] : members) {
    for (const auto& tp : m.owned) {
      if (all.count(tp) == 0 || !subscribes(m, tp.topic) || owner_now.count(tp) > 0) continue;
      owner_now[tp] = id;
      target[id].push_back(tp);
      unassigned.erase(tp);
    }
  }

  // 2. Balance: quota floor/ceil of partitions per member. Members over the ceiling give up their highest partitions;
  //    then while someone is above floor+1 of the lightest, move one over. Members only take topics they subscribe to.
  const size_t member_count = members.size();
  const size_t floor_quota = all.size() / member_count;
  const size_t ceil_quota = floor_quota + (all.size() % member_count ? 1 : 0);
  for (auto& [id, parts] : target) {
    std::sort(parts.begin(), parts.end());
    while (parts.size() > ceil_quota) {
      unassigned.insert(parts.back());
      parts.pop_back();
    }
  }
  auto lightest_for = [&](const std::string& topic) -> std::string {
    std::string best;
    size_t best_count = SIZE_MAX;
    for (const auto& [id, parts] : target) {
      if (!subscribes(members.at(id), topic)) continue;
      if (parts.size() < best_count) {
        best = id;
        best_count = parts.size();
      }
    }
    return best;
  };
  for (const auto& tp : unassigned) {
    const std::string id = lightest_for(tp.topic);
    if (!id.empty()) target[id].push_back(tp);
  }
  // Rebalance members with identical subscriptions whose counts differ by more than one (the move keeps stickiness
  // maximal: only what must move, moves).
  for (bool moved = true; moved;) {
    moved = false;
    for (auto& [heavy, heavy_parts] : target) {
      for (auto& [light, light_parts] : target) {
        if (heavy_parts.size() <= light_parts.size() + 1) continue;
        std::sort(heavy_parts.begin(), heavy_parts.end());
        for (auto it = heavy_parts.rbegin(); it != heavy_parts.rend(); ++it) {
          if (!subscribes(members.at(light), it->topic)) continue;
          light_parts.push_back(*it);
          heavy_parts.erase(std::next(it).base());
          moved = true;
          break;
        }
        if (moved) break;
      }
      if (moved) break;
    }
  }

  // 3. Cooperative: withhold a partition from its new owner while a different member still reports owning it.
  std::map<TopicPartition, std::set<std::string>> reported_owners;
  for (const auto& [id, m] : members)
    for (const auto& tp : m.owned) reported_owners[tp].insert(id);
  for (auto& [id, parts] : target) {
    std::erase_if(parts, [&, &member = id](const TopicPartition& tp) {
      const auto it = reported_owners.find(tp);
      if (it == reported_owners.end()) return false;
      return it->second.size() > it->second.count(member);
    });
  }
  sort_all(target);
  return target;
}

GroupAssignment assign(AssignmentStrategy strategy, const std::map<std::string, MemberSubscription>& members,
                  const TopicPartitionCounts& topics) {
  switch (strategy) {
    case AssignmentStrategy::kRange:
      return assign_range(members, topics);
    case AssignmentStrategy::kRoundRobin:
      return assign_round_robin(members, topics);
    case AssignmentStrategy::kCooperativeSticky:
      return assign_cooperative_sticky(members, topics);
  }
  assert(false && "unknown assignment strategy");
  return {};
}

}  // namespace mephisto::sim
