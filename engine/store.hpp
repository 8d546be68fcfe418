#pragma once

// The durable store (DESIGN.md decisions 2-4, 11, 13): procedures, cases, work, tasks,
// incidents, evidence and history in SQL through SOCI, on PostgreSQL (production, many engines)
// or SQLite (embedded default, one machine). SOCI stays inside the store's .cpp files.
//
// Every change happens inside Store::Transact: the callback gets a StoreTx and may do any number
// of row operations; they commit together or not at all (decision 3). Expected failures come back
// as Status values and never as exceptions:
//   kNotFound     no such row
//   kConflict     a unique key is taken (duplicate case, dedupe key), a stale row_version, a task
//                 or incident in the wrong state
//   kUnavailable  the database is away or busy (connection lost, SQLite busy past its timeout,
//                 PostgreSQL deadlock or serialisation failure): roll back, back off, retry
//   kInternal     anything else, with the database's message
// After a database error inside a transaction the transaction is doomed: later calls on that
// StoreTx fail with the same status and Transact rolls back, whatever the callback returns.
//
// Times are Timestamps (engine/timestamp.hpp), kept as BIGINT microseconds since the epoch.
// JSON documents (case data and state, work payloads, forms, task values, evidence results,
// history details) cross this interface as JSON text; the store does not interpret them.

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "engine/dialect.hpp"
#include "engine/history.hpp"
#include "engine/personal.hpp"
#include "engine/timestamp.hpp"
#include "workflows/status.hpp"

