// timm's MobileNetV3 (timm/models/mobilenetv3.py + _efficientnet_blocks.py):
// conv_stem / bn1 (hard-swish), blocks.<stage>.<block> built from timm's arch
// def, then the "efficient head": global pool -> conv_head (1x1 conv with bias)
// -> hard-swish -> classifier. Block parameter names are timm's:
//   ds: conv_dw, bn1, conv_pw, bn2
//   ir: conv_pw, bn1, conv_dw, bn2, se.conv_reduce, se.conv_expand, conv_pwl, bn3
//   cn: conv, bn1
#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "models/image/image_encoder.h"
#include "models/image/timm_layers.h"

namespace automm {
namespace {

torch::Tensor relu(const torch::Tensor& x) { return torch::relu(x); }
torch::Tensor hard_swish(const torch::Tensor& x) { return torch::hardswish(x); }

// timm's make_divisible: round to a multiple of `divisor`, never more than 10% down.
int64_t make_divisible(double value, int64_t divisor = 8) {
  int64_t rounded = std::max(divisor, static_cast<int64_t>(value + divisor / 2.0) / divisor * divisor);
  if (rounded < 0.9 * value) rounded += divisor;
  return rounded;
}

// One entry of timm's arch def, e.g. 'ir_r3_k5_s2_e3_c40_se0.25_nre'.
struct BlockSpec {
  enum Kind { kDepthwiseSeparable, kInvertedResidual, kConvBnAct } kind;  // ds / ir / cn
  int64_t repeats, kernel, stride;  // r, k, s (the stride applies to the first repeat)
  double expansion;                 // e: mid channels = make_divisible(in * e)
  int64_t out_channels;             // c
  bool squeeze_excite;              // se0.25: reduced channels = make_divisible(mid * 0.25)
  bool relu;                        // nre: ReLU instead of the model's hard-swish
};

// _gen_mobilenet_v3('mobilenetv3_large_100'), channel multiplier 1.0; one inner list per stage.
const std::vector<std::vector<BlockSpec>>& large_100_arch() {
  using B = BlockSpec;
  static const std::vector<std::vector<BlockSpec>> arch = {
      {{B::kDepthwiseSeparable, 1, 3, 1, 1.0, 16, false, true}},  // ds_r1_k3_s1_e1_c16_nre
      {{B::kInvertedResidual, 1, 3, 2, 4.0, 24, false, true},     // ir_r1_k3_s2_e4_c24_nre
       {B::kInvertedResidual, 1, 3, 1, 3.0, 24, false, true}},    // ir_r1_k3_s1_e3_c24_nre
      {{B::kInvertedResidual, 3, 5, 2, 3.0, 40, true, true}},     // ir_r3_k5_s2_e3_c40_se0.25_nre
      {{B::kInvertedResidual, 1, 3, 2, 6.0, 80, false, false},    // ir_r1_k3_s2_e6_c80
       {B::kInvertedResidual, 1, 3, 1, 2.5, 80, false, false},    // ir_r1_k3_s1_e2.5_c80
       {B::kInvertedResidual, 2, 3, 1, 2.3, 80, false, false}},   // ir_r2_k3_s1_e2.3_c80
      {{B::kInvertedResidual, 2, 3, 1, 6.0, 112, true, false}},   // ir_r2_k3_s1_e6_c112_se0.25
      {{B::kInvertedResidual, 3, 5, 2, 6.0, 160, true, false}},   // ir_r3_k5_s2_e6_c160_se0.25
      {{B::kConvBnAct, 1, 1, 1, 1.0, 960, false, false}},         // cn_r1_k1_s1_c960
  };
  return arch;
}

// timm's SqueezeExcite: x * hard_sigmoid(conv_expand(relu(conv_reduce(mean_hw(x))))).
class SqueezeExciteImpl : public torch::nn::Module {
 public:
  SqueezeExciteImpl(int64_t channels, int64_t reduced)
      : conv_reduce_(register_module("conv_reduce",
                                     torch::nn::Conv2d(torch::nn::Conv2dOptions(channels, reduced, 1)))),
        conv_expand_(register_module("conv_expand",
                                     torch::nn::Conv2d(torch::nn::Conv2dOptions(reduced, channels, 1)))) {}

