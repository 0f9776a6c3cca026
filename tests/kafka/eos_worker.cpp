// kafka_eos_worker: the consume-transform-produce loop of exactly-once stream processing, written against
// Mephisto's production binding (the seam's Producer and Consumer from KafkaBrokerClient, on fibers of the
// EventLoop), for eos_crash_test.cpp, which kills it with SIGKILL at random points and restarts it.
//
// Per poll: begin_transaction; one output record per input record (same key, same partition, value "out:" +
// the input's value, header "src" = "<partition>:<offset>" of the input); send_offsets_to_transaction (the
// next offset of every partition in the batch, with the consumer's group metadata); commit_transaction. An
// abortable error aborts the transaction and seeks the batch's partitions back to its first offsets, so the
// batch is processed again; a fatal error (a fenced producer above all) ends the process with exit code 3.
//
// Usage:
//   kafka_eos_worker --bootstrap HOST:PORT --input TOPIC --output TOPIC --group GROUP --transactional-id ID
//   options:
//     --group-instance-id ID        static membership: a restart takes over its predecessor's assignment
//     --assignor NAME               range (default), roundrobin or cooperative-sticky
//     --commit-delay-ms N           wait between the flushed records and commit_transaction (default 0), so
//                                   a kill can land inside an open transaction whose records are in the log
//     --max-poll-records N          records per transaction at most (default 200)
//     --session-timeout-ms N        (default 10000)
//     --transaction-timeout-ms N    (default 30000)
//     --idle-exit-ms N              exit 0 after N ms with partitions assigned and no input (default: never)
//     --log-every N                 print every Nth "committed" line (default 1; the driver needs them all)
//     --kafka-property NAME=VALUE   a librdkafka property for every client, e.g. debug=eos,cgrp (repeatable)
//
// Standard output, one line per event, flushed at once (the driver times its kills by these lines):
//   initialised                     init_transactions succeeded
//   subscribed
//   assigned|revoked|lost <tps>     rebalance callbacks
//   produced <n>                    n records sent and flushed, offsets added: the transaction is open
//   committing <n>                  commit_transaction is being called (no such line: it was not called)
//   committed <n> total <records>   commit_transaction succeeded
//   aborted <n> <reason>            the transaction was aborted and the batch will be read again
//   stopping <reason>               a clean exit follows (SIGTERM, SIGINT, --idle-exit-ms)
//   error <what>: <error>           a failure; the exit code follows if it is one the loop cannot handle
//
// Exit codes: 0 clean stop; 2 bad usage or configuration; 3 fatal client error (fenced, or fatal per
// librdkafka); 4 an unexpected error the loop does not handle.

#include <algorithm>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "runtime/kafka/kafka_broker_client.h"
#include "runtime/loop/event_loop.h"
#include "runtime/seam/broker_client.h"
#include "tests/kafka/cli_args.h"

