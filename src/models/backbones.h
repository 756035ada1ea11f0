// Factories of the backbones in the registry (src/models/registry.cpp).
#pragma once

#include <memory>

#include "models/multimodal_net.h"

namespace automm {

std::shared_ptr<BackboneImpl> make_categorical_mlp(const std::string& prefix, const ModelContext& context,
                                                   const Config& config);
std::shared_ptr<BackboneImpl> make_numerical_mlp(const std::string& prefix, const ModelContext& context,
                                                 const Config& config);
std::shared_ptr<BackboneImpl> make_ft_transformer(const std::string& prefix, const ModelContext& context,
                                                  const Config& config);
std::shared_ptr<BackboneImpl> make_hf_text(const std::string& prefix, const ModelContext& context,
                                          const Config& config);
std::shared_ptr<BackboneImpl> make_clip(const std::string& prefix, const ModelContext& context, const Config& config);
std::shared_ptr<BackboneImpl> make_timm_image(const std::string& prefix, const ModelContext& context,
                                             const Config& config);

// Fusion models combine the backbones' features; see fusion.cpp.
struct FusionParts {
  std::shared_ptr<torch::nn::Module> module;
  std::function<NetOutput(const std::vector<BackboneOutput>&)> fuse;
  std::function<torch::Tensor(const torch::Tensor&)> classify;  // its head on fused features
  double aux_loss_weight = 0.0;
};
FusionParts make_fusion(const std::string& base_name, const std::vector<int64_t>& feature_dims,
                        const ModelContext& context, const Config& config);

}  // namespace automm
