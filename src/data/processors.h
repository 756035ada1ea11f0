// Column and problem-type inference (AutoMM's data/infer_types.py), the holdout split, and the
// data processors fitted on the training split and saved with the predictor.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "automm/config.h"

#include "automm/table.h"

namespace automm {

enum class ColumnType { kCategorical, kNumerical, kText, kImagePath, kImageBytes, kIgnored };

// "categorical", "numerical", "text", "image_path", "image_bytearray", "ignored".
std::string to_string(ColumnType type);
ColumnType parse_column_type(const std::string& name);

using ColumnTypes = std::map<std::string, ColumnType>;

// Types every feature column (all columns but the label), in table order.
// `user_types` wins; `tuning` (may be null) is used for the "no unseen values"
// rule of categorical columns. Relative image paths resolve against the table's folder.
ColumnTypes infer_column_types(const Table& train, const Table* tuning, const std::string& label,
                               const std::map<std::string, std::string>& user_types);

// "binary", "multiclass" or "regression" (AutoMM's data/infer_types.py). Throws when the label is
// all missing or holds one value.
std::string infer_problem_type(const Column& label);

// Number of holdout rows' fraction when no tuning data is given.
double default_holdout_fraction(size_t num_rows);
// Row indices of (train, holdout), stratified by `strata` (one key per row:
// the class for classification, the same key everywhere for none).
std::pair<std::vector<size_t>, std::vector<size_t>> split_holdout(const std::vector<std::string>& strata,
                                                                  double fraction, uint64_t seed);

// What a label column holds: classes, or values (regression).
enum class LabelKind { kClasses, kValues };

// Labels: classes sorted (numerically when all labels are numbers), the
// positive label moved last. Regression labels scaled (standard / minmax / none).
class LabelProcessor {
 public:
  void fit(const Column& label, LabelKind kind, const Config& config);
  // Class indices (int64) or scaled values (float32). Throws naming the row for
  // an unseen class or a non-numeric regression label.
  torch::Tensor transform(const Column& label) const;
  // Scaled regression outputs back to label units.
  std::vector<double> inverse_regression(const torch::Tensor& scaled) const;
  const std::vector<std::string>& classes() const { return classes_; }
  int64_t num_classes() const { return static_cast<int64_t>(classes_.size()); }
  LabelKind kind() const { return kind_; }
  nlohmann::json to_json() const;
  static LabelProcessor from_json(const nlohmann::json& j);

 private:
  LabelKind kind_ = LabelKind::kClasses;
  std::vector<std::string> classes_;
  std::string scaling_ = "none";
  double shift_ = 0.0, scale_ = 1.0;  // value = (raw - shift) / scale
};

// Numerical columns: mean imputation, then standard scaling.
class NumericalProcessor {
 public:
  void fit(const Table& train, const std::vector<std::string>& columns, const Config& config);
  // [rows, columns] float32. A non-numeric cell becomes missing; `warnings`
  // (if given) receives one line per column naming it and the first row.
  torch::Tensor transform(const Table& table, std::vector<std::string>* warnings = nullptr) const;
  const std::vector<std::string>& columns() const { return columns_; }
  nlohmann::json to_json() const;
  static NumericalProcessor from_json(const nlohmann::json& j);

 private:
  std::vector<std::string> columns_;
  std::vector<double> fill_, mean_, std_;
};

// Categorical columns: categories seen at least minimum_cat_count times, at most
// maximum_num_cat per column (most frequent first), get their own index; rare,
// unseen and missing values share one extra index.
class CategoricalProcessor {
 public:
  void fit(const Table& train, const std::vector<std::string>& columns, const Config& config);
  torch::Tensor transform(const Table& table) const;  // [rows, columns] int64
  const std::vector<std::string>& columns() const { return columns_; }
  // Embedding rows needed per column (kept categories + the shared extra index).
  std::vector<int64_t> num_categories() const;
  nlohmann::json to_json() const;
  static CategoricalProcessor from_json(const nlohmann::json& j);

 private:
  std::vector<std::string> columns_;
  std::vector<std::map<std::string, int64_t>> vocab_;
};

}  // namespace automm
