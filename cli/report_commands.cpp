// wf report: where procedures lose time against their statutory limits, for auditors. As a table
// on the terminal, as JSON (--json), or as one self-contained HTML page (--html FILE).
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <memory>

#include <nlohmann/json.hpp>

#include "cli/command.hpp"
#include "cli/output.hpp"
#include "cli/report_html.hpp"
#include "cli/session.hpp"
#include "engine/report.hpp"

namespace wf::cli {

namespace {

struct ReportOptions {
  std::string html;  // write the page here; empty: none
};

std::string Days(const std::optional<double>& days) {
  return days ? FormatWorkingDays(*days) : std::string("-");
}

std::string Percent(const std::optional<double>& rate) {
  if (!rate) return "-";
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.0f%%", *rate * 100);
  return buffer;
}

// Writes `text` to `path` through a temporary file renamed over it, so a failure never leaves a
// half-written report behind.
Status WriteFileAtomically(const std::string& path, const std::string& text) {
  const std::string temporary = path + ".tmp";
  auto failure = [&](const std::string& what, int error) {
    std::remove(temporary.c_str());
    std::string message = "--html " + path + ": cannot " + what + ": " + std::strerror(error);
    if (error == ENOENT) return Status::NotFound(message + "; create its folder first");
    if (error == EACCES || error == EPERM || error == EROFS) {
      return Status::NotPermitted(message + "; choose a place you may write to");
    }
    return Status::Internal(message);
  };
  {
    std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
    if (!out) return failure("create " + temporary, errno);
    out << text;
    out.flush();
    if (!out) return failure("write " + temporary, errno);
  }
  if (std::rename(temporary.c_str(), path.c_str()) != 0) return failure("rename onto it", errno);
  return Status::Ok();
}

void PrintTable(const engine::Report& report) {
  Table procedures({"PROCEDURE", "AGENCY", "LIMIT", "CASES", "OPEN", "ENDED", "MEDIAN", "P90",
                    "ON TIME", "LATE", "OVERDUE", "REUSED", "REFUSED"});
  for (const auto& p : report.procedures) {
    procedures.AddRow({p.name, p.agency, p.limit.empty() ? "-" : p.limit, std::to_string(p.cases),
                       std::to_string(p.open), std::to_string(p.finished),
                       Days(p.processing.median), Days(p.processing.p90), Percent(p.on_time_rate),
                       std::to_string(p.late), std::to_string(p.overdue), std::to_string(p.reused),
                       std::to_string(p.refused_duplicates)});
  }
  procedures.Print(std::cout);
  if (!report.slowest_steps.empty()) {
    std::cout << "\nsteps where cases wait longest:\n";
    Table steps({"PROCEDURE", "STEP", "WHO", "VISITS", "MEAN", "MAX"});
    for (const auto& s : report.slowest_steps) {
      steps.AddRow({s.procedure, s.step, s.who, std::to_string(s.visits),
                    FormatWorkingDays(s.mean_days), Days(s.max_days)});
    }
    steps.Print(std::cout);
  }
  bool any_overdue = false;
  for (const auto& p : report.procedures) any_overdue = any_overdue || !p.overdue_cases.empty();
  if (any_overdue) {
    std::cout << "\noverdue cases:\n";
    Table overdue({"CASE", "PROCEDURE", "DEADLINE", "OVERDUE BY", "WAITING AT"});
    for (const auto& p : report.procedures) {
      for (const auto& c : p.overdue_cases) {
        overdue.AddRow({c.id, p.name, JsonTime(c.deadline_at), FormatWorkingDays(c.overdue_days),
                        JoinComma(c.steps)});
      }
    }
    overdue.Print(std::cout);
  }
}

int Report(const GlobalOptions& globals, const ReportOptions& options) {
  auto session = OpenSession(globals);
  if (!session) return Fail(session.error());
  auto report = engine::CollectReport(*(*session)->store, (*session)->deployment, engine::Now());
  if (!report) return Fail(report.error());
  if (!options.html.empty()) {
    std::string page = RenderReportHtml(*report, (*session)->store->redacted_url());
    if (Status written = WriteFileAtomically(options.html, page); !written.ok()) {
      return Fail(written);
    }
  }
  if (globals.json) {
    std::cout << ReportJson(*report).dump(2) << '\n';
  } else if (!options.html.empty()) {
    std::cout << "report written to " << options.html << ": " << report->procedures.size()
              << " procedures, " << report->cases << " cases\n";
  } else {
    PrintTable(*report);
  }
  return 0;
}

}  // namespace

void AddReportCommands(CLI::App& app, const GlobalOptions& globals, CommandAction* selected) {
  auto* cmd = app.add_subcommand(
      "report", "processing times against statutory limits, per procedure and agency");
  auto options = std::make_shared<ReportOptions>();
  cmd->add_option("--html", options->html,
                  "write the report as one self-contained HTML file (charts and process maps)");
  cmd->callback([&globals, options, selected] {
    *selected = [&globals, options] { return Report(globals, *options); };
  });
}

}  // namespace wf::cli
