// The HTML run report. The static parts (header, verdict tables, fault plan) are rendered here as escaped
// HTML, so they read fine even with scripts off; the timeline is data (JSON in a non-executed <script> block)
// drawn by the page's own script into SVG, because its layout depends on the page width.
//
// Layout of this file: escaping and formatting helpers; the timeline's model (lanes, fault ranges, marks),
// built here rather than in the script so the pairing rules live in C++; the page's sections; the CSS and
// the script as raw strings at the end.
#include "sim/scenario/report_html.h"

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <deque>
#include <map>
#include <set>
#include <string_view>
#include <utility>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace mephisto::sim::scenario {
namespace {

using nlohmann::json;

extern const char* const kStyle;
extern const char* const kScript;

// Failing seeds listed in the table; beyond this the page would be mostly reproduce lines.
constexpr size_t kMaxFailingSeedsListed = 200;

// ---------------------------------------------------------------------------------------------------------------
// Escaping and formatting

std::string escape_html(std::string_view text) {
  std::string out;
  out.reserve(text.size() + text.size() / 8);
  for (const char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

// JSON that is safe inside <script>: "<", ">" and "&" occur only inside JSON strings, where \u escapes mean
// the same, so no "</script>" or "<!--" from the input can end or confuse the block. Invalid UTF-8 (text from
// simulated records) is replaced rather than thrown on.
std::string json_for_script(const json& value) {
  const std::string dumped = value.dump(-1, ' ', false, json::error_handler_t::replace);
  std::string out;
  out.reserve(dumped.size());
  for (const char c : dumped) {
    switch (c) {
      case '<':
        out += "\\u003c";
        break;
      case '>':
        out += "\\u003e";
        break;
      case '&':
        out += "\\u0026";
        break;
      default:
        out += c;
    }
  }
  return out;
}

// "12.345 s", "0.5 s", "3 s": virtual milliseconds as seconds, without trailing zeros.
std::string seconds(int64_t time_ms) {
  std::string text = fmt::format("{:.3f}", static_cast<double>(time_ms) / 1000.0);
  while (text.back() == '0') text.pop_back();
  if (text.back() == '.') text.pop_back();
  return text + " s";
}

const char* status_class(VerdictStatus status) {
  switch (status) {
    case VerdictStatus::kHeld:
    case VerdictStatus::kExpectedSeen:
      return "ok";
    case VerdictStatus::kAllowed:
      return "warn";
    case VerdictStatus::kViolated:
    case VerdictStatus::kExpectedMissing:
    case VerdictStatus::kUndecided:
      return "bad";
    case VerdictStatus::kNotChecked:
      return "muted";
  }
  return "muted";
}

constexpr VerdictStatus kStatuses[] = {
    VerdictStatus::kHeld,         VerdictStatus::kViolated,        VerdictStatus::kAllowed,
    VerdictStatus::kExpectedSeen, VerdictStatus::kExpectedMissing, VerdictStatus::kUndecided,
    VerdictStatus::kNotChecked,
};

// The run's first violation: the earliest on its timeline, else the earliest example of a failing verdict
// (time -1, found only in the final log, sorts last).
struct FirstViolation {
  bool found = false;
  int64_t time_ms = -1;
  std::string text;
  std::string lane;
};

FirstViolation first_violation(const RunResult& run) {
  FirstViolation first;
  for (const TimelineEvent& e : run.timeline) {
    if (e.kind != TimelineEvent::kViolation) continue;
    if (!first.found || e.time_ms < first.time_ms) first = {true, e.time_ms, e.text, e.lane};
  }
  if (first.found) return first;
  // Only violations proper: an undecided or expected-but-missing verdict has no violation to point at (the
  // verdict tables show it).
  const auto later = [](int64_t a_ms, int64_t b_ms) {
    return a_ms < 0 ? b_ms >= 0 : b_ms >= 0 && a_ms > b_ms;
  };
  for (const Verdict& v : run.verdicts) {
    if (v.status != VerdictStatus::kViolated) continue;
    for (const Violation& example : v.examples) {
      if (!first.found || later(first.time_ms, example.time_ms)) {
        first = {true, example.time_ms, invariant_name(v.invariant) + ": " + example.text, "cluster"};
      }
    }
    if (!first.found) {
      // Violated without examples: the note says what.
      first = {true, -1, invariant_name(v.invariant) + (v.note.empty() ? "" : ": " + v.note), "cluster"};
    }
  }
  return first;
}

// ---------------------------------------------------------------------------------------------------------------
// The timeline's model

const char* kind_name(TimelineEvent::Kind kind) {
  switch (kind) {
    case TimelineEvent::kFault:
      return "fault";
    case TimelineEvent::kFaultEnd:
      return "fault-end";
    case TimelineEvent::kRebalance:
      return "rebalance";
    case TimelineEvent::kCommit:
      return "commit";
    case TimelineEvent::kAbort:
      return "abort";
    case TimelineEvent::kHeal:
      return "heal";
    case TimelineEvent::kSettled:
      return "settled";
    case TimelineEvent::kViolation:
      return "violation";
    case TimelineEvent::kNote:
      return "note";
  }
  return "note";
}

// "broker-10" after "broker-9": the number, if the name ends in one.
std::pair<std::string, int64_t> natural_key(const std::string& name) {
  size_t digits = name.size();
  while (digits > 0 && std::isdigit(static_cast<unsigned char>(name[digits - 1]))) --digits;
  if (digits == name.size() || name.size() - digits > 12) return {name, -1};
  return {name.substr(0, digits), std::stoll(name.substr(digits))};
}

json timeline_model(const RunResult& run) {
  // Lanes: the workers in the run's order (plus any only the spans name), then brokers by number, the
  // workload, the cluster, then anything else in order of appearance.
  std::vector<std::string> worker_lanes = run.workers;
  const auto known = [&](const std::vector<std::string>& lanes, const std::string& name) {
    return std::find(lanes.begin(), lanes.end(), name) != lanes.end();
  };
  for (const OwnershipSpan& span : run.ownership) {
    if (!known(worker_lanes, span.worker)) worker_lanes.push_back(span.worker);
  }
  const auto lane_of = [](const TimelineEvent& e) {
    return e.lane.empty() ? std::string("cluster") : e.lane;
  };
  std::vector<std::string> brokers;
  std::vector<std::string> others;
  bool workload = false;
  bool cluster = false;
  for (const TimelineEvent& e : run.timeline) {
    if (e.kind == TimelineEvent::kHeal || e.kind == TimelineEvent::kSettled) continue;  // drawn as lines
    const std::string lane = lane_of(e);
    if (known(worker_lanes, lane)) continue;
    if (lane == "workload") {
      workload = true;
    } else if (lane == "cluster") {
      cluster = true;
    } else if (lane.starts_with("broker")) {
      if (!known(brokers, lane)) brokers.push_back(lane);
    } else if (!known(others, lane)) {
      others.push_back(lane);
    }
  }
  std::stable_sort(brokers.begin(), brokers.end(), [](const std::string& a, const std::string& b) {
    return natural_key(a) < natural_key(b);
  });

  // Violations known only from the verdicts (a timeline without violation events) still get marks.
  std::vector<TimelineEvent> events = run.timeline;
  const bool has_violation_events = std::any_of(events.begin(), events.end(), [](const TimelineEvent& e) {
    return e.kind == TimelineEvent::kViolation;
  });
  if (!has_violation_events) {
    for (const Verdict& v : run.verdicts) {
      if (v.status != VerdictStatus::kViolated) continue;
      for (const Violation& example : v.examples) {
        if (example.time_ms < 0) continue;
        events.push_back({example.time_ms, "cluster", TimelineEvent::kViolation,
                          invariant_name(v.invariant) + ": " + example.text});
        cluster = true;
      }
    }
    std::stable_sort(events.begin(), events.end(),
                     [](const TimelineEvent& a, const TimelineEvent& b) { return a.time_ms < b.time_ms; });
  }

  json lanes = json::array();
  for (const std::string& w : worker_lanes) lanes.push_back({{"name", w}, {"worker", true}});
  for (const std::string& b : brokers) lanes.push_back({{"name", b}, {"worker", false}});
  if (workload) lanes.push_back({{"name", "workload"}, {"worker", false}});
  if (cluster) lanes.push_back({{"name", "cluster"}, {"worker", false}});
  for (const std::string& o : others) lanes.push_back({{"name", o}, {"worker", false}});

  int64_t start_ms = 0;
  int64_t end_ms = std::max<int64_t>(run.end_ms, 1);
  for (const TimelineEvent& e : events) {
    start_ms = std::min(start_ms, e.time_ms);
    end_ms = std::max(end_ms, e.time_ms);
  }
  for (const OwnershipSpan& s : run.ownership) {
    start_ms = std::min(start_ms, s.from_ms);
    end_ms = std::max(end_ms, s.to_ms);
  }

  // A fault and its end become one shaded range: each end closes the oldest open fault of its lane. A fault
  // never ended is drawn to the heal (to the end if it began after it).
  json ranges = json::array();
  json marks = json::array();
  json lines = json::array();
  std::map<std::string, std::deque<const TimelineEvent*>> open_faults;
  const auto add_range = [&](const TimelineEvent& fault, const TimelineEvent* end) {
    const int64_t to_ms = end != nullptr                     ? end->time_ms
                          : run.healed_at_ms > fault.time_ms ? run.healed_at_ms
                                                             : end_ms;
    ranges.push_back({{"lane", lane_of(fault)},
                      {"from", fault.time_ms},
                      {"to", to_ms},
                      {"text", fault.text},
                      {"end_text", end != nullptr ? end->text : std::string()},
                      {"open", end == nullptr}});
  };
  int first_violation_mark = -1;
  int64_t first_violation_ms = 0;
  for (const TimelineEvent& e : events) {
    switch (e.kind) {
      case TimelineEvent::kFault:
        open_faults[lane_of(e)].push_back(&e);
        continue;
      case TimelineEvent::kFaultEnd: {
        auto& open = open_faults[lane_of(e)];
        if (!open.empty()) {
          add_range(*open.front(), &e);
          open.pop_front();
          continue;
        }
        break;  // an end without a start: a point mark
      }
      case TimelineEvent::kHeal:
      case TimelineEvent::kSettled:
        lines.push_back({{"t", e.time_ms}, {"kind", kind_name(e.kind)}, {"text", e.text}});
        continue;
      case TimelineEvent::kViolation:
        if (first_violation_mark < 0 || e.time_ms < first_violation_ms) {
          first_violation_mark = static_cast<int>(marks.size());
          first_violation_ms = e.time_ms;
        }
        break;
      default:
        break;
    }
    marks.push_back({{"t", e.time_ms}, {"lane", lane_of(e)}, {"kind", kind_name(e.kind)}, {"text", e.text}});
  }
  for (const auto& [lane, open] : open_faults) {
    for (const TimelineEvent* fault : open) add_range(*fault, nullptr);
  }
  // Runs whose timeline did not record the heal or the settling still know when they happened.
  const auto has_line = [&](const char* kind) {
    return std::any_of(lines.begin(), lines.end(), [&](const json& l) { return l["kind"] == kind; });
  };
  if (!has_line("heal") && run.healed_at_ms > 0) {
    lines.push_back({{"t", run.healed_at_ms}, {"kind", "heal"}, {"text", "every fault healed"}});
  }
  if (!has_line("settled") && run.settled_at_ms >= 0) {
    lines.push_back(
        {{"t", run.settled_at_ms}, {"kind", "settled"}, {"text", "lag zero, no open transaction"}});
  }
  for (const json& l : lines) end_ms = std::max(end_ms, l["t"].get<int64_t>());

  // Partitions in a stable order, so a partition keeps its colour across workers.
  std::set<TopicPartition> partitions;
  for (const OwnershipSpan& s : run.ownership) partitions.insert(s.tp);
  std::set<std::string> topics;
  for (const TopicPartition& tp : partitions) topics.insert(tp.topic);
  json partition_list = json::array();
  std::map<TopicPartition, size_t> partition_index;
  for (const TopicPartition& tp : partitions) {
    partition_index[tp] = partition_list.size();
    const std::string label =
        topics.size() > 1 ? fmt::format("{}:p{}", tp.topic, tp.partition) : fmt::format("p{}", tp.partition);
    partition_list.push_back({{"topic", tp.topic}, {"partition", tp.partition}, {"label", label}});
  }
  json spans = json::array();
  for (const OwnershipSpan& s : run.ownership) {
    spans.push_back({{"worker", s.worker},
                     {"p", partition_index[s.tp]},
                     {"generation", s.generation},
                     {"from", s.from_ms},
                     {"to", std::max(s.to_ms, s.from_ms)}});
  }

  return {{"start_ms", start_ms},
          {"end_ms", end_ms},
          {"lanes", lanes},
          {"partitions", partition_list},
          {"spans", spans},
          {"ranges", ranges},
          {"marks", marks},
          {"lines", lines},
          {"first_violation", first_violation_mark}};
}

// ---------------------------------------------------------------------------------------------------------------
// Sections

void render_header(const ReportInput& input, std::string& out) {
  size_t passed = 0;
  std::set<std::string> planted;
  for (const RunResult& r : input.runs) {
    if (r.passed) ++passed;
    if (!r.planted.empty()) planted.insert(r.planted);
  }
  const size_t failed = input.runs.size() - passed;
  out += "<header class=\"page-head\"><div class=\"wrap\">\n";
  out += "<div class=\"eyebrow\">Mephisto &middot; simulation report</div>\n";
  out += fmt::format("<h1>{}</h1>\n", escape_html(input.title));
  if (!input.scenario_file.empty()) {
    out += fmt::format("<div class=\"file\"><code>{}</code></div>\n", escape_html(input.scenario_file));
  }
  if (!input.description.empty()) {
    out += fmt::format("<p class=\"description\">{}</p>\n", escape_html(input.description));
  }
  out += "<div class=\"stats\">\n";
  out += fmt::format(
      "<div class=\"stat\"><span class=\"num\">{}</span><span class=\"label\">seeds run</span></div>\n",
      input.runs.size());
  out += fmt::format(
      "<div class=\"stat ok\"><span class=\"num\">{}</span><span class=\"label\">passed</span></div>\n",
      passed);
  out += fmt::format(
      "<div class=\"stat {}\"><span class=\"num\">{}</span><span class=\"label\">failed</span></div>\n",
      failed > 0 ? "bad" : "ok", failed);
  for (const std::string& p : planted) {
    out += fmt::format(
        "<div class=\"stat warn\"><span class=\"num small\">{}</span><span class=\"label\">planted "
        "bug</span></div>\n",
        escape_html(p));
  }
  if (input.detailed < input.runs.size()) {
    out += fmt::format(
        "<a class=\"stat link\" href=\"#run\"><span class=\"num\">{}</span><span class=\"label\">seed shown "
        "below</span></a>\n",
        input.runs[input.detailed].seed);
  }
  out += "</div>\n</div></header>\n";
}

void render_verdict_matrix(const ReportInput& input, std::string& out) {
  // invariant -> status -> runs with that status
  std::map<Invariant, std::map<VerdictStatus, size_t>> counts;
  for (const RunResult& r : input.runs) {
    for (const Verdict& v : r.verdicts) ++counts[v.invariant][v.status];
  }
  out += "<section id=\"verdicts\"><h2>Verdicts across seeds</h2>\n";
  if (counts.empty()) {
    out += "<p class=\"empty\">No verdicts.</p>\n";
  } else {
    out += "<p class=\"hint\">Runs per invariant and outcome.</p>\n";
    out += "<table class=\"matrix\"><thead><tr><th>invariant</th>";
    for (const VerdictStatus s : kStatuses)
      out += fmt::format("<th>{}</th>", escape_html(verdict_status_name(s)));
    out += "</tr></thead><tbody>\n";
    for (const auto& [invariant, by_status] : counts) {
      out += fmt::format("<tr><th scope=\"row\">{}</th>", escape_html(invariant_name(invariant)));
      for (const VerdictStatus s : kStatuses) {
        const auto it = by_status.find(s);
        if (it == by_status.end()) {
          out += "<td class=\"zero\">&middot;</td>";
        } else {
          out += fmt::format("<td class=\"cell {}\">{}</td>", status_class(s), it->second);
        }
      }
      out += "</tr>\n";
    }
    out += "</tbody></table>\n";
  }

  std::vector<size_t> failing;
  for (size_t i = 0; i < input.runs.size(); ++i) {
    if (!input.runs[i].passed) failing.push_back(i);
  }
  out += fmt::format("<h3>Failing seeds <span class=\"count\">{}</span></h3>\n", failing.size());
  if (failing.empty()) {
    out += "<p class=\"empty\">Every seed passed.</p>\n";
  } else {
    out +=
        "<table class=\"seeds\"><thead><tr><th>seed</th><th>failed</th><th>first violation</th>"
        "<th>reproduce</th></tr></thead><tbody>\n";
    for (size_t k = 0; k < failing.size() && k < kMaxFailingSeedsListed; ++k) {
      const size_t index = failing[k];
      const RunResult& r = input.runs[index];
      std::string failed_names;
      for (const Verdict& v : r.verdicts) {
        if (!verdict_fails(v.status)) continue;
        failed_names +=
            fmt::format("<span class=\"tag bad\">{} &middot; {}</span> ",
                        escape_html(invariant_name(v.invariant)), escape_html(verdict_status_name(v.status)));
      }
      const FirstViolation first = first_violation(r);
      const std::string when = first.found && first.time_ms >= 0 ? seconds(first.time_ms) + " &middot; " : "";
      const std::string seed_cell =
          index == input.detailed
              ? fmt::format("<a href=\"#run\">{}</a><span class=\"shown\">shown below</span>", r.seed)
              : fmt::format("{}", r.seed);
      out += fmt::format(
          "<tr><td class=\"num\">{}</td><td>{}</td><td class=\"text\">{}{}</td><td><code "
          "class=\"repro\">{}</code></td></tr>\n",
          seed_cell, failed_names, when, first.found ? escape_html(first.text) : "",
          escape_html(r.reproduce));
    }
    out += "</tbody></table>\n";
    if (failing.size() > kMaxFailingSeedsListed) {
      out += fmt::format("<p class=\"hint\">… and {} more failing seeds.</p>\n",
                         failing.size() - kMaxFailingSeedsListed);
    }
  }
  out += "</section>\n";
}

void render_run(const RunResult& run, std::string& out) {
  out += "<section id=\"run\">\n";
  out += fmt::format("<h2>Seed {} <span class=\"badge {}\">{}</span></h2>\n", run.seed,
                     run.passed ? "ok" : "bad", run.passed ? "passed" : "FAILED");
  out += "<dl class=\"facts\">\n";
  const auto fact = [&](std::string_view name, const std::string& value_html) {
    out += fmt::format("<div><dt>{}</dt><dd>{}</dd></div>\n", name, value_html);
  };
  fact("run hash", fmt::format("<code>{:016x}</code>", run.run_hash));
  if (!run.planted.empty()) fact("planted bug", escape_html(run.planted));
  fact("records acked", fmt::format("{}", run.events_acked));
  fact("sends failed", fmt::format("{}", run.events_failed));
  fact("chaos ended", seconds(run.chaos_end_ms));
  fact("healed", seconds(run.healed_at_ms));
  fact("settled",
       run.settled_at_ms >= 0 ? seconds(run.settled_at_ms) : "<span class=\"bad-text\">never</span>");
  fact("end", seconds(run.end_ms));
  fact("wall time", fmt::format("{} ms", run.wall_ms));
  out += "</dl>\n";
  if (!run.reproduce.empty()) {
    out += fmt::format("<div class=\"repro-line\">reproduce: <code class=\"repro\">{}</code></div>\n",
                       escape_html(run.reproduce));
  }

  const FirstViolation first = first_violation(run);
  if (first.found) {
    out += fmt::format(
        "<div class=\"callout\" id=\"first-violation\"><div class=\"callout-head\">First violation{}</div>"
        "<div class=\"callout-text\">{}</div></div>\n",
        first.time_ms >= 0 ? fmt::format(" at {} on {}", seconds(first.time_ms), escape_html(first.lane))
                           : std::string(" (found after the run, not placed on the timeline)"),
        escape_html(first.text));
  }

  out += "<h3>Timeline</h3>\n";
  if (run.timeline.empty() && run.ownership.empty()) {
    out += "<p class=\"empty\">No timeline was recorded for this run.</p>\n";
  }
  out += "<div id=\"legend\" class=\"legend\"></div>\n";
  out += "<div id=\"timeline\" class=\"timeline\" data-lanes=\"0\" data-marks=\"0\"></div>\n";

  out += "<div class=\"cols\">\n<div class=\"col\"><h3>Fault plan</h3>\n";
  if (run.fault_plan.empty()) {
    out += "<p class=\"empty\">No faults.</p>\n";
  } else {
    out += "<ol class=\"faults\">\n";
    for (const std::string& f : run.fault_plan)
      out += fmt::format("<li><code>{}</code></li>\n", escape_html(f));
    out += "</ol>\n";
  }
  out += "</div>\n<div class=\"col wide\"><h3>Verdicts of this run</h3>\n";
  if (run.verdicts.empty()) {
    out += "<p class=\"empty\">No verdicts.</p>\n";
  } else {
    out +=
        "<table "
        "class=\"verdicts\"><thead><tr><th>invariant</th><th>outcome</th><th>count</th><th>details</th>"
        "</tr></thead><tbody>\n";
    for (const Verdict& v : run.verdicts) {
      std::string details;
      if (!v.note.empty()) details += fmt::format("<div class=\"note\">{}</div>", escape_html(v.note));
      if (!v.examples.empty()) {
        details += "<ul class=\"examples\">";
        for (const Violation& example : v.examples) {
          details += fmt::format("<li><span class=\"t\">{}</span>{}</li>",
                                 example.time_ms >= 0 ? seconds(example.time_ms) : "final log",
                                 escape_html(example.text));
        }
        details += "</ul>";
      }
      out += fmt::format(
          "<tr><th scope=\"row\">{}</th><td><span class=\"badge {}\">{}</span></td><td class=\"num\">{}</td>"
          "<td>{}</td></tr>\n",
          escape_html(invariant_name(v.invariant)), status_class(v.status),
          escape_html(verdict_status_name(v.status)), v.count, details);
    }
    out += "</tbody></table>\n";
  }
  out += "</div>\n</div>\n</section>\n";
}

}  // namespace

std::string render_report_html(const ReportInput& input) {
  const bool detailed = input.detailed < input.runs.size();
  json data = {{"timeline", nullptr}};
  if (detailed) data["timeline"] = timeline_model(input.runs[input.detailed]);

  std::string out;
  out.reserve(64 * 1024);
  out += "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n";
  out += "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n";
  out += fmt::format("<title>{} &middot; Mephisto report</title>\n", escape_html(input.title));
  out += "<style>\n";
  out += kStyle;
  out += "</style>\n</head>\n<body>\n";
  render_header(input, out);
  out += "<main class=\"wrap\">\n";
  render_verdict_matrix(input, out);
  if (detailed) render_run(input.runs[input.detailed], out);
  out += "</main>\n";
  out += "<script type=\"application/json\" id=\"report-data\">";
  out += json_for_script(data);
  out += "</script>\n<script>\n";
  out += kScript;
  out += "</script>\n</body>\n</html>\n";
  return out;
}

namespace {

// ---------------------------------------------------------------------------------------------------------------
// The page's CSS and script

const char* const kStyle = R"CSS(
:root {
  --ink: #1f2933; --ink-2: #52606d; --ink-3: #7b8794; --line: #e4e7eb; --bg: #f5f7fa; --card: #ffffff;
  --ok: #2f855a; --ok-bg: #e6f4ea; --bad: #c53030; --bad-bg: #fde8e8; --warn: #b7791f; --warn-bg: #fdf3dc;
  --accent: #3b5bdb;
  --mono: ui-monospace, "SFMono-Regular", "JetBrains Mono", "DejaVu Sans Mono", Menlo, Consolas, monospace;
}
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body {
  margin: 0; background: var(--bg); color: var(--ink);
  font: 14px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", "DejaVu Sans", Arial, sans-serif;
}
.wrap { max-width: 1360px; margin: 0 auto; padding: 0 24px; }
code { font-family: var(--mono); font-size: 12.5px; }
a { color: var(--accent); text-decoration: none; }
a:hover { text-decoration: underline; }

.page-head { background: #1f2937; color: #f9fafb; padding: 28px 0 24px; }
.page-head .eyebrow { text-transform: uppercase; letter-spacing: .12em; font-size: 11px; color: #9ca3af; }
.page-head h1 { margin: 4px 0 6px; font-size: 28px; font-weight: 650; letter-spacing: -.01em; }
.page-head .file code { color: #cbd5e1; font-size: 13px; }
.page-head .description { margin: 10px 0 0; max-width: 960px; color: #d1d5db; white-space: pre-wrap; }
.stats { display: flex; flex-wrap: wrap; gap: 12px; margin-top: 18px; }
.stat {
  display: flex; flex-direction: column; min-width: 120px; padding: 10px 16px; border-radius: 10px;
  background: rgba(255,255,255,.07); border: 1px solid rgba(255,255,255,.12); color: #f9fafb;
}
.stat .num { font-size: 24px; font-weight: 650; font-variant-numeric: tabular-nums; line-height: 1.2; }
.stat .num.small { font-size: 16px; padding: 4px 0; font-family: var(--mono); }
.stat .label { font-size: 12px; color: #9ca3af; }
.stat.ok .num { color: #86efac; }
.stat.bad .num { color: #fca5a5; }
.stat.warn .num { color: #fcd34d; }
.stat.link:hover { background: rgba(255,255,255,.13); text-decoration: none; }

main section {
  background: var(--card); border: 1px solid var(--line); border-radius: 12px; margin: 24px 0;
  padding: 20px 24px 24px; box-shadow: 0 1px 2px rgba(16,24,40,.04);
}
h2 { font-size: 19px; margin: 0 0 12px; font-weight: 650; display: flex; align-items: center; gap: 10px; }
h3 { font-size: 14px; margin: 22px 0 8px; text-transform: uppercase; letter-spacing: .06em; color: var(--ink-2); }
h3 .count {
  display: inline-block; margin-left: 6px; padding: 0 8px; border-radius: 10px; background: var(--bg);
  color: var(--ink); letter-spacing: 0;
}
.hint, .empty { color: var(--ink-3); margin: 4px 0 10px; }

table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
th, td { text-align: left; padding: 7px 10px; border-bottom: 1px solid var(--line); vertical-align: top; }
thead th {
  font-size: 11.5px; text-transform: uppercase; letter-spacing: .05em; color: var(--ink-3); font-weight: 600;
  border-bottom: 1px solid #cbd2d9;
}
tbody th { font-weight: 600; white-space: nowrap; }
tbody tr:hover { background: #fafbfc; }
table.matrix { width: auto; min-width: 760px; }
table.matrix td { text-align: center; min-width: 92px; }
td.zero { color: #cbd2d9; }
td.cell { font-weight: 650; }
td.cell.ok { color: var(--ok); }
td.cell.bad { color: var(--bad); background: var(--bad-bg); }
td.cell.warn { color: var(--warn); background: var(--warn-bg); }
td.cell.muted { color: var(--ink-3); }
td.num { white-space: nowrap; }
td.text { color: var(--ink-2); max-width: 520px; }
.shown { display: block; font-size: 11px; color: var(--ink-3); }
.tag {
  display: inline-block; margin: 1px 2px 1px 0; padding: 1px 7px; border-radius: 999px; font-size: 12px;
  white-space: nowrap;
}
.tag.bad, .badge.bad { background: var(--bad-bg); color: var(--bad); }
.badge {
  display: inline-block; padding: 1px 9px; border-radius: 999px; font-size: 12px; font-weight: 600;
  letter-spacing: .02em; white-space: nowrap;
}
.badge.ok { background: var(--ok-bg); color: var(--ok); }
.badge.warn { background: var(--warn-bg); color: var(--warn); }
.badge.muted { background: var(--bg); color: var(--ink-3); }
code.repro {
  display: inline-block; background: #f1f3f5; border: 1px solid var(--line); border-radius: 6px;
  padding: 2px 8px; user-select: all; white-space: pre-wrap; word-break: break-all;
}

.facts { display: flex; flex-wrap: wrap; gap: 8px 28px; margin: 0 0 12px; }
.facts div { display: flex; flex-direction: column; }
.facts dt { font-size: 11.5px; color: var(--ink-3); text-transform: uppercase; letter-spacing: .05em; }
.facts dd { margin: 0; font-weight: 600; font-variant-numeric: tabular-nums; }
.bad-text { color: var(--bad); }
.repro-line { color: var(--ink-3); margin-bottom: 14px; }

.callout {
  border: 1px solid #f5b5b5; border-left: 5px solid var(--bad); background: var(--bad-bg); border-radius: 8px;
  padding: 10px 14px; margin: 14px 0 4px; scroll-margin-top: 16px;
}
.callout-head { color: var(--bad); font-weight: 700; font-size: 13px; }
.callout-text { font-family: var(--mono); font-size: 13px; white-space: pre-wrap; word-break: break-word; }
.callout:target { box-shadow: 0 0 0 3px rgba(197,48,48,.25); }

.legend { display: flex; flex-wrap: wrap; gap: 6px 18px; align-items: center; margin: 4px 0 10px;
  color: var(--ink-2); font-size: 12.5px; }
.legend .item { display: inline-flex; align-items: center; gap: 6px; }
.legend svg { display: block; }
.timeline { width: 100%; overflow-x: auto; border: 1px solid var(--line); border-radius: 8px; background: #fff; }
.timeline svg { display: block; font-family: inherit; }
.timeline .mark { cursor: default; }
.timeline .mark:hover > .shape { stroke: #111827; stroke-width: 1.5px; }
.timeline .bar:hover > rect { filter: brightness(.9); }

.cols { display: flex; gap: 32px; align-items: flex-start; }
.col { flex: 1 1 0; min-width: 0; }
.col.wide { flex: 2 1 0; }
ol.faults { margin: 0; padding-left: 22px; }
ol.faults li { padding: 3px 0; border-bottom: 1px dashed var(--line); }
ol.faults li::marker { color: var(--ink-3); font-size: 12px; }
.note { color: var(--ink-2); }
ul.examples { margin: 4px 0 0; padding-left: 0; list-style: none; }
ul.examples li { font-family: var(--mono); font-size: 12px; padding: 1px 0; word-break: break-word; }
ul.examples .t { display: inline-block; min-width: 78px; color: var(--ink-3); }
)CSS";

const char* const kScript = R"JS(
(function () {
  'use strict';
  var SVG_NS = 'http://www.w3.org/2000/svg';
  // Tableau-like categorical colours: partitions side by side stay distinguishable.
  var PALETTE = ['#4e79a7', '#f28e2b', '#59a14f', '#b07aa1', '#76b7b2', '#edc948', '#e15759', '#9c755f',
                 '#ff9da7', '#6b8e23', '#8cd17d', '#86bcb6', '#d37295', '#a0cbe8', '#ffbe7d', '#499894'];
  var COLORS = { rebalance: '#7048e8', commit: '#2f9e44', abort: '#e8590c', fault: '#d9480f', note: '#868e96',
                 violation: '#e03131', heal: '#2f9e44', settled: '#1c7ed6' };
  var LABEL_W = 128, PAD_R = 28, AXIS_TOP = 58, AXIS_BOTTOM = 28, MARK_STRIP = 24, ROW_H = 18, BAR_H = 14;

  function el(name, attrs, parent) {
    var node = document.createElementNS(SVG_NS, name);
    for (var key in attrs) if (Object.prototype.hasOwnProperty.call(attrs, key)) node.setAttribute(key, attrs[key]);
    if (parent) parent.appendChild(node);
    return node;
  }
  function title(node, text) { el('title', {}, node).textContent = text; return node; }
  function seconds(ms) {
    var s = (ms / 1000).toFixed(3).replace(/\.?0+$/, '');
    return s + ' s';
  }
  function niceStep(spanMs, width) {
    var want = Math.max(4, Math.floor(width / 110));
    var steps = [1, 2, 5, 10, 20, 50, 100, 200, 250, 500, 1000, 2000, 5000, 10000, 15000, 30000, 60000, 120000,
                 300000, 600000, 1800000, 3600000];
    for (var i = 0; i < steps.length; ++i) if (spanMs / steps[i] <= want) return steps[i];
    return steps[steps.length - 1];
  }

  function legend(host, tl) {
    function item(draw, label, tip) {
      var span = document.createElement('span');
      span.className = 'item';
      if (tip) span.title = tip;
      var svg = el('svg', { width: 22, height: 14, viewBox: '0 0 22 14' }, span);
      draw(svg);
      span.appendChild(document.createTextNode(label));
      host.appendChild(span);
    }
    tl.partitions.forEach(function (p, i) {
      item(function (s) { el('rect', { x: 1, y: 2, width: 20, height: 10, rx: 3, fill: PALETTE[i % PALETTE.length] }, s); },
           p.label, 'input partition ' + p.topic + '/' + p.partition);
    });
    item(function (s) { el('rect', { x: 1, y: 1, width: 20, height: 12, fill: 'url(#legend-hatch)', stroke: '#f08c00' }, s);
                        hatch(s, 'legend-hatch'); }, 'fault (start–end)');
    item(function (s) { el('path', { d: 'M11 2 L16 7 L11 12 L6 7 Z', fill: COLORS.rebalance }, s); }, 'rebalance');
    item(function (s) { el('rect', { x: 10, y: 2, width: 2, height: 10, fill: COLORS.commit }, s); }, 'commit');
    item(function (s) { el('path', { d: 'M7 3 L15 11 M15 3 L7 11', stroke: COLORS.abort, 'stroke-width': 2.2 }, s); }, 'abort');
    item(function (s) { el('circle', { cx: 11, cy: 7, r: 5, fill: COLORS.violation }, s); }, 'violation');
    item(function (s) { el('line', { x1: 11, y1: 0, x2: 11, y2: 14, stroke: COLORS.heal, 'stroke-width': 2, 'stroke-dasharray': '3 2' }, s); }, 'heal');
    item(function (s) { el('line', { x1: 11, y1: 0, x2: 11, y2: 14, stroke: COLORS.settled, 'stroke-width': 2, 'stroke-dasharray': '3 2' }, s); }, 'settled');
  }

  function hatch(svg, id) {
    var defs = el('defs', {}, svg);
    var pattern = el('pattern', { id: id, width: 6, height: 6, patternUnits: 'userSpaceOnUse',
                                  patternTransform: 'rotate(45)' }, defs);
    el('rect', { width: 6, height: 6, fill: 'rgba(255, 169, 77, 0.16)' }, pattern);
    el('line', { x1: 0, y1: 0, x2: 0, y2: 6, stroke: 'rgba(240, 140, 0, 0.35)', 'stroke-width': 2.5 }, pattern);
  }

  // Greedy interval packing: a worker's concurrent partitions go on separate rows within its lane.
  function packRows(spans) {
    var rowsEnd = [];
    spans.slice().sort(function (a, b) { return a.from - b.from || a.p - b.p; }).forEach(function (s) {
      var row = 0;
      while (row < rowsEnd.length && rowsEnd[row] > s.from) ++row;
      rowsEnd[row] = s.to;
      s.row = row;
    });
    return Math.max(1, rowsEnd.length);
  }

  function draw(host, tl) {
    if (!tl.lanes.length) {
      host.style.display = 'none';
      host.dataset.lanes = '0';
      host.dataset.marks = '0';
      return;
    }
    var width = Math.max(960, host.clientWidth || 1300);
    var t0 = tl.start_ms, t1 = Math.max(tl.end_ms, t0 + 1);
    var plotW = width - LABEL_W - PAD_R;
    function x(t) { return LABEL_W + (t - t0) / (t1 - t0) * plotW; }

    // Lane geometry.
    var lanes = tl.lanes.map(function (l) { return { name: l.name, worker: l.worker, spans: [] }; });
    var byName = {};
    lanes.forEach(function (l) { byName[l.name] = l; });
    tl.spans.forEach(function (s) { if (byName[s.worker]) byName[s.worker].spans.push(s); });
    var y = AXIS_TOP;
    lanes.forEach(function (l) {
      l.top = y;
      l.rows = l.worker ? packRows(l.spans) : 0;
      l.height = l.worker ? MARK_STRIP + l.rows * ROW_H + 8 : 34;
      y += l.height;
    });
    var plotBottom = y;
    var height = plotBottom + AXIS_BOTTOM;

    var svg = el('svg', { width: width, height: height, viewBox: '0 0 ' + width + ' ' + height,
                          role: 'img', 'aria-label': 'timeline of the run' });
    hatch(svg, 'fault-hatch');
    var gLanes = el('g', { 'class': 'lanes' }, svg);
    var gGrid = el('g', { 'class': 'grid' }, svg);
    var gRanges = el('g', { 'class': 'ranges' }, svg);
    var gBars = el('g', { 'class': 'bars' }, svg);
    var gLines = el('g', { 'class': 'lines' }, svg);
    var gMarks = el('g', { 'class': 'marks' }, svg);
    var marks = 0;

    lanes.forEach(function (l, i) {
      el('rect', { x: 0, y: l.top, width: width, height: l.height, fill: i % 2 ? '#fbfcfd' : '#ffffff' }, gLanes);
      el('line', { x1: 0, y1: l.top + l.height, x2: width, y2: l.top + l.height, stroke: '#e9ecef' }, gLanes);
      var label = el('text', { x: 14, y: l.top + (l.worker ? 16 : l.height / 2 + 4), 'font-size': 12.5,
                               'font-weight': l.worker ? 650 : 500, fill: l.worker ? '#1f2933' : '#52606d' }, gLanes);
      label.textContent = l.name;
    });
    el('line', { x1: LABEL_W, y1: AXIS_TOP, x2: LABEL_W, y2: plotBottom, stroke: '#cbd2d9' }, gLanes);

    // Time axis, top and bottom, with ticks in seconds.
    var step = niceStep(t1 - t0, plotW);
    for (var t = Math.ceil(t0 / step) * step; t <= t1; t += step) {
      var tx = x(t);
      el('line', { x1: tx, y1: AXIS_TOP, x2: tx, y2: plotBottom, stroke: '#f1f3f5' }, gGrid);
      el('line', { x1: tx, y1: AXIS_TOP - 5, x2: tx, y2: AXIS_TOP, stroke: '#adb5bd' }, gGrid);
      el('line', { x1: tx, y1: plotBottom, x2: tx, y2: plotBottom + 5, stroke: '#adb5bd' }, gGrid);
      var top = el('text', { x: tx, y: AXIS_TOP - 9, 'text-anchor': 'middle', 'font-size': 11, fill: '#7b8794' }, gGrid);
      top.textContent = seconds(t);
      var bottom = el('text', { x: tx, y: plotBottom + 18, 'text-anchor': 'middle', 'font-size': 11, fill: '#7b8794' }, gGrid);
      bottom.textContent = seconds(t);
    }
    el('line', { x1: LABEL_W, y1: AXIS_TOP, x2: width - PAD_R, y2: AXIS_TOP, stroke: '#cbd2d9' }, gGrid);
    el('line', { x1: LABEL_W, y1: plotBottom, x2: width - PAD_R, y2: plotBottom, stroke: '#cbd2d9' }, gGrid);

    // Faults: shaded ranges over their lane.
    tl.ranges.forEach(function (r) {
      var l = byName[r.lane];
      if (!l) return;
      var x0 = x(r.from), x1 = Math.max(x(r.to), x0 + 2);
      var g = el('g', { 'class': 'mark range', 'data-kind': 'fault' }, gRanges);
      el('rect', { 'class': 'shape', x: x0, y: l.top + 1, width: x1 - x0, height: l.height - 2,
                   fill: 'url(#fault-hatch)', stroke: 'rgba(240, 140, 0, 0.5)', 'stroke-width': 0.8 }, g);
      el('rect', { x: x0, y: l.top + 1, width: 2.5, height: l.height - 2, fill: COLORS.fault }, g);
      if (x1 - x0 > 60) {
        var chars = Math.floor((x1 - x0 - 10) / 6.4);
        var text = r.text.length > chars ? r.text.slice(0, Math.max(1, chars - 1)) + '…' : r.text;
        var label = el('text', { x: x0 + 6, y: l.top + l.height - 6, 'font-size': 10.5, fill: '#b35c00' }, g);
        label.textContent = text;
      }
      title(g, 'fault: ' + r.text + '\n' + seconds(r.from) + ' – ' + seconds(r.to) +
               (r.open ? ' (no end recorded; drawn to the heal)' : '\nended: ' + r.end_text));
      ++marks;
    });

    // Ownership: one bar per span, coloured and labelled by partition.
    tl.spans.forEach(function (s) {
      var l = byName[s.worker];
      if (!l) return;
      var p = tl.partitions[s.p];
      var color = PALETTE[s.p % PALETTE.length];
      // A pixel short of the end, so back-to-back spans of one partition read as two bars.
      var x0 = x(s.from), x1 = Math.max(x(s.to) - 1, x0 + 1.5);
      var by = l.top + MARK_STRIP + s.row * ROW_H;
      var g = el('g', { 'class': 'mark bar', 'data-kind': 'ownership' }, gBars);
      el('rect', { 'class': 'shape', x: x0, y: by, width: x1 - x0, height: BAR_H, rx: 3, fill: color }, g);
      if (x1 - x0 > 24) {
        var label = el('text', { x: x0 + 5, y: by + 10.5, 'font-size': 10.5, 'font-weight': 600, fill: '#ffffff' }, g);
        label.textContent = p.label;
      }
      title(g, s.worker + ' owns ' + p.topic + '/' + p.partition + ' (generation ' + s.generation + ')\n' +
               seconds(s.from) + ' – ' + seconds(s.to) + ' (' + seconds(s.to - s.from) + ')');
      ++marks;
    });

    // The heal and settle lines cross every lane.
    tl.lines.forEach(function (line, i) {
      var lx = x(line.t);
      var g = el('g', { 'class': 'mark line', 'data-kind': line.kind }, gLines);
      el('line', { 'class': 'shape', x1: lx, y1: AXIS_TOP - 2, x2: lx, y2: plotBottom, stroke: COLORS[line.kind],
                   'stroke-width': 1.6, 'stroke-dasharray': '5 3' }, g);
      el('rect', { x: lx - 4, y: AXIS_TOP, width: 8, height: plotBottom - AXIS_TOP, fill: 'transparent' }, g);
      var label = el('text', { x: lx + 4, y: 13 + (i % 2) * 13, 'font-size': 11, 'font-weight': 650, fill: COLORS[line.kind] }, g);
      label.textContent = line.kind + ' ' + seconds(line.t);
      title(g, line.kind + ' at ' + seconds(line.t) + (line.text ? ': ' + line.text : ''));
      ++marks;
    });

    // Point marks in the lane's top strip.
    var firstNode = null;
    tl.marks.forEach(function (m, i) {
      var l = byName[m.lane];
      if (!l) return;
      var mx = x(m.t), my = l.top + (l.worker ? 12 : l.height / 2);
      var first = i === tl.first_violation;
      var g = el('g', { 'class': 'mark point', 'data-kind': m.kind }, gMarks);
      el('rect', { x: mx - 5, y: my - 8, width: 10, height: 16, fill: 'transparent' }, g);
      var color = COLORS[m.kind === 'fault-end' ? 'fault' : m.kind] || COLORS.note;
      if (m.kind === 'rebalance') {
        el('path', { 'class': 'shape', d: 'M' + mx + ' ' + (my - 6) + ' l5 6 l-5 6 l-5 -6 Z', fill: color }, g);
      } else if (m.kind === 'commit') {
        el('rect', { 'class': 'shape', x: mx - 0.9, y: my - 6, width: 1.8, height: 12, fill: color }, g);
      } else if (m.kind === 'abort') {
        el('path', { 'class': 'shape', d: 'M' + (mx - 4) + ' ' + (my - 4) + ' l8 8 m0 -8 l-8 8', stroke: color,
                     'stroke-width': 2.2, 'stroke-linecap': 'round' }, g);
      } else if (m.kind === 'fault' || m.kind === 'fault-end') {
        el('path', { 'class': 'shape', d: 'M' + mx + ' ' + (my - 6) + ' l5 10 h-10 Z', fill: color }, g);
      } else if (m.kind === 'violation') {
        if (first) {
          el('line', { x1: mx, y1: AXIS_TOP, x2: mx, y2: plotBottom, stroke: color, 'stroke-width': 1.2,
                       'stroke-dasharray': '2 2' }, g);
          el('circle', { cx: mx, cy: my, r: 13, fill: 'rgba(224, 49, 49, 0.18)' }, g);
          var flag = el('text', { x: mx + 4, y: 39, 'font-size': 11, 'font-weight': 700, fill: color }, g);
          flag.textContent = 'first violation ' + seconds(m.t);
        }
        el('circle', { 'class': 'shape', cx: mx, cy: my, r: first ? 7.5 : 5, fill: color,
                       stroke: '#ffffff', 'stroke-width': 1.2 }, g);
        var bang = el('text', { x: mx, y: my + (first ? 4 : 3), 'text-anchor': 'middle', 'font-size': first ? 11 : 8,
                                'font-weight': 800, fill: '#ffffff' }, g);
        bang.textContent = '!';
      } else {
        el('circle', { 'class': 'shape', cx: mx, cy: my, r: 3.5, fill: color }, g);
      }
      title(g, (first ? 'FIRST VIOLATION' : m.kind) + ' at ' + seconds(m.t) + ' on ' + m.lane +
               (m.text ? '\n' + m.text : ''));
      if (first) { g.setAttribute('id', 'first-violation-mark'); firstNode = g; }
      ++marks;
    });
    // The first violation on top of everything else.
    if (firstNode) gMarks.appendChild(firstNode);

    host.appendChild(svg);
    host.dataset.lanes = String(lanes.length);
    host.dataset.marks = String(marks);
  }

  try {
    var data = JSON.parse(document.getElementById('report-data').textContent);
    var host = document.getElementById('timeline');
    if (host && data.timeline) {
      if (data.timeline.lanes.length) legend(document.getElementById('legend'), data.timeline);
      draw(host, data.timeline);
    }
    document.body.dataset.rendered = 'ok';
  } catch (e) {
    document.body.dataset.rendered = 'error: ' + (e && e.message ? e.message : String(e));
    throw e;
  }
})();
)JS";

}  // namespace
}  // namespace mephisto::sim::scenario
