// The loader's insides, shared by loader.cpp (the procedure, its roles and input) and
// loader_steps.cpp (steps and their keys): the language's key sets, naming rules, and the
// Builder that turns a YAML tree into the model.
#pragma once

#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "workflows/diagnostic.hpp"
#include "workflows/duration.hpp"
#include "workflows/expression.hpp"
#include "workflows/i18n.hpp"
#include "workflows/procedure.hpp"
#include "workflows/yaml_source.hpp"
#include "workflows/yaml_tree.hpp"

namespace wf::workflows::detail {

// ---------------------------------------------------------------------------------------------
// The language's key sets.

inline const std::vector<std::string> kTopLevelKeys = {
    "procedure", "version", "title", "agency", "legal_basis", "deadline", "dedupe",
    "input",     "roles",   "start", "steps",  "description", "retention"};

// The keys that give a step its kind, in StepKind order.
inline const std::vector<std::pair<std::string, StepKind>> kKindKeys = {
    {"adapter", StepKind::kAdapter},
    {"task", StepKind::kTask},
    {"parallel", StepKind::kParallel},
    {"wait", StepKind::kWait},
    {"call_procedure", StepKind::kCallProcedure},
    {"end", StepKind::kEnd}};

inline const std::vector<std::string>& KeysOf(StepKind kind) {
  static const std::map<StepKind, std::vector<std::string>> kKeys = {
      {StepKind::kAdapter,
       {"adapter", "call", "save_as", "reuse", "timeout", "accept_timeout", "retry", "on_error",
        "next", "description", "personal"}},
      {StepKind::kTask,
       {"task", "role", "form", "save_as", "deadline", "escalate_to", "next", "description"}},
      {StepKind::kParallel, {"parallel", "next", "description"}},
      {StepKind::kWait,
       {"wait", "pauses_deadline", "timeout", "on_timeout", "save_as", "next", "description",
        "personal"}},
      {StepKind::kCallProcedure,
       {"call_procedure", "input", "save_as", "next", "on_error", "description", "personal"}},
      {StepKind::kEnd, {"end", "reason", "description"}},
      {StepKind::kDecision, {"next", "description"}},
  };
  return kKeys.at(kind);
}

inline const std::vector<std::string>& AllStepKeys() {
  static const std::vector<std::string> kAll = [] {
    std::set<std::string> all;
    for (StepKind kind : {StepKind::kAdapter, StepKind::kTask, StepKind::kParallel, StepKind::kWait,
                          StepKind::kCallProcedure, StepKind::kEnd, StepKind::kDecision}) {
      all.insert(KeysOf(kind).begin(), KeysOf(kind).end());
    }
    return std::vector<std::string>(all.begin(), all.end());
  }();
  return kAll;
}

inline const std::vector<std::string> kFormTypes = {"string", "boolean", "integer", "number",
                                                    "date",   "object",  "array"};

inline bool Contains(const std::vector<std::string>& list, const std::string& word) {
  return std::find(list.begin(), list.end(), word) != list.end();
}

inline std::string Quoted(const std::string& s) { return "'" + s + "'"; }

// "; did you mean 'x'?" to end a message with, or empty when no candidate is near.
inline std::string Suggestion(const std::string& word, const std::vector<std::string>& candidates) {
  std::string near = NearestMatch(word, candidates);
  return near.empty() ? "" : TrFormat("; did you mean {0}?", Quoted(near));
}

inline bool IsLowerOrDigit(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

// [a-z0-9_-]+
inline bool IsStepId(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return IsLowerOrDigit(c) || c == '_' || c == '-';
  });
}
// [a-z0-9-]+
inline bool IsProcedureName(const std::string& s) {
  return !s.empty() &&
         std::all_of(s.begin(), s.end(), [](char c) { return IsLowerOrDigit(c) || c == '-'; });
}
// [a-z_][a-z0-9_]*
inline bool IsIdentifier(const std::string& s) {
  return !s.empty() && !(s[0] >= '0' && s[0] <= '9') &&
         std::all_of(s.begin(), s.end(), [](char c) { return IsLowerOrDigit(c) || c == '_'; });
}

// ---------------------------------------------------------------------------------------------
// Builds the model from the tree, reporting every problem of a single key or value. Problems
// between steps (targets, reachability, roles) are CheckProcedure's.
class Builder {
 public:
  Builder(std::string_view text, DiagnosticSink& sink) : map_(text), sink_(sink) {}

  Procedure Build(const YamlNode& root);

 private:
  void Error(SourceLocation where, std::string message) {
    if (where.line == 0) where = {1, 1};
    sink_.Error(where, std::move(message));
  }

  // Every `${ }` in every string value of the file, compiled.
  void CheckExpressions(const YamlNode& node);
  void CheckScalarExpressions(const YamlNode& node);

  // A text people read, written once or per language (`{vi: ..., en: ...}`): the default text
  // (`en`, else the first written), and every language's text in `*by_language` when a mapping.
  std::optional<std::string> LocalText(const YamlNode& value, const std::string& what,
                                       TextByLanguage* by_language);
  std::optional<std::string> Text(const YamlNode& value, const std::string& what,
                                  bool non_empty = true);
  // `invalid` is the message for a text that is not `valid`, marked with TrNoop, with the
  // quoted text as {0}: "invalid signal name {0}; use ...".
  std::optional<std::string> Name(const YamlNode& value, const std::string& what,
                                  bool (*valid)(const std::string&), const char* invalid);
  std::optional<bool> Boolean(const YamlNode& value, const std::string& what);
  std::optional<Duration> DurationValue(const YamlNode& value, const std::string& what,
                                        bool clock_only);
  std::optional<LocatedExpression> WholeExpressionValue(const YamlNode& value,
                                                        const std::string& what);
  std::optional<nlohmann::json> Template(const YamlNode& value, const std::string& what);

  void BuildRoles(const YamlNode& value, Procedure& procedure);
  void BuildInputSchema(const YamlNode& value, Procedure& procedure);
  Step BuildStep(const YamlNode& key, const YamlNode& value);
  void BuildStepKey(const std::string& key, const YamlNode& value, Step& step);
  void BuildNext(const YamlNode& value, Step& step);
  void BuildRetry(const YamlNode& value, Step& step);
  void BuildForm(const YamlNode& value, Step& step);

  SourceMap map_;
  DiagnosticSink& sink_;
};

}  // namespace wf::workflows::detail
