// The sql adapter against a fresh SQLite file, and against a fresh PostgreSQL database when
// WF_TEST_PG_URL is set (tests/support/test_database.hpp; skipped otherwise).

#include <soci/postgresql/soci-postgresql.h>
#include <soci/soci.h>
#include <soci/sqlite3/soci-sqlite3.h>

#include <catch2/catch.hpp>
#include <optional>
#include <string>

#include "adapters/asio.hpp"
#include "adapters/sql.hpp"
#include "tests/support/test_database.hpp"

namespace {

using wf::adapters::SqlAdapter;
using wf::adapters::StepCall;
using wf::adapters::StepOutcome;
using wf::adapters::StepRequest;
using Kind = StepOutcome::Kind;

// Runs one Invoke to its end on an io_context of the test's thread.
StepOutcome Call(SqlAdapter& adapter, std::string operation, nlohmann::json fields,
                 std::string key = "case-1/step/1") {
  asio::io_context io;
  StepRequest request;
  request.case_id = "case-1";
  request.step = "step";
  request.idempotency_key = std::move(key);
  request.operation = std::move(operation);
  request.fields = std::move(fields);
  std::optional<StepOutcome> outcome;
  asio::co_spawn(
      io,
      [](SqlAdapter* a, StepRequest r) -> asio::awaitable<StepOutcome> {
        co_return co_await a->Invoke(std::move(r));
      }(&adapter, std::move(request)),
      [&outcome](std::exception_ptr error, StepOutcome result) {
        if (!error) outcome = std::move(result);
      });
  io.run();
  REQUIRE(outcome.has_value());
  return *outcome;
}

const nlohmann::json kQueries = {
    {"get_citizen", "SELECT id, name, born, height, notes FROM citizens WHERE id = :citizen_id"},
    {"find_by_name", "SELECT id FROM citizens WHERE name = :name -- a :comment is no parameter"},
    {"count", "SELECT count(*) AS n FROM citizens"},
    {"record_birth",
     "INSERT INTO births (idem, child, weight, details) "
     "VALUES (:idempotency_key, :child, :weight, :details) ON CONFLICT (idem) DO NOTHING"},
    {"rename", "UPDATE citizens SET name = :name WHERE id = :citizen_id OR :citizen_id = 'all'"},
    {"broken", "SELEC id FROM citizens"},
    {"duplicate", "INSERT INTO citizens (id, name) VALUES (:citizen_id, :name)"},
};

// The shared checks, for either database. `sql` is a session on the department's database.
void ExerciseDatabase(soci::session& sql, const std::string& url) {
  sql << "CREATE TABLE citizens (id VARCHAR(20) PRIMARY KEY, name VARCHAR(100), born DATE, "
         "height DOUBLE PRECISION, notes TEXT)";
  sql << "CREATE TABLE births (idem VARCHAR(200) PRIMARY KEY, child VARCHAR(100), "
         "weight DOUBLE PRECISION, details TEXT)";
  sql << "INSERT INTO citizens VALUES ('100000000001', 'Anna Nowak', '1990-04-01', 1.72, NULL)";
  sql << "INSERT INTO citizens VALUES ('100000000002', 'O''Brien', '1985-12-31', 1.80, 'x')";

  auto made = SqlAdapter::Create("population-db", {{"url", url}, {"queries", kQueries}});
  REQUIRE(made);
  SqlAdapter& adapter = **made;

  SECTION("a select binds its parameter and returns typed rows") {
    StepOutcome out = Call(adapter, "get_citizen", {{"citizen_id", "100000000001"}});
    INFO(out.message);
    REQUIRE(out.kind == Kind::kDone);
    CHECK(out.result["count"] == 1);
    REQUIRE(out.result["rows"].size() == 1);
    const nlohmann::json& row = out.result["rows"][0];
    CHECK(row["id"] == "100000000001");
    CHECK(row["name"] == "Anna Nowak");
    CHECK(row["born"] == "1990-04-01");
    CHECK(row["height"].get<double>() == Approx(1.72));
    CHECK(row["notes"].is_null());

    StepOutcome none = Call(adapter, "get_citizen", {{"citizen_id", "999"}});
    REQUIRE(none.kind == Kind::kDone);
    CHECK(none.result == nlohmann::json({{"rows", nlohmann::json::array()}, {"count", 0}}));
  }

  SECTION("a quote and an injection attempt are bound as values, not pasted") {
    StepOutcome quoted = Call(adapter, "find_by_name", {{"name", "O'Brien"}});
    INFO(quoted.message);
    REQUIRE(quoted.kind == Kind::kDone);
    REQUIRE(quoted.result["count"] == 1);
    CHECK(quoted.result["rows"][0]["id"] == "100000000002");

    StepOutcome attack =
        Call(adapter, "get_citizen", {{"citizen_id", "1'; DROP TABLE citizens; --"}});
    INFO(attack.message);
    REQUIRE(attack.kind == Kind::kDone);
    CHECK(attack.result["count"] == 0);
    int left = 0;
    sql << "SELECT count(*) FROM citizens", soci::into(left);
    CHECK(left == 2);
  }

  SECTION("a missing field fails the call and names the field") {
    StepOutcome out = Call(adapter, "get_citizen", {{"citizen", "100000000001"}});
    CHECK(out.kind == Kind::kFailed);
    CHECK_THAT(out.message, Catch::StartsWith("population-db get_citizen: "));
    CHECK_THAT(out.message, Catch::Contains("'citizen_id'"));
  }

  SECTION("an unknown operation fails at run time and at validation") {
    StepOutcome out = Call(adapter, "delete_everything", nlohmann::json::object());
    CHECK(out.kind == Kind::kFailed);
    CHECK_THAT(out.message, Catch::Contains("unknown operation 'delete_everything'"));

    wf::Status unknown = adapter.Validate(StepCall{"population-db", {{"operation", "nope"}}});
    CHECK(unknown.code() == wf::ErrorCode::kInvalid);
    CHECK_THAT(unknown.message(), Catch::StartsWith("department 'population-db'"));
    CHECK_THAT(unknown.message(), Catch::Contains("get_citizen"));
    CHECK(adapter.Validate(StepCall{"population-db", {{"citizen_id", "1"}}}).code() ==
          wf::ErrorCode::kInvalid);
    CHECK(adapter.Validate(StepCall{"population-db", {{"operation", 7}}}).code() ==
          wf::ErrorCode::kInvalid);
    CHECK(adapter.Validate(StepCall{"population-db", {{"operation", "get_citizen"}}}).ok());
  }

  SECTION("an insert binds the idempotency key and a retry changes nothing") {
    nlohmann::json fields = {
        {"child", "Ewa"}, {"weight", 3.25}, {"details", {{"hospital", "St. Anne"}, {"twins", false}}}};
    StepOutcome first = Call(adapter, "record_birth", fields, "case-9/register/1");
    INFO(first.message);
    REQUIRE(first.kind == Kind::kDone);
    CHECK(first.result == nlohmann::json({{"rows", nlohmann::json::array()}, {"count", 1}}));
    StepOutcome again = Call(adapter, "record_birth", fields, "case-9/register/1");
    REQUIRE(again.kind == Kind::kDone);
    CHECK(again.result["count"] == 0);

    std::string idem, child, details;
    double weight = 0;
    sql << "SELECT idem, child, weight, details FROM births", soci::into(idem), soci::into(child),
        soci::into(weight), soci::into(details);
    CHECK(idem == "case-9/register/1");
    CHECK(child == "Ewa");
    CHECK(weight == Approx(3.25));
    CHECK(nlohmann::json::parse(details) ==
          nlohmann::json({{"hospital", "St. Anne"}, {"twins", false}}));
  }

  SECTION("an update reports the rows it changed; a repeated parameter binds every time") {
    StepOutcome out = Call(adapter, "rename", {{"citizen_id", "all"}, {"name", "X"}});
    INFO(out.message);
    REQUIRE(out.kind == Kind::kDone);
    CHECK(out.result["count"] == 2);
    StepOutcome one = Call(adapter, "rename", {{"citizen_id", "100000000002"}, {"name", "Y"}});
    REQUIRE(one.kind == Kind::kDone);
    CHECK(one.result["count"] == 1);
  }

  SECTION("a SQL error or a constraint violation fails with the database's message") {
    StepOutcome syntax = Call(adapter, "broken", nlohmann::json::object());
    CHECK(syntax.kind == Kind::kFailed);
    CHECK_THAT(syntax.message, Catch::StartsWith("population-db broken: "));
    CHECK_THAT(syntax.message, Catch::Contains("SELEC"));

    StepOutcome duplicate =
        Call(adapter, "duplicate", {{"citizen_id", "100000000001"}, {"name", "Twin"}});
    CHECK(duplicate.kind == Kind::kFailed);
    CHECK(duplicate.message.size() > std::string("population-db duplicate: ").size());

    // The session that failed is still usable.
    StepOutcome after = Call(adapter, "count", nlohmann::json::object());
    REQUIRE(after.kind == Kind::kDone);
    CHECK(after.result["rows"][0]["n"] == 2);
  }
}

}  // namespace

