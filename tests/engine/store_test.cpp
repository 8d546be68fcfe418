#include "engine/store.hpp"

#include <algorithm>
#include <set>
#include <thread>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "engine/history_action.hpp"
#include "tests/support/cases.hpp"
#include "tests/support/test_database.hpp"

namespace wf::engine {
namespace {

using namespace std::chrono_literals;

std::unique_ptr<Store> OpenStore(const testing::TestDatabase& db, int pool_size = 2) {
  Result<std::unique_ptr<Store>> store = Store::Open(db.url(), pool_size);
  if (!store) FAIL("Store::Open(" << db.url() << "): " << store.error().message());
  return std::move(*store);
}

// The status of a result, for bodies that only report success or failure.
template <typename T>
Status StatusOf(const Result<T>& result) {
  return result.has_value() ? Status::Ok() : result.error();
}

// A fixed "now" so that tests never depend on the clock.
const Timestamp kT0 = FromMicros(1'767'225'600'000'000);  // 2026-01-01T00:00:00Z

CaseRecord NewCase(const std::string& procedure = "birth-registration",
                   std::optional<std::string> dedupe = std::nullopt) {
  CaseRecord c;
  c.procedure = procedure;
  c.version = 1;
  c.data = R"({"child":{"full_name":"An"}})";
  c.state = R"({"tokens":["verify_mother"]})";
  c.dedupe_key = std::move(dedupe);
  c.agency = "commune-justice";
  c.started_by = "an.nguyen";
  c.started_at = kT0;
  c.updated_at = kT0;
  return c;
}

std::string InsertCase(Store& store, const CaseRecord& record) {
  std::string id;
  Status status = store.Transact([&](StoreTx& tx) {
    Result<std::string> inserted = tx.InsertCase(record);
    if (!inserted) return inserted.error();
    id = *inserted;
    return Status::Ok();
  });
  REQUIRE(status.ok());
  return id;
}

std::vector<WorkItem> Claim(Store& store, const std::string& owner, Timestamp now, int limit,
                            std::chrono::microseconds lease = 30s) {
  std::vector<WorkItem> items;
  Status status = store.Transact([&](StoreTx& tx) {
    Result<std::vector<WorkItem>> claimed = tx.ClaimWork(owner, now, lease, limit);
    if (!claimed) return claimed.error();
    items = std::move(*claimed);
    return Status::Ok();
  });
  REQUIRE(status.ok());
  return items;
}

void Enqueue(Store& store, const std::string& case_id, int count, Timestamp run_at) {
  std::vector<NewWork> work;
  for (int i = 0; i < count; ++i) {
    work.push_back(NewWork{case_id, "invoke", "step" + std::to_string(i), i,
                           R"({"n":)" + std::to_string(i) + "}", run_at});
  }
  REQUIRE(store.Transact([&](StoreTx& tx) { return tx.InsertWork(work); }).ok());
}

// A new case with `count` work rows due at kT0, all claimed by `owner`.
std::vector<WorkItem> CaseWithClaimedWork(Store& store, const std::string& owner, int count) {
  std::string case_id = InsertCase(store, NewCase());
  Enqueue(store, case_id, count, kT0);
  std::vector<WorkItem> items = Claim(store, owner, kT0, count);
  REQUIRE(items.size() == static_cast<size_t>(count));
  return items;
}

}  // namespace

TEST_CASE("database URLs become SOCI connect strings and redact the password",
          "[engine][store][url]") {
  Result<DatabaseTarget> pg =
      ParseDatabaseUrl("postgresql://wf:s%40cret@db.example:5433/wf?sslmode=require");
  REQUIRE(pg.has_value());
  CHECK(pg->backend == Backend::kPostgres);
  CHECK(pg->connect_string ==
        "host='db.example' port='5433' user='wf' password='s@cret' dbname='wf'"
        " application_name='wf' connect_timeout='10' sslmode='require'");
  CHECK(pg->redacted_url == "postgres" "ql://wf@db.example:5433/wf");

  Result<DatabaseTarget> short_form = ParseDatabaseUrl("postgres://127.0.0.1/x?connect_timeout=3");
  REQUIRE(short_form.has_value());
  CHECK(short_form->connect_string ==
        "host='127.0.0.1' dbname='x' application_name='wf' connect_timeout='3'");

  Result<DatabaseTarget> lite = ParseDatabaseUrl("sqlite:wf.db");
  REQUIRE(lite.has_value());
  CHECK(lite->backend == Backend::kSqlite);
  CHECK(lite->connect_string == "wf.db");
  CHECK(ParseDatabaseUrl("sqlite:///var/lib/wf/a b.db")->connect_string == "/var/lib/wf/a b.db");
  CHECK(ParseDatabaseUrl("sqlite:x=1.db")->connect_string == "db=x=1.db");

  CHECK(ParseDatabaseUrl("mysql://x").error().code() == ErrorCode::kUsage);
  CHECK(ParseDatabaseUrl("postgresql://h:port/x").error().code() == ErrorCode::kUsage);
  CHECK(ParseDatabaseUrl("sqlite:").error().code() == ErrorCode::kUsage);
}

TEST_CASE("an unreachable database is unavailable and its URL is named without the password",
          "[engine][store][url]") {
  Result<std::unique_ptr<Store>> store =
      Store::Open("postgresql://wf:topsecret@127.0.0.1:1/nowhere?connect_timeout=2", 1);
  REQUIRE_FALSE(store.has_value());
  CHECK(store.error().code() == ErrorCode::kUnavailable);
  CHECK_THAT(store.error().message(),
             Catch::Contains("cannot connect to postgresql://wf@127.0.0.1:1/nowhere"));
  CHECK_THAT(store.error().message(), !Catch::Contains("topsecret"));
}

WF_STORE_TEST_CASE("migrations apply once and applying them again changes nothing",
                   "[engine][store][migrations]", db) {
  auto store = OpenStore(db);
  Result<int> version = store->SchemaVersion();
  REQUIRE(version.has_value());
  CHECK(*version == Dialect(db.backend()).LatestSchemaVersion());
  Result<int> again = store->Migrate();
  REQUIRE(again.has_value());
  CHECK(*again == 0);
  auto second = OpenStore(db);
  CHECK(db.QueryInt("SELECT COUNT(*) FROM wf_schema") ==
        static_cast<long long>(Dialect(db.backend()).Migrations().size()));
}

WF_STORE_TEST_CASE("the open-case indexes hold only cases with a dedupe key or a deadline",
                   "[engine][store][migrations]", db) {
  auto store = OpenStore(db);
  const std::string catalog = db.is_postgres()
                                  ? "SELECT COUNT(*) FROM pg_indexes WHERE tablename = 'cases' AND "
                                    "indexname = '{0}' AND indexdef LIKE '%{1} IS NOT NULL%'"
                                  : "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND "
                                    "name = '{0}' AND sql LIKE '%{1} IS NOT NULL%'";
  auto defined = [&](const std::string& index, const std::string& column) {
    std::string sql = catalog;
    sql.replace(sql.find("{0}"), 3, index);
    sql.replace(sql.find("{1}"), 3, column);
    return db.QueryInt(sql);
  };
  CHECK(defined("cases_open_dedupe", "dedupe_key") == 1);
  CHECK(defined("cases_open_deadline", "deadline_at") == 1);
  if (!db.is_postgres()) return;
  // The store's two queries of open cases still imply the predicates: with sequential scans
  // priced out, PostgreSQL plans them on the partial indexes (it cannot use an index whose
  // predicate the query does not imply).
  db.Execute(
      "CREATE FUNCTION pg_temp.plans_on(query text, index text) RETURNS bigint LANGUAGE plpgsql"
      " AS $fn$ DECLARE line text; BEGIN SET LOCAL enable_seqscan = off;"
      " FOR line IN EXECUTE 'EXPLAIN ' || query LOOP"
      " IF position(index IN line) > 0 THEN RETURN 1; END IF; END LOOP; RETURN 0; END $fn$");
  CHECK(db.QueryInt("SELECT pg_temp.plans_on($q$SELECT id FROM cases WHERE procedure = 'p'"
                    " AND dedupe_key = 'k' AND status = 'open'$q$, 'cases_open_dedupe')") == 1);
  CHECK(db.QueryInt("SELECT pg_temp.plans_on($q$SELECT id FROM cases WHERE status = 'open'"
                    " AND deadline_at < 5 AND (clock_paused_at IS NULL OR deadline_at <"
                    " clock_paused_at)$q$, 'cases_open_deadline')") == 1);
}

WF_STORE_TEST_CASE("Open's first read runs once, after the migrations, and its failure fails Open",
                   "[engine][store][migrations]", db) {
  const bool pg = db.backend() == Backend::kPostgres;
  int runs = 0;
  long long tables_seen = -1;
  StoreTx::LoginIdentity identity;
  auto first_read = [&](StoreTx& tx) {
    ++runs;
    auto seen = tx.SessionIdentity();
    if (!seen) return seen.error();
    identity = *seen;
    auto config = tx.LatestConfig();  // a table of the latest schema: the migrations ran first
    if (!config) return config.error();
    tables_seen = config->has_value() ? 1 : 0;
    return Status::Ok();
  };
  SECTION("on an empty database, after migrating it") {
    auto store = Store::Open(db.url(), 1, first_read);
    INFO((store ? std::string("ok") : store.error().message()));
    REQUIRE(store.has_value());
    CHECK(runs == 1);
    CHECK(tables_seen == 0);
    CHECK(db.QueryInt("SELECT COUNT(*) FROM wf_schema") ==
          static_cast<long long>(Dialect(db.backend()).Migrations().size()));
    CHECK(identity.login.empty() == !pg);
  }
  SECTION("on a current database, in the schema check's transaction") {
    REQUIRE(OpenStore(db) != nullptr);
    auto store = Store::Open(db.url(), 1, first_read);
    REQUIRE(store.has_value());
    CHECK(runs == 1);
    CHECK(tables_seen == 0);
    CHECK(identity.login.empty() == !pg);
  }
  SECTION("a failing first read fails Open with its own status") {
    REQUIRE(OpenStore(db) != nullptr);
    auto store = Store::Open(db.url(), 1, [](StoreTx&) { return Status::NotPermitted("no"); });
    REQUIRE_FALSE(store.has_value());
    CHECK(store.error().code() == ErrorCode::kNotPermitted);
  }
}

WF_STORE_TEST_CASE("two starters migrating an empty database at once both succeed",
                   "[engine][store][migrations]", db) {
  Result<std::unique_ptr<Store>> a = Status::Internal("not run");
  Result<std::unique_ptr<Store>> b = Status::Internal("not run");
  std::thread first([&] { a = Store::Open(db.url(), 1); });
  std::thread second([&] { b = Store::Open(db.url(), 1); });
  first.join();
  second.join();
  INFO("first: " << (a ? "ok" : a.error().message()));
  INFO("second: " << (b ? "ok" : b.error().message()));
  REQUIRE(a.has_value());
  REQUIRE(b.has_value());
  CHECK(db.QueryInt("SELECT COUNT(*) FROM wf_schema") ==
        static_cast<long long>(Dialect(db.backend()).Migrations().size()));
}

WF_STORE_TEST_CASE("a procedure gets a new version only when its content changes",
                   "[engine][store][procedures]", db) {
  auto store = OpenStore(db);
  auto deploy = [&](const std::string& source, const std::string& hash) {
    DeployOutcome outcome;
    ProcedureRecord p{"birth-registration", 0, hash, source, "Birth", "commune-justice", kT0};
    REQUIRE(store->Transact([&](StoreTx& tx) {
      Result<DeployOutcome> r = tx.DeployProcedure(p);
      if (!r) return r.error();
      outcome = *r;
      return Status::Ok();
    }).ok());
    return outcome;
  };
  DeployOutcome v1 = deploy("procedure: birth-registration\n", "h1");
  CHECK(v1.version == 1);
  CHECK(v1.created);
  DeployOutcome same = deploy("procedure: birth-registration\n", "h1");
  CHECK(same.version == 1);
  CHECK_FALSE(same.created);
  DeployOutcome v2 = deploy("procedure: birth-registration\ntitle: x\n", "h2");
  CHECK(v2.version == 2);
  CHECK(v2.created);

  REQUIRE(store->Read([&](StoreTx& tx) {
    Result<ProcedureRecord> latest = tx.LatestProcedure("birth-registration");
    REQUIRE(latest.has_value());
    CHECK(latest->version == 2);
    CHECK(latest->source == "procedure: birth-registration\ntitle: x\n");
    Result<ProcedureRecord> first = tx.GetProcedure("birth-registration", 1);
    REQUIRE(first.has_value());
    CHECK(first->content_hash == "h1");
    CHECK(first->deployed_at == kT0);
    CHECK(tx.GetProcedure("birth-registration", 3).error().code() == ErrorCode::kNotFound);
    CHECK(tx.LatestProcedure("nope").error().code() == ErrorCode::kNotFound);
    Result<std::vector<ProcedureRecord>> all = tx.ListProcedures();
    REQUIRE(all.has_value());
    CHECK(all->size() == 2);
    return Status::Ok();
  }).ok());
}

WF_STORE_TEST_CASE("a case round-trips and a stale row version is a conflict",
                   "[engine][store][cases]", db) {
  auto store = OpenStore(db);
  CaseRecord record = NewCase();
  record.deadline_at = kT0 + 72h;
  record.parent_case = "parent-1";
  record.parent_activation = 7;
  std::string id = InsertCase(*store, record);
  CHECK(id.size() == 29);  // "20260101-" and twenty letters
  CHECK(id.rfind("20260101-", 0) == 0);

  CaseRecord first, second;
  REQUIRE(store->Read([&](StoreTx& tx) {
    Result<CaseRecord> a = tx.GetCase(id);
    Result<CaseRecord> b = tx.GetCase(id);
    REQUIRE(a.has_value());
    REQUIRE(b.has_value());
    first = *a;
    second = *b;
    CHECK(tx.GetCase("missing").error().code() == ErrorCode::kNotFound);
    return Status::Ok();
  }).ok());
  CHECK(first.row_version == 1);
  CHECK(first.procedure == "birth-registration");
  CHECK(nlohmann::json::parse(first.data) == nlohmann::json::parse(record.data));
  CHECK(nlohmann::json::parse(first.state) == nlohmann::json::parse(record.state));
  CHECK(first.deadline_at == kT0 + 72h);
  CHECK_FALSE(first.clock_paused_at.has_value());
  CHECK(first.parent_case == std::optional<std::string>("parent-1"));
  CHECK(first.parent_activation == std::optional<std::int64_t>(7));

  first.state = R"({"tokens":["review"]})";
  first.updated_at = kT0 + 1s;
  REQUIRE(store->Transact([&](StoreTx& tx) { return tx.UpdateCase(first); }).ok());
  CHECK(first.row_version == 2);

  second.status = "cancelled";
  Status stale = store->Transact([&](StoreTx& tx) { return tx.UpdateCase(second); });
  CHECK(stale.code() == ErrorCode::kConflict);
  CHECK_THAT(stale.message(), Catch::Contains("version 2, expected 1"));

  REQUIRE(store->Transact([&](StoreTx& tx) {
    Result<CaseRecord> locked = tx.GetCaseForUpdate(id);
    REQUIRE(locked.has_value());
    CHECK(locked->row_version == 2);
    CHECK(locked->status == "open");
    CHECK(nlohmann::json::parse(locked->state)["tokens"][0] == "review");
    return Status::Ok();
  }).ok());

  CaseRecord ghost = NewCase();
  ghost.id = "ghost";
  ghost.row_version = 1;
  CHECK(store->Transact([&](StoreTx& tx) { return tx.UpdateCase(ghost); }).code() ==
        ErrorCode::kNotFound);
}

WF_STORE_TEST_CASE("a second open case with the same dedupe key is refused and names the first",
                   "[engine][store][cases][dedupe]", db) {
  auto store = OpenStore(db);
  std::string first = InsertCase(*store, NewCase("birth-registration", "0123/2026-01-01"));

  Status again = store->Transact([&](StoreTx& tx) {
    return StatusOf(tx.InsertCase(NewCase("birth-registration", "0123/2026-01-01")));
  });
  CHECK(again.code() == ErrorCode::kConflict);
  CHECK_THAT(again.message(), Catch::Contains(first));

  // Another procedure, or no key, does not collide.
  InsertCase(*store, NewCase("health-card", "0123/2026-01-01"));
  InsertCase(*store, NewCase("birth-registration"));
  InsertCase(*store, NewCase("birth-registration"));

  // The same id twice is a unique violation, mapped to kConflict.
  CaseRecord duplicate = NewCase();
  duplicate.id = first;
  Status dup = store->Transact([&](StoreTx& tx) { return StatusOf(tx.InsertCase(duplicate)); });
  CHECK(dup.code() == ErrorCode::kConflict);

  // Ending the first frees the key ...
  CaseRecord ended;
  REQUIRE(store->Transact([&](StoreTx& tx) {
    Result<CaseRecord> c = tx.GetCaseForUpdate(first);
    if (!c) return c.error();
    ended = *c;
    ended.status = "completed";
    ended.ended_at = kT0 + 1h;
    return tx.UpdateCase(ended);
  }).ok());
  std::string second = InsertCase(*store, NewCase("birth-registration", "0123/2026-01-01"));
  REQUIRE(store->Read([&](StoreTx& tx) {
    Result<std::optional<CaseRecord>> open =
        tx.FindOpenCaseByDedupe("birth-registration", "0123/2026-01-01");
    REQUIRE(open.has_value());
    REQUIRE(open->has_value());
    CHECK((*open)->id == second);
    return Status::Ok();
  }).ok());

  // ... and reopening it while the second is open hits the partial unique index.
  ended.status = "open";
  Status reopen = store->Transact([&](StoreTx& tx) { return tx.UpdateCase(ended); });
  CHECK(reopen.code() == ErrorCode::kConflict);
}

WF_STORE_TEST_CASE("cases are listed newest first with filters", "[engine][store][cases]", db) {
  auto store = OpenStore(db);
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) {
    CaseRecord c = NewCase(i % 2 == 0 ? "birth-registration" : "health-card");
    c.started_at = kT0 + std::chrono::hours(i);
    c.agency = i < 4 ? "commune-justice" : "district-police";
    c.deadline_at = kT0 + std::chrono::hours(10 * i);
    if (i == 1) c.clock_paused_at = kT0 + 1h;  // paused before its deadline passed
    ids.push_back(InsertCase(*store, c));
  }
  auto list = [&](const CaseFilter& filter) {
    std::vector<std::string> out;
    REQUIRE(store->Read([&](StoreTx& tx) {
      Result<std::vector<CaseRecord>> cases = tx.ListCases(filter);
      if (!cases) return cases.error();
      for (const CaseRecord& c : *cases) out.push_back(c.id);
      return Status::Ok();
    }).ok());
    return out;
  };
  CHECK(list({}) == std::vector<std::string>{ids[4], ids[3], ids[2], ids[1], ids[0]});
  CaseFilter limited;
  limited.limit = 2;
  CHECK(list(limited) == std::vector<std::string>{ids[4], ids[3]});
  CaseFilter by_procedure;
  by_procedure.procedure = "health-card";
  CHECK(list(by_procedure) == std::vector<std::string>{ids[3], ids[1]});
  CaseFilter by_agency;
  by_agency.agency = "district-police";
  CHECK(list(by_agency) == std::vector<std::string>{ids[4]});
  CaseFilter overdue;
  overdue.overdue_at = kT0 + 25h;  // deadlines 0h, 10h (paused at 1h), 20h, 30h, 40h
  CHECK(list(overdue) == std::vector<std::string>{ids[2], ids[0]});
  CaseFilter closed;
  closed.status = "completed";
  CHECK(list(closed).empty());
}

WF_STORE_TEST_CASE("two owners claiming at once never get the same work", "[engine][store][work]",
                   db) {
  auto setup = OpenStore(db);
  std::string case_id = InsertCase(*setup, NewCase());
  constexpr int kRows = 300;
  Enqueue(*setup, case_id, kRows, kT0);

  auto engine_a = OpenStore(db, 1);
  auto engine_b = OpenStore(db, 1);
  std::vector<std::int64_t> got_a, got_b;
  auto drain = [](Store& store, const std::string& owner, std::vector<std::int64_t>& got) {
    for (;;) {
      std::vector<WorkItem> items;
      Status status = store.Transact([&](StoreTx& tx) {
        Result<std::vector<WorkItem>> claimed = tx.ClaimWork(owner, kT0 + 1s, 30s, 7);
        if (!claimed) return claimed.error();
        items = std::move(*claimed);
        return Status::Ok();
      });
      if (!status.ok()) {
        if (status.IsRetryable()) continue;
        return;
      }
      if (items.empty()) return;
      for (const WorkItem& item : items) got.push_back(item.id);
    }
  };
  std::thread a([&] { drain(*engine_a, "engine-a", got_a); });
  std::thread b([&] { drain(*engine_b, "engine-b", got_b); });
  a.join();
  b.join();

  std::set<std::int64_t> all(got_a.begin(), got_a.end());
  for (std::int64_t id : got_b) {
    CHECK(all.count(id) == 0);
    all.insert(id);
  }
  CHECK(got_a.size() + got_b.size() == static_cast<size_t>(kRows));
  CHECK(all.size() == static_cast<size_t>(kRows));
}

WF_STORE_TEST_CASE("a transaction whose BEGIN travels with its first statement is one transaction",
                   "[engine][store][work]", db) {
  auto store = OpenStore(db);
  std::vector<WorkItem> claimed = CaseWithClaimedWork(*store, "engine-a", 1);
  // A claimed row names its case's procedure and version.
  CHECK(claimed[0].procedure == "birth-registration");
  CHECK(claimed[0].version == 1);
  const WorkFence fence{claimed[0].case_id, claimed[0].id, claimed[0].attempt};
  auto leased = [&] {
    size_t n = 0;
    REQUIRE(store->Read([&](StoreTx& tx) {
      auto rows = tx.ListLeasedWork("engine-a");
      if (!rows) return rows.error();
      n = rows->size();
      return Status::Ok();
    }).ok());
    return n;
  };

  SECTION("a failure after a pipelined first statement undoes it") {
    Status status = store->TransactPipelined([&](StoreTx& tx) {
      auto done = tx.CompleteWorkBatch({fence}, "engine-a");
      if (!done) return done.error();
      CHECK(done->at(0));
      return Status::Conflict("changed my mind");
    });
    CHECK(status.code() == ErrorCode::kConflict);
    CHECK(leased() == 1);
  }
  SECTION("a failure after a plain first statement undoes it") {
    std::string second;
    Status status = store->TransactPipelined([&](StoreTx& tx) {
      auto inserted = tx.InsertCase(NewCase());
      if (!inserted) return inserted.error();
      second = *inserted;
      return Status::Conflict("changed my mind");
    });
    CHECK(status.code() == ErrorCode::kConflict);
    REQUIRE_FALSE(second.empty());
    Status read = store->Read([&](StoreTx& tx) { return StatusOf(tx.GetCase(second)); });
    CHECK(read.code() == ErrorCode::kNotFound);
  }
  SECTION("what it did is committed when it succeeds, and a body that sends nothing is fine") {
    REQUIRE(store->TransactPipelined([&](StoreTx& tx) {
      auto done = tx.CompleteWorkBatch({fence}, "engine-a");
      return done ? Status::Ok() : done.error();
    }).ok());
    CHECK(leased() == 0);
    CHECK(store->TransactPipelined([](StoreTx&) { return Status::Ok(); }).ok());
    // The connection is usable afterwards: no transaction was left open.
    CHECK(leased() == 0);
    CHECK(store->TransactPipelined([](StoreTx&) { return Status::Conflict("no"); }).code() ==
          ErrorCode::kConflict);
    InsertCase(*store, NewCase());
  }
  SECTION("a COMMIT sent with its last pipeline commits what came before, once") {
    Enqueue(*store, fence.case_id, 1, kT0);
    std::vector<WorkItem> mine;
    Status status = store->TransactPipelined([&](StoreTx& tx) {
      if (Status relaxed = tx.RelaxDurability(); !relaxed.ok()) return relaxed;
      tx.CommitWithLastPipeline();
      auto done = tx.CompleteWorkBatch({fence}, "engine-a");  // the COMMIT goes with this
      if (!done) return done.error();
      auto got = tx.ClaimWork("engine-b", kT0, 30s, 10);  // after it: a statement of its own
      if (!got) return got.error();
      mine = std::move(*got);
      return Status::Conflict("after the commit");  // what was committed stands
    });
    CHECK(status.code() == ErrorCode::kConflict);
    CHECK(mine.size() == 1);
    if (db.backend() == Backend::kPostgres) {
      CHECK(leased() == 0);
      CHECK(Claim(*store, "engine-c", kT0, 10).empty());  // engine-b's claim was kept too
    } else {  // no pipelines on SQLite: the COMMIT is the transaction's own, at its end
      CHECK(leased() == 1);
      CHECK(Claim(*store, "engine-c", kT0, 10).size() == 1);
    }
  }
  SECTION("a deferred update of a case changed meanwhile keeps nothing of its transaction") {
    CaseRecord stale;
    REQUIRE(store->Read([&](StoreTx& tx) {
      auto record = tx.GetCase(fence.case_id);
      if (!record) return record.error();
      stale = *record;
      return Status::Ok();
    }).ok());
    CaseRecord fresh = stale;
    REQUIRE(store->Transact([&](StoreTx& tx) { return tx.UpdateCase(fresh); }).ok());
    std::string other;
    Status status = store->TransactPipelined([&](StoreTx& tx) {
      auto inserted = tx.InsertCase(NewCase());
      if (!inserted) return inserted.error();
      other = *inserted;
      tx.DeferWrites();
      auto done = tx.CompleteWorkBatch({fence}, "engine-a");
      if (!done) return done.error();
      stale.status = "cancelled";
      return tx.UpdateCase(stale);  // queued: sent with the COMMIT, at the end
    });
    if (db.backend() == Backend::kPostgres) {
      CHECK(status.code() == ErrorCode::kUnavailable);
      CHECK_THAT(status.message(), Catch::Contains("changed meanwhile"));
    } else {
      CHECK(status.code() == ErrorCode::kConflict);
    }
    CHECK(leased() == 1);
    Status read = store->Read([&](StoreTx& tx) { return StatusOf(tx.GetCase(other)); });
    CHECK(read.code() == ErrorCode::kNotFound);
  }
}

// Deferred writes travel as one statement a table, each column's values in one array literal
// (engine/store_pipeline.cpp): every text must come back exactly, whatever it holds.
WF_STORE_TEST_CASE("deferred writes of several cases keep every text and NULL exactly",
                   "[engine][store][work]", db) {
  auto store = OpenStore(db);
  const std::vector<std::string> awkward = {
      "",     "NULL", "null", R"(say "hi")",  R"(back\slash \\ \" end\)", "{1,2}", "a, b",
      " padded ", "tab\there\nnewline", "Nguyễn Văn Ánh – ₫ 𝄞", R"({"json":"inside"})", "'"};
  std::vector<std::string> ids;
  for (size_t i = 0; i < awkward.size(); ++i) ids.push_back(InsertCase(*store, NewCase()));
  std::vector<CaseRecord> records;
  REQUIRE(store->Read([&](StoreTx& tx) {
    for (const auto& id : ids) {
      auto record = tx.GetCase(id);
      if (!record) return record.error();
      records.push_back(*record);
    }
    return Status::Ok();
  }).ok());
  std::vector<HistoryEvent> appended;
  REQUIRE(store->TransactPipelined([&](StoreTx& tx) {
    tx.DeferWrites();
    std::vector<NewWork> work;
    for (size_t i = 0; i < records.size(); ++i) {
      const std::string& text = awkward[i];
      CaseRecord& record = records[i];
      record.data = nlohmann::json{{"text", text}, {"i", i}}.dump();
      record.state = nlohmann::json{{"tokens", {text}}}.dump();
      record.status = i % 2 == 0 ? "open" : "completed";
      if (i % 2 == 0) {
        record.deadline_at = kT0 + std::chrono::seconds(i);
      } else {
        record.deadline_at.reset();
        record.ended_at = kT0 + std::chrono::seconds(i);
      }
      if (Status s = tx.UpdateCase(record); !s.ok()) return s;
      auto event = tx.AppendHistory(record.id, text.empty() ? "engine" : text, "step.succeeded",
                                    text, nlohmann::json{{"result", text}}.dump(), kT0);
      if (!event) return event.error();
      appended.push_back(*event);
      work.push_back(NewWork{record.id, "invoke", text, static_cast<int64_t>(i) + 1,
                             nlohmann::json{{"fields", {{"v", text}}}}.dump(), kT0});
    }
    return tx.InsertWork(work);
  }).ok());
  REQUIRE(store->Read([&](StoreTx& tx) {
    for (size_t i = 0; i < ids.size(); ++i) {
      const std::string& text = awkward[i];
      INFO("value " << i << ": " << text);
      auto record = tx.GetCase(ids[i]);
      REQUIRE(record.has_value());
      CHECK(nlohmann::json::parse(record->data) == nlohmann::json{{"text", text}, {"i", i}});
      CHECK(nlohmann::json::parse(record->state) == nlohmann::json{{"tokens", {text}}});
      CHECK(record->row_version == records[i].row_version);
      CHECK(record->status == (i % 2 == 0 ? "open" : "completed"));
      CHECK(record->deadline_at.has_value() == (i % 2 == 0));
      CHECK(record->ended_at.has_value() == (i % 2 == 1));
      auto history = tx.ListHistory(ids[i]);
      REQUIRE(history.has_value());
      REQUIRE(history->size() == 1);
      CHECK(history->front().actor == (text.empty() ? "engine" : text));
      CHECK(history->front().step == text);
      CHECK(history->front().details == appended[i].details);
      CHECK(history->front().hash == appended[i].hash);
      auto work = tx.ListWork(ids[i]);
      REQUIRE(work.has_value());
      REQUIRE(work->size() == 1);
      CHECK(work->front().step == text);
      CHECK(work->front().activation == static_cast<int64_t>(i) + 1);
      CHECK(nlohmann::json::parse(work->front().payload) ==
            nlohmann::json{{"fields", {{"v", text}}}});
    }
    return Status::Ok();
  }).ok());
  Result<testing::HistorySummary> verified = testing::VerifyHistory(*store);
  REQUIRE(verified.has_value());
  CHECK(verified->events == static_cast<int64_t>(awkward.size()));
}

WF_STORE_TEST_CASE("a batch of deferred updates with one case changed meanwhile keeps nothing",
                   "[engine][store][work]", db) {
  auto store = OpenStore(db);
  for (size_t rows : {size_t{2}, size_t{7}}) {  // a VALUES list, and arrays
    INFO(rows << " rows");
    std::vector<CaseRecord> records;
    for (size_t i = 0; i < rows; ++i) {
      std::string id = InsertCase(*store, NewCase());
      REQUIRE(store->Read([&](StoreTx& tx) {
        auto record = tx.GetCase(id);
        if (!record) return record.error();
        records.push_back(*record);
        return Status::Ok();
      }).ok());
    }
    CaseRecord moved_on = records.back();
    REQUIRE(store->Transact([&](StoreTx& tx) { return tx.UpdateCase(moved_on); }).ok());
    Status status = store->TransactPipelined([&](StoreTx& tx) {
      tx.DeferWrites();
      for (CaseRecord& record : records) {
        record.status = "cancelled";
        if (Status s = tx.UpdateCase(record); !s.ok()) return s;
      }
      return Status::Ok();
    });
    if (db.backend() == Backend::kPostgres) {
      CHECK(status.code() == ErrorCode::kUnavailable);
      CHECK_THAT(status.message(), Catch::Contains("changed meanwhile (" +
                                                   std::to_string(rows - 1) + " of " +
                                                   std::to_string(rows) + " rows updated)"));
    } else {
      CHECK(status.code() == ErrorCode::kConflict);
    }
    REQUIRE(store->Read([&](StoreTx& tx) {
      for (const CaseRecord& record : records) {
        auto now = tx.GetCase(record.id);
        REQUIRE(now.has_value());
        CHECK(now->status == "open");
      }
      return Status::Ok();
    }).ok());
  }
}

WF_STORE_TEST_CASE("an expired lease is claimed again and the stale owner's completion is refused",
                   "[engine][store][work]", db) {
  auto store = OpenStore(db);
  std::string case_id = InsertCase(*store, NewCase());
  Enqueue(*store, case_id, 1, kT0);
  Enqueue(*store, case_id, 1, kT0 + 1h);  // not due yet

  std::vector<WorkItem> first = Claim(*store, "engine-a", kT0, 10);
  REQUIRE(first.size() == 1);
  CHECK(first[0].attempt == 1);
  CHECK(first[0].owner == "engine-a");
  CHECK(first[0].state == WorkState::kLeased);
  CHECK(first[0].kind == "invoke");
  CHECK(nlohmann::json::parse(first[0].payload)["n"] == 0);
  CHECK(first[0].lease_until == kT0 + 30s);

  CHECK(Claim(*store, "engine-b", kT0 + 10s, 10).empty());  // lease still live
  std::vector<WorkItem> again = Claim(*store, "engine-b", kT0 + 31s, 10);
  REQUIRE(again.size() == 1);
  CHECK(again[0].id == first[0].id);
  CHECK(again[0].attempt == 2);

  auto complete = [&](const WorkItem& item, const std::string& owner) {
    bool done = false;
    REQUIRE(store->Transact([&](StoreTx& tx) {
      Result<std::vector<bool>> r =
          tx.CompleteWorkBatch({WorkFence{item.case_id, item.id, item.attempt}}, owner);
      if (!r) return r.error();
      done = r->at(0);
      return Status::Ok();
    }).ok());
    return done;
  };
  CHECK_FALSE(complete(first[0], "engine-a"));  // stale: attempt 1 was superseded
  CHECK(complete(again[0], "engine-b"));
  CHECK_FALSE(complete(again[0], "engine-b"));  // already done

  REQUIRE(store->Read([&](StoreTx& tx) {
    Result<std::vector<WorkItem>> rows = tx.ListWork(case_id);
    REQUIRE(rows.has_value());
    REQUIRE(rows->size() == 1);  // the finished row is gone
    CHECK((*rows)[0].state == WorkState::kReady);
    Result<std::optional<Timestamp>> next = tx.NextWorkDue();
    REQUIRE(next.has_value());
    CHECK(*next == std::optional<Timestamp>(kT0 + 1h));
    return Status::Ok();
  }).ok());
  CHECK(Claim(*store, "engine-b", kT0 + 2h, 10).size() == 1);
}

WF_STORE_TEST_CASE("cancelled work cannot complete, and a stale owner cannot finish a row",
                   "[engine][store][work]", db) {
  auto store = OpenStore(db);
  std::vector<WorkItem> items = CaseWithClaimedWork(*store, "engine", 3);
  const std::string case_id = items[0].case_id;

  std::vector<bool> finished;
  std::vector<bool> stale;
  REQUIRE(store->Transact([&](StoreTx& tx) {
    Result<std::int64_t> cancelled = tx.CancelWork(case_id, items[2].activation);
    REQUIRE(cancelled.has_value());
    CHECK(*cancelled == 1);
    std::vector<WorkFence> rows;
    for (const WorkItem& item : items) rows.push_back({item.case_id, item.id, item.attempt});
    stale = *tx.CompleteWorkBatch({rows[1]}, "other");
    finished = *tx.CompleteWorkBatch({rows[0], rows[2]}, "engine");
    return Status::Ok();
  }).ok());
  CHECK(stale == std::vector<bool>{false});
  CHECK(finished == std::vector<bool>{true, false});  // the cancelled row is gone

  // The row the stale owner could not finish is claimed again once its lease expires.
  CHECK(Claim(*store, "engine", kT0 + 1s, 10).empty());
  std::vector<WorkItem> again = Claim(*store, "engine", kT0 + 31s, 10);
  REQUIRE(again.size() == 1);
  CHECK(again[0].id == items[1].id);
  CHECK(again[0].attempt == 2);
}

WF_STORE_TEST_CASE(
    "a task claimed by one clerk is a conflict for another, and completion is fenced",
    "[engine][store][tasks]", db) {
  auto store = OpenStore(db);
  std::string case_id = InsertCase(*store, NewCase());
  std::int64_t task_id = 0, police_task = 0;
  REQUIRE(store->Transact([&](StoreTx& tx) {
    TaskRecord t;
    t.case_id = case_id;
    t.activation = 3;
    t.step = "review";
    t.title = "Review the birth declaration";
    t.role = "justice_officer";
    t.agency = "commune-justice";
    t.form = R"({"approved":{"type":"boolean"}})";
    t.created_at = kT0;
    t.due_at = kT0 + 24h;
    Result<std::int64_t> id = tx.InsertTask(t);
    if (!id) return id.error();
    task_id = *id;
    t.role = "police_officer";
    t.agency = "district-police";
    Result<std::int64_t> other = tx.InsertTask(t);
    if (!other) return other.error();
    police_task = *other;
    return Status::Ok();
  }).ok());
  CHECK(task_id != police_task);

  auto run = [&](const std::function<Status(StoreTx&)>& body) { return store->Transact(body); };
  CHECK(run([&](StoreTx& tx) { return tx.ClaimTask(task_id, "an.nguyen"); }).ok());
  CHECK(run([&](StoreTx& tx) { return tx.ClaimTask(task_id, "an.nguyen"); }).ok());
  Status taken = run([&](StoreTx& tx) { return tx.ClaimTask(task_id, "binh.le"); });
  CHECK(taken.code() == ErrorCode::kConflict);
  CHECK_THAT(taken.message(), Catch::Contains("claimed by an.nguyen"));
  CHECK(run([&](StoreTx& tx) { return tx.ClaimTask(999999, "binh.le"); }).code() ==
        ErrorCode::kNotFound);
  CHECK(run([&](StoreTx& tx) {
          return tx.CompleteTask(task_id, "binh.le", R"({"approved":true})", kT0 + 1h);
        }).code() == ErrorCode::kConflict);
  CHECK(run([&](StoreTx& tx) { return tx.ReleaseTask(task_id, "binh.le"); }).code() ==
        ErrorCode::kConflict);
  CHECK(run([&](StoreTx& tx) {
          return tx.CompleteTask(task_id, "an.nguyen", R"({"approved":true})", kT0 + 1h);
        }).ok());
  Status twice = run([&](StoreTx& tx) {
    return tx.CompleteTask(task_id, "an.nguyen", R"({"approved":false})", kT0 + 2h);
  });
  CHECK(twice.code() == ErrorCode::kConflict);
  CHECK_THAT(twice.message(), Catch::Contains("completed"));

  REQUIRE(store->Read([&](StoreTx& tx) {
    Result<TaskRecord> done = tx.GetTask(task_id);
    REQUIRE(done.has_value());
    CHECK(done->status == TaskStatus::kCompleted);
    CHECK(done->completed_by == std::optional<std::string>("an.nguyen"));
    CHECK(done->completed_at == std::optional<Timestamp>(kT0 + 1h));
    REQUIRE(done->values.has_value());
    CHECK(nlohmann::json::parse(*done->values)["approved"] == true);
    CHECK(done->due_at == std::optional<Timestamp>(kT0 + 24h));

    TaskFilter inbox;
    inbox.agency_roles = {{"district-police", "police_officer"}, {"x", "y"}};
    Result<std::vector<TaskRecord>> police = tx.ListTasks(inbox);
    REQUIRE(police.has_value());
    REQUIRE(police->size() == 1);
    CHECK(police->front().id == police_task);
    TaskFilter justice;
    justice.agency_roles = {{"commune-justice", "justice_officer"}};
    CHECK(tx.ListTasks(justice)->empty());  // completed tasks leave the inbox
    justice.open_only = false;
    CHECK(tx.ListTasks(justice)->size() == 1);
    return Status::Ok();
  }).ok());

  CHECK(run([&](StoreTx& tx) { return tx.EscalateTask(police_task, "police_head", kT0 + 48h); })
            .ok());
  REQUIRE(store->Transact([&](StoreTx& tx) {
    Result<std::int64_t> cancelled = tx.CancelTasks(case_id);
    REQUIRE(cancelled.has_value());
    CHECK(*cancelled == 1);
    Result<TaskRecord> escalated = tx.GetTask(police_task);
    REQUIRE(escalated.has_value());
    CHECK(escalated->role == "police_head");
    CHECK(escalated->escalated_to == std::optional<std::string>("police_head"));
    CHECK(escalated->status == TaskStatus::kCancelled);
    return Status::Ok();
  }).ok());
  CHECK(run([&](StoreTx& tx) { return tx.ClaimTask(police_task, "binh.le"); }).code() ==
        ErrorCode::kConflict);
}

WF_STORE_TEST_CASE("an incident is resolved once", "[engine][store][incidents]", db) {
  auto store = OpenStore(db);
  std::string case_id = InsertCase(*store, NewCase());
  std::int64_t id = 0;
  REQUIRE(store->Transact([&](StoreTx& tx) {
    IncidentRecord incident;
    incident.case_id = case_id;
    incident.step = "verify_mother";
    incident.message = "population-db: 503 after 5 attempts";
    incident.created_at = kT0;
    Result<std::int64_t> r = tx.InsertIncident(incident);
    if (!r) return r.error();
    id = *r;
    return Status::Ok();
  }).ok());
  REQUIRE(store->Read([&](StoreTx& tx) {
    Result<std::vector<IncidentRecord>> open = tx.ListIncidents(std::nullopt);
    REQUIRE(open.has_value());
    REQUIRE(open->size() == 1);
    CHECK(open->front().message == "population-db: 503 after 5 attempts");
    return Status::Ok();
  }).ok());
  CHECK(store->Transact([&](StoreTx& tx) { return tx.ResolveIncident(id, "an", kT0 + 1h); }).ok());
  CHECK(store->Transact([&](StoreTx& tx) { return tx.ResolveIncident(id, "an", kT0 + 2h); })
            .code() == ErrorCode::kConflict);
  REQUIRE(store->Read([&](StoreTx& tx) {
    CHECK(tx.ListIncidents(std::nullopt)->empty());
    Result<std::vector<IncidentRecord>> of_case = tx.ListIncidents(case_id);
    REQUIRE(of_case->size() == 1);
    CHECK(of_case->front().status == IncidentStatus::kResolved);
    CHECK(of_case->front().resolved_by == std::optional<std::string>("an"));
    return Status::Ok();
  }).ok());
}

WF_STORE_TEST_CASE("evidence is reused only within its period, newest first",
                   "[engine][store][evidence]", db) {
  auto store = OpenStore(db);
  std::string case_id = InsertCase(*store, NewCase());
  const std::string subject =
      EvidenceSubject("population-db", "get_citizen", R"({"citizen_id":"012345678901"})");
  CHECK(subject.size() == 64);
  CHECK(subject != EvidenceSubject("population-db", "get_citizen", R"({"citizen_id":"1"})"));
  const Timestamp now = kT0 + 200 * 24h;
  REQUIRE(store->Transact([&](StoreTx& tx) {
    for (auto [age, name] : {std::pair{100, "old"}, std::pair{10, "recent"}}) {
      EvidenceRecord e{subject, 0, "population-db", std::string(R"({"name":")") + name + "\"}",
                       now - std::chrono::hours(24 * age), case_id, "verify_mother"};
      Result<std::int64_t> id = tx.InsertEvidence(e);
      if (!id) return id.error();
    }
    return Status::Ok();
  }).ok());
  REQUIRE(store->Read([&](StoreTx& tx) {
    Result<std::optional<EvidenceRecord>> within = tx.FindEvidence(subject, now - 90 * 24h);
    REQUIRE(within.has_value());
    REQUIRE(within->has_value());
    CHECK(nlohmann::json::parse((*within)->result)["name"] == "recent");
    CHECK((*within)->verified_at == now - 10 * 24h);
    CHECK((*within)->case_id == case_id);
    Result<std::optional<EvidenceRecord>> outside = tx.FindEvidence(subject, now - 5 * 24h);
    REQUIRE(outside.has_value());
    CHECK_FALSE(outside->has_value());
    CHECK_FALSE(tx.FindEvidence("other", now - 1000 * 24h)->has_value());
    return Status::Ok();
  }).ok());
}

WF_STORE_TEST_CASE("history chains per case and a tampered row is named by case and seq",
                   "[engine][store][history]", db) {
  auto store = OpenStore(db);
  std::string a = InsertCase(*store, NewCase());
  std::string b = InsertCase(*store, NewCase());
  std::vector<HistoryEvent> appended;
  REQUIRE(store->Transact([&](StoreTx& tx) {
    for (int i = 0; i < 3; ++i) {
      Result<HistoryEvent> e = tx.AppendHistory(a, "an.nguyen", "step_completed",
                                                "step" + std::to_string(i),
                                                R"({"n":)" + std::to_string(i) + "}",
                                                kT0 + std::chrono::seconds(i));
      if (!e) return e.error();
      appended.push_back(*e);
    }
    for (int i = 0; i < 2; ++i) {
      Result<HistoryEvent> e = tx.AppendHistory(b, "engine", "started", "", "{}", kT0);
      if (!e) return e.error();
    }
    return Status::Ok();
  }).ok());
  REQUIRE(appended.size() == 3);
  CHECK(appended[0].seq == 1);
  CHECK(appended[0].prev_hash == kGenesisHash);
  CHECK(appended[2].seq == 3);
  CHECK(appended[2].prev_hash == appended[1].hash);
  CHECK(appended[1].at == "2026-01-01T00:00:01.000000Z");

  REQUIRE(store->Read([&](StoreTx& tx) {
    Result<std::vector<HistoryEvent>> listed = tx.ListHistory(a);
    REQUIRE(listed.has_value());
    REQUIRE(listed->size() == 3);
    CHECK((*listed)[2].hash == appended[2].hash);
    CHECK((*listed)[1].details == R"({"n":1})");
    return Status::Ok();
  }).ok());
  CHECK(store->Transact([&](StoreTx& tx) {
          return StatusOf(tx.AppendHistory(a, "x", "y", "", "not json", kT0));
        }).code() == ErrorCode::kInvalid);

  Result<testing::HistorySummary> ok = testing::VerifyHistory(*store);
  REQUIRE(ok.has_value());
  CHECK(ok->cases == 2);
  CHECK(ok->events == 5);
  CHECK(testing::VerifyHistory(*store, std::string("nobody")).error().code() == ErrorCode::kNotFound);

  // The database refuses to change history ...
  CHECK_THROWS(
      db.Execute("UPDATE history SET actor = 'mallory' WHERE case_id = '" + a + "' AND seq = 2"));
  CHECK_THROWS(db.Execute("DELETE FROM history WHERE case_id = '" + a + "'"));
  // ... so an attacker with the owner's rights lifts the guard first; verify still catches it.
  if (db.backend() == Backend::kPostgres) {
    db.Execute("ALTER TABLE history DISABLE TRIGGER USER");
  } else {
    db.Execute("DROP TRIGGER history_no_update");
  }
  db.Execute("UPDATE history SET actor = 'mallory' WHERE case_id = '" + a + "' AND seq = 2");

  Result<testing::HistorySummary> broken = testing::VerifyHistory(*store);
  REQUIRE_FALSE(broken.has_value());
  CHECK(broken.error().code() == ErrorCode::kHistoryBroken);
  CHECK(broken.error().message() ==
        "case " + a + ": event seq 2 does not verify (hash mismatch)");
  CHECK(testing::VerifyHistory(*store, a).error().code() == ErrorCode::kHistoryBroken);
  Result<testing::HistorySummary> other = testing::VerifyHistory(*store, b);
  REQUIRE(other.has_value());
  CHECK(other->events == 2);
}

WF_STORE_TEST_CASE("history is exported in pages across many cases", "[engine][store][history]",
                   db) {
  auto store = OpenStore(db);
  std::vector<std::string> cases;
  for (int i = 0; i < 3; ++i) cases.push_back(InsertCase(*store, NewCase()));
  REQUIRE(store->Transact([&](StoreTx& tx) {
    for (int i = 0; i < 1200; ++i) {  // more than one page
      Result<HistoryEvent> e = tx.AppendHistory(cases[i % 3], "engine", "tick", "", "{}",
                                                kT0 + std::chrono::seconds(i));
      if (!e) return e.error();
    }
    return Status::Ok();
  }).ok());
  Result<testing::HistorySummary> verified = testing::VerifyHistory(*store);
  REQUIRE(verified.has_value());
  CHECK(verified->events == 1200);
  CHECK(verified->cases == 3);
  long long since = 0;
  REQUIRE(store->ForEachHistory(std::nullopt, FormatRfc3339(kT0 + 1000s),
                                [&](const HistoryEvent&) {
                                  ++since;
                                  return Status::Ok();
                                })
              .ok());
  CHECK(since == 200);
}

WF_STORE_TEST_CASE("a waiting engine wakes up when work is enqueued", "[engine][store][wakeup]",
                   db) {
  auto engine = OpenStore(db);
  auto client = OpenStore(db);
  std::string case_id = InsertCase(*client, NewCase());
  Result<bool> idle = engine->WaitForWork(0ms);  // starts listening; nothing happened yet
  REQUIRE(idle.has_value());
  CHECK_FALSE(*idle);

  // On PostgreSQL the other store's NOTIFY arrives; on SQLite only this process's commits wake.
  Store& writer = db.backend() == Backend::kPostgres ? *client : *engine;
  Enqueue(writer, case_id, 1, kT0);
  Result<bool> woken = engine->WaitForWork(60s);
  REQUIRE(woken.has_value());
  CHECK(*woken);

  engine->Wake();
  Result<bool> poked = engine->WaitForWork(60s);
  REQUIRE(poked.has_value());
  CHECK(*poked);
}

WF_STORE_TEST_CASE("the engine lock admits one owner until its lease expires",
                   "[engine][store][lock]", db) {
  auto store = OpenStore(db);
  auto lock = [&](const std::string& owner, Timestamp now) {
    bool got = false;
    REQUIRE(store->Transact([&](StoreTx& tx) {
      Result<bool> r = tx.TryLockEngine("engine", owner, now, now + 30s);
      if (!r) return r.error();
      got = *r;
      return Status::Ok();
    }).ok());
    return got;
  };
  CHECK(lock("a", kT0));
  CHECK(lock("a", kT0 + 10s));  // renewal
  CHECK_FALSE(lock("b", kT0 + 20s));
  CHECK(lock("b", kT0 + 41s));  // a's lease ran out at 40s
  REQUIRE(store->Transact([&](StoreTx& tx) { return tx.UnlockEngine("engine", "b"); }).ok());
  CHECK(lock("a", kT0 + 42s));
}

WF_POSTGRES_TEST_CASE("the store reconnects after PostgreSQL drops its connections",
                      "[engine][store][reconnect]", db) {
  auto store = OpenStore(db, 2);
  std::string case_id = InsertCase(*store, NewCase());
  REQUIRE(store->WaitForWork(0ms).has_value());
  CHECK(db.TerminateOtherConnections() >= 2);  // the pooled and the listening connection

  // The next transactions find their connections dead and reopen them.
  for (int i = 0; i < 3; ++i) {
    Status status = store->Read([&](StoreTx& tx) { return StatusOf(tx.GetCase(case_id)); });
    INFO(status.message());
    CHECK(status.code() == ErrorCode::kOk);
  }
  Enqueue(*store, case_id, 1, kT0);

  // The listener notices the loss, listens again and reports a (possibly spurious) wake-up.
  Result<bool> after = store->WaitForWork(0ms);
  REQUIRE(after.has_value());
  CHECK(*after);
  for (int i = 0; i < 5 && *store->WaitForWork(0ms); ++i) {
  }
  REQUIRE_FALSE(*store->WaitForWork(0ms));
  // Work enqueued by another process (here: another store) wakes it through NOTIFY again.
  auto client = OpenStore(db, 1);
  Enqueue(*client, case_id, 1, kT0);
  Result<bool> woken = store->WaitForWork(60s);
  REQUIRE(woken.has_value());
  CHECK(*woken);

  // A transaction that loses its connection midway fails as unavailable, not internal.
  Status lost = store->Transact([&](StoreTx& tx) {
    db.TerminateOtherConnections();
    return StatusOf(tx.GetCase(case_id));
  });
  CHECK(lost.code() == ErrorCode::kUnavailable);
  CHECK(store->Read([&](StoreTx& tx) { return StatusOf(tx.GetCase(case_id)); }).ok());
}

}  // namespace wf::engine

