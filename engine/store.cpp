#include "engine/store.hpp"

#include <fcntl.h>
#include <libpq-fe.h>
#include <poll.h>
#include <soci/postgresql/soci-postgresql.h>
#include <soci/soci.h>
#include <soci/sqlite3/soci-sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <map>
#include <set>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <tuple>
#include <unordered_map>

#include "engine/store_internal.hpp"
#include "workflows/hash.hpp"

namespace wf::engine {

namespace {

using namespace detail;  // the shared internals in engine/store_internal.hpp

// Statements per pipeline round: the server's answers to one round (a few dozen bytes each) must
// fit its socket buffer, because a blocking client reads them only after sending the round.
constexpr size_t kPipelineRound = 512;

// Sends `writes` in PostgreSQL pipeline mode, a round at a time, and reads every answer. The
// first failure dooms the transaction (the server aborts the rest of the round anyway).
Status SendPipelined(TxContext& ctx, const std::vector<DeferredWrite>& writes,
                     std::vector<std::int64_t>* affected = nullptr,
                     std::vector<std::vector<Row>>* rows = nullptr) {
  if (affected != nullptr) affected->assign(writes.size(), 0);
  if (rows != nullptr) rows->assign(writes.size(), {});
  PGconn* conn = PgConnection(ctx.sql);
  auto doom = [&](Status status, bool lost) {
    ctx.failure = std::move(status);
    ctx.connection_lost = lost;
    return ctx.failure;
  };
  if (conn == nullptr || PQstatus(conn) != CONNECTION_OK) {
    return doom(Status::Unavailable("database connection lost"), true);
  }
  for (size_t start = 0; start < writes.size(); start += kPipelineRound) {
    size_t end = std::min(writes.size(), start + kPipelineRound);
    if (PQenterPipelineMode(conn) != 1) {
      return doom(Status::Unavailable(std::string("pipeline: ") + PQerrorMessage(conn)), true);
    }
    bool sent = true;
    std::vector<const char*> values;
    for (size_t i = start; i < end && sent; ++i) {
      values.clear();
      for (const auto& p : writes[i].params) values.push_back(p ? p->c_str() : nullptr);
      sent = PQsendQueryParams(conn, writes[i].sql.c_str(), static_cast<int>(values.size()),
                               nullptr, values.data(), nullptr, nullptr, 0) == 1;
    }
    if (!sent || PQpipelineSync(conn) != 1) {
      return doom(Status::Unavailable(std::string("pipeline: ") + PQerrorMessage(conn)), true);
    }
    std::optional<MappedError> first;
    for (size_t i = start; i < end; ++i) {
      PGresult* result = PQgetResult(conn);
      if (result == nullptr) {
        return doom(Status::Unavailable(std::string("pipeline: ") + PQerrorMessage(conn)), true);
      }
      ExecStatusType kind = PQresultStatus(result);
      if (kind == PGRES_FATAL_ERROR && !first) {
        const char* state = PQresultErrorField(result, PG_DIAG_SQLSTATE);
        std::string message = Trim(PQresultErrorMessage(result));
        first = MapPostgresError(state ? state : "", PQstatus(conn) == CONNECTION_OK,
                                 writes[i].what + ": ", message, message);
      } else if (kind == PGRES_COMMAND_OK && affected != nullptr) {
        (*affected)[i] = std::atoll(PQcmdTuples(result));
      }
      if (kind == PGRES_TUPLES_OK && rows != nullptr) {
        auto& out = (*rows)[i];
        for (int r = 0; r < PQntuples(result); ++r) {
          Row row;
          for (int c = 0; c < PQnfields(result); ++c) {
            if (PQgetisnull(result, r, c)) {
              row.emplace_back();
            } else {
              row.emplace_back(std::string(PQgetvalue(result, r, c), PQgetlength(result, r, c)));
            }
          }
          out.push_back(std::move(row));
        }
      }
      if (kind == PGRES_TUPLES_OK && !first && !writes[i].expect_ids.empty()) {
        std::set<std::string> returned;
        for (int row = 0; row < PQntuples(result); ++row) {
          returned.insert(PQgetvalue(result, row, 0));
        }
        for (const auto& id : writes[i].expect_ids) {
          if (returned.count(id) == 0) {
            first = MappedError{Status::Conflict("case " + id + " was changed meanwhile")};
            break;
          }
        }
      }
      PQclear(result);
      while ((result = PQgetResult(conn)) != nullptr) PQclear(result);  // the query's end
    }
    PGresult* sync = PQgetResult(conn);
    bool synced = sync != nullptr && PQresultStatus(sync) == PGRES_PIPELINE_SYNC;
    PQclear(sync);
    if (!synced || PQexitPipelineMode(conn) != 1) {
      return doom(Status::Unavailable(std::string("pipeline: ") + PQerrorMessage(conn)), true);
    }
    if (first) return doom(first->status, first->connection_lost);
  }
  return Status::Ok();
}

// Multi-row statements for `rows`: `head`, then "($1, $2, ...), (...)" with `casts` applied
// per column ("" for none), then `tail`; as many rows a statement as PostgreSQL's parameter limit
// and a sensible statement size allow.
void AddMultiRow(std::vector<DeferredWrite>& out, const std::string& what, const std::string& head,
                 const std::vector<std::string>& casts, const std::string& tail,
                 const std::vector<Row>& rows, bool expect_first_column) {
  constexpr size_t kRowsPerStatement = 500;
  for (size_t start = 0; start < rows.size(); start += kRowsPerStatement) {
    size_t end = std::min(rows.size(), start + kRowsPerStatement);
    DeferredWrite write{what, head, {}, {}};
    for (size_t i = start; i < end; ++i) {
      write.sql += i > start ? ", (" : "(";
      for (size_t k = 0; k < casts.size(); ++k) {
        if (k > 0) write.sql += ", ";
        std::string param = "$" + std::to_string(write.params.size() + 1);
        write.sql += casts[k].empty() ? param : "CAST(" + param + " AS " + casts[k] + ")";
        write.params.push_back(rows[i][k]);
      }
      write.sql += ")";
      if (expect_first_column) write.expect_ids.push_back(*rows[i][0]);
    }
    write.sql += tail;
    out.push_back(std::move(write));
  }
}

}  // namespace

// Sends the queued writes, if any: cases, then history, then work, a few statements in all.
namespace {
// The statements that send `pending` (taken out of the context): cases, history, then work.
std::vector<DeferredWrite> PendingStatements(TxContext& ctx) {
  PendingWrites pending = std::move(ctx.pending);
  ctx.pending.clear();
  std::vector<DeferredWrite> writes;
  AddMultiRow(writes, "update cases",
              "UPDATE cases AS c SET status = v.status, data = v.data, state = v.state,"
              " deadline_at = v.deadline_at, clock_paused_at = v.paused, ended_at = v.ended,"
              " updated_at = v.updated, row_version = v.new_version FROM (VALUES ",
              {"text", "text", "jsonb", "jsonb", "bigint", "bigint", "bigint", "bigint", "bigint",
               "bigint"},
              ") AS v (id, status, data, state, deadline_at, paused, ended, updated, expected,"
              " new_version) WHERE c.id = v.id AND c.row_version = v.expected RETURNING c.id",
              pending.cases, true);
  AddMultiRow(writes, "append history",
              "INSERT INTO history (case_id, seq, at, actor, action, step, details, prev_hash,"
              " hash) VALUES ",
              {"", "bigint", "", "", "", "", "", "", ""}, "", pending.history, false);
  AddMultiRow(writes, "enqueue work",
              "INSERT INTO work (case_id, kind, step, activation, payload, run_at, created_at,"
              " state, attempt) SELECT *, 'ready', 0 FROM (VALUES ",
              {"text", "text", "text", "bigint", "jsonb", "bigint", "bigint"},
              ") AS v", pending.work, false);
  return writes;
}
}  // namespace

Status detail::FlushPending(TxContext& ctx) {
  if (ctx.pending.empty()) return ctx.failure;
  std::vector<DeferredWrite> writes = PendingStatements(ctx);
  if (!ctx.failure.ok()) return ctx.failure;
  return SendPipelined(ctx, writes);
}

namespace {

// ---------------------------------------------------------------------------------------------
// Rows

const std::string kProcedureColumns =
    "name, version, content_hash, source, title, agency, deployed_at";
constexpr std::string_view kProcedureKinds = "titttti";

ProcedureRecord ReadProcedure(const Query& q) {
  ProcedureRecord p;
  p.name = q.Text(0);
  p.version = static_cast<int>(q.Int(1));
  p.content_hash = q.Text(2);
  p.source = q.Text(3);
  p.title = q.Text(4);
  p.agency = q.Text(5);
  p.deployed_at = q.Time(6);
  return p;
}

std::string CaseColumns(const Dialect& d, bool documents) {
  return "id, procedure, version, status, " +
         (documents ? d.JsonText("data") + ", " + d.JsonText("state") : std::string("'', ''")) +
         ", dedupe_key, agency, started_by, started_at, updated_at, deadline_at, clock_paused_at,"
         " ended_at, row_version, parent_case, parent_activation";
}
constexpr std::string_view kCaseKinds =
    "ttitttttt"
    "iiiiii"
    "ti";

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