namespace wf::engine {

namespace detail {
struct TxContext;
struct StoreState;
}  // namespace detail

// ---------------------------------------------------------------------------------------------
// Rows

// A deployed procedure (decision 7): immutable; versions count 1, 2, ... per name, one per
// distinct content.
struct ProcedureRecord {
  std::string name;
  int version = 0;           // assigned by DeployProcedure
  std::string content_hash;  // SHA-256 hex of source
  std::string source;        // the YAML text; empty in ListProcedures
  std::string title;
  std::string agency;
  Timestamp deployed_at{};
};

struct DeployOutcome {
  int version = 0;
  bool created = false;  // false: this content was already deployed as `version`
};

// The status of a case that is still running. Ended cases carry "completed", "refused",
// "cancelled" or their end step's outcome.
inline constexpr std::string_view kCaseOpen = "open";

// Random characters in a case id: 20 of 32 letters, 100 random bits.
inline constexpr int kCaseIdRandomChars = 20;

// A new case id: "20260102-k3v9x2m7qa4e8hn6rt1w": the start date (UTC, so ids sort by day) and
// kCaseIdRandomChars characters of 0-9a-z without i, l, o and u, from OpenSSL's RAND_bytes
// (100 bits: a collision is beyond belief, and InsertCase draws again if one ever happens).
// Throws std::runtime_error if OpenSSL has no randomness to give.
std::string NewCaseId(Timestamp started_at);

// Where InsertCase gets the id of a new case (NewCaseId unless a Store is told otherwise).
using CaseIdSource = std::function<std::string(Timestamp started_at)>;

struct CaseRecord {
  std::string id;  // assigned by InsertCase when empty
  std::string procedure;
  int version = 0;  // of the procedure
  std::string status{kCaseOpen};
  std::string data = "{}";   // JSON text: the case data
  std::string state = "{}";  // JSON text: the machine's run-time state, opaque here
  std::optional<std::string> dedupe_key;
  std::string agency;
  std::string started_by;  // actor who started it
  Timestamp started_at{};
  Timestamp updated_at{};
  std::optional<Timestamp> deadline_at;
  std::optional<Timestamp> clock_paused_at;  // set while the statutory clock is stopped
  std::optional<Timestamp> ended_at;
  std::int64_t row_version = 0;            // optimistic concurrency: 1 after insert, +1 per update
  std::optional<std::string> parent_case;  // set for a sub-case (call_procedure)
  std::optional<std::int64_t> parent_activation;  // the parent step's activation
};

struct CaseFilter {
  std::optional<std::string> status;
  std::optional<std::string> procedure;
  std::optional<std::string> agency;
  // Only open cases whose deadline passed before this time (and before the clock was paused):
  // the read model's IsOverdue (engine/case_view.hpp) in SQL.
  std::optional<Timestamp> overdue_at;
  std::vector<std::string> ids;  // only these cases; empty: any
  int limit = 50;                // 0: all
};

// A row is ready (waiting for run_at) or leased to an engine; finished rows are deleted.
enum class WorkState { kReady, kLeased };
const char* WorkStateName(WorkState state);

// Work to enqueue: something the engine must do for a case at or after run_at.
struct NewWork {
  std::string case_id;
  std::string kind;  // "invoke", "timer", "child_ended", "signal", ... (the engine's)
  std::string step;
  std::int64_t activation = 0;
  std::string payload = "{}";  // JSON text
  Timestamp run_at{};
};

struct WorkItem {
  std::string case_id;
  std::int64_t id = 0;
  std::string kind;
  std::string step;
  std::int64_t activation = 0;
  std::string payload;
  WorkState state = WorkState::kReady;
  Timestamp run_at{};  // when the row is next claimable: its due time, or its lease expiry
  std::string owner;   // the leaseholder; empty when never leased
  std::optional<Timestamp> lease_until;
  int attempt = 0;  // claims so far; the fencing token of the current lease
  Timestamp created_at{};
  // Set by ClaimWork: when the row became claimable before this claim (its due time, or the
  // expiry of the lease it was taken back from; on SQLite its creation time).
  Timestamp ready_at{};
  // Set by ClaimWork and for the rows a commit hands back: the procedure and version of the row's
  // case (empty and 0 otherwise), so that the engine knows its expressions before reading it.
  std::string procedure;
  int version = 0;
};

// Identifies a leased work row and the lease a completion is fenced on.
struct WorkFence {
  std::string case_id;
  std::int64_t id = 0;
  int attempt = 0;
};

enum class TaskStatus { kOpen, kClaimed, kCompleted, kCancelled };
const char* TaskStatusName(TaskStatus status);

struct TaskRecord {
  std::string case_id;
  std::int64_t id = 0;  // assigned by InsertTask; unique across cases
  std::int64_t activation = 0;
  std::string step;
  std::string title;
  std::string role;
  std::string agency;
  std::string form = "{}";  // JSON text
  TaskStatus status = TaskStatus::kOpen;
  std::optional<std::string> assignee;
  Timestamp created_at{};
  std::optional<Timestamp> due_at;
  std::optional<std::string> escalated_to;
  std::optional<std::string> completed_by;
  std::optional<Timestamp> completed_at;
  std::optional<std::string> values;  // JSON text submitted on completion
};

struct TaskFilter {
  // Tasks for any of these (agency, role) pairs; empty: every agency and role.
  std::vector<std::pair<std::string, std::string>> agency_roles;
  std::optional<std::string> case_id;
  bool open_only = true;  // only open and claimed tasks
  int limit = 0;          // 0: all
};

enum class IncidentStatus { kOpen, kResolved };

struct IncidentRecord {
  std::string case_id;
  std::int64_t id = 0;  // assigned by InsertIncident; unique across cases
  std::int64_t activation = 0;
  std::string step;
  std::string message;
  IncidentStatus status = IncidentStatus::kOpen;
  Timestamp created_at{};
  std::optional<Timestamp> resolved_at;
  std::optional<std::string> resolved_by;
};

// What a department verified about a subject, reusable by other cases (decision 8).
struct EvidenceRecord {
  std::string subject;  // EvidenceSubject(...)
  std::int64_t id = 0;  // assigned by InsertEvidence
  std::string department;
  std::string result = "{}";  // JSON text
  Timestamp verified_at{};
  std::string case_id;  // the case whose call produced it
  std::string step;
};

// The subject key of a call: SHA-256 over department, operation and the rendered call as JSON
// text. Render the call with sorted keys (nlohmann's dump does) so equal calls give equal keys.
std::string EvidenceSubject(std::string_view department, std::string_view operation,
                            std::string_view rendered_call_json);

// A refused duplicate application (decision 9): a start whose dedupe key matched an open case.
// The refused start itself rolls back; this row, written in its own transaction afterwards, is
// what reports count.
struct RefusalRecord {
  std::int64_t id = 0;  // assigned by InsertRefusal
  std::string procedure;
  std::string dedupe_key;
  std::string open_case;  // the open case it collided with; empty when it ended meanwhile
  std::string actor;
  Timestamp refused_at{};
};

// The Idempotency-Key of a case created through `wf serve` (table idempotency_keys, migration
// 7): the same client sending the same key again gets this case instead of a new one.
struct IdempotencyRecord {
  std::string client;  // who sent it (a certificate's CN; "" on plain loopback HTTP)
  std::string key;
  std::string procedure;
  std::string request_hash;  // of the procedure and the data, to refuse a key reused otherwise
  std::string case_id;
  Timestamp created_at{};
};

// A result owed to another deployment (table federation_callbacks, migration 10): a case that
// another deployment's `wf` adapter started here, and where its result goes when it ends.
struct CallbackRecord {
  std::string case_id;      // our case
  std::string client;       // the other deployment (its certificate's CN)
  std::string url;          // its wf serve
  std::string caller_case;  // its case and step that wait for our answer
  std::string caller_step;
  Timestamp created_at{};
  Timestamp next_at{};  // when an engine may try next (also a delivery's lease)
  int attempts = 0;
  std::string last_error;
  std::optional<Timestamp> delivered_at;
  std::string peer_hash;  // the hash of the other side's event recording our answer
};

// An ended case whose personal data may be erased (`wf erase --expired`): it still has its key.
struct KeyedCase {
  std::string id;
  std::string procedure;
  int version = 0;
  std::optional<Timestamp> ended_at;
};

// A chain whose case was moved to an archive file by `wf archive`: its head stays behind in the
// `archived_chains` table (append-only, like history) so verification and anchors still hold.
struct ArchivedChain {
  ChainHead head;
  std::string archive;         // the archive file's name, as given to `wf archive --out`
  std::string archive_sha256;  // the archive's body hash (its trailer's "sha256")
  Timestamp archived_at{};
};

// Which history events to visit: of one case or all; `at` within [since, until) when given
// (RFC 3339 text as FormatRfc3339 writes it).
struct HistoryRange {
  std::optional<std::string> case_id;
  std::optional<std::string> since_at;
  std::optional<std::string> until_at;
};

// One member of an agency in a stored configuration (`wf config apply`): the login holds `role`
// in `agency`. Row-level security and the membership checks read these rows.
struct ConfigMember {
  std::string login;
  std::string agency;
  std::string role;
};

// A permission of a stored configuration: `role` of `agency` may `action` ("cancel" its cases,
// or "start" `procedure`, "*" for any). An agency without rules for an action lets any member.
struct ConfigRule {
  std::string agency;
  std::string action;
  std::string procedure;  // "" for cancel
  std::string role;
};

// A configuration stored by `wf config apply`: versions count 1, 2, ...; append-only.
struct StoredConfig {
  int version = 0;
  std::string source;  // the YAML text as applied
  std::string sha256;  // of `source`
  std::string applied_by;
  Timestamp applied_at{};
};

// A clerk's act on PostgreSQL (DESIGN.md "Who may act"): a login without wf_engine changes a
// case only through the database function wf_act, which checks membership and records the act;
// an engine applies it (engine/acts.hpp) and records what became of it.
struct ActRecord {
  std::int64_t id = 0;
  std::string kind;                     // start, claim, release, complete, signal, cancel
  std::string case_id;                  // signal, cancel; the task's case for task acts
  std::optional<std::int64_t> task_id;  // claim, release, complete
  std::string procedure;                // start
  std::string actor;                    // who acts: the login, or the name a delegate gave
  std::string login;                    // session_user of the submitting connection
  std::string payload;  // JSON: start {"data"}, complete {"values"}, signal {"name", "data"},
                        // cancel {"reason"}; {} otherwise
  std::string status;   // pending, applied, done, refused, withdrawn
  int exit_code = 0;    // done: 0; refused: the exit code of the refusal (DESIGN.md)
  std::string message;  // refused: why
  std::string result;   // done: JSON the act produced (start: {"id", "procedure", "version"})
};

// A database login that holds at least one of wf's group roles (PostgreSQL).
struct LoginRecord {
  std::string name;
  bool can_login = false;
  std::vector<std::string> groups;  // wf_admin, wf_clerk, ... sorted
};

// The group roles of DESIGN.md's "Who may act", by the name `wf users add --role` takes.
// Returns the role ("wf_clerk"), or an empty string for a name that is none of them.
std::string GroupRoleOf(std::string_view role);

// ---------------------------------------------------------------------------------------------
// A transaction in progress. Valid only inside the Store::Transact callback that received it; not
// thread-safe. Every method is one or a few statements on the transaction's connection.
class StoreTx {
 public:
  StoreTx(const StoreTx&) = delete;
  StoreTx& operator=(const StoreTx&) = delete;

