// "wordcount": Faust's word count.
//
//   wordcount-lines --split--> channel wordcount-words --count: group_by(word)--> wordcount-counts
//                                                                   |
//                                                       table word-counts (changelogged)
//
// `split` turns each line into lower-case words and sends each word into an in-memory channel; `count`
// re-partitions the words by word through the internal topic wordcount-wordcount-words-word-repartition, so
// every occurrence of a word meets in the one actor that owns its partition, adds one to the word's entry in
// table `word-counts` (partitioned like that repartition topic, so a word's count moves with its partition
// and survives rebalances and restarts) and sends the word's running count to wordcount-counts (keyed by the
// word: the last WordCount of a word there is its total).
//
// The channel is in memory (Faust's app.channel()), yet nothing is lost through it: a line stays unacked (and
// uncommitted) until each of its words has been forwarded to the repartition topic and delivered.
#include <algorithm>
#include <cstdint>
#include <iterator>
#include <string>
#include <string_view>

#include "agents/examples.h"
#include "models/examples.pb.h"
#include "runtime/seam/random.h"

namespace mephisto::examples {
namespace {

// Words the workload's lines are made of: a small vocabulary, so that words repeat across lines and
// partitions (the counts then depend on every line being counted once).
constexpr std::string_view kVocabulary[] = {"the",    "quick", "brown", "fox",   "jumps", "over",
                                            "lazy",   "dog",   "kafka", "faust", "table", "agent",
                                            "stream", "topic", "event", "log"};
constexpr int kWordsPerLine = 4;

// wordcount's scenario support: lines of kWordsPerLine words from the vocabulary (key "k<j>" spreads them
// over the input partitions), each ending in "line <index>" so that every line is unique. No model: the
// differential oracle holds a faulty run's counts to a fault-free run's.
ScenarioSupport word_count_scenario(const std::string& prefix) {
  ScenarioSupport support;
  support.input_topic = prefix + std::string(kWordCountLinesTopic);
  support.output_topic = prefix + std::string(kWordCountCountsTopic);
  support.record = [](int64_t index, const WorkloadShape& shape, uint64_t record_seed) {
    Random random(record_seed);
    std::string line;
    for (int i = 0; i < kWordsPerLine; ++i) {
      line += kVocabulary[random.below(std::size(kVocabulary))];
      line += ' ';
    }
    line += "line " + std::to_string(index);
    const uint64_t key = random.below(static_cast<uint64_t>(std::max(1, shape.keys)));
    return WorkloadRecord{"k" + std::to_string(key), std::move(line)};
  };
  return support;
}

}  // namespace

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
    TableOptions<int64_t> table_options;
    table_options.help = "occurrences of each word";
    auto totals = app.table<std::string, int64_t>(
        "word-counts", app.repartition_topic<std::string>(words, "word"), table_options);

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
        [counts, totals](Stream<std::string, std::string>& stream) {
          auto by_word = stream.group_by(
              [](const Event<std::string, std::string>& event) { return event.value(); }, "word");
          for (auto& event : by_word) count_and_send(totals, counts, event.key());
        },
        count_options);
  };
  definition.scenario = word_count_scenario(prefix);
  return definition;
}

}  // namespace mephisto::examples
