// The engine process (engine/scheduler.*) on both stores, against a scripted department that
// implements the real adapters::Adapter interface. No assertion depends on timing: the tests
// wait for what they need with a deadline, and the engine's outcomes are read from the store.

#include "engine/scheduler.hpp"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "adapters/adapter.hpp"
#include "adapters/asio.hpp"
#include "engine/history_action.hpp"
#include "engine/runtime.hpp"
#include "tests/support/cases.hpp"
#include "tests/support/test_database.hpp"

namespace wf::engine {
namespace {

using adapters::StepOutcome;
using adapters::StepRequest;
using namespace std::chrono_literals;

// Long enough for any step of these tests on a loaded machine; only reached when a test fails.
constexpr auto kDeadline = 60s;

// One call to the department `registry`, retried up to three times one second apart.
constexpr const char* kLookUp = R"(procedure: look-up
version: 1
title: One call to a department
agency: test-agency
input:
  required: [id]
  properties:
    id: {type: string}
steps:
  ask:
    adapter: registry
    call: {operation: look_up, id: "${ .id }"}
    save_as: answer
    retry: {attempts: 3, backoff: 1s, max_backoff: 1s}
    next: done
  done: {end: completed}
)";

// The same call to a department that answers 202 and may never call back: after a second the
// attempt counts as failed and the department is called again.
constexpr const char* kAcceptLookUp = R"(procedure: accept-look-up
version: 1
title: One call to a department that answers later
agency: test-agency
steps:
  ask:
    adapter: registry
    call: {operation: look_up}
    save_as: answer
    accept_timeout: 1s
    retry: {attempts: 2, backoff: 1s, max_backoff: 1s}
    next: done
  done: {end: completed}
)";

// The department: answers each call with what `answer` gives for it, and records every call.
// A held department takes calls but answers none of them until Release. Thread-safe.
class ScriptedDepartment : public adapters::Adapter {
 public:
  using Answer = std::function<StepOutcome(const StepRequest&)>;
  explicit ScriptedDepartment(Answer answer) : answer_(std::move(answer)) {}

  Status Validate(const adapters::StepCall&) const override { return Status::Ok(); }

  asio::awaitable<StepOutcome> Invoke(StepRequest request) override {
    {
      std::lock_guard lock(mutex_);
      calls_.push_back(request);
    }
    called_.notify_all();
    // A held call waits on a timer of the engine's own I/O thread, never blocking it.
    asio::steady_timer timer(co_await asio::this_coro::executor);
    const auto give_up = std::chrono::steady_clock::now() + kDeadline;
    while (held_ && std::chrono::steady_clock::now() < give_up) {
      timer.expires_after(10ms);
      co_await timer.async_wait(asio::use_awaitable);
    }
    co_return answer_(request);
  }

  void Hold() { held_ = true; }
  void Release() { held_ = false; }

  std::vector<StepRequest> calls() const {
    std::lock_guard lock(mutex_);
    return calls_;
  }
  // Waits until at least `n` calls came; false after kDeadline.
  bool WaitForCalls(size_t n) {
    std::unique_lock lock(mutex_);
    return called_.wait_for(lock, kDeadline, [&] { return calls_.size() >= n; });
  }

 private:
  Answer answer_;
  std::atomic<bool> held_{false};
  mutable std::mutex mutex_;
  std::condition_variable called_;
  std::vector<StepRequest> calls_;
};

// A store with the look-up procedure deployed, the department registered, and an engine.
class EngineRig {
 public:
  EngineRig(testing::TestDatabase& db, ScriptedDepartment::Answer answer) {
    auto opened = Store::Open(db.url());
    INFO((opened ? "" : opened.error().message()));
    REQUIRE(opened.has_value());
    store_ = std::move(*opened);
    auto deployment = LoadDeploymentText(
        "agencies:\n  test-agency:\n    members: {an.nguyen: [officer]}\n", "test-config.yaml");
    REQUIRE(deployment.has_value());
    deployment_ = std::move(*deployment);
    runtime_ = std::make_unique<Runtime>(*store_, deployment_);
    REQUIRE(runtime_->Deploy(testing::ProcedureFromYaml(kLookUp)).has_value());
    auto department = std::make_unique<ScriptedDepartment>(std::move(answer));
    department_ = department.get();
    registry_.Add("registry", std::move(department));
  }

