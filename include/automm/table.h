// A table of string cells, as read from CSV / TSV / JSON Lines.
//
// Cells keep their text; a missing cell (empty CSV field, pandas' NA spellings,
// JSON null) is marked in `present`. Typed views (numbers, categories, text) are
// built later by the data processors, so reading never guesses a column's type.
#pragma once

#include <cstddef>
#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

namespace automm {

struct Column {
  std::string name;
  std::vector<std::string> cells;  // one per row; "" where missing
  std::vector<uint8_t> present;    // 1 = has a value, 0 = missing

  size_t size() const { return cells.size(); }
  bool is_missing(size_t row) const { return present[row] == 0; }
  void push(std::string value, bool is_present);
};

class Table {
 public:
  Table() = default;

  size_t num_rows() const;
  size_t num_columns() const { return columns_.size(); }
  std::vector<std::string> column_names() const;
  bool has_column(const std::string& name) const;

  // Throws std::invalid_argument naming the column and the table's source.
  const Column& column(const std::string& name) const;
  Column& column(const std::string& name);
  const std::vector<Column>& columns() const { return columns_; }

  // Adds a column; throws if the name exists or the length differs.
  void add_column(Column column);
  void drop_column(const std::string& name);
  Table select_rows(const std::vector<size_t>& rows) const;

  // Where the table came from (a file path, or a label such as "<memory>");
  // used in error messages and to resolve relative paths in cells.
  std::string source = "<memory>";

 private:
  std::vector<Column> columns_;
};

// True for the spellings pandas reads as missing by default ("", "NA", "NaN",
// "nan", "null", "None", "N/A", "#N/A", "<NA>", ...).
bool is_missing_token(const std::string& text);

// Reads by extension: .csv, .tsv / .tab, .jsonl / .ndjson / .json (JSON Lines).
// Errors name the file, the line and what was wrong.
Table read_table(const std::string& path);
// RFC 4180: quoted fields may hold the delimiter, doubled quotes and newlines;
// a UTF-8 BOM is skipped; CRLF and LF line ends.
Table read_delimited(std::istream& in, char delimiter, const std::string& source);
// One JSON object per line; null = missing; numbers and booleans keep their text.
Table read_json_lines(std::istream& in, const std::string& source);

// Writes RFC 4180 CSV (quotes fields holding the delimiter, quotes or newlines);
// missing cells are written as empty fields. Throws naming the path on failure.
void write_csv(const Table& table, const std::string& path);
void write_delimited(const Table& table, std::ostream& out, char delimiter = ',');

}  // namespace automm
