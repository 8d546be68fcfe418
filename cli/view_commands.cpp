// wf cases, show: looking cases up, through the case read model (engine/case_view.hpp).
#include <algorithm>
#include <iostream>
#include <map>
#include <memory>

#include <nlohmann/json.hpp>

#include "cli/command.hpp"
#include "cli/output.hpp"
#include "cli/session.hpp"
#include "engine/case_detail.hpp"
#include "engine/case_view.hpp"
#include "engine/machine.hpp"
#include "workflows/i18n.hpp"

namespace wf::cli {

namespace {

using nlohmann::json;

struct CasesOptions {
  std::string status;
  std::string procedure;
  std::string agency;
  bool mine = false;
  bool overdue = false;
  int limit = 50;
};

// One line of `wf cases`.
struct CaseLine {
  engine::CaseRecord record;
  engine::CaseClock clock;
  std::vector<std::string> steps;
  std::vector<std::string> roles;
};

int Cases(const GlobalOptions& globals, const CasesOptions& options) {
  auto session = OpenSession(globals);
  if (!session) return Fail(session.error());
  std::string actor;
  if (options.mine) {
    auto who = RequireActor(**session, "cases --mine");
    if (!who) return Fail(who.error());
    actor = *who;
  }
  const engine::Deployment& deployment = (*session)->deployment;
  std::optional<engine::Viewer> viewer;
  if (options.mine) viewer = engine::ViewerOf(deployment, actor);
  engine::Timestamp now = engine::Now();

  engine::CaseFilter filter;
  if (!options.status.empty()) filter.status = options.status;
  if (!options.procedure.empty()) filter.procedure = options.procedure;
  if (!options.agency.empty()) filter.agency = options.agency;
  // The SQL pre-selects overdue cases by the read model's rule; IsOverdue decides below.
  if (options.overdue) filter.overdue_at = now;
  // --mine filters after reading, so it reads every case that passes the other filters.
  filter.limit = options.mine ? 0 : options.limit;

  std::vector<CaseLine> lines;
  Status status = (*session)->store->Read([&](engine::StoreTx& tx) {
    // The viewer's inbox, by case: what makes a case theirs besides having started it.
    std::map<std::string, std::vector<engine::TaskRecord>> inbox;
    if (viewer && !viewer->agency_roles.empty()) {
      auto tasks = tx.ListTasks(engine::InboxFilter(*viewer));
      if (!tasks) return tasks.error();
      for (auto& task : *tasks) inbox[task.case_id].push_back(std::move(task));
    }
    auto cases = tx.ListCases(filter);
    if (!cases) return cases.error();
    for (auto& record : *cases) {
      if (options.overdue && !engine::IsOverdue(record, now)) continue;
      if (viewer && !engine::IsMine(*viewer, record, inbox[record.id])) continue;
      if (filter.limit == 0 && options.limit > 0 &&
          static_cast<int>(lines.size()) >= options.limit) {
        break;
      }
      CaseLine line;
      auto full = tx.GetCase(record.id);
      if (!full) return full.error();
      line.steps = engine::CurrentSteps(full->state);
      engine::TaskFilter tasks_filter;
      tasks_filter.case_id = record.id;
      auto tasks = tx.ListTasks(tasks_filter);
      if (!tasks) return tasks.error();
      line.roles = engine::RolesAtWork(*tasks);
      line.clock = engine::ReadClock(record, deployment.CalendarOf(record.agency), now);
      line.record = std::move(record);
      lines.push_back(std::move(line));
    }
    return Status::Ok();
  });
  if (!status.ok()) return Fail(status);

  if (globals.json) {
    json out = json::array();
    for (const auto& line : lines) {
      const auto& r = line.record;
      out.push_back({{"id", r.id},
                     {"case", r.id},
                     {"step", JoinComma(line.steps)},
                     {"role", JoinComma(line.roles)},
                     {"status", r.status},
                     {"procedure", r.procedure},
                     {"version", r.version},
                     {"agency", r.agency},
                     {"started_by", r.started_by},
                     {"started_at", JsonTime(r.started_at)},
                     {"ended_at", JsonTime(r.ended_at)},
                     {"deadline", JsonTime(r.deadline_at)},
                     {"overdue", line.clock.overdue},
                     {"late", line.clock.late},
                     {"clock_paused", line.clock.paused_since.has_value()},
                     {"parent", r.parent_case ? json(*r.parent_case) : json(nullptr)}});
    }
    PrintJson(out);
    return 0;
  }
  if (lines.empty()) {
    std::cout << Tr("no cases match\n");
    return 0;
  }
  Table table({Tr("CASE"), Tr("PROCEDURE"), Tr("STATUS"), Tr("STEP"), Tr("ROLE"), Tr("AGENCY"),
               Tr("STARTED"), Tr("DEADLINE")});
  for (const auto& line : lines) {
    const auto& r = line.record;
    std::string deadline = "-";
    if (r.deadline_at) {
      deadline = line.clock.open
                     ? DescribeDeadline(deployment, r.agency, *r.deadline_at, line.clock.reading)
                     : LocalTime(deployment, r.agency, *r.deadline_at);
      if (line.clock.paused_since) deadline = TrFormat("{0} paused", deadline);
    }
    table.AddRow({r.id, r.procedure + " v" + std::to_string(r.version),
                  engine::StatusText(r.status), JoinComma(line.steps), JoinComma(line.roles),
                  r.agency, LocalTime(deployment, r.agency, r.started_at), deadline});
  }
  table.Print(std::cout);
  return 0;
}

// --- show ------------------------------------------------------------------------------------

// A task's title in the reader's language, when its procedure writes one per language.
std::string TaskTitle(const workflows::Procedure* procedure, const engine::TaskRecord& task) {
  const workflows::Step* step = procedure ? procedure->FindStep(task.step) : nullptr;
  if (step == nullptr || step->task != task.title) return task.title;
  return i18n::Pick(step->task_titles, task.title);
}

int Show(const GlobalOptions& globals, const std::string& case_id) {
  auto session = OpenSession(globals);
  if (!session) return Fail(session.error());
  const engine::Deployment& deployment = (*session)->deployment;
  engine::CaseDetail detail;
  Status status = (*session)->store->Read([&](engine::StoreTx& tx) {
    auto loaded = engine::LoadCaseDetail(tx, (*session)->runtime->procedures(), case_id,
                                         &(*session)->store->keys());
    if (!loaded) return loaded.error();
    detail = std::move(*loaded);
    return Status::Ok();
  });
  if (!status.ok()) return Fail(status);
  engine::Timestamp now = engine::Now();
  if (globals.json) {
    PrintJson(engine::CaseDetailJson(detail, deployment, now));
    return 0;
  }
  const engine::CaseRecord& record = detail.view.record;
  const workflows::Procedure* procedure = detail.view.procedure;
  const std::optional<engine::CaseState>& state = detail.view.state;
  const std::vector<engine::TaskRecord>& tasks = detail.view.tasks;
  const std::vector<engine::IncidentRecord>& incidents = detail.incidents;
  const std::vector<engine::CaseRecord>& children = detail.children;
  const std::vector<engine::Position>& positions = detail.positions;
  json data = json::parse(record.data, nullptr, false);
  if (data.is_discarded()) data = nullptr;
  const engine::Calendar calendar = deployment.CalendarOf(record.agency);
  const engine::CaseClock clock = engine::ReadClock(record, calendar, now);
  auto to_point = [](engine::Timestamp t) {
    return engine::TimePoint(
        std::chrono::duration_cast<engine::TimePoint::duration>(t.time_since_epoch()));
  };

  const std::string title =
      procedure ? i18n::Pick(procedure->titles, procedure->title) : std::string();
  if (!title.empty()) {
    std::cout << TrFormat("case {0}: {1} v{2} — {3}\n", record.id, record.procedure, record.version,
                          title);
  } else {
    std::cout << TrFormat("case {0}: {1} v{2}\n", record.id, record.procedure, record.version);
  }
  std::cout << TrFormat("agency: {0}\n", record.agency.empty() ? "-" : record.agency);
  if (state && !state->reason.empty()) {
    std::cout << TrFormat("status: {0} ({1})\n", engine::StatusText(record.status), state->reason);
  } else {
    std::cout << TrFormat("status: {0}\n", engine::StatusText(record.status));
  }
  std::cout << TrFormat("started: {0} by {1}\n",
                        LocalTime(deployment, record.agency, record.started_at), record.started_by);
  if (record.ended_at) {
    std::cout << TrFormat("ended: {0}\n", LocalTime(deployment, record.agency, *record.ended_at));
  }
  if (record.parent_case) std::cout << TrFormat("sub-case of: {0}\n", *record.parent_case);
  if (record.deadline_at) {
    const std::string at = LocalTime(deployment, record.agency, *record.deadline_at);
    std::string deadline = TrFormat("deadline: {0}", at);
    if (clock.open || record.ended_at) {
      const std::string left =
          calendar.DescribeTimeLeft(to_point(clock.reading), to_point(*record.deadline_at));
      deadline = clock.open ? TrFormat("deadline: {0}, {1}", at, left)
                            : TrFormat("deadline: {0}, {1} when it ended", at, left);
    }
    if (clock.paused_since) {
      deadline = TrFormat("{0}; the clock is paused since {1}", deadline,
                          LocalTime(deployment, record.agency, *clock.paused_since));
    }
    std::cout << deadline << '\n';
  } else {
    std::cout << Tr("deadline: none\n");
  }
  if (!positions.empty()) {
    std::cout << '\n' << Tr("where it stands:\n");
    for (const auto& p : positions) {
      std::cout << "  " << p.step << " (" << engine::StepKindText(p.kind.empty() ? "step" : p.kind)
                << "): " << p.text << '\n';
    }
  }
  std::vector<const engine::TaskRecord*> open_tasks;
  for (const auto& t : tasks) {
    if (engine::IsTaskOpen(t)) open_tasks.push_back(&t);
  }
  if (!open_tasks.empty()) {
    std::cout << '\n' << Tr("who holds it:\n");
    Table table({Tr("TASK"), Tr("STEP"), Tr("TITLE"), Tr("ROLE"), Tr("AGENCY"), Tr("STATUS"),
                 Tr("ASSIGNEE"), Tr("DUE")});
    for (const auto* t : open_tasks) {
      table.AddRow({std::to_string(t->id), t->step, TaskTitle(procedure, *t), t->role, t->agency,
                    engine::StatusText(engine::TaskStatusName(t->status)),
                    t->assignee.value_or("-"),
                    t->due_at ? DescribeDeadline(deployment, t->agency, *t->due_at, now) : "-"});
    }
    table.Print(std::cout);
  }
  if (tasks.size() > open_tasks.size()) {
    std::cout << '\n' << Tr("finished tasks:\n");
    Table table({Tr("TASK"), Tr("STEP"), Tr("STATUS"), Tr("BY"), Tr("AT")});
    for (const auto& t : tasks) {
      if (engine::IsTaskOpen(t)) continue;
      table.AddRow({std::to_string(t.id), t.step,
                    engine::StatusText(engine::TaskStatusName(t.status)),
                    t.completed_by.value_or("-"),
                    t.completed_at ? LocalTime(deployment, t.agency, *t.completed_at) : "-"});
    }
    table.Print(std::cout);
  }
  if (!incidents.empty()) {
    std::cout << '\n' << Tr("incidents:\n");
    Table table({Tr("INCIDENT"), Tr("STEP"), Tr("STATUS"), Tr("OPENED"), Tr("MESSAGE")});
    for (const auto& i : incidents) {
      table.AddRow(
          {std::to_string(i.id), i.step,
           engine::StatusText(i.status == engine::IncidentStatus::kOpen ? "open" : "resolved"),
           LocalTime(deployment, record.agency, i.created_at), i.message});
    }
    table.Print(std::cout);
  }
  if (!children.empty()) {
    std::cout << '\n' << Tr("sub-cases:\n");
    Table table({Tr("CASE"), Tr("PROCEDURE"), Tr("STATUS")});
    for (const auto& c : children) {
      table.AddRow({c.id, c.procedure, engine::StatusText(c.status)});
    }
    table.Print(std::cout);
  }
  std::cout << '\n' << Tr("data:\n") << data.dump(2) << '\n';
  return 0;
}

}  // namespace

void AddViewCommands(CLI::App& app, const GlobalOptions& globals, CommandAction* selected) {
  {
    auto* cmd = app.add_subcommand(
        "cases", Tr("list cases, newest first; --mine: cases with open tasks for your roles, or "
                    "that you started"));
    auto options = std::make_shared<CasesOptions>();
    cmd->add_option("--status", options->status, Tr("open, completed, refused, cancelled, ..."));
    cmd->add_option("--procedure", options->procedure, Tr("only this procedure"));
    cmd->add_option("--agency", options->agency, Tr("only cases owned by this agency"));
    cmd->add_flag("--mine", options->mine,
                  Tr("only cases with open tasks for your roles (--as), or that you started"));
    cmd->add_flag("--overdue", options->overdue,
                  Tr("only open cases past their statutory deadline"));
    cmd->add_option("--limit", options->limit, Tr("at most N cases (default 50; 0: all)"))
        ->check(CLI::NonNegativeNumber);
    cmd->callback([&globals, options, selected] {
      *selected = [&globals, options] { return Cases(globals, *options); };
    });
  }
  {
    auto* cmd = app.add_subcommand("show", Tr("where a case stands, who holds it, its deadline"));
    auto case_id = std::make_shared<std::string>();
    cmd->add_option("case", *case_id, Tr("the case id"))->required();
    cmd->callback([&globals, case_id, selected] {
      *selected = [&globals, case_id] { return Show(globals, *case_id); };
    });
  }
}

}  // namespace wf::cli
