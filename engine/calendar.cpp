#include "engine/calendar.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdio>
#include <utility>

#include "workflows/i18n.hpp"

namespace wf::engine {

namespace {

using std::chrono::days;
using std::chrono::hours;
using std::chrono::minutes;
using std::chrono::nanoseconds;
using std::chrono::seconds;
using Duration = TimePoint::duration;

// How far NextWorkingDay looks before giving up on a calendar that never works.
constexpr int kMaxSearchDays = 10 * 366;
// A nanosecond system_clock covers 1677..2262. Calendar arithmetic clamps its inputs to
// [1900, 2100) and caps every amount at about 100 years of working days (under 150 calendar
// years), so nothing it computes can overflow.
constexpr Date kEarliestDate = std::chrono::sys_days(std::chrono::year{1900} / 1 / 1);
constexpr Date kLatestDate = std::chrono::sys_days(std::chrono::year{2100} / 1 / 1);
constexpr int kMaxWorkingDays = 100 * 366;
constexpr int64_t kMaxSeconds = int64_t{100} * 366 * 86400;
// What ParseTimestamp accepts: whole years inside the range of a nanosecond time point.
constexpr int kFirstTimestampYear = 1678;
constexpr int kLastTimestampYear = 2261;

TimePoint Clamp(TimePoint t) {
  return std::clamp(t, TimePoint(kEarliestDate), TimePoint(kLatestDate));
}

// A local date whose start, shifted by any offset, is still a valid time point.
Date ClampRepresentable(Date d) {
  constexpr Date kFirst = std::chrono::sys_days(std::chrono::year{kFirstTimestampYear} / 1 / 2);
  constexpr Date kLast = std::chrono::sys_days(std::chrono::year{kLastTimestampYear} / 12 / 30);
  return std::clamp(d, kFirst, kLast);
}

TimePoint ClampRepresentable(TimePoint t) {
  return std::clamp(t, TimePoint(ClampRepresentable(Date::min())),
                    TimePoint(ClampRepresentable(Date::max())));
}

// The largest offset a time zone has (UTC+14:00, Kiribati); beyond it is a mistake.
constexpr int kMaxOffsetMinutes = 14 * 60;

void SortUnique(std::vector<Date>& dates) {
  std::sort(dates.begin(), dates.end());
  dates.erase(std::unique(dates.begin(), dates.end()), dates.end());
}

// How many of the sorted `dates` lie in [first, last).
int64_t CountIn(const std::vector<Date>& dates, Date first, Date last) {
  auto lo = std::lower_bound(dates.begin(), dates.end(), first);
  auto hi = std::lower_bound(lo, dates.end(), last);
  return hi - lo;
}

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// Reads exactly `width` decimal digits at `text[pos]`.
std::optional<int> Digits(std::string_view text, size_t pos, size_t width) {
  if (pos + width > text.size()) return std::nullopt;
  int value = 0;
  for (size_t i = pos; i < pos + width; ++i) {
    if (!IsDigit(text[i])) return std::nullopt;
    value = value * 10 + (text[i] - '0');
  }
  return value;
}

// "HH:MM:SS" of a non-negative time of day.
std::string FormatTimeOfDay(Duration since_midnight) {
  auto secs = std::chrono::floor<seconds>(since_midnight).count();
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%02d:%02d:%02d", static_cast<int>(secs / 3600),
                static_cast<int>(secs / 60 % 60), static_cast<int>(secs % 60));
  return buffer;
}

// One decimal for people, the decimal point in the reader's language: 15 -> "1.5" ("1,5" in
// Vietnamese), 20 -> "2"; always "1.5" for machines (`people` false).
std::string FormatTenths(int64_t tenths, bool people = true) {
  bool vietnamese = people && i18n::Vietnamese();
  std::string out = vietnamese ? i18n::Number(tenths / 10) : std::to_string(tenths / 10);
  if (tenths % 10 != 0) out += (vietnamese ? "," : ".") + std::to_string(tenths % 10);
  return out;
}

// The count that chooses the singular or plural of "N working days": the whole number, or 0
// (read as plural, as "0.5 working days" is) for a fraction.
unsigned long PluralCount(int64_t tenths) {
  return tenths % 10 == 0 ? static_cast<unsigned long>(tenths / 10) : 0;
}

}  // namespace

