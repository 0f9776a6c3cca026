// The checkers of checkers.h. One pass over the history collects what every invariant needs; the final logs
// are indexed by (partition, offset) with binary search, so a run of n events and m records costs O((n + m)
// log). Everything that reaches a verdict lives in ordered containers: examples and counts must not depend on
// hashing.
#include "sim/scenario/checkers.h"

#include <algorithm>
#include <charconv>
#include <climits>
#include <tuple>
#include <utility>

#include <fmt/format.h>

namespace mephisto::sim::scenario {
namespace {

using mephisto::scenario::ABORTED_READS;
using mephisto::scenario::DIFFERENTIAL;
using mephisto::scenario::DUPLICATES;
using mephisto::scenario::INCONSISTENT_OFFSETS;
using mephisto::scenario::LIVENESS;
using mephisto::scenario::LOST_WRITES;
using mephisto::scenario::NON_MONOTONIC;
using mephisto::scenario::POLL_SKIPS;
using mephisto::scenario::TABLE_ORACLE;
using mephisto::scenario::UNSEEN;

constexpr size_t kMaxExamples = 5;
constexpr int kFirstInvariant = DUPLICATES;
constexpr int kLastInvariant = DIFFERENTIAL;

// The violations of one invariant: all counted, the earliest kMaxExamples kept (evidence without a time,
// found only in the final log, after the timed ones; ties in the order found).
class Findings {
 public:
  template <typename MakeText>
  void add(int64_t time_ms, MakeText&& make_text) {
    ++count_;
    const std::pair<int64_t, uint64_t> key{time_ms < 0 ? INT64_MAX : time_ms, next_seq_++};
    // Most violations of a bad run are never shown: build their text only if they make the cut.
    if (kept_.size() >= kMaxExamples && !(key < kept_.back().first)) return;
    auto pos = std::upper_bound(kept_.begin(), kept_.end(), key,
                                [](const auto& k, const auto& entry) { return k < entry.first; });
    kept_.insert(pos, {key, Violation{time_ms, make_text()}});
    if (kept_.size() > kMaxExamples) kept_.pop_back();
  }
  [[nodiscard]] int64_t count() const { return count_; }
  [[nodiscard]] std::vector<Violation> examples() const {
    std::vector<Violation> out;
    out.reserve(kept_.size());
    for (const auto& [_, v] : kept_) out.push_back(v);
    return out;
  }

 private:
  int64_t count_ = 0;
  uint64_t next_seq_ = 0;
  std::vector<std::pair<std::pair<int64_t, uint64_t>, Violation>> kept_;
};

[[nodiscard]] const char* status_name(LogRecord::Status status) {
  switch (status) {
    case LogRecord::kPlain:
      return "plain";
    case LogRecord::kCommitted:
      return "committed";
    case LogRecord::kAborted:
      return "aborted";
    case LogRecord::kOpen:
      return "open";
  }
  return "?";
}

[[nodiscard]] std::string where(const std::string& topic, int32_t partition, int64_t offset) {
  return fmt::format("{}/{}@{}", topic, partition, offset);
}
[[nodiscard]] std::string where(const TopicPartition& tp, int64_t offset) {
  return where(tp.topic, tp.partition, offset);
}

[[nodiscard]] std::string show(const std::optional<std::string>& bytes) {
  return bytes ? fmt::format("\"{}\"", *bytes) : std::string("null");
}

[[nodiscard]] std::string who(const HistoryEvent& e) {
  return fmt::format("client {} (process {} incarnation {})", e.client, e.process, e.incarnation);
}

[[nodiscard]] const LogRecord* find_record(const TopicLog& log, int32_t partition, int64_t offset) {
  auto p = log.find(partition);
  if (p == log.end()) return nullptr;
  const auto& records = p->second;
  auto it = std::lower_bound(records.begin(), records.end(), offset,
                             [](const LogRecord& r, int64_t o) { return r.offset < o; });
  if (it == records.end() || it->offset != offset) return nullptr;
  return &*it;
}

// The per-invariant results before the scenario's check/expect lists are applied.
struct Raw {
  Findings findings;
  bool undecided = false;
  bool allowed = false;  // every finding is allowed by the guarantee
  std::string note;
};

// --- the history pass
// -------------------------------------------------------------------------------------------

struct SegmentKey {
  uint64_t client;
  TopicPartition tp;
  auto operator<=>(const SegmentKey&) const = default;
};
struct Segment {
  // The last offset polled in this positioning, or position - 1 right after a kPositioned (so a first poll
  // above the position is checked for skips too); nullopt right after an assignment or revocation.
  std::optional<int64_t> last;
  bool last_is_position = false;
};
struct Observation {
  std::optional<std::string> key, value;
  const HistoryEvent* event = nullptr;
};

class Checker {
 public:
  explicit Checker(const CheckInput& in) : in_(in) {
    if (in.history != nullptr) events_ = &in.history->events();
    history_truncated_ = in.history == nullptr || in.history->truncated();
    logs_[in.input_topic] = &in.input_log;
    if (!in.output_topic.empty()) logs_[in.output_topic] = &in.output_log;
    if (!in.changelog_topic.empty()) logs_[in.changelog_topic] = &in.changelog_log;
  }

