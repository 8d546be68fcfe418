#include "engine/dialect.hpp"
#include "engine/dialect_functions.hpp"

#include <cctype>
#include <map>

#include "engine/store_rows.hpp"
#include "workflows/i18n.hpp"

namespace wf::engine {
namespace {

// Decodes %XX escapes; false on a malformed escape.
bool PercentDecode(std::string_view in, std::string& out) {
  out.clear();
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out.push_back(in[i]);
      continue;
    }
    if (i + 2 >= in.size() || !std::isxdigit(static_cast<unsigned char>(in[i + 1])) ||
        !std::isxdigit(static_cast<unsigned char>(in[i + 2]))) {
      return false;
    }
    out.push_back(static_cast<char>(std::stoi(std::string(in.substr(i + 1, 2)), nullptr, 16)));
    i += 2;
  }
  return true;
}

// A libpq conninfo value: single-quoted, with \ and ' escaped.
std::string ConninfoValue(std::string_view value) {
  std::string out = "'";
  for (char c : value) {
    if (c == '\\' || c == '\'') out.push_back('\\');
    out.push_back(c);
  }
  out.push_back('\'');
  return out;
}

Result<DatabaseTarget> ParsePostgresUrl(std::string_view url, std::string_view rest) {
  auto bad = [&](const std::string& why) {
    return Status::Usage(
        TrFormat("invalid PostgreSQL URL: {0} (expected postgresql://user@host:port/db)", why));
  };
  std::string_view query;
  if (size_t q = rest.find('?'); q != std::string_view::npos) {
    query = rest.substr(q + 1);
    rest = rest.substr(0, q);
  }
  std::string_view path;
  if (size_t slash = rest.find('/'); slash != std::string_view::npos) {
    path = rest.substr(slash + 1);
    rest = rest.substr(0, slash);
  }
  std::string_view userinfo;
  if (size_t at = rest.rfind('@'); at != std::string_view::npos) {
    userinfo = rest.substr(0, at);
    rest = rest.substr(at + 1);
  }
  std::string_view user_part = userinfo, password_part;
  bool has_password = false;
  if (size_t colon = userinfo.find(':'); colon != std::string_view::npos) {
    user_part = userinfo.substr(0, colon);
    password_part = userinfo.substr(colon + 1);
    has_password = true;
  }
  std::string_view host_part = rest, port_part;
  if (!rest.empty() && rest.front() == '[') {  // [IPv6]:port
    size_t close = rest.find(']');
    if (close == std::string_view::npos) return bad(Tr("unclosed '[' in host"));
    host_part = rest.substr(1, close - 1);
    std::string_view after = rest.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return bad(Tr("junk after ']'"));
      port_part = after.substr(1);
    }
  } else if (size_t colon = rest.rfind(':'); colon != std::string_view::npos) {
    host_part = rest.substr(0, colon);
    port_part = rest.substr(colon + 1);
  }
  for (char c : port_part) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return bad(Tr("port is not a number"));
  }

  std::string user, password, host, db;
  if (!PercentDecode(user_part, user) || !PercentDecode(password_part, password) ||
      !PercentDecode(host_part, host) || !PercentDecode(path, db)) {
    return bad(Tr("malformed %-escape"));
  }

  std::map<std::string, std::string> params;
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (pair.empty()) continue;
    size_t eq = pair.find('=');
    if (eq == std::string_view::npos) return bad(Tr("query parameter without '='"));
    std::string key, value;
    if (!PercentDecode(pair.substr(0, eq), key) || !PercentDecode(pair.substr(eq + 1), value)) {
      return bad(Tr("malformed %-escape"));
    }
    if (key.empty()) return bad(Tr("empty query parameter name"));
    for (char c : key) {
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') {
        return bad(TrFormat("bad query parameter name '{0}'", key));
      }
    }
    params[key] = value;
  }

  DatabaseTarget target;
  target.backend = Backend::kPostgres;
  std::string& ci = target.connect_string;
  auto add = [&ci](const std::string& key, const std::string& value) {
    if (!ci.empty()) ci.push_back(' ');
    ci += key + "=" + ConninfoValue(value);
  };
  if (!host.empty()) add("host", host);
  if (!port_part.empty()) add("port", std::string(port_part));
  if (!user.empty()) add("user", user);
  if (has_password) add("password", password);
  if (!db.empty()) add("dbname", db);
  params.emplace("connect_timeout", "10");
  params.emplace("application_name", "wf");
  for (const auto& [key, value] : params) add(key, value);

  std::string redacted(url.substr(0, url.find("://") + 3));
  if (!user_part.empty()) redacted += std::string(user_part) + "@";
  redacted += std::string(rest);
  if (!path.empty()) redacted += "/" + std::string(path);
  target.redacted_url = redacted;
  return target;
}

