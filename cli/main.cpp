// The `wf` program: parses the command line, runs one command, exits with DESIGN.md's codes.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <iostream>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include "cli/command.hpp"
#include "engine/expression_pool.hpp"
#include "workflows/i18n.hpp"

namespace {

std::string EnvOr(const char* name, std::string fallback) {
  const char* value = std::getenv(name);
  return value && *value ? std::string(value) : std::move(fallback);
}

// CLI11's own words (help layout, parse errors) in the reader's language.
void TranslateHelp(CLI::App& app) {
  auto formatter = app.get_formatter();
  for (const char* label :
       {wf::TrNoop("Usage"), wf::TrNoop("OPTIONS"), wf::TrNoop("SUBCOMMAND"),
        wf::TrNoop("SUBCOMMANDS"), wf::TrNoop("REQUIRED"), wf::TrNoop("Env"), wf::TrNoop("Needs"),
        wf::TrNoop("Excludes"), wf::TrNoop("TEXT"), wf::TrNoop("INT"), wf::TrNoop("UINT"),
        wf::TrNoop("FLOAT"), wf::TrNoop("Positionals")}) {
    formatter->label(label, wf::Tr(label));
  }
  app.option_defaults()->group(wf::Tr("Options"));
  app.set_help_flag("-h,--help", wf::Tr("Print this help message and exit"));
}

// After every command is added: their group's title and their help flag's text.
void TranslateSubcommands(CLI::App& app) {
  for (CLI::App* sub : app.get_subcommands({})) {
    sub->group(wf::Tr("Subcommands"));
    sub->set_help_flag("-h,--help", wf::Tr("Print this help message and exit"));
    TranslateSubcommands(*sub);
  }
}

// CLI11's parse errors are English sentences; the known ones are replaced phrase by phrase.
std::string ParseFailure(const CLI::App* app, const CLI::Error& e) {
  static const char* const kPhrases[] = {
      wf::TrNoop("The following argument was not expected: "),
      wf::TrNoop("The following arguments were not expected: "),
      wf::TrNoop("A subcommand is required"),
      wf::TrNoop("Requires at most 1 subcommand"),
      wf::TrNoop(" is required"),
      wf::TrNoop(" required "),
      wf::TrNoop(" missing"),
      wf::TrNoop("Could not convert: "),
      wf::TrNoop(" excludes "),
      wf::TrNoop(" requires "),
      wf::TrNoop("Value "),
      wf::TrNoop(" not in range "),
      wf::TrNoop("File does not exist: "),
      wf::TrNoop(": Too many positional arguments with unlimited expected args"),
      wf::TrNoop("Expected at least "),
      wf::TrNoop("Expected at most "),
      wf::TrNoop(" arguments to "),
      wf::TrNoop(", got "),
  };
  if (!wf::i18n::Vietnamese()) return CLI::FailureMessage::simple(app, e);
  std::string text = e.what();
  for (const char* phrase : kPhrases) {
    for (size_t at = text.find(phrase); at != std::string::npos;
         at = text.find(phrase, at + std::strlen(wf::Tr(phrase)))) {
      text.replace(at, std::strlen(phrase), wf::Tr(phrase));
    }
  }
  return wf::TrFormat("wf: {0}\nRun with --help for more information.\n", text);
}

// Ends the process once a command has returned: its sessions, files and threads are closed by
// then, and what is left for exit() is tearing down the command table, OpenSSL and the
// libraries' statics, 1.5 ms of every CLI command's time here. Output is flushed first.
[[noreturn]] void Finish(int code) {
  std::cout.flush();
  std::cerr.flush();
  spdlog::shutdown();
  std::fflush(nullptr);
  _exit(code);
}

}  // namespace

int main(int argc, char** argv) {
  // Log lines are for people and never mix with a command's output (tables, --json).
  spdlog::set_default_logger(spdlog::stderr_color_mt("wf"));
  // The hidden mode of the engine's expression workers (engine/expression_pool.hpp).
  if (argc > 1 && std::strcmp(argv[1], wf::engine::kExpressionWorkerMode) == 0) {
    return wf::engine::RunExpressionWorker(argc, argv);
  }
  wf::i18n::Init();
  wf::cli::GlobalOptions globals;
  globals.db = EnvOr("WF_DB", "sqlite:wf.db");
  globals.config = EnvOr("WF_CONFIG", "");
  globals.actor = EnvOr("WF_ACTOR", "");

  CLI::App app{wf::Tr("wf: a workflow engine for procedures that cross government agencies")};
  TranslateHelp(app);
  app.failure_message(ParseFailure);
  app.require_subcommand(1);
  app.fallthrough();  // global options may follow the subcommand's name
  app.add_option("--db", globals.db,
                 wf::Tr("database URL: sqlite:PATH or postgresql://... (WF_DB)"));
  app.add_option("--config", globals.config, wf::Tr("deployment config file (WF_CONFIG)"));
  app.add_option("--as", globals.actor,
                 wf::Tr("who is acting, e.g. an.nguyen (WF_ACTOR); on PostgreSQL the login acts, "
                        "and only a wf_delegate login may name another"));
  app.add_flag("--json", globals.json, wf::Tr("machine-readable output"));

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
  wf::cli::AddPersonalCommands(app, globals, &selected);
  wf::cli::AddServeCommands(app, globals, &selected);
  wf::cli::AddAccessCommands(app, globals, &selected);

  TranslateSubcommands(app);
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
  // --json is for machines: every text inside it, and the errors beside it, stay English.
  if (globals.json) wf::i18n::SetLanguage(wf::Language::kEnglish);
  if (!selected) {
    std::cerr << wf::Tr("wf: no command given; see wf --help\n");
    return 2;
  }
  int code = 1;
  try {
    code = selected();
  } catch (const std::exception& e) {
    std::cerr << wf::TrFormat("wf: internal error: {0}\n", e.what());
  }
  Finish(code);
}
