// Reading and writing tables: RFC 4180 CSV / TSV and JSON Lines.
//
// Delimited files stream through a bounded buffer: each block of whole records is
// cut into one part per core, the parts are split into fields in parallel, and
// the fields go into the columns in parallel (one column per thread at a time),
// so memory holds the table's columns, not the file. Missing-value handling
// follows pandas' defaults so a table read here matches what AutoGluon would see
// from pd.read_csv / pd.read_json(lines=True).
#include "automm/table.h"
#include "config/json_text.h"
#include "data/image/coco.h"
#include "data/image/voc.h"
#include "data/parallel.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <istream>
#include <optional>
#include <ostream>
#include <stdexcept>
#include <string_view>
#include <unordered_map>

#include <emmintrin.h>

#include <nlohmann/json.hpp>

namespace automm {
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
// Bytes read from a delimited file at a time (more when one record is longer).
constexpr size_t kBlockBytes = size_t{8} << 20;

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

// Offset of the first byte of `text` that does not belong to a well-formed UTF-8
// sequence (overlong forms, surrogates and code points past U+10FFFF are not),
// or npos.
size_t invalid_utf8_at(std::string_view text) {
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  size_t i = 0;
  while (i < n) {
    const unsigned char c = s[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len = 0;
    unsigned char lo = 0x80, hi = 0xBF;  // the allowed range of the second byte
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      if (c == 0xE0) lo = 0xA0;
      if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      if (c == 0xF0) lo = 0x90;
      if (c == 0xF4) hi = 0x8F;
    } else {
      return i;
    }
    if (i + len > n || s[i + 1] < lo || s[i + 1] > hi) return i;
    for (size_t k = 2; k < len; ++k)
      if (s[i + k] < 0x80 || s[i + k] > 0xBF) return i;
    i += len;
  }
  return std::string_view::npos;
}

bool has_high_bytes(const char* begin, const char* end) {
  unsigned char any = 0;
  for (const char* p = begin; p < end; ++p) any |= static_cast<unsigned char>(*p);
  return any & 0x80;
}

// The fields of whole records, as views into the block (or into `unescaped` for
// quoted fields that held doubled quotes).
struct ParsedRecords {
  std::vector<std::string_view> cells;  // records x columns, row-major
  std::deque<std::string> unescaped;
  size_t records = 0;
  size_t first_line = 0;  // of the first record
};

// Splits delimited records into fields. Tracks physical line numbers (newlines
// inside quoted fields count) so that errors point at the line of the record.
class RecordParser {
 public:
  RecordParser(char delimiter, const std::string& source, const std::vector<std::string>* names)
      : delim_(delimiter), source_(source), names_(names) {}

  // Parses records from [p, end) starting on line `line`; at most `max_records`.
  // Returns where it stopped. `at_end`: the input ends at `end` (a short last
  // record is then called truncated).
  const char* parse(const char* p, const char* end, size_t line, size_t max_records, bool at_end,
                    ParsedRecords& out) const {
    const size_t columns = names_ ? names_->size() : 0;
    const bool check_utf8 = has_high_bytes(p, end);
    std::vector<std::string_view> fields;
    while (out.records < max_records) {
      p = skip_blank_lines(p, end, line);
      if (p == end) break;
      const size_t record_line = line;
      if (out.records == 0) out.first_line = line;
      fields.clear();
      bool end_of_record = false;
      while (!end_of_record) {
        std::string_view field;
        end_of_record = p < end && *p == '"' ? quoted_field(p, end, line, field, out)
                                             : unquoted_field(p, end, line, field);
        check_cell_size(field.size(), source_, record_line, fields.size());
        fields.push_back(field);
        check_column_count(fields.size(), source_, record_line);
      }
      if (names_ && fields.size() != columns) {
        std::string what = "expected " + std::to_string(columns) + " fields, found " + std::to_string(fields.size());
        what += at_end && p == end && fields.size() < columns ? " (the file ends inside this row: is it truncated?)"
                                                              : " (a field holding the delimiter must be quoted)";
        fail_at(source_, record_line, what);
      }
      if (check_utf8)
        for (size_t c = 0; c < fields.size(); ++c)
          if (const size_t at = invalid_utf8_at(fields[c]); at != std::string_view::npos) {
            char byte[8];
            std::snprintf(byte, sizeof(byte), "0x%02X", static_cast<unsigned char>(fields[c][at]));
            fail_at(source_, record_line,
                    "column '" + (names_ ? (*names_)[c] : std::to_string(c + 1)) + "' is not valid UTF-8 (byte " +
                        byte + " at offset " + std::to_string(at) +
                        " of the field); tables are read as UTF-8: re-encode the file (e.g. iconv -f latin1 -t utf-8)");
          }
      out.cells.insert(out.cells.end(), fields.begin(), fields.end());
      ++out.records;
    }
    return p;
  }

