#pragma once

// The runtime: where the pure state machine (machine.hpp) meets the store (store.hpp). It loads
// a case, applies one event, and writes everything the event caused in one transaction
// (decision 3): the case row with its optimistic version check, the history events, and the
// commands turned into rows (work for the engine, tasks for clerks, incidents, sub-cases,
// timers, the statutory clock). The CLI and the engine both change cases only through here.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "engine/config.hpp"
#include "engine/machine.hpp"
#include "engine/personal.hpp"
#include "engine/state_cache.hpp"
#include "engine/store.hpp"
#include "workflows/json_limits.hpp"
#include "workflows/personal.hpp"
#include "workflows/procedure.hpp"

namespace wf::engine {

struct FederatedCaller;  // engine/federation.hpp

// Work kinds the runtime enqueues and the engine carries out.
inline constexpr const char* kWorkInvoke = "invoke";  // call a department (payload: InvokePayload)
inline constexpr const char* kWorkEvent = "event";    // apply an event (payload: EventToJson)

// Limits on case data (DESIGN.md decision 12): hostile data is refused with kInvalid. The same
// bounds apply to every JSON that enters a case (workflows/json_limits.hpp says why).
inline constexpr size_t kMaxCaseDataBytes = workflows::kMaxJsonBytes;
inline constexpr int kMaxCaseDataDepth = workflows::kMaxJsonDepth;

// The actor recorded for what the engine does on its own.
inline constexpr const char* kEngineActor = "engine";

// What an `invoke` work row carries: one attempt of one adapter step.
struct InvokePayload {
  std::string department;
  std::string operation;
  nlohmann::json fields = nlohmann::json::object();  // the rendered call without `operation`
  int attempt = 1;
  int64_t timeout_ms = 30000;
  std::optional<int64_t> reuse_seconds;
  // The evidence subject when `reuse` is set (EvidenceSubject over department, operation, call).
  std::string subject;

  nlohmann::json ToJson() const;
  static Result<InvokePayload> FromJson(const nlohmann::json& json);
};

// No expression runs while a transaction holds locks (issue 11): a change is first rehearsed
// outside any locking transaction, which evaluates every expression applying it will ask for,
// and the transaction then replays the answers. Provably bounded expressions
// (workflows::Expression::bounded) are cheap whatever the data and are evaluated where they
// stand, so the memo leaves them out.
//
// Recording (the rehearsal): Evaluate asks the source evaluator and remembers the answer.
// Replaying (the transaction): Evaluate answers from memory; a question not asked before (the
// case changed between the rehearsal and the lock) counts as missed and answers kUnavailable,
// and the caller rolls the transaction back and rehearses again; with `pass_through` (the last
// round, so that a change racing with every rehearsal still ends) it asks the source instead.
// Not thread-safe: one change, one thread.
class ExpressionMemo final : public workflows::Evaluator {
 public:
  explicit ExpressionMemo(workflows::Evaluator& source) : source_(source) {}

  Result<nlohmann::json> Evaluate(const workflows::Expression& expression,
                                  const nlohmann::json& input) override;

  void Record() {
    replaying_ = false;
    missed_ = 0;
  }
  void Replay(bool pass_through) {
    replaying_ = true;
    pass_through_ = pass_through;
    missed_ = 0;
  }
  // Questions the replay could not answer from memory.
  int missed() const { return missed_; }
  // Set when the source could not evaluate at all (kUnavailable): nothing was judged.
  const std::optional<Status>& unavailable() const { return unavailable_; }
  void ClearUnavailable() { unavailable_.reset(); }

 private:
  workflows::Evaluator& source_;
  std::unordered_map<std::string, Result<nlohmann::json>> answers_;  // program NUL input
  bool replaying_ = false;
  bool pass_through_ = false;
  int missed_ = 0;
  std::optional<Status> unavailable_;
};

// Rounds of rehearsal and transaction before the last, which evaluates what it missed.
inline constexpr int kMaxRehearsals = 3;

// Procedures parsed from their stored source, by name and version, parsed once per process.
// Thread-safe; the pointers stay valid as long as the cache lives.
class ProcedureCache {
 public:
  // The procedure `name` at `version`, read through `tx` on first use.
  Result<const workflows::Procedure*> Get(StoreTx& tx, const std::string& name, int version);
  // Parses `record.source` and keeps it.
  Result<const workflows::Procedure*> Put(const ProcedureRecord& record);
  // True when every expression of `procedure` (one this cache returned) is provably bounded:
  // applying an event to its cases evaluates nothing that needs rehearsing, sub-cases aside.
  bool AllBounded(const workflows::Procedure* procedure);
  // True when `name` at `version` is in the cache and AllBounded; false when it is not cached.
  bool KnownBounded(const std::string& name, int version);
  // KnownBounded for the highest version of `name` in the cache (a newer one may be deployed).
  bool LatestKnownBounded(const std::string& name);

