// Admin over librdkafka: CreateTopics / DeleteTopics through the Admin API (each run on a helper thread with
// its own result queue), describe and list through a metadata request. librdkafka 2.0 has no DescribeTopics,
// and the metadata response carries exactly what TopicDescription needs (leader, replicas, ISR per
// partition).
#include <algorithm>
#include <array>

#include "runtime/kafka/kafka_clients.h"
#include "runtime/kafka/rd_config.h"
#include "runtime/kafka/rd_errors.h"
#include "runtime/kafka/rd_queue.h"

namespace mephisto::rd {
namespace {

// How often create/delete re-read metadata while waiting for the change to become visible.
constexpr int64_t kMetadataRecheckMs = 50;

bool is_internal_topic(const std::string& name) {
  return name.rfind("__", 0) == 0;
}

class KafkaAdmin final : public Admin {
 public:
  KafkaAdmin(EventLoop& loop, HandlePtr rk)
      : loop_(loop), rk_(std::move(rk)), main_(rd_kafka_queue_get_main(rk_.get())) {
    // Errors and logs land on the main queue; serving it keeps it from growing (admin results have their
    // own).
    rd_kafka_t* handle = rk_.get();
    watch_ = std::make_unique<QueueWatch>(loop_, main_.get(), [handle] { rd_kafka_poll(handle, 0); });
  }

  ~KafkaAdmin() override {
    watch_.reset();
    main_.reset();
  }

  Status create_topic(const TopicSpec& spec, int64_t timeout_ms) override {
    if (spec.partitions < 1) {
      return Error::of(ErrorCode::kInvalidPartitions, "topic " + spec.name + ": partitions must be >= 1");
    }
    if (spec.replication_factor < 1) {
      return Error::of(ErrorCode::kInvalidReplicationFactor,
                       "topic " + spec.name + ": replication factor must be >= 1");
    }
    const int64_t deadline_ms = loop_.clock().now_ms() + timeout_ms;
    Status created = loop_.run_blocking([&]() -> Status {
      std::array<char, 512> reason{};
      rd_kafka_NewTopic_t* topic = rd_kafka_NewTopic_new(
          spec.name.c_str(), spec.partitions, spec.replication_factor, reason.data(), reason.size());
      if (topic == nullptr)
        return Error::of(ErrorCode::kInvalidArg, "create topic " + spec.name + ": " + reason.data());
      std::unique_ptr<rd_kafka_NewTopic_t, void (*)(rd_kafka_NewTopic_t*)> owned(topic,
                                                                                 rd_kafka_NewTopic_destroy);
      for (const auto& [name, value] : spec.configs) {
        if (rd_kafka_resp_err_t err = rd_kafka_NewTopic_set_config(topic, name.c_str(), value.c_str()); err) {
          return to_error(err, "create topic " + spec.name + " config " + name);
        }
      }
      AdminOptionsPtr options = admin_options(RD_KAFKA_ADMIN_OP_CREATETOPICS, timeout_ms);
      QueuePtr results(rd_kafka_queue_new(rk_.get()));
      rd_kafka_CreateTopics(rk_.get(), &topic, 1, options.get(), results.get());
      EventPtr event(rd_kafka_queue_poll(results.get(), static_cast<int>(timeout_ms) + 1000));
      if (!event) return Error::of(ErrorCode::kTimedOut, "create topic " + spec.name + ": no answer in time");
      if (rd_kafka_event_error(event.get())) {
        return Error::of(to_code(rd_kafka_event_error(event.get())),
                         "create topic " + spec.name + ": " + rd_kafka_event_error_string(event.get()));
      }
      size_t count = 0;
      const rd_kafka_topic_result_t** topics =
          rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(event.get()), &count);
      for (size_t i = 0; i < count; ++i) {
        if (rd_kafka_resp_err_t topic_err = rd_kafka_topic_result_error(topics[i]); topic_err) {
          const char* text = rd_kafka_topic_result_error_string(topics[i]);
          return Error::of(to_code(topic_err), "create topic " + spec.name + ": " +
                                                   (text != nullptr ? text : rd_kafka_err2str(topic_err)));
        }
      }
      return {};
    });
    if (!created.ok()) return created;
    // CreateTopics answers when the controller accepted the topic; clients need its leaders in metadata.
    return wait_for_metadata(spec.name, /*present=*/true, deadline_ms);
  }

  Status delete_topic(const std::string& name, int64_t timeout_ms) override {
    const int64_t deadline_ms = loop_.clock().now_ms() + timeout_ms;
    Status deleted = loop_.run_blocking([&]() -> Status {
      rd_kafka_DeleteTopic_t* topic = rd_kafka_DeleteTopic_new(name.c_str());
      std::unique_ptr<rd_kafka_DeleteTopic_t, void (*)(rd_kafka_DeleteTopic_t*)> owned(
          topic, rd_kafka_DeleteTopic_destroy);
      AdminOptionsPtr options = admin_options(RD_KAFKA_ADMIN_OP_DELETETOPICS, timeout_ms);
      QueuePtr results(rd_kafka_queue_new(rk_.get()));
      rd_kafka_DeleteTopics(rk_.get(), &topic, 1, options.get(), results.get());
      EventPtr event(rd_kafka_queue_poll(results.get(), static_cast<int>(timeout_ms) + 1000));
      if (!event) return Error::of(ErrorCode::kTimedOut, "delete topic " + name + ": no answer in time");
      if (rd_kafka_event_error(event.get())) {
        return Error::of(to_code(rd_kafka_event_error(event.get())),
                         "delete topic " + name + ": " + rd_kafka_event_error_string(event.get()));
      }
      size_t count = 0;
      const rd_kafka_topic_result_t** topics =
          rd_kafka_DeleteTopics_result_topics(rd_kafka_event_DeleteTopics_result(event.get()), &count);
      for (size_t i = 0; i < count; ++i) {
        if (rd_kafka_resp_err_t topic_err = rd_kafka_topic_result_error(topics[i]); topic_err) {
          return to_error(topic_err, "delete topic " + name);
        }
      }
      return {};
    });
    if (!deleted.ok()) return deleted;
    return wait_for_metadata(name, /*present=*/false, deadline_ms);
  }

