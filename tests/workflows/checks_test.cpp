#include "workflows/checks.hpp"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "workflows/loader.hpp"

namespace wf::workflows {
namespace {

std::vector<std::string> Problems(const std::string& steps,
                                  const DeploymentNames* deployment = nullptr) {
  std::string text = "procedure: p\nagency: commune-justice\nroles:\n  clerk: {}\nsteps:\n" + steps;
  LoadResult result = LoadProcedure(text, "c.yaml", deployment);
  std::vector<std::string> out;
  for (const Diagnostic& d : result.diagnostics) out.push_back(d.ToString());
  CHECK(result.ok() == out.empty());
  return out;
}

using Lines = std::vector<std::string>;

TEST_CASE("a procedure whose every step leads to an end passes the checks", "[workflows][checks]") {
  CHECK(Problems(R"(  ask:
    task: Decide
    role: clerk
    next:
      - if: ${ .ok }
        goto: fork
      - goto: more
  more:
    wait: papers
    timeout: 3 days
    on_timeout: no
    next: ask
  fork:
    parallel: [left, right]
    next: yes
  left:
    adapter: a
    next: left_two
  left_two:
    adapter: b
  right:
    parallel: [inner]
    next: right_two
  inner: {adapter: c}
  right_two: {adapter: d}
  yes: {end: completed}
  no: {end: refused}
)")
            .empty());
}

TEST_CASE("unknown targets are reported at the target with a suggestion", "[workflows][checks]") {
  CHECK(Problems(R"(  first:
    adapter: a
    on_error: fai
    next: nowhere
  fail: {end: failed}
  done: {end: completed}
)") == Lines{
           // A near miss counts as its suggestion for reachability: 'fail' is not reported.
           "c.yaml:8:15: error: unknown step 'fai' in `on_error` of step 'first'; did you "
           "mean 'fail'?",
           "c.yaml:9:11: error: unknown step 'nowhere' in `next` of step 'first'",
           "c.yaml:11:3: error: step 'done' is unreachable from 'first'",
       });
}

TEST_CASE("a cycle with no way out is named step by step", "[workflows][checks]") {
  CHECK(Problems(R"(  a: {adapter: x, next: b}
  b: {adapter: x, next: c}
  c: {adapter: x, next: a}
)") == Lines{"c.yaml:6:3: error: steps a → b → c → a form a cycle with no way out"});
}

TEST_CASE("a cycle with a conditional way out is fine", "[workflows][checks]") {
  CHECK(Problems(R"(  a: {adapter: x, next: b}
  b:
    next:
      - if: ${ .again }
        goto: a
      - goto: done
  done: {end: completed}
)")
            .empty());
}

TEST_CASE("a branch that leads to the join target is refused", "[workflows][checks]") {
  CHECK(Problems(R"(  fork: {parallel: [left, right], next: done}
  left: {adapter: x, next: done}
  right: {adapter: y}
  done: {end: completed}
)") == Lines{"c.yaml:7:28: error: branch 'left' of parallel step 'fork' leads out of the branch "
             "to 'done'; a branch runs until a step with no `next`"});
}

TEST_CASE("two branches sharing a step are refused", "[workflows][checks]") {
  CHECK(Problems(R"(  fork: {parallel: [left, right], next: done}
  left: {adapter: x, next: common}
  right: {adapter: y, next: common}
  common: {adapter: z}
  done: {end: completed}
)") == Lines{
           "c.yaml:7:28: error: branch 'left' of parallel step 'fork' shares step 'common' "
           "with branch 'right'; branches must not share steps",
           "c.yaml:8:29: error: branch 'right' of parallel step 'fork' shares step 'common' "
           "with branch 'left'; branches must not share steps",
       });
}

TEST_CASE("a branch reached from outside its fork is refused", "[workflows][checks]") {
  CHECK(Problems(R"(  start: {adapter: x, next: fork}
  fork: {parallel: [left], next: left}
  left: {adapter: y}
)") == Lines{
           "c.yaml:7:21: error: step 'left' starts branch 'left' of parallel step 'fork' but "
           "is also reached from outside the branch",
           "c.yaml:8:3: error: step 'left' has no `next`; only an end step or the last step "
           "of a parallel branch stops without one",
       });
}

TEST_CASE("an end inside a branch is refused", "[workflows][checks]") {
  CHECK(Problems(R"(  fork: {parallel: [left], next: done}
  left: {adapter: x, on_error: stop}
  stop: {end: refused}
  done: {end: completed}
)") == Lines{"c.yaml:8:3: error: end step 'stop' is inside branch 'left' of parallel step "
             "'fork'; a branch stops at a step with no `next` and the case goes on after the "
             "join"});
}