namespace mephisto {
namespace {

constexpr int kExitOk = 0;
constexpr int kExitUsage = 2;
constexpr int kExitFatal = 3;
constexpr int kExitUnexpected = 4;

// Bounds on the waits of the transactional calls: a broker that does not answer within them is a failure, and
// the driver's own deadlines catch a worker that hangs anyway.
constexpr int64_t kCallTimeoutMs = 30'000;
// Retriable errors (coordinator moving, request timeouts) are retried this many times before giving up.
constexpr int kMaxAttempts = 10;
// Consecutive poll errors tolerated before the worker gives up (a transient broker problem clears far
// sooner).
constexpr int kMaxConsecutivePollErrors = 100;

volatile std::sig_atomic_t g_stop_signal = 0;

extern "C" void OnStopSignal(int signal_number) {
  g_stop_signal = signal_number;
}

struct WorkerOptions {
  std::string bootstrap;
  std::string input_topic;
  std::string output_topic;
  std::string group;
  std::string transactional_id;
  std::optional<std::string> group_instance_id;
  AssignmentStrategy assignor = AssignmentStrategy::kRange;
  int64_t commit_delay_ms = 0;
  int32_t max_poll_records = 200;
  int64_t session_timeout_ms = 10'000;
  int64_t transaction_timeout_ms = 30'000;
  int64_t idle_exit_ms = 0;
  int64_t log_every = 1;
  int64_t poll_timeout_ms = 200;
  std::map<std::string, std::string> kafka_properties;  // librdkafka properties, e.g. debug=eos,cgrp
};

// One line on stdout. stdout is line-buffered (set in main), so each line reaches the driver's pipe as soon
// as it is printed: a line the driver has not seen was not printed.
template <typename... Parts>
void Say(const Parts&... parts) {
  std::ostringstream line;
  (line << ... << parts);
  std::printf("%s\n", line.str().c_str());
}

// Code, message and the flags the loop acts on (retriable, fatal, txn requires abort).
std::string Describe(const Error& error) {
  return error.to_string();
}

std::string Join(const std::vector<TopicPartition>& partitions) {
  std::ostringstream text;
  for (size_t i = 0; i < partitions.size(); ++i) text << (i == 0 ? "" : ",") << partitions[i];
  return partitions.empty() ? "-" : text.str();
}

// Fatal per the seam's contract: the client is unusable and only a new instance can continue.
bool IsFatal(const Error& error) {
  return error.fatal || error.code == ErrorCode::kFatal || error.code == ErrorCode::kProducerFenced ||
         error.code == ErrorCode::kFenced || error.code == ErrorCode::kFencedInstanceId;
}

// Repeats `call` while it fails with an error that is retriable and neither fatal nor requiring an abort:
// what librdkafka documents for init_transactions, send_offsets_to_transaction, commit_transaction and
// abort_transaction.
template <typename Call>
Status RetryRetriable(const char* what, Call call) {
  for (int attempt = 1;; ++attempt) {
    Status status = call();
    if (status.ok()) return status;
    const Error& error = status.error();
    if (!error.retriable || IsFatal(error) || error.txn_requires_abort || attempt >= kMaxAttempts) {
      return status;
    }
    std::fprintf(stderr, "eos_worker: %s attempt %d: %s; retrying\n", what, attempt, Describe(error).c_str());
  }
}

// Delivery reports of one transaction. Shared with the callbacks, which may outlive the transaction: the
// reports of records purged by an abort can arrive after abort_transaction has returned.
struct DeliveryTally {
  int64_t delivered = 0;
  int64_t failed = 0;
  std::string first_failure;
};

enum class Outcome { kCommitted, kAborted, kFatal, kUnexpected };

class Worker final : public RebalanceListener {
 public:
  Worker(EventLoop& loop, BrokerClient& broker, WorkerOptions options)
      : loop_(loop), broker_(broker), options_(std::move(options)) {}

  // Runs in a fiber until stopped or failed; returns the process's exit code.
  int Run() {
    if (int code = Connect(); code != kExitOk) return code;
    int64_t last_input_ms = loop_.clock().now_ms();
    int consecutive_poll_errors = 0;
    // Unbounded by design: the worker runs until the driver kills or stops it, or until --idle-exit-ms.
    for (;;) {
      if (g_stop_signal != 0) return Stop(g_stop_signal == SIGTERM ? "sigterm" : "signal");
      Result<std::vector<ConsumerRecord>> polled = consumer_->poll(options_.poll_timeout_ms);
      if (!polled.ok()) {
        Say("error poll: ", Describe(polled.error()));
        if (IsFatal(polled.error())) return Close(kExitFatal);
        if (++consecutive_poll_errors >= kMaxConsecutivePollErrors) return Close(kExitUnexpected);
        continue;
      }
      consecutive_poll_errors = 0;
      std::vector<ConsumerRecord> batch = std::move(polled).value();
      const int64_t now_ms = loop_.clock().now_ms();
      if (batch.empty()) {
        if (assignment_changed_) last_input_ms = now_ms;  // idleness counts from the latest assignment
        assignment_changed_ = false;
        if (options_.idle_exit_ms > 0 && !consumer_->assignment().empty() &&
            now_ms - last_input_ms >= options_.idle_exit_ms) {
          return Stop("idle");
        }
        continue;
      }
      last_input_ms = now_ms;
      switch (Transact(batch)) {
        case Outcome::kCommitted:
        case Outcome::kAborted:
          break;
        case Outcome::kFatal:
          return Close(kExitFatal);
        case Outcome::kUnexpected:
          return Close(kExitUnexpected);
      }
    }
  }

