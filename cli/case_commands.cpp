// wf deploy, procedures, migrate, start, cases, show, signal, cancel, retry, incidents, engine:
// putting procedures into the store, starting and looking up cases, and running the engine.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <iostream>
#include <memory>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "adapters/notify.hpp"
#include "cli/adapters_wiring.hpp"
#include "cli/command.hpp"
#include "cli/output.hpp"
#include "cli/session.hpp"
#include "engine/machine.hpp"
#include "engine/scheduler.hpp"
#include "workflows/json_limits.hpp"
#include "workflows/loader.hpp"

namespace wf::cli {

namespace {

using nlohmann::json;

void PrintJson(const json& value) { std::cout << value.dump(2) << '\n'; }

// --- deploy, procedures, migrate -----------------------------------------------------------

int Deploy(const GlobalOptions& globals, const std::vector<std::string>& files) {
  auto deployment = LoadDeploymentFor(globals);
  if (!deployment) return Fail(deployment.error());
  std::optional<workflows::DeploymentNames> names;
  if (!globals.config.empty()) names = deployment->Names();

  // Every file must load before any is deployed: a release of several procedures goes in whole.
  std::vector<std::pair<std::string, workflows::Procedure>> loaded;
  bool failed = false;
  for (const auto& file : files) {
    workflows::LoadResult result = workflows::LoadProcedureFile(file, names ? &*names : nullptr);
    for (const auto& d : result.diagnostics) std::cerr << d.ToString() << '\n';
    if (!result.ok()) {
      failed = true;
      continue;
    }
    loaded.emplace_back(file, std::move(*result.procedure));
  }
  if (failed) {
    std::cerr << "wf: nothing deployed: fix the errors above and deploy again\n";
    return ExitCodeOf(ErrorCode::kInvalid);
  }

  auto session = OpenSession(globals);
  if (!session) return Fail(session.error());
  json report = json::array();
  for (const auto& [file, procedure] : loaded) {
    auto outcome = (*session)->runtime->Deploy(procedure);
    if (!outcome) return Fail(outcome.error());
    report.push_back({{"file", file},
                      {"procedure", procedure.name},
                      {"version", outcome->version},
                      {"created", outcome->created},
                      {"content_hash", procedure.content_hash}});
    if (!globals.json) {
      if (outcome->created) {
        std::cout << "deployed " << procedure.name << " v" << outcome->version << " (new)\n";
      } else {
        std::cout << procedure.name << " v" << outcome->version << " unchanged\n";
      }
    }
  }
  if (globals.json) PrintJson(report);
  return 0;
}

int Procedures(const GlobalOptions& globals) {
  auto session = OpenSession(globals);
  if (!session) return Fail(session.error());
  std::vector<engine::ProcedureRecord> records;
  Status status = (*session)->store->Read([&](engine::StoreTx& tx) {
    auto list = tx.ListProcedures();
    if (!list) return list.error();
    records = std::move(*list);
    return Status::Ok();
  });
  if (!status.ok()) return Fail(status);
  if (globals.json) {
    json out = json::array();
    for (const auto& r : records) {
      out.push_back({{"name", r.name},
                     {"version", r.version},
                     {"content_hash", r.content_hash},
                     {"title", r.title},
                     {"agency", r.agency},
                     {"deployed_at", JsonTime(r.deployed_at)}});
    }
    PrintJson(out);
    return 0;
  }
  if (records.empty()) {
    std::cout << "no procedures deployed; `wf deploy FILE` deploys one\n";
    return 0;
  }
  const engine::Deployment& deployment = (*session)->deployment;
  Table table({"NAME", "VERSION", "HASH", "TITLE", "AGENCY", "DEPLOYED"});
  for (const auto& r : records) {
    table.AddRow({r.name, "v" + std::to_string(r.version), r.content_hash.substr(0, 12), r.title,
                  r.agency, LocalTime(deployment, r.agency, r.deployed_at)});
  }
  table.Print(std::cout);
  return 0;
}

int Migrate(const GlobalOptions& globals) {
  auto store = engine::Store::Open(globals.db, 1);
  if (!store) return Fail(store.error());
  auto applied = (*store)->Migrate();
  if (!applied) return Fail(applied.error());
  auto version = (*store)->SchemaVersion();
  if (!version) return Fail(version.error());
  if (globals.json) {
    PrintJson({{"schema_version", *version}, {"applied", *applied}});
  } else {
    std::cout << "schema of " << (*store)->redacted_url() << " is at version " << *version
              << " (" << *applied << " migrations applied now)\n";
  }
  return 0;
}

// --- start -----------------------------------------------------------------------------------

struct StartOptions {
  std::string procedure;
  std::string data;
  std::string batch;
  int batch_size = 500;
};

int StartOne(const GlobalOptions& globals, const StartOptions& options) {
  auto data = ReadJsonInput(options.data, "--data");
  if (!data) return Fail(data.error());
  auto session = OpenSession(globals);
  if (!session) return Fail(session.error());
  auto started =
      (*session)->runtime->StartCase(options.procedure, *data, ActorOrAnonymous(globals));
  if (!started) return Fail(started.error());
  if (globals.json) {
    PrintJson({{"id", started->id}, {"procedure", started->procedure},
               {"version", started->version}});
  } else {
    std::cout << started->id << '\n';
  }
  return 0;
}

// Moves a backlog in: one JSON object a line. Lines that are not JSON are refused here; the
// runtime refuses bad data and duplicates line by line and starts the rest.
int StartBatch(const GlobalOptions& globals, const StartOptions& options) {
  std::string text;
  std::string error;
  if (!ReadInput(options.batch, &text, &error)) {
    return Fail(Status::NotFound("--batch: " + error + "; give an existing .jsonl file"));
  }
  std::vector<json> cases;
  std::vector<int> line_of;  // the file line of each element of `cases`
  std::vector<std::string> errors;
  bool invalid = false;
  bool duplicate = false;
  std::istringstream lines(text);
  std::string line;
  for (int number = 1; std::getline(lines, line); ++number) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    auto parsed = workflows::ParseJsonWithin(line);  // bounded before any DOM exists
    if (parsed) {
      cases.push_back(std::move(*parsed));
      line_of.push_back(number);
    } else {
      errors.push_back("line " + std::to_string(number) + ": " + parsed.error().message());
      invalid = true;
    }
  }
  auto session = OpenSession(globals);
  if (!session) return Fail(session.error());
  std::vector<std::string> refused;
  auto started = (*session)->runtime->StartBatch(options.procedure, cases,
                                                 ActorOrAnonymous(globals),
                                                 options.batch_size, &refused);
  if (!started) return Fail(started.error());
  for (const auto& message : refused) {
    // The runtime numbers the cases it was given from 1; say the file's line instead.
    std::string rest = message;
    int index = 0;
    if (message.rfind("line ", 0) == 0) {
      size_t colon = message.find(':');
      try {
        index = std::stoi(message.substr(5, colon - 5));
      } catch (const std::exception&) {
        index = 0;
      }
      if (colon != std::string::npos) rest = message.substr(colon + 2);
    }
    std::string where = index >= 1 && index <= static_cast<int>(line_of.size())
                            ? "line " + std::to_string(line_of[index - 1])
                            : "line ?";
    errors.push_back(where + ": " + rest);
    // The runtime says only the message; a duplicate is the dedupe conflict it names.
    if (rest.find("is already open") != std::string::npos) {
      duplicate = true;
    } else {
      invalid = true;
    }
  }
  std::sort(errors.begin(), errors.end(), [](const std::string& a, const std::string& b) {
    auto number = [](const std::string& s) {
      try {
        return std::stol(s.substr(5));
      } catch (const std::exception&) {
        return 0L;
      }
    };
    return number(a) < number(b);
  });
  for (const auto& e : errors) std::cerr << e << '\n';
  if (globals.json) {
    json ids = json::array();
    for (const auto& s : *started) ids.push_back(s.id);
    PrintJson({{"started", started->size()}, {"ids", ids}, {"errors", errors}});
  } else {
    std::cout << "started " << started->size() << " cases of " << options.procedure;
    if (!errors.empty()) std::cout << "; " << errors.size() << " lines refused (see above)";
    std::cout << '\n';
  }
  if (invalid) return ExitCodeOf(ErrorCode::kInvalid);
  if (duplicate) return ExitCodeOf(ErrorCode::kConflict);
  return 0;
}

int Start(const GlobalOptions& globals, const StartOptions& options) {
  if (options.data.empty() == options.batch.empty()) {
    return Fail(Status::Usage("`wf start " + options.procedure +
                              "` needs --data FILE (- for stdin) or --batch FILE.jsonl"));
  }
  return options.batch.empty() ? StartOne(globals, options) : StartBatch(globals, options);
}

// --- cases -----------------------------------------------------------------------------------

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
  std::vector<std::string> steps;
  std::vector<std::string> roles;
};

