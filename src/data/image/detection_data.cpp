// The detection pipelines (detection_data.h).
#include "data/image/detection_data.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "data/image/image_io.h"
#include "data/image/image_ops.h"
#include "data/image/ssd_augment.h"

namespace automm {
namespace {

// OpenCV's cvtColor RGB <-> HSV for 8-bit images: H in [0, 180), S and V in [0, 255].
void rgb_to_hsv(const uint8_t* rgb, int& h, int& s, int& v) {
  const int r = rgb[0], g = rgb[1], b = rgb[2];
  const int max = std::max({r, g, b}), min = std::min({r, g, b}), delta = max - min;
  v = max;
  s = max == 0 ? 0 : static_cast<int>(std::lround(255.0 * delta / max));
  double hue = 0;
  if (delta != 0) {
    if (max == r) hue = 60.0 * (g - b) / delta;
    else if (max == g) hue = 120.0 + 60.0 * (b - r) / delta;
    else hue = 240.0 + 60.0 * (r - g) / delta;
    if (hue < 0) hue += 360.0;
  }
  h = static_cast<int>(std::lround(hue / 2.0)) % 180;
}

void hsv_to_rgb(int h, int s, int v, uint8_t* rgb) {
  const double hue = h * 2.0 / 60.0, sat = s / 255.0, val = v;
  const int sector = static_cast<int>(std::floor(hue)) % 6;
  const double f = hue - std::floor(hue);
  const double p = val * (1 - sat), q = val * (1 - sat * f), t = val * (1 - sat * (1 - f));
  double r = val, g = val, b = val;
  switch (sector) {
    case 0: r = val, g = t, b = p; break;
    case 1: r = q, g = val, b = p; break;
    case 2: r = p, g = val, b = t; break;
    case 3: r = p, g = q, b = val; break;
    case 4: r = t, g = p, b = val; break;
    default: r = val, g = p, b = q; break;
  }
  rgb[0] = static_cast<uint8_t>(std::clamp<long>(std::lround(r), 0, 255));
  rgb[1] = static_cast<uint8_t>(std::clamp<long>(std::lround(g), 0, 255));
  rgb[2] = static_cast<uint8_t>(std::clamp<long>(std::lround(b), 0, 255));
}

}  // namespace

void jitter_hsv(Image& image, int hue_gain, int saturation_gain, int value_gain) {
  uint8_t* p = image.pixels.data();
  for (int64_t i = 0; i < image.width * image.height; ++i, p += 3) {
    int h = 0, s = 0, v = 0;
    rgb_to_hsv(p, h, s, v);
    h = ((h + hue_gain) % 180 + 180) % 180;
    s = std::clamp(s + saturation_gain, 0, 255);
    v = std::clamp(v + value_gain, 0, 255);
    hsv_to_rgb(h, s, v, p);
  }
}

BoxedImage load_boxed_image(const std::string& path, const std::vector<LabeledBox>& boxes, const std::string& where) {
  BoxedImage out;
  try {
    out.image = read_image(path);
  } catch (const std::exception& e) {
    throw std::invalid_argument(where + ": cannot read the image '" + path + "': " + e.what());
  }
  out.boxes = boxes;
  return out;
}

DetectionItem read_detection_item(const std::string& path, const std::vector<LabeledBox>& boxes, bool train,
                                  std::mt19937_64& rng, const DetectionInputOptions& o, const std::string& where) {
  return prepare_detection_item(load_boxed_image(path, boxes, where), train, rng, o);
}

DetectionItem prepare_detection_item(BoxedImage sample, bool train, std::mt19937_64& rng, const DetectionInputOptions& o) {
  DetectionItem item;
  item.width = sample.image.width;
  item.height = sample.image.height;
  const bool ssd = train && o.ssd_augment;
  if (ssd) {
    sample = expand(sample, draw_expand(rng, sample.image.width, sample.image.height));
    sample = min_iou_crop(sample, draw_min_iou_crop(rng, sample));
  }
  Image& image = sample.image;
  std::vector<LabeledBox> kept = std::move(sample.boxes);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  if (train && o.hsv_jitter) {
    // YOLOXHSVRandomAug: gains uniform in [-1, 1] x (5, 30, 30), each on with probability 1/2, truncated.
    const double deltas[3] = {5, 30, 30};
    int gains[3];
    for (int c = 0; c < 3; ++c) {
      const double g = (2 * unit(rng) - 1) * deltas[c] * (unit(rng) < 0.5 ? 0 : 1);
      gains[c] = static_cast<int>(g);
    }
    jitter_hsv(image, gains[0], gains[1], gains[2]);
  }
  if (train && o.flip_prob > 0 && unit(rng) < o.flip_prob) {
    image = hflip(image);
    for (LabeledBox& b : kept) {
      const double x1 = b.x1;
      b.x1 = image.width - b.x2;
      b.x2 = image.width - x1;
    }
  }
  // Resize keeping the ratio: the long side to image_size (mmdet's rescale_size with a square scale).
  const double factor = static_cast<double>(o.image_size) / static_cast<double>(std::max(image.width, image.height));
  const int64_t new_w = std::max<int64_t>(1, static_cast<int64_t>(image.width * factor + 0.5));
  const int64_t new_h = std::max<int64_t>(1, static_cast<int64_t>(image.height * factor + 0.5));
  item.scale_x = static_cast<double>(new_w) / image.width;
  item.scale_y = static_cast<double>(new_h) / image.height;
  if (new_w != image.width || new_h != image.height) image = resize(image, new_w, new_h, Interpolation::kBilinear);

  const int64_t out_w = o.pad_square ? o.image_size : new_w, out_h = o.pad_square ? o.image_size : new_h;
  const float fill = o.pad_after_normalize ? 0.0f : static_cast<float>(o.pad_value);
  auto pixels = torch::full({3, out_h, out_w}, fill, torch::kFloat32);
  {
    // PhotoMetricDistortion works in float32 and leaves values outside 0-255 for the normalisation.
    const auto hwc = ssd ? photometric_distortion(image, draw_photometric(rng))
                         : torch::from_blob(image.pixels.data(), {new_h, new_w, 3}, torch::kUInt8);
    auto chw = hwc.permute({2, 0, 1}).to(torch::kFloat32);
    if (!o.rgb) chw = chw.flip({0});
    const auto mean = torch::tensor({o.mean[0], o.mean[1], o.mean[2]}, torch::kFloat32).view({3, 1, 1});
    const auto std = torch::tensor({o.std[0], o.std[1], o.std[2]}, torch::kFloat32).view({3, 1, 1});
    if (o.pad_after_normalize) {
      pixels.narrow(1, 0, new_h).narrow(2, 0, new_w).copy_((chw - mean) / std);
    } else {
      pixels.narrow(1, 0, new_h).narrow(2, 0, new_w).copy_(chw);
      pixels = (pixels - mean) / std;
    }
  }
  item.pixels = pixels;

  std::vector<float> coords;
  std::vector<int64_t> labels;
  for (const LabeledBox& b : kept) {
    const double x1 = std::clamp(b.x1 * item.scale_x, 0.0, double(new_w)), x2 = std::clamp(b.x2 * item.scale_x, 0.0, double(new_w));
    const double y1 = std::clamp(b.y1 * item.scale_y, 0.0, double(new_h)), y2 = std::clamp(b.y2 * item.scale_y, 0.0, double(new_h));
    if (train && (x2 - x1 < o.min_box_size || y2 - y1 < o.min_box_size)) continue;
    coords.insert(coords.end(), {float(x1), float(y1), float(x2), float(y2)});
    labels.push_back(b.label);
  }
  item.boxes = torch::tensor(coords, torch::kFloat32).view({-1, 4});
  item.labels = torch::tensor(labels, torch::kLong);
  return item;
}

BatchRandomResize::BatchRandomResize(int64_t min_size, int64_t max_size, int64_t interval, int64_t size_divisor)
    : min_steps_(std::lround(double(min_size) / size_divisor)),
      max_steps_(std::lround(double(max_size) / size_divisor)),
      interval_(std::max<int64_t>(1, interval)),
      divisor_(size_divisor) {
  if (min_steps_ < 1 || max_steps_ < min_steps_) {
    throw std::invalid_argument("random resize range " + std::to_string(min_size) + "-" + std::to_string(max_size) +
                                " holds no multiple of " + std::to_string(size_divisor));
  }
}

torch::Tensor BatchRandomResize::apply(const torch::Tensor& pixels, std::vector<torch::Tensor>& boxes,
                                       std::mt19937_64& rng) {
  const int64_t h = pixels.size(2), w = pixels.size(3);
  if (height_ == 0) height_ = h, width_ = w;
  torch::Tensor out = pixels;
  if (height_ != h || width_ != w) {
    namespace F = torch::nn::functional;
    out = F::interpolate(pixels, F::InterpolateFuncOptions()
                                     .size(std::vector<int64_t>{height_, width_})
                                     .mode(torch::kBilinear)
                                     .align_corners(false));
    const auto scale = torch::tensor({double(width_) / w, double(height_) / h, double(width_) / w, double(height_) / h},
                                     torch::kFloat32);
    for (auto& b : boxes) b = b * scale;
  }
  if (++batches_ % interval_ == 0) {
    const int64_t steps = std::uniform_int_distribution<int64_t>(min_steps_, max_steps_)(rng);
    height_ = divisor_ * steps;
    width_ = divisor_ * static_cast<int64_t>(double(w) / double(h) * double(steps));
  }
  return out;
}

torch::Tensor collate_detection_pixels(const std::vector<DetectionItem>& items, const DetectionInputOptions& o) {
  int64_t h = 0, w = 0;
  for (const auto& item : items) {
    h = std::max(h, item.pixels.size(1));
    w = std::max(w, item.pixels.size(2));
  }
  const int64_t d = std::max<int64_t>(1, o.size_divisor);
  h = (h + d - 1) / d * d;
  w = (w + d - 1) / d * d;
  // The padding value in the tensor's units.
  std::vector<torch::Tensor> padded;
  for (const auto& item : items) {
    auto out = torch::empty({3, h, w}, torch::kFloat32);
    for (int64_t c = 0; c < 3; ++c)
      out[c].fill_(o.pad_after_normalize ? 0.0 : (o.pad_value - o.mean[static_cast<size_t>(c)]) / o.std[static_cast<size_t>(c)]);
    out.narrow(1, 0, item.pixels.size(1)).narrow(2, 0, item.pixels.size(2)).copy_(item.pixels);
    padded.push_back(out);
  }
  return torch::stack(padded);
}

}  // namespace automm
