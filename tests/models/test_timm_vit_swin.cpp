// Tests of timm's VisionTransformer and SwinTransformer (src/models/image/vit.cpp,
// swin.cpp). Parity: tests/models/torchvision_to_timm_vit_swin.py, run once by
// /usr/bin/python3, randomizes torchvision 0.14's vit_b_32 and swin_t, runs them
// and writes their weights under timm's names with images, logits and pre-logits
// features; the models here load those weights through load_timm_state_dict and
// must reproduce the logits. Expected parameter names and counts are written from
// timm's source (vision_transformer.py, swin_transformer.py, timm 0.9).
#include <ATen/autocast_mode.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#ifndef AUTOMM_SOURCE_DIR
#include "automm_test_paths.h"
#endif

#include "automm/weights_io.h"
#include "test_util.h"
#include "models/image/image_encoder.h"

namespace automm {
namespace {

using testing::contains;
using testing::error_of;

constexpr double kParityTolerance = 1e-4;
const std::string kVit = "vit_base_patch32_224";
const std::string kSwin = "swin_tiny_patch4_window7_224";

double max_abs_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kFloat) - b.to(torch::kFloat)).abs().max().item<double>();
}

std::shared_ptr<ImageEncoderImpl> make(const std::string& name, int64_t num_classes) {
  auto family = contains(name, "swin") ? swin_models() : vit_models();
  return family.at(name).make(num_classes);
}

// The reference script's outputs, produced once per test binary; the folder is
// removed at exit.
struct TorchvisionReference {
  std::filesystem::path dir;
  std::string skip_reason;  // non-empty: /usr/bin/python3 lacks torch or torchvision
  std::string error;        // non-empty: the script failed

  ~TorchvisionReference() {
    std::error_code ignored;
    if (!dir.empty()) std::filesystem::remove_all(dir, ignored);
  }
  // Read once per model (the ViT-B/32 weights are 350 MB); callers copy the map to edit it.
  const StateDict& weights(const std::string& name) const { return cached(name, "weights"); }
  const StateDict& io(const std::string& name) const { return cached(name, "io"); }

  static const TorchvisionReference& get() {
    static TorchvisionReference reference = [] {
      TorchvisionReference run;
      run.skip_reason = testing::python_reference_missing("torch, numpy, torchvision", "python3-torchvision",
                                                          "the torchvision parity tests");
      if (!run.skip_reason.empty()) return run;
      std::random_device device;
      run.dir = std::filesystem::temp_directory_path() / ("automm_timm_vit_swin_" + std::to_string(device()));
      std::filesystem::create_directories(run.dir);
      const std::string command = "/usr/bin/python3 '" + std::string(AUTOMM_SOURCE_DIR) +
                                  "/tests/models/torchvision_to_timm_vit_swin.py' '" + run.dir.string() + "'";
      run.error = testing::run_reference_command(command, (run.dir / "reference.log").string());
      return run;
    }();
    return reference;
  }

 private:
  const StateDict& cached(const std::string& name, const std::string& file) const {
    auto& tensors = cache_[name + "/" + file];
    if (tensors.empty()) tensors = load_safetensors((dir / name / (file + ".safetensors")).string());
    return tensors;
  }
  mutable std::map<std::string, StateDict> cache_;
};

#define REQUIRE_REFERENCE(reference)                                         \
  const auto& reference = TorchvisionReference::get();                       \
  if (!reference.skip_reason.empty()) GTEST_SKIP() << reference.skip_reason; \
  ASSERT_TRUE(reference.error.empty()) << reference.error

// A model with torchvision's weights, built and loaded once per binary.
std::shared_ptr<ImageEncoderImpl> reference_model(const std::string& name) {
  static std::map<std::string, std::shared_ptr<ImageEncoderImpl>> cache;
  auto& model = cache[name];
  if (!model) {
    model = make(name, 1000);
    model->load_timm_state_dict(TorchvisionReference::get().weights(name));
    model->eval();
  }
  return model;
}

void expect_matches_torchvision(const std::string& name) {
  REQUIRE_REFERENCE(reference);
  auto model = reference_model(name);
  const auto& io = reference.io(name);
  torch::NoGradGuard no_grad;
  const auto features = model->forward_features(io.at("images"));
  const auto logits = model->forward(io.at("images"));
  ASSERT_EQ(logits.sizes(), io.at("logits").sizes());
  const double logits_diff = max_abs_diff(logits, io.at("logits"));
  const double features_diff = max_abs_diff(features, io.at("features"));
  std::cout << "[ parity   ] " << name << " vs torchvision: max |logits diff| " << logits_diff
            << ", max |features diff| " << features_diff << " (|logits| up to "
            << io.at("logits").abs().max().item<double>() << ")\n";
  EXPECT_LE(logits_diff, kParityTolerance);
  EXPECT_LE(features_diff, kParityTolerance);
}

