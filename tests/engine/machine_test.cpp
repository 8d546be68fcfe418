#include "engine/machine.hpp"

#include <catch2/catch.hpp>
#include <deque>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "engine/history_action.hpp"
#include "workflows/expression.hpp"
#include "workflows/loader.hpp"
#include "workflows/procedure.hpp"

namespace wf::engine {
namespace {

using nlohmann::json;
using workflows::Duration;
using workflows::DurationUnit;
using workflows::Procedure;
using workflows::Step;
using workflows::StepKind;
using workflows::Transition;

// --- building procedures by hand --------------------------------------------------------------

workflows::LocatedExpression Expr(const std::string& program) {
  workflows::ExpressionError error;
  auto compiled = workflows::Expression::Compile(program, &error);
  INFO(program << ": " << error.message);
  REQUIRE(compiled.has_value());
  return {*compiled, {}};
}

Transition Go(const std::string& target) { return Transition{std::nullopt, target, {}}; }
Transition If(const std::string& condition, const std::string& target) {
  return Transition{Expr(condition), target, {}};
}

Step MakeStep(const std::string& id, StepKind kind, const std::string& next = "") {
  Step step;
  step.id = id;
  step.kind = kind;
  if (!next.empty()) step.next = {Go(next)};
  return step;
}

Step AdapterStep(const std::string& id, const std::string& department, json call,
                 const std::string& next = "", const std::string& save_as = "") {
  Step step = MakeStep(id, StepKind::kAdapter, next);
  step.department = department;
  step.call = std::move(call);
  step.save_as = save_as;
  return step;
}

Step TaskStep(const std::string& id, const std::string& role, const std::string& next = "",
              const std::string& save_as = "") {
  Step step = MakeStep(id, StepKind::kTask, next);
  step.task = "Review " + id;
  step.role = role;
  step.save_as = save_as;
  return step;
}

Step WaitStep(const std::string& id, const std::string& signal, const std::string& next = "",
              const std::string& save_as = "") {
  Step step = MakeStep(id, StepKind::kWait, next);
  step.signal = signal;
  step.save_as = save_as;
  return step;
}

Step ParallelStep(const std::string& id, std::vector<std::string> branches,
                  const std::string& next = "") {
  Step step = MakeStep(id, StepKind::kParallel, next);
  step.branches = std::move(branches);
  return step;
}

Step EndStep(const std::string& id, const std::string& outcome) {
  Step step = MakeStep(id, StepKind::kEnd);
  step.outcome = outcome;
  return step;
}

Step DecisionStep(const std::string& id, std::vector<Transition> next) {
  Step step = MakeStep(id, StepKind::kDecision);
  step.next = std::move(next);
  return step;
}

Procedure MakeProcedure(std::vector<Step> steps, const std::string& start = "") {
  Procedure p;
  p.name = "test-procedure";
  p.agency = "commune-justice";
  p.roles["clerk"] = {"clerk", "commune-justice", "", {}, {}};
  p.roles["officer"] = {"officer", "district-police", "", {}, {}};
  p.start = start.empty() ? steps.front().id : start;
  p.steps = std::move(steps);
  return p;
}

Duration Seconds(int64_t n) { return {n, DurationUnit::kSeconds}; }

const auto kEpoch = std::chrono::system_clock::time_point{} + std::chrono::seconds(1767225600);

// --- reading results ----------------------------------------------------------------------------

template <typename C>
std::vector<C> Commands(const std::vector<Command>& commands) {
  std::vector<C> out;
  for (const Command& c : commands) {
    if (const C* one = std::get_if<C>(&c)) out.push_back(*one);
  }
  return out;
}

std::vector<std::string> CommandTypes(const std::vector<Command>& commands) {
  std::vector<std::string> out;
  for (const Command& c : commands) out.push_back(CommandToJson(c)["type"].get<std::string>());
  return out;
}

std::vector<std::string> Actions(const std::vector<HistoryNote>& notes) {
  std::vector<std::string> out;
  for (const HistoryNote& n : notes) out.push_back(n.action);
  return out;
}

bool Contains(const std::vector<std::string>& list, const std::string& item) {
  return std::find(list.begin(), list.end(), item) != list.end();
}

// --- the in-test driver
// ---------------------------------------------------------------------------

// What a fake department answers to one attempt.
struct FakeAnswer {
  enum class Kind { kOk, kRetryable, kPermanent, kAccepted } kind = Kind::kOk;
  json result = json::object();
  std::string message;
};
FakeAnswer Ok(json result) { return {FakeAnswer::Kind::kOk, std::move(result), ""}; }
FakeAnswer Down(const std::string& m) { return {FakeAnswer::Kind::kRetryable, nullptr, m}; }
FakeAnswer Refused(const std::string& m) { return {FakeAnswer::Kind::kPermanent, nullptr, m}; }
FakeAnswer Accepted() { return {FakeAnswer::Kind::kAccepted, nullptr, ""}; }

// Carries out commands by playing them back as events: fake departments answer adapter calls,
// retries fire at once, a fake clerk answers tasks. After every event the state is written to
// JSON text and read back, and the run continues from what was read: a crash after every commit.
class Driver {
 public:
  explicit Driver(const Procedure& procedure) : procedure_(procedure) { ctx.now = kEpoch; }

  // Applies one event that must succeed, then plays the commands it produced.
  Advance Send(const Event& event) {
    Result<Advance> r = Apply(procedure_, state, event, ctx);
    INFO("event " << EventToJson(event).dump());
    if (!r) INFO("error: " << r.error().message());
    REQUIRE(r.has_value());
    Reload(r->state);
    for (const Command& c : r->commands) queue_.push_back(c);
    notes.insert(notes.end(), r->notes.begin(), r->notes.end());
    Play();
    return *r;
  }

  // Applies one event that must fail; the state must not change.
  Status Refuse(const Event& event) {
    Result<Advance> r = Apply(procedure_, state, event, ctx);
    INFO("event " << EventToJson(event).dump());
    REQUIRE_FALSE(r.has_value());
    return r.error();
  }

  std::map<std::string, std::function<FakeAnswer(const json& call, int attempt)>> departments;
  // Answers a task with form values, or nullopt to leave it open.
  std::function<std::optional<json>(const command::OpenTask&)> clerk;

  CaseState state;
  Context ctx;
  std::vector<Command> log;                   // every command carried out, in order
  std::vector<HistoryNote> notes;             // every note, in order
  std::vector<command::OpenTask> open_tasks;  // tasks the clerk left open

 private:
  void Reload(const CaseState& next) {
    std::string stored = next.ToJson().dump();
    Result<CaseState> loaded = CaseState::FromJson(json::parse(stored));
    if (!loaded) INFO("reload: " << loaded.error().message());
    REQUIRE(loaded.has_value());
    REQUIRE(*loaded == next);
    state = *loaded;
  }

