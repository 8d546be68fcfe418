#include "workflows/schema.hpp"

#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

namespace wf::workflows {
namespace {

using nlohmann::json;

// "pointer: message" lines, easy to compare and to read when a check fails.
std::vector<std::string> Problems(const json& schema) {
  std::vector<std::string> out;
  for (const SchemaProblem& p : CheckSchema(schema)) out.push_back(p.pointer + ": " + p.message);
  return out;
}

std::vector<std::string> Violations(const json& schema, const json& data) {
  INFO("schema: " << schema.dump());
  REQUIRE(CheckSchema(schema).empty());
  std::vector<std::string> out;
  for (const SchemaViolation& v : ValidateData(schema, data))
    out.push_back(v.path + ": " + v.message);
  return out;
}

using Lines = std::vector<std::string>;

// The birth-registration input from DESIGN.md.
const json kBirthSchema = json::parse(R"({
  "required": ["child", "mother"],
  "properties": {
    "child": {"type": "object", "required": ["full_name", "birth_date"],
              "properties": {"birth_date": {"type": "string", "format": "date"}}},
    "mother": {
      "type": "object",
      "required": ["citizen_id"],
      "properties": {"citizen_id": {"type": "string", "pattern": "^[0-9]{12}$"}}
    }
  }
})");

// ---------------------------------------------------------------------------------------------
// CheckSchema

TEST_CASE("a schema using every keyword is well formed", "[workflows][schema]") {
  const json schema = json::parse(R"({
    "title": "Application", "description": "what the applicant sends",
    "type": "object", "required": ["name"], "additionalProperties": false,
    "properties": {
      "name": {"type": "string", "minLength": 1, "maxLength": 100, "pattern": "^\\S"},
      "age": {"type": ["integer", "null"], "minimum": 0, "maximum": 150},
      "kind": {"enum": ["a", "b", 3, null]},
      "born": {"type": "string", "format": "date"},
      "tags": {"type": "array", "minItems": 0, "maxItems": 5, "items": {"type": "string"}},
      "flag": {"type": "boolean"}, "n": {"type": "number"}, "o": {"type": "object"},
      "z": {"type": "null"}
    }
  })");
  CHECK(Problems(schema).empty());
  CHECK(Problems(kBirthSchema).empty());
  CHECK(Problems(json::object()).empty());
}

TEST_CASE("a schema that is not a mapping is refused", "[workflows][schema]") {
  CHECK(Problems("string") == Lines{": a schema must be a mapping of keywords, got string"});
  CHECK(Problems(json::array()) == Lines{": a schema must be a mapping of keywords, got array"});
  CHECK(Problems(json{{"properties", {{"a", 1}}}}) ==
        Lines{"/properties/a: a schema must be a mapping of keywords, got integer"});
  CHECK(Problems(json{{"items", true}}) ==
        Lines{"/items: a schema must be a mapping of keywords, got boolean"});
}

TEST_CASE("unknown keywords are refused with a suggestion", "[workflows][schema]") {
  CHECK(Problems(json{{"require", json::array()}}) ==
        Lines{"/require: unknown keyword 'require'; did you mean 'required'?"});
  CHECK(Problems(json{{"properties", {{"a", {{"Type", "string"}}}}}}) ==
        Lines{"/properties/a/Type: unknown keyword 'Type'; did you mean 'type'?"});
  CHECK(Problems(json{{"oneOf", json::array()}}) == Lines{"/oneOf: unknown keyword 'oneOf'"});
  CHECK(Problems(json{{"$ref", "#/x"}}) == Lines{"/$ref: unknown keyword '$ref'"});
}

TEST_CASE("pointers escape slashes and tildes", "[workflows][schema]") {
  CHECK(Problems(json{{"properties", {{"a/b~c", {{"type", "text"}}}}}}) ==
        Lines{"/properties/a~1b~0c/type: unknown type \"text\"; use string, number, integer, "
              "boolean, object, array or null"});
}

