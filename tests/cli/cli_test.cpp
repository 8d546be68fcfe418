// End-to-end tests of the `wf` program: each test runs the real binary (WF_BINARY) in a fresh
// temporary directory against a fresh database, once on SQLite and once on PostgreSQL, as two
// test cases (tests/support/test_database.hpp): without WF_TEST_PG_URL the PostgreSQL one is
// reported skipped, or fails when WF_REQUIRE_PG=1 (CI).
//
// The database is reached only through `wf`, except to tamper with the history (the sqlite3 and
// psql command-line tools), which is what an attacker with database access would do.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <openssl/evp.h>
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "tests/cli/cli_sandbox.hpp"

using namespace wf::cli_testing;  // NOLINT(google-build-using-namespace): every test's sandbox

WF_CLI_TEST_CASE("a clerk carries a permit from deploy to a verified history", "[cli][flow]", box) {
  Run deployed = box.Wf({"deploy", Fixture("permit.yaml")});
  REQUIRE(deployed.code == 0);
  CHECK(Trimmed(deployed.out) == "deployed cli-permit v1 (new)");
  Run again = box.Wf({"deploy", Fixture("permit.yaml")});
  REQUIRE(again.code == 0);
  CHECK(Trimmed(again.out) == "cli-permit v1 unchanged");

  Run procedures = box.Wf({"procedures", "--json"});
  REQUIRE(procedures.code == 0);
  json listed = procedures.Json();
  REQUIRE(listed.size() == 1);
  CHECK(listed[0]["name"] == "cli-permit");
  CHECK(listed[0]["version"] == 1);
  CHECK(listed[0]["agency"] == "town-hall");
  CHECK(box.Wf({"procedures"}).out.find("cli-permit") != std::string::npos);

  Run started = box.Wf({"start", "cli-permit", "--data", Fixture("applicant.json"), "--as", "ann"});
  REQUIRE(started.code == 0);
  std::string id = Trimmed(started.out);
  REQUIRE_FALSE(id.empty());
  CHECK(id.find('\n') == std::string::npos);

  Run inbox = box.Wf({"inbox", "--as", "ann", "--json"});
  REQUIRE(inbox.code == 0);
  json tasks = inbox.Json();
  REQUIRE(tasks.size() == 1);
  CHECK(tasks[0]["case"] == id);
  CHECK(tasks[0]["step"] == "review");
  CHECK(tasks[0]["role"] == "clerk");
  CHECK(tasks[0]["status"] == "open");
  CHECK(tasks[0]["title"] == "Review the permit");
  CHECK_FALSE(tasks[0]["due"].is_null());
  int64_t task = tasks[0]["id"].get<int64_t>();
  std::string task_id = std::to_string(task);
  CHECK(box.Wf({"inbox", "--as", "carl", "--json"}).Json().empty());

  json waiting = box.Wf({"show", id, "--json"}).Json();
  REQUIRE(waiting["steps"].size() == 1);
  CHECK(waiting["steps"][0]["step"] == "review");
  CHECK(waiting["steps"][0]["waiting"] == "task");
  CHECK(waiting["status"] == "open");

  Run claimed = box.Wf({"claim", task_id, "--as", "ann"});
  REQUIRE(claimed.code == 0);
  CHECK(Trimmed(claimed.out) == "task " + task_id + " claimed by ann");
  json after_claim = box.Wf({"inbox", "--as", "ann", "--json"}).Json();
  REQUIRE(after_claim.size() == 1);
  CHECK(after_claim[0]["status"] == "claimed");
  CHECK(after_claim[0]["assignee"] == "ann");
  Run human_show = box.Wf({"show", id});
  REQUIRE(human_show.code == 0);
  CHECK(human_show.out.find("claimed by ann") != std::string::npos);
  CHECK(human_show.out.find("working day") != std::string::npos);

  Run completed = box.Wf({"complete", task_id, "--as", "ann", "--set", "approved=true", "--set",
                          "fee=15", "--set", "visit_on=2026-03-02", "--set", "note=all good"});
  REQUIRE(completed.code == 0);
  CHECK(completed.out.find("completed by ann") != std::string::npos);
  CHECK(completed.out.find("is open at register") != std::string::npos);
  CHECK(box.Wf({"inbox", "--as", "ann", "--json"}).Json().empty());

  // The registry department (noop) records the permit when the engine runs.
  json recording = box.Wf({"show", id, "--json"}).Json();
  REQUIRE(recording["steps"].size() == 1);
  CHECK(recording["steps"][0]["step"] == "register");
  CHECK(recording["steps"][0]["waiting"] == "adapter");
  RunEngine(box);

  json shown = box.Wf({"show", id, "--json"}).Json();
  CHECK(shown["id"] == id);
  CHECK(shown["procedure"] == "cli-permit");
  CHECK(shown["version"] == 1);
  CHECK(shown["status"] == "completed");
  CHECK(shown["agency"] == "town-hall");
  CHECK(shown["data"]["review"]["approved"] == true);
  CHECK(shown["data"]["review"]["fee"] == 15);
  CHECK(shown["data"]["review"]["fee"].is_number_integer());
  CHECK(shown["data"]["review"]["visit_on"] == "2026-03-02");
  CHECK(shown["data"]["registration"]["id"] == "1234");  // the noop department's answer
  CHECK(shown["data"]["registration"]["fee"] == 15);
  REQUIRE(shown["tasks"].size() == 1);
  CHECK(shown["tasks"][0]["status"] == "completed");
  CHECK(shown["tasks"][0]["completed_by"] == "ann");
  CHECK(shown["incidents"].empty());
  REQUIRE(shown["deadline"].is_object());
  CHECK_FALSE(shown["deadline"]["at"].is_null());
  CHECK_FALSE(shown["ended_at"].is_null());
  CHECK(shown["steps"].empty());
  CHECK(box.Wf({"show", id}).out.find("status: completed") != std::string::npos);

  Run history = box.Wf({"history", id, "--json"});
  REQUIRE(history.code == 0);
  json events = history.Json();
  REQUIRE(events.size() >= 4);
  bool task_completed = false;
  for (size_t i = 0; i < events.size(); ++i) {
    CHECK(events[i]["seq"] == static_cast<int64_t>(i + 1));
    CHECK(events[i]["hash"].get<std::string>().size() == 64);
    if (i > 0) CHECK(events[i]["prev_hash"] == events[i - 1]["hash"]);
    if (events[i]["action"] == "task.completed") {
      task_completed = true;
      CHECK(events[i]["actor"] == "ann");
      CHECK(events[i]["step"] == "review");
    }
  }
  CHECK(task_completed);
  CHECK(events[0]["action"] == "case.started");
  CHECK(events[0]["actor"] == "ann");
  CHECK(box.Wf({"history", id}).out.find("task.completed") != std::string::npos);

  Run verified = box.Wf({"audit", "verify"});
  REQUIRE(verified.code == 0);
  CHECK(Trimmed(verified.out) ==
        "history verifies: 1 cases, " + std::to_string(events.size()) + " events");
  CHECK(box.Wf({"audit", "verify", id}).code == 0);

  Run jsonl = box.Wf({"audit", "export"});
  REQUIRE(jsonl.code == 0);
  CHECK(CountLines(jsonl.out) == events.size());
  json first = json::parse(jsonl.out.substr(0, jsonl.out.find('\n')));
  CHECK(first["case"] == id);
  CHECK(first["hash"] == events[0]["hash"]);
  Run csv = box.Wf({"audit", "export", "--format", "csv"});
  REQUIRE(csv.code == 0);
  CHECK(CountLines(csv.out) == events.size() + 1);
  CHECK(csv.out.rfind("case,seq,at,actor,action,step,details,prev_hash,hash\n", 0) == 0);
  Run later = box.Wf({"audit", "export", "--since", "2999-01-01"});
  REQUIRE(later.code == 0);
  CHECK(later.out.empty());

  json cases = box.Wf({"cases", "--json"}).Json();
  REQUIRE(cases.size() == 1);
  CHECK(cases[0]["id"] == id);
  CHECK(cases[0]["case"] == id);
  CHECK(cases[0]["status"] == "completed");
}

