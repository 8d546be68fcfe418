#include "workflows/expression.hpp"

#include <cstdint>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

namespace wf::workflows {
namespace {

using nlohmann::json;

Expression MustCompile(const std::string& program) {
  ExpressionError error;
  std::optional<Expression> expression = Expression::Compile(program, &error);
  INFO("program: " << program << " error: " << error.message);
  REQUIRE(expression.has_value());
  return *expression;
}

ExpressionError CompileError(const std::string& program) {
  ExpressionError error;
  std::optional<Expression> expression = Expression::Compile(program, &error);
  INFO("program: " << program);
  REQUIRE_FALSE(expression.has_value());
  return error;
}

json Eval(const std::string& program, const json& input) {
  Result<json> result = MustCompile(program).Evaluate(input);
  INFO("program: " << program << " error: " << (result ? "" : result.error().message()));
  REQUIRE(result.has_value());
  return *result;
}

// Evaluating the identity converts to jq and back.
json RoundTrip(const json& value) { return Eval(".", value); }

const json kCase = json::parse(R"({
  "mother": {"citizen_id": "012345678901", "name": "Lan"},
  "child": {"full_name": "Minh", "birth_date": "2026-01-05"},
  "review": {"approved": true, "note": "ok"},
  "count": 3,
  "items": [1, 2, 3]
})");

// ---------------------------------------------------------------------------------------------
// Compiling

TEST_CASE("a valid program compiles and keeps its text", "[workflows][expression]") {
  Expression expression = MustCompile(".mother.citizen_id");
  CHECK(expression.program() == ".mother.citizen_id");
}

TEST_CASE("an empty or blank program is refused", "[workflows][expression]") {
  CHECK(CompileError("").message == "empty expression");
  CHECK(CompileError("   \n\t").message == "empty expression");
  CHECK(CompileError("").offset == 0);
}

TEST_CASE("compile errors carry no jq decoration", "[workflows][expression]") {
  ExpressionError error = CompileError(".a +");
  CHECK(error.message.find("jq: error") == std::string::npos);
  CHECK(error.message.find("Unix shell quoting") == std::string::npos);
  CHECK(error.message.find("compile error") == std::string::npos);
  CHECK(error.message.find("<top-level>") == std::string::npos);
  CHECK(error.message.find("$end") == std::string::npos);
  CHECK(error.message.find("end of expression") != std::string::npos);
}

TEST_CASE("Compile accepts a null error pointer", "[workflows][expression]") {
  CHECK_FALSE(Expression::Compile(".a |", nullptr).has_value());
  CHECK(Expression::Compile(".a", nullptr).has_value());
}

TEST_CASE("a stray closing bracket is reported at its byte offset", "[workflows][expression]") {
  ExpressionError error = CompileError(".a | .b | ]");
  CHECK(error.offset == 10);
  CHECK(error.message == "syntax error, unexpected ']'");
}

TEST_CASE("an unknown function is reported where it is called", "[workflows][expression]") {
  ExpressionError error = CompileError(".a | lengthx");
  CHECK(error.offset == 5);
  CHECK(error.message == "unknown function 'lengthx' with 0 arguments");
  ExpressionError with_args = CompileError(".a | foo(1; 2)");
  CHECK(with_args.offset == 5);
  CHECK(with_args.message == "unknown function 'foo' with 2 arguments");
}

TEST_CASE("an unknown variable is named", "[workflows][expression]") {
  ExpressionError error = CompileError(".a + $missing");
  CHECK(error.message == "unknown variable $missing");
  CHECK(error.offset == 5);
}

TEST_CASE("compile error offsets count bytes across lines", "[workflows][expression]") {
  // Line 2 starts at byte 3; `)` is its 6th byte.
  const std::string program = ".a\n| .b ) | .c";
  ExpressionError error = CompileError(program);
  CHECK(error.offset == 8);
  CHECK(program[error.offset] == ')');

  const std::string third_line = ".x |\n  .y |\n  nosuch";
  ExpressionError unknown = CompileError(third_line);
  CHECK(third_line.substr(unknown.offset, 6) == "nosuch");

  const std::string first_of_two = ".a | ]\n| .b";
  CHECK(CompileError(first_of_two).offset == 5);

  const std::string tabs = ".a\t|\tnosuch";
  CHECK(CompileError(tabs).offset == 5);
}

TEST_CASE("an unexpected end points at what was left open", "[workflows][expression]") {
  ExpressionError bracket = CompileError(".x |\n  [.a, .b");
  CHECK(bracket.offset == 7);
  CHECK(bracket.message.find("'[' is never closed") != std::string::npos);

  ExpressionError paren = CompileError("map(.a");
  CHECK(paren.offset == 3);

  ExpressionError string = CompileError(".a + \"abc");
  CHECK(string.offset == 5);
  CHECK(string.message == "unterminated string");

  // Nothing left open: the end of the program.
  ExpressionError dangling = CompileError(".a +  ");
  CHECK(dangling.offset == 4);
}

TEST_CASE("errors inside string interpolation are located", "[workflows][expression]") {
  const std::string program = R"jq(.a | "x\(.b | ])")jq";
  ExpressionError error = CompileError(program);
  CHECK(program[error.offset] == ']');
}

