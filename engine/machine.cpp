#include "engine/machine.hpp"

#include <algorithm>
#include <deque>
#include <exception>
#include <stdexcept>
#include <string>
#include <utility>

#include "workflows/expression.hpp"
#include "workflows/schema.hpp"

namespace wf::engine {

using nlohmann::json;
using workflows::Procedure;
using workflows::Step;
using workflows::StepKind;

const char* WaitingName(Waiting waiting) {
  switch (waiting) {
    case Waiting::kNothing:
      return "nothing";
    case Waiting::kAdapter:
      return "adapter";
    case Waiting::kRetry:
      return "retry";
    case Waiting::kAccepted:
      return "accepted";
    case Waiting::kTask:
      return "task";
    case Waiting::kSignal:
      return "signal";
    case Waiting::kChild:
      return "child";
    case Waiting::kBranches:
      return "branches";
    case Waiting::kIncident:
      return "incident";
  }
  return "nothing";
}

std::optional<Waiting> ParseWaiting(const std::string& name) {
  for (Waiting w :
       {Waiting::kNothing, Waiting::kAdapter, Waiting::kRetry, Waiting::kAccepted, Waiting::kTask,
        Waiting::kSignal, Waiting::kChild, Waiting::kBranches, Waiting::kIncident}) {
    if (name == WaitingName(w)) return w;
  }
  return std::nullopt;
}

const char* TimerKindName(TimerKind kind) {
  switch (kind) {
    case TimerKind::kRetry:
      return "retry";
    case TimerKind::kWaitTimeout:
      return "wait_timeout";
    case TimerKind::kTaskDeadline:
      return "task_deadline";
  }
  return "retry";
}

std::optional<TimerKind> ParseTimerKind(const std::string& name) {
  for (TimerKind k : {TimerKind::kRetry, TimerKind::kWaitTimeout, TimerKind::kTaskDeadline}) {
    if (name == TimerKindName(k)) return k;
  }
  return std::nullopt;
}

std::string IdempotencyKey(const std::string& case_id, const std::string& step,
                           int64_t activation) {
  return case_id + "/" + step + "/" + std::to_string(activation);
}

std::string TaskId(const std::string& case_id, int64_t activation) {
  return case_id + "." + std::to_string(activation);
}

// ---------------------------------------------------------------------------------------------
// CaseState <-> JSON

const Token* CaseState::FindByActivation(int64_t activation) const {
  for (const Token& token : tokens) {
    if (token.activation == activation) return &token;
  }
  return nullptr;
}

json CaseState::ToJson() const {
  json out = json::object();
  out["format"] = 1;
  out["status"] = status;
  out["reason"] = reason;
  out["data"] = data;
  out["next_activation"] = next_activation;
  json token_list = json::array();
  for (const Token& t : tokens) {
    token_list.push_back({{"id", t.id},
                          {"step", t.step},
                          {"activation", t.activation},
                          {"waiting", WaitingName(t.waiting)},
                          {"attempt", t.attempt},
                          {"join", t.join},
                          {"signal", t.signal},
                          {"incident", t.incident},
                          {"incident_after_success", t.incident_after_success},
                          {"escalated", t.escalated}});
  }
  out["tokens"] = std::move(token_list);
  json join_list = json::array();
  for (const auto& [activation, join] : joins) {
    join_list.push_back(
        {{"activation", join.activation}, {"step", join.step}, {"pending", join.pending}});
  }
  out["joins"] = std::move(join_list);
  out["clock_paused"] = clock_paused;
  out["paused_since"] = paused_since;
  out["paused_seconds"] = paused_seconds;
  return out;
}

namespace {

// Reads members of a stored object, remembering the first problem instead of throwing.
class MemberReader {
 public:
  MemberReader(const json& object, std::string where) : object_(object), where_(std::move(where)) {}

