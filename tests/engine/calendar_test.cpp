#include "engine/calendar.hpp"

#include <catch2/catch.hpp>
#include <chrono>
#include <string>
#include <string_view>

#include "workflows/duration.hpp"

namespace {

using std::chrono::days;
using std::chrono::hours;
using std::chrono::minutes;
using std::chrono::seconds;
using wf::engine::Calendar;
using wf::engine::CalendarSpec;
using wf::engine::Date;
using wf::engine::TimePoint;

TimePoint At(std::string_view text) {
  auto t = wf::engine::ParseTimestamp(text);
  INFO(std::string(text));
  REQUIRE(t.has_value());
  return *t;
}

Date D(std::string_view text) {
  auto d = wf::engine::ParseDate(text);
  INFO(std::string(text));
  REQUIRE(d.has_value());
  return *d;
}

// Saturday/Sunday weekend, Tet 2026 (2026-02-14..22), New Year 2026 and 2027, cutoff 15:00,
// UTC+07:00, and a make-up working Saturday on 2026-01-10.
CalendarSpec VietnamSpec() {
  CalendarSpec spec;
  spec.name = "vn";
  spec.holidays = {D("2026-01-01"), D("2027-01-01")};
  for (Date d = D("2026-02-14"); d <= D("2026-02-22"); d += days{1}) spec.holidays.push_back(d);
  spec.working_days = {D("2026-01-10")};
  spec.cutoff_minutes = 15 * 60;
  return spec;
}

}  // namespace

// --- dates and timestamps ---------------------------------------------------------------------

TEST_CASE("dates parse and format as YYYY-MM-DD and must exist", "[engine][calendar][dates]") {
  auto d = wf::engine::ParseDate("2026-11-27");
  REQUIRE(d.has_value());
  CHECK(wf::engine::FormatDate(*d) == "2026-11-27");
  CHECK(wf::engine::WeekdayName(std::chrono::weekday{*d}) == "friday");
  CHECK(wf::engine::FormatDate(*d + days{5}) == "2026-12-02");
  CHECK(wf::engine::ParseDate("2028-02-29").has_value());
  CHECK_FALSE(wf::engine::ParseDate("2026-02-29").has_value());
  CHECK_FALSE(wf::engine::ParseDate("2026-04-31").has_value());
  CHECK_FALSE(wf::engine::ParseDate("2026-13-01").has_value());
  CHECK_FALSE(wf::engine::ParseDate("2026-00-10").has_value());
  CHECK_FALSE(wf::engine::ParseDate("2026-1-01").has_value());
  CHECK_FALSE(wf::engine::ParseDate("0000-01-01").has_value());
  CHECK_FALSE(wf::engine::ParseDate("2026-11-27 ").has_value());
  CHECK_FALSE(wf::engine::ParseDate("2026/11/27").has_value());
  CHECK_FALSE(wf::engine::ParseDate("").has_value());
}

TEST_CASE("weekday names parse in any letter case", "[engine][calendar][dates]") {
  CHECK(wf::engine::ParseWeekday("saturday") == std::chrono::Saturday);
  CHECK(wf::engine::ParseWeekday("Sunday") == std::chrono::Sunday);
  CHECK(wf::engine::ParseWeekday("MONDAY") == std::chrono::Monday);
  CHECK_FALSE(wf::engine::ParseWeekday("sat").has_value());
  CHECK(wf::engine::WeekdayName(std::chrono::Wednesday) == "wednesday");
}

TEST_CASE("RFC 3339 timestamps parse to UTC and format back", "[engine][calendar][dates]") {
  TimePoint t = At("2026-11-25T14:03:00Z");
  CHECK(wf::engine::FormatTimestamp(t) == "2026-11-25T14:03:00Z");
  CHECK(t.time_since_epoch() == seconds{1795615380});

  CHECK(wf::engine::FormatTimestamp(At("2026-11-25T21:03:00+07:00")) == "2026-11-25T14:03:00Z");
  CHECK(wf::engine::FormatTimestamp(At("2026-11-25T09:33:00-04:30")) == "2026-11-25T14:03:00Z");
  CHECK(wf::engine::FormatTimestamp(At("2026-11-25t14:03:00z")) == "2026-11-25T14:03:00Z");
  CHECK(wf::engine::FormatTimestamp(At("2026-11-25 14:03:00Z")) == "2026-11-25T14:03:00Z");
  // Crossing a day and a year boundary through the offset.
  CHECK(wf::engine::FormatTimestamp(At("2027-01-01T05:00:00+07:00")) == "2026-12-31T22:00:00Z");
  // Before the epoch, seconds still floor the right way.
  CHECK(wf::engine::FormatTimestamp(At("1969-12-31T23:59:59Z")) == "1969-12-31T23:59:59Z");
}

