#include "workflows/loader.hpp"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <set>

#include "workflows/checks.hpp"
#include "workflows/duration.hpp"
#include "workflows/expression.hpp"
#include "workflows/hash.hpp"
#include "workflows/schema.hpp"

namespace wf::workflows {

namespace {

// ---------------------------------------------------------------------------------------------
// Typing of plain scalars.

bool IsOneOf(const std::string& s, std::initializer_list<const char*> words) {
  for (const char* w : words) {
    if (s == w) return true;
  }
  return false;
}

// Hand-written rather than std::regex: libstdc++'s matcher recurses per character and a long
// hostile scalar would exhaust the stack.
bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// Digits from `pos`; returns how many.
size_t SkipDigits(const std::string& s, size_t& pos) {
  size_t start = pos;
  while (pos < s.size() && IsDigit(s[pos])) ++pos;
  return pos - start;
}

// [-+]?[0-9]+
bool LooksLikeInteger(const std::string& s) {
  size_t pos = (!s.empty() && (s[0] == '-' || s[0] == '+')) ? 1 : 0;
  return SkipDigits(s, pos) > 0 && pos == s.size();
}

// [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?
bool LooksLikeFloat(const std::string& s) {
  size_t pos = (!s.empty() && (s[0] == '-' || s[0] == '+')) ? 1 : 0;
  size_t whole = SkipDigits(s, pos);
  size_t fraction = 0;
  if (pos < s.size() && s[pos] == '.') {
    ++pos;
    fraction = SkipDigits(s, pos);
  }
  if (whole == 0 && fraction == 0) return false;
  if (pos < s.size() && (s[pos] == 'e' || s[pos] == 'E')) {
    ++pos;
    if (pos < s.size() && (s[pos] == '-' || s[pos] == '+')) ++pos;
    if (SkipDigits(s, pos) == 0) return false;
  }
  return pos == s.size();
}

nlohmann::json TypePlainScalar(const std::string& s) {
  if (IsOneOf(s, {"true", "True", "TRUE"})) return true;
  if (IsOneOf(s, {"false", "False", "FALSE"})) return false;
  if (IsOneOf(s, {"null", "Null", "NULL", "~", ""})) return nullptr;
  if (LooksLikeInteger(s)) {
    const char* begin = s.data() + (s[0] == '+' ? 1 : 0);
    int64_t value = 0;
    auto [end, ec] = std::from_chars(begin, s.data() + s.size(), value);
    if (ec == std::errc() && end == s.data() + s.size()) return value;
    // Too large for 64 bits: keep it as a floating-point number like JSON would.
  }
  if (LooksLikeFloat(s)) {
    errno = 0;
    double value = std::strtod(s.c_str(), nullptr);
    if (errno == 0) return value;
  }
  return s;
}

// ---------------------------------------------------------------------------------------------
// Locations inside scalars, for expression errors.

class SourceMap {
 public:
  explicit SourceMap(std::string_view text) : text_(text) {
    line_starts_.push_back(0);
    for (size_t i = 0; i < text.size(); ++i) {
      if (text[i] == '\n') line_starts_.push_back(i + 1);
    }
  }

  // Byte offset of a 1-based location, or npos when it is outside the text.
  size_t Offset(SourceLocation where) const {
    if (where.line < 1 || static_cast<size_t>(where.line) > line_starts_.size() ||
        where.column < 1) {
      return std::string_view::npos;
    }
    size_t offset = line_starts_[where.line - 1] + where.column - 1;
    return offset <= text_.size() ? offset : std::string_view::npos;
  }

  SourceLocation At(size_t offset) const {
    auto it = std::upper_bound(line_starts_.begin(), line_starts_.end(), offset);
    size_t line = it - line_starts_.begin();
    return {static_cast<int>(line), static_cast<int>(offset - line_starts_[line - 1] + 1)};
  }

  char CharAt(size_t offset) const { return offset < text_.size() ? text_[offset] : '\0'; }
  std::string_view text() const { return text_; }