TEST_CASE("type must name known types", "[workflows][schema]") {
  CHECK(Problems(json{{"type", "int"}}).size() == 1);
  CHECK(Problems(json{{"type", "int"}})[0].find("/type: unknown type \"int\"") == 0);
  CHECK(Problems(json{{"type", 5}})[0].find("/type: type must be a type name") == 0);
  CHECK(Problems(json{{"type", json::array()}})[0].find("/type: type must be") == 0);
  CHECK(Problems(json{{"type", {"string", "strng"}}})[0].find("/type/1: unknown type") == 0);
  CHECK(Problems(json{{"type", {"string", "string"}}}) ==
        Lines{"/type/1: type \"string\" is listed twice"});
}

TEST_CASE("required must list names once", "[workflows][schema]") {
  CHECK(Problems(json{{"required", "a"}}) ==
        Lines{"/required: required must be a list of property names"});
  CHECK(Problems(json{{"required", {"a", 1}}}) ==
        Lines{"/required/1: required must list property names, got 1"});
  CHECK(Problems(json{{"required", {"a", "a"}}}) ==
        Lines{"/required/1: required property \"a\" is listed twice"});
}

TEST_CASE("keyword values of the wrong kind are refused", "[workflows][schema]") {
  CHECK(Problems(json{{"properties", {1, 2}}}) ==
        Lines{"/properties: properties must be a mapping from property names to schemas"});
  CHECK(Problems(json{{"additionalProperties", {{"type", "string"}}}}) ==
        Lines{"/additionalProperties: additionalProperties must be true or false"});
  CHECK(Problems(json{{"enum", json::array()}}) ==
        Lines{"/enum: enum must be a non-empty list of the allowed values"});
  CHECK(Problems(json{{"enum", "a"}}) ==
        Lines{"/enum: enum must be a non-empty list of the allowed values"});
  CHECK(Problems(json{{"pattern", 5}}) ==
        Lines{"/pattern: pattern must be a string (a regular expression)"});
  CHECK(Problems(json{{"minimum", "0"}}) == Lines{"/minimum: minimum must be a number"});
  CHECK(Problems(json{{"maximum", nullptr}}) == Lines{"/maximum: maximum must be a number"});
  CHECK(Problems(json{{"minLength", -1}}) ==
        Lines{"/minLength: minLength must be a non-negative integer"});
  CHECK(Problems(json{{"maxLength", 2.5}}) ==
        Lines{"/maxLength: maxLength must be a non-negative integer"});
  CHECK(Problems(json{{"minItems", "1"}}) ==
        Lines{"/minItems: minItems must be a non-negative integer"});
  CHECK(Problems(json{{"maxItems", true}}) ==
        Lines{"/maxItems: maxItems must be a non-negative integer"});
  CHECK(Problems(json{{"format", "email"}}) ==
        Lines{"/format: unknown format \"email\"; the only format is \"date\""});
  CHECK(Problems(json{{"title", 1}}) == Lines{"/title: title must be a string"});
  CHECK(Problems(json{{"description", json::array()}}) ==
        Lines{"/description: description must be a string"});
}

TEST_CASE("a pattern that does not compile is reported", "[workflows][schema]") {
  Lines problems = Problems(json{{"properties", {{"id", {{"pattern", "^[0-9{12}$"}}}}}});
  REQUIRE(problems.size() == 1);
  CHECK(problems[0].find("/properties/id/pattern: pattern ^[0-9{12}$ is not valid RE2 syntax") ==
        0);
  CHECK(Problems(json{{"pattern", "(a"}}).size() == 1);
  CHECK(Problems(json{{"pattern", "*a"}}).size() == 1);
  CHECK(Problems(json{{"pattern", std::string(1001, 'a')}}) ==
        Lines{"/pattern: pattern is longer than 1000 characters"});
}

