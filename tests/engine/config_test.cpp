#include "engine/config.hpp"

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace {

using wf::ErrorCode;
using wf::engine::Client;
using wf::engine::Deployment;
using wf::engine::LoadDeploymentText;

// The example of DESIGN.md, "Deployment config", with a title and a Tet range added.
constexpr const char* kDesignExample = R"(departments:
  population-db:
    adapter: http
    url: http://127.0.0.1:8081/population
    timeout: 5s
    headers: {Authorization: "Bearer ${env.POPULATION_TOKEN}"}
  registry-script:
    adapter: command
    command: [examples/bin/registry.sh]
agencies:
  commune-justice:
    title: Commune justice office
    calendar: vn
    members: {an.nguyen: [justice_officer], binh.le: [justice_head]}
  district-police:
    members:
      an.nguyen: police_officer
      chi.tran: [police_officer, police_head]
calendars:
  vn: {weekend: [saturday, sunday], holidays: [2026-01-01, 2026-02-16], cutoff: "15:00"}
)";

Deployment LoadOk(const std::string& text) {
  auto result = LoadDeploymentText(text, "deploy.yaml");
  INFO((result ? std::string() : result.error().message()));
  REQUIRE(result.has_value());
  return std::move(result).value();
}

// The whole error message of a config that must not load.
std::string LoadError(const std::string& text, const wf::engine::DeploymentOptions& options = {}) {
  auto result = LoadDeploymentText(text, "deploy.yaml", options);
  REQUIRE_FALSE(result.has_value());
  CHECK(result.error().code() == ErrorCode::kInvalid);
  return result.error().message();
}

wf::engine::Date D(const char* text) { return *wf::engine::ParseDate(text); }

}  // namespace

TEST_CASE("the design's deployment config loads", "[engine][config]") {
  Deployment deployment = LoadOk(kDesignExample);
  CHECK(deployment.file == "deploy.yaml");

  REQUIRE(deployment.departments.size() == 2);
  const auto& population = deployment.departments.at("population-db");
  CHECK(population.name == "population-db");
  CHECK(population.adapter == "http");
  CHECK(population.where.line == 2);
  CHECK(population.where.column == 3);
  CHECK(population.settings ==
        nlohmann::json{{"url", "http://127.0.0.1:8081/population"},
                       {"timeout", "5s"},
                       {"headers", {{"Authorization", "Bearer ${env.POPULATION_TOKEN}"}}}});
  const auto& script = deployment.departments.at("registry-script");
  CHECK(script.adapter == "command");
  CHECK(script.settings == nlohmann::json{{"command", {"examples/bin/registry.sh"}}});

  REQUIRE(deployment.agencies.size() == 2);
  const auto& justice = deployment.agencies.at("commune-justice");
  CHECK(justice.title == "Commune justice office");
  CHECK(justice.calendar == "vn");
  CHECK(justice.members.at("an.nguyen") == std::vector<std::string>{"justice_officer"});
  CHECK(justice.members.at("binh.le") == std::vector<std::string>{"justice_head"});
  const auto& police = deployment.agencies.at("district-police");
  CHECK(police.calendar == "default");
  CHECK(police.title.empty());
  CHECK(police.members.at("an.nguyen") == std::vector<std::string>{"police_officer"});
  CHECK(police.members.at("chi.tran") == std::vector<std::string>{"police_officer", "police_head"});

  REQUIRE(deployment.calendars.size() == 2);  // vn and the built-in default
  const auto& vn = deployment.calendars.at("vn");
  CHECK(vn.name == "vn");
  CHECK(vn.weekend ==
        std::vector<std::chrono::weekday>{std::chrono::Sunday, std::chrono::Saturday});
  CHECK(vn.holidays == std::vector<wf::engine::Date>{D("2026-01-01"), D("2026-02-16")});
  CHECK(vn.cutoff_minutes == 900);
  CHECK(vn.utc_offset_minutes == 420);
  CHECK(vn.where.line == 20);
}

