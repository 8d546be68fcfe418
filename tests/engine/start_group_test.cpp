// Starts under an Idempotency-Key committed as a group (Runtime::StartCasesOnce, StartGroup), on
// both stores: each request gets the answer it would get alone, whatever its neighbours do.
#include <catch2/catch.hpp>

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>

#include "engine/runtime.hpp"
#include "engine/start_group.hpp"
#include "tests/support/cases.hpp"
#include "tests/support/test_database.hpp"

namespace wf::engine {
namespace {

constexpr const char* kPermit = R"(procedure: online-permit
version: 1
title: A permit applied for online
agency: ward-office
dedupe: ${ .applicant }
input:
  required: [applicant]
  properties:
    applicant: {type: string, pattern: "^[0-9]{4}$"}
steps:
  documents: {wait: documents, save_as: documents, next: done}
  done: {end: completed}
)";

Runtime::OnceRequest Permit(const std::string& applicant, const std::string& key) {
  return {"online-permit", {{"applicant", applicant}}, "api", "portal", key, nullptr};
}

// The cases of the store, each with its start time.
std::vector<CaseRecord> Cases(Store& store) {
  std::vector<CaseRecord> cases;
  REQUIRE(store
              .Read([&](StoreTx& tx) {
                CaseFilter all;
                all.limit = 0;
                auto rows = tx.ListCases(all);
                if (!rows) return rows.error();
                cases = std::move(*rows);
                return Status::Ok();
              })
              .ok());
  return cases;
}

// A fresh store with kPermit deployed.
struct PermitRig {
  std::unique_ptr<Store> store;
  Deployment deployment = Deployment::Empty();
  std::unique_ptr<Runtime> runtime;

  explicit PermitRig(const std::string& url) {
    auto opened = Store::Open(url);
    REQUIRE(opened.has_value());
    store = std::move(*opened);
    runtime = std::make_unique<Runtime>(*store, deployment);
    REQUIRE(runtime->Deploy(testing::ProcedureFromYaml(kPermit)).has_value());
  }
};

}  // namespace

WF_STORE_TEST_CASE("starts committed together each get the answer they would get alone",
                   "[engine][start_group]", db) {
  PermitRig rig(db.url());
  Store& store = *rig.store;
  Runtime& runtime = *rig.runtime;

  // Fresh requests only: one transaction, hence one start time for all of them.
  std::vector<Runtime::OnceRequest> fresh;
  for (int i = 0; i < 10; ++i) {
    fresh.push_back(Permit(std::to_string(2000 + i), "f" + std::to_string(i)));
  }
  auto together = runtime.StartCasesOnce(fresh);
  REQUIRE(together.size() == fresh.size());
  std::set<std::string> ids;
  for (const auto& outcome : together) {
    REQUIRE(outcome.has_value());
    CHECK(outcome->created);
    ids.insert(outcome->started.id);
  }
  CHECK(ids.size() == fresh.size());
  std::set<Timestamp> started_at;
  for (const CaseRecord& record : Cases(store)) started_at.insert(record.started_at);
  CHECK(started_at.size() == 1);

  auto earlier =
      runtime.StartCaseOnce("online-permit", {{"applicant", "0001"}}, "api", "portal", "old");
  REQUIRE(earlier.has_value());
  // A group where most requests fail, each its own way, between requests that succeed.
  std::vector<Runtime::OnceRequest> mixed = {
      Permit("1001", "k1"),   // 0: new
      Permit("0001", "old"),  // 1: a repeat of an earlier request: its case
      Permit("12", "k2"),     // 2: data the procedure refuses
      Permit("1003", "k3"),   // 3: new
      Permit("1003", "k3"),   // 4: the same request twice in one group: 3's case
      Permit("1001", "k5"),   // 5: the same applicant as 0 under another key: a duplicate
      Permit("0002", "old"),  // 6: an earlier key with other data
      Permit("1007", ""),     // 7: no key
      Permit("1008", "k8"),   // 8: new
  };
  auto outcomes = runtime.StartCasesOnce(mixed);
  REQUIRE(outcomes.size() == mixed.size());
  for (size_t i : {0, 3, 8}) {
    INFO(i);
    REQUIRE(outcomes[i].has_value());
    CHECK(outcomes[i]->created);
  }
  REQUIRE(outcomes[1].has_value());
  CHECK_FALSE(outcomes[1]->created);
  CHECK(outcomes[1]->started.id == earlier->started.id);
  REQUIRE_FALSE(outcomes[2].has_value());
  CHECK(outcomes[2].error().code() == ErrorCode::kInvalid);
  CHECK_THAT(outcomes[2].error().message(), Catch::Contains("$.applicant"));
  REQUIRE(outcomes[4].has_value());
  CHECK_FALSE(outcomes[4]->created);
  CHECK(outcomes[4]->started.id == outcomes[3]->started.id);
  REQUIRE_FALSE(outcomes[5].has_value());
  CHECK(outcomes[5].error().code() == ErrorCode::kConflict);
  CHECK_THAT(outcomes[5].error().message(), Catch::Contains(outcomes[0]->started.id));
  REQUIRE_FALSE(outcomes[6].has_value());
  CHECK(outcomes[6].error().code() == ErrorCode::kInvalid);
  CHECK_THAT(outcomes[6].error().message(), Catch::Contains("Idempotency-Key already used"));
  REQUIRE_FALSE(outcomes[7].has_value());
  CHECK(outcomes[7].error().code() == ErrorCode::kUsage);
  CHECK(Cases(store).size() == fresh.size() + 4);  // the earlier one, 0, 3 and 8
  CHECK(testing::VerifyHistory(store).has_value());
}

