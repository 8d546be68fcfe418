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
void CheckProcedure(const Procedure& procedure, DiagnosticSink& sink,
                    const DeploymentNames* deployment);

}  // namespace wf::workflows
