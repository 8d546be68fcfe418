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

class Expression;

// Runs jq programs for the engine. The machine and the runtime take one by reference (never a
// global), so the engine can bound evaluation in worker processes (engine/expression_pool.hpp)
// while `wf validate` and the pure tests of the machine evaluate in their own thread.
class Evaluator {
 public:
  virtual ~Evaluator() = default;
  // Runs `expression` over `input` and returns its first output, as Expression::Evaluate does.
  // Safe to call from many threads at once. Failures are values: kInvalid for a jq error or an
  // evaluation stopped by a bound (its message names the cause: "ran past 2 s", "used more than
  // 256 MB"); kUnavailable when the evaluator itself cannot run (a worker could not start): the
  // expression was not judged, try again later.
  virtual Result<nlohmann::json> Evaluate(const Expression& expression,
                                          const nlohmann::json& input) = 0;
};

// Evaluates in the calling thread with no bound on time or memory beyond Expression's own
// limits. Stateless (the compiled programs live in per-thread caches), so one shared instance is
// not global mutable state. For `wf validate`, the pure tests of the machine, and the engine's
// provably bounded expressions.
Evaluator& InProcessEvaluator();

// A jq program, the text between `${` and `}` in a definition. Compiled when it is created, so a
// syntax error is found when the procedure loads. Cheap to copy (it holds the text); evaluation
// compiles once per thread and caches, so Evaluate is safe to call from many threads at once.
//
// Each thread keeps its own compiled jq_state per program text (libjq 1.6 compiles its builtins
// with every program, some milliseconds each, so this matters); the states are torn down when the
// thread exits. Compile leaves its result in the calling thread's cache too.
//
// What a program may do: read the case data it is given and compute. Refused when compiling,
// wherever they appear outside string text, object keys and `.field` names:
//   `input`, `inputs`, `input_filename`, `input_line_number` (input outside the case data),
//   `env` and `$ENV` (the engine's environment holds department credentials),
//   `debug` and `stderr` (libjq would print), `halt` and `halt_error`, `$__loc__`,
//   `import`, `include`, `modulemeta`, `get_search_list`, `get_prog_origin`, `get_jq_origin`
//   (modules read files, and libjq 1.6 aborts the process on an import without search paths).
// Defining a function with one of those names is refused as well. libjq never prints: its
// messages are captured.
//
// Limits: programs over 16 KiB are refused; input and output deeper than 512 levels are
// refused. libjq 1.6 has no step or memory budget and cannot be interrupted, so evaluation stops
// early only by taking the first output: `range(1e9)` costs one step, but `[range(1e9)]`,
// `last(range(1e9))` or `def f: f; f` run until they finish or memory runs out, blocking the
// calling thread. Evaluate is therefore for programs and data one trusts (`wf validate`,
// tests); the engine evaluates through an Evaluator that runs programs in worker processes
// bounded in time and memory (engine/expression_pool.hpp), unless bounded() proves them cheap.
//
// Numbers: jq 1.6 holds every number as a double. An integral result within the int64 (or
// uint64) range comes back as a JSON integer, anything else as a double; integers beyond 2^53
// lose precision inside jq. NaN becomes null and infinities the largest finite doubles, as jq
// prints them. Strings may hold NUL bytes; invalid UTF-8 is replaced with U+FFFD by libjq.
class Expression {
 public:
  // Compiles `program`. On failure returns nothing and fills `error` (when not null) with a byte
  // offset into `program` and a message without jq's "jq: error:" decoration: the offending
  // token for a syntax error, the opener left unclosed for an unexpected end, the refused name.
  // An empty or blank program is an error ("empty expression").
  static std::optional<Expression> Compile(std::string program, ExpressionError* error);

  const std::string& program() const { return program_; }

