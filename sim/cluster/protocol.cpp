#include "sim/cluster/protocol.h"

#include <cassert>
#include <type_traits>

namespace mephisto::sim {

std::string_view api_name(ApiKey key) {
  switch (key) {
    case ApiKey::kProduce: return "Produce";
    case ApiKey::kFetch: return "Fetch";
    case ApiKey::kListOffsets: return "ListOffsets";
    case ApiKey::kMetadata: return "Metadata";
    case ApiKey::kOffsetCommit: return "OffsetCommit";
    case ApiKey::kOffsetFetch: return "OffsetFetch";
    case ApiKey::kFindCoordinator: return "FindCoordinator";
    case ApiKey::kJoinGroup: return "JoinGroup";
    case ApiKey::kHeartbeat: return "Heartbeat";
    case ApiKey::kLeaveGroup: return "LeaveGroup";
    case ApiKey::kSyncGroup: return "SyncGroup";
    case ApiKey::kCreateTopics: return "CreateTopics";
    case ApiKey::kDeleteTopics: return "DeleteTopics";
    case ApiKey::kInitProducerId: return "InitProducerId";
    case ApiKey::kAddPartitionsToTxn: return "AddPartitionsToTxn";
    case ApiKey::kAddOffsetsToTxn: return "AddOffsetsToTxn";
    case ApiKey::kEndTxn: return "EndTxn";
    case ApiKey::kTxnOffsetCommit: return "TxnOffsetCommit";
  }
  return "Unknown";
}

RecordBatch make_batch(std::vector<Record> records) {
  assert(!records.empty() && "a record batch holds at least one record");
  RecordBatch batch;
  int64_t max_timestamp_ms = -1;
  for (size_t i = 0; i < records.size(); ++i) {
    records[i].offset_delta = static_cast<int32_t>(i);
    if (records[i].timestamp_ms > max_timestamp_ms) max_timestamp_ms = records[i].timestamp_ms;
  }
  batch.last_offset_delta = static_cast<int32_t>(records.size() - 1);
  batch.max_timestamp_ms = max_timestamp_ms;
  batch.records = std::make_shared<const std::vector<Record>>(std::move(records));
  return batch;
}

int32_t batch_size_bytes(const RecordBatch& batch) {
  // Kafka v2: 61 bytes of batch header; per record a length, attributes, timestamp and offset deltas and the
  // key/value/header lengths as varints (~10 bytes when small), then the bytes themselves.
  int64_t size_bytes = 61;
  if (batch.records) {
    for (const Record& record : *batch.records) {
      size_bytes += 10;
      if (record.key) size_bytes += static_cast<int64_t>(record.key->size());
      if (record.value) size_bytes += static_cast<int64_t>(record.value->size());
      for (const Header& header : record.headers) {
        size_bytes += 2 + static_cast<int64_t>(header.key.size());
        if (header.value) size_bytes += static_cast<int64_t>(header.value->size());
      }
    }
  }
  return size_bytes > INT32_MAX ? INT32_MAX : static_cast<int32_t>(size_bytes);
}

ApiKey api_key(const Request& request) {
  return std::visit(
      [](const auto& r) -> ApiKey {
        using T = std::decay_t<decltype(r)>;
        if constexpr (std::is_same_v<T, MetadataRequest>) return ApiKey::kMetadata;
        else if constexpr (std::is_same_v<T, CreateTopicsRequest>) return ApiKey::kCreateTopics;
        else if constexpr (std::is_same_v<T, DeleteTopicsRequest>) return ApiKey::kDeleteTopics;
        else if constexpr (std::is_same_v<T, ProduceRequest>) return ApiKey::kProduce;
        else if constexpr (std::is_same_v<T, FetchRequest>) return ApiKey::kFetch;
        else if constexpr (std::is_same_v<T, ListOffsetsRequest>) return ApiKey::kListOffsets;
        else if constexpr (std::is_same_v<T, FindCoordinatorRequest>) return ApiKey::kFindCoordinator;
        else if constexpr (std::is_same_v<T, InitProducerIdRequest>) return ApiKey::kInitProducerId;
        else if constexpr (std::is_same_v<T, AddPartitionsToTxnRequest>) return ApiKey::kAddPartitionsToTxn;
        else if constexpr (std::is_same_v<T, AddOffsetsToTxnRequest>) return ApiKey::kAddOffsetsToTxn;
        else if constexpr (std::is_same_v<T, EndTxnRequest>) return ApiKey::kEndTxn;
        else if constexpr (std::is_same_v<T, TxnOffsetCommitRequest>) return ApiKey::kTxnOffsetCommit;
        else if constexpr (std::is_same_v<T, JoinGroupRequest>) return ApiKey::kJoinGroup;
        else if constexpr (std::is_same_v<T, SyncGroupRequest>) return ApiKey::kSyncGroup;
        else if constexpr (std::is_same_v<T, HeartbeatRequest>) return ApiKey::kHeartbeat;
        else if constexpr (std::is_same_v<T, LeaveGroupRequest>) return ApiKey::kLeaveGroup;
        else if constexpr (std::is_same_v<T, OffsetCommitRequest>) return ApiKey::kOffsetCommit;
        else {
          static_assert(std::is_same_v<T, OffsetFetchRequest>, "every request type has an api key");
          return ApiKey::kOffsetFetch;
        }
      },
      request);
}

namespace {

std::vector<PartitionError> partition_errors(const std::vector<OffsetAndMetadata>& offsets, ErrorCode error) {
  std::vector<PartitionError> out;
  out.reserve(offsets.size());
  for (const auto& o : offsets) out.push_back({o.tp, error});
  return out;
}

std::vector<TopicError> topic_errors(const std::vector<std::string>& names, ErrorCode error) {
  std::vector<TopicError> out;
  out.reserve(names.size());
  for (const auto& name : names) out.push_back({name, error, std::string(error_name(error))});
  return out;
}

}  // namespace

Response error_response(const Request& request, ErrorCode error) {
  return std::visit(
      [error](const auto& r) -> Response {
        using T = std::decay_t<decltype(r)>;
        if constexpr (std::is_same_v<T, MetadataRequest>) {
          MetadataResponse out;
          if (r.topics) {
            for (const auto& name : *r.topics) out.topics.push_back({error, name, false, {}});
          }
          return out;
        } else if constexpr (std::is_same_v<T, CreateTopicsRequest>) {
          std::vector<std::string> names;
          for (const auto& t : r.topics) names.push_back(t.name);
          return CreateTopicsResponse{topic_errors(names, error)};
        } else if constexpr (std::is_same_v<T, DeleteTopicsRequest>) {
          return DeleteTopicsResponse{topic_errors(r.topics, error)};
        } else if constexpr (std::is_same_v<T, ProduceRequest>) {
          ProduceResponse out;
          for (const auto& p : r.partitions) {
            ProduceResponse::PartitionResult result;
            result.tp = p.tp;
            result.error = error;
            out.partitions.push_back(std::move(result));
          }
          return out;
        } else if constexpr (std::is_same_v<T, FetchRequest>) {
          FetchResponse out;
          for (const auto& p : r.partitions) {
            FetchResponse::PartitionData data;
            data.tp = p.tp;
            data.error = error;
            out.partitions.push_back(std::move(data));
          }
          return out;
        } else if constexpr (std::is_same_v<T, ListOffsetsRequest>) {
          ListOffsetsResponse out;
          for (const auto& p : r.partitions) {
            ListOffsetsResponse::PartitionResult result;
            result.tp = p.tp;
            result.error = error;
            out.partitions.push_back(std::move(result));
          }
          return out;
        } else if constexpr (std::is_same_v<T, FindCoordinatorRequest>) {
          return FindCoordinatorResponse{error, kNoBroker};
        } else if constexpr (std::is_same_v<T, InitProducerIdRequest>) {
          return InitProducerIdResponse{error, -1, -1};
        } else if constexpr (std::is_same_v<T, AddPartitionsToTxnRequest>) {
          AddPartitionsToTxnResponse out;
          for (const auto& tp : r.partitions) out.partitions.push_back({tp, error});
          return out;
        } else if constexpr (std::is_same_v<T, AddOffsetsToTxnRequest>) {
          return AddOffsetsToTxnResponse{error};
        } else if constexpr (std::is_same_v<T, EndTxnRequest>) {
          return EndTxnResponse{error};
        } else if constexpr (std::is_same_v<T, TxnOffsetCommitRequest>) {
          return TxnOffsetCommitResponse{partition_errors(r.offsets, error)};
        } else if constexpr (std::is_same_v<T, JoinGroupRequest>) {
          JoinGroupResponse out;
          out.error = error;
          out.member_id = r.member_id;
          return out;
        } else if constexpr (std::is_same_v<T, SyncGroupRequest>) {
          SyncGroupResponse out;
          out.error = error;
          return out;
        } else if constexpr (std::is_same_v<T, HeartbeatRequest>) {
          return HeartbeatResponse{error};
        } else if constexpr (std::is_same_v<T, LeaveGroupRequest>) {
          LeaveGroupResponse out;
          out.error = error;
          return out;
        } else if constexpr (std::is_same_v<T, OffsetCommitRequest>) {
          return OffsetCommitResponse{partition_errors(r.offsets, error)};
        } else {
          static_assert(std::is_same_v<T, OffsetFetchRequest>);
          OffsetFetchResponse out;
          out.error = error;
          return out;
        }
      },
      request);
}

ErrorCode first_error(const Response& response) {
  return std::visit(
      [](const auto& r) -> ErrorCode {
        using T = std::decay_t<decltype(r)>;
        if constexpr (requires { r.error; }) {
          if (r.error != ErrorCode::kNone) return r.error;
        }
        if constexpr (requires { r.partitions; }) {
          for (const auto& p : r.partitions) {
            if constexpr (requires { p.error; }) {
              if (p.error != ErrorCode::kNone) return p.error;
            }
          }
        }
        if constexpr (requires { r.topics; }) {
          for (const auto& t : r.topics) {
            if (t.error != ErrorCode::kNone) return t.error;
          }
        }
        if constexpr (requires { r.members; } && std::is_same_v<T, LeaveGroupResponse>) {
          for (const auto& m : r.members) {
            if (m.error != ErrorCode::kNone) return m.error;
          }
        }
        return ErrorCode::kNone;
      },
      response);
}

}  // namespace mephisto::sim
