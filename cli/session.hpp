#pragma once

// What the case, task and audit commands share: the deployment and the store a command works
// on, reading JSON input, and how times and case positions are written for people. Internal to
// the `wf` program (cli/ only).

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/command.hpp"
#include "engine/config.hpp"
#include "engine/expression_pool.hpp"
#include "engine/runtime.hpp"
#include "engine/store.hpp"

namespace wf::cli {

// The deployment config, the store and a runtime over both, opened from the global options.
// Not movable: the runtime refers to the other two members.
struct Session {
  engine::Deployment deployment;
  // Bounds every expression the runtime evaluates (a hostile `wf start --data` included); its
  // workers start only when an expression needs one. Declared before the runtime that uses it.
  engine::ExpressionPool expressions;
  std::unique_ptr<engine::Store> store;
  std::unique_ptr<engine::Runtime> runtime;
  // Who acts (DESIGN.md "Who may act"): on PostgreSQL the login, or the name a wf_delegate login
  // gave with --as; on SQLite --as (WF_ACTOR). Empty when nobody was named on SQLite.
  std::string actor;
  std::string login;  // PostgreSQL: session_user; empty on SQLite
  // PostgreSQL, a login without wf_engine: it writes no table and acts through the database
  // (ActThroughDatabase); false on SQLite and for engine logins, which change cases directly.
  bool acts_through_database = false;
  // The version of the stored configuration whose members and calendars are used; 0 for none
  // (--config's are).
  int config_version = 0;

  Session() = default;
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;
};

// Loads --config (Deployment::Empty() without one): kNotFound / kInvalid as LoadDeployment says.
Result<engine::Deployment> LoadDeploymentFor(const GlobalOptions& globals);

// Loads the deployment and opens --db (which applies pending migrations) with `pool_size`
// connections. Errors name the config file or the database and say what to do. The agencies,
// members and calendars of the newest configuration stored by `wf config apply` replace those of
// --config (which then only says where departments are). On PostgreSQL the actor is the login:
// --as naming anyone else is kNotPermitted unless the login holds wf_delegate.
Result<std::unique_ptr<Session>> OpenSession(const GlobalOptions& globals, int pool_size = 2);

// A clerk's act on PostgreSQL (DESIGN.md "Who may act"): submits `act` (its kind, the task,
// case or procedure, and payload; the session's actor is filled in) through the database
// function wf_act, which refuses what the login may not do, then waits for an engine to apply
// it, polling, for up to WF_ACT_TIMEOUT seconds (default 60). Returns the JSON the act produced
// (start: the new case) or its refusal as the engine gave it (exit code and message). When no
// engine applied it in time the act is withdrawn, so nothing changes later: kUnavailable saying
// so.
Result<nlohmann::json> ActThroughDatabase(Session& session, engine::ActRecord act);
// The same, for an act whose result nobody reads: ok or its refusal.
inline Status ActedThroughDatabase(Session& session, engine::ActRecord act) {
  auto done = ActThroughDatabase(session, std::move(act));
  return done ? Status::Ok() : done.error();
}

// The actor of a command that needs one; kUsage telling how to give one when there is none.
Result<std::string> RequireActor(const Session& session, const std::string& command);

// The actor recorded for a command that does not need one: the session's, or "anonymous".
std::string ActorOrAnonymous(const Session& session);

// Reads `path` ("-": standard input) as one JSON value. kNotFound when the file cannot be read,
// kInvalid "PATH: not valid JSON: ..." when it does not parse. `what` names the option.
Result<nlohmann::json> ReadJsonInput(const std::string& path, const std::string& what);

// Times: RFC 3339 UTC for machines, the agency's local time for people.
std::string JsonTime(engine::Timestamp t);
nlohmann::json JsonTime(const std::optional<engine::Timestamp>& t);  // null when unset
std::string LocalTime(const engine::Deployment& deployment, const std::string& agency,
                      engine::Timestamp t);
// A deadline for people on the agency's calendar: "2026-01-07 23:59 (1.5 working days left)".
std::string DescribeDeadline(const engine::Deployment& deployment, const std::string& agency,
                             engine::Timestamp deadline, engine::Timestamp now);

// "a,b,c".
std::string JoinComma(const std::vector<std::string>& items);

// Prints `value` as indented JSON and a newline on stdout.
void PrintJson(const nlohmann::json& value);

// An incident as `show --json` and `incidents --json` print it.
nlohmann::json IncidentJson(const engine::IncidentRecord& incident);

// The case's status and current steps after a change, for the confirmation line of signal,
// cancel, retry and complete: {"case", "status", "steps"} (status and steps missing when the
// case cannot be read).
nlohmann::json CaseAfter(Session& session, const std::string& case_id);
// "case ID is STATUS at STEP,STEP" and a newline on stdout.
void PrintAfter(const nlohmann::json& after);

}  // namespace wf::cli
