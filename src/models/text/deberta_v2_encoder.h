// Hugging Face DeBERTa-v2 / DeBERTa-v3 text encoder (config.json model_type
// "deberta-v2"): disentangled self-attention with content-to-position (c2p)
// and position-to-content (p2c) terms over (log-bucketed) relative positions.
//
// The module tree mirrors transformers' DebertaV2Model, so named_parameters()
// yields Hugging Face's names without the "deberta." prefix
// (embeddings.word_embeddings.weight, encoder.layer.0.attention.self.query_proj.weight,
// encoder.rel_embeddings.weight, encoder.LayerNorm.weight, ...) and a
// checkpoint's state dict loads by name through load_hf_state_dict.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "models/text/hf_common.h"
#include "models/text/text_encoder.h"

namespace automm {

// transformers' DebertaV2Config fields, with its defaults (the model code's
// getattr defaults for the fields the config class does not declare).
struct DebertaV2Config {
  int64_t vocab_size = 128100;
  int64_t hidden_size = 1536;
  int64_t num_hidden_layers = 24;
  int64_t num_attention_heads = 24;
  int64_t intermediate_size = 6144;
  std::string hidden_act = "gelu";
  int64_t max_position_embeddings = 512;
  int64_t type_vocab_size = 0;  // 0: no token type embeddings (deberta-v3)
  double layer_norm_eps = 1e-7;
  // Adds absolute position embeddings to the word embeddings (v2: true, v3: false).
  bool position_biased_input = true;
  bool relative_attention = false;
  // Relative distances beyond this are clamped / log-bucketed; < 1 means
  // max_position_embeddings.
  int64_t max_relative_positions = -1;
  // > 0: relative positions are log-bucketed into 2 * position_buckets embeddings.
  int64_t position_buckets = -1;
  // Any of "c2p", "p2c". config.json may write a list or a "p2c|c2p" string.
  std::vector<std::string> pos_att_type;
  // The c2p / p2c terms reuse key_proj / query_proj instead of pos_key_proj / pos_query_proj.
  bool share_att_key = false;
  // "layer_norm": encoder.rel_embeddings go through encoder.LayerNorm; "none": not.
  std::string norm_rel_ebd = "none";
  int64_t pad_token_id = 0;    // -1: none (config.json null)
  int64_t embedding_size = 0;  // != hidden_size adds embeddings.embed_proj (no bias)
  // > 0 adds encoder.conv: a Conv1d over the embeddings added after layer 0
  // (deberta-v2-xlarge / xxlarge).
  int64_t conv_kernel_size = 0;
  int64_t conv_groups = 1;
  std::string conv_act = "tanh";
  int64_t attention_head_size = 0;  // default hidden_size / num_attention_heads
  double hidden_dropout_prob = 0.1;
  double attention_probs_dropout_prob = 0.1;
  double initializer_range = 0.02;  // std of the normal init (random weights only)

  // Parses a Hugging Face config.json (model_type, when present, must be
  // "deberta-v2"). Absent fields take transformers' defaults. Throws
  // std::invalid_argument naming the invalid field.
  static DebertaV2Config from_json(const nlohmann::json& config);
  void validate() const;  // throws std::invalid_argument naming the field

  bool has_c2p() const;
  bool has_p2c() const;
  bool norm_rel_embeddings() const { return norm_rel_ebd == "layer_norm"; }
  // max_relative_positions, or max_position_embeddings when it is < 1.
  int64_t max_relative_distance() const;
  // transformers' pos_ebd_size: relative positions index [-span, span); the
  // relative embedding table has 2 * span rows.
  int64_t relative_span() const;
};

namespace deberta_v2 {

// [seq_q, seq_k] int64: relative position q - k, log-bucketed when
// position_buckets > 0 (transformers' build_relative_position).
torch::Tensor build_relative_position(int64_t query_size, int64_t key_size, int64_t bucket_size,
                                      int64_t max_position, const torch::Device& device);
// Distances within +-bucket_size/2 stay exact; longer ones are mapped
// logarithmically so that max_position - 1 lands on bucket_size - 1 (sign kept).
torch::Tensor make_log_bucket_position(const torch::Tensor& relative_pos, int64_t bucket_size,
                                       int64_t max_position);

// word (+ position) (+ token type) embeddings (-> embed_proj) -> LayerNorm -> * mask -> dropout.
class EmbeddingsImpl : public torch::nn::Module {
 public:
  explicit EmbeddingsImpl(const DebertaV2Config& config);
  // ids, token_types [batch, seq] int64 (token_types undefined: none), mask
  // [batch, seq] float -> [batch, seq, hidden]
  torch::Tensor forward(const torch::Tensor& input_ids, const torch::Tensor& token_type_ids,
                        const torch::Tensor& mask);

