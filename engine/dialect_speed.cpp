// Versions 12 to 14: the same rules, checked for less, and indexes that hold only the rows
// their queries look for (issue 14, speed round two).
#include <string>

#include "engine/dialect.hpp"
#include "engine/dialect_functions.hpp"

namespace wf::engine {

namespace {

// The history triggers of version 8 ran a PL/pgSQL function for every event the engine
// appended: now their WHEN clauses let through only the rows the functions would look at.
// - history_login stamps the login and refuses an actor that is not the login unless the login
//   holds wf_engine or wf_delegate: a row that already carries the session's login and an actor
//   it may record (the engine's appends name both) has nothing to stamp or refuse.
// - history_signal_rule looks only at `signal.received` events.
// - cases_start_rules returns at once for a login holding wf_engine.
// wf_holds asks the role cache (to_regrole) instead of scanning pg_roles; it stays false for a
// role that does not exist. Every name it is given is one of wf's lowercase group names.
constexpr const char* kStatements[] = {
    R"sql(CREATE OR REPLACE FUNCTION wf_holds(r text) RETURNS boolean
LANGUAGE sql STABLE AS $fn$
SELECT CASE WHEN to_regrole(quote_ident(r)) IS NOT NULL
  THEN pg_has_role(session_user, r, 'MEMBER') ELSE false END
$fn$)sql",
    "DROP TRIGGER IF EXISTS history_login ON history",
    "CREATE TRIGGER history_login BEFORE INSERT ON history FOR EACH ROW"
    " WHEN (NEW.login IS DISTINCT FROM session_user OR (NEW.actor <> session_user"
    " AND NOT wf_holds('wf_engine') AND NOT wf_holds('wf_delegate')))"
    " EXECUTE FUNCTION wf_history_login()",
    "DROP TRIGGER IF EXISTS history_signal_rule ON history",
    "CREATE TRIGGER history_signal_rule BEFORE INSERT ON history FOR EACH ROW"
    " WHEN (NEW.action = 'signal.received') EXECUTE FUNCTION wf_signal_rule()",
    "DROP TRIGGER IF EXISTS cases_start_rules ON cases",
    "CREATE TRIGGER cases_start_rules BEFORE INSERT ON cases FOR EACH ROW"
    " WHEN (NEW.parent_case IS NULL AND NOT wf_holds('wf_engine'))"
    " EXECUTE FUNCTION wf_case_rules()",
    // Room on each page for the new version of a case row, so that most of the engine's
    // updates (data and state, no indexed column) are HOT: no new entry in the six indexes.
    "ALTER TABLE cases SET (fillfactor = 70)",
};

// Version 13 (WhenMigration): the two WHEN clauses ask for role membership themselves. A call of
// wf_holds there is inlined when each statement's executor starts, which parses and analyses the
// function's text anew: for a one-row INSERT (a start through the API, a clerk's act) that was a
// third of the statement's time. The test is wf_holds' own, false for a role that does not exist.
std::string Holds(const std::string& role) {
  return "COALESCE(pg_has_role(session_user, CAST(to_regrole('" + role +
         "') AS oid), 'MEMBER'), false)";
}

}  // namespace

Migration Dialect::SpeedMigration() const {
  Migration m;
  m.version = 12;
  m.description = "history and case triggers only where they check something; room for updates";
  if (is_postgres()) {
    for (const char* statement : kStatements) m.statements.emplace_back(statement);
  } else {
    // SQLite has neither these triggers nor fillfactor: the version is recorded all the same,
    // so that both stores count their migrations alike.
    m.statements.emplace_back("SELECT 1");
  }
  return m;
}

Migration WhenMigration(const Dialect& dialect) {
  Migration m;
  m.version = 13;
  m.description = "role tests of the history and case triggers written out in their WHEN clauses";
  if (dialect.is_postgres()) {
    m.statements = {
        "DROP TRIGGER IF EXISTS history_login ON history",
        "CREATE TRIGGER history_login BEFORE INSERT ON history FOR EACH ROW"
        " WHEN (NEW.login IS DISTINCT FROM session_user OR (NEW.actor <> session_user AND NOT " +
            Holds("wf_engine") + " AND NOT " + Holds("wf_delegate") +
            ")) EXECUTE FUNCTION wf_history_login()",
        "DROP TRIGGER IF EXISTS cases_start_rules ON cases",
        "CREATE TRIGGER cases_start_rules BEFORE INSERT ON cases FOR EACH ROW"
        " WHEN (NEW.parent_case IS NULL AND NOT " +
            Holds("wf_engine") + ") EXECUTE FUNCTION wf_case_rules()"};
  } else {
    m.statements.emplace_back("SELECT 1");  // as version 12
  }
  return m;
}

// Version 14 (IndexMigration): the two partial indexes of open cases leave out the rows their
// queries never look for. Every case was entered in cases_open_dedupe while open, with or without
// a dedupe key, and in cases_open_deadline with or without a deadline; most procedures have
// neither, so a start wrote two index entries nobody reads (and so did each case update that
// could not be HOT). The queries that use them compare the column (`dedupe_key = ...`,
// `deadline_at < ...`), which implies IS NOT NULL on both databases, so they still use them; the
// unique index keeps refusing the same rows (NULL keys never collided).
Migration IndexMigration() {
  Migration m;
  m.version = 14;
  m.description = "open-case indexes without the cases that have no dedupe key or no deadline";
  m.statements = {"DROP INDEX IF EXISTS cases_open_dedupe",
                  "CREATE UNIQUE INDEX cases_open_dedupe ON cases (procedure, dedupe_key)"
                  " WHERE status = 'open' AND dedupe_key IS NOT NULL",
                  "DROP INDEX IF EXISTS cases_open_deadline",
                  "CREATE INDEX cases_open_deadline ON cases (deadline_at)"
                  " WHERE status = 'open' AND deadline_at IS NOT NULL"};
  return m;
}

}  // namespace wf::engine
