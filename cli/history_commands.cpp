// wf history: a case's timeline for auditors: who did what and when, which agency held each
// step, the decisions and the data changed, and the time each holder kept the case against its
// limits (the holds come from the case read model, engine/case_view.hpp).
#include <cstdio>
#include <iostream>
#include <map>
#include <memory>

#include <nlohmann/json.hpp>

#include "cli/command.hpp"
#include "cli/output.hpp"
#include "cli/session.hpp"
#include "engine/archive.hpp"
#include "engine/calendar.hpp"
#include "engine/case_view.hpp"
#include "engine/history_action.hpp"

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
  if (a == engine::history_action::kCaseStarted) {
    r.changed = "input: " + Fields(d.value("data", json::object()));
  } else if (a == engine::history_action::kCaseFinished) {
    r.decision = text("status");
    if (!text("reason").empty()) r.decision += ": " + text("reason");
  } else if (a == engine::history_action::kCaseCancelled) {
    r.decision = "cancelled: " + text("reason");
  } else if (a == engine::history_action::kTaskCompleted) {
    if (d.contains("decision")) r.decision = "decision " + d["decision"].dump();
    if (!text("reason").empty()) r.decision += (r.decision.empty() ? "" : "; ") + text("reason");
    r.changed = Fields(d.value("values", json::object()));
  } else if (a == engine::history_action::kStepSucceeded || a == engine::history_action::kStepReused) {
    if (d.contains("saved_as") && d["saved_as"].is_string()) {
      r.changed = d["saved_as"].get<std::string>() + " = " + d.value("result", json()).dump();
    }
    if (a == engine::history_action::kStepReused) r.decision = "reused from case " + text("source_case");
  } else if (a == engine::history_action::kStepFailed) {
    r.decision = "failed (attempt " + d.value("attempt", json()).dump() + "): " + text("message");
  } else if (a == engine::history_action::kStepErrorHandled) {
    r.decision = "on_error -> " + text("on_error");
  } else if (a == engine::history_action::kStepTimedOut) {
    r.decision = "timed out -> " + text("on_timeout");
  } else if (a == engine::history_action::kTaskEscalated) {
    r.decision = "escalated to " + text("to_role");
  } else if (a == engine::history_action::kTaskOverdue) {
    r.decision = "overdue";
  } else if (a == engine::history_action::kIncidentOpened) {
    r.decision = "incident: " + text("message");
  } else if (a == engine::history_action::kSignalReceived) {
    r.changed = text("name") + " = " + d.value("data", json()).dump();
  } else if (a == engine::history_action::kChildEnded) {
    r.decision = "sub-case " + text("case") + " " + text("outcome");
  } else if (a == engine::history_action::kTaskOpened) {
    r.decision = "for role " + text("role");
  }
  return r;
}

std::string Days(double days) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.2f", days);
  return buffer;
}

