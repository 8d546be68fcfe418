#include "tests/engine/test_db.hpp"

#include <cstdlib>
#include <filesystem>
#include <random>

#include <catch2/catch.hpp>
#include <soci/postgresql/soci-postgresql.h>
#include <soci/soci.h>
#include <soci/sqlite3/soci-sqlite3.h>

namespace wf::engine::testing {
namespace {

std::string RandomSuffix() {
  static constexpr char kAlphabet[] = "0123456789abcdefghijklmnopqrstuvwxyz";
  std::random_device device;
  std::mt19937_64 random(device());
  std::string out;
  for (int i = 0; i < 12; ++i) out.push_back(kAlphabet[random() % 36]);
  return out;
}

// `url` with its database path replaced by `database`.
std::string WithDatabase(const std::string& url, const std::string& database) {
  size_t scheme = url.find("://");
  size_t start = scheme == std::string::npos ? 0 : scheme + 3;
  size_t query = url.find('?', start);
  size_t slash = url.find('/', start);
  if (slash == std::string::npos || (query != std::string::npos && slash > query)) slash = query;
  std::string head = url.substr(0, slash == std::string::npos ? url.size() : slash);
  std::string tail = query == std::string::npos ? std::string() : url.substr(query);
  return head + "/" + database + tail;
}

}  // namespace

std::unique_ptr<TestDatabase> TestDatabase::Create(Backend backend) {
  if (backend == Backend::kSqlite) {
    std::filesystem::path file =
        std::filesystem::temp_directory_path() / ("wf_test_" + RandomSuffix() + ".db");
    return std::unique_ptr<TestDatabase>(
        new TestDatabase(backend, "sqlite:" + file.string(), file.string(), ""));
  }
  const char* pg_url = std::getenv("WF_TEST_PG_URL");
  if (pg_url == nullptr || *pg_url == '\0') {
    const char* require = std::getenv("WF_REQUIRE_PG");
    if (require != nullptr && std::string(require) == "1") {
      FAIL("WF_REQUIRE_PG=1 but WF_TEST_PG_URL is not set: cannot run the PostgreSQL store test");
    }
    WARN("PostgreSQL store test skipped: set WF_TEST_PG_URL to run it");
    return nullptr;
  }
  Result<DatabaseTarget> admin = ParseDatabaseUrl(pg_url);
  REQUIRE(admin.has_value());
  std::string name = "wf_test_" + RandomSuffix();
  try {
    soci::session sql(soci::postgresql, admin->connect_string);
    sql << "CREATE DATABASE " + name;
  } catch (const std::exception& e) {
    FAIL("cannot create a test database on " << admin->redacted_url << ": " << e.what());
  }
  return std::unique_ptr<TestDatabase>(
      new TestDatabase(backend, WithDatabase(pg_url, name), name, admin->connect_string));
}

TestDatabase::TestDatabase(Backend backend, std::string url, std::string name, std::string admin)
    : backend_(backend), url_(std::move(url)), name_(std::move(name)),
      admin_connect_(std::move(admin)) {}

TestDatabase::~TestDatabase() {
  session_.reset();
  if (backend_ == Backend::kSqlite) {
    std::error_code ignored;
    for (const char* suffix : {"", "-wal", "-shm"}) {
      std::filesystem::remove(name_ + suffix, ignored);
    }
    return;
  }
  try {
    soci::session sql(soci::postgresql, admin_connect_);
    sql << "DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)";
  } catch (const std::exception&) {
    // A leftover test database is harmless; the cluster is throwaway.
  }
}

soci::session& TestDatabase::Session() {
  if (!session_) {
    Result<DatabaseTarget> target = ParseDatabaseUrl(url_);
    REQUIRE(target.has_value());
    if (backend_ == Backend::kPostgres) {
      session_ = std::make_unique<soci::session>(soci::postgresql, target->connect_string);
    } else {
      session_ = std::make_unique<soci::session>(soci::sqlite3, target->connect_string);
      *session_ << "PRAGMA busy_timeout = 10000";
    }
  }
  return *session_;
}

void TestDatabase::Execute(const std::string& sql) { Session() << sql; }

long long TestDatabase::QueryInt(const std::string& sql) {
  long long value = 0;
  Session() << sql, soci::into(value);
  return value;
}

long long TestDatabase::TerminateOtherConnections() {
  return QueryInt(
      "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity"
      " WHERE datname = current_database() AND pid <> pg_backend_pid()");
}

}  // namespace wf::engine::testing
