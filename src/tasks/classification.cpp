// binary and multiclass: one class per row (AutoMM's default learner).
#include <stdexcept>

#include "data/mixup.h"
#include "data/processors.h"
#include "optim/losses.h"
#include "tasks/builtin.h"
#include "tasks/task_util.h"

namespace automm {
namespace {

class ClassificationTask : public Task {
 public:
  ClassificationTask(std::string name, const TaskOptions& options)
      : name_(std::move(name)), label_(options.label), config_(*options.config) {}

  std::string name() const override { return name_; }
  std::vector<std::string> target_columns() const override { return {label_}; }
  void fit(const Table& train) override {
    labels_.fit(train.column(label_), LabelKind::kClasses, config_);
  }
  Targets read_targets(const Table& data) const override {
    Targets targets;
    targets.dense["label"] = labels_.transform(data.column(label_));
    return targets;
  }
  std::string stratum(const Table& data, size_t row) const override { return data.column(label_).text(row); }

  int64_t num_outputs() const override { return labels_.num_classes(); }
  torch::Tensor loss(const torch::Tensor& outputs, const Targets& targets) const override {
    // Mixup's class mixtures (data/mixup.h) replace the labels: timm's SoftTargetCrossEntropy.
    const auto soft = targets.dense.find(kSoftLabelTarget);
    if (soft != targets.dense.end()) return soft_target_cross_entropy(outputs, soft->second);
    return classification_loss(outputs, targets.at("label"), config_);
  }

  Predictions predict(const torch::Tensor& outputs) const override {
    Predictions out;
    out.name = label_;
    out.classes = labels_.classes();
    out.values = outputs.argmax(1).to(torch::kCPU, torch::kInt64);
    return out;
  }
  torch::Tensor predict_proba(const torch::Tensor& outputs, bool as_multiclass) const override {
    const torch::Tensor proba = torch::softmax(outputs, 1);
    if (!as_multiclass && name_ == "binary") return proba.select(1, 1).contiguous();
    return proba;
  }
  std::vector<std::string> classes() const override { return labels_.classes(); }

  std::string default_metric() const override { return name_ == "binary" ? "roc_auc" : "accuracy"; }
  MetricInfo metric(const std::string& name) const override {
    return check_metric_applies(name, name_ == "binary" ? TargetKind::kTwoClasses : TargetKind::kManyClasses, name_);
  }
  double score(const std::string& metric, const torch::Tensor& outputs, const Targets& targets) const override {
    return score_classification(metric, to_int64_vector(targets.at("label")),
                                to_double_vector(torch::softmax(outputs, 1)), labels_.num_classes());
  }

  nlohmann::json to_json() const override { return {{"label", labels_.to_json()}}; }
  void from_json(const nlohmann::json& state) override { labels_ = LabelProcessor::from_json(state.at("label")); }

 private:
  std::string name_;
  std::string label_;
  Config config_;
  LabelProcessor labels_;
};

}  // namespace

std::unique_ptr<Task> make_binary_task(const TaskOptions& options) {
  return std::make_unique<ClassificationTask>("binary", options);
}
std::unique_ptr<Task> make_multiclass_task(const TaskOptions& options) {
  return std::make_unique<ClassificationTask>("multiclass", options);
}

}  // namespace automm
