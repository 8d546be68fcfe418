// Retention (engine/archive.*): ended cases written to an archive file and removed from the live
// tables on both stores, and the file verified on its own, tampered with or not.

#include "engine/archive.hpp"

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "engine/anchor.hpp"
#include "engine/runtime.hpp"
#include "engine/scheduler.hpp"
#include "tests/support/cases.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/support/test_database.hpp"

namespace wf::engine {
namespace {

using namespace std::chrono_literals;

// Ends as soon as the engine has made its one (built-in noop) call.
constexpr const char* kQuick = R"(procedure: quick
version: 1
title: One noop call, then the end
agency: test-agency
steps:
  call: {adapter: noop, call: {operation: ping}, save_as: pong, next: done}
  done: {end: completed}
)";

// Stays open: waits for a person.
constexpr const char* kWaiting = R"(procedure: waiting
version: 1
title: A task nobody does
agency: test-agency
roles:
  officer: {agency: test-agency}
steps:
  decide:
    task: Decide
    role: officer
    next: done
  done: {end: completed}
)";

// A store with `ended` quick cases run to their end and one case left open.
struct Cases {
  std::unique_ptr<Store> store;
  std::vector<std::string> ended;
  std::string open;
  Timestamp before_start;
};

Cases EndedAndOpenCases(testing::TestDatabase& db, int ended) {
  Cases out;
  auto store = Store::Open(db.url());
  REQUIRE(store.has_value());
  out.store = std::move(*store);
  auto deployment = LoadDeploymentText(
      "agencies:\n  test-agency:\n    members: {an.nguyen: [officer]}\n", "test-config.yaml");
  REQUIRE(deployment.has_value());
  Runtime runtime(*out.store, *deployment);
  REQUIRE(runtime.Deploy(testing::ProcedureFromYaml(kQuick)).has_value());
  REQUIRE(runtime.Deploy(testing::ProcedureFromYaml(kWaiting)).has_value());
  out.before_start = Now() - 1s;
  for (int i = 0; i < ended; ++i) {
    auto started = runtime.StartCase("quick", nlohmann::json::object(), "an.nguyen");
    REQUIRE(started.has_value());
    out.ended.push_back(started->id);
  }
  auto open = runtime.StartCase("waiting", nlohmann::json::object(), "an.nguyen");
  REQUIRE(open.has_value());
  out.open = open->id;
  EngineOptions options;
  options.until_idle = true;
  options.idle_wait = 5s;
  adapters::Registry none;
  Engine engine(runtime, none, options);
  REQUIRE(engine.Run().ok());
  for (const std::string& id : out.ended)
    REQUIRE(testing::CaseStatus(*out.store, id) == "completed");
  return out;
}

std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

void WriteFile(const std::filesystem::path& path, const std::string& text) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
}

// `text` (an archive) with its trailer recomputed over its other lines, as a forger would.
std::string WithRecomputedTrailer(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  REQUIRE(lines.size() >= 3);
  Sha256Stream hash;
  std::string out;
  int64_t cases = 0, events = 0;
  for (size_t i = 0; i + 1 < lines.size(); ++i) {
    hash.Update(lines[i] + "\n");
    out += lines[i] + "\n";
    if (i > 0) {
      ++cases;
      events += static_cast<int64_t>(nlohmann::json::parse(lines[i])["history"].size());
    }
  }
  return out +
         nlohmann::json{{"cases", cases}, {"events", events}, {"sha256", hash.HexDigest()}}.dump() +
         "\n";
}

}  // namespace

WF_STORE_TEST_CASE("ended cases move into an archive that verifies, and leave the live tables",
                   "[engine][archive]", db) {
  Cases cases = EndedAndOpenCases(db, 3);
  Store& store = *cases.store;
  testing::TempDir dir("wf_archive_");
  const std::string path = (dir / "old.jsonl").string();

  // Nothing had ended before the cases started: no file.
  auto none = ArchiveEndedCases(store, cases.before_start, path, Now());
  REQUIRE(none.has_value());
  CHECK(none->cases == 0);
  CHECK_FALSE(std::filesystem::exists(path));

  std::map<std::string, HistoryEvent> heads;
  int64_t events = 0;
  for (const std::string& id : cases.ended) {
    std::vector<HistoryEvent> history = testing::CaseHistory(store, id);
    REQUIRE_FALSE(history.empty());
    events += static_cast<int64_t>(history.size());
    heads[id] = history.back();
  }
  auto written = ArchiveEndedCases(store, Now() + 1h, path, Now());
  INFO((written ? "" : written.error().message()));
  REQUIRE(written.has_value());
  CHECK(written->cases == 3);
  CHECK(written->events == events);
  CHECK(written->sha256.size() == 64);
  CHECK_FALSE(std::filesystem::exists(path + ".partial"));

  auto verified = VerifyArchive(path);
  INFO((verified ? "" : verified.error().message()));
  REQUIRE(verified.has_value());
  CHECK(verified->cases == 3);
  CHECK(verified->events == events);
  CHECK(verified->sha256 == written->sha256);

  for (const std::string& id : cases.ended) {
    Status gone = store.Read([&](StoreTx& tx) {
      auto record = tx.GetCase(id);
      return record ? Status::Ok() : record.error();
    });
    CHECK(gone.code() == ErrorCode::kNotFound);
    CHECK(testing::CaseHistory(store, id).empty());
    std::optional<ArchivedChain> chain;
    REQUIRE(store
                .Read([&](StoreTx& tx) {
                  auto got = tx.GetArchivedChain(id);
                  if (!got) return got.error();
                  chain = *got;
                  return Status::Ok();
                })
                .ok());
    REQUIRE(chain.has_value());
    CHECK(chain->head.seq == heads[id].seq);
    CHECK(chain->head.hash == heads[id].hash);
    CHECK(chain->archive_sha256 == written->sha256);
  }
  // The open case stays, and the live history still verifies.
  CHECK(testing::CaseStatus(store, cases.open) == "open");
  auto live = testing::VerifyHistory(store);
  INFO((live ? "" : live.error().message()));
  CHECK(live.has_value());

  // Run again: nothing left to archive, and an existing file is never overwritten.
  auto again = ArchiveEndedCases(store, Now() + 1h, (dir / "again.jsonl").string(), Now());
  REQUIRE(again.has_value());
  CHECK(again->cases == 0);
  CHECK_FALSE(std::filesystem::exists(dir / "again.jsonl"));
  auto clash = ArchiveEndedCases(store, Now() + 1h, path, Now());
  REQUIRE_FALSE(clash.has_value());
  CHECK(clash.error().code() == ErrorCode::kConflict);
}