WF_CLI_TEST_CASE("commands without what they need are usage errors", "[cli][exit]", box) {
  // Only SQLite needs to be told who acts; on PostgreSQL the login does (identity_test.cpp).
  if (!box.postgres()) {
    Run inbox = box.Wf({"inbox"});
    CHECK(inbox.code == 2);
    CHECK(inbox.err.find("--as") != std::string::npos);
    CHECK(inbox.err.find("WF_ACTOR") != std::string::npos);
    CHECK(box.Wf({"cases", "--mine"}).code == 2);
  }
  CHECK(box.Wf({"frobnicate"}).code == 2);
  CHECK(box.Wf({"cancel", "some-case"}).code == 2);  // --reason is required
  CHECK(box.Wf({"start", "cli-permit"}).code == 2);  // neither --data nor --batch
  CHECK(box.Wf({"claim", "not-a-number", "--as", "ann"}).code == 2);
  Run bad_db = box.Wf({"cases"}, "", {{"WF_DB", "mysql://nowhere"}});
  CHECK(bad_db.code == 2);
  CHECK(bad_db.err.find("--db") != std::string::npos);
}

WF_CLI_TEST_CASE("a broken definition is reported where it is wrong and nothing is deployed",
                 "[cli][exit]", box) {
  Run deployed = box.Wf({"deploy", Fixture("permit.yaml"), Fixture("bad.yaml")});
  CHECK(deployed.code == 3);
  CHECK(deployed.err.find("bad.yaml:1:") != std::string::npos);
  CHECK(deployed.err.find(": error: ") != std::string::npos);
  CHECK(deployed.err.find("nowhere") != std::string::npos);
  CHECK(deployed.out.find("deployed") == std::string::npos);
  CHECK(box.Wf({"procedures", "--json"}).Json().empty());
}

WF_CLI_TEST_CASE("case data that fails the input schema names every path", "[cli][exit]", box) {
  REQUIRE(box.Wf({"deploy", Fixture("permit.yaml")}).code == 0);
  Run started = box.Wf({"start", "cli-permit", "--data", Fixture("bad_applicant.json")});
  CHECK(started.code == 3);
  CHECK(started.err.find("$.applicant.id") != std::string::npos);
  CHECK(started.err.find("$.applicant.name") != std::string::npos);
  Run not_json = box.Wf({"start", "cli-permit", "--data", "-"}, "{not json");
  CHECK(not_json.code == 3);
  CHECK(not_json.err.find("not valid JSON") != std::string::npos);
  CHECK(box.Wf({"start", "cli-permit", "--data", "missing.json"}).code == 4);
  CHECK(box.Wf({"cases", "--json"}).Json().empty());
}

namespace {
// `text` without its line breaks, one line of a backlog.
std::string OneLine(std::string text) {
  text.erase(std::remove(text.begin(), text.end(), '\n'), text.end());
  return text;
}
}  // namespace

WF_CLI_TEST_CASE("JSON over the bounds is exit 3 at start, in a backlog, at complete and at signal",
                 "[cli][exit][limits]", box) {
  const std::string deep = std::string(1000000, '[') + std::string(1000000, ']');
  std::string id = DeployAndStartPermit(box);
  Run started = box.Wf({"start", "cli-permit", "--data", "-"}, deep);
  CHECK(started.code == 3);
  CHECK(started.err.find("stdin: JSON nested deeper than 32 levels at $[0]") != std::string::npos);
  Run huge =
      box.Wf({"start", "cli-permit", "--data", "-"},
             R"({"applicant": {"id": "1235", "name": ")" + std::string(300000, 'x') + "\"}}");
  CHECK(huge.code == 3);
  CHECK(huge.err.find("JSON with a string longer than 262144 bytes at $.applicant.name") !=
        std::string::npos);
  Run backlog = box.Wf({"start", "cli-permit", "--batch", "-"},
                       OneLine(ReadFile(Fixture("applicant-2.json"))) + "\n" + deep + "\n");
  CHECK(backlog.code == 3);
  CHECK(backlog.out.find("started 1 cases") != std::string::npos);
  CHECK(backlog.err.find("line 2: JSON nested deeper than 32 levels") != std::string::npos);
  int64_t task = TaskOf(box, id);
  Run complete = box.Wf({"complete", std::to_string(task), "--data", "-"},
                        "{\"approved\": " + deep + "}", {{"WF_ACTOR", "ann"}});
  CHECK(complete.code == 3);
  CHECK(complete.err.find("JSON nested deeper than 32 levels") != std::string::npos);
  Run signal = box.Wf({"signal", id, "documents", "--data", "-"}, deep);
  CHECK(signal.code == 3);
  CHECK(signal.err.find("JSON nested deeper than 32 levels") != std::string::npos);
}

WF_CLI_TEST_CASE("a procedure that starts itself is not deployed and the cycle is named",
                 "[cli][exit][limits]", box) {
  Run deployed = box.Wf({"deploy", Fixture("calls_itself.yaml")});
  CHECK(deployed.code == 3);
  CHECK(deployed.err.find("cli-calls-itself → cli-calls-itself") != std::string::npos);
  CHECK(box.Wf({"procedures", "--json"}).Json().empty());
}

WF_CLI_TEST_CASE("unknown procedures, cases, tasks and incidents are not found", "[cli][exit]",
                 box) {
  Run start = box.Wf({"start", "no-such-procedure", "--data", Fixture("applicant.json")});
  CHECK(start.code == 4);
  CHECK(start.err.find("no-such-procedure") != std::string::npos);
  CHECK(start.err.find("wf deploy") != std::string::npos);
  Run show = box.Wf({"show", "20260101-nope"});
  CHECK(show.code == 4);
  CHECK(show.err.find("20260101-nope") != std::string::npos);
  CHECK(box.Wf({"history", "20260101-nope"}).code == 4);
  CHECK(box.Wf({"audit", "verify", "20260101-nope"}).code == 4);
  CHECK(box.Wf({"signal", "20260101-nope", "documents"}).code == 4);
  CHECK(box.Wf({"cancel", "20260101-nope", "--reason", "test"}).code == 4);
  CHECK(box.Wf({"claim", "987654", "--as", "ann"}).code == 4);
  CHECK(box.Wf({"complete", "987654", "--as", "ann", "--set", "approved=true"}).code == 4);
  CHECK(box.Wf({"retry", "987654"}).code == 4);
}

WF_CLI_TEST_CASE("a second open case with the same dedupe key names the first", "[cli][exit]",
                 box) {
  std::string first = DeployAndStartPermit(box);
  Run second = box.Wf({"start", "cli-permit", "--data", Fixture("applicant.json")});
  CHECK(second.code == 5);
  CHECK(second.err.find(first) != std::string::npos);
  CHECK(box.Wf({"cases", "--json"}).Json().size() == 1);
}

WF_CLI_TEST_CASE("a clerk without the task's role is not permitted", "[cli][exit]", box) {
  auto [id, task] = PermitAtReview(box);
  std::string task_id = std::to_string(task);
  Run claim = box.Wf({"claim", task_id, "--as", "carl"});
  CHECK(claim.code == 6);
  CHECK(claim.err.find("clerk") != std::string::npos);
  CHECK(box.Wf({"complete", task_id, "--as", "carl", "--set", "approved=true"}).code == 6);
  CHECK(box.Wf({"complete", task_id, "--as", "mallory", "--set", "approved=true"}).code == 6);
  CHECK(box.Wf({"inbox", "--as", "ann", "--role", "archivist"}).code == 6);
  json shown = box.Wf({"show", id, "--json"}).Json();
  CHECK(shown["status"] == "open");
}

