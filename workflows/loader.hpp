#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "workflows/diagnostic.hpp"
#include "workflows/procedure.hpp"
#include "workflows/status.hpp"

namespace wf::workflows {

// Names an environment's departments, agencies and roles so that a procedure can be checked
// against a deployment (`wf validate --config`). Empty sets mean "not checked".
struct DeploymentNames {
  std::vector<std::string> departments;
  std::vector<std::string> agencies;
  std::vector<std::string> roles;  // roles held by some agency member
  std::vector<std::string> procedures;  // procedures known besides the ones being loaded
};

// What loading a definition produced: a procedure when there were no errors, and the
// diagnostics, sorted, all of them.
struct LoadResult {
  std::optional<Procedure> procedure;
  std::vector<Diagnostic> diagnostics;
  bool ok() const { return procedure.has_value() && diagnostics.empty(); }
};

// Parses (through the guarded YAML parser), builds the model and runs every static check
// (checks.hpp) on the text of one definition. `file` is used in diagnostics only. Never throws.
LoadResult LoadProcedure(std::string_view text, const std::string& file,
                         const DeploymentNames* deployment = nullptr);

// Reads `path` (refusing files over 256 KiB without reading them whole) and loads it.
LoadResult LoadProcedureFile(const std::string& path, const DeploymentNames* deployment = nullptr);

}  // namespace wf::workflows
