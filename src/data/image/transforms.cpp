// Named image transforms: parsing of "name(args)", a registry from names to
// builders, the random-parameter draws, and ToTensor + Normalize.
#include "data/image/transforms.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <functional>
#include <map>
#include <stdexcept>
#include <tuple>

namespace automm {
namespace {

double uniform(std::mt19937_64& rng, double lo, double hi) {
  return lo == hi ? lo : std::uniform_real_distribution<double>(lo, hi)(rng);
}
int64_t randint(std::mt19937_64& rng, int64_t lo, int64_t hi) {  // [lo, hi], like random.randint
  return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
}
// Python's random.random() > 0.5, the coin AutoMM's ops flip for a sign.
double random_sign(std::mt19937_64& rng) { return uniform(rng, 0, 1) > 0.5 ? -1.0 : 1.0; }
// Python's round() on a float: half to even.
int64_t round_half_even(double v) { return static_cast<int64_t>(std::nearbyint(v)); }

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t"), e = s.find_last_not_of(" \t");
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

// The arguments of one spec, checked against the transform's parameter list
// (positional order = list order); every accessor error names spec and key.
class Args {
 public:
  Args(std::string spec, std::string body, const std::vector<std::string>& params) : spec_(std::move(spec)) {
    size_t position = 0;
    for (size_t start = 0; !trim(body).empty() && start <= body.size();) {
      const size_t end = std::min(body.find(',', start), body.size());
      const std::string arg = trim(body.substr(start, end - start));
      start = end + 1;
      const size_t eq = arg.find('=');
      std::string key = eq == std::string::npos ? "" : trim(arg.substr(0, eq));
      if (eq == std::string::npos) {
        if (!values_.empty() && position < values_.size())
          fail("", "positional arguments must come before key=value ones");
        if (position >= params.size())
          fail("", "takes at most " + std::to_string(params.size()) + " arguments" + listing(params));
        key = params[position++];
      } else if (std::find(params.begin(), params.end(), key) == params.end()) {
        fail(key, "is not an argument of this transform" + listing(params));
      }
      if (values_.count(key)) fail(key, "is given twice");
      values_[key] = eq == std::string::npos ? arg : trim(arg.substr(eq + 1));
      if (values_[key].empty()) fail(key, "has no value");
    }
  }

  bool bare() const { return values_.empty(); }
  bool given(const std::string& key) const { return values_.count(key) > 0; }

  // "x" -> {x}; "lo-hi" -> {lo, hi} (the '-' after a digit separates).
  std::vector<double> numbers(const std::string& key) const {
    const std::string& text = values_.at(key);
    size_t dash = std::string::npos;
    for (size_t i = 1; i < text.size(); ++i)
      if (text[i] == '-' && (std::isdigit(static_cast<unsigned char>(text[i - 1])) || text[i - 1] == '.'))
        dash = i;
    std::vector<double> out;
    for (const std::string& part :
         dash == std::string::npos ? std::vector<std::string>{text}
                                   : std::vector<std::string>{text.substr(0, dash), text.substr(dash + 1)}) {
      char* end = nullptr;
      const std::string p = trim(part);
      out.push_back(std::strtod(p.c_str(), &end));
      if (p.empty() || *end != '\0') fail(key, "must be a number or a range lo-hi, got '" + text + "'");
    }
    return out;
  }
  double number(const std::string& key, double fallback, double min, double max) const {
    if (!given(key)) return fallback;
    const auto v = numbers(key);
    if (v.size() != 1 || v[0] < min || v[0] > max)
      fail(key, "must be a number in [" + fmt(min) + ", " + fmt(max) + "], got '" + values_.at(key) + "'");
    return v[0];
  }
  int64_t integer(const std::string& key, int64_t fallback, int64_t min, int64_t max) const {
    const double v =
        number(key, static_cast<double>(fallback), static_cast<double>(min), static_cast<double>(max));
    if (v != std::floor(v)) fail(key, "must be an integer, got '" + values_.at(key) + "'");
    return static_cast<int64_t>(v);
  }
  // A single x means (-x, x) when `symmetric`, else (x, x); lo-hi must be ordered and within [min, max].
  Range range(const std::string& key, Range fallback, bool symmetric, double min, double max) const {
    if (!given(key)) return fallback;
    auto v = numbers(key);
    if (v.size() == 1) v = {symmetric ? -v[0] : v[0], v[0]};
    if (v[0] > v[1] || v[0] < min || v[1] > max)
      fail(key, "must be an ordered range within [" + fmt(min) + ", " + fmt(max) + "], got '" +
                    values_.at(key) + "'");
    return {v[0], v[1]};
  }
  Interpolation interpolation(Interpolation fallback) const {
    if (!given("interpolation")) return fallback;
    try {
      return parse_interpolation(values_.at("interpolation"));
    } catch (const std::invalid_argument& e) {
      fail("interpolation", e.what());
    }
  }
  [[noreturn]] void fail(const std::string& key, const std::string& why) const {
    throw std::invalid_argument("image transform '" + spec_ +
                                "': " + (key.empty() ? "" : "argument '" + key + "' ") + why);
  }

