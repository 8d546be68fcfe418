// What differs between SQLite and PostgreSQL (engine/dialect.*): the statements each gets, and
// the migrations applied statement by statement on a fresh database of each kind.

#include "engine/dialect.hpp"

#include <set>

#include <catch2/catch.hpp>

#include "engine/store.hpp"
#include "tests/support/cases.hpp"
#include "tests/support/test_database.hpp"

namespace wf::engine {
namespace {

const Dialect kSqlite(Backend::kSqlite);
const Dialect kPostgres(Backend::kPostgres);

bool Contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// Applies every migration as Store::Migrate does, without the store: each in a transaction of
// its own together with its wf_schema row.
void ApplyMigrations(testing::TestDatabase& db, const Dialect& dialect) {
  db.Execute(dialect.CreateSchemaTableSql());
  for (const Migration& m : dialect.Migrations()) {
    INFO("migration " << m.version << " (" << m.description << ")");
    db.Execute(dialect.BeginSql(true));
    for (const std::string& statement : m.statements) {
      INFO(statement);
      REQUIRE_NOTHROW(db.Execute(statement));
    }
    db.Execute("INSERT INTO wf_schema (version, description, applied_at) VALUES (" +
               std::to_string(m.version) + ", 'by dialect_test', 0)");
    db.Execute("COMMIT");
  }
}

}  // namespace

TEST_CASE("SQLite takes its write lock when a write transaction begins; PostgreSQL reads read-only",
          "[engine][dialect]") {
  CHECK(kSqlite.BeginSql(true) == "BEGIN IMMEDIATE");
  CHECK(kSqlite.BeginSql(false) == "BEGIN DEFERRED");
  CHECK(kPostgres.BeginSql(true) == "BEGIN");
  CHECK(kPostgres.BeginSql(false) == "BEGIN READ ONLY");
}

TEST_CASE("only PostgreSQL takes advisory locks, sends wake-ups and casts JSON to text",
          "[engine][dialect]") {
  CHECK(kSqlite.AdvisoryLockSql().empty());
  CHECK(kPostgres.AdvisoryLockSql() == "SELECT pg_advisory_xact_lock(:key)");
  CHECK(kSqlite.NotifyWorkSql().empty());
  CHECK(kPostgres.NotifyWorkSql() == "NOTIFY wf_work");
  CHECK(kSqlite.JsonText("w.payload") == "w.payload");
  CHECK(kPostgres.JsonText("w.payload") == "w.payload::text");
  CHECK(Contains(kPostgres.WorkColumns("w"), "w.payload::text"));
  CHECK(kSqlite.WorkColumns("").rfind("case_id, id, kind,", 0) == 0);
  CHECK(kPostgres.is_postgres());
  CHECK_FALSE(kSqlite.is_postgres());
}

TEST_CASE("PostgreSQL claims work skipping rows other claimers hold; both bind the same names",
          "[engine][dialect]") {
  const std::string pg = kPostgres.ClaimWorkSql();
  const std::string lite = kSqlite.ClaimWorkSql();
  CHECK(Contains(pg, "FOR UPDATE SKIP LOCKED"));
  CHECK_FALSE(Contains(lite, "SKIP LOCKED"));  // BEGIN IMMEDIATE excludes other writers instead
  for (const char* bind : {":owner", ":lease_until", ":lease_run_at", ":now", ":limit"}) {
    INFO(bind);
    CHECK(Contains(pg, bind));
    CHECK(Contains(lite, bind));
  }
}

TEST_CASE("both databases get the same migrations, numbered upwards, the latest last",
          "[engine][dialect][migrations]") {
  std::vector<Migration> lite = kSqlite.Migrations();
  std::vector<Migration> pg = kPostgres.Migrations();
  REQUIRE_FALSE(lite.empty());
  REQUIRE(lite.size() == pg.size());
  std::set<int> versions;
  for (size_t i = 0; i < lite.size(); ++i) {
    CHECK(lite[i].version == pg[i].version);
    CHECK(lite[i].description == pg[i].description);
    CHECK_FALSE(lite[i].statements.empty());
    if (i > 0) CHECK(lite[i].version > lite[i - 1].version);
    versions.insert(lite[i].version);
  }
  CHECK(versions.size() == lite.size());
  CHECK(kSqlite.LatestSchemaVersion() == lite.back().version);
  CHECK(kPostgres.LatestSchemaVersion() == pg.back().version);
  // The schema differs where the dialect says it does.
  auto joined = [](const Migration& m) {
    std::string all;
    for (const std::string& s : m.statements) all += s + ";\n";
    return all;
  };
  CHECK(Contains(joined(pg[0]), "JSONB"));
  CHECK(Contains(joined(pg[0]), "BIGSERIAL"));
  CHECK_FALSE(Contains(joined(lite[0]), "JSONB"));
  CHECK(Contains(joined(lite[0]), "AUTOINCREMENT"));
}

TEST_CASE("advisory lock keys are stable, distinct and fit a signed BIGINT", "[engine][dialect]") {
  CHECK(AdvisoryKey("wf_schema") == AdvisoryKey("wf_schema"));
  CHECK(AdvisoryKey("wf_schema") != AdvisoryKey("wf_schemb"));
  for (const char* name : {"", "wf_schema", "engine", "a very long name for a lock"}) {
    CHECK(AdvisoryKey(name) >= 0);
  }
  // FNV-1a of the empty string, shifted into 63 bits.
  CHECK(AdvisoryKey("") == static_cast<std::int64_t>(14695981039346656037ull >> 1));
}

WF_STORE_TEST_CASE("the migrations apply on a fresh database and the store finds nothing to redo",
                   "[engine][dialect][migrations]", db) {
  const Dialect dialect(db.backend());
  ApplyMigrations(db, dialect);
  // Creating the bookkeeping table again is harmless.
  REQUIRE_NOTHROW(db.Execute(dialect.CreateSchemaTableSql()));
  for (const char* table : {"procedures", "cases", "work", "tasks", "incidents", "evidence",
                            "history", "archived_chains", "refusals"}) {
    INFO(table);
    CHECK(db.QueryInt(std::string("SELECT COUNT(*) FROM ") + table) == 0);
  }

  // The store sees every version recorded and applies nothing again (a second CREATE TABLE
  // would fail the open).
  auto store = Store::Open(db.url());
  INFO((store ? "" : store.error().message()));
  REQUIRE(store.has_value());
  CHECK((*store)->SchemaVersion().value() == dialect.LatestSchemaVersion());
  CHECK((*store)->Migrate().value() == 0);
  CHECK(db.QueryInt("SELECT COUNT(*) FROM wf_schema") ==
        static_cast<long long>(dialect.Migrations().size()));
  CHECK(db.QueryInt("SELECT COUNT(*) FROM wf_schema WHERE description = 'by dialect_test'") ==
        static_cast<long long>(dialect.Migrations().size()));
}

WF_STORE_TEST_CASE("a version 5 database is upgraded in place and its history still verifies",
                   "[engine][dialect][migrations]", db) {
  const Dialect dialect(db.backend());
  db.Execute(dialect.CreateSchemaTableSql());
  for (const Migration& m : dialect.Migrations()) {
    if (m.version > 5) break;
    db.Execute(dialect.BeginSql(true));
    for (const std::string& statement : m.statements) db.Execute(statement);
    db.Execute("INSERT INTO wf_schema (version, description, applied_at) VALUES (" +
               std::to_string(m.version) + ", 'before issue 16', 0)");
    db.Execute("COMMIT");
  }
  // A case with a chain written by an older wf: a clerk's name given with --as, then the engine.
  db.Execute(
      "INSERT INTO cases (id, procedure, version, status, data, state, started_at, updated_at,"
      " row_version) VALUES ('old-case', 'p', 1, 'open', '{}', '{}', 0, 0, 1)");
  for (const HistoryEvent& e : testing::SealedChain("old-case", 4)) {
    db.Execute(
        "INSERT INTO history (case_id, seq, at, actor, action, step, details, prev_hash,"
        " hash) VALUES ('old-case', " +
        std::to_string(e.seq) + ", '" + e.at + "', '" + e.actor + "', '" + e.action + "', '" +
        e.step + "', '" + e.details + "', '" + e.prev_hash + "', '" + e.hash + "')");
  }
  const auto actors_before = db.QueryInt("SELECT COUNT(*) FROM history WHERE actor = 'engine'");

  auto store = Store::Open(db.url());
  INFO((store ? "" : store.error().message()));
  REQUIRE(store.has_value());
  CHECK((*store)->SchemaVersion().value() == Dialect(db.backend()).LatestSchemaVersion());
  auto verified = testing::VerifyHistory(**store, std::string("old-case"));
  INFO((verified ? "" : verified.error().message()));
  REQUIRE(verified.has_value());
  CHECK(verified->events == 4);
  CHECK(db.QueryInt("SELECT COUNT(*) FROM history WHERE actor = 'engine'") == actors_before);
  CHECK(db.QueryInt("SELECT COUNT(*) FROM history WHERE login = ''") == 4);
  CHECK(db.QueryInt("SELECT COUNT(*) FROM config_versions") == 0);
}

}  // namespace wf::engine
