// A small lexer for jq code, and the names an expression may not call. Private to
// expression.cpp (and its tests).
#pragma once

#include <cctype>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "workflows/expression.hpp"

namespace wf::workflows::detail {

// A lexer for jq code. It knows exactly enough of jq 1.6's lexical rules (string literals
// with `\(...)` interpolation, `#` comments, brackets, identifiers, `$name`) to find where an
// embedded program ends and which names a program calls. It never judges the syntax: jq does.

struct Opener {
  char bracket;  // '(', '[', '{' or '"'
  size_t offset;
};

struct Name {
  std::string_view text;  // without the `$` of a variable
  size_t offset;          // of the first byte (the `$` for a variable)
  bool variable;
};

class JqLexer {
 public:
  explicit JqLexer(std::string_view text) : text_(text) {}

  // Scans code from `pos` until an unbracketed `closer` ('}' or ')'; '\0' scans to the end).
  // Returns the offset of that closer, text.size() when closer is '\0' and the end is reached,
  // or npos when the text ends inside code that was not closed (then `unclosed()` says where).
  size_t ScanCode(size_t pos, char closer) {
    std::vector<char> brackets;
    std::vector<size_t> bracket_offsets;
    const size_t n = text_.size();
    while (pos < n) {
      const char c = text_[pos];
      if (c == '"') {
        pos = ScanString(pos);
        if (pos == std::string_view::npos) return pos;
        last_significant_ = '"';
        continue;
      }
      if (c == '#') {
        while (pos < n && text_[pos] != '\n') ++pos;
        continue;
      }
      if (c == '(' || c == '[' || c == '{') {
        brackets.push_back(c);
        bracket_offsets.push_back(pos);
        last_significant_ = c;
        ++pos;
        continue;
      }
      if (c == ')' || c == ']' || c == '}') {
        if (brackets.empty()) {
          if (c == closer) return pos;
        } else {
          brackets.pop_back();
          bracket_offsets.pop_back();
        }
        last_significant_ = c;
        ++pos;
        continue;
      }
      if (c == '$') {
        size_t p = pos + 1;
        while (p < n &&
               (text_[p] == ' ' || text_[p] == '\t' || text_[p] == '\n' || text_[p] == '\r')) {
          ++p;
        }
        if (p < n && IsIdentStart(text_[p])) {
          const size_t end = IdentEnd(p);
          names_.push_back({text_.substr(p, end - p), pos, true});
          pos = end;
        } else {
          ++pos;
        }
        last_significant_ = 'a';
        continue;
      }
      if (std::isdigit(static_cast<unsigned char>(c))) {
        pos = NumberEnd(pos);
        last_significant_ = '0';
        continue;
      }
      if (IsIdentStart(c)) {
        const size_t end = IdentEnd(pos);
        const char before = pos > 0 ? text_[pos - 1] : '\0';
        // `.name` is a field and `@name` a format, not a call; `name:` right after `{` or `,`
        // inside an object is a key.
        const bool field_or_format = before == '.' || before == '@';
        const bool object_key = !brackets.empty() && brackets.back() == '{' &&
                                (last_significant_ == '{' || last_significant_ == ',') &&
                                FollowedBySingleColon(end);
        if (!field_or_format && !object_key) {
          names_.push_back({text_.substr(pos, end - pos), pos, false});
        }
        pos = end;
        last_significant_ = 'a';
        continue;
      }
      if (!std::isspace(static_cast<unsigned char>(c))) last_significant_ = c;
      ++pos;
    }
    if (closer == '\0' && brackets.empty()) return n;
    if (!brackets.empty() && !unclosed_)
      unclosed_ = Opener{brackets.back(), bracket_offsets.back()};
    return std::string_view::npos;
  }

  // Scans a string literal whose opening quote is at `pos`. Returns one past its closing quote,
  // or npos when it is not terminated.
  size_t ScanString(size_t pos) {
    const size_t open = pos;
    const size_t n = text_.size();
    ++pos;
    while (pos < n) {
      const char c = text_[pos];
      if (c == '"') return pos + 1;
      if (c == '\\') {
        if (pos + 1 < n && text_[pos + 1] == '(') {
          const size_t close = ScanCode(pos + 2, ')');
          if (close == std::string_view::npos) {
            if (!unclosed_) unclosed_ = Opener{'(', pos + 1};
            return close;
          }
          pos = close + 1;
          continue;
        }
        pos += 2;
        continue;
      }
      ++pos;
    }
    if (!unclosed_) unclosed_ = Opener{'"', open};
    return std::string_view::npos;
  }

  const std::vector<Name>& names() const { return names_; }
  // The innermost opener left open when a scan returned npos.
  const std::optional<Opener>& unclosed() const { return unclosed_; }

 private:
  static bool IsIdentStart(char c) {
    return std::isalpha(static_cast<unsigned char>(c)) || c == '_';
  }
  static bool IsIdentChar(char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
  }

  // jq identifiers may be module-qualified: `a::b`.
  size_t IdentEnd(size_t pos) const {
    const size_t n = text_.size();
    while (true) {
      while (pos < n && IsIdentChar(text_[pos])) ++pos;
      if (pos + 2 < n && text_[pos] == ':' && text_[pos + 1] == ':' &&
          IsIdentStart(text_[pos + 2])) {
        pos += 2;
        continue;
      }
      return pos;
    }
  }

  size_t NumberEnd(size_t pos) const {
    const size_t n = text_.size();
    while (pos < n && (std::isdigit(static_cast<unsigned char>(text_[pos])) || text_[pos] == '.'))
      ++pos;
    if (pos < n && (text_[pos] == 'e' || text_[pos] == 'E')) {
      size_t p = pos + 1;
      if (p < n && (text_[p] == '+' || text_[p] == '-')) ++p;
      if (p < n && std::isdigit(static_cast<unsigned char>(text_[p]))) {
        while (p < n && std::isdigit(static_cast<unsigned char>(text_[p]))) ++p;
        pos = p;
      }
    }
    return pos;
  }

  bool FollowedBySingleColon(size_t pos) const {
    while (pos < text_.size() && std::isspace(static_cast<unsigned char>(text_[pos]))) ++pos;
    return pos < text_.size() && text_[pos] == ':' &&
           (pos + 1 >= text_.size() || text_[pos + 1] != ':');
  }

  std::string_view text_;
  std::vector<Name> names_;
  std::optional<Opener> unclosed_;
  char last_significant_ = '\0';
};

// True, with `error` set to where and why, when `program` calls a builtin that reaches outside the
// case data (stdin, the environment, files, the terminal) or stops the program.
bool FindDeniedName(std::string_view program, ExpressionError* error);

}  // namespace wf::workflows::detail