  void Play() {
    if (playing_) return;  // events sent while playing only queue their commands
    playing_ = true;
    int budget = 10000;
    while (!queue_.empty() && --budget > 0) {
      Command c = queue_.front();
      queue_.pop_front();
      log.push_back(c);
      if (auto* invoke = std::get_if<command::InvokeAdapter>(&c)) {
        auto it = departments.find(invoke->department);
        REQUIRE(it != departments.end());
        FakeAnswer a = it->second(invoke->call, invoke->attempt);
        switch (a.kind) {
          case FakeAnswer::Kind::kOk:
            Send(event::StepSucceeded{invoke->activation, a.result, std::nullopt});
            break;
          case FakeAnswer::Kind::kRetryable:
          case FakeAnswer::Kind::kPermanent:
            Send(event::StepFailed{invoke->activation, a.message,
                                   a.kind == FakeAnswer::Kind::kRetryable, invoke->attempt});
            break;
          case FakeAnswer::Kind::kAccepted:
            Send(event::StepAccepted{invoke->activation});
            break;
        }
      } else if (auto* retry = std::get_if<command::ScheduleRetry>(&c)) {
        Send(event::TimerFired{retry->activation, TimerKind::kRetry});
      } else if (auto* task = std::get_if<command::OpenTask>(&c)) {
        std::optional<json> values = clerk ? clerk(*task) : std::nullopt;
        if (values) {
          Send(event::TaskCompleted{task->activation, "an.nguyen", *values});
        } else {
          open_tasks.push_back(*task);
        }
      }
    }
    REQUIRE(budget > 0);
    playing_ = false;
  }

