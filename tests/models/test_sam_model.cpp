// Parity: tests/models/sam_reference.py transcribes AutoGluon's SAM fork
// (transformers' modeling_sam.py as AutoMM runs it) and AutoMM's
// SAMForSemanticSegmentation, loads the Hugging Face-layout weights written
// here by name (strict), and returns the image embeddings, the positional and
// dense prompt embeddings, the unmodified model's masks and iou scores, and
// AutoMM's logits; the C++ SamModel must match within 1e-4 in fp32 at 1024
// pixels with a small width, at a resampled image size, and for multi-class
// outputs. Also: loading by Hugging Face names, config.json checks.
#include <gtest/gtest.h>

#include "models/hf_encoder_test_util.h"
#include "models/sam/sam_model.h"

namespace automm {
namespace {

using encoder_test::expect_reference_ready;
using encoder_test::ReferenceCase;
using encoder_test::ReferenceRun;
using encoder_test::run_reference;
using encoder_test::state_of;
using nlohmann::json;

constexpr double kTolerance = 1e-4;

// A small SAM: `layers` vision layers of width 32 (layer 1 global), windows of
// `window` patches, a mask decoder of width `decoder`.
json small_config(int64_t image_size, int64_t window, int64_t decoder, int64_t layers = 2) {
  return {{"model_type", "sam"},
          {"vision_config",
           {{"hidden_size", 32},
            {"num_hidden_layers", layers},
            {"num_attention_heads", 2},
            {"mlp_dim", 48},
            {"image_size", image_size},
            {"patch_size", 16},
            {"window_size", window},
            {"global_attn_indexes", {1}},
            {"output_channels", decoder},
            {"num_pos_feats", decoder / 2}}},
          {"prompt_encoder_config", {{"hidden_size", decoder}, {"image_size", image_size}, {"patch_size", 16}}},
          {"mask_decoder_config",
           {{"hidden_size", decoder},
            {"mlp_dim", 2 * decoder},
            {"num_attention_heads", 2},
            {"iou_head_hidden_dim", decoder}}}};
}

// Norm scales near 1, biases and vectors ~0.1, matrices 1 / sqrt(fan_in),
// relative position tables and the positional Gaussian ~1.
void randomize(torch::nn::Module& module) {
  torch::NoGradGuard no_grad;
  for (auto& item : module.named_parameters()) {
    auto& p = item.value();
    const std::string& name = item.key();
    const bool norm = name.find("norm") != std::string::npos;
    if (name.find("rel_pos") != std::string::npos || name.find("positional_embedding") != std::string::npos ||
        name.find("pos_embed") != std::string::npos)
      p.copy_(torch::randn_like(p));
    else if (p.dim() == 1 && norm && name.size() > 6 && name.compare(name.size() - 6, 6, "weight") == 0)
      p.copy_(1.0 + 0.2 * torch::randn_like(p));
    else if (p.dim() == 1)
      p.copy_(0.1 * torch::randn_like(p));
    else if (p.size(0) == 1 || name.find("tokens") != std::string::npos || name.find("embed.weight") != std::string::npos)
      p.copy_(torch::randn_like(p));
    else
      p.copy_(torch::randn_like(p) / std::sqrt(static_cast<double>(p.numel() / p.size(0))));
  }
}

SamModel random_model(const json& config, uint64_t seed) {
  torch::manual_seed(seed);
  SamModel model(SamConfig::from_json(config));
  randomize(*model);
  return model;
}

struct ParityCase {
  json config;           // the checkpoint's config.json
  int64_t image_size;    // AutoMM's (model.sam.image_size)
  int64_t tokens = 1, classes = 1;
};

const std::map<std::string, ParityCase>& parity_cases() {
  static const std::map<std::string, ParityCase> cases = {
      // SAM's own geometry (1024 pixels: a 64 x 64 grid, windows of 14 padded to 70) with a small width.
      {"binary_1024", {small_config(1024, 14, 32), 1024}},
      // Windows of 3 on a 4 x 4 grid (padded to 6); SAM's 256-wide decoder.
      {"binary_64_decoder_256", {small_config(64, 3, 256), 64}},
      // Weights for 128 pixels read at 64: pos_embed and the global layer's tables resampled.
      {"resampled_128_to_64", {small_config(128, 2, 32), 64}},
      // Multi-class: 4 mask tokens, 3 classes, at 96 pixels from 128-pixel weights.
      {"multiclass_96", {small_config(128, 4, 32, 3), 96, 4, 3}},
  };
  return cases;
}

StateDict case_inputs(const ParityCase& item, uint64_t seed) {
  torch::manual_seed(seed);
  StateDict inputs = {{"pixel_values", torch::randn({2, 3, item.image_size, item.image_size})}};
  const int64_t hidden = item.config["mask_decoder_config"]["hidden_size"].get<int64_t>();
  inputs["mask_tokens"] = torch::randn({item.tokens, hidden});
  if (item.classes > 1) {
    inputs["classifier_weight"] = torch::randn({item.classes + 1, hidden}) / std::sqrt(static_cast<double>(hidden));
    inputs["classifier_bias"] = 0.1 * torch::randn({item.classes + 1});
  }
  return inputs;
}

const ReferenceRun& reference() {
  static ReferenceRun run;
  static const bool done = [] {
    std::map<std::string, ReferenceCase> cases;
    for (const auto& [name, item] : parity_cases()) {
      json config = item.config;
      config["automm"] = {{"num_mask_tokens", item.tokens}, {"num_classes", item.classes}, {"image_size", item.image_size}};
      cases[name] = {config, state_of(*random_model(item.config, 11)), case_inputs(item, 5)};
    }
    run_reference("sam_reference.py", cases, run);
    return true;
  }();
  (void)done;
  return run;
}

double max_diff(const torch::Tensor& a, const torch::Tensor& b, const std::string& what) {
  EXPECT_EQ(a.sizes(), b.sizes()) << what;
  if (a.sizes() != b.sizes()) return 1e9;
  EXPECT_GT(b.abs().max().item<double>(), 1e-3) << what << ": the reference computed nothing";
  return (a - b).abs().max().item<double>();
}

class SamParity : public ::testing::Test {
 protected:
  void SetUp() override { expect_reference_ready(reference()); }