struct ExpectedParameter {
  std::string name;
  std::vector<int64_t> shape;
};

// Checks names and shapes from timm's source, names timm does not have, and the
// total parameter count timm reports for the model with its 1000-class head.
void expect_timm_parameters(const std::string& model_name, int64_t expected_count,
                            const std::vector<ExpectedParameter>& expected,
                            const std::vector<std::string>& absent) {
  auto model = make(model_name, 1000);
  const auto params = model->named_parameters();
  int64_t count = 0;
  for (const auto& item : params) count += item.value().numel();
  EXPECT_EQ(count, expected_count) << model_name;
  for (const auto& item : expected) {
    ASSERT_TRUE(params.contains(item.name)) << model_name << " lacks timm's " << item.name;
    EXPECT_EQ(params[item.name].sizes(), c10::IntArrayRef(item.shape)) << model_name << " " << item.name;
  }
  for (const auto& name : absent) EXPECT_FALSE(params.contains(name)) << model_name << " has " << name;
}

// Gradients of a fixed loss of the logits reach every parameter.
void expect_backward_reaches_every_parameter(const std::string& name) {
  torch::manual_seed(0);
  auto model = make(name, 10);
  model->train();
  auto logits = model->forward(torch::randn({1, 3, 224, 224}));
  (logits.pow(2).mean() + logits.sum()).backward();
  for (const auto& item : model->named_parameters()) {
    ASSERT_TRUE(item.value().grad().defined()) << name << ": no gradient reaches " << item.key();
    EXPECT_GT(item.value().grad().abs().sum().item<double>(), 0.0) << name << " " << item.key();
  }
}

// Under CPU bf16 autocast the forward runs (norms in fp32 weight dtype) and stays
// near the fp32 logits.
void expect_bf16_autocast_runs(const std::string& name) {
  REQUIRE_REFERENCE(reference);
  auto model = reference_model(name);
  const auto images = reference.io(name).at("images");
  torch::NoGradGuard no_grad;
  const auto fp32 = model->forward(images);
  const bool was_enabled = at::autocast::is_cpu_enabled();
  const auto previous_dtype = at::autocast::get_autocast_cpu_dtype();
  at::autocast::set_cpu_enabled(true);
  at::autocast::set_autocast_cpu_dtype(at::kBFloat16);
  torch::Tensor bf16;
  const std::string message = error_of([&] { bf16 = model->forward(images); });
  at::autocast::set_cpu_enabled(was_enabled);
  at::autocast::set_autocast_cpu_dtype(previous_dtype);
  at::autocast::clear_cache();
  ASSERT_EQ(message, "") << name << " under bf16 autocast";
  ASSERT_EQ(bf16.sizes(), fp32.sizes());
  EXPECT_TRUE(torch::isfinite(bf16).all().item<bool>());
  const double diff = max_abs_diff(bf16, fp32), scale = fp32.abs().max().item<double>();
  std::cout << "[ bf16     ] " << name << ": max |bf16 - fp32| logits " << diff << " of " << scale << "\n";
  EXPECT_LE(diff, 0.25 * scale);
}

// num_classes = 0: no classifier tensors, forward() refuses, the full checkpoint
// loads with its head skipped and the pooled features match torchvision's.
void expect_headless_model(const std::string& name, int64_t num_features) {
  REQUIRE_REFERENCE(reference);
  auto model = make(name, 0);
  for (const auto& item : model->named_parameters()) {
    EXPECT_FALSE(item.key().rfind("head", 0) == 0) << name << " keeps " << item.key();
  }
  EXPECT_EQ(model->num_features(), num_features);
  const auto& io = reference.io(name);
  EXPECT_TRUE(contains(error_of([&] { model->forward(io.at("images")); }), "num_classes = 0"));
  ASSERT_EQ(error_of([&] { model->load_timm_state_dict(reference.weights(name)); }), "");
  model->eval();
  torch::NoGradGuard no_grad;
  const auto features = model->forward_features(io.at("images"));
  ASSERT_EQ(features.sizes(), c10::IntArrayRef({2, num_features}));
  EXPECT_LE(max_abs_diff(features, io.at("features")), kParityTolerance);
}

