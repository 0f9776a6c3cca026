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
// the same answer and is not applied twice.
#include <cstdint>
#include <map>
#include <string>

#include "agents/examples.h"
#include "models/examples.pb.h"

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

    AgentOptions<WithdrawalResult> withdraw_options;
    withdraw_options.description = "applies withdrawals to per-account balances (never below 0) and replies";
    auto withdraw = app.agent<std::string, Withdrawal, WithdrawalResult>(
        "withdraw",
        [](Stream<std::string, Withdrawal>& stream, Output<WithdrawalResult>& output) {
          // In memory, per actor, until tables arrive (a later issue): see agents/examples.h.
          std::map<std::string, int64_t> balances;
          // Answers given, by correlation id (grows with the orders: fine for an example; a table with a
          // retention would bound it).
          std::map<std::string, WithdrawalResult> answered;
          for (auto& event : stream) {
            const Withdrawal& request = event.value();
            if (auto seen = answered.find(request.correlation_id()); seen != answered.end()) {
              output.yield(seen->second);
              continue;
            }
            auto [balance, inserted] = balances.try_emplace(request.account(), kInitialBalanceCents);
            (void)inserted;
            WithdrawalResult result;
            if (request.amount_cents() <= 0) {
              result = refused("invalid amount", balance->second, request.correlation_id());
            } else if (request.amount_cents() > balance->second) {
              result = refused("insufficient funds", balance->second, request.correlation_id());
            } else {
              balance->second -= request.amount_cents();
              result.set_accepted(true);
              result.set_balance_cents(balance->second);
              result.set_correlation_id(request.correlation_id());
            }
            answered[request.correlation_id()] = result;
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
  return definition;
}

}  // namespace mephisto::examples
