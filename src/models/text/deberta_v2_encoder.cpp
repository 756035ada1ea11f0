// Formulas follow transformers' models/deberta_v2/modeling_deberta_v2.py
// (DebertaV2Embeddings, DisentangledSelfAttention, ConvLayer, DebertaV2Encoder,
// make_log_bucket_position, build_relative_position); tests/models/deberta_v2_reference.py
// transcribes that file in Python for the parity tests.
#include "deberta_v2_encoder.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <sstream>
#include <stdexcept>

namespace automm {
namespace {

using hf::bad_field;

std::string lower_trimmed(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(), [](unsigned char c) { return std::tolower(c); });
  const auto first = text.find_first_not_of(" \t");
  if (first == std::string::npos) return "";
  return text.substr(first, text.find_last_not_of(" \t") - first + 1);
}

// "p2c|c2p" -> {"p2c", "c2p"} (transformers lower-cases, splits on '|' and strips).
std::vector<std::string> split_bar_list(const std::string& text) {
  std::vector<std::string> items;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, '|')) items.push_back(lower_trimmed(item));
  return items;
}

// pos_att_type: null, a list of strings or a '|'-separated string.
std::vector<std::string> read_pos_att_type(const nlohmann::json& json) {
  auto it = json.find("pos_att_type");
  if (it == json.end() || it->is_null()) return {};
  std::vector<std::string> types;
  if (it->is_string()) {
    types = split_bar_list(it->get<std::string>());
  } else if (it->is_array()) {
    for (const auto& item : *it) {
      if (!item.is_string()) bad_field("pos_att_type", "must list strings, got " + it->dump());
      types.push_back(item.get<std::string>());
    }
  } else {
    bad_field("pos_att_type",
              "must be a list such as [\"p2c\", \"c2p\"] or a string such as \"p2c|c2p\", got " + it->dump());
  }
  types.erase(std::remove(types.begin(), types.end(), ""), types.end());
  for (const auto& type : types) {
    if (type != "c2p" && type != "p2c") {
      bad_field("pos_att_type", "has unsupported entry '" + type + "'; supported: c2p, p2c");
    }
  }
  return types;
}

hf::ResidualOutputOptions residual_output_options(int64_t in_features, const DebertaV2Config& config) {
  return {in_features, config.hidden_size, config.layer_norm_eps, config.hidden_dropout_prob,
          config.initializer_range};
}

// [rows, heads * head] -> [heads, rows, head]: relative embeddings projected per head.
torch::Tensor split_rel_heads(const torch::Tensor& x, int64_t heads) {
  return x.view({x.size(0), heads, -1}).permute({1, 0, 2});
}

}  // namespace

// --- DebertaV2Config --------------------------------------------------------------------

