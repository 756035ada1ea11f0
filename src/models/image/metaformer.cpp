// timm's MetaFormer (timm/models/metaformer.py): stem -> stages (optional
// downsampling, MetaFormerBlocks) -> head (global average pool, head.norm,
// MlpHead head.fc). Only the CAFormer / ConvFormer configuration is built:
// LayerNorm(2d)NoBias block norms, StarReLU MLPs without bias, res_scale in
// stages 2 and 3, no layer_scale; dropout and drop path are inference no-ops
// here (timm's defaults are 0).
#include "models/image/metaformer.h"

#include <cmath>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "models/layers.h"
#include "models/text/hf_common.h"

namespace automm {
namespace {

constexpr double kNormEps = 1e-6;         // every MetaFormer norm (timm's NoBias variants set it explicitly)
constexpr int64_t kHeadDim = 32;          // Attention's head_dim
constexpr int64_t kMlpRatio = 4;          // block MLP and MlpHead hidden width
constexpr int64_t kSepConvExpansion = 2;  // SepConv's expansion_ratio
constexpr double kInitStd = 0.02;         // _init_weights: trunc_normal_(std=.02) for Conv2d / Linear

using Layer = std::function<torch::Tensor(const torch::Tensor&)>;

bool starts_with(const std::string& text, const std::string& prefix) {
  return text.compare(0, prefix.size(), prefix) == 0;
}

// timm's LayerNorm / LayerNorm2d and their NoBias variants: normalizes the
// channels of [..., C] (channels_first = false) or [B, C, H, W] (true).
class NormImpl : public torch::nn::Module {
 public:
  NormImpl(int64_t dim, bool channels_first, bool bias) : channels_first_(channels_first) {
    weight_ = register_parameter("weight", torch::ones({dim}));
    if (bias) bias_ = register_parameter("bias", torch::zeros({dim}));
  }

  torch::Tensor forward(const torch::Tensor& x) {
    auto y = channels_first_ ? x.permute({0, 2, 3, 1}) : x;  // [B, H, W, C]
    y = layer_norm_in_weight_dtype(y, weight_, bias_, kNormEps);
    return channels_first_ ? y.permute({0, 3, 1, 2}) : y;
  }

 private:
  bool channels_first_;
  torch::Tensor weight_, bias_;  // bias_ undefined for the NoBias variants
};
TORCH_MODULE(Norm);

// StarReLU: scale * relu(x)^2 + bias, with learnable scalars scale [1] and bias [1].
class StarReLUImpl : public torch::nn::Module {
 public:
  StarReLUImpl() {
    scale_ = register_parameter("scale", torch::ones({1}));
    bias_ = register_parameter("bias", torch::zeros({1}));
  }
  torch::Tensor forward(const torch::Tensor& x) { return scale_ * torch::relu(x).pow(2) + bias_; }

 private:
  torch::Tensor scale_, bias_;
};
TORCH_MODULE(StarReLU);

// Scale (res_scale1 / res_scale2): x * scale per channel, scale [dim].
class ScaleImpl : public torch::nn::Module {
 public:
  ScaleImpl(int64_t dim, bool channels_first) : channels_first_(channels_first) {
    scale_ = register_parameter("scale", torch::ones({dim}));  // res_scale_init_value 1.0
  }
  torch::Tensor forward(const torch::Tensor& x) {
    return x * (channels_first_ ? scale_.view({-1, 1, 1}) : scale_);
  }

 private:
  bool channels_first_;
  torch::Tensor scale_;
};
TORCH_MODULE(Scale);

// timm's Mlp "linear_layer" registered on `owner` as `name`: a bias-free 1x1
// Conv2d on [B, C, H, W] (use_conv, the SepConv stages) or Linear on [B, N, C].
Layer register_pointwise(torch::nn::Module& owner, const std::string& name, int64_t in, int64_t out,
                         bool channels_first, bool bias) {
  if (channels_first) {
    auto conv =
        owner.register_module(name, torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, 1).bias(bias)));
    return [conv](const torch::Tensor& x) { return conv->forward(x); };
  }
  auto linear = owner.register_module(name, torch::nn::Linear(torch::nn::LinearOptions(in, out).bias(bias)));
  return [linear](const torch::Tensor& x) { return apply_linear(*linear, x); };
}

