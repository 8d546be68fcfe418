// Migration 8: who may act (DESIGN.md, "Who may act (PostgreSQL)"). The configuration that
// says who belongs to which agency in which role is kept in the database (`wf config apply`),
// and on PostgreSQL the database itself enforces it: the group roles, the login stamped into
// every history event, and row-level security on the case tables. SQLite, single-operator,
// gets the same tables and the history's login column, but no roles and no policies.
#include "engine/dialect.hpp"
#include "engine/dialect_functions.hpp"

namespace wf::engine {

namespace {

// The group roles, created NOLOGIN when missing (by a migrating user that may create roles), and
// the helper functions every policy and trigger below uses. No colons in this text: SOCI would
// read them as bind parameters.
constexpr const char* kRolesAndHelpers = R"sql(DO $roles$
DECLARE
  may_create boolean;
  r text;
BEGIN
  SELECT rolsuper OR rolcreaterole INTO may_create FROM pg_roles WHERE rolname = current_user;
  FOREACH r IN ARRAY ARRAY['wf_admin', 'wf_engine', 'wf_clerk', 'wf_auditor', 'wf_delegate'] LOOP
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
      IF may_create THEN
        BEGIN
          EXECUTE format('CREATE ROLE %I NOLOGIN', r);
        EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
        END;
      ELSE
        RAISE WARNING 'wf: role % is missing and % may not create roles; a superuser must CREATE ROLE % NOLOGIN and apply the grants of the README (Who may act)', r, current_user, r;
      END IF;
    END IF;
  END LOOP;
END $roles$)sql";

// Whether the login of this session holds group `r` (a superuser holds every role, as
// pg_has_role says); false for a role that does not exist.
constexpr const char* kHoldsFunction = R"sql(CREATE FUNCTION wf_holds(r text) RETURNS boolean
LANGUAGE sql STABLE AS $fn$
SELECT CASE WHEN EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r)
  THEN pg_has_role(session_user, r, 'MEMBER') ELSE false END
$fn$)sql";

// The actor of a history event is the login, stamped by the database; only the engine (which
// records "engine") and a delegate (a portal acting for someone it names) may record another
// name, and the login is kept beside it either way.
constexpr const char* kHistoryLoginFunction =
    R"sql(CREATE FUNCTION wf_history_login() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
  NEW.login = session_user;
  IF NEW.actor <> session_user AND NOT wf_holds('wf_engine') AND NOT wf_holds('wf_delegate') THEN
    RAISE EXCEPTION 'login % may not record history as %', session_user, NEW.actor
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  RETURN NEW;
END $fn$)sql";

// A department's result reaches an adapter step only from the engine (or `wf serve`, or an
// operator replaying a callback, all holding wf_engine): any other login's `signal.received`
// must answer a `wait:` step, which the step's own `step.entered` event names (its kind).
// SECURITY DEFINER so that it reads the case's history past row-level security. CAST rather
// than the double-colon cast: SOCI would read a colon as a bind parameter.
constexpr const char* kSignalRuleFunction =
    R"sql(CREATE FUNCTION wf_signal_rule() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = @SCHEMA@, pg_temp AS $fn$
DECLARE
  kind text;
BEGIN
  IF NEW.action <> 'signal.received' OR wf_holds('wf_engine') THEN
    RETURN NEW;
  END IF;
  SELECT CAST(h.details AS jsonb) ->> 'kind' INTO kind FROM history h
   WHERE h.case_id = NEW.case_id AND h.action = 'step.entered'
     AND CAST(h.details AS jsonb) ->> 'activation' = CAST(NEW.details AS jsonb) ->> 'activation'
   ORDER BY h.seq DESC LIMIT 1;
  IF kind IS DISTINCT FROM 'wait' THEN
    RAISE EXCEPTION 'login % may not deliver a result to step % of case % (a % step): only the engine, its department through wf serve, or an operator holding wf_engine may', session_user, NEW.step, NEW.case_id, coalesce(kind, 'unknown')
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  RETURN NEW;
END $fn$)sql";

// Who may start which procedure and who may cancel a case (`may:` of an agency in the stored
// configuration; config_rules). For logins without wf_engine: a new top-level case needs a role
// the login holds in the case's agency that `may.start` lists for its procedure (or for "*"),
// and cancelling a case one that `may.cancel` lists; an agency without rules for the action lets
// any of its members. Sub-cases are started by their parent's step, not by a person.
constexpr const char* kCaseRulesFunction =
    R"sql(CREATE FUNCTION wf_case_rules() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = @SCHEMA@, pg_temp AS $fn$
DECLARE
  act text;
