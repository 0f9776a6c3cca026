// Idempotent producers and transactions (KIP-98, KIP-447 offsets, KIP-890 partition verification), driven
// through the cluster's request API.
#include "cluster_fixture.h"

namespace mephisto::sim::testing {
namespace {

class ProducerTest : public ClusterFixture {
 protected:
  struct Producer {
    std::string transactional_id;
    int64_t producer_id = -1;
    int16_t epoch = -1;
    std::map<TopicPartition, int32_t> next_sequence;
  };

  // InitProducerId, retrying while the coordinator completes an earlier transaction.
  InitProducerIdResponse init(const std::string& transactional_id, int32_t timeout_ms = 60000) {
    for (int attempt = 0; attempt < 100; ++attempt) {
      InitProducerIdRequest req;
      req.transactional_id = transactional_id;
      req.transaction_timeout_ms = timeout_ms;
      auto r = call<InitProducerIdResponse>(coordinator(CoordinatorType::kTransaction, transactional_id), req);
      if (r.error != ErrorCode::kConcurrentTransactions) return r;
      run_for(50);
    }
    return InitProducerIdResponse{ErrorCode::kConcurrentTransactions, -1, -1};
  }

  Producer transactional(const std::string& id, int32_t timeout_ms = 60000) {
    const auto r = init(id, timeout_ms);
    EXPECT_EQ(r.error, ErrorCode::kNone);
    return Producer{id, r.producer_id, r.producer_epoch, {}};
  }

  ErrorCode add_partitions(Producer& p, std::vector<TopicPartition> tps) {
    AddPartitionsToTxnRequest req{p.transactional_id, p.producer_id, p.epoch, std::move(tps)};
    return call<AddPartitionsToTxnResponse>(coordinator(CoordinatorType::kTransaction, p.transactional_id), req)
        .partitions.at(0)
        .error;
  }

  ProduceResponse::PartitionResult send_txn(Producer& p, const TopicPartition& tp, std::vector<std::string> values) {
    RecordBatch b = batch_of(values);
    b.producer_id = p.producer_id;
    b.producer_epoch = p.epoch;
    b.base_sequence = p.next_sequence[tp];
    b.is_transactional = true;
    ProduceRequest req = produce_request(tp, std::move(b));
    req.transactional_id = p.transactional_id;
    auto r = call<ProduceResponse>(leader(tp), req).partitions.at(0);
    if (r.error == ErrorCode::kNone) p.next_sequence[tp] += static_cast<int32_t>(values.size());
    return r;
  }

  ErrorCode end_txn(Producer& p, bool commit) {
    return call<EndTxnResponse>(coordinator(CoordinatorType::kTransaction, p.transactional_id),
                                EndTxnRequest{p.transactional_id, p.producer_id, p.epoch, commit})
        .error;
  }

  RecordBatch idempotent(int64_t pid, int16_t epoch, int32_t seq, std::vector<std::string> values) {
    RecordBatch b = batch_of(values);
    b.producer_id = pid;
    b.producer_epoch = epoch;
    b.base_sequence = seq;
    return b;
  }