 private:
  const Row& row_;
};

template <typename R>
CaseRecord ReadCaseFrom(const R& q) {
  CaseRecord c;
  c.id = q.Text(0);
  c.procedure = q.Text(1);
  c.version = static_cast<int>(q.Int(2));
  c.status = q.Text(3);
  c.data = q.Text(4);
  c.state = q.Text(5);
  c.dedupe_key = q.OptText(6);
  c.agency = q.Text(7);
  c.started_by = q.Text(8);
  c.started_at = q.Time(9);
  c.updated_at = q.Time(10);
  c.deadline_at = q.OptTime(11);
  c.clock_paused_at = q.OptTime(12);
  c.ended_at = q.OptTime(13);
  c.row_version = q.Int(14);
  c.parent_case = q.OptText(15);
  c.parent_activation = q.OptInt(16);
  return c;
}
CaseRecord ReadCase(const Query& q) { return ReadCaseFrom(q); }

constexpr std::string_view kWorkKinds =
    "tittitt"
    "itiii";

WorkState ParseWorkState(const std::string& text) {
  if (text == "leased") return WorkState::kLeased;
  if (text == "done") return WorkState::kDone;
  return WorkState::kReady;
}

template <typename R>
WorkItem ReadWorkFrom(const R& q) {
  WorkItem w;
  w.case_id = q.Text(0);
  w.id = q.Int(1);
  w.kind = q.Text(2);
  w.step = q.Text(3);
  w.activation = q.Int(4);
  w.payload = q.Text(5);
  w.state = ParseWorkState(q.Text(6));
  w.run_at = q.Time(7);
  w.owner = q.Text(8);
  w.lease_until = q.OptTime(9);
  w.attempt = static_cast<int>(q.Int(10));
  w.created_at = q.Time(11);
  return w;
}
WorkItem ReadWork(const Query& q) { return ReadWorkFrom(q); }

std::string TaskColumns(const Dialect& d) {
  return "case_id, id, activation, step, title, role, agency, " + d.JsonText("form") +
         ", status, assignee, created_at, due_at, escalated_to, completed_by, completed_at, " +
         d.JsonText("submitted");
}
constexpr std::string_view kTaskKinds =
    "tiitttttt"
    "tiittit";

TaskStatus ParseTaskStatus(const std::string& text) {
  if (text == "claimed") return TaskStatus::kClaimed;
  if (text == "completed") return TaskStatus::kCompleted;
  if (text == "cancelled") return TaskStatus::kCancelled;
  return TaskStatus::kOpen;
}

TaskRecord ReadTask(const Query& q) {
  TaskRecord t;
  t.case_id = q.Text(0);
  t.id = q.Int(1);
  t.activation = q.Int(2);
  t.step = q.Text(3);
  t.title = q.Text(4);
  t.role = q.Text(5);
  t.agency = q.Text(6);
  t.form = q.Text(7);
  t.status = ParseTaskStatus(q.Text(8));
  t.assignee = q.OptText(9);
  t.created_at = q.Time(10);
  t.due_at = q.OptTime(11);
  t.escalated_to = q.OptText(12);
  t.completed_by = q.OptText(13);
  t.completed_at = q.OptTime(14);
  t.values = q.OptText(15);
  return t;
}

const std::string kIncidentColumns =
    "case_id, id, activation, step, message, status, created_at, resolved_at, resolved_by";
constexpr std::string_view kIncidentKinds = "tiitttiit";

IncidentRecord ReadIncident(const Query& q) {
  IncidentRecord i;
  i.case_id = q.Text(0);
  i.id = q.Int(1);
  i.activation = q.Int(2);
  i.step = q.Text(3);
  i.message = q.Text(4);
  i.status = q.Text(5) == "resolved" ? IncidentStatus::kResolved : IncidentStatus::kOpen;
  i.created_at = q.Time(6);
  i.resolved_at = q.OptTime(7);
  i.resolved_by = q.OptText(8);
  return i;
}

std::string EvidenceColumns(const Dialect& d) {
  return "subject, id, department, " + d.JsonText("result") + ", verified_at, case_id, step";
}
constexpr std::string_view kEvidenceKinds = "tittitt";

EvidenceRecord ReadEvidence(const Query& q) {
  EvidenceRecord e;
  e.subject = q.Text(0);
  e.id = q.Int(1);
  e.department = q.Text(2);
  e.result = q.Text(3);
  e.verified_at = q.Time(4);
  e.case_id = q.Text(5);
  e.step = q.Text(6);
  return e;
}

// "20260102-k3v9x2m7qa": the start date and 50 random bits.
std::string NewCaseId(Timestamp started_at) {
  static constexpr char kAlphabet[] = "0123456789abcdefghjkmnpqrstvwxyz";
  thread_local std::mt19937_64 random{std::random_device{}()};
  std::string date = FormatRfc3339(started_at).substr(0, 10);
  date.erase(std::remove(date.begin(), date.end(), '-'), date.end());
  std::uint64_t bits = random();
  std::string id = date + "-";
  for (int i = 0; i < 10; ++i, bits >>= 5) id.push_back(kAlphabet[bits & 31]);
  return id;
}

std::string DescribeTask(const TaskRecord& task) {
  std::string out = "task " + std::to_string(task.id) + " is " + TaskStatusName(task.status);
  if (task.status == TaskStatus::kClaimed && task.assignee) out += " by " + *task.assignee;
  return out;
}

// ---------------------------------------------------------------------------------------------
// Connections

Result<std::unique_ptr<soci::session>> Connect(const StoreState& state) {
  const DatabaseTarget& target = state.target;
  try {
    std::unique_ptr<soci::session> sql;
    if (target.backend == Backend::kPostgres) {
      sql = std::make_unique<soci::session>(soci::postgresql, target.connect_string);
      // Bounds on every connection (issue 11; values and reasons in store_internal.hpp).
      Exec(*sql, kSessionTimeoutsSql);
    } else {
      sql = std::make_unique<soci::session>(soci::sqlite3, target.connect_string);
      // busy_timeout first: switching to WAL needs a lock another starter may hold.
      Exec(*sql, "PRAGMA busy_timeout = 10000");
      Exec(*sql, "PRAGMA journal_mode = WAL");
      Exec(*sql, "PRAGMA foreign_keys = ON");
      Exec(*sql, "PRAGMA synchronous = FULL");
    }
    return sql;
  } catch (const std::exception& e) {
    const auto* soci_error = dynamic_cast<const soci::soci_error*>(&e);
    return Status::Unavailable("cannot connect to " + target.redacted_url + ": " +
                               Trim(soci_error ? soci_error->get_error_message() : e.what()));
  }
}

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

constexpr size_t kWorkRowsPerInsert = 200;

}  // namespace

// ---------------------------------------------------------------------------------------------

const char* WorkStateName(WorkState state) {
  switch (state) {
    case WorkState::kReady:
      return "ready";
    case WorkState::kLeased:
      return "leased";
    case WorkState::kDone:
      return "done";
  }
  return "ready";
}

const char* TaskStatusName(TaskStatus status) {
  switch (status) {
    case TaskStatus::kOpen:
      return "open";
    case TaskStatus::kClaimed:
      return "claimed";
    case TaskStatus::kCompleted:
      return "completed";
    case TaskStatus::kCancelled:
      return "cancelled";
  }
  return "open";
}

std::string EvidenceSubject(std::string_view department, std::string_view operation,
                            std::string_view rendered_call_json) {
  std::string text;
  text.reserve(department.size() + operation.size() + rendered_call_json.size() + 2);
  text.append(department).append("\n").append(operation).append("\n").append(rendered_call_json);
  return Sha256Hex(text);
}

// --- procedures