  // Every output's max abs difference, by name.
  std::map<std::string, double> run_case(const std::string& name) {
    const ParityCase& item = parity_cases().at(name);
    Config keys;
    keys.set("model.sam.image_size", item.image_size);
    SamModel model(SamConfig::from_json(item.config, keys));
    model->load_hf_state_dict(state_of(*random_model(item.config, 11)));
    model->eval();
    torch::NoGradGuard no_grad;
    const StateDict inputs = case_inputs(item, 5);
    const StateDict expected = reference().outputs(name);
    std::map<std::string, double> diffs;
    const torch::Tensor pixels = inputs.at("pixel_values");
    const torch::Tensor embeddings = model->image_embeddings(pixels);
    diffs["image_embeddings"] = max_diff(embeddings, expected.at("image_embeddings"), "image_embeddings");
    diffs["image_pe"] = max_diff(model->image_positional_embeddings(), expected.at("image_pe"), "image_pe");
    const int64_t grid = item.image_size / 16;
    diffs["dense_embeddings"] =
        max_diff(model->prompt_encoder->dense_embeddings(grid), expected.at("dense_embeddings"), "dense_embeddings");
    const sam::DecoderOutput hf = model->decode(embeddings);  // Hugging Face's layout: multimask_output=False
    diffs["hf_pred_masks"] = max_diff(hf.masks.slice(1, 0, 1).unsqueeze(1), expected.at("hf_pred_masks"), "hf_pred_masks");
    diffs["hf_iou_scores"] = max_diff(hf.iou.slice(1, 0, 1).unsqueeze(1), expected.at("hf_iou_scores"), "hf_iou_scores");
    model->mask_decoder->adapt_for_semantic_segmentation(item.tokens, item.classes);
    model->mask_decoder->mask_tokens->weight.copy_(inputs.at("mask_tokens"));
    if (item.classes > 1) {
      model->mask_decoder->output_classifier_mlps->weight.copy_(inputs.at("classifier_weight"));
      model->mask_decoder->output_classifier_mlps->bias.copy_(inputs.at("classifier_bias"));
    }
    const SamOutput out = model->forward(pixels);
    diffs["automm_logits"] = max_diff(out.logits, expected.at("automm_logits"), "automm_logits");
    if (item.classes > 1)
      diffs["automm_class_logits"] =
          max_diff(out.class_logits, expected.at("automm_class_logits"), "automm_class_logits");
    return diffs;
  }

