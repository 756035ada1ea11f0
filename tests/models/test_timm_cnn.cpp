// Tests of timm's ResNet, ConvNeXt and MobileNetV3 (src/models/image/resnet.cpp,
// convnext.cpp, mobilenetv3.cpp). Parity: tests/models/torchvision_to_timm.py,
// run by /usr/bin/python3 with Debian's torchvision 0.14, builds torchvision's
// resnet18 / resnet50 / convnext_tiny / mobilenet_v3_large with random weights
// and non-trivial normalization statistics, renames the state dict to timm's
// names and writes it with an input batch, torchvision's pre-logit features
// and logits; each model here loads the weights with load_timm_state_dict and
// must reproduce both in fp32 within 1e-4.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <map>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#ifndef AUTOMM_SOURCE_DIR
#include "automm_test_paths.h"
#endif

#include "learners/trainer.h"
#include "automm/weights_io.h"
#include "test_util.h"
#include "models/image/image_encoder.h"

namespace automm {
namespace {

using testing::contains;
using testing::error_of;

constexpr double kParityTolerance = 1e-4;

double max_abs_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kDouble) - b.to(torch::kDouble)).abs().max().item<double>();
}

// Parameter and buffer names, as torch's state_dict() lists them.
std::set<std::string> state_names(torch::nn::Module& module) {
  std::set<std::string> names;
  for (const auto& item : module.named_parameters()) names.insert(item.key());
  for (const auto& item : module.named_buffers()) names.insert(item.key());
  return names;
}

// --- torchvision reference data ----------------------------------------------------------

struct Reference {
  StateDict weights;  // timm names
  StateDict io;       // images [2, 3, 64, 64], features [2, num_features], logits [2, 1000]
  std::string skip_reason;  // non-empty: /usr/bin/python3 lacks torch or torchvision
  std::string error;        // non-empty: the script failed
};

const Reference& reference(const std::string& torchvision_name) {
  static std::map<std::string, Reference> cache;
  auto found = cache.find(torchvision_name);
  if (found != cache.end()) return found->second;
  Reference& result = cache[torchvision_name];
  result.skip_reason =
      testing::python_reference_missing("torch, torchvision", "python3-torchvision", "the timm CNN parity tests");
  if (!result.skip_reason.empty()) return result;
  std::random_device device;
  const auto dir = std::filesystem::temp_directory_path() /
                   ("automm_timm_cnn_" + torchvision_name + "_" + std::to_string(device()));
  std::filesystem::create_directories(dir);
  const std::string command = "/usr/bin/python3 '" + std::string(AUTOMM_SOURCE_DIR) +
                              "/tests/models/torchvision_to_timm.py' " + torchvision_name + " '" + dir.string() + "'";
  result.error = testing::run_reference_command(command, (dir / "reference.log").string());
  if (result.error.empty()) {
    try {
      result.weights = load_safetensors((dir / "weights.safetensors").string());
      result.io = load_safetensors((dir / "io.safetensors").string());
    } catch (const std::exception& e) {
      result.error = std::string("reading the reference failed: ") + e.what();
    }
  }
  std::error_code ignored;
  std::filesystem::remove_all(dir, ignored);
  return result;
}

std::shared_ptr<ImageEncoderImpl> make(const ImageModelFamily& family, const std::string& name,
                                       int64_t num_classes) {
  torch::manual_seed(5);
  return family.at(name).make(num_classes);
}