TEST_CASE("the sql adapter queries a SQLite department database", "[adapters][sql][sqlite]") {
  wf::testing::TestDatabase db(wf::engine::Backend::kSqlite);
  soci::session sql(soci::sqlite3, db.name());
  ExerciseDatabase(sql, db.url());
}

TEST_CASE("the sql adapter reads its settings", "[adapters][sql]") {
  const nlohmann::json queries = {{"q", "SELECT 1"}};
  CHECK(SqlAdapter::Create("d", {{"url", "sqlite:/tmp/x.db"}, {"queries", queries}}));
  auto no_url = SqlAdapter::Create("d", {{"queries", queries}});
  REQUIRE_FALSE(no_url);
  CHECK_THAT(no_url.error().message(), Catch::StartsWith("department 'd': `url`"));
  CHECK_FALSE(SqlAdapter::Create("d", {{"url", "mysql://x"}, {"queries", queries}}));
  CHECK_FALSE(SqlAdapter::Create("d", {{"url", "sqlite:x.db"}}));
  CHECK_FALSE(SqlAdapter::Create("d", {{"url", "sqlite:x.db"}, {"queries", {{"q", 3}}}}));
  CHECK_FALSE(
      SqlAdapter::Create("d", {{"url", "sqlite:x.db"}, {"queries", queries}, {"pool_size", 0}}));
  CHECK_FALSE(
      SqlAdapter::Create("d", {{"url", "sqlite:x.db"}, {"queries", queries}, {"colour", 1}}));
  auto unset = SqlAdapter::Create(
      "d", {{"url", "postgresql://u:${env.WF_SQL_TEST_SURELY_UNSET}@h/db"}, {"queries", queries}});
  REQUIRE_FALSE(unset);
  CHECK_THAT(unset.error().message(), Catch::Contains("WF_SQL_TEST_SURELY_UNSET"));
}

