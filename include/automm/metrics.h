// Evaluation metrics, looked up by name (AutoGluon's names).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "automm/problem_type.h"

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
// binary: roc_auc; multiclass: accuracy; regression: rmse.
std::string default_metric(ProblemType type);
// Throws when the metric does not apply to the problem type.
void check_metric_applies(const std::string& name, ProblemType type);

// y_true: class indices in [0, num_classes); proba: row-major [n, num_classes].
// For binary metrics the positive class is index num_classes - 1.
double score_classification(const std::string& name, const std::vector<int64_t>& y_true,
                            const std::vector<double>& proba, int64_t num_classes);
double score_regression(const std::string& name, const std::vector<double>& y_true,
                        const std::vector<double>& y_pred);

// Maps a score so that larger is always better (negates loss-like metrics).
double higher_is_better_score(const std::string& name, double score);

}  // namespace automm
