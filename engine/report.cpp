#include "engine/report.hpp"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <tuple>

#include "engine/case_view.hpp"
#include "engine/history_action.hpp"
#include "engine/runtime.hpp"
#include "workflows/i18n.hpp"

namespace wf::engine {

namespace {

using nlohmann::json;

// Count, mean and maximum of a stream of values, in constant memory (step times: one step may be
// visited millions of times, and its figures need no percentile).
struct Running {
  std::int64_t count = 0;
  double sum = 0;
  double max = 0;

  void Add(double value) {
    ++count;
    sum += value;
    max = count == 1 ? value : std::max(max, value);
  }
  DurationSummary Summary() const {
    DurationSummary s;
    s.count = count;
    if (count > 0) {
      s.mean = sum / static_cast<double>(count);
      s.max = max;
    }
    return s;
  }
};

// What the builder keeps of one step's definition.
struct StepDefinition {
  std::string kind;
  std::string label;
  std::string who;
  std::vector<MapEdge> edges;
  bool reuse = false;
};

// Labels and who-texts stay English here: `wf report --json` prints them as they are. The words
// marked TrNoop (and "signal X", "sub-case X", "end: OUTCOME") are put in the reader's language
// where people read them (cli/report_html.cpp: LabelForPeople, WhoForPeople).
StepDefinition Define(const workflows::Procedure& procedure, const workflows::Step& step) {
  using workflows::StepKind;
  StepDefinition d;
  d.kind = workflows::StepKindName(step.kind);
  d.reuse = step.kind == StepKind::kAdapter && step.reuse.has_value();
  switch (step.kind) {
    case StepKind::kAdapter: {
      d.who = step.department;
      d.label = step.department;
      if (step.call.is_object() && step.call.contains("operation") &&
          step.call["operation"].is_string()) {
        d.label += ": " + step.call["operation"].get<std::string>();
      }
      break;
    }
    case StepKind::kTask: {
      d.label = step.task;
      std::string agency = procedure.agency;
      if (auto it = procedure.roles.find(step.role); it != procedure.roles.end()) {
        if (!it->second.agency.empty()) agency = it->second.agency;
      }
      d.who = step.role + " @ " + agency;
      break;
    }
    case StepKind::kWait:
      d.label = "signal " + (step.signal.empty() ? step.id : step.signal);
      d.who = step.pauses_deadline ? TrNoop("applicant (clock paused)") : TrNoop("outside");
      break;
    case StepKind::kCallProcedure:
      d.label = "sub-case " + step.procedure;
      d.who = step.procedure;
      break;
    case StepKind::kParallel:
      d.label = TrNoop("in parallel");
      break;
    case StepKind::kEnd:
      d.label = "end: " + (step.outcome.empty() ? std::string("completed") : step.outcome);
      break;
    case StepKind::kDecision:
      d.label = "decision";
      break;
  }
  for (const auto& transition : step.next) d.edges.push_back({transition.target, "next"});
  for (const auto& branch : step.branches) d.edges.push_back({branch, "branch"});
  if (!step.on_error.empty()) d.edges.push_back({step.on_error, "on_error"});
  if (!step.on_timeout.empty()) d.edges.push_back({step.on_timeout, "on_timeout"});
  return d;
}

struct StepTotals {
  StepDefinition definition;
  bool defined = false;
  Running time;
  std::int64_t waiting_now = 0;
  std::optional<double> longest_wait_now;
  std::int64_t calls = 0;
  std::int64_t reused = 0;
};

struct ProcedureTotals {
  ProcedureFigures figures;  // counters filled as cases stream; the rest at Finish
  int newest_version = 0;
  std::vector<std::string> order;  // the newest version's steps
  std::map<std::string, StepTotals> steps;
  // What the read model needs of each version's steps (engine/case_view.hpp).
  std::map<int, StepTable> versions;
  std::vector<double> processing;  // one per finished case

