#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace re2 {
class RE2;
}

namespace wf::workflows {

// The input-schema language: a documented subset of JSON Schema. Keywords: type (string,
// number, integer, boolean, object, array, null, or a list of them), required, properties,
// additionalProperties (boolean), items, enum, pattern (RE2 syntax: linear time), minimum, maximum,
// minLength, maxLength, minItems, maxItems, format (only "date": YYYY-MM-DD, a real date),
// description, title. Anything else is an error when the procedure loads.

// One way a schema itself is malformed: `pointer` is the JSON pointer inside the schema
// (e.g. "/properties/mother/pattern").
struct SchemaProblem {
  std::string pointer;
  std::string message;
};

// Checks that `schema` is a well-formed schema in the subset above (known keywords, right
// types, patterns that compile, min <= max). Returns every problem found, each at the pointer of
// the offending keyword (or of the schema itself when it is not a mapping). Also refused: a
// pattern over 1000 characters or that RE2 cannot compile (backreferences, lookaround: RE2
// matches in linear time and has neither; the message says so), nesting over 64 levels, a `required` name that
// `additionalProperties: false` forbids. An unknown keyword near a known one gets a "did you
// mean". Thread-safe; does not throw.
std::vector<SchemaProblem> CheckSchema(const nlohmann::json& schema);

// One way data fails a schema: `path` is where in the data, written like `$.mother.citizen_id`
// or `$.children[2].name`.
struct SchemaViolation {
  std::string path;
  std::string message;
};

// Validates `data` against a schema that passed CheckSchema. Returns every violation found,
// in document order: for an object, its missing required properties first (in the order of
// `required`), then its members in key order. Messages are written for clerks, e.g.
//   $.mother.citizen_id: does not match ^[0-9]{12}$
//   $.child: required property 'birth_date' is missing
//   $.age: expected integer, got string
// Semantics: `integer` accepts JSON integers only (3, not 3.0); `number` accepts both. A value of
// the wrong type gets only the type violation. `pattern` searches (anchor it with ^...$).
// Lengths count Unicode code points. `format: date` needs YYYY-MM-DD naming a real day of the
// Gregorian calendar (leap years included). `enum` compares JSON values (1 equals 1.0).
// Members not in `properties` are allowed unless `additionalProperties` is false. Keys that are
// not identifiers are written `$["a key"]`.
// Patterns are matched by RE2 (linear in the subject, whatever the pattern: `^(a+)+$` cannot
// backtrack), taken from `patterns` when given (compiled once, when the procedure loaded) and
// compiled for this call otherwise.
// Limits against hostile data: strings over 4096 bytes are not matched against a pattern (a
// violation says so; RE2's worst case is subject x pattern length, kept small); after 100
// violations one last violation at `$` says more were left out. A malformed schema never
// crashes: what cannot be understood is skipped. Thread-safe; does not throw.
class SchemaPatterns;
std::vector<SchemaViolation> ValidateData(const nlohmann::json& schema, const nlohmann::json& data,
                                          const SchemaPatterns* patterns = nullptr);

// The `pattern`s of one or more schemas, compiled once with RE2. Immutable after Add; matching
// is safe from many threads at once (RE2 objects are). Patterns that do not compile are left
// out: CheckSchema reports them, and ValidateData says it could not check them.
class SchemaPatterns {
 public:
  SchemaPatterns();
  ~SchemaPatterns();
  SchemaPatterns(const SchemaPatterns&) = delete;
  SchemaPatterns& operator=(const SchemaPatterns&) = delete;

  // Compiles every pattern of `schema` (nesting up to CheckSchema's 64 levels) not compiled yet.
  void Add(const nlohmann::json& schema);
  // The compiled `pattern`, or nullptr when it was not added or does not compile.
  const re2::RE2* Find(const std::string& pattern) const;

 private:
  void Add(const nlohmann::json& schema, int depth);
  std::map<std::string, std::unique_ptr<re2::RE2>> compiled_;
};

}  // namespace wf::workflows
