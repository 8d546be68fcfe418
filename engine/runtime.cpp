#include "engine/runtime.hpp"

#include <algorithm>
#include <limits>
#include <type_traits>

#include "engine/call_graph.hpp"
#include "engine/history_action.hpp"
#include "engine/state_text.hpp"
#include "workflows/expression.hpp"
#include "workflows/i18n.hpp"
#include "workflows/json_limits.hpp"
#include "workflows/json_text.hpp"
#include "workflows/loader.hpp"

namespace wf::engine {

namespace {

TimePoint ToTimePoint(Timestamp t) { return TimePoint(t.time_since_epoch()); }
Timestamp ToTimestamp(TimePoint t) { return std::chrono::floor<std::chrono::microseconds>(t); }

template <class... F>
struct Overloaded : F... {
  using F::operator()...;
};
template <class... F>
Overloaded(F...) -> Overloaded<F...>;

NewWork EventWork(const std::string& case_id, const std::string& step, int64_t activation,
                  const Event& event, Timestamp run_at) {
  return NewWork{case_id, kWorkEvent, step, activation, workflows::DumpJson(EventToJson(event)),
                 run_at};
}

// The newest version of a deployed procedure, with a message that says what to do if none.
Result<ProcedureRecord> LatestDeployed(StoreTx& tx, const std::string& name) {
  auto record = tx.LatestProcedure(name);
  if (!record && record.error().code() == ErrorCode::kNotFound) {
    return Status::NotFound(
        TrFormat("no procedure named '{0}' is deployed; deploy it with `wf deploy FILE`", name));
  }
  return record;
}

// A refusal to start a case, in the reader's language; English when `stored`: a sub-case that
// cannot start is written into its parent's history, which every reader reads.
template <typename... Args>
std::string StartRefusal(bool stored, const char* msgid, const Args&... args) {
  return TrFill(stored ? msgid : Tr(msgid), msgid, fmt::make_format_args(args...));
}

Status DataLimits(const nlohmann::json& data, bool stored) {
  if (!data.is_object()) {
    return Status::Invalid(StartRefusal(stored, TrNoop("case data must be a JSON object")));
  }
  if (Status bounded = workflows::CheckJson(data); !bounded.ok()) {
    return Status(bounded.code(),
                  StartRefusal(stored, TrNoop("case data is {0}"), bounded.message()));
  }
  return Status::Ok();
}

// The procedures from the root case down to `record` (the case itself included), read through
// its parent_case links; stops after kMaxSubCaseDepth + 1 names, which is enough to refuse.
Result<std::vector<std::string>> SubCaseChain(StoreTx& tx, const CaseRecord& record) {
  std::vector<std::string> chain{record.procedure};
  std::optional<std::string> parent = record.parent_case;
  while (parent && static_cast<int>(chain.size()) <= kMaxSubCaseDepth) {
    auto above = tx.GetCase(*parent);
    if (!above) {
      if (above.error().code() == ErrorCode::kNotFound) break;  // archived: the chain ends there
      return above.error();
    }
    chain.push_back(above->procedure);
    parent = above->parent_case;
  }
  if (parent) chain.push_back("...");
  std::reverse(chain.begin(), chain.end());
  return chain;
}

// Sub-cases started by sub-cases... are rehearsed this deep; deeper ones are evaluated by the
// last round (see ExpressionMemo).
constexpr int kMaxRehearsedDepth = 8;

bool TemplateBounded(const nlohmann::json& value_template) {
  if (value_template.is_string()) {
    std::vector<workflows::EmbeddedExpression> found;
    if (!workflows::FindExpressions(value_template.get_ref<const std::string&>(), &found,
                                    nullptr)) {
      return true;  // renders as an error without evaluating anything
    }
    for (const auto& embedded : found) {
      if (!workflows::IsProvablyBounded(embedded.program)) return false;
    }
    return true;
  }
  if (value_template.is_structured()) {
    for (const auto& member : value_template) {
      if (!TemplateBounded(member)) return false;
    }
  }
  return true;
}

bool ProcedureBounded(const workflows::Procedure& procedure) {
  if (procedure.dedupe && !procedure.dedupe->expression.bounded()) return false;
  for (const workflows::Step& step : procedure.steps) {
    if (!TemplateBounded(step.call) || !TemplateBounded(step.input)) return false;
    if (step.reason && !step.reason->expression.bounded()) return false;
    for (const auto& transition : step.next) {
      if (transition.condition && !transition.condition->expression.bounded()) return false;
    }
  }
  return true;
}

}  // namespace

// --- ExpressionMemo

Result<nlohmann::json> ExpressionMemo::Evaluate(const workflows::Expression& expression,
                                                const nlohmann::json& input) {
  if (expression.bounded()) return source_.Evaluate(expression, input);
  std::string key = expression.program();
  key.push_back('\0');
  key += input.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  if (auto it = answers_.find(key); it != answers_.end()) return it->second;
  if (replaying_) {
    ++missed_;
    if (!pass_through_) {
      return Status::Unavailable("expression `" + expression.program() +
                                 "` was not evaluated before the transaction");
    }
  }
  Result<nlohmann::json> answer = source_.Evaluate(expression, input);
  if (!answer && answer.error().code() == ErrorCode::kUnavailable) {
    if (!unavailable_) unavailable_ = answer.error();
    return answer;
  }
  answers_.emplace(std::move(key), answer);
  return answer;
}

Status CheckDataLimits(const nlohmann::json& data) { return DataLimits(data, false); }

Status CheckEventData(const Event& event) {
  // `what` holds the message, "... is {0}", translated here.
  auto check = [](const nlohmann::json& value, const char* what) {
    Status bounded = workflows::CheckJson(value);
    return bounded.ok() ? bounded : Status(bounded.code(), TrFormat(what, bounded.message()));
  };
  return std::visit(
      Overloaded{
          [&](const event::Start& e) { return check(e.data, TrNoop("case data is {0}")); },
          [&](const event::StepSucceeded& e) {
            return check(e.result, TrNoop("the step's result is {0}"));
          },
          [&](const event::TaskCompleted& e) {
            return check(e.values, TrNoop("the form's values are {0}"));
          },
          [&](const event::SignalReceived& e) {
            return check(e.data, TrNoop("the signal's data is {0}"));
          },
          [&](const event::ChildEnded& e) {
            return check(e.data, TrNoop("the sub-case's data is {0}"));
          },
          [](const auto&) { return Status::Ok(); },
      },
      event);
}

// --- InvokePayload

nlohmann::json InvokePayload::ToJson() const {
  // Member by member, not an initializer list: this runs for every call to a department.
  nlohmann::json out = nlohmann::json::object();
  out["department"] = department;
  out["operation"] = operation;
  out["fields"] = fields;
  out["attempt"] = attempt;
  out["timeout_ms"] = timeout_ms;
  out["subject"] = subject;
  if (reuse_seconds) out["reuse_seconds"] = *reuse_seconds;
  return out;
}

Result<InvokePayload> InvokePayload::FromJson(const nlohmann::json& json) {
  try {
    InvokePayload p;
    p.department = json.at("department").get<std::string>();
    p.operation = json.at("operation").get<std::string>();
    p.fields = json.at("fields");
    p.attempt = json.at("attempt").get<int>();
    p.timeout_ms = json.at("timeout_ms").get<int64_t>();
    p.subject = json.value("subject", "");
    if (json.contains("reuse_seconds")) p.reuse_seconds = json.at("reuse_seconds").get<int64_t>();
    return p;
  } catch (const nlohmann::json::exception& e) {
    return Status::Internal(std::string("malformed invoke payload: ") + e.what());
  }
}

// --- ProcedureCache

Result<const workflows::Procedure*> ProcedureCache::Put(const ProcedureRecord& record) {
  std::lock_guard lock(mutex_);
  auto key = std::make_pair(record.name, record.version);
  if (auto it = procedures_.find(key); it != procedures_.end()) return it->second.get();
  workflows::LoadResult loaded = workflows::LoadProcedure(record.source, record.name + ".yaml");
  if (!loaded.ok()) {
    std::string first = loaded.diagnostics.empty() ? "" : loaded.diagnostics.front().ToString();
    return Status::Internal("stored procedure " + record.name + " v" +
                            std::to_string(record.version) + " no longer loads: " + first);
  }
  // The stored source must be what was deployed: someone with write access to `procedures`
  // swapping a procedure's source under its recorded hash is refused, and the case's work
  // that needed it ends in an incident naming the mismatch.
  if (!record.content_hash.empty() && loaded.procedure->content_hash != record.content_hash) {
    return Status::Internal(
        "stored procedure " + record.name + " v" + std::to_string(record.version) +
        " does not match its content hash: its source was changed after "
        "it was deployed (recorded " +
        record.content_hash + ", source hashes to " + loaded.procedure->content_hash + ")");
  }
  auto procedure = std::make_unique<workflows::Procedure>(std::move(*loaded.procedure));
  procedure->version = record.version;  // the deployed version, not the file's `version:`
  const workflows::Procedure* out = procedure.get();
  all_bounded_[out] = ProcedureBounded(*out);
  procedures_.emplace(key, std::move(procedure));
  return out;
}

bool ProcedureCache::AllBounded(const workflows::Procedure* procedure) {
  std::lock_guard lock(mutex_);
  auto it = all_bounded_.find(procedure);
  return it != all_bounded_.end() && it->second;
}

bool ProcedureCache::KnownBounded(const std::string& name, int version) {
  std::lock_guard lock(mutex_);
  auto it = procedures_.find({name, version});
  return it != procedures_.end() && all_bounded_[it->second.get()];
}

bool ProcedureCache::LatestKnownBounded(const std::string& name) {
  std::lock_guard lock(mutex_);
  auto it = procedures_.lower_bound({name, std::numeric_limits<int>::max()});
  if (it == procedures_.begin()) return false;
  --it;
  return it->first.first == name && all_bounded_[it->second.get()];
}

Result<const workflows::Procedure*> ProcedureCache::Get(StoreTx& tx, const std::string& name,
                                                        int version) {
  {
    std::lock_guard lock(mutex_);
    if (auto it = procedures_.find({name, version}); it != procedures_.end()) {
      return it->second.get();
    }
  }
  auto record = tx.GetProcedure(name, version);
  if (!record) return record.error();
  return Put(*record);
}

// --- Runtime

Result<DeployOutcome> Runtime::Deploy(const workflows::Procedure& procedure) {
  auto outcomes = Deploy(std::vector<const workflows::Procedure*>{&procedure});
  if (!outcomes) return outcomes.error();
  return outcomes->front();
}

Result<std::vector<DeployOutcome>> Runtime::Deploy(
    const std::vector<const workflows::Procedure*>& procedures) {
  std::vector<DeployOutcome> outcomes(procedures.size());
  // Each name is locked as it is deployed: in name order, so that two releases sharing
  // procedures cannot wait for each other.
  std::vector<size_t> order(procedures.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(),
            [&](size_t a, size_t b) { return procedures[a]->name < procedures[b]->name; });
  const Timestamp now = Now();
  Status status = Write([&](StoreTx& tx) {
    if (Status cycles = CheckCallCycles(tx, procedures_, procedures); !cycles.ok()) return cycles;
    for (size_t i : order) {
      const workflows::Procedure* procedure = procedures[i];
      ProcedureRecord record;
      record.name = procedure->name;
      record.content_hash = procedure->content_hash;
      record.source = procedure->source;
      record.title = procedure->title;
      record.agency = procedure->agency;
      record.deployed_at = now;
      auto deployed = tx.DeployProcedure(record);
      if (!deployed) return deployed.error();
      outcomes[i] = *deployed;
    }
    return Status::Ok();
  });
  if (!status.ok()) return status;
  return outcomes;
}

namespace {

// A new case's id, drawn for a row written with the transaction's last statements
// (StoreTx::InsertCaseDeferred), that another case took meanwhile: the start is tried again,
// with ids drawn anew. The words are store_pipeline.cpp's, for the statement "insert new cases".
bool NewCaseIdTaken(const Status& status) {
  return status.code() == ErrorCode::kUnavailable &&
         status.message().find("insert new cases: a case was changed meanwhile") !=
             std::string::npos;
}

// Draws of new case ids a start makes before its kUnavailable stands (InsertCase draws 8).
constexpr int kNewCaseIdDraws = 4;

}  // namespace

Status Runtime::StartTransaction(const std::vector<StartSpec>& specs,
                                 std::vector<std::optional<Started>>* started,
                                 std::optional<std::size_t>* failed_at) {
  Status status;
  for (int draw = 1; draw <= kNewCaseIdDraws; ++draw) {
    status = StartTransactionOnce(specs, started, failed_at);
    if (!NewCaseIdTaken(status)) break;
  }
  return status;
}

Status Runtime::StartTransactionOnce(const std::vector<StartSpec>& specs,
                                     std::vector<std::optional<Started>>* started,
                                     std::optional<std::size_t>* failed_at) {
  const Timestamp now = Now();
  // A procedure whose expressions are all bounded needs no rehearsal: if a newer version that is
  // not was deployed meanwhile, the transaction misses its answers and the next round rehearses.
  bool skip = true;
  for (const StartSpec& spec : specs) {
    skip = skip && procedures_.LatestKnownBounded(*spec.procedure);
  }
  // Each procedure is read once per transaction, however many of its cases start.
  using Loaded = std::map<std::string, const workflows::Procedure*, std::less<>>;
  auto load = [&](StoreTx& tx, Loaded& loaded,
                  const std::string& name) -> Result<const workflows::Procedure*> {
    if (auto known = loaded.find(name); known != loaded.end()) return known->second;
    auto record = LatestDeployed(tx, name);
    if (!record) return record.error();
    auto procedure = procedures_.Put(*record);
    if (!procedure) return procedure.error();
    loaded.emplace(name, *procedure);
    return *procedure;
  };
  return TransactRehearsed(
      [&](StoreTx& tx, ExpressionMemo& memo) {
        Loaded loaded;
        Status first = Status::Ok();  // the others are still rehearsed: the body runs them all
        for (const StartSpec& spec : specs) {
          auto procedure = load(tx, loaded, *spec.procedure);
          Status status =
              procedure ? RehearseStart(tx, **procedure, *spec.data, *spec.actor, now, memo, 0)
                        : procedure.error();
          if (status.code() == ErrorCode::kUnavailable) return status;
          if (first.ok()) first = status;
        }
        return first;
      },
      [&](StoreTx& tx, ExpressionMemo& memo) {
        started->assign(specs.size(), std::nullopt);
        if (failed_at != nullptr) failed_at->reset();
        // Each new case's update, history and work go to the server in one pipeline, before the
        // next statement that needs an answer: only rows this transaction inserted are updated.
        tx.DeferWrites();
        Loaded loaded;
        for (std::size_t i = 0; i < specs.size(); ++i) {
          const StartSpec& spec = specs[i];
          auto fail = [&](const Status& status) {
            if (failed_at != nullptr) *failed_at = i;
            return status;
          };
          auto procedure = load(tx, loaded, *spec.procedure);
          if (!procedure) return fail(procedure.error());
          auto result = StartInTx(tx, **procedure, *spec.data, *spec.actor, now, std::nullopt,
                                  std::nullopt, memo);
          if (!result) return fail(result.error());
          if (spec.also) {
            if (Status s = spec.also(tx, *result); !s.ok()) return fail(s);
          }
          (*started)[i] = *result;
        }
        return Status::Ok();
      },
      skip);
}

Result<Started> Runtime::StartCase(const std::string& procedure_name, const nlohmann::json& data,
                                   const std::string& actor) {
  std::vector<std::optional<Started>> started;
  Status status = StartTransaction({{&procedure_name, &data, &actor, nullptr}}, &started);
  if (status.code() == ErrorCode::kConflict)
    return WithRefusal(status, procedure_name, data, actor);
  if (!status.ok()) return status;
  return *started.front();
}

Result<std::vector<BatchLine>> Runtime::StartBatch(const std::string& procedure_name,
                                                   const std::vector<nlohmann::json>& data,
                                                   const std::string& actor, int batch_size) {
  std::vector<BatchLine> lines(data.size());
  const workflows::Procedure* procedure = nullptr;
  Status status = store_.Read([&](StoreTx& tx) {
    auto record = LatestDeployed(tx, procedure_name);
    if (!record) return record.error();
    auto loaded = procedures_.Put(*record);
    if (!loaded) return loaded.error();
    procedure = *loaded;
    return Status::Ok();
  });
  if (!status.ok()) return status;

  batch_size = std::max(1, batch_size);
  for (size_t begin = 0; begin < data.size(); begin += batch_size) {
    size_t end = std::min(data.size(), begin + batch_size);
    std::vector<size_t> refused;  // lines of this batch left out, in the order they failed
    // A case that fails is left out and the batch tried again without it: one bad line must
    // not take its neighbours down, and a doomed transaction cannot continue.
    // The batch's expressions are evaluated before its transactions; a sub-case procedure
    // deployed in between is the only thing the memo can miss, and is then evaluated in the
    // transaction (bounded all the same).
    const Timestamp now = Now();
    ExpressionMemo memo(evaluator_);
    Status rehearsed = store_.Read([&](StoreTx& tx) {
      for (size_t i = begin; i < end; ++i) {
        if (Status s = RehearseStart(tx, *procedure, data[i], actor, now, memo, 0); !s.ok()) {
          return s;
        }
      }
      return Status::Ok();
    });
    if (!rehearsed.ok()) return rehearsed;
    if (memo.unavailable()) return *memo.unavailable();
    memo.Replay(true);
    int draws = 0;
    for (int round = 0; round < batch_size + 1; ++round) {
      std::optional<size_t> failed_index;
      Status failure;
      Status committed = Write([&](StoreTx& tx) {
        // The batch's rows go to the server together, in multi-row statements before COMMIT
        // (each case's own statements wait only where a case needs an answer first).
        tx.DeferWrites();
        for (size_t i = begin; i < end; ++i) {
          if (std::find(refused.begin(), refused.end(), i) != refused.end()) continue;
          auto one =
              StartInTx(tx, *procedure, data[i], actor, now, std::nullopt, std::nullopt, memo);
          if (memo.unavailable()) return *memo.unavailable();
          if (!one) {
            failed_index = i;
            failure = one.error();
            return one.error();
          }
          lines[i].started = *one;
        }
        return Status::Ok();
      });
      if (committed.ok()) break;
      if (NewCaseIdTaken(committed) && ++draws < kNewCaseIdDraws) {
        --round;  // the same lines again, with new ids
        continue;
      }
      if (!failed_index || failure.code() == ErrorCode::kUnavailable ||
          failure.code() == ErrorCode::kInternal) {
        return committed;
      }
      refused.push_back(*failed_index);
      BatchLine& line = lines[*failed_index];
      line.outcome = failure.code() == ErrorCode::kConflict && procedure->dedupe
                         ? BatchLine::Outcome::kDuplicate
                         : BatchLine::Outcome::kRefused;
      line.refusal = failure;
    }
    // Recorded once the batch commits, so the refusal can name a case the batch itself opened.
    std::vector<const nlohmann::json*> duplicates;
    for (size_t i : refused) {
      if (lines[i].outcome == BatchLine::Outcome::kDuplicate) duplicates.push_back(&data[i]);
    }
    if (Status recorded = RecordRefusals(procedure_name, duplicates, actor); !recorded.ok()) {
      for (size_t i : refused) {
        BatchLine& line = lines[i];
        if (line.outcome != BatchLine::Outcome::kDuplicate) continue;
        line.refusal = Status(line.refusal.code(),
                              line.refusal.message() + " " + RefusalNotRecorded(recorded));
      }
    }
  }
  return lines;
}

bool Runtime::WritesRowOnlyOnce(const workflows::Procedure& procedure, const CaseRecord& record,
                                const Advance& advance) {
  // A top-level case without personal data whose first commands only queue work (or end it):
  // Persist writes nothing that refers to the case row before its own UpdateCase, so the row can
  // go in once, with the history and work, instead of inserted now and updated then. A key row,
  // a task, an incident or a sub-case refer to the case row as soon as they are written.
  if (record.parent_case || record.dedupe_key || !PersonalOf(procedure).empty()) return false;
  for (const Command& command : advance.commands) {
    const bool queues = std::holds_alternative<command::InvokeAdapter>(command) ||
                        std::holds_alternative<command::ScheduleRetry>(command) ||
                        std::holds_alternative<command::SetTimer>(command) ||
                        std::holds_alternative<command::PauseClock>(command) ||
                        std::holds_alternative<command::ResumeClock>(command) ||
                        std::holds_alternative<command::Finish>(command);
    if (!queues) return false;
  }
  return true;
}

Result<Started> Runtime::StartInTx(StoreTx& tx, const workflows::Procedure& procedure,
                                   const nlohmann::json& data, const std::string& actor,
                                   Timestamp now, std::optional<std::string> parent_case,
                                   std::optional<int64_t> parent_activation,
                                   workflows::Evaluator& evaluator) {
  const bool stored = parent_case.has_value();  // a sub-case's refusal goes into history
  if (Status limits = DataLimits(data, stored); !limits.ok()) return limits;
  CaseRecord record;
  record.procedure = procedure.name;
  record.version = procedure.version;
  record.agency = procedure.agency;
  record.started_by = actor;
  record.started_at = now;
  record.updated_at = now;
  record.parent_case = std::move(parent_case);
  record.parent_activation = parent_activation;
  if (procedure.dedupe) {
    auto key = evaluator.Evaluate(procedure.dedupe->expression, data);
    if (!key) {
      return Status::Invalid(
          StartRefusal(stored, TrNoop("dedupe key: {0}"), key.error().message()));
    }
    const std::string plain = key->is_string() ? key->get<std::string>() : key->dump();
    record.dedupe_key = StoredDedupeKey(procedure, data, plain);
    auto existing = tx.FindOpenCaseByDedupe(procedure.name, *record.dedupe_key);
    if (!existing) return existing.error();
    if (*existing) {
      // A key that holds personal data is not printed (logs and messages print none).
      const bool personal = *record.dedupe_key != plain;
      return Status::Conflict(StartRefusal(
          stored, TrNoop("a case of {0} with the same dedupe key ({1}) is already open: {2}"),
          procedure.name, personal ? Tr("personal data, not shown") : plain, (*existing)->id));
    }
  }
  if (procedure.deadline) {
    Calendar calendar = deployment_.CalendarOf(procedure.agency);
    record.deadline_at = ToTimestamp(calendar.DueAfter(ToTimePoint(now), *procedure.deadline));
  }
  auto advance = Apply(procedure, CaseState{}, event::Start{data},
                       Context{ToTimePoint(now), actor, &evaluator});
  if (!advance) return advance.error();
  // The row goes in without the case's data: Persist writes it, sealed where it is personal, in
  // this transaction. Inserted in the clear, a citizen's data would stay on disk (the insert's
  // dead row version, PostgreSQL's write-ahead log) after the update that seals it.
  record.status = advance->state.status;
  CaseState empty;
  empty.status = advance->state.status;
  record.data = "{}";
  record.state = empty.ToJson(/*with_data=*/false).dump();
  auto id = WritesRowOnlyOnce(procedure, record, *advance) ? tx.InsertCaseDeferred(record)
                                                           : tx.InsertCase(record);
  if (!id) return id.error();
  record.id = *id;
  record.row_version = 1;
  if (Status persisted = Persist(tx, record, procedure, *advance, actor, now, evaluator);
      !persisted.ok()) {
    return persisted;
  }
  return Started{record.id, procedure.name, procedure.version};
}

Status Runtime::ApplyInTx(StoreTx& tx, CaseRecord& record, const Event& event,
                          const std::string& actor, Timestamp now,
                          workflows::Evaluator& evaluator) {
  auto procedure = procedures_.Get(tx, record.procedure, record.version);
  if (!procedure) return procedure.error();
  // The state this process last committed for the case, when the row is still that version;
  // else the row's, parsed and opened.
  OpenedBoxes opened;
  CaseState state;
  if (auto kept = states_.Take(record.id, record.row_version)) {
    state = std::move(kept->state);
    opened = std::move(kept->opened);
  } else {
    auto loaded = LoadState(tx, record, &opened);
    if (!loaded) return loaded.error();
    state = std::move(*loaded);
  }
  auto advance = Apply(**procedure, state, event, Context{ToTimePoint(now), actor, &evaluator});
  if (!advance) {
    return Status(advance.error().code(), "case " + record.id + ": " + advance.error().message());
  }
  if (advance->stale) return Status::Ok();
  return Persist(tx, record, **procedure, *advance, actor, now, evaluator,
                 EventPersonalValues(**procedure, state, event), std::move(opened));
}

Status Runtime::Rehearse(StoreTx& tx, const CaseRecord& record,
                         const std::vector<const Event*>& events, const std::string& actor,
                         Timestamp now, ExpressionMemo& memo) {
  auto procedure = procedures_.Get(tx, record.procedure, record.version);
  if (!procedure) return procedure.error();
  CaseState current;
  if (auto kept = states_.Peek(record.id, record.row_version)) {
    current = std::move(*kept);
  } else {
    auto state = LoadState(tx, record);
    if (!state) return Status::Ok();  // the transaction reports it
    current = std::move(*state);
  }
  for (const Event* event : events) {
    auto advance = Apply(**procedure, current, *event, Context{ToTimePoint(now), actor, &memo});
    if (!advance || advance->stale) continue;
    if (Status s = RehearseCommands(tx, *advance, actor, now, memo, 0); !s.ok()) return s;
    current = std::move(advance->state);
  }
  return Status::Ok();
}

Status Runtime::RehearseStart(StoreTx& tx, const workflows::Procedure& procedure,
                              const nlohmann::json& data, const std::string& actor, Timestamp now,
                              ExpressionMemo& memo, int depth) {
  if (depth > kMaxRehearsedDepth || !CheckDataLimits(data).ok()) return Status::Ok();
  if (procedure.dedupe) {
    if (!memo.Evaluate(procedure.dedupe->expression, data)) return Status::Ok();
  }
  auto advance =
      Apply(procedure, CaseState{}, event::Start{data}, Context{ToTimePoint(now), actor, &memo});
  if (!advance) return Status::Ok();
  return RehearseCommands(tx, *advance, actor, now, memo, depth);
}

Status Runtime::RehearseCommands(StoreTx& tx, const Advance& advance, const std::string& actor,
                                 Timestamp now, ExpressionMemo& memo, int depth) {
  for (const Command& command : advance.commands) {
    const auto* start = std::get_if<command::StartChild>(&command);
    if (start == nullptr) continue;
    auto child_record = tx.LatestProcedure(start->procedure);
    if (!child_record) {
      if (child_record.error().code() == ErrorCode::kNotFound) continue;
      return child_record.error();
    }
    auto child = procedures_.Put(*child_record);
    if (!child) continue;
    Status s = RehearseStart(tx, **child, start->input, actor, now, memo, depth + 1);
    if (!s.ok()) return s;
  }
  return Status::Ok();
}

Status Runtime::TransactRehearsed(const std::function<Status(StoreTx&, ExpressionMemo&)>& rehearse,
                                  const std::function<Status(StoreTx&, ExpressionMemo&)>& body,
                                  bool skip_first_rehearsal) {
  ExpressionMemo memo(evaluator_);
  for (int round = 1;; ++round) {
    memo.Record();
    memo.ClearUnavailable();
    // Its failures (no such case, a procedure that no longer loads) are the transaction's to
    // report; only an evaluator that cannot run stops here.
    Status rehearsed = round == 1 && skip_first_rehearsal
                           ? Status::Ok()
                           : store_.Read([&](StoreTx& tx) { return rehearse(tx, memo); });
    if (rehearsed.code() == ErrorCode::kUnavailable) return rehearsed;
    if (memo.unavailable()) return *memo.unavailable();
    const bool last = round == kMaxRehearsals;
    memo.Replay(last);
    Status status = Write([&](StoreTx& tx) {
      Status s = body(tx, memo);
      if (memo.unavailable()) return *memo.unavailable();
      if (memo.missed() > 0 && !last) return Status::Unavailable("the case changed meanwhile");
      return s;
    });
    if (memo.missed() == 0 || last) return status;
  }
}

Status Runtime::Persist(StoreTx& tx, CaseRecord& record, const workflows::Procedure& procedure,
                        Advance& advance, const std::string& actor, Timestamp now,
                        workflows::Evaluator& evaluator, std::set<std::string> personal,
                        OpenedBoxes opened) {
  const std::string& case_id = record.id;
  auto sealer = SealerFor(tx, case_id, procedure, advance.state.data, std::move(personal),
                          std::move(opened));
  if (!sealer) return sealer.error();
  record.status = advance.state.status;
  // The data is written once, in cases.data; the state beside it has the rest (format 2).
  record.state = sealer->active() ? StateText(advance.state,
                                              [&](const std::string& text) {
                                                return sealer->SealText(text);
                                              })
                                  : StateText(advance.state);
  record.updated_at = now;
  std::vector<NewWork> work;
  // Taken, not copied: the advance is its caller's own and read no more after this.
  std::vector<HistoryNote> notes = std::move(advance.notes);
  Calendar calendar = deployment_.CalendarOf(procedure.agency);
  auto step_of = [&](int64_t activation) {
    const Token* token = advance.state.FindByActivation(activation);
    return token ? token->step : std::string();
  };

  for (const Command& command : advance.commands) {
    Status status = std::visit(
        Overloaded{
            [&](const command::InvokeAdapter& c) -> Status {
              const workflows::Step* step = procedure.FindStep(c.step);
              InvokePayload payload;
              payload.department = c.department;
              payload.fields = c.call.is_object() ? c.call : nlohmann::json::object();
              if (payload.fields.contains("operation") && payload.fields["operation"].is_string()) {
                payload.operation = payload.fields["operation"].get<std::string>();
                payload.fields.erase("operation");
              }
              payload.attempt = c.attempt;
              if (c.timeout) payload.timeout_ms = c.timeout->ApproximateSeconds() * 1000;
              if (c.reuse) {
                payload.reuse_seconds = c.reuse->ApproximateSeconds();
                payload.subject =
                    EvidenceSubject(c.department, payload.operation,
                                    workflows::DumpJson(payload.fields));
                if (sealer->Touches(payload.fields)) {
                  // A call about a person: its subject is a keyed hash (not guessable from a
                  // citizen id), and what it verifies is kept sealed (SaveEvidence).
                  auto ring = store_.keys().Ring(true);
                  if (!ring) return ring.error();
                  payload.subject = (*ring)->KeyedHash(payload.subject);
                }
              }
              (void)step;
              nlohmann::json payload_json = payload.ToJson();
              sealer->SealInPlace(payload_json);
              work.push_back(
                  NewWork{case_id, kWorkInvoke, c.step, c.activation,
                          workflows::DumpJson(payload_json), now});
              return Status::Ok();
            },
            [&](const command::ScheduleRetry& c) -> Status {
              work.push_back(EventWork(case_id, step_of(c.activation), c.activation,
                                       event::TimerFired{c.activation, TimerKind::kRetry},
                                       now + std::chrono::seconds(c.delay_seconds)));
              return Status::Ok();
            },
            [&](const command::OpenTask& c) -> Status {
              TaskRecord task;
              task.case_id = case_id;
              task.activation = c.activation;
              task.step = c.step;
              task.title = sealer->SealText(c.title);
              task.role = c.role;
              task.agency = c.agency;
              task.form = c.form_schema.is_null() ? "{}" : sealer->Seal(c.form_schema).dump();
              task.created_at = now;
              if (c.deadline) {
                task.due_at = ToTimestamp(
                    deployment_.CalendarOf(c.agency).DueAfter(ToTimePoint(now), *c.deadline));
              }
              auto id = tx.InsertTask(task);
              if (!id) return id.error();
              for (auto& note : notes) {
                if (note.action == history_action::kTaskOpened &&
                    note.details.value("activation", int64_t{0}) == c.activation) {
                  note.details["task"] = *id;
                }
              }
              return Status::Ok();
            },
            [&](const command::CloseTask& c) -> Status {
              auto n = tx.CancelTasks(case_id, c.activation);
              return n ? Status::Ok() : n.error();
            },
            [&](const command::EscalateTask& c) -> Status {
              TaskFilter filter;
              filter.case_id = case_id;
              auto tasks = tx.ListTasks(filter);
              if (!tasks) return tasks.error();
              for (const auto& task : *tasks) {
                if (task.activation != c.activation) continue;
                Status s = tx.EscalateTask(task.id, c.to_role, std::nullopt);
                if (!s.ok() && s.code() != ErrorCode::kConflict) return s;
              }
              return Status::Ok();
            },
            [&](const command::SetTimer& c) -> Status {
              Timestamp due = ToTimestamp(calendar.DueAfter(ToTimePoint(now), c.after));
              work.push_back(EventWork(case_id, step_of(c.activation), c.activation,
                                       event::TimerFired{c.activation, c.kind}, due));
              return Status::Ok();
            },
            [&](const command::CancelTimers& c) -> Status {
              auto n = tx.CancelWork(case_id, c.activation);
              return n ? Status::Ok() : n.error();
            },
            [&](const command::StartChild& c) -> Status {
              // Sub-cases start here, inside this transaction and on this stack: a chain of
              // procedures calling each other (deployed before CheckCallCycles existed) must end
              // as this case's failure, not as a stack overflow.
              auto ancestors = SubCaseChain(tx, record);
              if (!ancestors) return ancestors.error();
              if (static_cast<int>(ancestors->size()) > kMaxSubCaseDepth) {
                const Token* token = advance.state.FindByActivation(c.activation);
                std::string chain;
                for (const std::string& name : *ancestors) chain += name + " → ";
                work.push_back(EventWork(
                    case_id, step_of(c.activation), c.activation,
                    event::StepFailed{c.activation,
                                      "sub-cases nested deeper than " +
                                          std::to_string(kMaxSubCaseDepth) + " levels: " + chain +
                                          c.procedure + " (do these procedures call each other?)",
                                      false, token ? token->attempt : 0},
                    now));
                return Status::Ok();
              }
              auto child_record = tx.LatestProcedure(c.procedure);
              Status failure;
              if (child_record) {
                auto child_procedure = procedures_.Put(*child_record);
                if (child_procedure) {
                  auto child = StartInTx(tx, **child_procedure, c.input, actor, now, case_id,
                                         c.activation, evaluator);
                  if (child) return Status::Ok();
                  failure = child.error();
                } else {
                  failure = child_procedure.error();
                }
              } else {
                failure = child_record.error();
              }
              if (failure.code() == ErrorCode::kUnavailable ||
                  failure.code() == ErrorCode::kInternal) {
                return failure;
              }
              // The sub-case cannot start (no such procedure, bad input, a duplicate): the parent
              // hears it as a sub-case that ended "failed", and its next decides.
              work.push_back(EventWork(
                  case_id, step_of(c.activation), c.activation,
                  event::ChildEnded{c.activation, "", "failed", {{"error", failure.message()}}},
                  now));
              return Status::Ok();
            },
            [&](const command::CancelChild& c) -> Status {
              auto children = tx.ListChildCases(case_id);
              if (!children) return children.error();
              for (const auto& child : *children) {
                if (child.parent_activation == c.activation && child.status == kCaseOpen) {
                  work.push_back(EventWork(
                      child.id, "", 0, event::Cancel{"parent case " + case_id + " ended"}, now));
                }
              }
              return Status::Ok();
            },
            [&](const command::OpenIncident& c) -> Status {
              IncidentRecord incident;
              incident.case_id = case_id;
              incident.activation = c.activation;
              incident.step = c.step;
              incident.message = sealer->SealText(c.message);
              incident.created_at = now;
              auto id = tx.InsertIncident(incident);
              return id ? Status::Ok() : id.error();
            },
            [&](const command::CloseIncident& c) -> Status {
              auto incidents = tx.ListIncidents(case_id);
              if (!incidents) return incidents.error();
              for (const auto& incident : *incidents) {
                if (incident.activation != c.activation ||
                    incident.status != IncidentStatus::kOpen) {
                  continue;
                }
                Status s = tx.ResolveIncident(incident.id, actor, now);
                if (!s.ok()) return s;
              }
              return Status::Ok();
            },
            [&](const command::PauseClock&) -> Status {
              if (!record.clock_paused_at) record.clock_paused_at = now;
              return Status::Ok();
            },
            [&](const command::ResumeClock&) -> Status {
              if (record.clock_paused_at && record.deadline_at) {
                record.deadline_at = ToTimestamp(calendar.ExtendForPause(
                    ToTimePoint(*record.deadline_at), ToTimePoint(*record.clock_paused_at),
                    ToTimePoint(now)));
              }
              record.clock_paused_at.reset();
              return Status::Ok();
            },
            [&](const command::Finish& c) -> Status {
              record.status = c.status;
              record.ended_at = now;
              if (record.clock_paused_at && record.deadline_at) {
                record.deadline_at = ToTimestamp(calendar.ExtendForPause(
                    ToTimePoint(*record.deadline_at), ToTimePoint(*record.clock_paused_at),
                    ToTimePoint(now)));
              }
              record.clock_paused_at.reset();
              if (record.parent_case && record.parent_activation) {
                work.push_back(EventWork(*record.parent_case, "", *record.parent_activation,
                                         event::ChildEnded{*record.parent_activation, case_id,
                                                           c.status, advance.state.data},
                                         now));
              }
              return Status::Ok();
            },
        },
        command);
    if (!status.ok()) return status;
  }

  // The data last: the commands above read it in the clear (a sub-case's end hands it on). It is
  // sealed where it is, not copied, and opened again once written: the state is kept for the
  // case's next transition (states_), with the boxes for its next write.
  std::vector<std::pair<nlohmann::json*, nlohmann::json>> sealed;
  sealer->SealInPlace(advance.state.data, &sealed);
  record.data = workflows::DumpJson(advance.state.data);
  OpenedBoxes boxes;
  for (auto& [at, plain] : sealed) {
    std::string box = std::move(at->get_ref<std::string&>());
    *at = plain;
    if (boxes.size() < Revealer::kMaxMemo) boxes.push_back({std::move(plain), std::move(box)});
  }
  if (Status updated = tx.UpdateCase(record); !updated.ok()) return updated;
  for (auto& note : notes) {
    sealer->SealInPlace(note.details);
    auto event =
        tx.AppendHistoryJson(case_id, actor, note.action, note.step, std::move(note.details), now);
    if (!event) return event.error();
  }
  if (sealer->active()) {
    for (NewWork& item : work) {
      if (item.kind != kWorkInvoke) item.payload = sealer->SealJsonText(item.payload);
    }
  }
  if (!work.empty()) {
    if (Status inserted = tx.InsertWork(work); !inserted.ok()) return inserted;
  }
  if (advance.state.IsFinished()) {
    // (after what an earlier transition of the case in this transaction kept, if any)
    tx.AfterCommit([this, id = case_id] { states_.Forget(id); });
  } else {
    StateCache::Entry entry{record.row_version, std::move(advance.state), std::move(boxes)};
    if (auto head = tx.ChainHead(case_id)) {
      entry.row.record = record;
      entry.row.record.data.clear();  // the state holds them
      entry.row.record.state.clear();
      entry.row.head_seq = head->first;
      entry.row.head_hash = std::move(head->second);
    }
    tx.AfterCommit([this, id = case_id, kept = std::move(entry)]() mutable {
      states_.Put(id, std::move(kept));
    });
  }
  return Status::Ok();
}

Status Runtime::SaveEvidence(StoreTx& tx, const std::string& case_id, const std::string& step,
                             const InvokePayload& payload, const nlohmann::json& result,
                             Timestamp now) {
  if (!payload.reuse_seconds || payload.subject.empty()) return Status::Ok();
  EvidenceRecord evidence;
  evidence.subject = payload.subject;
  evidence.department = payload.department;
  evidence.result = workflows::DumpJson(result);
  if (payload.subject.rfind(kKeyedHashPrefix, 0) == 0) {
    // Verified about a person (a keyed subject): sealed whole under the case's key, so that it
    // goes with the case's erasure.
    auto key = ReadCaseKey(tx, store_.keys(), case_id, KeyUse::kEngine);
    if (!key) return key.error();
    if (!*key) return Status::Ok();  // erased meanwhile: nothing to keep
    std::set<std::string> values;
    workflows::CollectScalars(result, values);
    evidence.result =
        workflows::DumpJson(CaseSealer(case_id, **key, std::move(values)).Seal(result));
  }
  evidence.verified_at = now;
  evidence.case_id = case_id;
  evidence.step = step;
  auto id = tx.InsertEvidence(evidence);
  return id ? Status::Ok() : id.error();
}

Status Runtime::ApplyEvent(const std::string& case_id, const Event& event,
                           const std::string& actor) {
  return ApplyEventChecked(case_id, event, actor, nullptr, nullptr);
}

Status Runtime::ApplyEventChecked(const std::string& case_id, const Event& event,
                                  const std::string& actor, const EventHook& before,
                                  const std::function<Status(StoreTx&)>& after) {
  if (Status bounded = CheckEventData(event); !bounded.ok()) return bounded;
  const Timestamp now = Now();
  return TransactRehearsed(
      [&](StoreTx& tx, ExpressionMemo& memo) {
        auto record = tx.GetCase(case_id);
        if (!record) return record.error();
        return Rehearse(tx, *record, {&event}, actor, now, memo);
      },
      [&](StoreTx& tx, ExpressionMemo& memo) {
        auto record = tx.GetCaseForUpdate(case_id);
        if (!record) {
          if (record.error().code() == ErrorCode::kNotFound) {
            return Status::NotFound(TrFormat("no case {0}; `wf cases` lists them", case_id));
          }
          return record.error();
        }
        if (before) {
          if (Status checked = before(tx, *record); !checked.ok()) return checked;
        }
        if (Status applied = ApplyInTx(tx, *record, event, actor, now, memo); !applied.ok()) {
          return applied;
        }
        return after ? after(tx) : Status::Ok();
      });
}

Status Runtime::Write(const std::function<Status(StoreTx&)>& body) {
  if (guard_ == nullptr) return store_.Transact(body);
  return store_.Transact([&](StoreTx& tx) {
    if (Status s = guard_->Before(tx); !s.ok()) return s;
    Status s = body(tx);
    if (!s.ok()) return s;
    return guard_->After(tx);
  });
}

Status Runtime::CheckTaskPermission(const TaskRecord& task, const std::string& actor) const {
  if (actor.empty()) {
    return Status::NotPermitted(Tr("who is acting? give --as NAME or set WF_ACTOR"));
  }
  if (!deployment_.HasRole(actor, task.role, task.agency)) {
    return Status::NotPermitted(
        TrFormat("{0} does not hold role '{1}' in agency '{2}' (task {3}); the deployment "
                 "config's agency members say who does",
                 actor, task.role, task.agency, std::to_string(task.id)));
  }
  return Status::Ok();
}

namespace {
Result<TaskRecord> FindTask(StoreTx& tx, int64_t task_id) {
  auto task = tx.GetTask(task_id);
  if (!task && task.error().code() == ErrorCode::kNotFound) {
    return Status::NotFound(
        TrFormat("no task {0}; `wf inbox` lists yours", std::to_string(task_id)));
  }
  return task;
}

// A history event about a task that does not move its case (claimed, released).
Status AppendTaskNote(StoreTx& tx, const TaskRecord& task, const std::string& actor,
                      const std::string& action) {
  auto event = tx.AppendHistory(task.case_id, actor, action, task.step,
                                nlohmann::json{{"task", task.id}}.dump(), Now());
  return event ? Status::Ok() : event.error();
}

Status DescribeTaskState(const TaskRecord& task, const std::string& actor) {
  const std::string id = std::to_string(task.id);
  switch (task.status) {
    case TaskStatus::kCompleted:
      return Status::Conflict(task.completed_by ? TrFormat("task {0} is already completed by {1}",
                                                           id, *task.completed_by)
                                                : TrFormat("task {0} is already completed", id));
    case TaskStatus::kCancelled:
      return Status::Conflict(TrFormat("task {0} was cancelled (its case moved on or ended)", id));
    case TaskStatus::kClaimed:
      if (task.assignee && *task.assignee != actor) {
        return Status::Conflict(TrFormat("task {0} is claimed by {1}", id, *task.assignee));
      }
      return Status::Ok();
    case TaskStatus::kOpen:
      return Status::Ok();
  }
  return Status::Ok();
}
}  // namespace

Status Runtime::CompleteTask(int64_t task_id, const std::string& actor,
                             const nlohmann::json& values) {
  // Before anything copies or dumps them: both recurse once per level.
  if (Status bounded = workflows::CheckJson(values); !bounded.ok()) {
    return Status(bounded.code(), TrFormat("the form's values are {0}", bounded.message()));
  }
  const Timestamp now = Now();
  return TransactRehearsed(
      [&](StoreTx& tx, ExpressionMemo& memo) {
        auto task = FindTask(tx, task_id);
        if (!task) return task.error();
        auto record = tx.GetCase(task->case_id);
        if (!record) return record.error();
        Event completed = event::TaskCompleted{task->activation, actor, values};
        return Rehearse(tx, *record, {&completed}, actor, now, memo);
      },
      [&](StoreTx& tx, ExpressionMemo& memo) {
        auto task = FindTask(tx, task_id);
        if (!task) return task.error();
        if (Status s = CheckTaskPermission(*task, actor); !s.ok()) return s;
        if (Status s = DescribeTaskState(*task, actor); !s.ok()) return s;
        auto record = tx.GetCaseForUpdate(task->case_id);
        if (!record) return record.error();
        auto stored = SealTaskValues(tx, *record, task->step, values);
        if (!stored) return stored.error();
        if (Status s = tx.CompleteTask(task_id, actor, *stored, now); !s.ok()) return s;
        return ApplyInTx(tx, *record, event::TaskCompleted{task->activation, actor, values}, actor,
                         now, memo);
      });
}

Status Runtime::ClaimTask(int64_t task_id, const std::string& actor) {
  return Write([&](StoreTx& tx) {
    auto task = FindTask(tx, task_id);
    if (!task) return task.error();
    if (Status s = CheckTaskPermission(*task, actor); !s.ok()) return s;
    if (Status s = DescribeTaskState(*task, actor); !s.ok()) return s;
    auto record = tx.GetCaseForUpdate(task->case_id);
    if (!record) return record.error();
    if (Status s = tx.ClaimTask(task_id, actor); !s.ok()) return s;
    return AppendTaskNote(tx, *task, actor, history_action::kTaskClaimed);
  });
}

Status Runtime::ReleaseTask(int64_t task_id, const std::string& actor) {
  return Write([&](StoreTx& tx) {
    auto task = FindTask(tx, task_id);
    if (!task) return task.error();
    if (task->status != TaskStatus::kClaimed || task->assignee != actor) {
      return Status::Conflict(
          TrFormat("task {0} is not claimed by {1}", std::to_string(task_id), actor));
    }
    auto record = tx.GetCaseForUpdate(task->case_id);
    if (!record) return record.error();
    if (Status s = tx.ReleaseTask(task_id, actor); !s.ok()) return s;
    return AppendTaskNote(tx, *task, actor, history_action::kTaskReleased);
  });
}

Status Runtime::RetryIncident(int64_t incident_id, const std::string& actor) {
  const Timestamp now = Now();
  return TransactRehearsed(
      [&](StoreTx& tx, ExpressionMemo& memo) {
        auto incident = tx.GetIncident(incident_id);
        if (!incident) return incident.error();
        auto record = tx.GetCase(incident->case_id);
        if (!record) return record.error();
        Event retry = event::RetryIncident{incident->activation};
        return Rehearse(tx, *record, {&retry}, actor, now, memo);
      },
      [&](StoreTx& tx, ExpressionMemo& memo) {
        auto incident = tx.GetIncident(incident_id);
        if (!incident) {
          if (incident.error().code() == ErrorCode::kNotFound) {
            return Status::NotFound(
                TrFormat("no incident {0}; `wf show CASE` lists a case's incidents",
                         std::to_string(incident_id)));
          }
          return incident.error();
        }
        if (incident->status != IncidentStatus::kOpen) {
          return Status::Conflict(
              TrFormat("incident {0} is already resolved", std::to_string(incident_id)));
        }
        auto record = tx.GetCaseForUpdate(incident->case_id);
        if (!record) return record.error();
        return ApplyInTx(tx, *record, event::RetryIncident{incident->activation}, actor, now, memo);
      });
}

}  // namespace wf::engine
