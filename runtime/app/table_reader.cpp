// Tables, the changelog reader: one fiber and one consumer (assign(), no group, read_committed) per worker
// that restores assigned table partitions and tails standby and global ones, in large batches applied to the
// stores atomically with their offsets (TableStore::apply_batch).
#include <algorithm>

#include <fmt/format.h>

#include "runtime/app/engine_internal.h"
#include "runtime/app/tables.h"

namespace mephisto::app_internal {

void Tables::reader_loop() {
  Scheduler& scheduler = *engine_.env_.scheduler;
  while (!stopping_) {
    if (reader_dirty_) {
      reader_dirty_ = false;
      if (Status synced = sync_reader_assignment(); !synced.ok()) {
        engine_.log_.warn("changelog reader: {} (retrying)", synced.error().message);
        reader_dirty_ = true;
        scheduler.park_until(engine_.env_.clock->now_ms() + kPollTimeoutMs);
        continue;
      }
    }
    if (reading_.empty()) {
      scheduler.park_until(INT64_MAX);  // woken by set_role() and stop()
      continue;
    }
    check_restored();
    if (stopping_ || reader_dirty_) continue;
    auto polled = reader_->poll(kPollTimeoutMs);
    if (!polled.ok()) {
      engine_.log_.warn("changelog reader: poll: {}", polled.error().message);
      scheduler.park_until(engine_.env_.clock->now_ms() + kPollTimeoutMs);
      continue;
    }
    if (!polled->empty()) apply(std::move(polled).value());
    check_restored();
    log_progress();
  }
}

Status Tables::sync_reader_assignment() {
  std::set<TopicPartition> wanted;
  for (const auto& [id, part] : partitions_) {
    if (follows(part)) wanted.insert(changelog_tp(part));
  }
  const bool grows = !std::includes(reading_.begin(), reading_.end(), wanted.begin(), wanted.end());
  bool restoring = false;
  for (const auto& [id, part] : partitions_) restoring = restoring || part.role == Role::kRestoring;
  // Re-assigning restarts every fetch (and librdkafka needs a moment before a new partition can be sought),
  // so a partition that is no longer followed stays assigned — its records are ignored — until nothing is
  // restoring; new partitions to follow are assigned at once.
  if (!grows && (restoring || wanted == reading_)) {
    // Partitions followed again (their fetch went on while ignored) resume after what their store holds.
    for (auto& [id, part] : partitions_) {
      if (!part.seek_needed || !follows(part)) continue;
      if (Status sought = reader_->seek(changelog_tp(part), part.next_offset); !sought.ok()) {
        return Error::of(sought.code(),
                         fmt::format("seek {}[{}] to {}: {}", part.table->changelog, part.partition,
                                     part.next_offset, sought.error().message));
      }
      part.seek_needed = false;
    }
    return {};
  }
  if (Status assigned = reader_->assign({wanted.begin(), wanted.end()}); !assigned.ok()) {
    return Error::of(assigned.code(), "assign: " + assigned.error().message);
  }
  reading_ = wanted;
  // A (re-)assignment restarts every fetch: each followed partition resumes exactly after what its store
  // holds.
  for (auto& [id, part] : partitions_) {
    if (!follows(part)) continue;
    if (Status sought = reader_->seek(changelog_tp(part), part.next_offset); !sought.ok()) {
      return Error::of(sought.code(), fmt::format("seek {}[{}] to {}: {}", part.table->changelog,
                                                  part.partition, part.next_offset, sought.error().message));
    }
    part.seek_needed = false;
  }
  return {};
}

void Tables::apply(std::vector<ConsumerRecord> records) {
  // Records come ordered per partition; apply each partition's run as one batch.
  size_t begin = 0;
  while (begin < records.size()) {
    size_t end = begin;
    while (end < records.size() && records[end].topic == records[begin].topic &&
           records[end].partition == records[begin].partition) {
      ++end;
    }
    const ConsumerRecord& first = records[begin];
    Partition* part = nullptr;
    for (auto& table : tables_) {
      if (table->changelog == first.topic) part = find(*table, first.partition);
    }
    if (part != nullptr && follows(*part)) {
      std::vector<store::ChangelogRecord> batch;
      batch.reserve(end - begin);
      for (size_t i = begin; i < end; ++i) {
        ConsumerRecord& record = records[i];
        // A re-seek may hand back records the store already holds: never apply one twice.
        if (record.offset < part->next_offset) continue;
        batch.push_back(
            {record.offset, std::move(record.key).value_or(std::string()), std::move(record.value)});
      }
      // Told even when every record was already in the store (an empty batch, which a trace leaves out): a
      // replay feeding this run learns it was taken.
      if (engine_.env_.recorder != nullptr) {
        std::vector<ConsumerRecord> recorded;
        recorded.reserve(batch.size());
        for (const store::ChangelogRecord& change : batch) {
          ConsumerRecord record;
          record.topic = first.topic;
          record.partition = first.partition;
          record.offset = change.offset;
          record.key = change.key;
          record.value = change.value;
          recorded.push_back(std::move(record));
        }
        engine_.env_.recorder->on_table_applied(recorded);
      }
      if (!batch.empty()) {
        if (Status applied = part->store->apply_batch(batch); !applied.ok()) {
          engine_.fail(Error::of(applied.code(),
                                 fmt::format("table '{}' partition {}: restore failed: {}", part->table->name,
                                             part->partition, applied.error().message)));
          stopping_ = true;
          return;
        }
        part->next_offset = batch.back().offset + 1;
        part->restore_records += static_cast<int64_t>(batch.size());
        engine_.stats_.table_records_restored += static_cast<int64_t>(batch.size());
      }
    }
    begin = end;
  }
}

void Tables::check_restored() {
  for (auto& [id, part] : partitions_) {
    if (part.role != Role::kRestoring) continue;
    const TopicPartition tp = changelog_tp(part);
    if (part.restore_end < 0) {
      if (!part.end_query_pending) query_restore_end(part);
      continue;
    }
    // The position passes transaction markers the reader never sees as records.
    int64_t position = part.next_offset;
    if (auto at = reader_->position(tp); at.ok()) position = std::max(position, *at);
    if (position < part.restore_end) continue;
    part.role = Role::kActive;
    if (engine_.env_.recorder != nullptr) engine_.env_.recorder->on_table_active(part.table->name, part.partition);
    const int64_t took_ms = engine_.env_.clock->now_ms() - part.restore_started_ms;
    ++engine_.stats_.table_restores;
    engine_.stats_.table_last_restore_ms = took_ms;
    engine_.log_.info("table '{}' partition {}: restored {} record(s) in {} ms, active", part.table->name,
                      part.partition, part.restore_records, took_ms);
    reader_dirty_ = true;  // no longer followed; the poll fiber resumes the source partition at its next poll
  }
}

void Tables::query_restore_end(Partition& part) {
  part.end_query_pending = true;
  ++end_queries_running_;
  Partition* target = &part;
  const uint64_t epoch = part.epoch;
  engine_.env_.scheduler->spawn("changelog-end", [this, target, epoch] {
    // The high watermark (read_uncommitted), not the last stable offset: see Tables::start().
    auto marks = end_reader_->watermarks(changelog_tp(*target), kAdminTimeoutMs);
    target->end_query_pending = false;
    --end_queries_running_;
    if (!marks.ok()) {
      engine_.log_.warn("table '{}' partition {}: end offset: {} (retrying)", target->table->name,
                        target->partition, marks.error().message);
    } else if (target->role == Role::kRestoring && target->epoch == epoch) {
      target->restore_end = marks->second;
      if (engine_.env_.recorder != nullptr) engine_.env_.recorder->on_restore_end(changelog_tp(*target), marks->second);
    }
    if (reader_fiber_ != kNoFiber && !reader_done_) engine_.env_.scheduler->wake(reader_fiber_);
  });
}

void Tables::log_progress() {
  const int64_t now_ms = engine_.env_.clock->now_ms();
  if (now_ms - last_progress_log_ms_ < kRestoreProgressLogMs) return;
  last_progress_log_ms_ = now_ms;
  for (const auto& [id, part] : partitions_) {
    if (part.role != Role::kRestoring || part.restore_end < 0) continue;
    engine_.log_.info("table '{}' partition {}: restoring, {} record(s) restored, about {} remaining",
                      part.table->name, part.partition, part.restore_records,
                      std::max<int64_t>(0, part.restore_end - part.next_offset));
  }
}

}  // namespace mephisto::app_internal
