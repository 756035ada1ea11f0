// Tests of the Hugging Face MPNet encoder (src/models/text/mpnet_encoder.h).
// Parity: the test randomizes an encoder and writes its parameters (Hugging
// Face names), inputs and config.json; tests/models/mpnet_reference.py, a
// transcription of transformers' modeling_mpnet.py run by /usr/bin/python3,
// loads them strictly by name and writes its last hidden states (and relative
// position buckets) back, which a second encoder, loaded through
// load_hf_state_dict, must reproduce.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <iostream>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "models/hf_encoder_test_util.h"
#include "models/text/mpnet_encoder.h"

namespace automm {
namespace {

using namespace encoder_test;  // NOLINT: the shared encoder test helpers

constexpr double kParityTolerance = 1e-4;
constexpr int64_t kVocab = 60;
constexpr int64_t kPad = MPNetConfig::kPaddingIdx;

// 140 tokens: query-key distances up to 139 reach every bucket, the clamped
// ones beyond max_distance 128 included; rows of 140, 100 and 7 tokens.
constexpr int64_t kLongSeq = 140;
const std::vector<int64_t> kLongLengths = {140, 100, 7};
constexpr int64_t kShortSeq = 12;
const std::vector<int64_t> kShortLengths = {12, 9, 5};

json base_config() {
  return {{"model_type", "mpnet"},
          {"vocab_size", kVocab},
          {"hidden_size", 32},
          {"num_hidden_layers", 2},
          {"num_attention_heads", 4},
          {"intermediate_size", 64},
          {"hidden_act", "gelu"},
          {"hidden_dropout_prob", 0.1},
          {"attention_probs_dropout_prob", 0.1},
          {"max_position_embeddings", kLongSeq + 2},
          {"layer_norm_eps", 1e-12},
          {"relative_attention_num_buckets", 32},
          {"pad_token_id", kPad}};
}

// More stored bucket rows than transformers uses (it always buckets into 32),
// relu, 8 heads of 4, three layers, a looser LayerNorm epsilon.
json wide_table_config() {
  auto config = base_config();
  config.update({{"relative_attention_num_buckets", 40},
                 {"hidden_act", "relu"},
                 {"num_attention_heads", 8},
                 {"num_hidden_layers", 3},
                 {"layer_norm_eps", 1e-5},
                 {"max_position_embeddings", 20}});
  return config;
}

json no_dropout_config() {
  auto config = base_config();
  config.update({{"hidden_dropout_prob", 0.0}, {"attention_probs_dropout_prob", 0.0}});
  return config;
}

MPNetEncoder make_encoder(const json& config, uint64_t seed) {
  torch::manual_seed(seed);
  return MPNetEncoder(MPNetConfig::from_json(config));
}

MPNetEncoder random_encoder(const json& config, uint64_t seed) {
  auto encoder = make_encoder(config, seed);
  randomize(*encoder);
  return encoder;
}

// Token ids from 2 up (1 is the padding index, which also sets position ids).
StateDict long_inputs(uint64_t seed) { return padded_inputs(kVocab, kLongSeq, kLongLengths, 2, kPad, seed); }
StateDict short_inputs(uint64_t seed) {
  return padded_inputs(kVocab, kShortSeq, kShortLengths, 2, kPad, seed);
}

torch::Tensor run(MPNetEncoder& encoder, const StateDict& inputs) {
  return encoder->forward(inputs.at("input_ids"), torch::Tensor(), inputs.at("attention_mask"));
}

EncoderCall forward_of(MPNetEncoder& encoder) {
  return [encoder](const torch::Tensor& ids, const torch::Tensor& types, const torch::Tensor& mask) mutable {
    return encoder->forward(ids, types, mask);
  };
}

// --- parity with mpnet_reference.py ---------------------------------------------------------------

struct ParityCase {
  json config;
  StateDict inputs;
};

const std::map<std::string, ParityCase>& parity_cases() {
  static const std::map<std::string, ParityCase> cases = {
      {"long", {base_config(), long_inputs(12)}}, {"wide_table", {wide_table_config(), short_inputs(12)}}};
  return cases;
}

const ReferenceRun& reference() {
  static ReferenceRun run;
  static const bool done = [] {
    std::map<std::string, ReferenceCase> cases;
    for (const auto& [name, item] : parity_cases()) {
      cases[name] = {item.config, state_of(*random_encoder(item.config, 11)), item.inputs};
    }
    run_reference("mpnet_reference.py", cases, run);
    return true;
  }();
  (void)done;
  return run;
}

class MPNetParity : public ::testing::Test {
 protected:
  void SetUp() override { expect_reference_ready(reference()); }

