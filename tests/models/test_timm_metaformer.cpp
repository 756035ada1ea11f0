// Tests of timm's MetaFormer baselines, CAFormer and ConvFormer
// (src/models/image/metaformer.cpp). Parity: the test randomizes small
// models, writes their parameters (timm's names), images and shapes with
// save_safetensors; tests/models/metaformer_reference.py, a transcription of
// timm's metaformer.py run by /usr/bin/python3, loads them strictly by name and
// writes its pre-logits features and logits back, which a second model, loaded
// through load_timm_state_dict, must reproduce. Parameter counts of the named
// variants are timm's (caformer_b36: 98.75M, caformer_s18: 26.34M,
// convformer_s18: 26.77M).
#include <ATen/autocast_mode.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#ifndef AUTOMM_SOURCE_DIR
#include "automm_test_paths.h"
#endif

#include "automm/weights_io.h"
#include "test_util.h"
#include "models/image/image_encoder.h"
#include "models/image/metaformer.h"

namespace automm {
namespace {

using testing::contains;
using testing::error_of;

using nlohmann::json;

constexpr double kParityTolerance = 1e-4;
const auto kImageShape = std::vector<int64_t>{2, 3, 64, 64};

double max_abs_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kFloat) - b.to(torch::kFloat)).abs().max().item<double>();
}

// caformer_s18-shaped (SepConv, SepConv, Attention, Attention; every stage
// downsamples) with fewer blocks and narrower stages.
MetaFormerConfig small_caformer() {
  MetaFormerConfig config;
  config.name = "small_caformer";
  config.depths = {2, 1, 2, 1};
  config.dims = {32, 64, 96, 128};
  config.num_classes = 10;
  return config;
}

// All SepConv, stages 1 and 3 keep the previous dim (timm then skips their
// downsampling), no head.fc.
MetaFormerConfig convformer_same_dims() {
  MetaFormerConfig config;
  config.name = "convformer_same_dims";
  config.depths = {1, 2, 1, 1};
  config.dims = {32, 32, 64, 64};
  config.token_mixers.assign(4, TokenMixer::kSepConv);
  config.num_classes = 0;
  return config;
}

json to_json(const MetaFormerConfig& config) {
  json mixers = json::array();
  for (auto mixer : config.token_mixers)
    mixers.push_back(mixer == TokenMixer::kSepConv ? "sep_conv" : "attention");
  return {{"depths", config.depths},
          {"dims", config.dims},
          {"token_mixers", mixers},
          {"num_classes", config.num_classes}};
}

std::shared_ptr<MetaFormerImpl> make_model(const MetaFormerConfig& config, uint64_t seed) {
  torch::manual_seed(seed);
  return std::make_shared<MetaFormerImpl>(config);
}

StateDict state_of(const torch::nn::Module& model) {
  StateDict weights;
  for (const auto& item : model.named_parameters()) weights[item.key()] = item.value().detach().clone();
  return weights;
}

std::set<std::string> names_of(const torch::nn::Module& model) {
  std::set<std::string> names;
  for (const auto& item : model.named_parameters()) names.insert(item.key());
  return names;
}

int64_t parameter_count(const torch::nn::Module& model) {
  int64_t count = 0;
  for (const auto& p : model.parameters()) count += p.numel();
  return count;
}

