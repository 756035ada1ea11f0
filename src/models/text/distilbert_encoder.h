// Hugging Face DistilBERT text encoder (config.json model_type "distilbert"):
// BERT's post-norm transformer with 6 layers, no token types and no pooler.
//
// The module tree mirrors transformers' DistilBertModel, so named_parameters()
// yields Hugging Face's names without the "distilbert." prefix
// (embeddings.word_embeddings.weight, transformer.layer.0.attention.q_lin.weight,
// transformer.layer.0.sa_layer_norm.weight, transformer.layer.0.ffn.lin1.weight,
// ...) and a checkpoint's state dict loads by name through load_hf_state_dict.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "models/text/hf_common.h"
#include "models/text/text_encoder.h"

namespace automm {

// transformers' DistilBertConfig fields and defaults (distilbert-base-uncased).
struct DistilBertConfig {
  int64_t vocab_size = 30522;
  int64_t dim = 768;  // hidden size
  int64_t n_layers = 6;
  int64_t n_heads = 12;
  int64_t hidden_dim = 3072;  // feed-forward width
  int64_t max_position_embeddings = 512;
  // Fixed sine / cosine position table, frozen (requires_grad false) as in transformers.
  bool sinusoidal_pos_embds = false;
  std::string activation = "gelu";
  double dropout = 0.1;             // embeddings and feed-forward output
  double attention_dropout = 0.1;   // attention probabilities
  int64_t pad_token_id = 0;         // -1: none (config.json null)
  double initializer_range = 0.02;  // std of the normal init (random weights only)
  // DistilBERT hard-codes its LayerNorm epsilon; config.json has no field for it.
  static constexpr double kLayerNormEps = 1e-12;

  // Parses a Hugging Face config.json (model_type, when present, must be
  // "distilbert"). Absent fields take transformers' defaults. Throws
  // std::invalid_argument naming the invalid field.
  static DistilBertConfig from_json(const nlohmann::json& config);
  void validate() const;  // throws std::invalid_argument naming the field
};

namespace distilbert {

// [positions, dim]: row p is sin(p / 10000^(2i / dim)) in column 2i and
// cos(p / 10000^(2i / dim)) in column 2i + 1 (transformers' create_sinusoidal_embeddings).
torch::Tensor sinusoidal_position_table(int64_t positions, int64_t dim);

// word + position embeddings -> LayerNorm -> dropout.
class EmbeddingsImpl : public torch::nn::Module {
 public:
  explicit EmbeddingsImpl(const DistilBertConfig& config);
  torch::Tensor forward(const torch::Tensor& input_ids);  // [batch, seq] int64 -> [batch, seq, dim]

  torch::nn::Embedding word_embeddings{nullptr};
  torch::nn::Embedding position_embeddings{nullptr};
  torch::nn::LayerNorm LayerNorm{nullptr};  // NOLINT: Hugging Face's name
  Dropout dropout{nullptr};
};
TORCH_MODULE(Embeddings);

// attention: q_lin / k_lin / v_lin -> scaled dot product over the tokens -> out_lin.
class MultiHeadSelfAttentionImpl : public torch::nn::Module {
 public:
  explicit MultiHeadSelfAttentionImpl(const DistilBertConfig& config);
  // x [batch, seq, dim], key_padding [batch, 1, 1, seq] bool (true = padding
  // key, never attended to) -> [batch, seq, dim]
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& key_padding);

  torch::nn::Linear q_lin{nullptr};
  torch::nn::Linear k_lin{nullptr};
  torch::nn::Linear v_lin{nullptr};
  torch::nn::Linear out_lin{nullptr};
  Dropout dropout{nullptr};  // on the attention probabilities

 private:
  int64_t n_heads_;
};
TORCH_MODULE(MultiHeadSelfAttention);

// ffn: lin1 -> activation -> lin2 -> dropout.
class FFNImpl : public torch::nn::Module {
 public:
  explicit FFNImpl(const DistilBertConfig& config);
  torch::Tensor forward(const torch::Tensor& x);  // [batch, seq, dim] -> [batch, seq, dim]

  torch::nn::Linear lin1{nullptr};
  torch::nn::Linear lin2{nullptr};
  Dropout dropout{nullptr};

 private:
  kernels::Epilogue activation_;
};
TORCH_MODULE(FFN);

// transformer.layer.{i}: post-norm attention and feed-forward sublayers.
class TransformerBlockImpl : public torch::nn::Module {
 public:
  explicit TransformerBlockImpl(const DistilBertConfig& config);
  // Arguments as MultiHeadSelfAttention -> [batch, seq, dim]
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& key_padding);

  MultiHeadSelfAttention attention{nullptr};
  torch::nn::LayerNorm sa_layer_norm{nullptr};
  FFN ffn{nullptr};
  torch::nn::LayerNorm output_layer_norm{nullptr};
};
TORCH_MODULE(TransformerBlock);

}  // namespace distilbert

class DistilBertEncoderImpl : public TextEncoderImpl {
 public:
  explicit DistilBertEncoderImpl(const DistilBertConfig& config);

  // input_ids, attention_mask: [batch, seq] integer tensors (mask 1 = token,
  // 0 = padding; undefined = no padding) -> last hidden states [batch, seq, dim].
  // token_type_ids are checked for shape and otherwise ignored: DistilBERT has none.
  torch::Tensor forward(const torch::Tensor& input_ids, const torch::Tensor& token_type_ids,
                        const torch::Tensor& attention_mask) override;

  // Loads a Hugging Face state dict by name, all or nothing. Names may carry
  // the "distilbert." prefix; heads (vocab_transform, vocab_layer_norm,
  // vocab_projector, pre_classifier, classifier, qa_outputs) and the
  // position_ids buffer are ignored. Throws std::runtime_error listing missing
  // and unexpected encoder tensors, or naming a tensor whose shape differs.
  void load_hf_state_dict(const std::map<std::string, torch::Tensor>& weights) override;

  int64_t hidden_size() const override { return config_.dim; }
  int64_t max_sequence_length() const override { return config_.max_position_embeddings; }
  int64_t type_vocab_size() const override { return 0; }
  const DistilBertConfig& config() const { return config_; }

  distilbert::Embeddings embeddings{nullptr};
  // transformer.layer.{i}: TransformerBlock. forward runs the blocks itself,
  // through run_block, so "transformer" is only a named container.
  std::shared_ptr<torch::nn::Module> transformer;
  torch::nn::ModuleList layer{nullptr};  // transformer.layer

 private:
  DistilBertConfig config_;
};
TORCH_MODULE(DistilBertEncoder);

// The registry's factory: DistilBertConfig::from_json(config) with random weights.
std::shared_ptr<TextEncoderImpl> make_distilbert_encoder(const nlohmann::json& config);

}  // namespace automm
