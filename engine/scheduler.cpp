#include "engine/scheduler.hpp"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <deque>
#include <exception>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <thread>
#include <vector>

#include "adapters/asio.hpp"
#include "adapters/noop.hpp"
#include "engine/acts.hpp"
#include "engine/batch_commit.hpp"
#include "engine/failed_work.hpp"
#include "engine/federation.hpp"
#include "engine/liveness.hpp"
#include "workflows/json_limits.hpp"
#include "workflows/json_text.hpp"
#include "workflows/loader.hpp"

namespace wf::engine {

namespace {

std::string DefaultOwner() {
  char host[256] = {0};
  gethostname(host, sizeof(host) - 1);
  std::random_device random;
  return std::string(host) + ":" + std::to_string(getpid()) + ":" +
         std::to_string(random() % 100000);
}

EngineOptions WithOwner(EngineOptions options) {
  if (options.owner.empty()) options.owner = DefaultOwner();
  return options;
}

Event EventFromOutcome(int64_t activation, const adapters::StepOutcome& outcome, int attempt) {
  using Kind = adapters::StepOutcome::Kind;
  switch (outcome.kind) {
    case Kind::kDone:
      return event::StepSucceeded{activation, outcome.result, std::nullopt};
    case Kind::kAccepted:
      return event::StepAccepted{activation, outcome.result};
    case Kind::kRetry:
      return event::StepFailed{activation, outcome.message, true, attempt};
    case Kind::kFailed:
      break;
  }
  return event::StepFailed{activation, outcome.message, false, attempt};
}

}  // namespace

struct Engine::Impl {
  Impl(Runtime& r, const adapters::Registry& a, EngineOptions o)
      : runtime(r),
        registry(a),
        options(WithOwner(std::move(o))),
        keeper(r.store(), options.owner, options.lease),
        db_pool(static_cast<size_t>(std::max(1, options.db_threads) + 3)),
        wake(io),
        keeper_wake(io) {
    if (r.store().backend() == Backend::kPostgres) {
      acts = std::make_unique<ActApplier>(r.store(), r.deployment(), r.evaluator());
    }
    for (int i = 0; i < std::max(1, options.db_threads); ++i) {
      committers.push_back(std::make_unique<Shard>(io, runtime, options));
    }
  }

  Runtime& runtime;
  const adapters::Registry& registry;
  EngineOptions options;
  LeaseKeeper keeper;  // liveness token, lease renewals, dead engines' work (engine/liveness.hpp)
  // Clerks' acts (PostgreSQL; engine/acts.hpp), looked for whenever the main loop runs out of
  // work to claim, at most every kActsEvery: the NOTIFY after an act's commit wakes the loop.
  std::unique_ptr<ActApplier> acts;
  static constexpr std::chrono::milliseconds kActsEvery{20};
  std::chrono::steady_clock::time_point acts_checked{};
  adapters::NoopAdapter noop;
  // Answers owed to other deployments (engine/federation.hpp), looked for every kCourierEvery.
  CallbackCourier courier{runtime.store(), runtime.deployment()};
  static constexpr std::chrono::milliseconds kCourierEvery{100};

  asio::io_context io{1};
  asio::thread_pool db_pool;
  asio::steady_timer wake;         // the main loop sleeps on it; cancelled to wake it
  asio::steady_timer keeper_wake;  // the Keeper sleeps on it
  // Outcomes are committed by one committer per database thread, each owning the cases that hash
  // to it, so that no two of this engine's transactions ever wait for the same case row.
  struct Shard {
    Shard(asio::io_context& io, Runtime& runtime, const EngineOptions& options)
        : wake(io), committer(runtime, options.owner, options.lease) {}
    std::deque<Completion> done;  // outcomes waiting to be committed (io thread only)
    asio::steady_timer wake;      // the committer sleeps on it
    BatchCommitter committer;     // one batch at a time, on a database thread
  };
  std::vector<std::unique_ptr<Shard>> committers;

  Shard& ShardOf(const std::string& case_id) {
    return *committers[std::hash<std::string>{}(case_id) % committers.size()];
  }
  void WakeCommitters() {
    for (auto& shard : committers) shard->wake.cancel();
  }

  std::atomic<bool> stopping{false};
  bool listener_done = false;
  int in_flight = 0;  // claimed and not yet committed (io thread only)
  // The rows being carried out (io thread only), by (case, id).
  std::set<std::pair<std::string, int64_t>> carrying;
  // A commit that handed work back may have committed although it reported failure (the
  // connection dropped during COMMIT): rows leased to this engine may then be nobody's.
  bool adopt_orphans = false;
  Status final_status;

