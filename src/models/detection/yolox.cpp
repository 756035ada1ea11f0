// mmdet's YOLOX network: CSPDarknet (csp_darknet.cpp), YOLOXPAFPN and the
// YOLOXHead layers (yolox.h).
#include "models/detection/yolox.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace automm::detection {

YoloxPafpnImpl::YoloxPafpnImpl(const std::vector<int64_t>& in, int64_t out_channels, int64_t num_csp_blocks,
                               bool depthwise) {
  if (in.size() != 3)
    throw std::invalid_argument("YOLOXPAFPN takes 3 input levels, got " + std::to_string(in.size()));
  reduce_layers = register_module("reduce_layers", torch::nn::ModuleList());
  top_down_blocks = register_module("top_down_blocks", torch::nn::ModuleList());
  downsamples = register_module("downsamples", torch::nn::ModuleList());
  bottom_up_blocks = register_module("bottom_up_blocks", torch::nn::ModuleList());
  out_convs = register_module("out_convs", torch::nn::ModuleList());
  // Top-down, from the coarsest level: index 0 reduces C5, index 1 reduces T4.
  for (size_t level = in.size() - 1; level > 0; --level) {
    reduce_.push_back(ConvModule(ConvModuleOptions(in[level], in[level - 1], 1)));
    reduce_layers->push_back(reduce_.back());
    top_down_.push_back(CspLayer(2 * in[level - 1], in[level - 1], num_csp_blocks, false, depthwise));
    top_down_blocks->push_back(top_down_.back());
  }
  for (size_t level = 0; level + 1 < in.size(); ++level) {
    downsample_.push_back(
        make_any_conv(ConvModuleOptions(in[level], in[level], 3).with_stride(2), depthwise));
    downsamples->push_back(downsample_.back().ptr());
    bottom_up_.push_back(CspLayer(2 * in[level], in[level + 1], num_csp_blocks, false, depthwise));
    bottom_up_blocks->push_back(bottom_up_.back());
  }
  for (int64_t channels : in) {
    out_.push_back(ConvModule(ConvModuleOptions(channels, out_channels, 1)));
    out_convs->push_back(out_.back());
  }
}

std::vector<torch::Tensor> YoloxPafpnImpl::forward(const std::vector<torch::Tensor>& inputs) {
  const size_t levels = inputs.size();
  auto upsample = [](const torch::Tensor& x) {
    return torch::nn::functional::interpolate(x, torch::nn::functional::InterpolateFuncOptions()
                                                     .scale_factor(std::vector<double>{2.0, 2.0})
                                                     .mode(torch::kNearest));
  };
  // inner[l]: the top-down feature of level l; the coarsest holds the reduced C5.
  std::vector<torch::Tensor> inner(levels);
  inner[levels - 1] = inputs[levels - 1];
  for (size_t level = levels - 1; level > 0; --level) {
    const size_t i = levels - 1 - level;
    inner[level] = reduce_[i](inner[level]);
    inner[level - 1] = top_down_[i](torch::cat({upsample(inner[level]), inputs[level - 1]}, 1));
  }
  std::vector<torch::Tensor> outs = {inner[0]};
  for (size_t level = 0; level + 1 < levels; ++level) {
    auto down = downsample_[level].forward(outs.back());
    outs.push_back(bottom_up_[level](torch::cat({down, inner[level + 1]}, 1)));
  }
  for (size_t level = 0; level < levels; ++level) outs[level] = out_[level](outs[level]);
  return outs;
}

YoloxHeadImpl::YoloxHeadImpl(int64_t num_classes, int64_t in_channels, int64_t feat_channels,
                             bool depthwise) {
  multi_level_cls_convs = register_module("multi_level_cls_convs", torch::nn::ModuleList());
  multi_level_reg_convs = register_module("multi_level_reg_convs", torch::nn::ModuleList());
  multi_level_conv_cls = register_module("multi_level_conv_cls", torch::nn::ModuleList());
  multi_level_conv_reg = register_module("multi_level_conv_reg", torch::nn::ModuleList());
  multi_level_conv_obj = register_module("multi_level_conv_obj", torch::nn::ModuleList());
  auto stacked = [&] {
    torch::nn::Sequential convs;
    for (int64_t i = 0; i < 2; ++i)  // stacked_convs 2
      convs->push_back(make_any_conv(
          ConvModuleOptions(i == 0 ? in_channels : feat_channels, feat_channels, 3), depthwise));
    return convs;
  };
  auto predictor = [&](int64_t out) {
    return torch::nn::Conv2d(torch::nn::Conv2dOptions(feat_channels, out, 1));
  };
  for (int level = 0; level < 3; ++level) {  // strides 8, 16, 32
    cls_convs.push_back(stacked());
    multi_level_cls_convs->push_back(cls_convs.back());
    reg_convs.push_back(stacked());
    multi_level_reg_convs->push_back(reg_convs.back());
    conv_cls.push_back(predictor(num_classes));
    multi_level_conv_cls->push_back(conv_cls.back());
    conv_reg.push_back(predictor(4));
    multi_level_conv_reg->push_back(conv_reg.back());
    conv_obj.push_back(predictor(1));
    multi_level_conv_obj->push_back(conv_obj.back());
  }
}

