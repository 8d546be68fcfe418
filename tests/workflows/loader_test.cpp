#include "workflows/loader.hpp"

#include <catch2/catch.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "tests/support/temp_dir.hpp"
#include "workflows/expression.hpp"
#include "workflows/hash.hpp"
#include "workflows/yaml_tree.hpp"

namespace wf::workflows {
namespace {

// DESIGN.md's example, word for word.
constexpr const char* kDesignExample =
    R"(procedure: birth-registration-linked      # name: [a-z0-9-]+
version: 1
title: Birth registration, permanent residence and health insurance card for a child under 6
agency: commune-justice                   # the owning agency
legal_basis: [Decree 63/2024/ND-CP]
deadline: 3 working days                  # statutory limit for the whole case
dedupe: ${ .mother.citizen_id + "/" + .child.birth_date }
input:                                    # checked at `wf start`, errors name the JSON path
  required: [child, mother]
  properties:
    child: {type: object, required: [full_name, birth_date]}
    mother:
      type: object
      required: [citizen_id]
      properties:
        citizen_id: {type: string, pattern: "^[0-9]{12}$"}
roles:
  justice_officer: {agency: commune-justice}
  police_officer: {agency: district-police}
start: verify_mother                      # default: the first step
steps:
  verify_mother:                          # automated: a department system through an adapter
    adapter: population-db                # a department named in the deployment config
    call:
      operation: get_citizen
      citizen_id: ${ .mother.citizen_id }
    save_as: mother_record                # later steps read .mother_record
    reuse: 90 days                        # once-only: reuse what any case verified within 90 days
    timeout: 10s
    retry: {attempts: 5, backoff: 2s, max_backoff: 1m}
    on_error: manual_check                # permanent failure; without it: an incident
    next: review
  review:                                 # a person decides
    task: Review the birth declaration
    role: justice_officer
    form:
      approved: {type: boolean, required: true}
      note: string
    save_as: review
    deadline: 1 working day
    escalate_to: justice_head
    next:
      - if: ${ .review.approved }
        goto: register
      - goto: refused
  register:                               # fork; each branch runs until a step with no next
    parallel: [residence, health_card]
    next: done
  residence:
    adapter: police-residence
    call: {operation: register_newborn}
    save_as: residence
  health_card:
    adapter: social-insurance
    call: {operation: issue_card}
    save_as: insurance_card
  supplement:                             # waits for a signal: `wf signal CASE documents`
    wait: documents
    pauses_deadline: true                 # the statutory clock stops while the applicant owes papers
    timeout: 30 days
    on_timeout: refused
    save_as: documents
    next: review
  related:                                # another agency's procedure as a sub-case
    call_procedure: health-card-issue
    input:
      child: ${ .child }
    save_as: card_case
    next: done
  done: {end: completed}
  refused:
    end: refused
    reason: ${ .review.note }
)";

// The example with what it leaves dangling wired in: the role `justice_head`, a `manual_check`
// step for on_error, and paths into `supplement` and `related`.
std::string WiredExample() {
  std::string text = kDesignExample;
  auto replace = [&text](const std::string& from, const std::string& to) {
    size_t at = text.find(from);
    REQUIRE(at != std::string::npos);
    text.replace(at, from.size(), to);
  };
  replace("  police_officer: {agency: district-police}\n",
          "  police_officer: {agency: district-police}\n"
          "  justice_head: {agency: commune-justice}\n");
  replace("      - goto: refused\n",
          "      - if: ${ .review.missing_documents }\n"
          "        goto: supplement\n"
          "      - goto: refused\n");
  replace("    parallel: [residence, health_card]\n    next: done\n",
          "    parallel: [residence, health_card]\n    next: related\n");
  text +=
      "  manual_check:\n"
      "    task: Check the mother's identity by hand\n"
      "    role: justice_officer\n"
      "    save_as: mother_record\n"
      "    next: review\n";
  return text;
}

std::vector<std::string> Lines(const LoadResult& result) {
  std::vector<std::string> out;
  for (const Diagnostic& d : result.diagnostics) out.push_back(d.ToString());
  return out;
}

const Step& StepOf(const Procedure& procedure, const std::string& id) {
  const Step* step = procedure.FindStep(id);
  REQUIRE(step != nullptr);
  return *step;
}

TEST_CASE("DESIGN.md's example as written reports only what it leaves dangling",
          "[workflows][loader]") {
  LoadResult result = LoadProcedure(kDesignExample, "birth.yaml");
  CHECK_FALSE(result.ok());
  CHECK_FALSE(result.procedure.has_value());
  CHECK(Lines(result) == std::vector<std::string>{
                             "birth.yaml:31:15: error: unknown step 'manual_check' in `on_error` "
                             "of step 'verify_mother'",
                             "birth.yaml:41:18: error: undeclared role 'justice_head' in "
                             "`escalate_to` of step 'review'; declare it under `roles:`",
                             "birth.yaml:57:3: error: step 'supplement' is unreachable from "
                             "'verify_mother'",
                             "birth.yaml:64:3: error: step 'related' is unreachable from "
                             "'verify_mother'",
                         });
}

TEST_CASE("the wired DESIGN.md example loads into the model", "[workflows][loader]") {
  std::string text = WiredExample();
  LoadResult result = LoadProcedure(text, "birth.yaml");
  INFO(Catch::Detail::stringify(Lines(result)));
  REQUIRE(result.ok());
  const Procedure& p = *result.procedure;

  CHECK(p.file == "birth.yaml");
  CHECK(p.source == text);
  CHECK(p.content_hash == Sha256Hex(text));
  CHECK(p.content_hash.size() == 64);
  CHECK(p.name == "birth-registration-linked");
  CHECK(p.version == 1);
  CHECK(p.title ==
        "Birth registration, permanent residence and health insurance card for a child under 6");
  CHECK(p.agency == "commune-justice");
  CHECK(p.legal_basis == std::vector<std::string>{"Decree 63/2024/ND-CP"});
  REQUIRE(p.deadline.has_value());
  CHECK(*p.deadline == Duration{3, DurationUnit::kWorkingDays});
  REQUIRE(p.dedupe.has_value());
  CHECK(p.dedupe->expression.program() == R"(.mother.citizen_id + "/" + .child.birth_date)");
  CHECK(p.dedupe->where.line == 7);
  CHECK(p.dedupe->where.column == 9);
  CHECK(p.input_schema == nlohmann::json::parse(R"({
          "required": ["child", "mother"],
          "properties": {
            "child": {"type": "object", "required": ["full_name", "birth_date"]},
            "mother": {"type": "object", "required": ["citizen_id"],
                       "properties": {"citizen_id": {"type": "string",
                                                     "pattern": "^[0-9]{12}$"}}}}})"));
  REQUIRE(p.roles.size() == 3);
  CHECK(p.roles.at("justice_officer").agency == "commune-justice");
  CHECK(p.roles.at("police_officer").agency == "district-police");
  CHECK(p.roles.at("police_officer").where.line == 19);
  CHECK(p.start == "verify_mother");
  CHECK(p.keys.at("steps").line == 22);

  std::vector<std::string> ids;
  for (const Step& s : p.steps) ids.push_back(s.id);
  CHECK(ids == std::vector<std::string>{"verify_mother", "review", "register", "residence",
                                        "health_card", "supplement", "related", "done", "refused",
                                        "manual_check"});
  CHECK(p.Departments() ==
        std::vector<std::string>{"police-residence", "population-db", "social-insurance"});
  CHECK(p.FindStep("nowhere") == nullptr);

  const Step& verify = StepOf(p, "verify_mother");
  CHECK(verify.kind == StepKind::kAdapter);
  CHECK(verify.where.line == 23);
  CHECK(verify.where.column == 3);
  CHECK(verify.department == "population-db");
  CHECK(verify.call ==
        nlohmann::json{{"operation", "get_citizen"}, {"citizen_id", "${ .mother.citizen_id }"}});
  CHECK(verify.save_as == "mother_record");
  CHECK(verify.reuse == Duration{90, DurationUnit::kDays});
  CHECK(verify.timeout == Duration{10, DurationUnit::kSeconds});
  CHECK(verify.retry.attempts == 5);
  CHECK(verify.retry.backoff.ApproximateSeconds() == 2);
  CHECK(verify.retry.max_backoff.ApproximateSeconds() == 60);
  CHECK(verify.on_error == "manual_check");
  REQUIRE(verify.next.size() == 1);
  CHECK(verify.next[0].target == "review");
  CHECK_FALSE(verify.next[0].condition.has_value());
  CHECK(verify.next[0].where.line == 33);
  CHECK(verify.next[0].where.column == 11);
  CHECK(verify.keys.at("retry").line == 31);

  const Step& review = StepOf(p, "review");
  CHECK(review.kind == StepKind::kTask);
  CHECK(review.task == "Review the birth declaration");
  CHECK(review.role == "justice_officer");
  REQUIRE(review.form.size() == 2);
  CHECK(review.form[0].name == "approved");
  CHECK(review.form[0].type == "boolean");
  CHECK(review.form[0].required);
  CHECK(review.form[1].name == "note");
  CHECK(review.form[1].type == "string");
  CHECK_FALSE(review.form[1].required);
  CHECK(review.form_schema == nlohmann::json::parse(R"({
          "type": "object", "additionalProperties": false, "required": ["approved"],
          "properties": {"approved": {"type": "boolean"}, "note": {"type": "string"}}})"));
  CHECK(review.deadline == Duration{1, DurationUnit::kWorkingDays});
  CHECK(review.escalate_to == "justice_head");
  REQUIRE(review.next.size() == 3);
  REQUIRE(review.next[0].condition.has_value());
  CHECK(review.next[0].condition->expression.program() == ".review.approved");
  CHECK(review.next[0].condition->where.line == 44);
  CHECK(review.next[0].condition->where.column == 13);
  CHECK(review.next[0].target == "register");
  CHECK(review.next[1].target == "supplement");
  CHECK(review.next[2].target == "refused");
  CHECK_FALSE(review.next[2].condition.has_value());

  const Step& fork = StepOf(p, "register");
  CHECK(fork.kind == StepKind::kParallel);
  CHECK(fork.branches == std::vector<std::string>{"residence", "health_card"});
  REQUIRE(fork.branch_where.size() == 2);
  CHECK(fork.branch_where[1].column == 27);
  CHECK(StepOf(p, "residence").next.empty());
  CHECK(StepOf(p, "health_card").call == nlohmann::json{{"operation", "issue_card"}});

  const Step& supplement = StepOf(p, "supplement");
  CHECK(supplement.kind == StepKind::kWait);
  CHECK(supplement.signal == "documents");
  CHECK(supplement.pauses_deadline);
  CHECK(supplement.wait_timeout == Duration{30, DurationUnit::kDays});
  CHECK_FALSE(supplement.timeout.has_value());
  CHECK(supplement.on_timeout == "refused");

  const Step& related = StepOf(p, "related");
  CHECK(related.kind == StepKind::kCallProcedure);
  CHECK(related.procedure == "health-card-issue");
  CHECK(related.input == nlohmann::json{{"child", "${ .child }"}});
  CHECK(related.save_as == "card_case");

  CHECK(StepOf(p, "done").kind == StepKind::kEnd);
  CHECK(StepOf(p, "done").outcome == "completed");
  const Step& refused = StepOf(p, "refused");
  CHECK(refused.outcome == "refused");
  REQUIRE(refused.reason.has_value());
  CHECK(refused.reason->expression.program() == ".review.note");
}

TEST_CASE("step kinds have their language names", "[workflows][loader]") {
  CHECK(std::string(StepKindName(StepKind::kAdapter)) == "adapter");
  CHECK(std::string(StepKindName(StepKind::kCallProcedure)) == "call_procedure");
  CHECK(std::string(StepKindName(StepKind::kDecision)) == "decision");
}

TEST_CASE("plain scalars are typed and quoted ones stay strings", "[workflows][loader]") {
  DiagnosticSink sink("t.yaml");
  YamlNode root = ParseYaml(
      "a: true\nb: 'true'\nc: 3\nd: \"3\"\ne: 2.5\nf: -7\ng: ~\nh:\ni: null\n"
      "j: 123456789012345678901234\nk: 0x1F\nl: False\nm: [1, x, \"2\"]\nn: {o: 1e3}\n"
      "p: hello world\nq: |\n  12\n",
      sink);
  REQUIRE(sink.empty());
  nlohmann::json json = YamlToJson(root);
  CHECK(json["a"] == true);
  CHECK(json["b"] == "true");
  CHECK(json["c"].is_number_integer());
  CHECK(json["c"] == 3);
  CHECK(json["d"] == "3");
  CHECK(json["e"].is_number_float());
  CHECK(json["e"] == 2.5);
  CHECK(json["f"] == -7);
  CHECK(json["g"].is_null());
  CHECK(json["h"].is_null());
  CHECK(json["i"].is_null());
  CHECK(json["j"].is_number_float());
  CHECK(json["k"] == "0x1F");
  CHECK(json["l"] == false);
  CHECK(json["m"] == nlohmann::json::array({1, "x", "2"}));
  CHECK(json["n"]["o"] == 1000.0);
  CHECK(json["p"] == "hello world");
  CHECK(json["q"] == "12\n");
}

TEST_CASE("call and input templates keep their typing", "[workflows][loader]") {
  LoadResult result = LoadProcedure(R"(procedure: typing
agency: a
steps:
  lookup:
    adapter: db
    call: {operation: find, limit: 10, exact: false, ratio: 0.5, code: "007", id: "${ .id }"}
    next: sub
  sub:
    call_procedure: other
    input: {n: 1, flag: true, name: '${ .name }'}
    next: done
  done: {end: completed}
)",
                                    "t.yaml");
  INFO(Catch::Detail::stringify(Lines(result)));
  REQUIRE(result.ok());
  const Step& lookup = StepOf(*result.procedure, "lookup");
  CHECK(lookup.call["limit"].is_number_integer());
  CHECK(lookup.call["exact"] == false);
  CHECK(lookup.call["ratio"] == 0.5);
  CHECK(lookup.call["code"] == "007");
  CHECK(lookup.call["id"] == "${ .id }");
  const Step& sub = StepOf(*result.procedure, "sub");
  CHECK(sub.input == nlohmann::json{{"n", 1}, {"flag", true}, {"name", "${ .name }"}});
  // The start defaults to the first step.
  CHECK(result.procedure->start == "lookup");
}

