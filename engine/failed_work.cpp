// The scheduler's last net (engine/failed_work.hpp): failing the step of work that cannot be
// carried out or committed.
#include "engine/failed_work.hpp"

#include <spdlog/spdlog.h>

#include <exception>
#include <nlohmann/json.hpp>
#include <vector>

namespace wf::engine {

namespace {

constexpr size_t kMaxFailureText = 1000;

}  // namespace

std::string FailureText(const std::string& text) {
  std::string cut = text.size() > kMaxFailureText ? text.substr(0, kMaxFailureText) + "..." : text;
  // A JSON string dumped with invalid bytes replaced, read back: valid UTF-8 by construction.
  std::string quoted =
      nlohmann::json(cut).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return nlohmann::json::parse(quoted).get<std::string>();
}

Status FailWork(Runtime& runtime, const WorkItem& item, const std::string& owner,
                const std::string& message) {
  const std::string text = FailureText(message);
  const Event event = event::WorkFailed{item.activation, text};
  const std::vector<WorkFence> fence{{item.case_id, item.id, item.attempt}};
  const Timestamp now = Now();
  try {
    // The rehearsal: on_error leads into another step, whose expressions must not run under the
    // case's lock. One round, then the transaction evaluates what it misses (a rare path).
    ExpressionMemo memo(runtime.evaluator());
    memo.Record();
    Status rehearsed = runtime.store().Read([&](StoreTx& tx) {
      auto records = tx.GetCases({item.case_id});
      if (!records) return records.error();
      for (const CaseRecord& record : *records) {
        Status s = runtime.Rehearse(tx, record, {&event}, kEngineActor, now, memo);
        if (!s.ok()) return s;
      }
      return Status::Ok();
    });
    if (rehearsed.code() == ErrorCode::kUnavailable) return rehearsed;
    memo.Replay(true);
    Status applied = runtime.store().Transact([&](StoreTx& tx) {
      std::vector<CaseRecord> locked;
      auto fenced = tx.CompleteWorkBatch(fence, owner, &locked);
      if (!fenced) return fenced.error();
      if (!fenced->front() || locked.empty()) return Status::Ok();  // no longer ours, or no case
      Status s = runtime.ApplyInTx(tx, locked.front(), event, kEngineActor, now, memo);
      if (memo.unavailable()) return *memo.unavailable();
      if (s.code() == ErrorCode::kConflict) return Status::Ok();  // the step was left meanwhile
      return s;
    });
    if (applied.ok() || applied.code() == ErrorCode::kUnavailable) return applied;
    spdlog::error("case {}: could not fail step '{}' ({}); recording an incident beside it",
                  item.case_id, item.step, applied.message());
  } catch (const std::exception& e) {
    spdlog::error("case {}: could not fail step '{}' ({}); recording an incident beside it",
                  item.case_id, item.step, e.what());
  }
  // The case cannot be changed: keep the row from coming back and tell an operator.
  return runtime.store().Transact([&](StoreTx& tx) {
    auto fenced = tx.CompleteWorkBatch(fence, owner);
    if (!fenced) return fenced.error();
    if (!fenced->front()) return Status::Ok();
    IncidentRecord incident;
    incident.case_id = item.case_id;
    incident.activation = item.activation;
    incident.step = item.step;
    incident.message = text + " (the case itself could not be changed)";
    incident.created_at = now;
    auto id = tx.InsertIncident(incident);
    return id ? Status::Ok() : id.error();
  });
}

}  // namespace wf::engine
