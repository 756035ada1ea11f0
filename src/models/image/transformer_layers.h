// Layers timm's vision transformers share, under timm's parameter names
// (timm/layers: PatchEmbed, Mlp, and the fused-qkv self-attention of
// vision_transformer.Attention and swin_transformer.WindowAttention), and the
// timm state dict loader built on hf::load_state_dict_by_name. vit.cpp and
// swin.cpp use them; throw_no_classifier serves every timm image model.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <string>

#include "automm/weights_io.h"

namespace automm {
namespace timm_layers {

// timm.layers.PatchEmbed: "proj", a patch_size x patch_size conv with stride
// patch_size, and an optional LayerNorm "norm" over the channels (Swin has one,
// ViT does not).
class PatchEmbedImpl : public torch::nn::Module {
 public:
  PatchEmbedImpl(int64_t embed_dim, int64_t patch_size, bool with_norm, double norm_eps);
  // images [batch, 3, H, W] -> patches [batch, H / patch, W / patch, embed_dim]
  // (NHWC, timm's output_fmt='NHWC'). H and W must be multiples of the patch
  // size: timm's strict_img_size would refuse the rest, and flooring would
  // silently drop pixels.
  torch::Tensor forward(const torch::Tensor& images);
  int64_t patch_size() const { return patch_size_; }

 private:
  int64_t patch_size_;
  torch::nn::Conv2d proj_{nullptr};
  torch::nn::LayerNorm norm_{nullptr};
};
TORCH_MODULE(PatchEmbed);

// timm.layers.Mlp: fc1 -> GELU (erf, nn.GELU's default) -> fc2.
class MlpImpl : public torch::nn::Module {
 public:
  MlpImpl(int64_t dim, int64_t hidden);
  // [..., dim] -> [..., dim], plus `residual` when defined (fused into fc2 for inference).
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& residual = {});

 private:
  torch::nn::Linear fc1_{nullptr}, fc2_{nullptr};
};
TORCH_MODULE(Mlp);

// Multi-head self-attention with one fused projection "qkv" (dim -> 3 * dim,
// rows q, k, v in that order, then heads) and an output projection "proj".
// Scores are scaled by head_dim^-0.5 on q before the product, as timm does.
class AttentionImpl : public torch::nn::Module {
 public:
  AttentionImpl(int64_t dim, int64_t num_heads);
  // x [batch, tokens, dim] -> [batch, tokens, dim]. `bias`, when defined, is
  // added to the scores before the softmax: shape [groups, heads or 1, tokens,
  // tokens] against the scores viewed [batch / groups, groups, heads, tokens,
  // tokens], so Swin can pass one bias per window (batch = images * windows,
  // groups = windows) and a plain bias uses groups = 1. `residual`, when
  // defined, is added to the output (fused into proj for inference).
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& bias = {}, const torch::Tensor& residual = {});
  int64_t num_heads() const { return num_heads_; }

 private:
  int64_t num_heads_;
  torch::nn::Linear qkv_{nullptr}, proj_{nullptr};
};
TORCH_MODULE(Attention);

// A LayerNorm with timm's default init (weight 1, bias 0) and the given eps.
torch::nn::LayerNorm make_norm(int64_t dim, double eps);

// timm's init for the linear layers of its transformers: weights
// ~ trunc_normal(std=0.02) (approximated by a normal clamped at 2 std), bias 0.
torch::nn::Linear make_linear(int64_t in, int64_t out, bool bias = true);

// Thrown by forward() of a model built with num_classes = 0.
[[noreturn]] void throw_no_classifier(const std::string& model_name);

// Copies `weights` (timm's names) into `model`'s parameters, all or nothing, via
// hf::load_state_dict_by_name. is_ignored(name) drops checkpoint tensors the
// model has no use for (buffers, the classifier of a model built without one).
// Throws std::runtime_error naming `model_name` and listing missing and
// unexpected tensors, or the tensor whose shape does not fit.
void load_timm_weights(torch::nn::Module& model, const StateDict& weights,
                       const std::function<bool(const std::string&)>& is_ignored,
                       const std::string& model_name, const std::string& model_description);

// Checks images is [batch, 3, H, W] floating; throws naming the model otherwise.
void check_images(const torch::Tensor& images, const std::string& model_name);

}  // namespace timm_layers
}  // namespace automm
