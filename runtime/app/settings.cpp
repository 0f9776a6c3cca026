#include "runtime/app/settings.h"

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <functional>
#include <limits>
#include <set>
#include <type_traits>
#include <utility>

#include <fmt/format.h>

namespace mephisto {
namespace {

constexpr std::string_view kEnvPrefix = "MEPHISTO_";
// Kafka's longest legal topic name.
constexpr size_t kMaxTopicNameLength = 249;

// Variables of the project's own tooling (tools/kafka/with-broker, the conformance suite, tools/dev). They
// share the prefix but are not settings; a worker started under with-broker must not fail on them.
const std::set<std::string, std::less<>>& tooling_variables() {
  static const std::set<std::string, std::less<>> kNames = {
      "MEPHISTO_KAFKA_BOOTSTRAP",      "MEPHISTO_KAFKA_START_TIMEOUT_S", "MEPHISTO_CONFORMANCE_SEED",
      "MEPHISTO_CONFORMANCE_LOG_TAIL", "MEPHISTO_CONFORMANCE_VERBOSE",   "MEPHISTO_SKIP_KAFKA",
  };
  return kNames;
}

// An integer setting: its field, its range and how the error messages describe it ("milliseconds, >= 1").
struct IntSetting {
  const char* name;
  const char* unit;
  int64_t min;
  int64_t max;
  std::function<int64_t(const AppSettings&)> get;
  std::function<void(AppSettings&, int64_t)> set;
};

template <auto Member>
IntSetting int_setting(const char* name, const char* unit, int64_t min) {
  using Field = std::remove_reference_t<decltype(std::declval<AppSettings&>().*Member)>;
  return IntSetting{name,
                    unit,
                    min,
                    static_cast<int64_t>(std::numeric_limits<Field>::max()),
                    [](const AppSettings& s) { return static_cast<int64_t>(s.*Member); },
                    [](AppSettings& s, int64_t value) { s.*Member = static_cast<Field>(value); }};
}

const std::vector<IntSetting>& int_settings() {
  static const std::vector<IntSetting> kSettings = {
      int_setting<&AppSettings::topic_partitions>("topic_partitions", "partitions", 1),
      int_setting<&AppSettings::topic_replication_factor>("topic_replication_factor", "replicas", 1),
      int_setting<&AppSettings::broker_commit_interval_ms>("broker_commit_interval_ms", "milliseconds", 1),
      int_setting<&AppSettings::broker_commit_every>("broker_commit_every", "acks", 1),
      int_setting<&AppSettings::stream_buffer_maxsize>("stream_buffer_maxsize", "events", 1),
      int_setting<&AppSettings::broker_session_timeout_ms>("broker_session_timeout_ms", "milliseconds", 1),
      int_setting<&AppSettings::broker_heartbeat_interval_ms>("broker_heartbeat_interval_ms", "milliseconds",
                                                              1),
      int_setting<&AppSettings::broker_max_poll_interval_ms>("broker_max_poll_interval_ms", "milliseconds",
                                                             1),
      int_setting<&AppSettings::producer_linger_ms>("producer_linger_ms", "milliseconds", 0),
      int_setting<&AppSettings::stop_timeout_ms>("stop_timeout_ms", "milliseconds", 0),
      int_setting<&AppSettings::rebalance_drain_timeout_ms>("rebalance_drain_timeout_ms", "milliseconds", 0),
      int_setting<&AppSettings::agent_max_restarts>("agent_max_restarts", "restarts", 0),
      int_setting<&AppSettings::agent_restart_window_ms>("agent_restart_window_ms", "milliseconds", 1),
      int_setting<&AppSettings::ask_timeout_ms>("ask_timeout_ms", "milliseconds", 1),
      int_setting<&AppSettings::table_standby_replicas>("table_standby_replicas", "replicas", 0),
  };
  return kSettings;
}

std::string accepted(const IntSetting& setting) {
  return fmt::format("({}, >= {})", setting.unit, setting.min);
}

// An enum setting: its names in the order the header documents them.
template <typename E>
struct EnumName {
  const char* name;
  E value;
};

const std::vector<EnumName<ProcessingGuarantee>> kGuarantees = {
    {"at_least_once", ProcessingGuarantee::kAtLeastOnce},
    {"exactly_once", ProcessingGuarantee::kExactlyOnce}};
const std::vector<EnumName<OffsetReset>> kOffsetResets = {
    {"earliest", OffsetReset::kEarliest}, {"latest", OffsetReset::kLatest}, {"error", OffsetReset::kError}};
const std::vector<EnumName<AssignmentStrategy>> kStrategies = {
    {"range", AssignmentStrategy::kRange},
    {"roundrobin", AssignmentStrategy::kRoundRobin},
    {"cooperative-sticky", AssignmentStrategy::kCooperativeSticky}};
const std::vector<EnumName<BadRecordPolicy>> kBadRecordPolicies = {
    {"skip", BadRecordPolicy::kSkip}, {"dead_letter", BadRecordPolicy::kDeadLetter}};

template <typename E>
Status set_enum(std::string_view name, std::string_view value, const std::vector<EnumName<E>>& names,
                E& out) {
  std::vector<std::string> choices;
  for (const auto& entry : names) {
    if (value == entry.name) {
      out = entry.value;
      return {};
    }
    choices.emplace_back(entry.name);
  }
  return Error::of(ErrorCode::kInvalidArg, fmt::format("{}: '{}' is not accepted (one of {})", name, value,
                                                       fmt::join(choices, ", ")));
}

// Strings checked as a whole by validate() (a URL may be set before the id it is combined with).
const std::vector<std::pair<const char*, std::string AppSettings::*>> kStringSettings = {
    {"id", &AppSettings::id},
    {"broker", &AppSettings::broker},
    {"store", &AppSettings::store},
    {"data_dir", &AppSettings::data_dir},
    {"worker_id", &AppSettings::worker_id},
};

constexpr const char* kEnumNames[] = {"processing_guarantee", "consumer_auto_offset_reset",
                                      "consumer_assignment_strategy", "bad_record_policy", "producer_acks"};

Status set_property(std::map<std::string, std::string>& properties, std::string_view setting,
                    std::string_view property, std::string_view value) {
  if (property.empty()) {
    return Error::of(
        ErrorCode::kInvalidArg,
        fmt::format("{}: no property name (expected {}<librdkafka property>=value)", setting, setting));
  }
  properties[std::string(property)] = std::string(value);
  return {};
}

bool is_topic_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
         c == '-';
}

// Names that become (part of) Kafka topic names: the id and the worker id.
Status check_topic_chars(const char* setting, const std::string& value, const char* purpose) {
  if (value.empty()) {
    return Error::of(
        ErrorCode::kInvalidArg,
        fmt::format("{}: required ({}; Kafka's topic characters [a-zA-Z0-9._-])", setting, purpose));
  }
  if (!std::all_of(value.begin(), value.end(), is_topic_char) || value.size() > kMaxTopicNameLength) {
    return Error::of(
        ErrorCode::kInvalidArg,
        fmt::format("{}: '{}' is not accepted ({}: Kafka's topic characters [a-zA-Z0-9._-], at most {})",
                    setting, value, purpose, kMaxTopicNameLength));
  }
  return {};
}

Status check_port(std::string_view url, std::string_view entry, std::string_view port) {
  int value = 0;
  const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (port.empty() || ec != std::errc() || end != port.data() + port.size() || value < 1 || value > 65535) {
    return Error::of(
        ErrorCode::kInvalidArg,
        fmt::format("broker: '{}' has no valid port in '{}' (expected kafka://host:port[,host:port...], "
                    "port 1-65535)",
                    url, entry));
  }
  return {};
}

}  // namespace

