// The HTML report of a scenario's runs (`mephisto sim ... --report FILE`): one self-contained page (inline
// CSS, inline script, data embedded as JSON; no network access, so it opens from a CI artifact or a mail
// attachment) with the verdicts across every seed and, for one chosen run, a timeline: per worker its
// input-partition ownership, per broker / workload / cluster the faults, rebalances, commits, aborts, the
// heal and settle lines and the violations, the first violation highlighted (anchor #first-violation).
//
// The timeline is drawn by the page's script into SVG. When it has rendered, the script sets
// document.body's data-rendered="ok" (or "error: ...") and data-lanes / data-marks on #timeline, so a
// headless browser can check the page (tests/scenario/report_test.cpp).
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "sim/scenario/run_result.h"

namespace mephisto::sim::scenario {

struct ReportInput {
  std::string title;            // the page's heading, e.g. the scenario's name
  std::string scenario_file;    // as given on the command line
  std::string description;      // the scenario's description (may span lines)
  std::vector<RunResult> runs;  // every seed run; timelines may be empty (only the detailed one is drawn)
  size_t detailed = 0;          // index in `runs` of the run whose timeline is drawn (the caller picks the
                                // first failing one); out of range: no timeline section
};

// The whole page. All text from the input is escaped (HTML, and "<" inside the embedded JSON).
[[nodiscard]] std::string render_report_html(const ReportInput& input);

}  // namespace mephisto::sim::scenario
