#include "workflows/jq_lexer.hpp"

namespace wf::workflows::detail {

namespace {

// Builtins that reach outside the case data (stdin, the environment, files, the terminal) or stop
// the program. `stderr` writes straight to the process's stderr and `import`/`include` make
// libjq 1.6 abort the process, so they must never reach jq_compile.
struct DeniedName {
  std::string_view name;
  bool variable;
  std::string_view why;
};
constexpr DeniedName kDeniedNames[] = {
    {"input", false, "it reads input outside the case data"},
    {"inputs", false, "it reads input outside the case data"},
    {"input_filename", false, "it reads input outside the case data"},
    {"input_line_number", false, "it reads input outside the case data"},
    // jq 1.6's internal `input` without a callback: a SEGV inside jq_next (found by fuzzing).
    {"_input", false, "it reads input outside the case data"},
    {"debug", false, "it writes to the engine's log"},
    {"stderr", false, "it writes to the engine's error stream"},
    {"env", false, "it reads the engine's environment"},
    {"ENV", true, "it reads the engine's environment"},
    {"__loc__", true, "it describes the program, not the case"},
    {"halt", false, "it stops the engine's evaluator"},
    {"halt_error", false, "it stops the engine's evaluator"},
    {"import", false, "modules are not available in expressions"},
    {"include", false, "modules are not available in expressions"},
    {"modulemeta", false, "modules are not available in expressions"},
    {"get_search_list", false, "modules are not available in expressions"},
    {"get_prog_origin", false, "modules are not available in expressions"},
    {"get_jq_origin", false, "modules are not available in expressions"},
};

}  // namespace

bool FindDeniedName(std::string_view program, ExpressionError* error) {
  JqLexer lexer(program);
  lexer.ScanCode(0, '\0');
  for (const Name& name : lexer.names()) {
    for (const DeniedName& denied : kDeniedNames) {
      if (denied.variable == name.variable && denied.name == name.text) {
        error->offset = name.offset;
        error->message = std::string("'") + (name.variable ? "$" : "") + std::string(name.text) +
                         "' is not allowed in an expression: " + std::string(denied.why);
        return true;
      }
    }
  }
  return false;
}

}  // namespace wf::workflows::detail
