// Formulas follow transformers' models/distilbert/modeling_distilbert.py
// (Embeddings, create_sinusoidal_embeddings, MultiHeadSelfAttention, FFN,
// TransformerBlock, DistilBertModel); tests/models/distilbert_reference.py
// transcribes that file in Python for the parity tests.
#include "distilbert_encoder.h"

#include <cmath>
#include <stdexcept>

#include "hf_common.h"

namespace automm {

using hf::bad_field;

// --- DistilBertConfig -----------------------------------------------------------------------

DistilBertConfig DistilBertConfig::from_json(const nlohmann::json& json) {
  hf::require_model_type(json, "distilbert");
  DistilBertConfig c;
  c.vocab_size = hf::read_int(json, "vocab_size", c.vocab_size);
  c.dim = hf::read_int(json, "dim", c.dim);
  c.n_layers = hf::read_int(json, "n_layers", c.n_layers);
  c.n_heads = hf::read_int(json, "n_heads", c.n_heads);
  c.hidden_dim = hf::read_int(json, "hidden_dim", c.hidden_dim);
  c.max_position_embeddings = hf::read_int(json, "max_position_embeddings", c.max_position_embeddings);
  c.sinusoidal_pos_embds = hf::read_bool(json, "sinusoidal_pos_embds", c.sinusoidal_pos_embds);
  c.activation = hf::read_string(json, "activation", c.activation);
  c.dropout = hf::read_double(json, "dropout", c.dropout);
  c.attention_dropout = hf::read_double(json, "attention_dropout", c.attention_dropout);
  c.pad_token_id = hf::read_token_id(json, "pad_token_id", c.pad_token_id);
  c.initializer_range = hf::read_double(json, "initializer_range", c.initializer_range);
  c.validate();
  return c;
}

void DistilBertConfig::validate() const {
  hf::require_positive("vocab_size", vocab_size);
  hf::require_positive("dim", dim);
  hf::require_positive("n_layers", n_layers);
  hf::require_positive("n_heads", n_heads);
  hf::require_positive("hidden_dim", hidden_dim);
  hf::require_positive("max_position_embeddings", max_position_embeddings);
  hf::require_multiple("dim", dim, "n_heads", n_heads);
  hf::require_activation("activation", activation);
  hf::require_probability("dropout", dropout);
  hf::require_probability("attention_dropout", attention_dropout);
  hf::require_token_id("pad_token_id", pad_token_id, vocab_size);
  hf::require_non_negative("initializer_range", initializer_range);
}

namespace distilbert {

torch::Tensor sinusoidal_position_table(int64_t positions, int64_t dim) {
  auto position = torch::arange(positions, torch::kDouble).unsqueeze(1);  // [positions, 1]
  // Columns 2i and 2i + 1 share the frequency 10000^(-2i / dim).
  auto pair_start = torch::arange(dim, torch::kLong).div(2, "floor").mul(2).to(torch::kDouble);  // [dim]
  auto angle = position / torch::pow(10000.0, pair_start / static_cast<double>(dim));  // [positions, dim]
  auto table = torch::empty({positions, dim}, torch::kDouble);
  table.slice(1, 0, dim, 2).copy_(torch::sin(angle.slice(1, 0, dim, 2)));
  table.slice(1, 1, dim, 2).copy_(torch::cos(angle.slice(1, 1, dim, 2)));
  return table.to(torch::kFloat);
}

EmbeddingsImpl::EmbeddingsImpl(const DistilBertConfig& config) {
  word_embeddings = register_module(
      "word_embeddings",
      hf::make_embedding(config.vocab_size, config.dim, config.pad_token_id, config.initializer_range));
  position_embeddings = register_module(
      "position_embeddings",
      hf::make_embedding(config.max_position_embeddings, config.dim, -1, config.initializer_range));
  if (config.sinusoidal_pos_embds) {
    torch::NoGradGuard no_grad;
    position_embeddings->weight.copy_(sinusoidal_position_table(config.max_position_embeddings, config.dim));
    position_embeddings->weight.requires_grad_(false);  // transformers freezes the fixed table
  }
  LayerNorm = register_module("LayerNorm", hf::make_layer_norm(config.dim, DistilBertConfig::kLayerNormEps));
  dropout = register_module("dropout", Dropout(config.dropout));
}

torch::Tensor EmbeddingsImpl::forward(const torch::Tensor& input_ids) {
  // Absolute positions 0 .. seq - 1 for every row, padding or not.
  auto positions = torch::arange(input_ids.size(1), input_ids.options()).unsqueeze(0);  // [1, seq]
  auto embedded = word_embeddings(input_ids) + position_embeddings(positions);          // [batch, seq, dim]
  return dropout(apply_layer_norm(*LayerNorm, embedded));
}

MultiHeadSelfAttentionImpl::MultiHeadSelfAttentionImpl(const DistilBertConfig& config)
    : n_heads_(config.n_heads) {
  auto linear = [&config]() { return hf::make_linear(config.dim, config.dim, config.initializer_range); };
  q_lin = register_module("q_lin", linear());
  k_lin = register_module("k_lin", linear());
  v_lin = register_module("v_lin", linear());
  out_lin = register_module("out_lin", linear());
  dropout = register_module("dropout", Dropout(config.attention_dropout));
}

torch::Tensor MultiHeadSelfAttentionImpl::forward(const torch::Tensor& x, const torch::Tensor& key_padding) {
  const int64_t head_dim = x.size(2) / n_heads_;
  // transformers scales the queries before the product, not the scores.
  auto q = hf::split_heads(apply_linear(*q_lin, x), n_heads_) /
           std::sqrt(static_cast<double>(head_dim));  // [batch, heads, seq, head_dim]
  auto k = hf::split_heads(apply_linear(*k_lin, x), n_heads_);
  auto v = hf::split_heads(apply_linear(*v_lin, x), n_heads_);
  auto scores = torch::matmul(q, k.transpose(2, 3));  // [batch, heads, seq, seq]
  scores = scores.masked_fill(key_padding, hf::lowest_value(scores.scalar_type()));
  // [batch, seq, dim]
  return apply_linear(*out_lin, hf::attention_context(dropout(torch::softmax(scores, -1)), v));
}

FFNImpl::FFNImpl(const DistilBertConfig& config) : activation_(hf::epilogue_by_name(config.activation)) {
  lin1 = register_module("lin1", hf::make_linear(config.dim, config.hidden_dim, config.initializer_range));
  lin2 = register_module("lin2", hf::make_linear(config.hidden_dim, config.dim, config.initializer_range));
  dropout = register_module("dropout", Dropout(config.dropout));
}

torch::Tensor FFNImpl::forward(const torch::Tensor& x) {
  return dropout(apply_linear(*lin2, apply_linear(*lin1, x, activation_)));
}

TransformerBlockImpl::TransformerBlockImpl(const DistilBertConfig& config) {
  attention = register_module("attention", MultiHeadSelfAttention(config));
  sa_layer_norm =
      register_module("sa_layer_norm", hf::make_layer_norm(config.dim, DistilBertConfig::kLayerNormEps));
  ffn = register_module("ffn", FFN(config));
  output_layer_norm =
      register_module("output_layer_norm", hf::make_layer_norm(config.dim, DistilBertConfig::kLayerNormEps));
}

torch::Tensor TransformerBlockImpl::forward(const torch::Tensor& x, const torch::Tensor& key_padding) {
  auto attended = apply_layer_norm(*sa_layer_norm, attention(x, key_padding) + x);  // [batch, seq, dim]
  return apply_layer_norm(*output_layer_norm, ffn(attended) + attended);
}

}  // namespace distilbert

// --- DistilBertEncoder ----------------------------------------------------------------------

DistilBertEncoderImpl::DistilBertEncoderImpl(const DistilBertConfig& config) : config_(config) {
  config_.validate();
  embeddings = register_module("embeddings", distilbert::Embeddings(config_));
  transformer = register_module("transformer", std::make_shared<torch::nn::Module>());
  layer = transformer->register_module("layer", torch::nn::ModuleList());
  for (int64_t i = 0; i < config_.n_layers; ++i) layer->push_back(distilbert::TransformerBlock(config_));
}

torch::Tensor DistilBertEncoderImpl::forward(const torch::Tensor& input_ids,
                                             const torch::Tensor& token_type_ids,
                                             const torch::Tensor& attention_mask) {
  const auto inputs = hf::check_encoder_inputs("DistilBertEncoder", input_ids, token_type_ids, attention_mask,
                                               max_sequence_length());
  const int64_t batch = inputs.input_ids.size(0);
  const int64_t seq = inputs.input_ids.size(1);
  auto key_padding = inputs.attention_mask.eq(0).view({batch, 1, 1, seq});  // [batch, 1, 1, seq] bool
  auto hidden = embeddings(inputs.input_ids);                               // [batch, seq, dim]
  for (const auto& module : *layer) {
    auto block = std::dynamic_pointer_cast<distilbert::TransformerBlockImpl>(module);
    hidden = run_block(
        *block, [block, key_padding](const torch::Tensor& h) { return block->forward(h, key_padding); },
        hidden);
  }
  return hidden;  // [batch, seq, dim]
}

void DistilBertEncoderImpl::load_hf_state_dict(const std::map<std::string, torch::Tensor>& weights) {
  static const auto is_ignored = hf::ignore_heads_and_position_ids(
      {"vocab_transform.", "vocab_layer_norm.", "vocab_projector.", "pre_classifier.", "classifier.", "qa_outputs."});
  hf::load_state_dict_by_name(
      *this, weights,
      {"distilbert.", is_ignored, hf::encoder_description("distilbert", config_.n_layers, "dim", config_.dim)});
}

std::shared_ptr<TextEncoderImpl> make_distilbert_encoder(const nlohmann::json& config) {
  return std::make_shared<DistilBertEncoderImpl>(DistilBertConfig::from_json(config));
}

}  // namespace automm
