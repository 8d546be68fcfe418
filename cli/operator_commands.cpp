// wf signal, cancel, retry, outbox, incidents, engine: moving cases on and running the engine.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <iostream>
#include <memory>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "adapters/notify.hpp"
#include "cli/adapters_wiring.hpp"
#include "cli/command.hpp"
#include "cli/output.hpp"
#include "cli/session.hpp"
#include "engine/acts.hpp"
#include "engine/scheduler.hpp"
#include "workflows/i18n.hpp"

namespace wf::cli {

namespace {

using nlohmann::json;

struct SignalOptions {
  std::string case_id;
  std::string name;
  std::string data;
};

// DESIGN.md "Who may act": a clerk's act (a PostgreSQL login without wf_engine) delivers only a
// signal that a `wait:` step declares. Checked here so that the clerk hears at once; the engine
// that applies the act checks again (engine/acts.hpp).
Status CheckSignalAllowed(Session& session, const std::string& case_id, const std::string& name) {
  if (!session.acts_through_database) return Status::Ok();
  return session.store->Read([&](engine::StoreTx& tx) {
    return engine::CheckDeclaredSignal(tx, session.runtime->procedures(), case_id, name,
                                       session.login);
  });
}

int Signal(const GlobalOptions& globals, const SignalOptions& options) {
  json data = json::object();
  if (!options.data.empty()) {
    auto read = ReadJsonInput(options.data, "--data");
    if (!read) return Fail(read.error());
    data = std::move(*read);
  }
  auto session = OpenSession(globals);
  if (!session) return Fail(session.error());
  if (Status allowed = CheckSignalAllowed(**session, options.case_id, options.name);
      !allowed.ok()) {
    return Fail(allowed);
  }
  Status status;
  if ((*session)->acts_through_database) {
    engine::ActRecord act;
    act.kind = "signal";
    act.case_id = options.case_id;
    act.payload = json{{"name", options.name}, {"data", data}}.dump();
    status = ActedThroughDatabase(**session, std::move(act));
  } else {
    status = (*session)->runtime->ApplyEvent(options.case_id,
                                             engine::event::SignalReceived{options.name, data},
                                             ActorOrAnonymous(**session));
  }
  if (!status.ok()) return Fail(status);
  json after = CaseAfter(**session, options.case_id);
  after["signal"] = options.name;
  if (globals.json) {
    PrintJson(after);
  } else {
    std::cout << TrFormat("signal '{0}' delivered", options.name) << "; ";
    PrintAfter(after);
  }
  return 0;
}

int Cancel(const GlobalOptions& globals, const std::string& case_id, const std::string& reason) {
  if (reason.find_first_not_of(" \t\r\n") == std::string::npos) {
    return Fail(
        Status::Usage(Tr("`wf cancel` needs --reason TEXT saying why the case is cancelled")));
  }
  auto session = OpenSession(globals);
  if (!session) return Fail(session.error());
  Status status;
  if ((*session)->acts_through_database) {
    engine::ActRecord act;
    act.kind = "cancel";
    act.case_id = case_id;
    act.payload = json{{"reason", reason}}.dump();
    status = ActedThroughDatabase(**session, std::move(act));
  } else {
    status = (*session)->runtime->ApplyEvent(case_id, engine::event::Cancel{reason},
                                             ActorOrAnonymous(**session));
  }
  if (!status.ok()) return Fail(status);
  json after = CaseAfter(**session, case_id);
  after["reason"] = reason;
  if (globals.json) {
    PrintJson(after);
  } else {
    PrintAfter(after);
  }
  return 0;
}

int Retry(const GlobalOptions& globals, int64_t incident_id) {
  auto session = OpenSession(globals);
  if (!session) return Fail(session.error());
  if ((*session)->acts_through_database) {
    return Fail(Status::NotPermitted(
        TrFormat("retrying incident {0} is an operator's act, for a login holding wf_engine ({1} "
                 "does not)",
                 incident_id, (*session)->login)));
  }
  std::string case_id;
  (void)(*session)->store->Read([&](engine::StoreTx& tx) {
    auto incident = tx.GetIncident(incident_id);
    if (incident) case_id = incident->case_id;
    return Status::Ok();
  });
  Status status = (*session)->runtime->RetryIncident(incident_id, ActorOrAnonymous(**session));
  if (!status.ok()) return Fail(status);
  json after = CaseAfter(**session, case_id);
  after["incident"] = incident_id;
  if (globals.json) {
    PrintJson(after);
  } else {
    std::cout << TrFormat("incident {0} retried", incident_id) << "; ";
    PrintAfter(after);
  }
  return 0;
}

// The messages the notify departments of the deployment wrote into their outbox folders.
int Outbox(const GlobalOptions& globals) {
  auto deployment = LoadDeploymentFor(globals);
  if (!deployment) return Fail(deployment.error());
  json all = json::array();
  for (const auto& [name, department] : deployment->departments) {
    if (department.adapter != "notify" || !department.settings.contains("outbox")) continue;
    auto messages =
        adapters::NotifyAdapter::ListOutbox(department.settings["outbox"].get<std::string>());
    if (!messages) {
      if (messages.error().code() == ErrorCode::kNotFound) continue;  // nothing written yet
      return Fail(messages.error());
    }
    for (auto& message : *messages) {
      message["department"] = name;
      all.push_back(std::move(message));
    }
  }
  if (globals.json) {
    PrintJson(all);
    return 0;
  }
  if (all.empty()) {
    std::cout << Tr("the outbox is empty") << '\n';
    return 0;
  }
  Table table({Tr("DEPARTMENT"), Tr("WRITTEN"), Tr("CASE"), Tr("TO"), Tr("SUBJECT")});
  for (const auto& m : all) {
    auto text = [&](const char* key) {
      if (!m.contains(key)) return std::string();
      return m[key].is_string() ? m[key].get<std::string>() : m[key].dump();
    };
    // "2026-01-07T08:00:00Z"; "07/01/2026 08:00 UTC" in Vietnamese.
    std::string written = text("written_at");
    if (i18n::Vietnamese() && written.size() == 20 && written.back() == 'Z') {
      written = i18n::DateTime(written) + " UTC";
    }
    table.AddRow(
        {text("department"), written, text("case"), text("to"),
         m.contains("error") ? TrFormat("(unreadable: {0})", text("error")) : text("subject")});
  }
  table.Print(std::cout);
  return 0;
}

int Incidents(const GlobalOptions& globals) {
  auto session = OpenSession(globals);
  if (!session) return Fail(session.error());
  std::vector<engine::IncidentRecord> incidents;
  Status status = (*session)->store->Read([&](engine::StoreTx& tx) {
    auto list = tx.ListIncidents(std::nullopt);
    if (!list) return list.error();
    incidents = std::move(*list);
    engine::Revealer revealer = engine::RevealerFor(tx, (*session)->store->keys());
    for (auto& incident : incidents) incident.message = revealer.RevealText(incident.message);
    return Status::Ok();
  });
  if (!status.ok()) return Fail(status);
  if (globals.json) {
    json out = json::array();
    for (const auto& i : incidents) out.push_back(IncidentJson(i));
    PrintJson(out);
    return 0;
  }
  if (incidents.empty()) {
    std::cout << Tr("no open incidents") << '\n';
    return 0;
  }
  Table table({Tr("INCIDENT"), Tr("CASE"), Tr("STEP"), Tr("OPENED"), Tr("MESSAGE")});
  for (const auto& i : incidents) {
    table.AddRow({std::to_string(i.id), i.case_id, i.step,
                  LocalTime((*session)->deployment, "", i.created_at), i.message});
  }
  table.Print(std::cout);
  std::cout << Tr("`wf retry INCIDENT` tries a step again once its cause is fixed") << '\n';
  return 0;
}

// --- engine ----------------------------------------------------------------------------------

struct EngineCommandOptions {
  int concurrency = 256;
  bool until_idle = false;
  int idle_wait_seconds = 60;
  int lease_seconds = 120;
};

int RunEngine(const GlobalOptions& globals, const EngineCommandOptions& options) {
  // Logs go to stderr so that stdout carries only the summary (and --json stays parseable).
  spdlog::set_default_logger(spdlog::stderr_color_mt("wf-engine"));
  auto session = OpenSession(globals, 4);
  if (!session) return Fail(session.error());
  adapters::Registry registry;
  engine::EngineOptions engine_options;
  engine_options.concurrency = options.concurrency;
  engine_options.claim_batch = std::min(engine_options.claim_batch, options.concurrency);
  engine_options.until_idle = options.until_idle;
  engine_options.idle_wait = std::chrono::seconds(options.idle_wait_seconds);
  engine_options.lease = std::chrono::seconds(options.lease_seconds);
  engine::Engine engine(*(*session)->runtime, registry, engine_options);
  if (Status wired = BuildRegistry((*session)->deployment, &registry); !wired.ok()) {
    return Fail(wired);
  }
  // What the engine stores (act outcomes, incidents, refusals) is read by everyone, in any
  // language: English while it runs; the summary below is in the operator's language again.
  const Language reader = i18n::Current();
  i18n::SetLanguage(Language::kEnglish);
  auto started = std::chrono::steady_clock::now();
  Status status = engine.Run();
  i18n::SetLanguage(reader);
  double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  engine::EngineStats stats = engine.stats();
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  auto seconds = [](const timeval& t) { return t.tv_sec + t.tv_usec / 1e6; };
  double cpu = seconds(usage.ru_utime) + seconds(usage.ru_stime);
  double peak_mb = usage.ru_maxrss / 1024.0;  // Linux reports KiB
  const auto& dispatch = stats.dispatch;
  if (globals.json) {
    PrintJson({{"ok", status.ok()},
               {"claimed", stats.claimed},
               {"invoked", stats.invoked},
               {"reused", stats.reused},
               {"committed", stats.committed},
               {"stale", stats.stale},
               {"transactions", stats.transactions},
               {"wall_seconds", wall},
               {"cpu_seconds", cpu},
               {"peak_rss_mb", peak_mb},
               {"dispatch_ms",
                {{"count", dispatch.count()},
                 {"p50", dispatch.QuantileMs(0.50)},
                 {"p90", dispatch.QuantileMs(0.90)},
                 {"p99", dispatch.QuantileMs(0.99)},
                 {"max", dispatch.max_ms()}}}});
  } else {
    std::cout << TrFormat(
                     "engine: claimed {0}, invoked {1}, reused {2}, committed {3}, stale {4}, "
                     "in {5} transactions; {6} s, CPU {7} s, peak {8} MB, dispatch p50 {9} "
                     "ms, p99 {10} ms",
                     i18n::Number(stats.claimed), i18n::Number(stats.invoked),
                     i18n::Number(stats.reused), i18n::Number(stats.committed),
                     i18n::Number(stats.stale), i18n::Number(stats.transactions),
                     i18n::Decimal(wall, 1), i18n::Decimal(cpu, 1), i18n::Decimal(peak_mb, 0),
                     i18n::Decimal(dispatch.QuantileMs(0.5), 1),
                     i18n::Decimal(dispatch.QuantileMs(0.99), 1))
              << '\n';
  }
  if (!status.ok()) return Fail(status);
  return 0;
}

}  // namespace

void AddOperatorCommands(CLI::App& app, const GlobalOptions& globals, CommandAction* selected) {
  {
    auto* cmd = app.add_subcommand("signal", Tr("deliver a named event (documents, a callback)"));
    auto options = std::make_shared<SignalOptions>();
    cmd->add_option("case", options->case_id, Tr("the case id"))->required();
    cmd->add_option("event", options->name, Tr("the signal's name (a wait step's, or a step id)"))
        ->required();
    cmd->add_option("--data", options->data, Tr("the signal's data: a JSON file, - for stdin"));
    cmd->callback([&globals, options, selected] {
      *selected = [&globals, options] { return Signal(globals, *options); };
    });
  }
  {
    auto* cmd = app.add_subcommand("cancel", Tr("cancel an open case"));
    auto case_id = std::make_shared<std::string>();
    auto reason = std::make_shared<std::string>();
    cmd->add_option("case", *case_id, Tr("the case id"))->required();
    cmd->add_option("--reason", *reason, Tr("why, for the history"))->required();
    cmd->callback([&globals, case_id, reason, selected] {
      *selected = [&globals, case_id, reason] { return Cancel(globals, *case_id, *reason); };
    });
  }
  {
    auto* cmd = app.add_subcommand("retry", Tr("try the step of an incident again"));
    auto incident = std::make_shared<int64_t>(0);
    cmd->add_option("incident", *incident, Tr("the incident id (`wf incidents`)"))->required();
    cmd->callback([&globals, incident, selected] {
      *selected = [&globals, incident] { return Retry(globals, *incident); };
    });
  }
  {
    auto* outbox = app.add_subcommand(
        "outbox", Tr("messages the notify departments kept in their outbox (no mail server)"));
    outbox->callback([&globals, selected] { *selected = [&globals] { return Outbox(globals); }; });
  }
  {
    auto* cmd = app.add_subcommand("incidents", Tr("list open incidents of every case"));
    cmd->callback([&globals, selected] { *selected = [&globals] { return Incidents(globals); }; });
  }
  {
    auto* cmd = app.add_subcommand("engine", Tr("run the engine: call departments, fire timers"));
    auto options = std::make_shared<EngineCommandOptions>();
    cmd->add_option("--concurrency", options->concurrency, Tr("work items in flight (default 256)"))
        ->check(CLI::Range(1, 100000));
    cmd->add_flag("--until-idle", options->until_idle,
                  Tr("stop when nothing is left to do (timers further than --idle-wait ignored)"));
    cmd->add_option(
           "--idle-wait", options->idle_wait_seconds,
           Tr("with --until-idle: wait for work due within this many seconds (default 60)"))
        ->check(CLI::Range(0, 86400));
    cmd->add_option("--lease", options->lease_seconds,
                    Tr("seconds a claim holds its work unless renewed (every third of it, while "
                       "a call runs); a dead engine's work is taken over within about a second, "
                       "an engine alive but stuck keeps it this long (default 120)"))
        ->check(CLI::Range(1, 86400));
    cmd->callback([&globals, options, selected] {
      *selected = [&globals, options] { return RunEngine(globals, *options); };
    });
  }
}

}  // namespace wf::cli
