#include "workflows/graph.hpp"

#include <cctype>
#include <cstddef>
#include <deque>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "workflows/i18n.hpp"

namespace wf::workflows {
namespace {

// The drawing is built once, in format-neutral terms, and then written out as mermaid or dot.
// Keeping the two formats apart from the walk over the procedure means both draw the same
// graph, and each writer only knows its own syntax and escaping.

enum class Shape {
  kStart,         // where the case begins
  kAutomated,     // adapter step: a department system
  kHuman,         // task step: a person decides
  kDecision,      // conditions only
  kFork,          // parallel step
  kJoin,          // where a parallel step's branches meet again
  kWait,          // wait for a signal
  kSubProcedure,  // call_procedure
  kEnd,           // end with an outcome
  kEscalation,    // the role a task goes to when its deadline passes
};

enum class EdgeStyle { kSolid, kDashed };

// `key` is unique within a drawing and independent of the format: "start", "step:<id>",
// "join:<id>", "escalation:<id>".
struct Node {
  std::string key;
  Shape shape = Shape::kAutomated;
  std::vector<std::string> lines;  // label, one entry per line, unescaped
};

struct Edge {
  std::string from;
  std::string to;
  std::string label;  // unescaped; empty: none
  EdgeStyle style = EdgeStyle::kSolid;
};

struct Drawing {
  std::string name;
  std::string caption;
  std::vector<Node> nodes;
  std::vector<Edge> edges;
};

std::string StepKey(const std::string& id) { return "step:" + id; }
std::string JoinKey(const std::string& id) { return "join:" + id; }
std::string EscalationKey(const std::string& id) { return "escalation:" + id; }

// Labels stay on one line per entry: control characters (a jq program written as a block
// scalar spans lines) become single spaces, and runs of spaces collapse.
std::string OneLine(std::string_view text) {
  std::string out;
  bool pending_space = false;
  for (char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f || c == ' ') {
      pending_space = !out.empty();
      continue;
    }
    if (pending_space) out += ' ';
    pending_space = false;
    out += c;
  }
  return out;
}

// A duration in a label, in the reader's language: "3 days" and "1 working day" as written in
// English, "3 ngày" in Vietnamese; the clock units (30s, 5m, 2h) read alike in both.
std::string ShownDuration(const Duration& duration) {
  const auto n = static_cast<unsigned long>(duration.amount);
  const std::string amount = i18n::Number(duration.amount);
  switch (duration.unit) {
    case DurationUnit::kDays:
      return TrFormatN("{0} day", "{0} days", n, amount);
    case DurationUnit::kWorkingDays:
      return TrFormatN("{0} working day", "{0} working days", n, amount);
    default:
      return duration.ToString();
  }
}

std::string ConditionText(const Transition& transition) {
  return OneLine(transition.condition->expression.program());
}

// The label of the edges of `step`'s `next` list, one per transition: the condition's jq
// program, "otherwise" for the bare goto that ends a conditional list, nothing for a plain
// `next: step`.
std::vector<Edge> TransitionEdges(const std::string& from, const std::vector<Transition>& next) {
  std::vector<Edge> edges;
  const bool conditional = next.size() > 1 || (next.size() == 1 && next.front().condition);
  for (const Transition& t : next) {
    Edge edge{from, StepKey(t.target), "", EdgeStyle::kSolid};
    if (t.condition) {
      edge.label = ConditionText(t);
    } else if (conditional) {
      edge.label = Tr("otherwise");
    }
    edges.push_back(std::move(edge));
  }
  return edges;
}

std::vector<std::string> StepLines(const Step& step) {
  std::vector<std::string> lines{step.id};
  switch (step.kind) {
    case StepKind::kAdapter: {
      std::string line = step.department;
      auto op = step.call.find("operation");
      if (op != step.call.end() && op->is_string()) line += ": " + op->get<std::string>();
      lines.push_back(line);
      if (step.reuse) lines.push_back(TrFormat("reuses {0}", ShownDuration(*step.reuse)));
      break;
    }
    case StepKind::kTask:
      lines.push_back(i18n::Pick(step.task_titles, step.task));
      lines.push_back("role: " + step.role);
      if (step.deadline) lines.push_back("deadline: " + ShownDuration(*step.deadline));
      break;
    case StepKind::kParallel:
      lines.push_back("parallel");
      break;
    case StepKind::kWait:
      lines.push_back("wait: " + step.signal);
      if (step.pauses_deadline) lines.push_back(Tr("pauses the deadline"));
      break;
    case StepKind::kCallProcedure:
      lines.push_back("call: " + step.procedure);
      break;
    case StepKind::kEnd:
      if (step.outcome == step.id) lines.clear();
      lines.push_back(step.outcome);
      break;
    case StepKind::kDecision:
      break;
  }
  for (std::string& line : lines) line = OneLine(line);
  return lines;
}

Shape StepShape(StepKind kind) {
  switch (kind) {
    case StepKind::kAdapter:
      return Shape::kAutomated;
    case StepKind::kTask:
      return Shape::kHuman;
    case StepKind::kParallel:
      return Shape::kFork;
    case StepKind::kWait:
      return Shape::kWait;
    case StepKind::kCallProcedure:
      return Shape::kSubProcedure;
    case StepKind::kEnd:
      return Shape::kEnd;
    case StepKind::kDecision:
      return Shape::kDecision;
  }
  return Shape::kAutomated;
}

// The nodes where a branch starting at `branch` stops: steps with no `next` (other than ends,
// which end the whole case), and the joins of nested parallel steps that have no `next`.
// A nested parallel step is crossed through its join: its own branches belong to it.
std::vector<std::string> BranchTerminals(const std::map<std::string, const Step*>& steps,
                                         const std::string& branch) {
  std::vector<std::string> terminals;
  std::set<std::string> seen;
  std::deque<std::string> queue{branch};
  while (!queue.empty()) {
    const std::string id = queue.front();
    queue.pop_front();
    if (!seen.insert(id).second) continue;
    auto found = steps.find(id);
    if (found == steps.end()) continue;  // an unknown target: the checks report it
    const Step& step = *found->second;
    if (step.next.empty()) {
      if (step.kind == StepKind::kParallel) {
        terminals.push_back(JoinKey(step.id));
      } else if (step.kind != StepKind::kEnd) {
        terminals.push_back(StepKey(step.id));
      }
    }
    for (const Transition& t : step.next) queue.push_back(t.target);
    if (!step.on_error.empty()) queue.push_back(step.on_error);
    if (!step.on_timeout.empty()) queue.push_back(step.on_timeout);
  }
  return terminals;
}

Drawing BuildDrawing(const Procedure& procedure) {
  Drawing drawing;
  drawing.name = procedure.name;
  const std::string& title = i18n::Pick(procedure.titles, procedure.title);
  drawing.caption = OneLine(procedure.name + " v" + std::to_string(procedure.version) +
                            (title.empty() ? "" : ": " + title));

  std::map<std::string, const Step*> steps;
  for (const Step& step : procedure.steps) steps.emplace(step.id, &step);

  std::string start = procedure.start;
  if (start.empty() && !procedure.steps.empty()) start = procedure.steps.front().id;
  drawing.nodes.push_back({"start", Shape::kStart, {Tr("start")}});
  if (!start.empty()) drawing.edges.push_back({"start", StepKey(start), "", EdgeStyle::kSolid});

  for (const Step& step : procedure.steps) {
    const std::string key = StepKey(step.id);
    drawing.nodes.push_back({key, StepShape(step.kind), StepLines(step)});

    if (step.kind == StepKind::kParallel) {
      const std::string join = JoinKey(step.id);
      drawing.nodes.push_back({join, Shape::kJoin, {TrFormat("join {0}", OneLine(step.id))}});
      for (const std::string& branch : step.branches) {
        drawing.edges.push_back({key, StepKey(branch), "", EdgeStyle::kSolid});
      }
      for (const std::string& branch : step.branches) {
        for (const std::string& terminal : BranchTerminals(steps, branch)) {
          drawing.edges.push_back({terminal, join, "", EdgeStyle::kSolid});
        }
      }
      for (Edge& edge : TransitionEdges(join, step.next)) drawing.edges.push_back(std::move(edge));
    } else {
      for (Edge& edge : TransitionEdges(key, step.next)) drawing.edges.push_back(std::move(edge));
    }

    if (!step.on_error.empty()) {
      drawing.edges.push_back({key, StepKey(step.on_error), "on_error", EdgeStyle::kDashed});
    }
    if (!step.on_timeout.empty()) {
      std::string label = step.wait_timeout
                              ? TrFormat("on_timeout after {0}", ShownDuration(*step.wait_timeout))
                              : std::string("on_timeout");
      drawing.edges.push_back({key, StepKey(step.on_timeout), label, EdgeStyle::kDashed});
    }
    if (!step.escalate_to.empty()) {
      const std::string escalation = EscalationKey(step.id);
      drawing.nodes.push_back({escalation,
                               Shape::kEscalation,
                               {TrFormat("escalate to {0}", OneLine(step.escalate_to))}});
      std::string label = step.deadline
                              ? TrFormat("escalation after {0}", ShownDuration(*step.deadline))
                              : std::string(Tr("escalation"));
      drawing.edges.push_back({key, escalation, label, EdgeStyle::kDashed});
    }
  }
  return drawing;
}

// ---- mermaid -------------------------------------------------------------------------------

// Text inside a quoted mermaid label. Mermaid decodes `#name;` and `#number;` entity codes, so
// the characters that would end the label or be read as markup are written that way.
std::string MermaidText(std::string_view text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '"':
        out += "#quot;";
        break;
      case '#':
        out += "#35;";
        break;
      case '&':
        out += "#amp;";
        break;
      case '<':
        out += "#lt;";
        break;
      case '>':
        out += "#gt;";
        break;
      case '|':
        out += "#124;";
        break;
      case '`':
        out += "#96;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string MermaidLabel(const std::vector<std::string>& lines) {
  std::string out;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (i > 0) out += "<br/>";
    out += MermaidText(lines[i]);
  }
  return out;
}

