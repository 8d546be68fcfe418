#pragma once

// `wf serve`'s starts, committed in groups. Each start under an Idempotency-Key costs a
// transaction of its own: a BEGIN, a COMMIT that waits for the WAL to reach the disk, and the
// round trips between. Starts that arrive while others are being committed wait in a queue, and
// the next free committer takes all of them (up to a limit) into one transaction
// (Runtime::StartCasesOnce). A start that arrives when a committer is free is committed at once,
// on the thread that submits it: a group forms only under load, and costs no waiting at light
// load.

#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>

#include "engine/federation.hpp"
#include "engine/runtime.hpp"

namespace wf::engine {

class StartGroup {
 public:
  // Runs a job on a thread that may block on the store.
  using Post = std::function<void(std::function<void()>)>;
  // Receives the outcome of one start, on the committer's thread. Must not throw.
  using Done = std::function<void(Result<Runtime::StartedOnce>)>;

  // One start: StartCaseOnce's arguments, owned.
  struct Request {
    Runtime::OnceRequest once;  // its `caller` is set from `caller` below when it is queued
    std::optional<FederatedCaller> caller;
  };

  // At most `committers` jobs on `post` at once, each committing at most `largest` starts per
  // transaction. `runtime` must outlive the group; so must the group every job it posted.
  StartGroup(Runtime& runtime, Post post, int committers, std::size_t largest = 32);
  StartGroup(const StartGroup&) = delete;
  StartGroup& operator=(const StartGroup&) = delete;

  // Queues a start; `done` gets its outcome once its group committed (or failed). When fewer
  // than `committers` are at work, the calling thread becomes one: it commits what is queued
  // (this start among them) before it returns, so call it where the store may block.
  void Submit(Request request, Done done);
  // Starts queued for the next free committer (not those being committed).
  std::size_t Waiting();

 private:
  struct Queued {
    std::unique_ptr<Request> request;  // stable: its once.caller points into it
    Done done;
  };
  // One committer's turn: takes what is queued, commits it, answers each, and posts itself again
  // while the queue is not empty (behind the other jobs waiting for the pool).
  void Commit();

  Runtime& runtime_;
  Post post_;
  const int committers_;
  const std::size_t largest_;
  std::mutex mutex_;
  std::deque<Queued> queue_;
  int running_ = 0;  // committers posted or committing
};

}  // namespace wf::engine