 private:
  bool is_blank_char(char c) const { return (c == ' ' || c == '\t') && c != delim_; }

  // Blank (or whitespace-only) lines carry no record; pandas skips them too.
  const char* skip_blank_lines(const char* p, const char* end, size_t& line) const {
    while (p < end) {
      const char* q = p;
      while (q < end && is_blank_char(*q)) ++q;
      if (q < end && *q == '\r' && (q + 1 == end || q[1] == '\n')) ++q;
      if (q == end) return end;
      if (*q != '\n') return p;
      p = q + 1;
      ++line;
    }
    return p;
  }

  // The first delimiter or '\n' in [p, end), or end; sixteen bytes at a time.
  const char* field_end(const char* p, const char* end) const {
    const __m128i delimiter = _mm_set1_epi8(delim_), newline = _mm_set1_epi8('\n');
    for (; p + 16 <= end; p += 16) {
      const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
      const int hits = _mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(bytes, delimiter), _mm_cmpeq_epi8(bytes, newline)));
      if (hits) return p + __builtin_ctz(static_cast<unsigned>(hits));
    }
    while (p < end && *p != delim_ && *p != '\n') ++p;
    return p;
  }

  // True when the field ended its record (line end or end of input).
  bool unquoted_field(const char*& p, const char* end, size_t& line, std::string_view& field) const {
    const char* start = p;
    p = field_end(p, end);
    if (p < end && *p == delim_) {
      field = std::string_view(start, static_cast<size_t>(p - start));
      ++p;
      return false;
    }
    const char* stop = p;
    if (stop > start && stop[-1] == '\r') --stop;  // CRLF terminator
    field = std::string_view(start, static_cast<size_t>(stop - start));
    if (p < end) {
      ++p;
      ++line;
    }
    return true;
  }

  bool quoted_field(const char*& p, const char* end, size_t& line, std::string_view& field,
                    ParsedRecords& out) const {
    const size_t open_line = line;
    const char* start = ++p;  // past the opening quote
    bool doubled = false;
    while (true) {
      const auto* quote = static_cast<const char*>(std::memchr(p, '"', static_cast<size_t>(end - p)));
      if (!quote)
        fail_at(source_, open_line,
                "unterminated quoted field: the quote opened on this line is never closed "
                "(a quote inside a quoted field must be doubled: \"\")");
      // Newlines inside quotes are kept verbatim but still advance the line count.
      line += static_cast<size_t>(std::count(p, quote, '\n'));
      p = quote + 1;
      if (p < end && *p == '"') {  // doubled quote = literal quote
        doubled = true;
        ++p;
        continue;
      }
      break;
    }
    field = std::string_view(start, static_cast<size_t>(p - 1 - start));
    if (doubled) {
      std::string text;
      text.reserve(field.size());
      for (size_t i = 0; i < field.size(); ++i) {
        text.push_back(field[i]);
        if (field[i] == '"') ++i;  // the second quote of a pair
      }
      out.unescaped.push_back(std::move(text));
      field = out.unescaped.back();
    }
    if (p == end) return true;
    if (*p == delim_) {
      ++p;
      return false;
    }
    if (*p == '\n' || (*p == '\r' && (p + 1 == end || p[1] == '\n'))) {
      if (*p == '\r') ++p;
      if (p < end) {
        ++p;
        ++line;
      }
      return true;
    }
    fail_at(source_, line,
            "unexpected text after the closing quote of a quoted field (starting '" +
                std::string(p, static_cast<size_t>(std::min<ptrdiff_t>(10, end - p))) +
                "'); quote the whole field and double any quote inside it");
  }

  const char delim_;
  const std::string& source_;
  const std::vector<std::string>* names_;  // null while reading the header
};

// One past the '\n' ending the last whole record in [begin, end), which starts at
// a record boundary; `begin` when there is none. A '\n' ends a record when an
// even number of quotes precedes it.
const char* last_record_end(const char* begin, const char* end) {
  const size_t total = static_cast<size_t>(std::count(begin, end, '"'));
  size_t after = 0;  // quotes between the newline looked at and `end`
  const char* p = end;
  while (p > begin) {
    const auto* newline = static_cast<const char*>(memrchr(begin, '\n', static_cast<size_t>(p - begin)));
    if (!newline) return begin;
    after += static_cast<size_t>(std::count(newline + 1, p, '"'));
    if ((total - after) % 2 == 0) return newline + 1;
    p = newline;
  }
  return begin;
}

// The first record boundary at or after `target` in [begin, end) (begin is one).
const char* record_boundary_after(const char* begin, const char* target, const char* end) {
  bool quoted = std::count(begin, target, '"') % 2 == 1;
  for (const char* p = target; p < end; ++p) {
    if (*p == '"') quoted = !quoted;
    else if (*p == '\n' && !quoted) return p + 1;
  }
  return end;
}

