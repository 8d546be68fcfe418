// The runtime and the engine together, on both stores: cases run end to end through the real
// Store, the pure machine and the Asio scheduler with the built-in noop adapter.
#include <catch2/catch.hpp>

#include <map>
#include <memory>
#include <set>
#include <thread>

#include "adapters/adapter.hpp"
#include "engine/batch_commit.hpp"
#include "engine/history_action.hpp"
#include "engine/runtime.hpp"
#include "engine/scheduler.hpp"
#include "tests/support/cases.hpp"
#include "tests/support/test_database.hpp"

namespace wf::engine {
namespace {

constexpr const char* kChain = R"(procedure: chain
version: 1
title: Five noop steps
agency: test-agency
deadline: 3 working days
dedupe: ${ .applicant }
input:
  required: [applicant]
  properties:
    applicant: {type: string}
steps:
  s1: {adapter: noop, call: {operation: one, who: "${ .applicant }"}, save_as: r1, next: s2}
  s2: {adapter: noop, call: {operation: two}, save_as: r2, next: s3}
  s3: {adapter: noop, call: {operation: three}, save_as: r3, next: s4}
  s4: {adapter: noop, call: {operation: four}, save_as: r4, next: s5}
  s5: {adapter: noop, call: {operation: five}, save_as: r5, next: done}
  done: {end: completed}
)";

constexpr const char* kReview = R"(procedure: review
version: 1
title: A decision and a fork
agency: test-agency
roles:
  officer: {agency: test-agency}
steps:
  check:
    adapter: noop
    call: {operation: check, id: "${ .id }"}
    save_as: checked
    reuse: 30 days
    next: decide
  decide:
    task: Decide
    role: officer
    form:
      approved: {type: boolean, required: true}
    save_as: decision
    next:
      - if: ${ .decision.approved }
        goto: fork
      - goto: refused
  fork:
    parallel: [a, b]
    next: done
  a: {adapter: noop, call: {operation: a}, save_as: ra}
  b: {adapter: noop, call: {operation: b}, save_as: rb}
  done: {end: completed}
  refused: {end: refused}
)";

Deployment TestDeployment() {
  auto deployment = LoadDeploymentText(R"(
agencies:
  test-agency:
    members: {an.nguyen: [officer], binh.le: [officer]}
)",
                                       "test-config.yaml");
  REQUIRE(deployment.has_value());
  return *deployment;
}

}  // namespace

WF_STORE_TEST_CASE("cases of a five-step noop procedure run to completion", "[engine][runtime]",
                   db) {
  auto store = Store::Open(db.url());
  REQUIRE(store.has_value());
  Deployment deployment = TestDeployment();
  Runtime runtime(**store, deployment);
  auto deployed = runtime.Deploy(testing::ProcedureFromYaml(kChain));
  REQUIRE(deployed.has_value());
  CHECK(deployed->created);
  CHECK_FALSE(
      runtime.Deploy(testing::ProcedureFromYaml(kChain))->created);  // same content: a no-op
  // A release of several procedures: one outcome each, in the order given.
  auto release = runtime.Deploy(std::vector<const workflows::Procedure*>{
      &testing::ProcedureFromYaml(kReview), &testing::ProcedureFromYaml(kChain)});
  REQUIRE(release.has_value());
  REQUIRE(release->size() == 2);
  CHECK((*release)[0].created);
  CHECK_FALSE((*release)[1].created);
  CHECK((*release)[1].version == deployed->version);

  std::vector<std::string> ids;
  for (int i = 0; i < 20; ++i) {
    auto started =
        runtime.StartCase("chain", {{"applicant", "a" + std::to_string(i)}}, "an.nguyen");
    REQUIRE(started.has_value());
    ids.push_back(started->id);
  }
  adapters::Registry registry;
  Engine engine(runtime, registry, testing::UntilIdleOptions());
  REQUIRE(engine.Run().ok());
  CHECK(engine.stats().invoked == 100);
  for (const auto& id : ids) {
    CHECK(testing::CaseStatus(**store, id) == "completed");
    int succeeded = 0;
    for (const auto& e : testing::CaseHistory(**store, id))
      succeeded += e.action == history_action::kStepSucceeded;
    CHECK(succeeded == 5);
  }
  CHECK(testing::VerifyHistory(**store).has_value());
}

