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
    Error(key.where,
          "invalid step id " + Quoted(step.id) + "; use lowercase letters, digits, '_' and '-'");
  }
  if (!value.IsMapping()) {
    Error(value.IsNull() ? key.where : value.where,
          "step " + Quoted(step.id) + " must be a mapping of keys, not " + value.KindName());
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
      Error(key.where, "step " + Quoted(step.id) +
                           " has no kind; give it one of `adapter`, `task`, `parallel`, `wait`, "
                           "`call_procedure`, `end`, or a `next` list (a decision)");
    }
  } else if (kinds.size() > 1) {
    std::string names;
    for (size_t i = 0; i < kinds.size(); ++i) {
      if (i > 0) names += i + 1 == kinds.size() ? " and " : ", ";
      names += Quoted(kinds[i]);
    }
    Error(key.where, "step " + Quoted(step.id) + " has " + std::to_string(kinds.size()) +
                         " kinds, " + names + "; a step has exactly one");
  }

  for (const auto& [k, v] : value.entries) {
    const std::string& name = k.scalar;
    const std::vector<std::string>& allowed = kind_known ? KeysOf(step.kind) : AllStepKeys();
    if (!Contains(AllStepKeys(), name)) {
      std::string suggestion = Suggestion(name, allowed);
      if (suggestion.empty()) suggestion = Suggestion(name, AllStepKeys());
      Error(k.where, "unknown key " + Quoted(name) + " in step " + Quoted(step.id) + suggestion);
      continue;
    }
    if (!Contains(allowed, name)) {
      Error(k.where,
            "key " + Quoted(name) + " does not apply to " + WithArticle(step.kind) + " step");
    }
    step.keys[name] = k.where;
    step.values[name] = v.where.line ? v.where : k.where;
    BuildStepKey(name, v, step);
  }

  if (step.kind == StepKind::kTask && kind_known && !step.keys.count("role")) {
    Error(key.where, "task step " + Quoted(step.id) + " needs a `role`");
  }
  if (step.kind == StepKind::kWait && step.keys.count("on_timeout") &&
      !step.keys.count("timeout")) {
    Error(step.keys["on_timeout"], "`on_timeout` needs a `timeout`");
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
                        "lowercase letters, digits and '_', not starting with a digit")
                       .value_or("");
  } else if (key == "reuse") {
    step.reuse = DurationValue(value, "reuse", false);
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
    step.task = Text(value, "task").value_or("");
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
      Error(value.where,
            "'parallel' must be a non-empty list of step ids, e.g. "
            "[residence, health_card]");
      return;
    }
    for (const YamlNode& item : value.items) {
      std::optional<std::string> branch = Text(item, "parallel branch");
      if (!branch) continue;
      if (Contains(step.branches, *branch)) {
        Error(item.where, "branch " + Quoted(*branch) + " is listed twice");
        continue;
      }
      step.branches.push_back(*branch);
      step.branch_where.push_back(item.where);
    }
  } else if (key == "wait") {
    step.signal =
        Name(value, "signal name", IsStepId, "lowercase letters, digits, '_' and '-'").value_or("");
  } else if (key == "pauses_deadline") {
    step.pauses_deadline = Boolean(value, "pauses_deadline").value_or(false);
  } else if (key == "on_timeout") {
    step.on_timeout = Text(value, "on_timeout").value_or("");
  } else if (key == "call_procedure") {
    step.procedure =
        Name(value, "procedure name", IsProcedureName, "lowercase letters, digits and '-'")
            .value_or("");
  } else if (key == "input") {
    step.input = Template(value, "input").value_or(nlohmann::json::object());
  } else if (key == "end") {
    step.outcome = Name(value, "end outcome", IsStepId,
                        "lowercase letters, digits, '_' and '-', e.g. completed")
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
      Error(value.where,
            "a decision step needs `next` as a list of `- if: ... goto: ...` "
            "ending in a bare `- goto:`");
    }
    step.next.push_back(Transition{std::nullopt, *target, value.where});
    return;
  }
  if (!value.IsSequence()) {
    Error(value.where,
          std::string("'next' must be a step id or a list of {if, goto}, not ") + value.KindName());
    return;
  }
  if (value.items.empty()) {
    Error(value.where, "'next' is an empty list; end it with a bare `- goto:`");
    return;
  }
  static const std::vector<std::string> kItemKeys = {"if", "goto"};
  for (size_t i = 0; i < value.items.size(); ++i) {
    const YamlNode& item = value.items[i];
    bool last = i + 1 == value.items.size();
    if (!item.IsMapping()) {
      Error(item.where, std::string("each item of a `next` list is {if, goto} or a final "
                                    "{goto}, not ") +
                            item.KindName());
      continue;
    }
    for (const auto& [k, v] : item.entries) {
      if (!Contains(kItemKeys, k.scalar)) {
        std::string suggestion = Suggestion(k.scalar, kItemKeys);
        Error(k.where, "unknown key " + Quoted(k.scalar) + " in a `next` item" +
                           (suggestion.empty() ? "; use `if` and `goto`" : suggestion));
      }
    }
    const YamlNode* condition = item.Find("if");
    const YamlNode* target = item.Find("goto");
    Transition transition;
    if (condition == nullptr && !last) {
      Error(item.where, "a `- goto:` without `if` must be the last item of `next`");
    }
    if (condition != nullptr && last) {
      Error(item.where, "add a final `- goto:` for when no condition holds");
    }
    if (condition != nullptr) transition.condition = WholeExpressionValue(*condition, "if");
    if (target == nullptr) {
      Error(item.where, "this `next` item has no `goto`");
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
    Error(value.where, std::string("'retry' must be a mapping {attempts, backoff, max_backoff}, "
                                   "not ") +
                           value.KindName());
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
        Error(v.where, "retry attempts must be an integer from 1 to 100" +
                           (v.IsScalar() ? ", not " + Quoted(v.scalar) : std::string()));
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
      Error(k.where,
            "unknown key " + Quoted(k.scalar) + " in retry" + Suggestion(k.scalar, kRetryKeys));
    }
  }
  if (backoff && max_backoff && max_backoff->ApproximateSeconds() < backoff->ApproximateSeconds()) {
    Error(max_node->where, "max_backoff (" + max_backoff->ToString() +
                               ") is shorter than backoff (" + backoff->ToString() + ")");
  } else if (backoff && !max_backoff &&
             step.retry.max_backoff.ApproximateSeconds() < backoff->ApproximateSeconds()) {
    // Without its own cap, a long backoff is its own cap.
    step.retry.max_backoff = *backoff;
  }
}

