// Hugging Face MPNet text encoder (config.json model_type "mpnet"), the
// architecture of sentence-transformers/all-mpnet-base-v2: a BERT-style
// post-norm transformer whose attention scores all layers add one shared,
// learned T5-style bias per head and bucketed relative distance.
//
// The module tree mirrors transformers' MPNetModel without the pooler, so
// named_parameters() yields Hugging Face's names without the "mpnet." prefix
// (embeddings.word_embeddings.weight, encoder.layer.0.attention.attn.q.weight,
// encoder.layer.0.attention.LayerNorm.weight, encoder.relative_attention_bias.weight,
// ...) and a checkpoint's state dict loads by name through load_hf_state_dict.
//
// Two transformers details this keeps (they differ from the config's face
// value): the padding index is always 1 (word and position embeddings, and
// the RoBERTa-style position ids that start after it), whatever pad_token_id
// says; and distances are always bucketed into 32 buckets, of which
// relative_attention_num_buckets (>= 32) rows are stored.
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

// transformers' MPNetConfig fields and defaults (microsoft/mpnet-base).
struct MPNetConfig {
  int64_t vocab_size = 30527;
  int64_t hidden_size = 768;
  int64_t num_hidden_layers = 12;
  int64_t num_attention_heads = 12;
  int64_t intermediate_size = 3072;
  std::string hidden_act = "gelu";
  double hidden_dropout_prob = 0.1;
  double attention_probs_dropout_prob = 0.1;
  int64_t max_position_embeddings = 512;  // all-mpnet-base-v2: 514
  double initializer_range = 0.02;        // std of the normal init (random weights only)
  double layer_norm_eps = 1e-12;
  int64_t relative_attention_num_buckets = 32;  // rows of encoder.relative_attention_bias
  int64_t pad_token_id = 1;                     // informational: the model pads with index 1 (see above)

  // transformers' MPNetEmbeddings.padding_idx and the num_buckets /
  // max_distance that MPNetEncoder.compute_position_bias uses.
  static constexpr int64_t kPaddingIdx = 1;
  static constexpr int64_t kPositionBuckets = 32;
  static constexpr int64_t kMaxDistance = 128;

  // Parses a Hugging Face config.json (model_type, when present, must be
  // "mpnet"). Absent fields take transformers' defaults. Throws
  // std::invalid_argument naming the invalid field.
  static MPNetConfig from_json(const nlohmann::json& config);
  void validate() const;  // throws std::invalid_argument naming the field
};

namespace mpnet {

// T5's bidirectional bucketing of relative_position = key - query ([..] int64,
// same shape out): half the buckets for keys before the query, half for keys
// at or after it; within each half, distances below a quarter of num_buckets
// keep a bucket of their own and longer ones share logarithmically wider
// buckets up to max_distance, beyond which all share the last.
torch::Tensor relative_position_bucket(const torch::Tensor& relative_position,
                                       int64_t num_buckets = MPNetConfig::kPositionBuckets,
                                       int64_t max_distance = MPNetConfig::kMaxDistance);

// word + position embeddings -> LayerNorm -> dropout. Position ids count the
// non-padding tokens from kPaddingIdx + 1; padding tokens get kPaddingIdx.
class EmbeddingsImpl : public torch::nn::Module {
 public:
  explicit EmbeddingsImpl(const MPNetConfig& config);
  torch::Tensor forward(const torch::Tensor& input_ids);  // [batch, seq] int64 -> [batch, seq, hidden]

  torch::nn::Embedding word_embeddings{nullptr};
  torch::nn::Embedding position_embeddings{nullptr};
  torch::nn::LayerNorm LayerNorm{nullptr};  // NOLINT: Hugging Face's name
  Dropout dropout{nullptr};
};
TORCH_MODULE(Embeddings);

// attention.attn: q / k / v -> scores + relative position bias + padding mask -> o.
class SelfAttentionImpl : public torch::nn::Module {
 public:
  explicit SelfAttentionImpl(const MPNetConfig& config);
  // hidden [batch, seq, hidden], position_bias [1, heads, seq, seq],
  // key_mask_bias [batch, 1, 1, seq] (0 for tokens, the lowest value for
  // padding) -> [batch, seq, hidden]
  torch::Tensor forward(const torch::Tensor& hidden, const torch::Tensor& position_bias,
                        const torch::Tensor& key_mask_bias);

