#pragma once

// Checks a procedure's department calls against the adapters that will carry them out, so that
// an author sees a bad `call:` at `wf validate --config` and `wf deploy`, not when a case reaches
// the step.

#include <vector>

#include "adapters/adapter.hpp"
#include "workflows/diagnostic.hpp"
#include "workflows/procedure.hpp"

namespace wf::engine {

// Runs Adapter::Validate on the `call:` of every adapter step of `procedure` whose department
// `registry` holds, and returns one diagnostic per refused call at the step's `call:` (or the
// step's key when it has none), sorted: "department 'x': why". Steps naming a department the
// registry lacks are left alone: the loader's deployment check reports unknown departments, and
// the built-in `noop` accepts every call. Does no I/O.
std::vector<workflows::Diagnostic> CheckCalls(const workflows::Procedure& procedure,
                                              const adapters::Registry& registry);

}  // namespace wf::engine