Result<DeployOutcome> StoreTx::DeployProcedure(const ProcedureRecord& p) {
  return Guard(context_, "deploy procedure " + p.name, [&]() -> Result<DeployOutcome> {
    AdvisoryLock(context_, "wf_procedure:" + p.name);
    Query existing(context_.sql,
                   "SELECT version FROM procedures WHERE name = :name AND content_hash = :hash");
    existing.Bind("name", p.name).Bind("hash", p.content_hash).Columns("i");
    if (existing.Execute()) return DeployOutcome{static_cast<int>(existing.Int(0)), false};
    Query latest(context_.sql,
                 "SELECT COALESCE(MAX(version), 0) FROM procedures WHERE name = :name");
    latest.Bind("name", p.name).Columns("i").Execute();
    int version = static_cast<int>(latest.Int(0)) + 1;
    Query insert(context_.sql,
                 "INSERT INTO procedures (" + kProcedureColumns +
                     ") VALUES (:name, :version, :hash, :source, :title, :agency, :at)");
    insert.Bind("name", p.name)
        .Bind("version", std::int64_t{version})
        .Bind("hash", p.content_hash)
        .Bind("source", p.source)
        .Bind("title", p.title)
        .Bind("agency", p.agency)
        .Bind("at", p.deployed_at)
        .Execute();
    return DeployOutcome{version, true};
  });
}

Result<ProcedureRecord> StoreTx::LatestProcedure(const std::string& name) {
  return Guard(context_, "read procedure " + name, [&]() -> Result<ProcedureRecord> {
    Query q(context_.sql, "SELECT " + kProcedureColumns +
                              " FROM procedures WHERE name = :name ORDER BY version DESC LIMIT 1");
    q.Bind("name", name).Columns(kProcedureKinds);
    if (!q.Execute()) return Status::NotFound("no procedure named '" + name + "' is deployed");
    return ReadProcedure(q);
  });
}

Result<ProcedureRecord> StoreTx::GetProcedure(const std::string& name, int version) {
  return Guard(context_, "read procedure " + name, [&]() -> Result<ProcedureRecord> {
    Query q(context_.sql, "SELECT " + kProcedureColumns +
                              " FROM procedures WHERE name = :name AND version = :version");
    q.Bind("name", name).Bind("version", std::int64_t{version}).Columns(kProcedureKinds);
    if (!q.Execute()) {
      return Status::NotFound("procedure '" + name + "' has no version " + std::to_string(version));
    }
    return ReadProcedure(q);
  });
}

Result<std::vector<ProcedureRecord>> StoreTx::ListProcedures() {
  return Guard(context_, "list procedures", [&]() -> Result<std::vector<ProcedureRecord>> {
    Query q(context_.sql,
            "SELECT name, version, content_hash, '', title, agency, deployed_at FROM procedures"
            " ORDER BY name, version");
    q.Columns(kProcedureKinds);
    return ReadAll<ProcedureRecord>(q, ReadProcedure);
  });
}

// --- cases

Result<std::string> StoreTx::InsertCase(const CaseRecord& c) {
  return Guard(context_, "insert case", [&]() -> Result<std::string> {
    if (c.dedupe_key) {
      Query open(context_.sql,
                 "SELECT id FROM cases WHERE procedure = :procedure AND dedupe_key = :key"
                 " AND status = 'open'");
      open.Bind("procedure", c.procedure).Bind("key", *c.dedupe_key).Columns("t");
      if (open.Execute()) {
        return Status::Conflict("case " + open.Text(0) + " of " + c.procedure +
                                " is already open with dedupe key '" + *c.dedupe_key + "'");
      }
    }
    std::string id = c.id.empty() ? NewCaseId(c.started_at) : c.id;
    Query q(context_.sql,
            "INSERT INTO cases (id, procedure, version, status, data, state, dedupe_key, agency,"
            " started_by, started_at, updated_at, deadline_at, clock_paused_at, ended_at,"
            " row_version, parent_case, parent_activation) VALUES (:id, :procedure, :version,"
            " :status, :data, :state, :dedupe, :agency, :started_by, :started_at, :updated_at,"
            " :deadline_at, :paused_at, :ended_at, 1, :parent, :parent_activation)");
    q.Bind("id", id)
        .Bind("procedure", c.procedure)
        .Bind("version", std::int64_t{c.version})
        .Bind("status", c.status)
        .Bind("data", c.data)
        .Bind("state", c.state)
        .Bind("dedupe", c.dedupe_key)
        .Bind("agency", c.agency)
        .Bind("started_by", c.started_by)
        .Bind("started_at", c.started_at)
        .Bind("updated_at", c.updated_at)
        .Bind("deadline_at", c.deadline_at)
        .Bind("paused_at", c.clock_paused_at)
        .Bind("ended_at", c.ended_at)
        .Bind("parent", c.parent_case)
        .Bind("parent_activation", c.parent_activation)
        .Execute();
    context_.heads[id] = {0, std::string()};  // a new case has no history yet
    return id;
  });
}

namespace {
Result<CaseRecord> SelectCase(TxContext& ctx, const std::string& id, bool for_update) {
  return Guard(ctx, "read case " + id, [&]() -> Result<CaseRecord> {
    Query q(ctx.sql, "SELECT " + CaseColumns(ctx.dialect, true) + " FROM cases WHERE id = :id" +
                         (for_update && ctx.dialect.is_postgres() ? " FOR UPDATE" : ""));
    q.Bind("id", id).Columns(kCaseKinds);
    if (!q.Execute()) return Status::NotFound("no case " + id);
    return ReadCase(q);
  });
}
}  // namespace

Result<CaseRecord> StoreTx::GetCase(const std::string& id) {
  return SelectCase(context_, id, false);
}

Result<CaseRecord> StoreTx::GetCaseForUpdate(const std::string& id) {
  return SelectCase(context_, id, true);
}