  mutable std::mutex stats_mutex;
  EngineStats stats;

  void Count(int64_t EngineStats::*field, int64_t n = 1) {
    std::lock_guard lock(stats_mutex);
    stats.*field += n;
  }

  // Runs blocking `f` on the database pool; co_await the result to resume on the I/O thread.
  // Not a coroutine itself: g++ 12 mishandles non-trivial temporaries passed by value into a
  // coroutine inside a co_await expression (a double destruction), so callers hand over a
  // named lambda and this plain function moves it into co_spawn.
  template <typename F>
  asio::awaitable<std::invoke_result_t<F>> OnDb(F&& f) {
    using R = std::invoke_result_t<F>;
    return asio::co_spawn(
        db_pool.get_executor(),
        [work = std::forward<F>(f)]() mutable -> asio::awaitable<R> { co_return work(); },
        asio::use_awaitable);
  }

  asio::awaitable<void> Sleep(asio::steady_timer& timer, std::chrono::milliseconds duration) {
    timer.expires_after(duration);
    boost::system::error_code ec;
    co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }

  // How long the SQLite engine lock lasts unless renewed: short, so that an engine started after
  // one was killed waits at most this long for the dead one's lock.
  std::chrono::seconds LockTtl() const {
    return std::min<std::chrono::seconds>(options.lease, std::chrono::seconds(15));
  }

  // Takes the SQLite engine lock at start-up, waiting out the lock of an engine that died
  // (it expires after LockTtl); a live engine keeps renewing it, so then kConflict.
  // The lock of an engine whose liveness token is gone is broken at once.
  Status TakeSqliteLock() {
    auto give_up = std::chrono::steady_clock::now() + LockTtl() + std::chrono::seconds(1);
    for (;;) {
      Status status = LockSqlite(true);
      if (status.code() != ErrorCode::kConflict || std::chrono::steady_clock::now() >= give_up) {
        return status;
      }
      auto broken = keeper.BreakDeadLock("engine");
      if (broken && *broken) continue;
      std::this_thread::sleep_for(std::chrono::milliseconds(250));
    }
  }

  Status LockSqlite(bool take) {
    if (runtime.store().backend() != Backend::kSqlite) return Status::Ok();
    std::optional<bool> locked;
    Status status = runtime.store().Transact([&](StoreTx& tx) {
      if (!take) return tx.UnlockEngine("engine", options.owner);
      Timestamp now = Now();
      auto got = tx.TryLockEngine("engine", options.owner, now, now + LockTtl());
      if (!got) return got.error();
      locked = *got;
      return Status::Ok();
    });
    if (!status.ok()) return status;
    if (take && !*locked) {
      return Status::Conflict("another wf engine is running on " + runtime.store().redacted_url() +
                              "; SQLite runs one engine at a time (use PostgreSQL to run several)");
    }
    return Status::Ok();
  }

