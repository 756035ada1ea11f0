// A problem type as a plug-in (AutoMM's problem types, Detectron2's registries):
// the task owns its targets (which columns, how they are read, the fitted target
// processor it saves and loads itself), the head size and loss it asks of the
// model, how outputs become predictions and probabilities, and its metrics.
// The learner and the predictor never ask which task they have.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "automm/config.h"
#include "automm/metrics.h"
#include "automm/predictions.h"
#include "automm/table.h"
#include "data/batch.h"

namespace automm {

class Task {
 public:
  virtual ~Task() = default;

  // The registry name, e.g. "multiclass"; also the predictor's problem type.
  virtual std::string name() const = 0;

  // ---- Targets
  // The columns the targets are read from (the label column).
  virtual std::vector<std::string> target_columns() const = 0;
  // Whether row `row` has a target (rows without one take no part in fit or evaluate).
  virtual bool has_target(const Table& data, size_t row) const;
  // Fits the target processor on the training rows (classes, label scaling).
  virtual void fit(const Table& train) = 0;
  // Every row's targets, as the loss and the scorer read them. Throws naming the
  // column and the row for a value the fitted processor cannot read.
  virtual Targets read_targets(const Table& data) const = 0;
  // The key a holdout split is stratified by for row `row`; "" everywhere = unstratified.
  virtual std::string stratum(const Table& data, size_t row) const { return ""; }

  // ---- Head and loss
  // Outputs the model's head produces per row (classes, or 1).
  virtual int64_t num_outputs() const = 0;
  // The training loss of head outputs [batch, num_outputs] (fp32) against the batch's targets.
  virtual torch::Tensor loss(const torch::Tensor& outputs, const Targets& targets) const = 0;

  // ---- Outputs
  virtual Predictions predict(const torch::Tensor& outputs) const = 0;
  // Class probabilities [rows, classes]; as_multiclass=false gives a binary
  // task's positive class [rows]. Throws for tasks without classes.
  virtual torch::Tensor predict_proba(const torch::Tensor& outputs, bool as_multiclass) const;
  virtual bool has_probabilities() const { return !classes().empty(); }
  virtual std::vector<std::string> classes() const { return {}; }

  // ---- Metrics
  virtual std::string default_metric() const = 0;
  // The metric's description; throws when it does not apply to this task.
  virtual MetricInfo metric(const std::string& name) const = 0;
  // The metric's score of head outputs against targets, in the label's units.
  virtual double score(const std::string& metric, const torch::Tensor& outputs, const Targets& targets) const = 0;

  // ---- Saved state (the fitted target processor)
  virtual nlohmann::json to_json() const = 0;
  virtual void from_json(const nlohmann::json& state) = 0;
};

// What a task is built from: the target column(s) and the keys (loss, label
// scaling, positive label).
struct TaskOptions {
  std::string label;
  const Config* config = nullptr;
};

struct TaskEntry {
  std::string name;
  // Null for a problem type whose learner reads no targets (zero-shot).
  std::function<std::unique_ptr<Task>(const TaskOptions&)> make;
  std::string learner = "default";  // the learner that fits it (learners/learner.h)
  std::string pending;  // non-empty for a problem type that is not built yet: what is missing
  bool needs_label = true;  // false: the predictor is made without a label column
};

// Adds a problem type (tests and extensions); replaces an entry of the same name.
void register_task(TaskEntry entry);
// Throws std::invalid_argument naming the known problem types, or saying that
// a known one is not built yet.
const TaskEntry& find_task(const std::string& name);
std::unique_ptr<Task> make_task(const std::string& name, const TaskOptions& options);
std::vector<std::string> task_names();

}  // namespace automm
