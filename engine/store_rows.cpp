// The column tables of the store's records (engine/store_rows.hpp). Each entry is one column in
// SELECT order: its name, its SOCI kind and where its value goes.
#include "engine/store_rows.hpp"

namespace wf::engine::detail {

namespace {

WorkState ParseWorkState(const std::string& text) {
  if (text == "leased") return WorkState::kLeased;
  return WorkState::kReady;
}

TaskStatus ParseTaskStatus(const std::string& text) {
  if (text == "claimed") return TaskStatus::kClaimed;
  if (text == "completed") return TaskStatus::kCompleted;
  if (text == "cancelled") return TaskStatus::kCancelled;
  return TaskStatus::kOpen;
}

using P = ProcedureRecord;
constexpr Column<P> kProcedure[] = {
    {"name", 't', [](P& r, const Cell& v) { r.name = v.Text(); }},
    {"version", 'i', [](P& r, const Cell& v) { r.version = static_cast<int>(v.Int()); }},
    {"content_hash", 't', [](P& r, const Cell& v) { r.content_hash = v.Text(); }},
    {"source", 't', [](P& r, const Cell& v) { r.source = v.Text(); }, Select::kDocument},
    {"title", 't', [](P& r, const Cell& v) { r.title = v.Text(); }},
    {"agency", 't', [](P& r, const Cell& v) { r.agency = v.Text(); }},
    {"deployed_at", 'i', [](P& r, const Cell& v) { r.deployed_at = v.Time(); }},
};

using C = CaseRecord;
constexpr Column<C> kCase[] = {
    {"id", 't', [](C& r, const Cell& v) { r.id = v.Text(); }},
    {"procedure", 't', [](C& r, const Cell& v) { r.procedure = v.Text(); }},
    {"version", 'i', [](C& r, const Cell& v) { r.version = static_cast<int>(v.Int()); }},
    {"status", 't', [](C& r, const Cell& v) { r.status = v.Text(); }},
    {"data", 't', [](C& r, const Cell& v) { r.data = v.Text(); }, Select::kJsonDocument},
    {"state", 't', [](C& r, const Cell& v) { r.state = v.Text(); }, Select::kJsonDocument},
    {"dedupe_key", 't', [](C& r, const Cell& v) { r.dedupe_key = v.OptText(); }},
    {"agency", 't', [](C& r, const Cell& v) { r.agency = v.Text(); }},
    {"started_by", 't', [](C& r, const Cell& v) { r.started_by = v.Text(); }},
    {"started_at", 'i', [](C& r, const Cell& v) { r.started_at = v.Time(); }},
    {"updated_at", 'i', [](C& r, const Cell& v) { r.updated_at = v.Time(); }},
    {"deadline_at", 'i', [](C& r, const Cell& v) { r.deadline_at = v.OptTime(); }},
    {"clock_paused_at", 'i', [](C& r, const Cell& v) { r.clock_paused_at = v.OptTime(); }},
    {"ended_at", 'i', [](C& r, const Cell& v) { r.ended_at = v.OptTime(); }},
    {"row_version", 'i', [](C& r, const Cell& v) { r.row_version = v.Int(); }},
    {"parent_case", 't', [](C& r, const Cell& v) { r.parent_case = v.OptText(); }},
    {"parent_activation", 'i', [](C& r, const Cell& v) { r.parent_activation = v.OptInt(); }},
};

using W = WorkItem;
constexpr Column<W> kWork[] = {
    {"case_id", 't', [](W& r, const Cell& v) { r.case_id = v.Text(); }},
    {"id", 'i', [](W& r, const Cell& v) { r.id = v.Int(); }},
    {"kind", 't', [](W& r, const Cell& v) { r.kind = v.Text(); }},
    {"step", 't', [](W& r, const Cell& v) { r.step = v.Text(); }},
    {"activation", 'i', [](W& r, const Cell& v) { r.activation = v.Int(); }},
    {"payload", 't', [](W& r, const Cell& v) { r.payload = v.Text(); }, Select::kJson},
    {"state", 't', [](W& r, const Cell& v) { r.state = ParseWorkState(v.Text()); }},
    {"run_at", 'i', [](W& r, const Cell& v) { r.run_at = v.Time(); }},
    {"owner", 't', [](W& r, const Cell& v) { r.owner = v.Text(); }},
    {"lease_until", 'i', [](W& r, const Cell& v) { r.lease_until = v.OptTime(); }},
    {"attempt", 'i', [](W& r, const Cell& v) { r.attempt = static_cast<int>(v.Int()); }},
    {"created_at", 'i', [](W& r, const Cell& v) { r.created_at = v.Time(); }},
};

using T = TaskRecord;
constexpr Column<T> kTask[] = {
    {"case_id", 't', [](T& r, const Cell& v) { r.case_id = v.Text(); }},
    {"id", 'i', [](T& r, const Cell& v) { r.id = v.Int(); }},
    {"activation", 'i', [](T& r, const Cell& v) { r.activation = v.Int(); }},
    {"step", 't', [](T& r, const Cell& v) { r.step = v.Text(); }},
    {"title", 't', [](T& r, const Cell& v) { r.title = v.Text(); }},
    {"role", 't', [](T& r, const Cell& v) { r.role = v.Text(); }},
    {"agency", 't', [](T& r, const Cell& v) { r.agency = v.Text(); }},
    {"form", 't', [](T& r, const Cell& v) { r.form = v.Text(); }, Select::kJson},
    {"status", 't', [](T& r, const Cell& v) { r.status = ParseTaskStatus(v.Text()); }},
    {"assignee", 't', [](T& r, const Cell& v) { r.assignee = v.OptText(); }},
    {"created_at", 'i', [](T& r, const Cell& v) { r.created_at = v.Time(); }},
    {"due_at", 'i', [](T& r, const Cell& v) { r.due_at = v.OptTime(); }},
    {"escalated_to", 't', [](T& r, const Cell& v) { r.escalated_to = v.OptText(); }},
    {"completed_by", 't', [](T& r, const Cell& v) { r.completed_by = v.OptText(); }},
    {"completed_at", 'i', [](T& r, const Cell& v) { r.completed_at = v.OptTime(); }},
    {"submitted", 't', [](T& r, const Cell& v) { r.values = v.OptText(); }, Select::kJson},
};

using I = IncidentRecord;
constexpr Column<I> kIncident[] = {
    {"case_id", 't', [](I& r, const Cell& v) { r.case_id = v.Text(); }},
    {"id", 'i', [](I& r, const Cell& v) { r.id = v.Int(); }},
    {"activation", 'i', [](I& r, const Cell& v) { r.activation = v.Int(); }},
    {"step", 't', [](I& r, const Cell& v) { r.step = v.Text(); }},
    {"message", 't', [](I& r, const Cell& v) { r.message = v.Text(); }},
    {"status", 't',
     [](I& r, const Cell& v) {
       r.status = v.Text() == "resolved" ? IncidentStatus::kResolved : IncidentStatus::kOpen;
     }},
    {"created_at", 'i', [](I& r, const Cell& v) { r.created_at = v.Time(); }},
    {"resolved_at", 'i', [](I& r, const Cell& v) { r.resolved_at = v.OptTime(); }},
    {"resolved_by", 't', [](I& r, const Cell& v) { r.resolved_by = v.OptText(); }},
};

using E = EvidenceRecord;
constexpr Column<E> kEvidence[] = {
    {"subject", 't', [](E& r, const Cell& v) { r.subject = v.Text(); }},
    {"id", 'i', [](E& r, const Cell& v) { r.id = v.Int(); }},
    {"department", 't', [](E& r, const Cell& v) { r.department = v.Text(); }},
    {"result", 't', [](E& r, const Cell& v) { r.result = v.Text(); }, Select::kJson},
    {"verified_at", 'i', [](E& r, const Cell& v) { r.verified_at = v.Time(); }},
    {"case_id", 't', [](E& r, const Cell& v) { r.case_id = v.Text(); }},
    {"step", 't', [](E& r, const Cell& v) { r.step = v.Text(); }},
};

using R = RefusalRecord;
constexpr Column<R> kRefusal[] = {
    {"id", 'i', [](R& r, const Cell& v) { r.id = v.Int(); }},
    {"procedure", 't', [](R& r, const Cell& v) { r.procedure = v.Text(); }},
    {"dedupe_key", 't', [](R& r, const Cell& v) { r.dedupe_key = v.Text(); }},
    {"open_case", 't', [](R& r, const Cell& v) { r.open_case = v.Text(); }},
    {"actor", 't', [](R& r, const Cell& v) { r.actor = v.Text(); }},
    {"refused_at", 'i', [](R& r, const Cell& v) { r.refused_at = v.Time(); }},
};

// History details stay TEXT on both databases (they are hashed): not a JSON column here.
using H = HistoryEvent;
constexpr Column<H> kHistory[] = {
    {"case_id", 't', [](H& r, const Cell& v) { r.case_id = v.Text(); }},
    {"seq", 'i', [](H& r, const Cell& v) { r.seq = v.Int(); }},
    {"at", 't', [](H& r, const Cell& v) { r.at = v.Text(); }},
    {"actor", 't', [](H& r, const Cell& v) { r.actor = v.Text(); }},
    {"action", 't', [](H& r, const Cell& v) { r.action = v.Text(); }},
    {"step", 't', [](H& r, const Cell& v) { r.step = v.Text(); }},
    {"details", 't', [](H& r, const Cell& v) { r.details = v.Text(); }},
    {"prev_hash", 't', [](H& r, const Cell& v) { r.prev_hash = v.Text(); }},
    {"hash", 't', [](H& r, const Cell& v) { r.hash = v.Text(); }},
};

using A = ArchivedChain;
constexpr Column<A> kArchived[] = {
    {"case_id", 't', [](A& r, const Cell& v) { r.head.case_id = v.Text(); }},
    {"seq", 'i', [](A& r, const Cell& v) { r.head.seq = v.Int(); }},
    {"hash", 't', [](A& r, const Cell& v) { r.head.hash = v.Text(); }},
    {"archive", 't', [](A& r, const Cell& v) { r.archive = v.Text(); }},
    {"archive_sha256", 't', [](A& r, const Cell& v) { r.archive_sha256 = v.Text(); }},
    {"archived_at", 'i', [](A& r, const Cell& v) { r.archived_at = v.Time(); }},
};

}  // namespace

// Constant-initialised (spans over constexpr arrays), so usable from any static initialiser.
constinit const ColumnTable<ProcedureRecord> kProcedureColumns = kProcedure;
constinit const ColumnTable<CaseRecord> kCaseColumns = kCase;
constinit const ColumnTable<WorkItem> kWorkColumns = kWork;
constinit const ColumnTable<TaskRecord> kTaskColumns = kTask;
constinit const ColumnTable<IncidentRecord> kIncidentColumns = kIncident;
constinit const ColumnTable<EvidenceRecord> kEvidenceColumns = kEvidence;
constinit const ColumnTable<RefusalRecord> kRefusalColumns = kRefusal;
constinit const ColumnTable<HistoryEvent> kHistoryColumns = kHistory;
constinit const ColumnTable<ArchivedChain> kArchivedColumns = kArchived;

}  // namespace wf::engine::detail
