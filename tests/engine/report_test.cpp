// The auditor's report: the pure aggregation fed by hand-made rows with known times, and the
// store reads and refusal records it needs on both stores.
#include <catch2/catch.hpp>

#include <map>

#include "engine/history_action.hpp"
#include "engine/report.hpp"
#include "engine/runtime.hpp"
#include "tests/support/test_database.hpp"
#include "workflows/loader.hpp"

namespace wf::engine {
namespace {


// A task, then a wait for the applicant's papers that stops the statutory clock, then the end.
constexpr const char* kPermit = R"(procedure: permit
version: 1
title: A permit
agency: town-hall
deadline: 3 working days
dedupe: ${ .applicant }
input:
  required: [applicant]
roles:
  clerk: {agency: town-hall}
steps:
  check:
    task: Check the application
    role: clerk
    next: supplement
  supplement:
    wait: papers
    pauses_deadline: true
    next: lookup
  lookup:
    adapter: noop
    call: {operation: lookup, who: "${ .applicant }"}
    reuse: 30 days
    next: done
  done: {end: completed}
)";

workflows::Procedure LoadPermit() {
  auto result = workflows::LoadProcedure(kPermit, "permit.yaml");
  for (const auto& d : result.diagnostics) UNSCOPED_INFO(d.ToString());
  REQUIRE(result.ok());
  return std::move(*result.procedure);
}

Timestamp At(const char* rfc3339) {
  auto t = ParseTimestamp(rfc3339);
  REQUIRE(t.has_value());
  return std::chrono::floor<std::chrono::microseconds>(*t);
}

// Monday 23 November 2026, 00:00 in Hanoi (the default calendar: UTC+07:00, Saturday and Sunday
// off, no holidays).
constexpr const char* kMonday = "2026-11-23T00:00:00+07:00";

// Feeds one case with its events, `seq` in order, each at a local time.
struct CaseFeed {
  ReportBuilder& builder;
  CaseRecord record;
  std::int64_t seq = 0;

