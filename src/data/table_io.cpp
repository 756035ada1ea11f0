// Reading and writing tables: RFC 4180 CSV / TSV and JSON Lines.
//
// Files are read whole into memory and scanned once, so reading is linear in the
// file size. Missing-value handling follows pandas' defaults so a table read here
// matches what AutoGluon would see from pd.read_csv / pd.read_json(lines=True).
#include "automm/table.h"
#include "config/json_text.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <istream>
#include <ostream>
#include <stdexcept>
#include <string_view>
#include <unordered_map>

#include <nlohmann/json.hpp>

namespace automm {

// ---------------------------------------------------------------------------
// Column / Table

void Column::push(std::string value, bool is_present) {
  cells.push_back(is_present ? std::move(value) : std::string());
  present.push_back(is_present ? 1 : 0);
}

size_t Table::num_rows() const { return columns_.empty() ? 0 : columns_.front().size(); }

std::vector<std::string> Table::column_names() const {
  std::vector<std::string> names;
  names.reserve(columns_.size());
  for (const Column& c : columns_) names.push_back(c.name);
  return names;
}

bool Table::has_column(const std::string& name) const {
  return std::any_of(columns_.begin(), columns_.end(),
                     [&](const Column& c) { return c.name == name; });
}

namespace {

std::string join_names(const std::vector<std::string>& names) {
  if (names.empty()) return "(none)";
  std::string out;
  for (size_t i = 0; i < names.size(); ++i) {
    if (i > 0) out += ", ";
    out += names[i];
  }
  return out;
}

[[noreturn]] void throw_column_not_found(const std::string& name, const Table& table) {
  throw std::invalid_argument("column '" + name + "' not found in " + table.source +
                              "; columns are: " + join_names(table.column_names()));
}

}  // namespace

const Column& Table::column(const std::string& name) const {
  for (const Column& c : columns_) {
    if (c.name == name) return c;
  }
  throw_column_not_found(name, *this);
}

Column& Table::column(const std::string& name) {
  for (Column& c : columns_) {
    if (c.name == name) return c;
  }
  throw_column_not_found(name, *this);
}

void Table::add_column(Column column) {
  if (column.cells.size() != column.present.size()) {
    throw std::invalid_argument("column '" + column.name + "' has " +
                                std::to_string(column.cells.size()) + " cells but " +
                                std::to_string(column.present.size()) + " presence flags");
  }
  if (has_column(column.name)) {
    throw std::invalid_argument("column '" + column.name + "' already exists in " + source);
  }
  if (!columns_.empty() && column.size() != num_rows()) {
    throw std::invalid_argument("column '" + column.name + "' has " +
                                std::to_string(column.size()) + " rows but " + source +
                                " has " + std::to_string(num_rows()));
  }
  columns_.push_back(std::move(column));
}

void Table::drop_column(const std::string& name) {
  auto it = std::find_if(columns_.begin(), columns_.end(),
                         [&](const Column& c) { return c.name == name; });
  if (it == columns_.end()) throw_column_not_found(name, *this);
  columns_.erase(it);
}

Table Table::select_rows(const std::vector<size_t>& rows) const {
  const size_t n = num_rows();
  for (size_t r : rows) {
    if (r >= n) {
      throw std::out_of_range("row index " + std::to_string(r) + " is out of range for " +
                              source + " (" + std::to_string(n) + " rows)");
    }
  }
  Table out;
  out.source = source;
  out.columns_.reserve(columns_.size());
  for (const Column& c : columns_) {
    Column picked;
    picked.name = c.name;
    picked.cells.reserve(rows.size());
    picked.present.reserve(rows.size());
    for (size_t r : rows) {
      picked.cells.push_back(c.cells[r]);
      picked.present.push_back(c.present[r]);
    }
    out.columns_.push_back(std::move(picked));
  }
  return out;
}

// ---------------------------------------------------------------------------
// Missing values

bool is_missing_token(const std::string& text) {
  // pandas.io.parsers default na_values (STR_NA_VALUES).
  static constexpr std::array<std::string_view, 19> kTokens = {
      "",     "#N/A", "#N/A N/A", "#NA",  "-1.#IND", "-1.#QNAN", "-NaN",
      "-nan", "1.#IND", "1.#QNAN", "<NA>", "N/A",     "NA",       "NULL",
      "NaN",  "None", "n/a",      "nan",  "null"};
  if (text.size() > 8) return false;  // longest token is "#N/A N/A"; skip the scan
  return std::find(kTokens.begin(), kTokens.end(), std::string_view(text)) != kTokens.end();
}

// ---------------------------------------------------------------------------
// Reading helpers

namespace {

constexpr std::string_view kUtf8Bom = "\xEF\xBB\xBF";

[[noreturn]] void fail_at(const std::string& source, size_t line, const std::string& what) {
  throw std::runtime_error(source + ":" + std::to_string(line) + ": " + what);
}

// What one table may hold (docs/data.md, "Limits"): a file beyond them is refused
// with an error instead of exhausting memory or time.
constexpr size_t kMaxCellBytes = size_t{32} << 20;
constexpr size_t kMaxColumns = 100000;
// Cells a JSON Lines reader adds for keys that rows lack: at most this many, or
// four per value the file holds, so that memory stays proportional to the file
// (rows that each bring a new key would otherwise make rows x keys cells).
constexpr size_t kMinAbsentCellLimit = size_t{1} << 24;

void check_cell_size(size_t bytes, const std::string& source, size_t line, size_t column) {
  if (bytes > kMaxCellBytes)
    fail_at(source, line, "the field in column " + std::to_string(column + 1) + " holds " + std::to_string(bytes) +
                              " bytes, more than the " + std::to_string(kMaxCellBytes >> 20) +
                              " MiB a cell may hold (is a quote left open?)");
}

void check_column_count(size_t columns, const std::string& source, size_t line) {
  if (columns > kMaxColumns)
    fail_at(source, line, "more than " + std::to_string(kMaxColumns) + " columns, the most a table may have");
}

// Bulk reads instead of per-character get(), so large files read in linear time.
std::string read_all(std::istream& in, const std::string& source) {
  std::string data;
  std::array<char, 1 << 16> buffer;
  while (in.read(buffer.data(), buffer.size()) || in.gcount() > 0) {
    data.append(buffer.data(), static_cast<size_t>(in.gcount()));
  }
  if (in.bad()) throw std::runtime_error(source + ": error while reading the input");
  return data;
}

size_t bom_length(const std::string& data) {
  return data.compare(0, kUtf8Bom.size(), kUtf8Bom) == 0 ? kUtf8Bom.size() : 0;
}

// Splits delimited text into records. Tracks physical line numbers so errors can
// point at the line where a record (or an unterminated quoted field) starts.
class DelimitedScanner {
 public:
  DelimitedScanner(const std::string& data, char delimiter, const std::string& source)
      : data_(data), delim_(delimiter), source_(source), pos_(bom_length(data)) {}

