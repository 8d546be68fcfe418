#pragma once

// Bounds on every JSON value that enters the engine (DESIGN.md decision 12, "hostile input is
// normal input"): case data at `wf start`, form values, signal data, sub-case input and every
// department's answer. nlohmann::json parses iteratively, but copying and dumping a value recurse
// once per level, so a 1 MB answer of `[[[[...` (500k levels) would overflow the stack the
// first time the engine copied it. Every door therefore checks first, without recursion:
// text with a SAX pass before any DOM exists (CheckJsonText, ParseJsonWithin), a value that
// already exists with an explicit stack (CheckJson). The README's "Bounds" says why each value.

#include <cstddef>
#include <string_view>

#include <nlohmann/json.hpp>

#include "workflows/status.hpp"

namespace wf::workflows {

// Containers nested inside each other: `{}` is 1 level, `{"a": [1]}` 2. Real case data is a
// few levels deep; 32 leaves room for sub-case results wrapped in a parent's data, and keeps
// every recursive walk (dump, copy, jq, schema validation) a few KB of stack.
inline constexpr int kMaxJsonDepth = 32;
// The compact serialization (what the store writes): case data is one row, written again on
// every step and copied into history; 1 MiB keeps a step's transaction small.
inline constexpr std::size_t kMaxJsonBytes = std::size_t{1} << 20;
// Scalars, arrays and objects counted together: memory of one value (an object node costs far
// more than its text), and the time of converting it for jq on every expression.
inline constexpr std::size_t kMaxJsonValues = std::size_t{1} << 17;
// One string or key: a value that large is a document, which belongs in the department's own
// system (the case keeps its reference); a quarter of the case data budget.
inline constexpr std::size_t kMaxJsonStringBytes = std::size_t{256} << 10;
// Text read before parsing, whitespace included (pretty-printed input is about twice compact).
inline constexpr std::size_t kMaxJsonTextBytes = 4 * kMaxJsonBytes;

struct JsonLimits {
  int max_depth = kMaxJsonDepth;
  std::size_t max_bytes = kMaxJsonBytes;
  std::size_t max_values = kMaxJsonValues;
  std::size_t max_string_bytes = kMaxJsonStringBytes;
  std::size_t max_text_bytes = kMaxJsonTextBytes;
};

// How big a value is, measured as CheckJson measures it.
struct JsonSize {
  std::size_t bytes = 0;   // of its compact serialization, as dump() writes it
  std::size_t values = 0;  // scalars, arrays and objects, the value itself included
  int depth = 0;           // 0 for a scalar, 1 for `[]` or `{}`, ...
};

// Measures `value` without recursion and stops at the first bound it crosses: kInvalid whose
// message reads after a subject ("department 'x' answered " + message):
//   JSON nested deeper than 32 levels at $.a[0]
//   JSON larger than 1048576 bytes
//   JSON with more than 131072 values
//   JSON with a string longer than 262144 bytes at $.scan
//   JSON with a string that is not valid UTF-8 at $.name     (dump() would throw on it)
// Keys count as strings. Thread-safe; does not throw.
Result<JsonSize> MeasureJson(const nlohmann::json& value, const JsonLimits& limits = {});
// MeasureJson without the size.
Status CheckJson(const nlohmann::json& value, const JsonLimits& limits = {});

// Checks JSON text against the same bounds with one SAX pass, before any DOM is built, and
// aborts at the first bound crossed (a 500k-level `[[[[` stops at level 33). Text over
// `max_text_bytes` is refused unread ("JSON text larger than N bytes"). Syntax errors are not
// reported here: the parse that follows finds them at the same place (where, so far, the text was
// within bounds). Thread-safe; does not throw.
Status CheckJsonText(std::string_view text, const JsonLimits& limits = {});

// CheckJsonText, then the DOM. kInvalid with CheckJsonText's message, or "not valid JSON: ..."
// with the parser's position. Thread-safe; does not throw.
Result<nlohmann::json> ParseJsonWithin(std::string_view text, const JsonLimits& limits = {});

}  // namespace wf::workflows
