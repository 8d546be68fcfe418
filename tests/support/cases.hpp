#pragma once

// Reading a store the way engine tests check it: procedures from YAML text, and a case's status,
// history, incidents and work. Each helper REQUIREs success, so a test stops at the first
// failure with the store's message.

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "engine/history.hpp"
#include "engine/scheduler.hpp"
#include "engine/store.hpp"
#include "workflows/procedure.hpp"

namespace wf::testing {

// The procedure in `yaml`, parsed once per process (keyed by the text); REQUIREs it loads.
const workflows::Procedure& ProcedureFromYaml(const char* yaml);

// Inserts a bare open case of `procedure` v1 (empty data and state, no history) for tests of
// the store's tables; its id.
std::string InsertBareCase(engine::Store& store, const std::string& procedure = "p");
// A case's status ("open", "completed", ...).
std::string CaseStatus(engine::Store& store, const std::string& case_id);
// A case's history, by seq.
std::vector<engine::HistoryEvent> CaseHistory(engine::Store& store, const std::string& case_id);
// A case's incidents, open and resolved.
std::vector<engine::IncidentRecord> CaseIncidents(engine::Store& store, const std::string& case_id);
// A case's work rows (finished rows are deleted, so these are the unfinished ones).
std::vector<engine::WorkItem> CaseWork(engine::Store& store, const std::string& case_id);
// A case's tasks, open and done.
std::vector<engine::TaskRecord> CaseTasks(engine::Store& store, const std::string& case_id);
// A case's row as stored.
engine::CaseRecord CaseRow(engine::Store& store, const std::string& case_id);

// Options for an engine that runs until nothing is due: `until_idle`, a 5 s idle wait (long
// enough for a loaded machine), 64 calls in flight.
engine::EngineOptions UntilIdleOptions();

// Runs `engine` until it is idle. Past `limit` the engine is stopped and the test FAILs: a poison
// that stalls the engine shows as a failure, not as a suite that never ends. What Run returned.
Status RunWithDeadline(engine::Engine& engine,
                       std::chrono::seconds limit = std::chrono::seconds(120));

struct HistorySummary {
  std::int64_t cases = 0;
  std::int64_t events = 0;
};
// Recomputes the history chain of one case, or of every case, as `wf audit verify` does without an
// anchor: kHistoryBroken for the first event that fails; kNotFound when `case_id` has no history.
Result<HistorySummary> VerifyHistory(engine::Store& store,
                                     const std::optional<std::string>& case_id = std::nullopt);

// A valid hash chain of `length` events of case `case_id` (seq 1..length), built in memory with
// engine::SealEvent: the first started by a person, the rest by the engine. At most 10 events
// (their times are one second apart within one minute).
std::vector<engine::HistoryEvent> SealedChain(const std::string& case_id, int length);

}  // namespace wf::testing