int History(const GlobalOptions& globals, const std::string& case_id, bool by_agency) {
  auto session = OpenSession(globals);
  if (!session) return Fail(session.error());
  engine::CaseView view;
  std::vector<engine::HistoryEvent> events;
  // The database login beside each event, by seq (PostgreSQL; "" before migration 8 and on
  // SQLite): who connected, where the actor may be a delegate's applicant.
  std::map<std::int64_t, std::string> logins;
  Status status = (*session)->store->Read([&](engine::StoreTx& tx) {
    auto loaded = engine::LoadCaseView(tx, (*session)->runtime->procedures(), case_id);
    if (!loaded) return loaded.error();
    view = std::move(*loaded);
    auto list = tx.ListHistory(case_id);
    if (!list) return list.error();
    events = std::move(*list);
    auto recorded = tx.HistoryLogins(case_id);
    if (!recorded) return recorded.error();
    logins = std::move(*recorded);
    return Status::Ok();
  });
  if (!status.ok()) return Fail(status);
  const engine::CaseRecord& record = view.record;
  const workflows::Procedure* procedure = view.procedure;
  const engine::Deployment& deployment = (*session)->deployment;
  const engine::Timestamp now = engine::Now();

  // Without its procedure the timeline still shows the events, only without holders.
  std::optional<engine::StepTable> steps;
  if (procedure) steps = engine::StepTableOf(*procedure);
  const engine::CaseTimeline timeline = engine::ReadTimeline(steps ? &*steps : nullptr, events);
  const std::vector<engine::HolderTime> held =
      engine::TimeHeldByHolder(timeline.holds, deployment, record.agency, now);
  const engine::CaseTimes times =
      engine::TimesOf(record, timeline.pauses, deployment.CalendarOf(record.agency), now);
  auto login_of = [&](const engine::HistoryEvent& e) -> std::string {
    auto it = logins.find(e.seq);
    return it == logins.end() ? std::string() : it->second;
  };
  auto holder_of = [&](const std::string& step) -> std::string {
    if (!steps) return "";
    auto it = steps->find(step);
    return it == steps->end() ? std::string() : it->second.holder;
  };

  if (globals.json) {
    if (by_agency) {
      json out = json::array();
      for (const engine::HolderTime& t : held) {
        out.push_back(
            {{"holder", t.holder},
             {"agency", t.agency},
             {"steps", t.steps},
             {"held_working_days", t.held_working_days},
             {"limit_working_days", t.limit_working_days ? json(*t.limit_working_days) : json()},
             {"over_limit", t.limit_working_days ? json(t.held_working_days > *t.limit_working_days)
                                                 : json(nullptr)},
             {"still_held", t.still_held}});
      }
      out.push_back(
          {{"holder", "case"},
           {"procedure", record.procedure},
           {"status", record.status},
           {"held_working_days", times.processing_working_days},
           {"paused_working_days", times.paused_working_days},
           {"deadline", JsonTime(record.deadline_at)},
           {"overdue", engine::IsOverdue(record, now)},
           {"limit", procedure && procedure->deadline ? json(procedure->deadline->ToString())
                                                      : json(nullptr)},
           {"within_limit", times.within_limit ? json(*times.within_limit) : json(nullptr)},
           {"current_steps", timeline.current_steps}});
      PrintJson(out);
      return 0;
    }
    json out = json::array();
    for (const engine::HistoryEvent& event : events) {
      json e = engine::HistoryEventJson(event);
      EventReading reading = Read(event);
      std::string holder = holder_of(event.step);
      e["agency"] = holder.empty() ? json(nullptr) : json(holder);
      const std::string login = login_of(event);
      e["login"] = login.empty() ? json(nullptr) : json(login);
      e["decision"] = reading.decision.empty() ? json(nullptr) : json(reading.decision);
      e["changed"] = reading.changed.empty() ? json(nullptr) : json(reading.changed);
      out.push_back(std::move(e));
    }
    PrintJson(out);
    return 0;
  }

  std::cout << "case " << record.id << ": " << record.procedure << " v" << record.version << ", "
            << record.status << "\n\n";
  Table table(
      {"SEQ", "AT", "ACTOR", "AGENCY", "ACTION", "STEP", "DECISION / REASON", "DATA CHANGED"});
  for (const engine::HistoryEvent& e : events) {
    std::string at = e.at;
    if (auto t = engine::EventTime(e)) at = LocalTime(deployment, record.agency, *t);
    std::string actor = e.actor;
    std::vector<std::string> member_of = deployment.AgenciesOf(e.actor);
    if (!member_of.empty()) actor += " (" + JoinComma(member_of) + ")";
    const std::string login = login_of(e);
    if (!login.empty() && login != e.actor) actor += " [login " + login + "]";
    EventReading reading = Read(e);
    table.AddRow({std::to_string(e.seq), at, actor, holder_of(e.step), e.action, e.step,
                  Summary(reading.decision, 40), Summary(reading.changed, 50)});
  }
  table.Print(std::cout);
  std::cout << "\ntime held, in working days:\n";
  Table held_table({"HELD BY", "STEPS", "HELD", "LIMIT", ""});
  for (const engine::HolderTime& t : held) {
    std::string verdict;
    if (t.limit_working_days) {
      verdict = t.held_working_days > *t.limit_working_days ? "over the limit" : "within the limit";
    }
    if (t.still_held) verdict += verdict.empty() ? "still held" : ", still held";
    held_table.AddRow({t.holder, std::to_string(t.steps), Days(t.held_working_days),
                       t.limit_working_days ? Days(*t.limit_working_days) : "-", verdict});
  }
  std::string case_verdict =
      times.within_limit
          ? (*times.within_limit ? "within the statutory limit" : "over the statutory limit")
          : "no statutory limit";
  if (times.paused_working_days > 0) {
    case_verdict += ", " + Days(times.paused_working_days) + " paused";
  }
  held_table.AddRow({"whole case", "-", Days(times.processing_working_days),
                     procedure && procedure->deadline ? procedure->deadline->ToString() : "-",
                     case_verdict + (engine::IsOpen(record) ? ", open" : "")});
  held_table.Print(std::cout);
  return 0;
}

}  // namespace

void AddHistoryCommands(CLI::App& app, const GlobalOptions& globals, CommandAction* selected) {
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
}

}  // namespace wf::cli
