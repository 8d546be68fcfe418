// The examples are data: every procedure under examples/procedures loads cleanly against the
// names of examples/config.yaml, every case under examples/cases validates against its
// procedure's input schema, and every example draws. A case file is named after its procedure,
// optionally with a variant: `NAME.json` or `NAME.VARIANT.json`. The last tests run the
// examples' own jq (fees, revenue test, dedupe keys) over their sample data.

#include <algorithm>
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "workflows/expression.hpp"
#include "workflows/graph.hpp"
#include "workflows/loader.hpp"
#include "workflows/schema.hpp"
#include "workflows/yaml_tree.hpp"

namespace wf::workflows {
namespace {

namespace fs = std::filesystem;

fs::path ExamplesDir() { return fs::path(WF_SOURCE_DIR) / "examples"; }

std::string ReadAll(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// Files directly in `dir` ending in `extension`, sorted so failures read the same every run.
std::vector<fs::path> FilesIn(const fs::path& dir, const std::string& extension) {
  std::vector<fs::path> out;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.is_regular_file() && entry.path().extension() == extension) {
      out.push_back(entry.path());
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<fs::path> ProcedureFiles() { return FilesIn(ExamplesDir() / "procedures", ".yaml"); }
std::vector<fs::path> CaseFiles() { return FilesIn(ExamplesDir() / "cases", ".json"); }

// `birth-registration-linked.twin.json` belongs to `birth-registration-linked`.
std::string ProcedureOfCase(const fs::path& path) {
  const std::string name = path.filename().string();
  return name.substr(0, name.find('.'));
}

std::vector<std::string> Keys(const YamlNode* mapping) {
  std::vector<std::string> keys;
  if (mapping == nullptr || !mapping->IsMapping()) return keys;
  for (const auto& [key, value] : mapping->entries) keys.push_back(key.scalar);
  return keys;
}

// The names examples/config.yaml defines, read through the guarded parser: departments and
// agencies are the keys of their sections, roles are whatever some agency member holds, and
// the known procedures are the examples themselves (call_procedure targets).
DeploymentNames ExampleDeployment() {
  const fs::path path = ExamplesDir() / "config.yaml";
  DiagnosticSink sink(path.string());
  const YamlNode root = ParseYaml(ReadAll(path), sink);
  for (const Diagnostic& d : sink.Sorted()) FAIL(d.ToString());

  DeploymentNames names;
  names.departments = Keys(root.Find("departments"));
  names.agencies = Keys(root.Find("agencies"));
  std::set<std::string> roles;
  if (const YamlNode* agencies = root.Find("agencies"); agencies && agencies->IsMapping()) {
    for (const auto& [agency, settings] : agencies->entries) {
      const YamlNode* members = settings.Find("members");
      if (members == nullptr || !members->IsMapping()) continue;
      for (const auto& [member, held] : members->entries) {
        for (const YamlNode& role : held.items) roles.insert(role.scalar);
      }
    }
  }
  names.roles.assign(roles.begin(), roles.end());
  for (const fs::path& file : ProcedureFiles()) names.procedures.push_back(file.stem().string());
  return names;
}

std::string Joined(const std::vector<Diagnostic>& diagnostics) {
  std::string out;
  for (const Diagnostic& d : diagnostics) out += d.ToString() + "\n";
  return out;
}

// Every example, loaded against the example config. Fails the calling test if one does not.
std::map<std::string, Procedure> LoadExamples() {
  const DeploymentNames deployment = ExampleDeployment();
  std::map<std::string, Procedure> out;
  for (const fs::path& file : ProcedureFiles()) {
    LoadResult result = LoadProcedureFile(file.string(), &deployment);
    INFO(file.string());
    INFO(Joined(result.diagnostics));
    REQUIRE(result.ok());
    out.emplace(result.procedure->name, std::move(*result.procedure));
  }
  return out;
}

const Step& StepOf(const Procedure& procedure, const std::string& id) {
  const Step* step = procedure.FindStep(id);
  INFO(procedure.name << " has no step " << id);
  REQUIRE(step != nullptr);
  return *step;
}

nlohmann::json CaseData(const std::string& file_name) {
  return nlohmann::json::parse(ReadAll(ExamplesDir() / "cases" / file_name));
}

TEST_CASE("the examples hold at least the four linked procedures of the brief",
          "[workflows][examples]") {
  std::set<std::string> stems;
  for (const fs::path& file : ProcedureFiles()) stems.insert(file.stem().string());
  CHECK(stems.count("birth-registration-linked") == 1);
  CHECK(stems.count("death-registration-linked") == 1);
  CHECK(stems.count("technology-transfer-registration") == 1);
  CHECK(stems.count("st-enterprise-certification") == 1);
}

TEST_CASE("the example config parses and names departments, agencies and roles",
          "[workflows][examples]") {
  const DeploymentNames names = ExampleDeployment();
  CHECK(names.departments.size() >= 5);
  CHECK(names.agencies.size() >= 4);
  CHECK(std::find(names.roles.begin(), names.roles.end(), "justice_officer") != names.roles.end());
  CHECK(std::find(names.agencies.begin(), names.agencies.end(), "commune-justice") !=
        names.agencies.end());
}

TEST_CASE("every example procedure loads with no diagnostics against the example config",
          "[workflows][examples]") {
  const DeploymentNames deployment = ExampleDeployment();
  const std::vector<fs::path> files = ProcedureFiles();
  REQUIRE(files.size() >= 4);
  for (const fs::path& file : files) {
    DYNAMIC_SECTION(file.filename().string()) {
      LoadResult result = LoadProcedureFile(file.string(), &deployment);
      INFO(Joined(result.diagnostics));
      CHECK(result.diagnostics.empty());
      REQUIRE(result.procedure.has_value());
      // The file is named after the procedure, so `wf graph NAME` and the case files find it.
      CHECK(result.procedure->name == file.stem().string());
      CHECK_FALSE(result.procedure->legal_basis.empty());
      CHECK(result.procedure->deadline.has_value());
      CHECK_FALSE(result.procedure->input_schema.is_null());
    }
  }
}

TEST_CASE("every department and agency of the example config is used by some example",
          "[workflows][examples]") {
  const std::map<std::string, Procedure> procedures = LoadExamples();
  const DeploymentNames names = ExampleDeployment();
  std::set<std::string> departments;
  std::set<std::string> agencies;
  for (const auto& [name, procedure] : procedures) {
    for (const std::string& d : procedure.Departments()) departments.insert(d);
    agencies.insert(procedure.agency);
    for (const auto& [role_name, role] : procedure.roles) agencies.insert(role.agency);
  }
  for (const std::string& d : names.departments) {
    INFO("department " << d);
    CHECK(departments.count(d) == 1);
  }
  for (const std::string& a : names.agencies) {
    INFO("agency " << a);
    CHECK(agencies.count(a) == 1);
  }
}

TEST_CASE("every example case validates against its procedure's input schema",
          "[workflows][examples]") {
  const std::map<std::string, Procedure> procedures = LoadExamples();
  const std::vector<fs::path> cases = CaseFiles();
  REQUIRE(cases.size() >= procedures.size());
  std::set<std::string> covered;
  for (const fs::path& file : cases) {
    DYNAMIC_SECTION(file.filename().string()) {
      auto procedure = procedures.find(ProcedureOfCase(file));
      REQUIRE(procedure != procedures.end());
      nlohmann::json data = nlohmann::json::parse(ReadAll(file), nullptr, false);
      REQUIRE_FALSE(data.is_discarded());
      std::vector<SchemaViolation> violations = ValidateData(procedure->second.input_schema, data);
      for (const SchemaViolation& v : violations) FAIL_CHECK(v.path << ": " << v.message);
      CHECK(violations.empty());
    }
    covered.insert(ProcedureOfCase(file));
  }
  // Every procedure has a sample case to start.
  for (const auto& [name, procedure] : procedures) {
    INFO(name << " has no case file in examples/cases");
    CHECK(covered.count(name) == 1);
  }
}

TEST_CASE("a broken example case is refused with the JSON path of the mistake",
          "[workflows][examples]") {
  const std::map<std::string, Procedure> procedures = LoadExamples();
  nlohmann::json data = CaseData("birth-registration-linked.json");
  data["mother"]["citizen_id"] = "12345";
  data["child"].erase("birth_date");
  std::vector<SchemaViolation> violations =
      ValidateData(procedures.at("birth-registration-linked").input_schema, data);
  std::set<std::string> paths;
  for (const SchemaViolation& v : violations) paths.insert(v.path);
  CHECK(paths.count("$.mother.citizen_id") == 1);
  CHECK(paths.count("$.child.birth_date") + paths.count("$.child") >= 1);
}

TEST_CASE("every example renders in both graph formats", "[workflows][examples][graph]") {
  const std::map<std::string, Procedure> procedures = LoadExamples();
  for (const auto& [name, procedure] : procedures) {
    DYNAMIC_SECTION(name) {
      const std::string mermaid = RenderGraph(procedure, GraphFormat::kMermaid);
      const std::string dot = RenderGraph(procedure, GraphFormat::kDot);
      CHECK(mermaid.rfind("flowchart TD\n", 0) == 0);
      CHECK(dot.rfind("digraph \"" + name + "\" {\n", 0) == 0);
      CHECK(dot.substr(dot.size() - 2) == "}\n");
      for (const Step& step : procedure.steps) {
        INFO(step.id);
        CHECK(mermaid.find("s_" + step.id) != std::string::npos);
        CHECK(dot.find("\"step:" + step.id + "\"") != std::string::npos);
      }
    }
  }
}

// ---- the examples' own expressions over their sample data -----------------------------------

TEST_CASE("the technology transfer fee is 0.1% of the value, between 3 and 5 million VND",
          "[workflows][examples]") {
  const std::map<std::string, Procedure> procedures = LoadExamples();
  const Step& fee_step = StepOf(procedures.at("technology-transfer-registration"), "request_fee");
  nlohmann::json data = CaseData("technology-transfer-registration.json");
  const std::vector<std::pair<long long, long long>> value_to_fee = {
      {0, 3000000},          {2400000000, 3000000}, {3000000000, 3000000},  {4200000000, 4200000},
      {4200500000, 4200500}, {5000000000, 5000000}, {75000000000, 5000000},
  };
  for (const auto& [value, fee] : value_to_fee) {
    INFO("contract value " << value);
    data["contract"]["value_vnd"] = value;
    Result<nlohmann::json> call = RenderTemplate(fee_step.call, data);
    REQUIRE(call.has_value());
    CHECK(call->at("amount_vnd").get<double>() == static_cast<double>(fee));
  }
}

TEST_CASE("the S&T revenue test exempts firms under 5 years and needs 30% otherwise",
          "[workflows][examples]") {
  const std::map<std::string, Procedure> procedures = LoadExamples();
  const Step& conditions = StepOf(procedures.at("st-enterprise-certification"), "conditions");
  // The third condition of the decision is the revenue test: true means "refuse".
  REQUIRE(conditions.next.size() == 5);
  REQUIRE(conditions.next[2].condition.has_value());
  const Expression& refuse = conditions.next[2].condition->expression;

  nlohmann::json data = CaseData("st-enterprise-certification.json");  // filed 2026-03-09
  data["st_revenue"]["st_products_vnd"] = 18600000000LL;
  struct Example {
    const char* founded_on;
    long long total_revenue;
    bool refused;
  };
  const std::vector<Example> examples = {
      {"2015-06-01", 40000000000LL, false},  // 46.5%: passes
      {"2015-06-01", 62000000000LL, false},  // exactly 30%
      {"2015-06-01", 90000000000LL, true},   // 20.7%: refused
      {"2015-06-01", 0, true},               // no revenue on record and not young
      {"2021-03-09", 90000000000LL, true},   // exactly 5 years old: no longer exempt
      {"2021-03-10", 90000000000LL, false},  // one day under 5 years: exempt
  };
  for (const Example& e : examples) {
    INFO(e.founded_on << " total " << e.total_revenue);
    data["registry"] = {{"status", "active"}, {"founded_on", e.founded_on}};
    data["tax_revenue"] = {{"total_revenue_vnd", e.total_revenue}};
    Result<bool> result = refuse.EvaluateCondition(data);
    REQUIRE(result.has_value());
    CHECK(*result == e.refused);
  }
}

TEST_CASE("twins of one mother get distinct birth dedupe keys", "[workflows][examples]") {
  const std::map<std::string, Procedure> procedures = LoadExamples();
  const Procedure& birth = procedures.at("birth-registration-linked");
  REQUIRE(birth.dedupe.has_value());
  nlohmann::json first = CaseData("birth-registration-linked.json");
  Result<nlohmann::json> key = birth.dedupe->expression.Evaluate(first);
  REQUIRE(key.has_value());
  CHECK(*key == "072195001234/2026-03-02/1");

  nlohmann::json twin = first;
  twin["child"]["birth_order"] = 2;
  Result<nlohmann::json> twin_key = birth.dedupe->expression.Evaluate(twin);
  REQUIRE(twin_key.has_value());
  CHECK(*twin_key == "072195001234/2026-03-02/2");

  first["child"].erase("birth_order");  // one child: the order may be left out
  Result<nlohmann::json> single_key = birth.dedupe->expression.Evaluate(first);
  REQUIRE(single_key.has_value());
  CHECK(*single_key == "072195001234/2026-03-02/1");
}

TEST_CASE("death benefits are routed on the lookups' answers", "[workflows][examples]") {
  const std::map<std::string, Procedure> procedures = LoadExamples();
  const Step& route = StepOf(procedures.at("death-registration-linked"), "benefits_route");
  REQUIRE(route.next.size() == 3);
  nlohmann::json data = CaseData("death-registration-linked.benefits.json");

  auto target = [&route](const nlohmann::json& d) -> std::string {
    for (const Transition& t : route.next) {
      if (!t.condition) return t.target;
      Result<bool> holds = t.condition->expression.EvaluateCondition(d);
      REQUIRE(holds.has_value());
      if (*holds) return t.target;
    }
    return "";
  };
  data["insurance_record"] = {{"pensioner", true}};
  data["welfare_record"] = nullptr;
  CHECK(target(data) == "insurance_decision");
  data["insurance_record"] = {{"pensioner", false}, {"compulsory_months", 12}};
  CHECK(target(data) == "insurance_decision");
  data["insurance_record"] = {{"pensioner", false}, {"compulsory_months", 11}};
  CHECK(target(data) == "return_result");
  data["welfare_record"] = {{"category", "person_with_merit"}};
  CHECK(target(data) == "welfare_decision");
  data["insurance_record"] = nullptr;
  data["welfare_record"] = {{"category", "social_welfare"}};
  CHECK(target(data) == "welfare_decision");
}

}  // namespace
}  // namespace wf::workflows
