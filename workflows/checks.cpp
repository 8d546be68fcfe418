#include "workflows/checks.hpp"

#include <algorithm>
#include <deque>
#include <map>
#include <string>
#include <vector>

#include "workflows/i18n.hpp"

namespace wf::workflows {

namespace {

constexpr int kNone = -1;

// One edge of the step graph, with where its target was written.
struct Edge {
  int target = kNone;
  SourceLocation where;
  bool branch = false;    // a parallel step's edge into one of its branches
  bool exit_path = true;  // counts when looking for a way out (not a branch edge)
};

std::string Quoted(const std::string& s) { return "'" + s + "'"; }

std::string Joined(std::vector<std::string> names) {
  std::sort(names.begin(), names.end());
  std::string out;
  for (size_t i = 0; i < names.size(); ++i) {
    if (i > 0) out += ", ";
    out += names[i];
  }
  return out;
}

// "; did you mean 'x'?" to end a message with, or empty when nothing is near.
std::string DidYouMean(const std::string& near) {
  return near.empty() ? "" : TrFormat("; did you mean {0}?", Quoted(near));
}

bool Contains(const std::vector<std::string>& list, const std::string& word) {
  return std::find(list.begin(), list.end(), word) != list.end();
}

class Checker {
 public:
  Checker(const Procedure& procedure, DiagnosticSink& sink) : procedure_(procedure), sink_(sink) {
    for (size_t i = 0; i < procedure.steps.size(); ++i) {
      index_[procedure.steps[i].id] = static_cast<int>(i);
      ids_.push_back(procedure.steps[i].id);
    }
  }

  void Run(const DeploymentNames* deployment);

 private:
  void Error(SourceLocation where, std::string message) {
    if (where.line == 0) where = {1, 1};
    sink_.Error(where, std::move(message));
  }
  int IndexOf(const std::string& id) const {
    auto it = index_.find(id);
    return it == index_.end() ? kNone : it->second;
  }
  SourceLocation ValueWhere(const Step& step, const std::string& key) const {
    auto it = step.values.find(key);
    return it != step.values.end() ? it->second : step.where;
  }
  // Reports an unknown target. Returns the step's index, the suggested step's for a near miss,
  // or kNone.
  int Target(const std::string& id, const std::string& key, const Step& step, SourceLocation where);
  void CheckTargetsAndRoles();
  void CheckRole(const Step& step, const std::string& key, const std::string& role);
  // Steps reachable from `from`, skipping `skip_from` → `skip_to` and, if `skip_branches`,
  // every edge into a parallel branch.
  std::vector<bool> Reachable(int from, int skip_from, int skip_to, bool skip_branches) const;
  void CheckReachability(int start);
  void CheckStopping(int start);
  void CheckBranches(int start, const std::vector<bool>& reachable);
  void CheckWaysOut();
  void CheckDeployment(const DeploymentNames& deployment);

