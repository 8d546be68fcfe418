#pragma once

// SQL text shared by the migrations of engine/dialect_access.cpp and engine/dialect_acts.cpp, and
// the migrations that are not members of Dialect.

#include <string>

#include "engine/dialect.hpp"

namespace wf::engine {

// A PostgreSQL function `signature` (its name and parameters `c text, a text`, perhaps more)
// saying whether login `who` (an SQL expression) may see case `c` of agency `a` (when known):
// one of their agencies' cases, a sub-case of one, or a case with a task for a role they hold in
// the task's agency. Its search_path is left as @SCHEMA@ for CreateInCurrentSchema.
std::string SeesCaseFunctionSql(const std::string& signature, const std::string& who);

// Version 13 (engine/dialect_speed.cpp): the role tests of the history and case triggers written
// out in their WHEN clauses; on SQLite a version with nothing to do.
Migration WhenMigration(const Dialect& dialect);

// Version 14 (engine/dialect_speed.cpp): the partial indexes of open cases hold only the cases
// with a dedupe key, or with a deadline. Both databases.
Migration IndexMigration();

// Version 15 (engine/dialect_acts.cpp): wf_act no longer notifies inside the clerk's transaction;
// on SQLite a version with nothing to do.
Migration ActWakeMigration(const Dialect& dialect);

}  // namespace wf::engine