int Cases(const GlobalOptions& globals, const CasesOptions& options) {
  std::string actor;
  if (options.mine) {
    auto who = RequireActor(globals, "cases --mine");
    if (!who) return Fail(who.error());
    actor = *who;
  }
  auto session = OpenSession(globals);
  if (!session) return Fail(session.error());
  const engine::Deployment& deployment = (*session)->deployment;
  engine::Timestamp now = engine::Now();

  engine::CaseFilter filter;
  if (!options.status.empty()) filter.status = options.status;
  if (!options.procedure.empty()) filter.procedure = options.procedure;
  if (!options.agency.empty()) filter.agency = options.agency;
  if (options.overdue) filter.overdue_at = now;
  // --mine filters after reading, so it reads every case that passes the other filters.
  filter.limit = options.mine ? 0 : options.limit;

  std::vector<CaseLine> lines;
  Status status = (*session)->store->Read([&](engine::StoreTx& tx) {
    std::set<std::string> with_my_tasks;
    if (options.mine) {
      engine::TaskFilter tasks_filter;
      tasks_filter.agency_roles = AgencyRolesOf(deployment, actor);
      if (!tasks_filter.agency_roles.empty()) {
        auto tasks = tx.ListTasks(tasks_filter);
        if (!tasks) return tasks.error();
        for (const auto& task : *tasks) with_my_tasks.insert(task.case_id);
      }
    }
    auto cases = tx.ListCases(filter);
    if (!cases) return cases.error();
    for (auto& record : *cases) {
      if (options.mine && record.started_by != actor && !with_my_tasks.count(record.id)) continue;
      if (options.mine && options.limit > 0 && static_cast<int>(lines.size()) >= options.limit) {
        break;
      }
      CaseLine line;
      auto full = tx.GetCase(record.id);
      if (!full) return full.error();
      line.steps = CurrentSteps(full->state);
      engine::TaskFilter tasks_filter;
      tasks_filter.case_id = record.id;
      auto tasks = tx.ListTasks(tasks_filter);
      if (!tasks) return tasks.error();
      for (const auto& task : *tasks) {
        if (std::find(line.roles.begin(), line.roles.end(), task.role) == line.roles.end()) {
          line.roles.push_back(task.role);
        }
      }
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
                     {"overdue", r.status == engine::kCaseOpen && r.deadline_at &&
                                     !r.clock_paused_at && *r.deadline_at < now},
                     {"clock_paused", r.clock_paused_at.has_value()},
                     {"parent", r.parent_case ? json(*r.parent_case) : json(nullptr)}});
    }
    PrintJson(out);
    return 0;
  }
  if (lines.empty()) {
    std::cout << "no cases match\n";
    return 0;
  }
  Table table({"CASE", "PROCEDURE", "STATUS", "STEP", "ROLE", "AGENCY", "STARTED", "DEADLINE"});
  for (const auto& line : lines) {
    const auto& r = line.record;
    std::string deadline = "-";
    if (r.deadline_at) {
      deadline = r.status == engine::kCaseOpen
                     ? DescribeDeadline(deployment, r.agency, *r.deadline_at, now)
                     : LocalTime(deployment, r.agency, *r.deadline_at);
      if (r.clock_paused_at) deadline += " paused";
    }
    table.AddRow({r.id, r.procedure + " v" + std::to_string(r.version), r.status,
                  JoinComma(line.steps), JoinComma(line.roles), r.agency,
                  LocalTime(deployment, r.agency, r.started_at), deadline});
  }
  table.Print(std::cout);
  return 0;
}

