// Lease renewal and liveness (engine/liveness.*, the store's liveness tokens and engine rows) on
// both stores. A dead engine is a Store destroyed without unregistering: its token goes as the
// kernel or the server drops it when a process dies. No assertion depends on timing: what takes
// a moment (a PostgreSQL backend ending after its client left) is waited for with a deadline.

#include "engine/liveness.hpp"

#include <chrono>
#include <functional>
#include <thread>

#include <catch2/catch.hpp>

#include "engine/store.hpp"
#include "tests/support/test_database.hpp"

namespace wf::engine {
namespace {

using namespace std::chrono_literals;

constexpr auto kDeadline = 60s;  // only reached when a test fails

std::unique_ptr<Store> OpenStore(const testing::TestDatabase& db) {
  Result<std::unique_ptr<Store>> store = Store::Open(db.url(), 2);
  if (!store) FAIL("Store::Open(" << db.url() << "): " << store.error().message());
  return std::move(*store);
}

bool Eventually(const std::function<bool()>& done) {
  const auto give_up = std::chrono::steady_clock::now() + kDeadline;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= give_up) return false;
    std::this_thread::sleep_for(20ms);
  }
  return true;
}

// A case with `count` invoke rows due now; returns the case id.
std::string CaseWithWork(Store& store, int count) {
  CaseRecord c;
  c.procedure = "look-up";
  c.version = 1;
  c.data = "{}";
  c.state = "{}";
  c.started_at = c.updated_at = Now();
  std::string id;
  REQUIRE(store
              .Transact([&](StoreTx& tx) {
                auto inserted = tx.InsertCase(c);
                if (!inserted) return inserted.error();
                id = *inserted;
                std::vector<NewWork> work;
                for (int i = 0; i < count; ++i) {
                  work.push_back(
                      NewWork{id, "invoke", "step" + std::to_string(i), i, "{}", Now() - 1s});
                }
                return tx.InsertWork(work);
              })
              .ok());
  return id;
}

std::vector<WorkItem> Claim(Store& store, const std::string& owner, Timestamp now,
                            std::chrono::microseconds lease) {
  std::vector<WorkItem> items;
  REQUIRE(store
              .Transact([&](StoreTx& tx) {
                auto claimed = tx.ClaimWork(owner, now, lease, 100);
                if (!claimed) return claimed.error();
                items = std::move(*claimed);
                return Status::Ok();
              })
              .ok());
  return items;
}

std::vector<bool> Renew(Store& store, const std::vector<WorkFence>& rows, const std::string& owner,
                        Timestamp until) {
  std::vector<bool> renewed;
  REQUIRE(store
              .Transact([&](StoreTx& tx) {
                auto got = tx.RenewLeases(rows, owner, until);
                if (!got) return got.error();
                renewed = std::move(*got);
                return Status::Ok();
              })
              .ok());
  return renewed;
}

std::vector<std::string> Engines(Store& store) {
  std::vector<std::string> owners;
  REQUIRE(store
              .Read([&](StoreTx& tx) {
                auto got = tx.ListEngines();
                if (!got) return got.error();
                owners = std::move(*got);
                return Status::Ok();
              })
              .ok());
  return owners;
}

bool Alive(Store& store, const std::string& owner) {
  auto alive = store.IsAlive(owner);
  INFO((alive ? "" : alive.error().message()));
  REQUIRE(alive.has_value());
  return *alive;
}

WorkFence FenceOf(const WorkItem& item) { return {item.case_id, item.id, item.attempt}; }

}  // namespace

WF_STORE_TEST_CASE("a lease is renewed only by its owner and only at its attempt",
                   "[engine][lease]", db) {
  auto store = OpenStore(db);
  CaseWithWork(*store, 2);
  const Timestamp t0 = Now();
  std::vector<WorkItem> rows = Claim(*store, "engine-a", t0, 30s);
  REQUIRE(rows.size() == 2);

  WorkFence wrong_attempt = FenceOf(rows[1]);
  ++wrong_attempt.attempt;
  CHECK(Renew(*store, {FenceOf(rows[0]), wrong_attempt}, "engine-a", t0 + 2h) ==
        std::vector<bool>{true, false});
  CHECK(Renew(*store, {FenceOf(rows[0])}, "engine-b", t0 + 3h) == std::vector<bool>{false});

  // An hour on, only the row that was not renewed is claimable again.
  std::vector<WorkItem> taken = Claim(*store, "engine-b", t0 + 1h, 30s);
  REQUIRE(taken.size() == 1);
  CHECK(taken[0].id == rows[1].id);
  CHECK(taken[0].attempt == 2);
  // Its former holder can no longer renew it: the lease is gone.
  CHECK(Renew(*store, {FenceOf(rows[1])}, "engine-a", t0 + 2h) == std::vector<bool>{false});
}