TEST_CASE("minimums above maximums are reported", "[workflows][schema]") {
  CHECK(Problems(json{{"minimum", 5}, {"maximum", 3}}) ==
        Lines{"/maximum: maximum 3 is less than minimum 5"});
  CHECK(Problems(json{{"minimum", 2.5}, {"maximum", 2}}) ==
        Lines{"/maximum: maximum 2 is less than minimum 2.5"});
  CHECK(Problems(json{{"minLength", 3}, {"maxLength", 2}}) ==
        Lines{"/maxLength: maxLength 2 is less than minLength 3"});
  CHECK(Problems(json{{"minItems", 1}, {"maxItems", 0}}) ==
        Lines{"/maxItems: maxItems 0 is less than minItems 1"});
  CHECK(Problems(json{{"minimum", 3}, {"maximum", 3}}).empty());
}

TEST_CASE("a required property forbidden by additionalProperties is reported",
          "[workflows][schema]") {
  CHECK(Problems(json{{"additionalProperties", false},
                      {"required", {"a", "b"}},
                      {"properties", {{"a", json::object()}}}}) ==
        Lines{"/required/1: required property \"b\" is not in properties, and "
              "additionalProperties is false"});
}

TEST_CASE("every problem in a schema is reported", "[workflows][schema]") {
  const json schema = json::parse(R"({
    "type": "objekt",
    "properties": {
      "a": {"minLength": "x", "patern": "y"},
      "b": {"items": {"type": "strin"}}
    }
  })");
  CHECK(Problems(schema).size() == 4);
}

TEST_CASE("a deeply nested schema is refused, not recursed into", "[workflows][schema]") {
  json schema = json::object();
  for (int i = 0; i < 200; ++i) schema = json{{"items", schema}};
  Lines problems = Problems(schema);
  REQUIRE(problems.size() == 1);
  CHECK(problems[0].find("nested more than 64 levels deep") != std::string::npos);
}

// ---------------------------------------------------------------------------------------------
// ValidateData

TEST_CASE("valid data has no violations", "[workflows][schema]") {
  const json data = json::parse(R"({
    "child": {"full_name": "Minh", "birth_date": "2026-01-05"},
    "mother": {"citizen_id": "012345678901"}, "extra": 1
  })");
  CHECK(Violations(kBirthSchema, data).empty());
  CHECK(Violations(json::object(), json::parse(R"([1, "x", null])")).empty());
}

TEST_CASE("the birth-registration violations read as the design says", "[workflows][schema]") {
  const json data = json::parse(R"({
    "child": {"full_name": "Minh"},
    "mother": {"citizen_id": "12345"}
  })");
  CHECK(Violations(kBirthSchema, data) ==
        Lines{"$.child: required property 'birth_date' is missing",
              "$.mother.citizen_id: does not match ^[0-9]{12}$"});
  CHECK(
      Violations(kBirthSchema, json::object()) ==
      Lines{"$: required property 'child' is missing", "$: required property 'mother' is missing"});
}

TEST_CASE("type violations name both types", "[workflows][schema]") {
  const json schema = {{"properties",
                        {{"age", {{"type", "integer"}}},
                         {"name", {{"type", "string"}}},
                         {"ratio", {{"type", "number"}}},
                         {"ok", {{"type", "boolean"}}},
                         {"list", {{"type", "array"}}},
                         {"obj", {{"type", "object"}}},
                         {"nothing", {{"type", "null"}}},
                         {"maybe", {{"type", {"string", "integer", "null"}}}}}}};
  const json bad = {{"age", "12"},        {"name", 12}, {"ratio", "1.5"}, {"ok", "yes"},
                    {"list", {{"a", 1}}}, {"obj", {1}}, {"nothing", 0},   {"maybe", 1.5}};
  CHECK(Violations(schema, bad) ==
        Lines{"$.age: expected integer, got string", "$.list: expected array, got object",
              "$.maybe: expected string, integer or null, got number",
              "$.name: expected string, got integer", "$.nothing: expected null, got integer",
              "$.obj: expected object, got array", "$.ok: expected boolean, got string",
              "$.ratio: expected number, got string"});
  const json good = {{"age", 12},          {"name", "x"},     {"ratio", 1},
                     {"ok", false},        {"list", {1}},     {"obj", json::object()},
                     {"nothing", nullptr}, {"maybe", nullptr}};
  CHECK(Violations(schema, good).empty());
}

