#include "tests/support/test_database.hpp"

#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <random>

#include <soci/postgresql/soci-postgresql.h>
#include <soci/soci.h>
#include <soci/sqlite3/soci-sqlite3.h>

namespace wf::testing {
namespace {

std::string Environment(const char* name) {
  const char* value = std::getenv(name);
  return value == nullptr ? std::string() : std::string(value);
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

bool HavePostgres() {
  if (!Environment("WF_TEST_PG_URL").empty()) return true;
  if (Environment("WF_REQUIRE_PG") == "1") {
    FAIL("WF_REQUIRE_PG=1 but WF_TEST_PG_URL is not set: this PostgreSQL test cannot run");
  }
  // CTest reads this line (SKIP_REGULAR_EXPRESSION) and reports the test as skipped.
  std::cout << kSkipPostgres << ": set WF_TEST_PG_URL (see tests/README.md) to run this test"
            << std::endl;
  return false;
}

std::string RandomName(int length) {
  static constexpr char kAlphabet[] = "0123456789abcdefghijklmnopqrstuvwxyz";
  std::random_device device;
  std::mt19937_64 random(device());
  std::string out;
  for (int i = 0; i < length; ++i) out.push_back(kAlphabet[random() % 36]);
  return out;
}

TestDatabase::TestDatabase(engine::Backend backend) : backend_(backend) {
  if (backend == engine::Backend::kSqlite) {
    name_ = (std::filesystem::temp_directory_path() / ("wf_test_" + RandomName() + ".db")).string();
    url_ = "sqlite:" + name_;
    return;
  }
  const std::string pg_url = Environment("WF_TEST_PG_URL");
  if (pg_url.empty()) FAIL("a PostgreSQL TestDatabase needs WF_TEST_PG_URL (call HavePostgres)");
  Result<engine::DatabaseTarget> admin = engine::ParseDatabaseUrl(pg_url);
  if (!admin) FAIL("WF_TEST_PG_URL is not a database URL: " << admin.error().message());
  std::string name = "wf_test_" + RandomName();
  try {
    soci::session sql(soci::postgresql, admin->connect_string);
    sql << "CREATE DATABASE " + name;
  } catch (const std::exception& e) {
    FAIL("cannot create a test database on " << admin->redacted_url << ": " << e.what());
  }
  // Only now is there something for the destructor to drop.
  name_ = name;
  admin_connect_ = admin->connect_string;
  url_ = WithDatabase(pg_url, name_);
}

TestDatabase::~TestDatabase() {
  session_.reset();
  if (backend_ == engine::Backend::kSqlite) {
    std::error_code ignored;
    for (const char* suffix : {"", "-wal", "-shm"})
      std::filesystem::remove(name_ + suffix, ignored);
    std::filesystem::remove_all(name_ + ".engines", ignored);  // engines' liveness lock files
    return;
  }
  try {
    soci::session sql(soci::postgresql, admin_connect_);
    sql << "DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)";
  } catch (const std::exception&) {
    // A leftover test database is harmless: the cluster is throwaway.
  }
}

soci::session& TestDatabase::Session() {
  if (!session_) {
    Result<engine::DatabaseTarget> target = engine::ParseDatabaseUrl(url_);
    REQUIRE(target.has_value());
    if (is_postgres()) {
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

}  // namespace wf::testing
