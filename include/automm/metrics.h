// Evaluation metrics, looked up by name (AutoGluon's names).
#pragma once

#include <cstdint>
#include <string>
#include <vector>


namespace automm {

struct MetricInfo {
  std::string name;
  bool greater_is_better = true;
  double optimum = 1.0;         // the best value the metric can reach
  bool needs_proba = false;     // computed from probabilities, not hard labels
  bool for_classification = true;
  bool for_regression = false;
  bool binary_only = false;     // e.g. roc_auc, f1 (positive class = last index)
};

// Throws std::invalid_argument: "unknown metric 'x'; known metrics: ...".
const MetricInfo& find_metric(const std::string& name);
std::vector<std::string> metric_names();

// y_true: class indices in [0, num_classes); proba: row-major [n, num_classes].
// For binary metrics the positive class is index num_classes - 1.
// What a problem's targets are, for the metrics that apply to them.
enum class TargetKind { kTwoClasses, kManyClasses, kValues };
// The metric's description; throws when it does not apply to such targets,
// naming `problem_type` in the message.
const MetricInfo& check_metric_applies(const std::string& name, TargetKind kind, const std::string& problem_type);

double score_classification(const std::string& name, const std::vector<int64_t>& y_true,
                            const std::vector<double>& proba, int64_t num_classes);
double score_regression(const std::string& name, const std::vector<double>& y_true,
                        const std::vector<double>& y_pred);

// Maps a score so that larger is always better (negates loss-like metrics).
double higher_is_better_score(const std::string& name, double score);

}  // namespace automm
