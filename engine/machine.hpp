#pragma once

// The state machine of one case (DESIGN.md, decision 1: pure core, effects at the edge).
//
// Apply(procedure, state, event, context) -> new state + commands + history notes. It does no
// I/O and reads no clock (`Context::now` comes in), so the same inputs always give the same
// outputs; tests drive it without a database or a network. The runtime (scheduler + store)
// loads a case's CaseState, applies one event, then in one transaction stores the new state,
// appends the notes to the hash-chained history and enqueues the commands as work.
//
// Activations. Every entry into a step gets a fresh activation number A, per case, starting at
// 1 and increasing; it never repeats within a case. Other modules derive ids from it:
//   idempotency key  "<case>/<step>/<A>"  (IdempotencyKey below; every attempt of one activation
//                                          shares it, so a department applies it once)
//   task id          "<case>.<A>"         (TaskId below)
// Events and commands name the activation they concern; an event for an activation the case is
// not at is either a conflict or a harmless late arrival (see Apply).
//
// Tokens. A token is a thread of control: the case starts with one; a parallel step forks one per
// branch. A token's id is the activation of the first step it entered, so ids never collide
// with each other and need no counter of their own. A token belongs to a join: the activation of
// the parallel step that forked it, or 0 for the case's main line. The parallel step's own token
// stays at the parallel step (waiting kBranches) until its branches have all ended.

#include <chrono>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "workflows/duration.hpp"
#include "workflows/procedure.hpp"
#include "workflows/status.hpp"

namespace wf::engine {

// Case statuses the machine sets. A finished case's status is otherwise the `end:` outcome of
// the end step reached (e.g. "completed", "refused", "approved").
inline constexpr const char* kStatusNew = "";  // a CaseState that has not seen Start
inline constexpr const char* kStatusOpen = "open";
inline constexpr const char* kStatusCompleted =
    "completed";  // a step with no next on the main line
inline constexpr const char* kStatusCancelled = "cancelled";

// At most this many step entries happen in one Apply; the next entry opens an incident instead
// (a loop of decisions that never reaches a waiting step must not hang the engine).
inline constexpr int kMaxStepsPerEvent = 1000;

// What a token is waiting for.
enum class Waiting {
  kNothing,   // transient inside Apply only; never in a returned state
  kAdapter,   // an InvokeAdapter is out: StepSucceeded, StepFailed or StepAccepted
  kRetry,     // a ScheduleRetry is out: TimerFired{kRetry}
  kAccepted,  // the department answered 202: a signal named by the step id (and
              // TimerFired{kAcceptTimeout})
  kTask,      // an OpenTask is out: TaskCompleted (and TimerFired{kTaskDeadline})
  kSignal,    // a wait step: SignalReceived{Token::signal} (and TimerFired{kWaitTimeout})
  kChild,     // a StartChild is out: ChildEnded
  kBranches,  // a parallel step: its branch tokens (see Join)
  kIncident,  // an OpenIncident is out: RetryIncident
};

// "nothing", "adapter", "retry", "accepted", "task", "signal", "child", "branches", "incident".
const char* WaitingName(Waiting waiting);
std::optional<Waiting> ParseWaiting(const std::string& name);

enum class TimerKind {
  kRetry,         // the delay before the next attempt of an adapter step
  kWaitTimeout,   // a wait step's `timeout:`
  kTaskDeadline,  // a task step's `deadline:`
  // An adapter step's `accept_timeout:` (default workflows::kDefaultAcceptTimeout), set when the
  // department answers 202: no result by then is a retryable failure of the attempt.
  kAcceptTimeout,
};

// "retry", "wait_timeout", "task_deadline", "accept_timeout".
const char* TimerKindName(TimerKind kind);
std::optional<TimerKind> ParseTimerKind(const std::string& name);

// One thread of control of a case (see the file comment).
struct Token {
  int64_t id = 0;          // the activation of the first step this token entered
  std::string step;        // the step it is at
  int64_t activation = 0;  // its current entry into `step`
  Waiting waiting = Waiting::kNothing;
  int attempt = 0;       // adapter steps: the attempt out or scheduled, 1-based; else 0
  int64_t join = 0;      // the parallel activation that forked it; 0: the main line
  std::string signal;    // kSignal: the wait's signal name; kAccepted: the step id
  std::string incident;  // kIncident: the incident's message
  // kIncident: what RetryIncident does. false: enter the step again under the same activation
  // (an adapter step re-invokes with attempt 1, keeping its idempotency key); true: the step's
  // work is done and only choosing the next step failed, so choose again.
  bool incident_after_success = false;
  bool escalated = false;  // kTask: the deadline passed and the task went to escalate_to