// A checkpoint missing one tensor and carrying one unknown tensor is refused with
// both named, and nothing is copied; a wrong shape is named too.
void expect_load_lists_mismatches(const std::string& name, const std::string& dropped,
                                  const std::string& extra) {
  REQUIRE_REFERENCE(reference);
  StateDict weights = reference.weights(name);
  ASSERT_EQ(weights.count(dropped), 1u);
  weights.erase(dropped);
  weights[extra] = torch::zeros({3});
  auto model = make(name, 1000);
  const auto before = model->named_parameters()["norm.weight"].clone();
  const std::string message = error_of([&] { model->load_timm_state_dict(weights); });
  EXPECT_TRUE(contains(message, "missing 1 tensor(s): " + dropped)) << message;
  EXPECT_TRUE(contains(message, "unexpected 1 tensor(s): " + extra)) << message;
  EXPECT_TRUE(contains(message, name)) << message;
  EXPECT_TRUE(torch::equal(model->named_parameters()["norm.weight"], before))
      << "a failed load copied tensors";

  StateDict wrong_shape = reference.weights(name);
  wrong_shape["norm.weight"] = torch::ones({5});
  const std::string shape_message = error_of([&] { model->load_timm_state_dict(wrong_shape); });
  EXPECT_TRUE(contains(shape_message, "shape mismatch for 'norm.weight'")) << shape_message;
}

// --- ViT --------------------------------------------------------------------------------

TEST(TimmViTFamily, ListsTimmNamesWithTheirPretrainedCfg) {
  const auto family = vit_models();
  for (const char* name :
       {"vit_base_patch32_224", "vit_base_patch16_224", "vit_small_patch16_224", "vit_tiny_patch16_224"}) {
    ASSERT_EQ(family.count(name), 1u) << name;
    const auto& info = family.at(name).info;
    EXPECT_EQ(info.image_size, 224);
    EXPECT_EQ(info.mean, (std::array<double, 3>{0.5, 0.5, 0.5})) << name;  // IMAGENET_INCEPTION_MEAN
    EXPECT_EQ(info.std, (std::array<double, 3>{0.5, 0.5, 0.5})) << name;
    EXPECT_DOUBLE_EQ(info.crop_pct, 0.9);
    EXPECT_EQ(info.interpolation, "bicubic");
  }
}

TEST(TimmViTNames, FollowTimmVisionTransformer) {
  // Counts: timm's (and torchvision's vit_b_32 / vit_b_16) parameter totals with a 1000-class head.
  expect_timm_parameters(
      "vit_base_patch32_224", 88224232,
      {{"cls_token", {1, 1, 768}},
       {"pos_embed", {1, 50, 768}},
       {"patch_embed.proj.weight", {768, 3, 32, 32}},
       {"patch_embed.proj.bias", {768}},
       {"blocks.0.norm1.weight", {768}},
       {"blocks.11.attn.qkv.weight", {2304, 768}},
       {"blocks.11.attn.qkv.bias", {2304}},
       {"blocks.5.attn.proj.weight", {768, 768}},
       {"blocks.0.norm2.bias", {768}},
       {"blocks.0.mlp.fc1.weight", {3072, 768}},
       {"blocks.0.mlp.fc2.weight", {768, 3072}},
       {"norm.weight", {768}},
       {"head.weight", {1000, 768}},
       {"head.bias", {1000}}},
      {"fc_norm.weight", "blocks.12.norm1.weight", "patch_embed.norm.weight", "head.fc.weight"});
  expect_timm_parameters("vit_base_patch16_224", 86567656,
                         {{"pos_embed", {1, 197, 768}}, {"patch_embed.proj.weight", {768, 3, 16, 16}}}, {});
  expect_timm_parameters("vit_small_patch16_224", 22050664,
                         {{"pos_embed", {1, 197, 384}},
                          {"blocks.11.attn.qkv.weight", {1152, 384}},
                          {"head.weight", {1000, 384}}},
                         {});
  expect_timm_parameters("vit_tiny_patch16_224", 5717416,
                         {{"cls_token", {1, 1, 192}}, {"blocks.3.mlp.fc1.weight", {768, 192}}}, {});
}

TEST(TimmViTParity, MatchesTorchvisionVitB32) { expect_matches_torchvision(kVit); }

TEST(TimmViTHeadless, NumClassesZeroDropsHead) { expect_headless_model(kVit, 768); }

