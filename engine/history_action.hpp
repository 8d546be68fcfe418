// The actions a case's history records, one name each. The engine writes them and every reader
// (the read model, the report, the timeline, audit exports) matches them from here. The strings
// are part of the contract (`wf history --json`, `wf audit export`): they never change meaning.
#pragma once

namespace wf::engine::history_action {

inline constexpr char kCaseStarted[] = "case.started";
inline constexpr char kCaseFinished[] = "case.finished";
inline constexpr char kCaseCancelled[] = "case.cancelled";

inline constexpr char kStepEntered[] = "step.entered";
inline constexpr char kStepAccepted[] = "step.accepted";  // a department answered 202
inline constexpr char kStepSucceeded[] = "step.succeeded";
inline constexpr char kStepReused[] = "step.reused";  // once-only: evidence from another case
inline constexpr char kStepFailed[] = "step.failed";
inline constexpr char kStepRetryScheduled[] = "step.retry_scheduled";
inline constexpr char kStepErrorHandled[] = "step.error_handled";
inline constexpr char kStepTimedOut[] = "step.timed_out";

inline constexpr char kTaskOpened[] = "task.opened";
inline constexpr char kTaskClaimed[] = "task.claimed";
inline constexpr char kTaskReleased[] = "task.released";
inline constexpr char kTaskCompleted[] = "task.completed";
inline constexpr char kTaskEscalated[] = "task.escalated";
inline constexpr char kTaskOverdue[] = "task.overdue";

inline constexpr char kSignalReceived[] = "signal.received";
inline constexpr char kTimerFired[] = "timer.fired";
inline constexpr char kBranchJoined[] = "branch.joined";
inline constexpr char kChildStarted[] = "child.started";
inline constexpr char kChildEnded[] = "child.ended";

inline constexpr char kIncidentOpened[] = "incident.opened";
inline constexpr char kIncidentRetried[] = "incident.retried";

// Federation (engine/federation.hpp): another deployment started this case and awaits its end.
inline constexpr char kFederationRequested[] = "federation.requested";
inline constexpr char kFederationAnswered[] = "federation.answered";
inline constexpr char kFederationRefused[] = "federation.answer_refused";

// Personal data (engine/personal.hpp): `wf erase` destroyed the case's data key.
inline constexpr char kCaseErased[] = "case.erased";

}  // namespace wf::engine::history_action