WF_CLI_TEST_CASE("two clerks completing one task: the second gets a conflict", "[cli][exit]", box) {
  auto [id, task] = PermitAtReview(box);
  std::string task_id = std::to_string(task);
  REQUIRE(box.Wf({"claim", task_id, "--as", "ann"}).code == 0);
  Run stolen = box.Wf({"claim", task_id, "--as", "bob"});
  CHECK(stolen.code == 5);
  CHECK(stolen.err.find("claimed by ann") != std::string::npos);
  CHECK(box.Wf({"release", task_id, "--as", "bob"}).code == 5);
  REQUIRE(box.Wf({"release", task_id, "--as", "ann"}).code == 0);

  Run first = box.Wf({"complete", task_id, "--as", "ann", "--set", "approved=false", "--set",
                      "note=missing stamp"});
  REQUIRE(first.code == 0);
  Run second = box.Wf({"complete", task_id, "--as", "bob", "--set", "approved=true"});
  CHECK(second.code == 5);
  CHECK(second.err.find("already completed by ann") != std::string::npos);

  json shown = box.Wf({"show", id, "--json"}).Json();
  CHECK(shown["status"] == "refused");
  CHECK(shown["reason"] == "missing stamp");
  CHECK(shown["data"]["review"]["approved"] == false);
  int completions = 0;
  for (const auto& event : box.Wf({"history", id, "--json"}).Json()) {
    if (event["action"] == "task.completed") ++completions;
  }
  CHECK(completions == 1);
}

WF_CLI_TEST_CASE("form values are typed by the task's form", "[cli][exit][complete]", box) {
  auto [id, task] = PermitAtReview(box);
  std::string task_id = std::to_string(task);

  Run unknown = box.Wf({"complete", task_id, "--as", "ann", "--set", "aproved=true"});
  CHECK(unknown.code == 3);
  CHECK(unknown.err.find("'aproved'") != std::string::npos);
  CHECK(unknown.err.find("approved (boolean)") != std::string::npos);
  CHECK(unknown.err.find("visit_on (date)") != std::string::npos);
  CHECK(box.Wf({"complete", task_id, "--as", "ann", "--set", "approved=maybe"}).code == 3);
  CHECK(box.Wf({"complete", task_id, "--as", "ann", "--set", "approved=true", "--set", "fee=lots"})
            .code == 3);
  CHECK(box.Wf({"complete", task_id, "--as", "ann", "--set", "approved=true", "--set",
                "visit_on=next week"})
            .code == 3);
  // The form requires `approved`: the runtime's form check refuses its absence.
  CHECK(box.Wf({"complete", task_id, "--as", "ann", "--set", "note=hm"}).code == 3);
  CHECK(box.Wf({"complete", task_id, "--as", "ann", "--set", "approved"}).code == 2);
  CHECK(box.Wf({"complete", task_id, "--as", "ann"}).code == 2);
  json still = box.Wf({"show", id, "--json"}).Json();
  CHECK(still["status"] == "open");

  // --data takes the values as JSON, from stdin here.
  Run completed = box.Wf({"complete", task_id, "--as", "bob", "--data", "-", "--json"},
                         R"({"approved": true, "fee": 7})");
  REQUIRE(completed.code == 0);
  json answer = completed.Json();
  CHECK(answer["id"] == task);
  CHECK(answer["status"] == "completed");
  CHECK(answer["case"] == id);
  CHECK(answer["case_status"] == "open");
  CHECK(answer["case_steps"] == json::array({"register"}));
}

WF_CLI_TEST_CASE("a tampered history does not verify", "[cli][exit][audit]", box) {
  auto [id, task] = PermitAtReview(box);
  REQUIRE(box.Wf({"audit", "verify"}).code == 0);
  // An insider rewrites who did something, getting past the append-only triggers first.
  std::string disable = box.postgres() ? "ALTER TABLE history DISABLE TRIGGER USER; "
                                       : "DROP TRIGGER history_no_update; ";
  REQUIRE(box.Sql(disable + "UPDATE history SET actor = 'mallory' WHERE case_id = '" + id +
                  "' AND seq = 2;"));
  Run all = box.Wf({"audit", "verify"});
  CHECK(all.code == 7);
  CHECK(all.err.find(id) != std::string::npos);
  CHECK(all.err.find("seq 2") != std::string::npos);
  Run one = box.Wf({"audit", "verify", id, "--json"});
  CHECK(one.code == 7);
  CHECK(one.Json()["ok"] == false);
  (void)task;
}

WF_CLI_TEST_CASE("a backlog starts line by line and refused lines are named", "[cli][start]", box) {
  REQUIRE(box.Wf({"deploy", Fixture("permit.yaml")}).code == 0);
  Run backlog =
      box.Wf({"start", "cli-permit", "--batch", Fixture("backlog.jsonl"), "--batch-size", "2"});
  CHECK(backlog.code == 5);  // only a duplicate was refused
  CHECK(backlog.out.find("started 3 cases") != std::string::npos);
  CHECK(backlog.err.find("line 4: ") != std::string::npos);
  CHECK(backlog.err.find("already open") != std::string::npos);
  CHECK(box.Wf({"cases", "--json"}).Json().size() == 3);

  Run bad = box.Wf({"start", "cli-permit", "--batch", "-", "--json"},
                   ReadFile(Fixture("backlog_bad.jsonl")));
  CHECK(bad.code == 3);
  CHECK(bad.err.find("line 2: not valid JSON") != std::string::npos);
  CHECK(bad.err.find("line 3: ") != std::string::npos);
  CHECK(bad.err.find("$.applicant.id") != std::string::npos);
  json answer = bad.Json();
  CHECK(answer["started"] == 2);
  CHECK(answer["ids"].size() == 2);
  CHECK(answer["errors"].size() == 2);
  CHECK(box.Wf({"cases", "--json", "--limit", "0"}).Json().size() == 5);
  CHECK(box.Wf({"cases", "--json", "--limit", "2"}).Json().size() == 2);
}

WF_CLI_TEST_CASE("a signal moves a waiting case on and the paused clock shows", "[cli][signal]",
                 box) {
  REQUIRE(box.Wf({"deploy", Fixture("wait.yaml")}).code == 0);
  Run started = box.Wf({"start", "cli-wait", "--data", "-", "--json"}, "{}");
  REQUIRE(started.code == 0);
  std::string id = started.Json()["id"];

  json waiting = box.Wf({"show", id, "--json"}).Json();
  REQUIRE(waiting["steps"].size() == 1);
  CHECK(waiting["steps"][0]["waiting"] == "signal");
  CHECK(waiting["deadline"]["paused"] == true);
  Run human = box.Wf({"show", id});
  CHECK(human.out.find("wf signal " + id + " documents") != std::string::npos);
  CHECK(human.out.find("paused") != std::string::npos);

  Run wrong = box.Wf({"signal", id, "payment"});
  CHECK(wrong.code == 5);
  Run signal = box.Wf({"signal", id, "documents", "--data", "-"}, R"({"pages": 3})");
  REQUIRE(signal.code == 0);
  CHECK(signal.out.find("is completed") != std::string::npos);
  json done = box.Wf({"show", id, "--json"}).Json();
  CHECK(done["status"] == "completed");
  CHECK(done["data"]["documents"]["pages"] == 3);
  CHECK(done["deadline"]["paused"] == false);

  // A finished case cannot be cancelled; an open one can, with a reason.
  CHECK(box.Wf({"cancel", id, "--reason", "too late"}).code == 5);
  std::string other = Trimmed(box.Wf({"start", "cli-wait", "--data", "-"}, "{}").out);
  REQUIRE_FALSE(other.empty());
  CHECK(box.Wf({"cancel", other, "--reason", " "}).code == 2);
  Run cancelled = box.Wf({"cancel", other, "--reason", "applicant withdrew", "--as", "ann"});
  REQUIRE(cancelled.code == 0);
  json shown = box.Wf({"show", other, "--json"}).Json();
  CHECK(shown["status"] == "cancelled");
  CHECK(shown["reason"] == "applicant withdrew");
}

