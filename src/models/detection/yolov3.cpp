// mmdet's YOLOv3 with the MobileNetV2 backbone (yolov3.h).
#include "models/detection/yolov3.h"

#include <array>
#include <stdexcept>
#include <string>

#include "models/detection/conv_module.h"

namespace automm::detection {
namespace {

constexpr int64_t kNeckChannels = 96;  // neck out_channels and head in/out channels, every level

// mmcv ConvModule as YOLOv3 configures it: BN (eps 1e-5, momentum 0.1), LeakyReLU(0.1).
ConvModuleOptions yolo_conv(int64_t in, int64_t out, int64_t kernel) {
  return ConvModuleOptions(in, out, kernel).with_norm(1e-5, 0.1).with_activation(Activation::kLeakyRelu);
}

// mmdet's InvertedResidual (layers/inverted_residual.py): `expand_conv` 1x1
// (absent when the expand ratio is 1), `depthwise_conv` 3x3 with the stride,
// `linear_conv` 1x1 without activation; identity shortcut when stride 1 and
// in == out.
class InvertedResidualImpl : public torch::nn::Module {
 public:
  InvertedResidualImpl(int64_t in, int64_t out, int64_t expand_ratio, int64_t stride)
      : shortcut_(stride == 1 && in == out) {
    const int64_t mid = in * expand_ratio;  // int(round(in * expand_ratio)) for integer ratios
    if (expand_ratio != 1) expand_conv = register_module("expand_conv", ConvModule(yolo_conv(in, mid, 1)));
    depthwise_conv = register_module("depthwise_conv",
                                     ConvModule(yolo_conv(mid, mid, 3).with_stride(stride).with_groups(mid)));
    linear_conv =
        register_module("linear_conv", ConvModule(yolo_conv(mid, out, 1).with_activation(Activation::kNone)));
  }

  torch::Tensor forward(const torch::Tensor& x) {
    auto out = expand_conv.is_empty() ? x : expand_conv(x);
    out = linear_conv(depthwise_conv(out));
    return shortcut_ ? x + out : out;
  }

  ConvModule expand_conv{nullptr}, depthwise_conv{nullptr}, linear_conv{nullptr};

 private:
  bool shortcut_;
};
TORCH_MODULE(InvertedResidual);

// mmdet's MobileNetV2 (widen_factor 1): conv1, layer1..layer7, conv2; returns
// layer3 (32 channels, stride 8), layer5 (96, /16), layer7 (320, /32).
class MobileNetV2Impl : public torch::nn::Module {
 public:
  MobileNetV2Impl() {
    // (expand ratio, out channels, blocks, stride of the first block)
    constexpr std::array<std::array<int64_t, 4>, 7> kArch = {{{1, 16, 1, 1},
                                                              {6, 24, 2, 2},
                                                              {6, 32, 3, 2},
                                                              {6, 64, 4, 2},
                                                              {6, 96, 3, 1},
                                                              {6, 160, 3, 2},
                                                              {6, 320, 1, 1}}};
    conv1 = register_module("conv1", ConvModule(yolo_conv(3, 32, 3).with_stride(2)));
    int64_t in = 32;
    for (size_t i = 0; i < kArch.size(); ++i) {
      const auto& [expand, out, blocks, stride] = kArch[i];
      torch::nn::Sequential layer;
      for (int64_t j = 0; j < blocks; ++j) {
        layer->push_back(InvertedResidual(in, out, expand, j == 0 ? stride : 1));
        in = out;
      }
      layers.push_back(register_module("layer" + std::to_string(i + 1), layer));
    }
    conv2 = register_module("conv2", ConvModule(yolo_conv(in, 1280, 1)));
  }

  std::vector<torch::Tensor> forward(const torch::Tensor& images) {
    auto x = conv1(images);
    std::vector<torch::Tensor> outs;
    for (size_t i = 0; i < layers.size(); ++i) {
      x = layers[i]->forward(x);
      if (i == 2 || i == 4 || i == 6) outs.push_back(x);  // out_indices (2, 4, 6)
    }
    // mmdet runs conv2 although nothing reads it; in training that moves its
    // BatchNorm statistics, which a checkpoint keeps. In eval mode it changes nothing.
    if (is_training()) conv2(x);
    return outs;
  }

  ConvModule conv1{nullptr}, conv2{nullptr};
  std::vector<torch::nn::Sequential> layers;
};
TORCH_MODULE(MobileNetV2);

// mmdet's DetectionBlock: 1x1 (out), 3x3 (2 out), 1x1, 3x3, 1x1.
class DetectionBlockImpl : public torch::nn::Module {
 public:
  DetectionBlockImpl(int64_t in, int64_t out) {
    conv1 = register_module("conv1", ConvModule(yolo_conv(in, out, 1)));
    conv2 = register_module("conv2", ConvModule(yolo_conv(out, 2 * out, 3)));
    conv3 = register_module("conv3", ConvModule(yolo_conv(2 * out, out, 1)));
    conv4 = register_module("conv4", ConvModule(yolo_conv(out, 2 * out, 3)));
    conv5 = register_module("conv5", ConvModule(yolo_conv(2 * out, out, 1)));
  }
  torch::Tensor forward(const torch::Tensor& x) { return conv5(conv4(conv3(conv2(conv1(x))))); }
  ConvModule conv1{nullptr}, conv2{nullptr}, conv3{nullptr}, conv4{nullptr}, conv5{nullptr};
};
TORCH_MODULE(DetectionBlock);

// YOLOV3Neck(num_scales=3, in_channels=[320, 96, 32], out_channels=[96, 96, 96]).
class Yolov3NeckImpl : public torch::nn::Module {
 public:
  Yolov3NeckImpl() {
    detect1 = register_module("detect1", DetectionBlock(320, kNeckChannels));
    conv1 = register_module("conv1", ConvModule(yolo_conv(kNeckChannels, kNeckChannels, 1)));
    detect2 = register_module("detect2", DetectionBlock(96 + kNeckChannels, kNeckChannels));
    conv2 = register_module("conv2", ConvModule(yolo_conv(kNeckChannels, kNeckChannels, 1)));
    detect3 = register_module("detect3", DetectionBlock(32 + kNeckChannels, kNeckChannels));
  }

