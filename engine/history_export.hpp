#pragma once

// The two formats of `wf audit export`, written and read back (`wf audit verify --file`):
//
//  * JSON Lines: one compact event object a line, {"action","actor","at","case","details",
//    "hash","prev_hash","seq","step"} (HistoryEventJson, engine/archive.hpp).
//  * CSV (RFC 4180): the header `case,seq,at,actor,action,step,details,prev_hash,hash`, then one
//    record per event; fields with commas, quotes or line breaks are quoted, quotes doubled.
//
// Pure formatting over streams: no database, no files opened here. Not thread-safe per stream.

#include <functional>
#include <istream>
#include <ostream>
#include <string>

#include "engine/history.hpp"
#include "workflows/status.hpp"

namespace wf::engine {

enum class ExportFormat { kJsonLines, kCsv };

// Writes what comes before the events: the CSV header line; nothing for JSON Lines.
void WriteExportHeader(std::ostream& out, ExportFormat format);
// Writes one event as a line (JSON Lines; invalid UTF-8 replaced) or a record (CSV).
void WriteExportEvent(std::ostream& out, ExportFormat format, const HistoryEvent& event);

// Reads an export from `in` (either format: JSON Lines when it starts with '{') and gives every
// event to `visit`, in file order. A malformed line or record is kInvalid "PATH:LINE: ..."
// (`path` names the file in messages); an error from `visit` stops the read and is returned.
Status ReadExport(std::istream& in, const std::string& path,
                  const std::function<Status(const HistoryEvent&)>& visit);

}  // namespace wf::engine
