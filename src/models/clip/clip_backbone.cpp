// clip: a Hugging Face CLIPModel as one backbone (AutoMM's models/clip.py):
// each row's images and texts become L2-normalised projected features (an
// image column's missing images count as zero vectors in the mean over a
// row's images), their sum is the row's features, and a linear head
// (xavier-uniform, bias 0) gives the logits.
#include "automm/weights_io.h"
#include "checkpoints/hf_checkpoint.h"
#include "data/text/scratch_checkpoint.h"
#include "models/backbones.h"
#include "models/clip/clip_model.h"
#include "models/layers.h"

namespace automm {
namespace {
class ClipBackboneImpl : public BackboneImpl {
 public:
  ClipBackboneImpl(const std::string& prefix, const ModelContext& context, const Config& keys) : prefix_(prefix) {
    const auto dir = context.checkpoint_dirs.find(prefix);
    if (dir == context.checkpoint_dirs.end())
      throw std::logic_error("clip model '" + prefix + "' was built without a checkpoint folder");
    const nlohmann::json config = read_checkpoint_config(dir->second);
    model_ = register_module("model", ClipModel(ClipConfig::from_json(config, keys)));
    scratch_ = is_scratch_checkpoint(config);
    if (context.load_pretrained && !scratch_) {
      try {
        model_->load_hf_state_dict(load_weights(dir->second));
      } catch (const std::exception& e) {
        throw std::runtime_error("loading the pretrained weights of " + prefix + " from " + dir->second +
                                 " failed: " + e.what());
      }
    }
    head_ = register_module("head", torch::nn::Linear(model_->config().projection_dim, context.num_outputs));
    torch::NoGradGuard no_grad;
    torch::nn::init::xavier_uniform_(head_->weight);
    head_->bias.zero_();
  }

  BackboneOutput forward(const Batch& batch) override {
    torch::Tensor features;
    const auto images = batch.images.find(prefix_);
    if (images != batch.images.end()) {
      const torch::Tensor& pixels = images->second.images;  // [batch, slots, 3, size, size]
      const int64_t rows = pixels.size(0), slots = pixels.size(1);
      auto image = model_->image_features(pixels.flatten(0, 1)).view({rows, slots, -1});
      image = image * images->second.mask.unsqueeze(-1).to(image.scalar_type());
      image = image / image.norm(2, -1, true).clamp_min(1e-6);
      features = image.mean(1);
    }
    const auto text = batch.text.find(prefix_);
    if (text != batch.text.end()) {
      auto t = model_->text_features(text->second.input_ids, text->second.attention_mask);
      t = t / t.norm(2, -1, true);
      features = features.defined() ? features + t.to(features.scalar_type()) : t;
    }
    if (!features.defined()) throw std::logic_error("the batch has neither images nor texts for " + prefix_);
    return {features, apply_linear(*head_, features)};
  }
  torch::Tensor classify(const torch::Tensor& features) override { return apply_linear(*head_, features); }
  int64_t feature_dim() const override { return model_->config().projection_dim; }
  bool is_pretrained() const override { return !scratch_; }

 private:
  std::string prefix_;
  bool scratch_ = false;
  ClipModel model_{nullptr};
  torch::nn::Linear head_{nullptr};
};

}  // namespace

std::shared_ptr<BackboneImpl> make_clip(const std::string& prefix, const ModelContext& context, const Config& config) {
  return std::make_shared<ClipBackboneImpl>(prefix, context, config);
}

}  // namespace automm
