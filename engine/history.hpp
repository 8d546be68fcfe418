#pragma once

// The tamper-evident history chain (DESIGN.md decision 11), as pure functions: no database here.
//
// Every case has its own chain. Event `seq` 1 links to the genesis hash (64 zeros); event n links
// to event n-1 through `prev_hash`, and
//
//   hash = SHA-256(prev_hash || canonical event)
//
// where the canonical event is the compact JSON object with sorted keys
//   {"action", "actor", "at", "case", "details", "prev_hash", "seq", "step"}
// ("details" is itself JSON, re-serialised canonically). Changing any field of an event, removing
// or reordering events, or relinking them makes VerifyChain name the first event that fails.
// Removing only the newest events of a chain cannot be seen from the chain alone.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/timestamp.hpp"

namespace wf::engine {

// 64 zeros: the prev_hash of a case's first event.
inline constexpr std::string_view kGenesisHash =
    "0000000000000000000000000000000000000000000000000000000000000000";

// One event of a case's history, as stored.
struct HistoryEvent {
  std::string case_id;
  std::int64_t seq = 0;        // 1, 2, 3, ... per case
  std::string at;              // RFC 3339 UTC text (FormatRfc3339); hashed as written
  std::string actor;           // a person's login, or "engine"
  std::string action;          // e.g. "started", "step_completed", "task_claimed"
  std::string step;            // may be empty
  std::string details = "{}";  // JSON text
  std::string prev_hash;       // hex
  std::string hash;            // hex
};

// The canonical serialisation hashed for `event` (its `hash` field is not part of it). Details
// that are not valid JSON are hashed as a JSON string holding the raw text, so a tampered row
// still produces a (mismatching) hash instead of an error.
std::string CanonicalEvent(const HistoryEvent& event);

// SHA-256 hex of prev_hash followed by the canonical event.
std::string ComputeEventHash(const HistoryEvent& event);

// Fills seq, prev_hash and hash of `event` so that it follows `previous` (nullptr: the case's
// first event). The other fields must be final.
void SealEvent(HistoryEvent& event, const HistoryEvent* previous);
// The same for an event whose details text is already canonical: the compact dump of a JSON
// value by nlohmann::json (what StoreTx::AppendHistoryJson writes), so it is hashed as it is
// rather than parsed and dumped again.
void SealCanonicalEvent(HistoryEvent& event, const HistoryEvent* previous);

// Why a chain does not verify: the first event that fails and how.
struct ChainBreak {
  std::string case_id;
  std::int64_t seq = 0;  // the seq of the offending event (the expected seq for a gap)
  std::string reason;    // "hash mismatch", "broken link", "gap in seq (found N)"

  // "case X: event seq N does not verify (reason)"
  std::string Describe() const;
};

// The newest event of one case's chain: what an anchor signs and an archive leaves behind.
struct ChainHead {
  std::string case_id;
  std::int64_t seq = 0;
  std::string hash;
};

// Verifies a stream of events incrementally: events must be fed grouped by case and in seq order
// within a case (ORDER BY case_id, seq), so the store can verify millions without holding them.
class ChainVerifier {
 public:
  ChainVerifier() = default;
  // With `partial`, a case's chain may start after seq 1 (an export taken with --since): its
  // first event's prev_hash is taken as given, and everything from there on is checked.
  explicit ChainVerifier(bool partial) : partial_(partial) {}

  // Checks `event` against the previous event of its case. Returns the break, if any; after a
  // break the verifier keeps going with the next case.
  std::optional<ChainBreak> Feed(const HistoryEvent& event);

  std::int64_t events() const { return events_; }
  std::int64_t cases() const { return cases_; }
  // The newest event fed so far: the head of the current case's chain (empty before any event).
  ChainHead head() const { return {case_id_, last_seq_, last_hash_}; }

 private:
  bool partial_ = false;
  std::string case_id_;
  std::int64_t last_seq_ = 0;
  std::string last_hash_;
  bool broken_ = false;  // the current case already reported a break
  std::int64_t events_ = 0;
  std::int64_t cases_ = 0;
};

// Verifies the events of one or more cases (grouped by case, seq order). Returns the first break.
std::optional<ChainBreak> VerifyChain(const std::vector<HistoryEvent>& events);

}  // namespace wf::engine
