#include "tests/support/temp_dir.hpp"

#include <system_error>

#include <catch2/catch.hpp>

#include "tests/support/test_database.hpp"

namespace wf::testing {

TempDir::TempDir(const std::string& prefix)
    : path_(std::filesystem::temp_directory_path() / (prefix + RandomName())) {
  std::error_code error;
  if (!std::filesystem::create_directories(path_, error)) {
    FAIL("cannot create the test folder " << path_ << ": " << error.message());
  }
}

TempDir::~TempDir() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

}  // namespace wf::testing
