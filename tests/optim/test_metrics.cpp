#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "automm/metrics.h"

namespace automm {
namespace {

// Reference values below came from sklearn 1.2.1 / scipy 1.10.1 (Debian python3):
// hard labels = proba.argmax(axis=1), log_loss(..., eps=1e-15, labels=range(k)),
// roc_auc_score(multi_class="ovo"/"ovr", average="macro"), scipy.stats.pearsonr/spearmanr.
constexpr double kTol = 1e-9;

using Expected = std::map<std::string, double>;

void expect_classification(const Expected& expected, const std::vector<int64_t>& y,
                           const std::vector<double>& proba, int64_t k) {
  for (const auto& [name, value] : expected) {
    SCOPED_TRACE(name);
    EXPECT_NEAR(score_classification(name, y, proba, k), value, kTol);
  }
}

void expect_regression(const Expected& expected, const std::vector<double>& y,
                       const std::vector<double>& p) {
  for (const auto& [name, value] : expected) {
    SCOPED_TRACE(name);
    EXPECT_NEAR(score_regression(name, y, p), value, kTol);
  }
}

// Rows {1 - p, p}, computed as in the Python reference.
std::vector<double> binary_proba(const std::vector<double>& p1) {
  std::vector<double> out;
  for (double p : p1) {
    out.push_back(1.0 - p);
    out.push_back(p);
  }
  return out;
}

// Expects std::invalid_argument whose message contains `part`.
template <typename Fn>
void expect_invalid(Fn fn, const std::string& part) {
  try {
    fn();
    ADD_FAILURE() << "expected std::invalid_argument containing: " << part;
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
  }
}

// ------------------------------------------------------------------ problem type

// ---------------------------------------------------------------------- registry

TEST(MetricsRegistry, NamesAreSortedAndComplete) {
  const std::vector<std::string> expected = {"accuracy",
                                             "balanced_accuracy",
                                             "f1",
                                             "f1_macro",
                                             "f1_micro",
                                             "f1_weighted",
                                             "log_loss",
                                             "mae",
                                             "mcc",
                                             "median_absolute_error",
                                             "mse",
                                             "pearsonr",
                                             "precision",
                                             "precision_macro",
                                             "precision_micro",
                                             "precision_weighted",
                                             "r2",
                                             "recall",
                                             "recall_macro",
                                             "recall_micro",
                                             "recall_weighted",
                                             "rmse",
                                             "roc_auc",
                                             "roc_auc_ovo_macro",
                                             "roc_auc_ovr_macro",
                                             "spearmanr"};
  EXPECT_EQ(metric_names(), expected);
  for (const std::string& name : expected) EXPECT_EQ(find_metric(name).name, name);
}

TEST(MetricsRegistry, InfoFlags) {
  for (const std::string& name : metric_names()) {
    SCOPED_TRACE(name);
    const MetricInfo& info = find_metric(name);
    const bool loss = name == "log_loss" || name == "rmse" || name == "mse" || name == "mae" ||
                      name == "median_absolute_error";
    const bool regression = name == "rmse" || name == "mse" || name == "mae" || name == "r2" ||
                            name == "pearsonr" || name == "spearmanr" ||
                            name == "median_absolute_error";
    EXPECT_EQ(info.greater_is_better, !loss);
    EXPECT_EQ(info.optimum, loss ? 0.0 : 1.0);
    EXPECT_EQ(info.needs_proba, name.rfind("roc_auc", 0) == 0 || name == "log_loss");
    EXPECT_EQ(info.for_regression, regression);
    EXPECT_EQ(info.for_classification, !regression);
    EXPECT_EQ(info.binary_only,
              name == "roc_auc" || name == "f1" || name == "precision" || name == "recall");
  }
}

TEST(MetricsRegistry, UnknownNameListsKnownMetrics) {
  expect_invalid([] { find_metric("auc"); },
                 "unknown metric 'auc'; known metrics: accuracy, balanced_accuracy, f1, f1_macro");
  expect_invalid([] { find_metric("auc"); }, "roc_auc_ovr_macro, spearmanr");
  expect_invalid([] { score_regression("nope", {1.0}, {1.0}); }, "unknown metric 'nope'");
  expect_invalid([] { higher_is_better_score("nope", 1.0); }, "unknown metric 'nope'");
}

TEST(MetricsRegistry, Applicability) {
  EXPECT_NO_THROW(check_metric_applies("f1", TargetKind::kTwoClasses, "binary"));
  EXPECT_NO_THROW(check_metric_applies("f1_macro", TargetKind::kManyClasses, "multiclass"));
  EXPECT_NO_THROW(check_metric_applies("roc_auc_ovo_macro", TargetKind::kManyClasses, "multiclass"));
  EXPECT_NO_THROW(check_metric_applies("spearmanr", TargetKind::kValues, "regression"));
  expect_invalid([] { check_metric_applies("rmse", TargetKind::kTwoClasses, "binary"); },
                 "metric 'rmse' does not apply to a binary problem");
  expect_invalid([] { check_metric_applies("accuracy", TargetKind::kValues, "regression"); },
                 "metric 'accuracy' does not apply to a regression problem");
  expect_invalid([] { check_metric_applies("roc_auc", TargetKind::kManyClasses, "multiclass"); },
                 "metric 'roc_auc' does not apply to a multiclass problem");
  expect_invalid([] { check_metric_applies("precision", TargetKind::kManyClasses, "multiclass"); },
                 "metric 'precision' does not apply to a multiclass problem");
  expect_invalid([] { check_metric_applies("bogus", TargetKind::kTwoClasses, "binary"); },
                 "unknown metric 'bogus'");
}

TEST(MetricsRegistry, HigherIsBetterScore) {
  EXPECT_EQ(higher_is_better_score("accuracy", 0.75), 0.75);
  EXPECT_EQ(higher_is_better_score("r2", -0.5), -0.5);
  EXPECT_EQ(higher_is_better_score("rmse", 2.0), -2.0);
  EXPECT_EQ(higher_is_better_score("log_loss", 0.3), -0.3);
  EXPECT_EQ(higher_is_better_score("median_absolute_error", 1.5), -1.5);
}

// ---------------------------------------------------------------- classification

TEST(MetricsClassification, BinaryWithTiedScores) {
  // Ties in the positive scores (0.4 x3, 0.35 x2, 0.5 x2) and argmax ties at 0.5 -> class 0.
  const std::vector<int64_t> y = {0, 0, 1, 1, 0, 1, 0, 1, 1, 0, 1, 0};
  const auto proba = binary_proba({0.1, 0.4, 0.35, 0.8, 0.4, 0.4, 0.9, 0.65, 0.35, 0.2, 0.5, 0.5});
  expect_classification({{"accuracy", 0.5833333333333334},
                         {"balanced_accuracy", 0.5833333333333334},
                         {"log_loss", 0.7257413514080108},
                         {"f1_macro", 0.5555555555555556},
                         {"precision_macro", 0.6111111111111112},
                         {"recall_macro", 0.5833333333333334},
                         {"f1_micro", 0.5833333333333334},
                         {"precision_micro", 0.5833333333333334},
                         {"recall_micro", 0.5833333333333334},
                         {"f1_weighted", 0.5555555555555555},
                         {"precision_weighted", 0.6111111111111112},
                         {"recall_weighted", 0.5833333333333334},
                         {"mcc", 0.19245008972987526},
                         {"roc_auc", 0.5972222222222222},
                         {"f1", 0.4444444444444444},
                         {"precision", 0.6666666666666666},
                         {"recall", 0.3333333333333333},
                         // sklearn uses the binary roc_auc for two classes.
                         {"roc_auc_ovo_macro", 0.5972222222222222},
                         {"roc_auc_ovr_macro", 0.5972222222222222}},
                        y, proba, 2);
}

TEST(MetricsClassification, ThreeClasses) {
  const std::vector<int64_t> y = {1, 0, 1, 2, 2, 0, 2, 0, 0, 1, 2, 1};
  // clang-format off
  const std::vector<double> proba = {
      0.2, 0.5, 0.3,
      0.6, 0.3, 0.1,
      0.4, 0.4, 0.2,
      0.1, 0.2, 0.7,
      0.25, 0.375, 0.375,
      0.5, 0.25, 0.25,
      0.3, 0.3, 0.4,
      0.2, 0.5, 0.3,
      0.7, 0.2, 0.1,
      0.1, 0.1, 0.8,
      0.35, 0.3, 0.35,
      0.2, 0.6, 0.2,
  };
  // clang-format on
  expect_classification({{"accuracy", 0.5833333333333334},
                         {"balanced_accuracy", 0.5833333333333334},
                         {"log_loss", 0.9080459452680163},
                         {"f1_macro", 0.5793650793650794},
                         {"precision_macro", 0.5888888888888889},
                         {"recall_macro", 0.5833333333333334},
                         {"f1_micro", 0.5833333333333334},
                         {"precision_micro", 0.5833333333333334},
                         {"recall_micro", 0.5833333333333334},
                         {"f1_weighted", 0.5793650793650794},
                         {"precision_weighted", 0.5888888888888889},
                         {"recall_weighted", 0.5833333333333334},
                         {"mcc", 0.37896836447993354},
                         {"roc_auc_ovo_macro", 0.8072916666666666},
                         {"roc_auc_ovr_macro", 0.8072916666666666}},
                        y, proba, 3);
}

TEST(MetricsClassification, FourClassesOvoDiffersFromOvr) {
  const std::vector<int64_t> y = {3, 0, 1, 1, 2, 3, 0, 2, 2, 1, 0, 3, 3, 0};
  // clang-format off
  const std::vector<double> proba = {
      0.1, 0.2, 0.3, 0.4,
      0.4, 0.3, 0.2, 0.1,
      0.25, 0.25, 0.25, 0.25,
      0.1, 0.6, 0.2, 0.1,
      0.3, 0.1, 0.5, 0.1,
      0.2, 0.2, 0.2, 0.4,
      0.5, 0.1, 0.1, 0.3,
      0.1, 0.3, 0.3, 0.3,
      0.05, 0.15, 0.7, 0.1,
      0.4, 0.4, 0.1, 0.1,
      0.2, 0.1, 0.3, 0.4,
      0.3, 0.2, 0.1, 0.4,
      0.1, 0.1, 0.1, 0.7,
      0.35, 0.15, 0.25, 0.25,
  };
  // clang-format on
  expect_classification({{"accuracy", 0.7142857142857143},
                         {"balanced_accuracy", 0.6875},
                         {"log_loss", 0.8886750524651946},
                         {"f1_macro", 0.6888888888888889},
                         {"precision_macro", 0.7250000000000001},
                         {"recall_macro", 0.6875},
                         {"f1_micro", 0.7142857142857143},
                         {"precision_micro", 0.7142857142857143},
                         {"recall_micro", 0.7142857142857143},
                         {"f1_weighted", 0.7015873015873016},
                         {"precision_weighted", 0.7214285714285715},
                         {"recall_weighted", 0.7142857142857143},
                         {"mcc", 0.6199643274591036},
                         {"roc_auc_ovo_macro", 0.929976851851852},
                         {"roc_auc_ovr_macro", 0.9303977272727272}},
                        y, proba, 4);
}

TEST(MetricsClassification, UnseenClassesAreSkippedInMacroAverages) {
  // 5 classes: 2 only in y_true, 3 only predicted, 4 nowhere (sklearn averages over 0..3).
  const std::vector<int64_t> y = {0, 1, 0, 1, 2, 2, 1};
  // clang-format off
  const std::vector<double> proba = {
      0.6, 0.1, 0.1, 0.1, 0.1,
      0.1, 0.5, 0.2, 0.1, 0.1,
      0.2, 0.2, 0.1, 0.4, 0.1,
      0.3, 0.4, 0.1, 0.1, 0.1,
      0.1, 0.1, 0.2, 0.5, 0.1,
      0.5, 0.2, 0.1, 0.1, 0.1,
      0.2, 0.3, 0.3, 0.1, 0.1,
  };
  // clang-format on
  expect_classification({{"accuracy", 0.5714285714285714},
                         {"balanced_accuracy", 0.5},
                         {"log_loss", 1.2636710369126105},
                         {"f1_macro", 0.375},
                         {"precision_macro", 0.375},
                         {"recall_macro", 0.375},
                         {"f1_micro", 0.5714285714285714},
                         {"precision_micro", 0.5714285714285714},
                         {"recall_micro", 0.5714285714285714},
                         {"f1_weighted", 0.5714285714285714},
                         {"precision_weighted", 0.5714285714285714},
                         {"recall_weighted", 0.5714285714285714},
                         {"mcc", 0.46875}},
                        y, proba, 5);
  // sklearn: "Number of classes in y_true not equal to the number of columns in 'y_score'".
  expect_invalid([&] { score_classification("roc_auc_ovr_macro", y, proba, 5); },
                 "roc_auc_ovr_macro is undefined unless y_true holds all 5 classes");
  expect_invalid([&] { score_classification("roc_auc_ovo_macro", y, proba, 5); },
                 "roc_auc_ovo_macro is undefined unless y_true holds all 5 classes");
}

TEST(MetricsClassification, DegenerateCasesMatchSklearn) {
  // Nothing predicted positive: precision 0/0 -> 0, f1 -> 0 (sklearn zero_division).
  const auto all_negative = binary_proba({0.1, 0.2, 0.3});
  EXPECT_EQ(score_classification("precision", {0, 1, 1}, all_negative, 2), 0.0);
  EXPECT_EQ(score_classification("f1", {0, 1, 1}, all_negative, 2), 0.0);
  // No positives in y_true: recall 0/0 -> 0.
  EXPECT_EQ(score_classification("recall", {0, 0, 0}, binary_proba({0.1, 0.9, 0.8}), 2), 0.0);
  // Constant prediction: mcc denominator 0 -> 0.
  const std::vector<double> constant = {0.1, 0.8, 0.1, 0.2, 0.7, 0.1, 0.3, 0.6, 0.1, 0, 1, 0};
  EXPECT_EQ(score_classification("mcc", {0, 1, 2, 1}, constant, 3), 0.0);
  // All scores tied: roc_auc 0.5.
  EXPECT_NEAR(score_classification("roc_auc", {0, 1, 0, 1}, binary_proba({0.3, 0.3, 0.3, 0.3}), 2),
              0.5, kTol);
  // log_loss clips p=0 to 1e-15: log_loss([1, 0], [[1, 0], [.5, .5]], eps=1e-15).
  EXPECT_NEAR(score_classification("log_loss", {1, 0}, {1.0, 0.0, 0.5, 0.5}, 2), 17.615961787735316,
              kTol);
  // log_loss renormalises rows that do not sum to 1.
  EXPECT_NEAR(score_classification("log_loss", {0}, {2.0, 2.0}, 2), std::log(2.0), kTol);
  // Perfect predictions.
  const auto perfect = binary_proba({0.2, 0.9, 0.7, 0.1});
  for (const char* name : {"accuracy", "balanced_accuracy", "roc_auc", "f1", "mcc", "f1_macro"}) {
    EXPECT_NEAR(score_classification(name, {0, 1, 1, 0}, perfect, 2), 1.0, kTol) << name;
  }
  // Perfectly inverted ranking.
  EXPECT_NEAR(score_classification("roc_auc", {1, 0, 0, 1}, perfect, 2), 0.0, kTol);
}

TEST(MetricsClassification, RocAucThrowsOnOneClass) {
  const auto proba = binary_proba({0.2, 0.9, 0.7});
  for (const char* name : {"roc_auc", "roc_auc_ovo_macro", "roc_auc_ovr_macro"}) {
    expect_invalid(
        [&] {
          score_classification(name, {1, 1, 1}, proba, 2);
        },
        std::string(name) + " is undefined when y_true holds one class");
  }
  EXPECT_THROW(score_classification("roc_auc", {0, 0, 0}, proba, 2), std::invalid_argument);
}

TEST(MetricsClassification, MulticlassRocAucNeedsProbabilities) {
  const std::vector<double> not_proba = {0.5, 0.5, 0.5, 0.2, 0.2, 0.2, 0.1, 0.1, 0.1};
  expect_invalid(
      [&] {
        score_classification("roc_auc_ovr_macro", {0, 1, 2}, not_proba, 3);
      },
      "roc_auc_ovr_macro needs probabilities: proba row 0 sums to");
}

TEST(MetricsClassification, RejectsBadInput) {
  const auto proba = binary_proba({0.2, 0.9});
  expect_invalid([&] { score_classification("accuracy", {}, {}, 2); },
                 "score_classification: y_true is empty");
  expect_invalid(
      [&] {
        score_classification("accuracy", {0, 1, 1}, proba, 2);
      },
      "score_classification: proba has 4 values, expected 3 rows x 2 classes");
  expect_invalid(
      [&] {
        score_classification("accuracy", {0, 2}, proba, 2);
      },
      "score_classification: label 2 at index 1 is outside [0, 2)");
  expect_invalid(
      [&] {
        score_classification("accuracy", {-1, 0}, proba, 2);
      },
      "label -1 at index 0 is outside [0, 2)");
  expect_invalid(
      [&] {
        score_classification("accuracy", {0, 1}, {0.5, 0.5}, 1);
      },
      "num_classes must be at least 2");
  expect_invalid(
      [&] {
        score_classification("rmse", {0, 1}, proba, 2);
      },
      "metric 'rmse' is not a classification metric");
  expect_invalid(
      [&] {
        score_classification("f1", {0, 1, 2}, std::vector<double>(9, 0.3), 3);
      },
      "metric 'f1' is binary-only but num_classes is 3");
  expect_invalid(
      [&] {
        score_classification("accuracy", {0, 1}, {0.5, NAN, 0.5, 0.5}, 2);
      },
      "proba holds a non-finite value at index 1");
}

// -------------------------------------------------------------------- regression

TEST(MetricsRegression, MatchesSklearnAndScipy) {
  // y_true has a tie (2.0 x2) so spearmanr uses average ranks.
  expect_regression({{"mse", 0.3225},
                     {"rmse", 0.5678908345800273},
                     {"mae", 0.5},
                     {"r2", 0.9355966050923614},
                     {"median_absolute_error", 0.5},
                     {"pearsonr", 0.9753438848415006},
                     {"spearmanr", 0.8835852486128687}},
                    {3.0, -0.5, 2.0, 7.0, 4.2, 2.0, 1.5, 0.0},
                    {2.5, 0.0, 2.1, 7.8, 3.9, 2.5, 2.5, -0.3});
  // Odd length (median is the middle error) and ties in y_pred.
  expect_regression({{"mse", 1.15},
                     {"rmse", 1.0723805294763609},
                     {"mae", 0.9},
                     {"r2", 0.42500000000000004},
                     {"median_absolute_error", 0.5},
                     {"pearsonr", 0.7134676899329873},
                     {"spearmanr", 0.8720815992723809}},
                    {1.0, 2.0, 3.0, 4.0, 5.0}, {1.5, 1.5, 2.5, 5.0, 3.0});
}

TEST(MetricsRegression, DegenerateCasesMatchSklearnAndScipy) {
  // r2 with constant y_true: 1 for a perfect prediction, else 0 (sklearn force_finite).
  EXPECT_EQ(score_regression("r2", {2.0, 2.0, 2.0}, {2.0, 2.0, 2.0}), 1.0);
  EXPECT_EQ(score_regression("r2", {2.0, 2.0, 2.0}, {1.0, 2.0, 3.0}), 0.0);
  // r2 on one sample is NaN in sklearn.
  EXPECT_TRUE(std::isnan(score_regression("r2", {1.0}, {2.0})));
  // Correlations of constant input are NaN (scipy).
  EXPECT_TRUE(std::isnan(score_regression("pearsonr", {1.0, 1.0, 1.0}, {1.0, 2.0, 3.0})));
  EXPECT_TRUE(std::isnan(score_regression("spearmanr", {1.0, 2.0, 3.0}, {4.0, 4.0, 4.0})));
  // Perfect monotone relations.
  EXPECT_NEAR(score_regression("pearsonr", {1.0, 2.0, 3.0}, {-2.0, -4.0, -6.0}), -1.0, kTol);
  EXPECT_NEAR(score_regression("spearmanr", {1.0, 2.0, 3.0}, {1.0, 10.0, 100.0}), 1.0, kTol);
  EXPECT_EQ(score_regression("rmse", {1.0, 2.0}, {1.0, 2.0}), 0.0);
}

TEST(MetricsRegression, RejectsBadInput) {
  expect_invalid([] { score_regression("rmse", {}, {}); }, "score_regression: y_true is empty");
  expect_invalid(
      [] {
        score_regression("rmse", {1.0, 2.0}, {1.0});
      },
      "score_regression: y_true has 2 values but y_pred has 1");
  expect_invalid([] { score_regression("accuracy", {1.0}, {1.0}); },
                 "metric 'accuracy' is not a regression metric");
  expect_invalid(
      [] {
        score_regression("mae", {1.0, INFINITY}, {1.0, 2.0});
      },
      "y_true holds a non-finite value at index 1");
  expect_invalid([] { score_regression("pearsonr", {1.0}, {2.0}); },
                 "pearsonr needs at least 2 samples, got 1");
  expect_invalid([] { score_regression("spearmanr", {1.0}, {2.0}); },
                 "spearmanr needs at least 2 samples, got 1");
}

}  // namespace
}  // namespace automm