TEST_CASE("department settings are typed as YAML reads them", "[engine][config]") {
  Deployment deployment = LoadOk(R"(departments:
  tax:
    adapter: sql
    pool: 4
    negative: -3
    verify_tls: true
    dry_run: False
    ratio: 2.5
    code: "007"
    zip: 007
    port: "8080"
    version: '1.10'
    token: ${env.TAX_TOKEN}
    huge: 123456789012345678901234567890
    nothing: ~
    nested: {list: [1, two, "3"], flag: false}
)");
  const auto& settings = deployment.departments.at("tax").settings;
  CHECK(settings.at("pool") == 4);
  CHECK(settings.at("pool").is_number_integer());
  CHECK(settings.at("negative") == -3);
  CHECK(settings.at("verify_tls") == true);
  CHECK(settings.at("dry_run") == false);
  CHECK(settings.at("ratio") == 2.5);
  CHECK(settings.at("code") == "007");
  CHECK(settings.at("zip") == 7);  // YAML 1.2 reads plain 007 as a number: quote codes
  CHECK(settings.at("port") == "8080");
  CHECK(settings.at("version") == "1.10");
  CHECK(settings.at("token") == "${env.TAX_TOKEN}");
  CHECK(settings.at("huge").is_number_float());
  CHECK(settings.at("nothing").is_null());
  CHECK(settings.at("nested") == nlohmann::json::parse(R"({"list": [1, "two", "3"],
                                                           "flag": false})"));
  CHECK_FALSE(settings.contains("adapter"));
}

TEST_CASE("members' roles answer who may do what", "[engine][config][roles]") {
  Deployment deployment = LoadOk(kDesignExample);
  CHECK(deployment.RolesOf("an.nguyen", "commune-justice") ==
        std::vector<std::string>{"justice_officer"});
  CHECK(deployment.RolesOf("an.nguyen", "district-police") ==
        std::vector<std::string>{"police_officer"});
  CHECK(deployment.RolesOf("an.nguyen", "no-such-agency").empty());
  CHECK(deployment.RolesOf("nobody", "commune-justice").empty());
  CHECK(deployment.AgenciesOf("an.nguyen") ==
        std::vector<std::string>{"commune-justice", "district-police"});
  CHECK(deployment.AgenciesOf("chi.tran") == std::vector<std::string>{"district-police"});
  CHECK(deployment.AgenciesOf("nobody").empty());
  CHECK(deployment.HasRole("binh.le", "justice_head", "commune-justice"));
  CHECK_FALSE(deployment.HasRole("binh.le", "justice_head", "district-police"));
  CHECK_FALSE(deployment.HasRole("binh.le", "justice_officer", "commune-justice"));
  CHECK(deployment.HasRole("chi.tran", "police_head"));
  CHECK_FALSE(deployment.HasRole("chi.tran", "justice_head"));
}

TEST_CASE("a deployment names its departments, agencies and roles for validate",
          "[engine][config]") {
  auto names = LoadOk(kDesignExample).Names();
  CHECK(names.departments == std::vector<std::string>{"population-db", "registry-script"});
  CHECK(names.agencies == std::vector<std::string>{"commune-justice", "district-police"});
  CHECK(names.roles == std::vector<std::string>{"justice_head", "justice_officer", "police_head",
                                                "police_officer"});
  CHECK(names.procedures.empty());
}

TEST_CASE("an agency's calendar is the one it names or the default", "[engine][config]") {
  Deployment deployment = LoadOk(kDesignExample);
  CHECK(deployment.CalendarSpecOf("commune-justice").name == "vn");
  CHECK(deployment.CalendarSpecOf("district-police").name == "default");
  CHECK(deployment.CalendarSpecOf("unknown-agency").name == "default");
  auto calendar = deployment.CalendarOf("commune-justice");
  CHECK_FALSE(calendar.IsWorkingDay(D("2026-02-16")));
  CHECK(deployment.CalendarOf("district-police").IsWorkingDay(D("2026-02-16")));
}

TEST_CASE("no config at all is an empty deployment with the default calendar", "[engine][config]") {
  Deployment empty = Deployment::Empty();
  CHECK(empty.departments.empty());
  CHECK(empty.agencies.empty());
  REQUIRE(empty.calendars.size() == 1);
  const auto& spec = empty.calendars.at("default");
  CHECK(spec.weekend ==
        std::vector<std::chrono::weekday>{std::chrono::Sunday, std::chrono::Saturday});
  CHECK(spec.holidays.empty());
  CHECK_FALSE(spec.cutoff_minutes.has_value());
  CHECK(spec.utc_offset_minutes == 7 * 60);

  auto from_path = wf::engine::LoadDeployment("");
  REQUIRE(from_path.has_value());
  CHECK(from_path->calendars.count("default") == 1);
  CHECK(from_path->file.empty());

  for (const char* text : {"", "# nothing yet\n", "departments:\nagencies:\ncalendars:\n"}) {
    Deployment loaded = LoadOk(text);
    CHECK(loaded.departments.empty());
    CHECK(loaded.calendars.size() == 1);
  }
}

