// timm's ConvNeXt (timm/models/convnext.py, the default patch stem, channels-
// last LayerNorm + Linear MLP blocks, pool -> norm -> fc head). Names are
// timm's: stem.{0,1}, stages.N.downsample.{0,1} (N >= 1),
// stages.N.blocks.M.{conv_dw, norm, mlp.fc1, mlp.fc2, gamma}, head.norm, head.fc.
#include <string>
#include <utility>
#include <vector>

#include "models/image/image_encoder.h"
#include "models/image/timm_layers.h"
#include "models/layers.h"

namespace automm {
namespace {

constexpr double kNormEps = 1e-6;
constexpr double kLayerScaleInit = 1e-6;  // ls_init_value

// timm's Mlp: fc1 -> GELU (erf) -> fc2, on channels-last input.
class MlpImpl : public torch::nn::Module {
 public:
  MlpImpl(int64_t dim, int64_t hidden)
      : fc1_(register_module("fc1", torch::nn::Linear(dim, hidden))),
        fc2_(register_module("fc2", torch::nn::Linear(hidden, dim))) {}

  torch::Tensor forward(const torch::Tensor& x) {  // [..., dim] -> [..., dim]
    return apply_linear(*fc2_, apply_linear(*fc1_, x, kernels::Epilogue::kGelu));
  }

