// Hugging Face's SamModel (transformers' models/sam/modeling_sam.py, as
// AutoGluon's fork custom_hf_models/modeling_sam_for_conv_lora.py runs it) for
// AutoMM's promptless semantic segmentation (models/sam.py):
//
//   pixels [B, 3, S, S] -> vision encoder (ViT with windowed and global
//   attention, decomposed relative positions, neck) -> image embeddings
//   [B, 256, g, g] (g = S / patch) -> mask decoder (two-way transformer of the
//   iou and mask tokens with the image, upscaling, hypernetwork MLPs) -> mask
//   logits [B, T, 4g, 4g] -> bilinear to [B, T, S, S].
//
// No point, box or mask prompt is ever given (AutoMM passes none): the sparse
// prompt is empty and the dense one is no_mask_embed. The prompt encoder's
// point and mask-embedding weights are kept so that checkpoints load (and save)
// whole. Parameter names are Hugging Face's.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "automm/config.h"

namespace automm {

// config.json's three parts, with SamVisionConfig's, SamPromptEncoderConfig's
// and SamMaskDecoderConfig's defaults for absent fields.
struct SamVisionConfig {
  int64_t hidden_size = 768;
  int64_t output_channels = 256;
  int64_t num_hidden_layers = 12;
  int64_t num_attention_heads = 12;
  int64_t num_channels = 3;
  int64_t image_size = 1024;
  int64_t patch_size = 16;
  std::string hidden_act = "gelu";
  double layer_norm_eps = 1e-6;
  bool qkv_bias = true;
  int64_t mlp_dim = 0;  // 0: hidden_size * mlp_ratio
  double mlp_ratio = 4.0;
  bool use_abs_pos = true;
  bool use_rel_pos = true;
  int64_t window_size = 14;
  std::vector<int64_t> global_attn_indexes = {2, 5, 8, 11};
  int64_t num_pos_feats = 128;

  int64_t grid() const { return image_size / patch_size; }
  bool is_global(int64_t layer) const;
};

struct SamPromptEncoderConfig {
  int64_t hidden_size = 256;
  int64_t mask_input_channels = 16;
  int64_t num_point_embeddings = 4;
  std::string hidden_act = "gelu";
  double layer_norm_eps = 1e-6;
};

struct SamMaskDecoderConfig {
  int64_t hidden_size = 256;
  std::string hidden_act = "relu";
  int64_t mlp_dim = 2048;
  int64_t num_hidden_layers = 2;
  int64_t num_attention_heads = 8;
  int64_t attention_downsample_rate = 2;
  int64_t num_multimask_outputs = 3;
  int64_t iou_head_depth = 3;
  int64_t iou_head_hidden_dim = 256;
  double layer_norm_eps = 1e-6;
};

struct SamConfig {
  SamVisionConfig vision;
  SamPromptEncoderConfig prompt;
  SamMaskDecoderConfig decoder;

  // A parsed SAM config.json (model_type "sam"); throws std::invalid_argument
  // naming the field that is missing, mistyped or out of range.
  static SamConfig from_json(const nlohmann::json& config);
  // from_json, with model.sam.image_size (when not null) for the image size;
  // throws naming the key when it is not a positive multiple of the patch size.
  static SamConfig from_json(const nlohmann::json& config, const Config& keys);
  nlohmann::json to_json() const;
};

namespace sam {

// LayerNorm over the channels of [B, C, H, W] (SamLayerNorm channels_first):
// statistics in fp32, then the affine in the input's dtype.
class ChannelsFirstLayerNormImpl : public torch::nn::Module {
 public:
  ChannelsFirstLayerNormImpl(int64_t channels, double eps);
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor weight, bias;

 private:
  double eps_;
};
TORCH_MODULE(ChannelsFirstLayerNorm);

// lin1 -> activation -> lin2 (SamMLPBlock).
class MlpBlockImpl : public torch::nn::Module {
 public:
  MlpBlockImpl(int64_t hidden, int64_t mlp_dim, const std::string& activation);
  torch::Tensor forward(const torch::Tensor& x);
  torch::nn::Linear lin1{nullptr}, lin2{nullptr};

 private:
  std::string activation_;
};
TORCH_MODULE(MlpBlock);

// Multi-head attention with relative positions, over a [B, h, w, C] grid
// (a window, or the whole image for global layers).
class VisionAttentionImpl : public torch::nn::Module {
 public:
  VisionAttentionImpl(const SamVisionConfig& config, int64_t input_size);
  torch::Tensor forward(const torch::Tensor& x);  // [B, h, w, C] -> [B, h, w, C]
  torch::nn::Linear qkv{nullptr}, proj{nullptr};
  torch::Tensor rel_pos_h, rel_pos_w;  // [2 * input_size - 1, head_dim]