// The PostgreSQL grants on a table added after version 1: SELECT to wf_auditor, `privileges` to
// wf_engine and wf_clerk, each only where the role exists (see version 2).
std::string GrantOnTable(const std::string& table, const std::string& privileges) {
  return R"sql(DO $grants$
DECLARE
  r text;
BEGIN
  FOREACH r IN ARRAY ARRAY['wf_engine', 'wf_clerk', 'wf_auditor'] LOOP
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
      IF r = 'wf_auditor' THEN
        EXECUTE format('GRANT SELECT ON )sql" +
         table + R"sql( TO %I', r);
      ELSE
        EXECUTE format('GRANT )sql" +
         privileges + " ON " + table + R"sql( TO %I', r);
      END IF;
    END IF;
  END LOOP;
END $grants$)sql";
}

}  // namespace

const char* BackendName(Backend backend) {
  return backend == Backend::kPostgres ? "postgresql" : "sqlite";
}

Result<DatabaseTarget> ParseDatabaseUrl(std::string_view url) {
  constexpr std::string_view kSqlite = "sqlite:";
  if (url.substr(0, kSqlite.size()) == kSqlite) {
    std::string_view path = url.substr(kSqlite.size());
    if (path.substr(0, 2) == "//") path = path.substr(2);
    if (path.empty())
      return Status::Usage(TrFormat("invalid SQLite URL '{0}': expected sqlite:PATH", url));
    DatabaseTarget target;
    target.backend = Backend::kSqlite;
    // SOCI reads a connect string with '=' as key=value pairs; a plain path is taken whole.
    if (path.find('=') != std::string_view::npos) {
      if (path.find(' ') != std::string_view::npos) {
        return Status::Usage(
            TrFormat("SQLite path '{0}' may not contain both '=' and a space", path));
      }
      target.connect_string = "db=" + std::string(path);
    } else {
      target.connect_string = std::string(path);
    }
    target.redacted_url = std::string(url);
    return target;
  }
  for (std::string_view scheme : {"postgresql://", "postgres://"}) {
    if (url.substr(0, scheme.size()) == scheme) {
      return ParsePostgresUrl(url, url.substr(scheme.size()));
    }
  }
  return Status::Usage(
      TrFormat("unsupported database URL '{0}': expected sqlite:PATH or "
               "postgresql://user@host:port/db",
               url.substr(0, url.find('@'))));
}

std::int64_t AdvisoryKey(std::string_view name) {
  std::uint64_t h = 14695981039346656037ull;
  for (char c : name) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ull;
  }
  return static_cast<std::int64_t>(h >> 1);
}

std::string Dialect::CreateSchemaTableSql() const {
  return "CREATE TABLE IF NOT EXISTS wf_schema (version INTEGER NOT NULL PRIMARY KEY, "
         "description TEXT NOT NULL, applied_at BIGINT NOT NULL)";
}

