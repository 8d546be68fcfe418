#pragma once

// The auditor's report (`wf report`): where procedures lose time against their statutory limits.
//
// ReportBuilder is a pure aggregation: it is fed procedure definitions, then cases each followed
// by its history events in order, then refused duplicates, and computes the figures. It reads no
// clock and touches no database, so it is tested with hand-made rows. CollectReport drives it
// from a Store, streaming cases and history a page at a time: memory holds the figures (one
// number per finished case for the percentiles, a bounded list of overdue cases) and the state of
// the one case being read, never the history as a whole.
//
// How time is measured: by the case read model's rules (engine/case_view.hpp), the same that
// `wf cases`, `show` and `history` answer with. Each working day on the calendar counts as 1.0,
// weekends and holidays as nothing (engine/calendar.hpp's "working time").
//  * A case's processing time (CaseTimes) runs from its start to its end, less the working time
//    the statutory clock stood still. Only cases that ended other than cancelled count.
//  * On time: the case ended at or before its statutory deadline (the deadline as the runtime
//    keeps it, extended by every pause). Overdue (IsOverdue): an open case whose deadline is
//    before the statutory clock's reading (frozen while the clock is paused).
//  * A step's time is its holds (HoldTracker): from `step.entered` to the event that ends that
//    activation (a result, a completed task, a received signal or a department's callback after
//    HTTP 202, a timeout, a sub-case's end, the join of a parallel step's branches, or the
//    case's end), on the holder's calendar when it is an agency, else the owning agency's;
//    decisions and ends take no time. An overdue case waits at its CurrentSteps.
//  * Medians average the two middle values of an even count; the 90th percentile is the nearest
//    rank (the smallest value with at least 90 % of the values at or below it).

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "engine/calendar.hpp"
#include "engine/config.hpp"
#include "engine/history.hpp"
#include "engine/store.hpp"
#include "workflows/procedure.hpp"

namespace wf::engine {

// Summary of a set of durations, in working days. Empty sets leave the values unset.
struct DurationSummary {
  std::int64_t count = 0;
  std::optional<double> mean;
  std::optional<double> median;
  std::optional<double> p90;
  std::optional<double> max;
};

// The median (mean of the two middle values for an even count) and the nearest-rank 90th
// percentile of `values`, which it sorts.
DurationSummary Summarize(std::vector<double>& values);

// One edge of a procedure's process map.
struct MapEdge {
  std::string to;
  std::string kind;  // "next", "branch", "on_error", "on_timeout"
};

// Figures of one step of a procedure (over every deployed version that has it).
struct StepFigures {
  std::string id;
  std::string kind;   // workflows::StepKindName
  std::string label;  // the task's title, the department, the signal or sub-procedure
  std::string who;    // "role @ agency" for tasks, the department for adapter steps
  std::vector<MapEdge> edges;
  std::int64_t visits = 0;                 // activations that ended
  DurationSummary time;                    // of the visits that ended, in working days
  std::int64_t waiting_now = 0;            // activations still open in open cases
  std::optional<double> longest_wait_now;  // working days the oldest of those has waited
  std::int64_t calls = 0;                  // adapter steps: answers from the department
  std::int64_t reused = 0;                 // adapter steps: evidence reused instead of a call
};

// An open case past its statutory deadline.
struct OverdueCase {
  std::string id;
  Timestamp started_at{};
  Timestamp deadline_at{};
  double overdue_days = 0;         // working days past the deadline
  std::vector<std::string> steps;  // where it stands (steps with an open activation)
};

// Figures of one procedure (by name, every version), owned by its agency.
struct ProcedureFigures {
  std::string name;
  std::string title;
  std::string agency;
  std::string limit;                 // the statutory limit as written; empty: none
  std::optional<double> limit_days;  // the limit when it is in working days
  std::int64_t cases = 0;            // started
  std::int64_t open = 0;
  std::int64_t finished = 0;  // ended, other than cancelled
  std::int64_t cancelled = 0;
  std::map<std::string, std::int64_t> outcomes;  // ended cases by status
  DurationSummary processing;                    // finished cases, working days, pauses excluded
  std::int64_t with_deadline = 0;                // finished cases that had a statutory deadline
  std::int64_t on_time = 0;                      // ... that ended by it
  std::optional<double> on_time_rate;            // on_time / with_deadline
  std::int64_t late = 0;                         // finished after the deadline
  std::int64_t overdue = 0;                      // open and past the deadline
  std::vector<OverdueCase> overdue_cases;        // the most overdue first, at most kMaxListed
  std::int64_t calls = 0;                        // department answers to steps that may reuse
  std::int64_t reused = 0;                       // evidence reused instead of collected again
  std::int64_t refused_duplicates = 0;           // applications refused as duplicates
  std::string start;                             // the first step
  std::vector<StepFigures> steps;  // in the newest version's order, then retired steps
};

// Figures of one owning agency over its procedures.
struct AgencyFigures {
  std::string agency;
  std::string calendar;
  std::int64_t procedures = 0;
  std::int64_t cases = 0;
  std::int64_t open = 0;
  std::int64_t finished = 0;
  DurationSummary processing;
  std::int64_t with_deadline = 0;
  std::int64_t on_time = 0;
  std::optional<double> on_time_rate;
  std::int64_t overdue = 0;
  std::int64_t reused = 0;
  std::int64_t refused_duplicates = 0;
};

// A step where cases wait longest, across procedures.
struct SlowStep {
  std::string procedure;
  std::string step;
  std::string who;
  std::int64_t visits = 0;
  double mean_days = 0;
  std::optional<double> max_days;
};

struct Report {
  Timestamp generated_at{};
  std::int64_t cases = 0;
  std::int64_t events = 0;
  std::vector<ProcedureFigures> procedures;  // by name
  std::vector<AgencyFigures> agencies;       // by name
  std::vector<SlowStep> slowest_steps;       // by mean time, longest first, at most kMaxListed
  std::int64_t refused_duplicates = 0;
  std::int64_t reused = 0;
};

// Lists in a report (overdue cases per procedure, slowest steps) keep at most this many rows.
inline constexpr size_t kMaxListed = 20;

// Computes a Report from streamed rows. Not thread-safe; one report per builder.
class ReportBuilder {
 public:
  // `deployment` gives each agency's calendar; `now` is the report's time (open cases are
  // measured up to it). `deployment` must outlive the builder.
  ReportBuilder(const Deployment& deployment, Timestamp now);
  ~ReportBuilder();
  ReportBuilder(const ReportBuilder&) = delete;
  ReportBuilder& operator=(const ReportBuilder&) = delete;

  // A deployed version of a procedure. Feed every version before the cases; the highest version
  // of a name gives its title, limit and map. The builder keeps what it needs (no pointer).
  void AddProcedure(const workflows::Procedure& procedure);
  // Starts a case; its events follow through AddEvent, then EndCase. A case whose procedure was
  // never added is counted with what the rows say (no map, no pauses).
  void BeginCase(const CaseRecord& record);
  // The next event of the current case, in seq order. Events of no current case are ignored.
  void AddEvent(const HistoryEvent& event);
  void EndCase();
  void AddRefusal(const RefusalRecord& refusal);
  // The figures; the builder is spent afterwards.
  Report Finish();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// Reads every procedure, case, history event and refusal of `store` into a ReportBuilder, a page
// at a time (cases and history are merged by case id). Errors are the store's; a stored
// procedure that no longer loads is kInternal naming it.
Result<Report> CollectReport(Store& store, const Deployment& deployment, Timestamp now);

}  // namespace wf::engine
