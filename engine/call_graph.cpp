#include "engine/call_graph.hpp"

#include <algorithm>
#include <deque>
#include <map>
#include <set>

#include "engine/runtime.hpp"
#include "workflows/i18n.hpp"

namespace wf::engine {

std::vector<std::string> CalledProcedures(const workflows::Procedure& procedure) {
  std::set<std::string> called;
  for (const workflows::Step& step : procedure.steps) {
    if (step.kind == workflows::StepKind::kCallProcedure) called.insert(step.procedure);
  }
  return {called.begin(), called.end()};
}

Result<std::vector<std::string>> FindCallCycle(
    const std::vector<std::string>& release,
    const std::function<Result<std::vector<std::string>>(const std::string&)>& calls_of) {
  std::map<std::string, std::vector<std::string>> known;  // calls_of, asked once per name
  auto edges = [&](const std::string& name) -> Result<const std::vector<std::string>*> {
    auto it = known.find(name);
    if (it == known.end()) {
      auto calls = calls_of(name);
      if (!calls) return calls.error();
      it = known.emplace(name, std::move(*calls)).first;
    }
    return &it->second;
  };
  for (const std::string& start : release) {
    // Breadth first from `start`: the first edge back to it closes the shortest cycle.
    std::map<std::string, std::string> reached_from;  // name -> the name that called it
    std::deque<std::string> queue{start};
    std::set<std::string> seen{start};
    while (!queue.empty()) {
      std::string name = std::move(queue.front());
      queue.pop_front();
      auto next = edges(name);
      if (!next) return next.error();
      for (const std::string& callee : **next) {
        if (callee == start) {
          std::vector<std::string> cycle{start};
          for (std::string at = name; at != start; at = reached_from.at(at)) cycle.push_back(at);
          cycle.push_back(start);
          std::reverse(cycle.begin() + 1, cycle.end() - 1);
          return cycle;
        }
        if (seen.insert(callee).second) {
          reached_from.emplace(callee, name);
          queue.push_back(callee);
        }
      }
    }
  }
  return std::vector<std::string>{};
}

Status CheckCallCycles(StoreTx& tx, ProcedureCache& cache,
                       const std::vector<const workflows::Procedure*>& release) {
  std::map<std::string, const workflows::Procedure*> releasing;
  std::vector<std::string> names;
  for (const workflows::Procedure* procedure : release) {
    releasing[procedure->name] = procedure;
    names.push_back(procedure->name);
  }
  auto calls_of = [&](const std::string& name) -> Result<std::vector<std::string>> {
    if (auto it = releasing.find(name); it != releasing.end()) return CalledProcedures(*it->second);
    auto record = tx.LatestProcedure(name);
    if (!record) {
      if (record.error().code() == ErrorCode::kNotFound) return std::vector<std::string>{};
      return record.error();
    }
    auto deployed = cache.Put(*record);
    if (!deployed) return std::vector<std::string>{};
    return CalledProcedures(**deployed);
  };
  auto cycle = FindCallCycle(names, calls_of);
  if (!cycle) return cycle.error();
  if (cycle->empty()) return Status::Ok();
  std::string chain;
  for (const std::string& name : *cycle) chain += (chain.empty() ? "" : " → ") + name;
  return Status::Invalid(
      TrFormat("procedure '{0}' would start itself as a sub-case: {1}; call_procedure may not "
               "lead back to the procedure that calls, directly or through others",
               cycle->front(), chain));
}

}  // namespace wf::engine
