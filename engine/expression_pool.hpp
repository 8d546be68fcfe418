#pragma once

// Expressions bounded in time and memory (DESIGN.md decision 12, "Reliability targets": a
// runaway expression ends as its case's incident). libjq 1.6 has no step hook, no interrupt and
// no allocator hook, so a thread running jq can be neither stopped nor bounded in memory; a
// process can. The ExpressionPool keeps a few long-lived worker processes (the running binary
// started again in a hidden mode, kExpressionWorkerMode) that evaluate one request at a time
// under an address-space limit, and kills and replaces a worker that runs past its deadline.

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "workflows/expression.hpp"

namespace wf::engine {

// Bounds (README "Bounds").
// One evaluation's wall-clock time. Real conditions and mappings take microseconds; 2 s is
// thousands of times that, so a loaded machine never trips it, and short enough that a runaway
// holds its worker (and the commit batch that waits for it) only briefly.
inline constexpr std::chrono::milliseconds kExpressionTimeLimit{2000};
// Memory a worker may take beyond what it holds at start: case data is at most 1 MiB
// (kMaxCaseDataBytes) and jq's copies of it a few times that; 256 MiB is far above any honest
// evaluation and small enough that a worker per core stays harmless on a small host.
inline constexpr size_t kExpressionMemoryBytes = size_t{256} << 20;
// The largest input or result sent between the engine and a worker (JSON text).
inline constexpr size_t kExpressionMessageBytes = size_t{64} << 20;
// Worker processes. Evaluations in flight are at most the engine's committers plus the CLI's
// one thread; more workers would only sit idle.
inline constexpr int kExpressionWorkers = 2;

// argv[1] of the hidden worker mode: `wf __expression-worker MEMORY_BYTES TIME_LIMIT_MS`.
inline constexpr const char* kExpressionWorkerMode = "__expression-worker";

struct ExpressionPoolOptions {
  // The worker's command line; empty: this binary (/proc/self/exe) in kExpressionWorkerMode.
  // The program must call RunExpressionWorker when it sees that mode.
  std::vector<std::string> worker_command;
  int workers = kExpressionWorkers;
  std::chrono::milliseconds time_limit = kExpressionTimeLimit;
  size_t memory_bytes = kExpressionMemoryBytes;
};

// An Evaluator that runs expressions in worker processes. Expressions that a static check proves
// cheap (workflows::Expression::bounded) run in the calling thread instead, which costs no
// round trip. Thread-safe: an evaluation takes an idle worker, or waits for one.
//
// Workers start when first needed (a CLI command whose expressions are all cheap starts none)
// and are replaced when they die. A request carries the program text (each worker compiles and
// caches it) and the input as JSON text; the answer comes back as a value:
//   the result, or kInvalid "expression `P`: <jq's message>";
//   kInvalid "expression `P` ran past 2 s" (the worker was killed and is replaced);
//   kInvalid "expression `P` used more than 256 MB" (the worker reported it, or died of it);
//   kUnavailable when no worker can be started (the expression was not judged).
// A worker that dies unasked (killed from outside) is replaced and the request sent once more.
class ExpressionPool final : public workflows::Evaluator {
 public:
  explicit ExpressionPool(ExpressionPoolOptions options = {});
  // Kills the workers and waits for them. No evaluation may be running.
  ~ExpressionPool() override;
  ExpressionPool(const ExpressionPool&) = delete;
  ExpressionPool& operator=(const ExpressionPool&) = delete;

  Result<nlohmann::json> Evaluate(const workflows::Expression& expression,
                                  const nlohmann::json& input) override;

  // Process ids of the workers evaluating right now (for tests that kill one).
  std::vector<pid_t> BusyWorkers() const;
  // Workers started so far, replacements included.
  int64_t started() const;

 private:
  struct Worker {
    pid_t pid = 0;  // 0: not running
    int fd = -1;    // our end of the worker's socket
    bool busy = false;
  };
  enum class Answer { kDone, kDied, kTimedOut };

  Worker* Acquire();
  void Release(Worker* worker);
  Status Start(Worker& worker);
  // Kills (when `kill`) and reaps the worker; returns its wait status.
  int Stop(Worker& worker, bool kill);
  Answer Exchange(Worker& worker, const std::string& request, std::string* reply);

  const ExpressionPoolOptions options_;
  mutable std::mutex mutex_;
  std::condition_variable idle_;
  std::vector<Worker> workers_;
  int64_t started_ = 0;
};

// The worker's main loop: serves requests on file descriptor 3 until the engine closes it.
// `argv` is the program's: argv[1] == kExpressionWorkerMode, argv[2] the memory bound in bytes,
// argv[3] the time limit in milliseconds (a backstop alarm at twice that ends a worker whose
// engine died mid-evaluation). Returns the process's exit code.
int RunExpressionWorker(int argc, char** argv);

}  // namespace wf::engine
