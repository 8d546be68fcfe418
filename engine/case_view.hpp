#pragma once

// The read model of a case: the one place that says what a case's status, statutory clock,
// current steps, time held and visibility are. `wf cases`, `show`, `history`, `inbox` and
// `report` all answer through it, so the same case gives the same answers everywhere.
//
// Everything here is pure: it reads store rows (CaseRecord, TaskRecord, HistoryEvent), a
// procedure's steps and a calendar, never a clock, a database or a file; `now` is a parameter.
// All of it is safe to call from many threads on distinct objects.
//
// The rules (each has one function below; change a rule there and every command follows):
//
//  * Overdue (IsOverdue). A case is overdue when it is open, has a statutory deadline, and the
//    deadline is before the statutory clock's reading (ClockReading): `now` while the clock runs,
//    the moment it stopped while it is paused (a `wait` step with `pauses_deadline: true`). So a
//    paused case stays exactly as overdue, or as early, as it was when the clock stopped: a case
//    already past its deadline when it paused is overdue throughout the pause, one that paused
//    in time is not overdue however long the pause lasts (on resuming the runtime extends the
//    deadline by the paused working time: Calendar::ExtendForPause). An ended case is never
//    overdue; it is late when it ended after its deadline (the deadline as the runtime keeps it,
//    extended by every pause). The store's `CaseFilter::overdue_at` SQL is the same rule
//    (`deadline_at < :now AND (clock_paused_at IS NULL OR deadline_at < clock_paused_at)`).
//
//  * Processing time (CaseTimes). From the filing to the end of the case (or `now`), in working
//    time on the owning agency's calendar, less the working time the statutory clock stood still.
//    Within the limit: ended and not late, or open and not overdue.
//
//  * Time held (HoldTracker, HeldWorkingDays). A step activation is held from its `step.entered`
//    to the first event that ends that activation: a department's answer (`step.succeeded`,
//    `step.reused`, `step.error_handled` after a failure), a completed task, a received signal
//    (a wait's, or a department's callback after HTTP 202), a timeout, a sub-case's end, the
//    join of a parallel step's last branch, or the case's end. `step.accepted` (HTTP 202) does
//    NOT end the hold: the department accepted the call and still owes the answer, so it still
//    holds the step until its callback arrives; the hold records when it accepted. Entering the
//    same activation again (an incident retried) continues the hold. Decisions and end steps
//    take no time. Who holds a step (HolderOf): a task the agency of its role, an adapter step
//    its department, a wait the applicant, a call_procedure step the sub-case; a parallel step
//    holds nothing itself (its branches do). A hold is measured on the holder's own calendar
//    when the holder is an agency of the deployment, else on the owning agency's.
//
//  * Where a case stands (CurrentSteps). The steps of its active tokens (or, from history, its
//    open activations) in order, without duplicates, leaving out parallel steps that only wait
//    for their branches when some branch is listed.
//
//  * Visibility (Viewer). An actor's roles come from the deployment config's agency members.
//    A task is in the actor's inbox when it is open or claimed and the actor holds its role in
//    its agency: exactly the tasks the runtime lets them claim and complete. A case is the
//    actor's (`cases --mine`) when they started it or it has a task in their inbox.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "engine/calendar.hpp"
#include "engine/config.hpp"
#include "engine/history.hpp"
#include "engine/machine.hpp"
#include "engine/store.hpp"
#include "workflows/procedure.hpp"