 private:
  torch::nn::Linear fc1_, fc2_;
};
TORCH_MODULE(Mlp);

// x + gamma * mlp(norm(dwconv7x7(x))), the MLP 4x wide.
class ConvNeXtBlockImpl : public torch::nn::Module {
 public:
  explicit ConvNeXtBlockImpl(int64_t dim)
      : conv_dw_(register_module("conv_dw",
                                 torch::nn::Conv2d(timm::conv_options(dim, dim, 7).groups(dim).bias(true)))),
        norm_(
            register_module("norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim}).eps(kNormEps)))),
        mlp_(register_module("mlp", Mlp(dim, 4 * dim))),
        gamma_(register_parameter("gamma", torch::full({dim}, kLayerScaleInit))) {}

  torch::Tensor forward(const torch::Tensor& x) {                // [B, dim, H, W] -> same
    auto y = conv_dw_->forward(x).permute({0, 2, 3, 1});         // [B, H, W, dim]
    y = mlp_->forward(apply_layer_norm(*norm_, y)).permute({0, 3, 1, 2});  // [B, dim, H, W]
    return x + y * gamma_.view({1, -1, 1, 1});
  }

 private:
  torch::nn::Conv2d conv_dw_;
  torch::nn::LayerNorm norm_;
  Mlp mlp_;
  torch::Tensor gamma_;
};
TORCH_MODULE(ConvNeXtBlock);

// downsample (LayerNorm2d -> 2x2 stride-2 conv; stage 0 has none: the stem
// already reduced by 4) -> blocks.
class ConvNeXtStageImpl : public torch::nn::Module {
 public:
  ConvNeXtStageImpl(int64_t in_dim, int64_t dim, int64_t depth, bool downsample) {
    if (downsample) {
      downsample_ = register_module(
          "downsample",
          torch::nn::Sequential(
              timm::LayerNorm2d(in_dim, kNormEps),
              torch::nn::Conv2d(torch::nn::Conv2dOptions(in_dim, dim, 2).stride(2).bias(true))));
    }
    for (int64_t i = 0; i < depth; ++i) blocks_->push_back(ConvNeXtBlock(dim));
    register_module("blocks", blocks_);
  }

  torch::Tensor forward(const torch::Tensor& x) {  // [B, in_dim, H, W] -> [B, dim, H', W']
    return blocks_->forward(downsample_ ? downsample_->forward(x) : x);
  }

 private:
  torch::nn::Sequential downsample_{nullptr};
  torch::nn::Sequential blocks_;
};
TORCH_MODULE(ConvNeXtStage);

class ConvNeXtImpl : public timm::ClassifierNetImpl {
 public:
  ConvNeXtImpl(std::string name, std::vector<int64_t> depths, std::vector<int64_t> dims, int64_t num_classes)
      : ClassifierNetImpl(std::move(name), "head.fc", num_classes), num_features_(dims.back()) {
    // 4x4 stride-4 patch embedding -> stem.0 (conv) / stem.1 (LayerNorm2d)
    stem_ = register_module(
        "stem",
        torch::nn::Sequential(torch::nn::Conv2d(torch::nn::Conv2dOptions(3, dims[0], 4).stride(4).bias(true)),
                              timm::LayerNorm2d(dims[0], kNormEps)));
    int64_t in_dim = dims[0];
    for (size_t i = 0; i < dims.size(); ++i) {
      stages_->push_back(ConvNeXtStage(in_dim, dims[i], depths[i], /*downsample=*/i > 0));
      in_dim = dims[i];
    }
    register_module("stages", stages_);
    // NormMlpClassifierHead: global pool -> norm -> flatten -> fc
    auto head = register_module("head", std::make_shared<torch::nn::Module>());
    head_norm_ = head->register_module("norm", timm::LayerNorm2d(num_features_, kNormEps));
    add_classifier(*head, num_features_);
    init_weights();
  }

  torch::Tensor forward_features(const torch::Tensor& images) override {
    auto x = stages_->forward(stem_->forward(images));          // [B, num_features, H/32, W/32]
    x = head_norm_->forward(x.mean({2, 3}, /*keepdim=*/true));  // [B, num_features, 1, 1]
    return x.flatten(1);                                        // [B, num_features]
  }

  int64_t num_features() const override { return num_features_; }

 private:
  // timm's _init_weights: conv and Linear weights ~ trunc_normal(std 0.02)
  // within +-2 (torch's trunc_normal_ default bounds), biases 0.
  void init_weights() {
    torch::NoGradGuard no_grad;
    for (auto& module : modules(/*include_self=*/false)) {
      torch::Tensor weight, bias;
      if (auto* conv = module->as<torch::nn::Conv2d>()) {
        weight = conv->weight;
        bias = conv->bias;
      } else if (auto* linear = module->as<torch::nn::Linear>()) {
        weight = linear->weight;
        bias = linear->bias;
      } else {
        continue;
      }
      weight.normal_(0.0, 0.02).clamp_(-2.0, 2.0);  // 2 is 100 std away: the clamp never binds in practice
      if (bias.defined()) bias.zero_();
    }
  }

  int64_t num_features_;
  torch::nn::Sequential stem_{nullptr};
  torch::nn::Sequential stages_;
  timm::LayerNorm2d head_norm_{nullptr};
};

ImageModelEntry convnext_entry(const std::string& name, std::vector<int64_t> depths,
                               std::vector<int64_t> dims, double crop_pct) {
  ImageModelEntry entry;
  entry.make = [name, depths, dims](int64_t num_classes) -> std::shared_ptr<ImageEncoderImpl> {
    return std::make_shared<ConvNeXtImpl>(name, depths, dims, num_classes);
  };
  entry.info = timm::imagenet_info(crop_pct, "bicubic");
  return entry;
}

}  // namespace

ImageModelFamily convnext_models() {
  // Default tags: convnext_{tiny,small}.in12k_ft_in1k (crop 0.95),
  // convnext_base.fb_in22k_ft_in1k (crop 0.875).
  return {
      {"convnext_tiny", convnext_entry("convnext_tiny", {3, 3, 9, 3}, {96, 192, 384, 768}, 0.95)},
      {"convnext_small", convnext_entry("convnext_small", {3, 3, 27, 3}, {96, 192, 384, 768}, 0.95)},
      {"convnext_base", convnext_entry("convnext_base", {3, 3, 27, 3}, {128, 256, 512, 1024}, 0.875)},
  };
}

}  // namespace automm
