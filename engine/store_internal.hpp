#pragma once

// The store's internals that its .cpp files (store*.cpp) share: the pool state, one
// transaction's context, database error mapping, the Query helper, pipelined result rows and the
// pipeline's entry points (store_pipeline.cpp). The column tables are in engine/store_rows.hpp.
// Private to engine/: include it only from the store's own .cpp files (it brings in SOCI).

#include <fcntl.h>
#include <libpq-fe.h>
#include <soci/postgresql/soci-postgresql.h>
#include <soci/soci.h>
#include <soci/sqlite3/soci-sqlite3.h>
#include <unistd.h>

#include <array>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "engine/store.hpp"
#include "engine/store_rows.hpp"

namespace wf::engine {

namespace detail {

// What a Store owns: the parsed URL, the pool and the wake-up machinery.
struct StoreState {
  StoreState(DatabaseTarget t, int size) : target(std::move(t)), dialect(target.backend) {
    for (int i = 0; i < size; ++i) idle.emplace_back();  // connected on first use
    if (pipe2(wake_pipe, O_NONBLOCK | O_CLOEXEC) != 0) wake_pipe[0] = wake_pipe[1] = -1;
  }
  ~StoreState() {
    for (const auto& [owner, fd] : liveness_files) close(fd);  // the flocks go with them
    if (wake_pipe[0] >= 0) close(wake_pipe[0]);
    if (wake_pipe[1] >= 0) close(wake_pipe[1]);
  }

  DatabaseTarget target;
  Dialect dialect;

  std::mutex pool_mu;
  std::condition_variable pool_cv;
  std::vector<std::unique_ptr<soci::session>> idle;  // null: not connected (yet, or any more)

  std::mutex listen_mu;
  std::unique_ptr<soci::session> listen;  // PostgreSQL: the LISTEN wf_work connection
  bool listened_before = false;
  int wake_pipe[2] = {-1, -1};  // a byte in it means "wake the waiter"

