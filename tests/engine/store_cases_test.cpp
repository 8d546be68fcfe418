// New case ids (engine/store_cases.cpp): their form, and a taken id drawn again on both stores.
#include <catch2/catch.hpp>

#include <set>
#include <string>
#include <vector>

#include "engine/runtime.hpp"
#include "engine/store.hpp"
#include "tests/support/cases.hpp"
#include "tests/support/test_database.hpp"

namespace wf::engine {
namespace {

using namespace std::chrono_literals;

const Timestamp kT0 = FromMicros(1'767'225'600'000'000);  // 2026-01-01T00:00:00Z

constexpr const char* kWaits = R"(procedure: waits
version: 1
title: A case that waits for a signal
agency: test-agency
steps:
  papers: {wait: documents, next: done}
  done: {end: completed}
)";

CaseRecord NewCase(const std::string& id = "") {
  CaseRecord c;
  c.id = id;
  c.procedure = "waits";
  c.version = 1;
  c.agency = "test-agency";
  c.started_by = "an.nguyen";
  c.started_at = kT0;
  c.updated_at = kT0;
  return c;
}

Result<std::string> Insert(Store& store, const CaseRecord& record) {
  Result<std::string> id = Status::Internal("not run");
  Status status = store.Transact([&](StoreTx& tx) {
    id = tx.InsertCase(record);
    return id ? Status::Ok() : id.error();
  });
  if (!status.ok()) return status;
  return id;
}

}  // namespace

TEST_CASE("a case id is the start date and twenty random letters", "[engine][store][cases]") {
  const std::string allowed = "0123456789abcdefghjkmnpqrstvwxyz";
  std::set<std::string> seen;
  std::set<char> letters;
  for (int i = 0; i < 2000; ++i) {
    std::string id = NewCaseId(kT0);
    REQUIRE(id.size() == 9 + kCaseIdRandomChars);
    CHECK(id.rfind("20260101-", 0) == 0);
    for (char c : id.substr(9)) {
      REQUIRE(allowed.find(c) != std::string::npos);
      letters.insert(c);
    }
    seen.insert(id);
  }
  CHECK(seen.size() == 2000);
  CHECK(letters.size() == 32);  // every letter turns up in 40,000 draws
  // Ids sort by their start day.
  CHECK(NewCaseId(kT0) < NewCaseId(kT0 + 24h));
}

WF_STORE_TEST_CASE("a new case id that is taken is drawn again and the start succeeds",
                   "[engine][store][cases]", db) {
  auto opened = Store::Open(db.url());
  REQUIRE(opened.has_value());
  Store& store = **opened;
  auto deployment = LoadDeploymentText("agencies:\n  test-agency: {}\n", "test-config.yaml");
  REQUIRE(deployment.has_value());
  Runtime runtime(store, *deployment);
  REQUIRE(runtime.Deploy(testing::ProcedureFromYaml(kWaits)).has_value());

  // A case holds the id the source gives first; the second draw is fresh.
  auto first = runtime.StartCase("waits", nlohmann::json::object(), "an.nguyen");
  REQUIRE(first.has_value());
  const std::string taken = first->id;
  std::vector<std::string> drawn;
  store.SetCaseIdSource([&](Timestamp at) {
    drawn.push_back(drawn.empty() ? taken : NewCaseId(at));
    return drawn.back();
  });

  auto second = runtime.StartCase("waits", nlohmann::json::object(), "an.nguyen");
  INFO((second ? "" : second.error().message()));
  REQUIRE(second.has_value());
  REQUIRE(drawn.size() == 2);
  CHECK(second->id == drawn[1]);
  CHECK(second->id != taken);
  CHECK(testing::CaseStatus(store, taken) == "open");
  CHECK(testing::CaseStatus(store, second->id) == "open");
  CHECK(testing::CaseHistory(store, taken).size() ==
        testing::CaseHistory(store, second->id).size());

  // A source that only repeats itself gives up after a few draws, with a message.
  drawn.clear();
  store.SetCaseIdSource([&](Timestamp) {
    drawn.push_back(taken);
    return taken;
  });
  auto stuck = Insert(store, NewCase());
  REQUIRE_FALSE(stuck.has_value());
  CHECK(stuck.error().code() == ErrorCode::kInternal);
  CHECK_THAT(stuck.error().message(), Catch::Contains("were taken already"));
  CHECK(drawn.size() == 8);

  // An id given by the caller is never replaced: taken is a conflict.
  store.SetCaseIdSource(nullptr);
  auto given = Insert(store, NewCase(taken));
  REQUIRE_FALSE(given.has_value());
  CHECK(given.error().code() == ErrorCode::kConflict);
  auto fresh = Insert(store, NewCase());
  REQUIRE(fresh.has_value());
  CHECK(fresh->size() == 9 + kCaseIdRandomChars);
}

WF_STORE_TEST_CASE("a case inserted with the deferred writes goes in once, at its last values",
                   "[engine][store][cases]", db) {
  auto opened = Store::Open(db.url());
  REQUIRE(opened.has_value());
  Store& store = **opened;
  std::string id;
  REQUIRE(store
              .Transact([&](StoreTx& tx) {
                tx.DeferWrites();
                CaseRecord c = NewCase();
                c.status = "open";
                c.data = "{}";
                c.state = "{}";
                auto inserted = tx.InsertCaseDeferred(c);
                if (!inserted) return inserted.error();
                id = c.id = *inserted;
                c.row_version = 1;
                c.data = R"({"who": "An"})";
                c.status = "completed";
                c.ended_at = kT0 + 1h;
                if (Status s = tx.UpdateCase(c); !s.ok()) return s;
                CHECK(c.row_version == 2);
                // The history refers to the case: it is sent after the insert.
                auto event =
                    tx.AppendHistoryJson(id, "an.nguyen", "case.started", "", {{"data", {}}}, kT0);
                return event ? Status::Ok() : event.error();
              })
              .ok());
  REQUIRE(store
              .Read([&](StoreTx& tx) {
                auto c = tx.GetCase(id);
                REQUIRE(c.has_value());
                CHECK(c->status == "completed");
                CHECK(c->row_version == 2);
                CHECK(nlohmann::json::parse(c->data) == nlohmann::json{{"who", "An"}});
                CHECK(c->ended_at == kT0 + 1h);
                return Status::Ok();
              })
              .ok());
  if (db.is_postgres()) {
    // Written once: the only row version, the first line of the table's first page.
    CHECK(db.QueryInt("SELECT COUNT(*) FROM cases WHERE ctid = '(0,1)'") == 1);
  }

  // An id drawn here that another case holds by the end fails the transaction, worth a retry,
  // and leaves nothing behind.
  store.SetCaseIdSource([&](Timestamp) { return id; });
  Status taken = store.Transact([&](StoreTx& tx) {
    tx.DeferWrites();
    auto inserted = tx.InsertCaseDeferred(NewCase());
    if (!inserted) return inserted.error();
    auto event =
        tx.AppendHistoryJson(*inserted, "an.nguyen", "case.started", "", {{"data", {}}}, kT0);
    return event ? Status::Ok() : event.error();
  });
  store.SetCaseIdSource(nullptr);
  CHECK(taken.code() == (db.is_postgres() ? ErrorCode::kUnavailable : ErrorCode::kInternal));
  CHECK(db.QueryInt("SELECT COUNT(*) FROM cases") == 1);
  CHECK(db.QueryInt("SELECT COUNT(*) FROM history") == 1);
}

}  // namespace wf::engine
