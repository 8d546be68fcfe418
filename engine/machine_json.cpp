// The machine's types in words and JSON (engine/machine.hpp): the names of waits and timer
// kinds, a case's run-time state to and from JSON (what the store keeps in cases.state), and
// events and commands as JSON (what work payloads and history details carry).
#include <string>
#include <utility>

#include "engine/machine.hpp"

namespace wf::engine {

using nlohmann::json;

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
    case TimerKind::kAcceptTimeout:
      return "accept_timeout";
  }
  return "retry";
}

std::optional<TimerKind> ParseTimerKind(const std::string& name) {
  for (TimerKind k : {TimerKind::kRetry, TimerKind::kWaitTimeout, TimerKind::kTaskDeadline,
                      TimerKind::kAcceptTimeout}) {
    if (name == TimerKindName(k)) return k;
  }
  return std::nullopt;
}

// ---------------------------------------------------------------------------------------------
// CaseState <-> JSON

json CaseState::ToJson(bool with_data) const {
  json out = json::object();
  out["format"] = with_data ? 1 : 2;
  out["status"] = status;
  out["reason"] = reason;
  if (with_data) out["data"] = data;
  out["next_activation"] = next_activation;
  // Member by member rather than initializer lists, which build and check a pair array for each
  // member: the state is written on every step.
  json token_list = json::array();
  for (const Token& t : tokens) {
    json token = json::object();
    token["id"] = t.id;
    token["step"] = t.step;
    token["activation"] = t.activation;
    token["waiting"] = WaitingName(t.waiting);
    token["attempt"] = t.attempt;
    token["join"] = t.join;
    token["signal"] = t.signal;
    token["incident"] = t.incident;
    token["incident_after_success"] = t.incident_after_success;
    token["escalated"] = t.escalated;
    token_list.push_back(std::move(token));
  }
  out["tokens"] = std::move(token_list);
  json join_list = json::array();
  for (const auto& [activation, join] : joins) {
    json entry = json::object();
    entry["activation"] = join.activation;
    entry["step"] = join.step;
    entry["pending"] = join.pending;
    join_list.push_back(std::move(entry));
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

Result<CaseState> CaseState::FromJson(const json& in, json data_beside) {
  if (!in.is_object()) return StateInvalid("not a JSON object");
  MemberReader r(in, "case");
  CaseState s;
  const int64_t format = r.Int("format");
  if (format != 1 && format != 2 && r.ok()) {
    return StateInvalid("unknown format (expected 1 or 2)");
  }
  s.status = r.Text("status");
  s.reason = r.Text("reason");
  s.data = format == 2 ? std::move(data_beside) : r.Member("data");
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
            json out = {{"type", "step_accepted"}, {"activation", e.activation}};
            if (!e.receipt.is_null()) out["receipt"] = e.receipt;
            return out;
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
          [](const event::WorkFailed& e) -> json {
            return {{"type", "work_failed"}, {"activation", e.activation}, {"message", e.message}};
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
    out = event::StepAccepted{r.Int("activation"), value("receipt")};
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
  } else if (type == "work_failed") {
    out = event::WorkFailed{r.Int("activation"), r.Text("message")};
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
}  // namespace wf::engine
