#include "workflows/schema.hpp"

#include <algorithm>
#include <cctype>
#include <exception>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>

#include <re2/re2.h>

#include "workflows/i18n.hpp"

namespace wf::workflows {
namespace {

using nlohmann::json;

// Limits; see the contract in schema.hpp.
constexpr int kMaxSchemaDepth = 64;
constexpr size_t kMaxPatternLength = 1000;
constexpr size_t kMaxPatternSubject = 4096;
// RE2's memory budget per pattern (its default is 8 MiB): enough for any field pattern, and a
// bound on what many loaded procedures can hold.
constexpr int64_t kMaxPatternMemory = 1 << 20;
constexpr size_t kMaxViolations = 100;
constexpr size_t kMaxShownValue = 60;

constexpr std::string_view kKeywords[] = {
    "type",     "required",  "properties",  "additionalProperties",
    "items",    "enum",      "pattern",     "minimum",
    "maximum",  "minLength", "maxLength",   "minItems",
    "maxItems", "format",    "description", "title",
    "personal",
};
constexpr std::string_view kTypeNames[] = {"string", "number", "integer", "boolean",
                                           "object", "array",  "null"};

bool IsKeyword(std::string_view key) {
  return std::find(std::begin(kKeywords), std::end(kKeywords), key) != std::end(kKeywords);
}

bool IsTypeName(std::string_view name) {
  return std::find(std::begin(kTypeNames), std::end(kTypeNames), name) != std::end(kTypeNames);
}

size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      const bool same = std::tolower(static_cast<unsigned char>(a[i - 1])) ==
                        std::tolower(static_cast<unsigned char>(b[j - 1]));
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (same ? 0 : 1)});
      diagonal = up;
    }
  }
  return row[b.size()];
}

std::string EscapePointerToken(std::string_view token) {
  std::string out;
  for (char c : token) {
    if (c == '~') {
      out += "~0";
    } else if (c == '/') {
      out += "~1";
    } else {
      out += c;
    }
  }
  return out;
}

// A JSON value as a clerk reads it, cut short when long.
std::string Show(const json& value) {
  std::string text = value.dump(-1, ' ', false, json::error_handler_t::replace);
  if (text.size() > kMaxShownValue) text = text.substr(0, kMaxShownValue - 3) + "...";
  return text;
}

std::string TypeOf(const json& value) {
  switch (value.type()) {
    case json::value_t::null:
      return "null";
    case json::value_t::boolean:
      return "boolean";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
      return "integer";
    case json::value_t::number_float:
      return "number";
    case json::value_t::string:
      return "string";
    case json::value_t::array:
      return "array";
    case json::value_t::object:
      return "object";
    default:
      return "unsupported value";
  }
}

bool HasType(const json& value, std::string_view type) {
  if (type == "integer") return value.is_number_integer();  // 3.0 is not an integer
  if (type == "number") return value.is_number();
  return TypeOf(value) == type;
}

bool IsNonNegativeInteger(const json& value) {
  return value.is_number_unsigned() || (value.is_number_integer() && value.get<int64_t>() >= 0);
}

std::unique_ptr<re2::RE2> CompilePattern(const std::string& pattern, std::string* error) {
  if (pattern.size() > kMaxPatternLength) {
    *error = TrFormat("pattern is longer than {0} characters",
                      i18n::Number(static_cast<long long>(kMaxPatternLength)));
    return nullptr;
  }
  re2::RE2::Options options;
  options.set_log_errors(false);
  options.set_max_mem(kMaxPatternMemory);
  auto compiled = std::make_unique<re2::RE2>(pattern, options);
  if (!compiled->ok()) {
    *error = TrFormat(
        "pattern {0} is not valid RE2 syntax ({1}); patterns are RE2 regular "
        "expressions, matched in linear time, so backreferences and lookaround "
        "are not available",
        pattern, compiled->error());
    return nullptr;
  }
  return compiled;
}

// YYYY-MM-DD naming a day of the proleptic Gregorian calendar.
enum class DateCheck { kValid, kMalformed, kNoSuchDay };

