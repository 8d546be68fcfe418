// Who may act (issue 16; DESIGN.md "Who may act (PostgreSQL)"), end to end: the real `wf`
// binary and psql, connected as real PostgreSQL logins of a fresh database. Clerks of two
// agencies, an auditor, an admin and a delegate are made per test with `wf users add` (their
// names carry a random suffix: roles are cluster-wide) and dropped afterwards. SQLite, the
// single-operator store, is tested for what it keeps: `--as`, the stored configuration.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "tests/cli/cli_sandbox.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/support/test_database.hpp"

namespace {

using namespace wf::cli_testing;  // NOLINT: the shared helpers of the end-to-end tests

// A fresh database and folder, with logins made for this test only.
class Office {
 public:
  explicit Office(wf::engine::Backend backend)
      : database_(backend), suffix_(wf::testing::RandomName(8)) {}
  ~Office() {
    StopEngine();
    for (const auto& login : logins_) Admin("DROP ROLE IF EXISTS " + login);
  }

  // `wf engine` in the background, connected as the superuser (it holds wf_engine): it applies
  // the clerks' acts. Stopped (SIGTERM, reaped) by StopEngine or at the end of the test.
  void StartEngine() {
    if (engine_pid_ > 0) return;
    std::vector<std::string> environment;
    for (char** e = environ; *e != nullptr; ++e) {
      std::string entry = *e;
      if (entry.rfind("WF_", 0) != 0) environment.push_back(entry);
    }
    environment.push_back("WF_DB=" + database_.url());
    environment.push_back("WF_KEY_FILE=" + KeyFile());
    environment.push_back("WF_CONFIG=" + Fixture("ident-hosts.yaml"));
    std::vector<std::string> args = {WF_BINARY, "engine"};
    std::vector<char*> argv, envp;
    for (std::string& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);
    for (std::string& entry : environment) envp.push_back(entry.data());
    envp.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    const std::string log = (dir_.path() / "engine.log").string();
    posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log.c_str(),
                                     O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
    int spawned = posix_spawn(&engine_pid_, argv[0], &actions, nullptr, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&actions);
    REQUIRE(spawned == 0);
  }
  void StopEngine() {
    if (engine_pid_ <= 0) return;
    kill(engine_pid_, SIGTERM);
    int status = 0;
    waitpid(engine_pid_, &status, 0);
    engine_pid_ = 0;
  }
  std::string EngineLog() const { return ReadFile(dir_.path() / "engine.log"); }
  const fs::path& dir() const { return dir_.path(); }
  Office(const Office&) = delete;
  Office& operator=(const Office&) = delete;

  // Extra environment for the next `wf` runs: "NAME=value ...".
  std::string env;
  // The key file of personal data that `wf` and the engine use (env may name another).
  std::string KeyFile() const { return (dir_.path() / "wf.keys").string(); }

  bool postgres() const { return database_.is_postgres(); }
  const wf::testing::TestDatabase& database() const { return database_; }

  // A login name unique to this test: "ann" -> "ann_k3v9x2m7".
  std::string Name(const std::string& base) const { return base + "_" + suffix_; }

  // The database URL with `login` as its user (empty: the test server's superuser).
  std::string UrlAs(const std::string& login) const {
    std::string url = database_.url();
    if (login.empty() || !postgres()) return url;
    size_t from = url.find("://") + 3;
    url.replace(from, url.find('@') - from, login);
    return url;
  }

  // Runs `wf args...` connected as `login` (empty: the superuser; on SQLite, the operator) with
  // the engine host's --config and WF_ACTOR unset.
  Run Wf(const std::vector<std::string>& args, const std::string& login = "") {
    std::string command = "cd " + ShellQuote(dir_.path().string()) +
                          " && env -u WF_ACTOR WF_KEY_FILE=" + ShellQuote(KeyFile()) + " " + env +
                          " WF_DB=" + ShellQuote(UrlAs(login)) +
                          " WF_CONFIG=" + ShellQuote(Fixture("ident-hosts.yaml")) + " " +
                          ShellQuote(WF_BINARY);
    for (const auto& arg : args) command += " " + ShellQuote(arg);
    fs::path out = dir_.path() / "stdout.txt", err = dir_.path() / "stderr.txt";
    command += " </dev/null >" + ShellQuote(out.string()) + " 2>" + ShellQuote(err.string());
    Run run;
    run.code = System(command);
    run.out = ReadFile(out);
    run.err = ReadFile(err);
    std::string joined;
    for (const auto& a : args) joined += " " + a;
    UNSCOPED_INFO("wf" << joined << (login.empty() ? "" : "  (as " + login + ")") << "\n  exit "
                       << run.code << "\n  stdout: " << run.out << "\n  stderr: " << run.err);
    return run;
  }