  const Procedure& procedure_;
  DiagnosticSink& sink_;
  std::map<std::string, int> index_;
  std::vector<std::string> ids_;
  std::vector<std::vector<Edge>> edges_;
};

int Checker::Target(const std::string& id, const std::string& key, const Step& step,
                    SourceLocation where) {
  int target = IndexOf(id);
  if (target == kNone && !id.empty()) {
    std::string near = NearestMatch(id, ids_);
    Error(where, TrFormat("unknown step {0} in `{1}` of step {2}{3}", Quoted(id), key,
                          Quoted(step.id), DidYouMean(near)));
    // Follow the likely intended step so one typo does not also make its target unreachable.
    target = IndexOf(near);
  }
  return target;
}

void Checker::CheckRole(const Step& step, const std::string& key, const std::string& role) {
  if (role.empty() || procedure_.roles.count(role)) return;
  std::vector<std::string> declared;
  for (const auto& [name, unused] : procedure_.roles) declared.push_back(name);
  std::string near = NearestMatch(role, declared);
  Error(ValueWhere(step, key),
        near.empty() ? TrFormat("undeclared role {0} in `{1}` of step {2}; declare it under "
                                "`roles:`",
                                Quoted(role), key, Quoted(step.id))
                     : TrFormat("undeclared role {0} in `{1}` of step {2}{3}", Quoted(role), key,
                                Quoted(step.id), DidYouMean(near)));
}

void Checker::CheckTargetsAndRoles() {
  edges_.assign(procedure_.steps.size(), {});
  for (size_t i = 0; i < procedure_.steps.size(); ++i) {
    const Step& step = procedure_.steps[i];
    std::vector<Edge>& out = edges_[i];
    for (size_t b = 0; b < step.branches.size(); ++b) {
      SourceLocation where = b < step.branch_where.size() ? step.branch_where[b] : step.where;
      int target = Target(step.branches[b], "parallel", step, where);
      if (target != kNone) out.push_back(Edge{target, where, true, false});
    }
    for (const Transition& transition : step.next) {
      int target = Target(transition.target, "next", step, transition.where);
      if (target != kNone) out.push_back(Edge{target, transition.where, false, true});
    }
    if (!step.on_error.empty()) {
      int target = Target(step.on_error, "on_error", step, ValueWhere(step, "on_error"));
      if (target != kNone) out.push_back(Edge{target, ValueWhere(step, "on_error"), false, true});
    }
    if (!step.on_timeout.empty()) {
      int target = Target(step.on_timeout, "on_timeout", step, ValueWhere(step, "on_timeout"));
      if (target != kNone) {
        out.push_back(Edge{target, ValueWhere(step, "on_timeout"), false, true});
      }
    }
    if (step.kind == StepKind::kTask) {
      CheckRole(step, "role", step.role);
      CheckRole(step, "escalate_to", step.escalate_to);
    }
  }
}

std::vector<bool> Checker::Reachable(int from, int skip_from, int skip_to,
                                     bool skip_branches) const {
  std::vector<bool> seen(procedure_.steps.size(), false);
  std::deque<int> queue{from};
  seen[from] = true;
  while (!queue.empty()) {
    int u = queue.front();
    queue.pop_front();
    for (const Edge& edge : edges_[u]) {
      if (u == skip_from && edge.target == skip_to && edge.branch) continue;
      if (skip_branches && edge.branch) continue;
      if (!seen[edge.target]) {
        seen[edge.target] = true;
        queue.push_back(edge.target);
      }
    }
  }
  return seen;
}

void Checker::CheckReachability(int start) {
  std::vector<bool> reachable = Reachable(start, kNone, kNone, false);
  for (size_t i = 0; i < procedure_.steps.size(); ++i) {
    if (!reachable[i]) {
      Error(procedure_.steps[i].where,
            TrFormat("step {0} is unreachable from {1}", Quoted(procedure_.steps[i].id),
                     Quoted(procedure_.start)));
    }
  }
  CheckBranches(start, reachable);
}

void Checker::CheckStopping(int start) {
  std::vector<bool> main_flow = Reachable(start, kNone, kNone, true);
  for (size_t i = 0; i < procedure_.steps.size(); ++i) {
    const Step& step = procedure_.steps[i];
    if (step.keys.count("next")) continue;
    if (step.kind == StepKind::kParallel) {
      Error(step.where, TrFormat("parallel step {0} needs a `next`: the step where its "
                                 "branches join",
                                 Quoted(step.id)));
    } else if (main_flow[i] && step.kind != StepKind::kEnd && step.kind != StepKind::kDecision) {
      Error(step.where, TrFormat("step {0} has no `next`; only an end step or the last step "
                                 "of a parallel branch stops without one",
                                 Quoted(step.id)));
    }
  }
}

void Checker::CheckBranches(int start, const std::vector<bool>& reachable) {
  for (size_t p = 0; p < procedure_.steps.size(); ++p) {
    const Step& fork = procedure_.steps[p];
    if (fork.kind != StepKind::kParallel || !reachable[p]) continue;
    // Everything each branch reaches, to tell a shared step from a way out of the fork.
    std::vector<std::vector<bool>> reaches;
    for (const std::string& branch : fork.branches) {
      int first = IndexOf(branch);
      reaches.push_back(first == kNone ? std::vector<bool>(procedure_.steps.size(), false)
                                       : Reachable(first, kNone, kNone, false));
    }
    for (size_t b = 0; b < fork.branches.size(); ++b) {
      int first = IndexOf(fork.branches[b]);
      if (first == kNone) continue;
      SourceLocation branch_where =
          b < fork.branch_where.size() ? fork.branch_where[b] : fork.where;
      const std::string branch = Quoted(fork.branches[b]);
      const std::string parallel = Quoted(fork.id);
      std::vector<bool> outside = Reachable(start, static_cast<int>(p), first, false);
      if (outside[first]) {
        Error(branch_where, TrFormat("step {0} starts branch {0} of parallel step {1} but is "
                                     "also reached from outside the branch",
                                     branch, parallel));
        continue;
      }
      // Walk the branch breadth-first so the first edge out is the one nearest its start.
      std::vector<bool> inside(procedure_.steps.size(), false);
      std::deque<int> queue{first};
      inside[first] = true;
      bool reported_exit = false;
      while (!queue.empty()) {
        int u = queue.front();
        queue.pop_front();
        const Step& step = procedure_.steps[u];
        if (step.kind == StepKind::kEnd) {
          Error(step.where, TrFormat("end step {0} is inside branch {1} of parallel step {2}; "
                                     "a branch stops at a step with no `next` and the case goes "
                                     "on after the join",
                                     Quoted(step.id), branch, parallel));
        }
        for (const Edge& edge : edges_[u]) {
          if (outside[edge.target]) {
            if (!reported_exit) {
              const std::string& target = procedure_.steps[edge.target].id;
              std::string sibling;
              for (size_t c = 0; c < fork.branches.size() && sibling.empty(); ++c) {
                if (c != b && reaches[c][edge.target]) sibling = fork.branches[c];
              }
              Error(edge.where,
                    sibling.empty()
                        ? TrFormat("branch {0} of parallel step {1} leads out of the branch to "
                                   "{2}; a branch runs until a step with no `next`",
                                   branch, parallel, Quoted(target))
                        : TrFormat("branch {0} of parallel step {1} shares step {2} with branch "
                                   "{3}; branches must not share steps",
                                   branch, parallel, Quoted(target), Quoted(sibling)));
              reported_exit = true;
            }
            continue;
          }
          if (!inside[edge.target]) {
            inside[edge.target] = true;
            queue.push_back(edge.target);
          }
        }
      }
    }
  }
}

void Checker::CheckWaysOut() {
  const size_t n = procedure_.steps.size();
  // Reverse edges over the paths that count as ways out.
  std::vector<std::vector<int>> reverse(n);
  for (size_t u = 0; u < n; ++u) {
    for (const Edge& edge : edges_[u]) {
      if (edge.exit_path) reverse[edge.target].push_back(static_cast<int>(u));
    }
  }
  std::vector<bool> escapes(n, false);
  std::deque<int> queue;
  for (size_t u = 0; u < n; ++u) {
    if (procedure_.steps[u].next.empty()) {
      escapes[u] = true;
      queue.push_back(static_cast<int>(u));
    }
  }
  while (!queue.empty()) {
    int v = queue.front();
    queue.pop_front();
    for (int u : reverse[v]) {
      if (!escapes[u]) {
        escapes[u] = true;
        queue.push_back(u);
      }
    }
  }

  // Strongly connected components of the trapped steps (Tarjan's algorithm, iterative so a
  // hostile definition with thousands of steps cannot exhaust the stack).
  std::vector<int> order(n, kNone), low(n, 0), component(n, kNone);
  std::vector<bool> on_stack(n, false);
  std::vector<int> stack;
  int counter = 0;
  int components = 0;
  auto trapped_successors = [&](int u) {
    std::vector<int> out;
    for (const Edge& edge : edges_[u]) {
      if (edge.exit_path && !escapes[edge.target]) out.push_back(edge.target);
    }
    return out;
  };
  for (size_t root = 0; root < n; ++root) {
    if (escapes[root] || order[root] != kNone) continue;
    struct Frame {
      int node;
      std::vector<int> successors;
      size_t next = 0;
    };
    std::vector<Frame> frames;
    auto enter = [&](int u) {
      order[u] = low[u] = counter++;
      stack.push_back(u);
      on_stack[u] = true;
      frames.push_back(Frame{u, trapped_successors(u)});
    };
    enter(static_cast<int>(root));
    while (!frames.empty()) {
      Frame& frame = frames.back();
      if (frame.next < frame.successors.size()) {
        int v = frame.successors[frame.next++];
        if (order[v] == kNone) {
          enter(v);
        } else if (on_stack[v]) {
          low[frame.node] = std::min(low[frame.node], order[v]);
        }
        continue;
      }
      int u = frame.node;
      frames.pop_back();
      if (!frames.empty()) low[frames.back().node] = std::min(low[frames.back().node], low[u]);
      if (low[u] == order[u]) {
        while (true) {
          int w = stack.back();
          stack.pop_back();
          on_stack[w] = false;
          component[w] = components;
          if (w == u) break;
        }
        ++components;
      }
    }
  }

  std::vector<bool> reported(components, false);
  for (size_t s = 0; s < n; ++s) {  // file order: the first step of each cycle reports it
    if (escapes[s] || reported[component[s]]) continue;
    int c = component[s];
    // The shortest path from s back to s inside its component.
    std::vector<int> parent(n, kNone);
    std::vector<bool> seen(n, false);
    std::deque<int> bfs{static_cast<int>(s)};
    seen[s] = true;
    int closing = kNone;
    while (!bfs.empty() && closing == kNone) {
      int u = bfs.front();
      bfs.pop_front();
      for (const Edge& edge : edges_[u]) {
        if (!edge.exit_path || component[edge.target] != c) continue;
        if (edge.target == static_cast<int>(s)) {
          closing = u;
          break;
        }
        if (!seen[edge.target]) {
          seen[edge.target] = true;
          parent[edge.target] = u;
          bfs.push_back(edge.target);
        }
      }
    }
    if (closing == kNone) continue;  // a single step that only leads into a cycle elsewhere
    reported[c] = true;
    std::vector<std::string> path;
    for (int u = closing; u != kNone; u = parent[u]) path.push_back(procedure_.steps[u].id);
    std::reverse(path.begin(), path.end());
    path.push_back(procedure_.steps[s].id);
    std::string text;
    for (size_t i = 0; i < path.size(); ++i) text += (i ? " → " : "") + path[i];
    Error(procedure_.steps[s].where, TrFormat("steps {0} form a cycle with no way out", text));
  }
}

void Checker::CheckDeployment(const DeploymentNames& deployment) {
  // `listing` and `suggesting` are messages marked with TrNoop: the quoted name is {0}, then the
  // names the config knows or the suggestion.
  auto unknown = [&](const char* listing, const char* suggesting, const std::string& name,
                     const std::vector<std::string>& known) {
    const std::string near = NearestMatch(name, known);
    const std::string quoted = Quoted(name);
    const std::string rest = near.empty() ? Joined(known) : DidYouMean(near);
    const char* message = near.empty() ? listing : suggesting;
    return TrFill(Tr(message), message, fmt::make_format_args(quoted, rest));
  };
  const char* kUnknownDepartment =
      TrNoop("unknown department {0}; the deployment config names: {1}");
  const char* kNearDepartment = TrNoop("unknown department {0}{1}");
  const char* kUnknownAgency = TrNoop("unknown agency {0}; the deployment config names: {1}");
  const char* kNearAgency = TrNoop("unknown agency {0}{1}");
  // `noop` is built into every engine (DESIGN.md, "Adapter wire protocols"): known whether or
  // not the config names departments.
  if (!deployment.departments.empty()) {
    for (const Step& step : procedure_.steps) {
      if (step.kind == StepKind::kAdapter && !step.department.empty() &&
          step.department != kBuiltInDepartment &&
          !Contains(deployment.departments, step.department)) {
        Error(ValueWhere(step, "adapter"), unknown(kUnknownDepartment, kNearDepartment,
                                                   step.department, deployment.departments));
      }
    }
  }
  if (!deployment.agencies.empty()) {
    if (!procedure_.agency.empty() && !Contains(deployment.agencies, procedure_.agency)) {
      auto it = procedure_.values.find("agency");
      Error(it != procedure_.values.end() ? it->second : SourceLocation{1, 1},
            unknown(kUnknownAgency, kNearAgency, procedure_.agency, deployment.agencies));
    }
    for (const auto& [name, role] : procedure_.roles) {
      // A role without its own agency inherits the procedure's: reported once, above.
      bool inherited = role.agency_where.line == role.where.line &&
                       role.agency_where.column == role.where.column;
      if (!inherited && !role.agency.empty() && !Contains(deployment.agencies, role.agency)) {
        Error(role.agency_where,
              unknown(kUnknownAgency, kNearAgency, role.agency, deployment.agencies));
      }
    }
  }
  if (!deployment.roles.empty()) {
    for (const auto& [name, role] : procedure_.roles) {
      if (!Contains(deployment.roles, name)) {
        Error(role.where, TrFormat("role {0} is held by no member of any agency in the "
                                   "deployment config",
                                   Quoted(name)));
      }
    }
  }
  if (!deployment.procedures.empty()) {
    for (const Step& step : procedure_.steps) {
      if (step.kind == StepKind::kCallProcedure && !step.procedure.empty() &&
          step.procedure != procedure_.name && !Contains(deployment.procedures, step.procedure)) {
        std::string near = NearestMatch(step.procedure, deployment.procedures);
        Error(ValueWhere(step, "call_procedure"),
              near.empty()
                  ? TrFormat("unknown procedure {0}; known procedures: {1}", Quoted(step.procedure),
                             Joined(deployment.procedures))
                  : TrFormat("unknown procedure {0}{1}", Quoted(step.procedure), DidYouMean(near)));
      }
    }
  }
}

void Checker::Run(const DeploymentNames* deployment) {
  CheckTargetsAndRoles();
  if (deployment != nullptr) CheckDeployment(*deployment);
  if (procedure_.steps.empty()) return;
  int start = IndexOf(procedure_.start);
  if (start == kNone) {
    if (!procedure_.start.empty()) {
      auto it = procedure_.values.find("start");
      std::string near = NearestMatch(procedure_.start, ids_);
      Error(it != procedure_.values.end() ? it->second : SourceLocation{1, 1},
            TrFormat("unknown step {0} in `start`{1}", Quoted(procedure_.start), DidYouMean(near)));
    }
  } else {
    CheckReachability(start);
    CheckStopping(start);
  }
  CheckWaysOut();
}

}  // namespace

void CheckProcedure(const Procedure& procedure, DiagnosticSink& sink,
                    const DeploymentNames* deployment) {
  Checker(procedure, sink).Run(deployment);
}

}  // namespace wf::workflows
