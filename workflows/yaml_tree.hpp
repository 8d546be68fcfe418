#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "workflows/diagnostic.hpp"

namespace wf::workflows {

// One node of a parsed YAML document: our own tree, so that nothing downstream touches
// yaml-cpp's Node (which trusts its input). Owns its children. Not thread-safe to mutate.
struct YamlNode {
  enum class Kind { kNull, kScalar, kSequence, kMapping };

  Kind kind = Kind::kNull;
  SourceLocation where;
  // For scalars: the text; `quoted` is true when it was written '...' or "..." (then `true` or
  // `3` are strings, not a boolean or a number), or as a block scalar (| or >).
  std::string scalar;
  bool quoted = false;
  // True when written in flow style ([...] or {...}).
  bool flow = false;
  // For sequences: the items. For mappings: the entries, in file order (duplicates rejected).
  std::vector<YamlNode> items;
  std::vector<std::pair<YamlNode, YamlNode>> entries;

  // Written out because clang (the fuzz build) cannot check the implicit default constructor
  // while `entries` names the still incomplete YamlNode.
  YamlNode() {}

  bool IsNull() const { return kind == Kind::kNull; }
  bool IsScalar() const { return kind == Kind::kScalar; }
  bool IsSequence() const { return kind == Kind::kSequence; }
  bool IsMapping() const { return kind == Kind::kMapping; }
  // The value under a scalar key of a mapping, or nullptr.
  const YamlNode* Find(std::string_view key) const;
  // A short name of the kind for messages: "a mapping", "a list", "a scalar", "null".
  const char* KindName() const;
};

// Limits that make hostile input safe to parse.
struct YamlLimits {
  size_t max_bytes = 256 * 1024;
  int max_depth = 64;
  size_t max_events = 200000;
  size_t max_aliases = 0;  // aliases (*name) are refused: procedures have no use for them
};

// Parses exactly one YAML document from `text`, reporting every problem into `sink` with its
// line and column: syntax errors, size/depth/event/alias budgets exceeded, more than one
// document, duplicate keys in a mapping, non-scalar keys. Never throws, never recurses deeper
// than `limits.max_depth` frames of yaml-cpp's parser, always terminates.
// Returns the root (a kNull node for an empty document); when `sink` got errors the tree may be
// partial and should only be used for further diagnostics.
YamlNode ParseYaml(std::string_view text, DiagnosticSink& sink, const YamlLimits& limits = {});

}  // namespace wf::workflows