TEST_CASE("a parallel step needs its join and other steps need a next", "[workflows][checks]") {
  CHECK(Problems(R"(  fork: {parallel: [left]}
  left: {adapter: x}
)") == Lines{"c.yaml:6:3: error: parallel step 'fork' needs a `next`: the step where its "
             "branches join"});
  CHECK(Problems(R"(  ask: {task: Look, role: clerk}
)") == Lines{"c.yaml:6:3: error: step 'ask' has no `next`; only an end step or the last step "
             "of a parallel branch stops without one"});
}

TEST_CASE("roles used by tasks must be declared", "[workflows][checks]") {
  CHECK(Problems(R"(  ask: {task: Look, role: clerc, escalate_to: boss, next: done}
  done: {end: completed}
)") == Lines{
           "c.yaml:6:27: error: undeclared role 'clerc' in `role` of step 'ask'; did you "
           "mean 'clerk'?",
           "c.yaml:6:47: error: undeclared role 'boss' in `escalate_to` of step 'ask'; "
           "declare it under `roles:`",
       });
}

TEST_CASE("names are checked against the deployment when it names them",
          "[workflows][checks][deployment]") {
  DeploymentNames deployment;
  deployment.departments = {"population-db", "police-residence"};
  deployment.agencies = {"commune-justice", "district-police"};
  deployment.roles = {"justice_officer"};
  deployment.procedures = {"health-card-issue"};
  const std::string steps = R"(  look: {adapter: population-db, next: other}
  other: {adapter: tax-office, next: third}
  third: {adapter: populaton-db, next: sub}
  sub: {call_procedure: nothing-here, next: done}
  done: {end: completed}
)";
  CHECK(Problems(steps, &deployment) ==
        Lines{
            "c.yaml:4:3: error: role 'clerk' is held by no member of any agency in the "
            "deployment config",
            "c.yaml:7:20: error: unknown department 'tax-office'; the deployment config names: "
            "police-residence, population-db",
            "c.yaml:8:20: error: unknown department 'populaton-db'; did you mean "
            "'population-db'?",
            "c.yaml:9:25: error: unknown procedure 'nothing-here'; known procedures: "
            "health-card-issue",
        });
  // Empty lists check nothing.
  DeploymentNames nothing;
  CHECK(Problems(steps, &nothing).empty());
}

TEST_CASE("the built-in noop department is known whether or not the config names departments",
          "[workflows][checks]") {
  const std::string steps = "  only: {adapter: noop, next: done}\n  done: {end: completed}\n";
  DeploymentNames named;
  named.departments = {"population-db"};
  CHECK(Problems(steps, &named).empty());
  DeploymentNames none;
  CHECK(Problems(steps, &none).empty());
  CHECK(Problems(steps).empty());
}

TEST_CASE("a role's agency must exist in the deployment", "[workflows][checks][deployment]") {
  DeploymentNames deployment;
  deployment.agencies = {"commune-justice"};
  LoadResult result = LoadProcedure(R"(procedure: p
agency: commune-justice
roles:
  officer: {agency: district-polise}
steps:
  done: {end: completed}
)",
                                    "r.yaml", &deployment);
  REQUIRE(result.diagnostics.size() == 1);
  CHECK(result.diagnostics[0].ToString() ==
        "r.yaml:4:21: error: unknown agency 'district-polise'; the deployment config names: "
        "commune-justice");
}

TEST_CASE("CheckProcedure works on a model built by hand", "[workflows][checks]") {
  Procedure procedure;
  procedure.name = "hand";
  procedure.start = "a";
  Step a;
  a.id = "a";
  a.kind = StepKind::kAdapter;
  a.where = {3, 3};
  a.keys["next"] = {4, 5};
  a.next.push_back(Transition{std::nullopt, "a", {4, 11}});
  Step b;
  b.id = "b";
  b.kind = StepKind::kEnd;
  b.where = {5, 3};
  procedure.steps = {a, b};
  DiagnosticSink sink("hand.yaml");
  CheckProcedure(procedure, sink, nullptr);
  std::vector<std::string> lines;
  for (const Diagnostic& d : sink.Sorted()) lines.push_back(d.ToString());
  CHECK(lines == Lines{
                     "hand.yaml:3:3: error: steps a → a form a cycle with no way out",
                     "hand.yaml:5:3: error: step 'b' is unreachable from 'a'",
                 });
}

}  // namespace
}  // namespace wf::workflows