TEST_CASE("integer means a JSON integer", "[workflows][schema]") {
  const json schema = {{"type", "integer"}};
  CHECK(Violations(schema, 3).empty());
  CHECK(Violations(schema, -3).empty());
  CHECK(Violations(schema, json(18446744073709551615ULL)).empty());
  CHECK(Violations(schema, 3.0) == Lines{"$: expected integer, got number"});
  CHECK(Violations(schema, 3.5) == Lines{"$: expected integer, got number"});
  CHECK(Violations({{"type", "number"}}, 3).empty());
}

TEST_CASE("a wrong type hides the value's other checks", "[workflows][schema]") {
  CHECK(Violations({{"type", "string"}, {"minLength", 5}, {"pattern", "^a"}}, 7) ==
        Lines{"$: expected string, got integer"});
}

TEST_CASE("enum lists the allowed values", "[workflows][schema]") {
  const json schema = {{"enum", {"approved", "refused", nullptr, 1}}};
  CHECK(Violations(schema, "approved").empty());
  CHECK(Violations(schema, nullptr).empty());
  CHECK(Violations(schema, 1.0).empty());
  CHECK(Violations(schema, "maybe") ==
        Lines{"$: must be one of \"approved\", \"refused\", null, 1; got \"maybe\""});
  json many = json::array();
  for (int i = 0; i < 12; ++i) many.push_back(i);
  CHECK(Violations({{"enum", many}}, 99) ==
        Lines{"$: must be one of 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, ...; got 99"});
}

TEST_CASE("string lengths count characters, not bytes", "[workflows][schema]") {
  const json schema = {{"minLength", 2}, {"maxLength", 4}};
  CHECK(Violations(schema, "ab").empty());
  CHECK(Violations(schema, "\xc4\x83\xe1\xbb\x85\xc4\x83\xe1\xbb\x85").empty());  // 4 chars
  CHECK(Violations(schema, "a") == Lines{"$: must be at least 2 characters long (got 1)"});
  CHECK(Violations(schema, "abcde") == Lines{"$: must be at most 4 characters long (got 5)"});
  CHECK(Violations({{"minLength", 1}}, "") ==
        Lines{"$: must be at least 1 character long (got 0)"});
}

TEST_CASE("patterns search and must be anchored to match whole values", "[workflows][schema]") {
  CHECK(Violations({{"pattern", "[0-9]"}}, "abc1").empty());
  CHECK(Violations({{"pattern", "^[0-9]+$"}}, "abc1") == Lines{"$: does not match ^[0-9]+$"});
  CHECK(Violations({{"pattern", "^\\d{12}$"}}, "012345678901").empty());
  CHECK(Violations({{"pattern", "^(?:VN|LA)-\\w+$"}}, "VN-abc").empty());
}

TEST_CASE("backreferences and lookaround are refused as not RE2 syntax", "[workflows][schema]") {
  for (const char* pattern : {"^(a)\\1$", "^(?=a)a$", "^(?!a)b$", "(?<=a)b"}) {
    INFO(pattern);
    Lines problems = Problems(json{{"pattern", pattern}});
    REQUIRE(problems.size() == 1);
    CHECK_THAT(problems[0], Catch::Contains("is not valid RE2 syntax"));
    CHECK_THAT(problems[0], Catch::Contains("backreferences and lookaround are not available"));
  }
}