std::vector<Migration> Dialect::Migrations() const {
  const bool pg = is_postgres();
  const std::string json = pg ? "JSONB" : "TEXT";
  // A database-assigned row id, and the primary key clause that goes with it.
  const std::string serial_id =
      pg ? "id BIGSERIAL NOT NULL" : "id INTEGER PRIMARY KEY AUTOINCREMENT";
  auto case_pk = [pg](const std::string& first) {
    return pg ? ", PRIMARY KEY (" + first + ", id)" : std::string();
  };

  Migration initial;
  initial.version = 1;
  initial.description = "procedures, cases, work, tasks, incidents, evidence, history";
  std::vector<std::string>& s = initial.statements;
  s.push_back(
      "CREATE TABLE procedures ("
      " name TEXT NOT NULL, version INTEGER NOT NULL, content_hash TEXT NOT NULL,"
      " source TEXT NOT NULL, title TEXT NOT NULL DEFAULT '', agency TEXT NOT NULL DEFAULT '',"
      " deployed_at BIGINT NOT NULL,"
      " PRIMARY KEY (name, version), UNIQUE (name, content_hash))");
  s.push_back(
      "CREATE TABLE cases ("
      " id TEXT NOT NULL PRIMARY KEY, procedure TEXT NOT NULL, version INTEGER NOT NULL,"
      " status TEXT NOT NULL, data " +
      json + " NOT NULL, state " + json +
      " NOT NULL,"
      " dedupe_key TEXT, agency TEXT NOT NULL DEFAULT '', started_by TEXT NOT NULL DEFAULT '',"
      " started_at BIGINT NOT NULL, updated_at BIGINT NOT NULL, deadline_at BIGINT,"
      " clock_paused_at BIGINT, row_version BIGINT NOT NULL, parent_case TEXT,"
      " parent_activation BIGINT, ended_at BIGINT)");
  // Only one open case per (procedure, dedupe key); NULL keys never collide on either database.
  s.push_back(
      "CREATE UNIQUE INDEX cases_open_dedupe ON cases (procedure, dedupe_key)"
      " WHERE status = 'open'");
  s.push_back("CREATE INDEX cases_started ON cases (started_at)");
  s.push_back("CREATE INDEX cases_status ON cases (status, started_at)");
  s.push_back("CREATE INDEX cases_open_deadline ON cases (deadline_at) WHERE status = 'open'");
  s.push_back("CREATE INDEX cases_parent ON cases (parent_case) WHERE parent_case IS NOT NULL");
  s.push_back(
      "CREATE TABLE work ("
      " case_id TEXT NOT NULL REFERENCES cases (id), " +
      serial_id +
      ","
      " kind TEXT NOT NULL, step TEXT NOT NULL DEFAULT '', activation BIGINT NOT NULL DEFAULT 0,"
      " payload " +
      json +
      " NOT NULL, state TEXT NOT NULL, run_at BIGINT NOT NULL, owner TEXT,"
      " lease_until BIGINT, attempt INTEGER NOT NULL DEFAULT 0, created_at BIGINT NOT NULL" +
      case_pk("case_id") + ")");
  // Claiming scans only unfinished rows by the time they become claimable (see ClaimWorkSql);
  // version 4 replaces this index with work_due.
  s.push_back("CREATE INDEX work_claim ON work (run_at) WHERE state <> 'done'");
  if (!pg) s.push_back("CREATE INDEX work_case ON work (case_id, activation)");
  s.push_back(
      "CREATE TABLE tasks ("
      " case_id TEXT NOT NULL REFERENCES cases (id), " +
      serial_id +
      ","
      " activation BIGINT NOT NULL DEFAULT 0, step TEXT NOT NULL, title TEXT NOT NULL DEFAULT '',"
      " role TEXT NOT NULL, agency TEXT NOT NULL DEFAULT '', form " +
      json +
      " NOT NULL,"
      " status TEXT NOT NULL, assignee TEXT, created_at BIGINT NOT NULL, due_at BIGINT,"
      " escalated_to TEXT, completed_by TEXT, completed_at BIGINT, submitted " +
      json + case_pk("case_id") + ")");
  s.push_back(
      "CREATE INDEX tasks_inbox ON tasks (agency, role, created_at)"
      " WHERE status IN ('open', 'claimed')");
  if (pg)
    s.push_back("CREATE INDEX tasks_by_id ON tasks (id)");
  else
    s.push_back("CREATE INDEX tasks_case ON tasks (case_id, activation)");
  s.push_back(
      "CREATE TABLE incidents ("
      " case_id TEXT NOT NULL REFERENCES cases (id), " +
      serial_id +
      ","
      " activation BIGINT NOT NULL DEFAULT 0, step TEXT NOT NULL DEFAULT '',"
      " message TEXT NOT NULL, status TEXT NOT NULL, created_at BIGINT NOT NULL,"
      " resolved_at BIGINT, resolved_by TEXT" +
      case_pk("case_id") + ")");
  s.push_back("CREATE INDEX incidents_open ON incidents (created_at) WHERE status = 'open'");
  if (pg)
    s.push_back("CREATE INDEX incidents_by_id ON incidents (id)");
  else
    s.push_back("CREATE INDEX incidents_case ON incidents (case_id)");
  // Evidence is shared between cases (once-only reuse), so it is keyed by its subject, not a case.
  s.push_back(
      "CREATE TABLE evidence ("
      " subject TEXT NOT NULL, " +
      serial_id +
      ", department TEXT NOT NULL,"
      " result " +
      json +
      " NOT NULL, verified_at BIGINT NOT NULL, case_id TEXT NOT NULL,"
      " step TEXT NOT NULL DEFAULT ''" +
      case_pk("subject") + ")");
  s.push_back("CREATE INDEX evidence_subject ON evidence (subject, verified_at)");
  s.push_back(
      "CREATE TABLE history ("
      " case_id TEXT NOT NULL REFERENCES cases (id), seq BIGINT NOT NULL, at TEXT NOT NULL,"
      " actor TEXT NOT NULL, action TEXT NOT NULL, step TEXT NOT NULL DEFAULT '',"
      " details TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL,"
      " PRIMARY KEY (case_id, seq))");
  // History is append-only (decision 11): the database itself refuses UPDATE and DELETE.
  if (pg) {
    s.push_back(
        "CREATE FUNCTION wf_history_append_only() RETURNS trigger LANGUAGE plpgsql AS $fn$"
        " BEGIN RAISE EXCEPTION 'history is append-only' USING ERRCODE = 'insufficient_privilege';"
        " END $fn$");
    s.push_back(
        "CREATE TRIGGER history_append_only BEFORE UPDATE OR DELETE ON history"
        " FOR EACH ROW EXECUTE FUNCTION wf_history_append_only()");
    s.push_back(
        "CREATE TRIGGER history_no_truncate BEFORE TRUNCATE ON history"
        " FOR EACH STATEMENT EXECUTE FUNCTION wf_history_append_only()");
  } else {
    s.push_back(
        "CREATE TRIGGER history_no_update BEFORE UPDATE ON history"
        " BEGIN SELECT RAISE(ABORT, 'history is append-only'); END");
    s.push_back(
        "CREATE TRIGGER history_no_delete BEFORE DELETE ON history"
        " BEGIN SELECT RAISE(ABORT, 'history is append-only'); END");
  }
  // One row per named lock with a lease; used to keep a single engine on an SQLite file.
  s.push_back(
      "CREATE TABLE engine_lock (name TEXT NOT NULL PRIMARY KEY, owner TEXT NOT NULL,"
      " lease_until BIGINT NOT NULL)");

  Migration audit;
  audit.version = 2;
  audit.description = "archived chains, archive-only deletion of history, database roles";
  std::vector<std::string>& a = audit.statements;
  // The head each archived chain leaves behind (wf archive), append-only like history.
  a.push_back(
      "CREATE TABLE archived_chains ("
      " case_id TEXT NOT NULL PRIMARY KEY, seq BIGINT NOT NULL, hash TEXT NOT NULL,"
      " archive TEXT NOT NULL, archive_sha256 TEXT NOT NULL, archived_at BIGINT NOT NULL)");
  // The one door through the append-only trigger: a case listed here and in archived_chains may
  // have its history deleted. StoreTx::RemoveArchivedCase inserts and deletes its row within the
  // transaction that records the head, so outside that transaction the table is always empty.
  a.push_back("CREATE TABLE archiving (case_id TEXT NOT NULL PRIMARY KEY)");
  if (pg) {
    a.push_back(
        "CREATE OR REPLACE FUNCTION wf_history_append_only() RETURNS trigger LANGUAGE plpgsql"
        " AS $fn$ BEGIN"
        " IF TG_OP = 'DELETE' AND TG_TABLE_NAME = 'history' AND EXISTS (SELECT 1 FROM archiving w"
        " JOIN archived_chains c ON c.case_id = w.case_id WHERE w.case_id = OLD.case_id) THEN"
        " RETURN OLD; END IF;"
        " RAISE EXCEPTION '% is append-only', TG_TABLE_NAME"
        " USING ERRCODE = 'insufficient_privilege'; END $fn$");
    a.push_back(
        "CREATE TRIGGER archived_chains_append_only BEFORE UPDATE OR DELETE ON archived_chains"
        " FOR EACH ROW EXECUTE FUNCTION wf_history_append_only()");
    a.push_back(
        "CREATE TRIGGER archived_chains_no_truncate BEFORE TRUNCATE ON archived_chains"
        " FOR EACH STATEMENT EXECUTE FUNCTION wf_history_append_only()");
    // Roles (README "Database roles"): the migrating user owns the tables and keeps DDL;
    // wf_engine and wf_clerk may read and write the case tables but only INSERT and SELECT
    // history; wf_auditor only reads. Roles are cluster-wide: created NOLOGIN when missing and
    // the migrating user may create roles (a concurrent creator is not an error); otherwise a
    // warning names what a superuser must do. No colons in this text: SOCI would read them as
    // bind parameters.
    a.push_back(R"sql(DO $roles$
DECLARE
  may_create boolean;
  r text;
  tables text DEFAULT 'procedures, cases, work, tasks, incidents, evidence';
BEGIN
  SELECT rolsuper OR rolcreaterole INTO may_create FROM pg_roles WHERE rolname = current_user;
  FOREACH r IN ARRAY ARRAY['wf_engine', 'wf_clerk', 'wf_auditor'] LOOP
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
      IF may_create THEN
        BEGIN
          EXECUTE format('CREATE ROLE %I NOLOGIN', r);
        EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
        END;
      ELSE
        RAISE WARNING 'wf: role % is missing and % may not create roles; a superuser must CREATE ROLE % NOLOGIN and grant it as the README (Database roles) says', r, current_user, r;
        CONTINUE;
      END IF;
    END IF;
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', current_schema(), r);
    IF r = 'wf_auditor' THEN
      EXECUTE format('GRANT SELECT ON %s, history, archived_chains, engine_lock, wf_schema TO %I', tables, r);
    ELSE
      EXECUTE format('GRANT SELECT, INSERT, UPDATE ON %s TO %I', tables, r);
      EXECUTE format('GRANT SELECT, INSERT ON history TO %I', r);
      EXECUTE format('GRANT SELECT ON archived_chains, wf_schema TO %I', r);
      EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON engine_lock TO %I', r);
      EXECUTE format('GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA %I TO %I', current_schema(), r);
    END IF;
  END LOOP;
END $roles$)sql");
  } else {
    a.push_back("DROP TRIGGER IF EXISTS history_no_delete");
    a.push_back(
        "CREATE TRIGGER history_no_delete BEFORE DELETE ON history"
        " WHEN NOT EXISTS (SELECT 1 FROM archiving w JOIN archived_chains c"
        " ON c.case_id = w.case_id WHERE w.case_id = OLD.case_id)"
        " BEGIN SELECT RAISE(ABORT, 'history is append-only'); END");
    a.push_back(
        "CREATE TRIGGER archived_chains_no_update BEFORE UPDATE ON archived_chains"
        " BEGIN SELECT RAISE(ABORT, 'archived_chains is append-only'); END");
    a.push_back(
        "CREATE TRIGGER archived_chains_no_delete BEFORE DELETE ON archived_chains"
        " BEGIN SELECT RAISE(ABORT, 'archived_chains is append-only'); END");
  }

  // Version 3: refused duplicate applications, for reports. Not
  // case-owned (the refused start never became a case), keyed by its own id.
  Migration refusals;
  refusals.version = 3;
  refusals.description = "refused duplicate applications";
  refusals.statements.push_back(
      "CREATE TABLE refusals (" + serial_id +
      ", procedure TEXT NOT NULL, dedupe_key TEXT NOT NULL,"
      " open_case TEXT NOT NULL DEFAULT '', actor TEXT NOT NULL DEFAULT '',"
      " refused_at BIGINT NOT NULL" +
      (pg ? std::string(", PRIMARY KEY (id)") : std::string()) + ")");
  refusals.statements.push_back(
      "CREATE INDEX refusals_procedure ON refusals (procedure, refused_at)");
  if (pg) {
    // The roles of version 2 may write refusals, and finish work rows (the engine deletes a row
    // once its outcome is committed; a cancellation deletes the case's pending rows).
    refusals.statements.push_back(R"sql(DO $grants$
DECLARE
  r text;
BEGIN
  FOREACH r IN ARRAY ARRAY['wf_engine', 'wf_clerk', 'wf_auditor'] LOOP
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
      IF r = 'wf_auditor' THEN
        EXECUTE format('GRANT SELECT ON refusals TO %I', r);
      ELSE
        EXECUTE format('GRANT SELECT, INSERT ON refusals TO %I', r);
        EXECUTE format('GRANT DELETE ON work TO %I', r);
        EXECUTE format('GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA %I TO %I', current_schema(), r);
      END IF;
    END IF;
  END LOOP;
END $grants$)sql");
  }
  // Version 4: finished work rows are deleted, never marked, so the claim index need not filter
  // on a state no row has.
  Migration due;
  due.version = 4;
  due.description = "claim index on run_at alone";
  due.statements.push_back("DROP INDEX work_claim");
  due.statements.push_back("CREATE INDEX work_due ON work (run_at)");
  // Version 5: the running engines, so that one found dead (its liveness token gone, see
  // Store::IsAlive) has its work taken over at once instead of after its leases expire. Only
  // registered owners are tested: an engine without a token (an older wf) keeps its leases.
  Migration engines;
  engines.version = 5;
  engines.description = "running engines, for taking a dead engine's work over";
  engines.statements.push_back(
      "CREATE TABLE engines (owner TEXT NOT NULL PRIMARY KEY, started_at BIGINT NOT NULL,"
      " seen_at BIGINT NOT NULL)");
  if (pg) {
    engines.statements.push_back(GrantOnTable("engines", "SELECT, INSERT, UPDATE, DELETE"));
  }
  // Version 6 was kept for issue 16 (branch `ident`) and stays unused: a store migrates only
  // when its MAX(version) is below the latest (Store::OpenOnce), so a gap must never be filled
  // later; identities (engine/dialect_access.cpp) took 8.
  // Version 7: the Idempotency-Key of each case created through `wf serve`, so that a repeated
  // request finds the case it made, whichever server of the deployment answers it. One row per
  // (client, key), written in the case's own transaction; not case-owned (a reference to the
  // case, like refusals).
  Migration idempotency;
  idempotency.version = 7;
  idempotency.description = "idempotency keys of cases created through the HTTP API";
  idempotency.statements.push_back(
      "CREATE TABLE idempotency_keys (client TEXT NOT NULL, key TEXT NOT NULL,"
      " procedure TEXT NOT NULL, request_hash TEXT NOT NULL, case_id TEXT NOT NULL,"
      " created_at BIGINT NOT NULL, PRIMARY KEY (client, key))");
  if (pg) {
    idempotency.statements.push_back(GrantOnTable("idempotency_keys", "SELECT, INSERT"));
  }
  return {initial,
          audit,
          refusals,
          due,
          engines,
          idempotency,
          AccessMigration(),
          ActsMigration(),
          FederationMigration(),
          KeysMigration(),
          SpeedMigration(),
          WhenMigration(*this),
          IndexMigration(),
          ActWakeMigration(*this)};
}

