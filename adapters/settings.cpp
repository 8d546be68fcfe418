#include "adapters/settings.hpp"

#include <cctype>
#include <cmath>
#include <cstdlib>

#include "workflows/duration.hpp"

namespace wf::adapters {

namespace {

bool IsNameChar(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_'; }

// The length of the well-formed UTF-8 sequence starting at text[i], 0 if there is none (the
// ranges of RFC 3629, so overlong forms and surrogates count as malformed, as nlohmann::json's
// dump does).
std::size_t Utf8SequenceLength(std::string_view text, std::size_t i) {
  auto at = [&](std::size_t k) -> unsigned {
    return i + k < text.size() ? static_cast<unsigned char>(text[i + k]) : 0x100;
  };
  auto in = [](unsigned b, unsigned lo, unsigned hi) { return b >= lo && b <= hi; };
  unsigned b0 = at(0);
  if (b0 < 0x80) return 1;
  if (in(b0, 0xC2, 0xDF)) return in(at(1), 0x80, 0xBF) ? 2 : 0;
  if (b0 >= 0xE0 && b0 <= 0xEF) {
    unsigned lo = b0 == 0xE0 ? 0xA0 : 0x80;
    unsigned hi = b0 == 0xED ? 0x9F : 0xBF;
    return in(at(1), lo, hi) && in(at(2), 0x80, 0xBF) ? 3 : 0;
  }
  if (b0 >= 0xF0 && b0 <= 0xF4) {
    unsigned lo = b0 == 0xF0 ? 0x90 : 0x80;
    unsigned hi = b0 == 0xF4 ? 0x8F : 0xBF;
    return in(at(1), lo, hi) && in(at(2), 0x80, 0xBF) && in(at(3), 0x80, 0xBF) ? 4 : 0;
  }
  return 0;
}

}  // namespace

Result<std::string> SubstituteEnv(std::string_view text, std::string_view where) {
  static constexpr std::string_view kOpen = "${env.";
  std::string out;
  std::size_t pos = 0;
  for (;;) {
    std::size_t start = text.find(kOpen, pos);
    if (start == std::string_view::npos) break;
    out.append(text.substr(pos, start - pos));
    std::size_t name_begin = start + kOpen.size();
    std::size_t close = text.find('}', name_begin);
    if (close == std::string_view::npos) {
      return Status::Invalid(std::string(where) + ": `${env.` without a closing `}`");
    }
    std::string name(text.substr(name_begin, close - name_begin));
    bool valid = !name.empty() && !std::isdigit(static_cast<unsigned char>(name[0]));
    for (char c : name) valid = valid && IsNameChar(c);
    if (!valid) {
      return Status::Invalid(std::string(where) + ": `${env." + name +
                             "}` is not an environment variable name (letters, digits, _)");
    }
    const char* value = std::getenv(name.c_str());
    if (value == nullptr) {
      return Status::Invalid(std::string(where) + ": the environment variable " + name +
                             " (`${env." + name + "}`) is not set");
    }
    out.append(value);
    pos = close + 1;
  }
  out.append(text.substr(pos));
  return out;
}

Result<std::chrono::milliseconds> ParseDurationSetting(const nlohmann::json& value,
                                                       std::string_view where) {
  if (value.is_number()) {
    double seconds = value.get<double>();
    if (!std::isfinite(seconds) || seconds <= 0 || seconds > 100.0 * 365 * 86400) {
      return Status::Invalid(std::string(where) + ": expected a positive duration like 5s, got " +
                             value.dump());
    }
    return std::chrono::milliseconds(static_cast<int64_t>(std::llround(seconds * 1000)));
  }
  if (!value.is_string()) {
    return Status::Invalid(std::string(where) + ": expected a duration like 5s, got " +
                           value.dump());
  }
  std::string error;
  auto duration = workflows::ParseDuration(value.get<std::string>(), &error);
  if (!duration) return Status::Invalid(std::string(where) + ": " + error);
  if (duration->IsWorkingDays()) {
    return Status::Invalid(std::string(where) +
                           ": working days need a calendar; write the time in s, m, h or days");
  }
  if (duration->ApproximateSeconds() <= 0) {
    return Status::Invalid(std::string(where) + ": must be longer than 0s");
  }
  return std::chrono::milliseconds(duration->ApproximateSeconds() * 1000);
}

std::chrono::milliseconds EffectiveTimeout(std::chrono::milliseconds step_timeout,
                                           std::optional<std::chrono::milliseconds> department) {
  if (step_timeout.count() <= 0) step_timeout = std::chrono::milliseconds(30000);
  if (department && *department < step_timeout) return *department;
  return step_timeout;
}

std::string DescribeDuration(std::chrono::milliseconds duration) {
  if (duration.count() % 1000 == 0) return std::to_string(duration.count() / 1000) + "s";
  return std::to_string(duration.count()) + "ms";
}

std::string Excerpt(std::string_view text, std::size_t max_bytes, bool tail) {
  bool cut = text.size() > max_bytes;
  if (cut) text = tail ? text.substr(text.size() - max_bytes) : text.substr(0, max_bytes);
  std::string out;
  out.reserve(text.size() + 3);
  std::size_t i = 0;
  if (cut && tail) {
    // Skip the continuation bytes of a character the cut split.
    while (i < text.size() && (static_cast<unsigned char>(text[i]) & 0xC0) == 0x80) ++i;
  }
  while (i < text.size()) {
    std::size_t n = Utf8SequenceLength(text, i);
    if (n == 0) {
      // A character split by a head cut is dropped, any other malformed byte shown as '?'.
      if (cut && !tail && text.size() - i < 4 &&
          (static_cast<unsigned char>(text[i]) & 0xC0) == 0xC0) {
        break;
      }
      out.push_back('?');
      ++i;
      continue;
    }
    char c = text[i];
    if (n == 1 && static_cast<unsigned char>(c) < 0x20 && c != '\n' && c != '\t') c = '?';
    if (n == 1 && c == 0x7F) c = '?';
    if (n == 1) {
      out.push_back(c);
    } else {
      out.append(text.substr(i, n));
    }
    i += n;
  }
  auto is_space = [](char ch) { return ch == ' ' || ch == '\n' || ch == '\t' || ch == '\r'; };
  std::size_t begin = 0;
  while (begin < out.size() && is_space(out[begin])) ++begin;
  std::size_t end = out.size();
  while (end > begin && is_space(out[end - 1])) --end;
  out = out.substr(begin, end - begin);
  if (cut) out = tail ? "..." + out : out + "...";
  return out;
}

std::string CallLabel(std::string_view department, std::string_view operation) {
  std::string label(department);
  if (!operation.empty()) {
    label += ' ';
    label += operation;
  }
  return label;
}

}  // namespace wf::adapters
