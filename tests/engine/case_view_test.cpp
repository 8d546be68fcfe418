// The case read model (engine/case_view.hpp): overdue on the statutory clock, paused cases,
// holds that an HTTP 202 does not end, processing time without pauses, current steps and
// visibility, on hand-made rows with known times.
#include <catch2/catch.hpp>

#include "engine/case_view.hpp"
#include "engine/history_action.hpp"
#include "tests/support/cases.hpp"

namespace wf::engine {
namespace {

// A review by the town hall in parallel with a wait for the applicant's papers that stops the
// statutory clock; then a payment department (which may answer 202), then the end.
constexpr const char* kFile = R"(procedure: file
version: 1
title: A file
agency: town-hall
deadline: 3 working days
roles:
  clerk: {agency: town-hall}
  inspector: {agency: inspectorate}
steps:
  intake:
    parallel: [review, papers]
    next: pay
  review:
    task: Review the file
    role: clerk
    deadline: 1 working day
  papers:
    wait: papers
    pauses_deadline: true
  pay:
    adapter: gateway
    call: {operation: pay}
    next: inspect
  inspect:
    task: Inspect the site
    role: inspector
    next: done
  done: {end: completed}
)";

Timestamp At(const char* rfc3339) {
  auto t = ParseTimestamp(rfc3339);
  REQUIRE(t.has_value());
  return std::chrono::floor<std::chrono::microseconds>(*t);
}

// An open case filed on Monday 23 November 2026 at 00:00 in Hanoi; its 3 working days end on
// Thursday (the default calendar: UTC+07:00, Saturday and Sunday off).
CaseRecord OpenCase() {
  CaseRecord r;
  r.id = "c1";
  r.procedure = "file";
  r.version = 1;
  r.agency = "town-hall";
  r.started_by = "portal";
  r.started_at = At("2026-11-23T00:00:00+07:00");
  r.updated_at = r.started_at;
  r.deadline_at = At("2026-11-26T23:59:59+07:00");
  return r;
}

// Builds a case's history, one event at a time.
struct Events {
  std::vector<HistoryEvent> list;

