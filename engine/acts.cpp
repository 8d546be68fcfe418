#include "engine/acts.hpp"

#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>
#include <string>
#include <utility>

#include "engine/machine.hpp"
#include "workflows/json_limits.hpp"

namespace wf::engine {

namespace {

using nlohmann::json;

// Locks the act's row and names the clerk's login first in every write transaction of the act,
// and marks the act applied last: the act's effects and "applied" commit together or not at all.
class ActGuard : public WriteGuard {
 public:
  explicit ActGuard(const ActRecord& act) : act_(act) {}
  Status Before(StoreTx& tx) override { return tx.BeginAct(act_.id, act_.login); }
  Status After(StoreTx& tx) override { return tx.MarkActApplied(act_.id, Now()); }

 private:
  const ActRecord& act_;
};

// The payload's member `key` (an object when `object`), or an error naming the act.
Result<json> Member(const json& payload, const char* key, const ActRecord& act) {
  if (!payload.is_object() || !payload.contains(key)) {
    return Status::Invalid("act " + std::to_string(act.id) + " (" + act.kind + ") has no '" + key +
                           "'");
  }
  return payload[key];
}

}  // namespace

Status CheckDeclaredSignal(StoreTx& tx, ProcedureCache& procedures, const std::string& case_id,
                           const std::string& name, const std::string& login) {
  auto record = tx.GetCase(case_id);
  if (!record) {
    if (record.error().code() == ErrorCode::kNotFound) {
      return Status::NotFound("no case " + case_id + "; `wf cases` lists them");
    }
    return record.error();
  }
  auto procedure = procedures.Get(tx, record->procedure, record->version);
  if (!procedure) return procedure.error();
  for (const workflows::Step& step : (*procedure)->steps) {
    if (step.kind == workflows::StepKind::kWait && step.signal == name) return Status::Ok();
  }
  return Status::NotPermitted("signal '" + name + "' is not declared by a `wait:` step of " +
                              record->procedure + "; a department's result reaches a step " +
                              "only from the engine or an operator holding wf_engine (login " +
                              login + " does not)");
}

Status OverlayStoredConfig(Deployment& deployment, const StoredConfig& stored) {
  auto parsed =
      LoadDeploymentText(stored.source, "stored configuration v" + std::to_string(stored.version));
  if (!parsed) return Status::Internal(parsed.error().message());
  deployment.agencies = std::move(parsed->agencies);
  deployment.calendars = std::move(parsed->calendars);
  return Status::Ok();
}

ActApplier::ActApplier(Store& store, const Deployment& deployment, workflows::Evaluator& evaluator)
    : store_(store), base_(deployment), evaluator_(evaluator) {}

ActApplier::~ActApplier() = default;

Status ActApplier::Refresh() {
  std::optional<StoredConfig> stored;
  Status read = store_.Read([&](StoreTx& tx) {
    auto latest = tx.LatestConfig();
    if (!latest) return latest.error();
    stored = std::move(*latest);
    return Status::Ok();
  });
  if (!read.ok()) return read;
  const int version = stored ? stored->version : 0;
  if (runtime_ && version == config_version_) return Status::Ok();
  auto deployment = std::make_unique<Deployment>(base_);
  if (stored) {
    if (Status s = OverlayStoredConfig(*deployment, *stored); !s.ok()) return s;
  }
  runtime_.reset();
  deployment_ = std::move(deployment);
  runtime_ = std::make_unique<Runtime>(store_, *deployment_, evaluator_);
  config_version_ = version;
  return Status::Ok();
}

Status ActApplier::Carry(const ActRecord& act, std::string* result) {
  auto payload = workflows::ParseJsonWithin(act.payload);
  if (!payload)
    return Status::Invalid("act " + std::to_string(act.id) + ": " + payload.error().message());
  Runtime& runtime = *runtime_;
  if (act.kind == "start") {
    auto data = Member(*payload, "data", act);
    if (!data) return data.error();
    auto started = runtime.StartCase(act.procedure, *data, act.actor);
    if (!started) return started.error();
    *result =
        json{{"id", started->id}, {"procedure", started->procedure}, {"version", started->version}}
            .dump();
    return Status::Ok();
  }
  if (act.kind == "claim" || act.kind == "release" || act.kind == "complete") {
    if (!act.task_id) return Status::Invalid("act " + std::to_string(act.id) + " names no task");
    if (act.kind == "claim") return runtime.ClaimTask(*act.task_id, act.actor);
    if (act.kind == "release") return runtime.ReleaseTask(*act.task_id, act.actor);
    auto values = Member(*payload, "values", act);
    if (!values) return values.error();
    return runtime.CompleteTask(*act.task_id, act.actor, *values);
  }
  if (act.kind == "signal") {
    auto name = Member(*payload, "name", act);
    if (!name) return name.error();
    if (!name->is_string()) return Status::Invalid("act " + std::to_string(act.id) + ": bad name");
    Status declared = store_.Read([&](StoreTx& tx) {
      return CheckDeclaredSignal(tx, runtime.procedures(), act.case_id, name->get<std::string>(),
                                 act.login);
    });
    if (!declared.ok()) return declared;
    json data = payload->value("data", json::object());
    return runtime.ApplyEvent(act.case_id, event::SignalReceived{name->get<std::string>(), data},
                              act.actor);
  }
  if (act.kind == "cancel") {
    auto reason = Member(*payload, "reason", act);
    if (!reason) return reason.error();
    if (!reason->is_string()) {
      return Status::Invalid("act " + std::to_string(act.id) + ": bad reason");
    }
    return runtime.ApplyEvent(act.case_id, event::Cancel{reason->get<std::string>()}, act.actor);
  }
  return Status::Invalid("unknown act '" + act.kind + "'");
}

Status ActApplier::FinishStale() {
  const auto now = std::chrono::steady_clock::now();
  if (swept_ && now - *swept_ < kSweepEvery) return Status::Ok();
  swept_ = now;
  const Timestamp at = Now();
  int finished = 0;
  Status swept = store_.Transact([&](StoreTx& tx) {
    auto count = tx.FinishStaleActs(at - kSweepEvery, at);
    if (!count) return count.error();
    finished = *count;
    return Status::Ok();
  });
  if (finished > 0)
    spdlog::warn(
        "{} acts were applied by an engine that stopped before recording"
        " their outcome; marked done",
        finished);
  return swept;
}

Result<int> ActApplier::ApplyPending(int limit) {
  if (Status s = FinishStale(); !s.ok()) return s;
  std::vector<ActRecord> acts;
  Status read = store_.Read([&](StoreTx& tx) {
    auto pending = tx.PendingActs(limit);
    if (!pending) return pending.error();
    acts = std::move(*pending);
    return Status::Ok();
  });
  if (!read.ok()) return read;
  if (acts.empty()) return 0;
  if (Status s = Refresh(); !s.ok()) return s;
  int finished = 0;
  for (const ActRecord& act : acts) {
    ActGuard guard(act);
    runtime_->SetWriteGuard(&guard);
    std::string result;
    Status status = Carry(act, &result);
    runtime_->SetWriteGuard(nullptr);
    // The database was away: the act stays pending (nothing of it committed unmarked).
    if (status.code() == ErrorCode::kUnavailable || status.code() == ErrorCode::kTimeout) {
      return status;
    }
    ActRecord outcome = act;
    outcome.status = status.ok() ? "done" : "refused";
    outcome.exit_code = status.ok() ? 0 : ExitCodeOf(status.code());
    outcome.message = status.ok() ? std::string() : status.message();
    outcome.result = result;
    Status finished_status =
        store_.Transact([&](StoreTx& tx) { return tx.FinishAct(outcome, Now()); });
    if (!finished_status.ok()) return finished_status;
    spdlog::info("act {} ({} by {}): {}", act.id, act.kind, act.login,
                 status.ok() ? std::string("done") : "refused: " + status.message());
    ++finished;
  }
  return finished;
}

}  // namespace wf::engine