WF_STORE_TEST_CASE("an engine's liveness token lives exactly as long as its holder",
                   "[engine][liveness]", db) {
  auto tester = OpenStore(db);
  auto holder = OpenStore(db);
  REQUIRE(holder->HoldLiveness("engine-a").ok());
  REQUIRE(holder->HoldLiveness("engine-a").ok());  // checked, still held
  CHECK(Alive(*tester, "engine-a"));
  CHECK(Alive(*holder, "engine-a"));  // its own token counts too
  CHECK(Alive(*tester, "engine-a"));  // testing did not take it
  CHECK_FALSE(Alive(*tester, "never-started"));
  // A second engine of the same name is refused while the first lives.
  CHECK(tester->HoldLiveness("engine-a").code() == ErrorCode::kConflict);

  holder.reset();  // the process ends without a word: the token goes with it
  REQUIRE(Eventually([&] { return !Alive(*tester, "engine-a"); }));
  CHECK(tester->HoldLiveness("engine-a").ok());
  tester->ReleaseLiveness("engine-a");
}

WF_STORE_TEST_CASE("a dead engine's rows become claimable at once and stay fenced",
                   "[engine][liveness][lease]", db) {
  auto heir_store = OpenStore(db);
  auto ghost = OpenStore(db);
  std::string case_id = CaseWithWork(*ghost, 2);
  // The ghost: token, registration, rows leased for an hour.
  REQUIRE(ghost->HoldLiveness("ghost").ok());
  REQUIRE(ghost->Transact([](StoreTx& tx) { return tx.RegisterEngine("ghost", Now()); }).ok());
  std::vector<WorkItem> held = Claim(*ghost, "ghost", Now(), 1h);
  REQUIRE(held.size() == 2);

  LeaseKeeper heir(*heir_store, "heir", 120s);
  REQUIRE(heir.Start().ok());
  KeeperRound round = heir.Tick();
  REQUIRE(round.status.ok());
  CHECK(round.dead_engines == 0);  // the ghost lives: its rows stay its own
  CHECK(Claim(*heir_store, "heir", Now(), 120s).empty());

  ghost.reset();  // SIGKILL, as far as the others can tell
  int64_t taken_over = 0;
  REQUIRE(Eventually([&] {
    KeeperRound next = heir.Tick();
    taken_over += next.taken_over;
    return next.dead_engines > 0;
  }));
  CHECK(taken_over == 2);
  CHECK(Engines(*heir_store) == std::vector<std::string>{"heir"});

  std::vector<WorkItem> claimed = Claim(*heir_store, "heir", Now(), 120s);
  REQUIRE(claimed.size() == 2);
  CHECK(claimed[0].attempt == 2);
  // Whatever the ghost might still try to commit is fenced out.
  bool done = true;
  REQUIRE(heir_store
              ->Transact([&](StoreTx& tx) {
                auto r = tx.CompleteWorkBatch({FenceOf(held[0])}, "ghost");
                if (!r) return r.error();
                done = r->at(0);
                return Status::Ok();
              })
              .ok());
  CHECK_FALSE(done);
  heir.Stop();
  CHECK(Engines(*heir_store).empty());
}

WF_STORE_TEST_CASE("a keeper renews the rows it holds and notes a lease it lost",
                   "[engine][liveness][lease]", db) {
  auto store = OpenStore(db);
  CaseWithWork(*store, 1);
  LeaseKeeper keeper(*store, "engine-a", 1s);
  REQUIRE(keeper.Start().ok());
  std::vector<WorkItem> rows = Claim(*store, "engine-a", Now(), 1s);
  REQUIRE(rows.size() == 1);
  keeper.Hold(rows[0]);
  KeeperRound round = keeper.Tick();
  REQUIRE(round.status.ok());
  CHECK(round.renewed == 1);

  // Another engine takes the row (as if this one had stalled past its lease).
  REQUIRE(Claim(*store, "engine-b", Now() + 1h, 30s).size() == 1);
  int64_t lost = 0;
  REQUIRE(Eventually([&] {
    lost += keeper.Tick().lost;
    return lost > 0;
  }));
  CHECK(lost == 1);
  // Lost rows are no longer renewed.
  CHECK(keeper.Tick().renewed == 0);
  keeper.Drop(rows[0].case_id, rows[0].id);
  keeper.Stop();
}

}  // namespace wf::engine