bool ends_with(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() &&
         text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Weights far from timm's init (norm weights 1, StarReLU 1 / 0, res_scale 1),
// so every parameter moves the output.
void randomize(torch::nn::Module& model) {
  torch::NoGradGuard no_grad;
  for (auto& item : model.named_parameters()) {
    auto& p = item.value();
    const std::string& name = item.key();
    if (ends_with(name, "norm.weight") || ends_with(name, "norm1.weight") ||
        ends_with(name, "norm2.weight") || ends_with(name, ".scale")) {
      p.copy_(1.0 + 0.2 * torch::randn_like(p));
    } else if (p.dim() == 1) {
      p.copy_(0.1 * torch::randn_like(p));  // biases, StarReLU bias
    } else {
      p.copy_(torch::randn_like(p) /
              std::sqrt(static_cast<double>(p.numel() / p.size(0))));  // 1 / sqrt(fan_in)
    }
  }
}

torch::Tensor make_images(uint64_t seed) {
  torch::manual_seed(seed);
  return torch::randn(kImageShape);
}

// --- reference data written by metaformer_reference.py ------------------------------------------

const std::map<std::string, MetaFormerConfig>& parity_cases() {
  static const std::map<std::string, MetaFormerConfig> cases = {
      {"caformer", small_caformer()}, {"convformer_same_dims", convformer_same_dims()}};
  return cases;
}

constexpr uint64_t kWeightSeed = 11;
constexpr uint64_t kImageSeed = 12;

struct ReferenceData {
  std::filesystem::path dir;
  std::string skip_reason;  // non-empty: /usr/bin/python3 has no torch
  std::string error;        // non-empty: writing the cases or the script failed

  ~ReferenceData() {
    std::error_code ignored;
    if (!dir.empty()) std::filesystem::remove_all(dir, ignored);
  }
};

// Writes every case (seeded, so the tests can rebuild its weights), then runs the script once.
const ReferenceData& reference_data() {
  static ReferenceData data = [] {
    ReferenceData result;
    result.skip_reason =
        testing::python_reference_missing("torch, numpy", "python3-torch", "the MetaFormer parity tests");
    if (!result.skip_reason.empty()) return result;
    std::random_device device;
    result.dir =
        std::filesystem::temp_directory_path() / ("automm_metaformer_reference_" + std::to_string(device()));
    std::string command = "/usr/bin/python3 '" + std::string(AUTOMM_SOURCE_DIR) +
                          "/tests/models/metaformer_reference.py' '" + result.dir.string() + "'";
    try {
      for (const auto& [name, config] : parity_cases()) {
        const auto folder = result.dir / name;
        std::filesystem::create_directories(folder);
        auto model = make_model(config, kWeightSeed);
        randomize(*model);
        save_safetensors(state_of(*model), (folder / "weights.safetensors").string());
        save_safetensors({{"images", make_images(kImageSeed)}}, (folder / "inputs.safetensors").string());
        std::ofstream(folder / "config.json") << to_json(config).dump(1);
        command += " '" + name + "'";
      }
    } catch (const std::exception& e) {
      result.error = std::string("writing the reference cases failed: ") + e.what();
      return result;
    }
    result.error = testing::run_reference_command(command, (result.dir / "reference.log").string());
    return result;
  }();
  return data;
}

class TimmCAFormerParity : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto& data = reference_data();
    if (!data.skip_reason.empty()) FAIL() << data.skip_reason;  // scripts/setup.sh installs python3-torch
    ASSERT_TRUE(data.error.empty()) << data.error;
  }

  // A fresh model (other seed) loads the case's weights; returns the max abs
  // difference to the reference over the logits (or the features without a head).
  double run_case(const std::string& name) {
    const auto folder = reference_data().dir / name;
    const auto& config = parity_cases().at(name);
    auto model = make_model(config, 99);
    model->load_timm_state_dict(load_safetensors((folder / "weights.safetensors").string()));
    model->eval();
    auto images = load_safetensors((folder / "inputs.safetensors").string()).at("images");
    auto expected = load_safetensors((folder / "outputs.safetensors").string());
    torch::NoGradGuard no_grad;

    auto features = model->forward_features(images);  // [batch, dims.back()]
    EXPECT_EQ(features.sizes(), expected.at("features").sizes());
    double features_diff = max_abs_diff(features, expected.at("features"));
    const bool has_head = config.num_classes > 0;
    EXPECT_EQ(expected.count("logits"), has_head ? 1u : 0u);
    const std::string compared = has_head ? "logits" : "features";
    auto output = has_head ? model->forward(images) : features;
    EXPECT_EQ(output.sizes(), expected.at(compared).sizes());
    EXPECT_GT(expected.at(compared).abs().max().item<double>(), 0.5);  // the reference computed something
    double diff = max_abs_diff(output, expected.at(compared));
    std::cout << "[ parity   ] " << name << ": max abs diff " << diff << " (" << compared << ")";
    if (has_head) std::cout << ", " << features_diff << " (features)";
    std::cout << std::endl;
    RecordProperty("max_abs_diff_" + name, std::to_string(diff));
    EXPECT_LE(features_diff, kParityTolerance);

    // Control: the comparison notices a small change to the last block's StarReLU.
    const auto last_stage = std::to_string(config.depths.size() - 1);
    const auto last_block = std::to_string(config.depths.back() - 1);
    model->named_parameters()["stages." + last_stage + ".blocks." + last_block + ".mlp.act.bias"].add_(0.01);
    auto perturbed = has_head ? model->forward(images) : model->forward_features(images);
    EXPECT_GT(max_abs_diff(perturbed, expected.at(compared)), 1e-3);
    return diff;
  }
};

