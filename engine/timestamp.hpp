#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace wf::engine {

// A point in time, UTC, with microsecond resolution: the unit the store keeps in its scheduling
// columns (BIGINT microseconds since the Unix epoch) so that SQLite and PostgreSQL agree exactly.
using Timestamp = std::chrono::sys_time<std::chrono::microseconds>;

// The current time, truncated to microseconds.
inline Timestamp Now() {
  return std::chrono::floor<std::chrono::microseconds>(std::chrono::system_clock::now());
}

// Microseconds since the Unix epoch and back; what the store writes into BIGINT columns.
inline std::int64_t ToMicros(Timestamp t) { return t.time_since_epoch().count(); }
inline Timestamp FromMicros(std::int64_t us) { return Timestamp(std::chrono::microseconds(us)); }

// RFC 3339 in UTC with exactly six fractional digits, e.g. "2026-01-02T03:04:05.000123Z".
// Fixed width, so text order is time order (history `at` is compared as text).
std::string FormatRfc3339(Timestamp t);

}  // namespace wf::engine
