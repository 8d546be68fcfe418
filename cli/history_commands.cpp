// wf history: a case's timeline for auditors: who did what and when, which agency held each
// step, the decisions and the data changed, and the time each holder kept the case against its
// limits (the holds come from the case read model, engine/case_view.hpp).
#include <iostream>
#include <map>
#include <memory>

#include <nlohmann/json.hpp>

#include "cli/command.hpp"
#include "cli/output.hpp"
#include "cli/report_html.hpp"
#include "cli/session.hpp"
#include "engine/archive.hpp"
#include "engine/calendar.hpp"
#include "engine/case_detail.hpp"
#include "engine/case_view.hpp"
#include "engine/history_action.hpp"
#include "workflows/i18n.hpp"

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

// `msgid` (marked with TrNoop) filled in with `args`: in the reader's language for people, in
// English for `--json`.
template <typename... Args>
std::string Say(bool people, const char* msgid, const Args&... args) {
  return TrFill(people ? Tr(msgid) : msgid, msgid, fmt::make_format_args(args...));
}

// A stored status or outcome ("completed", "refused", ...): translated for people.
std::string StatusWord(bool people, const std::string& status) {
  return people ? engine::StatusText(status) : status;
}

// What an event decided and why, and what data it changed: for people (`people`, in their
// language) or for `--json` (English).
struct EventReading {
  std::string decision;  // a decision, an outcome, an error
  std::string changed;   // the case data it changed
};

EventReading Read(const engine::HistoryEvent& e, bool people) {
  json d = json::parse(e.details, nullptr, false);
  if (!d.is_object()) return {"", ""};
  EventReading r;
  auto text = [&](const char* key) {
    return d.contains(key) && d[key].is_string() ? d[key].get<std::string>() : std::string();
  };
  const std::string& a = e.action;
  namespace action = engine::history_action;
  if (a == action::kCaseStarted) {
    r.changed = Say(people, TrNoop("input: {0}"), Fields(d.value("data", json::object())));
  } else if (a == action::kCaseFinished) {
    r.decision = StatusWord(people, text("status"));
    if (!text("reason").empty()) r.decision += ": " + text("reason");
  } else if (a == action::kCaseCancelled) {
    r.decision = Say(people, TrNoop("cancelled: {0}"), text("reason"));
  } else if (a == action::kTaskCompleted) {
    if (d.contains("decision")) {
      r.decision = Say(people, TrNoop("decision {0}"), d["decision"].dump());
    }
    if (!text("reason").empty()) r.decision += (r.decision.empty() ? "" : "; ") + text("reason");
    r.changed = Fields(d.value("values", json::object()));
  } else if (a == action::kStepSucceeded || a == action::kStepReused) {
    if (d.contains("saved_as") && d["saved_as"].is_string()) {
      r.changed = d["saved_as"].get<std::string>() + " = " + d.value("result", json()).dump();
    }
    if (a == action::kStepReused) {
      r.decision = Say(people, TrNoop("reused from case {0}"), text("source_case"));
    }
  } else if (a == action::kStepFailed) {
    r.decision = Say(people, TrNoop("failed (attempt {0}): {1}"), d.value("attempt", json()).dump(),
                     text("message"));
  } else if (a == action::kStepErrorHandled) {
    r.decision = Say(people, TrNoop("on_error -> {0}"), text("on_error"));
  } else if (a == action::kStepTimedOut) {
    r.decision = Say(people, TrNoop("timed out -> {0}"), text("on_timeout"));
  } else if (a == action::kTaskEscalated) {
    r.decision = Say(people, TrNoop("escalated to {0}"), text("to_role"));
  } else if (a == action::kTaskOverdue) {
    r.decision = Say(people, TrNoop("overdue"));
  } else if (a == action::kIncidentOpened) {
    r.decision = Say(people, TrNoop("incident: {0}"), text("message"));
  } else if (a == action::kSignalReceived) {
    r.changed = text("name") + " = " + d.value("data", json()).dump();
  } else if (a == action::kChildEnded) {
    r.decision =
        Say(people, TrNoop("sub-case {0} {1}"), text("case"), StatusWord(people, text("outcome")));
  } else if (a == action::kTaskOpened) {
    r.decision = Say(people, TrNoop("for role {0}"), text("role"));
  } else if (a == action::kStepAccepted && d.contains("receipt") && d["receipt"].is_object()) {
    const json& receipt = d["receipt"];
    r.decision = Say(people, TrNoop("case {0} at {1}"), receipt.value("case", ""),
                     receipt.value("deployment", ""));
  } else if (a == action::kFederationRequested) {
    r.decision = Say(people, TrNoop("for {0}: case {1}, step {2}"), text("deployment"),
                     text("case"), text("step"));
  } else if (a == action::kFederationAnswered) {
    r.decision = Say(people, TrNoop("answer to {0} taken by its event {1}"), text("deployment"),
                     text("hash").substr(0, 12));
  } else if (a == action::kCaseErased) {
    r.decision = Say(people, TrNoop("personal data erased: {0}"), text("reason"));
  } else if (a == action::kFederationRefused) {
    r.decision =
        Say(people, TrNoop("answer refused by {0}: {1}"), text("deployment"), text("message"));
  }
  return r;
}

