#include "engine/scheduler.hpp"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <deque>
#include <exception>
#include <mutex>
#include <optional>
#include <random>
#include <thread>
#include <unordered_map>
#include <vector>

#include "adapters/noop.hpp"
#include "engine/asio.hpp"

namespace wf::engine {

namespace {

std::string DefaultOwner() {
  char host[256] = {0};
  gethostname(host, sizeof(host) - 1);
  std::random_device random;
  return std::string(host) + ":" + std::to_string(getpid()) + ":" +
         std::to_string(random() % 100000);
}

// One claimed row and what carrying it out produced.
struct Completion {
  WorkItem item;
  std::optional<Event> event;           // nullopt: the payload was unusable; just finish the row
  std::optional<InvokePayload> invoke;  // for evidence on success
  bool reused = false;
};

Event EventFromOutcome(int64_t activation, const adapters::StepOutcome& outcome, int attempt) {
  using Kind = adapters::StepOutcome::Kind;
  switch (outcome.kind) {
    case Kind::kDone:
      return event::StepSucceeded{activation, outcome.result, std::nullopt};
    case Kind::kAccepted:
      return event::StepAccepted{activation};
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
        options(std::move(o)),
        db_pool(static_cast<size_t>(std::max(1, options.db_threads) + 1)),
        wake(io),
        commit_wake(io) {
    if (options.owner.empty()) options.owner = DefaultOwner();
  }

  Runtime& runtime;
  const adapters::Registry& registry;
  EngineOptions options;
  adapters::NoopAdapter noop;

  asio::io_context io{1};
  asio::thread_pool db_pool;
  asio::steady_timer wake;         // the main loop sleeps on it; cancelled to wake it
  asio::steady_timer commit_wake;  // the committer sleeps on it

  std::atomic<bool> stopping{false};
  bool listener_done = false;
  bool committer_done = false;
  int in_flight = 0;            // claimed and not yet committed (io thread only)
  std::deque<Completion> done;  // outcomes waiting to be committed (io thread only)
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
  Status TakeSqliteLock() {
    auto give_up = std::chrono::steady_clock::now() + LockTtl() + std::chrono::seconds(1);
    for (;;) {
      Status status = LockSqlite(true);
      if (status.code() != ErrorCode::kConflict ||
          std::chrono::steady_clock::now() >= give_up) {
        return status;
      }
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
      int room = options.concurrency - in_flight;
      std::vector<WorkItem> claimed;
      if (room > 0) {
        int limit = std::min(room, options.claim_batch);
        auto result = co_await OnDb([this, limit] {
          std::vector<WorkItem> items;
          Status s = runtime.store().Transact([&](StoreTx& tx) {
            auto got = tx.ClaimWork(options.owner, Now(), options.lease, limit);
            if (!got) return got.error();
            items = std::move(*got);
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
      for (auto& item : claimed) {
        ++in_flight;
        asio::co_spawn(io, Carry(std::move(item)), [this](std::exception_ptr e) {
          if (!e) return;
          try {
            std::rethrow_exception(e);
          } catch (const std::exception& ex) {
            // The last net: the row's lease runs out and it is carried out again.
            spdlog::error("work failed with an exception: {}", ex.what());
          }
          --in_flight;
          wake.cancel();
        });
      }
      if (!claimed.empty() &&
          static_cast<int>(claimed.size()) == std::min(room, options.claim_batch)) {
        continue;  // there may be more due right now
      }
      // Nothing more to claim now: decide how long to sleep.
      std::chrono::milliseconds sleep(1000);
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
    commit_wake.cancel();
    co_return;
  }

  // Carries out one claimed row and queues its outcome for the committer.
  asio::awaitable<void> Carry(WorkItem item) {
    Completion completion;
    if (item.kind == kWorkInvoke) {
      auto payload_json = nlohmann::json::parse(item.payload, nullptr, false);
      auto payload = InvokePayload::FromJson(payload_json);
      if (!payload) {
        spdlog::error("case {}: {}", item.case_id, payload.error().message());
      } else {
        completion.invoke = *payload;
        completion.event = co_await Invoke(item, *payload, &completion.reused);
      }
    } else if (item.kind == kWorkEvent) {
      auto event = EventFromJson(nlohmann::json::parse(item.payload, nullptr, false));
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
    done.push_back(std::move(completion));
    commit_wake.cancel();
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
        return found;  // a failed look-up just means calling the department
      };
      auto evidence = co_await OnDb(std::move(look_up));
      if (evidence) {
        *reused = true;
        Count(&EngineStats::reused);
        co_return event::StepSucceeded{item.activation,
                                       nlohmann::json::parse(evidence->result, nullptr, false),
                                       evidence->case_id};
      }
    }
    adapters::Adapter* adapter = registry.Find(payload.department);
    if (!adapter && payload.department == "noop") adapter = &noop;
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
    Count(&EngineStats::invoked);
    adapters::StepOutcome outcome;
    try {
      outcome = co_await adapter->Invoke(std::move(request));
    } catch (const std::exception& e) {
      outcome = adapters::StepOutcome::Retry(payload.department + ": " + e.what());
    }
    co_return EventFromOutcome(item.activation, outcome, payload.attempt);
  }

  // Commits queued outcomes in batches until the main loop has stopped and none are left.
  asio::awaitable<void> Committer() {
    auto backoff = std::chrono::milliseconds(100);
    for (;;) {
      if (done.empty()) {
        if (stopping && in_flight == 0) break;
        co_await Sleep(commit_wake, std::chrono::milliseconds(1000));
        continue;
      }
      size_t n = std::min(done.size(), static_cast<size_t>(options.commit_batch));
      std::vector<Completion> batch(std::make_move_iterator(done.begin()),
                                    std::make_move_iterator(done.begin() + n));
      done.erase(done.begin(), done.begin() + n);
      auto commit = [this, batch = std::move(batch)]() mutable {
        Status s = CommitBatch(batch);
        if (s.ok() || batch.size() == 1 || s.code() == ErrorCode::kUnavailable) {
          return std::make_pair(s, std::move(batch));
        }
        // One bad outcome must not hold back the rest: commit them one at a time.
        std::vector<Completion> failed;
        for (auto& one : batch) {
          std::vector<Completion> single;
          single.push_back(std::move(one));
          Status each = CommitBatch(single);
          if (each.code() == ErrorCode::kUnavailable) {
            failed.push_back(std::move(single.front()));
          } else if (!each.ok()) {
            spdlog::error("case {}: could not commit work {}: {}", single.front().item.case_id,
                          single.front().item.id, each.message());
          }
        }
        return std::make_pair(failed.empty() ? Status::Ok() : Status::Unavailable("database away"),
                              std::move(failed));
      };
      auto result = co_await OnDb(std::move(commit));
      if (result.first.code() == ErrorCode::kUnavailable) {
        // The database is away: keep the outcomes and try again; the fenced completion makes a
        // late commit safe even if the lease was lost meanwhile.
        spdlog::warn("committing outcomes failed ({}); retrying in {} ms", result.first.message(),
                     backoff.count());
        for (auto it = result.second.rbegin(); it != result.second.rend(); ++it) {
          done.push_front(std::move(*it));
        }
        co_await Sleep(commit_wake, backoff);
        backoff = std::min(backoff * 2, std::chrono::milliseconds(5000));
        continue;
      }
      backoff = std::chrono::milliseconds(100);
      in_flight -= static_cast<int>(n);
      wake.cancel();
    }
    committer_done = true;
  }

  // On a database thread: one transaction for the whole batch.
  Status CommitBatch(std::vector<Completion>& batch) {
    int64_t applied = 0, stale = 0;
    Status status = runtime.store().Transact([&](StoreTx& tx) {
      applied = stale = 0;
      std::unordered_map<std::string, CaseRecord> cases;
      Timestamp now = Now();
      for (const auto& c : batch) {
        auto fenced = tx.CompleteWork(c.item.case_id, c.item.id, c.item.attempt, options.owner);
        if (!fenced) return fenced.error();
        if (!*fenced || !c.event) {
          ++stale;
          continue;
        }
        auto it = cases.find(c.item.case_id);
        if (it == cases.end()) {
          auto record = tx.GetCaseForUpdate(c.item.case_id);
          if (!record) {
            if (record.error().code() == ErrorCode::kNotFound) {
              ++stale;
              continue;
            }
            return record.error();
          }
          it = cases.emplace(c.item.case_id, std::move(*record)).first;
        }
        if (c.invoke && !c.reused) {
          if (const auto* ok = std::get_if<event::StepSucceeded>(&*c.event)) {
            Status saved =
                runtime.SaveEvidence(tx, c.item.case_id, c.item.step, *c.invoke, ok->result, now);
            if (!saved.ok()) return saved;
          }
        }
        Status s = runtime.ApplyInTx(tx, it->second, *c.event, kEngineActor, now);
        if (s.code() == ErrorCode::kConflict || s.code() == ErrorCode::kInvalid) {
          // The case moved on (cancelled, the step left): the outcome no longer applies.
          spdlog::info("{}", s.message());
          ++stale;
          continue;
        }
        if (!s.ok()) return s;
        ++applied;
      }
      return Status::Ok();
    });
    Count(&EngineStats::transactions);
    if (status.ok()) {
      Count(&EngineStats::committed, applied);
      Count(&EngineStats::stale, stale);
    }
    return status;
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
    impl->commit_wake.cancel();
  });
}

asio::any_io_executor Engine::executor() { return impl_->io.get_executor(); }

EngineStats Engine::stats() const {
  std::lock_guard lock(impl_->stats_mutex);
  return impl_->stats;
}

Status Engine::Run() {
  Impl& impl = *impl_;
  if (Status locked = impl.TakeSqliteLock(); !locked.ok()) return locked;
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
    impl.commit_wake.cancel();
    boost::system::error_code ignored;
    signals.cancel(ignored);
  });
  asio::co_spawn(impl.io, impl.Committer(), log_failure("the committer"));
  asio::co_spawn(impl.io, impl.Listener(), log_failure("the listener"));
  impl.io.run();
  impl.db_pool.join();
  Status unlocked = impl.LockSqlite(false);
  if (!impl.final_status.ok()) return impl.final_status;
  (void)unlocked;
  return Status::Ok();
}

}  // namespace wf::engine