// --- show ------------------------------------------------------------------------------------

// Where one token of a case stands, for people and for --json.
struct Position {
  std::string step;
  std::string kind;  // the step's kind, when the procedure is at hand
  std::string waiting;
  int64_t activation = 0;
  std::string detail;
  std::string signal;  // the signal that wakes it, for waits and 202-parked steps
};

std::string TaskWho(const engine::TaskRecord& task) {
  std::string who = "role " + task.role + " of " + task.agency + " (task " +
                    std::to_string(task.id);
  if (task.status == engine::TaskStatus::kClaimed && task.assignee) {
    who += ", claimed by " + *task.assignee;
  } else {
    who += ", unclaimed";
  }
  return who + ")";
}

Position Describe(const engine::Token& token, const std::string& case_id,
                  const workflows::Procedure* procedure,
                  const std::vector<engine::TaskRecord>& tasks,
                  const std::vector<engine::IncidentRecord>& incidents,
                  const std::vector<engine::CaseRecord>& children) {
  Position p;
  p.step = token.step;
  p.activation = token.activation;
  p.waiting = engine::WaitingName(token.waiting);
  p.signal = token.signal;
  const workflows::Step* step = procedure ? procedure->FindStep(token.step) : nullptr;
  if (step) p.kind = workflows::StepKindName(step->kind);
  std::string department = step ? step->department : std::string("its department");
  switch (token.waiting) {
    case engine::Waiting::kNothing:
      p.detail = "moving on";
      break;
    case engine::Waiting::kAdapter:
      p.detail = "calling " + department + " (attempt " + std::to_string(token.attempt) +
                 "); `wf engine` carries it out";
      break;
    case engine::Waiting::kRetry:
      p.detail = "waiting to call " + department + " again (attempt " +
                 std::to_string(token.attempt) + ")";
      break;
    case engine::Waiting::kAccepted:
      p.detail = department + " accepted the call and will answer: `wf signal " + case_id + " " +
                 token.signal + " --data FILE` delivers its answer";
      break;
    case engine::Waiting::kTask: {
      p.detail = "waiting for a person";
      for (const auto& task : tasks) {
        if (task.activation == token.activation &&
            (task.status == engine::TaskStatus::kOpen ||
             task.status == engine::TaskStatus::kClaimed)) {
          p.detail = "waiting for " + TaskWho(task) + ": " + task.title;
        }
      }
      break;
    }
    case engine::Waiting::kSignal:
      p.detail = "waiting for the signal '" + token.signal + "': `wf signal " + case_id + " " +
                 token.signal + "`";
      break;
    case engine::Waiting::kChild: {
      p.detail = "waiting for a sub-case of " + (step ? step->procedure : std::string("?"));
      for (const auto& child : children) {
        if (child.parent_activation == token.activation) {
          p.detail = "waiting for sub-case " + child.id + " (" + child.procedure + ", " +
                     child.status + ")";
        }
      }
      break;
    }
    case engine::Waiting::kBranches:
      p.detail = "waiting for its parallel branches to end";
      break;
    case engine::Waiting::kIncident: {
      p.detail = "stopped by an incident: " + token.incident;
      for (const auto& incident : incidents) {
        if (incident.activation == token.activation &&
            incident.status == engine::IncidentStatus::kOpen) {
          p.detail += "; `wf retry " + std::to_string(incident.id) + "` tries again";
        }
      }
      break;
    }
  }
  return p;
}

