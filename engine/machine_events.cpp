// The state machine's event handlers (engine/machine_internal.hpp): each checks that its event
// fits the case's state (open, the activation still current, the token waiting for this) and
// then moves the tokens it concerns (machine.cpp).
#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "engine/history_action.hpp"
#include "engine/machine.hpp"
#include "engine/machine_internal.hpp"
#include "workflows/schema.hpp"

namespace wf::engine::detail {

using nlohmann::json;
using workflows::Step;

namespace {

std::string JoinViolations(const std::vector<workflows::SchemaViolation>& violations) {
  std::string out;
  for (const auto& v : violations) {
    if (!out.empty()) out += "; ";
    out += v.path + ": " + v.message;
  }
  return out;
}

}  // namespace

Status Machine::RequireOpen(const char* what) {
  if (state().status == kStatusNew) {
    return Status::Conflict(std::string(what) + ": the case has not started");
  }
  if (!state().IsOpen()) {
    return Status::Conflict(std::string(what) + ": the case is already " + state().status);
  }
  return Status::Ok();
}

Result<Token*> Machine::Active(int64_t activation, const char* what) {
  if (Status s = RequireOpen(what); !s.ok()) return s;
  if (activation < 1 || activation >= state().next_activation) {
    return Status::Conflict(std::string(what) + ": activation " + std::to_string(activation) +
                            " was never issued for this case");
  }
  Token* t = FindByActivation(activation);
  if (t == nullptr) {
    return Status::Conflict(std::string(what) + ": activation " + std::to_string(activation) +
                            " is over (the case has moved on from that step)");
  }
  return t;
}

Status Machine::WrongWait(const Token& t, const char* what) {
  return Status::Conflict(std::string(what) + ": step '" + t.step + "' (activation " +
                          std::to_string(t.activation) + ") is waiting for " +
                          WaitingName(t.waiting) + ", not for this");
}

Status Machine::On(const event::Start& e) {
  if (state().status != kStatusNew) {
    return Status::Conflict("start: the case has already started (status " + state().status + ")");
  }
  if (!e.data.is_object()) return Status::Invalid("$: the case data must be a JSON object");
  if (!procedure_.input_schema.is_null()) {
    auto violations =
        workflows::ValidateData(procedure_.input_schema, e.data, procedure_.patterns.get());
    if (!violations.empty()) return Status::Invalid(JoinViolations(violations));
  }
  std::string start = procedure_.start;
  if (start.empty() && !procedure_.steps.empty()) start = procedure_.steps.front().id;
  if (procedure_.FindStep(start) == nullptr) {
    return Status::Invalid("procedure '" + procedure_.name + "' has no start step '" + start + "'");
  }
  state().status = kStatusOpen;
  state().data = e.data;
  Note(history_action::kCaseStarted, "", {{"data", e.data}});
  Spawn(start, 0);
  return Status::Ok();
}

Status Machine::On(const event::StepSucceeded& e) {
  Result<Token*> t = Active(e.activation, "step result");
  if (!t) return t.error();
  Token& token = **t;
  if (token.waiting != Waiting::kAdapter && token.waiting != Waiting::kAccepted) {
    return WrongWait(token, "step result");
  }
  Succeeded(token, e.result, e.reused_from);
  return Status::Ok();
}

Status Machine::On(const event::StepFailed& e) {
  Result<Token*> t = Active(e.activation, "step failure");
  if (!t) return t.error();
  Token& token = **t;
  // kChild: the runtime refused to start the sub-case (nested too deep), a permanent failure.
  if (token.waiting != Waiting::kAdapter && token.waiting != Waiting::kChild) {
    return WrongWait(token, "step failure");
  }
  if (e.attempt != token.attempt) {
    out_.stale = true;  // the report of an attempt that is no longer the one out
    return Status::Ok();
  }
  FailAttempt(token, e.attempt, e.message, e.retryable);
  return Status::Ok();
}

void Machine::FailAttempt(Token& token, int attempt, const std::string& message, bool retryable) {
  const Step& step = StepOf(token);
  Note(history_action::kStepFailed, step.id,
       {{"activation", token.activation},
        {"attempt", attempt},
        {"message", message},
        {"retryable", retryable}});
  int attempts = std::max(1, step.retry.attempts);
  if (retryable && token.attempt < attempts) {
    int next = token.attempt + 1;
    int64_t delay = BackoffSeconds(step.retry, next);
    token.waiting = Waiting::kRetry;
    token.attempt = next;
    Emit(command::ScheduleRetry{token.activation, delay, next});
    Note(history_action::kStepRetryScheduled, step.id,
         {{"activation", token.activation}, {"attempt", next}, {"delay_seconds", delay}});
    return;
  }
  std::string text = message;
  if (retryable) text = "gave up after " + std::to_string(token.attempt) + " attempts: " + text;
  Failed(token, text);
}

Status Machine::On(const event::StepAccepted& e) {
  Result<Token*> t = Active(e.activation, "step accepted");
  if (!t) return t.error();
  Token& token = **t;
  if (token.waiting != Waiting::kAdapter) return WrongWait(token, "step accepted");
  token.waiting = Waiting::kAccepted;
  token.signal = token.step;
  workflows::Duration limit =
      StepOf(token).accept_timeout.value_or(workflows::kDefaultAcceptTimeout);
  Emit(command::SetTimer{token.activation, TimerKind::kAcceptTimeout, limit});
  nlohmann::json details = {{"activation", token.activation}, {"accept_timeout", limit.ToString()}};
  if (!e.receipt.is_null()) details["receipt"] = e.receipt;
  Note(history_action::kStepAccepted, token.step, std::move(details));
  return Status::Ok();
}

Status Machine::On(const event::TaskCompleted& e) {
  Result<Token*> t = Active(e.activation, "complete task");
  if (!t) return t.error();
  Token& token = **t;
  if (token.waiting != Waiting::kTask) return WrongWait(token, "complete task");
  const Step& step = StepOf(token);
  if (!e.values.is_object()) return Status::Invalid("$: the form values must be an object");
  if (!step.form_schema.is_null()) {
    auto violations =
        workflows::ValidateData(step.form_schema, e.values, procedure_.patterns.get());
    if (!violations.empty()) {
      return Status::Invalid("the form of task '" + step.id + "': " + JoinViolations(violations));
    }
  }
  json details = {{"activation", token.activation},
                  {"actor", e.actor.empty() ? ctx_.actor : e.actor},
                  {"values", e.values}};
  for (const char* key : {"decision", "approved"}) {
    if (e.values.contains(key) && !details.contains("decision"))
      details["decision"] = e.values[key];
  }
  for (const char* key : {"reason", "note"}) {
    if (e.values.contains(key) && !details.contains("reason")) details["reason"] = e.values[key];
  }
  Note(history_action::kTaskCompleted, step.id, std::move(details));
  Emit(command::CloseTask{token.activation, "completed"});
  Release(token);
  Save(step.save_as, e.values);
  TakeNext(token);
  return Status::Ok();
}

Status Machine::On(const event::SignalReceived& e) {
  if (Status s = RequireOpen("signal"); !s.ok()) return s;
  std::vector<int64_t> receivers;
  for (const Token& t : state().tokens) {
    bool wait = t.waiting == Waiting::kSignal && t.signal == e.name;
    // A callback may overtake the 202 that announced it: an adapter step whose call is still
    // out takes its own signal as well.
    bool callback =
        (t.waiting == Waiting::kAccepted || t.waiting == Waiting::kAdapter) && t.step == e.name;
    if (wait || callback) receivers.push_back(t.id);
  }
  if (receivers.empty()) {
    return Status::Conflict("signal '" + e.name + "': no step of the case is waiting for it");
  }
  for (int64_t id : receivers) {
    Token* t = FindById(id);
    if (t == nullptr || !state().IsOpen()) continue;  // an earlier receiver ended the case
    Note(history_action::kSignalReceived, t->step,
         {{"name", e.name}, {"activation", t->activation}, {"data", e.data}});
    if (t->waiting == Waiting::kSignal) {
      const Step& step = StepOf(*t);
      Release(*t);
      Save(step.save_as, e.data);
      TakeNext(*t);
    } else {
      // The call may still be queued or in flight: drop it, its answer is no longer needed.
      if (t->waiting == Waiting::kAdapter) Emit(command::CancelTimers{t->activation});
      Succeeded(*t, e.data, std::nullopt);
    }
  }
  return Status::Ok();
}

Status Machine::On(const event::TimerFired& e) {
  if (state().IsFinished()) {
    out_.stale = true;  // timers of a finished case are simply late
    return Status::Ok();
  }
  if (state().status == kStatusNew) return Status::Conflict("timer: the case has not started");
  if (e.activation < 1 || e.activation >= state().next_activation) {
    return Status::Conflict("timer: activation " + std::to_string(e.activation) +
                            " was never issued for this case");
  }
  Token* t = FindByActivation(e.activation);
  Waiting expected = Waiting::kTask;
  switch (e.kind) {
    case TimerKind::kRetry:
      expected = Waiting::kRetry;
      break;
    case TimerKind::kWaitTimeout:
      expected = Waiting::kSignal;
      break;
    case TimerKind::kAcceptTimeout:
      expected = Waiting::kAccepted;
      break;
    case TimerKind::kTaskDeadline:
      break;
  }
  if (t == nullptr || t->waiting != expected ||
      (e.kind == TimerKind::kTaskDeadline && t->escalated)) {
    out_.stale = true;
    return Status::Ok();
  }
  Token& token = *t;
  const Step& step = StepOf(token);
  Note(history_action::kTimerFired, step.id,
       {{"activation", token.activation}, {"kind", TimerKindName(e.kind)}});
  switch (e.kind) {
    case TimerKind::kRetry:
      Invoke(token);
      break;
    case TimerKind::kWaitTimeout:
      if (!step.on_timeout.empty()) {
        Note(history_action::kStepTimedOut, step.id,
             {{"activation", token.activation}, {"on_timeout", step.on_timeout}});
        token.waiting = Waiting::kNothing;
        Move(token, step.on_timeout);
      } else {
        Incident(token,
                 "the wait for signal '" + token.signal + "' timed out" +
                     (step.wait_timeout ? " after " + step.wait_timeout->ToString() : "") +
                     " and the step has no on_timeout",
                 false);
      }
      break;
    case TimerKind::kTaskDeadline:
      if (!step.escalate_to.empty()) {
        token.escalated = true;
        Emit(command::EscalateTask{token.activation, step.escalate_to});
        Note(history_action::kTaskEscalated, step.id,
             {{"activation", token.activation}, {"to_role", step.escalate_to}});
      } else {
        token.escalated = true;  // overdue is noted once
        Note(history_action::kTaskOverdue, step.id, {{"activation", token.activation}});
      }
      break;
    case TimerKind::kAcceptTimeout: {
      // The callback is lost, or the department never got round to it: call again under the
      // same idempotency key, so an idempotent department answers the result (or 202) again.
      workflows::Duration limit = step.accept_timeout.value_or(workflows::kDefaultAcceptTimeout);
      FailAttempt(token, token.attempt,
                  "department '" + step.department +
                      "' accepted the call but sent no result within " + limit.ToString(),
                  true);
      break;
    }
  }
  return Status::Ok();
}

Status Machine::On(const event::ChildEnded& e) {
  Result<Token*> t = Active(e.activation, "sub-case ended");
  if (!t) return t.error();
  Token& token = **t;
  if (token.waiting != Waiting::kChild) return WrongWait(token, "sub-case ended");
  const Step& step = StepOf(token);
  Note(history_action::kChildEnded, step.id,
       {{"activation", token.activation}, {"case", e.child}, {"outcome", e.outcome}});
  token.waiting = Waiting::kNothing;
  Save(step.save_as, {{"case", e.child}, {"outcome", e.outcome}, {"data", e.data}});
  TakeNext(token);
  return Status::Ok();
}

Status Machine::On(const event::Cancel& e) {
  if (Status s = RequireOpen("cancel"); !s.ok()) return s;
  CancelEverything("cancelled");
  state().status = kStatusCancelled;
  state().reason = e.reason;
  Note(history_action::kCaseCancelled, "", {{"reason", e.reason}});
  Emit(command::Finish{kStatusCancelled, e.reason});
  return Status::Ok();
}

Status Machine::On(const event::RetryIncident& e) {
  Result<Token*> t = Active(e.activation, "retry incident");
  if (!t) return t.error();
  Token& token = **t;
  if (token.waiting != Waiting::kIncident) {
    return Status::Conflict("retry incident: step '" + token.step + "' (activation " +
                            std::to_string(token.activation) + ") has no open incident");
  }
  Emit(command::CloseIncident{token.activation});
  Note(history_action::kIncidentRetried, token.step, {{"activation", token.activation}});
  bool after_success = token.incident_after_success;
  token.waiting = Waiting::kNothing;
  token.incident.clear();
  token.incident_after_success = false;
  if (after_success) {
    TakeNext(token);
  } else {
    ready_.push_back(token.id);  // enter again under the same activation
  }
  return Status::Ok();
}

Status Machine::On(const event::WorkFailed& e) {
  Result<Token*> t = Active(e.activation, "work failed");
  if (!t) return t.error();
  Token& token = **t;
  switch (token.waiting) {
    case Waiting::kAdapter:
    case Waiting::kRetry:
    case Waiting::kAccepted:
    case Waiting::kChild:
      CancelToken(token, "failed");  // drops its queued calls, timers or sub-case
      Failed(token, e.message);
      return Status::Ok();
    case Waiting::kTask:
    case Waiting::kSignal:
      CancelToken(token, "failed");
      Incident(token, e.message, false);
      return Status::Ok();
    case Waiting::kNothing:
    case Waiting::kBranches:
    case Waiting::kIncident:
      break;
  }
  out_.stale = true;  // nothing of this activation is outstanding: the failed work is moot
  return Status::Ok();
}

int64_t Machine::BackoffSeconds(const workflows::RetryPolicy& policy, int next) {
  int64_t cap = std::max<int64_t>(0, policy.max_backoff.ApproximateSeconds());
  int64_t delay = std::max<int64_t>(0, policy.backoff.ApproximateSeconds());
  for (int i = 2; i < next && delay < cap; ++i) delay *= 2;
  return std::min(delay, cap);
}

}  // namespace wf::engine::detail
