// The command adapter running the scripts in tests/adapters/fixtures/ (through /bin/sh, so that
// they need no execute bit) on an io_context on the test's thread.
#include <catch2/catch.hpp>

#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "adapters/asio.hpp"

#include "adapters/command.hpp"

namespace wf::adapters {
namespace {

using Kind = StepOutcome::Kind;

std::string Fixture(const std::string& name) {
  return std::string(WF_SOURCE_DIR) + "/tests/adapters/fixtures/" + name;
}

StepRequest MakeRequest(std::string operation, nlohmann::json fields = nlohmann::json::object(),
                        std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
  StepRequest request;
  request.case_id = "case-7";
  request.step = "register_birth";
  request.activation = 2;
  request.attempt = 1;
  request.idempotency_key = "case-7/register_birth/2";
  request.operation = std::move(operation);
  request.fields = std::move(fields);
  request.timeout = timeout;
  return request;
}

std::unique_ptr<CommandAdapter> MakeAdapter(nlohmann::json settings) {
  auto adapter = CommandAdapter::Create("civil-registry", settings);
  INFO((adapter ? std::string() : adapter.error().message()));
  REQUIRE(adapter.has_value());
  return std::move(adapter.value());
}

StepOutcome Call(Adapter& adapter, StepRequest request) {
  asio::io_context io{1};
  std::optional<StepOutcome> outcome;
  std::exception_ptr error;
  asio::co_spawn(io, adapter.Invoke(std::move(request)), [&](std::exception_ptr e, StepOutcome o) {
    error = e;
    outcome = std::move(o);
  });
  io.run();
  REQUIRE_FALSE(error);
  REQUIRE(outcome.has_value());
  return *outcome;
}

// True when process `pid` has ended within `limit`: waits on a pidfd, which becomes readable
// when the process exits, so a process the adapter SIGKILLed a moment ago counts as ended as
// soon as the kernel has finished it. `limit` only bounds the wait for a process left running.
bool Ends(pid_t pid, std::chrono::milliseconds limit) {
  int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (pidfd < 0) return errno == ESRCH;  // already gone
  pollfd fd{pidfd, POLLIN, 0};
  int ready = ::poll(&fd, 1, static_cast<int>(limit.count()));
  ::close(pidfd);
  return ready == 1;
}

TEST_CASE("a program that exits 0 with a JSON object answers the step, given the call on stdin",
          "[adapters][command]") {
  ::setenv("WF_COMMAND_TEST_NAME", "Lan", 1);
  auto adapter = MakeAdapter({{"command", {"/bin/sh", Fixture("echo.sh")}},
                              {"env", {{"GREETING", "hello ${env.WF_COMMAND_TEST_NAME}"}}}});
  StepOutcome outcome = Call(*adapter, MakeRequest("register", {{"child", "Minh"}, {"n", 2}}));
  INFO(outcome.message);
  REQUIRE(outcome.kind == Kind::kDone);
  CHECK(outcome.result["call"] == nlohmann::json({{"operation", "register"},
                                                  {"fields", {{"child", "Minh"}, {"n", 2}}},
                                                  {"case", "case-7"},
                                                  {"step", "register_birth"},
                                                  {"idempotency_key", "case-7/register_birth/2"},
                                                  {"attempt", 1}}));
  CHECK(outcome.result["key"] == "case-7/register_birth/2");
  CHECK(outcome.result["case"] == "case-7");
  CHECK(outcome.result["step"] == "register_birth");
  CHECK(outcome.result["greeting"] == "hello Lan");
}

TEST_CASE("a program printing 1 MB of open brackets is a permanent failure naming the bound",
          "[adapters][command][limits]") {
  auto adapter = MakeAdapter(
      {{"command", {"/bin/sh", "-c", "cat >/dev/null; head -c 1000000 /dev/zero | tr '\\0' '['"}}});
  StepOutcome outcome = Call(*adapter, MakeRequest("deep", nlohmann::json::object()));
  CHECK(outcome.kind == Kind::kFailed);
  CHECK_THAT(outcome.message, Catch::Contains(": exited 0 with JSON nested deeper than 32 levels"));
}

TEST_CASE("arguments reach the program literally, spaces and shell syntax included",
          "[adapters][command]") {
  auto adapter = MakeAdapter(
      {{"command", {"/bin/sh", Fixture("echo.sh"), "two words", "$HOME", "a;b", "*", "`id`"}}});
  StepOutcome outcome = Call(*adapter, MakeRequest("register"));
  INFO(outcome.message);
  REQUIRE(outcome.kind == Kind::kDone);
  CHECK(outcome.result["args"] == nlohmann::json({"two words", "$HOME", "a;b", "*", "`id`"}));
}

TEST_CASE("exit 75 is retried with stderr in the message", "[adapters][command]") {
  auto adapter = MakeAdapter({{"command", {"/bin/sh", Fixture("busy.sh")}}});
  StepOutcome outcome = Call(*adapter, MakeRequest("register"));
  CHECK(outcome.kind == Kind::kRetry);
  CHECK(outcome.message ==
        "civil-registry register: exited with status 75 (try again later): registry is in "
        "maintenance until 02:00");
}

TEST_CASE("any other exit is a permanent failure with stderr's tail", "[adapters][command]") {
  auto adapter = MakeAdapter({{"command", {"/bin/sh", Fixture("refuse.sh")}}});
  StepOutcome outcome = Call(*adapter, MakeRequest("register"));
  CHECK(outcome.kind == Kind::kFailed);
  CHECK(outcome.message ==
        "civil-registry register: exited with status 3: looking up 079123...\n"
        "no citizen with id 079123");
}

TEST_CASE("a program killed by a signal is a permanent failure", "[adapters][command]") {
  auto adapter = MakeAdapter({{"command", {"/bin/sh", Fixture("killed.sh")}}});
  StepOutcome outcome = Call(*adapter, MakeRequest("register"));
  CHECK(outcome.kind == Kind::kFailed);
  CHECK(outcome.message == "civil-registry register: killed by SIGTERM: about to be terminated");
}

TEST_CASE("exit 0 with stdout that is not a JSON object is a permanent failure",
          "[adapters][command]") {
  auto adapter = MakeAdapter({{"command", {"/bin/sh", Fixture("not_json.sh")}}});
  StepOutcome outcome = Call(*adapter, MakeRequest("register"));
  CHECK(outcome.kind == Kind::kFailed);
  CHECK(outcome.message ==
        "civil-registry register: exited 0 but its stdout is not a JSON object: all good");
}

TEST_CASE("a program that cannot be started is a permanent failure", "[adapters][command]") {
  auto adapter = MakeAdapter({{"command", {"/nonexistent/registry", "x"}}});
  StepOutcome outcome = Call(*adapter, MakeRequest("register"));
  CHECK(outcome.kind == Kind::kFailed);
  CHECK(outcome.message ==
        "civil-registry register: cannot run '/nonexistent/registry': No such file or directory");
}

TEST_CASE("a program past its timeout is killed with its whole process group and retried",
          "[adapters][command]") {
  std::string pattern =
      (std::filesystem::temp_directory_path() / "wf-command-test-XXXXXX").string();
  REQUIRE(::mkdtemp(pattern.data()) != nullptr);
  std::string pid_file = pattern + "/sleep.pid";
  auto adapter = MakeAdapter({{"command", {"/bin/sh", Fixture("hang.sh"), pid_file}}});
  StepOutcome outcome =
      Call(*adapter, MakeRequest("register", {}, std::chrono::milliseconds(1500)));
  CHECK(outcome.kind == Kind::kRetry);
  CHECK(outcome.message ==
        "civil-registry register: timed out after 1500ms; its process group was killed");

  std::ifstream in(pid_file);
  pid_t grandchild = 0;
  in >> grandchild;
  INFO("the grandchild's pid file: " << pid_file);
  REQUIRE(grandchild > 0);
  CHECK(Ends(grandchild, std::chrono::seconds(10)));
  std::filesystem::remove_all(pattern);
}

TEST_CASE("a command department's timeout caps the step's", "[adapters][command]") {
  auto adapter = MakeAdapter({{"command", {"/bin/sh", "-c", "sleep 1000"}}, {"timeout", 1}});
  StepOutcome outcome = Call(*adapter, MakeRequest("register", {}, std::chrono::hours(1)));
  CHECK(outcome.kind == Kind::kRetry);
  CHECK(outcome.message ==
        "civil-registry register: timed out after 1s; its process group was killed");
}

TEST_CASE("cwd sets the program's working directory", "[adapters][command]") {
  std::string dir = std::filesystem::temp_directory_path().string();
  auto adapter = MakeAdapter(
      {{"command", {"/bin/sh", "-c", R"(printf '{"cwd": "%s"}' "$PWD")"}}, {"cwd", dir}});
  StepOutcome outcome = Call(*adapter, MakeRequest("where"));
  INFO(outcome.message);
  REQUIRE(outcome.kind == Kind::kDone);
  CHECK(std::filesystem::equivalent(outcome.result["cwd"].get<std::string>(), dir));
}

TEST_CASE("many programs run at once on one I/O thread", "[adapters][command]") {
  auto adapter = MakeAdapter({{"command", {"/bin/sh", Fixture("echo.sh")}}});
  constexpr int kCalls = 40;
  asio::io_context io{1};
  std::vector<std::optional<StepOutcome>> outcomes(kCalls);
  for (int i = 0; i < kCalls; ++i) {
    StepRequest request = MakeRequest("register", {{"i", i}});
    request.idempotency_key = "case-" + std::to_string(i) + "/register_birth/1";
    asio::co_spawn(io, adapter->Invoke(std::move(request)),
                   [&outcomes, i](std::exception_ptr, StepOutcome o) { outcomes[i] = o; });
  }
  io.run();
  for (int i = 0; i < kCalls; ++i) {
    REQUIRE(outcomes[i].has_value());
    INFO(outcomes[i]->message);
    REQUIRE(outcomes[i]->kind == Kind::kDone);
    CHECK(outcomes[i]->result["key"] == "case-" + std::to_string(i) + "/register_birth/1");
    CHECK(outcomes[i]->result["call"]["fields"]["i"] == i);
  }
}

TEST_CASE("a large answer and a program that ignores its stdin both work", "[adapters][command]") {
  // 200 KB of output (more than a pipe holds, within the 256 KiB string bound), stdin never read.
  auto adapter = MakeAdapter(
      {{"command",
        {"/bin/sh", "-c",
         R"(printf '{"filler": "'; head -c 200000 /dev/zero | tr '\0' x; printf '"}')"}}});
  StepOutcome outcome = Call(*adapter, MakeRequest("big", {{"padding", std::string(200000, 'y')}}));
  INFO(outcome.message);
  REQUIRE(outcome.kind == Kind::kDone);
  CHECK(outcome.result["filler"].get<std::string>().size() == 200000);
}

TEST_CASE("stdout beyond 1 MiB is a permanent failure", "[adapters][command]") {
  auto adapter =
      MakeAdapter({{"command", {"/bin/sh", "-c", "head -c 2000000 /dev/zero | tr '\\0' x"}}});
  StepOutcome outcome = Call(*adapter, MakeRequest("huge"));
  CHECK(outcome.kind == Kind::kFailed);
  CHECK(outcome.message == "civil-registry huge: wrote more than 1048576 bytes on stdout");
}

// The environment a program saw, read from the file it wrote with `env -0`.
std::map<std::string, std::string> ReadEnvironment(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::map<std::string, std::string> seen;
  for (std::string entry; std::getline(in, entry, '\0');) {
    std::size_t equals = entry.find('=');
    seen[entry.substr(0, equals)] = equals == std::string::npos ? "" : entry.substr(equals + 1);
  }
  return seen;
}

TEST_CASE("a program sees a scrubbed environment: no engine secret, only what its settings name",
          "[adapters][command][env]") {
  ::setenv("WF_DB", "postgresql://engine:db-secret@db.internal/wf", 1);
  ::setenv("POPULATION_TOKEN", "other-department-token", 1);
  ::setenv("PGPASSWORD", "pg-secret", 1);
  ::setenv("WF_COMMAND_TEST_PASSED", "passed on", 1);
  ::setenv("WF_COMMAND_TEST_REGISTRY", "registry-token", 1);
  ::setenv("LC_TIME", "C", 1);
  ::setenv("WF_CASE", "an engine variable that must not leak", 1);
  ::unsetenv("WF_COMMAND_TEST_UNSET");
  std::string pattern = (std::filesystem::temp_directory_path() / "wf-command-env-XXXXXX").string();
  REQUIRE(::mkdtemp(pattern.data()) != nullptr);
  const std::filesystem::path dump = std::filesystem::path(pattern) / "env";
  auto adapter = MakeAdapter(
      {{"command", {"/bin/sh", "-c", R"(env -0 > "$1" && echo '{}')", "dump-env", dump.string()}},
       {"env", {{"REGISTRY_TOKEN", "${env.WF_COMMAND_TEST_REGISTRY}"}}},
       {"pass_env", {"WF_COMMAND_TEST_PASSED", "WF_COMMAND_TEST_UNSET"}}});
  for (const char* name : {"WF_DB", "POPULATION_TOKEN", "PGPASSWORD", "WF_COMMAND_TEST_PASSED",
                           "WF_COMMAND_TEST_REGISTRY", "LC_TIME", "WF_CASE"}) {
    ::unsetenv(name);  // read when the adapter was made; gone before it runs anything
  }
  StepOutcome outcome = Call(*adapter, MakeRequest("register"));
  INFO(outcome.message);
  REQUIRE(outcome.kind == Kind::kDone);
  std::map<std::string, std::string> seen = ReadEnvironment(dump);
  std::filesystem::remove_all(pattern);
  REQUIRE_FALSE(seen.empty());

  for (const char* secret : {"WF_DB", "POPULATION_TOKEN", "PGPASSWORD", "WF_COMMAND_TEST_UNSET",
                             "WF_COMMAND_TEST_REGISTRY"}) {
    INFO(secret);
    CHECK(seen.count(secret) == 0);
  }
  CHECK(seen["WF_COMMAND_TEST_PASSED"] == "passed on");
  CHECK(seen["REGISTRY_TOKEN"] == "registry-token");
  CHECK(seen["LC_TIME"] == "C");
  CHECK(seen["WF_CASE"] == "case-7");
  CHECK(seen["WF_IDEMPOTENCY_KEY"] == "case-7/register_birth/2");
  if (const char* path = std::getenv("PATH")) CHECK(seen["PATH"] == path);
  // Nothing else: the allow-list, what the settings name, the call's WF_* variables, and what
  // the shell itself sets.
  const std::set<std::string> named = {"WF_COMMAND_TEST_PASSED",
                                       "REGISTRY_TOKEN",
                                       "WF_CASE",
                                       "WF_STEP",
                                       "WF_OPERATION",
                                       "WF_ATTEMPT",
                                       "WF_IDEMPOTENCY_KEY",
                                       "PWD",
                                       "OLDPWD",
                                       "SHLVL",
                                       "_"};
  for (const auto& [name, value] : seen) {
    INFO(name << "=" << value);
    CHECK((CommandAdapter::InheritedByDefault(name) || named.count(name) == 1));
  }
}

TEST_CASE("the allow-list holds what running a program needs and no secret",
          "[adapters][command][env]") {
  for (const char* name :
       {"PATH", "HOME", "TMPDIR", "TZ", "LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE", "LC_MESSAGES"}) {
    INFO(name);
    CHECK(CommandAdapter::InheritedByDefault(name));
  }
  for (const char* name : {"WF_DB", "WF_CONFIG", "PGPASSWORD", "PGHOST", "POPULATION_TOKEN",
                           "LD_PRELOAD", "LD_LIBRARY_PATH", "HTTPS_PROXY", "https_proxy", "USER",
                           "SHELL", "PWD", "LC_", "PATHEXT"}) {
    INFO(name);
    CHECK_FALSE(CommandAdapter::InheritedByDefault(name));
  }
}

// --- settings --------------------------------------------------------------------------------

TEST_CASE("bad command settings are refused with the department and the key",
          "[adapters][command][settings]") {
  ::unsetenv("WF_COMMAND_TEST_MISSING");
  struct Bad {
    nlohmann::json settings;
    std::string says;
  };
  std::vector<Bad> cases = {
      {nlohmann::json::object(), "`command` is required"},
      {{{"command", nlohmann::json::array()}}, "`command` must be a non-empty list"},
      {{{"command", "bin/registry.sh --strict"}}, "`command` must be a non-empty list"},
      {{{"command", {"bin/x", {{"a", 1}}}}}, "which is not text"},
      {{{"command", {"bin/x"}}, {"timeout", "2 working days"}}, "`timeout`: working days"},
      {{{"command", {"bin/x"}}, {"env", {{"TOKEN", "${env.WF_COMMAND_TEST_MISSING}"}}}},
       "env.TOKEN: the environment variable WF_COMMAND_TEST_MISSING"},
      {{{"command", {"bin/x"}}, {"env", {{"WF_IDEMPOTENCY_KEY", "x"}}}}, "sets this variable"},
      {{{"command", {"bin/x"}}, {"cwd", 3}}, "`cwd` must be a directory name"},
      {{{"command", {"bin/x"}}, {"shell", true}}, "unknown command setting `shell`"},
      {{{"command", {"bin/x"}}, {"pass_env", "HOME"}}, "`pass_env` must be a list"},
      {{{"command", {"bin/x"}}, {"pass_env", {"A=B"}}}, "not an environment variable name"},
      {{{"command", {"bin/x"}}, {"pass_env", {1}}}, "not an environment variable name"},
      {{{"command", {"bin/x"}}, {"pass_env", {"WF_ATTEMPT"}}}, "sets this variable itself"},
      {{{"command", {"bin/x"}}, {"env", {{"TOKEN", "x"}}}, {"pass_env", {"TOKEN"}}},
       "TOKEN is named in both `env` and `pass_env`"},
  };
  for (const auto& bad : cases) {
    auto adapter = CommandAdapter::Create("civil-registry", bad.settings);
    INFO(bad.settings.dump());
    REQUIRE_FALSE(adapter.has_value());
    CHECK(adapter.error().code() == ErrorCode::kInvalid);
    CHECK_THAT(adapter.error().message(),
               Catch::StartsWith("department 'civil-registry': ") && Catch::Contains(bad.says));
  }
}

TEST_CASE("a command call is validated without running anything", "[adapters][command][settings]") {
  auto adapter = MakeAdapter({{"command", {"/nonexistent/registry"}}});
  CHECK(adapter->Validate({"civil-registry", {{"operation", "register"}}}).ok());
  CHECK(adapter->Validate({"civil-registry", nlohmann::json::object()}).ok());
  CHECK_FALSE(adapter->Validate({"civil-registry", {{"operation", {1, 2}}}}).ok());
}

}  // namespace
}  // namespace wf::adapters
