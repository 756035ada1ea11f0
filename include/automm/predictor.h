// MultiModalPredictor: the public face (SPEC s.6).
//
//   automm::MultiModalPredictor predictor({.label = "y", .path = "model"});
//   predictor.fit(automm::read_table("train.csv"));
//   auto labels = predictor.predict(automm::read_table("test.csv"));
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "automm/config.h"
#include "automm/problem_type.h"
#include "automm/table.h"

namespace automm {

struct PredictorOptions {
  std::string label;
  std::string problem_type;  // "" = inferred
  std::string presets;       // "" = high_quality
  std::string eval_metric;   // "" = the problem type's default
  Json hyperparameters = Json::object();
  std::string path;          // "" = AutogluonModels/ag-<timestamp>
  bool verbose = true;
  // AutoMM's `pretrained`: false builds every backbone with random weights
  // (text models still read their checkpoint's config and tokenizer).
  bool pretrained = true;
};

struct FitOptions {
  const Table* tuning_data = nullptr;
  double time_limit = 0.0;  // seconds; 0 = none
  std::string presets;      // overrides the constructor's
  Json hyperparameters = Json::object();  // merged over the constructor's
  std::map<std::string, std::string> column_types;
  double holdout_frac = 0.0;  // 0 = AutoMM's default for the table size
  uint64_t seed = 0;
};

class MultiModalPredictor {
 public:
  explicit MultiModalPredictor(PredictorOptions options);
  ~MultiModalPredictor();
  MultiModalPredictor(MultiModalPredictor&&) noexcept;
  MultiModalPredictor& operator=(MultiModalPredictor&&) noexcept;

  // Fits, then saves to path().
  void fit(const Table& train_data, const FitOptions& options = {});

  // Predicted labels (classification) or values (regression), as a column named
  // after the label.
  Column predict(const Table& data) const;
  // [rows, classes] probabilities in class order (classes()); with
  // as_multiclass=false a binary problem gives [rows], the positive class.
  torch::Tensor predict_proba(const Table& data, bool as_multiclass = true) const;
  // Metric name -> score; default: the eval metric. Rows without a label are skipped.
  std::map<std::string, double> evaluate(const Table& data, const std::vector<std::string>& metrics = {}) const;
  // [rows, dim]: the fused features the head reads.
  torch::Tensor extract_embedding(const Table& data) const;

  // Writes a self-contained, relocatable folder through a temporary folder and a
  // rename, so a failure never leaves a half-written predictor at `path`.
  // standalone (AutoMM's argument): text models keep a copy of their
  // checkpoint's config and tokenizer files (<path>/<model>/), so loading needs
  // neither network nor cache; false records the Hugging Face id instead, found
  // again in the cache (or downloaded) at load. Weights are always in model.pt.
  void save(const std::string& path, bool standalone = true) const;
  static MultiModalPredictor load(const std::string& path, bool resume = false);

  Json fit_summary() const;
  const std::string& path() const;
  const std::string& label() const;
  ProblemType problem_type() const;
  const std::string& eval_metric() const;
  std::vector<std::string> classes() const;
  std::map<std::string, std::string> column_types() const;
  const Config& config() const;

  struct State;  // defined in src/predictor/predictor_state.h

 private:
  MultiModalPredictor();
  std::unique_ptr<State> state_;
};

}  // namespace automm