TEST_CASE("several jq messages are joined into one", "[workflows][expression]") {
  ExpressionError error = CompileError("if . then 1 end");
  CHECK(error.offset == 12);
  CHECK(error.message.find("unexpected end") != std::string::npos);
  CHECK(error.message.find("possibly unterminated 'if' statement") != std::string::npos);
}

TEST_CASE("programs that reach outside the case data are refused", "[workflows][expression]") {
  struct Denied {
    std::string program;
    size_t offset;
  };
  const std::vector<Denied> denied = {
      {"input", 0},
      {"[inputs]", 1},
      {".a | debug", 5},
      {".a | stderr", 5},
      {"env.HOME", 0},
      {"$ENV.POPULATION_TOKEN", 0},
      {"$ ENV", 0},
      {"$__loc__", 0},
      {"input_filename", 0},
      {"input_line_number", 0},
      {"halt", 0},
      {"\"bye\" | halt_error", 8},
      {"import \"a\" as a; .", 0},
      {"include \"a\"; .", 0},
      {"\"x\\(env)\"", 4},
      {".[stderr:]", 2},
      {"{a: input}", 4},
      {"def f: input; 1", 7},
      {"modulemeta", 0},
      {"get_search_list", 0},
  };
  for (const Denied& d : denied) {
    ExpressionError error = CompileError(d.program);
    INFO(d.program << " -> " << error.message);
    CHECK(error.offset == d.offset);
    CHECK(error.message.find("is not allowed in an expression") != std::string::npos);
  }
}

TEST_CASE("fields, keys, variables and strings named like refused builtins are fine",
          "[workflows][expression]") {
  const json input = {{"input", 1}, {"env", 2}, {"debug", 3}};
  CHECK(Eval(".input", input) == 1);
  CHECK(Eval(".env + .debug", input) == 5);
  CHECK(Eval("{input: .input, env: 7}", input) == json({{"input", 1}, {"env", 7}}));
  CHECK(Eval(". as $input | $input.env", input) == 2);
  CHECK(Eval("\"input env stderr\"", input) == "input env stderr");
  CHECK(Eval(".input # reads input? no", input) == 1);
  CHECK(Eval("@text \"\\(.env)\"", input) == "2");
}

TEST_CASE("an overlong program is refused", "[workflows][expression]") {
  std::string program = "1";
  while (program.size() <= 16 * 1024) program += " + 1";
  CHECK(CompileError(program).message.find("longer than") != std::string::npos);
}

TEST_CASE("a program with a NUL byte is refused", "[workflows][expression]") {
  ExpressionError error = CompileError(std::string(".a\0 | .b", 8));
  CHECK(error.offset == 2);
}

// ---------------------------------------------------------------------------------------------
// Evaluating