WF_STORE_TEST_CASE("a second open case with the same dedupe key is refused", "[engine][runtime]",
                   db) {
  auto store = Store::Open(db.url());
  REQUIRE(store.has_value());
  Deployment deployment = TestDeployment();
  Runtime runtime(**store, deployment);
  REQUIRE(runtime.Deploy(testing::ProcedureFromYaml(kChain)).has_value());
  auto first = runtime.StartCase("chain", {{"applicant", "same"}}, "an.nguyen");
  REQUIRE(first.has_value());
  auto second = runtime.StartCase("chain", {{"applicant", "same"}}, "an.nguyen");
  REQUIRE_FALSE(second.has_value());
  CHECK(second.error().code() == ErrorCode::kConflict);
  CHECK_THAT(second.error().message(), Catch::Contains(first->id));
  auto invalid = runtime.StartCase("chain", {{"applicant", 7}}, "an.nguyen");
  REQUIRE_FALSE(invalid.has_value());
  CHECK(invalid.error().code() == ErrorCode::kInvalid);
  CHECK_THAT(invalid.error().message(), Catch::Contains("$.applicant"));
}

// A store with kReview deployed, and the runtime and adapters the review tests run it with.
struct ReviewRig {
  std::unique_ptr<Store> store;
  Deployment deployment = TestDeployment();
  std::unique_ptr<Runtime> runtime;
  adapters::Registry registry;

  explicit ReviewRig(const std::string& url) {
    auto opened = Store::Open(url);
    REQUIRE(opened.has_value());
    store = std::move(*opened);
    runtime = std::make_unique<Runtime>(*store, deployment);
    REQUIRE(runtime->Deploy(testing::ProcedureFromYaml(kReview)).has_value());
  }
  // Runs an engine until nothing is due; what it did.
  EngineStats RunUntilIdle() {
    Engine engine(*runtime, registry, testing::UntilIdleOptions());
    REQUIRE(engine.Run().ok());
    return engine.stats();
  }
  // A case this runtime carried to its task and approved there: its fork's rows are ready.
  std::string ApprovedCase() {
    auto started = runtime->StartCase("review", {{"id", "079123456789"}}, "an.nguyen");
    REQUIRE(started.has_value());
    RunUntilIdle();
    std::vector<TaskRecord> tasks = testing::CaseTasks(*store, started->id);
    REQUIRE(tasks.size() == 1);
    REQUIRE(runtime->ClaimTask(tasks[0].id, "an.nguyen").ok());
    REQUIRE(runtime->CompleteTask(tasks[0].id, "an.nguyen", {{"approved", true}}).ok());
    return started->id;
  }
};