  Store& store() { return *store_; }
  Runtime& runtime() { return *runtime_; }
  ScriptedDepartment& department() { return *department_; }
  const adapters::Registry& registry() const { return registry_; }

  std::string Start(const std::string& id) {
    auto started = runtime_->StartCase("look-up", {{"id", id}}, "an.nguyen");
    INFO((started ? "" : started.error().message()));
    REQUIRE(started.has_value());
    return started->id;
  }

  // Runs an engine until nothing is due within a few seconds (retry backoffs are waited for).
  EngineStats RunUntilIdle() {
    EngineOptions options;
    options.until_idle = true;
    options.idle_wait = 5s;
    Engine engine(*runtime_, registry_, options);
    Status ran = engine.Run();
    INFO(ran.message());
    REQUIRE(ran.ok());
    return engine.stats();
  }

 private:
  std::unique_ptr<Store> store_;
  Deployment deployment_;
  std::unique_ptr<Runtime> runtime_;
  adapters::Registry registry_;
  ScriptedDepartment* department_ = nullptr;
};

// Waits until `done` holds, polling; false after kDeadline.
bool Eventually(const std::function<bool()>& done) {
  const auto give_up = std::chrono::steady_clock::now() + kDeadline;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= give_up) return false;
    std::this_thread::sleep_for(20ms);
  }
  return true;
}

int Count(const std::vector<HistoryEvent>& history, const std::string& action) {
  int n = 0;
  for (const auto& e : history) n += e.action == action;
  return n;
}

}  // namespace

WF_STORE_TEST_CASE("the engine claims due work and calls the department once per step",
                   "[engine][scheduler]", db) {
  EngineRig rig(db, [](const StepRequest& r) {
    return StepOutcome::Done({{"found", r.fields["id"]}});
  });
  std::string a = rig.Start("A-1");
  std::string b = rig.Start("B-2");

  EngineStats stats = rig.RunUntilIdle();
  CHECK(stats.claimed == 2);
  CHECK(stats.invoked == 2);
  CHECK(stats.committed == 2);
  CHECK(stats.stale == 0);
  std::vector<StepRequest> calls = rig.department().calls();
  REQUIRE(calls.size() == 2);
  for (const StepRequest& call : calls) {
    INFO("call for " << call.case_id);
    CHECK((call.case_id == a || call.case_id == b));
    CHECK(call.step == "ask");
    CHECK(call.operation == "look_up");
    CHECK(call.attempt == 1);
    CHECK(call.fields == nlohmann::json{{"id", call.case_id == a ? "A-1" : "B-2"}});
    CHECK(call.idempotency_key == IdempotencyKey(call.case_id, "ask", call.activation));
  }
  for (const std::string& id : {a, b}) {
    CHECK(testing::CaseStatus(rig.store(), id) == "completed");
    CHECK(testing::CaseWork(rig.store(), id).empty());  // finished work is deleted
  }
  // A second run finds nothing to do and calls nobody.
  CHECK(rig.RunUntilIdle().invoked == 0);
  CHECK(rig.department().calls().size() == 2);
}

