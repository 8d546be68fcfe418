// Hostile case data against the real engine (issue 11): a runaway expression or a memory bomb
// ends as its own case's incident while hundreds of other cases complete, and no expression is
// evaluated while the engine holds case rows locked.
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <mutex>
#include <thread>

#include "adapters/adapter.hpp"
#include "engine/expression_pool.hpp"
#include "engine/runtime.hpp"
#include "engine/scheduler.hpp"
#include "tests/support/cases.hpp"
#include "tests/support/test_database.hpp"
#include "workflows/loader.hpp"

namespace wf::engine {
namespace {

// Every expression needs a worker (pipes and iteration are not provably bounded).
constexpr const char* kCounting = R"(procedure: counting
version: 1
title: Counts what the applicant asks for
agency: test-agency
steps:
  count:
    adapter: noop
    call:
      operation: count
      items: "${ [range(.n)] | length }"
      text: "${ reduce range(.k) as $i (.s; . + .) | length }"
    save_as: counted
    next:
      - if: ${ [.counted.items] | .[0] > 0 }
        goto: record
      - goto: record
  record: {adapter: noop, call: {operation: record}, save_as: recorded, next: done}
  done: {end: completed}
)";

workflows::Procedure Load(const char* text) {
  auto result = workflows::LoadProcedure(text, "test.yaml");
  for (const auto& d : result.diagnostics) UNSCOPED_INFO(d.ToString());
  REQUIRE(result.ok());
  return std::move(*result.procedure);
}

Deployment TestDeployment() {
  auto deployment = LoadDeploymentText("agencies:\n  test-agency: {}\n", "test-config.yaml");
  REQUIRE(deployment.has_value());
  return *deployment;
}

}  // namespace

WF_STORE_TEST_CASE(
    "a runaway expression and a memory bomb become their cases' incidents while the rest "
    "complete",
    "[engine][expressions][hostile]", db) {
  auto store = Store::Open(db.url());
  REQUIRE(store.has_value());
  Deployment deployment = TestDeployment();
  ExpressionPool pool;
  Runtime runtime(**store, deployment, pool);
  REQUIRE(runtime.Deploy(Load(kCounting)).has_value());

  std::vector<nlohmann::json> data;
  for (int i = 0; i < 300; ++i) data.push_back({{"n", i % 7}, {"s", "ab"}, {"k", 2}});
  auto lines = runtime.StartBatch("counting", data, "an.nguyen", 100);
  REQUIRE(lines.has_value());
  std::vector<Started> good;
  for (const BatchLine& line : *lines) {
    REQUIRE(line.outcome == BatchLine::Outcome::kStarted);
    good.push_back(line.started);
  }
  REQUIRE(good.size() == 300);
  auto runaway = runtime.StartCase("counting", {{"n", 1e10}, {"s", "ab"}, {"k", 2}}, "applicant");
  REQUIRE(runaway.has_value());
  // Doubles a string .k times: 2^40 bytes, out of memory long before it is out of time.
  auto bomb = runtime.StartCase("counting", {{"n", 1}, {"s", "ab"}, {"k", 40}}, "applicant");
  REQUIRE(bomb.has_value());

  adapters::Registry registry;
  Engine engine(runtime, registry, testing::UntilIdleOptions());
  REQUIRE(testing::RunWithDeadline(engine).ok());  // Run returned: the engine never went down

  auto read = [&](const std::string& id, CaseRecord* record,
                  std::vector<IncidentRecord>* incidents) {
    REQUIRE((*store)
                ->Read([&](StoreTx& tx) {
                  auto got = tx.GetCase(id);
                  if (!got) return got.error();
                  *record = *got;
                  auto listed = tx.ListIncidents(id);
                  if (!listed) return listed.error();
                  *incidents = *listed;
                  return Status::Ok();
                })
                .ok());
  };
  for (const auto& started : good) {
    CaseRecord record;
    std::vector<IncidentRecord> incidents;
    read(started.id, &record, &incidents);
    CHECK(record.status == "completed");
    CHECK(incidents.empty());
  }
  CaseRecord record;
  std::vector<IncidentRecord> incidents;
  read(runaway->id, &record, &incidents);
  CHECK(record.status == "open");
  REQUIRE(incidents.size() == 1);
  CHECK(incidents[0].step == "count");
  // [range(1e10)] runs out of time or out of memory, whichever comes first.
  const std::string& runaway_message = incidents[0].message;
  INFO(runaway_message);
  CHECK((runaway_message.find("ran past 2 s") != std::string::npos ||
         runaway_message.find("used more than 256 MB") != std::string::npos));
  CHECK_THAT(runaway_message, Catch::Contains("[range(.n)]"));

  read(bomb->id, &record, &incidents);
  CHECK(record.status == "open");
  REQUIRE(incidents.size() == 1);
  CHECK(incidents[0].step == "count");
  CHECK_THAT(incidents[0].message, Catch::Contains("used more than 256 MB"));
  CHECK_THAT(incidents[0].message, Catch::Contains("reduce range(.k)"));
  // Reported by the worker's own out-of-memory handler, not guessed from a crash.
  CHECK_THAT(incidents[0].message, !Catch::Contains("its worker died"));
}

