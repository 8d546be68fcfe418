#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "workflows/diagnostic.hpp"
#include "workflows/procedure.hpp"
#include "workflows/status.hpp"
#include "workflows/yaml_tree.hpp"

namespace wf::workflows {

// Names an environment's departments, agencies and roles so that a procedure can be checked
// against a deployment (`wf validate --config`). Empty sets mean "not checked".
// The department every engine knows without a config: answers at once with the call's fields
// (DESIGN.md, "Adapter wire protocols"). A config may name a department `noop` of its own.
inline constexpr const char* kBuiltInDepartment = "noop";

struct DeploymentNames {
  std::vector<std::string> departments;
  std::vector<std::string> agencies;
  std::vector<std::string> roles;       // roles held by some agency member
  std::vector<std::string> procedures;  // procedures known besides the ones being loaded
};

// What loading a definition produced: a procedure when there were no errors, and the
// diagnostics, sorted, all of them.
struct LoadResult {
  std::optional<Procedure> procedure;
  std::vector<Diagnostic> diagnostics;
  bool ok() const { return procedure.has_value() && diagnostics.empty(); }
};

// The largest definition file LoadProcedureFile reads.
inline constexpr size_t kMaxDefinitionBytes = 256 * 1024;

// Parses (through the guarded YAML parser), builds the model and runs every static check
// (checks.hpp) on the text of one definition. `file` is used in diagnostics only. Never throws.
//
// Diagnostics sit at the offending key (unknown, misplaced or missing keys: the mapping that
// lacks it) or value (bad names, durations, targets; inside an expression, at the failing
// column). When the YAML itself is malformed only the parser's diagnostics are returned: the
// partial tree would only produce noise. Otherwise the model is built as far as it goes and the
// static checks run on it too, so one run reports every problem.
//
// The language is DESIGN.md's "Procedure language". Decisions the design leaves open:
// - a role's `agency:` defaults to the procedure's `agency:`;
// - a task step needs a `role`; a wait step's `on_timeout` needs a `timeout`;
// - `timeout` (adapter and wait steps) and retry backoffs are clock time: working days are
//   refused there; every duration must be longer than 0;
// - names: procedure and call_procedure `[a-z0-9-]+`, step ids and roles `[a-z0-9_-]+`,
//   save_as and form fields `[a-z_][a-z0-9_]*`, wait signals `[a-z0-9_-]+`;
// - a form becomes a closed object schema (additionalProperties: false); `date` becomes
//   {type: string, format: date}; `label` becomes the property's `title`;
// - any string value containing `${` anywhere in the file is compiled as jq.
LoadResult LoadProcedure(std::string_view text, const std::string& file,
                         const DeploymentNames* deployment = nullptr);

// Reads `path` (refusing files over kMaxDefinitionBytes without reading them whole) and loads
// it; `path` as given names the file in diagnostics. An unreadable file is one diagnostic at 1:1.
LoadResult LoadProcedureFile(const std::string& path, const DeploymentNames* deployment = nullptr);

// Converts a YAML value to JSON the way definitions mean it: quoted scalars stay strings; plain
// scalars `true`/`false` (also True, TRUE, ...) become booleans, `null`/`~` null, integers
// (64-bit) numbers, decimal floats numbers, anything else a string; an empty value is null.
// Mapping keys are taken as text. Used for `call:`, `input:` and input schemas.
nlohmann::json YamlToJson(const YamlNode& node);

}  // namespace wf::workflows