TEST_CASE("calendars take ranges, make-up days, offsets and their own default",
          "[engine][config][calendar]") {
  Deployment deployment = LoadOk(R"(calendars:
  default:
    weekend: [sunday]
  vn:
    holidays: [2026-02-20, 2026-02-14..2026-02-17, 2026-01-01, 2026-02-16]
    working_days: [2026-01-10]
    utc_offset: "+07:00"
  ny:
    weekend: []
    cutoff: "9:30"
    utc_offset: -05:00
)");
  REQUIRE(deployment.calendars.size() == 3);
  CHECK(deployment.calendars.at("default").weekend ==
        std::vector<std::chrono::weekday>{std::chrono::Sunday});
  const auto& vn = deployment.calendars.at("vn");
  CHECK(vn.holidays == std::vector<wf::engine::Date>{D("2026-01-01"), D("2026-02-14"),
                                                     D("2026-02-15"), D("2026-02-16"),
                                                     D("2026-02-17"), D("2026-02-20")});
  CHECK(vn.working_days == std::vector<wf::engine::Date>{D("2026-01-10")});
  CHECK(vn.weekend.size() == 2);
  CHECK(vn.utc_offset_minutes == 420);
  const auto& ny = deployment.calendars.at("ny");
  CHECK(ny.weekend.empty());
  CHECK(ny.cutoff_minutes == 570);
  CHECK(ny.utc_offset_minutes == -300);
}

TEST_CASE("every config problem is reported at its line and column, sorted",
          "[engine][config][errors]") {
  wf::engine::DeploymentOptions options;
  options.adapter_kinds = {"http", "command", "noop"};
  std::string message = LoadError(R"(departments:
  population-db:
    url: http://x
  registry:
    adapter: htp
agencies:
  commune-justice:
    calender: vn
    calendar: vm
    members: {an.nguyen: [justice_officer]}
calendars:
  vn:
    weekend: [saturday, sundy]
    holidays: [2026-02-30, 2026-01-01]
    cutoff: "25:00"
    utc_offset: "7"
departmens: {}
)",
                                  options);
  CHECK(message ==
        "deploy.yaml:2:3: error: department 'population-db' has no 'adapter' (the kind of "
        "system: http, command, sql, notify, noop, ...)\n"
        "deploy.yaml:5:14: error: department 'registry': unknown adapter 'htp'; did you mean "
        "'http'?\n"
        "deploy.yaml:8:5: error: unknown key 'calender' in agency 'commune-justice'; did you "
        "mean 'calendar'?\n"
        "deploy.yaml:9:15: error: agency 'commune-justice' uses calendar 'vm', which is not "
        "defined under 'calendars'; did you mean 'vn'?\n"
        "deploy.yaml:13:25: error: calendar 'vn': unknown weekday 'sundy'; did you mean "
        "'sunday'?\n"
        "deploy.yaml:14:16: error: calendar 'vn': holiday '2026-02-30' is not a real date "
        "written YYYY-MM-DD\n"
        "deploy.yaml:15:13: error: calendar 'vn': cutoff '25:00' is not a time of day; write it "
        "as \"HH:MM\", e.g. \"15:00\"\n"
        "deploy.yaml:16:17: error: calendar 'vn': utc_offset '7' is not an offset from UTC; "
        "write it as \"+HH:MM\", e.g. \"+07:00\"\n"
        "deploy.yaml:17:1: error: unknown key 'departmens'; did you mean 'departments'?");
}

TEST_CASE("unknown keys far from any known one list what is expected", "[engine][config][errors]") {
  CHECK(LoadError("procedures: {}\n") ==
        "deploy.yaml:1:1: error: unknown key 'procedures'; expected departments, agencies, "
        "calendars, identity or clients");
  CHECK(LoadError("calendars:\n  vn: {weekends: [sunday], colour: red}\n") ==
        "deploy.yaml:2:8: error: unknown key 'weekends' in calendar 'vn'; did you mean "
        "'weekend'?\n"
        "deploy.yaml:2:28: error: unknown key 'colour' in calendar 'vn'; expected weekend, "
        "holidays, working_days, cutoff or utc_offset");
}