  // Parses the next non-blank record into `fields`; false at end of input.
  bool next(std::vector<std::string>& fields) {
    skip_blank_lines();
    if (pos_ == data_.size()) return false;
    record_line_ = line_;
    fields.clear();
    bool end_of_record = false;
    while (!end_of_record) {
      std::string field;
      end_of_record = pos_ < data_.size() && data_[pos_] == '"' ? quoted_field(field)
                                                                : unquoted_field(field);
      check_cell_size(field.size(), source_, record_line_, fields.size());
      fields.push_back(std::move(field));
      check_column_count(fields.size(), source_, record_line_);
    }
    return true;
  }

  size_t record_line() const { return record_line_; }

 private:
  bool is_blank_char(char c) const { return (c == ' ' || c == '\t') && c != delim_; }

  // Blank (or whitespace-only) lines carry no record; pandas skips them too.
  void skip_blank_lines() {
    const size_t n = data_.size();
    while (pos_ < n) {
      size_t p = pos_;
      while (p < n && is_blank_char(data_[p])) ++p;
      if (p < n && data_[p] == '\r' && (p + 1 == n || data_[p + 1] == '\n')) ++p;
      if (p == n) {
        pos_ = n;
        return;
      }
      if (data_[p] != '\n') return;
      pos_ = p + 1;
      ++line_;
    }
  }

  // Consumes the line terminator at pos_ if any; returns true (end of record).
  bool end_record() {
    if (pos_ < data_.size() && data_[pos_] == '\r') ++pos_;
    if (pos_ < data_.size() && data_[pos_] == '\n') {
      ++pos_;
      ++line_;
    }
    return true;
  }

