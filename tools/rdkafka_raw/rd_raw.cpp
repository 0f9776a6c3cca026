#include "tools/rdkafka_raw/rd_raw.h"

#include <random>
#include <stdexcept>

namespace mephisto::rd_raw {
namespace {

[[noreturn]] void Fail(const std::string& what) {
  throw std::runtime_error(what);
}

void OnDelivery(rd_kafka_t*, const rd_kafka_message_t* message, void* opaque) {
  auto* count = static_cast<DeliveryCount*>(opaque);
  if (message->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
    ++count->delivered;
  } else if (count->failed++ == 0) {
    count->first_failure = rd_kafka_err2str(message->err);
  }
}

rd::AdminOptionsPtr MakeAdminOptions(rd_kafka_t* client, rd_kafka_admin_op_t op, int timeout_ms) {
  rd::AdminOptionsPtr options(rd_kafka_AdminOptions_new(client, op));
  char errstr[512];
  if (rd_kafka_AdminOptions_set_operation_timeout(options.get(), timeout_ms, errstr, sizeof errstr) ||
      rd_kafka_AdminOptions_set_request_timeout(options.get(), timeout_ms, errstr, sizeof errstr)) {
    Fail(std::string("admin options: ") + errstr);
  }
  return options;
}

// Waits for the answer to one CreateTopics or DeleteTopics request on `queue`; fails on any error.
void CheckTopicResults(rd_kafka_queue_t* queue, rd_kafka_event_type_t expected_type, size_t expected_count,
                       int timeout_ms, const std::string& what) {
  rd::EventPtr event(rd_kafka_queue_poll(queue, timeout_ms + 5'000));
  if (!event) Fail(what + ": no answer within the timeout");
  if (rd_kafka_event_type(event.get()) != expected_type) {
    Fail(what + ": unexpected event " + rd_kafka_event_name(event.get()));
  }
  if (rd_kafka_event_error(event.get())) Fail(what + ": " + rd_kafka_event_error_string(event.get()));
  size_t count = 0;
  const rd_kafka_topic_result_t** results =
      expected_type == RD_KAFKA_EVENT_CREATETOPICS_RESULT
          ? rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(event.get()), &count)
          : rd_kafka_DeleteTopics_result_topics(rd_kafka_event_DeleteTopics_result(event.get()), &count);
  if (count != expected_count) {
    Fail(what + ": expected " + std::to_string(expected_count) + " results, got " + std::to_string(count));
  }
  for (size_t i = 0; i < count; ++i) {
    if (rd_kafka_resp_err_t err = rd_kafka_topic_result_error(results[i])) {
      const char* message = rd_kafka_topic_result_error_string(results[i]);
      Fail(what + " " + rd_kafka_topic_result_name(results[i]) + ": " + rd_kafka_err2name(err) +
           (message ? std::string(": ") + message : ""));
    }
  }
}

}  // namespace

rd::ConfPtr MakeConf(const Properties& properties, ErrorCallback on_error) {
  rd::ConfPtr conf(rd_kafka_conf_new());
  char errstr[512];
  for (const auto& [name, value] : properties) {
    if (rd_kafka_conf_set(conf.get(), name.c_str(), value.c_str(), errstr, sizeof errstr) !=
        RD_KAFKA_CONF_OK) {
      Fail("librdkafka rejected " + name + "=" + value + ": " + errstr);
    }
  }
  if (on_error != nullptr) rd_kafka_conf_set_error_cb(conf.get(), on_error);
  return conf;
}

rd::HandlePtr MakeProducer(rd::ConfPtr conf) {
  char errstr[512];
  rd::HandlePtr producer(rd_kafka_new(RD_KAFKA_PRODUCER, conf.get(), errstr, sizeof errstr));
  if (!producer) Fail(std::string("creating producer: ") + errstr);
  conf.release();  // rd_kafka_new took ownership
  return producer;
}

ConsumerPtr MakeConsumer(rd::ConfPtr conf) {
  char errstr[512];
  ConsumerPtr consumer(rd_kafka_new(RD_KAFKA_CONSUMER, conf.get(), errstr, sizeof errstr));
  if (!consumer) Fail(std::string("creating consumer: ") + errstr);
  conf.release();  // rd_kafka_new took ownership
  return consumer;
}

void CountDeliveries(rd_kafka_conf_t* conf, DeliveryCount& count) {
  rd_kafka_conf_set_dr_msg_cb(conf, OnDelivery);
  rd_kafka_conf_set_opaque(conf, &count);
}

void Produce(rd_kafka_t* producer, const std::string& topic, int32_t partition, const std::string& key,
             const std::string& value) {
  for (int attempt = 0;; ++attempt) {
    rd_kafka_resp_err_t err =
        rd_kafka_producev(producer, RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_PARTITION(partition),
                          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_KEY(key.data(), key.size()),
                          RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()), RD_KAFKA_V_END);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) return;
    if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL || attempt >= 100) {
      Fail("produce " + key + ": " + rd_kafka_err2str(err));
    }
    rd_kafka_poll(producer, 100);  // serves delivery reports, which frees queue space
  }
}

