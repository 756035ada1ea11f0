#include "bert_encoder.h"

#include "hf_common.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>
#include <stdexcept>

#include <torch/csrc/jit/frontend/tracer.h>

namespace automm {
namespace {

using hf::bad_field;
using hf::join;
using hf::make_embedding;
using hf::make_layer_norm;
using hf::make_linear;
using hf::read_double;

// Fields BERT-family configs cannot do without.
const nlohmann::json& required(const nlohmann::json& config, const std::string& field) {
  auto it = config.find(field);
  if (it == config.end() || it->is_null()) bad_field(field, "is missing (required for BERT-family encoders)");
  return *it;
}
int64_t required_int(const nlohmann::json& config, const std::string& field) {
  required(config, field);
  return hf::read_int(config, field, 0);
}
std::string required_string(const nlohmann::json& config, const std::string& field) {
  required(config, field);
  return hf::read_string(config, field, "");
}

hf::ResidualOutputOptions residual_output_options(int64_t in_features, const BertConfig& config) {
  return {in_features, config.hidden_size, config.layer_norm_eps, config.hidden_dropout_prob,
          config.initializer_range};
}

}  // namespace

// --- BertConfig ----------------------------------------------------------------------

std::vector<std::string> BertConfig::supported_model_types() { return {"bert", "electra", "roberta", "xlm-roberta"}; }

BertConfig BertConfig::from_json(const nlohmann::json& json) {
  hf::require_object(json);
  BertConfig config;
  config.model_type = required_string(json, "model_type");
  auto supported = supported_model_types();
  if (std::find(supported.begin(), supported.end(), config.model_type) == supported.end()) {
    throw std::invalid_argument("Hugging Face config.json: model_type '" + config.model_type +
                                "' is not a BERT-family encoder; supported model types: " + join(supported, ", "));
  }
  config.vocab_size = required_int(json, "vocab_size");
  config.hidden_size = required_int(json, "hidden_size");
  config.num_hidden_layers = required_int(json, "num_hidden_layers");
  config.num_attention_heads = required_int(json, "num_attention_heads");
  config.intermediate_size = required_int(json, "intermediate_size");
  config.max_position_embeddings = required_int(json, "max_position_embeddings");
  config.type_vocab_size = hf::read_int(json, "type_vocab_size", 2);
  config.layer_norm_eps = read_double(json, "layer_norm_eps", 1e-12);
  config.hidden_act = hf::read_string(json, "hidden_act", "gelu");
  bool electra = config.model_type == "electra";
  config.embedding_size = hf::read_int(json, "embedding_size", electra ? 128 : config.hidden_size);
  if (!electra && config.embedding_size != config.hidden_size) {
    bad_field("embedding_size", "is " + std::to_string(config.embedding_size) + " but " + config.model_type +
                                    " needs it equal to hidden_size " + std::to_string(config.hidden_size) +
                                    " (only electra projects its embeddings)");
  }
  // Absent: transformers' default (roberta 1, others 0); null: no padding token.
  config.pad_token_id = hf::read_token_id(json, "pad_token_id", config.uses_roberta_positions() ? 1 : 0);
  config.hidden_dropout_prob = read_double(json, "hidden_dropout_prob", 0.1);
  config.attention_probs_dropout_prob = read_double(json, "attention_probs_dropout_prob", 0.1);
  config.initializer_range = read_double(json, "initializer_range", 0.02);
  std::string position_type = hf::read_string(json, "position_embedding_type", "absolute");
  if (position_type != "absolute") {
    bad_field("position_embedding_type", "is '" + position_type + "'; only 'absolute' is supported");
  }
  config.validate();
  return config;
}

void BertConfig::validate() const {
  hf::require_positive_sizes(vocab_size, hidden_size, num_hidden_layers, num_attention_heads, intermediate_size);
  hf::require_positive("max_position_embeddings", max_position_embeddings);
  hf::require_positive("type_vocab_size", type_vocab_size);
  hf::require_positive("embedding_size", embedding_size);
  hf::require_multiple("hidden_size", hidden_size, "num_attention_heads", num_attention_heads);
  hf::require_positive("layer_norm_eps", layer_norm_eps);
  hf::require_probability("hidden_dropout_prob", hidden_dropout_prob);
  hf::require_probability("attention_probs_dropout_prob", attention_probs_dropout_prob);
  hf::require_non_negative("initializer_range", initializer_range);
  // BERT's own activation list (no tanh), not activation_by_name's.
  try {
    bert::parse_activation(hidden_act);
  } catch (const std::invalid_argument& e) {
    bad_field("hidden_act", e.what());
  }
  hf::require_token_id("pad_token_id", pad_token_id, vocab_size);
  if (uses_roberta_positions()) {
    if (pad_token_id < 0) bad_field("pad_token_id", "is required for " + model_type + " (positions start after it)");
    if (pad_token_id + 1 >= max_position_embeddings) {
      bad_field("max_position_embeddings", std::to_string(max_position_embeddings) + " leaves no positions after " +
                                               "pad_token_id " + std::to_string(pad_token_id));
    }
  }
}

std::string BertConfig::hf_prefix() const {
  if (model_type == "electra") return "electra.";
  if (uses_roberta_positions()) return "roberta.";
  return "bert.";
}

bool BertConfig::uses_roberta_positions() const { return model_type == "roberta" || model_type == "xlm-roberta"; }

namespace bert {

kernels::Epilogue parse_activation(const std::string& name) {
  if (name == "gelu") return kernels::Epilogue::kGelu;
  if (name == "gelu_new" || name == "gelu_pytorch_tanh") return kernels::Epilogue::kGeluTanh;
  if (name == "relu") return kernels::Epilogue::kRelu;
  if (name == "silu" || name == "swish") return kernels::Epilogue::kSilu;
  throw std::invalid_argument("unknown activation '" + name +
                              "'; supported: gelu, gelu_new, gelu_pytorch_tanh, relu, silu, swish");
}

// --- Embeddings ----------------------------------------------------------------------

EmbeddingsImpl::EmbeddingsImpl(const BertConfig& config) {
  const double std = config.initializer_range;
  word_embeddings = register_module(
      "word_embeddings", make_embedding(config.vocab_size, config.embedding_size, config.pad_token_id, std));
  // RoBERTa's position table reserves the padding row like its word table.
  position_embeddings = register_module(
      "position_embeddings",
      make_embedding(config.max_position_embeddings, config.embedding_size,
                     config.uses_roberta_positions() ? config.pad_token_id : -1, std));
  token_type_embeddings = register_module("token_type_embeddings",
                                          make_embedding(config.type_vocab_size, config.embedding_size, -1, std));
  LayerNorm = register_module("LayerNorm", make_layer_norm(config.embedding_size, config.layer_norm_eps));
  dropout = register_module("dropout", Dropout(config.hidden_dropout_prob));
}

torch::Tensor EmbeddingsImpl::forward(const torch::Tensor& input_ids, const torch::Tensor& token_type_ids,
                                      const torch::Tensor& position_ids) {
  auto embedded = word_embeddings(input_ids) + token_type_embeddings(token_type_ids) +
                  position_embeddings(position_ids);  // [batch, seq, embedding]
  return dropout(apply_layer_norm(*LayerNorm, embedded));
}

// --- Attention -----------------------------------------------------------------------

SelfAttentionImpl::SelfAttentionImpl(const BertConfig& config)
    : num_heads(config.num_attention_heads), head_size(config.hidden_size / config.num_attention_heads) {
  const int64_t hidden = config.hidden_size;
  query = register_module("query", make_linear(hidden, hidden, config.initializer_range));
  key = register_module("key", make_linear(hidden, hidden, config.initializer_range));
  value = register_module("value", make_linear(hidden, hidden, config.initializer_range));
  dropout = register_module("dropout", Dropout(config.attention_probs_dropout_prob));
}

torch::Tensor SelfAttentionImpl::forward(const torch::Tensor& hidden, const torch::Tensor& mask_bias) {
  auto q = hf::split_heads(apply_linear(*query, hidden), num_heads);  // [batch, heads, seq, head]
  auto k = hf::split_heads(apply_linear(*key, hidden), num_heads);
  auto v = hf::split_heads(apply_linear(*value, hidden), num_heads);
  auto scores = hf::attention_scores(q, k, std::sqrt(static_cast<double>(head_size)));  // [batch, heads, seq, seq]
  if (mask_bias.defined()) scores = scores + mask_bias;  // padded keys -> lowest value
  return hf::attention_context(dropout(torch::softmax(scores, -1)), v);  // [batch, seq, hidden]
}

AttentionImpl::AttentionImpl(const BertConfig& config) {
  self = register_module("self", SelfAttention(config));
  output = register_module("output", ResidualOutput(residual_output_options(config.hidden_size, config)));
}

torch::Tensor AttentionImpl::forward(const torch::Tensor& hidden, const torch::Tensor& mask_bias) {
  return output(self(hidden, mask_bias), hidden);
}

IntermediateImpl::IntermediateImpl(const BertConfig& config) : activation(parse_activation(config.hidden_act)) {
  dense = register_module("dense",
                          make_linear(config.hidden_size, config.intermediate_size, config.initializer_range));
}

torch::Tensor IntermediateImpl::forward(const torch::Tensor& hidden) {
  return apply_linear(*dense, hidden, activation);
}

// --- Layers ----------------------------------------------------------------------------

LayerImpl::LayerImpl(const BertConfig& config) {
  attention = register_module("attention", Attention(config));
  intermediate = register_module("intermediate", Intermediate(config));
  output = register_module("output", ResidualOutput(residual_output_options(config.intermediate_size, config)));
}

torch::Tensor LayerImpl::forward(const torch::Tensor& hidden, const torch::Tensor& mask_bias) {
  auto attended = attention(hidden, mask_bias);  // [batch, seq, hidden]
  return output(intermediate(attended), attended);
}

LayerStackImpl::LayerStackImpl(const BertConfig& config) {
  layer = register_module("layer", torch::nn::ModuleList());
  for (int64_t i = 0; i < config.num_hidden_layers; ++i) layer->push_back(Layer(config));
}

}  // namespace bert

// --- BertEncoder ---------------------------------------------------------------------

BertEncoderImpl::BertEncoderImpl(const BertConfig& config) : config_(config) {
  config_.validate();
  embeddings_ = register_module("embeddings", bert::Embeddings(config_));
  if (config_.embedding_size != config_.hidden_size) {
    embeddings_project_ = register_module(
        "embeddings_project", make_linear(config_.embedding_size, config_.hidden_size, config_.initializer_range));
  }
  encoder_ = register_module("encoder", bert::LayerStack(config_));
}

torch::Tensor BertEncoderImpl::forward(const torch::Tensor& input_ids_in, const torch::Tensor& token_type_ids_in,
                                       const torch::Tensor& attention_mask_in) {
  hf::check_input_ids("BertEncoder", input_ids_in);
  const auto ids = input_ids_in.to(torch::kLong);  // [batch, seq]
  const int64_t seq = ids.size(1);

  torch::Tensor token_types;  // [batch, seq]
  if (token_type_ids_in.defined()) {
    hf::check_id_shape("BertEncoder", token_type_ids_in, "token_type_ids", ids.sizes());
    token_types = token_type_ids_in.to(torch::kLong);
  } else {
    token_types = torch::zeros_like(ids);
  }

  torch::Tensor position_ids;  // [batch, seq]
  if (config_.uses_roberta_positions()) {
    // create_position_ids_from_input_ids: count non-padding tokens from pad + 1;
    // padding tokens get position pad_token_id.
    if (config_.pad_token_id + seq >= config_.max_position_embeddings) {
      throw std::invalid_argument("BertEncoder: sequence length " + std::to_string(seq) + " exceeds the " +
                                  std::to_string(config_.max_position_embeddings - config_.pad_token_id - 1) +
                                  " positions of this " + config_.model_type + " model; truncate the input");
    }
    auto not_pad = ids.ne(config_.pad_token_id).to(torch::kLong);
    position_ids = torch::cumsum(not_pad, 1) * not_pad + config_.pad_token_id;
  } else {
    if (seq > config_.max_position_embeddings) {
      throw std::invalid_argument("BertEncoder: sequence length " + std::to_string(seq) + " exceeds the " +
                                  std::to_string(config_.max_position_embeddings) +
                                  " positions of this model; truncate the input");
    }
    position_ids = torch::arange(seq, ids.options()).unsqueeze(0).expand_as(ids);
  }

  auto hidden = embeddings_(ids, token_types, position_ids);  // [batch, seq, embedding]
  if (embeddings_project_) hidden = apply_linear(*embeddings_project_, hidden);  // [batch, seq, hidden]

  torch::Tensor mask;  // [batch, seq], 1 = token
  if (attention_mask_in.defined()) {
    hf::check_id_shape("BertEncoder", attention_mask_in, "attention_mask", ids.sizes());
    mask = attention_mask_in.to(hidden.scalar_type());
  } else {
    mask = torch::ones(ids.sizes(), hidden.options());
  }
  // [batch, 1, 1, seq]; none when nothing is padded (batch-1 inference, full
  // batches). Always while tracing (env.compile, export): a traced graph serves
  // every later batch of its shape, padded or not.
  const bool padded = torch::jit::tracer::isTracing() || mask.min().item<double>() < 1;
  const auto mask_bias = padded ? hf::key_mask_bias(mask, hidden.scalar_type()) : torch::Tensor();
  for (const auto& module : *encoder_->layer) {
    auto* layer = module->as<bert::LayerImpl>();
    hidden = run_block(*layer, [layer, mask_bias](const torch::Tensor& h) { return layer->forward(h, mask_bias); },
                       hidden);
  }
  return hidden;  // [batch, seq, hidden]
}

int64_t BertEncoderImpl::max_sequence_length() const {
  return config_.max_position_embeddings - (config_.uses_roberta_positions() ? config_.pad_token_id + 1 : 0);
}

void BertEncoderImpl::load_hf_state_dict(const std::map<std::string, torch::Tensor>& weights) {
  // Top-level names of Hugging Face heads and buffers the encoder has no use for.
  static const auto is_ignored = hf::ignore_heads_and_position_ids(
      {"cls.", "pooler.", "lm_head.", "discriminator_predictions.", "generator_predictions.", "generator_lm_head.",
       "classifier.", "qa_outputs.", "sop_classifier."},
      {"embeddings.token_type_ids"});
  hf::load_state_dict_by_name(*this, weights,
                              {config_.hf_prefix(), is_ignored,
                               hf::encoder_description(config_.model_type, config_.num_hidden_layers, "hidden",
                                                       config_.hidden_size)});
}

}  // namespace automm
