// timm's VisionTransformer (timm/models/vision_transformer.py, timm 0.9) for
// the plain ViT variants AutoMM uses: class token pooling (global_pool='token'),
// no fc_norm, learned absolute position embeddings added after the class token
// is prepended (no_embed_class=False), pre-norm blocks without layer scale.
// Parameter names are timm's: patch_embed.proj, cls_token, pos_embed,
// blocks.i.{norm1, attn.qkv, attn.proj, norm2, mlp.fc1, mlp.fc2}, norm, head.
#include <cmath>
#include <stdexcept>

#include "models/image/image_encoder.h"
#include "models/image/transformer_layers.h"
#include "models/layers.h"
#include "models/text/hf_common.h"

namespace automm {
namespace {

using timm_layers::Attention;
using timm_layers::Mlp;
using timm_layers::PatchEmbed;

constexpr double kNormEps = 1e-6;     // partial(nn.LayerNorm, eps=1e-6)
constexpr int64_t kPrefixTokens = 1;  // the class token

struct VitConfig {
  std::string name;
  int64_t patch_size;
  int64_t embed_dim;
  int64_t depth;
  int64_t num_heads;
  int64_t image_size = 224;
  int64_t mlp_ratio = 4;
};

// timm.layers.resample_abs_pos_embed: pos_embed [1, prefix + old_h * old_w, dim]
// -> [1, prefix + new_h * new_w, dim]; the prefix (class token) rows are kept,
// the grid is resized bicubically with antialias (timm's defaults), in fp32.
torch::Tensor resample_abs_pos_embed(const torch::Tensor& pos_embed, std::array<int64_t, 2> new_grid,
                                     std::array<int64_t, 2> old_grid) {
  const int64_t dim = pos_embed.size(2);
  auto prefix = pos_embed.slice(1, 0, kPrefixTokens);
  auto grid = pos_embed.slice(1, kPrefixTokens)
                  .to(torch::kFloat)
                  .reshape({1, old_grid[0], old_grid[1], dim})
                  .permute({0, 3, 1, 2});  // [1, dim, old_h, old_w]
  grid = torch::nn::functional::interpolate(grid, torch::nn::functional::InterpolateFuncOptions()
                                                      .size(std::vector<int64_t>{new_grid[0], new_grid[1]})
                                                      .mode(torch::kBicubic)
                                                      .align_corners(false)
                                                      .antialias(true));
  grid = grid.permute({0, 2, 3, 1}).reshape({1, new_grid[0] * new_grid[1], dim}).to(pos_embed.scalar_type());
  return torch::cat({prefix, grid}, 1);
}

// timm.models.vision_transformer.Block without layer scale or drop path.
class VitBlockImpl : public torch::nn::Module {
 public:
  VitBlockImpl(int64_t dim, int64_t num_heads, int64_t mlp_hidden) {
    norm1_ = register_module("norm1", timm_layers::make_norm(dim, kNormEps));
    attn_ = register_module("attn", Attention(dim, num_heads));
    norm2_ = register_module("norm2", timm_layers::make_norm(dim, kNormEps));
    mlp_ = register_module("mlp", Mlp(dim, mlp_hidden));
  }
  torch::Tensor forward(torch::Tensor x) {  // [batch, tokens, dim]
    x = attn_->forward(apply_layer_norm(*norm1_, x), /*bias=*/{}, /*residual=*/x);
    return mlp_->forward(apply_layer_norm(*norm2_, x), /*residual=*/x);
  }

 private:
  torch::nn::LayerNorm norm1_{nullptr}, norm2_{nullptr};
  Attention attn_{nullptr};
  Mlp mlp_{nullptr};
};
TORCH_MODULE(VitBlock);

class VisionTransformerImpl : public ImageEncoderImpl {
 public:
  VisionTransformerImpl(VitConfig config, int64_t num_classes) : config_(std::move(config)) {
    if (num_classes < 0) {
      throw std::invalid_argument(config_.name + ": num_classes must be >= 0 (0 = no classifier), got " +
                                  std::to_string(num_classes));
    }
    const int64_t dim = config_.embed_dim;
    grid_ = config_.image_size / config_.patch_size;
    patch_embed_ = register_module("patch_embed", PatchEmbed(dim, config_.patch_size, false, kNormEps));
    // timm's init: cls_token ~ N(0, 1e-6), pos_embed ~ trunc_normal(0.02).
    cls_token_ = register_parameter("cls_token", torch::randn({1, 1, dim}) * 1e-6);
    pos_embed_ =
        register_parameter("pos_embed", torch::randn({1, kPrefixTokens + grid_ * grid_, dim}) * 0.02);
    blocks_ = register_module("blocks", torch::nn::ModuleList());
    for (int64_t i = 0; i < config_.depth; ++i) {
      blocks_->push_back(VitBlock(dim, config_.num_heads, dim * config_.mlp_ratio));
    }
    norm_ = register_module("norm", timm_layers::make_norm(dim, kNormEps));
    if (num_classes > 0) head_ = register_module("head", timm_layers::make_linear(dim, num_classes));
  }

