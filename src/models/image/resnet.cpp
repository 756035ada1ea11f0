// timm's ResNet (timm/models/resnet.py, the default 'b' variant = torchvision's
// ResNet v1.5: 7x7 stem, stride on the 3x3 conv of bottlenecks, 1x1 conv
// downsample). Parameter and buffer names are timm's: conv1, bn1,
// layer{1-4}.{block}.{conv1,bn1,conv2,bn2[,conv3,bn3]}, .downsample.{0,1}, fc.
#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "models/image/image_encoder.h"
#include "models/image/timm_layers.h"

namespace automm {
namespace {

torch::Tensor relu(const torch::Tensor& x) { return torch::relu(x); }

// BasicBlock (two 3x3 convs) or Bottleneck (1x1 reduce, 3x3 with the stride,
// 1x1 expand x4): conv-bn steps with ReLU between them, then the shortcut is
// added and a last ReLU applied.
class ResidualBlockImpl : public torch::nn::Module {
 public:
  ResidualBlockImpl(bool bottleneck, int64_t in_channels, int64_t planes, int64_t stride) {
    const int64_t out_channels = planes * (bottleneck ? 4 : 1);
    std::vector<torch::nn::Conv2dOptions> convs;
    if (bottleneck) {
      convs = {timm::conv_options(in_channels, planes, 1), timm::conv_options(planes, planes, 3, stride),
               timm::conv_options(planes, out_channels, 1)};
    } else {
      convs = {timm::conv_options(in_channels, planes, 3, stride),
               timm::conv_options(planes, out_channels, 3)};
    }
    for (size_t i = 0; i < convs.size(); ++i) {
      const std::string index = std::to_string(i + 1);
      const bool last = i + 1 == convs.size();
      steps_.push_back(timm::register_conv_bn(*this, "conv" + index, "bn" + index, convs[i],
                                              last ? timm::Activation() : relu));
    }
    if (stride != 1 || in_channels != out_channels) {
      // timm's downsample_conv: Sequential(1x1 conv with the stride, BatchNorm) -> downsample.0 / .1
      downsample_ = register_module(
          "downsample",
          torch::nn::Sequential(torch::nn::Conv2d(timm::conv_options(in_channels, out_channels, 1, stride)),
                                torch::nn::BatchNorm2d(out_channels)));
    }
  }

  // The last BatchNorm's scale, which timm zero-initializes (zero_init_last).
  torch::Tensor& last_bn_weight() { return steps_.back().bn->weight; }

  torch::Tensor forward(const torch::Tensor& x) {  // [B, in, H, W] -> [B, out, H / stride, W / stride]
    auto y = x;
    for (const auto& step : steps_) y = step(y);
    return torch::relu(y + (downsample_ ? downsample_->forward(x) : x));
  }

 private:
  std::vector<timm::ConvBnAct> steps_;
  torch::nn::Sequential downsample_{nullptr};
};
TORCH_MODULE(ResidualBlock);

class ResNetImpl : public timm::ClassifierNetImpl {
 public:
  ResNetImpl(std::string name, bool bottleneck, std::vector<int64_t> depths, int64_t num_classes)
      : ClassifierNetImpl(std::move(name), "fc", num_classes), num_features_(512 * (bottleneck ? 4 : 1)) {
    stem_ = timm::register_conv_bn(*this, "conv1", "bn1",
                                   torch::nn::Conv2dOptions(3, 64, 7).stride(2).padding(3).bias(false), relu);
    int64_t in_channels = 64;
    const std::vector<int64_t> planes = {64, 128, 256, 512};
    for (size_t stage = 0; stage < depths.size(); ++stage) {
      torch::nn::Sequential layer;
      for (int64_t block = 0; block < depths[stage]; ++block) {
        const int64_t stride = stage > 0 && block == 0 ? 2 : 1;
        layer->push_back(ResidualBlock(bottleneck, in_channels, planes[stage], stride));
        in_channels = planes[stage] * (bottleneck ? 4 : 1);
      }
      layers_.push_back(register_module("layer" + std::to_string(stage + 1), layer));
    }
    add_classifier(*this, num_features_);
    init_weights();
  }

  torch::Tensor forward_features(const torch::Tensor& images) override {
    auto x = stem_(images);                                                    // [B, 64, H/2, W/2]
    // Two-element sizes: a traced graph records them as given, and ONNX wants one per spatial dim.
    x = torch::max_pool2d(x, /*kernel_size=*/{3, 3}, /*stride=*/{2, 2}, /*padding=*/{1, 1});  // [B, 64, H/4, W/4]
    for (auto& layer : layers_) x = layer->forward(x);  // [B, num_features, H/32, W/32]
    return x.mean({2, 3});                              // [B, num_features]
  }

  int64_t num_features() const override { return num_features_; }

 private:
  // timm's ResNet.init_weights: Kaiming-normal convs (fan_out, ReLU gain),
  // BatchNorm 1 / 0 with each residual branch's last scale zeroed, so every
  // block starts as the identity; the Linear keeps torch's default.
  void init_weights() {
    torch::NoGradGuard no_grad;
    for (auto& module : modules(/*include_self=*/false)) {
      if (auto* conv = module->as<torch::nn::Conv2d>()) {
        torch::nn::init::kaiming_normal_(conv->weight, 0.0, torch::kFanOut, torch::kReLU);
      }
      if (auto* block = module->as<ResidualBlock>()) block->last_bn_weight().zero_();
    }
  }

  int64_t num_features_;
  timm::ConvBnAct stem_;
  std::vector<torch::nn::Sequential> layers_;
};

ImageModelEntry resnet_entry(const std::string& name, bool bottleneck, std::vector<int64_t> depths) {
  ImageModelEntry entry;
  entry.make = [name, bottleneck, depths](int64_t num_classes) -> std::shared_ptr<ImageEncoderImpl> {
    return std::make_shared<ResNetImpl>(name, bottleneck, depths, num_classes);
  };
  // Default tags resnet{18,34,50}.a1_in1k, resnet{101,152}.a1h_in1k: timm's _rcfg.
  entry.info = timm::imagenet_info(0.95, "bicubic");
  return entry;
}

}  // namespace

ImageModelFamily resnet_models() {
  return {
      {"resnet18", resnet_entry("resnet18", false, {2, 2, 2, 2})},
      {"resnet34", resnet_entry("resnet34", false, {3, 4, 6, 3})},
      {"resnet50", resnet_entry("resnet50", true, {3, 4, 6, 3})},
      {"resnet101", resnet_entry("resnet101", true, {3, 4, 23, 3})},
      {"resnet152", resnet_entry("resnet152", true, {3, 8, 36, 3})},
  };
}

}  // namespace automm
