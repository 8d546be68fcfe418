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
// types, patterns that compile, min <= max). Returns every problem found.
std::vector<SchemaProblem> CheckSchema(const nlohmann::json& schema);

// One way data fails a schema: `path` is where in the data, written like `$.mother.citizen_id`
// or `$.children[2].name`.
struct SchemaViolation {
  std::string path;
  std::string message;
};

// Validates `data` against a schema that passed CheckSchema. Returns every violation found,
// in document order.
std::vector<SchemaViolation> ValidateData(const nlohmann::json& schema, const nlohmann::json& data);

}  // namespace wf::workflows
