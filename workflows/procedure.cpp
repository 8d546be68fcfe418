#include "workflows/procedure.hpp"

#include <algorithm>

namespace wf::workflows {

const char* StepKindName(StepKind kind) {
  switch (kind) {
    case StepKind::kAdapter:
      return "adapter";
    case StepKind::kTask:
      return "task";
    case StepKind::kParallel:
      return "parallel";
    case StepKind::kWait:
      return "wait";
    case StepKind::kCallProcedure:
      return "call_procedure";
    case StepKind::kEnd:
      return "end";
    case StepKind::kDecision:
      return "decision";
  }
  return "unknown";
}

const Step* Procedure::FindStep(const std::string& id) const {
  // Procedures have tens of steps; a linear scan keeps the model a plain value.
  for (const Step& step : steps) {
    if (step.id == id) return &step;
  }
  return nullptr;
}

std::vector<std::string> Procedure::Departments() const {
  std::vector<std::string> out;
  for (const Step& step : steps) {
    if (step.kind == StepKind::kAdapter && !step.department.empty()) {
      out.push_back(step.department);
    }
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

}  // namespace wf::workflows
