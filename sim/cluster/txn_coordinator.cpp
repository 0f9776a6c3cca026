// The transaction coordinator (KIP-98), one shard per __transaction_state partition, living on that partition's
// leader. State per transactional id is materialised from the partition's log at its high watermark; every
// transition is a write to that log, answered once replicated. The flow of a transaction:
//   InitProducerId  -> Empty (epoch bumped; an Ongoing txn of the old epoch is aborted first, fencing zombies)
//   AddPartitions / AddOffsets -> Ongoing (partitions accumulate; the timeout clock starts)
//   EndTxn          -> PrepareCommit / PrepareAbort, answered; then markers to every partition (async, retried),
//                      then CompleteCommit / CompleteAbort
//   timeout         -> PrepareAbort with the epoch bumped (the producer is fenced), markers, CompleteAbort
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cassert>

#include "sim/cluster/cluster_impl.h"

namespace mephisto::sim {

using internal_records::kTransactionStateTopic;
using internal_records::TxnState;
using internal_records::TxnValue;

namespace {

std::string describe_partitions(const std::vector<TopicPartition>& partitions) {
  std::string out;
  for (const auto& tp : partitions) {
    if (!out.empty()) out += ",";
    out += fmt::format("{}-{}", tp.topic, tp.partition);
  }
  return out;
}

bool is_prepare(TxnState state) { return state == TxnState::kPrepareCommit || state == TxnState::kPrepareAbort; }

}  // namespace

int64_t Cluster::Impl::allocate_producer_id() {
  const int64_t id = next_producer_id++;
  log_controller("producer-id", fmt::format("allocated {}", id));
  return id;
}

void Cluster::Impl::coordinator_write(Partition& p, RecordBatch batch, AppendDone done) {
  if (p.leader == kNoBroker || !alive(p.leader)) {
    done(ErrorCode::kNotLeaderOrFollower);
    return;
  }
  const LeaderAppend appended = append_as_leader(p, std::move(batch), true);
  if (appended.error != ErrorCode::kNone) {
    done(appended.error);
    return;
  }
  await_replication(p, appended.last_offset + 1, config.coordinator_write_timeout_ms, std::move(done));
}

// ---------------------------------------------------------------------------------------------------------------
// Shards

TxnShard* Cluster::Impl::txn_shard_on(BrokerId broker, const std::string& transactional_id, ErrorCode& error) {
  TxnShard& shard = txn_shards[static_cast<size_t>(coordinator_partition(CoordinatorType::kTransaction, transactional_id))];
  if (!shard.loaded || shard.broker != broker) {
    error = ErrorCode::kNotCoordinator;
    return nullptr;
  }
  error = ErrorCode::kNone;
  return &shard;
}

const TxnShard* Cluster::Impl::loaded_txn_shard(const std::string& transactional_id) const {
  const TxnShard& shard =
      txn_shards[static_cast<size_t>(coordinator_partition(CoordinatorType::kTransaction, transactional_id))];
  return shard.loaded && alive(shard.broker) ? &shard : nullptr;
}

void Cluster::Impl::load_txn_shard(TxnShard& shard, Partition& p) {
  assert(p.leader != kNoBroker);
  shard.loaded = true;
  shard.broker = p.leader;
  ++shard.load_id;
  shard.txns.clear();
  shard.applied_offset = p.leader_replica().log.log_start_offset();
  apply_txn_batches(shard, p, true);
  log(shard.broker, "txn-load", fmt::format("{}-{}: {} transactional ids", kTransactionStateTopic, shard.partition,
                                            shard.txns.size()));
}

void Cluster::Impl::unload_txn_shard(TxnShard& shard) {
  if (!shard.loaded) return;
  shard.loaded = false;
  ++shard.load_id;
  shard.txns.clear();
  log(shard.broker, "txn-unload", fmt::format("{}-{}", kTransactionStateTopic, shard.partition));
}

void Cluster::Impl::apply_txn_batches(TxnShard& shard, Partition& p, bool loading) {
  const Replica& lr = p.leader_replica();
  // A load replays the whole log (Kafka loads up to the log end); afterwards, writes apply once replicated.
  const int64_t upto = loading ? lr.log.log_end_offset() : lr.high_watermark;
  if (shard.applied_offset >= upto) return;
  std::vector<RecordBatch> batches;
  lr.log.read(shard.applied_offset, upto, INT32_MAX, true, batches);
  for (const RecordBatch& batch : batches) {
    if (batch.is_control()) continue;
    for (const Record& record : *batch.records) {
      if (batch.base_offset + record.offset_delta < shard.applied_offset || !record.key) continue;
      const std::string id = internal_records::decode_txn_key(*record.key);
      if (!record.value) {
        shard.txns.erase(id);
        continue;
      }
      TxnMetadata& meta = shard.txns[id];
      meta.transactional_id = id;
      meta.value = internal_records::decode_txn_value(*record.value);
      if (!loading) {  // a load replays history; txn-load summarises it
        log(shard.broker, "txn",
            fmt::format("{} {} pid={} epoch={} partitions=[{}]", id, txn_state_name(meta.value.state),
                        meta.value.producer_id, meta.value.producer_epoch, describe_partitions(meta.value.partitions)));
      }
      if (!is_prepare(meta.value.state)) meta.markers_in_flight = false;
    }
  }
  shard.applied_offset = upto;
  // A materialised PrepareCommit/PrepareAbort means markers are due (also after a coordinator move: the new
  // coordinator finishes what the old one started).
  for (auto& [id, meta] : shard.txns) {
    if (is_prepare(meta.value.state) && !meta.markers_in_flight) start_markers(shard, meta);
  }
}

void Cluster::Impl::write_txn_state(TxnShard& shard, TxnMetadata& meta, TxnValue value,
                                    std::function<void(ErrorCode)> done) {
  Partition* p = find_partition(TopicPartition{std::string(kTransactionStateTopic), shard.partition});
  assert(p != nullptr && "the transaction state topic always exists");
  std::sort(value.partitions.begin(), value.partitions.end());
  Record record;
  record.timestamp_ms = now();
  record.key = internal_records::encode_txn_key(meta.transactional_id);
  record.value = internal_records::encode_txn_value(value);
  std::vector<Record> records;
  records.push_back(std::move(record));
  meta.pending = true;
  const auto index = static_cast<size_t>(shard.partition);
  coordinator_write(*p, make_batch(std::move(records)),
                    [this, index, load_id = shard.load_id, id = meta.transactional_id,
                     done = std::move(done)](ErrorCode error) {
                      TxnShard& s = txn_shards[index];
                      if (s.loaded && s.load_id == load_id) {
                        if (auto it = s.txns.find(id); it != s.txns.end()) it->second.pending = false;
                      }
                      done(coordinator_write_error(error));
                    });
}

// ---------------------------------------------------------------------------------------------------------------
// Markers

void Cluster::Impl::start_markers(TxnShard& shard, TxnMetadata& meta) {
  meta.markers_in_flight = true;
  meta.markers_remaining = std::set<TopicPartition>(meta.value.partitions.begin(), meta.value.partitions.end());
  const auto index = static_cast<int32_t>(shard.partition);
  const uint64_t load_id = shard.load_id;
  if (meta.markers_remaining.empty()) {
    // Nothing to mark: go straight to Complete (through the same path, with a sentinel partition).
    schedule(0, [this, index, load_id, id = meta.transactional_id] {
      write_marker(index, load_id, id, TopicPartition{"", -1});
    });
    return;
  }
  // Kafka's coordinator answers EndTxn first and then sends WriteTxnMarkers to each partition's leader over the
  // inter-broker channel (even to itself), so a record another producer sends right after the answer may land
  // before the marker. An inter-broker latency per marker keeps that race possible here too (found by the
  // conformance suite on real Kafka: ReadCommittedSkipsAnAbortedTransactionInterleavedWithPlainRecords).
  for (const TopicPartition& tp : meta.markers_remaining) {
    schedule(replica_latency_ms(),
             [this, index, load_id, id = meta.transactional_id, tp] { write_marker(index, load_id, id, tp); });
  }
}

void Cluster::Impl::write_marker(int32_t shard_index, uint64_t load_id, std::string transactional_id,
                                 TopicPartition tp) {
  TxnShard& shard = txn_shards[static_cast<size_t>(shard_index)];
  if (!shard.loaded || shard.load_id != load_id || !alive(shard.broker)) return;
  auto it = shard.txns.find(transactional_id);
  if (it == shard.txns.end() || !is_prepare(it->second.value.state)) return;
  TxnMetadata& meta = it->second;
  const bool commit = meta.value.state == TxnState::kPrepareCommit;

  const auto retry = [this, shard_index, load_id, transactional_id, tp] {
    schedule(config.txn_marker_retry_backoff_ms,
             [this, shard_index, load_id, transactional_id, tp] { write_marker(shard_index, load_id, transactional_id, tp); });
  };
  // Once every partition has its marker: write CompleteCommit/CompleteAbort (retried until it lands).
  const auto complete_if_done = [this, shard_index, load_id, transactional_id, retry] {
    TxnShard& s = txn_shards[static_cast<size_t>(shard_index)];
    if (!s.loaded || s.load_id != load_id) return;
    auto found = s.txns.find(transactional_id);
    if (found == s.txns.end() || !is_prepare(found->second.value.state) || !found->second.markers_remaining.empty() ||
        found->second.pending) {
      return;
    }
    TxnMetadata& m = found->second;
    TxnValue done_value = m.value;
    done_value.state = m.value.state == TxnState::kPrepareCommit ? TxnState::kCompleteCommit : TxnState::kCompleteAbort;
    done_value.partitions.clear();
    done_value.start_time_ms = -1;
    write_txn_state(s, m, done_value, [retry](ErrorCode error) {
      if (error != ErrorCode::kNone) retry();
    });
  };

  if (tp.partition < 0) {  // the sentinel: no partitions to mark
    complete_if_done();
    return;
  }
  if (meta.markers_remaining.count(tp) == 0) {
    complete_if_done();  // a retry after completion of this partition (e.g. the Complete write failed)
    return;
  }
  Partition* p = find_partition(tp);
  if (p == nullptr) {  // the topic was deleted: nothing to mark
    meta.markers_remaining.erase(tp);
    complete_if_done();
    return;
  }
  if (p->leader == kNoBroker || !alive(p->leader) || !reachable(shard.broker, p->leader)) {
    retry();
    return;
  }
  Record marker;
  marker.timestamp_ms = now();
  std::vector<Record> records;
  records.push_back(std::move(marker));
  RecordBatch batch = make_batch(std::move(records));
  batch.producer_id = meta.value.producer_id;
  batch.producer_epoch = meta.value.producer_epoch;
  batch.base_sequence = -1;
  batch.is_transactional = true;
  batch.control = commit ? ControlType::kCommit : ControlType::kAbort;
  coordinator_write(*p, std::move(batch), [this, shard_index, load_id, transactional_id, tp, retry,
                                           complete_if_done](ErrorCode error) {
    if (error != ErrorCode::kNone && error != ErrorCode::kNotEnoughReplicasAfterAppend) {
      retry();
      return;
    }
    TxnShard& s = txn_shards[static_cast<size_t>(shard_index)];
    if (!s.loaded || s.load_id != load_id) return;
    auto found = s.txns.find(transactional_id);
    if (found == s.txns.end()) return;
    found->second.markers_remaining.erase(tp);
    complete_if_done();
  });
}

void Cluster::Impl::scan_transaction_timeouts() {
  for (TxnShard& shard : txn_shards) {
    if (!shard.loaded || !alive(shard.broker)) continue;
    for (auto& [id, meta] : shard.txns) {
      if (meta.pending || meta.value.state != TxnState::kOngoing) continue;
      if (now() <= meta.value.start_time_ms + meta.value.timeout_ms) continue;
      // Kafka aborts with a bumped epoch so the timed-out producer is fenced (its next request fails).
      TxnValue aborting = meta.value;
      aborting.state = TxnState::kPrepareAbort;
      if (aborting.producer_epoch < INT16_MAX - 1) ++aborting.producer_epoch;
      log(shard.broker, "txn-timeout",
          fmt::format("{} pid={} started {} timeout {}ms: aborting with epoch {}", id, meta.value.producer_id,
                      meta.value.start_time_ms, meta.value.timeout_ms, aborting.producer_epoch));
      write_txn_state(shard, meta, aborting, [](ErrorCode) {});
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Requests

namespace {

// Kafka's order of checks for a transactional request naming (producer id, epoch).
ErrorCode check_producer(const TxnMetadata* meta, int64_t producer_id, int16_t producer_epoch) {
  if (meta == nullptr || meta->value.producer_id < 0) return ErrorCode::kInvalidProducerIdMapping;
  if (meta->value.producer_id != producer_id) return ErrorCode::kInvalidProducerIdMapping;
  if (meta->value.producer_epoch != producer_epoch) return ErrorCode::kProducerFenced;
  if (meta->pending) return ErrorCode::kConcurrentTransactions;
  return ErrorCode::kNone;
}

}  // namespace

void Cluster::Impl::handle_init_producer_id(BrokerId to, const InitProducerIdRequest& request, Responder respond) {
  if (!request.transactional_id) {
    // Idempotent producer: any broker hands out an id (or bumps the epoch of the one it has, KIP-360).
    InitProducerIdResponse out;
    if (request.producer_id >= 0 && request.producer_epoch >= 0 && request.producer_epoch < INT16_MAX - 1) {
      out.producer_id = request.producer_id;
      out.producer_epoch = static_cast<int16_t>(request.producer_epoch + 1);
    } else {
      out.producer_id = allocate_producer_id();
      out.producer_epoch = 0;
    }
    respond(out);
    return;
  }
  const std::string& id = *request.transactional_id;
  if (id.empty()) {
    respond(InitProducerIdResponse{ErrorCode::kInvalidRequest, -1, -1});
    return;
  }
  if (request.transaction_timeout_ms <= 0 || request.transaction_timeout_ms > config.transaction_max_timeout_ms) {
    respond(InitProducerIdResponse{ErrorCode::kInvalidTransactionTimeout, -1, -1});
    return;
  }
  ErrorCode error = ErrorCode::kNone;
  TxnShard* shard = txn_shard_on(to, id, error);
  if (shard == nullptr) {
    respond(InitProducerIdResponse{error, -1, -1});
    return;
  }
  TxnMetadata& meta = shard->txns[id];
  meta.transactional_id = id;
  if (meta.pending) {
    respond(InitProducerIdResponse{ErrorCode::kConcurrentTransactions, -1, -1});
    return;
  }
  const bool known = meta.value.producer_id >= 0;
  if (known && request.producer_id >= 0 &&
      (request.producer_id != meta.value.producer_id || request.producer_epoch != meta.value.producer_epoch)) {
    respond(InitProducerIdResponse{ErrorCode::kProducerFenced, -1, -1});
    return;
  }
  if (known && is_prepare(meta.value.state)) {
    respond(InitProducerIdResponse{ErrorCode::kConcurrentTransactions, -1, -1});
    return;
  }
  if (known && meta.value.state == TxnState::kOngoing) {
    // Fence the previous instance: abort its transaction under a bumped epoch; the caller retries.
    TxnValue aborting = meta.value;
    aborting.state = TxnState::kPrepareAbort;
    if (aborting.producer_epoch < INT16_MAX - 1) ++aborting.producer_epoch;
    log(to, "txn-fence", fmt::format("{} pid={} epoch {} -> {}: aborting the open transaction", id,
                                     meta.value.producer_id, meta.value.producer_epoch, aborting.producer_epoch));
    write_txn_state(*shard, meta, aborting, [respond](ErrorCode e) {
      respond(InitProducerIdResponse{e == ErrorCode::kNone ? ErrorCode::kConcurrentTransactions : e, -1, -1});
    });
    return;
  }
  TxnValue next;
  next.producer_id = known ? meta.value.producer_id : allocate_producer_id();
  next.producer_epoch = known ? static_cast<int16_t>(meta.value.producer_epoch + 1) : 0;
  if (known && meta.value.producer_epoch >= INT16_MAX - 1) {  // epoch exhausted: a new producer id
    next.producer_id = allocate_producer_id();
    next.producer_epoch = 0;
  }
  next.timeout_ms = request.transaction_timeout_ms;
  next.state = TxnState::kEmpty;
  write_txn_state(*shard, meta, next, [respond, next](ErrorCode e) {
    if (e != ErrorCode::kNone) {
      respond(InitProducerIdResponse{e, -1, -1});
    } else {
      respond(InitProducerIdResponse{ErrorCode::kNone, next.producer_id, next.producer_epoch});
    }
  });
}

namespace {

// Adds partitions to the transaction (shared by AddPartitionsToTxn and AddOffsetsToTxn).
void add_to_txn(Cluster::Impl& c, TxnShard& shard, TxnMetadata& meta, const std::vector<TopicPartition>& added,
                std::function<void(ErrorCode)> done) {
  std::vector<TopicPartition> merged = meta.value.partitions;
  merged.insert(merged.end(), added.begin(), added.end());
  std::sort(merged.begin(), merged.end());
  merged.erase(std::unique(merged.begin(), merged.end()), merged.end());
  if (meta.value.state == TxnState::kOngoing && merged == meta.value.partitions) {
    done(ErrorCode::kNone);
    return;
  }
  TxnValue next = meta.value;
  next.partitions = std::move(merged);
  if (meta.value.state != TxnState::kOngoing) next.start_time_ms = c.now();
  next.state = TxnState::kOngoing;
  c.write_txn_state(shard, meta, std::move(next), std::move(done));
}

}  // namespace

void Cluster::Impl::handle_add_partitions_to_txn(BrokerId to, const AddPartitionsToTxnRequest& request,
                                                 Responder respond) {
  // By value: the answer may come after this handler returned.
  const auto reply_all = [partitions = request.partitions](ErrorCode e) {
    AddPartitionsToTxnResponse out;
    for (const auto& tp : partitions) out.partitions.push_back({tp, e});
    return out;
  };
  ErrorCode error = ErrorCode::kNone;
  TxnShard* shard = txn_shard_on(to, request.transactional_id, error);
  if (shard == nullptr) {
    respond(reply_all(error));
    return;
  }
  auto it = shard->txns.find(request.transactional_id);
  TxnMetadata* meta = it == shard->txns.end() ? nullptr : &it->second;
  error = check_producer(meta, request.producer_id, request.producer_epoch);
  if (error == ErrorCode::kNone && is_prepare(meta->value.state)) error = ErrorCode::kConcurrentTransactions;
  if (error != ErrorCode::kNone) {
    respond(reply_all(error));
    return;
  }
  // Unknown partitions fail; Kafka answers the others OPERATION_NOT_ATTEMPTED, which the seam's error enum lacks:
  // they get kInvalidRequest here.
  bool any_unknown = false;
  for (const auto& tp : request.partitions) {
    if (find_partition(tp) == nullptr) any_unknown = true;
  }
  if (any_unknown) {
    AddPartitionsToTxnResponse out;
    for (const auto& tp : request.partitions) {
      out.partitions.push_back(
          {tp, find_partition(tp) == nullptr ? ErrorCode::kUnknownTopicOrPartition : ErrorCode::kInvalidRequest});
    }
    respond(std::move(out));
    return;
  }
  add_to_txn(*this, *shard, *meta, request.partitions,
             [respond, reply_all](ErrorCode e) { respond(reply_all(e)); });
}

void Cluster::Impl::handle_add_offsets_to_txn(BrokerId to, const AddOffsetsToTxnRequest& request, Responder respond) {
  if (request.group_id.empty()) {
    respond(AddOffsetsToTxnResponse{ErrorCode::kInvalidGroupId});
    return;
  }
  ErrorCode error = ErrorCode::kNone;
  TxnShard* shard = txn_shard_on(to, request.transactional_id, error);
  if (shard == nullptr) {
    respond(AddOffsetsToTxnResponse{error});
    return;
  }
  auto it = shard->txns.find(request.transactional_id);
  TxnMetadata* meta = it == shard->txns.end() ? nullptr : &it->second;
  error = check_producer(meta, request.producer_id, request.producer_epoch);
  if (error == ErrorCode::kNone && is_prepare(meta->value.state)) error = ErrorCode::kConcurrentTransactions;
  if (error != ErrorCode::kNone) {
    respond(AddOffsetsToTxnResponse{error});
    return;
  }
  // The group's __consumer_offsets partition joins the transaction: its marker commits the offsets.
  const TopicPartition offsets_tp{std::string(internal_records::kOffsetsTopic),
                                  coordinator_partition(CoordinatorType::kGroup, request.group_id)};
  add_to_txn(*this, *shard, *meta, {offsets_tp}, [respond](ErrorCode e) { respond(AddOffsetsToTxnResponse{e}); });
}

void Cluster::Impl::handle_end_txn(BrokerId to, const EndTxnRequest& request, Responder respond) {
  ErrorCode error = ErrorCode::kNone;
  TxnShard* shard = txn_shard_on(to, request.transactional_id, error);
  if (shard == nullptr) {
    respond(EndTxnResponse{error});
    return;
  }
  auto it = shard->txns.find(request.transactional_id);
  TxnMetadata* meta = it == shard->txns.end() ? nullptr : &it->second;
  error = check_producer(meta, request.producer_id, request.producer_epoch);
  if (error != ErrorCode::kNone) {
    respond(EndTxnResponse{error});
    return;
  }
  const bool commit = request.committed;
  switch (meta->value.state) {
    case TxnState::kOngoing: {
      TxnValue next = meta->value;
      next.state = commit ? TxnState::kPrepareCommit : TxnState::kPrepareAbort;
      write_txn_state(*shard, *meta, std::move(next), [respond](ErrorCode e) { respond(EndTxnResponse{e}); });
      return;
    }
    case TxnState::kPrepareCommit:
      respond(EndTxnResponse{commit ? ErrorCode::kConcurrentTransactions : ErrorCode::kInvalidTxnState});
      return;
    case TxnState::kPrepareAbort:
      respond(EndTxnResponse{!commit ? ErrorCode::kConcurrentTransactions : ErrorCode::kInvalidTxnState});
      return;
    case TxnState::kCompleteCommit:  // a retry of a commit that went through
      respond(EndTxnResponse{commit ? ErrorCode::kNone : ErrorCode::kInvalidTxnState});
      return;
    case TxnState::kCompleteAbort:
      respond(EndTxnResponse{!commit ? ErrorCode::kNone : ErrorCode::kInvalidTxnState});
      return;
    case TxnState::kEmpty:
      respond(EndTxnResponse{ErrorCode::kInvalidTxnState});
      return;
  }
}

}  // namespace mephisto::sim
