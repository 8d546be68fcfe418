#pragma once

#include <string>
#include <vector>

namespace wf::workflows {

// A place in a definition file; line and column are 1-based, 0 when unknown.
struct SourceLocation {
  int line = 0;
  int column = 0;
};

// One problem found in a definition, printed as `file:line:col: error: message`.
struct Diagnostic {
  std::string file;
  SourceLocation where;
  std::string message;

  std::string ToString() const;
  // The same as a warning: "FILE:LINE:COL: warning: MESSAGE".
  std::string WarningString() const;
  friend bool operator<(const Diagnostic& a, const Diagnostic& b);
};

// Collects diagnostics for one file while a loader or a check runs.
class DiagnosticSink {
 public:
  explicit DiagnosticSink(std::string file) : file_(std::move(file)) {}
  void Error(SourceLocation where, std::string message);
  bool empty() const { return diagnostics_.empty(); }
  const std::string& file() const { return file_; }
  // All diagnostics collected so far, sorted by line, column, then message, without duplicates.
  std::vector<Diagnostic> Sorted() const;

 private:
  std::string file_;
  std::vector<Diagnostic> diagnostics_;
};

// Of the candidates, the one nearest to `word` by edit distance when it is close enough to be a
// plausible typo (at most a third of the word's length, at least 1); empty otherwise.
std::string NearestMatch(const std::string& word, const std::vector<std::string>& candidates);

}  // namespace wf::workflows
