// The HTML run report (sim/scenario/report_html.h): a hand-built run rendered to a page that must be
// self-contained and escaped, then loaded in headless Chromium, whose dumped DOM shows that the page's script
// drew the timeline (data-rendered, data-lanes, data-marks) and the first violation's anchor.
#include "sim/scenario/report_html.h"
#include "tests/scenario/headless_chromium.h"

#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <regex>
#include <string>

#include <gtest/gtest.h>

namespace mephisto::sim::scenario {
namespace {

namespace fs = std::filesystem;
using mephisto::scenario::DUPLICATES;
using mephisto::scenario::LIVENESS;
using mephisto::scenario::LOST_WRITES;

// Text from simulated records may contain anything: it must come out escaped, never as markup or script.
constexpr const char* kHostileText = "value <b>x</b> & \"q\" </script><script>alert(1)</script>";

OwnershipSpan span(const std::string& worker, int32_t partition, int32_t generation, int64_t from_ms,
                   int64_t to_ms) {
  return {worker, {"orders", partition}, generation, from_ms, to_ms};
}

// Two workers over four partitions, a broker partitioned away for a while, worker-1 crashed and restarted,
// and a lost write found at 4.2 s.
RunResult failing_run() {
  RunResult r;
  r.scenario = "report-demo";
  r.seed = 7;
  r.run_hash = 0x1234abcd5678ef90ull;
  r.reproduce = "mephisto sim scenarios/report-demo.yaml --seed 7";
  r.passed = false;
  r.workers = {"worker-0", "worker-1"};
  r.fault_plan = {"1.0 s partition broker-1 from the cluster for 2.0 s",
                  "2.0 s crash worker-1, restart after 0.6 s", kHostileText};
  r.chaos_end_ms = 5000;
  r.healed_at_ms = 5000;
  r.settled_at_ms = 6500;
  r.end_ms = 8000;
  r.events_acked = 1200;
  r.events_failed = 3;
  r.ownership = {
      span("worker-0", 0, 1, 0, 2100),    span("worker-0", 1, 1, 0, 2100),
      span("worker-1", 2, 1, 0, 2000),    span("worker-1", 3, 1, 0, 2000),
      span("worker-0", 0, 2, 2100, 2700), span("worker-0", 1, 2, 2100, 2700),
      span("worker-0", 2, 2, 2100, 2700), span("worker-0", 3, 2, 2100, 2700),
      span("worker-0", 0, 3, 2700, 8000), span("worker-0", 1, 3, 2700, 8000),
      span("worker-1", 2, 3, 2700, 8000), span("worker-1", 3, 3, 2700, 8000),
  };
  r.timeline = {
      {0, "worker-0", TimelineEvent::kRebalance, "generation 1: orders/0, orders/1"},
      {0, "worker-1", TimelineEvent::kRebalance, "generation 1: orders/2, orders/3"},
      {600, "worker-0", TimelineEvent::kCommit, "txn 1"},
      {700, "worker-1", TimelineEvent::kCommit, "txn 1"},
      {1000, "broker-1", TimelineEvent::kFault, "partition broker-1 from the cluster"},
      {1300, "worker-0", TimelineEvent::kCommit, "txn 2"},
      {1500, "cluster", TimelineEvent::kNote, "leader of orders/1 moved to broker-2"},
      {1800, "worker-1", TimelineEvent::kAbort, "txn 2 aborted: coordinator unreachable"},
      {2000, "worker-1", TimelineEvent::kFault, "crash worker-1"},
      {2100, "worker-0", TimelineEvent::kRebalance, "generation 2: orders/0-3"},
      {2600, "worker-1", TimelineEvent::kFaultEnd, "restart worker-1"},
      {2700, "worker-0", TimelineEvent::kRebalance, "generation 3: orders/0, orders/1"},
      {2700, "worker-1", TimelineEvent::kRebalance, "generation 3: orders/2, orders/3"},
      {3000, "broker-1", TimelineEvent::kFaultEnd, "heal broker-1"},
      {3100, "workload", TimelineEvent::kNote, "producer retried 3 sends"},
      {4200, "worker-0", TimelineEvent::kViolation, std::string("lost write: orders/1@42 ") + kHostileText},
      {4600, "worker-1", TimelineEvent::kCommit, "txn 3"},
      {5000, "cluster", TimelineEvent::kHeal, "every fault healed"},
      {5200, "worker-1", TimelineEvent::kViolation, "lost write: orders/3@17"},
      {6500, "cluster", TimelineEvent::kSettled, "lag zero"},
  };
  Verdict duplicates;
  duplicates.invariant = DUPLICATES;
  duplicates.status = VerdictStatus::kHeld;
  Verdict lost;
  lost.invariant = LOST_WRITES;
  lost.status = VerdictStatus::kViolated;
  lost.count = 2;
  lost.examples = {{4200, std::string("orders/1@42 ") + kHostileText}, {5200, "orders/3@17"}};
  Verdict liveness;
  liveness.invariant = LIVENESS;
  liveness.status = VerdictStatus::kHeld;
  liveness.note = "settled 1500 ms after the heal";
  r.verdicts = {duplicates, lost, liveness};
  return r;
}

// Lanes: worker-0, worker-1, broker-1, workload, cluster. Marks: 2 fault ranges, 12 ownership bars, the heal
// and settle lines, and 14 point marks (5 rebalances, 4 commits, 1 abort, 2 notes, 2 violations).
constexpr int kLanes = 5;
constexpr int kMarks = 2 + 12 + 2 + 14;

ReportInput demo_input() {
  ReportInput input;
  input.title = "report-demo <seeds>";
  input.scenario_file = "scenarios/report-demo.yaml";
  input.description = "Two workers, a broker partitioned away, a worker crash.\nA planted lost write & more.";
  RunResult passing = failing_run();
  passing.seed = 8;
  passing.passed = true;
  passing.timeline.clear();
  passing.ownership.clear();
  passing.verdicts[1].status = VerdictStatus::kHeld;
  passing.verdicts[1].examples.clear();
  input.runs = {passing, failing_run()};
  input.detailed = 1;
  return input;
}

TEST(ReportHtml, IsSelfContainedAndEscaped) {
  const std::string html = render_report_html(demo_input());
  EXPECT_TRUE(html.starts_with("<!DOCTYPE html>"));
  // Nothing is fetched from anywhere: no absolute or protocol-relative src/href, stylesheet links or imports.
  const std::regex external(R"re((src|href)\s*=\s*["']?\s*(https?:)?//)re", std::regex::icase);
  EXPECT_FALSE(std::regex_search(html, external));
  EXPECT_EQ(html.find("<link"), std::string::npos);
  EXPECT_EQ(html.find("@import"), std::string::npos);
  EXPECT_EQ(html.find("url(http"), std::string::npos);
  // The hostile text appears only escaped: once in the HTML sections, once in the JSON for the script.
  EXPECT_EQ(html.find("<b>x</b>"), std::string::npos);
  EXPECT_EQ(html.find("alert(1)</script>"), std::string::npos);
  EXPECT_NE(html.find("&lt;b&gt;x&lt;/b&gt; &amp; &quot;q&quot;"), std::string::npos);
  EXPECT_NE(html.find(R"(\u003cb\u003ex\u003c/b\u003e)"), std::string::npos);
  EXPECT_NE(html.find("report-demo &lt;seeds&gt;"), std::string::npos);
  // Exactly the page's own two script blocks.
  size_t scripts = 0;
  for (size_t at = html.find("<script"); at != std::string::npos; at = html.find("<script", at + 1))
    ++scripts;
  EXPECT_EQ(scripts, 2u);
  // Header counts, the failing seed's reproduce line, the anchor of the first violation.
  EXPECT_NE(html.find(R"(<span class="num">2</span><span class="label">seeds run</span>)"),
            std::string::npos);
  EXPECT_NE(html.find(R"(<span class="num">1</span><span class="label">failed</span>)"), std::string::npos);
  EXPECT_NE(html.find("mephisto sim scenarios/report-demo.yaml --seed 7"), std::string::npos);
  EXPECT_NE(html.find(R"(id="first-violation")"), std::string::npos);
}

TEST(ReportHtml, WithoutADetailedRunHasNoTimeline) {
  ReportInput input = demo_input();
  input.detailed = input.runs.size();
  const std::string html = render_report_html(input);
  EXPECT_EQ(html.find(R"(id="timeline")"), std::string::npos);
  EXPECT_EQ(html.find(R"(id="first-violation")"), std::string::npos);
  EXPECT_NE(html.find("Failing seeds"), std::string::npos);
}

TEST(ReportHtml, RendersInHeadlessChromium) {
  const std::string chromium = testing::chromium_path();
  ASSERT_FALSE(chromium.empty()) << "chromium is not installed (looked for /usr/bin/chromium); run "
                                    "tools/install-deps.sh";
  const fs::path dir = fs::temp_directory_path() / ("mephisto-report-test-" + std::to_string(getpid()));
  fs::create_directories(dir);
  const fs::path page = dir / "report.html";
  {
    std::ofstream out(page);
    out << render_report_html(demo_input());
  }
  const testing::DumpedDom dumped = testing::dump_dom(page, dir);
  const std::string& dom = dumped.dom;
  fs::remove_all(dir);
  ASSERT_EQ(dumped.status, 0) << dumped.command << "\n" << dumped.stderr_text;
  EXPECT_NE(dom.find(R"(data-rendered="ok")"), std::string::npos) << dom.substr(0, 2000);
  EXPECT_NE(dom.find("data-lanes=\"" + std::to_string(kLanes) + "\""), std::string::npos);
  EXPECT_NE(dom.find("data-marks=\"" + std::to_string(kMarks) + "\""), std::string::npos)
      << "timeline element: " << dom.substr(dom.find("id=\"timeline\""), 200);
  EXPECT_NE(dom.find(R"(id="first-violation")"), std::string::npos);
  EXPECT_NE(dom.find(R"(id="first-violation-mark")"), std::string::npos)
      << "the script drew no first-violation mark";
}

}  // namespace
}  // namespace mephisto::sim::scenario
