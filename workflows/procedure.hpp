#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "workflows/diagnostic.hpp"
#include "workflows/duration.hpp"
#include "workflows/expression.hpp"
#include "workflows/schema.hpp"

namespace wf::workflows {

// The kinds of step; a step has exactly one (DESIGN.md, "Procedure language").
enum class StepKind {
  kAdapter,        // `adapter:` a department system through an adapter
  kTask,           // `task:` a person decides, through a form
  kParallel,       // `parallel:` fork branches, join when all have ended
  kWait,           // `wait:` wait for a named signal
  kCallProcedure,  // `call_procedure:` another procedure as a sub-case
  kEnd,            // `end:` the case ends with an outcome
  kDecision,       // only `next:` with conditions
};

// The kind's name as written in a definition and in messages: "adapter", "task", "parallel",
// "wait", "call_procedure", "end", "decision".
const char* StepKindName(StepKind kind);

// An expression together with where it was written.
// A text people read, per language, when the procedure writes one per language:
// `title: {vi: Đăng ký khai sinh, en: Birth registration}`. Empty when the text is written once.
// The plain field beside it holds the default: the `en` text, else the first one written.
using TextByLanguage = std::map<std::string, std::string>;

struct LocatedExpression {
  Expression expression;
  SourceLocation where;
};

// One edge out of a step: `goto` taken when `condition` holds (no condition: always).
struct Transition {
  std::optional<LocatedExpression> condition;
  std::string target;
  SourceLocation where;  // of the target
};

// An adapter step's `accept_timeout:` when it has none: a department that accepted a call (HTTP
// 202) and sent no result within a week has most likely lost it. Long enough for a department
// whose clerks answer within the week, short enough that a lost callback is seen and the call
// made again (the same idempotency key) well before a statutory limit of weeks runs out.
inline constexpr Duration kDefaultAcceptTimeout{7, DurationUnit::kDays};

struct RetryPolicy {
  int attempts = 3;                                  // total tries, 1..100
  Duration backoff{1, DurationUnit::kSeconds};       // before the 2nd try, doubling
  Duration max_backoff{60, DurationUnit::kSeconds};  // cap of the doubling
};

// One field of a task's form. Written `name: type` or `name: {type, required, enum, ...}`.
struct FormField {
  std::string name;
  std::string type = "string";  // string, boolean, integer, number, date, object, array
  bool required = false;
  std::vector<std::string> choices;  // `enum:` as text
  std::string label;                 // `label:` shown to the clerk
  TextByLanguage labels;             // `label:` per language
  std::string pattern;               // `pattern:` an ECMAScript regex a string value must match
  bool personal = false;             // `personal: true`: the value is a citizen's personal data
  SourceLocation where;
};

struct Step {
  std::string id;
  StepKind kind = StepKind::kDecision;
  SourceLocation where;                          // of the step's key
  std::map<std::string, SourceLocation> keys;    // where each of its keys was written
  std::map<std::string, SourceLocation> values;  // where each of its keys' values was written

  // kAdapter
  std::string department;  // `adapter:` names a department of the deployment config
  nlohmann::json call = nlohmann::json::object();  // template, `${ }` rendered over case data
  std::optional<Duration> reuse;    // once-only: reuse evidence verified within this period
  std::optional<Duration> timeout;  // per attempt
  RetryPolicy retry;
  std::string on_error;  // step taken on permanent failure; empty: an incident
  // How long a department that answered 202 may take to send the result (`wf signal CASE STEP`)
  // before the attempt counts as a retryable failure; nullopt: kDefaultAcceptTimeout.
  std::optional<Duration> accept_timeout;
  // `personal: true` (adapter, wait and call_procedure steps): the whole result is personal data
  // (a population registry's answer), stored only encrypted (engine/personal.hpp).
  bool personal = false;

  // kTask
  std::string task;            // the title shown in the inbox
  TextByLanguage task_titles;  // `task:` per language
  std::string role;
  std::vector<FormField> form;
  nlohmann::json form_schema;        // the form as an input schema (schema.hpp)
  std::optional<Duration> deadline;  // the task's own limit
  std::string escalate_to;           // role that gets the task when the deadline passes

  // kParallel
  std::vector<std::string> branches;
  std::vector<SourceLocation> branch_where;  // where each branch id was written

  // kWait
  std::string signal;  // `wait:` the signal name
  bool pauses_deadline = false;
  std::optional<Duration> wait_timeout;  // `timeout:` on a wait step
  std::string on_timeout;

  // kCallProcedure
  std::string procedure;
  nlohmann::json input = nlohmann::json::object();  // template for the sub-case's data

  // kEnd
  std::string outcome;  // `end:` e.g. completed, refused
  std::optional<LocatedExpression> reason;

  // Shared by several kinds
  std::string save_as;           // result saved into the case data under this key
  std::vector<Transition> next;  // empty: the branch (or case) ends here
  std::string description;
};

// A role declared under `roles:`. `agency` defaults to the procedure's agency when omitted.
struct Role {
  std::string name;
  std::string agency;
  std::string description;
  SourceLocation where;         // of the role's key
  SourceLocation agency_where;  // of its `agency:` value (the role's key when omitted)
};

// A procedure as loaded and checked. Immutable once loaded; safe to share between threads.
struct Procedure {
  std::string file;          // where it was loaded from, for messages
  std::string source;        // the YAML text as loaded
  std::string content_hash;  // SHA-256 hex of `source`
  std::string name;
  int version = 1;
  std::string title;
  TextByLanguage titles;  // `title:` per language
  std::string agency;
  std::vector<std::string> legal_basis;
  std::optional<Duration> deadline;
  std::optional<LocatedExpression> dedupe;
  // `retention:` how long after a case ends its personal data is kept; `wf erase --expired`
  // erases it after that. nullopt: kept until erased by hand.
  std::optional<Duration> retention;
  nlohmann::json input_schema;  // null when there is no `input:`
  std::map<std::string, Role> roles;
  std::string start;
  std::vector<Step> steps;                       // in file order
  std::map<std::string, SourceLocation> keys;    // where each top-level key was written
  std::map<std::string, SourceLocation> values;  // where each top-level key's value was written
  std::string description;
  // The `pattern`s of input_schema and of every form, compiled once when the procedure loaded
  // (LoadProcedure); null for a procedure built by hand (ValidateData then compiles them).
  std::shared_ptr<const SchemaPatterns> patterns;

  // The step with this id, or nullptr.
  const Step* FindStep(const std::string& id) const;
  // The departments that adapter steps name, sorted, without duplicates.
  std::vector<std::string> Departments() const;
};

}  // namespace wf::workflows