WF_STORE_TEST_CASE("a retry stops after the last attempt and the case waits in an incident",
                   "[engine][scheduler][retry]", db) {
  EngineRig rig(db, [](const StepRequest&) { return StepOutcome::Retry("registry: 503"); });
  std::string id = rig.Start("A-1");

  rig.RunUntilIdle();
  std::vector<StepRequest> calls = rig.department().calls();
  REQUIRE(calls.size() == 3);
  for (size_t i = 0; i < calls.size(); ++i) {
    CHECK(calls[i].attempt == static_cast<int>(i) + 1);
    CHECK(calls[i].idempotency_key == calls[0].idempotency_key);  // one activation throughout
  }
  std::vector<IncidentRecord> incidents = testing::CaseIncidents(rig.store(), id);
  REQUIRE(incidents.size() == 1);
  CHECK(incidents[0].status == IncidentStatus::kOpen);
  CHECK(incidents[0].step == "ask");
  CHECK_THAT(incidents[0].message, Catch::Contains("3 attempts"));
  CHECK_THAT(incidents[0].message, Catch::Contains("503"));
  CHECK(testing::CaseStatus(rig.store(), id) == "open");
  // Nothing is left scheduled: a later run makes no fourth attempt.
  CHECK(testing::CaseWork(rig.store(), id).empty());
  CHECK(rig.RunUntilIdle().invoked == 0);
}

WF_STORE_TEST_CASE("a retry that succeeds completes the case", "[engine][scheduler][retry]", db) {
  EngineRig rig(db, [](const StepRequest& r) {
    return r.attempt < 2 ? StepOutcome::Retry("registry: timeout") : StepOutcome::Done({});
  });
  std::string id = rig.Start("A-1");
  rig.RunUntilIdle();
  CHECK(rig.department().calls().size() == 2);
  CHECK(testing::CaseStatus(rig.store(), id) == "completed");
  CHECK(testing::CaseIncidents(rig.store(), id).empty());
}

WF_STORE_TEST_CASE("a department that fails permanently is called once and opens an incident",
                   "[engine][scheduler][retry]", db) {
  EngineRig rig(db, [](const StepRequest&) {
    return StepOutcome::Failed("registry look_up: 404 no such citizen");
  });
  std::string id = rig.Start("A-1");
  rig.RunUntilIdle();
  CHECK(rig.department().calls().size() == 1);
  std::vector<IncidentRecord> incidents = testing::CaseIncidents(rig.store(), id);
  REQUIRE(incidents.size() == 1);
  CHECK_THAT(incidents[0].message, Catch::Contains("404 no such citizen"));
  CHECK(testing::CaseStatus(rig.store(), id) == "open");
}

WF_STORE_TEST_CASE("a department missing from the registry is a permanent failure",
                   "[engine][scheduler]", db) {
  EngineRig rig(db, [](const StepRequest&) { return StepOutcome::Done({}); });
  adapters::Registry empty;
  std::string id = rig.Start("A-1");
  EngineOptions options;
  options.until_idle = true;
  options.idle_wait = 5s;
  Engine engine(rig.runtime(), empty, options);
  REQUIRE(engine.Run().ok());
  CHECK(engine.stats().invoked == 0);
  std::vector<IncidentRecord> incidents = testing::CaseIncidents(rig.store(), id);
  REQUIRE(incidents.size() == 1);
  CHECK_THAT(incidents[0].message, Catch::Contains("no department 'registry'"));
}

WF_STORE_TEST_CASE("an outcome that comes after its lease was lost changes nothing",
                   "[engine][scheduler][lease]", db) {
  EngineRig rig(db, [](const StepRequest&) { return StepOutcome::Done({{"late", true}}); });
  rig.department().Hold();
  std::string id = rig.Start("A-1");
  EngineOptions options;
  options.lease = 30s;
  Engine engine(rig.runtime(), rig.registry(), options);
  auto run = std::async(std::launch::async, [&] { return engine.Run(); });
  REQUIRE(rig.department().WaitForCalls(1));

  // While the department holds the call, the lease runs out (as another engine sees the clock)
  // and that engine takes the row: this engine's lease is gone.
  std::vector<WorkItem> taken;
  REQUIRE(rig.store()
              .Transact([&](StoreTx& tx) {
                auto got = tx.ClaimWork("thief", Now() + options.lease + 1s, 1h, 10);
                if (!got) return got.error();
                taken = std::move(*got);
                return Status::Ok();
              })
              .ok());
  REQUIRE(taken.size() == 1);
  CHECK(taken[0].case_id == id);

  rig.department().Release();
  REQUIRE(Eventually([&] { return engine.stats().stale == 1; }));
  engine.Stop();
  REQUIRE(run.wait_for(kDeadline) == std::future_status::ready);
  CHECK(run.get().ok());
  CHECK(engine.stats().committed == 0);
  // The case did not move, and the row is still the other engine's to carry out.
  CHECK(Count(testing::CaseHistory(rig.store(), id), history_action::kStepSucceeded) == 0);
  CHECK(testing::CaseStatus(rig.store(), id) == "open");
  std::vector<WorkItem> work = testing::CaseWork(rig.store(), id);
  REQUIRE(work.size() == 1);
  CHECK(work[0].state == WorkState::kLeased);
  CHECK(work[0].owner == "thief");
}

