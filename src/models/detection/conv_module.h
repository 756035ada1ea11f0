// mmcv's ConvModule (conv -> bn -> activation) and
// DepthwiseSeparableConvModule, with mmcv's submodule names, as mmdet's YOLOX
// and YOLOv3 use them.
#pragma once

#include <cstdint>

#include <torch/torch.h>

namespace automm::detection {

enum class Activation { kNone, kSwish, kLeakyRelu };  // LeakyReLU slope 0.1 (YOLOv3)

struct ConvModuleOptions {
  ConvModuleOptions(int64_t in, int64_t out, int64_t kernel) : in_channels(in), out_channels(out), kernel_size(kernel) {}
  int64_t in_channels, out_channels, kernel_size;
  int64_t stride = 1;
  int64_t padding = -1;  // -1: kernel_size / 2
  int64_t groups = 1;
  double bn_eps = 1e-3, bn_momentum = 0.03;  // YOLOX's; YOLOv3 uses 1e-5 / 0.1
  Activation activation = Activation::kSwish;
  ConvModuleOptions& with_stride(int64_t v) { stride = v; return *this; }
  ConvModuleOptions& with_groups(int64_t v) { groups = v; return *this; }
  ConvModuleOptions& with_padding(int64_t v) { padding = v; return *this; }
  ConvModuleOptions& with_norm(double eps, double momentum) { bn_eps = eps; bn_momentum = momentum; return *this; }
  ConvModuleOptions& with_activation(Activation v) { activation = v; return *this; }
};

torch::Tensor apply_activation(Activation activation, const torch::Tensor& x);

// `conv` (Conv2d without bias) and `bn` (BatchNorm2d), then the activation.
class ConvModuleImpl : public torch::nn::Module {
 public:
  explicit ConvModuleImpl(const ConvModuleOptions& options);
  torch::Tensor forward(const torch::Tensor& x);
  torch::nn::Conv2d conv{nullptr};
  torch::nn::BatchNorm2d bn{nullptr};

 private:
  Activation activation_;
};
TORCH_MODULE(ConvModule);

// `depthwise_conv` (k x k, groups = in) then `pointwise_conv` (1 x 1), each a
// ConvModule with its activation.
class DepthwiseSeparableConvModuleImpl : public torch::nn::Module {
 public:
  explicit DepthwiseSeparableConvModuleImpl(const ConvModuleOptions& options);
  torch::Tensor forward(const torch::Tensor& x);
  ConvModule depthwise_conv{nullptr}, pointwise_conv{nullptr};
};
TORCH_MODULE(DepthwiseSeparableConvModule);

// A ConvModule or, when depthwise, a DepthwiseSeparableConvModule, registered
// under `name` on `parent` (mmdet picks the class by use_depthwise).
torch::nn::AnyModule make_conv(torch::nn::Module& parent, const std::string& name, const ConvModuleOptions& options,
                               bool depthwise);

}  // namespace automm::detection