// A delimited input read block by block.
class BlockReader {
 public:
  BlockReader(std::istream& in, const std::string& source) : in_(in), source_(source) {}

  // Drops the bytes before `consumed` and reads until `want` bytes are held or the
  // input ends.
  void fill(size_t consumed, size_t want) {
    buffer_.erase(0, consumed);
    while (!eof_ && buffer_.size() < want) {
      const size_t held = buffer_.size();
      buffer_.resize(want);
      in_.read(buffer_.data() + held, static_cast<std::streamsize>(want - held));
      buffer_.resize(held + static_cast<size_t>(in_.gcount()));
      if (in_.bad()) throw std::runtime_error(source_ + ": error while reading the input");
      if (!in_) eof_ = true;
    }
  }
  const std::string& buffer() const { return buffer_; }
  bool eof() const { return eof_; }

 private:
  std::istream& in_;
  const std::string& source_;
  std::string buffer_;
  bool eof_ = false;
};

}  // namespace

// ---------------------------------------------------------------------------
// Readers

Table read_delimited(std::istream& in, char delimiter, const std::string& source) {
  if (delimiter == '"' || delimiter == '\n' || delimiter == '\r')
    throw std::invalid_argument("invalid delimiter for " + source + ": it cannot be a quote or a line break");
  // The bytes to read, when the stream can tell: the columns reserve their rows
  // once the first block shows how long a row is.
  std::optional<size_t> input_bytes;
  if (const std::streampos here = in.tellg(); here != std::streampos(-1) && in.seekg(0, std::ios::end)) {
    const std::streampos last = in.tellg();
    in.seekg(here);
    if (last != std::streampos(-1) && last >= here) input_bytes = static_cast<size_t>(last - here);
  }
  in.clear();
  BlockReader reader(in, source);
  size_t want = kBlockBytes;
  reader.fill(0, want);
  size_t start = reader.buffer().compare(0, kUtf8Bom.size(), kUtf8Bom) == 0 ? kUtf8Bom.size() : 0;
  size_t line = 1;  // of the byte at `start`

  // The header: the first record.
  std::vector<std::string> names;
  const RecordParser header_parser(delimiter, source, nullptr);
  while (true) {
    const char* begin = reader.buffer().data() + start;
    const char* end = reader.buffer().data() + reader.buffer().size();
    const char* stop = reader.eof() ? end : last_record_end(begin, end);
    if (stop == begin && !reader.eof()) {  // no whole record yet: read more
      reader.fill(start, want *= 2);
      start = 0;
      continue;
    }
    ParsedRecords header;
    const char* after = header_parser.parse(begin, stop, line, 1, reader.eof(), header);
    if (header.records == 0) throw std::runtime_error(source + ": the file is empty (no header row)");
    const size_t header_line = header.first_line;
    std::unordered_map<std::string_view, size_t> index;
    for (size_t i = 0; i < header.cells.size(); ++i) {
      const std::string_view name = header.cells[i];
      if (name.empty())
        fail_at(source, header_line,
                "header column " + std::to_string(i + 1) + " has an empty name; every column needs one");
      const auto [seen, inserted] = index.emplace(name, i);
      if (!inserted)
        fail_at(source, header_line,
                "duplicate column name '" + std::string(name) + "' in the header (columns " +
                    std::to_string(seen->second + 1) + " and " + std::to_string(i + 1) + ")");
      names.emplace_back(name);
    }
    line += static_cast<size_t>(std::count(begin, after, '\n'));
    start = static_cast<size_t>(after - reader.buffer().data());
    break;
  }

  std::vector<Column> columns;
  columns.reserve(names.size());
  for (const std::string& name : names) columns.emplace_back(name);
  const RecordParser parser(delimiter, source, &names);
  const size_t threads = data_threads();
  std::vector<ParsedRecords> parsed(threads);
  size_t rows_read = 0;
  want = kBlockBytes;
  while (true) {
    reader.fill(start, want);
    start = 0;
    const char* begin = reader.buffer().data();
    const char* end = begin + reader.buffer().size();
    if (begin == end) break;
    const char* stop = reader.eof() ? end : last_record_end(begin, end);
    if (stop == begin) {  // one record longer than the block
      want *= 2;
      continue;
    }
    want = kBlockBytes;
    // One part per thread, cut at record boundaries; small blocks stay whole.
    const size_t parts = std::min(threads, std::max<size_t>(1, static_cast<size_t>(stop - begin) / (64 << 10)));
    std::vector<const char*> cuts = {begin};
    std::vector<size_t> lines = {line};
    for (size_t k = 1; k < parts; ++k) {
      const char* target = begin + static_cast<size_t>(stop - begin) * k / parts;
      const char* cut = record_boundary_after(cuts.back(), std::max(target, cuts.back()), stop);
      lines.push_back(lines.back() + static_cast<size_t>(std::count(cuts.back(), cut, '\n')));
      cuts.push_back(cut);
    }
    cuts.push_back(stop);
    const bool at_end = reader.eof();
    run_parallel(parts, [&](size_t k) {
      parsed[k].cells.clear();
      parsed[k].unescaped.clear();
      parsed[k].records = 0;
      parser.parse(cuts[k], cuts[k + 1], lines[k], SIZE_MAX, at_end && k + 1 == parts, parsed[k]);
    });
    for_each_parallel(columns.size(), threads, [&](size_t c) {
      for (size_t k = 0; k < parts; ++k)
        for (size_t r = 0; r < parsed[k].records; ++r) {
          const std::string_view cell = parsed[k].cells[r * columns.size() + c];
          columns[c].push(cell, !is_missing_token(cell));
        }
    });
    if (input_bytes && !at_end && rows_read == 0) {
      size_t rows = 0;
      for (size_t k = 0; k < parts; ++k) rows += parsed[k].records;
      const double per_row = static_cast<double>(stop - begin) / static_cast<double>(std::max<size_t>(rows, 1));
      const size_t expected = static_cast<size_t>(1.05 * static_cast<double>(*input_bytes) / per_row) + 16;
      for (Column& c : columns) c.reserve(expected);
    }
    for (size_t k = 0; k < parts; ++k) rows_read += parsed[k].records;
    line = lines.back() + static_cast<size_t>(std::count(cuts[parts - 1], stop, '\n'));
    start = static_cast<size_t>(stop - begin);
    if (at_end) break;
  }

  Table table;
  table.source = source;
  for (Column& c : columns) table.add_column(std::move(c));
  return table;
}