  std::map<int, Raw> run() {
    index_input();
    index_output();
    scan_history();
    check_input_and_results();
    check_table();
    // At least once processes an event again after a crash: duplicated results (and table counts) are its
    // price.
    if (!in_.exactly_once && raw_[DUPLICATES].findings.count() > 0) {
      raw_[DUPLICATES].allowed = true;
      raw_[DUPLICATES].note = "allowed: at_least_once";
    }
    check_unseen();
    check_liveness();
    check_differential();
    // Absence of evidence proves nothing when part of the history is missing.
    for (int inv : {LOST_WRITES, ABORTED_READS, INCONSISTENT_OFFSETS, NON_MONOTONIC, POLL_SKIPS, UNSEEN}) {
      Raw& r = raw_[inv];
      if (history_truncated_ && r.findings.count() == 0 && !r.undecided) {
        r.undecided = true;
        r.note = in_.history == nullptr ? "no history recorded" : "history truncated";
      }
    }
    return std::move(raw_);
  }

 private:
  const TopicLog* log_of(const std::string& topic) const {
    auto it = logs_.find(topic);
    return it == logs_.end() ? nullptr : it->second;
  }

  void index_input() {
    for (const auto& [partition, records] : in_.input_log) {
      for (const auto& r : records) {
        if (!r.value || !committed_or_plain(r.status)) continue;
        auto [it, inserted] = input_values_.try_emplace(*r.value, InputAt{partition, r.offset});
        if (!inserted) {
          const InputAt first = it->second;
          raw_[DUPLICATES].findings.add(-1, [&] {
            return fmt::format("input value {} at {} and again at {}", show(r.value),
                               where(in_.input_topic, first.partition, first.offset),
                               where(in_.input_topic, partition, r.offset));
          });
        }
      }
    }
  }

  // The committed results by the input they answer (the app's model says which), and inputs answered twice.
  void index_output() {
    if (!results_checked()) return;
    for (const auto& [partition, records] : in_.output_log) {
      for (const auto& r : records) {
        if (!r.value || !committed_or_plain(r.status)) continue;
        std::optional<std::string> input = in_.app->input_of_result(*r.value);
        if (!input) continue;
        auto [it, inserted] = results_.try_emplace(std::move(*input), ResultAt{partition, r.offset, 0});
        ++it->second.count;
        if (!inserted) {
          const ResultAt first = it->second;
          raw_[DUPLICATES].findings.add(-1, [&] {
            return fmt::format("input {} has results at {} ({}) and at {} ({})", it->first,
                               where(in_.output_topic, first.partition, first.offset),
                               show(find_record(in_.output_log, first.partition, first.offset)->value),
                               where(in_.output_topic, partition, r.offset), show(r.value));
          });
        }
      }
    }
  }

  void scan_history() {
    if (events_ == nullptr) return;
    for (const HistoryEvent& e : *events_) {
      switch (e.kind) {
        case HistoryKind::kAssigned:
        case HistoryKind::kRevoked:
          segments_[SegmentKey{e.client, e.tp}] = Segment{};
          break;
        case HistoryKind::kPositioned:
          segments_[SegmentKey{e.client, e.tp}] = Segment{e.offset - 1, true};
          break;
        case HistoryKind::kPolled:
          on_polled(e);
          break;
        case HistoryKind::kSendAcked:
          on_acked(e);
          break;
        default:
          break;
      }
    }
  }