TEST_CASE("evaluation returns the first output", "[workflows][expression]") {
  CHECK(Eval(".mother.citizen_id", kCase) == "012345678901");
  CHECK(Eval(".items[]", kCase) == 1);
  CHECK(Eval(".items | map(. * 2)", kCase) == json({2, 4, 6}));
  CHECK(Eval(".mother.citizen_id + \"/\" + .child.birth_date", kCase) == "012345678901/2026-01-05");
  CHECK(Eval("{id: .mother.citizen_id, n: .count}", kCase) ==
        json({{"id", "012345678901"}, {"n", 3}}));
}

TEST_CASE("a program with no output gives null", "[workflows][expression]") {
  CHECK(Eval("empty", kCase).is_null());
  CHECK(Eval(".items[] | select(. > 10)", kCase).is_null());
  CHECK(Eval(".missing", kCase).is_null());
}

TEST_CASE("only the first output of an endless generator is taken", "[workflows][expression]") {
  CHECK(Eval("range(1e9)", kCase) == 0);
  CHECK(Eval("repeat(1)", kCase) == 1);
  CHECK(Eval("limit(3; range(10)) | . + 100", kCase) == 100);
}

TEST_CASE("a runtime error is kInvalid and names the program", "[workflows][expression]") {
  Result<json> result = MustCompile(".mother.name + 1").Evaluate(kCase);
  REQUIRE_FALSE(result.has_value());
  CHECK(result.error().code() == ErrorCode::kInvalid);
  CHECK(result.error().message() ==
        "expression `.mother.name + 1`: string (\"Lan\") and number (1) cannot be added");
}

TEST_CASE("user errors come back with their message", "[workflows][expression]") {
  Result<json> text = MustCompile("error(\"no mother\")").Evaluate(kCase);
  REQUIRE_FALSE(text.has_value());
  CHECK(text.error().message() == "expression `error(\"no mother\")`: no mother");

  Result<json> object = MustCompile("error({code: 7})").Evaluate(kCase);
  REQUIRE_FALSE(object.has_value());
  CHECK(object.error().message() == "expression `error({code: 7})`: {\"code\":7} (not a string)");

  Result<json> index = MustCompile(".items.name").Evaluate(kCase);
  REQUIRE_FALSE(index.has_value());
  CHECK(index.error().message().find("Cannot index array with string \"name\"") !=
        std::string::npos);
}

TEST_CASE("an error after the first output is not seen", "[workflows][expression]") {
  CHECK(Eval("1, error(\"late\")", kCase) == 1);
}

TEST_CASE("a caught error lets evaluation continue", "[workflows][expression]") {
  CHECK(Eval("try (.mother.name + 1) catch \"fallback\"", kCase) == "fallback");
  CHECK(Eval("(.mother.name + 1)? // 5", kCase) == 5);
}

TEST_CASE("a state is reusable after a runtime error", "[workflows][expression]") {
  Expression expression = MustCompile(".x + 1");
  CHECK_FALSE(expression.Evaluate(json{{"x", "s"}}).has_value());
  Result<json> ok = expression.Evaluate(json{{"x", 41}});
  REQUIRE(ok.has_value());
  CHECK(*ok == 42);
  CHECK_FALSE(expression.Evaluate(json{{"x", "s"}}).has_value());
  CHECK(*expression.Evaluate(json{{"x", 1}}) == 2);
}

TEST_CASE("conditions follow jq truthiness", "[workflows][expression]") {
  auto condition = [](const std::string& program, const json& input) {
    Result<bool> result = MustCompile(program).EvaluateCondition(input);
    INFO(program);
    REQUIRE(result.has_value());
    return *result;
  };
  CHECK(condition(".review.approved", kCase));
  CHECK_FALSE(condition(".review.approved | not", kCase));
  CHECK_FALSE(condition(".missing", kCase));
  CHECK_FALSE(condition("null", kCase));
  CHECK_FALSE(condition("false", kCase));
  CHECK_FALSE(condition("empty", kCase));
  // Unlike many languages, 0, "" and [] are true in jq.
  CHECK(condition("0", kCase));
  CHECK(condition("\"\"", kCase));
  CHECK(condition("[]", kCase));
  CHECK(condition("{}", kCase));
  CHECK(condition(".count > 2", kCase));
  CHECK_FALSE(condition(".count > 3", kCase));
  CHECK(condition(".items | length == 3", kCase));
}