 private:
  std::mutex mutex_;
  std::map<std::pair<std::string, int>, std::unique_ptr<workflows::Procedure>> procedures_;
  std::map<const workflows::Procedure*, bool> all_bounded_;
};

// The result of starting one case.
struct Started {
  std::string id;
  std::string procedure;
  int version = 0;
};

// What became of one element of a batch start.
struct BatchLine {
  enum class Outcome {
    kStarted,    // `started` holds the new case
    kDuplicate,  // `refusal` (kConflict) names the open case with the same dedupe key
    kRefused,    // `refusal` says why: kInvalid data (with its JSON path), or another conflict
  };
  Outcome outcome = Outcome::kStarted;
  Started started;
  Status refusal;
};

// Runs around every write transaction of a runtime that has one (an act applier's runtime,
// engine/acts.hpp): Before first in the transaction, After last when its body succeeded; an
// error from either rolls the transaction back.
class WriteGuard {
 public:
  virtual ~WriteGuard() = default;
  virtual Status Before(StoreTx& tx) = 0;
  virtual Status After(StoreTx& tx) = 0;
};

// Carries out the engine's decisions on a store. Thread-safe: it holds only the cache and
// references to the store and deployment, which outlive it.
class Runtime {
 public:
  // `evaluator` runs the procedures' expressions (the engine passes an ExpressionPool); it
  // must outlive the runtime.
  Runtime(Store& store, const Deployment& deployment,
          workflows::Evaluator& evaluator = workflows::InProcessEvaluator())
      : store_(store), deployment_(deployment), evaluator_(evaluator) {}

  Store& store() { return store_; }
  workflows::Evaluator& evaluator() { return evaluator_; }
  const Deployment& deployment() const { return deployment_; }
  ProcedureCache& procedures() { return procedures_; }
  // Puts `guard` (null: none) around this runtime's write transactions from now on. Not
  // synchronised with them: for a runtime of its own, used by one thread.
  void SetWriteGuard(WriteGuard* guard) { guard_ = guard; }

  // Stores `procedure` as a new version when its content changed (same content: a no-op that
  // returns the existing version). kInvalid, storing nothing, when it would start itself as a
  // sub-case through the procedures deployed (CheckCallCycles in call_graph.hpp).
  Result<DeployOutcome> Deploy(const workflows::Procedure& procedure);
  // Deploys a release of several procedures in one transaction: all of them or, on any error,
  // none. One outcome per procedure, in order.
  Result<std::vector<DeployOutcome>> Deploy(
      const std::vector<const workflows::Procedure*>& procedures);

  // Starts a case of the newest version of `procedure` with `data`: checks size and depth, the
  // input schema (kInvalid listing every JSON path), the dedupe key (kConflict naming the open
  // case), sets the statutory deadline on the owning agency's calendar, and runs the case up to
  // its first wait, all in one transaction.
  Result<Started> StartCase(const std::string& procedure, const nlohmann::json& data,
                            const std::string& actor);
  // StartCase under an idempotency key (`wf serve`'s Idempotency-Key): the first request with
  // `key` of `client` starts the case and records the key in the same transaction; a repeated
  // one, from any process sharing the store, starts nothing and returns the case the first made
  // (`created` false). The same key with another procedure or other data: kInvalid.
  struct StartedOnce {
    Started started;
    bool created = false;
  };
  // With `caller` (a federated start, engine/federation.hpp), the same transaction records
  // where the case's answer goes and a `federation.requested` event.
  Result<StartedOnce> StartCaseOnce(const std::string& procedure, const nlohmann::json& data,
                                    const std::string& actor, const std::string& client,
                                    const std::string& key,
                                    const FederatedCaller* caller = nullptr);
  // One start of StartCasesOnce: StartCaseOnce's arguments.
  struct OnceRequest {
    std::string procedure;
    nlohmann::json data;
    std::string actor;
    std::string client;
    std::string key;
    const FederatedCaller* caller = nullptr;  // not owned
  };
  // Several StartCaseOnce in one transaction (`wf serve` commits the starts that arrive together
  // as one group): one outcome per request, in order, each the one StartCaseOnce would give.
  // When one of them fails, the transaction keeps none of them: the one that failed is started
  // on its own (for its own answer), and those before and after it again as groups.
  std::vector<Result<StartedOnce>> StartCasesOnce(const std::vector<OnceRequest>& requests);
  // Starts one case per element of `data`, committing `batch_size` at a time. A case that fails
  // (bad data, duplicate) is refused on its own line and the others go on. The result has one
  // BatchLine per element of `data`, in order. Only a failure of the store itself (kUnavailable,
  // kInternal) or an unknown procedure fails the whole call; cases of batches committed before
  // it stay started.
  Result<std::vector<BatchLine>> StartBatch(const std::string& procedure,
                                            const std::vector<nlohmann::json>& data,
                                            const std::string& actor, int batch_size);