WF_STORE_TEST_CASE("a task decides, a fork joins, and evidence is reused by the next case",
                   "[engine][runtime]", db) {
  ReviewRig rig(db.url());
  Store& store = *rig.store;
  Runtime& runtime = *rig.runtime;

  auto first = runtime.StartCase("review", {{"id", "079123456789"}}, "an.nguyen");
  REQUIRE(first.has_value());
  CHECK(rig.RunUntilIdle().reused == 0);
  std::vector<TaskRecord> tasks = testing::CaseTasks(store, first->id);
  REQUIRE(tasks.size() == 1);
  int64_t task = tasks[0].id;

  CHECK(runtime.CompleteTask(task, "someone.else", {{"approved", true}}).code() ==
        ErrorCode::kNotPermitted);
  CHECK(runtime.CompleteTask(task, "an.nguyen", {{"approved", "yes"}}).code() ==
        ErrorCode::kInvalid);
  REQUIRE(runtime.ClaimTask(task, "an.nguyen").ok());
  CHECK(runtime.CompleteTask(task, "binh.le", {{"approved", true}}).code() == ErrorCode::kConflict);
  REQUIRE(runtime.CompleteTask(task, "an.nguyen", {{"approved", true}}).ok());
  CHECK(runtime.CompleteTask(task, "an.nguyen", {{"approved", true}}).code() ==
        ErrorCode::kConflict);
  rig.RunUntilIdle();
  CHECK(testing::CaseStatus(store, first->id) == "completed");

  // The same citizen in another case: the check is answered from evidence, not the department.
  auto second = runtime.StartCase("review", {{"id", "079123456789"}}, "an.nguyen");
  REQUIRE(second.has_value());
  CHECK(rig.RunUntilIdle().reused == 1);
  bool reused = false;
  for (const auto& e : testing::CaseHistory(store, second->id)) {
    if (e.action == history_action::kStepReused) {
      reused = true;
      CHECK_THAT(e.details, Catch::Contains(first->id));
    }
  }
  CHECK(reused);
}

WF_STORE_TEST_CASE("a case stored with its data inside its state (format 1) goes on from there",
                   "[engine][runtime]", db) {
  using nlohmann::json;
  ReviewRig rig(db.url());
  Store& store = *rig.store;
  Runtime& runtime = *rig.runtime;
  auto started = runtime.StartCase("review", {{"id", "079123456789"}}, "an.nguyen");
  REQUIRE(started.has_value());
  rig.RunUntilIdle();
  // The row as wf wrote it before format 2: the data in the state. cases.data is emptied to
  // show that the engine then reads the state's own copy (a new row_version, as a write by wf
  // makes: the runtime would go on from the state it kept of its own write otherwise).
  CaseRecord record = testing::CaseRow(store, started->id);
  json state = json::parse(record.state);
  REQUIRE(state["format"] == 2);
  REQUIRE_FALSE(state.contains("data"));
  state["format"] = 1;
  state["data"] = json::parse(record.data);
  REQUIRE(state["data"].contains("checked"));
  db.Execute("UPDATE cases SET data = '{}', state = '" + state.dump() +
             "', row_version = row_version + 1 WHERE id = '" + started->id + "'");

  std::vector<TaskRecord> tasks = testing::CaseTasks(store, started->id);
  REQUIRE(tasks.size() == 1);
  REQUIRE(runtime.CompleteTask(tasks[0].id, "an.nguyen", {{"approved", true}}).ok());
  rig.RunUntilIdle();
  CHECK(testing::CaseStatus(store, started->id) == "completed");
  record = testing::CaseRow(store, started->id);
  json data = json::parse(record.data);
  CHECK(data["id"] == "079123456789");
  CHECK(data.contains("checked"));
  CHECK(data["decision"]["approved"] == true);
  CHECK(data.contains("ra"));
  CHECK(json::parse(record.state)["format"] == 2);
}

WF_STORE_TEST_CASE("a case moved on by another runtime is read from its row, not from the kept state",
                   "[engine][runtime]", db) {
  ReviewRig rig(db.url());
  Store& store = *rig.store;
  auto started = rig.runtime->StartCase("review", {{"id", "079123456789"}}, "an.nguyen");
  REQUIRE(started.has_value());
  rig.RunUntilIdle();
  // Waiting at the task: this runtime keeps the state it wrote last.
  CHECK(rig.runtime->KeptStates() == 1);
  std::vector<TaskRecord> tasks = testing::CaseTasks(store, started->id);
  REQUIRE(tasks.size() == 1);

  // Another runtime (another clerk's process) decides: the case moves on to the fork.
  Runtime other(store, rig.deployment);
  REQUIRE(other.ClaimTask(tasks[0].id, "an.nguyen").ok());
  REQUIRE(other.CompleteTask(tasks[0].id, "an.nguyen", {{"approved", true}}).ok());

  // The first runtime's engine carries the fork out from the row, decision included.
  rig.RunUntilIdle();
  CHECK(testing::CaseStatus(store, started->id) == "completed");
  nlohmann::json data = nlohmann::json::parse(testing::CaseRow(store, started->id).data);
  CHECK(data["decision"]["approved"] == true);
  CHECK(data.contains("ra"));
  CHECK(data.contains("rb"));
  CHECK(rig.runtime->KeptStates() == 0);  // an ended case is not kept
}

