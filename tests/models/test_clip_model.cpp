// Parity: tests/models/clip_reference.py transcribes transformers'
// modeling_clip.py, loads the weights written here by name (strict), and
// returns both towers' pooled and projected features; the C++ ClipModel must
// match within 1e-4 in fp32. Also: loading by Hugging Face names, padding, and
// config.json checks.
#include <gtest/gtest.h>

#include "models/clip/clip_model.h"
#include "models/hf_encoder_test_util.h"

namespace automm {
namespace {

using encoder_test::compare_with_reference;
using encoder_test::expect_reference_ready;
using encoder_test::ReferenceCase;
using encoder_test::ReferenceRun;
using encoder_test::run_reference;
using encoder_test::state_of;
using nlohmann::json;

constexpr double kTolerance = 1e-4;
constexpr int64_t kVocab = 60, kBos = 58, kEos = 59;

json small_config(int64_t eos_token_id, int64_t image_size, int64_t patch_size, const std::string& act) {
  return {{"model_type", "clip"},
          {"projection_dim", 24},
          {"text_config",
           {{"vocab_size", kVocab},
            {"hidden_size", 64},
            {"intermediate_size", 96},
            {"num_hidden_layers", 2},
            {"num_attention_heads", 4},
            {"max_position_embeddings", 16},
            {"hidden_act", act},
            {"eos_token_id", eos_token_id}}},
          {"vision_config",
           {{"hidden_size", 48},
            {"intermediate_size", 80},
            {"num_hidden_layers", 2},
            {"num_attention_heads", 4},
            {"image_size", image_size},
            {"patch_size", patch_size},
            {"hidden_act", act}}}};
}

// [bos] tokens [eos] then eos padding, as CLIP's collator pads; lengths count bos and eos.
StateDict clip_inputs(const std::vector<int64_t>& lengths, int64_t seq, int64_t image_size, uint64_t seed) {
  torch::manual_seed(seed);
  const int64_t rows = static_cast<int64_t>(lengths.size());
  auto ids = torch::randint(0, kBos, {rows, seq}, torch::kLong);
  auto mask = torch::zeros({rows, seq}, torch::kLong);
  for (int64_t r = 0; r < rows; ++r) {
    ids[r][0] = kBos;
    ids[r].slice(0, lengths[r] - 1).fill_(kEos);
    mask[r].slice(0, 0, lengths[r]).fill_(1);
  }
  return {{"input_ids", ids}, {"attention_mask", mask},
          {"pixel_values", torch::randn({rows, 3, image_size, image_size})}};
}

// Norm scales near 1, biases and vectors ~0.1, matrices 1 / sqrt(fan_in).
void randomize(torch::nn::Module& module) {
  torch::NoGradGuard no_grad;
  for (auto& item : module.named_parameters()) {
    auto& p = item.value();
    const std::string& name = item.key();
    if (p.dim() == 0) p.fill_(2.0);
    else if (p.dim() == 1 && name.find("norm") != std::string::npos && name.size() > 6 &&
             name.compare(name.size() - 6, 6, "weight") == 0)
      p.copy_(1.0 + 0.2 * torch::randn_like(p));
    else if (p.dim() == 1) p.copy_(0.1 * torch::randn_like(p));
    else p.copy_(torch::randn_like(p) / std::sqrt(static_cast<double>(p.numel() / p.size(0))));
  }
}

ClipModel random_model(const json& config, uint64_t seed) {
  torch::manual_seed(seed);
  ClipModel model(ClipConfig::from_json(config));
  randomize(*model);
  return model;
}

struct ParityCase {
  json config;
  StateDict inputs;
};

const std::map<std::string, ParityCase>& parity_cases() {
  static const std::map<std::string, ParityCase> cases = {
      // openai's configs: eos_token_id 2, pooled at argmax(input_ids).
      {"openai_eos", {small_config(2, 32, 8, "quick_gelu"), clip_inputs({7, 4, 12}, 12, 32, 5)}},
      // Newer configs: the first eos_token_id; gelu; ViT-B/32's geometry (224 px, 32 px patches).
      {"first_eos_224", {small_config(kEos, 224, 32, "gelu"), clip_inputs({16, 3}, 16, 224, 6)}},
  };
  return cases;
}

const ReferenceRun& reference() {
  static ReferenceRun run;
  static const bool done = [] {
    std::map<std::string, ReferenceCase> cases;
    for (const auto& [name, item] : parity_cases())
      cases[name] = {item.config, state_of(*random_model(item.config, 11)), item.inputs};
    run_reference("clip_reference.py", cases, run);
    return true;
  }();
  (void)done;
  return run;
}

class ClipParity : public ::testing::Test {
 protected:
  void SetUp() override { expect_reference_ready(reference()); }