  // Write-behind (PostgreSQL only; a no-op on SQLite, which has no round trips to save): from now
  // on UpdateCase, AppendHistory and InsertWork queue their statements instead of running them,
  // and the queue goes to the server in one pipeline before the next statement that needs an
  // answer, or with the commit. Their errors then surface from that statement or from the
  // commit: a stale row_version in UpdateCase fails the whole transaction, in the server
  // (kUnavailable, "changed meanwhile": worth a retry), even with the COMMIT in the same pipeline.
  // For callers that hold the case rows locked (CompleteWorkBatch's `locked`), so a conflict
  // cannot happen.
  void DeferWrites();
  // This transaction's (seq, hash) of the case's history chain head, once it has read it, been
  // told it or appended to it; nullopt before.
  std::optional<std::pair<std::int64_t, std::string>> ChainHead(const std::string& case_id) const;
  // Tells this transaction the case's chain head as an earlier transaction of this process left
  // it, so that appending reads nothing. A head that is no longer the last one fails the append
  // (the history's primary key: kConflict, or from the commit once writes are deferred), and the
  // transaction with it: never a fork of the chain.
  void KnowChainHead(const std::string& case_id, std::int64_t seq, std::string hash);
  // Runs `done` once this transaction has committed (never when it rolls back), on the thread
  // that ran it: for what this process may remember only of committed rows.
  void AfterCommit(std::function<void()> done);
  // PostgreSQL: this transaction's commit does not wait for its WAL to reach the disk
  // (synchronous_commit off; SQLite: a no-op). Only for changes whose loss in a database crash
  // is harmless, such as a claim: a lost lease only means the row is claimed again, and any later
  // synchronous commit flushes the WAL before it, this one included.
  Status RelaxDurability();
  // PostgreSQL: the next pipeline this transaction sends (ClaimWork's, InsertClaimedWork's)
  // ends with its COMMIT, a round trip less. For a body whose last write that is: a statement
  // sent after it runs on its own, outside the transaction (a read that may fail harmlessly).
  // The deferred writes still queued at the end of the body always carry the COMMIT. SQLite: a
  // no-op.
  void CommitWithLastPipeline();

  // --- procedures
  // Stores `procedure` (name, content_hash, source, title, agency, deployed_at) as the next
  // version of its name unless the same content is already deployed, whose version then returns.
  Result<DeployOutcome> DeployProcedure(const ProcedureRecord& procedure);
  Result<ProcedureRecord> LatestProcedure(const std::string& name);            // kNotFound
  Result<ProcedureRecord> GetProcedure(const std::string& name, int version);  // kNotFound
  // Every version of every procedure, by name then version; `source` left empty.
  Result<std::vector<ProcedureRecord>> ListProcedures();