// --- Calendar ---------------------------------------------------------------------------------

Calendar::Calendar() : Calendar(CalendarSpec{}) {}

Calendar::Calendar(CalendarSpec spec) : spec_(std::move(spec)) {
  spec_.utc_offset_minutes =
      std::clamp(spec_.utc_offset_minutes, -kMaxOffsetMinutes, kMaxOffsetMinutes);
  SortUnique(spec_.holidays);
  SortUnique(spec_.working_days);
  for (auto day : spec_.weekend) weekend_mask_ |= 1u << day.c_encoding();
  spec_.weekend.clear();
  for (unsigned i = 0; i < 7; ++i) {
    if (weekend_mask_ & (1u << i)) spec_.weekend.push_back(std::chrono::weekday{i});
  }
  for (Date d : spec_.holidays) {
    if (!IsWeekend(std::chrono::weekday{d})) weekday_holidays_.push_back(d);
  }
  for (Date d : spec_.working_days) {
    if (IsWeekend(std::chrono::weekday{d}) &&
        !std::binary_search(spec_.holidays.begin(), spec_.holidays.end(), d)) {
      weekend_working_days_.push_back(d);
    }
  }
}

Date Calendar::LocalDate(TimePoint t) const {
  return std::chrono::floor<days>(Clamp(t) + Offset());
}

seconds Calendar::LocalTimeOfDay(TimePoint t) const {
  auto local = Clamp(t) + Offset();
  return std::chrono::floor<seconds>(local - std::chrono::floor<days>(local));
}

TimePoint Calendar::StartOfDay(Date date) const {
  return TimePoint(ClampRepresentable(date)) - Offset();
}

TimePoint Calendar::EndOfDay(Date date) const { return StartOfDay(date + days{1}) - seconds{1}; }

bool Calendar::IsWorkingDay(Date date) const {
  if (std::binary_search(spec_.holidays.begin(), spec_.holidays.end(), date)) return false;
  if (!IsWeekend(std::chrono::weekday{date})) return true;
  return std::binary_search(spec_.working_days.begin(), spec_.working_days.end(), date);
}

Date Calendar::NextWorkingDay(Date date) const {
  Date d = date + days{1};
  for (int i = 0; i < kMaxSearchDays && !IsWorkingDay(d); ++i) d += days{1};
  return d;
}

Date Calendar::EffectiveReceiptDay(TimePoint received) const {
  Date day = LocalDate(received);
  bool after_cutoff =
      spec_.cutoff_minutes && LocalTimeOfDay(received) >= minutes{*spec_.cutoff_minutes};
  if (IsWorkingDay(day) && !after_cutoff) return day;
  return NextWorkingDay(day);
}

TimePoint Calendar::AddWorkingDays(TimePoint received, int working_days) const {
  Date day = EffectiveReceiptDay(received);
  int n = std::clamp(working_days, 0, kMaxWorkingDays);
  for (int i = 0; i < n; ++i) {
    day = NextWorkingDay(day);
    if (!IsWorkingDay(day)) break;  // a calendar with no working day left: stop searching
  }
  return EndOfDay(day);
}

int Calendar::WorkingDaysBetween(TimePoint a, TimePoint b) const {
  if (b <= a) return 0;
  Date receipt = EffectiveReceiptDay(a);
  Date last = LocalDate(b);
  if (last <= receipt) return 0;
  return static_cast<int>(CountWorkingDays(receipt + days{1}, last + days{1}));
}