DateCheck CheckDate(const std::string& text) {
  if (text.size() != 10 || text[4] != '-' || text[7] != '-') return DateCheck::kMalformed;
  for (size_t i : {0, 1, 2, 3, 5, 6, 8, 9}) {
    if (!std::isdigit(static_cast<unsigned char>(text[i]))) return DateCheck::kMalformed;
  }
  const int year = std::stoi(text.substr(0, 4));
  const int month = std::stoi(text.substr(5, 2));
  const int day = std::stoi(text.substr(8, 2));
  if (month < 1 || month > 12 || day < 1) return DateCheck::kNoSuchDay;
  const bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  const int last = kDays[month - 1] + (month == 2 && leap ? 1 : 0);
  return day <= last ? DateCheck::kValid : DateCheck::kNoSuchDay;
}

// Unicode code points in UTF-8 text: JSON Schema counts characters, not bytes.
size_t CodePoints(const std::string& text) {
  size_t count = 0;
  for (unsigned char c : text) {
    if ((c & 0xC0) != 0x80) ++count;
  }
  return count;
}

// ---------------------------------------------------------------------------------------------
// CheckSchema

class SchemaChecker {
 public:
  std::vector<SchemaProblem> TakeProblems() { return std::move(problems_); }

  void Check(const json& schema, const std::string& pointer, int depth) {
    if (depth > kMaxSchemaDepth) {
      Add(pointer,
          TrFormat("schema nested more than {0} levels deep", i18n::Number(kMaxSchemaDepth)));
      return;
    }
    if (!schema.is_object()) {
      Add(pointer, TrFormat("a schema must be a mapping of keywords, got {0}", TypeOf(schema)));
      return;
    }
    for (const auto& [key, value] : schema.items()) {
      const std::string at = pointer + "/" + EscapePointerToken(key);
      if (!IsKeyword(key)) {
        Add(at, UnknownKeyword(key));
        continue;
      }
      if (key == "type") {
        CheckType(value, at);
      } else if (key == "required") {
        CheckRequired(value, at);
      } else if (key == "properties") {
        if (!value.is_object()) {
          Add(at, Tr("properties must be a mapping from property names to schemas"));
          continue;
        }
        for (const auto& [name, member] : value.items()) {
          Check(member, at + "/" + EscapePointerToken(name), depth + 1);
        }
      } else if (key == "additionalProperties") {
        if (!value.is_boolean()) Add(at, Tr("additionalProperties must be true or false"));
      } else if (key == "items") {
        Check(value, at, depth + 1);
      } else if (key == "enum") {
        if (!value.is_array() || value.empty()) {
          Add(at, Tr("enum must be a non-empty list of the allowed values"));
        }
      } else if (key == "pattern") {
        if (!value.is_string()) {
          Add(at, Tr("pattern must be a string (a regular expression)"));
          continue;
        }
        std::string error;
        if (!CompilePattern(value.get<std::string>(), &error)) Add(at, error);
      } else if (key == "minimum" || key == "maximum") {
        if (!value.is_number()) Add(at, TrFormat("{0} must be a number", key));
      } else if (key == "minLength" || key == "maxLength" || key == "minItems" ||
                 key == "maxItems") {
        if (!IsNonNegativeInteger(value)) {
          Add(at, TrFormat("{0} must be a non-negative integer", key));
        }
      } else if (key == "format") {
        if (!value.is_string() || value.get<std::string>() != "date") {
          Add(at, TrFormat("unknown format {0}; the only format is \"date\"", Show(value)));
        }
      } else if (key == "description" || key == "title") {
        if (!value.is_string()) Add(at, TrFormat("{0} must be a string", key));
      } else if (key == "personal") {
        if (!value.is_boolean()) Add(at, Tr("personal must be true or false"));
      }
    }
    CheckRange(schema, pointer, "minimum", "maximum", false);
    CheckRange(schema, pointer, "minLength", "maxLength", true);
    CheckRange(schema, pointer, "minItems", "maxItems", true);
    CheckRequiredAreAllowed(schema, pointer);
  }

