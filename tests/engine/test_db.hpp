#pragma once

// A fresh, empty database for one store test, on SQLite or PostgreSQL, removed afterwards.
//
// SQLite: a new file in the temporary directory. PostgreSQL: a new database `wf_test_<random>`
// on the server of WF_TEST_PG_URL (e.g. postgresql://postgres@127.0.0.1:55432/postgres), dropped
// WITH (FORCE) afterwards. Without WF_TEST_PG_URL the PostgreSQL variant is skipped with a WARN,
// or FAILs when WF_REQUIRE_PG=1 (CI), so a store test never passes silently untested.

#include <memory>
#include <string>

#include "engine/dialect.hpp"

namespace soci {
class session;
}

namespace wf::engine::testing {

class TestDatabase {
 public:
  // Creates the database, or returns null after WARN (skip) or FAIL (required but missing).
  static std::unique_ptr<TestDatabase> Create(Backend backend);
  ~TestDatabase();

  Backend backend() const { return backend_; }
  const std::string& url() const { return url_; }

  // Runs `sql` on a connection of its own, bypassing the store (tampering, terminating
  // connections). Throws on failure, like the SOCI it uses.
  void Execute(const std::string& sql);
  // Runs `sql`, which returns one integer.
  long long QueryInt(const std::string& sql);
  // Terminates every other connection to this database (PostgreSQL); returns how many.
  long long TerminateOtherConnections();

 private:
  TestDatabase(Backend backend, std::string url, std::string name, std::string admin);
  soci::session& Session();

  Backend backend_;
  std::string url_;
  std::string name_;           // PostgreSQL database name, or the SQLite file
  std::string admin_connect_;  // PostgreSQL: conninfo of WF_TEST_PG_URL
  std::unique_ptr<soci::session> session_;
};

}  // namespace wf::engine::testing

// Runs the rest of the enclosing TEST_CASE once per backend with `db` a fresh TestDatabase.
#define WF_FOR_EACH_BACKEND(db)                                                        \
  const ::wf::engine::Backend wf_backend_ =                                            \
      GENERATE(::wf::engine::Backend::kSqlite, ::wf::engine::Backend::kPostgres);      \
  INFO("backend: " << ::wf::engine::BackendName(wf_backend_));                         \
  std::unique_ptr<::wf::engine::testing::TestDatabase> db =                            \
      ::wf::engine::testing::TestDatabase::Create(wf_backend_);                        \
  if (!db) return