BEGIN
  IF wf_holds('wf_engine') THEN
    RETURN NEW;
  END IF;
  IF TG_OP = 'INSERT' THEN
    IF NEW.parent_case IS NOT NULL THEN
      RETURN NEW;
    END IF;
    act = 'start';
  ELSIF NEW.status = 'cancelled' AND OLD.status IS DISTINCT FROM 'cancelled' THEN
    act = 'cancel';
  ELSE
    RETURN NEW;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM config_rules r WHERE r.agency = NEW.agency AND r.action = act) THEN
    RETURN NEW;
  END IF;
  IF EXISTS (SELECT 1 FROM config_rules r JOIN config_members m
               ON m.agency = r.agency AND m.role = r.role AND m.login = session_user
             WHERE r.agency = NEW.agency AND r.action = act
               AND (act = 'cancel' OR r.procedure IN (NEW.procedure, '*'))) THEN
    RETURN NEW;
  END IF;
  IF act = 'start' THEN
    RAISE EXCEPTION 'login % may not start procedure % in agency %: its may.start in the stored configuration names no role the login holds there (wf config show)', session_user, NEW.procedure, NEW.agency
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  RAISE EXCEPTION 'login % may not cancel case % of agency %: its may.cancel in the stored configuration names no role the login holds there (wf config show)', session_user, NEW.id, NEW.agency
    USING ERRCODE = 'insufficient_privilege';
END $fn$)sql";

// Whether task `i` exists at all, past row-level security: a clerk asking for a task they may
// not see is told it is not theirs (exit 6) rather than that there is none.
constexpr const char* kTaskExistsFunction =
    R"sql(CREATE FUNCTION wf_task_exists(i bigint) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = @SCHEMA@, pg_temp AS $fn$
SELECT EXISTS (SELECT 1 FROM tasks WHERE id = i)
$fn$)sql";

// Grants and row-level security. The migrating user owns the tables and is not subject to the
// policies; the engine reads and writes every row; auditors and admins read every row; a clerk
// sees, changes and adds only rows of cases wf_sees_case allows (a new case of one of their
// agencies, or a sub-case of a case they see). Clerks lose every write on procedures, evidence
// and the configuration; admins deploy and apply configurations. Without the group roles (a
// migrating user that may not create roles) the policies are left out with a warning.
constexpr const char* kGrantsAndPolicies = R"sql(DO $grants$
DECLARE
  t text;
  mine text;
  s text DEFAULT current_schema();
BEGIN
  IF (SELECT count(*) FROM pg_roles WHERE rolname IN
      ('wf_admin', 'wf_engine', 'wf_clerk', 'wf_auditor', 'wf_delegate')) < 5 THEN
    RAISE WARNING 'wf: the wf_* group roles are missing; row-level security is not enabled (README, Who may act)';
    RETURN;
  END IF;
  REVOKE INSERT, UPDATE ON procedures, evidence FROM wf_clerk;
  GRANT SELECT ON config_versions, config_members, config_rules TO wf_clerk, wf_engine;
  GRANT SELECT ON config_versions, config_members, config_rules, refusals, engines TO wf_auditor;
  EXECUTE format('GRANT USAGE ON SCHEMA %I TO wf_admin, wf_delegate', s);
  GRANT SELECT, INSERT ON config_versions TO wf_admin;
  GRANT SELECT, INSERT, DELETE ON config_members, config_rules TO wf_admin;
  GRANT SELECT, INSERT ON procedures TO wf_admin;
  GRANT SELECT ON cases, tasks, history, incidents, evidence, work, refusals, engines,
    archived_chains, wf_schema TO wf_admin;
  FOREACH t IN ARRAY ARRAY['cases', 'tasks', 'history', 'incidents', 'evidence', 'work'] LOOP
    mine = CASE WHEN t = 'cases'
      THEN 'wf_sees_case(id, agency) OR (parent_case IS NOT NULL AND wf_sees_case(parent_case, NULL))'
      ELSE 'wf_sees_case(case_id, NULL)' END;
    EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
    EXECUTE format('CREATE POLICY wf_engine_rows ON %I TO wf_engine USING (true) WITH CHECK (true)', t);
    EXECUTE format('CREATE POLICY wf_reader_rows ON %I FOR SELECT TO wf_auditor, wf_admin USING (true)', t);
    EXECUTE format('CREATE POLICY wf_clerk_rows ON %I TO wf_clerk USING (%s) WITH CHECK (%s)', t, mine, mine);
  END LOOP;
END $grants$)sql";

}  // namespace

std::string SeesCaseFunctionSql(const std::string& signature, const std::string& who) {
  std::string text = "CREATE FUNCTION " + signature + R"sql( RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = @SCHEMA@, pg_temp AS $fn$
SELECT EXISTS (SELECT 1 FROM config_members m WHERE m.login = @WHO@ AND m.agency = a)
  OR EXISTS (SELECT 1 FROM cases k JOIN config_members m ON m.agency = k.agency
             WHERE k.id = c AND m.login = @WHO@)
  OR EXISTS (SELECT 1 FROM cases k JOIN cases p ON p.id = k.parent_case
             JOIN config_members m ON m.agency = p.agency
             WHERE k.id = c AND m.login = @WHO@)
  OR EXISTS (SELECT 1 FROM tasks t JOIN config_members m ON m.agency = t.agency AND m.role = t.role
             WHERE t.case_id = c AND m.login = @WHO@)
$fn$)sql";
  const std::string marker = "@WHO@";
  for (size_t at = text.find(marker); at != std::string::npos; at = text.find(marker, at)) {
    text.replace(at, marker.size(), who);
  }
  return text;
}

