// The state machine (engine/machine.hpp): Apply, and the Machine's entering of steps and moving
// of tokens (joins, retries, incidents, the end of a case, the statutory clock). Its event
// handlers are in machine_events.cpp, the JSON forms of its types in machine_json.cpp.
#include "engine/machine.hpp"

#include <algorithm>
#include <chrono>
#include <deque>
#include <exception>
#include <stdexcept>
#include <string>
#include <utility>

#include "engine/history_action.hpp"
#include "engine/machine_internal.hpp"
#include "workflows/expression.hpp"

namespace wf::engine {

using nlohmann::json;
using workflows::Procedure;
using workflows::Step;
using workflows::StepKind;

std::string IdempotencyKey(const std::string& case_id, const std::string& step,
                           int64_t activation) {
  return case_id + "/" + step + "/" + std::to_string(activation);
}

std::string TaskId(const std::string& case_id, int64_t activation) {
  return case_id + "." + std::to_string(activation);
}

const Token* CaseState::FindByActivation(int64_t activation) const {
  for (const Token& token : tokens) {
    if (token.activation == activation) return &token;
  }
  return nullptr;
}

// ---------------------------------------------------------------------------------------------
// The machine: entering steps and moving tokens

namespace {

int64_t UnixSeconds(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

}  // namespace

namespace detail {

Status Machine::Handle(const Event& event) {
  if (Status s = CheckSteps(); !s.ok()) return s;
  Status s = std::visit([this](const auto& e) { return On(e); }, event);
  if (!s.ok() || out_.stale) return s;
  Run();
  UpdateClock();
  for (const Token& t : state().tokens) {
    if (t.waiting == Waiting::kNothing) {
      return Status::Internal("state machine left token " + std::to_string(t.id) + " at step '" +
                              t.step + "' waiting for nothing");
    }
  }
  return Status::Ok();
}

Advance Machine::Take(const CaseState& original) {
  if (out_.stale) return Advance{original, {}, {}, true};
  return std::move(out_);
}

Status Machine::CheckSteps() const {
  for (const Token& t : out_.state.tokens) {
    if (procedure_.FindStep(t.step) == nullptr) {
      return Status::Invalid("the case is at step '" + t.step + "', which procedure '" +
                             procedure_.name + "' version " + std::to_string(procedure_.version) +
                             " does not have");
    }
  }
  return Status::Ok();
}

void Machine::Spawn(const std::string& step_id, int64_t join) {
  Token token;
  token.id = state().next_activation;
  token.activation = state().next_activation++;
  token.step = step_id;
  token.join = join;
  ready_.push_back(token.id);
  state().tokens.push_back(std::move(token));
}

void Machine::Move(Token& token, const std::string& target) {
  if (procedure_.FindStep(target) == nullptr) {
    Incident(token, "step '" + token.step + "' leads to '" + target + "', which is not a step",
             true);
    return;
  }
  token.step = target;
  token.activation = state().next_activation++;
  token.waiting = Waiting::kNothing;
  token.attempt = 0;
  token.signal.clear();
  token.incident.clear();
  token.incident_after_success = false;
  token.escalated = false;
  ready_.push_back(token.id);
}

void Machine::Run() {
  while (!ready_.empty() && state().IsOpen()) {
    int64_t id = ready_.front();
    ready_.pop_front();
    Token* t = FindById(id);
    if (t != nullptr && t->waiting == Waiting::kNothing) Enter(*t);
  }
  ready_.clear();
}

void Machine::Enter(Token& token) {
  const Step& step = StepOf(token);
  if (++entries_ > kMaxStepsPerEvent) {
    Incident(token,
             "more than " + std::to_string(kMaxStepsPerEvent) +
                 " steps entered while handling one event: a loop of decisions that never "
                 "waits? Retry the incident to continue",
             false);
    return;
  }
  Note(history_action::kStepEntered, step.id,
       {{"activation", token.activation}, {"kind", workflows::StepKindName(step.kind)}});
  switch (step.kind) {
    case StepKind::kAdapter:
      token.attempt = 1;
      Invoke(token);
      return;
    case StepKind::kTask: {
      token.waiting = Waiting::kTask;
      std::string agency = procedure_.agency;
      if (auto it = procedure_.roles.find(step.role); it != procedure_.roles.end()) {
        if (!it->second.agency.empty()) agency = it->second.agency;
      }
      Emit(command::OpenTask{token.activation, step.id, step.task, step.role, agency,
                             step.form_schema, step.deadline, step.escalate_to});
      if (step.deadline) {
        Emit(command::SetTimer{token.activation, TimerKind::kTaskDeadline, *step.deadline});
      }
      Note(history_action::kTaskOpened, step.id,
           {{"activation", token.activation}, {"role", step.role}, {"title", step.task}});
      return;
    }
    case StepKind::kParallel:
      EnterParallel(token, step);
      return;
    case StepKind::kWait:
      token.waiting = Waiting::kSignal;
      token.signal = step.signal.empty() ? step.id : step.signal;
      if (step.wait_timeout) {
        Emit(command::SetTimer{token.activation, TimerKind::kWaitTimeout, *step.wait_timeout});
      }
      return;
    case StepKind::kCallProcedure: {
      Result<json> input = workflows::RenderTemplate(step.input, state().data, evaluator());
      if (!input) {
        NoteRenderFailure(token, "input", input.error().message());
        Failed(token, "rendering input: " + input.error().message());
        return;
      }
      token.waiting = Waiting::kChild;
      Emit(command::StartChild{token.activation, step.procedure, *input});
      Note(history_action::kChildStarted, step.id,
           {{"activation", token.activation}, {"procedure", step.procedure}});
      return;
    }
    case StepKind::kEnd: {
      std::string reason;
      if (step.reason) {
        Result<json> value = evaluator().Evaluate(step.reason->expression, state().data);
        if (!value) {
          Incident(token, "rendering reason: " + value.error().message(), false);
          return;
        }
        if (value->is_string()) {
          reason = value->get<std::string>();
        } else if (!value->is_null()) {
          reason = value->dump();
        }
      }
      FinishCase(step.outcome.empty() ? kStatusCompleted : step.outcome, reason, step.id);
      return;
    }
    case StepKind::kDecision:
      TakeNext(token);
      return;
  }
}

void Machine::EnterParallel(Token& token, const Step& step) {
  for (const std::string& branch : step.branches) {
    if (procedure_.FindStep(branch) == nullptr) {
      Incident(token, "branch '" + branch + "' is not a step", false);
      return;
    }
  }
  if (step.branches.empty()) {
    TakeNext(token);
    return;
  }
  token.waiting = Waiting::kBranches;
  int64_t activation = token.activation;
  Join join{activation, step.id, {}};
  // Spawn appends to the token list: `token` must not be used after this loop.
  for (const std::string& branch : step.branches) {
    join.pending.push_back(state().next_activation);
    Spawn(branch, activation);
  }
  state().joins[activation] = std::move(join);
}

void Machine::Invoke(Token& token) {
  const Step& step = StepOf(token);
  Result<json> call = workflows::RenderTemplate(step.call, state().data, evaluator());
  if (!call) {
    NoteRenderFailure(token, "call", call.error().message());
    Failed(token, "rendering call: " + call.error().message());
    return;
  }
  token.waiting = Waiting::kAdapter;
  Emit(command::InvokeAdapter{token.activation, step.id, step.department, *call, token.attempt,
                              step.timeout, step.reuse});
}

void Machine::NoteRenderFailure(const Token& token, const char* what, const std::string& message) {
  Note(history_action::kStepFailed, token.step,
       {{"activation", token.activation},
        {"attempt", token.attempt},
        {"message", std::string("rendering ") + what + ": " + message},
        {"retryable", false}});
}

void Machine::Succeeded(Token& token, const json& result,
                        const std::optional<std::string>& source) {
  const Step& step = StepOf(token);
  // Member by member: an initializer list builds and checks a pair array for each member and
  // copies the result once more (this runs on every step).
  json details = json::object();
  details["activation"] = token.activation;
  details["saved_as"] = step.save_as.empty() ? json(nullptr) : json(step.save_as);
  details["result"] = result;
  if (source) {
    details["source_case"] = *source;
    Note(history_action::kStepReused, step.id, std::move(details));
  } else {
    Note(history_action::kStepSucceeded, step.id, std::move(details));
  }
  if (token.waiting == Waiting::kAccepted || token.waiting == Waiting::kRetry) {
    Emit(command::CancelTimers{token.activation});
  }
  token.waiting = Waiting::kNothing;
  Save(step.save_as, result);
  TakeNext(token);
}

void Machine::Failed(Token& token, const std::string& message) {
  const Step& step = StepOf(token);
  if (step.on_error.empty()) {
    Incident(token, message, false);
    return;
  }
  std::string key = step.save_as.empty() ? "error" : step.save_as + "_error";
  Save(key, {{"step", step.id}, {"message", message}, {"attempt", token.attempt}});
  Note(history_action::kStepErrorHandled, step.id,
       {{"activation", token.activation}, {"saved_as", key}, {"on_error", step.on_error}});
  token.waiting = Waiting::kNothing;
  Move(token, step.on_error);
}

void Machine::Incident(Token& token, const std::string& message, bool after_success) {
  token.waiting = Waiting::kIncident;
  token.incident = message;
  token.incident_after_success = after_success;
  Emit(command::OpenIncident{token.activation, token.step, message});
  Note(history_action::kIncidentOpened, token.step, {{"activation", token.activation}, {"message", message}});
}

void Machine::Release(Token& token) {
  const Step& step = StepOf(token);
  bool timed = (token.waiting == Waiting::kTask && step.deadline) ||
               (token.waiting == Waiting::kSignal && step.wait_timeout);
  if (timed) Emit(command::CancelTimers{token.activation});
  token.waiting = Waiting::kNothing;
}

void Machine::TakeNext(Token& token) {
  const Step& step = StepOf(token);
  if (step.next.empty()) {
    EndToken(token);
    return;
  }
  for (const workflows::Transition& transition : step.next) {
    if (transition.condition) {
      Result<bool> holds = transition.condition->expression.EvaluateCondition(state().data, evaluator());
      if (!holds) {
        Incident(token, "choosing the next step: " + holds.error().message(), true);
        return;
      }
      if (!*holds) continue;
    }
    Move(token, transition.target);
    return;
  }
  Incident(token, "choosing the next step: no condition holds and there is no plain goto", true);
}

void Machine::EndToken(Token& token) {
  if (token.join == 0) {
    FinishCase(kStatusCompleted, "", token.step);
    return;
  }
  int64_t join_activation = token.join;
  int64_t id = token.id;
  std::string branch_step = token.step;
  auto join_it = state().joins.find(join_activation);
  if (join_it == state().joins.end()) {
    // Only a state built by hand can get here: FromJson refuses tokens without their join.
    throw std::logic_error("token " + std::to_string(id) + " belongs to no join");
  }
  Join& join = join_it->second;
  join.pending.erase(std::remove(join.pending.begin(), join.pending.end(), id), join.pending.end());
  Note(history_action::kBranchJoined, branch_step,
       {{"activation", token.activation},
        {"branch", id},
        {"parallel", join.step},
        {"remaining", join.pending.size()}});
  bool last = join.pending.empty();
  std::erase_if(state().tokens, [id](const Token& t) { return t.id == id; });
  if (!last) return;
  state().joins.erase(join_it);
  Token* parallel = FindByActivation(join_activation);
  if (parallel == nullptr) throw std::logic_error("a join without its parallel token");
  parallel->waiting = Waiting::kNothing;
  TakeNext(*parallel);
}

void Machine::CancelToken(const Token& token, const std::string& why) {
  const Step& step = StepOf(token);
  switch (token.waiting) {
    case Waiting::kTask:
      Emit(command::CloseTask{token.activation, why});
      if (step.deadline) Emit(command::CancelTimers{token.activation});
      break;
    case Waiting::kSignal:
      if (step.wait_timeout) Emit(command::CancelTimers{token.activation});
      break;
    case Waiting::kChild:
      Emit(command::CancelChild{token.activation});
      break;
    case Waiting::kIncident:
      Emit(command::CloseIncident{token.activation});
      break;
    case Waiting::kAdapter:
    case Waiting::kRetry:
    case Waiting::kAccepted:
      Emit(command::CancelTimers{token.activation});
      break;
    case Waiting::kNothing:
    case Waiting::kBranches:
      break;
  }
}

void Machine::CancelEverything(const std::string& why) {
  for (const Token& t : state().tokens) CancelToken(t, why);
  state().tokens.clear();
  state().joins.clear();
  ready_.clear();
}

void Machine::FinishCase(const std::string& status, const std::string& reason,
                         const std::string& step) {
  CancelEverything("finished");
  state().status = status;
  state().reason = reason;
  Note(history_action::kCaseFinished, step, {{"status", status}, {"reason", reason}});
  Emit(command::Finish{status, reason});
}

void Machine::UpdateClock() {
  bool want = false;
  for (const Token& t : state().tokens) {
    if (t.waiting == Waiting::kSignal && StepOf(t).pauses_deadline) want = true;
  }
  int64_t now = UnixSeconds(ctx_.now);
  if (want && !state().clock_paused) {
    state().clock_paused = true;
    state().paused_since = now;
    Emit(command::PauseClock{});
  } else if (!want && state().clock_paused) {
    state().clock_paused = false;
    state().paused_seconds += std::max<int64_t>(0, now - state().paused_since);
    state().paused_since = 0;
    Emit(command::ResumeClock{});
  }
}

}  // namespace detail

Result<Advance> Apply(const Procedure& procedure, const CaseState& state, const Event& event,
                      const Context& ctx) {
  try {
    detail::Machine machine(procedure, state, ctx);
    Status status = machine.Handle(event);
    if (!status.ok()) return status;
    return machine.Take(state);
  } catch (const std::exception& e) {
    // Every expected failure is a Status above; this is the last net for a bug.
    return Status::Internal(std::string("state machine: ") + e.what());
  }
}

}  // namespace wf::engine