  torch::Tensor forward(const torch::Tensor& x) {   // [B, C, H, W] -> same
    auto scale = x.mean({2, 3}, /*keepdim=*/true);  // [B, C, 1, 1]
    scale = conv_expand_->forward(torch::relu(conv_reduce_->forward(scale)));
    return x * torch::hardsigmoid(scale);
  }

 private:
  torch::nn::Conv2d conv_reduce_, conv_expand_;
};
TORCH_MODULE(SqueezeExcite);

// Any of the three block kinds: conv-bn(-act) steps with the squeeze-excite
// after the depthwise step, plus the identity shortcut where shapes allow.
class MobileBlockImpl : public torch::nn::Module {
 public:
  MobileBlockImpl(const BlockSpec& spec, int64_t in_channels, int64_t stride) {
    const timm::Activation act = spec.relu ? timm::Activation(relu) : timm::Activation(hard_swish);
    const int64_t out = spec.out_channels;
    int64_t se_channels = in_channels;  // the depthwise width the squeeze-excite sees
    switch (spec.kind) {
      case BlockSpec::kDepthwiseSeparable:
        // depthwise kxk (stride) -> act -> pointwise 1x1 without activation
        add(timm::register_conv_bn(
            *this, "conv_dw", "bn1",
            timm::conv_options(in_channels, in_channels, spec.kernel, stride).groups(in_channels), act));
        add_squeeze_excite(spec, se_channels);
        add(timm::register_conv_bn(*this, "conv_pw", "bn2", timm::conv_options(in_channels, out, 1),
                                   nullptr));
        has_skip_ = stride == 1 && in_channels == out;
        break;
      case BlockSpec::kInvertedResidual: {
        // pointwise expand -> act -> depthwise kxk (stride) -> act -> SE -> linear pointwise project
        const int64_t mid = make_divisible(static_cast<double>(in_channels) * spec.expansion);
        se_channels = mid;
        add(timm::register_conv_bn(*this, "conv_pw", "bn1", timm::conv_options(in_channels, mid, 1), act));
        add(timm::register_conv_bn(*this, "conv_dw", "bn2",
                                   timm::conv_options(mid, mid, spec.kernel, stride).groups(mid), act));
        add_squeeze_excite(spec, se_channels);
        add(timm::register_conv_bn(*this, "conv_pwl", "bn3", timm::conv_options(mid, out, 1), nullptr));
        has_skip_ = stride == 1 && in_channels == out;
        break;
      }
      case BlockSpec::kConvBnAct:
        add(timm::register_conv_bn(*this, "conv", "bn1",
                                   timm::conv_options(in_channels, out, spec.kernel, stride), act));
        has_skip_ = false;  // timm's ConvBnAct defaults to skip=False
        break;
    }
  }

  torch::Tensor forward(const torch::Tensor& x) {  // [B, in, H, W] -> [B, out, H / stride, W / stride]
    auto y = x;
    for (const auto& step : steps_) y = step(y);
    return has_skip_ ? y + x : y;
  }

 private:
  void add(timm::ConvBnAct step) {
    steps_.push_back([step](const torch::Tensor& x) { return step(x); });
  }
  void add_squeeze_excite(const BlockSpec& spec, int64_t channels) {
    if (!spec.squeeze_excite) return;
    // se_from_exp: reduced width from the expanded channels, rd_round_fn = round_channels
    auto se = register_module("se", SqueezeExcite(channels, make_divisible(channels * 0.25)));
    steps_.push_back([se](const torch::Tensor& x) { return se->forward(x); });
  }

