// wf history, archive, audit verify/export/keygen/anchor: the auditor's view of the
// tamper-evident history.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>

#include <nlohmann/json.hpp>

#include "cli/command.hpp"
#include "cli/output.hpp"
#include "cli/session.hpp"
#include "engine/anchor.hpp"
#include "engine/archive.hpp"
#include "engine/calendar.hpp"
#include "engine/runtime.hpp"

namespace wf::cli {

namespace {

using nlohmann::json;

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

// The agency (or other holder) responsible for `step` of `procedure`: a task's role's agency, a
// department for an automated step, the applicant for a wait, the sub-case for call_procedure.
// Empty for steps that hold nothing themselves (parallel, decision, end).
std::string HolderOf(const workflows::Procedure* procedure, const std::string& step_id) {
  if (procedure == nullptr || step_id.empty()) return "";
  const workflows::Step* step = procedure->FindStep(step_id);
  if (step == nullptr) return "";
  switch (step->kind) {
    case workflows::StepKind::kTask: {
      auto role = procedure->roles.find(step->role);
      if (role != procedure->roles.end() && !role->second.agency.empty()) {
        return role->second.agency;
      }
      return procedure->agency;
    }
    case workflows::StepKind::kAdapter:
      return "department " + step->department;
    case workflows::StepKind::kWait:
      return "applicant";
    case workflows::StepKind::kCallProcedure:
      return "sub-case " + step->procedure;
    default:
      return "";
  }
}

// "k=v, k=v" for the fields of a JSON object, values compact.
std::string Fields(const json& object) {
  if (!object.is_object()) return object.is_null() ? "" : object.dump();
  std::string out;
  for (const auto& [key, value] : object.items()) {
    if (!out.empty()) out += ", ";
    out += key + "=" + (value.is_string() ? value.get<std::string>() : value.dump());
  }
  return out;
}

// What an event decided and why, and what data it changed, for people.
struct EventReading {
  std::string decision;  // a decision, an outcome, an error
  std::string changed;   // the case data it changed
};

EventReading Read(const engine::HistoryEvent& e) {
  json d = json::parse(e.details, nullptr, false);
  if (!d.is_object()) return {"", ""};
  EventReading r;
  auto text = [&](const char* key) {
    return d.contains(key) && d[key].is_string() ? d[key].get<std::string>() : std::string();
  };
  const std::string& a = e.action;
  if (a == "case.started") {
    r.changed = "input: " + Fields(d.value("data", json::object()));
  } else if (a == "case.finished") {
    r.decision = text("status");
    if (!text("reason").empty()) r.decision += ": " + text("reason");
  } else if (a == "case.cancelled") {
    r.decision = "cancelled: " + text("reason");
  } else if (a == "task.completed") {
    if (d.contains("decision")) r.decision = "decision " + d["decision"].dump();
    if (!text("reason").empty()) r.decision += (r.decision.empty() ? "" : "; ") + text("reason");
    r.changed = Fields(d.value("values", json::object()));
  } else if (a == "step.succeeded" || a == "step.reused") {
    if (d.contains("saved_as") && d["saved_as"].is_string()) {
      r.changed = d["saved_as"].get<std::string>() + " = " + d.value("result", json()).dump();
    }
    if (a == "step.reused") r.decision = "reused from case " + text("source_case");
  } else if (a == "step.failed") {
    r.decision = "failed (attempt " + d.value("attempt", json()).dump() + "): " + text("message");
  } else if (a == "step.error_handled") {
    r.decision = "on_error -> " + text("on_error");
  } else if (a == "step.timed_out") {
    r.decision = "timed out -> " + text("on_timeout");
  } else if (a == "task.escalated") {
    r.decision = "escalated to " + text("to_role");
  } else if (a == "task.overdue") {
    r.decision = "overdue";
  } else if (a == "incident.opened") {
    r.decision = "incident: " + text("message");
  } else if (a == "signal.received") {
    r.changed = text("name") + " = " + d.value("data", json()).dump();
  } else if (a == "child.ended") {
    r.decision = "sub-case " + text("case") + " " + text("outcome");
  } else if (a == "task.opened") {
    r.decision = "for role " + text("role");
  }
  return r;
}

// One stretch of time a holder had a step of the case, from entering it to leaving it.
struct Hold {
  std::string holder;
  std::string step;
  engine::Timestamp from{};
  std::optional<engine::Timestamp> to;  // nullopt: still held
  std::optional<workflows::Duration> limit;
};

// Actions that end a step activation's hold.
bool EndsStep(const std::string& action) {
  return action == "step.succeeded" || action == "step.reused" || action == "step.error_handled" ||
         action == "step.timed_out" || action == "task.completed" || action == "signal.received" ||
         action == "child.ended" || action == "step.accepted";
}

std::optional<engine::Timestamp> EventTime(const engine::HistoryEvent& e) {
  auto t = engine::ParseTimestamp(e.at);
  if (!t) return std::nullopt;
  return std::chrono::floor<std::chrono::microseconds>(*t);
}

std::string Days(double days) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.2f", days);
  return buffer;
}

int History(const GlobalOptions& globals, const std::string& case_id, bool by_agency) {
  auto session = OpenSession(globals);
  if (!session) return Fail(session.error());
  std::vector<engine::HistoryEvent> events;
  engine::CaseRecord record;
  const workflows::Procedure* procedure = nullptr;
  engine::ProcedureCache procedures;
  Status status = (*session)->store->Read([&](engine::StoreTx& tx) {
    auto found = tx.GetCase(case_id);
    if (!found) {
      if (found.error().code() == ErrorCode::kNotFound) {
        auto archived = tx.GetArchivedChain(case_id);
        if (archived && *archived) {
          return Status::NotFound("case " + case_id + " was archived to " + (*archived)->archive +
                                  "; read it there (wf audit verify --archive FILE checks it)");
        }
        return Status::NotFound("no case " + case_id + "; `wf cases` lists them");
      }
      return found.error();
    }
    record = std::move(*found);
    auto definition = procedures.Get(tx, record.procedure, record.version);
    if (definition) procedure = *definition;  // without it the timeline still shows the events
    auto list = tx.ListHistory(case_id);
    if (!list) return list.error();
    events = std::move(*list);
    return Status::Ok();
  });
  if (!status.ok()) return Fail(status);
  const engine::Deployment& deployment = (*session)->deployment;
  const engine::Timestamp now = engine::Now();

  // Who held which step when: step.entered opens a hold, the step's ending event closes it.
  std::vector<Hold> holds;
  std::map<std::pair<std::string, std::int64_t>, size_t> open;
  std::vector<std::string> event_holder(events.size());
  for (size_t i = 0; i < events.size(); ++i) {
    const engine::HistoryEvent& e = events[i];
    event_holder[i] = HolderOf(procedure, e.step);
    std::optional<engine::Timestamp> at = EventTime(e);
    if (!at) continue;
    json d = json::parse(e.details, nullptr, false);
    std::int64_t activation =
        d.is_object() && d.contains("activation") && d["activation"].is_number_integer()
            ? d["activation"].get<std::int64_t>()
            : 0;
    auto key = std::make_pair(e.step, activation);
    if (e.action == "step.entered" && !event_holder[i].empty()) {
      const workflows::Step* step = procedure ? procedure->FindStep(e.step) : nullptr;
      open[key] = holds.size();
      holds.push_back(
          {event_holder[i], e.step, *at, std::nullopt,
           step && step->kind == workflows::StepKind::kTask ? step->deadline : std::nullopt});
    } else if (EndsStep(e.action) || e.action == "case.finished" || e.action == "case.cancelled") {
      if (e.action == "case.finished" || e.action == "case.cancelled") {
        for (auto& [ignored, index] : open) holds[index].to = *at;
        open.clear();
      } else if (auto it = open.find(key); it != open.end()) {
        holds[it->second].to = *at;
        open.erase(it);
      }
    }
  }
  // Per holder: working time on the holder's calendar (an agency's own; others the case's).
  struct Total {
    double held = 0;
    double limit = 0;
    bool has_limit = false;
    int steps = 0;
    bool open = false;
  };
  std::map<std::string, Total> totals;
  std::vector<std::string> order;
  for (const Hold& h : holds) {
    const bool agency = deployment.agencies.count(h.holder) > 0;
    engine::Calendar calendar = deployment.CalendarOf(agency ? h.holder : record.agency);
    Total& t = totals[h.holder];
    if (t.steps == 0) order.push_back(h.holder);
    ++t.steps;
    t.held += std::max(0.0, calendar.WorkingTimeBetween(engine::TimePoint(h.from),
                                                        engine::TimePoint(h.to.value_or(now))));
    if (!h.to) t.open = true;
    if (h.limit && h.limit->IsWorkingDays()) {
      t.limit += static_cast<double>(h.limit->amount);
      t.has_limit = true;
    } else if (h.limit) {
      t.limit += static_cast<double>(h.limit->ApproximateSeconds()) / 86400.0;
      t.has_limit = true;
    }
  }
  engine::Calendar case_calendar = deployment.CalendarOf(record.agency);
  engine::Timestamp case_end = record.ended_at.value_or(now);
  double case_held = case_calendar.WorkingTimeBetween(engine::TimePoint(record.started_at),
                                                      engine::TimePoint(case_end));
  std::optional<bool> case_within;
  if (record.deadline_at) case_within = case_end <= *record.deadline_at;

  if (globals.json) {
    if (by_agency) {
      json out = json::array();
      for (const std::string& holder : order) {
        const Total& t = totals[holder];
        out.push_back({{"holder", holder},
                       {"agency", deployment.agencies.count(holder) > 0},
                       {"steps", t.steps},
                       {"held_working_days", t.held},
                       {"limit_working_days", t.has_limit ? json(t.limit) : json(nullptr)},
                       {"over_limit", t.has_limit ? json(t.held > t.limit) : json(nullptr)},
                       {"still_held", t.open}});
      }
      out.push_back(
          {{"holder", "case"},
           {"procedure", record.procedure},
           {"held_working_days", case_held},
           {"deadline", JsonTime(record.deadline_at)},
           {"limit", procedure && procedure->deadline ? json(procedure->deadline->ToString())
                                                      : json(nullptr)},
           {"within_limit", case_within ? json(*case_within) : json(nullptr)}});
      std::cout << out.dump(2) << '\n';
      return 0;
    }
    json out = json::array();
    for (size_t i = 0; i < events.size(); ++i) {
      json e = engine::HistoryEventJson(events[i]);
      EventReading reading = Read(events[i]);
      e["agency"] = event_holder[i].empty() ? json(nullptr) : json(event_holder[i]);
      e["decision"] = reading.decision.empty() ? json(nullptr) : json(reading.decision);
      e["changed"] = reading.changed.empty() ? json(nullptr) : json(reading.changed);
      out.push_back(std::move(e));
    }
    std::cout << out.dump(2) << '\n';
    return 0;
  }

  std::cout << "case " << record.id << ": " << record.procedure << " v" << record.version << ", "
            << record.status << "\n\n";
  Table table(
      {"SEQ", "AT", "ACTOR", "AGENCY", "ACTION", "STEP", "DECISION / REASON", "DATA CHANGED"});
  for (size_t i = 0; i < events.size(); ++i) {
    const engine::HistoryEvent& e = events[i];
    std::string at = e.at;
    if (auto t = EventTime(e)) at = LocalTime(deployment, record.agency, *t);
    std::string actor = e.actor;
    std::vector<std::string> member_of = deployment.AgenciesOf(e.actor);
    if (!member_of.empty()) actor += " (" + JoinComma(member_of) + ")";
    EventReading reading = Read(e);
    table.AddRow({std::to_string(e.seq), at, actor, event_holder[i], e.action, e.step,
                  Summary(reading.decision, 40), Summary(reading.changed, 50)});
  }
  table.Print(std::cout);
  std::cout << "\ntime held, in working days:\n";
  Table held({"HELD BY", "STEPS", "HELD", "LIMIT", ""});
  for (const std::string& holder : order) {
    const Total& t = totals[holder];
    std::string verdict =
        t.has_limit ? (t.held > t.limit ? "over the limit" : "within the limit") : "";
    if (t.open) verdict += verdict.empty() ? "still held" : ", still held";
    held.AddRow({holder, std::to_string(t.steps), Days(t.held), t.has_limit ? Days(t.limit) : "-",
                 verdict});
  }
  std::string case_verdict =
      case_within ? (*case_within ? "within the statutory limit" : "over the statutory limit")
                  : "no statutory limit";
  held.AddRow({"whole case", "-", Days(case_held),
               procedure && procedure->deadline ? procedure->deadline->ToString() : "-",
               case_verdict + (record.ended_at ? "" : ", open")});
  held.Print(std::cout);
  return 0;
}

// --- audit verify ----------------------------------------------------------------------------

struct VerifyOptions {
  std::string case_id;
  std::string anchor;
  std::string pubkey;
  std::string file;     // an export to verify on its own
  std::string archive;  // an archive to verify on its own
};

int Broken(const GlobalOptions& globals, const Status& error) {
  if (globals.json && error.code() == ErrorCode::kHistoryBroken) {
    std::cout << json{{"ok", false}, {"error", error.message()}}.dump(2) << '\n';
  }
  return Fail(error);
}

// Splits one CSV record (RFC 4180) read from `in`, which may span lines inside quotes.
bool ReadCsvRecord(std::istream& in, std::vector<std::string>& fields) {
  fields.clear();
  std::string field;
  bool quoted = false, any = false;
  for (int c; (c = in.get()) != EOF;) {
    any = true;
    if (quoted) {
      if (c == '"') {
        if (in.peek() == '"') {
          field += '"';
          in.get();
        } else {
          quoted = false;
        }
      } else {
        field += static_cast<char>(c);
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      fields.push_back(std::move(field));
      field.clear();
    } else if (c == '\n') {
      fields.push_back(std::move(field));
      return true;
    } else if (c != '\r') {
      field += static_cast<char>(c);
    }
  }
  if (any) fields.push_back(std::move(field));
  return any;
}

// Recomputes the chains in an export file (JSON Lines or CSV, as `wf audit export` writes them).
// An export taken with --since starts its chains mid-way: those are checked from their first
// exported event on.
int VerifyExportFile(const GlobalOptions& globals, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Fail(Status::NotFound("cannot read " + path + ": check the path"));
  engine::ChainVerifier verifier(/*partial=*/true);
  std::int64_t number = 0;
  bool csv = in.peek() != '{' && in.peek() != EOF;
  auto feed = [&](const engine::HistoryEvent& event) -> Status {
    if (auto failure = verifier.Feed(event)) {
      return Status::HistoryBroken(path + ": " + failure->Describe());
    }
    return Status::Ok();
  };
  if (csv) {
    std::vector<std::string> fields;
    const std::vector<std::string> header = {"case", "seq",     "at",        "actor", "action",
                                             "step", "details", "prev_hash", "hash"};
    if (!ReadCsvRecord(in, fields) || fields != header) {
      return Fail(Status::Invalid(path + ":1: expected the header " + JoinComma(header) +
                                  " (a `wf audit export` file?)"));
    }
    number = 1;
    while (ReadCsvRecord(in, fields)) {
      ++number;
      if (fields.size() != header.size()) {
        return Fail(Status::Invalid(path + ":" + std::to_string(number) + ": expected " +
                                    std::to_string(header.size()) + " fields, found " +
                                    std::to_string(fields.size())));
      }
      engine::HistoryEvent e;
      e.case_id = fields[0];
      try {
        e.seq = std::stoll(fields[1]);
      } catch (const std::exception&) {
        return Fail(Status::Invalid(path + ":" + std::to_string(number) + ": seq '" + fields[1] +
                                    "' is not a number"));
      }
      e.at = fields[2];
      e.actor = fields[3];
      e.action = fields[4];
      e.step = fields[5];
      e.details = fields[6];
      e.prev_hash = fields[7];
      e.hash = fields[8];
      if (Status s = feed(e); !s.ok()) return Broken(globals, s);
    }
  } else {
    std::string line;
    while (std::getline(in, line)) {
      ++number;
      if (line.empty()) continue;
      std::optional<engine::HistoryEvent> event =
          engine::HistoryEventFromJson(json::parse(line, nullptr, false));
      if (!event) {
        return Fail(Status::Invalid(path + ":" + std::to_string(number) +
                                    ": not a history event as `wf audit export` writes them"));
      }
      if (Status s = feed(*event); !s.ok()) return Broken(globals, s);
    }
  }
  if (globals.json) {
    std::cout << json{{"ok", true},
                      {"file", path},
                      {"cases", verifier.cases()},
                      {"events", verifier.events()}}
                     .dump(2)
              << '\n';
  } else {
    std::cout << "export " << path << " verifies: " << verifier.cases() << " cases, "
              << verifier.events() << " events\n";
  }
  return 0;
}

int VerifyArchiveFile(const GlobalOptions& globals, const std::string& path) {
  auto summary = engine::VerifyArchive(path);
  if (!summary) return Broken(globals, summary.error());
  if (globals.json) {
    std::cout << json{{"ok", true},
                      {"archive", path},
                      {"cases", summary->cases},
                      {"events", summary->events},
                      {"sha256", summary->sha256}}
                     .dump(2)
              << '\n';
  } else {
    std::cout << "archive " << path << " verifies: " << summary->cases << " cases, "
              << summary->events << " events, sha256 " << summary->sha256 << '\n';
  }
  return 0;
}

Result<std::string> ReadKeyFile(const std::string& path, const std::string& option) {
  std::string text, error;
  if (!ReadInput(path, &text, &error)) {
    return Status::NotFound(option + " " + path + ": " + error);
  }
  return text;
}

int Verify(const GlobalOptions& globals, const VerifyOptions& options) {
  int sources = !options.file.empty() + !options.archive.empty();
  if (sources > 1 || (sources == 1 && (!options.case_id.empty() || !options.anchor.empty()))) {
    return Fail(Status::Usage(
        "--file and --archive verify a file on its own: give one, without a case or --anchor"));
  }
  if (!options.file.empty()) return VerifyExportFile(globals, options.file);
  if (!options.archive.empty()) return VerifyArchiveFile(globals, options.archive);
  if (options.anchor.empty() != options.pubkey.empty()) {
    return Fail(
        Status::Usage("--anchor needs --pubkey (the public key of the anchor's signer), "
                      "and --pubkey needs --anchor"));
  }
  std::optional<engine::Anchor> anchor;
  if (!options.anchor.empty()) {
    auto pubkey = ReadKeyFile(options.pubkey, "--pubkey");
    if (!pubkey) return Fail(pubkey.error());
    std::ifstream in(options.anchor, std::ios::binary);
    if (!in) return Fail(Status::NotFound("--anchor " + options.anchor + ": cannot read it"));
    // A file that is no public key is the user's mistake (exit 3), not a broken history.
    if (auto key = engine::KeyFingerprint(*pubkey); !key) {
      return Broken(globals, Status::Invalid("--pubkey " + options.pubkey +
                                             ": the public key is " + key.error().message()));
    }
    auto read = engine::ReadAnchor(in, options.anchor, *pubkey);
    if (!read) return Broken(globals, read.error());
    anchor = std::move(*read);
  }
  auto session = OpenSession(globals);
  if (!session) return Fail(session.error());
  engine::Store& store = *(*session)->store;
  std::optional<std::string> which;
  if (!options.case_id.empty()) which = options.case_id;

  engine::ChainVerifier verifier;
  std::optional<engine::AnchorCheck> check;
  if (anchor) check.emplace(*anchor, which);
  engine::HistoryRange range;
  range.case_id = which;
  Status status = store.ForEachHistoryIn(range, [&](const engine::HistoryEvent& event) {
    if (auto failure = verifier.Feed(event)) return Status::HistoryBroken(failure->Describe());
    if (check) {
      if (auto failure = check->Feed(event)) return Status::HistoryBroken(failure->Describe());
    }
    return Status::Ok();
  });
  if (!status.ok()) return Broken(globals, status);
  std::int64_t archived = 0;
  std::string archived_to;
  status = store.ForEachArchivedChain([&](const engine::ArchivedChain& chain) {
    if (which && chain.head.case_id != *which) return Status::Ok();
    ++archived;
    archived_to = chain.archive;
    if (check) {
      if (auto failure = check->FeedArchived(chain.head)) {
        return Status::HistoryBroken(failure->Describe());
      }
    }
    return Status::Ok();
  });
  if (!status.ok()) return Broken(globals, status);
  if (check) {
    if (auto failure = check->Finish()) {
      return Broken(globals, Status::HistoryBroken(failure->Describe()));
    }
  }
  if (which && verifier.events() == 0 && archived == 0) {
    return Fail(
        Status::NotFound("case " + options.case_id + " has no history; `wf cases` lists cases"));
  }
  if (globals.json) {
    json out = {{"ok", true},
                {"cases", verifier.cases()},
                {"events", verifier.events()},
                {"archived_chains", archived}};
    if (anchor) {
      out["anchor"] = {
          {"file", options.anchor}, {"at", anchor->at}, {"chains_checked", check->checked()}};
    }
    std::cout << out.dump(2) << '\n';
    return 0;
  }
  std::cout << "history verifies: " << verifier.cases() << " cases, " << verifier.events()
            << " events";
  if (archived > 0) {
    std::cout << "; " << archived << " archived chains kept by their heads";
    if (which) std::cout << " (in " << archived_to << ")";
  }
  std::cout << '\n';
  if (anchor) {
    std::cout << "anchor " << options.anchor << " of " << anchor->at
              << " holds: " << check->checked() << " chains have only grown since\n";
  }
  return 0;
}

// --- audit export ----------------------------------------------------------------------------

struct ExportOptions {
  std::string since;
  std::string until;
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

// A --since/--until/--before value: a date (from its midnight UTC) or an RFC 3339 time.
Result<engine::Timestamp> ParseWhen(const std::string& option, const std::string& value) {
  if (auto date = engine::ParseDate(value)) return engine::Timestamp(*date);
  if (auto point = engine::ParseTimestamp(value)) {
    return std::chrono::floor<std::chrono::microseconds>(*point);
  }
  return Status::Usage(option + " " + value +
                       ": write a date (2026-01-31) or an RFC 3339 time "
                       "(2026-01-31T08:00:00+07:00)");
}

// The same as history's fixed-width RFC 3339 UTC text, which is compared as text.
Result<std::string> HistoryTime(const std::string& option, const std::string& value) {
  auto t = ParseWhen(option, value);
  if (!t) return t.error();
  return engine::FormatRfc3339(*t);
}

int Export(const GlobalOptions& globals, const ExportOptions& options) {
  engine::HistoryRange range;
  if (!options.since.empty()) {
    auto since = HistoryTime("--since", options.since);
    if (!since) return Fail(since.error());
    range.since_at = *since;
  }
  if (!options.until.empty()) {
    auto until = HistoryTime("--until", options.until);
    if (!until) return Fail(until.error());
    range.until_at = *until;
  }
  if (!options.case_id.empty()) range.case_id = options.case_id;
  auto session = OpenSession(globals);
  if (!session) return Fail(session.error());
  bool csv = options.format == "csv";
  if (csv) std::cout << "case,seq,at,actor,action,step,details,prev_hash,hash\n";
  Status status = (*session)->store->ForEachHistoryIn(range, [&](const engine::HistoryEvent& e) {
    if (csv) {
      std::cout << CsvField(e.case_id) << ',' << e.seq << ',' << CsvField(e.at) << ','
                << CsvField(e.actor) << ',' << CsvField(e.action) << ',' << CsvField(e.step) << ','
                << CsvField(e.details) << ',' << CsvField(e.prev_hash) << ',' << CsvField(e.hash)
                << '\n';
    } else {
      std::cout << engine::HistoryEventJson(e).dump(-1, ' ', false, json::error_handler_t::replace)
                << '\n';
    }
    if (!std::cout) return Status::Internal("cannot write the export to stdout");
    return Status::Ok();
  });
  std::cout.flush();
  if (!status.ok()) return Fail(status);
  return 0;
}

// --- audit keygen, audit anchor --------------------------------------------------------------

// Creates `path` with `text`, never replacing a file: kConflict when it exists.
Status CreateFile(const std::string& path, const std::string& text, mode_t mode) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) {
    if (errno == EEXIST) {
      return Status::Conflict(path + " exists already; move it away or choose another file");
    }
    return Status::NotFound("cannot create " + path + ": " + std::strerror(errno));
  }
  ssize_t written = ::write(fd, text.data(), text.size());
  bool ok = written == static_cast<ssize_t>(text.size()) && ::fsync(fd) == 0;
  ::close(fd);
  if (!ok) return Status::Internal("cannot write " + path);
  return Status::Ok();
}

int Keygen(const GlobalOptions& globals, const std::string& key_path,
           const std::string& pubkey_path) {
  for (const std::string& path : {key_path, pubkey_path}) {
    if (std::filesystem::exists(path)) {
      return Fail(Status::Conflict(path + " exists already; move it away or choose another file"));
    }
  }
  auto keys = engine::GenerateSigningKeys();
  if (!keys) return Fail(keys.error());
  if (Status s = CreateFile(key_path, keys->private_pem, 0600); !s.ok()) return Fail(s);
  if (Status s = CreateFile(pubkey_path, keys->public_pem, 0644); !s.ok()) {
    std::filesystem::remove(key_path);
    return Fail(s);
  }
  auto fingerprint = engine::KeyFingerprint(keys->public_pem);
  if (!fingerprint) return Fail(fingerprint.error());
  if (globals.json) {
    std::cout
        << json{{"key", key_path}, {"pubkey", pubkey_path}, {"fingerprint", *fingerprint}}.dump(2)
        << '\n';
  } else {
    std::cout << "Ed25519 key written: " << key_path << " (private, mode 0600), " << pubkey_path
              << " (public); fingerprint " << *fingerprint << '\n';
  }
  return 0;
}

int AnchorCommand(const GlobalOptions& globals, const std::string& key_path,
                  const std::string& out_path) {
  auto key = ReadKeyFile(key_path, "--key");
  if (!key) return Fail(key.error());
  if (!engine::KeyFingerprint(*key)) {
    return Fail(Status::Invalid("--key " + key_path +
                                ": not an Ed25519 private key in PEM (make one with "
                                "`wf audit keygen`)"));
  }
  if (std::filesystem::exists(out_path)) {
    return Fail(Status::Conflict("--out " + out_path +
                                 " exists already; anchors are never "
                                 "overwritten: choose another file"));
  }
  auto session = OpenSession(globals);
  if (!session) return Fail(session.error());
  engine::Store& store = *(*session)->store;
  const std::string partial = out_path + ".partial";
  std::ofstream out(partial, std::ios::binary | std::ios::trunc);
  if (!out) return Fail(Status::NotFound("cannot create " + partial + ": check the folder"));
  const std::string at = engine::FormatRfc3339(engine::Now());
  auto chains =
      engine::WriteAnchor(out, *key, at, store.redacted_url(),
                          [&](const std::function<Status(const engine::ChainHead&)>& emit) {
                            return store.ForEachChainHead(
                                [&](const engine::ChainHead& head, bool) { return emit(head); });
                          });
  out.close();
  std::error_code ec;
  if (!chains || !out) {
    std::filesystem::remove(partial, ec);
    return Fail(chains ? Status::Internal("cannot write " + partial) : chains.error());
  }
  std::filesystem::rename(partial, out_path, ec);
  if (ec) return Fail(Status::Internal("cannot rename " + partial + ": " + ec.message()));
  if (globals.json) {
    std::cout << json{{"anchor", out_path}, {"at", at}, {"chains", *chains}}.dump(2) << '\n';
  } else {
    std::cout << "anchored " << *chains << " chains at " << at << " in " << out_path
              << "; keep it away from the database\n";
  }
  return 0;
}

// --- archive ---------------------------------------------------------------------------------

int Archive(const GlobalOptions& globals, const std::string& before_text,
            const std::string& out_path) {
  auto before = ParseWhen("--before", before_text);
  if (!before) return Fail(before.error());
  auto session = OpenSession(globals);
  if (!session) return Fail(session.error());
  auto summary = engine::ArchiveEndedCases(*(*session)->store,
                                           std::chrono::floor<std::chrono::microseconds>(*before),
                                           out_path, engine::Now());
  if (!summary) return Fail(summary.error());
  if (globals.json) {
    std::cout << json{{"archive", summary->cases > 0 ? json(out_path) : json(nullptr)},
                      {"cases", summary->cases},
                      {"events", summary->events},
                      {"sha256", summary->sha256}}
                     .dump(2)
              << '\n';
  } else if (summary->cases == 0) {
    std::cout << "no case ended before " << before_text << "; nothing archived\n";
  } else {
    std::cout << "archived " << summary->cases << " cases (" << summary->events << " events) to "
              << out_path << ", sha256 " << summary->sha256
              << "; their chain heads stay in the database\n";
  }
  return 0;
}

}  // namespace

