// Issue 11, "no single input stalls or crashes the engine": each poison below runs among a few
// hundred good cases on both stores; the good cases complete, the poisoned one ends as its own
// incident or a clear error naming the cause.
#include <catch2/catch.hpp>

#include <map>
#include <string>
#include <vector>

#include "adapters/adapter.hpp"
#include "engine/call_graph.hpp"
#include "engine/runtime.hpp"
#include "engine/scheduler.hpp"
#include "tests/support/cases.hpp"
#include "tests/support/test_database.hpp"
#include "workflows/loader.hpp"

namespace wf::engine {
namespace {

using nlohmann::json;

constexpr int kGoodCases = 300;

constexpr const char* kAnswers = R"(procedure: answers
version: 1
title: One department call
agency: test-agency
input:
  required: [kind]
  properties:
    kind: {type: string}
steps:
  ask: {adapter: answers, call: {operation: ask, kind: "${ .kind }"}, save_as: answer, next: done}
  done: {end: completed}
)";

// Calls itself: what an older wf let be deployed.
constexpr const char* kLoop = R"(procedure: loop
version: 1
title: Starts itself as a sub-case
agency: test-agency
steps:
  again: {call_procedure: loop, save_as: inner, next: done}
  done: {end: completed}
)";

constexpr const char* kNamed = R"(procedure: named
version: 1
title: A name checked by a pattern
agency: test-agency
input:
  required: [name]
  properties:
    name: {type: string, pattern: "^(a+)+$"}
steps:
  done: {end: completed}
)";

workflows::Procedure Load(const std::string& text) {
  auto result = workflows::LoadProcedure(text, "test.yaml");
  for (const auto& d : result.diagnostics) UNSCOPED_INFO(d.ToString());
  REQUIRE(result.ok());
  return std::move(*result.procedure);
}

// A procedure `name` whose only step starts `callee` as a sub-case.
std::string Caller(const std::string& name, const std::string& callee) {
  return "procedure: " + name + "\nversion: 1\ntitle: Calls " + callee +
         "\nagency: test-agency\nsteps:\n  call: {call_procedure: " + callee +
         ", save_as: sub, next: done}\n  done: {end: completed}\n";
}

Deployment TestDeployment() {
  auto deployment = LoadDeploymentText("agencies:\n  test-agency: {}\n", "test-config.yaml");
  REQUIRE(deployment.has_value());
  return *deployment;
}

// `levels` arrays inside each other, built without recursion.
json NestedArrays(int levels) {
  json root = json::array();
  json* innermost = &root;
  for (int i = 1; i < levels; ++i) {
    innermost->push_back(json::array());
    innermost = &innermost->back();
  }
  return root;
}

// A department that answers what the call's `kind` asks for: 500k levels of arrays, a 2 MiB
// string, or a small object. Implements the real interface, as the engine sees any adapter.
class PoisonAdapter : public adapters::Adapter {
 public:
  Status Validate(const adapters::StepCall&) const override { return Status::Ok(); }
  asio::awaitable<adapters::StepOutcome> Invoke(adapters::StepRequest request) override {
    const std::string kind = request.fields.value("kind", "");
    if (kind == "deep") co_return adapters::StepOutcome::Done(json{{"a", NestedArrays(500000)}});
    if (kind == "huge") {
      co_return adapters::StepOutcome::Done(json{{"scan", std::string(2 << 20, 'x')}});
    }
    co_return adapters::StepOutcome::Done(json{{"ok", true}});
  }
};

std::vector<std::string> StartGood(Runtime& runtime) {
  std::vector<json> data;
  for (int i = 0; i < kGoodCases; ++i) data.push_back({{"kind", "ok-" + std::to_string(i)}});
  auto lines = runtime.StartBatch("answers", data, "an.nguyen", 100);
  REQUIRE(lines.has_value());
  std::vector<std::string> ids;
  for (const BatchLine& line : *lines) {
    CHECK(line.outcome == BatchLine::Outcome::kStarted);
    if (line.outcome == BatchLine::Outcome::kStarted) ids.push_back(line.started.id);
  }
  REQUIRE(ids.size() == static_cast<size_t>(kGoodCases));
  return ids;
}

CaseRecord CaseOf(Store& store, const std::string& id) {
  CaseRecord record;
  REQUIRE(store
              .Read([&](StoreTx& tx) {
                auto got = tx.GetCase(id);
                if (!got) return got.error();
                record = std::move(*got);
                return Status::Ok();
              })
              .ok());
  return record;
}

void CheckAllCompleted(Store& store, const std::vector<std::string>& ids) {
  int completed = 0;
  for (const auto& id : ids) completed += testing::CaseStatus(store, id) == "completed";
  CHECK(completed == static_cast<int>(ids.size()));
}

// Stores `procedure` the way an older wf did: without CheckCallCycles.
void DeployUnchecked(Store& store, const workflows::Procedure& procedure) {
  ProcedureRecord record;
  record.name = procedure.name;
  record.content_hash = procedure.content_hash;
  record.source = procedure.source;
  record.title = procedure.title;
  record.agency = procedure.agency;
  record.deployed_at = Now();
  REQUIRE(store
              .Transact([&](StoreTx& tx) {
                auto deployed = tx.DeployProcedure(record);
                return deployed ? Status::Ok() : deployed.error();
              })
              .ok());
}

}  // namespace

