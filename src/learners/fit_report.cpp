#include "learners/fit_report.h"

#include <algorithm>
#include <cmath>
#include <iomanip>
#include <sstream>

#include "learners/learner_io.h"

namespace automm {
namespace {

std::string csv_number(double v) {
  if (std::isnan(v)) return "";
  std::ostringstream out;
  out << std::setprecision(9) << v;
  return out.str();
}

}  // namespace

void write_metrics_csv(const std::string& path, const std::vector<LogRow>& log) {
  std::ostringstream out;
  out << "step,epoch,lr,loss,grad_norm,validation_score\n";
  for (const LogRow& row : log)
    out << row.step << ',' << csv_number(row.epoch) << ',' << csv_number(row.lr) << ',' << csv_number(row.loss)
        << ',' << (row.grad_norm >= 0 ? csv_number(row.grad_norm) : "") << ','
        << csv_number(row.validation_score) << '\n';
  write_text_file(path, out.str());
}

// A picture of the fit: training loss (left axis) and validation score (right
// axis) against optimizer steps.
void write_learning_curve(const std::string& path, const std::vector<LogRow>& log, const std::string& metric) {
  const double width = 640, height = 360, left = 60, right = 60, top = 30, bottom = 40;
  std::vector<std::pair<double, double>> loss, score;
  for (const LogRow& row : log) {
    if (!std::isnan(row.validation_score)) score.emplace_back(row.step, row.validation_score);
    else loss.emplace_back(row.step, row.loss);
  }
  double max_step = 1;
  for (const LogRow& row : log) max_step = std::max(max_step, static_cast<double>(row.step));
  auto polyline = [&](const std::vector<std::pair<double, double>>& points, const char* color, std::string* range) {
    if (points.empty()) return std::string();
    double lo = points[0].second, hi = points[0].second;
    for (const auto& p : points) lo = std::min(lo, p.second), hi = std::max(hi, p.second);
    if (hi - lo < 1e-12) hi = lo + 1;
    std::ostringstream out;
    out << "<polyline fill=\"none\" stroke=\"" << color << "\" stroke-width=\"2\" points=\"";
    for (const auto& [x, y] : points)
      out << left + (width - left - right) * x / max_step << ',' << top + (height - top - bottom) * (hi - y) / (hi - lo) << ' ';
    out << "\"/>\n";
    *range = csv_number(lo) + " .. " + csv_number(hi);
    return out.str();
  };
  std::string loss_range, score_range;
  const std::string loss_line = polyline(loss, "#1f77b4", &loss_range);
  const std::string score_line = polyline(score, "#d62728", &score_range);
  std::ostringstream svg;
  svg << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << width << "\" height=\"" << height
      << "\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
      << "<rect x=\"" << left << "\" y=\"" << top << "\" width=\"" << width - left - right << "\" height=\""
      << height - top - bottom << "\" fill=\"none\" stroke=\"#999\"/>\n"
      << loss_line << score_line
      << "<text x=\"" << left << "\" y=\"20\" fill=\"#1f77b4\">training loss (" << loss_range << ")</text>\n"
      << "<text x=\"" << width - right << "\" y=\"20\" fill=\"#d62728\" text-anchor=\"end\">validation " << metric
      << " (" << score_range << ")</text>\n"
      << "<text x=\"" << width / 2 << "\" y=\"" << height - 10 << "\" text-anchor=\"middle\">optimizer step (0 .. "
      << max_step << ")</text>\n</svg>\n";
  write_text_file(path, svg.str());
}

}  // namespace automm