std::vector<std::string> setting_names() {
  std::vector<std::string> names;
  for (const auto& setting : int_settings()) names.emplace_back(setting.name);
  for (const auto& [name, member] : kStringSettings) names.emplace_back(name);
  for (const char* name : kEnumNames) names.emplace_back(name);
  std::sort(names.begin(), names.end());
  return names;
}

Status set_setting(AppSettings& settings, std::string_view name, std::string_view value) {
  for (const auto& setting : int_settings()) {
    if (name != setting.name) continue;
    int64_t parsed = 0;
    const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), parsed);
    if (value.empty() || end != value.data() + value.size() ||
        (ec != std::errc() && ec != std::errc::result_out_of_range)) {
      return Error::of(ErrorCode::kInvalidArg,
                       fmt::format("{}: '{}' is not an integer {}", name, value, accepted(setting)));
    }
    if (ec == std::errc::result_out_of_range || parsed < setting.min || parsed > setting.max) {
      return Error::of(ErrorCode::kInvalidArg, fmt::format("{}: '{}' is out of range {}", name, value,
                                                           setting.max == std::numeric_limits<int64_t>::max()
                                                               ? accepted(setting)
                                                               : fmt::format("({}, {}..{})", setting.unit,
                                                                             setting.min, setting.max)));
    }
    setting.set(settings, parsed);
    return {};
  }
  for (const auto& [setting, member] : kStringSettings) {
    if (name == setting) {
      settings.*member = std::string(value);
      return {};
    }
  }
  if (name == "processing_guarantee")
    return set_enum(name, value, kGuarantees, settings.processing_guarantee);
  if (name == "consumer_auto_offset_reset") {
    return set_enum(name, value, kOffsetResets, settings.consumer_auto_offset_reset);
  }
  if (name == "consumer_assignment_strategy") {
    return set_enum(name, value, kStrategies, settings.consumer_assignment_strategy);
  }
  if (name == "bad_record_policy")
    return set_enum(name, value, kBadRecordPolicies, settings.bad_record_policy);
  if (name == "producer_acks") {
    // Kafka's own spelling: "all" is -1.
    const std::vector<EnumName<int>> acks = {{"all", -1}, {"-1", -1}, {"1", 1}, {"0", 0}};
    return set_enum(name, value, acks, settings.producer_acks);
  }
  constexpr std::string_view kConsumer = "consumer.";
  constexpr std::string_view kProducer = "producer.";
  if (name.starts_with(kConsumer)) {
    return set_property(settings.consumer_properties, "consumer.", name.substr(kConsumer.size()), value);
  }
  if (name.starts_with(kProducer)) {
    return set_property(settings.producer_properties, "producer.", name.substr(kProducer.size()), value);
  }
  return Error::of(
      ErrorCode::kInvalidArg,
      fmt::format("unknown setting '{}' (settings: {}; or consumer.<property>, producer.<property>)", name,
                  fmt::join(setting_names(), ", ")));
}

