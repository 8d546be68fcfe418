// Prepared statements on PostgreSQL (engine/store_internal.hpp): a statement text a connection
// has run before is prepared on it and from then on sent by name, so that the server neither
// parses nor plans it again; Query runs through libpq directly there.
#include <libpq-fe.h>

#include <cstdlib>
#include <memory>
#include <mutex>
#include <unordered_map>

#include "engine/store_internal.hpp"

namespace wf::engine::detail {

namespace {

// Per connection: statements prepared at most (the hot path has a few dozen texts, plus the
// multi-row ones per batch size) and texts remembered as seen once.
constexpr size_t kMaxPrepared = 256;
constexpr size_t kMaxSeen = 2048;

struct ConnectionStatements {
  int backend_pid = 0;  // a new connection at a freed one's address has another backend
  std::unordered_map<std::string, std::string> prepared;  // text -> statement name
  std::unordered_map<std::string, bool> seen;             // texts run once, unnamed
  int next_name = 0;
};

std::mutex statements_mu;
std::unordered_map<const PGconn*, ConnectionStatements>& AllStatements() {
  static auto* all = new std::unordered_map<const PGconn*, ConnectionStatements>();
  return *all;
}

ConnectionStatements& StatementsOf(PGconn* conn) {
  ConnectionStatements& of = AllStatements()[conn];
  const int pid = PQbackendPID(conn);
  if (of.backend_pid != pid) {
    of = ConnectionStatements();
    of.backend_pid = pid;
  }
  return of;
}

bool IsNameStart(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_'; }
bool IsNameChar(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

}  // namespace

PreparedUse PrepareFor(PGconn* conn, const std::string& sql) {
  std::lock_guard lock(statements_mu);
  ConnectionStatements& of = StatementsOf(conn);
  if (auto it = of.prepared.find(sql); it != of.prepared.end()) return {it->second, false};
  if (of.prepared.size() >= kMaxPrepared) return {};
  if (of.seen.count(sql) == 0) {
    if (of.seen.size() >= kMaxSeen) of.seen.clear();
    of.seen.emplace(sql, true);
    return {};
  }
  return {"wf_" + std::to_string(++of.next_name), true};
}

void Prepared(PGconn* conn, const std::string& sql, const std::string& name) {
  std::lock_guard lock(statements_mu);
  ConnectionStatements& of = StatementsOf(conn);
  of.seen.erase(sql);
  of.prepared.emplace(sql, name);
}

void ForgetPrepared(PGconn* conn) {
  std::lock_guard lock(statements_mu);
  AllStatements().erase(conn);
}

bool StatementCacheStale(const char* sqlstate) {
  // 26000: no such prepared statement; 0A000: a cached plan's result type changed (a migration).
  return sqlstate != nullptr &&
         (std::string_view(sqlstate) == "26000" || std::string_view(sqlstate) == "0A000");
}

NamedToNumbered Numbered(const std::string& text) {
  static std::mutex mu;
  static auto* cache = new std::unordered_map<std::string, NamedToNumbered>();
  std::lock_guard lock(mu);
  if (auto it = cache->find(text); it != cache->end()) return it->second;
  if (cache->size() >= kMaxSeen) cache->clear();
  NamedToNumbered out;
  std::unordered_map<std::string, int> numbers;
  char quote = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (quote != 0) {
      out.sql += c;
      if (c == quote) quote = 0;
      continue;
    }
    if (c == '\'' || c == '"') {
      quote = c;
      out.sql += c;
      continue;
    }
    if (c == ':' && i + 1 < text.size() && text[i + 1] == ':') {  // a cast, not a parameter
      out.sql += "::";
      ++i;
      continue;
    }
    if (c == ':' && i + 1 < text.size() && IsNameStart(text[i + 1])) {
      size_t end = i + 1;
      while (end < text.size() && IsNameChar(text[end])) ++end;
      std::string name = text.substr(i + 1, end - i - 1);
      auto [it, fresh] = numbers.emplace(name, static_cast<int>(out.names.size()) + 1);
      if (fresh) out.names.push_back(name);
      out.sql += "$" + std::to_string(it->second);
      i = end - 1;
      continue;
    }
    out.sql += c;
  }
  return cache->emplace(text, std::move(out)).first->second;
}

PGresult* ExecPostgres(PGconn* conn, const std::string& sql,
                       const std::vector<const char*>& values) {
  const int n = static_cast<int>(values.size());
  PreparedUse use = PrepareFor(conn, sql);
  if (use.name.empty()) {
    return PQexecParams(conn, sql.c_str(), n, nullptr, values.data(), nullptr, nullptr, 0);
  }
  if (use.prepare) {
    PGresult* prepared = PQprepare(conn, use.name.c_str(), sql.c_str(), n, nullptr);
    const bool ok = prepared != nullptr && PQresultStatus(prepared) == PGRES_COMMAND_OK;
    if (!ok) return prepared;  // the error, reported like the statement's own
    PQclear(prepared);
    Prepared(conn, sql, use.name);
  }
  return PQexecPrepared(conn, use.name.c_str(), n, values.data(), nullptr, nullptr, 0);
}

[[noreturn]] void ThrowPostgres(PGconn* conn, PGresult* result) {
  std::string message = result != nullptr ? PQresultErrorMessage(result) : PQerrorMessage(conn);
  const char* field = result != nullptr ? PQresultErrorField(result, PG_DIAG_SQLSTATE) : nullptr;
  std::string state = field != nullptr ? field : "08006";  // no answer at all: the connection
  if (StatementCacheStale(state.c_str())) ForgetPrepared(conn);
  if (result != nullptr) PQclear(result);
  throw soci::postgresql_soci_error(message, state.c_str());
}

void ExecSimple(PGconn* conn, const std::string& text) {
  PGresult* done = PQexec(conn, text.c_str());
  if (done == nullptr || PQresultStatus(done) != PGRES_COMMAND_OK) ThrowPostgres(conn, done);
  PQclear(done);
}

std::array<const char*, 4> WakeEnginesSql(const std::string& notify) {
  return {"BEGIN", kRelaxDurabilitySql, notify.c_str(), "COMMIT"};
}

void CommitAndWake(PGconn* conn, const std::string& notify) {
  std::string text = "COMMIT";
  for (const char* statement : WakeEnginesSql(notify)) text += std::string("; ") + statement;
  if (PQsendQuery(conn, text.c_str()) != 1) ThrowPostgres(conn, nullptr);
  PGresult* commit = PQgetResult(conn);
  const bool committed = commit != nullptr && PQresultStatus(commit) == PGRES_COMMAND_OK;
  // The rest of the answers (after a failed COMMIT the server ran nothing more).
  for (PGresult* rest = PQgetResult(conn); rest != nullptr; rest = PQgetResult(conn)) {
    PQclear(rest);
  }
  if (!committed) ThrowPostgres(conn, commit);
  PQclear(commit);
  EndFailedWake(conn);
}

void EndFailedWake(PGconn* conn) {
  if (PQtransactionStatus(conn) == PQTRANS_IDLE) return;
  // Best effort: a connection that cannot even roll back fails its next statement, and the
  // store opens a new one then.
  PQclear(PQexec(conn, "ROLLBACK"));
}

void PayBegin(PGconn* conn) {
  if (conn == nullptr || conn != t_begin_owed) return;
  t_begin_owed = nullptr;
  ExecSimple(conn, t_begin_relaxed ? std::string("BEGIN; ") + kRelaxDurabilitySql : "BEGIN");
}

bool Query::ExecutePostgres(PGconn* conn) {
  PayBegin(conn);
  const NamedToNumbered numbered = Numbered(text_);
  std::vector<std::string> integers;  // the integers' text, alive until the call returns
  integers.reserve(params_.size());
  std::vector<const char*> values;
  values.reserve(numbered.names.size());
  for (const std::string& name : numbered.names) {
    const Slot* slot = nullptr;
    for (const Slot& p : params_) {
      if (p.name == name) slot = &p;
    }
    if (slot == nullptr) throw soci::soci_error("no value bound for :" + name);
    if (slot->ind == soci::i_null) {
      values.push_back(nullptr);
    } else if (slot->kind == 't') {
      values.push_back(slot->text.c_str());
    } else {
      integers.push_back(std::to_string(slot->integer));
      values.push_back(integers.back().c_str());
    }
  }
  PGresult* raw = ExecPostgres(conn, numbered.sql, values);
  const ExecStatusType kind = raw != nullptr ? PQresultStatus(raw) : PGRES_FATAL_ERROR;
  if (kind != PGRES_TUPLES_OK && kind != PGRES_COMMAND_OK) ThrowPostgres(conn, raw);
  result_ = std::shared_ptr<PGresult>(raw, PQclear);
  row_ = -1;
  return Next() && !columns_.empty();
}

bool Query::NextPostgres() {
  if (++row_ >= PQntuples(result_.get())) return false;
  const int fields = PQnfields(result_.get());
  for (size_t i = 0; i < columns_.size(); ++i) {
    Slot& c = columns_[i];
    const int column = static_cast<int>(i);
    if (column >= fields || PQgetisnull(result_.get(), row_, column)) {
      c.ind = soci::i_null;
      c.text.clear();
      c.integer = 0;
      continue;
    }
    c.ind = soci::i_ok;
    const char* value = PQgetvalue(result_.get(), row_, column);
    if (c.kind == 't') {
      c.text.assign(value, static_cast<size_t>(PQgetlength(result_.get(), row_, column)));
    } else {
      c.integer = std::strtoll(value, nullptr, 10);
    }
  }
  return true;
}

std::int64_t Query::AffectedPostgres() const {
  return result_ ? std::atoll(PQcmdTuples(result_.get())) : 0;
}

}  // namespace wf::engine::detail