  asio::awaitable<void> MainLoop() {
    auto backoff = std::chrono::milliseconds(100);
    auto last_lock = std::chrono::steady_clock::now();
    while (!stopping) {
      if (std::chrono::steady_clock::now() - last_lock > LockTtl() / 3) {
        Status renewed = co_await OnDb([this] { return LockSqlite(true); });
        if (renewed.code() == ErrorCode::kConflict) {
          final_status = renewed;
          break;
        }
        last_lock = std::chrono::steady_clock::now();
      }
      if (adopt_orphans) co_await AdoptOrphans();
      int room = options.concurrency - in_flight;
      std::vector<WorkItem> claimed;
      if (room > 0) {
        int limit = std::min(room, options.claim_batch);
        auto result = co_await OnDb([this, limit] {
          std::vector<WorkItem> items;
          // BEGIN, the relaxed durability, the claim and COMMIT: one round trip.
          Status s = runtime.store().TransactPipelined([&](StoreTx& tx) {
            if (Status relaxed = tx.RelaxDurability(); !relaxed.ok()) return relaxed;
            tx.CommitWithLastPipeline();
            auto got = tx.ClaimWork(options.owner, Now(), options.lease, limit);
            if (!got) return got.error();
            items = std::move(*got);
            // After the COMMIT: a key it cannot read now is read when the payload is opened.
            (void)PrefetchCaseKeys(tx, runtime.store().keys(), items);
            return Status::Ok();
          });
          return std::make_pair(s, std::move(items));
        });
        if (!result.first.ok()) {
          spdlog::warn("claiming work failed ({}); retrying in {} ms", result.first.message(),
                       backoff.count());
          co_await Sleep(wake, backoff);
          backoff = std::min(backoff * 2, std::chrono::milliseconds(5000));
          continue;
        }
        backoff = std::chrono::milliseconds(100);
        claimed = std::move(result.second);
      }
      Count(&EngineStats::claimed, static_cast<int64_t>(claimed.size()));
      for (auto& item : claimed) Spawn(std::move(item));
      if (!claimed.empty() &&
          static_cast<int>(claimed.size()) == std::min(room, options.claim_batch)) {
        continue;  // there may be more due right now
      }
      // Nothing more to claim now: decide how long to sleep.
      std::chrono::milliseconds sleep(1000);
      if (acts) {
        auto since = std::chrono::duration_cast<std::chrono::milliseconds>(
            std::chrono::steady_clock::now() - acts_checked);
        if (since >= kActsEvery) {
          acts_checked = std::chrono::steady_clock::now();
          auto applied = co_await OnDb([this] { return acts->ApplyPending(64); });
          if (!applied) {
            spdlog::warn("applying clerks' acts failed ({}); trying again",
                         applied.error().message());
          } else if (*applied > 0) {
            continue;  // they may have made work ready
          }
        } else {
          sleep = kActsEvery - since;
        }
      }
      if (in_flight == 0) {
        auto next = co_await OnDb([this] {
          std::optional<Timestamp> due;
          Status s = runtime.store().Read([&](StoreTx& tx) {
            auto got = tx.NextWorkDue();
            if (!got) return got.error();
            due = *got;
            return Status::Ok();
          });
          return std::make_pair(s, due);
        });
        if (next.first.ok()) {
          auto now = Now();
          if (!next.second) {
            if (options.until_idle) break;
          } else {
            auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(*next.second - now);
            if (options.until_idle && wait > options.idle_wait) break;
            if (wait <= std::chrono::milliseconds(0)) continue;
            sleep = std::min(sleep, wait + std::chrono::milliseconds(1));
          }
        }
      }
      co_await Sleep(wake, sleep);
    }
    // Stop claiming; let what is in flight finish and be committed.
    while (in_flight > 0) co_await Sleep(wake, std::chrono::milliseconds(200));
    stopping = true;
    runtime.store().Wake();
    WakeCommitters();
    keeper_wake.cancel();
    co_return;
  }

  // Renews the leases of the rows being carried and takes over dead engines' work, until the
  // main loop has stopped and nothing is in flight any more (engine/liveness.hpp).
  asio::awaitable<void> Keeper() {
    while (!(stopping && in_flight == 0)) {
      KeeperRound round = co_await OnDb([this] { return keeper.Tick(); });
      if (!round.status.ok()) {
        spdlog::warn("keeping leases and testing other engines failed: {}", round.status.message());
      }
      if (round.lost > 0) Count(&EngineStats::lost, round.lost);
      if (round.taken_over > 0) wake.cancel();  // claim the released rows now
      if (stopping && in_flight == 0) break;
      co_await Sleep(keeper_wake, keeper.tick());
    }
  }

  // Posts the answers owed to other deployments until the engine stops.
  asio::awaitable<void> Courier() {
    asio::steady_timer pause(io);
    while (!stopping) {
      auto due = co_await OnDb([this] { return courier.TakeDue(Now(), 16); });
      if (!due) {
        spdlog::warn("looking for answers owed to other deployments failed: {}",
                     due.error().message());
      } else {
        for (const CallbackDelivery& delivery : *due) {
          adapters::StepOutcome outcome = co_await courier.Post(delivery);
          Status recorded = co_await OnDb(
              [this, &delivery, &outcome] { return courier.Record(delivery, outcome, Now()); });
          if (!recorded.ok()) {
            spdlog::warn("recording the answer of case {} failed: {}", delivery.record.case_id,
                         recorded.message());
          }
        }
      }
      if (stopping) break;
      co_await Sleep(pause, kCourierEvery);
    }
  }