  // Returns true when the field ended its record (line end or end of input).
  bool unquoted_field(std::string& field) {
    const size_t n = data_.size();
    const size_t start = pos_;
    while (pos_ < n && data_[pos_] != delim_ && data_[pos_] != '\n') ++pos_;
    size_t end = pos_;
    if (pos_ < n && data_[pos_] == delim_) {
      field.assign(data_, start, end - start);
      ++pos_;
      return false;
    }
    if (end > start && data_[end - 1] == '\r') --end;  // CRLF terminator
    field.assign(data_, start, end - start);
    pos_ = end;
    return end_record();
  }

  bool quoted_field(std::string& field) {
    const size_t n = data_.size();
    const size_t open_line = line_;
    ++pos_;  // opening quote
    while (true) {
      const size_t quote = data_.find('"', pos_);
      if (quote == std::string::npos) {
        fail_at(source_, open_line,
                "unterminated quoted field: the quote opened on this line is never closed "
                "(a quote inside a quoted field must be doubled: \"\")");
      }
      // Newlines inside quotes are kept verbatim but still advance the line count.
      line_ += static_cast<size_t>(
          std::count(data_.begin() + static_cast<std::ptrdiff_t>(pos_),
                     data_.begin() + static_cast<std::ptrdiff_t>(quote), '\n'));
      field.append(data_, pos_, quote - pos_);
      pos_ = quote + 1;
      if (pos_ < n && data_[pos_] == '"') {  // doubled quote = literal quote
        field.push_back('"');
        ++pos_;
        continue;
      }
      break;
    }
    if (pos_ == n) return true;
    const char c = data_[pos_];
    if (c == delim_) {
      ++pos_;
      return false;
    }
    if (c == '\n' || (c == '\r' && (pos_ + 1 == n || data_[pos_ + 1] == '\n'))) {
      return end_record();
    }
    fail_at(source_, line_,
            "unexpected text after the closing quote of a quoted field (starting '" +
                data_.substr(pos_, 10) +
                "'); quote the whole field and double any quote inside it");
  }

