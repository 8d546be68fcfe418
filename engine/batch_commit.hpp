#pragma once

// Committing the outcomes of carried-out work (engine/scheduler.cpp's committers): many outcomes
// in one transaction, each fenced by its lease, with the expressions that applying them asks for
// evaluated before the transaction, never under its locks (issue 11).

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <unordered_set>
#include <vector>

#include "engine/machine.hpp"
#include "engine/runtime.hpp"
#include "engine/store.hpp"
#include "workflows/status.hpp"

namespace wf::engine {

// One claimed row and what carrying it out produced.
struct Completion {
  WorkItem item;
  std::optional<Event> event;           // nullopt: the payload was unusable; just finish the row
  std::optional<InvokePayload> invoke;  // for evidence on success
  bool reused = false;
};

// What committing a batch gave: the outcomes to try again (the database was away), the new work
// handed straight back to this engine, and what the transactions did.
struct Committed {
  Status status;
  std::vector<Completion> failed;
  std::vector<WorkItem> claimed;
  int64_t transactions = 0;
  int64_t applied = 0;  // outcomes applied to their cases
  int64_t stale = 0;    // outcomes whose lease was lost or whose case had moved on
};

// Commits batches for one committer of one engine. Not thread-safe: one batch at a time, on a
// database thread (it blocks).
class BatchCommitter {
 public:
  BatchCommitter(Runtime& runtime, std::string owner, std::chrono::seconds lease)
      : runtime_(runtime), owner_(std::move(owner)), lease_(lease) {}

  // Commits `batch` in one transaction; with room > 0, up to `room` rows of new work due now come
  // back in `claimed`, already leased to this engine. When the database is away (kUnavailable)
  // the outcomes come back in `failed`. When the transaction fails otherwise, one bad outcome
  // must not hold back the rest: they are committed one at a time, and one that cannot be
  // committed however often it is tried fails its step instead (FailWork).
  Committed Commit(std::vector<Completion> batch, int room);

 private:
  Status CommitGuarded(std::vector<Completion>& batch, int room, std::vector<WorkItem>* claimed,
                       Committed& counts);
  Status CommitBatch(std::vector<Completion>& batch, int room, std::vector<WorkItem>* claimed,
                     Committed& counts);
  Status RehearseBatch(const std::vector<Completion>& batch, const std::vector<bool>& lost,
                       bool skip_bounded, Timestamp now, ExpressionMemo& memo);

  Runtime& runtime_;
  std::string owner_;
  std::chrono::seconds lease_;
  // Cases whose procedures have only provably bounded expressions: their outcomes need no
  // rehearsal (see CommitBatch).
  std::unordered_set<std::string> bounded_cases_;
};

}  // namespace wf::engine
