// Column storage (include/automm/table.h): dictionary, numbers or text, chosen as
// the column fills; the Table around the columns.
#include "automm/table.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <map>
#include <stdexcept>
#include <unordered_set>

namespace automm {

namespace {

// One bit per row: whether the cell has a value.
class Presence {
 public:
  size_t size() const { return size_; }
  bool operator[](size_t row) const { return (words_[row >> 6] >> (row & 63)) & 1; }
  void push_back(bool present) {
    if (size_ % 64 == 0) words_.push_back(0);
    if (present) words_.back() |= uint64_t{1} << (size_ % 64);
    ++size_;
  }
  void pop_back() {
    --size_;
    words_[size_ >> 6] &= ~(uint64_t{1} << (size_ & 63));
    if (size_ % 64 == 0) words_.pop_back();
  }
  void reserve(size_t rows) { words_.reserve((rows + 63) / 64); }
  size_t count() const {
    size_t n = 0;
    for (uint64_t word : words_) n += static_cast<size_t>(__builtin_popcountll(word));
    return n;
  }

 private:
  std::vector<uint64_t> words_;
  size_t size_ = 0;
};

}  // namespace

struct Column::Data {
  Storage storage = Storage::kDictionary;
  Presence present;
  // kDictionary. `lookup` views the strings of `dictionary`: rebuilt whenever
  // `dictionary` reallocates (short strings live inside the vector's elements).
  std::vector<std::string> dictionary;
  std::vector<std::optional<double>> dictionary_numbers;  // parse_number of each entry
  bool all_numbers = true;
  std::unordered_map<std::string_view, uint32_t> lookup;
  std::vector<uint32_t> codes;
  // kNumbers
  std::vector<double> numbers;
  // kText: row r is text[ends[r-1], ends[r])
  std::string text;
  std::vector<uint64_t> ends;

  Data() = default;
  Data(const Data& other)
      : storage(other.storage), present(other.present), dictionary(other.dictionary),
        dictionary_numbers(other.dictionary_numbers), all_numbers(other.all_numbers), codes(other.codes),
        numbers(other.numbers), text(other.text), ends(other.ends) {
    rebuild_lookup();
  }
  Data& operator=(const Data&) = delete;

  void rebuild_lookup() {
    lookup.clear();
    lookup.reserve(dictionary.size());
    for (size_t i = 0; i < dictionary.size(); ++i) lookup.emplace(dictionary[i], static_cast<uint32_t>(i));
  }

  std::string_view text_at(size_t row) const {
    const uint64_t begin = row == 0 ? 0 : ends[row - 1];
    return std::string_view(text).substr(begin, ends[row] - begin);
  }

  void push_text(std::string_view value) {
    text.append(value);
    ends.push_back(text.size());
  }

  void to_text() {
    const size_t rows = present.size();
    std::string out;
    std::vector<uint64_t> out_ends;
    out_ends.reserve(std::max(codes.capacity(), numbers.capacity()));
    for (size_t r = 0; r < rows; ++r) {
      if (present[r]) {
        if (storage == Storage::kDictionary) out += dictionary[codes[r]];
        else out += format_shortest(numbers[r]);
      }
      out_ends.push_back(out.size());
    }
    clear_dictionary();
    numbers = {};
    text = std::move(out);
    ends = std::move(out_ends);
    storage = Storage::kText;
  }

  void to_numbers() {
    numbers.reserve(codes.capacity());
    numbers.resize(present.size());
    for (size_t r = 0; r < present.size(); ++r)
      numbers[r] = present[r] ? *dictionary_numbers[codes[r]] : std::numeric_limits<double>::quiet_NaN();
    clear_dictionary();
    storage = Storage::kNumbers;
  }

  void clear_dictionary() {
    dictionary = {};
    dictionary_numbers = {};
    lookup = {};
    codes = {};
  }