  const std::string& data_;
  const char delim_;
  const std::string& source_;
  size_t pos_;
  size_t line_ = 1;
  size_t record_line_ = 1;
};

// Python's repr() of a float, which is what pandas shows: shortest round-trip
// digits, fixed notation for exponents in [-4, 16) (always with a fractional
// part, e.g. "3.0"), scientific otherwise ("1e+20", "1.5e-07").
std::string format_float(double value) {
  if (std::isnan(value)) return "nan";
  if (std::isinf(value)) return value > 0 ? "inf" : "-inf";
  std::array<char, 64> buf;
  const auto result =
      std::to_chars(buf.data(), buf.data() + buf.size(), value, std::chars_format::scientific);
  const std::string sci(buf.data(), result.ptr);  // e.g. "-1.2345e+02"

  std::string out;
  size_t i = 0;
  if (sci[i] == '-') {
    out.push_back('-');
    ++i;
  }
  const size_t e_pos = sci.find('e');
  std::string digits;
  for (size_t k = i; k < e_pos; ++k) {
    if (sci[k] != '.') digits.push_back(sci[k]);
  }
  const int exponent = std::stoi(sci.substr(e_pos + 1));

  if (exponent >= -4 && exponent < 16) {
    if (exponent < 0) {
      out += "0." + std::string(static_cast<size_t>(-exponent - 1), '0') + digits;
    } else {
      const size_t int_len = static_cast<size_t>(exponent) + 1;
      if (digits.size() <= int_len) {
        out += digits + std::string(int_len - digits.size(), '0') + ".0";
      } else {
        out += digits.substr(0, int_len) + "." + digits.substr(int_len);
      }
    }
  } else {
    out.push_back(digits[0]);
    if (digits.size() > 1) out += "." + digits.substr(1);
    out += exponent < 0 ? "e-" : "e+";
    const int magnitude = std::abs(exponent);
    if (magnitude < 10) out.push_back('0');
    out += std::to_string(magnitude);
  }
  return out;
}

}  // namespace

// ---------------------------------------------------------------------------
// Readers

Table read_delimited(std::istream& in, char delimiter, const std::string& source) {
  if (delimiter == '"' || delimiter == '\n' || delimiter == '\r') {
    throw std::invalid_argument("invalid delimiter for " + source +
                                ": it cannot be a quote or a line break");
  }
  const std::string data = read_all(in, source);
  DelimitedScanner scanner(data, delimiter, source);

  std::vector<std::string> fields;
  if (!scanner.next(fields)) {
    throw std::runtime_error(source + ": the file is empty (no header row)");
  }
  const size_t header_line = scanner.record_line();
  std::vector<Column> columns(fields.size());
  std::unordered_map<std::string, size_t> index;
  for (size_t i = 0; i < fields.size(); ++i) {
    if (fields[i].empty()) {
      fail_at(source, header_line,
              "header column " + std::to_string(i + 1) + " has an empty name; every column needs one");
    }
    const auto [seen, inserted] = index.emplace(fields[i], i);
    if (!inserted) {
      fail_at(source, header_line,
              "duplicate column name '" + fields[i] + "' in the header (columns " +
                  std::to_string(seen->second + 1) + " and " + std::to_string(i + 1) + ")");
    }
    columns[i].name = std::move(fields[i]);
  }

  while (scanner.next(fields)) {
    if (fields.size() != columns.size()) {
      fail_at(source, scanner.record_line(),
              "expected " + std::to_string(columns.size()) + " fields, found " +
                  std::to_string(fields.size()) +
                  " (a field holding the delimiter must be quoted)");
    }
    for (size_t i = 0; i < fields.size(); ++i) {
      const bool present = !is_missing_token(fields[i]);
      columns[i].push(std::move(fields[i]), present);
    }
  }

  Table table;
  table.source = source;
  for (Column& c : columns) table.add_column(std::move(c));
  return table;
}

Table read_json_lines(std::istream& in, const std::string& source) {
  using Json = nlohmann::ordered_json;  // keeps keys in file order
  const std::string data = read_all(in, source);

  std::vector<Column> columns;
  std::unordered_map<std::string, size_t> index;  // column name -> position
  size_t rows = 0;
  size_t line = 0;
  size_t absent_cells = 0, values = 0;
  size_t pos = bom_length(data);
  while (pos < data.size()) {
    ++line;
    size_t end = data.find('\n', pos);
    if (end == std::string::npos) end = data.size();
    const size_t next = end + 1;
    const size_t first = data.find_first_not_of(" \t\r", pos);
    if (first == std::string::npos || first >= end) {  // blank line
      pos = next;
      continue;
    }

    Json object;
    check_json_nesting(std::string_view(data).substr(pos, end - pos), source + ":" + std::to_string(line));
    try {
      object = Json::parse(data.begin() + static_cast<std::ptrdiff_t>(pos),
                           data.begin() + static_cast<std::ptrdiff_t>(end));
    } catch (const Json::parse_error& e) {
      fail_at(source, line, std::string("invalid JSON: ") + e.what());
    }
    if (!object.is_object()) {
      std::string what = std::string("expected a JSON object, found ") + object.type_name();
      if (object.is_array()) what += " (files are read as JSON Lines: one object per line)";
      fail_at(source, line, what);
    }

    for (const auto& [key, value] : object.items()) {
      if (key.empty()) fail_at(source, line, "a key is empty; every column needs a name");
      auto it = index.find(key);
      if (it == index.end()) {
        // Rows read before this key appeared are missing it.
        check_column_count(columns.size() + 1, source, line);
        absent_cells += rows;
        if (absent_cells > std::max(kMinAbsentCellLimit, 4 * values))
          fail_at(source, line,
                  "key '" + key + "' is new after " + std::to_string(rows) + " rows: rows would lack " +
                      std::to_string(absent_cells) + " cells of the keys other rows have, more than four per " +
                      "value in the file (give every row the same keys)");
        Column column;
        column.name = key;
        column.cells.assign(rows, std::string());
        column.present.assign(rows, 0);
        it = index.emplace(key, columns.size()).first;
        columns.push_back(std::move(column));
      }
      Column& column = columns[it->second];
      ++values;
      switch (value.type()) {
        case Json::value_t::null:
          column.push(std::string(), false);
          break;
        case Json::value_t::string: {
          std::string text = value.get<std::string>();
          check_cell_size(text.size(), source, line, it->second);
          const bool present = !is_missing_token(text);
          column.push(std::move(text), present);
          break;
        }
        case Json::value_t::boolean:
          column.push(value.get<bool>() ? "True" : "False", true);
          break;
        case Json::value_t::number_integer:
          column.push(std::to_string(value.get<int64_t>()), true);
          break;
        case Json::value_t::number_unsigned:
          column.push(std::to_string(value.get<uint64_t>()), true);
          break;
        case Json::value_t::number_float:
          column.push(format_float(value.get<double>()), !std::isnan(value.get<double>()));
          break;
        default:
          fail_at(source, line,
                  "key '" + key + "' holds a " + value.type_name() +
                      "; nested values are not supported (flatten them into scalar keys)");
      }
    }
    ++rows;
    for (Column& c : columns) {  // keys absent from this row are missing
      if (c.size() < rows) {
        c.push(std::string(), false);
        if (++absent_cells > std::max(kMinAbsentCellLimit, 4 * values))
          fail_at(source, line, "rows lack " + std::to_string(absent_cells) +
                                    " cells of the keys other rows have, more than four per value in the file " +
                                    "(give every row the same keys)");
      }
    }
    pos = next;
  }

  if (rows == 0) throw std::runtime_error(source + ": the file is empty (no JSON objects)");
  if (columns.empty()) throw std::runtime_error(source + ": no JSON object has any key");
  Table table;
  table.source = source;
  for (Column& c : columns) table.add_column(std::move(c));
  return table;
}

Table read_table(const std::string& path) {
  std::string ext = std::filesystem::path(path).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  const bool is_json = ext == ".jsonl" || ext == ".ndjson" || ext == ".json";
  char delimiter = 0;
  if (ext == ".csv") {
    delimiter = ',';
  } else if (ext == ".tsv" || ext == ".tab") {
    delimiter = '\t';
  } else if (!is_json) {
    throw std::invalid_argument("unsupported table file '" + path + "' (extension '" + ext +
                                "'); supported: .csv, .tsv, .tab, .jsonl, .ndjson, .json");
  }

  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw std::runtime_error("cannot open '" + path + "': " + std::strerror(errno));
  }
  return is_json ? read_json_lines(in, path) : read_delimited(in, delimiter, path);
}

