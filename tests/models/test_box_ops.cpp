// Box IoU and NMS (src/models/detection/box_ops.cpp) against torchvision.ops.nms,
// batched_nms and box_iou, and mmdet's aligned bbox_overlaps transcribed in
// tests/models/box_ops_reference.py, run by /usr/bin/python3 with Debian's
// torch and torchvision. Kept index lists must be identical.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#ifndef AUTOMM_SOURCE_DIR
#include "automm_test_paths.h"
#endif

#include "automm/weights_io.h"
#include "models/detection/box_ops.h"
#include "reference_util.h"
#include "test_util.h"

namespace automm {
namespace {

using detection::aligned_box_iou;
using detection::batched_nms;
using detection::box_iou;
using detection::nms;
using testing::TempDir;

const std::vector<double> kThresholds = {0.3, 0.5, 0.65};

struct BoxCase {
  torch::Tensor boxes, scores, labels;  // [N, 4] xyxy, [N], [N] int64
};

// xyxy boxes from corners (x, y) and sizes (w, h), each [N].
torch::Tensor xyxy(const torch::Tensor& x, const torch::Tensor& y, const torch::Tensor& w,
                   const torch::Tensor& h) {
  return torch::stack({x, y, x + w, y + h}, 1);
}

// Integer boxes around a few centres (many overlaps, exact IoUs such as 1/2 and
// 3/10 on the thresholds), ~5% of zero width or height, scores on a 1/20 grid
// (ties), labels 0..4.
BoxCase clustered(int64_t n, int64_t centres, int64_t spread, int64_t max_size, uint64_t seed) {
  torch::manual_seed(seed);
  const auto centre = torch::randint(0, centres, {n}, torch::kLong);
  const auto cx = (centre * 37 % 97).to(torch::kFloat), cy = (centre * 53 % 89).to(torch::kFloat);
  const auto x = cx + torch::randint(0, spread + 1, {n}).to(torch::kFloat);
  const auto y = cy + torch::randint(0, spread + 1, {n}).to(torch::kFloat);
  auto w = torch::randint(1, max_size + 1, {n}).to(torch::kFloat);
  auto h = torch::randint(1, max_size + 1, {n}).to(torch::kFloat);
  w.masked_fill_(torch::rand({n}) < 0.05, 0);
  h.masked_fill_(torch::rand({n}) < 0.03, 0);
  return {xyxy(x, y, w, h), torch::randint(0, 21, {n}).to(torch::kFloat) / 20,
          torch::randint(0, 5, {n}, torch::kLong)};
}

// Float boxes with distinct scores.
BoxCase uniform(int64_t n, torch::Dtype dtype, uint64_t seed) {
  torch::manual_seed(seed);
  const auto opts = torch::TensorOptions().dtype(dtype);
  const auto x = torch::rand({n}, opts) * 50, y = torch::rand({n}, opts) * 50;
  const auto w = torch::rand({n}, opts) * 25 + 1, h = torch::rand({n}, opts) * 25 + 1;
  return {xyxy(x, y, w, h), torch::rand({n}, opts), torch::randint(0, 3, {n}, torch::kLong)};
}

std::map<std::string, BoxCase> box_cases() {
  std::map<std::string, BoxCase> cases;
  cases["clustered"] = clustered(400, 25, 8, 20, 1);
  cases["dense_grid"] = clustered(300, 3, 4, 4, 2);  // coordinates 0..~100, sizes 1..4: exact IoU ties
  cases["uniform"] = uniform(350, torch::kFloat, 3);
  cases["uniform_double"] = uniform(350, torch::kDouble, 4);
  // IoUs a hair above the thresholds in float64 (0.5 + 1e-12 ...) that float32 would round onto them.
  std::vector<double> near;
  for (double t : kThresholds)
    for (double offset : {-1e-12, 1e-12, 1e-9, -1e-9})
      for (double x : {0.0, 10.0}) near.insert(near.end(), {x, 0, x + 1, 1, x, 0, x + 1, t + offset});
  const int64_t num_near = static_cast<int64_t>(near.size() / 4);
  cases["near_threshold_double"] = {torch::tensor(near, torch::kDouble).view({num_near, 4}),
                                    torch::linspace(1, 0.5, num_near, torch::kDouble),
                                    torch::zeros({num_near}, torch::kLong)};
  cases["identical"] = {torch::tensor({{3.f, 4.f, 10.f, 12.f}}).repeat({40, 1}), torch::full({40}, 0.5f),
                        torch::randint(0, 2, {40}, torch::kLong)};
  return cases;
}

// ---- The reference, run once per test process.

struct Reference {
  std::string skip_reason, error;
  std::map<std::string, BoxCase> cases;
  StateDict out;
};

const Reference& reference() {
  static const std::unique_ptr<Reference> ref = [] {
    auto r = std::make_unique<Reference>();
    r->cases = box_cases();
    r->skip_reason = testing::python_reference_missing(
        "torch, torchvision", "python3-torch python3-torchvision", "the box ops reference tests");
    if (!r->skip_reason.empty()) return r;
    StateDict in;
    for (const auto& [name, c] : r->cases) {
      in[name + ".boxes"] = c.boxes;
      in[name + ".scores"] = c.scores;
      in[name + ".labels"] = c.labels;
      in[name + ".thresholds"] = torch::tensor(kThresholds, torch::kDouble);
    }
    r->out = testing::run_tensor_reference("tests/models/box_ops_reference.py", in, &r->error);
    return r;
  }();
  return *ref;
}


std::vector<int64_t> as_vector(const torch::Tensor& t) {
  const auto c = t.to(torch::kLong).contiguous();
  return std::vector<int64_t>(c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel());
}

TEST(BoxOps, NmsKeepsTorchvisionsIndices) {
  REQUIRE_REFERENCE(ref);
  for (const auto& [name, c] : ref.cases) {
    for (size_t k = 0; k < kThresholds.size(); ++k) {
      SCOPED_TRACE(name + " at IoU " + std::to_string(kThresholds[k]));
      const auto expected = as_vector(ref.out.at(name + ".nms." + std::to_string(k)));
      EXPECT_EQ(as_vector(nms(c.boxes, c.scores, kThresholds[k])), expected);
      EXPECT_GT(expected.size(), 0u);
    }
  }
}

TEST(BoxOps, BatchedNmsKeepsTorchvisionsIndices) {
  REQUIRE_REFERENCE(ref);
  for (const auto& [name, c] : ref.cases) {
    for (size_t k = 0; k < kThresholds.size(); ++k) {
      SCOPED_TRACE(name + " at IoU " + std::to_string(kThresholds[k]));
      const auto expected = as_vector(ref.out.at(name + ".batched." + std::to_string(k)));
      EXPECT_EQ(as_vector(batched_nms(c.boxes, c.scores, c.labels, kThresholds[k])), expected);
      // Per-label NMS keeps more than NMS over all labels.
      EXPECT_GE(static_cast<int64_t>(expected.size()),
                ref.out.at(name + ".nms." + std::to_string(k)).numel());
    }
  }
}

TEST(BoxOps, ThresholdsAndInputsMatter) {
  REQUIRE_REFERENCE(ref);
  // Controls: the kept lists differ between thresholds, and moving the
  // top-scored box changes what NMS keeps.
  const BoxCase& c = ref.cases.at("clustered");
  EXPECT_NE(as_vector(ref.out.at("clustered.nms.0")), as_vector(ref.out.at("clustered.nms.1")));
  EXPECT_NE(as_vector(ref.out.at("clustered.nms.1")), as_vector(ref.out.at("clustered.nms.2")));
  const auto kept = as_vector(ref.out.at("clustered.nms.1"));
  auto moved = c.boxes.clone();
  moved[kept[1]] = c.boxes[kept[0]];  // the second kept box now lies on the first (not zero-area)
  ASSERT_GT(box_iou(c.boxes[kept[0]].unsqueeze(0), c.boxes[kept[0]].unsqueeze(0)).item<float>(), 0.99f);
  const auto moved_kept = as_vector(nms(moved, c.scores, 0.5));
  EXPECT_NE(moved_kept, kept);
  // Identical boxes with equal scores: the first (stable order) suppresses the rest.
  EXPECT_EQ(as_vector(ref.out.at("identical.nms.0")), std::vector<int64_t>{0});
}

TEST(BoxOps, BoxIouMatchesTorchvision) {
  REQUIRE_REFERENCE(ref);
  for (const auto& [name, c] : ref.cases) {
    if (c.boxes.scalar_type() != torch::kFloat) continue;
    SCOPED_TRACE(name);
    const auto expected = ref.out.at(name + ".iou");
    const auto ours = box_iou(c.boxes, c.boxes);
    ASSERT_EQ(ours.sizes(), expected.sizes());
    // Zero-area pairs are 0/0 = NaN in both.
    EXPECT_TRUE(torch::equal(torch::isnan(ours), torch::isnan(expected)));
    const auto finite = ~torch::isnan(expected);
    const double diff =
        (ours.masked_select(finite) - expected.masked_select(finite)).abs().max().item<double>();
    EXPECT_LE(diff, 1e-7);
    std::cout << name << " box_iou max |diff| " << diff << "\n";
    const int64_t n = c.boxes.size(0);
    const auto aligned = aligned_box_iou(c.boxes.slice(0, 0, n - 1), c.boxes.slice(0, 1, n));
    const double aligned_diff = (aligned - ref.out.at(name + ".aligned")).abs().max().item<double>();
    EXPECT_LE(aligned_diff, 1e-7);
  }
}

TEST(BoxOps, EmptyAndSingleInputs) {
  const auto none = torch::zeros({0, 4});
  EXPECT_EQ(nms(none, torch::zeros({0}), 0.5).numel(), 0);
  EXPECT_EQ(batched_nms(none, torch::zeros({0}), torch::zeros({0}, torch::kLong), 0.5).numel(), 0);
  EXPECT_EQ(as_vector(nms(torch::tensor({{0.f, 0.f, 2.f, 2.f}}), torch::tensor({0.3f}), 0.5)),
            std::vector<int64_t>{0});
  EXPECT_THROW(nms(torch::zeros({3, 5}), torch::zeros({3}), 0.5), std::invalid_argument);
  EXPECT_THROW(nms(torch::zeros({3, 4}), torch::zeros({2}), 0.5), std::invalid_argument);
}

}  // namespace
}  // namespace automm
