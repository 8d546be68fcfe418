#include "workflows/loader.hpp"

#include <cerrno>
#include <charconv>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>

#include "workflows/checks.hpp"
#include "workflows/hash.hpp"
#include "workflows/loader_builder.hpp"
#include "workflows/schema.hpp"

namespace wf::workflows {

namespace detail {

void Builder::CheckScalarExpressions(const YamlNode& node) {
  if (node.scalar.find("${") == std::string::npos) return;
  std::vector<EmbeddedExpression> found;
  size_t error_offset = 0;
  if (!FindExpressions(node.scalar, &found, &error_offset)) {
    Error(LocateInScalar(map_, node, error_offset), Tr("unterminated `${`: close it with `}`"));
    return;
  }
  for (const EmbeddedExpression& embedded : found) {
    ExpressionError error;
    if (!Expression::Compile(embedded.program, &error)) {
      Error(LocateInScalar(map_, node, embedded.program_begin + error.offset),
            TrFormat("invalid expression: {0}", error.message));
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
    if (non_empty) Error(value.where, TrFormat("{0} needs a value", Quoted(what)));
    return non_empty ? std::nullopt : std::optional<std::string>("");
  }
  if (!value.IsScalar()) {
    Error(value.where, TrFormat("{0} must be a string, not {1}", Quoted(what), value.KindName()));
    return std::nullopt;
  }
  if (non_empty && value.scalar.empty()) {
    Error(value.where, TrFormat("{0} must not be empty", Quoted(what)));
    return std::nullopt;
  }
  return value.scalar;
}

std::optional<std::string> Builder::Name(const YamlNode& value, const std::string& what,
                                         bool (*valid)(const std::string&), const char* invalid) {
  std::optional<std::string> text = Text(value, what);
  if (!text) return std::nullopt;
  if (!valid(*text)) {
    const std::string quoted = Quoted(*text);
    Error(value.where, TrFill(Tr(invalid), invalid, fmt::make_format_args(quoted)));
    return std::nullopt;
  }
  return text;
}

std::optional<bool> Builder::Boolean(const YamlNode& value, const std::string& what) {
  if (value.IsScalar() && !value.quoted) {
    nlohmann::json typed = TypePlainScalar(value.scalar);
    if (typed.is_boolean()) return typed.get<bool>();
  }
  Error(value.where, TrFormat("{0} must be true or false", Quoted(what)));
  return std::nullopt;
}

std::optional<Duration> Builder::DurationValue(const YamlNode& value, const std::string& what,
                                               bool clock_only) {
  std::optional<std::string> text = Text(value, what);
  if (!text) return std::nullopt;
  std::string why;
  std::optional<Duration> duration = ParseDuration(*text, &why);
  if (!duration) {
    Error(value.where, TrFormat("invalid {0}: {1}", what, why));
    return std::nullopt;
  }
  if (duration->amount <= 0) {
    Error(value.where, TrFormat("{0} must be longer than 0", what));
    return std::nullopt;
  }
  if (clock_only && duration->IsWorkingDays()) {
    Error(value.where,
          TrFormat("{0} must be clock time (s, m, h or days), not working days", what));
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
    Error(value.where, TrFormat("`{0}` must be a whole expression `${{ ... }}`", what));
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
    Error(value.where, TrFormat("{0} must be a mapping, not {1}", Quoted(what), value.KindName()));
    return std::nullopt;
  }
  // Embedded expressions were compiled by CheckExpressions.
  return YamlToJson(value);
}

Procedure Builder::Build(const YamlNode& root) {
  Procedure procedure;
  if (root.IsNull()) {
    Error({1, 1}, Tr("the definition is empty; a procedure needs at least `procedure`, `agency` "
                     "and `steps`"));
    return procedure;
  }
  if (!root.IsMapping()) {
    Error(root.where,
          TrFormat("a procedure definition must be a mapping of keys, not {0}", root.KindName()));
    return procedure;
  }
  CheckExpressions(root);

  std::map<std::string, const YamlNode*> values;
  for (const auto& [key, value] : root.entries) {
    const std::string& name = key.scalar;
    if (!Contains(kTopLevelKeys, name)) {
      Error(key.where, TrFormat("unknown top-level key {0}{1}", Quoted(name),
                                Suggestion(name, kTopLevelKeys)));
      continue;
    }
    procedure.keys[name] = key.where;
    procedure.values[name] = value.where.line ? value.where : key.where;
    values[name] = &value;
  }
  for (const char* required : {"procedure", "agency", "steps"}) {
    if (!values.count(required)) {
      Error(root.where, TrFormat("missing required key '{0}'", required));
    }
  }

  auto value_of = [&](const char* name) -> const YamlNode* {
    auto it = values.find(name);
    return it == values.end() ? nullptr : it->second;
  };
  if (const YamlNode* v = value_of("procedure")) {
    procedure.name =
        Name(*v, Tr("procedure name"), IsProcedureName,
             TrNoop("invalid procedure name {0}; use lowercase letters, digits and '-'"))
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
      Error(v->where, v->IsScalar() ? TrFormat("version must be a positive integer, not {0}",
                                               Quoted(v->scalar))
                                    : std::string(Tr("version must be a positive integer")));
    }
  }
  if (const YamlNode* v = value_of("title")) {
    procedure.title = LocalText(*v, "title", &procedure.titles).value_or("");
  }
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
                TrFormat("each legal basis must be a string, not {0}", item.KindName()));
        }
      }
    } else {
      Error(v->where, Tr("'legal_basis' must be a string or a list of strings"));
    }
  }
  if (const YamlNode* v = value_of("deadline")) {
    procedure.deadline = DurationValue(*v, "deadline", false);
  }
  if (const YamlNode* v = value_of("dedupe")) {
    procedure.dedupe = WholeExpressionValue(*v, "dedupe");
  }
  if (const YamlNode* v = value_of("retention")) {
    procedure.retention = DurationValue(*v, "retention", false);
  }
  if (const YamlNode* v = value_of("input")) BuildInputSchema(*v, procedure);
  if (const YamlNode* v = value_of("roles")) BuildRoles(*v, procedure);
  if (const YamlNode* v = value_of("steps")) {
    if (!v->IsMapping()) {
      Error(v->where,
            TrFormat("'steps' must be a mapping of step ids to steps, not {0}", v->KindName()));
    } else if (v->entries.empty()) {
      Error(v->where, Tr("'steps' is empty; a procedure needs at least one step"));
    } else {
      for (const auto& [key, value] : v->entries) procedure.steps.push_back(BuildStep(key, value));
    }
  }
  if (const YamlNode* v = value_of("start")) {
    procedure.start =
        Name(*v, Tr("start step"), IsStepId, TrNoop("invalid start step {0}; use a step id"))
            .value_or("");
  } else if (!procedure.steps.empty()) {
    procedure.start = procedure.steps.front().id;
  }
  return procedure;
}

