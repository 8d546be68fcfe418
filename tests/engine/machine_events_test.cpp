// The machine's handling of a department's 202 and its accept timeout, and of work the engine
// gave up on (engine/machine_events.cpp), driven through Apply without a database.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "engine/history_action.hpp"
#include "engine/machine.hpp"
#include "tests/support/cases.hpp"

namespace wf::engine {
namespace {

using nlohmann::json;
using workflows::Duration;
using workflows::DurationUnit;

constexpr const char* kAccepting = R"(procedure: accepting
version: 1
title: A department that answers later
agency: test-agency
steps:
  ask:
    adapter: registry
    call: {operation: look_up}
    save_as: answer
    accept_timeout: 2 days
    retry: {attempts: 2, backoff: 1s, max_backoff: 1s}
    next: done
  done: {end: completed}
)";

constexpr const char* kAcceptingWithOnError = R"(procedure: accepting-on-error
version: 1
title: A department that answers later, and a way round it
agency: test-agency
roles:
  clerk: {}
steps:
  ask:
    adapter: registry
    call: {operation: look_up}
    retry: {attempts: 1}
    on_error: by_hand
    next: done
  by_hand:
    task: Look it up by hand
    role: clerk
    next: done
  done: {end: completed}
)";

// One case of a procedure, advanced event by event; every step must be accepted.
class Case {
 public:
  explicit Case(const char* yaml) : procedure_(testing::ProcedureFromYaml(yaml)) {
    Send(event::Start{});
  }

  Advance Send(const Event& event) {
    Result<Advance> r = Apply(procedure_, state, event, Context{});
    INFO("event " << EventToJson(event).dump());
    if (!r) INFO("error: " << r.error().message());
    REQUIRE(r.has_value());
    // Stored and read back, as the runtime does between events.
    Result<CaseState> reread = CaseState::FromJson(json::parse(r->state.ToJson().dump()));
    REQUIRE(reread.has_value());
    state = *reread;
    return *r;
  }

  CaseState state;

 private:
  const workflows::Procedure& procedure_;
};

template <typename C>
std::vector<C> Commands(const Advance& advance) {
  std::vector<C> out;
  for (const Command& c : advance.commands) {
    if (const C* one = std::get_if<C>(&c)) out.push_back(*one);
  }
  return out;
}

const HistoryNote* FindNote(const Advance& advance, const std::string& action) {
  for (const HistoryNote& note : advance.notes) {
    if (note.action == action) return &note;
  }
  return nullptr;
}

}  // namespace

TEST_CASE("a 202 sets the step's accept timeout, and its firing calls the department again",
          "[engine][machine][accept]") {
  Case c(kAccepting);
  REQUIRE(c.state.tokens.size() == 1);
  const int64_t activation = c.state.tokens[0].activation;

  Advance accepted = c.Send(event::StepAccepted{activation});
  CHECK(c.state.tokens[0].waiting == Waiting::kAccepted);
  auto timers = Commands<command::SetTimer>(accepted);
  REQUIRE(timers.size() == 1);
  CHECK(timers[0].activation == activation);
  CHECK(timers[0].kind == TimerKind::kAcceptTimeout);
  CHECK(timers[0].after == Duration{2, DurationUnit::kDays});
  const HistoryNote* note = FindNote(accepted, history_action::kStepAccepted);
  REQUIRE(note != nullptr);
  CHECK(note->details["accept_timeout"] == "2 days");

  // No callback in two days: a retryable failure of attempt 1, retried under the same activation.
  Advance fired = c.Send(event::TimerFired{activation, TimerKind::kAcceptTimeout});
  const HistoryNote* failed = FindNote(fired, history_action::kStepFailed);
  REQUIRE(failed != nullptr);
  CHECK(failed->details["message"] ==
        "department 'registry' accepted the call but sent no result within 2 days");
  CHECK(failed->details["retryable"] == true);
  REQUIRE(Commands<command::ScheduleRetry>(fired).size() == 1);
  CHECK(c.state.tokens[0].waiting == Waiting::kRetry);

  Advance again = c.Send(event::TimerFired{activation, TimerKind::kRetry});
  auto invokes = Commands<command::InvokeAdapter>(again);
  REQUIRE(invokes.size() == 1);
  CHECK(invokes[0].activation == activation);  // so the same idempotency key
  CHECK(invokes[0].attempt == 2);

  // Accepted again, and again no result: the retries are used up and an incident names why.
  c.Send(event::StepAccepted{activation});
  Advance last = c.Send(event::TimerFired{activation, TimerKind::kAcceptTimeout});
  auto incidents = Commands<command::OpenIncident>(last);
  REQUIRE(incidents.size() == 1);
  CHECK(incidents[0].message ==
        "gave up after 2 attempts: department 'registry' accepted the call but sent no result "
        "within 2 days");
  CHECK(c.state.tokens[0].waiting == Waiting::kIncident);
}

