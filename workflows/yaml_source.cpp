#include "workflows/yaml_source.hpp"

#include <charconv>
#include <cstdlib>
#include <cstring>

#include "workflows/loader.hpp"

namespace wf::workflows {

namespace {

// ---------------------------------------------------------------------------------------------

bool IsOneOf(const std::string& s, std::initializer_list<const char*> words) {
  for (const char* w : words) {
    if (s == w) return true;
  }
  return false;
}

// Hand-written rather than std::regex: libstdc++'s matcher recurses per character and a long
// hostile scalar would exhaust the stack.
bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// Digits from `pos`; returns how many.
size_t SkipDigits(const std::string& s, size_t& pos) {
  size_t start = pos;
  while (pos < s.size() && IsDigit(s[pos])) ++pos;
  return pos - start;
}

// [-+]?[0-9]+
}  // namespace

bool LooksLikeInteger(const std::string& s) {
  size_t pos = (!s.empty() && (s[0] == '-' || s[0] == '+')) ? 1 : 0;
  return SkipDigits(s, pos) > 0 && pos == s.size();
}

// [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?
namespace {

bool LooksLikeFloat(const std::string& s) {
  size_t pos = (!s.empty() && (s[0] == '-' || s[0] == '+')) ? 1 : 0;
  size_t whole = SkipDigits(s, pos);
  size_t fraction = 0;
  if (pos < s.size() && s[pos] == '.') {
    ++pos;
    fraction = SkipDigits(s, pos);
  }
  if (whole == 0 && fraction == 0) return false;
  if (pos < s.size() && (s[pos] == 'e' || s[pos] == 'E')) {
    ++pos;
    if (pos < s.size() && (s[pos] == '-' || s[pos] == '+')) ++pos;
    if (SkipDigits(s, pos) == 0) return false;
  }
  return pos == s.size();
}

}  // namespace

nlohmann::json TypePlainScalar(const std::string& s) {
  if (IsOneOf(s, {"true", "True", "TRUE"})) return true;
  if (IsOneOf(s, {"false", "False", "FALSE"})) return false;
  if (IsOneOf(s, {"null", "Null", "NULL", "~", ""})) return nullptr;
  if (LooksLikeInteger(s)) {
    const char* begin = s.data() + (s[0] == '+' ? 1 : 0);
    int64_t value = 0;
    auto [end, ec] = std::from_chars(begin, s.data() + s.size(), value);
    if (ec == std::errc() && end == s.data() + s.size()) return value;
    // Too large for 64 bits: keep it as a floating-point number like JSON would.
  }
  if (LooksLikeFloat(s)) {
    errno = 0;
    double value = std::strtod(s.c_str(), nullptr);
    if (errno == 0) return value;
  }
  return s;
}


// Where the byte at `offset` of `node`'s (decoded) scalar text was written. Best effort: walks
// the source from the scalar's first character, counting decoded bytes, so that quotes, simple
// escapes, folded lines and block indentation are accounted for.
SourceLocation LocateInScalar(const SourceMap& map, const YamlNode& node, size_t offset) {
  size_t pos = map.Offset(node.where);
  if (pos == std::string_view::npos) return node.where;
  std::string_view src = map.text();
  char first = map.CharAt(pos);
  if (first == '|' || first == '>') {
    // Block scalar: content starts on the next line, below a common indentation.
    size_t line_start = src.find('\n', pos);
    if (line_start == std::string_view::npos) return node.where;
    ++line_start;
    size_t indent = 0;
    while (line_start + indent < src.size() && src[line_start + indent] == ' ') ++indent;
    size_t decoded = 0;
    size_t p = line_start + indent;
    while (p < src.size() && decoded < offset) {
      if (src[p] == '\n') {
        ++p;
        size_t skipped = 0;
        while (p < src.size() && src[p] == ' ' && skipped < indent) {
          ++p;
          ++skipped;
        }
      } else {
        ++p;
      }
      ++decoded;
    }
    return map.At(std::min(p, src.size()));
  }
  char quote = (first == '"' || first == '\'') ? first : '\0';
  size_t p = pos + (quote ? 1 : 0);
  size_t decoded = 0;
  while (p < src.size() && decoded < offset) {
    char c = src[p];
    if (c == '\n') {
      // A line break folds into one space together with the next line's indentation.
      ++p;
      while (p < src.size() && (src[p] == ' ' || src[p] == '\t')) ++p;
      ++decoded;
    } else if (quote == '"' && c == '\\' && p + 1 < src.size()) {
      char e = src[p + 1];
      size_t width = e == 'x' ? 4 : e == 'u' ? 6 : e == 'U' ? 10 : 2;
      p += width;
      decoded += (e == 'u' || e == 'U') ? 2 : 1;
    } else if (quote == '\'' && c == '\'' && p + 1 < src.size() && src[p + 1] == '\'') {
      p += 2;
      ++decoded;
    } else {
      ++p;
      ++decoded;
    }
  }
  return map.At(std::min(p, src.size()));
}

// Walks a JSON pointer through a YAML tree and returns where its deepest existing part was
// written: a mapping entry's key, a list's item.
SourceLocation LocatePointer(const YamlNode& root, const std::string& pointer) {
  const YamlNode* node = &root;
  SourceLocation where = root.where;
  size_t pos = 0;
  while (pos < pointer.size() && pointer[pos] == '/') {
    size_t end = pointer.find('/', pos + 1);
    if (end == std::string::npos) end = pointer.size();
    std::string token = pointer.substr(pos + 1, end - pos - 1);
    std::string unescaped;
    for (size_t i = 0; i < token.size(); ++i) {
      if (token[i] == '~' && i + 1 < token.size() && (token[i + 1] == '0' || token[i + 1] == '1')) {
        unescaped += token[i + 1] == '0' ? '~' : '/';
        ++i;
      } else {
        unescaped += token[i];
      }
    }
    pos = end;
    const YamlNode* next = nullptr;
    if (node->IsMapping()) {
      for (const auto& [key, value] : node->entries) {
        if (key.scalar == unescaped) {
          where = key.where;
          next = &value;
          break;
        }
      }
    } else if (node->IsSequence()) {
      size_t index = 0;
      auto [p, ec] = std::from_chars(unescaped.data(), unescaped.data() + unescaped.size(), index);
      if (ec == std::errc() && p == unescaped.data() + unescaped.size() &&
          index < node->items.size()) {
        next = &node->items[index];
        where = next->where;
      }
    }
    if (next == nullptr) break;
    node = next;
  }
  return where;
}

nlohmann::json YamlToJson(const YamlNode& node) {
  switch (node.kind) {
    case YamlNode::Kind::kNull:
      return nullptr;
    case YamlNode::Kind::kScalar:
      return node.quoted ? nlohmann::json(node.scalar) : TypePlainScalar(node.scalar);
    case YamlNode::Kind::kSequence: {
      nlohmann::json out = nlohmann::json::array();
      for (const YamlNode& item : node.items) out.push_back(YamlToJson(item));
      return out;
    }
    case YamlNode::Kind::kMapping: {
      nlohmann::json out = nlohmann::json::object();
      for (const auto& [key, value] : node.entries) out[key.scalar] = YamlToJson(value);
      return out;
    }
  }
  return nullptr;
}

}  // namespace wf::workflows
