#pragma once

// Working days on an agency's calendar, and the dates and timestamps the engine writes.
//
// Times are std::chrono::system_clock time points (UTC). A calendar reasons in its agency's
// local time, which is UTC shifted by a fixed offset (no daylight saving: Vietnam has none).
//
// Two ways of measuring time are used, on purpose:
//
//  * The statutory day count (AddWorkingDays, WorkingDaysBetween). A limit of N working days is
//    counted in whole days from the day after the file was received, and runs to the end of the
//    Nth working day. A file received on a non-working day, or on a working day at or after the
//    cutoff, counts as received on the next working day. This is how the decrees count, and what
//    reports compare against the statutory limit.
//
//  * Working time (WorkingTimeBetween, WorkingDaysLeft, ExtendForPause). Every working day
//    contributes its whole local day (00:00 to 24:00) at an even rate; weekends and holidays
//    contribute nothing. It is continuous, so it can say "1.5 working days left" and it can
//    give back exactly the part of a day that a pause took. Office hours are not modelled; the
//    cutoff plays no part here.
//
// Everything in this header is pure: no clock is read, no I/O, no locale. A Calendar is
// immutable after construction and safe to share between threads. Calendar arithmetic is meant
// for times between 1900 and 2100: times outside are clamped to that range, and amounts to about
// 100 years, so no input (TimePoint::max() included) can overflow or loop for long.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "workflows/diagnostic.hpp"
#include "workflows/duration.hpp"

namespace wf::engine {

using TimePoint = std::chrono::system_clock::time_point;
// A civil date (a count of days since 1970-01-01), read in whatever zone the caller means; in
// this header it is always a calendar's local date unless the name says UTC.
using Date = std::chrono::sys_days;

// The offset used when a calendar does not give `utc_offset`: the procedures wf was written for
// are Vietnamese, and Indochina Time is UTC+07:00 all year.
inline constexpr int kDefaultUtcOffsetMinutes = 7 * 60;

// One agency calendar as written in the deployment config (`calendars:`):
//
//   vn:
//     weekend: [saturday, sunday]           # default [saturday, sunday]; [] for none
//     holidays: [2026-01-01, 2026-02-14..2026-02-22]   # dates, or inclusive ranges a..b
//     working_days: [2026-01-10]            # make-up days worked although on a weekend
//     cutoff: "15:00"                        # at or after it: received the next working day
//     utc_offset: "+07:00"                   # default +07:00
struct CalendarSpec {
  std::string name = "default";
  // Days of the week that are not worked unless listed in `working_days`. Kept in
  // Sunday..Saturday order (std::chrono::weekday::c_encoding() 0..6), without duplicates.
  std::vector<std::chrono::weekday> weekend = {std::chrono::Sunday, std::chrono::Saturday};
  // Public holidays, local dates, sorted, without duplicates. Ranges are expanded.
  std::vector<Date> holidays;
  // Dates worked although they fall on a weekend day (Vietnam moves days around Tet and
  // national day), sorted, without duplicates. A holiday on the same date wins.
  std::vector<Date> working_days;
  // Minutes after local midnight from which a file counts as received on the next working day.
  std::optional<int> cutoff_minutes;
  int utc_offset_minutes = kDefaultUtcOffsetMinutes;
  // Where the calendar was defined in the config; 0:0 for a built-in one.
  workflows::SourceLocation where;
};

// Working-day arithmetic on one calendar. Copyable (it holds the holiday lists); immutable;
// thread-safe.
class Calendar {
 public:
  // The built-in default: Saturday and Sunday off, no holidays, no cutoff, UTC+07:00.
  Calendar();
  // Takes `spec` as given; the config loader has already sorted and checked it. (Unsorted
  // holiday or working-day lists are sorted here too, and an offset beyond ±14:00 is clamped,
  // so a hand-made spec is safe.)
  explicit Calendar(CalendarSpec spec);

  const CalendarSpec& spec() const { return spec_; }
  const std::string& name() const { return spec_.name; }