  // A fresh encoder loads the case's weights with the "mpnet." prefix; returns
  // the max abs difference to the reference over all positions.
  double run_case(const std::string& name) {
    const auto& item = parity_cases().at(name);
    auto encoder = make_encoder(item.config, 99);
    encoder->load_hf_state_dict(state_of(*random_encoder(item.config, 11), "mpnet."));
    encoder->eval();
    // Control: a small change to the relative attention bias.
    return compare_with_reference(
        name, [&] { return run(encoder, item.inputs); }, reference().outputs(name).at("last_hidden_state"),
        item.inputs.at("attention_mask"), [&] {
          auto table = encoder->named_parameters()["encoder.relative_attention_bias.weight"];
          table.add_(0.05 * torch::randn_like(table));
        });
  }
};

TEST_F(MPNetParity, LongSequencesReachEveryBucket) { EXPECT_LE(run_case("long"), kParityTolerance); }

TEST_F(MPNetParity, WiderBiasTableReluEightHeads) { EXPECT_LE(run_case("wide_table"), kParityTolerance); }

TEST_F(MPNetParity, BucketsMatchTransformers) {
  auto positions = torch::arange(kLongSeq, torch::kLong);
  auto buckets =
      mpnet::relative_position_bucket(positions.unsqueeze(0) - positions.unsqueeze(1));  // [seq, seq]
  auto expected = reference().outputs("long").at("position_buckets").to(torch::kLong);
  EXPECT_TRUE(torch::equal(buckets, expected));
  // Every bucket occurs among 140 tokens but 16 (a key after the query at distance 0).
  EXPECT_EQ(std::get<0>(torch::_unique(buckets)).numel(), 31);
}

// --- relative position buckets -----------------------------------------------------------------------

TEST(MPNetBuckets, ExactNearLogarithmicFarClampedBeyondMaxDistance) {
  // relative position = key - query; keys before the query use buckets 0..15, after it 16..31.
  auto relative = torch::tensor({0, -1, -7, -8, -12, -90, -91, -127, -128, -500, 1, 8, 500}, torch::kLong);
  auto buckets = mpnet::relative_position_bucket(relative);
  // 8 + trunc(log(d / 8) / log(16) * 8) beyond 8, at most 15.
  auto expected = torch::tensor({0, 1, 7, 8, 9, 14, 15, 15, 15, 15, 17, 24, 31}, torch::kLong);
  EXPECT_TRUE(torch::equal(buckets, expected)) << buckets;
}

// --- names -------------------------------------------------------------------------------------------

TEST(MPNetNames, ParametersCarryHuggingFaceNames) {
  auto config = base_config();
  config["num_hidden_layers"] = 1;
  auto encoder = make_encoder(config, 1);
  std::set<std::string> names;
  for (const auto& item : encoder->named_parameters()) names.insert(item.key());
  std::set<std::string> expected = {"embeddings.word_embeddings.weight",
                                    "embeddings.position_embeddings.weight", "embeddings.LayerNorm.weight",
                                    "embeddings.LayerNorm.bias", "encoder.relative_attention_bias.weight"};
  for (const std::string module :
       {"attention.attn.q", "attention.attn.k", "attention.attn.v", "attention.attn.o", "attention.LayerNorm",
        "intermediate.dense", "output.dense", "output.LayerNorm"}) {
    expected.insert("encoder.layer.0." + module + ".weight");
    expected.insert("encoder.layer.0." + module + ".bias");
  }
  EXPECT_EQ(names, expected);
  EXPECT_EQ(encoder->named_buffers().size(), 0u);
  auto params = encoder->named_parameters();
  EXPECT_EQ(params["encoder.relative_attention_bias.weight"].sizes(), torch::IntArrayRef({32, 4}));
  EXPECT_EQ(params["embeddings.position_embeddings.weight"].sizes(), torch::IntArrayRef({kLongSeq + 2, 32}));
  // Hugging Face's init: padding rows (index 1) of both embeddings are zero.
  EXPECT_EQ(params["embeddings.word_embeddings.weight"][kPad].abs().sum().item<double>(), 0.0);
  EXPECT_EQ(params["embeddings.position_embeddings.weight"][kPad].abs().sum().item<double>(), 0.0);
}

// --- load_hf_state_dict -----------------------------------------------------------------------------

TEST(MPNetLoad, ListsMissingAndUnexpectedTensors) {
  auto encoder = make_encoder(base_config(), 1);
  auto weights = state_of(*encoder, "mpnet.");
  weights.erase("mpnet.encoder.relative_attention_bias.weight");
  weights["mpnet.encoder.layer.2.output.dense.bias"] = torch::zeros({32});
  auto message = error_of([&] { encoder->load_hf_state_dict(weights); });
  EXPECT_TRUE(contains(message, "missing 1 tensor(s): encoder.relative_attention_bias.weight")) << message;
  EXPECT_TRUE(contains(message, "unexpected 1 tensor(s): mpnet.encoder.layer.2.output.dense.bias"))
      << message;
  EXPECT_TRUE(contains(message, "mpnet encoder (2 layers, hidden 32)")) << message;
  EXPECT_THROW(encoder->load_hf_state_dict({}), std::runtime_error);
}

TEST(MPNetLoad, StripsPrefixAndIgnoresHeads) {
  auto source = random_encoder(base_config(), 1);
  auto target = make_encoder(base_config(), 2);
  // A sentence-transformers save has no prefix and keeps the pooler.
  auto weights = state_of(*source);
  weights["embeddings.position_ids"] = torch::arange(kLongSeq + 2).unsqueeze(0);
  weights["pooler.dense.weight"] = torch::zeros({32, 32});
  weights["pooler.dense.bias"] = torch::zeros({32});
  weights["lm_head.dense.weight"] = torch::zeros({32, 32});
  weights["classifier.out_proj.weight"] = torch::zeros({2, 32});
  weights["qa_outputs.weight"] = torch::zeros({2, 32});
  target->load_hf_state_dict(weights);
  expect_parameters_equal(*target, state_of(*source), "");
  auto prefixed = make_encoder(base_config(), 3);
  prefixed->load_hf_state_dict(state_of(*source, "mpnet."));
  EXPECT_TRUE(torch::equal(prefixed->named_parameters()["encoder.relative_attention_bias.weight"],
                           source->named_parameters()["encoder.relative_attention_bias.weight"]));
}

TEST(MPNetLoad, ShapeMismatchNamesTensorAndShapesAndLoadsNothing) {
  auto encoder = make_encoder(base_config(), 1);
  expect_shape_mismatch_rejected(*encoder, state_of(*random_encoder(base_config(), 2), "mpnet."),
                                 "mpnet.encoder.relative_attention_bias.weight", {32, 12}, {32, 4});
}

// --- MPNetConfig::from_json ------------------------------------------------------------------------------

TEST(MPNetConfig, ParsesFieldsAndTransformersDefaults) {
  auto defaults = MPNetConfig::from_json(json::object());
  EXPECT_EQ(defaults.vocab_size, 30527);
  EXPECT_EQ(defaults.hidden_size, 768);
  EXPECT_EQ(defaults.num_hidden_layers, 12);
  EXPECT_EQ(defaults.num_attention_heads, 12);
  EXPECT_EQ(defaults.intermediate_size, 3072);
  EXPECT_EQ(defaults.max_position_embeddings, 512);
  EXPECT_EQ(defaults.relative_attention_num_buckets, 32);
  EXPECT_EQ(defaults.pad_token_id, 1);
  EXPECT_DOUBLE_EQ(defaults.layer_norm_eps, 1e-12);
  EXPECT_EQ(defaults.hidden_act, "gelu");
  auto wide = MPNetConfig::from_json(wide_table_config());
  EXPECT_EQ(wide.relative_attention_num_buckets, 40);
  EXPECT_DOUBLE_EQ(wide.layer_norm_eps, 1e-5);
  // sentence-transformers/all-mpnet-base-v2's config.json (abridged).
  auto all_mpnet = MPNetConfig::from_json({{"architectures", {"MPNetForMaskedLM"}},
                                           {"attention_probs_dropout_prob", 0.1},
                                           {"bos_token_id", 0},
                                           {"eos_token_id", 2},
                                           {"hidden_act", "gelu"},
                                           {"hidden_size", 768},
                                           {"max_position_embeddings", 514},
                                           {"model_type", "mpnet"},
                                           {"pad_token_id", 1},
                                           {"relative_attention_num_buckets", 32},
                                           {"vocab_size", 30527},
                                           {"layer_norm_eps", 1e-05}});
  EXPECT_EQ(MPNetEncoderImpl(all_mpnet).max_sequence_length(), 512);
}

TEST(MPNetConfig, ErrorsNameTheField) {
  auto with = [](const std::string& field, const json& value) {
    auto config = base_config();
    config[field] = value;
    return error_of([&] { MPNetConfig::from_json(config); });
  };
  auto message = with("model_type", "roberta");
  EXPECT_TRUE(contains(message, "'model_type'") && contains(message, "'roberta'")) << message;
  message = with("hidden_size", "32");
  EXPECT_TRUE(contains(message, "'hidden_size'") && contains(message, "integer")) << message;
  message = with("hidden_size", 30);
  EXPECT_TRUE(contains(message, "'hidden_size'") && contains(message, "num_attention_heads 4")) << message;
  message = with("num_hidden_layers", 0);
  EXPECT_TRUE(contains(message, "'num_hidden_layers'") && contains(message, "positive")) << message;
  message = with("relative_attention_num_buckets", 16);
  EXPECT_TRUE(contains(message, "'relative_attention_num_buckets'") && contains(message, "32")) << message;
  message = with("max_position_embeddings", 2);
  EXPECT_TRUE(contains(message, "'max_position_embeddings'")) << message;
  message = with("hidden_act", "gelu_fastest");
  EXPECT_TRUE(contains(message, "'hidden_act'") && contains(message, "gelu_new")) << message;
  message = with("hidden_dropout_prob", -0.1);
  EXPECT_TRUE(contains(message, "'hidden_dropout_prob'")) << message;
  message = with("layer_norm_eps", 0.0);
  EXPECT_TRUE(contains(message, "'layer_norm_eps'")) << message;
  message = with("pad_token_id", kVocab);
  EXPECT_TRUE(contains(message, "'pad_token_id'")) << message;
  EXPECT_THROW(MPNetConfig::from_json(json::array()), std::invalid_argument);
}

// --- forward --------------------------------------------------------------------------------------------

TEST(MPNetForward, InterfaceAndFactory) {
  std::shared_ptr<TextEncoderImpl> encoder = make_mpnet_encoder(base_config());
  EXPECT_EQ(encoder->hidden_size(), 32);
  EXPECT_EQ(encoder->type_vocab_size(), 0);
  EXPECT_EQ(encoder->max_sequence_length(), kLongSeq);  // max_position_embeddings - padding index - 1
  EXPECT_FALSE(encoder->gradient_checkpointing());
  EXPECT_THROW(make_mpnet_encoder({{"model_type", "bert"}}), std::invalid_argument);
}

TEST(MPNetForward, AttentionMaskHidesPaddingAndTokenTypesAreIgnored) {
  auto encoder = random_encoder(base_config(), 3);
  encoder->eval();
  torch::NoGradGuard no_grad;
  auto inputs = short_inputs(5);
  // A masked position's token (not the padding id, so positions stay) does not reach real tokens.
  auto changed_ids = inputs.at("input_ids").clone();
  changed_ids[2][7] = 33;  // row 2 has 5 tokens
  auto base = expect_mask_hides_padding(forward_of(encoder), inputs.at("input_ids"), {}, inputs.at("attention_mask"),
                                        changed_ids, {}, 1e-5);
  EXPECT_EQ(base.sizes(), torch::IntArrayRef({3, kShortSeq, 32}));
  auto token_types = torch::ones_like(inputs.at("input_ids"));
  EXPECT_TRUE(
      torch::equal(encoder->forward(inputs.at("input_ids"), token_types, inputs.at("attention_mask")), base));
}

TEST(MPNetForward, ChecksInputs) {
  auto config = base_config();
  config["max_position_embeddings"] = 10;  // 8 tokens
  auto encoder = make_encoder(config, 6);
  expect_rejects_malformed_ids(*encoder);
  expect_sequence_limit(*encoder, "MPNetEncoder", 8);
}

TEST(MPNetForward, DropoutOnlyInTrainMode) {
  auto encoder = make_encoder(base_config(), 4);
  auto inputs = short_inputs(7);
  expect_dropout_only_in_train_mode(*encoder, [&] { return run(encoder, inputs); });
}

TEST(MPNetForward, BackwardReachesEveryParameter) {
  auto encoder = random_encoder(base_config(), 7);
  expect_backward_reaches_every_parameter(*encoder, long_inputs(8));  // every bias bucket is in use
}

TEST(MPNetForward, RunsUnderCpuBf16Autocast) {
  auto encoder = random_encoder(base_config(), 9);
  encoder->eval();
  auto inputs = long_inputs(9);
  expect_runs_under_bf16_autocast([&] { return run(encoder, inputs); }, inputs.at("attention_mask"));
}

TEST(MPNetForward, GradientCheckpointingKeepsGradients) {
  // The shared relative_attention_bias is read by every checkpointed layer.
  auto encoder = random_encoder(no_dropout_config(), 10);
  expect_checkpointing_keeps_gradients(*encoder, long_inputs(10));
}

}  // namespace
}  // namespace automm
