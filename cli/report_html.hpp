#pragma once

// The auditor's report as one self-contained HTML page (`wf report --html FILE`) and as JSON
// (`wf report --json`). Internal to the `wf` program (cli/ only).

#include <string>

#include <nlohmann/json.hpp>

#include "engine/report.hpp"
#include "engine/titles.hpp"

namespace wf::cli {

// The page: inline CSS and SVG only (no script, font, image or link to the network), every
// string from the data escaped. `source` names the database (without a password) in the header.
// In the reader's language (i18n, `<html lang>`), procedure and task titles from `titles`.
std::string RenderReportHtml(const engine::Report& report, const std::string& source,
                             const engine::TitleBook& titles);

// The same figures as JSON: durations in working days (numbers), times in RFC 3339 UTC.
nlohmann::json ReportJson(const engine::Report& report);

// A duration of working time for people: "12 s", "4 min", "2.5 h", "1.3 working days" (in the
// reader's language: "1,3 ngày làm việc").
std::string FormatWorkingDays(double days);

// A limit as Duration::ToString writes it ("20 working days", "2h") for people, in the reader's
// language; any other text as it is.
std::string LimitForPeople(const std::string& limit);

// Who a step waits for (engine::StepFigures::who) for people: the report's own words
// ("applicant (clock paused)", "outside") in the reader's language, names as they are.
std::string WhoForPeople(const std::string& who);

// `text` with & < > " ' replaced by character references.
std::string HtmlEscape(const std::string& text);

}  // namespace wf::cli
