// regression: one number per row, scaled for training (data.label.numerical_preprocessing).
#include <stdexcept>

#include "data/processors.h"
#include "optim/losses.h"
#include "tasks/builtin.h"
#include "tasks/task_util.h"

namespace automm {
namespace {

class RegressionTask : public Task {
 public:
  explicit RegressionTask(const TaskOptions& options) : label_(options.label), config_(*options.config) {}

  std::string name() const override { return "regression"; }
  std::vector<std::string> target_columns() const override { return {label_}; }
  void fit(const Table& train) override { values_.fit(train.column(label_), LabelKind::kValues, config_); }
  Targets read_targets(const Table& data) const override {
    Targets targets;
    targets.dense["label"] = values_.transform(data.column(label_));
    return targets;
  }

  int64_t num_outputs() const override { return 1; }
  torch::Tensor loss(const torch::Tensor& outputs, const Targets& targets) const override {
    return regression_loss(outputs, targets.at("label"), config_);
  }

  Predictions predict(const torch::Tensor& outputs) const override {
    Predictions out;
    out.name = label_;
    out.values = torch::tensor(values_.inverse_regression(regression_outputs(outputs, config_)), torch::kFloat64);
    return out;
  }

  std::string default_metric() const override { return "rmse"; }
  MetricInfo metric(const std::string& name) const override {
    return check_metric_applies(name, TargetKind::kValues, "regression");
  }
  double score(const std::string& metric, const torch::Tensor& outputs, const Targets& targets) const override {
    return score_regression(metric, values_.inverse_regression(targets.at("label")),
                            values_.inverse_regression(regression_outputs(outputs, config_)));
  }

  nlohmann::json to_json() const override { return {{"label", values_.to_json()}}; }
  void from_json(const nlohmann::json& state) override { values_ = LabelProcessor::from_json(state.at("label")); }

 private:
  std::string label_;
  Config config_;
  LabelProcessor values_;
};

}  // namespace

std::unique_ptr<Task> make_regression_task(const TaskOptions& options) {
  return std::make_unique<RegressionTask>(options);
}

}  // namespace automm