TEST_CASE("timestamp fractions are kept and printed on request", "[engine][calendar][dates]") {
  TimePoint t = At("2026-11-25T14:03:00.25Z");
  CHECK(wf::engine::FormatTimestamp(t) == "2026-11-25T14:03:00Z");
  CHECK(wf::engine::FormatTimestamp(t, 3) == "2026-11-25T14:03:00.250Z");
  CHECK(wf::engine::FormatTimestamp(t, 6) == "2026-11-25T14:03:00.250000Z");
  TimePoint precise = At("2026-11-25T14:03:00.123456789123Z");
  CHECK(wf::engine::FormatTimestamp(precise, 9) == "2026-11-25T14:03:00.123456789Z");
  CHECK(wf::engine::FormatTimestamp(precise, 3) == "2026-11-25T14:03:00.123Z");
}

TEST_CASE("malformed timestamps are refused", "[engine][calendar][dates]") {
  for (const char* bad :
       {"2026-11-25T14:03:00", "2026-11-25T24:00:00Z", "2026-11-25T14:60:00Z",
        "2026-11-25T14:03:60Z", "2026-02-30T10:00:00Z", "2026-11-25T14:03Z",
        "2026-11-25T14:03:00.Z", "2026-11-25T14:03:00+0700", "2026-11-25T14:03:00+07",
        "2026-11-25X14:03:00Z", "2026-11-25T14:03:00ZZ", "", "2026-11-25"}) {
    INFO(bad);
    CHECK_FALSE(wf::engine::ParseTimestamp(bad).has_value());
  }
}

TEST_CASE("clock times and UTC offsets parse strictly", "[engine][calendar][dates]") {
  CHECK(wf::engine::ParseClockTime("15:00") == 900);
  CHECK(wf::engine::ParseClockTime("9:30") == 570);
  CHECK(wf::engine::ParseClockTime("00:00") == 0);
  CHECK(wf::engine::ParseClockTime("23:59") == 1439);
  CHECK_FALSE(wf::engine::ParseClockTime("24:00").has_value());
  CHECK_FALSE(wf::engine::ParseClockTime("15:60").has_value());
  CHECK_FALSE(wf::engine::ParseClockTime("1500").has_value());
  CHECK_FALSE(wf::engine::ParseClockTime("15:0").has_value());
  CHECK_FALSE(wf::engine::ParseClockTime("015:00").has_value());
  CHECK(wf::engine::FormatClockTime(570) == "09:30");

  CHECK(wf::engine::ParseUtcOffset("+07:00") == 420);
  CHECK(wf::engine::ParseUtcOffset("-05:30") == -330);
  CHECK(wf::engine::ParseUtcOffset("+0545") == 345);
  CHECK(wf::engine::ParseUtcOffset("+07") == 420);
  CHECK(wf::engine::ParseUtcOffset("Z") == 0);
  CHECK(wf::engine::ParseUtcOffset("+14:00") == 840);
  CHECK_FALSE(wf::engine::ParseUtcOffset("+14:01").has_value());
  CHECK_FALSE(wf::engine::ParseUtcOffset("7").has_value());
  CHECK_FALSE(wf::engine::ParseUtcOffset("+7:00").has_value());
  CHECK_FALSE(wf::engine::ParseUtcOffset("+07:60").has_value());
  CHECK(wf::engine::FormatUtcOffset(420) == "+07:00");
  CHECK(wf::engine::FormatUtcOffset(-330) == "-05:30");
  CHECK(wf::engine::FormatUtcOffset(0) == "+00:00");
}

// --- working days -----------------------------------------------------------------------------

