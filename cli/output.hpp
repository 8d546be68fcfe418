#pragma once

#include <ostream>
#include <string>
#include <vector>

namespace wf::cli {

// A plain-text table for people: a header row, then rows; columns padded to the widest cell.
class Table {
 public:
  explicit Table(std::vector<std::string> header) : header_(std::move(header)) {}
  void AddRow(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  void Print(std::ostream& out) const;
  bool empty() const { return rows_.empty(); }

 private:
  std::vector<std::string> header_;
  std::vector<std::vector<std::string>> rows_;
};

// Reads a whole file, or standard input for "-". Returns false with `error` set on failure.
bool ReadInput(const std::string& path, std::string* text, std::string* error);

}  // namespace wf::cli