  std::vector<std::function<torch::Tensor(const torch::Tensor&)>> steps_;
  bool has_skip_ = false;
};
TORCH_MODULE(MobileBlock);

class MobileNetV3Impl : public timm::ClassifierNetImpl {
 public:
  MobileNetV3Impl(std::string name, const std::vector<std::vector<BlockSpec>>& arch, int64_t num_classes)
      : ClassifierNetImpl(std::move(name), "classifier", num_classes) {
    constexpr int64_t kStem = 16, kHead = 1280;
    stem_ = timm::register_conv_bn(*this, "conv_stem", "bn1", timm::conv_options(3, kStem, 3, 2), hard_swish);
    int64_t in_channels = kStem;
    torch::nn::ModuleList blocks;  // Sequentials cannot nest in a Sequential in libtorch
    for (const auto& stage_specs : arch) {
      torch::nn::Sequential stage;
      for (const auto& spec : stage_specs) {
        for (int64_t r = 0; r < spec.repeats; ++r) {
          stage->push_back(MobileBlock(spec, in_channels, r == 0 ? spec.stride : 1));
          in_channels = spec.out_channels;
        }
      }
      blocks->push_back(stage);
      stages_.push_back(stage);
    }
    register_module("blocks", blocks);  // blocks.<stage>.<block>
    conv_head_ =
        register_module("conv_head", torch::nn::Conv2d(torch::nn::Conv2dOptions(in_channels, kHead, 1)));
    num_features_ = kHead;
    add_classifier(*this, num_features_);
    init_weights();
  }

  torch::Tensor forward_features(const torch::Tensor& images) override {
    auto x = stem_(images);                                // [B, 16, H/2, W/2]
    for (auto& stage : stages_) x = stage->forward(x);     // [B, 960, H/32, W/32]
    x = x.mean({2, 3}, /*keepdim=*/true);                  // pooled before the head conv: [B, 960, 1, 1]
    return hard_swish(conv_head_->forward(x)).flatten(1);  // [B, 1280]
  }

  int64_t num_features() const override { return num_features_; }

 private:
  // timm's _init_weight_goog: conv ~ N(0, sqrt(2 / fan_out)) with fan_out =
  // k * k * out / groups, Linear ~ U(+-1 / sqrt(out)), biases 0, BatchNorm 1 / 0.
  void init_weights() {
    torch::NoGradGuard no_grad;
    for (auto& module : modules(/*include_self=*/false)) {
      if (auto* conv = module->as<torch::nn::Conv2d>()) {
        const auto& w = conv->weight;  // [out, in / groups, k, k]
        const double fan_out =
            static_cast<double>(w.size(0) * w.size(2) * w.size(3) / conv->options.groups());
        conv->weight.normal_(0.0, std::sqrt(2.0 / fan_out));
        if (conv->bias.defined()) conv->bias.zero_();
      } else if (auto* linear = module->as<torch::nn::Linear>()) {
        const double range = 1.0 / std::sqrt(static_cast<double>(linear->weight.size(0)));
        linear->weight.uniform_(-range, range);
        linear->bias.zero_();
      }
    }
  }

  timm::ConvBnAct stem_;
  std::vector<torch::nn::Sequential> stages_;
  torch::nn::Conv2d conv_head_{nullptr};
  int64_t num_features_ = 0;
};

}  // namespace

ImageModelFamily mobilenetv3_models() {
  ImageModelEntry large;
  large.make = [](int64_t num_classes) -> std::shared_ptr<ImageEncoderImpl> {
    return std::make_shared<MobileNetV3Impl>("mobilenetv3_large_100", large_100_arch(), num_classes);
  };
  large.info = timm::imagenet_info(0.875, "bicubic");  // default tag mobilenetv3_large_100.ra_in1k
  return {{"mobilenetv3_large_100", large}};
}

}  // namespace automm