  void expect_parity(const std::string& name) {
    for (const auto& [output, diff] : run_case(name)) {
      EXPECT_LE(diff, kTolerance) << name << ": " << output;
      std::cout << "[ parity   ] " << name << " " << output << " max abs diff " << diff << "\n";
    }
  }
};

TEST_F(SamParity, At1024PixelsWithWindowedAndGlobalAttention) { expect_parity("binary_1024"); }

TEST_F(SamParity, PaddedWindowsAndSamsDecoderWidth) { expect_parity("binary_64_decoder_256"); }

TEST_F(SamParity, ResampledToAnotherImageSize) { expect_parity("resampled_128_to_64"); }

TEST_F(SamParity, MultiClassOutputsWithDistinctTokens) { expect_parity("multiclass_96"); }

// The control: a wrong weight moves the outputs well past the tolerance.
TEST_F(SamParity, ControlAPerturbedWeightIsCaught) {
  const ParityCase& item = parity_cases().at("binary_64_decoder_256");
  SamModel model(SamConfig::from_json(item.config));
  model->load_hf_state_dict(state_of(*random_model(item.config, 11)));
  model->eval();
  torch::NoGradGuard no_grad;
  model->vision_encoder->neck->layer_norm2->bias.add_(0.05);
  const torch::Tensor embeddings = model->image_embeddings(case_inputs(item, 5).at("pixel_values"));
  EXPECT_GT((embeddings - reference().outputs("binary_64_decoder_256").at("image_embeddings")).abs().max().item<double>(),
            10 * kTolerance);
}

TEST(SamModel, LoadsByHuggingFaceNamesAllOrNothing) {
  const json config = small_config(64, 2, 32);
  SamModel source = random_model(config, 1);
  StateDict weights = state_of(*source);
  for (const char* name :
       {"shared_image_embedding.positional_embedding", "vision_encoder.pos_embed",
        "vision_encoder.patch_embed.projection.weight", "vision_encoder.layers.1.attn.rel_pos_h",
        "vision_encoder.layers.0.attn.qkv.weight", "vision_encoder.neck.conv2.weight",
        "prompt_encoder.mask_embed.conv1.weight", "prompt_encoder.point_embed.3.weight",
        "prompt_encoder.not_a_point_embed.weight", "prompt_encoder.no_mask_embed.weight",
        "mask_decoder.iou_token.weight", "mask_decoder.mask_tokens.weight",
        "mask_decoder.transformer.layers.0.cross_attn_image_to_token.q_proj.weight",
        "mask_decoder.transformer.layer_norm_final_attn.weight", "mask_decoder.output_hypernetworks_mlps.3.proj_out.bias",
        "mask_decoder.iou_prediction_head.layers.0.weight", "mask_decoder.upscale_layer_norm.weight"})
    EXPECT_EQ(weights.count(name), 1u) << name;
  EXPECT_EQ(weights.at("mask_decoder.mask_tokens.weight").size(0), 4);
  // Files saved by transformers may carry the prompt encoder's tied copy: skipped.
  weights["prompt_encoder.shared_embedding.positional_embedding"] =
      weights.at("shared_image_embedding.positional_embedding");
  SamModel target = random_model(config, 2);
  target->load_hf_state_dict(weights);
  EXPECT_TRUE(torch::equal(target->vision_encoder->pos_embed, source->vision_encoder->pos_embed));
  StateDict missing = weights;
  missing.erase("mask_decoder.iou_token.weight");
  SamModel untouched = random_model(config, 3);
  const auto before = untouched->vision_encoder->pos_embed.clone();
  EXPECT_TRUE(testing::Contains(testing::error_of([&] { untouched->load_hf_state_dict(missing); }),
                                "mask_decoder.iou_token.weight"));
  EXPECT_TRUE(torch::equal(untouched->vision_encoder->pos_embed, before));
}

TEST(SamModel, AutomMsDecoderChangeCopiesTokenZeroAndKeepsOneHypernetwork) {
  SamModel model = random_model(small_config(64, 2, 32), 4);
  const torch::Tensor token0 = model->mask_decoder->mask_tokens->weight[0].clone();
  const torch::Tensor mlp0 = model->mask_decoder->output_hypernetworks_mlps[0]
                                 ->as<sam::FeedForwardImpl>()
                                 ->proj_in->weight.clone();
  model->mask_decoder->adapt_for_semantic_segmentation(5, 3);
  ASSERT_EQ(model->mask_decoder->mask_tokens->weight.size(0), 5);
  for (int64_t t = 0; t < 5; ++t) EXPECT_TRUE(torch::equal(model->mask_decoder->mask_tokens->weight[t], token0));
  ASSERT_EQ(model->mask_decoder->output_hypernetworks_mlps->size(), 1u);
  EXPECT_TRUE(torch::equal(
      model->mask_decoder->output_hypernetworks_mlps[0]->as<sam::FeedForwardImpl>()->proj_in->weight, mlp0));
  EXPECT_EQ(model->mask_decoder->output_classifier_mlps->weight.size(0), 4);  // 3 classes + no object
  torch::NoGradGuard no_grad;
  model->eval();
  const SamOutput out = model->forward(torch::randn({1, 3, 64, 64}));
  EXPECT_EQ(out.logits.sizes(), (std::vector<int64_t>{1, 5, 64, 64}));
  EXPECT_EQ(out.class_logits.sizes(), (std::vector<int64_t>{1, 5, 4}));
}

TEST(SamModel, ConfigErrorsNameTheField) {
  json bad = small_config(64, 2, 32);
  bad["vision_config"]["hidden_size"] = 30;  // not a multiple of 4 heads
  bad["vision_config"]["num_attention_heads"] = 4;
  EXPECT_TRUE(testing::Contains(testing::error_of([&] { SamConfig::from_json(bad); }), "num_attention_heads"));
  json mismatch = small_config(64, 2, 32);
  mismatch["mask_decoder_config"]["hidden_size"] = 64;
  EXPECT_TRUE(testing::Contains(testing::error_of([&] { SamConfig::from_json(mismatch); }), "mask_decoder_config"));
  json global = small_config(64, 2, 32);
  global["vision_config"]["global_attn_indexes"] = {7};
  EXPECT_TRUE(testing::Contains(testing::error_of([&] { SamConfig::from_json(global); }), "global_attn_indexes"));
  EXPECT_TRUE(testing::Contains(testing::error_of([&] { SamConfig::from_json({{"model_type", "clip"}}); }), "clip"));
  Config keys;
  keys.set("model.sam.image_size", 100);
  EXPECT_TRUE(testing::Contains(testing::error_of([&] { SamConfig::from_json(small_config(64, 2, 32), keys); }),
                                "model.sam.image_size"));
}

TEST(SamModel, ScratchTinyBuildsAndRunsAtItsSize) {
  Config keys;
  keys.set("model.sam.image_size", 64);
  SamModel model(SamConfig::from_json(scratch_sam_config("scratch:sam-tiny").to_json(), keys));
  initialize_sam_weights(*model);
  model->mask_decoder->adapt_for_semantic_segmentation(1, 1);
  torch::NoGradGuard no_grad;
  const SamOutput out = model->forward(torch::randn({2, 3, 64, 64}));
  EXPECT_EQ(out.logits.sizes(), (std::vector<int64_t>{2, 1, 64, 64}));
  EXPECT_TRUE(torch::isfinite(out.logits).all().item<bool>());
  EXPECT_TRUE(testing::Contains(testing::error_of([] { scratch_sam_config("scratch:sam-huge"); }), "scratch:sam-tiny"));
}

}  // namespace
}  // namespace automm