// Who holds a step (engine::HolderOf: an agency, "department D", "applicant", "sub-case P") for
// people, in their language.
std::string HolderForPeople(const std::string& holder) {
  auto after = [&](std::string_view prefix) -> std::optional<std::string> {
    if (holder.compare(0, prefix.size(), prefix) != 0) return std::nullopt;
    return holder.substr(prefix.size());
  };
  if (holder == "applicant") return Tr("applicant");
  if (auto name = after("department ")) return TrFormat("department {0}", *name);
  if (auto name = after("sub-case ")) return TrFormat("sub-case {0}", *name);
  return holder;
}

std::string Days(double days) { return i18n::Decimal(days, 2); }

int History(const GlobalOptions& globals, const std::string& case_id, bool by_agency) {
  auto session = OpenSession(globals);
  if (!session) return Fail(session.error());
  engine::CaseView view;
  std::vector<engine::HistoryEvent> events;
  // The database login beside each event, by seq (PostgreSQL; "" before migration 8 and on
  // SQLite): who connected, where the actor may be a delegate's applicant.
  std::map<std::int64_t, std::string> logins;
  Status status = (*session)->store->Read([&](engine::StoreTx& tx) {
    auto loaded = engine::LoadCaseView(tx, (*session)->runtime->procedures(), case_id,
                                       &(*session)->store->keys());
    if (!loaded) return loaded.error();
    view = std::move(*loaded);
    auto list = tx.ListHistory(case_id);
    if (!list) return list.error();
    events = std::move(*list);
    // Shown opened; the rows keep the ciphertext their hashes cover (`wf audit export`).
    engine::Revealer revealer = engine::RevealerFor(tx, (*session)->store->keys());
    for (auto& event : events) event.details = revealer.RevealJsonText(event.details);
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
      EventReading reading = Read(event, false);
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

  std::cout << TrFormat("case {0}: {1} v{2}, {3}", record.id, record.procedure, record.version,
                        engine::StatusText(record.status))
            << "\n\n";
  Table table({Tr("SEQ"), Tr("AT"), Tr("ACTOR"), Tr("AGENCY"), Tr("ACTION"), Tr("STEP"),
               Tr("DECISION / REASON"), Tr("DATA CHANGED")});
  for (const engine::HistoryEvent& e : events) {
    std::string at = e.at;
    if (auto t = engine::EventTime(e)) at = LocalTime(deployment, record.agency, *t);
    std::string actor = e.actor;
    std::vector<std::string> member_of = deployment.AgenciesOf(e.actor);
    if (!member_of.empty()) actor += " (" + JoinComma(member_of) + ")";
    const std::string login = login_of(e);
    if (!login.empty() && login != e.actor) actor = TrFormat("{0} [login {1}]", actor, login);
    EventReading reading = Read(e, true);
    table.AddRow({std::to_string(e.seq), at, actor, HolderForPeople(holder_of(e.step)), e.action,
                  e.step, Summary(reading.decision, 40), Summary(reading.changed, 50)});
  }
  table.Print(std::cout);
  std::cout << '\n' << Tr("time held, in working days:") << '\n';
  Table held_table({Tr("HELD BY"), Tr("STEPS"), Tr("HELD"), Tr("LIMIT"), ""});
  // The verdicts of a row, each a phrase of its own, joined with ", ".
  auto join = [](const std::vector<std::string>& phrases) {
    std::string out;
    for (const std::string& phrase : phrases) out += (out.empty() ? "" : ", ") + phrase;
    return out;
  };
  for (const engine::HolderTime& t : held) {
    std::vector<std::string> verdict;
    if (t.limit_working_days) {
      verdict.push_back(t.held_working_days > *t.limit_working_days ? Tr("over the limit")
                                                                    : Tr("within the limit"));
    }
    if (t.still_held) verdict.push_back(Tr("still held"));
    held_table.AddRow({HolderForPeople(t.holder), i18n::Number(t.steps), Days(t.held_working_days),
                       t.limit_working_days ? Days(*t.limit_working_days) : "-", join(verdict)});
  }
  std::vector<std::string> case_verdict = {
      times.within_limit ? (*times.within_limit ? Tr("within the statutory limit")
                                                : Tr("over the statutory limit"))
                         : Tr("no statutory limit")};
  if (times.paused_working_days > 0) {
    case_verdict.push_back(TrFormat("{0} paused", Days(times.paused_working_days)));
  }
  if (engine::IsOpen(record)) case_verdict.push_back(Tr("open"));
  held_table.AddRow(
      {Tr("whole case"), "-", Days(times.processing_working_days),
       procedure && procedure->deadline ? LimitForPeople(procedure->deadline->ToString()) : "-",
       join(case_verdict)});
  held_table.Print(std::cout);
  return 0;
}

}  // namespace

void AddHistoryCommands(CLI::App& app, const GlobalOptions& globals, CommandAction* selected) {
  {
    auto* cmd =
        app.add_subcommand("history", Tr("a case's timeline: who did what, when, for how long"));
    auto case_id = std::make_shared<std::string>();
    auto by_agency = std::make_shared<bool>(false);
    cmd->add_option("case", *case_id, Tr("the case id"))->required();
    cmd->add_flag("--by-agency", *by_agency,
                  Tr("only the time each agency held the case against its limits"));
    cmd->callback([&globals, case_id, by_agency, selected] {
      *selected = [&globals, case_id, by_agency] { return History(globals, *case_id, *by_agency); };
    });
  }
}

}  // namespace wf::cli
