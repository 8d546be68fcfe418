#include "workflows/diagnostic.hpp"

#include <algorithm>
#include <tuple>

#include "workflows/i18n.hpp"

namespace wf::workflows {

std::string Diagnostic::ToString() const {
  // Line and column stay plain digits in every language: editors read them.
  return TrFormat("{0}:{1}:{2}: error: {3}", file, std::to_string(where.line),
                  std::to_string(where.column), message);
}

std::string Diagnostic::WarningString() const {
  return TrFormat("{0}:{1}:{2}: warning: {3}", file, std::to_string(where.line),
                  std::to_string(where.column), message);
}

bool operator<(const Diagnostic& a, const Diagnostic& b) {
  return std::tie(a.file, a.where.line, a.where.column, a.message) <
         std::tie(b.file, b.where.line, b.where.column, b.message);
}

void DiagnosticSink::Error(SourceLocation where, std::string message) {
  diagnostics_.push_back(Diagnostic{file_, where, std::move(message)});
}

std::vector<Diagnostic> DiagnosticSink::Sorted() const {
  std::vector<Diagnostic> out = diagnostics_;
  std::sort(out.begin(), out.end());
  out.erase(
      std::unique(out.begin(), out.end(),
                  [](const Diagnostic& a, const Diagnostic& b) { return !(a < b) && !(b < a); }),
      out.end());
  return out;
}

namespace {
size_t EditDistance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t above = row[j];
      size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + cost});
      diagonal = above;
    }
  }
  return row[b.size()];
}
}  // namespace

std::string NearestMatch(const std::string& word, const std::vector<std::string>& candidates) {
  size_t limit = std::max<size_t>(1, word.size() / 3);
  std::string best;
  size_t best_distance = limit + 1;
  for (const auto& candidate : candidates) {
    size_t d = EditDistance(word, candidate);
    if (d < best_distance) {
      best_distance = d;
      best = candidate;
    }
  }
  return best;
}

}  // namespace wf::workflows
