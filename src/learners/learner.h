// A learner fits and runs the model of one kind of problem (AutoMM's
// learners/: default.py for classification and regression, later
// object_detection.py, matching.py, ...). The predictor picks the learner its
// problem type names (TaskEntry::learner) and forwards every call to it.
#pragma once

#include <functional>
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

class Learner {
 public:
  virtual ~Learner() = default;

  // `teacher`: the learner of options.teacher_predictor, or null.
  virtual void fit(const Table& train, const FitOptions& options, const Learner* teacher) = 0;
  virtual Predictions predict(const Table& data) const = 0;
  virtual torch::Tensor predict_proba(const Table& data, bool as_multiclass) const = 0;
  virtual std::map<std::string, double> evaluate(const Table& data, const std::vector<std::string>& metrics) const = 0;
  virtual torch::Tensor extract_embedding(const Table& data) const = 0;
  // Zero-shot classification: [rows, candidates] probabilities of each row
  // against candidate class names. Learners with classes of their own throw.
  virtual torch::Tensor predict_proba(const Table& data, const std::vector<std::string>& candidates) const;
  // For a student's distillation: the head's raw outputs [rows, outputs] (logits;
  // regression: scaled values) computed without gradient, and the head itself on
  // features [rows, embedding_dim] (gradients reach the features, never this
  // learner's weights).
  virtual torch::Tensor head_outputs(const Table& data) const = 0;
  virtual torch::Tensor classify_features(const torch::Tensor& features) const = 0;

  // MultiModalPredictor::export_model.
  virtual void export_model(const Table& example, const std::string& out, const ExportOptions& options) const = 0;

  // Writes the predictor folder's files into `folder` (an empty folder; the
  // predictor moves it into place). `extra` keys go into predictor.json.
  virtual void write(const std::string& folder, bool standalone, const Json& extra = Json::object()) const = 0;
  // Reads a folder written by write(), or by an earlier format version, whose
  // predictor.json is `meta`. resume = true: an unfinished fit's folder, which
  // fit() then continues.
  virtual void read(const std::string& folder, const Json& meta, bool resume) = 0;
  // After the fit's save: the predictor's files now live in `folder`.
  virtual void relocate(const std::string& folder) = 0;

  virtual bool fitted() const = 0;
  // False on the data-parallel ranks other than 0 (env.strategy = ddp): they
  // fit along but never write the predictor's folder.
  virtual bool lead() const { return true; }
  virtual Json fit_summary() const = 0;
  virtual std::string problem_type() const = 0;
  virtual std::string eval_metric() const = 0;
  virtual std::vector<std::string> classes() const = 0;
  virtual std::map<std::string, std::string> column_types() const = 0;
  virtual const Config& config() const = 0;
  virtual PredictorOptions& options() = 0;
  virtual const PredictorOptions& options() const = 0;
};

using LearnerFactory = std::function<std::unique_ptr<Learner>(PredictorOptions)>;
// Adds a learner kind; replaces one of the same name.
void register_learner(const std::string& name, LearnerFactory factory);
// Throws std::invalid_argument naming the known learners.
std::unique_ptr<Learner> make_learner(const std::string& name, PredictorOptions options);

// The predictor folder's format, shared by every learner.
constexpr const char* kPredictorFile = "predictor.json";
constexpr const char* kResumeFolder = "resume";  // an unfinished fit's state
constexpr const char* kPredictorFormat = "automm.cpp predictor";
// 1: FNV-1a weights digest, one label processor; 2: xxHash digest, task and
// modality adapters saved by themselves; 3: weights in model.safetensors (read
// through a memory map) instead of model.pt (a LibTorch archive).
constexpr int kFormatVersion = 3;

}  // namespace automm
