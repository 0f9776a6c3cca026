// "pageviews": Faust's page views per page.
//
//   page-views (PageView json) --count_page_views: group_by(page)--> page-view-counts
//
// The output reuses WordCount (models/examples.proto) with word = the page and count = the page's running
// number of views, keyed by the page: the last WordCount of a page in page-view-counts is its total.
#include <cstdint>
#include <map>
#include <string>

#include "agents/examples.h"
#include "models/examples.pb.h"

namespace mephisto::examples {

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

    AgentOptions<NoReply> options;
    options.description = "counts page views per page (group_by page)";
    app.agent(
        "count_page_views", views,
        [counts](Stream<std::string, PageView>& stream) {
          // In memory, per actor, until tables arrive (a later issue): see agents/examples.h.
          std::map<std::string, int64_t> totals;
          auto by_page = stream.group_by(
              [](const Event<std::string, PageView>& event) { return event.value().page(); }, "page");
          for (auto& event : by_page) count_and_send(totals, counts, event.key());
        },
        options);
  };
  return definition;
}

}  // namespace mephisto::examples