TEST_CASE("wrong shapes are reported instead of guessed", "[engine][config][errors]") {
  CHECK(LoadError("- departments\n") ==
        "deploy.yaml:1:1: error: a deployment config is a mapping with departments, agencies "
        "and calendars, not a list");
  CHECK(LoadError("departments: [http]\n") ==
        "deploy.yaml:1:14: error: 'departments' must be a mapping, not a list");
  CHECK(LoadError("departments:\n  tax:\n  pay: http\n") ==
        "deploy.yaml:2:3: error: department 'tax' must be a mapping with at least 'adapter', "
        "not null\n"
        "deploy.yaml:3:8: error: department 'pay' must be a mapping with at least 'adapter', "
        "not a scalar");
  CHECK(LoadError("departments:\n  tax: {adapter: [http]}\n") ==
        "deploy.yaml:2:18: error: department 'tax': 'adapter' must be a name, not a list");
  CHECK(LoadError("agencies:\n  justice: {members: [an.nguyen]}\n") ==
        "deploy.yaml:2:22: error: agency 'justice': 'members' must map each actor to a list of "
        "roles, not a list");
  CHECK(LoadError("agencies:\n  justice: {members: {an: [{role: x}]}}\n") ==
        "deploy.yaml:2:28: error: agency 'justice': a role of 'an' must be a name, not a "
        "mapping");
  CHECK(LoadError("calendars:\n  vn: {holidays: [[2026-01-01]]}\n") ==
        "deploy.yaml:2:19: error: calendar 'vn': a holiday must be a date (YYYY-MM-DD), not a "
        "list");
}

TEST_CASE("holiday dates and ranges must be real and in order", "[engine][config][errors]") {
  CHECK(LoadError("calendars:\n  vn:\n    holidays:\n      - 2026-2-1\n"
                  "      - 2026-02-22..2026-02-14\n      - 2026-01-01..2027-06-01\n"
                  "      - 2026-02-14..2026-02-30\n") ==
        "deploy.yaml:4:9: error: calendar 'vn': holiday '2026-2-1' is not a real date written "
        "YYYY-MM-DD\n"
        "deploy.yaml:5:9: error: calendar 'vn': holiday range '2026-02-22..2026-02-14' ends "
        "before it starts\n"
        "deploy.yaml:6:9: error: calendar 'vn': holiday range '2026-01-01..2027-06-01' is longer "
        "than a year\n"
        "deploy.yaml:7:9: error: calendar 'vn': holiday '2026-02-30' is not a real date written "
        "YYYY-MM-DD");
  CHECK(LoadError("calendars:\n  vn: {working_days: [2026-02-14..2026-02-15]}\n") ==
        "deploy.yaml:2:23: error: calendar 'vn': working day '2026-02-14..2026-02-15' is not a "
        "real date written YYYY-MM-DD");
  CHECK(LoadError("calendars:\n  vn: {weekend: [monday, tuesday, wednesday, thursday, friday, "
                  "saturday, sunday]}\n") ==
        "deploy.yaml:2:17: error: calendar 'vn': every day of the week is a weekend day; "
        "nothing is worked");
}

TEST_CASE("YAML errors in a config come with their position", "[engine][config][errors]") {
  std::string message = LoadError("departments:\n  tax: {adapter: http\nagencies: {}\n");
  CHECK(message.rfind("deploy.yaml:", 0) == 0);
  CHECK(message.find(": error: ") != std::string::npos);
  std::string duplicate = LoadError("agencies:\n  justice: {}\n  justice: {}\n");
  CHECK(duplicate == "deploy.yaml:3:3: error: duplicate key 'justice' (first at line 2)");
}

TEST_CASE("adapter kinds are only checked when the program names them", "[engine][config]") {
  const char* text = "departments:\n  mail: {adapter: smtp}\n";
  CHECK(LoadOk(text).departments.at("mail").adapter == "smtp");
  wf::engine::DeploymentOptions options;
  options.adapter_kinds = {"noop", "http", "command"};
  CHECK(LoadError(text, options) ==
        "deploy.yaml:2:19: error: department 'mail': unknown adapter 'smtp'; expected command, "
        "http or noop");
}

TEST_CASE("a missing config file says which file and how to give one", "[engine][config]") {
  auto result = wf::engine::LoadDeployment("/nonexistent/wf/deploy.yaml");
  REQUIRE_FALSE(result.has_value());
  CHECK(result.error().code() == ErrorCode::kNotFound);
  CHECK(result.error().exit_code() == 4);
  const std::string& message = result.error().message();
  CHECK(message.find("/nonexistent/wf/deploy.yaml") != std::string::npos);
  CHECK(message.find("--config") != std::string::npos);
  CHECK(message.find("WF_CONFIG") != std::string::npos);

  auto directory = wf::engine::LoadDeployment(std::filesystem::temp_directory_path().string());
  REQUIRE_FALSE(directory.has_value());
  CHECK(directory.error().code() == ErrorCode::kNotFound);
}

