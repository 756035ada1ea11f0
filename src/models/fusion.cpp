// Fusion models: fusion_mlp (adapt, concatenate, MLP, head) and
// fusion_transformer (one token per backbone + CLS, transformer blocks, head).
#include <algorithm>
#include <stdexcept>

#include "backbones.h"
#include "layers.h"

namespace automm {
namespace {

int64_t adapted_width(const std::vector<int64_t>& dims, const std::string& mode) {
  return mode == "min" ? *std::min_element(dims.begin(), dims.end())
                       : *std::max_element(dims.begin(), dims.end());
}

double aux_weight(const Config& config, const std::string& base) {
  const std::string key = "model." + base + ".aux_loss_weight";
  return config.is_null(key) ? 0.0 : config.get_double(key);
}

// Projects each backbone's features to one width: [batch, width] each.
class AdaptersImpl : public torch::nn::Module {
 public:
  AdaptersImpl(const std::vector<int64_t>& dims, int64_t width) {
    linears_ = register_module("linears", torch::nn::ModuleList());
    for (int64_t d : dims) linears_->push_back(torch::nn::Linear(d, width));
  }
  std::vector<torch::Tensor> forward(const std::vector<BackboneOutput>& outputs) {
    std::vector<torch::Tensor> adapted;
    for (size_t i = 0; i < outputs.size(); ++i)
      adapted.push_back(linears_[i]->as<torch::nn::Linear>()->forward(outputs[i].features));
    return adapted;
  }

 private:
  torch::nn::ModuleList linears_{nullptr};
};
TORCH_MODULE(Adapters);

class FusionMlpImpl : public torch::nn::Module {
 public:
  FusionMlpImpl(const std::vector<int64_t>& dims, const ModelContext& context, const Config& config) {
    const std::string p = "model.fusion_mlp.";
    const int64_t width = adapted_width(dims, config.get_string(p + "adapt_in_features"));
    adapters_ = register_module("adapters", Adapters(dims, width));
    layers_ = register_module("layers", torch::nn::ModuleList());
    int64_t in = width * static_cast<int64_t>(dims.size());
    for (const Json& size : config.get(p + "hidden_sizes")) {
      MlpOptions options;
      options.in_features = in;
      options.hidden_features = size.get<int64_t>();
      options.activation = config.get_string(p + "activation");
      options.normalization = config.get_string(p + "normalization");
      options.dropout = config.get_double(p + "drop_rate");
      if (options.hidden_features < 1)
        throw std::invalid_argument("model.fusion_mlp.hidden_sizes must hold positive widths");
      layers_->push_back(Mlp(options));
      in = options.hidden_features;
    }
    head_ = register_module("head", torch::nn::Linear(in, context.num_outputs));
  }
  NetOutput forward(const std::vector<BackboneOutput>& outputs) {
    auto x = torch::cat(adapters_(outputs), 1);
    for (const auto& layer : *layers_) x = layer->as<Mlp>()->forward(x);
    return {head_(x), x, {}};
  }
  torch::Tensor classify(const torch::Tensor& features) { return head_(features);
  }

 private:
  Adapters adapters_{nullptr};
  torch::nn::ModuleList layers_{nullptr};
  torch::nn::Linear head_{nullptr};
};
TORCH_MODULE(FusionMlp);

class FusionTransformerImpl : public torch::nn::Module {
 public:
  FusionTransformerImpl(const std::vector<int64_t>& dims, const ModelContext& context,
                        const Config& config) {
    const std::string p = "model.fusion_transformer.";
    TransformerOptions options;
    options.hidden_size = config.get_int(p + "hidden_size");
    options.num_blocks = config.get_int(p + "num_blocks");
    options.num_heads = config.get_int(p + "attention_num_heads");
    options.ffn_hidden_size = config.get_int(p + "ffn_hidden_size");
    options.attention_dropout = config.get_double(p + "attention_dropout");
    options.ffn_dropout = config.get_double(p + "ffn_dropout");
    options.residual_dropout = config.get_double(p + "residual_dropout");
    const int64_t width = adapted_width(dims, config.get_string(p + "adapt_in_features"));
    adapters_ = register_module("adapters", Adapters(dims, width));
    if (width != options.hidden_size)
      projection_ = register_module("projection", torch::nn::Linear(width, options.hidden_size));
    cls_token_ = register_parameter("cls_token", torch::randn({options.hidden_size}) * 0.02);
    transformer_ = register_module("transformer", TokenTransformer(options));
    head_ = register_module("head", TransformerHead(options.hidden_size, context.num_outputs));
  }
  NetOutput forward(const std::vector<BackboneOutput>& outputs) {
    auto tokens = torch::stack(adapters_(outputs), 1);  // [batch, backbones, width]
    if (projection_) tokens = projection_(tokens);
    auto cls = cls_token_.view({1, 1, -1}).expand({tokens.size(0), 1, cls_token_.size(0)});
    auto x = transformer_(torch::cat({tokens, cls}, 1));
    auto features = head_->features(x.select(1, x.size(1) - 1));
    return {head_->classify(features), features, {}};
  }
  torch::Tensor classify(const torch::Tensor& features) { return head_->classify(features);
  }

 private:
  Adapters adapters_{nullptr};
  torch::nn::Linear projection_{nullptr};
  torch::Tensor cls_token_;
  TokenTransformer transformer_{nullptr};
  TransformerHead head_{nullptr};
};
TORCH_MODULE(FusionTransformer);

}  // namespace

FusionParts make_fusion(const std::string& base_name, const std::vector<int64_t>& feature_dims,
                        const ModelContext& context, const Config& config) {
  FusionParts parts;
  parts.aux_loss_weight = aux_weight(config, base_name);
  if (base_name == "fusion_mlp") {
    FusionMlp fusion(feature_dims, context, config);
    parts.module = fusion.ptr();
    parts.fuse = [fusion](const std::vector<BackboneOutput>& outputs) mutable { return fusion(outputs); };
    parts.classify = [fusion](const torch::Tensor& features) mutable { return fusion->classify(features); };
  } else if (base_name == "fusion_transformer") {
    FusionTransformer fusion(feature_dims, context, config);
    parts.module = fusion.ptr();
    parts.fuse = [fusion](const std::vector<BackboneOutput>& outputs) mutable { return fusion(outputs); };
    parts.classify = [fusion](const torch::Tensor& features) mutable { return fusion->classify(features); };
  } else {
    throw std::invalid_argument("unknown fusion model '" + base_name +
                                "'; known: fusion_mlp, fusion_transformer");
  }
  return parts;
}

}  // namespace automm