 private:
  int64_t heads_ = 1;
  double scale_ = 1.0;
  bool use_rel_pos_ = true;
};
TORCH_MODULE(VisionAttention);

class VisionLayerImpl : public torch::nn::Module {
 public:
  VisionLayerImpl(const SamVisionConfig& config, int64_t window_size);  // window_size 0: global
  torch::Tensor forward(const torch::Tensor& x);  // [B, g, g, C]
  torch::nn::LayerNorm layer_norm1{nullptr}, layer_norm2{nullptr};
  VisionAttention attn{nullptr};
  MlpBlock mlp{nullptr};

 private:
  int64_t window_size_ = 0;
};
TORCH_MODULE(VisionLayer);

class VisionNeckImpl : public torch::nn::Module {
 public:
  explicit VisionNeckImpl(const SamVisionConfig& config);
  torch::Tensor forward(const torch::Tensor& x);  // [B, g, g, C] -> [B, out, g, g]
  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr};
  ChannelsFirstLayerNorm layer_norm1{nullptr}, layer_norm2{nullptr};
};
TORCH_MODULE(VisionNeck);

class PatchEmbeddingsImpl : public torch::nn::Module {
 public:
  explicit PatchEmbeddingsImpl(const SamVisionConfig& config);
  torch::Tensor forward(const torch::Tensor& pixels);  // [B, 3, S, S] -> [B, g, g, C]
  torch::nn::Conv2d projection{nullptr};

 private:
  int64_t image_size_ = 0;
};
TORCH_MODULE(PatchEmbeddings);

class VisionEncoderImpl : public torch::nn::Module {
 public:
  explicit VisionEncoderImpl(const SamVisionConfig& config);
  torch::Tensor forward(const torch::Tensor& pixels);  // -> [B, output_channels, g, g]
  PatchEmbeddings patch_embed{nullptr};
  torch::Tensor pos_embed;  // [1, g, g, C]
  torch::nn::ModuleList layers{nullptr};
  VisionNeck neck{nullptr};
};
TORCH_MODULE(VisionEncoder);

// Random Fourier features of [0, 1] coordinates (SamPositionalEmbedding).
class PositionalEmbeddingImpl : public torch::nn::Module {
 public:
  explicit PositionalEmbeddingImpl(const SamVisionConfig& config);
  // The dense positional encoding of a g x g grid's cell centres: [1, 2 * num_pos_feats, g, g].
  torch::Tensor grid_encoding(int64_t grid);
  torch::Tensor positional_embedding;  // [2, num_pos_feats]
};
TORCH_MODULE(PositionalEmbedding);

// Only the promptless path is run; the other weights load and save.
class MaskEmbeddingImpl : public torch::nn::Module {
 public:
  explicit MaskEmbeddingImpl(const SamPromptEncoderConfig& config);
  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr}, conv3{nullptr};
  ChannelsFirstLayerNorm layer_norm1{nullptr}, layer_norm2{nullptr};
};
TORCH_MODULE(MaskEmbedding);

class PromptEncoderImpl : public torch::nn::Module {
 public:
  explicit PromptEncoderImpl(const SamPromptEncoderConfig& config);
  // no_mask_embed over the grid: [1, hidden, g, g].
  torch::Tensor dense_embeddings(int64_t grid) const;
  MaskEmbedding mask_embed{nullptr};
  torch::nn::Embedding no_mask_embed{nullptr}, not_a_point_embed{nullptr};
  torch::nn::ModuleList point_embed{nullptr};
};
TORCH_MODULE(PromptEncoder);

// softmax(q k^T / sqrt(d)) v over heads, with q/k/v projected down by `downsample_rate` (SamAttention).
class DecoderAttentionImpl : public torch::nn::Module {
 public:
  DecoderAttentionImpl(const SamMaskDecoderConfig& config, int64_t downsample_rate);
  // query [B, Nq, C], key / value [B, Nk, C] -> [B, Nq, C]
  torch::Tensor forward(const torch::Tensor& query, const torch::Tensor& key, const torch::Tensor& value);
  torch::nn::Linear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, out_proj{nullptr};

 private:
  int64_t heads_ = 1;
};
TORCH_MODULE(DecoderAttention);

class TwoWayAttentionBlockImpl : public torch::nn::Module {
 public:
  TwoWayAttentionBlockImpl(const SamMaskDecoderConfig& config, bool skip_first_layer_pe);
  // queries [B, N, C], keys [B, HW, C]; returns the new (queries, keys).
  std::pair<torch::Tensor, torch::Tensor> forward(torch::Tensor queries, torch::Tensor keys,
                                                  const torch::Tensor& query_pe, const torch::Tensor& key_pe);
  DecoderAttention self_attn{nullptr}, cross_attn_token_to_image{nullptr}, cross_attn_image_to_token{nullptr};
  torch::nn::LayerNorm layer_norm1{nullptr}, layer_norm2{nullptr}, layer_norm3{nullptr}, layer_norm4{nullptr};
  MlpBlock mlp{nullptr};

 private:
  bool skip_first_layer_pe_ = false;
};
TORCH_MODULE(TwoWayAttentionBlock);