  // --- Local dates ------------------------------------------------------------------------

  // The local date at `t`.
  Date LocalDate(TimePoint t) const;
  // Time since local midnight at `t`.
  std::chrono::seconds LocalTimeOfDay(TimePoint t) const;
  // The instant local `date` begins (00:00:00 local).
  TimePoint StartOfDay(Date date) const;
  // The last second of local `date` (23:59:59 local): where working-day deadlines fall.
  TimePoint EndOfDay(Date date) const;

  // True when local `date` is worked: not a holiday, and either not a weekend day or listed in
  // working_days.
  bool IsWorkingDay(Date date) const;
  // The first working day strictly after `date`. Searches at most about 20 years ahead; a
  // calendar with no working day at all in that span returns the date after the search.
  Date NextWorkingDay(Date date) const;
  // The day a file received at `received` counts as received on: its local date when that is a
  // working day and the time is before the cutoff (or there is none), else the next working day.
  Date EffectiveReceiptDay(TimePoint received) const;

  // --- Statutory day count -----------------------------------------------------------------

  // The deadline of a limit of `days` working days for a file received at `received`: the end
  // (23:59:59 local) of the `days`-th working day after EffectiveReceiptDay(received). With
  // days == 0 it is the end of the effective receipt day; negative `days` count as 0.
  // Examples on a Saturday/Sunday calendar with cutoff 15:00 (2026-11-27 is a Friday):
  //   received Fri 10:00, 3 days  -> counts from Fri -> Mon, Tue, Wed -> end of Wed 2026-12-02;
  //   received Fri 16:00, 3 days  -> counts from Mon -> Tue, Wed, Thu -> end of Thu 2026-12-03;
  //   received Sat 09:00, 1 day   -> counts from Mon -> end of Tue 2026-12-01.
  TimePoint AddWorkingDays(TimePoint received, int days) const;

  // Whole working days elapsed from `a` to `b` in the statutory count: the working days after
  // EffectiveReceiptDay(a) up to and including b's local date; 0 when b <= a. So a case received
  // at `a` and finished at `b` "took" this many working days, and
  // WorkingDaysBetween(r, AddWorkingDays(r, n)) == n for every n >= 0.
  int WorkingDaysBetween(TimePoint a, TimePoint b) const;

  // Working days in the local dates [first, last), counted without looping over the days.
  int64_t CountWorkingDays(Date first, Date last) const;

  // --- Working time ------------------------------------------------------------------------

  // The working time from `a` to `b`, in working days (each working day's 24 local hours count
  // as 1.0); negative when b < a. Friday 12:00 to Monday 12:00 is 1.0.
  double WorkingTimeBetween(TimePoint a, TimePoint b) const;

  // The working time left from `now` until `deadline`, in working days; negative when the
  // deadline has passed (by the working time since). Tuesday 12:00 with a deadline at the end
  // of Wednesday is 1.5 (to the second: 1.5 minus one second). A deadline passed on Friday is
  // still -0.0 on Saturday; test `now > deadline` for "overdue", and use DescribeTimeLeft for
  // people.
  double WorkingDaysLeft(TimePoint now, TimePoint deadline) const;

  // The working time from `a` to `b` as a duration (24h per working day); zero when b <= a.
  TimePoint::duration WorkingDuration(TimePoint a, TimePoint b) const;

  // The point reached by going forward `working_time` of working time from `from`: the earliest
  // t >= from with WorkingDuration(from, t) == working_time (so it never ends inside a
  // weekend or holiday, but may end at the midnight that closes a working day). Non-positive
  // amounts return `from`.
  TimePoint AddWorkingTime(TimePoint from, TimePoint::duration working_time) const;