WF_STORE_TEST_CASE("a department answering 500k-deep JSON or a huge string is that case's incident",
                   "[engine][limits]", db) {
  auto store = Store::Open(db.url());
  REQUIRE(store.has_value());
  Deployment deployment = TestDeployment();
  Runtime runtime(**store, deployment);
  REQUIRE(runtime.Deploy(Load(kAnswers)).has_value());
  std::vector<std::string> good = StartGood(runtime);
  auto deep = runtime.StartCase("answers", {{"kind", "deep"}}, "an.nguyen");
  auto huge = runtime.StartCase("answers", {{"kind", "huge"}}, "an.nguyen");
  REQUIRE(deep.has_value());
  REQUIRE(huge.has_value());

  adapters::Registry registry;
  registry.Add("answers", std::make_unique<PoisonAdapter>());
  Engine engine(runtime, registry, testing::UntilIdleOptions());
  REQUIRE(testing::RunWithDeadline(engine).ok());   // the engine never went down
  CHECK(engine.stats().invoked == kGoodCases + 2);  // one attempt each: no retry loop

  CheckAllCompleted(**store, good);
  auto deep_incidents = testing::CaseIncidents(**store, deep->id);
  REQUIRE(deep_incidents.size() == 1);
  CHECK_THAT(deep_incidents[0].message,
             Catch::StartsWith(
                 "department 'answers' answered JSON nested deeper than 32 levels at $.a[0]"));
  CHECK(testing::CaseStatus(**store, deep->id) == "open");
  auto huge_incidents = testing::CaseIncidents(**store, huge->id);
  REQUIRE(huge_incidents.size() == 1);
  CHECK(huge_incidents[0].message ==
        "department 'answers' answered JSON with a string longer than 262144 bytes at $.scan");
  CHECK(testing::VerifyHistory(**store).has_value());
}

WF_STORE_TEST_CASE(
    "data over the bounds is refused at start, complete and signal before it is copied",
    "[engine][limits]", db) {
  auto store = Store::Open(db.url());
  REQUIRE(store.has_value());
  Deployment deployment = TestDeployment();
  Runtime runtime(**store, deployment);
  REQUIRE(runtime.Deploy(Load(kAnswers)).has_value());
  json deep = {{"kind", "x"}, {"a", NestedArrays(500000)}};
  auto started = runtime.StartCase("answers", deep, "an.nguyen");
  REQUIRE_FALSE(started.has_value());
  CHECK(started.error().code() == ErrorCode::kInvalid);
  CHECK_THAT(started.error().message(),
             Catch::StartsWith("case data is JSON nested deeper than 32 levels at $.a[0]"));
  auto huge = runtime.StartCase("answers", {{"kind", std::string(300000, 'x')}}, "an.nguyen");
  REQUIRE_FALSE(huge.has_value());
  CHECK(huge.error().message() ==
        "case data is JSON with a string longer than 262144 bytes at $.kind");
  // The checks come before the case or task is even looked up.
  Status complete = runtime.CompleteTask(12345, "an.nguyen", deep);
  CHECK(complete.code() == ErrorCode::kInvalid);
  CHECK_THAT(complete.message(), Catch::StartsWith("the form's values are JSON nested deeper"));
  // (Moved, not copied: a copy of 500k levels is what the bounds protect against.)
  Status signal = runtime.ApplyEvent(
      "no-such-case", event::SignalReceived{"documents", std::move(deep)}, "an.nguyen");
  CHECK(signal.code() == ErrorCode::kInvalid);
  CHECK_THAT(signal.message(), Catch::StartsWith("the signal's data is JSON nested deeper"));
}

WF_STORE_TEST_CASE("a pathological pattern at start is answered promptly among good cases",
                   "[engine][limits]", db) {
  auto store = Store::Open(db.url());
  REQUIRE(store.has_value());
  Deployment deployment = TestDeployment();
  Runtime runtime(**store, deployment);
  REQUIRE(runtime.Deploy(Load(kNamed)).has_value());
  std::vector<json> data;
  for (int i = 0; i < kGoodCases; ++i) data.push_back({{"name", std::string(1 + i % 50, 'a')}});
  // std::regex would try 2^4095 ways to split the a's before giving up on the b.
  data.insert(data.begin() + kGoodCases / 2, json{{"name", std::string(4095, 'a') + "b"}});
  auto lines = runtime.StartBatch("named", data, "an.nguyen", 100);
  REQUIRE(lines.has_value());
  REQUIRE(lines->size() == data.size());
  int started = 0;
  for (size_t i = 0; i < lines->size(); ++i) {
    const BatchLine& line = (*lines)[i];
    if (i == static_cast<size_t>(kGoodCases / 2)) {
      CHECK(line.outcome == BatchLine::Outcome::kRefused);
      CHECK(line.refusal.message() == "$.name: does not match ^(a+)+$");
      continue;
    }
    REQUIRE(line.outcome == BatchLine::Outcome::kStarted);
    CHECK(testing::CaseStatus(**store, line.started.id) == "completed");
    ++started;
  }
  CHECK(started == kGoodCases);
}

