#pragma once

// Retention (wf archive): ended cases move with their whole history into a self-contained,
// verifiable file and leave the live tables; each chain's head stays in `archived_chains`, so
// `wf audit verify` and anchors taken before the archive still hold.
//
// Archive file (JSON Lines, README "Archives"):
//   {"archive":"wf-archive/1","created_at":"<RFC 3339>","before":"<RFC 3339>","database":"<URL>"}
//   {"case":{...},"tasks":[...],"incidents":[...],"work":[...],"history":[events]}   per case
//   {"cases":<n>,"events":<n>,"sha256":"<hex>"}
// sha256 is the SHA-256 of every byte before the last line; `archived_chains.archive_sha256`
// records it for each case the file holds. History events are exactly as `wf audit export`
// writes them (with prev_hash and hash), so every chain can be recomputed from the file alone.

#include <cstdint>
#include <optional>
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "engine/store.hpp"
#include "engine/timestamp.hpp"
#include "workflows/status.hpp"

namespace wf::engine {

struct ArchiveSummary {
  std::int64_t cases = 0;
  std::int64_t events = 0;
  std::string sha256;  // the body hash in the trailer
};

// Writes every case that ended before `before` into a new file `path` (kConflict if it exists;
// written as PATH.partial created mode 0600, flushed to disk, renamed, and the folder flushed so
// that the name survives a crash, all before anything is removed; when the folder cannot be
// flushed the file is removed again and nothing leaves the database), then removes
// those cases from the live tables, 100 cases per transaction, recording each chain's head.
// Open cases are never archived. A case that changed between writing and removing
// (kConflict from RemoveArchivedCase) stops the run: the file still verifies, and the cases it
// removed are recorded; run again to archive the rest into a new file. Evidence rows stay: they
// are shared between cases (once-only reuse) and name their source case. Zero cases: no file.
Result<ArchiveSummary> ArchiveEndedCases(Store& store, Timestamp before, const std::string& path,
                                         Timestamp now);

// Verifies an archive file on its own: its lines hash to its trailer, every case's chain
// recomputes from genesis, counts match. kNotFound when it cannot be read; kInvalid "PATH:LINE:
// ..." when it is not an archive; kHistoryBroken naming the case and seq of the first bad event.
Result<ArchiveSummary> VerifyArchive(const std::string& path);

// A history event as the exports and archives write it: {case, seq, at, actor, action, step,
// details (parsed JSON, or the raw text when it does not parse), prev_hash, hash}.
nlohmann::json HistoryEventJson(const HistoryEvent& event);
// The inverse, for reading exports and archives back; nullopt when a field is missing or has the
// wrong type. Details are re-serialised compactly, which the canonical hash does anyway.
std::optional<HistoryEvent> HistoryEventFromJson(const nlohmann::json& json);

}  // namespace wf::engine