  // A clock pause (a step with `pauses_deadline: true`): the working time that elapsed between
  // `paused_at` and `resumed_at` is added back to `deadline` with AddWorkingTime, to the second.
  // A pause over a weekend only changes nothing; a pause from Tuesday 10:00 to Thursday 10:00
  // moves an end-of-Wednesday deadline to the end of Friday; a pause of half a working day
  // moves it to 11:59:59 on the next working day. The working time left is the same on
  // resuming as it was on pausing (also when already overdue). resumed_at <= paused_at changes
  // nothing. Several pauses can be applied one after the other in any order.
  TimePoint ExtendForPause(TimePoint deadline, TimePoint paused_at, TimePoint resumed_at) const;

  // The deadline for a limit written as a Duration, counted from `from`: working days through
  // AddWorkingDays (with the receipt and cutoff rule); seconds, minutes, hours and (calendar)
  // days as plain elapsed time. Durations beyond 100 years are capped there.
  TimePoint DueAfter(TimePoint from, const workflows::Duration& limit) const;

  // For a clerk: "1.5 working days left", "1 working day left", "less than 0.1 working day
  // left", "overdue by 2 working days", "overdue by less than 0.1 working day" (also on a
  // weekend right after a deadline). Rounded to one decimal. In the reader's language (i18n),
  // or in English for `show --json` when `people` is false.
  std::string DescribeTimeLeft(TimePoint now, TimePoint deadline, bool people = true) const;

  // `t` in this calendar's local time with its offset, e.g. "2026-11-27T16:00:00+07:00".
  std::string FormatLocal(TimePoint t) const;

 private:
  std::chrono::seconds Offset() const { return std::chrono::minutes(spec_.utc_offset_minutes); }
  bool IsWeekend(std::chrono::weekday day) const {
    return (weekend_mask_ >> day.c_encoding()) & 1u;
  }

  CalendarSpec spec_;
  unsigned weekend_mask_ = 0;  // bit c_encoding() set for each weekend day
  // Holidays that fall on a non-weekend day and make-up days that fall on a weekend day and are
  // not holidays: the exceptions CountWorkingDays corrects the weekly pattern with.
  std::vector<Date> weekday_holidays_;
  std::vector<Date> weekend_working_days_;
};

// --- Dates and timestamps, locale-free ------------------------------------------------------

// Parses a date written YYYY-MM-DD (exactly; years 0001..9999) that exists on the calendar
// (2026-02-29 does not). Returns nullopt otherwise.
std::optional<Date> ParseDate(std::string_view text);
// "2026-11-27".
std::string FormatDate(Date date);
// The English day name, lower case: "friday".
std::string WeekdayName(std::chrono::weekday day);
// Parses "monday".."sunday" (any letter case).
std::optional<std::chrono::weekday> ParseWeekday(std::string_view text);

// Parses "HH:MM" (H:MM also accepted), 00:00..23:59, to minutes after midnight.
std::optional<int> ParseClockTime(std::string_view text);
// "15:00".
std::string FormatClockTime(int minutes);
// Parses a UTC offset "+07:00", "-05:30", "+0700", "Z" (range -14:00..+14:00) to minutes.
std::optional<int> ParseUtcOffset(std::string_view text);
// "+07:00", "-05:30", "+00:00".
std::string FormatUtcOffset(int minutes);

// Parses an RFC 3339 timestamp: YYYY-MM-DDTHH:MM:SS, optional fraction (up to nanoseconds;
// more digits are truncated), then Z or ±HH:MM. 't', 'z' and a space for 'T' are accepted as
// RFC 3339 allows; a leap second (:60) is not, nor years outside 1678..2261 (what a nanosecond
// system_clock holds). Returns the UTC instant, or nullopt.
std::optional<TimePoint> ParseTimestamp(std::string_view text);
// The UTC timestamp "2026-11-25T14:03:00Z", truncated to whole seconds; with fraction_digits 3,
// 6 or 9 a fraction follows ("2026-11-25T14:03:00.250Z"; other values mean 0).
std::string FormatTimestamp(TimePoint t, int fraction_digits = 0);
// `t` shifted to a fixed offset (clamped to ±14:00) and written with it:
// "2026-11-25T21:03:00+07:00".
std::string FormatTimestampAt(TimePoint t, int utc_offset_minutes);

}  // namespace wf::engine
