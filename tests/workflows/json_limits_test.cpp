#include "workflows/json_limits.hpp"

#include <string>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

namespace wf::workflows {
namespace {

using nlohmann::json;

// `levels` arrays inside each other, built without recursion (as a parser would).
json NestedArrays(int levels) {
  json root = json::array();
  json* innermost = &root;
  for (int i = 1; i < levels; ++i) {
    innermost->push_back(json::array());
    innermost = &innermost->back();
  }
  return root;
}

std::string Message(const Status& status) { return status.ok() ? "ok" : status.message(); }

}  // namespace

TEST_CASE("JSON text 500k levels deep is refused before any DOM is built", "[workflows][limits]") {
  const std::string deep = std::string(500000, '[') + std::string(500000, ']');
  Status checked = CheckJsonText(deep);
  REQUIRE(checked.code() == ErrorCode::kInvalid);
  CHECK_THAT(checked.message(), Catch::StartsWith("JSON nested deeper than 32 levels at $[0][0]"));
  auto parsed = ParseJsonWithin(deep);
  REQUIRE_FALSE(parsed.has_value());
  CHECK(parsed.error().message() == checked.message());
  // Unterminated, and with objects: the same.
  CHECK_FALSE(CheckJsonText(std::string(1 << 20, '[')).ok());
  std::string objects;
  for (int i = 0; i < 100000; ++i) objects += "{\"a\":";
  CHECK_THAT(Message(CheckJsonText(objects)),
             Catch::StartsWith("JSON nested deeper than 32 levels at $.a.a.a"));
}

TEST_CASE("a value built 500k levels deep is measured without recursion", "[workflows][limits]") {
  json deep = NestedArrays(500000);  // its destructor is iterative in nlohmann 3.11
  Status checked = CheckJson(deep);
  REQUIRE(checked.code() == ErrorCode::kInvalid);
  CHECK_THAT(checked.message(), Catch::StartsWith("JSON nested deeper than 32 levels at $[0]"));
}

TEST_CASE("depth 32 is allowed and 33 is not, in text and in values", "[workflows][limits]") {
  CHECK(CheckJson(NestedArrays(32)).ok());
  CHECK(CheckJsonText(NestedArrays(32).dump()).ok());
  CHECK_FALSE(CheckJson(NestedArrays(33)).ok());
  CHECK_FALSE(CheckJsonText(NestedArrays(33).dump()).ok());
  auto size = MeasureJson(NestedArrays(32));
  REQUIRE(size.has_value());
  CHECK(size->depth == 32);
  CHECK(size->values == 32);
  CHECK(MeasureJson(json(5))->depth == 0);
}

TEST_CASE("a huge string is refused with its path", "[workflows][limits]") {
  const std::string big(kMaxJsonStringBytes + 1, 'x');
  json value = {{"documents", {{"scan", big}}}};
  CHECK(Message(CheckJson(value)) ==
        "JSON with a string longer than 262144 bytes at $.documents.scan");
  CHECK(Message(CheckJsonText(value.dump())) ==
        "JSON with a string longer than 262144 bytes at $.documents.scan");
  // Keys are strings too.
  CHECK_THAT(Message(CheckJson(json{{big, 1}})), Catch::StartsWith("JSON with a string longer"));
  CHECK(CheckJson(json{{"scan", std::string(kMaxJsonStringBytes, 'x')}}).ok());
}

TEST_CASE("strings that are not UTF-8 are refused before dump() could throw",
          "[workflows][limits]") {
  json value = {{"names", {"ok", std::string("bad \xC3(")}}};
  CHECK(Message(CheckJson(value)) == "JSON with a string that is not valid UTF-8 at $.names[1]");
  CHECK_FALSE(CheckJson(json{{std::string("\xED\xA0\x80"), 1}}).ok());  // a surrogate key
  CHECK_FALSE(CheckJson(json(std::string("\xC0\xAF"))).ok());           // overlong
  CHECK_FALSE(CheckJson(json(std::string("\xF4\x90\x80\x80"))).ok());   // past U+10FFFF
  CHECK(CheckJson(json("Trần Minh Khôi 𝄞")).ok());
}

TEST_CASE("size is measured as dump() writes it", "[workflows][limits]") {
  const json samples[] = {
      json::parse(R"({"a": [1, -2, 3.5, 1e300, true, false, null], "b": {"c": "d\"\\\n\u0001"}})"),
      json::parse(R"([[], {}, "", "Tây Ninh", 18446744073709551615, -9223372036854775808])"),
      json("plain"),
      json(0.1),
  };
  for (const json& sample : samples) {
    INFO(sample.dump());
    auto size = MeasureJson(sample);
    REQUIRE(size.has_value());
    CHECK(size->bytes == sample.dump().size());
  }
  JsonLimits small;
  small.max_bytes = 10;
  CHECK(Message(CheckJson(json{{"abc", "defgh"}}, small)) == "JSON larger than 10 bytes");
  CHECK(CheckJson(json{{"a", "b"}}, small).ok());  // {"a":"b"}: 9 bytes
}

TEST_CASE("too many values are refused", "[workflows][limits]") {
  json many = json::array();
  for (size_t i = 0; i < kMaxJsonValues; ++i) many.push_back(0);  // the array itself is one more
  CHECK(Message(CheckJson(many)) == "JSON with more than 131072 values");
  CHECK(Message(CheckJsonText(many.dump())) == "JSON with more than 131072 values");
  many.erase(many.size() - 1);
  CHECK(CheckJson(many).ok());
}

TEST_CASE("text too large is refused unread, and syntax errors are the parser's",
          "[workflows][limits]") {
  CHECK(Message(CheckJsonText(std::string(kMaxJsonTextBytes + 1, ' '))) ==
        "JSON text larger than 4194304 bytes");
  CHECK(CheckJsonText("{\"a\": [1, 2,").ok());  // within bounds as far as it goes
  auto parsed = ParseJsonWithin("{\"a\": [1, 2,");
  REQUIRE_FALSE(parsed.has_value());
  CHECK(parsed.error().code() == ErrorCode::kInvalid);
  CHECK_THAT(parsed.error().message(), Catch::StartsWith("not valid JSON: "));
  auto good = ParseJsonWithin(R"({"a": {"b": [1, "x"]}})");
  REQUIRE(good.has_value());
  CHECK((*good)["a"]["b"][1] == "x");
}

}  // namespace wf::workflows
