// timm's SwinTransformer v1 (timm/models/swin_transformer.py), following timm
// >= 0.9's layout: activations stay NHWC, and each stage starts with its patch
// merging, so the downsamples are layers.1..3.downsample (timm < 0.9 named them
// layers.0..2.downsample and the classifier "head"; load_timm_state_dict
// renames such checkpoints as timm's checkpoint_filter_fn does). Parameter
// names: patch_embed.{proj, norm}, layers.i.downsample.{norm, reduction},
// layers.i.blocks.j.{norm1, attn.qkv, attn.proj, attn.relative_position_bias_table,
// norm2, mlp.fc1, mlp.fc2}, norm, head.fc.
#include <algorithm>
#include <array>
#include <regex>
#include <stdexcept>

#include "models/image/image_encoder.h"
#include "models/image/transformer_layers.h"
#include "models/layers.h"
#include "models/text/hf_common.h"

namespace automm {
namespace {

using timm_layers::Mlp;
using timm_layers::PatchEmbed;

constexpr double kNormEps = 1e-5;      // nn.LayerNorm's default
constexpr double kMaskedScore = -100;  // timm's (and the original Swin's) shifted-window mask value

struct SwinConfig {
  std::string name;
  int64_t embed_dim;
  std::vector<int64_t> depths;
  std::vector<int64_t> num_heads;
  int64_t window_size = 7;
  int64_t patch_size = 4;
  int64_t image_size = 224;
  int64_t mlp_ratio = 4;
};

// x [batch, H, W, C] -> windows [batch * H/w * W/w, w * w, C], windows in
// row-major order per image (timm's window_partition).
torch::Tensor window_partition(const torch::Tensor& x, int64_t window) {
  const int64_t batch = x.size(0), height = x.size(1), width = x.size(2), channels = x.size(3);
  return x.reshape({batch, height / window, window, width / window, window, channels})
      .permute({0, 1, 3, 2, 4, 5})
      .reshape({-1, window * window, channels});
}

// Inverse of window_partition: [batch * windows, w * w, C] -> [batch, H, W, C].
torch::Tensor window_reverse(const torch::Tensor& windows, int64_t window, int64_t height, int64_t width) {
  const int64_t channels = windows.size(2);
  return windows.reshape({-1, height / window, width / window, window, window, channels})
      .permute({0, 1, 3, 2, 4, 5})
      .reshape({-1, height, width, channels});
}

// timm's get_relative_position_index: [w * w, w * w] int64 row of
// relative_position_bias_table for each (query, key) pair of one window.
torch::Tensor relative_position_index(int64_t window) {
  auto positions = torch::arange(window * window, torch::kLong);
  auto rows = positions.div(window, "floor"), cols = positions.remainder(window);
  auto delta_rows = rows.unsqueeze(1) - rows.unsqueeze(0) + (window - 1);  // [N, N] in [0, 2w - 2]
  auto delta_cols = cols.unsqueeze(1) - cols.unsqueeze(0) + (window - 1);
  return delta_rows * (2 * window - 1) + delta_cols;
}

// The SW-MSA mask for a resolution x resolution map shifted by `shift`:
// [windows, w * w, w * w], 0 between tokens of the same region before the
// cyclic shift and kMaskedScore between tokens the roll brought together.
torch::Tensor shifted_window_mask(int64_t resolution, int64_t window, int64_t shift) {
  auto regions = torch::zeros({1, resolution, resolution, 1});
  const std::array<std::array<int64_t, 2>, 3> spans = {{{0, resolution - window},
                                                        {resolution - window, resolution - shift},
                                                        {resolution - shift, resolution}}};
  int64_t label = 0;
  for (const auto& h : spans) {
    for (const auto& w : spans) {
      regions.slice(1, h[0], h[1]).slice(2, w[0], w[1]).fill_(static_cast<double>(label++));
    }
  }
  auto labels = window_partition(regions, window).squeeze(-1);  // [windows, w * w]
  auto differs = labels.unsqueeze(1) != labels.unsqueeze(2);
  return torch::zeros(differs.sizes()).masked_fill(differs, kMaskedScore);
}

// timm's WindowAttention: the shared fused-qkv attention plus a learned bias
// per relative offset inside the window and head.
class WindowAttentionImpl : public timm_layers::AttentionImpl {
 public:
  WindowAttentionImpl(int64_t dim, int64_t num_heads, int64_t window) : AttentionImpl(dim, num_heads) {
    bias_table_ = register_parameter("relative_position_bias_table",
                                     torch::randn({(2 * window - 1) * (2 * window - 1), num_heads}) * 0.02);
    // Not loaded from checkpoints (timm's filter drops it too): it only depends on the window size.
    index_ = register_buffer("relative_position_index", relative_position_index(window));
  }
  // [1, heads, w * w, w * w]
  torch::Tensor relative_position_bias() {
    const int64_t tokens = index_.size(0);
    // to(kLong): libtorch's Module::to(dtype) converts integer buffers too.
    return bias_table_.index_select(0, index_.flatten().to(torch::kLong))
        .view({tokens, tokens, -1})
        .permute({2, 0, 1})
        .unsqueeze(0);
  }

