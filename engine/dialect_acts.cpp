// Migration 9: clerks write no table directly (DESIGN.md, "Who may act (PostgreSQL)"). A login
// without wf_engine starts, claims, releases, completes, signals and cancels through wf_act, a
// SECURITY DEFINER function that checks the login's (or, for a delegate, the named actor's)
// membership in the stored configuration and records the act in `acts`; an engine applies it
// with the same state machine as before, in one transaction with the act's row
// (engine/acts.hpp), and stamps the clerk's login into the history it writes. The clerk group
// loses every INSERT, UPDATE and DELETE. SQLite, single-operator, gets only the (unused) table.
#include <string>

#include "engine/dialect.hpp"
#include "engine/dialect_functions.hpp"

namespace wf::engine {

namespace {

// Whether `who` holds a role that the stored rules of `agency` name for `act` (and `proc`, for
// a start); NULL when the agency has no rules for `act` (then membership decides).
constexpr const char* kRuleAllowsFunction =
    R"sql(CREATE FUNCTION wf_rule_allows(agency_name text, act text, proc text, who text)
RETURNS boolean LANGUAGE sql STABLE SECURITY DEFINER SET search_path = @SCHEMA@, pg_temp AS $fn$
SELECT CASE WHEN NOT EXISTS (SELECT 1 FROM config_rules r
                             WHERE r.agency = agency_name AND r.action = act) THEN NULL
  ELSE EXISTS (SELECT 1 FROM config_rules r JOIN config_members m
                 ON m.agency = r.agency AND m.role = r.role AND m.login = who
               WHERE r.agency = agency_name AND r.action = act
                 AND (act = 'cancel' OR r.procedure IN (proc, '*'))) END
$fn$)sql";

// The one way a login without wf_engine changes a case. Checks who acts (the login, or the name
// a wf_delegate gives), that the task, case or procedure exists, and that the actor may: holds
// the task's role in its agency (claim, release, complete); may start the procedure (its
// agency's may.start, else membership of that agency; a delegate acting for an applicant needs
// no membership where no rule is set); sees the case (signal, cancel: "no case" otherwise, as
// row-level security would say) and may cancel it (may.cancel, else membership of the case's
// agency). The engine then checks that a wait step declares a signal. Records
// the act and returns its id; until version 15 it also woke the engines (NOTIFY wf_work), which
// the act's transaction now does after its commit (ActWakeMigration). CAST, never the double-colon
// cast, and no colon anywhere: SOCI would read one as a bind parameter.
constexpr const char* kActFunction =
    R"sql(CREATE FUNCTION wf_act(act_kind text, act_case text, act_task bigint, act_procedure text,
                       act_actor text, act_payload text) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = @SCHEMA@, pg_temp AS $fn$
DECLARE
  who text DEFAULT coalesce(nullif(act_actor, ''), session_user);
  delegate boolean DEFAULT wf_holds('wf_delegate');
  t record;
  agency_of text;
  allowed boolean;
  new_id bigint;
