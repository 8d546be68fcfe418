// wf deploy, procedures, migrate: putting procedures and the schema into the store.
#include <iostream>
#include <memory>

#include <nlohmann/json.hpp>

#include "cli/adapters_wiring.hpp"
#include "cli/command.hpp"
#include "cli/output.hpp"
#include "cli/session.hpp"
#include "engine/call_check.hpp"
#include "engine/titles.hpp"
#include "workflows/i18n.hpp"
#include "workflows/loader.hpp"

namespace wf::cli {

namespace {

using nlohmann::json;

int Deploy(const GlobalOptions& globals, const std::vector<std::string>& files) {
  auto deployment = LoadDeploymentFor(globals);
  if (!deployment) return Fail(deployment.error());
  std::optional<workflows::DeploymentNames> names;
  if (!globals.config.empty()) names = deployment->Names();

  adapters::Registry registry;
  if (Status wired = BuildRegistry(*deployment, &registry); !wired.ok()) return Fail(wired);

  // Every file must load before any is deployed: a release of several procedures goes in whole.
  std::vector<std::pair<std::string, workflows::Procedure>> loaded;
  bool failed = false;
  for (const auto& file : files) {
    workflows::LoadResult result = workflows::LoadProcedureFile(file, names ? &*names : nullptr);
    if (result.ok()) result.diagnostics = engine::CheckCalls(*result.procedure, registry);
    for (const auto& d : result.diagnostics) std::cerr << d.ToString() << '\n';
    if (!result.ok()) {
      failed = true;
      continue;
    }
    loaded.emplace_back(file, std::move(*result.procedure));
  }
  if (failed) {
    std::cerr << Tr("wf: nothing deployed: fix the errors above and deploy again\n");
    return ExitCodeOf(ErrorCode::kInvalid);
  }

  auto session = OpenSession(globals);
  if (!session) return Fail(session.error());
  std::vector<const workflows::Procedure*> release;
  for (const auto& [file, procedure] : loaded) release.push_back(&procedure);
  auto outcomes = (*session)->runtime->Deploy(release);
  if (!outcomes) return Fail(outcomes.error());
  json report = json::array();
  for (size_t i = 0; i < loaded.size(); ++i) {
    const auto& [file, procedure] = loaded[i];
    const engine::DeployOutcome* outcome = &(*outcomes)[i];
    report.push_back({{"file", file},
                      {"procedure", procedure.name},
                      {"version", outcome->version},
                      {"created", outcome->created},
                      {"content_hash", procedure.content_hash}});
    if (!globals.json) {
      if (outcome->created) {
        std::cout << TrFormat("deployed {0} v{1} (new)\n", procedure.name, outcome->version);
      } else {
        std::cout << TrFormat("{0} v{1} unchanged\n", procedure.name, outcome->version);
      }
    }
  }
  if (globals.json) PrintJson(report);
  return 0;
}

int Procedures(const GlobalOptions& globals) {
  auto session = OpenSession(globals);
  if (!session) return Fail(session.error());
  std::vector<engine::ProcedureRecord> records;
  engine::TitleBook titles;
  Status status = (*session)->store->Read([&](engine::StoreTx& tx) {
    auto list = tx.ListProcedures();
    if (!list) return list.error();
    records = std::move(*list);
    if (globals.json) return Status::Ok();
    // Titles in the reader's language; the stored ones when a procedure no longer loads.
    auto book = engine::TitleBook::Load(tx, (*session)->runtime->procedures());
    if (book) titles = std::move(*book);
    return Status::Ok();
  });
  if (!status.ok()) return Fail(status);
  if (globals.json) {
    json out = json::array();
    for (const auto& r : records) {
      out.push_back({{"name", r.name},
                     {"version", r.version},
                     {"content_hash", r.content_hash},
                     {"title", r.title},
                     {"agency", r.agency},
                     {"deployed_at", JsonTime(r.deployed_at)}});
    }
    PrintJson(out);
    return 0;
  }
  if (records.empty()) {
    std::cout << Tr("no procedures deployed; `wf deploy FILE` deploys one\n");
    return 0;
  }
  const engine::Deployment& deployment = (*session)->deployment;
  Table table({Tr("NAME"), Tr("VERSION"), Tr("HASH"), Tr("TITLE"), Tr("AGENCY"), Tr("DEPLOYED")});
  for (const auto& r : records) {
    table.AddRow({r.name, "v" + std::to_string(r.version), r.content_hash.substr(0, 12),
                  titles.Procedure(r.name, r.title), r.agency,
                  LocalTime(deployment, r.agency, r.deployed_at)});
  }
  table.Print(std::cout);
  return 0;
}

int Migrate(const GlobalOptions& globals) {
  auto store = engine::Store::Open(globals.db, 1);
  if (!store) return Fail(store.error());
  auto applied = (*store)->Migrate();
  if (!applied) return Fail(applied.error());
  auto version = (*store)->SchemaVersion();
  if (!version) return Fail(version.error());
  if (globals.json) {
    PrintJson({{"schema_version", *version}, {"applied", *applied}});
  } else {
    std::cout << TrFormat("schema of {0} is at version {1} ({2} migrations applied now)\n",
                          (*store)->redacted_url(), *version, *applied);
  }
  return 0;
}

}  // namespace

void AddDeployCommands(CLI::App& app, const GlobalOptions& globals, CommandAction* selected) {
  {
    auto* cmd = app.add_subcommand("deploy", Tr("store procedure definitions as new versions"));
    auto files = std::make_shared<std::vector<std::string>>();
    cmd->add_option("files", *files, Tr("procedure YAML files"))->required();
    cmd->callback([&globals, files, selected] {
      *selected = [&globals, files] { return Deploy(globals, *files); };
    });
  }
  {
    auto* cmd = app.add_subcommand("procedures", Tr("list the deployed procedures and versions"));
    cmd->callback([&globals, selected] { *selected = [&globals] { return Procedures(globals); }; });
  }
  {
    auto* cmd = app.add_subcommand("migrate", Tr("bring the database schema up to date"));
    cmd->callback([&globals, selected] { *selected = [&globals] { return Migrate(globals); }; });
  }
}

}  // namespace wf::cli
