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


// The same value with the same type at every node (nlohmann's == takes 1 and 1u as equal).
bool SameTree(const json& a, const json& b) {
  if (a.type() != b.type() || a.size() != b.size()) return false;
  if (a.is_object()) {
    auto x = a.begin();
    for (auto y = b.begin(); y != b.end(); ++x, ++y) {
      if (x.key() != y.key() || !SameTree(*x, *y)) return false;
    }
    return true;
  }
  if (a.is_array()) {
    for (std::size_t i = 0; i < a.size(); ++i) {
      if (!SameTree(a[i], b[i])) return false;
    }
    return true;
  }
  return a == b;
}

// ParseJson must read what nlohmann reads, or fail where nlohmann fails.
void CheckSameValue(const std::string& text) {
  const json expected = json::parse(text, nullptr, false);
  const json got = ParseJson(text);
  INFO("text: " << text);
  REQUIRE(got.is_discarded() == expected.is_discarded());
  if (!expected.is_discarded()) CHECK(SameTree(got, expected));
}

// A text one byte away from `text`: one deleted, replaced or put in.
std::string Mutated(std::string text, std::mt19937& random) {
  static const std::string kBytes = "{}[],:\"\\ 0123456789-+.eEtrufalsn\x01\x7f\xc3\xa9\xed\xff/u";
  std::uniform_int_distribution<std::size_t> at(0, text.size());
  std::uniform_int_distribution<std::size_t> pick(0, kBytes.size() - 1);
  const std::size_t i = at(random);
  switch (std::uniform_int_distribution<int>(0, 2)(random)) {
    case 0:
      if (i < text.size()) text.erase(i, 1);
      break;
    case 1:
      if (i < text.size()) text[i] = kBytes[pick(random)];
      break;
    default: text.insert(i, 1, kBytes[pick(random)]);
  }
  return text;
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

TEST_CASE("ParseJson reads what nlohmann::json::parse reads", "[workflows][json]") {
  for (const char* text :
       {R"({"b":[1,-2,3.5,1e300,true,false,null,"x"],"a":{},"c":[],"d":"Nguyễn Văn An"})",
        R"( {"a" : 1 ,"a":[2] } )", "\t[\r\n]\n", R"("esc \" \\ \/ \b \f \n \r \t \u0000 \u00e9")",
        R"("\ud83d\ude00 \uD83D\uDE00")", R"("\ud83d")", R"("\ude00")", R"("\ud83d\u0041")",
        "0", "-0", "-0.0", "1E2", "1e-2", "12345678901234567890", "18446744073709551615",
        "18446744073709551616", "-9223372036854775808", "-9223372036854775809", "01", "1.",
        ".5", "-", "+1", "1e", "tru", "nul", "truex", "[1,]", "{\"a\":1,}", "{,}", "[", "\"open",
        "\"ctl \x01\"", "\"bad \xff\"", "\"cut \xe1\xbb\"", "\xef\xbb\xbf{}", "", " ", "{} {}",
        "[1] x", "{\"a\" 1}", "{1:2}", "\"\\x\"", "\"\\u12g4\""}) {
    CheckSameValue(text);
  }
  std::string deep;
  for (int i = 0; i < 300; ++i) deep += "[{\"k\":";
  deep += "1";
  for (int i = 0; i < 300; ++i) deep += "}]";
  CheckSameValue(deep);
  CheckSameValue(deep.substr(0, deep.size() - 1));
}

TEST_CASE("ParseJson matches nlohmann on random texts and on texts one byte off", "[workflows][json]") {
  std::mt19937 random(20261207);
  for (int i = 0; i < 3000; ++i) {
    const json value = RandomValue(random, 0);
    // Pretty, compact and escaped to ASCII (\u escapes, surrogate pairs), in every handler.
    const std::string compact = value.dump(-1, ' ', false, kReplace);
    CheckSameValue(compact);
    CheckSameValue(value.dump(2, ' ', false, kIgnore));
    CheckSameValue(value.dump(-1, ' ', true, kReplace));
    for (int k = 0; k < 3; ++k) CheckSameValue(Mutated(compact, random));
  }
}

TEST_CASE("AppendJson appends to what is there", "[workflows][json]") {
  std::string out = "prefix:";
  AppendJson(out, json{{"a", 1}});
  CHECK(out == R"(prefix:{"a":1})");
}

}  // namespace wf::workflows