json TaskJson(const engine::TaskRecord& t) {
  json form = json::parse(t.form, nullptr, false);
  json values = t.values ? json::parse(*t.values, nullptr, false) : json(nullptr);
  return {{"id", t.id},
          {"case", t.case_id},
          {"step", t.step},
          {"title", t.title},
          {"role", t.role},
          {"agency", t.agency},
          {"status", engine::TaskStatusName(t.status)},
          {"assignee", t.assignee ? json(*t.assignee) : json(nullptr)},
          {"created_at", JsonTime(t.created_at)},
          {"due", JsonTime(t.due_at)},
          {"escalated_to", t.escalated_to ? json(*t.escalated_to) : json(nullptr)},
          {"completed_by", t.completed_by ? json(*t.completed_by) : json(nullptr)},
          {"completed_at", JsonTime(t.completed_at)},
          {"form", form.is_discarded() ? json(nullptr) : form},
          {"values", values.is_discarded() ? json(nullptr) : values}};
}

json IncidentJson(const engine::IncidentRecord& i) {
  return {{"id", i.id},
          {"case", i.case_id},
          {"step", i.step},
          {"activation", i.activation},
          {"status", i.status == engine::IncidentStatus::kOpen ? "open" : "resolved"},
          {"message", i.message},
          {"created_at", JsonTime(i.created_at)},
          {"resolved_at", JsonTime(i.resolved_at)},
          {"resolved_by", i.resolved_by ? json(*i.resolved_by) : json(nullptr)}};
}