  Events& Add(const char* at, const std::string& action, const std::string& step,
              nlohmann::json details = nlohmann::json::object()) {
    HistoryEvent e;
    e.case_id = "c1";
    e.seq = static_cast<std::int64_t>(list.size()) + 1;
    e.at = FormatRfc3339(At(at));
    e.action = action;
    e.step = step;
    e.details = details.dump();
    list.push_back(std::move(e));
    return *this;
  }
  Events& Enter(const char* at, const std::string& step, std::int64_t activation,
                const std::string& kind) {
    return Add(at, history_action::kStepEntered, step, {{"activation", activation}, {"kind", kind}});
  }
};

const Hold& HoldAt(const CaseTimeline& timeline, const std::string& step) {
  for (const Hold& hold : timeline.holds) {
    if (hold.step == step) return hold;
  }
  FAIL("no hold of step " << step);
  throw std::logic_error("unreachable");
}

TEST_CASE("a running case is overdue once its deadline is before now", "[engine][case_view]") {
  CaseRecord r = OpenCase();
  CHECK_FALSE(IsOverdue(r, At("2026-11-26T23:59:59+07:00")));
  CHECK(IsOverdue(r, At("2026-11-27T00:00:00+07:00")));
  r.deadline_at.reset();
  CHECK_FALSE(IsOverdue(r, At("2030-01-01T00:00:00Z")));
}

TEST_CASE("a paused case stays as overdue or as early as it was when its clock stopped",
          "[engine][case_view]") {
  CaseRecord r = OpenCase();
  const Timestamp much_later = At("2026-12-15T12:00:00+07:00");

  SECTION("paused in time: not overdue however long the pause lasts") {
    r.clock_paused_at = At("2026-11-25T12:00:00+07:00");
    CHECK_FALSE(IsOverdue(r, much_later));
    CHECK(ClockReading(r, much_later) == *r.clock_paused_at);
    CaseClock clock = ReadClock(r, Calendar(), much_later);
    CHECK(clock.paused_since == r.clock_paused_at);
    CHECK_FALSE(clock.overdue);
    // Wednesday noon to the end of Thursday: 1.5 working days, frozen.
    CHECK(*clock.working_days_left == Approx(1.5).margin(1e-4));
  }
  SECTION("paused when already late: overdue throughout the pause, by the same amount") {
    r.clock_paused_at = At("2026-11-27T12:00:00+07:00");
    CHECK(IsOverdue(r, much_later));
    CaseClock clock = ReadClock(r, Calendar(), much_later);
    CHECK(clock.overdue);
    CHECK(clock.overdue_working_days == Approx(0.5).margin(1e-4));
  }
  SECTION("a pause stamped after now (another host's clock) reads now") {
    r.clock_paused_at = At("2026-11-30T00:00:00+07:00");
    CHECK(ClockReading(r, At("2026-11-25T00:00:00+07:00")) == At("2026-11-25T00:00:00+07:00"));
  }
}

TEST_CASE("an ended case is never overdue, and late when it ended after its deadline",
          "[engine][case_view]") {
  CaseRecord r = OpenCase();
  r.status = "completed";
  r.ended_at = At("2026-11-30T10:00:00+07:00");
  CaseClock clock = ReadClock(r, Calendar(), At("2027-01-01T00:00:00Z"));
  CHECK_FALSE(IsOverdue(r, At("2027-01-01T00:00:00Z")));
  CHECK_FALSE(clock.overdue);
  CHECK(clock.late);
  CHECK(clock.reading == *r.ended_at);
  r.ended_at = At("2026-11-24T10:00:00+07:00");
  CHECK_FALSE(ReadClock(r, Calendar(), At("2027-01-01T00:00:00Z")).late);
}

TEST_CASE("a department that answered 202 holds its step until its callback arrives",
          "[engine][case_view]") {
  const StepTable steps = StepTableOf(wf::testing::ProcedureFromYaml(kFile));
  Events events;
  events.Add("2026-11-23T09:00:00+07:00", history_action::kCaseStarted, "")
      .Enter("2026-11-23T09:00:00+07:00", "pay", 5, "adapter")
      .Add("2026-11-23T10:00:00+07:00", history_action::kStepAccepted, "pay", {{"activation", 5}});

  CaseTimeline waiting = ReadTimeline(&steps, events.list);
  const Hold& open = HoldAt(waiting, "pay");
  CHECK(open.holder == "department gateway");
  CHECK_FALSE(open.to.has_value());
  CHECK(open.accepted_at == At("2026-11-23T10:00:00+07:00"));
  CHECK(waiting.current_steps == std::vector<std::string>{"pay"});

  events.Add("2026-11-24T09:00:00+07:00", history_action::kSignalReceived, "pay",
             {{"activation", 5}, {"name", "pay"}});
  CaseTimeline answered = ReadTimeline(&steps, events.list);
  const Hold& ended = HoldAt(answered, "pay");
  REQUIRE(ended.to.has_value());
  CHECK(*ended.to == At("2026-11-24T09:00:00+07:00"));
  CHECK(HeldWorkingDays(ended, Calendar(), At("2030-01-01T00:00:00Z")) == Approx(1.0));
  CHECK(answered.current_steps.empty());
}

TEST_CASE("an incident retried continues the hold of its activation", "[engine][case_view]") {
  const StepTable steps = StepTableOf(wf::testing::ProcedureFromYaml(kFile));
  Events events;
  events.Enter("2026-11-23T00:00:00+07:00", "pay", 5, "adapter")
      .Add("2026-11-23T06:00:00+07:00", history_action::kIncidentOpened, "pay", {{"activation", 5}})
      .Add("2026-11-23T12:00:00+07:00", history_action::kIncidentRetried, "pay", {{"activation", 5}})
      .Enter("2026-11-23T12:00:00+07:00", "pay", 5, "adapter")
      .Add("2026-11-24T00:00:00+07:00", history_action::kStepSucceeded, "pay", {{"activation", 5}});
  CaseTimeline timeline = ReadTimeline(&steps, events.list);
  REQUIRE(timeline.holds.size() == 1);
  CHECK(timeline.holds[0].from == At("2026-11-23T00:00:00+07:00"));
  CHECK(HeldWorkingDays(timeline.holds[0], Calendar(), At("2030-01-01T00:00:00Z")) == Approx(1.0));
}

TEST_CASE("processing time leaves out the paused clock and holders add up their holds",
          "[engine][case_view]") {
  const StepTable steps = StepTableOf(wf::testing::ProcedureFromYaml(kFile));
  Events events;
  events.Add("2026-11-23T00:00:00+07:00", history_action::kCaseStarted, "")
      .Enter("2026-11-23T00:00:00+07:00", "intake", 1, "parallel")
      .Enter("2026-11-23T00:00:00+07:00", "review", 2, "task")
      .Enter("2026-11-23T00:00:00+07:00", "papers", 3, "wait");

  CaseRecord r = OpenCase();
  r.clock_paused_at = r.started_at;
  const Timestamp tuesday = At("2026-11-24T00:00:00+07:00");
  CaseTimeline started = ReadTimeline(&steps, events.list);
  // The parallel step waits for its branches, which are listed instead.
  CHECK(started.current_steps == std::vector<std::string>{"review", "papers"});
  REQUIRE(started.pauses.size() == 1);
  CHECK_FALSE(started.pauses[0].to.has_value());
  CaseTimes paused = TimesOf(r, started.pauses, Calendar(), tuesday);
  CHECK(paused.processing_working_days == Approx(0.0).margin(1e-9));
  CHECK(paused.paused_working_days == Approx(1.0));

  events.Add("2026-11-24T00:00:00+07:00", history_action::kTaskCompleted, "review", {{"activation", 2}})
      .Add("2026-11-24T00:00:00+07:00", history_action::kBranchJoined, "review",
           {{"activation", 2}, {"parallel", "intake"}, {"remaining", 1}})
      .Add("2026-11-25T00:00:00+07:00", history_action::kSignalReceived, "papers", {{"activation", 3}})
      .Add("2026-11-25T00:00:00+07:00", history_action::kBranchJoined, "papers",
           {{"activation", 3}, {"parallel", "intake"}, {"remaining", 0}})
      .Enter("2026-11-25T00:00:00+07:00", "pay", 4, "adapter")
      .Add("2026-11-25T12:00:00+07:00", history_action::kStepSucceeded, "pay", {{"activation", 4}})
      .Enter("2026-11-25T12:00:00+07:00", "inspect", 5, "task")
      .Add("2026-11-30T12:00:00+07:00", history_action::kTaskCompleted, "inspect", {{"activation", 5}})
      .Enter("2026-11-30T12:00:00+07:00", "done", 6, "end")
      .Add("2026-11-30T12:00:00+07:00", history_action::kCaseFinished, "done", {{"status", "completed"}});
  r.status = "completed";
  r.clock_paused_at.reset();
  r.ended_at = At("2026-11-30T12:00:00+07:00");
  // The runtime extended the deadline by the 2 paused working days: the end of Monday.
  r.deadline_at = At("2026-11-30T23:59:59+07:00");
  CaseTimeline ended = ReadTimeline(&steps, events.list);
  CaseTimes times = TimesOf(r, ended.pauses, Calendar(), At("2030-01-01T00:00:00Z"));
  CHECK(times.paused_working_days == Approx(2.0));
  // Monday to the next Monday noon is 5.5 working days, 2 of them paused.
  CHECK(times.processing_working_days == Approx(3.5));
  CHECK(times.within_limit == true);
  CHECK(HoldAt(ended, "intake").to == At("2026-11-25T00:00:00+07:00"));
  CHECK(HoldAt(ended, "done").to == HoldAt(ended, "done").from);

  // The inspectorate keeps no weekend: its hold from Wednesday noon to Monday noon is measured on
  // its own calendar (5 days), not the town hall's (3 working days).
  Deployment deployment = Deployment::Empty();
  CalendarSpec every_day;
  every_day.name = "every-day";
  every_day.weekend.clear();
  deployment.calendars["every-day"] = every_day;
  deployment.agencies["town-hall"].name = "town-hall";
  deployment.agencies["inspectorate"].name = "inspectorate";
  deployment.agencies["inspectorate"].calendar = "every-day";
  std::vector<HolderTime> held = TimeHeldByHolder(ended.holds, deployment, r.agency, r.started_at);
  REQUIRE(held.size() == 4);
  CHECK(held[0].holder == "town-hall");
  CHECK(held[0].agency);
  CHECK(held[0].held_working_days == Approx(1.0));
  CHECK(*held[0].limit_working_days == Approx(1.0));
  CHECK(held[1].holder == "applicant");
  CHECK(held[1].held_working_days == Approx(2.0));
  CHECK_FALSE(held[1].limit_working_days.has_value());
  CHECK(held[2].holder == "department gateway");
  CHECK_FALSE(held[2].agency);
  CHECK(held[2].held_working_days == Approx(0.5));
  CHECK(held[3].holder == "inspectorate");
  CHECK(held[3].held_working_days == Approx(5.0));
  CHECK_FALSE(held[3].still_held);
}

TEST_CASE("a case's current steps leave out a parallel step that only waits for its branches",
          "[engine][case_view]") {
  CHECK(CurrentSteps({{"intake", 1, true}, {"review", 2, false}, {"review", 3, false}}) ==
        std::vector<std::string>{"review"});
  CHECK(CurrentSteps({{"intake", 1, true}}) == std::vector<std::string>{"intake"});
  CHECK(CurrentSteps(std::string("not json")).empty());
}

TEST_CASE("an inbox holds the open tasks of the roles an actor holds in their agencies",
          "[engine][case_view]") {
  Deployment deployment = Deployment::Empty();
  deployment.agencies["town-hall"].members["ann"] = {"clerk"};
  deployment.agencies["inspectorate"].members["ann"] = {"inspector"};
  deployment.agencies["inspectorate"].members["ivo"] = {"clerk"};
  Viewer ann = ViewerOf(deployment, "ann");
  CHECK(ann.agency_roles == std::vector<std::pair<std::string, std::string>>{
                                {"inspectorate", "inspector"}, {"town-hall", "clerk"}});

  TaskRecord task;
  task.case_id = "c1";
  task.role = "clerk";
  task.agency = "town-hall";
  CHECK(InInbox(ann, task));
  task.status = TaskStatus::kClaimed;
  task.assignee = "bob";
  CHECK(InInbox(ann, task));  // claimed by another clerk: still theirs to see
  task.status = TaskStatus::kCompleted;
  CHECK_FALSE(InInbox(ann, task));
  task.status = TaskStatus::kOpen;
  task.agency = "inspectorate";  // the same role name in another agency is not theirs
  CHECK_FALSE(InInbox(ann, task));
  CHECK(InInbox(ViewerOf(deployment, "ivo"), task));
  CHECK(InboxFilter(ann).agency_roles == ann.agency_roles);

  CaseRecord record = OpenCase();
  CHECK_FALSE(IsMine(ann, record, {task}));
  CHECK(IsMine(ViewerOf(deployment, "ivo"), record, {task}));
  record.started_by = "ann";
  CHECK(IsMine(ann, record, {}));
  CHECK(ViewerOf(deployment, "nobody").agency_roles.empty());
}

}  // namespace
}  // namespace wf::engine
