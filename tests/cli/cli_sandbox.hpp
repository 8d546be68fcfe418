// The sandbox of the `wf` end-to-end tests (cli_test.cpp, personal_test.cpp): the real binary
// (WF_BINARY) in a fresh temporary directory against a fresh database, on SQLite and on
// PostgreSQL (tests/support/test_database.hpp), and the steps many tests share.
#pragma once

#include <sys/wait.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "tests/support/temp_dir.hpp"
#include "tests/support/test_database.hpp"

namespace wf::cli_testing {

namespace fs = std::filesystem;
using nlohmann::json;

inline std::string Fixture(const std::string& name) {
  return std::string(WF_CLI_FIXTURES) + "/" + name;
}

// Single-quotes `text` for /bin/sh.
inline std::string ShellQuote(const std::string& text) {
  std::string out = "'";
  for (char c : text) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

inline std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

// Runs a shell command line; returns its exit code (128 + signal when it was killed).
inline int System(const std::string& command) {
  int status = std::system(command.c_str());
  if (status == -1) return -1;
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

// What one run of `wf` produced.
struct Run {
  int code = -1;
  std::string out;
  std::string err;

  json Json() const {
    json value = json::parse(out, nullptr, false);
    INFO("stdout: " << out << "\nstderr: " << err);
    REQUIRE_FALSE(value.is_discarded());
    return value;
  }
  // The first line of stdout.
  std::string Line() const { return out.substr(0, out.find('\n')); }
};

// A temporary directory and an empty database for one test (tests/support), removed afterwards.
class Sandbox {
 public:
  explicit Sandbox(wf::engine::Backend backend) : database_(backend) {}

  const std::string& db() const { return database_.url(); }
  const fs::path& dir() const { return dir_.path(); }
  bool postgres() const { return database_.is_postgres(); }

  // Runs `wf args...` in the sandbox directory with WF_DB and WF_CONFIG pointing at the test's
  // database and config, and WF_ACTOR unset; `env` overrides them (an empty value unsets).
  Run Wf(const std::vector<std::string>& args, const std::string& input = "",
         const std::map<std::string, std::string>& env = {}) {
    std::map<std::string, std::string> vars = {
        {"WF_DB", db()}, {"WF_CONFIG", Fixture("config.yaml")}, {"WF_ACTOR", ""}};
    // PostgreSQL's default key file is in the user's configuration folder: one per test instead.
    if (postgres()) vars["WF_KEY_FILE"] = (dir_.path() / "wf.keys").string();
    for (const auto& [k, v] : env) vars[k] = v;
    std::string command = "cd " + ShellQuote(dir().string()) + " && env";
    for (const auto& [k, v] : vars) {
      command += v.empty() ? " -u " + k : " " + k + "=" + ShellQuote(v);
    }
    command += " " + ShellQuote(WF_BINARY);
    for (const auto& arg : args) command += " " + ShellQuote(arg);
    fs::path in = dir_ / "stdin.txt";
    fs::path out = dir_ / "stdout.txt";
    fs::path err = dir_ / "stderr.txt";
    {
      std::ofstream write(in, std::ios::binary);
      write << input;
    }
    command += " <" + ShellQuote(in.string()) + " >" + ShellQuote(out.string()) + " 2>" +
               ShellQuote(err.string());
    Run run;
    run.code = System(command);
    run.out = ReadFile(out);
    run.err = ReadFile(err);
    UNSCOPED_INFO("wf " << Joined(args) << "\n  exit " << run.code << "\n  stdout: " << run.out
                        << "\n  stderr: " << run.err);
    return run;
  }

  // Runs SQL on the test database behind wf's back (sqlite3 or psql); true on success.
  bool Sql(const std::string& sql) {
    if (postgres()) {
      return System("psql -X -q -v ON_ERROR_STOP=1 " + ShellQuote(db()) + " -c " + ShellQuote(sql) +
                    " >/dev/null 2>&1") == 0;
    }
    return System("sqlite3 " + ShellQuote(database_.name()) + " " + ShellQuote(sql) +
                  " >/dev/null 2>&1") == 0;
  }

 private:
  static std::string Joined(const std::vector<std::string>& args) {
    std::string out;
    for (const auto& a : args) out += (out.empty() ? "" : " ") + a;
    return out;
  }

  wf::testing::TempDir dir_{"wf_cli_"};
  wf::testing::TestDatabase database_;
};

// Registers the test once per store ("... on SQLite", "... on PostgreSQL"; tests/support), with
// `box` a fresh Sandbox&.
#define WF_CLI_TEST_CASE(name, tags, box) \
  WF_CLI_TEST_CASE_(INTERNAL_CATCH_UNIQUE_NAME(wf_cli_test_), name, tags, box)
#define WF_CLI_TEST_CASE_(function, name, tags, box) \
  static void function(Sandbox& box);                \
  WF_BACKEND_TEST_CASE(name, tags, wf_backend_) {    \
    Sandbox wf_box_(wf_backend_);                    \
    function(wf_box_);                               \
  }                                                  \
  static void function(Sandbox& box)

inline std::string Trimmed(const std::string& text) {
  size_t end = text.find_last_not_of(" \r\n\t");
  return end == std::string::npos ? std::string() : text.substr(0, end + 1);
}

inline size_t CountLines(const std::string& text) {
  return static_cast<size_t>(std::count(text.begin(), text.end(), '\n'));
}

// Deploys the permit procedure and starts one case of it; returns the case id.
inline std::string DeployAndStartPermit(Sandbox& box, const std::string& data = "applicant.json") {
  Run deployed = box.Wf({"deploy", Fixture("permit.yaml")});
  REQUIRE(deployed.code == 0);
  Run started = box.Wf({"start", "cli-permit", "--data", Fixture(data)});
  REQUIRE(started.code == 0);
  std::string id = Trimmed(started.out);
  REQUIRE_FALSE(id.empty());
  return id;
}

// Runs the engine until nothing is left to do now.
inline void RunEngine(Sandbox& box) {
  Run engine = box.Wf({"engine", "--until-idle"});
  REQUIRE(engine.code == 0);
  REQUIRE(engine.out.find("engine: claimed") != std::string::npos);
}

// The id of the one task in `actor`'s inbox for `case_id`.
inline int64_t TaskOf(Sandbox& box, const std::string& case_id, const std::string& actor = "ann") {
  Run inbox = box.Wf({"inbox", "--as", actor, "--json"});
  REQUIRE(inbox.code == 0);
  json tasks = inbox.Json();
  for (const auto& task : tasks) {
    if (task["case"] == case_id) return task["id"].get<int64_t>();
  }
  FAIL("no task for case " << case_id << " in " << actor << "'s inbox: " << inbox.out);
  return 0;
}

// Starts a permit case, which waits at once for a clerk's review; returns (case, task).
inline std::pair<std::string, int64_t> PermitAtReview(Sandbox& box) {
  std::string id = DeployAndStartPermit(box);
  return {id, TaskOf(box, id)};
}

}  // namespace wf::cli_testing
