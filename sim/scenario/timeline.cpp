// The report's view of the history: who owned which input partition when, and marks for rebalances and
// commits.
#include <algorithm>
#include <tuple>

#include <fmt/format.h>

#include "sim/scenario/checkers.h"

namespace mephisto::sim::scenario {
namespace {

struct OpenSpan {
  std::string worker;
  ProcessId process = kWorld;
  uint32_t incarnation = 0;
  int32_t generation = -1;
  int64_t from_ms = 0;
};

// Several per-partition events of one client at one moment (an assignment, a commit) make one mark.
struct PendingMark {
  bool active = false;
  uint64_t client = 0;
  int64_t time_ms = 0;
  HistoryKind kind = HistoryKind::kAssigned;
  std::string lane;
  std::string text;
};

}  // namespace

HistoryTimeline timeline_from_history(const History& history, const std::string& group,
                                      const std::string& input_topic,
                                      const std::map<ProcessId, std::string>& lane_of, int64_t end_ms,
                                      int max_commit_marks,
                                      const std::map<ProcessId, std::vector<int64_t>>& crashed_at) {
  HistoryTimeline out;
  std::map<std::pair<uint64_t, TopicPartition>, OpenSpan> open;  // (client, tp) -> its current ownership
  std::map<ProcessId, uint32_t> latest_incarnation;
  std::map<uint64_t, int64_t> last_seen_ms;  // client -> its last event: where a crashed owner's span ends
  std::map<std::string, std::vector<TimelineEvent>> commits_by_lane;
  PendingMark pending;

  auto lane = [&](ProcessId process) -> const std::string* {
    auto it = lane_of.find(process);
    return it == lane_of.end() || it->second.empty() ? nullptr : &it->second;
  };
  auto flush = [&] {
    if (!pending.active) return;
    pending.active = false;
    if (pending.kind == HistoryKind::kAssigned) {
      out.events.push_back({pending.time_ms, pending.lane, TimelineEvent::kRebalance, pending.text});
    } else {
      commits_by_lane[pending.lane].push_back(
          {pending.time_ms, pending.lane, TimelineEvent::kCommit, pending.text});
    }
  };
  // Where a crashed owner's span ends: the crash, if the caller knows it, else the consumer's last act.
  auto dead_end = [&](const OpenSpan& span, uint64_t client) {
    if (auto it = crashed_at.find(span.process); it != crashed_at.end()) {
      for (int64_t t : it->second) {
        if (t >= span.from_ms) return t;
      }
    }
    return last_seen_ms[client];
  };
  auto close_span = [&](const OpenSpan& span, const TopicPartition& tp, int64_t to_ms) {
    out.ownership.push_back({span.worker, tp, span.generation, span.from_ms, std::max(span.from_ms, to_ms)});
  };
  // A restarted process's old consumers are gone without a revocation: their ownership ended with their last
  // act.
  auto close_dead = [&](ProcessId process, uint32_t incarnation) {
    for (auto it = open.begin(); it != open.end();) {
      if (it->second.process == process && it->second.incarnation < incarnation) {
        close_span(it->second, it->first.second, dead_end(it->second, it->first.first));
        it = open.erase(it);
      } else {
        ++it;
      }
    }
  };

  for (const HistoryEvent& e : history.events()) {
    last_seen_ms[e.client] = e.time_ms;
    uint32_t& latest = latest_incarnation[e.process];
    if (e.incarnation > latest) {
      if (latest != 0) close_dead(e.process, e.incarnation);
      latest = e.incarnation;
    }
    const std::string* lane_name = lane(e.process);
    if (lane_name == nullptr) continue;
    const bool group_input = e.group == group && e.tp.topic == input_topic;
    const std::string part = fmt::format("{}-{}", e.tp.topic, e.tp.partition);

    switch (e.kind) {
      case HistoryKind::kAssigned: {
        if (e.group != group) break;
        if (group_input)
          open[{e.client, e.tp}] = OpenSpan{*lane_name, e.process, e.incarnation, e.generation, e.time_ms};
        if (pending.active && pending.kind == HistoryKind::kAssigned && pending.client == e.client &&
            pending.time_ms == e.time_ms) {
          pending.text += " " + part;
          break;
        }
        flush();
        pending = {true,       e.client,
                   e.time_ms,  HistoryKind::kAssigned,
                   *lane_name, fmt::format("generation {}: assigned {}", e.generation, part)};
        break;
      }
      case HistoryKind::kRevoked: {
        if (!group_input) break;
        auto it = open.find({e.client, e.tp});
        if (it == open.end()) break;
        close_span(it->second, e.tp, e.time_ms);
        open.erase(it);
        break;
      }
      case HistoryKind::kOffsetsCommitted: {
        if (e.group != group) break;
        const std::string at = fmt::format("{}@{}", part, e.offset);
        if (pending.active && pending.kind == HistoryKind::kOffsetsCommitted && pending.client == e.client &&
            pending.time_ms == e.time_ms) {
          pending.text += " " + at;
          break;
        }
        flush();
        pending = {true,       e.client,
                   e.time_ms,  HistoryKind::kOffsetsCommitted,
                   *lane_name, "offsets committed: " + at};
        break;
      }
      case HistoryKind::kTxnCommitted:
        flush();
        commits_by_lane[*lane_name].push_back(
            {e.time_ms, *lane_name, TimelineEvent::kCommit, "transaction committed " + e.transactional_id});
        break;
      case HistoryKind::kTxnAborted:
        flush();
        out.events.push_back({e.time_ms, *lane_name, TimelineEvent::kAbort,
                              fmt::format("transaction aborted {}: {}", e.transactional_id, e.detail)});
        break;
      default:
        break;
    }
  }
  flush();
  for (const auto& [key, span] : open) {
    const bool dead = latest_incarnation[span.process] > span.incarnation;
    close_span(span, key.second, dead ? dead_end(span, key.first) : end_ms);
  }

  // Thinned evenly so a long run's hundreds of commits per worker stay readable.
  const auto limit = static_cast<size_t>(std::max(max_commit_marks, 0));
  for (auto& [_, marks] : commits_by_lane) {
    if (marks.size() <= limit) {
      out.events.insert(out.events.end(), marks.begin(), marks.end());
      continue;
    }
    for (size_t i = 0; i < limit; ++i) out.events.push_back(marks[i * marks.size() / limit]);
  }
  std::stable_sort(out.events.begin(), out.events.end(),
                   [](const TimelineEvent& a, const TimelineEvent& b) { return a.time_ms < b.time_ms; });
  std::sort(out.ownership.begin(), out.ownership.end(), [](const OwnershipSpan& a, const OwnershipSpan& b) {
    return std::tie(a.from_ms, a.worker, a.tp, a.to_ms) < std::tie(b.from_ms, b.worker, b.tp, b.to_ms);
  });
  return out;
}

}  // namespace mephisto::sim::scenario
