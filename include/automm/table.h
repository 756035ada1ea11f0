// A columnar table, as read from CSV / TSV / JSON Lines.
//
// Each column holds its cells in one of three storages, chosen while the column is
// filled (docs/data.md, "How a table is held"):
//   kDictionary  each distinct text once, and a 32-bit code per row: categories,
//                labels, and any column while it has few distinct values;
//   kNumbers     a double per row: a column of numbers with more than
//                kMaxNumberDictionary distinct values (too many for a category or a
//                class, so their exact spelling no longer matters);
//   kText        all texts in one buffer with an offset per row: text, image paths.
// Reading never guesses a column's model type (numerical, categorical, text, ...):
// the data processors decide that later from what the column holds. A missing cell
// (empty CSV field, pandas' NA spellings, JSON null) is marked as missing.
//
// Columns share their data between copies (a Table is cheap to copy), and the rows
// a Table selects are a view of its columns through one shared row index; a column
// that is changed after being copied or selected gets its own data first.
#pragma once

#include <cstddef>
#include <cstdint>
#include <iosfwd>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace automm {

class Column {
 public:
  enum class Storage { kDictionary, kNumbers, kText };
  // Distinct texts a dictionary column holds before it becomes kNumbers (when all
  // are numbers) or kText.
  static constexpr size_t kMaxNumberDictionary = 1024;
  static constexpr size_t kMaxDictionary = 65536;
  static constexpr uint32_t kMissingCode = UINT32_MAX;

  explicit Column(std::string name = "");
  // A column of cells; a cell is missing when `is_missing_token` says so.
  static Column from_cells(std::string name, const std::vector<std::string>& cells);

  const std::string& name() const { return name_; }
  void set_name(std::string name) { name_ = std::move(name); }
  size_t size() const;
  bool is_missing(size_t row) const;
  size_t count_present() const;
  Storage storage() const;

  // The cell's text; "" when missing. A column held as kNumbers writes its numbers
  // in shortest round-trip form ("0.5", "12", "1e+20").
  std::string text(size_t row) const;
  // The cell as a number (parse_number's rules); nullopt when missing or not a number.
  std::optional<double> number(size_t row) const;
  // Each distinct present text and how many rows hold it.
  std::unordered_map<std::string, size_t> value_counts() const;
  // True when every present cell is a number (parse_number's rules).
  bool holds_only_numbers() const;
  // Distinct present values, counted up to `limit` (then `limit` + 1 is returned).
  size_t count_distinct(size_t limit) const;
  // Per row: the value `index` gives the cell's text, or `absent` when the cell is
  // missing or its text is not in `index`. Looks each distinct text up once.
  std::vector<int64_t> index_of(const std::unordered_map<std::string, int64_t>& index, int64_t absent) const;

  // kDictionary: the distinct texts (those of rows not selected included).
  const std::vector<std::string>& dictionary() const;

  void reserve(size_t rows);
  void push(std::string_view text, bool present);
  void push_missing() { push({}, false); }
  // Appends another column's cells (same name or not).
  void append(const Column& other);
  // A column of the given rows, with its own data.
  Column select(const std::vector<size_t>& rows) const;

  struct Data;  // the storage (src/data/table.cpp)

 private:
  friend class Table;
  using RowIndex = std::shared_ptr<const std::vector<size_t>>;
  // Row `row` of this column in data_: through rows_ when it is a view.
  size_t at(size_t row) const { return rows_ ? (*rows_)[row] : row; }
  // This column's rows `rows` (of this column), as a view of the same data.
  Column view(const RowIndex& rows) const;
  Data& mutable_data();
  std::string name_;
  std::shared_ptr<Data> data_;
  RowIndex rows_;  // null: every row of data_, in order
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

// Parses a cell as a number ("1", "-2.5e3", " 3 ", "+4", "inf"); nullopt when it is not one
// (hexadecimal is not read, as pandas does not).
std::optional<double> parse_number(std::string_view cell);

// True for the spellings pandas reads as missing by default ("", "NA", "NaN",
// "nan", "null", "None", "N/A", "#N/A", "<NA>", ...).
bool is_missing_token(std::string_view text);

// Reads by extension: .csv, .tsv / .tab, .jsonl / .ndjson / .json (JSON Lines).
// Errors name the file, the line and what was wrong.
Table read_table(const std::string& path);
// RFC 4180: quoted fields may hold the delimiter, doubled quotes and newlines;
// a UTF-8 BOM is skipped; CRLF and LF line ends. Streams the input in blocks
// (memory is the table's, not the file's) and parses on every core.
Table read_delimited(std::istream& in, char delimiter, const std::string& source);
// One JSON object per line; null = missing; numbers and booleans keep their text.
Table read_json_lines(std::istream& in, const std::string& source);

// Writes RFC 4180 CSV (quotes fields holding the delimiter, quotes or newlines);
// missing cells are written as empty fields. Throws naming the path on failure.
void write_csv(const Table& table, const std::string& path);
void write_delimited(const Table& table, std::ostream& out, char delimiter = ',');

}  // namespace automm
