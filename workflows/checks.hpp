#pragma once

#include "workflows/diagnostic.hpp"
#include "workflows/loader.hpp"
#include "workflows/procedure.hpp"

namespace wf::workflows {

// The static checks on a built procedure: every next/goto/on_error/on_timeout/parallel target
// and escalate_to role exists; every step is reachable from `start`; every cycle has a way out
// and an end is reachable from every step; every role a task uses is declared; parallel
// branches end (no next out of the fork) and do not share steps; with `deployment`, departments,
// agencies and roles exist there. Reports into `sink` at the offending key's location.
//
// The exact rules, in the order they run:
// 1. Targets. `start`, each `next`/`goto`, `on_error`, `on_timeout` and `parallel` branch names
//    an existing step (near misses get a suggestion). A task's `role` and `escalate_to` are
//    declared under `roles:`. When `start` names no step, the graph rules below are skipped.
//    An unknown target with a suggestion counts, in the rules below, as an edge to the
//    suggested step, so that one typo is one diagnostic and not a cascade of unreachable steps.
// 2. Reachability. Following every edge (next, goto, on_error, on_timeout, branches), each step
//    is reachable from `start`: "step 'x' is unreachable from 'start_step'".
// 3. Stopping. A parallel step needs a `next`: where its branches join. Any other step that the
//    main flow reaches (from `start`, without entering a parallel branch) and that is neither an
//    end nor a decision must have a `next`; only the last step of a branch stops without one.
// 4. Parallel branches. A branch is the set of steps reachable from the branch's first step.
//    For parallel step P and branch B, the steps reachable from `start` without the edge P → B
//    are "outside" B. B's first step must not be outside (a branch is entered only through its
//    fork: this also forbids two branches sharing steps); no edge of the branch may lead outside
//    it (not to the join target, not back to P, not to another branch) — reported once per
//    branch, at the first such edge; and no end step may sit inside a branch (an end would stop
//    the case while the other branches run: the case ends after the join). Nested parallel steps
//    inside a branch are fine and follow the same rules.
// 5. Ways out. A step with no `next` is a way out (an end, or the last step of a branch). Every
//    group of steps that can reach none of them through next/goto, on_error and on_timeout
//    (a parallel step through its `next`) forms a cycle, reported once at its first step in
//    file order: "steps a → b → a form a cycle with no way out".
// 6. Deployment (only for the non-empty lists of `deployment`): adapter departments, the
//    procedure's and roles' agencies, declared roles (held by some member) and call_procedure
//    targets (besides the procedure itself) exist there.
void CheckProcedure(const Procedure& procedure, DiagnosticSink& sink,
                    const DeploymentNames* deployment);

}  // namespace wf::workflows