  void Event(const std::string& at, const std::string& action, const std::string& step,
             nlohmann::json details = nlohmann::json::object()) {
    HistoryEvent e;
    e.case_id = record.id;
    e.seq = ++seq;
    e.at = FormatRfc3339(At(at.c_str()));
    e.action = action;
    e.step = step;
    e.details = details.dump();
    builder.AddEvent(e);
  }
};

CaseRecord Case(const std::string& id, const char* started, const char* ended) {
  CaseRecord r;
  r.id = id;
  r.procedure = "permit";
  r.version = 1;
  r.agency = "town-hall";
  r.started_at = At(started);
  r.updated_at = r.started_at;
  // 3 working days from a Monday filing: the end of Thursday.
  r.deadline_at = At("2026-11-26T23:59:59+07:00");
  if (ended != nullptr) {
    r.status = "completed";
    r.ended_at = At(ended);
  }
  return r;
}

const ProcedureFigures& Permit(const Report& report) {
  REQUIRE(report.procedures.size() == 1);
  REQUIRE(report.procedures[0].name == "permit");
  return report.procedures[0];
}

const StepFigures& StepOf(const ProcedureFigures& p, const std::string& id) {
  for (const auto& s : p.steps) {
    if (s.id == id) return s;
  }
  FAIL("no step " << id);
  throw std::logic_error("unreachable");
}

TEST_CASE("the median and 90th percentile use the middle pair and the nearest rank",
          "[engine][report]") {
  std::vector<double> none;
  CHECK_FALSE(Summarize(none).median.has_value());
  std::vector<double> one{5};
  CHECK(*Summarize(one).median == 5);
  CHECK(*Summarize(one).p90 == 5);
  std::vector<double> two{2, 1};
  CHECK(*Summarize(two).median == 1.5);
  CHECK(*Summarize(two).p90 == 2);
  std::vector<double> ten{10, 9, 8, 7, 6, 5, 4, 3, 2, 1};
  DurationSummary s = Summarize(ten);
  CHECK(*s.median == 5.5);
  CHECK(*s.p90 == 9);  // the 9th of 10, not 10
  CHECK(*s.mean == 5.5);
  CHECK(*s.max == 10);
  std::vector<double> eleven{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};
  CHECK(*Summarize(eleven).p90 == 10);  // rank ceil(9.9) = 10
}

TEST_CASE("a report gives processing time in working days against the limit and the on-time rate",
          "[engine][report]") {
  const Deployment deployment = Deployment::Empty();
  ReportBuilder builder(deployment, At("2026-12-31T12:00:00+07:00"));
  workflows::Procedure permit = LoadPermit();
  builder.AddProcedure(permit);
  // Cases filed on Monday at midnight that end 1, 2, 3, 4 and 5 working days later: Tuesday,
  // Wednesday, Thursday, Friday and, over the weekend, next Monday.
  const char* ends[] = {"2026-11-24T00:00:00+07:00", "2026-11-25T00:00:00+07:00",
                        "2026-11-26T00:00:00+07:00", "2026-11-27T00:00:00+07:00",
                        "2026-11-30T00:00:00+07:00"};
  int n = 0;
  for (const char* end : ends) {
    CaseFeed feed{builder, Case("c" + std::to_string(++n), kMonday, end)};
    builder.BeginCase(feed.record);
    feed.Event(kMonday, history_action::kCaseStarted, "");
    feed.Event(kMonday, history_action::kStepEntered, "check", {{"activation", 1}, {"kind", "task"}});
    feed.Event(end, history_action::kTaskCompleted, "check", {{"activation", 1}});
    feed.Event(end, history_action::kCaseFinished, "done", {{"status", "completed"}});
    builder.EndCase();
  }
  // A cancelled case counts as a case but not in the times.
  CaseRecord cancelled = Case("c9", kMonday, "2026-12-10T00:00:00+07:00");
  cancelled.status = "cancelled";
  builder.BeginCase(cancelled);
  builder.EndCase();

  Report report = builder.Finish();
  const ProcedureFigures& p = Permit(report);
  CHECK(p.cases == 6);
  CHECK(p.finished == 5);
  CHECK(p.cancelled == 1);
  CHECK(p.limit == "3 working days");
  CHECK(*p.limit_days == 3);
  CHECK(p.processing.count == 5);
  CHECK(*p.processing.median == Approx(3.0));
  CHECK(*p.processing.p90 == Approx(5.0));  // rank ceil(4.5) = 5: the weekend did not count
  CHECK(*p.processing.mean == Approx(3.0));
  // The deadline is the end of Thursday: the cases that ended by Thursday midnight were on time.
  CHECK(p.with_deadline == 5);
  CHECK(p.on_time == 3);
  CHECK(p.late == 2);
  CHECK(*p.on_time_rate == Approx(0.6));
  CHECK(p.overdue == 0);
  const StepFigures& check = StepOf(p, "check");
  CHECK(check.visits == 5);
  CHECK(*check.time.mean == Approx(3.0));
  CHECK(*check.time.max == Approx(5.0));
  CHECK(check.who == "clerk @ town-hall");
  REQUIRE(report.agencies.size() == 1);
  CHECK(report.agencies[0].agency == "town-hall");
  CHECK(report.agencies[0].cases == 6);
  CHECK(*report.agencies[0].on_time_rate == Approx(0.6));
  REQUIRE_FALSE(report.slowest_steps.empty());
  CHECK(report.slowest_steps[0].step == "check");
}

TEST_CASE("time the statutory clock was paused for the applicant is not processing time",
          "[engine][report]") {
  const Deployment deployment = Deployment::Empty();
  ReportBuilder builder(deployment, At("2026-12-31T12:00:00+07:00"));
  workflows::Procedure permit = LoadPermit();
  builder.AddProcedure(permit);
  // Check takes Monday; the applicant owes papers Tuesday and Wednesday; the lookup reuses
  // evidence; the case ends Thursday 00:00: 3 working days elapsed, 1 of them processing.
  CaseFeed feed{builder, Case("p1", kMonday, "2026-11-26T00:00:00+07:00")};
  builder.BeginCase(feed.record);
  feed.Event(kMonday, history_action::kCaseStarted, "");
  feed.Event(kMonday, history_action::kStepEntered, "check", {{"activation", 1}, {"kind", "task"}});
  feed.Event("2026-11-24T00:00:00+07:00", history_action::kTaskCompleted, "check", {{"activation", 1}});
  feed.Event("2026-11-24T00:00:00+07:00", history_action::kStepEntered, "supplement",
             {{"activation", 2}, {"kind", "wait"}});
  feed.Event("2026-11-26T00:00:00+07:00", history_action::kSignalReceived, "supplement",
             {{"activation", 2}, {"name", "papers"}});
  feed.Event("2026-11-26T00:00:00+07:00", history_action::kStepEntered, "lookup",
             {{"activation", 3}, {"kind", "adapter"}});
  feed.Event("2026-11-26T00:00:00+07:00", history_action::kStepReused, "lookup",
             {{"activation", 3}, {"source_case", "other"}});
  feed.Event("2026-11-26T00:00:00+07:00", history_action::kStepEntered, "done",
             {{"activation", 4}, {"kind", "end"}});
  feed.Event("2026-11-26T00:00:00+07:00", history_action::kCaseFinished, "done", {{"status", "completed"}});
  builder.EndCase();
  RefusalRecord refusal;
  refusal.procedure = "permit";
  refusal.dedupe_key = "x";
  builder.AddRefusal(refusal);

  Report report = builder.Finish();
  const ProcedureFigures& p = Permit(report);
  CHECK(*p.processing.median == Approx(1.0));
  CHECK(p.on_time == 1);
  CHECK(p.reused == 1);
  CHECK(p.calls == 0);
  CHECK(p.refused_duplicates == 1);
  CHECK(report.refused_duplicates == 1);
  CHECK(*StepOf(p, "check").time.mean == Approx(1.0));
  CHECK(*StepOf(p, "supplement").time.mean == Approx(2.0));
  CHECK(StepOf(p, "lookup").reused == 1);
  CHECK(StepOf(p, "done").visits == 1);
  CHECK(report.events == 9);
}

TEST_CASE("an open case past its deadline is overdue by the working days since",
          "[engine][report]") {
  const Deployment deployment = Deployment::Empty();
  // The next Tuesday at midnight: Friday and Monday have passed since the deadline.
  ReportBuilder builder(deployment, At("2026-12-01T00:00:00+07:00"));
  workflows::Procedure permit = LoadPermit();
  builder.AddProcedure(permit);
  CaseFeed late{builder, Case("late", kMonday, nullptr)};
  builder.BeginCase(late.record);
  late.Event(kMonday, history_action::kCaseStarted, "");
  late.Event(kMonday, history_action::kStepEntered, "check", {{"activation", 1}, {"kind", "task"}});
  builder.EndCase();
  // Paused on Wednesday, before its deadline: not overdue, however long the applicant takes.
  CaseFeed paused{builder, Case("paused", kMonday, nullptr)};
  paused.record.clock_paused_at = At("2026-11-25T00:00:00+07:00");
  builder.BeginCase(paused.record);
  paused.Event(kMonday, history_action::kCaseStarted, "");
  builder.EndCase();

  Report report = builder.Finish();
  const ProcedureFigures& p = Permit(report);
  CHECK(p.open == 2);
  CHECK(p.overdue == 1);
  REQUIRE(p.overdue_cases.size() == 1);
  CHECK(p.overdue_cases[0].id == "late");
  CHECK(p.overdue_cases[0].overdue_days == Approx(2.0).margin(0.001));
  CHECK(p.overdue_cases[0].steps == std::vector<std::string>{"check"});
  const StepFigures& check = StepOf(p, "check");
  CHECK(check.visits == 0);
  CHECK(check.waiting_now == 1);
  CHECK(*check.longest_wait_now == Approx(6.0));  // Monday to Monday, then Tuesday begins
  CHECK_FALSE(p.processing.median.has_value());
  CHECK_FALSE(p.on_time_rate.has_value());
}

WF_STORE_TEST_CASE("refused duplicate starts are recorded and counted from the store",
                   "[engine][report][store]", db) {
  auto store = Store::Open(db.url());
  REQUIRE(store.has_value());
  const Deployment deployment = Deployment::Empty();
  Runtime runtime(**store, deployment);
  workflows::Procedure permit = LoadPermit();
  REQUIRE(runtime.Deploy(permit).has_value());
  auto first = runtime.StartCase("permit", {{"applicant", "a-1"}}, "portal");
  REQUIRE(first.has_value());
  auto again = runtime.StartCase("permit", {{"applicant", "a-1"}}, "clerk.two");
  REQUIRE_FALSE(again.has_value());
  CHECK(again.error().code() == ErrorCode::kConflict);
  auto batch = runtime.StartBatch(
      "permit", {{{"applicant", "a-2"}}, {{"applicant", "a-1"}}, {{"applicant", "a-2"}}},
      "importer", 10);
  REQUIRE(batch.has_value());
  REQUIRE(batch->size() == 3);
  CHECK((*batch)[0].outcome == BatchLine::Outcome::kStarted);
  CHECK((*batch)[1].outcome == BatchLine::Outcome::kDuplicate);
  CHECK((*batch)[1].refusal.code() == ErrorCode::kConflict);
  CHECK((*batch)[2].outcome == BatchLine::Outcome::kDuplicate);
  CHECK(db.QueryInt("SELECT COUNT(*) FROM refusals") == 3);
  CHECK(db.QueryInt("SELECT COUNT(*) FROM refusals WHERE open_case = '" + first->id +
                    "' AND actor = 'clerk.two'") == 1);

  auto report = CollectReport(**store, deployment, Now());
  REQUIRE(report.has_value());
  const ProcedureFigures& p = Permit(*report);
  CHECK(p.cases == 2);
  CHECK(p.open == 2);
  CHECK(p.refused_duplicates == 3);
  CHECK(StepOf(p, "check").waiting_now == 2);
  CHECK(report->events > 0);
}

WF_STORE_TEST_CASE("the report reads cases and history across pages", "[engine][report][store]",
                   db) {
  auto store = Store::Open(db.url());
  REQUIRE(store.has_value());
  const Deployment deployment = Deployment::Empty();
  Runtime runtime(**store, deployment);
  workflows::Procedure permit = LoadPermit();
  REQUIRE(runtime.Deploy(permit).has_value());
  // More than one page of cases (1000) and of history, through the batch start.
  std::vector<nlohmann::json> data;
  for (int i = 0; i < 1203; ++i) data.push_back({{"applicant", "a" + std::to_string(i)}});
  auto started = runtime.StartBatch("permit", data, "importer", 500);
  REQUIRE(started.has_value());
  for (const BatchLine& line : *started) REQUIRE(line.outcome == BatchLine::Outcome::kStarted);
  auto report = CollectReport(**store, deployment, Now());
  REQUIRE(report.has_value());
  const ProcedureFigures& p = Permit(*report);
  CHECK(p.cases == 1203);
  CHECK(StepOf(p, "check").waiting_now == 1203);
  CHECK(report->events == db.QueryInt("SELECT COUNT(*) FROM history"));
}

}  // namespace
}  // namespace wf::engine
