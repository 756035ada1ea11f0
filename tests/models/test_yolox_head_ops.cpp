// YOLOX's head arithmetic (src/models/detection/yolox_head_ops.cpp) against
// tests/models/yolox_head_ops_reference.py, a plain-torch transcription of
// mmdet 3.x's YOLOXHead (priors, decode, predict_by_feat, loss_by_feat) and
// SimOTAAssigner run by /usr/bin/python3. The head outputs are generated here
// with predictions planted near the ground truth, so that SimOTA has real
// choices to make; the script's priors, boxes, assignments, losses with their
// gradients and detections are read back.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <array>
#include <cmath>
#include <iostream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#ifndef AUTOMM_SOURCE_DIR
#include "automm_test_paths.h"
#endif

#include "automm/weights_io.h"
#include "models/detection/yolox_head_ops.h"
#include "reference_util.h"
#include "test_util.h"

namespace automm {
namespace {

using detection::BoxTargets;
using detection::PostProcessOptions;
using detection::YoloxHeadOutputs;
using testing::TempDir;

constexpr double kTolerance = 1e-5;
const std::vector<int64_t> kStrides = {8, 16, 32};
const std::map<std::string, double> kThresholds = {{"thr001", 0.01}, {"thr030", 0.3}};

double max_abs_diff(const torch::Tensor& a, const torch::Tensor& b) {
  if (a.numel() == 0 && b.numel() == 0) return 0;
  return (a.to(torch::kDouble) - b.to(torch::kDouble)).abs().max().item<double>();
}

struct GroundTruth {
  std::array<float, 4> box;
  int64_t label;
};

struct HeadCase {
  int64_t height = 0, width = 0, classes = 0;
  std::vector<std::vector<GroundTruth>> images;
  YoloxHeadOutputs outputs;
  BoxTargets targets;
};

BoxTargets targets_of(const std::vector<std::vector<GroundTruth>>& images) {
  BoxTargets targets;
  for (const auto& gts : images) {
    auto boxes = torch::zeros({static_cast<int64_t>(gts.size()), 4});
    auto labels = torch::zeros({static_cast<int64_t>(gts.size())}, torch::kLong);
    for (size_t j = 0; j < gts.size(); ++j) {
      for (int k = 0; k < 4; ++k) boxes[j][k] = gts[j].box[k];
      labels[j] = gts[j].label;
    }
    targets.boxes.push_back(boxes);
    targets.labels.push_back(labels);
  }
  return targets;
}

// Random head outputs (mostly low scores, boxes about a cell wide), and near
// each ground truth, on every level, cells whose centre is within 1.6 strides
// of the box centre predict the box (with noise), its class and objectness.
HeadCase make_case(int64_t height, int64_t width, int64_t classes,
                   std::vector<std::vector<GroundTruth>> images, uint64_t seed) {
  torch::manual_seed(seed);
  HeadCase c;
  c.height = height;
  c.width = width;
  c.classes = classes;
  c.images = std::move(images);
  c.targets = targets_of(c.images);
  const int64_t batch = static_cast<int64_t>(c.images.size());
  for (int64_t stride : kStrides) {
    const int64_t h = height / stride, w = width / stride;
    auto cls = torch::randn({batch, classes, h, w}) * 1.5 - 3;
    auto reg = torch::randn({batch, 4, h, w}) * 0.5;
    reg.narrow(1, 0, 2).add_(0.5);
    auto obj = torch::randn({batch, 1, h, w}) * 1.5 - 2.5;
    const auto noise = torch::randn({batch, 6, h, w});
    auto cls_a = cls.accessor<float, 4>(), reg_a = reg.accessor<float, 4>(), obj_a = obj.accessor<float, 4>();
    const auto noise_a = noise.accessor<float, 4>();
    const float s = static_cast<float>(stride);
    for (int64_t i = 0; i < batch; ++i)
      for (const auto& gt : c.images[i]) {
        const float cx = (gt.box[0] + gt.box[2]) / 2, cy = (gt.box[1] + gt.box[3]) / 2;
        const float bw = std::max(gt.box[2] - gt.box[0], 0.5f), bh = std::max(gt.box[3] - gt.box[1], 0.5f);
        for (int64_t r = 0; r < h; ++r)
          for (int64_t col = 0; col < w; ++col) {
            const float px = col * s, py = r * s;
            if (std::abs(px + s / 2 - cx) >= 1.6f * s || std::abs(py + s / 2 - cy) >= 1.6f * s) continue;
            reg_a[i][0][r][col] = (cx - px) / s + 0.15f * noise_a[i][0][r][col];
            reg_a[i][1][r][col] = (cy - py) / s + 0.15f * noise_a[i][1][r][col];
            reg_a[i][2][r][col] = std::log(bw / s) + 0.2f * noise_a[i][2][r][col];
            reg_a[i][3][r][col] = std::log(bh / s) + 0.2f * noise_a[i][3][r][col];
            cls_a[i][gt.label][r][col] = 2 + noise_a[i][4][r][col];
            obj_a[i][0][r][col] = 1.5f + noise_a[i][5][r][col];
          }
      }
    c.outputs.cls.push_back(cls);
    c.outputs.reg.push_back(reg);
    c.outputs.obj.push_back(obj);
  }
  c.outputs.strides = kStrides;
  return c;
}

std::map<std::string, HeadCase> head_cases() {
  std::map<std::string, HeadCase> cases;
  // 64 x 96 input: levels 8x12, 4x6, 2x3 (126 priors). Image 0: overlapping
  // boxes of one class, a tiny box, one larger than the image; image 1: no
  // ground truth; image 2: fractional coordinates, a small box.
  cases["main"] = make_case(64, 96, 4,
                            {{{{10, 8, 40, 36}, 1},
                              {{50, 20, 90, 60}, 2},
                              {{30, 30, 32.5f, 31.5f}, 0},
                              {{-10, -6, 110, 75}, 3},
                              {{12, 10, 38, 34}, 1}},
                             {},
                             {{{60.3f, 4.7f, 80.9f, 22.1f}, 0}, {{5, 40, 45, 63}, 3}, {{70, 45, 76, 52}, 2}}},
                            7);
  // A ground truth no prior can reach (no candidate: all negative) beside an ordinary image.
  cases["unreachable"] =
      make_case(64, 96, 3, {{{{300, 300, 330, 340}, 1}}, {{{20, 16, 52, 48}, 2}, {{60, 8, 70, 30}, 0}}}, 8);
  // No ground truth in the batch: no positives, zero cls / bbox losses.
  cases["no_gt"] = make_case(96, 64, 5, {{}, {}}, 9);
  return cases;
}

// ---- The reference, run once per test process.

struct Reference {
  std::string skip_reason;
  std::string error;
  std::map<std::string, HeadCase> cases;
  StateDict out;
};

const Reference& reference() {
  static const std::unique_ptr<Reference> ref = [] {
    auto r = std::make_unique<Reference>();
    r->cases = head_cases();
    r->skip_reason = testing::python_reference_missing(
        "torch, torchvision", "python3-torch python3-torchvision", "the YOLOX head reference tests");
    if (!r->skip_reason.empty()) return r;
    StateDict in;
    for (const auto& [name, c] : r->cases) {
      in[name + ".num_images"] = torch::tensor({static_cast<int64_t>(c.images.size())}, torch::kLong);
      in[name + ".strides"] = torch::tensor(c.outputs.strides, torch::kLong);
      for (size_t l = 0; l < c.outputs.cls.size(); ++l) {
        in[name + ".cls." + std::to_string(l)] = c.outputs.cls[l];
        in[name + ".reg." + std::to_string(l)] = c.outputs.reg[l];
        in[name + ".obj." + std::to_string(l)] = c.outputs.obj[l];
      }
      for (size_t i = 0; i < c.images.size(); ++i) {
        in[name + ".gt_boxes." + std::to_string(i)] = c.targets.boxes[i];
        in[name + ".gt_labels." + std::to_string(i)] = c.targets.labels[i];
      }
    }
    r->out = testing::run_tensor_reference("tests/models/yolox_head_ops_reference.py", in, &r->error);
    return r;
  }();
  return *ref;
}


const torch::Tensor& output(const Reference& ref, const std::string& name) {
  const auto it = ref.out.find(name);
  if (it == ref.out.end()) throw std::runtime_error("the reference wrote no " + name);
  return it->second;
}

// The head outputs as leaves that record gradients, and them in the order
// the reference lists them (cls, reg, obj; by level).
std::pair<YoloxHeadOutputs, std::vector<torch::Tensor>> with_gradients(const YoloxHeadOutputs& outputs) {
  YoloxHeadOutputs o;
  o.strides = outputs.strides;
  std::vector<torch::Tensor> leaves;
  for (auto* part : {&outputs.cls, &outputs.reg, &outputs.obj}) {
    auto* target = part == &outputs.cls ? &o.cls : part == &outputs.reg ? &o.reg : &o.obj;
    for (const auto& t : *part) {
      target->push_back(t.detach().clone().requires_grad_(true));
      leaves.push_back(target->back());
    }
  }
  return {o, leaves};
}

// ---- Priors, boxes, assignment

TEST(YoloxHeadOps, PriorsAndDecodedBoxesMatchMmdet) {
  REQUIRE_REFERENCE(ref);
  for (const auto& [name, c] : ref.cases) {
    SCOPED_TRACE(name);
    const auto priors = detection::yolox_priors(c.outputs);
    const int64_t n =
        (c.height / 8) * (c.width / 8) + (c.height / 16) * (c.width / 16) + (c.height / 32) * (c.width / 32);
    ASSERT_EQ(priors.sizes(), (std::vector<int64_t>{n, 4}));
    ASSERT_EQ(output(ref, name + ".priors").sizes(), priors.sizes());
    EXPECT_EQ(max_abs_diff(priors, output(ref, name + ".priors")), 0);
    // Row-major per level: the second prior is one stride to the right.
    EXPECT_TRUE(priors[1].equal(torch::tensor({8.f, 0.f, 8.f, 8.f})));
    const auto decoded = detection::yolox_decode(priors, detection::flatten_yolox_outputs(c.outputs).reg);
    const auto& expected = output(ref, name + ".decoded");
    ASSERT_EQ(decoded.sizes(), expected.sizes());
    const double diff = max_abs_diff(decoded, expected);
    std::cout << "[ parity   ] " << name << " decoded boxes max |diff| " << diff << "\n";
    EXPECT_LE(diff, kTolerance);
  }
}

TEST(YoloxHeadOps, SimOtaAssignmentMatchesMmdet) {
  REQUIRE_REFERENCE(ref);
  for (const auto& [name, c] : ref.cases) {
    const auto priors = detection::yolox_priors(c.outputs);
    const auto flat = detection::flatten_yolox_outputs(c.outputs);
    const auto decoded = detection::yolox_decode(priors, flat.reg);
    for (size_t i = 0; i < c.images.size(); ++i) {
      SCOPED_TRACE(name + " image " + std::to_string(i));
      const auto a = detection::simota_assign(priors, flat.cls[i], flat.obj[i], decoded[i],
                                              c.targets.boxes[i], c.targets.labels[i]);
      const auto& gt = output(ref, name + ".assign." + std::to_string(i) + ".gt");
      const auto& iou = output(ref, name + ".assign." + std::to_string(i) + ".iou");
      ASSERT_EQ(a.assigned_gt.sizes(), gt.sizes());
      EXPECT_TRUE(a.assigned_gt.equal(gt)) << "assigned " << a.assigned_gt << "\nmmdet " << gt;
      EXPECT_LE(max_abs_diff(a.max_iou, iou), kTolerance);
      const int64_t positives = (gt >= 0).sum().item<int64_t>();
      std::cout << "[ parity   ] " << name << " image " << i << ": " << positives << " positives\n";
    }
  }
  // The cases exercise SimOTA: several positives per box, conflicts resolved,
  // an unreachable box with none.
  const auto& main_gt = output(ref, "main.assign.0.gt");
  EXPECT_GE((main_gt >= 0).sum().item<int64_t>(), 8);
  EXPECT_GE(std::get<0>(at::_unique(main_gt.masked_select(main_gt >= 0))).numel(), 4);
  EXPECT_EQ((output(ref, "unreachable.assign.0.gt") >= 0).sum().item<int64_t>(), 0);
  EXPECT_GT((output(ref, "unreachable.assign.1.gt") >= 0).sum().item<int64_t>(), 0);
}

// ---- Losses

struct LossRun {
  std::map<std::string, torch::Tensor> values;
  std::map<std::string, std::vector<torch::Tensor>> gradients;  // per loss, as the leaves
};

LossRun run_losses(const HeadCase& c, const BoxTargets& targets, bool use_l1) {
  auto [outputs, leaves] = with_gradients(c.outputs);
  LossRun run;
  run.values = detection::yolox_losses(outputs, targets, use_l1);
  for (const auto& [name, loss] : run.values) {
    auto grads = torch::autograd::grad({loss}, leaves, {}, /*retain_graph=*/true, /*create_graph=*/false,
                                       /*allow_unused=*/true);
    for (size_t k = 0; k < grads.size(); ++k)
      if (!grads[k].defined()) grads[k] = torch::zeros_like(leaves[k]);
    run.gradients[name] = grads;
  }
  return run;
}

TEST(YoloxHeadOps, LossesAndGradientsMatchMmdet) {
  REQUIRE_REFERENCE(ref);
  for (const auto& [name, c] : ref.cases)
    for (const bool use_l1 : {false, true}) {
      const std::string mode = use_l1 ? "l1_on" : "l1_off";
      SCOPED_TRACE(name + " " + mode);
      const auto run = run_losses(c, c.targets, use_l1);
      std::set<std::string> expected_names = {"loss_cls", "loss_bbox", "loss_obj"};
      if (use_l1) expected_names.insert("loss_l1");
      std::set<std::string> names;
      for (const auto& item : run.values) names.insert(item.first);
      EXPECT_EQ(names, expected_names);
      for (const auto& [loss_name, value] : run.values) {
        const std::string key = name + "." + mode + "." + loss_name;
        const double want = output(ref, key)[0].item<double>(), got = value.item<double>();
        EXPECT_NEAR(got, want, kTolerance * std::max(1.0, std::abs(want))) << loss_name;
        double worst = 0;
        const auto& grads = run.gradients.at(loss_name);
        size_t k = 0;
        for (const char* part : {"cls", "reg", "obj"})
          for (size_t l = 0; l < kStrides.size(); ++l, ++k) {
            const auto& expected = output(ref, key + ".grad." + part + "." + std::to_string(l));
            ASSERT_EQ(grads[k].sizes(), expected.sizes());
            worst = std::max(worst, max_abs_diff(grads[k], expected));
          }
        EXPECT_LE(worst, kTolerance) << loss_name << " gradients";
        std::cout << "[ parity   ] " << key << " = " << got << " (mmdet " << want << "), |diff| "
                  << std::abs(got - want) << ", gradients max |diff| " << worst << "\n";
      }
    }
  // No positives anywhere: cls and bbox losses are exactly 0 (kept in the graph).
  EXPECT_EQ(output(ref, "no_gt.l1_off.loss_cls")[0].item<double>(), 0);
  EXPECT_GT(output(ref, "main.l1_off.loss_bbox")[0].item<double>(), 0);
}

TEST(YoloxHeadOps, PerturbedGroundTruthChangesTheLoss) {
  REQUIRE_REFERENCE(ref);
  const auto& c = ref.cases.at("main");
  auto moved = c.targets;
  moved.boxes[0] = moved.boxes[0].clone();
  moved.boxes[0][1] += torch::tensor({3.f, -2.f, 3.f, 2.f});  // shift and shrink one box a few pixels
  const auto run = run_losses(c, moved, /*use_l1=*/true);
  for (const char* loss : {"loss_bbox", "loss_l1"}) {
    const double want = output(ref, std::string("main.l1_on.") + loss)[0].item<double>();
    const double got = run.values.at(loss).item<double>();
    std::cout << "[ control  ] " << loss << " with a moved box " << got << " vs " << want << "\n";
    EXPECT_GT(std::abs(got - want), 100 * kTolerance * std::max(1.0, std::abs(want))) << loss;
  }
}

// ---- Post-processing

TEST(YoloxHeadOps, PostProcessMatchesMmdet) {
  REQUIRE_REFERENCE(ref);
  for (const auto& [name, c] : ref.cases) {
    std::map<std::string, int64_t> totals;
    for (const auto& [tag, threshold] : kThresholds) {
      PostProcessOptions options;
      options.score_threshold = threshold;
      options.nms_iou = 0.65;
      const auto detections = detection::yolox_post_process(c.outputs, options);
      ASSERT_EQ(detections.size(), c.images.size());
      for (size_t i = 0; i < detections.size(); ++i) {
        SCOPED_TRACE(name + " " + tag + " image " + std::to_string(i));
        const std::string prefix = name + ".det." + tag + "." + std::to_string(i) + ".";
        const auto& d = detections[i];
        const auto& boxes = output(ref, prefix + "boxes");
        ASSERT_EQ(d.boxes.size(0), boxes.size(0));
        ASSERT_EQ(d.boxes.dim(), 2);
        EXPECT_LE(max_abs_diff(d.boxes, boxes), kTolerance);
        EXPECT_LE(max_abs_diff(d.scores, output(ref, prefix + "scores")), kTolerance);
        EXPECT_TRUE(d.labels.equal(output(ref, prefix + "labels")));
        EXPECT_EQ(d.labels.scalar_type(), torch::kLong);
        if (d.scores.numel() > 1) {
          EXPECT_TRUE((d.scores.slice(0, 1) <= d.scores.slice(0, 0, -1)).all().item<bool>());
        }
        totals[tag] += d.boxes.size(0);
      }
    }
    std::cout << "[ parity   ] " << name << " detections: " << totals["thr001"] << " at 0.01, "
              << totals["thr030"] << " at 0.3\n";
    if (name == "main") {
      EXPECT_GT(totals["thr030"], 4);
      EXPECT_GT(totals["thr001"], totals["thr030"]);
    }
  }
}

TEST(YoloxHeadOps, MaxPerImageKeepsTheBest) {
  const auto c =
      make_case(64, 96, 3, {{{{10, 8, 40, 36}, 1}, {{50, 20, 90, 60}, 2}, {{5, 40, 45, 63}, 0}}}, 3);
  PostProcessOptions options;
  const auto all = detection::yolox_post_process(c.outputs, options);
  options.max_per_image = 2;
  const auto capped = detection::yolox_post_process(c.outputs, options);
  ASSERT_GT(all[0].boxes.size(0), 2);
  ASSERT_EQ(capped[0].boxes.size(0), 2);
  EXPECT_TRUE(capped[0].boxes.equal(all[0].boxes.slice(0, 0, 2)));
  EXPECT_TRUE(capped[0].scores.equal(all[0].scores.slice(0, 0, 2)));
}

TEST(YoloxHeadOps, RejectsInconsistentInputs) {
  const auto c = make_case(64, 96, 3, {{{{10, 8, 40, 36}, 1}}}, 4);
  auto bad_reg = c.outputs;
  bad_reg.reg[1] = bad_reg.reg[1].narrow(1, 0, 3);
  EXPECT_TRUE(
      testing::Contains(testing::message_of<std::invalid_argument>([&] { detection::yolox_priors(bad_reg); }),
                        "reg must be [B, 4, H, W]"));
  auto missing_stride = c.outputs;
  missing_stride.strides.pop_back();
  EXPECT_TRUE(testing::Contains(
      testing::message_of<std::invalid_argument>([&] { detection::flatten_yolox_outputs(missing_stride); }),
      "one entry per level"));
  auto bad_label = c.targets;
  bad_label.labels[0] = torch::tensor({3}, torch::kLong);
  EXPECT_TRUE(testing::Contains(testing::message_of<std::invalid_argument>(
                                    [&] { detection::yolox_losses(c.outputs, bad_label, false); }),
                                "labels must lie in [0, 3)"));
  BoxTargets too_few;
  EXPECT_TRUE(testing::Contains(
      testing::message_of<std::invalid_argument>([&] { detection::yolox_losses(c.outputs, too_few, false); }),
      "outputs for 1 image(s) but the targets hold 0 box"));
}

}  // namespace
}  // namespace automm
