// timm_image: a timm image backbone without its classifier; each row's images
// are encoded, averaged over the valid ones, and read by a linear head
// (AutoMM's TimmAutoModelForImagePrediction).
#include <torch/csrc/jit/frontend/tracer.h>

#include "automm/weights_io.h"
#include "models/backbones.h"
#include "models/layers.h"
#include "models/image/image_encoder.h"

namespace automm {
namespace {

class TimmImageImpl : public BackboneImpl {
 public:
  TimmImageImpl(const std::string& prefix, const ModelContext& context) : prefix_(prefix) {
    const auto spec = context.image_models.find(prefix);
    if (spec == context.image_models.end())
      throw std::logic_error("image model '" + prefix + "' was built without an architecture");
    encoder_ = register_module("model", make_image_encoder(spec->second.architecture, 0));
    if (!spec->second.weights.empty()) {
      try {
        encoder_->load_timm_state_dict(load_weights(spec->second.weights));
      } catch (const std::exception& e) {
        throw std::runtime_error("loading the pretrained weights of " + prefix + " (" + spec->second.architecture +
                                 ") from " + spec->second.weights + " failed: " + e.what());
      }
    }
    head_ = register_module("head", torch::nn::Linear(encoder_->num_features(), context.num_outputs));
  }

  BackboneOutput forward(const Batch& batch) override {
    const auto it = batch.images.find(prefix_);
    if (it == batch.images.end()) throw std::logic_error("the batch has no images for " + prefix_);
    const torch::Tensor& images = it->second.images;  // [batch, slots, 3, H, W]
    const int64_t rows = images.size(0), slots = images.size(1);
    // Only real images go through the encoder: missing slots cost nothing and
    // do not skew batch-norm statistics in training. A traced graph (env.compile,
    // export) encodes every slot: it serves later batches whatever is missing, and
    // the mask below leaves the missing slots out of the mean.
    const torch::Tensor valid = it->second.mask.flatten().nonzero().squeeze(1);  // [valid images]
    const torch::Tensor flat = images.flatten(0, 1);                          // [batch * slots, 3, H, W]
    torch::Tensor encoded;                                                    // [batch * slots, dim]
    if (valid.size(0) == flat.size(0) || torch::jit::tracer::isTracing()) {
      encoded = encoder_->forward_features(flat);
    } else if (valid.size(0) == 0) {
      encoded = torch::zeros({flat.size(0), encoder_->num_features()}, flat.options());
    } else {
      const torch::Tensor features = encoder_->forward_features(flat.index_select(0, valid));
      encoded = torch::zeros({flat.size(0), features.size(1)}, features.options()).index_copy(0, valid, features);
    }
    const torch::Tensor mask = it->second.mask.to(encoded.scalar_type()).unsqueeze(-1);  // [batch, slots, 1]
    // The mean over a row's valid images; a row without any gets zeros.
    const torch::Tensor features = (encoded.view({rows, slots, -1}) * mask).sum(1) / mask.sum(1).clamp_min(1.0);
    return {features, apply_linear(*head_, features)};
  }
  torch::Tensor classify(const torch::Tensor& features) override { return apply_linear(*head_, features);
  }
  int64_t feature_dim() const override { return encoder_->num_features(); }
  bool is_pretrained() const override { return true; }

 private:
  std::string prefix_;
  std::shared_ptr<ImageEncoderImpl> encoder_;
  torch::nn::Linear head_{nullptr};
};

}  // namespace

std::shared_ptr<BackboneImpl> make_timm_image(const std::string& prefix, const ModelContext& context, const Config&) {
  return std::make_shared<TimmImageImpl>(prefix, context);
}

}  // namespace automm