  // The liveness tokens of the engines on this store (Store::HoldLiveness), by owner.
  std::mutex liveness_mu;
  std::map<std::string, int> liveness_files;  // SQLite: the flocked file's descriptor
  std::unique_ptr<soci::session> liveness;    // PostgreSQL: holds every owner's advisory lock
  std::set<std::string> liveness_locks;       // PostgreSQL: the owners locked on it
  CaseIdSource case_ids;                      // empty: NewCaseId
  std::unique_ptr<KeySource> keys;            // Store::keys
};

// Opens a connection to the store's database with the session settings every connection gets
// (store.cpp); kUnavailable naming the URL without its password.
Result<std::unique_ptr<soci::session>> Connect(const StoreState& state);

// A statement sent in a pipeline (StoreTx::DeferWrites).
struct DeferredWrite {
  std::string what;  // for messages: "update cases"
  std::string sql;   // PostgreSQL text with $1, $2, ... parameters
  std::vector<std::optional<std::string>> params;
  bool binary = false;  // every parameter in PostgreSQL's binary form (AddMultiRow's arrays)
};

using Row = std::vector<std::optional<std::string>>;

// Writes queued by StoreTx::DeferWrites, coalesced per table into multi-row statements.
struct PendingWrites {
  // Cases new in this transaction (StoreTx::InsertCaseDeferred), at their last UpdateCase's
  // values: id, procedure, version, status, data, state, agency, started_by, started_at,
  // updated_at, deadline_at, clock_paused_at, ended_at, row_version, parent_case,
  // parent_activation.
  std::vector<Row> new_cases;
  std::unordered_map<std::string, size_t> new_case_index;
  std::vector<Row> cases;  // id, status, data, state, deadline, paused, ended, updated,
                           // expected version, new version
  std::unordered_map<std::string, size_t> case_index;  // a case updated twice: one row
  std::vector<Row> history;                            // the history columns, in order
  std::vector<Row> work;  // case_id, kind, step, activation, payload, run_at, created_at
  // client, key, procedure, request_hash, case_id, created_at (StoreTx::InsertIdempotencyKey)
  std::vector<Row> idempotency_keys;
  bool empty() const {
    return new_cases.empty() && cases.empty() && history.empty() && work.empty() &&
           idempotency_keys.empty();
  }
  void clear() { *this = PendingWrites(); }
};

// One transaction in progress.
struct TxContext {
  soci::session& sql;
  const Dialect& dialect;
  bool work_changed = false;     // wake engines after commit
  Status failure;                // the database error that doomed this transaction
  bool connection_lost = false;  // ... and it was the connection itself
  bool defer_writes = false;     // StoreTx::DeferWrites
  // StoreTx::CommitWithLastPipeline: the next pipeline ends with COMMIT (and the wake-up,
  // WakeEnginesSql, when work_changed); once that succeeded, `committed`.
  bool commit_with_pipeline = false;
  bool committed = false;
  PendingWrites pending;
  // StoreTx::ClaimNewWork: due work kept back to insert as already leased.
  struct {
    int limit = 0;
    std::string owner;
    Timestamp now{};
    std::chrono::microseconds lease{};
    std::vector<NewWork> rows;
  } claim_new;
  // The last (seq, hash) of each case's history chain as this transaction left it.
  std::unordered_map<std::string, std::pair<std::int64_t, std::string>> heads;
  const CaseIdSource* case_ids = nullptr;  // the store's, when it has one
  // StoreTx::InsertCaseKey: data keys made by this transaction (engine/personal.hpp), found
  // here until the commit, and handed to their KeySource only once it is done (after_commit).
  std::map<std::string, DataKey> fresh_keys;
  std::vector<std::function<void()>> after_commit;  // StoreTx::AfterCommit
};

// ---------------------------------------------------------------------------------------------
// Errors

struct MappedError {
  Status status;
  bool connection_lost = false;
};

// The libpq connection under a PostgreSQL session. (SOCI does not export the backend's type
// information, so the backend name stands in for a dynamic_cast.)
inline PGconn* PgConnection(soci::session& sql) {
  soci::details::session_backend* backend = sql.get_backend();
  if (backend == nullptr || backend->get_backend_name() != "postgresql") return nullptr;
  return static_cast<soci::postgresql_session_backend*>(backend)->conn_;
}

inline bool Healthy(soci::session& sql, Backend backend) {
  if (backend != Backend::kPostgres) return true;
  PGconn* conn = PgConnection(sql);
  return conn != nullptr && PQstatus(conn) == CONNECTION_OK;
}

inline std::string Trim(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return text;
}

// Bounds on every PostgreSQL connection (issue 11), so that no statement, lock wait or forgotten
// transaction can hold the engine, or the rows it needs, indefinitely:
// - statement_timeout 60 s: the engine's statements take milliseconds and the CLI's reads pages;
//   one that runs a minute is stuck (a lock wait aside, bounded below). kUnavailable: retried.
// - lock_timeout 10 s: case rows are locked only by transactions that evaluate no expression
//   and call no department, so they hold them for milliseconds; ten seconds of waiting means a
//   stuck holder, and the waiter backs off (55P03: kUnavailable) instead of piling up.
// - idle_in_transaction_session_timeout 30 s: wf never idles inside a transaction; a process
//   stopped mid-transaction (SIGSTOP, a debugger) loses its connection and its locks.
// And client_min_messages = warning: the server's NOTICEs ("relation wf_schema already exists,
// skipping" once per migration on a fresh database) are not for wf's users; its WARNINGs are.
// And no parallel workers: wf's statements read a few rows by index, and a row estimate gone
// wrong (the clerk's 20 open tasks among 900,000 done ones of the same role) made the planner
// start two workers for `wf inbox`, 60 ms of a 1 ms query.
// SET commands in one simple query: a fresh backend runs them in a third of the time of one
// SELECT of set_config() calls (0.45 against 1.2 ms here), which first looks the function up in
// a catalog cache that is still cold, on every CLI command's connection.
inline constexpr const char* kSessionTimeoutsSql =
    "SET statement_timeout = '60s'; SET lock_timeout = '10s';"
    " SET idle_in_transaction_session_timeout = '30s'; SET client_min_messages = warning;"
    " SET max_parallel_workers_per_gather = 0";
// Migrations lift the first two for their own transaction.
inline constexpr const char* kMigrationTimeoutsSql =
    "SELECT set_config('statement_timeout', '0', true), set_config('lock_timeout', '0', true)";

// The server's own words in a SOCI PostgreSQL message ("Cannot execute query. Fatal error.
// ERROR:  no case X; ...\nCONTEXT: ..."): what follows "ERROR:", up to the end of its line. For
// refusals worded by wf's functions and triggers, and by the grants, which a clerk reads.
inline std::string ServerWords(const std::string& brief) {
  size_t at = brief.find("ERROR:");
  if (at == std::string::npos) return brief;
  std::string words = brief.substr(at + 6);
  words.erase(0, words.find_first_not_of(' '));
  size_t end = words.find('\n');
  return end == std::string::npos ? words : words.substr(0, end);
}

inline MappedError MapPostgresError(const std::string& state, bool healthy,
                                    const std::string& prefix, const std::string& brief,
                                    const std::string& full) {
  bool lost = state.rfind("08", 0) == 0 || state == "57P01" || state == "57P02" ||
              state == "57P03" || !healthy;
  if (lost) return {Status::Unavailable(prefix + "database connection lost: " + brief), true};
  if (state == "23505") return {Status::Conflict(prefix + "already exists: " + brief)};
  // insufficient_privilege: a grant, a row-level security policy or a wf trigger said no.
  if (state == "42501") {
    return {Status::NotPermitted(prefix + "not permitted: " + ServerWords(brief))};
  }
  // Raised by wf's own functions (wf_act): no such task, case or procedure; a bad argument.
  if (state == "P0002") return {Status::NotFound(prefix + ServerWords(brief))};
  if (state == "22023") return {Status::Invalid(prefix + ServerWords(brief))};
  // 57014: statement_timeout (or a cancel); 55P03: lock_timeout.
  if (state == "40001" || state == "40P01" || state == "55P03" || state == "57014" ||
      state.rfind("53", 0) == 0) {
    return {Status::Unavailable(prefix + "database busy, retry: " + brief)};
  }
  return {Status::Internal(prefix + full)};
}

inline MappedError MapError(soci::session* sql, Backend backend, std::string_view what,
                            const std::exception& error) {
  const std::string prefix = std::string(what) + ": ";
  const auto* soci_error = dynamic_cast<const soci::soci_error*>(&error);
  const std::string brief = Trim(soci_error ? soci_error->get_error_message() : error.what());
  const std::string full = Trim(error.what());
  if (backend == Backend::kPostgres) {
    std::string state;
    if (const auto* pg = dynamic_cast<const soci::postgresql_soci_error*>(&error)) {
      state = pg->sqlstate();
    }
    return MapPostgresError(state, sql == nullptr || Healthy(*sql, backend), prefix, brief, full);
  }
  if (const auto* lite = dynamic_cast<const soci::sqlite3_soci_error*>(&error)) {
    const int extended = lite->result();  // extended codes are on for every connection
    const int primary = extended & 0xff;
    if (primary == SQLITE_BUSY || primary == SQLITE_LOCKED) {  // past busy_timeout
      return {Status::Unavailable(prefix + "database busy, retry: " + brief)};
    }
    if (extended == SQLITE_CONSTRAINT_UNIQUE || extended == SQLITE_CONSTRAINT_PRIMARYKEY) {
      return {Status::Conflict(prefix + "already exists: " + brief)};
    }
  }
  return {Status::Internal(prefix + full)};
}

// ---------------------------------------------------------------------------------------------
// Prepared statements (store_prepared.cpp). Each PostgreSQL connection remembers the texts it
// has run: the second time a text comes it is prepared (in the same round trip when pipelined),
// and from then on sent by name, unparsed and with its plan cached by the server.

struct PreparedUse {
  std::string name;      // empty: send the text unnamed
  bool prepare = false;  // prepare it under `name` first
};
PreparedUse PrepareFor(PGconn* conn, const std::string& sql);
// Records that `sql` is prepared on `conn` as `name` (after the server said so).
void Prepared(PGconn* conn, const std::string& sql, const std::string& name);
// Forgets what `conn` has prepared (it was closed, or the server has forgotten it).
void ForgetPrepared(PGconn* conn);
// True for the SQLSTATEs of a prepared statement the server no longer has, or whose plan no
// longer fits the tables; the connection's statements are then forgotten.
bool StatementCacheStale(const char* sqlstate);

// A SOCI-style text with :name parameters as PostgreSQL's $1, $2, ... (a name used twice is one
// parameter), and the names in their order. Quoted text and :: casts are left alone.
struct NamedToNumbered {
  std::string sql;
  std::vector<std::string> names;
};
NamedToNumbered Numbered(const std::string& text);

// ---------------------------------------------------------------------------------------------
// The libpq pipeline (store_pipeline.cpp)

// Sends the writes StoreTx::DeferWrites queued, if any; doomed on failure.
Status FlushPending(TxContext& ctx);

// Sends `writes` in PostgreSQL pipeline mode, a round at a time, and reads every answer: the
// affected row counts and the returned rows per statement when asked. The first failure dooms
// the transaction (the server aborts the rest of the round anyway).
Status SendPipelined(TxContext& ctx, const std::vector<DeferredWrite>& writes,
                     std::vector<std::int64_t>* affected = nullptr,
                     std::vector<std::vector<Row>>* rows = nullptr);

// Multi-row statements for `rows`: `head`, then the rows, then `tail`. The rows are a VALUES
// list "(VALUES (CAST($1 AS t1), ...), (...))" for a few rows, or else
// "unnest(CAST($1 AS t1[]), CAST($2 AS t2[]), ...)" with one array parameter a column, of the
// types `casts` names (see kValuesRowsAtMost in store_pipeline.cpp), sent in the binary form when
// every type has one here (text, bigint, jsonb). With `expect_every_row` (for
// an UPDATE ... RETURNING 1 of rows at an expected row_version), a statement that changes fewer
// rows than it names fails in the server ("a case was changed meanwhile", kUnavailable: worth a
// retry).
void AddMultiRow(std::vector<DeferredWrite>& out, const std::string& what, const std::string& head,
                 const std::vector<std::string>& casts, const std::string& tail,
                 std::vector<Row>&& rows, bool expect_every_row);

// The statements that send the writes StoreTx::DeferWrites queued (taken out of the context):
// cases, history, work, then idempotency keys.
std::vector<DeferredWrite> PendingStatements(TxContext& ctx);

// Runs one database operation of a transaction: a thrown database error becomes a Status and
// dooms the transaction; an already doomed transaction does nothing.
template <typename F>
inline auto Guard(TxContext& ctx, std::string_view what, F&& body) -> decltype(body()) {
  if (!ctx.pending.empty()) {  // queued writes come first
    if (Status flushed = FlushPending(ctx); !flushed.ok()) return flushed;
  }
  if (!ctx.failure.ok()) return ctx.failure;
  try {
    return body();
  } catch (const std::exception& e) {
    MappedError mapped = MapError(&ctx.sql, ctx.dialect.backend(), what, e);
    ctx.failure = mapped.status;
    ctx.connection_lost = mapped.connection_lost;
    return ctx.failure;
  }
}

// ---------------------------------------------------------------------------------------------
// One SQL statement with named parameters and typed result columns, owning what it binds.

class Query {
 public:
  Query(soci::session& sql, std::string text) : sql_(sql), text_(std::move(text)) {}