  // Carries out the rows leased to this engine that it is not carrying (see adopt_orphans).
  asio::awaitable<void> AdoptOrphans() {
    auto result = co_await OnDb([this] {
      std::vector<WorkItem> rows;
      Status s = runtime.store().Read([&](StoreTx& tx) {
        auto got = tx.ListLeasedWork(options.owner);
        if (!got) return got.error();
        rows = std::move(*got);
        return Status::Ok();
      });
      return std::make_pair(s, std::move(rows));
    });
    if (!result.first.ok()) co_return;  // the database is still away: try again later
    adopt_orphans = false;
    for (auto& item : result.second) {
      if (carrying.count({item.case_id, item.id}) == 0) {
        spdlog::info("case {}: carrying on work {} whose hand-over was lost", item.case_id,
                     item.id);
        Spawn(std::move(item));
      }
    }
  }

  // Starts carrying out a claimed row (on the I/O thread), unless it is being carried already.
  void Spawn(WorkItem item) {
    if (!carrying.emplace(item.case_id, item.id).second) return;
    ++in_flight;
    WorkItem copy = item;
    asio::co_spawn(io, Carry(std::move(item)), [this, copy](std::exception_ptr e) {
      if (!e) return;
      // The last net: an exception escaped carrying the row out. The row's lease runs out and it
      // is claimed again, until its kMaxCarryAttempts-th claim fails its step.
      std::string what = "an exception that is not a std::exception";
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        what = ex.what();
      } catch (...) {
      }
      spdlog::error("case {}: work {} (step '{}', claim {}) failed with an exception: {}",
                    copy.case_id, copy.id, copy.step, copy.attempt, what);
      if (copy.attempt >= kMaxCarryAttempts) {
        std::string message = "the engine failed " + std::to_string(copy.attempt) +
                              " times carrying out step '" + copy.step + "': " + what;
        asio::co_spawn(io, GiveUp(copy, std::move(message)), [](std::exception_ptr) {});
        return;
      }
      Finished(copy);
    });
  }

  // A row carried out no more (its lease runs out, or it was finished).
  void Finished(const WorkItem& item) {
    carrying.erase({item.case_id, item.id});
    --in_flight;
    wake.cancel();
  }

  // Fails the step of a row that kept failing (FailWork), then lets it go.
  asio::awaitable<void> GiveUp(WorkItem item, std::string message) {
    auto fail = [this, &item, &message] {
      try {
        return FailWork(runtime, item, options.owner, message);
      } catch (const std::exception& e) {
        return Status::Internal(e.what());
      }
    };
    Status failed = co_await OnDb(std::move(fail));
    if (!failed.ok()) {
      spdlog::error("case {}: could not fail step '{}' of work {}: {}", item.case_id, item.step,
                    item.id, failed.message());
    }
    Finished(item);
  }

  // Carries out one claimed row and queues its outcome for the committer.
  asio::awaitable<void> Carry(WorkItem item) {
    HeldLease held(keeper, item);
    Completion completion;
    // Personal values travel sealed (engine/personal.hpp); the department and the machine get
    // them open. The row keeps its sealed text.
    nlohmann::json payload_json = workflows::ParseJson(item.payload);
    if (MaySeal(item.payload) && !payload_json.is_discarded() &&
        !runtime.RevealCached(payload_json)) {
      // A key not at hand (mostly they were read with the claim): read in a transaction, on a
      // database thread. A named callable: g++ 12 destroys a lambda temporary of a co_await
      // expression twice.
      auto reveal = [this, &item] { return runtime.RevealJsonText(item.payload); };
      payload_json = workflows::ParseJson(co_await OnDb(reveal));
    }
    if (item.kind == kWorkInvoke) {
      auto payload = InvokePayload::FromJson(payload_json);
      if (!payload) {
        spdlog::error("case {}: {}", item.case_id, payload.error().message());
      } else {
        completion.invoke = *payload;
        completion.event = co_await Invoke(item, *payload, &completion.reused);
      }
    } else if (item.kind == kWorkEvent) {
      auto event = EventFromJson(payload_json);
      if (event) {
        completion.event = *event;
      } else {
        spdlog::error("case {}: unusable event work {}: {}", item.case_id, item.id,
                      event.error().message());
      }
    } else {
      spdlog::error("case {}: unknown work kind '{}'", item.case_id, item.kind);
    }
    completion.item = std::move(item);
    Shard& shard = ShardOf(completion.item.case_id);
    shard.done.push_back(std::move(completion));
    shard.wake.cancel();
  }