int Show(const GlobalOptions& globals, const std::string& case_id) {
  auto session = OpenSession(globals);
  if (!session) return Fail(session.error());
  const engine::Deployment& deployment = (*session)->deployment;
  engine::CaseRecord record;
  const workflows::Procedure* procedure = nullptr;
  std::vector<engine::TaskRecord> tasks;
  std::vector<engine::IncidentRecord> incidents;
  std::vector<engine::CaseRecord> children;
  Status status = (*session)->store->Read([&](engine::StoreTx& tx) {
    auto found = tx.GetCase(case_id);
    if (!found) {
      if (found.error().code() == ErrorCode::kNotFound) {
        return Status::NotFound("no case " + case_id + "; `wf cases` lists them");
      }
      return found.error();
    }
    record = std::move(*found);
    // Without its procedure the case is still shown, only with less detail.
    auto loaded = (*session)->runtime->procedures().Get(tx, record.procedure, record.version);
    if (loaded) procedure = *loaded;
    engine::TaskFilter filter;
    filter.case_id = case_id;
    filter.open_only = false;
    auto task_list = tx.ListTasks(filter);
    if (!task_list) return task_list.error();
    tasks = std::move(*task_list);
    auto incident_list = tx.ListIncidents(case_id);
    if (!incident_list) return incident_list.error();
    incidents = std::move(*incident_list);
    auto child_list = tx.ListChildCases(case_id);
    if (!child_list) return child_list.error();
    children = std::move(*child_list);
    return Status::Ok();
  });
  if (!status.ok()) return Fail(status);

  engine::Timestamp now = engine::Now();
  json state_json = json::parse(record.state, nullptr, false);
  std::optional<engine::CaseState> state;
  if (!state_json.is_discarded()) {
    auto parsed = engine::CaseState::FromJson(state_json);
    if (parsed) state = std::move(*parsed);
  }
  std::vector<Position> positions;
  if (state) {
    for (const auto& token : state->tokens) {
      positions.push_back(Describe(token, case_id, procedure, tasks, incidents, children));
    }
  }
  json data = json::parse(record.data, nullptr, false);
  if (data.is_discarded()) data = nullptr;
  bool open = record.status == engine::kCaseOpen;

  json deadline = nullptr;
  if (record.deadline_at) {
    engine::Calendar calendar = deployment.CalendarOf(record.agency);
    auto to_point = [](engine::Timestamp t) {
      return engine::TimePoint(
          std::chrono::duration_cast<engine::TimePoint::duration>(t.time_since_epoch()));
    };
    // While the clock is paused the time left is frozen at the moment it stopped.
    engine::Timestamp measured_at = record.clock_paused_at ? *record.clock_paused_at : now;
    if (!open && record.ended_at) measured_at = *record.ended_at;
    deadline = {{"at", JsonTime(*record.deadline_at)},
                {"local", calendar.FormatLocal(to_point(*record.deadline_at))},
                {"calendar", calendar.name()},
                {"working_days_left",
                 calendar.WorkingDaysLeft(to_point(measured_at), to_point(*record.deadline_at))},
                {"time_left",
                 calendar.DescribeTimeLeft(to_point(measured_at), to_point(*record.deadline_at))},
                {"overdue", measured_at > *record.deadline_at},
                {"paused", record.clock_paused_at.has_value()},
                {"paused_since", JsonTime(record.clock_paused_at)}};
  }

  if (globals.json) {
    json steps = json::array();
    for (const auto& p : positions) {
      steps.push_back({{"step", p.step},
                       {"kind", p.kind},
                       {"waiting", p.waiting},
                       {"activation", p.activation},
                       {"detail", p.detail},
                       {"signal", p.signal.empty() ? json(nullptr) : json(p.signal)}});
    }
    json task_array = json::array();
    for (const auto& t : tasks) task_array.push_back(TaskJson(t));
    json incident_array = json::array();
    for (const auto& i : incidents) incident_array.push_back(IncidentJson(i));
    json child_array = json::array();
    for (const auto& c : children) {
      child_array.push_back({{"id", c.id}, {"procedure", c.procedure}, {"status", c.status}});
    }
    PrintJson({{"id", record.id},
               {"procedure", record.procedure},
               {"version", record.version},
               {"title", procedure ? json(procedure->title) : json(nullptr)},
               {"status", record.status},
               {"reason", state && !state->reason.empty() ? json(state->reason) : json(nullptr)},
               {"agency", record.agency},
               {"parent", record.parent_case ? json(*record.parent_case) : json(nullptr)},
               {"children", child_array},
               {"started_by", record.started_by},
               {"started_at", JsonTime(record.started_at)},
               {"updated_at", JsonTime(record.updated_at)},
               {"ended_at", JsonTime(record.ended_at)},
               {"steps", steps},
               {"deadline", deadline},
               {"tasks", task_array},
               {"incidents", incident_array},
               {"data", data}});
    return 0;
  }

  std::cout << "case " << record.id << ": " << record.procedure << " v" << record.version;
  if (procedure && !procedure->title.empty()) std::cout << " — " << procedure->title;
  std::cout << '\n';
  std::cout << "agency: " << (record.agency.empty() ? "-" : record.agency) << '\n';
  std::cout << "status: " << record.status;
  if (state && !state->reason.empty()) std::cout << " (" << state->reason << ")";
  std::cout << '\n';
  std::cout << "started: " << LocalTime(deployment, record.agency, record.started_at) << " by "
            << record.started_by << '\n';
  if (record.ended_at) {
    std::cout << "ended: " << LocalTime(deployment, record.agency, *record.ended_at) << '\n';
  }
  if (record.parent_case) std::cout << "sub-case of: " << *record.parent_case << '\n';
  if (record.deadline_at) {
    std::cout << "deadline: " << LocalTime(deployment, record.agency, *record.deadline_at);
    if (open || record.ended_at) {
      std::cout << ", " << deadline["time_left"].get<std::string>();
      if (!open) std::cout << " when it ended";
    }
    if (record.clock_paused_at) {
      std::cout << "; the clock is paused since "
                << LocalTime(deployment, record.agency, *record.clock_paused_at);
    }
    std::cout << '\n';
  } else {
    std::cout << "deadline: none\n";
  }
  if (!positions.empty()) {
    std::cout << "\nwhere it stands:\n";
    for (const auto& p : positions) {
      std::cout << "  " << p.step << " (" << (p.kind.empty() ? "step" : p.kind) << "): "
                << p.detail << '\n';
    }
  }
  std::vector<const engine::TaskRecord*> open_tasks;
  for (const auto& t : tasks) {
    if (t.status == engine::TaskStatus::kOpen || t.status == engine::TaskStatus::kClaimed) {
      open_tasks.push_back(&t);
    }
  }
  if (!open_tasks.empty()) {
    std::cout << "\nwho holds it:\n";
    Table table({"TASK", "STEP", "TITLE", "ROLE", "AGENCY", "STATUS", "ASSIGNEE", "DUE"});
    for (const auto* t : open_tasks) {
      table.AddRow({std::to_string(t->id), t->step, t->title, t->role, t->agency,
                    engine::TaskStatusName(t->status), t->assignee.value_or("-"),
                    t->due_at ? DescribeDeadline(deployment, t->agency, *t->due_at, now) : "-"});
    }
    table.Print(std::cout);
  }
  if (tasks.size() > open_tasks.size()) {
    std::cout << "\nfinished tasks:\n";
    Table table({"TASK", "STEP", "STATUS", "BY", "AT"});
    for (const auto& t : tasks) {
      if (t.status == engine::TaskStatus::kOpen || t.status == engine::TaskStatus::kClaimed) {
        continue;
      }
      table.AddRow({std::to_string(t.id), t.step, engine::TaskStatusName(t.status),
                    t.completed_by.value_or("-"),
                    t.completed_at ? LocalTime(deployment, t.agency, *t.completed_at) : "-"});
    }
    table.Print(std::cout);
  }
  if (!incidents.empty()) {
    std::cout << "\nincidents:\n";
    Table table({"INCIDENT", "STEP", "STATUS", "OPENED", "MESSAGE"});
    for (const auto& i : incidents) {
      table.AddRow({std::to_string(i.id), i.step,
                    i.status == engine::IncidentStatus::kOpen ? "open" : "resolved",
                    LocalTime(deployment, record.agency, i.created_at), i.message});
    }
    table.Print(std::cout);
  }
  if (!children.empty()) {
    std::cout << "\nsub-cases:\n";
    Table table({"CASE", "PROCEDURE", "STATUS"});
    for (const auto& c : children) table.AddRow({c.id, c.procedure, c.status});
    table.Print(std::cout);
  }
  std::cout << "\ndata:\n" << data.dump(2) << '\n';
  return 0;
}