class TwoWayTransformerImpl : public torch::nn::Module {
 public:
  explicit TwoWayTransformerImpl(const SamMaskDecoderConfig& config);
  // tokens [B, N, C]; image, image_pe [B, C, g, g] -> (queries [B, N, C], keys [B, g*g, C])
  std::pair<torch::Tensor, torch::Tensor> forward(const torch::Tensor& tokens, const torch::Tensor& image,
                                                  const torch::Tensor& image_pe);
  torch::nn::ModuleList layers{nullptr};
  DecoderAttention final_attn_token_to_image{nullptr};
  torch::nn::LayerNorm layer_norm_final_attn{nullptr};  // eps 1e-5 (nn.LayerNorm's default), as transformers
};
TORCH_MODULE(TwoWayTransformer);

// proj_in -> ReLU -> (layers -> ReLU)* -> proj_out (SamFeedForward).
class FeedForwardImpl : public torch::nn::Module {
 public:
  FeedForwardImpl(int64_t in, int64_t hidden, int64_t out, int64_t num_layers);
  torch::Tensor forward(const torch::Tensor& x);
  torch::nn::Linear proj_in{nullptr}, proj_out{nullptr};
  torch::nn::ModuleList layers{nullptr};
};
TORCH_MODULE(FeedForward);

struct DecoderOutput {
  torch::Tensor masks;          // [B, T, 4g, 4g] mask logits, one per mask token
  torch::Tensor iou;            // [B, T or 4] predicted mask quality
  torch::Tensor class_logits;   // [B, T, K + 1] (multi-class only)
};

class MaskDecoderImpl : public torch::nn::Module {
 public:
  explicit MaskDecoderImpl(const SamMaskDecoderConfig& config);
  // image [B, C, g, g], image_pe [1, C, g, g], dense [1, C, g, g].
  DecoderOutput forward(const torch::Tensor& image, const torch::Tensor& image_pe, const torch::Tensor& dense);
  // AutoMM's change (models/sam.py): `num_mask_tokens` tokens that all start as
  // the checkpoint's token 0, one hypernetwork MLP shared by them (the
  // checkpoint's first), and with num_classes > 1 a classifier Linear(hidden,
  // num_classes + 1) on the mask tokens.
  void adapt_for_semantic_segmentation(int64_t num_mask_tokens, int64_t num_classes);

  torch::nn::Embedding iou_token{nullptr}, mask_tokens{nullptr};
  TwoWayTransformer transformer{nullptr};
  torch::nn::ConvTranspose2d upscale_conv1{nullptr}, upscale_conv2{nullptr};
  ChannelsFirstLayerNorm upscale_layer_norm{nullptr};
  torch::nn::ModuleList output_hypernetworks_mlps{nullptr};
  FeedForward iou_prediction_head{nullptr};
  torch::nn::Linear output_classifier_mlps{nullptr};  // multi-class only

 private:
  int64_t hidden_ = 256;
};
TORCH_MODULE(MaskDecoder);

}  // namespace sam

struct SamOutput {
  torch::Tensor logits;        // [B, T, S, S]: mask logits at the input's size
  torch::Tensor class_logits;  // [B, T, K + 1] (multi-class only)
};

class SamModelImpl : public torch::nn::Module {
 public:
  explicit SamModelImpl(const SamConfig& config);
  // pixels [B, 3, S, S] (normalised) -> AutoMM's outputs.
  SamOutput forward(const torch::Tensor& pixels);
  // The stages, for parity tests: [B, 256, g, g]; [1, 256, g, g]; the decoder's outputs.
  torch::Tensor image_embeddings(const torch::Tensor& pixels);
  torch::Tensor image_positional_embeddings();
  sam::DecoderOutput decode(const torch::Tensor& image_embeddings);

  // Loads a Hugging Face SamModel state dict by name, all or nothing (the
  // prompt encoder's tied copy of the positional embedding is accepted and
  // skipped). A checkpoint made for another image size is resampled to this
  // model's grid: pos_embed bicubically, the global layers' relative position
  // tables linearly (as get_rel_pos interpolates them). Throws listing missing
  // and unexpected tensors.
  void load_hf_state_dict(std::map<std::string, torch::Tensor> weights);
  const SamConfig& config() const { return config_; }

  sam::PositionalEmbedding shared_image_embedding{nullptr};
  sam::VisionEncoder vision_encoder{nullptr};
  sam::PromptEncoder prompt_encoder{nullptr};
  sam::MaskDecoder mask_decoder{nullptr};

 private:
  SamConfig config_;
};
TORCH_MODULE(SamModel);

// "scratch:sam-tiny": a small SAM for offline use and tests, trained from random
// weights (vision width 96, 4 layers, 2 of them global, window 8; decoder
// width 64; 256 pixels unless model.sam.image_size says otherwise).
bool is_scratch_sam(const std::string& checkpoint_name);
SamConfig scratch_sam_config(const std::string& checkpoint_name);

// Random initialisation for a model trained from scratch: normal (std 0.02)
// matrices, zero biases, unit norms, the positional Gaussian N(0, 1).
void initialize_sam_weights(SamModelImpl& model);

}  // namespace automm
