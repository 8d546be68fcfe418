// The scheduler's last net (engine/failed_work.*, engine/scheduler.cpp) on both stores: a few
// poisoned cases among a few hundred good ones. No assertion depends on timing: the test polls
// the store with a deadline while the engine runs, then stops it.
#include "engine/failed_work.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <functional>
#include <future>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "adapters/adapter.hpp"
#include "adapters/asio.hpp"
#include "engine/runtime.hpp"
#include "engine/scheduler.hpp"
#include "tests/support/cases.hpp"
#include "tests/support/test_database.hpp"

namespace wf::engine {
namespace {

using adapters::StepOutcome;
using adapters::StepRequest;
using namespace std::chrono_literals;

// Long enough for the whole run on a loaded machine; only reached when the test fails.
constexpr auto kDeadline = 180s;
constexpr int kGoodCases = 300;

// One call to the department the case names; no retry backoff worth waiting for.
constexpr const char* kOneCall = R"(procedure: one-call
version: 1
title: One call to the department the case names
agency: test-agency
input:
  required: [department]
  properties:
    department: {type: string}
steps:
  route:
    next:
      - if: ${ .department == "throws" }
        goto: ask_throws
      - if: ${ .department == "escapes" }
        goto: ask_escapes
      - if: ${ .department == "unstorable" }
        goto: ask_unstorable
      - goto: ask_good
  ask_good:
    adapter: good
    call: {operation: look_up}
    save_as: answer
    next: done
  ask_throws:
    adapter: throws
    call: {operation: look_up}
    retry: {attempts: 2, backoff: 1s, max_backoff: 1s}
    next: done
  ask_escapes:
    adapter: escapes
    call: {operation: look_up}
    next: done
  ask_unstorable:
    adapter: unstorable
    call: {operation: look_up}
    next: done
  done: {end: completed}
)";

// Something thrown that is not a std::exception: it escapes every catch but the last net's.
struct NotAnException {
  int code = 42;
};

// A department whose every answer comes from `answer`, which may throw.
class FakeDepartment : public adapters::Adapter {
 public:
  using Answer = std::function<StepOutcome(const StepRequest&)>;
  explicit FakeDepartment(Answer answer) : answer_(std::move(answer)) {}
  Status Validate(const adapters::StepCall&) const override { return Status::Ok(); }
  asio::awaitable<StepOutcome> Invoke(StepRequest request) override { co_return answer_(request); }

 private:
  Answer answer_;
};

int64_t CountCases(Store& store, const std::string& status) {
  int64_t n = -1;
  Status read = store.Read([&](StoreTx& tx) {
    CaseFilter filter;
    filter.status = status;
    filter.limit = 0;
    auto cases = tx.ListCases(filter);
    if (!cases) return cases.error();
    n = static_cast<int64_t>(cases->size());
    return Status::Ok();
  });
  return read.ok() ? n : -1;
}

bool HasIncident(Store& store, const std::string& case_id) {
  return !testing::CaseIncidents(store, case_id).empty();
}

}  // namespace

