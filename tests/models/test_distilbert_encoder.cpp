// Tests of the Hugging Face DistilBERT encoder (src/models/text/distilbert_encoder.h).
// Parity: the test randomizes an encoder and writes its parameters (Hugging
// Face names), inputs and config.json; tests/models/distilbert_reference.py, a
// transcription of transformers' modeling_distilbert.py run by /usr/bin/python3,
// loads them strictly by name and writes its last hidden states back, which a
// second encoder, loaded through load_hf_state_dict, must reproduce.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <iostream>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "models/hf_encoder_test_util.h"
#include "models/text/distilbert_encoder.h"

namespace automm {
namespace {

using namespace encoder_test;  // NOLINT: the shared encoder test helpers

constexpr double kParityTolerance = 1e-4;
constexpr int64_t kVocab = 60;
constexpr int64_t kSeq = 12;
const std::vector<int64_t> kLengths = {12, 9, 5};  // real tokens per row; the rest is padding

json base_config() {
  return {{"model_type", "distilbert"},
          {"vocab_size", kVocab},
          {"dim", 32},
          {"n_layers", 2},
          {"n_heads", 4},
          {"hidden_dim", 64},
          {"max_position_embeddings", 24},
          {"activation", "gelu"},
          {"dropout", 0.1},
          {"attention_dropout", 0.1},
          {"pad_token_id", 0}};
}

// Fixed sine / cosine positions, relu, 8 heads of 4.
json sinusoidal_config() {
  auto config = base_config();
  config.update({{"sinusoidal_pos_embds", true}, {"activation", "relu"}, {"n_heads", 8}, {"n_layers", 3}});
  return config;
}

json no_dropout_config() {
  auto config = base_config();
  config.update({{"dropout", 0.0}, {"attention_dropout", 0.0}});
  return config;
}

DistilBertEncoder make_encoder(const json& config, uint64_t seed) {
  torch::manual_seed(seed);
  return DistilBertEncoder(DistilBertConfig::from_json(config));
}

DistilBertEncoder random_encoder(const json& config, uint64_t seed) {
  auto encoder = make_encoder(config, seed);
  randomize(*encoder);
  return encoder;
}

StateDict make_inputs(uint64_t seed) { return padded_inputs(kVocab, kSeq, kLengths, 1, 0, seed); }

torch::Tensor run(DistilBertEncoder& encoder, const StateDict& inputs) {
  return encoder->forward(inputs.at("input_ids"), torch::Tensor(), inputs.at("attention_mask"));
}

EncoderCall forward_of(DistilBertEncoder& encoder) {
  return [encoder](const torch::Tensor& ids, const torch::Tensor& types, const torch::Tensor& mask) mutable {
    return encoder->forward(ids, types, mask);
  };
}

// --- parity with distilbert_reference.py ----------------------------------------------------------

const std::map<std::string, json>& parity_configs() {
  static const std::map<std::string, json> configs = {{"learned", base_config()},
                                                      {"sinusoidal", sinusoidal_config()}};
  return configs;
}

const ReferenceRun& reference() {
  static ReferenceRun run;
  static const bool done = [] {
    std::map<std::string, ReferenceCase> cases;
    for (const auto& [name, config] : parity_configs()) {
      cases[name] = {config, state_of(*random_encoder(config, 11)), make_inputs(12)};
    }
    run_reference("distilbert_reference.py", cases, run);
    return true;
  }();
  (void)done;
  return run;
}

class DistilBertParity : public ::testing::Test {
 protected:
  void SetUp() override { expect_reference_ready(reference()); }