// BatchCommitter trusts the row and chain head this process committed last instead of locking
// and reading them: a case changed elsewhere meanwhile must fail that transaction in the server,
// and the batch must then be committed the usual way, nothing lost and the chain whole.
WF_POSTGRES_TEST_CASE("a commit that trusts the kept row reads it after all when the case moved on",
                      "[engine][runtime]", db) {
  ReviewRig rig(db.url());
  Store& store = *rig.store;
  Runtime& runtime = *rig.runtime;
  const std::string id = rig.ApprovedCase();
  // This runtime keeps the case as the decision left it, and the fork's two rows are ready.
  auto kept = runtime.KeptRow(id);
  REQUIRE(kept.has_value());
  CHECK(kept->record.row_version == testing::CaseRow(store, id).row_version);
  CHECK(kept->record.data.empty());
  std::vector<WorkItem> claimed;
  REQUIRE(store.Transact([&](StoreTx& tx) {
    auto got = tx.ClaimWork("tester", Now(), std::chrono::seconds(30), 10);
    if (!got) return got.error();
    claimed = std::move(*got);
    return Status::Ok();
  }).ok());
  REQUIRE(claimed.size() == 2);
  std::vector<Completion> batch;
  for (const WorkItem& item : claimed) {
    Completion c;
    c.item = item;
    event::StepSucceeded ok;
    ok.activation = item.activation;
    ok.result = {{"step", item.step}};
    c.event = ok;
    batch.push_back(std::move(c));
  }
  int64_t transactions = 0;
  SECTION("nothing changed: one transaction") { transactions = 1; }
  SECTION("the row was updated elsewhere") {
    CaseRecord row = testing::CaseRow(store, id);
    REQUIRE(store.Transact([&](StoreTx& tx) { return tx.UpdateCase(row); }).ok());
    transactions = 2;
  }
  SECTION("the chain grew elsewhere, the row unchanged") {
    REQUIRE(store.Transact([&](StoreTx& tx) {
      auto appended = tx.AppendHistory(id, "an.nguyen", "note.added", "", R"({"note":"x"})", Now());
      return appended ? Status::Ok() : appended.error();
    }).ok());
    transactions = 2;
  }
  BatchCommitter committer(runtime, "tester", std::chrono::seconds(30));
  Committed out = committer.Commit(std::move(batch), 0);
  REQUIRE(out.status.ok());
  CHECK(out.applied == 2);
  CHECK(out.stale == 0);
  CHECK(out.transactions == transactions);
  CHECK(testing::CaseStatus(store, id) == "completed");
  nlohmann::json data = nlohmann::json::parse(testing::CaseRow(store, id).data);
  CHECK(data["ra"]["step"] == "a");
  CHECK(data["rb"]["step"] == "b");
  Result<testing::HistorySummary> verified = testing::VerifyHistory(store, id);
  REQUIRE(verified.has_value());
  CHECK(runtime.KeptStates() == 0);
}