int64_t Calendar::CountWorkingDays(Date first, Date last) const {
  if (last <= first) return 0;
  int64_t span = (last - first).count();
  int64_t weekly = 7 - std::popcount(weekend_mask_);
  int64_t count = span / 7 * weekly;
  // The remaining days (fewer than 7) after the whole weeks.
  for (Date d = first + days{span / 7 * 7}; d < last; d += days{1}) {
    if (!IsWeekend(std::chrono::weekday{d})) ++count;
  }
  count -= CountIn(weekday_holidays_, first, last);
  count += CountIn(weekend_working_days_, first, last);
  return count;
}

Duration Calendar::WorkingDuration(TimePoint a, TimePoint b) const {
  a = Clamp(a);
  b = Clamp(b);
  if (b <= a) return Duration::zero();
  auto local_a = a + Offset();
  auto local_b = b + Offset();
  Date day_a = std::chrono::floor<days>(local_a);
  Date day_b = std::chrono::floor<days>(local_b);
  if (day_a == day_b) return IsWorkingDay(day_a) ? local_b - local_a : Duration::zero();
  Duration total = Duration::zero();
  if (IsWorkingDay(day_a)) total += TimePoint(day_a + days{1}) - local_a;
  total += std::chrono::duration_cast<Duration>(days{CountWorkingDays(day_a + days{1}, day_b)});
  if (IsWorkingDay(day_b)) total += local_b - TimePoint(day_b);
  return total;
}

double Calendar::WorkingTimeBetween(TimePoint a, TimePoint b) const {
  using FractionalDays = std::chrono::duration<double, days::period>;
  if (b < a) return -WorkingTimeBetween(b, a);
  return std::chrono::duration_cast<FractionalDays>(WorkingDuration(a, b)).count();
}

double Calendar::WorkingDaysLeft(TimePoint now, TimePoint deadline) const {
  return WorkingTimeBetween(now, deadline);
}

TimePoint Calendar::AddWorkingTime(TimePoint from, Duration working_time) const {
  if (working_time <= Duration::zero()) return from;
  Duration cap = std::chrono::duration_cast<Duration>(days{kMaxWorkingDays});
  Duration remaining = std::min(working_time, cap);
  from = Clamp(from);
  auto local = from + Offset();
  Date day = std::chrono::floor<days>(local);
  if (IsWorkingDay(day)) {
    Duration rest_of_day = TimePoint(day + days{1}) - local;
    if (remaining <= rest_of_day) return from + remaining;
    remaining -= rest_of_day;
  }
  const Duration whole_day = std::chrono::duration_cast<Duration>(days{1});
  for (;;) {
    day = NextWorkingDay(day);
    // Past the last working day there is (a calendar that never works) the clock stops.
    if (remaining <= whole_day || !IsWorkingDay(day)) return StartOfDay(day) + remaining;
    remaining -= whole_day;
  }
}

TimePoint Calendar::ExtendForPause(TimePoint deadline, TimePoint paused_at,
                                   TimePoint resumed_at) const {
  return AddWorkingTime(deadline, WorkingDuration(paused_at, resumed_at));
}

TimePoint Calendar::DueAfter(TimePoint from, const workflows::Duration& limit) const {
  using workflows::DurationUnit;
  int64_t amount = std::max<int64_t>(limit.amount, 0);
  int64_t unit_seconds = 1;
  switch (limit.unit) {
    case DurationUnit::kWorkingDays:
      return AddWorkingDays(from, static_cast<int>(std::min<int64_t>(amount, kMaxWorkingDays)));
    case DurationUnit::kSeconds:
      unit_seconds = 1;
      break;
    case DurationUnit::kMinutes:
      unit_seconds = 60;
      break;
    case DurationUnit::kHours:
      unit_seconds = 3600;
      break;
    case DurationUnit::kDays:
      unit_seconds = 86400;
      break;
  }
  int64_t total = amount > kMaxSeconds / unit_seconds ? kMaxSeconds : amount * unit_seconds;
  return Clamp(from) + seconds{total};
}