  const Procedure& procedure_;
  std::deque<Command> queue_;
  bool playing_ = false;
};

// ================================================================================================

TEST_CASE("an adapter step renders its call over the case data and saves the result",
          "[engine][machine][adapter]") {
  Procedure p = MakeProcedure(
      {AdapterStep("verify", "population-db",
                   {{"operation", "get_citizen"}, {"citizen_id", "${ .mother.citizen_id }"}},
                   "done", "mother_record"),
       EndStep("done", "completed")});
  CaseState fresh;
  Context ctx{kEpoch, "an.nguyen"};
  Result<Advance> started =
      Apply(p, fresh, event::Start{{{"mother", {{"citizen_id", "001234567890"}}}}}, ctx);
  REQUIRE(started.has_value());
  REQUIRE(started->commands.size() == 1);
  auto invoke = std::get<command::InvokeAdapter>(started->commands[0]);
  CHECK(invoke.activation == 1);
  CHECK(invoke.step == "verify");
  CHECK(invoke.department == "population-db");
  CHECK(invoke.attempt == 1);
  CHECK(invoke.call == json{{"operation", "get_citizen"}, {"citizen_id", "001234567890"}});
  CHECK(Actions(started->notes) == std::vector<std::string>{history_action::kCaseStarted, history_action::kStepEntered});
  CHECK(started->state.status == "open");
  REQUIRE(started->state.tokens.size() == 1);
  CHECK(started->state.tokens[0].waiting == Waiting::kAdapter);

  Result<Advance> done = Apply(
      p, started->state, event::StepSucceeded{1, {{"name", "Tran Thi B"}}, std::nullopt}, ctx);
  REQUIRE(done.has_value());
  CHECK(done->state.status == "completed");
  CHECK(done->state.data["mother_record"] == json{{"name", "Tran Thi B"}});
  CHECK(done->state.tokens.empty());
  auto finish = Commands<command::Finish>(done->commands);
  REQUIRE(finish.size() == 1);
  CHECK(finish[0].status == "completed");
  CHECK(Actions(done->notes) ==
        std::vector<std::string>{history_action::kStepSucceeded, history_action::kStepEntered, history_action::kCaseFinished});
  CHECK(done->notes[0].details["saved_as"] == "mother_record");
  CHECK(done->notes[0].details["result"]["name"] == "Tran Thi B");
}

TEST_CASE("every step entry gets a fresh increasing activation", "[engine][machine]") {
  Procedure p = MakeProcedure({AdapterStep("a", "d", {}, "b"), AdapterStep("b", "d", {}, "c"),
                               AdapterStep("c", "d", {}, "")});
  Driver driver(p);
  driver.departments["d"] = [](const json&, int) { return Ok({}); };
  driver.Send(event::Start{});
  auto invokes = Commands<command::InvokeAdapter>(driver.log);
  REQUIRE(invokes.size() == 3);
  CHECK(invokes[0].activation == 1);
  CHECK(invokes[1].activation == 2);
  CHECK(invokes[2].activation == 3);
  CHECK(driver.state.next_activation == 4);
  CHECK(driver.state.status == "completed");  // a step with no next on the main line
}

TEST_CASE("ids other modules derive from an activation", "[engine][machine]") {
  CHECK(IdempotencyKey("c-42", "verify_mother", 7) == "c-42/verify_mother/7");
  CHECK(TaskId("c-42", 7) == "c-42.7");
}

TEST_CASE("start checks the input schema and names every failing path", "[engine][machine]") {
  Procedure p = MakeProcedure({EndStep("done", "completed")});
  p.input_schema = {{"type", "object"},
                    {"required", {"child", "mother"}},
                    {"properties", {{"child", {{"type", "object"}}}}}};
  Driver driver(p);
  Status s = driver.Refuse(event::Start{{{"child", 3}}});
  CHECK(s.code() == ErrorCode::kInvalid);
  CHECK_THAT(s.message(), Catch::Contains("$.child"));
  CHECK_THAT(s.message(), Catch::Contains("mother"));
  CHECK(driver.Refuse(event::Start{json::array()}).code() == ErrorCode::kInvalid);

  driver.Send(event::Start{{{"child", json::object()}, {"mother", json::object()}}});
  CHECK(driver.state.status == "completed");
}

TEST_CASE("a task opens in its role's inbox with a deadline timer", "[engine][machine][task]") {
  Step review = TaskStep("review", "officer", "done", "review");
  review.deadline = Duration{1, DurationUnit::kWorkingDays};
  review.escalate_to = "head";
  review.form_schema = {
      {"type", "object"},
      {"required", {"approved"}},
      {"properties", {{"approved", {{"type", "boolean"}}}, {"note", {{"type", "string"}}}}},
      {"additionalProperties", false}};
  Procedure p = MakeProcedure({review, EndStep("done", "completed")});
  Driver driver(p);
  Advance a = driver.Send(event::Start{});
  auto tasks = Commands<command::OpenTask>(a.commands);
  REQUIRE(tasks.size() == 1);
  CHECK(tasks[0].activation == 1);
  CHECK(tasks[0].role == "officer");
  CHECK(tasks[0].agency == "district-police");
  CHECK(tasks[0].title == "Review review");
  CHECK(tasks[0].escalate_to == "head");
  CHECK(tasks[0].form_schema == review.form_schema);
  auto timers = Commands<command::SetTimer>(a.commands);
  REQUIRE(timers.size() == 1);
  CHECK(timers[0].kind == TimerKind::kTaskDeadline);
  CHECK(timers[0].after == Duration{1, DurationUnit::kWorkingDays});

  SECTION("form values that break the form are refused, naming every path") {
    Status s = driver.Refuse(event::TaskCompleted{1, "an", {{"note", 5}, {"extra", true}}});
    CHECK(s.code() == ErrorCode::kInvalid);
    CHECK_THAT(s.message(), Catch::Contains("'approved'"));
    CHECK_THAT(s.message(), Catch::Contains("$.note"));
    CHECK_THAT(s.message(), Catch::Contains("$.extra"));
    CHECK(driver.state.status == "open");
  }
  SECTION("completing saves the values, closes the task and notes the decision") {
    Advance done =
        driver.Send(event::TaskCompleted{1, "an.nguyen", {{"approved", false}, {"note", "no"}}});
    CHECK(driver.state.status == "completed");
    CHECK(driver.state.data["review"] == json{{"approved", false}, {"note", "no"}});
    auto closes = Commands<command::CloseTask>(done.commands);
    REQUIRE(closes.size() == 1);
    CHECK(closes[0].why == "completed");
    CHECK(Commands<command::CancelTimers>(done.commands).size() == 1);
    REQUIRE(done.notes[0].action == history_action::kTaskCompleted);
    CHECK(done.notes[0].details["actor"] == "an.nguyen");
    CHECK(done.notes[0].details["decision"] == false);
    CHECK(done.notes[0].details["reason"] == "no");
  }
  SECTION("a completed task cannot be completed again") {
    Step second = TaskStep("second", "clerk");
    Procedure two = MakeProcedure({TaskStep("first", "clerk", "second"), second});
    Driver d2(two);
    d2.Send(event::Start{});
    d2.Send(event::TaskCompleted{1, "an", json::object()});
    Status s = d2.Refuse(event::TaskCompleted{1, "binh", json::object()});
    CHECK(s.code() == ErrorCode::kConflict);
    CHECK_THAT(s.message(), Catch::Contains("activation 1"));
  }
}

TEST_CASE("the task deadline escalates once, or notes the task overdue",
          "[engine][machine][task]") {
  Step review = TaskStep("review", "clerk", "");
  review.deadline = Seconds(3600);
  review.escalate_to = "head";
  Procedure p = MakeProcedure({review});
  Driver driver(p);
  driver.Send(event::Start{});
  Advance fired = driver.Send(event::TimerFired{1, TimerKind::kTaskDeadline});
  auto escalations = Commands<command::EscalateTask>(fired.commands);
  REQUIRE(escalations.size() == 1);
  CHECK(escalations[0].activation == 1);
  CHECK(escalations[0].to_role == "head");
  CHECK(Actions(fired.notes) == std::vector<std::string>{history_action::kTimerFired, history_action::kTaskEscalated});
  CHECK(driver.state.tokens[0].escalated);
  // The same timer again (redelivered after a crash) changes nothing.
  Advance again = driver.Send(event::TimerFired{1, TimerKind::kTaskDeadline});
  CHECK(again.stale);
  CHECK(again.commands.empty());

  Step plain = TaskStep("review", "clerk", "");
  plain.deadline = Seconds(60);
  Procedure q = MakeProcedure({plain});
  Driver d2(q);
  d2.Send(event::Start{});
  Advance overdue = d2.Send(event::TimerFired{1, TimerKind::kTaskDeadline});
  CHECK(Commands<command::EscalateTask>(overdue.commands).empty());
  CHECK(Actions(overdue.notes) == std::vector<std::string>{history_action::kTimerFired, history_action::kTaskOverdue});
}

TEST_CASE("conditions choose the first transition that holds", "[engine][machine][decision]") {
  Procedure p = MakeProcedure(
      {DecisionStep("route",
                    {If(".amount > 100", "big"), If(".amount > 10", "medium"), Go("small")}),
       EndStep("big", "big"), EndStep("medium", "medium"), EndStep("small", "small")});
  for (auto [amount, outcome] : std::vector<std::pair<int, std::string>>{
           {500, "big"}, {50, "medium"}, {5, "small"}, {100, "medium"}}) {
    Driver driver(p);
    driver.Send(event::Start{{{"amount", amount}}});
    CHECK(driver.state.status == outcome);
  }
}

TEST_CASE("a condition that fails to evaluate opens an incident; retry chooses again",
          "[engine][machine][decision][incident]") {
  Step check = AdapterStep("check", "d", {}, "", "check");
  check.next = {If(".check.count + 1 > 3", "many"), Go("few")};
  Procedure p = MakeProcedure({check, EndStep("many", "many"), EndStep("few", "few")});
  Driver driver(p);
  driver.departments["d"] = [](const json&, int) { return Ok({{"count", "not a number"}}); };
  driver.Send(event::Start{});
  REQUIRE(driver.state.status == "open");
  REQUIRE(driver.state.tokens.size() == 1);
  const Token& t = driver.state.tokens[0];
  CHECK(t.waiting == Waiting::kIncident);
  CHECK(t.incident_after_success);
  CHECK(t.step == "check");
  auto incidents = Commands<command::OpenIncident>(driver.log);
  REQUIRE(incidents.size() == 1);
  CHECK(incidents[0].step == "check");
  CHECK_THAT(incidents[0].message, Catch::Contains("choosing the next step"));
  CHECK(driver.state.data["check"]["count"] == "not a number");  // the result was saved

  // The retry does not call the department again: it chooses again (and fails again).
  Advance retried = driver.Send(event::RetryIncident{1});
  CHECK(Commands<command::InvokeAdapter>(retried.commands).empty());
  CHECK(CommandTypes(retried.commands) ==
        std::vector<std::string>{"close_incident", "open_incident"});
}

TEST_CASE("a parallel step joins branches of different lengths", "[engine][machine][parallel]") {
  Procedure p = MakeProcedure({
      ParallelStep("register", {"residence", "health_card"}, "done"),
      AdapterStep("residence", "police", {}, "residence_2", "residence"),
      AdapterStep("residence_2", "police", {}, "residence_3"),
      AdapterStep("residence_3", "police", {}, ""),
      TaskStep("health_card", "clerk", "", "card"),
      EndStep("done", "completed"),
  });
  Driver driver(p);
  driver.departments["police"] = [](const json&, int) { return Ok({{"ok", true}}); };
  driver.Send(event::Start{});
  // The long adapter branch ran to its end; the task branch still waits: no join yet.
  CHECK(driver.state.status == "open");
  REQUIRE(driver.state.joins.size() == 1);
  const Join& join = driver.state.joins.begin()->second;
  CHECK(join.activation == 1);
  CHECK(join.step == "register");
  CHECK(join.pending == std::vector<int64_t>{3});  // the health_card token (id 3)
  REQUIRE(driver.state.tokens.size() == 2);
  CHECK(driver.state.tokens[0].waiting == Waiting::kBranches);
  CHECK(driver.state.tokens[1].step == "health_card");
  CHECK(driver.state.tokens[1].join == 1);
  CHECK(Commands<command::InvokeAdapter>(driver.log).size() == 3);
  REQUIRE(driver.open_tasks.size() == 1);

  Advance joined = driver.Send(
      event::TaskCompleted{driver.open_tasks[0].activation, "an", {{"card_no", "HC-1"}}});
  CHECK(driver.state.status == "completed");
  CHECK(driver.state.data["card"]["card_no"] == "HC-1");
  CHECK(driver.state.data["residence"]["ok"] == true);
  CHECK(driver.state.joins.empty());
  std::vector<std::string> actions = Actions(joined.notes);
  CHECK(actions == std::vector<std::string>{history_action::kTaskCompleted, history_action::kBranchJoined, history_action::kStepEntered,
                                            history_action::kCaseFinished});
  int joins_noted = 0;
  for (const auto& n : driver.notes) joins_noted += n.action == history_action::kBranchJoined;
  CHECK(joins_noted == 2);
}

TEST_CASE("a parallel step with no next inside a branch joins its outer parallel",
          "[engine][machine][parallel]") {
  Procedure p = MakeProcedure({
      ParallelStep("outer", {"inner", "side"}, "done"),
      ParallelStep("inner", {"x", "y"}),
      WaitStep("x", "go-x"),
      WaitStep("y", "go-y"),
      WaitStep("side", "go-side"),
      EndStep("done", "completed"),
  });
  Driver driver(p);
  driver.Send(event::Start{});
  CHECK(driver.state.joins.size() == 2);
  driver.Send(event::SignalReceived{"go-side", nullptr});
  driver.Send(event::SignalReceived{"go-x", nullptr});
  CHECK(driver.state.status == "open");
  driver.Send(event::SignalReceived{"go-y", nullptr});
  CHECK(driver.state.status == "completed");
}

TEST_CASE("an end step inside a branch finishes the case and cancels its siblings",
          "[engine][machine][parallel][end]") {
  Step wait = WaitStep("documents", "documents");
  wait.wait_timeout = Seconds(600);
  Step child = MakeStep("related", StepKind::kCallProcedure);
  child.procedure = "health-card-issue";
  Step refuse = EndStep("refused", "refused");
  refuse.reason = Expr(".why");
  Procedure p = MakeProcedure({
      ParallelStep("fork", {"review", "documents", "related", "check"}, "done"),
      TaskStep("review", "clerk"),
      wait,
      child,
      AdapterStep("check", "d", {}, "refused"),
      refuse,
      EndStep("done", "completed"),
  });
  Driver driver(p);
  driver.departments["d"] = [](const json&, int) { return Ok({}); };
  driver.Send(event::Start{{{"why", "duplicate application"}}});
  CHECK(driver.state.status == "refused");
  CHECK(driver.state.reason == "duplicate application");
  CHECK(driver.state.tokens.empty());
  CHECK(driver.state.joins.empty());
  auto closes = Commands<command::CloseTask>(driver.log);
  REQUIRE(closes.size() == 1);
  CHECK(closes[0].activation == 2);
  CHECK(closes[0].why == "finished");
  auto cancel_child = Commands<command::CancelChild>(driver.log);
  REQUIRE(cancel_child.size() == 1);
  CHECK(cancel_child[0].activation == 4);
  auto cancel_timers = Commands<command::CancelTimers>(driver.log);
  REQUIRE(cancel_timers.size() == 1);
  CHECK(cancel_timers[0].activation == 3);  // the wait's timeout
  auto finish = Commands<command::Finish>(driver.log);
  REQUIRE(finish.size() == 1);
  CHECK(finish[0].status == "refused");
  CHECK(finish[0].reason == "duplicate application");
  // Late events for the cancelled siblings: a timer is stale, a task completion a conflict.
  Advance late = driver.Send(event::TimerFired{3, TimerKind::kWaitTimeout});
  CHECK(late.stale);
  CHECK(driver.Refuse(event::TaskCompleted{2, "an", json::object()}).code() ==
        ErrorCode::kConflict);
}

TEST_CASE("retryable failures back off doubling up to the cap, then open an incident",
          "[engine][machine][retry]") {
  Step call = AdapterStep("call", "flaky", {{"x", "${ .x }"}}, "");
  call.retry = {6, Seconds(2), Seconds(10)};
  Procedure p = MakeProcedure({call});
  Driver driver(p);
  std::vector<int> attempts_seen;
  driver.departments["flaky"] = [&](const json& c, int attempt) {
    CHECK(c == json{{"x", 1}});
    attempts_seen.push_back(attempt);
    return Down("503 Service Unavailable");
  };
  driver.Send(event::Start{{{"x", 1}}});
  std::vector<int64_t> delays;
  for (const auto& r : Commands<command::ScheduleRetry>(driver.log)) {
    CHECK(r.activation == 1);
    delays.push_back(r.delay_seconds);
  }
  CHECK(delays == std::vector<int64_t>{2, 4, 8, 10, 10});
  CHECK(attempts_seen == std::vector<int>{1, 2, 3, 4, 5, 6});
  auto incidents = Commands<command::OpenIncident>(driver.log);
  REQUIRE(incidents.size() == 1);
  CHECK_THAT(incidents[0].message, Catch::Contains("6 attempts"));
  CHECK_THAT(incidents[0].message, Catch::Contains("503"));
  REQUIRE(driver.state.tokens.size() == 1);
  CHECK(driver.state.tokens[0].waiting == Waiting::kIncident);
  CHECK_FALSE(driver.state.tokens[0].incident_after_success);

  SECTION("retrying the incident re-invokes with attempt 1 under the same activation") {
    attempts_seen.clear();
    driver.departments["flaky"] = [&](const json&, int attempt) {
      attempts_seen.push_back(attempt);
      return Ok({{"done", true}});
    };
    driver.Send(event::RetryIncident{1});
    CHECK(attempts_seen == std::vector<int>{1});
    CHECK(Commands<command::InvokeAdapter>(driver.log).back().activation == 1);
    CHECK(Commands<command::CloseIncident>(driver.log).size() == 1);
    CHECK(driver.state.status == "completed");
  }
  SECTION("retrying a case with no incident is a conflict") {
    driver.Send(event::RetryIncident{1});  // first retry is fine, the department fails again
    CHECK(driver.state.tokens[0].waiting == Waiting::kIncident);
    Status s = driver.Refuse(event::RetryIncident{99});
    CHECK(s.code() == ErrorCode::kConflict);
  }
}

TEST_CASE("the backoff cap holds when it is smaller than the first backoff",
          "[engine][machine][retry]") {
  Step call = AdapterStep("call", "flaky", {}, "");
  call.retry = {3, Seconds(30), Seconds(5)};
  Procedure p = MakeProcedure({call});
  Driver driver(p);
  driver.departments["flaky"] = [](const json&, int) { return Down("timeout"); };
  driver.Send(event::Start{});
  std::vector<int64_t> delays;
  for (const auto& r : Commands<command::ScheduleRetry>(driver.log))
    delays.push_back(r.delay_seconds);
  CHECK(delays == std::vector<int64_t>{5, 5});
}

TEST_CASE("a permanent failure goes to on_error with the error saved", "[engine][machine][retry]") {
  Step call = AdapterStep("verify", "population-db", {}, "done", "mother_record");
  call.on_error = "manual_check";
  Step anon = AdapterStep("anon", "population-db", {}, "done");
  anon.on_error = "manual_check";
  Procedure p = MakeProcedure(
      {call, anon, TaskStep("manual_check", "clerk", "done"), EndStep("done", "completed")});
  Driver driver(p);
  int calls = 0;
  driver.departments["population-db"] = [&](const json&, int) {
    ++calls;
    return Refused("404 no such citizen");
  };
  driver.Send(event::Start{});
  CHECK(calls == 1);  // permanent: no retry
  CHECK(Commands<command::ScheduleRetry>(driver.log).empty());
  CHECK(Commands<command::OpenIncident>(driver.log).empty());
  CHECK(driver.state.data["mother_record_error"] ==
        json{{"step", "verify"}, {"message", "404 no such citizen"}, {"attempt", 1}});
  REQUIRE(driver.open_tasks.size() == 1);
  CHECK(driver.open_tasks[0].step == "manual_check");
  CHECK(Contains(Actions(driver.notes), history_action::kStepErrorHandled));

  Procedure q = MakeProcedure(
      {anon, TaskStep("manual_check", "clerk", "done"), EndStep("done", "completed")});
  Driver d2(q);
  d2.departments["population-db"] = [](const json&, int) { return Refused("400"); };
  d2.Send(event::Start{});
  CHECK(d2.state.data["error"]["step"] == "anon");
}

TEST_CASE("retries used up go to on_error when the step has one", "[engine][machine][retry]") {
  Step call = AdapterStep("verify", "d", {}, "done", "rec");
  call.retry = {2, Seconds(1), Seconds(1)};
  call.on_error = "fallback";
  Procedure p = MakeProcedure({call, EndStep("fallback", "manual"), EndStep("done", "completed")});
  Driver driver(p);
  driver.departments["d"] = [](const json&, int) { return Down("503"); };
  driver.Send(event::Start{});
  CHECK(driver.state.status == "manual");
  CHECK(Commands<command::ScheduleRetry>(driver.log).size() == 1);
  CHECK(driver.state.data["rec_error"]["attempt"] == 2);
}

TEST_CASE("a call that fails to render is a permanent failure", "[engine][machine][adapter]") {
  Procedure p = MakeProcedure({AdapterStep("call", "d", {{"n", "${ .a + 1 }"}}, "")});
  Driver driver(p);
  driver.departments["d"] = [](const json&, int) { return Ok({}); };
  driver.Send(event::Start{{{"a", "text"}}});
  CHECK(Commands<command::InvokeAdapter>(driver.log).empty());
  auto incidents = Commands<command::OpenIncident>(driver.log);
  REQUIRE(incidents.size() == 1);
  CHECK_THAT(incidents[0].message, Catch::Contains("rendering call"));
  CHECK(driver.state.tokens[0].waiting == Waiting::kIncident);
}

TEST_CASE("a 202 parks the step until the signal named by its step id",
          "[engine][machine][adapter][signal]") {
  Procedure p = MakeProcedure({AdapterStep("issue_card", "social-insurance", {}, "done", "card"),
                               EndStep("done", "completed")});
  Driver driver(p);
  driver.departments["social-insurance"] = [](const json&, int) { return Accepted(); };
  driver.Send(event::Start{});
  REQUIRE(driver.state.tokens.size() == 1);
  CHECK(driver.state.tokens[0].waiting == Waiting::kAccepted);
  CHECK(driver.state.tokens[0].signal == "issue_card");
  CHECK(Contains(Actions(driver.notes), history_action::kStepAccepted));
  CHECK(driver.Refuse(event::SignalReceived{"other", nullptr}).code() == ErrorCode::kConflict);

  driver.Send(event::SignalReceived{"issue_card", {{"card_no", "HC-9"}}});
  CHECK(driver.state.status == "completed");
  CHECK(driver.state.data["card"] == json{{"card_no", "HC-9"}});
  CHECK(Contains(Actions(driver.notes), history_action::kStepSucceeded));
}

TEST_CASE("a callback that overtakes its 202 completes the step", "[engine][machine][signal]") {
  Procedure p = MakeProcedure({AdapterStep("issue_card", "si", {}, "", "card")});
  CaseState s;
  Context ctx{kEpoch, "engine"};
  auto started = Apply(p, s, event::Start{}, ctx);
  REQUIRE(started.has_value());
  auto signalled = Apply(p, started->state, event::SignalReceived{"issue_card", {{"n", 1}}}, ctx);
  REQUIRE(signalled.has_value());
  CHECK(signalled->state.status == "completed");
  CHECK(signalled->state.data["card"]["n"] == 1);
  // The 202 arriving afterwards does not fit any more.
  auto late = Apply(p, signalled->state, event::StepAccepted{1}, ctx);
  REQUIRE_FALSE(late.has_value());
  CHECK(late.error().code() == ErrorCode::kConflict);
}

TEST_CASE("a wait step saves the signal's data and continues", "[engine][machine][wait]") {
  Step wait = WaitStep("supplement", "documents", "done", "documents");
  wait.wait_timeout = Duration{30, DurationUnit::kDays};
  wait.on_timeout = "refused";
  Procedure p = MakeProcedure({wait, EndStep("done", "completed"), EndStep("refused", "refused")});
  Driver driver(p);
  Advance a = driver.Send(event::Start{});
  auto timers = Commands<command::SetTimer>(a.commands);
  REQUIRE(timers.size() == 1);
  CHECK(timers[0].kind == TimerKind::kWaitTimeout);
  CHECK(timers[0].after == Duration{30, DurationUnit::kDays});

  SECTION("the signal arrives") {
    Advance s = driver.Send(event::SignalReceived{"documents", {{"files", 2}}});
    CHECK(driver.state.status == "completed");
    CHECK(driver.state.data["documents"]["files"] == 2);
    CHECK(Commands<command::CancelTimers>(s.commands).size() == 1);
    CHECK(s.notes[0].action == history_action::kSignalReceived);
  }
  SECTION("the timeout fires first and takes on_timeout") {
    Advance t = driver.Send(event::TimerFired{1, TimerKind::kWaitTimeout});
    CHECK(driver.state.status == "refused");
    CHECK(Contains(Actions(t.notes), history_action::kStepTimedOut));
    CHECK(driver.Refuse(event::SignalReceived{"documents", nullptr}).code() ==
          ErrorCode::kConflict);
  }
  SECTION("a timer of the wrong kind for the activation is stale") {
    Advance t = driver.Send(event::TimerFired{1, TimerKind::kRetry});
    CHECK(t.stale);
    CHECK(t.state == driver.state);
  }
}

TEST_CASE("a wait timeout without on_timeout opens an incident; retry waits again",
          "[engine][machine][wait][incident]") {
  Step wait = WaitStep("supplement", "documents", "");
  wait.wait_timeout = Seconds(60);
  Procedure p = MakeProcedure({wait});
  Driver driver(p);
  driver.Send(event::Start{});
  driver.Send(event::TimerFired{1, TimerKind::kWaitTimeout});
  CHECK(driver.state.tokens[0].waiting == Waiting::kIncident);
  CHECK_THAT(driver.state.tokens[0].incident, Catch::Contains("timed out after 60s"));
  Advance retried = driver.Send(event::RetryIncident{1});
  CHECK(driver.state.tokens[0].waiting == Waiting::kSignal);
  CHECK(driver.state.tokens[0].activation == 1);
  CHECK(Commands<command::SetTimer>(retried.commands).size() == 1);
}

TEST_CASE("a wait that pauses the deadline stops and restarts the clock",
          "[engine][machine][wait][clock]") {
  Step wait = WaitStep("supplement", "documents", "review");
  wait.pauses_deadline = true;
  Procedure p = MakeProcedure(
      {TaskStep("check", "clerk", "supplement"), wait, TaskStep("review", "clerk", "")});
  Driver driver(p);
  driver.Send(event::Start{});
  CHECK_FALSE(driver.state.clock_paused);
  driver.ctx.now = kEpoch + std::chrono::hours(1);
  Advance paused = driver.Send(event::TaskCompleted{1, "an", json::object()});
  CHECK(Commands<command::PauseClock>(paused.commands).size() == 1);
  CHECK(driver.state.clock_paused);
  CHECK(driver.state.paused_since == 1767225600 + 3600);
  driver.ctx.now = kEpoch + std::chrono::hours(5);
  Advance resumed = driver.Send(event::SignalReceived{"documents", nullptr});
  CHECK(Commands<command::ResumeClock>(resumed.commands).size() == 1);
  CHECK_FALSE(driver.state.clock_paused);
  CHECK(driver.state.paused_seconds == 4 * 3600);
  CHECK(Commands<command::PauseClock>(resumed.commands).empty());
}

TEST_CASE("cancelling a case while its clock is paused closes everything and restarts it",
          "[engine][machine][cancel][clock]") {
  Step wait = WaitStep("supplement", "documents", "");
  wait.pauses_deadline = true;
  Step task = TaskStep("review", "clerk");
  task.deadline = Seconds(60);
  Procedure p = MakeProcedure({ParallelStep("both", {"supplement", "review"}), wait, task});
  Driver driver(p);
  driver.Send(event::Start{});
  CHECK(driver.state.clock_paused);
  Advance c = driver.Send(event::Cancel{"withdrawn by the applicant"});
  CHECK(driver.state.status == "cancelled");
  CHECK(driver.state.reason == "withdrawn by the applicant");
  CHECK(driver.state.tokens.empty());
  CHECK(CommandTypes(c.commands) ==
        std::vector<std::string>{"close_task", "cancel_timers", "finish", "resume_clock"});
  CHECK(Actions(c.notes) == std::vector<std::string>{history_action::kCaseCancelled});
  Status again = driver.Refuse(event::Cancel{"again"});
  CHECK(again.code() == ErrorCode::kConflict);
  CHECK_THAT(again.message(), Catch::Contains("cancelled"));
}

TEST_CASE("call_procedure starts a sub-case and saves how it ended", "[engine][machine][child]") {
  Step related = MakeStep("related", StepKind::kCallProcedure, "done");
  related.procedure = "health-card-issue";
  related.input = {{"child", "${ .child }"}, {"kind", "newborn"}};
  related.save_as = "card_case";
  Procedure p = MakeProcedure({related, EndStep("done", "completed")});
  Driver driver(p);
  Advance a = driver.Send(event::Start{{{"child", {{"name", "Minh"}}}}});
  auto starts = Commands<command::StartChild>(a.commands);
  REQUIRE(starts.size() == 1);
  CHECK(starts[0].procedure == "health-card-issue");
  CHECK(starts[0].input == json{{"child", {{"name", "Minh"}}}, {"kind", "newborn"}});
  CHECK(driver.Refuse(event::StepSucceeded{1, nullptr, std::nullopt}).code() ==
        ErrorCode::kConflict);
  driver.Send(event::ChildEnded{1, "c-77", "completed", {{"card_no", "HC-3"}}});
  CHECK(driver.state.status == "completed");
  CHECK(driver.state.data["card_case"] ==
        json{{"case", "c-77"}, {"outcome", "completed"}, {"data", {{"card_no", "HC-3"}}}});
}

TEST_CASE("reused evidence is noted with its source case", "[engine][machine][adapter]") {
  Step verify = AdapterStep("verify", "population-db", {}, "", "rec");
  verify.reuse = Duration{90, DurationUnit::kDays};
  Procedure p = MakeProcedure({verify});
  Context ctx{kEpoch, "engine"};
  auto a = Apply(p, CaseState{}, event::Start{}, ctx);
  REQUIRE(a.has_value());
  auto invoke = Commands<command::InvokeAdapter>(a->commands);
  REQUIRE(invoke.size() == 1);
  CHECK(invoke[0].reuse == Duration{90, DurationUnit::kDays});
  auto r = Apply(p, a->state, event::StepSucceeded{1, {{"v", 1}}, std::string("c-1")}, ctx);
  REQUIRE(r.has_value());
  REQUIRE(r->notes.size() >= 1);
  CHECK(r->notes[0].action == history_action::kStepReused);
  CHECK(r->notes[0].details["source_case"] == "c-1");
  CHECK(r->state.data["rec"]["v"] == 1);
  CHECK(r->state.status == "completed");
}

TEST_CASE("a loop of decisions is bounded by an incident", "[engine][machine][decision]") {
  Procedure p = MakeProcedure({DecisionStep("a", {If(".stop", "end"), Go("b")}),
                               DecisionStep("b", {Go("a")}), EndStep("end", "completed")});
  Driver driver(p);
  Advance a = driver.Send(event::Start{{{"stop", false}}});
  CHECK(driver.state.status == "open");
  REQUIRE(driver.state.tokens.size() == 1);
  CHECK(driver.state.tokens[0].waiting == Waiting::kIncident);
  CHECK_THAT(driver.state.tokens[0].incident, Catch::Contains("1000"));
  int entered = 0;
  for (const auto& n : a.notes) entered += n.action == history_action::kStepEntered;
  CHECK(entered == kMaxStepsPerEvent);
  // Retrying gives the loop another budget; it still does not end.
  driver.Send(event::RetryIncident{driver.state.tokens[0].activation});
  CHECK(driver.state.tokens[0].waiting == Waiting::kIncident);
}

TEST_CASE("stale timers and late reports change nothing", "[engine][machine][stale]") {
  Step call = AdapterStep("call", "d", {}, "wait");
  call.retry = {3, Seconds(1), Seconds(1)};
  Procedure p = MakeProcedure({call, WaitStep("wait", "go", "")});
  CaseState s;
  Context ctx{kEpoch, "engine"};
  auto started = Apply(p, s, event::Start{}, ctx);
  REQUIRE(started.has_value());
  auto failed = Apply(p, started->state, event::StepFailed{1, "503", true, 1}, ctx);
  REQUIRE(failed.has_value());
  CHECK(failed->state.tokens[0].waiting == Waiting::kRetry);
  CHECK(failed->state.tokens[0].attempt == 2);
  // The same failure reported twice (a worker's lease ran out) is late.
  auto twice = Apply(p, failed->state, event::TimerFired{1, TimerKind::kRetry}, ctx);
  REQUIRE(twice.has_value());
  auto late_failure = Apply(p, twice->state, event::StepFailed{1, "503", true, 1}, ctx);
  REQUIRE(late_failure.has_value());
  CHECK(late_failure->stale);
  CHECK(late_failure->state == twice->state);
  auto ok = Apply(p, twice->state, event::StepSucceeded{1, {}, std::nullopt}, ctx);
  REQUIRE(ok.has_value());
  CHECK(ok->state.tokens[0].step == "wait");
  // The retry timer of the left activation fires late.
  auto late_timer = Apply(p, ok->state, event::TimerFired{1, TimerKind::kRetry}, ctx);
  REQUIRE(late_timer.has_value());
  CHECK(late_timer->stale);
  CHECK(late_timer->commands.empty());
  CHECK(late_timer->notes.empty());
  CHECK(late_timer->state == ok->state);
  // And on a finished case.
  auto done = Apply(p, ok->state, event::SignalReceived{"go", nullptr}, ctx);
  REQUIRE(done.has_value());
  auto after = Apply(p, done->state, event::TimerFired{2, TimerKind::kWaitTimeout}, ctx);
  REQUIRE(after.has_value());
  CHECK(after->stale);
}

TEST_CASE("events that do not fit the state are conflicts", "[engine][machine][conflict]") {
  Procedure p = MakeProcedure({TaskStep("review", "clerk", "")});
  Driver driver(p);
  CHECK(driver.Refuse(event::TaskCompleted{1, "an", json::object()}).code() ==
        ErrorCode::kConflict);  // not started
  CHECK(driver.Refuse(event::Cancel{"x"}).code() == ErrorCode::kConflict);
  driver.Send(event::Start{});
  CHECK(driver.Refuse(event::Start{}).code() == ErrorCode::kConflict);
  Status never = driver.Refuse(event::TaskCompleted{7, "an", json::object()});
  CHECK(never.code() == ErrorCode::kConflict);
  CHECK_THAT(never.message(), Catch::Contains("never issued"));
  Status wrong = driver.Refuse(event::StepSucceeded{1, nullptr, std::nullopt});
  CHECK(wrong.code() == ErrorCode::kConflict);
  CHECK_THAT(wrong.message(), Catch::Contains("waiting for task"));
  CHECK(driver.Refuse(event::StepFailed{1, "x", true, 1}).code() == ErrorCode::kConflict);
  CHECK(driver.Refuse(event::ChildEnded{1, "c", "completed", nullptr}).code() ==
        ErrorCode::kConflict);
  CHECK(driver.Refuse(event::TimerFired{9, TimerKind::kRetry}).code() == ErrorCode::kConflict);
  Status nobody = driver.Refuse(event::SignalReceived{"documents", nullptr});
  CHECK(nobody.code() == ErrorCode::kConflict);
  CHECK_THAT(nobody.message(), Catch::Contains("documents"));
  driver.Send(event::TaskCompleted{1, "an", json::object()});
  CHECK(driver.state.status == "completed");
  CHECK(driver.Refuse(event::Cancel{"late"}).code() == ErrorCode::kConflict);
  CHECK(driver.Refuse(event::SignalReceived{"x", nullptr}).code() == ErrorCode::kConflict);
}

TEST_CASE("a state naming a step the procedure lacks is refused", "[engine][machine]") {
  Procedure p = MakeProcedure({TaskStep("review", "clerk", "")});
  CaseState s;
  Context ctx{kEpoch, "engine"};
  auto started = Apply(p, s, event::Start{}, ctx);
  REQUIRE(started.has_value());
  Procedure other = MakeProcedure({TaskStep("approve", "clerk", "")});
  auto r = Apply(other, started->state, event::TaskCompleted{1, "an", json::object()}, ctx);
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().code() == ErrorCode::kInvalid);
  CHECK_THAT(r.error().message(), Catch::Contains("review"));
}

// A whole procedure, once straight through and once with the state written out and read back
// between every event, in separate Apply calls: the two runs must agree on everything.
TEST_CASE("a run resumed from stored JSON after every event matches an uninterrupted run",
          "[engine][machine][json]") {
  Step verify = AdapterStep("verify", "pop", {{"id", "${ .id }"}}, "review", "rec");
  verify.retry = {3, Seconds(2), Seconds(60)};
  Step review = TaskStep("review", "clerk", "", "review");
  review.next = {If(".review.approved", "register"), Go("refused")};
  review.deadline = Seconds(3600);
  Procedure p =
      MakeProcedure({verify, review, ParallelStep("register", {"residence", "card"}, "done"),
                     AdapterStep("residence", "police", {}, "", "residence"),
                     AdapterStep("card", "si", {}, "", "card"), EndStep("done", "completed"),
                     EndStep("refused", "refused")});
  std::vector<Event> script = {
      event::Start{{{"id", "0123"}}},
      event::StepFailed{1, "503", true, 1},
      event::TimerFired{1, TimerKind::kRetry},
      event::StepSucceeded{1, {{"name", "B"}}, std::nullopt},
      event::TimerFired{2, TimerKind::kTaskDeadline},
      event::TaskCompleted{2, "an", {{"approved", true}}},
      event::StepAccepted{5},
      event::StepSucceeded{4, {{"r", 1}}, std::nullopt},
      event::SignalReceived{"card", {{"c", 2}}},
  };
  Context ctx{kEpoch, "engine"};
  CaseState straight;
  CaseState resumed;
  std::vector<json> straight_commands;
  std::vector<json> resumed_commands;
  for (const Event& e : script) {
    auto a = Apply(p, straight, e, ctx);
    INFO(EventToJson(e).dump());
    REQUIRE(a.has_value());
    straight = a->state;
    for (const auto& c : a->commands) straight_commands.push_back(CommandToJson(c));

    std::string stored = resumed.ToJson().dump();
    auto loaded = CaseState::FromJson(json::parse(stored));
    REQUIRE(loaded.has_value());
    auto b = Apply(p, *loaded, e, ctx);
    REQUIRE(b.has_value());
    resumed = b->state;
    for (const auto& c : b->commands) resumed_commands.push_back(CommandToJson(c));
    CHECK(straight.ToJson() == resumed.ToJson());
  }
  CHECK(straight.status == "completed");
  CHECK(straight.data["residence"]["r"] == 1);
  CHECK(straight.data["card"]["c"] == 2);
  CHECK(straight_commands == resumed_commands);
  CHECK(straight_commands.back()["type"] == "finish");
}

TEST_CASE("a malformed stored state is refused with what is wrong", "[engine][machine][json]") {
  Procedure p = MakeProcedure(
      {ParallelStep("fork", {"a", "b"}), TaskStep("a", "clerk"), TaskStep("b", "clerk")});
  CaseState s;
  auto started = Apply(p, s, event::Start{{{"k", 1}}}, Context{kEpoch, "x"});
  REQUIRE(started.has_value());
  json good = started->state.ToJson();
  REQUIRE(CaseState::FromJson(good).has_value());
  CHECK(CaseState::FromJson(json::parse(good.dump())).value() == started->state);

  // Format 2 (what the store writes): the data kept beside the state, not in it. A format 1
  // state (written before) keeps its own data and ignores what is beside it.
  json beside = started->state.ToJson(/*with_data=*/false);
  CHECK(beside["format"] == 2);
  CHECK_FALSE(beside.contains("data"));
  CHECK(CaseState::FromJson(beside, started->state.data).value() == started->state);
  CHECK(CaseState::FromJson(good, json{{"k", 2}}).value() == started->state);
  json no_data = beside;
  no_data["format"] = 1;
  CHECK_THAT(CaseState::FromJson(no_data).error().message(), Catch::Contains("data"));
  json future = beside;
  future["format"] = 3;
  CHECK_THAT(CaseState::FromJson(future).error().message(), Catch::Contains("format"));
  CHECK_THAT(CaseState::FromJson(beside, json::array()).error().message(),
             Catch::Contains("data"));

  auto refused = [](json j) {
    auto r = CaseState::FromJson(j);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code() == ErrorCode::kInvalid);
    return r.error().message();
  };
  json bad = good;
  bad["data"] = json::array();
  CHECK_THAT(refused(bad), Catch::Contains("data"));
  bad = good;
  bad["tokens"][1]["waiting"] = "sleeping";
  CHECK_THAT(refused(bad), Catch::Contains("sleeping"));
  bad = good;
  bad["tokens"][0]["activation"] = "one";
  CHECK_THAT(refused(bad), Catch::Contains("activation"));
  bad = good;
  bad["joins"][0]["pending"] = json::array({2});
  CHECK_THAT(refused(bad), Catch::Contains("join"));
  bad = good;
  bad["tokens"][2]["activation"] = 99;
  CHECK_THAT(refused(bad), Catch::Contains("range"));
  bad = good;
  bad.erase("next_activation");
  CHECK_THAT(refused(bad), Catch::Contains("next_activation"));
  CHECK_THAT(refused(json("text")), Catch::Contains("object"));
  bad = good;
  bad["status"] = "completed";
  CHECK_THAT(refused(bad), Catch::Contains("finished"));
}