// The column where `program`'s compile error falls when written at `column` of a line.
int ErrorColumn(const std::string& program, int program_column) {
  ExpressionError error;
  REQUIRE_FALSE(Expression::Compile(program, &error).has_value());
  return program_column + static_cast<int>(error.offset);
}

std::string Wrap(const std::string& if_line) {
  return "procedure: cols\nagency: a\nsteps:\n  pick:\n    next:\n" + if_line +
         "        goto: done\n      - goto: done\n  done: {end: completed}\n";
}

TEST_CASE("an expression error points at its column in plain and quoted scalars",
          "[workflows][loader][locations]") {
  const std::string program = ".a | ) + 1";
  SECTION("plain") {
    // `      - if: ${ .a | ) + 1 }`: the program starts at column 16.
    LoadResult result = LoadProcedure(Wrap("      - if: ${ " + program + " }\n"), "c.yaml");
    REQUIRE(result.diagnostics.size() == 1);
    CHECK(result.diagnostics[0].where.line == 6);
    CHECK(result.diagnostics[0].where.column == ErrorColumn(program, 16));
    CHECK(result.diagnostics[0].message.rfind("invalid expression: ", 0) == 0);
  }
  SECTION("double-quoted, one column further for the quote") {
    LoadResult result = LoadProcedure(Wrap("      - if: \"${ " + program + " }\"\n"), "c.yaml");
    REQUIRE(result.diagnostics.size() == 1);
    CHECK(result.diagnostics[0].where.line == 6);
    CHECK(result.diagnostics[0].where.column == ErrorColumn(program, 17));
  }
  SECTION("in a template, inside other text") {
    LoadResult result = LoadProcedure(
        "procedure: cols\nagency: a\nsteps:\n  call:\n    adapter: db\n    call:\n"
        "      note: id ${ " +
            program + " } ok\n    next: done\n  done: {end: completed}\n",
        "c.yaml");
    REQUIRE(result.diagnostics.size() == 1);
    CHECK(result.diagnostics[0].where.line == 7);
    // `      note: id ${ `: the program starts at column 19.
    CHECK(result.diagnostics[0].where.column == ErrorColumn(program, 19));
  }
  SECTION("in a block scalar, on the line it is written") {
    LoadResult result =
        LoadProcedure("procedure: cols\nagency: a\ndescription: |\n  first line\n  then ${ " +
                          program + " }\nsteps:\n  done: {end: completed}\n",
                      "c.yaml");
    REQUIRE(result.diagnostics.size() == 1);
    CHECK(result.diagnostics[0].where.line == 5);
    // `  then ${ `: the program starts at column 11.
    CHECK(result.diagnostics[0].where.column == ErrorColumn(program, 11));
  }
}

