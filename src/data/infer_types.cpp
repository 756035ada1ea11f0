// Column and problem-type inference, following AutoMM's data/infer_types.py (AutoMM's data/infer_types.py).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <set>
#include <sstream>
#include <stdexcept>
#include <unordered_map>
#include <unordered_set>

#include "data/processors.h"

#include "data/image/image_io.h"

namespace automm {
namespace fs = std::filesystem;
namespace {

const std::vector<std::pair<ColumnType, std::string>>& column_type_names() {
  static const std::vector<std::pair<ColumnType, std::string>> names = {
      {ColumnType::kCategorical, "categorical"}, {ColumnType::kNumerical, "numerical"},
      {ColumnType::kText, "text"},               {ColumnType::kImagePath, "image_path"},
      {ColumnType::kImageBytes, "image_bytearray"}, {ColumnType::kIgnored, "ignored"}};
  return names;
}

bool file_is_image(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  char head[16] = {};
  in.read(head, sizeof(head));
  return looks_like_image_bytes(std::string(head, static_cast<size_t>(in.gcount())));
}

// AutoMM samples up to 500 cells and calls a column image_path when at most 90%
// of the paths in them fail to open as images.
bool is_image_path_column(const Column& column, const fs::path& base) {
  size_t tried = 0, failed = 0;
  for (size_t row = 0; row < column.size() && tried < 500; ++row) {
    if (column.is_missing(row)) continue;
    ++tried;
    bool ok = false;
    for (const std::string& part : split_image_paths(column.text(row))) {
      fs::path p(part);
      if (p.is_relative()) p = base / p;
      if ((ok = file_is_image(p))) break;
    }
    if (!ok) ++failed;
  }
  return tried > 0 && static_cast<double>(failed) / static_cast<double>(tried) <= 0.9;
}

// Base64 text whose first bytes decode to an image signature.
bool is_base64_image(const std::string& cell) {
  if (cell.size() < 16) return false;
  try {
    return looks_like_image_bytes(decode_base64(cell.substr(0, 16)));
  } catch (const ImageDecodeError&) {
    return false;
  }
}

bool is_image_bytes_column(const Column& column) {
  size_t tried = 0, images = 0;
  for (size_t row = 0; row < column.size() && tried < 100; ++row) {
    if (column.is_missing(row)) continue;
    ++tried;
    if (is_base64_image(column.text(row))) ++images;
  }
  return tried > 0 && images * 2 >= tried;
}

size_t word_count(const std::string& text) {
  std::stringstream stream(text);
  std::string word;
  size_t n = 0;
  while (stream >> word) ++n;
  return n;
}

bool is_text_column(const std::unordered_map<std::string, size_t>& counts, size_t present) {
  if (present == 0 || static_cast<double>(counts.size()) / static_cast<double>(present) <= 0.01)
    return false;
  double words = 0;
  for (const auto& [value, count] : counts) words += static_cast<double>(word_count(value));
  return words / static_cast<double>(counts.size()) >= 3.0;
}

ColumnType infer_one(const Column& column, const Column* tuning, const fs::path& base) {
  const double threshold = std::min(0.1 * static_cast<double>(column.size()), 20.0);
  // Counting distinct values stops early: a column of a million numbers never
  // needs its texts.
  const size_t distinct = column.count_distinct(20);
  if (distinct <= 1) return ColumnType::kIgnored;  // all missing or constant
  if (static_cast<double>(distinct) < threshold) {
    const auto counts = column.value_counts();
    bool unseen = false;
    for (size_t row = 0; tuning && row < tuning->size() && !unseen; ++row)
      unseen = !tuning->is_missing(row) && !counts.count(tuning->text(row));
    if (!unseen) return ColumnType::kCategorical;
  }
  if (column.holds_only_numbers()) return ColumnType::kNumerical;
  if (is_image_path_column(column, base)) return ColumnType::kImagePath;
  if (is_text_column(column.value_counts(), column.count_present())) return ColumnType::kText;
  if (is_image_bytes_column(column)) return ColumnType::kImageBytes;
  return ColumnType::kCategorical;
}

}  // namespace

std::string to_string(ColumnType type) {
  for (const auto& [t, name] : column_type_names())
    if (t == type) return name;
  return "unknown";
}

ColumnType parse_column_type(const std::string& name) {
  for (const auto& [t, n] : column_type_names())
    if (n == name) return t;
  if (name == "null") return ColumnType::kIgnored;  // AutoMM's spelling
  std::string known;
  for (const auto& [t, n] : column_type_names()) known += (known.empty() ? "" : ", ") + n;
  throw std::invalid_argument("unknown column type '" + name + "'; known types: " + known);
}

ColumnTypes infer_column_types(const Table& train, const Table* tuning, const std::string& label,
                               const std::map<std::string, std::string>& user_types) {
  for (const auto& [name, type] : user_types) {
    if (!train.has_column(name))
      throw std::invalid_argument("column_types names column '" + name + "', which is not in " +
                                  train.source);
    parse_column_type(type);
  }
  const fs::path base = fs::path(train.source).parent_path();
  ColumnTypes types;
  for (const Column& column : train.columns()) {
    if (column.name() == label) continue;
    const auto user = user_types.find(column.name());
    if (user != user_types.end()) {
      types[column.name()] = parse_column_type(user->second);
      continue;
    }
    const Column* tuning_column =
        tuning && tuning->has_column(column.name()) ? &tuning->column(column.name()) : nullptr;
    types[column.name()] = infer_one(column, tuning_column, base);
  }
  return types;
}

std::string infer_problem_type(const Column& label) {
  const size_t present = label.count_present();
  if (present == 0)
    throw std::invalid_argument("label column '" + label.name() + "' has no values (all missing)");
  if (label.count_distinct(2) == 2) return "binary";
  // More than 1000 values: never multiclass when they are all numbers.
  if (label.count_distinct(1000) > 1000) return label.holds_only_numbers() ? "regression" : "multiclass";
  const std::unordered_map<std::string, size_t> counts = label.value_counts();
  if (counts.size() == 1)
    throw std::invalid_argument("label column '" + label.name() + "' holds a single value ('" +
                                counts.begin()->first +
                                "'); a classifier needs at least two classes");
  bool numeric = true, whole = true;
  for (const auto& [value, count] : counts) {
    const auto number = parse_number(value);
    if (!number) {
      numeric = false;
      break;
    }
    whole = whole && std::isfinite(*number) && std::floor(*number) == *number;
  }
  if (!numeric) return "multiclass";
  if (!whole) return "regression";
  const double threshold = present > 1000 ? 0.05 : 0.1;
  const double ratio = static_cast<double>(counts.size()) / static_cast<double>(present);
  return ratio <= threshold && counts.size() <= 1000 ? "multiclass" : "regression";
}

double default_holdout_fraction(size_t num_rows) {
  const double n = static_cast<double>(std::max<size_t>(num_rows, 1));
  if (num_rows < 5000) return std::max(0.1, std::min(0.2, 500.0 / n));
  return std::max(0.01, std::min(0.1, 2500.0 / n));
}

std::pair<std::vector<size_t>, std::vector<size_t>> split_holdout(const std::vector<std::string>& strata_keys,
                                                                  double fraction, uint64_t seed) {
  if (!(fraction > 0.0 && fraction < 1.0))
    throw std::invalid_argument("holdout_frac must be in (0, 1), got " + std::to_string(fraction));
  std::mt19937_64 rng(seed);
  std::map<std::string, std::vector<size_t>> strata;
  for (size_t row = 0; row < strata_keys.size(); ++row) strata[strata_keys[row]].push_back(row);
  // Largest-remainder allocation: the holdout has round(fraction * n) rows,
  // shared across strata in proportion to their size; a single-row class stays in train.
  size_t labelled = 0;
  for (const auto& [key, rows] : strata) labelled += rows.size();
  const size_t target = static_cast<size_t>(std::lround(fraction * static_cast<double>(labelled)));
  std::vector<size_t> take;
  std::vector<std::pair<double, size_t>> remainders;
  size_t allocated = 0;
  for (auto& [key, rows] : strata) {
    for (size_t i = rows.size(); i > 1; --i) std::swap(rows[i - 1], rows[rng() % i]);
    const double exact = fraction * static_cast<double>(rows.size());
    const size_t cap = rows.size() >= 2 ? rows.size() - 1 : 0;
    take.push_back(std::min(static_cast<size_t>(exact), cap));
    allocated += take.back();
    remainders.emplace_back(-(exact - static_cast<double>(take.back())), take.size() - 1);
  }
  std::stable_sort(remainders.begin(), remainders.end());
  std::vector<size_t> sizes;
  for (const auto& [key, rows] : strata) sizes.push_back(rows.size());
  for (const auto& [negative_remainder, index] : remainders) {
    if (allocated >= target) break;
    if (sizes[index] >= 2 && take[index] + 1 <= sizes[index] - 1) {
      ++take[index];
      ++allocated;
    }
  }
  std::vector<size_t> train, holdout;
  size_t index = 0;
  for (const auto& [key, rows] : strata) {
    const auto split = rows.begin() + static_cast<long>(take[index++]);
    holdout.insert(holdout.end(), rows.begin(), split);
    train.insert(train.end(), split, rows.end());
  }
  if (train.empty() || holdout.empty())
    throw std::invalid_argument("too few labelled rows (" + std::to_string(train.size() + holdout.size()) +
                                ") to hold out a validation split; pass tuning data");
  std::sort(train.begin(), train.end());
  std::sort(holdout.begin(), holdout.end());
  return {train, holdout};
}

}  // namespace automm