DebertaV2Config DebertaV2Config::from_json(const nlohmann::json& json) {
  hf::require_object(json);
  const std::string model_type = hf::read_string(json, "model_type", "deberta-v2");
  if (model_type != "deberta-v2") {
    bad_field("model_type", "is '" + model_type +
                                "' but this encoder reads 'deberta-v2' (DeBERTa-v2 and -v3)" +
                                (model_type == "deberta" ? "; DeBERTa v1 is not supported" : ""));
  }
  DebertaV2Config c;
  c.vocab_size = hf::read_int(json, "vocab_size", c.vocab_size);
  c.hidden_size = hf::read_int(json, "hidden_size", c.hidden_size);
  c.num_hidden_layers = hf::read_int(json, "num_hidden_layers", c.num_hidden_layers);
  c.num_attention_heads = hf::read_int(json, "num_attention_heads", c.num_attention_heads);
  c.intermediate_size = hf::read_int(json, "intermediate_size", c.intermediate_size);
  c.hidden_act = hf::read_string(json, "hidden_act", c.hidden_act);
  c.max_position_embeddings = hf::read_int(json, "max_position_embeddings", c.max_position_embeddings);
  c.type_vocab_size = hf::read_int(json, "type_vocab_size", c.type_vocab_size);
  c.layer_norm_eps = hf::read_double(json, "layer_norm_eps", c.layer_norm_eps);
  c.position_biased_input = hf::read_bool(json, "position_biased_input", c.position_biased_input);
  c.relative_attention = hf::read_bool(json, "relative_attention", c.relative_attention);
  c.max_relative_positions = hf::read_int(json, "max_relative_positions", c.max_relative_positions);
  c.position_buckets = hf::read_int(json, "position_buckets", c.position_buckets);
  c.pos_att_type = read_pos_att_type(json);
  c.share_att_key = hf::read_bool(json, "share_att_key", c.share_att_key);
  std::vector<std::string> norms = split_bar_list(hf::read_string(json, "norm_rel_ebd", c.norm_rel_ebd));
  for (const auto& norm : norms) {
    if (norm != "none" && norm != "layer_norm") {
      bad_field("norm_rel_ebd", "has unsupported entry '" + norm + "'; supported: layer_norm, none");
    }
  }
  c.norm_rel_ebd = std::find(norms.begin(), norms.end(), "layer_norm") != norms.end() ? "layer_norm" : "none";
  c.pad_token_id = hf::read_token_id(json, "pad_token_id", c.pad_token_id);
  c.embedding_size = hf::read_int(json, "embedding_size", c.hidden_size);
  c.conv_kernel_size = hf::read_int(json, "conv_kernel_size", c.conv_kernel_size);
  c.conv_groups = hf::read_int(json, "conv_groups", c.conv_groups);
  c.conv_act = hf::read_string(json, "conv_act", c.conv_act);
  c.attention_head_size = hf::read_int(json, "attention_head_size",
                                       c.num_attention_heads > 0 ? c.hidden_size / c.num_attention_heads : 0);
  c.hidden_dropout_prob = hf::read_double(json, "hidden_dropout_prob", c.hidden_dropout_prob);
  c.attention_probs_dropout_prob =
      hf::read_double(json, "attention_probs_dropout_prob", c.attention_probs_dropout_prob);
  c.initializer_range = hf::read_double(json, "initializer_range", c.initializer_range);
  c.validate();
  return c;
}

void DebertaV2Config::validate() const {
  hf::require_positive_sizes(vocab_size, hidden_size, num_hidden_layers, num_attention_heads, intermediate_size);
  hf::require_positive("max_position_embeddings", max_position_embeddings);
  hf::require_positive("embedding_size", embedding_size);
  hf::require_positive("attention_head_size", attention_head_size);
  if (type_vocab_size < 0)
    bad_field("type_vocab_size", "must be >= 0, got " + std::to_string(type_vocab_size));
  hf::require_multiple("hidden_size", hidden_size, "num_attention_heads", num_attention_heads);
  // The attention output projection maps heads * head size back to hidden_size.
  if (num_attention_heads * attention_head_size != hidden_size) {
    bad_field("attention_head_size", std::to_string(attention_head_size) + " times num_attention_heads " +
                                         std::to_string(num_attention_heads) + " must equal hidden_size " +
                                         std::to_string(hidden_size));
  }
  hf::require_positive("layer_norm_eps", layer_norm_eps);
  hf::require_probability("hidden_dropout_prob", hidden_dropout_prob);
  hf::require_probability("attention_probs_dropout_prob", attention_probs_dropout_prob);
  hf::require_non_negative("initializer_range", initializer_range);
  hf::require_activation("hidden_act", hidden_act);
  hf::require_token_id("pad_token_id", pad_token_id, vocab_size);
  // make_log_bucket_position divides by position_buckets / 2.
  if (position_buckets == 1) bad_field("position_buckets", "must be >= 2 (or <= 0 for no buckets), got 1");
  if (conv_kernel_size < 0)
    bad_field("conv_kernel_size", "must be >= 0, got " + std::to_string(conv_kernel_size));
  if (conv_kernel_size > 0) {
    // Padding (k - 1) / 2 keeps the sequence length only for odd kernels.
    if (conv_kernel_size % 2 == 0) {
      bad_field("conv_kernel_size", "must be odd so the convolution keeps the sequence length, got " +
                                        std::to_string(conv_kernel_size));
    }
    if (conv_groups <= 0 || hidden_size % conv_groups != 0) {
      bad_field("conv_groups", std::to_string(conv_groups) + " must be positive and divide hidden_size " +
                                   std::to_string(hidden_size));
    }
    hf::require_activation("conv_act", conv_act);
  }
}