  // --- cases
  // Inserts `record` with row_version 1 and returns its id (record.id, or a new one when empty:
  // NewCaseId, or the store's CaseIdSource). The primary key decides: a new id that is taken is
  // drawn again (up to 8 times, then kInternal); a given record.id that is taken is kConflict.
  // A second open case of the same procedure with the same dedupe key is kConflict naming the
  // open one.
  Result<std::string> InsertCase(const CaseRecord& record);
  // As InsertCase, for a case that this transaction writes again before it ends (a start:
  // Persist's UpdateCase): while writes are deferred (DeferWrites, PostgreSQL), the row goes to
  // the server once, with the deferred writes and at the values of its last UpdateCase, instead
  // of an INSERT now and an UPDATE later. An id drawn here that is taken by then fails the
  // transaction as kUnavailable (worth a retry, which draws another). A record with a dedupe
  // key, or not deferring, is InsertCase: its conflicts are answered at once.
  Result<std::string> InsertCaseDeferred(const CaseRecord& record);
  Result<CaseRecord> GetCase(const std::string& id);  // kNotFound
  // As GetCase, and locks the row until the transaction ends (PostgreSQL FOR UPDATE; on SQLite
  // the write transaction already excludes other writers).
  Result<CaseRecord> GetCaseForUpdate(const std::string& id);
  // GetCase for many cases in one statement, without locking them (a snapshot to rehearse
  // changes on, engine/scheduler.cpp), by id. Cases that do not exist are left out.
  Result<std::vector<CaseRecord>> GetCases(std::vector<std::string> ids);
  // Writes status, data, state, deadline_at, clock_paused_at, ended_at and updated_at of
  // `record` if its row_version is still `record.row_version`, then increments record.row_version.
  // kConflict when another change got there first; kNotFound when there is no such case.
  Status UpdateCase(CaseRecord& record);
  // Newest first (started_at, then id). `data` and `state` are left empty: use GetCase.
  Result<std::vector<CaseRecord>> ListCases(const CaseFilter& filter);
  Result<std::optional<CaseRecord>> FindOpenCaseByDedupe(const std::string& procedure,
                                                         const std::string& dedupe_key);
  // Sub-cases of `parent_case`, oldest first, without data and state.
  Result<std::vector<CaseRecord>> ListChildCases(const std::string& parent_case);

  // --- work (decision 4)
  // Enqueues `work` as ready rows (multi-row INSERTs). Engines waiting in WaitForWork are woken
  // after the commit.
  Status InsertWork(const std::vector<NewWork>& work);
  // The engine's fast path: from now on, up to `limit` rows that InsertWork would enqueue due by
  // `now` are kept back, to be inserted already leased to `owner` (attempt 1, lease until
  // now + lease) by InsertClaimedWork, so the engine carries them on without claiming them.
  void ClaimNewWork(const std::string& owner, Timestamp now, std::chrono::microseconds lease,
                    int limit);
  // Inserts the rows ClaimNewWork kept back and returns them as claimed work items.
  Result<std::vector<WorkItem>> InsertClaimedWork();
  // Leases up to `limit` rows that are ready and due at `now`, or leased with an expired lease,
  // oldest due first: state leased, owner, lease_until = now + lease, attempt + 1. Concurrent
  // claimers (threads, processes, hosts) never get the same row while its lease lives.
  Result<std::vector<WorkItem>> ClaimWork(const std::string& owner, Timestamp now,
                                          std::chrono::microseconds lease, int limit);
  // Finishes leased rows (deletes them) where `owner` still holds each at its attempt: one flag
  // per row of `rows`, in order; false (and no change) for a row whose lease was lost (expired
  // and re-claimed, or the work cancelled). With `locked`, also locks every case of `rows` (in id
  // order, so two engines cannot deadlock) and returns them (on PostgreSQL in the same round trip).
  Result<std::vector<bool>> CompleteWorkBatch(const std::vector<WorkFence>& rows,
                                              const std::string& owner,
                                              std::vector<CaseRecord>* locked = nullptr);
  // Deletes the case's unfinished work: all of it, or one activation's. Returns how many rows.
  // A worker that held one of them then fails its fenced completion.
  Result<std::int64_t> CancelWork(const std::string& case_id,
                                  std::optional<std::int64_t> activation = std::nullopt);
  // The earliest time any unfinished row becomes claimable; nullopt when there is none.
  Result<std::optional<Timestamp>> NextWorkDue();
  // All work rows of a case, by id.
  Result<std::vector<WorkItem>> ListWork(const std::string& case_id);
  // The rows leased to `owner` now (an engine looking for rows it lost track of).
  Result<std::vector<WorkItem>> ListLeasedWork(const std::string& owner);
  // Extends the leases `owner` holds on `rows` (each at its attempt) to `until`: lease_until and
  // run_at, in one statement per 200 rows. One flag per row of `rows`, in order; false for a row
  // whose lease is gone (re-claimed, or the work finished or cancelled), which is left alone.
  Result<std::vector<bool>> RenewLeases(const std::vector<WorkFence>& rows,
                                        const std::string& owner, Timestamp until);

  // --- engines (engine/liveness.hpp): who may hold leases, and taking a dead one's work over
  // Records `owner` as a running engine (again, after a take-over removed it), seen at `now`.
  // Call it only while holding the owner's liveness token (Store::HoldLiveness).
  Status RegisterEngine(const std::string& owner, Timestamp now);
  // Forgets `owner` (an engine stopping cleanly, or one found dead).
  Status UnregisterEngine(const std::string& owner);
  // The registered engines' owners, by name. Only these have liveness tokens to test: rows
  // leased by anyone else are left to their leases' expiry.
  Result<std::vector<std::string>> ListEngines();
  // Takes over the work of `owner`, an engine found dead: its leased rows become claimable at
  // `now` (run_at), owner and attempt kept, so whatever it might still commit stays fenced out,
  // and the next claim's attempt + 1 fences it for good. Forgets the engine too. Returns how many
  // rows it released; waiting engines are woken.
  Result<std::int64_t> TakeOverEngine(const std::string& owner, Timestamp now);

