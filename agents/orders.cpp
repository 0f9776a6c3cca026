// "orders": an order processor that asks a bank-account agent, Faust's agent.ask() pattern.
//
//   orders (Order json, key: account) --process_orders--ask--> withdraw ({id}-withdraw, key: account)
//                                           |                      | balance per account, reply via yield()
//                                           v                      v
//                         order-results (WithdrawalResult json, key: order_id)
//
// `withdraw` owns the balances: every Withdrawal of an account goes to the one partition (and actor) that
// owns the account, which applies it only if the balance stays >= 0 and replies with the outcome and the new
// balance. The reply's correlation_id is the order_id, and `withdraw` remembers the answer it gave per
// correlation id, so a request that comes again (an ask retried after a timeout, a redelivered order) gets
// the same answer and is not applied twice. An account's balance and answers live in one value of table
// `accounts` (AccountState), partitioned like withdraw's topic: they move with the account's partition,
// survive rebalances and restarts (a request redelivered after a crash finds its answer there), and change
// together in one write.
//
// ask() waits for a reply, which a transaction would hide until it commits: the app runs at least once (and
// is idempotent per order, so a replayed order gives the same result again).
#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>

#include "agents/examples.h"
#include "models/examples.pb.h"
#include "runtime/seam/random.h"

namespace mephisto::examples {

namespace {

// ask() attempts per order before process_orders gives up on an answer. Retrying is safe: withdraw answers a
// repeated correlation id from memory.
constexpr int kAskAttempts = 5;

WithdrawalResult refused(const std::string& reason, int64_t balance_cents,
                         const std::string& correlation_id) {
  WithdrawalResult result;
  result.set_accepted(false);
  result.set_reason(reason);
  result.set_balance_cents(balance_cents);
  result.set_correlation_id(correlation_id);
  return result;
}

// Accounts the workload spreads its orders over, and the largest amount: with kInitialBalanceCents each, an
// account runs dry after a few dozen orders, so some withdrawals are refused and the results depend on the
// order in which an account's withdrawals are applied.
constexpr int64_t kMaxAmountCents = 1'500;

// orders' scenario support: order "o<index>" of an account "a<j>" (the key, so an account's orders stay in
// order on one partition) for 1..kMaxAmountCents cents. No model: the differential oracle holds the results
// and balances to a fault-free run's.
ScenarioSupport orders_scenario(const std::string& prefix) {
  ScenarioSupport support;
  support.input_topic = prefix + std::string(kOrdersTopic);
  support.output_topic = prefix + std::string(kOrderResultsTopic);
  support.record = [](int64_t index, const WorkloadShape& shape, uint64_t record_seed) {
    Random random(record_seed);
    Order order;
    order.set_order_id("o" + std::to_string(index));
    order.set_account("a" + std::to_string(random.below(static_cast<uint64_t>(std::max(1, shape.keys)))));
    order.set_amount_cents(random.between(1, kMaxAmountCents));
    return WorkloadRecord{order.account(), ProtobufJsonCodec<Order>{}.encode(order)};
  };
  support.input_id = [](std::string_view value) -> std::string {
    auto order = ProtobufJsonCodec<Order>{}.decode(value);
    return order.ok() ? order->order_id() : std::string(value);
  };
  return support;
}

}  // namespace

AppDefinition orders_app(const std::string& prefix) {
  AppDefinition definition;
  definition.name = "orders";
  definition.description =
      "orders: process_orders asks withdraw (balance per account) and sends one result per order";
  definition.default_settings = [prefix] {
    AppSettings settings;
    settings.id = prefix + "orders";
    return settings;
  };
  definition.define = [prefix](App& app) {
    auto orders = app.topic<std::string, Order>(prefix + std::string(kOrdersTopic), create_if_missing());
    auto results = app.topic<std::string, WithdrawalResult>(prefix + std::string(kOrderResultsTopic),
                                                            create_if_missing());

    auto requests = app.agent_topic<std::string, Withdrawal>("withdraw");
    TableOptions<AccountState> account_options;
    account_options.default_value.set_balance_cents(kInitialBalanceCents);
    account_options.help = "balance per account and the answer given per request";
    auto accounts = app.table<std::string, AccountState>("accounts", requests, account_options);

    AgentOptions<WithdrawalResult> withdraw_options;
    withdraw_options.description = "applies withdrawals to per-account balances (never below 0) and replies";
    auto withdraw = app.agent<WithdrawalResult>(
        "withdraw", requests,
        [accounts](Stream<std::string, Withdrawal>& stream, Output<WithdrawalResult>& output) {
          for (auto& event : stream) {
            const Withdrawal& request = event.value();
            AccountState account = accounts.get(request.account());
            if (auto seen = account.answered().find(request.correlation_id());
                seen != account.answered().end()) {
              output.yield(seen->second);
              continue;
            }
            const int64_t balance = account.balance_cents();
            WithdrawalResult result;
            if (request.amount_cents() <= 0) {
              result = refused("invalid amount", balance, request.correlation_id());
            } else if (request.amount_cents() > balance) {
              result = refused("insufficient funds", balance, request.correlation_id());
            } else {
              account.set_balance_cents(balance - request.amount_cents());
              result.set_accepted(true);
              result.set_balance_cents(account.balance_cents());
              result.set_correlation_id(request.correlation_id());
            }
            (*account.mutable_answered())[request.correlation_id()] = result;
            accounts.set(request.account(), account);  // balance and answer in one write
            output.yield(result);
          }
        },
        withdraw_options);

    AgentOptions<NoReply> process_options;
    process_options.description = "asks withdraw for each order and sends the result to order-results";
    app.agent(
        "process_orders", orders,
        [withdraw, results](Stream<std::string, Order>& stream) {
          for (auto& event : stream) {
            const Order& order = event.value();
            Withdrawal request;
            request.set_account(order.account());
            request.set_amount_cents(order.amount_cents());
            request.set_correlation_id(order.order_id());
            Result<WithdrawalResult> reply = Error::of(ErrorCode::kTimedOut, "not asked");
            for (int attempt = 0; attempt < kAskAttempts; ++attempt) {
              reply = withdraw.ask(order.account(), request);
              if (reply.ok() || reply.error().code != ErrorCode::kTimedOut) break;
            }
            // The worker is going away (stopped past its drain, or failed): no result from here. ask() left
            // the order unacked, so the partition's next owner processes it again.
            if (!reply.ok() && reply.error().code == ErrorCode::kState) return;
            // Without an answer the outcome is unknown (the withdrawal may still be applied later): say so
            // rather than drop the order without a result. (balance_cents is then unknown and left 0; the
            // reason says so.)
            const WithdrawalResult result =
                reply.ok() ? reply.value()
                           : refused("no answer from withdraw (outcome unknown): " + reply.error().message, 0,
                                     order.order_id());
            Status sent = results.send(order.order_id(), result);
            (void)sent;  // a failed delivery stops the worker without committing (at-least-once)
          }
        },
        process_options);
  };
  definition.scenario = orders_scenario(prefix);
  return definition;
}

}  // namespace mephisto::examples