  static std::string format_shortest(double value) {
    std::array<char, 32> buf;
    const auto result = std::to_chars(buf.data(), buf.data() + buf.size(), value);
    return std::string(buf.data(), result.ptr);
  }

  void push(std::string_view value, bool is_present) {
    present.push_back(is_present);
    switch (storage) {
      case Storage::kDictionary: {
        if (!is_present) {
          codes.push_back(kMissingCode);
          return;
        }
        const auto it = lookup.find(value);
        if (it != lookup.end()) {
          codes.push_back(it->second);
          return;
        }
        const std::optional<double> number = parse_number(value);
        const bool too_many = dictionary.size() >= (all_numbers && number ? kMaxNumberDictionary : kMaxDictionary);
        if (!too_many) {
          const size_t capacity = dictionary.capacity();
          dictionary.emplace_back(value);
          dictionary_numbers.push_back(number);
          all_numbers = all_numbers && number.has_value();
          if (dictionary.capacity() != capacity) rebuild_lookup();
          else lookup.emplace(dictionary.back(), static_cast<uint32_t>(dictionary.size() - 1));
          codes.push_back(static_cast<uint32_t>(dictionary.size() - 1));
          return;
        }
        // One distinct value too many for a dictionary.
        present.pop_back();
        if (all_numbers && number) to_numbers();
        else to_text();
        push(value, is_present);
        return;
      }
      case Storage::kNumbers: {
        if (!is_present) {
          numbers.push_back(std::numeric_limits<double>::quiet_NaN());
          return;
        }
        if (const auto number = parse_number(value)) {
          numbers.push_back(*number);
          return;
        }
        // Text after numbers: the column becomes text (docs/data.md).
        present.pop_back();
        to_text();
        push(value, is_present);
        return;
      }
      case Storage::kText:
        push_text(is_present ? value : std::string_view());
        return;
    }
  }
};

Column::Column(std::string name) : name_(std::move(name)), data_(std::make_shared<Data>()) {}

Column Column::from_cells(std::string name, const std::vector<std::string>& cells) {
  Column column(std::move(name));
  column.reserve(cells.size());
  for (const std::string& cell : cells) column.push(cell, !is_missing_token(cell));
  return column;
}

Column::Data& Column::mutable_data() {
  if (rows_) {  // a view gets its own copy of its rows first
    std::vector<size_t> all(rows_->size());
    for (size_t i = 0; i < all.size(); ++i) all[i] = i;
    *this = select(all);
  }
  if (data_.use_count() > 1) data_ = std::make_shared<Data>(*data_);
  return *data_;
}

size_t Column::size() const { return rows_ ? rows_->size() : data_->present.size(); }
bool Column::is_missing(size_t row) const { return !data_->present[at(row)]; }
size_t Column::count_present() const {
  if (!rows_) return data_->present.count();
  size_t n = 0;
  for (size_t r : *rows_) n += data_->present[r] ? 1 : 0;
  return n;
}
Column::Storage Column::storage() const { return data_->storage; }

std::string Column::text(size_t row) const {
  const Data& d = *data_;
  const size_t r = at(row);
  if (!d.present[r]) return std::string();
  switch (d.storage) {
    case Storage::kDictionary:
      return d.dictionary[d.codes[r]];
    case Storage::kNumbers:
      return Data::format_shortest(d.numbers[r]);
    case Storage::kText:
      return std::string(d.text_at(r));
  }
  return std::string();
}

std::optional<double> Column::number(size_t row) const {
  const Data& d = *data_;
  const size_t r = at(row);
  if (!d.present[r]) return std::nullopt;
  switch (d.storage) {
    case Storage::kDictionary:
      return d.dictionary_numbers[d.codes[r]];
    case Storage::kNumbers:
      return d.numbers[r];
    case Storage::kText:
      return parse_number(d.text_at(r));
  }
  return std::nullopt;
}

std::unordered_map<std::string, size_t> Column::value_counts() const {
  const Data& d = *data_;
  const size_t rows = size();
  std::unordered_map<std::string, size_t> out;
  switch (d.storage) {
    case Storage::kDictionary: {
      std::vector<size_t> counts(d.dictionary.size(), 0);
      for (size_t i = 0; i < rows; ++i)
        if (const uint32_t code = d.codes[at(i)]; code != kMissingCode) ++counts[code];
      for (size_t k = 0; k < counts.size(); ++k)
        if (counts[k] > 0) out.emplace(d.dictionary[k], counts[k]);
      return out;
    }
    case Storage::kNumbers: {
      std::unordered_map<double, size_t> counts;
      for (size_t i = 0; i < rows; ++i)
        if (const size_t r = at(i); d.present[r]) ++counts[d.numbers[r]];
      for (const auto& [value, count] : counts) out[Data::format_shortest(value)] += count;
      return out;
    }
    case Storage::kText: {
      std::unordered_map<std::string_view, size_t> counts;
      for (size_t i = 0; i < rows; ++i)
        if (const size_t r = at(i); d.present[r]) ++counts[d.text_at(r)];
      out.reserve(counts.size());
      for (const auto& [value, count] : counts) out.emplace(value, count);
      return out;
    }
  }
  return out;
}

bool Column::holds_only_numbers() const {
  const Data& d = *data_;
  const size_t rows = size();
  switch (d.storage) {
    case Storage::kDictionary: {
      if (d.all_numbers) return true;
      std::vector<uint8_t> checked(d.dictionary.size(), 0);
      for (size_t i = 0; i < rows; ++i) {
        const uint32_t code = d.codes[at(i)];
        if (code == kMissingCode || checked[code]) continue;
        if (!d.dictionary_numbers[code]) return false;
        checked[code] = 1;
      }
      return true;
    }
    case Storage::kNumbers:
      return true;
    case Storage::kText:
      for (size_t i = 0; i < rows; ++i)
        if (const size_t r = at(i); d.present[r] && !parse_number(d.text_at(r))) return false;
      return true;
  }
  return false;
}

size_t Column::count_distinct(size_t limit) const {
  const Data& d = *data_;
  const size_t rows = size();
  switch (d.storage) {
    case Storage::kDictionary: {
      std::vector<uint8_t> used(d.dictionary.size(), 0);
      size_t distinct = 0;
      for (size_t i = 0; i < rows; ++i)
        if (const uint32_t code = d.codes[at(i)]; code != kMissingCode && !used[code]) {
          used[code] = 1;
          if (++distinct > limit) break;
        }
      return distinct;
    }
    case Storage::kNumbers: {
      std::unordered_set<double> seen;
      for (size_t i = 0; i < rows && seen.size() <= limit; ++i)
        if (const size_t r = at(i); d.present[r]) seen.insert(d.numbers[r]);
      return seen.size();
    }
    case Storage::kText: {
      std::unordered_set<std::string_view> seen;
      for (size_t i = 0; i < rows && seen.size() <= limit; ++i)
        if (const size_t r = at(i); d.present[r]) seen.insert(d.text_at(r));
      return seen.size();
    }
  }
  return 0;
}

std::vector<int64_t> Column::index_of(const std::unordered_map<std::string, int64_t>& index, int64_t absent) const {
  const Data& d = *data_;
  std::vector<int64_t> out(size(), absent);
  if (d.storage == Storage::kDictionary) {
    std::vector<int64_t> per_entry(d.dictionary.size(), absent);
    for (size_t k = 0; k < d.dictionary.size(); ++k) {
      const auto it = index.find(d.dictionary[k]);
      if (it != index.end()) per_entry[k] = it->second;
    }
    for (size_t i = 0; i < out.size(); ++i)
      if (const uint32_t code = d.codes[at(i)]; code != kMissingCode) out[i] = per_entry[code];
    return out;
  }
  for (size_t i = 0; i < out.size(); ++i) {
    if (is_missing(i)) continue;
    const auto it = index.find(text(i));
    if (it != index.end()) out[i] = it->second;
  }
  return out;
}

const std::vector<std::string>& Column::dictionary() const {
  if (data_->storage != Storage::kDictionary)
    throw std::logic_error("column '" + name_ + "' is not held as a dictionary");
  return data_->dictionary;
}

void Column::reserve(size_t rows) {
  Data& d = mutable_data();
  d.present.reserve(rows);
  switch (d.storage) {
    case Storage::kDictionary:
      d.codes.reserve(rows);
      break;
    case Storage::kNumbers:
      d.numbers.reserve(rows);
      break;
    case Storage::kText:
      d.ends.reserve(rows);
      break;
  }
}

void Column::push(std::string_view text, bool present) { mutable_data().push(text, present); }

void Column::append(const Column& other) {
  const Column source = other;  // shares other's data and rows, even when other is *this
  const Data& from = *source.data_;
  Data& d = mutable_data();
  for (size_t i = 0; i < source.size(); ++i) {
    const size_t r = source.at(i);
    if (!from.present[r]) d.push({}, false);
    else if (from.storage == Storage::kDictionary) d.push(from.dictionary[from.codes[r]], true);
    else if (from.storage == Storage::kText) d.push(from.text_at(r), true);
    else d.push(Data::format_shortest(from.numbers[r]), true);
  }
}

Column Column::view(const RowIndex& rows) const {
  Column out = *this;
  if (rows_) {  // rows of a view: the data's rows they stand for
    auto through = std::make_shared<std::vector<size_t>>(rows->size());
    for (size_t i = 0; i < rows->size(); ++i) (*through)[i] = (*rows_)[(*rows)[i]];
    out.rows_ = std::move(through);
  } else {
    out.rows_ = rows;
  }
  return out;
}

Column Column::select(const std::vector<size_t>& rows) const {
  const Data& d = *data_;
  Column out(name_);
  Data& o = *out.data_;
  o.storage = d.storage;
  o.present.reserve(rows.size());
  for (size_t i : rows) o.present.push_back(d.present[at(i)]);
  switch (d.storage) {
    case Storage::kDictionary:
      o.dictionary = d.dictionary;
      o.dictionary_numbers = d.dictionary_numbers;
      o.all_numbers = d.all_numbers;
      o.rebuild_lookup();
      o.codes.reserve(rows.size());
      for (size_t i : rows) o.codes.push_back(d.codes[at(i)]);
      break;
    case Storage::kNumbers:
      o.numbers.reserve(rows.size());
      for (size_t i : rows) o.numbers.push_back(d.numbers[at(i)]);
      break;
    case Storage::kText: {
      size_t bytes = 0;
      for (size_t i : rows) bytes += d.text_at(at(i)).size();
      o.text.reserve(bytes);
      o.ends.reserve(rows.size());
      for (size_t i : rows) o.push_text(d.text_at(at(i)));
      break;
    }
  }
  return out;
}

// ---------------------------------------------------------------------------
// Numbers and missing values

std::optional<double> parse_number(std::string_view cell) {
  while (!cell.empty() && (cell.front() == ' ' || cell.front() == '\t')) cell.remove_prefix(1);
  while (!cell.empty() && (cell.back() == ' ' || cell.back() == '\t')) cell.remove_suffix(1);
  if (cell.empty()) return std::nullopt;
  double value = 0;
  const auto [end, error] = std::from_chars(cell.data(), cell.data() + cell.size(), value);
  if (error == std::errc() && end == cell.data() + cell.size()) return value;
  // What from_chars refuses but strtod reads (a '+' sign, out-of-range values);
  // strtod also reads hexadecimal ("0x1A"), which pandas does not, so neither do we.
  if (cell.find_first_of("xX") != std::string_view::npos || cell.find('\0') != std::string_view::npos)
    return std::nullopt;
  const std::string text(cell);
  char* stop = nullptr;
  value = std::strtod(text.c_str(), &stop);
  if (stop != text.c_str() + text.size() || stop == text.c_str()) return std::nullopt;
  return value;
}

bool is_missing_token(std::string_view text) {
  // pandas.io.parsers default na_values (STR_NA_VALUES), by first byte: every cell
  // of a table is asked, so most answers must come from its length and first byte.
  if (text.empty()) return true;
  if (text.size() > 8) return false;  // the longest token is "#N/A N/A"
  static constexpr std::string_view kHash[] = {"#N/A", "#N/A N/A", "#NA"};
  static constexpr std::string_view kMinus[] = {"-1.#IND", "-1.#QNAN", "-NaN", "-nan"};
  static constexpr std::string_view kOne[] = {"1.#IND", "1.#QNAN"};
  static constexpr std::string_view kLess[] = {"<NA>"};
  static constexpr std::string_view kUpperN[] = {"N/A", "NA", "NULL", "NaN", "None"};
  static constexpr std::string_view kLowerN[] = {"n/a", "nan", "null"};
  const auto among = [&](const auto& tokens) {
    return std::find(std::begin(tokens), std::end(tokens), text) != std::end(tokens);
  };
  switch (text.front()) {
    case '#':
      return among(kHash);
    case '-':
      return among(kMinus);
    case '1':
      return among(kOne);
    case '<':
      return among(kLess);
    case 'N':
      return among(kUpperN);
    case 'n':
      return among(kLowerN);
    default:
      return false;
  }
}

// ---------------------------------------------------------------------------
// Table

size_t Table::num_rows() const { return columns_.empty() ? 0 : columns_.front().size(); }

std::vector<std::string> Table::column_names() const {
  std::vector<std::string> names;
  names.reserve(columns_.size());
  for (const Column& c : columns_) names.push_back(c.name());
  return names;
}

bool Table::has_column(const std::string& name) const {
  return std::any_of(columns_.begin(), columns_.end(), [&](const Column& c) { return c.name() == name; });
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
  for (const Column& c : columns_)
    if (c.name() == name) return c;
  throw_column_not_found(name, *this);
}

Column& Table::column(const std::string& name) {
  for (Column& c : columns_)
    if (c.name() == name) return c;
  throw_column_not_found(name, *this);
}

void Table::add_column(Column column) {
  if (has_column(column.name()))
    throw std::invalid_argument("column '" + column.name() + "' already exists in " + source);
  if (!columns_.empty() && column.size() != num_rows())
    throw std::invalid_argument("column '" + column.name() + "' has " + std::to_string(column.size()) + " rows but " +
                                source + " has " + std::to_string(num_rows()));
  columns_.push_back(std::move(column));
}

void Table::drop_column(const std::string& name) {
  auto it = std::find_if(columns_.begin(), columns_.end(), [&](const Column& c) { return c.name() == name; });
  if (it == columns_.end()) throw_column_not_found(name, *this);
  columns_.erase(it);
}

Table Table::select_rows(const std::vector<size_t>& rows) const {
  const size_t n = num_rows();
  for (size_t r : rows)
    if (r >= n)
      throw std::out_of_range("row index " + std::to_string(r) + " is out of range for " + source + " (" +
                              std::to_string(n) + " rows)");
  // One row index for the columns: a view costs 8 bytes a row, not a copy of each
  // column. Columns that are views already get their rows' rows (one index per view).
  const auto index = std::make_shared<const std::vector<size_t>>(rows);
  std::map<const std::vector<size_t>*, Column::RowIndex> composed;
  Table out;
  out.source = source;
  out.columns_.reserve(columns_.size());
  for (const Column& c : columns_) {
    if (!c.rows_) {
      out.columns_.push_back(c.view(index));
      continue;
    }
    // Columns that share a view share its composition too.
    Column::RowIndex& through = composed[c.rows_.get()];
    Column selected = through ? c : c.view(index);
    if (through) selected.rows_ = through;
    else through = selected.rows_;
    out.columns_.push_back(std::move(selected));
  }
  return out;
}

}  // namespace automm
