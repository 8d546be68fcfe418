#include "workflows/json_limits.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cstdint>
#include <exception>
#include <optional>
#include <string>
#include <vector>

#include "workflows/i18n.hpp"

namespace wf::workflows {
namespace {

using nlohmann::json;

// Path steps show at most this much of a key, and a path at most this much in all: a message
// must stay readable whatever the keys are.
constexpr std::size_t kShownKeyBytes = 40;
constexpr std::size_t kShownPathBytes = 200;

// Bytes `text` takes between its quotes in dump()'s output, or nullopt when it is not valid
// UTF-8 (dump() throws on that). Overlong forms, surrogates and code points past U+10FFFF are
// invalid, as in the Unicode standard's table 3-7.
std::optional<std::size_t> EscapedSize(std::string_view text) {
  std::size_t out = 0;
  const std::size_t n = text.size();
  for (std::size_t i = 0; i < n;) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x80) {
      if (c == '"' || c == '\\' || c == '\b' || c == '\f' || c == '\n' || c == '\r' || c == '\t') {
        out += 2;
      } else if (c < 0x20) {
        out += 6;  // \u00XX
      } else {
        out += 1;
      }
      ++i;
      continue;
    }
    std::size_t length = 0;
    unsigned char low = 0x80, high = 0xBF;  // the range of the second byte
    if (c >= 0xC2 && c <= 0xDF) {
      length = 2;
    } else if (c == 0xE0) {
      length = 3, low = 0xA0;
    } else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) {
      length = 3;
    } else if (c == 0xED) {
      length = 3, high = 0x9F;
    } else if (c == 0xF0) {
      length = 4, low = 0x90;
    } else if (c >= 0xF1 && c <= 0xF3) {
      length = 4;
    } else if (c == 0xF4) {
      length = 4, high = 0x8F;
    } else {
      return std::nullopt;
    }
    if (n - i < length) return std::nullopt;
    const auto second = static_cast<unsigned char>(text[i + 1]);
    if (second < low || second > high) return std::nullopt;
    for (std::size_t k = 2; k < length; ++k) {
      const auto next = static_cast<unsigned char>(text[i + k]);
      if (next < 0x80 || next > 0xBF) return std::nullopt;
    }
    out += length;
    i += length;
  }
  return out;
}

template <typename T>
std::size_t DecimalSize(T number) {
  std::array<char, 32> buffer;
  auto [end, ec] = std::to_chars(buffer.data(), buffer.data() + buffer.size(), number);
  return ec == std::errc() ? static_cast<std::size_t>(end - buffer.data()) : buffer.size();
}

// A key as a path step shows it: `.name` for identifiers, `["other key"]` otherwise; cut short
// and with bytes that are not printable ASCII shown as '?', so the message is always valid JSON.
std::string ShowKey(std::string_view key) {
  bool identifier =
      !key.empty() && (std::isalpha(static_cast<unsigned char>(key[0])) || key[0] == '_');
  std::string shown;
  for (std::size_t i = 0; i < key.size() && i < kShownKeyBytes; ++i) {
    const auto c = static_cast<unsigned char>(key[i]);
    if (!std::isalnum(c) && c != '_') identifier = false;
    shown += (c >= 0x20 && c < 0x7F && c != '"' && c != '\\') ? static_cast<char>(c) : '?';
  }
  if (key.size() > kShownKeyBytes) {
    shown += "...";
    identifier = false;
  }
  return identifier ? "." + shown : "[\"" + shown + "\"]";
}

// Counts what a JSON value holds as its parts go by, in the order of a SAX parse, and says
// which bound was crossed first. Both the SAX pass over text and the explicit-stack walk of a
// DOM drive it, so text and values are measured alike. The method names are nlohmann's SAX
// interface (json_sax); returning false stops the parse.
class Meter {
 public:
  explicit Meter(const JsonLimits& limits) : limits_(limits) {}

  bool null() { return BeginValue() && AddBytes(4); }
  bool boolean(bool value) { return BeginValue() && AddBytes(value ? 4 : 5); }
  bool number_integer(json::number_integer_t value) {
    return BeginValue() && AddBytes(DecimalSize(value));
  }
  bool number_unsigned(json::number_unsigned_t value) {
    return BeginValue() && AddBytes(DecimalSize(value));
  }
  bool number_float(json::number_float_t, const std::string& text) {
    return BeginValue() && AddBytes(text.size());
  }
  bool string(const std::string& value) { return BeginValue() && AddString(value); }
  bool binary(const json::binary_t&) {
    return Fail(Tr("JSON with binary data, which JSON text cannot hold"));
  }
  bool start_object(std::size_t = 0) { return BeginValue() && Open(true); }
  bool key(const std::string& name) {
    Frame& frame = frames_.back();
    if (frame.count++ > 0) ++size_.bytes;  // the comma
    frame.key = ShowKey(name);
    return AddString(name) && AddBytes(1);  // the colon
  }
  bool end_object() { return Close(); }
  bool start_array(std::size_t = 0) { return BeginValue() && Open(false); }
  bool end_array() { return Close(); }
  template <typename Exception>
  bool parse_error(std::size_t, const std::string&, const Exception&) {
    return false;  // syntax is the parser's to report (see CheckJsonText)
  }

  const Status& failure() const { return failure_; }
  const JsonSize& size() const { return size_; }

 private:
  struct Frame {
    bool object = false;
    std::size_t count = 0;  // members or elements begun so far
    std::string key;        // objects: the current member's key as a path step
  };

  bool BeginValue() {
    if (!frames_.empty() && !frames_.back().object) {
      if (frames_.back().count++ > 0) ++size_.bytes;  // the comma
    }
    if (++size_.values > limits_.max_values) {
      return Fail(TrFormat("JSON with more than {0} values", Count(limits_.max_values)));
    }
    return true;
  }