  // feats: backbone outputs at strides 8, 16, 32; returns strides 32, 16, 8.
  std::vector<torch::Tensor> forward(const std::vector<torch::Tensor>& feats) {
    namespace F = torch::nn::functional;
    const auto up =
        F::InterpolateFuncOptions().scale_factor(std::vector<double>{2.0, 2.0}).mode(torch::kNearest);
    const auto out32 = detect1(feats[2]);
    const auto out16 = detect2(torch::cat({F::interpolate(conv1(out32), up), feats[1]}, 1));
    const auto out8 = detect3(torch::cat({F::interpolate(conv2(out16), up), feats[0]}, 1));
    return {out32, out16, out8};
  }

  DetectionBlock detect1{nullptr}, detect2{nullptr}, detect3{nullptr};
  ConvModule conv1{nullptr}, conv2{nullptr};
};
TORCH_MODULE(Yolov3Neck);

// YOLOV3Head's layers: per level `convs_bridge.i` (3x3 ConvModule) and
// `convs_pred.i` (1x1 Conv2d with bias, 3 * (5 + C) outputs).
class Yolov3HeadImpl : public torch::nn::Module {
 public:
  explicit Yolov3HeadImpl(int64_t num_classes) {
    convs_bridge = register_module("convs_bridge", torch::nn::ModuleList());
    convs_pred = register_module("convs_pred", torch::nn::ModuleList());
    for (size_t l = 0; l < kYolov3Strides.size(); ++l) {
      convs_bridge->push_back(ConvModule(yolo_conv(kNeckChannels, kNeckChannels, 3)));
      convs_pred->push_back(
          torch::nn::Conv2d(torch::nn::Conv2dOptions(kNeckChannels, 3 * (5 + num_classes), 1)));
    }
  }

  std::vector<torch::Tensor> forward(const std::vector<torch::Tensor>& feats) {
    std::vector<torch::Tensor> outs;
    for (size_t l = 0; l < feats.size(); ++l)
      outs.push_back(convs_pred[l]->as<torch::nn::Conv2dImpl>()->forward(
          convs_bridge[l]->as<ConvModuleImpl>()->forward(feats[l])));
    return outs;
  }

  torch::nn::ModuleList convs_bridge{nullptr}, convs_pred{nullptr};
};
TORCH_MODULE(Yolov3Head);

}  // namespace

struct Yolov3DetectorImpl::Parts {
  MobileNetV2 backbone{nullptr};
  Yolov3Neck neck{nullptr};
  Yolov3Head bbox_head{nullptr};
};

Yolov3DetectorImpl::Yolov3DetectorImpl(const DetectorSpec& spec)
    : spec_(spec), parts_(std::make_shared<Parts>()) {
  if (spec.num_classes < 1)
    throw std::invalid_argument("YOLOv3: num_classes must be at least 1, got " +
                                std::to_string(spec.num_classes));
  parts_->backbone = register_module("backbone", MobileNetV2());
  parts_->neck = register_module("neck", Yolov3Neck());
  parts_->bbox_head = register_module("bbox_head", Yolov3Head(spec.num_classes));
}

std::vector<torch::Tensor> Yolov3DetectorImpl::forward(const torch::Tensor& images) {
  if (images.dim() != 4 || images.size(1) != 3 || images.size(2) % 32 != 0 || images.size(3) % 32 != 0 ||
      images.size(2) == 0 || images.size(3) == 0) {
    std::string shape;
    for (int64_t d = 0; d < images.dim(); ++d) shape += (d > 0 ? ", " : "") + std::to_string(images.size(d));
    throw std::invalid_argument(
        "YOLOv3: images must be [B, 3, H, W] with H and W positive multiples of 32, got [" + shape + "]");
  }
  return parts_->bbox_head(parts_->neck(parts_->backbone(images)));
}

std::map<std::string, torch::Tensor> Yolov3DetectorImpl::losses(const torch::Tensor& images,
                                                                const BoxTargets& targets) {
  return yolov3_losses(forward(images), targets);
}

std::vector<Detections> Yolov3DetectorImpl::detect(const torch::Tensor& images,
                                                   const PostProcessOptions& options) {
  torch::NoGradGuard no_grad;
  return yolov3_post_process(forward(images), options);
}

std::vector<std::string> Yolov3DetectorImpl::head_patterns() const { return {"bbox_head.convs_pred"}; }

std::vector<std::string> Yolov3DetectorImpl::class_dependent_parameters() const {
  return {"bbox_head.convs_pred"};
}

}  // namespace automm::detection