 private:
  void Add(const std::string& pointer, std::string message) {
    problems_.push_back({pointer, std::move(message)});
  }

  static std::string UnknownKeyword(const std::string& key) {
    std::string_view best;
    size_t best_distance = 3;
    for (std::string_view keyword : kKeywords) {
      const size_t distance = EditDistance(key, keyword);
      if (distance < best_distance) {
        best_distance = distance;
        best = keyword;
      }
    }
    if (best.empty()) return TrFormat("unknown keyword '{0}'", key);
    return TrFormat("unknown keyword '{0}'; did you mean '{1}'?", key, std::string(best));
  }

  void CheckType(const json& value, const std::string& at) {
    auto unknown = [](const json& name) {
      return TrFormat(
          "unknown type {0}; use string, number, integer, boolean, object, array or "
          "null",
          Show(name));
    };
    if (value.is_string()) {
      if (!IsTypeName(value.get<std::string>())) Add(at, unknown(value));
      return;
    }
    if (!value.is_array() || value.empty()) {
      Add(at, Tr("type must be a type name or a non-empty list of them; use string, number, "
                 "integer, boolean, object, array or null"));
      return;
    }
    std::set<std::string> seen;
    for (size_t i = 0; i < value.size(); ++i) {
      const json& name = value[i];
      const std::string item_at = at + "/" + std::to_string(i);
      if (!name.is_string() || !IsTypeName(name.get<std::string>())) {
        Add(item_at, unknown(name));
      } else if (!seen.insert(name.get<std::string>()).second) {
        Add(item_at, TrFormat("type {0} is listed twice", Show(name)));
      }
    }
  }

  void CheckRequired(const json& value, const std::string& at) {
    if (!value.is_array()) {
      Add(at, Tr("required must be a list of property names"));
      return;
    }
    std::set<std::string> seen;
    for (size_t i = 0; i < value.size(); ++i) {
      const std::string item_at = at + "/" + std::to_string(i);
      if (!value[i].is_string()) {
        Add(item_at, TrFormat("required must list property names, got {0}", Show(value[i])));
      } else if (!seen.insert(value[i].get<std::string>()).second) {
        Add(item_at, TrFormat("required property {0} is listed twice", Show(value[i])));
      }
    }
  }

  void CheckRange(const json& schema, const std::string& pointer, const std::string& low_key,
                  const std::string& high_key, bool counts) {
    const auto low = schema.find(low_key);
    const auto high = schema.find(high_key);
    if (low == schema.end() || high == schema.end()) return;
    const bool comparable = counts ? IsNonNegativeInteger(*low) && IsNonNegativeInteger(*high)
                                   : low->is_number() && high->is_number();
    if (comparable && *high < *low) {
      Add(pointer + "/" + high_key,
          TrFormat("{0} {1} is less than {2} {3}", high_key, Show(*high), low_key, Show(*low)));
    }
  }

  // With additionalProperties: false a required property outside `properties` can never be
  // given: the schema refuses every input.
  void CheckRequiredAreAllowed(const json& schema, const std::string& pointer) {
    const auto additional = schema.find("additionalProperties");
    const auto required = schema.find("required");
    if (additional == schema.end() || *additional != false || required == schema.end() ||
        !required->is_array()) {
      return;
    }
    const auto properties = schema.find("properties");
    for (size_t i = 0; i < required->size(); ++i) {
      const json& name = (*required)[i];
      if (!name.is_string()) continue;
      const bool listed = properties != schema.end() && properties->is_object() &&
                          properties->contains(name.get<std::string>());
      if (!listed) {
        Add(pointer + "/required/" + std::to_string(i),
            TrFormat("required property {0} is not in properties, and additionalProperties "
                     "is false",
                     Show(name)));
      }
    }
  }

  std::vector<SchemaProblem> problems_;
};

// ---------------------------------------------------------------------------------------------
// ValidateData

