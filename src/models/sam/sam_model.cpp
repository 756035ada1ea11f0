// Hugging Face's SamModel for AutoMM's promptless segmentation; see sam_model.h.
#include "models/sam/sam_model.h"

#include <algorithm>
#include <cmath>
#include <set>
#include <stdexcept>

#include "models/layers.h"
#include "models/text/hf_common.h"

namespace automm {
namespace {

namespace F = torch::nn::functional;
using nlohmann::json;

int64_t positive_int(const json& part, const std::string& where, const std::string& field, int64_t fallback) {
  if (!part.contains(field) || part.at(field).is_null()) return fallback;
  const json& value = part.at(field);
  if (!value.is_number_integer() || value.get<int64_t>() <= 0)
    throw std::invalid_argument("SAM config.json: " + where + "." + field + " must be a positive integer, got " +
                                value.dump());
  return value.get<int64_t>();
}

double positive_number(const json& part, const std::string& where, const std::string& field, double fallback) {
  if (!part.contains(field) || part.at(field).is_null()) return fallback;
  const json& value = part.at(field);
  if (!value.is_number() || value.get<double>() <= 0)
    throw std::invalid_argument("SAM config.json: " + where + "." + field + " must be a positive number, got " +
                                value.dump());
  return value.get<double>();
}

bool flag(const json& part, const std::string& where, const std::string& field, bool fallback) {
  if (!part.contains(field) || part.at(field).is_null()) return fallback;
  if (!part.at(field).is_boolean())
    throw std::invalid_argument("SAM config.json: " + where + "." + field + " must be true or false, got " +
                                part.at(field).dump());
  return part.at(field).get<bool>();
}

std::string activation(const json& part, const std::string& where, const std::string& field,
                       const std::string& fallback) {
  if (!part.contains(field) || part.at(field).is_null()) return fallback;
  if (!part.at(field).is_string())
    throw std::invalid_argument("SAM config.json: " + where + "." + field + " must be a string");
  const std::string name = part.at(field).get<std::string>();
  hf::require_activation("SAM config.json: " + where + "." + field, name);
  return name;
}

const json& section(const json& config, const std::string& name) {
  static const json empty = json::object();
  if (!config.contains(name) || config.at(name).is_null()) return empty;
  if (!config.at(name).is_object()) throw std::invalid_argument("SAM config.json: " + name + " must be an object");
  return config.at(name);
}

torch::Tensor linear(torch::nn::Linear& layer, const torch::Tensor& x) { return apply_linear(*layer, x); }
torch::Tensor norm(torch::nn::LayerNorm& layer, const torch::Tensor& x) { return apply_layer_norm(*layer, x); }

// [B, h, w, C] -> [B * windows, window, window, C], zero-padded at the bottom and right.
torch::Tensor window_partition(const torch::Tensor& x, int64_t window) {
  const int64_t b = x.size(0), h = x.size(1), w = x.size(2), c = x.size(3);
  const int64_t pad_h = (window - h % window) % window, pad_w = (window - w % window) % window;
  const torch::Tensor padded = (pad_h || pad_w) ? F::pad(x, F::PadFuncOptions({0, 0, 0, pad_w, 0, pad_h})) : x;
  const int64_t hp = h + pad_h, wp = w + pad_w;
  return padded.reshape({b, hp / window, window, wp / window, window, c})
      .permute({0, 1, 3, 2, 4, 5})
      .reshape({-1, window, window, c});
}

torch::Tensor window_unpartition(const torch::Tensor& windows, int64_t window, int64_t batch, int64_t h, int64_t w) {
  const int64_t hp = h + (window - h % window) % window, wp = w + (window - w % window) % window;
  return windows.reshape({batch, hp / window, wp / window, window, window, -1})
      .permute({0, 1, 3, 2, 4, 5})
      .reshape({batch, hp, wp, -1})
      .slice(1, 0, h)
      .slice(2, 0, w);
}

// rel_pos [2S - 1, d] -> [size, size, d]: row (q, k) is rel_pos[q - k + size - 1] (get_rel_pos for q_size == k_size).
torch::Tensor relative_table(const torch::Tensor& rel_pos, int64_t size) {
  torch::Tensor table = rel_pos;
  if (table.size(0) != 2 * size - 1)  // get_rel_pos's linear resampling
    table = F::interpolate(rel_pos.t().unsqueeze(0), F::InterpolateFuncOptions()
                                                         .size(std::vector<int64_t>{2 * size - 1})
                                                         .mode(torch::kLinear)
                                                         .align_corners(false))
                .squeeze(0)
                .t();
  const torch::Tensor q = torch::arange(size, torch::kLong).unsqueeze(1);
  const torch::Tensor k = torch::arange(size, torch::kLong).unsqueeze(0);
  return table.index_select(0, (q - k + (size - 1)).flatten()).view({size, size, -1});
}

}  // namespace

bool SamVisionConfig::is_global(int64_t layer) const {
  return std::find(global_attn_indexes.begin(), global_attn_indexes.end(), layer) != global_attn_indexes.end();
}

SamConfig SamConfig::from_json(const json& config) {
  if (!config.is_object()) throw std::invalid_argument("SAM config.json must be an object");
  if (config.contains("model_type") && config.at("model_type") != "sam")
    throw std::invalid_argument("config.json has model_type " + config.at("model_type").dump() +
                                "; the sam model reads Hugging Face SamModel checkpoints (model_type \"sam\")");
  SamConfig out;
  const json& v = section(config, "vision_config");
  SamVisionConfig& vision = out.vision;
  vision.hidden_size = positive_int(v, "vision_config", "hidden_size", vision.hidden_size);
  vision.output_channels = positive_int(v, "vision_config", "output_channels", vision.output_channels);
  vision.num_hidden_layers = positive_int(v, "vision_config", "num_hidden_layers", vision.num_hidden_layers);
  vision.num_attention_heads = positive_int(v, "vision_config", "num_attention_heads", vision.num_attention_heads);
  vision.num_channels = positive_int(v, "vision_config", "num_channels", vision.num_channels);
  vision.image_size = positive_int(v, "vision_config", "image_size", vision.image_size);
  vision.patch_size = positive_int(v, "vision_config", "patch_size", vision.patch_size);
  vision.hidden_act = activation(v, "vision_config", "hidden_act", vision.hidden_act);
  vision.layer_norm_eps = positive_number(v, "vision_config", "layer_norm_eps", vision.layer_norm_eps);
  vision.qkv_bias = flag(v, "vision_config", "qkv_bias", vision.qkv_bias);
  vision.mlp_ratio = positive_number(v, "vision_config", "mlp_ratio", vision.mlp_ratio);
  vision.mlp_dim = positive_int(v, "vision_config", "mlp_dim",
                                static_cast<int64_t>(static_cast<double>(vision.hidden_size) * vision.mlp_ratio));
  vision.use_abs_pos = flag(v, "vision_config", "use_abs_pos", vision.use_abs_pos);
  vision.use_rel_pos = flag(v, "vision_config", "use_rel_pos", vision.use_rel_pos);
  if (v.contains("window_size") && !v.at("window_size").is_null()) {
    if (!v.at("window_size").is_number_integer() || v.at("window_size").get<int64_t>() < 0)
      throw std::invalid_argument("SAM config.json: vision_config.window_size must be an integer >= 0");
    vision.window_size = v.at("window_size").get<int64_t>();
  }
  if (v.contains("global_attn_indexes") && !v.at("global_attn_indexes").is_null()) {
    vision.global_attn_indexes.clear();
    for (const json& index : v.at("global_attn_indexes")) {
      if (!index.is_number_integer() || index.get<int64_t>() < 0 || index.get<int64_t>() >= vision.num_hidden_layers)
        throw std::invalid_argument("SAM config.json: vision_config.global_attn_indexes holds " + index.dump() +
                                    ", not a layer index below num_hidden_layers = " +
                                    std::to_string(vision.num_hidden_layers));
      vision.global_attn_indexes.push_back(index.get<int64_t>());
    }
  }
  vision.num_pos_feats = positive_int(v, "vision_config", "num_pos_feats", vision.num_pos_feats);
  if (vision.hidden_size % vision.num_attention_heads != 0)
    throw std::invalid_argument("SAM config.json: vision_config.hidden_size (" + std::to_string(vision.hidden_size) +
                                ") is not a multiple of num_attention_heads (" +
                                std::to_string(vision.num_attention_heads) + ")");
  if (vision.image_size % vision.patch_size != 0)
    throw std::invalid_argument("SAM config.json: vision_config.image_size is not a multiple of patch_size");

  const json& p = section(config, "prompt_encoder_config");
  out.prompt.hidden_size = positive_int(p, "prompt_encoder_config", "hidden_size", out.prompt.hidden_size);
  out.prompt.mask_input_channels =
      positive_int(p, "prompt_encoder_config", "mask_input_channels", out.prompt.mask_input_channels);
  out.prompt.num_point_embeddings =
      positive_int(p, "prompt_encoder_config", "num_point_embeddings", out.prompt.num_point_embeddings);
  out.prompt.hidden_act = activation(p, "prompt_encoder_config", "hidden_act", out.prompt.hidden_act);
  out.prompt.layer_norm_eps = positive_number(p, "prompt_encoder_config", "layer_norm_eps", out.prompt.layer_norm_eps);

  const json& d = section(config, "mask_decoder_config");
  SamMaskDecoderConfig& decoder = out.decoder;
  decoder.hidden_size = positive_int(d, "mask_decoder_config", "hidden_size", decoder.hidden_size);
  decoder.hidden_act = activation(d, "mask_decoder_config", "hidden_act", decoder.hidden_act);
  decoder.mlp_dim = positive_int(d, "mask_decoder_config", "mlp_dim", decoder.mlp_dim);
  decoder.num_hidden_layers = positive_int(d, "mask_decoder_config", "num_hidden_layers", decoder.num_hidden_layers);
  decoder.num_attention_heads =
      positive_int(d, "mask_decoder_config", "num_attention_heads", decoder.num_attention_heads);
  decoder.attention_downsample_rate =
      positive_int(d, "mask_decoder_config", "attention_downsample_rate", decoder.attention_downsample_rate);
  decoder.num_multimask_outputs =
      positive_int(d, "mask_decoder_config", "num_multimask_outputs", decoder.num_multimask_outputs);
  decoder.iou_head_depth = positive_int(d, "mask_decoder_config", "iou_head_depth", decoder.iou_head_depth);
  decoder.iou_head_hidden_dim =
      positive_int(d, "mask_decoder_config", "iou_head_hidden_dim", decoder.iou_head_hidden_dim);
  decoder.layer_norm_eps = positive_number(d, "mask_decoder_config", "layer_norm_eps", decoder.layer_norm_eps);
  const int64_t widest_rate = std::max<int64_t>(2, decoder.attention_downsample_rate);
  if (decoder.hidden_size % 8 != 0 || decoder.hidden_size % (decoder.num_attention_heads * widest_rate) != 0 ||
      (decoder.hidden_size / decoder.attention_downsample_rate) % decoder.num_attention_heads != 0)
    throw std::invalid_argument("SAM config.json: mask_decoder_config.hidden_size (" +
                                std::to_string(decoder.hidden_size) +
                                ") must be a multiple of 8, and divided by 2 and by attention_downsample_rate, of "
                                "num_attention_heads");
  if (out.prompt.hidden_size != decoder.hidden_size || vision.output_channels != decoder.hidden_size ||
      2 * vision.num_pos_feats != decoder.hidden_size)
    throw std::invalid_argument(
        "SAM config.json: prompt_encoder_config.hidden_size, vision_config.output_channels and 2 * "
        "vision_config.num_pos_feats must all equal mask_decoder_config.hidden_size (" +
        std::to_string(decoder.hidden_size) + ")");
  return out;
}

SamConfig SamConfig::from_json(const json& config, const Config& keys) {
  SamConfig out = from_json(config);
  if (!keys.is_null("model.sam.image_size")) {
    const int64_t size = keys.get_int("model.sam.image_size");
    if (size <= 0 || size % out.vision.patch_size != 0)
      throw std::invalid_argument("model.sam.image_size = " + std::to_string(size) +
                                  " must be a positive multiple of the checkpoint's patch size (" +
                                  std::to_string(out.vision.patch_size) + ")");
    out.vision.image_size = size;
  }
  return out;
}

json SamConfig::to_json() const {
  return {{"model_type", "sam"},
          {"vision_config",
           {{"hidden_size", vision.hidden_size},
            {"output_channels", vision.output_channels},
            {"num_hidden_layers", vision.num_hidden_layers},
            {"num_attention_heads", vision.num_attention_heads},
            {"num_channels", vision.num_channels},
            {"image_size", vision.image_size},
            {"patch_size", vision.patch_size},
            {"hidden_act", vision.hidden_act},
            {"layer_norm_eps", vision.layer_norm_eps},
            {"qkv_bias", vision.qkv_bias},
            {"mlp_dim", vision.mlp_dim},
            {"use_abs_pos", vision.use_abs_pos},
            {"use_rel_pos", vision.use_rel_pos},
            {"window_size", vision.window_size},
            {"global_attn_indexes", vision.global_attn_indexes},
            {"num_pos_feats", vision.num_pos_feats}}},
          {"prompt_encoder_config",
           {{"hidden_size", prompt.hidden_size},
            {"image_size", vision.image_size},
            {"patch_size", vision.patch_size},
            {"image_embedding_size", vision.grid()},
            {"mask_input_channels", prompt.mask_input_channels},
            {"num_point_embeddings", prompt.num_point_embeddings},
            {"hidden_act", prompt.hidden_act},
            {"layer_norm_eps", prompt.layer_norm_eps}}},
          {"mask_decoder_config",
           {{"hidden_size", decoder.hidden_size},
            {"hidden_act", decoder.hidden_act},
            {"mlp_dim", decoder.mlp_dim},
            {"num_hidden_layers", decoder.num_hidden_layers},
            {"num_attention_heads", decoder.num_attention_heads},
            {"attention_downsample_rate", decoder.attention_downsample_rate},
            {"num_multimask_outputs", decoder.num_multimask_outputs},
            {"iou_head_depth", decoder.iou_head_depth},
            {"iou_head_hidden_dim", decoder.iou_head_hidden_dim},
            {"layer_norm_eps", decoder.layer_norm_eps}}}};
}

namespace sam {

ChannelsFirstLayerNormImpl::ChannelsFirstLayerNormImpl(int64_t channels, double eps) : eps_(eps) {
  weight = register_parameter("weight", torch::ones({channels}));
  bias = register_parameter("bias", torch::zeros({channels}));
}

torch::Tensor ChannelsFirstLayerNormImpl::forward(const torch::Tensor& x) {
  const torch::Tensor x32 = x.to(torch::kFloat32);
  const torch::Tensor mean = x32.mean(1, true);
  const torch::Tensor var = (x32 - mean).pow(2).mean(1, true);
  const torch::Tensor normed = ((x32 - mean) / torch::sqrt(var + eps_)).to(x.scalar_type());
  return weight.view({-1, 1, 1}) * normed + bias.view({-1, 1, 1});
}

MlpBlockImpl::MlpBlockImpl(int64_t hidden, int64_t mlp_dim, const std::string& activation) : activation_(activation) {
  lin1 = register_module("lin1", torch::nn::Linear(hidden, mlp_dim));
  lin2 = register_module("lin2", torch::nn::Linear(mlp_dim, hidden));
}

torch::Tensor MlpBlockImpl::forward(const torch::Tensor& x) {
  static const auto gelu = hf::activation_by_name("gelu");
  const torch::Tensor h = linear(lin1, x);
  return linear(lin2, activation_ == "relu" ? torch::relu(h) : activation_ == "gelu" ? gelu(h)
                                                                                      : hf::activation_by_name(activation_)(h));
}

VisionAttentionImpl::VisionAttentionImpl(const SamVisionConfig& config, int64_t input_size)
    : heads_(config.num_attention_heads), use_rel_pos_(config.use_rel_pos) {
  const int64_t head_dim = config.hidden_size / config.num_attention_heads;
  scale_ = std::pow(static_cast<double>(head_dim), -0.5);
  qkv = register_module("qkv",
                        torch::nn::Linear(torch::nn::LinearOptions(config.hidden_size, 3 * config.hidden_size)
                                              .bias(config.qkv_bias)));
  proj = register_module("proj", torch::nn::Linear(config.hidden_size, config.hidden_size));
  if (use_rel_pos_) {
    rel_pos_h = register_parameter("rel_pos_h", torch::zeros({2 * input_size - 1, head_dim}));
    rel_pos_w = register_parameter("rel_pos_w", torch::zeros({2 * input_size - 1, head_dim}));
  }
}

torch::Tensor VisionAttentionImpl::forward(const torch::Tensor& x) {
  const int64_t b = x.size(0), h = x.size(1), w = x.size(2);
  // [3, B * heads, h * w, head_dim]
  const torch::Tensor qkv_out =
      linear(qkv, x).reshape({b, h * w, 3, heads_, -1}).permute({2, 0, 3, 1, 4}).reshape({3, b * heads_, h * w, -1});
  const torch::Tensor q = qkv_out[0], k = qkv_out[1], v = qkv_out[2];
  torch::Tensor attn = torch::matmul(q * scale_, k.transpose(-2, -1));  // [B * heads, hw, hw]
  if (use_rel_pos_) {
    const int64_t d = q.size(-1);
    const torch::Tensor rq = q.reshape({b * heads_, h, w, d});
    const torch::Tensor table_h = relative_table(rel_pos_h, h).to(q.scalar_type());  // [h, h, d]
    const torch::Tensor table_w = relative_table(rel_pos_w, w).to(q.scalar_type());  // [w, w, d]
    const torch::Tensor rel_h = torch::einsum("bhwc,hkc->bhwk", {rq, table_h});      // [B', h, w, h]
    const torch::Tensor rel_w = torch::einsum("bhwc,wkc->bhwk", {rq, table_w});      // [B', h, w, w]
    attn = (attn.view({b * heads_, h, w, h, w}) + rel_h.unsqueeze(-1) + rel_w.unsqueeze(-2))
               .view({b * heads_, h * w, h * w});
  }
  attn = torch::softmax(attn, -1, torch::kFloat32).to(q.scalar_type());
  const torch::Tensor out =
      torch::matmul(attn, v).reshape({b, heads_, h, w, -1}).permute({0, 2, 3, 1, 4}).reshape({b, h, w, -1});
  return linear(proj, out);
}

VisionLayerImpl::VisionLayerImpl(const SamVisionConfig& config, int64_t window_size) : window_size_(window_size) {
  layer_norm1 = register_module(
      "layer_norm1", torch::nn::LayerNorm(torch::nn::LayerNormOptions({config.hidden_size}).eps(config.layer_norm_eps)));
  attn = register_module("attn", VisionAttention(config, window_size > 0 ? window_size : config.grid()));
  layer_norm2 = register_module(
      "layer_norm2", torch::nn::LayerNorm(torch::nn::LayerNormOptions({config.hidden_size}).eps(config.layer_norm_eps)));
  mlp = register_module("mlp", MlpBlock(config.hidden_size, config.mlp_dim, config.hidden_act));
}

torch::Tensor VisionLayerImpl::forward(const torch::Tensor& x) {
  torch::Tensor h = norm(layer_norm1, x);
  if (window_size_ > 0) {
    const int64_t b = h.size(0), height = h.size(1), width = h.size(2);
    h = window_unpartition(attn->forward(window_partition(h, window_size_)), window_size_, b, height, width);
  } else {
    h = attn->forward(h);
  }
  const torch::Tensor y = x + h;
  return y + mlp->forward(norm(layer_norm2, y));
}

VisionNeckImpl::VisionNeckImpl(const SamVisionConfig& config) {
  conv1 = register_module("conv1", torch::nn::Conv2d(torch::nn::Conv2dOptions(config.hidden_size,
                                                                               config.output_channels, 1)
                                                         .bias(false)));
  layer_norm1 = register_module("layer_norm1", ChannelsFirstLayerNorm(config.output_channels, 1e-6));
  conv2 = register_module("conv2", torch::nn::Conv2d(torch::nn::Conv2dOptions(config.output_channels,
                                                                               config.output_channels, 3)
                                                         .padding(1)
                                                         .bias(false)));
  layer_norm2 = register_module("layer_norm2", ChannelsFirstLayerNorm(config.output_channels, 1e-6));
}

torch::Tensor VisionNeckImpl::forward(const torch::Tensor& x) {
  torch::Tensor h = conv1->forward(x.permute({0, 3, 1, 2}));
  h = layer_norm1->forward(h);
  return layer_norm2->forward(conv2->forward(h));
}

PatchEmbeddingsImpl::PatchEmbeddingsImpl(const SamVisionConfig& config) : image_size_(config.image_size) {
  projection = register_module(
      "projection", torch::nn::Conv2d(torch::nn::Conv2dOptions(config.num_channels, config.hidden_size,
                                                               config.patch_size)
                                          .stride(config.patch_size)));
}

torch::Tensor PatchEmbeddingsImpl::forward(const torch::Tensor& pixels) {
  if (pixels.dim() != 4 || pixels.size(2) != image_size_ || pixels.size(3) != image_size_)
    throw std::invalid_argument("SAM's vision encoder reads [batch, 3, " + std::to_string(image_size_) + ", " +
                                std::to_string(image_size_) + "] pixels, got " + std::string(c10::str(pixels.sizes())));
  return projection->forward(pixels).permute({0, 2, 3, 1});
}

VisionEncoderImpl::VisionEncoderImpl(const SamVisionConfig& config) {
  patch_embed = register_module("patch_embed", PatchEmbeddings(config));
  if (config.use_abs_pos)
    pos_embed = register_parameter("pos_embed", torch::zeros({1, config.grid(), config.grid(), config.hidden_size}));
  layers = register_module("layers", torch::nn::ModuleList());
  for (int64_t i = 0; i < config.num_hidden_layers; ++i)
    layers->push_back(VisionLayer(config, config.is_global(i) ? 0 : config.window_size));
  neck = register_module("neck", VisionNeck(config));
}

torch::Tensor VisionEncoderImpl::forward(const torch::Tensor& pixels) {
  torch::Tensor h = patch_embed->forward(pixels);
  if (pos_embed.defined()) h = h + pos_embed.to(h.scalar_type());
  for (const auto& layer : *layers) h = layer->as<VisionLayerImpl>()->forward(h);
  return neck->forward(h);
}

PositionalEmbeddingImpl::PositionalEmbeddingImpl(const SamVisionConfig& config) {
  positional_embedding = register_parameter(
      "positional_embedding", static_cast<double>(config.hidden_size / 2) * torch::randn({2, config.num_pos_feats}));
}

torch::Tensor PositionalEmbeddingImpl::grid_encoding(int64_t grid) {
  // Cell centres (i + 0.5) / grid as (x, y), mapped to [-1, 1], through the Gaussian matrix.
  const torch::Tensor centres = (torch::arange(grid, positional_embedding.options()) + 0.5) / static_cast<double>(grid);
  const torch::Tensor y = centres.view({grid, 1}).expand({grid, grid});
  const torch::Tensor x = centres.view({1, grid}).expand({grid, grid});
  const torch::Tensor coords = 2 * torch::stack({x, y}, -1) - 1;  // [g, g, 2]
  const torch::Tensor projected = 2 * M_PI * torch::matmul(coords, positional_embedding);
  return torch::cat({torch::sin(projected), torch::cos(projected)}, -1).permute({2, 0, 1}).unsqueeze(0);
}

MaskEmbeddingImpl::MaskEmbeddingImpl(const SamPromptEncoderConfig& config) {
  const int64_t quarter = config.mask_input_channels / 4;
  conv1 = register_module("conv1", torch::nn::Conv2d(torch::nn::Conv2dOptions(1, quarter, 2).stride(2)));
  conv2 = register_module("conv2", torch::nn::Conv2d(
                                       torch::nn::Conv2dOptions(quarter, config.mask_input_channels, 2).stride(2)));
  conv3 = register_module("conv3",
                          torch::nn::Conv2d(torch::nn::Conv2dOptions(config.mask_input_channels, config.hidden_size, 1)));
  layer_norm1 = register_module("layer_norm1", ChannelsFirstLayerNorm(quarter, config.layer_norm_eps));
  layer_norm2 = register_module("layer_norm2", ChannelsFirstLayerNorm(quarter * 4, config.layer_norm_eps));
}

PromptEncoderImpl::PromptEncoderImpl(const SamPromptEncoderConfig& config) {
  mask_embed = register_module("mask_embed", MaskEmbedding(config));
  no_mask_embed = register_module("no_mask_embed", torch::nn::Embedding(1, config.hidden_size));
  point_embed = register_module("point_embed", torch::nn::ModuleList());
  for (int64_t i = 0; i < config.num_point_embeddings; ++i) point_embed->push_back(torch::nn::Embedding(1, config.hidden_size));
  not_a_point_embed = register_module("not_a_point_embed", torch::nn::Embedding(1, config.hidden_size));
}

torch::Tensor PromptEncoderImpl::dense_embeddings(int64_t grid) const {
  return no_mask_embed->weight.view({1, -1, 1, 1}).expand({1, -1, grid, grid});
}

DecoderAttentionImpl::DecoderAttentionImpl(const SamMaskDecoderConfig& config, int64_t downsample_rate)
    : heads_(config.num_attention_heads) {
  const int64_t internal = config.hidden_size / downsample_rate;
  q_proj = register_module("q_proj", torch::nn::Linear(config.hidden_size, internal));
  k_proj = register_module("k_proj", torch::nn::Linear(config.hidden_size, internal));
  v_proj = register_module("v_proj", torch::nn::Linear(config.hidden_size, internal));
  out_proj = register_module("out_proj", torch::nn::Linear(internal, config.hidden_size));
}

torch::Tensor DecoderAttentionImpl::forward(const torch::Tensor& query, const torch::Tensor& key,
                                            const torch::Tensor& value) {
  const auto heads = [&](const torch::Tensor& x) {  // [B, N, C'] -> [B, heads, N, C' / heads]
    return x.view({x.size(0), x.size(1), heads_, -1}).transpose(1, 2);
  };
  const torch::Tensor q = heads(linear(q_proj, query)), k = heads(linear(k_proj, key)), v = heads(linear(v_proj, value));
  const torch::Tensor attn =
      torch::softmax(torch::matmul(q, k.transpose(-2, -1)) / std::sqrt(static_cast<double>(q.size(-1))), -1);
  const torch::Tensor out = torch::matmul(attn, v).transpose(1, 2).reshape({query.size(0), query.size(1), -1});
  return linear(out_proj, out);
}

TwoWayAttentionBlockImpl::TwoWayAttentionBlockImpl(const SamMaskDecoderConfig& config, bool skip_first_layer_pe)
    : skip_first_layer_pe_(skip_first_layer_pe) {
  const auto layer_norm = [&] {
    return torch::nn::LayerNorm(torch::nn::LayerNormOptions({config.hidden_size}).eps(config.layer_norm_eps));
  };
  self_attn = register_module("self_attn", DecoderAttention(config, 1));
  layer_norm1 = register_module("layer_norm1", layer_norm());
  // transformers builds the blocks with SamTwoWayAttentionBlock's default
  // attention_downsample_rate of 2; only final_attn_token_to_image reads the config's.
  cross_attn_token_to_image = register_module("cross_attn_token_to_image", DecoderAttention(config, 2));
  layer_norm2 = register_module("layer_norm2", layer_norm());
  mlp = register_module("mlp", MlpBlock(config.hidden_size, config.mlp_dim, config.hidden_act));
  layer_norm3 = register_module("layer_norm3", layer_norm());
  layer_norm4 = register_module("layer_norm4", layer_norm());
  cross_attn_image_to_token = register_module("cross_attn_image_to_token", DecoderAttention(config, 2));
}

std::pair<torch::Tensor, torch::Tensor> TwoWayAttentionBlockImpl::forward(torch::Tensor queries, torch::Tensor keys,
                                                                          const torch::Tensor& query_pe,
                                                                          const torch::Tensor& key_pe) {
  if (skip_first_layer_pe_) {
    queries = self_attn->forward(queries, queries, queries);
  } else {
    const torch::Tensor q = queries + query_pe;
    queries = queries + self_attn->forward(q, q, queries);
  }
  queries = norm(layer_norm1, queries);
  queries = norm(layer_norm2, queries + cross_attn_token_to_image->forward(queries + query_pe, keys + key_pe, keys));
  queries = norm(layer_norm3, queries + mlp->forward(queries));
  keys = norm(layer_norm4, keys + cross_attn_image_to_token->forward(keys + key_pe, queries + query_pe, queries));
  return {queries, keys};
}

TwoWayTransformerImpl::TwoWayTransformerImpl(const SamMaskDecoderConfig& config) {
  layers = register_module("layers", torch::nn::ModuleList());
  for (int64_t i = 0; i < config.num_hidden_layers; ++i) layers->push_back(TwoWayAttentionBlock(config, i == 0));
  final_attn_token_to_image =
      register_module("final_attn_token_to_image", DecoderAttention(config, config.attention_downsample_rate));
  layer_norm_final_attn = register_module("layer_norm_final_attn",
                                          torch::nn::LayerNorm(torch::nn::LayerNormOptions({config.hidden_size})));
}

std::pair<torch::Tensor, torch::Tensor> TwoWayTransformerImpl::forward(const torch::Tensor& tokens,
                                                                       const torch::Tensor& image,
                                                                       const torch::Tensor& image_pe) {
  const torch::Tensor key_pe = image_pe.flatten(2).permute({0, 2, 1});  // [B or 1, HW, C]
  torch::Tensor queries = tokens, keys = image.flatten(2).permute({0, 2, 1});
  for (const auto& layer : *layers)
    std::tie(queries, keys) = layer->as<TwoWayAttentionBlockImpl>()->forward(queries, keys, tokens, key_pe);
  queries = queries + final_attn_token_to_image->forward(queries + tokens, keys + key_pe, keys);
  return {norm(layer_norm_final_attn, queries), keys};
}

FeedForwardImpl::FeedForwardImpl(int64_t in, int64_t hidden, int64_t out, int64_t num_layers) {
  proj_in = register_module("proj_in", torch::nn::Linear(in, hidden));
  proj_out = register_module("proj_out", torch::nn::Linear(hidden, out));
  layers = register_module("layers", torch::nn::ModuleList());
  for (int64_t i = 0; i < num_layers - 2; ++i) layers->push_back(torch::nn::Linear(hidden, hidden));
}

torch::Tensor FeedForwardImpl::forward(const torch::Tensor& x) {
  torch::Tensor h = torch::relu(linear(proj_in, x));
  for (const auto& layer : *layers) h = apply_linear(*layer->as<torch::nn::LinearImpl>(), h, kernels::Epilogue::kRelu);
  return linear(proj_out, h);
}

MaskDecoderImpl::MaskDecoderImpl(const SamMaskDecoderConfig& config) : hidden_(config.hidden_size) {
  const int64_t tokens = config.num_multimask_outputs + 1;
  iou_token = register_module("iou_token", torch::nn::Embedding(1, hidden_));
  mask_tokens = register_module("mask_tokens", torch::nn::Embedding(tokens, hidden_));
  transformer = register_module("transformer", TwoWayTransformer(config));
  upscale_conv1 = register_module(
      "upscale_conv1", torch::nn::ConvTranspose2d(torch::nn::ConvTranspose2dOptions(hidden_, hidden_ / 4, 2).stride(2)));
  upscale_conv2 = register_module(
      "upscale_conv2",
      torch::nn::ConvTranspose2d(torch::nn::ConvTranspose2dOptions(hidden_ / 4, hidden_ / 8, 2).stride(2)));
  upscale_layer_norm = register_module("upscale_layer_norm", ChannelsFirstLayerNorm(hidden_ / 4, 1e-6));
  output_hypernetworks_mlps = register_module("output_hypernetworks_mlps", torch::nn::ModuleList());
  for (int64_t i = 0; i < tokens; ++i) output_hypernetworks_mlps->push_back(FeedForward(hidden_, hidden_, hidden_ / 8, 3));
  iou_prediction_head = register_module(
      "iou_prediction_head", FeedForward(hidden_, config.iou_head_hidden_dim, tokens, config.iou_head_depth));
}

void MaskDecoderImpl::adapt_for_semantic_segmentation(int64_t num_mask_tokens, int64_t num_classes) {
  torch::NoGradGuard no_grad;
  const torch::Tensor first = mask_tokens->weight[0].detach().clone();
  mask_tokens = replace_module("mask_tokens", torch::nn::Embedding(num_mask_tokens, hidden_));
  mask_tokens->weight.copy_(first.unsqueeze(0).expand({num_mask_tokens, hidden_}));
  auto shared = output_hypernetworks_mlps[0];
  auto kept = torch::nn::ModuleList();
  kept->push_back(shared);
  output_hypernetworks_mlps = replace_module("output_hypernetworks_mlps", kept);
  if (num_classes > 1)
    output_classifier_mlps = register_module("output_classifier_mlps", torch::nn::Linear(hidden_, num_classes + 1));
}

DecoderOutput MaskDecoderImpl::forward(const torch::Tensor& image, const torch::Tensor& image_pe,
                                       const torch::Tensor& dense) {
  const int64_t b = image.size(0), c = image.size(1), h = image.size(2), w = image.size(3);
  const int64_t tokens = mask_tokens->weight.size(0);
  // [B, 1 + T, C]: the iou token then the mask tokens (no sparse prompt is concatenated).
  const torch::Tensor output_tokens =
      torch::cat({iou_token->weight, mask_tokens->weight}).unsqueeze(0).expand({b, 1 + tokens, c});
  const auto [queries, keys] = transformer->forward(output_tokens, image + dense.to(image.scalar_type()),
                                                    image_pe.to(image.scalar_type()));
  const torch::Tensor iou_out = queries.select(1, 0);
  const torch::Tensor mask_out = queries.slice(1, 1, 1 + tokens);  // [B, T, C]
  static const auto gelu = hf::activation_by_name("gelu");
  torch::Tensor up = upscale_conv1->forward(keys.transpose(1, 2).reshape({b, c, h, w}));
  up = gelu(upscale_conv2->forward(gelu(upscale_layer_norm->forward(up))));  // [B, C / 8, 4h, 4w]
  torch::Tensor hyper;  // [B, T, C / 8]
  if (output_hypernetworks_mlps->size() == 1) {
    hyper = output_hypernetworks_mlps[0]->as<FeedForwardImpl>()->forward(mask_out);
  } else {
    std::vector<torch::Tensor> per_token;
    for (int64_t t = 0; t < tokens; ++t)
      per_token.push_back(output_hypernetworks_mlps[t]->as<FeedForwardImpl>()->forward(mask_out.select(1, t)));
    hyper = torch::stack(per_token, 1);
  }
  DecoderOutput out;
  out.masks = torch::matmul(hyper, up.flatten(2)).view({b, tokens, up.size(2), up.size(3)});
  out.iou = iou_prediction_head->forward(iou_out);
  if (!output_classifier_mlps.is_empty()) out.class_logits = linear(output_classifier_mlps, mask_out);
  return out;
}

}  // namespace sam

SamModelImpl::SamModelImpl(const SamConfig& config) : config_(config) {
  shared_image_embedding = register_module("shared_image_embedding", sam::PositionalEmbedding(config.vision));
  vision_encoder = register_module("vision_encoder", sam::VisionEncoder(config.vision));
  prompt_encoder = register_module("prompt_encoder", sam::PromptEncoder(config.prompt));
  mask_decoder = register_module("mask_decoder", sam::MaskDecoder(config.decoder));
}

torch::Tensor SamModelImpl::image_embeddings(const torch::Tensor& pixels) { return vision_encoder->forward(pixels); }

torch::Tensor SamModelImpl::image_positional_embeddings() {
  return shared_image_embedding->grid_encoding(config_.vision.grid());
}

sam::DecoderOutput SamModelImpl::decode(const torch::Tensor& image_embeddings) {
  return mask_decoder->forward(image_embeddings, image_positional_embeddings(),
                               prompt_encoder->dense_embeddings(config_.vision.grid()));
}

SamOutput SamModelImpl::forward(const torch::Tensor& pixels) {
  const sam::DecoderOutput decoded = decode(image_embeddings(pixels));
  const int64_t size = config_.vision.image_size;
  SamOutput out;
  out.logits = F::interpolate(decoded.masks, F::InterpolateFuncOptions()
                                                 .size(std::vector<int64_t>{size, size})
                                                 .mode(torch::kBilinear)
                                                 .align_corners(false));
  out.class_logits = decoded.class_logits;
  return out;
}

void SamModelImpl::load_hf_state_dict(std::map<std::string, torch::Tensor> weights) {
  const int64_t grid = config_.vision.grid();
  const auto pos = weights.find("vision_encoder.pos_embed");
  if (pos != weights.end() && pos->second.dim() == 4 && pos->second.size(1) != grid &&
      pos->second.size(3) == config_.vision.hidden_size) {
    pos->second = F::interpolate(pos->second.to(torch::kFloat32).permute({0, 3, 1, 2}),
                                 F::InterpolateFuncOptions()
                                     .size(std::vector<int64_t>{grid, grid})
                                     .mode(torch::kBicubic)
                                     .align_corners(false))
                      .permute({0, 2, 3, 1})
                      .contiguous();
  }
  for (int64_t layer : config_.vision.global_attn_indexes)
    for (const char* axis : {"rel_pos_h", "rel_pos_w"}) {
      const auto it = weights.find("vision_encoder.layers." + std::to_string(layer) + ".attn." + axis);
      if (it == weights.end() || it->second.dim() != 2 || it->second.size(0) == 2 * grid - 1) continue;
      it->second = F::interpolate(it->second.to(torch::kFloat32).t().unsqueeze(0),
                                  F::InterpolateFuncOptions()
                                      .size(std::vector<int64_t>{2 * grid - 1})
                                      .mode(torch::kLinear)
                                      .align_corners(false))
                       .squeeze(0)
                       .t()
                       .contiguous();
    }
  hf::StateDictMapping mapping;
  mapping.is_ignored = [](const std::string& name) {
    return name == "prompt_encoder.shared_embedding.positional_embedding";  // tied to shared_image_embedding's
  };
  mapping.model_description = "SAM model (vision " + std::to_string(config_.vision.num_hidden_layers) +
                              " layers, width " + std::to_string(config_.vision.hidden_size) + ")";
  hf::load_state_dict_by_name(*this, weights, mapping);
}

bool is_scratch_sam(const std::string& checkpoint_name) { return checkpoint_name.rfind("scratch:", 0) == 0; }

SamConfig scratch_sam_config(const std::string& checkpoint_name) {
  if (checkpoint_name != "scratch:sam-tiny")
    throw std::invalid_argument("unknown scratch SAM '" + checkpoint_name + "'; known: scratch:sam-tiny");
  SamConfig config;
  config.vision.hidden_size = 96;
  config.vision.num_hidden_layers = 4;
  config.vision.num_attention_heads = 4;
  config.vision.mlp_dim = 384;
  config.vision.image_size = 256;
  config.vision.window_size = 8;
  config.vision.global_attn_indexes = {1, 3};
  config.vision.output_channels = 64;
  config.vision.num_pos_feats = 32;
  config.prompt.hidden_size = 64;
  config.decoder.hidden_size = 64;
  config.decoder.mlp_dim = 256;
  config.decoder.num_attention_heads = 4;
  config.decoder.iou_head_hidden_dim = 64;
  return config;
}

void initialize_sam_weights(SamModelImpl& model) {
  torch::NoGradGuard no_grad;
  for (auto& item : model.named_parameters()) {
    const std::string& name = item.key();
    torch::Tensor& p = item.value();
    const auto ends_with = [&](const std::string& suffix) {
      return name.size() >= suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
    };
    if (ends_with("positional_embedding")) {
      p.normal_(0.0, 1.0);
    } else if (name.find("norm") != std::string::npos && ends_with("weight")) {
      p.fill_(1.0);
    } else if (ends_with("bias") || name.find("rel_pos") != std::string::npos) {
      p.zero_();
    } else {
      p.normal_(0.0, 0.02);
    }
  }
}

}  // namespace automm