TEST_F(TimmCAFormerParity, SmallCAFormerLogitsMatchTimm) {
  EXPECT_LE(run_case("caformer"), kParityTolerance);
}

TEST_F(TimmCAFormerParity, ConvFormerWithoutDownsamplingOrHeadMatchesTimmFeatures) {
  EXPECT_LE(run_case("convformer_same_dims"), kParityTolerance);
}

// --- names and sizes ---------------------------------------------------------------------------

TEST(TimmCAFormerNames, NamedVariantsHaveTimmParameterCounts) {
  auto family = metaformer_models();
  std::set<std::string> names;
  for (const auto& [name, entry] : family) names.insert(name);
  EXPECT_EQ(names,
            (std::set<std::string>{"caformer_s18", "caformer_s36", "caformer_m36", "caformer_b36",
                                   "convformer_s18", "convformer_s36", "convformer_m36", "convformer_b36"}));
  // timm's param_count (sum of numel over model.parameters()).
  EXPECT_EQ(parameter_count(*family.at("caformer_s18").make(1000)), 26341656);
  EXPECT_EQ(parameter_count(*family.at("convformer_s18").make(1000)), 26774448);
  EXPECT_EQ(parameter_count(*family.at("caformer_s18").make(0)), 23237936);
}

TEST(TimmCAFormerNames, CAFormerB36HasTimmNamesShapesAndCount) {
  auto model = metaformer_models().at("caformer_b36").make(1000);
  EXPECT_EQ(parameter_count(*model), 98753614);  // timm: 98.75M
  EXPECT_EQ(model->num_features(), 768);
  auto params = model->named_parameters();
  const std::map<std::string, std::vector<int64_t>> expected = {
      {"stem.conv.weight", {128, 3, 7, 7}},
      {"stem.conv.bias", {128}},
      {"stem.norm.weight", {128}},
      {"stages.0.blocks.0.norm1.weight", {128}},
      {"stages.0.blocks.0.token_mixer.pwconv1.weight", {256, 128, 1, 1}},
      {"stages.0.blocks.0.token_mixer.act1.scale", {1}},
      {"stages.0.blocks.0.token_mixer.act1.bias", {1}},
      {"stages.0.blocks.2.token_mixer.dwconv.weight", {256, 1, 7, 7}},
      {"stages.0.blocks.0.token_mixer.pwconv2.weight", {128, 256, 1, 1}},
      {"stages.0.blocks.0.mlp.fc1.weight", {512, 128, 1, 1}},
      {"stages.0.blocks.0.mlp.act.scale", {1}},
      {"stages.1.downsample.norm.weight", {128}},
      {"stages.1.downsample.conv.weight", {256, 128, 3, 3}},
      {"stages.1.downsample.conv.bias", {256}},
      {"stages.1.blocks.11.mlp.fc2.weight", {256, 1024, 1, 1}},
      {"stages.2.blocks.17.token_mixer.qkv.weight", {1536, 512}},
      {"stages.2.blocks.0.token_mixer.proj.weight", {512, 512}},
      {"stages.2.blocks.0.res_scale1.scale", {512}},
      {"stages.2.blocks.0.res_scale2.scale", {512}},
      {"stages.2.blocks.0.mlp.fc1.weight", {2048, 512}},
      {"stages.3.blocks.2.norm2.weight", {768}},
      {"head.norm.weight", {768}},
      {"head.norm.bias", {768}},
      {"head.fc.fc1.weight", {3072, 768}},
      {"head.fc.fc1.bias", {3072}},
      {"head.fc.norm.weight", {3072}},
      {"head.fc.norm.bias", {3072}},
      {"head.fc.fc2.weight", {1000, 3072}},
      {"head.fc.fc2.bias", {1000}},
  };
  for (const auto& [name, shape] : expected) {
    ASSERT_TRUE(params.contains(name)) << name;
    EXPECT_EQ(params[name].sizes(), torch::IntArrayRef(shape)) << name;
  }
  // No-bias norms, bias-free SepConv / attention / MLP, no res_scale before stage 2, no layer_scale.
  for (const std::string absent :
       {"stem.norm.bias", "stages.0.blocks.0.norm1.bias", "stages.2.blocks.0.norm1.bias",
        "stages.1.downsample.norm.bias", "stages.0.blocks.0.token_mixer.pwconv1.bias",
        "stages.2.blocks.0.token_mixer.qkv.bias", "stages.2.blocks.0.token_mixer.proj.bias",
        "stages.0.blocks.0.mlp.fc1.bias", "stages.1.blocks.0.res_scale1.scale",
        "stages.0.downsample.conv.weight", "stages.2.blocks.0.layer_scale1.scale"}) {
    EXPECT_FALSE(params.contains(absent)) << absent;
  }
  EXPECT_EQ(model->named_buffers().size(), 0u);
  // Runs at a non-224 size (the attention stages see 2x2 and 1x1 tokens grids here).
  torch::NoGradGuard no_grad;
  EXPECT_EQ(model->forward(torch::randn({1, 3, 64, 64})).sizes(), torch::IntArrayRef({1, 1000}));
}

