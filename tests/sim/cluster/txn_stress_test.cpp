// Transactions under randomised coordinator and leader failures, over many seeds. A minimal transactional client
// (retrying as librdkafka does) runs transactions while brokers crash and coordinators move; afterwards:
//   - no transaction hangs: every partition's last stable offset reaches its high watermark;
//   - a read_committed reader, filtering aborted batches the way Kafka clients do, sees every transaction whose
//     commit was acknowledged and none whose abort was acknowledged, each record once.
#include <cstdio>
#include <map>
#include <set>

#include "cluster_fixture.h"
#include "runtime/seam/random.h"

namespace mephisto::sim::testing {
namespace {

class TxnStressTest : public ClusterFixture, public ::testing::WithParamInterface<uint64_t> {
 protected:
  // One request with a client-side timeout; nullopt if unanswered (dead broker, crash while waiting).
  std::optional<Response> rpc(BrokerId to, Request request, int64_t timeout_ms = 3000) {
    if (to == kNoBroker || !cluster().broker_alive(to)) {
      run_for(100);
      return std::nullopt;
    }
    auto pending = send(to, std::move(request));
    executor().run_until([&] { return pending->done(); }, now() + timeout_ms);
    return pending->response;
  }

  BrokerId txn_coordinator(const std::string& id) {
    auto r = rpc(any_live_broker(), FindCoordinatorRequest{id, CoordinatorType::kTransaction});
    if (!r || std::get<FindCoordinatorResponse>(*r).error != ErrorCode::kNone) return kNoBroker;
    return std::get<FindCoordinatorResponse>(*r).node_id;
  }