YoloxHeadOutputs YoloxHeadImpl::forward(const std::vector<torch::Tensor>& features) {
  if (features.size() != cls_convs.size())
    throw std::invalid_argument("YOLOXHead takes " + std::to_string(cls_convs.size()) +
                                " feature levels, got " + std::to_string(features.size()));
  YoloxHeadOutputs outputs;
  outputs.strides = {8, 16, 32};
  for (size_t level = 0; level < features.size(); ++level) {
    auto cls_feat = cls_convs[level]->forward(features[level]);
    auto reg_feat = reg_convs[level]->forward(features[level]);
    outputs.cls.push_back(conv_cls[level](cls_feat));
    outputs.reg.push_back(conv_reg[level](reg_feat));
    outputs.obj.push_back(conv_obj[level](reg_feat));
  }
  return outputs;
}

YoloxDetectorImpl::YoloxDetectorImpl(const DetectorSpec& spec) : spec_(spec) {
  if (spec.num_classes < 1)
    throw std::invalid_argument("YOLOX needs at least one class, got num_classes " +
                                std::to_string(spec.num_classes));
  if (spec.neck_channels < 1)
    throw std::invalid_argument("YOLOX needs positive neck_channels, got " +
                                std::to_string(spec.neck_channels));
  backbone = register_module("backbone", CspDarknet(spec.deepen, spec.widen, spec.depthwise));
  // AutoMM's configs give the neck num_csp_blocks 1, 1, 1, 2, 3, 4 for nano..x:
  // round(3 * deepen), as the backbone's last stage.
  const int64_t neck_blocks = std::max<int64_t>(python_round(3.0 * spec.deepen), 1);
  neck = register_module(
      "neck", YoloxPafpn(backbone->out_channels(), spec.neck_channels, neck_blocks, spec.depthwise));
  bbox_head = register_module(
      "bbox_head", YoloxHead(spec.num_classes, spec.neck_channels, spec.neck_channels, spec.depthwise));
  init_prior_bias();
}

void YoloxDetectorImpl::init_prior_bias() {
  torch::NoGradGuard no_grad;
  const double bias = -std::log((1.0 - 0.01) / 0.01);  // mmcv's bias_init_with_prob(0.01)
  for (size_t level = 0; level < bbox_head->conv_cls.size(); ++level) {
    bbox_head->conv_cls[level]->bias.fill_(bias);
    bbox_head->conv_obj[level]->bias.fill_(bias);
  }
}

YoloxHeadOutputs YoloxDetectorImpl::forward(const torch::Tensor& images) {
  if (images.dim() != 4 || images.size(1) != 3)
    throw std::invalid_argument(
        "YOLOX takes images [batch, 3, height, width], got " + std::to_string(images.dim()) + "-d input " +
        (images.dim() >= 2 ? "with " + std::to_string(images.size(1)) + " channels" : ""));
  if (images.size(2) % 32 != 0 || images.size(3) % 32 != 0)
    throw std::invalid_argument("YOLOX needs height and width padded to multiples of 32, got " +
                                std::to_string(images.size(2)) + " x " + std::to_string(images.size(3)));
  return bbox_head(neck(backbone(images)));
}

std::map<std::string, torch::Tensor> YoloxDetectorImpl::losses(const torch::Tensor& images,
                                                               const BoxTargets& targets) {
  return yolox_losses(forward(images), targets, spec_.use_l1);
}

std::vector<Detections> YoloxDetectorImpl::detect(const torch::Tensor& images,
                                                  const PostProcessOptions& options) {
  return yolox_post_process(forward(images), options);
}

// AutoMM's registered head patterns (MMDetAutoModelForObjectDetection) that
// occur in YOLOX's names; "bbox_head.cls_convs" does not (mmdet says
// multi_level_cls_convs), so the stacked convs keep the base learning rate.
std::vector<std::string> YoloxDetectorImpl::head_patterns() const {
  return {"bbox_head.multi_level_conv_cls", "bbox_head.multi_level_conv_reg",
          "bbox_head.multi_level_conv_obj"};
}

std::vector<std::string> YoloxDetectorImpl::class_dependent_parameters() const {
  return {"bbox_head.multi_level_conv_cls"};
}

}  // namespace automm::detection
