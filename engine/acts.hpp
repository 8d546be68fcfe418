#pragma once

// Clerks' acts on PostgreSQL (DESIGN.md "Who may act"). A login without wf_engine writes no
// table: `wf start/claim/release/complete/signal/cancel` submit an act through the database
// function wf_act, which checks membership in the stored configuration. An engine applies the
// act with the same runtime calls the CLI would have made, each write transaction locking the act
// row first and marking it applied last, so that an act is applied at most once whatever
// crashes, and the history it writes records the clerk's login. What became of the act (done, or
// refused with an exit code and a message) is written back for the waiting `wf`.

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "engine/config.hpp"
#include "engine/runtime.hpp"
#include "engine/store.hpp"
#include "workflows/status.hpp"

namespace wf::engine {

// A department's result reaches an adapter step only from the engine or an operator holding
// wf_engine: an act (a login without it, `login`) delivers only a signal `name` that a `wait:`
// step of the case's procedure declares. kNotPermitted otherwise; kNotFound without the case.
Status CheckDeclaredSignal(StoreTx& tx, ProcedureCache& procedures, const std::string& case_id,
                           const std::string& name, const std::string& login);

// The members and calendars of `stored` replace those of `deployment` (departments stay).
// kInternal when the stored text no longer loads.
Status OverlayStoredConfig(Deployment& deployment, const StoredConfig& stored);

// Applies pending acts, on one thread. Keeps a runtime of its own whose deployment follows the
// newest stored configuration, so that `wf config apply` counts at once.
class ActApplier {
 public:
  // `store`, `deployment` (its departments) and `evaluator` must outlive the applier.
  ActApplier(Store& store, const Deployment& deployment, workflows::Evaluator& evaluator);
  ~ActApplier();
  ActApplier(const ActApplier&) = delete;
  ActApplier& operator=(const ActApplier&) = delete;

  // Applies up to `limit` pending acts, oldest first; returns how many it finished. The store's
  // errors (kUnavailable: retry later; the acts stay pending).
  Result<int> ApplyPending(int limit);

 private:
  // Every kSweepEvery: acts applied that long ago whose outcome their engine never recorded
  // (it died between the two commits) become done.
  Status FinishStale();
  Status Refresh();
  // Carries out `act` through the runtime; `result` gets what it produced.
  Status Carry(const ActRecord& act, std::string* result);

  Store& store_;
  const Deployment& base_;
  workflows::Evaluator& evaluator_;
  static constexpr std::chrono::seconds kSweepEvery{60};
  std::optional<std::chrono::steady_clock::time_point> swept_;
  int config_version_ = -1;
  std::unique_ptr<Deployment> deployment_;
  std::unique_ptr<Runtime> runtime_;
};

}  // namespace wf::engine