bool DebertaV2Config::has_c2p() const {
  return std::find(pos_att_type.begin(), pos_att_type.end(), "c2p") != pos_att_type.end();
}

bool DebertaV2Config::has_p2c() const {
  return std::find(pos_att_type.begin(), pos_att_type.end(), "p2c") != pos_att_type.end();
}

int64_t DebertaV2Config::max_relative_distance() const {
  return max_relative_positions < 1 ? max_position_embeddings : max_relative_positions;
}

int64_t DebertaV2Config::relative_span() const {
  return position_buckets > 0 ? position_buckets : max_relative_distance();
}

namespace deberta_v2 {

// --- relative positions -----------------------------------------------------------------

torch::Tensor make_log_bucket_position(const torch::Tensor& relative_pos, int64_t bucket_size,
                                       int64_t max_position) {
  // Same ops and float32 precision as transformers, so buckets agree exactly.
  const int64_t mid = bucket_size / 2;
  auto sign = torch::sign(relative_pos);
  auto abs_pos = torch::where((relative_pos < mid) & (relative_pos > -mid),
                              torch::full_like(relative_pos, mid - 1), torch::abs(relative_pos));
  auto log_range =
      torch::log(torch::scalar_tensor(static_cast<double>(max_position - 1) / mid, torch::kFloat));
  auto log_pos = torch::ceil(torch::log(torch::div(abs_pos, mid)) / log_range * (mid - 1)) + mid;  // float32
  return torch::where(abs_pos <= mid, relative_pos.to(log_pos.scalar_type()), log_pos * sign);
}

torch::Tensor build_relative_position(int64_t query_size, int64_t key_size, int64_t bucket_size,
                                      int64_t max_position, const torch::Device& device) {
  auto options = torch::TensorOptions().dtype(torch::kLong).device(device);
  auto relative =
      torch::arange(query_size, options).unsqueeze(1) - torch::arange(key_size, options).unsqueeze(0);
  if (bucket_size > 0 && max_position > 0)
    relative = make_log_bucket_position(relative, bucket_size, max_position);
  return relative.to(torch::kLong);  // [query, key]
}

// --- Embeddings ---------------------------------------------------------------------------

EmbeddingsImpl::EmbeddingsImpl(const DebertaV2Config& config) {
  const double std = config.initializer_range;
  const int64_t width = config.embedding_size;
  word_embeddings = register_module("word_embeddings",
                                    hf::make_embedding(config.vocab_size, width, config.pad_token_id, std));
  if (config.position_biased_input) {
    position_embeddings = register_module("position_embeddings",
                                          hf::make_embedding(config.max_position_embeddings, width, -1, std));
  }
  if (config.type_vocab_size > 0) {
    token_type_embeddings =
        register_module("token_type_embeddings", hf::make_embedding(config.type_vocab_size, width, -1, std));
  }
  if (width != config.hidden_size) {
    embed_proj =
        register_module("embed_proj", hf::make_linear(width, config.hidden_size, std, /*bias=*/false));
  }
  LayerNorm = register_module("LayerNorm", hf::make_layer_norm(config.hidden_size, config.layer_norm_eps));
  dropout = register_module("dropout", Dropout(config.hidden_dropout_prob));
}

torch::Tensor EmbeddingsImpl::forward(const torch::Tensor& input_ids, const torch::Tensor& token_type_ids,
                                      const torch::Tensor& mask) {
  auto embedded = word_embeddings(input_ids);  // [batch, seq, embedding]
  if (position_embeddings) {
    auto positions = torch::arange(input_ids.size(1), input_ids.options()).unsqueeze(0);  // [1, seq]
    embedded = embedded + position_embeddings(positions);
  }
  if (token_type_embeddings) {
    embedded = embedded + token_type_embeddings(token_type_ids.defined() ? token_type_ids
                                                                         : torch::zeros_like(input_ids));
  }
  if (embed_proj) embedded = apply_linear(*embed_proj, embedded);  // [batch, seq, hidden]
  auto normed = apply_layer_norm(*LayerNorm, embedded);
  return dropout(normed * mask.unsqueeze(-1).to(normed.scalar_type()));  // padding rows -> 0
}

// --- Attention ----------------------------------------------------------------------------

DisentangledSelfAttentionImpl::DisentangledSelfAttentionImpl(const DebertaV2Config& config)
    : num_heads_(config.num_attention_heads),
      head_size_(config.attention_head_size),
      span_(config.relative_span()),
      relative_attention_(config.relative_attention),
      c2p_(config.has_c2p()),
      p2c_(config.has_p2c()),
      share_att_key_(config.share_att_key),
      scale_factor_(1 + (config.has_c2p() ? 1 : 0) + (config.has_p2c() ? 1 : 0)) {
  const int64_t hidden = config.hidden_size;
  const int64_t all_heads = num_heads_ * head_size_;
  const double std = config.initializer_range;
  query_proj = register_module("query_proj", hf::make_linear(hidden, all_heads, std));
  key_proj = register_module("key_proj", hf::make_linear(hidden, all_heads, std));
  value_proj = register_module("value_proj", hf::make_linear(hidden, all_heads, std));
  if (relative_attention_) {
    pos_dropout = register_module("pos_dropout", Dropout(config.hidden_dropout_prob));
    if (!share_att_key_ && c2p_)
      pos_key_proj = register_module("pos_key_proj", hf::make_linear(hidden, all_heads, std));
    if (!share_att_key_ && p2c_) {
      pos_query_proj = register_module("pos_query_proj", hf::make_linear(hidden, all_heads, std));
    }
  }
  dropout = register_module("dropout", Dropout(config.attention_probs_dropout_prob));
}

torch::Tensor DisentangledSelfAttentionImpl::forward(const torch::Tensor& hidden,
                                                     const torch::Tensor& attention_mask,
                                                     const torch::Tensor& relative_pos,
                                                     const torch::Tensor& rel_embeddings) {
  auto q = hf::split_heads(apply_linear(*query_proj, hidden), num_heads_);  // [batch, heads, seq, head]
  auto k = hf::split_heads(apply_linear(*key_proj, hidden), num_heads_);
  auto v = hf::split_heads(apply_linear(*value_proj, hidden), num_heads_);
  // Every score term (c2p, c2c, p2c) shares one scale, sqrt(head * number of terms).
  const double scale = std::sqrt(static_cast<double>(head_size_ * scale_factor_));
  auto scores = hf::attention_scores(q, k, scale);  // [batch, heads, seq, seq]
  if (relative_attention_) {
    scores = scores + disentangled_attention_bias(q, k, relative_pos, pos_dropout(rel_embeddings), scale);
  }
  // XSoftmax: masked pairs get no weight, and fully masked (padding) query rows are all zero.
  auto hidden_pairs = attention_mask.logical_not();  // [batch, 1, seq, seq]
  auto probs = torch::softmax(scores.masked_fill(hidden_pairs, hf::lowest_value(scores.scalar_type())), -1)
                   .masked_fill(hidden_pairs, 0.0);
  return hf::attention_context(dropout(probs), v);  // [batch, seq, heads * head]
}

torch::Tensor DisentangledSelfAttentionImpl::disentangled_attention_bias(const torch::Tensor& q,
                                                                         const torch::Tensor& k,
                                                                         const torch::Tensor& relative_pos,
                                                                         const torch::Tensor& rel_embeddings,
                                                                         double scale) {
  const int64_t seq = q.size(2);
  auto rel = rel_embeddings.slice(0, 0, 2 * span_);  // [2 * span, hidden]
  auto index_shape = std::vector<int64_t>{q.size(0), q.size(1), seq, seq};
  torch::Tensor bias = torch::zeros({1}, q.options());
  if (c2p_) {
    // Query i attends to the position embedding of its distance to key j.
    auto pos_key = split_rel_heads(apply_linear(*(share_att_key_ ? key_proj : pos_key_proj), rel),
                                   num_heads_);              // [heads, 2*span, head]
    auto c2p = torch::matmul(q, pos_key.transpose(-1, -2));  // [batch, heads, seq_q, 2 * span]
    auto index = torch::clamp(relative_pos + span_, 0, 2 * span_ - 1).expand(index_shape);
    bias = bias + torch::gather(c2p, -1, index) / scale;
  }
  if (p2c_) {
    // Key j attends back to the position embedding of the opposite distance.
    auto pos_query =
        split_rel_heads(apply_linear(*(share_att_key_ ? query_proj : pos_query_proj), rel), num_heads_);
    auto p2c = torch::matmul(k, pos_query.transpose(-1, -2));  // [batch, heads, seq_k, 2 * span]
    auto index = torch::clamp(-relative_pos + span_, 0, 2 * span_ - 1).expand(index_shape);
    bias = bias + torch::gather(p2c, -1, index).transpose(-1, -2) / scale;  // [batch, heads, seq_q, seq_k]
  }
  return bias;
}

AttentionImpl::AttentionImpl(const DebertaV2Config& config) {
  self = register_module("self", DisentangledSelfAttention(config));
  output = register_module("output", hf::ResidualOutput(residual_output_options(config.hidden_size, config)));
}

torch::Tensor AttentionImpl::forward(const torch::Tensor& hidden, const torch::Tensor& attention_mask,
                                     const torch::Tensor& relative_pos, const torch::Tensor& rel_embeddings) {
  return output(self(hidden, attention_mask, relative_pos, rel_embeddings), hidden);
}

// --- Layers ---------------------------------------------------------------------------------

LayerImpl::LayerImpl(const DebertaV2Config& config) {
  attention = register_module("attention", Attention(config));
  intermediate = register_module("intermediate",
                                 hf::Intermediate(config.hidden_size, config.intermediate_size, config.hidden_act,
                                                  config.initializer_range));
  output = register_module("output", hf::ResidualOutput(residual_output_options(config.intermediate_size, config)));
}

torch::Tensor LayerImpl::forward(const torch::Tensor& hidden, const torch::Tensor& attention_mask,
                                 const torch::Tensor& relative_pos, const torch::Tensor& rel_embeddings) {
  auto attended = attention(hidden, attention_mask, relative_pos, rel_embeddings);  // [batch, seq, hidden]
  return output(intermediate(attended), attended);
}

ConvLayerImpl::ConvLayerImpl(const DebertaV2Config& config)
    : activation_(hf::activation_by_name(config.conv_act)) {
  // transformers leaves the Conv1d at torch's default init.
  conv = register_module(
      "conv", torch::nn::Conv1d(
                  torch::nn::Conv1dOptions(config.hidden_size, config.hidden_size, config.conv_kernel_size)
                      .padding((config.conv_kernel_size - 1) / 2)
                      .groups(config.conv_groups)));
  LayerNorm = register_module("LayerNorm", hf::make_layer_norm(config.hidden_size, config.layer_norm_eps));
  dropout = register_module("dropout", Dropout(config.hidden_dropout_prob));
}

torch::Tensor ConvLayerImpl::forward(const torch::Tensor& embeddings, const torch::Tensor& residual,
                                     const torch::Tensor& mask) {
  auto token = mask.unsqueeze(-1);                              // [batch, seq, 1]
  auto out = conv(embeddings.transpose(1, 2)).transpose(1, 2);  // [batch, seq, hidden]
  out = activation_(dropout(out.masked_fill(token.logical_not(), 0.0)));
  auto normed = apply_layer_norm(*LayerNorm, residual + out);
  return normed * token.to(normed.scalar_type());
}

EncoderImpl::EncoderImpl(const DebertaV2Config& config) : config_(config) {
  layer = register_module("layer", torch::nn::ModuleList());
  for (int64_t i = 0; i < config.num_hidden_layers; ++i) layer->push_back(Layer(config));
  if (config.relative_attention) {
    rel_embeddings = register_module(
        "rel_embeddings",
        hf::make_embedding(2 * config.relative_span(), config.hidden_size, -1, config.initializer_range));
  }
  if (config.norm_rel_embeddings()) {
    LayerNorm = register_module("LayerNorm", hf::make_layer_norm(config.hidden_size, config.layer_norm_eps));
  }
  if (config.conv_kernel_size > 0) conv = register_module("conv", ConvLayer(config));
}

torch::Tensor EncoderImpl::forward(const torch::Tensor& embeddings, const torch::Tensor& mask) {
  const int64_t batch = embeddings.size(0);
  const int64_t seq = embeddings.size(1);
  auto token = mask.to(torch::kBool);
  // A query-key pair takes part when both are tokens.
  auto attention_mask =
      token.view({batch, 1, 1, seq}) & token.view({batch, 1, seq, 1});  // [batch, 1, seq, seq]
  torch::Tensor relative_pos, rel;  // [seq, seq] int64, [2 * span, hidden]
  if (config_.relative_attention) {
    relative_pos = build_relative_position(seq, seq, config_.position_buckets,
                                           config_.max_relative_distance(), embeddings.device());
    rel = rel_embeddings->weight;
    if (LayerNorm) rel = apply_layer_norm(*LayerNorm, rel);
  }
  torch::Tensor hidden = embeddings;  // [batch, seq, hidden]
  for (size_t i = 0; i < layer->size(); ++i) {
    hidden = layer[i]->as<LayerImpl>()->forward(hidden, attention_mask, relative_pos, rel);
    if (i == 0 && conv) hidden = conv(embeddings, hidden, mask);
  }
  return hidden;
}

}  // namespace deberta_v2