  // Joins `group` as a single member and completes the rebalance; returns {member id, generation}.
  std::pair<std::string, int32_t> join_alone(const std::string& group) {
    const BrokerId c = coordinator(CoordinatorType::kGroup, group);
    JoinGroupRequest join;
    join.group_id = group;
    join.session_timeout_ms = 10000;
    join.rebalance_timeout_ms = 10000;
    join.protocols.push_back({"range", Subscription{{"in"}, {}, -1, ""}});
    auto j = call<JoinGroupResponse>(c, join, "consumer");
    EXPECT_EQ(j.error, ErrorCode::kNone);
    SyncGroupRequest sync;
    sync.group_id = group;
    sync.generation_id = j.generation_id;
    sync.member_id = j.member_id;
    sync.protocol_name = j.protocol_name;
    sync.assignments.push_back({j.member_id, Assignment{{{"in", 0}}, ""}});
    EXPECT_EQ(call<SyncGroupResponse>(c, sync).error, ErrorCode::kNone);
    return {j.member_id, j.generation_id};
  }
};

TEST_F(ProducerTest, IdempotentProducerDedupsRejectsGapsAndFencesOldEpochs) {
  start();
  ASSERT_EQ(create_topic("t", 1, 3), ErrorCode::kNone);
  const TopicPartition tp{"t", 0};
  auto id = call<InitProducerIdResponse>(2, InitProducerIdRequest{});
  ASSERT_EQ(id.error, ErrorCode::kNone);
  const int64_t pid = id.producer_id;
  EXPECT_EQ(id.producer_epoch, 0);
  EXPECT_EQ(produce(tp, idempotent(pid, 0, 0, {"a", "b"})).base_offset, 0);
  EXPECT_EQ(produce(tp, idempotent(pid, 0, 2, {"c"})).base_offset, 2);
  // A retry of the first batch: a duplicate, answered with its original offset and not written again.
  const auto dup = produce(tp, idempotent(pid, 0, 0, {"a", "b"}));
  EXPECT_EQ(dup.error, ErrorCode::kDuplicateSequenceNumber);
  EXPECT_EQ(dup.base_offset, 0);
  EXPECT_EQ(produce(tp, idempotent(pid, 0, 5, {"gap"})).error, ErrorCode::kOutOfOrderSequenceNumber);
  EXPECT_EQ(values(fetch(tp, 0).batches), (std::vector<std::string>{"a", "b", "c"}));
  // KIP-360 bump: a new epoch restarts sequences; the old epoch is fenced.
  InitProducerIdRequest bump;
  bump.producer_id = pid;
  bump.producer_epoch = 0;
  auto bumped = call<InitProducerIdResponse>(1, bump);
  EXPECT_EQ(bumped.producer_id, pid);
  EXPECT_EQ(bumped.producer_epoch, 1);
  EXPECT_EQ(produce(tp, idempotent(pid, 1, 0, {"d"})).error, ErrorCode::kNone);
  EXPECT_EQ(produce(tp, idempotent(pid, 0, 3, {"zombie"})).error, ErrorCode::kInvalidProducerEpoch);
  // Producer state is replicated: after failover the new leader still dedups.
  cluster().crash_broker(leader(tp));
  run_for(100);
  const auto dup2 = produce(tp, idempotent(pid, 1, 0, {"d"}));
  EXPECT_EQ(dup2.error, ErrorCode::kDuplicateSequenceNumber);
  EXPECT_EQ(dup2.base_offset, 3);
}

TEST_F(ProducerTest, CommittedTransactionBecomesVisibleAtTheMarker) {
  start();
  ASSERT_EQ(create_topic("t", 1, 3), ErrorCode::kNone);
  const TopicPartition tp{"t", 0};
  ASSERT_EQ(produce(tp, batch_of({"before"})).error, ErrorCode::kNone);
  Producer p = transactional("tx");
  ASSERT_EQ(add_partitions(p, {tp}), ErrorCode::kNone);
  ASSERT_EQ(send_txn(p, tp, {"t1", "t2"}).error, ErrorCode::kNone);
  // The open transaction holds the last stable offset at its first record.
  auto committed = fetch(tp, 0, IsolationLevel::kReadCommitted);
  EXPECT_EQ(committed.last_stable_offset, 1);
  EXPECT_EQ(committed.high_watermark, 3);
  EXPECT_EQ(values(committed.batches), std::vector<std::string>{"before"});
  EXPECT_EQ(values(fetch(tp, 0).batches), (std::vector<std::string>{"before", "t1", "t2"}));
  ASSERT_EQ(end_txn(p, true), ErrorCode::kNone);
  run_for(200);  // markers are written after EndTxn is answered
  committed = fetch(tp, 0, IsolationLevel::kReadCommitted);
  EXPECT_EQ(committed.last_stable_offset, 4);  // the marker took offset 3
  EXPECT_EQ(values(committed.batches), (std::vector<std::string>{"before", "t1", "t2"}));
  ASSERT_EQ(committed.batches.back().control, ControlType::kCommit);
  EXPECT_TRUE(committed.aborted_transactions.empty());
  // A retried EndTxn(commit) is answered with success; abort is now invalid.
  EXPECT_EQ(end_txn(p, true), ErrorCode::kNone);
  EXPECT_EQ(end_txn(p, false), ErrorCode::kInvalidTxnState);
}

TEST_F(ProducerTest, AbortedTransactionIsReportedForClientFiltering) {
  start();
  ASSERT_EQ(create_topic("t", 1, 3), ErrorCode::kNone);
  const TopicPartition tp{"t", 0};
  Producer p = transactional("tx");
  ASSERT_EQ(add_partitions(p, {tp}), ErrorCode::kNone);
  ASSERT_EQ(send_txn(p, tp, {"x", "y"}).error, ErrorCode::kNone);
  ASSERT_EQ(end_txn(p, false), ErrorCode::kNone);
  run_for(200);
  ASSERT_EQ(produce(tp, batch_of({"after"})).error, ErrorCode::kNone);
  auto committed = fetch(tp, 0, IsolationLevel::kReadCommitted);
  EXPECT_EQ(committed.last_stable_offset, 4);
  ASSERT_EQ(committed.aborted_transactions.size(), 1u);
  EXPECT_EQ(committed.aborted_transactions[0].producer_id, p.producer_id);
  EXPECT_EQ(committed.aborted_transactions[0].first_offset, 0);
  // The records are returned; the client drops them using the aborted list and the ABORT marker at offset 2.
  ASSERT_EQ(committed.batches.size(), 3u);
  EXPECT_EQ(committed.batches[1].control, ControlType::kAbort);
  EXPECT_EQ(committed.batches[1].base_offset, 2);
  // read_uncommitted gets no aborted list.
  EXPECT_TRUE(fetch(tp, 0).aborted_transactions.empty());
}

TEST_F(ProducerTest, TransactionalWriteToAPartitionNotAddedIsRejected) {
  start();
  ASSERT_EQ(create_topic("t", 2, 3), ErrorCode::kNone);
  Producer p = transactional("tx");
  ASSERT_EQ(add_partitions(p, {{"t", 0}}), ErrorCode::kNone);
  EXPECT_EQ(send_txn(p, {"t", 1}, {"x"}).error, ErrorCode::kInvalidTxnState);
  EXPECT_EQ(send_txn(p, {"t", 0}, {"x"}).error, ErrorCode::kNone);
  AddPartitionsToTxnRequest bad{"tx", p.producer_id, p.epoch, {{"t", 1}, {"nope", 0}}};
  auto r = call<AddPartitionsToTxnResponse>(coordinator(CoordinatorType::kTransaction, "tx"), bad);
  EXPECT_EQ(r.partitions[1].error, ErrorCode::kUnknownTopicOrPartition);
  // Requests for transactional ids the broker does not coordinate.
  const BrokerId c = coordinator(CoordinatorType::kTransaction, "tx");
  EXPECT_EQ(call<EndTxnResponse>(other_than(c), EndTxnRequest{"tx", p.producer_id, p.epoch, true}).error,
            ErrorCode::kNotCoordinator);
  EXPECT_EQ(call<EndTxnResponse>(c, EndTxnRequest{"tx", p.producer_id + 1, p.epoch, true}).error,
            ErrorCode::kInvalidProducerIdMapping);
}

TEST_F(ProducerTest, InitProducerIdFencesTheZombieAndAbortsItsTransaction) {
  start();
  ASSERT_EQ(create_topic("t", 1, 3), ErrorCode::kNone);
  const TopicPartition tp{"t", 0};
  Producer zombie = transactional("tx");
  ASSERT_EQ(add_partitions(zombie, {tp}), ErrorCode::kNone);
  ASSERT_EQ(send_txn(zombie, tp, {"zombie-data"}).error, ErrorCode::kNone);
  // A new instance with the same transactional id.
  Producer fresh = transactional("tx");
  EXPECT_EQ(fresh.producer_id, zombie.producer_id);
  EXPECT_EQ(fresh.epoch, zombie.epoch + 2) << "one bump to abort the open transaction, one for the new instance";
  EXPECT_EQ(add_partitions(zombie, {tp}), ErrorCode::kProducerFenced);
  EXPECT_EQ(end_txn(zombie, true), ErrorCode::kProducerFenced);
  EXPECT_EQ(send_txn(zombie, tp, {"late"}).error, ErrorCode::kInvalidProducerEpoch);
  auto committed = fetch(tp, 0, IsolationLevel::kReadCommitted);
  ASSERT_EQ(committed.aborted_transactions.size(), 1u);
  EXPECT_EQ(committed.last_stable_offset, 2);
  // The new instance works.
  ASSERT_EQ(add_partitions(fresh, {tp}), ErrorCode::kNone);
  ASSERT_EQ(send_txn(fresh, tp, {"fresh-data"}).error, ErrorCode::kNone);
  ASSERT_EQ(end_txn(fresh, true), ErrorCode::kNone);
}

TEST_F(ProducerTest, CoordinatorAbortsATimedOutTransactionAndFencesTheProducer) {
  start();
  ASSERT_EQ(create_topic("t", 1, 3), ErrorCode::kNone);
  const TopicPartition tp{"t", 0};
  Producer p = transactional("slow", 1000);
  ASSERT_EQ(add_partitions(p, {tp}), ErrorCode::kNone);
  ASSERT_EQ(send_txn(p, tp, {"stuck"}).error, ErrorCode::kNone);
  EXPECT_EQ(fetch(tp, 0, IsolationLevel::kReadCommitted).last_stable_offset, 0);
  run_for(1500);
  auto committed = fetch(tp, 0, IsolationLevel::kReadCommitted);
  EXPECT_EQ(committed.last_stable_offset, 2) << "the coordinator's abort marker released the LSO";
  EXPECT_EQ(committed.aborted_transactions.size(), 1u);
  EXPECT_EQ(end_txn(p, true), ErrorCode::kProducerFenced);
  EXPECT_EQ(send_txn(p, tp, {"more"}).error, ErrorCode::kInvalidProducerEpoch);
  bool logged = false;
  for (const auto& e : event_log().events()) logged = logged || e.kind == "txn-timeout";
  EXPECT_TRUE(logged);
}

TEST_F(ProducerTest, InvalidTransactionTimeout) {
  ClusterConfig config = default_config();
  config.transaction_max_timeout_ms = 5000;
  start(config);
  InitProducerIdRequest req;
  req.transactional_id = "tx";
  req.transaction_timeout_ms = 6000;
  EXPECT_EQ(call<InitProducerIdResponse>(coordinator(CoordinatorType::kTransaction, "tx"), req).error,
            ErrorCode::kInvalidTransactionTimeout);
}

TEST_F(ProducerTest, TxnOffsetCommitIsFencedByGenerationAndStableOnlyAfterCommit) {
  start();
  ASSERT_EQ(create_topic("t", 1, 3), ErrorCode::kNone);
  ASSERT_EQ(create_topic("in", 1, 3), ErrorCode::kNone);
  const TopicPartition tp{"t", 0};
  const auto [member, generation] = join_alone("g");
  Producer p = transactional("tx");
  ASSERT_EQ(add_partitions(p, {tp}), ErrorCode::kNone);
  ASSERT_EQ(call<AddOffsetsToTxnResponse>(coordinator(CoordinatorType::kTransaction, "tx"),
                                          AddOffsetsToTxnRequest{"tx", p.producer_id, p.epoch, "g"})
                .error,
            ErrorCode::kNone);
  ASSERT_EQ(send_txn(p, tp, {"out"}).error, ErrorCode::kNone);
  const BrokerId gc = coordinator(CoordinatorType::kGroup, "g");
  TxnOffsetCommitRequest commit;
  commit.transactional_id = "tx";
  commit.group_id = "g";
  commit.producer_id = p.producer_id;
  commit.producer_epoch = p.epoch;
  commit.member_id = member;
  commit.generation_id = generation - 1;  // a zombie from an older generation
  commit.offsets.push_back({{"in", 0}, 42, -1, ""});
  EXPECT_EQ(call<TxnOffsetCommitResponse>(gc, commit).partitions[0].error, ErrorCode::kIllegalGeneration);
  commit.generation_id = generation;
  commit.member_id = "stranger";
  EXPECT_EQ(call<TxnOffsetCommitResponse>(gc, commit).partitions[0].error, ErrorCode::kUnknownMemberId);
  commit.member_id = member;
  EXPECT_EQ(call<TxnOffsetCommitResponse>(gc, commit).partitions[0].error, ErrorCode::kNone);

  OffsetFetchRequest stable;
  stable.group_id = "g";
  stable.partitions = std::vector<TopicPartition>{{"in", 0}};
  stable.require_stable = true;
  EXPECT_EQ(call<OffsetFetchResponse>(gc, stable).partitions[0].error, ErrorCode::kUnstableOffsetCommit);
  OffsetFetchRequest relaxed = stable;
  relaxed.require_stable = false;
  EXPECT_EQ(call<OffsetFetchResponse>(gc, relaxed).partitions[0].offset, -1) << "not committed yet";

  ASSERT_EQ(end_txn(p, true), ErrorCode::kNone);
  run_for(200);
  auto fetched = call<OffsetFetchResponse>(gc, stable);
  EXPECT_EQ(fetched.partitions[0].error, ErrorCode::kNone);
  EXPECT_EQ(fetched.partitions[0].offset, 42);
}

TEST_F(ProducerTest, AbortedTxnOffsetCommitIsDropped) {
  start();
  ASSERT_EQ(create_topic("in", 1, 3), ErrorCode::kNone);
  Producer p = transactional("tx");
  ASSERT_EQ(call<AddOffsetsToTxnResponse>(coordinator(CoordinatorType::kTransaction, "tx"),
                                          AddOffsetsToTxnRequest{"tx", p.producer_id, p.epoch, "g"})
                .error,
            ErrorCode::kNone);
  const BrokerId gc = coordinator(CoordinatorType::kGroup, "g");
  TxnOffsetCommitRequest commit;
  commit.transactional_id = "tx";
  commit.group_id = "g";
  commit.producer_id = p.producer_id;
  commit.producer_epoch = p.epoch;
  commit.offsets.push_back({{"in", 0}, 7, -1, ""});
  ASSERT_EQ(call<TxnOffsetCommitResponse>(gc, commit).partitions[0].error, ErrorCode::kNone);
  ASSERT_EQ(end_txn(p, false), ErrorCode::kNone);
  run_for(200);
  OffsetFetchRequest req;
  req.group_id = "g";
  req.partitions = std::vector<TopicPartition>{{"in", 0}};
  req.require_stable = true;
  auto r = call<OffsetFetchResponse>(gc, req);
  EXPECT_EQ(r.partitions[0].error, ErrorCode::kNone);
  EXPECT_EQ(r.partitions[0].offset, -1);
  // Without AddOffsetsToTxn the commit is refused (the group's partition is not in the transaction).
  Producer q = transactional("tx2");
  commit.transactional_id = "tx2";
  commit.producer_id = q.producer_id;
  commit.producer_epoch = q.epoch;
  EXPECT_EQ(call<TxnOffsetCommitResponse>(gc, commit).partitions[0].error, ErrorCode::kInvalidTxnState);
}

TEST_F(ProducerTest, TransactionStateSurvivesCoordinatorFailover) {
  start();
  ASSERT_EQ(create_topic("t", 1, 3), ErrorCode::kNone);
  const TopicPartition tp{"t", 0};
  Producer p = transactional("tx");
  ASSERT_EQ(add_partitions(p, {tp}), ErrorCode::kNone);
  ASSERT_EQ(send_txn(p, tp, {"a"}).error, ErrorCode::kNone);
  const BrokerId old_coordinator = coordinator(CoordinatorType::kTransaction, "tx");
  if (leader(tp) == old_coordinator) {
    ASSERT_TRUE(cluster().move_leader(tp).ok());
  }
  cluster().crash_broker(old_coordinator);
  const BrokerId new_coordinator = coordinator(CoordinatorType::kTransaction, "tx");
  EXPECT_NE(new_coordinator, old_coordinator);
  // The new coordinator knows the ongoing transaction and completes it.
  EXPECT_EQ(end_txn(p, true), ErrorCode::kNone);
  run_for(300);
  auto committed = fetch(tp, 0, IsolationLevel::kReadCommitted);
  EXPECT_EQ(values(committed.batches), std::vector<std::string>{"a"});
  EXPECT_EQ(committed.last_stable_offset, 2);
}

TEST_F(ProducerTest, MarkersWaitForAnUnavailablePartitionThenLand) {
  start();
  ASSERT_EQ(create_topic("t", 1, 1), ErrorCode::kNone);
  const TopicPartition tp{"t", 0};
  Producer p = transactional("tx");
  ASSERT_EQ(add_partitions(p, {tp}), ErrorCode::kNone);
  ASSERT_EQ(send_txn(p, tp, {"a"}).error, ErrorCode::kNone);
  const BrokerId only = leader(tp);
  if (coordinator(CoordinatorType::kTransaction, "tx") == only) {
    ASSERT_TRUE(cluster().move_coordinator(CoordinatorType::kTransaction, "tx").ok());
  }
  cluster().crash_broker(only);
  ASSERT_EQ(end_txn(p, true), ErrorCode::kNone);
  run_for(1000);
  // The transaction cannot complete while its partition is offline: a new InitProducerId must wait.
  InitProducerIdRequest again;
  again.transactional_id = "tx";
  EXPECT_EQ(call<InitProducerIdResponse>(coordinator(CoordinatorType::kTransaction, "tx"), again).error,
            ErrorCode::kConcurrentTransactions);
  cluster().restart_broker(only);
  run_for(500);
  auto committed = fetch(tp, 0, IsolationLevel::kReadCommitted);
  EXPECT_EQ(values(committed.batches), std::vector<std::string>{"a"});
  EXPECT_EQ(committed.last_stable_offset, 2);
  EXPECT_EQ(call<InitProducerIdResponse>(coordinator(CoordinatorType::kTransaction, "tx"), again).error,
            ErrorCode::kNone);
}

}  // namespace
}  // namespace mephisto::sim::testing