WF_CLI_TEST_CASE("a department the program cannot call becomes an incident to retry",
                 "[cli][incident]", box) {
  REQUIRE(box.Wf({"deploy", Fixture("mail.yaml")}).code == 0);
  std::string id = Trimmed(box.Wf({"start", "cli-mail", "--data", "-"}, "{}").out);
  REQUIRE_FALSE(id.empty());
  Run engine = box.Wf({"engine", "--until-idle", "--json"});
  REQUIRE(engine.code == 0);
  CHECK(engine.Json()["committed"].get<int64_t>() >= 1);
  CHECK(engine.err.find("carrier-pigeon") != std::string::npos);  // the warning, on stderr

  json incidents = box.Wf({"incidents", "--json"}).Json();
  REQUIRE(incidents.size() == 1);
  CHECK(incidents[0]["case"] == id);
  CHECK(incidents[0]["step"] == "send");
  CHECK(incidents[0]["status"] == "open");
  CHECK(incidents[0]["message"].get<std::string>().find("adapter kind 'carrier-pigeon'") !=
        std::string::npos);
  int64_t incident = incidents[0]["id"].get<int64_t>();
  json shown = box.Wf({"show", id, "--json"}).Json();
  CHECK(shown["incidents"].size() == 1);
  CHECK(shown["steps"][0]["waiting"] == "incident");
  CHECK(box.Wf({"show", id}).out.find("wf retry " + std::to_string(incident)) != std::string::npos);

  Run retried = box.Wf({"retry", std::to_string(incident), "--as", "ann"});
  REQUIRE(retried.code == 0);
  CHECK(box.Wf({"incidents", "--json"}).Json().empty());
  CHECK(box.Wf({"retry", std::to_string(incident)}).code == 5);  // already resolved
  RunEngine(box);
  json again = box.Wf({"incidents", "--json"}).Json();
  REQUIRE(again.size() == 1);
  CHECK(again[0]["id"] != incident);
}

WF_CLI_TEST_CASE("global options may follow the subcommand", "[cli][options]", box) {
  std::map<std::string, std::string> no_env = {{"WF_DB", ""}, {"WF_CONFIG", ""}};
  Run deployed = box.Wf({"deploy", Fixture("permit.yaml"), "--db", box.db(), "--config",
                         Fixture("config.yaml"), "--json"},
                        "", no_env);
  REQUIRE(deployed.code == 0);
  json answer = deployed.Json();
  REQUIRE(answer.size() == 1);
  CHECK(answer[0]["procedure"] == "cli-permit");
  CHECK(answer[0]["created"] == true);

  Run started = box.Wf({"start", "cli-permit", "--data", Fixture("applicant.json"), "--json",
                        "--db", box.db(), "--as", "bob"},
                       "", no_env);
  REQUIRE(started.code == 0);
  std::string id = started.Json()["id"];
  Run show = box.Wf({"show", id, "--db", box.db(), "--json"}, "", no_env);
  REQUIRE(show.code == 0);
  CHECK(show.Json()["id"] == id);
  Run inbox = box.Wf(
      {"inbox", "--json", "--as", "bob", "--db", box.db(), "--config", Fixture("config.yaml")}, "",
      no_env);
  REQUIRE(inbox.code == 0);
  REQUIRE(inbox.Json().size() == 1);
  CHECK(inbox.Json()[0]["case"] == id);

  // WF_ACTOR is the same as --as.
  Run by_env = box.Wf({"inbox", "--json"}, "", {{"WF_ACTOR", "bob"}});
  REQUIRE(by_env.code == 0);
  CHECK(by_env.Json().size() == 1);
}

WF_CLI_TEST_CASE("cases filter by status, procedure, overdue and the actor's own", "[cli][cases]",
                 box) {
  auto [id, task] = PermitAtReview(box);
  REQUIRE(box.Wf({"deploy", Fixture("wait.yaml")}).code == 0);
  std::string waiting =
      Trimmed(box.Wf({"start", "cli-wait", "--data", "-", "--as", "carl"}, "{}").out);
  REQUIRE_FALSE(waiting.empty());

  json all = box.Wf({"cases", "--json"}).Json();
  REQUIRE(all.size() == 2);
  for (const auto& item : all) {
    for (const char* key : {"id", "case", "step", "role", "status", "procedure", "version",
                            "agency", "started_at", "deadline"}) {
      CHECK(item.contains(key));
    }
  }
  CHECK(all[0]["id"] == waiting);  // newest first
  CHECK(all[0]["step"] == "documents");
  CHECK(all[1]["step"] == "review");
  CHECK(all[0]["role"] == "");
  CHECK(all[1]["role"] == "clerk");

  json permits = box.Wf({"cases", "--procedure", "cli-permit", "--json"}).Json();
  REQUIRE(permits.size() == 1);
  CHECK(permits[0]["id"] == id);
  CHECK(box.Wf({"cases", "--status", "completed", "--json"}).Json().empty());
  CHECK(box.Wf({"cases", "--overdue", "--json"}).Json().empty());
  CHECK(box.Wf({"cases", "--agency", "elsewhere", "--json"}).Json().empty());

  json anns = box.Wf({"cases", "--mine", "--as", "ann", "--json"}).Json();
  REQUIRE(anns.size() == 1);  // the permit waits for a clerk
  CHECK(anns[0]["id"] == id);
  json carls = box.Wf({"cases", "--mine", "--as", "carl", "--json"}).Json();
  REQUIRE(carls.size() == 1);  // carl started the waiting case
  CHECK(carls[0]["id"] == waiting);

  Run table = box.Wf({"cases"});
  REQUIRE(table.code == 0);
  CHECK(table.out.rfind("CASE", 0) == 0);
  CHECK(table.out.find(id) != std::string::npos);
  CHECK(table.out.find("working day") != std::string::npos);
  (void)task;
}

WF_CLI_TEST_CASE("migrate reports the schema version", "[cli][migrate]", box) {
  Run migrated = box.Wf({"migrate", "--json"});
  REQUIRE(migrated.code == 0);
  CHECK(migrated.Json()["schema_version"].get<int>() >= 1);
  CHECK(box.Wf({"migrate"}).out.find("is at version") != std::string::npos);
}

