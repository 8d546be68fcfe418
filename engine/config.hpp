#pragma once

// The deployment config: which department systems exist and how to reach them, which agencies
// there are, who holds which role in them, and the calendars their deadlines run on. Given to
// every command by `--config FILE` or the WF_CONFIG environment variable (DESIGN.md,
// "Deployment config"):
//
//   departments:
//     population-db:
//       adapter: http                       # required: the kind of department system
//       url: http://127.0.0.1:8081/population
//       timeout: 5s                         # every other key is a setting for the adapter
//       headers: {Authorization: "Bearer ${env.POPULATION_TOKEN}"}
//   agencies:
//     commune-justice:
//       title: Commune People's Committee, justice office
//       calendar: vn                        # default: the calendar named "default"
//       members: {an.nguyen: [justice_officer], binh.le: [justice_head]}
//   calendars:
//     vn: {weekend: [saturday, sunday], holidays: [2026-01-01, 2026-02-14..2026-02-22],
//          cutoff: "15:00", utc_offset: "+07:00"}
//   identity: {name: tayninh-dost, cert: certs/tayninh-dost.pem, key: certs/tayninh-dost.key,
//              ca: certs/ca.pem}         # wf serve's TLS and the wf adapter's certificate
//   clients:                             # who may call wf serve, by certificate CN
//     tayninh-portal: {may: [start, show], procedures: [birth-registration-linked]}
//     hcmc-dost: {may: [events]}
//
// Calendar keys are described with CalendarSpec (engine/calendar.hpp). A calendar named
// "default" always exists: when the file defines none, the built-in one (Saturday and Sunday
// off, no holidays, no cutoff, UTC+07:00, Vietnam's offset) is added.

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/calendar.hpp"
#include "workflows/diagnostic.hpp"
#include "workflows/loader.hpp"
#include "workflows/status.hpp"

namespace wf::engine {

// The name of the calendar an agency uses when it names none.
inline constexpr const char* kDefaultCalendarName = "default";

// One department system a procedure step can call (`adapter: population-db` in a step).
struct Department {
  std::string name;
  // The kind of system, which picks the adapter: http, command, sql, notify, noop, ...
  std::string adapter;
  // Every key of the department besides `adapter`, as a JSON object, typed the way procedure
  // definitions are (workflows::YamlToJson): plain true/false -> bool, null/~ -> null, integers
  // and decimals -> numbers, anything else and anything quoted -> a string (quote "007" or
  // "1.10" to keep the text). `${env.NAME}` references are left as written: the adapter
  // substitutes them when it starts, so secrets never pass through here.
  nlohmann::json settings = nlohmann::json::object();
  workflows::SourceLocation where;
};

// One agency: its people and the calendar its deadlines run on.
struct Agency {
  std::string name;
  std::string calendar = kDefaultCalendarName;
  // Actor -> the roles they hold in this agency, in the order written, without duplicates.
  std::map<std::string, std::vector<std::string>> members;
  // `may: {cancel: [ROLE...], start: {PROCEDURE: [ROLE...]}}`: the roles of this agency that may
  // cancel its cases, and that may start each procedure (`"*"`: any). Empty: any member may.
  // Stored by `wf config apply`; PostgreSQL enforces it (engine/dialect_access.cpp).
  std::vector<std::string> may_cancel;
  std::map<std::string, std::vector<std::string>> may_start;
  std::string title;  // for people; empty when not given
  workflows::SourceLocation where;
};

// This deployment's own certificate (DESIGN.md, "`wf serve`"): `wf serve` presents it as its
// server certificate and requires client certificates signed by `ca`; the `wf` adapter presents
// it as its client certificate. Relative paths are resolved against the config file's folder.
// The files are not read when the config loads (clerks load it too and need not read the key).
struct Identity {
  std::string name;  // the deployment's name: its certificate's CN
  std::string cert;  // PEM certificate (chain)
  std::string key;   // PEM private key
  std::string ca;    // PEM CA that signs clients' and peers' certificates
  workflows::SourceLocation where;
};

// A client of `wf serve`, named by its certificate's CN (`clients: {NAME: {may, procedures}}`).
struct Client {
  std::string name;
  std::vector<std::string> may;         // of "start", "show", "events"; sorted, unique
  std::vector<std::string> procedures;  // what `start` covers; empty: every procedure
  workflows::SourceLocation where;

  bool May(std::string_view what) const;
  bool MayStart(const std::string& procedure) const;
};

// What checks a loaded config further, beyond its own shape.
struct DeploymentOptions {
  // The adapter kinds the program registers; when not empty, a department naming another kind
  // is an error with a near-miss suggestion. Empty: not checked (the registry checks later).
  std::vector<std::string> adapter_kinds;
};

// A whole deployment config, checked. Plain data: copy it, share it read-only between threads.
struct Deployment {
  std::map<std::string, Department> departments;
  std::map<std::string, Agency> agencies;
  std::map<std::string, CalendarSpec> calendars;  // always holds kDefaultCalendarName
  std::optional<Identity> identity;               // `identity:`; none: plain loopback HTTP
  std::map<std::string, Client> clients;          // `clients:`, by CN
  std::string file;                               // the file it was read from; empty for Empty()

  // The deployment used when no config is given: no departments, no agencies, only the
  // built-in "default" calendar.
  static Deployment Empty();

  // The entry of client `name` under `clients:`; nullptr when it is not listed.
  const Client* FindClient(const std::string& name) const;

  // The roles `actor` holds in `agency`, in the order written; empty if none or no such agency.
  std::vector<std::string> RolesOf(const std::string& actor, const std::string& agency) const;
  // The agencies `actor` is a member of, sorted by name.
  std::vector<std::string> AgenciesOf(const std::string& actor) const;
  // True when `actor` holds `role` in `agency`; with an empty `agency`, in any agency.
  bool HasRole(const std::string& actor, const std::string& role,
               const std::string& agency = "") const;

  // The calendar spec of `agency`: the one it names, or "default" for an agency that is not in
  // the config. Never fails (a loaded config's agencies name existing calendars).
  const CalendarSpec& CalendarSpecOf(const std::string& agency) const;
  // The same, ready to compute with.
  Calendar CalendarOf(const std::string& agency) const { return Calendar(CalendarSpecOf(agency)); }

  // The names a procedure is checked against by `wf validate --config`: departments, agencies
  // and every role some member holds, each sorted and unique; no procedures.
  workflows::DeploymentNames Names() const;
};

// Parses and checks the text of a deployment config. `file` is used in diagnostics only.
// On any problem returns kInvalid whose message is every diagnostic, sorted, one per line, as
// `file:line:col: error: message`: YAML errors, unknown keys (with a "did you mean" when one is
// close), wrong shapes, a department without `adapter`, an agency naming an unknown calendar,
// dates that are not real (YYYY-MM-DD), a bad cutoff (HH:MM) or utc_offset (+HH:MM), unknown
// weekday names. An empty text is a valid config with only the default calendar. Never throws.
Result<Deployment> LoadDeploymentText(std::string_view text, const std::string& file,
                                      const DeploymentOptions& options = {});

// Reads `path` and loads it with LoadDeploymentText. An empty `path` (no --config, no
// WF_CONFIG) gives Deployment::Empty(). A missing or unreadable file is kNotFound naming the
// file and how to set another; a file over 4 MiB is kInvalid without being read whole.
Result<Deployment> LoadDeployment(const std::string& path, const DeploymentOptions& options = {});

}  // namespace wf::engine