  // --- tasks
  Result<std::int64_t> InsertTask(const TaskRecord& task);  // returns the new id
  Result<TaskRecord> GetTask(std::int64_t id);              // kNotFound
  // Oldest first.
  Result<std::vector<TaskRecord>> ListTasks(const TaskFilter& filter);
  // open -> claimed by `actor`. Claiming a task one already holds is ok. kConflict when another
  // actor holds it or it is completed or cancelled (exit 5); kNotFound when there is none.
  Status ClaimTask(std::int64_t id, const std::string& actor);
  // claimed by `actor` -> open. kConflict otherwise.
  Status ReleaseTask(std::int64_t id, const std::string& actor);
  // open, or claimed by `actor` -> completed with `values_json`. kConflict when it is completed,
  // cancelled or claimed by someone else, so two clerks never both complete it.
  Status CompleteTask(std::int64_t id, const std::string& actor, const std::string& values_json,
                      Timestamp now);
  // Hands an open or claimed task to `role` (its deadline passed): role and escalated_to become
  // `role`, the claim is dropped, the due time becomes `due_at`. kConflict when it has ended.
  Status EscalateTask(std::int64_t id, const std::string& role, std::optional<Timestamp> due_at);
  // Cancels the case's open and claimed tasks (one activation's, or all). Returns how many.
  Result<std::int64_t> CancelTasks(const std::string& case_id,
                                   std::optional<std::int64_t> activation = std::nullopt);

  // --- incidents
  Result<std::int64_t> InsertIncident(const IncidentRecord& incident);
  Result<IncidentRecord> GetIncident(std::int64_t id);  // kNotFound
  // Of one case (all statuses) or, with no case, every open incident; oldest first.
  Result<std::vector<IncidentRecord>> ListIncidents(const std::optional<std::string>& case_id);
  // open -> resolved. kConflict when it is already resolved.
  Status ResolveIncident(std::int64_t id, const std::string& actor, Timestamp now);

  // --- evidence (decision 8)
  Result<std::int64_t> InsertEvidence(const EvidenceRecord& evidence);
  // The newest evidence about `subject` verified at or after `not_before`; nullopt when none.
  Result<std::optional<EvidenceRecord>> FindEvidence(const std::string& subject,
                                                     Timestamp not_before);

  // --- history (decision 11)
  // Appends the next event of `case_id`'s chain: seq, prev_hash and hash follow the case's last
  // event. The caller must have updated or locked the case row in this transaction, which
  // serialises appends per case; a concurrent append that slipped past is kConflict (primary key).
  Result<HistoryEvent> AppendHistory(const std::string& case_id, const std::string& actor,
                                     const std::string& action, const std::string& step,
                                     const std::string& details_json, Timestamp at);
  // The same with the details as JSON (not parsed again to be hashed).
  Result<HistoryEvent> AppendHistoryJson(const std::string& case_id, const std::string& actor,
                                         const std::string& action, const std::string& step,
                                         nlohmann::json details, Timestamp at);
  Result<std::vector<HistoryEvent>> ListHistory(const std::string& case_id);  // by seq

  // --- reports (engine/report.hpp)
  // Up to `limit` cases whose id sorts after `after_id` (all from ""), by id, without data and
  // state: a cursor over every case that holds one page at a time.
  Result<std::vector<CaseRecord>> ListCasesAfter(const std::string& after_id, int limit);
  // Records a refused duplicate application; returns its id.
  Result<std::int64_t> InsertRefusal(const RefusalRecord& refusal);
  // The case created under (client, key); nullopt when there is none.
  Result<std::optional<IdempotencyRecord>> FindIdempotencyKey(const std::string& client,
                                                              const std::string& key);
  // Records `record`; false (writing nothing) when (client, key) is taken already, by a
  // committed row or, on PostgreSQL, by a concurrent transaction that then committed. While
  // writes are deferred (DeferWrites) it is queued and true: a taken key fails the transaction
  // at its commit instead (kUnavailable, "record idempotency keys: ... changed meanwhile").
  Result<bool> InsertIdempotencyKey(const IdempotencyRecord& record);
  // Up to `limit` refusals with an id above `after_id`, by id.
  Result<std::vector<RefusalRecord>> ListRefusalsAfter(std::int64_t after_id, int limit);

  // --- personal data (store_keys.cpp, migration 11): the data keys of cases, wrapped.
  // Stores `key` wrapped. Until this transaction commits, FreshCaseKey finds it; once it has
  // committed, `keys` caches it (never before: a key rolled back with its row must seal nothing).
  Status InsertCaseKey(const std::string& case_id, const std::string& wrapped, const DataKey& key,
                       KeySource& keys, Timestamp now);
  // A data key InsertCaseKey stored in this transaction.
  std::optional<DataKey> FreshCaseKey(const std::string& case_id) const;
  // The wrapped key of the case; nullopt when it has none (no personal data, or erased).
  Result<std::optional<std::string>> GetCaseKey(const std::string& case_id);
  // The wrapped keys of those of `case_ids` that have one.
  Result<std::vector<std::pair<std::string, std::string>>> GetCaseKeys(
      const std::vector<std::string>& case_ids);
  Status UpdateCaseKey(const std::string& case_id, const std::string& wrapped);
  // Deletes the case's key (erasure); false when it had none.
  Result<bool> DeleteCaseKey(const std::string& case_id);
  // Every (case, wrapped key), for `wf keys rotate`.
  Result<std::vector<std::pair<std::string, std::string>>> ListCaseKeys();
  // Ended cases that still have a key, ended before `ended_before`.
  Result<std::vector<KeyedCase>> ListKeyedEndedCases(Timestamp ended_before);
  // Deletes the evidence the case's calls produced; how many rows.
  Result<int> DeleteEvidenceOfCase(const std::string& case_id);