  // Runs SQL through psql connected as `login`; true when it succeeded.
  bool Psql(const std::string& login, const std::string& sql) {
    return System("psql -X -q -v ON_ERROR_STOP=1 " + ShellQuote(UrlAs(login)) + " -c " +
                  ShellQuote(sql) + " >/dev/null 2>&1") == 0;
  }
  // What psql prints on standard error for `sql` as `login` ("" when it succeeded).
  std::string PsqlError(const std::string& login, const std::string& sql) {
    fs::path err = dir_.path() / "psql.err";
    int code = System("psql -X -q -v ON_ERROR_STOP=1 " + ShellQuote(UrlAs(login)) + " -c " +
                      ShellQuote(sql) + " >/dev/null 2>" + ShellQuote(err.string()));
    return code == 0 ? std::string() : "psql exit " + std::to_string(code) + ": " + ReadFile(err);
  }
  // The single integer `sql` returns through psql as `login`; -1 when it fails.
  long long PsqlInt(const std::string& login, const std::string& sql) {
    fs::path out = dir_.path() / "psql.txt";
    int code = System("psql -X -q -t -A -v ON_ERROR_STOP=1 " + ShellQuote(UrlAs(login)) + " -c " +
                      ShellQuote(sql) + " >" + ShellQuote(out.string()) + " 2>/dev/null");
    std::string text = Trimmed(ReadFile(out));
    if (code != 0 || text.empty()) return -1;
    return std::stoll(text);
  }
  bool Admin(const std::string& sql) { return Psql("", sql); }

  // `wf users add NAME --role ROLE` by the superuser; the login is dropped after the test.
  void AddUser(const std::string& name, const std::string& role) {
    logins_.push_back(name);
    REQUIRE(Wf({"users", "add", name, "--role", role}).code == 0);
  }

  // Writes `yaml` as a file and runs `wf config apply` with it as `login`.
  Run ApplyConfig(const std::string& yaml, const std::string& login = "") {
    fs::path file = dir_.path() / ("config-" + std::to_string(++configs_) + ".yaml");
    std::ofstream(file) << yaml;
    return Wf({"config", "apply", file.string()}, login);
  }

  // Deploys both towns' permits and starts one case of each (by the superuser); returns their
  // ids, town-a's first.
  std::pair<std::string, std::string> TwoCases() {
    REQUIRE(Wf({"deploy", Fixture("ident-a.yaml"), Fixture("ident-b.yaml")}).code == 0);
    return {Start("ident-permit-a"), Start("ident-permit-b")};
  }

  std::string Start(const std::string& procedure) {
    fs::path data = dir_.path() / "data.json";
    std::ofstream(data) << "{}";
    Run started = Wf({"start", procedure, "--data", data.string()});
    REQUIRE(started.code == 0);
    return Trimmed(started.out);
  }

  // The id of the open task of `case_id` (read by the superuser, or from the SQLite file).
  long long TaskOf(const std::string& case_id) {
    const std::string sql =
        "SELECT id FROM tasks WHERE case_id = '" + case_id + "' AND status = 'open'";
    if (postgres()) return PsqlInt("", sql);
    fs::path out = dir_.path() / "sqlite.txt";
    if (System("sqlite3 " + ShellQuote(database_.name()) + " " + ShellQuote(sql) + " >" +
               ShellQuote(out.string())) != 0) {
      return -1;
    }
    std::string text = Trimmed(ReadFile(out));
    return text.empty() ? -1 : std::stoll(text);
  }

 private:
  wf::testing::TestDatabase database_;
  wf::testing::TempDir dir_{"wf_ident_"};
  std::string suffix_;
  std::vector<std::string> logins_;
  int configs_ = 0;
  pid_t engine_pid_ = 0;
};

// Two clerks, ann of town-a and bob of town-b, in the stored configuration, and one case of each
// town's permit, each waiting at its review task.
struct Towns {
  std::string ann, bob;
  std::string a_case, b_case;
};

std::string TownsConfig(const std::string& a_members, const std::string& b_members) {
  return "agencies:\n  town-a:\n    members: {" + a_members + "}\n  town-b:\n    members: {" +
         b_members + "}\n";
}

Towns SetUpTowns(Office& office) {
  Towns towns;
  towns.ann = office.Name("ann");
  towns.bob = office.Name("bob");
  office.AddUser(towns.ann, "clerk");
  office.AddUser(towns.bob, "clerk");
  REQUIRE(office.ApplyConfig(TownsConfig(towns.ann + ": [clerk]", towns.bob + ": [clerk]")).code ==
          0);
  auto [a, b] = office.TwoCases();
  towns.a_case = a;
  towns.b_case = b;
  return towns;
}

std::vector<std::string> CaseIds(const json& rows) {
  std::vector<std::string> ids;
  for (const auto& row : rows) ids.push_back(row["id"].get<std::string>());
  return ids;
}

#define WF_IDENT_PG_TEST(name, tags, office) \
  WF_IDENT_PG_TEST_(INTERNAL_CATCH_UNIQUE_NAME(wf_ident_test_), name, tags, office)
#define WF_IDENT_PG_TEST_(function, name, tags, office)   \
  static void function(Office& office);                   \
  TEST_CASE(name " on PostgreSQL", tags "[postgresql]") { \
    if (!::wf::testing::HavePostgres()) return;           \
    Office wf_office_(::wf::engine::Backend::kPostgres);  \
    function(wf_office_);                                 \
  }                                                       \
  static void function(Office& office)

}  // namespace