// Loads torchvision's weights (timm names) and compares features and logits in eval mode.
void expect_parity(const ImageModelFamily& family, const std::string& timm_name,
                   const std::string& torchvision_name, const std::string& sensitive_key) {
  const auto& ref = reference(torchvision_name);
  if (!ref.skip_reason.empty()) GTEST_SKIP() << ref.skip_reason;
  ASSERT_TRUE(ref.error.empty()) << ref.error;
  auto model = make(family, timm_name, 1000);
  model->load_timm_state_dict(ref.weights);
  model->eval();
  torch::NoGradGuard no_grad;
  const auto& images = ref.io.at("images");
  auto features = model->forward_features(images);
  auto logits = model->forward(images);
  ASSERT_EQ(features.sizes(), ref.io.at("features").sizes());
  ASSERT_EQ(features.size(1), model->num_features());
  ASSERT_EQ(logits.sizes(), ref.io.at("logits").sizes());
  const double feature_diff = max_abs_diff(features, ref.io.at("features"));
  const double logit_diff = max_abs_diff(logits, ref.io.at("logits"));
  std::cout << "[ parity   ] " << timm_name << " vs torchvision " << torchvision_name
            << ": max |diff| features " << feature_diff << ", logits " << logit_diff << " (max |logit| "
            << ref.io.at("logits").abs().max().item<double>() << ")\n";
  EXPECT_LE(feature_diff, kParityTolerance);
  EXPECT_LE(logit_diff, kParityTolerance);

  // Negative control: doubling one late tensor (a running_var: the buffers are
  // really used; ConvNeXt's layer scale) moves the logits well past the tolerance.
  auto perturbed = ref.weights;
  perturbed.at(sensitive_key) = 2.0 * perturbed.at(sensitive_key);
  model->load_timm_state_dict(perturbed);
  EXPECT_GT(max_abs_diff(model->forward(images), ref.io.at("logits")), 100 * kParityTolerance)
      << sensitive_key;
}

// num_classes = 0: no classifier tensors, a full checkpoint still loads (its
// classifier ignored), forward_features unchanged, forward refuses.
void expect_headless(const ImageModelFamily& family, const std::string& timm_name,
                     const std::string& torchvision_name, const std::string& classifier_prefix) {
  const auto& ref = reference(torchvision_name);
  if (!ref.skip_reason.empty()) GTEST_SKIP() << ref.skip_reason;
  ASSERT_TRUE(ref.error.empty()) << ref.error;
  auto model = make(family, timm_name, 0);
  for (const auto& name : state_names(*model)) EXPECT_NE(name.rfind(classifier_prefix, 0), 0u) << name;
  ASSERT_TRUE(ref.weights.count(classifier_prefix + "weight"));
  model->load_timm_state_dict(ref.weights);
  model->eval();
  torch::NoGradGuard no_grad;
  const auto& images = ref.io.at("images");
  EXPECT_LE(max_abs_diff(model->forward_features(images), ref.io.at("features")), kParityTolerance);
  const std::string error = error_of([&] { model->forward(images); });
  EXPECT_TRUE(contains(error, timm_name) && contains(error, "num_classes = 0") &&
              contains(error, "forward_features"))
      << error;
}

// Train mode, loaded weights: the loss reaches every parameter.
void expect_backward_reaches_all(const ImageModelFamily& family, const std::string& timm_name,
                                 const std::string& torchvision_name) {
  const auto& ref = reference(torchvision_name);
  if (!ref.skip_reason.empty()) GTEST_SKIP() << ref.skip_reason;
  ASSERT_TRUE(ref.error.empty()) << ref.error;
  auto model = make(family, timm_name, 1000);
  model->load_timm_state_dict(ref.weights);
  model->train();
  model->forward(ref.io.at("images")).square().mean().backward();
  int64_t checked = 0;
  for (const auto& item : model->named_parameters()) {
    const auto& grad = item.value().grad();
    ASSERT_TRUE(grad.defined()) << item.key() << " got no gradient";
    EXPECT_GT(grad.abs().sum().item<double>(), 0.0) << item.key() << " has an all-zero gradient";
    EXPECT_TRUE(torch::isfinite(grad).all().item<bool>()) << item.key();
    ++checked;
  }
  EXPECT_GT(checked, 0);
}

// --- parity ------------------------------------------------------------------------------------

TEST(TimmResNetParity, ResNet18MatchesTorchvision) {
  expect_parity(resnet_models(), "resnet18", "resnet18", "layer4.1.bn2.running_var");
}
TEST(TimmResNetParity, ResNet50MatchesTorchvision) {
  expect_parity(resnet_models(), "resnet50", "resnet50", "layer4.2.bn3.running_var");
}
TEST(TimmConvNeXtParity, TinyMatchesTorchvision) {
  expect_parity(convnext_models(), "convnext_tiny", "convnext_tiny", "stages.3.blocks.2.gamma");
}
TEST(TimmMobileNetV3Parity, Large100MatchesTorchvision) {
  expect_parity(mobilenetv3_models(), "mobilenetv3_large_100", "mobilenet_v3_large",
                "blocks.5.2.bn3.running_var");
}