// SepConv: pwconv1 (dim -> 2 dim) -> act1 StarReLU -> dwconv 7x7 -> act2
// (Identity) -> pwconv2 (2 dim -> dim), all convs bias-free. [B, dim, H, W] -> same.
class SepConvImpl : public torch::nn::Module {
 public:
  explicit SepConvImpl(int64_t dim) {
    const int64_t mid = kSepConvExpansion * dim;
    pwconv1_ = register_pointwise(*this, "pwconv1", dim, mid, /*channels_first=*/true, /*bias=*/false);
    act1_ = register_module("act1", StarReLU());
    dwconv_ = register_module(
        "dwconv",
        torch::nn::Conv2d(torch::nn::Conv2dOptions(mid, mid, 7).padding(3).groups(mid).bias(false)));
    pwconv2_ = register_pointwise(*this, "pwconv2", mid, dim, /*channels_first=*/true, /*bias=*/false);
  }
  torch::Tensor forward(const torch::Tensor& x) {
    return pwconv2_(dwconv_->forward(act1_->forward(pwconv1_(x))));
  }

 private:
  Layer pwconv1_, pwconv2_;
  StarReLU act1_{nullptr};
  torch::nn::Conv2d dwconv_{nullptr};
};
TORCH_MODULE(SepConv);

// Multi-head self-attention with dim / 32 heads of 32, bias-free qkv and proj.
class AttentionImpl : public torch::nn::Module {
 public:
  explicit AttentionImpl(int64_t dim)
      : num_heads_(dim / kHeadDim),
        qkv_(register_module("qkv", torch::nn::Linear(torch::nn::LinearOptions(dim, 3 * dim).bias(false)))),
        proj_(register_module("proj", torch::nn::Linear(torch::nn::LinearOptions(dim, dim).bias(false)))) {}

  torch::Tensor forward(const torch::Tensor& x) {  // [B, N, dim] -> [B, N, dim]
    const int64_t batch = x.size(0), tokens = x.size(1), dim = x.size(2);
    auto qkv = apply_linear(*qkv_, x).reshape({batch, tokens, 3, num_heads_, kHeadDim}).permute({2, 0, 3, 1, 4});
    auto q = qkv[0], k = qkv[1], v = qkv[2];  // [B, heads, N, head_dim]
    auto attn = torch::matmul(q, k.transpose(-2, -1)) * (1.0 / std::sqrt(static_cast<double>(kHeadDim)));
    auto out = torch::matmul(attn.softmax(-1), v);  // [B, heads, N, head_dim]
    return apply_linear(*proj_, out.transpose(1, 2).reshape({batch, tokens, dim}));
  }

 private:
  int64_t num_heads_;
  torch::nn::Linear qkv_, proj_;
};
TORCH_MODULE(Attention);

// timm's Mlp with StarReLU, bias-free: fc1 (dim -> 4 dim) -> act -> fc2.
class MlpImpl : public torch::nn::Module {
 public:
  MlpImpl(int64_t dim, bool channels_first) {
    fc1_ = register_pointwise(*this, "fc1", dim, kMlpRatio * dim, channels_first, /*bias=*/false);
    act_ = register_module("act", StarReLU());
    fc2_ = register_pointwise(*this, "fc2", kMlpRatio * dim, dim, channels_first, /*bias=*/false);
  }
  torch::Tensor forward(const torch::Tensor& x) { return fc2_(act_->forward(fc1_(x))); }

 private:
  Layer fc1_, fc2_;
  StarReLU act_{nullptr};
};
TORCH_MODULE(Mlp);

// MetaFormerBlock: x = res_scale1(x) + token_mixer(norm1(x));
//                  x = res_scale2(x) + mlp(norm2(x)).
// SepConv blocks run on [B, C, H, W], attention blocks on [B, H * W, C].
class BlockImpl : public torch::nn::Module {
 public:
  BlockImpl(int64_t dim, TokenMixer mixer, bool res_scale) {
    const bool channels_first = mixer == TokenMixer::kSepConv;
    norm1_ = register_module("norm1", Norm(dim, channels_first, /*bias=*/false));
    if (mixer == TokenMixer::kSepConv) {
      auto sep_conv = register_module("token_mixer", SepConv(dim));
      token_mixer_ = [sep_conv](const torch::Tensor& x) { return sep_conv->forward(x); };
    } else {
      auto attention = register_module("token_mixer", Attention(dim));
      token_mixer_ = [attention](const torch::Tensor& x) { return attention->forward(x); };
    }
    if (res_scale) res_scale1_ = register_module("res_scale1", Scale(dim, channels_first));
    norm2_ = register_module("norm2", Norm(dim, channels_first, /*bias=*/false));
    mlp_ = register_module("mlp", Mlp(dim, channels_first));
    if (res_scale) res_scale2_ = register_module("res_scale2", Scale(dim, channels_first));
  }

