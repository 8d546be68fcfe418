// The Store object (engine/store.hpp): opening a database, the connection pool, running
// transactions (begin, commit, rollback, reconnecting), the transaction-wide knobs of StoreTx,
// schema migrations, and wake-ups (LISTEN/NOTIFY on PostgreSQL, a pipe in-process). The row
// operations are in the other store_*.cpp files.
#include "engine/store.hpp"

#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "engine/private_files.hpp"
#include "engine/store_internal.hpp"
#include "workflows/i18n.hpp"

namespace wf::engine {

using namespace detail;  // the shared internals in engine/store_internal.hpp

// ---------------------------------------------------------------------------------------------
// Connections

Result<std::unique_ptr<soci::session>> detail::Connect(const StoreState& state) {
  const DatabaseTarget& target = state.target;
  try {
    std::unique_ptr<soci::session> sql;
    if (target.backend == Backend::kPostgres) {
      sql = std::make_unique<soci::session>(soci::postgresql, target.connect_string);
      // Bounds on every connection (issue 11; values and reasons in store_internal.hpp).
      ExecSimple(PgConnection(*sql), kSessionTimeoutsSql);
    } else {
      sql = std::make_unique<soci::session>(soci::sqlite3, target.connect_string);
      // Errors carry SQLite's extended codes, so a conflict is known by its code (MapError).
      auto* lite = static_cast<soci::sqlite3_session_backend*>(sql->get_backend());
      sqlite_api::sqlite3_extended_result_codes(lite->conn_, 1);
      // busy_timeout first: switching to WAL needs a lock another starter may hold.
      Exec(*sql, "PRAGMA busy_timeout = 10000");
      Exec(*sql, "PRAGMA journal_mode = WAL");
      Exec(*sql, "PRAGMA foreign_keys = ON");
      Exec(*sql, "PRAGMA synchronous = FULL");
      // Deleted rows are overwritten, not only unlinked: an erased case's key leaves no bytes.
      Exec(*sql, "PRAGMA secure_delete = ON");
    }
    return sql;
  } catch (const std::exception& e) {
    const auto* soci_error = dynamic_cast<const soci::soci_error*>(&e);
    return Status::Unavailable(
        TrFormat("cannot connect to {0}: {1}", target.redacted_url,
                 Trim(soci_error ? soci_error->get_error_message() : e.what())));
  }
}

namespace {

// Takes a connection slot from the pool for the lifetime of the object.
class PooledSession {
 public:
  explicit PooledSession(StoreState& state) : state_(state) {
    std::unique_lock lock(state_.pool_mu);
    state_.pool_cv.wait(lock, [this] { return !state_.idle.empty(); });
    session_ = std::move(state_.idle.back());
    state_.idle.pop_back();
  }
  ~PooledSession() {
    {
      std::lock_guard lock(state_.pool_mu);
      state_.idle.push_back(std::move(session_));
    }
    state_.pool_cv.notify_one();
  }
  PooledSession(const PooledSession&) = delete;
  PooledSession& operator=(const PooledSession&) = delete;

  std::unique_ptr<soci::session>& session() { return session_; }

