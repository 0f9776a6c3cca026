#include "fraudwatch.h"

#include <map>
#include <string>

namespace fraudwatch {
namespace {

constexpr int64_t kLargeCents = 1'000'000;
constexpr int64_t kAverageFactor = 5;
constexpr int64_t kPaymentsBeforeAverage = 3;
constexpr int32_t kPartitions = 4;

// The workload `fraudwatch sim` writes to `payments`: accounts drawn by the seed, mostly small amounts with
// an occasional large one, so both rules fire. Deterministic in its arguments, as ScenarioSupport requires.
mephisto::WorkloadRecord payment_for(int64_t index, const mephisto::WorkloadShape& shape, uint64_t seed) {
  Payment payment;
  payment.set_id("p" + std::to_string(index));
  const bool large = (seed >> 40) % 20 == 0;
  payment.set_amount_cents(large ? 50'000 + static_cast<int64_t>((seed >> 8) % 2'000'000)
                                 : 100 + static_cast<int64_t>((seed >> 8) % 20'000));
  payment.set_merchant("m" + std::to_string((seed >> 24) % 50));
  const auto account = static_cast<int64_t>(seed % static_cast<uint64_t>(shape.keys));
  // Encoded as the topic decodes it: a protobuf value's default codec is protobuf's JSON (as Faust's json).
  return {"acct-" + std::to_string(account), mephisto::ProtobufJsonCodec<Payment>{}.encode(payment)};
}

mephisto::ScenarioSupport scenario_support() {
  mephisto::ScenarioSupport support;
  support.input_topic = kPaymentsTopic;
  support.output_topic = kVerdictsTopic;
  support.record = payment_for;
  // No model: the differential oracle checks verdicts and the table against fault-free runs of this app.
  return support;
}

mephisto::AppSettings default_settings(const std::string& id) {
  mephisto::AppSettings settings;
  settings.id = id;
  settings.processing_guarantee = mephisto::ProcessingGuarantee::kExactlyOnce;
  return settings;
}

}  // namespace

Decision decide(const AccountState& before, const Payment& payment) {
  Decision decision;
  AccountState& after = decision.after;
  after = before;
  Verdict& verdict = decision.verdict;
  verdict.set_payment_id(payment.id());
  const int64_t amount = payment.amount_cents();
  if (amount > kLargeCents) {
    verdict.set_reason("over " + std::to_string(kLargeCents) + " cents");
  } else if (before.payments() >= kPaymentsBeforeAverage &&
             amount * before.payments() > kAverageFactor * before.total_cents()) {
    verdict.set_reason("over " + std::to_string(kAverageFactor) + "x the account's average");
  }
  verdict.set_flagged(!verdict.reason().empty());
  after.set_total_cents(before.total_cents() + amount);
  after.set_payments(before.payments() + 1);
  after.set_largest_cents(std::max(before.largest_cents(), amount));
  after.set_flagged(before.flagged() + (verdict.flagged() ? 1 : 0));
  verdict.set_total_cents(after.total_cents());
  return decision;
}

mephisto::AppDefinition app(bool planted_cache) {
  mephisto::AppDefinition definition;
  definition.name = planted_cache ? "fraudwatch-cached" : "fraudwatch";
  definition.description = "payments -> each account's state (table accounts) -> one verdict per payment";
  definition.default_settings = [name = definition.name] { return default_settings(name); };
  definition.define = [planted_cache](mephisto::App& app) {
    // The app owns its topics: a worker creates them if missing (4 partitions, the broker's replication).
    mephisto::TopicOptions owned;
    owned.create = true;
    owned.partitions = kPartitions;
    auto payments = app.topic<std::string, Payment>(kPaymentsTopic, owned);
    auto verdicts = app.topic<std::string, Verdict>(kVerdictsTopic, owned);
    auto accounts = app.table<std::string, AccountState>(kAccountsTable, payments);
    app.agent("judge", payments, [=](mephisto::Stream<std::string, Payment>& stream) {
      std::map<std::string, AccountState> cache;  // read only when planted_cache: the bug
      for (auto& event : stream) {
        const std::string& account = event.key();
        const AccountState before = planted_cache ? cache[account] : accounts.get(account);
        const Decision decision = decide(before, event.value());
        if (planted_cache) cache[account] = decision.after;
        accounts.set(account, decision.after);
        (void)verdicts.send(account, decision.verdict);  // a failed send stops the worker, event unacked
      }
    });
  };
  definition.scenario = scenario_support();
  return definition;
}

}  // namespace fraudwatch