WF_IDENT_PG_TEST("a clerk sees only their agency's cases, through wf and through SQL",
                 "[cli][identity]", office) {
  Towns towns = SetUpTowns(office);
  Run cases = office.Wf({"cases", "--json"}, towns.ann);
  REQUIRE(cases.code == 0);
  CHECK(CaseIds(cases.Json()) == std::vector<std::string>{towns.a_case});
  CHECK(office.Wf({"show", towns.b_case}, towns.ann).code == 4);
  CHECK(office.Wf({"history", towns.b_case}, towns.ann).code == 4);
  Run inbox = office.Wf({"inbox", "--json"}, towns.ann);
  REQUIRE(inbox.code == 0);
  REQUIRE(inbox.Json().size() == 1);
  CHECK(inbox.Json()[0]["case"] == towns.a_case);

  // psql as ann: zero rows of town-b's case in every table that holds it.
  const std::string b = "'" + towns.b_case + "'";
  CHECK(office.PsqlInt(towns.ann, "SELECT count(*) FROM cases WHERE id = " + b) == 0);
  CHECK(office.PsqlInt(towns.ann, "SELECT count(*) FROM tasks WHERE case_id = " + b) == 0);
  CHECK(office.PsqlInt(towns.ann, "SELECT count(*) FROM history WHERE case_id = " + b) == 0);
  CHECK(office.PsqlInt(towns.ann, "SELECT count(*) FROM cases") == 1);
  // ... while bob sees it and not ann's.
  CHECK(office.PsqlInt(towns.bob, "SELECT count(*) FROM cases WHERE id = " + b) == 1);
  CHECK(office.PsqlInt(towns.bob, "SELECT count(*) FROM cases") == 1);
}

WF_IDENT_PG_TEST("a clerk cannot act on another agency's task nor write behind wf's back",
                 "[cli][identity]", office) {
  Towns towns = SetUpTowns(office);
  const std::string b_task = std::to_string(office.TaskOf(towns.b_case));
  CHECK(office.Wf({"claim", b_task}, towns.ann).code == 6);
  CHECK(office.Wf({"complete", b_task, "--set", "approved=true"}, towns.ann).code == 6);
  CHECK(office.Wf({"cancel", towns.b_case, "--reason", "mine now"}, towns.ann).code == 4);
  CHECK(office.Wf({"signal", towns.b_case, "documents"}, towns.ann).code == 4);
  CHECK(office.PsqlInt("", "SELECT count(*) FROM tasks WHERE status = 'open'") == 2);
  // Nothing was even recorded for an engine to apply.
  CHECK(office.PsqlInt("", "SELECT count(*) FROM acts") == 0);

  // Through psql: a clerk writes no table, not even their own agency's case: every change goes
  // through wf_act, which checks membership in the database.
  const std::string a = "'" + towns.a_case + "'";
  const std::string b = "'" + towns.b_case + "'";
  auto denied = [&](const std::string& sql) {
    const std::string error = office.PsqlError(towns.ann, sql);
    INFO(sql << "\n" << error);
    return error.find("permission denied") != std::string::npos;
  };
  for (const std::string& c : {a, b}) {
    CHECK(denied("UPDATE cases SET status = 'completed' WHERE id = " + c));
    CHECK(denied("UPDATE cases SET data = '{}' WHERE id = " + c));
    CHECK(denied("UPDATE tasks SET status = 'completed' WHERE case_id = " + c));
    CHECK(denied("DELETE FROM tasks WHERE case_id = " + c));
    CHECK(denied("DELETE FROM work WHERE case_id = " + c));
    CHECK(denied("INSERT INTO work (case_id, kind, payload, state, run_at, created_at) VALUES (" +
                 c + ", 'invoke', '{}', 'ready', 0, 0)"));
  }
  CHECK(denied("UPDATE incidents SET status = 'resolved'"));
  CHECK(denied(
      "INSERT INTO cases (id, procedure, version, status, data, state, agency, started_at, "
      "updated_at, row_version) VALUES ('x', 'ident-permit-a', 1, 'open', '{}', '{}', 'town-a', "
      "0, 0, 1)"));
  CHECK(denied("INSERT INTO refusals (procedure, dedupe_key, refused_at) VALUES ('p', 'k', 0)"));
  CHECK(
      denied("INSERT INTO acts (kind, actor, login, payload, created_at)"
             " VALUES ('cancel', 'x', 'x', '{}', 0)"));
  CHECK(denied("UPDATE acts SET status = 'done'"));
  // Nor can the function be talked into acting for someone else or on another agency's task.
  CHECK_FALSE(office.Psql(
      towns.ann, "SELECT wf_act('claim', NULL, " + b_task + ", NULL, '" + towns.bob + "', '{}')"));
  CHECK_FALSE(office.Psql(
      towns.ann, "SELECT wf_act('claim', NULL, " + b_task + ", NULL, '" + towns.ann + "', '{}')"));
  CHECK(office.PsqlInt("", "SELECT count(*) FROM cases WHERE status = 'open'") == 2);
  CHECK(office.PsqlInt("", "SELECT count(*) FROM tasks WHERE status = 'open'") == 2);
  CHECK(office.PsqlInt("", "SELECT count(*) FROM acts") == 0);
  CHECK_FALSE(office.Psql(towns.ann, "UPDATE procedures SET source = 'x'"));
  CHECK_FALSE(office.Psql(towns.ann,
                          "INSERT INTO procedures (name, version, content_hash, source, "
                          "deployed_at) VALUES ('evil', 1, 'h', 's', 0)"));
  CHECK_FALSE(office.Psql(towns.ann,
                          "INSERT INTO evidence (subject, department, result, verified_at, "
                          "case_id) VALUES ('s', 'd', '{}', 0, " +
                              b + ")"));
  CHECK_FALSE(office.Psql(towns.ann, "INSERT INTO config_members VALUES ('x', 'town-b', 'clerk')"));
  CHECK_FALSE(office.Psql(towns.ann, "DELETE FROM config_members"));
  CHECK_FALSE(office.Psql(towns.ann,
                          "INSERT INTO history (case_id, seq, at, actor, action, details, "
                          "prev_hash, hash) VALUES ('" +
                              towns.a_case + "', 99, 'now', 'mallory', 'x', '{}', '', '')"));
  CHECK_FALSE(office.Psql(towns.ann, "UPDATE history SET actor = 'mallory'"));
  CHECK(office.Wf({"audit", "verify"}).code == 0);
}

