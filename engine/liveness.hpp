#pragma once

// The engine's side of leases (DESIGN.md "Reliability targets": a dead engine's work moves on
// within 5 s whatever the lease length; a call longer than the lease runs once).
//
// - Renewal: the rows an engine is carrying have their leases extended every lease/3 (one
//   fenced UPDATE for all of them), so a department call may take longer than the lease and its
//   outcome still commits, once. A row whose renewal finds the lease gone is noted as lost and
//   no longer renewed; its outcome will be fenced out at commit.
// - Liveness: each engine holds a token that dies with its process (Store::HoldLiveness) and is
//   registered in the `engines` table. About every second (and once at start-up) it tests the
//   token of every other registered engine; the work of a dead one becomes claimable at once
//   (StoreTx::TakeOverEngine). The lease length then only bounds how long an engine that is alive
//   but stuck (its renewals stopped) keeps its rows.

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <utility>

#include "engine/store.hpp"
#include "workflows/status.hpp"

namespace wf::engine {

// What one LeaseKeeper::Tick did.
struct KeeperRound {
  Status status;                // the first failure (the database away); the round goes on after it
  std::int64_t renewed = 0;     // leases extended
  std::int64_t lost = 0;        // rows whose lease was found gone
  int dead_engines = 0;         // other engines found dead
  std::int64_t taken_over = 0;  // their rows made claimable now
};

// One engine's liveness token, registration and lease renewals. Start, Tick, BreakDeadLock and
// Stop block on the database and run on one database thread at a time; Hold and Drop are
// thread-safe and never block on the database.
class LeaseKeeper {
 public:
  // `store` must outlive the keeper; `owner` is the engine's lease owner.
  LeaseKeeper(Store& store, std::string owner, std::chrono::seconds lease);

  // How often Tick should run: the renewal interval (lease/3), at most 1 s, the dead-engine
  // test's period.
  std::chrono::milliseconds tick() const;

  // Takes the liveness token and registers the engine. kConflict when a live engine of the same
  // owner name exists; kUnavailable when the database cannot be reached.
  Status Start();
  // Unregisters the engine and gives its token up. Idempotent.
  void Stop();

  // The row is being carried from now until Drop: its lease is renewed meanwhile.
  void Hold(const WorkItem& item);
  void Drop(const std::string& case_id, std::int64_t id);

  // Keeps the token (taken again after a lost connection) and the registration; tests the other
  // engines when a second has passed since the last test (at once on the first round) and takes
  // over the work of the dead ones; renews the held rows' leases when lease/3 has passed.
  KeeperRound Tick();

  // For the SQLite engine lock (StoreTx::TryLockEngine): when the lock `name` is held by a
  // registered engine whose token is gone, removes the lock and returns true; false when its
  // holder is alive or unknown (not registered: it keeps the lock until the lock expires).
  Result<bool> BreakDeadLock(const std::string& name);

 private:
  Status TakeOverDead(KeeperRound& round);
  Status Renew(KeeperRound& round);

  Store& store_;
  const std::string owner_;
  const std::chrono::seconds lease_;
  bool started_ = false;
  std::optional<std::chrono::steady_clock::time_point> last_test_, last_renewal_;

  std::mutex held_mu_;
  std::map<std::pair<std::string, std::int64_t>, int> held_;  // (case, id) -> attempt
};

// A row's lease is renewed for as long as this lives (the row's Carry).
class HeldLease {
 public:
  HeldLease(LeaseKeeper& keeper, const WorkItem& item)
      : keeper_(keeper), case_id_(item.case_id), id_(item.id) {
    keeper_.Hold(item);
  }
  ~HeldLease() { keeper_.Drop(case_id_, id_); }
  HeldLease(const HeldLease&) = delete;
  HeldLease& operator=(const HeldLease&) = delete;

 private:
  LeaseKeeper& keeper_;
  std::string case_id_;
  std::int64_t id_;
};

}  // namespace wf::engine