TEST_CASE("the default calendar rests on Saturday and Sunday at UTC+07:00", "[engine][calendar]") {
  Calendar calendar;
  CHECK(calendar.name() == "default");
  CHECK(calendar.spec().utc_offset_minutes == 420);
  CHECK_FALSE(calendar.spec().cutoff_minutes.has_value());
  CHECK(calendar.IsWorkingDay(D("2026-11-27")));        // Friday
  CHECK_FALSE(calendar.IsWorkingDay(D("2026-11-28")));  // Saturday
  CHECK_FALSE(calendar.IsWorkingDay(D("2026-11-29")));  // Sunday
  CHECK(calendar.IsWorkingDay(D("2026-11-30")));        // Monday
  CHECK(calendar.FormatLocal(At("2026-11-27T03:00:00Z")) == "2026-11-27T10:00:00+07:00");
}

TEST_CASE("holidays and make-up working days decide working days", "[engine][calendar]") {
  Calendar calendar(VietnamSpec());
  CHECK_FALSE(calendar.IsWorkingDay(D("2026-01-01")));  // New Year, a Thursday
  CHECK(calendar.IsWorkingDay(D("2026-01-02")));
  CHECK(calendar.IsWorkingDay(D("2026-01-10")));        // a Saturday worked instead
  CHECK_FALSE(calendar.IsWorkingDay(D("2026-01-17")));  // an ordinary Saturday
  CHECK(calendar.IsWorkingDay(D("2026-02-13")));
  for (Date d = D("2026-02-14"); d <= D("2026-02-22"); d += days{1}) {
    INFO(wf::engine::FormatDate(d));
    CHECK_FALSE(calendar.IsWorkingDay(d));
  }
  CHECK(calendar.IsWorkingDay(D("2026-02-23")));
  CHECK(calendar.NextWorkingDay(D("2026-02-13")) == D("2026-02-23"));
  CHECK(calendar.NextWorkingDay(D("2026-01-09")) == D("2026-01-10"));

  // A make-up day that is also a holiday is a holiday.
  CalendarSpec spec = VietnamSpec();
  spec.holidays.push_back(D("2026-01-10"));
  CHECK_FALSE(Calendar(spec).IsWorkingDay(D("2026-01-10")));
}

TEST_CASE("a weekend can be any set of days", "[engine][calendar]") {
  CalendarSpec spec;
  spec.weekend = {std::chrono::Friday};
  Calendar calendar(spec);
  CHECK_FALSE(calendar.IsWorkingDay(D("2026-11-27")));  // Friday
  CHECK(calendar.IsWorkingDay(D("2026-11-28")));
  CHECK(calendar.IsWorkingDay(D("2026-11-29")));
  CHECK(calendar.CountWorkingDays(D("2026-11-23"), D("2026-11-30")) == 6);
  spec.weekend = {};
  CHECK(Calendar(spec).CountWorkingDays(D("2026-11-23"), D("2026-11-30")) == 7);
}

TEST_CASE("three working days from Friday morning end on Wednesday night",
          "[engine][calendar][deadline]") {
  Calendar calendar(VietnamSpec());
  TimePoint deadline = calendar.AddWorkingDays(At("2026-11-27T10:00:00+07:00"), 3);
  CHECK(calendar.FormatLocal(deadline) == "2026-12-02T23:59:59+07:00");
  CHECK(wf::engine::FormatTimestamp(deadline) == "2026-12-02T16:59:59Z");
}

TEST_CASE("a file received after the cutoff counts from the next working day",
          "[engine][calendar][deadline]") {
  Calendar calendar(VietnamSpec());
  CHECK(calendar.FormatLocal(calendar.AddWorkingDays(At("2026-11-27T16:00:00+07:00"), 3)) ==
        "2026-12-03T23:59:59+07:00");
  // The cutoff itself already counts as after.
  CHECK(calendar.FormatLocal(calendar.AddWorkingDays(At("2026-11-27T15:00:00+07:00"), 3)) ==
        "2026-12-03T23:59:59+07:00");
  CHECK(calendar.FormatLocal(calendar.AddWorkingDays(At("2026-11-27T14:59:59+07:00"), 3)) ==
        "2026-12-02T23:59:59+07:00");
  CHECK(calendar.EffectiveReceiptDay(At("2026-11-27T16:00:00+07:00")) == D("2026-11-30"));

  // Without a cutoff the whole working day counts.
  Calendar no_cutoff;
  CHECK(no_cutoff.FormatLocal(no_cutoff.AddWorkingDays(At("2026-11-27T23:30:00+07:00"), 3)) ==
        "2026-12-02T23:59:59+07:00");
}

