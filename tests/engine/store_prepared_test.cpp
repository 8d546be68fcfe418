// Prepared statements on PostgreSQL (engine/store_prepared.cpp).
#include <catch2/catch.hpp>

#include "engine/store.hpp"
#include "engine/store_internal.hpp"
#include "tests/support/test_database.hpp"

namespace wf::engine {
namespace {

TEST_CASE("named parameters become numbered ones, quotes and casts left alone", "[engine][store]") {
  detail::NamedToNumbered n = detail::Numbered(
      "SELECT :a, ':b', \"x:y\", CAST(:a AS text), x::int, :b_2 FROM t WHERE c = :a");
  CHECK(n.sql == "SELECT $1, ':b', \"x:y\", CAST($1 AS text), x::int, $2 FROM t WHERE c = $1");
  CHECK(n.names == std::vector<std::string>{"a", "b_2"});
  CHECK(detail::Numbered("SELECT 1").names.empty());
}

CaseRecord NewCase(int n) {
  CaseRecord c;
  c.procedure = "p";
  c.version = 1;
  c.data = R"({"n":)" + std::to_string(n) + "}";
  c.state = R"({"tokens":[]})";
  c.agency = "a";
  c.started_by = "t";
  c.started_at = c.updated_at = FromMicros(1'767'225'600'000'000);
  return c;
}

Result<CaseRecord> Read(Store& store, const std::string& id) {
  std::optional<CaseRecord> found;
  Status status = store.Read([&](StoreTx& tx) {
    auto got = tx.GetCase(id);
    if (!got) return got.error();
    found = *got;
    return Status::Ok();
  });
  if (!status.ok()) return status;
  return *found;
}

// The same statements again and again (prepared from their second run), across a connection
// the server closed (a new one has prepared nothing) and past the per-connection bound.
WF_POSTGRES_TEST_CASE("prepared statements survive a new connection and many texts",
                      "[engine][store]", db) {
  auto opened = Store::Open(db.url(), 1);
  REQUIRE(opened.has_value());
  Store& store = **opened;
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) {
    std::string id;
    REQUIRE(store
                .Transact([&](StoreTx& tx) {
                  auto inserted = tx.InsertCase(NewCase(i));
                  if (!inserted) return inserted.error();
                  id = *inserted;
                  return Status::Ok();
                })
                .ok());
    ids.push_back(id);
  }
  for (int round = 0; round < 3; ++round) {
    for (size_t i = 0; i < ids.size(); ++i) {
      auto got = Read(store, ids[i]);
      REQUIRE(got.has_value());
      CHECK(got->data == R"({"n": )" + std::to_string(i) + "}");
    }
  }
  CHECK(db.TerminateOtherConnections() >= 1);
  // The first use of the dead connection may report it lost; the store then connects anew.
  auto again = Read(store, ids[0]);
  if (!again) {
    CHECK(again.error().code() == ErrorCode::kUnavailable);
    again = Read(store, ids[0]);
  }
  REQUIRE(again.has_value());
  for (int round = 0; round < 3; ++round) REQUIRE(Read(store, ids[1]).has_value());
  // More distinct texts than a connection prepares, pipelined: multi-row INSERTs of every
  // length up to 300 rows, each twice.
  int64_t rows = 0;
  for (int n = 1; n <= 300; ++n) {
    for (int k = 0; k < 2; ++k) {
      std::vector<NewWork> work;
      for (int i = 0; i < n; ++i) {
        work.push_back(NewWork{ids[0], "event", "s", i, R"({"i":)" + std::to_string(i) + "}",
                               FromMicros(1'767'225'600'000'000)});
      }
      Status status = store.Transact([&](StoreTx& tx) {
        tx.DeferWrites();
        return tx.InsertWork(work);
      });
      INFO(status.message());
      REQUIRE(status.ok());
      rows += n;
    }
  }
  CHECK(db.QueryInt("SELECT COUNT(*) FROM work") == rows);
}

}  // namespace
}  // namespace wf::engine
