#pragma once

// The auditor's report as one self-contained HTML page (`wf report --html FILE`) and as JSON
// (`wf report --json`). Internal to the `wf` program (cli/ only).

#include <string>

#include <nlohmann/json.hpp>

#include "engine/report.hpp"

namespace wf::cli {

// The page: inline CSS and SVG only (no script, font, image or link to the network), every
// string from the data escaped. `source` names the database (without a password) in the header.
std::string RenderReportHtml(const engine::Report& report, const std::string& source);

// The same figures as JSON: durations in working days (numbers), times in RFC 3339 UTC.
nlohmann::json ReportJson(const engine::Report& report);

// A duration of working time for people: "12 s", "4 min", "2.5 h", "1.3 working days".
std::string FormatWorkingDays(double days);

// `text` with & < > " ' replaced by character references.
std::string HtmlEscape(const std::string& text);

}  // namespace wf::cli
