#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace wf::workflows {

enum class DurationUnit { kSeconds, kMinutes, kHours, kDays, kWorkingDays };

// A length of time as written in a definition: `30s`, `5m`, `2h`, `3 days`, `1 day`,
// `5 working days`, `1 working day`. Calendar days and clock units convert to seconds; working
// days need an agency calendar (engine/calendar) to become a point in time.
struct Duration {
  int64_t amount = 0;
  DurationUnit unit = DurationUnit::kSeconds;

  bool IsWorkingDays() const { return unit == DurationUnit::kWorkingDays; }
  // Seconds for clock and calendar-day units; for working days, amount * 86400 (an estimate).
  int64_t ApproximateSeconds() const;
  // The canonical text, e.g. "30s", "3 days", "1 working day".
  std::string ToString() const;
  friend bool operator==(const Duration&, const Duration&) = default;
};

// Parses a duration. Accepts `<n><s|m|h|d>`, `<n> <second(s)|minute(s)|hour(s)|day(s)|working
// day(s)>` with n a non-negative integer no larger than 100 years' worth. On failure returns
// nullopt and, if `error` is given, why (e.g. "unknown unit 'weeks'; use s, m, h, days or
// working days").
// Also accepted: surrounding spaces, any number of spaces between the amount and the unit and
// between "working" and "day", any letter case, "sec(s)" and "min(s)", and "1 days"/"3 day".
// `3d` is calendar days (kDays). Refused with a message: empty text, a sign (`-5m`, `+5m`), a
// fraction (`1.5h`), a missing amount (`days`) or unit (`30`), an unknown unit, over 100 years.
// Does not throw.
std::optional<Duration> ParseDuration(std::string_view text, std::string* error = nullptr);

}  // namespace wf::workflows
