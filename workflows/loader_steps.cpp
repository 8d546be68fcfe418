// The Builder's steps: each step's kind and keys, `next`, `retry` and forms (loader_builder.hpp).
#include <algorithm>
#include <string>
#include <vector>

#include "workflows/loader.hpp"
#include "workflows/loader_builder.hpp"
#include "workflows/schema.hpp"

namespace wf::workflows::detail {

Step Builder::BuildStep(const YamlNode& key, const YamlNode& value) {
  Step step;
  step.id = key.scalar;
  step.where = key.where;
  if (!IsStepId(step.id)) {
    Error(key.where, TrFormat("invalid step id {0}; use lowercase letters, digits, '_' and '-'",
                              Quoted(step.id)));
  }
  if (!value.IsMapping()) {
    Error(
        value.IsNull() ? key.where : value.where,
        TrFormat("step {0} must be a mapping of keys, not {1}", Quoted(step.id), value.KindName()));
    return step;
  }

  std::vector<std::string> kinds;
  for (const auto& [name, kind] : kKindKeys) {
    if (value.Find(name) != nullptr) {
      if (kinds.empty()) step.kind = kind;
      kinds.push_back(name);
    }
  }
  bool kind_known = kinds.size() == 1;
  if (kinds.empty()) {
    if (value.Find("next") != nullptr) {
      step.kind = StepKind::kDecision;
      kind_known = true;
    } else {
      Error(key.where, TrFormat("step {0} has no kind; give it one of `adapter`, `task`, "
                                "`parallel`, `wait`, `call_procedure`, `end`, or a `next` list "
                                "(a decision)",
                                Quoted(step.id)));
    }
  } else if (kinds.size() > 1) {
    std::string names;  // 'adapter', 'task' and 'end'
    for (size_t i = 0; i + 1 < kinds.size(); ++i) {
      if (i > 0) names += ", ";
      names += Quoted(kinds[i]);
    }
    names = TrFormat("{0} and {1}", names, Quoted(kinds.back()));
    Error(key.where,
          TrFormat("step {0} has {1} kinds, {2}; a step has exactly one", Quoted(step.id),
                   i18n::Number(static_cast<long long>(kinds.size())), names));
  }

  for (const auto& [k, v] : value.entries) {
    const std::string& name = k.scalar;
    const std::vector<std::string>& allowed = kind_known ? KeysOf(step.kind) : AllStepKeys();
    if (!Contains(AllStepKeys(), name)) {
      std::string suggestion = Suggestion(name, allowed);
      if (suggestion.empty()) suggestion = Suggestion(name, AllStepKeys());
      Error(k.where,
            TrFormat("unknown key {0} in step {1}{2}", Quoted(name), Quoted(step.id), suggestion));
      continue;
    }
    if (!Contains(allowed, name)) {
      const std::string kind = StepKindName(step.kind);
      const bool vowel =
          kind[0] == 'a' || kind[0] == 'e' || kind[0] == 'i' || kind[0] == 'o' || kind[0] == 'u';
      Error(k.where, vowel ? TrFormat("key {0} does not apply to an {1} step", Quoted(name), kind)
                           : TrFormat("key {0} does not apply to a {1} step", Quoted(name), kind));
    }
    step.keys[name] = k.where;
    step.values[name] = v.where.line ? v.where : k.where;
    BuildStepKey(name, v, step);
  }

  if (step.kind == StepKind::kTask && kind_known && !step.keys.count("role")) {
    Error(key.where, TrFormat("task step {0} needs a `role`", Quoted(step.id)));
  }
  if (step.kind == StepKind::kWait && step.keys.count("on_timeout") &&
      !step.keys.count("timeout")) {
    Error(step.keys["on_timeout"], Tr("`on_timeout` needs a `timeout`"));
  }
  return step;
}

void Builder::BuildStepKey(const std::string& key, const YamlNode& value, Step& step) {
  if (key == "adapter") {
    step.department = Text(value, "adapter").value_or("");
  } else if (key == "call") {
    step.call = Template(value, "call").value_or(nlohmann::json::object());
  } else if (key == "save_as") {
    step.save_as = Name(value, "save_as", IsIdentifier,
                        TrNoop("invalid save_as {0}; use lowercase letters, digits and '_', not "
                               "starting with a digit"))
                       .value_or("");
  } else if (key == "reuse") {
    step.reuse = DurationValue(value, "reuse", false);
  } else if (key == "personal") {
    step.personal = Boolean(value, "personal").value_or(false);
  } else if (key == "timeout") {
    std::optional<Duration> timeout = DurationValue(value, "timeout", true);
    if (step.kind == StepKind::kWait) {
      step.wait_timeout = timeout;
    } else {
      step.timeout = timeout;
    }
  } else if (key == "accept_timeout") {
    step.accept_timeout = DurationValue(value, "accept_timeout", false);
  } else if (key == "retry") {
    BuildRetry(value, step);
  } else if (key == "on_error") {
    step.on_error = Text(value, "on_error").value_or("");
  } else if (key == "next") {
    BuildNext(value, step);
  } else if (key == "description") {
    step.description = Text(value, "description", false).value_or("");
  } else if (key == "task") {
    step.task = LocalText(value, "task", &step.task_titles).value_or("");
  } else if (key == "role") {
    step.role = Text(value, "role").value_or("");
  } else if (key == "form") {
    BuildForm(value, step);
  } else if (key == "deadline") {
    step.deadline = DurationValue(value, "deadline", false);
  } else if (key == "escalate_to") {
    step.escalate_to = Text(value, "escalate_to").value_or("");
  } else if (key == "parallel") {
    if (!value.IsSequence() || value.items.empty()) {
      Error(value.where, Tr("'parallel' must be a non-empty list of step ids, e.g. "
                            "[residence, health_card]"));
      return;
    }
    for (const YamlNode& item : value.items) {
      std::optional<std::string> branch = Text(item, Tr("parallel branch"));
      if (!branch) continue;
      if (Contains(step.branches, *branch)) {
        Error(item.where, TrFormat("branch {0} is listed twice", Quoted(*branch)));
        continue;
      }
      step.branches.push_back(*branch);
      step.branch_where.push_back(item.where);
    }
  } else if (key == "wait") {
    step.signal =
        Name(value, Tr("signal name"), IsStepId,
             TrNoop("invalid signal name {0}; use lowercase letters, digits, '_' and '-'"))
            .value_or("");
  } else if (key == "pauses_deadline") {
    step.pauses_deadline = Boolean(value, "pauses_deadline").value_or(false);
  } else if (key == "on_timeout") {
    step.on_timeout = Text(value, "on_timeout").value_or("");
  } else if (key == "call_procedure") {
    step.procedure =
        Name(value, Tr("procedure name"), IsProcedureName,
             TrNoop("invalid procedure name {0}; use lowercase letters, digits and '-'"))
            .value_or("");
  } else if (key == "input") {
    step.input = Template(value, "input").value_or(nlohmann::json::object());
  } else if (key == "end") {
    step.outcome = Name(value, Tr("end outcome"), IsStepId,
                        TrNoop("invalid end outcome {0}; use lowercase letters, digits, '_' and "
                               "'-', e.g. completed"))
                       .value_or("");
  } else if (key == "reason") {
    step.reason = WholeExpressionValue(value, "reason");
  }
}

void Builder::BuildNext(const YamlNode& value, Step& step) {
  if (value.IsScalar()) {
    std::optional<std::string> target = Text(value, "next");
    if (!target) return;
    if (step.kind == StepKind::kDecision) {
      Error(value.where, Tr("a decision step needs `next` as a list of `- if: ... goto: ...` "
                            "ending in a bare `- goto:`"));
    }
    step.next.push_back(Transition{std::nullopt, *target, value.where});
    return;
  }
  if (!value.IsSequence()) {
    Error(value.where, TrFormat("'next' must be a step id or a list of {{if, goto}}, not {0}",
                                value.KindName()));
    return;
  }
  if (value.items.empty()) {
    Error(value.where, Tr("'next' is an empty list; end it with a bare `- goto:`"));
    return;
  }
  static const std::vector<std::string> kItemKeys = {"if", "goto"};
  for (size_t i = 0; i < value.items.size(); ++i) {
    const YamlNode& item = value.items[i];
    bool last = i + 1 == value.items.size();
    if (!item.IsMapping()) {
      Error(item.where, TrFormat("each item of a `next` list is {{if, goto}} or a final "
                                 "{{goto}}, not {0}",
                                 item.KindName()));
      continue;
    }
    for (const auto& [k, v] : item.entries) {
      if (!Contains(kItemKeys, k.scalar)) {
        std::string suggestion = Suggestion(k.scalar, kItemKeys);
        Error(k.where,
              suggestion.empty()
                  ? TrFormat("unknown key {0} in a `next` item; use `if` and `goto`",
                             Quoted(k.scalar))
                  : TrFormat("unknown key {0} in a `next` item{1}", Quoted(k.scalar), suggestion));
      }
    }
    const YamlNode* condition = item.Find("if");
    const YamlNode* target = item.Find("goto");
    Transition transition;
    if (condition == nullptr && !last) {
      Error(item.where, Tr("a `- goto:` without `if` must be the last item of `next`"));
    }
    if (condition != nullptr && last) {
      Error(item.where, Tr("add a final `- goto:` for when no condition holds"));
    }
    if (condition != nullptr) transition.condition = WholeExpressionValue(*condition, "if");
    if (target == nullptr) {
      Error(item.where, Tr("this `next` item has no `goto`"));
      continue;
    }
    std::optional<std::string> id = Text(*target, "goto");
    if (!id) continue;
    transition.target = *id;
    transition.where = target->where;
    step.next.push_back(std::move(transition));
  }
}

void Builder::BuildRetry(const YamlNode& value, Step& step) {
  if (!value.IsMapping()) {
    Error(value.where,
          TrFormat("'retry' must be a mapping {{attempts, backoff, max_backoff}}, not {0}",
                   value.KindName()));
    return;
  }
  static const std::vector<std::string> kRetryKeys = {"attempts", "backoff", "max_backoff"};
  std::optional<Duration> backoff;
  std::optional<Duration> max_backoff;
  const YamlNode* max_node = nullptr;
  for (const auto& [k, v] : value.entries) {
    if (k.scalar == "attempts") {
      int64_t attempts = -1;
      if (v.IsScalar() && !v.quoted) {
        nlohmann::json typed = TypePlainScalar(v.scalar);
        if (typed.is_number_integer()) attempts = typed.get<int64_t>();
      }
      if (attempts < 1 || attempts > 100) {
        Error(v.where, v.IsScalar()
                           ? TrFormat("retry attempts must be an integer from 1 to 100, not {0}",
                                      Quoted(v.scalar))
                           : std::string(Tr("retry attempts must be an integer from 1 to 100")));
      } else {
        step.retry.attempts = static_cast<int>(attempts);
      }
    } else if (k.scalar == "backoff") {
      backoff = DurationValue(v, "backoff", true);
      if (backoff) step.retry.backoff = *backoff;
    } else if (k.scalar == "max_backoff") {
      max_backoff = DurationValue(v, "max_backoff", true);
      max_node = &v;
      if (max_backoff) step.retry.max_backoff = *max_backoff;
    } else {
      Error(k.where, TrFormat("unknown key {0} in retry{1}", Quoted(k.scalar),
                              Suggestion(k.scalar, kRetryKeys)));
    }
  }
  if (backoff && max_backoff && max_backoff->ApproximateSeconds() < backoff->ApproximateSeconds()) {
    Error(max_node->where, TrFormat("max_backoff ({0}) is shorter than backoff ({1})",
                                    max_backoff->ToString(), backoff->ToString()));
  } else if (backoff && !max_backoff &&
             step.retry.max_backoff.ApproximateSeconds() < backoff->ApproximateSeconds()) {
    // Without its own cap, a long backoff is its own cap.
    step.retry.max_backoff = *backoff;
  }
}

void Builder::BuildForm(const YamlNode& value, Step& step) {
  if (!value.IsMapping()) {
    Error(value.where,
          TrFormat("'form' must be a mapping of field names to types, not {0}", value.KindName()));
    return;
  }
  static const std::vector<std::string> kFieldKeys = {"type",  "required", "enum",
                                                      "label", "pattern",  "personal"};
  // Where each part of the generated schema came from, to place CheckSchema's problems.
  std::map<std::string, SourceLocation> origins;
  nlohmann::json properties = nlohmann::json::object();
  nlohmann::json required = nlohmann::json::array();
  for (const auto& [key, spec] : value.entries) {
    FormField field;
    field.name = key.scalar;
    field.where = key.where;
    std::string pointer = "/properties/" + field.name;
    origins[pointer] = key.where;
    if (!IsIdentifier(field.name)) {
      Error(key.where, TrFormat("invalid form field name {0}; use lowercase letters, digits and "
                                "'_', not starting with a digit",
                                Quoted(field.name)));
    }
    nlohmann::json property = nlohmann::json::object();
    const YamlNode* type_node = nullptr;
    if (spec.IsScalar()) {
      type_node = &spec;
    } else if (spec.IsMapping()) {
      type_node = spec.Find("type");
      for (const auto& [k, v] : spec.entries) {
        const std::string& name = k.scalar;
        if (name == "type") continue;
        origins[pointer + "/" + (name == "label" ? "title" : name)] = v.where;
        if (name == "required") {
          field.required = Boolean(v, "required").value_or(false);
        } else if (name == "enum") {
          if (!v.IsSequence() || v.items.empty()) {
            Error(v.where, Tr("'enum' must be a non-empty list of choices"));
            continue;
          }
          for (const YamlNode& choice : v.items) {
            if (!choice.IsScalar()) {
              Error(choice.where,
                    TrFormat("each choice must be a scalar, not {0}", choice.KindName()));
              continue;
            }
            field.choices.push_back(choice.scalar);
          }
          property["enum"] = YamlToJson(v);
        } else if (name == "label") {
          field.label = LocalText(v, "label", &field.labels).value_or("");
          property["title"] = field.label;
        } else if (name == "pattern") {
          field.pattern = Text(v, "pattern").value_or("");
          property["pattern"] = field.pattern;
        } else if (name == "personal") {
          field.personal = Boolean(v, "personal").value_or(false);
          if (field.personal) property["personal"] = true;
        } else {
          Error(k.where, TrFormat("unknown key {0} in form field {1}{2}", Quoted(name),
                                  Quoted(field.name), Suggestion(name, kFieldKeys)));
        }
      }
    } else {
      Error(spec.IsNull() ? key.where : spec.where,
            TrFormat("form field {0} needs a type: one of string, boolean, integer, number, "
                     "date, object, array",
                     Quoted(field.name)));
    }
    if (type_node != nullptr) {
      std::optional<std::string> type = Text(*type_node, "type");
      if (type && !Contains(kFormTypes, *type)) {
        std::string suggestion = Suggestion(*type, kFormTypes);
        Error(type_node->where,
              suggestion.empty()
                  ? TrFormat("unknown type {0} for form field {1}; use string, boolean, integer, "
                             "number, date, object or array",
                             Quoted(*type), Quoted(field.name))
                  : TrFormat("unknown type {0} for form field {1}{2}", Quoted(*type),
                             Quoted(field.name), suggestion));
      } else if (type) {
        field.type = *type;
      }
      origins[pointer + "/type"] = type_node->where;
    } else if (spec.IsMapping()) {
      Error(spec.where, TrFormat("form field {0} needs a `type`", Quoted(field.name)));
    }
    if (field.type == "date") {
      property["type"] = "string";
      property["format"] = "date";
    } else {
      property["type"] = field.type;
    }
    properties[field.name] = std::move(property);
    if (field.required) required.push_back(field.name);
    step.form.push_back(std::move(field));
  }
  nlohmann::json schema = {
      {"type", "object"}, {"properties", std::move(properties)}, {"additionalProperties", false}};
  if (!required.empty()) schema["required"] = std::move(required);
  for (const SchemaProblem& problem : CheckSchema(schema)) {
    // The deepest part of the pointer that came from the file.
    SourceLocation where = step.keys.count("form") ? step.keys.at("form") : step.where;
    std::string pointer = problem.pointer;
    while (true) {
      auto it = origins.find(pointer);
      if (it != origins.end()) {
        where = it->second;
        break;
      }
      size_t slash = pointer.rfind('/');
      if (slash == std::string::npos || slash == 0) break;
      pointer.resize(slash);
    }
    Error(where, TrFormat("form: {0}", problem.message));
  }
  step.form_schema = std::move(schema);
}

}  // namespace wf::workflows::detail