  friend bool operator==(const Token&, const Token&) = default;
};

// The branches of one parallel step activation that have not ended yet.
struct Join {
  int64_t activation = 0;        // of the parallel step; its token waits kBranches
  std::string step;              // the parallel step's id
  std::vector<int64_t> pending;  // ids of the branch tokens still running, in fork order

  friend bool operator==(const Join&, const Join&) = default;
};

// The run-time state of one case: everything needed to resume it from the stored JSON after a
// crash. A plain value; copy freely.
struct CaseState {
  std::string status = kStatusNew;  // "", "open", an end outcome, or "cancelled"
  std::string reason;               // the end step's rendered `reason:`, or Cancel's reason
  nlohmann::json data = nlohmann::json::object();  // the case data; always an object
  int64_t next_activation = 1;                     // the activation the next step entry gets
  std::vector<Token> tokens;      // active tokens in creation order; empty once finished
  std::map<int64_t, Join> joins;  // by parallel activation
  // The statutory clock stops while some token waits at a `pauses_deadline` wait step.
  bool clock_paused = false;
  int64_t paused_since = 0;    // unix seconds when it last stopped (meaningful when paused)
  int64_t paused_seconds = 0;  // total seconds stopped in intervals that have ended

  bool IsOpen() const { return status == kStatusOpen; }
  bool IsFinished() const { return status != kStatusNew && status != kStatusOpen; }
  // The token with this activation, or nullptr.
  const Token* FindByActivation(int64_t activation) const;

  // A JSON object with every member above ("format": 1 marks the layout). Without `with_data`
  // the layout is "format": 2, every member but "data": the data is kept beside it (the store
  // writes a case's data once, in cases.data).
  nlohmann::json ToJson(bool with_data = true) const;
  // The inverse of ToJson: a format 2 state takes `data_beside` as its data (a format 1 state
  // ignores it). Malformed input (missing members, wrong types, unknown waiting names, tokens or
  // joins that do not refer to each other) is kInvalid naming what is wrong.
  static Result<CaseState> FromJson(const nlohmann::json& json,
                                    nlohmann::json data_beside = nlohmann::json::object());