  // --- federation (engine/store_federation.cpp)
  Status InsertCallback(const CallbackRecord& record);
  Result<std::optional<CallbackRecord>> FindCallback(const std::string& case_id);
  // Up to `limit` callbacks not yet delivered whose case has ended and whose next_at has come,
  // oldest first.
  Result<std::vector<CallbackRecord>> DueCallbacks(Timestamp now, int limit);
  // Takes the callback of `case_id` until `until` (next_at), if its next_at is still `seen`:
  // false when another engine took it first.
  Result<bool> LeaseCallback(const std::string& case_id, Timestamp seen, Timestamp until);
  Status CallbackFailed(const std::string& case_id, int attempts, Timestamp next_at,
                        const std::string& error);
  // Delivered (or answered for good: `note` says how), with the hash the other side recorded.
  Status CallbackDelivered(const std::string& case_id, int attempts, Timestamp at,
                           const std::string& peer_hash, const std::string& note);

  // --- audit and retention (engine/store_audit.cpp)
  // Cases that ended (status not open, ended_at set) before `before`, by id after `after_id`,
  // at most `limit`; without data and state. Archived cases are gone from `cases`, so never here.
  Result<std::vector<CaseRecord>> ListEndedCases(Timestamp before, const std::string& after_id,
                                                 int limit);
  // Removes a case that was written to an archive: records `chain` (its head must still be the
  // case's newest event, and the case still ended) in `archived_chains`, then deletes its history,
  // work, tasks, incidents and the case row. The append-only trigger lets the history rows go only
  // because the case is marked in `archiving` within this transaction (mark and unmark are both
  // here). kConflict when the case has changed since it was archived; kNotFound without the case.
  Status RemoveArchivedCase(const ArchivedChain& chain);
  // The archived head of `case_id`; nullopt when it was never archived.
  Result<std::optional<ArchivedChain>> GetArchivedChain(const std::string& case_id);

  // --- who may act (engine/store_access.cpp; DESIGN.md "Who may act")
  // Whether this connection's login holds group role `group` (pg_has_role: a superuser holds
  // every role); false for a group that does not exist and always on SQLite.
  Result<bool> LoginHolds(const std::string& group);
  // The login and whether it holds wf_engine and wf_delegate, in one statement (what every CLI
  // command asks first); an empty login and false, false on SQLite.
  struct LoginIdentity {
    std::string login;
    bool engine = false;
    bool delegate = false;
  };
  Result<LoginIdentity> SessionIdentity();
  // Stores `source` as the next configuration version, applied by `applied_by` (PostgreSQL
  // records session_user instead), and replaces the members and rules with `members` and
  // `rules`. kNotPermitted when the login may not (not wf_admin). Returns the new version.
  Result<int> StoreConfig(const std::string& source, const std::vector<ConfigMember>& members,
                          const std::vector<ConfigRule>& rules, const std::string& applied_by,
                          Timestamp now);
  // The newest stored configuration; nullopt before the first `wf config apply`.
  Result<std::optional<StoredConfig>> LatestConfig();
  // Creates login `name` (PostgreSQL; CREATEROLE for an admin, so that it may add users) with
  // `password` when given, or grants `group` to it when it exists. kInvalid for a name that is
  // not [a-z0-9][a-z0-9._-]*, kNotPermitted when this login may not create roles, kUsage on
  // SQLite (single-operator: no logins).
  Status AddLogin(const std::string& name, const std::string& group,
                  const std::optional<std::string>& password);
  // Every role holding one of wf's groups, by name (PostgreSQL; empty on SQLite).
  Result<std::vector<LoginRecord>> ListLogins();
  // The login recorded beside the events of `case_id`'s history, by seq (events written before
  // migration 8, and on SQLite, have none).
  Result<std::map<std::int64_t, std::string>> HistoryLogins(const std::string& case_id);

  // --- clerks' acts (engine/store_acts.cpp; PostgreSQL only, kUsage on SQLite)
  // Submits `act` (kind, case_id or task_id or procedure, actor, payload) through wf_act; the
  // database checks who may and returns the act's id. kNotPermitted / kNotFound as it says.
  Result<std::int64_t> SubmitAct(const ActRecord& act);
  // The act `id` as this login may see it (its own acts; an engine's or auditor's: all).
  Result<ActRecord> GetAct(std::int64_t id);
  // Withdraws this login's pending act `id`; returns its status afterwards ("withdrawn", or
  // what an engine made of it first).
  Result<std::string> WithdrawAct(std::int64_t id);
  // Up to `limit` pending acts, oldest first (an engine's).
  Result<std::vector<ActRecord>> PendingActs(int limit);
  // First in a transaction applying act `id`: locks its row, kConflict unless it is still
  // pending, and names `login` as the login of the history this transaction writes.
  Status BeginAct(std::int64_t id, const std::string& login);
  // Last in such a transaction: the act is applied (its effects commit with this), at `now`.
  Status MarkActApplied(std::int64_t id, Timestamp now);
  // Acts applied before `applied_before` whose outcome was never recorded (their engine died
  // in between) become done, saying so; returns how many.
  Result<int> FinishStaleActs(Timestamp applied_before, Timestamp now);
  // Records what became of act `outcome.id` (status, exit_code, message, result) unless it was
  // finished or withdrawn already.
  Status FinishAct(const ActRecord& outcome, Timestamp now);

