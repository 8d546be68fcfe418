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

  Session() = default;
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;
};

// Loads --config (Deployment::Empty() without one): kNotFound / kInvalid as LoadDeployment says.
Result<engine::Deployment> LoadDeploymentFor(const GlobalOptions& globals);

// Loads the deployment and opens --db (which applies pending migrations) with `pool_size`
// connections. Errors name the config file or the database and say what to do.
Result<std::unique_ptr<Session>> OpenSession(const GlobalOptions& globals, int pool_size = 2);

// The actor of a command that needs one; kUsage telling how to give one when there is none.
Result<std::string> RequireActor(const GlobalOptions& globals, const std::string& command);

// The actor recorded for a command that does not need one: --as, or "anonymous".
std::string ActorOrAnonymous(const GlobalOptions& globals);

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
