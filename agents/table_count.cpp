// "tablecount": the exactly-once table example — a running count per key kept in a changelogged table.
#include "agents/examples.h"

namespace mephisto::examples {

AppDefinition table_count_app(const std::string& prefix) {
  AppDefinition definition;
  definition.name = "tablecount";
  definition.description =
      "counts events per key in a table (exactly once): count-events -> table counts -> count-results";
  definition.default_settings = [prefix] {
    AppSettings settings;
    settings.id = prefix + "tablecount";
    settings.processing_guarantee = ProcessingGuarantee::kExactlyOnce;
    return settings;
  };
  definition.define = [prefix](App& app) {
    auto events =
        app.topic<std::string, std::string>(prefix + std::string(kCountEventsTopic), create_if_missing());
    auto results =
        app.topic<std::string, std::string>(prefix + std::string(kCountResultsTopic), create_if_missing());
    TableOptions<int64_t> options;
    options.help = "events counted per key";
    auto counts = app.table<std::string, int64_t>("counts", events, options);
    app.agent("count", events, [counts, results](Stream<std::string, std::string>& stream) {
      for (auto& event : stream) {
        const int64_t count = counts.add(event.key(), 1);
        Status sent = results.send(event.key(), event.value() + " " + std::to_string(count));
        (void)sent;  // a failed delivery stops the worker (and, under exactly_once, aborts the transaction)
      }
    });
  };
  return definition;
}

}  // namespace mephisto::examples