std::string CreateInCurrentSchema(const char* function_sql) {
  std::string body = function_sql;
  const std::string marker = "@SCHEMA@";
  size_t at = body.find(marker);
  std::string before = body.substr(0, at);
  std::string after = body.substr(at + marker.size());
  return "DO $create$ BEGIN EXECUTE $head$" + before +
         "$head$ || quote_ident(current_schema()) || $tail$" + after + "$tail$; END $create$";
}

Migration Dialect::AccessMigration() const {
  Migration m;
  m.version = 8;
  m.description = "who may act: stored configuration, logins in history, roles, row-level security";
  auto& s = m.statements;
  s.push_back(
      "CREATE TABLE config_versions (version INTEGER NOT NULL PRIMARY KEY, source TEXT NOT NULL,"
      " sha256 TEXT NOT NULL, applied_by TEXT NOT NULL, applied_at BIGINT NOT NULL)");
  s.push_back(
      "CREATE TABLE config_members (login TEXT NOT NULL, agency TEXT NOT NULL, role TEXT NOT NULL,"
      " PRIMARY KEY (login, agency, role))");
  // Events written before this version keep their recorded actor and an empty login; the hash
  // chain does not cover the login, so old chains verify as before.
  s.push_back(
      "CREATE TABLE config_rules (agency TEXT NOT NULL, action TEXT NOT NULL,"
      " procedure TEXT NOT NULL, role TEXT NOT NULL, PRIMARY KEY (agency, action, procedure, "
      "role))");
  s.push_back("ALTER TABLE history ADD COLUMN login TEXT NOT NULL DEFAULT ''");
  if (!is_postgres()) return m;
  s.push_back(kRolesAndHelpers);
  s.push_back(kHoldsFunction);
  s.push_back(kHistoryLoginFunction);
  s.push_back(
      "CREATE TRIGGER history_login BEFORE INSERT ON history"
      " FOR EACH ROW EXECUTE FUNCTION wf_history_login()");
  s.push_back(
      "CREATE TRIGGER config_versions_append_only BEFORE UPDATE OR DELETE ON config_versions"
      " FOR EACH ROW EXECUTE FUNCTION wf_history_append_only()");
  s.push_back(CreateInCurrentSchema(kSignalRuleFunction));
  s.push_back(
      "CREATE TRIGGER history_signal_rule BEFORE INSERT ON history"
      " FOR EACH ROW EXECUTE FUNCTION wf_signal_rule()");
  s.push_back("REVOKE ALL ON FUNCTION wf_signal_rule() FROM PUBLIC");
  s.push_back(CreateInCurrentSchema(kCaseRulesFunction));
  s.push_back(
      "CREATE TRIGGER cases_start_rules BEFORE INSERT ON cases FOR EACH ROW"
      " WHEN (NEW.parent_case IS NULL) EXECUTE FUNCTION wf_case_rules()");
  // Only a cancellation reaches the function: the engine's many updates cost a comparison.
  s.push_back(
      "CREATE TRIGGER cases_cancel_rules BEFORE UPDATE ON cases FOR EACH ROW"
      " WHEN (NEW.status = 'cancelled' AND OLD.status <> 'cancelled')"
      " EXECUTE FUNCTION wf_case_rules()");
  s.push_back("REVOKE ALL ON FUNCTION wf_case_rules() FROM PUBLIC");
  // Whether the clerk of this session may see case `c` (of agency `a`, when the caller knows it).
  // SECURITY DEFINER so that it reads cases, tasks and members past their own policies (a policy
  // on cases that read tasks, whose policy reads cases, would recurse). The engine, auditors and
  // admins have policies of their own that need no function.
  s.push_back(CreateInCurrentSchema(
      SeesCaseFunctionSql("wf_sees_case(c text, a text)", "session_user").c_str()));
  s.push_back(CreateInCurrentSchema(kTaskExistsFunction));
  s.push_back("REVOKE ALL ON FUNCTION wf_sees_case(text, text) FROM PUBLIC");
  s.push_back("REVOKE ALL ON FUNCTION wf_task_exists(bigint) FROM PUBLIC");
  s.push_back(R"sql(DO $exec$
BEGIN
  IF (SELECT count(*) FROM pg_roles WHERE rolname IN
      ('wf_admin', 'wf_engine', 'wf_clerk', 'wf_auditor', 'wf_delegate')) = 5 THEN
    GRANT EXECUTE ON FUNCTION wf_sees_case(text, text) TO wf_clerk;
    GRANT EXECUTE ON FUNCTION wf_task_exists(bigint)
      TO wf_admin, wf_engine, wf_clerk, wf_auditor, wf_delegate;
  END IF;
END $exec$)sql");
  s.push_back(kGrantsAndPolicies);
  return m;
}

}  // namespace wf::engine
