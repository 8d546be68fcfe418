// The store's clerk-facing rows (engine/store.hpp, "tasks", "incidents", "evidence",
// "refusals"): tasks and their guarded state changes, incidents, reusable evidence, and refused
// duplicate starts.
#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/store.hpp"
#include "engine/store_internal.hpp"
#include "workflows/hash.hpp"
#include "workflows/i18n.hpp"

namespace wf::engine {

namespace {

using namespace detail;  // NOLINT: the store's shared internals

// The task's state, "task 7 is claimed by lan", in the reader's language.
std::string DescribeTask(const TaskRecord& task) {
  const std::string id = std::to_string(task.id);
  switch (task.status) {
    case TaskStatus::kOpen:
      return TrFormat("task {0} is open", id);
    case TaskStatus::kClaimed:
      return task.assignee ? TrFormat("task {0} is claimed by {1}", id, *task.assignee)
                           : TrFormat("task {0} is claimed", id);
    case TaskStatus::kCompleted:
      return TrFormat("task {0} is completed", id);
    case TaskStatus::kCancelled:
      return TrFormat("task {0} is cancelled", id);
  }
  return TrFormat("task {0} is open", id);
}

// Why a guarded task update changed nothing: kNotFound, or kConflict naming the task's state.
// `refusal` is the message, "cannot ... task {0}: {1}", translated here.
Status TaskRefusal(StoreTx& tx, std::int64_t id, const char* refusal) {
  Result<TaskRecord> task = tx.GetTask(id);
  if (!task) return task.error();
  return Status::Conflict(TrFormat(refusal, std::to_string(id), DescribeTask(*task)));
}

}  // namespace

const char* TaskStatusName(TaskStatus status) {
  switch (status) {
    case TaskStatus::kOpen:
      return "open";
    case TaskStatus::kClaimed:
      return "claimed";
    case TaskStatus::kCompleted:
      return "completed";
    case TaskStatus::kCancelled:
      return "cancelled";
  }
  return "open";
}

std::string EvidenceSubject(std::string_view department, std::string_view operation,
                            std::string_view rendered_call_json) {
  std::string text;
  text.reserve(department.size() + operation.size() + rendered_call_json.size() + 2);
  text.append(department).append("\n").append(operation).append("\n").append(rendered_call_json);
  return Sha256Hex(text);
}

// --- tasks

Result<std::int64_t> StoreTx::InsertTask(const TaskRecord& t) {
  return Guard(context_, "insert task", [&]() -> Result<std::int64_t> {
    Query q(context_.sql,
            "INSERT INTO tasks (case_id, activation, step, title, role, agency, form, status,"
            " assignee, created_at, due_at, escalated_to) VALUES (:case_id, :activation, :step,"
            " :title, :role, :agency, :form, :status, :assignee, :created_at, :due_at,"
            " :escalated_to) RETURNING id");
    q.Bind("case_id", t.case_id)
        .Bind("activation", t.activation)
        .Bind("step", t.step)
        .Bind("title", t.title)
        .Bind("role", t.role)
        .Bind("agency", t.agency)
        .Bind("form", t.form)
        .Bind("status", TaskStatusName(t.status))
        .Bind("assignee", t.assignee)
        .Bind("created_at", t.created_at)
        .Bind("due_at", t.due_at)
        .Bind("escalated_to", t.escalated_to)
        .Columns("i")
        .Execute();
    return q.Int(0);
  });
}

Result<TaskRecord> StoreTx::GetTask(std::int64_t id) {
  return Guard(context_, "read task", [&]() -> Result<TaskRecord> {
    Query q(context_.sql,
            "SELECT " + SelectList(kTaskColumns, context_.dialect) + " FROM tasks WHERE id = :id");
    q.Bind("id", id).Columns(kTaskColumns);
    if (q.Execute()) return ReadRow(kTaskColumns, q);
    if (context_.dialect.is_postgres()) {
      // Row-level security hid it, or there is none (migration 8's wf_task_exists looks past
      // the policies): a task of another agency is not this login's to act on (exit 6).
      Query hidden(context_.sql, "SELECT CASE WHEN wf_task_exists(:id) THEN 1 ELSE 0 END");
      hidden.Bind("id", id).Columns("i");
      hidden.Execute();
      if (hidden.Int(0) == 1) {
        return Status::NotPermitted(TrFormat(
            "task {0} belongs to an agency or role this login does not hold", std::to_string(id)));
      }
    }
    return Status::NotFound(TrFormat("no task {0}", std::to_string(id)));
  });
}

Result<std::vector<TaskRecord>> StoreTx::ListTasks(const TaskFilter& filter) {
  return Guard(context_, "list tasks", [&]() -> Result<std::vector<TaskRecord>> {
    std::vector<std::string> where;
    if (filter.open_only) where.push_back("status IN ('open', 'claimed')");
    if (filter.case_id) where.push_back("case_id = :case_id");
    if (!filter.agency_roles.empty()) {
      std::string any;
      for (size_t i = 0; i < filter.agency_roles.size(); ++i) {
        std::string n = std::to_string(i);
        if (i > 0) any += " OR ";
        any += "(agency = :agency" + n + " AND role = :role" + n + ")";
      }
      where.push_back(any);
    }
    Query q(context_.sql, "SELECT " + SelectList(kTaskColumns, context_.dialect) + " FROM tasks" +
                              Where(where) + " ORDER BY created_at, id" +
                              (filter.limit > 0 ? " LIMIT :limit" : ""));
    if (filter.case_id) q.Bind("case_id", *filter.case_id);
    for (size_t i = 0; i < filter.agency_roles.size(); ++i) {
      q.Bind("agency" + std::to_string(i), filter.agency_roles[i].first)
          .Bind("role" + std::to_string(i), filter.agency_roles[i].second);
    }
    if (filter.limit > 0) q.Bind("limit", std::int64_t{filter.limit});
    q.Columns(kTaskColumns);
    return ReadAll(q, kTaskColumns);
  });
}

Status StoreTx::ClaimTask(std::int64_t id, const std::string& actor) {
  Result<std::int64_t> changed = Guard(context_, "claim task", [&]() -> Result<std::int64_t> {
    Query q(context_.sql,
            "UPDATE tasks SET status = 'claimed', assignee = :actor WHERE id = :id"
            " AND (status = 'open' OR (status = 'claimed' AND assignee = :same_actor))");
    q.Bind("actor", actor).Bind("id", id).Bind("same_actor", actor).Execute();
    return q.AffectedRows();
  });
  if (!changed) return changed.error();
  return *changed == 1 ? Status::Ok()
                       : TaskRefusal(*this, id, TrNoop("cannot claim task {0}: {1}"));
}

Status StoreTx::ReleaseTask(std::int64_t id, const std::string& actor) {
  Result<std::int64_t> changed = Guard(context_, "release task", [&]() -> Result<std::int64_t> {
    Query q(context_.sql,
            "UPDATE tasks SET status = 'open', assignee = NULL WHERE id = :id"
            " AND status = 'claimed' AND assignee = :actor");
    q.Bind("id", id).Bind("actor", actor).Execute();
    return q.AffectedRows();
  });
  if (!changed) return changed.error();
  return *changed == 1 ? Status::Ok()
                       : TaskRefusal(*this, id, TrNoop("cannot release task {0}: {1}"));
}

Status StoreTx::CompleteTask(std::int64_t id, const std::string& actor,
                             const std::string& values_json, Timestamp now) {
  Result<std::int64_t> changed = Guard(context_, "complete task", [&]() -> Result<std::int64_t> {
    Query q(context_.sql,
            "UPDATE tasks SET status = 'completed', assignee = :assignee,"
            " completed_by = :completed_by, completed_at = :now, submitted = :submitted"
            " WHERE id = :id AND (status = 'open' OR (status = 'claimed' AND assignee = :actor))");
    q.Bind("assignee", actor)
        .Bind("completed_by", actor)
        .Bind("now", now)
        .Bind("submitted", values_json)
        .Bind("id", id)
        .Bind("actor", actor)
        .Execute();
    return q.AffectedRows();
  });
  if (!changed) return changed.error();
  return *changed == 1 ? Status::Ok()
                       : TaskRefusal(*this, id, TrNoop("cannot complete task {0}: {1}"));
}

Status StoreTx::EscalateTask(std::int64_t id, const std::string& role,
                             std::optional<Timestamp> due_at) {
  Result<std::int64_t> changed = Guard(context_, "escalate task", [&]() -> Result<std::int64_t> {
    Query q(context_.sql,
            "UPDATE tasks SET role = :role, escalated_to = :escalated_to, status = 'open',"
            " assignee = NULL, due_at = :due_at WHERE id = :id AND status IN ('open', 'claimed')");
    q.Bind("role", role).Bind("escalated_to", role).Bind("due_at", due_at).Bind("id", id).Execute();
    return q.AffectedRows();
  });
  if (!changed) return changed.error();
  return *changed == 1 ? Status::Ok()
                       : TaskRefusal(*this, id, TrNoop("cannot escalate task {0}: {1}"));
}

Result<std::int64_t> StoreTx::CancelTasks(const std::string& case_id,
                                          std::optional<std::int64_t> activation) {
  return Guard(context_, "cancel tasks", [&]() -> Result<std::int64_t> {
    Query q(context_.sql,
            std::string("UPDATE tasks SET status = 'cancelled' WHERE case_id = :case_id") +
                (activation ? " AND activation = :activation" : "") +
                " AND status IN ('open', 'claimed')");
    q.Bind("case_id", case_id);
    if (activation) q.Bind("activation", *activation);
    q.Execute();
    return q.AffectedRows();
  });
}

// --- incidents

Result<std::int64_t> StoreTx::InsertIncident(const IncidentRecord& i) {
  return Guard(context_, "insert incident", [&]() -> Result<std::int64_t> {
    Query q(context_.sql,
            "INSERT INTO incidents (case_id, activation, step, message, status, created_at)"
            " VALUES (:case_id, :activation, :step, :message, :status, :created_at) RETURNING id");
    q.Bind("case_id", i.case_id)
        .Bind("activation", i.activation)
        .Bind("step", i.step)
        .Bind("message", i.message)
        .Bind("status", i.status == IncidentStatus::kResolved ? "resolved" : "open")
        .Bind("created_at", i.created_at)
        .Columns("i")
        .Execute();
    return q.Int(0);
  });
}

Result<IncidentRecord> StoreTx::GetIncident(std::int64_t id) {
  return Guard(context_, "read incident", [&]() -> Result<IncidentRecord> {
    Query q(context_.sql, "SELECT " + SelectList(kIncidentColumns, context_.dialect) +
                              " FROM incidents WHERE id = :id");
    q.Bind("id", id).Columns(kIncidentColumns);
    if (!q.Execute()) return Status::NotFound(TrFormat("no incident {0}", std::to_string(id)));
    return ReadRow(kIncidentColumns, q);
  });
}

Result<std::vector<IncidentRecord>> StoreTx::ListIncidents(
    const std::optional<std::string>& case_id) {
  return Guard(context_, "list incidents", [&]() -> Result<std::vector<IncidentRecord>> {
    Query q(context_.sql,
            "SELECT " + SelectList(kIncidentColumns, context_.dialect) + " FROM incidents WHERE " +
                (case_id ? "case_id = :case_id" : "status = 'open'") + " ORDER BY created_at, id");
    if (case_id) q.Bind("case_id", *case_id);
    q.Columns(kIncidentColumns);
    return ReadAll(q, kIncidentColumns);
  });
}

Status StoreTx::ResolveIncident(std::int64_t id, const std::string& actor, Timestamp now) {
  Result<std::int64_t> changed = Guard(context_, "resolve incident", [&]() -> Result<std::int64_t> {
    Query q(context_.sql,
            "UPDATE incidents SET status = 'resolved', resolved_at = :now, resolved_by = :actor"
            " WHERE id = :id AND status = 'open'");
    q.Bind("now", now).Bind("actor", actor).Bind("id", id).Execute();
    return q.AffectedRows();
  });
  if (!changed) return changed.error();
  if (*changed == 1) return Status::Ok();
  Result<IncidentRecord> incident = GetIncident(id);
  if (!incident) return incident.error();
  return Status::Conflict(TrFormat("incident {0} is already resolved", std::to_string(id)));
}

// --- evidence

Result<std::int64_t> StoreTx::InsertEvidence(const EvidenceRecord& e) {
  return Guard(context_, "insert evidence", [&]() -> Result<std::int64_t> {
    Query q(context_.sql,
            "INSERT INTO evidence (subject, department, result, verified_at, case_id, step)"
            " VALUES (:subject, :department, :result, :verified_at, :case_id, :step) RETURNING id");
    q.Bind("subject", e.subject)
        .Bind("department", e.department)
        .Bind("result", e.result)
        .Bind("verified_at", e.verified_at)
        .Bind("case_id", e.case_id)
        .Bind("step", e.step)
        .Columns("i")
        .Execute();
    return q.Int(0);
  });
}

Result<std::optional<EvidenceRecord>> StoreTx::FindEvidence(const std::string& subject,
                                                            Timestamp not_before) {
  return Guard(context_, "find evidence", [&]() -> Result<std::optional<EvidenceRecord>> {
    Query q(context_.sql, "SELECT " + SelectList(kEvidenceColumns, context_.dialect) +
                              " FROM evidence WHERE subject = :subject AND verified_at >= :since"
                              " ORDER BY verified_at DESC, id DESC LIMIT 1");
    q.Bind("subject", subject).Bind("since", not_before).Columns(kEvidenceColumns);
    if (!q.Execute()) return std::optional<EvidenceRecord>();
    return std::optional<EvidenceRecord>(ReadRow(kEvidenceColumns, q));
  });
}

// --- refusals

Result<std::int64_t> StoreTx::InsertRefusal(const RefusalRecord& r) {
  return Guard(context_, "record refused duplicate", [&]() -> Result<std::int64_t> {
    Query q(context_.sql,
            "INSERT INTO refusals (procedure, dedupe_key, open_case, actor, refused_at)"
            " VALUES (:procedure, :key, :open_case, :actor, :at) RETURNING id");
    q.Bind("procedure", r.procedure)
        .Bind("key", r.dedupe_key)
        .Bind("open_case", r.open_case)
        .Bind("actor", r.actor)
        .Bind("at", r.refused_at)
        .Columns("i")
        .Execute();
    return q.Int(0);
  });
}

Result<std::optional<IdempotencyRecord>> StoreTx::FindIdempotencyKey(const std::string& client,
                                                                     const std::string& key) {
  return Guard(context_, "find idempotency key", [&]() -> Result<std::optional<IdempotencyRecord>> {
    Query q(context_.sql,
            "SELECT procedure, request_hash, case_id, created_at"
            " FROM idempotency_keys WHERE client = :client AND key = :key");
    q.Bind("client", client).Bind("key", key).Columns("ttti");
    if (!q.Execute()) return std::optional<IdempotencyRecord>();
    IdempotencyRecord r;
    r.client = client;
    r.key = key;
    r.procedure = q.Text(0);
    r.request_hash = q.Text(1);
    r.case_id = q.Text(2);
    r.created_at = FromMicros(q.Int(3));
    return std::optional<IdempotencyRecord>(std::move(r));
  });
}

Result<bool> StoreTx::InsertIdempotencyKey(const IdempotencyRecord& r) {
  if (context_.defer_writes) {
    if (!context_.failure.ok()) return context_.failure;
    context_.pending.idempotency_keys.push_back(Row{r.client, r.key, r.procedure, r.request_hash,
                                                    r.case_id,
                                                    std::to_string(ToMicros(r.created_at))});
    return true;
  }
  return Guard(context_, "record idempotency key", [&]() -> Result<bool> {
    Query q(context_.sql,
            "INSERT INTO idempotency_keys (client, key, procedure, request_hash, case_id,"
            " created_at) VALUES (:client, :key, :procedure, :hash, :case_id, :at)"
            " ON CONFLICT (client, key) DO NOTHING");
    q.Bind("client", r.client)
        .Bind("key", r.key)
        .Bind("procedure", r.procedure)
        .Bind("hash", r.request_hash)
        .Bind("case_id", r.case_id)
        .Bind("at", r.created_at);
    q.Execute();
    return q.AffectedRows() == 1;
  });
}

Result<std::vector<RefusalRecord>> StoreTx::ListRefusalsAfter(std::int64_t after_id, int limit) {
  return Guard(context_, "list refused duplicates", [&]() -> Result<std::vector<RefusalRecord>> {
    Query q(context_.sql, "SELECT " + SelectList(kRefusalColumns, context_.dialect) +
                              " FROM refusals WHERE id > :after ORDER BY id LIMIT :limit");
    q.Bind("after", after_id)
        .Bind("limit", std::int64_t{std::max(limit, 1)})
        .Columns(kRefusalColumns);
    return ReadAll(q, kRefusalColumns);
  });
}

}  // namespace wf::engine