TEST_CASE("a file received on a weekend counts from Monday", "[engine][calendar][deadline]") {
  Calendar calendar(VietnamSpec());
  CHECK(calendar.FormatLocal(calendar.AddWorkingDays(At("2026-11-28T09:00:00+07:00"), 1)) ==
        "2026-12-01T23:59:59+07:00");
  CHECK(calendar.FormatLocal(calendar.AddWorkingDays(At("2026-11-29T09:00:00+07:00"), 3)) ==
        "2026-12-03T23:59:59+07:00");
  // Zero days: the end of the effective receipt day; negative counts as zero.
  CHECK(calendar.FormatLocal(calendar.AddWorkingDays(At("2026-11-28T09:00:00+07:00"), 0)) ==
        "2026-11-30T23:59:59+07:00");
  CHECK(calendar.FormatLocal(calendar.AddWorkingDays(At("2026-11-27T09:00:00+07:00"), -2)) ==
        "2026-11-27T23:59:59+07:00");
}

TEST_CASE("working days skip the Tet holidays and the weekends around them",
          "[engine][calendar][deadline]") {
  Calendar calendar(VietnamSpec());
  // Friday before Tet: Mon 23, Tue 24, Wed 25.
  CHECK(calendar.FormatLocal(calendar.AddWorkingDays(At("2026-02-13T10:00:00+07:00"), 3)) ==
        "2026-02-25T23:59:59+07:00");
  // Thursday before Tet: Fri 13, Mon 23, Tue 24.
  CHECK(calendar.FormatLocal(calendar.AddWorkingDays(At("2026-02-12T10:00:00+07:00"), 3)) ==
        "2026-02-24T23:59:59+07:00");
  // Received in the middle of Tet: counts from Monday 23, so one day ends Tuesday 24.
  CHECK(calendar.FormatLocal(calendar.AddWorkingDays(At("2026-02-18T10:00:00+07:00"), 1)) ==
        "2026-02-24T23:59:59+07:00");
  // Friday before Tet after the cutoff: counts from Monday 23.
  CHECK(calendar.FormatLocal(calendar.AddWorkingDays(At("2026-02-13T15:30:00+07:00"), 1)) ==
        "2026-02-24T23:59:59+07:00");
  // Over the new year: Thu 31 Dec + 2 -> (Fri 1 Jan is a holiday) Mon 4, Tue 5.
  CHECK(calendar.FormatLocal(calendar.AddWorkingDays(At("2026-12-31T09:00:00+07:00"), 2)) ==
        "2027-01-05T23:59:59+07:00");
  // From Friday 2026-01-02: January has 21 more working days (Saturday the 10th is worked),
  // February 2..6 and 9..13 make 31, and the 32nd is Monday 23 February, after Tet.
  CHECK(calendar.FormatLocal(calendar.AddWorkingDays(At("2026-01-02T08:00:00+07:00"), 21)) ==
        "2026-01-30T23:59:59+07:00");
  CHECK(calendar.FormatLocal(calendar.AddWorkingDays(At("2026-01-02T08:00:00+07:00"), 31)) ==
        "2026-02-13T23:59:59+07:00");
  CHECK(calendar.FormatLocal(calendar.AddWorkingDays(At("2026-01-02T08:00:00+07:00"), 32)) ==
        "2026-02-23T23:59:59+07:00");
}

TEST_CASE("the local day decides, not the UTC day", "[engine][calendar][deadline]") {
  // Friday 20:00 UTC is already Saturday 03:00 in Hanoi.
  TimePoint received = At("2026-11-27T20:00:00Z");
  Calendar hanoi;
  CHECK(hanoi.LocalDate(received) == D("2026-11-28"));
  CHECK(hanoi.FormatLocal(hanoi.AddWorkingDays(received, 1)) == "2026-12-01T23:59:59+07:00");

  CalendarSpec utc_spec;
  utc_spec.utc_offset_minutes = 0;
  Calendar utc(utc_spec);
  CHECK(wf::engine::FormatTimestamp(utc.AddWorkingDays(received, 1)) == "2026-11-30T23:59:59Z");

  CalendarSpec west_spec;
  west_spec.utc_offset_minutes = -5 * 60;
  west_spec.cutoff_minutes = 15 * 60;
  Calendar west(west_spec);
  // 20:00Z is 15:00 in UTC-05:00: at the cutoff, so it counts from Monday.
  CHECK(west.FormatLocal(west.AddWorkingDays(received, 1)) == "2026-12-01T23:59:59-05:00");
  CHECK(west.FormatLocal(west.AddWorkingDays(received - minutes{1}, 1)) ==
        "2026-11-30T23:59:59-05:00");
}