WF_IDENT_PG_TEST(
    "the history records the login that acted, and --as is refused without wf_delegate",
    "[cli][identity]", office) {
  Towns towns = SetUpTowns(office);
  office.StartEngine();  // a clerk's act is applied by an engine
  const std::string a_task = std::to_string(office.TaskOf(towns.a_case));
  // Acting as someone else is not permitted, whoever it names; naming oneself is.
  CHECK(office.Wf({"claim", a_task, "--as", towns.bob}, towns.ann).code == 6);
  CHECK(office.Wf({"cases", "--as", "anyone"}, towns.ann).code == 6);
  Run claimed = office.Wf({"claim", a_task, "--as", towns.ann}, towns.ann);
  REQUIRE(claimed.code == 0);
  CHECK(claimed.out.find("claimed by " + towns.ann) != std::string::npos);
  REQUIRE(office.Wf({"complete", a_task, "--set", "approved=true"}, towns.ann).code == 0);

  Run history = office.Wf({"history", towns.a_case, "--json"}, towns.ann);
  REQUIRE(history.code == 0);
  bool completed = false;
  for (const auto& event : history.Json()) {
    if (event["action"] == "task.completed") {
      completed = true;
      CHECK(event["actor"] == towns.ann);
      CHECK(event["login"] == towns.ann);
    }
  }
  CHECK(completed);
  const std::string a = "'" + towns.a_case + "'";
  CHECK(office.PsqlInt("", "SELECT count(*) FROM history WHERE case_id = " + a +
                               " AND action = 'task.completed' AND login = '" + towns.ann + "'") ==
        1);
  // Through the database: the clerk's acts, each applied once by the engine.
  CHECK(office.PsqlInt("", "SELECT count(*) FROM acts WHERE login = '" + towns.ann +
                               "' AND status = 'done'") == 2);
  CHECK(office.PsqlInt(towns.ann, "SELECT count(*) FROM acts") == 2);  // their own
  CHECK(office.PsqlInt(towns.bob, "SELECT count(*) FROM acts") == 0);
  // The superuser who started the case is recorded as its login too.
  CHECK(office.PsqlInt("", "SELECT count(*) FROM history WHERE case_id = " + a +
                               " AND action = 'case.started' AND login = session_user") == 1);
  CHECK(office.Wf({"audit", "verify", towns.a_case}).code == 0);
}

WF_IDENT_PG_TEST("a delegate acts for the person it names and the history keeps both names",
                 "[cli][identity]", office) {
  Towns towns = SetUpTowns(office);
  const std::string portal = office.Name("portal");
  office.AddUser(portal, "clerk");
  office.AddUser(portal, "delegate");
  REQUIRE(office
              .ApplyConfig(TownsConfig(towns.ann + ": [clerk], " + portal + ": [clerk]",
                                       towns.bob + ": [clerk]"))
              .code == 0);
  office.StartEngine();
  const std::string a_task = std::to_string(office.TaskOf(towns.a_case));
  // The permission checks apply to the named actor: bob holds no role in town-a.
  CHECK(office.Wf({"complete", a_task, "--as", towns.bob, "--set", "approved=true"}, portal).code ==
        6);
  Run done = office.Wf({"complete", a_task, "--as", towns.ann, "--set", "approved=true"}, portal);
  REQUIRE(done.code == 0);
  CHECK(done.out.find("completed by " + towns.ann) != std::string::npos);
  CHECK(office.PsqlInt("", "SELECT count(*) FROM history WHERE case_id = '" + towns.a_case +
                               "' AND action = 'task.completed' AND actor = '" + towns.ann +
                               "' AND login = '" + portal + "'") == 1);
  // `wf history` shows both: the actor, and the login that connected for them.
  Run table = office.Wf({"history", towns.a_case});
  REQUIRE(table.code == 0);
  const auto line_at = table.out.find("[login " + portal + "]");
  REQUIRE(line_at != std::string::npos);
  const auto line_start = table.out.rfind('\n', line_at);
  CHECK(table.out.substr(line_start, line_at - line_start).find(towns.ann) != std::string::npos);
}