 private:
  StoreState& state_;
  std::unique_ptr<soci::session> session_;
};

void WakeWaiter(const StoreState& state) {
  if (state.wake_pipe[1] < 0) return;
  char byte = 1;
  ssize_t ignored = write(state.wake_pipe[1], &byte, 1);  // a full pipe already wakes
  (void)ignored;
}

bool DrainWakePipe(const StoreState& state) {
  bool any = false;
  char buffer[64];
  while (read(state.wake_pipe[0], buffer, sizeof buffer) > 0) any = true;
  return any;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// StoreTx: the transaction as a whole

void StoreTx::DeferWrites() { context_.defer_writes = context_.dialect.is_postgres(); }

void StoreTx::AfterCommit(std::function<void()> done) {
  context_.after_commit.push_back(std::move(done));
}

void StoreTx::CommitWithLastPipeline() {
  context_.commit_with_pipeline = context_.dialect.is_postgres();
}

Status StoreTx::RelaxDurability() {
  if (!context_.dialect.is_postgres()) return Status::Ok();
  return Guard(context_, "relax durability", [&]() -> Status {
    PGconn* conn = PgConnection(context_.sql);
    if (conn != nullptr && t_begin_owed == conn) {  // sent with the owed BEGIN, when it goes
      t_begin_relaxed = true;
    } else {
      Exec(context_.sql, kRelaxDurabilitySql);
    }
    return Status::Ok();
  });
}

// ---------------------------------------------------------------------------------------------
// Store

Store::Store(std::unique_ptr<detail::StoreState> state) : state_(std::move(state)) {}
Store::~Store() = default;

Backend Store::backend() const { return state_->target.backend; }
const std::string& Store::redacted_url() const { return state_->target.redacted_url; }
void Store::SetCaseIdSource(CaseIdSource source) { state_->case_ids = std::move(source); }

KeySource& Store::keys() { return *state_->keys; }

Status Store::CheckpointLog() {
  if (state_->target.backend != Backend::kSqlite) return Status::Ok();
  PooledSession pooled(*state_);
  std::unique_ptr<soci::session>& sql = pooled.session();
  if (!sql) {
    Result<std::unique_ptr<soci::session>> fresh = Connect(*state_);
    if (!fresh) return fresh.error();
    sql = std::move(*fresh);
  }
  try {
    Exec(*sql, "PRAGMA wal_checkpoint(TRUNCATE)");
    return Status::Ok();
  } catch (const std::exception& e) {
    return MapError(sql.get(), Backend::kSqlite, "checkpoint the write-ahead log", e).status;
  }
}

Result<std::unique_ptr<Store>> Store::Open(std::string_view url, int pool_size,
                                           const std::function<Status(StoreTx&)>& first_read) {
  // SQLite answers BUSY without waiting in a few cases busy_timeout does not cover (two
  // processes creating the same file and switching it to WAL at once): try again shortly.
  for (int attempt = 1;; ++attempt) {
    Result<std::unique_ptr<Store>> store = OpenOnce(url, pool_size, first_read);
    if (store || store.error().code() != ErrorCode::kUnavailable || attempt == 5 ||
        url.rfind("sqlite:", 0) != 0) {
      return store;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50 * attempt));
  }
}

namespace {

// Store::keys's default key file.
std::string DefaultKeyFile(const DatabaseTarget& target) {
  if (const char* file = std::getenv("WF_KEY_FILE"); file != nullptr && *file != '\0') return file;
  if (target.backend == Backend::kSqlite) {
    const std::string& path = target.connect_string;
    if (path == ":memory:" || path.find("mode=memory") != std::string::npos) return "";
    if (path.rfind("file:", 0) == 0) return path.substr(5, path.find('?') - 5) + ".keys";
    return path + ".keys";
  }
  const char* config = std::getenv("XDG_CONFIG_HOME");
  if (config != nullptr && *config != '\0') return std::string(config) + "/wf/keys";
  const char* home = std::getenv("HOME");
  return std::string(home != nullptr && *home != '\0' ? home : ".") + "/.config/wf/keys";
}

}  // namespace

namespace {

// The highest applied schema version, 0 for an empty database. On PostgreSQL one statement: the
// table's absence is its error (42P01), which leaves this read transaction aborted, and nothing
// else reads in it then (the database needs its migrations first). A first statement in a fresh
// backend costs milliseconds of catalog look-ups; asking to_regclass first cost a second one.
Result<int> ReadSchemaVersion(TxContext& ctx) {
  return Guard(ctx, "read schema version", [&]() -> Result<int> {
    auto highest = [&] {
      Query max(ctx.sql, "SELECT COALESCE(MAX(version), 0) FROM wf_schema");
      max.Columns("i").Execute();
      return static_cast<int>(max.Int(0));
    };
    if (ctx.dialect.is_postgres()) {
      try {
        return highest();
      } catch (const soci::postgresql_soci_error& e) {
        if (std::string_view(e.sqlstate()) == "42P01") return 0;  // undefined_table
        throw;
      }
    }
    Query exists(ctx.sql,
                 "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'wf_schema'");
    exists.Columns("i").Execute();
    return exists.Int(0) == 0 ? 0 : highest();
  });
}

}  // namespace

Result<std::unique_ptr<Store>> Store::OpenOnce(std::string_view url, int pool_size,
                                               const std::function<Status(StoreTx&)>& first_read) {
  Result<DatabaseTarget> target = ParseDatabaseUrl(url);
  if (!target) return target.error();
  // A new SQLite file is made owner-only before SQLite creates it with the umask's mode.
  if (Status prepared = PrepareSqliteFile(*target); !prepared.ok()) return prepared;
  if (target->backend == Backend::kSqlite && target->connect_string == ":memory:") pool_size = 1;
  auto state = std::make_unique<detail::StoreState>(std::move(*target), std::max(pool_size, 1));
  state->keys = std::make_unique<KeySource>(DefaultKeyFile(state->target));
  // Connect one session now, so a wrong URL or an unreachable server fails here, clearly.
  Result<std::unique_ptr<soci::session>> first = Connect(*state);
  if (!first) return first.error();
  state->idle.back() = std::move(*first);
  std::unique_ptr<Store> store(new Store(std::move(state)));

  const int latest = store->state_->dialect.LatestSchemaVersion();
  int version = 0;
  bool first_read_done = false;
  // The caller's first reads share the schema check's transaction when the schema is current.
  Status checked = store->Run(false, [&](TxContext& ctx) {
    Result<int> read = ReadSchemaVersion(ctx);
    if (!read) return read.error();
    version = *read;
    if (version != latest || !first_read) return Status::Ok();
    first_read_done = true;
    StoreTx tx(ctx);
    return first_read(tx);
  });
  if (!checked.ok()) return checked;
  if (version > latest) {
    return Status::Internal(
        TrFormat("the database {0} has schema version {1}, newer than this wf knows ({2}): "
                 "upgrade wf",
                 store->redacted_url(), std::to_string(version), std::to_string(latest)));
  }
  if (version < latest) {
    Result<int> applied = store->Migrate();
    if (!applied) return applied.error();
  }
  if (first_read && !first_read_done) {
    if (Status read = store->Read(first_read); !read.ok()) return read;
  }
  return store;
}

Status Store::Run(bool write, const std::function<Status(detail::TxContext&)>& body,
                  bool defer_begin) {
  StoreState& state = *state_;
  const Dialect& dialect = state.dialect;
  defer_begin = defer_begin && write && dialect.is_postgres();
  PooledSession pooled(state);
  std::unique_ptr<soci::session>& sql = pooled.session();
  // A dead connection shows only when used; a BEGIN that fails on one is retried once on a fresh
  // connection, which is safe because nothing has happened yet.
  for (int attempt = 0;; ++attempt) {
    if (sql && !Healthy(*sql, dialect.backend())) sql.reset();
    if (!sql) {
      Result<std::unique_ptr<soci::session>> fresh = Connect(state);
      if (!fresh) return fresh.error();
      sql = std::move(*fresh);
    }
    try {
      if (!defer_begin) Exec(*sql, dialect.BeginSql(write));
      break;
    } catch (const std::exception& e) {
      MappedError mapped = MapError(sql.get(), dialect.backend(), "begin transaction", e);
      if (mapped.connection_lost) sql.reset();
      if (mapped.connection_lost && attempt == 0) continue;
      return mapped.status;
    }
  }

  TxContext ctx{*sql, dialect};
  ctx.case_ids = &state.case_ids;
  // A deferred BEGIN is owed until the first statement; it stays owed only if none was sent.
  // A transaction run inside another's body (on another connection) puts the outer one's debt
  // back when it ends.
  PGconn* const conn = defer_begin ? PgConnection(*sql) : nullptr;
  struct Owed {
    PGconn* const outer = t_begin_owed;
    const bool outer_relaxed = t_begin_relaxed;
    ~Owed() {
      t_begin_owed = outer;
      t_begin_relaxed = outer_relaxed;
    }
  } owed;
  t_begin_owed = conn;
  t_begin_relaxed = false;
  Status status;
  try {
    status = body(ctx);
  } catch (const std::exception& e) {
    status = Status::Internal(std::string("transaction failed: ") + e.what());
  }
  if (status.ok() && write && !ctx.committed) {
    ctx.commit_with_pipeline = !ctx.pending.empty();  // the writes still queued, and COMMIT
    status = FlushPending(ctx);
  } else if (ctx.committed && !ctx.pending.empty()) {
    status = Status::Internal("writes were queued after the transaction's COMMIT");
  }
  ctx.pending.clear();
  // A statement that failed after the COMMIT (one the body let go) leaves the commit standing.
  if (status.ok() && !ctx.failure.ok() && !ctx.committed) status = ctx.failure;
  const bool begun = conn == nullptr || t_begin_owed != conn;
  t_begin_owed = nullptr;  // COMMIT and ROLLBACK below owe nothing

  if (status.ok() && write && !ctx.committed) {
    try {
      std::string notify = dialect.NotifyWorkSql();
      if (begun && ctx.work_changed && !notify.empty()) {
        CommitAndWake(PgConnection(*sql), notify);
      } else if (begun) {
        Exec(*sql, "COMMIT");
      }
      ctx.committed = true;
    } catch (const std::exception& e) {
      MappedError mapped = MapError(sql.get(), dialect.backend(), "commit", e);
      if (mapped.connection_lost) {
        sql.reset();
        return Status::Unavailable(
            TrFormat("commit outcome unknown: {0}", mapped.status.message()));
      }
      try {
        Exec(*sql, "ROLLBACK");
      } catch (const std::exception&) {
        sql.reset();
      }
      return mapped.status;
    }
  }
  if (ctx.committed) {  // (a body may fail after a COMMIT it sent: what it committed stands)
    for (auto& done : ctx.after_commit) done();
    if (ctx.work_changed) WakeWaiter(state);
    if (ctx.connection_lost) sql.reset();
    return status;
  }
  if (ctx.connection_lost) {
    sql.reset();
  } else if (begun) {
    try {
      Exec(*sql, "ROLLBACK");
    } catch (const std::exception&) {
      sql.reset();  // cannot tell the connection's state: start afresh
    }
  }
  return status;
}

Status Store::Transact(const std::function<Status(StoreTx&)>& body) {
  return Run(true, [&](TxContext& ctx) {
    StoreTx tx(ctx);
    return body(tx);
  });
}

Status Store::TransactPipelined(const std::function<Status(StoreTx&)>& body) {
  return Run(
      true,
      [&](TxContext& ctx) {
        StoreTx tx(ctx);
        return body(tx);
      },
      true);
}

Status Store::Read(const std::function<Status(StoreTx&)>& body) {
  return Run(false, [&](TxContext& ctx) {
    StoreTx tx(ctx);
    return body(tx);
  });
}

Result<int> Store::SchemaVersion() {
  int version = 0;
  Status status = Run(false, [&](TxContext& ctx) {
    Result<int> read = ReadSchemaVersion(ctx);
    if (!read) return read.error();
    version = *read;
    return Status::Ok();
  });
  if (!status.ok()) return status;
  return version;
}

Result<int> Store::Migrate() {
  int applied = 0;
  for (const Migration& migration : state_->dialect.Migrations()) {
    bool did = false;
    Status status = Run(true, [&](TxContext& ctx) {
      return Guard(ctx, "migrate", [&]() -> Status {
        // A migration may rewrite big tables and waits for other starters' migrations.
        if (ctx.dialect.is_postgres()) Exec(ctx.sql, kMigrationTimeoutsSql);
        AdvisoryLock(ctx, "wf_schema");
        Exec(ctx.sql, ctx.dialect.CreateSchemaTableSql());
        bool applied_before = false;
        {  // finished before the migration runs: SQLite drops nothing under an open statement
          Query done(ctx.sql, "SELECT COUNT(*) FROM wf_schema WHERE version = :version");
          done.Bind("version", std::int64_t{migration.version}).Columns("i").Execute();
          applied_before = done.Int(0) > 0;
        }
        if (applied_before) return Status::Ok();  // another starter applied it meanwhile
        for (const std::string& statement : migration.statements) Exec(ctx.sql, statement);
        Query record(ctx.sql,
                     "INSERT INTO wf_schema (version, description, applied_at)"
                     " VALUES (:version, :description, :at)");
        record.Bind("version", std::int64_t{migration.version})
            .Bind("description", migration.description)
            .Bind("at", Now())
            .Execute();
        did = true;
        return Status::Ok();
      });
    });
    if (!status.ok()) {
      return Status(status.code(),
                    TrFormat("schema migration {0} ({1}): {2}", std::to_string(migration.version),
                             migration.description, status.message()));
    }
    if (did) ++applied;
  }
  return applied;
}

Result<bool> Store::WaitForWork(std::chrono::milliseconds timeout) {
  StoreState& state = *state_;
  std::lock_guard lock(state.listen_mu);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  const bool postgres = backend() == Backend::kPostgres;
  // Opens the LISTEN connection; true when it replaces one that was lost.
  auto listen = [&]() -> Result<bool> {
    state.listen.reset();
    Result<std::unique_ptr<soci::session>> fresh = Connect(state);
    if (!fresh) return fresh.error();
    try {
      Exec(**fresh, "LISTEN wf_work");
    } catch (const std::exception& e) {
      return MapError(fresh->get(), Backend::kPostgres, "listen for work", e).status;
    }
    state.listen = std::move(*fresh);
    bool reopened = state.listened_before;
    state.listened_before = true;
    return reopened;
  };
  if (postgres && (!state.listen || !Healthy(*state.listen, Backend::kPostgres))) {
    Result<bool> reopened = listen();
    if (!reopened || *reopened) return reopened;  // after a loss: notifications may be missed
  }
  PGconn* conn = postgres ? PgConnection(*state.listen) : nullptr;
  for (;;) {
    if (conn != nullptr) {
      if (PQconsumeInput(conn) == 0 || PQstatus(conn) != CONNECTION_OK) return listen();
      bool notified = false;
      while (PGnotify* notify = PQnotifies(conn)) {
        notified = true;
        PQfreemem(notify);
      }
      if (notified) {
        DrainWakePipe(state);
        return true;
      }
    }
    if (DrainWakePipe(state)) return true;
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd fds[2] = {{state.wake_pipe[0], POLLIN, 0}, {-1, POLLIN, 0}};
    if (conn != nullptr) fds[1].fd = PQsocket(conn);
    int ready = poll(fds, conn != nullptr ? 2 : 1, static_cast<int>(left.count()) + 1);
    if (ready < 0 && errno != EINTR) {
      return Status::Internal(std::string("waiting for work: poll: ") + std::strerror(errno));
    }
  }
}

void Store::Wake() { WakeWaiter(*state_); }

}  // namespace wf::engine
