// TestDriver: a user's unit tests of their own agents, in one object — Kafka Streams' TopologyTestDriver, or
// Faust's `agent.test_context()`. Records go in, the app processes them, outputs and table contents come out;
// no Kafka to run and no threads: the app runs as one worker inside Mephisto's deterministic simulator (one
// broker, virtual time), so a test is fast and gives the same answer every run.
//
//   mephisto::TestDriver driver(fraudwatch::app(false));
//   driver.send<std::string, Payment>("payments", "acct-1", payment);
//   ASSERT_TRUE(driver.process().ok());                         // everything sent so far, processed and
//   committed auto verdicts = driver.read<std::string, Verdict>("verdicts");   // every committed output, in
//   order auto accounts = driver.table<std::string, AccountState>("accounts");
//
// The worker runs the app's real runtime (agents, tables with changelogs, transactions under exactly_once),
// so what a test sees is what a worker on Kafka commits. Topics the app reads or writes are created for it
// (the app's own count for topics it creates, TestDriverOptions::partitions for the rest). Not thread-safe;
// one driver is one world.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "runtime/app/app.h"

namespace mephisto {

struct TestDriverOptions {
  uint64_t seed = 1;       // the simulator's seed (network latencies, the worker's random choices)
  int32_t partitions = 1;  // of each topic the app uses but does not create with a count of its own
  // How long (virtual ms) process() may run before it reports kTimedOut with the worker's log.
  int64_t process_timeout_ms = 120'000;
};

// One record the app committed to a topic, as bytes.
struct TestRecord {
  int32_t partition = 0;
  int64_t offset = 0;
  std::optional<std::string> key;
  std::optional<std::string> value;
};

class TestDriver {
 public:
  // Builds the simulated broker, creates the app's topics and starts one worker of `app` (its
  // default_settings, then `adjust` if given). Stops the program with a message if the definition cannot be
  // built (as `mephisto worker` would refuse it).
  explicit TestDriver(const AppDefinition& app, TestDriverOptions options = {},
                      std::function<void(AppSettings&)> adjust = {});
  ~TestDriver();
  TestDriver(const TestDriver&) = delete;
  TestDriver& operator=(const TestDriver&) = delete;

  // Queues a record for `topic`, encoded with the codecs the app declared for that topic (what its agents
  // decode). It is written when process() runs. The topic must be one the app declares.
  template <typename K, typename V>
  void send(const std::string& topic, const K& key, const V& value) {
    const TopicInfo& info = topic_info(topic);
    send_raw(topic, encode_with<K>(info.key_codec, topic, "key", key),
             encode_with<V>(info.value_codec, topic, "value", value));
  }
  // Queues a record of raw bytes (nullopt: a null key or value), e.g. a malformed one.
  void send_raw(const std::string& topic, std::optional<std::string> key, std::optional<std::string> value);

  // Writes the queued records, then runs the worker until it has processed and committed everything it reads
  // (every partition of every topic its agents consume committed past its last record, and no transaction
  // left open). Errors: kTimedOut (not settled within process_timeout_ms: the message says what is missing
  // and carries the worker's last log lines), kState (the worker stopped: its error).
  [[nodiscard]] Status process();

  // Every committed record of `topic` from its start, ordered by partition then offset, decoded with the
  // app's codecs for the topic. A record that does not decode stops the program with the topic named.
  template <typename K, typename V>
  std::vector<std::pair<K, V>> read(const std::string& topic) {
    const TopicInfo& info = topic_info(topic);
    std::vector<std::pair<K, V>> out;
    for (const TestRecord& r : read_raw(topic)) {
      out.emplace_back(decode_with<K>(info.key_codec, topic, "key", r.key.value_or("")),
                       decode_with<V>(info.value_codec, topic, "value", r.value.value_or("")));
    }
    return out;
  }
  [[nodiscard]] std::vector<TestRecord> read_raw(const std::string& topic);

  // A table's committed contents (its changelog folded: the last value per key, tombstones removed).
  template <typename K, typename V>
  std::map<K, V> table(const std::string& name) {
    std::map<K, V> out;
    for (const auto& [key, value] : table_raw(name)) {
      out[app_internal::TableCodec<K>::decode(key, name)] = app_internal::TableCodec<V>::decode(value, name);
    }
    return out;
  }
  [[nodiscard]] std::map<std::string, std::string> table_raw(const std::string& name);

  // The worker's log so far (its own lines and the driver's), for a failing test's message.
  [[nodiscard]] std::string log() const;
  // Virtual time since the driver started, in ms.
  [[nodiscard]] int64_t now_ms() const;

 private:
  struct World;

  [[nodiscard]] const TopicInfo& topic_info(const std::string& topic) const;
  template <typename T>
  static std::optional<std::string> encode_with(const std::string& codec, const std::string& topic,
                                                const char* what, const T& value) {
    return codec_of<T>(codec, topic, what).encode(value);
  }
  template <typename T>
  static T decode_with(const std::string& codec, const std::string& topic, const char* what,
                       const std::string& bytes) {
    Result<T> decoded = codec_of<T>(codec, topic, what).decode(bytes);
    if (!decoded.ok())
      die("topic '" + topic + "': a " + what + " does not decode: " + decoded.error().message);
    return std::move(decoded).value();
  }
  template <typename T>
  static SelectedCodec<T> codec_of(const std::string& codec, const std::string& topic, const char* what) {
    Result<CodecKind> kind = parse_codec_kind(codec);
    if (!kind.ok()) die("topic '" + topic + "': " + kind.error().message);
    Result<SelectedCodec<T>> selected = SelectedCodec<T>::make(*kind);
    if (!selected.ok()) die("topic '" + topic + "' " + what + ": " + selected.error().message);
    return std::move(selected).value();
  }
  [[noreturn]] static void die(const std::string& message);

  std::unique_ptr<World> world_;
};

}  // namespace mephisto