  template <typename T>
  T Get(const char* key, bool (json::*is_type)() const, const char* type_name) {
    auto it = object_.find(key);
    if (it == object_.end() || !((*it).*is_type)()) {
      Fail(std::string("'") + key + "' must be " + type_name);
      return T{};
    }
    return it->template get<T>();
  }
  int64_t Int(const char* key) { return Get<int64_t>(key, &json::is_number_integer, "an integer"); }
  std::string Text(const char* key) { return Get<std::string>(key, &json::is_string, "a string"); }
  bool Bool(const char* key) { return Get<bool>(key, &json::is_boolean, "a boolean"); }
  const json& Member(const char* key) {
    static const json kNull;
    auto it = object_.find(key);
    if (it == object_.end()) {
      Fail(std::string("'") + key + "' is missing");
      return kNull;
    }
    return *it;
  }
  void Fail(std::string message) {
    if (problem_.empty()) problem_ = where_ + ": " + std::move(message);
  }
  bool ok() const { return problem_.empty(); }
  const std::string& problem() const { return problem_; }

 private:
  const json& object_;
  std::string where_;
  std::string problem_;
};

Status StateInvalid(const std::string& message) {
  return Status::Invalid("stored case state is malformed: " + message);
}

}  // namespace

Result<CaseState> CaseState::FromJson(const json& in) {
  if (!in.is_object()) return StateInvalid("not a JSON object");
  MemberReader r(in, "case");
  CaseState s;
  if (r.Int("format") != 1 && r.ok()) return StateInvalid("unknown format (expected 1)");
  s.status = r.Text("status");
  s.reason = r.Text("reason");
  s.data = r.Member("data");
  s.next_activation = r.Int("next_activation");
  s.clock_paused = r.Bool("clock_paused");
  s.paused_since = r.Int("paused_since");
  s.paused_seconds = r.Int("paused_seconds");
  const json& tokens = r.Member("tokens");
  const json& joins = r.Member("joins");
  if (!r.ok()) return StateInvalid(r.problem());
  if (!s.data.is_object()) return StateInvalid("'data' must be an object");
  if (s.next_activation < 1) return StateInvalid("'next_activation' must be at least 1");
  if (!tokens.is_array()) return StateInvalid("'tokens' must be an array");
  if (!joins.is_array()) return StateInvalid("'joins' must be an array");

  auto issued = [&](int64_t a) { return a >= 1 && a < s.next_activation; };
  for (size_t i = 0; i < tokens.size(); ++i) {
    const json& item = tokens[i];
    if (!item.is_object()) return StateInvalid("tokens[" + std::to_string(i) + "] not an object");
    MemberReader t(item, "tokens[" + std::to_string(i) + "]");
    Token token;
    token.id = t.Int("id");
    token.step = t.Text("step");
    token.activation = t.Int("activation");
    std::string waiting = t.Text("waiting");
    token.attempt = static_cast<int>(t.Int("attempt"));
    token.join = t.Int("join");
    token.signal = t.Text("signal");
    token.incident = t.Text("incident");
    token.incident_after_success = t.Bool("incident_after_success");
    token.escalated = t.Bool("escalated");
    if (!t.ok()) return StateInvalid(t.problem());
    std::optional<Waiting> w = ParseWaiting(waiting);
    if (!w || *w == Waiting::kNothing) {
      return StateInvalid("tokens[" + std::to_string(i) + "]: unknown waiting '" + waiting + "'");
    }
    token.waiting = *w;
    if (!issued(token.id) || !issued(token.activation) || token.id > token.activation ||
        token.step.empty() || (token.join != 0 && !issued(token.join))) {
      return StateInvalid("tokens[" + std::to_string(i) + "]: ids out of range");
    }
    for (const Token& other : s.tokens) {
      if (other.id == token.id || other.activation == token.activation) {
        return StateInvalid("tokens[" + std::to_string(i) + "]: duplicate id or activation");
      }
    }
    s.tokens.push_back(std::move(token));
  }
  for (size_t i = 0; i < joins.size(); ++i) {
    const json& item = joins[i];
    if (!item.is_object()) return StateInvalid("joins[" + std::to_string(i) + "] not an object");
    MemberReader j(item, "joins[" + std::to_string(i) + "]");
    Join join;
    join.activation = j.Int("activation");
    join.step = j.Text("step");
    const json& pending = j.Member("pending");
    if (!j.ok()) return StateInvalid(j.problem());
    if (!pending.is_array()) return StateInvalid("joins[" + std::to_string(i) + "].pending");
    for (const json& id : pending) {
      if (!id.is_number_integer()) return StateInvalid("joins[" + std::to_string(i) + "].pending");
      join.pending.push_back(id.get<int64_t>());
    }
    const Token* owner = s.FindByActivation(join.activation);
    if (owner == nullptr || owner->waiting != Waiting::kBranches || owner->step != join.step) {
      return StateInvalid("joins[" + std::to_string(i) + "] has no parallel token");
    }
    if (!s.joins.emplace(join.activation, std::move(join)).second) {
      return StateInvalid("joins[" + std::to_string(i) + "] is a duplicate");
    }
  }
  // Every branch token is pending in its join and every pending id is a token of that join.
  for (const Token& token : s.tokens) {
    if (token.join == 0) continue;
    auto it = s.joins.find(token.join);
    if (it == s.joins.end() || std::find(it->second.pending.begin(), it->second.pending.end(),
                                         token.id) == it->second.pending.end()) {
      return StateInvalid("token " + std::to_string(token.id) + " is not pending in its join");
    }
  }
  for (const auto& [activation, join] : s.joins) {
    for (int64_t id : join.pending) {
      auto it = std::find_if(s.tokens.begin(), s.tokens.end(),
                             [&](const Token& t) { return t.id == id && t.join == activation; });
      if (it == s.tokens.end()) {
        return StateInvalid("join " + std::to_string(activation) + " waits for no token " +
                            std::to_string(id));
      }
    }
    if (join.pending.empty())
      return StateInvalid("join " + std::to_string(activation) + " is empty");
  }
  bool finished = s.IsFinished();
  if (finished && (!s.tokens.empty() || !s.joins.empty())) {
    return StateInvalid("a finished case has active tokens");
  }
  if (s.status == kStatusNew && (!s.tokens.empty() || s.next_activation != 1)) {
    return StateInvalid("a case not started has tokens");
  }
  if (s.status == kStatusOpen && s.tokens.empty()) {
    return StateInvalid("an open case has no tokens");
  }
  return s;
}

// ---------------------------------------------------------------------------------------------
// Events and commands <-> JSON

namespace {

json DurationJson(const std::optional<workflows::Duration>& d) {
  return d ? json(d->ToString()) : json(nullptr);
}

template <class... Ts>
struct Overloaded : Ts... {
  using Ts::operator()...;
};
template <class... Ts>
Overloaded(Ts...) -> Overloaded<Ts...>;

}  // namespace

json EventToJson(const Event& event) {
  return std::visit(
      Overloaded{
          [](const event::Start& e) -> json {
            return {{"type", "start"}, {"data", e.data}};
          },
          [](const event::StepSucceeded& e) -> json {
            return {{"type", "step_succeeded"},
                    {"activation", e.activation},
                    {"result", e.result},
                    {"reused_from", e.reused_from ? json(*e.reused_from) : json(nullptr)}};
          },
          [](const event::StepFailed& e) -> json {
            return {{"type", "step_failed"},
                    {"activation", e.activation},
                    {"message", e.message},
                    {"retryable", e.retryable},
                    {"attempt", e.attempt}};
          },
          [](const event::StepAccepted& e) -> json {
            return {{"type", "step_accepted"}, {"activation", e.activation}};
          },
          [](const event::TaskCompleted& e) -> json {
            return {{"type", "task_completed"},
                    {"activation", e.activation},
                    {"actor", e.actor},
                    {"values", e.values}};
          },
          [](const event::SignalReceived& e) -> json {
            return {{"type", "signal_received"}, {"name", e.name}, {"data", e.data}};
          },
          [](const event::TimerFired& e) -> json {
            return {{"type", "timer_fired"},
                    {"activation", e.activation},
                    {"kind", TimerKindName(e.kind)}};
          },
          [](const event::ChildEnded& e) -> json {
            return {{"type", "child_ended"},
                    {"activation", e.activation},
                    {"child", e.child},
                    {"outcome", e.outcome},
                    {"data", e.data}};
          },
          [](const event::Cancel& e) -> json {
            return {{"type", "cancel"}, {"reason", e.reason}};
          },
          [](const event::RetryIncident& e) -> json {
            return {{"type", "retry_incident"}, {"activation", e.activation}};
          },
      },
      event);
}

Result<Event> EventFromJson(const json& in) {
  if (!in.is_object()) return Status::Invalid("event: not a JSON object");
  MemberReader r(in, "event");
  std::string type = r.Text("type");
  if (!r.ok()) return Status::Invalid(r.problem());
  auto value = [&](const char* key) {
    auto it = in.find(key);
    return it == in.end() ? json(nullptr) : *it;
  };
  Event out;
  if (type == "start") {
    out = event::Start{value("data")};
  } else if (type == "step_succeeded") {
    event::StepSucceeded e{r.Int("activation"), value("result"), std::nullopt};
    json from = value("reused_from");
    if (from.is_string()) e.reused_from = from.get<std::string>();
    out = std::move(e);
  } else if (type == "step_failed") {
    out = event::StepFailed{r.Int("activation"), r.Text("message"), r.Bool("retryable"),
                            static_cast<int>(r.Int("attempt"))};
  } else if (type == "step_accepted") {
    out = event::StepAccepted{r.Int("activation")};
  } else if (type == "task_completed") {
    out = event::TaskCompleted{r.Int("activation"), r.Text("actor"), value("values")};
  } else if (type == "signal_received") {
    out = event::SignalReceived{r.Text("name"), value("data")};
  } else if (type == "timer_fired") {
    std::string kind = r.Text("kind");
    std::optional<TimerKind> k = ParseTimerKind(kind);
    if (r.ok() && !k) return Status::Invalid("event: unknown timer kind '" + kind + "'");
    out = event::TimerFired{r.Int("activation"), k.value_or(TimerKind::kRetry)};
  } else if (type == "child_ended") {
    out = event::ChildEnded{r.Int("activation"), r.Text("child"), r.Text("outcome"), value("data")};
  } else if (type == "cancel") {
    out = event::Cancel{r.Text("reason")};
  } else if (type == "retry_incident") {
    out = event::RetryIncident{r.Int("activation")};
  } else {
    return Status::Invalid("event: unknown type '" + type + "'");
  }
  if (!r.ok()) return Status::Invalid(r.problem());
  return out;
}

json CommandToJson(const Command& command) {
  return std::visit(
      Overloaded{
          [](const command::InvokeAdapter& c) -> json {
            return {{"type", "invoke_adapter"},
                    {"activation", c.activation},
                    {"step", c.step},
                    {"department", c.department},
                    {"call", c.call},
                    {"attempt", c.attempt},
                    {"timeout", DurationJson(c.timeout)},
                    {"reuse", DurationJson(c.reuse)}};
          },
          [](const command::ScheduleRetry& c) -> json {
            return {{"type", "schedule_retry"},
                    {"activation", c.activation},
                    {"delay_seconds", c.delay_seconds},
                    {"attempt", c.attempt}};
          },
          [](const command::OpenTask& c) -> json {
            return {{"type", "open_task"},
                    {"activation", c.activation},
                    {"step", c.step},
                    {"title", c.title},
                    {"role", c.role},
                    {"agency", c.agency},
                    {"form_schema", c.form_schema},
                    {"deadline", DurationJson(c.deadline)},
                    {"escalate_to", c.escalate_to}};
          },
          [](const command::CloseTask& c) -> json {
            return {{"type", "close_task"}, {"activation", c.activation}, {"why", c.why}};
          },
          [](const command::EscalateTask& c) -> json {
            return {
                {"type", "escalate_task"}, {"activation", c.activation}, {"to_role", c.to_role}};
          },
          [](const command::SetTimer& c) -> json {
            return {{"type", "set_timer"},
                    {"activation", c.activation},
                    {"kind", TimerKindName(c.kind)},
                    {"after", c.after.ToString()}};
          },
          [](const command::CancelTimers& c) -> json {
            return {{"type", "cancel_timers"}, {"activation", c.activation}};
          },
          [](const command::StartChild& c) -> json {
            return {{"type", "start_child"},
                    {"activation", c.activation},
                    {"procedure", c.procedure},
                    {"input", c.input}};
          },
          [](const command::CancelChild& c) -> json {
            return {{"type", "cancel_child"}, {"activation", c.activation}};
          },
          [](const command::OpenIncident& c) -> json {
            return {{"type", "open_incident"},
                    {"activation", c.activation},
                    {"step", c.step},
                    {"message", c.message}};
          },
          [](const command::CloseIncident& c) -> json {
            return {{"type", "close_incident"}, {"activation", c.activation}};
          },
          [](const command::PauseClock&) -> json {
            return {{"type", "pause_clock"}};
          },
          [](const command::ResumeClock&) -> json {
            return {{"type", "resume_clock"}};
          },
          [](const command::Finish& c) -> json {
            return {{"type", "finish"}, {"status", c.status}, {"reason", c.reason}};
          },
      },
      command);
}

// ---------------------------------------------------------------------------------------------
// The machine

namespace {

std::string JoinViolations(const std::vector<workflows::SchemaViolation>& violations) {
  std::string out;
  for (const auto& v : violations) {
    if (!out.empty()) out += "; ";
    out += v.path + ": " + v.message;
  }
  return out;
}

int64_t UnixSeconds(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

// One Apply: a working copy of the state, the commands and notes so far, and a queue of tokens
// about to enter their step. Entering is queued rather than recursive so that a long chain of
// decisions neither deepens the stack nor escapes the step budget.
class Machine {
 public:
  Machine(const Procedure& procedure, const CaseState& state, const Context& ctx)
      : procedure_(procedure), ctx_(ctx) {
    out_.state = state;
  }

  Status Handle(const Event& event) {
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

  Advance Take(const CaseState& original) {
    if (out_.stale) return Advance{original, {}, {}, true};
    return std::move(out_);
  }

 private:
  CaseState& state() { return out_.state; }

  // A stored state must name only steps the procedure has, or every lookup below could fail.
  Status CheckSteps() const {
    for (const Token& t : out_.state.tokens) {
      if (procedure_.FindStep(t.step) == nullptr) {
        return Status::Invalid("the case is at step '" + t.step + "', which procedure '" +
                               procedure_.name + "' version " + std::to_string(procedure_.version) +
                               " does not have");
      }
    }
    return Status::Ok();
  }

  const Step& StepOf(const Token& token) const { return *procedure_.FindStep(token.step); }

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

  void Note(std::string action, std::string step, json details) {
    out_.notes.push_back({std::move(action), std::move(step), std::move(details)});
  }
  void Emit(Command command) { out_.commands.push_back(std::move(command)); }
  void Save(const std::string& key, json value) {
    if (!key.empty()) state().data[key] = std::move(value);
  }

  // --- checks shared by the event handlers

  Status RequireOpen(const char* what) {
    if (state().status == kStatusNew) {
      return Status::Conflict(std::string(what) + ": the case has not started");
    }
    if (!state().IsOpen()) {
      return Status::Conflict(std::string(what) + ": the case is already " + state().status);
    }
    return Status::Ok();
  }

  // The token at `activation`, or a conflict saying why there is none.
  Result<Token*> Active(int64_t activation, const char* what) {
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

  Status WrongWait(const Token& t, const char* what) {
    return Status::Conflict(std::string(what) + ": step '" + t.step + "' (activation " +
                            std::to_string(t.activation) + ") is waiting for " +
                            WaitingName(t.waiting) + ", not for this");
  }

  // --- event handlers

  Status On(const event::Start& e) {
    if (state().status != kStatusNew) {
      return Status::Conflict("start: the case has already started (status " + state().status +
                              ")");
    }
    if (!e.data.is_object()) return Status::Invalid("$: the case data must be a JSON object");
    if (!procedure_.input_schema.is_null()) {
      auto violations = workflows::ValidateData(procedure_.input_schema, e.data);
      if (!violations.empty()) return Status::Invalid(JoinViolations(violations));
    }
    std::string start = procedure_.start;
    if (start.empty() && !procedure_.steps.empty()) start = procedure_.steps.front().id;
    if (procedure_.FindStep(start) == nullptr) {
      return Status::Invalid("procedure '" + procedure_.name + "' has no start step '" + start +
                             "'");
    }
    state().status = kStatusOpen;
    state().data = e.data;
    Note("case.started", "", {{"data", e.data}});
    Spawn(start, 0);
    return Status::Ok();
  }

  Status On(const event::StepSucceeded& e) {
    Result<Token*> t = Active(e.activation, "step result");
    if (!t) return t.error();
    Token& token = **t;
    if (token.waiting != Waiting::kAdapter && token.waiting != Waiting::kAccepted) {
      return WrongWait(token, "step result");
    }
    Succeeded(token, e.result, e.reused_from);
    return Status::Ok();
  }

  Status On(const event::StepFailed& e) {
    Result<Token*> t = Active(e.activation, "step failure");
    if (!t) return t.error();
    Token& token = **t;
    if (token.waiting != Waiting::kAdapter) return WrongWait(token, "step failure");
    if (e.attempt != token.attempt) {
      out_.stale = true;  // the report of an attempt that is no longer the one out
      return Status::Ok();
    }
    const Step& step = StepOf(token);
    Note("step.failed", step.id,
         {{"activation", token.activation},
          {"attempt", e.attempt},
          {"message", e.message},
          {"retryable", e.retryable}});
    int attempts = std::max(1, step.retry.attempts);
    if (e.retryable && token.attempt < attempts) {
      int next = token.attempt + 1;
      int64_t delay = BackoffSeconds(step.retry, next);
      token.waiting = Waiting::kRetry;
      token.attempt = next;
      Emit(command::ScheduleRetry{token.activation, delay, next});
      Note("step.retry_scheduled", step.id,
           {{"activation", token.activation}, {"attempt", next}, {"delay_seconds", delay}});
      return Status::Ok();
    }
    std::string message = e.message;
    if (e.retryable) {
      message = "gave up after " + std::to_string(token.attempt) + " attempts: " + message;
    }
    Failed(token, message);
    return Status::Ok();
  }

  Status On(const event::StepAccepted& e) {
    Result<Token*> t = Active(e.activation, "step accepted");
    if (!t) return t.error();
    Token& token = **t;
    if (token.waiting != Waiting::kAdapter) return WrongWait(token, "step accepted");
    token.waiting = Waiting::kAccepted;
    token.signal = token.step;
    Note("step.accepted", token.step, {{"activation", token.activation}});
    return Status::Ok();
  }

  Status On(const event::TaskCompleted& e) {
    Result<Token*> t = Active(e.activation, "complete task");
    if (!t) return t.error();
    Token& token = **t;
    if (token.waiting != Waiting::kTask) return WrongWait(token, "complete task");
    const Step& step = StepOf(token);
    if (!e.values.is_object()) return Status::Invalid("$: the form values must be an object");
    if (!step.form_schema.is_null()) {
      auto violations = workflows::ValidateData(step.form_schema, e.values);
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
    Note("task.completed", step.id, std::move(details));
    Emit(command::CloseTask{token.activation, "completed"});
    Release(token);
    Save(step.save_as, e.values);
    TakeNext(token);
    return Status::Ok();
  }

  Status On(const event::SignalReceived& e) {
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
      Note("signal.received", t->step,
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

  Status On(const event::TimerFired& e) {
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
    Waiting expected = e.kind == TimerKind::kRetry         ? Waiting::kRetry
                       : e.kind == TimerKind::kWaitTimeout ? Waiting::kSignal
                                                           : Waiting::kTask;
    if (t == nullptr || t->waiting != expected ||
        (e.kind == TimerKind::kTaskDeadline && t->escalated)) {
      out_.stale = true;
      return Status::Ok();
    }
    Token& token = *t;
    const Step& step = StepOf(token);
    Note("timer.fired", step.id,
         {{"activation", token.activation}, {"kind", TimerKindName(e.kind)}});
    switch (e.kind) {
      case TimerKind::kRetry:
        Invoke(token);
        break;
      case TimerKind::kWaitTimeout:
        if (!step.on_timeout.empty()) {
          Note("step.timed_out", step.id,
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
          Note("task.escalated", step.id,
               {{"activation", token.activation}, {"to_role", step.escalate_to}});
        } else {
          token.escalated = true;  // overdue is noted once
          Note("task.overdue", step.id, {{"activation", token.activation}});
        }
        break;
    }
    return Status::Ok();
  }

  Status On(const event::ChildEnded& e) {
    Result<Token*> t = Active(e.activation, "sub-case ended");
    if (!t) return t.error();
    Token& token = **t;
    if (token.waiting != Waiting::kChild) return WrongWait(token, "sub-case ended");
    const Step& step = StepOf(token);
    Note("child.ended", step.id,
         {{"activation", token.activation}, {"case", e.child}, {"outcome", e.outcome}});
    token.waiting = Waiting::kNothing;
    Save(step.save_as, {{"case", e.child}, {"outcome", e.outcome}, {"data", e.data}});
    TakeNext(token);
    return Status::Ok();
  }

  Status On(const event::Cancel& e) {
    if (Status s = RequireOpen("cancel"); !s.ok()) return s;
    CancelEverything("cancelled");
    state().status = kStatusCancelled;
    state().reason = e.reason;
    Note("case.cancelled", "", {{"reason", e.reason}});
    Emit(command::Finish{kStatusCancelled, e.reason});
    return Status::Ok();
  }

  Status On(const event::RetryIncident& e) {
    Result<Token*> t = Active(e.activation, "retry incident");
    if (!t) return t.error();
    Token& token = **t;
    if (token.waiting != Waiting::kIncident) {
      return Status::Conflict("retry incident: step '" + token.step + "' (activation " +
                              std::to_string(token.activation) + ") has no open incident");
    }
    Emit(command::CloseIncident{token.activation});
    Note("incident.retried", token.step, {{"activation", token.activation}});
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

  // --- moving tokens

  // A new token entering `step_id`; its id is the activation it gets.
  void Spawn(const std::string& step_id, int64_t join) {
    Token token;
    token.id = state().next_activation;
    token.activation = state().next_activation++;
    token.step = step_id;
    token.join = join;
    ready_.push_back(token.id);
    state().tokens.push_back(std::move(token));
  }

  // Sends `token` into `target` under a fresh activation; it enters when the queue reaches it.
  void Move(Token& token, const std::string& target) {
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

  void Run() {
    while (!ready_.empty() && state().IsOpen()) {
      int64_t id = ready_.front();
      ready_.pop_front();
      Token* t = FindById(id);
      if (t != nullptr && t->waiting == Waiting::kNothing) Enter(*t);
    }
    ready_.clear();
  }

  void Enter(Token& token) {
    const Step& step = StepOf(token);
    if (++entries_ > kMaxStepsPerEvent) {
      Incident(token,
               "more than " + std::to_string(kMaxStepsPerEvent) +
                   " steps entered while handling one event: a loop of decisions that never "
                   "waits? Retry the incident to continue",
               false);
      return;
    }
    Note("step.entered", step.id,
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
        Note("task.opened", step.id,
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
        Note("child.started", step.id,
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

  void EnterParallel(Token& token, const Step& step) {
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

  // Renders the call and sends one attempt (token.attempt); a render error is permanent.
  void Invoke(Token& token) {
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

  void NoteRenderFailure(const Token& token, const char* what, const std::string& message) {
    Note("step.failed", token.step,
         {{"activation", token.activation},
          {"attempt", token.attempt},
          {"message", std::string("rendering ") + what + ": " + message},
          {"retryable", false}});
  }

  void Succeeded(Token& token, const json& result, const std::optional<std::string>& source) {
    const Step& step = StepOf(token);
    json details = {{"activation", token.activation},
                    {"saved_as", step.save_as.empty() ? json(nullptr) : json(step.save_as)},
                    {"result", result}};
    if (source) {
      details["source_case"] = *source;
      Note("step.reused", step.id, std::move(details));
    } else {
      Note("step.succeeded", step.id, std::move(details));
    }
    if (token.waiting == Waiting::kAccepted || token.waiting == Waiting::kRetry) {
      Emit(command::CancelTimers{token.activation});
    }
    token.waiting = Waiting::kNothing;
    Save(step.save_as, result);
    TakeNext(token);
  }

  // A permanent failure: on_error if the step has one, else an incident.
  void Failed(Token& token, const std::string& message) {
    const Step& step = StepOf(token);
    if (step.on_error.empty()) {
      Incident(token, message, false);
      return;
    }
    std::string key = step.save_as.empty() ? "error" : step.save_as + "_error";
    Save(key, {{"step", step.id}, {"message", message}, {"attempt", token.attempt}});
    Note("step.error_handled", step.id,
         {{"activation", token.activation}, {"saved_as", key}, {"on_error", step.on_error}});
    token.waiting = Waiting::kNothing;
    Move(token, step.on_error);
  }

  void Incident(Token& token, const std::string& message, bool after_success) {
    token.waiting = Waiting::kIncident;
    token.incident = message;
    token.incident_after_success = after_success;
    Emit(command::OpenIncident{token.activation, token.step, message});
    Note("incident.opened", token.step, {{"activation", token.activation}, {"message", message}});
  }

  // The token's wait is over: drop the timers that guarded it.
  void Release(Token& token) {
    const Step& step = StepOf(token);
    bool timed = (token.waiting == Waiting::kTask && step.deadline) ||
                 (token.waiting == Waiting::kSignal && step.wait_timeout);
    if (timed) Emit(command::CancelTimers{token.activation});
    token.waiting = Waiting::kNothing;
  }

  // Chooses the step's next and moves there, or ends the token.
  void TakeNext(Token& token) {
    const Step& step = StepOf(token);
    if (step.next.empty()) {
      EndToken(token);
      return;
    }
    for (const workflows::Transition& transition : step.next) {
      if (transition.condition) {
        Result<bool> holds =
            transition.condition->expression.EvaluateCondition(state().data, evaluator());
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

  // A token reached a step with no next.
  void EndToken(Token& token) {
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
    join.pending.erase(std::remove(join.pending.begin(), join.pending.end(), id),
                       join.pending.end());
    Note("branch.joined", branch_step,
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

  // Stops one token's outstanding work.
  void CancelToken(const Token& token, const std::string& why) {
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

  void CancelEverything(const std::string& why) {
    for (const Token& t : state().tokens) CancelToken(t, why);
    state().tokens.clear();
    state().joins.clear();
    ready_.clear();
  }

  void FinishCase(const std::string& status, const std::string& reason, const std::string& step) {
    CancelEverything("finished");
    state().status = status;
    state().reason = reason;
    Note("case.finished", step, {{"status", status}, {"reason", reason}});
    Emit(command::Finish{status, reason});
  }

  // Stops or restarts the statutory clock to match the waits that pause it.
  void UpdateClock() {
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

  // The delay before attempt `next` (2, 3, ...): backoff, doubling, capped at max_backoff.
  static int64_t BackoffSeconds(const workflows::RetryPolicy& policy, int next) {
    int64_t cap = std::max<int64_t>(0, policy.max_backoff.ApproximateSeconds());
    int64_t delay = std::max<int64_t>(0, policy.backoff.ApproximateSeconds());
    for (int i = 2; i < next && delay < cap; ++i) delay *= 2;
    return std::min(delay, cap);
  }

  workflows::Evaluator& evaluator() const {
    return ctx_.evaluator != nullptr ? *ctx_.evaluator : workflows::InProcessEvaluator();
  }

  const Procedure& procedure_;
  const Context& ctx_;
  Advance out_;
  std::deque<int64_t> ready_;  // ids of tokens about to enter their step
  int entries_ = 0;            // step entries so far in this Apply
};

}  // namespace

Result<Advance> Apply(const Procedure& procedure, const CaseState& state, const Event& event,
                      const Context& ctx) {
  try {
    Machine machine(procedure, state, ctx);
    Status status = machine.Handle(event);
    if (!status.ok()) return status;
    return machine.Take(state);
  } catch (const std::exception& e) {
    // Every expected failure is a Status above; this is the last net for a bug.
    return Status::Internal(std::string("state machine: ") + e.what());
  }
}

}  // namespace wf::engine
