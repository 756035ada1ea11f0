// Parity: tests/models/yolox_reference.py transcribes mmdet's CSPDarknet,
// CSPLayer, YOLOXPAFPN and YOLOXHead layers in plain torch.nn with mmdet's
// module names, loads the C++ state_dict (parameters and BN buffers) strictly,
// and returns the head's raw cls / reg / obj maps per level; the C++ network
// must match within 1e-4 at small widths (plain, depthwise as yolox_nano, and
// deepen 0.5, where Python's round(4.5) == 4 sets the block counts), in eval
// mode and once in train mode (batch statistics and the running-stat update).
// The real yolox_nano / tiny / s load strictly too, with mmdet's parameter
// counts. Also: mmdet names, AutoMM's head patterns, the prior bias.
#include <gtest/gtest.h>

#include <cmath>
#include <iostream>

#include "models/detection/yolox.h"
#include "models/hf_encoder_test_util.h"

namespace automm {
namespace {

using detection::DetectorSpec;
using detection::YoloxDetectorImpl;
using detection::YoloxHeadOutputs;
using encoder_test::expect_reference_ready;
using encoder_test::ReferenceCase;
using encoder_test::ReferenceRun;
using encoder_test::run_reference;
using nlohmann::json;

constexpr double kTolerance = 1e-4;

struct ParityCase {
  DetectorSpec spec;
  bool forward = true;  // false: a real variant, strict load and parameter count only
  bool train = false;
};

DetectorSpec make_spec(double deepen, double widen, bool depthwise, int64_t neck_channels,
                       int64_t num_classes) {
  DetectorSpec spec;
  spec.family = "yolox";
  spec.deepen = deepen;
  spec.widen = widen;
  spec.depthwise = depthwise;
  spec.neck_channels = neck_channels;
  spec.num_classes = num_classes;
  return spec;
}

const std::map<std::string, ParityCase>& parity_cases() {
  static const std::map<std::string, ParityCase> cases = {
      // yolox_s's layout at widen 0.125 (stem 8 channels, neck in 32/64/128).
      {"small_plain", {make_spec(0.33, 0.125, false, 32, 5)}},
      // yolox_nano's layout: depthwise-separable 3x3 convs.
      {"small_depthwise", {make_spec(0.33, 0.125, true, 16, 3)}},
      // deepen 0.5: stage blocks round(1.5) = 2, round(4.5) = 4, 4, 2; neck 2.
      {"small_deepen_half", {make_spec(0.5, 0.125, false, 24, 4)}},
      {"small_plain_train", {make_spec(0.33, 0.125, false, 32, 5), true, true}},
      // AutoMM's variants as the registry builds them, 80 classes.
      {"yolox_nano", {detection::detector_spec("yolox_nano", 80), false}},
      {"yolox_tiny", {detection::detector_spec("yolox_tiny", 80), false}},
      {"yolox_s", {detection::detector_spec("yolox_s", 80), false}},
  };
  return cases;
}

// Parameters and buffers (running stats, num_batches_tracked) by name.
StateDict full_state(torch::nn::Module& module) {
  StateDict state;
  for (const auto& item : module.named_parameters()) state[item.key()] = item.value().detach().clone();
  for (const auto& item : module.named_buffers()) state[item.key()] = item.value().detach().clone();
  return state;
}

bool ends_with(const std::string& text, const std::string& tail) {
  return text.size() >= tail.size() && text.compare(text.size() - tail.size(), tail.size(), tail) == 0;
}

torch::Tensor case_images(uint64_t seed) {
  torch::manual_seed(seed);
  return torch::randn({2, 3, 96, 128});
}

// Conv weights 1 / sqrt(fan_in), BN scales near 1, biases ~0.1. BN running
// stats: the batch statistics of one train-mode pass over 8 other images (so
// features keep their scale and spatial variation through the 30-odd layers;
// uncalibrated stats flatten them), then shifted by ~0.05 std and scaled by
// [0.9, 1.1), num_batches_tracked 7.
void randomize(YoloxDetectorImpl& module) {
  torch::NoGradGuard no_grad;
  for (auto& item : module.named_parameters()) {
    auto& p = item.value();
    if (p.dim() > 1)
      p.copy_(torch::randn_like(p) / std::sqrt(static_cast<double>(p.numel() / p.size(0))));
    else if (ends_with(item.key(), "bn.weight"))
      p.copy_(1.0 + 0.2 * torch::randn_like(p));
    else
      p.copy_(0.1 * torch::randn_like(p));
  }
  std::vector<torch::nn::BatchNorm2dImpl*> norms;
  for (const auto& child : module.modules())
    if (auto* bn = child->as<torch::nn::BatchNorm2d>()) norms.push_back(bn);
  for (auto* bn : norms) bn->options.momentum(1.0);
  module.train();
  torch::manual_seed(3);
  module.forward(torch::randn({8, 3, 96, 128}));
  for (auto* bn : norms) {
    bn->options.momentum(0.03);
    bn->running_mean.add_(0.05 * bn->running_var.sqrt() * torch::randn_like(bn->running_mean));
    bn->running_var.mul_(0.9 + 0.2 * torch::rand_like(bn->running_var));
    bn->num_batches_tracked.fill_(7);
  }
}

std::shared_ptr<YoloxDetectorImpl> random_model(const ParityCase& item, uint64_t seed) {
  torch::manual_seed(seed);
  auto model = std::make_shared<YoloxDetectorImpl>(item.spec);
  if (item.forward)
    randomize(*model);  // the real variants keep their init: only names and shapes are checked
  return model;
}

const ReferenceRun& reference() {
  static ReferenceRun run;
  static const bool done = [] {
    std::map<std::string, ReferenceCase> cases;
    for (const auto& [name, item] : parity_cases()) {
      const DetectorSpec& s = item.spec;
      json config = {{"deepen", s.deepen},           {"widen", s.widen},
                     {"depthwise", s.depthwise},     {"neck_channels", s.neck_channels},
                     {"num_classes", s.num_classes}, {"forward", item.forward},
                     {"train", item.train}};
      StateDict inputs = {{"images", item.forward ? case_images(5) : torch::zeros({1})}};
      cases[name] = {config, full_state(*random_model(item, 11)), inputs};
    }
    run_reference("yolox_reference.py", cases, run);
    return true;
  }();
  (void)done;
  return run;
}

double max_diff(const torch::Tensor& a, const torch::Tensor& b, const std::string& what) {
  EXPECT_EQ(a.sizes(), b.sizes()) << what;
  if (a.sizes() != b.sizes()) return 1e9;
  return (a.to(torch::kDouble) - b.to(torch::kDouble)).abs().max().item<double>();
}

// Max abs difference of every head output against the reference's.
double head_diff(const YoloxHeadOutputs& out, const StateDict& expected) {
  double worst = 0;
  for (size_t level = 0; level < 3; ++level) {
    const std::string l = std::to_string(level);
    EXPECT_GT(expected.at("cls_" + l).abs().max().item<double>(), 0.1) << "the reference computed nothing";
    worst = std::max(worst, max_diff(out.cls[level], expected.at("cls_" + l), "cls_" + l));
    worst = std::max(worst, max_diff(out.reg[level], expected.at("reg_" + l), "reg_" + l));
    worst = std::max(worst, max_diff(out.obj[level], expected.at("obj_" + l), "obj_" + l));
  }
  return worst;
}

class YoloxParity : public ::testing::Test {
 protected:
  void SetUp() override { expect_reference_ready(reference()); }

