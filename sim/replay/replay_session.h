// ReplaySession: one recorded worker incarnation (runtime/trace) being replayed. It is two things at once:
//
//  - the source of the replayed worker's inputs: the replay clients (replay_clients.h) ask it for the next
//    input — an assignment or revocation, a polled batch, changelog records for the table reader, a restore's
//    end offset, a timer firing — and it hands out only the *next one in recorded order*, to whichever client
//    it belongs to, so the worker sees its inputs with the recorded batching and in the recorded order across
//    its consumers, fibers and timers;
//  - the Recorder (runtime/seam/recorder.h) of the replayed worker: the engine reports what it consumed
//  (which
//    moves the cursor on, and is checked against the recording) and what it sent, which is matched against
//    the recorded sends of the same input event(s), in order. The first mismatch is a Divergence.
//
// Sends are matched per input (the records a worker sends while processing an event depend on that event and
// on table state, not on how fibers interleave), so a replay is exact without reproducing thread timing.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "runtime/seam/clock.h"
#include "runtime/seam/recorder.h"
#include "runtime/trace/trace_reader.h"

namespace mephisto::replay {

// A what-if fault injected at a recorded event.
enum class InjectedFault {
  kNone,
  kFailSend,  // the first send made for an input at or after the event fails (delivery timed out)
  kDrop,      // the polled batch at the event never arrives (lost input)
};

struct ReplayOptions {
  // Stop feeding inputs at this event index (the events before it are replayed): -1 replays everything.
  int64_t stop_at = -1;
  InjectedFault fault = InjectedFault::kNone;
  int64_t fault_at = -1;
  // Divergences kept (the first is what matters; a few more show whether it is a one-off).
  size_t max_divergences = 20;
};

struct Divergence {
  uint64_t event_index = 0;  // the recorded event where the replay differs
  std::string what;          // "send", "missing send", "unexpected send", "input", "app"
  std::string expected;
  std::string actual;
};

class ReplaySession final : public Recorder {
 public:
  // `incarnation` must outlive the session.
  ReplaySession(const trace::Incarnation& incarnation, ReplayOptions options);

  // The replayed worker's scheduler and clock (set before the worker runs). `start_ms` is the worker's clock
  // at its start: recorded event times are relative to it.
  void attach(Scheduler* scheduler, const Clock* clock, int64_t start_ms);

  // ---- for the replay clients. Each call parks the calling fiber at most until deadline_ms (its clock).

  // The group consumer's next input, if it is an assignment/revocation or a batch (of partitions not in
  // `paused`). Returns null when the next input is someone else's (or none is left) by the deadline. A batch
  // comes with its records in `records`: the recorded ones, less those the recorded worker dropped
  // unprocessed at a revoke (a replayed agent, never paused, would process them before the revoke came).
  const trace::Event* next_group_input(const std::set<TopicPartition>& paused, int64_t deadline_ms,
                                       std::vector<const trace::Record*>* records);
  // The table reader's next batch, if the next input is changelog records of a partition in `assigned`.
  const trace::Event* next_table_batch(const std::set<TopicPartition>& assigned, int64_t deadline_ms);
  // The end offset of a restore of `changelog`, once it is the next input; nullopt at the deadline.
  std::optional<int64_t> next_restore_end(const TopicPartition& changelog, int64_t deadline_ms);
  // The table reader's position for `changelog`: the restore end when the next input is that table
  // partition turning active (so it turns active exactly there), else `fallback`.
  int64_t reader_position(const TopicPartition& changelog, int64_t fallback) const;
  // The outcome the replayed producer reports for the send the engine just announced through on_send.
  struct Delivery {
    Status status;
    int32_t partition = -1;
    int64_t offset = -1;
    // A recorded failure is reported where the recording has it: once the replay has fed the inputs before
    // this event index (-1: at once).
    int64_t not_before_event = -1;
  };
  Delivery take_delivery();
  // Parks the calling fiber until every input before `event_index` was fed (or the replay stops).
  void wait_until_fed(int64_t event_index);
  // True once every input was handed out and consumed (or stop_at reached).
  [[nodiscard]] bool inputs_done() const;
  // Wakes every parked client (the worker is stopping).
  void wake_all();

  // ---- results
  // Called after the worker stopped: recorded sends the replay never made become divergences.
  void finish();
  [[nodiscard]] const std::vector<Divergence>& divergences() const { return divergences_; }
  // The earliest divergence by recorded event index.
  [[nodiscard]] std::optional<Divergence> first_divergence() const;
  [[nodiscard]] uint64_t inputs_consumed() const { return cursor_; }
  [[nodiscard]] uint64_t inputs_total() const { return inputs_.size(); }
  [[nodiscard]] uint64_t sends_matched() const { return sends_matched_; }
  [[nodiscard]] uint64_t sends_recorded() const { return sends_recorded_; }
  [[nodiscard]] uint64_t sends_beyond_tail() const { return sends_beyond_tail_; }
  // A fatal problem that stopped the replay early (a different app, a hash-only trace): the message says
  // what.
  [[nodiscard]] const std::optional<std::string>& fatal() const { return fatal_; }
  [[nodiscard]] const std::optional<Status>& worker_result() const { return worker_result_; }
  // Store contents recorded at each open of a table partition, in order: the replay store factory's source.
  std::optional<const trace::TableOpened*> take_table_snapshot(const std::string& table, int32_t partition);

