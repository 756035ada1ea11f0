#include "models/image/timm_layers.h"

#include <stdexcept>
#include <utility>

#include "models/image/transformer_layers.h"
#include "models/layers.h"
#include "models/text/hf_common.h"

namespace automm {
namespace timm {
namespace {

bool ends_with(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() &&
         text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

int64_t get_padding(int64_t kernel, int64_t stride) { return ((stride - 1) + (kernel - 1)) / 2; }

torch::nn::Conv2dOptions conv_options(int64_t in, int64_t out, int64_t kernel, int64_t stride) {
  return torch::nn::Conv2dOptions(in, out, kernel)
      .stride(stride)
      .padding(get_padding(kernel, stride))
      .bias(false);
}

torch::Tensor ConvBnAct::operator()(const torch::Tensor& x) const {
  auto y = bn.ptr()->forward(conv.ptr()->forward(x));  // ptr(): the holders are const here, the modules not
  return act ? act(y) : y;
}

ConvBnAct register_conv_bn(torch::nn::Module& owner, const std::string& conv_name, const std::string& bn_name,
                           const torch::nn::Conv2dOptions& options, Activation act) {
  ConvBnAct step;
  step.conv = owner.register_module(conv_name, torch::nn::Conv2d(options));
  step.bn = owner.register_module(bn_name, torch::nn::BatchNorm2d(options.out_channels()));
  step.act = std::move(act);
  return step;
}

LayerNorm2dImpl::LayerNorm2dImpl(int64_t channels, double eps) : eps_(eps) {
  weight_ = register_parameter("weight", torch::ones({channels}));
  bias_ = register_parameter("bias", torch::zeros({channels}));
}

torch::Tensor LayerNorm2dImpl::forward(const torch::Tensor& x) {
  // Normalize channels last ([B, H, W, C]), as timm and torchvision do.
  auto y = layer_norm_in_weight_dtype(x.permute({0, 2, 3, 1}), weight_, bias_, eps_);
  return y.permute({0, 3, 1, 2});
}

ImageModelInfo imagenet_info(double crop_pct, const std::string& interpolation) {
  ImageModelInfo info;  // 224 px, IMAGENET_DEFAULT_MEAN / STD
  info.crop_pct = crop_pct;
  info.interpolation = interpolation;
  return info;
}

ClassifierNetImpl::ClassifierNetImpl(std::string model_name, std::string classifier_name, int64_t num_classes)
    : model_name_(std::move(model_name)),
      classifier_name_(std::move(classifier_name)),
      num_classes_(num_classes) {
  if (num_classes < 0) {
    throw std::invalid_argument(model_name_ + ": num_classes must be >= 0 (0 = no classifier), got " +
                                std::to_string(num_classes));
  }
}

void ClassifierNetImpl::add_classifier(torch::nn::Module& parent, int64_t in_features) {
  if (num_classes_ == 0) return;
  const auto dot = classifier_name_.rfind('.');
  const std::string local_name =
      dot == std::string::npos ? classifier_name_ : classifier_name_.substr(dot + 1);
  classifier_ = parent.register_module(local_name, torch::nn::Linear(in_features, num_classes_));
}

torch::Tensor ClassifierNetImpl::forward(const torch::Tensor& images) {
  if (!classifier_) timm_layers::throw_no_classifier(model_name_);
  return apply_linear(*classifier_, forward_features(images));  // [B, num_features] -> [B, num_classes]
}

void ClassifierNetImpl::load_timm_state_dict(const StateDict& weights) {
  hf::StateDictMapping mapping;
  const std::string classifier_prefix = classifier_name_ + ".";
  const bool has_classifier = num_classes_ > 0;
  mapping.is_ignored = [classifier_prefix, has_classifier](const std::string& name) {
    // BatchNorm's step counter only matters for momentum = None.
    if (ends_with(name, "num_batches_tracked")) return true;
    return !has_classifier && name.compare(0, classifier_prefix.size(), classifier_prefix) == 0;
  };
  mapping.model_description = "timm " + model_name_ + " (num_classes " + std::to_string(num_classes_) + ")";
  mapping.include_buffers = true;
  mapping.loader_name = "load_timm_state_dict";
  mapping.mismatch_hint = "Check that the checkpoint is a timm " + model_name_ +
                          " state dict (timm's parameter names, e.g. from its model.safetensors).";
  hf::load_state_dict_by_name(*this, weights, mapping);
}

}  // namespace timm
}  // namespace automm