  // --- single engine on SQLite
  // Takes or renews the lease `name` for `owner` until `until`; false when another owner holds
  // an unexpired lease. The SQLite engine takes "engine" so that two engine processes do not
  // contend for the file's single write lock (claims stay correct without it); PostgreSQL engines
  // need no lock and share the work.
  Result<bool> TryLockEngine(const std::string& name, const std::string& owner, Timestamp now,
                             Timestamp until);
  Status UnlockEngine(const std::string& name, const std::string& owner);
  // Who holds the lease `name` (expired or not); nullopt when nobody does.
  Result<std::optional<std::string>> EngineLockHolder(const std::string& name);

 private:
  friend class Store;
  explicit StoreTx(detail::TxContext& context) : context_(context) {}

  // One row of CompleteWorkBatch, statement by statement (SQLite).
  Result<bool> CompleteWork(const std::string& case_id, std::int64_t id, int attempt,
                            const std::string& owner);
  // GetCaseForUpdate for many cases in one statement, locked in id order. Cases that do not exist
  // are left out. Also learns the head of each case's history chain, so AppendHistory need not
  // read it.
  Result<std::vector<CaseRecord>> GetCasesForUpdate(std::vector<std::string> ids);
  // AppendHistory once the details are known to be JSON (`canonical`: and already in canonical
  // form, SealCanonicalEvent).
  Result<HistoryEvent> AppendEvent(HistoryEvent event, bool canonical);
  detail::TxContext& context_;
};

// ---------------------------------------------------------------------------------------------
// A connection pool to one database. Thread-safe: any number of threads may call Transact at
// once; each call takes a connection (waiting while all are busy). Do not call Transact from
// inside a Transact callback: with every connection taken it would wait forever.
//
// A connection that breaks (PostgreSQL restarted, the backend terminated) is dropped and
// reopened on its next use; until the server answers, operations return kUnavailable. A
// transaction that fails to begin on a connection that turns out dead is retried once on a fresh
// one, so a server restart between two transactions goes unnoticed.
class Store {
 public:
  // Connects to `url` (ParseDatabaseUrl) with up to `pool_size` connections (at least 1; an
  // in-memory SQLite database gets exactly 1), then applies pending migrations.
  // SQLite connections run with journal_mode=WAL (readers never block the writer),
  // busy_timeout=10 s, foreign_keys=ON and synchronous=FULL: FULL because decision 3 promises
  // that a committed change survives a crash, and in WAL mode NORMAL may lose the last
  // commits on power loss; the throughput target is PostgreSQL's, not the embedded default's.
  // kUsage for a bad URL; kUnavailable "cannot connect to <url without password>: ..." when the
  // database cannot be reached; kInternal when its schema is newer than this program.
  // `first_read`, when given, runs in a read transaction once the schema is current: the one
  // that checked the schema version when no migration was needed (a command's opening reads then
  // cost no transaction of their own), its own one after migrating. Its failure fails Open.
  static Result<std::unique_ptr<Store>> Open(
      std::string_view url, int pool_size = 4,
      const std::function<Status(StoreTx&)>& first_read = nullptr);

  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  Backend backend() const;
  const std::string& redacted_url() const;

  // The key file of this database's personal data (engine/personal.hpp): by default beside a
  // SQLite file ("<file>.keys"), in memory for an in-memory one, and for PostgreSQL under the
  // user's configuration folder ($XDG_CONFIG_HOME/wf/keys, else ~/.config/wf/keys);
  // KeySource::SetPath moves it (the deployment config's `key_file`, WF_KEY_FILE).
  KeySource& keys();
  // SQLite: moves everything the write-ahead log holds into the database file and empties the
  // log (after an erasure, so that no deleted page survives there). Nothing on PostgreSQL.
  Status CheckpointLog();

  // Replaces where new case ids come from (tests force collisions with it); an empty function
  // restores NewCaseId. Call it before any transaction runs: it is not synchronised with them.
  void SetCaseIdSource(CaseIdSource source);

  // Applies the migrations this database lacks, each in its own transaction together with its
  // `wf_schema` row. Safe against concurrent starters: PostgreSQL serialises them with
  // pg_advisory_xact_lock, SQLite with BEGIN IMMEDIATE; a migration applied meanwhile is skipped.
  // Returns how many were applied (0 when up to date). `wf migrate` calls it; Open already did.
  Result<int> Migrate();
  // The highest applied schema version (0 for an empty database).
  Result<int> SchemaVersion();

  // Runs `body` in one write transaction and commits when it returns ok; rolls back otherwise
  // and returns its status (or the database error that doomed the transaction). On SQLite the
  // write lock is taken at BEGIN. If COMMIT itself fails with the connection lost, the outcome is
  // unknown and kUnavailable returns: the fenced and optimistic checks make a retry safe.
  Status Transact(const std::function<Status(StoreTx&)>& body);
  // Transact whose BEGIN (PostgreSQL) is not a round trip of its own: it travels in the first
  // pipeline `body` sends (or goes just before its first other statement). For the engine's
  // commits, whose first statement is a pipeline; a connection that died while idle then shows
  // as kUnavailable from that statement instead of being replaced before BEGIN.
  Status TransactPipelined(const std::function<Status(StoreTx&)>& body);
  // Same for reading only (PostgreSQL BEGIN READ ONLY; SQLite a deferred transaction that never
  // blocks writers under WAL). Always ends with ROLLBACK.
  Status Read(const std::function<Status(StoreTx&)>& body);

