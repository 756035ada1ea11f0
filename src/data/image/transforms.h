// AutoMM's image transforms, built by name from model.timm_image.train_transforms
// / val_transforms (AutoMM data/utils.py get_image_transform_funcs):
//
//   resize_to_square        Resize((size, size), BICUBIC)
//   resize_shorter_side     Resize(size, BICUBIC)
//   center_crop             CenterCrop(size)
//   random_resize_crop      RandomResizedCrop(size)   (scale 0.08-1, ratio 3/4-4/3, BILINEAR)
//   random_horizontal_flip  RandomHorizontalFlip()    (p 0.5)
//   random_vertical_flip    RandomVerticalFlip()      (p 0.5)
//   color_jitter            ColorJitter(...)          (bare: brightness = contrast = saturation = 0.1)
//   affine                  RandomAffine(...)         (bare: degrees 15, translate 0.1, scale 0.9-1.1)
//   randaug                 AutoMM's RandAugment(2, 9)  (data/randaug.py, not torchvision's)
//   trivial_augment         AutoMM's TrivialAugment(IMAGE, 30) (data/trivial_augmenter.py)
//
// A spec is "name" or "name(arg, key=value, range=lo-hi)", e.g.
// "random_resize_crop(224, scale=0.5-1.0)" or "color_jitter(0.4, 0.4, 0.4)".
// Random parameters follow torchvision's / AutoMM's distributions but come from
// std::mt19937_64, so they are not the same numbers as in Python.
#pragma once

#include <torch/torch.h>

#include <array>
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "data/image/image.h"
#include "data/image/image_ops.h"

namespace automm {

using Range = std::pair<double, double>;  // closed interval [first, second]

// ---- Random parameters, drawn as torchvision / AutoMM draw them ----------

// RandomResizedCrop.get_params: 10 tries of area ~ U(scale) * W * H and
// aspect ~ exp(U(log ratio)), else a centre crop clamped to the ratio range.
struct CropBox {
  int64_t top = 0, left = 0, height = 0, width = 0;
};
CropBox sample_resized_crop(int64_t width, int64_t height, Range scale, Range ratio, std::mt19937_64& rng);

// RandomAffine.get_params: angle ~ U(degrees); translation round(U(+-t * size))
// pixels; scale ~ U(scale); shear_x ~ U(shear).
struct AffineRanges {
  Range degrees{0, 0};
  double translate_x = 0, translate_y = 0;  // fractions of width / height
  Range scale{1, 1};
  Range shear{0, 0};
};
struct AffineParams {
  double angle = 0, translate_x = 0, translate_y = 0, scale = 1, shear_x = 0;
};
AffineParams sample_affine(const AffineRanges& ranges, int64_t width, int64_t height, std::mt19937_64& rng);

// ColorJitter.get_params: a random order of the four adjustments and a factor
// per enabled one (brightness/contrast/saturation ~ U(range), hue ~ U(range)).
struct ColorJitterRanges {
  // Disabled adjustments have `enabled` false (torchvision's None).
  std::array<Range, 4> ranges{};  // brightness, contrast, saturation, hue
  std::array<bool, 4> enabled{};
};
struct ColorJitterParams {
  std::array<int, 4> order{0, 1, 2, 3};  // indices into ranges, applied in this order
  std::array<double, 4> factors{1, 1, 1, 0};
};
ColorJitterParams sample_color_jitter(const ColorJitterRanges& ranges, std::mt19937_64& rng);
Image apply_color_jitter(const Image& in, const ColorJitterRanges& ranges, const ColorJitterParams& params);

// The PIL operations of AutoMM's TrivialAugment and RandAugment. `magnitude`
// is the operation's final argument: degrees (rotate), threshold (solarize),
// bits (posterize), enhance factor, shear coefficient, pixels (translate) or
// the addition of SolarizeAdd; signs are already drawn.
enum class AugmentOp {
  kIdentity,
  kAutoContrast,
  kEqualize,
  kRotate,
  kSolarize,
  kColor,
  kPosterize,
  kContrast,
  kBrightness,
  kSharpness,
  kShearX,
  kShearY,
  kTranslateX,
  kTranslateY,
  kSolarizeAdd,
};
struct AugmentStep {
  AugmentOp op = AugmentOp::kIdentity;
  double magnitude = 0;
};
const char* augment_op_name(AugmentOp op);
Image apply_augment(const Image& in, const AugmentStep& step);

// TrivialAugment: one of the 14 ops (all but SolarizeAdd) uniformly, level
// randint(0, max_strength) / max_strength: rotate +-int(30 level) degrees,
// solarize 256 - int(256 level), posterize 4 - int(4 level) bits, enhancers
// 0.1 + 1.7 level, shear +-0.3 level, translate +-int(10 level) pixels.
constexpr int kNumTrivialAugmentOps = 14;
AugmentStep sample_trivial_augment(int max_strength, std::mt19937_64& rng);

// RandAugment(n, m): n ops with replacement from 14 (no identity, SolarizeAdd
// instead), value m / 30 * (max - min) + min, coin-flipped signs for rotate,
// shear and translate (100 px at m = 30).
std::vector<AugmentStep> sample_randaug(int num_ops, int magnitude, std::mt19937_64& rng);

// ---- Transforms by name ---------------------------------------------------

// An image and the targets that move with its pixels (Detectron2's Instances
// idea): a task's boxes and its segmentation mask. Geometric transforms move
// them with the same random draw that moves the pixels: resize_to_square and
// resize_shorter_side scale them (the mask with NEAREST), center_crop and
// random_resize_crop shift and clip them (a box left with no area is dropped,
// and box_ids says which boxes remain), the flips mirror them. Photometric
// transforms (color_jitter) leave them. affine, randaug and trivial_augment
// (rotations, shears, translations) refuse a sample with targets, naming
// themselves: moving boxes through them is not built.
struct ImageSample {
  Image image;
  // [n, 4] float32 boxes (x1, y1, x2, y2) in pixels of `image`; undefined = none.
  torch::Tensor boxes;
  // [n] int64: for each remaining box, its index among the boxes given.
  torch::Tensor box_ids;
  // A class-index mask the size of `image`, the class in all three channels; empty = none.
  Image mask;