  // --- RebalanceListener: runs inside poll(), which this loop never calls with a transaction open. Should
  // that change, records of a revoked partition must not commit (its new owner reads them again from the
  // committed offset), so the open transaction is marked for abort.
  void on_partitions_assigned(const std::vector<TopicPartition>& partitions) override {
    assignment_changed_ = true;
    Say("assigned ", Join(partitions));
  }
  void on_partitions_revoked(const std::vector<TopicPartition>& partitions) override {
    assignment_changed_ = true;
    if (in_transaction_) abort_requested_ = true;
    Say("revoked ", Join(partitions));
  }
  void on_partitions_lost(const std::vector<TopicPartition>& partitions) override {
    assignment_changed_ = true;
    if (in_transaction_) abort_requested_ = true;
    Say("lost ", Join(partitions));
  }

 private:
  // The producer first: init_transactions fences a predecessor with the same transactional id and aborts its
  // open transaction, whose pending offset commit would otherwise hold up the consumer's committed-offset
  // fetch (read_committed asks for stable offsets) until the transaction timed out.
  int Connect() {
    ProducerConfig producer_config;
    producer_config.client_id = "eos-worker-producer";
    producer_config.transactional_id = options_.transactional_id;
    producer_config.transaction_timeout_ms = options_.transaction_timeout_ms;
    Result<std::unique_ptr<Producer>> producer = broker_.producer(producer_config);
    if (!producer.ok()) {
      Say("error producer: ", Describe(producer.error()));
      return kExitUsage;
    }
    producer_ = std::move(producer).value();
    Status initialised =
        RetryRetriable("init_transactions", [&] { return producer_->init_transactions(kCallTimeoutMs); });
    if (!initialised.ok()) {
      Say("error init_transactions: ", Describe(initialised.error()));
      return IsFatal(initialised.error()) ? kExitFatal : kExitUnexpected;
    }
    Say("initialised");

    ConsumerConfig consumer_config;
    consumer_config.group_id = options_.group;
    consumer_config.client_id = "eos-worker-consumer";
    consumer_config.group_instance_id = options_.group_instance_id;
    consumer_config.isolation_level = IsolationLevel::kReadCommitted;
    consumer_config.auto_offset_reset = OffsetReset::kEarliest;
    consumer_config.assignment_strategy = options_.assignor;
    consumer_config.session_timeout_ms = options_.session_timeout_ms;
    consumer_config.heartbeat_interval_ms = std::max<int64_t>(options_.session_timeout_ms / 10, 100);
    consumer_config.max_poll_records = options_.max_poll_records;
    consumer_config.enable_auto_commit = false;
    Result<std::unique_ptr<Consumer>> consumer = broker_.consumer(consumer_config);
    if (!consumer.ok()) {
      Say("error consumer: ", Describe(consumer.error()));
      return kExitUsage;
    }
    consumer_ = std::move(consumer).value();
    if (Status subscribed = consumer_->subscribe({options_.input_topic}, this); !subscribed.ok()) {
      Say("error subscribe: ", Describe(subscribed.error()));
      return kExitUnexpected;
    }
    Say("subscribed");
    return kExitOk;
  }