// Mermaid node ids are plain words: the step id with anything but [A-Za-z0-9_] replaced, behind
// a prefix per kind of node (which also keeps ids away from mermaid's keyword `end`), made
// unique with a numeric suffix if two step ids collapse onto one.
std::map<std::string, std::string> MermaidIds(const Drawing& drawing) {
  std::map<std::string, std::string> ids;
  std::set<std::string> taken;
  for (const Node& node : drawing.nodes) {
    std::string base;
    std::string_view rest;
    if (node.key == "start") {
      base = "start";
    } else {
      const size_t colon = node.key.find(':');
      const std::string_view kind = std::string_view(node.key).substr(0, colon);
      rest = std::string_view(node.key).substr(colon + 1);
      base = kind == "step" ? "s_" : kind == "join" ? "j_" : "e_";
      for (char c : rest) {
        const bool word =
            (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
        base += word ? c : '_';
      }
    }
    std::string id = base;
    for (int n = 2; !taken.insert(id).second; ++n) id = base + "_" + std::to_string(n);
    ids.emplace(node.key, id);
  }
  return ids;
}

std::string RenderMermaid(const Drawing& drawing) {
  const std::map<std::string, std::string> ids = MermaidIds(drawing);
  auto id_of = [&ids](const std::string& key) {
    auto found = ids.find(key);
    // An edge to a step that does not exist (the checks report it) still draws, to a node
    // mermaid creates with the raw id as its text.
    if (found != ids.end()) return found->second;
    std::string fallback = "missing_";
    for (char c : key) fallback += (std::isalnum(static_cast<unsigned char>(c)) ? c : '_');
    return fallback;
  };

  std::string out = "flowchart TD\n";
  out += "  %% " + MermaidText(drawing.caption) + "\n";
  for (const Node& node : drawing.nodes) {
    const std::string label = "\"" + MermaidLabel(node.lines) + "\"";
    std::string shaped;
    switch (node.shape) {
      case Shape::kStart:
        shaped = "((" + label + "))";
        break;
      case Shape::kAutomated:
        shaped = "[" + label + "]";
        break;
      case Shape::kHuman:
        shaped = "([" + label + "])";
        break;
      case Shape::kDecision:
        shaped = "{" + label + "}";
        break;
      case Shape::kFork:
        shaped = "[/" + label + "\\]";
        break;
      case Shape::kJoin:
        shaped = "[\\" + label + "/]";
        break;
      case Shape::kWait:
        shaped = "{{" + label + "}}";
        break;
      case Shape::kSubProcedure:
        shaped = "[[" + label + "]]";
        break;
      case Shape::kEnd:
        shaped = "(((" + label + ")))";
        break;
      case Shape::kEscalation:
        shaped = ">" + label + "]";
        break;
    }
    out += "  " + id_of(node.key) + shaped + "\n";
  }
  for (const Edge& edge : drawing.edges) {
    std::string arrow = edge.style == EdgeStyle::kDashed ? "-.->" : "-->";
    if (!edge.label.empty()) arrow += "|\"" + MermaidText(edge.label) + "\"|";
    out += "  " + id_of(edge.from) + " " + arrow + " " + id_of(edge.to) + "\n";
  }
  return out;
}

// ---- dot -----------------------------------------------------------------------------------

// Text inside a double-quoted dot string. A backslash starts an escape in dot labels (\n, \l,
// \N, ...), so it is doubled; quotes are escaped. OneLine already removed control characters.
std::string DotText(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out;
}

std::string DotQuoted(std::string_view text) { return "\"" + DotText(text) + "\""; }

std::string DotLabel(const std::vector<std::string>& lines) {
  std::string out = "\"";
  for (size_t i = 0; i < lines.size(); ++i) {
    if (i > 0) out += "\\n";
    out += DotText(lines[i]);
  }
  return out + "\"";
}

std::string DotShape(Shape shape) {
  switch (shape) {
    case Shape::kStart:
      return "shape=circle";
    case Shape::kAutomated:
      return "shape=box";
    case Shape::kHuman:
      return "shape=box, style=\"rounded,filled\", fillcolor=\"#fff4d6\"";
    case Shape::kDecision:
      return "shape=diamond";
    case Shape::kFork:
      return "shape=trapezium, style=filled, fillcolor=\"#e0e0e0\"";
    case Shape::kJoin:
      return "shape=invtrapezium, style=filled, fillcolor=\"#e0e0e0\"";
    case Shape::kWait:
      return "shape=hexagon";
    case Shape::kSubProcedure:
      return "shape=box, peripheries=2";
    case Shape::kEnd:
      return "shape=doublecircle";
    case Shape::kEscalation:
      return "shape=note, style=dashed";
  }
  return "shape=box";
}

std::string RenderDot(const Drawing& drawing) {
  std::string out = "digraph " + DotQuoted(drawing.name) + " {\n";
  out +=
      "  graph [label=" + DotQuoted(drawing.caption) + ", labelloc=t, fontname=\"Helvetica\"];\n";
  out += "  node [fontname=\"Helvetica\", fontsize=10];\n";
  out += "  edge [fontname=\"Helvetica\", fontsize=9];\n";
  for (const Node& node : drawing.nodes) {
    out += "  " + DotQuoted(node.key) + " [" + DotShape(node.shape) +
           ", label=" + DotLabel(node.lines) + "];\n";
  }
  for (const Edge& edge : drawing.edges) {
    out += "  " + DotQuoted(edge.from) + " -> " + DotQuoted(edge.to);
    std::vector<std::string> attributes;
    if (edge.style == EdgeStyle::kDashed) attributes.push_back("style=dashed");
    if (!edge.label.empty()) attributes.push_back("label=" + DotQuoted(edge.label));
    if (!attributes.empty()) {
      out += " [";
      for (size_t i = 0; i < attributes.size(); ++i) {
        if (i > 0) out += ", ";
        out += attributes[i];
      }
      out += "]";
    }
    out += ";\n";
  }
  out += "}\n";
  return out;
}

}  // namespace

std::string RenderGraph(const Procedure& procedure, GraphFormat format) {
  const Drawing drawing = BuildDrawing(procedure);
  return format == GraphFormat::kDot ? RenderDot(drawing) : RenderMermaid(drawing);
}

}  // namespace wf::workflows