  // Applies `event` to the case (a signal, a cancellation, an incident retry) in its own
  // transaction, retrying a few times when a concurrent change wins the optimistic check. The
  // JSON an event carries (signal data, ...) is checked against the bounds first (kInvalid).
  Status ApplyEvent(const std::string& case_id, const Event& event, const std::string& actor);

  // A step that a signal would reach (DeliverSignal).
  struct SignalReceiver {
    std::string step;
    // An adapter step waiting for its department's answer (after 202, or with the call still
    // out); false: a `wait:` step declaring the signal.
    bool callback = false;
    std::string department;  // the adapter step's department when `callback`
  };
  // Decides, inside the write transaction, whether a signal may reach these steps of the case:
  // Ok, or the refusal (kNotPermitted) that rolls everything back.
  using SignalAdmission =
      std::function<Status(const CaseRecord&, const std::vector<SignalReceiver>&)>;
  // ApplyEvent of a signal for a caller that is admitted by what the signal reaches (`wf serve`:
  // a department may deliver only its own steps' answers): `admit` runs in the same transaction,
  // so nothing changes between the check and the write. No step waiting for it: kConflict.
  // `*hash` (when not null) gets the hash of the history event that records the signal.
  Status DeliverSignal(const std::string& case_id, const event::SignalReceived& signal,
                       const std::string& actor, const SignalAdmission& admit, std::string* hash);

  // Completes task `task_id` with form `values` for `actor`: kNotFound, kNotPermitted when the
  // actor lacks the task's role in its agency, kConflict when it is completed, cancelled or
  // claimed by someone else, kInvalid when the values fail the form or the JSON bounds.
  Status CompleteTask(int64_t task_id, const std::string& actor, const nlohmann::json& values);
  // Claims / releases a task for `actor` (the same permission rule as CompleteTask).
  Status ClaimTask(int64_t task_id, const std::string& actor);
  Status ReleaseTask(int64_t task_id, const std::string& actor);
  // Retries the incident: resolves it and sends RetryIncident to its case.
  Status RetryIncident(int64_t incident_id, const std::string& actor);

  // Inside an open transaction: applies `event` to the case row (already read, ideally for
  // update) and writes everything it caused; `record` is updated in place (row_version too).
  // Expressions go to `evaluator`: under locks, the memo of a rehearsal (see ExpressionMemo).
  // kConflict/kInvalid from the machine, or the store's errors.
  Status ApplyInTx(StoreTx& tx, CaseRecord& record, const Event& event, const std::string& actor,
                   Timestamp now, workflows::Evaluator& evaluator);

  // The rehearsal of applying `events` in order to `record` (as read, without locks, through
  // `tx`): evaluates into `memo` every expression ApplyInTx will evaluate, those of the
  // sub-cases it starts included. Writes nothing; events the machine refuses are skipped as the
  // transaction skips them. The store's errors; the rest is for the transaction to report.
  Status Rehearse(StoreTx& tx, const CaseRecord& record, const std::vector<const Event*>& events,
                  const std::string& actor, Timestamp now, ExpressionMemo& memo);

  // How many open cases' states this runtime keeps from its own writes (engine/state_cache.hpp).
  size_t KeptStates() { return states_.size(); }
  // The case's row and chain head as this process last committed them, while its state is kept
  // (StateCache::PeekRow): for a commit that trusts them instead of reading the row.
  std::optional<StateCache::KeptRow> KeptRow(const std::string& case_id) {
    return states_.PeekRow(case_id);
  }