void Builder::BuildForm(const YamlNode& value, Step& step) {
  if (!value.IsMapping()) {
    Error(value.where,
          std::string("'form' must be a mapping of field names to types, not ") + value.KindName());
    return;
  }
  static const std::vector<std::string> kFieldKeys = {"type", "required", "enum", "label",
                                                      "pattern"};
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
      Error(key.where, "invalid form field name " + Quoted(field.name) +
                           "; use lowercase letters, digits and '_', not starting with a digit");
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
            Error(v.where, "'enum' must be a non-empty list of choices");
            continue;
          }
          for (const YamlNode& choice : v.items) {
            if (!choice.IsScalar()) {
              Error(choice.where,
                    std::string("each choice must be a scalar, not ") + choice.KindName());
              continue;
            }
            field.choices.push_back(choice.scalar);
          }
          property["enum"] = YamlToJson(v);
        } else if (name == "label") {
          field.label = Text(v, "label").value_or("");
          property["title"] = field.label;
        } else if (name == "pattern") {
          field.pattern = Text(v, "pattern").value_or("");
          property["pattern"] = field.pattern;
        } else {
          Error(k.where, "unknown key " + Quoted(name) + " in form field " + Quoted(field.name) +
                             Suggestion(name, kFieldKeys));
        }
      }
    } else {
      Error(spec.IsNull() ? key.where : spec.where, "form field " + Quoted(field.name) +
                                                        " needs a type: one of string, boolean, "
                                                        "integer, number, date, object, array");
    }
    if (type_node != nullptr) {
      std::optional<std::string> type = Text(*type_node, "type");
      if (type && !Contains(kFormTypes, *type)) {
        std::string suggestion = Suggestion(*type, kFormTypes);
        Error(type_node->where,
              "unknown type " + Quoted(*type) + " for form field " + Quoted(field.name) +
                  (suggestion.empty()
                       ? "; use string, boolean, integer, number, date, object or array"
                       : suggestion));
      } else if (type) {
        field.type = *type;
      }
      origins[pointer + "/type"] = type_node->where;
    } else if (spec.IsMapping()) {
      Error(spec.where, "form field " + Quoted(field.name) + " needs a `type`");
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
    Error(where, "form: " + problem.message);
  }
  step.form_schema = std::move(schema);
}

}  // namespace wf::workflows::detail
