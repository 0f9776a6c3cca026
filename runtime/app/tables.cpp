// Tables: declarations, changelog topics, roles of table partitions, reads, writes and commits. The changelog
// reader (restore, standbys, global tables) is in table_reader.cpp.
#include "runtime/app/tables.h"

#include <cassert>
#include <cstdio>
#include <cstdlib>

#include <fmt/format.h>

#include "runtime/app/engine_internal.h"
#include "runtime/app/table.h"

namespace mephisto::app_internal {

Tables::Tables(Engine& engine) : engine_(engine) {}

Tables::~Tables() {
  for (auto& [key, part] : partitions_) {
    if (part.store) (void)part.store->close();
  }
}

TableDecl* Tables::declare(TableDecl decl) {
  for (const auto& table : tables_) {
    if (table->name == decl.name) {
      std::fprintf(stderr, "mephisto: table '%s' is declared twice\n", decl.name.c_str());
      std::abort();
    }
  }
  decl.changelog = engine_.settings().id + "-" + decl.name + "-changelog";
  tables_.push_back(std::make_unique<TableDecl>(std::move(decl)));
  return tables_.back().get();
}

Status Tables::start() {
  if (tables_.empty()) return {};
  const AppSettings& settings = engine_.settings();
  if (engine_.env_.stores != nullptr) {
    stores_ = engine_.env_.stores;
  } else {
    auto made = store::make_store_factory(settings.store, effective_data_dir(settings));
    if (!made.ok()) return made.error();
    owned_stores_ = std::move(made).value();
    stores_ = owned_stores_.get();
  }
  for (auto& table : tables_) {
    if (Status ready = prepare_changelog(*table); !ready.ok()) return ready;
  }
  ConsumerConfig config;
  config.client_id = settings.id + "-" + settings.worker_id + "-changelog-reader";
  // Restores and standbys read only committed changelog records: a table never holds an aborted write.
  config.isolation_level = IsolationLevel::kReadCommitted;
  // planted bug (runtime/seam/planted.h): aborted changelog records are restored and tailed too.
  if (engine_.env_.planted == PlantedBug::kChangelogReadUncommitted) {
    config.isolation_level = IsolationLevel::kReadUncommitted;
  }
  config.auto_offset_reset = OffsetReset::kEarliest;
  config.max_poll_records = kRestoreBatchRecords;
  config.extra = settings.consumer_properties;
  // A fetch that finds nothing new waits up to fetch.wait.max.ms (500 ms), and the reader's end-offset
  // queries wait behind it: each restore of a caught-up partition took half a second.
  config.extra.emplace("fetch.wait.max.ms", "20");
  auto consumer = engine_.env_.broker->consumer(config);
  if (!consumer.ok()) return consumer.error();
  reader_ = std::move(consumer).value();
  // A restore runs to the changelog's log end offset (high watermark), asked by a read_uncommitted client:
  // ListOffsets under read_committed answers the last stable offset, which stays below a transaction still
  // open (a zombie's, until it is aborted or times out) — committed records above it, such as those of the
  // owner that came after the zombie, would be missed and the table continued from a stale value. The
  // read_committed reader passes such a transaction only once it ended, so the restore waits for it. Kafka
  // Streams does the same (StoreChangelogReader::endOffsetForChangelogs, KAFKA-10167).
  ConsumerConfig end_config = config;
  end_config.client_id = settings.id + "-" + settings.worker_id + "-changelog-end";
  end_config.isolation_level = IsolationLevel::kReadUncommitted;
  auto end_consumer = engine_.env_.broker->consumer(end_config);
  if (!end_consumer.ok()) return end_consumer.error();
  end_reader_ = std::move(end_consumer).value();
  for (auto& table : tables_) {
    for (int32_t p = 0; p < table->partitions; ++p) {
      Partition& part = partitions_[{table.get(), p}];
      part.table = table.get();
      part.partition = p;
      if (table->kind == TableKind::kGlobal) {
        if (Status opened = open(part); !opened.ok()) return opened;
        set_role(part, Role::kGlobal);
      } else if (settings.table_standby_replicas > 0) {
        if (Status opened = open(part); !opened.ok()) return opened;
        set_role(part, Role::kStandby);
      }
    }
  }
  started_ = true;
  reader_fiber_ = engine_.env_.scheduler->spawn("changelog-reader", [this] {
    reader_loop();
    reader_done_ = true;
    if (stop_waiter_ != kNoFiber) engine_.env_.scheduler->wake(stop_waiter_);
  });
  return {};
}

Status Tables::prepare_changelog(TableDecl& table) {
  const AppSettings& settings = engine_.settings();
  if (table.source != nullptr) table.partitions = table.source->actual_partitions;
  if (table.partitions <= 0) table.partitions = settings.topic_partitions;
  TopicDecl changelog;
  changelog.name = table.changelog;
  changelog.internal = true;
  changelog.partitions = table.partitions;
  changelog.configs.emplace("cleanup.policy", "compact");
  if (Status created = engine_.create_topic_if_missing(changelog); !created.ok()) return created;
  if (changelog.actual_partitions != table.partitions) {
    const std::string source =
        table.source != nullptr ? "its source topic '" + table.source->name + "'" : "the table's declaration";
    return Error::of(
        ErrorCode::kInvalidArg,
        fmt::format("table '{}': changelog topic '{}' has {} partition(s) but {} has {}: a table is "
                    "partitioned like its source (co-partitioning), so the counts must match — delete the "
                    "changelog topic (the table is then rebuilt empty) or recreate the source with {} "
                    "partition(s)",
                    table.name, table.changelog, changelog.actual_partitions, source, table.partitions,
                    changelog.actual_partitions));
  }
  return {};
}

Status Tables::open(Partition& part) {
  if (part.store) return {};
  auto opened = stores_->open(part.table->name, part.partition);
  if (!opened.ok()) {
    return Error::of(opened.code(), fmt::format("table '{}' partition {}: cannot open its store: {}",
                                                part.table->name, part.partition, opened.error().message));
  }
  part.store = std::move(opened).value();
  const std::optional<int64_t> applied = part.store->applied_offset();
  part.next_offset = applied.has_value() ? *applied + 1 : 0;
  if (Recorder* recorder = engine_.env_.recorder; recorder != nullptr) {
    // What the store holds is an input of this worker like any polled record: a replay starts from it.
    std::vector<std::pair<std::string, std::string>> contents;
    const Status listed = part.store->for_each([&](std::string_view key, std::string_view value) {
      contents.emplace_back(std::string(key), std::string(value));
    });
    if (!listed.ok()) {
      engine_.log_.warn("table '{}' partition {}: cannot list its store for the recording: {}", part.table->name,
                        part.partition, listed.error().message);
    }
    recorder->on_table_opened(part.table->name, part.partition, applied, contents);
  }
  return {};
}

void Tables::close(Partition& part) {
  if (!part.store) return;
  if (Status closed = part.store->close(); !closed.ok()) {
    engine_.log_.warn("table '{}' partition {}: close: {}", part.table->name, part.partition,
                      closed.error().message);
  }
  part.store.reset();
}

void Tables::set_role(Partition& part, Role role) {
  // Late delivery reports and end-offset answers of the previous role are ignored.
  ++part.epoch;
  if (part.role == Role::kActive && role != Role::kActive) {
    part.writes.clear();
    part.dirty.clear();
  }
  if (role == Role::kRestoring) {
    part.restore_end = -1;
    part.restore_started_ms = engine_.env_.clock->now_ms();
    part.restore_records = 0;
  }
  if (part.store) {
    // The store may have moved on while active: the reader resumes after what it holds.
    const std::optional<int64_t> applied = part.store->applied_offset();
    part.next_offset = applied.has_value() ? *applied + 1 : 0;
  }
  part.role = role;
  part.seek_needed = follows(part);
  reader_dirty_ = true;
  if (reader_fiber_ != kNoFiber) engine_.env_.scheduler->wake(reader_fiber_);
}

bool Tables::follows(const Partition& part) const {
  return part.store &&
         (part.role == Role::kRestoring || part.role == Role::kStandby || part.role == Role::kGlobal);
}

TopicPartition Tables::changelog_tp(const Partition& part) const {
  return TopicPartition{part.table->changelog, part.partition};
}

void Tables::stop() {
  if (!started_) return;
  stopping_ = true;
  Scheduler& scheduler = *engine_.env_.scheduler;
  if (reader_fiber_ != kNoFiber) {
    scheduler.wake(reader_fiber_);
    while (!reader_done_) {
      stop_waiter_ = scheduler.current();
      scheduler.park_until(engine_.env_.clock->now_ms() + kPollTimeoutMs);
      stop_waiter_ = kNoFiber;
    }
  }
  while (end_queries_running_ > 0) scheduler.park_until(engine_.env_.clock->now_ms() + kPollTimeoutMs);
  if (reader_) (void)reader_->close();
  if (end_reader_) (void)end_reader_->close();
  for (auto& [key, part] : partitions_) close(part);
  started_ = false;
}

// ---------------------------------------------------------------------------------------------------------------
// Rebalances

std::vector<Tables::Partition*> Tables::fed_by(const std::vector<TopicPartition>& source_partitions) {
  std::vector<Partition*> out;
  for (const TopicPartition& tp : source_partitions) {
    for (auto& table : tables_) {
      if (table->kind == TableKind::kGlobal || table->source == nullptr || table->source->name != tp.topic)
        continue;
      if (Partition* part = find(*table, tp.partition)) out.push_back(part);
    }
  }
  return out;
}

void Tables::on_assigned(const std::vector<TopicPartition>& source_partitions) {
  if (!started_) return;
  for (Partition* part : fed_by(source_partitions)) {
    if (part->role == Role::kActive || part->role == Role::kRestoring) continue;
    if (Status opened = open(*part); !opened.ok()) {
      engine_.fail(opened.error());
      return;
    }
    set_role(*part, Role::kRestoring);
    engine_.log_.info("table '{}' partition {}: restoring from changelog offset {}", part->table->name,
                      part->partition, part->next_offset);
  }
}

void Tables::on_revoked(const std::vector<TopicPartition>& source_partitions, bool committed_all) {
  if (!started_) return;
  const bool standby = engine_.settings().table_standby_replicas > 0;
  for (Partition* part : fed_by(source_partitions)) {
    if (part->role == Role::kNone || part->role == Role::kStandby) continue;
    // at_least_once: what is delivered is in the changelog either way; flushing it here only saves the next
    // restore work. exactly_once: only a committed transaction moves writes into the store (on_committed, at
    // the commit, which leaves none behind); a delivered write may still be aborted, so none is flushed here.
    if (part->role == Role::kActive && committed_all && !engine_.exactly_once() && !part->writes.empty()) {
      if (Status flushed = flush(*part); !flushed.ok()) engine_.fail(flushed.error());
    }
    set_role(*part, standby ? Role::kStandby : Role::kNone);
    if (!standby) close(*part);
  }
}

bool Tables::blocked(const TopicPartition& source_partition) const {
  for (const auto& [key, part] : partitions_) {
    if (part.role == Role::kRestoring && part.table->source != nullptr &&
        part.table->source->name == source_partition.topic && part.partition == source_partition.partition) {
      return true;
    }
  }
  return false;
}

// ---------------------------------------------------------------------------------------------------------------
// Reads and writes

Tables::Partition* Tables::find(const TableDecl& table, int32_t partition) {
  auto found = partitions_.find({&table, partition});
  return found == partitions_.end() ? nullptr : &found->second;
}

Result<std::optional<std::string>> Tables::get(const TableDecl& table, std::string_view key) {
  if (!started_) {
    return Error::of(ErrorCode::kState, "table '" + table.name + "' is read before the worker started");
  }
  const auto read = [&](Partition& part) -> Result<std::optional<std::string>> {
    auto dirty = part.dirty.find(std::string(key));
    if (dirty != part.dirty.end()) return dirty->second.second;
    return part.store->get(key);
  };
  const std::vector<EventCore*>& current = engine_.current();
  const EventCore* origin = current.empty() ? nullptr : kafka_origin(current.front());
  if (origin != nullptr && table.kind != TableKind::kGlobal) {
    Partition* part = find(table, origin->record.partition);
    if (part != nullptr && part->role == Role::kActive) return read(*part);
  }
  // No event (or not co-partitioned): the key is in whichever held partition has it.
  for (auto& [id, part] : partitions_) {
    if (id.first != &table || !part.store) continue;
    if (table.kind == TableKind::kGlobal || part.role == Role::kActive) {
      auto value = read(part);
      if (!value.ok() || value->has_value()) return value;
    }
  }
  return std::optional<std::string>{};
}

Status Tables::put(const TableDecl& table, std::string key, std::optional<std::string> value) {
  if (!started_ || !engine_.running_ || engine_.failed_) {
    return Error::of(ErrorCode::kState, "table '" + table.name + "': the worker is not running");
  }
  const std::vector<EventCore*>& current = engine_.current();
  const EventCore* origin = current.empty() ? nullptr : kafka_origin(current.front());
  if (origin == nullptr) {
    return Error::of(ErrorCode::kState,
                     "table '" + table.name +
                         "' is written outside stream processing: tables change only while an agent "
                         "processes an event (its partition says which table partition changes); write from "
                         "the agent, or send an event to one");
  }
  const int32_t p = origin->record.partition;
  Partition* part = find(table, p);
  if (part == nullptr || (table.kind != TableKind::kGlobal && part->role != Role::kActive)) {
    return Error::of(
        ErrorCode::kState,
        fmt::format("table '{}' partition {} is not active on this worker: the event came from "
                    "'{}' partition {}, which is not co-partitioned with the table's source '{}'",
                    table.name, p, origin->record.topic, p,
                    table.source != nullptr ? table.source->name : std::string("-")));
  }
  engine_.wait_for_transaction_gate();
  if (engine_.failed_) return Error::of(ErrorCode::kState, "the worker has failed");
  ProducerRecord record;
  record.topic = table.changelog;
  record.partition = p;
  record.key = key;
  record.value = value;
  DeliveryCallback on_delivery;
  if (table.kind != TableKind::kGlobal) {
    const uint64_t seq = part->next_seq++;
    part->dirty[key] = {seq, value};
    if (engine_.env_.planted == PlantedBug::kTableWriteNotRolledBack) {
      // planted bug (runtime/seam/planted.h): the store takes the write at once (its offset unchanged), so
      // dropping the overlay on an abort leaves it in place.
      const Status stored = value.has_value() ? part->store->put(key, *value) : part->store->erase(key);
      (void)stored;
    }
    part->writes.push_back({seq, std::move(key), std::move(value), -1});
    on_delivery = [part, epoch = part->epoch, seq](const Result<RecordMetadata>& result) {
      // A failed delivery stops the worker; the write then never reaches the store.
      if (part->epoch != epoch || !result.ok() || part->writes.empty()) return;
      const uint64_t index = seq - part->writes.front().seq;
      if (index < part->writes.size()) part->writes[index].offset = result->offset;
    };
  }
  return engine_.send_holding(std::move(record), current, std::move(on_delivery));
}

// ---------------------------------------------------------------------------------------------------------------
// Commits

Status Tables::flush(Partition& part) {
  std::vector<store::WriteOp> ops;
  std::optional<int64_t> offset;
  size_t delivered = 0;
  for (const Partition::Write& write : part.writes) {
    if (write.offset < 0) break;  // later writes wait for this one: the store's offset covers a prefix
    ops.emplace_back(write.key, write.value);
    offset = write.offset;
    ++delivered;
  }
  if (delivered == 0) return {};
  Status written = part.store->write_batch(ops, offset);
  if (!written.ok()) {
    return Error::of(written.code(), fmt::format("table '{}' partition {}: store write failed: {}",
                                                 part.table->name, part.partition, written.error().message));
  }
  for (size_t i = 0; i < delivered; ++i) {
    const Partition::Write& write = part.writes.front();
    auto latest = part.dirty.find(write.key);
    if (latest != part.dirty.end() && latest->second.first == write.seq) part.dirty.erase(latest);
    part.writes.pop_front();
  }
  part.next_offset = *offset + 1;
  return {};
}

void Tables::on_committed() {
  for (auto& [id, part] : partitions_) {
    if (part.role != Role::kActive || part.writes.empty()) continue;
    if (Status flushed = flush(part); !flushed.ok()) {
      engine_.fail(flushed.error());
      return;
    }
  }
}

void Tables::discard_uncommitted() {
  for (auto& [id, part] : partitions_) {
    part.writes.clear();
    part.dirty.clear();
    ++part.epoch;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// SetTable values

std::string encode_member_set(const std::set<std::string>& members) {
  std::string out;
  for (const std::string& member : members) {
    const auto size = static_cast<uint32_t>(member.size());
    for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>((size >> shift) & 0xffU));
    out += member;
  }
  return out;
}

std::set<std::string> decode_member_set(const std::string& bytes, const std::string& table) {
  std::set<std::string> out;
  size_t at = 0;
  while (at < bytes.size()) {
    if (bytes.size() - at < 4) throw TableError("table '" + table + "': a stored set is truncated");
    uint32_t size = 0;
    for (int i = 0; i < 4; ++i) size = (size << 8U) | static_cast<unsigned char>(bytes[at + i]);
    at += 4;
    if (bytes.size() - at < size) throw TableError("table '" + table + "': a stored set is truncated");
    out.insert(bytes.substr(at, size));
    at += size;
  }
  return out;
}

}  // namespace mephisto::app_internal