  // --- personal data (runtime_personal.cpp, engine/personal.hpp)
  // Where `procedure` keeps personal data (computed once per procedure).
  const workflows::PersonalMap& PersonalOf(const workflows::Procedure& procedure);
  // Whether a new case's row can be written once, at the end of its start's transaction
  // (StoreTx::InsertCaseDeferred): see runtime.cpp.
  bool WritesRowOnlyOnce(const workflows::Procedure& procedure, const CaseRecord& record,
                         const Advance& advance);
  // The personal values `event` brings to a case in state `before`: a personal form field's, a
  // personal step's result.
  std::set<std::string> EventPersonalValues(const workflows::Procedure& procedure,
                                            const CaseState& before, const Event& event);
  // What a transition of `case_id` writes is sealed with this: the personal values of `data`
  // and `values`, under the case's data key (made and stored in `tx` on the first). Inactive
  // when the case has no personal value.
  Result<CaseSealer> SealerFor(StoreTx& tx, const std::string& case_id,
                               const workflows::Procedure& procedure, const nlohmann::json& data,
                               std::set<std::string> values, OpenedBoxes opened = {});
  // A completed task's values as stored: its form's personal fields sealed.
  Result<std::string> SealTaskValues(StoreTx& tx, const CaseRecord& record, const std::string& step,
                                     const nlohmann::json& values);
  // The case's run-time state with its sealed values opened (and, with `opened`, the boxes of
  // the case that were opened, for sealing its next write: SealerFor).
  Result<CaseState> LoadState(StoreTx& tx, const CaseRecord& record, OpenedBoxes* opened = nullptr);
  // JSON text with its sealed values opened, the keys read in a transaction of its own (the
  // engine's work payloads, evidence). The text as it is when that fails.
  std::string RevealJsonText(const std::string& text);
  // Opens the sealed values of `value` with the keys this process holds, no transaction (it may
  // run on any thread); false when a key was not at hand (`value` is then partly opened).
  bool RevealCached(nlohmann::json& value);
  // The dedupe key as stored: a keyed hash when it holds a personal value.
  std::string StoredDedupeKey(const workflows::Procedure& procedure, const nlohmann::json& data,
                              const std::string& key);
  // `wf erase CASE --reason TEXT`: destroys the data key of an ended case, deletes its evidence
  // and records case.erased, in one transaction. kNotFound; kConflict for an open case or one
  // without personal data left.
  Status EraseCase(const std::string& case_id, const std::string& reason, const std::string& actor);
  // `wf erase --expired`: every ended case past its procedure's `retention:`; the ids erased.
  Result<std::vector<std::string>> EraseExpired(const std::string& reason,
                                                const std::string& actor);

  // Inside an open transaction: evidence an adapter step with `reuse` verified.
  Status SaveEvidence(StoreTx& tx, const std::string& case_id, const std::string& step,
                      const InvokePayload& payload, const nlohmann::json& result, Timestamp now);

