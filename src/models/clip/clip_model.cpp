#include "models/clip/clip_model.h"

#include <cmath>
#include <stdexcept>

#include "models/layers.h"
#include "models/text/hf_common.h"

namespace automm {
namespace {

constexpr double kInitStd = 0.02;  // CLIPConfig.initializer_range

ClipTowerConfig read_tower(const nlohmann::json& config, const std::string& which) {
  const nlohmann::json& j = config.contains(which) && config[which].is_object() ? config[which] : nlohmann::json::object();
  const bool text = which == "text_config";
  ClipTowerConfig t;
  // CLIPTextConfig's and CLIPVisionConfig's defaults.
  t.hidden_size = hf::read_int(j, "hidden_size", text ? 512 : 768);
  t.intermediate_size = hf::read_int(j, "intermediate_size", text ? 2048 : 3072);
  t.num_hidden_layers = hf::read_int(j, "num_hidden_layers", 12);
  t.num_attention_heads = hf::read_int(j, "num_attention_heads", text ? 8 : 12);
  t.layer_norm_eps = hf::read_double(j, "layer_norm_eps", 1e-5);
  t.attention_dropout = hf::read_double(j, "attention_dropout", 0.0);
  t.hidden_act = hf::read_string(j, "hidden_act", "quick_gelu");
  const std::string prefix = which + ".";
  for (const auto& [field, value] : {std::pair<const char*, int64_t>{"hidden_size", t.hidden_size},
                                     {"intermediate_size", t.intermediate_size},
                                     {"num_hidden_layers", t.num_hidden_layers},
                                     {"num_attention_heads", t.num_attention_heads}})
    hf::require_positive(prefix + field, value);
  hf::require_multiple(prefix + "hidden_size", t.hidden_size, prefix + "num_attention_heads", t.num_attention_heads);
  hf::require_positive(prefix + "layer_norm_eps", t.layer_norm_eps);
  hf::require_probability(prefix + "attention_dropout", t.attention_dropout);
  hf::require_activation(prefix + "hidden_act", t.hidden_act);
  if (text) {
    t.vocab_size = hf::read_int(j, "vocab_size", 49408);
    t.max_position_embeddings = hf::read_int(j, "max_position_embeddings", 77);
    t.eos_token_id = hf::read_int(j, "eos_token_id", 2);
    hf::require_positive(prefix + "vocab_size", t.vocab_size);
    hf::require_positive(prefix + "max_position_embeddings", t.max_position_embeddings);
    hf::require_token_id(prefix + "eos_token_id", t.eos_token_id, t.vocab_size);
  } else {
    t.image_size = hf::read_int(j, "image_size", 224);
    t.patch_size = hf::read_int(j, "patch_size", 32);
    t.num_channels = hf::read_int(j, "num_channels", 3);
    hf::require_positive(prefix + "image_size", t.image_size);
    hf::require_positive(prefix + "patch_size", t.patch_size);
    hf::require_positive(prefix + "num_channels", t.num_channels);
    hf::require_multiple(prefix + "image_size", t.image_size, prefix + "patch_size", t.patch_size);
  }
  return t;
}

// [seq, seq] with the lowest value above the diagonal: token i sees tokens <= i.
torch::Tensor causal_bias(int64_t seq, const torch::TensorOptions& options) {
  return torch::full({seq, seq}, hf::lowest_value(options.dtype().toScalarType()), options).triu(1);
}

}  // namespace

ClipConfig ClipConfig::from_json(const nlohmann::json& config) {
  hf::require_object(config);
  const std::string type = hf::read_string(config, "model_type", "clip");
  if (type != "clip")
    hf::bad_field("model_type", "is '" + type + "'; the clip model reads CLIPModel checkpoints (model_type clip)");
  ClipConfig c;
  c.text = read_tower(config, "text_config");
  c.vision = read_tower(config, "vision_config");
  c.projection_dim = hf::read_int(config, "projection_dim", 512);
  c.logit_scale_init_value = hf::read_double(config, "logit_scale_init_value", 2.6592);
  hf::require_positive("projection_dim", c.projection_dim);
  return c;
}

ClipConfig ClipConfig::from_json(const nlohmann::json& config, const Config& keys) {
  ClipConfig c = from_json(config);
  if (keys.is_null("model.clip.image_size")) return c;
  const int64_t size = keys.get_int("model.clip.image_size");
  if (size < c.vision.patch_size || size % c.vision.patch_size != 0)
    throw std::invalid_argument("model.clip.image_size = " + std::to_string(size) +
                                " must be a positive multiple of the checkpoint's patch size, " +
                                std::to_string(c.vision.patch_size));
  c.vision.image_size = size;
  return c;
}

namespace clip {

AttentionImpl::AttentionImpl(const ClipTowerConfig& config) : heads_(config.num_attention_heads) {
  const int64_t d = config.hidden_size;
  scale_ = std::sqrt(static_cast<double>(d / heads_));
  q_proj = register_module("q_proj", hf::make_linear(d, d, kInitStd));
  k_proj = register_module("k_proj", hf::make_linear(d, d, kInitStd));
  v_proj = register_module("v_proj", hf::make_linear(d, d, kInitStd));
  out_proj = register_module("out_proj", hf::make_linear(d, d, kInitStd));
  dropout_ = register_module("dropout", Dropout(config.attention_dropout));
}

torch::Tensor AttentionImpl::forward(const torch::Tensor& x, const torch::Tensor& bias) {
  const auto q = hf::split_heads(apply_linear(*q_proj, x), heads_);
  const auto k = hf::split_heads(apply_linear(*k_proj, x), heads_);
  const auto v = hf::split_heads(apply_linear(*v_proj, x), heads_);
  auto scores = hf::attention_scores(q, k, scale_);  // [batch, heads, seq, seq]
  if (bias.defined()) scores = scores + bias.to(scores.scalar_type());
  return apply_linear(*out_proj, hf::attention_context(dropout_(torch::softmax(scores, -1)), v));
}

MlpImpl::MlpImpl(const ClipTowerConfig& config) : activation_(hf::epilogue_by_name(config.hidden_act)) {
  fc1 = register_module("fc1", hf::make_linear(config.hidden_size, config.intermediate_size, kInitStd));
  fc2 = register_module("fc2", hf::make_linear(config.intermediate_size, config.hidden_size, kInitStd));
}

torch::Tensor MlpImpl::forward(const torch::Tensor& x) {
  return apply_linear(*fc2, apply_linear(*fc1, x, activation_));
}

EncoderLayerImpl::EncoderLayerImpl(const ClipTowerConfig& config) {
  self_attn = register_module("self_attn", Attention(config));
  layer_norm1 = register_module("layer_norm1", hf::make_layer_norm(config.hidden_size, config.layer_norm_eps));
  mlp = register_module("mlp", Mlp(config));
  layer_norm2 = register_module("layer_norm2", hf::make_layer_norm(config.hidden_size, config.layer_norm_eps));
}

torch::Tensor EncoderLayerImpl::forward(const torch::Tensor& x, const torch::Tensor& bias) {
  const torch::Tensor h = x + self_attn(apply_layer_norm(*layer_norm1, x), bias);
  return h + mlp(apply_layer_norm(*layer_norm2, h));
}

EncoderImpl::EncoderImpl(const ClipTowerConfig& config) {
  layers = register_module("layers", torch::nn::ModuleList());
  for (int64_t i = 0; i < config.num_hidden_layers; ++i) layers->push_back(EncoderLayer(config));
}

torch::Tensor EncoderImpl::forward(torch::Tensor x, const torch::Tensor& bias) {
  for (const auto& layer : *layers) x = layer->as<EncoderLayerImpl>()->forward(x, bias);
  return x;
}

TextEmbeddingsImpl::TextEmbeddingsImpl(const ClipTowerConfig& config) {
  token_embedding =
      register_module("token_embedding", hf::make_embedding(config.vocab_size, config.hidden_size, -1, kInitStd));
  position_embedding = register_module(
      "position_embedding", hf::make_embedding(config.max_position_embeddings, config.hidden_size, -1, kInitStd / 2));
}

torch::Tensor TextEmbeddingsImpl::forward(const torch::Tensor& input_ids) {
  const auto positions = torch::arange(input_ids.size(1), input_ids.options().dtype(torch::kLong));
  return token_embedding(input_ids) + position_embedding(positions).unsqueeze(0);
}

TextTransformerImpl::TextTransformerImpl(const ClipTowerConfig& config) : config_(config) {
  embeddings = register_module("embeddings", TextEmbeddings(config));
  encoder = register_module("encoder", Encoder(config));
  final_layer_norm =
      register_module("final_layer_norm", hf::make_layer_norm(config.hidden_size, config.layer_norm_eps));
}

torch::Tensor TextTransformerImpl::forward(const torch::Tensor& input_ids_in, const torch::Tensor& attention_mask) {
  const hf::EncoderInputs in =
      hf::check_encoder_inputs("CLIP text model", input_ids_in, torch::Tensor(), attention_mask,
                               config_.max_position_embeddings);
  const torch::Tensor hidden = embeddings(in.input_ids);  // [batch, seq, hidden]
  const int64_t seq = in.input_ids.size(1);
  // Causal and padding masks add up, as transformers' CLIPTextTransformer does.
  const torch::Tensor bias = causal_bias(seq, hidden.options()).view({1, 1, seq, seq}) +
                             hf::key_mask_bias(in.attention_mask, hidden.scalar_type());
  const torch::Tensor last = apply_layer_norm(*final_layer_norm, encoder(hidden, bias));
  // The end-of-text token: old configs (eos_token_id 2) take argmax(input_ids),
  // since <|endoftext|> has the largest id; newer ones the first eos_token_id.
  const torch::Tensor eos = config_.eos_token_id == 2
                                ? in.input_ids.argmax(-1)
                                : (in.input_ids == config_.eos_token_id).to(torch::kInt).argmax(-1);
  return last.index({torch::arange(last.size(0), eos.options()), eos});
}

VisionEmbeddingsImpl::VisionEmbeddingsImpl(const ClipTowerConfig& config) : config_(config) {
  const int64_t d = config.hidden_size;
  class_embedding = register_parameter("class_embedding", torch::randn({d}) / std::sqrt(static_cast<double>(d)));
  patch_embedding = register_module(
      "patch_embedding",
      torch::nn::Conv2d(torch::nn::Conv2dOptions(config.num_channels, d, config.patch_size)
                            .stride(config.patch_size)
                            .bias(false)));
  const int64_t grid = config.image_size / config.patch_size;
  position_embedding =
      register_module("position_embedding", hf::make_embedding(1 + grid * grid, d, -1, kInitStd));
}

torch::Tensor VisionEmbeddingsImpl::forward(const torch::Tensor& pixel_values) {
  if (pixel_values.dim() != 4 || pixel_values.size(1) != config_.num_channels ||
      pixel_values.size(2) != config_.image_size || pixel_values.size(3) != config_.image_size)
    throw std::invalid_argument("CLIP vision model: pixel_values must be [batch, " +
                                std::to_string(config_.num_channels) + ", " + std::to_string(config_.image_size) +
                                ", " + std::to_string(config_.image_size) + "], got " +
                                hf::shape_string(pixel_values.sizes()));
  const auto weight = patch_embedding->weight;
  const auto patches = torch::conv2d(pixel_values.to(weight.scalar_type()), weight, {}, config_.patch_size)
                           .flatten(2)
                           .transpose(1, 2);  // [batch, patches, hidden]
  const auto cls = class_embedding.to(patches.scalar_type()).view({1, 1, -1}).expand({patches.size(0), 1, -1});
  return torch::cat({cls, patches}, 1) + position_embedding->weight.unsqueeze(0);
}

VisionTransformerImpl::VisionTransformerImpl(const ClipTowerConfig& config) {
  embeddings = register_module("embeddings", VisionEmbeddings(config));
  pre_layrnorm = register_module("pre_layrnorm", hf::make_layer_norm(config.hidden_size, config.layer_norm_eps));
  encoder = register_module("encoder", Encoder(config));
  post_layernorm = register_module("post_layernorm", hf::make_layer_norm(config.hidden_size, config.layer_norm_eps));
}

torch::Tensor VisionTransformerImpl::forward(const torch::Tensor& pixel_values) {
  const torch::Tensor hidden = encoder(apply_layer_norm(*pre_layrnorm, embeddings(pixel_values)), torch::Tensor());
  return apply_layer_norm(*post_layernorm, hidden.select(1, 0));
}

}  // namespace clip

ClipModelImpl::ClipModelImpl(const ClipConfig& config) : config_(config) {
  text_model = register_module("text_model", clip::TextTransformer(config.text));
  vision_model = register_module("vision_model", clip::VisionTransformer(config.vision));
  visual_projection = register_module(
      "visual_projection", hf::make_linear(config.vision.hidden_size, config.projection_dim, kInitStd, false));
  text_projection = register_module(
      "text_projection", hf::make_linear(config.text.hidden_size, config.projection_dim, kInitStd, false));
  logit_scale = register_parameter("logit_scale", torch::full({}, config.logit_scale_init_value));
}

torch::Tensor ClipModelImpl::text_features(const torch::Tensor& input_ids, const torch::Tensor& attention_mask) {
  return apply_linear(*text_projection, text_model(input_ids, attention_mask));
}

torch::Tensor ClipModelImpl::image_features(const torch::Tensor& pixel_values) {
  return apply_linear(*visual_projection, vision_model(pixel_values));
}

void ClipModelImpl::load_hf_state_dict(const std::map<std::string, torch::Tensor>& weights_in) {
  // A checkpoint trained on another image size: its position embeddings are
  // resampled to this model's grid, bicubically as transformers'
  // interpolate_pos_encoding does (the class token's row kept).
  std::map<std::string, torch::Tensor> weights = weights_in;
  const auto positions = weights.find("vision_model.embeddings.position_embedding.weight");
  const int64_t grid = config_.vision.image_size / config_.vision.patch_size;
  if (positions != weights.end() && positions->second.dim() == 2 && positions->second.size(0) != 1 + grid * grid) {
    const torch::Tensor& table = positions->second;
    const auto old_grid = static_cast<int64_t>(std::lround(std::sqrt(static_cast<double>(table.size(0) - 1))));
    if (old_grid * old_grid == table.size(0) - 1 && table.size(1) == config_.vision.hidden_size) {
      const auto patches = table.slice(0, 1).to(torch::kFloat).reshape({1, old_grid, old_grid, -1}).permute({0, 3, 1, 2});
      const auto resized = torch::nn::functional::interpolate(
          patches, torch::nn::functional::InterpolateFuncOptions()
                       .size(std::vector<int64_t>{grid, grid})
                       .mode(torch::kBicubic)
                       .align_corners(false));
      positions->second =
          torch::cat({table.slice(0, 0, 1), resized.permute({0, 2, 3, 1}).reshape({grid * grid, -1}).to(table.dtype())});
    }
  }
  hf::StateDictMapping mapping;
  mapping.is_ignored = [](const std::string& name) {
    return name == "text_model.embeddings.position_ids" || name == "vision_model.embeddings.position_ids";
  };
  mapping.model_description = "CLIP model (text " + std::to_string(config_.text.num_hidden_layers) + " layers, width " +
                              std::to_string(config_.text.hidden_size) + "; vision " +
                              std::to_string(config_.vision.num_hidden_layers) + " layers, width " +
                              std::to_string(config_.vision.hidden_size) + ")";
  hf::load_state_dict_by_name(*this, weights, mapping);
}

}  // namespace automm
