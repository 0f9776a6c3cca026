// The list of example apps, and the word count's tokenizer (shared with the tests).
#include "agents/examples.h"

namespace mephisto::examples {

std::vector<AppDefinition> example_apps() {
  return {word_count_app(), page_views_app(), orders_app(), table_count_app()};
}

std::vector<std::string> split_words(std::string_view line) {
  std::vector<std::string> words;
  std::string word;
  for (const char c : line) {
    const auto byte = static_cast<unsigned char>(c);
    const bool letter = (byte >= 'a' && byte <= 'z') || (byte >= 'A' && byte <= 'Z');
    const bool digit = byte >= '0' && byte <= '9';
    if (letter || digit || byte >= 0x80) {
      word.push_back(byte >= 'A' && byte <= 'Z' ? static_cast<char>(byte - 'A' + 'a') : c);
    } else if (!word.empty()) {
      words.push_back(std::move(word));
      word.clear();
    }
  }
  if (!word.empty()) words.push_back(std::move(word));
  return words;
}

void count_and_send(const Table<std::string, int64_t>& totals, const Topic<std::string, WordCount>& counts,
                    const std::string& key) {
  WordCount count;
  count.set_word(key);
  count.set_count(totals.add(key, 1));
  Status sent = counts.send(key, count);
  (void)sent;
}

}  // namespace mephisto::examples
