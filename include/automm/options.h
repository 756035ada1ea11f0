// The options of a predictor and of one fit (AutoMM's predictor.py: MultiModalPredictor's
// constructor and fit() arguments).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>

#include "automm/config.h"
#include "automm/table.h"

namespace automm {

class MultiModalPredictor;

struct PredictorOptions {
  std::string label;
  std::string problem_type;  // "" = inferred from the label (binary, multiclass or regression)
  std::string presets;       // "" = high_quality
  std::string eval_metric;   // "" = the problem type's default
  Json hyperparameters = Json::object();
  std::string path;          // "" = AutogluonModels/ag-<timestamp>
  bool verbose = true;
  // AutoMM's `pretrained`: false builds every backbone with random weights
  // (text models still read their checkpoint's config and tokenizer).
  bool pretrained = true;
  // Matching problems (text_similarity, image_similarity, image_text_similarity):
  // the query and response columns, and the label value that marks a matching
  // pair (default: the label's second class in sorted order, "1" for 0 / 1).
  // Without a label every row is a matching pair.
  std::string query, response, match_label;
};

struct FitOptions {
  std::optional<Table> tuning_data;  // none = a holdout split of the training data
  double time_limit = 0.0;           // seconds; 0 = none
  std::string presets;               // overrides the constructor's
  Json hyperparameters = Json::object();  // merged over the constructor's
  std::map<std::string, std::string> column_types;
  double holdout_frac = 0.0;  // 0 = AutoMM's default for the table size
  uint64_t seed = 0;
  // Polled after every training batch; returning true ends the fit with
  // FitInterrupted (the Python package answers Ctrl-C through it).
  std::function<bool()> stop_requested;
  // Knowledge distillation (distiller.* keys): a fitted predictor of the same
  // problem type, label and classes, whose outputs on the training rows the
  // student learns from. Its columns and models may differ.
  std::shared_ptr<const MultiModalPredictor> teacher_predictor;
};

// MultiModalPredictor::export_model: the network's inference forward pass as a
// file that runs without automm.cpp. Its input shapes are fixed (LibTorch's C++
// tracer records sizes as numbers), so it takes batches of exactly batch_size
// rows and text of exactly text_length tokens.
struct ExportOptions {
  std::string format = "torchscript";  // torchscript, or onnx (through /usr/bin/python3's torch)
  int64_t batch_size = 1;
  int64_t text_length = 0;             // 0 = the longest sequence the text processor makes
  int64_t opset_version = 16;          // onnx: AutoMM's export_onnx default
};

// What fit() throws when stop_requested said stop. The training state stays in
// <path>/resume (load(path, resume=true) continues it); a predictor already
// saved at the path is unchanged.
class FitInterrupted : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace automm