  // Calls `visit` for every history event (of one case, or all cases by case then seq), whose
  // `at` is at or after `since_at` (RFC 3339 text) when given. Stops at the first non-ok status
  // from `visit` and returns it.
  Status ForEachHistory(const std::optional<std::string>& case_id,
                        const std::optional<std::string>& since_at,
                        const std::function<Status(const HistoryEvent&)>& visit);

  // --- audit and retention (engine/store_audit.cpp)
  // As ForEachHistory, over `range` (cases by id, events by seq), in pages of 1,000 rows, each
  // page its own short read transaction, so memory stays constant for any number of events.
  Status ForEachHistoryIn(const HistoryRange& range,
                          const std::function<Status(const HistoryEvent&)>& visit);
  // Every chain head: first the live chains (each case's newest event), by case, then the
  // archived chains, by case (`archived` true). Paged like ForEachHistoryIn.
  Status ForEachChainHead(const std::function<Status(const ChainHead&, bool archived)>& visit);
  // Every archived chain, by case.
  Status ForEachArchivedChain(const std::function<Status(const ArchivedChain&)>& visit);

  // Blocks until work may be available or `timeout` passes. True when woken (a transaction
  // inserted or rescheduled work, Wake was called, or the listening connection was re-opened, when
  // notifications may have been missed), false on timeout; spurious wake-ups are possible, so
  // re-check with ClaimWork/NextWorkDue. PostgreSQL: LISTEN wf_work on a dedicated connection
  // (notifications from every process). SQLite: woken only by this process's commits and Wake;
  // another process's work (a `wf start` next to a running engine) is seen after the timeout.
  // One thread at a time may wait. kUnavailable when the listening connection cannot be opened.
  Result<bool> WaitForWork(std::chrono::milliseconds timeout);
  // Wakes the thread in WaitForWork (e.g. to shut down). Thread-safe, never blocks.
  void Wake();

  // --- liveness tokens (engine/store_liveness.cpp): each engine holds one for its whole life,
  // and the kernel or the server drops it the moment the process dies, however it dies.
  // PostgreSQL: a session-level advisory lock keyed by the owner's name (AdvisoryKey of
  // "wf_engine:" + owner) on a connection of its own. SQLite: an exclusive flock(2) on
  // `<database>.engines/<hex key>.lock` (the folder 0700, the file 0600, made on first use).
  // An in-memory SQLite database has no tokens: every owner counts as alive.
  //
  // Takes `owner`'s token, or checks that it is still held and takes it again after a loss (the
  // connection dropped with the server restarted). kConflict when someone else holds it (an
  // engine of the same name; on PostgreSQL also, for an instant, one testing it); kUnavailable
  // while the server cannot be reached. Thread-safe; a Store holds the tokens of any number of
  // owners (engines sharing it), on PostgreSQL all on one connection.
  Status HoldLiveness(const std::string& owner);
  // Gives `owner`'s token up (its lock file removed). Thread-safe; nothing if it is not held.
  void ReleaseLiveness(const std::string& owner);
  // Whether a live process holds `owner`'s token: true for this Store's own owner. Tests without
  // waiting: PostgreSQL pg_try_advisory_lock on a pooled connection, released at once when it
  // was free; SQLite flock(LOCK_NB) on a fresh descriptor (so also inside this process), the dead
  // owner's file removed. False also when the owner has no token at all: ask only about
  // registered engines (StoreTx::ListEngines).
  Result<bool> IsAlive(const std::string& owner);

 private:
  explicit Store(std::unique_ptr<detail::StoreState> state);
  // One attempt of Open.
  static Result<std::unique_ptr<Store>> OpenOnce(std::string_view url, int pool_size,
                                                 const std::function<Status(StoreTx&)>& first_read);
  Status Run(bool write, const std::function<Status(detail::TxContext&)>& body,
             bool defer_begin = false);

  std::unique_ptr<detail::StoreState> state_;
};

// Who asks for a case's data key. The engine keeps the keys it has read (a case's key changes
// only by erasure, and only ended cases are erased); a reader (show, history, inbox, the API)
// asks the database every time, so that an erasure or a revoked right shows at once even in a
// process that has run for days.
enum class KeyUse { kEngine, kReader };

// The data key of `case_id` (engine/personal.hpp): nullopt when the case has none (no personal
// data, or erased); the key file's errors.
Result<std::optional<DataKey>> ReadCaseKey(StoreTx& tx, KeySource& keys, const std::string& case_id,
                                           KeyUse use);
// Opens sealed values with the keys `tx` reads (row-level security decides whose: a clerk gets
// the keys of the cases they see). `tx` and `keys` must outlive it.
Revealer RevealerFor(StoreTx& tx, KeySource& keys, KeyUse use = KeyUse::kReader);
// Caches the keys of the cases of `items` whose payloads are sealed (one query), so that the
// engine opens them without a transaction of its own (Runtime::RevealJsonText).
Status PrefetchCaseKeys(StoreTx& tx, KeySource& keys, const std::vector<WorkItem>& items);

}  // namespace wf::engine