TEST_CASE("a condition that fails at run time is an error, not false", "[workflows][expression]") {
  Result<bool> result = MustCompile(".x.approved").EvaluateCondition(json{{"x", 1}});
  REQUIRE_FALSE(result.has_value());
  CHECK(result.error().code() == ErrorCode::kInvalid);
  CHECK(result.error().message().find("expression `") == 0);
}

// ---------------------------------------------------------------------------------------------
// Conversion between nlohmann::json and jq values

TEST_CASE("scalars round-trip through jq", "[workflows][expression]") {
  CHECK(RoundTrip(nullptr).is_null());
  CHECK(RoundTrip(true) == true);
  CHECK(RoundTrip(false) == false);
  CHECK(RoundTrip("") == "");
  CHECK(RoundTrip(0) == 0);
  CHECK(RoundTrip(-17) == -17);
  CHECK(RoundTrip(2.5) == 2.5);
  CHECK(RoundTrip(-0.001) == -0.001);
  CHECK(RoundTrip(1e300) == 1e300);
}

TEST_CASE("integral results stay JSON integers", "[workflows][expression]") {
  json one = Eval("1.0", nullptr);
  CHECK(one.is_number_integer());
  CHECK(one == 1);
  json ten = Eval("5 * 2", nullptr);
  CHECK(ten.is_number_integer());
  json half = Eval("1 / 2", nullptr);
  CHECK(half.is_number_float());
  CHECK(half == 0.5);
  json id = Eval(".", 123456789012);
  CHECK(id.is_number_integer());
  CHECK(id.get<int64_t>() == 123456789012);
  json exact = Eval(".", int64_t{9007199254740992});  // 2^53, exact in a double
  CHECK(exact.get<int64_t>() == 9007199254740992);
  json negative = Eval(".", int64_t{-9007199254740992});
  CHECK(negative.get<int64_t>() == -9007199254740992);
}

TEST_CASE("integers beyond int64 become unsigned or doubles", "[workflows][expression]") {
  json two63 = Eval("pow(2; 63)", nullptr);
  CHECK(two63.is_number_unsigned());
  CHECK(two63.get<uint64_t>() == 9223372036854775808ULL);
  json two64 = Eval("pow(2; 64)", nullptr);
  CHECK(two64.is_number_float());
  CHECK(two64.get<double>() == 18446744073709551616.0);
  json min = Eval(".", std::numeric_limits<int64_t>::min());
  CHECK(min.is_number_integer());
  CHECK(min.get<int64_t>() == std::numeric_limits<int64_t>::min());
  // jq holds doubles: 2^53 + 1 rounds.
  CHECK(Eval(".", int64_t{9007199254740993}).get<int64_t>() == 9007199254740992);
  CHECK(Eval(".", uint64_t{18446744073709551615ULL}).is_number_float());
}

TEST_CASE("NaN and infinities come back as jq prints them", "[workflows][expression]") {
  CHECK(Eval("nan", nullptr).is_null());
  CHECK(Eval("infinite", nullptr) == std::numeric_limits<double>::max());
  CHECK(Eval("-infinite", nullptr) == -std::numeric_limits<double>::max());
}