void Builder::BuildInputSchema(const YamlNode& value, Procedure& procedure) {
  if (!value.IsMapping()) {
    Error(value.where, TrFormat("'input' must be a schema (a mapping), not {0}", value.KindName()));
    return;
  }
  nlohmann::json schema = YamlToJson(value);
  for (const SchemaProblem& problem : CheckSchema(schema)) {
    Error(LocatePointer(value, problem.pointer), TrFormat("input schema: {0}", problem.message));
  }
  procedure.input_schema = std::move(schema);
}

void Builder::BuildRoles(const YamlNode& value, Procedure& procedure) {
  if (!value.IsMapping()) {
    Error(value.where, TrFormat("'roles' must be a mapping of role names to "
                                "{{agency, description}}, not {0}",
                                value.KindName()));
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
      Error(key.where, TrFormat("invalid role name {0}; use lowercase letters, digits, '_' and '-'",
                                Quoted(role.name)));
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
          Error(k.where, TrFormat("unknown key {0} in role {1}{2}", Quoted(k.scalar),
                                  Quoted(role.name), Suggestion(k.scalar, kRoleKeys)));
        }
      }
    } else if (!spec.IsNull()) {
      Error(spec.where,
            TrFormat("role {0} must be a mapping like {{agency: commune-justice}}, not {1}",
                     Quoted(role.name), spec.KindName()));
    }
    procedure.roles[role.name] = std::move(role);
  }
}

}  // namespace detail

namespace {

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

LoadResult LoadProcedure(std::string_view text, const std::string& file,
                         const DeploymentNames* deployment) {
  try {
    DiagnosticSink sink(file);
    YamlNode root = ParseYaml(text, sink);
    if (!sink.empty()) return Finish(sink, std::nullopt);
    detail::Builder builder(text, sink);
    Procedure procedure = builder.Build(root);
    procedure.file = file;
    procedure.source = std::string(text);
    procedure.content_hash = Sha256Hex(text);
    CheckProcedure(procedure, sink, deployment);
    return Finish(sink, std::move(procedure));
  } catch (const std::exception& e) {
    // Only resource exhaustion or a bug gets here; report it rather than crash `wf validate`.
    return SingleError(file, TrFormat("internal error while loading: {0}", e.what()));
  } catch (...) {
    return SingleError(file, Tr("internal error while loading"));
  }
}

LoadResult LoadProcedureFile(const std::string& path, const DeploymentNames* deployment) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    return SingleError(path, Tr("cannot read file: it is a directory"));
  }
  uintmax_t size = std::filesystem::file_size(path, ec);
  if (!ec && size > kMaxDefinitionBytes) {
    return SingleError(path, TrFormat("file is {0} bytes, larger than the {1}-byte limit for a "
                                      "definition",
                                      i18n::Number(static_cast<long long>(size)),
                                      i18n::Number(static_cast<long long>(kMaxDefinitionBytes))));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return SingleError(path, TrFormat("cannot read file: {0}", std::strerror(errno)));
  // Read at most one byte past the limit: the size on disk may lie (pipes, /proc, growth).
  std::string text(kMaxDefinitionBytes + 1, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  if (in.bad()) return SingleError(path, Tr("cannot read file: read error"));
  text.resize(static_cast<size_t>(in.gcount()));
  if (text.size() > kMaxDefinitionBytes) {
    return SingleError(path, TrFormat("file is larger than the {0}-byte limit for a definition",
                                      i18n::Number(static_cast<long long>(kMaxDefinitionBytes))));
  }
  return LoadProcedure(text, path, deployment);
}

}  // namespace wf::workflows
