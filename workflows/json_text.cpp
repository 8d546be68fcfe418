#include "workflows/json_text.hpp"

#include <array>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

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


// Reads the JSON that wf writes. Every method returns false where the text is not plainly JSON
// (or needs nlohmann's own conversions of a whole text); ParseJson then asks nlohmann, so an error
// reads exactly as nlohmann reports it, and only texts that read cleanly here are read here.
class FastReader {
 public:
  explicit FastReader(std::string_view text) : at_(text.data()), end_(text.data() + text.size()) {}

  bool Read(json& out) {
    SkipSpace();
    if (!Value(out, 0)) return false;
    SkipSpace();
    return at_ == end_;
  }

 private:
  static constexpr int kMaxDepth = 128;

  void SkipSpace() {
    while (at_ != end_ && (*at_ == ' ' || *at_ == '\n' || *at_ == '\r' || *at_ == '\t')) ++at_;
  }

  bool Value(json& out, int depth) {
    if (at_ == end_) return false;
    switch (*at_) {
      case '{': return Object(out, depth + 1);
      case '[': return Array(out, depth + 1);
      case '"': {
        std::string text;
        if (!String(text)) return false;
        out = std::move(text);
        return true;
      }
      case 't': return Literal("true", json(true), out);
      case 'f': return Literal("false", json(false), out);
      case 'n': return Literal("null", json(nullptr), out);
      default: return Number(out);
    }
  }

  // After an opening bracket: `read_item` for each element up to `close`, commas between.
  template <typename ReadItem>
  bool Elements(char close, ReadItem read_item) {
    ++at_;
    SkipSpace();
    if (at_ != end_ && *at_ == close) {
      ++at_;
      return true;
    }
    while (true) {
      if (!read_item()) return false;
      SkipSpace();
      if (at_ == end_) return false;
      if (*at_ == close) {
        ++at_;
        return true;
      }
      if (*at_ != ',') return false;
      ++at_;
      SkipSpace();
    }
  }

  bool Object(json& out, int depth) {
    if (depth > kMaxDepth) return false;
    out = json::object();
    auto& members = out.get_ref<json::object_t&>();
    return Elements('}', [&] {
      if (at_ == end_ || *at_ != '"') return false;
      std::string key;
      if (!String(key)) return false;
      SkipSpace();
      if (at_ == end_ || *at_ != ':') return false;
      ++at_;
      SkipSpace();
      // A repeated key: the last value counts, as with nlohmann.
      return Value(members[std::move(key)], depth);
    });
  }

  bool Array(json& out, int depth) {
    if (depth > kMaxDepth) return false;
    out = json::array();
    auto& items = out.get_ref<json::array_t&>();
    return Elements(']', [&] { return Value(items.emplace_back(), depth); });
  }

  bool Literal(std::string_view word, json value, json& out) {
    if (static_cast<std::size_t>(end_ - at_) < word.size() ||
        std::string_view(at_, word.size()) != word) {
      return false;
    }
    at_ += word.size();
    out = std::move(value);
    return true;
  }

  // -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
  bool Number(json& out) {
    const char* start = at_;
    auto digits = [&] {
      const char* from = at_;
      while (at_ != end_ && *at_ >= '0' && *at_ <= '9') ++at_;
      return at_ != from;
    };
    const bool negative = at_ != end_ && *at_ == '-';
    if (negative) ++at_;
    if (at_ == end_) return false;
    if (*at_ == '0') {
      ++at_;
    } else if (!digits()) {
      return false;
    }
    bool integer = true;
    if (at_ != end_ && *at_ == '.') {
      ++at_;
      if (!digits()) return false;
      integer = false;
    }
    if (at_ != end_ && (*at_ == 'e' || *at_ == 'E')) {
      ++at_;
      if (at_ != end_ && (*at_ == '+' || *at_ == '-')) ++at_;
      if (!digits()) return false;
      integer = false;
    }
    if (integer) {
      if (negative) {
        std::int64_t n = 0;
        if (std::from_chars(start, at_, n).ec == std::errc()) {
          out = n;
          return true;
        }
      } else {
        std::uint64_t n = 0;
        if (std::from_chars(start, at_, n).ec == std::errc()) {
          out = n;
          return true;
        }
      }
    }
    // A float, or an integer too large for 64 bits (a float to nlohmann): its conversion.
    out = json::parse(std::string_view(start, static_cast<std::size_t>(at_ - start)), nullptr,
                      false);
    return !out.is_discarded();
  }

