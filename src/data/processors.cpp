// Label, numerical and categorical processors: fitted on the training split only.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>
#include <unordered_map>

#include "data/processors.h"

#include "data/parallel.h"

namespace automm {
namespace {

std::string row_name(const Table& table, size_t row) {
  // Row numbers as a user sees them: 1-based data rows of the source table.
  return "row " + std::to_string(row + 1) + " of " + table.source;
}

}  // namespace

// ---------------------------------------------------------------- labels
void LabelProcessor::fit(const Column& label, LabelKind kind, const Config& config) {
  kind_ = kind;
  classes_.clear();
  if (kind == LabelKind::kClasses) {
    std::vector<std::string> values;
    for (const auto& [value, count] : label.value_counts()) values.push_back(value);
    std::sort(values.begin(), values.end());
    const bool numeric = std::all_of(values.begin(), values.end(),
                                     [](const std::string& v) { return parse_number(v).has_value(); });
    if (numeric)
      std::stable_sort(values.begin(), values.end(), [](const std::string& a, const std::string& b) {
        return *parse_number(a) < *parse_number(b);
      });
    if (!config.is_null("data.pos_label")) {
      const std::string pos = config.get_string("data.pos_label");
      const auto it = std::find(values.begin(), values.end(), pos);
      if (it == values.end())
        throw std::invalid_argument("data.pos_label '" + pos + "' is not a class of label column '" +
                                    label.name() + "'");
      values.erase(it);
      values.push_back(pos);
    }
    classes_ = values;
    return;
  }
  std::vector<double> values;
  for (size_t row = 0; row < label.size(); ++row) {
    if (label.is_missing(row)) continue;
    const auto v = label.number(row);
    if (!v)
      throw std::invalid_argument("label column '" + label.name() + "', row " + std::to_string(row + 1) +
                                  ": '" + label.text(row) + "' is not a number (regression)");
    values.push_back(*v);
  }
  scaling_ = config.get_string("data.label.numerical_preprocessing");
  if (config.get_string("optim.loss_func") == "bce") scaling_ = "none";  // bce wants [0,1] labels
  shift_ = 0.0;
  scale_ = 1.0;
  if (scaling_ == "standardscaler") {
    const double n = static_cast<double>(values.size());
    shift_ = std::accumulate(values.begin(), values.end(), 0.0) / n;
    double var = 0;
    for (double v : values) var += (v - shift_) * (v - shift_);
    scale_ = std::sqrt(var / n);
  } else if (scaling_ == "minmaxscaler") {
    const auto [lo, hi] = std::minmax_element(values.begin(), values.end());
    shift_ = *lo;
    scale_ = *hi - *lo;
  }
  if (!(scale_ > 0)) scale_ = 1.0;
}

torch::Tensor LabelProcessor::transform(const Column& label) const {
  const int64_t n = static_cast<int64_t>(label.size());
  if (kind_ == LabelKind::kClasses) {
    std::unordered_map<std::string, int64_t> index;
    for (size_t i = 0; i < classes_.size(); ++i) index[classes_[i]] = static_cast<int64_t>(i);
    std::vector<int64_t> codes = label.index_of(index, -1);
    for (size_t row = 0; row < codes.size(); ++row)
      if (codes[row] < 0)
        throw std::invalid_argument("label column '" + label.name() + "', row " + std::to_string(row + 1) +
                                    ": '" + label.text(row) + "' is not one of the training classes");
    return torch::tensor(codes, torch::kInt64);
  }
  auto out = torch::empty({n}, torch::kFloat32);
  auto* data = out.data_ptr<float>();
  for (int64_t row = 0; row < n; ++row) {
    const auto v = label.number(row);
    if (!v)
      throw std::invalid_argument("label column '" + label.name() + "', row " + std::to_string(row + 1) +
                                  ": '" + label.text(row) + "' is not a number");
    data[row] = static_cast<float>((*v - shift_) / scale_);
  }
  return out;
}

std::vector<double> LabelProcessor::inverse_regression(const torch::Tensor& scaled) const {
  auto values = scaled.to(torch::kCPU).to(torch::kFloat64).contiguous().reshape({-1});
  std::vector<double> out(values.data_ptr<double>(), values.data_ptr<double>() + values.numel());
  for (double& v : out) v = v * scale_ + shift_;
  return out;
}

nlohmann::json LabelProcessor::to_json() const {
  return {{"kind", kind_ == LabelKind::kClasses ? "classes" : "values"}, {"classes", classes_}, {"scaling", scaling_},
          {"shift", shift_}, {"scale", scale_}};
}

LabelProcessor LabelProcessor::from_json(const nlohmann::json& j) {
  LabelProcessor p;
  // Format 1 recorded the problem type (binary, multiclass, regression) instead of the kind.
  const std::string kind = j.contains("kind") ? j.at("kind").get<std::string>()
                                              : (j.at("problem_type") == "regression" ? "values" : "classes");
  if (kind != "classes" && kind != "values") throw std::invalid_argument("unknown label kind '" + kind + "'");
  p.kind_ = kind == "classes" ? LabelKind::kClasses : LabelKind::kValues;
  p.classes_ = j.at("classes").get<std::vector<std::string>>();
  p.scaling_ = j.at("scaling").get<std::string>();
  p.shift_ = j.at("shift").get<double>();
  p.scale_ = j.at("scale").get<double>();
  return p;
}

// ---------------------------------------------------------------- numerical
void NumericalProcessor::fit(const Table& train, const std::vector<std::string>& columns,
                             const Config& config) {
  columns_ = columns;
  fill_.clear();
  mean_.clear();
  std_.clear();
  const bool with_mean = config.get_bool("data.numerical.scaler_with_mean");
  const bool with_std = config.get_bool("data.numerical.scaler_with_std");
  for (const std::string& name : columns) {
    const Column& column = train.column(name);
    std::vector<double> values;
    for (size_t row = 0; row < column.size(); ++row) {
      if (column.is_missing(row)) continue;
      const auto v = column.number(row);
      if (!v)
        throw std::invalid_argument("numerical column '" + name + "', " + row_name(train, row) +
                                    ": '" + column.text(row) + "' is not a number");
      values.push_back(*v);
    }
    const double n = std::max<double>(1.0, static_cast<double>(values.size()));
    const double mean = std::accumulate(values.begin(), values.end(), 0.0) / n;
    double var = 0;
    for (double v : values) var += (v - mean) * (v - mean);
    const double std = std::sqrt(var / n);
    fill_.push_back(mean);  // missing values are imputed with the training mean
    mean_.push_back(with_mean ? mean : 0.0);
    std_.push_back(with_std && std > 0 ? std : 1.0);
  }
}

torch::Tensor NumericalProcessor::transform(const Table& table, std::vector<std::string>* warnings) const {
  const int64_t rows = static_cast<int64_t>(table.num_rows());
  const int64_t cols = static_cast<int64_t>(columns_.size());
  auto out = torch::empty({rows, cols}, torch::kFloat32);
  float* values = out.data_ptr<float>();  // [rows, cols]
  std::vector<const Column*> columns;
  for (const std::string& name : columns_) columns.push_back(&table.column(name));
  std::vector<int64_t> bad(static_cast<size_t>(cols), 0), first_bad(static_cast<size_t>(cols), -1);
  for_each_parallel(columns.size(), threads_for(columns.size() * static_cast<size_t>(rows)), [&](size_t c) {
    const Column& column = *columns[c];
    for (int64_t row = 0; row < rows; ++row) {
      std::optional<double> v;
      if (!column.is_missing(static_cast<size_t>(row))) {
        v = column.number(static_cast<size_t>(row));
        if (!v && bad[c]++ == 0) first_bad[c] = row;
      }
      values[row * cols + static_cast<int64_t>(c)] = static_cast<float>((v.value_or(fill_[c]) - mean_[c]) / std_[c]);
    }
  });
  for (size_t c = 0; c < columns.size(); ++c)
    if (bad[c] > 0 && warnings)
      warnings->push_back("numerical column '" + columns_[c] + "': " + std::to_string(bad[c]) +
                          " non-numeric value(s) treated as missing (first: '" + columns[c]->text(first_bad[c]) +
                          "' at " + row_name(table, first_bad[c]) + ")");
  return out;
}

nlohmann::json NumericalProcessor::to_json() const {
  return {{"columns", columns_}, {"fill", fill_}, {"mean", mean_}, {"std", std_}};
}

NumericalProcessor NumericalProcessor::from_json(const nlohmann::json& j) {
  NumericalProcessor p;
  p.columns_ = j.at("columns").get<std::vector<std::string>>();
  p.fill_ = j.at("fill").get<std::vector<double>>();
  p.mean_ = j.at("mean").get<std::vector<double>>();
  p.std_ = j.at("std").get<std::vector<double>>();
  return p;
}

// ---------------------------------------------------------------- categorical
void CategoricalProcessor::fit(const Table& train, const std::vector<std::string>& columns,
                               const Config& config) {
  columns_ = columns;
  vocab_.clear();
  const int64_t min_count = config.get_int("data.categorical.minimum_cat_count");
  const int64_t max_num = config.get_int("data.categorical.maximum_num_cat");
  for (const std::string& name : columns) {
    const Column& column = train.column(name);
    const auto counts = column.value_counts();
    std::vector<std::pair<std::string, int64_t>> ranked;
    for (const auto& [value, count] : counts) ranked.emplace_back(value, static_cast<int64_t>(count));
    // Most frequent first; ties by value so that the order is reproducible.
    std::sort(ranked.begin(), ranked.end(), [](const auto& a, const auto& b) {
      return a.second != b.second ? a.second > b.second : a.first < b.first;
    });
    std::map<std::string, int64_t> vocab;
    for (const auto& [value, count] : ranked) {
      if (count < min_count || static_cast<int64_t>(vocab.size()) >= max_num) break;
      vocab.emplace(value, static_cast<int64_t>(vocab.size()));
    }
    vocab_.push_back(std::move(vocab));
  }
}

torch::Tensor CategoricalProcessor::transform(const Table& table) const {
  const int64_t rows = static_cast<int64_t>(table.num_rows());
  const int64_t cols = static_cast<int64_t>(columns_.size());
  auto out = torch::empty({rows, cols}, torch::kInt64);
  int64_t* values = out.data_ptr<int64_t>();  // [rows, cols]
  std::vector<const Column*> columns;
  for (const std::string& name : columns_) columns.push_back(&table.column(name));
  for_each_parallel(columns.size(), threads_for(columns.size() * static_cast<size_t>(rows)), [&](size_t c) {
    const std::unordered_map<std::string, int64_t> vocab(vocab_[c].begin(), vocab_[c].end());
    const int64_t other = static_cast<int64_t>(vocab.size());  // rare, unseen and missing
    const std::vector<int64_t> codes = columns[c]->index_of(vocab, other);
    for (int64_t row = 0; row < rows; ++row) values[row * cols + static_cast<int64_t>(c)] = codes[static_cast<size_t>(row)];
  });
  return out;
}

std::vector<int64_t> CategoricalProcessor::num_categories() const {
  std::vector<int64_t> sizes;
  for (const auto& vocab : vocab_) sizes.push_back(static_cast<int64_t>(vocab.size()) + 1);
  return sizes;
}

nlohmann::json CategoricalProcessor::to_json() const {
  return {{"columns", columns_}, {"vocab", vocab_}};
}

CategoricalProcessor CategoricalProcessor::from_json(const nlohmann::json& j) {
  CategoricalProcessor p;
  p.columns_ = j.at("columns").get<std::vector<std::string>>();
  p.vocab_ = j.at("vocab").get<std::vector<std::map<std::string, int64_t>>>();
  return p;
}

}  // namespace automm
