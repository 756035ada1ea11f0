// Evaluation metrics with AutoGluon's names and sklearn/scipy semantics.
//
// Conventions (all match sklearn 1.2 / scipy 1.10 unless noted):
//  * Hard-label metrics use argmax(proba) per row, ties going to the lowest index.
//  * precision/recall/f1 with a zero denominator give 0 (sklearn's zero_division
//    default); macro averages run over the classes seen in y_true or y_pred.
//  * mcc with a zero denominator gives 0.
//  * roc_auc* throw when a needed class is missing from y_true; the multiclass
//    variants also throw when proba rows do not sum to 1 (sklearn raises too).
//  * pearsonr/spearmanr return NaN for constant input and throw for < 2 samples;
//    r2 returns NaN for < 2 samples (sklearn) and, for constant y_true, 1 on a
//    perfect prediction and 0 otherwise.
#include "automm/metrics.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <stdexcept>
#include <utility>

namespace automm {
namespace {

// A validated classification input; y_pred holds the argmax labels of proba.
struct Classified {
  const std::string& metric;
  const std::vector<int64_t>& y_true;
  const std::vector<double>& proba;
  int64_t num_classes;
  std::vector<int64_t> y_pred;

  size_t size() const { return y_true.size(); }
  double p(size_t row, int64_t k) const {
    return proba[row * static_cast<size_t>(num_classes) + static_cast<size_t>(k)];
  }
};

using Values = std::vector<double>;
using ClassificationFn = double (*)(const Classified&);
using RegressionFn = double (*)(const Values& y_true, const Values& y_pred);

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// sklearn's zero_division behaviour: 0 when the denominator is 0.
double ratio(double num, double den) { return den != 0.0 ? num / den : 0.0; }

double sum(const Values& v) { return std::accumulate(v.begin(), v.end(), 0.0); }

double dot(const Values& a, const Values& b) {
  return std::inner_product(a.begin(), a.end(), b.begin(), 0.0);
}

// ---------------------------------------------------------------- classification

// Per-class confusion counts: true positives, predicted count, true count.
struct ClassCounts {
  Values tp, pred, truth;
};

ClassCounts count_classes(const Classified& in) {
  const auto k = static_cast<size_t>(in.num_classes);
  ClassCounts c{Values(k, 0.0), Values(k, 0.0), Values(k, 0.0)};
  for (size_t i = 0; i < in.size(); ++i) {
    const auto t = static_cast<size_t>(in.y_true[i]);
    const auto p = static_cast<size_t>(in.y_pred[i]);
    c.truth[t] += 1;
    c.pred[p] += 1;
    if (t == p) c.tp[t] += 1;
  }
  return c;
}

double accuracy(const Classified& in) { return sum(count_classes(in).tp) / in.size(); }

// Mean recall over the classes present in y_true.
double balanced_accuracy(const Classified& in) {
  const ClassCounts c = count_classes(in);
  double total = 0.0;
  int present = 0;
  for (size_t k = 0; k < c.truth.size(); ++k) {
    if (c.truth[k] == 0) continue;
    total += c.tp[k] / c.truth[k];
    ++present;
  }
  return total / present;
}

enum class Prf { kPrecision, kRecall, kF1 };
enum class Average { kBinary, kMacro, kMicro, kWeighted };

double prf_value(Prf what, double tp, double pred, double truth) {
  const double precision = ratio(tp, pred);
  const double recall = ratio(tp, truth);
  switch (what) {
    case Prf::kPrecision:
      return precision;
    case Prf::kRecall:
      return recall;
    case Prf::kF1:
      return ratio(2.0 * precision * recall, precision + recall);
  }
  return 0.0;
}

template <Prf what, Average average>
double prf(const Classified& in) {
  const ClassCounts c = count_classes(in);
  if constexpr (average == Average::kBinary) {
    const auto pos = static_cast<size_t>(in.num_classes - 1);
    return prf_value(what, c.tp[pos], c.pred[pos], c.truth[pos]);
  }
  if constexpr (average == Average::kMicro) {
    return prf_value(what, sum(c.tp), sum(c.pred), sum(c.truth));
  }
  double total = 0.0, weights = 0.0;
  for (size_t k = 0; k < c.tp.size(); ++k) {
    if (c.pred[k] == 0 && c.truth[k] == 0) continue;  // sklearn skips unseen labels
    const double w = average == Average::kWeighted ? c.truth[k] : 1.0;
    total += w * prf_value(what, c.tp[k], c.pred[k], c.truth[k]);
    weights += w;
  }
  return ratio(total, weights);
}

double mcc(const Classified& in) {
  const ClassCounts c = count_classes(in);
  const double n = static_cast<double>(in.size());
  const double cov_true_pred = sum(c.tp) * n - dot(c.truth, c.pred);
  const double cov_pred = n * n - dot(c.pred, c.pred);
  const double cov_true = n * n - dot(c.truth, c.truth);
  if (cov_pred * cov_true == 0.0) return 0.0;
  return cov_true_pred / std::sqrt(cov_true * cov_pred);
}

constexpr double kLogLossEps = 1e-15;  // sklearn's clipping of probabilities

double log_loss(const Classified& in) {
  const auto clip = [](double p) { return std::clamp(p, kLogLossEps, 1.0 - kLogLossEps); };
  double total = 0.0;
  for (size_t i = 0; i < in.size(); ++i) {
    double row_sum = 0.0;
    for (int64_t k = 0; k < in.num_classes; ++k) row_sum += clip(in.p(i, k));
    total -= std::log(clip(in.p(i, in.y_true[i])) / row_sum);
  }
  return total / in.size();
}

// Area under the ROC curve of (score, is_positive) pairs: trapezoids between the
// distinct thresholds, i.e. the Mann-Whitney U statistic with average ranks.
double auc(std::vector<std::pair<double, bool>> scored, const std::string& metric) {
  std::sort(scored.begin(), scored.end(),
            [](const auto& a, const auto& b) { return a.first > b.first; });
  double tp = 0.0, fp = 0.0, area = 0.0;
  for (size_t i = 0; i < scored.size();) {
    double step_tp = 0.0, step_fp = 0.0;
    size_t j = i;
    for (; j < scored.size() && scored[j].first == scored[i].first; ++j) {
      (scored[j].second ? step_tp : step_fp) += 1.0;
    }
    area += step_fp * (tp + step_tp / 2.0);
    tp += step_tp;
    fp += step_fp;
    i = j;
  }
  if (tp == 0.0 || fp == 0.0) {
    throw std::invalid_argument(metric + " is undefined when y_true holds one class");
  }
  return area / (tp * fp);
}

// One class against the rest, restricted to the rows whose label passes `keep`.
template <typename Keep>
double class_auc(const Classified& in, int64_t cls, Keep keep) {
  std::vector<std::pair<double, bool>> scored;
  for (size_t i = 0; i < in.size(); ++i) {
    if (keep(in.y_true[i])) scored.emplace_back(in.p(i, cls), in.y_true[i] == cls);
  }
  return auc(std::move(scored), in.metric);
}

double roc_auc(const Classified& in) {
  return class_auc(in, in.num_classes - 1, [](int64_t) { return true; });
}

// sklearn's preconditions for multiclass roc_auc.
void check_multiclass_auc(const Classified& in) {
  std::vector<bool> seen(static_cast<size_t>(in.num_classes), false);
  for (int64_t y : in.y_true) seen[static_cast<size_t>(y)] = true;
  if (std::find(seen.begin(), seen.end(), false) != seen.end()) {
    throw std::invalid_argument(in.metric + " is undefined unless y_true holds all " +
                                std::to_string(in.num_classes) + " classes");
  }
  for (size_t i = 0; i < in.size(); ++i) {
    double row_sum = 0.0;
    for (int64_t k = 0; k < in.num_classes; ++k) row_sum += in.p(i, k);
    if (std::abs(1.0 - row_sum) > 1e-8 + 1e-5 * std::abs(row_sum)) {  // numpy.allclose
      throw std::invalid_argument(in.metric + " needs probabilities: proba row " +
                                  std::to_string(i) + " sums to " + std::to_string(row_sum));
    }
  }
}

double roc_auc_ovr_macro(const Classified& in) {
  if (in.num_classes == 2) return roc_auc(in);  // sklearn falls back to binary roc_auc
  check_multiclass_auc(in);
  double total = 0.0;
  for (int64_t k = 0; k < in.num_classes; ++k) {
    total += class_auc(in, k, [](int64_t) { return true; });
  }
  return total / static_cast<double>(in.num_classes);
}

// Hand & Till: mean over class pairs of the two one-vs-one AUCs' mean.
double roc_auc_ovo_macro(const Classified& in) {
  if (in.num_classes == 2) return roc_auc(in);
  check_multiclass_auc(in);
  double total = 0.0;
  int pairs = 0;
  for (int64_t a = 0; a < in.num_classes; ++a) {
    for (int64_t b = a + 1; b < in.num_classes; ++b) {
      const auto in_pair = [a, b](int64_t y) { return y == a || y == b; };
      total += (class_auc(in, a, in_pair) + class_auc(in, b, in_pair)) / 2.0;
      ++pairs;
    }
  }
  return total / pairs;
}

// -------------------------------------------------------------------- regression

double mse(const Values& y, const Values& p) {
  double total = 0.0;
  for (size_t i = 0; i < y.size(); ++i) total += (y[i] - p[i]) * (y[i] - p[i]);
  return total / y.size();
}

double rmse(const Values& y, const Values& p) { return std::sqrt(mse(y, p)); }

double mae(const Values& y, const Values& p) {
  double total = 0.0;
  for (size_t i = 0; i < y.size(); ++i) total += std::abs(y[i] - p[i]);
  return total / y.size();
}

double median_absolute_error(const Values& y, const Values& p) {
  Values err(y.size());
  for (size_t i = 0; i < y.size(); ++i) err[i] = std::abs(y[i] - p[i]);
  std::sort(err.begin(), err.end());
  const size_t mid = err.size() / 2;
  return err.size() % 2 == 1 ? err[mid] : (err[mid - 1] + err[mid]) / 2.0;
}

double r2(const Values& y, const Values& p) {
  if (y.size() < 2) return kNaN;  // sklearn: not well-defined
  const double mean = sum(y) / y.size();
  double residual = 0.0, spread = 0.0;
  for (size_t i = 0; i < y.size(); ++i) {
    residual += (y[i] - p[i]) * (y[i] - p[i]);
    spread += (y[i] - mean) * (y[i] - mean);
  }
  if (spread == 0.0) return residual == 0.0 ? 1.0 : 0.0;  // sklearn's force_finite
  return 1.0 - residual / spread;
}

void require_two_samples(const Values& y, const char* metric) {
  if (y.size() < 2) {
    throw std::invalid_argument(std::string(metric) + " needs at least 2 samples, got " +
                                std::to_string(y.size()));
  }
}

// Pearson correlation; NaN when either input is constant (as scipy).
double pearson(const Values& x, const Values& y) {
  const auto constant = [](const Values& v) {
    return std::all_of(v.begin(), v.end(), [&](double e) { return e == v.front(); });
  };
  if (constant(x) || constant(y)) return kNaN;
  const double mx = sum(x) / x.size(), my = sum(y) / y.size();
  double sxy = 0.0, sxx = 0.0, syy = 0.0;
  for (size_t i = 0; i < x.size(); ++i) {
    sxy += (x[i] - mx) * (y[i] - my);
    sxx += (x[i] - mx) * (x[i] - mx);
    syy += (y[i] - my) * (y[i] - my);
  }
  return std::clamp(sxy / (std::sqrt(sxx) * std::sqrt(syy)), -1.0, 1.0);
}

double pearsonr(const Values& y, const Values& p) {
  require_two_samples(y, "pearsonr");
  return pearson(y, p);
}

// 1-based ranks, ties sharing their average rank.
Values average_ranks(const Values& v) {
  std::vector<size_t> order(v.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return v[a] < v[b]; });
  Values ranks(v.size());
  for (size_t i = 0; i < order.size();) {
    size_t j = i;
    while (j < order.size() && v[order[j]] == v[order[i]]) ++j;
    const double rank = (static_cast<double>(i + 1) + static_cast<double>(j)) / 2.0;
    for (size_t t = i; t < j; ++t) ranks[order[t]] = rank;
    i = j;
  }
  return ranks;
}

double spearmanr(const Values& y, const Values& p) {
  require_two_samples(y, "spearmanr");
  return pearson(average_ranks(y), average_ranks(p));
}

// ---------------------------------------------------------------------- registry

enum Flag : unsigned {
  kNoFlags = 0,
  kNeedsProba = 1u << 0,
  kBinaryOnly = 1u << 1,
  kLoss = 1u << 2,  // lower is better, optimum 0
};

struct MetricEntry {
  MetricInfo info;
  ClassificationFn classify = nullptr;
  RegressionFn regress = nullptr;
};

MetricInfo make_info(const char* name, unsigned flags, bool classification) {
  MetricInfo info;
  info.name = name;
  info.greater_is_better = (flags & kLoss) == 0;
  info.optimum = (flags & kLoss) ? 0.0 : 1.0;
  info.needs_proba = (flags & kNeedsProba) != 0;
  info.for_classification = classification;
  info.for_regression = !classification;
  info.binary_only = (flags & kBinaryOnly) != 0;
  return info;
}

MetricEntry classification(const char* name, ClassificationFn fn, unsigned flags = kNoFlags) {
  return {make_info(name, flags, true), fn, nullptr};
}

MetricEntry regression(const char* name, RegressionFn fn, unsigned flags = kNoFlags) {
  return {make_info(name, flags, false), nullptr, fn};
}

const std::vector<MetricEntry>& registry() {
  static const std::vector<MetricEntry> table = [] {
    std::vector<MetricEntry> t = {
        classification("accuracy", accuracy),
        classification("balanced_accuracy", balanced_accuracy),
        classification("mcc", mcc),
        classification("log_loss", log_loss, kNeedsProba | kLoss),
        classification("roc_auc", roc_auc, kNeedsProba | kBinaryOnly),
        classification("roc_auc_ovo_macro", roc_auc_ovo_macro, kNeedsProba),
        classification("roc_auc_ovr_macro", roc_auc_ovr_macro, kNeedsProba),
        classification("f1", prf<Prf::kF1, Average::kBinary>, kBinaryOnly),
        classification("f1_macro", prf<Prf::kF1, Average::kMacro>),
        classification("f1_micro", prf<Prf::kF1, Average::kMicro>),
        classification("f1_weighted", prf<Prf::kF1, Average::kWeighted>),
        classification("precision", prf<Prf::kPrecision, Average::kBinary>, kBinaryOnly),
        classification("precision_macro", prf<Prf::kPrecision, Average::kMacro>),
        classification("precision_micro", prf<Prf::kPrecision, Average::kMicro>),
        classification("precision_weighted", prf<Prf::kPrecision, Average::kWeighted>),
        classification("recall", prf<Prf::kRecall, Average::kBinary>, kBinaryOnly),
        classification("recall_macro", prf<Prf::kRecall, Average::kMacro>),
        classification("recall_micro", prf<Prf::kRecall, Average::kMicro>),
        classification("recall_weighted", prf<Prf::kRecall, Average::kWeighted>),
        regression("rmse", rmse, kLoss),
        regression("mse", mse, kLoss),
        regression("mae", mae, kLoss),
        regression("median_absolute_error", median_absolute_error, kLoss),
        regression("r2", r2),
        regression("pearsonr", pearsonr),
        regression("spearmanr", spearmanr),
    };
    std::sort(t.begin(), t.end(),
              [](const MetricEntry& a, const MetricEntry& b) { return a.info.name < b.info.name; });
    return t;
  }();
  return table;
}

const MetricEntry& find_entry(const std::string& name) {
  const auto& table = registry();
  const auto it = std::find_if(table.begin(), table.end(),
                               [&](const MetricEntry& e) { return e.info.name == name; });
  if (it != table.end()) return *it;
  std::string known;
  for (const MetricEntry& e : table) known += (known.empty() ? "" : ", ") + e.info.name;
  throw std::invalid_argument("unknown metric '" + name + "'; known metrics: " + known);
}

std::string quoted(const std::string& name) { return "metric '" + name + "'"; }

void require_finite(const Values& v, const char* what) {
  for (size_t i = 0; i < v.size(); ++i) {
    if (!std::isfinite(v[i])) {
      throw std::invalid_argument(std::string(what) + " holds a non-finite value at index " +
                                  std::to_string(i));
    }
  }
}

}  // namespace