  // One consume-transform-produce transaction over `batch`.
  Outcome Transact(const std::vector<ConsumerRecord>& batch) {
    // Where each partition of the batch starts (to rewind to on abort) and the offsets to commit with it.
    std::map<TopicPartition, int64_t> first_offsets;
    std::map<TopicPartition, int64_t> next_offsets;
    for (const ConsumerRecord& record : batch) {
      TopicPartition tp{record.topic, record.partition};
      first_offsets.emplace(tp, record.offset);
      next_offsets[tp] = record.offset + 1;
    }
    const auto records = static_cast<int64_t>(batch.size());

    if (Status begun = producer_->begin_transaction(); !begun.ok()) {
      Say("error begin_transaction: ", Describe(begun.error()));
      return IsFatal(begun.error()) ? Outcome::kFatal : Outcome::kUnexpected;
    }
    in_transaction_ = true;
    abort_requested_ = false;

    auto tally = std::make_shared<DeliveryTally>();
    for (const ConsumerRecord& record : batch) {
      ProducerRecord out;
      out.topic = options_.output_topic;
      // The input's partition: output partition p then holds exactly input partition p's records, in order,
      // which lets the driver check order as well as exactly-once.
      out.partition = record.partition;
      out.key = record.key;
      out.value = "out:" + record.value.value_or("");
      out.headers.push_back({"src", std::to_string(record.partition) + ":" + std::to_string(record.offset)});
      Status sent = producer_->send(std::move(out), [tally](const Result<RecordMetadata>& report) {
        if (report.ok()) {
          ++tally->delivered;
        } else if (tally->failed++ == 0) {
          tally->first_failure = Describe(report.error());
        }
      });
      if (!sent.ok()) return AbortAndRewind(records, "send", sent.error(), first_offsets);
    }
    // Flushed before the "produced" line, so that a kill after it leaves records of an open transaction in
    // the log (which read_uncommitted shows and read_committed must not).
    if (Status flushed = producer_->flush(kCallTimeoutMs); !flushed.ok()) {
      return AbortAndRewind(records, "flush", flushed.error(), first_offsets);
    }
    if (tally->failed > 0) {
      return AbortAndRewind(records, "delivery", Error::of(ErrorCode::kFail, tally->first_failure),
                            first_offsets);
    }
    if (tally->delivered != records) {
      Say("error flush: ", tally->delivered, " of ", records, " delivery reports after a successful flush");
      return Outcome::kUnexpected;
    }
    const GroupMetadata group = consumer_->group_metadata();
    Status offsets_sent = RetryRetriable("send_offsets_to_transaction", [&] {
      return producer_->send_offsets_to_transaction(next_offsets, group, kCallTimeoutMs);
    });
    if (!offsets_sent.ok()) {
      return AbortAndRewind(records, "send_offsets_to_transaction", offsets_sent.error(), first_offsets);
    }
    Say("produced ", records);

    if (options_.commit_delay_ms > 0) loop_.wait_until_ms(loop_.clock().now_ms() + options_.commit_delay_ms);
    if (abort_requested_) {
      return AbortAndRewind(records, "revoked", Error::of(ErrorCode::kState, "partitions revoked"),
                            first_offsets);
    }

    Say("committing ", records);
    Status committed =
        RetryRetriable("commit_transaction", [&] { return producer_->commit_transaction(kCallTimeoutMs); });
    if (!committed.ok()) {
      return AbortAndRewind(records, "commit_transaction", committed.error(), first_offsets);
    }
    in_transaction_ = false;
    total_committed_ += records;
    if (++commits_ % options_.log_every == 0) Say("committed ", records, " total ", total_committed_);
    return Outcome::kCommitted;
  }

  // Aborts the open transaction after `error` (unless it is fatal) and rewinds the batch's partitions, so the
  // next poll returns the batch again.
  Outcome AbortAndRewind(int64_t records, const char* what, const Error& error,
                         const std::map<TopicPartition, int64_t>& first_offsets) {
    Say("error ", what, ": ", Describe(error));
    if (IsFatal(error)) return Outcome::kFatal;
    Status aborted =
        RetryRetriable("abort_transaction", [&] { return producer_->abort_transaction(kCallTimeoutMs); });
    if (!aborted.ok()) {
      Say("error abort_transaction: ", Describe(aborted.error()));
      return IsFatal(aborted.error()) ? Outcome::kFatal : Outcome::kUnexpected;
    }
    in_transaction_ = false;
    for (const auto& [tp, offset] : first_offsets) {
      // kState: the partition was revoked meanwhile; its next owner starts from the committed offset anyway.
      if (Status sought = consumer_->seek(tp, offset); !sought.ok()) {
        Say("error seek ", tp, " ", offset, ": ", Describe(sought.error()));
        if (sought.code() != ErrorCode::kState) return Outcome::kUnexpected;
      }
    }
    Say("aborted ", records, " ", what);
    return Outcome::kAborted;
  }

  int Stop(const char* reason) {
    Say("stopping ", reason);
    return Close(kExitOk);
  }

  int Close(int exit_code) {
    if (consumer_ != nullptr) {
      if (Status closed = consumer_->close(); !closed.ok()) {
        Say("error close: ", Describe(closed.error()));
        if (exit_code == kExitOk) exit_code = kExitUnexpected;
      }
    }
    return exit_code;
  }