  // The worst of the text and image features' max abs differences.
  double run_case(const std::string& name) {
    const ParityCase& item = parity_cases().at(name);
    ClipModel model = random_model(item.config, 99);
    model->load_hf_state_dict(state_of(*random_model(item.config, 11)));
    model->eval();
    const StateDict expected = reference().outputs(name);
    const auto rows = torch::ones({item.inputs.at("input_ids").size(0)});
    const double text = compare_with_reference(
        name + "_text", [&] { return model->text_features(item.inputs.at("input_ids"), item.inputs.at("attention_mask")); },
        expected.at("text_features"), rows, [&] {
          torch::NoGradGuard no_grad;
          model->text_model->final_layer_norm->bias.add_(0.05);
        });
    const double image = compare_with_reference(
        name + "_image", [&] { return model->image_features(item.inputs.at("pixel_values")); },
        expected.at("image_features"), rows, [&] {
          torch::NoGradGuard no_grad;
          model->vision_model->post_layernorm->bias.add_(0.05);
        });
    return std::max(text, image);
  }
};

TEST_F(ClipParity, OpenaiConfigPoolsAtTheLargestId) { EXPECT_LE(run_case("openai_eos"), kTolerance); }

TEST_F(ClipParity, NewerConfigPoolsAtTheFirstEosAtVitB32Geometry) { EXPECT_LE(run_case("first_eos_224"), kTolerance); }

TEST(ClipModel, PaddingDoesNotChangeTextFeatures) {
  ClipModel model = random_model(small_config(2, 32, 8, "quick_gelu"), 3);
  model->eval();
  torch::NoGradGuard no_grad;
  const StateDict short_inputs = clip_inputs({5}, 5, 32, 7);
  auto ids = torch::full({1, 9}, kEos, torch::kLong);
  ids.slice(1, 0, 5).copy_(short_inputs.at("input_ids"));
  auto mask = torch::zeros({1, 9}, torch::kLong);
  mask.slice(1, 0, 5).fill_(1);
  const auto a = model->text_features(short_inputs.at("input_ids"), short_inputs.at("attention_mask"));
  const auto b = model->text_features(ids, mask);
  EXPECT_LE((a - b).abs().max().item<double>(), 1e-5);
}

TEST(ClipModel, LoadsByHuggingFaceNamesAllOrNothing) {
  const json config = small_config(2, 32, 8, "quick_gelu");
  ClipModel source = random_model(config, 1);
  StateDict weights = state_of(*source);
  for (const char* name : {"text_model.embeddings.token_embedding.weight", "logit_scale",
                           "vision_model.pre_layrnorm.weight", "vision_model.embeddings.class_embedding",
                           "text_model.encoder.layers.1.self_attn.q_proj.bias", "visual_projection.weight"})
    EXPECT_EQ(weights.count(name), 1u) << name;
  // Older files carry the derived position_ids buffers: ignored.
  weights["text_model.embeddings.position_ids"] = torch::arange(16).unsqueeze(0);
  ClipModel target = random_model(config, 2);
  target->load_hf_state_dict(weights);
  EXPECT_TRUE(torch::equal(target->logit_scale, source->logit_scale));
  StateDict missing = weights;
  missing.erase("text_projection.weight");
  ClipModel untouched = random_model(config, 3);
  const auto before = untouched->visual_projection->weight.clone();
  EXPECT_TRUE(testing::Contains(testing::error_of([&] { untouched->load_hf_state_dict(missing); }),
                                "text_projection.weight"));
  EXPECT_TRUE(torch::equal(untouched->visual_projection->weight, before));
}

TEST(ClipModel, AnotherImageSizeResamplesPositionEmbeddings) {
  const json config = small_config(2, 32, 8, "quick_gelu");  // a 4 x 4 grid
  ClipModel source = random_model(config, 1);
  StateDict weights = state_of(*source);
  // Row r, column c of the grid: dim 0 = r, dim 1 = c, so the axes can be told apart.
  auto table = weights.at("vision_model.embeddings.position_embedding.weight").clone();
  for (int64_t r = 0; r < 4; ++r)
    for (int64_t c = 0; c < 4; ++c) {
      table[1 + r * 4 + c][0] = static_cast<double>(r);
      table[1 + r * 4 + c][1] = static_cast<double>(c);
    }
  weights["vision_model.embeddings.position_embedding.weight"] = table;
  Config keys;
  keys.set("model.clip.image_size", 64);  // an 8 x 8 grid
  ClipModel bigger(ClipConfig::from_json(config, keys));
  bigger->load_hf_state_dict(weights);
  const auto resized = bigger->vision_model->embeddings->position_embedding->weight;
  ASSERT_EQ(resized.size(0), 1 + 64);
  EXPECT_TRUE(torch::equal(resized[0], table[0]));  // the class token's row
  const auto grid = resized.slice(0, 1).view({8, 8, -1});
  // Rows grow along the first axis and stay put along the second, and columns the other way.
  EXPECT_GT(grid[5][3][0].item<double>(), grid[2][3][0].item<double>());
  EXPECT_NEAR(grid[5][2][0].item<double>(), grid[5][6][0].item<double>(), 1e-5);
  EXPECT_GT(grid[3][5][1].item<double>(), grid[3][2][1].item<double>());
  EXPECT_NEAR(grid[2][5][1].item<double>(), grid[6][5][1].item<double>(), 1e-5);
  torch::NoGradGuard no_grad;
  EXPECT_EQ(bigger->image_features(torch::randn({1, 3, 64, 64})).size(1), 24);
  keys.set("model.clip.image_size", 60);
  EXPECT_TRUE(testing::Contains(testing::error_of([&] { ClipConfig::from_json(config, keys); }), "model.clip.image_size"));
}

TEST(ClipModel, ConfigErrorsNameTheField) {
  json config = small_config(2, 30, 8, "quick_gelu");
  EXPECT_TRUE(testing::Contains(testing::error_of([&] { ClipConfig::from_json(config); }), "vision_config.image_size"));
  config = small_config(2, 32, 8, "swiglu");
  EXPECT_TRUE(testing::Contains(testing::error_of([&] { ClipConfig::from_json(config); }), "text_config.hidden_act"));
  config = small_config(2, 32, 8, "quick_gelu");
  config["model_type"] = "bert";
  EXPECT_TRUE(testing::Contains(testing::error_of([&] { ClipConfig::from_json(config); }), "model_type"));
  // openai's defaults fill what a config leaves out.
  const ClipConfig defaults = ClipConfig::from_json(json{{"model_type", "clip"}});
  EXPECT_EQ(defaults.text.vocab_size, 49408);
  EXPECT_EQ(defaults.vision.hidden_size, 768);
  EXPECT_EQ(defaults.vision.patch_size, 32);
  EXPECT_EQ(defaults.projection_dim, 512);
}

TEST(ClipModel, WrongImageSizeIsAClearError) {
  ClipModel model = random_model(small_config(2, 32, 8, "quick_gelu"), 3);
  EXPECT_TRUE(testing::Contains(testing::error_of([&] { model->image_features(torch::zeros({1, 3, 64, 64})); }),
                                "pixel_values must be [batch, 3, 32, 32]"));
}

}  // namespace
}  // namespace automm
