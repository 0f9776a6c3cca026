// AppSettings: an application's configuration, with Faust's setting names and defaults (faust.md, "Settings
// users expect") unless a comment says why Mephisto differs. Settings come from code, from `name=value` pairs
// (the CLI's
// --set, a config file) and from the environment (MEPHISTO_<NAME>, e.g. MEPHISTO_BROKER_COMMIT_INTERVAL_MS).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/seam/broker_client.h"
#include "runtime/seam/result.h"

namespace mephisto {

enum class ProcessingGuarantee { kAtLeastOnce, kExactlyOnce };

// What a worker does with a record whose key or value does not decode with its topic's codec. Either way the
// record is acked (so the offset position moves on and is never lost) and the worker keeps running.
enum class BadRecordPolicy {
  kSkip,        // log one line (the first 10, then every 1000th) and count it (AppStats::records_skipped)
  kDeadLetter,  // produce the record unchanged to `{id}-dead-letters`, with headers naming the error and
                // source
};

struct AppSettings {
  // The application id: the consumer group id, and the prefix of every internal topic. Required;
  // Kafka's legal topic characters only ([a-zA-Z0-9._-]).
  std::string id;
  // kafka://host:port[,host:port...]. Inside the simulator the harness binds the app to the simulated cluster
  // and this value is not used.
  std::string broker = "kafka://localhost:9092";
  // Where table partitions live: memory:// (gone with the process; rebuilt from the changelog) or rocksdb://
  // (one RocksDB per table partition under data_dir). Faust's default is memory:// too.
  std::string store = "memory://";
  // The directory rocksdb:// stores live in. Empty: "{id}-data" in the working directory. Two workers of one
  // app on one machine need different directories.
  std::string data_dir;
  // at_least_once (Faust's default) or exactly_once (Kafka's EOS v2: one transactional producer per worker;
  // outputs, changelog writes and input offsets commit in one transaction; read_committed everywhere).
  ProcessingGuarantee processing_guarantee = ProcessingGuarantee::kAtLeastOnce;
  // Standby replicas of table partitions (Kafka Streams' num.standby.replicas; Faust's
  // table_standby_replicas): 0 or 1. With 1, every worker tails the changelog partitions of its tables that
  // it does not own, so a partition failing over to any worker restores only what it missed (see
  // runtime/app/README.md, "Standbys", for what is guaranteed).
  int32_t table_standby_replicas = 1;
  // Names this worker: its reply topic ({id}-reply-{worker_id}) and its clients' client.id. Unique per worker
  // process of one app. Default "worker" (Faust derives one from host and port; `mephisto worker` sets
  // host-pid).
  std::string worker_id = "worker";

  // Partitions and replication factor of topics the app creates (internal topics; declared topics that say
  // `create`).
  int32_t topic_partitions = 8;
  int16_t topic_replication_factor = 1;

  // Commit every interval or every N acks, whichever first (Faust: broker_commit_interval 2.8 s,
  // broker_commit_every 10000). Under exactly_once the interval is the transaction length; the default 2.8 s
  // then becomes 100 ms (Kafka Streams' commit.interval.ms under EOS) unless set to something else.
  int64_t broker_commit_interval_ms = 2800;
  int64_t broker_commit_every = 10000;
  // Events buffered per agent before the worker pauses fetching (Faust: stream_buffer_maxsize 4096).
  int32_t stream_buffer_maxsize = 4096;

  // Faust's defaults: 60 s session, 3 s heartbeat, 1000 s max poll interval.
  int64_t broker_session_timeout_ms = 60000;
  int64_t broker_heartbeat_interval_ms = 3000;
  int64_t broker_max_poll_interval_ms = 1000000;
  OffsetReset consumer_auto_offset_reset = OffsetReset::kEarliest;
  AssignmentStrategy consumer_assignment_strategy = AssignmentStrategy::kRange;
  // -1 (all), 1 or 0. Faust's default is all. acks=0/1 disable idempotence.
  int producer_acks = -1;
  int64_t producer_linger_ms = 5;

  BadRecordPolicy bad_record_policy = BadRecordPolicy::kSkip;

  // Graceful stop: how long to let agents drain buffered events before committing and leaving (events not
  // drained are redelivered to the partitions' next owner).
  int64_t stop_timeout_ms = 30000;
  // A rebalance waits at most this long for in-flight events of revoked partitions to be acked before it
  // commits and gives them up (their late acks are then ignored: the next owner reprocesses them).
  int64_t rebalance_drain_timeout_ms = 10000;
  // Supervisors restart a crashing actor at most this many times within the window; beyond it the agent
  // escalates to stopping the worker (a crash loop is an outage, not something to hide).
  int32_t agent_max_restarts = 100;
  int64_t agent_restart_window_ms = 60000;
  // ask(): the default reply timeout.
  int64_t ask_timeout_ms = 30000;

  // Further librdkafka properties by name, passed to the consumers / producer (production only; the simulator
  // rejects names it does not model).
  std::map<std::string, std::string> consumer_properties;
  std::map<std::string, std::string> producer_properties;
};

// Every setting name set_setting() accepts (the snake_case names of the fields above), sorted.
[[nodiscard]] std::vector<std::string> setting_names();

// Sets one setting from text. Names as the fields above; `consumer.<prop>` and `producer.<prop>` set a
// librdkafka property. Values: integers in decimal; durations as the field's unit; enums by lower-case name
// (at_least_once|exactly_once, earliest|latest|error, range|roundrobin|cooperative-sticky, skip|dead_letter,
// all|1|0 for producer_acks). Errors: kInvalidArg naming the setting, the bad value and what is accepted.
[[nodiscard]] Status set_setting(AppSettings& settings, std::string_view name, std::string_view value);

// Applies MEPHISTO_<NAME> variables (NAME = the setting name upper-cased, e.g. MEPHISTO_ID, MEPHISTO_BROKER)
// from `environment` (name -> value, as read by the caller; no getenv here). Unknown MEPHISTO_ variables are
// an error (a typo must not be silently ignored), except the project's own tooling variables
// (MEPHISTO_KAFKA_BOOTSTRAP, MEPHISTO_SKIP_KAFKA, ... listed in settings.cpp); variables without the prefix
// are ignored.
[[nodiscard]] Status apply_environment(AppSettings& settings,
                                       const std::map<std::string, std::string>& environment);

// Checks the settings as a whole: id present and legal, broker and store URLs well-formed, numbers in range
// (heartbeat < session timeout, buffer >= 1, ...). Errors: kInvalidArg naming the setting and what to do.
// exactly_once requires producer_acks=all.
[[nodiscard]] Status validate(const AppSettings& settings);

// The commit interval in effect: broker_commit_interval_ms, except under exactly_once where Faust's default
// (2800 ms, not a choice the user made) becomes Kafka Streams' 100 ms.
[[nodiscard]] int64_t effective_commit_interval_ms(const AppSettings& settings);
// The directory rocksdb:// stores use: data_dir, or "{id}-data" when it is empty.
[[nodiscard]] std::string effective_data_dir(const AppSettings& settings);

// "kafka://a:9092,b:9092" -> "a:9092,b:9092" (librdkafka's bootstrap.servers). Each host must have a port.
// Errors: kInvalidArg naming the URL and the expected form.
[[nodiscard]] Result<std::string> bootstrap_servers(std::string_view broker_url);

}  // namespace mephisto
