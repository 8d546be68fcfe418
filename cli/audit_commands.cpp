// wf history, audit verify, audit export: the auditor's view of the tamper-evident history.
#include <iostream>
#include <memory>

#include <nlohmann/json.hpp>

#include "cli/command.hpp"
#include "cli/output.hpp"
#include "cli/session.hpp"
#include "engine/calendar.hpp"

namespace wf::cli {

namespace {

using nlohmann::json;

json EventJson(const engine::HistoryEvent& e) {
  json details = json::parse(e.details, nullptr, false);
  // A row whose details were tampered into non-JSON is still exported, as the raw text.
  if (details.is_discarded()) details = e.details;
  return {{"case", e.case_id}, {"seq", e.seq},     {"at", e.at},
          {"actor", e.actor},  {"action", e.action}, {"step", e.step},
          {"details", details}, {"prev_hash", e.prev_hash}, {"hash", e.hash}};
}

// One line of details for a table: compact JSON, cut at `width` code points.
std::string Summary(const std::string& details, size_t width) {
  json parsed = json::parse(details, nullptr, false);
  std::string text = parsed.is_discarded() ? details : parsed.dump();
  if (text == "{}") return "";
  size_t points = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    if ((static_cast<unsigned char>(text[i]) & 0xC0) != 0x80 && ++points > width) {
      return text.substr(0, i) + "...";
    }
  }
  return text;
}

// --- history ---------------------------------------------------------------------------------

int History(const GlobalOptions& globals, const std::string& case_id) {
  auto session = OpenSession(globals);
  if (!session) return Fail(session.error());
  std::vector<engine::HistoryEvent> events;
  std::string agency;
  Status status = (*session)->store->Read([&](engine::StoreTx& tx) {
    auto record = tx.GetCase(case_id);
    if (!record) {
      if (record.error().code() == ErrorCode::kNotFound) {
        return Status::NotFound("no case " + case_id + "; `wf cases` lists them");
      }
      return record.error();
    }
    agency = record->agency;
    auto list = tx.ListHistory(case_id);
    if (!list) return list.error();
    events = std::move(*list);
    return Status::Ok();
  });
  if (!status.ok()) return Fail(status);
  if (globals.json) {
    json out = json::array();
    for (const auto& e : events) out.push_back(EventJson(e));
    std::cout << out.dump(2) << '\n';
    return 0;
  }
  const engine::Deployment& deployment = (*session)->deployment;
  Table table({"SEQ", "AT", "ACTOR", "ACTION", "STEP", "DETAILS"});
  for (const auto& e : events) {
    std::string at = e.at;
    if (auto t = engine::ParseTimestamp(e.at)) {
      at = LocalTime(deployment, agency, std::chrono::floor<std::chrono::microseconds>(*t));
    }
    table.AddRow({std::to_string(e.seq), at, e.actor, e.action, e.step, Summary(e.details, 60)});
  }
  table.Print(std::cout);
  return 0;
}

// --- audit verify ----------------------------------------------------------------------------

int Verify(const GlobalOptions& globals, const std::string& case_id) {
  auto session = OpenSession(globals);
  if (!session) return Fail(session.error());
  std::optional<std::string> which;
  if (!case_id.empty()) which = case_id;
  auto summary = (*session)->store->VerifyHistory(which);
  if (!summary) {
    const Status& error = summary.error();
    if (error.code() == ErrorCode::kNotFound && which) {
      return Fail(Status::NotFound("case " + case_id + " has no history; `wf cases` lists cases"));
    }
    if (globals.json && error.code() == ErrorCode::kHistoryBroken) {
      std::cout << json{{"ok", false}, {"error", error.message()}}.dump(2) << '\n';
    }
    return Fail(error);
  }
  if (globals.json) {
    std::cout << json{{"ok", true}, {"cases", summary->cases}, {"events", summary->events}}.dump(2)
              << '\n';
  } else {
    std::cout << "history verifies: " << summary->cases << " cases, " << summary->events
              << " events\n";
  }
  return 0;
}

// --- audit export ----------------------------------------------------------------------------

struct ExportOptions {
  std::string since;
  std::string format = "jsonl";
  std::string case_id;
};

std::string CsvField(const std::string& text) {
  if (text.find_first_of(",\"\r\n") == std::string::npos) return text;
  std::string out = "\"";
  for (char c : text) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

int Export(const GlobalOptions& globals, const ExportOptions& options) {
  std::optional<std::string> since;
  if (!options.since.empty()) {
    // History `at` is fixed-width RFC 3339 UTC text, compared as text: normalise to that form.
    // A date counts from its midnight UTC; kept in microseconds, which reach year 9999.
    std::optional<engine::Timestamp> t;
    if (auto date = engine::ParseDate(options.since)) {
      t = engine::Timestamp(*date);
    } else if (auto point = engine::ParseTimestamp(options.since)) {
      t = std::chrono::floor<std::chrono::microseconds>(*point);
    }
    if (!t) {
      return Fail(Status::Usage("--since " + options.since +
                                ": write a date (2026-01-31) or an RFC 3339 time "
                                "(2026-01-31T08:00:00+07:00)"));
    }
    since = engine::FormatRfc3339(*t);
  }
  auto session = OpenSession(globals);
  if (!session) return Fail(session.error());
  bool csv = options.format == "csv";
  if (csv) std::cout << "case,seq,at,actor,action,step,details,prev_hash,hash\n";
  std::optional<std::string> which;
  if (!options.case_id.empty()) which = options.case_id;
  Status status = (*session)->store->ForEachHistory(
      which, since, [&](const engine::HistoryEvent& e) {
        if (csv) {
          std::cout << CsvField(e.case_id) << ',' << e.seq << ',' << CsvField(e.at) << ','
                    << CsvField(e.actor) << ',' << CsvField(e.action) << ',' << CsvField(e.step)
                    << ',' << CsvField(e.details) << ',' << e.prev_hash << ',' << e.hash << '\n';
        } else {
          std::cout << EventJson(e).dump() << '\n';
        }
        if (!std::cout) return Status::Internal("cannot write the export to stdout");
        return Status::Ok();
      });
  std::cout.flush();
  if (!status.ok()) return Fail(status);
  return 0;
}

}  // namespace

void AddAuditCommands(CLI::App& app, const GlobalOptions& globals, CommandAction* selected) {
  {
    auto* cmd = app.add_subcommand("history", "a case's history: who did what, when");
    auto case_id = std::make_shared<std::string>();
    cmd->add_option("case", *case_id, "the case id")->required();
    cmd->callback([&globals, case_id, selected] {
      *selected = [&globals, case_id] { return History(globals, *case_id); };
    });
  }
  auto* audit = app.add_subcommand("audit", "prove the history was not altered; export it");
  audit->require_subcommand(1);
  {
    auto* cmd = audit->add_subcommand("verify", "recompute the history's hash chain");
    auto case_id = std::make_shared<std::string>();
    cmd->add_option("case", *case_id, "only this case (default: every case)");
    cmd->callback([&globals, case_id, selected] {
      *selected = [&globals, case_id] { return Verify(globals, *case_id); };
    });
  }
  {
    auto* cmd = audit->add_subcommand("export", "every history event, as JSON Lines or CSV");
    auto options = std::make_shared<ExportOptions>();
    cmd->add_option("--since", options->since, "only events at or after this time or date");
    cmd->add_option("--format", options->format, "jsonl (default) or csv")
        ->check(CLI::IsMember({"jsonl", "csv"}));
    cmd->add_option("--case", options->case_id, "only this case");
    cmd->callback([&globals, options, selected] {
      *selected = [&globals, options] { return Export(globals, *options); };
    });
  }
}

}  // namespace wf::cli
