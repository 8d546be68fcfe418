#include "workflows/json_text.hpp"

#include <catch2/catch.hpp>
#include <limits>
#include <random>
#include <string>

namespace wf::workflows {
namespace {

using json = nlohmann::json;
constexpr auto kReplace = json::error_handler_t::replace;
constexpr auto kIgnore = json::error_handler_t::ignore;

// DumpJson must give nlohmann's text, or throw what nlohmann throws.
void CheckSameText(const json& value) {
  for (auto handler : {json::error_handler_t::strict, kReplace, kIgnore}) {
    std::string expected;
    bool expected_throws = false;
    try {
      expected = value.dump(-1, ' ', false, handler);
    } catch (const json::type_error&) {
      expected_throws = true;
    }
    if (expected_throws) {
      CHECK_THROWS_AS(DumpJson(value, handler), json::type_error);
    } else {
      CHECK(DumpJson(value, handler) == expected);
    }
  }
}

// Bytes chosen to hit every branch: ASCII, escapes, control characters, DEL, lead and
// continuation bytes of every length, and bytes that are never UTF-8.
std::string RandomBytes(std::mt19937& random) {
  static const std::string kAlphabet =
      std::string("aZ09 \"\\/\b\t\n\f\r\x01\x1f\x7f") + "\xc2\xdf\xe0\xed\xef\xf0\xf4\xf5" +
      "\x80\x8f\x90\x9f\xa0\xbf\xc0\xc1\xfe\xff" + "ễ€😀";
  std::string text;
  std::uniform_int_distribution<std::size_t> length(0, 24);
  std::uniform_int_distribution<std::size_t> pick(0, kAlphabet.size() - 1);
  for (std::size_t n = length(random); n > 0; --n) text += kAlphabet[pick(random)];
  return text;
}

json RandomValue(std::mt19937& random, int depth) {
  std::uniform_int_distribution<int> kind(0, depth > 3 ? 6 : 8);
  switch (kind(random)) {
    case 0: return nullptr;
    case 1: return std::uniform_int_distribution<int>(0, 1)(random) == 1;
    case 2: return std::uniform_int_distribution<std::int64_t>()(random);
    case 3: return std::uniform_int_distribution<std::uint64_t>()(random);
    case 4: return std::uniform_real_distribution<double>(-1e6, 1e6)(random);
    case 5:
    case 6: return RandomBytes(random);
    case 7: {
      json array = json::array();
      for (int n = std::uniform_int_distribution<int>(0, 4)(random); n > 0; --n) {
        array.push_back(RandomValue(random, depth + 1));
      }
      return array;
    }
    default: {
      json object = json::object();
      for (int n = std::uniform_int_distribution<int>(0, 4)(random); n > 0; --n) {
        object[RandomBytes(random)] = RandomValue(random, depth + 1);
      }
      return object;
    }
  }
}

}  // namespace

TEST_CASE("DumpJson writes what nlohmann::json::dump writes", "[workflows][json]") {
  CheckSameText(json::parse(R"({"b":[1,-2,3.5,1e300,true,false,null,"x"],"a":{},"c":[],)"
                            R"("d":"Nguyễn Văn An","e":"tab\tquote\"slash\\ctl\u0001del\u007f"})"));
  CheckSameText(std::numeric_limits<std::int64_t>::min());
  CheckSameText(std::numeric_limits<std::uint64_t>::max());
  CheckSameText(std::numeric_limits<double>::quiet_NaN());
  CheckSameText(0.1);
  CheckSameText(-0.0);
  CheckSameText(json::binary({1, 2, 3}));
  CheckSameText(std::string("\xed\xa0\x80"));      // a surrogate: not UTF-8
  CheckSameText(std::string("\xe0\x80\xaf"));      // an overlong form
  CheckSameText(std::string("\xf4\x90\x80\x80"));  // above U+10FFFF
  CheckSameText(std::string("cut \xe1\xbb"));      // a sequence cut short
  CheckSameText(json{{std::string("key \xff"), 1}, {"ok", "\xc3\xa9"}});
}

TEST_CASE("DumpJson matches nlohmann on random values and bytes", "[workflows][json]") {
  std::mt19937 random(20261206);
  for (int i = 0; i < 3000; ++i) CheckSameText(RandomValue(random, 0));
}

TEST_CASE("AppendJson appends to what is there", "[workflows][json]") {
  std::string out = "prefix:";
  AppendJson(out, json{{"a", 1}});
  CHECK(out == R"(prefix:{"a":1})");
}

}  // namespace wf::workflows