  // A fresh encoder loads the case's weights with the "distilbert." prefix;
  // returns the max abs difference to the reference over all positions.
  double run_case(const std::string& name) {
    const auto& config = parity_configs().at(name);
    auto encoder = make_encoder(config, 99);
    encoder->load_hf_state_dict(state_of(*random_encoder(config, 11), "distilbert."));
    encoder->eval();
    const auto inputs = make_inputs(12);
    // Control: a small change to one attention projection.
    return compare_with_reference(
        name, [&] { return run(encoder, inputs); }, reference().outputs(name).at("last_hidden_state"),
        inputs.at("attention_mask"), [&] {
          encoder->named_parameters()["transformer.layer.1.attention.q_lin.weight"].add_(
              0.05 * torch::randn({32, 32}));
        });
  }
};

TEST_F(DistilBertParity, LearnedPositionsGelu) { EXPECT_LE(run_case("learned"), kParityTolerance); }

TEST_F(DistilBertParity, SinusoidalPositionsReluEightHeads) {
  EXPECT_LE(run_case("sinusoidal"), kParityTolerance);
}

// --- names -------------------------------------------------------------------------------------------

TEST(DistilBertNames, ParametersCarryHuggingFaceNames) {
  auto config = base_config();
  config["n_layers"] = 1;
  std::set<std::string> names;
  auto encoder = make_encoder(config, 1);
  for (const auto& item : encoder->named_parameters()) names.insert(item.key());
  std::set<std::string> expected = {"embeddings.word_embeddings.weight",
                                    "embeddings.position_embeddings.weight", "embeddings.LayerNorm.weight",
                                    "embeddings.LayerNorm.bias"};
  for (const std::string module :
       {"attention.q_lin", "attention.k_lin", "attention.v_lin", "attention.out_lin", "sa_layer_norm",
        "ffn.lin1", "ffn.lin2", "output_layer_norm"}) {
    expected.insert("transformer.layer.0." + module + ".weight");
    expected.insert("transformer.layer.0." + module + ".bias");
  }
  EXPECT_EQ(names, expected);
  EXPECT_EQ(encoder->named_buffers().size(), 0u);
  auto params = encoder->named_parameters();
  EXPECT_EQ(params["embeddings.position_embeddings.weight"].sizes(), torch::IntArrayRef({24, 32}));
  EXPECT_EQ(params["transformer.layer.0.ffn.lin1.weight"].sizes(), torch::IntArrayRef({64, 32}));
  // Hugging Face's init: word embedding padding row zero, norms 1 / 0.
  EXPECT_EQ(params["embeddings.word_embeddings.weight"][0].abs().sum().item<double>(), 0.0);
  EXPECT_TRUE(torch::equal(params["transformer.layer.0.sa_layer_norm.weight"], torch::ones({32})));
}

TEST(DistilBertNames, SinusoidalPositionsAreFixedAndFrozen) {
  auto encoder = make_encoder(sinusoidal_config(), 1);
  auto table = encoder->named_parameters()["embeddings.position_embeddings.weight"];
  EXPECT_FALSE(table.requires_grad());
  // Row p, columns 2i / 2i + 1: sin / cos(p / 10000^(2i / dim)).
  for (int64_t p : {0, 3, 23}) {
    for (int64_t i : {0, 5, 15}) {
      const double angle = p / std::pow(10000.0, 2.0 * i / 32.0);
      EXPECT_NEAR(table[p][2 * i].item<double>(), std::sin(angle), 1e-6) << p << " " << i;
      EXPECT_NEAR(table[p][2 * i + 1].item<double>(), std::cos(angle), 1e-6) << p << " " << i;
    }
  }
  EXPECT_TRUE(make_encoder(base_config(), 1)
                  ->named_parameters()["embeddings.position_embeddings.weight"]
                  .requires_grad());
}

// --- load_hf_state_dict -----------------------------------------------------------------------------

TEST(DistilBertLoad, ListsMissingAndUnexpectedTensors) {
  auto encoder = make_encoder(base_config(), 1);
  auto weights = state_of(*encoder, "distilbert.");
  weights.erase("distilbert.transformer.layer.1.ffn.lin2.bias");
  weights["distilbert.transformer.layer.2.ffn.lin2.bias"] = torch::zeros({32});
  auto message = error_of([&] { encoder->load_hf_state_dict(weights); });
  EXPECT_TRUE(contains(message, "missing 1 tensor(s): transformer.layer.1.ffn.lin2.bias")) << message;
  EXPECT_TRUE(contains(message, "unexpected 1 tensor(s): distilbert.transformer.layer.2.ffn.lin2.bias"))
      << message;
  EXPECT_TRUE(contains(message, "distilbert encoder (2 layers, dim 32)")) << message;
  EXPECT_THROW(encoder->load_hf_state_dict({}), std::runtime_error);
}

TEST(DistilBertLoad, StripsPrefixAndIgnoresHeads) {
  auto source = random_encoder(base_config(), 1);
  auto target = make_encoder(base_config(), 2);
  auto weights = state_of(*source, "distilbert.");
  weights["distilbert.embeddings.position_ids"] = torch::arange(24).unsqueeze(0);
  weights["vocab_transform.weight"] = torch::zeros({32, 32});
  weights["vocab_layer_norm.weight"] = torch::zeros({32});
  weights["vocab_projector.weight"] = torch::zeros({kVocab, 32});
  weights["pre_classifier.weight"] = torch::zeros({32, 32});
  weights["classifier.bias"] = torch::zeros({2});
  weights["qa_outputs.weight"] = torch::zeros({2, 32});
  target->load_hf_state_dict(weights);
  expect_parameters_equal(*target, state_of(*source), "");
  // Unprefixed names (a bare DistilBertModel's save) load too.
  auto bare = make_encoder(base_config(), 3);
  bare->load_hf_state_dict(state_of(*source));
  EXPECT_TRUE(torch::equal(bare->named_parameters()["transformer.layer.1.ffn.lin1.weight"],
                           source->named_parameters()["transformer.layer.1.ffn.lin1.weight"]));
}

TEST(DistilBertLoad, ShapeMismatchNamesTensorAndShapesAndLoadsNothing) {
  auto encoder = make_encoder(base_config(), 1);
  expect_shape_mismatch_rejected(*encoder, state_of(*random_encoder(base_config(), 2), "distilbert."),
                                 "distilbert.embeddings.position_embeddings.weight", {512, 32}, {24, 32});
}

// --- DistilBertConfig::from_json ----------------------------------------------------------------------

TEST(DistilBertConfig, ParsesFieldsAndTransformersDefaults) {
  auto defaults = DistilBertConfig::from_json(json::object());
  EXPECT_EQ(defaults.vocab_size, 30522);
  EXPECT_EQ(defaults.dim, 768);
  EXPECT_EQ(defaults.n_layers, 6);
  EXPECT_EQ(defaults.n_heads, 12);
  EXPECT_EQ(defaults.hidden_dim, 3072);
  EXPECT_EQ(defaults.max_position_embeddings, 512);
  EXPECT_FALSE(defaults.sinusoidal_pos_embds);
  EXPECT_EQ(defaults.activation, "gelu");
  EXPECT_DOUBLE_EQ(defaults.dropout, 0.1);
  EXPECT_DOUBLE_EQ(defaults.attention_dropout, 0.1);
  EXPECT_EQ(defaults.pad_token_id, 0);
  auto parsed = DistilBertConfig::from_json(sinusoidal_config());
  EXPECT_TRUE(parsed.sinusoidal_pos_embds);
  EXPECT_EQ(parsed.activation, "relu");
  EXPECT_EQ(parsed.n_heads, 8);
  auto null_pad = base_config();
  null_pad["pad_token_id"] = nullptr;
  EXPECT_EQ(DistilBertConfig::from_json(null_pad).pad_token_id, -1);
}

TEST(DistilBertConfig, ErrorsNameTheField) {
  auto with = [](const std::string& field, const json& value) {
    auto config = base_config();
    config[field] = value;
    return error_of([&] { DistilBertConfig::from_json(config); });
  };
  auto message = with("model_type", "bert");
  EXPECT_TRUE(contains(message, "'model_type'") && contains(message, "'bert'")) << message;
  message = with("dim", "32");
  EXPECT_TRUE(contains(message, "'dim'") && contains(message, "integer")) << message;
  message = with("dim", 30);
  EXPECT_TRUE(contains(message, "'dim'") && contains(message, "n_heads 4")) << message;
  message = with("n_layers", 0);
  EXPECT_TRUE(contains(message, "'n_layers'") && contains(message, "positive")) << message;
  message = with("hidden_dim", -1);
  EXPECT_TRUE(contains(message, "'hidden_dim'")) << message;
  message = with("activation", "gelu_fastest");
  EXPECT_TRUE(contains(message, "'activation'") && contains(message, "gelu_new")) << message;
  message = with("sinusoidal_pos_embds", "yes");
  EXPECT_TRUE(contains(message, "'sinusoidal_pos_embds'") && contains(message, "true or false")) << message;
  message = with("attention_dropout", 1.0);
  EXPECT_TRUE(contains(message, "'attention_dropout'")) << message;
  message = with("pad_token_id", kVocab);
  EXPECT_TRUE(contains(message, "'pad_token_id'")) << message;
  message = with("max_position_embeddings", 0);
  EXPECT_TRUE(contains(message, "'max_position_embeddings'")) << message;
  EXPECT_THROW(DistilBertConfig::from_json(json::array()), std::invalid_argument);
}

// --- forward --------------------------------------------------------------------------------------------

TEST(DistilBertForward, InterfaceAndFactory) {
  std::shared_ptr<TextEncoderImpl> encoder = make_distilbert_encoder(base_config());
  EXPECT_EQ(encoder->hidden_size(), 32);
  EXPECT_EQ(encoder->type_vocab_size(), 0);
  EXPECT_EQ(encoder->max_sequence_length(), 24);
  EXPECT_FALSE(encoder->gradient_checkpointing());
  EXPECT_THROW(make_distilbert_encoder({{"model_type", "bert"}}), std::invalid_argument);
}

TEST(DistilBertForward, AttentionMaskHidesPaddingAndTokenTypesAreIgnored) {
  auto encoder = random_encoder(base_config(), 3);
  encoder->eval();
  torch::NoGradGuard no_grad;
  auto inputs = make_inputs(5);
  auto changed_ids = inputs.at("input_ids").clone();
  changed_ids[2][7] = 33;  // row 2 has 5 tokens
  auto base = expect_mask_hides_padding(forward_of(encoder), inputs.at("input_ids"), {}, inputs.at("attention_mask"),
                                        changed_ids, {}, 1e-5);
  EXPECT_EQ(base.sizes(), torch::IntArrayRef({3, kSeq, 32}));
  auto token_types = torch::ones_like(inputs.at("input_ids"));
  EXPECT_TRUE(
      torch::equal(encoder->forward(inputs.at("input_ids"), token_types, inputs.at("attention_mask")), base));
}

TEST(DistilBertForward, ChecksInputs) {
  auto encoder = make_encoder(base_config(), 6);  // max_position_embeddings 24
  expect_rejects_malformed_ids(*encoder);
  expect_sequence_limit(*encoder, "DistilBertEncoder", 24);
}

TEST(DistilBertForward, DropoutOnlyInTrainMode) {
  auto encoder = make_encoder(base_config(), 4);
  auto inputs = make_inputs(7);
  expect_dropout_only_in_train_mode(*encoder, [&] { return run(encoder, inputs); });
}

TEST(DistilBertForward, BackwardReachesEveryParameter) {
  auto encoder = random_encoder(base_config(), 7);
  expect_backward_reaches_every_parameter(*encoder, make_inputs(8));
  // The fixed sinusoidal table gets no gradient.
  auto sinusoidal = random_encoder(sinusoidal_config(), 7);
  auto inputs = make_inputs(8);
  run(sinusoidal, inputs).pow(2).mean().backward();
  EXPECT_FALSE(sinusoidal->named_parameters()["embeddings.position_embeddings.weight"].grad().defined());
}

TEST(DistilBertForward, RunsUnderCpuBf16Autocast) {
  auto encoder = random_encoder(base_config(), 9);
  encoder->eval();
  auto inputs = make_inputs(9);
  expect_runs_under_bf16_autocast([&] { return run(encoder, inputs); }, inputs.at("attention_mask"));
}

TEST(DistilBertForward, GradientCheckpointingKeepsGradients) {
  auto encoder = random_encoder(no_dropout_config(), 10);
  expect_checkpointing_keeps_gradients(*encoder, make_inputs(10));
}

}  // namespace
}  // namespace automm