// --- signal, cancel, retry, incidents --------------------------------------------------------

// The case's status and steps after a change, for the confirmation line.
json CaseAfter(Session& session, const std::string& case_id) {
  json out = {{"case", case_id}};
  (void)session.store->Read([&](engine::StoreTx& tx) {
    auto record = tx.GetCase(case_id);
    if (!record) return record.error();
    out["status"] = record->status;
    out["steps"] = CurrentSteps(record->state);
    return Status::Ok();
  });
  return out;
}

void PrintAfter(const json& after) {
  std::cout << "case " << after["case"].get<std::string>() << " is "
            << after.value("status", std::string("?"));
  if (after.contains("steps") && !after["steps"].empty()) {
    std::cout << " at " << JoinComma(after["steps"].get<std::vector<std::string>>());
  }
  std::cout << '\n';
}

struct SignalOptions {
  std::string case_id;
  std::string name;
  std::string data;
};

int Signal(const GlobalOptions& globals, const SignalOptions& options) {
  json data = json::object();
  if (!options.data.empty()) {
    auto read = ReadJsonInput(options.data, "--data");
    if (!read) return Fail(read.error());
    data = std::move(*read);
  }
  auto session = OpenSession(globals);
  if (!session) return Fail(session.error());
  Status status = (*session)->runtime->ApplyEvent(
      options.case_id, engine::event::SignalReceived{options.name, data},
      ActorOrAnonymous(globals));
  if (!status.ok()) return Fail(status);
  json after = CaseAfter(**session, options.case_id);
  after["signal"] = options.name;
  if (globals.json) {
    PrintJson(after);
  } else {
    std::cout << "signal '" << options.name << "' delivered; ";
    PrintAfter(after);
  }
  return 0;
}

int Cancel(const GlobalOptions& globals, const std::string& case_id, const std::string& reason) {
  if (reason.find_first_not_of(" \t\r\n") == std::string::npos) {
    return Fail(Status::Usage("`wf cancel` needs --reason TEXT saying why the case is cancelled"));
  }
  auto session = OpenSession(globals);
  if (!session) return Fail(session.error());
  Status status = (*session)->runtime->ApplyEvent(case_id, engine::event::Cancel{reason},
                                                  ActorOrAnonymous(globals));
  if (!status.ok()) return Fail(status);
  json after = CaseAfter(**session, case_id);
  after["reason"] = reason;
  if (globals.json) {
    PrintJson(after);
  } else {
    PrintAfter(after);
  }
  return 0;
}

int Retry(const GlobalOptions& globals, int64_t incident_id) {
  auto session = OpenSession(globals);
  if (!session) return Fail(session.error());
  std::string case_id;
  (void)(*session)->store->Read([&](engine::StoreTx& tx) {
    auto incident = tx.GetIncident(incident_id);
    if (incident) case_id = incident->case_id;
    return Status::Ok();
  });
  Status status = (*session)->runtime->RetryIncident(incident_id, ActorOrAnonymous(globals));
  if (!status.ok()) return Fail(status);
  json after = CaseAfter(**session, case_id);
  after["incident"] = incident_id;
  if (globals.json) {
    PrintJson(after);
  } else {
    std::cout << "incident " << incident_id << " retried; ";
    PrintAfter(after);
  }
  return 0;
}

// The messages the notify departments of the deployment wrote into their outbox folders.
int Outbox(const GlobalOptions& globals) {
  auto deployment = LoadDeploymentFor(globals);
  if (!deployment) return Fail(deployment.error());
  json all = json::array();
  for (const auto& [name, department] : deployment->departments) {
    if (department.adapter != "notify" || !department.settings.contains("outbox")) continue;
    auto messages =
        adapters::NotifyAdapter::ListOutbox(department.settings["outbox"].get<std::string>());
    if (!messages) {
      if (messages.error().code() == ErrorCode::kNotFound) continue;  // nothing written yet
      return Fail(messages.error());
    }
    for (auto& message : *messages) {
      message["department"] = name;
      all.push_back(std::move(message));
    }
  }
  if (globals.json) {
    PrintJson(all);
    return 0;
  }
  if (all.empty()) {
    std::cout << "the outbox is empty\n";
    return 0;
  }
  Table table({"DEPARTMENT", "WRITTEN", "CASE", "TO", "SUBJECT"});
  for (const auto& m : all) {
    auto text = [&](const char* key) {
      if (!m.contains(key)) return std::string();
      return m[key].is_string() ? m[key].get<std::string>() : m[key].dump();
    };
    table.AddRow({text("department"), text("written_at"), text("case"), text("to"),
                  m.contains("error") ? "(unreadable: " + text("error") + ")" : text("subject")});
  }
  table.Print(std::cout);
  return 0;
}