TEST(TimmCAFormerNames, PretrainedConfigIsTimms) {
  for (const auto& [name, entry] : metaformer_models()) {
    EXPECT_EQ(entry.info.image_size, 224) << name;
    EXPECT_DOUBLE_EQ(entry.info.crop_pct, 1.0) << name;
    EXPECT_EQ(entry.info.interpolation, "bicubic") << name;
    EXPECT_DOUBLE_EQ(entry.info.mean[0], 0.485) << name;
    EXPECT_DOUBLE_EQ(entry.info.std[2], 0.225) << name;
  }
}

// --- num_classes = 0 -----------------------------------------------------------------------------

TEST(TimmCAFormerHead, NumClassesZeroDropsHeadFcAndForwardThrows) {
  auto config = small_caformer();
  config.num_classes = 0;
  auto headless = make_model(config, 1);
  auto full = make_model(small_caformer(), 1);
  auto names = names_of(*headless);
  std::set<std::string> expected_names;
  for (const auto& name : names_of(*full)) {
    if (name.rfind("head.fc.", 0) != 0) expected_names.insert(name);
  }
  EXPECT_EQ(names, expected_names);
  EXPECT_EQ(names.count("head.norm.weight"), 1u);  // timm keeps head.norm: pre-logits are normed

  // The same weights give the same pre-logits features with and without head.fc.
  randomize(*full);
  headless->load_timm_state_dict(state_of(*full));  // head.fc.* ignored
  auto images = make_images(3);
  torch::NoGradGuard no_grad;
  auto features = headless->forward_features(images);
  EXPECT_EQ(features.sizes(), torch::IntArrayRef({2, 128}));
  EXPECT_TRUE(torch::allclose(features, full->forward_features(images)));
  auto message = error_of([&] { headless->forward(images); });
  EXPECT_TRUE(contains(message, "num_classes = 0") && contains(message, "forward_features")) << message;
  EXPECT_THROW(headless->forward(images), std::logic_error);
}

// --- load_timm_state_dict ------------------------------------------------------------------------

TEST(TimmCAFormerLoad, ListsMissingAndUnexpectedTensors) {
  auto model = make_model(small_caformer(), 1);
  auto weights = state_of(*model);
  weights.erase("stages.2.blocks.1.res_scale2.scale");
  weights["stages.1.blocks.0.res_scale1.scale"] = torch::ones({64});  // timm has none before stage 2
  auto message = error_of([&] { model->load_timm_state_dict(weights); });
  EXPECT_TRUE(contains(message, "missing 1 tensor(s): stages.2.blocks.1.res_scale2.scale")) << message;
  EXPECT_TRUE(contains(message, "unexpected 1 tensor(s): stages.1.blocks.0.res_scale1.scale")) << message;
  EXPECT_TRUE(contains(message, "timm small_caformer (num_classes 10)")) << message;
  EXPECT_THROW(model->load_timm_state_dict(weights), std::runtime_error);
  // With a head, head.fc is required.
  auto without_head = state_of(*model);
  without_head.erase("head.fc.fc2.bias");
  message = error_of([&] { model->load_timm_state_dict(without_head); });
  EXPECT_TRUE(contains(message, "missing 1 tensor(s): head.fc.fc2.bias")) << message;
}