namespace {
std::optional<std::string> MicrosParam(std::optional<Timestamp> t) {
  return t ? std::optional<std::string>(std::to_string(ToMicros(*t))) : std::nullopt;
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
}  // namespace

void StoreTx::DeferWrites() { context_.defer_writes = context_.dialect.is_postgres(); }

Status StoreTx::RelaxDurability() {
  if (!context_.dialect.is_postgres()) return Status::Ok();
  return Guard(context_, "relax durability", [&]() -> Status {
    Exec(context_.sql, "SET LOCAL synchronous_commit = off");
    return Status::Ok();
  });
}

Status StoreTx::UpdateCase(CaseRecord& c) {
  if (context_.defer_writes) {
    if (!context_.failure.ok()) return context_.failure;
    auto& pending = context_.pending;
    Row row{c.id,
            c.status,
            c.data,
            c.state,
            MicrosParam(c.deadline_at),
            MicrosParam(c.clock_paused_at),
            MicrosParam(c.ended_at),
            std::to_string(ToMicros(c.updated_at)),
            std::to_string(c.row_version),
            std::to_string(c.row_version + 1)};
    auto [it, first] = pending.case_index.emplace(c.id, pending.cases.size());
    if (first) {
      pending.cases.push_back(std::move(row));
    } else {
      row[8] = pending.cases[it->second][8];  // expect the version the first update expected
      pending.cases[it->second] = std::move(row);
    }
    ++c.row_version;
    return Status::Ok();
  }
  return Guard(context_, "update case " + c.id, [&]() -> Status {
    Query q(context_.sql,
            "UPDATE cases SET status = :status, data = :data, state = :state,"
            " deadline_at = :deadline_at, clock_paused_at = :paused_at, ended_at = :ended_at,"
            " updated_at = :updated_at, row_version = row_version + 1"
            " WHERE id = :id AND row_version = :expected");
    q.Bind("status", c.status)
        .Bind("data", c.data)
        .Bind("state", c.state)
        .Bind("deadline_at", c.deadline_at)
        .Bind("paused_at", c.clock_paused_at)
        .Bind("ended_at", c.ended_at)
        .Bind("updated_at", c.updated_at)
        .Bind("id", c.id)
        .Bind("expected", c.row_version);
    q.Execute();
    if (q.AffectedRows() == 1) {
      ++c.row_version;
      return Status::Ok();
    }
    Query now(context_.sql, "SELECT row_version FROM cases WHERE id = :id");
    now.Bind("id", c.id).Columns("i");
    if (!now.Execute()) return Status::NotFound("no case " + c.id);
    return Status::Conflict("case " + c.id + " was changed meanwhile (version " +
                            std::to_string(now.Int(0)) + ", expected " +
                            std::to_string(c.row_version) + ")");
  });
}

Result<std::vector<CaseRecord>> StoreTx::GetCasesForUpdate(std::vector<std::string> ids) {
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  if (!context_.dialect.is_postgres()) {
    std::vector<CaseRecord> cases;
    for (const auto& id : ids) {
      auto record = GetCaseForUpdate(id);
      if (record) {
        cases.push_back(std::move(*record));
      } else if (record.error().code() != ErrorCode::kNotFound) {
        return record.error();
      }
    }
    return cases;
  }
  return Guard(context_, "read cases", [&]() -> Result<std::vector<CaseRecord>> {
    if (ids.empty()) return std::vector<CaseRecord>();
    const std::string array = ArrayLiteral(ids, [](const std::string& id) { return id; });
    Query q(context_.sql, "SELECT " + CaseColumns(context_.dialect, true) +
                              " FROM cases WHERE id = ANY(CAST(:ids AS text[])) ORDER BY id"
                              " FOR UPDATE");
    q.Bind("ids", array).Columns(kCaseKinds);
    std::vector<CaseRecord> cases = ReadAll<CaseRecord>(q, ReadCase);
    // The chain heads, read after the locks are held (a statement of its own, so that it sees
    // what a transaction we waited for appended).
    Query heads(context_.sql,
                "SELECT DISTINCT ON (case_id) case_id, seq, hash FROM history"
                " WHERE case_id = ANY(CAST(:ids AS text[])) ORDER BY case_id, seq DESC");
    heads.Bind("ids", array).Columns("tit");
    for (bool more = heads.Execute(); more; more = heads.Next()) {
      context_.heads[heads.Text(0)] = {heads.Int(1), heads.Text(2)};
    }
    return cases;
  });
}

Result<std::vector<CaseRecord>> StoreTx::GetCases(std::vector<std::string> ids) {
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  std::vector<CaseRecord> cases;
  if (!context_.dialect.is_postgres()) {
    for (const auto& id : ids) {
      auto record = GetCase(id);
      if (record) cases.push_back(std::move(*record));
      if (!record && record.error().code() != ErrorCode::kNotFound) return record.error();
    }
    return cases;
  }
  return Guard(context_, "read cases", [&]() -> Result<std::vector<CaseRecord>> {
    if (ids.empty()) return cases;
    Query q(context_.sql, "SELECT " + CaseColumns(context_.dialect, true) +
                              " FROM cases WHERE id = ANY(CAST(:ids AS text[])) ORDER BY id");
    q.Bind("ids", ArrayLiteral(ids, [](const std::string& id) { return id; })).Columns(kCaseKinds);
    return ReadAll<CaseRecord>(q, ReadCase);
  });
}

Result<std::vector<CaseRecord>> StoreTx::ListCases(const CaseFilter& filter) {
  return Guard(context_, "list cases", [&]() -> Result<std::vector<CaseRecord>> {
    std::vector<std::string> where;
    if (filter.status) where.push_back("status = :status");
    if (filter.procedure) where.push_back("procedure = :procedure");
    if (filter.agency) where.push_back("agency = :agency");
    if (filter.overdue_at) {
      where.push_back(
          "status = 'open' AND deadline_at < :now"
          " AND (clock_paused_at IS NULL OR deadline_at < clock_paused_at)");
    }
    Query q(context_.sql, "SELECT " + CaseColumns(context_.dialect, false) + " FROM cases" +
                              Where(where) + " ORDER BY started_at DESC, id DESC" +
                              (filter.limit > 0 ? " LIMIT :limit" : ""));
    if (filter.status) q.Bind("status", *filter.status);
    if (filter.procedure) q.Bind("procedure", *filter.procedure);
    if (filter.agency) q.Bind("agency", *filter.agency);
    if (filter.overdue_at) q.Bind("now", *filter.overdue_at);
    if (filter.limit > 0) q.Bind("limit", std::int64_t{filter.limit});
    q.Columns(kCaseKinds);
    return ReadAll<CaseRecord>(q, ReadCase);
  });
}

Result<std::optional<CaseRecord>> StoreTx::FindOpenCaseByDedupe(const std::string& procedure,
                                                                const std::string& dedupe_key) {
  return Guard(context_, "find case by dedupe key", [&]() -> Result<std::optional<CaseRecord>> {
    Query q(context_.sql, "SELECT " + CaseColumns(context_.dialect, true) +
                              " FROM cases WHERE procedure = :procedure AND dedupe_key = :key"
                              " AND status = 'open'");
    q.Bind("procedure", procedure).Bind("key", dedupe_key).Columns(kCaseKinds);
    if (!q.Execute()) return std::optional<CaseRecord>();
    return std::optional<CaseRecord>(ReadCase(q));
  });
}

Result<std::vector<CaseRecord>> StoreTx::ListChildCases(const std::string& parent_case) {
  return Guard(context_, "list sub-cases", [&]() -> Result<std::vector<CaseRecord>> {
    Query q(context_.sql, "SELECT " + CaseColumns(context_.dialect, false) +
                              " FROM cases WHERE parent_case = :parent ORDER BY started_at, id");
    q.Bind("parent", parent_case).Columns(kCaseKinds);
    return ReadAll<CaseRecord>(q, ReadCase);
  });
}

// --- work

void StoreTx::ClaimNewWork(const std::string& owner, Timestamp now,
                           std::chrono::microseconds lease, int limit) {
  auto& claim = context_.claim_new;
  claim.limit = limit;
  claim.owner = owner;
  claim.now = now;
  claim.lease = lease;
  claim.rows.clear();
}

Result<std::vector<WorkItem>> StoreTx::InsertClaimedWork() {
  auto& claim = context_.claim_new;
  std::vector<NewWork> rows;
  rows.swap(claim.rows);
  claim.limit = 0;
  if (context_.dialect.is_postgres()) {
    // The queued writes and the claimed rows' insert, in one round trip.
    if (!context_.failure.ok()) return context_.failure;
    std::vector<DeferredWrite> writes = PendingStatements(context_);
    const size_t first_insert = writes.size();
    const std::string until = std::to_string(ToMicros(claim.now + claim.lease));
    const std::string now = std::to_string(ToMicros(claim.now));
    std::vector<Row> values;
    for (const NewWork& w : rows) {
      values.push_back(Row{w.case_id, w.kind, w.step, std::to_string(w.activation), w.payload,
                           until, claim.owner, until, now});
    }
    AddMultiRow(writes, "enqueue claimed work",
                "INSERT INTO work (case_id, kind, step, activation, payload, run_at, owner,"
                " lease_until, created_at, state, attempt) SELECT *, 'leased', 1 FROM (VALUES ",
                {"text", "text", "text", "bigint", "jsonb", "bigint", "text", "bigint", "bigint"},
                ") AS v RETURNING " + context_.dialect.WorkColumns(""), values, false);
    std::vector<std::vector<Row>> results;
    if (Status sent = SendPipelined(context_, writes, nullptr, &results); !sent.ok()) return sent;
    std::vector<WorkItem> items;
    for (size_t i = first_insert; i < results.size(); ++i) {
      for (const Row& row : results[i]) {
        WorkItem item = ReadWorkFrom(TextRow(row));
        item.ready_at = item.created_at;
        items.push_back(std::move(item));
      }
    }
    return items;
  }
  return Guard(context_, "enqueue claimed work", [&]() -> Result<std::vector<WorkItem>> {
    std::vector<WorkItem> items;
    const Timestamp until = claim.now + claim.lease;
    for (size_t start = 0; start < rows.size(); start += kWorkRowsPerInsert) {
      size_t end = std::min(rows.size(), start + kWorkRowsPerInsert);
      std::string text =
          "INSERT INTO work (case_id, kind, step, activation, payload, state, run_at, owner,"
          " lease_until, attempt, created_at) VALUES ";
      for (size_t i = start; i < end; ++i) {
        std::string n = std::to_string(i - start);
        if (i > start) text += ", ";
        text += "(:c" + n + ", :k" + n + ", :s" + n + ", :a" + n + ", :p" + n +
                ", 'leased', :until, :owner, :until, 1, :now)";
      }
      Query q(context_.sql, text + " RETURNING " + context_.dialect.WorkColumns(""));
      q.Bind("until", until).Bind("owner", claim.owner).Bind("now", claim.now);
      for (size_t i = start; i < end; ++i) {
        std::string n = std::to_string(i - start);
        const NewWork& w = rows[i];
        q.Bind("c" + n, w.case_id)
            .Bind("k" + n, w.kind)
            .Bind("s" + n, w.step)
            .Bind("a" + n, w.activation)
            .Bind("p" + n, w.payload);
      }
      q.Columns(kWorkKinds);
      for (bool more = q.Execute(); more; more = q.Next()) {
        WorkItem item = ReadWork(q);
        item.ready_at = item.created_at;
        items.push_back(std::move(item));
      }
    }
    return items;
  });
}

Status StoreTx::InsertWork(const std::vector<NewWork>& all) {
  // The engine's fast path takes what is due now, up to its limit (ClaimNewWork).
  std::vector<NewWork> kept;
  const std::vector<NewWork>* rest = &all;
  auto& claim = context_.claim_new;
  if (static_cast<int>(claim.rows.size()) < claim.limit) {
    for (const NewWork& w : all) {
      if (static_cast<int>(claim.rows.size()) < claim.limit && w.run_at <= claim.now) {
        claim.rows.push_back(w);
      } else {
        kept.push_back(w);
      }
    }
    rest = &kept;
  }
  const std::vector<NewWork>& work = *rest;
  if (context_.defer_writes) {
    if (!context_.failure.ok()) return context_.failure;
    const std::string now = std::to_string(ToMicros(Now()));
    for (const NewWork& w : work) {
      context_.pending.work.push_back(Row{w.case_id, w.kind, w.step, std::to_string(w.activation),
                                          w.payload, std::to_string(ToMicros(w.run_at)), now});
    }
    if (!work.empty()) context_.work_changed = true;
    return Status::Ok();
  }
  return Guard(context_, "enqueue work", [&]() -> Status {
    const Timestamp now = Now();
    for (size_t start = 0; start < work.size(); start += kWorkRowsPerInsert) {
      size_t end = std::min(work.size(), start + kWorkRowsPerInsert);
      std::string text =
          "INSERT INTO work (case_id, kind, step, activation, payload, state, run_at, attempt,"
          " created_at) VALUES ";
      for (size_t i = start; i < end; ++i) {
        std::string n = std::to_string(i - start);
        if (i > start) text += ", ";
        text += "(:c" + n + ", :k" + n + ", :s" + n + ", :a" + n + ", :p" + n + ", 'ready', :r" +
                n + ", 0, :t" + n + ")";
      }
      Query q(context_.sql, std::move(text));
      for (size_t i = start; i < end; ++i) {
        std::string n = std::to_string(i - start);
        const NewWork& w = work[i];
        q.Bind("c" + n, w.case_id)
            .Bind("k" + n, w.kind)
            .Bind("s" + n, w.step)
            .Bind("a" + n, w.activation)
            .Bind("p" + n, w.payload)
            .Bind("r" + n, w.run_at)
            .Bind("t" + n, now);
      }
      q.Execute();
    }
    if (!work.empty()) context_.work_changed = true;
    return Status::Ok();
  });
}

Result<std::vector<WorkItem>> StoreTx::ClaimWork(const std::string& owner, Timestamp now,
                                                 std::chrono::microseconds lease, int limit) {
  return Guard(context_, "claim work", [&]() -> Result<std::vector<WorkItem>> {
    if (limit <= 0) return std::vector<WorkItem>();
    Query q(context_.sql, context_.dialect.ClaimWorkSql());
    q.Bind("owner", owner)
        .Bind("lease_until", now + lease)
        .Bind("lease_run_at", now + lease)
        .Bind("now", now)
        .Bind("limit", std::int64_t{limit})
        .Columns(std::string(kWorkKinds) + "i");
    const int ready = static_cast<int>(kWorkKinds.size());
    std::vector<WorkItem> items = ReadAll<WorkItem>(q, [ready](const Query& row) {
      WorkItem item = ReadWork(row);
      item.ready_at = row.Time(ready);
      return item;
    });
    std::sort(items.begin(), items.end(), [](const WorkItem& a, const WorkItem& b) {
      return std::tie(a.created_at, a.id) < std::tie(b.created_at, b.id);
    });
    return items;
  });
}

Result<bool> StoreTx::CompleteWork(const std::string& case_id, std::int64_t id, int attempt,
                                   const std::string& owner) {
  return Guard(context_, "complete work", [&]() -> Result<bool> {
    Query q(context_.sql,
            "DELETE FROM work WHERE case_id = :case_id AND id = :id"
            " AND state = 'leased' AND owner = :owner AND attempt = :attempt");
    q.Bind("case_id", case_id)
        .Bind("id", id)
        .Bind("owner", owner)
        .Bind("attempt", std::int64_t{attempt})
        .Execute();
    return q.AffectedRows() == 1;
  });
}

Result<std::vector<bool>> StoreTx::CompleteWorkBatch(const std::vector<WorkFence>& rows,
                                                     const std::string& owner,
                                                     std::vector<CaseRecord>* locked) {
  std::vector<bool> done(rows.size(), false);
  std::vector<std::string> ids;
  if (locked != nullptr) {
    for (const WorkFence& f : rows) ids.push_back(f.case_id);
    std::sort(ids.begin(), ids.end());
    ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  }
  if (!context_.dialect.is_postgres()) {
    for (size_t i = 0; i < rows.size(); ++i) {
      auto one = CompleteWork(rows[i].case_id, rows[i].id, rows[i].attempt, owner);
      if (!one) return one.error();
      done[i] = *one;
    }
    if (locked != nullptr) {
      auto cases = GetCasesForUpdate(ids);
      if (!cases) return cases.error();
      *locked = std::move(*cases);
    }
    return done;
  }
  // One fenced UPDATE by primary key a row, all in one pipeline: a join against an array of
  // keys lets the planner scan the whole table when its statistics are thin.
  if (rows.empty()) return done;
  if (Status flushed = FlushPending(context_); !flushed.ok()) return flushed;
  std::vector<DeferredWrite> writes;
  writes.reserve(rows.size());
  for (const WorkFence& f : rows) {
    writes.push_back(DeferredWrite{
        "complete work",
        "DELETE FROM work WHERE case_id = $1 AND id = $2 AND attempt = $3"
        " AND state = 'leased' AND owner = $4",
        {f.case_id, std::to_string(f.id), std::to_string(f.attempt), owner},
        {}});
  }
  if (locked != nullptr && !ids.empty()) {
    // The cases, locked in id order, and then (a statement of its own, so that it sees what a
    // transaction we waited for appended) their chain heads: in the same round trip.
    const std::string array = ArrayLiteral(ids, [](const std::string& id) { return id; });
    writes.push_back(DeferredWrite{"lock cases",
                                   "SELECT " + CaseColumns(context_.dialect, true) +
                                       " FROM cases WHERE id = ANY(CAST($1 AS text[]))"
                                       " ORDER BY id FOR UPDATE",
                                   {array},
                                   {}});
    writes.push_back(DeferredWrite{"read chain heads",
                                   "SELECT DISTINCT ON (case_id) case_id, seq, hash FROM history"
                                   " WHERE case_id = ANY(CAST($1 AS text[]))"
                                   " ORDER BY case_id, seq DESC",
                                   {array},
                                   {}});
  }
  std::vector<std::int64_t> affected;
  std::vector<std::vector<Row>> results;
  if (Status sent = SendPipelined(context_, writes, &affected, &results); !sent.ok()) return sent;
  for (size_t i = 0; i < rows.size(); ++i) done[i] = affected[i] == 1;
  if (locked != nullptr) {
    locked->clear();
    if (!ids.empty()) {
      for (const Row& row : results[rows.size()]) locked->push_back(ReadCaseFrom(TextRow(row)));
      for (const Row& row : results[rows.size() + 1]) {
        TextRow head(row);
        context_.heads[head.Text(0)] = {head.Int(1), head.Text(2)};
      }
    }
  }
  return done;
}

Result<bool> StoreTx::RescheduleWork(const std::string& case_id, std::int64_t id, int attempt,
                                     const std::string& owner, Timestamp run_at) {
  return Guard(context_, "reschedule work", [&]() -> Result<bool> {
    Query q(context_.sql,
            "UPDATE work SET state = 'ready', run_at = :run_at, lease_until = NULL"
            " WHERE case_id = :case_id AND id = :id AND state = 'leased' AND owner = :owner"
            " AND attempt = :attempt");
    q.Bind("run_at", run_at)
        .Bind("case_id", case_id)
        .Bind("id", id)
        .Bind("owner", owner)
        .Bind("attempt", std::int64_t{attempt})
        .Execute();
    bool rescheduled = q.AffectedRows() == 1;
    if (rescheduled) context_.work_changed = true;
    return rescheduled;
  });
}

Result<std::int64_t> StoreTx::CancelWork(const std::string& case_id,
                                         std::optional<std::int64_t> activation) {
  return Guard(context_, "cancel work", [&]() -> Result<std::int64_t> {
    Query q(context_.sql, std::string("DELETE FROM work WHERE case_id = :case_id") +
                              (activation ? " AND activation = :activation" : "") +
                              " AND state <> 'done'");
    q.Bind("case_id", case_id);
    if (activation) q.Bind("activation", *activation);
    q.Execute();
    return q.AffectedRows();
  });
}

Result<WorkCounts> StoreTx::CountWork(Timestamp now) {
  return Guard(context_, "count work", [&]() -> Result<WorkCounts> {
    Query q(context_.sql,
            "SELECT COALESCE(SUM(CASE WHEN state = 'ready' THEN 1 ELSE 0 END), 0),"
            " COALESCE(SUM(CASE WHEN run_at <= :now THEN 1 ELSE 0 END), 0),"
            " COALESCE(SUM(CASE WHEN state = 'leased' THEN 1 ELSE 0 END), 0)"
            " FROM work WHERE state <> 'done'");
    q.Bind("now", now).Columns("iii").Execute();
    return WorkCounts{q.Int(0), q.Int(1), q.Int(2)};
  });
}

Result<std::optional<Timestamp>> StoreTx::NextWorkDue() {
  return Guard(context_, "next work due", [&]() -> Result<std::optional<Timestamp>> {
    Query q(context_.sql, "SELECT MIN(run_at) FROM work WHERE state <> 'done'");
    q.Columns("i").Execute();
    return q.OptTime(0);
  });
}

Result<std::vector<WorkItem>> StoreTx::ListLeasedWork(const std::string& owner) {
  return Guard(context_, "list leased work", [&]() -> Result<std::vector<WorkItem>> {
    Query q(context_.sql, "SELECT " + context_.dialect.WorkColumns("") +
                              " FROM work WHERE state = 'leased' AND owner = :owner");
    q.Bind("owner", owner).Columns(kWorkKinds);
    return ReadAll<WorkItem>(q, [](const Query& row) {
      WorkItem item = ReadWork(row);
      item.ready_at = item.created_at;
      return item;
    });
  });
}

Result<std::vector<WorkItem>> StoreTx::ListWork(const std::string& case_id) {
  return Guard(context_, "list work", [&]() -> Result<std::vector<WorkItem>> {
    Query q(context_.sql, "SELECT " + context_.dialect.WorkColumns("") +
                              " FROM work WHERE case_id = :case_id ORDER BY id");
    q.Bind("case_id", case_id).Columns(kWorkKinds);
    return ReadAll<WorkItem>(q, ReadWork);
  });
}

// --- tasks

Result<std::int64_t> StoreTx::InsertTask(const TaskRecord& t) {
  return Guard(context_, "insert task", [&]() -> Result<std::int64_t> {
    Query q(context_.sql,
            "INSERT INTO tasks (case_id, activation, step, title, role, agency, form, status,"
            " assignee, created_at, due_at, escalated_to) VALUES (:case_id, :activation, :step,"
            " :title, :role, :agency, :form, :status, :assignee, :created_at, :due_at,"
            " :escalated_to) RETURNING id");
    q.Bind("case_id", t.case_id)
        .Bind("activation", t.activation)
        .Bind("step", t.step)
        .Bind("title", t.title)
        .Bind("role", t.role)
        .Bind("agency", t.agency)
        .Bind("form", t.form)
        .Bind("status", TaskStatusName(t.status))
        .Bind("assignee", t.assignee)
        .Bind("created_at", t.created_at)
        .Bind("due_at", t.due_at)
        .Bind("escalated_to", t.escalated_to)
        .Columns("i")
        .Execute();
    return q.Int(0);
  });
}

Result<TaskRecord> StoreTx::GetTask(std::int64_t id) {
  return Guard(context_, "read task", [&]() -> Result<TaskRecord> {
    Query q(context_.sql, "SELECT " + TaskColumns(context_.dialect) + " FROM tasks WHERE id = :id");
    q.Bind("id", id).Columns(kTaskKinds);
    if (!q.Execute()) return Status::NotFound("no task " + std::to_string(id));
    return ReadTask(q);
  });
}

Result<std::vector<TaskRecord>> StoreTx::ListTasks(const TaskFilter& filter) {
  return Guard(context_, "list tasks", [&]() -> Result<std::vector<TaskRecord>> {
    std::vector<std::string> where;
    if (filter.open_only) where.push_back("status IN ('open', 'claimed')");
    if (filter.case_id) where.push_back("case_id = :case_id");
    if (!filter.agency_roles.empty()) {
      std::string any;
      for (size_t i = 0; i < filter.agency_roles.size(); ++i) {
        std::string n = std::to_string(i);
        if (i > 0) any += " OR ";
        any += "(agency = :agency" + n + " AND role = :role" + n + ")";
      }
      where.push_back(any);
    }
    Query q(context_.sql, "SELECT " + TaskColumns(context_.dialect) + " FROM tasks" + Where(where) +
                              " ORDER BY created_at, id" +
                              (filter.limit > 0 ? " LIMIT :limit" : ""));
    if (filter.case_id) q.Bind("case_id", *filter.case_id);
    for (size_t i = 0; i < filter.agency_roles.size(); ++i) {
      q.Bind("agency" + std::to_string(i), filter.agency_roles[i].first)
          .Bind("role" + std::to_string(i), filter.agency_roles[i].second);
    }
    if (filter.limit > 0) q.Bind("limit", std::int64_t{filter.limit});
    q.Columns(kTaskKinds);
    return ReadAll<TaskRecord>(q, ReadTask);
  });
}

namespace {
// Why a guarded task update changed nothing: kNotFound, or kConflict naming the task's state.
Status TaskRefusal(StoreTx& tx, std::int64_t id, std::string_view doing) {
  Result<TaskRecord> task = tx.GetTask(id);
  if (!task) return task.error();
  return Status::Conflict("cannot " + std::string(doing) + ": " + DescribeTask(*task));
}
}  // namespace

Status StoreTx::ClaimTask(std::int64_t id, const std::string& actor) {
  Result<std::int64_t> changed = Guard(context_, "claim task", [&]() -> Result<std::int64_t> {
    Query q(context_.sql,
            "UPDATE tasks SET status = 'claimed', assignee = :actor WHERE id = :id"
            " AND (status = 'open' OR (status = 'claimed' AND assignee = :same_actor))");
    q.Bind("actor", actor).Bind("id", id).Bind("same_actor", actor).Execute();
    return q.AffectedRows();
  });
  if (!changed) return changed.error();
  return *changed == 1 ? Status::Ok() : TaskRefusal(*this, id, "claim task " + std::to_string(id));
}

Status StoreTx::ReleaseTask(std::int64_t id, const std::string& actor) {
  Result<std::int64_t> changed = Guard(context_, "release task", [&]() -> Result<std::int64_t> {
    Query q(context_.sql,
            "UPDATE tasks SET status = 'open', assignee = NULL WHERE id = :id"
            " AND status = 'claimed' AND assignee = :actor");
    q.Bind("id", id).Bind("actor", actor).Execute();
    return q.AffectedRows();
  });
  if (!changed) return changed.error();
  return *changed == 1 ? Status::Ok()
                       : TaskRefusal(*this, id, "release task " + std::to_string(id));
}

Status StoreTx::CompleteTask(std::int64_t id, const std::string& actor,
                             const std::string& values_json, Timestamp now) {
  Result<std::int64_t> changed = Guard(context_, "complete task", [&]() -> Result<std::int64_t> {
    Query q(context_.sql,
            "UPDATE tasks SET status = 'completed', assignee = :assignee,"
            " completed_by = :completed_by, completed_at = :now, submitted = :submitted"
            " WHERE id = :id AND (status = 'open' OR (status = 'claimed' AND assignee = :actor))");
    q.Bind("assignee", actor)
        .Bind("completed_by", actor)
        .Bind("now", now)
        .Bind("submitted", values_json)
        .Bind("id", id)
        .Bind("actor", actor)
        .Execute();
    return q.AffectedRows();
  });
  if (!changed) return changed.error();
  return *changed == 1 ? Status::Ok()
                       : TaskRefusal(*this, id, "complete task " + std::to_string(id));
}

Status StoreTx::EscalateTask(std::int64_t id, const std::string& role,
                             std::optional<Timestamp> due_at) {
  Result<std::int64_t> changed = Guard(context_, "escalate task", [&]() -> Result<std::int64_t> {
    Query q(context_.sql,
            "UPDATE tasks SET role = :role, escalated_to = :escalated_to, status = 'open',"
            " assignee = NULL, due_at = :due_at WHERE id = :id AND status IN ('open', 'claimed')");
    q.Bind("role", role).Bind("escalated_to", role).Bind("due_at", due_at).Bind("id", id).Execute();
    return q.AffectedRows();
  });
  if (!changed) return changed.error();
  return *changed == 1 ? Status::Ok()
                       : TaskRefusal(*this, id, "escalate task " + std::to_string(id));
}

Result<std::int64_t> StoreTx::CancelTasks(const std::string& case_id,
                                          std::optional<std::int64_t> activation) {
  return Guard(context_, "cancel tasks", [&]() -> Result<std::int64_t> {
    Query q(context_.sql,
            std::string("UPDATE tasks SET status = 'cancelled' WHERE case_id = :case_id") +
                (activation ? " AND activation = :activation" : "") +
                " AND status IN ('open', 'claimed')");
    q.Bind("case_id", case_id);
    if (activation) q.Bind("activation", *activation);
    q.Execute();
    return q.AffectedRows();
  });
}

// --- incidents

Result<std::int64_t> StoreTx::InsertIncident(const IncidentRecord& i) {
  return Guard(context_, "insert incident", [&]() -> Result<std::int64_t> {
    Query q(context_.sql,
            "INSERT INTO incidents (case_id, activation, step, message, status, created_at)"
            " VALUES (:case_id, :activation, :step, :message, :status, :created_at) RETURNING id");
    q.Bind("case_id", i.case_id)
        .Bind("activation", i.activation)
        .Bind("step", i.step)
        .Bind("message", i.message)
        .Bind("status", i.status == IncidentStatus::kResolved ? "resolved" : "open")
        .Bind("created_at", i.created_at)
        .Columns("i")
        .Execute();
    return q.Int(0);
  });
}

Result<IncidentRecord> StoreTx::GetIncident(std::int64_t id) {
  return Guard(context_, "read incident", [&]() -> Result<IncidentRecord> {
    Query q(context_.sql, "SELECT " + kIncidentColumns + " FROM incidents WHERE id = :id");
    q.Bind("id", id).Columns(kIncidentKinds);
    if (!q.Execute()) return Status::NotFound("no incident " + std::to_string(id));
    return ReadIncident(q);
  });
}

Result<std::vector<IncidentRecord>> StoreTx::ListIncidents(
    const std::optional<std::string>& case_id) {
  return Guard(context_, "list incidents", [&]() -> Result<std::vector<IncidentRecord>> {
    Query q(context_.sql, "SELECT " + kIncidentColumns + " FROM incidents WHERE " +
                              (case_id ? "case_id = :case_id" : "status = 'open'") +
                              " ORDER BY created_at, id");
    if (case_id) q.Bind("case_id", *case_id);
    q.Columns(kIncidentKinds);
    return ReadAll<IncidentRecord>(q, ReadIncident);
  });
}

Status StoreTx::ResolveIncident(std::int64_t id, const std::string& actor, Timestamp now) {
  Result<std::int64_t> changed = Guard(context_, "resolve incident", [&]() -> Result<std::int64_t> {
    Query q(context_.sql,
            "UPDATE incidents SET status = 'resolved', resolved_at = :now, resolved_by = :actor"
            " WHERE id = :id AND status = 'open'");
    q.Bind("now", now).Bind("actor", actor).Bind("id", id).Execute();
    return q.AffectedRows();
  });
  if (!changed) return changed.error();
  if (*changed == 1) return Status::Ok();
  Result<IncidentRecord> incident = GetIncident(id);
  if (!incident) return incident.error();
  return Status::Conflict("incident " + std::to_string(id) + " is already resolved");
}

// --- evidence

Result<std::int64_t> StoreTx::InsertEvidence(const EvidenceRecord& e) {
  return Guard(context_, "insert evidence", [&]() -> Result<std::int64_t> {
    Query q(context_.sql,
            "INSERT INTO evidence (subject, department, result, verified_at, case_id, step)"
            " VALUES (:subject, :department, :result, :verified_at, :case_id, :step) RETURNING id");
    q.Bind("subject", e.subject)
        .Bind("department", e.department)
        .Bind("result", e.result)
        .Bind("verified_at", e.verified_at)
        .Bind("case_id", e.case_id)
        .Bind("step", e.step)
        .Columns("i")
        .Execute();
    return q.Int(0);
  });
}

Result<std::optional<EvidenceRecord>> StoreTx::FindEvidence(const std::string& subject,
                                                            Timestamp not_before) {
  return Guard(context_, "find evidence", [&]() -> Result<std::optional<EvidenceRecord>> {
    Query q(context_.sql, "SELECT " + EvidenceColumns(context_.dialect) +
                              " FROM evidence WHERE subject = :subject AND verified_at >= :since"
                              " ORDER BY verified_at DESC, id DESC LIMIT 1");
    q.Bind("subject", subject).Bind("since", not_before).Columns(kEvidenceKinds);
    if (!q.Execute()) return std::optional<EvidenceRecord>();
    return std::optional<EvidenceRecord>(ReadEvidence(q));
  });
}

// --- history

Result<HistoryEvent> StoreTx::AppendHistory(const std::string& case_id, const std::string& actor,
                                            const std::string& action, const std::string& step,
                                            const std::string& details_json, Timestamp at) {
  HistoryEvent event;
  event.case_id = case_id;
  event.at = FormatRfc3339(at);
  event.actor = actor;
  event.action = action;
  event.step = step;
  event.details = details_json.empty() ? "{}" : details_json;
  if (!nlohmann::json::accept(event.details)) {
    return Status::Invalid("history details of case " + case_id + " are not JSON");
  }
  auto head = context_.heads.find(case_id);
  if (head == context_.heads.end()) {
    auto last = Guard(context_, "append history of case " + case_id,
                      [&]() -> Result<std::pair<std::int64_t, std::string>> {
                        Query q(context_.sql,
                                "SELECT seq, hash FROM history WHERE case_id = :case_id"
                                " ORDER BY seq DESC LIMIT 1");
                        q.Bind("case_id", case_id).Columns("it");
                        if (!q.Execute()) return std::make_pair(std::int64_t{0}, std::string());
                        return std::make_pair(q.Int(0), q.Text(1));
                      });
    if (!last) return last.error();
    head = context_.heads.emplace(case_id, std::move(*last)).first;
  }
  HistoryEvent previous;
  previous.seq = head->second.first;
  previous.hash = head->second.second;
  SealEvent(event, previous.seq > 0 ? &previous : nullptr);
  if (context_.defer_writes) {
    if (!context_.failure.ok()) return context_.failure;
    context_.pending.history.push_back(Row{event.case_id, std::to_string(event.seq), event.at,
                                           event.actor, event.action, event.step, event.details,
                                           event.prev_hash, event.hash});
    head->second = {event.seq, event.hash};
    return event;
  }
  auto appended = Guard(context_, "append history of case " + case_id, [&]() -> Result<HistoryEvent> {
    Query insert(context_.sql, "INSERT INTO history (" + kHistoryColumns +
                                   ") VALUES (:case_id, :seq, :at, :actor, :action, :step,"
                                   " :details, :prev_hash, :hash)");
    insert.Bind("case_id", event.case_id)
        .Bind("seq", event.seq)
        .Bind("at", event.at)
        .Bind("actor", event.actor)
        .Bind("action", event.action)
        .Bind("step", event.step)
        .Bind("details", event.details)
        .Bind("prev_hash", event.prev_hash)
        .Bind("hash", event.hash)
        .Execute();
    return event;
  });
  if (appended) head->second = {event.seq, event.hash};
  return appended;
}

Result<std::vector<HistoryEvent>> StoreTx::ListHistory(const std::string& case_id) {
  return Guard(context_, "read history", [&]() -> Result<std::vector<HistoryEvent>> {
    Query q(context_.sql,
            "SELECT " + kHistoryColumns + " FROM history WHERE case_id = :case_id ORDER BY seq");
    q.Bind("case_id", case_id).Columns(kHistoryKinds);
    return ReadAll<HistoryEvent>(q, ReadHistory);
  });
}

// --- engine lock

Result<bool> StoreTx::TryLockEngine(const std::string& name, const std::string& owner,
                                    Timestamp now, Timestamp until) {
  return Guard(context_, "lock engine", [&]() -> Result<bool> {
    Query q(context_.sql,
            "INSERT INTO engine_lock (name, owner, lease_until) VALUES (:name, :owner, :until)"
            " ON CONFLICT (name) DO UPDATE SET owner = excluded.owner,"
            " lease_until = excluded.lease_until"
            " WHERE engine_lock.owner = excluded.owner OR engine_lock.lease_until <= :now");
    q.Bind("name", name).Bind("owner", owner).Bind("until", until).Bind("now", now).Execute();
    return q.AffectedRows() == 1;
  });
}

Status StoreTx::UnlockEngine(const std::string& name, const std::string& owner) {
  return Guard(context_, "unlock engine", [&]() -> Status {
    Query q(context_.sql, "DELETE FROM engine_lock WHERE name = :name AND owner = :owner");
    q.Bind("name", name).Bind("owner", owner).Execute();
    return Status::Ok();
  });
}

// ---------------------------------------------------------------------------------------------
// Store

Store::Store(std::unique_ptr<detail::StoreState> state) : state_(std::move(state)) {}
Store::~Store() = default;

Backend Store::backend() const { return state_->target.backend; }
const std::string& Store::redacted_url() const { return state_->target.redacted_url; }

Result<std::unique_ptr<Store>> Store::Open(std::string_view url, int pool_size) {
  // SQLite answers BUSY without waiting in a few cases busy_timeout does not cover (two
  // processes creating the same file and switching it to WAL at once): try again shortly.
  for (int attempt = 1;; ++attempt) {
    Result<std::unique_ptr<Store>> store = OpenOnce(url, pool_size);
    if (store || store.error().code() != ErrorCode::kUnavailable || attempt == 5 ||
        url.rfind("sqlite:", 0) != 0) {
      return store;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50 * attempt));
  }
}

