#pragma once

// A temporary folder for one test, removed with everything in it when it goes out of scope.

#include <filesystem>
#include <string>

namespace wf::testing {

class TempDir {
 public:
  // Creates `<temp>/<prefix><random>`; FAILs the running test when it cannot.
  explicit TempDir(const std::string& prefix = "wf_test_");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  // `path() / name`.
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

}  // namespace wf::testing
