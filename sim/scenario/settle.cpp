#include "sim/scenario/settle.h"

#include <fmt/format.h>

#include "sim/cluster/cluster.h"
#include "sim/scenario/checkers.h"

namespace mephisto::sim::scenario {
namespace {

// Per partition with anything to consume, the offset after its last plain or committed record: a group that
// consumed everything has committed at least that (a commit marker after it need not be passed: a consumer
// that stopped at the marker committed its offset, one that read past it the offset after).
std::map<TopicPartition, int64_t> consumable_ends(AppHarness& h, const std::string& topic) {
  std::map<TopicPartition, int64_t> out;
  for (const auto& [partition, records] : read_final_log(h.kafka().cluster(), topic)) {
    for (auto it = records.rbegin(); it != records.rend(); ++it) {
      if (committed_or_plain(it->status)) {
        out[{topic, partition}] = it->offset + 1;
        break;
      }
    }
  }
  return out;
}

bool transaction_open(AppHarness& h, const std::string& topic) {
  for (int32_t p = 0;; ++p) {
    const auto state = h.kafka().cluster().partition_state({topic, p});
    if (!state) return false;
    if (state->last_stable_offset != state->high_watermark) return true;
  }
}

}  // namespace

std::string describe_offsets(const std::map<TopicPartition, int64_t>& offsets) {
  std::string out = "{";
  for (const auto& [tp, offset] : offsets) out += fmt::format(" {}/{}={}", tp.topic, tp.partition, offset);
  return out + " }";
}

std::set<std::string> consumed_topics(AppHarness& h) {
  std::set<std::string> out;
  for (int w = 0; w < h.worker_count(); ++w) {
    App* app = h.app(w);
    if (app == nullptr) continue;
    std::set<std::string> channels;
    for (const TopicInfo& topic : app->topics()) {
      if (topic.in_memory) channels.insert(topic.name);
    }
    for (const AgentInfo& agent : app->agents()) {
      if (channels.count(agent.topic) == 0) out.insert(agent.topic);
      for (const std::string& relay : agent.relays) {
        if (channels.count(relay) == 0) out.insert(relay);
      }
    }
  }
  return out;
}

std::string unsettled(AppHarness& h, const std::string& group, const std::set<std::string>& consumed,
                      const std::vector<std::string>& transactional) {
  for (const std::string& topic : transactional) {
    if (transaction_open(h, topic)) return "a transaction open on " + topic;
  }
  for (const std::string& topic : consumed) {
    const auto ends = consumable_ends(h, topic);
    if (ends.empty()) continue;
    const auto committed = h.committed(group, topic);
    for (const auto& [tp, end] : ends) {
      const auto at = committed.find(tp);
      if (at == committed.end() || at->second < end) {
        return "group committed " + describe_offsets(committed) + ", " + topic + " has records up to " +
               describe_offsets(ends);
      }
    }
  }
  return "";
}

}  // namespace mephisto::sim::scenario