  asio::awaitable<Event> Invoke(const WorkItem& item, const InvokePayload& payload, bool* reused) {
    if (payload.reuse_seconds && !payload.subject.empty()) {
      auto look_up = [this, subject = payload.subject, period = *payload.reuse_seconds] {
        std::optional<EvidenceRecord> found;
        Status s = runtime.store().Read([&](StoreTx& tx) {
          auto got = tx.FindEvidence(subject, Now() - std::chrono::seconds(period));
          if (!got) return got.error();
          found = *got;
          return Status::Ok();
        });
        if (found && MaySeal(found->result)) {
          found->result = runtime.RevealJsonText(found->result);
          // Verified by a case erased since: its result is gone; call the department again.
          if (found->result.find(kErasedValue) != std::string::npos) found.reset();
        }
        return found;  // a failed look-up just means calling the department
      };
      auto evidence = co_await OnDb(std::move(look_up));
      if (evidence) {
        *reused = true;
        Count(&EngineStats::reused);
        co_return event::StepSucceeded{item.activation,
                                       workflows::ParseJson(evidence->result),
                                       evidence->case_id};
      }
    }
    adapters::Adapter* adapter = registry.Find(payload.department);
    if (!adapter && payload.department == workflows::kBuiltInDepartment) adapter = &noop;
    if (!adapter) {
      co_return event::StepFailed{item.activation,
                                  "no department '" + payload.department +
                                      "' in the deployment config (--config / WF_CONFIG)",
                                  false, payload.attempt};
    }
    adapters::StepRequest request;
    request.case_id = item.case_id;
    request.step = item.step;
    request.activation = item.activation;
    request.attempt = payload.attempt;
    request.idempotency_key = IdempotencyKey(item.case_id, item.step, item.activation);
    request.operation = payload.operation;
    request.fields = payload.fields;
    request.timeout = std::chrono::milliseconds(payload.timeout_ms);
    {
      std::lock_guard lock(stats_mutex);
      ++stats.invoked;
      stats.dispatch.Add(
          std::chrono::duration_cast<std::chrono::microseconds>(Now() - item.ready_at));
    }
    adapters::StepOutcome outcome;
    try {
      outcome = co_await adapter->Invoke(std::move(request));
    } catch (const std::exception& e) {
      outcome = adapters::StepOutcome::Retry(payload.department + ": " + e.what());
    }
    // A message goes into the case's state and history: valid UTF-8 and bounded, whoever wrote it.
    if (!outcome.message.empty()) outcome.message = FailureText(outcome.message);
    // Before the result is copied into an event and merged into the case (copies and dumps
    // recurse per level): an answer over the bounds is the step's permanent failure, never a
    // retry, since the department would only answer the same again.
    if (outcome.kind == adapters::StepOutcome::Kind::kDone) {
      if (Status bounded = workflows::CheckJson(outcome.result); !bounded.ok()) {
        outcome = adapters::StepOutcome::Failed("department '" + payload.department +
                                                "' answered " + bounded.message());
      }
    }
    co_return EventFromOutcome(item.activation, outcome, payload.attempt);
  }

  // Commits queued outcomes in batches until the main loop has stopped and none are left.
  asio::awaitable<void> Committer(Shard& shard) {
    auto backoff = std::chrono::milliseconds(100);
    std::deque<Completion>& done = shard.done;
    for (;;) {
      if (done.empty()) {
        if (stopping && in_flight == 0) break;
        co_await Sleep(shard.wake, std::chrono::milliseconds(1000));
        continue;
      }
      size_t n = std::min(done.size(), static_cast<size_t>(options.commit_batch));
      std::vector<Completion> batch(std::make_move_iterator(done.begin()),
                                    std::make_move_iterator(done.begin() + n));
      done.erase(done.begin(), done.begin() + n);
      // Room for work the commit may hand straight back (StoreTx::ClaimNewWork): the batch's
      // own slots, none once stopping.
      int room = stopping ? 0 : static_cast<int>(n);
      std::vector<std::pair<std::string, int64_t>> keys;
      for (const auto& c : batch) keys.emplace_back(c.item.case_id, c.item.id);
      auto commit = [room, &shard, batch = std::move(batch)]() mutable {
        return shard.committer.Commit(std::move(batch), room);
      };
      auto result = co_await OnDb(std::move(commit));
      {
        std::lock_guard lock(stats_mutex);
        stats.transactions += result.transactions;
        stats.committed += result.applied;
        stats.stale += result.stale;
      }
      for (const auto& key : keys) carrying.erase(key);
      for (const auto& c : result.failed) carrying.emplace(c.item.case_id, c.item.id);
      if (result.status.code() == ErrorCode::kUnavailable) {
        if (room > 0) adopt_orphans = true;
        // The database is away: keep the outcomes and try again; the fenced completion makes a
        // late commit safe even if the lease was lost meanwhile.
        spdlog::warn("committing outcomes failed ({}); retrying in {} ms", result.status.message(),
                     backoff.count());
        in_flight -= static_cast<int>(n - result.failed.size());
        for (auto it = result.failed.rbegin(); it != result.failed.rend(); ++it) {
          done.push_front(std::move(*it));
        }
        co_await Sleep(shard.wake, backoff);
        backoff = std::min(backoff * 2, std::chrono::milliseconds(5000));
        continue;
      }
      backoff = std::chrono::milliseconds(100);
      const bool was_full = in_flight >= options.concurrency;
      in_flight -= static_cast<int>(n);
      Count(&EngineStats::claimed, static_cast<int64_t>(result.claimed.size()));
      for (auto& item : result.claimed) Spawn(std::move(item));
      // The main loop claims again only if it was held back by a full engine, or to see whether
      // it is idle; new work from elsewhere wakes it through the store (NOTIFY).
      if (was_full || in_flight == 0) wake.cancel();
    }
    WakeCommitters();  // the others may be waiting for in_flight to reach 0
  }

