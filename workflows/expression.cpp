#include "workflows/expression.hpp"

#include <cctype>
#include <cmath>
#include <cstdint>
#include <exception>
#include <limits>
#include <memory>
#include <new>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

// Debian's libjq 1.6 headers carry no `extern "C"` guards.
extern "C" {
#include <jq.h>
#include <jv.h>
}

#include "workflows/i18n.hpp"
#include "workflows/jq_lexer.hpp"

namespace wf::workflows {
namespace {

// What SetJqOutOfMemoryHandler installed: set once, at the expression worker's start, before any
// program is compiled. Two things in libjq 1.6 (Debian 12) keep it from being handed to libjq as
// it is: a jq_state has a handler of its own, which jq_compile and jq_start install as the
// process's, and jq_init leaves it unset (a failed allocation then called whatever the fresh
// memory held); and jv_nomem_handler keeps only the function, so libjq calls it with a null
// pointer, not its data. libjq is given CallOutOfMemoryHandler everywhere, which passes the data.
struct OutOfMemoryHandler {
  void (*handler)(void*) = nullptr;
  void* data = nullptr;
};
OutOfMemoryHandler& JqOutOfMemory() {
  static OutOfMemoryHandler installed;
  return installed;
}
// When it returns (no handler installed), libjq prints its message and aborts.
void CallOutOfMemoryHandler(void* /*null from libjq*/) {
  const OutOfMemoryHandler& installed = JqOutOfMemory();
  if (installed.handler != nullptr) installed.handler(installed.data);
}

using detail::FindDeniedName;
using detail::JqLexer;
using detail::Opener;
using nlohmann::json;

// Limits; see the contract in expression.hpp.
constexpr size_t kMaxProgramBytes = 16 * 1024;
constexpr int kMaxNesting = 512;
constexpr size_t kMaxCachedPrograms = 1024;

// ---------------------------------------------------------------------------------------------
// Compiled programs, one jq_state each, cached per thread.

// Owns a jq_state and collects the messages libjq reports, so libjq never prints.
class CompiledProgram {
 public:
  CompiledProgram() = default;
  CompiledProgram(const CompiledProgram&) = delete;
  CompiledProgram& operator=(const CompiledProgram&) = delete;
  ~CompiledProgram() {
    if (jq_ != nullptr) jq_teardown(&jq_);
  }

  // Returns false with the messages libjq reported when `program` does not compile.
  bool Compile(const std::string& program) {
    jq_ = jq_init();
    if (jq_ == nullptr) {
      messages_.push_back(Tr("jq could not be initialised"));
      return false;
    }
    jq_set_nomem_handler(jq_, &CallOutOfMemoryHandler, nullptr);
    jq_set_error_cb(jq_, &CompiledProgram::CollectMessage, this);
    // Defence in depth: the denylist already rejects `debug`; nothing is printed either way.
    jq_set_debug_cb(jq_, &CompiledProgram::DropMessage, nullptr);
    return jq_compile(jq_, program.c_str()) != 0;
  }

  jq_state* jq() const { return jq_; }
  const std::vector<std::string>& messages() const { return messages_; }

 private:
  static void CollectMessage(void* data, jv message) {
    auto* self = static_cast<CompiledProgram*>(data);
    if (jv_get_kind(message) == JV_KIND_STRING) {
      self->messages_.emplace_back(jv_string_value(message));
      jv_free(message);
    } else {
      jv dumped = jv_dump_string(message, 0);
      self->messages_.emplace_back(jv_string_value(dumped));
      jv_free(dumped);
    }
  }
  static void DropMessage(void*, jv message) { jv_free(message); }

  jq_state* jq_ = nullptr;
  std::vector<std::string> messages_;
};

// The calling thread's compiled programs. Being thread_local, its destructor tears every
// jq_state down when the thread exits.
class ProgramCache {
 public:
  CompiledProgram* Find(const std::string& program) {
    auto it = programs_.find(program);
    return it == programs_.end() ? nullptr : it->second.get();
  }
  CompiledProgram* Insert(const std::string& program, std::unique_ptr<CompiledProgram> compiled) {
    // Procedures have a bounded number of expressions; a process that loads endlessly many
    // versions just recompiles after a reset.
    if (programs_.size() >= kMaxCachedPrograms) programs_.clear();
    CompiledProgram* raw = compiled.get();
    programs_[program] = std::move(compiled);
    return raw;
  }

