// Where things were written in a YAML source, for diagnostics inside scalars and under JSON
// pointers; and a YAML tree's values as JSON (YamlToJson, declared in loader.hpp).
#pragma once

#include <algorithm>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "workflows/diagnostic.hpp"
#include "workflows/yaml_tree.hpp"

namespace wf::workflows {

// A plain (unquoted) scalar's value as YAML 1.2's core schema reads it: null, a boolean, an
// integer, a float, or else the string itself.
nlohmann::json TypePlainScalar(const std::string& s);
// Whether a plain scalar reads as an integer.
bool LooksLikeInteger(const std::string& s);

// Line and column of byte offsets in a source text.
class SourceMap {
 public:
  explicit SourceMap(std::string_view text) : text_(text) {
    line_starts_.push_back(0);
    for (size_t i = 0; i < text.size(); ++i) {
      if (text[i] == '\n') line_starts_.push_back(i + 1);
    }
  }

  // Byte offset of a 1-based location, or npos when it is outside the text.
  size_t Offset(SourceLocation where) const {
    if (where.line < 1 || static_cast<size_t>(where.line) > line_starts_.size() ||
        where.column < 1) {
      return std::string_view::npos;
    }
    size_t offset = line_starts_[where.line - 1] + where.column - 1;
    return offset <= text_.size() ? offset : std::string_view::npos;
  }

  SourceLocation At(size_t offset) const {
    auto it = std::upper_bound(line_starts_.begin(), line_starts_.end(), offset);
    size_t line = it - line_starts_.begin();
    return {static_cast<int>(line), static_cast<int>(offset - line_starts_[line - 1] + 1)};
  }

  char CharAt(size_t offset) const { return offset < text_.size() ? text_[offset] : '\0'; }
  std::string_view text() const { return text_; }

 private:
  std::string_view text_;
  std::vector<size_t> line_starts_;
};

// Where the byte at `offset` of `node`'s (decoded) scalar text was written. Best effort: walks
// the source from the scalar's first character, counting decoded bytes, so that quotes, simple
// escapes, folded lines and block indentation are accounted for.
SourceLocation LocateInScalar(const SourceMap& map, const YamlNode& node, size_t offset);

// Walks a JSON pointer through a YAML tree and returns where its deepest existing part was
// written: a mapping entry's key, a list's item.
SourceLocation LocatePointer(const YamlNode& root, const std::string& pointer);

}  // namespace wf::workflows