Result<std::unique_ptr<Store>> Store::OpenOnce(std::string_view url, int pool_size) {
  Result<DatabaseTarget> target = ParseDatabaseUrl(url);
  if (!target) return target.error();
  if (target->backend == Backend::kSqlite && target->connect_string == ":memory:") pool_size = 1;
  auto state = std::make_unique<detail::StoreState>(std::move(*target), std::max(pool_size, 1));
  // Connect one session now, so a wrong URL or an unreachable server fails here, clearly.
  Result<std::unique_ptr<soci::session>> first = Connect(*state);
  if (!first) return first.error();
  state->idle.back() = std::move(*first);
  std::unique_ptr<Store> store(new Store(std::move(state)));

  Result<int> version = store->SchemaVersion();
  if (!version) return version.error();
  const int latest = store->state_->dialect.LatestSchemaVersion();
  if (*version > latest) {
    return Status::Internal("the database " + store->redacted_url() + " has schema version " +
                            std::to_string(*version) + ", newer than this wf knows (" +
                            std::to_string(latest) + "): upgrade wf");
  }
  if (*version < latest) {
    Result<int> applied = store->Migrate();
    if (!applied) return applied.error();
  }
  return store;
}

Status Store::Run(bool write, const std::function<Status(detail::TxContext&)>& body) {
  StoreState& state = *state_;
  const Dialect& dialect = state.dialect;
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
      Exec(*sql, dialect.BeginSql(write));
      break;
    } catch (const std::exception& e) {
      MappedError mapped = MapError(sql.get(), dialect.backend(), "begin transaction", e);
      if (mapped.connection_lost) sql.reset();
      if (mapped.connection_lost && attempt == 0) continue;
      return mapped.status;
    }
  }

  TxContext ctx{*sql, dialect};
  Status status;
  try {
    status = body(ctx);
  } catch (const std::exception& e) {
    status = Status::Internal(std::string("transaction failed: ") + e.what());
  }
  if (status.ok() && write) status = FlushPending(ctx);
  ctx.pending.clear();
  if (status.ok() && !ctx.failure.ok()) status = ctx.failure;

  if (status.ok() && write) {
    try {
      std::string notify = dialect.NotifyWorkSql();
      if (ctx.work_changed && !notify.empty()) Exec(*sql, notify);
      Exec(*sql, "COMMIT");
    } catch (const std::exception& e) {
      MappedError mapped = MapError(sql.get(), dialect.backend(), "commit", e);
      if (mapped.connection_lost) {
        sql.reset();
        return Status::Unavailable("commit outcome unknown: " + mapped.status.message());
      }
      try {
        Exec(*sql, "ROLLBACK");
      } catch (const std::exception&) {
        sql.reset();
      }
      return mapped.status;
    }
    if (ctx.work_changed) WakeWaiter(state);
    return status;
  }
  if (ctx.connection_lost) {
    sql.reset();
  } else {
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

Status Store::Read(const std::function<Status(StoreTx&)>& body) {
  return Run(false, [&](TxContext& ctx) {
    StoreTx tx(ctx);
    return body(tx);
  });
}

Result<int> Store::SchemaVersion() {
  int version = 0;
  Status status = Run(false, [&](TxContext& ctx) {
    return Guard(ctx, "read schema version", [&]() -> Status {
      Query exists(ctx.sql, ctx.dialect.is_postgres()
                                ? "SELECT COUNT(*) FROM information_schema.tables"
                                  " WHERE table_name = 'wf_schema'"
                                  " AND table_schema = current_schema()"
                                : "SELECT COUNT(*) FROM sqlite_master"
                                  " WHERE type = 'table' AND name = 'wf_schema'");
      exists.Columns("i").Execute();
      if (exists.Int(0) == 0) return Status::Ok();
      Query max(ctx.sql, "SELECT COALESCE(MAX(version), 0) FROM wf_schema");
      max.Columns("i").Execute();
      version = static_cast<int>(max.Int(0));
      return Status::Ok();
    });
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
        Query done(ctx.sql, "SELECT COUNT(*) FROM wf_schema WHERE version = :version");
        done.Bind("version", std::int64_t{migration.version}).Columns("i").Execute();
        if (done.Int(0) > 0) return Status::Ok();  // another starter applied it meanwhile
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
      return Status(status.code(), "schema migration " + std::to_string(migration.version) + " (" +
                                       migration.description + "): " + status.message());
    }
    if (did) ++applied;
  }
  return applied;
}

Status Store::ForEachHistory(const std::optional<std::string>& case_id,
                             const std::optional<std::string>& since_at,
                             const std::function<Status(const HistoryEvent&)>& visit) {
  return ForEachHistoryIn(HistoryRange{case_id, since_at, std::nullopt}, visit);
}

Result<HistorySummary> Store::VerifyHistory(const std::optional<std::string>& case_id) {
  ChainVerifier verifier;
  Status status = ForEachHistory(case_id, std::nullopt, [&](const HistoryEvent& event) {
    if (std::optional<ChainBreak> failure = verifier.Feed(event)) {
      return Status::HistoryBroken(failure->Describe());
    }
    return Status::Ok();
  });
  if (!status.ok()) return status;
  if (case_id && verifier.events() == 0) {
    return Status::NotFound("case " + *case_id + " has no history");
  }
  return HistorySummary{verifier.cases(), verifier.events()};
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

// ---------------------------------------------------------------------------------------------
// Reports (engine/report.hpp): cursors that read one page at a time, and refused duplicates.

Result<std::vector<CaseRecord>> StoreTx::ListCasesAfter(const std::string& after_id, int limit) {
  return Guard(context_, "list cases", [&]() -> Result<std::vector<CaseRecord>> {
    Query q(context_.sql, "SELECT " + CaseColumns(context_.dialect, false) +
                              " FROM cases WHERE id > :after ORDER BY id LIMIT :limit");
    q.Bind("after", after_id).Bind("limit", std::int64_t{std::max(limit, 1)}).Columns(kCaseKinds);
    return ReadAll<CaseRecord>(q, ReadCase);
  });
}

Result<std::int64_t> StoreTx::InsertRefusal(const RefusalRecord& r) {
  return Guard(context_, "record refused duplicate", [&]() -> Result<std::int64_t> {
    Query q(context_.sql,
            "INSERT INTO refusals (procedure, dedupe_key, open_case, actor, refused_at)"
            " VALUES (:procedure, :key, :open_case, :actor, :at) RETURNING id");
    q.Bind("procedure", r.procedure)
        .Bind("key", r.dedupe_key)
        .Bind("open_case", r.open_case)
        .Bind("actor", r.actor)
        .Bind("at", r.refused_at)
        .Columns("i")
        .Execute();
    return q.Int(0);
  });
}

Result<std::vector<RefusalRecord>> StoreTx::ListRefusalsAfter(std::int64_t after_id, int limit) {
  return Guard(context_, "list refused duplicates", [&]() -> Result<std::vector<RefusalRecord>> {
    Query q(context_.sql,
            "SELECT id, procedure, dedupe_key, open_case, actor, refused_at FROM refusals"
            " WHERE id > :after ORDER BY id LIMIT :limit");
    q.Bind("after", after_id).Bind("limit", std::int64_t{std::max(limit, 1)}).Columns("itttti");
    return ReadAll<RefusalRecord>(q, [](const Query& row) {
      RefusalRecord r;
      r.id = row.Int(0);
      r.procedure = row.Text(1);
      r.dedupe_key = row.Text(2);
      r.open_case = row.Text(3);
      r.actor = row.Text(4);
      r.refused_at = row.Time(5);
      return r;
    });
  });
}

}  // namespace wf::engine