  void expect_parity(const std::string& name) {
    const ParityCase& item = parity_cases().at(name);
    auto model = random_model(item, 11);
    model->train(item.train);
    torch::NoGradGuard no_grad;
    const auto out = model->forward(case_images(5));
    const StateDict expected = reference().outputs(name);
    ASSERT_EQ(out.strides, (std::vector<int64_t>{8, 16, 32}));
    ASSERT_EQ(out.cls[0].sizes(), (std::vector<int64_t>{2, item.spec.num_classes, 12, 16}));
    const double diff = head_diff(out, expected);
    std::cout << "[ parity   ] " << name << ": head outputs max abs diff " << diff << " (cls_0 std "
              << expected.at("cls_0").std().item<double>() << ")\n";
    EXPECT_LE(diff, kTolerance) << name;
    if (!item.train) return;
    double buffers = 0;
    for (const auto& entry : model->named_buffers()) {
      const torch::Tensor& theirs = expected.at("state." + entry.key());
      if (entry.value().scalar_type() == torch::kLong)
        EXPECT_TRUE(torch::equal(entry.value(), theirs)) << entry.key();  // 7 + 1
      else
        buffers = std::max(buffers, max_diff(entry.value(), theirs, entry.key()));
    }
    std::cout << "[ parity   ] " << name << ": running stats after the update max abs diff " << buffers
              << "\n";
    EXPECT_LE(buffers, kTolerance);
  }
};

TEST_F(YoloxParity, PlainConvsLikeYoloxS) { expect_parity("small_plain"); }

TEST_F(YoloxParity, DepthwiseSeparableLikeYoloxNano) { expect_parity("small_depthwise"); }

TEST_F(YoloxParity, DeepenHalfRoundsBlockCountsHalfToEven) {
  auto model = random_model(parity_cases().at("small_deepen_half"), 11);
  auto state = full_state(*model);
  EXPECT_EQ(state.count("backbone.stage2.1.blocks.3.conv1.conv.weight"), 1u);
  EXPECT_EQ(state.count("backbone.stage2.1.blocks.4.conv1.conv.weight"), 0u);  // round(4.5) == 4
  EXPECT_EQ(state.count("backbone.stage1.1.blocks.1.conv1.conv.weight"), 1u);  // round(1.5) == 2
  EXPECT_EQ(state.count("neck.top_down_blocks.0.blocks.1.conv2.conv.weight"), 1u);
  expect_parity("small_deepen_half");
}

TEST_F(YoloxParity, TrainModeUsesBatchStatisticsAndUpdatesRunningStats) {
  expect_parity("small_plain_train");
}

// The control: a slightly changed weight moves the outputs far past the tolerance.
TEST_F(YoloxParity, ControlAPerturbedWeightIsCaught) {
  auto model = random_model(parity_cases().at("small_plain"), 11);
  model->eval();
  torch::NoGradGuard no_grad;
  model->named_parameters()["backbone.stage2.1.blocks.0.conv1.conv.weight"].add_(0.05);
  const double diff = head_diff(model->forward(case_images(5)), reference().outputs("small_plain"));
  std::cout << "[ control  ] perturbed weight: max abs diff " << diff << "\n";
  EXPECT_GT(diff, 100 * kTolerance);
}

// yolox_nano / tiny / s: the C++ state_dict loads strictly into the reference
// (same names, shapes, buffers) and the parameter counts are mmdet's.
TEST_F(YoloxParity, RealVariantsLoadStrictlyWithMmdetsParameterCounts) {
  const std::map<std::string, int64_t> known = {
      {"yolox_nano", 912159}, {"yolox_tiny", 5055855}, {"yolox_s", 8968255}};
  for (const auto& [name, count] : known) {
    auto model = random_model(parity_cases().at(name), 11);
    int64_t ours = 0;
    for (const auto& p : model->parameters()) ours += p.numel();
    EXPECT_EQ(ours, count) << name;
    EXPECT_EQ(reference().outputs(name).at("num_parameters").item<int64_t>(), count) << name;
  }
}

TEST(Yolox, MmdetParameterNames) {
  auto state = full_state(*random_model(parity_cases().at("yolox_nano"), 1));
  for (const std::string name :
       {"backbone.stem.conv.conv.weight", "backbone.stage1.0.depthwise_conv.conv.weight",
        "backbone.stage1.0.pointwise_conv.bn.running_var", "backbone.stage1.1.main_conv.conv.weight",
        "backbone.stage1.1.blocks.0.conv1.conv.weight",
        "backbone.stage1.1.blocks.0.conv2.depthwise_conv.conv.weight", "backbone.stage4.1.conv1.conv.weight",
        "backbone.stage4.1.conv2.bn.num_batches_tracked", "backbone.stage4.2.final_conv.conv.weight",
        "neck.reduce_layers.0.conv.weight", "neck.top_down_blocks.1.short_conv.bn.weight",
        "neck.downsamples.0.depthwise_conv.conv.weight",
        "neck.bottom_up_blocks.1.blocks.0.conv2.pointwise_conv.conv.weight", "neck.out_convs.2.conv.weight",
        "bbox_head.multi_level_cls_convs.0.0.depthwise_conv.conv.weight",
        "bbox_head.multi_level_reg_convs.2.1.pointwise_conv.bn.bias",
        "bbox_head.multi_level_conv_cls.0.weight", "bbox_head.multi_level_conv_reg.1.bias",
        "bbox_head.multi_level_conv_obj.2.weight"})
    EXPECT_EQ(state.count(name), 1u) << name;
  EXPECT_EQ(state.at("bbox_head.multi_level_conv_cls.0.weight").sizes(),
            (std::vector<int64_t>{80, 64, 1, 1}));
  auto plain = full_state(*random_model(parity_cases().at("yolox_s"), 1));
  EXPECT_EQ(plain.count("backbone.stage1.0.conv.weight"), 1u);
  EXPECT_EQ(plain.count("bbox_head.multi_level_cls_convs.0.1.conv.weight"), 1u);
}

// AutoMM's registered patterns, substring-matched against YOLOX's parameter
// names, pick exactly the 1x1 predictors: head_patterns() gives that set.
TEST(Yolox, HeadPatternsMatchWhatAutoMMMatches) {
  auto model = random_model(parity_cases().at("small_plain"), 1);
  const std::vector<std::string> automm = {"bbox_head.fc_cls",
                                           "bbox_head.fc_reg",
                                           "bbox_head.convs_pred",
                                           "bbox_head.cls_branches",
                                           "bbox_head.multi_level_conv_cls",
                                           "bbox_head.multi_level_conv_reg",
                                           "bbox_head.multi_level_conv_obj",
                                           "bbox_head.vfnet_cls",
                                           "bbox_head.heatmap_head",
                                           "bbox_head.atss_cls",
                                           "bbox_head.cls_convs"};
  auto matches = [](const std::string& name, const std::vector<std::string>& patterns) {
    for (const auto& p : patterns)
      if (name.find(p) != std::string::npos) return true;
    return false;
  };
  int head = 0, class_dependent = 0;
  for (const auto& item : model->named_parameters()) {
    const std::string name = "model." + item.key();  // AutoMM's wrapper prefix
    EXPECT_EQ(matches(name, automm), matches(name, model->head_patterns())) << name;
    head += matches(name, model->head_patterns());
    class_dependent += matches(item.key(), model->class_dependent_parameters());
  }
  EXPECT_EQ(head, 18);            // 3 predictors x 3 levels x (weight, bias)
  EXPECT_EQ(class_dependent, 6);  // conv_cls x 3 levels x (weight, bias)
}

TEST(Yolox, PriorBiasOnClsAndObjOnly) {
  auto model = random_model(parity_cases().at("small_plain"), 1);
  model->init_prior_bias();
  const double prior = -std::log(99.0);
  for (const auto& item : model->named_parameters()) {
    const std::string& name = item.key();
    if (!ends_with(name, "bias") || name.find("bbox_head.multi_level_conv_") == std::string::npos) continue;
    const bool expected =
        name.find("conv_cls") != std::string::npos || name.find("conv_obj") != std::string::npos;
    EXPECT_EQ(torch::allclose(item.value(), torch::full_like(item.value(), prior)), expected) << name;
  }
  auto fresh = std::make_shared<YoloxDetectorImpl>(make_spec(0.33, 0.125, false, 32, 5));
  EXPECT_NEAR(fresh->bbox_head->conv_obj[1]->bias.item<double>(), -4.59512, 1e-5);  // set by the constructor
}

// losses() and detect() hand the head outputs to yolox_head_ops; the losses'
// gradient reaches the stem.
TEST(Yolox, LossesAndDetectionsFromTheHeadOutputs) {
  auto model = random_model(parity_cases().at("small_plain"), 1);
  model->train();
  detection::BoxTargets targets;
  targets.boxes = {torch::tensor({{10.0f, 20.0f, 60.0f, 70.0f}}), torch::zeros({0, 4})};
  targets.labels = {torch::tensor({2}, torch::kLong), torch::zeros({0}, torch::kLong)};
  const auto losses = model->losses(case_images(5), targets);
  for (const std::string name : {"loss_cls", "loss_bbox", "loss_obj"}) {
    ASSERT_EQ(losses.count(name), 1u) << name;
    EXPECT_TRUE(std::isfinite(losses.at(name).item<double>())) << name;
  }
  (losses.at("loss_cls") + losses.at("loss_bbox") + losses.at("loss_obj")).backward();
  EXPECT_GT(model->backbone->stem->conv->conv->weight.grad().abs().sum().item<double>(), 0.0);
  model->eval();
  torch::NoGradGuard no_grad;
  const auto detections = model->detect(case_images(5), detection::PostProcessOptions());
  ASSERT_EQ(detections.size(), 2u);
  EXPECT_EQ(detections[0].boxes.size(1), 4);
}

TEST(Yolox, RejectsImagesNotPaddedTo32) {
  auto model = random_model(parity_cases().at("small_plain"), 1);
  model->eval();
  torch::NoGradGuard no_grad;
  auto message = testing::error_of([&] { model->forward(torch::zeros({1, 3, 96, 100})); });
  EXPECT_NE(message.find("multiples of 32"), std::string::npos) << message;
  message = testing::error_of([&] { model->forward(torch::zeros({1, 1, 64, 64})); });
  EXPECT_NE(message.find("[batch, 3, height, width]"), std::string::npos) << message;
}

TEST(Yolox, PythonRoundIsHalfToEven) {
  EXPECT_EQ(detection::python_round(0.99), 1);
  EXPECT_EQ(detection::python_round(1.5), 2);
  EXPECT_EQ(detection::python_round(2.5), 2);
  EXPECT_EQ(detection::python_round(4.5), 4);
  EXPECT_EQ(detection::python_round(11.97), 12);
}

}  // namespace
}  // namespace automm