TEST_CASE("a pattern that backtracks exponentially elsewhere is matched in linear time",
          "[workflows][schema][limits]") {
  // With std::regex, ^(a+)+$ against "aaaa...b" tries every split of the a's: 2^4095 paths.
  const json schema = {{"type", "string"}, {"pattern", "^(a+)+$"}};
  REQUIRE(CheckSchema(schema).empty());
  const std::string subject = std::string(4095, 'a') + "b";
  CHECK(Violations(schema, subject) == Lines{"$: does not match ^(a+)+$"});
  CHECK(Violations(schema, std::string(4096, 'a')).empty());
  SchemaPatterns compiled;
  compiled.Add(schema);
  REQUIRE(compiled.Find("^(a+)+$") != nullptr);
  CHECK(ValidateData(schema, subject, &compiled).size() == 1);
}

TEST_CASE("long strings are not matched against a pattern", "[workflows][schema]") {
  const std::string long_text(5000, 'a');
  CHECK(Violations({{"pattern", "^(a|b)*$"}}, long_text) ==
        Lines{"$: is too long to check against ^(a|b)*$ (over 4096 characters)"});
  CHECK(Violations({{"pattern", "^(a|b)*$"}}, std::string(4096, 'a')).empty());
}

TEST_CASE("dates must be real calendar dates", "[workflows][schema]") {
  const json schema = {{"type", "string"}, {"format", "date"}};
  for (const char* good : {"2026-01-05", "2024-02-29", "2000-02-29", "1999-12-31", "2026-04-30"}) {
    INFO(good);
    CHECK(Violations(schema, good).empty());
  }
  for (const char* not_real : {"2023-02-29", "1900-02-29", "2026-02-30", "2026-04-31", "2026-13-01",
                               "2026-00-10", "2026-01-00", "2026-01-32"}) {
    INFO(not_real);
    CHECK(Violations(schema, not_real) ==
          Lines{"$: \"" + std::string(not_real) + "\" is not a real date"});
  }
  for (const char* malformed : {"05/01/2026", "2026-1-5", "2026-01-05T00:00:00Z", "", "2026-01-0a",
                                " 2026-01-05", "２０２６-01-05"}) {
    INFO(malformed);
    REQUIRE(Violations(schema, malformed).size() == 1);
    CHECK(Violations(schema, malformed)[0].find("$: expected a date written YYYY-MM-DD, got ") ==
          0);
  }
  CHECK(Violations({{"format", "date"}}, 20260105).empty());  // format applies to strings only
}

TEST_CASE("minimum and maximum bound numbers", "[workflows][schema]") {
  const json schema = {{"minimum", 0}, {"maximum", 150}};
  CHECK(Violations(schema, 0).empty());
  CHECK(Violations(schema, 150).empty());
  CHECK(Violations(schema, 149.5).empty());
  CHECK(Violations(schema, -1) == Lines{"$: must be at least 0 (got -1)"});
  CHECK(Violations(schema, 150.5) == Lines{"$: must be at most 150 (got 150.5)"});
  CHECK(Violations({{"minimum", 0.5}}, 0) == Lines{"$: must be at least 0.5 (got 0)"});
  CHECK(Violations(schema, "200").empty());  // bounds apply to numbers only
}

TEST_CASE("item counts and item schemas apply to arrays", "[workflows][schema]") {
  const json schema = {{"minItems", 1}, {"maxItems", 2}, {"items", {{"type", "string"}}}};
  CHECK(Violations(schema, {"a"}).empty());
  CHECK(Violations(schema, json::array()) == Lines{"$: must have at least 1 item (got 0)"});
  CHECK(Violations(schema, {"a", "b", "c"}) == Lines{"$: must have at most 2 items (got 3)"});
  CHECK(Violations(schema, {"a", 2}) == Lines{"$[1]: expected string, got integer"});
}