WF_STORE_TEST_CASE("a call longer than the lease keeps its lease and reaches the department once",
                   "[engine][scheduler][lease]", db) {
  EngineRig rig(db, [](const StepRequest&) { return StepOutcome::Done({{"slow", true}}); });
  rig.department().Hold();
  std::string id = rig.Start("A-1");
  EngineOptions options;
  options.lease = 3s;  // renewed every second
  Engine engine(rig.runtime(), rig.registry(), options);
  auto run = std::async(std::launch::async, [&] { return engine.Run(); });
  REQUIRE(rig.department().WaitForCalls(1));

  auto lease_until = [&] {
    std::vector<WorkItem> work = testing::CaseWork(rig.store(), id);
    REQUIRE(work.size() == 1);
    REQUIRE(work[0].lease_until.has_value());
    return *work[0].lease_until;
  };
  // The call outlasts the lease it started under, which is renewed meanwhile.
  const Timestamp first = lease_until();
  REQUIRE(Eventually([&] { return Now() > first + 1s && lease_until() > first + 1s; }));

  rig.department().Release();
  REQUIRE(Eventually([&] { return testing::CaseStatus(rig.store(), id) == "completed"; }));
  engine.Stop();
  REQUIRE(run.wait_for(kDeadline) == std::future_status::ready);
  CHECK(run.get().ok());
  CHECK(rig.department().calls().size() == 1);
  CHECK(engine.stats().committed == 1);
  CHECK(engine.stats().stale == 0);
  CHECK(engine.stats().lost == 0);
}

WF_STORE_TEST_CASE("an engine started after another died takes its work over at once",
                   "[engine][scheduler][liveness]", db) {
  EngineRig rig(db, [](const StepRequest&) { return StepOutcome::Done({{"ok", true}}); });
  std::string id = rig.Start("A-1");
  // The dead engine: registered, its token gone, its row leased for an hour and, on SQLite, the
  // engine lock for an hour too.
  REQUIRE(rig.store()
              .Transact([&](StoreTx& tx) {
                if (Status s = tx.RegisterEngine("dead-engine", Now()); !s.ok()) return s;
                auto claimed = tx.ClaimWork("dead-engine", Now(), 1h, 10);
                if (!claimed) return claimed.error();
                if (claimed->size() != 1) return Status::Internal("nothing claimed");
                if (db.is_postgres()) return Status::Ok();
                auto locked = tx.TryLockEngine("engine", "dead-engine", Now(), Now() + 1h);
                if (!locked) return locked.error();
                return *locked ? Status::Ok() : Status::Internal("not locked");
              })
              .ok());

  EngineStats stats = rig.RunUntilIdle();
  CHECK(testing::CaseStatus(rig.store(), id) == "completed");
  CHECK(rig.department().calls().size() == 1);
  CHECK(stats.committed == 1);
}