namespace wf::engine {

class ProcedureCache;  // engine/runtime.hpp

// ---------------------------------------------------------------------------------------------
// Status and the statutory clock

// True when `record` has not ended.
bool IsOpen(const CaseRecord& record);

// What the statutory clock of `record` reads at `now`: `now` while it runs; the moment it stopped
// while it is paused (never later than `now`); the end (ended_at, else updated_at) once ended.
Timestamp ClockReading(const CaseRecord& record, Timestamp now);

// Open, with a deadline, and the deadline before ClockReading(record, now).
bool IsOverdue(const CaseRecord& record, Timestamp now);

// The statutory clock of one case as every command shows it.
struct CaseClock {
  bool open = false;
  std::optional<Timestamp> deadline;      // as the runtime keeps it; none without a limit
  std::optional<Timestamp> paused_since;  // set while the clock is paused
  Timestamp reading{};                    // ClockReading
  bool overdue = false;                   // IsOverdue
  bool late = false;                      // ended after its deadline
  // Working time from `reading` to the deadline on the owning agency's calendar; negative once
  // past it. Unset without a deadline.
  std::optional<double> working_days_left;
  double overdue_working_days = 0;  // how far past the deadline an overdue case is; else 0
};

// Reads the clock of `record` at `now`; `calendar` is the owning agency's.
CaseClock ReadClock(const CaseRecord& record, const Calendar& calendar, Timestamp now);

// ---------------------------------------------------------------------------------------------
// Where a case stands

// A step activation that has not ended.
struct OpenStep {
  std::string step;
  std::int64_t activation = 0;
  bool joins_branches = false;  // a parallel step waiting for its branches
};

// The case's stored state, or nullopt when it does not parse.
std::optional<CaseState> ParseCaseState(const std::string& state_json);

// The active tokens of `state`, in token order.
std::vector<OpenStep> OpenStepsOf(const CaseState& state);

// The rule above over `open`: step ids in order, without duplicates, parallel steps left out
// when some other step is listed.
std::vector<std::string> CurrentSteps(const std::vector<OpenStep>& open);
// The same from a case's stored state; empty for an ended case or a state that does not parse.
std::vector<std::string> CurrentSteps(const std::string& state_json);

// The roles of the open and claimed tasks among `tasks`, in order, without duplicates.
std::vector<std::string> RolesAtWork(const std::vector<TaskRecord>& tasks);

// True for an open or claimed task.
bool IsTaskOpen(const TaskRecord& task);

// A task is overdue when it is open or claimed and its own due time (`deadline:` of a task step,
// on its agency's calendar, not paused by the statutory clock) is before `now`.
bool IsTaskOverdue(const TaskRecord& task, Timestamp now);

// ---------------------------------------------------------------------------------------------
// Time held

// What the read model needs of one step of a procedure version.
struct StepFacts {
  workflows::StepKind kind = workflows::StepKind::kDecision;
  std::string holder;                        // HolderOf; empty: holds nothing itself
  bool pauses_clock = false;                 // a wait with `pauses_deadline: true`
  std::optional<workflows::Duration> limit;  // a task's own `deadline:`
};
using StepTable = std::map<std::string, StepFacts>;

// Who holds `step` of `procedure` (see the rules above); empty for parallel, decision and end
// steps and for a step the procedure does not have.
std::string HolderOf(const workflows::Procedure& procedure, const workflows::Step& step);
// The facts of every step of `procedure`.
StepTable StepTableOf(const workflows::Procedure& procedure);

// One stretch a step activation was held, from its `step.entered` to the event that ended it.
struct Hold {
  std::string step;
  std::int64_t activation = 0;
  std::int64_t seq = 0;  // of the `step.entered` that opened it
  std::string kind;      // the step's kind ("task", "adapter", ...); empty when unknown
  std::string holder;    // HolderOf; empty for steps that hold nothing themselves
  bool pauses_clock = false;
  Timestamp from{};
  std::optional<Timestamp> to;           // unset: still held
  std::optional<Timestamp> accepted_at;  // the department answered HTTP 202 at
  std::optional<workflows::Duration> limit;
};

// A stretch during which the statutory clock stood still.
struct Pause {
  Timestamp from{};
  std::optional<Timestamp> to;  // unset: still paused
};

// Follows one case's history, event by event, into holds and pauses. Memory: the open holds and
// the pauses, plus the ended holds not yet taken. Not thread-safe; one case per tracker.
class HoldTracker {
 public:
  // `steps` describes the case's procedure version and must outlive the tracker; null when the
  // procedure is not at hand (kinds then come from the events, no holders and no pauses).
  explicit HoldTracker(const StepTable* steps) : steps_(steps) {}

  // The next event of the case, in seq order. Events whose time does not parse are skipped.
  void Add(const HistoryEvent& event);
  // The holds ended since the last call, in the order they ended.
  std::vector<Hold> TakeEnded();
  // The holds still open, by activation.
  const std::map<std::int64_t, Hold>& open() const { return open_; }
  const std::vector<Pause>& pauses() const { return pauses_; }
  // The open activations as OpenSteps, for CurrentSteps.
  std::vector<OpenStep> OpenSteps() const;

 private:
  void End(std::int64_t activation, Timestamp at);