  Result<TopicDescription> describe_topic(const std::string& name, int64_t timeout_ms) override {
    Result<MetadataPtr> metadata = fetch_metadata(timeout_ms);
    if (!metadata.ok()) return metadata.error();
    for (int t = 0; t < (*metadata)->topic_cnt; ++t) {
      const rd_kafka_metadata_topic_t& topic = (*metadata)->topics[t];
      if (name != topic.topic) continue;
      if (topic.err) return to_error(topic.err, "describe topic " + name);
      TopicDescription description{.name = name, .partitions = {}};
      for (int p = 0; p < topic.partition_cnt; ++p) {
        const rd_kafka_metadata_partition_t& partition = topic.partitions[p];
        PartitionDescription out{
            .partition = partition.id, .leader = partition.leader, .replicas = {}, .isr = {}};
        out.replicas.assign(partition.replicas, partition.replicas + partition.replica_cnt);
        out.isr.assign(partition.isrs, partition.isrs + partition.isr_cnt);
        description.partitions.push_back(std::move(out));
      }
      std::sort(description.partitions.begin(), description.partitions.end(),
                [](const auto& a, const auto& b) { return a.partition < b.partition; });
      return description;
    }
    return Error::of(ErrorCode::kUnknownTopicOrPartition, "describe topic " + name + ": no such topic");
  }

  Result<std::vector<std::string>> list_topics(int64_t timeout_ms) override {
    Result<MetadataPtr> metadata = fetch_metadata(timeout_ms);
    if (!metadata.ok()) return metadata.error();
    std::vector<std::string> names;
    for (int t = 0; t < (*metadata)->topic_cnt; ++t) {
      const rd_kafka_metadata_topic_t& topic = (*metadata)->topics[t];
      if (topic.err == RD_KAFKA_RESP_ERR_NO_ERROR && !is_internal_topic(topic.topic))
        names.emplace_back(topic.topic);
    }
    std::sort(names.begin(), names.end());
    return names;
  }

 private:
  AdminOptionsPtr admin_options(rd_kafka_admin_op_t op, int64_t timeout_ms) {
    AdminOptionsPtr options(rd_kafka_AdminOptions_new(rk_.get(), op));
    std::array<char, 512> reason{};
    // Both bounds: the request's, and how long the broker waits for the topic change to complete before it
    // answers (valid for the create and delete operations this client uses). A value librdkafka refuses (out
    // of its range) leaves its default, which is bounded too.
    (void)rd_kafka_AdminOptions_set_request_timeout(options.get(), static_cast<int>(timeout_ms),
                                                    reason.data(), reason.size());
    (void)rd_kafka_AdminOptions_set_operation_timeout(options.get(), static_cast<int>(timeout_ms),
                                                      reason.data(), reason.size());
    return options;
  }

  // All topics' metadata, fetched on a helper thread (rd_kafka_metadata blocks).
  Result<MetadataPtr> fetch_metadata(int64_t timeout_ms) {
    return loop_.run_blocking([&]() -> Result<MetadataPtr> {
      const rd_kafka_metadata_t* metadata = nullptr;
      rd_kafka_resp_err_t err =
          rd_kafka_metadata(rk_.get(), 1, nullptr, &metadata, static_cast<int>(timeout_ms));
      if (err) return to_error(err, "metadata request");
      return MetadataPtr(metadata);
    });
  }

  // Waits until the topic is (present) or is not (!present) in metadata with a leader for every partition.
  Status wait_for_metadata(const std::string& name, bool present, int64_t deadline_ms) {
    while (true) {
      const int64_t remaining_ms = deadline_ms - loop_.clock().now_ms();
      if (remaining_ms <= 0) {
        return Error::of(
            ErrorCode::kTimedOut,
            "topic " + name + (present ? " not yet visible" : " still visible") + " in metadata");
      }
      Result<TopicDescription> description = describe_topic(name, remaining_ms);
      if (present && description.ok() && !description->partitions.empty() &&
          std::all_of(description->partitions.begin(), description->partitions.end(),
                      [](const PartitionDescription& p) { return p.leader >= 0; })) {
        return {};
      }
      if (!present && description.code() == ErrorCode::kUnknownTopicOrPartition) return {};
      loop_.wait_until_ms(loop_.clock().now_ms() + kMetadataRecheckMs);
    }
  }

  EventLoop& loop_;
  HandlePtr rk_;
  QueuePtr main_;
  std::unique_ptr<QueueWatch> watch_;
};

}  // namespace

Result<std::unique_ptr<Admin>> make_admin(EventLoop& loop, const KafkaOptions& options) {
  Result<ConfPtr> conf = build_conf(options, {{"allow.auto.create.topics", "false"}}, {});
  if (!conf.ok()) return conf.error();
  Result<HandlePtr> rk = new_handle(RD_KAFKA_PRODUCER, std::move(*conf), "admin client");
  if (!rk.ok()) return rk.error();
  return std::unique_ptr<Admin>(std::make_unique<KafkaAdmin>(loop, std::move(*rk)));
}

}  // namespace mephisto::rd
