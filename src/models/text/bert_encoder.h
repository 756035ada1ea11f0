// Hugging Face BERT-family text encoder (bert, electra, roberta, xlm-roberta).
//
// The module tree mirrors Hugging Face's BertModel / ElectraModel / RobertaModel
// without the pooler, so named_parameters() yields Hugging Face's names without
// the model prefix (embeddings.word_embeddings.weight,
// encoder.layer.0.attention.self.query.weight, ...) and a checkpoint's state
// dict loads by name through load_hf_state_dict.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "models/text/hf_common.h"
#include "models/text/text_encoder.h"

namespace automm {

struct BertConfig {
  std::string model_type;  // "bert", "electra", "roberta", "xlm-roberta"
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t num_hidden_layers = 0;
  int64_t num_attention_heads = 0;
  int64_t intermediate_size = 0;
  int64_t max_position_embeddings = 0;
  int64_t type_vocab_size = 2;
  double layer_norm_eps = 1e-12;
  std::string hidden_act = "gelu";  // gelu (erf), gelu_new / gelu_pytorch_tanh (tanh), relu, silu / swish
  // Width of the embeddings. Equal to hidden_size except for electra, where a
  // differing width adds the embeddings_project Linear(embedding_size, hidden_size).
  int64_t embedding_size = 0;
  // Padding token id; -1 when the config has none. roberta / xlm-roberta count
  // positions from pad_token_id + 1 and give padding tokens position pad_token_id.
  int64_t pad_token_id = 0;
  double hidden_dropout_prob = 0.1;
  double attention_probs_dropout_prob = 0.1;
  double initializer_range = 0.02;  // std of the normal init (random weights only)

  // Parses a Hugging Face config.json. Required: model_type, vocab_size,
  // hidden_size, num_hidden_layers, num_attention_heads, intermediate_size,
  // max_position_embeddings. The other fields default as in transformers'
  // config classes (type_vocab_size 2, layer_norm_eps 1e-12, hidden_act gelu,
  // pad_token_id 0 / roberta 1, electra embedding_size 128, dropouts 0.1).
  // Throws std::invalid_argument naming the missing or invalid field.
  static BertConfig from_json(const nlohmann::json& config);

  // Throws std::invalid_argument when a field is out of range.
  void validate() const;

  // "bert.", "electra." or "roberta." (xlm-roberta checkpoints use "roberta.").
  std::string hf_prefix() const;
  bool uses_roberta_positions() const;
  static std::vector<std::string> supported_model_types();
};

namespace bert {

// BERT's activations (gelu, gelu_new / gelu_pytorch_tanh, relu, silu / swish);
// throws std::invalid_argument for others.
kernels::Epilogue parse_activation(const std::string& name);

// word + position + token type embeddings -> LayerNorm -> dropout.
class EmbeddingsImpl : public torch::nn::Module {
 public:
  explicit EmbeddingsImpl(const BertConfig& config);
  // [batch, seq] int64 x3 -> [batch, seq, embedding_size]
  torch::Tensor forward(const torch::Tensor& input_ids, const torch::Tensor& token_type_ids,
                        const torch::Tensor& position_ids);

  torch::nn::Embedding word_embeddings{nullptr};
  torch::nn::Embedding position_embeddings{nullptr};
  torch::nn::Embedding token_type_embeddings{nullptr};
  torch::nn::LayerNorm LayerNorm{nullptr};  // NOLINT: Hugging Face's name
  Dropout dropout{nullptr};
};
TORCH_MODULE(Embeddings);

// attention.self: multi-head scaled dot-product attention.
class SelfAttentionImpl : public torch::nn::Module {
 public:
  explicit SelfAttentionImpl(const BertConfig& config);
  // hidden [batch, seq, hidden], mask_bias [batch, 1, 1, seq] -> [batch, seq, hidden]
  torch::Tensor forward(const torch::Tensor& hidden, const torch::Tensor& mask_bias);