  torch::Tensor forward(const torch::Tensor& x) {
    auto y = residual(res_scale1_, x) + token_mixer_(norm1_->forward(x));
    return residual(res_scale2_, y) + mlp_->forward(norm2_->forward(y));
  }

 private:
  static torch::Tensor residual(Scale& scale, const torch::Tensor& x) {
    return scale ? scale->forward(x) : x;  // res_scale is Identity in stages 0 and 1
  }

  Norm norm1_{nullptr}, norm2_{nullptr};
  Layer token_mixer_;
  Scale res_scale1_{nullptr}, res_scale2_{nullptr};
  Mlp mlp_{nullptr};
};
TORCH_MODULE(Block);

// MlpHead: fc1 (dim -> 4 dim) -> SquaredReLU -> LayerNorm (with bias) -> fc2.
class MlpHeadImpl : public torch::nn::Module {
 public:
  MlpHeadImpl(int64_t dim, int64_t num_classes)
      : fc1_(register_module("fc1", torch::nn::Linear(dim, kMlpRatio * dim))),
        norm_(register_module("norm", Norm(kMlpRatio * dim, /*channels_first=*/false, /*bias=*/true))),
        fc2_(register_module("fc2", torch::nn::Linear(kMlpRatio * dim, num_classes))) {}

  torch::Tensor forward(const torch::Tensor& x) {  // [B, dim] -> [B, num_classes]
    return apply_linear(*fc2_, norm_->forward(torch::square(torch::relu(apply_linear(*fc1_, x)))));
  }

 private:
  torch::nn::Linear fc1_;
  Norm norm_;
  torch::nn::Linear fc2_;
};
TORCH_MODULE(MlpHead);

ImageModelEntry entry(MetaFormerConfig config) {
  config.validate();
  ImageModelEntry result;
  result.make = [config](int64_t num_classes) {
    auto sized = config;
    sized.num_classes = num_classes;
    return std::make_shared<MetaFormerImpl>(sized);
  };
  // _cfg: 224 px, IMAGENET_DEFAULT_MEAN / STD, crop_pct 1.0, bicubic (all
  // caformer / convformer 224 tags, sail_in22k_ft_in1k included).
  result.info.crop_pct = 1.0;
  result.info.interpolation = "bicubic";
  return result;
}

}  // namespace

// Stem (conv 7x7 stride 4 padding 2 -> norm on the output) and Downsampling
// (norm on the input -> conv 3x3 stride 2 padding 1): conv with bias and a
// LayerNorm2dNoBias, registered as `conv` and `norm`.
class MetaFormerDownsamplingImpl : public torch::nn::Module {
 public:
  MetaFormerDownsamplingImpl(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t padding,
                             bool norm_first)
      : norm_first_(norm_first) {
    if (norm_first) norm_ = register_module("norm", Norm(in, /*channels_first=*/true, /*bias=*/false));
    conv_ = register_module(
        "conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, kernel).stride(stride).padding(padding)));
    if (!norm_first) norm_ = register_module("norm", Norm(out, /*channels_first=*/true, /*bias=*/false));
  }

  torch::Tensor forward(const torch::Tensor& x) {  // [B, in, H, W] -> [B, out, H', W']
    return norm_first_ ? conv_->forward(norm_->forward(x)) : norm_->forward(conv_->forward(x));
  }

 private:
  bool norm_first_;
  Norm norm_{nullptr};
  torch::nn::Conv2d conv_{nullptr};
};

// MetaFormerStage: downsample (absent when the dim does not change) -> blocks.
class MetaFormerStageImpl : public torch::nn::Module {
 public:
  MetaFormerStageImpl(int64_t in, int64_t dim, int64_t depth, TokenMixer mixer, bool res_scale)
      : tokens_(mixer == TokenMixer::kAttention) {
    if (in != dim) {
      downsample_ = register_module("downsample", std::make_shared<MetaFormerDownsamplingImpl>(
                                                      in, dim, /*kernel=*/3, /*stride=*/2, /*padding=*/1,
                                                      /*norm_first=*/true));
    }
    auto blocks = register_module("blocks", torch::nn::ModuleList());
    for (int64_t i = 0; i < depth; ++i) {
      blocks_.push_back(Block(dim, mixer, res_scale));
      blocks->push_back(blocks_.back());
    }
  }

