// The store's work queue and leases (engine/store.hpp, "work"): enqueueing work (directly,
// deferred into the pipeline, or kept back and inserted already leased), claiming under leases,
// fenced completion and rescheduling, renewing leases, counting, the engine lock, and the
// registry of running engines whose dead members' work is taken over.
#include <algorithm>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "engine/store.hpp"
#include "engine/store_internal.hpp"

namespace wf::engine {

namespace {

using namespace detail;  // NOLINT: the store's shared internals

constexpr size_t kWorkRowsPerInsert = 200;

}  // namespace

const char* WorkStateName(WorkState state) {
  switch (state) {
    case WorkState::kReady:
      return "ready";
    case WorkState::kLeased:
      return "leased";
  }
  return "ready";
}

// --- work

void StoreTx::ClaimNewWork(const std::string& owner, Timestamp now, std::chrono::microseconds lease,
                           int limit) {
  auto& claim = context_.claim_new;
  claim.limit = limit;
  claim.owner = owner;
  claim.now = now;
  claim.lease = lease;
  claim.rows.clear();
}

Result<std::vector<WorkItem>> StoreTx::InsertClaimedWork() {
  auto& claim = context_.claim_new;
  std::vector<NewWork> rows;
  rows.swap(claim.rows);
  claim.limit = 0;
  if (context_.dialect.is_postgres()) {
    // The queued writes and the claimed rows' insert, in one round trip.
    if (!context_.failure.ok()) return context_.failure;
    std::vector<DeferredWrite> writes = PendingStatements(context_);
    const size_t first_insert = writes.size();
    const std::string until = std::to_string(ToMicros(claim.now + claim.lease));
    const std::string now = std::to_string(ToMicros(claim.now));
    std::vector<Row> values;
    values.reserve(rows.size());
    for (NewWork& w : rows) {
      values.push_back(Row{std::move(w.case_id), std::move(w.kind), std::move(w.step),
                           std::to_string(w.activation), std::move(w.payload), until, claim.owner,
                           until, now});
    }
    AddMultiRow(writes, "enqueue claimed work",
                "INSERT INTO work (case_id, kind, step, activation, payload, run_at, owner,"
                " lease_until, created_at, state, attempt) SELECT *, 'leased', 1 FROM ",
                {"text", "text", "text", "bigint", "jsonb", "bigint", "text", "bigint", "bigint"},
                " AS v RETURNING " + SelectList(kWorkColumns, context_.dialect), std::move(values),
                false);
    std::vector<std::vector<Row>> results;
    if (Status sent = SendPipelined(context_, writes, nullptr, &results); !sent.ok()) return sent;
    std::vector<WorkItem> items;
    for (size_t i = first_insert; i < results.size(); ++i) {
      for (const Row& row : results[i]) {
        WorkItem item = ReadRow(kWorkColumns, TextRow(row));
        item.ready_at = item.created_at;
        items.push_back(std::move(item));
      }
    }
    return items;
  }
  return Guard(context_, "enqueue claimed work", [&]() -> Result<std::vector<WorkItem>> {
    std::vector<WorkItem> items;
    const Timestamp until = claim.now + claim.lease;
    for (size_t start = 0; start < rows.size(); start += kWorkRowsPerInsert) {
      size_t end = std::min(rows.size(), start + kWorkRowsPerInsert);
      std::string text =
          "INSERT INTO work (case_id, kind, step, activation, payload, state, run_at, owner,"
          " lease_until, attempt, created_at) VALUES ";
      for (size_t i = start; i < end; ++i) {
        std::string n = std::to_string(i - start);
        if (i > start) text += ", ";
        text += "(:c" + n + ", :k" + n + ", :s" + n + ", :a" + n + ", :p" + n +
                ", 'leased', :until, :owner, :until, 1, :now)";
      }
      Query q(context_.sql, text + " RETURNING " + SelectList(kWorkColumns, context_.dialect));
      q.Bind("until", until).Bind("owner", claim.owner).Bind("now", claim.now);
      for (size_t i = start; i < end; ++i) {
        std::string n = std::to_string(i - start);
        const NewWork& w = rows[i];
        q.Bind("c" + n, w.case_id)
            .Bind("k" + n, w.kind)
            .Bind("s" + n, w.step)
            .Bind("a" + n, w.activation)
            .Bind("p" + n, w.payload);
      }
      q.Columns(kWorkColumns);
      for (bool more = q.Execute(); more; more = q.Next()) {
        WorkItem item = ReadRow(kWorkColumns, q);
        item.ready_at = item.created_at;
        items.push_back(std::move(item));
      }
    }
    return items;
  });
}

Status StoreTx::InsertWork(const std::vector<NewWork>& all) {
  // The engine's fast path takes what is due now, up to its limit (ClaimNewWork).
  std::vector<NewWork> kept;
  const std::vector<NewWork>* rest = &all;
  auto& claim = context_.claim_new;
  if (static_cast<int>(claim.rows.size()) < claim.limit) {
    for (const NewWork& w : all) {
      if (static_cast<int>(claim.rows.size()) < claim.limit && w.run_at <= claim.now) {
        claim.rows.push_back(w);
      } else {
        kept.push_back(w);
      }
    }
    rest = &kept;
  }
  const std::vector<NewWork>& work = *rest;
  if (context_.defer_writes) {
    if (!context_.failure.ok()) return context_.failure;
    const std::string now = std::to_string(ToMicros(Now()));
    for (const NewWork& w : work) {
      context_.pending.work.push_back(Row{w.case_id, w.kind, w.step, std::to_string(w.activation),
                                          w.payload, std::to_string(ToMicros(w.run_at)), now});
    }
    if (!work.empty()) context_.work_changed = true;
    return Status::Ok();
  }
  return Guard(context_, "enqueue work", [&]() -> Status {
    const Timestamp now = Now();
    for (size_t start = 0; start < work.size(); start += kWorkRowsPerInsert) {
      size_t end = std::min(work.size(), start + kWorkRowsPerInsert);
      std::string text =
          "INSERT INTO work (case_id, kind, step, activation, payload, state, run_at, attempt,"
          " created_at) VALUES ";
      for (size_t i = start; i < end; ++i) {
        std::string n = std::to_string(i - start);
        if (i > start) text += ", ";
        text += "(:c" + n + ", :k" + n + ", :s" + n + ", :a" + n + ", :p" + n + ", 'ready', :r" +
                n + ", 0, :t" + n + ")";
      }
      Query q(context_.sql, std::move(text));
      for (size_t i = start; i < end; ++i) {
        std::string n = std::to_string(i - start);
        const NewWork& w = work[i];
        q.Bind("c" + n, w.case_id)
            .Bind("k" + n, w.kind)
            .Bind("s" + n, w.step)
            .Bind("a" + n, w.activation)
            .Bind("p" + n, w.payload)
            .Bind("r" + n, w.run_at)
            .Bind("t" + n, now);
      }
      q.Execute();
    }
    if (!work.empty()) context_.work_changed = true;
    return Status::Ok();
  });
}

Result<std::vector<WorkItem>> StoreTx::ClaimWork(const std::string& owner, Timestamp now,
                                                 std::chrono::microseconds lease, int limit) {
  const int ready = static_cast<int>(kWorkColumns.size());
  auto read = [ready](const auto& row) {  // a Query's row or a TextRow
    WorkItem item = ReadRow(kWorkColumns, row);
    item.ready_at = row.Time(ready);
    item.procedure = row.Text(ready + 1);
    item.version = static_cast<int>(row.Int(ready + 2));
    return item;
  };
  auto by_age = [](std::vector<WorkItem> items) {
    std::sort(items.begin(), items.end(), [](const WorkItem& a, const WorkItem& b) {
      return std::tie(a.created_at, a.id) < std::tie(b.created_at, b.id);
    });
    return items;
  };
  if (limit <= 0) return std::vector<WorkItem>();
  if (context_.dialect.is_postgres()) {
    // Through the pipeline: with an owed BEGIN and a COMMIT asked for, the claim is one round
    // trip.
    if (!context_.failure.ok()) return context_.failure;
    const NamedToNumbered numbered = Numbered(context_.dialect.ClaimWorkSql());
    const std::map<std::string, std::string> values = {
        {"owner", owner},
        {"lease_until", std::to_string(ToMicros(now + lease))},
        {"lease_run_at", std::to_string(ToMicros(now + lease))},
        {"now", std::to_string(ToMicros(now))},
        {"limit", std::to_string(limit)}};
    DeferredWrite claim{"claim work", numbered.sql, {}};
    for (const std::string& name : numbered.names) claim.params.emplace_back(values.at(name));
    std::vector<std::vector<Row>> results;
    if (Status sent = SendPipelined(context_, {claim}, nullptr, &results); !sent.ok()) return sent;
    std::vector<WorkItem> items;
    for (const Row& row : results[0]) items.push_back(read(TextRow(row)));
    return by_age(std::move(items));
  }
  return Guard(context_, "claim work", [&]() -> Result<std::vector<WorkItem>> {
    Query q(context_.sql, context_.dialect.ClaimWorkSql());
    q.Bind("owner", owner)
        .Bind("lease_until", now + lease)
        .Bind("lease_run_at", now + lease)
        .Bind("now", now)
        .Bind("limit", std::int64_t{limit})
        .Columns(ColumnKinds(kWorkColumns) + "iti");
    return by_age(ReadAll<WorkItem>(q, read));
  });
}

Result<bool> StoreTx::CompleteWork(const std::string& case_id, std::int64_t id, int attempt,
                                   const std::string& owner) {
  return Guard(context_, "complete work", [&]() -> Result<bool> {
    Query q(context_.sql,
            "DELETE FROM work WHERE case_id = :case_id AND id = :id"
            " AND state = 'leased' AND owner = :owner AND attempt = :attempt");
    q.Bind("case_id", case_id)
        .Bind("id", id)
        .Bind("owner", owner)
        .Bind("attempt", std::int64_t{attempt})
        .Execute();
    return q.AffectedRows() == 1;
  });
}

Result<std::vector<bool>> StoreTx::CompleteWorkBatch(const std::vector<WorkFence>& rows,
                                                     const std::string& owner,
                                                     std::vector<CaseRecord>* locked) {
  std::vector<bool> done(rows.size(), false);
  std::vector<std::string> ids;
  if (locked != nullptr) {
    for (const WorkFence& f : rows) ids.push_back(f.case_id);
    std::sort(ids.begin(), ids.end());
    ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  }
  if (!context_.dialect.is_postgres()) {
    for (size_t i = 0; i < rows.size(); ++i) {
      auto one = CompleteWork(rows[i].case_id, rows[i].id, rows[i].attempt, owner);
      if (!one) return one.error();
      done[i] = *one;
    }
    if (locked != nullptr) {
      auto cases = GetCasesForUpdate(ids);
      if (!cases) return cases.error();
      *locked = std::move(*cases);
    }
    return done;
  }
  // One fenced UPDATE by primary key a row, all in one pipeline: a join against an array of
  // keys lets the planner scan the whole table when its statistics are thin.
  if (rows.empty()) return done;
  if (Status flushed = FlushPending(context_); !flushed.ok()) return flushed;
  std::vector<DeferredWrite> writes;
  writes.reserve(rows.size());
  for (const WorkFence& f : rows) {
    writes.push_back(
        DeferredWrite{"complete work",
                      "DELETE FROM work WHERE case_id = $1 AND id = $2 AND attempt = $3"
                      " AND state = 'leased' AND owner = $4",
                      {f.case_id, std::to_string(f.id), std::to_string(f.attempt), owner}});
  }
  if (locked != nullptr && !ids.empty()) {
    // The cases, locked in id order, and then (a statement of its own, so that it sees what a
    // transaction we waited for appended) their chain heads: in the same round trip.
    const std::string array = ArrayLiteral(ids, [](const std::string& id) { return id; });
    writes.push_back(DeferredWrite{"lock cases",
                                   "SELECT " + SelectList(kCaseColumns, context_.dialect) +
                                       " FROM cases WHERE id = ANY(CAST($1 AS text[]))"
                                       " ORDER BY id FOR UPDATE",
                                   {array}});
    writes.push_back(DeferredWrite{
        "read chain heads", std::string(kChainHeadsSql) + "$1" + kChainHeadsTail, {array}});
  }
  std::vector<std::int64_t> affected;
  std::vector<std::vector<Row>> results;
  if (Status sent = SendPipelined(context_, writes, &affected, &results); !sent.ok()) return sent;
  for (size_t i = 0; i < rows.size(); ++i) done[i] = affected[i] == 1;
  if (locked != nullptr) {
    locked->clear();
    if (!ids.empty()) {
      for (const Row& row : results[rows.size()])
        locked->push_back(ReadRow(kCaseColumns, TextRow(row)));
      for (const Row& row : results[rows.size() + 1]) {
        TextRow head(row);
        context_.heads[head.Text(0)] = {head.Int(1), head.Text(2)};
      }
    }
  }
  return done;
}

Result<std::int64_t> StoreTx::CancelWork(const std::string& case_id,
                                         std::optional<std::int64_t> activation) {
  return Guard(context_, "cancel work", [&]() -> Result<std::int64_t> {
    Query q(context_.sql, std::string("DELETE FROM work WHERE case_id = :case_id") +
                              (activation ? " AND activation = :activation" : ""));
    q.Bind("case_id", case_id);
    if (activation) q.Bind("activation", *activation);
    q.Execute();
    return q.AffectedRows();
  });
}

Result<std::optional<Timestamp>> StoreTx::NextWorkDue() {
  return Guard(context_, "next work due", [&]() -> Result<std::optional<Timestamp>> {
    Query q(context_.sql, "SELECT MIN(run_at) FROM work");
    q.Columns("i").Execute();
    return q.OptTime(0);
  });
}

Result<std::vector<WorkItem>> StoreTx::ListLeasedWork(const std::string& owner) {
  return Guard(context_, "list leased work", [&]() -> Result<std::vector<WorkItem>> {
    Query q(context_.sql, "SELECT " + SelectList(kWorkColumns, context_.dialect) +
                              " FROM work WHERE state = 'leased' AND owner = :owner");
    q.Bind("owner", owner).Columns(kWorkColumns);
    return ReadAll<WorkItem>(q, [](const Query& row) {
      WorkItem item = ReadRow(kWorkColumns, row);
      item.ready_at = item.created_at;
      return item;
    });
  });
}

Result<std::vector<bool>> StoreTx::RenewLeases(const std::vector<WorkFence>& rows,
                                               const std::string& owner, Timestamp until) {
  return Guard(context_, "renew leases", [&]() -> Result<std::vector<bool>> {
    std::vector<bool> renewed(rows.size(), false);
    std::map<std::pair<std::string, std::int64_t>, size_t> index;
    for (size_t i = 0; i < rows.size(); ++i) index[{rows[i].case_id, rows[i].id}] = i;
    for (size_t start = 0; start < rows.size(); start += kWorkRowsPerInsert) {
      size_t end = std::min(rows.size(), start + kWorkRowsPerInsert);
      // Each row by its primary key and its attempt: the fence of the lease being renewed.
      std::string text =
          "UPDATE work SET lease_until = :until, run_at = :until"
          " WHERE state = 'leased' AND owner = :owner AND (";
      for (size_t i = start; i < end; ++i) {
        std::string n = std::to_string(i - start);
        if (i > start) text += " OR ";
        text += "(case_id = :c" + n + " AND id = :i" + n + " AND attempt = :a" + n + ")";
      }
      Query q(context_.sql, text + ") RETURNING case_id, id");
      q.Bind("until", until).Bind("owner", owner);
      for (size_t i = start; i < end; ++i) {
        std::string n = std::to_string(i - start);
        q.Bind("c" + n, rows[i].case_id)
            .Bind("i" + n, rows[i].id)
            .Bind("a" + n, std::int64_t{rows[i].attempt});
      }
      q.Columns("ti");
      for (bool more = q.Execute(); more; more = q.Next()) {
        auto it = index.find({q.Text(0), q.Int(1)});
        if (it != index.end()) renewed[it->second] = true;
      }
    }
    return renewed;
  });
}

Result<std::vector<WorkItem>> StoreTx::ListWork(const std::string& case_id) {
  return Guard(context_, "list work", [&]() -> Result<std::vector<WorkItem>> {
    Query q(context_.sql, "SELECT " + SelectList(kWorkColumns, context_.dialect) +
                              " FROM work WHERE case_id = :case_id ORDER BY id");
    q.Bind("case_id", case_id).Columns(kWorkColumns);
    return ReadAll(q, kWorkColumns);
  });
}

// --- engine lock

Result<bool> StoreTx::TryLockEngine(const std::string& name, const std::string& owner,
                                    Timestamp now, Timestamp until) {
  return Guard(context_, "lock engine", [&]() -> Result<bool> {
    Query q(context_.sql,
            "INSERT INTO engine_lock (name, owner, lease_until) VALUES (:name, :owner, :until)"
            " ON CONFLICT (name) DO UPDATE SET owner = excluded.owner,"
            " lease_until = excluded.lease_until"
            " WHERE engine_lock.owner = excluded.owner OR engine_lock.lease_until <= :now");
    q.Bind("name", name).Bind("owner", owner).Bind("until", until).Bind("now", now).Execute();
    return q.AffectedRows() == 1;
  });
}

Status StoreTx::UnlockEngine(const std::string& name, const std::string& owner) {
  return Guard(context_, "unlock engine", [&]() -> Status {
    Query q(context_.sql, "DELETE FROM engine_lock WHERE name = :name AND owner = :owner");
    q.Bind("name", name).Bind("owner", owner).Execute();
    return Status::Ok();
  });
}

Result<std::optional<std::string>> StoreTx::EngineLockHolder(const std::string& name) {
  return Guard(context_, "read engine lock", [&]() -> Result<std::optional<std::string>> {
    Query q(context_.sql, "SELECT owner FROM engine_lock WHERE name = :name");
    q.Bind("name", name).Columns("t");
    if (!q.Execute()) return std::optional<std::string>();
    return std::optional<std::string>(q.Text(0));
  });
}

// --- engines

Status StoreTx::RegisterEngine(const std::string& owner, Timestamp now) {
  return Guard(context_, "register engine", [&]() -> Status {
    Query q(context_.sql,
            "INSERT INTO engines (owner, started_at, seen_at) VALUES (:owner, :now, :now)"
            " ON CONFLICT (owner) DO UPDATE SET seen_at = excluded.seen_at");
    q.Bind("owner", owner).Bind("now", now).Execute();
    return Status::Ok();
  });
}

Status StoreTx::UnregisterEngine(const std::string& owner) {
  return Guard(context_, "unregister engine", [&]() -> Status {
    Query q(context_.sql, "DELETE FROM engines WHERE owner = :owner");
    q.Bind("owner", owner).Execute();
    return Status::Ok();
  });
}

Result<std::vector<std::string>> StoreTx::ListEngines() {
  return Guard(context_, "list engines", [&]() -> Result<std::vector<std::string>> {
    Query q(context_.sql, "SELECT owner FROM engines ORDER BY owner");
    q.Columns("t");
    std::vector<std::string> owners;
    for (bool more = q.Execute(); more; more = q.Next()) owners.push_back(q.Text(0));
    return owners;
  });
}

Result<std::int64_t> StoreTx::TakeOverEngine(const std::string& owner, Timestamp now) {
  return Guard(context_, "take over engine", [&]() -> Result<std::int64_t> {
    Query q(context_.sql,
            "UPDATE work SET run_at = :now WHERE state = 'leased' AND owner = :owner"
            " AND run_at > :now");
    q.Bind("now", now).Bind("owner", owner).Execute();
    const std::int64_t released = q.AffectedRows();
    Query forget(context_.sql, "DELETE FROM engines WHERE owner = :owner");
    forget.Bind("owner", owner).Execute();
    if (released > 0) context_.work_changed = true;
    return released;
  });
}

}  // namespace wf::engine
