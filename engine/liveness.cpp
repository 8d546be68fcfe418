#include "engine/liveness.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <vector>

namespace wf::engine {

namespace {

// The dead-engine test's period: together with a claim's own latency, the take-over time.
constexpr std::chrono::milliseconds kTestPeriod{1000};

}  // namespace

LeaseKeeper::LeaseKeeper(Store& store, std::string owner, std::chrono::seconds lease)
    : store_(store), owner_(std::move(owner)), lease_(lease) {}

std::chrono::milliseconds LeaseKeeper::tick() const {
  auto renewal = std::chrono::duration_cast<std::chrono::milliseconds>(lease_) / 3;
  return std::clamp(renewal, std::chrono::milliseconds(100), kTestPeriod);
}

Status LeaseKeeper::Start() {
  if (Status held = store_.HoldLiveness(owner_); !held.ok()) return held;
  Status registered =
      store_.Transact([&](StoreTx& tx) { return tx.RegisterEngine(owner_, Now()); });
  if (!registered.ok()) {
    store_.ReleaseLiveness(owner_);
    return registered;
  }
  started_ = true;
  return Status::Ok();
}

void LeaseKeeper::Stop() {
  if (!started_) return;
  started_ = false;
  // Unregistered before the token goes, so nobody takes a live engine for a dead one. If this
  // fails (the database away), the others find the token gone and clean up.
  Status forgotten = store_.Transact([&](StoreTx& tx) { return tx.UnregisterEngine(owner_); });
  if (!forgotten.ok()) spdlog::warn("unregistering the engine failed: {}", forgotten.message());
  store_.ReleaseLiveness(owner_);
}

void LeaseKeeper::Hold(const WorkItem& item) {
  std::lock_guard lock(held_mu_);
  held_[{item.case_id, item.id}] = item.attempt;
}

void LeaseKeeper::Drop(const std::string& case_id, std::int64_t id) {
  std::lock_guard lock(held_mu_);
  held_.erase({case_id, id});
}

KeeperRound LeaseKeeper::Tick() {
  KeeperRound round;
  const auto now = std::chrono::steady_clock::now();
  if (!last_renewal_ || now - *last_renewal_ >= lease_ / 3) {
    // Renewal first: it is what keeps this engine's own calls from running twice.
    round.status = Renew(round);
    if (round.status.ok()) last_renewal_ = now;
  }
  if (!last_test_ || now - *last_test_ >= kTestPeriod) {
    Status tested = TakeOverDead(round);
    if (tested.ok()) last_test_ = now;
    if (round.status.ok()) round.status = tested;
  }
  return round;
}

Status LeaseKeeper::Renew(KeeperRound& round) {
  std::vector<WorkFence> fences;
  {
    std::lock_guard lock(held_mu_);
    for (const auto& [key, attempt] : held_) fences.push_back({key.first, key.second, attempt});
  }
  if (fences.empty()) return Status::Ok();
  std::vector<bool> renewed;
  Status status = store_.Transact([&](StoreTx& tx) {
    auto got = tx.RenewLeases(fences, owner_, Now() + lease_);
    if (!got) return got.error();
    renewed = std::move(*got);
    return Status::Ok();
  });
  if (!status.ok()) return status;
  std::lock_guard lock(held_mu_);
  for (size_t i = 0; i < fences.size(); ++i) {
    if (renewed[i]) {
      ++round.renewed;
      continue;
    }
    auto it = held_.find({fences[i].case_id, fences[i].id});
    if (it == held_.end() || it->second != fences[i].attempt) continue;  // dropped meanwhile
    // Another engine took it (this one was taken for dead, or stalled past its lease), or the
    // work was cancelled: the outcome will be fenced out at commit. Stop renewing it.
    spdlog::warn("case {}: the lease on work {} (attempt {}) was lost while carrying it",
                 fences[i].case_id, fences[i].id, fences[i].attempt);
    held_.erase(it);
    ++round.lost;
  }
  return Status::Ok();
}

Status LeaseKeeper::TakeOverDead(KeeperRound& round) {
  // The token first: after a lost connection it is taken again, and a take-over of this engine
  // meanwhile has removed its registration, which is written back.
  if (Status held = store_.HoldLiveness(owner_); !held.ok()) return held;
  std::vector<std::string> engines;
  Status listed = store_.Read([&](StoreTx& tx) {
    auto got = tx.ListEngines();
    if (!got) return got.error();
    engines = std::move(*got);
    return Status::Ok();
  });
  if (!listed.ok()) return listed;
  if (std::find(engines.begin(), engines.end(), owner_) == engines.end()) {
    Status registered =
        store_.Transact([&](StoreTx& tx) { return tx.RegisterEngine(owner_, Now()); });
    if (!registered.ok()) return registered;
  }
  for (const std::string& other : engines) {
    if (other == owner_) continue;
    auto alive = store_.IsAlive(other);
    if (!alive) return alive.error();
    if (*alive) continue;
    std::int64_t released = 0;
    Status taken = store_.Transact([&](StoreTx& tx) {
      auto got = tx.TakeOverEngine(other, Now());
      if (!got) return got.error();
      released = *got;
      return Status::Ok();
    });
    if (!taken.ok()) return taken;
    spdlog::info("engine {} is dead: {} of its work rows taken over", other, released);
    ++round.dead_engines;
    round.taken_over += released;
  }
  return Status::Ok();
}

Result<bool> LeaseKeeper::BreakDeadLock(const std::string& name) {
  std::optional<std::string> holder;
  bool registered = false;
  Status read = store_.Read([&](StoreTx& tx) {
    auto got = tx.EngineLockHolder(name);
    if (!got) return got.error();
    holder = *got;
    auto engines = tx.ListEngines();
    if (!engines) return engines.error();
    registered = holder && std::find(engines->begin(), engines->end(), *holder) != engines->end();
    return Status::Ok();
  });
  if (!read.ok()) return read;
  if (!holder || !registered || *holder == owner_) return false;
  auto alive = store_.IsAlive(*holder);
  if (!alive) return alive.error();
  if (*alive) return false;
  Status broken = store_.Transact([&](StoreTx& tx) { return tx.UnlockEngine(name, *holder); });
  if (!broken.ok()) return broken;
  spdlog::info("engine {} is dead: its engine lock is broken", *holder);
  return true;
}

}  // namespace wf::engine
