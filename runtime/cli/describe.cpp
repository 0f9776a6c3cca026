// `agents`, `topics` and `apps`: what a definition declares, printed as tables. Only the definition is needed
// (an App is built and defined, never run), so these work without a broker.
#include <algorithm>
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "runtime/cli/commands.h"

namespace mephisto::cli {
namespace {

using Row = std::vector<std::string>;

// Columns padded to their widest cell; the last column is not padded (descriptions may be long).
void print_table(const Row& header, const std::vector<Row>& rows) {
  std::vector<size_t> widths(header.size(), 0);
  auto measure = [&](const Row& row) {
    for (size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
  };
  measure(header);
  for (const auto& row : rows) measure(row);
  auto print_row = [&](const Row& row) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      if (i + 1 == row.size()) {
        line += row[i];
      } else {
        line += fmt::format("{:<{}}  ", row[i], widths[i]);
      }
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    fmt::print("{}\n", line);
  };
  print_row(header);
  for (const auto& row : rows) print_row(row);
}

std::string or_dash(const std::string& text) {
  return text.empty() ? "-" : text;
}

// An App with the definition's settings (defaults, then the environment) and its declarations made.
struct DefinedApp {
  std::unique_ptr<App> app;
  std::string error;
};
DefinedApp define(const std::vector<AppDefinition>& apps, const std::string& name) {
  auto definition = find_app(apps, name);
  if (!definition.ok()) return {nullptr, definition.error().message};
  auto settings = settings_from({definition.value(), process_environment(), {}, {}});
  if (!settings.ok()) return {nullptr, settings.error().message};
  auto app = std::make_unique<App>(settings.value().settings);
  if (definition.value()->define) definition.value()->define(*app);
  return {std::move(app), {}};
}

}  // namespace

int print_agents(const std::vector<AppDefinition>& apps, const std::string& name) {
  DefinedApp defined = define(apps, name);
  if (defined.app == nullptr) {
    print_error(defined.error);
    return kExitUsage;
  }
  std::vector<Row> rows;
  for (const auto& agent : defined.app->agents()) {
    rows.push_back({agent.name, agent.topic, std::to_string(agent.concurrency), or_dash(agent.supervisor),
                    agent.sinks.empty() ? "-" : fmt::format("{}", fmt::join(agent.sinks, ", ")),
                    or_dash(agent.description)});
  }
  if (rows.empty()) {
    fmt::print("app '{}' declares no agents\n", name);
    return kExitOk;
  }
  print_table({"AGENT", "TOPIC", "CONCURRENCY", "SUPERVISOR", "SINKS", "DESCRIPTION"}, rows);
  return kExitOk;
}

int print_topics(const std::vector<AppDefinition>& apps, const std::string& name) {
  DefinedApp defined = define(apps, name);
  if (defined.app == nullptr) {
    print_error(defined.error);
    return kExitUsage;
  }
  const AppSettings& settings = defined.app->settings();
  std::vector<Row> rows;
  for (const auto& topic : defined.app->topics()) {
    const char* kind = topic.in_memory ? "channel" : (topic.internal ? "created" : "external");
    // Only topics the app creates have a partition count of its choosing: external topics exist already (the
    // worker refuses to start without them) with the cluster's count, and channels have none.
    std::string partitions = "-";
    if (topic.internal && !topic.in_memory) {
      partitions = std::to_string(topic.partitions > 0 ? topic.partitions : settings.topic_partitions);
    }
    rows.push_back({topic.name, kind, partitions, or_dash(topic.key_codec), or_dash(topic.value_codec)});
  }
  // Every table's changelog, which the worker creates, compacted: partitioned as the table's source topic (a
  // GlobalTable's count is its own option, not recorded in TableInfo: "-").
  for (const TableInfo& table : defined.app->tables()) {
    const std::string partitions = table.source.empty() ? "-" : "as " + table.source;
    rows.push_back(
        {table.changelog, "changelog of " + table.kind + " '" + table.name + "'", partitions, "-", "-"});
  }
  if (rows.empty()) {
    fmt::print("app '{}' declares no topics\n", name);
    return kExitOk;
  }
  print_table({"TOPIC", "KIND", "PARTITIONS", "KEY", "VALUE"}, rows);
  return kExitOk;
}

int print_apps(const std::vector<AppDefinition>& apps) {
  if (apps.empty()) {
    fmt::print("no apps registered in this program\n");
    return kExitOk;
  }
  std::vector<Row> rows;
  for (const auto& definition : apps) rows.push_back({definition.name, or_dash(definition.description)});
  print_table({"APP", "DESCRIPTION"}, rows);
  return kExitOk;
}

}  // namespace mephisto::cli