WF_CLI_TEST_CASE("an auditor's report counts cases, times, refusals and overdue cases",
                 "[cli][report]", box) {
  auto [id, task] = PermitAtReview(box);
  // One duplicate refused at the counter, one in a backlog (line 4 repeats line 1).
  CHECK(box.Wf({"start", "cli-permit", "--data", Fixture("applicant.json")}).code == 5);
  Run backlog = box.Wf({"start", "cli-permit", "--batch", Fixture("backlog.jsonl")});
  REQUIRE(backlog.code != 0);  // a refused line makes the batch report an error
  REQUIRE(
      box.Wf({"complete", std::to_string(task), "--as", "ann", "--set", "approved=true"}).code ==
      0);
  RunEngine(box);

  Run report = box.Wf({"report", "--json"});
  REQUIRE(report.code == 0);
  json figures = report.Json();
  REQUIRE(figures["procedures"].size() == 1);
  json p = figures["procedures"][0];
  CHECK(p["name"] == "cli-permit");
  CHECK(p["agency"] == "town-hall");
  CHECK(p["limit"] == "3 working days");
  CHECK(p["limit_days"] == 3.0);
  CHECK(p["cases"] == 4);
  CHECK(p["open"] == 3);
  CHECK(p["finished"] == 1);
  CHECK(p["outcomes"]["completed"] == 1);
  CHECK(p["refused_duplicates"] == 2);
  CHECK(figures["refused_duplicates"] == 2);
  CHECK(p["processing_days"]["count"] == 1);
  CHECK(p["processing_days"]["median"].get<double>() >= 0.0);
  CHECK(p["processing_days"]["median"].get<double>() < 3.0);
  CHECK(p["on_time"] == 1);
  CHECK(p["on_time_rate"] == 1.0);
  CHECK(p["overdue"] == 0);
  bool review_seen = false;
  for (const auto& step : p["steps"]) {
    if (step["id"] != "review") continue;
    review_seen = true;
    CHECK(step["visits"] == 1);
    CHECK(step["waiting_now"] == 3);
    CHECK(step["who"] == "clerk @ town-hall");
  }
  CHECK(review_seen);
  REQUIRE(figures["agencies"].size() == 1);
  CHECK(figures["agencies"][0]["cases"] == 4);

  // Backdate one open case's deadline behind wf's back: it becomes overdue in the report.
  std::string open_case = box.Wf({"cases", "--status", "open", "--limit", "1", "--json"})
                              .Json()[0]["id"]
                              .get<std::string>();
  REQUIRE(box.Sql("UPDATE cases SET deadline_at = 1000000 WHERE id = '" + open_case + "'"));
  json overdue = box.Wf({"report", "--json"}).Json()["procedures"][0];
  CHECK(overdue["overdue"] == 1);
  REQUIRE(overdue["overdue_cases"].size() == 1);
  CHECK(overdue["overdue_cases"][0]["id"] == open_case);
  CHECK(overdue["overdue_cases"][0]["steps"] == json::array({"review"}));

  Run table = box.Wf({"report"});
  REQUIRE(table.code == 0);
  CHECK(table.out.find("cli-permit") != std::string::npos);
  CHECK(table.out.find(open_case) != std::string::npos);

  Run html = box.Wf({"report", "--html", "report.html"});
  REQUIRE(html.code == 0);
  std::string page = ReadFile(box.dir() / "report.html");
  CHECK(page.rfind("<!DOCTYPE html>", 0) == 0);
  CHECK(page.find("<svg") != std::string::npos);
  CHECK(page.find("id=\"procedure-cli-permit\"") != std::string::npos);
  // Nothing fetched from the network (the SVG namespace is a name, not a fetch)...
  for (const char* fetch : {"src=", "href=\"http", "url(http", "@import", "@font-face"}) {
    CHECK(page.find(fetch) == std::string::npos);
  }
  CHECK(page.find("<script") == std::string::npos);  // ... and nothing run
  CHECK_FALSE(fs::exists(box.dir() / "report.html.tmp"));

  Run nowhere = box.Wf({"report", "--html", "no/such/folder/report.html"});
  CHECK(nowhere.code == 4);
  CHECK(nowhere.err.find("no/such/folder/report.html") != std::string::npos);
}

// --- auditors: timeline, anchors, append-only roles, exports, archives (issue 5) -------------

namespace {

// SHA-256 hex, computed here independently of wf.
std::string Sha256(const std::string& bytes) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  REQUIRE(EVP_Digest(bytes.data(), bytes.size(), digest, &size, EVP_sha256(), nullptr) == 1);
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < size; ++i) {
    unsigned char b = digest[i];
    out.push_back(kDigits[b >> 4]);
    out.push_back(kDigits[b & 15]);
  }
  return out;
}

// The event's hash as history.hpp specifies it: SHA-256(prev_hash || compact JSON with sorted
// keys of action, actor, at, case, details, prev_hash, seq, step).
std::string EventHash(const json& e) {
  json canonical = {{"action", e["action"]},   {"actor", e["actor"]},
                    {"at", e["at"]},           {"case", e["case"]},
                    {"details", e["details"]}, {"prev_hash", e["prev_hash"]},
                    {"seq", e["seq"]},         {"step", e["step"]}};
  return Sha256(e["prev_hash"].get<std::string>() + canonical.dump());
}

std::string SqlText(const std::string& text) {
  std::string out = "'";
  for (char c : text) out += c == '\'' ? std::string("''") : std::string(1, c);
  return out + "'";
}

// A permit case carried to its end: approved by ann, recorded by the engine.
std::string CompletedPermit(Sandbox& box, const std::string& data = "applicant.json") {
  std::string id = DeployAndStartPermit(box, data);
  int64_t task = TaskOf(box, id);
  REQUIRE(box.Wf({"complete", std::to_string(task), "--as", "ann", "--set", "approved=true",
                  "--set", "fee=15"})
              .code == 0);
  RunEngine(box);
  REQUIRE(box.Wf({"show", id, "--json"}).Json()["status"] == "completed");
  return id;
}

// Every event of `id`, from `wf history --json`.
json EventsOf(Sandbox& box, const std::string& id) {
  Run history = box.Wf({"history", id, "--json"});
  REQUIRE(history.code == 0);
  return history.Json();
}

}  // namespace

WF_CLI_TEST_CASE("the history reads as a timeline with agencies, decisions and time held",
                 "[cli][audit][history]", box) {
  std::string id = CompletedPermit(box);
  Run text = box.Wf({"history", id});
  REQUIRE(text.code == 0);
  CHECK(text.out.find("AGENCY") != std::string::npos);
  CHECK(text.out.find("ann (town-hall)") != std::string::npos);
  CHECK(text.out.find("decision true") != std::string::npos);
  CHECK(text.out.find("approved=true") != std::string::npos);
  CHECK(text.out.find("time held, in working days") != std::string::npos);
  CHECK(text.out.find("within the statutory limit") != std::string::npos);

  json events = EventsOf(box, id);
  bool completed = false;
  for (const json& e : events) {
    if (e["action"] == "task.completed") {
      completed = true;
      CHECK(e["agency"] == "town-hall");
      CHECK(e["decision"].get<std::string>().find("true") != std::string::npos);
      CHECK(e["changed"].get<std::string>().find("fee=15") != std::string::npos);
    }
  }
  CHECK(completed);

  Run held = box.Wf({"history", id, "--by-agency", "--json"});
  REQUIRE(held.code == 0);
  json holders = held.Json();
  std::map<std::string, json> by_holder;
  for (const json& h : holders) by_holder[h["holder"].get<std::string>()] = h;
  REQUIRE(by_holder.count("town-hall") == 1);
  CHECK(by_holder["town-hall"]["steps"] == 1);
  CHECK(by_holder["town-hall"]["limit_working_days"] == 2.0);
  CHECK(by_holder["town-hall"]["over_limit"] == false);
  CHECK(by_holder["town-hall"]["still_held"] == false);
  REQUIRE(by_holder.count("department registry") == 1);
  REQUIRE(by_holder.count("case") == 1);
  CHECK(by_holder["case"]["within_limit"] == true);
  CHECK(by_holder["case"]["limit"] == "3 working days");

  CHECK(box.Wf({"history", "20260101-nosuchcase"}).code == 4);
}