TEST_CASE("counting working days in a range matches a day-by-day count", "[engine][calendar]") {
  Calendar calendar(VietnamSpec());
  Date start = D("2025-12-20");
  for (int from = 0; from < 60; from += 3) {
    for (int length = 0; length < 90; length += 4) {
      Date first = start + days{from};
      Date last = first + days{length};
      int64_t expected = 0;
      for (Date d = first; d < last; d += days{1}) expected += calendar.IsWorkingDay(d) ? 1 : 0;
      INFO(wf::engine::FormatDate(first) << " .. " << wf::engine::FormatDate(last));
      REQUIRE(calendar.CountWorkingDays(first, last) == expected);
    }
  }
  CHECK(calendar.CountWorkingDays(D("2026-11-30"), D("2026-11-23")) == 0);
  // February 2026: 20 weekdays, of which Tet takes 16..20.
  CHECK(calendar.CountWorkingDays(D("2026-02-01"), D("2026-03-01")) == 15);
}

TEST_CASE("working days between receipt and completion follow the statutory count",
          "[engine][calendar][report]") {
  Calendar calendar(VietnamSpec());
  TimePoint friday = At("2026-11-27T10:00:00+07:00");
  CHECK(calendar.WorkingDaysBetween(friday, At("2026-11-27T14:00:00+07:00")) == 0);
  CHECK(calendar.WorkingDaysBetween(friday, At("2026-11-29T14:00:00+07:00")) == 0);
  CHECK(calendar.WorkingDaysBetween(friday, At("2026-11-30T08:00:00+07:00")) == 1);
  CHECK(calendar.WorkingDaysBetween(friday, At("2026-12-02T16:00:00+07:00")) == 3);
  CHECK(calendar.WorkingDaysBetween(friday, At("2026-12-03T00:00:00+07:00")) == 4);
  CHECK(calendar.WorkingDaysBetween(At("2026-12-02T16:00:00+07:00"), friday) == 0);
  // After the cutoff Monday is the receipt day, not day one.
  CHECK(calendar.WorkingDaysBetween(At("2026-11-27T16:00:00+07:00"),
                                    At("2026-11-30T16:00:00+07:00")) == 0);
  CHECK(calendar.WorkingDaysBetween(At("2026-11-27T16:00:00+07:00"),
                                    At("2026-12-03T16:00:00+07:00")) == 3);
}

TEST_CASE("a deadline of n working days is reached after exactly n working days",
          "[engine][calendar][deadline]") {
  Calendar calendar(VietnamSpec());
  // Every three hours from mid-December to March, across the new year, a make-up Saturday and
  // Tet: the count of a deadline is its n, and the second after it starts day n + 1.
  for (TimePoint received = At("2025-12-20T00:00:00+07:00");
       received < At("2026-03-01T00:00:00+07:00"); received += hours{3}) {
    for (int n = 0; n <= 12; n += 3) {
      TimePoint deadline = calendar.AddWorkingDays(received, n);
      INFO(calendar.FormatLocal(received) << " + " << n);
      REQUIRE(deadline > received);
      REQUIRE(calendar.IsWorkingDay(calendar.LocalDate(deadline)));
      REQUIRE(calendar.WorkingDaysBetween(received, deadline) == n);
      Date next = calendar.LocalDate(deadline) + days{1};
      REQUIRE(calendar.WorkingDaysBetween(received, deadline + seconds{1}) ==
              n + (calendar.IsWorkingDay(next) ? 1 : 0));
    }
  }
}

// --- working time -----------------------------------------------------------------------------

