#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace wf::workflows {

// The input-schema language: a documented subset of JSON Schema. Keywords: type (string,
// number, integer, boolean, object, array, null, or a list of them), required, properties,
// additionalProperties (boolean), items, enum, pattern (ECMAScript regex), minimum, maximum,
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
// pattern over 1000 characters, nesting over 64 levels, a `required` name that
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
// Limits against hostile data: strings over 4096 bytes are not matched against a pattern (a
// violation says so: the standard library's matcher recurses per character); after 100
// violations one last violation at `$` says more were left out. A malformed schema never
// crashes: what cannot be understood is skipped. Thread-safe; does not throw.
std::vector<SchemaViolation> ValidateData(const nlohmann::json& schema, const nlohmann::json& data);

}  // namespace wf::workflows