TEST(TimmCAFormerLoad, ShapeMismatchNamesTensorAndLoadsNothing) {
  auto model = make_model(small_caformer(), 1);
  auto before = state_of(*model);
  auto weights = state_of(*make_model(small_caformer(), 2));
  weights["stages.2.blocks.0.token_mixer.qkv.weight"] = torch::zeros({96, 96});
  auto message = error_of([&] { model->load_timm_state_dict(weights); });
  EXPECT_TRUE(contains(message, "stages.2.blocks.0.token_mixer.qkv.weight") &&
              contains(message, "[96, 96]") && contains(message, "[288, 96]"))
      << message;
  for (const auto& item : model->named_parameters()) {
    EXPECT_TRUE(torch::equal(item.value(), before.at(item.key()))) << "partially loaded " << item.key();
  }
}

// --- training and mixed precision ------------------------------------------------------------------

TEST(TimmCAFormerTrain, BackwardReachesEveryParameter) {
  auto model = make_model(small_caformer(), 5);
  randomize(*model);
  model->train();
  auto logits = model->forward(make_images(6));  // [2, 10]
  (logits * torch::randn_like(logits)).sum().backward();
  for (const auto& item : model->named_parameters()) {
    const auto& grad = item.value().grad();
    ASSERT_TRUE(grad.defined()) << item.key();
    EXPECT_TRUE(torch::isfinite(grad).all().item<bool>()) << item.key();
    EXPECT_GT(grad.abs().sum().item<double>(), 0.0) << item.key();
  }
}

TEST(TimmCAFormerAutocast, RunsUnderCpuBf16Autocast) {
  auto model = make_model(small_caformer(), 7);
  randomize(*model);
  model->eval();
  auto images = make_images(8);
  torch::NoGradGuard no_grad;
  auto fp32 = model->forward(images);
  const bool was_enabled = at::autocast::is_cpu_enabled();
  const auto previous_dtype = at::autocast::get_autocast_cpu_dtype();
  at::autocast::set_cpu_enabled(true);
  at::autocast::set_autocast_cpu_dtype(at::kBFloat16);
  torch::Tensor bf16;
  std::string message = error_of([&] { bf16 = model->forward(images); });
  at::autocast::set_cpu_enabled(was_enabled);
  at::autocast::set_autocast_cpu_dtype(previous_dtype);
  at::autocast::clear_cache();
  ASSERT_TRUE(message.empty()) << message;
  ASSERT_EQ(bf16.sizes(), fp32.sizes());
  EXPECT_TRUE(torch::isfinite(bf16).all().item<bool>());
  const double scale = fp32.abs().max().item<double>();
  const double diff = max_abs_diff(bf16, fp32);
  std::cout << "[ autocast ] bf16 vs fp32 logits: max abs diff " << diff << " (max |logit| " << scale << ")"
            << std::endl;
  EXPECT_LT(diff, 0.1 * scale);
}

// --- MetaFormerConfig ------------------------------------------------------------------------------

TEST(TimmCAFormerConfig, ErrorsNameTheField) {
  auto with = [](auto edit) {
    auto config = small_caformer();
    edit(config);
    return error_of([&] { MetaFormerImpl model(config); });
  };
  auto message = with([](MetaFormerConfig& c) { c.dims = {32, 64, 96}; });
  EXPECT_TRUE(contains(message, "small_caformer") && contains(message, "dims / token_mixers") &&
              contains(message, "one entry per stage"))
      << message;
  message = with([](MetaFormerConfig& c) { c.dims[2] = 100; });
  EXPECT_TRUE(contains(message, "dims[2]") && contains(message, "multiple of the attention head_dim 32"))
      << message;
  message = with([](MetaFormerConfig& c) { c.depths[1] = 0; });
  EXPECT_TRUE(contains(message, "depths[1]") && contains(message, ">= 1")) << message;
  message = with([](MetaFormerConfig& c) { c.num_classes = -1; });
  EXPECT_TRUE(contains(message, "num_classes")) << message;
  message = with([](MetaFormerConfig& c) { c.depths.clear(); });
  EXPECT_TRUE(contains(message, "depths")) << message;
  auto model = make_model(small_caformer(), 1);
  message = error_of([&] { model->forward_features(torch::zeros({2, 1, 64, 64})); });
  EXPECT_TRUE(contains(message, "[batch, 3, height, width]") && contains(message, "[2, 1, 64, 64]"))
      << message;
}

}  // namespace
}  // namespace automm
