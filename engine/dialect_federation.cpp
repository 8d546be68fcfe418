// Version 10: the answers this deployment owes to other deployments (DESIGN.md, "Federation").
#include "engine/dialect.hpp"

namespace wf::engine {

namespace {

// Engines and servers (wf_engine) keep the rows; auditors and admins read them; clerks see
// nothing of them.
constexpr const char* kGrants = R"sql(DO $grants$
BEGIN
  IF (SELECT count(*) FROM pg_roles WHERE rolname IN
      ('wf_admin', 'wf_engine', 'wf_auditor')) < 3 THEN
    RAISE WARNING 'wf: the wf_* group roles are missing; federation_callbacks has no grants (README, Who may act)';
    RETURN;
  END IF;
  GRANT SELECT, INSERT, UPDATE ON federation_callbacks TO wf_engine;
  GRANT SELECT ON federation_callbacks TO wf_auditor, wf_admin;
END $grants$)sql";

}  // namespace

Migration Dialect::FederationMigration() const {
  Migration m;
  m.version = 10;
  m.description = "answers owed to other deployments' cases (federation)";
  // One row per case another deployment started here through its `wf` adapter: where to post
  // the case's result when it ends, and what became of that. Written in the case's own start
  // transaction; delivered (at least once, under the same key) by the engines.
  m.statements.push_back(
      "CREATE TABLE federation_callbacks (case_id TEXT NOT NULL PRIMARY KEY,"
      " client TEXT NOT NULL, url TEXT NOT NULL, caller_case TEXT NOT NULL,"
      " caller_step TEXT NOT NULL, created_at BIGINT NOT NULL, next_at BIGINT NOT NULL,"
      " attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT, delivered_at BIGINT,"
      " peer_hash TEXT)");
  m.statements.push_back(
      "CREATE INDEX federation_callbacks_due ON federation_callbacks (next_at)"
      " WHERE delivered_at IS NULL");
  if (is_postgres()) m.statements.push_back(kGrants);
  return m;
}

}  // namespace wf::engine