  // ---- Recorder (the replayed engine's reports)
  void on_start(const RecordedStart& start) override;
  void on_assigned(const std::vector<TopicPartition>& partitions, int32_t generation) override;
  void on_revoked(const std::vector<TopicPartition>& partitions, bool lost) override;
  void on_polled(const std::vector<const ConsumerRecord*>& records) override;
  void on_dropped(const std::vector<const ConsumerRecord*>& records) override;
  void on_table_opened(const std::string& table, int32_t partition, std::optional<int64_t> applied_offset,
                       const std::vector<std::pair<std::string, std::string>>& contents) override;
  void on_table_applied(const std::vector<ConsumerRecord>& records) override;
  void on_restore_end(const TopicPartition& changelog, int64_t end_offset) override;
  void on_table_active(const std::string& table, int32_t partition) override;
  void on_timer(const std::string& timer) override;
  uint64_t on_send(const ProducerRecord& record, const std::vector<SendSource>& sources) override;
  void on_delivered(uint64_t send_id, const Result<RecordMetadata>& result) override;
  void on_commit(const std::map<TopicPartition, int64_t>& offsets, const Status& result) override;
  void on_transaction(TransactionStep step, const std::map<TopicPartition, int64_t>& offsets,
                      const Status& result) override;
  void on_stop(const Status& result) override;
  [[nodiscard]] bool drives_timers() const override { return true; }
  bool await_timer(const std::string& timer) override;

 private:
  struct ExpectedSend {
    uint64_t event_index = 0;
    const trace::Sent* sent = nullptr;
  };
  using SourceKey = std::vector<SendSource>;

  [[nodiscard]] const trace::Event* head() const;
  // Parks until `ready` or the deadline; false at the deadline (or when the worker stops).
  bool wait_for(const std::function<bool()>& ready, int64_t deadline_ms);
  // Hands out the head input, not before its recorded time.
  void advance();
  // The engine consumed an input: it must be the head (else a divergence), which the cursor then passes.
  void consumed(trace::Event::KindCase kind, const std::string& actual,
                const std::function<bool(const trace::Event&)>& same);
  void diverge(uint64_t event_index, std::string what, std::string expected, std::string actual);
  void skip_dropped();

  const trace::Incarnation& incarnation_;
  ReplayOptions options_;
  Scheduler* scheduler_ = nullptr;
  const Clock* clock_ = nullptr;
  int64_t start_ms_ = 0;
  std::vector<const trace::Event*> inputs_;  // in recorded order
  std::vector<uint64_t> sends_before_;       // per input: recorded sends before it
  uint64_t sends_seen_ = 0;                  // replayed sends matched to a recorded one (equal or not)
  int64_t catch_up_since_ms_ = -1;           // when the head input started waiting for sends before it
  // How long (virtual) an input waits for the replayed worker to make the sends recorded before it.
  static constexpr int64_t kCatchUpMs = 2000;
  size_t cursor_ = 0;
  bool head_served_ = false;
  size_t limit_ = 0;  // inputs_ served up to here (stop_at)
  std::set<FiberId> waiters_;
  bool stopping_ = false;
  std::map<SourceKey, std::deque<ExpectedSend>> expected_;
  std::map<uint64_t, const trace::Delivered*> recorded_deliveries_;  // by recorded send id
  std::map<std::pair<std::string, int32_t>, std::deque<const trace::TableOpened*>> snapshots_;
  std::map<std::tuple<std::string, int32_t, int64_t>, uint64_t> polled_index_;  // input record -> event index
  std::map<TopicPartition, int64_t> restore_ends_;
  // Per polled event index: its records the recorded worker dropped unprocessed (a Dropped event later).
  std::map<uint64_t, std::set<std::tuple<std::string, int32_t, int64_t>>> dropped_;
  [[nodiscard]] std::vector<const trace::Record*> fed_records(const trace::Event& polled) const;
  std::optional<Delivery> next_delivery_;
  // The index of the Delivered event of a recorded send.
  [[nodiscard]] uint64_t recorded_send_index(uint64_t send_id) const;
  std::map<uint64_t, uint64_t> delivery_index_;
  std::optional<uint64_t> first_failed_delivery_;  // its index
  // The first failed commit, transaction step or abort, or partitions lost: what ends a worker.
  std::optional<uint64_t> first_failure_;
  bool clean_stop_ = false;  // the recording ends with Stopped(ok)
  bool fault_fired_ = false;
  uint64_t last_sent_source_index_ = 0;  // the polled event index of the last recorded send's input
  uint64_t sends_matched_ = 0;
  uint64_t sends_recorded_ = 0;
  uint64_t sends_beyond_tail_ = 0;
  std::vector<Divergence> divergences_;
  std::optional<std::string> fatal_;
  std::optional<Status> worker_result_;
};

// A record as the trace shows it ("topic[p]@offset key=... value=..."), for divergence messages.
[[nodiscard]] std::string describe_record(const trace::Record& record);
// One line for a recorded event: "index t=ms what" (`mephisto replay --print-events`).
[[nodiscard]] std::string describe_trace_event(const trace::Event& event);

}  // namespace mephisto::replay
