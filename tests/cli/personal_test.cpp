// Citizens' personal data end to end (DESIGN.md "Personal data"), on SQLite and on PostgreSQL:
// stored only sealed, opened by `show` and `history`, absent from exports, archives and the
// database's bytes, and after `wf erase` gone everywhere while the history still verifies.
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "tests/cli/cli_sandbox.hpp"

using namespace wf::cli_testing;  // NOLINT(google-build-using-namespace): every test's sandbox

namespace {

const char* const kCitizenId = "079203004512";
const char* const kName = "Lê Thị Hồng Nhung";
const char* const kAddress = "Số 7 hẻm 42 Trần Quang Khải";
const char* const kPhone = "0912345678";

// The values that must never be stored in the clear.
std::vector<std::string> PersonalValues() { return {kCitizenId, kName, kAddress, kPhone}; }

std::string Application(const std::string& id) {
  return json{{"citizen", {{"id", id}, {"name", kName}, {"occupation", "teacher"}}},
              {"address", kAddress}}
      .dump();
}

// Everything the database holds, as bytes: the SQLite file and its write-ahead log, or a
// data-only pg_dump.
std::string DatabaseBytes(Sandbox& box) {
  if (box.postgres()) {
    const fs::path dump = box.dir() / "dump.sql";
    REQUIRE(System("pg_dump --data-only " + ShellQuote(box.db()) + " > " +
                   ShellQuote(dump.string()) + " 2>/dev/null") == 0);
    return ReadFile(dump);
  }
  std::string bytes;
  for (const char* suffix : {"", "-wal", "-journal"}) {
    const std::string url = box.db();
    const fs::path file = url.substr(url.find(':') + 1) + suffix;
    if (fs::exists(file)) bytes += ReadFile(file);
  }
  return bytes;
}

std::string Hex(const std::string& bytes) {
  static const char* const kDigits = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out += kDigits[c >> 4];
    out += kDigits[c & 15];
  }
  return out;
}

// PostgreSQL: every row version in the tables' pages, dead ones included (what an update left
// behind until vacuum), in hex. SQLite: empty (DatabaseBytes reads its files whole).
std::string RowVersionsHex(Sandbox& box) {
  if (!box.postgres()) return {};
  const fs::path out = box.dir() / "pages.txt";
  const std::string sql =
      "CREATE EXTENSION IF NOT EXISTS pageinspect;"
      " SELECT encode(i.t_data, 'hex') FROM pg_class c"
      " CROSS JOIN LATERAL generate_series(0, (pg_relation_size(c.oid) / 8192)::int - 1) AS p"
      " CROSS JOIN LATERAL heap_page_items(get_raw_page(c.oid::regclass::text, p)) AS i"
      " WHERE c.relkind IN ('r', 't') AND c.relnamespace <> 'pg_catalog'::regnamespace"
      " AND i.t_data IS NOT NULL";
  REQUIRE(System("psql -X -q -At -v ON_ERROR_STOP=1 " + ShellQuote(box.db()) + " -c " +
                 ShellQuote(sql) + " > " + ShellQuote(out.string()) + " 2>/dev/null") == 0);
  return ReadFile(out);
}

void CheckNoRowVersionHolds(Sandbox& box) {
  const std::string versions = RowVersionsHex(box);
  for (const std::string& value : PersonalValues()) {
    INFO("no row version, live or dead, may hold " << value);
    CHECK(versions.find(Hex(value)) == std::string::npos);
  }
  if (box.postgres()) CHECK(versions.find(Hex("wf:sealed:")) != std::string::npos);
}

void CheckHoldsNone(const std::string& where, const std::string& text) {
  for (const std::string& value : PersonalValues()) {
    INFO(where << " must not hold " << value);
    CHECK(text.find(value) == std::string::npos);
  }
}

// Starts a residence case and carries it to its end; returns its id.
std::string EndedCase(Sandbox& box, const std::string& citizen_id) {
  const fs::path data = box.dir() / ("application-" + citizen_id + ".json");
  {
    std::ofstream out(data);
    out << Application(citizen_id);
  }
  Run started = box.Wf({"start", "cli-residence", "--data", data.string(), "--as", "ann"});
  REQUIRE(started.code == 0);
  const std::string id = Trimmed(started.out);
  RunEngine(box);
  const int64_t task = TaskOf(box, id);
  REQUIRE(box.Wf({"complete", std::to_string(task), "--as", "ann", "--set", "approved=true",
                  "--set", std::string("phone=") + kPhone})
              .code == 0);
  RunEngine(box);
  REQUIRE(box.Wf({"show", id, "--json"}).Json()["status"] == "completed");
  return id;
}

}  // namespace