WF_STORE_TEST_CASE("a deterministic failure becomes an incident and every other case completes",
                   "[engine][scheduler][failed_work]", db) {
  auto opened = Store::Open(db.url());
  INFO((opened ? "" : opened.error().message()));
  REQUIRE(opened.has_value());
  Store& store = **opened;
  auto deployment = LoadDeploymentText("agencies:\n  test-agency: {}\n", "test-config.yaml");
  REQUIRE(deployment.has_value());
  Runtime runtime(store, *deployment);
  REQUIRE(runtime.Deploy(testing::ProcedureFromYaml(kOneCall)).has_value());

  adapters::Registry registry;
  registry.Add("good", std::make_unique<FakeDepartment>([](const StepRequest& r) {
                 return StepOutcome::Done({{"case", r.case_id}});
               }));
  // A std::exception out of an adapter: a retryable failure, then an incident.
  registry.Add("throws", std::make_unique<FakeDepartment>([](const StepRequest&) -> StepOutcome {
                 throw std::runtime_error("the throws department's client is broken");
               }));
  // Anything else escapes carrying the row out, every time it is claimed.
  registry.Add("escapes", std::make_unique<FakeDepartment>(
                              [](const StepRequest&) -> StepOutcome { throw NotAnException{}; }));
  // A message that is not UTF-8 could not be stored in the case: the engine repairs it.
  registry.Add("unstorable", std::make_unique<FakeDepartment>([](const StepRequest&) {
                 return StepOutcome::Failed("bad bytes \xff\xfe in the answer");
               }));

  std::vector<std::string> poisoned;
  for (const char* department : {"throws", "escapes", "unstorable", "good"}) {
    auto started = runtime.StartCase("one-call", {{"department", department}}, "an.nguyen");
    REQUIRE(started.has_value());
    poisoned.push_back(started->id);
  }
  // The last one's stored state is damaged: no outcome can ever be committed to it. (A new
  // row_version, as every write of a case row makes: the runtime keeps the states it committed
  // by version, and would go on from its own last state otherwise.)
  db.Execute("UPDATE cases SET state = '{\"broken\": true}', row_version = row_version + 1"
             " WHERE id = '" + poisoned[3] + "'");
  auto batch = std::vector<nlohmann::json>(kGoodCases, nlohmann::json{{"department", "good"}});
  auto lines = runtime.StartBatch("one-call", batch, "an.nguyen", 100);
  REQUIRE(lines.has_value());
  for (const BatchLine& line : *lines) REQUIRE(line.outcome == BatchLine::Outcome::kStarted);

  // A short lease, so that a row whose carrying out threw comes back soon.
  EngineOptions options;
  options.lease = 2s;
  Engine engine(runtime, registry, options);
  auto run = std::async(std::launch::async, [&] { return engine.Run(); });
  const auto give_up = std::chrono::steady_clock::now() + kDeadline;
  auto done = [&] {
    if (CountCases(store, "completed") != kGoodCases) return false;
    for (const std::string& id : poisoned) {
      if (!HasIncident(store, id)) return false;
    }
    return true;
  };
  while (!done() && std::chrono::steady_clock::now() < give_up) std::this_thread::sleep_for(200ms);
  engine.Stop();
  REQUIRE(run.wait_for(kDeadline) == std::future_status::ready);
  CHECK(run.get().ok());

  CHECK(CountCases(store, "completed") == kGoodCases);
  std::vector<std::vector<IncidentRecord>> incidents;
  for (const std::string& id : poisoned) {
    INFO("case " << id);
    incidents.push_back(testing::CaseIncidents(store, id));
    CHECK(testing::CaseStatus(store, id) == "open");
    CHECK(testing::CaseWork(store, id).empty());  // nothing comes back
  }
  REQUIRE(incidents[0].size() == 1);
  CHECK_THAT(incidents[0][0].message, Catch::Contains("gave up after 2 attempts"));
  CHECK_THAT(incidents[0][0].message, Catch::Contains("the throws department's client is broken"));
  REQUIRE(incidents[1].size() == 1);
  CHECK(incidents[1][0].step == "ask_escapes");
  CHECK_THAT(incidents[1][0].message,
             Catch::Contains("the engine failed 3 times carrying out step 'ask_escapes'"));
  CHECK_THAT(incidents[1][0].message, Catch::Contains("not a std::exception"));
  REQUIRE(incidents[2].size() == 1);
  CHECK(incidents[2][0].step == "ask_unstorable");
  CHECK_THAT(incidents[2][0].message, Catch::StartsWith("bad bytes "));
  CHECK_THAT(incidents[2][0].message, Catch::EndsWith(" in the answer"));
  // The damaged case: its outcome could not be committed, nor its step failed; the row is
  // finished and an incident stands beside the case.
  REQUIRE(incidents[3].size() == 1);
  CHECK(incidents[3][0].step == "ask_good");
  CHECK_THAT(incidents[3][0].message,
             Catch::Contains("the engine could not commit the outcome of step 'ask_good'"));
  CHECK_THAT(incidents[3][0].message, Catch::Contains(poisoned[3] + ": "));
  CHECK_THAT(incidents[3][0].message, Catch::Contains("the case itself could not be changed"));
  // Every chain still verifies, the poisoned cases' included.
  auto verified = testing::VerifyHistory(store);
  INFO((verified ? "" : verified.error().message()));
  CHECK(verified.has_value());
}

TEST_CASE("failure text is valid UTF-8 and bounded", "[engine][failed_work]") {
  std::string text = FailureText("bad \xff bytes");
  CHECK(text == "bad \xef\xbf\xbd bytes");  // U+FFFD
  std::string cut = FailureText(std::string(5000, 'x'));
  CHECK(cut.size() < 1100);
  CHECK(FailureText("caf\xc3\xa9") == "caf\xc3\xa9");
}

}  // namespace wf::engine
