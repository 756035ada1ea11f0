// Hugging Face's CLIPModel (transformers' models/clip/modeling_clip.py): a
// vision tower (patches + class token, pre_layrnorm, pre-norm encoder,
// post_layernorm on the class token), a text tower (token + position
// embeddings, causal and padding masks, final_layer_norm, the hidden state at
// the end-of-text token), a projection for each, and logit_scale. Parameter
// names are Hugging Face's, so that a CLIP checkpoint loads by name.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "automm/config.h"
#include "kernels/packed_linear.h"
#include "models/dropout.h"

namespace automm {

// One tower's part of config.json (text_config or vision_config), with
// CLIPTextConfig's / CLIPVisionConfig's defaults for absent fields.
struct ClipTowerConfig {
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_hidden_layers = 12;
  int64_t num_attention_heads = 0;
  double layer_norm_eps = 1e-5;
  double attention_dropout = 0.0;
  std::string hidden_act = "quick_gelu";
  // Text tower.
  int64_t vocab_size = 0;
  int64_t max_position_embeddings = 0;
  int64_t eos_token_id = 2;  // 2 (every openai config): pool at argmax(input_ids)
  // Vision tower.
  int64_t image_size = 0;
  int64_t patch_size = 0;
  int64_t num_channels = 3;
};

struct ClipConfig {
  ClipTowerConfig text, vision;
  int64_t projection_dim = 512;
  double logit_scale_init_value = 2.6592;  // ln(1 / 0.07)

  // A parsed CLIP config.json (model_type "clip"); throws
  // std::invalid_argument naming the field that is missing or out of range.
  static ClipConfig from_json(const nlohmann::json& config);
  // from_json, with model.clip.image_size (when not null) for the vision
  // tower's image size; throws naming the key when it is not a positive
  // multiple of the patch size.
  static ClipConfig from_json(const nlohmann::json& config, const Config& keys);
};

namespace clip {

class AttentionImpl : public torch::nn::Module {
 public:
  AttentionImpl(const ClipTowerConfig& config);
  // x [batch, seq, hidden], bias [batch or 1, 1, seq, seq] additive (undefined: none).
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& bias);

  torch::nn::Linear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, out_proj{nullptr};

 private:
  int64_t heads_ = 1;
  double scale_ = 1.0;
  Dropout dropout_{nullptr};
};
TORCH_MODULE(Attention);

class MlpImpl : public torch::nn::Module {
 public:
  MlpImpl(const ClipTowerConfig& config);
  torch::Tensor forward(const torch::Tensor& x);

  torch::nn::Linear fc1{nullptr}, fc2{nullptr};

 private:
  kernels::Epilogue activation_;
};
TORCH_MODULE(Mlp);

// Pre-norm: x + attn(layer_norm1(x)), then x + mlp(layer_norm2(x)).
class EncoderLayerImpl : public torch::nn::Module {
 public:
  EncoderLayerImpl(const ClipTowerConfig& config);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& bias);

  Attention self_attn{nullptr};
  torch::nn::LayerNorm layer_norm1{nullptr}, layer_norm2{nullptr};
  Mlp mlp{nullptr};
};
TORCH_MODULE(EncoderLayer);

class EncoderImpl : public torch::nn::Module {
 public:
  EncoderImpl(const ClipTowerConfig& config);
  torch::Tensor forward(torch::Tensor x, const torch::Tensor& bias);

  torch::nn::ModuleList layers{nullptr};
};
TORCH_MODULE(Encoder);

class TextEmbeddingsImpl : public torch::nn::Module {
 public:
  TextEmbeddingsImpl(const ClipTowerConfig& config);
  torch::Tensor forward(const torch::Tensor& input_ids);

  torch::nn::Embedding token_embedding{nullptr}, position_embedding{nullptr};
};
TORCH_MODULE(TextEmbeddings);

class TextTransformerImpl : public torch::nn::Module {
 public:
  TextTransformerImpl(const ClipTowerConfig& config);
  // input_ids, attention_mask [batch, seq] (mask 1 = token) -> the pooled
  // hidden state at each row's end-of-text token [batch, hidden].
  torch::Tensor forward(const torch::Tensor& input_ids, const torch::Tensor& attention_mask);

  TextEmbeddings embeddings{nullptr};
  Encoder encoder{nullptr};
  torch::nn::LayerNorm final_layer_norm{nullptr};

 private:
  ClipTowerConfig config_;
};
TORCH_MODULE(TextTransformer);

class VisionEmbeddingsImpl : public torch::nn::Module {
 public:
  VisionEmbeddingsImpl(const ClipTowerConfig& config);
  // pixel_values [batch, channels, size, size] -> [batch, 1 + patches, hidden]
  torch::Tensor forward(const torch::Tensor& pixel_values);

  torch::Tensor class_embedding;
  torch::nn::Conv2d patch_embedding{nullptr};
  torch::nn::Embedding position_embedding{nullptr};

 private:
  ClipTowerConfig config_;
};
TORCH_MODULE(VisionEmbeddings);

class VisionTransformerImpl : public torch::nn::Module {
 public:
  VisionTransformerImpl(const ClipTowerConfig& config);
  // pixel_values [batch, channels, size, size] -> post_layernorm(class token) [batch, hidden]
  torch::Tensor forward(const torch::Tensor& pixel_values);

  VisionEmbeddings embeddings{nullptr};
  torch::nn::LayerNorm pre_layrnorm{nullptr};  // NOLINT: Hugging Face's spelling
  Encoder encoder{nullptr};
  torch::nn::LayerNorm post_layernorm{nullptr};
};
TORCH_MODULE(VisionTransformer);

}  // namespace clip

class ClipModelImpl : public torch::nn::Module {
 public:
  explicit ClipModelImpl(const ClipConfig& config);
  // Projected, not normalized: [batch, projection_dim].
  torch::Tensor text_features(const torch::Tensor& input_ids, const torch::Tensor& attention_mask);
  torch::Tensor image_features(const torch::Tensor& pixel_values);
  // Loads a Hugging Face CLIPModel state dict by name, all or nothing; the
  // derived position_ids buffers of older files are ignored; position
  // embeddings of a checkpoint trained on another image size are resampled
  // (bicubic) to this model's grid. Throws listing missing and unexpected tensors.
  void load_hf_state_dict(const std::map<std::string, torch::Tensor>& weights);
  const ClipConfig& config() const { return config_; }

  clip::TextTransformer text_model{nullptr};
  clip::VisionTransformer vision_model{nullptr};
  torch::nn::Linear visual_projection{nullptr}, text_projection{nullptr};
  torch::Tensor logit_scale;

 private:
  ClipConfig config_;
};
TORCH_MODULE(ClipModel);

}  // namespace automm
