// Formulas follow transformers' models/mpnet/modeling_mpnet.py (MPNetEmbeddings,
// create_position_ids_from_input_ids, MPNetSelfAttention, MPNetAttention,
// MPNetLayer, MPNetEncoder.compute_position_bias / relative_position_bucket);
// tests/models/mpnet_reference.py transcribes that file in Python for the
// parity tests.
#include "mpnet_encoder.h"

#include <cmath>
#include <stdexcept>

#include "hf_common.h"

namespace automm {

using hf::bad_field;

// --- MPNetConfig ----------------------------------------------------------------------------

MPNetConfig MPNetConfig::from_json(const nlohmann::json& json) {
  hf::require_model_type(json, "mpnet");
  MPNetConfig c;
  c.vocab_size = hf::read_int(json, "vocab_size", c.vocab_size);
  c.hidden_size = hf::read_int(json, "hidden_size", c.hidden_size);
  c.num_hidden_layers = hf::read_int(json, "num_hidden_layers", c.num_hidden_layers);
  c.num_attention_heads = hf::read_int(json, "num_attention_heads", c.num_attention_heads);
  c.intermediate_size = hf::read_int(json, "intermediate_size", c.intermediate_size);
  c.hidden_act = hf::read_string(json, "hidden_act", c.hidden_act);
  c.hidden_dropout_prob = hf::read_double(json, "hidden_dropout_prob", c.hidden_dropout_prob);
  c.attention_probs_dropout_prob =
      hf::read_double(json, "attention_probs_dropout_prob", c.attention_probs_dropout_prob);
  c.max_position_embeddings = hf::read_int(json, "max_position_embeddings", c.max_position_embeddings);
  c.initializer_range = hf::read_double(json, "initializer_range", c.initializer_range);
  c.layer_norm_eps = hf::read_double(json, "layer_norm_eps", c.layer_norm_eps);
  c.relative_attention_num_buckets =
      hf::read_int(json, "relative_attention_num_buckets", c.relative_attention_num_buckets);
  c.pad_token_id = hf::read_token_id(json, "pad_token_id", c.pad_token_id);
  c.validate();
  return c;
}

void MPNetConfig::validate() const {
  hf::require_positive_sizes(vocab_size, hidden_size, num_hidden_layers, num_attention_heads, intermediate_size);
  hf::require_multiple("hidden_size", hidden_size, "num_attention_heads", num_attention_heads);
  hf::require_activation("hidden_act", hidden_act);
  hf::require_probability("hidden_dropout_prob", hidden_dropout_prob);
  hf::require_probability("attention_probs_dropout_prob", attention_probs_dropout_prob);
  hf::require_positive("layer_norm_eps", layer_norm_eps);
  hf::require_non_negative("initializer_range", initializer_range);
  // The embeddings reserve index kPaddingIdx; positions start right after it.
  if (vocab_size <= kPaddingIdx) {
    bad_field("vocab_size", "must exceed the padding index " + std::to_string(kPaddingIdx) + ", got " +
                                std::to_string(vocab_size));
  }
  if (max_position_embeddings <= kPaddingIdx + 1) {
    bad_field("max_position_embeddings", "must exceed " + std::to_string(kPaddingIdx + 1) +
                                             " (positions start after the padding index), got " +
                                             std::to_string(max_position_embeddings));
  }
  if (relative_attention_num_buckets < kPositionBuckets) {
    bad_field("relative_attention_num_buckets",
              "must be at least " + std::to_string(kPositionBuckets) +
                  ": transformers' MPNet always buckets relative distances into " +
                  std::to_string(kPositionBuckets) + ", got " +
                  std::to_string(relative_attention_num_buckets));
  }
  hf::require_token_id("pad_token_id", pad_token_id, vocab_size);
}

namespace mpnet {

torch::Tensor relative_position_bucket(const torch::Tensor& relative_position, int64_t num_buckets,
                                       int64_t max_distance) {
  const int64_t half = num_buckets / 2;
  const int64_t max_exact = half / 2;
  auto distance = -relative_position;                    // query - key
  auto bucket = distance.lt(0).to(torch::kLong) * half;  // keys after the query use the upper half
  distance = distance.abs();
  // Logarithmic buckets in float32, as transformers computes them (bucket
  // edges are exact there); distance 0 would give log(0) but takes the exact branch.
  auto scaled = torch::log(distance.clamp_min(1).to(torch::kFloat) / max_exact) /
                std::log(static_cast<double>(max_distance) / static_cast<double>(max_exact)) *
                (half - max_exact);
  auto logarithmic = torch::clamp_max(scaled.to(torch::kLong) + max_exact, half - 1);
  return bucket + torch::where(distance.lt(max_exact), distance, logarithmic);
}

EmbeddingsImpl::EmbeddingsImpl(const MPNetConfig& config) {
  const int64_t pad = MPNetConfig::kPaddingIdx;
  word_embeddings = register_module(
      "word_embeddings",
      hf::make_embedding(config.vocab_size, config.hidden_size, pad, config.initializer_range));
  position_embeddings = register_module(
      "position_embeddings",
      hf::make_embedding(config.max_position_embeddings, config.hidden_size, pad, config.initializer_range));
  LayerNorm = register_module("LayerNorm", hf::make_layer_norm(config.hidden_size, config.layer_norm_eps));
  dropout = register_module("dropout", Dropout(config.hidden_dropout_prob));
}

torch::Tensor EmbeddingsImpl::forward(const torch::Tensor& input_ids) {
  const int64_t pad = MPNetConfig::kPaddingIdx;
  // RoBERTa-style positions: the k-th non-padding token of a row gets pad + k,
  // padding tokens get pad (a zero-initialised row).
  auto is_token = input_ids.ne(pad).to(torch::kLong);                           // [batch, seq]
  auto positions = torch::cumsum(is_token, 1) * is_token + pad;                 // [batch, seq]
  auto embedded = word_embeddings(input_ids) + position_embeddings(positions);  // [batch, seq, hidden]
  return dropout(apply_layer_norm(*LayerNorm, embedded));
}

SelfAttentionImpl::SelfAttentionImpl(const MPNetConfig& config) : num_heads_(config.num_attention_heads) {
  auto linear = [&config]() {
    return hf::make_linear(config.hidden_size, config.hidden_size, config.initializer_range);
  };
  q = register_module("q", linear());
  k = register_module("k", linear());
  v = register_module("v", linear());
  o = register_module("o", linear());
  dropout = register_module("dropout", Dropout(config.attention_probs_dropout_prob));
}

torch::Tensor SelfAttentionImpl::forward(const torch::Tensor& hidden, const torch::Tensor& position_bias,
                                         const torch::Tensor& key_mask_bias) {
  const int64_t head_size = hidden.size(2) / num_heads_;
  auto queries = hf::split_heads(apply_linear(*q, hidden), num_heads_);  // [batch, heads, seq, head]
  auto keys = hf::split_heads(apply_linear(*k, hidden), num_heads_);
  auto values = hf::split_heads(apply_linear(*v, hidden), num_heads_);
  auto scores =
      hf::attention_scores(queries, keys, std::sqrt(static_cast<double>(head_size)));  // [batch, heads, seq, seq]
  // transformers adds the bias in place, in the scores' dtype, then the mask
  // (which promotes bf16 autocast scores to float32, as there).
  scores = scores + position_bias.to(scores.scalar_type());
  scores = scores + key_mask_bias;
  // [batch, seq, hidden]
  return apply_linear(*o, hf::attention_context(dropout(torch::softmax(scores, -1)), values));
}

AttentionImpl::AttentionImpl(const MPNetConfig& config) {
  attn = register_module("attn", SelfAttention(config));
  LayerNorm = register_module("LayerNorm", hf::make_layer_norm(config.hidden_size, config.layer_norm_eps));
  dropout = register_module("dropout", Dropout(config.hidden_dropout_prob));
}

torch::Tensor AttentionImpl::forward(const torch::Tensor& hidden, const torch::Tensor& position_bias,
                                     const torch::Tensor& key_mask_bias) {
  return apply_layer_norm(*LayerNorm, dropout(attn(hidden, position_bias, key_mask_bias)) + hidden);
}

LayerImpl::LayerImpl(const MPNetConfig& config) {
  attention = register_module("attention", Attention(config));
  intermediate = register_module("intermediate",
                                 hf::Intermediate(config.hidden_size, config.intermediate_size, config.hidden_act,
                                                  config.initializer_range));
  output = register_module(
      "output", hf::ResidualOutput(hf::ResidualOutputOptions{config.intermediate_size, config.hidden_size,
                                                             config.layer_norm_eps, config.hidden_dropout_prob,
                                                             config.initializer_range}));
}

torch::Tensor LayerImpl::forward(const torch::Tensor& hidden, const torch::Tensor& position_bias,
                                 const torch::Tensor& key_mask_bias) {
  auto attended = attention(hidden, position_bias, key_mask_bias);  // [batch, seq, hidden]
  return output(intermediate(attended), attended);
}

EncoderImpl::EncoderImpl(const MPNetConfig& config) {
  layer = register_module("layer", torch::nn::ModuleList());
  for (int64_t i = 0; i < config.num_hidden_layers; ++i) layer->push_back(Layer(config));
  relative_attention_bias =
      register_module("relative_attention_bias",
                      hf::make_embedding(config.relative_attention_num_buckets, config.num_attention_heads,
                                         -1, config.initializer_range));
}

torch::Tensor EncoderImpl::position_bias(const torch::Tensor& buckets) {
  return relative_attention_bias(buckets).permute({2, 0, 1}).unsqueeze(0);  // [1, heads, seq, seq]
}

}  // namespace mpnet

// --- MPNetEncoder ---------------------------------------------------------------------------

MPNetEncoderImpl::MPNetEncoderImpl(const MPNetConfig& config) : config_(config) {
  config_.validate();
  embeddings = register_module("embeddings", mpnet::Embeddings(config_));
  encoder = register_module("encoder", mpnet::Encoder(config_));
}

int64_t MPNetEncoderImpl::max_sequence_length() const {
  return config_.max_position_embeddings - MPNetConfig::kPaddingIdx - 1;
}

torch::Tensor MPNetEncoderImpl::forward(const torch::Tensor& input_ids, const torch::Tensor& token_type_ids,
                                        const torch::Tensor& attention_mask) {
  const auto inputs = hf::check_encoder_inputs("MPNetEncoder", input_ids, token_type_ids, attention_mask,
                                               max_sequence_length());
  auto hidden = embeddings(inputs.input_ids);                                          // [batch, seq, hidden]
  auto key_mask_bias = hf::key_mask_bias(inputs.attention_mask, hidden.scalar_type());  // [batch, 1, 1, seq]
  auto positions = torch::arange(inputs.input_ids.size(1), inputs.input_ids.options());
  auto buckets =
      mpnet::relative_position_bucket(positions.unsqueeze(0) - positions.unsqueeze(1));  // [seq, seq]
  auto shared = encoder.ptr();  // std::shared_ptr: callable from the const lambda
  for (const auto& module : *encoder->layer) {
    auto block = std::dynamic_pointer_cast<mpnet::LayerImpl>(module);
    // Each block looks the shared bias up itself, and names the bias table
    // among the parameters it reads, so that a checkpointed block's
    // recomputation in backward also reaches encoder.relative_attention_bias.
    torch::nn::Module reads;
    reads.register_module("layer", block);
    reads.register_module("relative_attention_bias", encoder->relative_attention_bias.ptr());
    hidden = run_block(
        reads,
        [block, shared, buckets, key_mask_bias](const torch::Tensor& h) {
          return block->forward(h, shared->position_bias(buckets), key_mask_bias);
        },
        hidden);
  }
  return hidden;  // [batch, seq, hidden]
}

void MPNetEncoderImpl::load_hf_state_dict(const std::map<std::string, torch::Tensor>& weights) {
  static const auto is_ignored =
      hf::ignore_heads_and_position_ids({"pooler.", "lm_head.", "classifier.", "qa_outputs."});
  hf::load_state_dict_by_name(*this, weights,
                              {"mpnet.", is_ignored,
                               hf::encoder_description("mpnet", config_.num_hidden_layers, "hidden",
                                                       config_.hidden_size)});
}

std::shared_ptr<TextEncoderImpl> make_mpnet_encoder(const nlohmann::json& config) {
  return std::make_shared<MPNetEncoderImpl>(MPNetConfig::from_json(config));
}

}  // namespace automm