  void on_polled(const HistoryEvent& e) {
    const TopicLog* log = log_of(e.tp.topic);
    const LogRecord* rec = log != nullptr ? find_record(*log, e.tp.partition, e.offset) : nullptr;
    const bool same_as_log = rec != nullptr && rec->key == e.key && rec->value == e.value;
    observe(e, rec);

    if (e.read_committed && same_as_log && !committed_or_plain(rec->status)) {
      raw_[ABORTED_READS].findings.add(e.time_ms, [&] {
        return fmt::format("read_committed poll of {} {} whose transaction is {} in the final log, by {}",
                           where(e.tp, e.offset), show(e.value), status_name(rec->status), who(e));
      });
    }

    if (e.tp.topic == in_.input_topic && e.value && e.group == in_.group &&
        in_.worker_processes.count(e.process) > 0)
      polled_by_workers_.insert(*e.value);

    Segment& seg = segments_[SegmentKey{e.client, e.tp}];
    if (seg.last) {
      const int64_t last = *seg.last;
      if (e.offset <= last) {
        const bool position = seg.last_is_position;
        raw_[NON_MONOTONIC].findings.add(e.time_ms, [&] {
          return fmt::format("poll of {} {} {} {}, by {}", where(e.tp, e.offset), show(e.value),
                             position ? "below the position" : "after a poll of offset",
                             position ? last + 1 : last, who(e));
        });
      } else if (e.offset > last + 1 && log != nullptr) {
        check_skip(e, *log, last, seg.last_is_position);
      }
    }
    // After a backward jump the consumer's new order is what later polls are held to (one finding per jump).
    seg.last = e.offset;
    seg.last_is_position = false;
  }

  // Records the consumer should have returned between `last` (a polled offset, or position - 1) and this
  // poll.
  void check_skip(const HistoryEvent& e, const TopicLog& log, int64_t last, bool from_position) {
    auto p = log.find(e.tp.partition);
    if (p == log.end()) return;
    const auto& records = p->second;
    auto it = std::lower_bound(records.begin(), records.end(), last + 1,
                               [](const LogRecord& r, int64_t o) { return r.offset < o; });
    int64_t skipped = 0;
    int64_t first_skipped = -1;
    for (; it != records.end() && it->offset < e.offset; ++it) {
      if (e.read_committed && !committed_or_plain(it->status)) continue;
      if (skipped++ == 0) first_skipped = it->offset;
    }
    if (skipped == 0) return;
    raw_[POLL_SKIPS].findings.add(e.time_ms, [&] {
      return fmt::format("poll of {} after {} {} skipped {} record(s), first {}, by {}",
                         where(e.tp, e.offset), from_position ? "positioning at" : "polling",
                         from_position ? last + 1 : last, skipped, where(e.tp, first_skipped), who(e));
    });
  }

  void on_acked(const HistoryEvent& e) {
    const TopicLog* log = log_of(e.tp.topic);
    const LogRecord* rec = log != nullptr ? find_record(*log, e.tp.partition, e.offset) : nullptr;
    observe(e, rec);

    if (e.tp.topic == in_.input_topic && e.process == in_.workload_process && e.value)
      acked_inputs_.try_emplace(*e.value, &e);

    auto [it, inserted] = last_ack_.try_emplace(SegmentKey{e.client, e.tp}, e.offset);
    if (!inserted) {
      const int64_t last = it->second;
      if (e.offset <= last) {
        raw_[NON_MONOTONIC].findings.add(e.time_ms, [&] {
          return fmt::format("send acked at {} {} after an ack at offset {}, by {}", where(e.tp, e.offset),
                             show(e.value), last, who(e));
        });
      }
      it->second = std::max(last, e.offset);
    }
  }

