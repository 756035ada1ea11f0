// hf_text: a Hugging Face text encoder, pooled (cls or mean) into one feature
// vector per row, with a linear head (AutoMM's HFAutoModelForTextPrediction).
#include <filesystem>
#include "config/json_text.h"
#include <fstream>

#include "automm/weights_io.h"
#include "checkpoints/hf_checkpoint.h"
#include "models/backbones.h"
#include "models/layers.h"
#include "data/text/scratch_checkpoint.h"
#include "text_encoder.h"

namespace automm {
namespace {
namespace fs = std::filesystem;

class HfTextImpl : public BackboneImpl {
 public:
  HfTextImpl(const std::string& prefix, const ModelContext& context, const Config& config) : prefix_(prefix) {
    const auto dir = context.checkpoint_dirs.find(prefix);
    if (dir == context.checkpoint_dirs.end())
      throw std::logic_error("text model '" + prefix + "' was built without a checkpoint folder");
    const nlohmann::json model_config = read_checkpoint_config(dir->second);
    encoder_ = register_module("model", make_text_encoder(model_config));
    scratch_ = is_scratch_checkpoint(model_config);
    if (context.load_pretrained && !scratch_) {
      try {
        encoder_->load_hf_state_dict(load_weights(dir->second));
      } catch (const std::exception& e) {
        throw std::runtime_error("loading the pretrained weights of " + prefix + " from " + dir->second +
                                 " failed: " + e.what());
      }
    }
    encoder_->set_gradient_checkpointing(config.get_bool("model.hf_text.gradient_checkpointing"));
    mean_pooling_ = config.get_string("model.hf_text.pooling_mode") == "mean";
    head_ = register_module("head", torch::nn::Linear(encoder_->hidden_size(), context.num_outputs));
  }

  BackboneOutput forward(const Batch& batch) override {
    const auto it = batch.text.find(prefix_);
    if (it == batch.text.end()) throw std::logic_error("the batch has no token sequences for " + prefix_);
    const TextBatch& text = it->second;
    const torch::Tensor hidden = encoder_->forward(text.input_ids, text.token_type_ids, text.attention_mask);
    torch::Tensor features;  // [batch, hidden]
    if (mean_pooling_) {
      const torch::Tensor mask = text.attention_mask.to(hidden.scalar_type()).unsqueeze(-1);  // [batch, seq, 1]
      features = (hidden * mask).sum(1) / mask.sum(1).clamp_min(1.0);
    } else {
      features = hidden.select(1, 0);
    }
    return {features, apply_linear(*head_, features)};
  }
  torch::Tensor classify(const torch::Tensor& features) override { return apply_linear(*head_, features);
  }
  int64_t feature_dim() const override { return encoder_->hidden_size(); }
  // Layerwise decay applies to pretrained encoders, not to one trained from scratch.
  bool is_pretrained() const override { return !scratch_; }

 private:
  std::string prefix_;
  bool mean_pooling_ = false;
  bool scratch_ = false;
  std::shared_ptr<TextEncoderImpl> encoder_;
  torch::nn::Linear head_{nullptr};
};

}  // namespace

std::shared_ptr<BackboneImpl> make_hf_text(const std::string& prefix, const ModelContext& context,
                                          const Config& config) {
  return std::make_shared<HfTextImpl>(prefix, context, config);
}

}  // namespace automm
