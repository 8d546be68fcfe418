// Owner-only files: the SQLite database prepared before SQLite opens it (its WAL companions
// following its mode), and archives. Every test sets the umask to 0 while it creates files, so
// the modes checked come from the code, not from a friendly umask.
#include "engine/private_files.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include <soci/soci.h>
#include <soci/sqlite3/soci-sqlite3.h>
#include <catch2/catch.hpp>

#include "engine/archive.hpp"
#include "engine/store.hpp"
#include "tests/support/test_database.hpp"

namespace wf::engine {
namespace {

namespace fs = std::filesystem;

// A fresh folder, removed at the end of the test.
struct TempFolder {
  TempFolder() {
    std::string pattern = (fs::temp_directory_path() / "wf-private-files-XXXXXX").string();
    REQUIRE(::mkdtemp(pattern.data()) != nullptr);
    path = pattern;
  }
  ~TempFolder() {
    std::error_code ignored;
    fs::remove_all(path, ignored);
  }
  fs::path path;
};

// Sets the umask for the scope.
struct Umask {
  explicit Umask(mode_t mask) : previous(::umask(mask)) {}
  ~Umask() { ::umask(previous); }
  mode_t previous;
};

unsigned Mode(const fs::path& path) {
  struct stat info {};
  REQUIRE(::stat(path.c_str(), &info) == 0);
  return info.st_mode & 07777;
}

DatabaseTarget SqliteTarget(const std::string& path) {
  Result<DatabaseTarget> target = ParseDatabaseUrl("sqlite:" + path);
  REQUIRE(target.has_value());
  return *target;
}

TEST_CASE("a new SQLite database and its WAL files are created 0600 whatever the umask",
          "[engine][files]") {
  TempFolder folder;
  for (std::string name : {"wf.db", "with=equals.db"}) {
    INFO(name);
    const fs::path db = folder.path / name;
    Umask open_mask(0);
    REQUIRE(PrepareSqliteFile(SqliteTarget(db.string())).ok());
    CHECK(Mode(db) == 0600);
    {
      soci::session sql(soci::sqlite3, SqliteTarget(db.string()).connect_string);
      sql << "PRAGMA journal_mode = WAL";
      sql << "CREATE TABLE t (x INTEGER)";
      sql << "INSERT INTO t VALUES (1)";
      CHECK(Mode(db.string() + "-wal") == 0600);
      CHECK(Mode(db.string() + "-shm") == 0600);
    }
    CHECK(Mode(db) == 0600);
  }
}

TEST_CASE("preparing a SQLite database leaves an existing file and other databases alone",
          "[engine][files]") {
  TempFolder folder;
  const fs::path db = folder.path / "existing.db";
  { std::ofstream(db) << ""; }
  fs::permissions(db, fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read);
  CHECK(PrepareSqliteFile(SqliteTarget(db.string())).ok());
  CHECK(Mode(db) == 0640);

  CHECK(PrepareSqliteFile(SqliteTarget(":memory:")).ok());
  Result<DatabaseTarget> postgres = ParseDatabaseUrl("postgresql://wf@127.0.0.1:1/wf");
  REQUIRE(postgres.has_value());
  CHECK(PrepareSqliteFile(*postgres).ok());

  Status missing = PrepareSqliteFile(SqliteTarget((folder.path / "no" / "wf.db").string()));
  CHECK(missing.code() == ErrorCode::kUnavailable);
  CHECK_THAT(missing.message(), Catch::Contains("cannot create the SQLite database " +
                                                (folder.path / "no" / "wf.db").string()));
}

TEST_CASE("a private file is never created through something already there", "[engine][files]") {
  TempFolder folder;
  const fs::path target = folder.path / "elsewhere";
  const fs::path link = folder.path / "link";
  fs::create_symlink(target, link);  // dangling
  CHECK(CreatePrivateFile(link.string()).code() == ErrorCode::kConflict);
  CHECK_FALSE(fs::exists(target));
  Umask open_mask(0);
  REQUIRE(CreatePrivateFile((folder.path / "new").string()).ok());
  CHECK(Mode(folder.path / "new") == 0600);
  CHECK(SyncParentFolder((folder.path / "new").string()).ok());
}

TEST_CASE("an archive file is created 0600, replacing a crashed run's partial file",
          "[engine][files][archive]") {
  testing::TestDatabase db(Backend::kSqlite);
  Result<std::unique_ptr<Store>> opened = Store::Open(db.url(), 1);
  REQUIRE(opened.has_value());
  Store& store = **opened;
  const Timestamp t0 = FromMicros(1'767'225'600'000'000);
  CaseRecord record;
  record.procedure = "birth-registration";
  record.version = 1;
  record.data = R"({"child":{"full_name":"An"}})";
  record.state = "{}";
  record.agency = "commune-justice";
  record.started_by = "an.nguyen";
  record.started_at = t0;
  record.updated_at = t0;
  std::string id;
  REQUIRE(store
              .Transact([&](StoreTx& tx) {
                Result<std::string> inserted = tx.InsertCase(record);
                if (!inserted) return inserted.error();
                id = *inserted;
                return Status::Ok();
              })
              .ok());
  db.Execute("UPDATE cases SET status = 'completed', ended_at = 1 WHERE id = '" + id + "'");

  TempFolder folder;
  const fs::path archive = folder.path / "old.jsonl";
  { std::ofstream(archive.string() + ".partial") << "left by a run that crashed"; }
  fs::permissions(archive.string() + ".partial", fs::perms::owner_all | fs::perms::others_read);
  Umask open_mask(0);
  Result<ArchiveSummary> summary = ArchiveEndedCases(store, t0, archive.string(), t0);
  INFO((summary ? std::string() : summary.error().message()));
  REQUIRE(summary.has_value());
  CHECK(summary->cases == 1);
  CHECK(Mode(archive) == 0600);
  CHECK_FALSE(fs::exists(archive.string() + ".partial"));
  CHECK(VerifyArchive(archive.string()).has_value());
  CHECK(db.QueryInt("SELECT COUNT(*) FROM cases") == 0);
}

}  // namespace
}  // namespace wf::engine