WF_CLI_TEST_CASE(
    "a consistent rewrite by a superuser verifies as a chain and is caught by the anchor",
    "[cli][audit][anchor]", box) {
  std::string id = CompletedPermit(box);
  std::string other = CompletedPermit(box, "applicant-2.json");
  REQUIRE(box.Wf({"audit", "keygen"}).code == 0);
  CHECK((fs::status(box.dir() / "wf-audit.key").permissions() & fs::perms::all) ==
        (fs::perms::owner_read | fs::perms::owner_write));
  CHECK(box.Wf({"audit", "keygen"}).code == 5);  // never overwrites a key
  Run anchored = box.Wf({"audit", "anchor", "--key", "wf-audit.key", "--out", "a1.jsonl"});
  REQUIRE(anchored.code == 0);
  CHECK(anchored.out.find("anchored 2 chains") != std::string::npos);
  CHECK(box.Wf({"audit", "anchor", "--key", "wf-audit.key", "--out", "a1.jsonl"}).code == 5);
  Run fine = box.Wf({"audit", "verify", "--anchor", "a1.jsonl", "--pubkey", "wf-audit.pub"});
  REQUIRE(fine.code == 0);
  CHECK(fine.out.find("2 chains have only grown") != std::string::npos);
  CHECK(box.Wf({"audit", "verify", "--anchor", "a1.jsonl"}).code == 2);

  // The superuser rewrites who approved, then recomputes every later hash, bypassing triggers.
  json events = EventsOf(box, id);
  const int64_t head = events.back()["seq"].get<int64_t>();
  size_t changed = 0;
  for (size_t i = 0; i < events.size(); ++i) {
    if (events[i]["action"] == "task.completed") changed = i;
  }
  REQUIRE(changed > 0);
  std::string sql = box.postgres() ? "ALTER TABLE history DISABLE TRIGGER ALL; "
                                   : "DROP TRIGGER history_no_update; ";
  events[changed]["actor"] = "mallory";
  for (size_t i = changed; i < events.size(); ++i) {
    events[i]["prev_hash"] = events[i - 1]["hash"];
    events[i]["hash"] = EventHash(events[i]);
    sql += "UPDATE history SET actor = " + SqlText(events[i]["actor"].get<std::string>()) +
           ", prev_hash = " + SqlText(events[i]["prev_hash"].get<std::string>()) +
           ", hash = " + SqlText(events[i]["hash"].get<std::string>()) +
           " WHERE case_id = " + SqlText(id) +
           " AND seq = " + std::to_string(events[i]["seq"].get<int64_t>()) + "; ";
  }
  REQUIRE(box.Sql(sql));
  // The chain alone cannot tell: it was rewritten consistently.
  REQUIRE(box.Wf({"audit", "verify"}).code == 0);
  Run caught = box.Wf({"audit", "verify", "--anchor", "a1.jsonl", "--pubkey", "wf-audit.pub"});
  CHECK(caught.code == 7);
  CHECK(caught.err.find(id) != std::string::npos);
  CHECK(caught.err.find("seq " + std::to_string(head)) != std::string::npos);
  CHECK(caught.err.find("anchor") != std::string::npos);
  Run json_caught = box.Wf(
      {"audit", "verify", other, "--anchor", "a1.jsonl", "--pubkey", "wf-audit.pub", "--json"});
  CHECK(json_caught.code == 0);  // the other case was not touched

  // An altered anchor, or one checked with another key, does not verify either.
  std::string anchor = ReadFile(box.dir() / "a1.jsonl");
  size_t at = anchor.find(other);
  REQUIRE(at != std::string::npos);
  std::string forged = anchor;
  size_t hash_at = forged.find("\"hash\":\"", at) + 8;
  forged[hash_at] = forged[hash_at] == '0' ? '1' : '0';
  std::ofstream(box.dir() / "forged.jsonl", std::ios::binary) << forged;
  CHECK(box.Wf({"audit", "verify", "--anchor", "forged.jsonl", "--pubkey", "wf-audit.pub"}).code ==
        7);
  REQUIRE(box.Wf({"audit", "keygen", "--key", "k2", "--pubkey", "k2.pub"}).code == 0);
  Run other_key = box.Wf({"audit", "verify", "--anchor", "a1.jsonl", "--pubkey", "k2.pub"});
  CHECK(other_key.code == 7);
  CHECK(other_key.err.find("signature does not verify") != std::string::npos);
  CHECK(box.Wf({"audit", "verify", "--anchor", "a1.jsonl", "--pubkey", "applicant.json"}).code !=
        0);
}

WF_CLI_TEST_CASE("history refuses UPDATE, DELETE and TRUNCATE, even for its owner",
                 "[cli][audit][pg]", box) {
  std::string id = CompletedPermit(box);
  const std::string where = " WHERE case_id = " + SqlText(id);
  CHECK_FALSE(box.Sql("UPDATE history SET actor = 'mallory'" + where));
  CHECK_FALSE(box.Sql("DELETE FROM history" + where));
  if (box.postgres()) {
    CHECK_FALSE(box.Sql("DELETE FROM cases WHERE id = " + SqlText(id)));
    CHECK_FALSE(box.Sql("TRUNCATE history CASCADE"));
  }
  REQUIRE(box.Wf({"audit", "verify", id}).code == 0);
  if (!box.postgres()) return;

  // A login in the engine role appends and reads history and updates cases, but may not change
  // history: the grants refuse before the trigger is reached.
  std::string user = "wf_test_engine_" + wf::testing::RandomName();
  REQUIRE(box.Sql("CREATE ROLE " + user + " LOGIN IN ROLE wf_engine"));
  std::string url = box.db();
  url.replace(url.find("://") + 3, url.find('@') - url.find("://") - 3, user);
  auto as_engine = [&](const std::string& sql) {
    return System("psql -X -q -v ON_ERROR_STOP=1 " + ShellQuote(url) + " -c " + ShellQuote(sql) +
                  " >/dev/null 2>&1") == 0;
  };
  CHECK(as_engine("SELECT count(*) FROM history"));
  CHECK(as_engine("UPDATE cases SET updated_at = updated_at" + std::string(" WHERE id = ") +
                  SqlText(id)));
  CHECK_FALSE(as_engine("UPDATE history SET actor = 'mallory'" + where));
  CHECK_FALSE(as_engine("DELETE FROM history" + where));
  CHECK_FALSE(as_engine("TRUNCATE history CASCADE"));
  CHECK_FALSE(as_engine("DELETE FROM archived_chains"));
  CHECK_FALSE(as_engine("ALTER TABLE history DISABLE TRIGGER ALL"));
  REQUIRE(box.Wf({"audit", "verify", id}).code == 0);
  box.Sql("DROP ROLE " + user);
}

WF_CLI_TEST_CASE("an export streams events with hashes and verifies from the file alone",
                 "[cli][audit][export]", box) {
  std::string id = CompletedPermit(box);
  CompletedPermit(box, "applicant-2.json");
  json events = EventsOf(box, id);
  Run jsonl = box.Wf({"audit", "export"});
  REQUIRE(jsonl.code == 0);
  std::ofstream(box.dir() / "all.jsonl", std::ios::binary) << jsonl.out;
  Run ok = box.Wf({"audit", "verify", "--file", "all.jsonl", "--json"});
  REQUIRE(ok.code == 0);
  CHECK(ok.Json()["cases"] == 2);
  CHECK(ok.Json()["events"] == static_cast<int64_t>(CountLines(jsonl.out)));
  // The hashes in the export are the ones this test recomputes from the exported fields.
  std::istringstream lines(jsonl.out);
  for (std::string line; std::getline(lines, line);) {
    json e = json::parse(line);
    CHECK(e["hash"] == EventHash(e));
  }

  Run csv = box.Wf({"audit", "export", "--format", "csv", "--case", id});
  REQUIRE(csv.code == 0);
  CHECK(CountLines(csv.out) == events.size() + 1);
  std::ofstream(box.dir() / "one.csv", std::ios::binary) << csv.out;
  Run csv_ok = box.Wf({"audit", "verify", "--file", "one.csv"});
  CHECK(csv_ok.code == 0);
  CHECK(csv_ok.out.find("1 cases, " + std::to_string(events.size()) + " events") !=
        std::string::npos);

  // One changed field in the file is named by case and seq.
  std::string tampered = jsonl.out;
  size_t at = tampered.find("\"actor\":\"ann\"");
  REQUIRE(at != std::string::npos);
  tampered.replace(at, 13, "\"actor\":\"bob\"");
  std::ofstream(box.dir() / "tampered.jsonl", std::ios::binary) << tampered;
  Run bad = box.Wf({"audit", "verify", "--file", "tampered.jsonl"});
  CHECK(bad.code == 7);
  CHECK(bad.err.find("seq ") != std::string::npos);
  std::ofstream(box.dir() / "junk.jsonl", std::ios::binary) << "{\"not\": \"an event\"}\n";
  CHECK(box.Wf({"audit", "verify", "--file", "junk.jsonl"}).code == 3);
  CHECK(box.Wf({"audit", "verify", "--file", "missing.jsonl"}).code == 4);

  // --since and --until bound the events by time; a window that starts mid-chain still verifies.
  std::string second_at = events[1]["at"].get<std::string>();
  Run window = box.Wf({"audit", "export", "--case", id, "--since", second_at});
  REQUIRE(window.code == 0);
  CHECK(CountLines(window.out) >= 1);
  CHECK(CountLines(window.out) < events.size() + 1);
  std::ofstream(box.dir() / "window.jsonl", std::ios::binary) << window.out;
  CHECK(box.Wf({"audit", "verify", "--file", "window.jsonl"}).code == 0);
  Run none = box.Wf({"audit", "export", "--until", "2000-01-01"});
  REQUIRE(none.code == 0);
  CHECK(none.out.empty());
  Run all_until = box.Wf({"audit", "export", "--until", "2999-01-01"});
  CHECK(all_until.out == jsonl.out);
  CHECK(box.Wf({"audit", "export", "--until", "soon"}).code == 2);
}