  // Compares what a poll or an ack says is at (tp, offset) with the final log, or, for offsets the final log
  // no longer holds (compacted, truncated, a topic without a log here), with the first observation in the
  // history.
  void observe(const HistoryEvent& e, const LogRecord* rec) {
    const char* what = e.kind == HistoryKind::kPolled ? "polled" : "acked";
    if (rec != nullptr) {
      if (rec->key == e.key && rec->value == e.value) return;
      raw_[INCONSISTENT_OFFSETS].findings.add(e.time_ms, [&] {
        return fmt::format("{} {} as ({}, {}) by {}, but the final log holds ({}, {})", what,
                           where(e.tp, e.offset), show(e.key), show(e.value), who(e), show(rec->key),
                           show(rec->value));
      });
      return;
    }
    auto [it, inserted] =
        observed_.try_emplace(std::make_pair(e.tp, e.offset), Observation{e.key, e.value, &e});
    if (inserted) return;
    const Observation& first = it->second;
    if (first.key == e.key && first.value == e.value) return;
    raw_[INCONSISTENT_OFFSETS].findings.add(e.time_ms, [&] {
      return fmt::format("{} {} as ({}, {}) by {}, but {} saw ({}, {}) there", what, where(e.tp, e.offset),
                         show(e.key), show(e.value), who(e), who(*first.event), show(first.key),
                         show(first.value));
    });
  }

  // Lost writes of the input (acked but gone) and inputs the group committed past without a result.
  void check_input_and_results() {
    for (const auto& [value, ack] : acked_inputs_) {
      if (input_values_.count(value) > 0) continue;
      raw_[LOST_WRITES].findings.add(ack->time_ms, [&] {
        return fmt::format("acked write {} at {} is missing from the final input log, sent by {}",
                           show(ack->value), where(ack->tp, ack->offset), who(*ack));
      });
    }
    if (!results_checked()) return;
    for (const auto& [partition, records] : in_.input_log) {
      auto committed = in_.committed.find(TopicPartition{in_.input_topic, partition});
      if (committed == in_.committed.end()) continue;
      for (const auto& r : records) {
        if (r.offset >= committed->second) break;
        if (!r.value || !committed_or_plain(r.status)) continue;
        if (results_.count(in_.app->input_id ? in_.app->input_id(*r.value) : *r.value) > 0) continue;
        raw_[LOST_WRITES].findings.add(-1, [&] {
          return fmt::format("committed input with no output: {} {} (group committed offset {})",
                             where(in_.input_topic, partition, r.offset), show(r.value), committed->second);
        });
      }
    }
  }

  [[nodiscard]] bool results_checked() const {
    return in_.app != nullptr && static_cast<bool>(in_.app->input_of_result);
  }

  // The changelog's final committed contents against the model's fold of the final input log.
  void check_table() {
    Raw& oracle = raw_[TABLE_ORACLE];
    if (in_.changelog_topic.empty() || in_.app == nullptr || !in_.app->fold) {
      table_checked_ = false;
      oracle.note =
          in_.changelog_topic.empty() ? "the app has no table" : "the app's model has no table fold";
      return;
    }
    std::map<std::string, std::string> fold;
    for (const auto& [_, records] : in_.input_log)
      for (const auto& r : records)
        if (r.value && committed_or_plain(r.status)) in_.app->fold(WorkloadRecord{r.key, *r.value}, fold);
    // The changelog's last committed value per key, in log order within each partition (a key lives in one).
    std::map<std::string, std::pair<const LogRecord*, int32_t>> table;
    for (const auto& [partition, records] : in_.changelog_log) {
      for (const auto& r : records) {
        if (!r.key || !committed_or_plain(r.status)) continue;
        if (r.value)
          table[*r.key] = {&r, partition};
        else
          table.erase(*r.key);
      }
    }
    TableTally tally;
    auto key_it = fold.begin();
    auto table_it = table.begin();
    // Merge the two sorted maps: every key in either.
    while (key_it != fold.end() || table_it != table.end()) {
      const bool take_fold =
          table_it == table.end() || (key_it != fold.end() && key_it->first <= table_it->first);
      const bool take_table =
          key_it == fold.end() || (table_it != table.end() && table_it->first <= key_it->first);
      const std::string& key = take_fold ? key_it->first : table_it->first;
      compare_table_entry(key, take_fold ? &key_it->second : nullptr,
                          take_table ? table_it->second.first : nullptr,
                          take_table ? table_it->second.second : -1, tally);
      if (take_fold) ++key_it;
      if (take_table) ++table_it;
    }
    // At least once may count an event twice after a crash (the table's state is ahead of the committed
    // input). It may also count one less: nothing fences a worker that lost a partition, so a changelog write
    // it sent before losing it can land after the new owner's (found by
    // scenarios/swarm-at-least-once.textproto, seed 51: a write held 30 s by a crashed leader overwrote the
    // count 5 with 3). Exactly once fences it (KIP-447).
    if (!in_.exactly_once && (tally.above > 0 || tally.below > 0) && !tally.below_or_bad) {
      oracle.allowed = true;
      oracle.note = tally.below > 0
                        ? "allowed: at_least_once (values above the model: inputs counted again; below: a "
                          "late changelog write from a worker that had lost the partition)"
                        : "allowed: at_least_once";
    }
  }