TEST_CASE("kept states are found by their exact version and the latest wins", "[engine]") {
  StateCache cache;
  auto entry = [](int64_t version, const char* status) {
    StateCache::Entry e;
    e.row_version = version;
    e.state.status = status;
    return e;
  };
  cache.Put("c-1", entry(3, "open"));
  cache.Put("c-1", entry(2, "older"));  // an older write committed later: ignored
  CHECK_FALSE(cache.Take("c-1", 2));    // and a miss forgets the entry: its version is past
  CHECK_FALSE(cache.Take("c-1", 3));
  cache.Put("c-1", entry(4, "open"));
  cache.Put("c-1", entry(5, "later"));
  CHECK_FALSE(cache.Peek("c-1", 4));
  REQUIRE(cache.Peek("c-1", 5));
  CHECK(cache.Peek("c-1", 5)->status == "later");  // a copy: still there
  auto kept = cache.Take("c-1", 5);
  REQUIRE(kept);
  CHECK(kept->state.status == "later");
  CHECK(cache.size() == 0);  // taken: a second transition cannot use it again
  cache.Put("c-2", entry(1, "open"));
  cache.Forget("c-2");
  CHECK_FALSE(cache.Take("c-2", 1));
}

WF_STORE_TEST_CASE("what a transaction leaves for after its commit runs only if it commits",
                   "[engine][store]", db) {
  auto opened = Store::Open(db.url());
  REQUIRE(opened.has_value());
  Store& store = **opened;
  int ran = 0;
  Status rolled = store.Transact([&](StoreTx& tx) {
    tx.AfterCommit([&] { ++ran; });
    return Status::Conflict("rolled back on purpose");
  });
  CHECK(rolled.code() == ErrorCode::kConflict);
  CHECK(ran == 0);
  REQUIRE(store
              .Transact([&](StoreTx& tx) {
                tx.AfterCommit([&] { ++ran; });
                return Status::Ok();
              })
              .ok());
  CHECK(ran == 1);
}

WF_POSTGRES_TEST_CASE("a start that only queues work writes its case row once",
                      "[engine][runtime]", db) {
  auto store = Store::Open(db.url());
  REQUIRE(store.has_value());
  Deployment deployment = TestDeployment();
  Runtime runtime(**store, deployment);
  // No dedupe key, no personal data, a first step that calls a department: nothing refers to the
  // case row before the start's last statements, which insert it.
  constexpr const char* kPlain = R"(procedure: plain
version: 1
title: Two noop steps
agency: test-agency
steps:
  s1: {adapter: noop, call: {operation: one, id: "${ .id }"}, save_as: r1, next: s2}
  s2: {adapter: noop, call: {operation: two}, save_as: r2, next: done}
  done: {end: completed}
)";
  REQUIRE(runtime.Deploy(testing::ProcedureFromYaml(kPlain)).has_value());
  REQUIRE(runtime.Deploy(testing::ProcedureFromYaml(kReview)).has_value());
  std::vector<nlohmann::json> data;
  for (int i = 0; i < 5; ++i) data.push_back({{"id", "p" + std::to_string(i)}});
  auto started = runtime.StartBatch("plain", data, "an.nguyen", 50);
  REQUIRE(started.has_value());
  for (const BatchLine& line : *started) REQUIRE(line.outcome == BatchLine::Outcome::kStarted);
  // One row version each, the first five lines of the table's first page (an insert and an
  // update would leave every other line dead).
  CHECK(db.QueryInt("SELECT COUNT(*) FROM cases WHERE ctid = ANY(ARRAY['(0,1)', '(0,2)', '(0,3)',"
                    " '(0,4)', '(0,5)']::tid[])") == 5);
  auto single = runtime.StartCase("plain", {{"id", "p5"}}, "an.nguyen");
  REQUIRE(single.has_value());
  CHECK(db.QueryInt("SELECT COUNT(*) FROM cases WHERE ctid = '(0,6)'") == 1);
  // A start whose first step opens a task still inserts first (the task refers to the case).
  constexpr const char* kAsks = R"(procedure: asks
version: 1
title: A task first
agency: test-agency
roles:
  officer: {agency: test-agency}