  StepTotals& Step(const std::string& id) { return steps[id]; }
};

struct AgencyTotals {
  AgencyFigures figures;
  std::set<std::string> procedures;
  std::vector<double> processing;
};

// Keeps the `kMaxListed` most overdue cases of a procedure.
void KeepOverdue(std::vector<OverdueCase>& list, OverdueCase item) {
  auto more_overdue = [](const OverdueCase& a, const OverdueCase& b) {
    if (a.overdue_days != b.overdue_days) return a.overdue_days > b.overdue_days;
    return a.id < b.id;
  };
  if (list.size() == kMaxListed && !more_overdue(item, list.back())) return;
  list.insert(std::upper_bound(list.begin(), list.end(), item, more_overdue), std::move(item));
  if (list.size() > kMaxListed) list.pop_back();
}

double Ratio(std::int64_t part, std::int64_t whole) {
  return static_cast<double>(part) / static_cast<double>(whole);
}

}  // namespace

DurationSummary Summarize(std::vector<double>& values) {
  DurationSummary s;
  s.count = static_cast<std::int64_t>(values.size());
  if (values.empty()) return s;
  std::sort(values.begin(), values.end());
  double sum = 0;
  for (double v : values) sum += v;
  const size_t n = values.size();
  s.mean = sum / static_cast<double>(n);
  s.median = n % 2 == 1 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
  // Nearest rank: the ceil(0.9 n)-th smallest value. Integer arithmetic avoids 0.9 * 10 rounding
  // up to 10.000000000000002.
  size_t rank = (9 * n + 9) / 10;
  s.p90 = values[std::max<size_t>(rank, 1) - 1];
  s.max = values.back();
  return s;
}

struct ReportBuilder::State {
  const Deployment& deployment;
  Timestamp now;
  std::map<std::string, ProcedureTotals> procedures;
  std::map<std::string, AgencyTotals> agencies;
  std::map<std::string, Calendar> calendars;
  std::int64_t cases = 0;
  std::int64_t events = 0;

  // The case being read.
  bool in_case = false;
  CaseRecord record;
  ProcedureTotals* procedure = nullptr;
  const Calendar* calendar = nullptr;
  std::optional<HoldTracker> holds;

  State(const Deployment& d, Timestamp t) : deployment(d), now(t) {}

  const Calendar& CalendarOf(const std::string& agency) {
    auto it = calendars.find(agency);
    if (it == calendars.end()) it = calendars.emplace(agency, deployment.CalendarOf(agency)).first;
    return it->second;
  }

  ProcedureTotals& ProcedureNamed(const std::string& name, const std::string& agency) {
    ProcedureTotals& p = procedures[name];
    if (p.figures.name.empty()) {
      p.figures.name = name;
      p.figures.agency = agency;
    }
    return p;
  }

  // The calendar a hold is measured on (engine/case_view.hpp).
  const Calendar& CalendarOf(const Hold& hold) {
    return CalendarOf(CalendarAgencyOf(hold, deployment, record.agency));
  }

  void AddEndedHolds() {
    for (const Hold& hold : holds->TakeEnded()) {
      procedure->Step(hold.step).time.Add(HeldWorkingDays(hold, CalendarOf(hold), now));
    }
  }

  void OnEvent(const HistoryEvent& event) {
    const std::string& action = event.action;
    if (action == history_action::kStepSucceeded || action == history_action::kStepReused) {
      StepTotals& step = procedure->Step(event.step);
      bool reused = action == history_action::kStepReused;
      (reused ? step.reused : step.calls) += 1;
      if (reused) {
        ++procedure->figures.reused;
      } else if (step.definition.reuse) {
        ++procedure->figures.calls;
      }
    }
    holds->Add(event);
    AddEndedHolds();
  }