int Incidents(const GlobalOptions& globals) {
  auto session = OpenSession(globals);
  if (!session) return Fail(session.error());
  std::vector<engine::IncidentRecord> incidents;
  Status status = (*session)->store->Read([&](engine::StoreTx& tx) {
    auto list = tx.ListIncidents(std::nullopt);
    if (!list) return list.error();
    incidents = std::move(*list);
    return Status::Ok();
  });
  if (!status.ok()) return Fail(status);
  if (globals.json) {
    json out = json::array();
    for (const auto& i : incidents) out.push_back(IncidentJson(i));
    PrintJson(out);
    return 0;
  }
  if (incidents.empty()) {
    std::cout << "no open incidents\n";
    return 0;
  }
  Table table({"INCIDENT", "CASE", "STEP", "OPENED", "MESSAGE"});
  for (const auto& i : incidents) {
    table.AddRow({std::to_string(i.id), i.case_id, i.step,
                  LocalTime((*session)->deployment, "", i.created_at), i.message});
  }
  table.Print(std::cout);
  std::cout << "`wf retry INCIDENT` tries a step again once its cause is fixed\n";
  return 0;
}

// --- engine ----------------------------------------------------------------------------------

struct EngineCommandOptions {
  int concurrency = 256;
  bool until_idle = false;
  int idle_wait_seconds = 60;
  int lease_seconds = 120;
};

int RunEngine(const GlobalOptions& globals, const EngineCommandOptions& options) {
  // Logs go to stderr so that stdout carries only the summary (and --json stays parseable).
  spdlog::set_default_logger(spdlog::stderr_color_mt("wf-engine"));
  auto session = OpenSession(globals, 4);
  if (!session) return Fail(session.error());
  adapters::Registry registry;
  engine::EngineOptions engine_options;
  engine_options.concurrency = options.concurrency;
  engine_options.claim_batch = std::min(engine_options.claim_batch, options.concurrency);
  engine_options.until_idle = options.until_idle;
  engine_options.idle_wait = std::chrono::seconds(options.idle_wait_seconds);
  engine_options.lease = std::chrono::seconds(options.lease_seconds);
  engine::Engine engine(*(*session)->runtime, registry, engine_options);
  // Adapters run their I/O on the engine's executor, so they are made once it exists.
  if (Status wired = BuildRegistry((*session)->deployment, engine.executor(), &registry);
      !wired.ok()) {
    return Fail(wired);
  }
  auto started = std::chrono::steady_clock::now();
  Status status = engine.Run();
  double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  engine::EngineStats stats = engine.stats();
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  auto seconds = [](const timeval& t) { return t.tv_sec + t.tv_usec / 1e6; };
  double cpu = seconds(usage.ru_utime) + seconds(usage.ru_stime);
  double peak_mb = usage.ru_maxrss / 1024.0;  // Linux reports KiB
  const auto& dispatch = stats.dispatch;
  if (globals.json) {
    PrintJson({{"ok", status.ok()},
               {"claimed", stats.claimed},
               {"invoked", stats.invoked},
               {"reused", stats.reused},
               {"committed", stats.committed},
               {"stale", stats.stale},
               {"transactions", stats.transactions},
               {"wall_seconds", wall},
               {"cpu_seconds", cpu},
               {"peak_rss_mb", peak_mb},
               {"dispatch_ms",
                {{"count", dispatch.count()},
                 {"p50", dispatch.QuantileMs(0.50)},
                 {"p90", dispatch.QuantileMs(0.90)},
                 {"p99", dispatch.QuantileMs(0.99)},
                 {"max", dispatch.max_ms()}}}});
  } else {
    std::cout << "engine: claimed " << stats.claimed << ", invoked " << stats.invoked
              << ", reused " << stats.reused << ", committed " << stats.committed << ", stale "
              << stats.stale << ", in " << stats.transactions << " transactions; "
              << fmt::format("{:.1f} s, CPU {:.1f} s, peak {:.0f} MB, dispatch p50 {:.1f} ms",
                             wall, cpu, peak_mb, dispatch.QuantileMs(0.5))
              << ", p99 " << fmt::format("{:.1f}", dispatch.QuantileMs(0.99)) << " ms\n";
  }
  if (!status.ok()) return Fail(status);
  return 0;
}

}  // namespace

