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

namespace {

// Axis ticks at 1, 2 or 5 times a power of ten, covering [lo, hi] with about `count` steps.
std::vector<double> nice_ticks(double lo, double hi, int count) {
  if (!(hi > lo)) {
    const double pad = std::max(std::abs(lo) * 0.05, 1e-3);
    lo -= pad;
    hi += pad;
  }
  const double raw = (hi - lo) / count;
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  double step = magnitude;
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (m * magnitude >= raw) {
      step = m * magnitude;
      break;
    }
  std::vector<double> ticks;
  for (double t = std::floor(lo / step) * step; t <= hi + step * 0.5; t += step) ticks.push_back(std::abs(t) < step * 1e-9 ? 0 : t);
  return ticks;
}

std::string label(double value) {
  std::ostringstream out;
  out << std::setprecision(3) << value;
  return out.str();
}

std::string escape(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (c == '<') out += "&lt;";
    else if (c == '>') out += "&gt;";
    else if (c == '&') out += "&amp;";
    else out += c;
  }
  return out;
}

struct Panel {
  std::string title, color;
  std::vector<std::pair<double, double>> points;  // (step, value)
};

}  // namespace

void write_learning_curve(const std::string& path, const std::vector<LogRow>& log, const CurveMarks& marks) {
  const double width = 720, left = 70, right = 30, panel_height = 190, gap = 60, top = 40;
  Panel loss{"training loss", "#1f77b4", {}}, score{"validation " + marks.metric, "#d62728", {}};
  double max_step = 1;
  for (const LogRow& row : log) {
    max_step = std::max(max_step, static_cast<double>(row.step));
    if (!std::isnan(row.validation_score)) score.points.emplace_back(row.step, row.validation_score);
    else loss.points.emplace_back(row.step, row.loss);
  }
  const double plot_width = width - left - right;
  const double height = top + 2 * panel_height + gap + 70;
  const std::vector<double> x_ticks = nice_ticks(0, max_step, 6);
  const double x_max = std::max(max_step, x_ticks.back());
  const auto x_of = [&](double step) { return left + plot_width * step / x_max; };

  std::ostringstream svg;
  svg << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << width << "\" height=\"" << height
      << "\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  int index = 0;
  for (const Panel* panel : {&loss, &score}) {
    const double y0 = top + index++ * (panel_height + gap);  // the panel's top edge
    svg << "<text x=\"" << left << "\" y=\"" << y0 - 10 << "\" fill=\"" << panel->color << "\" font-size=\"14\">"
        << escape(panel->title) << "</text>\n";
    svg << "<rect x=\"" << left << "\" y=\"" << y0 << "\" width=\"" << plot_width << "\" height=\"" << panel_height
        << "\" fill=\"none\" stroke=\"#999\"/>\n";
    // x ticks on both panels: optimizer steps
    for (double t : x_ticks) {
      if (t > x_max) continue;
      svg << "<line x1=\"" << x_of(t) << "\" y1=\"" << y0 + panel_height << "\" x2=\"" << x_of(t) << "\" y2=\""
          << y0 + panel_height + 5 << "\" stroke=\"#666\"/>\n<text x=\"" << x_of(t) << "\" y=\"" << y0 + panel_height + 18
          << "\" text-anchor=\"middle\">" << label(t) << "</text>\n";
    }
    if (panel->points.empty()) {
      svg << "<text x=\"" << left + plot_width / 2 << "\" y=\"" << y0 + panel_height / 2
          << "\" text-anchor=\"middle\" fill=\"#666\">no values logged</text>\n";
      continue;
    }
    double lo = panel->points[0].second, hi = lo;
    for (const auto& p : panel->points) lo = std::min(lo, p.second), hi = std::max(hi, p.second);
    const std::vector<double> y_ticks = nice_ticks(lo, hi, 4);
    const double y_lo = y_ticks.front(), y_hi = y_ticks.back();
    const auto y_of = [&](double v) { return y0 + panel_height * (y_hi - v) / (y_hi - y_lo); };
    for (double t : y_ticks) {
      svg << "<line x1=\"" << left - 5 << "\" y1=\"" << y_of(t) << "\" x2=\"" << left + plot_width << "\" y2=\""
          << y_of(t) << "\" stroke=\"#eee\"/>\n<text x=\"" << left - 8 << "\" y=\"" << y_of(t) + 4
          << "\" text-anchor=\"end\">" << label(t) << "</text>\n";
    }
    svg << "<polyline fill=\"none\" stroke=\"" << panel->color << "\" stroke-width=\"2\" points=\"";
    for (const auto& [x, y] : panel->points) svg << x_of(x) << ',' << y_of(y) << ' ';
    svg << "\"/>\n";
    if (panel == &score && marks.best_step >= 0) {  // the best validation check
      svg << "<circle cx=\"" << x_of(static_cast<double>(marks.best_step)) << "\" cy=\"" << y_of(marks.best_score)
          << "\" r=\"5\" fill=\"none\" stroke=\"#2ca02c\" stroke-width=\"2\"/>\n<text x=\""
          << x_of(static_cast<double>(marks.best_step)) + 8 << "\" y=\"" << y_of(marks.best_score) - 8
          << "\" fill=\"#2ca02c\">best " << label(marks.best_score) << " at step " << marks.best_step << "</text>\n";
    }
  }
  // Where the fit stopped, across both panels.
  const double x_stop = x_of(max_step);
  svg << "<line x1=\"" << x_stop << "\" y1=\"" << top << "\" x2=\"" << x_stop << "\" y2=\""
      << top + 2 * panel_height + gap << "\" stroke=\"#555\" stroke-dasharray=\"4,3\"/>\n";
  svg << "<text x=\"" << left + plot_width / 2 << "\" y=\"" << height - 28
      << "\" text-anchor=\"middle\">optimizer step</text>\n<text x=\"" << left << "\" y=\"" << height - 10
      << "\" fill=\"#555\">stopped at step " << static_cast<int64_t>(max_step) << ": " << escape(marks.stop_reason)
      << "</text>\n</svg>\n";
  write_text_file(path, svg.str());
}

}  // namespace automm
