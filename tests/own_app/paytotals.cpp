// A user's own app, written as a new user would (README alone, nothing from agents/), and the one call that
// gives its binary every command: payments in, a running total per account in a table, one receipt per
// payment out, exactly once — with the scenario support `sim` needs. tests/own_app/own_app_test.cpp drives
// this binary.
//
// "paytotals-cached" is the same app with a bug users write: an actor-local cache in front of the table (the
// total is read from the cache, not the table), which is right until a partition moves or a worker restarts.
// The model oracle must find it.
#include <functional>
#include <map>
#include <optional>
#include <string>

#include "main/main.h"
#include "models/examples.pb.h"

namespace {

using mephisto::App;
using mephisto::AppDefinition;
using mephisto::AppSettings;
using mephisto::ProcessingGuarantee;
using mephisto::ScenarioSupport;
using mephisto::Stream;
using mephisto::TopicOptions;
using mephisto::WorkloadRecord;
using mephisto::WorkloadShape;

constexpr const char* kPayments = "payments";
constexpr const char* kReceipts = "receipts";

// A payment's value is "<payment id>:<amount in cents>"; its receipt "<payment id> <account total after it>".
int64_t amount_of(const std::string& payment) {
  const auto colon = payment.find(':');
  return colon == std::string::npos
             ? 0
             : mephisto::parse_decimal(std::string_view(payment).substr(colon + 1)).value_or(0);
}
std::string id_of(std::string_view payment_or_receipt) {
  return std::string(payment_or_receipt.substr(0, payment_or_receipt.find_first_of(": ")));
}

// Every app here runs exactly once, its group and prefix its own name.
std::function<AppSettings()> exactly_once_settings(const std::string& id) {
  return [id] {
    AppSettings settings;
    settings.id = id;
    settings.processing_guarantee = ProcessingGuarantee::kExactlyOnce;
    return settings;
  };
}

ScenarioSupport paytotals_scenario() {
  ScenarioSupport support;
  support.input_topic = kPayments;
  support.output_topic = kReceipts;
  support.record = [](int64_t index, const WorkloadShape& shape, uint64_t record_seed) {
    const int64_t account = static_cast<int64_t>(record_seed % static_cast<uint64_t>(shape.keys));
    const int64_t cents = 1 + static_cast<int64_t>((record_seed >> 32) % 10'000);
    return WorkloadRecord{"acct-" + std::to_string(account),
                          "p" + std::to_string(index) + ":" + std::to_string(cents)};
  };
  support.input_of_result = [](std::string_view receipt) -> std::optional<std::string> {
    return id_of(receipt);
  };
  support.input_id = [](std::string_view payment) { return id_of(payment); };
  support.table = "totals";
  support.fold = [](const WorkloadRecord& payment, std::map<std::string, std::string>& totals) {
    if (!payment.key) return;
    std::string& total = totals[*payment.key];
    total = std::to_string(mephisto::parse_decimal(total).value_or(0) + amount_of(payment.value));
  };
  support.compare = mephisto::compare_decimal;
  return support;
}

AppDefinition paytotals_app(const std::string& name, bool cached) {
  AppDefinition definition;
  definition.name = name;
  definition.description = "payments -> a total per account (table totals) -> one receipt per payment";
  definition.default_settings = exactly_once_settings(name);
  definition.define = [cached](App& app) {
    auto payments = app.topic<std::string, std::string>(kPayments);
    auto receipts = app.topic<std::string, std::string>(kReceipts);
    auto totals = app.table<std::string, int64_t>("totals", payments);
    app.agent("settle", payments, [totals, receipts, cached](Stream<std::string, std::string>& stream) {
      std::map<std::string, int64_t> cache;  // the bug, when `cached`: this actor's memory is not the table
      for (auto& payment : stream) {
        const int64_t before = cached ? cache[payment.key()] : totals.get(payment.key());
        const int64_t total = before + amount_of(payment.value());
        if (cached) cache[payment.key()] = total;
        totals.set(payment.key(), total);
        (void)receipts.send(payment.key(), id_of(payment.value()) + " " + std::to_string(total));
      }
    });
  };
  definition.scenario = paytotals_scenario();
  return definition;
}

// "arrival-order": numbers each payment by its arrival at the worker, across partitions. Not a function of
// its input in per-partition order (how partitions interleave decides the numbers): the differential oracle
// finds its two reference runs disagree and refuses to judge it (exit 2), rather than blame the faults.
AppDefinition arrival_order_app() {
  AppDefinition definition;
  definition.name = "arrival-order";
  definition.description = "numbers payments in the order they arrive at the worker (not deterministic)";
  definition.default_settings = exactly_once_settings("arrival-order");
  definition.define = [](App& app) {
    TopicOptions create;
    create.create = true;
    auto payments = app.topic<std::string, std::string>(kPayments, create);
    auto receipts = app.topic<std::string, std::string>(kReceipts, create);
    app.agent("number", payments, [receipts](Stream<std::string, std::string>& stream) {
      int64_t arrived = 0;
      for (auto& payment : stream) {
        (void)receipts.send(payment.key(), "#" + std::to_string(++arrived) + " " + id_of(payment.value()));
      }
    });
  };
  ScenarioSupport support = paytotals_scenario();  // the workload; no model
  support.input_of_result = nullptr;
  support.input_id = nullptr;
  support.table.clear();
  support.fold = nullptr;
  support.compare = nullptr;
  definition.scenario = std::move(support);
  return definition;
}

// "wrong-codec": declares its payments as protobuf Orders (default codec: JSON) while its workload writes
// paytotals' "<id>:<cents>" text. Every input is undecodable; `sim` must refuse the app (exit 2) rather than
// pass a run that processed nothing.
AppDefinition wrong_codec_app() {
  AppDefinition definition = arrival_order_app();
  definition.name = "wrong-codec";
  definition.description = "payments declared as protobuf Orders, fed text (its workload does not decode)";
  definition.default_settings = exactly_once_settings("wrong-codec");
  definition.define = [](App& app) {
    TopicOptions create;
    create.create = true;
    auto payments = app.topic<std::string, mephisto::examples::Order>(kPayments, create);
    auto receipts = app.topic<std::string, std::string>(kReceipts, create);
    app.agent("forward", payments, [receipts](Stream<std::string, mephisto::examples::Order>& stream) {
      for (auto& order : stream) (void)receipts.send(order.key(), order.value().order_id());
    });
  };
  return definition;
}

}  // namespace

int main(int argc, char** argv) {
  static const std::vector<AppDefinition> apps = {paytotals_app("paytotals", false),
                                                  paytotals_app("paytotals-cached", true),
                                                  arrival_order_app(), wrong_codec_app()};
  return mephisto::main(apps, argc, argv);
}
