// Knowledge distillation's losses (src/learners/distillation.h, rkd_loss in
// src/optim/losses.h) against references written here, and its keys.
#include <gtest/gtest.h>

#include <cmath>

#include "learners/default_learner.h"
#include "learners/distillation.h"
#include "optim/losses.h"
#include "test_util.h"

namespace automm {
namespace {

using testing::contains;
using testing::error_of;

double smooth_l1(double d) { return std::abs(d) < 1 ? 0.5 * d * d : std::abs(d) - 0.5; }

// RKD written out with loops: distances normalized by their mean over distinct
// pairs, angles <unit(x_b - x_a), unit(x_c - x_a)> over every (a, b, c).
double rkd_reference(const torch::Tensor& s, const torch::Tensor& t, double wd, double wa) {
  const int64_t n = s.size(0);
  auto dist = [&](const torch::Tensor& x) {
    std::vector<double> d(n * n, 0.0);
    double sum = 0;
    int64_t count = 0;
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < n; ++j)
        if (i != j) {
          d[i * n + j] = (x[i] - x[j]).norm().item<double>();
          sum += d[i * n + j];
          ++count;
        }
    for (double& v : d) v /= sum / count;
    return d;
  };
  auto angle = [&](const torch::Tensor& x) {
    std::vector<double> a;
    auto unit = [](const torch::Tensor& v) {
      const double norm = v.norm().item<double>();
      return norm > 1e-12 ? v / norm : v * 0;
    };
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < n; ++j)
        for (int64_t k = 0; k < n; ++k) a.push_back(unit(x[j] - x[i]).dot(unit(x[k] - x[i])).item<double>());
    return a;
  };
  double loss = 0;
  const auto ds = dist(s), dt = dist(t);
  double l = 0;
  for (size_t i = 0; i < ds.size(); ++i) l += smooth_l1(ds[i] - dt[i]);
  loss += wd * l / ds.size();
  const auto as = angle(s), at = angle(t);
  l = 0;
  for (size_t i = 0; i < as.size(); ++i) l += smooth_l1(as[i] - at[i]);
  loss += wa * l / as.size();
  return loss;
}

TEST(Distillation, RkdMatchesTheReferenceAndLeavesTheTeacherAlone) {
  torch::manual_seed(1);
  const torch::Tensor student = torch::randn({6, 4}, torch::kFloat64).requires_grad_(true);
  const torch::Tensor teacher = torch::randn({6, 4}, torch::kFloat64).requires_grad_(true);
  const torch::Tensor loss = rkd_loss(student, teacher, 25.0, 50.0);
  EXPECT_NEAR(loss.item<double>(), rkd_reference(student.detach(), teacher.detach(), 25.0, 50.0), 1e-9);
  EXPECT_NEAR(rkd_loss(student, teacher, 1.0, 0.0).item<double>(),
              rkd_reference(student.detach(), teacher.detach(), 1.0, 0.0), 1e-9);
  loss.backward();
  EXPECT_TRUE(student.grad().defined());
  EXPECT_FALSE(teacher.grad().defined());
  EXPECT_DOUBLE_EQ(rkd_loss(student, teacher, 0.0, 0.0).item<double>(), 0.0);
}

TEST(Distillation, OptionsFollowTheProblemType) {
  Config config;
  const DistillerOptions classification = DistillerOptions::from(config, false);
  EXPECT_EQ(classification.soft_label_loss_type, "cross_entropy");
  EXPECT_DOUBLE_EQ(classification.temperature, 5.0);
  EXPECT_TRUE(classification.uses_features());  // output_feature_loss_weight 0.01
  const DistillerOptions regression = DistillerOptions::from(config, true);
  EXPECT_EQ(regression.soft_label_loss_type, "mse");
  config.merge({{"distiller.soft_label_loss_type", "cross_entropy"}});
  EXPECT_TRUE(contains(error_of([&] { DistillerOptions::from(config, true); }), "mse"));
  EXPECT_TRUE(contains(error_of([] { Config().merge({{"distiller.soft_label_loss_type", "kl"}}); }), "cross_entropy"));
  EXPECT_TRUE(contains(error_of([] { Config().merge({{"distiller.temperature", 0}}); }), "distiller.temperature"));
}

// Every term of the loss against its formula, with a real fitted teacher (whose
// head runs on the adapted student features and takes no gradient).
std::unique_ptr<DefaultLearner> fitted_teacher(testing::TempDir& dir) {
  PredictorOptions options;
  options.label = "label";
  options.verbose = false;
  options.path = dir.file("teacher");
  options.hyperparameters = {{"optim.max_epochs", 1}};
  auto teacher = std::make_unique<DefaultLearner>(options);
  teacher->fit(testing::make_tabular_table(200, 1, "multiclass"), FitOptions{}, nullptr);
  return teacher;
}

