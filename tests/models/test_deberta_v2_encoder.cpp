// Tests of the Hugging Face DeBERTa-v2 / v3 encoder (src/models/text/deberta_v2_encoder.h).
// Parity: the test randomizes an encoder, writes its parameters (Hugging Face
// names), inputs and config.json with save_safetensors; tests/models/deberta_v2_reference.py,
// a transcription of transformers' modeling_deberta_v2.py run by /usr/bin/python3,
// loads them strictly by name and writes its last hidden states back, which a
// second encoder, loaded through load_hf_state_dict, must reproduce.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdint>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "models/hf_encoder_test_util.h"
#include "models/text/deberta_v2_encoder.h"

namespace automm {
namespace {

using namespace encoder_test;  // NOLINT: the shared encoder test helpers

constexpr double kParityTolerance = 1e-4;
constexpr int64_t kBatch = 3;
constexpr int64_t kSeq = 12;
const std::vector<int64_t> kLengths = {12, 9, 5};  // real tokens per row; the rest is padding

json base_config() {
  return {{"model_type", "deberta-v2"}, {"vocab_size", 60},           {"hidden_size", 64},
          {"num_hidden_layers", 3},     {"num_attention_heads", 4},   {"intermediate_size", 128},
          {"hidden_act", "gelu"},       {"hidden_dropout_prob", 0.1}, {"attention_probs_dropout_prob", 0.1},
          {"layer_norm_eps", 1e-7},     {"pad_token_id", 0},          {"relative_attention", true}};
}

// deberta-v3: log buckets (inert below 128 tokens), shared attention keys,
// normalized relative embeddings, no absolute positions or token types.
json v3_config() {
  auto config = base_config();
  config.update({{"max_position_embeddings", 512},
                 {"max_relative_positions", -1},
                 {"position_buckets", 256},
                 {"pos_att_type", "p2c|c2p"},
                 {"share_att_key", true},
                 {"norm_rel_ebd", "layer_norm"},
                 {"position_biased_input", false},
                 {"type_vocab_size", 0}});
  return config;
}

// deberta-v2-xlarge style: clamped relative distances (6 < 12 tokens), separate
// pos_key_proj / pos_query_proj, absolute positions, token types, embed_proj.
json v2_config() {
  auto config = base_config();
  config.update({{"max_position_embeddings", 16},
                 {"max_relative_positions", 6},
                 {"position_buckets", 0},
                 {"pos_att_type", {"c2p", "p2c"}},
                 {"share_att_key", false},
                 {"norm_rel_ebd", "none"},
                 {"position_biased_input", true},
                 {"type_vocab_size", 2},
                 {"embedding_size", 32}});
  return config;
}

// Log buckets in use (distances up to 11 > 8 / 2), c2p only (scale factor 2),
// the embedding convolution of deberta-v2-xlarge, 8 heads.
json bucket_conv_config() {
  auto config = base_config();
  config.update({{"num_attention_heads", 8},
                 {"attention_head_size", 8},
                 {"max_position_embeddings", 64},
                 {"max_relative_positions", 16},
                 {"position_buckets", 8},
                 {"pos_att_type", {"c2p"}},
                 {"share_att_key", true},
                 {"norm_rel_ebd", "layer_norm"},
                 {"position_biased_input", false},
                 {"conv_kernel_size", 3},
                 {"conv_groups", 2},
                 {"conv_act", "gelu"}});
  return config;
}

DebertaV2Encoder make_encoder(const json& config, uint64_t seed) {
  torch::manual_seed(seed);
  return DebertaV2Encoder(DebertaV2Config::from_json(config));
}

struct Inputs {
  torch::Tensor input_ids, token_type_ids, attention_mask;  // [batch, seq] int64
};

Inputs make_inputs(int64_t vocab_size, uint64_t seed) {
  torch::manual_seed(seed);
  Inputs inputs;
  inputs.input_ids = torch::randint(1, vocab_size, {kBatch, kSeq}, torch::kLong);
  inputs.attention_mask = torch::zeros({kBatch, kSeq}, torch::kLong);
  inputs.token_type_ids = torch::zeros({kBatch, kSeq}, torch::kLong);
  for (int64_t row = 0; row < kBatch; ++row) {
    const int64_t length = kLengths[row];
    inputs.attention_mask[row].slice(0, 0, length).fill_(1);
    inputs.input_ids[row].slice(0, length).fill_(0);                   // pad_token_id
    inputs.token_type_ids[row].slice(0, length / 2, length).fill_(1);  // second segment
  }
  return inputs;
}

StateDict as_state_dict(const Inputs& inputs) {
  return {{"input_ids", inputs.input_ids},
          {"token_type_ids", inputs.token_type_ids},
          {"attention_mask", inputs.attention_mask}};
}

// --- reference data written by deberta_v2_reference.py --------------------------------------

const std::map<std::string, json>& parity_cases() {
  static const std::map<std::string, json> cases = {
      {"v3", v3_config()}, {"v2", v2_config()}, {"bucket_conv", bucket_conv_config()}};
  return cases;
}

// Every case's weights are seeded, so the tests could rebuild them; they are read back from the run.
const ReferenceRun& reference() {
  static ReferenceRun run;
  static const bool done = [] {
    std::map<std::string, ReferenceCase> cases;
    for (const auto& [name, config] : parity_cases()) {
      auto encoder = make_encoder(config, 11);
      randomize(*encoder);
      cases[name] = {config, state_of(*encoder),
                     as_state_dict(make_inputs(config.at("vocab_size").get<int64_t>(), 12))};
    }
    run_reference("deberta_v2_reference.py", cases, run);
    return true;
  }();
  (void)done;
  return run;
}

class DebertaV2Parity : public ::testing::Test {
 protected:
  void SetUp() override { expect_reference_ready(reference()); }

