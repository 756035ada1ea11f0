// Tests of the Hugging Face BERT-family encoder (src/models/text/bert_encoder.h).
// Parity: tests/models/bert_reference.py builds an independent reference from
// torch.nn (Embedding + LayerNorm + TransformerEncoder) under /usr/bin/python3,
// writes its weights under Hugging Face's names as raw float32 files, and the
// encoder must reproduce its hidden states on the non-padded positions.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "models/hf_encoder_test_util.h"
#include "models/text/bert_encoder.h"

namespace automm {
namespace {

// This file's ReferenceCase reads bert_reference.py's own format, so take the shared helpers by name.
using encoder_test::contains;
using encoder_test::error_of;
using encoder_test::expect_mask_hides_padding;
using encoder_test::expect_reference_ready;
using encoder_test::expect_rejects_malformed_ids;
using encoder_test::expect_sequence_limit;
using encoder_test::masked_max_abs_diff;
using encoder_test::ReferenceRun;
using encoder_test::state_of;
using nlohmann::json;

constexpr double kParityTolerance = 1e-4;

json small_config(const std::string& model_type) {
  json config = {{"model_type", model_type},
                 {"vocab_size", 40},
                 {"hidden_size", 32},
                 {"num_hidden_layers", 2},
                 {"num_attention_heads", 4},
                 {"intermediate_size", 48},
                 {"max_position_embeddings", 24},
                 {"type_vocab_size", 2},
                 {"layer_norm_eps", 1e-12},
                 {"hidden_act", "gelu"},
                 {"pad_token_id", 0},
                 {"hidden_dropout_prob", 0.1},
                 {"attention_probs_dropout_prob", 0.1}};
  if (model_type == "roberta" || model_type == "xlm-roberta") {
    config["pad_token_id"] = 1;
    config["type_vocab_size"] = 1;
  }
  return config;
}

BertEncoder make_encoder(const json& config, uint64_t seed) {
  torch::manual_seed(seed);
  return BertEncoder(BertConfig::from_json(config));
}

// --- reference data written by bert_reference.py ---------------------------------

// bert_reference.py builds its own cases and weights.
const ReferenceRun& reference_data() {
  static ReferenceRun run;
  static const bool done = [] {
    encoder_test::run_reference("bert_reference.py", {}, run);
    return true;
  }();
  (void)done;
  return run;
}

// Raw little-endian array of the given shape and dtype.
torch::Tensor read_bin(const std::filesystem::path& path, const std::vector<int64_t>& shape, torch::Dtype dtype) {
  const uint16_t probe = 1;
  uint8_t first_byte = 0;
  std::memcpy(&first_byte, &probe, 1);
  if (first_byte != 1) throw std::runtime_error("read_bin expects a little-endian host");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open reference tensor " + path.string());
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto tensor = torch::empty(shape, torch::TensorOptions().dtype(dtype));
  if (bytes.size() != tensor.nbytes()) {
    throw std::runtime_error(path.string() + " holds " + std::to_string(bytes.size()) + " bytes, expected " +
                             std::to_string(tensor.nbytes()));
  }
  std::memcpy(tensor.data_ptr(), bytes.data(), bytes.size());
  return tensor;
}

struct ReferenceCase {
  json config;
  std::map<std::string, torch::Tensor> weights;
  torch::Tensor input_ids, token_type_ids, attention_mask;  // [batch, seq] int64
  torch::Tensor expected;                                   // [batch, seq, hidden]
};

ReferenceCase load_case(const std::string& name) {
  const auto folder = reference_data().dir / name;
  std::ifstream in(folder / "manifest.json");
  if (!in) throw std::runtime_error("missing " + (folder / "manifest.json").string());
  json manifest = json::parse(in);
  ReferenceCase result;
  result.config = manifest.at("config");
  for (const auto& [key, shape] : manifest.at("weights").items()) {
    result.weights[key] = read_bin(folder / "weights" / (key + ".bin"), shape.get<std::vector<int64_t>>(), torch::kFloat);
  }
  auto input = [&](const std::string& key) {
    return read_bin(folder / "inputs" / (key + ".bin"), manifest.at("inputs").at(key).get<std::vector<int64_t>>(),
                    torch::kLong);
  };
  result.input_ids = input("input_ids");
  result.token_type_ids = input("token_type_ids");
  result.attention_mask = input("attention_mask");
  result.expected = read_bin(folder / "outputs" / "last_hidden_state.bin",
                             manifest.at("outputs").at("last_hidden_state").get<std::vector<int64_t>>(), torch::kFloat);
  return result;
}

class BertEncoderParity : public ::testing::Test {
 protected:
  void SetUp() override { expect_reference_ready(reference_data()); }