steps:
  decide:
    task: Decide
    role: officer
    form:
      approved: {type: boolean, required: true}
    save_as: decision
    next: done
  done: {end: completed}
)";
  REQUIRE(runtime.Deploy(testing::ProcedureFromYaml(kAsks)).has_value());
  auto asks = runtime.StartCase("asks", nlohmann::json::object(), "an.nguyen");
  REQUIRE(asks.has_value());
  CHECK(db.QueryInt("SELECT COUNT(*) FROM tasks WHERE status = 'open'") == 1);
  auto review = runtime.StartCase("review", {{"id", "r1"}}, "an.nguyen");
  REQUIRE(review.has_value());

  adapters::Registry registry;
  Engine engine(runtime, registry, testing::UntilIdleOptions());
  REQUIRE(engine.Run().ok());
  for (const BatchLine& line : *started) {
    CHECK(testing::CaseStatus(**store, line.started.id) == "completed");
  }
  CHECK(testing::CaseStatus(**store, single->id) == "completed");
  CHECK(db.QueryInt("SELECT COUNT(*) FROM tasks WHERE status = 'open'") == 2);
  CHECK(testing::VerifyHistory(**store).has_value());
}

WF_POSTGRES_TEST_CASE("two engines sharing one database carry out every step exactly once",
                      "[engine][runtime][concurrency]", db) {
  auto store = Store::Open(db.url(), 8);
  REQUIRE(store.has_value());
  Deployment deployment = TestDeployment();
  Runtime runtime(**store, deployment);
  REQUIRE(runtime.Deploy(testing::ProcedureFromYaml(kChain)).has_value());
  std::vector<nlohmann::json> data;
  for (int i = 0; i < 200; ++i) data.push_back({{"applicant", "p" + std::to_string(i)}});
  auto started = runtime.StartBatch("chain", data, "an.nguyen", 50);
  REQUIRE(started.has_value());
  REQUIRE(started->size() == 200);
  for (const BatchLine& line : *started) CHECK(line.outcome == BatchLine::Outcome::kStarted);

  adapters::Registry registry;
  EngineOptions a = testing::UntilIdleOptions(), b = testing::UntilIdleOptions();
  a.owner = "engine-a";
  b.owner = "engine-b";
  a.claim_batch = b.claim_batch = 16;
  Engine first(runtime, registry, a), second(runtime, registry, b);
  Status status_a, status_b;
  std::thread ta([&] { status_a = first.Run(); });
  std::thread tb([&] { status_b = second.Run(); });
  ta.join();
  tb.join();
  REQUIRE(status_a.ok());
  REQUIRE(status_b.ok());
  CHECK(first.stats().invoked + second.stats().invoked == 1000);
  for (const BatchLine& line : *started) {
    CHECK(testing::CaseStatus(**store, line.started.id) == "completed");
    std::set<std::string> steps;
    for (const auto& e : testing::CaseHistory(**store, line.started.id)) {
      if (e.action == history_action::kStepSucceeded) CHECK(steps.insert(e.step).second);
    }
    CHECK(steps.size() == 5);
  }
}

TEST_CASE("a second engine on one SQLite database is refused clearly",
          "[engine][runtime][sqlite]") {
  testing::TestDatabase db(Backend::kSqlite);
  auto store = Store::Open(db.url());
  REQUIRE(store.has_value());
  Deployment deployment = TestDeployment();
  Runtime runtime(**store, deployment);
  REQUIRE((*store)
              ->Transact([](StoreTx& tx) {
                auto got = tx.TryLockEngine("engine", "someone-else", Now(),
                                            Now() + std::chrono::minutes(5));
                if (!got) return got.error();
                REQUIRE(*got);
                return Status::Ok();
              })
              .ok());
  adapters::Registry registry;
  EngineOptions options = testing::UntilIdleOptions();
  options.lease = std::chrono::seconds(2);  // it waits out a dead engine's lock this long
  Engine engine(runtime, registry, options);
  Status status = engine.Run();
  CHECK(status.code() == ErrorCode::kConflict);
  CHECK_THAT(status.message(), Catch::Contains("one engine at a time"));
}

}  // namespace wf::engine
