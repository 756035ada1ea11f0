// What a fit leaves for its user to read: metrics.csv (one row per logged
// optimizer step and validation check) and learning_curve.svg.
#pragma once

#include <string>
#include <vector>

#include "learners/trainer.h"

namespace automm {

void write_metrics_csv(const std::string& path, const std::vector<LogRow>& log);
// Training loss (left axis) and validation score (right axis) against optimizer steps.
void write_learning_curve(const std::string& path, const std::vector<LogRow>& log, const std::string& metric);

}  // namespace automm
