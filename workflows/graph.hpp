#pragma once

#include <string>

#include "workflows/procedure.hpp"

namespace wf::workflows {

enum class GraphFormat { kMermaid, kDot };

// Draws a procedure: decisions with their conditions on the edges, parallel forks and their
// joins, human tasks shaped apart from automated steps, waits, sub-cases, ends, and the
// on_error / on_timeout / escalation edges dashed. Deterministic output (a golden test).
std::string RenderGraph(const Procedure& procedure, GraphFormat format);

}  // namespace wf::workflows