void Flush(rd_kafka_t* producer, int timeout_ms) {
  if (rd_kafka_resp_err_t err = rd_kafka_flush(producer, timeout_ms)) {
    Fail(std::string("flush: ") + rd_kafka_err2str(err));
  }
}

void AssignFromBeginning(rd_kafka_t* consumer, const std::string& topic, int partitions) {
  rd::PartitionListPtr list(rd_kafka_topic_partition_list_new(partitions));
  for (int p = 0; p < partitions; ++p) {
    rd_kafka_topic_partition_list_add(list.get(), topic.c_str(), p)->offset = RD_KAFKA_OFFSET_BEGINNING;
  }
  if (rd_kafka_resp_err_t err = rd_kafka_assign(consumer, list.get())) {
    Fail(std::string("assign: ") + rd_kafka_err2str(err));
  }
}

void CreateTopics(rd_kafka_t* client, const std::vector<std::string>& names, int partitions, int timeout_ms) {
  std::vector<rd::NewTopicPtr> owned;
  std::vector<rd_kafka_NewTopic_t*> topics;
  for (const std::string& name : names) {
    char errstr[512];
    owned.emplace_back(rd_kafka_NewTopic_new(name.c_str(), partitions, 1, errstr, sizeof errstr));
    if (!owned.back()) Fail("NewTopic " + name + ": " + errstr);
    topics.push_back(owned.back().get());
  }
  rd::AdminOptionsPtr options = MakeAdminOptions(client, RD_KAFKA_ADMIN_OP_CREATETOPICS, timeout_ms);
  rd::QueuePtr queue(rd_kafka_queue_new(client));
  rd_kafka_CreateTopics(client, topics.data(), topics.size(), options.get(), queue.get());
  CheckTopicResults(queue.get(), RD_KAFKA_EVENT_CREATETOPICS_RESULT, names.size(), timeout_ms,
                    "CreateTopics");
}

void DeleteTopics(rd_kafka_t* client, const std::vector<std::string>& names, int timeout_ms) {
  std::vector<rd::DeleteTopicPtr> owned;
  std::vector<rd_kafka_DeleteTopic_t*> topics;
  for (const std::string& name : names) {
    owned.emplace_back(rd_kafka_DeleteTopic_new(name.c_str()));
    topics.push_back(owned.back().get());
  }
  rd::AdminOptionsPtr options = MakeAdminOptions(client, RD_KAFKA_ADMIN_OP_DELETETOPICS, timeout_ms);
  rd::QueuePtr queue(rd_kafka_queue_new(client));
  rd_kafka_DeleteTopics(client, topics.data(), topics.size(), options.get(), queue.get());
  CheckTopicResults(queue.get(), RD_KAFKA_EVENT_DELETETOPICS_RESULT, names.size(), timeout_ms,
                    "DeleteTopics");
}

std::string Text(const void* data, size_t size) {
  return data ? std::string(static_cast<const char*>(data), size) : std::string();
}

std::string RandomSuffix() {
  static std::mt19937_64 generator{std::random_device{}()};
  static constexpr char kHex[] = "0123456789abcdef";
  std::string suffix;
  for (int i = 0; i < 12; ++i) suffix += kHex[generator() % 16];
  return suffix;
}

}  // namespace mephisto::rd_raw
