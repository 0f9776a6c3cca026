// The example apps: Faust's classic examples written against the public App API (runtime/app/app.h), so that
// the very same definitions run under `mephisto worker NAME` on real Kafka and inside the simulator's
// harness.
//
//   wordcount  lines of text -> lower-case words -> group_by(word) -> a running count per word
//   pageviews  page views    -> group_by(page)   -> a running count per page
//   orders     orders        -> ask the `withdraw` agent (balances per account) -> one result per order
//   tablecount events        -> a running count per key in a table, exactly once -> one result per event
//
// Every example keeps its state in tables (changelogged, restored on a rebalance or a restart), so a
// partition that moves to another worker carries its counts and balances with it; each also declares its
// scenario support, so `mephisto sim` puts it through failure scenarios (scenarios/*.textproto): tablecount
// with its own model, the others with the differential oracle.
//
// Each app function takes an optional `prefix`, prepended to the app id and to every topic name the app reads
// or writes, so that tests can run the examples on a shared broker without meeting an earlier run's topics.
// With the default empty prefix the names are the ones below (and in agents/README.md).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "models/examples.pb.h"
#include "runtime/app/app.h"

namespace mephisto::examples {

// Topics of the examples (before any prefix). The apps create them at start if they are missing (with
// AppSettings::topic_partitions partitions), so that `mephisto worker NAME` works on an empty broker; create
// them first for other partition counts. Internal topics ({id}-...) are the apps' own.
//
// wordcount: lines of raw text in (any key); WordCount json out, keyed by the word; table word-counts.
inline constexpr std::string_view kWordCountLinesTopic = "wordcount-lines";
inline constexpr std::string_view kWordCountCountsTopic = "wordcount-counts";
// pageviews: PageView json in (any key); WordCount json out (word = the page), keyed by the page.
inline constexpr std::string_view kPageViewsTopic = "page-views";
inline constexpr std::string_view kPageViewCountsTopic = "page-view-counts";
// orders: Order json in, keyed by account; WithdrawalResult json out, keyed by order_id.
inline constexpr std::string_view kOrdersTopic = "orders";
inline constexpr std::string_view kOrderResultsTopic = "order-results";
// tablecount: events in, keyed by what is counted, the value a unique event id; results out, keyed alike, the
// value "<event id> <count of the key after this event>".
inline constexpr std::string_view kCountEventsTopic = "count-events";
inline constexpr std::string_view kCountResultsTopic = "count-results";

// How the examples declare those topics: created at start if missing.
inline TopicOptions create_if_missing() {
  TopicOptions options;
  options.create = true;
  return options;
}

// The balance every account starts with in the orders example, in cents.
inline constexpr int64_t kInitialBalanceCents = 10'000;

// Every example app (what `mephisto worker NAME` looks up by AppDefinition::name).
std::vector<AppDefinition> example_apps();

// "wordcount": splits the lines of `wordcount-lines` into lower-case words, re-partitions them by word
// (group_by) and sends WordCount{word, running count} to `wordcount-counts`, keyed by the word.
AppDefinition word_count_app(const std::string& prefix = {});

// "pageviews": re-partitions the PageViews of `page-views` by page (group_by) and sends WordCount{word =
// page, count = running views of that page} to `page-view-counts`, keyed by the page.
AppDefinition page_views_app(const std::string& prefix = {});

// "orders": agent `process_orders` reads `orders` and, for each order, asks agent `withdraw` (its own topic
// {id}-withdraw, keyed by account) to withdraw the amount; `withdraw` keeps a balance per account (starting
// at kInitialBalanceCents, never negative) and replies a WithdrawalResult, which process_orders sends to
// `order-results` keyed by order_id (the result's correlation_id is the order_id too).
AppDefinition orders_app(const std::string& prefix = {});

// "tablecount": agent `count` reads `count-events`, adds one to table `counts` (partitioned like the events)
// under the event's key, and sends "<event value> <new count>" to `count-results` keyed alike. Exactly once by
// default: each event's result appears once in the read_committed output, and the table's changelog ends with
// each key's exact count, whatever crashes and rebalances happen.
AppDefinition table_count_app(const std::string& prefix = {});

// The word count's tokenizer, for tests that compute the expected counts: maximal runs of ASCII letters and
// digits (and of bytes >= 0x80, so UTF-8 words stay whole), with ASCII letters lower-cased. Everything else
// separates words.
std::vector<std::string> split_words(std::string_view line);

// Adds one to `key`'s entry of `totals` and sends WordCount{key, new total} to `counts` keyed by `key` (word
// count and page views, from a stream partitioned by `key`, so the table's partition is the key's). A failed
// delivery stops the worker without committing, so the send's status needs no handling here.
void count_and_send(const Table<std::string, int64_t>& totals, const Topic<std::string, WordCount>& counts,
                    const std::string& key);

}  // namespace mephisto::examples
