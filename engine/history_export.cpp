#include "engine/history_export.hpp"

#include <cstdint>
#include <optional>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/archive.hpp"
#include "workflows/i18n.hpp"
#include "workflows/json_text.hpp"

namespace wf::engine {

namespace {

const std::vector<std::string>& CsvHeader() {
  static const std::vector<std::string> header = {"case", "seq",     "at",        "actor", "action",
                                                  "step", "details", "prev_hash", "hash"};
  return header;
}

std::string CsvField(const std::string& text) {
  if (text.find_first_of(",\"\r\n") == std::string::npos) return text;
  std::string out = "\"";
  for (char c : text) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

// Splits one CSV record (RFC 4180) read from `in`, which may span lines inside quotes.
bool ReadCsvRecord(std::istream& in, std::vector<std::string>& fields) {
  fields.clear();
  std::string field;
  bool quoted = false, any = false;
  for (int c; (c = in.get()) != EOF;) {
    any = true;
    if (quoted) {
      if (c == '"') {
        if (in.peek() == '"') {
          field += '"';
          in.get();
        } else {
          quoted = false;
        }
      } else {
        field += static_cast<char>(c);
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      fields.push_back(std::move(field));
      field.clear();
    } else if (c == '\n') {
      fields.push_back(std::move(field));
      return true;
    } else if (c != '\r') {
      field += static_cast<char>(c);
    }
  }
  if (any) fields.push_back(std::move(field));
  return any;
}

Status ReadCsv(std::istream& in, const std::string& path,
               const std::function<Status(const HistoryEvent&)>& visit) {
  const std::vector<std::string>& header = CsvHeader();
  std::vector<std::string> fields;
  if (!ReadCsvRecord(in, fields) || fields != header) {
    std::string names;
    for (const auto& name : header) names += (names.empty() ? "" : ",") + name;
    return Status::Invalid(
        TrFormat("{0}:1: expected the header {1} (a `wf audit export` file?)", path, names));
  }
  for (std::int64_t number = 2; ReadCsvRecord(in, fields); ++number) {
    if (fields.size() != header.size()) {
      return Status::Invalid(TrFormat("{0}:{1}: expected {2} fields, found {3}", path, number,
                                      header.size(), fields.size()));
    }
    HistoryEvent e;
    e.case_id = fields[0];
    try {
      e.seq = std::stoll(fields[1]);
    } catch (const std::exception&) {
      return Status::Invalid(
          TrFormat("{0}:{1}: seq '{2}' is not a number", path, number, fields[1]));
    }
    e.at = fields[2];
    e.actor = fields[3];
    e.action = fields[4];
    e.step = fields[5];
    e.details = fields[6];
    e.prev_hash = fields[7];
    e.hash = fields[8];
    if (Status s = visit(e); !s.ok()) return s;
  }
  return Status::Ok();
}

Status ReadJsonLines(std::istream& in, const std::string& path,
                     const std::function<Status(const HistoryEvent&)>& visit) {
  std::string line;
  for (std::int64_t number = 1; std::getline(in, line); ++number) {
    if (line.empty()) continue;
    std::optional<HistoryEvent> event =
        HistoryEventFromJson(nlohmann::json::parse(line, nullptr, false));
    if (!event) {
      return Status::Invalid(
          TrFormat("{0}:{1}: not a history event as `wf audit export` writes them", path, number));
    }
    if (Status s = visit(*event); !s.ok()) return s;
  }
  return Status::Ok();
}

}  // namespace

void WriteExportHeader(std::ostream& out, ExportFormat format) {
  if (format != ExportFormat::kCsv) return;
  const std::vector<std::string>& header = CsvHeader();
  for (size_t i = 0; i < header.size(); ++i) out << (i > 0 ? "," : "") << header[i];
  out << '\n';
}

void WriteExportEvent(std::ostream& out, ExportFormat format, const HistoryEvent& e) {
  if (format == ExportFormat::kCsv) {
    out << CsvField(e.case_id) << ',' << e.seq << ',' << CsvField(e.at) << ',' << CsvField(e.actor)
        << ',' << CsvField(e.action) << ',' << CsvField(e.step) << ',' << CsvField(e.details) << ','
        << CsvField(e.prev_hash) << ',' << CsvField(e.hash) << '\n';
    return;
  }
  out << workflows::DumpJson(HistoryEventJson(e), nlohmann::json::error_handler_t::replace)
      << '\n';
}

Status ReadExport(std::istream& in, const std::string& path,
                  const std::function<Status(const HistoryEvent&)>& visit) {
  if (in.peek() == '{' || in.peek() == EOF) return ReadJsonLines(in, path, visit);
  return ReadCsv(in, path, visit);
}

}  // namespace wf::engine