  torch::Tensor forward(const torch::Tensor& x) {  // [B, in, H, W] -> [B, dim, H', W']
    auto y = downsample_ ? downsample_->forward(x) : x;
    const int64_t batch = y.size(0), channels = y.size(1), height = y.size(2), width = y.size(3);
    if (tokens_) y = y.reshape({batch, channels, -1}).transpose(1, 2);  // [B, H * W, C]
    for (auto& block : blocks_) y = block->forward(y);
    if (tokens_) y = y.transpose(1, 2).reshape({batch, channels, height, width});
    return y;
  }

 private:
  bool tokens_;  // attention stages run on [B, H * W, C]
  std::shared_ptr<MetaFormerDownsamplingImpl> downsample_;
  std::vector<Block> blocks_;
};

// head: global_pool (average, no parameters) -> norm (LayerNorm2d with bias)
// -> flatten -> fc (MlpHead; absent for num_classes = 0).
class MetaFormerHeadImpl : public torch::nn::Module {
 public:
  MetaFormerHeadImpl(int64_t dim, int64_t num_classes)
      : norm_(register_module("norm", Norm(dim, /*channels_first=*/true, /*bias=*/true))) {
    if (num_classes > 0) fc_ = register_module("fc", MlpHead(dim, num_classes));
  }

  torch::Tensor pre_logits(const torch::Tensor& x) {  // [B, dim, H, W] -> [B, dim]
    return norm_->forward(x.mean({2, 3}, /*keepdim=*/true)).flatten(1);
  }
  bool has_fc() const { return !fc_.is_empty(); }
  torch::Tensor logits(const torch::Tensor& features) { return fc_->forward(features); }  // [B, num_classes]

