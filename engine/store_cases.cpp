// The store's procedures and cases (engine/store.hpp, "procedures" and "cases"): deploying and
// reading procedures, inserting, reading, locking, updating (directly or deferred into the
// pipeline) and listing cases, and the paged case cursor reports read.
#include <algorithm>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <openssl/rand.h>

#include "engine/store.hpp"
#include "engine/store_internal.hpp"
#include "workflows/i18n.hpp"

namespace wf::engine {

namespace {

// A new case id that is taken already is drawn again this many times at most. With 100 random
// bits a second draw is already beyond belief; more means an id source that repeats itself.
constexpr int kCaseIdDraws = 8;

using namespace detail;  // NOLINT: the store's shared internals

// The columns of a new case's row in PendingWrites::new_cases, in the order of
// store_pipeline.cpp's "insert new cases" (those an UpdateCase before the insert changes).
enum NewCaseColumn : size_t {
  kNewStatus = 3,
  kNewData = 4,
  kNewState = 5,
  kNewUpdatedAt = 9,
  kNewDeadlineAt = 10,
  kNewPausedAt = 11,
  kNewEndedAt = 12,
  kNewRowVersion = 13,
};

// A new case's id: the store's CaseIdSource when it has one (tests), else NewCaseId.
std::string DrawCaseId(const TxContext& ctx, Timestamp started_at) {
  return ctx.case_ids != nullptr && *ctx.case_ids ? (*ctx.case_ids)(started_at)
                                                  : NewCaseId(started_at);
}

std::optional<std::string> MicrosParam(std::optional<Timestamp> t) {
  return t ? std::optional<std::string>(std::to_string(ToMicros(*t))) : std::nullopt;
}

Result<CaseRecord> SelectCase(TxContext& ctx, const std::string& id, bool for_update) {
  return Guard(ctx, "read case " + id, [&]() -> Result<CaseRecord> {
    Query q(ctx.sql, "SELECT " + SelectList(kCaseColumns, ctx.dialect) +
                         " FROM cases WHERE id = :id" +
                         (for_update && ctx.dialect.is_postgres() ? " FOR UPDATE" : ""));
    q.Bind("id", id).Columns(kCaseColumns);
    if (!q.Execute()) return Status::NotFound(TrFormat("no case {0}", id));
    return ReadRow(kCaseColumns, q);
  });
}

}  // namespace

std::string NewCaseId(Timestamp started_at) {
  static constexpr char kAlphabet[] = "0123456789abcdefghjkmnpqrstvwxyz";
  unsigned char random[kCaseIdRandomChars];  // one byte per character, 5 of its bits used
  if (RAND_bytes(random, sizeof(random)) != 1) {
    // OpenSSL's generator is seeded from the operating system and does not fail on Linux; if it
    // ever does, refuse to make ids that might repeat.
    throw std::runtime_error("OpenSSL RAND_bytes failed: no random case id");
  }
  std::string date = FormatRfc3339(started_at).substr(0, 10);
  date.erase(std::remove(date.begin(), date.end(), '-'), date.end());
  std::string id = date + "-";
  for (unsigned char byte : random) id.push_back(kAlphabet[byte & 31]);
  return id;
}

// --- procedures

Result<DeployOutcome> StoreTx::DeployProcedure(const ProcedureRecord& p) {
  return Guard(context_, "deploy procedure " + p.name, [&]() -> Result<DeployOutcome> {
    AdvisoryLock(context_, "wf_procedure:" + p.name);
    Query existing(context_.sql,
                   "SELECT version FROM procedures WHERE name = :name AND content_hash = :hash");
    existing.Bind("name", p.name).Bind("hash", p.content_hash).Columns("i");
    if (existing.Execute()) return DeployOutcome{static_cast<int>(existing.Int(0)), false};
    Query latest(context_.sql,
                 "SELECT COALESCE(MAX(version), 0) FROM procedures WHERE name = :name");
    latest.Bind("name", p.name).Columns("i").Execute();
    int version = static_cast<int>(latest.Int(0)) + 1;
    Query insert(context_.sql,
                 "INSERT INTO procedures (" + ColumnNames(kProcedureColumns) +
                     ") VALUES (:name, :version, :hash, :source, :title, :agency, :at)");
    insert.Bind("name", p.name)
        .Bind("version", std::int64_t{version})
        .Bind("hash", p.content_hash)
        .Bind("source", p.source)
        .Bind("title", p.title)
        .Bind("agency", p.agency)
        .Bind("at", p.deployed_at)
        .Execute();
    return DeployOutcome{version, true};
  });
}

Result<ProcedureRecord> StoreTx::LatestProcedure(const std::string& name) {
  return Guard(context_, "read procedure " + name, [&]() -> Result<ProcedureRecord> {
    Query q(context_.sql, "SELECT " + SelectList(kProcedureColumns, context_.dialect) +
                              " FROM procedures WHERE name = :name ORDER BY version DESC LIMIT 1");
    q.Bind("name", name).Columns(kProcedureColumns);
    if (!q.Execute()) return Status::NotFound("no procedure named '" + name + "' is deployed");
    return ReadRow(kProcedureColumns, q);
  });
}

Result<ProcedureRecord> StoreTx::GetProcedure(const std::string& name, int version) {
  return Guard(context_, "read procedure " + name, [&]() -> Result<ProcedureRecord> {
    Query q(context_.sql, "SELECT " + SelectList(kProcedureColumns, context_.dialect) +
                              " FROM procedures WHERE name = :name AND version = :version");
    q.Bind("name", name).Bind("version", std::int64_t{version}).Columns(kProcedureColumns);
    if (!q.Execute()) {
      return Status::NotFound("procedure '" + name + "' has no version " + std::to_string(version));
    }
    return ReadRow(kProcedureColumns, q);
  });
}

Result<std::vector<ProcedureRecord>> StoreTx::ListProcedures() {
  return Guard(context_, "list procedures", [&]() -> Result<std::vector<ProcedureRecord>> {
    Query q(context_.sql, "SELECT " + SelectList(kProcedureColumns, context_.dialect, false) +
                              " FROM procedures ORDER BY name, version");
    q.Columns(kProcedureColumns);
    return ReadAll(q, kProcedureColumns);
  });
}

// --- cases

Result<std::string> StoreTx::InsertCase(const CaseRecord& c) {
  return Guard(context_, "insert case", [&]() -> Result<std::string> {
    if (c.dedupe_key) {
      Query open(context_.sql,
                 "SELECT id FROM cases WHERE procedure = :procedure AND dedupe_key = :key"
                 " AND status = 'open'");
      open.Bind("procedure", c.procedure).Bind("key", *c.dedupe_key).Columns("t");
      if (open.Execute()) {
        return Status::Conflict("case " + open.Text(0) + " of " + c.procedure +
                                " is already open with dedupe key '" + *c.dedupe_key + "'");
      }
    }
    // The primary key decides whether an id is free: a drawn id that is taken (by any case,
    // committed or not) inserts nothing, and another is drawn.
    for (int draw = 1;; ++draw) {
      const std::string id = c.id.empty() ? DrawCaseId(context_, c.started_at) : c.id;
      Query q(context_.sql,
              "INSERT INTO cases (id, procedure, version, status, data, state, dedupe_key, agency,"
              " started_by, started_at, updated_at, deadline_at, clock_paused_at, ended_at,"
              " row_version, parent_case, parent_activation) VALUES (:id, :procedure, :version,"
              " :status, :data, :state, :dedupe, :agency, :started_by, :started_at, :updated_at,"
              " :deadline_at, :paused_at, :ended_at, 1, :parent, :parent_activation)"
              " ON CONFLICT (id) DO NOTHING");
      q.Bind("id", id)
          .Bind("procedure", c.procedure)
          .Bind("version", std::int64_t{c.version})
          .Bind("status", c.status)
          .Bind("data", c.data)
          .Bind("state", c.state)
          .Bind("dedupe", c.dedupe_key)
          .Bind("agency", c.agency)
          .Bind("started_by", c.started_by)
          .Bind("started_at", c.started_at)
          .Bind("updated_at", c.updated_at)
          .Bind("deadline_at", c.deadline_at)
          .Bind("paused_at", c.clock_paused_at)
          .Bind("ended_at", c.ended_at)
          .Bind("parent", c.parent_case)
          .Bind("parent_activation", c.parent_activation)
          .Execute();
      if (q.AffectedRows() == 1) {
        context_.heads[id] = {0, std::string()};  // a new case has no history yet
        return id;
      }
      if (!c.id.empty()) return Status::Conflict("insert case: case " + id + " already exists");
      if (draw == kCaseIdDraws) {
        return Status::Internal("insert case: " + std::to_string(kCaseIdDraws) +
                                " new case ids in a row were taken already (last " + id + ")");
      }
    }
  });
}

Result<CaseRecord> StoreTx::GetCase(const std::string& id) {
  return SelectCase(context_, id, false);
}

Result<CaseRecord> StoreTx::GetCaseForUpdate(const std::string& id) {
  return SelectCase(context_, id, true);
}

Result<std::string> StoreTx::InsertCaseDeferred(const CaseRecord& c) {
  if (!context_.defer_writes || c.dedupe_key) return InsertCase(c);
  if (!context_.failure.ok()) return context_.failure;
  const std::string id = c.id.empty() ? DrawCaseId(context_, c.started_at) : c.id;
  auto& pending = context_.pending;
  auto [it, first] = pending.new_case_index.emplace(id, pending.new_cases.size());
  if (!first) return Status::Conflict("insert case: case " + id + " already exists");
  pending.new_cases.push_back(
      Row{id, c.procedure, std::to_string(c.version), c.status, c.data, c.state, c.agency,
          c.started_by, std::to_string(ToMicros(c.started_at)),
          std::to_string(ToMicros(c.updated_at)), MicrosParam(c.deadline_at),
          MicrosParam(c.clock_paused_at), MicrosParam(c.ended_at), "1", c.parent_case,
          c.parent_activation ? std::optional<std::string>(std::to_string(*c.parent_activation))
                              : std::nullopt});
  context_.heads[id] = {0, std::string()};  // a new case has no history yet
  return id;
}

Status StoreTx::UpdateCase(CaseRecord& c) {
  if (context_.defer_writes) {
    if (!context_.failure.ok()) return context_.failure;
    auto& pending = context_.pending;
    if (auto it = pending.new_case_index.find(c.id); it != pending.new_case_index.end()) {
      // Not written yet: the insert takes these values.
      Row& row = pending.new_cases[it->second];
      row[kNewStatus] = c.status;
      row[kNewData] = c.data;
      row[kNewState] = c.state;
      row[kNewUpdatedAt] = std::to_string(ToMicros(c.updated_at));
      row[kNewDeadlineAt] = MicrosParam(c.deadline_at);
      row[kNewPausedAt] = MicrosParam(c.clock_paused_at);
      row[kNewEndedAt] = MicrosParam(c.ended_at);
      row[kNewRowVersion] = std::to_string(c.row_version + 1);
      ++c.row_version;
      return Status::Ok();
    }
    Row row{c.id,
            c.status,
            c.data,
            c.state,
            MicrosParam(c.deadline_at),
            MicrosParam(c.clock_paused_at),
            MicrosParam(c.ended_at),
            std::to_string(ToMicros(c.updated_at)),
            std::to_string(c.row_version),
            std::to_string(c.row_version + 1)};
    auto [it, first] = pending.case_index.emplace(c.id, pending.cases.size());
    if (first) {
      pending.cases.push_back(std::move(row));
    } else {
      row[8] = pending.cases[it->second][8];  // expect the version the first update expected
      pending.cases[it->second] = std::move(row);
    }
    ++c.row_version;
    return Status::Ok();
  }
  return Guard(context_, "update case " + c.id, [&]() -> Status {
    Query q(context_.sql,
            "UPDATE cases SET status = :status, data = :data, state = :state,"
            " deadline_at = :deadline_at, clock_paused_at = :paused_at, ended_at = :ended_at,"
            " updated_at = :updated_at, row_version = row_version + 1"
            " WHERE id = :id AND row_version = :expected");
    q.Bind("status", c.status)
        .Bind("data", c.data)
        .Bind("state", c.state)
        .Bind("deadline_at", c.deadline_at)
        .Bind("paused_at", c.clock_paused_at)
        .Bind("ended_at", c.ended_at)
        .Bind("updated_at", c.updated_at)
        .Bind("id", c.id)
        .Bind("expected", c.row_version);
    q.Execute();
    if (q.AffectedRows() == 1) {
      ++c.row_version;
      return Status::Ok();
    }
    Query now(context_.sql, "SELECT row_version FROM cases WHERE id = :id");
    now.Bind("id", c.id).Columns("i");
    if (!now.Execute()) return Status::NotFound("no case " + c.id);
    return Status::Conflict("case " + c.id + " was changed meanwhile (version " +
                            std::to_string(now.Int(0)) + ", expected " +
                            std::to_string(c.row_version) + ")");
  });
}

Result<std::vector<CaseRecord>> StoreTx::GetCases(std::vector<std::string> ids) {
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  std::vector<CaseRecord> cases;
  if (!context_.dialect.is_postgres()) {
    for (const auto& id : ids) {
      auto record = GetCase(id);
      if (record) cases.push_back(std::move(*record));
      if (!record && record.error().code() != ErrorCode::kNotFound) return record.error();
    }
    return cases;
  }
  return Guard(context_, "read cases", [&]() -> Result<std::vector<CaseRecord>> {
    if (ids.empty()) return cases;
    Query q(context_.sql, "SELECT " + SelectList(kCaseColumns, context_.dialect) +
                              " FROM cases WHERE id = ANY(CAST(:ids AS text[])) ORDER BY id");
    q.Bind("ids", ArrayLiteral(ids, [](const std::string& id) { return id; }))
        .Columns(kCaseColumns);
    return ReadAll(q, kCaseColumns);
  });
}

Result<std::vector<CaseRecord>> StoreTx::GetCasesForUpdate(std::vector<std::string> ids) {
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  if (!context_.dialect.is_postgres()) {
    std::vector<CaseRecord> cases;
    for (const auto& id : ids) {
      auto record = GetCaseForUpdate(id);
      if (record) {
        cases.push_back(std::move(*record));
      } else if (record.error().code() != ErrorCode::kNotFound) {
        return record.error();
      }
    }
    return cases;
  }
  return Guard(context_, "read cases", [&]() -> Result<std::vector<CaseRecord>> {
    if (ids.empty()) return std::vector<CaseRecord>();
    const std::string array = ArrayLiteral(ids, [](const std::string& id) { return id; });
    Query q(context_.sql, "SELECT " + SelectList(kCaseColumns, context_.dialect) +
                              " FROM cases WHERE id = ANY(CAST(:ids AS text[])) ORDER BY id"
                              " FOR UPDATE");
    q.Bind("ids", array).Columns(kCaseColumns);
    std::vector<CaseRecord> cases = ReadAll(q, kCaseColumns);
    // The chain heads, read after the locks are held (a statement of its own, so that it sees
    // what a transaction we waited for appended).
    Query heads(context_.sql, std::string(kChainHeadsSql) + ":ids" + kChainHeadsTail);
    heads.Bind("ids", array).Columns("tit");
    for (bool more = heads.Execute(); more; more = heads.Next()) {
      context_.heads[heads.Text(0)] = {heads.Int(1), heads.Text(2)};
    }
    return cases;
  });
}

Result<std::vector<CaseRecord>> StoreTx::ListCases(const CaseFilter& filter) {
  return Guard(context_, "list cases", [&]() -> Result<std::vector<CaseRecord>> {
    std::vector<std::string> where;
    if (filter.status) where.push_back("status = :status");
    if (filter.procedure) where.push_back("procedure = :procedure");
    if (filter.agency) where.push_back("agency = :agency");
    if (filter.overdue_at) {
      where.push_back(
          "status = 'open' AND deadline_at < :now"
          " AND (clock_paused_at IS NULL OR deadline_at < clock_paused_at)");
    }
    if (!filter.ids.empty()) {
      std::string in;
      for (size_t i = 0; i < filter.ids.size(); ++i) {
        in += (i > 0 ? ", :id" : ":id") + std::to_string(i);
      }
      where.push_back("id IN (" + in + ")");
    }
    Query q(context_.sql, "SELECT " + SelectList(kCaseColumns, context_.dialect, false) +
                              " FROM cases" + Where(where) + " ORDER BY started_at DESC, id DESC" +
                              (filter.limit > 0 ? " LIMIT :limit" : ""));
    if (filter.status) q.Bind("status", *filter.status);
    if (filter.procedure) q.Bind("procedure", *filter.procedure);
    if (filter.agency) q.Bind("agency", *filter.agency);
    if (filter.overdue_at) q.Bind("now", *filter.overdue_at);
    for (size_t i = 0; i < filter.ids.size(); ++i) q.Bind("id" + std::to_string(i), filter.ids[i]);
    if (filter.limit > 0) q.Bind("limit", std::int64_t{filter.limit});
    q.Columns(kCaseColumns);
    return ReadAll(q, kCaseColumns);
  });
}

Result<std::optional<CaseRecord>> StoreTx::FindOpenCaseByDedupe(const std::string& procedure,
                                                                const std::string& dedupe_key) {
  return Guard(context_, "find case by dedupe key", [&]() -> Result<std::optional<CaseRecord>> {
    Query q(context_.sql, "SELECT " + SelectList(kCaseColumns, context_.dialect) +
                              " FROM cases WHERE procedure = :procedure AND dedupe_key = :key"
                              " AND status = 'open'");
    q.Bind("procedure", procedure).Bind("key", dedupe_key).Columns(kCaseColumns);
    if (!q.Execute()) return std::optional<CaseRecord>();
    return std::optional<CaseRecord>(ReadRow(kCaseColumns, q));
  });
}

Result<std::vector<CaseRecord>> StoreTx::ListChildCases(const std::string& parent_case) {
  return Guard(context_, "list sub-cases", [&]() -> Result<std::vector<CaseRecord>> {
    Query q(context_.sql, "SELECT " + SelectList(kCaseColumns, context_.dialect, false) +
                              " FROM cases WHERE parent_case = :parent ORDER BY started_at, id");
    q.Bind("parent", parent_case).Columns(kCaseColumns);
    return ReadAll(q, kCaseColumns);
  });
}

// ---------------------------------------------------------------------------------------------
// Reports (engine/report.hpp): cursors that read one page at a time, and refused duplicates.

Result<std::vector<CaseRecord>> StoreTx::ListCasesAfter(const std::string& after_id, int limit) {
  return Guard(context_, "list cases", [&]() -> Result<std::vector<CaseRecord>> {
    Query q(context_.sql, "SELECT " + SelectList(kCaseColumns, context_.dialect, false) +
                              " FROM cases WHERE id > :after ORDER BY id LIMIT :limit");
    q.Bind("after", after_id).Bind("limit", std::int64_t{std::max(limit, 1)}).Columns(kCaseColumns);
    return ReadAll(q, kCaseColumns);
  });
}

}  // namespace wf::engine