 private:
  torch::Tensor bias_table_, index_;
};
TORCH_MODULE(WindowAttention);

class SwinBlockImpl : public torch::nn::Module {
 public:
  // resolution: the stage's feature map side. As timm's _calc_window_shift: a
  // window no smaller than the map covers it whole, with no shift.
  SwinBlockImpl(int64_t dim, int64_t num_heads, int64_t resolution, int64_t window, int64_t shift,
                int64_t mlp_hidden)
      : window_(std::min(window, resolution)), shift_(resolution <= window ? 0 : shift) {
    norm1_ = register_module("norm1", timm_layers::make_norm(dim, kNormEps));
    attn_ = register_module("attn", WindowAttention(dim, num_heads, window_));
    norm2_ = register_module("norm2", timm_layers::make_norm(dim, kNormEps));
    mlp_ = register_module("mlp", Mlp(dim, mlp_hidden));
    if (shift_ > 0) mask_ = register_buffer("attn_mask", shifted_window_mask(resolution, window_, shift_));
  }

  torch::Tensor forward(torch::Tensor x) {  // [batch, H, W, C]
    x = x + shifted_window_attention(apply_layer_norm(*norm1_, x));
    return mlp_->forward(apply_layer_norm(*norm2_, x), /*residual=*/x);
  }

 private:
  torch::Tensor shifted_window_attention(const torch::Tensor& x) {  // [batch, H, W, C]
    const int64_t height = x.size(1), width = x.size(2);
    auto shifted = shift_ > 0 ? torch::roll(x, {-shift_, -shift_}, {1, 2}) : x;
    auto bias = attn_->relative_position_bias();        // [1, heads, N, N]
    if (shift_ > 0) bias = bias + mask_.unsqueeze(1);   // [windows, heads, N, N]
    auto windows = window_partition(shifted, window_);  // [batch * windows, N, C]
    auto attended = window_reverse(attn_->forward(windows, bias), window_, height, width);
    return shift_ > 0 ? torch::roll(attended, {shift_, shift_}, {1, 2}) : attended;
  }

  int64_t window_, shift_;
  torch::nn::LayerNorm norm1_{nullptr}, norm2_{nullptr};
  WindowAttention attn_{nullptr};
  Mlp mlp_{nullptr};
  torch::Tensor mask_;
};
TORCH_MODULE(SwinBlock);

// timm >= 0.9's PatchMerging: each 2x2 neighbourhood's channels concatenated as
// (row 0, col 0), (row 1, col 0), (row 0, col 1), (row 1, col 1) -- the x0, x1,
// x2, x3 order of the original Swin and torchvision -- then norm and a
// bias-free reduction to out_dim.
class PatchMergingImpl : public torch::nn::Module {
 public:
  PatchMergingImpl(int64_t dim, int64_t out_dim) {
    norm_ = register_module("norm", timm_layers::make_norm(4 * dim, kNormEps));
    reduction_ = register_module("reduction", timm_layers::make_linear(4 * dim, out_dim, /*bias=*/false));
  }
  torch::Tensor forward(const torch::Tensor& x) {  // [batch, H, W, C] -> [batch, H/2, W/2, out_dim]
    const int64_t batch = x.size(0), height = x.size(1), width = x.size(2), channels = x.size(3);
    // [batch, H/2, row, W/2, col, C] -> [batch, H/2, W/2, col, row, C] -> [..., 4C]
    auto merged =
        x.reshape({batch, height / 2, 2, width / 2, 2, channels}).permute({0, 1, 3, 4, 2, 5}).flatten(3);
    return apply_linear(*reduction_, apply_layer_norm(*norm_, merged));
  }