const MetricInfo& find_metric(const std::string& name) { return find_entry(name).info; }

std::vector<std::string> metric_names() {
  std::vector<std::string> names;
  for (const MetricEntry& e : registry()) names.push_back(e.info.name);
  return names;
}

const MetricInfo& check_metric_applies(const std::string& name, TargetKind kind, const std::string& problem_type) {
  const MetricInfo& info = find_metric(name);
  const bool applies = kind == TargetKind::kValues ? info.for_regression
                                                   : info.for_classification &&
                                                         !(info.binary_only && kind == TargetKind::kManyClasses);
  if (!applies) {
    throw std::invalid_argument(quoted(name) + " does not apply to a " + problem_type + " problem" +
                                (info.binary_only ? " (it is binary-only)" : ""));
  }
  return info;
}

double score_classification(const std::string& name, const std::vector<int64_t>& y_true,
                            const std::vector<double>& proba, int64_t num_classes) {
  const MetricEntry& entry = find_entry(name);
  if (entry.classify == nullptr) {
    throw std::invalid_argument(quoted(name) + " is not a classification metric");
  }
  if (num_classes < 2) {
    throw std::invalid_argument("score_classification: num_classes must be at least 2, got " +
                                std::to_string(num_classes));
  }
  if (entry.info.binary_only && num_classes != 2) {
    throw std::invalid_argument(quoted(name) + " is binary-only but num_classes is " +
                                std::to_string(num_classes));
  }
  if (y_true.empty()) throw std::invalid_argument("score_classification: y_true is empty");
  const size_t k = static_cast<size_t>(num_classes);
  if (proba.size() != y_true.size() * k) {
    throw std::invalid_argument("score_classification: proba has " + std::to_string(proba.size()) +
                                " values, expected " + std::to_string(y_true.size()) + " rows x " +
                                std::to_string(num_classes) + " classes");
  }
  require_finite(proba, "score_classification: proba");

  Classified in{name, y_true, proba, num_classes, std::vector<int64_t>(y_true.size())};
  for (size_t i = 0; i < y_true.size(); ++i) {
    if (y_true[i] < 0 || y_true[i] >= num_classes) {
      throw std::invalid_argument("score_classification: label " + std::to_string(y_true[i]) +
                                  " at index " + std::to_string(i) + " is outside [0, " +
                                  std::to_string(num_classes) + ")");
    }
    int64_t best = 0;  // argmax, ties -> lowest index
    for (int64_t c = 1; c < num_classes; ++c) {
      if (in.p(i, c) > in.p(i, best)) best = c;
    }
    in.y_pred[i] = best;
  }
  return entry.classify(in);
}

double score_regression(const std::string& name, const std::vector<double>& y_true,
                        const std::vector<double>& y_pred) {
  const MetricEntry& entry = find_entry(name);
  if (entry.regress == nullptr) {
    throw std::invalid_argument(quoted(name) + " is not a regression metric");
  }
  if (y_true.empty()) throw std::invalid_argument("score_regression: y_true is empty");
  if (y_pred.size() != y_true.size()) {
    throw std::invalid_argument("score_regression: y_true has " + std::to_string(y_true.size()) +
                                " values but y_pred has " + std::to_string(y_pred.size()));
  }
  require_finite(y_true, "score_regression: y_true");
  require_finite(y_pred, "score_regression: y_pred");
  return entry.regress(y_true, y_pred);
}

double higher_is_better_score(const std::string& name, double score) {
  return find_metric(name).greater_is_better ? score : -score;
}

}  // namespace automm
