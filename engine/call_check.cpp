#include "engine/call_check.hpp"

#include <string>

#include "workflows/i18n.hpp"

namespace wf::engine {

std::vector<workflows::Diagnostic> CheckCalls(const workflows::Procedure& procedure,
                                              const adapters::Registry& registry) {
  workflows::DiagnosticSink sink(procedure.file);
  for (const workflows::Step& step : procedure.steps) {
    if (step.kind != workflows::StepKind::kAdapter) continue;
    const adapters::Adapter* adapter = registry.Find(step.department);
    if (adapter == nullptr) continue;
    Status valid = adapter->Validate(adapters::StepCall{step.department, step.call});
    if (valid.ok()) continue;
    auto at = step.values.find("call");
    sink.Error(at != step.values.end() ? at->second : step.where,
               TrFormat("in step '{0}': {1}", step.id, valid.message()));
  }
  return sink.Sorted();
}

}  // namespace wf::engine
