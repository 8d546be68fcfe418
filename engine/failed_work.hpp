#pragma once

// The scheduler's last net (issue 11: no single input stalls or crashes the engine). Work that
// fails however often it is tried, an exception escaping the carrying out of a row or an outcome
// whose commit fails deterministically, must not come back forever under new leases, nor hold
// back the batch it was committed in: its step fails permanently instead (on_error, or an
// incident naming the cause), and every other case flows on.

#include <string>

#include "engine/runtime.hpp"
#include "engine/store.hpp"
#include "workflows/status.hpp"

namespace wf::engine {

// A row whose carrying out ends in an exception is left to its lease and claimed again until it
// has been claimed this many times (work.attempt); the exception of that last claim fails its
// step. Three: an exception twice in a row, with a lease's wait between, is no passing fault, and
// the engine's restarts and lost leases (which also count) seldom take a row that far.
inline constexpr int kMaxCarryAttempts = 3;

// `text` as valid UTF-8 (invalid bytes replaced with U+FFFD), at most about 1,000 bytes: fit to
// be kept in a case's state, an incident and the history, whatever a failure's message held.
std::string FailureText(const std::string& text);

// Fails the step of `item` (a row leased to `owner` at item.attempt) with `message`: in one
// transaction, finishes the row (fenced as a completion is) and applies event::WorkFailed to its
// case, rehearsed first so that no expression runs under the case's lock. When even that cannot
// be committed (the case itself cannot be changed), finishes the row and records an incident
// for the case in a transaction of their own, without touching the case. A row whose lease was
// lost meanwhile changes nothing. kUnavailable when the database is away (the row's lease then
// runs out and it is tried again); other failures only when nothing could be written at all.
// Blocking: call it on a database thread.
Status FailWork(Runtime& runtime, const WorkItem& item, const std::string& owner,
                const std::string& message);

}  // namespace wf::engine