 private:
  torch::nn::LayerNorm norm_{nullptr};
  torch::nn::Linear reduction_{nullptr};
};
TORCH_MODULE(PatchMerging);

// timm's SwinTransformerStage: optional downsample, then blocks alternating
// plain (even j) and shifted (odd j, shift = window / 2) windows.
class SwinStageImpl : public torch::nn::Module {
 public:
  SwinStageImpl(int64_t in_dim, int64_t out_dim, bool downsample, int64_t resolution, int64_t depth,
                int64_t num_heads, const SwinConfig& config) {
    if (downsample) downsample_ = register_module("downsample", PatchMerging(in_dim, out_dim));
    blocks_ = register_module("blocks", torch::nn::ModuleList());
    for (int64_t j = 0; j < depth; ++j) {
      const int64_t shift = j % 2 == 0 ? 0 : config.window_size / 2;
      blocks_->push_back(
          SwinBlock(out_dim, num_heads, resolution, config.window_size, shift, out_dim * config.mlp_ratio));
    }
  }
  torch::Tensor forward(torch::Tensor x) {  // [batch, H, W, in_dim] -> [batch, H', W', out_dim]
    if (downsample_) x = downsample_->forward(x);
    for (const auto& block : *blocks_) x = block->as<SwinBlockImpl>()->forward(x);
    return x;
  }

 private:
  PatchMerging downsample_{nullptr};
  torch::nn::ModuleList blocks_{nullptr};
};
TORCH_MODULE(SwinStage);

// timm.layers.ClassifierHead with avg pooling over NHWC: the pooling has no
// parameters, so only "fc" remains.
class ClassifierHeadImpl : public torch::nn::Module {
 public:
  ClassifierHeadImpl(int64_t in, int64_t num_classes) {
    fc_ = register_module("fc", timm_layers::make_linear(in, num_classes));
  }
  torch::Tensor forward(const torch::Tensor& pooled) { return apply_linear(*fc_, pooled); }

 private:
  torch::nn::Linear fc_{nullptr};
};
TORCH_MODULE(ClassifierHead);

// Renames a timm < 0.9 Swin checkpoint to timm >= 0.9 names (timm's
// checkpoint_filter_fn): layers.i.downsample -> layers.(i+1).downsample and
// head.* -> head.fc.*. Old checkpoints are told apart by a downsample in
// layers.0, which the new layout never has (timm looks for head.fc.weight
// instead, which misfires on headless checkpoints).
StateDict with_current_names(const StateDict& weights) {
  const bool old_layout = std::any_of(weights.begin(), weights.end(), [](const auto& item) {
    return item.first.rfind("layers.0.downsample.", 0) == 0;
  });
  const std::regex downsample(R"(^layers\.(\d+)\.downsample\.)");
  StateDict renamed;
  for (const auto& [key, tensor] : weights) {
    std::string name = key;
    std::smatch match;
    if (old_layout && std::regex_search(name, match, downsample)) {
      name =
          "layers." + std::to_string(std::stoll(match[1].str()) + 1) + ".downsample." + match.suffix().str();
    }
    if (name == "head.weight" || name == "head.bias") name = "head.fc." + name.substr(5);
    if (!renamed.emplace(name, tensor).second) {
      throw std::runtime_error("load_timm_state_dict: checkpoint keys map twice to '" + name +
                               "' after renaming timm < 0.9 Swin names; keep one naming scheme");
    }
  }
  return renamed;
}

class SwinTransformerImpl : public ImageEncoderImpl {
 public:
  SwinTransformerImpl(SwinConfig config, int64_t num_classes) : config_(std::move(config)) {
    if (num_classes < 0) {
      throw std::invalid_argument(config_.name + ": num_classes must be >= 0 (0 = no classifier), got " +
                                  std::to_string(num_classes));
    }
    const int64_t stages = static_cast<int64_t>(config_.depths.size());
    num_features_ = config_.embed_dim << (stages - 1);
    patch_embed_ =
        register_module("patch_embed", PatchEmbed(config_.embed_dim, config_.patch_size, true, kNormEps));
    layers_ = register_module("layers", torch::nn::ModuleList());
    int64_t resolution = config_.image_size / config_.patch_size;
    int64_t dim = config_.embed_dim;
    for (int64_t i = 0; i < stages; ++i) {
      const int64_t out_dim = config_.embed_dim << i;
      if (i > 0) resolution /= 2;
      layers_->push_back(
          SwinStage(dim, out_dim, i > 0, resolution, config_.depths[i], config_.num_heads[i], config_));
      dim = out_dim;
    }
    norm_ = register_module("norm", timm_layers::make_norm(num_features_, kNormEps));
    if (num_classes > 0) head_ = register_module("head", ClassifierHead(num_features_, num_classes));
  }