  ImageSample() = default;
  explicit ImageSample(Image image_in, torch::Tensor boxes_in = {}, Image mask_in = {});
  bool has_targets() const { return boxes.defined() || !mask.empty(); }
};

class ImageTransform {
 public:
  virtual ~ImageTransform() = default;
  // Transforms the image and moves its targets with it.
  virtual void apply(ImageSample& sample, std::mt19937_64& rng) const = 0;
  // The image alone.
  Image apply(const Image& in, std::mt19937_64& rng) const;
};

// spec: see the top of this file. image_size is AutoMM's `size` (the default
// size argument); interpolation ("bicubic" or "bilinear") is used by the
// resize_* transforms. Unknown names throw std::invalid_argument listing the
// known ones; bad arguments throw naming the transform and the argument.
std::unique_ptr<ImageTransform> make_image_transform(const std::string& spec, int64_t image_size,
                                                     const std::string& interpolation = "bicubic");
std::vector<std::string> image_transform_names();

// A list of transforms applied in order, as torchvision's Compose.
class ImagePipeline {
 public:
  ImagePipeline(const std::vector<std::string>& specs, int64_t image_size,
                const std::string& interpolation = "bicubic");
  Image apply(const Image& in, std::mt19937_64& rng) const;
  // The image and its targets; throws when a transform cannot move them. Without
  // targets, the same pixels and random draws as apply(image).
  ImageSample apply(ImageSample sample, std::mt19937_64& rng) const;
  size_t size() const { return transforms_.size(); }

 private:
  std::vector<std::unique_ptr<ImageTransform>> transforms_;
};

// model.timm_image.image_norm: "imagenet", "clip" or "inception" -> (mean, std).
std::pair<std::array<double, 3>, std::array<double, 3>> image_norm_stats(const std::string& name);

// ToTensor + Normalize in one pass: [3, H, W] float32 with
// (v / 255 - mean) / std computed in float32 as torchvision does.
torch::Tensor to_normalized_tensor(const Image& image, const std::array<double, 3>& mean,
                                   const std::array<double, 3>& std);

}  // namespace automm