  int64_t num_heads;
  int64_t head_size;
  torch::nn::Linear query{nullptr};
  torch::nn::Linear key{nullptr};
  torch::nn::Linear value{nullptr};
  Dropout dropout{nullptr};
};
TORCH_MODULE(SelfAttention);

// dense -> dropout -> LayerNorm(x + residual); attention.output and output.
using ResidualOutputImpl = hf::ResidualOutputImpl;
using ResidualOutput = hf::ResidualOutput;

// attention = {self, output}.
class AttentionImpl : public torch::nn::Module {
 public:
  explicit AttentionImpl(const BertConfig& config);
  torch::Tensor forward(const torch::Tensor& hidden, const torch::Tensor& mask_bias);  // [batch, seq, hidden]

  SelfAttention self{nullptr};
  ResidualOutput output{nullptr};
};
TORCH_MODULE(Attention);

// intermediate: dense -> activation.
class IntermediateImpl : public torch::nn::Module {
 public:
  explicit IntermediateImpl(const BertConfig& config);
  torch::Tensor forward(const torch::Tensor& hidden);  // [batch, seq, hidden] -> [batch, seq, intermediate]

  kernels::Epilogue activation;  // fused into dense for inference
  torch::nn::Linear dense{nullptr};
};
TORCH_MODULE(Intermediate);

// One post-norm transformer layer: encoder.layer.{i}.
class LayerImpl : public torch::nn::Module {
 public:
  explicit LayerImpl(const BertConfig& config);
  torch::Tensor forward(const torch::Tensor& hidden, const torch::Tensor& mask_bias);  // [batch, seq, hidden]

  Attention attention{nullptr};
  Intermediate intermediate{nullptr};
  ResidualOutput output{nullptr};
};
TORCH_MODULE(Layer);

// encoder: holds the layer list so its parameters are named encoder.layer.{i}.*.
class LayerStackImpl : public torch::nn::Module {
 public:
  explicit LayerStackImpl(const BertConfig& config);  // BertEncoder runs the layers

  torch::nn::ModuleList layer{nullptr};
};
TORCH_MODULE(LayerStack);

}  // namespace bert

class BertEncoderImpl : public TextEncoderImpl {
 public:
  explicit BertEncoderImpl(const BertConfig& config);

  // input_ids, token_type_ids, attention_mask: [batch, seq] integer tensors
  // (mask 1 = token, 0 = padding) -> last hidden states [batch, seq, hidden].
  // An undefined token_type_ids means all zeros, an undefined attention_mask
  // means no padding. Outputs at padded positions are computed but meaningless.
  torch::Tensor forward(const torch::Tensor& input_ids, const torch::Tensor& token_type_ids,
                        const torch::Tensor& attention_mask) override;

  // Loads a Hugging Face state dict by name, all or nothing. Names may carry
  // the model prefix (hf_prefix()); TF-style LayerNorm gamma/beta are renamed
  // weight/bias; heads the encoder lacks (cls.*, pooler.*, lm_head.*,
  // discriminator_predictions.*, ...) and position_ids / token_type_ids buffers
  // are ignored. Throws std::runtime_error listing missing and unexpected
  // encoder tensors (first 20 of each), or naming a tensor whose shape differs.
  // Values are cast to each parameter's dtype and device.
  void load_hf_state_dict(const std::map<std::string, torch::Tensor>& weights) override;

  const BertConfig& config() const { return config_; }
  int64_t hidden_size() const override { return config_.hidden_size; }
  int64_t max_sequence_length() const override;
  int64_t type_vocab_size() const override { return config_.type_vocab_size; }

 private:
  BertConfig config_;
  bert::Embeddings embeddings_{nullptr};
  torch::nn::Linear embeddings_project_{nullptr};  // electra with embedding_size != hidden_size
  bert::LayerStack encoder_{nullptr};
};
TORCH_MODULE(BertEncoder);

}  // namespace automm