WF_IDENT_PG_TEST(
    "who may start and who may cancel is the stored configuration's, enforced by the database",
    "[cli][identity]", office) {
  Towns towns = SetUpTowns(office);
  const std::string head = office.Name("head");
  office.AddUser(head, "clerk");
  // In town-a only heads cancel and only clerks start the permit; town-b has no rules.
  REQUIRE(office
              .ApplyConfig("agencies:\n  town-a:\n    members: {" + towns.ann + ": [clerk], " +
                           head +
                           ": [head]}\n    may:\n      cancel: [head]\n      start: "
                           "{ident-permit-a: [clerk]}\n  town-b:\n    members: {" +
                           towns.bob + ": [clerk]}\n")
              .code == 0);
  office.StartEngine();
  fs::path data = fs::temp_directory_path() / ("wf_start_" + office.Name("x") + ".json");
  std::ofstream(data) << "{}";
  Run started = office.Wf({"start", "ident-permit-a", "--data", data.string()}, towns.ann);
  CHECK(started.code == 0);
  Run refused = office.Wf({"start", "ident-permit-a", "--data", data.string()}, head);
  CHECK(refused.code == 6);
  CHECK(refused.err.find("may not start procedure ident-permit-a") != std::string::npos);
  // town-b has no rules: its member starts its permit.
  CHECK(office.Wf({"start", "ident-permit-b", "--data", data.string()}, towns.bob).code == 0);
  fs::remove(data);

  Run cancel = office.Wf({"cancel", towns.a_case, "--reason", "withdrawn"}, towns.ann);
  CHECK(cancel.code == 6);
  CHECK(cancel.err.find("may not cancel case") != std::string::npos);
  // Past wf, through SQL, the same: the case stays open.
  CHECK_FALSE(office.Psql(
      towns.ann, "UPDATE cases SET status = 'cancelled' WHERE id = '" + towns.a_case + "'"));
  CHECK(office.PsqlInt("", "SELECT count(*) FROM cases WHERE id = '" + towns.a_case +
                               "' AND status = 'open'") == 1);
  CHECK(office.Wf({"cancel", towns.a_case, "--reason", "withdrawn"}, head).code == 0);
  CHECK(office.Wf({"cancel", towns.b_case, "--reason", "withdrawn"}, towns.bob).code == 0);
  // An unknown key under may: is a diagnostic naming it, and nothing is stored.
  Run typo = office.ApplyConfig("agencies:\n  town-a:\n    may: {cancell: [head]}\n");
  CHECK(typo.code == 3);
  CHECK(typo.err.find("cancell") != std::string::npos);
}