  Query& Bind(const std::string& name, const std::string& value) {
    Slot& slot = params_.emplace_back(Slot{'t', name});
    slot.text = value;
    return *this;
  }
  Query& Bind(const std::string& name, const char* value) { return Bind(name, std::string(value)); }
  Query& Bind(const std::string& name, const std::optional<std::string>& value) {
    Slot& slot = params_.emplace_back(Slot{'t', name});
    if (value)
      slot.text = *value;
    else
      slot.ind = soci::i_null;
    return *this;
  }
  Query& Bind(const std::string& name, std::int64_t value) {
    Slot& slot = params_.emplace_back(Slot{'i', name});
    slot.integer = value;
    return *this;
  }
  Query& Bind(const std::string& name, std::optional<std::int64_t> value) {
    Slot& slot = params_.emplace_back(Slot{'i', name});
    if (value)
      slot.integer = *value;
    else
      slot.ind = soci::i_null;
    return *this;
  }
  Query& Bind(const std::string& name, Timestamp value) { return Bind(name, ToMicros(value)); }
  Query& Bind(const std::string& name, std::optional<Timestamp> value) {
    return Bind(name, value ? std::optional<std::int64_t>(ToMicros(*value)) : std::nullopt);
  }

  // The result columns: 't' text, 'i' integer, one letter per column.
  Query& Columns(std::string_view kinds) {
    for (char kind : kinds) columns_.push_back(Slot{kind, {}});
    return *this;
  }
  // The result columns of a record's table (engine/store_rows.hpp).
  template <typename Record>
  Query& Columns(ColumnTable<Record> table) {
    return Columns(ColumnKinds(table));
  }

