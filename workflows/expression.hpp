#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "workflows/status.hpp"

namespace wf::workflows {

// Where and why a jq program failed to compile. `offset` is a byte offset into the program text
// (the part inside `${ }`), best effort: jq 1.6 reports lines, the compiler narrows it down.
struct ExpressionError {
  size_t offset = 0;
  std::string message;
};

// A jq program, the text between `${` and `}` in a definition. Compiled when it is created, so a
// syntax error is found when the procedure loads. Cheap to copy (it holds the text); evaluation
// compiles once per thread and caches, so Evaluate is safe to call from many threads at once.
class Expression {
 public:
  // Compiles `program`. On failure returns nothing and fills `error`.
  static std::optional<Expression> Compile(std::string program, ExpressionError* error);

  const std::string& program() const { return program_; }

  // Runs the program over `input` and returns its first output (null when it produces none).
  // A runtime error (e.g. `.a + 1` on a string) comes back as kInvalid naming the program.
  Result<nlohmann::json> Evaluate(const nlohmann::json& input) const;
  // Evaluate, then jq's truthiness: false and null are false, everything else true.
  Result<bool> EvaluateCondition(const nlohmann::json& input) const;

 private:
  explicit Expression(std::string program) : program_(std::move(program)) {}
  std::string program_;
};

// One `${ ... }` found in a string, with its byte offsets into that string.
struct EmbeddedExpression {
  size_t begin = 0;          // offset of `$`
  size_t end = 0;            // one past the closing `}`
  size_t program_begin = 0;  // offset of the first byte of the program
  std::string program;       // the text between `${` and `}`, trimmed
};

// Finds every `${ ... }` in `text`, matching braces and skipping braces inside jq string
// literals. Returns false (and the offset of the problem) on an unterminated `${`.
bool FindExpressions(std::string_view text, std::vector<EmbeddedExpression>* out,
                     size_t* error_offset);

// If `text` is exactly one `${ ... }` (surrounding spaces allowed), its program; else nullopt.
std::optional<std::string> WholeExpression(std::string_view text);

// Renders a value template: every string that is exactly `${ p }` becomes p's output (any JSON
// type); a string with `${ p }` among other text gets each output spliced in as text (strings
// bare, other values as compact JSON); objects and arrays are rendered member by member.
// Other values are copied. Errors name the failing program.
Result<nlohmann::json> RenderTemplate(const nlohmann::json& value_template,
                                      const nlohmann::json& data);

}  // namespace wf::workflows
