// Bad definitions with their expected diagnostics beside them (DuckDB's .test files):
// tests/workflows/golden/NAME.yaml is loaded as "NAME.yaml" and its diagnostics must equal
// NAME.expected line for line. Set WF_GOLDEN_UPDATE=1 to rewrite the .expected files from what
// the loader says now (then read the diff before committing it).

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "workflows/loader.hpp"

namespace wf::workflows {
namespace {

std::filesystem::path GoldenDir() {
  return std::filesystem::path(WF_SOURCE_DIR) / "tests" / "workflows" / "golden";
}

std::string ReadAll(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::vector<std::string> ReadLines(const std::filesystem::path& path) {
  std::vector<std::string> lines;
  std::istringstream in(ReadAll(path));
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  while (!lines.empty() && lines.back().empty()) lines.pop_back();
  return lines;
}

std::vector<std::filesystem::path> GoldenDefinitions() {
  std::vector<std::filesystem::path> out;
  for (const auto& entry : std::filesystem::directory_iterator(GoldenDir())) {
    if (entry.path().extension() == ".yaml") out.push_back(entry.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

TEST_CASE("every golden bad definition gives exactly its expected diagnostics",
          "[workflows][golden]") {
  std::vector<std::filesystem::path> definitions = GoldenDefinitions();
  // Each file holds one distinct mistake; the suite must not shrink by accident.
  REQUIRE(definitions.size() >= 30);
  bool update = std::getenv("WF_GOLDEN_UPDATE") != nullptr;
  for (const auto& path : definitions) {
    std::string name = path.filename().string();
    DYNAMIC_SECTION(name) {
      LoadResult result = LoadProcedure(ReadAll(path), name);
      std::vector<std::string> actual;
      for (const Diagnostic& d : result.diagnostics) actual.push_back(d.ToString());
      std::filesystem::path expected_path = path;
      expected_path.replace_extension(".expected");
      if (update) {
        std::ofstream out(expected_path, std::ios::binary | std::ios::trunc);
        for (const std::string& line : actual) out << line << "\n";
      }
      REQUIRE(std::filesystem::exists(expected_path));
      std::vector<std::string> expected = ReadLines(expected_path);
      // A bad definition is never loaded, and says why.
      CHECK_FALSE(result.procedure.has_value());
      CHECK_FALSE(expected.empty());
      CHECK(actual == expected);
    }
  }
}

}  // namespace
}  // namespace wf::workflows