  // True when a static check proves that evaluating the program costs at most about
  // (program length) x (input size), whatever the input: the engine then evaluates it in its own
  // thread instead of a bounded worker process. The check is conservative; it accepts programs
  // of at most 1 KiB made only of paths (`.a`, `.a.b?`, `.["k"]`, `.[0]`, `.[1:3]`, no `.[]`
  // iteration and no `..`), literals without `\(...)` interpolation, `==` `!=` `<` `<=` `>`
  // `>=` `and` `or` `//` `+`, `if`/`try`, array and object construction whose commas separate
  // elements, and the builtins length, utf8bytelength, not, type, keys, has, in, tostring,
  // tojson, ascii_downcase, ascii_upcase, ltrimstr, rtrimstr, startswith, endswith, select,
  // empty, error, tonumber, floor, sqrt, values, nulls, strings, numbers, booleans, arrays,
  // objects, scalars, iterables, null, true, false. Refused (so evaluated in a worker): pipes
  // (they let a value grow step by step: `tostring | . + . | . + . ...`), `,` outside
  // construction (a generator: products of them grow exponentially), variables, `def`,
  // `reduce`, `foreach`, formats, `*` (string repetition), `-` (array difference is quadratic),
  // `/` and `%` (split, and libjq 1.6 traps on INT64_MIN % -1), assignments, regular expressions.
  bool bounded() const { return bounded_; }

  // Runs the program over `input` and returns its first output (null when it produces none;
  // jq 1.6's `error(null)` is indistinguishable from no output and also gives null).
  // A runtime error (e.g. `.a + 1` on a string) comes back as kInvalid
  // "expression `<program>`: <jq's message>".
  Result<nlohmann::json> Evaluate(const nlohmann::json& input) const;
  // Evaluate, then jq's truthiness: false and null are false, everything else true.
  Result<bool> EvaluateCondition(const nlohmann::json& input) const;
  // The same through `evaluator`.
  Result<bool> EvaluateCondition(const nlohmann::json& input, Evaluator& evaluator) const;

 private:
  Expression(std::string program, bool bounded) : program_(std::move(program)), bounded_(bounded) {}
  std::string program_;
  bool bounded_ = false;
};

// The end of Evaluate's kInternal message when memory ran out (std::bad_alloc).
inline constexpr std::string_view kOutOfMemory = "out of memory";

// Has libjq call `handler(data)` in the calling thread when it cannot allocate memory, instead
// of printing and aborting. The handler must not return (it should _exit). For the expression
// worker process (engine/expression_pool.hpp), which reports the failure before it exits.
void SetJqOutOfMemoryHandler(void (*handler)(void*), void* data);

// The static check behind Expression::bounded(), on a program's text.
bool IsProvablyBounded(std::string_view program);

// One `${ ... }` found in a string, with its byte offsets into that string.
struct EmbeddedExpression {
  size_t begin = 0;          // offset of `$`
  size_t end = 0;            // one past the closing `}`
  size_t program_begin = 0;  // offset of the first byte of the program
  std::string program;       // the text between `${` and `}`, trimmed
};

// Finds every `${ ... }` in `text`, matching braces and skipping braces inside jq string
// literals (including `\( ... )` interpolations) and `#` comments. Appends to `out` in order.
// Returns false (and the offset of the `$` of the unterminated `${`) on an unterminated `${`;
// the expressions before it have been appended. `out` and `error_offset` may be null.
bool FindExpressions(std::string_view text, std::vector<EmbeddedExpression>* out,
                     size_t* error_offset);

// If `text` is exactly one `${ ... }` (surrounding spaces allowed), its program; else nullopt.
std::optional<std::string> WholeExpression(std::string_view text);

// Renders a value template: every string that is exactly `${ p }` becomes p's output (any JSON
// type); a string with `${ p }` among other text gets each output spliced in as text (strings
// bare, other values as compact JSON); objects and arrays are rendered member by member.
// Other values are copied, object keys are never rendered. Errors (kInvalid) name the failing
// program: compile errors, runtime errors, an unterminated `${`.
Result<nlohmann::json> RenderTemplate(const nlohmann::json& value_template,
                                      const nlohmann::json& data);
// The same, evaluating through `evaluator`.
Result<nlohmann::json> RenderTemplate(const nlohmann::json& value_template,
                                      const nlohmann::json& data, Evaluator& evaluator);

}  // namespace wf::workflows