  struct TableTally {
    int64_t above = 0;
    int64_t below = 0;  // at least once only (under exactly once a value below the model is a lost write)
    bool below_or_bad = false;
  };

  // One key: the model's value (`expected`, nullptr: the model has no entry) against the changelog's last
  // committed record (`rec`, nullptr: none).
  void compare_table_entry(const std::string& key, const std::string* expected, const LogRecord* rec,
                           int32_t partition, TableTally& tally) {
    Raw& oracle = raw_[TABLE_ORACLE];
    const std::string at =
        rec != nullptr ? where(in_.changelog_topic, partition, rec->offset) : std::string("(no entry)");
    const std::string none;
    const std::string& actual = rec != nullptr ? *rec->value : none;
    const std::string& model = expected != nullptr ? *expected : none;
    // Which side of the model the changelog is on, when the model can say (compare): a missing entry is
    // below what the model holds, an entry the model lacks above it.
    const bool ordered = static_cast<bool>(in_.app->compare);
    std::optional<int> order = actual == model && (rec != nullptr) == (expected != nullptr) ? 0 : 1;
    if (ordered && order != 0) {
      order = rec == nullptr        ? std::optional<int>(-1)
              : expected == nullptr ? std::optional<int>(1)
                                    : in_.app->compare(actual, model);
    }
    if (!order) {
      tally.below_or_bad = true;
      oracle.findings.add(-1, [&] {
        return fmt::format("key \"{}\": changelog {} holds {}, not a value of this table", key, at,
                           show(rec->value));
      });
      return;
    }
    if (*order == 0) return;
    const auto text = [&] {
      return fmt::format("key \"{}\": table value {} at {}, the model's {}", key,
                         rec != nullptr ? show(rec->value) : "(none)", at,
                         expected != nullptr ? fmt::format("\"{}\"", model) : "(none)");
    };
    oracle.findings.add(-1, text);
    if (!ordered) {
      // Unordered: a difference at least once may explain (the table's state ahead of the committed input),
      // a violation under exactly once.
      if (in_.exactly_once) tally.below_or_bad = true;
      ++tally.above;
    } else if (*order > 0) {
      ++tally.above;
      raw_[DUPLICATES].findings.add(-1, text);
    } else if (in_.exactly_once) {
      tally.below_or_bad = true;
      raw_[LOST_WRITES].findings.add(-1, text);
    } else {
      ++tally.below;
    }
  }

  void check_unseen() {
    Raw& r = raw_[UNSEEN];
    if (!in_.healed || history_truncated_) {
      // A truncated history misses polls, so every later ack would look unseen: no findings at all.
      r.undecided = true;
      r.note = !in_.healed              ? "the run never healed"
               : in_.history == nullptr ? "no history recorded"
                                        : "history truncated";
      return;
    }
    for (const auto& [value, ack] : acked_inputs_) {
      // A write missing from the log is lost-writes' finding; unseen is about what the log holds.
      if (input_values_.count(value) == 0 || polled_by_workers_.count(value) > 0) continue;
      r.findings.add(ack->time_ms, [&] {
        return fmt::format("acked {} at {} never polled by group {}, sent by {}", show(ack->value),
                           where(ack->tp, ack->offset), in_.group, who(*ack));
      });
    }
  }

  void check_liveness() {
    Raw& r = raw_[LIVENESS];
    if (in_.settled) {
      r.note = fmt::format("settled {} ms after the heal (bound {} ms)", in_.settled_after_ms,
                           in_.liveness_bound_ms);
      return;
    }
    const std::string why = in_.not_settled_why.empty() ? std::string("not settled") : in_.not_settled_why;
    r.note = fmt::format("not settled within {} ms of the heal: {}", in_.liveness_bound_ms, why);
    r.findings.add(-1, [&] { return r.note; });
  }