WF_STORE_TEST_CASE("a procedure that starts itself as a sub-case is refused at deploy",
                   "[engine][limits][call_procedure]", db) {
  auto store = Store::Open(db.url());
  REQUIRE(store.has_value());
  Deployment deployment = TestDeployment();
  Runtime runtime(**store, deployment);

  auto self = runtime.Deploy(Load(kLoop));
  REQUIRE_FALSE(self.has_value());
  CHECK(self.error().code() == ErrorCode::kInvalid);
  CHECK_THAT(self.error().message(),
             Catch::StartsWith("procedure 'loop' would start itself as a sub-case: loop → loop"));

  // a -> b -> c is fine; then c -> a closes the cycle through the deployed a and b.
  REQUIRE(runtime.Deploy(Load(Caller("pa", "pb"))).has_value());
  REQUIRE(runtime.Deploy(Load(Caller("pb", "pc"))).has_value());
  auto closing = runtime.Deploy(Load(Caller("pc", "pa")));
  REQUIRE_FALSE(closing.has_value());
  CHECK_THAT(closing.error().message(), Catch::Contains("pc → pa → pb → pc"));
  // Nothing of the refused release was stored.
  bool stored = true;
  REQUIRE((*store)
              ->Read([&](StoreTx& tx) {
                auto got = tx.LatestProcedure("pc");
                stored = got.has_value();
                return got || got.error().code() == ErrorCode::kNotFound ? Status::Ok()
                                                                         : got.error();
              })
              .ok());
  CHECK_FALSE(stored);
  // c calling something else is fine.
  CHECK(runtime.Deploy(Load(Caller("pc", "answers"))).has_value());
}

TEST_CASE("the shortest call cycle is found through releases and deployed procedures",
          "[engine][limits][call_procedure]") {
  std::map<std::string, std::vector<std::string>> calls = {
      {"a", {"b", "x"}}, {"b", {"c", "a"}}, {"c", {"a"}}, {"x", {}}, {"y", {"y"}}};
  auto calls_of = [&](const std::string& name) -> Result<std::vector<std::string>> {
    auto it = calls.find(name);
    return it == calls.end() ? std::vector<std::string>{} : it->second;
  };
  CHECK(*FindCallCycle({"a"}, calls_of) == std::vector<std::string>{"a", "b", "a"});
  CHECK(*FindCallCycle({"c"}, calls_of) == std::vector<std::string>{"c", "a", "b", "c"});
  CHECK(FindCallCycle({"x"}, calls_of)->empty());
  CHECK(FindCallCycle({"nobody"}, calls_of)->empty());
  // A cycle elsewhere is not the release's.
  CHECK(FindCallCycle({"x"}, calls_of)->empty());
  CHECK(*FindCallCycle({"x", "y"}, calls_of) == std::vector<std::string>{"y", "y"});
}

WF_STORE_TEST_CASE("a chain of sub-cases deployed before the check ends as an incident",
                   "[engine][limits][call_procedure]", db) {
  auto store = Store::Open(db.url());
  REQUIRE(store.has_value());
  Deployment deployment = TestDeployment();
  Runtime runtime(**store, deployment);
  REQUIRE(runtime.Deploy(Load(kAnswers)).has_value());
  DeployUnchecked(**store, Load(kLoop));
  std::vector<std::string> good = StartGood(runtime);
  auto root = runtime.StartCase("loop", json::object(), "an.nguyen");
  REQUIRE(root.has_value());

  adapters::Registry registry;
  registry.Add("answers", std::make_unique<PoisonAdapter>());
  Engine engine(runtime, registry, testing::UntilIdleOptions());
  REQUIRE(testing::RunWithDeadline(engine).ok());  // the engine never went down
  CheckAllCompleted(**store, good);

  // The root and kMaxSubCaseDepth sub-cases below it; the deepest holds the incident.
  std::vector<CaseRecord> loops;
  REQUIRE((*store)
              ->Read([&](StoreTx& tx) {
                CaseFilter filter;
                filter.procedure = "loop";
                auto got = tx.ListCases(filter);
                if (!got) return got.error();
                loops = std::move(*got);
                return Status::Ok();
              })
              .ok());
  CHECK(loops.size() == static_cast<size_t>(kMaxSubCaseDepth) + 1);
  int with_incident = 0;
  for (const auto& loop : loops) {
    CHECK(loop.status == "open");
    auto incidents = testing::CaseIncidents(**store, loop.id);
    if (incidents.empty()) continue;
    ++with_incident;
    CHECK_THAT(incidents[0].message,
               Catch::StartsWith("sub-cases nested deeper than 8 levels: loop → loop → "));
    CHECK(CaseOf(**store, loop.id).parent_case.has_value());
  }
  CHECK(with_incident == 1);
}

}  // namespace wf::engine