TEST_CASE("working time counts whole local days of working days only",
          "[engine][calendar][time-left]") {
  Calendar calendar(VietnamSpec());
  CHECK(calendar.WorkingTimeBetween(At("2026-11-27T12:00:00+07:00"),
                                    At("2026-11-30T12:00:00+07:00")) == Approx(1.0));
  CHECK(calendar.WorkingTimeBetween(At("2026-11-30T12:00:00+07:00"),
                                    At("2026-11-27T12:00:00+07:00")) == Approx(-1.0));
  CHECK(calendar.WorkingTimeBetween(At("2026-11-28T01:00:00+07:00"),
                                    At("2026-11-29T23:00:00+07:00")) == 0.0);
  CHECK(calendar.WorkingTimeBetween(At("2026-11-30T06:00:00+07:00"),
                                    At("2026-11-30T18:00:00+07:00")) == Approx(0.5));
  CHECK(calendar.WorkingTimeBetween(At("2026-02-13T00:00:00+07:00"),
                                    At("2026-02-24T00:00:00+07:00")) == Approx(2.0));
  CHECK(calendar.WorkingDuration(At("2026-11-27T12:00:00+07:00"),
                                 At("2026-11-30T12:00:00+07:00")) == hours{24});
  CHECK(calendar.WorkingDuration(At("2026-11-30T12:00:00+07:00"),
                                 At("2026-11-27T12:00:00+07:00")) == hours{0});
}

TEST_CASE("time left is in working days and turns negative when overdue",
          "[engine][calendar][time-left]") {
  Calendar calendar(VietnamSpec());
  TimePoint deadline = At("2026-12-02T23:59:59+07:00");  // end of Wednesday
  CHECK(calendar.WorkingDaysLeft(At("2026-12-01T12:00:00+07:00"), deadline) ==
        Approx(1.5).epsilon(1e-4));
  CHECK(calendar.WorkingDaysLeft(At("2026-11-27T12:00:00+07:00"), deadline) ==
        Approx(3.5).epsilon(1e-4));
  CHECK(calendar.WorkingDaysLeft(At("2026-12-03T12:00:00+07:00"), deadline) ==
        Approx(-0.5).epsilon(1e-4));
  // Thursday and Friday overdue; the weekend after them adds nothing.
  CHECK(calendar.WorkingDaysLeft(At("2026-12-06T12:00:00+07:00"), deadline) ==
        Approx(-2.0).epsilon(1e-4));

  CHECK(calendar.DescribeTimeLeft(At("2026-12-01T12:00:00+07:00"), deadline) ==
        "1.5 working days left");
  CHECK(calendar.DescribeTimeLeft(At("2026-12-02T00:00:00+07:00"), deadline) ==
        "1 working day left");
  CHECK(calendar.DescribeTimeLeft(At("2026-11-27T00:00:00+07:00"), deadline) ==
        "4 working days left");
  CHECK(calendar.DescribeTimeLeft(At("2026-12-02T23:59:00+07:00"), deadline) ==
        "less than 0.1 working day left");
  CHECK(calendar.DescribeTimeLeft(At("2026-12-04T12:00:00+07:00"), deadline) ==
        "overdue by 1.5 working days");
  CHECK(calendar.DescribeTimeLeft(At("2026-12-03T06:00:00+07:00"), deadline) ==
        "overdue by 0.3 working days");

  TimePoint friday_night = At("2026-11-27T23:59:59+07:00");
  CHECK(calendar.DescribeTimeLeft(At("2026-11-28T10:00:00+07:00"), friday_night) ==
        "overdue by less than 0.1 working day");
}

TEST_CASE("working time added forward lands inside working days", "[engine][calendar][time-left]") {
  Calendar calendar(VietnamSpec());
  // Half a day from Friday noon closes Friday exactly (the midnight after it).
  CHECK(calendar.FormatLocal(calendar.AddWorkingTime(At("2026-11-27T12:00:00+07:00"), hours{12})) ==
        "2026-11-28T00:00:00+07:00");
  CHECK(calendar.FormatLocal(calendar.AddWorkingTime(At("2026-11-27T12:00:00+07:00"), hours{13})) ==
        "2026-11-30T01:00:00+07:00");
  // From a Saturday, the clock starts on Monday.
  CHECK(calendar.FormatLocal(calendar.AddWorkingTime(At("2026-11-28T12:00:00+07:00"), hours{6})) ==
        "2026-11-30T06:00:00+07:00");
  CHECK(calendar.AddWorkingTime(At("2026-11-28T12:00:00+07:00"), hours{0}) ==
        At("2026-11-28T12:00:00+07:00"));
  CHECK(calendar.AddWorkingTime(At("2026-11-28T12:00:00+07:00"), -hours{5}) ==
        At("2026-11-28T12:00:00+07:00"));
}