  bool AddBytes(std::size_t n) {
    size_.bytes += n;
    if (size_.bytes > limits_.max_bytes) {
      return Fail(TrFormat("JSON larger than {0} bytes", Count(limits_.max_bytes)));
    }
    return true;
  }

  bool AddString(std::string_view text) {
    if (text.size() > limits_.max_string_bytes) {
      return Fail(TrFormat("JSON with a string longer than {0} bytes at {1}",
                           Count(limits_.max_string_bytes), Path()));
    }
    std::optional<std::size_t> escaped = EscapedSize(text);
    if (!escaped) {
      return Fail(TrFormat("JSON with a string that is not valid UTF-8 at {0}", Path()));
    }
    return AddBytes(*escaped + 2);
  }

  bool Open(bool object) {
    if (static_cast<int>(frames_.size()) + 1 > limits_.max_depth) {
      return Fail(TrFormat("JSON nested deeper than {0} levels at {1}",
                           i18n::Number(limits_.max_depth), Path()));
    }
    frames_.push_back(Frame{object, 0, {}});
    size_.depth = std::max(size_.depth, static_cast<int>(frames_.size()));
    return AddBytes(2);
  }

  bool Close() {
    if (!frames_.empty()) frames_.pop_back();
    return true;
  }

  // Where the value being measured sits: `$`, `$.a[3]["a key"]`.
  std::string Path() const {
    std::string path = "$";
    for (const Frame& frame : frames_) {
      path += frame.object ? frame.key : "[" + std::to_string(frame.count - 1) + "]";
      if (path.size() > kShownPathBytes) return path.substr(0, kShownPathBytes) + "...";
    }
    return path;
  }

  static std::string Count(std::size_t n) { return i18n::Number(static_cast<long long>(n)); }

  bool Fail(std::string message) {
    failure_ = Status::Invalid(std::move(message));
    return false;
  }

  const JsonLimits& limits_;
  std::vector<Frame> frames_;
  JsonSize size_;
  Status failure_;
};

// Feeds `root` to `meter` depth first with an explicit stack: no recursion however deep the
// value is (a value built in memory may be deeper than any text we would have parsed).
void Walk(const json& root, Meter& meter) {
  struct Open {
    const json* container;
    json::const_iterator next;
  };
  std::vector<Open> stack;
  // Starts one value; a container goes on the stack. False: the meter stopped.
  auto begin = [&](const json& value) {
    switch (value.type()) {
      case json::value_t::object:
        if (!meter.start_object(value.size())) return false;
        stack.push_back({&value, value.cbegin()});
        return true;
      case json::value_t::array:
        if (!meter.start_array(value.size())) return false;
        stack.push_back({&value, value.cbegin()});
        return true;
      case json::value_t::string:
        return meter.string(value.get_ref<const std::string&>());
      case json::value_t::boolean:
        return meter.boolean(value.get<bool>());
      case json::value_t::number_integer:
        return meter.number_integer(value.get<json::number_integer_t>());
      case json::value_t::number_unsigned:
        return meter.number_unsigned(value.get<json::number_unsigned_t>());
      case json::value_t::number_float:
        return meter.number_float(value.get<double>(), value.dump());  // a scalar: no recursion
      case json::value_t::binary:
        return meter.binary(value.get_binary());
      case json::value_t::null:
      case json::value_t::discarded:
        return meter.null();
    }
    return meter.null();
  };
  if (!begin(root)) return;
  while (!stack.empty()) {
    Open& top = stack.back();
    if (top.next == top.container->cend()) {
      top.container->is_object() ? meter.end_object() : meter.end_array();
      stack.pop_back();
      continue;
    }
    auto element = top.next++;
    if (top.container->is_object() && !meter.key(element.key())) return;
    if (!begin(*element)) return;  // may grow `stack`: `top` is not used after this
  }
}

}  // namespace

Result<JsonSize> MeasureJson(const nlohmann::json& value, const JsonLimits& limits) {
  try {
    Meter meter(limits);
    Walk(value, meter);
    if (!meter.failure().ok()) return meter.failure();
    return meter.size();
  } catch (const std::exception& e) {  // std::bad_alloc; nothing else is expected
    return Status::Internal(TrFormat("measuring JSON: {0}", e.what()));
  }
}

Status CheckJson(const nlohmann::json& value, const JsonLimits& limits) {
  auto size = MeasureJson(value, limits);
  return size ? Status::Ok() : size.error();
}

Status CheckJsonText(std::string_view text, const JsonLimits& limits) {
  if (text.size() > limits.max_text_bytes) {
    return Status::Invalid(TrFormat("JSON text larger than {0} bytes",
                                    i18n::Number(static_cast<long long>(limits.max_text_bytes))));
  }
  try {
    Meter meter(limits);
    (void)json::sax_parse(text.begin(), text.end(), &meter);
    return meter.failure();
  } catch (const std::exception& e) {
    return Status::Internal(TrFormat("checking JSON text: {0}", e.what()));
  }
}

Result<nlohmann::json> ParseJsonWithin(std::string_view text, const JsonLimits& limits) {
  if (Status checked = CheckJsonText(text, limits); !checked.ok()) return checked;
  try {
    return json::parse(text.begin(), text.end());
  } catch (const json::parse_error& e) {
    return Status::Invalid(TrFormat("not valid JSON: {0}", e.what()));
  } catch (const std::exception& e) {
    return Status::Internal(TrFormat("parsing JSON: {0}", e.what()));
  }
}

}  // namespace wf::workflows