bool IsIdentifier(const std::string& key) {
  if (key.empty() || !(std::isalpha(static_cast<unsigned char>(key[0])) || key[0] == '_')) {
    return false;
  }
  return std::all_of(key.begin(), key.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
  });
}

std::string MemberPath(const std::string& parent, const std::string& key) {
  if (IsIdentifier(key)) return parent + "." + key;
  return parent + "[" + json(key).dump(-1, ' ', false, json::error_handler_t::replace) + "]";
}

class DataValidator {
 public:
  explicit DataValidator(const SchemaPatterns* patterns) : patterns_(patterns) {}

  std::vector<SchemaViolation> TakeViolations() {
    if (truncated_) {
      violations_.push_back({"$", TrFormat("more problems were found; only the first {0} are "
                                           "shown",
                                           i18n::Number(static_cast<long long>(kMaxViolations)))});
    }
    return std::move(violations_);
  }

  void Validate(const json& schema, const json& data, const std::string& path, int depth) {
    if (!schema.is_object() || depth > kMaxSchemaDepth || Full()) return;
    // Below a `personal: true` property no message repeats the value given.
    struct Restore {
      bool& flag;
      bool was;
      ~Restore() { flag = was; }
    } restore{personal_, personal_};
    if (schema.value("personal", false)) personal_ = true;

    if (const auto type = schema.find("type"); type != schema.end() && !MatchesType(*type, data)) {
      Add(path, TrFormat("expected {0}, got {1}", TypeList(*type), TypeOf(data)));
      return;  // the other keywords would only repeat the same mistake
    }
    if (const auto allowed = schema.find("enum"); allowed != schema.end() && allowed->is_array()) {
      if (std::find(allowed->begin(), allowed->end(), data) == allowed->end()) {
        std::string choices;
        for (size_t i = 0; i < allowed->size() && i < 10; ++i) {
          if (i > 0) choices += ", ";
          choices += Show((*allowed)[i]);
        }
        if (allowed->size() > 10) choices += ", ...";
        Add(path, TrFormat("must be one of {0}; got {1}", choices, ShowData(data)));
      }
    }
    if (data.is_string()) ValidateString(schema, data.get_ref<const std::string&>(), path);
    if (data.is_number()) ValidateNumber(schema, data, path);
    if (data.is_array()) ValidateArray(schema, data, path, depth);
    if (data.is_object()) ValidateObject(schema, data, path, depth);
  }

 private:
  bool Full() const { return truncated_; }
  std::string ShowData(const json& value) const {
    return personal_ ? Tr("a personal value, not shown") : Show(value);
  }

  void Add(const std::string& path, std::string message) {
    if (violations_.size() >= kMaxViolations) {
      truncated_ = true;
      return;
    }
    violations_.push_back({path, std::move(message)});
  }

  static bool MatchesType(const json& type, const json& data) {
    if (type.is_string()) return HasType(data, type.get_ref<const std::string&>());
    if (!type.is_array()) return true;  // malformed schema: CheckSchema reports it
    for (const json& name : type) {
      if (name.is_string() && HasType(data, name.get_ref<const std::string&>())) return true;
    }
    return false;
  }

  static std::string TypeList(const json& type) {
    if (type.is_string()) return type.get<std::string>();
    auto name = [](const json& item) {
      return item.is_string() ? item.get<std::string>() : Show(item);
    };
    if (type.empty()) return "";
    std::string out;  // string, number or null
    for (size_t i = 0; i + 1 < type.size(); ++i) {
      if (i > 0) out += ", ";
      out += name(type[i]);
    }
    if (type.size() == 1) return name(type[0]);
    return TrFormat("{0} or {1}", out, name(type[type.size() - 1]));
  }

