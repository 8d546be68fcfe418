#pragma once

// Recursion between procedures (issue 11). A procedure that starts itself as a sub-case, directly
// or through others (a -> b -> a), would start sub-cases without end: each one starts inside its
// parent's transaction, so the chain would grow on the C++ stack until it overflowed. Deploy
// refuses such a release (CheckCallCycles); a chain already stored by an older wf is cut at run
// time by kMaxSubCaseDepth (runtime.cpp), as that case's incident.

#include <functional>
#include <string>
#include <vector>

#include "engine/store.hpp"
#include "workflows/procedure.hpp"
#include "workflows/status.hpp"

namespace wf::engine {

class ProcedureCache;

// At most this many ancestors above a sub-case (a case started by `call_procedure` whose parent
// was itself started so, ...). Real procedures nest two or three deep; every level starts in the
// same transaction and on the same stack as its parent, so the bound keeps both small. Starting a
// sub-case deeper than this is a permanent failure of the parent's call_procedure step: its
// on_error, or an incident naming the chain.
inline constexpr int kMaxSubCaseDepth = 8;

// The procedures `procedure` starts as sub-cases (its call_procedure steps), sorted, unique.
std::vector<std::string> CalledProcedures(const workflows::Procedure& procedure);

// The shortest chain by which one of `release` calls itself, as names from it back to it
// ({"a", "b", "a"}), or empty when there is none. `calls_of(name)` gives what a procedure calls
// (empty for one that does not exist) or an error, which is returned. Iterative; pure.
Result<std::vector<std::string>> FindCallCycle(
    const std::vector<std::string>& release,
    const std::function<Result<std::vector<std::string>>(const std::string&)>& calls_of);

// Inside a deploy's transaction: kInvalid naming the cycle ("procedure 'a' would start itself as
// a sub-case: a → b → a ...") when a procedure of `release` reaches itself through
// call_procedure, the procedures of `release` standing for themselves and every other name for
// its newest deployed version (read through `tx`, parsed through `cache`). A deployed version
// that no longer loads counts as calling nothing (deploying its fix must stay possible). The
// store's errors otherwise.
Status CheckCallCycles(StoreTx& tx, ProcedureCache& cache,
                       const std::vector<const workflows::Procedure*>& release);

}  // namespace wf::engine
