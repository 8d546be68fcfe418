#pragma once

// The state machine at work (engine/machine.hpp's Apply): one Machine per Apply. Its event
// handlers, which check an event against the state, are in machine_events.cpp; entering steps and
// moving tokens, which the handlers lead to, are in machine.cpp. Private to engine/: only those
// two files include it.

#include <cstdint>
#include <deque>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>

#include "engine/machine.hpp"

namespace wf::engine::detail {

// One Apply: a working copy of the state, the commands and notes so far, and a queue of tokens
// about to enter their step. Entering is queued rather than recursive so that a long chain of
// decisions neither deepens the stack nor escapes the step budget.
class Machine {
 public:
  Machine(const workflows::Procedure& procedure, const CaseState& state, const Context& ctx)
      : procedure_(procedure), ctx_(ctx) {
    out_.state = state;
  }

  Status Handle(const Event& event);

  Advance Take(const CaseState& original);

 private:
  CaseState& state() { return out_.state; }

  // A stored state must name only steps the procedure has, or every lookup below could fail.
  Status CheckSteps() const;

  const workflows::Step& StepOf(const Token& token) const {
    return *procedure_.FindStep(token.step);
  }

  Token* FindById(int64_t id) {
    for (Token& t : state().tokens) {
      if (t.id == id) return &t;
    }
    return nullptr;
  }
  Token* FindByActivation(int64_t activation) {
    for (Token& t : state().tokens) {
      if (t.activation == activation) return &t;
    }
    return nullptr;
  }

  void Note(std::string action, std::string step, nlohmann::json details) {
    out_.notes.push_back({std::move(action), std::move(step), std::move(details)});
  }
  void Emit(Command command) { out_.commands.push_back(std::move(command)); }
  void Save(const std::string& key, nlohmann::json value) {
    if (!key.empty()) state().data[key] = std::move(value);
  }

  // --- checks shared by the event handlers (machine_events.cpp)

  Status RequireOpen(const char* what);

  // The token at `activation`, or a conflict saying why there is none.
  Result<Token*> Active(int64_t activation, const char* what);

  Status WrongWait(const Token& t, const char* what);

  // --- event handlers (machine_events.cpp)

  Status On(const event::Start& e);
  Status On(const event::StepSucceeded& e);
  Status On(const event::StepFailed& e);
  Status On(const event::StepAccepted& e);
  Status On(const event::TaskCompleted& e);
  Status On(const event::SignalReceived& e);
  Status On(const event::TimerFired& e);
  Status On(const event::ChildEnded& e);
  Status On(const event::Cancel& e);
  Status On(const event::RetryIncident& e);
  Status On(const event::WorkFailed& e);

  // One attempt of an adapter step failed: schedules the next (retryable, attempts left) or
  // fails the step (Failed).
  void FailAttempt(Token& token, int attempt, const std::string& message, bool retryable);

  // --- moving tokens (machine.cpp)

  // A new token entering `step_id`; its id is the activation it gets.
  void Spawn(const std::string& step_id, int64_t join);

  // Sends `token` into `target` under a fresh activation; it enters when the queue reaches it.
  void Move(Token& token, const std::string& target);

  void Run();

  void Enter(Token& token);

  void EnterParallel(Token& token, const workflows::Step& step);

  // Renders the call and sends one attempt (token.attempt); a render error is permanent.
  void Invoke(Token& token);

  void NoteRenderFailure(const Token& token, const char* what, const std::string& message);

  void Succeeded(Token& token, const nlohmann::json& result,
                 const std::optional<std::string>& source);

  // A permanent failure: on_error if the step has one, else an incident.
  void Failed(Token& token, const std::string& message);

  void Incident(Token& token, const std::string& message, bool after_success);

  // The token's wait is over: drop the timers that guarded it.
  void Release(Token& token);

  // Chooses the step's next and moves there, or ends the token.
  void TakeNext(Token& token);

  // A token reached a step with no next.
  void EndToken(Token& token);

  // Stops one token's outstanding work.
  void CancelToken(const Token& token, const std::string& why);

  void CancelEverything(const std::string& why);

  void FinishCase(const std::string& status, const std::string& reason, const std::string& step);

  // Stops or restarts the statutory clock to match the waits that pause it.
  void UpdateClock();

  // The delay before attempt `next` (2, 3, ...): backoff, doubling, capped at max_backoff.
  static int64_t BackoffSeconds(const workflows::RetryPolicy& policy, int next);

  // Who runs the procedure's expressions (Context::evaluator, or this thread).
  workflows::Evaluator& evaluator() const {
    return ctx_.evaluator != nullptr ? *ctx_.evaluator : workflows::InProcessEvaluator();
  }

  const workflows::Procedure& procedure_;
  const Context& ctx_;
  Advance out_;
  std::deque<int64_t> ready_;  // ids of tokens about to enter their step
  int entries_ = 0;            // step entries so far in this Apply
};

}  // namespace wf::engine::detail
