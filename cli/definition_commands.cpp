// wf validate, wf graph: the agency author's commands on definition files.
#include <filesystem>
#include <iostream>

#include <nlohmann/json.hpp>

#include "cli/adapters_wiring.hpp"
#include "cli/command.hpp"
#include "engine/call_check.hpp"
#include "engine/config.hpp"
#include "workflows/graph.hpp"
#include "workflows/i18n.hpp"
#include "workflows/loader.hpp"
#include "workflows/personal.hpp"

namespace wf::cli {

int Fail(const Status& status) {
  std::cerr << "wf: " << status.message() << '\n';
  return status.exit_code();
}

namespace {

int Validate(const GlobalOptions& globals, const std::vector<std::string>& files) {
  // With --config, the names it gives are checked and every department call goes past its
  // adapter's Validate, as `wf deploy` does.
  std::optional<workflows::DeploymentNames> names;
  adapters::Registry registry;
  if (!globals.config.empty()) {
    auto deployment = engine::LoadDeployment(globals.config);
    if (!deployment) return Fail(deployment.error());
    names = deployment->Names();
    if (Status wired = BuildRegistry(*deployment, &registry); !wired.ok()) return Fail(wired);
  }
  int exit_code = 0;
  nlohmann::json report = nlohmann::json::array();
  for (const auto& file : files) {
    workflows::LoadResult loaded = workflows::LoadProcedureFile(file, names ? &*names : nullptr);
    if (loaded.ok()) loaded.diagnostics = engine::CheckCalls(*loaded.procedure, registry);
    nlohmann::json entry = {{"file", file}, {"ok", loaded.ok()}};
    nlohmann::json diagnostics = nlohmann::json::array();
    for (const auto& d : loaded.diagnostics) {
      std::cerr << d.ToString() << '\n';
      diagnostics.push_back({{"file", d.file},
                             {"line", d.where.line},
                             {"column", d.where.column},
                             {"message", d.message}});
    }
    entry["diagnostics"] = diagnostics;
    if (loaded.ok()) {
      const auto& p = *loaded.procedure;
      // Warnings do not fail the file (DESIGN.md "Personal data").
      nlohmann::json warnings = nlohmann::json::array();
      for (const auto& w : workflows::PersonalWarnings(p)) {
        std::cerr << w.WarningString() << '\n';
        warnings.push_back({{"file", w.file},
                            {"line", w.where.line},
                            {"column", w.where.column},
                            {"message", w.message}});
      }
      entry["warnings"] = warnings;
      entry["procedure"] = p.name;
      entry["version"] = p.version;
      entry["steps"] = p.steps.size();
      entry["content_hash"] = p.content_hash;
      if (!globals.json) {
        std::cout << TrFormat("ok {0}: {1} v{2}, {3} steps\n", file, p.name, p.version,
                              i18n::Number(static_cast<long long>(p.steps.size())));
      }
    } else {
      exit_code = 3;
    }
    report.push_back(entry);
  }
  if (globals.json) std::cout << report.dump(2) << '\n';
  return exit_code;
}

int Graph(const std::string& file, const std::string& format) {
  workflows::LoadResult loaded = workflows::LoadProcedureFile(file);
  for (const auto& d : loaded.diagnostics) std::cerr << d.ToString() << '\n';
  if (!loaded.ok()) return 3;
  std::cout << workflows::RenderGraph(*loaded.procedure, format == "dot"
                                                             ? workflows::GraphFormat::kDot
                                                             : workflows::GraphFormat::kMermaid);
  return 0;
}

}  // namespace

void AddDefinitionCommands(CLI::App& app, const GlobalOptions& globals, CommandAction* selected) {
  auto* validate = app.add_subcommand("validate", Tr("check procedure definitions"));
  auto files = std::make_shared<std::vector<std::string>>();
  validate->add_option("files", *files, Tr("procedure YAML files"))->required();
  validate->callback([&globals, files, selected] {
    *selected = [&globals, files] { return Validate(globals, *files); };
  });

  auto* graph = app.add_subcommand("graph", Tr("draw a procedure as mermaid or dot"));
  auto graph_file = std::make_shared<std::string>();
  auto format = std::make_shared<std::string>("mermaid");
  graph->add_option("procedure", *graph_file, Tr("procedure YAML file"))->required();
  graph->add_option("--format", *format, Tr("mermaid or dot"))
      ->check(CLI::IsMember({"mermaid", "dot"}));
  graph->callback([graph_file, format, selected] {
    *selected = [graph_file, format] { return Graph(*graph_file, *format); };
  });
}

}  // namespace wf::cli