TEST_CASE("a callback before the accept timeout cancels it, and the timer is stale afterwards",
          "[engine][machine][accept]") {
  Case c(kAccepting);
  const int64_t activation = c.state.tokens[0].activation;
  c.Send(event::StepAccepted{activation});
  Advance called_back = c.Send(event::SignalReceived{"ask", {{"found", true}}});
  auto cancels = Commands<command::CancelTimers>(called_back);
  REQUIRE(cancels.size() == 1);
  CHECK(cancels[0].activation == activation);
  CHECK(c.state.status == "completed");
  CHECK(c.state.data["answer"] == json{{"found", true}});

  // A timer that fired before it was dropped changes nothing.
  Result<Advance> late = Apply(testing::ProcedureFromYaml(kAccepting), c.state,
                               event::TimerFired{activation, TimerKind::kAcceptTimeout}, Context{});
  REQUIRE(late.has_value());
  CHECK(late->stale);
}

TEST_CASE("an accept timeout that fires while the step waits for something else is stale",
          "[engine][machine][accept]") {
  Case c(kAccepting);
  const int64_t activation = c.state.tokens[0].activation;
  // The call is still out (no 202 yet).
  Result<Advance> early =
      Apply(testing::ProcedureFromYaml(kAccepting), c.state,
            event::TimerFired{activation, TimerKind::kAcceptTimeout}, Context{});
  REQUIRE(early.has_value());
  CHECK(early->stale);
}

TEST_CASE("without accept_timeout a 202 waits 7 days, then the step's on_error is taken",
          "[engine][machine][accept]") {
  Case c(kAcceptingWithOnError);
  const int64_t activation = c.state.tokens[0].activation;
  Advance accepted = c.Send(event::StepAccepted{activation});
  auto timers = Commands<command::SetTimer>(accepted);
  REQUIRE(timers.size() == 1);
  CHECK(timers[0].after == workflows::kDefaultAcceptTimeout);
  CHECK(timers[0].after == Duration{7, DurationUnit::kDays});

  c.Send(event::TimerFired{activation, TimerKind::kAcceptTimeout});
  REQUIRE(c.state.tokens.size() == 1);
  CHECK(c.state.tokens[0].step == "by_hand");
  CHECK_THAT(
      c.state.data["error"]["message"].get<std::string>(),
      Catch::EndsWith("department 'registry' accepted the call but sent no result within 7 days"));
}

TEST_CASE("work the engine gave up on fails its step: on_error, or an incident",
          "[engine][machine][work_failed]") {
  SECTION("an adapter step with on_error takes it") {
    Case c(kAcceptingWithOnError);
    const int64_t activation = c.state.tokens[0].activation;
    Advance failed = c.Send(event::WorkFailed{activation, "boom"});
    CHECK(Commands<command::CancelTimers>(failed).size() == 1);  // its queued call is dropped
    CHECK(c.state.tokens[0].step == "by_hand");
    CHECK(c.state.data["error"]["message"] == "boom");
  }
  SECTION("an adapter step without on_error opens an incident, even while accepted") {
    Case c(kAccepting);
    const int64_t activation = c.state.tokens[0].activation;
    c.Send(event::StepAccepted{activation});
    Advance failed = c.Send(event::WorkFailed{activation, "boom"});
    auto incidents = Commands<command::OpenIncident>(failed);
    REQUIRE(incidents.size() == 1);
    CHECK(incidents[0].message == "boom");
    CHECK(c.state.tokens[0].waiting == Waiting::kIncident);
    // Failing again changes nothing: the incident is already open.
    Result<Advance> again = Apply(testing::ProcedureFromYaml(kAccepting), c.state,
                                  event::WorkFailed{activation, "boom"}, Context{});
    REQUIRE(again.has_value());
    CHECK(again->stale);
  }
  SECTION("a task step opens an incident and its task is closed") {
    Case c(kAcceptingWithOnError);
    c.Send(event::StepFailed{c.state.tokens[0].activation, "404", false, 1});
    REQUIRE(c.state.tokens[0].waiting == Waiting::kTask);
    Advance failed = c.Send(event::WorkFailed{c.state.tokens[0].activation, "deadline timer"});
    CHECK(Commands<command::CloseTask>(failed).size() == 1);
    CHECK(Commands<command::OpenIncident>(failed).size() == 1);
  }
}

TEST_CASE("the accept timeout and work_failed have names in JSON", "[engine][machine][json]") {
  CHECK(std::string(TimerKindName(TimerKind::kAcceptTimeout)) == "accept_timeout");
  CHECK(ParseTimerKind("accept_timeout") == TimerKind::kAcceptTimeout);
  // Timer names stored before it keep their meaning.
  CHECK(ParseTimerKind("retry") == TimerKind::kRetry);
  CHECK(ParseTimerKind("wait_timeout") == TimerKind::kWaitTimeout);
  CHECK(ParseTimerKind("task_deadline") == TimerKind::kTaskDeadline);

  Event timer = event::TimerFired{4, TimerKind::kAcceptTimeout};
  json timer_json = EventToJson(timer);
  CHECK(timer_json["kind"] == "accept_timeout");
  Result<Event> timer_back = EventFromJson(timer_json);
  REQUIRE(timer_back.has_value());
  CHECK(std::get<event::TimerFired>(*timer_back).kind == TimerKind::kAcceptTimeout);

  json failed_json = EventToJson(event::WorkFailed{3, "boom"});
  CHECK(failed_json == json{{"type", "work_failed"}, {"activation", 3}, {"message", "boom"}});
  Result<Event> failed_back = EventFromJson(failed_json);
  REQUIRE(failed_back.has_value());
  CHECK(std::get<event::WorkFailed>(*failed_back).message == "boom");
}

}  // namespace wf::engine