 private:
  Norm norm_;
  MlpHead fc_{nullptr};
};

void MetaFormerConfig::validate() const {
  auto bad = [&](const std::string& field, const std::string& why) {
    throw std::invalid_argument("MetaFormer " + name + ": " + field + " " + why);
  };
  if (depths.empty()) bad("depths", "is empty; give one block count per stage");
  if (dims.size() != depths.size() || token_mixers.size() != depths.size()) {
    bad("dims / token_mixers", "must have one entry per stage like depths (" + std::to_string(depths.size()) +
                                   "), got " + std::to_string(dims.size()) + " / " +
                                   std::to_string(token_mixers.size()));
  }
  for (size_t i = 0; i < depths.size(); ++i) {
    const std::string stage = " of stage " + std::to_string(i);
    if (depths[i] < 1)
      bad("depths[" + std::to_string(i) + "]", "must be >= 1, got " + std::to_string(depths[i]));
    if (dims[i] < 1) bad("dims[" + std::to_string(i) + "]", "must be >= 1, got " + std::to_string(dims[i]));
    // timm reshapes the heads' output back to [B, N, dim], so dim must be whole heads of 32.
    if (token_mixers[i] == TokenMixer::kAttention && dims[i] % kHeadDim != 0) {
      bad("dims[" + std::to_string(i) + "]",
          "= " + std::to_string(dims[i]) + " must be a multiple of the attention head_dim 32" + stage);
    }
  }
  if (num_classes < 0)
    bad("num_classes", "must be >= 0 (0 = no head.fc), got " + std::to_string(num_classes));
}

MetaFormerImpl::MetaFormerImpl(MetaFormerConfig config) : config_(std::move(config)) {
  config_.validate();
  stem_ = register_module("stem", std::make_shared<MetaFormerDownsamplingImpl>(
                                      3, config_.dims[0], /*kernel=*/7, /*stride=*/4, /*padding=*/2,
                                      /*norm_first=*/false));
  auto stages = register_module("stages", torch::nn::ModuleList());
  int64_t previous = config_.dims[0];
  for (size_t i = 0; i < config_.depths.size(); ++i) {
    // res_scale_init_values = (None, None, 1.0, 1.0): residual Scale from stage 2 on.
    stages_.push_back(std::make_shared<MetaFormerStageImpl>(previous, config_.dims[i], config_.depths[i],
                                                            config_.token_mixers[i], /*res_scale=*/i >= 2));
    stages->push_back(stages_.back());
    previous = config_.dims[i];
  }
  head_ = register_module("head", std::make_shared<MetaFormerHeadImpl>(num_features(), config_.num_classes));

  // _init_weights; trunc_normal_'s cut at +-2 (absolute) is 100 std away, so a plain normal.
  torch::NoGradGuard no_grad;
  for (auto& module : modules(/*include_self=*/false)) {
    if (auto* conv = module->as<torch::nn::Conv2d>()) {
      conv->weight.normal_(0.0, kInitStd);
      if (conv->bias.defined()) conv->bias.zero_();
    } else if (auto* linear = module->as<torch::nn::Linear>()) {
      linear->weight.normal_(0.0, kInitStd);
      if (linear->bias.defined()) linear->bias.zero_();
    }
  }
}

torch::Tensor MetaFormerImpl::forward_features(const torch::Tensor& images) {
  if (images.dim() != 4 || images.size(1) != 3) {
    throw std::invalid_argument(config_.name + ": expected images [batch, 3, height, width], got " +
                                hf::shape_string(images.sizes()));
  }
  auto x = stem_->forward(images);  // [B, dims[0], H / 4, W / 4]
  for (auto& stage : stages_) x = stage->forward(x);
  return head_->pre_logits(x);  // [B, dims.back()]
}

torch::Tensor MetaFormerImpl::forward(const torch::Tensor& images) {
  if (!head_->has_fc()) {
    throw std::logic_error(config_.name +
                           " was built with num_classes = 0 and has no head.fc: use forward_features for the "
                           "pooled features, or build it with num_classes > 0 for logits");
  }
  return head_->logits(forward_features(images));
}

void MetaFormerImpl::load_timm_state_dict(const StateDict& weights) {
  hf::StateDictMapping mapping;
  const bool has_classifier = config_.num_classes > 0;
  mapping.is_ignored = [has_classifier](const std::string& name) {
    return !has_classifier && starts_with(name, "head.fc.");
  };
  mapping.model_description =
      "timm " + config_.name + " (num_classes " + std::to_string(config_.num_classes) + ")";
  mapping.loader_name = "load_timm_state_dict";
  mapping.mismatch_hint = "Check that the checkpoint is a timm " + config_.name +
                          " state dict (timm's parameter names, e.g. its model.safetensors; the original "
                          "sail-sg checkpoints need timm's checkpoint_filter_fn renaming first).";
  hf::load_state_dict_by_name(*this, weights, mapping);
}

ImageModelFamily metaformer_models() {
  using T = TokenMixer;
  const std::vector<TokenMixer> conv_attention = {T::kSepConv, T::kSepConv, T::kAttention, T::kAttention};
  const std::vector<TokenMixer> all_conv(4, T::kSepConv);
  struct Size {
    std::string suffix;
    std::vector<int64_t> depths, dims;
  };
  // timm's caformer_* / convformer_* registrations.
  const std::vector<Size> sizes = {{"s18", {3, 3, 9, 3}, {64, 128, 320, 512}},
                                   {"s36", {3, 12, 18, 3}, {64, 128, 320, 512}},
                                   {"m36", {3, 12, 18, 3}, {96, 192, 384, 576}},
                                   {"b36", {3, 12, 18, 3}, {128, 256, 512, 768}}};
  ImageModelFamily family;
  for (const auto& size : sizes) {
    for (const auto& [prefix, mixers] : {std::make_pair(std::string("caformer_"), conv_attention),
                                         std::make_pair(std::string("convformer_"), all_conv)}) {
      MetaFormerConfig config;
      config.name = prefix + size.suffix;
      config.depths = size.depths;
      config.dims = size.dims;
      config.token_mixers = mixers;
      family[config.name] = entry(config);
    }
  }
  return family;
}

}  // namespace automm