// ---------------------------------------------------------------------------
// Writers

namespace {

void write_field(std::ostream& out, const std::string& text, char delimiter) {
  const bool needs_quotes =
      text.find_first_of(std::string{delimiter, '"', '\r', '\n'}) != std::string::npos ||
      (!text.empty() && (text.front() == ' ' || text.front() == '\t' || text.back() == ' ' ||
                         text.back() == '\t'));
  if (!needs_quotes) {
    out << text;
    return;
  }
  out << '"';
  for (char c : text) {
    if (c == '"') out << '"';
    out << c;
  }
  out << '"';
}

}  // namespace

void write_delimited(const Table& table, std::ostream& out, char delimiter) {
  const std::vector<Column>& columns = table.columns();
  for (size_t i = 0; i < columns.size(); ++i) {
    if (i > 0) out << delimiter;
    write_field(out, columns[i].name, delimiter);
  }
  out << '\n';
  const size_t rows = table.num_rows();
  for (size_t r = 0; r < rows; ++r) {
    if (columns.size() == 1 && columns[0].cells[r].empty()) {
      // A lone empty field would be a blank line, which readers skip; quote it
      // (as Python's csv module does) so the row survives a round trip.
      out << "\"\"\n";
      continue;
    }
    for (size_t i = 0; i < columns.size(); ++i) {
      if (i > 0) out << delimiter;
      if (!columns[i].is_missing(r)) write_field(out, columns[i].cells[r], delimiter);
    }
    out << '\n';
  }
}

void write_csv(const Table& table, const std::string& path) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) {
    throw std::runtime_error("cannot open '" + path + "' for writing: " + std::strerror(errno));
  }
  write_delimited(table, out, ',');
  out.flush();
  if (!out) {
    throw std::runtime_error("failed to write '" + path + "': " + std::strerror(errno));
  }
}

}  // namespace automm
