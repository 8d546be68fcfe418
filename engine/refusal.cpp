// Refused duplicate applications (DESIGN.md decision 9), kept for the auditor's report. A start
// refused because its dedupe key matches an open case rolls back entirely; the refusal is written
// afterwards, in a transaction of its own, so that the report can count what was turned away.
#include <string>
#include <vector>

#include "engine/runtime.hpp"
#include "workflows/i18n.hpp"

namespace wf::engine {

Status Runtime::RecordRefusals(const std::string& procedure_name,
                               const std::vector<const nlohmann::json*>& data,
                               const std::string& actor) {
  if (data.empty()) return Status::Ok();
  const workflows::Procedure* procedure = nullptr;
  Status read = store_.Read([&](StoreTx& tx) -> Status {
    auto record = tx.LatestProcedure(procedure_name);
    if (!record) return record.error();
    auto loaded = procedures_.Put(*record);
    if (!loaded) return loaded.error();
    procedure = *loaded;
    return Status::Ok();
  });
  if (!read.ok()) return read;
  // A conflict of a procedure without a dedupe key is no duplicate application.
  if (!procedure->dedupe) return Status::Ok();
  // The keys are evaluated before the transaction: no expression runs under its locks.
  std::vector<std::string> keys;
  for (const nlohmann::json* one : data) {
    auto key = evaluator_.Evaluate(procedure->dedupe->expression, *one);
    // Without a key the start would have failed as invalid, not as a duplicate.
    if (key) {
      keys.push_back(StoredDedupeKey(*procedure, *one,
                                     key->is_string() ? key->get<std::string>() : key->dump()));
    }
  }
  if (keys.empty()) return Status::Ok();
  return Write([&](StoreTx& tx) -> Status {
    const Timestamp now = Now();
    for (const std::string& key : keys) {
      RefusalRecord refusal;
      refusal.procedure = procedure_name;
      refusal.dedupe_key = key;
      refusal.actor = actor;
      refusal.refused_at = now;
      auto existing = tx.FindOpenCaseByDedupe(procedure_name, refusal.dedupe_key);
      if (!existing) return existing.error();
      // No open case any more (it ended meanwhile): the start was refused all the same.
      if (*existing) refusal.open_case = (*existing)->id;
      auto id = tx.InsertRefusal(refusal);
      if (!id) return id.error();
    }
    return Status::Ok();
  });
}

Status Runtime::WithRefusal(const Status& refused, const std::string& procedure_name,
                            const nlohmann::json& data, const std::string& actor) {
  Status recorded = RecordRefusals(procedure_name, {&data}, actor);
  if (recorded.ok()) return refused;
  return Status(refused.code(), refused.message() + " " + RefusalNotRecorded(recorded));
}

std::string RefusalNotRecorded(const Status& failure) {
  return TrFormat("(the refusal could not be recorded for the report: {0})", failure.message());
}

}  // namespace wf::engine