  void ValidateString(const json& schema, const std::string& text, const std::string& path) {
    const size_t length = CodePoints(text);
    if (const auto min = schema.find("minLength");
        min != schema.end() && IsNonNegativeInteger(*min) && json(length) < *min) {
      const size_t n = min->get<size_t>();
      Add(path, TrFormatN("must be at least {0} character long (got {1})",
                          "must be at least {0} characters long (got {1})", n,
                          i18n::Number(static_cast<long long>(n)),
                          i18n::Number(static_cast<long long>(length))));
    }
    if (const auto max = schema.find("maxLength");
        max != schema.end() && IsNonNegativeInteger(*max) && json(length) > *max) {
      const size_t n = max->get<size_t>();
      Add(path, TrFormatN("must be at most {0} character long (got {1})",
                          "must be at most {0} characters long (got {1})", n,
                          i18n::Number(static_cast<long long>(n)),
                          i18n::Number(static_cast<long long>(length))));
    }
    if (const auto pattern = schema.find("pattern");
        pattern != schema.end() && pattern->is_string()) {
      CheckPattern(pattern->get_ref<const std::string&>(), text, path);
    }
    if (const auto format = schema.find("format"); format != schema.end() && *format == "date") {
      switch (CheckDate(text)) {
        case DateCheck::kValid:
          break;
        case DateCheck::kMalformed:
          Add(path, TrFormat("expected a date written YYYY-MM-DD, got {0}", ShowData(json(text))));
          break;
        case DateCheck::kNoSuchDay:
          Add(path, TrFormat("{0} is not a real date", ShowData(json(text))));
          break;
      }
    }
  }

  void CheckPattern(const std::string& pattern, const std::string& text, const std::string& path) {
    // RE2 is linear in the subject, but its slowest path is subject x pattern length.
    if (text.size() > kMaxPatternSubject) {
      Add(path, TrFormat("is too long to check against {0} (over {1} characters)", pattern,
                         i18n::Number(static_cast<long long>(kMaxPatternSubject))));
      return;
    }
    const re2::RE2* compiled = patterns_ != nullptr ? patterns_->Find(pattern) : nullptr;
    if (compiled == nullptr) {
      auto it = own_patterns_.find(pattern);
      if (it == own_patterns_.end()) {
        std::string error;
        it = own_patterns_.emplace(pattern, CompilePattern(pattern, &error)).first;
      }
      compiled = it->second.get();
    }
    if (compiled == nullptr) {
      Add(path, TrFormat("cannot be checked: the schema's {0} is not a valid pattern", pattern));
      return;
    }
    const bool matched = re2::RE2::PartialMatch(text, *compiled);
    if (!matched) Add(path, TrFormat("does not match {0}", pattern));
  }

  void ValidateNumber(const json& schema, const json& number, const std::string& path) {
    if (const auto min = schema.find("minimum");
        min != schema.end() && min->is_number() && number < *min) {
      Add(path, TrFormat("must be at least {0} (got {1})", Show(*min), ShowData(number)));
    }
    if (const auto max = schema.find("maximum");
        max != schema.end() && max->is_number() && number > *max) {
      Add(path, TrFormat("must be at most {0} (got {1})", Show(*max), ShowData(number)));
    }
  }

  void ValidateArray(const json& schema, const json& array, const std::string& path, int depth) {
    if (const auto min = schema.find("minItems");
        min != schema.end() && IsNonNegativeInteger(*min) && json(array.size()) < *min) {
      const size_t n = min->get<size_t>();
      Add(path, TrFormatN("must have at least {0} item (got {1})",
                          "must have at least {0} items (got {1})", n,
                          i18n::Number(static_cast<long long>(n)),
                          i18n::Number(static_cast<long long>(array.size()))));
    }
    if (const auto max = schema.find("maxItems");
        max != schema.end() && IsNonNegativeInteger(*max) && json(array.size()) > *max) {
      const size_t n = max->get<size_t>();
      Add(path,
          TrFormatN("must have at most {0} item (got {1})", "must have at most {0} items (got {1})",
                    n, i18n::Number(static_cast<long long>(n)),
                    i18n::Number(static_cast<long long>(array.size()))));
    }
    if (const auto items = schema.find("items"); items != schema.end() && items->is_object()) {
      for (size_t i = 0; i < array.size() && !Full(); ++i) {
        Validate(*items, array[i], path + "[" + std::to_string(i) + "]", depth + 1);
      }
    }
  }