// --- without a classifier ------------------------------------------------------------------

TEST(TimmResNet, NoClassifierIgnoresCheckpointClassifier) {
  expect_headless(resnet_models(), "resnet50", "resnet50", "fc.");
}
TEST(TimmConvNeXt, NoClassifierIgnoresCheckpointClassifier) {
  expect_headless(convnext_models(), "convnext_tiny", "convnext_tiny", "head.fc.");
}
TEST(TimmMobileNetV3, NoClassifierIgnoresCheckpointClassifier) {
  expect_headless(mobilenetv3_models(), "mobilenetv3_large_100", "mobilenet_v3_large", "classifier.");
}

// --- gradients -------------------------------------------------------------------------------

TEST(TimmResNet, BackwardReachesEveryParameter) {
  expect_backward_reaches_all(resnet_models(), "resnet50", "resnet50");
}
TEST(TimmConvNeXt, BackwardReachesEveryParameter) {
  expect_backward_reaches_all(convnext_models(), "convnext_tiny", "convnext_tiny");
}
TEST(TimmMobileNetV3, BackwardReachesEveryParameter) {
  expect_backward_reaches_all(mobilenetv3_models(), "mobilenetv3_large_100", "mobilenet_v3_large");
}

// --- names and loading -------------------------------------------------------------------------

// timm resnet18's state_dict() keys, from resnet.py: conv1 / bn1 stem, BasicBlocks
// (conv1 bn1 conv2 bn2), downsample_conv (Sequential: 0 conv, 1 BatchNorm) on
// the first block of layers 2-4, fc.
std::set<std::string> timm_resnet18_keys() {
  std::vector<std::string> convs = {"conv1"}, norms = {"bn1"};
  for (int layer = 1; layer <= 4; ++layer) {
    for (int block = 0; block < 2; ++block) {
      const std::string prefix = "layer" + std::to_string(layer) + "." + std::to_string(block) + ".";
      convs.insert(convs.end(), {prefix + "conv1", prefix + "conv2"});
      norms.insert(norms.end(), {prefix + "bn1", prefix + "bn2"});
      if (layer > 1 && block == 0) {
        convs.push_back(prefix + "downsample.0");
        norms.push_back(prefix + "downsample.1");
      }
    }
  }
  std::set<std::string> keys = {"fc.weight", "fc.bias"};
  for (const auto& conv : convs) keys.insert(conv + ".weight");
  for (const auto& norm : norms) {
    for (const char* field : {"weight", "bias", "running_mean", "running_var", "num_batches_tracked"}) {
      keys.insert(norm + "." + field);
    }
  }
  return keys;
}

// env.precision bf16-mixed (the CPU default) and bf16-true: every CNN runs under
// bf16 autocast and with bf16 weights, close to its fp32 logits. ConvNeXt's
// channels-last norms once failed here: torch 1.13's layer_norm rejects a bf16
// input with fp32 weights.
TEST(TimmCnnPrecision, EveryModelRunsUnderBf16AutocastAndInBf16) {
  for (const std::string name : {"resnet18", "convnext_tiny", "mobilenetv3_large_100"}) {
    SCOPED_TRACE(name);
    torch::manual_seed(0);
    auto model = make_image_encoder(name, 5);
    model->eval();
    torch::NoGradGuard no_grad;
    const auto images = torch::randn({2, 3, 64, 64});
    const auto fp32 = model->forward(images);
    Placement mixed;
    mixed.autocast = true;
    torch::Tensor autocast_logits;
    const std::string message = error_of([&] {
      AutocastScope autocast(mixed);
      autocast_logits = model->forward(images);
    });
    ASSERT_TRUE(message.empty()) << message;
    const double scale = fp32.abs().max().item<double>() + 1e-6;
    EXPECT_LT(max_abs_diff(autocast_logits.to(torch::kFloat32), fp32), 0.1 * scale + 0.05);
    model->to(torch::kBFloat16);
    const auto bf16 = model->forward(images.to(torch::kBFloat16));
    EXPECT_LT(max_abs_diff(bf16.to(torch::kFloat32), fp32), 0.1 * scale + 0.05);
  }
}

