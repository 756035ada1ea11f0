// mmdet's CSPDarknet backbone (models/backbones/csp_darknet.py, P5 arch) and
// its CSPLayer (models/layers/csp_layer.py), as YOLOX uses them: BN eps 1e-3,
// momentum 0.03, Swish. Submodule names are mmdet's (stem.conv, stageK.i,
// main_conv / short_conv / final_conv / blocks.j.conv1 / conv2).
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <vector>

#include "models/detection/conv_module.h"

namespace automm::detection {

// Python's round() (half to even), which mmdet uses for block counts:
// round(9 * 0.5) == 4.
int64_t python_round(double value);

// Focus: space-to-depth [B, C, H, W] -> [B, 4C, H/2, W/2] in mmdet's order
// (top-left, bottom-left, top-right, bottom-right), then `conv` (3x3).
class FocusImpl : public torch::nn::Module {
 public:
  FocusImpl(int64_t in_channels, int64_t out_channels);
  torch::Tensor forward(const torch::Tensor& x);
  ConvModule conv{nullptr};
};
TORCH_MODULE(Focus);

// SPPBottleneck: `conv1` (1x1, C -> C/2), max pools k 5, 9, 13 (stride 1, same
// size), concat [x, pools...], `conv2` (1x1 -> out). Plain convs even when the
// network is depthwise.
class SppBottleneckImpl : public torch::nn::Module {
 public:
  SppBottleneckImpl(int64_t in_channels, int64_t out_channels);
  torch::Tensor forward(const torch::Tensor& x);
  ConvModule conv1{nullptr}, conv2{nullptr};
};
TORCH_MODULE(SppBottleneck);

// DarknetBottleneck (expansion 1.0 inside CSPLayer): `conv1` 1x1 ConvModule,
// `conv2` 3x3 (depthwise-separable when depthwise), plus the input when
// add_identity and the channel counts agree.
class DarknetBottleneckImpl : public torch::nn::Module {
 public:
  DarknetBottleneckImpl(int64_t in_channels, int64_t out_channels, bool add_identity, bool depthwise);
  torch::Tensor forward(const torch::Tensor& x);
  ConvModule conv1{nullptr};
  torch::nn::AnyModule conv2;

 private:
  bool add_identity_;
};
TORCH_MODULE(DarknetBottleneck);

// CSPLayer: final_conv(cat[blocks(main_conv(x)), short_conv(x)]), mid channels
// int(out * 0.5); only the blocks' conv2 is depthwise-separable.
class CspLayerImpl : public torch::nn::Module {
 public:
  CspLayerImpl(int64_t in_channels, int64_t out_channels, int64_t num_blocks, bool add_identity,
               bool depthwise);
  torch::Tensor forward(const torch::Tensor& x);
  ConvModule main_conv{nullptr}, short_conv{nullptr}, final_conv{nullptr};
  torch::nn::Sequential blocks{nullptr};
};
TORCH_MODULE(CspLayer);

// CSPDarknet P5: `stem` then stage1..4, each a Sequential of a 3x3 stride-2
// conv (depthwise-separable when depthwise), for stage4 an SPPBottleneck, and a
// CSPLayer. Channels int(c * widen) for (64, 128, 256, 512, 1024), blocks
// max(round(n * deepen), 1) for (3, 9, 9, 3).
class CspDarknetImpl : public torch::nn::Module {
 public:
  CspDarknetImpl(double deepen, double widen, bool depthwise);
  // [B, 3, H, W] -> stage2, stage3, stage4 outputs (strides 8, 16, 32).
  std::vector<torch::Tensor> forward(const torch::Tensor& x);
  // The output channels of stage2..4 (the neck's in_channels).
  std::vector<int64_t> out_channels() const { return out_channels_; }
  Focus stem{nullptr};
  std::vector<torch::nn::Sequential> stages;  // stage1..stage4

 private:
  std::vector<int64_t> out_channels_;
};
TORCH_MODULE(CspDarknet);

// A ConvModule or DepthwiseSeparableConvModule (depthwise), unregistered, for
// Sequential containers.
torch::nn::AnyModule make_any_conv(const ConvModuleOptions& options, bool depthwise);

}  // namespace automm::detection
