// The store's PostgreSQL pipeline (engine/store_internal.hpp): statements sent through libpq in
// pipeline mode, a round at a time, and the writes StoreTx::DeferWrites queued, coalesced into
// multi-row statements per table.
#include <libpq-fe.h>

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <unordered_map>
#include <vector>

#include "engine/store_internal.hpp"

namespace wf::engine::detail {

namespace {

// Statements per pipeline round: the server's answers to one round (a few dozen bytes each) must
// fit its socket buffer, because a blocking client reads them only after sending the round.
constexpr size_t kPipelineRound = 512;

// What AddMultiRow's `expect_every_row` check says when a row was missed.
constexpr const char* kChangedMeanwhile = "a case was changed meanwhile";

// The error a pipelined statement (or its PREPARE) answered.
MappedError Failure(PGconn* conn, const PGresult* result, const std::string& what) {
  const char* state = PQresultErrorField(result, PG_DIAG_SQLSTATE);
  if (StatementCacheStale(state)) ForgetPrepared(conn);
  std::string message = Trim(PQresultErrorMessage(result));
  // The check's failing cast (invalid_text_representation): worth a retry, like a serialization
  // failure.
  if (state != nullptr && std::string_view(state) == "22P02") {
    if (size_t at = message.find(kChangedMeanwhile); at != std::string::npos) {
      return {Status::Unavailable(what + ": " + message.substr(at, message.find('"', at) - at))};
    }
  }
  return MapPostgresError(state ? state : "", PQstatus(conn) == CONNECTION_OK, what + ": ", message,
                          message);
}

}  // namespace

Status SendPipelined(TxContext& ctx, const std::vector<DeferredWrite>& writes,
                     std::vector<std::int64_t>* affected, std::vector<std::vector<Row>>* rows) {
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
    // The transaction's BEGIN, when it is owed (Store::TransactPipelined), first in the pipeline;
    // its COMMIT last when it is asked for (StoreTx::CommitWithLastPipeline), and after it the
    // wake-up's own transaction (WakeEnginesSql), whose errors are not the commit's.
    std::vector<const char*> before, after, wake;
    if (start == 0 && t_begin_owed == conn) {
      t_begin_owed = nullptr;
      before.push_back("BEGIN");
      if (t_begin_relaxed) before.push_back(kRelaxDurabilitySql);
    }
    const std::string notify = ctx.dialect.NotifyWorkSql();
    const bool commit = ctx.commit_with_pipeline && end == writes.size();
    if (commit) {
      ctx.commit_with_pipeline = false;
      after.push_back("COMMIT");
      if (ctx.work_changed && !notify.empty()) {
        for (const char* statement : WakeEnginesSql(notify)) wake.push_back(statement);
      }
    }
    // The connection failed once the round was under way: with a COMMIT in it, who knows.
    auto lost = [&]() {
      return doom(Status::Unavailable(std::string(commit ? "commit outcome unknown: " : "") +
                                      "pipeline: " + PQerrorMessage(conn)),
                  true);
    };
    auto send_command = [conn](const char* text) {
      return PQsendQueryParams(conn, text, 0, nullptr, nullptr, nullptr, nullptr, 0) == 1;
    };
    bool sent = true;
    for (const char* text : before) sent = sent && send_command(text);
    std::vector<const char*> values;
    std::vector<int> lengths, formats;  // binary parameters only
    std::vector<PreparedUse> uses(end - start);
    for (size_t i = start; i < end && sent; ++i) {
      const DeferredWrite& write = writes[i];
      values.clear();
      lengths.clear();
      for (const auto& p : write.params) {
        values.push_back(p ? p->data() : nullptr);
        lengths.push_back(p ? static_cast<int>(p->size()) : 0);
      }
      formats.assign(values.size(), write.binary ? 1 : 0);
      const int* length = write.binary ? lengths.data() : nullptr;
      const int* format = write.binary ? formats.data() : nullptr;
      const int n = static_cast<int>(values.size());
      PreparedUse& use = uses[i - start];
      use = PrepareFor(conn, write.sql);
      if (use.name.empty()) {
        sent = PQsendQueryParams(conn, write.sql.c_str(), n, nullptr, values.data(), length, format,
                                 0) == 1;
        continue;
      }
      if (use.prepare) {
        sent = PQsendPrepare(conn, use.name.c_str(), write.sql.c_str(), n, nullptr) == 1;
      }
      sent = sent &&
             PQsendQueryPrepared(conn, use.name.c_str(), n, values.data(), length, format, 0) == 1;
    }
    for (const char* text : after) sent = sent && send_command(text);
    for (const char* text : wake) sent = sent && send_command(text);
    if (!sent || PQpipelineSync(conn) != 1) return lost();
    std::optional<MappedError> first;
    // A command's answer: false when the connection gave none.
    auto command_done = [&](const char* text) {
      PGresult* done = PQgetResult(conn);
      if (done == nullptr) return false;
      // After an earlier failure the server skips the rest of the round (PGRES_PIPELINE_ABORTED).
      if (PQresultStatus(done) == PGRES_FATAL_ERROR && !first) {
        first = Failure(conn, done, text);
      }
      PQclear(done);
      while ((done = PQgetResult(conn)) != nullptr) PQclear(done);
      return true;
    };
    for (const char* text : before) {
      if (!command_done(text)) return lost();
    }
    for (size_t i = start; i < end; ++i) {
      if (uses[i - start].prepare) {  // the PREPARE's own answer comes first
        PGresult* prepared = PQgetResult(conn);
        if (prepared == nullptr) return lost();
        if (PQresultStatus(prepared) == PGRES_COMMAND_OK) {
          Prepared(conn, writes[i].sql, uses[i - start].name);
        } else if (PQresultStatus(prepared) == PGRES_FATAL_ERROR && !first) {
          first = Failure(conn, prepared, writes[i].what);
        }
        PQclear(prepared);
        while ((prepared = PQgetResult(conn)) != nullptr) PQclear(prepared);
      }
      PGresult* result = PQgetResult(conn);
      if (result == nullptr) return lost();
      ExecStatusType kind = PQresultStatus(result);
      if (kind == PGRES_FATAL_ERROR && !first) {
        first = Failure(conn, result, writes[i].what);
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
      PQclear(result);
      while ((result = PQgetResult(conn)) != nullptr) PQclear(result);  // the query's end
    }
    for (const char* text : after) {
      if (!command_done(text)) return lost();
    }
    // The COMMIT answered: a connection lost from here on leaves the commit standing.
    const bool committed = commit && !first;
    auto lost_after_commit = [&]() {
      ctx.connection_lost = true;
      ctx.committed = true;
      return Status::Ok();
    };
    for (size_t i = 0; i < wake.size(); ++i) {
      PGresult* done = PQgetResult(conn);
      if (done == nullptr) return committed ? lost_after_commit() : lost();
      PQclear(done);
      while ((done = PQgetResult(conn)) != nullptr) PQclear(done);
    }
    PGresult* sync = PQgetResult(conn);
    bool synced = sync != nullptr && PQresultStatus(sync) == PGRES_PIPELINE_SYNC;
    PQclear(sync);
    if (!synced || PQexitPipelineMode(conn) != 1) {
      return committed ? lost_after_commit() : lost();
    }
    if (first) return doom(first->status, first->connection_lost);
    if (committed) {
      ctx.committed = true;
      if (!wake.empty()) EndFailedWake(conn);
    }
  }
  return Status::Ok();
}

namespace {

// Up to this many rows a statement is a VALUES list of one parameter a value, its text made per
// row count: the server plans such a text once (a generic plan after five runs), while it plans
// an unnest of arrays afresh at every run (its estimate of an array parameter's length makes the
// generic plan look dearer), which costs a one-row step about 0.5 ms. Bigger batches send arrays:
// one text whatever their size, planned once a batch rather than parsed and planned anew for
// each new size of VALUES list.
constexpr size_t kValuesRowsAtMost = 4;

// The text of a multi-row statement of `rows` rows. It depends only on the statement and, up to
// kValuesRowsAtMost rows, the count, so each is made once per thread.
const std::string& MultiRowSql(const std::string& head, const std::vector<std::string>& casts,
                               const std::string& tail, size_t rows, bool expect_every_row) {
  thread_local std::unordered_map<std::string, std::string> made;
  const bool values = rows <= kValuesRowsAtMost;
  std::string key = head;
  key += '\0';
  key += values ? std::to_string(rows) : "*";
  key += expect_every_row ? "+" : "-";
  if (auto it = made.find(key); it != made.end()) return it->second;
  std::string sql = expect_every_row ? "WITH u AS (" + head : head;
  std::string count;  // the number of rows named, in SQL
  if (values) {
    sql += "(VALUES ";
    size_t param = 0;
    for (size_t i = 0; i < rows; ++i) {
      sql += i > 0 ? ", (" : "(";
      for (size_t k = 0; k < casts.size(); ++k) {
        if (k > 0) sql += ", ";
        sql += "CAST($" + std::to_string(++param) + " AS " + casts[k] + ")";
      }
      sql += ")";
    }
    sql += ")";
    count = std::to_string(rows);
  } else {
    sql += "unnest(";
    for (size_t k = 0; k < casts.size(); ++k) {
      if (k > 0) sql += ", ";
      sql += "CAST($" + std::to_string(k + 1) + " AS " + casts[k] + "[])";
    }
    sql += ")";
    count = "cardinality(CAST($1 AS " + casts.front() + "[]))";
  }
  sql += tail;
  if (expect_every_row) {
    // Checked by the server, so that a COMMIT later in the same pipeline cannot keep the rest:
    // a failing cast is plain SQL's only way to raise (a PL/pgSQL function would cost a fresh
    // session, such as a CLI command's, about 4 ms to load), and it must depend on count(*), or
    // the planner would fold it, and fail, ahead of time.
    sql += ") SELECT CASE WHEN count(*) = " + count + " THEN 0 ELSE CAST('" + kChangedMeanwhile +
           " (' || count(*) || ' of ' || " + count + " || ' rows updated)' AS bigint) END FROM u";
  }
  return made.emplace(std::move(key), std::move(sql)).first->second;
}

// Appends `value` to the array literal `out` as one element: NULL, or quoted with its quotes and
// backslashes escaped (the quoted form reads every text back exactly, whatever the element type).
void AppendElement(std::string& out, const std::optional<std::string>& value) {
  if (!value) {
    out += "NULL";
    return;
  }
  out.push_back('"');
  const std::string& text = *value;
  size_t from = 0;
  for (size_t at = text.find_first_of("\\\"", from); at != std::string::npos;
       at = text.find_first_of("\\\"", from)) {
    out.append(text, from, at - from);
    out.push_back('\\');
    out.push_back(text[at]);
    from = at + 1;
  }
  out.append(text, from, std::string::npos);
  out.push_back('"');
}

// The element types whose binary form AddMultiRow writes, each its type's OID (pg_type.h).
enum class Element : std::uint32_t { kText = 25, kBigint = 20, kJsonb = 3802 };

std::optional<Element> BinaryElement(const std::string& cast) {
  if (cast == "text") return Element::kText;
  if (cast == "bigint") return Element::kBigint;
  if (cast == "jsonb") return Element::kJsonb;
  return std::nullopt;
}

void AppendBigEndian(std::string& out, std::uint64_t value, int bytes) {
  for (int shift = 8 * (bytes - 1); shift >= 0; shift -= 8) {
    out.push_back(static_cast<char>((value >> shift) & 0xff));
  }
}

// Column `k` of rows [start, end) as a one-dimensional array in the binary form array_recv reads
// (dimensions, whether there are NULLs, element type, length and lower bound, then each element
// as its length and bytes, -1 for NULL): the server copies the elements rather than scanning a
// quoted literal, which was a tenth of its time in the engine benchmark. False when a bigint's
// text is not a 64-bit integer (the caller then sends the text form, and the server says what
// is wrong with it).
bool AppendBinaryArray(std::string& out, Element type, const std::vector<Row>& rows, size_t start,
                       size_t end, size_t k) {
  bool nulls = false;
  for (size_t i = start; i < end; ++i) nulls = nulls || !rows[i][k];
  AppendBigEndian(out, 1, 4);
  AppendBigEndian(out, nulls ? 1 : 0, 4);
  AppendBigEndian(out, static_cast<std::uint32_t>(type), 4);
  AppendBigEndian(out, end - start, 4);
  AppendBigEndian(out, 1, 4);
  for (size_t i = start; i < end; ++i) {
    const std::optional<std::string>& value = rows[i][k];
    if (!value) {
      AppendBigEndian(out, 0xffffffffu, 4);
      continue;
    }
    switch (type) {
      case Element::kText:
        AppendBigEndian(out, value->size(), 4);
        out += *value;
        break;
      case Element::kBigint: {
        std::int64_t number = 0;
        const char* last = value->data() + value->size();
        auto [at, error] = std::from_chars(value->data(), last, number);
        if (error != std::errc() || at != last || value->empty()) return false;
        AppendBigEndian(out, 8, 4);
        AppendBigEndian(out, static_cast<std::uint64_t>(number), 8);
        break;
      }
      case Element::kJsonb:  // a version byte, then the JSON text
        AppendBigEndian(out, value->size() + 1, 4);
        out.push_back('\x01');
        out += *value;
        break;
    }
  }
  return true;
}

// The statement's arrays in the binary form, or false when a column has no binary form here.
bool BinaryArrays(DeferredWrite& write, const std::vector<std::string>& casts,
                  const std::vector<Row>& rows, size_t start, size_t end) {
  std::vector<Element> types;
  for (const std::string& cast : casts) {
    std::optional<Element> type = BinaryElement(cast);
    if (!type) return false;
    types.push_back(*type);
  }
  for (size_t k = 0; k < casts.size(); ++k) {
    std::string array;
    if (!AppendBinaryArray(array, types[k], rows, start, end, k)) return false;
    write.params.emplace_back(std::move(array));
  }
  write.binary = true;
  return true;
}

}  // namespace

void AddMultiRow(std::vector<DeferredWrite>& out, const std::string& what, const std::string& head,
                 const std::vector<std::string>& casts, const std::string& tail,
                 std::vector<Row>&& rows, bool expect_every_row) {
  constexpr size_t kRowsPerStatement = 1000;
  for (size_t start = 0; start < rows.size(); start += kRowsPerStatement) {
    const size_t end = std::min(rows.size(), start + kRowsPerStatement);
    DeferredWrite write{what, MultiRowSql(head, casts, tail, end - start, expect_every_row), {}};
    if (end - start <= kValuesRowsAtMost) {  // one parameter a value
      write.params.reserve((end - start) * casts.size());
      for (size_t i = start; i < end; ++i) {
        for (size_t k = 0; k < casts.size(); ++k) write.params.push_back(std::move(rows[i][k]));
      }
      out.push_back(std::move(write));
      continue;
    }
    write.params.reserve(casts.size());  // one array a column
    if (BinaryArrays(write, casts, rows, start, end)) {
      for (size_t i = start; i < end; ++i) rows[i].clear();  // not kept twice for long
      out.push_back(std::move(write));
      continue;
    }
    write.params.clear();
    for (size_t k = 0; k < casts.size(); ++k) {
      std::string array = "{";
      for (size_t i = start; i < end; ++i) {
        if (i > start) array.push_back(',');
        AppendElement(array, rows[i][k]);
        rows[i][k].reset();  // the biggest texts are not kept twice for long
      }
      array.push_back('}');
      write.params.emplace_back(std::move(array));
    }
    out.push_back(std::move(write));
  }
}

std::vector<DeferredWrite> PendingStatements(TxContext& ctx) {
  PendingWrites pending = std::move(ctx.pending);
  ctx.pending.clear();
  std::vector<DeferredWrite> writes;
  // New cases first: the history and work below refer to them. A drawn id that another case
  // took meanwhile inserts nothing, and the transaction fails ("insert new cases: a case was
  // changed meanwhile", kUnavailable), which Runtime's starts retry with new ids (NewCaseIdTaken).
  AddMultiRow(writes, "insert new cases",
              "INSERT INTO cases (id, procedure, version, status, data, state, agency, started_by,"
              " started_at, updated_at, deadline_at, clock_paused_at, ended_at, row_version,"
              " parent_case, parent_activation) SELECT * FROM ",
              {"text", "text", "bigint", "text", "jsonb", "jsonb", "text", "text", "bigint",
               "bigint", "bigint", "bigint", "bigint", "bigint", "text", "bigint"},
              " AS v ON CONFLICT (id) DO NOTHING RETURNING 1", std::move(pending.new_cases), true);
  AddMultiRow(writes, "update cases",
              "UPDATE cases AS c SET status = v.status, data = v.data, state = v.state,"
              " deadline_at = v.deadline_at, clock_paused_at = v.paused, ended_at = v.ended,"
              " updated_at = v.updated, row_version = v.new_version FROM ",
              {"text", "text", "jsonb", "jsonb", "bigint", "bigint", "bigint", "bigint", "bigint",
               "bigint"},
              " AS v (id, status, data, state, deadline_at, paused, ended, updated, expected,"
              " new_version) WHERE c.id = v.id AND c.row_version = v.expected RETURNING 1",
              std::move(pending.cases), true);
  // With the session's login, so that the history_login trigger has nothing to stamp (its WHEN
  // clause skips the row; the database still checks the actor against the login's roles).
  AddMultiRow(writes, "append history",
              "INSERT INTO history (" + ColumnNames(kHistoryColumns) +
                  ", login) SELECT *, session_user FROM ",
              {"text", "bigint", "text", "text", "text", "text", "text", "text", "text"}, " AS v",
              std::move(pending.history), false);
  AddMultiRow(writes, "enqueue work",
              "INSERT INTO work (case_id, kind, step, activation, payload, run_at, created_at,"
              " state, attempt) SELECT *, 'ready', 0 FROM ",
              {"text", "text", "text", "bigint", "jsonb", "bigint", "bigint"}, " AS v",
              std::move(pending.work), false);
  // After the cases they name. A key taken meanwhile inserts nothing, and the transaction fails
  // ("record idempotency keys: ... changed meanwhile", kUnavailable): the start then finds the
  // key's case, as when the key was taken before it began.
  AddMultiRow(writes, "record idempotency keys",
              "INSERT INTO idempotency_keys (client, key, procedure, request_hash, case_id,"
              " created_at) SELECT * FROM ",
              {"text", "text", "text", "text", "text", "bigint"},
              " AS v ON CONFLICT (client, key) DO NOTHING RETURNING 1",
              std::move(pending.idempotency_keys), true);
  return writes;
}

Status FlushPending(TxContext& ctx) {
  if (ctx.pending.empty()) return ctx.failure;
  std::vector<DeferredWrite> writes = PendingStatements(ctx);
  if (!ctx.failure.ok()) return ctx.failure;
  return SendPipelined(ctx, writes);
}

}  // namespace wf::engine::detail