  static int Hex(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  }

  // The four hex digits after "\u", as a number; -1 when they are not.
  int CodeUnit() {
    if (end_ - at_ < 4) return -1;
    int unit = 0;
    for (int i = 0; i < 4; ++i) {
      const int digit = Hex(at_[i]);
      if (digit < 0) return -1;
      unit = unit * 16 + digit;
    }
    at_ += 4;
    return unit;
  }

  static void AppendUtf8(std::string& out, std::uint32_t code) {
    if (code < 0x80) {
      out += static_cast<char>(code);
    } else if (code < 0x800) {
      out += static_cast<char>(0xC0 | (code >> 6));
      out += static_cast<char>(0x80 | (code & 0x3F));
    } else if (code < 0x10000) {
      out += static_cast<char>(0xE0 | (code >> 12));
      out += static_cast<char>(0x80 | ((code >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (code & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (code >> 18));
      out += static_cast<char>(0x80 | ((code >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((code >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (code & 0x3F));
    }
  }

  // After a backslash: one escape, appended to `out`.
  bool Escape(std::string& out) {
    if (at_ == end_) return false;
    const char c = *at_++;
    switch (c) {
      case '"': out += '"'; return true;
      case '\\': out += '\\'; return true;
      case '/': out += '/'; return true;
      case 'b': out += '\b'; return true;
      case 'f': out += '\f'; return true;
      case 'n': out += '\n'; return true;
      case 'r': out += '\r'; return true;
      case 't': out += '\t'; return true;
      case 'u': break;
      default: return false;
    }
    const int unit = CodeUnit();
    if (unit < 0 || (unit >= 0xDC00 && unit <= 0xDFFF)) return false;
    if (unit < 0xD800 || unit > 0xDBFF) {
      AppendUtf8(out, static_cast<std::uint32_t>(unit));
      return true;
    }
    // A high surrogate: its low half must follow.
    if (end_ - at_ < 2 || at_[0] != '\\' || at_[1] != 'u') return false;
    at_ += 2;
    const int low = CodeUnit();
    if (low < 0xDC00 || low > 0xDFFF) return false;
    AppendUtf8(out, 0x10000 + ((static_cast<std::uint32_t>(unit) - 0xD800) << 10) +
                        (static_cast<std::uint32_t>(low) - 0xDC00));
    return true;
  }

  bool String(std::string& out) {
    ++at_;  // the opening quote
    const std::string_view rest(at_, static_cast<std::size_t>(end_ - at_));
    const char* plain_from = at_;
    while (at_ != end_) {
      if (end_ - at_ >= 8) {
        std::uint64_t word = 0;
        std::memcpy(&word, at_, sizeof word);
        if (!NeedsLook(word)) {
          at_ += 8;
          continue;
        }
      }
      const auto byte = static_cast<unsigned char>(*at_);
      if (byte >= 0x80) {
        const std::size_t length = Utf8Length(rest, static_cast<std::size_t>(at_ - rest.data()));
        if (length == 0) return false;
        at_ += length;
      } else if (byte == '"') {
        out.append(plain_from, at_);
        ++at_;
        return true;
      } else if (byte == '\\') {
        out.append(plain_from, at_);
        ++at_;
        if (!Escape(out)) return false;
        plain_from = at_;
      } else if (byte < 0x20) {
        return false;
      } else {
        ++at_;
      }
    }
    return false;
  }

  const char* at_;
  const char* end_;
};

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

json ParseJson(std::string_view text) {
  json out;
  if (FastReader(text).Read(out)) return out;
  return json::parse(text, nullptr, false);
}

}  // namespace wf::workflows
