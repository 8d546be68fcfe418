#pragma once

// One case in detail, as `wf show` prints it and `GET /v1/cases/{id}` answers it: the read
// model (case_view.hpp) with the case's incidents and sub-cases, where each token stands in
// words, and the object of `wf show --json`. Pure over what LoadCaseDetail reads.

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/case_view.hpp"
#include "engine/config.hpp"
#include "engine/store.hpp"

namespace wf::engine {

// Where one token of a case stands, for people and for JSON.
struct Position {
  std::string step;
  std::string kind;  // the step's kind, when the procedure is at hand
  std::string waiting;
  int64_t activation = 0;
  std::string detail;  // in words, naming the command that moves it on (English: JSON's)
  std::string text;    // the same words in the reader's language, for people
  std::string signal;  // the signal that wakes it, for waits and 202-parked steps
};

// A case with everything `show` says about it.
struct CaseDetail {
  CaseView view;
  std::vector<IncidentRecord> incidents;
  std::vector<CaseRecord> children;
  std::vector<Position> positions;  // one per token
};

// Reads case `id` through `tx`: kNotFound when there is none, or the store's errors.
// With `keys`, personal values are opened as in LoadCaseView (incident messages too).
Result<CaseDetail> LoadCaseDetail(StoreTx& tx, ProcedureCache& procedures, const std::string& id,
                                  KeySource* keys = nullptr);

// The object of `wf show --json` (DESIGN.md, CLI contract): id, procedure, version, status,
// data, tasks, incidents, deadline (read on `deployment`'s calendar of the case's agency at
// `now`) and more.
nlohmann::json CaseDetailJson(const CaseDetail& detail, const Deployment& deployment,
                              Timestamp now);

// A task and an incident as `show --json`, `inbox --json` and `incidents --json` write them.
nlohmann::json TaskJson(const TaskRecord& task);
nlohmann::json IncidentJson(const IncidentRecord& incident);

// "role R of AGENCY (task N, claimed by X)".
std::string TaskWho(const TaskRecord& task);

// A stored status (a case's, a task's or an incident's: "open", "claimed", "completed", ...) for
// people, in the reader's language; an `end:` outcome wf does not know stays as written.
std::string StatusText(const std::string& status);
// A step's kind ("task", "adapter", ...) for people, in the reader's language.
std::string StepKindText(const std::string& kind);

}  // namespace wf::engine