  asio::awaitable<void> Listener() {
    while (!stopping) {
      auto woken = co_await OnDb(
          [this] { return runtime.store().WaitForWork(std::chrono::milliseconds(1000)); });
      if (!woken) {
        co_await Sleep(wake, std::chrono::milliseconds(500));
        continue;
      }
      if (*woken) wake.cancel();
    }
    listener_done = true;
  }
};

Engine::Engine(Runtime& runtime, const adapters::Registry& adapters, EngineOptions options)
    : impl_(std::make_unique<Impl>(runtime, adapters, std::move(options))) {}

Engine::~Engine() { impl_->db_pool.join(); }

void Engine::Stop() {
  impl_->stopping = true;
  impl_->runtime.store().Wake();
  asio::post(impl_->io, [impl = impl_.get()] {
    impl->wake.cancel();
    impl->WakeCommitters();
  });
}

asio::any_io_executor Engine::executor() { return impl_->io.get_executor(); }

EngineStats Engine::stats() const {
  std::lock_guard lock(impl_->stats_mutex);
  return impl_->stats;
}

Status Engine::Run() {
  Impl& impl = *impl_;
  if (Status started = impl.keeper.Start(); !started.ok()) return started;
  if (Status locked = impl.TakeSqliteLock(); !locked.ok()) {
    impl.keeper.Stop();
    return locked;
  }
  // Before the first claim: the work of engines that died before this one started is due now
  // (`wf engine --until-idle` after a crash finishes it instead of finding it leased for long).
  if (KeeperRound first = impl.keeper.Tick(); !first.status.ok()) {
    spdlog::warn("testing other engines failed: {}", first.status.message());
  }
  asio::signal_set signals(impl.io, SIGINT, SIGTERM);
  signals.async_wait([this](const boost::system::error_code& ec, int signal) {
    if (ec) return;
    spdlog::info("signal {}: finishing the work in flight, then stopping", signal);
    Stop();
  });
  auto log_failure = [](const char* what) {
    return [what](std::exception_ptr e) {
      if (!e) return;
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        spdlog::critical("{} failed: {}", what, ex.what());
      }
    };
  };
  asio::co_spawn(impl.io, impl.MainLoop(), [&impl, &signals, log_failure](std::exception_ptr e) {
    log_failure("the engine's main loop")(e);
    impl.stopping = true;
    impl.runtime.store().Wake();
    impl.WakeCommitters();
    boost::system::error_code ignored;
    signals.cancel(ignored);
  });
  for (auto& shard : impl.committers) {
    asio::co_spawn(impl.io, impl.Committer(*shard), log_failure("a committer"));
  }
  asio::co_spawn(impl.io, impl.Listener(), log_failure("the listener"));
  asio::co_spawn(impl.io, impl.Keeper(), log_failure("the lease keeper"));
  asio::co_spawn(impl.io, impl.Courier(), log_failure("the answers to other deployments"));
  impl.io.run();
  impl.db_pool.join();
  Status unlocked = impl.LockSqlite(false);
  impl.keeper.Stop();
  if (!impl.final_status.ok()) return impl.final_status;
  (void)unlocked;
  return Status::Ok();
}

}  // namespace wf::engine