WF_STORE_TEST_CASE("starts queued while the committer is busy go in groups, each answered once",
                   "[engine][start_group]", db) {
  PermitRig rig(db.url());
  Store& store = *rig.store;
  Runtime& runtime = *rig.runtime;

  boost::asio::thread_pool pool(1);
  StartGroup group(
      runtime, [&](std::function<void()> job) { boost::asio::post(pool, std::move(job)); }, 1, 32);
  std::mutex mutex;
  std::condition_variable changed;
  bool holding = false;  // the first start's answer is holding its committer
  bool open = false;     // every other start is queued
  constexpr int kStarts = 50;
  std::vector<std::optional<Result<Runtime::StartedOnce>>> outcomes(2 * kStarts);
  int answered = 0;
  int twice = 0;  // answers to a start already answered: none
  auto submit = [&](int slot, int i) {
    group.Submit({Permit(std::to_string(3000 + i), "q" + std::to_string(i)), std::nullopt},
                 [&, slot](Result<Runtime::StartedOnce> outcome) {
                   std::unique_lock lock(mutex);
                   if (outcomes[slot].has_value()) ++twice;
                   outcomes[slot] = std::move(outcome);
                   ++answered;
                   if (slot == 0) {
                     holding = true;
                     changed.notify_all();
                     changed.wait(lock, [&] { return open; });
                   }
                   changed.notify_all();
                 });
  };
  auto wait_for = [&](int count) {
    std::unique_lock lock(mutex);
    REQUIRE(changed.wait_for(lock, std::chrono::minutes(2), [&] { return answered == count; }));
  };
  // The first start finds the committer free: its thread commits it, and its answer holds that
  // committer until the others are queued, so the groups are known: 1, then 32 and 17.
  std::thread first([&] { submit(0, 0); });
  {
    std::unique_lock lock(mutex);
    REQUIRE(changed.wait_for(lock, std::chrono::minutes(2), [&] { return holding; }));
  }
  for (int i = 1; i < kStarts; ++i) submit(i, i);
  {
    std::lock_guard lock(mutex);
    open = true;
    changed.notify_all();
  }
  first.join();
  wait_for(kStarts);
  std::set<Timestamp> started_at;
  for (const CaseRecord& record : Cases(store)) started_at.insert(record.started_at);
  CHECK(started_at.size() == 3);
  // The same requests again: each answered with its case, nothing started.
  for (int i = 0; i < kStarts; ++i) submit(kStarts + i, i);
  wait_for(2 * kStarts);
  for (int i = 0; i < kStarts; ++i) {
    INFO(i);
    REQUIRE(outcomes[i]->has_value());
    REQUIRE(outcomes[kStarts + i]->has_value());
    CHECK((*outcomes[i])->created);
    CHECK_FALSE((*outcomes[kStarts + i])->created);
    CHECK((*outcomes[kStarts + i])->started.id == (*outcomes[i])->started.id);
  }
  CHECK(Cases(store).size() == kStarts);
  CHECK(twice == 0);
  pool.join();
}

}  // namespace wf::engine