WF_CLI_TEST_CASE("an archive takes ended cases away, verifies on its own and keeps anchors valid",
                 "[cli][audit][archive]", box) {
  std::string done = CompletedPermit(box);
  auto [open_case, task] = PermitAtReview(box);
  (void)task;
  json events = EventsOf(box, done);
  REQUIRE(box.Wf({"audit", "keygen"}).code == 0);
  REQUIRE(box.Wf({"audit", "anchor", "--key", "wf-audit.key", "--out", "before.jsonl"}).code == 0);

  Run archived = box.Wf({"archive", "--before", "2999-01-01", "--out", "old.jsonl"});
  REQUIRE(archived.code == 0);
  CHECK(archived.out.find("archived 1 cases (" + std::to_string(events.size()) + " events)") !=
        std::string::npos);
  CHECK(box.Wf({"show", done}).code == 4);
  Run gone = box.Wf({"history", done});
  CHECK(gone.code == 4);
  CHECK(gone.err.find("archived to old.jsonl") != std::string::npos);
  CHECK(box.Wf({"show", open_case, "--json"}).Json()["status"] == "open");  // never archived

  Run verified = box.Wf({"audit", "verify", "--json"});
  REQUIRE(verified.code == 0);
  CHECK(verified.Json()["cases"] == 1);
  CHECK(verified.Json()["archived_chains"] == 1);
  CHECK(box.Wf({"audit", "verify", done}).code == 0);
  CHECK(box.Wf({"audit", "verify", "--anchor", "before.jsonl", "--pubkey", "wf-audit.pub"}).code ==
        0);
  Run file = box.Wf({"audit", "verify", "--archive", "old.jsonl"});
  CHECK(file.code == 0);
  CHECK(file.out.find("1 cases, " + std::to_string(events.size()) + " events") !=
        std::string::npos);
  CHECK(box.Wf({"archive", "--before", "2999-01-01", "--out", "old.jsonl"}).code == 5);
  Run again = box.Wf({"archive", "--before", "2999-01-01", "--out", "again.jsonl"});
  CHECK(again.code == 0);
  CHECK(again.out.find("nothing archived") != std::string::npos);
  CHECK_FALSE(fs::exists(box.dir() / "again.jsonl"));
  CHECK(box.Wf({"archive", "--before", "someday", "--out", "x.jsonl"}).code == 2);

  // The kept head cannot be changed, and a changed archive file is caught.
  CHECK_FALSE(box.Sql("UPDATE archived_chains SET hash = 'x'"));
  CHECK_FALSE(box.Sql("DELETE FROM archived_chains"));
  std::string archive = ReadFile(box.dir() / "old.jsonl");
  size_t at = archive.find("\"actor\":\"ann\"");
  REQUIRE(at != std::string::npos);
  archive.replace(at, 13, "\"actor\":\"bob\"");
  std::ofstream(box.dir() / "changed.jsonl", std::ios::binary) << archive;
  Run changed = box.Wf({"audit", "verify", "--archive", "changed.jsonl"});
  CHECK(changed.code == 7);
  CHECK(changed.err.find(done) != std::string::npos);
}

namespace {

// The mock agency (WF_MOCK_AGENCY_BIN) on a free loopback port, started with `flags`; stopped
// with SIGTERM (and reaped) when it goes out of scope.
class MockAgency {
 public:
  MockAgency(const fs::path& dir, std::vector<std::string> flags) {
    const fs::path port_file = dir / "mock.port";
    std::vector<std::string> args = {WF_MOCK_AGENCY_BIN, "--port",           "0",
                                     "--port-file",      port_file.string(), "--quiet"};
    args.insert(args.end(), flags.begin(), flags.end());
    std::vector<char*> argv;
    for (std::string& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    const std::string out = (dir / "mock.out").string();
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, out.c_str(),
                                     O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, out.c_str(),
                                     O_WRONLY | O_CREAT | O_APPEND, 0644);
    int spawned = posix_spawn(&pid_, args[0].c_str(), &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    REQUIRE(spawned == 0);
    // The port file is written (atomically) once the mock listens; poll for it with a deadline.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (port_ == 0) {
      std::string text = ReadFile(port_file);
      if (!text.empty()) port_ = std::stoi(text);
      if (port_ != 0) break;
      int status = 0;
      REQUIRE(waitpid(pid_, &status, WNOHANG) == 0);  // it has not died
      REQUIRE(std::chrono::steady_clock::now() < deadline);
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  ~MockAgency() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      int status = 0;
      waitpid(pid_, &status, 0);
    }
  }
  MockAgency(const MockAgency&) = delete;
  MockAgency& operator=(const MockAgency&) = delete;

  int port() const { return port_; }

 private:
  pid_t pid_ = 0;
  int port_ = 0;
};

// Entries of a JSON array by the string in `key`.
std::map<std::string, json> ByKey(const json& array, const std::string& key) {
  std::map<std::string, json> out;
  for (const json& entry : array) out[entry[key].get<std::string>()] = entry;
  return out;
}

// The `at` of the first event of `action` at `step` in `events`, as seconds since the epoch.
double EventSeconds(const json& events, const std::string& action, const std::string& step) {
  for (const json& e : events) {
    if (e["action"] == action && e["step"] == step) {
      std::string at = e["at"].get<std::string>();  // 2026-01-02T03:04:05.000123Z
      std::tm tm{};
      REQUIRE(strptime(at.c_str(), "%Y-%m-%dT%H:%M:%S", &tm) != nullptr);
      double seconds = static_cast<double>(timegm(&tm));
      return seconds + std::stod("0" + at.substr(19, at.size() - 20));
    }
  }
  FAIL("no " << action << " at " << step);
  return 0;
}

}  // namespace

