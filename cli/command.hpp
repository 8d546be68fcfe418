#pragma once

#include <functional>
#include <string>

#include <CLI/CLI.hpp>

#include "workflows/status.hpp"

namespace wf::cli {

// Options every command accepts, before or after the subcommand's name.
struct GlobalOptions {
  std::string db;      // --db or WF_DB; default sqlite:wf.db
  std::string config;  // --config or WF_CONFIG; empty: no deployment config
  std::string actor;   // --as or WF_ACTOR
  bool json = false;   // --json: machine-readable output
};

// What a command does once its arguments are parsed. Returns the exit code (DESIGN.md).
using CommandAction = std::function<int()>;

// Each group of commands adds its subcommands to the app. The action runs after parsing; it
// reads `globals`, which the caller fills before running it.
void AddDefinitionCommands(CLI::App& app, const GlobalOptions& globals,
                           CommandAction* selected);

// wf deploy, procedures, migrate, start, cases, show, signal, cancel, retry, incidents, engine
// (cli/case_commands.cpp).
void AddCaseCommands(CLI::App& app, const GlobalOptions& globals, CommandAction* selected);
// wf inbox, claim, release, complete (cli/task_commands.cpp).
void AddTaskCommands(CLI::App& app, const GlobalOptions& globals, CommandAction* selected);
// wf history, audit verify, audit export (cli/audit_commands.cpp).
void AddAuditCommands(CLI::App& app, const GlobalOptions& globals, CommandAction* selected);

// wf report (cli/report_commands.cpp).
void AddReportCommands(CLI::App& app, const GlobalOptions& globals, CommandAction* selected);

// Prints `status` to stderr as `wf: <message>` and returns its exit code.
int Fail(const Status& status);

}  // namespace wf::cli
