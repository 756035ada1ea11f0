// NumericalMLP: all numerical columns as one vector through an MLP and a head.
#include "backbones.h"
#include "layers.h"

namespace automm {
namespace {

class NumericalMlpImpl : public BackboneImpl {
 public:
  NumericalMlpImpl(const ModelContext& context, const Config& config) {
    MlpOptions options = mlp_options_from(config, "numerical_mlp", context.num_numerical);
    // fix: AutoMM layer-normalizes the raw column vector, which keeps only each
    // row's direction (with 3 columns, a point on a circle) and loses its
    // magnitude. The processor has already standardized every column.
    options.normalize_input = false;
    hidden_ = options.hidden_features;
    mlp_ = register_module("mlp", Mlp(options));
    head_ = register_module("head", torch::nn::Linear(hidden_, context.num_outputs));
  }
  BackboneOutput forward(const Batch& batch) override {
    auto features = mlp_(batch.numerical);
    return {features, head_(features)};
  }
  torch::Tensor classify(const torch::Tensor& features) override { return head_(features);
  }
  int64_t feature_dim() const override { return hidden_; }

 private:
  int64_t hidden_ = 0;
  Mlp mlp_{nullptr};
  torch::nn::Linear head_{nullptr};
};

}  // namespace

std::shared_ptr<BackboneImpl> make_numerical_mlp(const std::string&, const ModelContext& context,
                                                 const Config& config) {
  return std::make_shared<NumericalMlpImpl>(context, config);
}

}  // namespace automm