TEST_CASE("a config file is read from disk and named in diagnostics", "[engine][config]") {
  namespace fs = std::filesystem;
  fs::path dir = fs::temp_directory_path() /
                 ("wf-config-test-" +
                  std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()));
  fs::create_directories(dir);
  fs::path good = dir / "deploy.yaml";
  fs::path bad = dir / "bad.yaml";
  std::ofstream(good) << kDesignExample;
  std::ofstream(bad) << "departments:\n  tax: {}\n";

  auto loaded = wf::engine::LoadDeployment(good.string());
  auto failed = wf::engine::LoadDeployment(bad.string());
  fs::remove_all(dir);

  REQUIRE(loaded.has_value());
  CHECK(loaded->file == good.string());
  CHECK(loaded->departments.size() == 2);
  REQUIRE_FALSE(failed.has_value());
  CHECK(failed.error().code() == ErrorCode::kInvalid);
  CHECK(failed.error().message() ==
        bad.string() +
            ":2:3: error: department 'tax' has no 'adapter' (the kind of system: http, command, "
            "sql, notify, noop, ...)");
}

TEST_CASE("identity and clients: paths against the config's folder, what each client may",
          "[engine][config]") {
  auto loaded = LoadDeploymentText(
      "identity: {name: tayninh-dost, cert: certs/t.pem, key: /keys/t.key, ca: ca.pem}\n"
      "clients:\n"
      "  tayninh-portal: {may: [start, show, start], procedures: [birth-registration]}\n"
      "  hcmc-dost: {may: events}\n",
      "/etc/wf/deploy.yaml");
  INFO((loaded ? "" : loaded.error().message()));
  REQUIRE(loaded.has_value());
  REQUIRE(loaded->identity.has_value());
  CHECK(loaded->identity->name == "tayninh-dost");
  CHECK(loaded->identity->cert == "/etc/wf/certs/t.pem");
  CHECK(loaded->identity->key == "/keys/t.key");
  CHECK(loaded->identity->ca == "/etc/wf/ca.pem");
  const Client* portal = loaded->FindClient("tayninh-portal");
  REQUIRE(portal != nullptr);
  CHECK(portal->may == std::vector<std::string>{"show", "start"});
  CHECK(portal->MayStart("birth-registration"));
  CHECK_FALSE(portal->MayStart("death-registration"));
  CHECK_FALSE(portal->May("events"));
  const Client* hcmc = loaded->FindClient("hcmc-dost");
  REQUIRE(hcmc != nullptr);
  CHECK(hcmc->May("events"));
  CHECK_FALSE(hcmc->MayStart("birth-registration"));
  CHECK(loaded->FindClient("stranger") == nullptr);
  CHECK_FALSE(Deployment::Empty().identity.has_value());
}

TEST_CASE("identity and clients: every mistake at its line", "[engine][config][errors]") {
  CHECK(LoadError("identity: {name: a, cart: c.pem, key: k, ca: ca}\n") ==
        "deploy.yaml:1:21: error: unknown key 'cart' in 'identity'; did you mean 'cert'?");
  CHECK(LoadError("identity: {name: a, cert: c, key: k}\n") ==
        "deploy.yaml:1:1: error: 'identity' needs 'ca' (name, cert, key and ca)");
  CHECK(LoadError("clients:\n  portal: {may: [evnts]}\n") ==
        "deploy.yaml:2:18: error: client 'portal': unknown permission 'evnts'; did you mean "
        "'events'?");
  CHECK(LoadError("clients:\n  portal: {procedures: [a]}\n") ==
        "deploy.yaml:2:3: error: client 'portal' has no 'may' (what it may do: start, show, "
        "events)");
  CHECK(LoadError("clients:\n  Portal: {may: [show]}\n") ==
        "deploy.yaml:2:3: error: client 'Portal': a client is named by its certificate's CN: "
        "lowercase letters, digits and '-'");
  CHECK(LoadError("clients:\n  portal: {may: [show], procedures: one}\n") ==
        "deploy.yaml:2:37: error: client 'portal': 'procedures' must be a list of procedure "
        "names, not a scalar");
}