std::string Calendar::DescribeTimeLeft(TimePoint now, TimePoint deadline, bool people) const {
  bool overdue = now > deadline;
  double amount = overdue ? WorkingTimeBetween(deadline, now) : WorkingTimeBetween(now, deadline);
  auto tenths = static_cast<int64_t>(std::llround(amount * 10));
  if (tenths == 0) {
    const char* text = overdue ? TrNoop("overdue by less than 0.1 working day")
                               : TrNoop("less than 0.1 working day left");
    return people ? Tr(text) : text;
  }
  // For machines (`people` false) the English text with its choice of singular or plural.
  unsigned long n = PluralCount(tenths);
  const char* english =
      overdue ? (n == 1 ? "overdue by {0} working day" : "overdue by {0} working days")
              : (n == 1 ? "{0} working day left" : "{0} working days left");
  const char* text = !people   ? english
                     : overdue ? TrN("overdue by {0} working day", "overdue by {0} working days", n)
                               : TrN("{0} working day left", "{0} working days left", n);
  return TrFill(text, english, fmt::make_format_args(FormatTenths(tenths, people)));
}

std::string Calendar::FormatLocal(TimePoint t) const {
  return FormatTimestampAt(t, spec_.utc_offset_minutes);
}

// --- Dates and timestamps ---------------------------------------------------------------------

std::optional<Date> ParseDate(std::string_view text) {
  if (text.size() != 10 || text[4] != '-' || text[7] != '-') return std::nullopt;
  auto year = Digits(text, 0, 4);
  auto month = Digits(text, 5, 2);
  auto day = Digits(text, 8, 2);
  if (!year || !month || !day || *year == 0) return std::nullopt;
  std::chrono::year_month_day ymd{std::chrono::year{*year},
                                  std::chrono::month{static_cast<unsigned>(*month)},
                                  std::chrono::day{static_cast<unsigned>(*day)}};
  if (!ymd.ok()) return std::nullopt;
  return Date(ymd);
}

std::string FormatDate(Date date) {
  std::chrono::year_month_day ymd{date};
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%04d-%02u-%02u", static_cast<int>(ymd.year()),
                static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()));
  return buffer;
}

namespace {
constexpr const char* kWeekdayNames[7] = {"sunday",   "monday", "tuesday", "wednesday",
                                          "thursday", "friday", "saturday"};
}  // namespace

std::string WeekdayName(std::chrono::weekday day) {
  return day.ok() ? kWeekdayNames[day.c_encoding()] : "?";
}

std::optional<std::chrono::weekday> ParseWeekday(std::string_view text) {
  std::string lower(text);
  for (char& c : lower) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  for (unsigned i = 0; i < 7; ++i) {
    if (lower == kWeekdayNames[i]) return std::chrono::weekday{i};
  }
  return std::nullopt;
}

std::optional<int> ParseClockTime(std::string_view text) {
  size_t colon = text.find(':');
  if (colon != 1 && colon != 2) return std::nullopt;
  if (text.size() != colon + 3) return std::nullopt;
  auto hour = Digits(text, 0, colon);
  auto minute = Digits(text, colon + 1, 2);
  if (!hour || !minute || *hour > 23 || *minute > 59) return std::nullopt;
  return *hour * 60 + *minute;
}

std::string FormatClockTime(int minutes_after_midnight) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%02d:%02d", minutes_after_midnight / 60,
                minutes_after_midnight % 60);
  return buffer;
}

std::optional<int> ParseUtcOffset(std::string_view text) {
  if (text == "Z" || text == "z") return 0;
  if (text.size() < 3 || (text[0] != '+' && text[0] != '-')) return std::nullopt;
  int sign = text[0] == '-' ? -1 : 1;
  auto hour = Digits(text, 1, 2);
  std::optional<int> minute = 0;
  if (text.size() == 6 && text[3] == ':') {
    minute = Digits(text, 4, 2);
  } else if (text.size() == 5) {
    minute = Digits(text, 3, 2);
  } else if (text.size() != 3) {
    return std::nullopt;
  }
  if (!hour || !minute || *minute > 59) return std::nullopt;
  int total = *hour * 60 + *minute;
  if (total > 14 * 60) return std::nullopt;
  return sign * total;
}