TEST_CASE("a query's parameters are found outside quotes and comments", "[adapters][sql]") {
  auto q = SqlAdapter::ParseQuery(
      "SELECT ':no', \"a:b\", x::int /* :c */ FROM t WHERE a = :a AND b = :b -- :d\n OR a = :a");
  REQUIRE(q);
  CHECK(q->occurrences == std::vector<std::string>{"a", "b", "a"});
  CHECK(q->sql.find(":c") == std::string::npos);
  CHECK(q->sql.find("x::int") != std::string::npos);
  CHECK(q->sql.find(":wf_p2") != std::string::npos);
  CHECK_FALSE(SqlAdapter::ParseQuery("SELECT 'open"));
  CHECK_FALSE(SqlAdapter::ParseQuery("SELECT 1 /* open"));
}

TEST_CASE("a postgresql URL becomes a libpq conninfo", "[adapters][sql]") {
  auto info = SqlAdapter::PostgresConnInfo(
      "postgresql://reg%40x:p'w@db.example:6432/population?sslmode=require");
  REQUIRE(info);
  CHECK(*info ==
        "user='reg@x' password='p\\'w' host='db.example' port='6432' dbname='population' "
        "sslmode='require' connect_timeout='10'");
  CHECK(SqlAdapter::PostgresConnInfo("postgres://[::1]/d?connect_timeout=3").value() ==
        "host='::1' dbname='d' connect_timeout='3'");
  CHECK_FALSE(SqlAdapter::PostgresConnInfo("postgresql://h/d?x=%zz"));
}

TEST_CASE("an unreachable database is a retry", "[adapters][sql]") {
  auto made = SqlAdapter::Create(
      "d", {{"url", "sqlite:/nonexistent-dir-wf/sub/x.db"}, {"queries", {{"q", "SELECT 1"}}}});
  REQUIRE(made);
  StepOutcome out = Call(**made, "q", nlohmann::json::object());
  CHECK(out.kind == Kind::kRetry);
  CHECK_THAT(out.message, Catch::StartsWith("d q: "));

  // Nothing listens on port 1: refused at once, no password in the message.
  auto pg = SqlAdapter::Create(
      "d", {{"url", "postgresql://u:secret@127.0.0.1:1/x"}, {"queries", {{"q", "SELECT 1"}}}});
  REQUIRE(pg);
  StepOutcome refused = Call(**pg, "q", nlohmann::json::object());
  CHECK(refused.kind == Kind::kRetry);
  CHECK_THAT(refused.message, Catch::Contains("cannot connect to postgresql://u:***@127.0.0.1:1/x"));
  CHECK_THAT(refused.message, !Catch::Contains("secret"));
}

TEST_CASE("the sql adapter queries a PostgreSQL department database",
          "[adapters][sql][postgresql]") {
  if (!wf::testing::HavePostgres()) return;
  wf::testing::TestDatabase db(wf::engine::Backend::kPostgres);
  auto conninfo = SqlAdapter::PostgresConnInfo(db.url());
  REQUIRE(conninfo);
  soci::session sql(soci::postgresql, *conninfo);
  ExerciseDatabase(sql, db.url());
}
