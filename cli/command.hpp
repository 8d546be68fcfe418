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

// Each group of commands adds its subcommands to the app and, when one of them is chosen, sets
// `*selected` to its action. The action runs after parsing; it reads `globals`, which the caller
// fills before running it.

// wf validate, graph (cli/definition_commands.cpp).
void AddDefinitionCommands(CLI::App& app, const GlobalOptions& globals, CommandAction* selected);

// wf deploy, procedures, migrate (cli/deploy_commands.cpp).
void AddDeployCommands(CLI::App& app, const GlobalOptions& globals, CommandAction* selected);
// wf start (cli/start_commands.cpp).
void AddStartCommands(CLI::App& app, const GlobalOptions& globals, CommandAction* selected);
// wf cases, show (cli/view_commands.cpp).
void AddViewCommands(CLI::App& app, const GlobalOptions& globals, CommandAction* selected);
// wf signal, cancel, retry, outbox, incidents, engine (cli/operator_commands.cpp).
void AddOperatorCommands(CLI::App& app, const GlobalOptions& globals, CommandAction* selected);
// wf inbox, claim, release, complete (cli/task_commands.cpp).
void AddTaskCommands(CLI::App& app, const GlobalOptions& globals, CommandAction* selected);
// wf history (cli/history_commands.cpp).
void AddHistoryCommands(CLI::App& app, const GlobalOptions& globals, CommandAction* selected);
// wf archive, audit verify/export/keygen/anchor (cli/audit_commands.cpp).
void AddAuditCommands(CLI::App& app, const GlobalOptions& globals, CommandAction* selected);

// wf serve (cli/serve_commands.cpp).
void AddServeCommands(CLI::App& app, const GlobalOptions& globals, CommandAction* selected);

// wf users add/list, config apply/show (cli/access_commands.cpp).
void AddAccessCommands(CLI::App& app, const GlobalOptions& globals, CommandAction* selected);

// wf report (cli/report_commands.cpp).
void AddReportCommands(CLI::App& app, const GlobalOptions& globals, CommandAction* selected);
// erase, keys rotate (personal_commands.cpp).
void AddPersonalCommands(CLI::App& app, const GlobalOptions& globals, CommandAction* selected);

// Prints `status` to stderr as `wf: <message>` and returns its exit code.
int Fail(const Status& status);

// `wf audit verify --peer NAME` (peer_audit.cpp): checks with deployment NAME (a department of
// adapter wf) that both histories agree on every exchange, of `case_id` or of all cases.
int VerifyPeer(const GlobalOptions& globals, const std::string& peer, const std::string& case_id);

}  // namespace wf::cli