Status apply_environment(AppSettings& settings, const std::map<std::string, std::string>& environment) {
  // Upper-cased setting name -> setting name, for the variables' NAME part.
  std::map<std::string, std::string> by_variable;
  for (const auto& name : setting_names()) {
    std::string upper = name;
    std::transform(upper.begin(), upper.end(), upper.begin(),
                   [](char c) { return c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c; });
    by_variable[std::string(kEnvPrefix) + upper] = name;
  }
  for (const auto& [variable, value] : environment) {
    if (!variable.starts_with(kEnvPrefix) || tooling_variables().contains(variable)) continue;
    const auto found = by_variable.find(variable);
    if (found == by_variable.end()) {
      return Error::of(
          ErrorCode::kInvalidArg,
          fmt::format("{}: not a setting (MEPHISTO_<NAME> with NAME one of {}; librdkafka properties "
                      "are set with --set consumer.<property>=value or producer.<property>=value)",
                      variable, fmt::join(setting_names(), ", ")));
    }
    if (Status status = set_setting(settings, found->second, value); !status.ok()) {
      return Error::of(ErrorCode::kInvalidArg, fmt::format("{}: {}", variable, status.error().message));
    }
  }
  return {};
}

Status validate(const AppSettings& settings) {
  if (Status s = check_topic_chars("id", settings.id, "the consumer group and internal topic prefix");
      !s.ok()) {
    return s;
  }
  if (Status s = check_topic_chars("worker_id", settings.worker_id, "names this worker's reply topic");
      !s.ok()) {
    return s;
  }
  if (auto servers = bootstrap_servers(settings.broker); !servers.ok()) return servers.error();
  if (settings.store != "memory://" && settings.store != "rocksdb://") {
    return Error::of(ErrorCode::kInvalidArg,
                     fmt::format("store: '{}' is not accepted (memory:// or rocksdb://)", settings.store));
  }
  if (settings.processing_guarantee == ProcessingGuarantee::kExactlyOnce && settings.producer_acks != -1) {
    return Error::of(ErrorCode::kInvalidArg,
                     fmt::format("producer_acks: {} cannot be used with processing_guarantee=exactly_once "
                                 "(transactions need acks=all)",
                                 settings.producer_acks));
  }
  if (settings.table_standby_replicas > 1) {
    return Error::of(ErrorCode::kInvalidArg,
                     fmt::format("table_standby_replicas: {} is not accepted (0 or 1: with 1 every worker "
                                 "already holds a standby of every partition it does not own)",
                                 settings.table_standby_replicas));
  }
  for (const auto& setting : int_settings()) {
    const int64_t value = setting.get(settings);
    if (value < setting.min) {
      return Error::of(ErrorCode::kInvalidArg,
                       fmt::format("{}: {} is out of range {}", setting.name, value, accepted(setting)));
    }
  }
  if (settings.producer_acks != -1 && settings.producer_acks != 0 && settings.producer_acks != 1) {
    return Error::of(
        ErrorCode::kInvalidArg,
        fmt::format("producer_acks: {} is not accepted (one of all, -1, 1, 0)", settings.producer_acks));
  }
  // Kafka's group protocol: a member that heartbeats no faster than its session times out is evicted, and
  // librdkafka refuses a max poll interval below the session timeout.
  if (settings.broker_heartbeat_interval_ms >= settings.broker_session_timeout_ms) {
    return Error::of(
        ErrorCode::kInvalidArg,
        fmt::format("broker_heartbeat_interval_ms: {} must be below broker_session_timeout_ms ({}); "
                    "Kafka suggests at most a third of it",
                    settings.broker_heartbeat_interval_ms, settings.broker_session_timeout_ms));
  }
  if (settings.broker_max_poll_interval_ms < settings.broker_session_timeout_ms) {
    return Error::of(
        ErrorCode::kInvalidArg,
        fmt::format("broker_max_poll_interval_ms: {} must be at least broker_session_timeout_ms ({})",
                    settings.broker_max_poll_interval_ms, settings.broker_session_timeout_ms));
  }
  return {};
}

