#pragma once

// The engine process (`wf engine`): claims due work under leases, carries it out (adapter calls
// as coroutines, many in flight, on one I/O thread) and commits the outcomes in batches through
// the runtime, on a small pool of database threads (SOCI blocks). DESIGN.md decisions 3-5.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "adapters/adapter.hpp"
#include "engine/latency.hpp"
#include "engine/runtime.hpp"
#include "workflows/status.hpp"

namespace wf::engine {

struct EngineOptions {
  int concurrency = 256;   // work items in flight (claimed, not yet committed)
  int claim_batch = 256;   // rows leased per claim
  int commit_batch = 256;  // outcomes committed per transaction
  int db_threads = 2;      // threads doing blocking database work (plus one that listens)
  // How long a claim holds a row unless renewed. The rows being carried are renewed every
  // lease/3, so a call may last longer than this; an engine that dies is found dead within about
  // a second (its liveness token, engine/liveness.hpp) and its rows taken over then, not after
  // the lease. The lease bounds only how long an engine that is alive but stuck keeps its rows.
  std::chrono::seconds lease{120};
  // With until_idle, Run returns once nothing is in flight, nothing is due and nothing comes due
  // within `idle_wait` (retry backoffs are waited for; a 30-day wait timeout is not).
  bool until_idle = false;
  std::chrono::seconds idle_wait{60};
  std::string owner;  // the lease owner; default "<host>:<pid>:<random>"
};

// What a run did, for the operator and the benchmarks.
struct EngineStats {
  int64_t claimed = 0;    // work rows leased
  int64_t invoked = 0;    // adapter calls made
  int64_t reused = 0;     // adapter calls answered from evidence instead (once-only)
  int64_t committed = 0;  // outcomes applied
  int64_t stale = 0;      // outcomes dropped because the lease was lost or the case moved on
  int64_t lost = 0;       // leases found gone by a renewal while their rows were carried
  int64_t transactions = 0;
  // From the moment a row became claimable (due, or its lease expired) to its adapter call.
  LatencyHistogram dispatch;
};

// One engine process. Not copyable; Run is called once, from one thread; Stop from any thread
// (or SIGINT/SIGTERM, which Run handles).
class Engine {
 public:
  // `runtime` and `adapters` must outlive the engine. The noop adapter answers for a
  // department named "noop" unless the registry has one of that name.
  Engine(Runtime& runtime, const adapters::Registry& adapters, EngineOptions options);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Runs until Stop, a signal, or (until_idle) idleness; in-flight calls finish and their
  // outcomes are committed before it returns. kConflict when another engine holds a SQLite
  // database; kUnavailable only if the database never came back while stopping.
  Status Run();
  // Asks Run to stop claiming, let in-flight work finish, and return. Thread-safe.
  void Stop();
  EngineStats stats() const;
  // The I/O executor adapter calls run on; adapters that do I/O are built with it.
  asio::any_io_executor executor();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace wf::engine
