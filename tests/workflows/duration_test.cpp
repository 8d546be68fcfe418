#include "workflows/duration.hpp"

#include <string>
#include <vector>

#include <catch2/catch.hpp>

namespace wf::workflows {
namespace {

Duration MustParse(std::string_view text) {
  std::string error;
  std::optional<Duration> duration = ParseDuration(text, &error);
  INFO("text: '" << text << "' error: " << error);
  REQUIRE(duration.has_value());
  return *duration;
}

std::string ParseError(std::string_view text) {
  std::string error;
  std::optional<Duration> duration = ParseDuration(text, &error);
  INFO("text: '" << text << "'");
  REQUIRE_FALSE(duration.has_value());
  CHECK_FALSE(error.empty());
  return error;
}

TEST_CASE("every written duration form parses", "[workflows][duration]") {
  struct Case {
    std::string text;
    Duration expected;
  };
  const std::vector<Case> cases = {
      {"30s", {30, DurationUnit::kSeconds}},
      {"5m", {5, DurationUnit::kMinutes}},
      {"2h", {2, DurationUnit::kHours}},
      {"3d", {3, DurationUnit::kDays}},
      {"3 days", {3, DurationUnit::kDays}},
      {"1 day", {1, DurationUnit::kDays}},
      {"5 working days", {5, DurationUnit::kWorkingDays}},
      {"1 working day", {1, DurationUnit::kWorkingDays}},
      {"10 seconds", {10, DurationUnit::kSeconds}},
      {"1 second", {1, DurationUnit::kSeconds}},
      {"5 minutes", {5, DurationUnit::kMinutes}},
      {"1 minute", {1, DurationUnit::kMinutes}},
      {"2 hours", {2, DurationUnit::kHours}},
      {"1 hour", {1, DurationUnit::kHours}},
      {"0s", {0, DurationUnit::kSeconds}},
      {"90 min", {90, DurationUnit::kMinutes}},
      {"15 secs", {15, DurationUnit::kSeconds}},
      {"30 s", {30, DurationUnit::kSeconds}},
      {"  7 days  ", {7, DurationUnit::kDays}},
      {"5  working   days", {5, DurationUnit::kWorkingDays}},
      {"5 Working Days", {5, DurationUnit::kWorkingDays}},
      {"2H", {2, DurationUnit::kHours}},
      {"007s", {7, DurationUnit::kSeconds}},
  };
  for (const Case& c : cases) {
    INFO(c.text);
    CHECK(MustParse(c.text) == c.expected);
  }
}

TEST_CASE("only working days need a calendar", "[workflows][duration]") {
  CHECK(MustParse("5 working days").IsWorkingDays());
  CHECK_FALSE(MustParse("5 days").IsWorkingDays());
  CHECK_FALSE(MustParse("5d").IsWorkingDays());
  CHECK_FALSE(MustParse("5s").IsWorkingDays());
}

TEST_CASE("durations convert to seconds", "[workflows][duration]") {
  CHECK(MustParse("30s").ApproximateSeconds() == 30);
  CHECK(MustParse("5m").ApproximateSeconds() == 300);
  CHECK(MustParse("2h").ApproximateSeconds() == 7200);
  CHECK(MustParse("3 days").ApproximateSeconds() == 259200);
  CHECK(MustParse("1 working day").ApproximateSeconds() == 86400);
  CHECK(MustParse("0s").ApproximateSeconds() == 0);
  CHECK(MustParse("36525 days").ApproximateSeconds() == 36525LL * 86400);
}

TEST_CASE("durations print in their canonical form", "[workflows][duration]") {
  CHECK(MustParse("30 seconds").ToString() == "30s");
  CHECK(MustParse("5 minutes").ToString() == "5m");
  CHECK(MustParse("2 hours").ToString() == "2h");
  CHECK(MustParse("3d").ToString() == "3 days");
  CHECK(MustParse("1d").ToString() == "1 day");
  CHECK(MustParse("1 days").ToString() == "1 day");
  CHECK(MustParse("5 working days").ToString() == "5 working days");
  CHECK(MustParse("1 working day").ToString() == "1 working day");
  CHECK(MustParse("0 days").ToString() == "0 days");
}

TEST_CASE("the canonical form parses back to the same duration", "[workflows][duration]") {
  for (const std::string text : {"30s", "5m", "2h", "3 days", "1 day", "5 working days",
                                 "1 working day", "0s", "36525 days"}) {
    INFO(text);
    Duration d = MustParse(text);
    CHECK(d.ToString() == text);
    CHECK(MustParse(d.ToString()) == d);
  }
}

TEST_CASE("a default duration is zero seconds", "[workflows][duration]") {
  Duration d;
  CHECK(d.amount == 0);
  CHECK(d.unit == DurationUnit::kSeconds);
  CHECK(d.ToString() == "0s");
  CHECK(d == Duration{0, DurationUnit::kSeconds});
  CHECK_FALSE(d == Duration{0, DurationUnit::kMinutes});
}

TEST_CASE("an empty duration is refused", "[workflows][duration]") {
  CHECK(ParseError("").find("empty duration") == 0);
  CHECK(ParseError("   ").find("empty duration") == 0);
}

TEST_CASE("a negative duration is refused", "[workflows][duration]") {
  CHECK(ParseError("-5m") == "duration '-5m' is negative");
  CHECK(ParseError(" -1 day").find("negative") != std::string::npos);
  CHECK(ParseError("+5m").find("without a sign") != std::string::npos);
}

TEST_CASE("a fractional duration is refused", "[workflows][duration]") {
  CHECK(ParseError("1.5h").find("whole number") != std::string::npos);
  CHECK(ParseError("0.5 days").find("whole number") != std::string::npos);
  CHECK(ParseError(".5h").find("whole number") != std::string::npos);
  CHECK(ParseError("1,5h").find("whole number") != std::string::npos);
}

TEST_CASE("a duration without an amount is refused", "[workflows][duration]") {
  CHECK(ParseError("days") == "duration 'days' has no amount; write e.g. 30s, 2h or 3 days");
  CHECK(ParseError("s").find("no amount") != std::string::npos);
  CHECK(ParseError("working days").find("no amount") != std::string::npos);
}

TEST_CASE("a duration without a unit is refused", "[workflows][duration]") {
  CHECK(ParseError("30").find("has no unit") != std::string::npos);
  CHECK(ParseError("30   ").find("has no unit") != std::string::npos);
}

TEST_CASE("an unknown unit is named with the units that exist", "[workflows][duration]") {
  CHECK(ParseError("3 weeks") ==
        "unknown unit 'weeks' in duration '3 weeks'; use s, m, h, days or working days, e.g. "
        "30s, 5m, 2h, 3 days");
  CHECK(ParseError("5 working").find("unknown unit 'working'") == 0);
  CHECK(ParseError("5 business days").find("unknown unit 'business days'") == 0);
  CHECK(ParseError("2y").find("unknown unit 'y'") == 0);
  CHECK(ParseError("5ms").find("unknown unit 'ms'") == 0);
  CHECK(ParseError("5 days later").find("unknown unit 'days later'") == 0);
  CHECK(ParseError("1h30m").find("unknown unit 'h30m'") == 0);
}

TEST_CASE("a duration over 100 years is refused without overflowing", "[workflows][duration]") {
  CHECK(MustParse("36525 days").amount == 36525);
  CHECK(ParseError("36526 days").find("longer than 100 years") != std::string::npos);
  CHECK(ParseError("36526 working days").find("longer than 100 years") != std::string::npos);
  CHECK(MustParse("3155760000s").amount == 3155760000);
  CHECK(ParseError("3155760001s").find("longer than 100 years") != std::string::npos);
  CHECK(ParseError("876601h").find("longer than 100 years") != std::string::npos);
  CHECK(ParseError("9223372036854775808s").find("longer than 100 years") != std::string::npos);
  CHECK(ParseError("99999999999999999999999999999999 days").find("longer than 100 years") !=
        std::string::npos);
}

TEST_CASE("ParseDuration works without an error sink", "[workflows][duration]") {
  CHECK_FALSE(ParseDuration("nonsense").has_value());
  CHECK(ParseDuration("5m") == Duration{5, DurationUnit::kMinutes});
}

}  // namespace
}  // namespace wf::workflows