  void ValidateObject(const json& schema, const json& object, const std::string& path, int depth) {
    if (const auto required = schema.find("required");
        required != schema.end() && required->is_array()) {
      for (const json& name : *required) {
        if (name.is_string() && !object.contains(name.get_ref<const std::string&>())) {
          Add(path, TrFormat("required property '{0}' is missing", name.get<std::string>()));
        }
      }
    }
    const auto properties = schema.find("properties");
    const bool has_properties = properties != schema.end() && properties->is_object();
    const auto additional = schema.find("additionalProperties");
    const bool closed = additional != schema.end() && *additional == false;
    for (const auto& [key, value] : object.items()) {
      if (Full()) return;
      const std::string member_path = MemberPath(path, key);
      if (has_properties) {
        if (const auto member = properties->find(key); member != properties->end()) {
          Validate(*member, value, member_path, depth + 1);
          continue;
        }
      }
      if (closed) {
        if (has_properties && !properties->empty()) {
          Add(member_path,
              TrFormat("unexpected property; allowed: {0}", AllowedNames(*properties)));
        } else {
          Add(member_path, Tr("unexpected property; no properties are allowed here"));
        }
      }
    }
  }

  // The names of the first properties: "a, b, c, ...".
  static std::string AllowedNames(const json& properties) {
    std::string out;
    size_t shown = 0;
    for (const auto& [name, ignored] : properties.items()) {
      if (shown == 10) {
        out += ", ...";
        break;
      }
      if (shown++ > 0) out += ", ";
      out += name;
    }
    return out;
  }

  std::vector<SchemaViolation> violations_;
  bool truncated_ = false;
  bool personal_ = false;                                          // inside a personal property
  const SchemaPatterns* patterns_;                                 // compiled at load; may be null
  std::map<std::string, std::unique_ptr<re2::RE2>> own_patterns_;  // the others, for this call
};

}  // namespace

std::vector<SchemaProblem> CheckSchema(const nlohmann::json& schema) {
  try {
    SchemaChecker checker;
    checker.Check(schema, "", 0);
    return checker.TakeProblems();
  } catch (const std::exception& e) {
    return {{"", TrFormat("internal error while checking the schema: {0}", e.what())}};
  }
}

std::vector<SchemaViolation> ValidateData(const nlohmann::json& schema, const nlohmann::json& data,
                                          const SchemaPatterns* patterns) {
  try {
    DataValidator validator(patterns);
    validator.Validate(schema, data, "$", 0);
    return validator.TakeViolations();
  } catch (const std::exception& e) {
    return {{"$", TrFormat("internal error while validating: {0}", e.what())}};
  }
}

SchemaPatterns::SchemaPatterns() = default;
SchemaPatterns::~SchemaPatterns() = default;

void SchemaPatterns::Add(const nlohmann::json& schema) { Add(schema, 0); }

void SchemaPatterns::Add(const nlohmann::json& schema, int depth) {
  if (!schema.is_object() || depth > kMaxSchemaDepth) return;
  if (auto pattern = schema.find("pattern"); pattern != schema.end() && pattern->is_string()) {
    const std::string& text = pattern->get_ref<const std::string&>();
    if (compiled_.count(text) == 0) {
      std::string error;
      if (auto compiled = CompilePattern(text, &error))
        compiled_.emplace(text, std::move(compiled));
    }
  }
  if (auto items = schema.find("items"); items != schema.end()) Add(*items, depth + 1);
  if (auto properties = schema.find("properties");
      properties != schema.end() && properties->is_object()) {
    for (const auto& member : *properties) Add(member, depth + 1);
  }
}

const re2::RE2* SchemaPatterns::Find(const std::string& pattern) const {
  auto it = compiled_.find(pattern);
  return it == compiled_.end() ? nullptr : it->second.get();
}

}  // namespace wf::workflows
