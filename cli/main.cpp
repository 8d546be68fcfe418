// The `wf` program: parses the command line, runs one command, exits with DESIGN.md's codes.
#include <cstdlib>
#include <cstring>
#include <exception>
#include <iostream>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include "cli/command.hpp"
#include "engine/expression_pool.hpp"

namespace {

std::string EnvOr(const char* name, std::string fallback) {
  const char* value = std::getenv(name);
  return value && *value ? std::string(value) : std::move(fallback);
}

}  // namespace

int main(int argc, char** argv) {
  // Log lines are for people and never mix with a command's output (tables, --json).
  spdlog::set_default_logger(spdlog::stderr_color_mt("wf"));
  // The hidden mode of the engine's expression workers (engine/expression_pool.hpp).
  if (argc > 1 && std::strcmp(argv[1], wf::engine::kExpressionWorkerMode) == 0) {
    return wf::engine::RunExpressionWorker(argc, argv);
  }
  wf::cli::GlobalOptions globals;
  globals.db = EnvOr("WF_DB", "sqlite:wf.db");
  globals.config = EnvOr("WF_CONFIG", "");
  globals.actor = EnvOr("WF_ACTOR", "");

  CLI::App app{"wf: a workflow engine for procedures that cross government agencies"};
  app.require_subcommand(1);
  app.fallthrough();  // global options may follow the subcommand's name
  app.add_option("--db", globals.db, "database URL: sqlite:PATH or postgresql://... (WF_DB)");
  app.add_option("--config", globals.config, "deployment config file (WF_CONFIG)");
  app.add_option("--as", globals.actor,
                 "who is acting, e.g. an.nguyen (WF_ACTOR); on PostgreSQL the login acts, and only "
                 "a wf_delegate login may name another");
  app.add_flag("--json", globals.json, "machine-readable output");

  wf::cli::CommandAction selected;
  wf::cli::AddDefinitionCommands(app, globals, &selected);
  wf::cli::AddDeployCommands(app, globals, &selected);
  wf::cli::AddStartCommands(app, globals, &selected);
  wf::cli::AddViewCommands(app, globals, &selected);
  wf::cli::AddOperatorCommands(app, globals, &selected);
  wf::cli::AddTaskCommands(app, globals, &selected);
  wf::cli::AddHistoryCommands(app, globals, &selected);
  wf::cli::AddAuditCommands(app, globals, &selected);
  wf::cli::AddReportCommands(app, globals, &selected);
  wf::cli::AddServeCommands(app, globals, &selected);
  wf::cli::AddAccessCommands(app, globals, &selected);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return 2;
  }
  if (!selected) {
    std::cerr << "wf: no command given; see wf --help\n";
    return 2;
  }
  try {
    return selected();
  } catch (const std::exception& e) {
    std::cerr << "wf: internal error: " << e.what() << '\n';
    return 1;
  }
}