  torch::nn::Linear q{nullptr};
  torch::nn::Linear k{nullptr};
  torch::nn::Linear v{nullptr};
  torch::nn::Linear o{nullptr};
  Dropout dropout{nullptr};  // on the attention probabilities

 private:
  int64_t num_heads_;
};
TORCH_MODULE(SelfAttention);

// attention: LayerNorm(dropout(attn(x)) + x).
class AttentionImpl : public torch::nn::Module {
 public:
  explicit AttentionImpl(const MPNetConfig& config);
  // Arguments as SelfAttention -> [batch, seq, hidden]
  torch::Tensor forward(const torch::Tensor& hidden, const torch::Tensor& position_bias,
                        const torch::Tensor& key_mask_bias);

  SelfAttention attn{nullptr};
  torch::nn::LayerNorm LayerNorm{nullptr};  // NOLINT: Hugging Face's name
  Dropout dropout{nullptr};
};
TORCH_MODULE(Attention);

// intermediate is hf::Intermediate, output hf::ResidualOutput.

// One post-norm encoder.layer.{i}.
class LayerImpl : public torch::nn::Module {
 public:
  explicit LayerImpl(const MPNetConfig& config);
  // Arguments as SelfAttention -> [batch, seq, hidden]
  torch::Tensor forward(const torch::Tensor& hidden, const torch::Tensor& position_bias,
                        const torch::Tensor& key_mask_bias);

  Attention attention{nullptr};
  hf::Intermediate intermediate{nullptr};
  hf::ResidualOutput output{nullptr};
};
TORCH_MODULE(Layer);

// encoder: the layers and the relative attention bias table they share.
class EncoderImpl : public torch::nn::Module {
 public:
  explicit EncoderImpl(const MPNetConfig& config);
  // [1, heads, seq, seq]: the bias table's row for each query-key bucket.
  torch::Tensor position_bias(const torch::Tensor& buckets);  // buckets [seq, seq] int64

  torch::nn::ModuleList layer{nullptr};
  torch::nn::Embedding relative_attention_bias{nullptr};  // [relative_attention_num_buckets, heads]
};
TORCH_MODULE(Encoder);

}  // namespace mpnet

class MPNetEncoderImpl : public TextEncoderImpl {
 public:
  explicit MPNetEncoderImpl(const MPNetConfig& config);

  // input_ids, attention_mask: [batch, seq] integer tensors (mask 1 = token,
  // 0 = padding; undefined = no padding) -> last hidden states [batch, seq, hidden].
  // token_type_ids are checked for shape and otherwise ignored: MPNet has none.
  // Position ids come from input_ids (tokens equal to 1 count as padding), as
  // in transformers.
  torch::Tensor forward(const torch::Tensor& input_ids, const torch::Tensor& token_type_ids,
                        const torch::Tensor& attention_mask) override;

  // Loads a Hugging Face state dict by name, all or nothing. Names may carry
  // the "mpnet." prefix; heads (pooler, lm_head, classifier, qa_outputs) and the
  // position_ids buffer are ignored. Throws std::runtime_error listing missing
  // and unexpected encoder tensors, or naming a tensor whose shape differs.
  void load_hf_state_dict(const std::map<std::string, torch::Tensor>& weights) override;

  int64_t hidden_size() const override { return config_.hidden_size; }
  // max_position_embeddings - kPaddingIdx - 1: positions start after the padding index.
  int64_t max_sequence_length() const override;
  int64_t type_vocab_size() const override { return 0; }
  const MPNetConfig& config() const { return config_; }

  mpnet::Embeddings embeddings{nullptr};
  mpnet::Encoder encoder{nullptr};

 private:
  MPNetConfig config_;
};
TORCH_MODULE(MPNetEncoder);

// The registry's factory: MPNetConfig::from_json(config) with random weights.
std::shared_ptr<TextEncoderImpl> make_mpnet_encoder(const nlohmann::json& config);

}  // namespace automm
