#include "cli/report_html.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <set>
#include <sstream>

#include "cli/session.hpp"
#include "engine/case_detail.hpp"
#include "workflows/duration.hpp"
#include "workflows/i18n.hpp"

namespace wf::cli {

namespace {

using nlohmann::json;

std::string Fixed(double value, int digits) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.*f", digits, value);
  return buffer;
}

std::string Percent(const std::optional<double>& rate) {
  return rate ? i18n::Decimal(*rate * 100, 0) + " %" : std::string("–");
}

std::string Count(std::int64_t n) { return i18n::Number(n); }

std::string Days(const std::optional<double>& days) {
  return days ? FormatWorkingDays(*days) : std::string("–");
}

// "2026-11-26 06:48 UTC" ("26/11/2026 06:48 UTC" in Vietnamese).
std::string UtcMinute(engine::Timestamp t) {
  std::string text = engine::FormatRfc3339(t);
  return i18n::DateTime(text.substr(0, 10) + " " + text.substr(11, 5)) + " UTC";
}

// A step's label (engine::StepFigures::label) for people: the report's own words translated
// ("signal X", "sub-case X", "in parallel", "end: completed", "decision"), a task's title in the
// reader's language, names as they are.
std::string LabelForPeople(const engine::StepFigures& s, const engine::TitleBook& titles) {
  auto after = [&](std::string_view prefix) -> std::optional<std::string> {
    if (s.label.compare(0, prefix.size(), prefix) != 0) return std::nullopt;
    return s.label.substr(prefix.size());
  };
  if (s.kind == "task") return titles.Task(s.id, s.label);
  if (s.kind == "wait") {
    if (auto name = after("signal ")) return TrFormat("signal {0}", *name);
  } else if (s.kind == "call_procedure") {
    if (auto name = after("sub-case ")) return TrFormat("sub-case {0}", *name);
  } else if (s.kind == "end") {
    if (auto outcome = after("end: ")) return TrFormat("end: {0}", engine::StatusText(*outcome));
  } else if (s.kind == "parallel" && s.label == "in parallel") {
    return Tr("in parallel");
  } else if (s.kind == "decision" && s.label == "decision") {
    return engine::StepKindText(s.kind);
  }
  return s.label;
}

// The title of an edge of the process map: "a → b (next)".
std::string EdgeTitle(const std::string& from, const engine::MapEdge& edge) {
  if (edge.kind == "next") return TrFormat("{0} → {1} (next)", from, edge.to);
  if (edge.kind == "branch") return TrFormat("{0} → {1} (branch)", from, edge.to);
  if (edge.kind == "on_error") return TrFormat("{0} → {1} (on_error)", from, edge.to);
  if (edge.kind == "on_timeout") return TrFormat("{0} → {1} (on_timeout)", from, edge.to);
  return from + " → " + edge.to + " (" + edge.kind + ")";
}

json Summary(const engine::DurationSummary& s) {
  auto number = [](const std::optional<double>& v) { return v ? json(*v) : json(nullptr); };
  return {{"count", s.count},
          {"mean", number(s.mean)},
          {"median", number(s.median)},
          {"p90", number(s.p90)},
          {"max", number(s.max)}};
}

json Optional(const std::optional<double>& v) { return v ? json(*v) : json(nullptr); }

// A table's header cells.
std::string Th(const char* text) { return "<th>" + std::string(text) + "</th>"; }
std::string ThNum(const char* text) { return "<th class=\"num\">" + std::string(text) + "</th>"; }

// The colour of a step in the process map: green for the fastest, through amber, to red for the
// slowest of the procedure; grey when no visit of it has ended.
std::string HeatColour(double fraction) {
  fraction = std::clamp(fraction, 0.0, 1.0);
  // Hue 130 (green) to 0 (red).
  return "hsl(" + Fixed(130.0 * (1.0 - fraction), 0) + ", 65%, " +
         Fixed(82.0 - 22.0 * fraction, 0) + "%)";
}

// --- charts ------------------------------------------------------------------------------------

// Horizontal bars per procedure: median and 90th percentile against the statutory limit.
std::string TimesChart(const engine::Report& report) {
  const auto& procedures = report.procedures;
  double scale = 0;
  for (const auto& p : procedures) {
    scale = std::max({scale, p.processing.p90.value_or(0), p.limit_days.value_or(0)});
  }
  if (scale <= 0) scale = 1;
  const int label_width = 260, bar_width = 440, row = 46, top = 28;
  const int width = label_width + bar_width + 150;
  const int height = top + row * static_cast<int>(procedures.size()) + 10;
  std::ostringstream svg;
  svg << "<svg class=\"chart\" id=\"chart-times\" xmlns=\"http://www.w3.org/2000/svg\" width=\""
      << width << "\" height=\"" << height << "\" viewBox=\"0 0 " << width << ' ' << height
      << "\" role=\"img\" aria-label=\"" << Tr("Processing time against the statutory limit")
      << "\">\n";
  svg << "<text x=\"" << label_width << "\" y=\"16\" class=\"legend\">"
      << TrFormat("{0} median  {1} 90th percentile  {2} statutory limit (working days)",
                  "<tspan class=\"k-median\">■</tspan>", "<tspan class=\"k-p90\">■</tspan>",
                  "<tspan class=\"k-limit\">┃</tspan>")
      << "</text>\n";
  int y = top;
  for (const auto& p : procedures) {
    auto x_of = [&](double days) { return label_width + bar_width * days / scale; };
    svg << "<g class=\"bar-row\" data-procedure=\"" << HtmlEscape(p.name) << "\">";
    svg << "<text x=\"" << label_width - 8 << "\" y=\"" << y + 20
        << "\" text-anchor=\"end\" class=\"label\">" << HtmlEscape(p.name) << "</text>";
    double median = p.processing.median.value_or(0), p90 = p.processing.p90.value_or(0);
    svg << "<rect class=\"bar-p90\" x=\"" << label_width << "\" y=\"" << y + 4 << "\" width=\""
        << Fixed(x_of(p90) - label_width, 1) << "\" height=\"26\"><title>"
        << TrFormat("90th percentile: {0}", Days(p.processing.p90)) << "</title></rect>";
    svg << "<rect class=\"bar-median\" x=\"" << label_width << "\" y=\"" << y + 10 << "\" width=\""
        << Fixed(x_of(median) - label_width, 1) << "\" height=\"14\"><title>"
        << TrFormat("median: {0}", Days(p.processing.median)) << "</title></rect>";
    if (p.limit_days) {
      double x = x_of(*p.limit_days);
      svg << "<line class=\"limit\" x1=\"" << Fixed(x, 1) << "\" x2=\"" << Fixed(x, 1) << "\" y1=\""
          << y << "\" y2=\"" << y + 34 << "\"><title>"
          << TrFormat("statutory limit: {0}", HtmlEscape(LimitForPeople(p.limit)))
          << "</title></line>";
    }
    std::string note = p.processing.count == 0
                           ? std::string(Tr("no finished case"))
                           : Days(p.processing.median) + " / " + Days(p.processing.p90);
    svg << "<text x=\"" << label_width + bar_width + 8 << "\" y=\"" << y + 21
        << "\" class=\"value\">" << HtmlEscape(note) << "</text></g>\n";
    y += row;
  }
  svg << "</svg>\n";
  return svg.str();
}

// Horizontal bars: the share of finished cases that ended by their deadline.
std::string OnTimeChart(const engine::Report& report) {
  const int label_width = 260, bar_width = 440, row = 30, top = 10;
  const int width = label_width + bar_width + 150;
  const int height = top + row * static_cast<int>(report.procedures.size()) + 10;
  std::ostringstream svg;
  svg << "<svg class=\"chart\" id=\"chart-on-time\" xmlns=\"http://www.w3.org/2000/svg\" width=\""
      << width << "\" height=\"" << height << "\" viewBox=\"0 0 " << width << ' ' << height
      << "\" role=\"img\" aria-label=\"" << Tr("On-time rate") << "\">\n";
  int y = top;
  for (const auto& p : report.procedures) {
    svg << "<g class=\"bar-row\" data-procedure=\"" << HtmlEscape(p.name) << "\">";
    svg << "<text x=\"" << label_width - 8 << "\" y=\"" << y + 16
        << "\" text-anchor=\"end\" class=\"label\">" << HtmlEscape(p.name) << "</text>";
    svg << "<rect class=\"track\" x=\"" << label_width << "\" y=\"" << y + 4 << "\" width=\""
        << bar_width << "\" height=\"16\"/>";
    if (p.on_time_rate) {
      svg << "<rect class=\"bar-on-time\" x=\"" << label_width << "\" y=\"" << y + 4
          << "\" width=\"" << Fixed(bar_width * *p.on_time_rate, 1) << "\" height=\"16\"><title>"
          << TrFormat("{0} of {1} on time", Count(p.on_time), Count(p.with_deadline))
          << "</title></rect>";
    }
    std::string note = p.on_time_rate ? TrFormat("{0} ({1} of {2})", Percent(p.on_time_rate),
                                                 Count(p.on_time), Count(p.with_deadline))
                                      : std::string(Tr("no finished case with a deadline"));
    svg << "<text x=\"" << label_width + bar_width + 8 << "\" y=\"" << y + 17
        << "\" class=\"value\">" << HtmlEscape(note) << "</text></g>\n";
    y += row;
  }
  svg << "</svg>\n";
  return svg.str();
}

// The process map of one procedure: steps in layers from the first step (breadth first), each
// coloured by its mean time; forward edges straight, edges back up curved, on_error and
// on_timeout dashed.
std::string ProcessMap(const engine::ProcedureFigures& p, const engine::TitleBook& titles) {
  std::map<std::string, const engine::StepFigures*> by_id;
  for (const auto& s : p.steps) by_id[s.id] = &s;
  std::map<std::string, int> layer;
  std::vector<std::vector<std::string>> layers;
  std::vector<std::string> queue;
  auto place = [&](const std::string& id, int depth) {
    if (layer.count(id) > 0 || by_id.count(id) == 0) return;
    layer[id] = depth;
    if (static_cast<int>(layers.size()) <= depth) layers.resize(depth + 1);
    layers[depth].push_back(id);
    queue.push_back(id);
  };
  if (!p.start.empty()) place(p.start, 0);
  for (size_t i = 0; i < queue.size(); ++i) {
    const std::string id = queue[i];
    for (const auto& edge : by_id[id]->edges) place(edge.to, layer[id] + 1);
  }
  // Steps the first one does not reach (retired steps of older versions) go in a last row.
  for (const auto& s : p.steps) {
    if (layer.count(s.id) == 0) place(s.id, static_cast<int>(layers.size()));
  }

  double slowest = 0;
  for (const auto& s : p.steps) slowest = std::max(slowest, s.time.mean.value_or(0));

  const int node_w = 180, node_h = 46, gap_x = 24, gap_y = 50, margin = 30;
  size_t widest = 1;
  for (const auto& row : layers) widest = std::max(widest, row.size());
  const int width = margin * 2 + static_cast<int>(widest) * (node_w + gap_x) + 60;
  const int height = margin * 2 + static_cast<int>(layers.size()) * (node_h + gap_y);
  std::map<std::string, std::pair<int, int>> at;  // top-left corner
  for (size_t d = 0; d < layers.size(); ++d) {
    const auto& row = layers[d];
    int row_width = static_cast<int>(row.size()) * (node_w + gap_x) - gap_x;
    int x0 = (width - 60 - row_width) / 2;
    for (size_t i = 0; i < row.size(); ++i) {
      at[row[i]] = {x0 + static_cast<int>(i) * (node_w + gap_x),
                    margin + static_cast<int>(d) * (node_h + gap_y)};
    }
  }

  std::ostringstream svg;
  svg << "<svg class=\"map\" xmlns=\"http://www.w3.org/2000/svg\" width=\"" << width
      << "\" height=\"" << height << "\" viewBox=\"0 0 " << width << ' ' << height
      << "\" role=\"img\" aria-label=\"" << TrFormat("Process map of {0}", HtmlEscape(p.name))
      << "\">\n";
  svg << "<defs><marker id=\"arrow-" << HtmlEscape(p.name)
      << "\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"7\" markerHeight=\"7\" "
         "orient=\"auto-start-reverse\"><path d=\"M 0 0 L 10 5 L 0 10 z\" fill=\"#555\"/>"
         "</marker></defs>\n";
  for (const auto& s : p.steps) {
    auto from = at.find(s.id);
    if (from == at.end()) continue;
    for (const auto& edge : s.edges) {
      auto to = at.find(edge.to);
      if (to == at.end()) continue;
      int x1 = from->second.first + node_w / 2, y1 = from->second.second + node_h;
      int x2 = to->second.first + node_w / 2, y2 = to->second.second;
      std::string cls = edge.kind == "on_error" || edge.kind == "on_timeout" ? "edge alt" : "edge";
      svg << "<path class=\"" << cls << "\" marker-end=\"url(#arrow-" << HtmlEscape(p.name)
          << ")\" d=\"";
      if (y2 > y1) {
        svg << "M " << x1 << ' ' << y1 << " C " << x1 << ' ' << (y1 + y2) / 2 << ' ' << x2 << ' '
            << (y1 + y2) / 2 << ' ' << x2 << ' ' << y2;
      } else {
        // Back up (a loop such as supplement -> review): around the right-hand side.
        int xs = from->second.first + node_w, ys = from->second.second + node_h / 2;
        int xe = to->second.first + node_w, ye = to->second.second + node_h / 2;
        int bulge = std::max(xs, xe) + 50;
        svg << "M " << xs << ' ' << ys << " C " << bulge << ' ' << ys << ' ' << bulge << ' ' << ye
            << ' ' << xe << ' ' << ye;
      }
      svg << "\"><title>" << HtmlEscape(EdgeTitle(s.id, edge)) << "</title></path>\n";
    }
  }
  for (const auto& s : p.steps) {
    auto where = at.find(s.id);
    if (where == at.end()) continue;
    auto [x, y] = where->second;
    std::string fill = "#e4e4e4";
    if (s.time.mean && slowest > 0) fill = HeatColour(std::sqrt(*s.time.mean / slowest));
    if (s.time.mean && slowest <= 0) fill = HeatColour(0);
    std::string time;
    if (s.time.mean && s.waiting_now > 0) {
      time =
          TrFormat("mean {0}, {1} waiting", FormatWorkingDays(*s.time.mean), Count(s.waiting_now));
    } else if (s.time.mean) {
      time = TrFormat("mean {0}", FormatWorkingDays(*s.time.mean));
    } else if (s.waiting_now > 0) {
      time = TrFormat("{0} waiting", Count(s.waiting_now));
    } else {
      time = Tr("not reached");
    }
    const std::string kind = engine::StepKindText(s.kind);
    const std::string title =
        s.who.empty()
            ? TrFormat("{0} ({1}): {2}; {3} visits, {4}", s.id, kind, LabelForPeople(s, titles),
                       Count(s.visits), time)
            : TrFormat("{0} ({1}): {2} — {3}; {4} visits, {5}", s.id, kind,
                       LabelForPeople(s, titles), WhoForPeople(s.who), Count(s.visits), time);
    svg << "<g class=\"node\" data-step=\"" << HtmlEscape(s.id) << "\"><title>" << HtmlEscape(title)
        << "</title><rect x=\"" << x << "\" y=\"" << y << "\" width=\"" << node_w << "\" height=\""
        << node_h << "\" rx=\"" << (s.kind == "task" ? 10 : 3) << "\" fill=\"" << fill
        << "\" class=\"kind-" << HtmlEscape(s.kind) << "\"/>";
    std::string name = s.id.size() > 24 ? s.id.substr(0, 23) + "…" : s.id;
    svg << "<text x=\"" << x + node_w / 2 << "\" y=\"" << y + 19
        << "\" text-anchor=\"middle\" class=\"node-id\">" << HtmlEscape(name) << "</text>";
    svg << "<text x=\"" << x + node_w / 2 << "\" y=\"" << y + 36
        << "\" text-anchor=\"middle\" class=\"node-time\">" << HtmlEscape(time) << "</text></g>\n";
  }
  svg << "</svg>\n";
  return svg.str();
}

const char* kStyle = R"(
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 24px 32px;
       color: #1d1d1f; max-width: 1200px; }
h1 { font-size: 22px; margin-bottom: 4px; } h2 { font-size: 18px; margin-top: 32px;
       border-bottom: 1px solid #ddd; padding-bottom: 4px; } h3 { font-size: 15px; }
.meta { color: #666; } .note { color: #555; font-size: 13px; max-width: 900px; }
table { border-collapse: collapse; margin: 8px 0 16px; }
th, td { border-bottom: 1px solid #e3e3e3; padding: 4px 10px; text-align: left; }
td.num { white-space: nowrap; }
th { background: #f5f5f7; font-weight: 600; } td.num, th.num { text-align: right; }
td.bad { color: #b00020; font-weight: 600; } td.good { color: #17663a; }
.tiles { display: flex; gap: 12px; flex-wrap: wrap; }
.tile { border: 1px solid #ddd; border-radius: 8px; padding: 8px 14px; min-width: 120px; }
.tile b { display: block; font-size: 20px; }
svg text { font: 12px system-ui, sans-serif; fill: #1d1d1f; }
svg .legend { font-size: 12px; } .k-median { fill: #2f5d9e; } .k-p90 { fill: #9cb8e0; }
.k-limit { fill: #b00020; }
.bar-median { fill: #2f5d9e; } .bar-p90 { fill: #9cb8e0; } .bar-on-time { fill: #2e8b57; }
.track { fill: #eee; } .limit { stroke: #b00020; stroke-width: 3; }
.edge { fill: none; stroke: #555; stroke-width: 1.3; } .edge.alt { stroke-dasharray: 5 4; }
.node rect { stroke: #444; stroke-width: 1; } .node .node-id { font-weight: 600; }
.node .node-time { font-size: 11px; }
.scale { display: inline-block; width: 160px; height: 10px; vertical-align: middle;
         background: linear-gradient(to right, hsl(130,65%,82%), hsl(65,65%,71%), hsl(0,65%,60%)); }
)";

void ProcedureSection(std::ostringstream& out, const engine::ProcedureFigures& p,
                      const engine::TitleBook& titles) {
  out << "<section class=\"procedure\" id=\"procedure-" << HtmlEscape(p.name) << "\">\n";
  out << "<h2>" << HtmlEscape(p.name) << "</h2>\n<p class=\"meta\">"
      << HtmlEscape(titles.Procedure(p.name, p.title)) << "<br>"
      << (p.limit.empty() ? TrFormat("agency {0} · statutory limit none", HtmlEscape(p.agency))
                          : TrFormat("agency {0} · statutory limit {1}", HtmlEscape(p.agency),
                                     HtmlEscape(LimitForPeople(p.limit))))
      << "</p>\n";
  out << "<h3>" << Tr("Process map") << "</h3>\n<p class=\"note\">"
      << TrFormat(
             "Each step coloured by its mean time ({0} fastest to slowest step of this "
             "procedure; grey: no visit ended yet). Dashed: on_error / on_timeout.",
             "<span class=\"scale\"></span>")
      << "</p>\n";
  out << ProcessMap(p, titles);
  std::vector<const engine::StepFigures*> slow;
  for (const auto& s : p.steps) {
    if (s.visits > 0 || s.waiting_now > 0) slow.push_back(&s);
  }
  std::stable_sort(slow.begin(), slow.end(), [](const auto* a, const auto* b) {
    return a->time.mean.value_or(0) > b->time.mean.value_or(0);
  });
  out << "<h3>" << Tr("Where cases wait, longest first") << "</h3>\n<table class=\"steps\">\n<tr>"
      << Th(Tr("step")) << Th(Tr("kind")) << Th(Tr("who")) << ThNum(Tr("visits"))
      << ThNum(Tr("mean")) << ThNum(Tr("max")) << ThNum(Tr("waiting now"))
      << ThNum(Tr("longest wait now")) << ThNum(Tr("reused / called")) << "</tr>\n";
  for (const auto* s : slow) {
    out << "<tr><td>" << HtmlEscape(s->id) << "</td><td>"
        << HtmlEscape(engine::StepKindText(s->kind)) << "</td><td>"
        << HtmlEscape(WhoForPeople(s->who)) << "</td><td class=\"num\">" << Count(s->visits)
        << "</td><td class=\"num\">" << Days(s->time.mean) << "</td><td class=\"num\">"
        << Days(s->time.max) << "</td><td class=\"num\">" << Count(s->waiting_now)
        << "</td><td class=\"num\">" << Days(s->longest_wait_now) << "</td><td class=\"num\">"
        << (s->kind == "adapter" ? Count(s->reused) + " / " + Count(s->calls) : std::string())
        << "</td></tr>\n";
  }
  out << "</table>\n";
  out << "<h3>" << Tr("Overdue cases") << "</h3>\n";
  if (p.overdue_cases.empty()) {
    out << "<p class=\"overdue-none\">" << Tr("No open case is past its deadline.") << "</p>\n";
  } else {
    out << "<table class=\"overdue\">\n<tr>" << Th(Tr("case")) << Th(Tr("started"))
        << Th(Tr("deadline")) << ThNum(Tr("overdue by")) << Th(Tr("waiting at")) << "</tr>\n";
    for (const auto& c : p.overdue_cases) {
      std::string steps;
      for (const auto& s : c.steps) steps += (steps.empty() ? "" : ", ") + s;
      out << "<tr><td>" << HtmlEscape(c.id) << "</td><td>" << UtcMinute(c.started_at) << "</td><td>"
          << UtcMinute(c.deadline_at) << "</td><td class=\"num bad\">"
          << FormatWorkingDays(c.overdue_days) << "</td><td>" << HtmlEscape(steps)
          << "</td></tr>\n";
    }
    out << "</table>\n";
    if (p.overdue > static_cast<std::int64_t>(p.overdue_cases.size())) {
      out << "<p class=\"note\">"
          << TrFormat("The {0} most overdue of {1}.",
                      Count(static_cast<std::int64_t>(p.overdue_cases.size())), Count(p.overdue))
          << "</p>\n";
    }
  }
  out << "</section>\n";
}

}  // namespace

std::string HtmlEscape(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
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

std::string FormatWorkingDays(double days) {
  double seconds = days * 86400.0;
  if (seconds < 60) return TrFormat("{0} s", i18n::Decimal(std::max(0.0, seconds), 0));
  if (seconds < 3600) return TrFormat("{0} min", i18n::Decimal(seconds / 60, 0));
  if (days < 1) return TrFormat("{0} h", i18n::Decimal(seconds / 3600, 1));
  // "1.0" (from 1 up to 1.05) is one working day.
  return TrFormatN("{0} working day", "{0} working days", days < 1.05 ? 1 : 2,
                   i18n::Decimal(days, 1));
}

std::string LimitForPeople(const std::string& limit) {
  std::optional<workflows::Duration> duration = workflows::ParseDuration(limit);
  if (!duration || duration->ToString() != limit) return limit;
  const std::string n = i18n::Number(duration->amount);
  const auto count = static_cast<unsigned long>(duration->amount);
  switch (duration->unit) {
    case workflows::DurationUnit::kSeconds:
      return TrFormat("{0}s", n);
    case workflows::DurationUnit::kMinutes:
      return TrFormat("{0}m", n);
    case workflows::DurationUnit::kHours:
      return TrFormat("{0}h", n);
    case workflows::DurationUnit::kDays:
      return TrFormatN("{0} day", "{0} days", count, n);
    case workflows::DurationUnit::kWorkingDays:
      return TrFormatN("{0} working day", "{0} working days", count, n);
  }
  return limit;
}

std::string WhoForPeople(const std::string& who) {
  // The words engine/report.cpp writes for a wait step.
  if (who == "applicant (clock paused)") return Tr("applicant (clock paused)");
  if (who == "outside") return Tr("outside");
  return who;
}

std::string RenderReportHtml(const engine::Report& report, const std::string& source,
                             const engine::TitleBook& titles) {
  std::ostringstream out;
  out << "<!DOCTYPE html>\n<html lang=\"" << i18n::Code()
      << "\">\n<head>\n<meta charset=\"utf-8\">\n"
         "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
         "<title>"
      << Tr("wf report: processing times against statutory limits") << "</title>\n<style>" << kStyle
      << "</style>\n</head>\n<body>\n";
  out << "<h1>" << Tr("Processing times against statutory limits") << "</h1>\n<p class=\"meta\">"
      << TrFormat("{0} · generated {1} · {2} cases, {3} history events", HtmlEscape(source),
                  UtcMinute(report.generated_at), Count(report.cases), Count(report.events))
      << "</p>\n";
  std::int64_t open = 0, overdue = 0, with_deadline = 0, on_time = 0;
  for (const auto& p : report.procedures) {
    open += p.open;
    overdue += p.overdue;
    with_deadline += p.with_deadline;
    on_time += p.on_time;
  }
  std::optional<double> rate;
  if (with_deadline > 0) rate = static_cast<double>(on_time) / static_cast<double>(with_deadline);
  out << "<div class=\"tiles\" id=\"totals\">"
      << "<div class=\"tile\"><b id=\"total-cases\">" << Count(report.cases) << "</b>"
      << Tr("cases") << "</div>"
      << "<div class=\"tile\"><b>" << Count(open) << "</b>" << Tr("open") << "</div>"
      << "<div class=\"tile\"><b id=\"total-on-time\">" << Percent(rate) << "</b>" << Tr("on time")
      << "</div>"
      << "<div class=\"tile\"><b id=\"total-overdue\">" << Count(overdue) << "</b>"
      << Tr("overdue now") << "</div>"
      << "<div class=\"tile\"><b id=\"total-reused\">" << Count(report.reused) << "</b>"
      << Tr("data reused") << "</div>"
      << "<div class=\"tile\"><b id=\"total-refused\">" << Count(report.refused_duplicates)
      << "</b>" << Tr("duplicates refused") << "</div></div>\n";
  out << "<p class=\"note\">"
      << Tr("Times are working time on the owning agency's calendar (each working day counts "
            "whole; weekends and holidays not at all), from the filing to the end of the case, "
            "without the time the statutory clock was paused for the applicant. On time: ended by "
            "the statutory deadline. Median and 90th percentile over the cases that ended (not "
            "cancelled).")
      << "</p>\n";

  out << "<h2>" << Tr("Procedures") << "</h2>\n<table id=\"procedures\">\n<tr>"
      << Th(Tr("procedure")) << Th(Tr("agency")) << Th(Tr("limit")) << ThNum(Tr("cases"))
      << ThNum(Tr("open")) << ThNum(Tr("ended")) << ThNum(Tr("median")) << ThNum(Tr("p90"))
      << ThNum(Tr("on time")) << ThNum(Tr("late")) << ThNum(Tr("overdue now"))
      << ThNum(Tr("data reused")) << ThNum(Tr("duplicates refused")) << "</tr>\n";
  for (const auto& p : report.procedures) {
    bool slow = p.limit_days && p.processing.p90 && *p.processing.p90 > *p.limit_days;
    out << "<tr data-procedure=\"" << HtmlEscape(p.name) << "\"><td><a href=\"#procedure-"
        << HtmlEscape(p.name) << "\">" << HtmlEscape(p.name) << "</a></td><td>"
        << HtmlEscape(p.agency) << "</td><td>" << HtmlEscape(LimitForPeople(p.limit)) << "</td>"
        << "<td class=\"num cases\">" << Count(p.cases) << "</td><td class=\"num\">"
        << Count(p.open) << "</td><td class=\"num\">" << Count(p.finished)
        << "</td><td class=\"num median\">" << Days(p.processing.median)
        << "</td><td class=\"num p90" << (slow ? " bad" : "") << "\">" << Days(p.processing.p90)
        << "</td><td class=\"num on-time\">" << Percent(p.on_time_rate) << "</td><td class=\"num"
        << (p.late > 0 ? " bad" : "") << "\">" << Count(p.late) << "</td><td class=\"num overdue"
        << (p.overdue > 0 ? " bad" : "") << "\">" << Count(p.overdue)
        << "</td><td class=\"num reused\">"
        << (p.calls + p.reused > 0
                ? TrFormat("{0} of {1}", Count(p.reused), Count(p.calls + p.reused))
                : Count(p.reused))
        << "</td><td class=\"num refused\">" << Count(p.refused_duplicates) << "</td></tr>\n";
  }
  out << "</table>\n";
  out << "<h3>" << Tr("Processing time against the statutory limit") << "</h3>\n"
      << TimesChart(report);
  out << "<h3>" << Tr("On-time rate") << "</h3>\n" << OnTimeChart(report);

  out << "<h2>" << Tr("Agencies") << "</h2>\n<table id=\"agencies\">\n<tr>" << Th(Tr("agency"))
      << Th(Tr("calendar")) << ThNum(Tr("procedures")) << ThNum(Tr("cases")) << ThNum(Tr("open"))
      << ThNum(Tr("ended")) << ThNum(Tr("median")) << ThNum(Tr("p90")) << ThNum(Tr("on time"))
      << ThNum(Tr("overdue now")) << ThNum(Tr("data reused")) << ThNum(Tr("duplicates refused"))
      << "</tr>\n";
  for (const auto& a : report.agencies) {
    out << "<tr><td>" << HtmlEscape(a.agency) << "</td><td>" << HtmlEscape(a.calendar)
        << "</td><td class=\"num\">" << Count(a.procedures) << "</td><td class=\"num\">"
        << Count(a.cases) << "</td><td class=\"num\">" << Count(a.open) << "</td><td class=\"num\">"
        << Count(a.finished) << "</td><td class=\"num\">" << Days(a.processing.median)
        << "</td><td class=\"num\">" << Days(a.processing.p90) << "</td><td class=\"num\">"
        << Percent(a.on_time_rate) << "</td><td class=\"num" << (a.overdue > 0 ? " bad" : "")
        << "\">" << Count(a.overdue) << "</td><td class=\"num\">" << Count(a.reused)
        << "</td><td class=\"num\">" << Count(a.refused_duplicates) << "</td></tr>\n";
  }
  out << "</table>\n";

  out << "<h2>" << Tr("Steps where cases wait longest")
      << "</h2>\n<table id=\"slowest-steps\">\n<tr>" << Th(Tr("procedure")) << Th(Tr("step"))
      << Th(Tr("who")) << ThNum(Tr("visits")) << ThNum(Tr("mean")) << ThNum(Tr("max")) << "</tr>\n";
  for (const auto& s : report.slowest_steps) {
    out << "<tr><td>" << HtmlEscape(s.procedure) << "</td><td>" << HtmlEscape(s.step) << "</td><td>"
        << HtmlEscape(WhoForPeople(s.who)) << "</td><td class=\"num\">" << Count(s.visits)
        << "</td><td class=\"num\">" << FormatWorkingDays(s.mean_days) << "</td><td class=\"num\">"
        << Days(s.max_days) << "</td></tr>\n";
  }
  out << "</table>\n";
  for (const auto& p : report.procedures) ProcedureSection(out, p, titles);
  out << "</body>\n</html>\n";
  return out.str();
}

json ReportJson(const engine::Report& report) {
  json procedures = json::array();
  for (const auto& p : report.procedures) {
    json steps = json::array();
    for (const auto& s : p.steps) {
      json edges = json::array();
      for (const auto& e : s.edges) edges.push_back({{"to", e.to}, {"kind", e.kind}});
      steps.push_back({{"id", s.id},
                       {"kind", s.kind},
                       {"label", s.label},
                       {"who", s.who},
                       {"next", edges},
                       {"visits", s.visits},
                       {"time", Summary(s.time)},
                       {"waiting_now", s.waiting_now},
                       {"longest_wait_now", Optional(s.longest_wait_now)},
                       {"calls", s.calls},
                       {"reused", s.reused}});
    }
    json overdue = json::array();
    for (const auto& c : p.overdue_cases) {
      overdue.push_back({{"id", c.id},
                         {"started_at", JsonTime(c.started_at)},
                         {"deadline_at", JsonTime(c.deadline_at)},
                         {"overdue_days", c.overdue_days},
                         {"steps", c.steps}});
    }
    procedures.push_back({{"name", p.name},
                          {"title", p.title},
                          {"agency", p.agency},
                          {"limit", p.limit.empty() ? json(nullptr) : json(p.limit)},
                          {"limit_days", Optional(p.limit_days)},
                          {"cases", p.cases},
                          {"open", p.open},
                          {"finished", p.finished},
                          {"cancelled", p.cancelled},
                          {"outcomes", p.outcomes},
                          {"processing_days", Summary(p.processing)},
                          {"with_deadline", p.with_deadline},
                          {"on_time", p.on_time},
                          {"on_time_rate", Optional(p.on_time_rate)},
                          {"late", p.late},
                          {"overdue", p.overdue},
                          {"overdue_cases", overdue},
                          {"calls", p.calls},
                          {"reused", p.reused},
                          {"refused_duplicates", p.refused_duplicates},
                          {"start", p.start},
                          {"steps", steps}});
  }
  json agencies = json::array();
  for (const auto& a : report.agencies) {
    agencies.push_back({{"agency", a.agency},
                        {"calendar", a.calendar},
                        {"procedures", a.procedures},
                        {"cases", a.cases},
                        {"open", a.open},
                        {"finished", a.finished},
                        {"processing_days", Summary(a.processing)},
                        {"with_deadline", a.with_deadline},
                        {"on_time", a.on_time},
                        {"on_time_rate", Optional(a.on_time_rate)},
                        {"overdue", a.overdue},
                        {"reused", a.reused},
                        {"refused_duplicates", a.refused_duplicates}});
  }
  json slowest = json::array();
  for (const auto& s : report.slowest_steps) {
    slowest.push_back({{"procedure", s.procedure},
                       {"step", s.step},
                       {"who", s.who},
                       {"visits", s.visits},
                       {"mean_days", s.mean_days},
                       {"max_days", Optional(s.max_days)}});
  }
  return {{"generated_at", JsonTime(report.generated_at)},
          {"cases", report.cases},
          {"events", report.events},
          {"reused", report.reused},
          {"refused_duplicates", report.refused_duplicates},
          {"procedures", procedures},
          {"agencies", agencies},
          {"slowest_steps", slowest}};
}

}  // namespace wf::cli