  torch::nn::Embedding word_embeddings{nullptr};
  torch::nn::Embedding position_embeddings{nullptr};    // position_biased_input only
  torch::nn::Embedding token_type_embeddings{nullptr};  // type_vocab_size > 0 only
  torch::nn::Linear embed_proj{nullptr};                // embedding_size != hidden_size only
  torch::nn::LayerNorm LayerNorm{nullptr};              // NOLINT: Hugging Face's name
  Dropout dropout{nullptr};
};
TORCH_MODULE(Embeddings);

// attention.self: content-to-content plus the disentangled c2p / p2c terms.
class DisentangledSelfAttentionImpl : public torch::nn::Module {
 public:
  explicit DisentangledSelfAttentionImpl(const DebertaV2Config& config);
  // hidden [batch, seq, hidden], attention_mask [batch, 1, seq, seq] bool
  // (true = query and key both tokens), relative_pos [seq, seq] int64,
  // rel_embeddings [2 * span, hidden] (both undefined without
  // relative_attention) -> [batch, seq, heads * head_size]
  torch::Tensor forward(const torch::Tensor& hidden, const torch::Tensor& attention_mask,
                        const torch::Tensor& relative_pos, const torch::Tensor& rel_embeddings);

  torch::nn::Linear query_proj{nullptr};
  torch::nn::Linear key_proj{nullptr};
  torch::nn::Linear value_proj{nullptr};
  torch::nn::Linear pos_key_proj{nullptr};    // c2p without share_att_key
  torch::nn::Linear pos_query_proj{nullptr};  // p2c without share_att_key
  Dropout dropout{nullptr};        // on the attention probabilities
  Dropout pos_dropout{nullptr};    // on rel_embeddings

 private:
  // q, k [batch, heads, seq, head] -> the c2p + p2c scores [batch, heads, seq, seq].
  torch::Tensor disentangled_attention_bias(const torch::Tensor& q, const torch::Tensor& k,
                                            const torch::Tensor& relative_pos,
                                            const torch::Tensor& rel_embeddings, double scale);

  int64_t num_heads_;
  int64_t head_size_;
  int64_t span_;
  bool relative_attention_, c2p_, p2c_, share_att_key_;
  int64_t scale_factor_;  // 1 + number of pos_att_type terms
};
TORCH_MODULE(DisentangledSelfAttention);

// attention.output and output are hf::ResidualOutput, intermediate is hf::Intermediate.

// attention = {self, output}.
class AttentionImpl : public torch::nn::Module {
 public:
  explicit AttentionImpl(const DebertaV2Config& config);
  // Arguments as DisentangledSelfAttention -> [batch, seq, hidden]
  torch::Tensor forward(const torch::Tensor& hidden, const torch::Tensor& attention_mask,
                        const torch::Tensor& relative_pos, const torch::Tensor& rel_embeddings);

  DisentangledSelfAttention self{nullptr};
  hf::ResidualOutput output{nullptr};
};
TORCH_MODULE(Attention);

// One post-norm transformer layer: encoder.layer.{i}.
class LayerImpl : public torch::nn::Module {
 public:
  explicit LayerImpl(const DebertaV2Config& config);
  // Arguments as DisentangledSelfAttention -> [batch, seq, hidden]
  torch::Tensor forward(const torch::Tensor& hidden, const torch::Tensor& attention_mask,
                        const torch::Tensor& relative_pos, const torch::Tensor& rel_embeddings);

