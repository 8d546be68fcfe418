// The store's audit and retention operations (engine/store.hpp, "audit and retention"): history
// in ranges and its verification, chain heads, archived chains, and removing archived cases.
#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include "engine/store.hpp"
#include "engine/store_internal.hpp"
#include "workflows/i18n.hpp"

namespace wf::engine {

namespace {

using namespace detail;  // NOLINT: the store's shared internals

constexpr int kAuditPage = 1000;

}  // namespace

// --- StoreTx ---------------------------------------------------------------------------------

Result<std::vector<CaseRecord>> StoreTx::ListEndedCases(Timestamp before,
                                                        const std::string& after_id, int limit) {
  return Guard(context_, "list ended cases", [&]() -> Result<std::vector<CaseRecord>> {
    Query q(context_.sql,
            "SELECT id, procedure, version, status, ended_at FROM cases"
            " WHERE status <> 'open' AND ended_at IS NOT NULL AND ended_at < :before"
            " AND id > :after ORDER BY id LIMIT :limit");
    q.Bind("before", before)
        .Bind("after", after_id)
        .Bind("limit", std::int64_t{limit})
        .Columns("ttiti");
    std::vector<CaseRecord> rows;
    for (bool more = q.Execute(); more; more = q.Next()) {
      CaseRecord c;
      c.id = q.Text(0);
      c.procedure = q.Text(1);
      c.version = static_cast<int>(q.Int(2));
      c.status = q.Text(3);
      c.ended_at = q.OptTime(4);
      rows.push_back(std::move(c));
    }
    return rows;
  });
}

Status StoreTx::RemoveArchivedCase(const ArchivedChain& chain) {
  const std::string& id = chain.head.case_id;
  return Guard(context_, "remove archived case " + id, [&]() -> Status {
    soci::session& sql = context_.sql;
    Query status(sql, "SELECT status FROM cases WHERE id = :id" +
                          std::string(context_.dialect.is_postgres() ? " FOR UPDATE" : ""));
    status.Bind("id", id).Columns("t");
    if (!status.Execute()) return Status::NotFound(TrFormat("no case {0}", id));
    if (status.Text(0) == kCaseOpen) {
      return Status::Conflict(TrFormat("case {0} was reopened; it is not archived", id));
    }
    Query head(sql, "SELECT COALESCE(MAX(seq), 0) FROM history WHERE case_id = :id");
    head.Bind("id", id).Columns("i").Execute();
    if (head.Int(0) != chain.head.seq) {
      return Status::Conflict(
          TrFormat("case {0} has history beyond seq {1} written to the archive; archive it again",
                   id, std::to_string(chain.head.seq)));
    }
    if (chain.head.seq > 0) {
      Query hash(sql, "SELECT hash FROM history WHERE case_id = :id AND seq = :seq");
      hash.Bind("id", id).Bind("seq", chain.head.seq).Columns("t").Execute();
      if (hash.Text(0) != chain.head.hash) {
        return Status::Conflict(
            TrFormat("case {0}: its newest event differs from the archive's", id));
      }
    }
    Query record(sql, "INSERT INTO archived_chains (" + ColumnNames(kArchivedColumns) +
                          ") VALUES (:case_id, :seq, :hash, :archive, :sha, :at)");
    record.Bind("case_id", id)
        .Bind("seq", chain.head.seq)
        .Bind("hash", chain.head.hash)
        .Bind("archive", chain.archive)
        .Bind("sha", chain.archive_sha256)
        .Bind("at", chain.archived_at)
        .Execute();
    // The mark that lets the append-only trigger pass these rows; it never outlives this
    // transaction.
    Query mark(sql, "INSERT INTO archiving (case_id) VALUES (:id)");
    mark.Bind("id", id).Execute();
    for (const char* table : {"history", "work", "tasks", "incidents"}) {
      Query remove(sql, std::string("DELETE FROM ") + table + " WHERE case_id = :id");
      remove.Bind("id", id).Execute();
    }
    Query unmark(sql, "DELETE FROM archiving WHERE case_id = :id");
    unmark.Bind("id", id).Execute();
    Query remove_case(sql, "DELETE FROM cases WHERE id = :id");
    remove_case.Bind("id", id).Execute();
    return Status::Ok();
  });
}

Result<std::optional<ArchivedChain>> StoreTx::GetArchivedChain(const std::string& case_id) {
  return Guard(context_, "read archived chain", [&]() -> Result<std::optional<ArchivedChain>> {
    Query q(context_.sql, "SELECT " + SelectList(kArchivedColumns, context_.dialect) +
                              " FROM archived_chains WHERE case_id = :case_id");
    q.Bind("case_id", case_id).Columns(kArchivedColumns);
    if (!q.Execute()) return std::optional<ArchivedChain>();
    return std::optional<ArchivedChain>(ReadRow(kArchivedColumns, q));
  });
}

// --- Store -----------------------------------------------------------------------------------

Status Store::ForEachHistory(const std::optional<std::string>& case_id,
                             const std::optional<std::string>& since_at,
                             const std::function<Status(const HistoryEvent&)>& visit) {
  return ForEachHistoryIn(HistoryRange{case_id, since_at, std::nullopt}, visit);
}

Status Store::ForEachHistoryIn(const HistoryRange& range,
                               const std::function<Status(const HistoryEvent&)>& visit) {
  std::string after_case;
  std::int64_t after_seq = 0;
  for (;;) {
    std::vector<HistoryEvent> page;
    Status status = Run(false, [&](TxContext& ctx) {
      return Guard(ctx, "read history", [&]() -> Status {
        std::vector<std::string> where;
        if (range.case_id) where.push_back("case_id = :case_id");
        if (range.since_at) where.push_back("at >= :since");
        if (range.until_at) where.push_back("at < :until");
        // A row value, not `case_id > x OR (case_id = x AND seq > y)`: both databases seek the
        // primary key with it, where the OR made PostgreSQL filter every row before the page.
        where.push_back("(case_id, seq) > (:after_case, :after_seq)");
        Query q(ctx.sql, "SELECT " + SelectList(kHistoryColumns, ctx.dialect) + " FROM history" +
                             Where(where) + " ORDER BY case_id, seq LIMIT :limit");
        if (range.case_id) q.Bind("case_id", *range.case_id);
        if (range.since_at) q.Bind("since", *range.since_at);
        if (range.until_at) q.Bind("until", *range.until_at);
        q.Bind("after_case", after_case)
            .Bind("after_seq", after_seq)
            .Bind("limit", std::int64_t{kAuditPage})
            .Columns(kHistoryColumns);
        page = ReadAll(q, kHistoryColumns);
        return Status::Ok();
      });
    });
    if (!status.ok()) return status;
    for (const HistoryEvent& event : page) {
      Status visited = visit(event);
      if (!visited.ok()) return visited;
    }
    if (page.size() < static_cast<size_t>(kAuditPage)) return Status::Ok();
    after_case = page.back().case_id;
    after_seq = page.back().seq;
  }
}

Status Store::ForEachChainHead(
    const std::function<Status(const ChainHead&, bool archived)>& visit) {
  std::string after;
  for (;;) {
    std::vector<ChainHead> page;
    Status status = Run(false, [&](TxContext& ctx) {
      return Guard(ctx, "read chain heads", [&]() -> Status {
        Query q(ctx.sql,
                "SELECT h.case_id, h.seq, h.hash FROM history h JOIN"
                " (SELECT case_id, MAX(seq) AS seq FROM history WHERE case_id > :after"
                " GROUP BY case_id ORDER BY case_id LIMIT :limit) m"
                " ON h.case_id = m.case_id AND h.seq = m.seq ORDER BY h.case_id");
        q.Bind("after", after).Bind("limit", std::int64_t{kAuditPage}).Columns("tit");
        for (bool more = q.Execute(); more; more = q.Next()) {
          page.push_back({q.Text(0), q.Int(1), q.Text(2)});
        }
        return Status::Ok();
      });
    });
    if (!status.ok()) return status;
    for (const ChainHead& head : page) {
      Status visited = visit(head, false);
      if (!visited.ok()) return visited;
    }
    if (page.size() < static_cast<size_t>(kAuditPage)) break;
    after = page.back().case_id;
  }
  return ForEachArchivedChain([&](const ArchivedChain& chain) { return visit(chain.head, true); });
}

Status Store::ForEachArchivedChain(const std::function<Status(const ArchivedChain&)>& visit) {
  std::string after;
  for (;;) {
    std::vector<ArchivedChain> page;
    Status status = Run(false, [&](TxContext& ctx) {
      return Guard(ctx, "read archived chains", [&]() -> Status {
        Query q(ctx.sql, "SELECT " + SelectList(kArchivedColumns, ctx.dialect) +
                             " FROM archived_chains WHERE case_id > :after"
                             " ORDER BY case_id LIMIT :limit");
        q.Bind("after", after).Bind("limit", std::int64_t{kAuditPage}).Columns(kArchivedColumns);
        page = ReadAll(q, kArchivedColumns);
        return Status::Ok();
      });
    });
    if (!status.ok()) return status;
    for (const ArchivedChain& chain : page) {
      Status visited = visit(chain);
      if (!visited.ok()) return visited;
    }
    if (page.size() < static_cast<size_t>(kAuditPage)) return Status::Ok();
    after = page.back().head.case_id;
  }
}

}  // namespace wf::engine