void AddAuditCommands(CLI::App& app, const GlobalOptions& globals, CommandAction* selected) {
  {
    auto* cmd =
        app.add_subcommand("history", "a case's timeline: who did what, when, for how long");
    auto case_id = std::make_shared<std::string>();
    auto by_agency = std::make_shared<bool>(false);
    cmd->add_option("case", *case_id, "the case id")->required();
    cmd->add_flag("--by-agency", *by_agency,
                  "only the time each agency held the case against its limits");
    cmd->callback([&globals, case_id, by_agency, selected] {
      *selected = [&globals, case_id, by_agency] { return History(globals, *case_id, *by_agency); };
    });
  }
  {
    auto* cmd = app.add_subcommand(
        "archive", "move cases that ended before a date, with their history, into a file");
    auto before = std::make_shared<std::string>();
    auto out = std::make_shared<std::string>();
    cmd->add_option("--before", *before, "cases that ended before this date or time")->required();
    cmd->add_option("--out", *out, "the archive file to create")->required();
    cmd->callback([&globals, before, out, selected] {
      *selected = [&globals, before, out] { return Archive(globals, *before, *out); };
    });
  }
  auto* audit = app.add_subcommand("audit", "prove the history was not altered; export it");
  audit->require_subcommand(1);
  {
    auto* cmd = audit->add_subcommand("verify", "recompute the history's hash chains");
    auto options = std::make_shared<VerifyOptions>();
    cmd->add_option("case", options->case_id, "only this case (default: every case)");
    cmd->add_option("--anchor", options->anchor, "also prove history only grew since this anchor");
    cmd->add_option("--pubkey", options->pubkey, "the public key that signed the anchor");
    cmd->add_option("--file", options->file,
                    "verify an export (JSON Lines or CSV) on its own, without the database");
    cmd->add_option("--archive", options->archive,
                    "verify an archive file on its own, without the database");
    cmd->callback([&globals, options, selected] {
      *selected = [&globals, options] { return Verify(globals, *options); };
    });
  }
  {
    auto* cmd = audit->add_subcommand("export", "history events with their hashes, streamed");
    auto options = std::make_shared<ExportOptions>();
    cmd->add_option("--since", options->since, "only events at or after this time or date");
    cmd->add_option("--until", options->until, "only events before this time or date");
    cmd->add_option("--format", options->format, "jsonl (default) or csv")
        ->check(CLI::IsMember({"jsonl", "csv"}));
    cmd->add_option("--case", options->case_id, "only this case");
    cmd->callback([&globals, options, selected] {
      *selected = [&globals, options] { return Export(globals, *options); };
    });
  }
  {
    auto* cmd = audit->add_subcommand("keygen", "make an Ed25519 key pair for signing anchors");
    auto key = std::make_shared<std::string>("wf-audit.key");
    auto pubkey = std::make_shared<std::string>("wf-audit.pub");
    cmd->add_option("--key", *key, "the private key to write (PEM, mode 0600)")
        ->capture_default_str();
    cmd->add_option("--pubkey", *pubkey, "the public key to write (PEM)")->capture_default_str();
    cmd->callback([&globals, key, pubkey, selected] {
      *selected = [&globals, key, pubkey] { return Keygen(globals, *key, *pubkey); };
    });
  }
  {
    auto* cmd = audit->add_subcommand("anchor", "sign the heads of all chains, now, into a file");
    auto key = std::make_shared<std::string>();
    auto out = std::make_shared<std::string>();
    cmd->add_option("--key", *key, "the private key (from wf audit keygen)")->required();
    cmd->add_option("--out", *out, "the anchor file to create")->required();
    cmd->callback([&globals, key, out, selected] {
      *selected = [&globals, key, out] { return AnchorCommand(globals, *key, *out); };
    });
  }
}

}  // namespace wf::cli
