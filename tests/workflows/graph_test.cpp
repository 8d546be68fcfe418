// RenderGraph: shapes, edges and escaping on small hand-built procedures, and golden drawings of
// every example. The goldens live in tests/workflows/graphs/NAME.mmd and NAME.dot; run the
// tests with WF_GOLDEN_UPDATE=1 to rewrite them from what RenderGraph draws now (then read the
// diff before committing it), e.g.
//   WF_GOLDEN_UPDATE=1 build/tests/wf_workflows_tests "[graph]"

#include "workflows/graph.hpp"

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "workflows/expression.hpp"
#include "workflows/loader.hpp"
#include "workflows/procedure.hpp"

namespace wf::workflows {
namespace {

namespace fs = std::filesystem;

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

size_t Count(const std::string& haystack, const std::string& needle) {
  size_t n = 0;
  for (size_t at = haystack.find(needle); at != std::string::npos;
       at = haystack.find(needle, at + needle.size())) {
    ++n;
  }
  return n;
}

Step MakeStep(std::string id, StepKind kind) {
  Step step;
  step.id = std::move(id);
  step.kind = kind;
  return step;
}

Transition Goto(std::string target) {
  Transition t;
  t.target = std::move(target);
  return t;
}

Transition When(const std::string& program, std::string target) {
  ExpressionError error;
  std::optional<Expression> compiled = Expression::Compile(program, &error);
  INFO(program << ": " << error.message);
  REQUIRE(compiled.has_value());
  Transition t;
  t.condition = LocatedExpression{*compiled, {}};
  t.target = std::move(target);
  return t;
}

// review (task) -> route (decision) -> register (fork: police, card) -> join -> done
//                                   -> refused
// police has on_error to police_manual; card is a sub-procedure; a wait with a timeout.
Procedure SmallProcedure() {
  Procedure p;
  p.name = "small";
  p.version = 2;
  p.title = "A \"small\" one";
  p.start = "review";

  Step review = MakeStep("review", StepKind::kTask);
  review.task = "Review the file";
  review.role = "clerk";
  review.deadline = Duration{1, DurationUnit::kWorkingDays};
  review.escalate_to = "head";
  review.next = {Goto("route")};

  Step route = MakeStep("route", StepKind::kDecision);
  route.next = {When(".review.approved and .age > 5", "register"),
                When(".review.note == \"wait\"", "papers"), Goto("refused")};

  Step papers = MakeStep("papers", StepKind::kWait);
  papers.signal = "documents";
  papers.pauses_deadline = true;
  papers.wait_timeout = Duration{30, DurationUnit::kDays};
  papers.on_timeout = "refused";
  papers.next = {Goto("review")};

  Step fork = MakeStep("register", StepKind::kParallel);
  fork.branches = {"police", "card"};
  fork.next = {Goto("done")};

  Step police = MakeStep("police", StepKind::kAdapter);
  police.department = "police-residence";
  police.call = {{"operation", "register_newborn"}};
  police.reuse = Duration{90, DurationUnit::kDays};
  police.on_error = "police_manual";

  Step police_manual = MakeStep("police_manual", StepKind::kTask);
  police_manual.task = "Register by hand";
  police_manual.role = "officer";

  Step card = MakeStep("card", StepKind::kCallProcedure);
  card.procedure = "health-card-issue";

  Step done = MakeStep("done", StepKind::kEnd);
  done.outcome = "completed";
  Step refused = MakeStep("refused", StepKind::kEnd);
  refused.outcome = "refused";

  p.steps = {review, route, papers, fork, police, police_manual, card, done, refused};
  return p;
}

TEST_CASE("mermaid draws each kind of step with its own shape", "[workflows][graph]") {
  const std::string out = RenderGraph(SmallProcedure(), GraphFormat::kMermaid);
  CHECK(out.rfind("flowchart TD\n", 0) == 0);
  CHECK(Contains(out, "  start((\"start\"))\n"));
  CHECK(Contains(out,
                 "  s_review([\"review<br/>Review the file<br/>role: clerk<br/>"
                 "deadline: 1 working day\"])\n"));
  CHECK(Contains(out, "  s_route{\"route\"}\n"));
  CHECK(Contains(out, "  s_papers{{\"papers<br/>wait: documents<br/>pauses the deadline\"}}\n"));
  CHECK(Contains(out, "  s_register[/\"register<br/>parallel\"\\]\n"));
  CHECK(Contains(out, "  j_register[\\\"join register\"/]\n"));
  CHECK(Contains(out,
                 "  s_police[\"police<br/>police-residence: register_newborn<br/>"
                 "reuses 90 days\"]\n"));
  CHECK(Contains(out, "  s_card[[\"card<br/>call: health-card-issue\"]]\n"));
  CHECK(Contains(out, "  s_done(((\"done<br/>completed\")))\n"));
  // An end named after its outcome says it once.
  CHECK(Contains(out, "  s_refused(((\"refused\")))\n"));
  CHECK(Contains(out, "  e_review>\"escalate to head\"]\n"));
}

TEST_CASE("decisions put the escaped condition on each edge and otherwise on the last",
          "[workflows][graph]") {
  const std::string out = RenderGraph(SmallProcedure(), GraphFormat::kMermaid);
  CHECK(Contains(out, "  s_route -->|\".review.approved and .age #gt; 5\"| s_register\n"));
  CHECK(Contains(out, "  s_route -->|\".review.note == #quot;wait#quot;\"| s_papers\n"));
  CHECK(Contains(out, "  s_route -->|\"otherwise\"| s_refused\n"));
  // A plain `next: step` has no label.
  CHECK(Contains(out, "  s_review --> s_route\n"));
  CHECK(Contains(out, "  start --> s_review\n"));
}

TEST_CASE("a parallel step forks to its branches and joins before its next", "[workflows][graph]") {
  const std::string mermaid = RenderGraph(SmallProcedure(), GraphFormat::kMermaid);
  CHECK(Contains(mermaid, "  s_register --> s_police\n"));
  CHECK(Contains(mermaid, "  s_register --> s_card\n"));
  // Each branch ends where a step has no next, including the on_error path's end.
  CHECK(Contains(mermaid, "  s_police --> j_register\n"));
  CHECK(Contains(mermaid, "  s_police_manual --> j_register\n"));
  CHECK(Contains(mermaid, "  s_card --> j_register\n"));
  CHECK(Contains(mermaid, "  j_register --> s_done\n"));
  // The fork itself does not go straight to its next.
  CHECK_FALSE(Contains(mermaid, "s_register --> s_done"));

  const std::string dot = RenderGraph(SmallProcedure(), GraphFormat::kDot);
  CHECK(Contains(dot, "  \"step:register\" -> \"step:police\";\n"));
  CHECK(Contains(dot, "  \"step:card\" -> \"join:register\";\n"));
  CHECK(Contains(dot, "  \"join:register\" -> \"step:done\";\n"));
  CHECK(Contains(dot, "  \"join:register\" [shape=invtrapezium"));
}

TEST_CASE("on_error, on_timeout and escalation edges are dashed and labelled",
          "[workflows][graph]") {
  const std::string mermaid = RenderGraph(SmallProcedure(), GraphFormat::kMermaid);
  CHECK(Contains(mermaid, "  s_police -.->|\"on_error\"| s_police_manual\n"));
  CHECK(Contains(mermaid, "  s_papers -.->|\"on_timeout after 30 days\"| s_refused\n"));
  CHECK(Contains(mermaid, "  s_review -.->|\"escalation after 1 working day\"| e_review\n"));
  CHECK(Count(mermaid, "-.->") == 3);

  const std::string dot = RenderGraph(SmallProcedure(), GraphFormat::kDot);
  CHECK(Contains(dot,
                 "  \"step:police\" -> \"step:police_manual\" [style=dashed, "
                 "label=\"on_error\"];\n"));
  CHECK(Contains(dot,
                 "  \"step:papers\" -> \"step:refused\" [style=dashed, "
                 "label=\"on_timeout after 30 days\"];\n"));
  CHECK(Contains(dot,
                 "  \"step:review\" -> \"escalation:review\" [style=dashed, "
                 "label=\"escalation after 1 working day\"];\n"));
  CHECK(Count(dot, " [style=dashed") == 3);
}

TEST_CASE("dot shapes tell people from department systems", "[workflows][graph]") {
  const std::string dot = RenderGraph(SmallProcedure(), GraphFormat::kDot);
  CHECK(dot.rfind("digraph \"small\" {\n", 0) == 0);
  CHECK(Contains(dot, "graph [label=\"small v2: A \\\"small\\\" one\""));
  CHECK(Contains(dot, "  \"step:review\" [shape=box, style=\"rounded,filled\""));
  CHECK(Contains(dot,
                 "  \"step:police\" [shape=box, label=\"police\\npolice-residence: "
                 "register_newborn\\nreuses 90 days\"];\n"));
  CHECK(Contains(dot, "  \"step:route\" [shape=diamond, label=\"route\"];\n"));
  CHECK(Contains(dot, "  \"step:papers\" [shape=hexagon"));
  CHECK(Contains(dot, "  \"step:card\" [shape=box, peripheries=2"));
  CHECK(Contains(dot, "  \"step:done\" [shape=doublecircle, label=\"done\\ncompleted\"];\n"));
  CHECK(Contains(dot, "  \"escalation:review\" [shape=note"));
  CHECK(dot.substr(dot.size() - 2) == "}\n");
}

TEST_CASE("quotes, backslashes and markup in conditions are escaped for each format",
          "[workflows][graph]") {
  Procedure p;
  p.name = "esc";
  Step decide = MakeStep("decide", StepKind::kDecision);
  // A jq program with a string escape, a pipe, an alternative, markup and a hash, over lines.
  decide.next = {When(".a == \"x\\\"y\" and (.b | test(\"<b>|#\"))\n  or .c // false", "yes"),
                 Goto("no")};
  Step yes = MakeStep("yes", StepKind::kEnd);
  yes.outcome = "ok & done";
  Step no = MakeStep("no", StepKind::kEnd);
  no.outcome = "no";
  p.steps = {decide, yes, no};

  const std::string dot = RenderGraph(p, GraphFormat::kDot);
  CHECK(Contains(dot,
                 "  \"step:decide\" -> \"step:yes\" [label=\".a == \\\"x\\\\\\\"y\\\" and "
                 "(.b | test(\\\"<b>|#\\\")) or .c // false\"];\n"));
  CHECK(Contains(dot, "label=\"yes\\nok & done\""));

  const std::string mermaid = RenderGraph(p, GraphFormat::kMermaid);
  CHECK(Contains(mermaid,
                 "  s_decide -->|\".a == #quot;x\\#quot;y#quot; and (.b #124; "
                 "test(#quot;#lt;b#gt;#124;#35;#quot;)) or .c // false\"| s_yes\n"));
  CHECK(Contains(mermaid, "  s_yes(((\"yes<br/>ok #amp; done\")))\n"));
  // Nothing that would end a label or an edge text is left bare inside one.
  for (std::istringstream lines(mermaid); !lines.eof();) {
    std::string line;
    std::getline(lines, line);
    const size_t open = line.find("|\"");
    if (open == std::string::npos) continue;
    const size_t close = line.find("\"|", open + 2);
    REQUIRE(close != std::string::npos);
    const std::string text = line.substr(open + 2, close - open - 2);
    CHECK(text.find_first_of("\"|<>\n") == std::string::npos);
  }
}

TEST_CASE("step ids that are not mermaid words get distinct safe ids", "[workflows][graph]") {
  Procedure p;
  p.name = "ids";
  Step a = MakeStep("check-file", StepKind::kDecision);
  a.next = {When(".x", "check_file"), Goto("end")};
  Step b = MakeStep("check_file", StepKind::kEnd);
  b.outcome = "completed";
  Step c = MakeStep("end", StepKind::kEnd);
  c.outcome = "end";
  p.steps = {a, b, c};
  const std::string out = RenderGraph(p, GraphFormat::kMermaid);
  CHECK(Contains(out, "  s_check_file{\"check-file\"}\n"));
  CHECK(Contains(out, "  s_check_file_2(((\"check_file<br/>completed\")))\n"));
  CHECK(Contains(out, "  s_check_file -->|\".x\"| s_check_file_2\n"));
  // `end` is a mermaid keyword; the prefix keeps the id away from it.
  CHECK(Contains(out, "  s_end(((\"end\")))\n"));
  CHECK(Contains(out, "  start --> s_check_file\n"));
}

TEST_CASE("the same procedure always draws the same text", "[workflows][graph]") {
  const Procedure p = SmallProcedure();
  CHECK(RenderGraph(p, GraphFormat::kMermaid) ==
        RenderGraph(SmallProcedure(), GraphFormat::kMermaid));
  CHECK(RenderGraph(p, GraphFormat::kDot) == RenderGraph(SmallProcedure(), GraphFormat::kDot));
  CHECK(RenderGraph(p, GraphFormat::kDot) != RenderGraph(p, GraphFormat::kMermaid));
}

// ---- goldens ---------------------------------------------------------------------------------

std::string ReadAll(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

TEST_CASE("every example draws exactly its golden mermaid and dot", "[workflows][graph]") {
  const fs::path examples = fs::path(WF_SOURCE_DIR) / "examples" / "procedures";
  const fs::path goldens = fs::path(WF_SOURCE_DIR) / "tests" / "workflows" / "graphs";
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(examples)) {
    if (entry.path().extension() == ".yaml") files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  REQUIRE(files.size() >= 4);
  const bool update = std::getenv("WF_GOLDEN_UPDATE") != nullptr;
  if (update) fs::create_directories(goldens);

  for (const fs::path& file : files) {
    DYNAMIC_SECTION(file.filename().string()) {
      LoadResult result = LoadProcedureFile(file.string());
      REQUIRE(result.procedure.has_value());
      const std::string name = file.stem().string();
      for (const auto& [format, extension] :
           {std::pair{GraphFormat::kMermaid, ".mmd"}, std::pair{GraphFormat::kDot, ".dot"}}) {
        const std::string drawn = RenderGraph(*result.procedure, format);
        const fs::path golden = goldens / (name + extension);
        if (update) {
          std::ofstream out(golden, std::ios::binary | std::ios::trunc);
          out << drawn;
        }
        INFO(golden.string() << " (WF_GOLDEN_UPDATE=1 rewrites it)");
        REQUIRE(fs::exists(golden));
        CHECK(ReadAll(golden) == drawn);
      }
    }
  }
}

}  // namespace
}  // namespace wf::workflows
