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
#include "engine/titles.hpp"
#include "workflows/i18n.hpp"

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
  return i18n::Decimal(*rate * 100, 0) + "%";
}

// Writes `text` to `path` through a temporary file renamed over it, so a failure never leaves a
// half-written report behind.
Status WriteFileAtomically(const std::string& path, const std::string& text) {
  const std::string temporary = path + ".tmp";
  // `message` says what failed ("--html PATH: cannot ...: ERROR").
  auto failure = [&](const std::string& message, int error) {
    std::remove(temporary.c_str());
    if (error == ENOENT) return Status::NotFound(TrFormat("{0}; create its folder first", message));
    if (error == EACCES || error == EPERM || error == EROFS) {
      return Status::NotPermitted(TrFormat("{0}; choose a place you may write to", message));
    }
    return Status::Internal(message);
  };
  {
    std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
    if (!out) {
      int error = errno;
      return failure(
          TrFormat("--html {0}: cannot create {1}: {2}", path, temporary, std::strerror(error)),
          error);
    }
    out << text;
    out.flush();
    if (!out) {
      int error = errno;
      return failure(
          TrFormat("--html {0}: cannot write {1}: {2}", path, temporary, std::strerror(error)),
          error);
    }
  }
  if (std::rename(temporary.c_str(), path.c_str()) != 0) {
    int error = errno;
    return failure(TrFormat("--html {0}: cannot rename onto it: {1}", path, std::strerror(error)),
                   error);
  }
  return Status::Ok();
}

// A time in a table: RFC 3339 UTC as `--json` prints it; "27/11/2026 16:59 UTC" in Vietnamese.
std::string UtcForPeople(engine::Timestamp t) {
  const std::string text = JsonTime(t);
  return i18n::Vietnamese() ? i18n::DateTime(text) + " UTC" : text;
}

void PrintTable(const engine::Report& report) {
  Table procedures({Tr("PROCEDURE"), Tr("AGENCY"), Tr("LIMIT"), Tr("CASES"), Tr("OPEN"),
                    Tr("ENDED"), Tr("MEDIAN"), Tr("P90"), Tr("ON TIME"), Tr("LATE"), Tr("OVERDUE"),
                    Tr("REUSED"), Tr("REFUSED")});
  using i18n::Number;
  for (const auto& p : report.procedures) {
    procedures.AddRow({p.name, p.agency, p.limit.empty() ? "-" : LimitForPeople(p.limit),
                       Number(p.cases), Number(p.open), Number(p.finished),
                       Days(p.processing.median), Days(p.processing.p90), Percent(p.on_time_rate),
                       Number(p.late), Number(p.overdue), Number(p.reused),
                       Number(p.refused_duplicates)});
  }
  procedures.Print(std::cout);
  if (!report.slowest_steps.empty()) {
    std::cout << '\n' << Tr("steps where cases wait longest:") << '\n';
    Table steps({Tr("PROCEDURE"), Tr("STEP"), Tr("WHO"), Tr("VISITS"), Tr("MEAN"), Tr("MAX")});
    for (const auto& s : report.slowest_steps) {
      steps.AddRow({s.procedure, s.step, WhoForPeople(s.who), Number(s.visits),
                    FormatWorkingDays(s.mean_days), Days(s.max_days)});
    }
    steps.Print(std::cout);
  }
  bool any_overdue = false;
  for (const auto& p : report.procedures) any_overdue = any_overdue || !p.overdue_cases.empty();
  if (any_overdue) {
    std::cout << '\n' << Tr("overdue cases:") << '\n';
    Table overdue(
        {Tr("CASE"), Tr("PROCEDURE"), Tr("DEADLINE"), Tr("OVERDUE BY"), Tr("WAITING AT")});
    for (const auto& p : report.procedures) {
      for (const auto& c : p.overdue_cases) {
        overdue.AddRow({c.id, p.name, UtcForPeople(c.deadline_at),
                        FormatWorkingDays(c.overdue_days), JoinComma(c.steps)});
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
    // Procedure and task titles in the reader's language; the stored ones when a procedure no
    // longer loads.
    engine::TitleBook titles;
    (void)(*session)->store->Read([&](engine::StoreTx& tx) {
      auto book = engine::TitleBook::Load(tx, (*session)->runtime->procedures());
      if (book) titles = std::move(*book);
      return Status::Ok();
    });
    std::string page = RenderReportHtml(*report, (*session)->store->redacted_url(), titles);
    if (Status written = WriteFileAtomically(options.html, page); !written.ok()) {
      return Fail(written);
    }
  }
  if (globals.json) {
    std::cout << ReportJson(*report).dump(2) << '\n';
  } else if (!options.html.empty()) {
    std::cout << TrFormat("report written to {0}: {1} procedures, {2} cases", options.html,
                          i18n::Number(static_cast<long long>(report->procedures.size())),
                          i18n::Number(report->cases))
              << '\n';
  } else {
    PrintTable(*report);
  }
  return 0;
}

}  // namespace

void AddReportCommands(CLI::App& app, const GlobalOptions& globals, CommandAction* selected) {
  auto* cmd = app.add_subcommand(
      "report", Tr("processing times against statutory limits, per procedure and agency"));
  auto options = std::make_shared<ReportOptions>();
  cmd->add_option("--html", options->html,
                  Tr("write the report as one self-contained HTML file (charts and process maps)"));
  cmd->callback([&globals, options, selected] {
    *selected = [&globals, options] { return Report(globals, *options); };
  });
}

}  // namespace wf::cli
