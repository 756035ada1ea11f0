// Pieces the timm convolutional backbones (resnet.cpp, convnext.cpp,
// mobilenetv3.cpp) share: timm's conv padding rule, conv -> BatchNorm ->
// activation steps registered under timm's names, LayerNorm2d, timm's
// pretrained_cfg defaults, and a base class that owns the classifier, the
// num_classes = 0 behaviour and the all-or-nothing timm state dict loader.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <string>

#include "models/image/image_encoder.h"

namespace automm {
namespace timm {

using Activation = std::function<torch::Tensor(const torch::Tensor&)>;  // empty: identity

// timm's get_padding: ((stride - 1) + (kernel - 1)) / 2, which keeps the size
// at stride 1 and halves it (rounding up) at stride 2 for odd kernels.
int64_t get_padding(int64_t kernel, int64_t stride);

// Conv2d options with timm's padding and no bias (timm convs before a
// BatchNorm carry none); chain .groups(...) / .bias(true) where timm does.
torch::nn::Conv2dOptions conv_options(int64_t in, int64_t out, int64_t kernel, int64_t stride = 1);

// conv -> BatchNorm2d (eps 1e-5, momentum 0.1: torch's defaults, which timm
// keeps for these models) -> activation, registered on its owner as
// `conv_name` / `bn_name` (timm: conv1 / bn1, conv_pw / bn1, ...).
struct ConvBnAct {
  torch::nn::Conv2d conv{nullptr};
  torch::nn::BatchNorm2d bn{nullptr};
  Activation act;

  torch::Tensor operator()(const torch::Tensor& x) const;  // [B, in, H, W] -> [B, out, H', W']
};
ConvBnAct register_conv_bn(torch::nn::Module& owner, const std::string& conv_name, const std::string& bn_name,
                           const torch::nn::Conv2dOptions& options, Activation act);

// timm.layers.LayerNorm2d: LayerNorm over the channels of an NCHW tensor
// (parameters weight / bias [channels]).
class LayerNorm2dImpl : public torch::nn::Module {
 public:
  explicit LayerNorm2dImpl(int64_t channels, double eps = 1e-6);
  torch::Tensor forward(const torch::Tensor& x);  // [B, C, H, W] -> [B, C, H, W]

 private:
  torch::Tensor weight_, bias_;
  double eps_;
};
TORCH_MODULE(LayerNorm2d);

// pretrained_cfg of a timm tag: 224 px, ImageNet mean / std.
ImageModelInfo imagenet_info(double crop_pct, const std::string& interpolation);

// A timm classification network: subclasses build their trunk, call
// add_classifier where timm registers its classifier (a Linear, absent for
// num_classes = 0) and implement forward_features (pooled pre-logits).
class ClassifierNetImpl : public ImageEncoderImpl {
 public:
  torch::Tensor forward(const torch::Tensor& images) override;  // [B, 3, H, W] -> [B, num_classes]
  // include_buffers: running statistics load too; num_batches_tracked is
  // accepted and ignored; classifier tensors are ignored without a classifier.
  void load_timm_state_dict(const StateDict& weights) override;
  int64_t num_classes() const { return num_classes_; }

 protected:
  // model_name for messages ("resnet50"); classifier_name: the Linear's full
  // timm name ("fc", "head.fc", "classifier").
  ClassifierNetImpl(std::string model_name, std::string classifier_name, int64_t num_classes);
  // Registers the Linear(in_features, num_classes) on `parent` under the last
  // component of classifier_name; nothing when num_classes = 0.
  void add_classifier(torch::nn::Module& parent, int64_t in_features);
  const std::string& model_name() const { return model_name_; }

 private:
  std::string model_name_, classifier_name_;
  int64_t num_classes_;
  torch::nn::Linear classifier_{nullptr};
};

}  // namespace timm
}  // namespace automm
