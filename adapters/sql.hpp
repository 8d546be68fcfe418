#pragma once

// The `sql` adapter: one department system reached as a database of its own (SQLite or
// PostgreSQL through SOCI), queried with named statements written in the deployment config, so
// procedures never carry SQL.
//
// Department settings (engine::Department::settings):
//   url: "postgresql://registry@db.example/population?sslmode=require"  # required; also
//        "sqlite:/srv/registry.db" (or sqlite://PATH); `${env.NAME}` allowed (passwords)
//   queries:                               # required: operation name -> one SQL statement
//     get_citizen: "SELECT id, name, born FROM citizens WHERE id = :citizen_id"
//     record_birth: "INSERT INTO births (key, child) VALUES (:idempotency_key, :child)
//                    ON CONFLICT (key) DO NOTHING"
//   timeout: 5s        # optional cap on every call's time (the step's timeout otherwise)
//   pool_size: 2       # optional: connections and worker threads, 1..64 (default 2)
// Unknown keys are refused. A postgresql URL becomes a libpq conninfo (PostgresConnInfo, with
// connect_timeout=10 added unless given); messages show it without its password.
//
// Parameters. Every `:name` in a query (outside quotes and comments; `::` casts are left alone)
// is a parameter, bound from the call's field `name` as a value, never pasted into the SQL.
// Text, integers, doubles and null bind as such, booleans as 1/0 (PostgreSQL reads '1'/'0' as
// boolean input), objects and arrays as their JSON text. `:idempotency_key` is the step's
// idempotency key ("<case>/<step>/<activation>", stable across retries) unless the call has a
// field of that name. A parameter whose field the call lacks fails the call (kFailed naming it).
// Comments are removed from the statement before it is sent. PostgreSQL dollar-quoted strings
// ($$...$$) are not understood: a `:word` inside one would be taken as a parameter.
//
// Results. A statement that yields columns (SELECT, or INSERT ... RETURNING) answers
//   {"rows": [{"column": value, ...}, ...], "count": <number of rows>}
// with integers as numbers, floating point as numbers, text as strings, NULL as null and dates
// as ISO 8601 text without a zone ("1990-04-01" when the time of day is 00:00:00, else
// "1990-04-01T08:30:00"; SOCI reads timestamps as std::tm, which has no zone and no fraction).
// A statement without columns (INSERT, UPDATE, DELETE) answers {"rows": [], "count": <rows
// affected>}. Each call is one statement in autocommit mode.
//
// Idempotency is the department's job, as for every adapter: a retried step runs the same
// statement again with the same :idempotency_key. A writing query should make that harmless,
// e.g. a UNIQUE column holding :idempotency_key with `ON CONFLICT DO NOTHING` (PostgreSQL,
// SQLite 3.24+) or `INSERT OR IGNORE` (SQLite), or an UPDATE that sets absolute values. The
// adapter does not add this itself. A UNIQUE violation is a constraint error: kFailed.
//
// Outcomes:
//   the statement ran                         -> kDone with the result above
//   cannot connect, connection lost           -> kRetry ("... cannot connect to URL: ...")
//   database busy: SQLite BUSY/LOCKED after the busy timeout, PostgreSQL serialization
//   failure, deadlock, lock not available, insufficient resources (class 53)  -> kRetry
//   PostgreSQL statement_timeout hit          -> kRetry ("timed out after 5s")
//   any other SQL error (syntax, constraint, unknown column, type) -> kFailed with the
//                                                database's message
//   unknown operation, missing field          -> kFailed
// Every message starts with "<department> <operation>: ".
//
// Timeouts. The call's effective timeout (the step's, capped by `timeout`) is applied per call
// on the session: PostgreSQL `SET statement_timeout` (the server cancels the statement);
// SQLite `PRAGMA busy_timeout` (how long to wait for another writer's lock; SQLite cannot stop
// a statement that is already running, so a slow query there runs to its end). Connecting to
// PostgreSQL is bounded by connect_timeout.
//
// Threads. SOCI blocks, so nothing runs on the caller's executor: the adapter owns an
// asio::thread_pool of `pool_size` threads and a pool of as many sessions (connected on first
// use, dropped and reconnected after a lost connection); Invoke hops onto it with co_spawn and
// resumes the caller on its own executor with the outcome. Invoke may be called concurrently;
// calls beyond pool_size queue in the thread pool. Destroying the adapter waits for the calls
// that are running.

#include <chrono>
#include <cstddef>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "adapters/adapter.hpp"
#include "adapters/asio.hpp"
#include "workflows/status.hpp"

namespace wf::adapters {

class SqlAdapter final : public Adapter {
 public:
  // One configured statement, as parsed at construction.
  struct NamedQuery {
    std::string text;                     // as configured
    std::string sql;                      // sent to the database: comments removed, every
                                          // parameter occurrence renamed :wf_p0, :wf_p1, ...
    std::vector<std::string> occurrences;  // the field name of each :wf_pN, in order
  };

  // What Create reads from the department settings.
  struct Settings {
    bool postgres = false;
    std::string connect_string;  // for SOCI: a SQLite path or a libpq URI
    std::string redacted_url;    // for messages
    std::map<std::string, NamedQuery> queries;
    std::optional<std::chrono::milliseconds> timeout;
    int pool_size = 2;
  };

  static constexpr int kDefaultPoolSize = 2;
  static constexpr int kMaxPoolSize = 64;

  // Reads `settings` of department `department`. kInvalid naming the department and the key for
  // a missing or bad `url` (or an unset `${env.X}` in it), a missing or empty `queries`, a query
  // that is not text or has an unterminated quote or comment, a bad timeout or pool_size, or an
  // unknown key. Never throws; connects to nothing (the first call connects).
  static Result<std::unique_ptr<SqlAdapter>> Create(std::string department,
                                                    const nlohmann::json& settings);
  SqlAdapter(std::string department, Settings settings);
  ~SqlAdapter() override;

  // Checks that the call is a mapping whose `operation` is text naming a configured query.
  // No I/O.
  Status Validate(const StepCall& call) const override;
  // Runs the operation's statement on the adapter's thread pool as described above. Never
  // throws.
  asio::awaitable<StepOutcome> Invoke(StepRequest request) override;

  // Splits `text` into the statement to send and its parameter occurrences (see NamedQuery).
  // kInvalid for an unterminated quoted string, quoted identifier or block comment.
  static Result<NamedQuery> ParseQuery(const std::string& text);

  // The libpq conninfo (`user='..' host='..' dbname='..' ...`) for a postgresql:// URL: SOCI 4.0
  // does not pass URIs through to libpq intact. Percent-escapes are decoded; query parameters
  // pass as they are; connect_timeout=10 is added unless given. kInvalid for a malformed URL.
  static Result<std::string> PostgresConnInfo(const std::string& url);

  struct State;  // shared with the calls running on the pool

 private:
  std::shared_ptr<State> state_;
  asio::thread_pool pool_;  // declared last: joined before state_ goes
};

}  // namespace wf::adapters