  EventLoop& loop_;
  BrokerClient& broker_;
  const WorkerOptions options_;
  std::unique_ptr<Producer> producer_;
  std::unique_ptr<Consumer> consumer_;
  bool in_transaction_ = false;
  bool abort_requested_ = false;
  bool assignment_changed_ = false;
  int64_t commits_ = 0;
  int64_t total_committed_ = 0;
};

[[noreturn]] void Usage(const std::string& problem) {
  std::fprintf(stderr,
               "kafka_eos_worker: %s\n"
               "usage: kafka_eos_worker --bootstrap HOST:PORT --input TOPIC --output TOPIC --group GROUP\n"
               "         --transactional-id ID [--group-instance-id ID] [--assignor range|roundrobin|"
               "cooperative-sticky]\n"
               "         [--commit-delay-ms N] [--max-poll-records N] [--session-timeout-ms N]\n"
               "         [--transaction-timeout-ms N] [--idle-exit-ms N] [--log-every N]\n"
               "         [--kafka-property NAME=VALUE]...\n",
               problem.c_str());
  std::exit(kExitUsage);
}

int64_t ParseInt(const std::string& name, const std::string& text, int64_t min) {
  return mephisto::kafka_test::ParseInt(name, text, min, Usage);
}

WorkerOptions ParseArgs(int argc, char** argv) {
  WorkerOptions options;
  mephisto::kafka_test::ForEachOption(
      argc, argv, Usage, [&](const std::string& name, const std::string& value) {
        if (name == "--bootstrap") {
          options.bootstrap = value;
        } else if (name == "--input") {
          options.input_topic = value;
        } else if (name == "--output") {
          options.output_topic = value;
        } else if (name == "--group") {
          options.group = value;
        } else if (name == "--transactional-id") {
          options.transactional_id = value;
        } else if (name == "--group-instance-id") {
          options.group_instance_id = value;
        } else if (name == "--assignor") {
          if (value == "range") {
            options.assignor = AssignmentStrategy::kRange;
          } else if (value == "roundrobin") {
            options.assignor = AssignmentStrategy::kRoundRobin;
          } else if (value == "cooperative-sticky") {
            options.assignor = AssignmentStrategy::kCooperativeSticky;
          } else {
            Usage("unknown assignor '" + value + "'");
          }
        } else if (name == "--commit-delay-ms") {
          options.commit_delay_ms = ParseInt(name, value, 0);
        } else if (name == "--max-poll-records") {
          options.max_poll_records = static_cast<int32_t>(ParseInt(name, value, 1));
        } else if (name == "--session-timeout-ms") {
          options.session_timeout_ms = ParseInt(name, value, 1);
        } else if (name == "--transaction-timeout-ms") {
          options.transaction_timeout_ms = ParseInt(name, value, 1);
        } else if (name == "--idle-exit-ms") {
          options.idle_exit_ms = ParseInt(name, value, 0);
        } else if (name == "--log-every") {
          options.log_every = ParseInt(name, value, 1);
        } else if (name == "--kafka-property") {
          const size_t equals = value.find('=');
          if (equals == std::string::npos || equals == 0) Usage("--kafka-property needs NAME=VALUE");
          options.kafka_properties[value.substr(0, equals)] = value.substr(equals + 1);
        } else {
          Usage("unknown argument '" + name + "'");
        }
      });
  if (options.bootstrap.empty() || options.input_topic.empty() || options.output_topic.empty() ||
      options.group.empty() || options.transactional_id.empty()) {
    Usage("--bootstrap, --input, --output, --group and --transactional-id are required");
  }
  return options;
}

int Main(int argc, char** argv) {
  const WorkerOptions options = ParseArgs(argc, argv);
  // Line-buffered even into a pipe: the driver times its kills by these lines.
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  std::signal(SIGTERM, OnStopSignal);
  std::signal(SIGINT, OnStopSignal);

  EventLoop loop;
  KafkaBrokerClient broker(loop, KafkaOptions{options.bootstrap, options.kafka_properties});
  if (Status valid = broker.check_config(); !valid.ok()) {
    Say("error config: ", Describe(valid.error()));
    return kExitUsage;
  }
  int exit_code = kExitUnexpected;
  loop.spawn("eos-worker", [&] {
    Worker worker(loop, broker, options);
    exit_code = worker.Run();
  });
  try {
    loop.run();
  } catch (const std::exception& error) {
    Say("error exception: ", error.what());
    return kExitUnexpected;
  }
  return exit_code;
}

}  // namespace
}  // namespace mephisto

int main(int argc, char** argv) {
  return mephisto::Main(argc, argv);
}