// SQLite has no row locks to look at.
WF_POSTGRES_TEST_CASE("no expression is evaluated while the engine holds a case row locked",
                      "[engine][expressions][locks]", db) {
  auto store = Store::Open(db.url());
  REQUIRE(store.has_value());

  // Before every evaluation that is not provably bounded, tries to lock every case row from a
  // connection of its own without waiting: it fails if any transaction holds one.
  class LockProbe final : public workflows::Evaluator {
   public:
    LockProbe(testing::TestDatabase& db, workflows::Evaluator& inner) : db_(db), inner_(inner) {}
    Result<nlohmann::json> Evaluate(const workflows::Expression& expression,
                                    const nlohmann::json& input) override {
      if (!expression.bounded()) {
        std::lock_guard lock(mutex_);
        ++probes_;
        try {
          db_.Execute("SELECT count(*) FROM (SELECT id FROM cases FOR UPDATE NOWAIT) AS locked");
        } catch (const std::exception& e) {
          ++locked_;
          UNSCOPED_INFO("evaluated under a lock: " << expression.program() << ": " << e.what());
        }
      }
      return inner_.Evaluate(expression, input);
    }
    int probes() const { return probes_; }
    int locked() const { return locked_; }

   private:
    testing::TestDatabase& db_;
    workflows::Evaluator& inner_;
    std::mutex mutex_;
    int probes_ = 0;
    int locked_ = 0;
  };

  Deployment deployment = TestDeployment();
  ExpressionPool pool;
  LockProbe probe(db, pool);
  Runtime runtime(**store, deployment, probe);
  REQUIRE(runtime.Deploy(Load(kCounting)).has_value());
  std::vector<nlohmann::json> data;
  // Distinct data: equal questions within one batch are asked once.
  for (int i = 0; i < 40; ++i) {
    data.push_back({{"n", i}, {"s", "ab" + std::to_string(i)}, {"k", 2}});
  }
  auto started = runtime.StartBatch("counting", data, "an.nguyen", 20);
  REQUIRE(started.has_value());
  for (const BatchLine& line : *started) REQUIRE(line.outcome == BatchLine::Outcome::kStarted);
  adapters::Registry registry;
  EngineOptions options = testing::UntilIdleOptions();
  options.db_threads = 1;  // one committer: any lock seen is held around an evaluation
  Engine engine(runtime, registry, options);
  REQUIRE(testing::RunWithDeadline(engine).ok());
  CHECK(engine.stats().committed >= 80);
  CHECK(probe.probes() >= 40 * 3);
  CHECK(probe.locked() == 0);
}

}  // namespace wf::engine