BEGIN
  IF who <> session_user AND NOT delegate THEN
    RAISE EXCEPTION 'login % may not act as %: only a login holding wf_delegate may act for someone else', session_user, who
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  IF act_kind IN ('claim', 'release', 'complete') THEN
    SELECT id, case_id, agency, role INTO t FROM tasks WHERE id = act_task;
    IF NOT FOUND THEN
      RAISE EXCEPTION 'no task %; wf inbox lists yours', act_task USING ERRCODE = 'no_data_found';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM config_members m
                   WHERE m.login = who AND m.agency = t.agency AND m.role = t.role) THEN
      RAISE EXCEPTION '% does not hold role % in agency % (task %); the stored configuration says who does (wf config show)', who, t.role, t.agency, t.id
        USING ERRCODE = 'insufficient_privilege';
    END IF;
    act_case = t.case_id;
  ELSIF act_kind = 'start' THEN
    SELECT p.agency INTO agency_of FROM procedures p WHERE p.name = act_procedure
     ORDER BY p.version DESC LIMIT 1;
    IF NOT FOUND THEN
      RAISE EXCEPTION 'no procedure %; wf procedures lists the deployed ones', act_procedure
        USING ERRCODE = 'no_data_found';
    END IF;
    allowed = wf_rule_allows(agency_of, 'start', act_procedure, who);
    IF allowed IS NULL THEN
      allowed = delegate OR EXISTS (SELECT 1 FROM config_members m
                                    WHERE m.login = who AND m.agency = agency_of);
    END IF;
    IF NOT allowed THEN
      RAISE EXCEPTION '% may not start procedure % of agency %: neither its may.start nor its members in the stored configuration name them (wf config show)', who, act_procedure, agency_of
        USING ERRCODE = 'insufficient_privilege';
    END IF;
  ELSIF act_kind IN ('signal', 'cancel') THEN
    SELECT agency INTO agency_of FROM cases WHERE id = act_case;
    IF NOT FOUND OR NOT wf_may_see(act_case, agency_of, who) THEN
      RAISE EXCEPTION 'no case %; wf cases lists them', act_case USING ERRCODE = 'no_data_found';
    END IF;
    allowed = act_kind = 'signal' OR coalesce(
      wf_rule_allows(agency_of, 'cancel', NULL, who),
      EXISTS (SELECT 1 FROM config_members m WHERE m.login = who AND m.agency = agency_of));
    IF NOT allowed THEN
      RAISE EXCEPTION '% may not % case % of agency %: the stored configuration gives them no role there that may (wf config show)', who, act_kind, act_case, agency_of
        USING ERRCODE = 'insufficient_privilege';
    END IF;
  ELSE
    RAISE EXCEPTION 'unknown act %', act_kind USING ERRCODE = 'invalid_parameter_value';
  END IF;
  INSERT INTO acts (kind, case_id, task_id, procedure, actor, login, payload, created_at)
  VALUES (act_kind, act_case, act_task, act_procedure, who, session_user, act_payload,
          CAST(extract(epoch FROM clock_timestamp()) * 1000000 AS bigint))
  RETURNING id INTO new_id;
  PERFORM pg_notify('wf_work', '');
  RETURN new_id;
END $fn$)sql";

// Withdraws a pending act of this login (one that no engine applied in time); returns the act's
// status afterwards: 'withdrawn', or what an engine made of it meanwhile. The row lock makes it
// wait for an engine applying it at that moment.
constexpr const char* kWithdrawFunction =
    R"sql(CREATE FUNCTION wf_act_withdraw(act_id bigint) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = @SCHEMA@, pg_temp AS $fn$
DECLARE
  now_status text;
BEGIN
  UPDATE acts SET status = 'withdrawn',
         finished_at = CAST(extract(epoch FROM clock_timestamp()) * 1000000 AS bigint)
   WHERE id = act_id AND login = session_user AND status = 'pending';
  SELECT status INTO now_status FROM acts WHERE id = act_id AND login = session_user;
  RETURN now_status;
END $fn$)sql";

// The history login: as migration 8's, and when the engine applies a clerk's act it names the
// clerk's login in the transaction-local setting wf.acting_login, which only a login holding
// wf_engine may use.
constexpr const char* kHistoryLoginFunction =
    R"sql(CREATE OR REPLACE FUNCTION wf_history_login() RETURNS trigger LANGUAGE plpgsql AS $fn$
DECLARE
  acting text;
BEGIN
  NEW.login = session_user;
  IF wf_holds('wf_engine') THEN
    acting = current_setting('wf.acting_login', true);
    IF acting IS NOT NULL AND acting <> '' THEN
      NEW.login = acting;
    END IF;
    RETURN NEW;
  END IF;
  IF NEW.actor <> session_user AND NOT wf_holds('wf_delegate') THEN
    RAISE EXCEPTION 'login % may not record history as %', session_user, NEW.actor
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  RETURN NEW;
END $fn$)sql";

// Clerks lose every write; they act through wf_act and read their own acts. Engines read and
// finish acts; auditors and admins read them.
constexpr const char* kGrants = R"sql(DO $grants$
DECLARE
  s text DEFAULT current_schema();
