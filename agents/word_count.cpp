// "wordcount": Faust's word count.
//
//   wordcount-lines --split--> channel wordcount-words --count: group_by(word)--> wordcount-counts
//
// `split` turns each line into lower-case words and sends each word into an in-memory channel; `count`
// re-partitions the words by word through the internal topic wordcount-wordcount-words-word-repartition, so
// every occurrence of a word meets in the one actor that owns its partition, and sends the word's running
// count to wordcount-counts (keyed by the word: the last WordCount of a word there is its total).
//
// The channel is in memory (Faust's app.channel()), yet nothing is lost through it: a line stays unacked (and
// uncommitted) until each of its words has been forwarded to the repartition topic and delivered.
#include <cstdint>
#include <map>
#include <string>

#include "agents/examples.h"
#include "models/examples.pb.h"

namespace mephisto::examples {

AppDefinition word_count_app(const std::string& prefix) {
  AppDefinition definition;
  definition.name = "wordcount";
  definition.description =
      "word count: lines -> lower-case words -> group_by(word) -> running count per word";
  definition.default_settings = [prefix] {
    AppSettings settings;
    settings.id = prefix + "wordcount";
    return settings;  // broker: the default (kafka://localhost:9092), or --broker / MEPHISTO_BROKER
  };
  definition.define = [prefix](App& app) {
    auto lines =
        app.topic<std::string, std::string>(prefix + std::string(kWordCountLinesTopic), create_if_missing());
    auto counts =
        app.topic<std::string, WordCount>(prefix + std::string(kWordCountCountsTopic), create_if_missing());
    auto words = app.channel<std::string, std::string>("wordcount-words");

    AgentOptions<NoReply> split_options;
    split_options.description = "splits lines into lower-case words";
    app.agent(
        "split", lines,
        [words](Stream<std::string, std::string>& stream) {
          for (auto& event : stream) {
            for (const std::string& word : split_words(event.value())) {
              // Errors only once the worker is no longer running (kState); nothing to do about it here.
              Status sent = words.send(word, word);
              (void)sent;
            }
          }
        },
        split_options);

    AgentOptions<NoReply> count_options;
    count_options.description = "counts words (group_by word) and sends each word's running count";
    app.agent(
        "count", words,
        [counts](Stream<std::string, std::string>& stream) {
          // In memory, per actor: tables (a changelogged word -> count table that survives rebalances and
          // restarts) arrive in a later issue. Until then a word's count restarts from 0 on a new owner.
          std::map<std::string, int64_t> totals;
          auto by_word = stream.group_by(
              [](const Event<std::string, std::string>& event) { return event.value(); }, "word");
          for (auto& event : by_word) count_and_send(totals, counts, event.key());
        },
        count_options);
  };
  return definition;
}

}  // namespace mephisto::examples