TEST(TimmViTLoad, ListsMissingAndUnexpectedTensors) {
  expect_load_lists_mismatches(kVit, "blocks.3.mlp.fc1.bias", "blocks.99.attn.qkv.weight");
}

TEST(TimmViTLoad, ResamplesPosEmbedOfAnotherGrid) {
  REQUIRE_REFERENCE(reference);
  StateDict weights = reference.weights(kVit);
  const auto& io = reference.io(kVit);
  weights["pos_embed"] = io.at("pos_embed_10x10");  // a 320 x 320 checkpoint's grid
  auto model = make(kVit, 1000);
  ASSERT_EQ(error_of([&] { model->load_timm_state_dict(weights); }), "");
  const auto pos_embed = model->named_parameters()["pos_embed"];
  ASSERT_EQ(pos_embed.sizes(), c10::IntArrayRef({1, 50, 768}));
  EXPECT_LE(max_abs_diff(pos_embed, io.at("pos_embed_10x10_as_7x7")), 1e-5);

  weights["pos_embed"] = torch::zeros({1, 1 + 45, 768});  // not a square grid
  EXPECT_TRUE(contains(error_of([&] { model->load_timm_state_dict(weights); }), "square grid"));
}

TEST(TimmViTInput, OtherImageSizesResamplePosEmbedAndBadSizesThrow) {
  torch::manual_seed(0);
  auto model = make("vit_tiny_patch16_224", 10);
  model->eval();
  torch::NoGradGuard no_grad;
  const auto features = model->forward_features(torch::randn({2, 3, 160, 192}));  // a 10 x 12 grid
  EXPECT_EQ(features.sizes(), c10::IntArrayRef({2, 192}));
  EXPECT_TRUE(torch::isfinite(features).all().item<bool>());
  EXPECT_TRUE(contains(error_of([&] {
                         model->forward(torch::randn({1, 3, 150, 160}));
                       }),
                       "multiple of the patch"));
  EXPECT_TRUE(contains(error_of([&] {
                         model->forward(torch::randn({3, 224, 224}));
                       }),
                       "[batch, 3, height, width]"));
  EXPECT_TRUE(contains(error_of([&] { make("vit_tiny_patch16_224", -1); }), "num_classes"));
}

TEST(TimmViTTraining, BackwardReachesEveryParameter) {
  expect_backward_reaches_every_parameter("vit_tiny_patch16_224");
}

TEST(TimmViTAutocast, Bf16ForwardRuns) { expect_bf16_autocast_runs(kVit); }

// --- Swin -------------------------------------------------------------------------------

TEST(TimmSwinFamily, ListsTimmNamesWithTheirPretrainedCfg) {
  const auto family = swin_models();
  for (const char* name :
       {"swin_base_patch4_window7_224", "swin_small_patch4_window7_224", "swin_tiny_patch4_window7_224"}) {
    ASSERT_EQ(family.count(name), 1u) << name;
    const auto& info = family.at(name).info;
    EXPECT_EQ(info.image_size, 224);
    EXPECT_EQ(info.mean, (std::array<double, 3>{0.485, 0.456, 0.406})) << name;  // IMAGENET_DEFAULT_MEAN
    EXPECT_EQ(info.std, (std::array<double, 3>{0.229, 0.224, 0.225})) << name;
    EXPECT_DOUBLE_EQ(info.crop_pct, 0.9);
    EXPECT_EQ(info.interpolation, "bicubic");
  }
}

TEST(TimmSwinNames, FollowTimmSwinTransformer) {
  // Counts: timm's (and torchvision's swin_t / swin_s / swin_b) totals with a 1000-class head.
  expect_timm_parameters(
      "swin_tiny_patch4_window7_224", 28288354,
      {{"patch_embed.proj.weight", {96, 3, 4, 4}},
       {"patch_embed.norm.weight", {96}},
       {"layers.0.blocks.1.attn.relative_position_bias_table", {169, 3}},
       {"layers.0.blocks.0.attn.qkv.weight", {288, 96}},
       {"layers.1.downsample.norm.weight", {384}},
       {"layers.1.downsample.reduction.weight", {192, 384}},
       {"layers.2.blocks.5.mlp.fc1.weight", {1536, 384}},
       {"layers.3.downsample.reduction.weight", {768, 1536}},
       {"layers.3.blocks.1.attn.proj.bias", {768}},
       {"layers.3.blocks.1.norm2.weight", {768}},
       {"norm.weight", {768}},
       {"head.fc.weight", {1000, 768}},
       {"head.fc.bias", {1000}}},
      {"layers.0.downsample.norm.weight", "layers.0.downsample.reduction.weight",
       "layers.1.downsample.reduction.bias", "head.weight", "layers.2.blocks.6.norm1.weight"});
  expect_timm_parameters("swin_small_patch4_window7_224", 49606258,
                         {{"layers.2.blocks.17.mlp.fc2.weight", {384, 1536}}},
                         {"layers.2.blocks.18.norm1.weight"});
  expect_timm_parameters("swin_base_patch4_window7_224", 87768224,
                         {{"patch_embed.proj.weight", {128, 3, 4, 4}},
                          {"layers.2.blocks.17.attn.relative_position_bias_table", {169, 16}},
                          {"layers.3.downsample.reduction.weight", {1024, 2048}},
                          {"head.fc.weight", {1000, 1024}}},
                         {});
}