  // Loads the reference weights by name and returns the max abs difference on real tokens.
  double run_case(const std::string& name, bool with_token_types = true) {
    auto reference = load_case(name);
    BertEncoder encoder(BertConfig::from_json(reference.config));
    encoder->load_hf_state_dict(reference.weights);
    encoder->eval();
    torch::NoGradGuard no_grad;
    auto hidden = encoder->forward(reference.input_ids, with_token_types ? reference.token_type_ids : torch::Tensor(),
                                   reference.attention_mask);  // [batch, seq, hidden]
    EXPECT_EQ(hidden.sizes(), reference.expected.sizes());
    double diff = masked_max_abs_diff(hidden, reference.expected, reference.attention_mask);
    std::cout << "[ parity   ] " << name << ": max abs diff " << diff << " (non-padded positions)" << std::endl;
    RecordProperty("max_abs_diff_" + name, std::to_string(diff));
    return diff;
  }
};

TEST_F(BertEncoderParity, BertMatchesTorchTransformerEncoder) { EXPECT_LE(run_case("bert"), kParityTolerance); }

TEST_F(BertEncoderParity, ElectraProjectsNarrowEmbeddings) {
  auto reference = load_case("electra");
  ASSERT_EQ(reference.weights.at("embeddings.word_embeddings.weight").size(1), 32);
  ASSERT_EQ(reference.weights.count("embeddings_project.weight"), 1u);
  EXPECT_LE(run_case("electra"), kParityTolerance);
}

TEST_F(BertEncoderParity, RobertaPositionsSkipPadding) {
  auto reference = load_case("roberta");
  ASSERT_EQ(reference.config.at("pad_token_id").get<int64_t>(), 1);
  ASSERT_EQ(reference.config.at("type_vocab_size").get<int64_t>(), 1);
  EXPECT_LE(run_case("roberta"), kParityTolerance);
  // Undefined token_type_ids mean all zeros, which is all roberta has.
  EXPECT_LE(run_case("roberta", /*with_token_types=*/false), kParityTolerance);
}

// --- names ------------------------------------------------------------------------------

TEST(BertEncoderNames, ParametersCarryHuggingFaceNames) {
  auto config = small_config("bert");
  config["num_hidden_layers"] = 1;
  auto encoder = make_encoder(config, 1);
  std::set<std::string> names;
  for (const auto& item : encoder->named_parameters()) names.insert(item.key());
  const std::set<std::string> expected = {
      "embeddings.word_embeddings.weight",
      "embeddings.position_embeddings.weight",
      "embeddings.token_type_embeddings.weight",
      "embeddings.LayerNorm.weight",
      "embeddings.LayerNorm.bias",
      "encoder.layer.0.attention.self.query.weight",
      "encoder.layer.0.attention.self.query.bias",
      "encoder.layer.0.attention.self.key.weight",
      "encoder.layer.0.attention.self.key.bias",
      "encoder.layer.0.attention.self.value.weight",
      "encoder.layer.0.attention.self.value.bias",
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
  };
  EXPECT_EQ(names, expected);
  EXPECT_EQ(encoder->named_buffers().size(), 0u);
}

TEST(BertEncoderNames, ElectraProjectsOnlyWhenWidthsDiffer) {
  auto config = small_config("electra");
  config["embedding_size"] = 16;
  auto narrow = make_encoder(config, 1);
  auto params = narrow->named_parameters();
  ASSERT_TRUE(params.contains("embeddings_project.weight"));
  EXPECT_EQ(params["embeddings_project.weight"].sizes(), torch::IntArrayRef({32, 16}));
  EXPECT_EQ(params["embeddings.word_embeddings.weight"].sizes(), torch::IntArrayRef({40, 16}));
  EXPECT_EQ(params["embeddings.LayerNorm.weight"].sizes(), torch::IntArrayRef({16}));

  config["embedding_size"] = 32;
  auto wide = make_encoder(config, 1);
  EXPECT_FALSE(wide->named_parameters().contains("embeddings_project.weight"));
}

// --- load_hf_state_dict ------------------------------------------------------------------

TEST(BertEncoderLoad, ListsMissingAndUnexpectedTensors) {
  auto encoder = make_encoder(small_config("bert"), 1);
  auto weights = state_of(*encoder);
  weights.erase("encoder.layer.1.output.dense.bias");
  weights["encoder.layer.2.output.dense.bias"] = torch::zeros({32});
  auto message = error_of([&] { encoder->load_hf_state_dict(weights); });
  EXPECT_TRUE(contains(message, "missing 1 tensor(s): encoder.layer.1.output.dense.bias")) << message;
  EXPECT_TRUE(contains(message, "unexpected 1 tensor(s): encoder.layer.2.output.dense.bias")) << message;

  // Long lists stop after 20 names.
  auto empty_message = error_of([&] { encoder->load_hf_state_dict({}); });
  EXPECT_TRUE(contains(empty_message, "more)")) << empty_message;
  EXPECT_THROW(encoder->load_hf_state_dict({}), std::runtime_error);
}

TEST(BertEncoderLoad, StripsModelPrefixAndIgnoresHeads) {
  auto source = make_encoder(small_config("bert"), 1);
  auto target = make_encoder(small_config("bert"), 2);
  auto weights = state_of(*source, "bert.");
  weights["cls.predictions.bias"] = torch::zeros({40});
  weights["cls.predictions.transform.dense.weight"] = torch::zeros({32, 32});
  weights["bert.pooler.dense.weight"] = torch::zeros({32, 32});
  weights["bert.pooler.dense.bias"] = torch::zeros({32});
  weights["bert.embeddings.position_ids"] = torch::arange(24).unsqueeze(0);
  ASSERT_FALSE(torch::equal(target->named_parameters()["encoder.layer.0.attention.self.query.weight"],
                            source->named_parameters()["encoder.layer.0.attention.self.query.weight"]));
  target->load_hf_state_dict(weights);
  encoder_test::expect_parameters_equal(*target, state_of(*source), "");
}

TEST(BertEncoderLoad, RobertaAndElectraPrefixesAndTfLayerNormNames) {
  auto roberta_source = make_encoder(small_config("xlm-roberta"), 1);
  auto roberta_target = make_encoder(small_config("xlm-roberta"), 2);
  auto weights = state_of(*roberta_source, "roberta.");
  weights["lm_head.dense.weight"] = torch::zeros({32, 32});
  // TF-converted checkpoints call LayerNorm parameters gamma / beta.
  auto gamma = weights.extract("roberta.embeddings.LayerNorm.weight");
  gamma.key() = "roberta.embeddings.LayerNorm.gamma";
  weights.insert(std::move(gamma));
  roberta_target->load_hf_state_dict(weights);
  EXPECT_TRUE(torch::equal(roberta_target->named_parameters()["embeddings.LayerNorm.weight"],
                           roberta_source->named_parameters()["embeddings.LayerNorm.weight"]));

  auto config = small_config("electra");
  config["embedding_size"] = 16;
  auto electra_source = make_encoder(config, 1);
  auto electra_target = make_encoder(config, 2);
  auto electra_weights = state_of(*electra_source, "electra.");
  electra_weights["discriminator_predictions.dense.weight"] = torch::zeros({32, 32});
  electra_target->load_hf_state_dict(electra_weights);
  EXPECT_TRUE(torch::equal(electra_target->named_parameters()["embeddings_project.weight"],
                           electra_source->named_parameters()["embeddings_project.weight"]));
}

TEST(BertEncoderLoad, ShapeMismatchNamesTensorAndShapesAndLoadsNothing) {
  auto encoder = make_encoder(small_config("bert"), 1);
  encoder_test::expect_shape_mismatch_rejected(*encoder, state_of(*make_encoder(small_config("bert"), 2), "bert."),
                                               "bert.encoder.layer.0.intermediate.dense.weight", {32, 32}, {48, 32});
}

TEST(BertEncoderLoad, DuplicateKeysWithAndWithoutPrefixAreRejected) {
  auto encoder = make_encoder(small_config("bert"), 1);
  auto weights = state_of(*encoder);
  weights["bert.embeddings.LayerNorm.bias"] = torch::zeros({32});
  auto message = error_of([&] { encoder->load_hf_state_dict(weights); });
  EXPECT_TRUE(contains(message, "embeddings.LayerNorm.bias")) << message;
  EXPECT_TRUE(contains(message, "bert.embeddings.LayerNorm.bias")) << message;
}

// --- BertConfig::from_json ---------------------------------------------------------------

TEST(BertEncoderConfig, ParsesFieldsAndTransformersDefaults) {
  auto config = BertConfig::from_json(small_config("bert"));
  EXPECT_EQ(config.model_type, "bert");
  EXPECT_EQ(config.hidden_size, 32);
  EXPECT_EQ(config.embedding_size, 32);
  EXPECT_EQ(config.hf_prefix(), "bert.");

  json minimal = {{"model_type", "roberta"},         {"vocab_size", 40},        {"hidden_size", 32},
                  {"num_hidden_layers", 1},          {"num_attention_heads", 4}, {"intermediate_size", 48},
                  {"max_position_embeddings", 24}};
  auto roberta = BertConfig::from_json(minimal);
  EXPECT_EQ(roberta.pad_token_id, 1);
  EXPECT_EQ(roberta.type_vocab_size, 2);
  EXPECT_DOUBLE_EQ(roberta.layer_norm_eps, 1e-12);
  EXPECT_EQ(roberta.hidden_act, "gelu");
  EXPECT_EQ(roberta.hf_prefix(), "roberta.");

  minimal["model_type"] = "electra";
  minimal["hidden_size"] = 256;
  auto electra = BertConfig::from_json(minimal);
  EXPECT_EQ(electra.embedding_size, 128);
  EXPECT_EQ(electra.pad_token_id, 0);
  EXPECT_EQ(electra.hf_prefix(), "electra.");
}

TEST(BertEncoderConfig, ErrorsNameTheField) {
  auto without = [](const std::string& field) {
    auto config = small_config("bert");
    config.erase(field);
    return error_of([&] { BertConfig::from_json(config); });
  };
  for (const std::string field : {"model_type", "vocab_size", "hidden_size", "num_hidden_layers",
                                  "num_attention_heads", "intermediate_size", "max_position_embeddings"}) {
    auto message = without(field);
    EXPECT_TRUE(contains(message, "'" + field + "'") && contains(message, "missing")) << field << ": " << message;
  }

  auto with = [](const std::string& field, const json& value) {
    auto config = small_config("bert");
    config[field] = value;
    return error_of([&] { BertConfig::from_json(config); });
  };
  auto message = with("model_type", "gpt2");
  EXPECT_TRUE(contains(message, "'gpt2'") && contains(message, "bert, electra, roberta, xlm-roberta")) << message;
  message = with("hidden_size", "64");
  EXPECT_TRUE(contains(message, "'hidden_size'") && contains(message, "integer")) << message;
  message = with("hidden_size", 30);
  EXPECT_TRUE(contains(message, "multiple of num_attention_heads")) << message;
  message = with("hidden_act", "gelu_fastest");
  EXPECT_TRUE(contains(message, "'hidden_act'") && contains(message, "gelu_new")) << message;
  message = with("num_hidden_layers", 0);
  EXPECT_TRUE(contains(message, "'num_hidden_layers'") && contains(message, "positive")) << message;
  message = with("hidden_dropout_prob", 1.5);
  EXPECT_TRUE(contains(message, "'hidden_dropout_prob'")) << message;
  message = with("embedding_size", 16);
  EXPECT_TRUE(contains(message, "'embedding_size'") && contains(message, "electra")) << message;
  message = with("position_embedding_type", "relative_key");
  EXPECT_TRUE(contains(message, "'position_embedding_type'")) << message;
  message = with("pad_token_id", 40);
  EXPECT_TRUE(contains(message, "'pad_token_id'")) << message;
  EXPECT_THROW(BertConfig::from_json(json::array()), std::invalid_argument);
}

// --- forward -------------------------------------------------------------------------------

TEST(BertEncoderForward, AttentionMaskHidesPaddedTokens) {
  auto encoder = make_encoder(small_config("bert"), 3);
  encoder->eval();
  torch::NoGradGuard no_grad;
  auto ids = torch::tensor({{5, 6, 7, 8, 0, 0}, {9, 10, 11, 12, 13, 14}}, torch::kLong);  // [2, 6]
  auto types = torch::zeros_like(ids);
  auto mask = torch::tensor({{1, 1, 1, 1, 0, 0}, {1, 1, 1, 1, 1, 1}}, torch::kLong);
  auto changed_ids = ids.clone();
  changed_ids[0][4] = 33;
  auto changed_types = types.clone();
  changed_types[0][5] = 1;
  auto forward = [&encoder](const torch::Tensor& ids, const torch::Tensor& types, const torch::Tensor& mask) {
    return encoder->forward(ids, types, mask);
  };
  auto base = expect_mask_hides_padding(forward, ids, types, mask, changed_ids, changed_types, 1e-6);
  EXPECT_EQ(base.sizes(), torch::IntArrayRef({2, 6, 32}));
}

TEST(BertEncoderForward, DropoutOnlyInTrainMode) {
  auto encoder = make_encoder(small_config("bert"), 4);
  auto ids = torch::randint(2, 40, {2, 8}, torch::kLong);
  auto types = torch::zeros_like(ids);
  auto mask = torch::ones_like(ids);
  torch::NoGradGuard no_grad;
  encoder->train();
  auto train_a = encoder->forward(ids, types, mask);
  auto train_b = encoder->forward(ids, types, mask);
  EXPECT_FALSE(torch::allclose(train_a, train_b));
  encoder->eval();
  auto eval_a = encoder->forward(ids, types, mask);
  auto eval_b = encoder->forward(ids, types, mask);
  EXPECT_TRUE(torch::equal(eval_a, eval_b));
  EXPECT_FALSE(torch::allclose(eval_a, train_a));
}

TEST(BertEncoderForward, ActivationsFollowHuggingFace) {
  torch::NoGradGuard no_grad;
  auto x = torch::linspace(-4, 4, 33).unsqueeze(0);  // [1, 33]
  for (const std::string name : {"gelu", "gelu_new", "relu"}) {
    auto config = small_config("bert");
    config["hidden_act"] = name;
    torch::manual_seed(5);
    bert::Intermediate intermediate(BertConfig::from_json(config));
    auto hidden = torch::randn({3, 32});
    auto pre = intermediate->dense(hidden);
    torch::Tensor expected;
    if (name == "gelu") {
      expected = 0.5 * pre * (1 + torch::erf(pre / std::sqrt(2.0)));
    } else if (name == "gelu_new") {
      expected = 0.5 * pre * (1 + torch::tanh(std::sqrt(2.0 / M_PI) * (pre + 0.044715 * torch::pow(pre, 3))));
    } else {
      expected = torch::clamp_min(pre, 0);
    }
    EXPECT_TRUE(torch::allclose(intermediate->forward(hidden), expected, 1e-5, 1e-6)) << name;
  }
  // Exact and tanh gelu differ, so the choice matters.
  EXPECT_GT((torch::gelu(x) - torch::gelu(x, "tanh")).abs().max().item<double>(), 1e-5);
}

TEST(BertEncoderForward, RejectsBadInputs) {
  auto encoder = make_encoder(small_config("bert"), 6);
  expect_rejects_malformed_ids(*encoder);
  expect_sequence_limit(*encoder, "BertEncoder", 24);  // max_position_embeddings 24

  // roberta positions start after pad_token_id, so it fits 24 - 1 - 1 = 22 tokens.
  auto roberta = make_encoder(small_config("roberta"), 6);
  roberta->eval();
  expect_sequence_limit(*roberta, "BertEncoder", 22);
}

TEST(BertEncoderForward, BackwardReachesEveryParameter) {
  auto config = small_config("electra");
  config["embedding_size"] = 16;
  auto encoder = make_encoder(config, 7);
  auto ids = torch::randint(1, 40, {2, 6}, torch::kLong);
  encoder->forward(ids, torch::zeros_like(ids), torch::ones_like(ids)).pow(2).mean().backward();
  for (const auto& item : encoder->named_parameters()) {
    ASSERT_TRUE(item.value().grad().defined()) << item.key();
    EXPECT_GT(item.value().grad().abs().sum().item<double>(), 0.0) << item.key();
  }
}

}  // namespace
}  // namespace automm
