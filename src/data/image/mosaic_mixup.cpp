#include "data/image/mosaic_mixup.h"

#include <algorithm>
#include <stdexcept>
#include <string>
#include <utility>

#include "data/image/image_ops.h"

namespace automm {
namespace {

constexpr uint8_t kPadValue = 114;  // pad_val of both transforms

// numpy.random.uniform(lo, hi): [lo, hi).
double uniform(std::mt19937_64& rng, double lo, double hi) {
  return lo == hi ? lo : std::uniform_real_distribution<double>(lo, hi)(rng);
}
// numpy.random.randint(0, n): [0, n).
int64_t randint(std::mt19937_64& rng, int64_t n) {
  return std::uniform_int_distribution<int64_t>(0, n - 1)(rng);
}

Image filled(int64_t width, int64_t height) {
  Image out(width, height);
  std::fill(out.pixels.begin(), out.pixels.end(), kPadValue);
  return out;
}

// dst[dst_y:dst_y+h, dst_x:dst_x+w] = src[src_y:src_y+h, src_x:src_x+w]
void paste(Image& dst, int64_t dst_x, int64_t dst_y, const Image& src, int64_t src_x, int64_t src_y,
           int64_t w, int64_t h) {
  for (int64_t y = 0; y < h; ++y)
    std::copy_n(src.row(src_y + y) + src_x * 3, w * 3, dst.row(dst_y + y) + dst_x * 3);
}

// mmcv.imresize(img, (int(w * ratio), int(h * ratio))), with PIL's bilinear.
Image resize_by(const Image& in, double ratio, const char* transform) {
  const auto w = static_cast<int64_t>(static_cast<double>(in.width) * ratio);
  const auto h = static_cast<int64_t>(static_cast<double>(in.height) * ratio);
  if (w < 1 || h < 1)
    throw std::invalid_argument(
        std::string(transform) + ": a " + std::to_string(in.width) + "x" + std::to_string(in.height) +
        " image scaled by " + std::to_string(ratio) +
        " has no pixels left (mmdet fails on it too); drop such extreme aspect ratios");
  return resize(in, w, h, Interpolation::kBilinear);
}

// min(S / h, S / w): the keep-ratio scale that fits an image in S x S.
double fit_ratio(const Image& in, int64_t image_size, const char* transform) {
  if (in.empty()) throw std::invalid_argument(std::string(transform) + ": an image has no pixels");
  const auto s = static_cast<double>(image_size);
  return std::min(s / static_cast<double>(in.height), s / static_cast<double>(in.width));
}

// HorizontalBoxes' in-place ops on float32 tensors; each step rounds to float
// as torch does, so the doubles returned are mmdet's float32 values.
float f32(double v) { return static_cast<float>(v); }

void rescale(std::vector<LabeledBox>& boxes, double ratio) {
  const float s = f32(ratio);
  for (auto& b : boxes) {
    b.x1 = f32(b.x1) * s, b.y1 = f32(b.y1) * s;
    b.x2 = f32(b.x2) * s, b.y2 = f32(b.y2) * s;
  }
}

void translate(std::vector<LabeledBox>& boxes, int64_t dx, int64_t dy) {
  const float fx = f32(static_cast<double>(dx)), fy = f32(static_cast<double>(dy));
  for (auto& b : boxes) {
    b.x1 = f32(b.x1) + fx, b.y1 = f32(b.y1) + fy;
    b.x2 = f32(b.x2) + fx, b.y2 = f32(b.y2) + fy;
  }
}

void clip(std::vector<LabeledBox>& boxes, int64_t width, int64_t height) {
  const float w = f32(static_cast<double>(width)), h = f32(static_cast<double>(height));
  for (auto& b : boxes) {
    b.x1 = std::clamp(f32(b.x1), 0.f, w), b.x2 = std::clamp(f32(b.x2), 0.f, w);
    b.y1 = std::clamp(f32(b.y1), 0.f, h), b.y2 = std::clamp(f32(b.y2), 0.f, h);
  }
}

void flip_horizontal(std::vector<LabeledBox>& boxes, int64_t width) {
  const float w = f32(static_cast<double>(width));
  for (auto& b : boxes) {
    const float x1 = f32(b.x1), x2 = f32(b.x2);
    b.x1 = w - x2, b.x2 = w - x1;
  }
}

// is_inside(all_inside=False): some of the box lies inside; after clipping, the
// boxes squashed onto an edge fail it.
void keep_inside(std::vector<LabeledBox>& boxes, int64_t width, int64_t height) {
  const auto w = static_cast<double>(width), h = static_cast<double>(height);
  boxes.erase(
      std::remove_if(boxes.begin(), boxes.end(),
                     [&](const LabeledBox& b) { return !(b.x1 < w && b.y1 < h && b.x2 > 0 && b.y2 > 0); }),
      boxes.end());
}

// Mosaic._mosaic_combine: where tile `loc` (0 top left, 1 top right, 2 bottom
// left, 3 bottom right) of size w x h lands on the 2S canvas, and which part of
// it: {paste x1, y1, x2, y2}, {crop x1, y1, x2, y2}.
std::pair<std::array<int64_t, 4>, std::array<int64_t, 4>> mosaic_combine(int loc, int64_t cx, int64_t cy,
                                                                         int64_t w, int64_t h,
                                                                         int64_t canvas) {
  switch (loc) {
    case 0: {
      const int64_t x1 = std::max<int64_t>(cx - w, 0), y1 = std::max<int64_t>(cy - h, 0);
      return {{x1, y1, cx, cy}, {w - (cx - x1), h - (cy - y1), w, h}};
    }
    case 1: {
      const int64_t y1 = std::max<int64_t>(cy - h, 0), x2 = std::min(cx + w, canvas);
      return {{cx, y1, x2, cy}, {0, h - (cy - y1), std::min(w, x2 - cx), h}};
    }
    case 2: {
      const int64_t x1 = std::max<int64_t>(cx - w, 0), y2 = std::min(canvas, cy + h);
      return {{x1, cy, cx, y2}, {w - (cx - x1), 0, w, std::min(y2 - cy, h)}};
    }
    default: {
      const int64_t x2 = std::min(cx + w, canvas), y2 = std::min(canvas, cy + h);
      return {{cx, cy, x2, y2}, {0, 0, std::min(w, x2 - cx), std::min(y2 - cy, h)}};
    }
  }
}

void check_image_size(int64_t image_size, const char* transform) {
  if (image_size < 1)
    throw std::invalid_argument(std::string(transform) + ": image_size must be positive, got " +
                                std::to_string(image_size));
}

}  // namespace

MosaicDraw draw_mosaic(std::mt19937_64& rng, int64_t image_size, double center_ratio_min,
                       double center_ratio_max) {
  const auto s = static_cast<double>(image_size);
  MosaicDraw draw;
  draw.center_x = static_cast<int64_t>(uniform(rng, center_ratio_min, center_ratio_max) * s);
  draw.center_y = static_cast<int64_t>(uniform(rng, center_ratio_min, center_ratio_max) * s);
  return draw;
}

BoxedImage mosaic(const std::array<const BoxedImage*, 4>& images, int64_t image_size,
                  const MosaicDraw& draw) {
  check_image_size(image_size, "mosaic");
  const int64_t canvas = 2 * image_size;
  const int64_t cx = draw.center_x, cy = draw.center_y;
  // center_ratio_range within (0, 2) keeps every tile on the canvas; numpy slicing would fail otherwise.
  if (cx <= 0 || cx >= canvas || cy <= 0 || cy >= canvas)
    throw std::invalid_argument("mosaic: the centre (" + std::to_string(cx) + ", " + std::to_string(cy) +
                                ") must lie strictly inside the " + std::to_string(canvas) + "x" +
                                std::to_string(canvas) + " canvas");
  BoxedImage out{filled(canvas, canvas), {}};
  for (int loc = 0; loc < 4; ++loc) {
    if (images[loc] == nullptr)
      throw std::invalid_argument("mosaic: image " + std::to_string(loc) + " is null");
    const double ratio = fit_ratio(images[loc]->image, image_size, "mosaic");
    const Image tile = resize_by(images[loc]->image, ratio, "mosaic");
    const auto [p, c] = mosaic_combine(loc, cx, cy, tile.width, tile.height, canvas);
    paste(out.image, p[0], p[1], tile, c[0], c[1], p[2] - p[0], p[3] - p[1]);
    std::vector<LabeledBox> boxes = images[loc]->boxes;
    rescale(boxes, ratio);
    translate(boxes, p[0] - c[0], p[1] - c[1]);
    out.boxes.insert(out.boxes.end(), boxes.begin(), boxes.end());
  }
  clip(out.boxes, canvas, canvas);  // bbox_clip_border
  keep_inside(out.boxes, canvas, canvas);
  return out;
}

MixUpDraw draw_mixup(std::mt19937_64& rng, int64_t image_size, int64_t base_width, int64_t base_height,
                     double ratio_min, double ratio_max, double flip_ratio) {
  MixUpDraw draw;
  draw.jit_factor = uniform(rng, ratio_min, ratio_max);
  draw.flip = uniform(rng, 0, 1) > flip_ratio;
  const auto jittered = static_cast<int64_t>(static_cast<double>(image_size) * draw.jit_factor);
  if (jittered > base_height) draw.y_offset = randint(rng, jittered - base_height);
  if (jittered > base_width) draw.x_offset = randint(rng, jittered - base_width);
  return draw;
}

BoxedImage mixup(const BoxedImage& base, const BoxedImage& other, int64_t image_size, const MixUpDraw& draw) {
  check_image_size(image_size, "mixup");
  if (other.boxes.empty()) return base;  // mmdet: "empty bbox", nothing mixed in
  if (base.image.empty()) throw std::invalid_argument("mixup: the base image has no pixels");
  // 1-2. keep-ratio resize into the top left of an S x S canvas.
  double ratio = fit_ratio(other.image, image_size, "mixup");
  Image canvas = filled(image_size, image_size);
  const Image resized = resize_by(other.image, ratio, "mixup");
  paste(canvas, 0, 0, resized, 0, 0, resized.width, resized.height);
  // 3-4. scale jitter of the whole canvas, flip.
  ratio *= draw.jit_factor;
  Image jittered = resize_by(canvas, draw.jit_factor, "mixup");
  if (draw.flip) jittered = hflip(jittered);
  // 5. pad to cover the base, crop the base's size at the offsets.
  const int64_t origin_w = jittered.width, origin_h = jittered.height;
  const int64_t target_w = base.image.width, target_h = base.image.height;
  const int64_t padded_w = std::max(origin_w, target_w), padded_h = std::max(origin_h, target_h);
  if (draw.x_offset < 0 || draw.x_offset > padded_w - target_w || draw.y_offset < 0 ||
      draw.y_offset > padded_h - target_h)
    throw std::invalid_argument("mixup: offsets (" + std::to_string(draw.x_offset) + ", " +
                                std::to_string(draw.y_offset) + ") leave the " + std::to_string(padded_w) +
                                "x" + std::to_string(padded_h) + " padded image for a " +
                                std::to_string(target_w) + "x" + std::to_string(target_h) + " crop");
  Image padded = filled(padded_w, padded_h);
  paste(padded, 0, 0, jittered, 0, 0, origin_w, origin_h);
  // 8. 0.5 * a + 0.5 * b in float32 is exact; astype(uint8) truncates.
  BoxedImage out{Image(target_w, target_h), {}};
  for (int64_t y = 0; y < target_h; ++y) {
    const uint8_t* a = base.image.row(y);
    const uint8_t* b = padded.row(y + draw.y_offset) + draw.x_offset * 3;
    uint8_t* o = out.image.row(y);
    for (int64_t i = 0; i < target_w * 3; ++i) o[i] = static_cast<uint8_t>((a[i] + b[i]) / 2);
  }
  // 6-7. other's boxes follow its pixels.
  std::vector<LabeledBox> boxes = other.boxes;
  rescale(boxes, ratio);
  clip(boxes, origin_w, origin_h);
  if (draw.flip) flip_horizontal(boxes, origin_w);
  translate(boxes, -draw.x_offset, -draw.y_offset);
  clip(boxes, target_w, target_h);
  out.boxes = base.boxes;
  for (auto& b : out.boxes) b.x1 = f32(b.x1), b.y1 = f32(b.y1), b.x2 = f32(b.x2), b.y2 = f32(b.y2);
  out.boxes.insert(out.boxes.end(), boxes.begin(), boxes.end());
  keep_inside(out.boxes, target_w, target_h);
  return out;
}

BoxedImage multi_image_mix(int64_t index, int64_t dataset_size,
                           const std::function<BoxedImage(int64_t)>& load, std::mt19937_64& rng,
                           const MultiImageMixOptions& options) {
  if (dataset_size < 1 || index < 0 || index >= dataset_size)
    throw std::invalid_argument("multi_image_mix: index " + std::to_string(index) + " outside a dataset of " +
                                std::to_string(dataset_size) + " samples");
  BoxedImage result = load(index);
  if (options.use_mosaic) {
    std::array<int64_t, 3> picks{};
    for (auto& p : picks) p = randint(rng, dataset_size);  // Mosaic.get_indexes
    // Mosaic.transform's probability check; mmdet loads the three first, which draws nothing.
    if (!(uniform(rng, 0, 1) > options.mosaic_prob)) {
      const std::array<BoxedImage, 3> others{load(picks[0]), load(picks[1]), load(picks[2])};
      const MosaicDraw draw =
          draw_mosaic(rng, options.image_size, options.center_ratio_min, options.center_ratio_max);
      result = mosaic({&result, &others[0], &others[1], &others[2]}, options.image_size, draw);
    }
  }
  if (options.use_mixup) {
    const BoxedImage other = load(randint(rng, dataset_size));  // MixUp.get_indexes
    if (!other.boxes.empty()) {
      const MixUpDraw draw = draw_mixup(rng, options.image_size, result.image.width, result.image.height,
                                        options.mixup_ratio_min, options.mixup_ratio_max, options.flip_ratio);
      result = mixup(result, other, options.image_size, draw);
    }
  }
  return result;
}

}  // namespace automm
