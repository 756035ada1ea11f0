// Tests of the learning-rate schedules, parameter groups, optimizers and losses
// (AutoMM's optim keys and training behaviour). Expected values are computed here
// from the formulas of AutoMM's optim/lr/lr_schedulers.py with plain doubles, independently of the implementation.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "automm/config.h"
#include "models/multimodal_net.h"
#include "optim/losses.h"
#include "optim/optim.h"
#include "learners/trainer.h"
#include "tasks/task.h"

namespace automm {
namespace {

constexpr double kPi = 3.14159265358979323846;

// Expects an exception of type E whose message contains `part`.
template <typename E = std::invalid_argument, typename Fn>
void expect_throw_with(Fn fn, const std::string& part) {
  try {
    fn();
    ADD_FAILURE() << "expected an exception containing: " << part;
  } catch (const E& e) {
    EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
  }
}

// ------------------------------------------------------------------ schedules

// The formulas of AutoMM's optim/lr/lr_schedulers.py, written out independently of lr_schedule.cpp.
double warmup_factor(int64_t s, int64_t w) { return static_cast<double>(s) / static_cast<double>(w); }

LrSchedule schedule_of(const std::string& name, int64_t total, int64_t warmup, int64_t per_epoch = 1,
                       double end_lr = 0.0) {
  LrSchedule s;
  s.name = name;
  s.total_steps = total;
  s.warmup_steps = warmup;
  s.steps_per_epoch = per_epoch;
  s.end_lr = end_lr;
  return s;
}

TEST(OptimSchedule, CosineDecayFollowsWarmupThenHalfCosine) {
  const int64_t T = 100, w = 10;
  const double base = 2e-3;
  const LrSchedule s = schedule_of("cosine_decay", T, w);
  for (int64_t step : {0, 1, 5, 9}) {
    SCOPED_TRACE(step);
    EXPECT_NEAR(s.lr_at(step, base), base * warmup_factor(step, w), 1e-15);
  }
  for (int64_t step : {10, 11, 30, 55, 77, 99, 100}) {
    SCOPED_TRACE(step);
    const double expected = base * 0.5 * (1.0 + std::cos(kPi * double(step - w) / double(T - w)));
    EXPECT_NEAR(s.lr_at(step, base), expected, 1e-15);
  }
  // Spot values: the peak right after warmup, half-way, the end.
  EXPECT_NEAR(s.lr_at(10, base), base, 1e-15);
  EXPECT_NEAR(s.lr_at(55, base), base * 0.5, 1e-15);
  EXPECT_NEAR(s.lr_at(100, base), 0.0, 1e-15);
}

TEST(OptimSchedule, CosineWithoutWarmupStartsAtBase) {
  const LrSchedule s = schedule_of("cosine_decay", 40, 0);
  EXPECT_NEAR(s.lr_at(0, 1.0), 1.0, 1e-15);
  EXPECT_NEAR(s.lr_at(10, 1.0), 0.5 * (1.0 + std::cos(kPi * 10.0 / 40.0)), 1e-15);
  EXPECT_NEAR(s.lr_at(20, 1.0), 0.5, 1e-15);
}

TEST(OptimSchedule, LinearDecayIsRemainingOverDecaySpan) {
  const int64_t T = 50, w = 5;
  const double base = 0.1;
  const LrSchedule s = schedule_of("linear_decay", T, w);
  for (int64_t step : {0, 2, 4}) {
    SCOPED_TRACE(step);
    EXPECT_NEAR(s.lr_at(step, base), base * warmup_factor(step, w), 1e-15);
  }
  for (int64_t step : {5, 6, 20, 41, 49, 50}) {
    SCOPED_TRACE(step);
    EXPECT_NEAR(s.lr_at(step, base), base * double(T - step) / double(T - w), 1e-15);
  }
  EXPECT_NEAR(s.lr_at(5, base), base, 1e-15);
  EXPECT_NEAR(s.lr_at(50, base), 0.0, 1e-15);
  EXPECT_NEAR(s.lr_at(70, base), 0.0, 1e-15);  // never negative past the end
}

TEST(OptimSchedule, PolynomialDecayGoesLinearlyToEndLr) {
  // transformers' get_polynomial_decay_schedule_with_warmup, power 1:
  // (base - end) * (1 - (s - w)/(T - w)) + end after warmup.
  const int64_t T = 100, w = 20;
  const double base = 1e-3, end = 1e-5;
  const LrSchedule s = schedule_of("polynomial_decay", T, w, 1, end);
  for (int64_t step : {0, 7, 19}) {
    SCOPED_TRACE(step);
    EXPECT_NEAR(s.lr_at(step, base), base * warmup_factor(step, w), 1e-15);
  }
  for (int64_t step : {20, 21, 50, 60, 99, 100}) {
    SCOPED_TRACE(step);
    const double expected = (base - end) * (1.0 - double(step - w) / double(T - w)) + end;
    EXPECT_NEAR(s.lr_at(step, base), expected, 1e-15);
  }
  EXPECT_NEAR(s.lr_at(60, base), (base + end) / 2.0, 1e-15);
  EXPECT_NEAR(s.lr_at(100, base), end, 1e-15);
  EXPECT_NEAR(s.lr_at(130, base), end, 1e-15);  // stays at end_lr afterwards
}

TEST(OptimSchedule, PolynomialDecayWithZeroEndLrEqualsLinear) {
  const LrSchedule poly = schedule_of("polynomial_decay", 30, 3, 1, 0.0);
  const LrSchedule lin = schedule_of("linear_decay", 30, 3);
  for (int64_t step = 0; step <= 30; ++step) EXPECT_NEAR(poly.lr_at(step, 0.5), lin.lr_at(step, 0.5), 1e-15);
}

TEST(OptimSchedule, MultiStepDropsTenfoldAtEpochs30And55) {
  const int64_t per_epoch = 10, w = 5;
  const double base = 0.02;
  const LrSchedule s = schedule_of("multi_step", 1000, w, per_epoch);
  for (int64_t step : {0, 1, 4}) {
    SCOPED_TRACE(step);
    EXPECT_NEAR(s.lr_at(step, base), base * warmup_factor(step, w), 1e-15);
  }
  const std::vector<std::pair<int64_t, double>> expected = {
      {5, 1.0},    {100, 1.0},  {299, 1.0},  // epoch 0..29
      {300, 0.1},  {301, 0.1},  {549, 0.1},  // epoch 30..54
      {550, 0.01}, {800, 0.01}, {999, 0.01}  // epoch 55+
  };
  for (const auto& [step, factor] : expected) {
    SCOPED_TRACE(step);
    EXPECT_NEAR(s.lr_at(step, base), base * factor, 1e-15);
  }
}

TEST(OptimSchedule, MultiStepMilestonesAreEpochsNotSteps) {
  // With 3 steps per epoch, epoch 30 starts at step 90.
  const LrSchedule s = schedule_of("multi_step", 500, 0, 3);
  EXPECT_NEAR(s.lr_at(89, 1.0), 1.0, 1e-15);
  EXPECT_NEAR(s.lr_at(90, 1.0), 0.1, 1e-15);
  EXPECT_NEAR(s.lr_at(164, 1.0), 0.1, 1e-15);
  EXPECT_NEAR(s.lr_at(165, 1.0), 0.01, 1e-15);
}

TEST(OptimSchedule, MakeScheduleReadsConfig) {
  Config config;
  LrSchedule s = make_schedule(config, 95, 5);
  EXPECT_EQ(s.name, "cosine_decay");
  EXPECT_EQ(s.total_steps, 95);
  EXPECT_EQ(s.steps_per_epoch, 5);
  EXPECT_EQ(s.warmup_steps, static_cast<int64_t>(0.1 * 95));  // default 0.1 -> 9
  EXPECT_EQ(s.warmup_steps, 9);
  EXPECT_DOUBLE_EQ(s.end_lr, 0.0);

  config.set("optim.lr_schedule", "polynomial_decay");
  config.set("optim.end_lr", 1e-6);
  s = make_schedule(config, 1000, 10);
  EXPECT_EQ(s.name, "polynomial_decay");
  EXPECT_DOUBLE_EQ(s.end_lr, 1e-6);
  EXPECT_EQ(s.warmup_steps, 100);
}

TEST(OptimSchedule, WarmupFractionIsTruncatedFractionOfTotal) {
  Config config;
  config.set("optim.warmup_steps", 0.25);
  EXPECT_EQ(make_schedule(config, 10, 1).warmup_steps, 2);  // int(2.5)
  config.set("optim.warmup_steps", 0.0);
  EXPECT_EQ(make_schedule(config, 10, 1).warmup_steps, 0);
  config.set("optim.warmup_steps", 0.999);
  EXPECT_EQ(make_schedule(config, 1000, 1).warmup_steps, 999);
}

TEST(OptimSchedule, WarmupIntegerIsAStepCount) {
  Config config;
  config.set("optim.warmup_steps", 7);
  EXPECT_EQ(make_schedule(config, 1000, 10).warmup_steps, 7);
  EXPECT_EQ(make_schedule(config, 20, 10).warmup_steps, 7);
  config.set("optim.warmup_steps", 1);  // int 1 is one step, not 100%
  EXPECT_EQ(make_schedule(config, 1000, 10).warmup_steps, 1);
}

TEST(OptimSchedule, WarmupFloatAtLeastOneErrors) {
  Config config;
  config.set("optim.warmup_steps", 1.0);
  expect_throw_with([&] { make_schedule(config, 100, 1); }, "optim.warmup_steps");
  config.set("optim.warmup_steps", 2.5);
  EXPECT_THROW(make_schedule(config, 100, 1), std::invalid_argument);
}

// ---------------------------------------------------------- parameter groups

struct Named {
  std::vector<std::pair<std::string, torch::Tensor>> params;
  torch::Tensor frozen;
};

// Names as the models produce them; "frozen.weight" does not require grad.
Named sample_params() {
  Named n;
  auto p = [](std::vector<int64_t> shape) { return torch::randn(shape).requires_grad_(true); };
  n.params = {
      {"numerical_mlp.mlp.linears.0.weight", p({4, 3})},
      {"numerical_mlp.mlp.linears.0.bias", p({4})},
      {"numerical_mlp.mlp.norms.0.weight", p({3})},
      {"ft_transformer.transformer.ffn_norms.0.weight", p({8})},
      {"ft_transformer.cls_token", p({8})},
      {"ft_transformer.numerical_tokenizer_weight", p({2, 8})},
      {"ft_transformer.transformer.qkv.1.weight", p({24, 8})},
      {"categorical_mlp.embeddings.0.weight", p({5, 3})},
      {"fusion_mlp.head.weight", p({2, 4})},
  };
  n.frozen = torch::randn({3});  // requires_grad false
  n.params.emplace_back("frozen.weight", n.frozen);
  return n;
}

const std::map<std::string, bool> kDecayed = {
    {"numerical_mlp.mlp.linears.0.weight", true},
    {"numerical_mlp.mlp.linears.0.bias", false},
    {"numerical_mlp.mlp.norms.0.weight", false},
    {"ft_transformer.transformer.ffn_norms.0.weight", false},
    {"ft_transformer.cls_token", false},
    {"ft_transformer.numerical_tokenizer_weight", false},
    {"ft_transformer.transformer.qkv.1.weight", true},
    {"categorical_mlp.embeddings.0.weight", true},
    {"fusion_mlp.head.weight", true},
};

struct Placement {
  double lr, weight_decay;
  torch::Tensor tensor;
};

// name -> (lr, wd, tensor); fails on duplicates and inconsistent groups.
std::map<std::string, Placement> placements(const std::vector<ParameterGroup>& groups) {
  std::map<std::string, Placement> out;
  for (const ParameterGroup& g : groups) {
    EXPECT_EQ(g.params.size(), g.names.size());
    for (size_t i = 0; i < g.names.size() && i < g.params.size(); ++i) {
      EXPECT_EQ(out.count(g.names[i]), 0u) << "parameter in two groups: " << g.names[i];
      out[g.names[i]] = {g.lr, g.weight_decay, g.params[i]};
    }
  }
  return out;
}

TEST(OptimGroups, WeightDecaySkipsBiasNormClsAndTokenizer) {
  Config config;
  config.set("optim.weight_decay", 0.05);
  const Named n = sample_params();
  const auto groups = make_parameter_groups(n.params, config);
  const auto where = placements(groups);
  EXPECT_EQ(where.size(), kDecayed.size());
  for (const auto& [name, decayed] : kDecayed) {
    SCOPED_TRACE(name);
    ASSERT_EQ(where.count(name), 1u);
    EXPECT_DOUBLE_EQ(where.at(name).weight_decay, decayed ? 0.05 : 0.0);
  }
  // Groups are keyed by (lr, wd): here exactly two of them.
  EXPECT_EQ(groups.size(), 2u);
}

TEST(OptimGroups, DefaultWeightDecayIs1e3) {
  Config config;
  const auto where = placements(make_parameter_groups(sample_params().params, config));
  EXPECT_DOUBLE_EQ(where.at("fusion_mlp.head.weight").weight_decay, 1e-3);
  EXPECT_DOUBLE_EQ(where.at("fusion_mlp.head.weight").lr, 1e-4);
}

TEST(OptimGroups, FrozenParametersAreSkipped) {
  Config config;
  const Named n = sample_params();
  const auto groups = make_parameter_groups(n.params, config);
  const auto where = placements(groups);
  EXPECT_EQ(where.count("frozen.weight"), 0u);
  for (const auto& g : groups)
    for (const auto& t : g.params) EXPECT_FALSE(t.is_same(n.frozen));
}

TEST(OptimGroups, GroupsHoldTheGivenTensors) {
  Config config;
  const Named n = sample_params();
  const auto where = placements(make_parameter_groups(n.params, config));
  for (const auto& [name, tensor] : n.params) {
    if (name == "frozen.weight") continue;
    SCOPED_TRACE(name);
    EXPECT_TRUE(where.at(name).tensor.is_same(tensor));  // the same storage, not a copy
  }
}

TEST(OptimGroups, TwoStagesMultipliesHeadLr) {
  Config config;
  config.set("optim.lr", 2e-4);
  config.set("optim.lr_choice", "two_stages");
  config.set("optim.lr_mult", 10.0);
  // Every parameter of the tabular/fusion models is a head parameter (layer id 0).
  const auto where = placements(make_parameter_groups(sample_params().params, config));
  ASSERT_EQ(where.size(), kDecayed.size());
  for (const auto& [name, placement] : where) {
    SCOPED_TRACE(name);
    EXPECT_NEAR(placement.lr, 2e-4 * 10.0, 1e-18);
  }
}

TEST(OptimGroups, EmptyLrChoiceGivesBaseLr) {
  Config config;
  config.set("optim.lr", 3e-3);
  config.set("optim.lr_choice", "");
  config.set("optim.lr_mult", 10.0);   // ignored
  config.set("optim.lr_decay", 0.5);   // ignored
  const auto where = placements(make_parameter_groups(sample_params().params, config));
  ASSERT_EQ(where.size(), kDecayed.size());
  for (const auto& [name, placement] : where) EXPECT_DOUBLE_EQ(placement.lr, 3e-3) << name;
}

TEST(OptimGroups, LayerwiseDecayWithAllIdsZeroGivesBaseLr) {
  Config config;
  config.set("optim.lr", 5e-4);
  config.set("optim.lr_choice", "layerwise_decay");
  config.set("optim.lr_decay", 0.5);
  config.set("optim.lr_mult", 10.0);  // not used by layerwise_decay
  const auto where = placements(make_parameter_groups(sample_params().params, config));
  ASSERT_EQ(where.size(), kDecayed.size());
  for (const auto& [name, placement] : where) EXPECT_DOUBLE_EQ(placement.lr, 5e-4 * std::pow(0.5, 0)) << name;
}

TEST(OptimGroups, LayerIdIsZeroForTabularAndFusionModels) {
  // AutoMM's optim/utils.py: heads, fusion and tabular models get id 0, even with block numbers.
  ModelContext context;
  context.num_numerical = 3;
  context.categorical_cardinalities = {4, 5};
  context.num_outputs = 2;
  Config config;
  MultiModalNet net(std::vector<std::string>{"categorical_mlp", "ft_transformer", "fusion_transformer"}, context, config);
  EXPECT_TRUE(network_layer_ids(net).empty());
}

TEST(OptimLayerIds, BertLikeNames) {
  // 12 encoder layers: the last gets 1, the first 12, embeddings 13, pooler 0.
  const auto ids = layerwise_ids({"embeddings.word_embeddings.weight", "embeddings.LayerNorm.weight",
                                  "encoder.layer.0.attention.self.query.weight",
                                  "encoder.layer.0.attention.output.LayerNorm.weight",
                                  "encoder.layer.5.intermediate.dense.bias", "encoder.layer.11.output.dense.weight",
                                  "encoder.layer.11.output.LayerNorm.bias", "pooler.dense.weight"});
  EXPECT_EQ(ids.at("embeddings.word_embeddings.weight"), 13);
  EXPECT_EQ(ids.at("embeddings.LayerNorm.weight"), 13);
  EXPECT_EQ(ids.at("encoder.layer.0.attention.self.query.weight"), 12);
  EXPECT_EQ(ids.at("encoder.layer.0.attention.output.LayerNorm.weight"), 12);  // in-block norm: its block
  EXPECT_EQ(ids.at("encoder.layer.5.intermediate.dense.bias"), 7);
  EXPECT_EQ(ids.at("encoder.layer.11.output.dense.weight"), 1);
  EXPECT_EQ(ids.at("encoder.layer.11.output.LayerNorm.bias"), 1);
  EXPECT_EQ(ids.at("pooler.dense.weight"), 0);
}

TEST(OptimLayerIds, SwinLikeNames) {
  // 4 stages: stage index is the first number; the final norm and head are 0.
  const auto ids = layerwise_ids({"patch_embed.proj.weight", "patch_embed.norm.weight",
                                  "layers.0.blocks.1.norm1.weight", "layers.0.downsample.norm.weight",
                                  "layers.2.blocks.17.attn.qkv.weight", "layers.3.blocks.0.mlp.fc1.weight",
                                  "norm.weight", "head.fc.weight"});
  EXPECT_EQ(ids.at("patch_embed.proj.weight"), 5);
  EXPECT_EQ(ids.at("patch_embed.norm.weight"), 5);
  EXPECT_EQ(ids.at("layers.0.blocks.1.norm1.weight"), 4);
  EXPECT_EQ(ids.at("layers.0.downsample.norm.weight"), 4);
  EXPECT_EQ(ids.at("layers.2.blocks.17.attn.qkv.weight"), 2);
  EXPECT_EQ(ids.at("layers.3.blocks.0.mlp.fc1.weight"), 1);
  EXPECT_EQ(ids.at("norm.weight"), 0);
  EXPECT_EQ(ids.at("head.fc.weight"), 0);
}

TEST(OptimLayerIds, CnnStemsAndResNetStages) {
  // ResNet: the stem (before the first block) is an embedding; stages layer1..4.
  const auto resnet = layerwise_ids({"model.conv1.weight", "model.bn1.weight", "model.layer1.0.conv1.weight",
                                     "model.layer1.1.conv2.weight", "model.layer4.1.bn2.weight", "head.weight"});
  EXPECT_EQ(resnet.at("model.conv1.weight"), 6);
  EXPECT_EQ(resnet.at("model.bn1.weight"), 6);
  EXPECT_EQ(resnet.at("model.layer1.0.conv1.weight"), 4);
  EXPECT_EQ(resnet.at("model.layer1.1.conv2.weight"), 4);
  EXPECT_EQ(resnet.at("model.layer4.1.bn2.weight"), 1);
  EXPECT_EQ(resnet.at("head.weight"), 0);
  // ConvNeXt / MetaFormer: stem.*, stages.N, then the head's norm.
  const auto convnext = layerwise_ids({"model.stem.0.weight", "model.stages.0.blocks.0.conv_dw.weight",
                                       "model.stages.3.blocks.2.gamma", "model.head.norm.weight"});
  EXPECT_EQ(convnext.at("model.stem.0.weight"), 5);
  EXPECT_EQ(convnext.at("model.stages.0.blocks.0.conv_dw.weight"), 4);
  EXPECT_EQ(convnext.at("model.stages.3.blocks.2.gamma"), 1);
  EXPECT_EQ(convnext.at("model.head.norm.weight"), 0);
}

TEST(OptimGroups, LayerwiseDecayScalesByLayerId) {
  Config config;
  config.set("optim.lr", 1e-3);
  config.set("optim.lr_decay", 0.8);
  config.set("optim.weight_decay", 0.0);
  const std::vector<std::pair<std::string, torch::Tensor>> named = {
      {"bb.layer.0.w", torch::zeros({2}).requires_grad_(true)},
      {"bb.layer.1.w", torch::zeros({2}).requires_grad_(true)},
      {"head.w", torch::zeros({2}).requires_grad_(true)}};
  const auto groups = make_parameter_groups(named, config, {{"bb.layer.0.w", 2}, {"bb.layer.1.w", 1}});
  std::map<std::string, double> lr;
  for (const auto& g : groups)
    for (const auto& n : g.names) lr[n] = g.lr;
  EXPECT_DOUBLE_EQ(lr.at("bb.layer.0.w"), 1e-3 * 0.8 * 0.8);
  EXPECT_DOUBLE_EQ(lr.at("bb.layer.1.w"), 1e-3 * 0.8);
  EXPECT_DOUBLE_EQ(lr.at("head.w"), 1e-3);
  config.set("optim.lr_choice", "two_stages");
  config.set("optim.lr_mult", 10.0);
  lr.clear();
  for (const auto& g : make_parameter_groups(named, config, {{"bb.layer.0.w", 2}, {"bb.layer.1.w", 1}}))
    for (const auto& n : g.names) lr[n] = g.lr;
  EXPECT_DOUBLE_EQ(lr.at("bb.layer.0.w"), 1e-3);
  EXPECT_DOUBLE_EQ(lr.at("head.w"), 1e-2);
}

// ------------------------------------------------------------------ optimizers

std::vector<ParameterGroup> two_groups() {
  ParameterGroup a, b;
  a.params = {torch::randn({3}).requires_grad_(true), torch::randn({2, 2}).requires_grad_(true)};
  a.names = {"a.weight", "b.weight"};
  a.lr = 1e-3;
  a.weight_decay = 0.01;
  b.params = {torch::randn({4}).requires_grad_(true)};
  b.names = {"a.bias"};
  b.lr = 5e-3;
  b.weight_decay = 0.0;
  return {a, b};
}

TEST(OptimOptimizer, AdamWHasEps1e6AndGroupSettings) {
  Config config;
  config.set("optim.optim_type", "adamw");
  const auto groups = two_groups();
  auto optimizer = make_optimizer(groups, config);
  ASSERT_NE(dynamic_cast<torch::optim::AdamW*>(optimizer.get()), nullptr);
  auto& pg = optimizer->param_groups();
  ASSERT_EQ(pg.size(), groups.size());
  for (size_t i = 0; i < pg.size(); ++i) {
    SCOPED_TRACE(i);
    auto& options = static_cast<torch::optim::AdamWOptions&>(pg[i].options());
    EXPECT_DOUBLE_EQ(options.eps(), 1e-6);
    EXPECT_DOUBLE_EQ(options.lr(), groups[i].lr);
    EXPECT_DOUBLE_EQ(options.weight_decay(), groups[i].weight_decay);
    ASSERT_EQ(pg[i].params().size(), groups[i].params.size());
    for (size_t j = 0; j < groups[i].params.size(); ++j) EXPECT_TRUE(pg[i].params()[j].is_same(groups[i].params[j]));
  }
}

TEST(OptimOptimizer, DefaultTypeIsAdamW) {
  Config config;
  auto optimizer = make_optimizer(two_groups(), config);
  EXPECT_NE(dynamic_cast<torch::optim::AdamW*>(optimizer.get()), nullptr);
}

TEST(OptimOptimizer, AdamKeepsGroupSettings) {
  Config config;
  config.set("optim.optim_type", "adam");
  const auto groups = two_groups();
  auto optimizer = make_optimizer(groups, config);
  ASSERT_NE(dynamic_cast<torch::optim::Adam*>(optimizer.get()), nullptr);
  EXPECT_EQ(dynamic_cast<torch::optim::AdamW*>(optimizer.get()), nullptr);
  auto& pg = optimizer->param_groups();
  ASSERT_EQ(pg.size(), groups.size());
  for (size_t i = 0; i < pg.size(); ++i) {
    auto& options = static_cast<torch::optim::AdamOptions&>(pg[i].options());
    EXPECT_DOUBLE_EQ(options.lr(), groups[i].lr);
    EXPECT_DOUBLE_EQ(options.weight_decay(), groups[i].weight_decay);
  }
}

TEST(OptimOptimizer, SgdHasMomentum09) {
  Config config;
  config.set("optim.optim_type", "sgd");
  const auto groups = two_groups();
  auto optimizer = make_optimizer(groups, config);
  ASSERT_NE(dynamic_cast<torch::optim::SGD*>(optimizer.get()), nullptr);
  auto& pg = optimizer->param_groups();
  ASSERT_EQ(pg.size(), groups.size());
  for (size_t i = 0; i < pg.size(); ++i) {
    auto& options = static_cast<torch::optim::SGDOptions&>(pg[i].options());
    EXPECT_DOUBLE_EQ(options.momentum(), 0.9);
    EXPECT_DOUBLE_EQ(options.lr(), groups[i].lr);
    EXPECT_DOUBLE_EQ(options.weight_decay(), groups[i].weight_decay);
  }
}

TEST(OptimOptimizer, SgdStepUsesGroupLrAndWeightDecay) {
  // First SGD step with momentum: buf = g + wd * p; p -= lr * buf.
  Config config;
  config.set("optim.optim_type", "sgd");
  ParameterGroup g;
  g.params = {torch::tensor({1.0f, -2.0f}).requires_grad_(true)};
  g.names = {"w.weight"};
  g.lr = 0.1;
  g.weight_decay = 0.5;
  auto optimizer = make_optimizer({g}, config);
  g.params[0].mutable_grad() = torch::tensor({0.2f, 0.4f});
  optimizer->step();
  const double expected0 = 1.0 - 0.1 * (0.2 + 0.5 * 1.0);
  const double expected1 = -2.0 - 0.1 * (0.4 + 0.5 * -2.0);
  EXPECT_NEAR(g.params[0][0].item<double>(), expected0, 1e-6);
  EXPECT_NEAR(g.params[0][1].item<double>(), expected1, 1e-6);
}

TEST(OptimOptimizer, ApplyScheduleSetsEachGroupFromItsBase) {
  Config config;
  const auto groups = two_groups();
  auto optimizer = make_optimizer(groups, config);
  const LrSchedule s = schedule_of("cosine_decay", 100, 10);
  for (int64_t step : {0, 4, 10, 37, 100}) {
    apply_schedule(*optimizer, groups, s, step);
    // Applying twice must not compound: the base is the group's own lr.
    apply_schedule(*optimizer, groups, s, step);
    for (size_t i = 0; i < groups.size(); ++i) {
      SCOPED_TRACE(std::to_string(step) + " group " + std::to_string(i));
      const double factor = step < 10 ? step / 10.0 : 0.5 * (1.0 + std::cos(kPi * (step - 10) / 90.0));
      EXPECT_NEAR(optimizer->param_groups()[i].options().get_lr(), groups[i].lr * factor, 1e-15);
    }
  }
}

// ------------------------------------------------------------------- losses

// log-softmax of a row, in doubles.
std::vector<double> log_softmax_row(const std::vector<double>& row) {
  double m = row[0];
  for (double v : row) m = std::max(m, v);
  double z = 0.0;
  for (double v : row) z += std::exp(v - m);
  std::vector<double> out;
  for (double v : row) out.push_back(v - m - std::log(z));
  return out;
}

const std::vector<std::vector<double>> kLogits = {{1.0, 2.0, 0.5}, {0.1, -1.0, 2.0}, {0.3, 0.3, -0.4}};
const std::vector<int64_t> kLabels = {1, 2, 0};

torch::Tensor logits_tensor() {
  std::vector<float> flat;
  for (const auto& row : kLogits) flat.insert(flat.end(), row.begin(), row.end());
  return torch::tensor(flat).view({3, 3});
}
torch::Tensor labels_tensor() { return torch::tensor(std::vector<int64_t>(kLabels.begin(), kLabels.end())); }

TEST(OptimLoss, CrossEntropyMatchesHandComputation) {
  Config config;
  double expected = 0.0;
  for (size_t i = 0; i < kLogits.size(); ++i) expected -= log_softmax_row(kLogits[i])[kLabels[i]];
  expected /= kLogits.size();
  const auto loss = classification_loss(logits_tensor(), labels_tensor(), config);
  EXPECT_EQ(loss.dim(), 0);
  EXPECT_NEAR(loss.item<double>(), expected, 1e-6);
}

TEST(OptimLoss, LabelSmoothingUsesSmoothedTargets) {
  Config config;
  const double eps = 0.1;
  config.set("optim.label_smoothing", eps);
  // target = (1 - eps) * onehot + eps / K; loss = -sum target * log p, averaged.
  double expected = 0.0;
  for (size_t i = 0; i < kLogits.size(); ++i) {
    const auto lp = log_softmax_row(kLogits[i]);
    const double k = static_cast<double>(lp.size());
    for (size_t c = 0; c < lp.size(); ++c)
      expected -= ((c == static_cast<size_t>(kLabels[i]) ? 1.0 - eps : 0.0) + eps / k) * lp[c];
  }
  expected /= kLogits.size();
  const double smoothed = classification_loss(logits_tensor(), labels_tensor(), config).item<double>();
  EXPECT_NEAR(smoothed, expected, 1e-6);
  Config plain;
  EXPECT_GT(std::abs(smoothed - classification_loss(logits_tensor(), labels_tensor(), plain)
                                    .item<double>()),
            1e-3);
}

TEST(OptimLoss, FocalLossGamma2) {
  Config config;
  config.set("optim.loss_func", "focal_loss");  // gamma defaults to 2
  double expected = 0.0;
  for (size_t i = 0; i < kLogits.size(); ++i) {
    const double lp = log_softmax_row(kLogits[i])[kLabels[i]];
    const double p = std::exp(lp);
    expected += -(1.0 - p) * (1.0 - p) * lp;
  }
  expected /= kLogits.size();
  EXPECT_NEAR(classification_loss(logits_tensor(), labels_tensor(), config).item<double>(),
              expected, 1e-6);
}

TEST(OptimLoss, FocalLossGammaZeroIsCrossEntropy) {
  Config focal;
  focal.set("optim.loss_func", "focal_loss");
  focal.set("optim.focal_loss.gamma", 0.0);
  Config ce;
  EXPECT_NEAR(classification_loss(logits_tensor(), labels_tensor(), focal).item<double>(),
              classification_loss(logits_tensor(), labels_tensor(), ce).item<double>(), 1e-6);
}

TEST(OptimLoss, FocalLossAlphaWeightsPerClass) {
  Config config;
  config.set("optim.loss_func", "focal_loss");
  config.set("optim.focal_loss.gamma", 1.5);
  const std::vector<double> alpha = {0.2, 0.3, 0.5};
  config.set("optim.focal_loss.alpha", Json(alpha));
  double expected = 0.0;
  for (size_t i = 0; i < kLogits.size(); ++i) {
    const double lp = log_softmax_row(kLogits[i])[kLabels[i]];
    const double p = std::exp(lp);
    expected += -alpha[kLabels[i]] * std::pow(1.0 - p, 1.5) * lp;
  }
  expected /= kLogits.size();  // AutoMM: weighted NLL (reduction none) * focal term, then mean
  EXPECT_NEAR(classification_loss(logits_tensor(), labels_tensor(), config).item<double>(),
              expected, 1e-6);
}

TEST(OptimLoss, FocalLossAlphaLengthMismatchErrors) {
  Config config;
  config.set("optim.loss_func", "focal_loss");
  config.set("optim.focal_loss.alpha", Json(std::vector<double>{0.5, 0.5}));
  expect_throw_with([&] { classification_loss(logits_tensor(), labels_tensor(), config); },
                    "optim.focal_loss.alpha");
}

TEST(OptimLoss, BinaryFocalWithAlpha) {
  Config config;
  config.set("optim.loss_func", "focal_loss");
  config.set("optim.focal_loss.alpha", Json(std::vector<double>{0.25, 0.75}));
  auto logits = torch::tensor({0.4f, -0.2f, -1.0f, 1.5f}).view({2, 2});
  auto labels = torch::tensor(std::vector<int64_t>{0, 0});
  const std::vector<std::vector<double>> rows = {{0.4, -0.2}, {-1.0, 1.5}};
  double expected = 0.0;
  for (const auto& row : rows) {
    const double lp = log_softmax_row(row)[0];
    expected += -0.25 * std::pow(1.0 - std::exp(lp), 2.0) * lp;
  }
  expected /= 2.0;
  EXPECT_NEAR(classification_loss(logits, labels, config).item<double>(), expected, 1e-6);
}

TEST(OptimLoss, RegressionMse) {
  Config config;
  auto logits = torch::tensor({0.5f, -1.0f, 2.0f, 0.0f}).view({4, 1});
  auto labels = torch::tensor({1.0f, -1.5f, 0.0f, 0.25f});
  const double expected = (0.25 + 0.25 + 4.0 + 0.0625) / 4.0;
  EXPECT_NEAR(regression_loss(logits, labels, config).item<double>(), expected, 1e-6);
  // Labels of another dtype are converted.
  EXPECT_NEAR(regression_loss(logits, labels.to(torch::kDouble), config).item<double>(),
              expected, 1e-6);
}

TEST(OptimLoss, RegressionBceOnSigmoid) {
  Config config;
  config.set("optim.loss_func", "bce");
  const std::vector<double> z = {0.5, -1.0, 2.0}, y = {1.0, 0.2, 0.0};
  double expected = 0.0;
  for (size_t i = 0; i < z.size(); ++i) {
    const double s = 1.0 / (1.0 + std::exp(-z[i]));
    expected -= y[i] * std::log(s) + (1.0 - y[i]) * std::log(1.0 - s);
  }
  expected /= z.size();
  auto logits = torch::tensor({0.5f, -1.0f, 2.0f}).view({3, 1});
  auto labels = torch::tensor({1.0f, 0.2f, 0.0f});
  EXPECT_NEAR(regression_loss(logits, labels, config).item<double>(), expected, 1e-6);
}

TEST(OptimLoss, FocalLossOnRegressionErrors) {
  Config config;
  config.set("optim.loss_func", "focal_loss");
  expect_throw_with(
      [&] { regression_loss(torch::zeros({2, 1}), torch::zeros({2}), config); },
      "focal_loss");
}

TEST(OptimLoss, BceOnClassificationErrors) {
  Config config;
  config.set("optim.loss_func", "bce");
  expect_throw_with([&] { classification_loss(logits_tensor(), labels_tensor(), config); },
                    "bce");
  EXPECT_THROW(classification_loss(torch::zeros({2, 2}), torch::zeros({2}, torch::kInt64), config),
               std::invalid_argument);
}

TEST(OptimLoss, LossHasGradientTowardsLabel) {
  // d CE / d logit_c = softmax_c - onehot_c (averaged over rows).
  Config config;
  auto logits = logits_tensor().requires_grad_(true);
  classification_loss(logits, labels_tensor(), config).backward();
  for (size_t i = 0; i < kLogits.size(); ++i) {
    const auto lp = log_softmax_row(kLogits[i]);
    for (size_t c = 0; c < lp.size(); ++c) {
      const double expected = (std::exp(lp[c]) - (c == size_t(kLabels[i]) ? 1.0 : 0.0)) / kLogits.size();
      EXPECT_NEAR(logits.grad()[i][c].item<double>(), expected, 1e-6);
    }
  }
}

// ------------------------------------------------------------- predictions

TEST(OptimPredictions, SoftmaxProbabilities) {
  Config config;
  const auto proba = make_task("multiclass", {"y", &config})->predict_proba(logits_tensor(), true);
  ASSERT_EQ(proba.sizes(), (std::vector<int64_t>{3, 3}));
  for (size_t i = 0; i < kLogits.size(); ++i) {
    const auto lp = log_softmax_row(kLogits[i]);
    double row_sum = 0.0;
    for (size_t c = 0; c < lp.size(); ++c) {
      EXPECT_NEAR(proba[i][c].item<double>(), std::exp(lp[c]), 1e-6);
      row_sum += proba[i][c].item<double>();
    }
    EXPECT_NEAR(row_sum, 1.0, 1e-6);
  }
}

TEST(OptimPredictions, BinaryGivesTwoColumns) {
  Config config;
  auto logits = torch::tensor({0.0f, 1.0f}).view({1, 2});
  const auto proba = make_task("binary", {"y", &config})->predict_proba(logits, true);
  ASSERT_EQ(proba.sizes(), (std::vector<int64_t>{1, 2}));
  EXPECT_NEAR(proba[0][1].item<double>(), std::exp(1.0) / (1.0 + std::exp(1.0)), 1e-6);
}

TEST(OptimPredictions, RegressionIsFlattenedValues) {
  Config config;
  auto logits = torch::tensor({1.5f, -2.0f, 0.25f}).view({3, 1});
  const auto values = regression_outputs(logits, config);
  ASSERT_EQ(values.sizes(), (std::vector<int64_t>{3}));
  EXPECT_FLOAT_EQ(values[0].item<float>(), 1.5f);
  EXPECT_FLOAT_EQ(values[1].item<float>(), -2.0f);
  EXPECT_FLOAT_EQ(values[2].item<float>(), 0.25f);
}

TEST(OptimPredictions, RegressionUnderBceIsSigmoid) {
  Config config;
  config.set("optim.loss_func", "bce");
  auto logits = torch::tensor({1.5f, -2.0f, 0.0f}).view({3, 1});
  const auto values = regression_outputs(logits, config);
  ASSERT_EQ(values.sizes(), (std::vector<int64_t>{3}));
  const std::vector<double> z = {1.5, -2.0, 0.0};
  for (size_t i = 0; i < z.size(); ++i)
    EXPECT_NEAR(values[i].item<double>(), 1.0 / (1.0 + std::exp(-z[i])), 1e-6);
}

}  // namespace
}  // namespace automm
