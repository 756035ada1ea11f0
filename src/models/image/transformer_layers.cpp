// Formulas follow timm/layers/patch_embed.py, timm/layers/mlp.py and the
// Attention / WindowAttention classes of timm/models/vision_transformer.py and
// swin_transformer.py (timm 0.9).
#include "models/image/transformer_layers.h"

#include <cmath>
#include <stdexcept>

#include "models/text/hf_common.h"

namespace automm {
namespace timm_layers {

PatchEmbedImpl::PatchEmbedImpl(int64_t embed_dim, int64_t patch_size, bool with_norm, double norm_eps)
    : patch_size_(patch_size) {
  proj_ = register_module(
      "proj", torch::nn::Conv2d(torch::nn::Conv2dOptions(3, embed_dim, patch_size).stride(patch_size)));
  if (with_norm) norm_ = register_module("norm", make_norm(embed_dim, norm_eps));
}

torch::Tensor PatchEmbedImpl::forward(const torch::Tensor& images) {
  const int64_t height = images.size(2), width = images.size(3);
  if (height % patch_size_ != 0 || width % patch_size_ != 0) {
    throw std::invalid_argument("image size " + std::to_string(height) + "x" + std::to_string(width) +
                                " is not a multiple of the patch size " + std::to_string(patch_size_) +
                                "; resize the images (model.timm_image.train_transforms / image_size)");
  }
  // A stride-p p x p convolution is a matmul over the patches' pixels: for
  // inference, one packed matmul (kernels/packed_linear.h) runs it several times
  // faster than oneDNN's convolution at batch 1.
  const int64_t batch = images.size(0), channels = images.size(1), p = patch_size_;
  const auto rows = images.reshape({batch, channels, height / p, p, width / p, p})
                        .permute({0, 2, 4, 1, 3, 5})
                        .reshape({batch, height / p, width / p, channels * p * p});  // (c, kh, kw) order
  auto patches = kernels::packed_linear(rows, proj_->weight.view({proj_->weight.size(0), -1}), proj_->bias);
  if (!patches.defined()) patches = proj_->forward(images).permute({0, 2, 3, 1});  // [batch, H / p, W / p, dim]
  if (norm_) patches = apply_layer_norm(*norm_, patches);
  return patches;
}

MlpImpl::MlpImpl(int64_t dim, int64_t hidden) {
  fc1_ = register_module("fc1", make_linear(dim, hidden));
  fc2_ = register_module("fc2", make_linear(hidden, dim));
}

torch::Tensor MlpImpl::forward(const torch::Tensor& x, const torch::Tensor& residual) {
  return apply_linear(*fc2_, apply_linear(*fc1_, x, kernels::Epilogue::kGelu), kernels::Epilogue::kNone, residual);
}

AttentionImpl::AttentionImpl(int64_t dim, int64_t num_heads) : num_heads_(num_heads) {
  if (num_heads <= 0 || dim % num_heads != 0) {
    throw std::invalid_argument("attention width " + std::to_string(dim) + " is not divisible into " +
                                std::to_string(num_heads) + " heads");
  }
  qkv_ = register_module("qkv", make_linear(dim, 3 * dim));
  proj_ = register_module("proj", make_linear(dim, dim));
}

torch::Tensor AttentionImpl::forward(const torch::Tensor& x, const torch::Tensor& bias, const torch::Tensor& residual) {
  const int64_t batch = x.size(0), tokens = x.size(1), dim = x.size(2);
  const int64_t head_dim = dim / num_heads_;
  // [batch, tokens, 3 * dim] -> [3, batch, heads, tokens, head_dim]
  auto qkv = apply_linear(*qkv_, x).reshape({batch, tokens, 3, num_heads_, head_dim}).permute({2, 0, 3, 1, 4});
  auto q = qkv[0] * (1.0 / std::sqrt(static_cast<double>(head_dim)));
  auto scores = torch::matmul(q, qkv[1].transpose(-2, -1));  // [batch, heads, tokens, tokens]
  if (bias.defined()) {
    const int64_t groups = bias.size(0);
    scores = (scores.view({batch / groups, groups, num_heads_, tokens, tokens}) + bias)
                 .view({batch, num_heads_, tokens, tokens});
  }
  auto context = torch::matmul(torch::softmax(scores, -1), qkv[2]);  // [batch, heads, tokens, head_dim]
  return apply_linear(*proj_, context.transpose(1, 2).reshape({batch, tokens, dim}), kernels::Epilogue::kNone,
                      residual);
}

torch::nn::LayerNorm make_norm(int64_t dim, double eps) { return hf::make_layer_norm(dim, eps); }

torch::nn::Linear make_linear(int64_t in, int64_t out, bool bias) {
  // timm truncates at +-2 (absolute), which a 0.02-std normal never reaches in practice.
  return hf::make_linear(in, out, 0.02, bias);
}

void throw_no_classifier(const std::string& model_name) {
  throw std::logic_error(model_name +
                         " was built with num_classes = 0 and has no classifier; call "
                         "forward_features() for the pooled features, or build it with num_classes > 0");
}

void load_timm_weights(torch::nn::Module& model, const StateDict& weights,
                       const std::function<bool(const std::string&)>& is_ignored,
                       const std::string& model_name, const std::string& model_description) {
  hf::StateDictMapping mapping;
  mapping.is_ignored = is_ignored;
  mapping.model_description = model_description;
  mapping.loader_name = "load_timm_state_dict(" + model_name + ")";
  mapping.mismatch_hint =
      "Check that the checkpoint is timm's " + model_name + " (timm >= 0.9 parameter names).";
  hf::load_state_dict_by_name(model, weights, mapping);
}

void check_images(const torch::Tensor& images, const std::string& model_name) {
  if (!images.defined() || images.dim() != 4 || images.size(1) != 3 || !images.is_floating_point()) {
    throw std::invalid_argument(model_name + " expects float images [batch, 3, height, width], got " +
                                (images.defined() ? hf::shape_string(images.sizes()) + " " +
                                                        std::string(c10::toString(images.scalar_type()))
                                                  : std::string("an undefined tensor")));
  }
}

}  // namespace timm_layers
}  // namespace automm