TEST(TimmResNet, ResNet18NamesAreTimms) {
  auto model = make(resnet_models(), "resnet18", 1000);
  const auto expected = timm_resnet18_keys();
  ASSERT_EQ(expected.size(), 122u);  // torchvision's resnet18 state dict has 122 entries too
  EXPECT_EQ(state_names(*model), expected);
  auto headless = make(resnet_models(), "resnet18", 0);
  auto without_fc = expected;
  without_fc.erase("fc.weight");
  without_fc.erase("fc.bias");
  EXPECT_EQ(state_names(*headless), without_fc);
}

TEST(TimmResNet, LoaderListsMissingAndUnexpectedAndLoadsNothing) {
  const auto& ref = reference("resnet18");
  if (!ref.skip_reason.empty()) GTEST_SKIP() << ref.skip_reason;
  ASSERT_TRUE(ref.error.empty()) << ref.error;
  auto model = make(resnet_models(), "resnet18", 1000);
  const auto before = model->named_parameters()["conv1.weight"].clone();
  const auto running_before = model->named_buffers()["bn1.running_var"].clone();

  auto weights = ref.weights;
  weights.erase("layer1.0.bn1.running_mean");  // a buffer is required too
  weights.erase("layer3.1.conv2.weight");
  weights["layer1.0.bn9.weight"] = torch::ones({64});  // not timm's
  weights.erase("layer2.0.bn1.num_batches_tracked");   // optional: ignored either way
  const std::string error = error_of([&] { model->load_timm_state_dict(weights); });
  EXPECT_TRUE(contains(error, "load_timm_state_dict")) << error;
  EXPECT_TRUE(contains(error, "resnet18")) << error;
  EXPECT_TRUE(contains(error, "missing 2 tensor(s)")) << error;
  EXPECT_TRUE(contains(error, "layer1.0.bn1.running_mean")) << error;
  EXPECT_TRUE(contains(error, "layer3.1.conv2.weight")) << error;
  EXPECT_TRUE(contains(error, "unexpected 1 tensor(s): layer1.0.bn9.weight")) << error;
  EXPECT_FALSE(contains(error, "num_batches_tracked")) << error;
  EXPECT_TRUE(torch::equal(model->named_parameters()["conv1.weight"], before));  // all or nothing
  EXPECT_TRUE(torch::equal(model->named_buffers()["bn1.running_var"], running_before));

  // A classifier of another width is a shape error naming the tensor, not a silent partial load.
  auto ten_classes = make(resnet_models(), "resnet18", 10);
  const std::string shape_error = error_of([&] { ten_classes->load_timm_state_dict(ref.weights); });
  EXPECT_TRUE(contains(shape_error, "shape mismatch for 'fc.") && contains(shape_error, "[1000"))
      << shape_error;

  // Without num_batches_tracked at all (e.g. converted checkpoints) it loads.
  auto stripped = ref.weights;
  for (auto it = stripped.begin(); it != stripped.end();) {
    it = contains(it->first, "num_batches_tracked") ? stripped.erase(it) : std::next(it);
  }
  EXPECT_NO_THROW(model->load_timm_state_dict(stripped));
  EXPECT_TRUE(torch::equal(model->named_buffers()["bn1.running_var"], ref.weights.at("bn1.running_var")));
}