BEGIN
  IF (SELECT count(*) FROM pg_roles WHERE rolname IN
      ('wf_admin', 'wf_engine', 'wf_clerk', 'wf_auditor', 'wf_delegate')) < 5 THEN
    RAISE WARNING 'wf: the wf_* group roles are missing; clerks keep their table grants (README, Who may act)';
    RETURN;
  END IF;
  REVOKE INSERT, UPDATE, DELETE ON cases, tasks, work, history, incidents, evidence, refusals,
    idempotency_keys, engines, engine_lock FROM wf_clerk;
  EXECUTE format('REVOKE USAGE, UPDATE ON ALL SEQUENCES IN SCHEMA %I FROM wf_clerk', s);
  GRANT SELECT, UPDATE ON acts TO wf_engine;
  GRANT SELECT ON acts TO wf_clerk, wf_delegate, wf_auditor, wf_admin;
  ALTER TABLE acts ENABLE ROW LEVEL SECURITY;
  CREATE POLICY wf_engine_rows ON acts TO wf_engine USING (true) WITH CHECK (true);
  CREATE POLICY wf_reader_rows ON acts FOR SELECT TO wf_auditor, wf_admin USING (true);
  CREATE POLICY wf_own_acts ON acts FOR SELECT TO wf_clerk, wf_delegate
    USING (login = session_user);
  GRANT EXECUTE ON FUNCTION wf_act(text, text, bigint, text, text, text),
    wf_act_withdraw(bigint) TO wf_clerk, wf_delegate;
END $grants$)sql";

}  // namespace

Migration Dialect::ActsMigration() const {
  Migration m;
  m.version = 9;
  m.description = "clerks act through wf_act; engines apply their acts";
  auto& s = m.statements;
  // SQLite gets the table too, so that both schemas have the same tables; it stays empty there
  // (one operator, who changes cases directly).
  s.push_back(std::string("CREATE TABLE acts (id ") +
              (is_postgres() ? "BIGSERIAL PRIMARY KEY" : "INTEGER PRIMARY KEY") +
              ", kind TEXT NOT NULL, case_id TEXT, task_id BIGINT, procedure TEXT,"
              " actor TEXT NOT NULL, login TEXT NOT NULL, payload TEXT NOT NULL,"
              " status TEXT NOT NULL DEFAULT 'pending', exit_code INTEGER, message TEXT,"
              " result TEXT, created_at BIGINT NOT NULL, finished_at BIGINT)");
  if (!is_postgres()) return m;
  // The acts an engine has yet to apply or to finish; finished acts are many and stay.
  s.push_back("CREATE INDEX acts_unfinished ON acts (id) WHERE status IN ('pending', 'applied')");
  // Whether `who` may see case `c`: wf_sees_case for a named login, which a delegate's act needs
  // (the named actor, not the portal's login, must belong).
  s.push_back(CreateInCurrentSchema(
      SeesCaseFunctionSql("wf_may_see(c text, a text, who text)", "who").c_str()));
  for (const char* function : {kRuleAllowsFunction, kActFunction, kWithdrawFunction}) {
    s.push_back(CreateInCurrentSchema(function));
  }
  s.push_back("REVOKE ALL ON FUNCTION wf_may_see(text, text, text) FROM PUBLIC");
  s.push_back("REVOKE ALL ON FUNCTION wf_rule_allows(text, text, text, text) FROM PUBLIC");
  s.push_back("REVOKE ALL ON FUNCTION wf_act(text, text, bigint, text, text, text) FROM PUBLIC");
  s.push_back("REVOKE ALL ON FUNCTION wf_act_withdraw(bigint) FROM PUBLIC");
  s.push_back(kHistoryLoginFunction);
  s.push_back(kGrants);
  return m;
}

Migration ActWakeMigration(const Dialect& dialect) {
  Migration m;
  m.version = 15;
  m.description = "wf_act leaves waking the engines to its transaction, after the commit";
  if (!dialect.is_postgres()) {
    m.statements.emplace_back("SELECT 1");
    return m;
  }
  // Version 9's function without its NOTIFY line. A NOTIFY takes a lock that every notifying
  // transaction of the cluster needs and holds it until the commit is on disk; the act's
  // transaction now wakes the engines after its COMMIT (StoreTx::SubmitAct), as every other
  // transaction that makes work does. CREATE OR REPLACE keeps the function's grants.
  std::string function = kActFunction;
  const std::string create = "CREATE FUNCTION";
  function.replace(function.find(create), create.size(), "CREATE OR REPLACE FUNCTION");
  const std::string notify_line = "  PERFORM pg_notify('wf_work', '');\n";
  function.erase(function.find(notify_line), notify_line.size());
  m.statements.push_back(CreateInCurrentSchema(function.c_str()));
  return m;
}

}  // namespace wf::engine