  // images [batch, 3, H, W] -> class token features [batch, dim] after the final norm.
  torch::Tensor forward_features(const torch::Tensor& images) override {
    timm_layers::check_images(images, config_.name);
    auto patches = patch_embed_->forward(images);  // [batch, h, w, dim]
    const int64_t batch = patches.size(0), h = patches.size(1), w = patches.size(2);
    auto x = patches.flatten(1, 2);  // [batch, h * w, dim]
    // Under autocast the patches are bf16 while cls_token stays fp32; cat needs one dtype.
    x = torch::cat({cls_token_.to(x.scalar_type()).expand({batch, -1, -1}), x}, 1);
    x = x + position_embedding(h, w);  // [batch, 1 + h * w, dim]
    for (const auto& block : *blocks_) x = block->as<VitBlockImpl>()->forward(x);
    return apply_layer_norm(*norm_, x).select(1, 0);
  }

  torch::Tensor forward(const torch::Tensor& images) override {
    if (!head_) timm_layers::throw_no_classifier(config_.name);
    return apply_linear(*head_, forward_features(images));
  }

  int64_t num_features() const override { return config_.embed_dim; }

  // A checkpoint whose pos_embed has another square grid (another image size)
  // is resampled to this model's grid, as timm's checkpoint_filter_fn does.
  void load_timm_state_dict(const StateDict& weights) override {
    StateDict adapted = weights;
    auto it = adapted.find("pos_embed");
    if (it != adapted.end() && it->second.dim() == 3 && it->second.size(1) != pos_embed_.size(1)) {
      const int64_t grid_tokens = it->second.size(1) - kPrefixTokens;
      const auto old_grid = static_cast<int64_t>(std::llround(std::sqrt(static_cast<double>(grid_tokens))));
      if (grid_tokens <= 0 || old_grid * old_grid != grid_tokens) {
        throw std::runtime_error("load_timm_state_dict(" + config_.name + "): pos_embed has shape " +
                                 hf::shape_string(it->second.sizes()) + ", which is not 1 class token + a " +
                                 "square grid of patches; cannot resample it to " + std::to_string(grid_) +
                                 "x" + std::to_string(grid_));
      }
      it->second = resample_abs_pos_embed(it->second, {grid_, grid_}, {old_grid, old_grid});
    }
    const bool has_head = static_cast<bool>(head_);
    timm_layers::load_timm_weights(
        *this, adapted,
        [has_head](const std::string& name) { return !has_head && name.rfind("head.", 0) == 0; },
        config_.name,
        "timm " + config_.name + " (" + std::to_string(config_.depth) + " blocks, width " +
            std::to_string(config_.embed_dim) + (has_head ? "" : ", no classifier") + ")");
  }

 private:
  // pos_embed for an h x w patch grid: the model's own for its image size,
  // otherwise resampled on the fly (timm's dynamic_img_size), which keeps the
  // gradient to pos_embed.
  torch::Tensor position_embedding(int64_t h, int64_t w) {
    if (h == grid_ && w == grid_) return pos_embed_;
    return resample_abs_pos_embed(pos_embed_, {h, w}, {grid_, grid_});
  }

  VitConfig config_;
  int64_t grid_;  // patches per side at config_.image_size
  PatchEmbed patch_embed_{nullptr};
  torch::Tensor cls_token_, pos_embed_;
  torch::nn::ModuleList blocks_{nullptr};
  torch::nn::LayerNorm norm_{nullptr};
  torch::nn::Linear head_{nullptr};
};

}  // namespace

ImageModelFamily vit_models() {
  // vision_transformer.py's _cfg: the default tags (augreg_in21k_ft_in1k,
  // augreg2_in21k_ft_in1k for B/16) use IMAGENET_INCEPTION_MEAN / STD,
  // crop_pct 0.9, bicubic, 224 x 224.
  ImageModelInfo info;
  info.image_size = 224;
  info.mean = {0.5, 0.5, 0.5};
  info.std = {0.5, 0.5, 0.5};
  info.crop_pct = 0.9;
  info.interpolation = "bicubic";

  const std::vector<VitConfig> configs = {
      {"vit_tiny_patch16_224", 16, 192, 12, 3},
      {"vit_small_patch16_224", 16, 384, 12, 6},
      {"vit_base_patch16_224", 16, 768, 12, 12},
      {"vit_base_patch32_224", 32, 768, 12, 12},
  };
  ImageModelFamily family;
  for (const auto& config : configs) {
    family[config.name] = {[config](int64_t num_classes) -> std::shared_ptr<ImageEncoderImpl> {
                             return std::make_shared<VisionTransformerImpl>(config, num_classes);
                           },
                           info};
  }
  return family;
}

}  // namespace automm
