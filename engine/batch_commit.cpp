#include "engine/batch_commit.hpp"

#include <spdlog/spdlog.h>

#include <unordered_map>

#include "engine/failed_work.hpp"

namespace wf::engine {

namespace {

// The status of a batch transaction rolled back because a case changed after its rehearsal.
constexpr const char* kChangedMeanwhile = "a case changed after its outcome was rehearsed";
// Cases remembered as having only bounded expressions, per committer: about 10 MB at most.
constexpr size_t kMaxBoundedCases = 100000;

// A failure that says the database went away (or the commit's outcome is unknown): the batch is
// kept for later, never committed again at once.
bool LostConnection(const Status& status) {
  return status.code() == ErrorCode::kUnavailable &&
         status.message().find("changed meanwhile") == std::string::npos &&
         status.message().find("database busy") == std::string::npos;
}

}  // namespace

Committed BatchCommitter::Commit(std::vector<Completion> batch, int room) {
  Committed out;
  out.status = CommitGuarded(batch, room, &out.claimed, out);
  if (out.status.ok() || out.status.code() == ErrorCode::kUnavailable) {
    if (!out.status.ok()) out.failed = std::move(batch);
    return out;
  }
  const Status whole = out.status;
  out.status = Status::Ok();
  for (auto& one : batch) {
    std::vector<Completion> single;
    single.push_back(std::move(one));
    Status each = batch.size() == 1 ? whole : CommitGuarded(single, 0, nullptr, out);
    const WorkItem& item = single.front().item;
    if (!each.ok() && each.code() != ErrorCode::kUnavailable) {
      spdlog::error("case {}: could not commit work {}: {}", item.case_id, item.id, each.message());
      each = FailWork(
          runtime_, item, owner_,
          "the engine could not commit the outcome of step '" + item.step + "': " + each.message());
    }
    if (each.code() == ErrorCode::kUnavailable) {
      out.failed.push_back(std::move(single.front()));
    } else if (!each.ok()) {
      spdlog::error("case {}: could not fail step '{}' of work {}: {}", item.case_id, item.step,
                    item.id, each.message());
    }
  }
  if (!out.failed.empty()) out.status = Status::Unavailable("database away");
  return out;
}

// CommitBatch with an exception turned into kInternal, so that it fails this batch only.
Status BatchCommitter::CommitGuarded(std::vector<Completion>& batch, int room,
                                     std::vector<WorkItem>* claimed, Committed& counts) {
  try {
    return CommitBatch(batch, room, claimed, counts);
  } catch (const std::exception& e) {
    if (claimed != nullptr) claimed->clear();
    return Status::Internal(std::string("committing outcomes failed: ") + e.what());
  }
}

// One transaction for the whole batch.
//
// No expression is evaluated while the transaction holds the case locks (issue 11): the
// outcomes are first rehearsed on the cases as read without locks, which evaluates (through
// the runtime's bounded evaluator) every expression applying them asks for; the transaction
// replays those answers. A case that changed in between makes the transaction miss an answer:
// it rolls back and the batch is rehearsed again, at most kMaxRehearsals rounds, the last of
// which evaluates what it misses. Cases whose procedures have only provably bounded
// expressions skip the rehearsal (learned per case from the locked rows, or known from the
// procedure a claimed row names).
Status BatchCommitter::CommitBatch(std::vector<Completion>& batch, int room,
                                   std::vector<WorkItem>* claimed, Committed& counts) {
  int64_t applied = 0, stale = 0;
  const Timestamp now = Now();
  ExpressionMemo memo(runtime_.evaluator());
  std::vector<bool> lost(batch.size(), false);  // fenced out: the lease is gone for good
  Status status;
  // The rows this process committed last, when it kept every case of the batch: the transaction
  // then trusts them instead of locking and reading the rows and their chain heads (a statement
  // and most of a round trip less). Each deferred update still names the row_version it read, and
  // each append the seq after the head: a case changed elsewhere meanwhile fails the transaction
  // in the server, and the batch is committed again the usual way. PostgreSQL only: there the
  // writes are deferred to the commit, so a stale row fails the transaction; SQLite would answer
  // the update itself with a conflict, which ApplyInTx takes for an outcome that no longer applies.
  std::vector<StateCache::KeptRow> kept;
  for (const auto& c : batch) {
    if (runtime_.store().backend() != Backend::kPostgres) break;
    auto row = runtime_.KeptRow(c.item.case_id);
    if (!row) {
      kept.clear();
      break;
    }
    kept.push_back(std::move(*row));
  }
  bool trusting = !kept.empty();
  for (int round = 1;; ++round) {
    memo.Record();
    memo.ClearUnavailable();
    status = RehearseBatch(batch, lost, round == 1, now, memo);
    if (status.ok() && memo.unavailable()) status = *memo.unavailable();
    if (!status.ok()) break;
    const bool last = round == kMaxRehearsals;
    memo.Replay(last);
    // Its first statement is CompleteWorkBatch's pipeline, which carries the BEGIN.
    status = runtime_.store().TransactPipelined([&](StoreTx& tx) {
      applied = stale = 0;
      tx.DeferWrites();  // the case rows are locked below: updates cannot conflict
      if (claimed != nullptr && room > 0) tx.ClaimNewWork(owner_, now, lease_, room);
      std::vector<WorkFence> fences;
      fences.reserve(batch.size());
      for (const auto& c : batch) fences.push_back({c.item.case_id, c.item.id, c.item.attempt});
      // The cases of stale completions are locked too: harmless, and it saves a round trip.
      std::vector<CaseRecord> locked;
      auto fenced = tx.CompleteWorkBatch(fences, owner_, trusting ? nullptr : &locked);
      if (!fenced) return fenced.error();
      if (trusting) {
        for (const StateCache::KeptRow& row : kept) {
          tx.KnowChainHead(row.record.id, row.head_seq, row.head_hash);
          locked.push_back(row.record);
        }
      }
      std::unordered_map<std::string, CaseRecord> cases;
      for (auto& record : locked) {
        auto procedure = runtime_.procedures().Get(tx, record.procedure, record.version);
        if (procedure && runtime_.procedures().AllBounded(*procedure)) {
          if (bounded_cases_.size() > kMaxBoundedCases) bounded_cases_.clear();
          bounded_cases_.insert(record.id);
        }
        std::string id = record.id;
        cases.emplace(std::move(id), std::move(record));
      }
      for (size_t i = 0; i < batch.size(); ++i) {
        const Completion& c = batch[i];
        if (!(*fenced)[i]) lost[i] = true;
        auto it = cases.find(c.item.case_id);
        if (!(*fenced)[i] || !c.event || it == cases.end()) {
          ++stale;
          continue;
        }
        if (c.invoke && !c.reused) {
          if (const auto* ok = std::get_if<event::StepSucceeded>(&*c.event)) {
            Status saved =
                runtime_.SaveEvidence(tx, c.item.case_id, c.item.step, *c.invoke, ok->result, now);
            if (!saved.ok()) return saved;
          }
        }
        Status s = runtime_.ApplyInTx(tx, it->second, *c.event, kEngineActor, now, memo);
        if (memo.unavailable()) return *memo.unavailable();
        if (memo.missed() > 0 && !last) return Status::Unavailable(kChangedMeanwhile);
        if (s.code() == ErrorCode::kConflict || s.code() == ErrorCode::kInvalid) {
          // The case moved on (cancelled, the step left): the outcome no longer applies.
          spdlog::info("{}", s.message());
          ++stale;
          continue;
        }
        if (!s.ok()) return s;
        ++applied;
      }
      if (claimed != nullptr && room > 0) {
        tx.CommitWithLastPipeline();  // the transaction's last writes
        auto rows = tx.InsertClaimedWork();
        if (!rows) return rows.error();
        *claimed = std::move(*rows);
        for (WorkItem& item : *claimed) {
          if (auto it = cases.find(item.case_id); it != cases.end()) {
            item.procedure = it->second.procedure;
            item.version = it->second.version;
          }
        }
        // After the COMMIT: a key it cannot read now is read when the payload is opened.
        (void)PrefetchCaseKeys(tx, runtime_.store().keys(), *claimed);
      }
      return Status::Ok();
    });
    if (trusting && !status.ok() && !LostConnection(status)) {
      // Changed elsewhere (or anything else): nothing of it was kept; lock and read the rows.
      trusting = false;
      if (claimed != nullptr) claimed->clear();
      ++counts.transactions;
      --round;
      continue;
    }
    if (memo.missed() == 0 || last) break;
    if (claimed != nullptr) claimed->clear();
  }
  if (!status.ok() && claimed != nullptr) claimed->clear();
  ++counts.transactions;
  if (status.ok()) {
    counts.applied += applied;
    counts.stale += stale;
  }
  return status;
}

// The rehearsal of CommitBatch: reads the batch's cases without locks (all of them, or with
// `skip_bounded` those not known to be bounded) and rehearses their outcomes, in batch order,
// into `memo`.
Status BatchCommitter::RehearseBatch(const std::vector<Completion>& batch,
                                     const std::vector<bool>& lost, bool skip_bounded,
                                     Timestamp now, ExpressionMemo& memo) {
  std::vector<std::string> ids;
  std::unordered_map<std::string, std::vector<const Event*>> events;
  for (size_t i = 0; i < batch.size(); ++i) {
    const Completion& c = batch[i];
    if (lost[i] || !c.event) continue;
    if (skip_bounded && (bounded_cases_.count(c.item.case_id) > 0 ||
                         (c.item.version > 0 && runtime_.procedures().KnownBounded(
                                                    c.item.procedure, c.item.version)))) {
      continue;
    }
    auto& of_case = events[c.item.case_id];
    if (of_case.empty()) ids.push_back(c.item.case_id);
    of_case.push_back(&*c.event);
  }
  if (ids.empty()) return Status::Ok();
  return runtime_.store().Read([&](StoreTx& tx) {
    auto records = tx.GetCases(ids);
    if (!records) return records.error();
    for (const CaseRecord& record : *records) {
      Status s = runtime_.Rehearse(tx, record, events[record.id], kEngineActor, now, memo);
      if (!s.ok()) return s;
    }
    return Status::Ok();
  });
}

}  // namespace wf::engine