TEST_CASE("a tampered archive file does not verify", "[engine][archive][sqlite]") {
  testing::TestDatabase db(Backend::kSqlite);  // the file is the same from either store
  Cases cases = EndedAndOpenCases(db, 2);
  testing::TempDir dir("wf_archive_");
  const std::filesystem::path path = dir / "old.jsonl";
  REQUIRE(ArchiveEndedCases(*cases.store, Now() + 1h, path.string(), Now()).has_value());
  const std::string original = ReadFile(path);
  REQUIRE(VerifyArchive(path.string()).has_value());
  const std::filesystem::path changed = dir / "changed.jsonl";
  // The first case line's second event.
  const size_t case_line = original.find('\n') + 1;
  const size_t second_event = original.find("\"actor\":\"engine\"", case_line);
  REQUIRE(second_event != std::string::npos);

  // Writes `text` as the archive checked; the message of the kHistoryBroken it must give.
  auto broken = [&](const std::string& text) {
    WriteFile(changed, text);
    Result<ArchiveSummary> result = VerifyArchive(changed.string());
    REQUIRE_FALSE(result.has_value());
    CHECK(result.error().code() == ErrorCode::kHistoryBroken);
    return result.error().message();
  };
  std::string forged = original;
  forged.replace(second_event, 16, "\"actor\":\"mallor\"");

  SECTION("a changed event breaks its case's chain at that event") {
    CHECK_THAT(broken(forged), Catch::Contains("does not verify (hash mismatch)"));
  }
  SECTION("a changed event with the trailer recomputed: the chain itself breaks") {
    CHECK_THAT(
        broken(WithRecomputedTrailer(forged)),
        Catch::Contains("case " + cases.ended[0]) || Catch::Contains("case " + cases.ended[1]));
  }
  SECTION("a case changed outside its history no longer hashes to the trailer") {
    std::string text = original;
    const size_t procedure = text.find("\"procedure\":\"quick\"", case_line);
    REQUIRE(procedure != std::string::npos);
    text.replace(procedure, 19, "\"procedure\":\"quack\"");
    CHECK_THAT(broken(text), Catch::Contains("altered"));
  }
  SECTION("a case removed with the trailer recomputed still verifies on its own") {
    // The file alone cannot tell; archived_chains.archive_sha256 in the database can.
    std::string text = original;
    const size_t next_line = text.find('\n', case_line) + 1;
    text.erase(case_line, next_line - case_line);
    WriteFile(changed, WithRecomputedTrailer(text));
    auto result = VerifyArchive(changed.string());
    REQUIRE(result.has_value());
    CHECK(result->cases == 1);
    CHECK(result->sha256 != VerifyArchive(path.string())->sha256);
  }
  SECTION("a trailer whose counts were changed") {
    std::string text = original;
    const size_t cases_at = text.rfind("\"cases\":2");
    REQUIRE(cases_at != std::string::npos);
    text.replace(cases_at, 9, "\"cases\":3");
    CHECK_THAT(broken(text), Catch::Contains("altered"));
  }
  SECTION("a file that is not an archive, or no file") {
    WriteFile(changed, "{\"anchor\":\"wf-anchor/1\"}\n{}\n");
    auto junk = VerifyArchive(changed.string());
    REQUIRE_FALSE(junk.has_value());
    CHECK(junk.error().code() == ErrorCode::kInvalid);
    CHECK_THAT(junk.error().message(), Catch::StartsWith(changed.string() + ":1: "));
    CHECK(VerifyArchive((dir / "missing.jsonl").string()).error().code() == ErrorCode::kNotFound);
  }
}

}  // namespace wf::engine