Result<std::string> bootstrap_servers(std::string_view broker_url) {
  constexpr std::string_view kScheme = "kafka://";
  if (!broker_url.starts_with(kScheme)) {
    return Error::of(
        ErrorCode::kInvalidArg,
        fmt::format("broker: '{}' is not a Kafka URL (expected kafka://host:port[,host:port...])",
                    broker_url));
  }
  std::string_view rest = broker_url.substr(kScheme.size());
  std::string servers;
  while (true) {
    const size_t comma = rest.find(',');
    const std::string_view entry = rest.substr(0, comma);
    // A bracketed IPv6 address has colons of its own: the port follows the closing bracket.
    const size_t host_end = entry.starts_with('[') ? entry.find(']') : entry.find(':');
    const size_t colon =
        host_end == std::string_view::npos ? std::string_view::npos : entry.find(':', host_end);
    const std::string_view host = entry.substr(0, colon);
    if (host.empty() || host == "[]" || colon == std::string_view::npos) {
      return Error::of(ErrorCode::kInvalidArg,
                       fmt::format("broker: '{}' has an entry without host:port ('{}'; expected "
                                   "kafka://host:port[,host:port...])",
                                   broker_url, entry));
    }
    if (Status s = check_port(broker_url, entry, entry.substr(colon + 1)); !s.ok()) return s.error();
    if (!servers.empty()) servers += ',';
    servers += entry;
    if (comma == std::string_view::npos) break;
    rest = rest.substr(comma + 1);
  }
  return servers;
}

int64_t effective_commit_interval_ms(const AppSettings& settings) {
  constexpr int64_t kFaustDefaultMs = 2800;
  constexpr int64_t kEosDefaultMs = 100;
  if (settings.processing_guarantee == ProcessingGuarantee::kExactlyOnce &&
      settings.broker_commit_interval_ms == kFaustDefaultMs) {
    return kEosDefaultMs;
  }
  return settings.broker_commit_interval_ms;
}

std::string effective_data_dir(const AppSettings& settings) {
  return settings.data_dir.empty() ? settings.id + "-data" : settings.data_dir;
}

}  // namespace mephisto