TEST_CASE("events survive a JSON round trip and commands are written as JSON",
          "[engine][machine][json]") {
  std::vector<Event> events = {
      event::Start{{{"a", 1}}},
      event::StepSucceeded{3, {{"r", true}}, std::string("c-9")},
      event::StepSucceeded{3, nullptr, std::nullopt},
      event::StepFailed{3, "boom", true, 2},
      event::StepAccepted{4},
      event::TaskCompleted{5, "an", {{"approved", true}}},
      event::SignalReceived{"documents", {{"files", 1}}},
      event::TimerFired{6, TimerKind::kTaskDeadline},
      event::ChildEnded{7, "c-1", "refused", {{"x", 1}}},
      event::Cancel{"withdrawn"},
      event::RetryIncident{8},
  };
  for (const Event& e : events) {
    json j = EventToJson(e);
    auto back = EventFromJson(json::parse(j.dump()));
    INFO(j.dump());
    REQUIRE(back.has_value());
    CHECK(back->index() == e.index());
    CHECK(EventToJson(*back) == j);
  }
  CHECK_FALSE(EventFromJson({{"type", "explode"}}).has_value());
  CHECK_FALSE(
      EventFromJson({{"type", "timer_fired"}, {"activation", 1}, {"kind", "x"}}).has_value());
  CHECK_FALSE(EventFromJson({{"type", "step_accepted"}, {"activation", "1"}}).has_value());

  json invoke = CommandToJson(
      command::InvokeAdapter{3, "verify", "pop", {{"id", 1}}, 2, Seconds(10), std::nullopt});
  CHECK(invoke == json{{"type", "invoke_adapter"},
                       {"activation", 3},
                       {"step", "verify"},
                       {"department", "pop"},
                       {"call", {{"id", 1}}},
                       {"attempt", 2},
                       {"timeout", "10s"},
                       {"reuse", nullptr}});
  json timer = CommandToJson(
      command::SetTimer{4, TimerKind::kTaskDeadline, Duration{1, DurationUnit::kWorkingDays}});
  CHECK(timer["after"] == "1 working day");
  CHECK(timer["kind"] == "task_deadline");
}