namespace {

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

Table read_json_lines(std::istream& in, const std::string& source) {
  using Json = nlohmann::ordered_json;  // keeps keys in file order
  std::vector<Column> columns;
  std::unordered_map<std::string, size_t> index;  // column name -> position
  size_t rows = 0;
  size_t line = 0;
  size_t absent_cells = 0, values = 0;
  std::string text;
  while (std::getline(in, text)) {
    ++line;
    std::string_view row_text(text);
    if (line == 1 && row_text.substr(0, kUtf8Bom.size()) == kUtf8Bom) row_text.remove_prefix(kUtf8Bom.size());
    if (row_text.find_first_not_of(" \t\r") == std::string_view::npos) continue;  // blank line

    Json object;
    check_json_nesting(row_text, source + ":" + std::to_string(line));
    try {
      object = Json::parse(row_text.begin(), row_text.end());
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
        Column column(key);
        column.reserve(rows);
        for (size_t r = 0; r < rows; ++r) column.push_missing();
        it = index.emplace(key, columns.size()).first;
        columns.push_back(std::move(column));
      }
      Column& column = columns[it->second];
      ++values;
      switch (value.type()) {
        case Json::value_t::null:
          column.push_missing();
          break;
        case Json::value_t::string: {
          const std::string& cell = value.get_ref<const std::string&>();
          check_cell_size(cell.size(), source, line, it->second);
          column.push(cell, !is_missing_token(cell));
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
        c.push_missing();
        if (++absent_cells > std::max(kMinAbsentCellLimit, 4 * values))
          fail_at(source, line, "rows lack " + std::to_string(absent_cells) +
                                    " cells of the keys other rows have, more than four per value in the file " +
                                    "(give every row the same keys)");
      }
    }
  }
  if (in.bad()) throw std::runtime_error(source + ": error while reading the input");

  if (rows == 0) throw std::runtime_error(source + ": the file is empty (no JSON objects)");
  if (columns.empty()) throw std::runtime_error(source + ": no JSON object has any key");
  Table table;
  table.source = source;
  for (Column& c : columns) table.add_column(std::move(c));
  return table;
}

Table read_table(const std::string& path) {
  if (is_voc_path(path)) return read_voc_table(path);  // a VOC folder or split file (object detection)
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
  if (ext == ".json") {
    if (auto coco = try_read_coco_table(path)) return std::move(*coco);  // object detection's COCO form
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
    write_field(out, columns[i].name(), delimiter);
  }
  out << '\n';
  const size_t rows = table.num_rows();
  for (size_t r = 0; r < rows; ++r) {
    if (columns.size() == 1 && columns[0].text(r).empty()) {
      // A lone empty field would be a blank line, which readers skip; quote it
      // (as Python's csv module does) so the row survives a round trip.
      out << "\"\"\n";
      continue;
    }
    for (size_t i = 0; i < columns.size(); ++i) {
      if (i > 0) out << delimiter;
      if (!columns[i].is_missing(r)) write_field(out, columns[i].text(r), delimiter);
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