int Dialect::LatestSchemaVersion() const { return Migrations().back().version; }

std::string Dialect::BeginSql(bool write) const {
  if (is_postgres()) return write ? "BEGIN" : "BEGIN READ ONLY";
  return write ? "BEGIN IMMEDIATE" : "BEGIN DEFERRED";
}

std::string Dialect::AdvisoryLockSql() const {
  return is_postgres() ? "SELECT pg_advisory_xact_lock(:key)" : std::string();
}

std::string Dialect::JsonText(std::string_view column) const {
  return is_postgres() ? std::string(column) + "::text" : std::string(column);
}

std::string Dialect::WorkColumns(std::string_view alias) const {
  return detail::SelectList(detail::kWorkColumns, *this, true, alias);
}

// The procedure and version of a claimed row's case (two probes of its primary key), so that the
// engine knows which expressions the row's outcome may evaluate before it reads the case.
static std::string ClaimedCase(const std::string& work) {
  return "(SELECT c.procedure FROM cases c WHERE c.id = " + work +
         ".case_id), (SELECT c.version FROM cases c WHERE c.id = " + work + ".case_id)";
}

// A leased row's run_at moves to its lease expiry: run_at always says when a row next becomes
// claimable, so one index on run_at (work_due) serves both due rows and expired leases. A
// finished row is deleted, so every row in the table is unfinished.
std::string Dialect::ClaimWorkSql() const {
  if (is_postgres()) {
    return "UPDATE work AS w SET state = 'leased', owner = :owner, lease_until = :lease_until,"
           " run_at = :lease_run_at, attempt = w.attempt + 1"
           " FROM (SELECT case_id, id, run_at FROM work WHERE run_at <= :now"
           " ORDER BY run_at LIMIT :limit FOR UPDATE SKIP LOCKED) AS due"
           " WHERE w.case_id = due.case_id AND w.id = due.id RETURNING " +
           WorkColumns("w") + ", due.run_at, " + ClaimedCase("w");
  }
  return "UPDATE work SET state = 'leased', owner = :owner, lease_until = :lease_until,"
         " run_at = :lease_run_at, attempt = attempt + 1"
         " WHERE id IN (SELECT id FROM work WHERE run_at <= :now"
         " ORDER BY run_at LIMIT :limit) RETURNING " +
         WorkColumns("") + ", created_at, " +  // RETURNING sees only new values here
         ClaimedCase("work");
}

std::string Dialect::NotifyWorkSql() const {
  return is_postgres() ? "NOTIFY wf_work" : std::string();
}

}  // namespace wf::engine
