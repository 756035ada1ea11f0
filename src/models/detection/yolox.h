// mmdet's YOLOX (models/backbones/csp_darknet.py, necks/yolox_pafpn.py,
// dense_heads/yolox_head.py) as AutoMM's configs build it: CSPDarknet with a
// Focus stem and SPP, the PAFPN neck, the decoupled head. Parameter names are
// mmdet's, so a YOLOX checkpoint's state_dict loads by name.
#pragma once

#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

#include "models/detection/conv_module.h"
#include "models/detection/csp_darknet.h"
#include "models/detection/detector.h"
#include "models/detection/yolox_head_ops.h"

namespace automm::detection {

// YOLOXPAFPN (necks/yolox_pafpn.py) on C3, C4, C5 (in_channels[0..2]):
// top-down R5 = reduce_layers.0(C5), T4 = top_down_blocks.0(cat[up2(R5), C4]),
// R4 = reduce_layers.1(T4), T3 = top_down_blocks.1(cat[up2(R4), C3]); bottom-up
// N4 = bottom_up_blocks.0(cat[downsamples.0(T3), R4]), N5 =
// bottom_up_blocks.1(cat[downsamples.1(N4), R5]); out_convs.{0,1,2} (1x1 ->
// out_channels) on T3, N4, N5. CSPLayers without identity; only downsamples
// and the CSP blocks' 3x3 convs are depthwise-separable when depthwise.
class YoloxPafpnImpl : public torch::nn::Module {
 public:
  YoloxPafpnImpl(const std::vector<int64_t>& in_channels, int64_t out_channels, int64_t num_csp_blocks,
                 bool depthwise);
  std::vector<torch::Tensor> forward(const std::vector<torch::Tensor>& inputs);
  torch::nn::ModuleList reduce_layers{nullptr}, top_down_blocks{nullptr}, downsamples{nullptr},
      bottom_up_blocks{nullptr}, out_convs{nullptr};

 private:
  std::vector<ConvModule> reduce_;
  std::vector<CspLayer> top_down_, bottom_up_;
  std::vector<torch::nn::AnyModule> downsample_;
  std::vector<ConvModule> out_;
};
TORCH_MODULE(YoloxPafpn);

// The layers of YOLOXHead (dense_heads/yolox_head.py) per level l:
// multi_level_cls_convs.l / multi_level_reg_convs.l (2 stacked 3x3 convs,
// depthwise-separable when depthwise), multi_level_conv_cls.l (1x1 -> C),
// multi_level_conv_reg.l (1x1 -> 4) and multi_level_conv_obj.l (1x1 -> 1) on
// the reg branch.
class YoloxHeadImpl : public torch::nn::Module {
 public:
  YoloxHeadImpl(int64_t num_classes, int64_t in_channels, int64_t feat_channels, bool depthwise);
  // Neck features (strides 8, 16, 32) -> raw cls / reg / obj maps.
  YoloxHeadOutputs forward(const std::vector<torch::Tensor>& features);
  torch::nn::ModuleList multi_level_cls_convs{nullptr}, multi_level_reg_convs{nullptr},
      multi_level_conv_cls{nullptr}, multi_level_conv_reg{nullptr}, multi_level_conv_obj{nullptr};
  std::vector<torch::nn::Sequential> cls_convs, reg_convs;
  std::vector<torch::nn::Conv2d> conv_cls, conv_reg, conv_obj;
};
TORCH_MODULE(YoloxHead);

// The YOLOX network; the arithmetic on its outputs is yolox_head_ops.h.
class YoloxDetectorImpl : public DetectorImpl {
 public:
  explicit YoloxDetectorImpl(const DetectorSpec& spec);
  // images [B, 3, H, W] (raw BGR 0-255, H and W multiples of 32).
  YoloxHeadOutputs forward(const torch::Tensor& images);
  std::map<std::string, torch::Tensor> losses(const torch::Tensor& images,
                                              const BoxTargets& targets) override;
  std::vector<Detections> detect(const torch::Tensor& images, const PostProcessOptions& options) override;
  std::vector<std::string> head_patterns() const override;
  std::vector<std::string> class_dependent_parameters() const override;
  const DetectorSpec& spec() const override { return spec_; }
  void set_use_l1(bool on) override { spec_.use_l1 = on; }
  // Sets the cls and obj convs' biases to -log((1 - 0.01) / 0.01), as
  // YOLOXHead.init_weights (also done by the constructor).
  void init_prior_bias();

  // Registered under mmdet's names: backbone.*, neck.*, bbox_head.*.
  CspDarknet backbone{nullptr};
  YoloxPafpn neck{nullptr};
  YoloxHead bbox_head{nullptr};

 private:
  DetectorSpec spec_;
};

}  // namespace automm::detection