TEST(Distillation, LossIsTheWeightedSumOfItsTerms) {
  testing::TempDir dir;
  const auto owner = fitted_teacher(dir);
  DefaultLearner& teacher = *owner;
  const int64_t teacher_dim = teacher.extract_embedding(testing::make_tabular_table(2, 2, "multiclass")).size(1);

  Config config;
  config.merge({{"distiller.hard_label_weight", 0.3},
                {"distiller.soft_label_weight", 2.0},
                {"distiller.temperature", 4.0},
                {"distiller.softmax_regression_weight", 0.5},
                {"distiller.output_feature_loss_weight", 0.1},
                {"distiller.rkd_distance_loss_weight", 1.0},
                {"distiller.rkd_angle_loss_weight", 2.0}});
  const DistillerOptions o = DistillerOptions::from(config, false);
  torch::manual_seed(3);
  Distiller distiller(o, teacher, 8, teacher_dim);
  ASSERT_TRUE(distiller.adaptor());
  NetOutput out;
  out.logits = torch::randn({5, 3}).requires_grad_(true);
  out.features = torch::randn({5, 8}).requires_grad_(true);
  Targets targets;
  targets.dense[kTeacherLogits] = torch::randn({5, 3});
  targets.dense[kTeacherHeadOutputs] = torch::randn({5, 3});
  targets.dense[kTeacherFeatures] = torch::randn({5, teacher_dim});
  const torch::Tensor task = torch::tensor(0.7);
  const torch::Tensor loss = distiller.loss(task, out, targets);

  const torch::Tensor adapted = distiller.adaptor()->forward(out.features);
  const torch::Tensor p = torch::softmax(targets.dense[kTeacherLogits] / 4.0, 1);
  const double soft = -(p * torch::log_softmax(out.logits / 4.0, 1)).sum(1).mean().item<double>();
  const torch::Tensor sr_logits = teacher.classify_features(adapted);
  const double sr = (sr_logits - targets.dense[kTeacherHeadOutputs]).pow(2).mean().item<double>();
  const double feature = (adapted - targets.dense[kTeacherFeatures]).pow(2).mean().item<double>();
  const double rkd = rkd_reference(adapted.detach().to(torch::kFloat64),
                                   targets.dense[kTeacherFeatures].to(torch::kFloat64), 1.0, 2.0);
  EXPECT_NEAR(loss.item<double>(), 0.3 * 0.7 + 2.0 * soft + 0.5 * sr + 0.1 * feature + rkd, 1e-4);

  loss.backward();
  EXPECT_TRUE(out.logits.grad().defined() && out.features.grad().defined());
  for (const auto& p : distiller.adaptor()->parameters()) EXPECT_TRUE(p.grad().defined());
}

// output_feature_loss_type = cosine (mean of 1 - cosine similarity) and a
// cross-entropy softmax regression, against their formulas.
TEST(Distillation, CosineFeatureLossAndCrossEntropySoftmaxRegression) {
  testing::TempDir dir;
  const auto teacher = fitted_teacher(dir);
  const int64_t teacher_dim = teacher->extract_embedding(testing::make_tabular_table(2, 2, "multiclass")).size(1);
  Config config;
  config.merge({{"distiller.hard_label_weight", 0.0},
                {"distiller.soft_label_weight", 0.0},
                {"distiller.softmax_regression_weight", 1.0},
                {"distiller.softmax_regression_loss_type", "cross_entropy"},
                {"distiller.output_feature_loss_type", "cosine"},
                {"distiller.output_feature_loss_weight", 3.0}});
  torch::manual_seed(4);
  Distiller distiller(DistillerOptions::from(config, false), *teacher, teacher_dim, teacher_dim);
  EXPECT_FALSE(distiller.adaptor());  // equal widths: no adaptor
  NetOutput out;
  out.logits = torch::randn({6, 3});
  out.features = torch::randn({6, teacher_dim});
  Targets targets;
  targets.dense[kTeacherLogits] = torch::randn({6, 3});
  targets.dense[kTeacherHeadOutputs] = torch::randn({6, 3});
  targets.dense[kTeacherFeatures] = torch::randn({6, teacher_dim});
  const double loss = distiller.loss(torch::tensor(5.0), out, targets).item<double>();
  const torch::Tensor p = torch::softmax(targets.dense[kTeacherHeadOutputs], 1);
  const double sr = -(p * torch::log_softmax(teacher->classify_features(out.features), 1)).sum(1).mean().item<double>();
  const torch::Tensor t = targets.dense[kTeacherFeatures];
  const double cosine =
      (1 - (out.features * t).sum(1) / (out.features.norm(2, 1) * t.norm(2, 1))).mean().item<double>();
  EXPECT_NEAR(loss, sr + 3.0 * cosine, 1e-4);
}

}  // namespace
}  // namespace automm