  const StepTable* steps_;
  std::map<std::int64_t, Hold> open_;
  std::vector<Hold> ended_;
  std::vector<Pause> pauses_;
  int pausing_ = 0;  // open holds that pause the clock
};

// A history event's time, to the microsecond; nullopt when it does not parse.
std::optional<Timestamp> EventTime(const HistoryEvent& event);

// Working time from `from` to `to` on `calendar`, in working days; 0 when `to` <= `from`.
double WorkingDays(const Calendar& calendar, Timestamp from, Timestamp to);

// The agency whose calendar measures `hold`: the holder when it is an agency of `deployment`,
// else `case_agency`.
const std::string& CalendarAgencyOf(const Hold& hold, const Deployment& deployment,
                                    const std::string& case_agency);

// Working days `hold` was held (up to `now` while still held), on CalendarAgencyOf's calendar.
double HeldWorkingDays(const Hold& hold, const Calendar& calendar, Timestamp now);

// The time one holder held a case, over all its holds.
struct HolderTime {
  std::string holder;
  bool agency = false;  // an agency of the deployment (not a department, applicant, sub-case)
  int steps = 0;
  double held_working_days = 0;
  std::optional<double> limit_working_days;  // the sum of its tasks' own limits, if any has one
  bool still_held = false;
};

// Per holder, in the order each first held the case. Holds without a holder are left out.
std::vector<HolderTime> TimeHeldByHolder(const std::vector<Hold>& holds,
                                         const Deployment& deployment,
                                         const std::string& case_agency, Timestamp now);

// The whole case against its statutory limit.
struct CaseTimes {
  double processing_working_days = 0;  // filing to end (or now), pauses excluded
  double paused_working_days = 0;
  std::optional<bool> within_limit;  // unset without a deadline
};

// `calendar` is the owning agency's; `pauses` from the case's HoldTracker.
CaseTimes TimesOf(const CaseRecord& record, const std::vector<Pause>& pauses,
                  const Calendar& calendar, Timestamp now);

// Everything a case's history says about time, read at once (for one case; the report streams
// through HoldTracker instead).
struct CaseTimeline {
  std::vector<Hold> holds;  // every hold, in the order they began
  std::vector<Pause> pauses;
  std::vector<std::string> current_steps;  // from the open activations
};
CaseTimeline ReadTimeline(const StepTable* steps, const std::vector<HistoryEvent>& events);

// ---------------------------------------------------------------------------------------------
// Visibility

// Who is looking, with the (agency, role) pairs the deployment's agency members give them.
struct Viewer {
  std::string actor;
  std::vector<std::pair<std::string, std::string>> agency_roles;  // by agency, then as written
};

Viewer ViewerOf(const Deployment& deployment, const std::string& actor);

// True when `task` is in the viewer's inbox (see the rules above).
bool InInbox(const Viewer& viewer, const TaskRecord& task);
// A store filter that pre-selects the viewer's inbox (InInbox decides). Its agency_roles are
// empty when the viewer holds no role: check that first, as an empty list means every role.
TaskFilter InboxFilter(const Viewer& viewer);
// True when the viewer started `record` or one of `tasks` (the case's) is in their inbox.
bool IsMine(const Viewer& viewer, const CaseRecord& record, const std::vector<TaskRecord>& tasks);

// ---------------------------------------------------------------------------------------------
// Loading

// A case as `wf show` and `wf history` read it.
struct CaseView {
  CaseRecord record;
  const workflows::Procedure* procedure = nullptr;  // null when it no longer loads
  std::optional<CaseState> state;                   // null when it does not parse
  std::vector<TaskRecord> tasks;                    // all of them, open and finished
};

// Reads case `id`, its procedure through `procedures` (which owns it) and its tasks through `tx`.
// kNotFound "no case ID; `wf cases` lists them", or "case ID was archived to FILE; ..." when it
// was archived; other errors are the store's. A procedure that no longer loads is left null.
// With `keys`, personal values are opened for whoever `tx` reads as (RevealCase); without, they
// stay sealed.
Result<CaseView> LoadCaseView(StoreTx& tx, ProcedureCache& procedures, const std::string& id,
                              KeySource* keys = nullptr);

// Opens the personal values of a case's record and tasks in place (DESIGN.md "Personal data"):
// `[erased]` after erasure, `[sealed]` for whoever may not read the case's key.
void RevealCase(Revealer& revealer, CaseRecord& record);
void RevealTask(Revealer& revealer, TaskRecord& task);

}  // namespace wf::engine
