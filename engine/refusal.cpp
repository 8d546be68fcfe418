// Refused duplicate applications (DESIGN.md decision 9), kept for the auditor's report. A start
// refused because its dedupe key matches an open case rolls back entirely; the refusal is written
// afterwards, in a transaction of its own, so that the report can count what was turned away.
#include <string>
#include <vector>

#include "engine/runtime.hpp"

namespace wf::engine {

Status Runtime::RecordRefusals(const std::string& procedure_name,
                               const std::vector<const nlohmann::json*>& data,
                               const std::string& actor) {
  if (data.empty()) return Status::Ok();
  return store_.Transact([&](StoreTx& tx) -> Status {
    auto record = tx.LatestProcedure(procedure_name);
    if (!record) return record.error();
    auto procedure = procedures_.Put(*record);
    if (!procedure) return procedure.error();
    // A conflict of a procedure without a dedupe key is no duplicate application.
    if (!(*procedure)->dedupe) return Status::Ok();
    const Timestamp now = Now();
    for (const nlohmann::json* one : data) {
      auto key = (*procedure)->dedupe->expression.Evaluate(*one);
      if (!key) continue;  // the start would have failed as invalid, not as a duplicate
      RefusalRecord refusal;
      refusal.procedure = procedure_name;
      refusal.dedupe_key = key->is_string() ? key->get<std::string>() : key->dump();
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
  return "(the refusal could not be recorded for the report: " + failure.message() + ")";
}

}  // namespace wf::engine
