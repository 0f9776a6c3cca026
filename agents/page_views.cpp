// "pageviews": Faust's page views per page.
//
//   page-views (PageView json) --count_page_views: group_by(page)--> page-view-counts
//                                                        |
//                                            table page-counts (changelogged)
//
// The count of a page lives in table `page-counts`, partitioned like the group_by's repartition topic, so it
// moves with the page's partition and survives rebalances and restarts.
// The output reuses WordCount (models/examples.proto) with word = the page and count = the page's running
// number of views, keyed by the page: the last WordCount of a page in page-view-counts is its total.
#include <algorithm>
#include <cstdint>
#include <string>

#include "agents/examples.h"
#include "models/examples.pb.h"
#include "runtime/seam/random.h"

namespace mephisto::examples {
namespace {

constexpr int kPages = 12;

// pageviews' scenario support: views of one of kPages pages by user "u<index>" (so every view is unique),
// keyed by a user group "k<j>" that spreads them over the input partitions, a view's page drawn from the
// record's seed. No model: the differential oracle holds the counts to a fault-free run's.
ScenarioSupport page_views_scenario(const std::string& prefix) {
  ScenarioSupport support;
  support.input_topic = prefix + std::string(kPageViewsTopic);
  support.output_topic = prefix + std::string(kPageViewCountsTopic);
  support.record = [](int64_t index, const WorkloadShape& shape, uint64_t record_seed) {
    Random random(record_seed);
    PageView view;
    view.set_page("/page/" + std::to_string(random.below(kPages)));
    view.set_user("u" + std::to_string(index));
    view.set_timestamp_ms(index);  // the event's index: deterministic, and no agent reads it
    const uint64_t key = random.below(static_cast<uint64_t>(std::max(1, shape.keys)));
    return WorkloadRecord{"k" + std::to_string(key), ProtobufJsonCodec<PageView>{}.encode(view)};
  };
  return support;
}

}  // namespace

AppDefinition page_views_app(const std::string& prefix) {
  AppDefinition definition;
  definition.name = "pageviews";
  definition.description =
      "page views: group_by(page) -> running count per page (WordCount with word = page)";
  definition.default_settings = [prefix] {
    AppSettings settings;
    settings.id = prefix + "pageviews";
    return settings;
  };
  definition.define = [prefix](App& app) {
    auto views = app.topic<std::string, PageView>(prefix + std::string(kPageViewsTopic), create_if_missing());
    auto counts =
        app.topic<std::string, WordCount>(prefix + std::string(kPageViewCountsTopic), create_if_missing());

    TableOptions<int64_t> table_options;
    table_options.help = "views of each page";
    auto totals = app.table<std::string, int64_t>(
        "page-counts", app.repartition_topic<std::string>(views, "page"), table_options);

    AgentOptions<NoReply> options;
    options.description = "counts page views per page (group_by page)";
    app.agent(
        "count_page_views", views,
        [counts, totals](Stream<std::string, PageView>& stream) {
          auto by_page = stream.group_by(
              [](const Event<std::string, PageView>& event) { return event.value().page(); }, "page");
          for (auto& event : by_page) count_and_send(totals, counts, event.key());
        },
        options);
  };
  definition.scenario = page_views_scenario(prefix);
  return definition;
}

}  // namespace mephisto::examples