// The design's own example, loaded by the real loader, run end to end by the driver.
TEST_CASE("the design's birth registration runs end to end", "[engine][machine][example]") {
  const char* yaml = R"(procedure: birth-registration-linked
version: 1
title: Birth registration
agency: commune-justice
input:
  required: [child, mother]
  properties:
    child: {type: object, required: [full_name, birth_date]}
    mother:
      type: object
      required: [citizen_id]
      properties:
        citizen_id: {type: string, pattern: "^[0-9]{12}$"}
roles:
  justice_officer: {agency: commune-justice}
  justice_head: {agency: commune-justice}
start: verify_mother
steps:
  verify_mother:
    adapter: population-db
    call:
      operation: get_citizen
      citizen_id: ${ .mother.citizen_id }
    save_as: mother_record
    timeout: 10s
    retry: {attempts: 5, backoff: 2s, max_backoff: 1m}
    on_error: review
    next: review
  review:
    task: Review the birth declaration
    role: justice_officer
    form:
      approved: {type: boolean, required: true}
      note: string
    save_as: review
    deadline: 1 working day
    escalate_to: justice_head
    next:
      - if: ${ .review.approved }
        goto: register
      - goto: refused
  register:
    parallel: [residence, health_card]
    next: done
  residence:
    adapter: police-residence
    call: {operation: register_newborn}
    save_as: residence
  health_card:
    adapter: social-insurance
    call: {operation: issue_card}
    save_as: insurance_card
  done: {end: completed}
  refused:
    end: refused
    reason: ${ .review.note }
)";
  workflows::LoadResult loaded = workflows::LoadProcedure(yaml, "birth.yaml");
  for (const auto& d : loaded.diagnostics) INFO(d.ToString());
  REQUIRE(loaded.procedure.has_value());
  const Procedure& p = *loaded.procedure;
  json input = {{"child", {{"full_name", "Minh"}, {"birth_date", "2026-01-02"}}},
                {"mother", {{"citizen_id", "001234567890"}}}};

  for (bool approve : {true, false}) {
    Driver driver(p);
    int population_calls = 0;
    driver.departments["population-db"] = [&](const json& call, int attempt) {
      ++population_calls;
      CHECK(call["citizen_id"] == "001234567890");
      return attempt < 3 ? Down("503") : Ok({{"name", "Tran Thi B"}});
    };
    driver.departments["police-residence"] = [](const json&, int) { return Ok({{"id", 1}}); };
    driver.departments["social-insurance"] = [](const json&, int) { return Accepted(); };
    driver.clerk = [&](const command::OpenTask& task) -> std::optional<json> {
      CHECK(task.role == "justice_officer");
      return json{{"approved", approve}, {"note", "mother record mismatch"}};
    };
    driver.Send(event::Start{input});
    CHECK(population_calls == 3);
    CHECK(driver.state.data["mother_record"]["name"] == "Tran Thi B");
    if (approve) {
      CHECK(driver.state.status == "open");  // the insurance card waits for its callback
      driver.Send(event::SignalReceived{"health_card", {{"card_no", "HC-1"}}});
      CHECK(driver.state.status == "completed");
      CHECK(driver.state.data["insurance_card"]["card_no"] == "HC-1");
      CHECK(driver.state.data["residence"]["id"] == 1);
    } else {
      CHECK(driver.state.status == "refused");
      CHECK(driver.state.reason == "mother record mismatch");
    }
  }
}

}  // namespace
}  // namespace wf::engine
