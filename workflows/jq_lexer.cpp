#include "workflows/jq_lexer.hpp"

#include "workflows/i18n.hpp"

namespace wf::workflows::detail {

namespace {

// Builtins that reach outside the case data (stdin, the environment, files, the terminal) or stop
// the program. `stderr` writes straight to the process's stderr and `import`/`include` make
// libjq 1.6 abort the process, so they must never reach jq_compile.
struct DeniedName {
  std::string_view name;
  bool variable;
  const char* why;  // marked with TrNoop, translated when reported
};
constexpr DeniedName kDeniedNames[] = {
    {"input", false, TrNoop("it reads input outside the case data")},
    {"inputs", false, TrNoop("it reads input outside the case data")},
    {"input_filename", false, TrNoop("it reads input outside the case data")},
    {"input_line_number", false, TrNoop("it reads input outside the case data")},
    // jq 1.6's internal `input` without a callback: a SEGV inside jq_next (found by fuzzing).
    {"_input", false, TrNoop("it reads input outside the case data")},
    {"debug", false, TrNoop("it writes to the engine's log")},
    {"stderr", false, TrNoop("it writes to the engine's error stream")},
    {"env", false, TrNoop("it reads the engine's environment")},
    {"ENV", true, TrNoop("it reads the engine's environment")},
    {"__loc__", true, TrNoop("it describes the program, not the case")},
    {"halt", false, TrNoop("it stops the engine's evaluator")},
    {"halt_error", false, TrNoop("it stops the engine's evaluator")},
    {"import", false, TrNoop("modules are not available in expressions")},
    {"include", false, TrNoop("modules are not available in expressions")},
    {"modulemeta", false, TrNoop("modules are not available in expressions")},
    {"get_search_list", false, TrNoop("modules are not available in expressions")},
    {"get_prog_origin", false, TrNoop("modules are not available in expressions")},
    {"get_jq_origin", false, TrNoop("modules are not available in expressions")},
};

}  // namespace

bool FindDeniedName(std::string_view program, ExpressionError* error) {
  JqLexer lexer(program);
  lexer.ScanCode(0, '\0');
  for (const Name& name : lexer.names()) {
    for (const DeniedName& denied : kDeniedNames) {
      if (denied.variable == name.variable && denied.name == name.text) {
        error->offset = name.offset;
        error->message = TrFormat("'{0}{1}' is not allowed in an expression: {2}",
                                  name.variable ? "$" : "", std::string(name.text), Tr(denied.why));
        return true;
      }
    }
  }
  return false;
}

}  // namespace wf::workflows::detail
