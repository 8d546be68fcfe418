#include "workflows/duration.hpp"

#include <cctype>
#include <string>

#include "workflows/i18n.hpp"

namespace wf::workflows {
namespace {

constexpr int64_t kSecondsPerDay = 86400;
// 100 years of 365.25 days: the longest duration a definition may write.
constexpr int64_t kMaxSeconds = 36525 * kSecondsPerDay;

int64_t SecondsPerUnit(DurationUnit unit) {
  switch (unit) {
    case DurationUnit::kSeconds:
      return 1;
    case DurationUnit::kMinutes:
      return 60;
    case DurationUnit::kHours:
      return 3600;
    case DurationUnit::kDays:
    case DurationUnit::kWorkingDays:
      return kSecondsPerDay;
  }
  return 1;
}

bool IsSpace(char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; }
bool IsDigit(char c) { return std::isdigit(static_cast<unsigned char>(c)) != 0; }

std::string Lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// The unit words, after lower-casing and collapsing the spaces between words.
std::optional<DurationUnit> UnitOf(const std::string& word) {
  if (word == "s" || word == "sec" || word == "secs" || word == "second" || word == "seconds") {
    return DurationUnit::kSeconds;
  }
  if (word == "m" || word == "min" || word == "mins" || word == "minute" || word == "minutes") {
    return DurationUnit::kMinutes;
  }
  if (word == "h" || word == "hour" || word == "hours") return DurationUnit::kHours;
  if (word == "d" || word == "day" || word == "days") return DurationUnit::kDays;
  if (word == "working day" || word == "working days") return DurationUnit::kWorkingDays;
  return std::nullopt;
}

std::optional<Duration> Fail(std::string* error, std::string message) {
  if (error != nullptr) *error = std::move(message);
  return std::nullopt;
}

}  // namespace

int64_t Duration::ApproximateSeconds() const { return amount * SecondsPerUnit(unit); }

std::string Duration::ToString() const {
  const std::string n = std::to_string(amount);
  switch (unit) {
    case DurationUnit::kSeconds:
      return n + "s";
    case DurationUnit::kMinutes:
      return n + "m";
    case DurationUnit::kHours:
      return n + "h";
    case DurationUnit::kDays:
      return n + (amount == 1 ? " day" : " days");
    case DurationUnit::kWorkingDays:
      return n + (amount == 1 ? " working day" : " working days");
  }
  return n + "s";
}

std::optional<Duration> ParseDuration(std::string_view text, std::string* error) {
  size_t begin = 0;
  size_t end = text.size();
  while (begin < end && IsSpace(text[begin])) ++begin;
  while (end > begin && IsSpace(text[end - 1])) --end;
  const std::string_view s = text.substr(begin, end - begin);
  const std::string quoted = "'" + std::string(s) + "'";
  // The unit words stay English in every language: they are what a definition must write.
  if (s.empty()) {
    return Fail(error, Tr("empty duration; use s, m, h, days or working days, e.g. 30s, 5m, 2h, "
                          "3 days"));
  }
  if (s[0] == '-') return Fail(error, TrFormat("duration {0} is negative", quoted));
  if (s[0] == '+') {
    return Fail(error, TrFormat("duration {0} must be written without a sign", quoted));
  }

  size_t pos = 0;
  const size_t digits_begin = pos;
  // Accumulate with a ceiling well above the limit so the product below cannot overflow.
  int64_t amount = 0;
  bool too_large = false;
  while (pos < s.size() && IsDigit(s[pos])) {
    if (amount > kMaxSeconds) {
      too_large = true;
    } else {
      amount = amount * 10 + (s[pos] - '0');
    }
    ++pos;
  }
  if (pos == digits_begin) {
    if (pos < s.size() && s[pos] == '.') {
      return Fail(error, TrFormat("duration {0} must be a whole number of units", quoted));
    }
    return Fail(error,
                TrFormat("duration {0} has no amount; write e.g. 30s, 2h or 3 days", quoted));
  }
  if (pos < s.size() && (s[pos] == '.' || s[pos] == ',') && pos + 1 < s.size() &&
      IsDigit(s[pos + 1])) {
    return Fail(error, TrFormat("duration {0} must be a whole number of units (write 90m rather "
                                "than 1.5h)",
                                quoted));
  }

  // The unit: one or more words separated by spaces.
  while (pos < s.size() && IsSpace(s[pos])) ++pos;
  if (pos == s.size()) {
    return Fail(error, TrFormat("duration {0} has no unit; use s, m, h, days or working days, "
                                "e.g. 30s, 5m, 2h, 3 days",
                                quoted));
  }
  std::string unit_text;
  bool in_space = false;
  for (; pos < s.size(); ++pos) {
    if (IsSpace(s[pos])) {
      in_space = true;
      continue;
    }
    if (in_space) unit_text += ' ';
    in_space = false;
    unit_text += s[pos];
  }
  std::optional<DurationUnit> unit = UnitOf(Lower(unit_text));
  // Years (a retention period: `retention: 10 years`) are 365 calendar days each.
  if (!unit && (Lower(unit_text) == "year" || Lower(unit_text) == "years")) {
    unit = DurationUnit::kDays;
    if (amount > kMaxSeconds / (365 * SecondsPerUnit(DurationUnit::kDays))) {
      too_large = true;
    } else {
      amount *= 365;
    }
  }
  if (!unit) {
    return Fail(error, TrFormat("unknown unit '{0}' in duration {1}; use s, m, h, days or "
                                "working days, e.g. 30s, 5m, 2h, 3 days",
                                unit_text, quoted));
  }
  const Duration duration{amount, *unit};
  if (too_large || amount > kMaxSeconds / SecondsPerUnit(*unit)) {
    return Fail(error, TrFormat("duration {0} is longer than 100 years", quoted));
  }
  return duration;
}

}  // namespace wf::workflows
