// Image transforms against torchvision 0.14 + Pillow (Debian's python3-torchvision,
// run by tests/data/transform_reference.py), the random draws against their
// distributions and the spec parser's errors. (Throughput: bench/bench_images.cpp.)
#include <cstdio>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <sstream>

#include "automm_test_paths.h"
#include "data/image/transforms.h"
#include "test_util.h"

namespace automm {
namespace {

using automm::testing::TempDir;

Image read_rgb(const std::string& path, int64_t w, int64_t h) {
  Image img(w, h);
  std::ifstream in(path, std::ios::binary);
  in.read(reinterpret_cast<char*>(img.pixels.data()), static_cast<std::streamsize>(img.pixels.size()));
  if (!in) throw std::runtime_error("cannot read " + path);
  return img;
}

struct ReferenceCase {
  std::string id, op, image;
  int64_t width = 0, height = 0;
  std::vector<double> p;
};

struct Reference {
  std::string skip_reason;  // torchvision or PIL is absent
  std::string error;        // the reference script failed
  TempDir dir;
  std::map<std::string, Image> images;
  std::vector<ReferenceCase> cases;
};

// Runs the python script once per test process.
const Reference* reference() {
  static const std::unique_ptr<Reference> ref = []() -> std::unique_ptr<Reference> {
    auto r = std::make_unique<Reference>();
    r->skip_reason = testing::python_reference_missing("torch, torchvision, PIL", "python3-torchvision python3-pil",
                                                       "the image transform reference tests");
    if (!r->skip_reason.empty()) return r;
    r->error = testing::run_reference_command(
        "/usr/bin/python3 " AUTOMM_SOURCE_DIR "/tests/data/transform_reference.py " + r->dir.path().string(),
        r->dir.file("reference.log"));
    if (!r->error.empty()) return r;
    std::ifstream manifest(r->dir.file("manifest.txt"));
    for (std::string line; std::getline(manifest, line);) {
      std::istringstream s(line);
      std::string kind;
      s >> kind;
      if (kind == "image") {
        std::string name;
        int64_t w, h;
        s >> name >> w >> h;
        r->images[name] = read_rgb(r->dir.file(name + ".rgb"), w, h);
      } else if (kind == "case") {
        ReferenceCase c;
        s >> c.id >> c.op >> c.image >> c.width >> c.height;
        for (double v; s >> v;) c.p.push_back(v);
        r->cases.push_back(c);
      }
    }
    return r;
  }();
  return ref.get();
}

Interpolation interp(double code) { return code == 0 ? Interpolation::kBilinear : Interpolation::kBicubic; }
auto i64 = [](double v) { return static_cast<int64_t>(v); };

// The C++ counterpart of each reference op; p are the case's parameters.
Image run_image_op(const std::string& op, const Image& in, const std::vector<double>& p) {
  static const std::map<std::string, std::function<Image(const Image&, const std::vector<double>&)>> ops = {
      {"resize", [](const Image& in, auto& p) { return resize(in, i64(p[0]), i64(p[1]), interp(p[2])); }},
      {"resize_shorter_side",
       [](const Image& in, auto& p) { return resize_shorter_side(in, i64(p[0]), interp(p[1])); }},
      {"center_crop", [](const Image& in, auto& p) { return center_crop(in, i64(p[1]), i64(p[0])); }},
      {"resized_crop",
       [](const Image& in, auto& p) {
         return resize(crop(in, i64(p[0]), i64(p[1]), i64(p[2]), i64(p[3])), i64(p[4]), i64(p[4]),
                       Interpolation::kBilinear);
       }},
      {"hflip", [](const Image& in, auto&) { return hflip(in); }},
      {"vflip", [](const Image& in, auto&) { return vflip(in); }},
      {"rotate", [](const Image& in, auto& p) { return rotate(in, p[0]); }},
      {"affine", [](const Image& in, auto& p) { return affine(in, p[0], p[1], p[2], p[3], p[4], p[5]); }},
      {"transform_affine",
       [](const Image& in, auto& p) {
         return affine_nearest(in, {p[0], p[1], p[2], p[3], p[4], p[5]});
       }},
      {"autocontrast", [](const Image& in, auto&) { return autocontrast(in); }},
      {"equalize", [](const Image& in, auto&) { return equalize(in); }},
      {"invert", [](const Image& in, auto&) { return invert(in); }},
      {"solarize", [](const Image& in, auto& p) { return solarize(in, p[0]); }},
      {"solarize_add", [](const Image& in, auto& p) { return solarize_add(in, p[0]); }},
      {"posterize", [](const Image& in, auto& p) { return posterize(in, static_cast<int>(p[0])); }},
      {"brightness", [](const Image& in, auto& p) { return adjust_brightness(in, p[0]); }},
      {"contrast", [](const Image& in, auto& p) { return adjust_contrast(in, p[0]); }},
      {"saturation", [](const Image& in, auto& p) { return adjust_saturation(in, p[0]); }},
      {"sharpness", [](const Image& in, auto& p) { return adjust_sharpness(in, p[0]); }},
      {"hue", [](const Image& in, auto& p) { return adjust_hue(in, p[0]); }},
  };
  return ops.at(op)(in, p);
}

// Allowed max |difference| in uint8 levels, per op. Every op redoes Pillow's
// own arithmetic (fixed-point resampling, float blends, 16.16 affine walk), so
// all are exact; a nonzero entry would document a known approximation.
int tolerance(const std::string& op) {
  static const std::map<std::string, int> loose = {};
  const auto it = loose.find(op);
  return it == loose.end() ? 0 : it->second;
}

TEST(ImageTransformReference, MatchesTorchvisionPerOp) {
  const Reference* ref = reference();
  if (!ref->skip_reason.empty()) GTEST_SKIP() << ref->skip_reason;
  ASSERT_TRUE(ref->error.empty()) << ref->error;
  ASSERT_GT(ref->cases.size(), 200u);
  struct Stats {
    int cases = 0;
    double max_diff = 0;
    int64_t differing = 0, values = 0;
  };
  std::map<std::string, Stats> stats;
  for (const auto& c : ref->cases) {
    SCOPED_TRACE(c.id);
    const Image& in = ref->images.at(c.image);
    Stats& st = stats[c.op];
    ++st.cases;
    if (c.op == "normalize" || c.op == "val_pipeline") {
      const auto [mean, std] = image_norm_stats(c.p[0] == 0 ? "imagenet" : "clip");
      const Image src = c.op == "normalize"
                            ? in
                            : center_crop(resize_shorter_side(in, 224, Interpolation::kBicubic), 224, 224);
      const torch::Tensor got = to_normalized_tensor(src, mean, std);
      ASSERT_EQ(got.sizes(), (std::vector<int64_t>{3, c.height, c.width}));
      torch::Tensor want = torch::empty_like(got);
      std::ifstream f(ref->dir.file(c.id + ".f32"), std::ios::binary);
      f.read(reinterpret_cast<char*>(want.data_ptr<float>()), want.numel() * 4);
      ASSERT_TRUE(f) << "missing " << c.id;
      const torch::Tensor diff = (got - want).abs();
      st.max_diff = std::max(st.max_diff, diff.max().item<double>() * 0.229 * 255);  // in uint8 levels
      st.differing += (diff > 0).sum().item<int64_t>();
      st.values += diff.numel();
      EXPECT_LE(diff.max().item<double>(), tolerance(c.op) / 255.0 / 0.22);
      continue;
    }
    const Image got = run_image_op(c.op, in, c.p);
    ASSERT_EQ(got.width, c.width);
    ASSERT_EQ(got.height, c.height);
    const Image want = read_rgb(ref->dir.file(c.id + ".rgb"), c.width, c.height);
    int max_diff = 0;
    int64_t differing = 0;
    for (size_t i = 0; i < got.pixels.size(); ++i) {
      const int d = std::abs(got.pixels[i] - want.pixels[i]);
      max_diff = std::max(max_diff, d);
      differing += d > 0;
    }
    st.max_diff = std::max<double>(st.max_diff, max_diff);
    st.differing += differing;
    st.values += static_cast<int64_t>(got.pixels.size());
    EXPECT_LE(max_diff, tolerance(c.op))
        << c.op << " differs in " << differing << " of " << got.pixels.size();
  }
  std::printf("%-20s %6s %10s %12s %10s\n", "op vs torchvision", "cases", "max|diff|", "differing",
              "tolerance");
  for (const auto& [op, st] : stats)
    std::printf("%-20s %6d %10.3g %5lld/%-7lld %10d\n", op.c_str(), st.cases, st.max_diff,
                static_cast<long long>(st.differing), static_cast<long long>(st.values), tolerance(op));
}

// ---- Random parameters ----------------------------------------------------

TEST(ImageTransformRandom, ResizedCropAreaAndLogUniformRatio) {
  std::mt19937_64 rng(1);
  const int n = 20000;
  std::vector<int> ratio_bins(10, 0);
  double mean_fraction = 0;
  for (int i = 0; i < n; ++i) {
    // A square 1000x1000 never rejects with scale <= 0.5, so every draw is a first try.
    const CropBox b = sample_resized_crop(1000, 1000, {0.08, 0.5}, {3.0 / 4, 4.0 / 3}, rng);
    ASSERT_TRUE(b.top >= 0 && b.left >= 0 && b.top + b.height <= 1000 && b.left + b.width <= 1000);
    const double fraction = b.width * b.height / 1e6, log_ratio = std::log(double(b.width) / b.height);
    ASSERT_GE(fraction, 0.08 * 0.99);
    ASSERT_LE(fraction, 0.5 * 1.01);
    ASSERT_LE(std::abs(log_ratio), std::log(4.0 / 3) + 0.01);
    mean_fraction += fraction / n;
    ++ratio_bins[std::clamp(static_cast<int>((log_ratio / std::log(4.0 / 3) + 1) / 2 * 10), 0, 9)];
  }
  EXPECT_NEAR(mean_fraction, 0.29, 0.005);                                // U(0.08, 0.5)
  for (int count : ratio_bins) EXPECT_NEAR(count, n / 10, n / 10 * 0.1);  // log-uniform aspect
  // Every try rejected (ratio 2-3 cannot fit at full area): torchvision's clamped centre crop.
  const CropBox f = sample_resized_crop(300, 200, {1, 1}, {2, 3}, rng);
  EXPECT_EQ(std::vector<int64_t>({f.top, f.left, f.height, f.width}),
            std::vector<int64_t>({25, 0, 150, 300}));
}

TEST(ImageTransformRandom, FlipsHappenWithProbabilityP) {
  Image in(3, 1);
  in.pixels = {1, 1, 1, 2, 2, 2, 3, 3, 3};
  std::mt19937_64 rng(2);
  for (const auto& [spec, p] :
       std::vector<std::pair<std::string, double>>{{"random_horizontal_flip", 0.5},
                                                   {"random_horizontal_flip(p=0.2)", 0.2},
                                                   {"random_vertical_flip(1)", 1}}) {
    const auto t = make_image_transform(spec, 224);
    int flipped = 0;
    const int n = 4000;
    for (int i = 0; i < n; ++i) {
      const Image out = t->apply(spec.find("vertical") != std::string::npos ? hflip(in) : in, rng);
      flipped += out.pixels[0] == 3;
    }
    EXPECT_NEAR(flipped / double(n), p, 4 * std::sqrt(p * (1 - p) / n) + 1e-9) << spec;
  }
}

TEST(ImageTransformRandom, TrivialAugmentOpsUniformMagnitudesInRange) {
  std::mt19937_64 rng(3);
  std::map<AugmentOp, std::vector<double>> seen;
  const int n = 14 * 3000;
  for (int i = 0; i < n; ++i) {
    const AugmentStep s = sample_trivial_augment(30, rng);
    seen[s.op].push_back(s.magnitude);
  }
  ASSERT_EQ(seen.size(), 14u);
  EXPECT_EQ(seen.count(AugmentOp::kSolarizeAdd), 0u);
  for (const auto& [op, mags] : seen) {
    SCOPED_TRACE(augment_op_name(op));
    EXPECT_NEAR(mags.size(), 3000, 3000 * 0.12);
    std::set<double> distinct(mags.begin(), mags.end());
    const double lo = *distinct.begin(), hi = *distinct.rbegin();
    switch (op) {
      case AugmentOp::kRotate:
        EXPECT_TRUE(lo == -30 && hi == 30 && distinct.size() == 61);
        break;
      case AugmentOp::kSolarize:
        EXPECT_TRUE(lo == 0 && hi == 256);
        break;
      case AugmentOp::kPosterize:
        EXPECT_EQ(distinct, (std::set<double>{0, 1, 2, 3, 4}));
        break;
      case AugmentOp::kShearX:
      case AugmentOp::kShearY:
        EXPECT_TRUE(std::abs(lo + 0.3) < 1e-12 && std::abs(hi - 0.3) < 1e-12);
        break;
      case AugmentOp::kTranslateX:
      case AugmentOp::kTranslateY:
        EXPECT_TRUE(lo == -10 && hi == 10 && distinct.size() == 21);
        break;
      case AugmentOp::kColor:
      case AugmentOp::kContrast:
      case AugmentOp::kBrightness:
      case AugmentOp::kSharpness:
        EXPECT_NEAR(lo, 0.1, 1e-12);
        EXPECT_NEAR(hi, 1.8, 1e-12);
        EXPECT_EQ(distinct.size(), 31u);  // randint(0, 30) / 30
        break;
      default:
        EXPECT_EQ(distinct, std::set<double>{0});
    }
  }
}

TEST(ImageTransformRandom, RandAugmentValuesAtMagnitudeNine) {
  std::mt19937_64 rng(4);
  const std::map<AugmentOp, std::set<double>> expected = {
      {AugmentOp::kAutoContrast, {0.3}},   {AugmentOp::kEqualize, {0.3}},
      {AugmentOp::kRotate, {-9, 9}},       {AugmentOp::kPosterize, {1}},
      {AugmentOp::kSolarize, {76.8}},      {AugmentOp::kSolarizeAdd, {33}},
      {AugmentOp::kColor, {0.64}},         {AugmentOp::kContrast, {0.64}},
      {AugmentOp::kBrightness, {0.64}},    {AugmentOp::kSharpness, {0.64}},
      {AugmentOp::kShearX, {-0.09, 0.09}}, {AugmentOp::kShearY, {-0.09, 0.09}},
      {AugmentOp::kTranslateX, {-30, 30}}, {AugmentOp::kTranslateY, {-30, 30}}};
  std::map<AugmentOp, int> counts;
  for (int i = 0; i < 7000; ++i) {
    const auto steps = sample_randaug(2, 9, rng);
    ASSERT_EQ(steps.size(), 2u);
    for (const auto& s : steps) {
      ++counts[s.op];
      const auto& allowed = expected.at(s.op);
      EXPECT_TRUE(std::any_of(allowed.begin(), allowed.end(),
                              [&](double v) { return std::abs(v - s.magnitude) < 1e-9; }))
          << augment_op_name(s.op) << " " << s.magnitude;
    }
  }
  for (const auto& [op, count] : counts) EXPECT_NEAR(count, 1000, 120) << augment_op_name(op);
}

TEST(ImageTransformRandom, ColorJitterOrderAndFactors) {
  ColorJitterRanges r;
  r.ranges = {Range{0.6, 1.4}, Range{0.9, 1.1}, Range{0.6, 1.4}, Range{-0.1, 0.1}};
  r.enabled = {true, true, true, true};
  std::mt19937_64 rng(5);
  std::map<std::array<int, 4>, int> orders;
  std::array<double, 4> mean{};
  const int n = 24000;
  for (int i = 0; i < n; ++i) {
    const ColorJitterParams p = sample_color_jitter(r, rng);
    ++orders[p.order];
    for (int k = 0; k < 4; ++k) {
      ASSERT_GE(p.factors[k], r.ranges[k].first);
      ASSERT_LE(p.factors[k], r.ranges[k].second);
      mean[k] += p.factors[k] / n;
    }
  }
  EXPECT_EQ(orders.size(), 24u);  // every permutation, about equally often
  for (const auto& [order, count] : orders) EXPECT_NEAR(count, 1000, 150);
  for (int k = 0; k < 4; ++k) EXPECT_NEAR(mean[k], (r.ranges[k].first + r.ranges[k].second) / 2, 0.01);
}

TEST(ImageTransformRandom, AffineDefaultRanges) {
  AffineRanges r;
  r.degrees = {-15, 15};
  r.translate_x = r.translate_y = 0.1;
  r.scale = {0.9, 1.1};
  std::mt19937_64 rng(6);
  double mean_angle = 0;
  std::set<double> tx;
  for (int i = 0; i < 10000; ++i) {
    const AffineParams p = sample_affine(r, 333, 251, rng);
    ASSERT_TRUE(p.angle >= -15 && p.angle <= 15 && p.scale >= 0.9 && p.scale <= 1.1 && p.shear_x == 0);
    ASSERT_EQ(p.translate_x, std::round(p.translate_x));
    ASSERT_LE(std::abs(p.translate_x), 33);  // round(U(-33.3, 33.3))
    ASSERT_LE(std::abs(p.translate_y), 25);
    mean_angle += p.angle / 10000;
    tx.insert(p.translate_x);
  }
  EXPECT_NEAR(mean_angle, 0, 0.3);
  EXPECT_EQ(tx.size(), 67u);
}

// ---- Specs ----------------------------------------------------------------

std::string error_of(const std::string& spec) {
  try {
    make_image_transform(spec, 224);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

TEST(ImageTransformSpec, BuildsEveryNameAndKeepsSizes) {
  Image in(640, 480);
  for (size_t i = 0; i < in.pixels.size(); ++i) in.pixels[i] = static_cast<uint8_t>(i * 7 % 251);
  std::mt19937_64 rng(7);
  const ImagePipeline train({"resize_shorter_side", "center_crop", "trivial_augment"}, 224);
  for (int i = 0; i < 30; ++i) {
    const Image out = train.apply(in, rng);
    ASSERT_EQ(out.width, 224);
    ASSERT_EQ(out.height, 224);
  }
  for (const auto& name : image_transform_names()) {
    const Image out = make_image_transform(name, 96)->apply(in, rng);
    const bool resizes = name.find("resize") != std::string::npos || name == "center_crop";
    EXPECT_EQ(out.width, resizes ? (name == "resize_shorter_side" ? 128 : 96) : 640) << name;
  }
  const Image crop_out =
      make_image_transform("random_resize_crop(64, scale=0.5-1.0, ratio=0.5-2)", 224)->apply(in, rng);
  EXPECT_EQ(crop_out.width, 64);
  EXPECT_NO_THROW(make_image_transform(" color_jitter(0.4, 0.4, 0.4) ", 224));
  EXPECT_NO_THROW(make_image_transform("affine(10, translate=0.1-0.2, scale=0.8-1.2, shear=-5-5)", 224));
  EXPECT_NO_THROW(make_image_transform("randaug(num_ops=3, magnitude=12)", 224));
  EXPECT_NO_THROW(make_image_transform("resize_to_square(interpolation=bilinear)", 224));
}

TEST(ImageTransformSpec, ErrorsNameTransformAndArgument) {
  EXPECT_NE(error_of("resize_longer_side").find("known: affine, center_crop, color_jitter"),
            std::string::npos);
  const std::string bad_scale = error_of("random_resize_crop(224, scale=abc)");
  EXPECT_NE(bad_scale.find("random_resize_crop"), std::string::npos) << bad_scale;
  EXPECT_NE(bad_scale.find("'scale'"), std::string::npos) << bad_scale;
  EXPECT_NE(error_of("random_resize_crop(scale=0.9-0.5)").find("ordered range"), std::string::npos);
  EXPECT_NE(error_of("center_crop(224, 5)").find("at most 1"), std::string::npos);
  EXPECT_NE(error_of("trivial_augment(foo=1)").find("'foo' is not an argument"), std::string::npos);
  EXPECT_NE(error_of("affine(translate=0.1)").find("'degrees' is required"), std::string::npos);
  EXPECT_NE(error_of("resize_shorter_side(interpolation=nearest)").find("'interpolation'"),
            std::string::npos);
  EXPECT_NE(error_of("randaug(magnitude=31)").find("'magnitude'"), std::string::npos);
  EXPECT_NE(error_of("color_jitter(hue=0.7)").find("'hue'"), std::string::npos);
  EXPECT_NE(error_of("center_crop(224").find("missing ')'"), std::string::npos);
  EXPECT_NE(error_of("center_crop(size=2.5)").find("integer"), std::string::npos);
}

}  // namespace
}  // namespace automm