 private:
  std::string_view text_;
  std::vector<size_t> line_starts_;
};

// Where the byte at `offset` of `node`'s (decoded) scalar text was written. Best effort: walks
// the source from the scalar's first character, counting decoded bytes, so that quotes, simple
// escapes, folded lines and block indentation are accounted for.
SourceLocation LocateInScalar(const SourceMap& map, const YamlNode& node, size_t offset) {
  size_t pos = map.Offset(node.where);
  if (pos == std::string_view::npos) return node.where;
  std::string_view src = map.text();
  char first = map.CharAt(pos);
  if (first == '|' || first == '>') {
    // Block scalar: content starts on the next line, below a common indentation.
    size_t line_start = src.find('\n', pos);
    if (line_start == std::string_view::npos) return node.where;
    ++line_start;
    size_t indent = 0;
    while (line_start + indent < src.size() && src[line_start + indent] == ' ') ++indent;
    size_t decoded = 0;
    size_t p = line_start + indent;
    while (p < src.size() && decoded < offset) {
      if (src[p] == '\n') {
        ++p;
        size_t skipped = 0;
        while (p < src.size() && src[p] == ' ' && skipped < indent) {
          ++p;
          ++skipped;
        }
      } else {
        ++p;
      }
      ++decoded;
    }
    return map.At(std::min(p, src.size()));
  }
  char quote = (first == '"' || first == '\'') ? first : '\0';
  size_t p = pos + (quote ? 1 : 0);
  size_t decoded = 0;
  while (p < src.size() && decoded < offset) {
    char c = src[p];
    if (c == '\n') {
      // A line break folds into one space together with the next line's indentation.
      ++p;
      while (p < src.size() && (src[p] == ' ' || src[p] == '\t')) ++p;
      ++decoded;
    } else if (quote == '"' && c == '\\' && p + 1 < src.size()) {
      char e = src[p + 1];
      size_t width = e == 'x' ? 4 : e == 'u' ? 6 : e == 'U' ? 10 : 2;
      p += width;
      decoded += (e == 'u' || e == 'U') ? 2 : 1;
    } else if (quote == '\'' && c == '\'' && p + 1 < src.size() && src[p + 1] == '\'') {
      p += 2;
      ++decoded;
    } else {
      ++p;
      ++decoded;
    }
  }
  return map.At(std::min(p, src.size()));
}

// ---------------------------------------------------------------------------------------------
// The language's key sets.

const std::vector<std::string> kTopLevelKeys = {"procedure",   "version",  "title",  "agency",
                                                "legal_basis", "deadline", "dedupe", "input",
                                                "roles",       "start",    "steps",  "description"};

// The keys that give a step its kind, in StepKind order.
const std::vector<std::pair<std::string, StepKind>> kKindKeys = {
    {"adapter", StepKind::kAdapter},
    {"task", StepKind::kTask},
    {"parallel", StepKind::kParallel},
    {"wait", StepKind::kWait},
    {"call_procedure", StepKind::kCallProcedure},
    {"end", StepKind::kEnd}};

const std::vector<std::string>& KeysOf(StepKind kind) {
  static const std::map<StepKind, std::vector<std::string>> kKeys = {
      {StepKind::kAdapter,
       {"adapter", "call", "save_as", "reuse", "timeout", "retry", "on_error", "next",
        "description"}},
      {StepKind::kTask,
       {"task", "role", "form", "save_as", "deadline", "escalate_to", "next", "description"}},
      {StepKind::kParallel, {"parallel", "next", "description"}},
      {StepKind::kWait,
       {"wait", "pauses_deadline", "timeout", "on_timeout", "save_as", "next", "description"}},
      {StepKind::kCallProcedure,
       {"call_procedure", "input", "save_as", "next", "on_error", "description"}},
      {StepKind::kEnd, {"end", "reason", "description"}},
      {StepKind::kDecision, {"next", "description"}},
  };
  return kKeys.at(kind);
}

const std::vector<std::string>& AllStepKeys() {
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

const std::vector<std::string> kFormTypes = {"string", "boolean", "integer", "number",
                                             "date",   "object",  "array"};

bool Contains(const std::vector<std::string>& list, const std::string& word) {
  return std::find(list.begin(), list.end(), word) != list.end();
}

std::string Quoted(const std::string& s) { return "'" + s + "'"; }

std::string Suggestion(const std::string& word, const std::vector<std::string>& candidates) {
  std::string near = NearestMatch(word, candidates);
  return near.empty() ? "" : "; did you mean " + Quoted(near) + "?";
}

std::string WithArticle(StepKind kind) {
  std::string name = StepKindName(kind);
  bool vowel =
      name[0] == 'a' || name[0] == 'e' || name[0] == 'i' || name[0] == 'o' || name[0] == 'u';
  return (vowel ? "an " : "a ") + name;
}

bool IsLowerOrDigit(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

// [a-z0-9_-]+
bool IsStepId(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return IsLowerOrDigit(c) || c == '_' || c == '-';
  });
}
// [a-z0-9-]+
bool IsProcedureName(const std::string& s) {
  return !s.empty() &&
         std::all_of(s.begin(), s.end(), [](char c) { return IsLowerOrDigit(c) || c == '-'; });
}
// [a-z_][a-z0-9_]*
bool IsIdentifier(const std::string& s) {
  return !s.empty() && !(s[0] >= '0' && s[0] <= '9') &&
         std::all_of(s.begin(), s.end(), [](char c) { return IsLowerOrDigit(c) || c == '_'; });
}

// Walks a JSON pointer through a YAML tree and returns where its deepest existing part was
// written: a mapping entry's key, a list's item.
SourceLocation LocatePointer(const YamlNode& root, const std::string& pointer) {
  const YamlNode* node = &root;
  SourceLocation where = root.where;
  size_t pos = 0;
  while (pos < pointer.size() && pointer[pos] == '/') {
    size_t end = pointer.find('/', pos + 1);
    if (end == std::string::npos) end = pointer.size();
    std::string token = pointer.substr(pos + 1, end - pos - 1);
    std::string unescaped;
    for (size_t i = 0; i < token.size(); ++i) {
      if (token[i] == '~' && i + 1 < token.size() && (token[i + 1] == '0' || token[i + 1] == '1')) {
        unescaped += token[i + 1] == '0' ? '~' : '/';
        ++i;
      } else {
        unescaped += token[i];
      }
    }
    pos = end;
    const YamlNode* next = nullptr;
    if (node->IsMapping()) {
      for (const auto& [key, value] : node->entries) {
        if (key.scalar == unescaped) {
          where = key.where;
          next = &value;
          break;
        }
      }
    } else if (node->IsSequence()) {
      size_t index = 0;
      auto [p, ec] = std::from_chars(unescaped.data(), unescaped.data() + unescaped.size(), index);
      if (ec == std::errc() && p == unescaped.data() + unescaped.size() &&
          index < node->items.size()) {
        next = &node->items[index];
        where = next->where;
      }
    }
    if (next == nullptr) break;
    node = next;
  }
  return where;
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

  std::optional<std::string> Text(const YamlNode& value, const std::string& what,
                                  bool non_empty = true);
  std::optional<std::string> Name(const YamlNode& value, const std::string& what,
                                  bool (*valid)(const std::string&), const char* rule);
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

void Builder::CheckScalarExpressions(const YamlNode& node) {
  if (node.scalar.find("${") == std::string::npos) return;
  std::vector<EmbeddedExpression> found;
  size_t error_offset = 0;
  if (!FindExpressions(node.scalar, &found, &error_offset)) {
    Error(LocateInScalar(map_, node, error_offset), "unterminated `${`: close it with `}`");
    return;
  }
  for (const EmbeddedExpression& embedded : found) {
    ExpressionError error;
    if (!Expression::Compile(embedded.program, &error)) {
      Error(LocateInScalar(map_, node, embedded.program_begin + error.offset),
            "invalid expression: " + error.message);
    }
  }
}

void Builder::CheckExpressions(const YamlNode& node) {
  switch (node.kind) {
    case YamlNode::Kind::kScalar:
      CheckScalarExpressions(node);
      break;
    case YamlNode::Kind::kSequence:
      for (const YamlNode& item : node.items) CheckExpressions(item);
      break;
    case YamlNode::Kind::kMapping:
      for (const auto& entry : node.entries) CheckExpressions(entry.second);
      break;
    case YamlNode::Kind::kNull:
      break;
  }
}

std::optional<std::string> Builder::Text(const YamlNode& value, const std::string& what,
                                         bool non_empty) {
  if (value.IsNull()) {
    if (non_empty) Error(value.where, Quoted(what) + " needs a value");
    return non_empty ? std::nullopt : std::optional<std::string>("");
  }
  if (!value.IsScalar()) {
    Error(value.where, Quoted(what) + " must be a string, not " + value.KindName());
    return std::nullopt;
  }
  if (non_empty && value.scalar.empty()) {
    Error(value.where, Quoted(what) + " must not be empty");
    return std::nullopt;
  }
  return value.scalar;
}

std::optional<std::string> Builder::Name(const YamlNode& value, const std::string& what,
                                         bool (*valid)(const std::string&), const char* rule) {
  std::optional<std::string> text = Text(value, what);
  if (!text) return std::nullopt;
  if (!valid(*text)) {
    Error(value.where, "invalid " + what + " " + Quoted(*text) + "; use " + rule);
    return std::nullopt;
  }
  return text;
}

std::optional<bool> Builder::Boolean(const YamlNode& value, const std::string& what) {
  if (value.IsScalar() && !value.quoted) {
    nlohmann::json typed = TypePlainScalar(value.scalar);
    if (typed.is_boolean()) return typed.get<bool>();
  }
  Error(value.where, Quoted(what) + " must be true or false");
  return std::nullopt;
}

std::optional<Duration> Builder::DurationValue(const YamlNode& value, const std::string& what,
                                               bool clock_only) {
  std::optional<std::string> text = Text(value, what);
  if (!text) return std::nullopt;
  std::string why;
  std::optional<Duration> duration = ParseDuration(*text, &why);
  if (!duration) {
    Error(value.where, "invalid " + what + ": " + why);
    return std::nullopt;
  }
  if (duration->amount <= 0) {
    Error(value.where, what + " must be longer than 0");
    return std::nullopt;
  }
  if (clock_only && duration->IsWorkingDays()) {
    Error(value.where, what + " must be clock time (s, m, h or days), not working days");
    return std::nullopt;
  }
  return duration;
}

std::optional<LocatedExpression> Builder::WholeExpressionValue(const YamlNode& value,
                                                               const std::string& what) {
  std::optional<std::string> text = Text(value, what);
  if (!text) return std::nullopt;
  std::optional<std::string> program = WholeExpression(*text);
  if (!program) {
    // An unterminated `${` was already reported by CheckExpressions: say it once.
    if (value.scalar.find("${") != std::string::npos &&
        !FindExpressions(value.scalar, nullptr, nullptr)) {
      return std::nullopt;
    }
    Error(value.where, "`" + what + "` must be a whole expression `${ ... }`");
    return std::nullopt;
  }
  // A compile error was already reported by CheckExpressions, at its column.
  ExpressionError error;
  std::optional<Expression> expression = Expression::Compile(*program, &error);
  if (!expression) return std::nullopt;
  return LocatedExpression{std::move(*expression), value.where};
}

std::optional<nlohmann::json> Builder::Template(const YamlNode& value, const std::string& what) {
  if (value.IsNull()) return nlohmann::json::object();
  if (!value.IsMapping()) {
    Error(value.where, Quoted(what) + " must be a mapping, not " + value.KindName());
    return std::nullopt;
  }
  // Embedded expressions were compiled by CheckExpressions.
  return YamlToJson(value);
}

Procedure Builder::Build(const YamlNode& root) {
  Procedure procedure;
  if (root.IsNull()) {
    Error({1, 1},
          "the definition is empty; a procedure needs at least `procedure`, `agency` "
          "and `steps`");
    return procedure;
  }
  if (!root.IsMapping()) {
    Error(root.where,
          std::string("a procedure definition must be a mapping of keys, not ") + root.KindName());
    return procedure;
  }
  CheckExpressions(root);

  std::map<std::string, const YamlNode*> values;
  for (const auto& [key, value] : root.entries) {
    const std::string& name = key.scalar;
    if (!Contains(kTopLevelKeys, name)) {
      Error(key.where, "unknown top-level key " + Quoted(name) + Suggestion(name, kTopLevelKeys));
      continue;
    }
    procedure.keys[name] = key.where;
    procedure.values[name] = value.where.line ? value.where : key.where;
    values[name] = &value;
  }
  for (const char* required : {"procedure", "agency", "steps"}) {
    if (!values.count(required)) {
      Error(root.where, std::string("missing required key '") + required + "'");
    }
  }

  auto value_of = [&](const char* name) -> const YamlNode* {
    auto it = values.find(name);
    return it == values.end() ? nullptr : it->second;
  };
  if (const YamlNode* v = value_of("procedure")) {
    procedure.name =
        Name(*v, "procedure name", IsProcedureName, "lowercase letters, digits and '-'")
            .value_or("");
  }
  if (const YamlNode* v = value_of("version")) {
    int version = 0;
    if (v->IsScalar() && !v->quoted && LooksLikeInteger(v->scalar)) {
      auto [p, ec] =
          std::from_chars(v->scalar.data(), v->scalar.data() + v->scalar.size(), version);
      if (ec != std::errc() || p != v->scalar.data() + v->scalar.size()) version = 0;
    }
    if (version > 0) {
      procedure.version = version;
    } else {
      Error(v->where, "version must be a positive integer" +
                          (v->IsScalar() ? ", not " + Quoted(v->scalar) : std::string()));
    }
  }
  if (const YamlNode* v = value_of("title")) procedure.title = Text(*v, "title").value_or("");
  if (const YamlNode* v = value_of("agency")) procedure.agency = Text(*v, "agency").value_or("");
  if (const YamlNode* v = value_of("description")) {
    procedure.description = Text(*v, "description", false).value_or("");
  }
  if (const YamlNode* v = value_of("legal_basis")) {
    if (v->IsScalar()) {
      procedure.legal_basis.push_back(v->scalar);
    } else if (v->IsSequence()) {
      for (const YamlNode& item : v->items) {
        if (item.IsScalar()) {
          procedure.legal_basis.push_back(item.scalar);
        } else {
          Error(item.where,
                std::string("each legal basis must be a string, not ") + item.KindName());
        }
      }
    } else {
      Error(v->where, "'legal_basis' must be a string or a list of strings");
    }
  }
  if (const YamlNode* v = value_of("deadline")) {
    procedure.deadline = DurationValue(*v, "deadline", false);
  }
  if (const YamlNode* v = value_of("dedupe")) {
    procedure.dedupe = WholeExpressionValue(*v, "dedupe");
  }
  if (const YamlNode* v = value_of("input")) BuildInputSchema(*v, procedure);
  if (const YamlNode* v = value_of("roles")) BuildRoles(*v, procedure);
  if (const YamlNode* v = value_of("steps")) {
    if (!v->IsMapping()) {
      Error(v->where,
            std::string("'steps' must be a mapping of step ids to steps, not ") + v->KindName());
    } else if (v->entries.empty()) {
      Error(v->where, "'steps' is empty; a procedure needs at least one step");
    } else {
      for (const auto& [key, value] : v->entries) procedure.steps.push_back(BuildStep(key, value));
    }
  }
  if (const YamlNode* v = value_of("start")) {
    procedure.start = Name(*v, "start step", IsStepId, "a step id").value_or("");
  } else if (!procedure.steps.empty()) {
    procedure.start = procedure.steps.front().id;
  }
  return procedure;
}

void Builder::BuildInputSchema(const YamlNode& value, Procedure& procedure) {
  if (!value.IsMapping()) {
    Error(value.where,
          std::string("'input' must be a schema (a mapping), not ") + value.KindName());
    return;
  }
  nlohmann::json schema = YamlToJson(value);
  for (const SchemaProblem& problem : CheckSchema(schema)) {
    Error(LocatePointer(value, problem.pointer), "input schema: " + problem.message);
  }
  procedure.input_schema = std::move(schema);
}

void Builder::BuildRoles(const YamlNode& value, Procedure& procedure) {
  if (!value.IsMapping()) {
    Error(value.where, std::string("'roles' must be a mapping of role names to "
                                   "{agency, description}, not ") +
                           value.KindName());
    return;
  }
  static const std::vector<std::string> kRoleKeys = {"agency", "description"};
  for (const auto& [key, spec] : value.entries) {
    Role role;
    role.name = key.scalar;
    role.where = key.where;
    role.agency = procedure.agency;
    role.agency_where = key.where;
    if (!IsStepId(role.name)) {
      Error(key.where, "invalid role name " + Quoted(role.name) +
                           "; use lowercase letters, digits, '_' and '-'");
    }
    if (spec.IsMapping()) {
      for (const auto& [k, v] : spec.entries) {
        if (k.scalar == "agency") {
          if (auto agency = Text(v, "agency")) {
            role.agency = *agency;
            role.agency_where = v.where;
          }
        } else if (k.scalar == "description") {
          role.description = Text(v, "description", false).value_or("");
        } else {
          Error(k.where, "unknown key " + Quoted(k.scalar) + " in role " + Quoted(role.name) +
                             Suggestion(k.scalar, kRoleKeys));
        }
      }
    } else if (!spec.IsNull()) {
      Error(spec.where, "role " + Quoted(role.name) +
                            " must be a mapping like {agency: commune-justice}, not " +
                            spec.KindName());
    }
    procedure.roles[role.name] = std::move(role);
  }
}

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

LoadResult Finish(DiagnosticSink& sink, std::optional<Procedure> procedure) {
  LoadResult result;
  result.diagnostics = sink.Sorted();
  if (result.diagnostics.empty() && procedure) {
    auto patterns = std::make_shared<SchemaPatterns>();
    patterns->Add(procedure->input_schema);
    for (const Step& step : procedure->steps) patterns->Add(step.form_schema);
    procedure->patterns = std::move(patterns);
    result.procedure = std::move(procedure);
  }
  return result;
}

LoadResult SingleError(const std::string& file, std::string message) {
  DiagnosticSink sink(file);
  sink.Error({1, 1}, std::move(message));
  return Finish(sink, std::nullopt);
}

}  // namespace

nlohmann::json YamlToJson(const YamlNode& node) {
  switch (node.kind) {
    case YamlNode::Kind::kNull:
      return nullptr;
    case YamlNode::Kind::kScalar:
      return node.quoted ? nlohmann::json(node.scalar) : TypePlainScalar(node.scalar);
    case YamlNode::Kind::kSequence: {
      nlohmann::json out = nlohmann::json::array();
      for (const YamlNode& item : node.items) out.push_back(YamlToJson(item));
      return out;
    }
    case YamlNode::Kind::kMapping: {
      nlohmann::json out = nlohmann::json::object();
      for (const auto& [key, value] : node.entries) out[key.scalar] = YamlToJson(value);
      return out;
    }
  }
  return nullptr;
}

LoadResult LoadProcedure(std::string_view text, const std::string& file,
                         const DeploymentNames* deployment) {
  try {
    DiagnosticSink sink(file);
    YamlNode root = ParseYaml(text, sink);
    if (!sink.empty()) return Finish(sink, std::nullopt);
    Builder builder(text, sink);
    Procedure procedure = builder.Build(root);
    procedure.file = file;
    procedure.source = std::string(text);
    procedure.content_hash = Sha256Hex(text);
    CheckProcedure(procedure, sink, deployment);
    return Finish(sink, std::move(procedure));
  } catch (const std::exception& e) {
    // Only resource exhaustion or a bug gets here; report it rather than crash `wf validate`.
    return SingleError(file, std::string("internal error while loading: ") + e.what());
  } catch (...) {
    return SingleError(file, "internal error while loading");
  }
}

LoadResult LoadProcedureFile(const std::string& path, const DeploymentNames* deployment) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    return SingleError(path, "cannot read file: it is a directory");
  }
  uintmax_t size = std::filesystem::file_size(path, ec);
  if (!ec && size > kMaxDefinitionBytes) {
    return SingleError(path, "file is " + std::to_string(size) + " bytes, larger than the " +
                                 std::to_string(kMaxDefinitionBytes) +
                                 "-byte limit for a definition");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return SingleError(path, std::string("cannot read file: ") + std::strerror(errno));
  // Read at most one byte past the limit: the size on disk may lie (pipes, /proc, growth).
  std::string text(kMaxDefinitionBytes + 1, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  if (in.bad()) return SingleError(path, "cannot read file: read error");
  text.resize(static_cast<size_t>(in.gcount()));
  if (text.size() > kMaxDefinitionBytes) {
    return SingleError(path, "file is larger than the " + std::to_string(kMaxDefinitionBytes) +
                                 "-byte limit for a definition");
  }
  return LoadProcedure(text, path, deployment);
}

}  // namespace wf::workflows
