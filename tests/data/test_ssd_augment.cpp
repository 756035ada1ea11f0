// YOLOv3's Expand, MinIoURandomCrop and PhotoMetricDistortion
// (src/data/image/ssd_augment.cpp): geometry and colour invariants on
// synthetic images, the draws' ranges, and agreement with
// tests/data/ssd_augment_reference.py, a numpy/torch transcription of mmdet's
// transforms fed the very uniform draws the C++ made (so the order and number
// of draws are checked too): exact for pixels and boxes, 1e-3 for the
// photometric floats.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "automm_test_paths.h"
#include "data/boxed_images_io.h"
#include "data/image/ssd_augment.h"
#include "test_util.h"

namespace automm {
namespace {

using automm::testing::TempDir;
using Rgb = std::array<uint8_t, 3>;

// Random pixels in [lo, hi] with the given boxes.
BoxedImage noise(int64_t w, int64_t h, uint32_t seed, const std::vector<LabeledBox>& boxes, int lo = 0,
                 int hi = 255) {
  std::mt19937 rng(seed);
  BoxedImage out{Image(w, h), boxes};
  for (auto& p : out.image.pixels) p = static_cast<uint8_t>(lo + static_cast<int>(rng() % (hi - lo + 1)));
  return out;
}

Rgb pixel(const Image& img, int64_t x, int64_t y) {
  return {img.row(y)[x * 3], img.row(y)[x * 3 + 1], img.row(y)[x * 3 + 2]};
}

// The float32 value a box coordinate becomes in mmdet.
double f32(double v) { return static_cast<float>(v); }

// IoU in double, for the invariants.
double iou(const MinIoUCropDraw& p, const LabeledBox& b) {
  const double w = std::max(0.0, std::min<double>(p.right, b.x2) - std::max<double>(p.left, b.x1));
  const double h = std::max(0.0, std::min<double>(p.bottom, b.y2) - std::max<double>(p.top, b.y1));
  const double a = double(p.right - p.left) * double(p.bottom - p.top), c = (b.x2 - b.x1) * (b.y2 - b.y1);
  return w * h / (a + c - w * h);
}

bool centre_inside(const LabeledBox& b, const MinIoUCropDraw& p) {
  const double cx = (b.x1 + b.x2) / 2, cy = (b.y1 + b.y2) / 2;
  return cx > p.left && cx < p.right && cy > p.top && cy < p.bottom;
}

// Five boxes of different sizes on a 120x90 image, one partly off the image.
BoxedImage boxed_scene(uint32_t seed) {
  return noise(120, 90, seed,
               {{10.5, 12.25, 70.75, 60, 1},
                {60, 40, 115, 88, 2},
                {2, 2, 20, 30, 3},
                {90, -4, 126, 25.5, 4},
                {30, 50, 45, 62, 5}});
}

// ---- Expand

TEST(Expand, PastesImageOnMeanCanvasAndShiftsBoxes) {
  const BoxedImage in = boxed_scene(1);
  const BoxedImage out = expand(in, {true, 1.5, 37, 11});
  ASSERT_EQ(out.image.width, 180);
  ASSERT_EQ(out.image.height, 135);
  // The mean [123.675, 116.28, 103.53] cast to uint8 truncates.
  EXPECT_EQ(pixel(out.image, 0, 0), (Rgb{123, 116, 103}));
  EXPECT_EQ(pixel(out.image, 36, 50), (Rgb{123, 116, 103}));
  EXPECT_EQ(pixel(out.image, 179, 134), (Rgb{123, 116, 103}));
  EXPECT_EQ(pixel(out.image, 100, 10), (Rgb{123, 116, 103}));
  for (int64_t y = 0; y < in.image.height; ++y)
    for (int64_t x = 0; x < in.image.width; ++x)
      ASSERT_EQ(pixel(out.image, x + 37, y + 11), pixel(in.image, x, y)) << x << ", " << y;
  ASSERT_EQ(out.boxes.size(), in.boxes.size());
  for (size_t i = 0; i < in.boxes.size(); ++i) {
    EXPECT_EQ(out.boxes[i].x1, in.boxes[i].x1 + 37);
    EXPECT_EQ(out.boxes[i].y1, in.boxes[i].y1 + 11);
    EXPECT_EQ(out.boxes[i].x2, in.boxes[i].x2 + 37);
    EXPECT_EQ(out.boxes[i].y2, in.boxes[i].y2 + 11);
    EXPECT_EQ(out.boxes[i].label, in.boxes[i].label);
  }
  // Not applied: unchanged.
  const BoxedImage same = expand(in, {});
  EXPECT_EQ(same.image.pixels, in.image.pixels);
  EXPECT_EQ(same.boxes.size(), in.boxes.size());
  // Off the canvas: int(120 * 1.5) - 120 = 60 columns to spare.
  EXPECT_THROW(expand(in, {true, 1.5, 61, 0}), std::invalid_argument);
  EXPECT_NO_THROW(expand(in, {true, 1.5, 60, 45}));
}

TEST(Expand, DrawsWithinTheCanvas) {
  std::mt19937_64 rng(2);
  int applied = 0;
  for (int i = 0; i < 2000; ++i) {
    const ExpandDraw d = draw_expand(rng, 97, 61);
    if (!d.apply) continue;
    ++applied;
    ASSERT_GE(d.ratio, 1);
    ASSERT_LT(d.ratio, 2);
    ASSERT_GE(d.left, 0);
    ASSERT_GE(d.top, 0);
    ASSERT_LE(d.left + 97, static_cast<int64_t>(97 * d.ratio));
    ASSERT_LE(d.top + 61, static_cast<int64_t>(61 * d.ratio));
  }
  EXPECT_NEAR(applied / 2000.0, 0.5, 0.04);
}

// ---- MinIoURandomCrop

// Checks every crop drawn for `in`; returns the modes of the crops, with 1 for no crop.
std::multiset<double> check_crops(const BoxedImage& in, std::mt19937_64& rng, int draws) {
  const int64_t w = in.image.width, h = in.image.height;
  std::multiset<double> modes;
  for (int i = 0; i < draws; ++i) {
    const MinIoUCropDraw d = draw_min_iou_crop(rng, in);
    modes.insert(d.crop ? d.min_iou : 1.0);
    if (!d.crop) continue;
    SCOPED_TRACE(std::to_string(d.left) + " " + std::to_string(d.top) + " " + std::to_string(d.right) + " " +
                 std::to_string(d.bottom));
    EXPECT_TRUE(0 <= d.left && d.left < d.right && d.right <= w && 0 <= d.top && d.top < d.bottom &&
                d.bottom <= h);
    EXPECT_GE(d.right - d.left, int64_t(0.3 * w) - 1);  // min_crop_size, less int() rounding
    EXPECT_GE(d.bottom - d.top, int64_t(0.3 * h) - 1);
    for (const auto& b : in.boxes) EXPECT_GE(iou(d, b), d.min_iou - 1e-6);
    // numpy's uniform(w - new_w) draws left from [1, w - new_w]: left 0 only for crops nearly as wide as the
    // image.
    EXPECT_TRUE(d.left > 0 || d.right >= w - 1);
    EXPECT_TRUE(d.top > 0 || d.bottom >= h - 1);
    const BoxedImage out = min_iou_crop(in, d);
    EXPECT_EQ(out.image.width, d.right - d.left);
    EXPECT_EQ(out.image.height, d.bottom - d.top);
    for (int64_t y = 0; y < out.image.height; ++y)
      EXPECT_TRUE(std::equal(out.image.row(y), out.image.row(y) + out.image.width * 3,
                             in.image.row(y + d.top) + d.left * 3));
    size_t k = 0;
    for (const auto& b : in.boxes) {
      if (!centre_inside(b, d)) continue;
      if (k >= out.boxes.size()) break;
      const LabeledBox& o = out.boxes[k++];
      EXPECT_EQ(o.label, b.label);
      EXPECT_EQ(o.x1, std::clamp(f32(b.x1) - d.left, 0.0, double(out.image.width)));
      EXPECT_EQ(o.y2, std::clamp(f32(b.y2) - d.top, 0.0, double(out.image.height)));
    }
    EXPECT_EQ(k, out.boxes.size());
    EXPECT_GE(k, 1u);
  }
  return modes;
}

TEST(MinIoUCrop, DrawsMeetTheConstraints) {
  // Two large boxes: every min_iou can be met.
  std::mt19937_64 rng(4);
  const auto large =
      check_crops(noise(120, 90, 3, {{10.5, 12.25, 100.75, 80, 1}, {20, 15, 110, 85.5, 2}}), rng, 400);
  // The first mode drawn is 1 one time in 8; later rounds add a little.
  EXPECT_GT(large.count(1.0), 25u);
  EXPECT_LT(large.count(1.0), 90u);
  for (const double m : {0.0, 0.4, 0.5, 0.6, 0.7, 0.8}) EXPECT_GT(large.count(m), 5u) << m;
  for (const double m : large) EXPECT_TRUE(m == 0 || m == 1 || (m >= 0.4 && m <= 0.9)) << m;
  // Five boxes, one 15x12: no crop of at least 36x27 overlaps it by 0.4, so only modes 0 and 1 end the
  // search.
  const auto mixed = check_crops(boxed_scene(3), rng, 300);
  EXPECT_EQ(mixed.count(0.0) + mixed.count(1.0), 300u);
  EXPECT_GT(mixed.count(0.0), 100u);
}

TEST(MinIoUCrop, ImagesWithoutBoxesOrWithTinyBoxesEnd) {
  std::mt19937_64 rng(5);
  const BoxedImage empty = noise(40, 30, 6, {});
  int cropped = 0;
  for (int i = 0; i < 100; ++i) {
    const MinIoUCropDraw d = draw_min_iou_crop(rng, empty);
    cropped += d.crop;
    EXPECT_TRUE(!d.crop || min_iou_crop(empty, d).boxes.empty());
  }
  EXPECT_GT(cropped, 70);  // every mode but 1 crops at once
  // A 4x4 box can never overlap a crop of at least 36x27 by IoU 0.4: only modes 0 and 1 end the search.
  const BoxedImage tiny = noise(120, 90, 7, {{50, 40, 54, 44, 1}});
  for (int i = 0; i < 50; ++i) {
    const MinIoUCropDraw d = draw_min_iou_crop(rng, tiny);
    EXPECT_TRUE(!d.crop || d.min_iou == 0) << d.min_iou;
  }
}

TEST(MinIoUCrop, KeepsBoxesWhoseCentreIsInsideAndClipsThem) {
  const BoxedImage in =
      noise(100, 80, 8, {{10, 10, 30, 30, 1}, {25, 5, 75, 35, 2}, {60, 50, 99, 79, 3}, {20, 20, 21, 21, 4}});
  const BoxedImage out = min_iou_crop(in, {true, 0.5, 20, 10, 70, 60});
  // Centres: (20, 20) on the left edge (not strictly inside), (50, 20) in, (79.5, 64.5) out, (20.5, 20.5) in.
  ASSERT_EQ(out.boxes.size(), 2u);
  EXPECT_EQ(out.boxes[0].label, 2);
  EXPECT_EQ(out.boxes[0].x1, 5);
  EXPECT_EQ(out.boxes[0].y1, 0);   // -5 clipped
  EXPECT_EQ(out.boxes[0].x2, 50);  // 55 clipped to the 50 columns
  EXPECT_EQ(out.boxes[0].y2, 25);
  EXPECT_EQ(out.boxes[1].label, 4);
  EXPECT_EQ(out.boxes[1].x1, 0);
  MinIoUCropOptions no_clip;
  no_clip.bbox_clip_border = false;
  EXPECT_EQ(min_iou_crop(in, {true, 0.5, 20, 10, 70, 60}, no_clip).boxes[0].x2, 55);
  EXPECT_THROW(min_iou_crop(in, {true, 0.5, 20, 10, 101, 60}), std::invalid_argument);
  EXPECT_THROW(min_iou_crop(in, {true, 0.5, 20, 10, 20, 60}), std::invalid_argument);
}

// ---- PhotoMetricDistortion

std::vector<float> as_vector(const torch::Tensor& t) {
  const auto c = t.contiguous();
  return std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
}

TEST(Photometric, RoundTripAloneKeepsThePixels) {
  const BoxedImage in = noise(33, 21, 9, {});
  const torch::Tensor out = photometric_distortion(in.image, {});
  ASSERT_EQ(out.sizes(), (std::vector<int64_t>{21, 33, 3}));
  const auto v = as_vector(out);
  float max_diff = 0;
  for (size_t i = 0; i < v.size(); ++i) max_diff = std::max(max_diff, std::abs(v[i] - in.image.pixels[i]));
  EXPECT_LT(max_diff, 1e-3);
}

Image solid(std::vector<Rgb> colours) {
  Image img(static_cast<int64_t>(colours.size()), 1);
  for (size_t i = 0; i < colours.size(); ++i)
    std::copy(colours[i].begin(), colours[i].end(), img.pixels.begin() + i * 3);
  return img;
}

TEST(Photometric, BrightnessAndContrastAreUnclipped) {
  const Image grey = solid({{250, 250, 250}, {10, 10, 10}});
  PhotometricDraw d;
  d.brightness = d.contrast = true;
  d.delta = 20.5, d.alpha = 1.25;
  for (const int mode : {0, 1}) {
    d.mode = mode;
    const auto v = as_vector(photometric_distortion(grey, d));
    EXPECT_EQ(v[0], (250 + 20.5f) * 1.25f);  // grey goes through HSV exactly
    EXPECT_EQ(v[5], (10 + 20.5f) * 1.25f);
  }
  d.delta = -30;
  const auto v = as_vector(photometric_distortion(grey, d));
  EXPECT_EQ(v[3], -20 * 1.25f);  // below 0 stays
}

TEST(Photometric, HueAndSaturationInRgb) {
  const Image red = solid({{255, 0, 0}, {200, 100, 50}});
  PhotometricDraw d;
  d.hue = true;
  d.hue_shift = 120;  // red (H 0) to green (H 120)
  auto v = as_vector(photometric_distortion(red, d));
  EXPECT_NEAR(v[0], 0, 1e-3);
  EXPECT_NEAR(v[1], 255, 1e-3);
  EXPECT_NEAR(v[2], 0, 1e-3);
  d.hue = false;
  d.saturation = true;
  d.saturation_scale = 0.5;  // S 1 -> 0.5: min becomes V (1 - 0.5)
  v = as_vector(photometric_distortion(red, d));
  EXPECT_NEAR(v[0], 255, 1e-3);
  EXPECT_NEAR(v[1], 127.5, 1e-3);
  EXPECT_NEAR(v[2], 127.5, 1e-3);
  // (200, 100, 50): S 0.75 -> 0.375, V 200: min 125, hue kept: G = 125 + (200 - 125) / 3.
  EXPECT_NEAR(v[3], 200, 1e-3);
  EXPECT_NEAR(v[4], 150, 1e-3);
  EXPECT_NEAR(v[5], 125, 1e-3);
}

TEST(Photometric, SwapPermutesBgrChannels) {
  const Image img = solid({{10, 20, 30}});
  PhotometricDraw d;
  d.swap = true;
  d.permutation = {1, 0, 2};  // BGR (30, 20, 10) -> (20, 30, 10): RGB (10, 30, 20)
  auto v = as_vector(photometric_distortion(img, d));
  EXPECT_NEAR(v[0], 10, 1e-3);
  EXPECT_NEAR(v[1], 30, 1e-3);
  EXPECT_NEAR(v[2], 20, 1e-3);
  d.permutation = {2, 1, 0};  // reverses the channels
  v = as_vector(photometric_distortion(img, d));
  EXPECT_NEAR(v[0], 30, 1e-3);
  EXPECT_NEAR(v[2], 10, 1e-3);
  d.permutation = {0, 0, 2};
  EXPECT_THROW(photometric_distortion(img, d), std::invalid_argument);
}

TEST(Photometric, DrawsEverythingEveryTime) {
  std::mt19937_64 rng(10);
  std::array<int, 6> on{};
  std::set<std::array<int, 3>> perms;
  for (int i = 0; i < 3000; ++i) {
    std::mt19937_64 before = rng;
    const PhotometricDraw d = draw_photometric(rng);
    before.discard(12);  // 6 flags, 4 values, 2 for the permutation
    ASSERT_TRUE(before == rng);
    on[0] += d.mode, on[1] += d.brightness, on[2] += d.contrast, on[3] += d.saturation, on[4] += d.hue;
    on[5] += d.swap;
    ASSERT_TRUE(std::abs(d.delta) <= 32 && d.alpha >= 0.5 && d.alpha < 1.5 && d.saturation_scale >= 0.5 &&
                d.saturation_scale < 1.5 && std::abs(d.hue_shift) <= 18);
    perms.insert(d.permutation);
  }
  for (const int n : on) EXPECT_NEAR(n / 3000.0, 0.5, 0.04);
  EXPECT_EQ(perms.size(), 6u);
}

// ---- Against the Python transcription of mmdet's transforms

using testing::exact_decimal;

struct Case {
  std::string id, image, ops;
  int64_t draws = 0;  // uniforms the C++ consumed
  BoxedImage ours;
  torch::Tensor floats;  // when photo ran
  std::vector<double> stream;
  ExpandDraw expand;  // the last draw of each kind
  MinIoUCropDraw crop;
  PhotometricDraw photo;
};

// Runs `ops` (comma-separated expand, crop, photo) on `in` from rng and records the draws consumed.
Case run_case(const std::string& id, const std::string& image, const BoxedImage& in, const std::string& ops,
              std::mt19937_64& rng) {
  Case c{id, image, ops, 0, in, {}, {}, {}, {}, {}};
  std::mt19937_64 start = rng;
  size_t pos = 0;
  while (pos <= ops.size()) {
    const size_t end = std::min(ops.find(',', pos), ops.size());
    const std::string op = ops.substr(pos, end - pos);
    if (op == "expand") {
      c.expand = draw_expand(rng, c.ours.image.width, c.ours.image.height);
      c.ours = expand(c.ours, c.expand);
    } else if (op == "crop") {
      c.crop = draw_min_iou_crop(rng, c.ours);
      c.ours = min_iou_crop(c.ours, c.crop);
    } else {
      c.photo = draw_photometric(rng);
      c.floats = photometric_distortion(c.ours.image, c.photo);
    }
    pos = end + 1;
  }
  std::mt19937_64 probe = start;
  while (!(probe == rng)) {
    c.stream.push_back(std::generate_canonical<double, 53>(probe));
    if (c.stream.size() > 200000) throw std::runtime_error("run_case: lost track of the draws");
  }
  c.draws = static_cast<int64_t>(c.stream.size());
  for (int i = 0; i < 4; ++i) c.stream.push_back(std::generate_canonical<double, 53>(probe));  // slack
  return c;
}

struct Reference {
  BoxedImage out;
  std::vector<float> floats;
  int64_t used = 0;
};

Reference read_reference(const TempDir& dir, const Case& c) {
  Reference ref;
  std::ifstream in(dir.file(c.id + ".txt"));
  in >> ref.out.image.width >> ref.out.image.height >> ref.used;
  for (LabeledBox b; in >> b.x1 >> b.y1 >> b.x2 >> b.y2 >> b.label;) ref.out.boxes.push_back(b);
  const auto n = static_cast<size_t>(ref.out.image.width * ref.out.image.height * 3);
  if (c.floats.defined()) {
    ref.floats.resize(n);
    std::ifstream(dir.file(c.id + ".f32"), std::ios::binary)
        .read(reinterpret_cast<char*>(ref.floats.data()), std::streamsize(n * sizeof(float)));
  } else {
    ref.out.image.pixels.resize(n);
    std::ifstream(dir.file(c.id + ".rgb"), std::ios::binary)
        .read(reinterpret_cast<char*>(ref.out.image.pixels.data()), std::streamsize(n));
  }
  return ref;
}

float max_float_diff(const torch::Tensor& ours, const std::vector<float>& ref) {
  const auto v = as_vector(ours);
  if (v.size() != ref.size()) return INFINITY;
  float m = 0;
  for (size_t i = 0; i < v.size(); ++i) m = std::max(m, std::abs(v[i] - ref[i]));
  return m;
}

TEST(SsdAugmentReference, MatchesMmdetTranscription) {
  const std::string missing =
      testing::python_reference_missing("torch, numpy", "python3-torch python3-numpy",
                                        "the Expand/MinIoURandomCrop/PhotoMetricDistortion reference");
  if (!missing.empty()) GTEST_SKIP() << missing;
  TempDir dir;
  const std::map<std::string, BoxedImage> images{
      {"scene", boxed_scene(11)},
      {"n1", noise(77, 53, 12, {{3.3, 4.7, 60.1, 50.9, 1}, {-5, 10, 20, 70, 2}, {70.5, 0, 77, 53, 3}})},
      {"n3", noise(200, 150, 13, {{12.1, 33.3, 190.7, 140.2, 6}})},
      {"tiny", noise(120, 90, 14, {{50, 40, 54, 44, 1}, {51.5, 41, 53, 43.25, 2}})},
      {"empty", noise(20, 20, 15, {})},
      {"dark", noise(40, 30, 16, {{5, 5, 30, 25, 1}}, 0, 40)},  // brightness drives these below 0
      {"bright", noise(40, 30, 17, {{5, 5, 30, 25, 1}}, 215, 255)},
  };
  std::vector<Case> cases;
  std::mt19937_64 rng(18);
  int id = 0;
  auto add = [&](const std::string& image, const std::string& ops) {
    cases.push_back(run_case("c" + std::to_string(id++), image, images.at(image), ops, rng));
  };
  for (const char* name : {"scene", "n1", "n3", "empty"})
    for (int i = 0; i < 3; ++i) add(name, "expand");
  for (const char* name : {"scene", "n1", "n3", "tiny", "empty", "dark"})
    for (int i = 0; i < 4; ++i) add(name, "crop");
  for (const char* name : {"scene", "n1", "dark", "bright", "dark", "bright"})
    for (int i = 0; i < 3; ++i) add(name, "photo");
  // Seeds whose draws turn every flag on, with contrast first and last.
  for (const int mode : {0, 1}) {
    for (uint64_t seed = 100;; ++seed) {
      std::mt19937_64 probe(seed);
      const PhotometricDraw d = draw_photometric(probe);
      if (d.mode == mode && d.brightness && d.contrast && d.saturation && d.hue && d.swap) {
        std::mt19937_64 from(seed);
        for (const char* name : {"scene", "dark", "bright"}) {
          std::mt19937_64 again = from;
          cases.push_back(run_case("c" + std::to_string(id++), name, images.at(name), "photo", again));
        }
        break;
      }
    }
  }
  for (const char* name : {"scene", "n1", "n3", "tiny"})
    for (int i = 0; i < 3; ++i) add(name, "expand,crop,photo");

  std::ofstream manifest = testing::write_boxed_images(dir, images);
  for (const auto& c : cases) {
    manifest << "case " << c.id << " " << c.image << " " << c.stream.size() << " " << c.ops << "\n";
    std::ofstream(dir.file(c.id + ".u"), std::ios::binary)
        .write(reinterpret_cast<const char*>(c.stream.data()),
               std::streamsize(c.stream.size() * sizeof(double)));
  }
  manifest.close();
  const std::string error = testing::run_reference_command(
      "/usr/bin/python3 " AUTOMM_SOURCE_DIR "/tests/data/ssd_augment_reference.py " + dir.path().string(),
      dir.file("reference.log"));
  ASSERT_EQ(error, "");

  size_t total_boxes = 0, photo_cases = 0, changed_shape = 0;
  float worst = 0;
  for (const auto& c : cases) {
    SCOPED_TRACE(c.id + " " + c.image + " " + c.ops);
    const Reference ref = read_reference(dir, c);
    EXPECT_EQ(ref.used, c.draws);  // the same draws, in the same number
    ASSERT_EQ(c.ours.image.width, ref.out.image.width);
    ASSERT_EQ(c.ours.image.height, ref.out.image.height);
    changed_shape += c.ours.image.width != images.at(c.image).image.width;
    if (c.floats.defined()) {
      const float diff = max_float_diff(c.floats, ref.floats);
      worst = std::max(worst, diff);
      EXPECT_LE(diff, 1e-3);
      ++photo_cases;
    } else {
      EXPECT_EQ(c.ours.image.pixels, ref.out.image.pixels);
    }
    ASSERT_EQ(c.ours.boxes.size(), ref.out.boxes.size());
    for (size_t i = 0; i < ref.out.boxes.size(); ++i) {
      EXPECT_EQ(c.ours.boxes[i].label, ref.out.boxes[i].label);
      EXPECT_EQ(f32(c.ours.boxes[i].x1), ref.out.boxes[i].x1);
      EXPECT_EQ(f32(c.ours.boxes[i].y1), ref.out.boxes[i].y1);
      EXPECT_EQ(f32(c.ours.boxes[i].x2), ref.out.boxes[i].x2);
      EXPECT_EQ(f32(c.ours.boxes[i].y2), ref.out.boxes[i].y2);
    }
    total_boxes += ref.out.boxes.size();
  }
  std::printf("photometric: max |ours - reference| %.3g over %zu cases\n", worst, photo_cases);
  EXPECT_GT(total_boxes, 60u);
  EXPECT_GT(changed_shape, 20u);  // the geometry did happen
  // The cases reach the branches: IoU-bound and centre-only crops, values pushed out of [0, 255].
  auto count = [&](auto pred) { return std::count_if(cases.begin(), cases.end(), pred); };
  EXPECT_GT(count([](const Case& c) { return c.crop.crop && c.crop.min_iou >= 0.4; }), 3);
  EXPECT_GT(count([](const Case& c) { return c.crop.crop && c.crop.min_iou == 0; }), 3);
  EXPECT_GT(count([](const Case& c) { return c.floats.defined() && c.floats.min().item<float>() < 0; }), 2);
  EXPECT_GT(count([](const Case& c) { return c.floats.defined() && c.floats.max().item<float>() > 255; }), 2);

  // Controls: each kind of draw one step off must show against the same reference.
  auto first = [&](const std::string& ops, auto applied) {
    const auto it =
        std::find_if(cases.begin(), cases.end(), [&](const Case& c) { return c.ops == ops && applied(c); });
    if (it == cases.end()) throw std::runtime_error("no " + ops + " case for the control");
    return *it;
  };
  {
    const Case& c = first("expand", [](const Case& c) { return c.expand.apply; });
    ExpandDraw d = c.expand;
    d.left += d.left > 0 ? -1 : 1;
    EXPECT_NE(expand(images.at(c.image), d).image.pixels, read_reference(dir, c).out.image.pixels);
  }
  {
    const Case& c = first("crop", [](const Case& c) { return c.crop.crop && !c.ours.boxes.empty(); });
    MinIoUCropDraw d = c.crop;
    d.top += d.top > 0 ? -1 : 1;
    const BoxedImage moved = min_iou_crop(images.at(c.image), d);
    const Reference ref = read_reference(dir, c);
    EXPECT_NE(moved.image.pixels, ref.out.image.pixels);
    EXPECT_NE(moved.boxes.at(0).y1 + moved.boxes.at(0).y2, ref.out.boxes.at(0).y1 + ref.out.boxes.at(0).y2);
  }
  {
    const Case& c = first("photo", [](const Case& c) { return c.photo.hue && c.photo.saturation; });
    PhotometricDraw d = c.photo;
    d.hue_shift += 1;
    EXPECT_GT(
        max_float_diff(photometric_distortion(images.at(c.image).image, d), read_reference(dir, c).floats),
        1e-2);
  }
}

}  // namespace
}  // namespace automm
