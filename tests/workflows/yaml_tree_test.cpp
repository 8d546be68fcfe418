#include "workflows/yaml_tree.hpp"

#include <algorithm>
#include <catch2/catch.hpp>
#include <string>
#include <vector>

namespace wf::workflows {
namespace {

struct Parsed {
  YamlNode root;
  std::vector<Diagnostic> diagnostics;
};

Parsed Parse(const std::string& text, const YamlLimits& limits = {}) {
  DiagnosticSink sink("test.yaml");
  YamlNode root = ParseYaml(text, sink, limits);
  return {std::move(root), sink.Sorted()};
}

// "line:col: message" for each diagnostic, for compact assertions.
std::vector<std::string> Messages(const Parsed& parsed) {
  std::vector<std::string> out;
  for (const auto& d : parsed.diagnostics) {
    out.push_back(std::to_string(d.where.line) + ":" + std::to_string(d.where.column) + ": " +
                  d.message);
  }
  return out;
}

// The deepest nesting of collections in a tree.
int Depth(const YamlNode& node) {
  int deepest = 0;
  for (const auto& item : node.items) deepest = std::max(deepest, Depth(item));
  for (const auto& [key, value] : node.entries) {
    deepest = std::max({deepest, Depth(key), Depth(value)});
  }
  return deepest + (node.IsSequence() || node.IsMapping() ? 1 : 0);
}

TEST_CASE("a block mapping keeps its entries in order with 1-based positions",
          "[workflows][yaml]") {
  Parsed p = Parse("procedure: demo\nversion: 1\nsteps:\n  first:\n    end: completed\n");
  REQUIRE(p.diagnostics.empty());
  const YamlNode& root = p.root;
  REQUIRE(root.IsMapping());
  CHECK_FALSE(root.flow);
  CHECK(root.where.line == 1);
  CHECK(root.where.column == 1);
  REQUIRE(root.entries.size() == 3);
  CHECK(root.entries[0].first.scalar == "procedure");
  CHECK(root.entries[1].first.scalar == "version");
  CHECK(root.entries[2].first.scalar == "steps");

  const YamlNode* version = root.Find("version");
  REQUIRE(version != nullptr);
  CHECK(version->IsScalar());
  CHECK(version->scalar == "1");
  CHECK_FALSE(version->quoted);
  CHECK(version->where.line == 2);
  CHECK(version->where.column == 10);

  const YamlNode* steps = root.Find("steps");
  REQUIRE(steps != nullptr);
  REQUIRE(steps->IsMapping());
  const YamlNode* first = steps->Find("first");
  REQUIRE(first != nullptr);
  CHECK(first->where.line == 5);
  CHECK(first->where.column == 5);
  const YamlNode* end = first->Find("end");
  REQUIRE(end != nullptr);
  CHECK(end->scalar == "completed");
  CHECK(end->where.line == 5);
  CHECK(end->where.column == 10);
  CHECK(root.Find("missing") == nullptr);
  CHECK(version->Find("anything") == nullptr);
}

TEST_CASE("sequences in block and flow style are lists with their items", "[workflows][yaml]") {
  Parsed p = Parse("block:\n  - a\n  - b\nflow: [c, 'd', {e: f}]\n");
  REQUIRE(p.diagnostics.empty());
  const YamlNode* block = p.root.Find("block");
  REQUIRE(block != nullptr);
  REQUIRE(block->IsSequence());
  CHECK_FALSE(block->flow);
  REQUIRE(block->items.size() == 2);
  CHECK(block->items[1].scalar == "b");
  CHECK(block->items[1].where.line == 3);
  CHECK(block->items[1].where.column == 5);

  const YamlNode* flow = p.root.Find("flow");
  REQUIRE(flow != nullptr);
  REQUIRE(flow->IsSequence());
  CHECK(flow->flow);
  CHECK(flow->where.line == 4);
  CHECK(flow->where.column == 7);
  REQUIRE(flow->items.size() == 3);
  CHECK(flow->items[0].scalar == "c");
  CHECK_FALSE(flow->items[0].quoted);
  CHECK(flow->items[1].scalar == "d");
  CHECK(flow->items[1].quoted);
  CHECK(flow->items[1].where.column == 11);  // at the opening quote
  REQUIRE(flow->items[2].IsMapping());
  CHECK(flow->items[2].flow);
  const YamlNode* e = flow->items[2].Find("e");
  REQUIRE(e != nullptr);
  CHECK(e->scalar == "f");
}

TEST_CASE("quoted and block scalars are marked quoted, plain ones are not", "[workflows][yaml]") {
  Parsed p = Parse(
      "plain: true\nsingle: 'true'\ndouble: \"3\"\nliteral: |\n  one\n  two\n"
      "folded: >\n  a\n  b\nescaped: \"tab\\tend\"\nstr_tag: !!str 5\n");
  REQUIRE(p.diagnostics.empty());
  const YamlNode& root = p.root;
  CHECK_FALSE(root.Find("plain")->quoted);
  CHECK(root.Find("plain")->scalar == "true");
  CHECK(root.Find("single")->quoted);
  CHECK(root.Find("single")->scalar == "true");
  CHECK(root.Find("double")->quoted);
  CHECK(root.Find("double")->scalar == "3");
  CHECK(root.Find("literal")->quoted);
  CHECK(root.Find("literal")->scalar == "one\ntwo\n");
  CHECK(root.Find("folded")->quoted);
  CHECK(root.Find("folded")->scalar == "a b\n");
  CHECK(root.Find("escaped")->scalar == "tab\tend");
  CHECK(root.Find("str_tag")->quoted);
  CHECK(root.Find("str_tag")->scalar == "5");
}

TEST_CASE("tilde, null in three spellings and an empty value are null; quoted ones are text",
          "[workflows][yaml]") {
  Parsed p = Parse("a: ~\nb: null\nc: Null\nd: NULL\ne:\nf: 'null'\ng: \"~\"\nh: nul\n");
  REQUIRE(p.diagnostics.empty());
  for (const char* key : {"a", "b", "c", "d", "e"}) {
    INFO(key);
    const YamlNode* v = p.root.Find(key);
    REQUIRE(v != nullptr);
    CHECK(v->IsNull());
    CHECK(std::string(v->KindName()) == "null");
  }
  // An empty value sits at its key, not at the next line's token.
  CHECK(p.root.Find("e")->where.line == 5);
  for (const char* key : {"f", "g", "h"}) {
    INFO(key);
    const YamlNode* v = p.root.Find(key);
    REQUIRE(v != nullptr);
    CHECK(v->IsScalar());
  }
  CHECK(p.root.Find("f")->scalar == "null");
}

TEST_CASE("kind names read well in messages", "[workflows][yaml]") {
  YamlNode node;
  CHECK(std::string(node.KindName()) == "null");
  node.kind = YamlNode::Kind::kScalar;
  CHECK(std::string(node.KindName()) == "a scalar");
  node.kind = YamlNode::Kind::kSequence;
  CHECK(std::string(node.KindName()) == "a list");
  node.kind = YamlNode::Kind::kMapping;
  CHECK(std::string(node.KindName()) == "a mapping");
}

TEST_CASE("an empty document is a null root without errors", "[workflows][yaml]") {
  for (const char* text : {"", "# only a comment\n", "---\n", "\n\n"}) {
    INFO(text);
    Parsed p = Parse(text);
    CHECK(p.diagnostics.empty());
    CHECK(p.root.IsNull());
    CHECK(p.root.where.line >= 1);
  }
}

TEST_CASE("a duplicate key is reported at its line with the first one's line",
          "[workflows][yaml]") {
  Parsed p = Parse("a: 1\nb: 2\na: 3\n");
  CHECK(Messages(p) == std::vector<std::string>{"3:1: duplicate key 'a' (first at line 1)"});
  // The first value is kept, the duplicate is not added.
  REQUIRE(p.root.entries.size() == 2);
  CHECK(p.root.Find("a")->scalar == "1");
}

TEST_CASE("duplicate keys are found in nested and flow mappings, quoted or not",
          "[workflows][yaml]") {
  Parsed p = Parse("steps:\n  x:\n    next: a\n    next: b\n  y: {k: 1, 'k': 2}\n");
  CHECK(Messages(p) == std::vector<std::string>{"4:5: duplicate key 'next' (first at line 3)",
                                                "5:13: duplicate key 'k' (first at line 5)"});
  // The same key in different mappings is no duplicate.
  Parsed fine = Parse("a: {x: 1}\nb: {x: 2}\n");
  CHECK(fine.diagnostics.empty());
}

TEST_CASE("a list or mapping used as a key is refused", "[workflows][yaml]") {
  Parsed p = Parse("? [a, b]\n: c\nd: e\n");
  CHECK(Messages(p) ==
        std::vector<std::string>{"1:3: a mapping key must be a plain scalar, not a list"});
  CHECK(p.root.Find("d") != nullptr);
  Parsed m = Parse("{? {x: 1} : 2}");
  REQUIRE(m.diagnostics.size() == 1);
  CHECK(m.diagnostics[0].message == "a mapping key must be a plain scalar, not a mapping");
}

TEST_CASE("an alias is refused at its position", "[workflows][yaml]") {
  Parsed p = Parse("base: &b {x: 1}\nuse: *b\n");
  CHECK(Messages(p) ==
        std::vector<std::string>{"2:6: aliases (*name) are not allowed in procedure definitions"});
  // An alias to nothing gets the same message rather than yaml-cpp's.
  Parsed unknown = Parse("a: 1\nb: *nothing\n");
  CHECK(Messages(unknown) ==
        std::vector<std::string>{"2:4: aliases (*name) are not allowed in procedure definitions"});
}

TEST_CASE("the billion laughs are refused without expanding anything", "[workflows][yaml]") {
  std::string text = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n";
  std::string previous = "a";
  for (char name = 'b'; name <= 'j'; ++name) {
    text += std::string(1, name) + ": &" + name + " [";
    for (int i = 0; i < 9; ++i) text += (i ? ", *" : "*") + previous;
    text += "]\n";
    previous = std::string(1, name);
  }
  Parsed p = Parse(text);
  REQUIRE_FALSE(p.diagnostics.empty());
  CHECK(p.diagnostics[0].where.line == 2);
  CHECK(p.diagnostics[0].message == "aliases (*name) are not allowed in procedure definitions");
  // Nothing was expanded: the tree holds placeholders, not copies.
  const YamlNode* b = p.root.Find("b");
  REQUIRE(b != nullptr);
  REQUIRE(b->items.size() == 9);
  CHECK(b->items[0].IsNull());
  CHECK(p.diagnostics.size() <= 101);
}

TEST_CASE("a second document is refused at its start", "[workflows][yaml]") {
  Parsed p = Parse("a: 1\n---\nb: 2\n");
  CHECK(Messages(p) == std::vector<std::string>{"2:1: only one YAML document is allowed"});
  CHECK(p.root.Find("a") != nullptr);
  CHECK(p.root.Find("b") == nullptr);

  Parsed after_end = Parse("a: 1\n...\nb: 2\n");
  CHECK(Messages(after_end) == std::vector<std::string>{"3:1: only one YAML document is allowed"});

  // One document with its own markers is fine.
  Parsed single = Parse("---\na: 1\n...\n");
  CHECK(single.diagnostics.empty());
  CHECK(single.root.Find("a") != nullptr);
}

TEST_CASE("a stray token after the document is a syntax error, not a second document",
          "[workflows][yaml]") {
  // yaml-cpp's LoadAll loops forever on these; we stop after the first document.
  CHECK(Messages(Parse(",")) ==
        std::vector<std::string>{"1:1: YAML syntax: unexpected ',' after the document"});
  CHECK(Messages(Parse("{a: 1},\n")) ==
        std::vector<std::string>{"1:7: YAML syntax: unexpected ',' after the document"});
}

TEST_CASE("input over the size limit is refused before parsing", "[workflows][yaml]") {
  YamlLimits limits;
  limits.max_bytes = 16;
  Parsed p = Parse("a: 1\nb: 2\nc: 3\nd: 4\n", limits);
  CHECK(Messages(p) == std::vector<std::string>{
                           "1:1: the definition is 20 bytes, more than the limit of 16 bytes"});
  CHECK(p.root.IsNull());
  // Exactly at the limit is fine.
  Parsed at_limit = Parse("a: 1\nb: 2\nc: 3\nd", limits);
  CHECK(at_limit.diagnostics.empty());
}

TEST_CASE("100000 nested flow sequences stop at the depth limit without crashing",
          "[workflows][yaml]") {
  Parsed p = Parse(std::string(100000, '['));
  REQUIRE(p.diagnostics.size() == 1);
  CHECK(p.diagnostics[0].message == "nesting deeper than 64 levels");
  CHECK(p.diagnostics[0].where.line == 1);
  CHECK(Depth(p.root) <= 64);

  Parsed closed = Parse(std::string(1000, '[') + std::string(1000, ']'));
  REQUIRE(closed.diagnostics.size() == 1);
  CHECK(closed.diagnostics[0].message == "nesting deeper than 64 levels");
  CHECK(closed.diagnostics[0].where.column == 65);
}

TEST_CASE("100000 nested block sequences stop at the depth limit without crashing",
          "[workflows][yaml]") {
  std::string text;
  for (int i = 0; i < 100000; ++i) text += "- ";
  text += "x\n";
  Parsed p = Parse(text);
  REQUIRE(p.diagnostics.size() == 1);
  CHECK(p.diagnostics[0].message == "nesting deeper than 64 levels");
  CHECK(p.diagnostics[0].where.line == 1);
  CHECK(p.diagnostics[0].where.column == 129);
  CHECK(Depth(p.root) == 64);
}

TEST_CASE("nesting exactly at the depth limit is accepted", "[workflows][yaml]") {
  YamlLimits limits;
  limits.max_depth = 3;
  CHECK(Parse("[[[x]]]", limits).diagnostics.empty());
  Parsed deeper = Parse("a: {b: [[x]]}", limits);
  CHECK(Messages(deeper) == std::vector<std::string>{"1:9: nesting deeper than 3 levels"});
}

TEST_CASE("parsing stops after the event budget", "[workflows][yaml]") {
  YamlLimits limits;
  limits.max_events = 50;
  std::string text = "[";
  for (int i = 0; i < 100; ++i) text += "x, ";
  text += "]";
  Parsed p = Parse(text, limits);
  REQUIRE(p.diagnostics.size() == 1);
  CHECK(p.diagnostics[0].message ==
        "more than 50 YAML events; the definition is too large to read");
  CHECK(p.root.items.size() < 50);
}

TEST_CASE("a syntax error is reported at yaml-cpp's position with its message",
          "[workflows][yaml]") {
  Parsed unclosed = Parse("a: [1, 2\nb: 3\n");
  REQUIRE(unclosed.diagnostics.size() == 1);
  CHECK(unclosed.diagnostics[0].message == "YAML syntax: end of sequence flow not found");
  CHECK(unclosed.diagnostics[0].where.line == 2);
  CHECK(unclosed.diagnostics[0].where.column == 2);

  Parsed bad_value = Parse("a: 1\nb: c: d\n");
  CHECK(Messages(bad_value) == std::vector<std::string>{"2:5: YAML syntax: illegal map value"});

  Parsed quote = Parse("a: 'abc");
  CHECK(Messages(quote) == std::vector<std::string>{"1:8: YAML syntax: illegal EOF in scalar"});
}

TEST_CASE("hostile bytes never escape as exceptions", "[workflows][yaml]") {
  const std::vector<std::string> inputs = {
      std::string("a: \"\0\"\n", 7),
      "\xff\xfe\x00",
      "]",
      "}",
      "? ? ? ?",
      "- - - -\n  - :",
      "%YAML 9.9\n---\na",
      "a: !<",
      "&a &b x",
      "!!a !!b x",
      "[a: b, : c]",
      "\t- x",
  };
  for (const auto& text : inputs) {
    INFO(text);
    DiagnosticSink sink("test.yaml");
    CHECK_NOTHROW(ParseYaml(text, sink));
  }
}

}  // namespace
}  // namespace wf::workflows
