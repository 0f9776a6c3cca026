#include "runtime/app/app.h"

namespace mephisto {

namespace {
const char* supervisor_name(SupervisorStrategy strategy) {
  switch (strategy) {
    case SupervisorStrategy::kOneForOne:
      return "one_for_one";
    case SupervisorStrategy::kOneForAll:
      return "one_for_all";
    case SupervisorStrategy::kCrashing:
      return "crashing";
  }
  return "?";
}
}  // namespace

std::vector<AgentInfo> App::agents() const {
  std::vector<AgentInfo> out;
  for (const auto& agent : engine_->agents()) {
    AgentInfo info{agent->name,
                   agent->source->name,
                   agent->concurrency,
                   supervisor_name(agent->supervisor),
                   agent->sink_names,
                   agent->description,
                   {}};
    for (const auto& [topic, _] : agent->relays) info.relays.push_back(topic);
    out.push_back(std::move(info));
  }
  return out;
}

std::vector<TopicInfo> App::topics() const {
  std::vector<TopicInfo> out;
  for (const auto& topic : engine_->topics()) {
    out.push_back(TopicInfo{topic->name, topic->internal, topic->in_memory,
                            topic->partitions > 0 ? topic->partitions : engine_->settings().topic_partitions,
                            topic->key_codec, topic->value_codec});
  }
  return out;
}

std::vector<TableInfo> App::tables() const {
  std::vector<TableInfo> out;
  for (const auto& table : engine_->tables().tables()) {
    const char* kind = table->kind == app_internal::TableKind::kGlobal ? "global"
                       : table->kind == app_internal::TableKind::kSet  ? "set"
                                                                       : "table";
    out.push_back(TableInfo{table->name, kind, table->changelog,
                            table->source != nullptr ? table->source->name : std::string(), table->help});
  }
  return out;
}

}  // namespace mephisto
