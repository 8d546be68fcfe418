#pragma once

// Everything that differs between SQLite and PostgreSQL lives here (DESIGN.md decision 2): the
// database URL, column types, the schema migrations, transaction openers, the work-claiming
// statement and advisory locks. The store (store*.cpp) writes portable SQL everywhere else.
//
// Portable choices the whole schema makes:
// - Times that are scheduled or compared (run_at, lease_until, due_at, deadline_at, ...) are
//   BIGINT microseconds since the Unix epoch, UTC: exact, cheap to index and compare, identical on
//   both databases and free of session time zones (SOCI maps timestamptz to std::tm, which has
//   neither sub-second precision nor a zone). History `at` is RFC 3339 text instead, because it
//   is hashed and must read back byte for byte; its fixed width keeps text order = time order.
// - JSON documents are JSONB on PostgreSQL (queryable) and TEXT on SQLite; both are written as
//   text and read back as text. History details stay TEXT on both: they are hashed, and JSONB
//   would normalise them.
// - Row ids of work, tasks, incidents and evidence come from the database: BIGSERIAL with a
//   (case_id, id) primary key on PostgreSQL (case_id first, so Citus can distribute on it,
//   decision 13), INTEGER PRIMARY KEY AUTOINCREMENT on SQLite (one node; never reused).

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "workflows/status.hpp"

namespace wf::engine {

enum class Backend { kSqlite, kPostgres };

const char* BackendName(Backend backend);

// A parsed database URL (DESIGN.md "CLI contract": `--db URL`).
struct DatabaseTarget {
  Backend backend = Backend::kSqlite;
  std::string connect_string;  // for SOCI: a SQLite path, or a libpq conninfo `key='value' ...`
  std::string redacted_url;    // the URL without its password, for messages and logs
};

// Parses `sqlite:PATH` (also `sqlite://PATH`; `sqlite::memory:` is an in-memory database) and
// `postgresql://[user[:password]@][host][:port][/db][?key=value&...]` or `postgres://...`.
// Percent-escapes are decoded; query parameters pass to libpq as they are (sslmode, ...); a
// connect_timeout of 10 s and application_name=wf are added unless given. kUsage on anything else.
Result<DatabaseTarget> ParseDatabaseUrl(std::string_view url);

// One schema version: its statements run in one transaction together with the row that records it
// in `wf_schema`.
struct Migration {
  int version = 0;
  std::string description;
  std::vector<std::string> statements;
};

// The SQL that differs between backends. Cheap to copy; immutable.
// A PostgreSQL CREATE FUNCTION whose text says `SET search_path = @SCHEMA@, pg_temp`, as a DO
// block that puts the current schema there (SET search_path takes no expression).
std::string CreateInCurrentSchema(const char* function_sql);

class Dialect {
 public:
  explicit Dialect(Backend backend) : backend_(backend) {}

  Backend backend() const { return backend_; }
  bool is_postgres() const { return backend_ == Backend::kPostgres; }

  // All migrations, ascending by version. The newest version is the last one's. Versions may
  // leave gaps (each is applied when its own row is missing from wf_schema).
  std::vector<Migration> Migrations() const;
  int LatestSchemaVersion() const;

  // Creates the `wf_schema` bookkeeping table if it is missing.
  std::string CreateSchemaTableSql() const;

  // Opens a transaction. SQLite write transactions are BEGIN IMMEDIATE: the write lock is taken at
  // once, so two writers never deadlock upgrading a read lock (busy_timeout then just waits), and
  // a claim's SELECT-then-UPDATE cannot interleave with another claimer.
  std::string BeginSql(bool write) const;

  // Serialises a critical section across processes until the transaction ends: on PostgreSQL
  // `SELECT pg_advisory_xact_lock(:key)`; empty on SQLite, where BEGIN IMMEDIATE already holds the
  // database's single write lock. The statement binds one BIGINT named `key`.
  std::string AdvisoryLockSql() const;

  // A select-list expression that reads JSON column `column` as text.
  std::string JsonText(std::string_view column) const;

  // Leases due work atomically. Binds :owner, :lease_until, :lease_run_at (both the lease expiry),
  // :now and :limit; returns the columns listed in WorkColumns() of the leased rows. PostgreSQL
  // picks rows with FOR UPDATE SKIP LOCKED, so concurrent claimers never wait for or take each
  // other's rows; SQLite runs it under BEGIN IMMEDIATE, which excludes other writers.
  std::string ClaimWorkSql() const;

  // The select list of a work row, from its column table (engine/store_rows.hpp).
  std::string WorkColumns(std::string_view table_alias) const;

  // Wakes engines listening on PostgreSQL after the transaction commits; empty on SQLite.
  std::string NotifyWorkSql() const;

 private:
  // Version 8, who may act (engine/dialect_access.cpp).
  Migration AccessMigration() const;
  // Version 9, clerks act through wf_act (engine/dialect_acts.cpp).
  Migration ActsMigration() const;
  // Version 10, answers owed to other deployments (engine/dialect_federation.cpp).
  Migration FederationMigration() const;
  // Version 11 (dialect_keys.cpp).
  Migration KeysMigration() const;
  // Version 12 (dialect_speed.cpp): triggers with WHEN clauses, room for HOT updates.
  Migration SpeedMigration() const;

  Backend backend_;
};

// A stable 63-bit key for an advisory lock named `name` (FNV-1a).
std::int64_t AdvisoryKey(std::string_view name);

}  // namespace wf::engine
