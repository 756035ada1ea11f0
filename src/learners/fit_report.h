// What a fit leaves for its user to read: metrics.csv (one row per logged
// optimizer step and validation check) and learning_curve.svg.
#pragma once

#include <string>
#include <vector>

#include "learners/trainer.h"

namespace automm {

void write_metrics_csv(const std::string& path, const std::vector<LogRow>& log);
// What the learning curve marks besides the logged values.
struct CurveMarks {
  std::string metric;       // the validation metric's name
  int64_t best_step = -1;   // the step of the best validation check; -1 = none
  double best_score = 0.0;
  std::string stop_reason;  // why the fit stopped
};
// Two panels against optimizer steps, each with ticks and rounded labels: the
// training loss, and the validation metric with its best check circled; a
// dashed line and a caption say where and why the fit stopped.
void write_learning_curve(const std::string& path, const std::vector<LogRow>& log, const CurveMarks& marks);

}  // namespace automm