 private:
  std::unordered_map<std::string, std::unique_ptr<CompiledProgram>> programs_;
};

ProgramCache& ThreadProgramCache() {
  thread_local ProgramCache cache;
  return cache;
}

// ---------------------------------------------------------------------------------------------
// Compile error messages. libjq 1.6 reports
//   "jq: error: <what> (Unix shell quoting issues?) at <top-level>, line N:\n<line text><spaces>"
// where the number of spaces is the column of the error; then "jq: K compile errors".

void ReplaceAll(std::string* s, std::string_view from, std::string_view to) {
  size_t pos = 0;
  while ((pos = s->find(from, pos)) != std::string::npos) {
    s->replace(pos, from.size(), to);
    pos += to.size();
  }
}

size_t LineStart(std::string_view program, long line) {
  size_t offset = 0;
  for (long i = 1; i < line; ++i) {
    const size_t nl = program.find('\n', offset);
    if (nl == std::string_view::npos) return offset;
    offset = nl + 1;
  }
  return offset;
}

struct ParsedMessage {
  std::string what;
  std::optional<size_t> offset;
};

ParsedMessage ParseJqMessage(std::string_view program, std::string message) {
  ParsedMessage parsed;
  constexpr std::string_view kPrefix = "jq: error: ";
  if (message.rfind(kPrefix, 0) == 0) message.erase(0, kPrefix.size());
  constexpr std::string_view kAt = " at <top-level>, line ";
  const size_t at = message.find(kAt);
  if (at != std::string::npos) {
    const size_t number_begin = at + kAt.size();
    size_t number_end = number_begin;
    while (number_end < message.size() &&
           std::isdigit(static_cast<unsigned char>(message[number_end]))) {
      ++number_end;
    }
    const long line = number_end > number_begin
                          ? std::stol(message.substr(number_begin, number_end - number_begin))
                          : 1;
    const size_t line_start = LineStart(program, line);
    size_t line_end = program.find('\n', line_start);
    if (line_end == std::string_view::npos) line_end = program.size();
    const std::string_view line_text = program.substr(line_start, line_end - line_start);
    parsed.offset = line_start;
    // The echoed line, then one space per byte of column.
    if (message.compare(number_end, 2, ":\n") == 0) {
      const std::string_view echo = std::string_view(message).substr(number_end + 2);
      if (echo.substr(0, line_text.size()) == line_text) {
        size_t spaces = 0;
        while (line_text.size() + spaces < echo.size() && echo[line_text.size() + spaces] == ' ')
          ++spaces;
        if (spaces <= line_text.size()) parsed.offset = line_start + spaces;
      }
    }
    message.erase(at);
  }
  ReplaceAll(&message, " (Unix shell quoting issues?)", "");
  parsed.what = std::move(message);
  return parsed;
}

std::string Describe(std::string_view program, std::string what, size_t offset) {
  // Bison's token names mean nothing to an author.
  if (what.find("unexpected INVALID_CHARACTER") != std::string::npos && offset < program.size() &&
      std::isprint(static_cast<unsigned char>(program[offset]))) {
    ReplaceAll(&what, "INVALID_CHARACTER", std::string("'") + program[offset] + "'");
  }
  ReplaceAll(&what, "INVALID_CHARACTER", "character");
  ReplaceAll(&what, "$end", "end of expression");
  ReplaceAll(&what, "QQSTRING_INTERP_START", "'\\('");
  ReplaceAll(&what, "QQSTRING_INTERP_END", "')'");
  ReplaceAll(&what, "QQSTRING_START", "string");
  ReplaceAll(&what, "QQSTRING_TEXT", "string text");
  ReplaceAll(&what, "QQSTRING_END", "closing quote");
  ReplaceAll(&what, "IDENT", "name");
  ReplaceAll(&what, "FIELD", "field");
  ReplaceAll(&what, "LITERAL", "literal");
  ReplaceAll(&what, "FORMAT", "format");
  // "foo/1 is not defined", "$x is not defined"
  constexpr std::string_view kNotDefined = " is not defined";
  if (what.size() > kNotDefined.size() &&
      what.compare(what.size() - kNotDefined.size(), kNotDefined.size(), kNotDefined) == 0 &&
      what.find(' ') == what.size() - kNotDefined.size()) {
    const std::string name = what.substr(0, what.size() - kNotDefined.size());
    const size_t slash = name.rfind('/');
    if (name[0] == '$') {
      what = TrFormat("unknown variable {0}", name);
    } else if (slash != std::string::npos) {
      const std::string arity = name.substr(slash + 1);
      what = TrFormatN("unknown function '{0}' with {1} argument",
                       "unknown function '{0}' with {1} arguments", arity == "1" ? 1 : 2,
                       name.substr(0, slash), arity);
    }
  }
  return what;
}

void FillCompileError(std::string_view program, const std::vector<std::string>& messages,
                      ExpressionError* error) {
  std::string combined;
  std::optional<size_t> first_offset;
  bool unexpected_end = false;
  for (const std::string& raw : messages) {
    if (raw.rfind("jq: ", 0) == 0 && raw.find("compile error") != std::string::npos &&
        raw.find("jq: error") == std::string::npos) {
      continue;  // the "jq: 2 compile errors" summary
    }
    ParsedMessage parsed = ParseJqMessage(program, raw);
    if (parsed.what.find("unexpected $end") != std::string::npos) unexpected_end = true;
    const size_t offset = parsed.offset.value_or(0);
    if (!first_offset) first_offset = offset;
    std::string what = Describe(program, std::move(parsed.what), offset);
    if (!what.empty()) {
      what[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(what[0])));
    }
    if (combined.find(what) != std::string::npos) continue;
    if (!combined.empty()) combined += "; ";
    combined += what;
  }
  if (combined.empty()) combined = Tr("the expression does not compile");
  size_t offset = first_offset.value_or(0);
  if (unexpected_end) {
    // jq points at the last token; the useful place is what was left open, else the end.
    JqLexer lexer(program);
    lexer.ScanCode(0, '\0');
    if (lexer.unclosed()) {
      const Opener& open = *lexer.unclosed();
      offset = open.offset;
      if (open.bracket == '"') {
        combined = Tr("unterminated string");
      } else {
        combined =
            TrFormat("{0}; {1} is never closed", combined, std::string("'") + open.bracket + "'");
      }
    } else {
      size_t end = program.size();
      while (end > 0 && std::isspace(static_cast<unsigned char>(program[end - 1]))) --end;
      offset = end;
    }
  }
  error->offset = offset;
  error->message = std::move(combined);
}

bool IsBlank(std::string_view text) {
  for (char c : text) {
    if (!std::isspace(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

// Compiles into the calling thread's cache; nullptr (and `error` filled) on failure.
CompiledProgram* CompileCached(const std::string& program, ExpressionError* error) {
  ProgramCache& cache = ThreadProgramCache();
  if (CompiledProgram* found = cache.Find(program)) return found;
  if (IsBlank(program)) {
    *error = {0, Tr("empty expression")};
    return nullptr;
  }
  if (program.size() > kMaxProgramBytes) {
    *error = {kMaxProgramBytes, TrFormat("expression longer than {0} bytes",
                                         i18n::Number(static_cast<long long>(kMaxProgramBytes)))};
    return nullptr;
  }
  if (const size_t nul = program.find('\0'); nul != std::string::npos) {
    *error = {nul, Tr("expression contains a NUL byte")};
    return nullptr;
  }
  if (FindDeniedName(program, error)) return nullptr;
  auto compiled = std::make_unique<CompiledProgram>();
  if (!compiled->Compile(program)) {
    FillCompileError(program, compiled->messages(), error);
    return nullptr;
  }
  return cache.Insert(program, std::move(compiled));
}

// ---------------------------------------------------------------------------------------------
// nlohmann::json <-> jv. jv values are reference counted: every function below says whether it
// consumes its argument, as libjq's own functions do.

// Returns a new jv (invalid with a message when the value cannot be converted).
jv ToJv(const json& value, int depth) {
  if (depth > kMaxNesting) {
    return jv_invalid_with_msg(jv_string(Tr("input nested more than 512 levels deep")));
  }
  switch (value.type()) {
    case json::value_t::null:
    case json::value_t::discarded:
      return jv_null();
    case json::value_t::boolean:
      return jv_bool(value.get<bool>());
    case json::value_t::number_integer:
      return jv_number(static_cast<double>(value.get<int64_t>()));
    case json::value_t::number_unsigned:
      return jv_number(static_cast<double>(value.get<uint64_t>()));
    case json::value_t::number_float:
      return jv_number(value.get<double>());
    case json::value_t::string: {
      const auto& s = value.get_ref<const std::string&>();
      if (s.size() > static_cast<size_t>(std::numeric_limits<int>::max())) {
        return jv_invalid_with_msg(jv_string(Tr("string too long")));
      }
      return jv_string_sized(s.data(), static_cast<int>(s.size()));
    }
    case json::value_t::array: {
      jv array = jv_array();
      for (const json& element : value) {
        jv converted = ToJv(element, depth + 1);
        if (!jv_is_valid(converted)) {
          jv_free(array);
          return converted;
        }
        array = jv_array_append(array, converted);
      }
      return array;
    }
    case json::value_t::object: {
      jv object = jv_object();
      for (const auto& [key, member] : value.items()) {
        jv converted = ToJv(member, depth + 1);
        if (!jv_is_valid(converted)) {
          jv_free(object);
          return converted;
        }
        object = jv_object_set(object, jv_string_sized(key.data(), static_cast<int>(key.size())),
                               converted);
      }
      return object;
    }
    case json::value_t::binary:
      return jv_invalid_with_msg(jv_string(Tr("binary values are not JSON")));
  }
  return jv_null();
}

json NumberFromJv(double d) {
  // jq prints NaN as null and infinities as the largest doubles; do the same.
  if (std::isnan(d)) return nullptr;
  if (std::isinf(d)) {
    return d > 0 ? std::numeric_limits<double>::max() : -std::numeric_limits<double>::max();
  }
  constexpr double kTwo63 = 9223372036854775808.0;
  constexpr double kTwo64 = 18446744073709551616.0;
  if (std::trunc(d) == d) {
    if (d >= -kTwo63 && d < kTwo63) return static_cast<int64_t>(d);
    if (d >= kTwo63 && d < kTwo64) return static_cast<uint64_t>(d);
  }
  return d;
}

// Converts `value` (borrowed, not consumed) into `out`. False when nested too deeply.
bool FromJv(jv value, int depth, json* out) {
  if (depth > kMaxNesting) return false;
  switch (jv_get_kind(value)) {
    case JV_KIND_INVALID:
    case JV_KIND_NULL:
      *out = nullptr;
      return true;
    case JV_KIND_FALSE:
      *out = false;
      return true;
    case JV_KIND_TRUE:
      *out = true;
      return true;
    case JV_KIND_NUMBER:
      *out = NumberFromJv(jv_number_value(value));
      return true;
    case JV_KIND_STRING:
      *out = std::string(jv_string_value(value),
                         static_cast<size_t>(jv_string_length_bytes(jv_copy(value))));
      return true;
    case JV_KIND_ARRAY: {
      *out = json::array();
      const int length = jv_array_length(jv_copy(value));
      for (int i = 0; i < length; ++i) {
        jv element = jv_array_get(jv_copy(value), i);
        json converted;
        const bool ok = FromJv(element, depth + 1, &converted);
        jv_free(element);
        if (!ok) return false;
        out->push_back(std::move(converted));
      }
      return true;
    }
    case JV_KIND_OBJECT: {
      *out = json::object();
      for (int it = jv_object_iter(value); jv_object_iter_valid(value, it);
           it = jv_object_iter_next(value, it)) {
        jv key = jv_object_iter_key(value, it);
        jv member = jv_object_iter_value(value, it);
        json converted;
        const bool ok = FromJv(member, depth + 1, &converted);
        std::string key_text(jv_string_value(key),
                             static_cast<size_t>(jv_string_length_bytes(jv_copy(key))));
        jv_free(member);
        jv_free(key);
        if (!ok) return false;
        (*out)[std::move(key_text)] = std::move(converted);
      }
      return true;
    }
  }
  *out = nullptr;
  return true;
}

// The text of a jq error value (consumed).
std::string ErrorText(jv message) {
  std::string text;
  if (jv_get_kind(message) == JV_KIND_STRING) {
    text = jv_string_value(message);
    jv_free(message);
  } else {
    jv dumped = jv_dump_string(message, 0);
    text = TrFormat("{0} (not a string)", jv_string_value(dumped));
    jv_free(dumped);
  }
  return text;
}

Status EvaluationError(const std::string& program, const std::string& what) {
  return Status::Invalid(TrFormat("expression `{0}`: {1}", program, what));
}

// ---------------------------------------------------------------------------------------------
// Plain paths. A program that is only `.` or field names (`.id`, `.applicant.citizen_id`) is
// answered here without libjq, which would compile its builtins for it (milliseconds per thread)
// and convert the whole case data to read one value. The answer is jq's own: a missing field or
// a null is null, numbers pass through a double, and anything jq would answer otherwise (a field
// of a string, say, which is jq's error) is left to jq.

bool IsIdentStart(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_'; }
bool IsIdentChar(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

// The field names of a plain path (none for `.`), or nothing when `program` is not one.
std::optional<std::vector<std::string_view>> PlainPath(std::string_view program) {
  if (program.empty() || program.size() > kMaxProgramBytes || program[0] != '.') {
    return std::nullopt;
  }
  std::vector<std::string_view> fields;
  if (program == ".") return fields;
  size_t pos = 0;
  while (pos < program.size()) {
    if (program[pos] != '.' || pos + 1 >= program.size() || !IsIdentStart(program[pos + 1])) {
      return std::nullopt;
    }
    size_t end = pos + 2;
    while (end < program.size() && IsIdentChar(program[end])) ++end;
    fields.push_back(program.substr(pos + 1, end - pos - 1));
    pos = end;
  }
  return fields;
}

// True when `s` is valid UTF-8 as libjq judges it (no overlong forms, no surrogates, nothing
// above U+10FFFF); libjq would replace the bad bytes, so such a string is left to it.
bool ValidUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    int length = 0;
    uint32_t code = 0;
    if (c >= 0xC2 && c <= 0xDF) {
      length = 2;
      code = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
      length = 3;
      code = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      length = 4;
      code = c & 0x07;
    } else {
      return false;
    }
    if (i + length > s.size()) return false;
    for (int k = 1; k < length; ++k) {
      const auto next = static_cast<unsigned char>(s[i + k]);
      if ((next & 0xC0) != 0x80) return false;
      code = (code << 6) | (next & 0x3F);
    }
    if ((length == 3 && (code < 0x800 || (code >= 0xD800 && code <= 0xDFFF))) ||
        (length == 4 && (code < 0x10000 || code > 0x10FFFF))) {
      return false;
    }
    i += length;
  }
  return true;
}

// `value` as jq would give it back (numbers through a double), or nothing when only libjq can
// say (a string it would repair, nesting past its limit).
std::optional<json> AsJqAnswers(const json& value, int depth) {
  if (depth > kMaxNesting) return std::nullopt;
  switch (value.type()) {
    case json::value_t::number_integer:
      return NumberFromJv(static_cast<double>(value.get<int64_t>()));
    case json::value_t::number_unsigned:
      return NumberFromJv(static_cast<double>(value.get<uint64_t>()));
    case json::value_t::number_float:
      return NumberFromJv(value.get<double>());
    case json::value_t::string:
      if (!ValidUtf8(value.get_ref<const std::string&>())) return std::nullopt;
      return value;
    case json::value_t::array: {
      json out = json::array();
      for (const json& element : value) {
        std::optional<json> converted = AsJqAnswers(element, depth + 1);
        if (!converted) return std::nullopt;
        out.push_back(std::move(*converted));
      }
      return out;
    }
    case json::value_t::object: {
      json out = json::object();
      for (const auto& [key, member] : value.items()) {
        std::optional<json> converted = AsJqAnswers(member, depth + 1);
        if (!converted || !ValidUtf8(key)) return std::nullopt;
        out[key] = std::move(*converted);
      }
      return out;
    }
    case json::value_t::binary:
      return std::nullopt;
    case json::value_t::null:
    case json::value_t::discarded:
      return json();
    case json::value_t::boolean:
      return value;
  }
  return std::nullopt;
}

// The value at `fields` in `input`, as jq answers it; nothing when jq must answer.
std::optional<json> FollowPlainPath(const std::vector<std::string_view>& fields,
                                    const json& input) {
  const json* at = &input;
  for (std::string_view field : fields) {
    if (at->is_null()) return json();
    if (!at->is_object()) return std::nullopt;  // jq's "Cannot index ..." error
    auto it = at->find(field);
    if (it == at->end()) return json();
    at = &*it;
  }
  return AsJqAnswers(*at, 0);
}

Result<json> EvaluateFirst(const std::string& program, const json& input) {
  if (auto path = PlainPath(program)) {
    if (std::optional<json> value = FollowPlainPath(*path, input)) return std::move(*value);
  }
  ExpressionError compile_error;
  CompiledProgram* compiled = CompileCached(program, &compile_error);
  if (compiled == nullptr) return EvaluationError(program, compile_error.message);
  jq_state* jq = compiled->jq();

  jv converted = ToJv(input, 0);
  if (!jv_is_valid(converted)) {
    return EvaluationError(program, ErrorText(jv_invalid_get_msg(converted)));
  }
  jq_start(jq, converted, 0);
  jv output = jq_next(jq);

  Result<json> result = json();
  if (jv_is_valid(output)) {
    json value;
    if (FromJv(output, 0, &value)) {
      result = std::move(value);
    } else {
      result = EvaluationError(program, Tr("result nested more than 512 levels deep"));
    }
    jv_free(output);
  } else if (jq_halted(jq)) {
    jv_free(output);
    result = EvaluationError(program, Tr("the program halted"));
  } else {
    jv message = jv_invalid_get_msg(output);
    if (jv_get_kind(message) == JV_KIND_NULL) {
      jv_free(message);  // no output at all: null
    } else {
      result = EvaluationError(program, ErrorText(message));
    }
  }
  // Only the first output is wanted: drop the rest of the computation (and the input it holds)
  // now rather than at this thread's next evaluation.
  jq_start(jq, jv_null(), 0);
  return result;
}

// jq's truthiness.
bool Truthy(const json& value) {
  return !(value.is_null() || (value.is_boolean() && !value.get<bool>()));
}

std::string_view Trim(std::string_view text) {
  size_t begin = 0;
  size_t end = text.size();
  while (begin < end && std::isspace(static_cast<unsigned char>(text[begin]))) ++begin;
  while (end > begin && std::isspace(static_cast<unsigned char>(text[end - 1]))) --end;
  return text.substr(begin, end - begin);
}

Result<json> RenderString(const std::string& text, const json& data, Evaluator& evaluator) {
  std::vector<EmbeddedExpression> found;
  size_t error_offset = 0;
  if (!FindExpressions(text, &found, &error_offset)) {
    return Status::Invalid(TrFormat("unterminated `${{` at offset {0} in \"{1}\"",
                                    std::to_string(error_offset), text));
  }
  if (found.empty()) return json(text);

  auto evaluate = [&data, &evaluator](const std::string& program) -> Result<json> {
    ExpressionError error;
    std::optional<Expression> expression = Expression::Compile(program, &error);
    if (!expression) {
      return Status::Invalid(TrFormat("expression `{0}`: {1} (at offset {2})", program,
                                      error.message, std::to_string(error.offset)));
    }
    return evaluator.Evaluate(*expression, data);
  };

  const std::string_view trimmed = Trim(text);
  if (found.size() == 1 && found[0].begin == static_cast<size_t>(trimmed.data() - text.data()) &&
      found[0].end == found[0].begin + trimmed.size()) {
    return evaluate(found[0].program);
  }
  std::string rendered;
  size_t copied_to = 0;
  for (const EmbeddedExpression& embedded : found) {
    rendered.append(text, copied_to, embedded.begin - copied_to);
    Result<json> value = evaluate(embedded.program);
    if (!value) return value.error();
    if (value->is_string()) {
      rendered += value->get_ref<const std::string&>();
    } else {
      rendered += value->dump(-1, ' ', false, json::error_handler_t::replace);
    }
    copied_to = embedded.end;
  }
  rendered.append(text, copied_to);
  return json(std::move(rendered));
}

Result<json> Render(const json& value_template, const json& data, Evaluator& evaluator, int depth) {
  if (depth > kMaxNesting) {
    return Status::Invalid(Tr("template nested more than 512 levels deep"));
  }
  if (value_template.is_string()) {
    return RenderString(value_template.get_ref<const std::string&>(), data, evaluator);
  }
  if (value_template.is_array()) {
    json out = json::array();
    for (const json& element : value_template) {
      Result<json> rendered = Render(element, data, evaluator, depth + 1);
      if (!rendered) return rendered.error();
      out.push_back(std::move(rendered).value());
    }
    return out;
  }
  if (value_template.is_object()) {
    json out = json::object();
    for (const auto& [key, member] : value_template.items()) {
      Result<json> rendered = Render(member, data, evaluator, depth + 1);
      if (!rendered) return rendered.error();
      out[key] = std::move(rendered).value();
    }
    return out;
  }
  return value_template;
}

}  // namespace

std::optional<Expression> Expression::Compile(std::string program, ExpressionError* error) {
  ExpressionError local;
  ExpressionError* sink = error != nullptr ? error : &local;
  try {
    // A plain path needs no compiling: it is answered without libjq wherever it can be, and
    // compiled on first use wherever it cannot.
    if (!PlainPath(program) && CompileCached(program, sink) == nullptr) return std::nullopt;
    const bool bounded = IsProvablyBounded(program);
    return Expression(std::move(program), bounded);
  } catch (const std::exception& e) {
    *sink = {0, TrFormat("internal error while compiling: {0}", e.what())};
    return std::nullopt;
  }
}

Result<nlohmann::json> Expression::Evaluate(const nlohmann::json& input) const {
  try {
    return EvaluateFirst(program_, input);
  } catch (const std::bad_alloc&) {
    // kOutOfMemory stays English at the end: the expression pool recognises it there.
    return Status::Internal(TrFormat("expression `{0}`: {1}", program_, std::string(kOutOfMemory)));
  } catch (const std::exception& e) {
    return Status::Internal(TrFormat("expression `{0}`: {1}", program_, e.what()));
  }
}

Result<bool> Expression::EvaluateCondition(const nlohmann::json& input) const {
  return EvaluateCondition(input, InProcessEvaluator());
}

Result<bool> Expression::EvaluateCondition(const nlohmann::json& input,
                                           Evaluator& evaluator) const {
  Result<json> value = evaluator.Evaluate(*this, input);
  if (!value) return value.error();
  return Truthy(*value);
}

namespace {
class ThreadEvaluator final : public Evaluator {
 public:
  Result<nlohmann::json> Evaluate(const Expression& expression,
                                  const nlohmann::json& input) override {
    return expression.Evaluate(input);
  }
};
}  // namespace

void SetJqOutOfMemoryHandler(void (*handler)(void*), void* data) {
  JqOutOfMemory() = {handler, data};
  jv_nomem_handler(&CallOutOfMemoryHandler, nullptr);
}

Evaluator& InProcessEvaluator() {
  static ThreadEvaluator evaluator;  // stateless
  return evaluator;
}

bool FindExpressions(std::string_view text, std::vector<EmbeddedExpression>* out,
                     size_t* error_offset) {
  size_t pos = 0;
  while (true) {
    const size_t dollar = text.find("${", pos);
    if (dollar == std::string_view::npos) return true;
    JqLexer lexer(text);
    const size_t close = lexer.ScanCode(dollar + 2, '}');
    if (close == std::string_view::npos) {
      if (error_offset != nullptr) *error_offset = dollar;
      return false;
    }
    const std::string_view inside = text.substr(dollar + 2, close - dollar - 2);
    const std::string_view program = Trim(inside);
    EmbeddedExpression embedded;
    embedded.begin = dollar;
    embedded.end = close + 1;
    embedded.program_begin =
        program.empty() ? dollar + 2 : static_cast<size_t>(program.data() - text.data());
    embedded.program = std::string(program);
    if (out != nullptr) out->push_back(std::move(embedded));
    pos = close + 1;
  }
}

std::optional<std::string> WholeExpression(std::string_view text) {
  std::vector<EmbeddedExpression> found;
  size_t error_offset = 0;
  if (!FindExpressions(text, &found, &error_offset) || found.size() != 1) return std::nullopt;
  const std::string_view trimmed = Trim(text);
  const size_t begin = static_cast<size_t>(trimmed.data() - text.data());
  if (found[0].begin != begin || found[0].end != begin + trimmed.size()) return std::nullopt;
  return std::move(found[0].program);
}

Result<nlohmann::json> RenderTemplate(const nlohmann::json& value_template,
                                      const nlohmann::json& data) {
  return RenderTemplate(value_template, data, InProcessEvaluator());
}

Result<nlohmann::json> RenderTemplate(const nlohmann::json& value_template,
                                      const nlohmann::json& data, Evaluator& evaluator) {
  try {
    return Render(value_template, data, evaluator, 0);
  } catch (const std::exception& e) {
    return Status::Internal(TrFormat("rendering a template: {0}", e.what()));
  }
}

}  // namespace wf::workflows
