// Tables: the engine side of Table, GlobalTable and SetTable (table.h) — per table partition, its store, its
// role on this worker, the writes of the current commit, and the changelog reader that restores and tails.
//
// A table's truth is its compacted changelog topic `{id}-{table}-changelog`, partitioned like the table's
// source topic. A worker holds each table partition in one of these roles:
//
//   active     the source partition of the same number is assigned here: agents read and write it. Writes go
//              to a per-partition overlay and to the changelog; a write reaches the store only once committed
//              (exactly_once: its transaction committed; at_least_once: its changelog record delivered, at
//              the next offset commit), in one write batch together with its changelog offset. So the store
//              never holds an effect of an aborted transaction, and its offset never runs ahead of it.
//   restoring  just assigned: its source partition stays paused while the reader applies the changelog from
//              the store's applied offset to the end offset taken when restoring began (the high watermark,
//              not the last stable offset: the restore waits for a transaction still open, e.g. a zombie's,
//              to end, rather than stop below it); then it is active.
//   standby    not assigned here, tailed by the reader (AppSettings::table_standby_replicas = 1): a failover
//              to this worker restores only what it has not applied yet.
//   global     a GlobalTable partition: tailed on every worker, never active; writes reach the store through
//              the changelog (visible here once read back, committed).
//   none       not held (no standbys): the store is closed.
//
// Everything here runs on fibers of the worker's scheduler (the poll fiber for rebalances, actors for reads
// and writes, the reader fiber for the changelog). Errors are values; broken invariants assert.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/app/engine.h"
#include "runtime/seam/result.h"
#include "runtime/store/store.h"

namespace mephisto::app_internal {

enum class TableKind {
  kTable,   // Faust's Table: a dict with a default value, partitioned like its source
  kGlobal,  // Faust's GlobalTable: every worker holds every partition
  kSet,     // Faust's SetTable: a Table whose values are sets
};

struct TableDecl {
  std::string name;       // as declared (the changelog is `{id}-{name}-changelog`)
  std::string changelog;  // the changelog topic's name
  TableKind kind = TableKind::kTable;
  TopicDecl* source = nullptr;  // partitioned like this topic; null only for a GlobalTable declared without
  int32_t partitions = -1;      // declared count (no source), else learnt from the source at start
  std::string help;  // Faust's Table(help=...); kept for a `mephisto tables` listing (not built yet)
};

class Tables {
 public:
  explicit Tables(Engine& engine);
  ~Tables();
  Tables(const Tables&) = delete;
  Tables& operator=(const Tables&) = delete;

  // Before run(). Names are unique per app: a second declaration of a name stops the program (a mistake in
  // the program, found at declaration).
  TableDecl* declare(TableDecl decl);
  [[nodiscard]] const std::vector<std::unique_ptr<TableDecl>>& tables() const { return tables_; }

  // At start, after the source topics were prepared: learns partition counts, creates each changelog
  // (compacted) or checks its partition count against the source's — a mismatch is kInvalidArg naming both
  // topics and both counts —, opens the store factory, opens standby and global partitions and starts the
  // reader fiber. Errors are startup errors of the worker.
  Status start();
  // At shutdown, after the last commit: ends the reader fiber and closes every store.
  void stop();

  // Rebalances (poll fiber). Assigned source partitions start restoring; revoked ones (after the engine's
  // commit) flush what is committed and become standbys (or are closed). `committed_all` false: what was not
  // committed is discarded (partitions lost, or a failed commit).
  void on_assigned(const std::vector<TopicPartition>& source_partitions);
  void on_revoked(const std::vector<TopicPartition>& source_partitions, bool committed_all);
  // True while a table partition fed by this source partition is restoring: the engine keeps it paused.
  [[nodiscard]] bool blocked(const TopicPartition& source_partition) const;