TEST_CASE("an unknown step key is reported at the key with a suggestion",
          "[workflows][loader][locations]") {
  LoadResult result = LoadProcedure(R"(procedure: p
agency: a
steps:
  review:
    task: Look
    role: clerk
    dealine: 2 days
    next: done
  done: {end: completed}
roles:
  clerk: {}
)",
                                    "p.yaml");
  CHECK(Lines(result) ==
        std::vector<std::string>{
            "p.yaml:7:5: error: unknown key 'dealine' in step 'review'; did you mean 'deadline'?"});
  CHECK_FALSE(result.procedure.has_value());
}

TEST_CASE("a role without an agency belongs to the procedure's agency", "[workflows][loader]") {
  LoadResult result = LoadProcedure(R"(procedure: p
agency: commune-justice
roles:
  clerk:
  head: {description: The head of the office}
steps:
  review: {task: Look, role: clerk, escalate_to: head, next: done}
  done: {end: completed}
)",
                                    "p.yaml");
  INFO(Catch::Detail::stringify(Lines(result)));
  REQUIRE(result.ok());
  CHECK(result.procedure->roles.at("clerk").agency == "commune-justice");
  CHECK(result.procedure->roles.at("head").description == "The head of the office");
}

TEST_CASE("a long backoff without max_backoff becomes its own cap", "[workflows][loader]") {
  LoadResult result = LoadProcedure(R"(procedure: p
agency: a
steps:
  call: {adapter: db, retry: {attempts: 2, backoff: 5m}, next: done}
  done: {end: completed}
)",
                                    "p.yaml");
  INFO(Catch::Detail::stringify(Lines(result)));
  REQUIRE(result.ok());
  const Step& call = StepOf(*result.procedure, "call");
  CHECK(call.retry.attempts == 2);
  CHECK(call.retry.max_backoff.ApproximateSeconds() == 300);
}