  void check_differential() {
    if (!in_.differential) return;
    const DifferentialOutcome& d = *in_.differential;
    Raw& r = raw_[DIFFERENTIAL];
    r.note = d.note;
    if (!d.undecided.empty()) {
      r.undecided = true;
      r.note = d.undecided;
      return;
    }
    for (int64_t i = 0; i < d.differences; ++i) {
      r.findings.add(-1, [&] {
        return i < static_cast<int64_t>(d.examples.size()) ? d.examples[static_cast<size_t>(i)]
                                                           : std::string();
      });
    }
    if (d.differences > 0) return;
    if (d.allowed_duplicates > 0) {
      r.allowed = true;
      r.findings.add(-1, [&] {
        return fmt::format("{} output record(s) came out again (at least once allows a replay)",
                           d.allowed_duplicates);
      });
    }
    if (d.allowed_table_differences > 0) {
      r.allowed = true;
      r.findings.add(-1, [&] {
        return fmt::format(
            "{} table entr(ies) off the reference (at least once: a worker that lost a partition is "
            "not fenced from its changelog), first: {}",
            d.allowed_table_differences, d.allowed_table_example);
      });
    }
  }

 public:
  [[nodiscard]] bool table_checked() const { return table_checked_; }

 private:
  struct InputAt {
    int32_t partition;
    int64_t offset;
  };
  struct ResultAt {
    int32_t partition;
    int64_t offset;
    int64_t count;
  };

  const CheckInput& in_;
  bool table_checked_ = true;
  const std::vector<HistoryEvent>* events_ = nullptr;
  bool history_truncated_ = false;
  std::map<std::string, const TopicLog*> logs_;
  std::map<int, Raw> raw_;
  std::map<std::string, InputAt> input_values_;  // visible input value -> where
  std::map<std::string, ResultAt> results_;      // input value -> its first committed result, and how many
  std::map<std::string, const HistoryEvent*> acked_inputs_;  // workload's acked input value -> first ack
  std::set<std::string> polled_by_workers_;
  std::map<SegmentKey, Segment> segments_;
  std::map<SegmentKey, int64_t> last_ack_;
  std::map<std::pair<TopicPartition, int64_t>, Observation> observed_;
};

[[nodiscard]] bool contains(const std::vector<Invariant>& list, int invariant) {
  return std::find(list.begin(), list.end(), static_cast<Invariant>(invariant)) != list.end();
}

}  // namespace

std::vector<Verdict> run_checkers(const CheckInput& input, const std::vector<Invariant>& checks,
                                  const std::vector<Invariant>& expected) {
  Checker checker(input);
  std::map<int, Raw> raw = checker.run();
  std::vector<Verdict> out;
  for (int inv = kFirstInvariant; inv <= kLastInvariant; ++inv) {
    Verdict v;
    v.invariant = static_cast<Invariant>(inv);
    const bool is_expected = contains(expected, inv);
    const bool checked = checks.empty() || contains(checks, inv) || is_expected;
    const bool skipped =
        (inv == TABLE_ORACLE && !checker.table_checked()) || (inv == DIFFERENTIAL && !input.differential);
    if (!checked || skipped) {
      v.status = VerdictStatus::kNotChecked;
      if (checked) v.note = raw[inv].note;
      out.push_back(std::move(v));
      continue;
    }
    Raw& r = raw[inv];
    v.count = r.findings.count();
    v.examples = r.findings.examples();
    v.note = r.note;
    if (v.count > 0)
      v.status = r.allowed ? VerdictStatus::kAllowed : VerdictStatus::kViolated;
    else
      v.status = r.undecided ? VerdictStatus::kUndecided : VerdictStatus::kHeld;
    if (is_expected) {
      if (v.count > 0)
        v.status = VerdictStatus::kExpectedSeen;
      else if (v.status == VerdictStatus::kHeld)
        v.status = VerdictStatus::kExpectedMissing;
    }
    out.push_back(std::move(v));
  }
  return out;
}

}  // namespace mephisto::sim::scenario
