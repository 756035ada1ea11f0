// mmcv's ConvModule and DepthwiseSeparableConvModule (conv_module.h).
#include "models/detection/conv_module.h"

#include <string>

namespace automm::detection {

torch::Tensor apply_activation(Activation activation, const torch::Tensor& x) {
  switch (activation) {
    case Activation::kSwish: return x * torch::sigmoid(x);
    case Activation::kLeakyRelu: return torch::leaky_relu(x, 0.1);
    case Activation::kNone: return x;
  }
  return x;
}

ConvModuleImpl::ConvModuleImpl(const ConvModuleOptions& o) : activation_(o.activation) {
  const int64_t padding = o.padding < 0 ? o.kernel_size / 2 : o.padding;
  conv = register_module("conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(o.in_channels, o.out_channels, o.kernel_size)
                                                       .stride(o.stride)
                                                       .padding(padding)
                                                       .groups(o.groups)
                                                       .bias(false)));
  bn = register_module("bn", torch::nn::BatchNorm2d(
                                 torch::nn::BatchNorm2dOptions(o.out_channels).eps(o.bn_eps).momentum(o.bn_momentum)));
}

torch::Tensor ConvModuleImpl::forward(const torch::Tensor& x) { return apply_activation(activation_, bn(conv(x))); }

DepthwiseSeparableConvModuleImpl::DepthwiseSeparableConvModuleImpl(const ConvModuleOptions& o) {
  auto depthwise = o;
  depthwise.out_channels = o.in_channels;
  depthwise.groups = o.in_channels;
  auto pointwise = o;
  pointwise.kernel_size = 1;
  pointwise.stride = 1;
  pointwise.padding = 0;
  pointwise.groups = 1;
  depthwise_conv = register_module("depthwise_conv", ConvModule(depthwise));
  pointwise_conv = register_module("pointwise_conv", ConvModule(pointwise));
}

torch::Tensor DepthwiseSeparableConvModuleImpl::forward(const torch::Tensor& x) {
  return pointwise_conv(depthwise_conv(x));
}

torch::nn::AnyModule make_conv(torch::nn::Module& parent, const std::string& name, const ConvModuleOptions& options,
                               bool depthwise) {
  if (depthwise) return torch::nn::AnyModule(parent.register_module(name, DepthwiseSeparableConvModule(options)));
  return torch::nn::AnyModule(parent.register_module(name, ConvModule(options)));
}

}  // namespace automm::detection
