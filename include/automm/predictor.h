// MultiModalPredictor: the public face (AutoMM's predictor.py), a thin layer over the
// learner that its problem type names (src/learners).
//
//   automm::MultiModalPredictor predictor({.label = "y", .path = "model"});
//   predictor.fit(automm::read_table("train.csv"));
//   automm::Predictions labels = predictor.predict(automm::read_table("test.csv"));
//
// Process-wide state: a fit seeds LibTorch's global random generator with its
// seed (as Lightning's seed_everything does), and sets the intra-op thread
// count and env.deterministic for its duration, restoring both after.
// predict / predict_proba / evaluate / extract_embedding set the thread count
// their model needs and leave it (restoring it would rebuild LibTorch's thread
// pools twice per call, milliseconds against a one-row predict's 0.2 ms).
// Fits of two predictors should not run at the same time in one process (they
// would share the generator); predictions may.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "automm/config.h"
#include "automm/options.h"
#include "automm/predictions.h"
#include "automm/table.h"

namespace automm {

class Learner;  // src/learners/learner.h

class MultiModalPredictor {
 public:
  explicit MultiModalPredictor(PredictorOptions options);
  ~MultiModalPredictor();
  MultiModalPredictor(MultiModalPredictor&&) noexcept;
  MultiModalPredictor& operator=(MultiModalPredictor&&) noexcept;

  // Fits, then saves to path().
  void fit(const Table& train_data, const FitOptions& options = {});

  // One prediction per row, typed: class labels (classification) or numbers (regression).
  Predictions predict(const Table& data) const;
  // [rows, classes] probabilities in class order (classes()); with
  // as_multiclass=false a binary problem gives [rows], the positive class.
  torch::Tensor predict_proba(const Table& data, bool as_multiclass = true) const;
  // Metric name -> score; default: the eval metric. Rows without a label are skipped.
  std::map<std::string, double> evaluate(const Table& data, const std::vector<std::string>& metrics = {}) const;
  // [rows, dim]: the fused features the head reads.
  torch::Tensor extract_embedding(const Table& data) const;

  // problem_type zero_shot_image_classification (nothing to fit): each row's
  // images against candidate class names, as AutoMM's predict_proba(data,
  // {"text": names}): [rows, candidates] probabilities, softmax(100 * cosine
  // similarity) of CLIP's embeddings; predict gives the most probable name.
  // The names are used verbatim unless model.clip.prompt_template says
  // otherwise. Empty or repeated names are an error; so is this call on a
  // predictor with classes of its own. Pass one name as a std::vector: a
  // braced {"cat"} alone converts to the as_multiclass overload.
  torch::Tensor predict_proba(const Table& data, const std::vector<std::string>& candidates) const;
  Predictions predict(const Table& data, const std::vector<std::string>& candidates) const;

  // Writes the network's inference forward pass (fp32) to `out`, traced on the
  // inputs of `example`'s first rows (any rows with the predictor's columns): a
  // TorchScript file that PyTorch's torch.jit.load runs, or an ONNX file; beside
  // it `<out>.json` names the inputs (name, dtype, shape), the outputs (logits,
  // features), the classes and how to read the logits, and
  // `<out>.example.safetensors` holds the example inputs and the outputs computed
  // for them. Tokenizing and image transforms stay outside the file. A failure
  // leaves an existing `out` as it was.
  void export_model(const Table& example, const std::string& out, const ExportOptions& options = {}) const;

  // Writes a self-contained, relocatable folder through a temporary folder and a
  // rename, so a failure never leaves a half-written predictor at `path`.
  // standalone (AutoMM's argument): text models keep a copy of their
  // checkpoint's config and tokenizer files (<path>/<model>/), so loading needs
  // neither network nor cache; false records the Hugging Face id instead, found
  // again in the cache (or downloaded) at load. Weights are always in model.safetensors.
  void save(const std::string& path, bool standalone = true) const;
  // Reads a folder written by save() (any earlier format version too); with
  // resume = true, an unfinished fit's state instead, which fit() then continues.
  static MultiModalPredictor load(const std::string& path, bool resume = false);

  Json fit_summary() const;
  const std::string& path() const;
  const std::string& label() const;
  // binary, multiclass, regression, or a registered problem type.
  std::string problem_type() const;
  std::string eval_metric() const;
  std::vector<std::string> classes() const;
  std::map<std::string, std::string> column_types() const;
  const Config& config() const;

 private:
  explicit MultiModalPredictor(std::unique_ptr<Learner> learner);
  std::unique_ptr<Learner> learner_;
};

}  // namespace automm