TEST_CASE("a form builds its fields and schema", "[workflows][loader]") {
  LoadResult result = LoadProcedure(R"(procedure: p
agency: a
roles: {clerk: {}}
steps:
  review:
    task: Look
    role: clerk
    form:
      born: {type: date, required: true, label: Date of birth}
      kind: {type: string, enum: [boy, girl], pattern: "^[a-z]+$"}
      count: integer
    next: done
  done: {end: completed}
)",
                                    "p.yaml");
  INFO(Catch::Detail::stringify(Lines(result)));
  REQUIRE(result.ok());
  const Step& review = StepOf(*result.procedure, "review");
  REQUIRE(review.form.size() == 3);
  CHECK(review.form[0].type == "date");
  CHECK(review.form[0].label == "Date of birth");
  CHECK(review.form[0].where.line == 9);
  CHECK(review.form[1].choices == std::vector<std::string>{"boy", "girl"});
  CHECK(review.form[1].pattern == "^[a-z]+$");
  CHECK(review.form_schema == nlohmann::json::parse(R"({
      "type": "object", "additionalProperties": false, "required": ["born"],
      "properties": {
        "born": {"type": "string", "format": "date", "title": "Date of birth"},
        "kind": {"type": "string", "enum": ["boy", "girl"], "pattern": "^[a-z]+$"},
        "count": {"type": "integer"}}})"));
}

