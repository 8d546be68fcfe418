#include "workflows/json_text.hpp"

#include <array>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace wf::workflows {

namespace {

using json = nlohmann::json;

// The length of the well-formed UTF-8 sequence at text[i] (Unicode Table 3-7: no overlong forms,
// no surrogates, nothing above U+10FFFF), or 0 when it is not one. This is exactly what
// nlohmann's decoder accepts; anything else is left to nlohmann and its error handler.
std::size_t Utf8Length(std::string_view text, std::size_t i) {
  auto at = [&](std::size_t k) -> unsigned {
    return i + k < text.size() ? static_cast<unsigned char>(text[i + k]) : 0u;
  };
  auto continuation = [&](std::size_t k) {
    unsigned byte = at(k);
    return byte >= 0x80 && byte <= 0xBF;
  };
  const unsigned lead = at(0);
  if (lead >= 0xC2 && lead <= 0xDF) return continuation(1) ? 2 : 0;
  if (lead >= 0xE0 && lead <= 0xEF) {
    unsigned second = at(1);
    bool ok = lead == 0xE0   ? (second >= 0xA0 && second <= 0xBF)
              : lead == 0xED ? (second >= 0x80 && second <= 0x9F)
                             : (second >= 0x80 && second <= 0xBF);
    return ok && continuation(2) ? 3 : 0;
  }
  if (lead >= 0xF0 && lead <= 0xF4) {
    unsigned second = at(1);
    bool ok = lead == 0xF0   ? (second >= 0x90 && second <= 0xBF)
              : lead == 0xF4 ? (second >= 0x80 && second <= 0x8F)
                             : (second >= 0x80 && second <= 0xBF);
    return ok && continuation(2) && continuation(3) ? 4 : 0;
  }
  return 0;
}

// Appends `text` quoted and escaped as nlohmann does with ensure_ascii off: the short escapes for
// \b \t \n \f \r " and \, \u00xx (lower-case hex) for the other control characters, everything
// else as it is. False (and nothing appended) when the text is not valid UTF-8.
// Whether any of the 8 bytes in `word` needs a look: a control character, '"', '\\' or a byte
// of a multi-byte character (the classic "has a byte less than n" bit tricks).
bool NeedsLook(std::uint64_t word) {
  constexpr std::uint64_t kOnes = 0x0101010101010101ULL;
  constexpr std::uint64_t kHigh = 0x8080808080808080ULL;
  auto has_zero = [](std::uint64_t x) { return (x - kOnes) & ~x & kHigh; };
  const std::uint64_t control = (word - kOnes * 0x20) & ~word & kHigh;
  const std::uint64_t quote = has_zero(word ^ (kOnes * '"'));
  const std::uint64_t backslash = has_zero(word ^ (kOnes * '\\'));
  return ((word & kHigh) | control | quote | backslash) != 0;
}

bool AppendString(std::string& out, std::string_view text) {
  const std::size_t start = out.size();
  out += '"';
  std::size_t plain_from = 0;
  auto flush = [&](std::size_t until) { out.append(text.data() + plain_from, until - plain_from); };
  for (std::size_t i = 0; i < text.size();) {
    // Eight plain bytes at a time: most of wf's strings are ids, names of steps and base64.
    if (i + 8 <= text.size()) {
      std::uint64_t word = 0;
      std::memcpy(&word, text.data() + i, sizeof word);
      if (!NeedsLook(word)) {
        i += 8;
        continue;
      }
    }
    const auto byte = static_cast<unsigned char>(text[i]);
    if (byte >= 0x80) {
      std::size_t length = Utf8Length(text, i);
      if (length == 0) {
        out.resize(start);
        return false;
      }
      i += length;
      continue;
    }
    if (byte >= 0x20 && byte != '"' && byte != '\\') {
      ++i;
      continue;
    }
    flush(i);
    switch (byte) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\t': out += "\\t"; break;
      case '\n': out += "\\n"; break;
      case '\f': out += "\\f"; break;
      case '\r': out += "\\r"; break;
      default: {
        static constexpr char kHex[] = "0123456789abcdef";
        out += "\\u00";
        out += kHex[byte >> 4];
        out += kHex[byte & 0xF];
      }
    }
    plain_from = ++i;
  }
  flush(text.size());
  out += '"';
  return true;
}

template <typename Integer>
void AppendInteger(std::string& out, Integer n) {
  std::array<char, 24> digits{};
  out.append(digits.data(), std::to_chars(digits.data(), digits.data() + digits.size(), n).ptr);
}

void Append(std::string& out, const json& value, json::error_handler_t handler) {
  switch (value.type()) {
    case json::value_t::object: {
      out += '{';
      bool first = true;
      for (const auto& [key, member] : value.get_ref<const json::object_t&>()) {
        if (!first) out += ',';
        first = false;
        AppendJsonString(out, key, handler);
        out += ':';
        Append(out, member, handler);
      }
      out += '}';
      return;
    }
    case json::value_t::array: {
      out += '[';
      bool first = true;
      for (const json& item : value) {
        if (!first) out += ',';
        first = false;
        Append(out, item, handler);
      }
      out += ']';
      return;
    }
    case json::value_t::string:
      if (!AppendString(out, value.get_ref<const std::string&>())) {
        out += value.dump(-1, ' ', false, handler);
      }
      return;
    case json::value_t::boolean:
      out += value.get<bool>() ? "true" : "false";
      return;
    case json::value_t::null:
      out += "null";
      return;
    case json::value_t::number_integer:
      AppendInteger(out, value.get<std::int64_t>());
      return;
    case json::value_t::number_unsigned:
      AppendInteger(out, value.get<std::uint64_t>());
      return;
    default:  // floats, binary values, discarded values: nlohmann's own text
      out += value.dump(-1, ' ', false, handler);
      return;
  }
}

}  // namespace

void AppendJsonString(std::string& out, std::string_view text, json::error_handler_t handler) {
  if (!AppendString(out, text)) out += json(std::string(text)).dump(-1, ' ', false, handler);
}

void AppendJson(std::string& out, const json& value, json::error_handler_t handler) {
  Append(out, value, handler);
}

std::string DumpJson(const json& value, json::error_handler_t handler) {
  std::string out;
  Append(out, value, handler);
  return out;
}

}  // namespace wf::workflows