 private:
  static std::string fmt(double v) {
    std::string s = std::to_string(v);
    s.erase(s.find_last_not_of('0') + 1);
    if (s.back() == '.') s.pop_back();
    return s;
  }
  static std::string listing(const std::vector<std::string>& params) {
    std::string s = " (arguments:";
    for (const auto& p : params) s += " " + p;
    return params.empty() ? " (it takes none)" : s + ")";
  }
  std::string spec_;
  std::map<std::string, std::string> values_;
};

using TransformFn = std::function<void(ImageSample&, std::mt19937_64&)>;

class FnTransform : public ImageTransform {
 public:
  explicit FnTransform(TransformFn fn) : fn_(std::move(fn)) {}
  void apply(ImageSample& sample, std::mt19937_64& rng) const override { fn_(sample, rng); }

 private:
  TransformFn fn_;
};

// ---- Targets moved with the pixels ----

// Box coordinates scaled by (sx, sy), as a resize from the old to the new size does.
void scale_boxes(ImageSample& s, double sx, double sy) {
  if (!s.boxes.defined()) return;
  s.boxes = s.boxes * torch::tensor({sx, sy, sx, sy}, torch::kFloat64).to(s.boxes.dtype());
}

// Boxes seen through a (height x width) window at (top, left): shifted, clipped
// to the window, those left without area dropped.
void crop_boxes(ImageSample& s, int64_t top, int64_t left, int64_t height, int64_t width) {
  if (!s.boxes.defined()) return;
  torch::Tensor b = s.boxes - torch::tensor({left, top, left, top}, torch::kFloat64).to(s.boxes.dtype());
  b = torch::stack({b.select(1, 0).clamp(0, width), b.select(1, 1).clamp(0, height),
                    b.select(1, 2).clamp(0, width), b.select(1, 3).clamp(0, height)},
                   1);
  const torch::Tensor keep = ((b.select(1, 2) > b.select(1, 0)) & (b.select(1, 3) > b.select(1, 1))).nonzero().view(-1);
  s.boxes = b.index_select(0, keep);
  s.box_ids = s.box_ids.index_select(0, keep);
}

// Resizes the image (with `interpolation`) and its mask (NEAREST) to width x height; scales the boxes.
void resize_sample(ImageSample& s, int64_t width, int64_t height, Interpolation interpolation) {
  scale_boxes(s, static_cast<double>(width) / static_cast<double>(s.image.width),
              static_cast<double>(height) / static_cast<double>(s.image.height));
  s.image = resize(s.image, width, height, interpolation);
  if (!s.mask.empty()) s.mask = resize_nearest(s.mask, width, height);
}

void crop_sample(ImageSample& s, int64_t top, int64_t left, int64_t height, int64_t width) {
  crop_boxes(s, top, left, height, width);
  s.image = crop(s.image, top, left, height, width);
  if (!s.mask.empty()) s.mask = crop(s.mask, top, left, height, width);
}

void flip_sample(ImageSample& s, bool horizontal) {
  if (s.boxes.defined()) {
    const auto c = [&](int i) { return s.boxes.select(1, i); };
    const double w = static_cast<double>(s.image.width), h = static_cast<double>(s.image.height);
    s.boxes = horizontal ? torch::stack({w - c(2), c(1), w - c(0), c(3)}, 1)
                         : torch::stack({c(0), h - c(3), c(2), h - c(1)}, 1);
  }
  s.image = horizontal ? hflip(s.image) : vflip(s.image);
  if (!s.mask.empty()) s.mask = horizontal ? hflip(s.mask) : vflip(s.mask);
}

// Transforms whose geometry does not carry targets yet.
void refuse_targets(const ImageSample& s, const std::string& name) {
  if (s.has_targets())
    throw std::invalid_argument("image transform '" + name +
                                "' cannot move boxes or masks with the pixels (its rotations, shears and "
                                "translations do not carry targets yet); leave it out of this task's transforms");
}

struct TransformEntry {
  std::vector<std::string> params;
  std::function<TransformFn(const Args&, int64_t size, Interpolation)> make;
};

TransformFn random_flip(const Args& a, bool horizontal) {
  const double p = a.number("p", 0.5, 0, 1);
  return [p, horizontal](ImageSample& s, std::mt19937_64& rng) {
    if (uniform(rng, 0, 1) < p) flip_sample(s, horizontal);
  };
}

TransformFn color_jitter(const Args& a) {
  // Bare, AutoMM asks for ColorJitter(0.1, 0.1, 0.1); with arguments the rest default to off.
  const double fallback = a.bare() ? 0.1 : 0.0;
  ColorJitterRanges r;
  const char* names[4] = {"brightness", "contrast", "saturation", "hue"};
  for (int i = 0; i < 4; ++i) {
    const bool hue = i == 3;
    const double center = hue ? 0 : 1;
    if (a.given(names[i]) && a.numbers(names[i]).size() == 1) {
      // torchvision _check_input: x -> [center - x, center + x], clipped at 0 for factors.
      const double x = a.number(names[i], 0, 0, hue ? 0.5 : 1e9);
      r.ranges[i] = {hue ? -x : std::max(0.0, 1 - x), center + x};
    } else {
      const double x = hue ? 0 : fallback;
      r.ranges[i] =
          a.range(names[i], {std::max(0.0, center - x), center + x}, false, hue ? -0.5 : 0, hue ? 0.5 : 1e9);
    }
    r.enabled[i] = !(r.ranges[i].first == center && r.ranges[i].second == center);
  }
  return [r](ImageSample& s, std::mt19937_64& rng) { s.image = apply_color_jitter(s.image, r, sample_color_jitter(r, rng)); };
}

TransformFn random_affine(const Args& a) {
  AffineRanges r;
  if (a.bare()) {  // AutoMM's default RandomAffine(degrees=15, translate=(0.1, 0.1), scale=(0.9, 1.1))
    r.degrees = {-15, 15};
    r.translate_x = r.translate_y = 0.1;
    r.scale = {0.9, 1.1};
  } else {
    if (!a.given("degrees")) a.fail("degrees", "is required when other arguments are given");
    r.degrees = a.range("degrees", r.degrees, true, -360, 360);
    if (a.given("translate")) {  // "t" for both axes or "tx-ty"
      const Range t = a.range("translate", {}, false, 0, 1);
      r.translate_x = t.first;
      r.translate_y = t.second;
    }
    r.scale = a.range("scale", r.scale, false, 1e-9, 1e9);
    r.shear = a.range("shear", r.shear, true, -180, 180);
  }
  return [r](ImageSample& s, std::mt19937_64& rng) {
    refuse_targets(s, "affine");
    const AffineParams p = sample_affine(r, s.image.width, s.image.height, rng);
    s.image = affine(s.image, p.angle, p.translate_x, p.translate_y, p.scale, p.shear_x, 0.0);
  };
}

const std::map<std::string, TransformEntry>& registry() {
  static const std::map<std::string, TransformEntry> entries = {
      {"resize_to_square",
       {{"size", "interpolation"},
        [](const Args& a, int64_t size, Interpolation interp) -> TransformFn {
          const int64_t s = a.integer("size", size, 1, 1 << 16);
          interp = a.interpolation(interp);
          return [=](ImageSample& sample, std::mt19937_64&) { resize_sample(sample, s, s, interp); };
        }}},
      {"resize_shorter_side",
       {{"size", "interpolation"},
        [](const Args& a, int64_t size, Interpolation interp) -> TransformFn {
          const int64_t s = a.integer("size", size, 1, 1 << 16);
          interp = a.interpolation(interp);
          return [=](ImageSample& sample, std::mt19937_64&) {
            // The size resize_shorter_side gives, for the mask and the boxes.
            const Image resized = resize_shorter_side(sample.image, s, interp);
            scale_boxes(sample, static_cast<double>(resized.width) / static_cast<double>(sample.image.width),
                        static_cast<double>(resized.height) / static_cast<double>(sample.image.height));
            if (!sample.mask.empty()) sample.mask = resize_nearest(sample.mask, resized.width, resized.height);
            sample.image = resized;
          };
        }}},
      {"center_crop",
       {{"size"},
        [](const Args& a, int64_t size, Interpolation) -> TransformFn {
          const int64_t s = a.integer("size", size, 1, 1 << 16);
          return [=](ImageSample& sample, std::mt19937_64&) {
            const auto [top, left] = center_crop_origin(sample.image.height, sample.image.width, s, s);
            crop_sample(sample, top, left, s, s);
          };
        }}},
      {"random_resize_crop",
       {{"size", "scale", "ratio", "interpolation"},
        [](const Args& a, int64_t size, Interpolation) -> TransformFn {
          const int64_t s = a.integer("size", size, 1, 1 << 16);
          const Range scale = a.range("scale", {0.08, 1.0}, false, 1e-9, 1);
          const Range ratio = a.range("ratio", {3.0 / 4.0, 4.0 / 3.0}, false, 1e-9, 1e9);
          const Interpolation interp =
              a.interpolation(Interpolation::kBilinear);  // RandomResizedCrop's default
          return [=](ImageSample& sample, std::mt19937_64& rng) {
            const CropBox b = sample_resized_crop(sample.image.width, sample.image.height, scale, ratio, rng);
            crop_sample(sample, b.top, b.left, b.height, b.width);
            resize_sample(sample, s, s, interp);
          };
        }}},
      {"random_horizontal_flip",
       {{"p"}, [](const Args& a, int64_t, Interpolation) { return random_flip(a, /*horizontal=*/true); }}},
      {"random_vertical_flip",
       {{"p"}, [](const Args& a, int64_t, Interpolation) { return random_flip(a, /*horizontal=*/false); }}},
      {"color_jitter",
       {{"brightness", "contrast", "saturation", "hue"},
        [](const Args& a, int64_t, Interpolation) { return color_jitter(a); }}},
      {"affine",
       {{"degrees", "translate", "scale", "shear"},
        [](const Args& a, int64_t, Interpolation) { return random_affine(a); }}},
      {"randaug",
       {{"num_ops", "magnitude"},
        [](const Args& a, int64_t, Interpolation) -> TransformFn {
          const int n = static_cast<int>(a.integer("num_ops", 2, 0, 100));
          const int m =
              static_cast<int>(a.integer("magnitude", 9, 0, 30));  // AutoMM's op asserts need m <= 30
          return [=](ImageSample& s, std::mt19937_64& rng) {
            refuse_targets(s, "randaug");
            for (const AugmentStep& step : sample_randaug(n, m, rng)) s.image = apply_augment(s.image, step);
          };
        }}},
      {"trivial_augment",
       {{"max_strength"},
        [](const Args& a, int64_t, Interpolation) -> TransformFn {
          const int levels = static_cast<int>(a.integer("max_strength", 30, 1, 1000));
          return [=](ImageSample& s, std::mt19937_64& rng) {
            refuse_targets(s, "trivial_augment");
            s.image = apply_augment(s.image, sample_trivial_augment(levels, rng));
          };
        }}},
  };
  return entries;
}

}  // namespace

CropBox sample_resized_crop(int64_t width, int64_t height, Range scale, Range ratio, std::mt19937_64& rng) {
  const double area = static_cast<double>(width * height);
  for (int attempt = 0; attempt < 10; ++attempt) {
    const double target_area = area * uniform(rng, scale.first, scale.second);
    const double aspect = std::exp(uniform(rng, std::log(ratio.first), std::log(ratio.second)));
    const int64_t w = round_half_even(std::sqrt(target_area * aspect));
    const int64_t h = round_half_even(std::sqrt(target_area / aspect));
    if (0 < w && w <= width && 0 < h && h <= height)
      return {randint(rng, 0, height - h), randint(rng, 0, width - w), h, w};
  }
  const double in_ratio = static_cast<double>(width) / static_cast<double>(height);
  int64_t w = width, h = height;
  if (in_ratio < ratio.first)
    h = round_half_even(static_cast<double>(w) / ratio.first);
  else if (in_ratio > ratio.second)
    w = round_half_even(static_cast<double>(h) * ratio.second);
  return {(height - h) / 2, (width - w) / 2, h, w};
}

AffineParams sample_affine(const AffineRanges& r, int64_t width, int64_t height, std::mt19937_64& rng) {
  AffineParams p;
  p.angle = uniform(rng, r.degrees.first, r.degrees.second);
  const double max_dx = r.translate_x * static_cast<double>(width),
               max_dy = r.translate_y * static_cast<double>(height);
  p.translate_x = static_cast<double>(round_half_even(uniform(rng, -max_dx, max_dx)));
  p.translate_y = static_cast<double>(round_half_even(uniform(rng, -max_dy, max_dy)));
  p.scale = uniform(rng, r.scale.first, r.scale.second);
  p.shear_x = uniform(rng, r.shear.first, r.shear.second);
  return p;
}

ColorJitterParams sample_color_jitter(const ColorJitterRanges& r, std::mt19937_64& rng) {
  ColorJitterParams p;
  std::shuffle(p.order.begin(), p.order.end(), rng);  // torch.randperm(4)
  for (int i = 0; i < 4; ++i)
    if (r.enabled[i]) p.factors[i] = uniform(rng, r.ranges[i].first, r.ranges[i].second);
  return p;
}

Image apply_color_jitter(const Image& in, const ColorJitterRanges& r, const ColorJitterParams& p) {
  static Image (*const ops[4])(const Image&, double) = {adjust_brightness, adjust_contrast, adjust_saturation,
                                                        adjust_hue};
  Image out = in;
  for (int i : p.order)
    if (r.enabled[i]) out = ops[i](out, p.factors[i]);
  return out;
}

const char* augment_op_name(AugmentOp op) {
  static const char* names[] = {"identity", "autocontrast", "equalize",    "rotate",      "solarize",
                                "color",    "posterize",    "contrast",    "brightness",  "sharpness",
                                "shear_x",  "shear_y",      "translate_x", "translate_y", "solarize_add"};
  return names[static_cast<int>(op)];
}

Image apply_augment(const Image& in, const AugmentStep& s) {
  const double m = s.magnitude;
  switch (s.op) {
    case AugmentOp::kIdentity:
      return in;
    case AugmentOp::kAutoContrast:
      return autocontrast(in);
    case AugmentOp::kEqualize:
      return equalize(in);
    case AugmentOp::kRotate:
      return rotate(in, m);
    case AugmentOp::kSolarize:
      return solarize(in, m);
    case AugmentOp::kSolarizeAdd:
      return solarize_add(in, m);
    case AugmentOp::kPosterize:
      return posterize(in, static_cast<int>(m));
    case AugmentOp::kColor:
      return adjust_saturation(in, m);
    case AugmentOp::kContrast:
      return adjust_contrast(in, m);
    case AugmentOp::kBrightness:
      return adjust_brightness(in, m);
    case AugmentOp::kSharpness:
      return adjust_sharpness(in, m);
    // PIL Image.transform(AFFINE) coefficients, as AutoMM passes them.
    case AugmentOp::kShearX:
      return affine_nearest(in, {1, m, 0, 0, 1, 0});
    case AugmentOp::kShearY:
      return affine_nearest(in, {1, 0, 0, m, 1, 0});
    case AugmentOp::kTranslateX:
      return affine_nearest(in, {1, 0, m, 0, 1, 0});
    case AugmentOp::kTranslateY:
      return affine_nearest(in, {1, 0, 0, 0, 1, m});
  }
  throw std::logic_error("apply_augment: unhandled op");
}

AugmentStep sample_trivial_augment(int max_strength, std::mt19937_64& rng) {
  const auto op = static_cast<AugmentOp>(randint(rng, 0, kNumTrivialAugmentOps - 1));
  const double level = static_cast<double>(randint(rng, 0, max_strength)) / max_strength;
  // trivial_augmenter.py's scale_parameter: int() truncates level * max.
  auto scaled_int = [&](double max) { return static_cast<double>(static_cast<int>(level * max)); };
  switch (op) {
    case AugmentOp::kRotate:
      return {op, scaled_int(30) * random_sign(rng)};
    case AugmentOp::kSolarize:
      return {op, 256 - scaled_int(256)};
    case AugmentOp::kPosterize:
      return {op, 4 - scaled_int(4)};
    case AugmentOp::kColor:
    case AugmentOp::kContrast:
    case AugmentOp::kBrightness:
    case AugmentOp::kSharpness:
      return {op, level * (1.8 - 0.1) + 0.1};
    case AugmentOp::kShearX:
    case AugmentOp::kShearY:
      return {op, level * 0.3 * random_sign(rng)};
    case AugmentOp::kTranslateX:
    case AugmentOp::kTranslateY:
      return {op, scaled_int(10) * random_sign(rng)};
    default:
      return {op, 0};
  }
}

std::vector<AugmentStep> sample_randaug(int num_ops, int magnitude, std::mt19937_64& rng) {
  // randaug.py's augment_list(): op, min, max.
  static const std::array<std::tuple<AugmentOp, double, double>, 14> ops = {{
      {AugmentOp::kAutoContrast, 0, 1},
      {AugmentOp::kEqualize, 0, 1},
      {AugmentOp::kRotate, 0, 30},
      {AugmentOp::kPosterize, 0, 4},
      {AugmentOp::kSolarize, 0, 256},
      {AugmentOp::kSolarizeAdd, 0, 110},
      {AugmentOp::kColor, 0.1, 1.9},
      {AugmentOp::kContrast, 0.1, 1.9},
      {AugmentOp::kBrightness, 0.1, 1.9},
      {AugmentOp::kSharpness, 0.1, 1.9},
      {AugmentOp::kShearX, 0, 0.3},
      {AugmentOp::kShearY, 0, 0.3},
      {AugmentOp::kTranslateX, 0, 100},
      {AugmentOp::kTranslateY, 0, 100},
  }};
  std::vector<AugmentStep> steps;
  for (int i = 0; i < num_ops; ++i) {  // random.choices: with replacement
    const auto& [op, lo, hi] = ops[static_cast<size_t>(randint(rng, 0, ops.size() - 1))];
    double v = (static_cast<double>(magnitude) / 30) * (hi - lo) + lo;
    if (op == AugmentOp::kPosterize) v = std::max(1, static_cast<int>(v));
    if (op == AugmentOp::kRotate || op == AugmentOp::kShearX || op == AugmentOp::kShearY ||
        op == AugmentOp::kTranslateX || op == AugmentOp::kTranslateY)
      v *= random_sign(rng);
    steps.push_back({op, v});
  }
  return steps;
}

std::unique_ptr<ImageTransform> make_image_transform(const std::string& spec, int64_t image_size,
                                                     const std::string& interpolation) {
  const std::string s = trim(spec);
  const size_t open = s.find('(');
  const std::string name = trim(s.substr(0, open));
  const auto it = registry().find(name);
  if (it == registry().end()) {
    std::string known;
    for (const auto& n : image_transform_names()) known += (known.empty() ? "" : ", ") + n;
    throw std::invalid_argument("unknown image transform '" + name + "' in '" + spec + "'; known: " + known);
  }
  if (open != std::string::npos && s.back() != ')')
    throw std::invalid_argument("image transform '" + spec + "': missing ')' at the end");
  const std::string body = open == std::string::npos ? "" : s.substr(open + 1, s.size() - open - 2);
  const Args args(s, body, it->second.params);
  return std::make_unique<FnTransform>(it->second.make(args, image_size, parse_interpolation(interpolation)));
}

std::vector<std::string> image_transform_names() {
  std::vector<std::string> names;
  for (const auto& entry : registry()) names.push_back(entry.first);
  return names;
}

ImagePipeline::ImagePipeline(const std::vector<std::string>& specs, int64_t image_size,
                             const std::string& interpolation) {
  for (const auto& spec : specs) transforms_.push_back(make_image_transform(spec, image_size, interpolation));
}

ImageSample::ImageSample(Image image_in, torch::Tensor boxes_in, Image mask_in)
    : image(std::move(image_in)), boxes(std::move(boxes_in)), mask(std::move(mask_in)) {
  if (boxes.defined()) {
    if (boxes.dim() != 2 || boxes.size(1) != 4)
      throw std::invalid_argument("image boxes must be [n, 4] (x1, y1, x2, y2), got " + std::to_string(boxes.dim()) +
                                  " dimensions");
    boxes = boxes.to(torch::kFloat32);
    box_ids = torch::arange(boxes.size(0), torch::kInt64);
  }
  if (!mask.empty() && (mask.width != image.width || mask.height != image.height))
    throw std::invalid_argument("a mask of " + std::to_string(mask.width) + "x" + std::to_string(mask.height) +
                                " does not match its image of " + std::to_string(image.width) + "x" +
                                std::to_string(image.height));
}

Image ImageTransform::apply(const Image& in, std::mt19937_64& rng) const {
  ImageSample sample(in);
  apply(sample, rng);
  return std::move(sample.image);
}

Image ImagePipeline::apply(const Image& in, std::mt19937_64& rng) const {
  return apply(ImageSample(in), rng).image;
}

ImageSample ImagePipeline::apply(ImageSample sample, std::mt19937_64& rng) const {
  for (const auto& t : transforms_) t->apply(sample, rng);
  return sample;
}

std::pair<std::array<double, 3>, std::array<double, 3>> image_norm_stats(const std::string& name) {
  if (name == "imagenet") return {{0.485, 0.456, 0.406}, {0.229, 0.224, 0.225}};  // timm IMAGENET_DEFAULT_*
  if (name == "clip") return {{0.48145466, 0.4578275, 0.40821073}, {0.26862954, 0.26130258, 0.27577711}};
  if (name == "inception") return {{0.5, 0.5, 0.5}, {0.5, 0.5, 0.5}};
  throw std::invalid_argument("unknown image normalization '" + name + "'; known: imagenet, clip, inception");
}

torch::Tensor to_normalized_tensor(const Image& image, const std::array<double, 3>& mean,
                                   const std::array<double, 3>& std) {
  // Per channel a table of the 256 results of torchvision's float32 steps:
  // ToTensor's v / 255, then Normalize's (x - mean) / std.
  float table[3][256];
  for (int c = 0; c < 3; ++c)
    for (int v = 0; v < 256; ++v)
      table[c][v] =
          (static_cast<float>(v) / 255.0f - static_cast<float>(mean[c])) / static_cast<float>(std[c]);
  torch::Tensor out = torch::empty({3, image.height, image.width}, torch::kFloat32);
  float* dst = out.data_ptr<float>();
  const int64_t plane = image.height * image.width;
  const uint8_t* src = image.pixels.data();
  for (int64_t i = 0; i < plane; ++i, src += 3)
    for (int c = 0; c < 3; ++c) dst[c * plane + i] = table[c][src[c]];
  return out;
}

}  // namespace automm
