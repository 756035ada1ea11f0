// Mosaic and MixUp (src/data/image/mosaic_mixup.cpp): geometry invariants on
// synthetic images of solid rectangles whose boxes are known, the draws'
// ranges, and exact agreement (boxes and pixels) with
// tests/data/mosaic_reference.py, a numpy/torch transcription of AutoGluon's
// copy of mmdet's Mosaic and MixUp (with PIL's bilinear in place of cv2's, as
// automm resizes).
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "automm_test_paths.h"
#include "data/boxed_images_io.h"
#include "data/image/mosaic_mixup.h"
#include "test_util.h"

namespace automm {
namespace {

using automm::testing::TempDir;
using Rgb = std::array<uint8_t, 3>;

struct Rect {
  int64_t x1, y1, x2, y2, label;
  Rgb colour;
};

// Solid `background` with the rectangles painted [x1, x2) x [y1, y2); their boxes are exact.
BoxedImage painted(int64_t w, int64_t h, Rgb background, const std::vector<Rect>& rects) {
  BoxedImage out{Image(w, h), {}};
  for (int64_t i = 0; i < w * h; ++i)
    std::copy(background.begin(), background.end(), out.image.pixels.begin() + i * 3);
  for (const auto& r : rects) {
    for (int64_t y = r.y1; y < r.y2; ++y)
      for (int64_t x = r.x1; x < r.x2; ++x)
        std::copy(r.colour.begin(), r.colour.end(), out.image.row(y) + x * 3);
    out.boxes.push_back({double(r.x1), double(r.y1), double(r.x2), double(r.y2), r.label});
  }
  return out;
}

// Random pixels (and boxes): every resampled value shows in the reference comparison.
BoxedImage noise(int64_t w, int64_t h, uint32_t seed, const std::vector<LabeledBox>& boxes) {
  std::mt19937 rng(seed);
  BoxedImage out{Image(w, h), boxes};
  for (auto& p : out.image.pixels) p = static_cast<uint8_t>(rng() & 255);
  return out;
}

Rgb pixel(const Image& img, int64_t x, int64_t y) {
  return {img.row(y)[x * 3], img.row(y)[x * 3 + 1], img.row(y)[x * 3 + 2]};
}

const std::map<int64_t, Rgb> kColours = {{1, {230, 20, 20}},   {2, {20, 230, 20}},  {3, {20, 20, 230}},
                                         {4, {240, 240, 0}},   {5, {0, 240, 240}},  {6, {240, 0, 240}},
                                         {7, {250, 150, 0}},   {8, {0, 120, 250}},  {10, {255, 255, 255}},
                                         {11, {250, 40, 150}}, {12, {90, 250, 60}}, {13, {10, 10, 10}}};
Rect rect(int64_t x1, int64_t y1, int64_t x2, int64_t y2, int64_t label) {
  return {x1, y1, x2, y2, label, kColours.at(label)};
}

constexpr int64_t kS = 64;
// Wide (scaled 2/3 to 64x42), tall (0.8 to 40x64), square (as is), small (64/30 up to 64x42).
BoxedImage image_a() {
  return painted(96, 64, {40, 40, 40},
                 {rect(10, 8, 40, 30, 1), rect(0, 40, 12, 60, 2), rect(50, 36, 90, 60, 3)});
}
BoxedImage image_b() {
  return painted(50, 80, {70, 90, 70},
                 {rect(10, 0, 30, 20, 4), rect(35, 0, 45, 4, 5), rect(8, 40, 42, 70, 6)});
}
BoxedImage image_c() {
  return painted(64, 64, {150, 100, 50}, {rect(5, 5, 60, 25, 8), rect(20, 35, 50, 60, 13)});
}
BoxedImage image_d() {
  return painted(30, 20, {100, 60, 160}, {rect(25, 5, 30, 15, 7), rect(2, 2, 14, 18, 12)});
}

const LabeledBox* find_label(const std::vector<LabeledBox>& boxes, int64_t label) {
  for (const auto& b : boxes)
    if (b.label == label) return &b;
  return nullptr;
}

bool near(Rgb a, Rgb b, int tolerance) {
  for (int c = 0; c < 3; ++c)
    if (std::abs(int(a[c]) - int(b[c])) > tolerance) return false;
  return true;
}

// Every box lies on the image, its centre has `expected(label, x, y)`, and two
// pixels beyond each edge that is not the image border do not.
template <class Expected>
void check_boxes_cover_colours(const BoxedImage& out, Expected expected) {
  const auto w = out.image.width, h = out.image.height;
  for (const auto& b : out.boxes) {
    SCOPED_TRACE("label " + std::to_string(b.label));
    EXPECT_TRUE(0 <= b.x1 && b.x1 < b.x2 && b.x2 <= w && 0 <= b.y1 && b.y1 < b.y2 && b.y2 <= h);
    const auto cx = static_cast<int64_t>((b.x1 + b.x2) / 2), cy = static_cast<int64_t>((b.y1 + b.y2) / 2);
    EXPECT_EQ(pixel(out.image, cx, cy), expected(b.label, cx, cy));
    const std::array<std::array<int64_t, 2>, 4> outside{{{int64_t(std::floor(b.x1)) - 2, cy},
                                                         {int64_t(std::ceil(b.x2)) + 1, cy},
                                                         {cx, int64_t(std::floor(b.y1)) - 2},
                                                         {cx, int64_t(std::ceil(b.y2)) + 1}}};
    for (const auto& [x, y] : outside) {
      if (x < 0 || x >= w || y < 0 || y >= h) continue;  // the edge is the image border
      EXPECT_FALSE(near(pixel(out.image, x, y), expected(b.label, x, y), 20)) << "at " << x << ", " << y;
    }
  }
}

TEST(Mosaic, TilesAndBoxesMoveTogether) {
  const auto a = image_a(), b = image_b(), c = image_c(), d = image_d();
  const BoxedImage out = mosaic({&a, &b, &c, &d}, kS, {70, 60});
  ASSERT_EQ(out.image.width, 2 * kS);
  ASSERT_EQ(out.image.height, 2 * kS);
  check_boxes_cover_colours(out, [](int64_t label, int64_t, int64_t) { return kColours.at(label); });
  // Top left: a at (6, 18) scaled by float32(2/3); the rest of the canvas corner is 114.
  const LabeledBox* one = find_label(out.boxes, 1);
  ASSERT_NE(one, nullptr);
  const float r = static_cast<float>(64.0 / 96);
  EXPECT_EQ(one->x1, 10 * r + 6);
  EXPECT_EQ(one->y1, 8 * r + 18);
  EXPECT_EQ(one->x2, 40 * r + 6);
  EXPECT_EQ(one->y2, 30 * r + 18);
  EXPECT_EQ(pixel(out.image, 2, 2), (Rgb{114, 114, 114}));
  EXPECT_EQ(pixel(out.image, 120, 110), (Rgb{114, 114, 114}));  // below d
  EXPECT_EQ(pixel(out.image, 115, 30), (Rgb{114, 114, 114}));   // right of b
  // b is cropped at the top: box 4 is clipped to y = 0, box 5 (wholly above) is dropped.
  ASSERT_NE(find_label(out.boxes, 4), nullptr);
  EXPECT_EQ(find_label(out.boxes, 4)->y1, 0);
  EXPECT_EQ(find_label(out.boxes, 5), nullptr);
  // d runs past the right border: box 7 is clipped to x = 128.
  ASSERT_NE(find_label(out.boxes, 7), nullptr);
  EXPECT_EQ(find_label(out.boxes, 7)->x2, 2 * kS);
  // The tiles' boxes in tile order, each tile's in its own order.
  std::vector<int64_t> labels;
  for (const auto& box : out.boxes) labels.push_back(box.label);
  EXPECT_EQ(labels, (std::vector<int64_t>{1, 2, 3, 4, 6, 8, 13, 7, 12}));
}

TEST(Mosaic, CroppedTileDropsBoxesOffTheCanvas) {
  const auto a = image_a(), b = image_b(), c = image_c(), d = image_d();
  // Centre x 40 < a's 64: a's left 24 columns fall off; box 2 (x < 8 scaled) goes with them.
  const BoxedImage out = mosaic({&a, &b, &c, &d}, kS, {40, 90});
  check_boxes_cover_colours(out, [](int64_t label, int64_t, int64_t) { return kColours.at(label); });
  EXPECT_EQ(find_label(out.boxes, 2), nullptr);
  ASSERT_NE(find_label(out.boxes, 1), nullptr);
  EXPECT_EQ(find_label(out.boxes, 1)->x1, 0);  // 6.67 - 24 clipped
}

TEST(Mosaic, DrawsCentresInRange) {
  std::mt19937_64 rng(3);
  int64_t lo = 1 << 30, hi = 0;
  for (int i = 0; i < 2000; ++i) {
    const MosaicDraw d = draw_mosaic(rng, 640);
    lo = std::min({lo, d.center_x, d.center_y});
    hi = std::max({hi, d.center_x, d.center_y});
  }
  EXPECT_GE(lo, 320);
  EXPECT_LE(lo, 325);
  EXPECT_LE(hi, 959);
  EXPECT_GE(hi, 955);
}

TEST(Mosaic, RejectsBadInput) {
  const auto a = image_a();
  EXPECT_THROW(mosaic({&a, &a, &a, nullptr}, kS, {70, 60}), std::invalid_argument);
  EXPECT_THROW(mosaic({&a, &a, &a, &a}, kS, {0, 60}), std::invalid_argument);
  const BoxedImage sliver = painted(1, 500, {0, 0, 0}, {});  // 1 * 64/500 rounds to no column
  EXPECT_THROW(mosaic({&a, &sliver, &a, &a}, kS, {70, 60}), std::invalid_argument);
}

// Base: 100x90 grey 61 with box 10 at the bottom right, where the other image's
// 114 padding lands (J = 80); other: 80x40, scaled 0.8 into 64x32 then 1.25 back.
BoxedImage mixup_base() { return painted(100, 90, {61, 61, 61}, {rect(84, 70, 98, 88, 10)}); }
BoxedImage mixup_other() {
  return painted(80, 40, {200, 200, 60}, {rect(4, 6, 30, 34, 11), rect(50, 10, 76, 30, 12)});
}
// 50x40 with box 13 at the bottom left, where the crops used show the other image's background.
BoxedImage small_base() { return painted(50, 40, {90, 90, 90}, {rect(2, 32, 10, 39, 13)}); }

TEST(MixUp, BlendsTruncatedMeanAndMovesOtherBoxes) {
  const auto base = mixup_base(), other = mixup_other();
  for (const bool flip : {false, true}) {
    SCOPED_TRACE(flip ? "flipped" : "not flipped");
    const BoxedImage out = mixup(base, other, kS, {1.25, flip, 0, 0});
    ASSERT_EQ(out.image.width, 100);
    ASSERT_EQ(out.image.height, 90);
    // (61 + 114) / 2 = 87.5 -> 87 where the other image is padding (x >= 80 or y >= 40).
    EXPECT_EQ(pixel(out.image, 95, 5), (Rgb{87, 87, 87}));
    EXPECT_EQ(pixel(out.image, 10, 60), (Rgb{87, 87, 87}));
    check_boxes_cover_colours(out, [&](int64_t label, int64_t x, int64_t y) {
      const Rgb c = kColours.at(label), under = label == 10 ? Rgb{114, 114, 114} : pixel(base.image, x, y);
      return Rgb{uint8_t((c[0] + under[0]) / 2), uint8_t((c[1] + under[1]) / 2),
                 uint8_t((c[2] + under[2]) / 2)};
    });
    ASSERT_EQ(out.boxes.size(), 3u);
    EXPECT_EQ(out.boxes[0].label, 10);  // base's boxes first
    // Box scale float32(0.8 * 1.25) = 1: box 11 stays (4, 6, 30, 34), mirrored in J = 80.
    const LabeledBox* b11 = find_label(out.boxes, 11);
    ASSERT_NE(b11, nullptr);
    EXPECT_EQ(b11->x1, flip ? 80 - 30 : 4);
    EXPECT_EQ(b11->x2, flip ? 80 - 4 : 30);
    EXPECT_EQ(b11->y1, 6);
    EXPECT_EQ(b11->y2, 34);
  }
}

TEST(MixUp, CropsAtTheOffsetsAndClipsToTheBase) {
  const auto base = small_base();
  const auto other = mixup_other();
  // J = int(64 * 1.5) = 96; the crop starts at (5, 10) of the flipped 96x96 image.
  const BoxedImage out = mixup(base, other, kS, {1.5, true, 5, 10});
  ASSERT_EQ(out.image.width, 50);
  ASSERT_EQ(out.image.height, 40);
  check_boxes_cover_colours(out, [&](int64_t label, int64_t x, int64_t y) {
    const Rgb c = kColours.at(label), under = label == 13 ? Rgb{200, 200, 60} : pixel(base.image, x, y);
    return Rgb{uint8_t((c[0] + under[0]) / 2), uint8_t((c[1] + under[1]) / 2),
               uint8_t((c[2] + under[2]) / 2)};
  });
  // Flipped, box 12 (50..76 x 10..30, scale float32(1.2)) spans 96 - 91.2 .. 96 - 60 = 4.8 .. 36 in x,
  // 12 .. 36 in y; shifted by (-5, -10): (-0.2 -> 0, 2, 31, 26).
  const LabeledBox* b12 = find_label(out.boxes, 12);
  ASSERT_NE(b12, nullptr);
  const float s = static_cast<float>(0.8 * 1.5);
  EXPECT_EQ(b12->x1, 0);
  EXPECT_EQ(b12->x2, 96 - 50 * s - 5);
  EXPECT_EQ(b12->y1, 10 * s - 10);
  EXPECT_EQ(b12->y2, 30 * s - 10);
  // Box 11 flips to 96 - 36 .. 96 - 4.8 = 60 .. 91.2, 55 .. 86.2 in the crop: off its 50 columns, dropped.
  EXPECT_EQ(find_label(out.boxes, 11), nullptr);
  EXPECT_NE(find_label(out.boxes, 13), nullptr);
  // With the crop at x 20 box 11 starts at 40 and is clipped to the base's 50.
  const BoxedImage shifted = mixup(base, other, kS, {1.5, true, 20, 10});
  ASSERT_NE(find_label(shifted.boxes, 11), nullptr);
  EXPECT_EQ(find_label(shifted.boxes, 11)->x1, 96 - 30 * s - 20);
  EXPECT_EQ(find_label(shifted.boxes, 11)->x2, 50);
  EXPECT_THROW(mixup(base, other, kS, {1.5, true, 47, 10}), std::invalid_argument);  // 96 - 50 = 46 at most
}

TEST(MixUp, OtherWithoutBoxesLeavesTheBase) {
  const auto base = mixup_base();
  const auto empty = painted(30, 30, {1, 2, 3}, {});
  const BoxedImage out = mixup(base, empty, kS, {1.25, false, 0, 0});
  EXPECT_EQ(out.image.pixels, base.image.pixels);
  EXPECT_EQ(out.boxes.size(), 1u);
}

TEST(MixUp, DrawsOffsetsFromTheSizes) {
  std::mt19937_64 rng(5);
  int flips = 0;
  for (int i = 0; i < 4000; ++i) {
    const MixUpDraw d = draw_mixup(rng, 640, 700, 560);
    ASSERT_GE(d.jit_factor, 0.8);
    ASSERT_LT(d.jit_factor, 1.6);
    flips += d.flip;
    const auto j = static_cast<int64_t>(640 * d.jit_factor);
    if (j > 560)
      ASSERT_LT(d.y_offset, j - 560);  // numpy's randint excludes the high end
    else
      ASSERT_EQ(d.y_offset, 0);
    if (j > 700)
      ASSERT_LT(d.x_offset, j - 700);
    else
      ASSERT_EQ(d.x_offset, 0);
    ASSERT_GE(d.x_offset, 0);
    ASSERT_GE(d.y_offset, 0);
  }
  EXPECT_NEAR(flips / 4000.0, 0.5, 0.04);
  // A mosaic-sized base (2S) is never smaller than J <= 1.6 S: no offsets drawn.
  for (int i = 0; i < 200; ++i) {
    const MixUpDraw d = draw_mixup(rng, 640, 1280, 1280);
    EXPECT_EQ(d.x_offset, 0);
    EXPECT_EQ(d.y_offset, 0);
  }
}

TEST(MultiImageMix, MosaicThenMixUpAsConfigured) {
  const std::vector<BoxedImage> samples{image_a(), image_b(), image_c(), image_d(),
                                        painted(20, 20, {9, 9, 9}, {})};
  auto load = [&](int64_t i) { return samples.at(static_cast<size_t>(i)); };
  MultiImageMixOptions options;
  options.image_size = kS;
  std::mt19937_64 rng(7), again(7);
  int mosaics = 0;
  for (int i = 0; i < 60; ++i) {
    const BoxedImage out = multi_image_mix(i % 5, 5, load, rng, options);
    const BoxedImage same = multi_image_mix(i % 5, 5, load, again, options);
    EXPECT_EQ(out.image.pixels, same.image.pixels);
    if (out.image.width == 2 * kS)
      ++mosaics;
    else
      EXPECT_EQ(out.image.width, samples[i % 5].image.width);  // mixup keeps the base's size
  }
  EXPECT_GT(mosaics, 15);  // prob 0.5
  EXPECT_LT(mosaics, 45);
  options.mosaic_prob = 1;
  options.use_mixup = false;
  EXPECT_EQ(multi_image_mix(4, 5, load, rng, options).image.width, 2 * kS);
  EXPECT_THROW(multi_image_mix(5, 5, load, rng, options), std::invalid_argument);
}

// ---- Against the Python transcription of mmdet's transforms

struct Case {
  std::string id, line;
  BoxedImage ours;
};

using testing::exact_decimal;

TEST(MosaicMixUpReference, MatchesMmdetTranscriptionExactly) {
  const std::string missing = testing::python_reference_missing(
      "torch, numpy, PIL", "python3-torch python3-pil", "the Mosaic/MixUp reference test");
  if (!missing.empty()) GTEST_SKIP() << missing;
  TempDir dir;
  std::map<std::string, BoxedImage> images{
      {"a", image_a()},
      {"b", image_b()},
      {"c", image_c()},
      {"d", image_d()},
      {"base", mixup_base()},
      {"other", mixup_other()},
      {"small", small_base()},
      {"n1", noise(77, 53, 1, {{3.3, 4.7, 60.1, 50.9, 1}, {-5, 10, 20, 70, 2}, {70.5, 0, 77, 53, 3}})},
      {"n2", noise(41, 97, 2, {{0.25, 0.5, 40.75, 96.5, 4}, {10, 10, 11, 11, 5}})},
      {"n3", noise(200, 150, 3, {{12.1, 33.3, 190.7, 140.2, 6}})},
      {"empty", noise(20, 20, 4, {})},
  };
  // The chain as trained: a mosaic, then mixup into it.
  std::mt19937_64 rng(11);
  images["mosaic"] = mosaic({&images.at("n1"), &images.at("a"), &images.at("n2"), &images.at("c")}, kS,
                            draw_mosaic(rng, kS));
  std::ofstream manifest = testing::write_boxed_images(dir, images);
  std::vector<Case> cases;
  auto add_mosaic = [&](const std::string& id, int64_t s, MosaicDraw d, std::array<std::string, 4> n) {
    cases.push_back({id,
                     "mosaic " + id + " " + std::to_string(s) + " " + std::to_string(d.center_x) + " " +
                         std::to_string(d.center_y) + " " + n[0] + " " + n[1] + " " + n[2] + " " + n[3],
                     mosaic({&images.at(n[0]), &images.at(n[1]), &images.at(n[2]), &images.at(n[3])}, s, d)});
  };
  auto add_mixup = [&](const std::string& id, int64_t s, MixUpDraw d, const std::string& base,
                       const std::string& other) {
    cases.push_back({id,
                     "mixup " + id + " " + std::to_string(s) + " " + exact_decimal(d.jit_factor) + " " +
                         (d.flip ? "1 " : "0 ") + std::to_string(d.x_offset) + " " +
                         std::to_string(d.y_offset) + " " + base + " " + other,
                     mixup(images.at(base), images.at(other), s, d)});
  };
  add_mosaic("m1", kS, {70, 60}, {"a", "b", "c", "d"});
  add_mosaic("m2", kS, {40, 90}, {"a", "b", "c", "d"});
  add_mosaic("m3", kS, {33, 95}, {"n1", "n2", "n3", "a"});
  add_mosaic("m4", 48, {71, 30}, {"n3", "d", "n1", "n2"});
  add_mixup("x1", kS, {1.25, false, 0, 0}, "base", "other");
  add_mixup("x2", kS, {1.25, true, 0, 0}, "base", "other");
  add_mixup("x3", kS, {1.5, true, 20, 10}, "small", "other");
  add_mixup("x4", kS, {1.37, false, 8, 30}, "n1", "n3");
  add_mixup("x5", kS, {0.83, true, 0, 0}, "n3", "n2");
  add_mixup("x6", kS, {1.1, false, 0, 0}, "base", "empty");
  add_mixup("x7", kS, draw_mixup(rng, kS, 2 * kS, 2 * kS), "mosaic", "n3");
  for (const auto& c : cases) manifest << c.line << "\n";
  manifest.close();
  const std::string error = testing::run_reference_command(
      "/usr/bin/python3 " AUTOMM_SOURCE_DIR "/tests/data/mosaic_reference.py " + dir.path().string(),
      dir.file("reference.log"));
  ASSERT_EQ(error, "");
  auto read_reference = [&](const std::string& id) {
    std::ifstream in(dir.file(id + ".txt"));
    BoxedImage ref;
    in >> ref.image.width >> ref.image.height;
    for (LabeledBox b; in >> b.x1 >> b.y1 >> b.x2 >> b.y2 >> b.label;) ref.boxes.push_back(b);
    ref.image.pixels.resize(size_t(ref.image.width * ref.image.height * 3));
    std::ifstream(dir.file(id + ".rgb"), std::ios::binary)
        .read(reinterpret_cast<char*>(ref.image.pixels.data()), std::streamsize(ref.image.pixels.size()));
    return ref;
  };
  size_t total_boxes = 0;
  for (const auto& c : cases) {
    SCOPED_TRACE(c.line);
    const BoxedImage ref = read_reference(c.id);
    ASSERT_EQ(c.ours.image.width, ref.image.width);
    ASSERT_EQ(c.ours.image.height, ref.image.height);
    int max_diff = 0;
    for (size_t i = 0; i < ref.image.pixels.size(); ++i)
      max_diff = std::max(max_diff, std::abs(int(ref.image.pixels[i]) - int(c.ours.image.pixels[i])));
    EXPECT_EQ(max_diff, 0);
    ASSERT_EQ(c.ours.boxes.size(), ref.boxes.size());
    for (size_t i = 0; i < ref.boxes.size(); ++i) {
      EXPECT_EQ(c.ours.boxes[i].label, ref.boxes[i].label);
      EXPECT_EQ(c.ours.boxes[i].x1, ref.boxes[i].x1);
      EXPECT_EQ(c.ours.boxes[i].y1, ref.boxes[i].y1);
      EXPECT_EQ(c.ours.boxes[i].x2, ref.boxes[i].x2);
      EXPECT_EQ(c.ours.boxes[i].y2, ref.boxes[i].y2);
    }
    total_boxes += ref.boxes.size();
  }
  EXPECT_GT(total_boxes, 30u);
  // Control: a centre one pixel off moves the boxes, so the comparison can fail.
  const BoxedImage shifted =
      mosaic({&images.at("a"), &images.at("b"), &images.at("c"), &images.at("d")}, kS, {71, 60});
  const BoxedImage ref = read_reference("m1");
  EXPECT_NE(shifted.boxes[0].x1, ref.boxes[0].x1);
  EXPECT_NE(shifted.image.pixels, ref.image.pixels);
}

}  // namespace
}  // namespace automm