  friend bool operator==(const CaseState&, const CaseState&) = default;
};

// ----------------------------------------------------------------------------------------------
// Events: what happened to a case. The runtime builds them from CLI commands, adapter outcomes,
// timers and sub-cases.

namespace event {

// A new case with its input data (a JSON object; checked against the procedure's `input:`).
struct Start {
  nlohmann::json data = nlohmann::json::object();
};
// An adapter step's call succeeded (200/201, exit 0), or evidence was reused (Decision 8):
// `reused_from` then names the case that verified it.
struct StepSucceeded {
  int64_t activation = 0;
  nlohmann::json result;
  std::optional<std::string> reused_from;
};
// One attempt of an adapter step failed. `attempt` is the attempt that failed.
struct StepFailed {
  int64_t activation = 0;
  std::string message;
  bool retryable = false;
  int attempt = 1;
};
// The department answered 202: the step waits for the signal named by its step id.
struct StepAccepted {
  int64_t activation = 0;
  // What the department said when it took the call, kept in the history (the `wf` adapter: the
  // other deployment's case id); null: nothing.
  nlohmann::json receipt = nullptr;
};
// A clerk completed the task of `activation`. `values` are the form values, already typed
// (true, 3, "text"), as a JSON object.
struct TaskCompleted {
  int64_t activation = 0;
  std::string actor;
  nlohmann::json values = nlohmann::json::object();
};
// `wf signal CASE NAME --data FILE`.
struct SignalReceived {
  std::string name;
  nlohmann::json data;
};
// A timer set by SetTimer or ScheduleRetry went off.
struct TimerFired {
  int64_t activation = 0;
  TimerKind kind = TimerKind::kRetry;
};
// The sub-case started by StartChild{activation} finished.
struct ChildEnded {
  int64_t activation = 0;
  std::string child;    // the sub-case's id
  std::string outcome;  // its final status
  nlohmann::json data;  // its final data
};
// `wf cancel CASE --reason TEXT`.
struct Cancel {
  std::string reason;
};
// An operator resolved the cause of the incident at `activation` and asks to try again.
struct RetryIncident {
  int64_t activation = 0;
};
// The engine could not carry out, or could not commit the outcome of, work for `activation`
// however often it tried (a deterministic exception, an outcome that cannot be stored): the
// step fails permanently with `message` (its on_error, or an incident). The last net of
// engine/scheduler.cpp; never enqueued as work.
struct WorkFailed {
  int64_t activation = 0;
  std::string message;
};

}  // namespace event

using Event =
    std::variant<event::Start, event::StepSucceeded, event::StepFailed, event::StepAccepted,
                 event::TaskCompleted, event::SignalReceived, event::TimerFired, event::ChildEnded,
                 event::Cancel, event::RetryIncident, event::WorkFailed>;

// The event as JSON: {"type": "step_succeeded", "activation": 3, ...} with the member names
// above ("type" is the snake_case struct name). Used to enqueue events as work.
nlohmann::json EventToJson(const Event& event);
// The inverse; kInvalid on an unknown type or wrong member types.
Result<Event> EventFromJson(const nlohmann::json& json);

// ----------------------------------------------------------------------------------------------
// Commands: effects the runtime carries out after it has committed the new state. Each names
// the activation it concerns; carrying one out twice must be harmless (at-least-once).

namespace command {

// Call a department: one attempt. The runtime builds the idempotency key
// IdempotencyKey(case, step, activation), applies `timeout` to the attempt, and with `reuse`
// first looks for evidence another case verified within that period. It answers with
// StepSucceeded, StepFailed (retryable for timeouts, 408/429/5xx, exit 75) or StepAccepted.
struct InvokeAdapter {
  int64_t activation = 0;
  std::string step;
  std::string department;
  nlohmann::json call;  // the step's `call:` rendered over the case data
  int attempt = 1;
  std::optional<workflows::Duration> timeout;
  std::optional<workflows::Duration> reuse;
};
// Fire TimerFired{activation, kRetry} after `delay_seconds`; the next attempt is `attempt`.
struct ScheduleRetry {
  int64_t activation = 0;
  int64_t delay_seconds = 0;
  int attempt = 2;
};
// Put a task in the inbox of `role`; its id is TaskId(case, activation).
struct OpenTask {
  int64_t activation = 0;
  std::string step;
  std::string title;
  std::string role;
  std::string agency;          // the role's agency (the procedure's agency if the role is unknown)
  nlohmann::json form_schema;  // null when the task has no form
  std::optional<workflows::Duration> deadline;  // also set as a kTaskDeadline timer
  std::string escalate_to;                      // empty: none
};
// Take the task of `activation` out of every inbox. `why`: "completed", "cancelled", "finished".
struct CloseTask {
  int64_t activation = 0;
  std::string why;
};
// Move the open task of `activation` to `to_role` (its deadline passed).
struct EscalateTask {
  int64_t activation = 0;
  std::string to_role;
};
// Fire TimerFired{activation, kind} after `after` (working days on the agency's calendar).
struct SetTimer {
  int64_t activation = 0;
  TimerKind kind = TimerKind::kWaitTimeout;
  workflows::Duration after;
};
// Drop every timer and queued work of `activation` (the step was left or cancelled). Timers the
// runtime fails to drop are harmless: the machine ignores stale timers.
struct CancelTimers {
  int64_t activation = 0;
};
// Start a case of `procedure` (its newest version) with `input`; when it finishes the runtime
// sends this case ChildEnded{activation, ...}.
struct StartChild {
  int64_t activation = 0;
  std::string procedure;
  nlohmann::json input;
};
// Cancel the sub-case started for `activation`.
struct CancelChild {
  int64_t activation = 0;
};
// Record an incident an operator sees; it stays open until CloseIncident.
struct OpenIncident {
  int64_t activation = 0;
  std::string step;
  std::string message;
};
// The incident of `activation` is resolved (retried, or the case ended).
struct CloseIncident {
  int64_t activation = 0;
};
// The statutory clock stops (a wait with `pauses_deadline` began) / runs again.
struct PauseClock {};
struct ResumeClock {};
// The case has finished with `status` (an end outcome, "completed" or "cancelled").
struct Finish {
  std::string status;
  std::string reason;
};

}  // namespace command

using Command = std::variant<command::InvokeAdapter, command::ScheduleRetry, command::OpenTask,
                             command::CloseTask, command::EscalateTask, command::SetTimer,
                             command::CancelTimers, command::StartChild, command::CancelChild,
                             command::OpenIncident, command::CloseIncident, command::PauseClock,
                             command::ResumeClock, command::Finish>;

// The command as JSON: {"type": "invoke_adapter", "activation": 3, ...}; durations as their
// canonical text ("10s", "1 working day").
nlohmann::json CommandToJson(const Command& command);

// ----------------------------------------------------------------------------------------------

// One entry for the case's history. The runtime adds the case, actor, time and hash chain.
// Actions and their details (every step-related note carries "activation"):
//   case.started       {data}                           case.finished  {status, reason}
//   case.cancelled     {reason}                         step.entered   {activation, kind}
//   step.succeeded     {activation, saved_as, result}   (saved_as null when not saved)
//   step.reused        {activation, saved_as, result, source_case}
//   step.accepted      {activation, accept_timeout}     (202: waits for the signal <step id>)
//   step.failed        {activation, attempt, message, retryable}
//   step.retry_scheduled {activation, attempt, delay_seconds}
//   step.error_handled {activation, saved_as, on_error} (the failure went to on_error)
//   step.timed_out     {activation, on_timeout}
//   incident.opened    {activation, message}            incident.retried {activation}
//   task.opened        {activation, role, title}        task.escalated {activation, to_role}
//   task.overdue       {activation}                     (deadline passed, no escalate_to)
//   task.completed     {activation, actor, values, decision?, reason?}
//   signal.received    {name, activation, data}         timer.fired {activation, kind}
//   child.started      {activation, procedure}          child.ended {activation, case, outcome}
//   branch.joined      {activation, branch, parallel, remaining}  (a branch token ended)
struct HistoryNote {
  std::string action;
  std::string step;  // empty for case-level notes
  nlohmann::json details = nlohmann::json::object();
};

// Who and when, from outside: the machine reads no clock.
struct Context {
  std::chrono::system_clock::time_point now;
  std::string actor;
  // Who runs the procedure's expressions; null: workflows::InProcessEvaluator(). The engine
  // passes a bounded one (engine/expression_pool.hpp), so a runaway expression becomes an
  // evaluation error, and thus a failed step or an incident, like any other.
  workflows::Evaluator* evaluator = nullptr;
};

// What one event did.
struct Advance {
  CaseState state;
  std::vector<Command> commands;   // in the order the runtime should carry them out
  std::vector<HistoryNote> notes;  // in order
  // True when the event arrived late (a timer or retry for an activation the case has left) and
  // changed nothing: `state` is the input state, commands and notes are empty.
  bool stale = false;
};

// Applies `event` to a case of `procedure` in `state`. Pure: no I/O, no clock, no globals;
// safe to call from many threads. Never throws.
//
// Semantics (DESIGN.md, "Procedure language"):
// - Start: validates the data against `input:` (kInvalid listing every path), enters `start`.
// - Entering a step: adapter renders `call` over the data (a render error is a permanent failure
//   of the step) and emits InvokeAdapter; task emits OpenTask (+ SetTimer kTaskDeadline);
//   parallel forks one token per branch; wait emits SetTimer kWaitTimeout if `timeout`;
//   call_procedure renders `input` and emits StartChild; decision chooses its next at once;
//   end renders `reason`, cancels every other token (CloseTask / CancelTimers / CancelChild /
//   CloseIncident) and emits Finish with the `end:` outcome.
// - Leaving a step that succeeded: its result is saved under `save_as`, then the first `next`
//   whose condition holds is taken. A condition that fails to evaluate, or no condition
//   holding, opens an incident (RetryIncident chooses again). No `next`: on the main line the
//   case finishes "completed"; in a branch the token ends, and when the last branch of a
//   parallel activation ends, the parallel step takes its own `next`.
// - Retryable failures: while attempt < retry.attempts, ScheduleRetry with delay
//   backoff * 2^(attempt-1) capped at max_backoff. Used up, or permanent: with `on_error` the
//   error {step, message, attempt} is saved under "<save_as>_error" (or "error" when the step
//   has no save_as) and on_error is entered; without it OpenIncident and the token waits.
// - Signals go to every token waiting for that name: a wait step saves the data under save_as
//   and continues; an adapter step parked by 202 (or whose call is still out: the callback may
//   overtake the 202) takes the data as its result.
// - StepAccepted (202) parks the step for its callback and sets a kAcceptTimeout timer
//   (`accept_timeout:`, default workflows::kDefaultAcceptTimeout); the callback cancels it.
// - TimerFired kTaskDeadline escalates (EscalateTask, once) or notes task.overdue;
//   kWaitTimeout takes `on_timeout` (or opens an incident: RetryIncident waits again);
//   kRetry sends the next attempt; kAcceptTimeout, while the step still waits for its
//   callback, is a retryable failure of the attempt ("department 'x' accepted the call but sent
//   no result within 7 days"): retried under the same idempotency key like any other, then
//   on_error or an incident.
// - WorkFailed: the step at the activation fails permanently (on_error or an incident) after its
//   outstanding work is dropped; a step waiting for a task or a signal opens an incident.
// - The clock: PauseClock when the first token starts waiting at a `pauses_deadline` wait,
//   ResumeClock when none does any more (or the case finishes); paused_since/paused_seconds
//   account the stopped time with `ctx.now`.
// - More than kMaxStepsPerEvent step entries in one Apply opens an incident at the next step.
//
// Errors (the input state is untouched):
// - kConflict: the event does not fit the state: Start on a started case, any other event on a
//   case not started, any event but a timer on a finished case, an activation never issued or
//   not waiting for this event (e.g. a task completed twice), a signal no token waits for.
// - kInvalid: data that fails its schema (Start's input, a task's form), or a state that names
//   steps the procedure does not have (a procedure/state mismatch).
// Not errors: TimerFired for an activation the case has left or whose wait it no longer is in,
// and any TimerFired on a finished case; and a StepFailed for an attempt other than the current
// one. They return `stale` with the state unchanged.
Result<Advance> Apply(const workflows::Procedure& procedure, const CaseState& state,
                      const Event& event, const Context& ctx);

// "<case>/<step>/<activation>": the idempotency key of every attempt of one step activation.
std::string IdempotencyKey(const std::string& case_id, const std::string& step, int64_t activation);
// "<case>.<activation>": the id of the task opened by that activation.
std::string TaskId(const std::string& case_id, int64_t activation);

}  // namespace wf::engine