TEST_CASE("every diagnostic is reported at once, sorted", "[workflows][loader]") {
  LoadResult result = LoadProcedure(R"(procedure: Bad_Name
version: 0
agency: a
steps:
  one: {adapter: db, timeout: 0s, next: two}
  two: {end: done, colour: red}
)",
                                    "m.yaml");
  CHECK(Lines(result) ==
        std::vector<std::string>{
            "m.yaml:1:12: error: invalid procedure name 'Bad_Name'; use lowercase letters, "
            "digits and '-'",
            "m.yaml:2:10: error: version must be a positive integer, not '0'",
            "m.yaml:5:31: error: timeout must be longer than 0",
            "m.yaml:6:20: error: unknown key 'colour' in step 'two'",
        });
}

TEST_CASE("a missing file is one diagnostic at 1:1 naming the path", "[workflows][loader]") {
  LoadResult result = LoadProcedureFile("/nonexistent/wf/none.yaml");
  REQUIRE(result.diagnostics.size() == 1);
  CHECK(result.diagnostics[0].file == "/nonexistent/wf/none.yaml");
  CHECK(result.diagnostics[0].where.line == 1);
  CHECK(result.diagnostics[0].where.column == 1);
  CHECK(result.diagnostics[0].message == "cannot read file: No such file or directory");
}

TEST_CASE("a file over 256 KiB is refused and a small one loads", "[workflows][loader]") {
  wf::testing::TempDir temp("wf_loader_");
  const std::filesystem::path& dir = temp.path();
  std::string small = "procedure: p\nagency: a\nsteps:\n  done: {end: completed}\n";
  {
    std::ofstream(dir / "small.yaml") << small;
    std::ofstream big(dir / "big.yaml");
    big << small << "description: |\n";
    for (int i = 0; i < 10000; ++i) big << "  " << std::string(30, 'x') << "\n";
  }
  LoadResult big = LoadProcedureFile((dir / "big.yaml").string());
  REQUIRE(big.diagnostics.size() == 1);
  CHECK(big.diagnostics[0].message.find("262144-byte limit") != std::string::npos);
  LoadResult loaded = LoadProcedureFile((dir / "small.yaml").string());
  INFO(Catch::Detail::stringify(Lines(loaded)));
  REQUIRE(loaded.ok());
  CHECK(loaded.procedure->file == (dir / "small.yaml").string());
  CHECK(loaded.procedure->source == small);
}

}  // namespace
}  // namespace wf::workflows