  // Executes the statement; true when it produced a first row (then readable). On PostgreSQL
  // through libpq, prepared once the connection has run the same text before
  // (engine/store_prepared.cpp); SOCI otherwise.
  bool Execute() {
    if (PGconn* conn = PgConnection(sql_)) return ExecutePostgres(conn);
    statement_ = std::make_unique<soci::statement>(sql_);
    for (Slot& c : columns_) {
      if (c.kind == 't')
        statement_->exchange(soci::into(c.text, c.ind));
      else
        statement_->exchange(soci::into(c.integer, c.ind));
    }
    for (Slot& p : params_) {
      if (p.kind == 't')
        statement_->exchange(soci::use(p.text, p.ind, p.name));
      else
        statement_->exchange(soci::use(p.integer, p.ind, p.name));
    }
    statement_->alloc();
    statement_->prepare(text_, soci::details::st_one_time_query);
    statement_->define_and_bind();
    return statement_->execute(true) && !columns_.empty();
  }
  // Moves to the next row; false after the last.
  bool Next() { return result_ ? NextPostgres() : statement_->fetch(); }
  std::int64_t AffectedRows() {
    return result_ ? AffectedPostgres() : statement_->get_affected_rows();
  }

  bool IsNull(int i) const { return columns_[i].ind == soci::i_null; }
  std::string Text(int i) const { return IsNull(i) ? std::string() : columns_[i].text; }
  std::optional<std::string> OptText(int i) const {
    return IsNull(i) ? std::nullopt : std::optional<std::string>(columns_[i].text);
  }
  std::int64_t Int(int i) const { return IsNull(i) ? 0 : columns_[i].integer; }
  std::optional<std::int64_t> OptInt(int i) const {
    return IsNull(i) ? std::nullopt : std::optional<std::int64_t>(columns_[i].integer);
  }
  Timestamp Time(int i) const { return FromMicros(Int(i)); }
  std::optional<Timestamp> OptTime(int i) const {
    return IsNull(i) ? std::nullopt : std::optional<Timestamp>(FromMicros(columns_[i].integer));
  }
  // Column i of the current row, for ReadRow.
  Cell At(int i) const {
    const Slot& c = columns_[i];
    return Cell(IsNull(i), &c.text,
                c.kind == 'i' ? std::optional<std::int64_t>(c.integer) : std::nullopt);
  }

