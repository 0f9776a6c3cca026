#include "sim/replay/replay_session.h"

#include <algorithm>
#include <cassert>
#include <functional>

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace mephisto::replay {
namespace {

using trace::Event;

bool is_input(const Event& event) {
  switch (event.kind_case()) {
    case Event::kAssigned:
    case Event::kRevoked:
    case Event::kPolled:
    case Event::kTableApplied:
    case Event::kRestoreEnd:
    case Event::kTableActive:
    case Event::kTimerFired:
      return true;
    default:
      return false;
  }
}

std::string printable(const std::string& bytes) {
  constexpr size_t kMaxShown = 60;
  std::string out;
  for (size_t i = 0; i < bytes.size() && i < kMaxShown; ++i) {
    const auto c = static_cast<unsigned char>(bytes[i]);
    out += (c >= 0x20 && c < 0x7f && c != '"') ? std::string(1, static_cast<char>(c))
                                               : fmt::format("\\x{:02x}", c);
  }
  if (bytes.size() > kMaxShown) out += fmt::format("...({} bytes)", bytes.size());
  return "\"" + out + "\"";
}

std::string partitions_text(const google::protobuf::RepeatedPtrField<trace::Partition>& partitions) {
  std::vector<std::string> parts;
  for (const auto& p : partitions) parts.push_back(fmt::format("{}[{}]", p.topic(), p.partition()));
  std::sort(parts.begin(), parts.end());
  return fmt::format("{{{}}}", fmt::join(parts, ", "));
}

std::string partitions_text(const std::vector<TopicPartition>& partitions) {
  std::vector<std::string> parts;
  for (const auto& p : partitions) parts.push_back(fmt::format("{}[{}]", p.topic, p.partition));
  std::sort(parts.begin(), parts.end());
  return fmt::format("{{{}}}", fmt::join(parts, ", "));
}

std::string sources_text(const std::vector<SendSource>& sources);
std::vector<SendSource> sources_of(const trace::Sent& sent);

std::string describe_event(const Event& event) {
  switch (event.kind_case()) {
    case Event::kAssigned:
      return "assigned " + partitions_text(event.assigned().partitions());
    case Event::kRevoked:
      return (event.revoked().lost() ? "lost " : "revoked ") + partitions_text(event.revoked().partitions());
    case Event::kPolled: {
      const auto& records = event.polled().records();
      if (records.empty()) return "an empty batch";
      return fmt::format("a batch of {} record(s) from {}[{}]@{}", records.size(), records[0].topic(),
                         records[0].partition(), records[0].offset());
    }
    case Event::kTableApplied: {
      const auto& records = event.table_applied().records();
      if (records.empty()) return "no changelog records";
      return fmt::format("{} changelog record(s) of {}[{}] from offset {}", records.size(),
                         records[0].topic(), records[0].partition(), records[0].offset());
    }
    case Event::kRestoreEnd:
      return fmt::format("the restore end of {}[{}] at {}", event.restore_end().changelog().topic(),
                         event.restore_end().changelog().partition(), event.restore_end().end_offset());
    case Event::kTableActive:
      return fmt::format("table '{}' partition {} turning active", event.table_active().table(),
                         event.table_active().partition());
    case Event::kTimerFired:
      return "timer " + event.timer_fired().timer() + " firing";
    case Event::kTableOpened:
      return fmt::format(
          "table '{}' partition {} opened: {} entries, applied offset {}", event.table_opened().table(),
          event.table_opened().partition(), event.table_opened().entries(),
          event.table_opened().has_applied_offset() ? std::to_string(event.table_opened().applied_offset())
                                                    : std::string("none"));
    case Event::kSent:
      return fmt::format("send #{}: {} from {}", event.sent().send_id(),
                         describe_record(event.sent().record()), sources_text(sources_of(event.sent())));
    case Event::kDelivered:
      return fmt::format("delivery of #{}: {}", event.delivered().send_id(),
                         event.delivered().outcome().ok()
                             ? fmt::format("offset {}", event.delivered().offset())
                             : event.delivered().outcome().error());
    case Event::kCommitted:
      return fmt::format("offset commit of {} partition(s): {}", event.committed().offsets_size(),
                         event.committed().outcome().ok() ? "ok" : event.committed().outcome().error());
    case Event::kTransaction: {
      static constexpr const char* kSteps[] = {"begin", "commit", "abort"};
      const auto step = static_cast<size_t>(event.transaction().step());
      return fmt::format("transaction {}: {}", step < 3 ? kSteps[step] : "?",
                         event.transaction().outcome().ok() ? "ok" : event.transaction().outcome().error());
    }
    case Event::kStopped:
      return "stopped: " +
             (event.stopped().outcome().ok() ? std::string("ok") : event.stopped().outcome().error());
    case Event::kFault:
      return "fault: " + event.fault().description();
    case Event::kDropped:
      return fmt::format("{} polled record(s) dropped unprocessed (a revoke)",
                         event.dropped().records_size());
    default:
      return "event kind " + std::to_string(static_cast<int>(event.kind_case()));
  }
}

std::string sources_text(const std::vector<SendSource>& sources) {
  if (sources.empty()) return "no input";
  std::vector<std::string> parts;
  for (const SendSource& s : sources) {
    parts.push_back(s.timer.empty() ? fmt::format("{}[{}]@{}", s.topic, s.partition, s.offset)
                                    : "timer " + s.timer);
  }
  return fmt::format("{}", fmt::join(parts, " + "));
}

// The fields a recorded send and a replayed one must agree on: where it goes and what it says.
struct Comparable {
  std::string topic;
  int32_t partition = -1;
  bool has_key = false;
  uint64_t key_hash = 0;
  bool has_value = false;
  uint64_t value_hash = 0;
  std::vector<std::pair<std::string, uint64_t>> headers;
  bool operator==(const Comparable&) const = default;
};

uint64_t hash_of(const std::string& bytes) {
  return trace::payload_hash(bytes);
}

Comparable comparable(const trace::Record& record) {
  Comparable out{record.topic(),
                 record.partition(),
                 record.has_key(),
                 record.key_hash(),
                 record.has_value(),
                 record.value_hash(),
                 {}};
  for (const auto& header : record.headers()) {
    out.headers.emplace_back(header.key(), header.has_value() ? hash_of(header.value()) : 0);
  }
  return out;
}

Comparable comparable(const ProducerRecord& record) {
  Comparable out{record.topic,
                 record.partition,
                 record.key.has_value(),
                 record.key.has_value() ? hash_of(*record.key) : 0,
                 record.value.has_value(),
                 record.value.has_value() ? hash_of(*record.value) : 0,
                 {}};
  for (const Header& header : record.headers) {
    out.headers.emplace_back(header.key, header.value.has_value() ? hash_of(*header.value) : 0);
  }
  return out;
}

std::string describe_sent(const ProducerRecord& record) {
  std::string out = record.topic + (record.partition >= 0 ? fmt::format("[{}]", record.partition) : "");
  out += " key=" + (record.key.has_value() ? printable(*record.key) : std::string("null"));
  out += " value=" + (record.value.has_value() ? printable(*record.value) : std::string("null (tombstone)"));
  return out;
}

std::vector<SendSource> sources_of(const trace::Sent& sent) {
  std::vector<SendSource> out;
  for (const auto& s : sent.sources()) out.push_back({s.topic(), s.partition(), s.offset(), s.timer()});
  return out;
}

}  // namespace

std::string describe_trace_event(const trace::Event& event) {
  return fmt::format("{:>6} t={}ms {}", event.index(), event.time_ms(), describe_event(event));
}

std::string describe_record(const trace::Record& record) {
  std::string out = record.topic() + (record.partition() >= 0 ? fmt::format("[{}]", record.partition()) : "");
  if (record.offset() >= 0) out += fmt::format("@{}", record.offset());
  // Payloads when the trace has them, else the hashes it recorded instead.
  const auto shown = [](bool has, const std::string& bytes, uint64_t hash) {
    if (!has) return std::string("null");
    if (!bytes.empty() || hash == hash_of("")) return printable(bytes);
    return fmt::format("#{:016x}", hash);
  };
  out += " key=" + shown(record.has_key(), record.key(), record.key_hash());
  out += " value=" + (record.has_value() ? shown(true, record.value(), record.value_hash())
                                         : std::string("null (tombstone)"));
  return out;
}

ReplaySession::ReplaySession(const trace::Incarnation& incarnation, ReplayOptions options)
    : incarnation_(incarnation), options_(options) {
  for (const Event& event : incarnation_.events) {
    if (is_input(event)) {
      inputs_.push_back(&event);
      sends_before_.push_back(sends_recorded_);
      if (options_.stop_at < 0 || static_cast<int64_t>(event.index()) < options_.stop_at)
        limit_ = inputs_.size();
    }
    switch (event.kind_case()) {
      case Event::kPolled:
        for (const auto& r : event.polled().records())
          polled_index_[{r.topic(), r.partition(), r.offset()}] = event.index();
        break;
      case Event::kSent:
        expected_[sources_of(event.sent())].push_back({event.index(), &event.sent()});
        ++sends_recorded_;
        for (const auto& s : event.sent().sources()) {
          // The input of the last recorded send: a killed worker's sends from it on may be in the lost tail.
          auto polled = polled_index_.find({s.topic(), s.partition(), s.offset()});
          if (polled != polled_index_.end())
            last_sent_source_index_ = std::max(last_sent_source_index_, polled->second);
        }
        break;
      case Event::kDelivered:
        recorded_deliveries_[event.delivered().send_id()] = &event.delivered();
        delivery_index_[event.delivered().send_id()] = event.index();
        if (!event.delivered().outcome().ok() && !first_failed_delivery_.has_value() &&
            event.delivered().outcome().error_code() != static_cast<int32_t>(ErrorCode::kDestroy)) {
          first_failed_delivery_ = event.index();
        }
        break;
      case Event::kTransaction:
      case Event::kCommitted:
        if (!first_failure_.has_value() &&
            (event.has_transaction() ? (!event.transaction().outcome().ok() ||
                                        event.transaction().step() == trace::Transaction::ABORT)
                                     : !event.committed().outcome().ok())) {
          first_failure_ = event.index();
        }
        break;
      case Event::kRevoked:
        if (event.revoked().lost() && !first_failure_.has_value()) first_failure_ = event.index();
        break;
      case Event::kStopped:
        clean_stop_ = event.stopped().outcome().ok();
        break;
      case Event::kDropped:
        for (const auto& r : event.dropped().records()) {
          // The occurrence dropped is the latest poll of the record before the drop.
          auto polled = polled_index_.find({r.topic(), r.partition(), r.offset()});
          if (polled != polled_index_.end())
            dropped_[polled->second].insert({r.topic(), r.partition(), r.offset()});
        }
        break;
      case Event::kTableOpened:
        snapshots_[{event.table_opened().table(), event.table_opened().partition()}].push_back(
            &event.table_opened());
        break;
      default:
        break;
    }
  }
  skip_dropped();
}

void ReplaySession::attach(Scheduler* scheduler, const Clock* clock, int64_t start_ms) {
  scheduler_ = scheduler;
  clock_ = clock;
  start_ms_ = start_ms;
}

const Event* ReplaySession::head() const {
  if (stopping_ || cursor_ >= limit_) return nullptr;
  return inputs_[cursor_];
}

bool ReplaySession::inputs_done() const {
  return cursor_ >= limit_ || fatal_.has_value();
}

void ReplaySession::wake_all() {
  stopping_ = true;
  for (FiberId fiber : waiters_) scheduler_->wake(fiber);
}

bool ReplaySession::wait_for(const std::function<bool()>& ready, int64_t deadline_ms) {
  assert(scheduler_ != nullptr && clock_ != nullptr);
  for (;;) {
    if (stopping_) {
      // Nothing more is handed out, but a client's poll still lasts its timeout: the worker's loops must not
      // spin without virtual time passing while it shuts down.
      if (deadline_ms != INT64_MAX && clock_->now_ms() < deadline_ms) scheduler_->wait_until_ms(deadline_ms);
      return false;
    }
    const Event* next = head();
    if (next != nullptr && !head_served_ && ready()) {
      // Not before its recorded time: the replayed worker's clock-driven decisions (commit intervals) then
      // see the inputs spaced as the recorded worker did. Virtual time: waiting costs nothing.
      const int64_t due_ms = start_ms_ + next->time_ms();
      if (clock_->now_ms() >= due_ms) {
        // Nor before the replayed worker made the sends the recorded one had made by then: an input must find
        // the worker as far along (a revoke must not drop an event the recorded worker had processed).
        // Bounded, so a replay that diverged (a send that never comes) still goes on.
        if (sends_seen_ >= sends_before_[cursor_]) return true;
        if (catch_up_since_ms_ < 0) catch_up_since_ms_ = clock_->now_ms();
        const int64_t give_up_ms = catch_up_since_ms_ + kCatchUpMs;
        if (clock_->now_ms() >= give_up_ms) return true;
        if (clock_->now_ms() >= deadline_ms) return false;
        const FiberId self = scheduler_->current();
        waiters_.insert(self);
        scheduler_->park_until(std::min(deadline_ms, give_up_ms));  // woken by on_send
        waiters_.erase(self);
        continue;
      }
      if (due_ms > deadline_ms) {
        scheduler_->wait_until_ms(deadline_ms);
        return false;
      }
      scheduler_->wait_until_ms(due_ms);
      continue;
    }
    if (clock_->now_ms() >= deadline_ms) return false;
    const FiberId self = scheduler_->current();
    waiters_.insert(self);
    scheduler_->park_until(deadline_ms);
    waiters_.erase(self);
  }
}

void ReplaySession::skip_dropped() {
  // What-if: the batch at the fault's event never reaches the worker.
  while (options_.fault == InjectedFault::kDrop && cursor_ < limit_ &&
         static_cast<int64_t>(inputs_[cursor_]->index()) == options_.fault_at &&
         inputs_[cursor_]->kind_case() == Event::kPolled) {
    ++cursor_;
  }
}

void ReplaySession::advance() {
  ++cursor_;
  head_served_ = false;
  catch_up_since_ms_ = -1;
  skip_dropped();
  for (FiberId fiber : waiters_) scheduler_->wake(fiber);
}

std::vector<const trace::Record*> ReplaySession::fed_records(const Event& polled) const {
  std::vector<const trace::Record*> out;
  const auto dropped = dropped_.find(polled.index());
  for (const auto& r : polled.polled().records()) {
    if (dropped != dropped_.end() && dropped->second.count({r.topic(), r.partition(), r.offset()}) > 0)
      continue;
    out.push_back(&r);
  }
  return out;
}

const Event* ReplaySession::next_group_input(const std::set<TopicPartition>& paused, int64_t deadline_ms,
                                             std::vector<const trace::Record*>* records) {
  for (;;) {
    const bool ready = wait_for(
        [&] {
          const Event& next = *head();
          if (next.kind_case() == Event::kAssigned || next.kind_case() == Event::kRevoked) return true;
          if (next.kind_case() != Event::kPolled) return false;
          for (const auto& r : next.polled().records()) {
            if (paused.count(TopicPartition{r.topic(), r.partition()}) > 0) return false;
          }
          return true;
        },
        deadline_ms);
    if (!ready) return nullptr;
    records->clear();
    if (head()->kind_case() == Event::kPolled) {
      *records = fed_records(*head());
      if (records->empty()) {
        advance();  // every record of it was dropped unprocessed: nothing to feed, no report to wait for
        continue;
      }
    }
    head_served_ = true;
    return head();
  }
}

const Event* ReplaySession::next_table_batch(const std::set<TopicPartition>& assigned, int64_t deadline_ms) {
  const bool ready = wait_for(
      [&] {
        const Event& next = *head();
        if (next.kind_case() != Event::kTableApplied || next.table_applied().records().empty()) return false;
        const auto& r = next.table_applied().records(0);
        return assigned.count(TopicPartition{r.topic(), r.partition()}) > 0;
      },
      deadline_ms);
  if (!ready) return nullptr;
  head_served_ = true;
  return head();
}

std::optional<int64_t> ReplaySession::next_restore_end(const TopicPartition& changelog, int64_t deadline_ms) {
  const bool ready = wait_for(
      [&] {
        const Event& next = *head();
        return next.kind_case() == Event::kRestoreEnd &&
               next.restore_end().changelog().topic() == changelog.topic &&
               next.restore_end().changelog().partition() == changelog.partition;
      },
      deadline_ms);
  if (!ready) return std::nullopt;
  // Not marked served: a query the tables then discard (it was for a restore a rebalance restarted) must not
  // keep the answer from the next query, which is the one the recording holds.

  return head()->restore_end().end_offset();
}

int64_t ReplaySession::reader_position(const TopicPartition& changelog, int64_t fallback) const {
  const Event* next = head();
  if (next == nullptr || next->kind_case() != Event::kTableActive) return fallback;
  const auto found = restore_ends_.find(changelog);
  if (found == restore_ends_.end()) return fallback;
  // Only the partition whose turn it is (a changelog topic per table: app id, table name).
  const std::string topic = incarnation_.header.app_id() + "-" + next->table_active().table() + "-changelog";
  if (topic != changelog.topic || next->table_active().partition() != changelog.partition) return fallback;
  return std::max(fallback, found->second);
}

void ReplaySession::wait_until_fed(int64_t event_index) {
  for (;;) {
    const Event* next = head();
    if (stopping_ || next == nullptr || static_cast<int64_t>(next->index()) > event_index) return;
    const FiberId self = scheduler_->current();
    waiters_.insert(self);
    scheduler_->park_until(INT64_MAX);  // woken as the cursor moves on (advance) or the replay stops
    waiters_.erase(self);
  }
}

ReplaySession::Delivery ReplaySession::take_delivery() {
  Delivery out = next_delivery_.value_or(Delivery{});
  next_delivery_.reset();
  return out;
}

std::optional<const trace::TableOpened*> ReplaySession::take_table_snapshot(const std::string& table,
                                                                            int32_t partition) {
  auto found = snapshots_.find({table, partition});
  if (found == snapshots_.end() || found->second.empty()) return std::nullopt;
  const trace::TableOpened* snapshot = found->second.front();
  found->second.pop_front();
  return snapshot;
}

void ReplaySession::diverge(uint64_t event_index, std::string what, std::string expected,
                            std::string actual) {
  if (divergences_.size() >= options_.max_divergences) return;
  divergences_.push_back({event_index, std::move(what), std::move(expected), std::move(actual)});
}

std::optional<Divergence> ReplaySession::first_divergence() const {
  if (divergences_.empty()) return std::nullopt;
  return *std::min_element(
      divergences_.begin(), divergences_.end(),
      [](const Divergence& a, const Divergence& b) { return a.event_index < b.event_index; });
}

void ReplaySession::consumed(Event::KindCase kind, const std::string& actual,
                             const std::function<bool(const Event&)>& same) {
  if (fatal_.has_value() || cursor_ >= limit_) return;  // past the replayed range: nothing to check
  const Event& expected = *inputs_[cursor_];
  if (expected.kind_case() != kind || !same(expected)) {
    // The replayed worker took another input than the recorded one did: nothing after this is comparable.
    diverge(expected.index(), "input", describe_event(expected), actual);
    fatal_ = fmt::format("the replayed worker consumed {} where the recorded one consumed {} (event {})",
                         actual, describe_event(expected), expected.index());
    wake_all();
    return;
  }
  advance();
}

void ReplaySession::finish() {
  for (auto& [key, sends] : expected_) {
    // With --stop-at, the inputs from there on were never fed: their sends are not missing.
    int64_t source_index = -1;
    for (const SendSource& s : key) {
      auto found = polled_index_.find({s.topic, s.partition, s.offset});
      if (found != polled_index_.end())
        source_index = std::max(source_index, static_cast<int64_t>(found->second));
    }
    for (const ExpectedSend& send : sends) {
      const int64_t fed_by = source_index >= 0 ? source_index : static_cast<int64_t>(send.event_index);
      if (options_.stop_at >= 0 && fed_by >= options_.stop_at) continue;
      diverge(send.event_index, "missing send",
              describe_record(send.sent->record()) + " from " + sources_text(key), "nothing sent");
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Recorder

void ReplaySession::on_start(const RecordedStart& start) {
  std::vector<std::string> recorded(incarnation_.header.declarations().begin(),
                                    incarnation_.header.declarations().end());
  if (recorded == start.declarations) return;
  std::string missing;
  std::string extra;
  for (const std::string& line : recorded) {
    if (std::find(start.declarations.begin(), start.declarations.end(), line) == start.declarations.end())
      missing += "\n    - " + line;
  }
  for (const std::string& line : start.declarations) {
    if (std::find(recorded.begin(), recorded.end(), line) == recorded.end()) extra += "\n    + " + line;
  }
  fatal_ = fmt::format(
      "the trace was recorded by a different app than the one replaying it (app '{}', id '{}'): declarations "
      "differ (- recorded only, + this build only):{}{}",
      incarnation_.header.app_name(), incarnation_.header.app_id(), missing, extra);
  diverge(0, "app", fmt::format("{}", fmt::join(recorded, "; ")),
          fmt::format("{}", fmt::join(start.declarations, "; ")));
  wake_all();
}

void ReplaySession::on_assigned(const std::vector<TopicPartition>& partitions, int32_t generation) {
  (void)generation;  // the generation is the group's business; the replayed worker gets the recorded one
  const std::string actual = "assigned " + partitions_text(partitions);
  consumed(Event::kAssigned, actual, [&](const Event& e) {
    return partitions_text(e.assigned().partitions()) == partitions_text(partitions);
  });
}

void ReplaySession::on_revoked(const std::vector<TopicPartition>& partitions, bool lost) {
  const std::string actual = (lost ? "lost " : "revoked ") + partitions_text(partitions);
  consumed(Event::kRevoked, actual, [&](const Event& e) {
    return e.revoked().lost() == lost &&
           partitions_text(e.revoked().partitions()) == partitions_text(partitions);
  });
}

void ReplaySession::on_polled(const std::vector<const ConsumerRecord*>& records) {
  const std::string actual = records.empty()
                                 ? "an empty batch"
                                 : fmt::format("a batch of {} record(s) from {}[{}]@{}", records.size(),
                                               records[0]->topic, records[0]->partition, records[0]->offset);
  consumed(Event::kPolled, actual, [&](const Event& e) {
    const std::vector<const trace::Record*> recorded = fed_records(e);
    if (recorded.size() != records.size()) return false;
    for (size_t i = 0; i < records.size(); ++i) {
      const trace::Record& r = *recorded[i];
      if (r.topic() != records[i]->topic || r.partition() != records[i]->partition ||
          r.offset() != records[i]->offset)
        return false;
    }
    return true;
  });
}

void ReplaySession::on_dropped(const std::vector<const ConsumerRecord*>& records) {
  // The replayed worker's own drops at a revoke: its inputs were fed without the recorded drops already.
  (void)records;
}

void ReplaySession::on_table_opened(const std::string& table, int32_t partition,
                                    std::optional<int64_t> applied_offset,
                                    const std::vector<std::pair<std::string, std::string>>& contents) {
  // The replay store factory built the store from the recorded snapshot: nothing to compare here.
  (void)table;
  (void)partition;
  (void)applied_offset;
  (void)contents;
}

void ReplaySession::on_table_applied(const std::vector<ConsumerRecord>& records) {
  const std::string actual =
      records.empty() ? "no changelog records"
                      : fmt::format("{} changelog record(s) of {}[{}] from offset {}", records.size(),
                                    records[0].topic, records[0].partition, records[0].offset);
  consumed(Event::kTableApplied, actual, [&](const Event& e) {
    // A suffix of the recorded records: the replayed store may already hold the first ones — this worker's
    // own writes, flushed at a commit point that came earlier in the replay than in the recording (at least
    // once flushes at offset commits) — and the reader never applies a record twice.
    const auto& recorded = e.table_applied().records();
    if (static_cast<size_t>(recorded.size()) < records.size()) return false;
    const size_t skipped = static_cast<size_t>(recorded.size()) - records.size();
    for (size_t i = 0; i < records.size(); ++i) {
      if (recorded[static_cast<int>(skipped + i)].offset() != records[i].offset) return false;
    }
    return true;
  });
}

void ReplaySession::on_restore_end(const TopicPartition& changelog, int64_t end_offset) {
  restore_ends_[changelog] = end_offset;
  consumed(Event::kRestoreEnd,
           fmt::format("the restore end of {}[{}] at {}", changelog.topic, changelog.partition, end_offset),
           [&](const Event& e) {
             return e.restore_end().changelog().topic() == changelog.topic &&
                    e.restore_end().changelog().partition() == changelog.partition &&
                    e.restore_end().end_offset() == end_offset;
           });
}

void ReplaySession::on_table_active(const std::string& table, int32_t partition) {
  consumed(Event::kTableActive, fmt::format("table '{}' partition {} turning active", table, partition),
           [&](const Event& e) {
             return e.table_active().table() == table && e.table_active().partition() == partition;
           });
}

void ReplaySession::on_timer(const std::string& timer) {
  consumed(Event::kTimerFired, "timer " + timer + " firing",
           [&](const Event& e) { return e.timer_fired().timer() == timer; });
}

bool ReplaySession::await_timer(const std::string& timer) {
  if (scheduler_ == nullptr) return false;
  const bool ready = wait_for(
      [&] { return head()->kind_case() == Event::kTimerFired && head()->timer_fired().timer() == timer; },
      INT64_MAX);
  if (ready) head_served_ = true;
  return ready;
}

uint64_t ReplaySession::recorded_send_index(uint64_t send_id) const {
  auto found = delivery_index_.find(send_id);
  return found == delivery_index_.end() ? UINT64_MAX : found->second;
}

uint64_t ReplaySession::on_send(const ProducerRecord& record, const std::vector<SendSource>& sources) {
  static_assert(sizeof(uint64_t) == 8);
  const uint64_t id = sends_matched_ + sends_beyond_tail_ + divergences_.size() + 1;
  uint64_t source_index = 0;
  for (const SendSource& s : sources) {
    auto found = polled_index_.find({s.topic, s.partition, s.offset});
    if (found != polled_index_.end()) source_index = std::max(source_index, found->second);
  }
  if (options_.fault == InjectedFault::kFailSend && !fault_fired_ &&
      static_cast<int64_t>(source_index) >= options_.fault_at) {
    fault_fired_ = true;
    next_delivery_ =
        Delivery{Error::of(ErrorCode::kMessageTimedOut,
                           fmt::format("injected at event {}: delivery timed out", options_.fault_at)),
                 -1, -1};
  }
  auto found = expected_.find(sources);
  if (found == expected_.end() || found->second.empty()) {
    const bool never_sent_for = found == expected_.end();
    if (!clean_stop_ &&
        ((!incarnation_.complete && source_index >= last_sent_source_index_) || never_sent_for)) {
      // The recorded worker ended (killed, or stopped on a failure) before it sent anything for this input —
      // it was still buffered, or its sends were in the lost tail: nothing to compare.
      ++sends_beyond_tail_;
      return id;
    }
    diverge(source_index, "unexpected send", "no send from " + sources_text(sources),
            describe_sent(record) + " from " + sources_text(sources));
    return id;
  }
  const ExpectedSend expected = found->second.front();
  found->second.pop_front();
  ++sends_seen_;
  for (FiberId fiber : waiters_) scheduler_->wake(fiber);
  const trace::Record& recorded = expected.sent->record();
  Comparable want = comparable(recorded);
  Comparable got = comparable(record);
  if (want.partition < 0) got.partition = -1;  // the producer chose: compared through the key
  if (!(want == got)) {
    diverge(expected.event_index, "send", describe_record(recorded) + " from " + sources_text(sources),
            describe_sent(record));
  } else {
    ++sends_matched_;
  }
  if (!next_delivery_.has_value()) {
    auto delivered = recorded_deliveries_.find(expected.sent->send_id());
    // Only the recorded worker's first delivery failure is an input; any later one (records purged by the
    // abort it caused, or by a failed commit, lost partitions, the producer torn down at a crash) is a
    // consequence the replayed worker reaches, or not, by itself.
    const bool failed = delivered != recorded_deliveries_.end() && !delivered->second->outcome().ok() &&
                        first_failed_delivery_.has_value() &&
                        recorded_send_index(expected.sent->send_id()) == *first_failed_delivery_ &&
                        (!first_failure_.has_value() || *first_failed_delivery_ < *first_failure_);
    if (failed) {
      const auto& outcome = delivered->second->outcome();
      next_delivery_ = Delivery{Error::of(static_cast<ErrorCode>(outcome.error_code()), outcome.error()), -1,
                                -1, static_cast<int64_t>(*first_failed_delivery_)};
    } else if (delivered != recorded_deliveries_.end()) {
      next_delivery_ = Delivery{{}, delivered->second->partition(), delivered->second->offset()};
    }
  }
  return id;
}

void ReplaySession::on_delivered(uint64_t send_id, const Result<RecordMetadata>& result) {
  (void)send_id;  // the replay producer reported what take_delivery() said
  (void)result;
}

void ReplaySession::on_commit(const std::map<TopicPartition, int64_t>& offsets, const Status& result) {
  // Commit points follow the replay's own (virtual) clock; they are not an output to compare.
  (void)offsets;
  (void)result;
}

void ReplaySession::on_transaction(TransactionStep step, const std::map<TopicPartition, int64_t>& offsets,
                                   const Status& result) {
  (void)step;
  (void)offsets;
  (void)result;
}

void ReplaySession::on_stop(const Status& result) {
  worker_result_ = result;
}

}  // namespace mephisto::replay
