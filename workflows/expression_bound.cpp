// The static check behind Expression::bounded(): which jq programs may run in the engine's own
// thread. See the contract in expression.hpp.
//
// Why the accepted subset is bounded: without pipes, variables, definitions, reduce/foreach and
// iteration, every sub-expression is evaluated against the program's input itself (function
// arguments and `if`/`//`/`select` branches see the same `.`), or indexes into a value built that
// way. Without generators (commas only separate the elements of a construction, no `.[]`, no
// `..`, no generating builtin), each sub-expression produces at most one output, so each runs at
// most once. A built value is made of at most (program length) leaves, each no bigger than the
// input (`+` concatenates two of them, `tostring`/`tojson` escape one: a constant factor), and
// every accepted builtin costs about linear time in its argument. So the whole evaluation costs
// about (program length) x (input size) in time and memory.
#include <algorithm>
#include <cctype>
#include <string_view>
#include <vector>

#include "workflows/expression.hpp"

namespace wf::workflows {
namespace {

// Longer programs go to the workers: the bound above grows with the program.
constexpr size_t kMaxBoundedProgramBytes = 1024;

constexpr std::string_view kKeywords[] = {"if",  "then", "elif", "else",
                                          "and", "or",   "try",  "catch"};

constexpr std::string_view kBoundedBuiltins[] = {"length",       "utf8bytelength",
                                                 "not",          "type",
                                                 "keys",         "has",
                                                 "in",           "tostring",
                                                 "tojson",       "ascii_downcase",
                                                 "ascii_upcase", "ltrimstr",
                                                 "rtrimstr",     "startswith",
                                                 "endswith",     "select",
                                                 "empty",        "error",
                                                 "tonumber",     "floor",
                                                 "sqrt",         "values",
                                                 "nulls",        "strings",
                                                 "numbers",      "booleans",
                                                 "arrays",       "objects",
                                                 "scalars",      "iterables",
                                                 "null",         "true",
                                                 "false",        "end"};

bool Contains(const std::string_view* begin, const std::string_view* end, std::string_view name) {
  return std::find(begin, end, name) != end;
}

bool IsIdentStart(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_'; }
bool IsIdentChar(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

class BoundScanner {
 public:
  explicit BoundScanner(std::string_view text) : text_(text) {}

  bool Accept() {
    if (text_.size() > kMaxBoundedProgramBytes) return false;
    while (pos_ < text_.size()) {
      if (!Step()) return false;
    }
    return open_.empty();
  }

 private:
  struct Open {
    char bracket;       // '(', '[' or '{'
    bool construction;  // '[': builds an array (else indexes); '{': always
  };

  // After a value (a path, a literal, a closing bracket), `[` indexes; after an operator or an
  // opening bracket, it builds an array.
  bool AfterValue() const { return last_ == 'v'; }

  char Peek(size_t ahead = 0) const {
    return pos_ + ahead < text_.size() ? text_[pos_ + ahead] : '\0';
  }

  char NextSignificant(size_t from) const {
    while (from < text_.size() && std::isspace(static_cast<unsigned char>(text_[from]))) ++from;
    return from < text_.size() ? text_[from] : '\0';
  }

  // A string literal at pos_ (its opening quote); interpolation is refused.
  bool String() {
    ++pos_;
    while (pos_ < text_.size()) {
      const char c = text_[pos_];
      if (c == '"') {
        ++pos_;
        last_ = 'v';
        return true;
      }
      if (c == '\\') {
        if (Peek(1) == '(') return false;
        pos_ += 2;
        continue;
      }
      ++pos_;
    }
    return false;
  }

  void Number() {
    while (pos_ < text_.size() &&
           (std::isdigit(static_cast<unsigned char>(text_[pos_])) || text_[pos_] == '.')) {
      ++pos_;
    }
    if (Peek() == 'e' || Peek() == 'E') {
      size_t p = pos_ + 1;
      if (p < text_.size() && (text_[p] == '+' || text_[p] == '-')) ++p;
      while (p < text_.size() && std::isdigit(static_cast<unsigned char>(text_[p]))) ++p;
      pos_ = p;
    }
    last_ = 'v';
  }

  bool Identifier() {
    const size_t begin = pos_;
    while (pos_ < text_.size() && IsIdentChar(text_[pos_])) ++pos_;
    if (Peek() == ':' && Peek(1) == ':') return false;  // a module-qualified name
    const std::string_view name = text_.substr(begin, pos_ - begin);
    // An object key: `{name: ...}` or the shorthand `{name}`.
    if (!open_.empty() && open_.back().bracket == '{' && (last_ == '{' || last_ == ',')) {
      const char next = NextSignificant(pos_);
      if (next == ':' || next == ',' || next == '}') {
        last_ = 'k';
        return true;
      }
    }
    if (Contains(std::begin(kKeywords), std::end(kKeywords), name)) {
      last_ = 'o';
      return true;
    }
    if (Contains(std::begin(kBoundedBuiltins), std::end(kBoundedBuiltins), name)) {
      last_ = 'v';
      return true;
    }
    return false;
  }

  bool Close(char bracket) {
    if (open_.empty() || open_.back().bracket != bracket) return false;
    open_.pop_back();
    ++pos_;
    last_ = 'v';
    return true;
  }

  bool Step() {
    const char c = text_[pos_];
    if (std::isspace(static_cast<unsigned char>(c))) {
      ++pos_;
      return true;
    }
    if (c == '#') {
      while (pos_ < text_.size() && text_[pos_] != '\n') ++pos_;
      return true;
    }
    if (c == '"') return String();
    if (std::isdigit(static_cast<unsigned char>(c))) {
      Number();
      return true;
    }
    if (c == '.') {
      const char next = Peek(1);
      if (next == '.') return false;  // `..` recurses
      if (std::isdigit(static_cast<unsigned char>(next))) {
        Number();
        return true;
      }
      ++pos_;
      if (IsIdentStart(Peek())) {
        while (pos_ < text_.size() && IsIdentChar(text_[pos_])) ++pos_;
      } else if (Peek() == '"') {
        return String();
      }
      last_ = 'v';
      return true;
    }
    if (IsIdentStart(c)) return Identifier();
    switch (c) {
      case '[': {
        const bool construction = !AfterValue();
        if (!construction && NextSignificant(pos_ + 1) == ']') return false;  // `.[]` iterates
        open_.push_back({'[', construction});
        ++pos_;
        last_ = 'o';
        return true;
      }
      case '{':
        open_.push_back({'{', true});
        ++pos_;
        last_ = '{';
        return true;
      case '(':
        open_.push_back({'(', false});
        ++pos_;
        last_ = 'o';
        return true;
      case ')':
      case ']':
      case '}':
        return Close(c == ')' ? '(' : c == ']' ? '[' : '{');
      case ',':
        // Only as the separator of a construction; anywhere else it generates outputs.
        if (open_.empty() || !open_.back().construction) return false;
        ++pos_;
        last_ = ',';
        return true;
      case ';':  // between a builtin's arguments
        if (open_.empty() || open_.back().bracket != '(') return false;
        ++pos_;
        last_ = 'o';
        return true;
      case ':':  // an object member or a slice
        if (open_.empty() || open_.back().bracket == '(') return false;
        ++pos_;
        last_ = 'o';
        return true;
      case '?':
        ++pos_;
        last_ = 'v';
        return true;
      case '+':
        if (Peek(1) == '=') return false;
        ++pos_;
        last_ = 'o';
        return true;
      case '/':
        if (Peek(1) != '/' || Peek(2) == '=') return false;  // only the alternative `//`
        pos_ += 2;
        last_ = 'o';
        return true;
      case '=':
      case '!':
        if (Peek(1) != '=') return false;  // assignment
        pos_ += 2;
        last_ = 'o';
        return true;
      case '<':
      case '>':
        pos_ += Peek(1) == '=' ? 2 : 1;
        last_ = 'o';
        return true;
      default:
        return false;  // `|`, `*`, `-`, `%`, `$`, `@` and anything unknown
    }
  }

  std::string_view text_;
  size_t pos_ = 0;
  std::vector<Open> open_;
  char last_ = 'o';  // 'v' after a value, 'k' after a key, '{' or ',' as such, 'o' otherwise
};

}  // namespace

bool IsProvablyBounded(std::string_view program) { return BoundScanner(program).Accept(); }

}  // namespace wf::workflows