TEST_CASE("strings keep unicode and embedded NULs", "[workflows][expression]") {
  const std::string vietnamese = "Nguy\xe1\xbb\x85n V\xc4\x83n An";  // Nguyễn Văn An
  CHECK(RoundTrip(vietnamese) == vietnamese);
  CHECK(Eval("length", vietnamese) == 13);
  const std::string emoji = "\xf0\x9f\x91\xb6 baby";
  CHECK(RoundTrip(emoji) == emoji);
  const std::string with_nul("a\0b", 3);
  json back = RoundTrip(with_nul);
  CHECK(back.get<std::string>().size() == 3);
  CHECK(back == with_nul);
  CHECK(Eval("length", with_nul) == 3);
  CHECK(Eval("\"\\u0000\" | length", nullptr) == 1);
  // Keys too.
  json keyed = {{vietnamese, 1}, {with_nul, 2}};
  CHECK(RoundTrip(keyed) == keyed);
}

TEST_CASE("invalid UTF-8 is replaced, not trusted", "[workflows][expression]") {
  json back =
      RoundTrip(std::string("a\xff"
                            "b"));
  CHECK(back ==
        "a\xef\xbf\xbd"
        "b");
}

TEST_CASE("arrays and objects round-trip", "[workflows][expression]") {
  CHECK(RoundTrip(json::array()) == json::array());
  CHECK(RoundTrip(json::object()) == json::object());
  CHECK(RoundTrip(kCase) == kCase);
  json nested = json::parse(R"({"a":[{"b":[1,[2,[3,{"c":null}]]]}],"d":{"e":{"f":"g"}}})");
  CHECK(RoundTrip(nested) == nested);
  CHECK(Eval("keys", json{{"b", 1}, {"a", 2}}) == json({"a", "b"}));
}

TEST_CASE("deep input and output are refused, not crashed on", "[workflows][expression]") {
  json deep = 1;
  for (int i = 0; i < 600; ++i) deep = json::array({deep});
  Result<json> in = MustCompile("1").Evaluate(deep);
  REQUIRE_FALSE(in.has_value());
  CHECK(in.error().message().find("nested") != std::string::npos);

  Result<json> out = MustCompile("reduce range(600) as $i (0; [.])").Evaluate(nullptr);
  REQUIRE_FALSE(out.has_value());
  CHECK(out.error().message().find("nested") != std::string::npos);

  CHECK(Eval("reduce range(100) as $i (0; [.]) | flatten", nullptr) == json({0}));
}

// A plain path (`.`, `.a.b`) is answered without libjq; `P | .` always goes through libjq.
// Both must answer alike, errors included.
TEST_CASE("plain paths answer as libjq does", "[workflows][expression]") {
  const json inputs[] = {
      kCase,
      nullptr,
      json::object(),
      json::parse(
          R"({"a": {"b": 9007199254740993, "c": 1.0, "d": -0.0, "e": 18446744073709551615}})"),
      json::parse(R"({"a": {"b": [1, 2.5, "x", null, true, {"k": 1e300}]}, "if": 1, "_x9": 2})"),
      json{{"a", std::string("bad\xc3\x28 utf-8")}, {"b", {{"c", std::string("\xed\xa0\x80")}}}},
      json{{"a", "tiếng Việt"}, {"b", {{std::string("k\xff"), 1}}}},
      json{{"a", 1}, {"b", "text"}, {"c", json::array({1})}, {"d", true}},
      json::array({1, 2}),
      json("text"),
      json(42),
  };
  const char* programs[] = {".",   ".a",   ".a.b", ".a.b.c", ".mother.citizen_id",
                            ".if", "._x9", ".a.c", ".a.d",   ".a.e",
                            ".b",  ".b.c", ".c.x", ".d.x",   ".missing.deeper"};
  for (const json& input : inputs) {
    for (const char* program : programs) {
      Result<json> plain = MustCompile(program).Evaluate(input);
      Result<json> by_jq = MustCompile(std::string(program) + " | .").Evaluate(input);
      INFO("program: " << program
                       << " input: " << input.dump(-1, ' ', false, json::error_handler_t::replace));
      REQUIRE(plain.has_value() == by_jq.has_value());
      if (plain) {
        CHECK(*plain == *by_jq);
        CHECK(plain->dump(-1, ' ', false, json::error_handler_t::replace) ==
              by_jq->dump(-1, ' ', false, json::error_handler_t::replace));
      } else {
        CHECK(plain.error().message().find("Cannot index") != std::string::npos);
      }
    }
  }
}

