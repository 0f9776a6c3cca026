// `send`: produces raw records to a topic (or an app's agent's topic) with the Kafka producer directly; no
// App runs. The topic is described first, so a missing topic is reported by name at once instead of after
// librdkafka's 30 s metadata wait.
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "runtime/cli/commands.h"
#include "runtime/kafka/kafka_broker_client.h"
#include "runtime/loop/event_loop.h"

namespace mephisto::cli {
namespace {

// Where the records went, per partition, e.g. "partition 0 offsets 5-7, partition 2 offset 3".
std::string describe_offsets(const std::vector<RecordMetadata>& written) {
  std::map<int32_t, std::vector<int64_t>> by_partition;
  for (const auto& metadata : written) by_partition[metadata.tp.partition].push_back(metadata.offset);
  std::vector<std::string> parts;
  for (auto& [partition, offsets] : by_partition) {
    std::sort(offsets.begin(), offsets.end());
    if (offsets.size() == 1) {
      parts.push_back(fmt::format("partition {} offset {}", partition, offsets.front()));
    } else if (offsets.back() - offsets.front() + 1 == static_cast<int64_t>(offsets.size())) {
      parts.push_back(fmt::format("partition {} offsets {}-{}", partition, offsets.front(), offsets.back()));
    } else {
      // Another producer wrote in between.
      parts.push_back(fmt::format("partition {} offsets {}..{} ({} records)", partition, offsets.front(),
                                  offsets.back(), offsets.size()));
    }
  }
  return fmt::format("{}", fmt::join(parts, ", "));
}

struct Outcome {
  int exit_code = kExitOk;
  std::string error;
  std::vector<RecordMetadata> written;
  int64_t failed = 0;
  std::optional<Error> first_failure;
};

// Runs on a fiber of `loop`: describe, produce `repeat` records, flush.
void send_records(BrokerClient& broker, const AppSettings& settings, const std::string& topic,
                  const ProducerRecord& record, const SendCommandOptions& options, Outcome& out) {
  auto fail = [&](int code, std::string message) {
    out.exit_code = code;
    out.error = std::move(message);
  };
  auto admin = broker.admin();
  if (!admin.ok())
    return fail(kExitFailure, "cannot create a Kafka admin client: " + admin.error().to_string());
  auto description = admin.value()->describe_topic(topic, options.timeout_ms);
  if (!description.ok()) {
    if (description.code() == ErrorCode::kUnknownTopicOrPartition ||
        description.code() == ErrorCode::kUnknownTopic) {
      return fail(kExitFailure, fmt::format("topic '{}' does not exist on {}", topic, settings.broker));
    }
    return fail(kExitFailure, fmt::format("cannot describe topic '{}' on {}: {}", topic, settings.broker,
                                          description.error().to_string()));
  }
  const auto partitions = static_cast<int32_t>(description.value().partitions.size());
  if (options.partition >= partitions) {
    return fail(kExitUsage, fmt::format("--partition {}: topic '{}' has {} partition(s) (0..{})",
                                        options.partition, topic, partitions, partitions - 1));
  }

  ProducerConfig config;
  config.client_id = "mephisto-send";
  config.acks = settings.producer_acks;
  config.enable_idempotence = settings.producer_acks == -1;  // Kafka's idempotence requires acks=all
  config.linger_ms = settings.producer_linger_ms;
  config.extra = settings.producer_properties;
  auto producer = broker.producer(config);
  if (!producer.ok())
    return fail(kExitFailure, "cannot create a Kafka producer: " + producer.error().to_string());

  auto on_delivery = [&out](const Result<RecordMetadata>& result) {
    if (result.ok()) {
      out.written.push_back(result.value());
    } else {
      ++out.failed;
      if (!out.first_failure) out.first_failure = result.error();
    }
  };
  for (int64_t i = 0; i < options.repeat; ++i) {
    Status sent = producer.value()->send(record, on_delivery);
    if (sent.code() == ErrorCode::kQueueFull) {
      // The producer's queue bounds memory: let it drain, then queue the record again.
      if (Status flushed = producer.value()->flush(options.timeout_ms); !flushed.ok()) {
        return fail(kExitFailure, fmt::format("sending to '{}': {}", topic, flushed.error().to_string()));
      }
      sent = producer.value()->send(record, on_delivery);
    }
    if (!sent.ok())
      return fail(kExitFailure, fmt::format("sending to '{}': {}", topic, sent.error().to_string()));
  }
  if (Status flushed = producer.value()->flush(options.timeout_ms); !flushed.ok()) {
    return fail(kExitFailure, fmt::format("records to '{}' not delivered within {} ms: {}", topic,
                                          options.timeout_ms, flushed.error().to_string()));
  }
  if (out.failed > 0) {
    fail(kExitFailure, fmt::format("{} of {} record(s) to '{}' failed: {}", out.failed, options.repeat, topic,
                                   out.first_failure->to_string()));
  }
}

}  // namespace

int run_send(const std::vector<AppDefinition>& apps, const SendCommandOptions& options) {
  const AppDefinition* definition = nullptr;
  if (!options.app.empty()) {
    auto found = find_app(apps, options.app);
    if (!found.ok()) {
      print_error(found.error().message);
      return kExitUsage;
    }
    definition = found.value();
  }
  auto built = settings_from({definition, process_environment(), {}, options.broker});
  if (!built.ok()) {
    print_error(built.error().message);
    return kExitUsage;
  }
  const AppSettings& settings = built.value().settings;

  // An agent's name stands for its topic (`{id}-{agent}` for an agent declared without one).
  std::string topic = options.target;
  if (definition != nullptr && definition->define) {
    App app(settings);
    definition->define(app);
    for (const auto& agent : app.agents()) {
      if (agent.name == options.target) topic = agent.topic;
    }
  }

  auto servers = bootstrap_servers(settings.broker);
  if (!servers.ok()) {
    print_error(servers.error().message);
    return kExitUsage;
  }
  ProducerRecord record;
  record.topic = topic;
  record.partition = options.partition;
  record.key = options.key;
  record.value = options.value;
  if (!options.value_file.empty()) {
    std::ifstream file(options.value_file, std::ios::binary);
    if (!file) {
      print_error(fmt::format("--value-file '{}' cannot be read", options.value_file));
      return kExitUsage;
    }
    record.value = std::string(std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>());
  }

  EventLoop loop;
  KafkaBrokerClient broker(loop, KafkaOptions{servers.value(), {}});
  if (Status config = broker.check_config(); !config.ok()) {
    print_error(config.error().message);
    return kExitUsage;
  }
  Outcome outcome;
  loop.spawn("send", [&] { send_records(broker, settings, topic, record, options, outcome); });
  loop.run();
  if (outcome.exit_code != kExitOk) {
    print_error(outcome.error);
    return outcome.exit_code;
  }
  fmt::print("sent {} record(s) to {} ({})\n", outcome.written.size(), topic,
             describe_offsets(outcome.written));
  return kExitOk;
}

}  // namespace mephisto::cli
