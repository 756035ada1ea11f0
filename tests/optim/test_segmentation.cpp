// Segmentation metrics and losses (src/optim/segmentation.cpp) against
// tests/optim/segmentation_reference.py, run by /usr/bin/python3 with Debian's
// torch, numpy and scipy: a transcription of AutoMM's metric code paths and
// StructureLoss, and of Hugging Face's Mask2FormerLoss with scipy's
// linear_sum_assignment. The inputs are generated here, written to a
// safetensors file, and the script's outputs read back.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <cstdint>
#include <iostream>
#include <limits>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#ifndef AUTOMM_SOURCE_DIR
#include "automm_test_paths.h"
#endif

#include "automm/weights_io.h"
#include "optim/segmentation.h"
#include "reference_util.h"
#include "test_util.h"

namespace automm {
namespace {

using testing::TempDir;

constexpr double kMetricTolerance = 1e-9;  // float64 metrics
constexpr double kLossTolerance = 1e-5;    // float32 losses and their gradients

double max_abs_diff(const torch::Tensor& a, const torch::Tensor& b) {
  if (a.numel() == 0 && b.numel() == 0) return 0;
  return (a.to(torch::kDouble) - b.to(torch::kDouble)).abs().max().item<double>();
}

// ---- Generated inputs

constexpr int64_t kHeight = 24, kWidth = 28;

// Binary segmentation images [N, H, W] float64: blobs, an empty and a full gt,
// constant and exactly binary predictions, one-pixel foreground and background,
// foreground only in the last column (an empty S-measure quadrant), symmetric
// blobs (equidistant pixels in the distance transform), quantised predictions
// on the 0.5 and 125/255 thresholds.
std::pair<torch::Tensor, torch::Tensor> binary_images() {
  torch::manual_seed(11);
  const auto f64 = torch::TensorOptions().dtype(torch::kDouble);
  const auto y = torch::arange(kHeight, f64).view({kHeight, 1}).expand({kHeight, kWidth});
  const auto x = torch::arange(kWidth, f64).view({1, kWidth}).expand({kHeight, kWidth});
  const auto zeros = torch::zeros({kHeight, kWidth}, f64), ones = torch::ones({kHeight, kWidth}, f64);
  auto uniform = [&] { return torch::rand({kHeight, kWidth}, f64); };
  auto ellipse = [&](double cx, double cy, double rx, double ry) {
    return ((x - cx) / rx).pow(2) + ((y - cy) / ry).pow(2);
  };
  auto box = [&](int64_t r0, int64_t r1, int64_t c0, int64_t c1) {
    return ((y >= r0) & (y < r1) & (x >= c0) & (x < c1)).to(torch::kDouble);
  };
  std::vector<torch::Tensor> probs, gts;
  auto add = [&](const torch::Tensor& prob, const torch::Tensor& gt) {
    probs.push_back(prob.clamp(0, 1));
    gts.push_back(gt);
  };
  const auto blob = ellipse(12, 10, 7, 5);
  add(torch::sigmoid(3 * (1 - blob)) + 0.1 * (uniform() - 0.5), (blob < 1).to(torch::kDouble));   // soft blob
  add(0.6 * uniform(), zeros);                                                                    // empty gt
  add(uniform(), ones);                                                                           // full gt
  add(0.3 * ones, torch::max(box(2, 8, 3, 11), (ellipse(20, 16, 4, 4) < 1).to(torch::kDouble)));  // constant
  const auto pair = box(6, 12, 4, 10) + box(6, 12, 18, 24);  // two squares, mirror images
  add(0.7 * pair + 0.3 * uniform(), pair);
  const auto dot = box(15, 16, 9, 10);
  add(uniform(), dot);  // one foreground pixel
  const auto last_column = box(3, 20, kWidth - 1, kWidth);
  add(0.8 * last_column + 0.1, last_column);  // x centroid = w
  const auto shape = (ellipse(14, 12, 9, 6) < 1).to(torch::kDouble);
  add(shape.clone(), shape);                                              // perfect
  add(uniform(), 1 - dot);                                                // one background pixel
  add(torch::round(uniform() * 8) / 8, (blob < 1.5).to(torch::kDouble));  // on the thresholds
  add(torch::full({kHeight, kWidth}, 125.0 / 255, f64), (blob < 0.5).to(torch::kDouble));
  add(zeros.clone(), zeros);  // both empty
  add(ones.clone(), ones);    // both full
  return {torch::stack(probs), torch::stack(gts)};
}

// Mask2Former targets of a label map [H, W] (classes, 255 ignored): one binary
// mask per present class, as AutoMM's prepare_per_category_binary_masks.
std::pair<torch::Tensor, torch::Tensor> targets_of(const torch::Tensor& label_map) {
  std::vector<torch::Tensor> masks;
  std::vector<int64_t> classes;
  const auto present = std::get<0>(at::_unique(label_map));
  for (int64_t c :
       std::vector<int64_t>(present.data_ptr<int64_t>(), present.data_ptr<int64_t>() + present.numel()))
    if (c != 255) {
      classes.push_back(c);
      masks.push_back((label_map == c).to(torch::kFloat));
    }
  if (masks.empty())
    return {torch::zeros({0, label_map.size(0), label_map.size(1)}), torch::zeros({0}, torch::kLong)};
  return {torch::stack(masks), torch::tensor(classes, torch::kLong)};
}

// A label map of horizontal bands with the given classes, a 255 border.
torch::Tensor banded(int64_t h, int64_t w, const std::vector<int64_t>& classes) {
  auto map = torch::full({h, w}, 255, torch::kLong);
  for (size_t k = 0; k < classes.size(); ++k) {
    const int64_t r0 = 1 + static_cast<int64_t>(k) * (h - 2) / static_cast<int64_t>(classes.size());
    const int64_t r1 = 1 + static_cast<int64_t>(k + 1) * (h - 2) / static_cast<int64_t>(classes.size());
    map.slice(0, r0, r1).slice(1, 1 + static_cast<int64_t>(k), w - 1).fill_(classes[k]);
  }
  return map;
}

struct Mask2FormerCase {
  torch::Tensor masks, classes;
  std::vector<torch::Tensor> mask_labels, class_labels;
  Mask2FormerLossOptions options;
  bool seeded = false;
  int64_t seed = 0;
  Mask2FormerPoints points;
};

int64_t matched_masks(const Mask2FormerCase& c) {
  int64_t matched = 0;
  for (const auto& m : c.mask_labels) matched += std::min(c.masks.size(1), m.size(0));
  return matched;
}

Mask2FormerCase make_case(int64_t queries, int64_t num_labels, int64_t h, int64_t w,
                          const std::vector<std::vector<int64_t>>& classes_per_image, int64_t num_points,
                          uint64_t seed, bool constant_predictions = false) {
  torch::manual_seed(seed);
  Mask2FormerCase c;
  const auto n = static_cast<int64_t>(classes_per_image.size());
  if (constant_predictions) {  // every query alike: the matching is all ties
    c.masks = torch::zeros({n, queries, h, w});
    c.classes = torch::zeros({n, queries, num_labels + 1});
  } else {
    c.masks = 3 * torch::randn({n, queries, h, w});
    c.classes = 2 * torch::randn({n, queries, num_labels + 1});
  }
  for (const auto& present : classes_per_image) {
    auto [m, cl] = targets_of(banded(h, w, present));
    c.mask_labels.push_back(m);
    c.class_labels.push_back(cl);
  }
  c.options.num_points = num_points;
  c.points = draw_mask2former_points(n, matched_masks(c), c.options);
  return c;
}

std::map<std::string, Mask2FormerCase> mask2former_cases() {
  std::map<std::string, Mask2FormerCase> cases;
  // Three images: three classes, one, none (all ignored); AutoMM's default 12544 points.
  cases["a"] = make_case(5, 4, 16, 20, {{0, 2, 3}, {1}, {}}, 12544, 21);
  // More targets than queries in one image (a wide cost matrix), fewer in the other (a tall one).
  cases["b"] = make_case(3, 4, 12, 12, {{3, 0, 1, 2}, {2, 1}}, 200, 22);
  // Points drawn from torch's generator on both sides with the same seed.
  cases["c"] = make_case(4, 3, 10, 14, {{1, 2}, {0}}, 300, 23);
  cases["c"].seeded = true;
  cases["c"].seed = 1234;
  // No target mask in the batch: the mask losses are 0, only "no object" is learnt.
  cases["d"] = make_case(3, 2, 8, 8, {{}, {}}, 100, 24);
  cases["d"].seeded = true;
  cases["d"].seed = 99;
  // Identical queries: scipy's tie-breaking decides the matching.
  cases["e"] = make_case(4, 3, 10, 10, {{2, 0}}, 150, 25, /*constant_predictions=*/true);
  return cases;
}

std::map<std::string, torch::Tensor> assignment_costs() {
  torch::manual_seed(31);
  std::map<std::string, torch::Tensor> costs;
  const std::vector<std::pair<int64_t, int64_t>> shapes = {{5, 8}, {8, 5},   {1, 6},  {6, 1},
                                                           {7, 7}, {30, 45}, {45, 30}};
  for (const auto& [r, c] : shapes)
    costs["random_" + std::to_string(r) + "x" + std::to_string(c)] =
        torch::rand({r, c}, torch::kDouble) * 10 - 3;
  for (const auto& [r, c] : std::vector<std::pair<int64_t, int64_t>>{{6, 6}, {4, 9}, {9, 4}})  // many ties
    costs["integer_" + std::to_string(r) + "x" + std::to_string(c)] =
        torch::randint(0, 4, {r, c}, torch::kLong).to(torch::kDouble);
  costs["constant_3x5"] = torch::full({3, 5}, 2.0, torch::kDouble);
  costs["constant_5x3"] = torch::full({5, 3}, 2.0, torch::kDouble);
  return costs;
}

// ---- The reference, run once per test process.

struct Reference {
  std::string skip_reason;  // /usr/bin/python3 lacks torch, numpy or scipy
  std::string error;        // the script failed
  torch::Tensor prob, gt, scores, target, structure_logits, structure_gt;
  std::map<std::string, Mask2FormerCase> m2f;
  std::map<std::string, torch::Tensor> costs;
  StateDict out;
  // A float64 output (written as its int64 bit pattern).
  torch::Tensor f64(const std::string& name) const { return out.at(name + ".f64").view(torch::kDouble); }
};

const Reference& reference() {
  static const std::unique_ptr<Reference> ref = [] {
    auto r = std::make_unique<Reference>();
    std::tie(r->prob, r->gt) = binary_images();
    torch::manual_seed(41);
    r->scores = torch::randn({3, 4, 12, 14});
    r->scores.select(1, 3).fill_(-10);  // class 3 never predicted, never labelled: IoU 0 in the mean
    r->target = torch::randint(0, 3, {3, 12, 14}, torch::kLong);
    r->target.masked_fill_(torch::rand({3, 12, 14}) < 0.15, 255);
    r->target[1].slice(0, 0, 4).fill_(255);
    torch::manual_seed(42);
    r->structure_logits = 2 * torch::randn({4, 1, 20, 24});
    const auto yy = torch::arange(20).view({20, 1}).expand({20, 24}),
               xx = torch::arange(24).view({1, 24}).expand({20, 24});
    const auto blob = ((xx - 11).pow(2) + (yy - 9).pow(2) < 30).to(torch::kFloat);
    r->structure_gt = torch::stack({blob, torch::zeros({20, 24}), torch::ones({20, 24}),
                                    (torch::rand({20, 24}) < 0.3).to(torch::kFloat)})
                          .unsqueeze(1);
    r->m2f = mask2former_cases();
    r->costs = assignment_costs();

    r->skip_reason =
        testing::python_reference_missing("torch, numpy, scipy", "python3-torch python3-numpy python3-scipy",
                                          "the segmentation reference tests");
    if (!r->skip_reason.empty()) return r;
    StateDict in = {{"binary.prob", r->prob},
                    {"binary.gt", r->gt},
                    {"multiclass.scores", r->scores},
                    {"multiclass.target", r->target},
                    {"structure.logits", r->structure_logits},
                    {"structure.gt", r->structure_gt}};
    for (const auto& [name, c] : r->m2f) {
      const std::string p = "m2f." + name + ".";
      in[p + "masks"] = c.masks;
      in[p + "classes"] = c.classes;
      for (size_t i = 0; i < c.mask_labels.size(); ++i) {
        in[p + "mask_labels." + std::to_string(i)] = c.mask_labels[i];
        in[p + "class_labels." + std::to_string(i)] = c.class_labels[i];
      }
      in[p + "options"] = torch::tensor({static_cast<double>(c.options.num_points),
                                         c.options.oversample_ratio, c.options.importance_sample_ratio},
                                        torch::kDouble);
      if (c.seeded) {
        in[p + "seed"] = torch::tensor({c.seed}, torch::kLong);
      } else {
        in[p + "points.matcher"] = c.points.matcher;
        in[p + "points.oversampled"] = c.points.oversampled;
        in[p + "points.random"] = c.points.random;
      }
    }
    for (const auto& [name, cost] : r->costs) in["lsa." + name] = cost;
    r->out = testing::run_tensor_reference("tests/optim/segmentation_reference.py", in, &r->error);
    return r;
  }();
  return *ref;
}


// ---- Metrics

using BinaryMetric = double (*)(const torch::Tensor&, const torch::Tensor&);

const std::vector<std::pair<std::string, BinaryMetric>>& binary_metrics() {
  static const std::vector<std::pair<std::string, BinaryMetric>> metrics = {
      {"iou", binary_iou}, {"ber", balanced_error_rate}, {"sm", s_measure}, {"em", e_measure},
      {"fm", f_measure},   {"mae", mean_absolute_error}};
  return metrics;
}

TEST(SegmentationMetrics, BinaryMetricsMatchAutoMMPerImageAndBatch) {
  REQUIRE_REFERENCE(ref);
  const int64_t n = ref.prob.size(0);
  for (const auto& [name, metric] : binary_metrics()) {
    SCOPED_TRACE(name);
    const torch::Tensor expected = ref.f64("binary." + name);
    ASSERT_EQ(expected.numel(), n + 1);
    double worst = 0;
    for (int64_t i = 0; i < n; ++i) {
      const double got = metric(ref.prob.slice(0, i, i + 1), ref.gt.slice(0, i, i + 1));
      const double want = expected[i].item<double>();
      ASSERT_TRUE(std::isfinite(got) && std::isfinite(want))
          << "image " << i << ": " << got << " vs " << want;
      EXPECT_NEAR(got, want, kMetricTolerance) << "image " << i;
      worst = std::max(worst, std::abs(got - want));
    }
    const double batch = metric(ref.prob, ref.gt);
    EXPECT_NEAR(batch, expected[n].item<double>(), kMetricTolerance) << "batch";
    worst = std::max(worst, std::abs(batch - expected[n].item<double>()));
    std::cout << "[ parity   ] " << name << ": batch " << batch << ", max |diff| " << worst << "\n";
  }
}

TEST(SegmentationMetrics, AcceptOneChannelImagesAsAutoMMPassesThem) {
  REQUIRE_REFERENCE(ref);
  for (const auto& [name, metric] : binary_metrics()) {
    SCOPED_TRACE(name);
    EXPECT_NEAR(metric(ref.prob.unsqueeze(1), ref.gt.unsqueeze(1)),
                ref.f64("binary." + name)[ref.prob.size(0)].item<double>(), kMetricTolerance);
  }
}

TEST(SegmentationMetrics, MulticlassIoUMatchesAutoMM) {
  REQUIRE_REFERENCE(ref);
  const torch::Tensor pred = ref.scores.argmax(1);
  const double got = multiclass_iou(pred, ref.target, ref.scores.size(1));
  const double want = ref.f64("multiclass.iou")[0].item<double>();
  std::cout << "[ parity   ] multiclass iou " << got << " vs " << want << "\n";
  EXPECT_NEAR(got, want, kMetricTolerance);
  EXPECT_GT(got, 0.05);
}

// Hand-checked: AutoMM's `target + 1 > 0` mask never drops the ignore label
// 255, so the prediction on an ignored pixel still widens its class's union.
TEST(SegmentationMetrics, MulticlassIoUCountsPredictionsOnIgnoredPixels) {
  const auto pred = torch::tensor({1, 1}, torch::kLong).view({1, 1, 2});
  const auto target = torch::tensor({1, 255}, torch::kLong).view({1, 1, 2});
  // class 0: nothing (0 / eps); class 1: inter 1, union 2 (pred 2 + label 1 - inter 1).
  EXPECT_NEAR(multiclass_iou(pred, target, 2), 0.25, 1e-12);
  // A negative target is the one that counts nowhere.
  const auto negative = torch::tensor({1, -1}, torch::kLong).view({1, 1, 2});
  EXPECT_NEAR(multiclass_iou(pred, negative, 2), 0.5, 1e-12);
  EXPECT_TRUE(
      testing::contains(testing::error_of([&] { multiclass_iou(pred + 1, target, 2); }), "outside [0, 2)"));
}

TEST(SegmentationMetrics, HandCheckedValues) {
  // 2x2: gt {1, 0; 0, 0}, prob {0.9, 0.6; 0.2, 0.1}.
  const auto gt = torch::tensor({1.0, 0.0, 0.0, 0.0}, torch::kDouble).view({1, 2, 2});
  const auto prob = torch::tensor({0.9, 0.6, 0.2, 0.1}, torch::kDouble).view({1, 2, 2});
  EXPECT_NEAR(binary_iou(prob, gt), 0.5, 1e-12);  // tp 1, fp 1
  // foreground recall 1, background recall 2/3: BER = 1 - 5/6
  EXPECT_NEAR(balanced_error_rate(prob, gt), 1.0 / 6, 1e-12);
  // min-max normalised: {1, 0.625, 0.125, 0}; |pred - gt| = {0, 0.625, 0.125, 0}
  EXPECT_NEAR(mean_absolute_error(prob, gt), 0.1875, 1e-12);
  // Empty gt: S-measure is 1 - mean(prepared pred).
  const auto empty = torch::zeros({1, 2, 2}, torch::kDouble);
  EXPECT_NEAR(s_measure(prob, empty), 1 - 0.4375, 1e-12);
  EXPECT_EQ(f_measure(prob, empty), 0.0);
}

TEST(SegmentationMetrics, RegistryAndErrors) {
  EXPECT_EQ(segmentation_metric_names(), (std::vector<std::string>{"ber", "em", "fm", "iou", "mae", "sm"}));
  EXPECT_TRUE(is_segmentation_metric("sm"));
  EXPECT_FALSE(is_segmentation_metric("accuracy"));
  for (const char* name : {"iou", "sm", "em", "fm"})
    EXPECT_TRUE(segmentation_greater_is_better(name)) << name;
  for (const char* name : {"ber", "mae"}) EXPECT_FALSE(segmentation_greater_is_better(name)) << name;
  EXPECT_TRUE(testing::contains(testing::error_of([] { segmentation_greater_is_better("dice"); }),
                                "known: ber, em, fm, iou, mae, sm"));
  const auto a = torch::zeros({2, 4, 4}), b = torch::zeros({2, 4, 5});
  EXPECT_TRUE(testing::contains(testing::error_of([&] { s_measure(a, b); }), "differ in shape"));
  EXPECT_TRUE(testing::contains(testing::error_of([&] {
                                  binary_iou(torch::zeros({4, 4}), torch::zeros({4, 4}));
                                }),
                                "[N, H, W]"));
}

// ---- Losses

TEST(SegmentationLosses, StructureLossAndGradientMatchAutoMM) {
  REQUIRE_REFERENCE(ref);
  const torch::Tensor logits = ref.structure_logits.clone().requires_grad_(true);
  const torch::Tensor loss = structure_loss(logits, ref.structure_gt);
  loss.backward();
  const double loss_diff = std::abs(loss.item<double>() - ref.out.at("structure.loss").item<double>());
  const double grad_diff = max_abs_diff(logits.grad(), ref.out.at("structure.grad"));
  std::cout << "[ parity   ] structure_loss " << loss.item<double>() << ": |diff| " << loss_diff
            << ", max |grad diff| " << grad_diff << " (max |grad| "
            << ref.out.at("structure.grad").abs().max().item<double>() << ")\n";
  EXPECT_LE(loss_diff, kLossTolerance);
  EXPECT_LE(grad_diff, kLossTolerance);
  // [N, H, W] reads as one channel.
  EXPECT_NEAR(structure_loss(ref.structure_logits.squeeze(1), ref.structure_gt.squeeze(1)).item<double>(),
              loss.item<double>(), 1e-6);
}

void expect_mask2former_parity(const std::string& name) {
  REQUIRE_REFERENCE(ref);
  const Mask2FormerCase& c = ref.m2f.at(name);
  const std::string p = "m2f." + name + ".";
  const torch::Tensor masks = c.masks.clone().requires_grad_(true);
  const torch::Tensor classes = c.classes.clone().requires_grad_(true);
  torch::Tensor loss;
  if (c.seeded) {
    torch::manual_seed(static_cast<uint64_t>(c.seed));
    loss = mask2former_loss(masks, classes, c.mask_labels, c.class_labels, c.options);
  } else {
    const Mask2FormerLossTerms terms =
        mask2former_loss_terms(masks, classes, c.mask_labels, c.class_labels, c.points, c.options);
    EXPECT_NEAR(terms.cross_entropy.item<double>(), ref.out.at(p + "cross_entropy").item<double>(),
                kLossTolerance);
    EXPECT_NEAR(terms.mask.item<double>(), ref.out.at(p + "mask").item<double>(), kLossTolerance);
    EXPECT_NEAR(terms.dice.item<double>(), ref.out.at(p + "dice").item<double>(), kLossTolerance);
    loss = terms.total();
  }
  loss.backward();
  const double want = ref.out.at(p + "loss").item<double>();
  const double mask_grad = max_abs_diff(masks.grad(), ref.out.at(p + "grad_masks"));
  const double class_grad = max_abs_diff(classes.grad(), ref.out.at(p + "grad_classes"));
  std::cout << "[ parity   ] mask2former " << name << ": loss " << loss.item<double>() << " vs " << want
            << ", max |grad diff| masks " << mask_grad << ", classes " << class_grad << "\n";
  EXPECT_NEAR(loss.item<double>(), want, kLossTolerance);
  EXPECT_LE(mask_grad, kLossTolerance);
  EXPECT_LE(class_grad, kLossTolerance);
}

TEST(SegmentationLosses, Mask2FormerMatchesHuggingFaceOnThreeImages) { expect_mask2former_parity("a"); }
TEST(SegmentationLosses, Mask2FormerMatchesWithMoreTargetsThanQueries) { expect_mask2former_parity("b"); }
TEST(SegmentationLosses, Mask2FormerDrawsHuggingFacesPointsFromTheSameSeed) {
  expect_mask2former_parity("c");
}
TEST(SegmentationLosses, Mask2FormerWithoutTargetMasks) { expect_mask2former_parity("d"); }
TEST(SegmentationLosses, Mask2FormerBreaksMatchingTiesAsScipy) { expect_mask2former_parity("e"); }

// The loss is the unweighted sum of HF's three terms (AutoMM's 10 / 5 / 5
// weight_dict never reaches them): the weighted sum would be far off.
TEST(SegmentationLosses, Mask2FormerLossIsTheUnweightedSum) {
  REQUIRE_REFERENCE(ref);
  const std::string p = "m2f.a.";
  const double ce = ref.out.at(p + "cross_entropy").item<double>(),
               mask = ref.out.at(p + "mask").item<double>(), dice = ref.out.at(p + "dice").item<double>();
  EXPECT_NEAR(ref.out.at(p + "loss").item<double>(), ce + mask + dice, 1e-5);
  EXPECT_GT(std::abs(10 * ce + 5 * mask + 5 * dice - (ce + mask + dice)), 100 * kLossTolerance);
  const Mask2FormerCase& c = ref.m2f.at("a");
  // Other points give another loss: the points do matter, so the parity above is no accident.
  Mask2FormerPoints other = c.points;
  other.random = other.random.flip(1).roll(1, 0);
  other.oversampled = torch::rand(other.oversampled.sizes());
  const double moved =
      mask2former_loss_terms(c.masks, c.classes, c.mask_labels, c.class_labels, other, c.options)
          .total()
          .item<double>();
  EXPECT_GT(std::abs(moved - ref.out.at(p + "loss").item<double>()), 10 * kLossTolerance);
}

TEST(SegmentationLosses, Mask2FormerRefusesInconsistentTargets) {
  const auto masks = torch::zeros({1, 2, 4, 4}), classes = torch::zeros({1, 2, 3});
  const Mask2FormerLossOptions options;
  EXPECT_TRUE(testing::contains(testing::error_of([&] {
                                  mask2former_loss(masks, classes, {torch::zeros({2, 4, 4})},
                                                   {torch::tensor({0}, torch::kLong)}, options);
                                }),
                                "expected [G, 4, 4] and [G]"));
  EXPECT_TRUE(testing::contains(testing::error_of([&] {
                                  mask2former_loss(masks, classes, {torch::zeros({1, 4, 4})},
                                                   {torch::tensor({2}, torch::kLong)}, options);
                                }),
                                "outside [0, 2)"));
}

TEST(SegmentationLosses, SemanticScoresMatchAutoMMsInference) {
  REQUIRE_REFERENCE(ref);
  for (const auto& [name, c] : ref.m2f) {
    SCOPED_TRACE(name);
    const torch::Tensor scores = semantic_scores(c.masks, c.classes);
    ASSERT_EQ(scores.sizes(), (std::vector<int64_t>{c.masks.size(0), c.classes.size(2) - 1, c.masks.size(2),
                                                    c.masks.size(3)}));
    EXPECT_LE(max_abs_diff(scores, ref.out.at("m2f." + name + ".semantic")), 1e-6);
  }
  // One query, certain of class 1: its sigmoid mask, all on class 1.
  const auto masks = torch::tensor({0.0f, 2.0f}).view({1, 1, 1, 2});
  const auto classes = torch::tensor({-50.0f, 50.0f, -50.0f}).view({1, 1, 3});
  const torch::Tensor s = semantic_scores(masks, classes);
  EXPECT_NEAR(s[0][1][0][0].item<double>(), 0.5, 1e-6);
  EXPECT_NEAR(s[0][1][0][1].item<double>(), 1 / (1 + std::exp(-2.0)), 1e-6);
  EXPECT_NEAR(s[0][0].abs().max().item<double>(), 0.0, 1e-6);
}

// ---- Hungarian assignment

double assignment_cost(const torch::Tensor& cost, const std::vector<int64_t>& rows,
                       const std::vector<int64_t>& cols) {
  double sum = 0;
  for (size_t k = 0; k < rows.size(); ++k) sum += cost[rows[k]][cols[k]].item<double>();
  return sum;
}

std::vector<int64_t> to_vector(const torch::Tensor& t) {
  const torch::Tensor c = t.to(torch::kLong).contiguous();
  return std::vector<int64_t>(c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel());
}

TEST(LinearSumAssignment, MatchesScipy) {
  REQUIRE_REFERENCE(ref);
  double worst = 0;
  for (const auto& [name, cost] : ref.costs) {
    SCOPED_TRACE(name);
    const auto [rows, cols] = linear_sum_assignment(cost);
    ASSERT_EQ(static_cast<int64_t>(rows.size()), std::min(cost.size(0), cost.size(1)));
    EXPECT_TRUE(std::is_sorted(rows.begin(), rows.end()));
    EXPECT_EQ(std::set<int64_t>(cols.begin(), cols.end()).size(), cols.size());
    const double want = ref.f64("lsa." + name + ".cost")[0].item<double>();
    EXPECT_NEAR(assignment_cost(cost, rows, cols), want, 1e-9);
    worst = std::max(worst, std::abs(assignment_cost(cost, rows, cols) - want));
    // The same algorithm as scipy's, so the same pairs, ties included.
    EXPECT_EQ(rows, to_vector(ref.out.at("lsa." + name + ".rows")));
    EXPECT_EQ(cols, to_vector(ref.out.at("lsa." + name + ".cols")));
  }
  std::cout << "[ parity   ] linear_sum_assignment: max |cost diff| " << worst << "\n";
}

TEST(LinearSumAssignment, HandChecked) {
  // Optimum 1 + 2 + 2 = 5: row 0 -> col 1, row 1 -> col 0, row 2 -> col 2.
  const auto cost = torch::tensor({4.0, 1.0, 3.0, 2.0, 0.0, 5.0, 3.0, 2.0, 2.0}, torch::kDouble).view({3, 3});
  const auto [rows, cols] = linear_sum_assignment(cost);
  EXPECT_EQ(rows, (std::vector<int64_t>{0, 1, 2}));
  EXPECT_EQ(cols, (std::vector<int64_t>{1, 0, 2}));
  // Its transpose's tall version: 4 rows, 3 columns; the extra row goes unassigned.
  const auto tall = torch::cat({cost.t(), torch::full({1, 3}, 10.0, torch::kDouble)});
  const auto [trows, tcols] = linear_sum_assignment(tall);
  EXPECT_EQ(trows, (std::vector<int64_t>{0, 1, 2}));
  EXPECT_EQ(tcols, (std::vector<int64_t>{1, 0, 2}));
  const auto [erows, ecols] = linear_sum_assignment(torch::zeros({0, 3}));
  EXPECT_TRUE(erows.empty() && ecols.empty());
  const auto nan = torch::tensor({1.0, std::numeric_limits<double>::quiet_NaN()}).view({1, 2});
  EXPECT_TRUE(testing::contains(testing::error_of([&] { linear_sum_assignment(nan); }), "NaN or -inf"));
  const auto blocked = torch::full({2, 2}, std::numeric_limits<double>::infinity(), torch::kDouble);
  EXPECT_TRUE(testing::contains(testing::error_of([&] { linear_sum_assignment(blocked); }), "infeasible"));
}

}  // namespace
}  // namespace automm
