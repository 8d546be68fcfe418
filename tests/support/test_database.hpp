#pragma once

// Databases for tests, on SQLite and on PostgreSQL, and test cases that run once per store.
//
// PostgreSQL comes from the environment:
// - WF_TEST_PG_URL names a server the tests may create databases on, e.g.
//   postgresql://postgres@127.0.0.1:55432/postgres (`.ci/pg` starts a throwaway one).
// - WF_REQUIRE_PG=1 (CI) turns a missing WF_TEST_PG_URL into a failure.
// Without WF_TEST_PG_URL (and without WF_REQUIRE_PG=1) a PostgreSQL test prints kSkipPostgres on
// stdout and ends at once; CTest's SKIP_REGULAR_EXPRESSION (tests/CMakeLists.txt) then reports
// it as skipped, never as passed. A server named but unreachable always fails the test.
//
// Store test cases are separate Catch2 test cases, one per store, so CTest lists, runs and
// reports each on its own:
//
//   WF_STORE_TEST_CASE("migrations apply once", "[engine][store]", db) {
//     auto store = Store::Open(db.url());   // db: a fresh, empty TestDatabase
//   }
//
// registers "migrations apply once on SQLite" [sqlite] and "... on PostgreSQL" [postgresql].

#include <memory>
#include <string>

#include <catch2/catch.hpp>

#include "engine/dialect.hpp"

namespace soci {
class session;
}

namespace wf::testing {

// The line a PostgreSQL test prints when it is skipped; CTest matches it.
inline constexpr const char* kSkipPostgres = "WF_SKIP: PostgreSQL is not configured";

// True when WF_TEST_PG_URL names a server. Otherwise FAILs the running test when
// WF_REQUIRE_PG=1, or prints kSkipPostgres (and why) and returns false: the caller then returns
// at once, having tested nothing.
bool HavePostgres();

// A random lowercase alphanumeric string of `length` characters, for names of databases,
// folders and roles that parallel tests must not share.
std::string RandomName(int length = 12);

// A fresh, empty database for one test, removed when it goes out of scope. Not thread-safe.
//
// SQLite: a new file in the temporary directory, deleted with its -wal and -shm files.
// PostgreSQL: a new database `wf_test_<random>` on the server of WF_TEST_PG_URL, dropped WITH
// (FORCE) afterwards. Call HavePostgres() first; the constructor FAILs the test when the server
// cannot be reached.
class TestDatabase {
 public:
  explicit TestDatabase(engine::Backend backend);
  ~TestDatabase();
  TestDatabase(const TestDatabase&) = delete;
  TestDatabase& operator=(const TestDatabase&) = delete;

  engine::Backend backend() const { return backend_; }
  bool is_postgres() const { return backend_ == engine::Backend::kPostgres; }
  // The database as `--db` takes it: sqlite:PATH, or WF_TEST_PG_URL with this database's name.
  const std::string& url() const { return url_; }
  // SQLite: the file's path. PostgreSQL: the database's name.
  const std::string& name() const { return name_; }

  // Runs one statement `sql` on a connection of its own, bypassing the store (tampering,
  // terminating connections). Throws on failure, like the SOCI it uses.
  void Execute(const std::string& sql);
  // Runs `sql`, which returns one integer.
  long long QueryInt(const std::string& sql);
  // Terminates every other connection to this database (PostgreSQL); returns how many.
  long long TerminateOtherConnections();

 private:
  soci::session& Session();

  engine::Backend backend_;
  std::string url_;
  std::string name_;
  std::string admin_connect_;  // PostgreSQL: conninfo of WF_TEST_PG_URL
  std::unique_ptr<soci::session> session_;
};

}  // namespace wf::testing

// Registers two test cases, NAME " on SQLite" tagged [sqlite] and NAME " on PostgreSQL" tagged
// [postgresql], each calling the body that follows with `backend` (a wf::engine::Backend). The
// PostgreSQL one calls it only when HavePostgres(). NAME and TAGS are string literals.
#define WF_BACKEND_TEST_CASE(name, tags, backend) \
  WF_INTERNAL_BACKEND_TEST_CASE(INTERNAL_CATCH_UNIQUE_NAME(wf_backend_test_), name, tags, backend)

// As WF_BACKEND_TEST_CASE, with `db` a fresh TestDatabase& of the test's store.
#define WF_STORE_TEST_CASE(name, tags, db) \
  WF_INTERNAL_STORE_TEST_CASE(INTERNAL_CATCH_UNIQUE_NAME(wf_store_test_), name, tags, db)

// One test case NAME " on PostgreSQL" tagged [postgresql] with `db` a fresh PostgreSQL
// TestDatabase&, for what only PostgreSQL does (several engines on one database, roles); skipped
// like the others.
#define WF_POSTGRES_TEST_CASE(name, tags, db) \
  WF_INTERNAL_POSTGRES_TEST_CASE(INTERNAL_CATCH_UNIQUE_NAME(wf_pg_test_), name, tags, db)

#define WF_INTERNAL_BACKEND_TEST_CASE(function, name, tags, backend)                          \
  static void function(::wf::engine::Backend backend);                                        \
  TEST_CASE(name " on SQLite", tags "[sqlite]") { function(::wf::engine::Backend::kSqlite); } \
  TEST_CASE(name " on PostgreSQL", tags "[postgresql]") {                                     \
    if (::wf::testing::HavePostgres()) function(::wf::engine::Backend::kPostgres);            \
  }                                                                                           \
  static void function(::wf::engine::Backend backend)

#define WF_INTERNAL_STORE_TEST_CASE(function, name, tags, db) \
  static void function(::wf::testing::TestDatabase& db);      \
  WF_BACKEND_TEST_CASE(name, tags, wf_backend_) {             \
    ::wf::testing::TestDatabase wf_db_(wf_backend_);          \
    function(wf_db_);                                         \
  }                                                           \
  static void function(::wf::testing::TestDatabase& db)

#define WF_INTERNAL_POSTGRES_TEST_CASE(function, name, tags, db)          \
  static void function(::wf::testing::TestDatabase& db);                  \
  TEST_CASE(name " on PostgreSQL", tags "[postgresql]") {                 \
    if (!::wf::testing::HavePostgres()) return;                           \
    ::wf::testing::TestDatabase wf_db_(::wf::engine::Backend::kPostgres); \
    function(wf_db_);                                                     \
  }                                                                       \
  static void function(::wf::testing::TestDatabase& db)
