// What a fitted predictor holds; shared by predictor.cpp and save_load.cpp.
#pragma once

#include <string>
#include <vector>

#include "automm/data.h"
#include "automm/learner.h"
#include "automm/models.h"
#include "automm/predictor.h"

namespace automm {

struct MultiModalPredictor::State {
  PredictorOptions options;
  Config config;
  bool fitted = false;
  ProblemType problem_type = ProblemType::kBinary;
  std::string eval_metric;
  std::string validation_metric;
  ColumnTypes column_types;
  LabelProcessor label_processor;
  NumericalProcessor numerical;
  CategoricalProcessor categorical;
  std::vector<std::string> model_names;
  ModelContext context;
  MultiModalNet net{nullptr};
  Json summary = Json::object();
  std::vector<LogRow> log;
  // Set by load(path, resume=true): the unfinished fit's options; fit() continues it.
  Json resume_fit_options;

  void require_fitted(const char* what) const;
  // Processes features (and labels when asked) with the fitted processors.
  TabularTensors process(const Table& data, bool with_labels) const;
  // Logits for the table's rows.
  torch::Tensor logits(const Table& data) const;
  void warn(const std::string& message) const;
  // Where an unfinished fit keeps its state: <path>/resume.
  std::string resume_dir() const;
  // Writes the metadata a resumed fit needs (config, processors, fit options).
  void write_resume_files(const Json& fit_options) const;
  // The score of `metric` on model outputs, in label units for regression.
  double score(const std::string& metric, const torch::Tensor& logits, const torch::Tensor& labels) const;
};

// The current on-disk format of a saved predictor.
constexpr int kFormatVersion = 1;

}  // namespace automm