WF_CLI_TEST_CASE("personal data is stored sealed, shown to whoever may see the case, and erased",
                 "[cli][personal]", box) {
  REQUIRE(box.Wf({"deploy", Fixture("personal.yaml")}).code == 0);
  const fs::path data = box.dir() / "application.json";
  {
    std::ofstream out(data);
    out << Application(kCitizenId);
  }
  Run started = box.Wf({"start", "cli-residence", "--data", data.string(), "--as", "ann"});
  REQUIRE(started.code == 0);
  const std::string id = Trimmed(started.out);
  // The duplicate is refused without printing the citizen id it matched on.
  Run twice = box.Wf({"start", "cli-residence", "--data", data.string(), "--as", "ann"});
  CHECK(twice.code == 5);
  CheckHoldsNone("the duplicate's message", twice.out + twice.err);
  // Not even for the instant between the case's insert and its first update (a dead row version
  // stays in the table's pages, and in the write-ahead log).
  CheckNoRowVersionHolds(box);
  RunEngine(box);

  // Open: not erasable.
  Run early = box.Wf({"erase", id, "--reason", "the citizen asked", "--as", "ann"});
  CHECK(early.code == 5);
  CHECK(early.err.find("still open") != std::string::npos);

  const int64_t task = TaskOf(box, id);
  REQUIRE(box.Wf({"complete", std::to_string(task), "--as", "ann", "--set", "approved=true",
                  "--set", std::string("phone=") + kPhone})
              .code == 0);
  RunEngine(box);

  // Whoever may see the case reads the plaintext: its data, the department's personal answer,
  // the clerk's personal field, and the history.
  json shown = box.Wf({"show", id, "--json"}).Json();
  REQUIRE(shown["status"] == "completed");
  CHECK(shown["data"]["citizen"]["id"] == kCitizenId);
  CHECK(shown["data"]["citizen"]["occupation"] == "teacher");
  CHECK(shown["data"]["record"]["citizen_id"] == kCitizenId);
  CHECK(shown["data"]["review"]["phone"] == kPhone);
  Run history = box.Wf({"history", id, "--json"});
  REQUIRE(history.code == 0);
  CHECK(history.out.find(kCitizenId) != std::string::npos);
  CHECK(history.out.find(kPhone) != std::string::npos);

  // What is stored, exported and archived holds only ciphertext.
  Run exported = box.Wf({"audit", "export"});
  REQUIRE(exported.code == 0);
  CHECK(exported.out.find("wf:sealed:") != std::string::npos);
  CheckHoldsNone("the export", exported.out);
  CheckHoldsNone("the database", DatabaseBytes(box));
  CheckNoRowVersionHolds(box);
  REQUIRE(box.Wf({"audit", "verify"}).code == 0);

  // Erased: the values read [erased], the database holds them nowhere, the chain verifies.
  Run erased = box.Wf({"erase", id, "--reason", "the citizen asked", "--as", "ann", "--json"});
  REQUIRE(erased.code == 0);
  CHECK(erased.Json()["erased"] == json::array({id}));
  json after = box.Wf({"show", id, "--json"}).Json();
  CHECK(after["data"]["citizen"]["id"] == "[erased]");
  CHECK(after["data"]["citizen"]["occupation"] == "teacher");
  CHECK(after["data"]["review"]["phone"] == "[erased]");
  Run verified = box.Wf({"audit", "verify"});
  CHECK(verified.code == 0);
  Run later = box.Wf({"history", id, "--json"});
  CHECK(later.out.find("case.erased") != std::string::npos);
  CheckHoldsNone("the history after erasure", later.out);
  CheckHoldsNone("the database after erasure", DatabaseBytes(box));
  // Once is enough: nothing is left to erase.
  CHECK(box.Wf({"erase", id, "--reason", "again", "--as", "ann"}).code == 5);
  CHECK(box.Wf({"erase", "no-such-case", "--reason", "x", "--as", "ann"}).code == 4);
  CHECK(box.Wf({"erase", id, "--as", "ann"}).code == 2);

  // The archive of the ended case holds ciphertext too.
  const fs::path archive = box.dir() / "archive.jsonl";
  Run archived =
      box.Wf({"archive", "--before", "2999-01-01", "--out", archive.string(), "--as", "ann"});
  REQUIRE(archived.code == 0);
  CheckHoldsNone("the archive", ReadFile(archive));
}

WF_CLI_TEST_CASE("the retention sweep erases only the cases past their retention",
                 "[cli][personal]", box) {
  REQUIRE(box.Wf({"deploy", Fixture("personal.yaml")}).code == 0);
  const std::string old_case = EndedCase(box, "079203004512");
  const std::string recent_case = EndedCase(box, "079203004513");
  // The first ended long ago (retention: 30 days).
  REQUIRE(box.Sql("UPDATE cases SET ended_at = 1000000 WHERE id = '" + old_case + "'"));
  Run swept = box.Wf({"erase", "--expired", "--as", "ann", "--json"});
  REQUIRE(swept.code == 0);
  CHECK(swept.Json()["erased"] == json::array({old_case}));
  CHECK(box.Wf({"show", old_case, "--json"}).Json()["data"]["citizen"]["name"] == "[erased]");
  CHECK(box.Wf({"show", recent_case, "--json"}).Json()["data"]["citizen"]["name"] == kName);
  Run again = box.Wf({"erase", "--expired", "--as", "ann"});
  REQUIRE(again.code == 0);
  CHECK(again.out.find("no ended case") != std::string::npos);
  CHECK(box.Wf({"audit", "verify"}).code == 0);
}

WF_CLI_TEST_CASE("rotating the key file keeps every case readable", "[cli][personal]", box) {
  REQUIRE(box.Wf({"deploy", Fixture("personal.yaml")}).code == 0);
  const std::string id = EndedCase(box, "079203004512");
  Run rotated = box.Wf({"keys", "rotate", "--drop-old", "--as", "ann", "--json"});
  REQUIRE(rotated.code == 0);
  CHECK(rotated.Json()["rewrapped"] == 1);
  CHECK(rotated.Json()["old_keks_dropped"] == true);
  CHECK(box.Wf({"show", id, "--json"}).Json()["data"]["citizen"]["id"] == kCitizenId);
}

WF_CLI_TEST_CASE("wf validate warns of a task title that prints a personal field",
                 "[cli][personal]", box) {
  Run validated = box.Wf({"validate", Fixture("personal_title.yaml")});
  CHECK(validated.code == 0);
  CHECK(validated.err.find("personal_title.yaml:15:11: warning: task 'review' prints the personal "
                           "field .name") != std::string::npos);
}
