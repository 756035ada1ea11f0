// timm's MetaFormer baselines (timm/models/metaformer.py): CAFormer (SepConv
// token mixers in the first two stages, self-attention in the last two) and
// ConvFormer (SepConv everywhere), with timm's parameter names so timm
// checkpoints load by name. metaformer_models() (image_encoder.h) lists the
// named variants; MetaFormerConfig builds any shape (the tests use small ones).
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "models/image/image_encoder.h"

namespace automm {

enum class TokenMixer {
  kSepConv,    // MobileNetV2's inverted separable conv, on [B, C, H, W]
  kAttention,  // multi-head self-attention (head_dim 32), on [B, H * W, C]
};

struct MetaFormerConfig {
  std::string name = "caformer_s18";  // for messages
  // One entry per stage in all three. A stage whose dim equals the previous
  // one's (and stage 0, after the stem) has no downsampling, as in timm.
  std::vector<int64_t> depths = {3, 3, 9, 3};
  std::vector<int64_t> dims = {64, 128, 320, 512};
  std::vector<TokenMixer> token_mixers = {TokenMixer::kSepConv, TokenMixer::kSepConv, TokenMixer::kAttention,
                                          TokenMixer::kAttention};
  int64_t num_classes = 1000;  // 0: no head.fc (timm's reset_classifier(0))

  // Throws std::invalid_argument naming the field that does not fit.
  void validate() const;
};

class MetaFormerDownsamplingImpl;  // also the stem
class MetaFormerStageImpl;
class MetaFormerHeadImpl;

class MetaFormerImpl : public ImageEncoderImpl {
 public:
  explicit MetaFormerImpl(MetaFormerConfig config);

  // [B, 3, H, W] -> [B, dims.back()]: stages -> global average pool -> head.norm
  // (timm's forward_head(..., pre_logits=True)).
  torch::Tensor forward_features(const torch::Tensor& images) override;
  // [B, 3, H, W] -> [B, num_classes] through the MlpHead head.fc; throws
  // std::logic_error when built with num_classes = 0.
  torch::Tensor forward(const torch::Tensor& images) override;
  int64_t num_features() const override { return config_.dims.back(); }
  // By timm's names; head.fc.* is ignored when num_classes = 0.
  void load_timm_state_dict(const StateDict& weights) override;
  const MetaFormerConfig& config() const { return config_; }

 private:
  MetaFormerConfig config_;
  std::shared_ptr<MetaFormerDownsamplingImpl> stem_;
  std::vector<std::shared_ptr<MetaFormerStageImpl>> stages_;
  std::shared_ptr<MetaFormerHeadImpl> head_;
};

}  // namespace automm