TEST(TimmSwinNames, BuffersFollowTimmAndTheLastStageDoesNotShift) {
  auto model = make(kSwin, 0);
  const auto buffers = model->named_buffers();
  ASSERT_TRUE(buffers.contains("layers.0.blocks.0.attn.relative_position_index"));
  EXPECT_EQ(buffers["layers.0.blocks.0.attn.relative_position_index"].sizes(), c10::IntArrayRef({49, 49}));
  ASSERT_TRUE(buffers.contains("layers.0.blocks.1.attn_mask"));
  EXPECT_EQ(buffers["layers.0.blocks.1.attn_mask"].sizes(), c10::IntArrayRef({64, 49, 49}));  // 8 x 8 windows
  EXPECT_FALSE(buffers.contains("layers.0.blocks.0.attn_mask"));  // even blocks do not shift
  EXPECT_FALSE(buffers.contains("layers.3.blocks.1.attn_mask"));  // a 7 x 7 map is one window

  // libtorch's Module::to(dtype), unlike torch's, also converts the integer index buffer.
  model->to(torch::kDouble);
  torch::NoGradGuard no_grad;
  EXPECT_EQ(model->forward_features(torch::zeros({1, 3, 224, 224}, torch::kDouble)).scalar_type(),
            torch::kDouble);
}

TEST(TimmSwinParity, MatchesTorchvisionSwinT) { expect_matches_torchvision(kSwin); }

TEST(TimmSwinHeadless, NumClassesZeroDropsHead) { expect_headless_model(kSwin, 768); }

TEST(TimmSwinLoad, ListsMissingAndUnexpectedTensors) {
  expect_load_lists_mismatches(kSwin, "layers.2.downsample.reduction.weight",
                               "layers.0.blocks.0.attn.relative_position_bias_tables");
}

TEST(TimmSwinLoad, AcceptsTimmBefore09Names) {
  // timm < 0.9 kept the patch merging at the end of stages 0..2 and named the classifier "head".
  REQUIRE_REFERENCE(reference);
  StateDict old_names;
  for (const auto& [name, tensor] : reference.weights(kSwin)) {
    std::string renamed = name;
    for (int stage = 1; stage <= 3; ++stage) {
      const std::string prefix = "layers." + std::to_string(stage) + ".downsample.";
      if (name.rfind(prefix, 0) == 0) {
        renamed = "layers." + std::to_string(stage - 1) + ".downsample." + name.substr(prefix.size());
      }
    }
    if (name.rfind("head.fc.", 0) == 0) renamed = "head." + name.substr(8);
    old_names[renamed] = tensor;
  }
  ASSERT_EQ(old_names.count("layers.0.downsample.reduction.weight"), 1u);
  auto model = make(kSwin, 1000);
  ASSERT_EQ(error_of([&] { model->load_timm_state_dict(old_names); }), "");
  model->eval();
  torch::NoGradGuard no_grad;
  const auto& io = reference.io(kSwin);
  EXPECT_LE(max_abs_diff(model->forward(io.at("images")), io.at("logits")), kParityTolerance);
}

TEST(TimmSwinInput, OtherImageSizesThrow) {
  auto model = make(kSwin, 0);
  const std::string message = error_of([&] { model->forward_features(torch::zeros({1, 3, 256, 256})); });
  EXPECT_TRUE(contains(message, "takes 224x224 images, got 256x256")) << message;
}

TEST(TimmSwinTraining, BackwardReachesEveryParameter) { expect_backward_reaches_every_parameter(kSwin); }

TEST(TimmSwinAutocast, Bf16ForwardRuns) { expect_bf16_autocast_runs(kSwin); }

}  // namespace
}  // namespace automm
