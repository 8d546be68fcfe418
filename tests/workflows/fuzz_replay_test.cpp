// Replays the fuzzing corpora under fuzz/corpus/ (seeds and every input the fuzzers found) so
// that the normal build keeps what fuzzing taught us: each input must come back, without an
// exception or a crash. The libFuzzer targets themselves are built only with -DWF_FUZZ=ON.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "workflows/expression.hpp"
#include "workflows/json_limits.hpp"
#include "workflows/loader.hpp"
#include "workflows/yaml_tree.hpp"

namespace wf::workflows {
namespace {

namespace fs = std::filesystem;

struct CorpusFile {
  std::string name;
  std::string bytes;
};

// Every regular file of fuzz/corpus/<which>, sorted by name so failures are reproducible.
std::vector<CorpusFile> Corpus(const std::string& which) {
  std::vector<CorpusFile> files;
  fs::path dir = fs::path(WF_SOURCE_DIR) / "fuzz" / "corpus" / which;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (!entry.is_regular_file()) continue;
    std::ifstream in(entry.path(), std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    files.push_back({entry.path().filename().string(), std::move(bytes)});
  }
  std::sort(files.begin(), files.end(),
            [](const CorpusFile& a, const CorpusFile& b) { return a.name < b.name; });
  return files;
}

std::string Message(const std::string& text) {
  auto parsed = ParseJsonWithin(text);
  return parsed ? "ok" : parsed.error().message();
}

int Depth(const YamlNode& node) {
  int deepest = 0;
  for (const auto& item : node.items) deepest = std::max(deepest, Depth(item));
  for (const auto& [key, value] : node.entries) {
    deepest = std::max({deepest, Depth(key), Depth(value)});
  }
  return deepest + (node.IsSequence() || node.IsMapping() ? 1 : 0);
}

TEST_CASE("every input in the YAML fuzzing corpus parses to a bounded tree",
          "[workflows][yaml][fuzz]") {
  std::vector<CorpusFile> files = Corpus("yaml");
  REQUIRE(files.size() >= 10);
  for (const auto& file : files) {
    INFO(file.name);
    DiagnosticSink sink(file.name);
    YamlLimits limits;
    YamlNode root;
    REQUIRE_NOTHROW(root = ParseYaml(file.bytes, sink, limits));
    CHECK(Depth(root) <= limits.max_depth);
    for (const auto& d : sink.Sorted()) CHECK_FALSE(d.message.empty());
  }
}

TEST_CASE("every input in the loader fuzzing corpus loads or is refused with diagnostics",
          "[workflows][loader][fuzz]") {
  std::vector<CorpusFile> files = Corpus("loader");
  REQUIRE(files.size() >= 10);
  for (const auto& file : files) {
    INFO(file.name);
    LoadResult result;
    REQUIRE_NOTHROW(result = LoadProcedure(file.bytes, file.name));
    CHECK(result.procedure.has_value() == result.diagnostics.empty());
  }
}

TEST_CASE("every program in the expression fuzzing corpus compiles, runs or fails as a value",
          "[workflows][expression][fuzz]") {
  const nlohmann::json data = nlohmann::json::parse(R"({
    "child": {"full_name": "Nguyen Van A", "birth_date": "2026-01-02"},
    "mother": {"citizen_id": "012345678901", "age": 31},
    "review": {"approved": true, "note": null},
    "items": [1, 2.5, "three", [4], {"five": 5}],
    "empty": {}
  })");
  // What fuzz/fuzz_expression.cpp does with one input.
  auto replay = [&data](const std::string& program) {
    ExpressionError error;
    if (auto expression = Expression::Compile(program, &error)) {
      (void)expression->Evaluate(data);
      (void)expression->EvaluateCondition(data);
    }
    nlohmann::json value_template = {
        {"whole", "${" + program + "}"},
        {"spliced", "id ${ " + program + " } end"},
        {"raw", program},
        {"nested", {program, {{"k", "${" + program + "}"}}}},
    };
    (void)RenderTemplate(value_template, data);
  };
  std::vector<CorpusFile> files = Corpus("expression");
  REQUIRE(files.size() >= 10);
  for (const auto& file : files) {
    INFO(file.name);
    if (file.bytes.size() > 4096) continue;  // the fuzz target skips these too
    REQUIRE_NOTHROW(replay(file.bytes));
  }
}

TEST_CASE("every department answer in the fuzzing corpus is bounded before it is parsed",
          "[workflows][limits][fuzz]") {
  std::vector<CorpusFile> files = Corpus("answer");
  REQUIRE(files.size() >= 10);
  for (const auto& file : files) {
    INFO(file.name);
    // What fuzz/fuzz_answer.cpp does with one input.
    Result<nlohmann::json> parsed;
    REQUIRE_NOTHROW(parsed = ParseJsonWithin(file.bytes));
    if (!parsed) {
      CHECK_FALSE(parsed.error().message().empty());
      continue;
    }
    JsonLimits depth_only;
    depth_only.max_bytes = depth_only.max_values = depth_only.max_string_bytes = SIZE_MAX;
    auto depth = MeasureJson(*parsed, depth_only);
    REQUIRE(depth.has_value());
    CHECK(depth->depth <= kMaxJsonDepth);
    auto size = MeasureJson(*parsed);
    if (!size) continue;
    nlohmann::json copy = *parsed;
    CHECK(copy.dump().size() == size->bytes);
  }
  // The poisons among the seeds are refused by name.
  for (const auto& file : files) {
    if (file.name.rfind("deep_", 0) == 0) {
      INFO(file.name);
      CHECK_THAT(Message(file.bytes), Catch::StartsWith("JSON nested deeper than 32 levels"));
    }
  }
}

}  // namespace
}  // namespace wf::workflows