// Train mode updates the running statistics with momentum 0.1 and the unbiased
// batch variance (torch's BatchNorm); eval mode leaves them alone.
TEST(TimmResNet, TrainModeBatchNormUpdatesRunningStats) {
  const auto& ref = reference("resnet18");
  if (!ref.skip_reason.empty()) GTEST_SKIP() << ref.skip_reason;
  ASSERT_TRUE(ref.error.empty()) << ref.error;
  auto model = make(resnet_models(), "resnet18", 1000);
  model->load_timm_state_dict(ref.weights);
  const auto& images = ref.io.at("images");
  auto buffers = model->named_buffers();
  const auto mean_before = buffers["bn1.running_mean"].clone();
  const auto var_before = buffers["bn1.running_var"].clone();
  const auto deep_before = buffers["layer4.1.bn2.running_mean"].clone();
  ASSERT_EQ(buffers["bn1.num_batches_tracked"].item<int64_t>(), 0);  // the checkpoint's count is ignored

  {
    torch::NoGradGuard no_grad;
    model->eval();
    model->forward(images);
    EXPECT_TRUE(torch::equal(buffers["bn1.running_mean"], mean_before));
    model->train();
    model->forward(images);
  }
  EXPECT_EQ(buffers["bn1.num_batches_tracked"].item<int64_t>(), 1);
  EXPECT_FALSE(torch::allclose(buffers["layer4.1.bn2.running_mean"], deep_before));

  const auto stem = torch::conv2d(images, ref.weights.at("conv1.weight"), {}, /*stride=*/2, /*padding=*/3);
  const auto batch_mean = stem.mean({0, 2, 3});
  const auto batch_var = stem.var({0, 2, 3}, /*unbiased=*/true);
  EXPECT_LE(max_abs_diff(buffers["bn1.running_mean"], 0.9 * mean_before + 0.1 * batch_mean), 1e-5);
  EXPECT_LE(max_abs_diff(buffers["bn1.running_var"], 0.9 * var_before + 0.1 * batch_var), 1e-4);
}

// --- registries ------------------------------------------------------------------------------

int64_t parameter_count(torch::nn::Module& module) {
  int64_t count = 0;
  for (const auto& p : module.parameters()) count += p.numel();
  return count;
}

// Parameter counts with the 1000-class classifier equal torchvision's (the same
// architectures), checked for the sizes the parity tests do not build.
TEST(TimmCnnRegistry, EveryModelBuildsWithTorchvisionsParameterCount) {
  const std::map<std::string, int64_t> expected = {
      {"resnet18", 11689512},       {"resnet34", 21797672},      {"resnet50", 25557032},
      {"resnet101", 44549160},      {"resnet152", 60192808},     {"convnext_tiny", 28589128},
      {"convnext_small", 50223688}, {"convnext_base", 88591464}, {"mobilenetv3_large_100", 5483032},
  };
  std::map<std::string, int64_t> features = {{"resnet18", 512},
                                             {"resnet34", 512},
                                             {"convnext_base", 1024},
                                             {"resnet152", 2048},
                                             {"mobilenetv3_large_100", 1280}};
  std::set<std::string> names;
  for (auto family : {&resnet_models, &convnext_models, &mobilenetv3_models}) {
    for (const auto& [name, entry] : family()) {
      names.insert(name);
      auto model = entry.make(1000);
      EXPECT_EQ(parameter_count(*model), expected.at(name)) << name;
      if (features.count(name)) {
        EXPECT_EQ(model->num_features(), features[name]) << name;
      }
    }
  }
  EXPECT_EQ(names.size(), expected.size());
}

TEST(TimmCnnRegistry, PretrainedCfgOfDefaultTags) {
  const auto resnet = resnet_models().at("resnet50").info;  // resnet50.a1_in1k
  EXPECT_EQ(resnet.image_size, 224);
  EXPECT_DOUBLE_EQ(resnet.crop_pct, 0.95);
  EXPECT_EQ(resnet.interpolation, "bicubic");
  EXPECT_DOUBLE_EQ(resnet.mean[0], 0.485);
  EXPECT_DOUBLE_EQ(resnet.std[2], 0.225);
  EXPECT_DOUBLE_EQ(convnext_models().at("convnext_tiny").info.crop_pct, 0.95);   // in12k_ft_in1k
  EXPECT_DOUBLE_EQ(convnext_models().at("convnext_base").info.crop_pct, 0.875);  // fb_in22k_ft_in1k
  const auto mobilenet = mobilenetv3_models().at("mobilenetv3_large_100").info;  // ra_in1k
  EXPECT_DOUBLE_EQ(mobilenet.crop_pct, 0.875);
  EXPECT_EQ(mobilenet.interpolation, "bicubic");
}

TEST(TimmCnnRegistry, NegativeNumClassesIsRejected) {
  const std::string error = error_of([] { resnet_models().at("resnet18").make(-1); });
  EXPECT_TRUE(contains(error, "resnet18") && contains(error, "num_classes")) << error;
}

}  // namespace
}  // namespace automm