TEST_CASE("what only looks like a plain path goes to libjq", "[workflows][expression]") {
  CHECK(Eval(".a?", json("x")) == json());
  CHECK(Eval(".a // 5", json::object()) == 5);
  CHECK(Eval(".\"a\"", json{{"a", 1}}) == 1);
  CHECK(Eval(" .a ", json{{"a", 1}}) == 1);
  CHECK(CompileError(".a.").message.find("end of expression") != std::string::npos);
  CHECK(CompileError(".9a").message.size() > 0);
}

TEST_CASE("programs evaluate concurrently on many threads", "[workflows][expression]") {
  const Expression sum = MustCompile("[.items[] * .factor] | add");
  const Expression name = MustCompile(".name + \"!\"");
  std::vector<std::thread> threads;
  std::vector<int> failures(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) {
        json input = {{"items", {1, 2, 3}}, {"factor", t + i}, {"name", std::to_string(i)}};
        Result<json> total = sum.Evaluate(input);
        Result<json> shout = name.Evaluate(input);
        if (!total || *total != 6 * (t + i)) ++failures[t];
        if (!shout || *shout != std::to_string(i) + "!") ++failures[t];
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  CHECK(failures == std::vector<int>(4, 0));
}

// ---------------------------------------------------------------------------------------------
// Finding `${ ... }`

std::vector<EmbeddedExpression> Find(std::string_view text) {
  std::vector<EmbeddedExpression> found;
  size_t error_offset = 12345;
  INFO(text);
  REQUIRE(FindExpressions(text, &found, &error_offset));
  return found;
}

TEST_CASE("text without expressions has none", "[workflows][expression]") {
  CHECK(Find("").empty());
  CHECK(Find("plain text $ { not } one").empty());
  CHECK(Find("costs $5 {a}").empty());
}

TEST_CASE("expressions are found with their offsets", "[workflows][expression]") {
  const std::string text = "Case ${ .id } for ${.mother.name}";
  std::vector<EmbeddedExpression> found = Find(text);
  REQUIRE(found.size() == 2);
  CHECK(found[0].begin == 5);
  CHECK(found[0].end == 13);
  CHECK(found[0].program == ".id");
  CHECK(found[0].program_begin == 8);
  CHECK(text.substr(found[1].begin, found[1].end - found[1].begin) == "${.mother.name}");
  CHECK(found[1].program == ".mother.name");
  CHECK(found[1].program_begin == 20);
}

TEST_CASE("nested braces belong to the expression", "[workflows][expression]") {
  std::vector<EmbeddedExpression> found = Find("${ {a: {b: .x}} | .a }tail");
  REQUIRE(found.size() == 1);
  CHECK(found[0].program == "{a: {b: .x}} | .a");
  CHECK(found[0].end == 22);
}

TEST_CASE("braces inside jq strings do not end an expression", "[workflows][expression]") {
  std::vector<EmbeddedExpression> found = Find(R"(${ "}" + .a + "{" } and ${ "\"}" })");
  REQUIRE(found.size() == 2);
  CHECK(found[0].program == R"("}" + .a + "{")");
  CHECK(found[1].program == R"("\"}")");
}

TEST_CASE("interpolations inside jq strings are followed", "[workflows][expression]") {
  std::vector<EmbeddedExpression> found = Find(R"(${ "x\({a: "}"} | .a)y" } end)");
  REQUIRE(found.size() == 1);
  CHECK(found[0].program == R"("x\({a: "}"} | .a)y")");
  CHECK(Eval(found[0].program, nullptr) == "x}y");
}

TEST_CASE("an unterminated expression is reported at its dollar", "[workflows][expression]") {
  std::vector<EmbeddedExpression> found;
  size_t error_offset = 0;
  CHECK_FALSE(FindExpressions("ok ${ .a } then ${ .b", &found, &error_offset));
  CHECK(error_offset == 16);
  CHECK(found.size() == 1);
  CHECK_FALSE(FindExpressions("${ \"}\"", &found, &error_offset));
  CHECK_FALSE(FindExpressions("${ {a: 1 }", nullptr, &error_offset));
  CHECK(error_offset == 0);
  CHECK_FALSE(FindExpressions("${ \"\\(.a }\" }", nullptr, nullptr));
}

