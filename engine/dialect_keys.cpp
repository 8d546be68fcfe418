// Version 11: the data keys of cases with personal data (DESIGN.md "Personal data").
#include "engine/dialect.hpp"

namespace wf::engine {

namespace {

// Engines keep the keys. A clerk reads the key of a case they see (so `wf show` opens its
// personal values for them and for no one else); auditors and admins read every key and erase:
// they delete the key of an ended case, its evidence, and append the case.erased event, nothing
// else (DESIGN.md: "wf erase CASE --reason TEXT (auditor or admin, ended cases)").
constexpr const char* kGrants = R"sql(DO $grants$
BEGIN
  IF (SELECT count(*) FROM pg_roles WHERE rolname IN
      ('wf_admin', 'wf_engine', 'wf_clerk', 'wf_auditor')) < 4 THEN
    RAISE WARNING 'wf: the wf_* group roles are missing; case_keys has no grants (README, Who may act)';
    RETURN;
  END IF;
  GRANT SELECT, INSERT, UPDATE, DELETE ON case_keys TO wf_engine;
  GRANT SELECT ON case_keys TO wf_clerk;
  GRANT SELECT, DELETE ON case_keys TO wf_auditor, wf_admin;
  GRANT DELETE ON evidence TO wf_auditor, wf_admin;
  GRANT INSERT ON history TO wf_auditor, wf_admin;
  ALTER TABLE case_keys ENABLE ROW LEVEL SECURITY;
  CREATE POLICY wf_engine_rows ON case_keys TO wf_engine USING (true) WITH CHECK (true);
  CREATE POLICY wf_reader_rows ON case_keys FOR SELECT TO wf_auditor, wf_admin USING (true);
  CREATE POLICY wf_clerk_rows ON case_keys FOR SELECT TO wf_clerk
    USING (wf_sees_case(case_id, NULL));
  CREATE POLICY wf_erase_rows ON case_keys FOR DELETE TO wf_auditor, wf_admin
    USING (EXISTS (SELECT 1 FROM cases c WHERE c.id = case_id AND c.ended_at IS NOT NULL));
  CREATE POLICY wf_erase_rows ON evidence FOR DELETE TO wf_auditor, wf_admin
    USING (EXISTS (SELECT 1 FROM cases c WHERE c.id = case_id AND c.ended_at IS NOT NULL));
  CREATE POLICY wf_erase_rows ON history FOR INSERT TO wf_auditor, wf_admin
    WITH CHECK (action = 'case.erased');
END $grants$)sql";

}  // namespace

Migration Dialect::KeysMigration() const {
  Migration m;
  m.version = 11;
  m.description = "data keys of cases with personal data";
  // One row per case with personal values: its data key wrapped under the key file's KEK
  // ("<kek id>:<base64>"). Deleting the row erases the case's personal data (crypto-shredding).
  m.statements.push_back(
      "CREATE TABLE case_keys (case_id TEXT NOT NULL PRIMARY KEY, wrapped TEXT NOT NULL,"
      " created_at BIGINT NOT NULL)");
  if (is_postgres()) m.statements.push_back(kGrants);
  return m;
}

}  // namespace wf::engine