  // Reads a partition with read_committed and filters aborted transactions like a Kafka client.
  std::vector<std::string> read_committed(const TopicPartition& tp) {
    std::vector<std::string> out;
    int64_t position = 0;
    std::set<int64_t> aborting;  // producers whose aborted transaction we are inside
    for (int round = 0; round < 1000; ++round) {
      const auto data = fetch(tp, position, IsolationLevel::kReadCommitted);
      EXPECT_EQ(data.error, ErrorCode::kNone);
      if (data.batches.empty()) break;
      std::vector<AbortedTransaction> aborted = data.aborted_transactions;
      std::sort(aborted.begin(), aborted.end(),
                [](const auto& a, const auto& b) { return a.first_offset < b.first_offset; });
      size_t next_aborted = 0;
      for (const auto& batch : data.batches) {
        while (next_aborted < aborted.size() && aborted[next_aborted].first_offset <= batch.last_offset()) {
          aborting.insert(aborted[next_aborted++].producer_id);
        }
        if (batch.is_control()) {
          if (batch.control == ControlType::kAbort) aborting.erase(batch.producer_id);
        } else if (!(batch.is_transactional && aborting.count(batch.producer_id))) {
          for (const auto& r : *batch.records) {
            if (batch.base_offset + r.offset_delta >= position) out.push_back(r.value.value_or(""));
          }
        }
        position = batch.next_offset();
      }
    }
    return out;
  }
};

TEST_P(TxnStressTest, TransactionsCompleteAndReadCommittedSeesExactlyTheCommitted) {
  const uint64_t seed = GetParam();
  start(default_config(), seed);
  ASSERT_EQ(create_topic("t", 2, 3, {{"min.insync.replicas", "2"}}), ErrorCode::kNone);
  Random rng(seed * 104729);
  const std::string id = "tx";

  int64_t pid = -1;
  int16_t epoch = -1;
  std::map<TopicPartition, int32_t> sequence;
  std::set<std::string> committed;  // values of transactions whose commit was acknowledged
  std::set<std::string> aborted;    // values of transactions whose abort was acknowledged
  int transactions = 0;
  int fenced = 0;

  const auto maybe_fault = [&] {
    const uint64_t dice = rng.below(100);
    if (dice < 4) {
      const auto b = static_cast<BrokerId>(1 + rng.below(3));
      if (cluster().broker_alive(b)) {
        cluster().crash_broker(b);
      } else {
        cluster().restart_broker(b);
      }
    } else if (dice < 7) {
      (void)cluster().move_coordinator(CoordinatorType::kTransaction, id);
    } else if (dice < 9) {
      for (BrokerId b : cluster().broker_ids()) cluster().restart_broker(b);
    }
  };
  // Retries `attempt` until it reports done (true) or the budget runs out. With two brokers down the internal
  // topics lose min.insync.replicas and nothing transactional can progress (as in Kafka): after a while the
  // "operator" restarts everything.
  const auto retry = [&](const std::function<bool()>& attempt) {
    for (int i = 0; i < 200; ++i) {
      if (attempt()) return true;
      if (i == 40) {
        for (BrokerId b : cluster().broker_ids()) cluster().restart_broker(b);
      }
      run_for(50);
    }
    return false;
  };

  for (int txn = 0; txn < 40; ++txn) {
    maybe_fault();
    if (pid < 0) {
      const bool ok = retry([&] {
        InitProducerIdRequest req;
        req.transactional_id = id;
        req.transaction_timeout_ms = 10000;
        auto r = rpc(txn_coordinator(id), req);
        if (!r || std::get<InitProducerIdResponse>(*r).error != ErrorCode::kNone) return false;
        pid = std::get<InitProducerIdResponse>(*r).producer_id;
        epoch = std::get<InitProducerIdResponse>(*r).producer_epoch;
        sequence.clear();
        return true;
      });
      ASSERT_TRUE(ok) << "seed " << seed << ": InitProducerId never succeeded";
    }
    const TopicPartition tp{"t", static_cast<int32_t>(rng.below(2))};
    bool abandon = false;
    ErrorCode add_error = ErrorCode::kNone;
    retry([&] {
      auto r = rpc(txn_coordinator(id), AddPartitionsToTxnRequest{id, pid, epoch, {tp}});
      if (!r) return false;
      add_error = std::get<AddPartitionsToTxnResponse>(*r).partitions[0].error;
      if (add_error == ErrorCode::kNone) return true;
      if (add_error == ErrorCode::kProducerFenced || add_error == ErrorCode::kInvalidProducerIdMapping) {
        abandon = true;
        return true;
      }
      return false;  // NOT_COORDINATOR, COORDINATOR_NOT_AVAILABLE, CONCURRENT_TRANSACTIONS
    });
    if (abandon || add_error != ErrorCode::kNone) {
      pid = -1;  // fenced (e.g. the coordinator timed us out): start over with a new epoch
      ++fenced;
      continue;
    }
    maybe_fault();
    const std::string value = "s" + std::to_string(seed) + "-txn" + std::to_string(txn);
    const int32_t seq = sequence[tp];
    bool produced = false;
    retry([&] {
      RecordBatch b = batch_of({value});
      b.producer_id = pid;
      b.producer_epoch = epoch;
      b.base_sequence = seq;
      b.is_transactional = true;
      ProduceRequest req = produce_request(tp, std::move(b), -1, 2000);
      req.transactional_id = id;
      auto r = rpc(state(tp).leader, req);
      if (!r) return false;
      const ErrorCode e = std::get<ProduceResponse>(*r).partitions[0].error;
      if (e == ErrorCode::kNone || e == ErrorCode::kDuplicateSequenceNumber) {
        produced = true;
        return true;
      }
      if (e == ErrorCode::kInvalidProducerEpoch || e == ErrorCode::kOutOfOrderSequenceNumber ||
          e == ErrorCode::kInvalidTxnState) {
        return true;  // fatal for this transaction
      }
      return false;  // leader moves, timeouts, not enough replicas: resend the same sequence
    });
    if (produced) sequence[tp] = seq + 1;
    maybe_fault();
    // Now and then the producer stalls past its transaction timeout: the coordinator aborts and fences it.
    if (rng.below(10) == 0) run_for(12000);
    const bool commit = produced && rng.below(3) != 0;
    ErrorCode end_error = ErrorCode::kRequestTimedOut;
    retry([&] {
      auto r = rpc(txn_coordinator(id), EndTxnRequest{id, pid, epoch, commit});
      if (!r) return false;
      end_error = std::get<EndTxnResponse>(*r).error;
      return end_error != ErrorCode::kNotCoordinator && end_error != ErrorCode::kCoordinatorNotAvailable &&
             end_error != ErrorCode::kConcurrentTransactions;
    });
    ++transactions;
    if (end_error == ErrorCode::kNone) {
      if (produced) (commit ? committed : aborted).insert(value);
    } else {
      pid = -1;  // outcome unknown to us (fenced or never answered): re-initialise
      ++fenced;
    }
  }

  // Heal and let the coordinators finish every pending transaction.
  for (BrokerId b : cluster().broker_ids()) cluster().restart_broker(b);
  run_for(30000);
  std::printf("seed %llu: %d transactions, %zu committed, %zu aborted, %d restarts of the producer\n",
              static_cast<unsigned long long>(seed), transactions, committed.size(), aborted.size(), fenced);

  std::multiset<std::string> visible;
  for (int32_t p = 0; p < 2; ++p) {
    const TopicPartition tp{"t", p};
    const auto s = state(tp);
    EXPECT_EQ(s.last_stable_offset, s.high_watermark) << "seed " << seed << ": a transaction hangs on " << p;
    for (auto& v : read_committed(tp)) visible.insert(std::move(v));
  }
  for (const auto& v : committed) EXPECT_EQ(visible.count(v), 1u) << "seed " << seed << ": committed " << v;
  for (const auto& v : aborted) EXPECT_EQ(visible.count(v), 0u) << "seed " << seed << ": aborted " << v << " seen";
  for (const auto& v : visible) EXPECT_EQ(visible.count(v), 1u) << "seed " << seed << ": " << v << " twice";
}

INSTANTIATE_TEST_SUITE_P(Seeds, TxnStressTest, ::testing::Range<uint64_t>(1, 21));

}  // namespace
}  // namespace mephisto::sim::testing
