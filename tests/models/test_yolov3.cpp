// Parity: tests/models/yolov3_reference.py transcribes mmdet 3.x's YOLOv3 with
// the MobileNetV2 backbone (network, YOLOAnchorGenerator, YOLOBBoxCoder,
// GridAssigner, YOLOV3Head's targets, losses and predict_by_feat, mmcv's
// batched_nms). The C++ network loads nothing from it: the Python model loads
// the C++ state_dict strictly (so every name is mmdet's) and both run on the
// same 96 x 128 images: raw outputs in eval and train mode within 1e-4, BN
// statistics after a train-mode forward, losses on those outputs. On fixed raw
// outputs (3 classes, 3 images, one without ground truth, centres on cell
// boundaries, duplicate boxes): target maps, each loss and its gradient within
// 1e-5 (relative), detections for three test_cfg's. Each parity test has a control.
#include <gtest/gtest.h>

#include <cmath>
#include <iostream>

#include "models/detection/yolov3.h"
#include "models/hf_encoder_test_util.h"

namespace automm {
namespace {

using detection::BoxTargets;
using detection::DetectorSpec;
using detection::PostProcessOptions;
using detection::Yolov3DetectorImpl;
using encoder_test::expect_reference_ready;
using encoder_test::ReferenceCase;
using encoder_test::ReferenceRun;
using encoder_test::run_reference;
using nlohmann::json;

constexpr int64_t kClasses = 3;
constexpr int64_t kHeight = 96, kWidth = 128;
constexpr double kTolerance = 1e-4;      // network outputs
constexpr double kHeadTolerance = 1e-5;  // on identical raw outputs (relative for losses)
const std::vector<std::string> kLossNames = {"loss_cls", "loss_conf", "loss_xy", "loss_wh"};
const std::vector<std::string> kBuffersAfterTraining = {
    "backbone.conv2.bn.running_mean", "backbone.conv2.bn.num_batches_tracked",
    "neck.detect3.conv5.bn.running_var", "bbox_head.convs_bridge.0.bn.running_mean"};

DetectorSpec spec_for(int64_t num_classes) {
  DetectorSpec spec;
  spec.name = "yolov3_mobilenetv2_8xb24-320-300e_coco";
  spec.family = "yolov3";
  spec.num_classes = num_classes;
  return spec;
}

// Parameters and buffers by mmdet name.
StateDict full_state(torch::nn::Module& module) {
  StateDict state;
  for (const auto& item : module.named_parameters()) state[item.key()] = item.value().detach().clone();
  for (const auto& item : module.named_buffers()) state[item.key()] = item.value().detach().clone();
  return state;
}

// He-scaled convolutions, BN scales near 1 with shifts and statistics that are
// not the identity, so every layer moves the output.
std::shared_ptr<Yolov3DetectorImpl> random_model(uint64_t seed) {
  torch::manual_seed(seed);
  auto model = std::make_shared<Yolov3DetectorImpl>(spec_for(kClasses));
  torch::NoGradGuard no_grad;
  for (auto& item : model->named_parameters()) {
    auto& p = item.value();
    if (p.dim() == 4)
      p.copy_(torch::randn_like(p) * std::sqrt(2.0 / static_cast<double>(p.numel() / p.size(0))));
    else if (item.key().find("bn.weight") != std::string::npos)
      p.copy_(1.0 + 0.2 * torch::randn_like(p));
    else
      p.copy_(0.1 * torch::randn_like(p));
  }
  for (auto& item : model->named_buffers()) {
    auto& b = item.value();
    if (item.key().find("running_mean") != std::string::npos) b.copy_(0.1 * torch::randn_like(b));
    if (item.key().find("running_var") != std::string::npos) b.copy_(0.6 + 0.8 * torch::rand_like(b));
  }
  return model;
}

torch::Tensor boxes_of(std::vector<float> xyxy) { return torch::tensor(xyxy).view({-1, 4}); }

// Image 0: a box equal to a stride-8 anchor, two boxes centred on (64, 48) (a
// cell corner at every stride), a tiny box, a box near a stride-8 anchor whose
// neighbours are ignored; image 1: none; image 2: two identical boxes of
// different classes and one in a corner cell.
BoxTargets ground_truth() {
  BoxTargets t;
  t.boxes = {boxes_of({32, 10, 56, 46, 34, 18, 94, 78, 100, 70, 104, 73, 0, 0, 128, 96, 10, 50, 82, 92}),
             torch::zeros({0, 4}), boxes_of({40, 40, 60, 52, 40, 40, 60, 52, 96, 0, 128, 32})};
  t.labels = {torch::tensor({0, 2, 1, 1, 2}, torch::kLong), torch::zeros({0}, torch::kLong),
              torch::tensor({0, 1, 2}, torch::kLong)};
  return t;
}

BoxTargets network_ground_truth() {  // images 0 and 2 of ground_truth()
  BoxTargets all = ground_truth(), t;
  t.boxes = {all.boxes[0], all.boxes[2]};
  t.labels = {all.labels[0], all.labels[2]};
  return t;
}

void add_ground_truth(const BoxTargets& t, StateDict& inputs) {
  for (size_t i = 0; i < t.boxes.size(); ++i) {
    inputs["gt_boxes_" + std::to_string(i)] = t.boxes[i];
    inputs["gt_labels_" + std::to_string(i)] = t.labels[i];
  }
}

torch::Tensor images() {
  torch::manual_seed(3);
  return torch::randn({2, 3, kHeight, kWidth});
}

// Raw head outputs for 3 images: levels 3 x 4, 6 x 8, 12 x 16.
std::vector<torch::Tensor> raw_outputs() {
  torch::manual_seed(4);
  std::vector<torch::Tensor> preds;
  for (int64_t stride : detection::kYolov3Strides)
    preds.push_back(2.0 * torch::randn({3, 3 * (5 + kClasses), kHeight / stride, kWidth / stride}));
  return preds;
}

std::vector<PostProcessOptions> option_sets() {
  PostProcessOptions strict = detection::yolov3_test_options();
  strict.score_threshold = 0.3;
  strict.conf_threshold = 0.3;
  strict.nms_iou = 0.6;
  strict.max_per_image = 10;
  strict.nms_pre = 50;
  PostProcessOptions nothing = detection::yolov3_test_options();
  nothing.conf_threshold = 0.99995;
  return {detection::yolov3_test_options(), strict, nothing};
}

json options_json() {
  json list = json::array();
  for (const auto& o : option_sets())
    list.push_back({{"conf_thr", o.conf_threshold},
                    {"score_thr", o.score_threshold},
                    {"nms_pre", o.nms_pre},
                    {"min_bbox_size", 0},
                    {"nms_iou", o.nms_iou},
                    {"max_per_img", o.max_per_image}});
  return list;
}

const ReferenceRun& reference() {
  static ReferenceRun run;
  static const bool done = [] {
    std::map<std::string, ReferenceCase> cases;
    StateDict network_inputs = {{"images", images()}};
    add_ground_truth(network_ground_truth(), network_inputs);
    cases["network"] = {{{"kind", "network"}, {"num_classes", kClasses}, {"buffers", kBuffersAfterTraining}},
                        full_state(*random_model(11)),
                        network_inputs};
    StateDict head_inputs;
    const auto preds = raw_outputs();
    for (size_t l = 0; l < preds.size(); ++l) head_inputs["pred_" + std::to_string(l)] = preds[l];
    add_ground_truth(ground_truth(), head_inputs);
    cases["head"] = {
        {{"kind", "head"}, {"num_classes", kClasses}, {"options", options_json()}}, {}, head_inputs};
    run_reference("yolov3_reference.py", cases, run);
    return true;
  }();
  (void)done;
  return run;
}

double max_diff(const torch::Tensor& a, const torch::Tensor& b, const std::string& what) {
  EXPECT_EQ(a.sizes(), b.sizes()) << what;
  if (a.sizes() != b.sizes()) return 1e9;
  if (a.numel() == 0) return 0;
  return (a.to(torch::kDouble) - b.to(torch::kDouble)).abs().max().item<double>();
}

double relative_diff(const torch::Tensor& a, const torch::Tensor& b) {
  const double expected = b.item<double>();
  return std::abs(a.item<double>() - expected) / std::max(1.0, std::abs(expected));
}

void report(const std::string& what, double diff) {
  std::cout << "[ parity   ] " << what << " max abs diff " << diff << std::endl;
  ::testing::Test::RecordProperty("max_abs_diff_" + what, std::to_string(diff));
}

class Yolov3Parity : public ::testing::Test {
 protected:
  void SetUp() override { expect_reference_ready(reference()); }
  StateDict network() const { return reference().outputs("network"); }
  StateDict head() const { return reference().outputs("head"); }
};

TEST_F(Yolov3Parity, EvalModeRawOutputs) {
  auto model = random_model(11);
  model->eval();
  torch::NoGradGuard no_grad;
  const auto outputs = model->forward(images());
  const auto expected = network();
  ASSERT_EQ(outputs.size(), 3u);
  for (size_t l = 0; l < 3; ++l) {
    const int64_t stride = detection::kYolov3Strides[l];
    EXPECT_EQ(outputs[l].sizes(),
              (std::vector<int64_t>{2, 3 * (5 + kClasses), kHeight / stride, kWidth / stride}));
    const auto& ref = expected.at("eval_" + std::to_string(l));
    EXPECT_GT(ref.abs().max().item<double>(), 0.5) << "the reference computed nothing";
    const double diff = max_diff(outputs[l], ref, "eval level " + std::to_string(l));
    report("eval_" + std::to_string(l), diff);
    EXPECT_LE(diff, kTolerance);
  }
}

TEST_F(Yolov3Parity, TrainModeOutputsLossesAndBatchNormStatistics) {
  auto model = random_model(11);
  model->train();
  const auto outputs = model->forward(images());
  const auto expected = network();
  for (size_t l = 0; l < 3; ++l) {
    const double diff = max_diff(outputs[l], expected.at("train_" + std::to_string(l)), "train level");
    report("train_" + std::to_string(l), diff);
    EXPECT_LE(diff, kTolerance);
  }
  const auto losses = detection::yolov3_losses(outputs, network_ground_truth());
  for (const auto& name : kLossNames) {
    const double diff = relative_diff(losses.at(name), expected.at("train_" + name));
    report("train_" + name + "_relative", diff);
    EXPECT_LE(diff, kTolerance) << name;
  }
  // conv2 ran (its output unused), every BN updated its statistics once.
  const StateDict after = full_state(*model);
  for (const auto& name : kBuffersAfterTraining) {
    const double diff = max_diff(after.at(name), expected.at("after_" + name), name);
    report("after_" + name, diff);
    EXPECT_LE(diff, kTolerance) << name;
  }
  // losses() is the same forward and loss.
  auto again = random_model(11);
  again->train();
  const auto direct = again->losses(images(), network_ground_truth());
  for (const auto& name : kLossNames)
    EXPECT_LE(relative_diff(direct.at(name), losses.at(name)), 1e-6) << name;
}

TEST_F(Yolov3Parity, ControlAPerturbedWeightIsCaught) {
  auto model = random_model(11);
  model->eval();
  torch::NoGradGuard no_grad;
  model->named_parameters()["backbone.layer7.0.linear_conv.bn.bias"].add_(0.05);
  const auto outputs = model->forward(images());
  EXPECT_GT(max_diff(outputs[0], network().at("eval_0"), "control"), 10 * kTolerance);
}

TEST_F(Yolov3Parity, TargetMapsAndNegatives) {
  const auto targets = detection::yolov3_targets(raw_outputs(), ground_truth());
  const auto expected = head();
  double positives = 0;
  for (size_t l = 0; l < 3; ++l) {
    const auto& target = expected.at("target_" + std::to_string(l));
    positives += target.select(2, 4).sum().item<double>();
    const double diff = max_diff(targets.target[l], target, "target level " + std::to_string(l));
    report("target_" + std::to_string(l), diff);
    EXPECT_LE(diff, kHeadTolerance);
    EXPECT_TRUE(torch::equal(targets.negative[l].to(torch::kFloat), expected.at("neg_" + std::to_string(l))));
  }
  EXPECT_GE(positives, 6);  // the ground truth produced positives at several levels
  // The box centred on (64, 48) is assigned in the cell right/below of the corner:
  // at stride 16 that is cell (4, 3), priors (3 * 8 + 4) * 3 + a.
  const auto stride16 = targets.target[1][0];
  EXPECT_GT(stride16.slice(0, 84, 87).select(1, 4).sum().item<double>(), 0);
  // Image 1 has no ground truth: no positives, everything negative.
  for (size_t l = 0; l < 3; ++l) {
    EXPECT_EQ(targets.target[l][1].select(1, 4).sum().item<double>(), 0);
    EXPECT_TRUE(targets.negative[l][1].all().item<bool>());
  }
}

TEST_F(Yolov3Parity, LossesAndTheirGradients) {
  auto preds = raw_outputs();
  for (auto& p : preds) p.requires_grad_(true);
  const auto losses = detection::yolov3_losses(preds, ground_truth());
  const auto expected = head();
  for (const auto& name : kLossNames) {
    EXPECT_GT(expected.at(name).item<double>(), 0.1) << name;
    const double diff = relative_diff(losses.at(name), expected.at(name));
    report(name + "_relative", diff);
    EXPECT_LE(diff, kHeadTolerance) << name << ": " << losses.at(name).item<double>() << " vs "
                                    << expected.at(name).item<double>();
  }
  (losses.at("loss_cls") + 2 * losses.at("loss_conf") + 3 * losses.at("loss_xy") + 4 * losses.at("loss_wh"))
      .backward();
  for (size_t l = 0; l < 3; ++l) {
    const double diff = max_diff(preds[l].grad(), expected.at("grad_" + std::to_string(l)), "gradient");
    report("grad_" + std::to_string(l), diff);
    EXPECT_LE(diff, kHeadTolerance);
  }
  // Control: a ground-truth box moved by 3 pixels changes the box losses.
  BoxTargets moved = ground_truth();
  moved.boxes[0] = moved.boxes[0].clone();
  moved.boxes[0][4].add_(3.0);
  const auto changed = detection::yolov3_losses(raw_outputs(), moved);
  EXPECT_GT(relative_diff(changed.at("loss_xy"), expected.at("loss_xy")), 100 * kHeadTolerance);
}

TEST_F(Yolov3Parity, DetectionsForThreeTestConfigs) {
  const auto expected = head();
  const auto sets = option_sets();
  int64_t total = 0;
  for (size_t k = 0; k < sets.size(); ++k) {
    const auto detections = detection::yolov3_post_process(raw_outputs(), sets[k]);
    ASSERT_EQ(detections.size(), 3u);
    for (size_t i = 0; i < detections.size(); ++i) {
      const std::string key = std::to_string(k) + "_", image = "_" + std::to_string(i);
      const auto& d = detections[i];
      ASSERT_EQ(d.labels.size(0), expected.at("det" + key + "labels" + image).size(0))
          << "set " << k << " image " << i;
      EXPECT_TRUE(torch::equal(d.labels, expected.at("det" + key + "labels" + image)));
      const double box_diff = max_diff(d.boxes, expected.at("det" + key + "boxes" + image), "boxes");
      const double score_diff = max_diff(d.scores, expected.at("det" + key + "scores" + image), "scores");
      EXPECT_LE(box_diff, kHeadTolerance);
      EXPECT_LE(score_diff, kHeadTolerance);
      if (i == 0) report("detections_set" + std::to_string(k) + "_boxes", box_diff);
      total += d.labels.size(0);
      if (k == 1) {
        EXPECT_LE(d.labels.size(0), 10);  // max_per_img
      }
    }
  }
  EXPECT_GT(total, 100);
  EXPECT_EQ(expected.at("det0_labels_0").size(0), 100);  // the cap binds with mmdet's test_cfg
  // Control: one changed objectness logit changes the first image's detections.
  auto preds = raw_outputs();
  preds[2][0][4].add_(1.0);  // anchor 0's objectness over the stride-8 grid
  const auto changed = detection::yolov3_post_process(preds, sets[0])[0];
  EXPECT_FALSE(changed.scores.sizes() == expected.at("det0_scores_0").sizes() &&
               torch::allclose(changed.scores, expected.at("det0_scores_0"), 0, kHeadTolerance));
}

TEST_F(Yolov3Parity, ParameterCountOfTheEightyClassModel) {
  const int64_t expected = network().at("num_parameters").item<int64_t>();
  Yolov3DetectorImpl model(spec_for(80));
  int64_t count = 0;
  for (const auto& p : model.parameters()) count += p.numel();
  EXPECT_EQ(count, expected);
  EXPECT_EQ(count, 3737693);  // mmdet's ~3.74M
}

TEST(Yolov3Detector, MmdetNamesAndHeadPatterns) {
  Yolov3DetectorImpl model(spec_for(kClasses));
  const StateDict state = full_state(model);
  for (const char* name :
       {"backbone.conv1.conv.weight", "backbone.conv1.bn.num_batches_tracked",
        "backbone.layer1.0.depthwise_conv.conv.weight", "backbone.layer1.0.linear_conv.bn.running_var",
        "backbone.layer2.0.expand_conv.conv.weight", "backbone.layer7.0.linear_conv.conv.weight",
        "backbone.conv2.conv.weight", "neck.detect1.conv5.bn.bias", "neck.conv1.conv.weight",
        "neck.detect3.conv1.conv.weight", "bbox_head.convs_bridge.2.bn.weight",
        "bbox_head.convs_pred.0.weight", "bbox_head.convs_pred.2.bias"})
    EXPECT_EQ(state.count(name), 1u) << name;
  EXPECT_EQ(state.count("backbone.layer1.0.expand_conv.conv.weight"), 0u);  // expand ratio 1
  EXPECT_EQ(state.at("backbone.layer2.0.expand_conv.conv.weight").sizes(),
            (std::vector<int64_t>{96, 16, 1, 1}));
  EXPECT_EQ(state.at("neck.detect3.conv1.conv.weight").sizes(), (std::vector<int64_t>{96, 128, 1, 1}));
  EXPECT_EQ(state.at("bbox_head.convs_pred.1.weight").sizes(), (std::vector<int64_t>{24, 96, 1, 1}));
  EXPECT_EQ(model.head_patterns(), std::vector<std::string>{"bbox_head.convs_pred"});
  EXPECT_EQ(model.class_dependent_parameters(), std::vector<std::string>{"bbox_head.convs_pred"});
}

TEST(Yolov3Detector, AnchorsFollowTheGrid) {
  const auto anchors = detection::yolov3_grid_anchors(2, 2, 3);  // stride 8, 2 x 3 cells
  ASSERT_EQ(anchors.sizes(), (std::vector<int64_t>{18, 4}));
  // Cell (x 1, y 1) is prior (1 * 3 + 1) * 3 + a; anchor 2 is (72, 42) around (12, 12).
  EXPECT_TRUE(torch::equal(anchors[14], torch::tensor({12.f - 36, 12.f - 21, 12.f + 36, 12.f + 21})));
  // Decoding zero deltas (tx = ty = 0.5 after the sigmoid) returns the anchor.
  auto deltas = torch::zeros({18, 4});
  deltas.slice(1, 0, 2).fill_(0.5);
  EXPECT_TRUE(torch::allclose(detection::yolov3_decode(anchors, deltas, torch::tensor(8.f)), anchors));
}

TEST(Yolov3Detector, RejectsBadInputsWithActionableMessages) {
  Yolov3DetectorImpl model(spec_for(kClasses));
  model.eval();
  auto message = testing::error_of([&] {
    model.detect(torch::zeros({1, 3, 96, 100}), detection::yolov3_test_options());
  });
  EXPECT_TRUE(testing::Contains(message, "multiples of 32")) << message;
  BoxTargets targets;
  targets.boxes = {boxes_of({0, 0, 10, 10})};
  targets.labels = {torch::tensor({3}, torch::kLong)};
  message = testing::error_of([&] { detection::yolov3_losses(raw_outputs(), targets); });
  EXPECT_TRUE(testing::Contains(message, "images")) << message;  // 3 images, 1 box set
  const auto one = std::vector<torch::Tensor>{
      raw_outputs()[0].slice(0, 0, 1), raw_outputs()[1].slice(0, 0, 1), raw_outputs()[2].slice(0, 0, 1)};
  message = testing::error_of([&] { detection::yolov3_losses(one, targets); });
  EXPECT_TRUE(testing::Contains(message, "[0, 3)")) << message;
  targets.labels = {torch::tensor({0}, torch::kLong)};
  targets.boxes = {boxes_of({120, 0, 140, 10})};  // centre x 130 > 128
  message = testing::error_of([&] { detection::yolov3_losses(one, targets); });
  EXPECT_TRUE(testing::Contains(message, "outside")) << message;
}

}  // namespace
}  // namespace automm