TEST_CASE("a pause gives back the working days it took", "[engine][calendar][pause]") {
  Calendar calendar(VietnamSpec());
  TimePoint deadline = At("2026-12-02T23:59:59+07:00");  // end of Wednesday

  // Tuesday 10:00 to Thursday 10:00: two working days back, so the end of Friday.
  CHECK(calendar.FormatLocal(calendar.ExtendForPause(deadline, At("2026-12-01T10:00:00+07:00"),
                                                     At("2026-12-03T10:00:00+07:00"))) ==
        "2026-12-04T23:59:59+07:00");
  // Half a working day: noon less a second on Thursday.
  CHECK(calendar.FormatLocal(calendar.ExtendForPause(deadline, At("2026-12-01T06:00:00+07:00"),
                                                     At("2026-12-01T18:00:00+07:00"))) ==
        "2026-12-03T11:59:59+07:00");
  // A pause over a weekend only changes nothing.
  CHECK(calendar.ExtendForPause(deadline, At("2026-11-28T09:00:00+07:00"),
                                At("2026-11-29T17:00:00+07:00")) == deadline);
  // A pause that never ran changes nothing.
  CHECK(calendar.ExtendForPause(deadline, At("2026-12-01T10:00:00+07:00"),
                                At("2026-12-01T10:00:00+07:00")) == deadline);
  CHECK(calendar.ExtendForPause(deadline, At("2026-12-01T10:00:00+07:00"),
                                At("2026-11-30T10:00:00+07:00")) == deadline);
  // One whole working day from the end of a Friday lands at the end of Monday.
  TimePoint friday = At("2026-11-27T23:59:59+07:00");
  CHECK(calendar.FormatLocal(calendar.ExtendForPause(friday, At("2026-11-24T00:00:00+07:00"),
                                                     At("2026-11-25T00:00:00+07:00"))) ==
        "2026-11-30T23:59:59+07:00");
}

TEST_CASE("a pause across Tet gives back only the working days", "[engine][calendar][pause]") {
  Calendar calendar(VietnamSpec());
  TimePoint deadline = calendar.AddWorkingDays(At("2026-02-10T09:00:00+07:00"), 5);
  CHECK(calendar.FormatLocal(deadline) == "2026-02-24T23:59:59+07:00");
  // Paused Thursday 12 Feb 09:00 (before Tet), resumed Monday 23 Feb 09:00: Thursday 15h,
  // Friday 24h and Monday 9h, two working days.
  TimePoint extended = calendar.ExtendForPause(deadline, At("2026-02-12T09:00:00+07:00"),
                                               At("2026-02-23T09:00:00+07:00"));
  CHECK(calendar.FormatLocal(extended) == "2026-02-26T23:59:59+07:00");
}

TEST_CASE("the working time left is the same after a pause as before it",
          "[engine][calendar][pause]") {
  Calendar calendar(VietnamSpec());
  TimePoint deadline = At("2026-02-24T23:59:59+07:00");
  TimePoint begin = At("2026-02-05T00:00:00+07:00");
  for (TimePoint paused = begin; paused < begin + days{25}; paused += hours{7}) {
    for (auto length : {hours{1}, hours{20}, hours{50}, hours{200}}) {
      TimePoint resumed = paused + length;
      TimePoint extended = calendar.ExtendForPause(deadline, paused, resumed);
      INFO(calendar.FormatLocal(paused) << " for " << length.count() << "h");
      REQUIRE(extended >= deadline);
      REQUIRE(calendar.WorkingDuration(resumed, extended) -
                  calendar.WorkingDuration(extended, resumed) ==
              calendar.WorkingDuration(paused, deadline) -
                  calendar.WorkingDuration(deadline, paused));
    }
  }
}

TEST_CASE("two pauses in a row extend as much as their sum", "[engine][calendar][pause]") {
  Calendar calendar(VietnamSpec());
  TimePoint deadline = At("2026-12-02T23:59:59+07:00");
  TimePoint once =
      calendar.ExtendForPause(calendar.ExtendForPause(deadline, At("2026-11-30T10:00:00+07:00"),
                                                      At("2026-11-30T20:00:00+07:00")),
                              At("2026-12-01T09:00:00+07:00"), At("2026-12-04T11:00:00+07:00"));
  TimePoint other_order =
      calendar.ExtendForPause(calendar.ExtendForPause(deadline, At("2026-12-01T09:00:00+07:00"),
                                                      At("2026-12-04T11:00:00+07:00")),
                              At("2026-11-30T10:00:00+07:00"), At("2026-11-30T20:00:00+07:00"));
  CHECK(once == other_order);
  // 10h + (Tue 15h + Wed + Thu + Fri 11h = 3 days 2h) = 3 days 12h after Wednesday's end.
  CHECK(calendar.FormatLocal(once) == "2026-12-08T11:59:59+07:00");
}