 private:
  // ApplyEvent with `before` (the case row as locked, before the event applies) and `after` (once
  // it applied) inside its transaction; either may refuse, which rolls everything back. Null:
  // none.
  using EventHook = std::function<Status(StoreTx&, const CaseRecord&)>;
  Status ApplyEventChecked(const std::string& case_id, const Event& event, const std::string& actor,
                           const EventHook& before, const std::function<Status(StoreTx&)>& after);
  // store_.Transact, with the write guard around `body`.
  Status Write(const std::function<Status(StoreTx&)>& body);
  // Checks that `actor` holds the task's role in the task's agency.
  Status CheckTaskPermission(const TaskRecord& task, const std::string& actor) const;
  // One case StartTransaction starts, with `also` run in the transaction after it is inserted
  // (null: nothing).
  struct StartSpec {
    const std::string* procedure;
    const nlohmann::json* data;
    const std::string* actor;
    std::function<Status(StoreTx&, const Started&)> also;
  };
  // StartCase's transaction, for one case or several: `started` gets one entry per spec. Returns
  // the raw status: refusals are the caller's. On failure, `failed_at` names the spec whose own
  // statements failed, when one did (not when the commit did).
  Status StartTransaction(const std::vector<StartSpec>& specs,
                          std::vector<std::optional<Started>>* started,
                          std::optional<std::size_t>* failed_at = nullptr);
  // One try of StartTransaction, with the ids it draws.
  Status StartTransactionOnce(const std::vector<StartSpec>& specs,
                              std::vector<std::optional<Started>>* started,
                              std::optional<std::size_t>* failed_at);
  // kUsage unless `key` can be an Idempotency-Key.
  static Status UsableKey(const std::string& key);
  // Inside a start transaction: records the Idempotency-Key `row` of the case just started, and
  // where its answer goes for a federated start (`caller`, may be null). kConflict when the key
  // is taken (and `*taken` set, when not null).
  Status RecordKey(StoreTx& tx, const IdempotencyRecord& row, const std::string& actor,
                   const FederatedCaller* caller, bool* taken);
  // StartCasesOnce for the requests at `members`, their outcomes into `out`.
  void StartGroupOnce(const std::vector<OnceRequest>& requests,
                      const std::vector<std::size_t>& members,
                      std::vector<Result<StartedOnce>>& out);
  Result<Started> StartInTx(StoreTx& tx, const workflows::Procedure& procedure,
                            const nlohmann::json& data, const std::string& actor, Timestamp now,
                            std::optional<std::string> parent_case,
                            std::optional<int64_t> parent_activation,
                            workflows::Evaluator& evaluator);
  // `personal`: the personal values the event brought (EventPersonalValues); `opened`: the
  // case's boxes as LoadState read them. Moves the advance's state into states_ once committed.
  Status Persist(StoreTx& tx, CaseRecord& record, const workflows::Procedure& procedure,
                 Advance& advance, const std::string& actor, Timestamp now,
                 workflows::Evaluator& evaluator, std::set<std::string> personal = {},
                 OpenedBoxes opened = {});
  // Rehearses starting a case of `procedure` with `data`, and the sub-cases its first steps
  // start (at most kMaxRehearsedDepth levels deep).
  Status RehearseStart(StoreTx& tx, const workflows::Procedure& procedure,
                       const nlohmann::json& data, const std::string& actor, Timestamp now,
                       ExpressionMemo& memo, int depth);
  Status RehearseCommands(StoreTx& tx, const Advance& advance, const std::string& actor,
                          Timestamp now, ExpressionMemo& memo, int depth);
  // Runs `body` in a write transaction after `rehearse` (in a read transaction) evaluated its
  // expressions into the memo `body` gets; repeats both when the transaction missed some (the
  // data changed in between), at most kMaxRehearsals times. With `skip_first_rehearsal` (every
  // expression known bounded) the first round goes straight to the transaction.
  Status TransactRehearsed(const std::function<Status(StoreTx&, ExpressionMemo&)>& rehearse,
                           const std::function<Status(StoreTx&, ExpressionMemo&)>& body,
                           bool skip_first_rehearsal = false);
  // After a start refused with kConflict (rolled back): records the refused duplicate in its own
  // transaction when the procedure has a dedupe key (engine/refusal.cpp) and returns `refused`;
  // when the record cannot be written, `refused` with a note saying so, never silently.
  Status WithRefusal(const Status& refused, const std::string& procedure,
                     const nlohmann::json& data, const std::string& actor);
  // Records several refused duplicates of `procedure` (the case data of each refused start) in
  // one transaction; the store's error when it cannot.
  Status RecordRefusals(const std::string& procedure,
                        const std::vector<const nlohmann::json*>& data, const std::string& actor);

  Store& store_;
  const Deployment& deployment_;
  workflows::Evaluator& evaluator_;
  ProcedureCache procedures_;
  WriteGuard* guard_ = nullptr;
  std::mutex personal_mutex_;
  std::map<const workflows::Procedure*, workflows::PersonalMap> personal_;
  StateCache states_;  // open cases' states as this process committed them
};

// Checks case data: a JSON object within the bounds of workflows/json_limits.hpp, measured
// without recursion, so it is safe on a value of any depth. kInvalid naming the bound ("case
// data is JSON nested deeper than 32 levels at $.a[0]...").
Status CheckDataLimits(const nlohmann::json& data);

// Checks the JSON an event brings into a case (Start's data, a step's result, form values,
// signal data, a sub-case's data) against the same bounds; kInvalid naming the bound.
Status CheckEventData(const Event& event);

// The note added to a refused start's message when its refusal could not be recorded.
std::string RefusalNotRecorded(const Status& failure);

}  // namespace wf::engine
