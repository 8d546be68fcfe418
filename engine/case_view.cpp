#include "engine/case_view.hpp"

#include <algorithm>
#include <set>

#include <nlohmann/json.hpp>

#include "engine/history_action.hpp"
#include "engine/runtime.hpp"
#include "workflows/i18n.hpp"
#include "workflows/json_text.hpp"

namespace wf::engine {

namespace {

using nlohmann::json;

TimePoint ToTimePoint(Timestamp t) {
  return TimePoint(std::chrono::duration_cast<TimePoint::duration>(t.time_since_epoch()));
}

// The events that end a step activation's hold (the rule in the header). `step.accepted` is not
// one: after HTTP 202 the department still owes the answer.
bool EndsActivation(const std::string& action) {
  return action == history_action::kStepSucceeded || action == history_action::kStepReused ||
         action == history_action::kStepErrorHandled || action == history_action::kTaskCompleted ||
         action == history_action::kSignalReceived || action == history_action::kStepTimedOut ||
         action == history_action::kChildEnded;
}

}  // namespace

// --- status and the statutory clock

bool IsOpen(const CaseRecord& record) { return record.status == kCaseOpen; }

Timestamp ClockReading(const CaseRecord& record, Timestamp now) {
  if (!IsOpen(record)) return record.ended_at.value_or(record.updated_at);
  if (record.clock_paused_at) return std::min(now, *record.clock_paused_at);
  return now;
}

bool IsOverdue(const CaseRecord& record, Timestamp now) {
  return IsOpen(record) && record.deadline_at && *record.deadline_at < ClockReading(record, now);
}

CaseClock ReadClock(const CaseRecord& record, const Calendar& calendar, Timestamp now) {
  CaseClock clock;
  clock.open = IsOpen(record);
  clock.deadline = record.deadline_at;
  if (clock.open) clock.paused_since = record.clock_paused_at;
  clock.reading = ClockReading(record, now);
  clock.overdue = IsOverdue(record, now);
  if (record.deadline_at) {
    clock.late = !clock.open && clock.reading > *record.deadline_at;
    clock.working_days_left =
        calendar.WorkingDaysLeft(ToTimePoint(clock.reading), ToTimePoint(*record.deadline_at));
    if (clock.overdue) {
      clock.overdue_working_days = WorkingDays(calendar, *record.deadline_at, clock.reading);
    }
  }
  return clock;
}

// --- where a case stands

std::optional<CaseState> ParseCaseState(const std::string& state_json) {
  json parsed = workflows::ParseJson(state_json);
  if (parsed.is_discarded()) return std::nullopt;
  auto state = CaseState::FromJson(parsed);
  if (!state) return std::nullopt;
  return std::move(*state);
}

std::vector<OpenStep> OpenStepsOf(const CaseState& state) {
  std::vector<OpenStep> open;
  for (const Token& token : state.tokens) {
    open.push_back({token.step, token.activation, token.waiting == Waiting::kBranches});
  }
  return open;
}

std::vector<std::string> CurrentSteps(const std::vector<OpenStep>& open) {
  const bool branch_listed =
      std::any_of(open.begin(), open.end(), [](const OpenStep& s) { return !s.joins_branches; });
  std::vector<std::string> steps;
  std::set<std::string> seen;
  for (const OpenStep& s : open) {
    if (branch_listed && s.joins_branches) continue;
    if (seen.insert(s.step).second) steps.push_back(s.step);
  }
  return steps;
}

std::vector<std::string> CurrentSteps(const std::string& state_json) {
  std::optional<CaseState> state = ParseCaseState(state_json);
  if (!state) return {};
  return CurrentSteps(OpenStepsOf(*state));
}

bool IsTaskOpen(const TaskRecord& task) {
  return task.status == TaskStatus::kOpen || task.status == TaskStatus::kClaimed;
}

bool IsTaskOverdue(const TaskRecord& task, Timestamp now) {
  return IsTaskOpen(task) && task.due_at && *task.due_at < now;
}

std::vector<std::string> RolesAtWork(const std::vector<TaskRecord>& tasks) {
  std::vector<std::string> roles;
  for (const TaskRecord& task : tasks) {
    if (IsTaskOpen(task) && std::find(roles.begin(), roles.end(), task.role) == roles.end()) {
      roles.push_back(task.role);
    }
  }
  return roles;
}

// --- time held

std::string HolderOf(const workflows::Procedure& procedure, const workflows::Step& step) {
  switch (step.kind) {
    case workflows::StepKind::kTask: {
      auto role = procedure.roles.find(step.role);
      if (role != procedure.roles.end() && !role->second.agency.empty()) {
        return role->second.agency;
      }
      return procedure.agency;
    }
    case workflows::StepKind::kAdapter:
      return "department " + step.department;
    case workflows::StepKind::kWait:
      return "applicant";
    case workflows::StepKind::kCallProcedure:
      return "sub-case " + step.procedure;
    default:
      return "";
  }
}

StepTable StepTableOf(const workflows::Procedure& procedure) {
  StepTable table;
  for (const workflows::Step& step : procedure.steps) {
    StepFacts& facts = table[step.id];
    facts.kind = step.kind;
    facts.holder = HolderOf(procedure, step);
    facts.pauses_clock = step.kind == workflows::StepKind::kWait && step.pauses_deadline;
    if (step.kind == workflows::StepKind::kTask) facts.limit = step.deadline;
  }
  return table;
}

std::optional<Timestamp> EventTime(const HistoryEvent& event) {
  std::optional<TimePoint> t = ParseTimestamp(event.at);
  if (!t) return std::nullopt;
  return std::chrono::floor<std::chrono::microseconds>(*t);
}

void HoldTracker::End(std::int64_t activation, Timestamp at) {
  auto it = open_.find(activation);
  if (it == open_.end()) return;
  Hold hold = std::move(it->second);
  open_.erase(it);
  hold.to = at;
  if (hold.pauses_clock && --pausing_ == 0 && !pauses_.empty()) pauses_.back().to = at;
  ended_.push_back(std::move(hold));
}

void HoldTracker::Add(const HistoryEvent& event) {
  std::optional<Timestamp> at = EventTime(event);
  if (!at) return;  // a row whose time does not parse tells nothing about time
  const std::string& action = event.action;
  json details = workflows::ParseJson(event.details);
  if (!details.is_object()) details = json::object();
  std::int64_t activation = 0;
  if (auto it = details.find("activation"); it != details.end() && it->is_number_integer()) {
    activation = it->get<std::int64_t>();
  }
  if (action == history_action::kStepEntered) {
    if (open_.count(activation) > 0) return;  // entered again after an incident's retry
    Hold hold;
    hold.step = event.step;
    hold.activation = activation;
    hold.seq = event.seq;
    hold.from = *at;
    hold.kind = details.value("kind", std::string());
    const StepFacts* facts = nullptr;
    if (steps_ != nullptr) {
      if (auto it = steps_->find(event.step); it != steps_->end()) facts = &it->second;
    }
    if (facts != nullptr) {
      if (hold.kind.empty()) hold.kind = workflows::StepKindName(facts->kind);
      hold.holder = facts->holder;
      hold.pauses_clock = facts->pauses_clock && hold.kind == "wait";
      hold.limit = facts->limit;
    }
    if (hold.kind == "decision" || hold.kind == "end") {
      hold.to = *at;  // they take no time
      ended_.push_back(std::move(hold));
      return;
    }
    if (hold.pauses_clock && pausing_++ == 0) pauses_.push_back({*at, std::nullopt});
    open_.emplace(activation, std::move(hold));
  } else if (action == history_action::kStepAccepted) {
    if (auto it = open_.find(activation); it != open_.end() && !it->second.accepted_at) {
      it->second.accepted_at = *at;
    }
  } else if (EndsActivation(action)) {
    End(activation, *at);
  } else if (action == history_action::kBranchJoined) {
    if (details.value("remaining", std::int64_t{-1}) != 0) return;
    const std::string parallel = details.value("parallel", std::string());
    std::vector<std::int64_t> joined;
    for (const auto& [id, hold] : open_) {
      if (hold.step == parallel) joined.push_back(id);
    }
    for (std::int64_t id : joined) End(id, *at);
  } else if (action == history_action::kCaseFinished || action == history_action::kCaseCancelled) {
    while (!open_.empty()) End(open_.begin()->first, *at);
  }
}

std::vector<Hold> HoldTracker::TakeEnded() {
  std::vector<Hold> out;
  out.swap(ended_);
  return out;
}

std::vector<OpenStep> HoldTracker::OpenSteps() const {
  std::vector<OpenStep> out;
  for (const auto& [activation, hold] : open_) {
    out.push_back({hold.step, activation, hold.kind == "parallel"});
  }
  return out;
}

double WorkingDays(const Calendar& calendar, Timestamp from, Timestamp to) {
  if (to <= from) return 0.0;
  return std::max(0.0, calendar.WorkingTimeBetween(ToTimePoint(from), ToTimePoint(to)));
}

const std::string& CalendarAgencyOf(const Hold& hold, const Deployment& deployment,
                                    const std::string& case_agency) {
  return deployment.agencies.count(hold.holder) > 0 ? hold.holder : case_agency;
}

double HeldWorkingDays(const Hold& hold, const Calendar& calendar, Timestamp now) {
  return WorkingDays(calendar, hold.from, hold.to.value_or(now));
}

std::vector<HolderTime> TimeHeldByHolder(const std::vector<Hold>& holds,
                                         const Deployment& deployment,
                                         const std::string& case_agency, Timestamp now) {
  std::vector<HolderTime> out;
  std::map<std::string, size_t> index;
  std::map<std::string, Calendar> calendars;
  for (const Hold& hold : holds) {
    if (hold.holder.empty()) continue;
    auto [it, added] = index.emplace(hold.holder, out.size());
    if (added) {
      HolderTime time;
      time.holder = hold.holder;
      time.agency = deployment.agencies.count(hold.holder) > 0;
      out.push_back(std::move(time));
    }
    HolderTime& time = out[it->second];
    const std::string& agency = CalendarAgencyOf(hold, deployment, case_agency);
    auto calendar = calendars.find(agency);
    if (calendar == calendars.end()) {
      calendar = calendars.emplace(agency, deployment.CalendarOf(agency)).first;
    }
    ++time.steps;
    time.held_working_days += HeldWorkingDays(hold, calendar->second, now);
    if (!hold.to) time.still_held = true;
    if (hold.limit) {
      // A limit in working days counts as written; others as their length in days.
      double limit = hold.limit->IsWorkingDays()
                         ? static_cast<double>(hold.limit->amount)
                         : static_cast<double>(hold.limit->ApproximateSeconds()) / 86400.0;
      time.limit_working_days = time.limit_working_days.value_or(0.0) + limit;
    }
  }
  return out;
}

CaseTimes TimesOf(const CaseRecord& record, const std::vector<Pause>& pauses,
                  const Calendar& calendar, Timestamp now) {
  CaseTimes times;
  const Timestamp end = IsOpen(record) ? now : record.ended_at.value_or(record.updated_at);
  for (const Pause& pause : pauses) {
    Timestamp from = std::max(pause.from, record.started_at);
    Timestamp to = std::min(pause.to.value_or(end), end);
    times.paused_working_days += WorkingDays(calendar, from, to);
  }
  times.processing_working_days =
      std::max(0.0, WorkingDays(calendar, record.started_at, end) - times.paused_working_days);
  if (record.deadline_at) {
    times.within_limit = IsOpen(record) ? !IsOverdue(record, now) : end <= *record.deadline_at;
  }
  return times;
}

CaseTimeline ReadTimeline(const StepTable* steps, const std::vector<HistoryEvent>& events) {
  HoldTracker tracker(steps);
  for (const HistoryEvent& event : events) tracker.Add(event);
  CaseTimeline timeline;
  timeline.holds = tracker.TakeEnded();
  for (const auto& [activation, hold] : tracker.open()) timeline.holds.push_back(hold);
  std::stable_sort(timeline.holds.begin(), timeline.holds.end(),
                   [](const Hold& a, const Hold& b) { return a.seq < b.seq; });
  timeline.pauses = tracker.pauses();
  timeline.current_steps = CurrentSteps(tracker.OpenSteps());
  return timeline;
}

// --- visibility

Viewer ViewerOf(const Deployment& deployment, const std::string& actor) {
  Viewer viewer;
  viewer.actor = actor;
  for (const auto& agency : deployment.AgenciesOf(actor)) {
    for (const auto& role : deployment.RolesOf(actor, agency)) {
      viewer.agency_roles.emplace_back(agency, role);
    }
  }
  return viewer;
}

bool InInbox(const Viewer& viewer, const TaskRecord& task) {
  if (!IsTaskOpen(task)) return false;
  return std::find(viewer.agency_roles.begin(), viewer.agency_roles.end(),
                   std::make_pair(task.agency, task.role)) != viewer.agency_roles.end();
}

TaskFilter InboxFilter(const Viewer& viewer) {
  TaskFilter filter;
  filter.agency_roles = viewer.agency_roles;
  filter.open_only = true;
  return filter;
}

bool IsMine(const Viewer& viewer, const CaseRecord& record, const std::vector<TaskRecord>& tasks) {
  if (!viewer.actor.empty() && record.started_by == viewer.actor) return true;
  return std::any_of(tasks.begin(), tasks.end(), [&](const TaskRecord& task) {
    return task.case_id == record.id && InInbox(viewer, task);
  });
}

// --- loading

void RevealCase(Revealer& revealer, CaseRecord& record) {
  record.data = revealer.RevealJsonText(record.data);
  record.state = revealer.RevealJsonText(record.state);
}

void RevealTask(Revealer& revealer, TaskRecord& task) {
  task.title = revealer.RevealText(task.title);
  task.form = revealer.RevealJsonText(task.form);
  if (task.values) task.values = revealer.RevealJsonText(*task.values);
}

Result<CaseView> LoadCaseView(StoreTx& tx, ProcedureCache& procedures, const std::string& id,
                              KeySource* keys) {
  CaseView view;
  auto found = tx.GetCase(id);
  if (!found) {
    if (found.error().code() != ErrorCode::kNotFound) return found.error();
    auto archived = tx.GetArchivedChain(id);
    if (archived && *archived) {
      return Status::NotFound(TrFormat(
          "case {0} was archived to {1}; read it there (wf audit verify --archive FILE checks it)",
          id, (*archived)->archive));
    }
    return Status::NotFound(TrFormat("no case {0}; `wf cases` lists them", id));
  }
  view.record = std::move(*found);
  std::optional<Revealer> revealer;
  if (keys) {
    revealer.emplace(RevealerFor(tx, *keys));
    RevealCase(*revealer, view.record);
  }
  // Without its procedure the case is still shown, only with less detail.
  auto procedure = procedures.Get(tx, view.record.procedure, view.record.version);
  if (procedure) view.procedure = *procedure;
  view.state = ParseCaseState(view.record.state);
  TaskFilter filter;
  filter.case_id = id;
  filter.open_only = false;
  auto tasks = tx.ListTasks(filter);
  if (!tasks) return tasks.error();
  view.tasks = std::move(*tasks);
  if (revealer) {
    for (TaskRecord& task : view.tasks) RevealTask(*revealer, task);
  }
  return view;
}

}  // namespace wf::engine