  // Reads and writes from agents (while processing an event). Reads take the current event's partition, or
  // without one search the partitions held here. Writes need a current event whose partition is active here:
  // otherwise kState with a message saying why (no event: a write outside stream processing).
  Result<std::optional<std::string>> get(const TableDecl& table, std::string_view key);
  Status put(const TableDecl& table, std::string key, std::optional<std::string> value);

  // Commits: every write whose changelog record is delivered goes into its store (under exactly_once, at a
  // commit point, that is every write of the committed transaction). A failed store write stops the worker
  // (Engine::fail).
  void on_committed();
  // Exactly-once abort: every overlay is dropped, so state is the last committed one again.
  void discard_uncommitted();

 private:
  enum class Role { kNone, kRestoring, kActive, kStandby, kGlobal };
  struct Partition {
    TableDecl* table = nullptr;
    int32_t partition = 0;
    std::unique_ptr<store::TableStore> store;
    Role role = Role::kNone;
    // Writes not yet in the store, in the order they were sent to the changelog (so in changelog order: one
    // idempotent producer per worker delivers a partition's records in order). `offset` is -1 until the
    // write's delivery report. A flush moves the delivered prefix into the store with the last offset.
    struct Write {
      uint64_t seq = 0;
      std::string key;
      std::optional<std::string> value;  // nullopt: delete
      int64_t offset = -1;
    };
    std::deque<Write> writes;
    uint64_t next_seq = 0;
    // The latest pending write per key (its seq and value): what reads see before the store.
    std::map<std::string, std::pair<uint64_t, std::optional<std::string>>> dirty;
    uint64_t epoch = 1;  // bumped when it stops being active: late deliveries are ignored
    // Reader state.
    int64_t restore_end = -1;  // restoring: the end offset to reach (-1: not read yet)
    int64_t restore_started_ms = 0;
    int64_t restore_records = 0;
    int64_t next_offset = 0;         // the next changelog offset the reader expects
    bool seek_needed = false;        // (again) followed: the reader must seek it to next_offset
    bool end_query_pending = false;  // a fiber is asking the changelog's end offset
  };
  using Key = std::pair<const TableDecl*, int32_t>;

  Partition* find(const TableDecl& table, int32_t partition);
  // The partitions of tables (not global ones) fed by these source partitions.
  std::vector<Partition*> fed_by(const std::vector<TopicPartition>& source_partitions);
  Status prepare_changelog(TableDecl& table);
  Status open(Partition& part);
  void close(Partition& part);
  void set_role(Partition& part, Role role);
  [[nodiscard]] bool follows(const Partition& part) const;
  [[nodiscard]] TopicPartition changelog_tp(const Partition& part) const;
  Status flush(Partition& part);
  // table_reader.cpp: the reader fiber.
  void reader_loop();
  Status sync_reader_assignment();
  void apply(std::vector<ConsumerRecord> records);
  void check_restored();
  // Asks the changelog partition's end offset on a fiber of its own (each query is a broker round trip; a
  // rebalance that assigns many partitions asks for all at once).
  void query_restore_end(Partition& part);
  void log_progress();

  Engine& engine_;
  std::vector<std::unique_ptr<TableDecl>> tables_;
  std::map<Key, Partition> partitions_;
  std::unique_ptr<store::StoreFactory> owned_stores_;
  store::StoreFactory* stores_ = nullptr;
  std::unique_ptr<Consumer> reader_;
  // read_uncommitted, never assigned: only asks changelog end offsets (high watermarks) for restores.
  std::unique_ptr<Consumer> end_reader_;
  std::set<TopicPartition> reading_;  // the reader consumer's current assignment
  bool reader_dirty_ = false;         // roles changed: the reader re-assigns
  bool started_ = false;
  bool stopping_ = false;
  bool reader_done_ = false;
  FiberId reader_fiber_ = kNoFiber;
  FiberId stop_waiter_ = kNoFiber;
  int32_t end_queries_running_ = 0;
  int64_t last_progress_log_ms_ = 0;
};

}  // namespace mephisto::app_internal
