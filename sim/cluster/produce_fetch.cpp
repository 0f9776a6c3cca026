// The data plane: Produce, Fetch (consumer long polls), ListOffsets, and the log cleaner.
#include <fmt/format.h>

#include <algorithm>
#include <cassert>

#include "sim/cluster/cluster_impl.h"

namespace mephisto::sim {

// ---------------------------------------------------------------------------------------------------------------
// Produce

namespace {

struct PendingProduce {
  ProduceResponse response;
  size_t remaining = 0;
  Responder respond;

  void finish(size_t index, ErrorCode error, int64_t base_offset, int64_t log_start_offset) {
    auto& result = response.partitions[index];
    result.error = error;
    result.base_offset = base_offset;
    result.log_start_offset = log_start_offset;
    if (error != ErrorCode::kNone) result.error_message = std::string(error_name(error));
    assert(remaining > 0 && "a produce partition finished twice");
    if (--remaining == 0) respond(std::move(response));
  }
};

}  // namespace

ErrorCode Cluster::Impl::verify_transactional_write(const ProduceRequest& request, const TopicPartition& tp,
                                                    const RecordBatch& batch) const {
  if (!request.transactional_id) return ErrorCode::kInvalidRequest;
  if (!config.verify_transactional_partitions) return ErrorCode::kNone;
  // KIP-890: the leader asks the coordinator whether the partition is in the producer's ongoing transaction.
  // Modelled as a direct look at the coordinator's state (no round trip).
  const TxnShard* shard = loaded_txn_shard(*request.transactional_id);
  if (shard == nullptr) return ErrorCode::kNotEnoughReplicas;  // coordinator unavailable: retriable
  const auto it = shard->txns.find(*request.transactional_id);
  if (it == shard->txns.end() || it->second.value.producer_id != batch.producer_id) return ErrorCode::kInvalidTxnState;
  const auto& value = it->second.value;
  if (value.producer_epoch > batch.producer_epoch) return ErrorCode::kInvalidProducerEpoch;
  if (value.state != internal_records::TxnState::kOngoing ||
      !std::binary_search(value.partitions.begin(), value.partitions.end(), tp)) {
    return ErrorCode::kInvalidTxnState;
  }
  return ErrorCode::kNone;
}

void Cluster::Impl::handle_produce(BrokerId to, const RequestHeader& /*header*/, ProduceRequest request,
                                   Responder respond) {
  auto pending = std::make_shared<PendingProduce>();
  pending->respond = std::move(respond);
  pending->remaining = request.partitions.size();
  for (const auto& pd : request.partitions) {
    ProduceResponse::PartitionResult result;
    result.tp = pd.tp;
    pending->response.partitions.push_back(std::move(result));
  }
  if (request.partitions.empty()) {
    pending->respond(std::move(pending->response));
    return;
  }
  const bool acks_valid = request.acks == -1 || request.acks == 0 || request.acks == 1;
  for (size_t i = 0; i < request.partitions.size(); ++i) {
    auto& pd = request.partitions[i];
    Partition* p = find_partition(pd.tp);
    RecordBatch& batch = pd.batch;
    ErrorCode error = ErrorCode::kNone;
    if (!acks_valid) {
      error = ErrorCode::kInvalidRequiredAcks;
    } else if (p == nullptr) {
      error = ErrorCode::kUnknownTopicOrPartition;
    } else if (p->internal != InternalKind::kNone) {
      error = ErrorCode::kInvalidTopicException;  // clients may not write internal topics
    } else if (p->leader != to) {
      error = ErrorCode::kNotLeaderOrFollower;
    } else if (!batch.records || batch.records->empty() || batch.is_control() ||
               batch.last_offset_delta != static_cast<int32_t>(batch.records->size()) - 1) {
      error = ErrorCode::kInvalidRecord;
    } else if (batch_size_bytes(batch) > p->config->max_message_bytes) {
      error = ErrorCode::kMessageTooLarge;
    } else if (p->config->compact &&
               std::any_of(batch.records->begin(), batch.records->end(), [](const Record& r) { return !r.key; })) {
      error = ErrorCode::kInvalidRecord;  // "compacted topic cannot accept message without key"
    } else if (batch.is_transactional && batch.producer_id < 0) {
      error = ErrorCode::kInvalidRecord;
    } else if (batch.is_transactional && !p->leader_replica().log.has_open_transaction(batch.producer_id)) {
      error = verify_transactional_write(request, pd.tp, batch);
    }
    if (error != ErrorCode::kNone) {
      pending->finish(i, error, -1, -1);
      continue;
    }
    const LeaderAppend appended = append_as_leader(*p, std::move(batch), request.acks == -1);
    const int64_t log_start = p->leader_replica().log.log_start_offset();
    if (appended.error != ErrorCode::kNone && appended.error != ErrorCode::kDuplicateSequenceNumber) {
      pending->finish(i, appended.error, -1, log_start);
      continue;
    }
    if (request.acks != -1) {
      pending->finish(i, appended.error, appended.base_offset, log_start);
      continue;
    }
    // acks=all: answer when the ISR has the batch (for a duplicate: the original batch).
    const ErrorCode outcome = appended.error;
    const int64_t base = appended.base_offset;
    await_replication(*p, appended.last_offset + 1, request.timeout_ms,
                      [pending, i, outcome, base, log_start](ErrorCode error) {
                        if (error == ErrorCode::kNone) {
                          pending->finish(i, outcome, base, log_start);
                        } else {
                          pending->finish(i, error, -1, log_start);
                        }
                      });
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Fetch

struct FetchWait {
  BrokerId broker = kNoBroker;
  FetchRequest request;
  Responder respond;
  TimerId timer = 0;
  bool done = false;
};

namespace {

// Builds the response as the broker would send it now. Returns true if it should be sent now (enough bytes, or
// an error to report).
bool build_fetch_response(Cluster::Impl& c, BrokerId broker, const FetchRequest& request, FetchResponse& out) {
  out = FetchResponse{};
  int32_t total_bytes = 0;
  bool has_error = false;
  for (const auto& pd : request.partitions) {
    FetchResponse::PartitionData d;
    d.tp = pd.tp;
    Partition* p = c.find_partition(pd.tp);
    if (p == nullptr) {
      d.error = ErrorCode::kUnknownTopicOrPartition;
    } else if (p->leader != broker) {
      d.error = ErrorCode::kNotLeaderOrFollower;
    } else {
      const Replica& lr = p->leader_replica();
      d.high_watermark = lr.high_watermark;
      d.last_stable_offset = p->last_stable_offset();
      d.log_start_offset = lr.log.log_start_offset();
      if (pd.fetch_offset < lr.log.log_start_offset() || pd.fetch_offset > lr.log.log_end_offset()) {
        d.error = ErrorCode::kOffsetOutOfRange;
      } else {
        const bool committed = request.isolation_level == IsolationLevel::kReadCommitted;
        const int64_t upto = committed ? d.last_stable_offset : d.high_watermark;
        const int32_t room = std::min(pd.partition_max_bytes, request.max_bytes - total_bytes);
        if (pd.fetch_offset < upto && (room > 0 || total_bytes == 0)) {
          total_bytes += lr.log.read(pd.fetch_offset, upto, std::max(room, 0), total_bytes == 0, d.batches);
          if (committed && !d.batches.empty()) {
            lr.log.aborted_in_range(pd.fetch_offset, d.batches.back().next_offset(), d.aborted_transactions);
          }
        }
      }
    }
    if (d.error != ErrorCode::kNone) has_error = true;
    out.partitions.push_back(std::move(d));
  }
  return has_error || request.min_bytes <= 0 || (total_bytes > 0 && total_bytes >= request.min_bytes);
}

}  // namespace

void Cluster::Impl::handle_fetch(BrokerId to, FetchRequest request, Responder respond) {
  FetchResponse response;
  if (build_fetch_response(*this, to, request, response) || request.max_wait_ms <= 0) {
    respond(std::move(response));
    return;
  }
  auto wait = std::make_shared<FetchWait>();
  wait->broker = to;
  wait->request = std::move(request);
  wait->respond = std::move(respond);
  for (const auto& pd : wait->request.partitions) {
    Partition* p = find_partition(pd.tp);
    if (p == nullptr) continue;
    // Drop finished waits first, so an idle partition's list stays bounded by the fetches parked on it.
    auto& waits = p->fetch_waits;
    waits.erase(std::remove_if(waits.begin(), waits.end(), [](const auto& w) { return w.expired(); }), waits.end());
    waits.push_back(wait);
  }
  wait->timer = schedule(wait->request.max_wait_ms, [this, wait] {
    if (wait->done) return;
    wait->done = true;
    FetchResponse out;
    (void)build_fetch_response(*this, wait->broker, wait->request, out);
    wait->respond(std::move(out));
  });
}

void Cluster::Impl::wake_fetch_waits(Partition& p) {
  if (p.fetch_waits.empty()) return;
  std::vector<std::shared_ptr<FetchWait>> live;
  for (const auto& weak : p.fetch_waits) {
    if (auto w = weak.lock(); w && !w->done) live.push_back(std::move(w));
  }
  p.fetch_waits.clear();
  for (const auto& w : live) p.fetch_waits.push_back(w);
  for (const auto& w : live) {
    if (w->done) continue;
    FetchResponse out;
    if (!build_fetch_response(*this, w->broker, w->request, out)) continue;
    w->done = true;
    executor.cancel(w->timer);
    w->respond(std::move(out));
  }
}

// ---------------------------------------------------------------------------------------------------------------
// ListOffsets

void Cluster::Impl::handle_list_offsets(BrokerId to, const ListOffsetsRequest& request, Responder respond) {
  ListOffsetsResponse out;
  for (const auto& pd : request.partitions) {
    ListOffsetsResponse::PartitionResult result;
    result.tp = pd.tp;
    Partition* p = find_partition(pd.tp);
    if (p == nullptr) {
      result.error = ErrorCode::kUnknownTopicOrPartition;
    } else if (p->leader != to) {
      result.error = ErrorCode::kNotLeaderOrFollower;
    } else {
      const Replica& lr = p->leader_replica();
      const int64_t upto =
          request.isolation_level == IsolationLevel::kReadCommitted ? p->last_stable_offset() : lr.high_watermark;
      result.leader_epoch = p->leader_epoch;
      if (pd.timestamp_ms == kEarliestTimestamp) {
        result.offset = lr.log.log_start_offset();
      } else if (pd.timestamp_ms == kLatestTimestamp) {
        result.offset = upto;
      } else if (auto found = lr.log.offset_for_timestamp(pd.timestamp_ms, upto)) {
        result.offset = found->first;
        result.timestamp_ms = found->second;
      }
    }
    out.partitions.push_back(std::move(result));
  }
  respond(std::move(out));
}

// ---------------------------------------------------------------------------------------------------------------
// Log cleaner

CompactionStats Cluster::Impl::compact_partition(Partition& p) {
  CompactionStats total;
  if (!p.config->compact || p.leader == kNoBroker || !alive(p.leader)) return total;
  // Only the stable, replicated prefix is cleaned: never above the replica's high watermark or the first
  // offset of a transaction its own log holds open. Each broker's cleaner judges by its own log (Kafka's
  // firstUnstableOffset), not the leader's: a follower that has not yet replicated an abort marker still sees
  // the transaction open, and cleaning past it would let the aborted records shadow the key's committed
  // value, which would then be gone once the marker arrives (flagship seed 170581).
  for (auto& [b, r] : p.replica) {
    if (!alive(b)) continue;  // a dead broker's cleaner does not run
    const int64_t upto = std::min(r.high_watermark, r.log.first_unstable_offset());
    const CompactionStats stats =
        r.log.compact(upto, now(), p.config->delete_retention_ms, p.config->min_compaction_lag_ms);
    total.records_removed += stats.records_removed;
    total.batches_removed += stats.batches_removed;
    if (stats.records_removed > 0) {
      log(b, "compact", fmt::format("{}-{} below {}: removed {} records, {} batches", p.tp.topic, p.tp.partition, upto,
                                    stats.records_removed, stats.batches_removed));
    }
  }
  return total;
}

void Cluster::Impl::run_cleaner() {
  for_each_partition([&](Partition& p) {
    if (p.config->compact) (void)compact_partition(p);
  });
}

}  // namespace mephisto::sim