namespace wf::engine {
namespace {

WF_STORE_TEST_CASE("history ranges page by case and seq with time bounds",
                   "[engine][store][history]", db) {
  auto store = OpenStore(db);
  std::vector<std::string> cases;
  for (int i = 0; i < 3; ++i) cases.push_back(InsertCase(*store, NewCase()));
  REQUIRE(store->Transact([&](StoreTx& tx) {
    for (int i = 0; i < 2500; ++i) {  // pages of 1,000 that end inside a case
      Result<HistoryEvent> e = tx.AppendHistory(cases[i % 3], "engine", "tick", "", "{}",
                                                kT0 + std::chrono::seconds(i));
      if (!e) return e.error();
    }
    return Status::Ok();
  }).ok());
  auto collect = [&](const HistoryRange& range) {
    std::vector<HistoryEvent> seen;
    REQUIRE(store->ForEachHistoryIn(range, [&](const HistoryEvent& e) {
      seen.push_back(e);
      return Status::Ok();
    }).ok());
    return seen;
  };
  std::vector<HistoryEvent> all = collect({});
  REQUIRE(all.size() == 2500);
  ChainVerifier verifier;
  for (const HistoryEvent& e : all) CHECK_FALSE(verifier.Feed(e).has_value());
  CHECK(verifier.cases() == 3);
  HistoryRange one;
  one.case_id = cases[1];
  CHECK(collect(one).size() == 833);
  HistoryRange window;
  window.since_at = FormatRfc3339(kT0 + 1000s);
  window.until_at = FormatRfc3339(kT0 + 2200s);
  CHECK(collect(window).size() == 1200);
  window.case_id = cases[0];
  CHECK(collect(window).size() == 400);
}

WF_STORE_TEST_CASE("history rows leave only through the archive door, and only of an ended case",
                   "[engine][store][history][archive]", db) {
  auto store = OpenStore(db);
  std::string id = InsertCase(*store, NewCase());
  HistoryEvent head;
  REQUIRE(store
              ->Transact([&](StoreTx& tx) {
                for (int i = 0; i < 3; ++i) {
                  Result<HistoryEvent> e =
                      tx.AppendHistory(id, "engine", history_action::kStepEntered, "s", "{}", kT0);
                  if (!e) return e.error();
                  head = *e;
                }
                return Status::Ok();
              })
              .ok());
  ArchivedChain chain{{id, head.seq, head.hash}, "a.jsonl", "abc", kT0};

  // An open case is refused; nothing changes.
  Status open = store->Transact([&](StoreTx& tx) { return tx.RemoveArchivedCase(chain); });
  CHECK(open.code() == ErrorCode::kConflict);
  db.Execute("UPDATE cases SET status = 'completed', ended_at = 1 WHERE id = '" + id + "'");
  // A head that is not the newest event is refused.
  ArchivedChain stale = chain;
  stale.head.seq = 2;
  CHECK(store->Transact([&](StoreTx& tx) { return tx.RemoveArchivedCase(stale); }).code() ==
        ErrorCode::kConflict);
  // Recording a head alone does not open the door: the `archiving` mark is needed too.
  db.Execute("INSERT INTO archived_chains VALUES ('" + id + "', 3, 'h', 'x', 'y', 0)");
  CHECK_THROWS(db.Execute("DELETE FROM history WHERE case_id = '" + id + "'"));
  CHECK_THROWS(db.Execute("UPDATE archived_chains SET seq = 9"));
  CHECK_THROWS(db.Execute("DELETE FROM archived_chains"));
  CHECK(db.QueryInt("SELECT COUNT(*) FROM history WHERE case_id = '" + id + "'") == 3);

  std::string other = InsertCase(*store, NewCase());
  REQUIRE(store
              ->Transact([&](StoreTx& tx) {
                return StatusOf(tx.AppendHistory(other, "engine", history_action::kCaseStarted, "", "{}", kT0));
              })
              .ok());
  db.Execute("UPDATE cases SET status = 'refused', ended_at = 5 WHERE id = '" + other + "'");
  REQUIRE(store
              ->Read([&](StoreTx& tx) {
                Result<std::vector<CaseRecord>> ended = tx.ListEndedCases(FromMicros(10), "", 10);
                REQUIRE(ended.has_value());
                CHECK(ended->size() == 2);
                Result<std::vector<CaseRecord>> earlier = tx.ListEndedCases(FromMicros(5), "", 10);
                REQUIRE(earlier.has_value());
                CHECK(earlier->size() == 1);
                return Status::Ok();
              })
              .ok());
  Result<HistoryEvent> other_head = HistoryEvent{};
  REQUIRE(store
              ->Read([&](StoreTx& tx) {
                auto list = tx.ListHistory(other);
                REQUIRE(list.has_value());
                other_head = list->back();
                return Status::Ok();
              })
              .ok());
  ArchivedChain removable{{other, other_head->seq, other_head->hash}, "a.jsonl", "abc", kT0};
  REQUIRE(store->Transact([&](StoreTx& tx) { return tx.RemoveArchivedCase(removable); }).ok());
  CHECK(db.QueryInt("SELECT COUNT(*) FROM history WHERE case_id = '" + other + "'") == 0);
  CHECK(db.QueryInt("SELECT COUNT(*) FROM cases WHERE id = '" + other + "'") == 0);
  CHECK(db.QueryInt("SELECT COUNT(*) FROM archiving") == 0);
  REQUIRE(store
              ->Read([&](StoreTx& tx) {
                auto kept = tx.GetArchivedChain(other);
                REQUIRE(kept.has_value());
                REQUIRE(kept->has_value());
                CHECK((*kept)->head.hash == other_head->hash);
                return Status::Ok();
              })
              .ok());
  std::vector<std::pair<ChainHead, bool>> heads;
  REQUIRE(store
              ->ForEachChainHead([&](const ChainHead& h, bool archived) {
                heads.emplace_back(h, archived);
                return Status::Ok();
              })
              .ok());
  REQUIRE(heads.size() == 3);  // the live chain, then two archived heads (one recorded by hand)
  CHECK(heads[0].first.case_id == id);
  CHECK(heads[0].first.seq == 3);
  CHECK_FALSE(heads[0].second);
  CHECK(heads[1].second);
}

// The database's own check on history (migration 13 writes its role tests out in the trigger's
// WHEN clause): a login records history under its own name, unless it holds wf_engine or
// wf_delegate. A login the trigger lets through still meets row-level security, which only
// wf_engine passes here.
WF_POSTGRES_TEST_CASE("a login records history as someone else only when it holds a wf group",
                      "[engine][store][history]", db) {
  auto store = OpenStore(db);
  const std::string id = InsertCase(*store, NewCase());
  const std::string login = "wf_t_" + testing::RandomName(10);
  db.Execute("CREATE ROLE " + login);
  db.Execute("GRANT SELECT, INSERT ON history TO " + login);
  auto append = [&](const std::string& actor) {
    return "INSERT INTO history (case_id, seq, at, actor, action, step, details, prev_hash,"
           " hash, login) VALUES ('" +
           id + "', 99, 'now', '" + actor + "', 'note', '', '{}', '', '', session_user)";
  };
  auto as = [&](const std::string& grant) {
    db.Execute("RESET SESSION AUTHORIZATION");
    if (!grant.empty()) db.Execute("GRANT " + grant + " TO " + login);
    db.Execute("SET SESSION AUTHORIZATION " + login);
  };
  as("");
  CHECK_THROWS_WITH(db.Execute(append("somebody")),
                    Catch::Contains("login " + login + " may not record history as somebody"));
  CHECK_THROWS_WITH(db.Execute(append(login)), Catch::Contains("row-level security"));
  as("wf_delegate");
  CHECK_THROWS_WITH(db.Execute(append("somebody")), Catch::Contains("row-level security"));
  as("wf_engine");
  CHECK_NOTHROW(db.Execute(append("somebody")));
  db.Execute("RESET SESSION AUTHORIZATION");
  CHECK(db.QueryInt("SELECT count(*) FROM history WHERE seq = 99 AND login = '" + login + "'") ==
        1);
  db.Execute("DROP OWNED BY " + login);
  db.Execute("DROP ROLE " + login);
}

}  // namespace
}  // namespace wf::engine
