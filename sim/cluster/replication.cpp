// Replication: leader appends, followers' long-polling replica fetches, the ISR, the high watermark and the
// acks=all waiters. Mirrors Kafka's ReplicaManager/Partition:
//   - a follower's fetch offset tells the leader the follower's log end offset; the high watermark is the minimum
//     of it over the ISR (the leader's own included), so acks=all completes one fetch round after the data
//     reaches the followers;
//   - a follower is caught up when it fetched up to the leader's log end (Kafka's lastCaughtUpTimeMs rule); one
//     that is not for replica.lag.time.max.ms leaves the ISR, and re-enters once it reaches the high watermark;
//   - a follower that starts following a new leader epoch truncates to where its log diverges from the leader's
//     (the leader-epoch rule of KIP-101/279, computed on the leader's epoch cache without the round trip).
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cassert>

#include "sim/cluster/cluster_impl.h"

namespace mephisto::sim {

void Cluster::Impl::ensure_replica_fetchers() {
  for (auto& [name, topic] : topics) {
    for (auto& p : topic.partitions) {
      if (p->leader == kNoBroker || !alive(p->leader)) continue;
      for (BrokerId follower : p->replicas) {
        if (follower == p->leader || !alive(follower)) continue;
        ReplicaFetchSession& session = sessions[{follower, p->leader}];
        if (session.running) {
          // Kafka adds the partition to the running fetcher; here the parked fetch is answered at once so the
          // follower's next fetch covers the new partition (or the new epoch).
          const bool covered = std::any_of(session.parked_items.begin(), session.parked_items.end(),
                                           [&](const ReplicaFetchItem& item) {
                                             return item.uid == p->uid && item.leader_epoch == p->leader_epoch;
                                           });
          if (session.parked && !covered) unpark_replica_fetch(follower, p->leader);
          continue;
        }
        session.running = true;
        const uint64_t token = ++session.token;
        const BrokerId leader = p->leader;
        schedule(0, [this, follower, leader, token] { replica_fetch_send(follower, leader, token); });
      }
    }
  }
}

void Cluster::Impl::kill_sessions_of(BrokerId broker) {
  for (auto& [key, session] : sessions) {
    if (key.first != broker && key.second != broker) continue;
    session.running = false;
    ++session.token;
    if (session.parked) {
      executor.cancel(session.park_timer);
      session.parked = false;
      session.parked_items.clear();
    }
  }
}

bool Cluster::Impl::session_current(BrokerId follower, BrokerId leader, uint64_t token,
                                    uint32_t follower_incarnation) const {
  const auto it = sessions.find({follower, leader});
  return it != sessions.end() && it->second.running && it->second.token == token && alive(follower) &&
         broker_state(follower).incarnation == follower_incarnation;
}

void Cluster::Impl::reconcile_follower(Partition& p, BrokerId follower) {
  Replica& fr = p.replica.at(follower);
  if (fr.reconciled_epoch == p.leader_epoch) return;
  const Replica& lr = p.leader_replica();
  const int64_t before = fr.log.log_end_offset();
  // Each round drops at least one epoch from the follower's cache, so this ends.
  while (true) {
    const int32_t epoch = fr.log.latest_epoch();
    if (epoch < 0) break;
    const auto [leader_epoch, leader_end] = lr.log.end_offset_for_epoch(epoch);
    if (leader_epoch < 0) {
      fr.log.reset_to(lr.log.log_start_offset());
      break;
    }
    if (leader_epoch == epoch) {
      fr.log.truncate_to(std::min(leader_end, fr.log.log_end_offset()));
      break;
    }
    const int64_t own_end = fr.log.end_offset_for_epoch(leader_epoch).second;
    fr.log.truncate_to(std::min(leader_end, own_end < 0 ? fr.log.log_start_offset() : own_end));
  }
  fr.reconciled_epoch = p.leader_epoch;
  fr.high_watermark = std::min(fr.high_watermark, fr.log.log_end_offset());
  if (fr.log.log_end_offset() != before) {
    log(follower, "truncate",
        fmt::format("{}-{} leo {} -> {} (leader {} epoch {})", p.tp.topic, p.tp.partition, before,
                    fr.log.log_end_offset(), p.leader, p.leader_epoch));
  }
}

void Cluster::Impl::replica_fetch_send(BrokerId follower, BrokerId leader, uint64_t token) {
  auto it = sessions.find({follower, leader});
  if (it == sessions.end() || !it->second.running || it->second.token != token || !alive(follower)) return;
  std::vector<ReplicaFetchItem> items;
  for (auto& [name, topic] : topics) {
    for (auto& p : topic.partitions) {
      if (p->leader != leader || follower == leader || !p->has_replica(follower)) continue;
      reconcile_follower(*p, follower);
      items.push_back({p, p->uid, p->leader_epoch, p->replica.at(follower).log.log_end_offset()});
    }
  }
  if (items.empty()) {
    it->second.running = false;  // nothing to follow from this leader any more
    return;
  }
  const uint32_t incarnation = broker_state(follower).incarnation;
  schedule(replica_latency_ms(), [this, follower, leader, token, incarnation, items = std::move(items)]() mutable {
    replica_fetch_arrive(follower, leader, token, incarnation, std::move(items));
  });
}

void Cluster::Impl::replica_fetch_retry_later(BrokerId follower, BrokerId leader, uint64_t token) {
  // The request or its answer was lost (leader down, link cut): the follower notices after its fetch timeout.
  schedule(config.replica_fetch_wait_max_ms + replica_latency_ms(),
           [this, follower, leader, token] { replica_fetch_send(follower, leader, token); });
}

namespace {

bool item_current(const Partition* p, const ReplicaFetchItem& item, BrokerId leader) {
  return p != nullptr && !p->deleted && p->uid == item.uid && p->leader == leader &&
         p->leader_epoch == item.leader_epoch;
}

}  // namespace

void Cluster::Impl::replica_fetch_arrive(BrokerId follower, BrokerId leader, uint64_t token,
                                         uint32_t follower_incarnation, std::vector<ReplicaFetchItem> items) {
  if (!session_current(follower, leader, token, follower_incarnation)) return;
  if (!alive(leader) || !reachable(follower, leader)) {
    replica_fetch_retry_later(follower, leader, token);
    return;
  }
  bool answer_now = false;
  for (const ReplicaFetchItem& item : items) {
    PartitionPtr p = item.partition.lock();
    if (!item_current(p.get(), item, leader)) {
      answer_now = true;  // the follower must rebuild its view
      continue;
    }
    Replica& lr = p->leader_replica();
    Replica& fr = p->replica.at(follower);
    const int64_t fetch_offset = item.fetch_offset;
    const int64_t leader_leo = lr.log.log_end_offset();
    if (fetch_offset > leader_leo) continue;  // cannot happen after reconciliation; ignore rather than loop
    // Kafka's Replica.updateFetchState: caught up if it fetched up to the leader's end, or up to where the
    // leader's end was at its previous fetch (then it was caught up as of that fetch).
    if (fetch_offset >= leader_leo) {
      fr.last_caught_up_ms = now();
    } else if (fetch_offset >= fr.last_fetch_leader_leo) {
      fr.last_caught_up_ms = std::max(fr.last_caught_up_ms, fr.last_fetch_ms);
    }
    fr.last_fetch_leader_leo = leader_leo;
    fr.last_fetch_ms = now();
    fr.fetched_leo = fetch_offset;
    if (!p->in_isr(follower) && fetch_offset >= lr.high_watermark && fetch_offset >= p->epoch_start_offset) {
      p->isr.push_back(follower);
      std::vector<BrokerId> ordered;
      for (BrokerId b : p->replicas) {
        if (p->in_isr(b)) ordered.push_back(b);
      }
      p->isr = std::move(ordered);
      log(leader, "isr", fmt::format("{}-{} isr=[{}] (expand: {} caught up at {})", p->tp.topic, p->tp.partition,
                                     fmt::join(p->isr, ","), follower, fetch_offset));
    }
    maybe_advance_high_watermark(*p);
  }
  // Decided after every partition's update: an advancing high watermark runs callbacks (acks, coordinator
  // writes, markers) that may append to partitions of this very fetch.
  for (const ReplicaFetchItem& item : items) {
    PartitionPtr p = item.partition.lock();
    if (!item_current(p.get(), item, leader) || item.fetch_offset < p->leader_replica().log.log_end_offset()) {
      answer_now = true;
      break;
    }
  }
  if (answer_now) {
    replica_fetch_respond(follower, leader, token, follower_incarnation, items);
    return;
  }
  // Nothing new: long-poll until an append wakes the session or replica.fetch.wait.max.ms passes.
  ReplicaFetchSession& session = sessions[{follower, leader}];
  session.parked = true;
  session.parked_items = std::move(items);
  session.park_timer = schedule(config.replica_fetch_wait_max_ms, [this, follower, leader, token,
                                                                   follower_incarnation] {
    ReplicaFetchSession& s = sessions[{follower, leader}];
    if (!s.parked || s.token != token) return;
    s.parked = false;
    std::vector<ReplicaFetchItem> parked = std::move(s.parked_items);
    s.parked_items.clear();
    replica_fetch_respond(follower, leader, token, follower_incarnation, parked);
  });
}

void Cluster::Impl::wake_parked_replica_fetches(Partition& p) {
  for (BrokerId follower : p.replicas) {
    if (follower != p.leader) unpark_replica_fetch(follower, p.leader);
  }
}

void Cluster::Impl::unpark_replica_fetch(BrokerId follower, BrokerId leader) {
  auto it = sessions.find({follower, leader});
  if (it == sessions.end() || !it->second.parked) return;
  ReplicaFetchSession& session = it->second;
  executor.cancel(session.park_timer);
  session.parked = false;
  std::vector<ReplicaFetchItem> items = std::move(session.parked_items);
  session.parked_items.clear();
  replica_fetch_respond(follower, leader, session.token, broker_state(follower).incarnation, items);
}

void Cluster::Impl::replica_fetch_respond(BrokerId follower, BrokerId leader, uint64_t token,
                                          uint32_t follower_incarnation, const std::vector<ReplicaFetchItem>& items) {
  std::vector<ReplicaFetchData> data;
  data.reserve(items.size());
  for (const ReplicaFetchItem& item : items) {
    ReplicaFetchData d;
    d.item = item;
    PartitionPtr p = item.partition.lock();
    if (!item_current(p.get(), item, leader)) {
      d.stale = true;
    } else {
      const Replica& lr = p->leader_replica();
      d.high_watermark = lr.high_watermark;
      lr.log.read(item.fetch_offset, lr.log.log_end_offset(), config.replica_fetch_max_bytes, true, d.batches);
    }
    data.push_back(std::move(d));
  }
  schedule(replica_latency_ms(), [this, follower, leader, token, follower_incarnation, data = std::move(data)]() mutable {
    replica_fetch_complete(follower, leader, token, follower_incarnation, std::move(data));
  });
}

void Cluster::Impl::replica_fetch_complete(BrokerId follower, BrokerId leader, uint64_t token,
                                           uint32_t follower_incarnation, std::vector<ReplicaFetchData> data) {
  if (!session_current(follower, leader, token, follower_incarnation)) return;
  if (!reachable(leader, follower)) {
    replica_fetch_retry_later(follower, leader, token);
    return;
  }
  for (ReplicaFetchData& d : data) {
    if (d.stale) continue;
    PartitionPtr p = d.item.partition.lock();
    if (!item_current(p.get(), d.item, leader) || !p->has_replica(follower)) continue;
    Replica& fr = p->replica.at(follower);
    if (fr.reconciled_epoch != p->leader_epoch || fr.log.log_end_offset() != d.item.fetch_offset) continue;
    const int64_t before = fr.log.log_end_offset();
    for (RecordBatch& batch : d.batches) {
      if (batch.last_offset() < fr.log.log_end_offset()) continue;
      // Logs agree on batch boundaries below the fetch offset; a straddling batch means they do not.
      assert(batch.base_offset >= fr.log.log_end_offset() && "replica fetch: batch straddles the follower's end");
      fr.log.append(std::move(batch));
    }
    fr.high_watermark = std::min(d.high_watermark, fr.log.log_end_offset());
    fr.log.on_high_watermark(fr.high_watermark);
    if (fr.log.log_end_offset() != before) {
      log(follower, "replicate", fmt::format("{}-{} leo {} -> {} hw {}", p->tp.topic, p->tp.partition, before,
                                             fr.log.log_end_offset(), fr.high_watermark));
    }
  }
  replica_fetch_send(follower, leader, token);
}

void Cluster::Impl::check_isr() {
  for_each_partition([&](Partition& p) {
    if (p.leader == kNoBroker || !alive(p.leader)) return;
    std::vector<BrokerId> removed;
    for (BrokerId b : p.isr) {
      if (b != p.leader && now() - p.replica.at(b).last_caught_up_ms > config.replica_lag_time_max_ms) {
        removed.push_back(b);
      }
    }
    if (removed.empty()) return;
    for (BrokerId b : removed) p.isr.erase(std::remove(p.isr.begin(), p.isr.end(), b), p.isr.end());
    log(p.leader, "isr", fmt::format("{}-{} isr=[{}] (shrink: [{}] lagging)", p.tp.topic, p.tp.partition,
                                     fmt::join(p.isr, ","), fmt::join(removed, ",")));
    maybe_advance_high_watermark(p);
  });
}

void Cluster::Impl::maybe_advance_high_watermark(Partition& p) {
  if (p.leader == kNoBroker || !alive(p.leader)) return;
  Replica& lr = p.leader_replica();
  int64_t hw = lr.log.log_end_offset();
  for (BrokerId b : p.isr) {
    if (b == p.leader) continue;
    const int64_t fetched = p.replica.at(b).fetched_leo;
    if (fetched < 0) return;  // not heard from since this leader took over: the HW waits (as in Kafka)
    hw = std::min(hw, fetched);
  }
  if (hw <= lr.high_watermark) return;
  lr.high_watermark = hw;
  lr.log.on_high_watermark(hw);
  on_high_watermark_advanced(p);
}

void Cluster::Impl::on_high_watermark_advanced(Partition& p) {
  PartitionPtr keep = p.shared_from_this();  // callbacks below must not destroy it under us
  if (p.internal == InternalKind::kOffsets) {
    GroupShard& shard = group_shards[static_cast<size_t>(p.tp.partition)];
    if (shard.loaded && shard.broker == p.leader) apply_group_batches(shard, p, false);
  } else if (p.internal == InternalKind::kTransactions) {
    TxnShard& shard = txn_shards[static_cast<size_t>(p.tp.partition)];
    if (shard.loaded && shard.broker == p.leader) apply_txn_batches(shard, p, false);
  }
  while (!p.acks_waiters.empty() && p.leader != kNoBroker &&
         p.acks_waiters.front().required_offset <= p.leader_replica().high_watermark) {
    AcksWaiter waiter = std::move(p.acks_waiters.front());
    p.acks_waiters.pop_front();
    const bool enough = static_cast<int32_t>(p.isr.size()) >= p.config->min_insync_replicas;
    waiter.done(enough ? ErrorCode::kNone : ErrorCode::kNotEnoughReplicasAfterAppend);
  }
  wake_fetch_waits(p);
}

Cluster::Impl::LeaderAppend Cluster::Impl::append_as_leader(Partition& p, RecordBatch batch, bool require_min_isr) {
  assert(p.leader != kNoBroker && alive(p.leader) && "append_as_leader: the partition has no live leader");
  if (require_min_isr && static_cast<int32_t>(p.isr.size()) < p.config->min_insync_replicas) {
    return {ErrorCode::kNotEnoughReplicas, -1, -1};
  }
  Replica& lr = p.leader_replica();
  const ProducerCheck check = lr.log.check_producer(batch);
  if (check.error == ErrorCode::kDuplicateSequenceNumber) {
    return {check.error, check.duplicate_base_offset, check.duplicate_last_offset};
  }
  if (check.error != ErrorCode::kNone) return {check.error, -1, -1};
  batch.base_offset = lr.log.log_end_offset();
  batch.partition_leader_epoch = p.leader_epoch;
  batch.append_time_ms = now();
  batch.size_bytes = batch_size_bytes(batch);
  const int64_t base = batch.base_offset;
  const int64_t last = batch.last_offset();
  std::string producer;
  if (batch.producer_id >= 0) {
    producer = fmt::format(" pid={} epoch={} seq={}{}", batch.producer_id, batch.producer_epoch, batch.base_sequence,
                           batch.is_transactional ? " txn" : "");
  }
  const std::string_view control = batch.control == ControlType::kCommit  ? " COMMIT"
                                    : batch.control == ControlType::kAbort ? " ABORT"
                                                                           : "";
  lr.log.append(std::move(batch));
  log(p.leader, "append", fmt::format("{}-{} [{}..{}]{}{}", p.tp.topic, p.tp.partition, base, last, producer, control));
  wake_parked_replica_fetches(p);
  maybe_advance_high_watermark(p);
  return {ErrorCode::kNone, base, last};
}

void Cluster::Impl::await_replication(Partition& p, int64_t required_offset, int64_t timeout_ms, AppendDone done) {
  if (p.leader != kNoBroker && p.leader_replica().high_watermark >= required_offset) {
    const bool enough = static_cast<int32_t>(p.isr.size()) >= p.config->min_insync_replicas;
    done(enough ? ErrorCode::kNone : ErrorCode::kNotEnoughReplicasAfterAppend);
    return;
  }
  struct Once {
    AppendDone done;
    TimerId timer = 0;
    bool fired = false;
  };
  auto once = std::make_shared<Once>();
  once->done = std::move(done);
  p.acks_waiters.push_back({required_offset, [this, once](ErrorCode error) {
                              if (once->fired) return;
                              once->fired = true;
                              executor.cancel(once->timer);
                              once->done(error);
                            }});
  once->timer = schedule(timeout_ms, [once] {
    if (once->fired) return;
    once->fired = true;
    once->done(ErrorCode::kRequestTimedOut);
  });
}

void Cluster::Impl::fail_acks_waiters(Partition& p, ErrorCode error) {
  std::deque<AcksWaiter> waiters;
  waiters.swap(p.acks_waiters);
  for (AcksWaiter& waiter : waiters) waiter.done(error);
}

}  // namespace mephisto::sim
