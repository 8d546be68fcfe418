#pragma once

// The store's records as result rows: one column table per record (private to engine/: the
// store's .cpp files and dialect.cpp include it). A table lists a record's columns in SELECT
// order, each with the SQL name that selects it, how SOCI reads it and where its value lands in
// the record. The select list, the result kinds and the reading positions all come from that one
// table, so a column added to it cannot fall out of step with the others. Light on purpose: no
// SOCI here.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "engine/dialect.hpp"
#include "engine/history.hpp"
#include "engine/store.hpp"
#include "engine/timestamp.hpp"

namespace wf::engine::detail {

// One value of a result row: a SOCI slot (text, or an integer already converted) or a libpq
// pipeline's text. Refers to the row it came from; read it before the row moves on.
class Cell {
 public:
  Cell(bool null, const std::string* text, std::optional<std::int64_t> integer)
      : null_(null), text_(text), integer_(integer) {}

  bool IsNull() const { return null_; }
  std::string Text() const { return null_ ? std::string() : *text_; }
  std::optional<std::string> OptText() const {
    return null_ ? std::nullopt : std::optional<std::string>(*text_);
  }
  std::int64_t Int() const {
    if (null_) return 0;
    return integer_ ? *integer_ : std::stoll(*text_);
  }
  std::optional<std::int64_t> OptInt() const {
    return null_ ? std::nullopt : std::optional<std::int64_t>(Int());
  }
  Timestamp Time() const { return FromMicros(Int()); }
  std::optional<Timestamp> OptTime() const {
    return null_ ? std::nullopt : std::optional<Timestamp>(Time());
  }

 private:
  bool null_;
  const std::string* text_;
  std::optional<std::int64_t> integer_;
};

// How a column enters a select list.
enum class Select {
  kPlain,         // by its name
  kJson,          // a JSON document, read as text (Dialect::JsonText)
  kDocument,      // a large value that lists without documents leave out (selected as '')
  kJsonDocument,  // both
};

// One column of a record's table.
template <typename Record>
struct Column {
  std::string_view name;               // as the table names it
  char kind;                           // how SOCI reads it: 't' text, 'i' integer
  void (*read)(Record&, const Cell&);  // puts the value into the record
  Select select = Select::kPlain;
};

template <typename Record>
using ColumnTable = std::span<const Column<Record>>;

// The column names, comma-separated, as an INSERT lists them.
template <typename Record>
std::string ColumnNames(ColumnTable<Record> columns) {
  std::string out;
  for (const Column<Record>& c : columns) {
    if (!out.empty()) out += ", ";
    out += c.name;
  }
  return out;
}

// The select list: JSON documents as text, documents as '' unless `documents`, every column
// prefixed with `table_alias` when one is given.
template <typename Record>
std::string SelectList(ColumnTable<Record> columns, const Dialect& dialect, bool documents = true,
                       std::string_view table_alias = {}) {
  const std::string prefix = table_alias.empty() ? std::string() : std::string(table_alias) + ".";
  std::string out;
  for (const Column<Record>& c : columns) {
    if (!out.empty()) out += ", ";
    const bool json = c.select == Select::kJson || c.select == Select::kJsonDocument;
    const bool document = c.select == Select::kDocument || c.select == Select::kJsonDocument;
    if (document && !documents) {
      out += "''";
    } else if (json) {
      out += dialect.JsonText(prefix + std::string(c.name));
    } else {
      out += prefix;
      out += c.name;
    }
  }
  return out;
}

// The result kinds for Query::Columns, one letter per column.
template <typename Record>
std::string ColumnKinds(ColumnTable<Record> columns) {
  std::string out;
  for (const Column<Record>& c : columns) out += c.kind;
  return out;
}

// Reads a record from the first columns.size() columns of `row` (a Query or a TextRow).
template <typename Record, typename Row>
Record ReadRow(ColumnTable<Record> columns, const Row& row) {
  Record record;
  for (std::size_t i = 0; i < columns.size(); ++i) {
    columns[i].read(record, row.At(static_cast<int>(i)));
  }
  return record;
}

// The tables, defined in store_rows.cpp.
extern const ColumnTable<ProcedureRecord> kProcedureColumns;
extern const ColumnTable<CaseRecord> kCaseColumns;
extern const ColumnTable<WorkItem> kWorkColumns;  // also Dialect::WorkColumns
extern const ColumnTable<TaskRecord> kTaskColumns;
extern const ColumnTable<IncidentRecord> kIncidentColumns;
extern const ColumnTable<EvidenceRecord> kEvidenceColumns;
extern const ColumnTable<RefusalRecord> kRefusalColumns;
extern const ColumnTable<HistoryEvent> kHistoryColumns;
extern const ColumnTable<ArchivedChain> kArchivedColumns;

}  // namespace wf::engine::detail