TEST_CASE("an empty expression is found with an empty program", "[workflows][expression]") {
  std::vector<EmbeddedExpression> found = Find("${ }");
  REQUIRE(found.size() == 1);
  CHECK(found[0].program.empty());
}

TEST_CASE("WholeExpression recognises exactly one expression", "[workflows][expression]") {
  CHECK(WholeExpression("${ .review.approved }") == std::optional<std::string>(".review.approved"));
  CHECK(WholeExpression("  ${.a}  ") == std::optional<std::string>(".a"));
  CHECK(WholeExpression("${ {a: \"}\"} }") == std::optional<std::string>("{a: \"}\"}"));
  CHECK_FALSE(WholeExpression("x ${ .a }").has_value());
  CHECK_FALSE(WholeExpression("${ .a } x").has_value());
  CHECK_FALSE(WholeExpression("${ .a }${ .b }").has_value());
  CHECK_FALSE(WholeExpression("plain").has_value());
  CHECK_FALSE(WholeExpression("${ .a").has_value());
  CHECK_FALSE(WholeExpression("").has_value());
}

// ---------------------------------------------------------------------------------------------
// Rendering templates

TEST_CASE("a whole-expression string becomes the output of any type", "[workflows][expression]") {
  CHECK(*RenderTemplate("${ .count }", kCase) == 3);
  CHECK(*RenderTemplate("${ .items }", kCase) == json({1, 2, 3}));
  CHECK(*RenderTemplate(" ${ .mother } ", kCase) == kCase["mother"]);
  CHECK(RenderTemplate("${ .missing }", kCase)->is_null());
  CHECK(*RenderTemplate("${ .review.approved }", kCase) == true);
}

TEST_CASE("expressions among text are spliced in", "[workflows][expression]") {
  CHECK(*RenderTemplate("Mother ${ .mother.name }, child ${.child.full_name}.", kCase) ==
        "Mother Lan, child Minh.");
  CHECK(*RenderTemplate("n=${ .count } items=${ .items } m=${ .missing } ok=${ .review.approved }",
                        kCase) == "n=3 items=[1,2,3] m=null ok=true");
  CHECK(*RenderTemplate("${ .mother.citizen_id }/${ .child.birth_date }", kCase) ==
        "012345678901/2026-01-05");
  CHECK(*RenderTemplate("obj ${ {a: 1} }", kCase) == "obj {\"a\":1}");
}

TEST_CASE("objects and arrays render member by member", "[workflows][expression]") {
  const json call = json::parse(R"({
    "operation": "get_citizen",
    "citizen_id": "${ .mother.citizen_id }",
    "label": "case of ${ .child.full_name }",
    "nested": {"list": ["${ .count }", 7, null, true, {"deep": "${ .items[1] }"}]},
    "${ .not_a_key }": 1
  })");
  Result<json> rendered = RenderTemplate(call, kCase);
  REQUIRE(rendered.has_value());
  CHECK(*rendered == json::parse(R"({
    "operation": "get_citizen",
    "citizen_id": "012345678901",
    "label": "case of Minh",
    "nested": {"list": [3, 7, null, true, {"deep": 2}]},
    "${ .not_a_key }": 1
  })"));
}

TEST_CASE("values without expressions are copied", "[workflows][expression]") {
  CHECK(*RenderTemplate(42, kCase) == 42);
  CHECK(*RenderTemplate(nullptr, kCase) == nullptr);
  CHECK(*RenderTemplate(2.5, kCase) == 2.5);
  CHECK(*RenderTemplate("plain", kCase) == "plain");
  CHECK(*RenderTemplate(json::array(), kCase) == json::array());
}

