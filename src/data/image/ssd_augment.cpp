#include "data/image/ssd_augment.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <stdexcept>
#include <string>
#include <utility>

namespace automm {
namespace {

// One numpy draw: u in [0, 1), one engine step.
double unit(std::mt19937_64& rng) { return std::generate_canonical<double, 53>(rng); }
// numpy.random.uniform(low, high): low + (high - low) u, also when low > high.
double uniform(std::mt19937_64& rng, double low, double high) { return low + (high - low) * unit(rng); }
// numpy.random.randint(n) / choice of n items: [0, n).
int64_t randint(std::mt19937_64& rng, int64_t n) {
  return std::min(static_cast<int64_t>(unit(rng) * static_cast<double>(n)), n - 1);
}

float f32(double v) { return static_cast<float>(v); }

// HorizontalBoxes.centers, in float32.
std::pair<float, float> centre(const LabeledBox& b) {
  return {(f32(b.x1) + f32(b.x2)) / 2.f, (f32(b.y1) + f32(b.y2)) / 2.f};
}

// is_center_of_bboxes_in_patch: strictly inside.
bool centre_in_patch(const LabeledBox& b, const MinIoUCropDraw& p) {
  const auto [cx, cy] = centre(b);
  return cx > static_cast<float>(p.left) && cy > static_cast<float>(p.top) &&
         cx < static_cast<float>(p.right) && cy < static_cast<float>(p.bottom);
}

// bbox_overlaps(patch, box) in float32, mode iou, eps 1e-6.
float patch_iou(const MinIoUCropDraw& p, const LabeledBox& b) {
  const float px1 = static_cast<float>(p.left), py1 = static_cast<float>(p.top);
  const float px2 = static_cast<float>(p.right), py2 = static_cast<float>(p.bottom);
  const float bx1 = f32(b.x1), by1 = f32(b.y1), bx2 = f32(b.x2), by2 = f32(b.y2);
  const float area1 = (px2 - px1) * (py2 - py1), area2 = (bx2 - bx1) * (by2 - by1);
  const float w = std::max(std::min(px2, bx2) - std::max(px1, bx1), 0.f);
  const float h = std::max(std::min(py2, by2) - std::max(py1, by1), 0.f);
  const float overlap = w * h;
  const float uni = std::max(area1 + area2 - overlap, f32(1e-6));
  return overlap / uni;
}

void check_image(const Image& image, const char* transform) {
  if (image.empty() || image.pixels.size() != static_cast<size_t>(image.width * image.height * 3))
    throw std::invalid_argument(std::string(transform) +
                                ": the image has no pixels or a buffer of the wrong size (" +
                                std::to_string(image.width) + "x" + std::to_string(image.height) + ")");
}

// cv2.cvtColor(BGR2HSV) on float32 (RGB2HSV_f's scalar loop), H in degrees.
void rgb_to_hsv(float r, float g, float b, float& h, float& s, float& v) {
  v = std::max({r, g, b});
  const float vmin = std::min({r, g, b});
  float diff = v - vmin;
  s = diff / (std::fabs(v) + FLT_EPSILON);
  diff = static_cast<float>(60. / (diff + FLT_EPSILON));
  if (v == r)
    h = (g - b) * diff;
  else if (v == g)
    h = (b - r) * diff + 120.f;
  else
    h = (r - g) * diff + 240.f;
  if (h < 0) h += 360.f;
}

// cv2.cvtColor(HSV2BGR) on float32 (HSV2RGB_native, hscale 6 / 360).
void hsv_to_rgb(float h, float s, float v, float& r, float& g, float& b) {
  if (s == 0) {
    r = g = b = v;
    return;
  }
  // Which of tab[0..3] becomes b, g, r in each sixth of the hue circle.
  static const int kSector[6][3] = {{1, 3, 0}, {1, 0, 2}, {3, 0, 1}, {0, 2, 1}, {0, 1, 3}, {2, 1, 0}};
  h *= 6.f / 360.f;
  h = std::fmod(h, 6.f);
  int sector = static_cast<int>(std::floor(h));
  h -= static_cast<float>(sector);
  if (sector < 0 || sector >= 6) sector = 0, h = 0.f;
  const float tab[4] = {v, v * (1.f - s), v * (1.f - s * h), v * (1.f - s * (1.f - h))};
  b = tab[kSector[sector][0]];
  g = tab[kSector[sector][1]];
  r = tab[kSector[sector][2]];
}

}  // namespace

ExpandDraw draw_expand(std::mt19937_64& rng, int64_t width, int64_t height, const ExpandOptions& options) {
  ExpandDraw draw;
  if (uniform(rng, 0, 1) > options.prob) return draw;
  draw.apply = true;
  draw.ratio = uniform(rng, options.ratio_min, options.ratio_max);
  const auto w = static_cast<double>(width), h = static_cast<double>(height);
  draw.left = static_cast<int64_t>(uniform(rng, 0, w * draw.ratio - w));
  draw.top = static_cast<int64_t>(uniform(rng, 0, h * draw.ratio - h));
  return draw;
}

BoxedImage expand(const BoxedImage& in, const ExpandDraw& draw, const ExpandOptions& options) {
  if (!draw.apply) return in;
  check_image(in.image, "expand");
  const int64_t w = in.image.width, h = in.image.height;
  const auto canvas_w = static_cast<int64_t>(static_cast<double>(w) * draw.ratio);
  const auto canvas_h = static_cast<int64_t>(static_cast<double>(h) * draw.ratio);
  if (draw.left < 0 || draw.top < 0 || draw.left + w > canvas_w || draw.top + h > canvas_h)
    throw std::invalid_argument("expand: a " + std::to_string(w) + "x" + std::to_string(h) + " image at (" +
                                std::to_string(draw.left) + ", " + std::to_string(draw.top) +
                                ") leaves the " + std::to_string(canvas_w) + "x" + std::to_string(canvas_h) +
                                " canvas of ratio " + std::to_string(draw.ratio));
  BoxedImage out{Image(canvas_w, canvas_h), in.boxes};
  uint8_t fill[3];
  for (int c = 0; c < 3; ++c) {
    if (!(options.mean[c] >= 0 && options.mean[c] < 256))
      throw std::invalid_argument("expand: the mean " + std::to_string(options.mean[c]) +
                                  " is not a uint8 pixel value");
    fill[c] = static_cast<uint8_t>(options.mean[c]);  // numpy's unsafe cast truncates
  }
  for (int64_t i = 0; i < canvas_w * canvas_h; ++i) std::copy_n(fill, 3, out.image.pixels.begin() + i * 3);
  for (int64_t y = 0; y < h; ++y)
    std::copy_n(in.image.row(y), w * 3, out.image.row(y + draw.top) + draw.left * 3);
  const float dx = static_cast<float>(draw.left), dy = static_cast<float>(draw.top);
  for (auto& b : out.boxes) {
    b.x1 = f32(b.x1) + dx, b.y1 = f32(b.y1) + dy;
    b.x2 = f32(b.x2) + dx, b.y2 = f32(b.y2) + dy;
  }
  return out;
}

MinIoUCropDraw draw_min_iou_crop(std::mt19937_64& rng, const BoxedImage& in,
                                 const MinIoUCropOptions& options) {
  check_image(in.image, "min_iou_crop");
  std::vector<double> modes{1};
  modes.insert(modes.end(), options.min_ious.begin(), options.min_ious.end());
  modes.push_back(0);
  const auto w = static_cast<double>(in.image.width), h = static_cast<double>(in.image.height);
  while (true) {
    const double mode = modes[static_cast<size_t>(randint(rng, static_cast<int64_t>(modes.size())))];
    if (mode == 1) return {};
    for (int trial = 0; trial < 50; ++trial) {
      const double new_w = uniform(rng, options.min_crop_size * w, w);
      const double new_h = uniform(rng, options.min_crop_size * h, h);
      if (new_h / new_w < 0.5 || new_h / new_w > 2) continue;
      const double left = uniform(rng, w - new_w, 1.0);  // numpy's uniform(w - new_w)
      const double top = uniform(rng, h - new_h, 1.0);
      MinIoUCropDraw patch{true,
                           mode,
                           static_cast<int64_t>(left),
                           static_cast<int64_t>(top),
                           static_cast<int64_t>(left + new_w),
                           static_cast<int64_t>(top + new_h)};
      if (patch.right == patch.left || patch.bottom == patch.top) continue;
      if (in.boxes.empty()) return patch;
      float min_overlap = INFINITY;
      for (const auto& b : in.boxes) min_overlap = std::min(min_overlap, patch_iou(patch, b));
      if (static_cast<double>(min_overlap) < mode) continue;
      if (std::none_of(in.boxes.begin(), in.boxes.end(),
                       [&](const LabeledBox& b) { return centre_in_patch(b, patch); }))
        continue;
      return patch;
    }
  }
}

BoxedImage min_iou_crop(const BoxedImage& in, const MinIoUCropDraw& draw, const MinIoUCropOptions& options) {
  if (!draw.crop) return in;
  check_image(in.image, "min_iou_crop");
  if (draw.left < 0 || draw.top < 0 || draw.right > in.image.width || draw.bottom > in.image.height ||
      draw.left >= draw.right || draw.top >= draw.bottom)
    throw std::invalid_argument("min_iou_crop: the patch (" + std::to_string(draw.left) + ", " +
                                std::to_string(draw.top) + ", " + std::to_string(draw.right) + ", " +
                                std::to_string(draw.bottom) + ") is not a non-empty part of the " +
                                std::to_string(in.image.width) + "x" + std::to_string(in.image.height) +
                                " image");
  const int64_t w = draw.right - draw.left, h = draw.bottom - draw.top;
  BoxedImage out{Image(w, h), {}};
  for (int64_t y = 0; y < h; ++y)
    std::copy_n(in.image.row(y + draw.top) + draw.left * 3, w * 3, out.image.row(y));
  const float dx = static_cast<float>(draw.left), dy = static_cast<float>(draw.top);
  const float fw = static_cast<float>(w), fh = static_cast<float>(h);
  for (const auto& b : in.boxes) {
    if (!centre_in_patch(b, draw)) continue;
    LabeledBox t{f32(b.x1) - dx, f32(b.y1) - dy, f32(b.x2) - dx, f32(b.y2) - dy, b.label};
    if (options.bbox_clip_border) {
      t.x1 = std::clamp(f32(t.x1), 0.f, fw), t.x2 = std::clamp(f32(t.x2), 0.f, fw);
      t.y1 = std::clamp(f32(t.y1), 0.f, fh), t.y2 = std::clamp(f32(t.y2), 0.f, fh);
    }
    out.boxes.push_back(t);
  }
  return out;
}

PhotometricDraw draw_photometric(std::mt19937_64& rng, const PhotometricOptions& options) {
  PhotometricDraw draw;
  draw.mode = static_cast<int>(randint(rng, 2));
  draw.brightness = randint(rng, 2) == 1;
  draw.contrast = randint(rng, 2) == 1;
  draw.saturation = randint(rng, 2) == 1;
  draw.hue = randint(rng, 2) == 1;
  draw.swap = randint(rng, 2) == 1;
  draw.delta = uniform(rng, -options.brightness_delta, options.brightness_delta);
  draw.alpha = uniform(rng, options.contrast_min, options.contrast_max);
  draw.saturation_scale = uniform(rng, options.saturation_min, options.saturation_max);
  draw.hue_shift = uniform(rng, -options.hue_delta, options.hue_delta);
  for (int i = 2; i >= 1; --i) std::swap(draw.permutation[i], draw.permutation[randint(rng, i + 1)]);
  return draw;
}

torch::Tensor photometric_distortion(const Image& image, const PhotometricDraw& draw) {
  check_image(image, "photometric_distortion");
  std::array<int, 3> sorted = draw.permutation;
  std::sort(sorted.begin(), sorted.end());
  if (sorted != std::array<int, 3>{0, 1, 2})
    throw std::invalid_argument(
        "photometric_distortion: the channel permutation must hold 0, 1 and 2 once each");
  // mmdet's out_bgr[c] = in_bgr[p[c]]; BGR channel c is RGB channel 2 - c.
  std::array<int, 3> source{};
  for (int k = 0; k < 3; ++k) source[k] = 2 - draw.permutation[2 - k];
  const float delta = f32(draw.delta), alpha = f32(draw.alpha);
  const float saturation = f32(draw.saturation_scale), hue = f32(draw.hue_shift);
  auto out = torch::empty({image.height, image.width, 3}, torch::kFloat32);
  float* o = out.data_ptr<float>();
  const int64_t n = image.width * image.height;
  for (int64_t i = 0; i < n; ++i) {
    float x[3];
    for (int c = 0; c < 3; ++c) {
      x[c] = static_cast<float>(image.pixels[static_cast<size_t>(i * 3 + c)]);
      if (draw.brightness) x[c] += delta;
      if (draw.mode == 1 && draw.contrast) x[c] *= alpha;
    }
    float h, s, v;
    rgb_to_hsv(x[0], x[1], x[2], h, s, v);
    if (draw.saturation) s *= saturation;
    if (draw.hue) {
      h += hue;
      if (h > 360.f) h -= 360.f;
      if (h < 0.f) h += 360.f;
    }
    hsv_to_rgb(h, s, v, x[0], x[1], x[2]);
    if (draw.mode == 0 && draw.contrast)
      for (float& c : x) c *= alpha;
    for (int k = 0; k < 3; ++k) o[i * 3 + k] = draw.swap ? x[source[k]] : x[k];
  }
  return out;
}

}  // namespace automm