// --- DebertaV2Encoder -----------------------------------------------------------------------

DebertaV2EncoderImpl::DebertaV2EncoderImpl(const DebertaV2Config& config) : config_(config) {
  config_.validate();
  embeddings_ = register_module("embeddings", deberta_v2::Embeddings(config_));
  encoder_ = register_module("encoder", deberta_v2::Encoder(config_));
}

int64_t DebertaV2EncoderImpl::max_sequence_length() const {
  return config_.position_biased_input ? config_.max_position_embeddings : kUnboundedSequenceLength;
}

torch::Tensor DebertaV2EncoderImpl::forward(const torch::Tensor& input_ids_in,
                                            const torch::Tensor& token_type_ids_in,
                                            const torch::Tensor& attention_mask_in) {
  hf::check_input_ids("DebertaV2Encoder", input_ids_in);
  const auto ids = input_ids_in.to(torch::kLong);  // [batch, seq]
  const int64_t seq = ids.size(1);
  if (config_.position_biased_input && seq > config_.max_position_embeddings) {
    throw std::invalid_argument("DebertaV2Encoder: sequence length " + std::to_string(seq) + " exceeds the " +
                                std::to_string(config_.max_position_embeddings) +
                                " positions of this model; truncate the input");
  }
  torch::Tensor token_types;  // [batch, seq]; unused without token type embeddings, like transformers
  if (token_type_ids_in.defined()) {
    hf::check_id_shape("DebertaV2Encoder", token_type_ids_in, "token_type_ids", ids.sizes());
    if (config_.type_vocab_size > 0) token_types = token_type_ids_in.to(torch::kLong);
  }
  torch::Tensor mask;  // [batch, seq] float, 1 = token
  if (attention_mask_in.defined()) {
    hf::check_id_shape("DebertaV2Encoder", attention_mask_in, "attention_mask", ids.sizes());
    mask = attention_mask_in.to(torch::kFloat);
  } else {
    mask = torch::ones(ids.sizes(), torch::TensorOptions().dtype(torch::kFloat).device(ids.device()));
  }
  auto hidden = embeddings_(ids, token_types, mask);  // [batch, seq, hidden]
  return encoder_(hidden, mask);                      // [batch, seq, hidden]
}

void DebertaV2EncoderImpl::load_hf_state_dict(const std::map<std::string, torch::Tensor>& weights) {
  const bool has_positions = config_.position_biased_input;
  std::vector<std::string> unused;
  // transformers ignores position embeddings the config does not use.
  if (!has_positions) unused.push_back("embeddings.position_embeddings.weight");
  hf::load_state_dict_by_name(
      *this, weights,
      {"deberta.",
       hf::ignore_heads_and_position_ids(
           {"lm_predictions.", "mask_predictions.", "pooler.", "classifier.", "qa_outputs.", "cls.", "lm_head."},
           unused),
       hf::encoder_description("deberta-v2", config_.num_hidden_layers, "hidden", config_.hidden_size)});
}

std::shared_ptr<TextEncoderImpl> make_deberta_v2_encoder(const nlohmann::json& config) {
  return std::make_shared<DebertaV2EncoderImpl>(DebertaV2Config::from_json(config));
}

}  // namespace automm