void AddCaseCommands(CLI::App& app, const GlobalOptions& globals, CommandAction* selected) {
  {
    auto* cmd = app.add_subcommand("deploy", "store procedure definitions as new versions");
    auto files = std::make_shared<std::vector<std::string>>();
    cmd->add_option("files", *files, "procedure YAML files")->required();
    cmd->callback([&globals, files, selected] {
      *selected = [&globals, files] { return Deploy(globals, *files); };
    });
  }
  {
    auto* cmd = app.add_subcommand("procedures", "list the deployed procedures and versions");
    cmd->callback([&globals, selected] {
      *selected = [&globals] { return Procedures(globals); };
    });
  }
  {
    auto* cmd = app.add_subcommand("migrate", "bring the database schema up to date");
    cmd->callback([&globals, selected] { *selected = [&globals] { return Migrate(globals); }; });
  }
  {
    auto* cmd = app.add_subcommand("start", "start a case (prints its id), or many with --batch");
    auto options = std::make_shared<StartOptions>();
    cmd->add_option("procedure", options->procedure, "the procedure's name")->required();
    auto* data = cmd->add_option("--data", options->data, "case data: a JSON file, - for stdin");
    auto* batch = cmd->add_option("--batch", options->batch,
                                  "one case a line: a JSON Lines file, - for stdin");
    data->excludes(batch);
    cmd->add_option("--batch-size", options->batch_size, "cases committed together (--batch)")
        ->check(CLI::Range(1, 100000));
    cmd->callback([&globals, options, selected] {
      *selected = [&globals, options] { return Start(globals, *options); };
    });
  }
  {
    auto* cmd = app.add_subcommand(
        "cases", "list cases, newest first; --mine: cases with open tasks for your roles, or "
                 "that you started");
    auto options = std::make_shared<CasesOptions>();
    cmd->add_option("--status", options->status, "open, completed, refused, cancelled, ...");
    cmd->add_option("--procedure", options->procedure, "only this procedure");
    cmd->add_option("--agency", options->agency, "only cases owned by this agency");
    cmd->add_flag("--mine", options->mine,
                  "only cases with open tasks for your roles (--as), or that you started");
    cmd->add_flag("--overdue", options->overdue, "only open cases past their statutory deadline");
    cmd->add_option("--limit", options->limit, "at most N cases (default 50; 0: all)")
        ->check(CLI::NonNegativeNumber);
    cmd->callback([&globals, options, selected] {
      *selected = [&globals, options] { return Cases(globals, *options); };
    });
  }
  {
    auto* cmd = app.add_subcommand("show", "where a case stands, who holds it, its deadline");
    auto case_id = std::make_shared<std::string>();
    cmd->add_option("case", *case_id, "the case id")->required();
    cmd->callback([&globals, case_id, selected] {
      *selected = [&globals, case_id] { return Show(globals, *case_id); };
    });
  }
  {
    auto* cmd = app.add_subcommand("signal", "deliver a named event (documents, a callback)");
    auto options = std::make_shared<SignalOptions>();
    cmd->add_option("case", options->case_id, "the case id")->required();
    cmd->add_option("event", options->name, "the signal's name (a wait step's, or a step id)")
        ->required();
    cmd->add_option("--data", options->data, "the signal's data: a JSON file, - for stdin");
    cmd->callback([&globals, options, selected] {
      *selected = [&globals, options] { return Signal(globals, *options); };
    });
  }
  {
    auto* cmd = app.add_subcommand("cancel", "cancel an open case");
    auto case_id = std::make_shared<std::string>();
    auto reason = std::make_shared<std::string>();
    cmd->add_option("case", *case_id, "the case id")->required();
    cmd->add_option("--reason", *reason, "why, for the history")->required();
    cmd->callback([&globals, case_id, reason, selected] {
      *selected = [&globals, case_id, reason] { return Cancel(globals, *case_id, *reason); };
    });
  }
  {
    auto* cmd = app.add_subcommand("retry", "try the step of an incident again");
    auto incident = std::make_shared<int64_t>(0);
    cmd->add_option("incident", *incident, "the incident id (`wf incidents`)")->required();
    cmd->callback([&globals, incident, selected] {
      *selected = [&globals, incident] { return Retry(globals, *incident); };
    });
  }
  {
    auto* outbox = app.add_subcommand(
        "outbox", "messages the notify departments kept in their outbox (no mail server)");
    outbox->callback([&globals, selected] {
      *selected = [&globals] { return Outbox(globals); };
    });
  }
  {
    auto* cmd = app.add_subcommand("incidents", "list open incidents of every case");
    cmd->callback([&globals, selected] {
      *selected = [&globals] { return Incidents(globals); };
    });
  }
  {
    auto* cmd = app.add_subcommand("engine", "run the engine: call departments, fire timers");
    auto options = std::make_shared<EngineCommandOptions>();
    cmd->add_option("--concurrency", options->concurrency, "work items in flight (default 256)")
        ->check(CLI::Range(1, 100000));
    cmd->add_flag("--until-idle", options->until_idle,
                  "stop when nothing is left to do (timers further than --idle-wait ignored)");
    cmd->add_option("--idle-wait", options->idle_wait_seconds,
                    "with --until-idle: wait for work due within this many seconds (default 60)")
        ->check(CLI::Range(0, 86400));
    cmd->add_option("--lease", options->lease_seconds,
                    "seconds a claim holds its work; a dead engine's work is taken again after "
                    "this long (default 120; keep it well above the longest step timeout)")
        ->check(CLI::Range(1, 86400));
    cmd->callback([&globals, options, selected] {
      *selected = [&globals, options] { return RunEngine(globals, *options); };
    });
  }
}

}  // namespace wf::cli