WF_IDENT_PG_TEST("a clerk signals only what a wait step declares", "[cli][identity]", office) {
  Towns towns = SetUpTowns(office);
  const std::string a_task = std::to_string(office.TaskOf(towns.a_case));
  office.StartEngine();
  REQUIRE(office.Wf({"complete", a_task, "--set", "approved=true"}, towns.ann).code == 0);
  // The engine runs `register` (an adapter step) and the case waits for `documents`; a forged
  // department answer for `register` from a clerk is refused.
  fs::path forged = fs::temp_directory_path() / ("wf_forged_" + office.Name("x") + ".json");
  std::ofstream(forged) << R"({"registered": true})";
  Run refused =
      office.Wf({"signal", towns.a_case, "register", "--data", forged.string()}, towns.ann);
  CHECK(refused.code == 6);
  CHECK(refused.err.find("wait") != std::string::npos);
  fs::remove(forged);
  // Past the CLI, the database refuses it too: a clerk's signal.received event for the adapter
  // step (its activation taken from the step's own step.entered event) is not written.
  const std::string a = "'" + towns.a_case + "'";
  const long long activation =
      office.PsqlInt("",
                     "SELECT CAST(CAST(details AS jsonb) ->> 'activation' AS bigint) FROM history"
                     " WHERE case_id = " +
                         a +
                         " AND action = 'step.entered' AND step = 'register'"
                         " ORDER BY seq DESC LIMIT 1");
  REQUIRE(activation > 0);
  const std::string forged_event =
      "INSERT INTO history (case_id, seq, at, actor, action, step, details, prev_hash, hash)"
      " SELECT " +
      a + ", max(seq) + 1, 'now', '" + towns.ann +
      "', 'signal.received',"
      " 'register', '{\"name\": \"register\", \"activation\": " +
      std::to_string(activation) + "}', '', '' FROM history WHERE case_id = " + a;
  const std::string error = office.PsqlError(towns.ann, forged_event);
  INFO(error);
  CHECK(error.find("permission denied") != std::string::npos);
  // Nor through wf_act: the engine that applies it refuses an undeclared signal.
  REQUIRE(office.Psql(towns.ann, "SELECT wf_act('signal', " + a +
                                     ", NULL, NULL, NULL, "
                                     "'{\"name\": \"register\", \"data\": {}}')"));
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (office.PsqlInt("", "SELECT count(*) FROM acts WHERE status = 'pending'") != 0) {
    REQUIRE(std::chrono::steady_clock::now() < deadline);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  CHECK(office.PsqlInt("",
                       "SELECT exit_code FROM acts WHERE status = 'refused' AND "
                       "kind = 'signal' AND case_id = " +
                           a) == 6);
  // A finished act keeps no payload: a clerk's form may hold personal data (DESIGN.md).
  CHECK(office.PsqlInt("",
                       "SELECT count(*) FROM acts WHERE status <> 'pending' AND "
                       "payload <> '{}'") == 0);
  CHECK(office.PsqlInt("", "SELECT count(*) FROM history WHERE case_id = " + a +
                               " AND action = 'signal.received'") == 0);
  // The declared signal of the wait step is the clerk's to deliver.
  Run delivered = office.Wf({"signal", towns.a_case, "documents"}, towns.ann);
  CHECK(delivered.code == 0);
  // An operator holding wf_engine may replay a department's callback (the step is not waiting
  // for one any more, so wf says so, but not with "not permitted").
  const std::string operator_login = office.Name("ops");
  office.AddUser(operator_login, "engine");
  CHECK(office.Wf({"signal", towns.b_case, "register"}, operator_login).code != 6);
}

WF_IDENT_PG_TEST("a clerk's act waits for an engine: applied once, or withdrawn unapplied",
                 "[cli][identity]", office) {
  Towns towns = SetUpTowns(office);
  const std::string a_task = std::to_string(office.TaskOf(towns.a_case));
  const std::string claimed_events = "SELECT count(*) FROM history WHERE case_id = '" +
                                     towns.a_case + "' AND action = 'task.claimed'";
  // No engine runs: the clerk hears so, and the act is withdrawn, so nothing happens later.
  office.env = "WF_ACT_TIMEOUT=1";
  Run waited = office.Wf({"claim", a_task}, towns.ann);
  office.env.clear();
  CHECK(waited.code == 1);
  CHECK(waited.err.find("withdrawn and nothing changed") != std::string::npos);
  CHECK(office.PsqlInt("", "SELECT count(*) FROM acts WHERE status = 'withdrawn'") == 1);
  // An act whose `wf` died waiting (submitted, never withdrawn) stays pending ...
  REQUIRE(office.Psql(towns.ann, "SELECT wf_act('claim', NULL, " + a_task + ", NULL, NULL, '{}')"));
  CHECK(office.PsqlInt(
            "", "SELECT count(*) FROM tasks WHERE id = " + a_task + " AND status = 'open'") == 1);
  // An act applied by an engine that died before recording its outcome ...
  REQUIRE(
      office.Admin("INSERT INTO acts (kind, task_id, actor, login, payload, status, "
                   "created_at, finished_at) VALUES ('claim', " +
                   a_task + ", '" + towns.ann + "', '" + towns.ann + "', '{}', 'applied', 0, 0)"));
  // ... the engine, when it comes, applies the pending one once, the withdrawn one never, and
  // finishes the one left applied.
  office.StartEngine();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (office.PsqlInt("", "SELECT count(*) FROM acts WHERE status IN ('pending', 'applied')") !=
         0) {
    INFO(office.EngineLog());
    REQUIRE(std::chrono::steady_clock::now() < deadline);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  office.StopEngine();
  office.StartEngine();  // a second engine run finds nothing left to do
  CHECK(office.Wf({"release", a_task}, towns.ann).code == 0);
  CHECK(office.PsqlInt("", claimed_events) == 1);
  CHECK(office.PsqlInt("", "SELECT count(*) FROM acts WHERE status = 'done'") == 3);
  CHECK(office.PsqlInt("",
                       "SELECT count(*) FROM acts WHERE status = 'done' AND message LIKE "
                       "'applied; the engine that applied it stopped%'") == 1);
  CHECK(office.PsqlInt("", "SELECT count(*) FROM history WHERE case_id = '" + towns.a_case +
                               "' AND action = 'task.released' AND login = '" + towns.ann + "'") ==
        1);
  CHECK(office.Wf({"audit", "verify"}).code == 0);
}

WF_IDENT_PG_TEST("an auditor reads every case and changes nothing", "[cli][identity]", office) {
  Towns towns = SetUpTowns(office);
  const std::string auditor = office.Name("audrey");
  office.AddUser(auditor, "auditor");
  Run cases = office.Wf({"cases", "--json"}, auditor);
  REQUIRE(cases.code == 0);
  CHECK(cases.Json().size() == 2);
  CHECK(office.Wf({"show", towns.b_case}, auditor).code == 0);
  CHECK(office.Wf({"audit", "verify"}, auditor).code == 0);
  const std::string b_task = std::to_string(office.TaskOf(towns.b_case));
  CHECK(office.Wf({"complete", b_task, "--set", "approved=true"}, auditor).code == 6);
  CHECK(office.Wf({"cancel", towns.b_case, "--reason", "audit"}, auditor).code == 6);
  CHECK_FALSE(office.Psql(auditor, "UPDATE cases SET status = 'completed'"));
  CHECK_FALSE(office.Psql(auditor, "DELETE FROM tasks"));
  CHECK(office.PsqlInt("", "SELECT count(*) FROM cases WHERE status = 'open'") == 2);
}

WF_IDENT_PG_TEST("a clerk removed by wf config apply loses access at once", "[cli][identity]",
                 office) {
  Towns towns = SetUpTowns(office);
  REQUIRE(office.Wf({"show", towns.a_case}, towns.ann).code == 0);
  Run applied = office.ApplyConfig(TownsConfig("", towns.bob + ": [clerk]"));
  REQUIRE(applied.code == 0);
  CHECK(applied.out.find("configuration v2") != std::string::npos);
  Run cases = office.Wf({"cases", "--json"}, towns.ann);
  REQUIRE(cases.code == 0);
  CHECK(cases.Json().empty());
  CHECK(office.Wf({"show", towns.a_case}, towns.ann).code == 4);
  const std::string a_task = std::to_string(office.TaskOf(towns.a_case));
  CHECK(office.Wf({"complete", a_task, "--set", "approved=true"}, towns.ann).code == 6);
  CHECK(office.PsqlInt(towns.ann, "SELECT count(*) FROM cases") == 0);
}

WF_IDENT_PG_TEST("only an admin adds users and applies configurations", "[cli][identity]", office) {
  const std::string admin = office.Name("root");
  const std::string clerk = office.Name("carl");
  office.AddUser(admin, "admin");
  Run added = office.Wf({"users", "add", clerk, "--role", "clerk"}, admin);
  REQUIRE(added.code == 0);
  CHECK(added.out.find(clerk) != std::string::npos);
  office.AddUser(clerk, "auditor");  // an existing login gains another group
  CHECK(office.Wf({"users", "add", office.Name("eve"), "--role", "admin"}, clerk).code == 6);
  CHECK(office.Wf({"users", "add", "Bad Name", "--role", "clerk"}, admin).code == 3);
  CHECK(office.Wf({"users", "add", clerk, "--role", "king"}, admin).code == 2);
  CHECK(office.ApplyConfig(TownsConfig(clerk + ": [clerk]", ""), clerk).code == 6);
  CHECK(office.ApplyConfig("agencies: [not, a, map]\n", admin).code == 3);
  // Departments stay on the engine hosts: a whole deployment config is stored without them.
  Run whole = office.ApplyConfig(
      "departments:\n  x:\n    adapter: noop\n    url: secret\n" + TownsConfig("", ""), admin);
  REQUIRE(whole.code == 0);
  Run stored = office.Wf({"config", "show"}, admin);
  CHECK(stored.out.find("secret") == std::string::npos);
  CHECK(stored.out.find("town-a") != std::string::npos);
  Run applied = office.ApplyConfig(TownsConfig(clerk + ": [clerk]", ""), admin);
  REQUIRE(applied.code == 0);
  // Admins deploy; clerks do not.
  CHECK(office.Wf({"deploy", Fixture("ident-b.yaml")}, clerk).code == 6);
  CHECK(office.Wf({"deploy", Fixture("ident-a.yaml")}, admin).code == 0);
  Run shown = office.Wf({"config", "show", "--json"}, clerk);
  REQUIRE(shown.code == 0);
  CHECK(shown.Json()["applied_by"] == admin);
  Run users = office.Wf({"users", "list", "--json"}, admin);
  REQUIRE(users.code == 0);
  bool listed = false;
  for (const auto& row : users.Json()) {
    if (row["login"] != clerk) continue;
    listed = true;
    CHECK(row["groups"] == json::array({"wf_auditor", "wf_clerk"}));
    CHECK(row["member_of"] == json::array({"clerk@town-a"}));
  }
  CHECK(listed);
}

WF_IDENT_PG_TEST(
    "personal data opens for the agency's clerk and an auditor, and only an auditor "
    "erases it",
    "[cli][identity][personal]", office) {
  Towns towns = SetUpTowns(office);
  const std::string auditor = office.Name("aud");
  office.AddUser(auditor, "auditor");
  REQUIRE(office.Wf({"deploy", Fixture("ident-personal-b.yaml")}).code == 0);
  const std::string citizen = "079123456789";
  const fs::path data = office.dir() / "citizen.json";
  std::ofstream(data) << R"({"citizen_id": ")" << citizen << R"(", "name": "Trần Thị Bích"})";
  Run started = office.Wf({"start", "ident-personal-b", "--data", data.string()});
  REQUIRE(started.code == 0);
  const std::string id = Trimmed(started.out);
  const std::string quoted = "'" + id + "'";

  // The clerk of town-b and the auditor read the citizen id; ann of town-a sees no case, and no
  // key through SQL (row-level security on case_keys).
  Run bob = office.Wf({"show", id, "--json"}, towns.bob);
  REQUIRE(bob.code == 0);
  CHECK(bob.Json()["data"]["citizen_id"] == citizen);
  Run audit = office.Wf({"show", id, "--json"}, auditor);
  REQUIRE(audit.code == 0);
  CHECK(audit.Json()["data"]["citizen_id"] == citizen);
  CHECK(office.Wf({"show", id}, towns.ann).code == 4);
  CHECK(office.PsqlInt(towns.ann, "SELECT count(*) FROM case_keys") == 0);
  CHECK(office.PsqlInt(towns.bob, "SELECT count(*) FROM case_keys WHERE case_id = " + quoted) == 1);
  // The tables hold ciphertext only, whoever reads them.
  CHECK(office.PsqlInt(
            "", "SELECT count(*) FROM cases WHERE data::text LIKE '%" + citizen + "%'") == 0);
  CHECK(office.PsqlInt(
            "", "SELECT count(*) FROM history WHERE details::text LIKE '%" + citizen + "%'") == 0);
  // Without the key file the clerk reads [sealed], not the value.
  office.env = "WF_KEY_FILE=" + ShellQuote((office.dir() / "elsewhere.keys").string());
  Run sealed = office.Wf({"show", id, "--json"}, towns.bob);
  REQUIRE(sealed.code == 0);
  CHECK(sealed.Json()["data"]["citizen_id"] == "[sealed]");
  office.env = "";

  // An open case is not erased; then the clerk confirms and the case ends.
  CHECK(office.Wf({"erase", id, "--reason", "request"}, auditor).code == 5);
  office.StartEngine();
  const std::string task = std::to_string(office.TaskOf(id));
  REQUIRE(office.Wf({"complete", task, "--set", "confirmed=true"}, towns.bob).code == 0);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (office.PsqlInt(
             "", "SELECT count(*) FROM cases WHERE ended_at IS NOT NULL AND id = " + quoted) != 1) {
    REQUIRE(std::chrono::steady_clock::now() < deadline);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  // Erasing is not a clerk's to do, through wf or through SQL; the auditor's erasure holds.
  CHECK(office.Wf({"erase", id, "--reason", "request"}, towns.bob).code == 6);
  CHECK(office.PsqlError(towns.bob, "DELETE FROM case_keys").find("permission denied") !=
        std::string::npos);
  CHECK(office.PsqlInt("", "SELECT count(*) FROM case_keys WHERE case_id = " + quoted) == 1);
  Run erased = office.Wf({"erase", id, "--reason", "the citizen's request"}, auditor);
  REQUIRE(erased.code == 0);
  CHECK(office.PsqlInt("", "SELECT count(*) FROM case_keys WHERE case_id = " + quoted) == 0);
  Run after = office.Wf({"show", id, "--json"}, towns.bob);
  REQUIRE(after.code == 0);
  CHECK(after.Json()["data"]["citizen_id"] == "[erased]");
  CHECK(office.Wf({"audit", "verify", id}, auditor).code == 0);
}

TEST_CASE("SQLite stays single-operator: --as names the actor and the stored config is used",
          "[cli][identity][sqlite]") {
  Office office(wf::engine::Backend::kSqlite);
  CHECK(office.Wf({"users", "add", "ann", "--role", "clerk"}).code == 2);
  REQUIRE(office.ApplyConfig(TownsConfig("ann: [clerk]", "bob: [clerk]")).code == 0);
  auto [a_case, b_case] = office.TwoCases();
  // Membership comes from the stored configuration (--config only names placeholders).
  Run inbox = office.Wf({"inbox", "--as", "ann", "--json"});
  REQUIRE(inbox.code == 0);
  REQUIRE(inbox.Json().size() == 1);
  CHECK(inbox.Json()[0]["case"] == a_case);
  Run placeholder = office.Wf({"inbox", "--as", "placeholder", "--json"});
  REQUIRE(placeholder.code == 0);
  CHECK(placeholder.Json().empty());
  Run history = office.Wf({"history", b_case, "--json"});
  REQUIRE(history.code == 0);
  CHECK(fs::status(office.database().name()).permissions() ==
        (fs::perms::owner_read | fs::perms::owner_write));
}

#define WF_IDENT_TEST(name, tags, office) \
  WF_IDENT_TEST_(INTERNAL_CATCH_UNIQUE_NAME(wf_ident_both_), name, tags, office)
#define WF_IDENT_TEST_(function, name, tags, office) \
  static void function(Office& office);              \
  WF_BACKEND_TEST_CASE(name, tags, wf_backend_) {    \
    Office wf_office_(wf_backend_);                  \
    function(wf_office_);                            \
  }                                                  \
  static void function(Office& office)

WF_IDENT_TEST("a procedure whose stored source no longer matches its hash becomes an incident",
              "[cli][identity]", office) {
  REQUIRE(office.ApplyConfig(TownsConfig("ann: [clerk]", "bob: [clerk]")).code == 0);
  auto [a_case, b_case] = office.TwoCases();
  const long long task = office.TaskOf(a_case);
  REQUIRE(
      office.Wf({"complete", std::to_string(task), "--as", "ann", "--set", "approved=true"}).code ==
      0);
  // Someone with write access to the table swaps the source under the recorded hash.
  const std::string swap =
      "UPDATE procedures SET source = source || '# changed' WHERE name = 'ident-permit-a'";
  if (office.postgres()) {
    REQUIRE(office.Admin(swap));
  } else {
    REQUIRE(System("sqlite3 " + ShellQuote(office.database().name()) + " " + ShellQuote(swap)) ==
            0);
  }
  REQUIRE(office.Wf({"engine", "--until-idle"}).code == 0);
  Run shown = office.Wf({"show", a_case, "--json"});
  REQUIRE(shown.code == 0);
  json incidents = shown.Json()["incidents"];
  REQUIRE(incidents.size() >= 1);
  CHECK(incidents[0]["message"].get<std::string>().find("content hash") != std::string::npos);
  // The other town's procedure, untouched, still runs.
  CHECK(office.Wf({"show", b_case}).code == 0);
}