  // images [batch, 3, 224, 224] -> features averaged over the final 7 x 7 map [batch, num_features].
  torch::Tensor forward_features(const torch::Tensor& images) override {
    timm_layers::check_images(images, config_.name);
    if (images.size(2) != config_.image_size || images.size(3) != config_.image_size) {
      // The shifted-window masks are built for one resolution (timm's fixed_input_size).
      throw std::invalid_argument(config_.name + " takes " + std::to_string(config_.image_size) + "x" +
                                  std::to_string(config_.image_size) + " images, got " +
                                  std::to_string(images.size(2)) + "x" + std::to_string(images.size(3)) +
                                  "; set the image size to " + std::to_string(config_.image_size));
    }
    auto x = patch_embed_->forward(images);  // [batch, 56, 56, embed_dim]
    for (const auto& stage : *layers_) x = stage->as<SwinStageImpl>()->forward(x);
    return apply_layer_norm(*norm_, x).mean({1, 2});  // [batch, 7, 7, num_features] -> [batch, num_features]
  }

  torch::Tensor forward(const torch::Tensor& images) override {
    if (!head_) timm_layers::throw_no_classifier(config_.name);
    return head_->forward(forward_features(images));
  }

  int64_t num_features() const override { return num_features_; }

  void load_timm_state_dict(const StateDict& weights) override {
    const bool has_head = static_cast<bool>(head_);
    auto is_ignored = [has_head](const std::string& name) {
      // Buffers derived from the window size and resolution, rebuilt here.
      const bool is_buffer = name.find("relative_position_index") != std::string::npos ||
                             name.find("attn_mask") != std::string::npos;
      return is_buffer || (!has_head && name.rfind("head.", 0) == 0);
    };
    std::string description = "timm " + config_.name + " (depths";
    for (auto depth : config_.depths) description += " " + std::to_string(depth);
    description += ", width " + std::to_string(config_.embed_dim) + (has_head ? "" : ", no classifier") + ")";
    timm_layers::load_timm_weights(*this, with_current_names(weights), is_ignored, config_.name, description);
  }

 private:
  SwinConfig config_;
  int64_t num_features_;
  PatchEmbed patch_embed_{nullptr};
  torch::nn::ModuleList layers_{nullptr};
  torch::nn::LayerNorm norm_{nullptr};
  ClassifierHead head_{nullptr};
};

}  // namespace

ImageModelFamily swin_models() {
  // swin_transformer.py's _cfg: IMAGENET_DEFAULT_MEAN / STD, crop_pct 0.9,
  // bicubic, fixed 224 x 224 input (default tags: ms_in22k_ft_in1k for base and
  // small, ms_in1k for tiny).
  ImageModelInfo info;
  info.image_size = 224;
  info.crop_pct = 0.9;
  info.interpolation = "bicubic";

  const std::vector<SwinConfig> configs = {
      {"swin_tiny_patch4_window7_224", 96, {2, 2, 6, 2}, {3, 6, 12, 24}},
      {"swin_small_patch4_window7_224", 96, {2, 2, 18, 2}, {3, 6, 12, 24}},
      {"swin_base_patch4_window7_224", 128, {2, 2, 18, 2}, {4, 8, 16, 32}},
  };
  ImageModelFamily family;
  for (const auto& config : configs) {
    family[config.name] = {[config](int64_t num_classes) -> std::shared_ptr<ImageEncoderImpl> {
                             return std::make_shared<SwinTransformerImpl>(config, num_classes);
                           },
                           info};
  }
  return family;
}

}  // namespace automm