 private:
  struct Slot {
    char kind;
    std::string name;
    std::string text;
    long long integer = 0;
    soci::indicator ind = soci::i_ok;
  };
  bool ExecutePostgres(PGconn* conn);
  bool NextPostgres();
  std::int64_t AffectedPostgres() const;

  soci::session& sql_;
  std::string text_;
  std::deque<Slot> params_;  // a deque: binding keeps pointers to the slots
  std::deque<Slot> columns_;
  std::unique_ptr<soci::statement> statement_;
  std::shared_ptr<PGresult> result_;  // PostgreSQL: the answer, and the row read last
  int row_ = -1;
};

// The connection whose transaction (Store::TransactPipelined) has not sent its BEGIN yet, on this
// thread: the next statement on it sends it first (PayBegin), or SendPipelined in its pipeline.
inline thread_local PGconn* t_begin_owed = nullptr;
// ... and whether that BEGIN is to relax the transaction's durability (StoreTx::RelaxDurability).
inline thread_local bool t_begin_relaxed = false;
inline constexpr const char* kRelaxDurabilitySql = "SET LOCAL synchronous_commit = off";
// Sends the BEGIN `conn` owes, if it owes one (store_prepared.cpp).
void PayBegin(PGconn* conn);
// Throws the error of `result` (or of `conn` when there is no result) as soci would; frees it.
[[noreturn]] void ThrowPostgres(PGconn* conn, PGresult* result);
// Runs `text` as one simple query (it may hold several statements: one round trip), throwing
// its error as soci would (store_prepared.cpp).
void ExecSimple(PGconn* conn, const std::string& text);

// Waking the engines after a commit that changed work (PostgreSQL). NOTIFY takes a lock that the
// server holds until its transaction's commit has reached the disk, and every other transaction
// that notifies, in any database of the cluster, waits for it: sent in the transaction that
// commits the work, it let one of wf's commits wait for the disk at a time, whatever the number
// of committers or engines. So the work commits first, and the NOTIFY follows in a transaction
// of its own that does not wait for the disk (its lock is held for microseconds); a wake-up lost
// with it costs only the engines' next poll. These are that transaction's statements, `notify`
// (Dialect::NotifyWorkSql) third.
std::array<const char*, 4> WakeEnginesSql(const std::string& notify);
// COMMIT, then WakeEnginesSql, in one round trip. Throws COMMIT's error as soci would; the
// wake-up's errors are not the commit's and are dropped (store_prepared.cpp).
void CommitAndWake(PGconn* conn, const std::string& notify);
// After a wake-up transaction that failed half-way: ends it, so that the connection is idle.
void EndFailedWake(PGconn* conn);

inline void Exec(soci::session& sql, const std::string& text) {
  if (t_begin_owed != nullptr) PayBegin(PgConnection(sql));
  sql << text;
}

// The last (seq, hash) of the history chain of each case of a text[] parameter (PostgreSQL):
// kChainHeadsSql + the parameter + kChainHeadsTail. One backward probe of the primary key per
// case, whatever the length of its history and whatever the planner thinks of the table's size.
inline constexpr const char* kChainHeadsSql = "SELECT h.case_id, h.seq, h.hash FROM unnest(CAST(";
inline constexpr const char* kChainHeadsTail =
    " AS text[])) AS i (id) CROSS JOIN LATERAL (SELECT case_id, seq, hash FROM history"
    " WHERE case_id = i.id ORDER BY seq DESC LIMIT 1) AS h";

inline void AdvisoryLock(TxContext& ctx, std::string_view name) {
  std::string text = ctx.dialect.AdvisoryLockSql();
  if (text.empty()) return;
  Query q(ctx.sql, "SELECT 1 FROM (" + text + ") AS l");
  q.Bind("key", AdvisoryKey(name)).Columns("i").Execute();
}

// A row of a pipelined result (text format), read like a Query.
class TextRow {
 public:
  explicit TextRow(const Row& row) : row_(row) {}
  bool IsNull(int i) const { return !row_[i].has_value(); }
  std::string Text(int i) const { return row_[i].value_or(std::string()); }
  std::optional<std::string> OptText(int i) const { return row_[i]; }
  std::int64_t Int(int i) const { return IsNull(i) ? 0 : std::stoll(*row_[i]); }
  std::optional<std::int64_t> OptInt(int i) const {
    return IsNull(i) ? std::nullopt : std::optional<std::int64_t>(Int(i));
  }
  Timestamp Time(int i) const { return FromMicros(Int(i)); }
  std::optional<Timestamp> OptTime(int i) const {
    return IsNull(i) ? std::nullopt : std::optional<Timestamp>(Time(i));
  }
  // Column i, for ReadRow.
  Cell At(int i) const { return Cell(IsNull(i), row_[i] ? &*row_[i] : nullptr, std::nullopt); }

