#include "engine/case_detail.hpp"

#include <chrono>

#include "engine/calendar.hpp"
#include "engine/machine.hpp"
#include "workflows/i18n.hpp"
#include "workflows/json_text.hpp"

namespace wf::engine {

using nlohmann::json;

namespace {

json JsonTime(Timestamp t) { return FormatRfc3339(t); }
json JsonTime(const std::optional<Timestamp>& t) {
  return t ? json(FormatRfc3339(*t)) : json(nullptr);
}

TimePoint ToPoint(Timestamp t) {
  return TimePoint(std::chrono::duration_cast<TimePoint::duration>(t.time_since_epoch()));
}

// `msgid` filled in with `args`: in English for JSON when `people` is false, else in the
// reader's language.
template <typename... Args>
std::string Fill(bool people, const char* msgid, const Args&... args) {
  if (people) return TrFill(Tr(msgid), msgid, fmt::make_format_args(args...));
  return fmt::vformat(msgid, fmt::make_format_args(args...));
}

std::string Who(const TaskRecord& task, bool people) {
  if (task.status == TaskStatus::kClaimed && task.assignee) {
    return Fill(people, TrNoop("role {0} of {1} (task {2}, claimed by {3})"), task.role,
                task.agency, task.id, *task.assignee);
  }
  return Fill(people, TrNoop("role {0} of {1} (task {2}, unclaimed)"), task.role, task.agency,
              task.id);
}

// Where `token` stands, in words naming the command that moves it on.
std::string Detail(const Token& token, const std::string& case_id, const workflows::Step* step,
                   const std::vector<TaskRecord>& tasks,
                   const std::vector<IncidentRecord>& incidents,
                   const std::vector<CaseRecord>& children, bool people) {
  const char* its_department = TrNoop("its department");
  std::string department =
      step ? step->department : std::string(people ? Tr(its_department) : its_department);
  switch (token.waiting) {
    case Waiting::kNothing:
      return Fill(people, TrNoop("moving on"));
    case Waiting::kAdapter:
      return Fill(people, TrNoop("calling {0} (attempt {1}); `wf engine` carries it out"),
                  department, token.attempt);
    case Waiting::kRetry:
      return Fill(people, TrNoop("waiting to call {0} again (attempt {1})"), department,
                  token.attempt);
    case Waiting::kAccepted:
      return Fill(people,
                  TrNoop("{0} accepted the call and will answer: `wf signal {1} {2} --data FILE` "
                         "delivers its answer"),
                  department, case_id, token.signal);
    case Waiting::kTask: {
      std::string text = Fill(people, TrNoop("waiting for a person"));
      for (const auto& task : tasks) {
        if (task.activation == token.activation && IsTaskOpen(task)) {
          text = Fill(people, TrNoop("waiting for {0}: {1}"), Who(task, people), task.title);
        }
      }
      return text;
    }
    case Waiting::kSignal:
      return Fill(people, TrNoop("waiting for the signal '{0}': `wf signal {1} {0}`"), token.signal,
                  case_id);
    case Waiting::kChild: {
      std::string text = Fill(people, TrNoop("waiting for a sub-case of {0}"),
                              step ? step->procedure : std::string("?"));
      for (const auto& child : children) {
        if (child.parent_activation == token.activation) {
          text = Fill(people, TrNoop("waiting for sub-case {0} ({1}, {2})"), child.id,
                      child.procedure, people ? StatusText(child.status) : child.status);
        }
      }
      return text;
    }
    case Waiting::kBranches:
      return Fill(people, TrNoop("waiting for its parallel branches to end"));
    case Waiting::kIncident: {
      std::string text = Fill(people, TrNoop("stopped by an incident: {0}"), token.incident);
      for (const auto& incident : incidents) {
        if (incident.activation == token.activation && incident.status == IncidentStatus::kOpen) {
          text += Fill(people, TrNoop("; `wf retry {0}` tries again"), incident.id);
        }
      }
      return text;
    }
  }
  return std::string();
}

Position Describe(const Token& token, const std::string& case_id,
                  const workflows::Procedure* procedure, const std::vector<TaskRecord>& tasks,
                  const std::vector<IncidentRecord>& incidents,
                  const std::vector<CaseRecord>& children) {
  Position p;
  p.step = token.step;
  p.activation = token.activation;
  p.waiting = WaitingName(token.waiting);
  p.signal = token.signal;
  const workflows::Step* step = procedure ? procedure->FindStep(token.step) : nullptr;
  if (step) p.kind = workflows::StepKindName(step->kind);
  p.detail = Detail(token, case_id, step, tasks, incidents, children, false);
  p.text = Detail(token, case_id, step, tasks, incidents, children, true);
  return p;
}

}  // namespace

std::string TaskWho(const TaskRecord& task) { return Who(task, false); }

std::string StatusText(const std::string& status) {
  static const char* const kKnown[] = {
      TrNoop("open"),    TrNoop("claimed"),   TrNoop("completed"),
      TrNoop("refused"), TrNoop("cancelled"), TrNoop("resolved"),
      TrNoop("failed"),  TrNoop("withdrawn"), TrNoop("waiting"),
  };
  for (const char* known : kKnown) {
    if (status == known) return Tr(known);
  }
  return status;
}

std::string StepKindText(const std::string& kind) {
  static const char* const kKnown[] = {
      TrNoop("task"),     TrNoop("adapter"),        TrNoop("wait"), TrNoop("decision"),
      TrNoop("parallel"), TrNoop("call_procedure"), TrNoop("end"),  TrNoop("step"),
  };
  for (const char* known : kKnown) {
    if (kind == known) return Tr(known);
  }
  return kind;
}

nlohmann::json TaskJson(const TaskRecord& t) {
  json form = workflows::ParseJson(t.form);
  json values = t.values ? workflows::ParseJson(*t.values) : json(nullptr);
  return {{"id", t.id},
          {"case", t.case_id},
          {"step", t.step},
          {"title", t.title},
          {"role", t.role},
          {"agency", t.agency},
          {"status", TaskStatusName(t.status)},
          {"assignee", t.assignee ? json(*t.assignee) : json(nullptr)},
          {"created_at", JsonTime(t.created_at)},
          {"due", JsonTime(t.due_at)},
          {"escalated_to", t.escalated_to ? json(*t.escalated_to) : json(nullptr)},
          {"completed_by", t.completed_by ? json(*t.completed_by) : json(nullptr)},
          {"completed_at", JsonTime(t.completed_at)},
          {"form", form.is_discarded() ? json(nullptr) : form},
          {"values", values.is_discarded() ? json(nullptr) : values}};
}
json IncidentJson(const IncidentRecord& i) {
  return {{"id", i.id},
          {"case", i.case_id},
          {"step", i.step},
          {"activation", i.activation},
          {"status", i.status == IncidentStatus::kOpen ? "open" : "resolved"},
          {"message", i.message},
          {"created_at", JsonTime(i.created_at)},
          {"resolved_at", JsonTime(i.resolved_at)},
          {"resolved_by", i.resolved_by ? json(*i.resolved_by) : json(nullptr)}};
}

Result<CaseDetail> LoadCaseDetail(StoreTx& tx, ProcedureCache& procedures, const std::string& id,
                                  KeySource* keys) {
  CaseDetail detail;
  auto loaded = LoadCaseView(tx, procedures, id, keys);
  if (!loaded) return loaded.error();
  detail.view = std::move(*loaded);
  auto incidents = tx.ListIncidents(id);
  if (!incidents) return incidents.error();
  detail.incidents = std::move(*incidents);
  if (keys) {
    Revealer revealer = RevealerFor(tx, *keys);
    for (IncidentRecord& incident : detail.incidents) {
      incident.message = revealer.RevealText(incident.message);
    }
  }
  auto children = tx.ListChildCases(id);
  if (!children) return children.error();
  detail.children = std::move(*children);
  if (detail.view.state) {
    for (const auto& token : detail.view.state->tokens) {
      detail.positions.push_back(Describe(token, id, detail.view.procedure, detail.view.tasks,
                                          detail.incidents, detail.children));
    }
  }
  return detail;
}

json CaseDetailJson(const CaseDetail& detail, const Deployment& deployment, Timestamp now) {
  const CaseRecord& record = detail.view.record;
  const workflows::Procedure* procedure = detail.view.procedure;
  const std::optional<CaseState>& state = detail.view.state;
  std::vector<std::string> current_steps;
  if (state) current_steps = CurrentSteps(OpenStepsOf(*state));
  json data = workflows::ParseJson(record.data);
  if (data.is_discarded()) data = nullptr;
  const Calendar calendar = deployment.CalendarOf(record.agency);
  const CaseClock clock = ReadClock(record, calendar, now);
  json deadline = nullptr;
  if (record.deadline_at) {
    // The time left is read on the statutory clock: frozen while it is paused and at the end.
    deadline = {{"at", JsonTime(*record.deadline_at)},
                {"local", calendar.FormatLocal(ToPoint(*record.deadline_at))},
                {"calendar", calendar.name()},
                {"working_days_left", *clock.working_days_left},
                {"time_left", calendar.DescribeTimeLeft(ToPoint(clock.reading),
                                                        ToPoint(*record.deadline_at), false)},
                {"overdue", clock.overdue},
                {"late", clock.late},
                {"paused", clock.paused_since.has_value()},
                {"paused_since", JsonTime(clock.paused_since)}};
  }
  json steps = json::array();
  for (const auto& p : detail.positions) {
    steps.push_back({{"step", p.step},
                     {"kind", p.kind},
                     {"waiting", p.waiting},
                     {"activation", p.activation},
                     {"detail", p.detail},
                     {"signal", p.signal.empty() ? json(nullptr) : json(p.signal)}});
  }
  json task_array = json::array();
  for (const auto& t : detail.view.tasks) task_array.push_back(TaskJson(t));
  json incident_array = json::array();
  for (const auto& i : detail.incidents) incident_array.push_back(IncidentJson(i));
  json child_array = json::array();
  for (const auto& c : detail.children) {
    child_array.push_back({{"id", c.id}, {"procedure", c.procedure}, {"status", c.status}});
  }
  return {{"id", record.id},
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
          {"current_steps", current_steps},
          {"overdue", clock.overdue},
          {"deadline", deadline},
          {"tasks", task_array},
          {"incidents", incident_array},
          {"data", data}};
}

}  // namespace wf::engine