  void EndCurrent() {
    ProcedureFigures& f = procedure->figures;
    AgencyTotals& agency = agencies[record.agency];
    agency.procedures.insert(f.name);
    ++f.cases;
    ++agency.figures.cases;
    const CaseClock clock = ReadClock(record, *calendar, now);
    if (clock.open) {
      ++f.open;
      ++agency.figures.open;
      for (const auto& [id, hold] : holds->open()) {
        StepTotals& step = procedure->Step(hold.step);
        ++step.waiting_now;
        double waited = HeldWorkingDays(hold, CalendarOf(hold), now);
        step.longest_wait_now = std::max(step.longest_wait_now.value_or(0.0), waited);
      }
      if (clock.overdue) {
        ++f.overdue;
        ++agency.figures.overdue;
        OverdueCase item;
        item.id = record.id;
        item.started_at = record.started_at;
        item.deadline_at = *record.deadline_at;
        item.overdue_days = clock.overdue_working_days;
        item.steps = CurrentSteps(holds->OpenSteps());
        KeepOverdue(f.overdue_cases, std::move(item));
      }
    } else {
      ++f.outcomes[record.status];
      if (record.status == "cancelled") {
        ++f.cancelled;
      } else {
        ++f.finished;
        ++agency.figures.finished;
        const CaseTimes times = TimesOf(record, holds->pauses(), *calendar, now);
        procedure->processing.push_back(times.processing_working_days);
        agency.processing.push_back(times.processing_working_days);
        if (times.within_limit) {
          ++f.with_deadline;
          ++agency.figures.with_deadline;
          if (*times.within_limit) {
            ++f.on_time;
            ++agency.figures.on_time;
          } else {
            ++f.late;
          }
        }
      }
    }
    holds.reset();
    procedure = nullptr;
    calendar = nullptr;
    in_case = false;
  }
};

ReportBuilder::ReportBuilder(const Deployment& deployment, Timestamp now)
    : state_(std::make_unique<State>(deployment, now)) {}

ReportBuilder::~ReportBuilder() = default;

void ReportBuilder::AddProcedure(const workflows::Procedure& procedure) {
  ProcedureTotals& p = state_->ProcedureNamed(procedure.name, procedure.agency);
  p.versions[procedure.version] = StepTableOf(procedure);
  const bool newest = procedure.version >= p.newest_version;
  for (const workflows::Step& step : procedure.steps) {
    StepDefinition definition = Define(procedure, step);
    StepTotals& totals = p.Step(step.id);
    if (newest || !totals.defined) {
      totals.definition = std::move(definition);
      totals.defined = true;
    }
  }
  if (!newest) return;
  p.newest_version = procedure.version;
  p.figures.title = procedure.title;
  p.figures.agency = procedure.agency;
  p.figures.start = procedure.start.empty() && !procedure.steps.empty() ? procedure.steps.front().id
                                                                        : procedure.start;
  p.figures.limit = procedure.deadline ? procedure.deadline->ToString() : std::string();
  p.figures.limit_days.reset();
  if (procedure.deadline && procedure.deadline->IsWorkingDays()) {
    p.figures.limit_days = static_cast<double>(procedure.deadline->amount);
  }
  p.order.clear();
  for (const workflows::Step& step : procedure.steps) p.order.push_back(step.id);
}

void ReportBuilder::BeginCase(const CaseRecord& record) {
  State& s = *state_;
  if (s.in_case) EndCase();
  s.in_case = true;
  s.record = record;
  s.procedure = &s.ProcedureNamed(record.procedure, record.agency);
  auto version = s.procedure->versions.find(record.version);
  s.holds.emplace(version == s.procedure->versions.end() ? nullptr : &version->second);
  s.calendar = &s.CalendarOf(record.agency);
  ++s.cases;
}

void ReportBuilder::AddEvent(const HistoryEvent& event) {
  State& s = *state_;
  if (!s.in_case || event.case_id != s.record.id) return;
  ++s.events;
  s.OnEvent(event);
}

void ReportBuilder::EndCase() {
  if (state_->in_case) state_->EndCurrent();
}

void ReportBuilder::AddRefusal(const RefusalRecord& refusal) {
  State& s = *state_;
  auto it = s.procedures.find(refusal.procedure);
  ProcedureTotals& p =
      it != s.procedures.end() ? it->second : s.ProcedureNamed(refusal.procedure, std::string());
  ++p.figures.refused_duplicates;
}

Report ReportBuilder::Finish() {
  State& s = *state_;
  EndCase();
  Report report;
  report.generated_at = s.now;
  report.cases = s.cases;
  report.events = s.events;
  for (auto& [name, p] : s.procedures) {
    ProcedureFigures figures = std::move(p.figures);
    figures.processing = Summarize(p.processing);
    if (figures.with_deadline > 0)
      figures.on_time_rate = Ratio(figures.on_time, figures.with_deadline);
    std::vector<std::string> order = p.order;
    for (const auto& [id, totals] : p.steps) {
      if (std::find(order.begin(), order.end(), id) == order.end()) order.push_back(id);
    }
    for (const std::string& id : order) {
      const StepTotals& totals = p.steps[id];
      StepFigures step;
      step.id = id;
      step.kind = totals.definition.kind;
      step.label = totals.definition.label;
      step.who = totals.definition.who;
      step.edges = totals.definition.edges;
      step.time = totals.time.Summary();
      step.visits = step.time.count;
      step.waiting_now = totals.waiting_now;
      step.longest_wait_now = totals.longest_wait_now;
      step.calls = totals.calls;
      step.reused = totals.reused;
      if (step.visits > 0 && step.time.mean && *step.time.mean > 0) {
        report.slowest_steps.push_back(
            {figures.name, id, step.who, step.visits, *step.time.mean, step.time.max});
      }
      figures.steps.push_back(std::move(step));
    }
    report.refused_duplicates += figures.refused_duplicates;
    report.reused += figures.reused;
    AgencyTotals& agency = s.agencies[figures.agency];
    agency.procedures.insert(figures.name);
    agency.figures.reused += figures.reused;
    agency.figures.refused_duplicates += figures.refused_duplicates;
    report.procedures.push_back(std::move(figures));
  }
  std::sort(report.slowest_steps.begin(), report.slowest_steps.end(),
            [](const SlowStep& a, const SlowStep& b) {
              if (a.mean_days != b.mean_days) return a.mean_days > b.mean_days;
              return std::tie(a.procedure, a.step) < std::tie(b.procedure, b.step);
            });
  if (report.slowest_steps.size() > kMaxListed) report.slowest_steps.resize(kMaxListed);
  for (auto& [name, a] : s.agencies) {
    AgencyFigures figures = std::move(a.figures);
    figures.agency = name;
    figures.calendar = s.CalendarOf(name).name();
    figures.procedures = static_cast<std::int64_t>(a.procedures.size());
    figures.processing = Summarize(a.processing);
    if (figures.with_deadline > 0)
      figures.on_time_rate = Ratio(figures.on_time, figures.with_deadline);
    report.agencies.push_back(std::move(figures));
  }
  s.procedures.clear();
  s.agencies.clear();
  return report;
}

Result<Report> CollectReport(Store& store, const Deployment& deployment, Timestamp now) {
  constexpr int kPage = 1000;
  ReportBuilder builder(deployment, now);

  ProcedureCache cache;
  Status status = store.Read([&](StoreTx& tx) -> Status {
    auto list = tx.ListProcedures();
    if (!list) return list.error();
    for (const ProcedureRecord& summary : *list) {
      auto record = tx.GetProcedure(summary.name, summary.version);
      if (!record) return record.error();
      auto procedure = cache.Put(*record);
      if (!procedure) return procedure.error();
      builder.AddProcedure(**procedure);
    }
    return Status::Ok();
  });
  if (!status.ok()) return status;

  // Cases and history both come in case id order: walk the cases alongside the history, one page
  // of each at a time. A case with no history (none should exist) is counted all the same.
  std::vector<CaseRecord> page;
  size_t next = 0;
  std::string after;
  bool cases_done = false;
  std::string current;
  // Moves the case cursor up to `case_id` (all remaining cases when empty); true when the case
  // `case_id` was found and begun.
  auto advance = [&](const std::string& case_id) -> Result<bool> {
    for (;;) {
      if (next == page.size()) {
        if (cases_done) return false;
        Status read = store.Read([&](StoreTx& tx) -> Status {
          auto rows = tx.ListCasesAfter(after, kPage);
          if (!rows) return rows.error();
          page = std::move(*rows);
          return Status::Ok();
        });
        if (!read.ok()) return read;
        next = 0;
        if (page.size() < static_cast<size_t>(kPage)) cases_done = true;
        if (page.empty()) return false;
        after = page.back().id;
      }
      const CaseRecord& record = page[next];
      if (!case_id.empty() && record.id > case_id) return false;
      ++next;
      builder.BeginCase(record);
      if (record.id == case_id) return true;
      builder.EndCase();
    }
  };

  bool in_case = false;
  status = store.ForEachHistory(std::nullopt, std::nullopt, [&](const HistoryEvent& event) {
    if (event.case_id != current) {
      if (in_case) builder.EndCase();
      current = event.case_id;
      Result<bool> found = advance(current);
      if (!found) return found.error();
      in_case = *found;
    }
    if (in_case) builder.AddEvent(event);
    return Status::Ok();
  });
  if (!status.ok()) return status;
  if (in_case) builder.EndCase();
  Result<bool> rest = advance(std::string());
  if (!rest) return rest.error();

  std::int64_t after_refusal = 0;
  for (;;) {
    std::vector<RefusalRecord> refusals;
    status = store.Read([&](StoreTx& tx) -> Status {
      auto rows = tx.ListRefusalsAfter(after_refusal, kPage);
      if (!rows) return rows.error();
      refusals = std::move(*rows);
      return Status::Ok();
    });
    if (!status.ok()) return status;
    for (const RefusalRecord& refusal : refusals) builder.AddRefusal(refusal);
    if (refusals.size() < static_cast<size_t>(kPage)) break;
    after_refusal = refusals.back().id;
  }
  return builder.Finish();
}

}  // namespace wf::engine