  // A fresh encoder loads the case's weights with the "deberta." prefix; returns
  // the max abs difference to the reference over all positions (padding
  // included: transformers' outputs there are deterministic too).
  double run_case(const std::string& name) {
    const auto folder = reference().dir / name;
    const auto& config = parity_cases().at(name);
    auto encoder = make_encoder(config, 99);
    encoder->load_hf_state_dict(load_safetensors((folder / "weights.safetensors").string()));
    encoder->eval();
    auto inputs = load_safetensors((folder / "inputs.safetensors").string());
    // Control: a small change to the relative position terms.
    return compare_with_reference(
        name,
        [&] {
          return encoder->forward(inputs.at("input_ids"), inputs.at("token_type_ids"), inputs.at("attention_mask"));
        },
        reference().outputs(name).at("last_hidden_state"), inputs.at("attention_mask"), [&] {
          encoder->named_parameters()["encoder.rel_embeddings.weight"].add_(
              0.05 * torch::randn({2 * DebertaV2Config::from_json(config).relative_span(), 64}));
        });
  }
};

TEST_F(DebertaV2Parity, V3SharedKeysBucketsAndNormalizedRelativeEmbeddings) {
  EXPECT_LE(run_case("v3"), kParityTolerance);
}

TEST_F(DebertaV2Parity, V2SeparatePositionProjectionsAbsolutePositionsAndTokenTypes) {
  EXPECT_LE(run_case("v2"), kParityTolerance);
}

TEST_F(DebertaV2Parity, LogBucketsConvolutionAndC2POnly) {
  EXPECT_LE(run_case("bucket_conv"), kParityTolerance);
}

// --- relative positions ----------------------------------------------------------------------

TEST(DebertaV2Positions, LogBucketsKeepNearDistancesAndCompressFarOnes) {
  auto relative =
      deberta_v2::build_relative_position(16, 16, /*bucket_size=*/8, /*max_position=*/16, torch::kCPU);
  ASSERT_EQ(relative.sizes(), torch::IntArrayRef({16, 16}));
  EXPECT_EQ(relative.scalar_type(), torch::kLong);
  // relative[q][k] = q - k within +-bucket_size / 2 ...
  EXPECT_EQ(relative[5][3].item<int64_t>(), 2);
  EXPECT_EQ(relative[3][7].item<int64_t>(), -4);
  // ... and ceil(log(d / 4) / log(15 / 4) * 3) + 4 beyond, with the sign kept.
  EXPECT_EQ(relative[15][0].item<int64_t>(), 7);
  EXPECT_EQ(relative[0][15].item<int64_t>(), -7);
  EXPECT_EQ(relative[6][0].item<int64_t>(), 5);  // ceil(log(1.5) / log(3.75) * 3) + 4
  // Without buckets the distances are exact.
  auto exact = deberta_v2::build_relative_position(4, 4, 0, 16, torch::kCPU);
  EXPECT_TRUE(
      torch::equal(exact, torch::tensor({{0, -1, -2, -3}, {1, 0, -1, -2}, {2, 1, 0, -1}, {3, 2, 1, 0}})));
}

// --- names -----------------------------------------------------------------------------------

std::set<std::string> parameter_names(const json& config) {
  std::set<std::string> names;
  for (const auto& item : make_encoder(config, 1)->named_parameters()) names.insert(item.key());
  return names;
}

TEST(DebertaV2Names, V3ParametersCarryHuggingFaceNames) {
  auto config = v3_config();
  config["num_hidden_layers"] = 1;
  const std::set<std::string> expected = {
      "embeddings.word_embeddings.weight",
      "embeddings.LayerNorm.weight",
      "embeddings.LayerNorm.bias",
      "encoder.layer.0.attention.self.query_proj.weight",
      "encoder.layer.0.attention.self.query_proj.bias",
      "encoder.layer.0.attention.self.key_proj.weight",
      "encoder.layer.0.attention.self.key_proj.bias",
      "encoder.layer.0.attention.self.value_proj.weight",
      "encoder.layer.0.attention.self.value_proj.bias",
      "encoder.layer.0.attention.output.dense.weight",
      "encoder.layer.0.attention.output.dense.bias",
      "encoder.layer.0.attention.output.LayerNorm.weight",
      "encoder.layer.0.attention.output.LayerNorm.bias",
      "encoder.layer.0.intermediate.dense.weight",
      "encoder.layer.0.intermediate.dense.bias",
      "encoder.layer.0.output.dense.weight",
      "encoder.layer.0.output.dense.bias",
      "encoder.layer.0.output.LayerNorm.weight",
      "encoder.layer.0.output.LayerNorm.bias",
      "encoder.rel_embeddings.weight",
      "encoder.LayerNorm.weight",
      "encoder.LayerNorm.bias",
  };
  EXPECT_EQ(parameter_names(config), expected);
  auto encoder = make_encoder(config, 1);
  EXPECT_EQ(encoder->named_buffers().size(), 0u);
  // 2 * position_buckets relative embeddings.
  EXPECT_EQ(encoder->named_parameters()["encoder.rel_embeddings.weight"].sizes(),
            torch::IntArrayRef({512, 64}));
}

TEST(DebertaV2Names, OptionalModulesFollowTheConfig) {
  auto v2 = parameter_names(v2_config());
  for (const std::string name :
       {"embeddings.position_embeddings.weight", "embeddings.token_type_embeddings.weight",
        "embeddings.embed_proj.weight", "encoder.layer.2.attention.self.pos_key_proj.weight",
        "encoder.layer.2.attention.self.pos_key_proj.bias",
        "encoder.layer.2.attention.self.pos_query_proj.weight",
        "encoder.layer.2.attention.self.pos_query_proj.bias"}) {
    EXPECT_EQ(v2.count(name), 1u) << name;
  }
  EXPECT_EQ(v2.count("embeddings.embed_proj.bias"), 0u);  // transformers: bias=False
  EXPECT_EQ(v2.count("encoder.LayerNorm.weight"), 0u);    // norm_rel_ebd none
  auto v2_encoder = make_encoder(v2_config(), 1);
  auto params = v2_encoder->named_parameters();
  EXPECT_EQ(params["encoder.rel_embeddings.weight"].sizes(),
            torch::IntArrayRef({12, 64}));  // 2 * max_relative_positions
  EXPECT_EQ(params["embeddings.word_embeddings.weight"].sizes(), torch::IntArrayRef({60, 32}));
  EXPECT_EQ(params["embeddings.LayerNorm.weight"].sizes(), torch::IntArrayRef({64}));

  auto conv = parameter_names(bucket_conv_config());
  for (const std::string name : {"encoder.conv.conv.weight", "encoder.conv.conv.bias",
                                 "encoder.conv.LayerNorm.weight", "encoder.conv.LayerNorm.bias"}) {
    EXPECT_EQ(conv.count(name), 1u) << name;
  }
  EXPECT_EQ(conv.count("encoder.layer.0.attention.self.pos_key_proj.weight"), 0u);  // share_att_key

  auto absolute_only = base_config();
  absolute_only.update({{"relative_attention", false}, {"max_position_embeddings", 16}});
  auto names = parameter_names(absolute_only);
  EXPECT_EQ(names.count("encoder.rel_embeddings.weight"), 0u);
  EXPECT_EQ(names.count("embeddings.position_embeddings.weight"), 1u);
}

// --- load_hf_state_dict ------------------------------------------------------------------------

TEST(DebertaV2Load, ListsMissingAndUnexpectedTensors) {
  auto encoder = make_encoder(v3_config(), 1);
  auto weights = state_of(*encoder, "deberta.");
  weights.erase("deberta.encoder.rel_embeddings.weight");
  weights["deberta.encoder.layer.3.output.dense.bias"] = torch::zeros({64});
  auto message = error_of([&] { encoder->load_hf_state_dict(weights); });
  EXPECT_TRUE(contains(message, "missing 1 tensor(s): encoder.rel_embeddings.weight")) << message;
  EXPECT_TRUE(contains(message, "unexpected 1 tensor(s): deberta.encoder.layer.3.output.dense.bias"))
      << message;
  EXPECT_TRUE(contains(message, "deberta-v2 encoder (3 layers, hidden 64)")) << message;
  auto empty_message = error_of([&] { encoder->load_hf_state_dict({}); });
  EXPECT_TRUE(contains(empty_message, "more)")) << empty_message;  // long lists stop after 20 names
  EXPECT_THROW(encoder->load_hf_state_dict({}), std::runtime_error);
}

TEST(DebertaV2Load, StripsPrefixAndIgnoresHeadsAndUnusedPositions) {
  auto source = make_encoder(v3_config(), 1);
  auto target = make_encoder(v3_config(), 2);
  auto weights = state_of(*source, "deberta.");
  weights["deberta.embeddings.position_ids"] = torch::arange(512).unsqueeze(0);
  weights["deberta.embeddings.position_embeddings.weight"] = torch::zeros({512, 64});  // unused in v3
  weights["lm_predictions.lm_head.dense.weight"] = torch::zeros({64, 64});
  weights["pooler.dense.weight"] = torch::zeros({64, 64});
  weights["classifier.weight"] = torch::zeros({2, 64});
  target->load_hf_state_dict(weights);
  expect_parameters_equal(*target, state_of(*source), "");
  // With absolute positions the same tensor is a parameter, so it loads.
  auto v2 = make_encoder(v2_config(), 3);
  auto v2_weights = state_of(*make_encoder(v2_config(), 4));
  v2->load_hf_state_dict(v2_weights);
  EXPECT_TRUE(torch::equal(v2->named_parameters()["embeddings.position_embeddings.weight"],
                           v2_weights.at("embeddings.position_embeddings.weight")));
}

TEST(DebertaV2Load, ShapeMismatchNamesTensorAndShapesAndLoadsNothing) {
  auto encoder = make_encoder(v2_config(), 1);
  expect_shape_mismatch_rejected(*encoder, state_of(*make_encoder(v2_config(), 2), "deberta."),
                                 "deberta.encoder.rel_embeddings.weight", {512, 64}, {12, 64});
}

// --- DebertaV2Config::from_json ------------------------------------------------------------------

TEST(DebertaV2Config, ParsesFieldsAndTransformersDefaults) {
  auto defaults = DebertaV2Config::from_json(json::object());
  EXPECT_EQ(defaults.vocab_size, 128100);
  EXPECT_EQ(defaults.hidden_size, 1536);
  EXPECT_EQ(defaults.num_hidden_layers, 24);
  EXPECT_EQ(defaults.intermediate_size, 6144);
  EXPECT_EQ(defaults.max_position_embeddings, 512);
  EXPECT_EQ(defaults.type_vocab_size, 0);
  EXPECT_DOUBLE_EQ(defaults.layer_norm_eps, 1e-7);
  EXPECT_TRUE(defaults.position_biased_input);
  EXPECT_FALSE(defaults.relative_attention);
  EXPECT_FALSE(defaults.share_att_key);
  EXPECT_TRUE(defaults.pos_att_type.empty());
  EXPECT_EQ(defaults.norm_rel_ebd, "none");
  EXPECT_EQ(defaults.embedding_size, 1536);
  EXPECT_EQ(defaults.attention_head_size, 64);
  EXPECT_EQ(defaults.conv_kernel_size, 0);

  auto v3 = DebertaV2Config::from_json(v3_config());
  EXPECT_TRUE(v3.has_c2p() && v3.has_p2c());
  EXPECT_TRUE(v3.norm_rel_embeddings());
  EXPECT_EQ(v3.max_relative_distance(), 512);  // -1 -> max_position_embeddings
  EXPECT_EQ(v3.relative_span(), 256);          // position_buckets
  auto v2 = DebertaV2Config::from_json(v2_config());
  EXPECT_EQ(v2.pos_att_type, (std::vector<std::string>{"c2p", "p2c"}));
  EXPECT_EQ(v2.relative_span(), 6);
  auto spaced = v3_config();
  spaced["pos_att_type"] = " C2P | p2c";
  spaced["norm_rel_ebd"] = "Layer_Norm";
  auto parsed = DebertaV2Config::from_json(spaced);
  EXPECT_TRUE(parsed.has_c2p() && parsed.has_p2c() && parsed.norm_rel_embeddings());
  auto null_pad = v3_config();
  null_pad["pad_token_id"] = nullptr;
  EXPECT_EQ(DebertaV2Config::from_json(null_pad).pad_token_id, -1);
}

TEST(DebertaV2Config, ErrorsNameTheField) {
  auto with = [](const std::string& field, const json& value) {
    auto config = v3_config();
    config[field] = value;
    return error_of([&] { DebertaV2Config::from_json(config); });
  };
  auto message = with("model_type", "deberta");
  EXPECT_TRUE(contains(message, "'model_type'") && contains(message, "'deberta'") && contains(message, "v1"))
      << message;
  message = with("hidden_size", "64");
  EXPECT_TRUE(contains(message, "'hidden_size'") && contains(message, "integer")) << message;
  message = with("hidden_size", 66);
  EXPECT_TRUE(contains(message, "'hidden_size'") && contains(message, "multiple of num_attention_heads"))
      << message;
  message = with("attention_head_size", 8);
  EXPECT_TRUE(contains(message, "'attention_head_size'") && contains(message, "hidden_size 64")) << message;
  message = with("pos_att_type", "p2c|p2p");
  EXPECT_TRUE(contains(message, "'pos_att_type'") && contains(message, "'p2p'")) << message;
  message = with("pos_att_type", 3);
  EXPECT_TRUE(contains(message, "'pos_att_type'")) << message;
  message = with("norm_rel_ebd", "batch_norm");
  EXPECT_TRUE(contains(message, "'norm_rel_ebd'") && contains(message, "layer_norm")) << message;
  message = with("share_att_key", "yes");
  EXPECT_TRUE(contains(message, "'share_att_key'") && contains(message, "true or false")) << message;
  message = with("hidden_act", "gelu_fastest");
  EXPECT_TRUE(contains(message, "'hidden_act'") && contains(message, "gelu_new")) << message;
  message = with("conv_kernel_size", 2);
  EXPECT_TRUE(contains(message, "'conv_kernel_size'") && contains(message, "odd")) << message;
  message = with("conv_kernel_size", 3);
  EXPECT_TRUE(message.empty()) << message;
  auto conv = v3_config();
  conv.update({{"conv_kernel_size", 3}, {"conv_groups", 5}});
  message = error_of([&] { DebertaV2Config::from_json(conv); });
  EXPECT_TRUE(contains(message, "'conv_groups'")) << message;
  message = with("type_vocab_size", -1);
  EXPECT_TRUE(contains(message, "'type_vocab_size'")) << message;
  message = with("num_hidden_layers", 0);
  EXPECT_TRUE(contains(message, "'num_hidden_layers'") && contains(message, "positive")) << message;
  message = with("position_buckets", 1);
  EXPECT_TRUE(contains(message, "'position_buckets'")) << message;
  message = with("hidden_dropout_prob", 1.5);
  EXPECT_TRUE(contains(message, "'hidden_dropout_prob'")) << message;
  message = with("pad_token_id", 60);
  EXPECT_TRUE(contains(message, "'pad_token_id'")) << message;
  EXPECT_THROW(DebertaV2Config::from_json(json::array()), std::invalid_argument);
}

// --- forward -------------------------------------------------------------------------------------

TEST(DebertaV2Forward, InterfaceAndFactory) {
  std::shared_ptr<TextEncoderImpl> v3 = make_deberta_v2_encoder(v3_config());
  EXPECT_EQ(v3->hidden_size(), 64);
  EXPECT_EQ(v3->type_vocab_size(), 0);
  EXPECT_EQ(v3->max_sequence_length(), DebertaV2EncoderImpl::kUnboundedSequenceLength);
  EXPECT_TRUE(v3->named_parameters().contains("encoder.rel_embeddings.weight"));
  auto v2 = make_deberta_v2_encoder(v2_config());
  EXPECT_EQ(v2->type_vocab_size(), 2);
  EXPECT_EQ(v2->max_sequence_length(), 16);
  EXPECT_FALSE(v2->gradient_checkpointing());
  v2->set_gradient_checkpointing(true);
  EXPECT_TRUE(v2->gradient_checkpointing());
  EXPECT_THROW(make_deberta_v2_encoder({{"model_type", "bert"}}), std::invalid_argument);
}

TEST(DebertaV2Forward, AttentionMaskHidesPaddedTokens) {
  for (const auto& config : {v3_config(), v2_config(), bucket_conv_config()}) {
    auto encoder = make_encoder(config, 3);
    randomize(*encoder);
    encoder->eval();
    auto inputs = make_inputs(60, 5);
    auto changed_ids = inputs.input_ids.clone();
    changed_ids[2][7] = 33;  // row 2 has 5 tokens
    auto forward = [&encoder](const torch::Tensor& ids, const torch::Tensor& types, const torch::Tensor& mask) {
      return encoder->forward(ids, types, mask);
    };
    auto base = expect_mask_hides_padding(forward, inputs.input_ids, inputs.token_type_ids, inputs.attention_mask,
                                          changed_ids, inputs.token_type_ids, 1e-5);
    EXPECT_EQ(base.sizes(), torch::IntArrayRef({kBatch, kSeq, 64}));
  }
}

TEST(DebertaV2Forward, TokenTypesOnlyMatterWithTokenTypeEmbeddings) {
  torch::NoGradGuard no_grad;
  auto inputs = make_inputs(60, 6);
  auto v3 = make_encoder(v3_config(), 4);
  v3->eval();
  auto v3_zero = v3->forward(inputs.input_ids, torch::Tensor(), inputs.attention_mask);
  EXPECT_TRUE(
      torch::equal(v3->forward(inputs.input_ids, inputs.token_type_ids, inputs.attention_mask), v3_zero));
  auto v2 = make_encoder(v2_config(), 4);
  randomize(*v2);
  v2->eval();
  auto v2_zero = v2->forward(inputs.input_ids, torch::zeros_like(inputs.input_ids), inputs.attention_mask);
  EXPECT_TRUE(torch::equal(v2->forward(inputs.input_ids, torch::Tensor(), inputs.attention_mask), v2_zero));
  EXPECT_FALSE(
      torch::allclose(v2->forward(inputs.input_ids, inputs.token_type_ids, inputs.attention_mask), v2_zero));
}

TEST(DebertaV2Forward, SequenceLengthLimitOnlyWithAbsolutePositions) {
  auto v2 = make_encoder(v2_config(), 6);  // max_position_embeddings 16
  expect_rejects_malformed_ids(*v2);
  expect_sequence_limit(*v2, "DebertaV2Encoder", 16);
  torch::NoGradGuard no_grad;
  auto relative_only = bucket_conv_config();
  relative_only["max_position_embeddings"] = 16;
  auto v3 = make_encoder(relative_only, 6);
  v3->eval();
  EXPECT_EQ(v3->forward(torch::full({1, 40}, 3, torch::kLong), torch::Tensor(), torch::Tensor()).size(1), 40);
}

TEST(DebertaV2Forward, DropoutOnlyInTrainMode) {
  auto encoder = make_encoder(v3_config(), 4);
  auto inputs = make_inputs(60, 7);
  expect_dropout_only_in_train_mode(*encoder, [&] {
    return encoder->forward(inputs.input_ids, inputs.token_type_ids, inputs.attention_mask);
  });
}

TEST(DebertaV2Forward, BackwardReachesEveryParameter) {
  // Every optional module at once: positions, token types, embed_proj, separate
  // position projections, normalized relative embeddings and the convolution.
  auto config = v2_config();
  config.update({{"norm_rel_ebd", "layer_norm"}, {"conv_kernel_size", 3}});
  auto encoder = make_encoder(config, 7);
  randomize(*encoder);
  auto inputs = make_inputs(60, 8);
  encoder->forward(inputs.input_ids, inputs.token_type_ids, inputs.attention_mask).pow(2).mean().backward();
  for (const auto& item : encoder->named_parameters()) {
    ASSERT_TRUE(item.value().grad().defined()) << item.key();
    EXPECT_GT(item.value().grad().abs().sum().item<double>(), 0.0) << item.key();
  }
}

TEST(DebertaV2Forward, RunsUnderCpuBf16Autocast) {
  auto encoder = make_encoder(v3_config(), 9);
  randomize(*encoder);
  encoder->eval();
  auto inputs = make_inputs(60, 9);
  expect_runs_under_bf16_autocast(
      [&] { return encoder->forward(inputs.input_ids, inputs.token_type_ids, inputs.attention_mask); },
      inputs.attention_mask);
}

}  // namespace
}  // namespace automm