std::string FormatUtcOffset(int offset_minutes) {
  int magnitude = offset_minutes < 0 ? -offset_minutes : offset_minutes;
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%c%02d:%02d", offset_minutes < 0 ? '-' : '+',
                magnitude / 60, magnitude % 60);
  return buffer;
}

std::optional<TimePoint> ParseTimestamp(std::string_view text) {
  // YYYY-MM-DDTHH:MM:SS is 19 characters; then a fraction and a zone.
  if (text.size() < 20) return std::nullopt;
  auto date = ParseDate(text.substr(0, 10));
  char separator = text[10];
  if (!date || (separator != 'T' && separator != 't' && separator != ' ')) return std::nullopt;
  int year = static_cast<int>(std::chrono::year_month_day{*date}.year());
  if (year < kFirstTimestampYear || year > kLastTimestampYear) return std::nullopt;
  if (text[13] != ':' || text[16] != ':') return std::nullopt;
  auto hour = Digits(text, 11, 2);
  auto minute = Digits(text, 14, 2);
  auto second = Digits(text, 17, 2);
  if (!hour || !minute || !second || *hour > 23 || *minute > 59 || *second > 59) {
    return std::nullopt;
  }
  size_t pos = 19;
  int64_t fraction_ns = 0;
  if (text[pos] == '.') {
    ++pos;
    size_t digits = 0;
    int64_t scale = 100000000;
    while (pos < text.size() && IsDigit(text[pos])) {
      if (digits < 9) fraction_ns += (text[pos] - '0') * scale;
      scale /= 10;
      ++digits;
      ++pos;
    }
    if (digits == 0) return std::nullopt;
  }
  std::string_view zone = text.substr(pos);
  // RFC 3339 offsets always carry the colon.
  if (zone.size() != 1 && zone.size() != 6) return std::nullopt;
  auto offset = ParseUtcOffset(zone);
  if (!offset) return std::nullopt;
  TimePoint local = TimePoint(*date) + hours{*hour} + minutes{*minute} + seconds{*second} +
                    std::chrono::duration_cast<Duration>(nanoseconds{fraction_ns});
  return local - minutes{*offset};
}

namespace {
std::string FormatWithZone(TimePoint local, int fraction_digits, const std::string& zone) {
  // Keep away from the ends of the clock's range, where floor<days> would overflow.
  local = std::clamp(
      local, TimePoint(std::chrono::sys_days(std::chrono::year{kFirstTimestampYear} / 1 / 1)),
      TimePoint(std::chrono::sys_days(std::chrono::year{kLastTimestampYear + 1} / 1 / 1)));
  auto whole = std::chrono::floor<seconds>(local);
  Date date = std::chrono::floor<days>(whole);
  std::string out = FormatDate(date) + "T" + FormatTimeOfDay(whole - TimePoint(date));
  if (fraction_digits == 3 || fraction_digits == 6 || fraction_digits == 9) {
    int64_t ns = std::chrono::duration_cast<nanoseconds>(local - whole).count();
    for (int i = fraction_digits; i < 9; ++i) ns /= 10;
    char buffer[32];
    std::snprintf(buffer, sizeof buffer, ".%0*lld", fraction_digits, static_cast<long long>(ns));
    out += buffer;
  }
  return out + zone;
}
}  // namespace

std::string FormatTimestamp(TimePoint t, int fraction_digits) {
  return FormatWithZone(t, fraction_digits, "Z");
}

std::string FormatTimestampAt(TimePoint t, int utc_offset_minutes) {
  int offset = std::clamp(utc_offset_minutes, -kMaxOffsetMinutes, kMaxOffsetMinutes);
  return FormatWithZone(ClampRepresentable(t) + minutes{offset}, 0, FormatUtcOffset(offset));
}

}  // namespace wf::engine