 private:
  const Row& row_;
};

template <typename T, typename Reader>
std::vector<T> ReadAll(Query& q, Reader read) {
  std::vector<T> rows;
  for (bool more = q.Execute(); more; more = q.Next()) rows.push_back(read(q));
  return rows;
}

// Every row of `q`, read through a record's column table.
template <typename Record>
std::vector<Record> ReadAll(Query& q, ColumnTable<Record> table) {
  std::vector<Record> rows;
  for (bool more = q.Execute(); more; more = q.Next()) rows.push_back(ReadRow(table, q));
  return rows;
}

// A PostgreSQL array literal of `items`, for `= ANY(CAST(:x AS text[]))`.
template <typename T, typename Field>
std::string ArrayLiteral(const std::vector<T>& items, Field field) {
  std::string out = "{";
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += ',';
    out += '"';
    for (char ch : std::string(field(items[i]))) {
      if (ch == '"' || ch == '\\') out += '\\';
      out += ch;
    }
    out += '"';
  }
  return out + "}";
}

inline std::string Where(const std::vector<std::string>& conditions) {
  if (conditions.empty()) return std::string();
  std::string out = " WHERE ";
  for (size_t i = 0; i < conditions.size(); ++i) {
    if (i > 0) out += " AND ";
    out += "(" + conditions[i] + ")";
  }
  return out;
}

}  // namespace detail

}  // namespace wf::engine