TEST_CASE("violation paths go through arrays and odd keys", "[workflows][schema]") {
  const json schema = json::parse(R"({
    "properties": {
      "children": {"type": "array", "items": {
        "type": "object", "required": ["name"],
        "properties": {"name": {"type": "string"}, "birth date": {"format": "date"}}}},
      "a-b": {"type": "integer"}
    }
  })");
  const json data = json::parse(R"({
    "children": [{"name": "A"}, {"name": 1}, {"nme": "C", "birth date": "2026-02-30"}],
    "a-b": "x"
  })");
  CHECK(Violations(schema, data) ==
        Lines{"$[\"a-b\"]: expected integer, got string",
              "$.children[1].name: expected string, got integer",
              "$.children[2]: required property 'name' is missing",
              "$.children[2][\"birth date\"]: \"2026-02-30\" is not a real date"});
}

TEST_CASE("additionalProperties false refuses unknown members", "[workflows][schema]") {
  const json schema = {
      {"additionalProperties", false},
      {"properties", {{"approved", {{"type", "boolean"}}}, {"note", json::object()}}}};
  CHECK(Violations(schema, {{"approved", true}, {"note", "x"}}).empty());
  CHECK(Violations(schema, {{"approved", true}, {"aproved", false}}) ==
        Lines{"$.aproved: unexpected property; allowed: approved, note"});
  CHECK(Violations({{"additionalProperties", false}}, {{"x", 1}}) ==
        Lines{"$.x: unexpected property; no properties are allowed here"});
  CHECK(Violations({{"additionalProperties", true}}, {{"x", 1}}).empty());
}

TEST_CASE("object keywords ignore values that are not objects", "[workflows][schema]") {
  CHECK(Violations({{"required", {"a"}}}, "text").empty());
  CHECK(Violations({{"items", {{"type", "string"}}}}, {{"a", 1}}).empty());
}

TEST_CASE("every violation is reported in document order", "[workflows][schema]") {
  const json schema = json::parse(R"({
    "type": "object", "required": ["z", "a"],
    "properties": {"b": {"type": "string", "minLength": 3, "pattern": "^x"},
                   "c": {"type": "integer", "minimum": 10}}
  })");
  CHECK(Violations(schema, {{"b", "yy"}, {"c", 5}}) ==
        Lines{"$: required property 'z' is missing", "$: required property 'a' is missing",
              "$.b: must be at least 3 characters long (got 2)", "$.b: does not match ^x",
              "$.c: must be at least 10 (got 5)"});
}

TEST_CASE("huge inputs stop after a hundred violations", "[workflows][schema]") {
  const json schema = {{"items", {{"type", "string"}}}};
  json data = json::array();
  for (int i = 0; i < 100000; ++i) data.push_back(i);
  std::vector<SchemaViolation> violations = ValidateData(schema, data);
  REQUIRE(violations.size() == 101);
  CHECK(violations[0].path == "$[0]");
  CHECK(violations[99].path == "$[99]");
  CHECK(violations[100].path == "$");
  CHECK(violations[100].message.find("only the first 100 are shown") != std::string::npos);
}

TEST_CASE("a malformed schema never crashes validation", "[workflows][schema]") {
  const std::vector<json> schemas = {
      "string",
      json::array(),
      {{"type", 5}},
      {{"type", {"string", 7}}},
      {{"required", "a"}},
      {{"properties", {1, 2}}},
      {{"items", "x"}},
      {{"enum", "x"}},
      {{"pattern", "(("}},
      {{"pattern", 5}},
      {{"minLength", -3}, {"maxItems", "x"}, {"minimum", "0"}},
      {{"format", 1}},
  };
  for (const json& schema : schemas) {
    INFO(schema.dump());
    CHECK_FALSE(CheckSchema(schema).empty());
    std::vector<SchemaViolation> violations =
        ValidateData(schema, json::parse(R"({"a": ["x", 1], "b": "text"})"));
    for (const SchemaViolation& v : violations) CHECK_FALSE(v.path.empty());
  }
  std::vector<SchemaViolation> bad_pattern = ValidateData({{"pattern", "(("}}, "x");
  REQUIRE(bad_pattern.size() == 1);
  CHECK(bad_pattern[0].message.find("is not a valid pattern") != std::string::npos);
}

}  // namespace
}  // namespace wf::workflows