WF_CLI_TEST_CASE(
    "every command gives the same status, overdue and time held for paused and 202 cases",
    "[cli][views]", box) {
  // The payment gateway accepts every call with HTTP 202 and never calls back by itself.
  MockAgency mock(box.dir(), {"--fault", "payment-gateway:accept=true"});
  // Every day is a working day, so working time is elapsed time and the checks hold any day.
  const fs::path config = box.dir() / "views-config.yaml";
  std::ofstream(config) << "departments:\n"
                        << "  payment-gateway:\n"
                        << "    adapter: http\n"
                        << "    url: http://127.0.0.1:" << mock.port() << "/payment-gateway\n"
                        << "    timeout: 30s\n"
                        << "agencies:\n"
                        << "  town-hall:\n"
                        << "    calendar: every-day\n"
                        << "    members: {ann: [clerk]}\n"
                        << "calendars:\n"
                        << "  every-day: {weekend: []}\n";
  auto wf = [&](std::vector<std::string> args, const std::string& input = "") {
    return box.Wf(std::move(args), input, {{"WF_CONFIG", config.string()}});
  };
  REQUIRE(wf({"deploy", Fixture("views.yaml")}).code == 0);
  auto start = [&] {
    Run started = wf({"start", "cli-views", "--data", "-"}, "{}");
    REQUIRE(started.code == 0);
    return Trimmed(started.out);
  };
  // late: paused after its deadline had passed; early: paused before its deadline, which has
  // passed since; paid: its department answered 202.
  const std::string late = start(), early = start(), paid = start();
  REQUIRE(box.Sql("UPDATE cases SET deadline_at = clock_paused_at - 86400000000 WHERE id = '" +
                  late + "'"));
  REQUIRE(
      box.Sql("UPDATE cases SET deadline_at = clock_paused_at + 1000 WHERE id = '" + early + "'"));
  Run completed =
      wf({"complete", std::to_string(TaskOf(box, paid)), "--as", "ann", "--set", "approved=true"});
  REQUIRE(completed.code == 0);
  REQUIRE(wf({"signal", paid, "papers", "--data", "-"}, R"({"pages": 3})").code == 0);
  Run engine = wf({"engine", "--until-idle", "--idle-wait", "1"});
  REQUIRE(engine.code == 0);

  const std::map<std::string, bool> overdue = {{late, true}, {early, false}, {paid, false}};
  json cases = ByKey(wf({"cases", "--limit", "0", "--json"}).Json(), "id");
  json overdue_only = wf({"cases", "--overdue", "--json"}).Json();
  REQUIRE(overdue_only.size() == 1);
  CHECK(overdue_only[0]["id"] == late);
  json inbox = ByKey(wf({"inbox", "--as", "ann", "--json"}).Json(), "case");
  CHECK(inbox.size() == 2);  // the paid case's review is done
  json report = wf({"report", "--json"}).Json()["procedures"][0];
  CHECK(report["overdue"] == 1);
  REQUIRE(report["overdue_cases"].size() == 1);
  CHECK(report["overdue_cases"][0]["id"] == late);
  CHECK(report["overdue_cases"][0]["steps"] == json::array({"review", "papers"}));
  json report_steps = ByKey(report["steps"], "id");
  CHECK(report_steps["pay"]["waiting_now"] == 1);

  for (const auto& [id, is_overdue] : overdue) {
    INFO("case " << id);
    json shown = wf({"show", id, "--json"}).Json();
    json held = ByKey(wf({"history", id, "--by-agency", "--json"}).Json(), "holder");
    CHECK(cases[id]["status"] == "open");
    CHECK(shown["status"] == "open");
    CHECK(held["case"]["status"] == "open");
    CHECK(cases[id]["overdue"] == is_overdue);
    CHECK(shown["overdue"] == is_overdue);
    CHECK(shown["deadline"]["overdue"] == is_overdue);
    CHECK(held["case"]["overdue"] == is_overdue);
    CHECK(held["case"]["within_limit"] == !is_overdue);
    CHECK(cases[id]["step"] == (id == paid ? "pay" : "review,papers"));
    CHECK(shown["current_steps"] == held["case"]["current_steps"]);
    CHECK(cases[id]["clock_paused"] == (id != paid));
    CHECK(shown["deadline"]["paused"] == (id != paid));
    if (id != paid) {
      CHECK(inbox[id]["case_status"] == "open");
      CHECK(inbox[id]["case_overdue"] == is_overdue);
      CHECK(held["applicant"]["still_held"] == true);
      CHECK(held["town-hall"]["still_held"] == true);
    }
  }

  // The 202 case waits for the department's callback: the department still holds it.
  json parked = wf({"show", paid, "--json"}).Json();
  REQUIRE(parked["steps"].size() == 1);
  CHECK(parked["steps"][0]["waiting"] == "accepted");
  json parked_held = ByKey(wf({"history", paid, "--by-agency", "--json"}).Json(), "holder");
  CHECK(parked_held["department payment-gateway"]["still_held"] == true);

  // The department calls back; the case ends, and every command measures the same holds.
  Run callback = wf({"signal", paid, "pay", "--data", "-"}, R"({"status": "paid"})");
  REQUIRE(callback.code == 0);
  json events = wf({"history", paid, "--json"}).Json();
  int accepted = 0;
  for (const json& e : events) accepted += e["action"] == "step.accepted" ? 1 : 0;
  CHECK(accepted == 1);
  json held = ByKey(wf({"history", paid, "--by-agency", "--json"}).Json(), "holder");
  json figures = wf({"report", "--json"}).Json()["procedures"][0];
  json steps = ByKey(figures["steps"], "id");
  CHECK(wf({"show", paid, "--json"}).Json()["status"] == "completed");
  CHECK(ByKey(wf({"cases", "--json"}).Json(), "id")[paid]["status"] == "completed");
  CHECK(held["case"]["status"] == "completed");
  CHECK(held["case"]["within_limit"] == true);
  CHECK(figures["on_time_rate"] == 1);

  // The department held the step from its entry to its callback, not to its 202.
  const double days = 86400.0;
  // Seconds since 1970 as doubles are exact to about 0.25 µs: compare to the microsecond.
  const double microsecond = 1e-6 / days;
  const double pay = (EventSeconds(events, "signal.received", "pay") -
                      EventSeconds(events, "step.entered", "pay")) /
                     days;
  CHECK(held["department payment-gateway"]["still_held"] == false);
  CHECK(held["department payment-gateway"]["held_working_days"].get<double>() ==
        Approx(pay).margin(2 * microsecond));
  CHECK(steps["pay"]["time"]["mean"].get<double>() ==
        Approx(held["department payment-gateway"]["held_working_days"].get<double>()));
  CHECK(steps["review"]["time"]["mean"].get<double>() ==
        Approx(held["town-hall"]["held_working_days"].get<double>()));
  CHECK(steps["papers"]["time"]["mean"].get<double>() ==
        Approx(held["applicant"]["held_working_days"].get<double>()));
  // The whole case, less the time the applicant's papers stopped the clock.
  const double whole =
      (EventSeconds(events, "case.finished", "done") - EventSeconds(events, "case.started", "")) /
      days;
  const double paused = (EventSeconds(events, "signal.received", "papers") -
                         EventSeconds(events, "step.entered", "papers")) /
                        days;
  CHECK(held["case"]["paused_working_days"].get<double>() ==
        Approx(paused).margin(2 * microsecond));
  CHECK(held["case"]["held_working_days"].get<double>() ==
        Approx(whole - paused).margin(4 * microsecond));
  CHECK(figures["processing_days"]["median"].get<double>() ==
        Approx(held["case"]["held_working_days"].get<double>()));
}

TEST_CASE("wf serve without an identity refuses to listen beyond loopback", "[cli][serve]") {
  Sandbox box(wf::engine::Backend::kSqlite);
  Run wide = box.Wf({"serve", "--listen", "0.0.0.0:0"});
  CHECK(wide.code == 2);
  CHECK(wide.err.find("loopback only") != std::string::npos);
  Run bad = box.Wf({"serve", "--listen", "127.0.0.1"});
  CHECK(bad.code == 2);
  CHECK(bad.err.find("HOST:PORT") != std::string::npos);
}