  Attention attention{nullptr};
  hf::Intermediate intermediate{nullptr};
  hf::ResidualOutput output{nullptr};
};
TORCH_MODULE(Layer);

// encoder.conv (conv_kernel_size > 0): a same-length Conv1d over the
// embeddings, masked, activated and added to layer 0's output before LayerNorm.
class ConvLayerImpl : public torch::nn::Module {
 public:
  explicit ConvLayerImpl(const DebertaV2Config& config);
  // embeddings, residual [batch, seq, hidden], mask [batch, seq] float -> [batch, seq, hidden]
  torch::Tensor forward(const torch::Tensor& embeddings, const torch::Tensor& residual,
                        const torch::Tensor& mask);

  torch::nn::Conv1d conv{nullptr};
  torch::nn::LayerNorm LayerNorm{nullptr};  // NOLINT: Hugging Face's name
  Dropout dropout{nullptr};

 private:
  hf::Activation activation_;
};
TORCH_MODULE(ConvLayer);

// encoder: the layers plus the shared relative position embeddings.
class EncoderImpl : public torch::nn::Module {
 public:
  explicit EncoderImpl(const DebertaV2Config& config);
  // embeddings [batch, seq, hidden], mask [batch, seq] float -> [batch, seq, hidden]
  torch::Tensor forward(const torch::Tensor& embeddings, const torch::Tensor& mask);

  torch::nn::ModuleList layer{nullptr};
  torch::nn::Embedding rel_embeddings{nullptr};  // relative_attention only
  torch::nn::LayerNorm LayerNorm{nullptr};  // NOLINT: Hugging Face's name; norm_rel_ebd "layer_norm" only
  ConvLayer conv{nullptr};                  // conv_kernel_size > 0 only

 private:
  DebertaV2Config config_;
};
TORCH_MODULE(Encoder);

}  // namespace deberta_v2

class DebertaV2EncoderImpl : public TextEncoderImpl {
 public:
  explicit DebertaV2EncoderImpl(const DebertaV2Config& config);

  // input_ids, token_type_ids, attention_mask: [batch, seq] integer tensors
  // (mask 1 = token, 0 = padding) -> last hidden states [batch, seq, hidden].
  // token_type_ids are ignored when type_vocab_size is 0 (as in transformers);
  // undefined means all zeros. An undefined mask means no padding.
  torch::Tensor forward(const torch::Tensor& input_ids, const torch::Tensor& token_type_ids,
                        const torch::Tensor& attention_mask) override;

  // Loads a Hugging Face state dict by name, all or nothing. Names may carry
  // the "deberta." prefix; heads (lm_predictions.*, pooler.*, classifier.*,
  // ...), the position_ids buffer and, without position_biased_input, an
  // embeddings.position_embeddings.weight are ignored (transformers ignores
  // them too). Throws std::runtime_error listing missing and unexpected
  // encoder tensors, or naming a tensor whose shape differs.
  void load_hf_state_dict(const std::map<std::string, torch::Tensor>& weights) override;

  int64_t hidden_size() const override { return config_.hidden_size; }
  // max_position_embeddings with absolute positions, else kUnboundedSequenceLength.
  int64_t max_sequence_length() const override;
  int64_t type_vocab_size() const override { return config_.type_vocab_size; }
  const DebertaV2Config& config() const { return config_; }

  // Purely relative positions allow any length (memory permitting).
  static constexpr int64_t kUnboundedSequenceLength = int64_t{1} << 30;

 private:
  DebertaV2Config config_;
  deberta_v2::Embeddings embeddings_{nullptr};
  deberta_v2::Encoder encoder_{nullptr};
};
TORCH_MODULE(DebertaV2Encoder);

// The registry hook for model_type "deberta-v2": parses `config` and builds
// an encoder with random weights.
std::shared_ptr<TextEncoderImpl> make_deberta_v2_encoder(const nlohmann::json& config);

}  // namespace automm