TEST_CASE("template errors name the failing program", "[workflows][expression]") {
  Result<json> runtime = RenderTemplate(json{{"x", "${ .mother.name + 1 }"}}, kCase);
  REQUIRE_FALSE(runtime.has_value());
  CHECK(runtime.error().code() == ErrorCode::kInvalid);
  CHECK(runtime.error().message().find("expression `.mother.name + 1`") == 0);

  Result<json> syntax = RenderTemplate(json::array({"ok", "a ${ .a | ] } b"}), kCase);
  REQUIRE_FALSE(syntax.has_value());
  CHECK(syntax.error().message() ==
        "expression `.a | ]`: syntax error, unexpected ']' (at offset 5)");

  Result<json> unterminated = RenderTemplate("hello ${ .a", kCase);
  REQUIRE_FALSE(unterminated.has_value());
  CHECK(unterminated.error().message().find("unterminated `${` at offset 6") == 0);

  Result<json> empty = RenderTemplate("${ }", kCase);
  REQUIRE_FALSE(empty.has_value());
  CHECK(empty.error().message().find("empty expression") != std::string::npos);

  Result<json> denied = RenderTemplate("${ $ENV }", kCase);
  REQUIRE_FALSE(denied.has_value());
  CHECK(denied.error().message().find("'$ENV' is not allowed") != std::string::npos);
}

}  // namespace
}  // namespace wf::workflows

namespace wf::workflows {

TEST_CASE("paths, comparisons, literals and constructions are provably bounded",
          "[workflows][expression][bounded]") {
  for (const char* program : {".",
                              ".a",
                              ".a.b?",
                              ".[\"k\"]",
                              ".[0]",
                              ".a[1:3]",
                              ".review.approved",
                              ".mother.citizen_id + \"/\" + .child.birth_date",
                              ".a == \"x\" and .b > 3",
                              ".x // \"default\"",
                              "{a: .x, \"b\": .y, (.k): 1, c}",
                              "[.a, .b, [], {}]",
                              "if .a then .b elif .c then [] else null end",
                              "has(\"a\") and (.a | not) == false",
                              "(.a | length)",
                              "select(.a) // empty",
                              "try .a catch \"x\"",
                              "\"a # b\" # comment",
                              "ltrimstr(\"x\") | ascii_downcase",
                              "length > 0",
                              "tostring + tojson"}) {
    INFO(program);
    // Pipes make a program unbounded in general; the check refuses every one of them.
    const bool has_pipe = std::string(program).find('|') != std::string::npos;
    CHECK(IsProvablyBounded(program) == !has_pipe);
  }
}

TEST_CASE("iteration, generators, recursion and growth are not provably bounded",
          "[workflows][expression][bounded]") {
  for (const char* program : {"[range(.n)]",
                              ".[]",
                              ".a[]?",
                              ".[ ]",
                              "..",
                              "[.[] | .x]",
                              ".a, .b",
                              "{a: (.x, .y)}",
                              ".[\"a\", \"b\"]",
                              "\"\\(.a)\"",
                              ".s * .k",
                              ".a - .b",
                              ".a % .b",
                              ".a / \",\"",
                              "$__loc__",
                              ". as $x | $x",
                              "def f: f; f",
                              "reduce .[] as $x (0; . + $x)",
                              "limit(1; repeat(.))",
                              "test(\"a+\")",
                              "@base64",
                              ".a = 1",
                              ".a |= 1",
                              ".a += 1",
                              "recurse",
                              "env",
                              "input",
                              "[limit(3; .[])]",
                              "tostring | . + ."}) {
    INFO(program);
    CHECK_FALSE(IsProvablyBounded(program));
  }
  CHECK_FALSE(IsProvablyBounded(std::string(2000, ' ') + "."));  // longer than 1 KiB
  auto expression = Expression::Compile("[range(.n)]", nullptr);
  REQUIRE(expression);
  CHECK_FALSE(expression->bounded());
  CHECK(Expression::Compile(".a.b", nullptr)->bounded());
}

}  // namespace wf::workflows