// --- durations --------------------------------------------------------------------------------

TEST_CASE("a duration becomes a deadline on the calendar", "[engine][calendar][deadline]") {
  using wf::workflows::Duration;
  using wf::workflows::DurationUnit;
  Calendar calendar(VietnamSpec());
  TimePoint friday = At("2026-11-27T10:00:00+07:00");
  CHECK(calendar.FormatLocal(calendar.DueAfter(friday, Duration{3, DurationUnit::kWorkingDays})) ==
        "2026-12-02T23:59:59+07:00");
  CHECK(calendar.FormatLocal(calendar.DueAfter(friday, Duration{3, DurationUnit::kDays})) ==
        "2026-11-30T10:00:00+07:00");
  CHECK(calendar.FormatLocal(calendar.DueAfter(friday, Duration{2, DurationUnit::kHours})) ==
        "2026-11-27T12:00:00+07:00");
  CHECK(calendar.FormatLocal(calendar.DueAfter(friday, Duration{90, DurationUnit::kMinutes})) ==
        "2026-11-27T11:30:00+07:00");
  CHECK(calendar.FormatLocal(calendar.DueAfter(friday, Duration{30, DurationUnit::kSeconds})) ==
        "2026-11-27T10:00:30+07:00");
  CHECK(calendar.DueAfter(friday, Duration{0, DurationUnit::kSeconds}) == friday);
  // Absurd amounts are capped instead of overflowing.
  TimePoint far = calendar.DueAfter(friday, Duration{INT64_MAX / 2, DurationUnit::kDays});
  CHECK(far > friday + days{365 * 99});
  CHECK(far < friday + days{366 * 101});
}

// --- hostile input ----------------------------------------------------------------------------

TEST_CASE("extreme times and empty calendars neither overflow nor hang",
          "[engine][calendar][limits]") {
  Calendar calendar(VietnamSpec());
  TimePoint now = At("2026-11-27T10:00:00+07:00");
  CHECK(calendar.WorkingDaysLeft(now, TimePoint::max()) > 10000.0);
  CHECK(calendar.WorkingDaysLeft(now, TimePoint::min()) < -10000.0);
  CHECK(calendar.AddWorkingDays(TimePoint::max(), 1000000) > now);
  CHECK(calendar.AddWorkingTime(now, TimePoint::duration::max()) > now);
  CHECK(calendar.ExtendForPause(now, TimePoint::min(), TimePoint::max()) > now);
  CHECK(calendar.WorkingDaysBetween(TimePoint::min(), TimePoint::max()) > 10000);
  CHECK(wf::engine::FormatTimestamp(TimePoint::max()).rfind("2262-01-01", 0) == 0);
  CHECK(wf::engine::FormatTimestamp(TimePoint::min()) == "1678-01-01T00:00:00Z");
  CHECK_FALSE(wf::engine::ParseTimestamp("2300-01-01T00:00:00Z").has_value());
  CHECK_FALSE(wf::engine::ParseTimestamp("1600-01-01T00:00:00Z").has_value());
  CHECK(wf::engine::ParseTimestamp("2261-12-31T23:59:59Z").has_value());

  // Seven weekend days and no make-up day: nothing is ever worked.
  CalendarSpec never;
  never.weekend = {std::chrono::Monday,   std::chrono::Tuesday, std::chrono::Wednesday,
                   std::chrono::Thursday, std::chrono::Friday,  std::chrono::Saturday,
                   std::chrono::Sunday};
  Calendar idle(never);
  CHECK(idle.CountWorkingDays(D("2026-01-01"), D("2027-01-01")) == 0);
  CHECK(idle.AddWorkingDays(now, 30) > now);
  CHECK(idle.AddWorkingTime(now, hours{48}) > now);
  CHECK(idle.WorkingTimeBetween(now, now + days{30}) == 0.0);
}