WF_STORE_TEST_CASE("stop lets the call in flight finish and commits it before returning",
                   "[engine][scheduler][stop]", db) {
  EngineRig rig(db, [](const StepRequest&) { return StepOutcome::Done({{"ok", true}}); });
  rig.department().Hold();
  std::string id = rig.Start("A-1");
  Engine engine(rig.runtime(), rig.registry(), EngineOptions{});  // runs until stopped
  auto run = std::async(std::launch::async, [&] { return engine.Run(); });
  REQUIRE(rig.department().WaitForCalls(1));

  engine.Stop();
  // Run waits for the call in flight: it has not returned while the department holds it.
  CHECK(run.wait_for(200ms) == std::future_status::timeout);
  rig.department().Release();
  REQUIRE(run.wait_for(kDeadline) == std::future_status::ready);
  CHECK(run.get().ok());
  CHECK(engine.stats().committed == 1);
  CHECK(testing::CaseStatus(rig.store(), id) == "completed");
}

WF_STORE_TEST_CASE("a 202 with no callback is called again after accept_timeout, same key",
                   "[engine][scheduler][accept]", db) {
  // The first attempt is accepted and its callback lost; the second answers at once.
  EngineRig rig(db, [](const StepRequest& r) {
    return r.attempt == 1 ? StepOutcome::Accepted() : StepOutcome::Done({{"found", true}});
  });
  REQUIRE(rig.runtime().Deploy(testing::ProcedureFromYaml(kAcceptLookUp)).has_value());
  auto started = rig.runtime().StartCase("accept-look-up", nlohmann::json::object(), "an.nguyen");
  REQUIRE(started.has_value());
  const std::string id = started->id;

  rig.RunUntilIdle();  // waits for the one-second accept timeout and the retry after it
  std::vector<StepRequest> calls = rig.department().calls();
  REQUIRE(calls.size() == 2);
  CHECK(calls[1].attempt == 2);
  CHECK(calls[1].idempotency_key == calls[0].idempotency_key);
  CHECK(testing::CaseStatus(rig.store(), id) == "completed");
  bool noted = false;
  for (const HistoryEvent& e : testing::CaseHistory(rig.store(), id)) {
    if (e.action == history_action::kStepFailed &&
        e.details.find("accepted the call but sent no result within 1s") != std::string::npos) {
      noted = true;
    }
  }
  CHECK(noted);
}

WF_STORE_TEST_CASE("a 202 never answered ends in an incident naming the department",
                   "[engine][scheduler][accept]", db) {
  EngineRig rig(db, [](const StepRequest&) { return StepOutcome::Accepted(); });
  REQUIRE(rig.runtime().Deploy(testing::ProcedureFromYaml(kAcceptLookUp)).has_value());
  auto started = rig.runtime().StartCase("accept-look-up", nlohmann::json::object(), "an.nguyen");
  REQUIRE(started.has_value());

  rig.RunUntilIdle();
  CHECK(rig.department().calls().size() == 2);
  std::vector<IncidentRecord> incidents = testing::CaseIncidents(rig.store(), started->id);
  REQUIRE(incidents.size() == 1);
  CHECK(incidents[0].message ==
        "gave up after 2 attempts: department 'registry' accepted the call but sent no result "
        "within 1s");
  CHECK(testing::CaseWork(rig.store(), started->id).empty());
}

WF_STORE_TEST_CASE("a callback that comes before the accept timeout cancels it",
                   "[engine][scheduler][accept]", db) {
  EngineRig rig(db, [](const StepRequest&) { return StepOutcome::Accepted(); });
  std::string id = rig.Start("A-1");  // no accept_timeout: the default week
  rig.RunUntilIdle();                 // the timer is a week away: the engine idles
  REQUIRE(rig.department().calls().size() == 1);
  std::vector<WorkItem> waiting = testing::CaseWork(rig.store(), id);
  REQUIRE(waiting.size() == 1);  // the accept timeout
  CHECK(waiting[0].run_at > Now() + 6 * 24h);

  REQUIRE(rig.runtime()
              .ApplyEvent(id, event::SignalReceived{"ask", {{"found", true}}}, "registry")
              .ok());
  CHECK(testing::CaseStatus(rig.store(), id) == "completed");
  CHECK(testing::CaseWork(rig.store(), id).empty());
}

}  // namespace wf::engine
