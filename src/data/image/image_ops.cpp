// Pillow 9.4's algorithms (libImaging Resample.c, Geometry.c, Filter.c,
// Convert.c, Blend.c; ImageOps.py, ImageEnhance.py) redone over uint8 RGB.
// The float/double mix and the fixed-point steps follow the C code on purpose:
// they decide which way a pixel rounds.
#include "data/image/image_ops.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <vector>

// Loops that vectorize get an AVX2 clone picked at load time where the CPU has
// it (SSE2 has no 32-bit multiply); no FMA in it, so float sums round as in PIL.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define AUTOMM_AVX2_CLONE __attribute__((target_clones("avx2", "default")))
#else
#define AUTOMM_AVX2_CLONE
#endif

namespace automm {
namespace {

using Lut = std::array<uint8_t, 256>;

Image apply_lut(const Image& in, const std::array<Lut, 3>& lut) {
  Image out(in.width, in.height);
  for (size_t i = 0; i < in.pixels.size(); i += 3)
    for (int c = 0; c < 3; ++c) out.pixels[i + c] = lut[c][in.pixels[i + c]];
  return out;
}

Image apply_lut(const Image& in, const Lut& lut) { return apply_lut(in, {lut, lut, lut}); }

std::array<std::array<int64_t, 256>, 3> histograms(const Image& in) {
  std::array<std::array<int64_t, 256>, 3> h{};
  for (size_t i = 0; i < in.pixels.size(); i += 3)
    for (int c = 0; c < 3; ++c) ++h[c][in.pixels[i + c]];
  return h;
}

// ImagingBlend: float arithmetic, truncation, clipping when extrapolating.
Image blend(const Image& degenerate, const Image& in, double factor) {
  const float alpha = static_cast<float>(factor);
  Image out(in.width, in.height);
  for (size_t i = 0; i < in.pixels.size(); ++i) {
    const int a = degenerate.pixels[i];
    const float t = static_cast<float>(a) + alpha * static_cast<float>(in.pixels[i] - a);
    out.pixels[i] = t <= 0.0f ? 0 : t >= 255.0f ? 255 : static_cast<uint8_t>(t);
  }
  return out;
}

// ---- Resample.c ----
constexpr int kPrecisionBits = 32 - 8 - 2;

double bilinear_filter(double x) {
  x = std::fabs(x);
  return x < 1.0 ? 1.0 - x : 0.0;
}

double bicubic_filter(double x) {
  constexpr double a = -0.5;
  x = std::fabs(x);
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}

// Per output index: first input index, tap count, and ksize fixed-point taps.
struct ResampleCoeffs {
  int ksize = 0;
  std::vector<int> first, count;
  std::vector<int32_t> taps;
};

ResampleCoeffs precompute_coeffs(int in_size, int out_size, Interpolation interpolation) {
  const bool cubic = interpolation == Interpolation::kBicubic;
  const double scale = static_cast<double>(in_size) / out_size;
  const double filterscale = std::max(scale, 1.0);
  const double support = (cubic ? 2.0 : 1.0) * filterscale;
  ResampleCoeffs rc;
  rc.ksize = static_cast<int>(std::ceil(support)) * 2 + 1;
  rc.first.resize(out_size);
  rc.count.resize(out_size);
  rc.taps.assign(static_cast<size_t>(out_size) * rc.ksize, 0);
  std::vector<double> k(rc.ksize);
  for (int xx = 0; xx < out_size; ++xx) {
    const double center = (xx + 0.5) * scale;
    const double ss = 1.0 / filterscale;
    const int xmin = std::max(static_cast<int>(center - support + 0.5), 0);
    const int xmax = std::min(static_cast<int>(center + support + 0.5), in_size) - xmin;
    double ww = 0.0;
    for (int x = 0; x < xmax; ++x) {
      const double arg = (x + xmin - center + 0.5) * ss;
      k[x] = cubic ? bicubic_filter(arg) : bilinear_filter(arg);
      ww += k[x];
    }
    for (int x = 0; x < xmax; ++x) {
      const double w = (ww != 0.0 ? k[x] / ww : k[x]) * (1 << kPrecisionBits);
      rc.taps[static_cast<size_t>(xx) * rc.ksize + x] = static_cast<int32_t>(w < 0 ? -0.5 + w : 0.5 + w);
    }
    rc.first[xx] = xmin;
    rc.count[xx] = xmax;
  }
  return rc;
}

inline uint8_t clip8_fixed(int32_t v) {
  return static_cast<uint8_t>(std::clamp(v >> kPrecisionBits, 0, 255));
}

// Rows become columns: lets the horizontal pass run as a vectorized vertical
// one. Strips of 16 source rows keep the lines being written in L1.
Image transpose(const Image& in, int64_t row0, int64_t rows) {
  Image out(rows, in.width);
  for (int64_t y0 = 0; y0 < rows; y0 += 16) {
    const int64_t y1 = std::min(rows, y0 + 16);
    for (int64_t x = 0; x < in.width; ++x) {
      uint8_t* dst = out.row(x);
      for (int64_t y = y0; y < y1; ++y) {
        const uint8_t* src = in.row(row0 + y) + x * 3;
        dst[y * 3] = src[0], dst[y * 3 + 1] = src[1], dst[y * 3 + 2] = src[2];
      }
    }
  }
  return out;
}

// Vertical pass, a whole row at a time so the compiler can vectorize; the
// integer sums are the same as PIL's per-pixel ones.
AUTOMM_AVX2_CLONE void resample_vertical(const Image& in, Image& out, const ResampleCoeffs& rc) {
  const int64_t n = in.width * 3;
  std::vector<int32_t> acc(static_cast<size_t>(n));
  for (int64_t y = 0; y < out.height; ++y) {
    std::fill(acc.begin(), acc.end(), 1 << (kPrecisionBits - 1));
    for (int t = 0; t < rc.count[y]; ++t) {
      const int32_t k = rc.taps[static_cast<size_t>(y) * rc.ksize + t];
      const uint8_t* src = in.row(rc.first[y] + t);
      for (int64_t i = 0; i < n; ++i) acc[i] += src[i] * k;
    }
    uint8_t* dst = out.row(y);
    for (int64_t i = 0; i < n; ++i) dst[i] = clip8_fixed(acc[i]);
  }
}

// ---- Geometry.c ----
inline int coord(double v) { return v < 0.0 ? -1 : static_cast<int>(v); }
inline int fix16(double v) {
  const double s = v * 65536.0 + 0.5;
  return s < 0.0 ? static_cast<int>(std::floor(s)) : static_cast<int>(s);
}
bool fits_fixed(const AffineMatrix& a, double x, double y) {
  return std::fabs(x * a[0] + y * a[1] + a[2]) < 32768.0 && std::fabs(x * a[3] + y * a[4] + a[5]) < 32768.0;
}

// Python's round(x, 15): correctly rounded decimal, as glibc's printf is.
double round15(double x) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.15f", x);
  return std::strtod(buf, nullptr);
}

constexpr double kDegToRad = M_PI / 180.0;  // Python's math.radians

// ---- Filter.c: ImageFilter.SMOOTH, kernel [1 1 1; 1 5 1; 1 1 1] / 13 in
// float; border rows and columns are copied.
AUTOMM_AVX2_CLONE Image smooth(const Image& in) {
  Image out = in;
  const float k1 = 1.0f / 13.0f, k5 = 5.0f / 13.0f;
  for (int64_t y = 1; y + 1 < in.height; ++y) {
    const uint8_t *up = in.row(y - 1), *mid = in.row(y), *down = in.row(y + 1);
    uint8_t* dst = out.row(y);
    for (int64_t i = 3; i < (in.width - 1) * 3; ++i) {
      float s = 0.0f;
      s += float(down[i - 3]) * k1 + float(down[i]) * k1 + float(down[i + 3]) * k1;
      s += float(mid[i - 3]) * k1 + float(mid[i]) * k5 + float(mid[i + 3]) * k1;
      s += float(up[i - 3]) * k1 + float(up[i]) * k1 + float(up[i + 3]) * k1;
      dst[i] = s <= 0.0f ? 0 : s >= 255.0f ? 255 : static_cast<uint8_t>(s + 0.5f);
    }
  }
  return out;
}

// ---- Convert.c: PIL's 8-bit HSV.
void rgb_to_hsv(const uint8_t* in, uint8_t* out) {
  const uint8_t r = in[0], g = in[1], b = in[2];
  const uint8_t maxc = std::max({r, g, b}), minc = std::min({r, g, b});
  out[2] = maxc;
  if (minc == maxc) {
    out[0] = out[1] = 0;
    return;
  }
  const float cr = static_cast<float>(maxc - minc);
  const float s = cr / static_cast<float>(maxc);
  const float rc = static_cast<float>(maxc - r) / cr, gc = static_cast<float>(maxc - g) / cr,
              bc = static_cast<float>(maxc - b) / cr;
  float h;
  if (r == maxc)
    h = bc - gc;
  else if (g == maxc)
    h = static_cast<float>(2.0 + rc - bc);
  else
    h = static_cast<float>(4.0 + gc - rc);
  h = static_cast<float>(std::fmod(h / 6.0 + 1.0, 1.0));
  out[0] = static_cast<uint8_t>(std::clamp(static_cast<int>(h * 255.0), 0, 255));
  out[1] = static_cast<uint8_t>(std::clamp(static_cast<int>(s * 255.0), 0, 255));
}

void hsv_to_rgb(const uint8_t* in, uint8_t* out) {
  const uint8_t h = in[0], s = in[1], v = in[2];
  if (s == 0) {
    out[0] = out[1] = out[2] = v;
    return;
  }
  const int i = static_cast<int>(std::floor(static_cast<float>(h) * 6.0 / 255.0));
  const float f = static_cast<float>(static_cast<float>(h) * 6.0 / 255.0 - static_cast<float>(i));
  const float fs = static_cast<float>(static_cast<float>(s) / 255.0);
  auto level = [&](double x) {
    return static_cast<uint8_t>(std::clamp(static_cast<int>(std::round(v * x)), 0, 255));
  };
  const uint8_t p = level(1.0 - fs), q = level(1.0 - fs * f), t = level(1.0 - fs * (1.0 - f));
  const uint8_t table[6][3] = {{v, t, p}, {q, v, p}, {p, v, t}, {p, q, v}, {t, p, v}, {v, p, q}};
  std::copy(table[i % 6], table[i % 6] + 3, out);
}

}  // namespace

Interpolation parse_interpolation(const std::string& name) {
  std::string lower;
  for (char c : name) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (lower == "bilinear") return Interpolation::kBilinear;
  if (lower == "bicubic") return Interpolation::kBicubic;
  throw std::invalid_argument("unknown interpolation '" + name + "': expected bilinear or bicubic");
}

Image resize(const Image& in, int64_t width, int64_t height, Interpolation interpolation) {
  if (width < 1 || height < 1 || in.empty())
    throw std::invalid_argument("resize: cannot resize " + std::to_string(in.width) + "x" +
                                std::to_string(in.height) + " to " + std::to_string(width) + "x" +
                                std::to_string(height));
  const ResampleCoeffs cols = precompute_coeffs(in.width, width, interpolation);
  ResampleCoeffs rows = precompute_coeffs(in.height, height, interpolation);
  const Image* src = &in;
  Image temp;
  if (width != in.width) {
    // Only the input rows that the vertical pass reads are resampled.
    const int first = rows.first.front(), last = rows.first.back() + rows.count.back();
    for (int& f : rows.first) f -= first;
    // PIL's horizontal pass, as a vertical pass over the transposed rows.
    const Image columns = transpose(in, first, last - first);
    Image resampled(columns.width, width);
    resample_vertical(columns, resampled, cols);
    temp = transpose(resampled, 0, width);
    src = &temp;
  }
  if (height == in.height) return src == &in ? in : temp;
  Image out(src->width, height);
  resample_vertical(*src, out, rows);
  return out;
}

Image resize_shorter_side(const Image& in, int64_t size, Interpolation interpolation) {
  const bool wide = in.width > in.height;
  const int64_t shorter = wide ? in.height : in.width, longer = wide ? in.width : in.height;
  const auto other = static_cast<int64_t>(static_cast<double>(size * longer) / static_cast<double>(shorter));
  return wide ? resize(in, other, size, interpolation) : resize(in, size, other, interpolation);
}

Image crop(const Image& in, int64_t top, int64_t left, int64_t height, int64_t width) {
  Image out(width, height);
  const int64_t x0 = std::max<int64_t>(0, -left), x1 = std::min(width, in.width - left);
  for (int64_t y = std::max<int64_t>(0, -top); y < std::min(height, in.height - top); ++y)
    if (x1 > x0)
      std::copy(in.row(y + top) + (x0 + left) * 3, in.row(y + top) + (x1 + left) * 3, out.row(y) + x0 * 3);
  return out;
}

std::pair<int64_t, int64_t> center_crop_origin(int64_t in_height, int64_t in_width, int64_t height, int64_t width) {
  // Larger than the image: torchvision pads by (crop - size) // 2 on the top/left.
  auto offset = [](int64_t size, int64_t crop_size) {
    return crop_size > size ? -((crop_size - size) / 2)
                            : static_cast<int64_t>(std::nearbyint((size - crop_size) / 2.0));
  };
  return {offset(in_height, height), offset(in_width, width)};
}

Image center_crop(const Image& in, int64_t height, int64_t width) {
  const auto [top, left] = center_crop_origin(in.height, in.width, height, width);
  return crop(in, top, left, height, width);
}

Image resize_nearest(const Image& in, int64_t width, int64_t height) {
  Image out(width, height);
  for (int64_t y = 0; y < height; ++y) {
    const int64_t sy = std::min(in.height - 1, (2 * y + 1) * in.height / (2 * height));
    for (int64_t x = 0; x < width; ++x) {
      const int64_t sx = std::min(in.width - 1, (2 * x + 1) * in.width / (2 * width));
      std::copy_n(in.row(sy) + sx * 3, 3, out.row(y) + x * 3);
    }
  }
  return out;
}

Image hflip(const Image& in) {
  Image out(in.width, in.height);
  for (int64_t y = 0; y < in.height; ++y)
    for (int64_t x = 0; x < in.width; ++x)
      std::copy_n(in.row(y) + (in.width - 1 - x) * 3, 3, out.row(y) + x * 3);
  return out;
}

Image vflip(const Image& in) {
  Image out(in.width, in.height);
  for (int64_t y = 0; y < in.height; ++y) std::copy_n(in.row(in.height - 1 - y), in.width * 3, out.row(y));
  return out;
}

Image affine_nearest(const Image& in, const AffineMatrix& a) {
  Image out(in.width, in.height);
  const int w = static_cast<int>(in.width), h = static_cast<int>(in.height);
  auto put = [&](int x, int y, int xin, int yin) {
    if (xin >= 0 && xin < w && yin >= 0 && yin < h) std::copy_n(in.row(yin) + xin * 3, 3, out.row(y) + x * 3);
  };
  if (a[1] == 0 && a[3] == 0) {  // ImagingScaleAffine: separate double walks
    std::vector<int> xin(w);
    double xo = a[2] + a[0] * 0.5, yo = a[5] + a[4] * 0.5;
    for (int x = 0; x < w; ++x, xo += a[0]) xin[x] = coord(xo);
    for (int y = 0; y < h; ++y, yo += a[4])
      for (int x = 0; x < w; ++x) put(x, y, xin[x], coord(yo));
  } else if (fits_fixed(a, 0, 0) && fits_fixed(a, w, h) && fits_fixed(a, 0, h) && fits_fixed(a, w, 0)) {
    // affine_fixed: 16.16 fixed point; >> 16 floors negative positions.
    const int a0 = fix16(a[0]), a1 = fix16(a[1]), a3 = fix16(a[3]), a4 = fix16(a[4]);
    int xo = fix16(a[2] + a[0] * 0.5 + a[1] * 0.5), yo = fix16(a[5] + a[3] * 0.5 + a[4] * 0.5);
    for (int y = 0; y < h; ++y, xo += a1, yo += a4) {
      int xx = xo, yy = yo;
      for (int x = 0; x < w; ++x, xx += a0, yy += a3) put(x, y, xx >> 16, yy >> 16);
    }
  } else {
    double xo = a[2] + a[1] * 0.5 + a[0] * 0.5, yo = a[5] + a[4] * 0.5 + a[3] * 0.5;
    for (int y = 0; y < h; ++y, xo += a[1], yo += a[4]) {
      double xx = xo, yy = yo;
      for (int x = 0; x < w; ++x, xx += a[0], yy += a[3]) put(x, y, coord(xx), coord(yy));
    }
  }
  return out;
}

Image rotate(const Image& in, double degrees) {
  double angle = std::fmod(degrees, 360.0);  // Python's %: result takes the divisor's sign
  if (angle < 0) angle += 360.0;
  // PIL's exact fast paths.
  if (angle == 0) return in;
  if (angle == 180) return hflip(vflip(in));
  if ((angle == 90 || angle == 270) && in.width == in.height) {
    Image out(in.width, in.height);
    const int64_t n = in.width;
    for (int64_t y = 0; y < n; ++y)
      for (int64_t x = 0; x < n; ++x)
        std::copy_n(angle == 90 ? in.row(x) + (n - 1 - y) * 3 : in.row(n - 1 - x) + y * 3, 3,
                    out.row(y) + x * 3);
    return out;
  }
  const double r = -(angle * kDegToRad), cx = in.width / 2.0, cy = in.height / 2.0;
  AffineMatrix m = {round15(std::cos(r)),  round15(std::sin(r)), 0.0,
                    round15(-std::sin(r)), round15(std::cos(r)), 0.0};
  m[2] = m[0] * -cx + m[1] * -cy + m[2] + cx;
  m[5] = m[3] * -cx + m[4] * -cy + m[5] + cy;
  return affine_nearest(in, m);
}

Image affine(const Image& in, double angle, double translate_x, double translate_y, double scale,
             double shear_x, double shear_y) {
  if (scale <= 0) throw std::invalid_argument("affine: scale must be positive, got " + std::to_string(scale));
  // torchvision _get_inverse_affine_matrix, term for term.
  const double rot = angle * kDegToRad, sx = shear_x * kDegToRad, sy = shear_y * kDegToRad;
  const double cx = in.width * 0.5, cy = in.height * 0.5;
  const double a = std::cos(rot - sy) / std::cos(sy);
  const double b = -std::cos(rot - sy) * std::tan(sx) / std::cos(sy) - std::sin(rot);
  const double c = std::sin(rot - sy) / std::cos(sy);
  const double d = -std::sin(rot - sy) * std::tan(sx) / std::cos(sy) + std::cos(rot);
  AffineMatrix m = {d / scale, -b / scale, 0.0, -c / scale, a / scale, 0.0};
  m[2] = 0.0 + (m[0] * (-cx - translate_x) + m[1] * (-cy - translate_y)) + cx;
  m[5] = 0.0 + (m[3] * (-cx - translate_x) + m[4] * (-cy - translate_y)) + cy;
  return affine_nearest(in, m);
}

Image autocontrast(const Image& in) {
  const auto hist = histograms(in);
  std::array<Lut, 3> lut;
  for (int c = 0; c < 3; ++c) {
    int lo = 0, hi = 255;
    while (lo < 255 && !hist[c][lo]) ++lo;
    while (hi > 0 && !hist[c][hi]) --hi;
    for (int i = 0; i < 256; ++i) lut[c][i] = static_cast<uint8_t>(i);
    if (hi <= lo) continue;
    const double scale = 255.0 / (hi - lo), offset = -lo * scale;
    for (int i = 0; i < 256; ++i)
      lut[c][i] = static_cast<uint8_t>(std::clamp(static_cast<int>(i * scale + offset), 0, 255));
  }
  return apply_lut(in, lut);
}

Image equalize(const Image& in) {
  const auto hist = histograms(in);
  std::array<Lut, 3> lut;
  for (int c = 0; c < 3; ++c) {
    int64_t total = 0, last = 0, used = 0;
    for (int64_t n : hist[c])
      if (n) total += n, last = n, ++used;
    const int64_t step = used <= 1 ? 0 : (total - last) / 255;
    for (int i = 0; i < 256; ++i) lut[c][i] = static_cast<uint8_t>(i);
    if (!step) continue;
    int64_t n = step / 2;
    for (int i = 0; i < 256; ++i) {
      lut[c][i] = static_cast<uint8_t>(std::min<int64_t>(n / step, 255));
      n += hist[c][i];
    }
  }
  return apply_lut(in, lut);
}

Image invert(const Image& in) {
  Lut lut;
  for (int i = 0; i < 256; ++i) lut[i] = static_cast<uint8_t>(255 - i);
  return apply_lut(in, lut);
}

Image solarize(const Image& in, double threshold) {
  Lut lut;
  for (int i = 0; i < 256; ++i) lut[i] = static_cast<uint8_t>(i < threshold ? i : 255 - i);
  return apply_lut(in, lut);
}

Image solarize_add(const Image& in, double addition, double threshold) {
  Lut lut;
  for (int i = 0; i < 256; ++i) {
    const auto v = static_cast<int>(std::clamp(i + addition, 0.0, 255.0));
    lut[i] = static_cast<uint8_t>(v < threshold ? v : 255 - v);
  }
  return apply_lut(in, lut);
}

Image posterize(const Image& in, int bits) {
  if (bits < 0 || bits > 8)
    throw std::invalid_argument("posterize: bits must be in 0..8, got " + std::to_string(bits));
  Lut lut;
  const int mask = ~((1 << (8 - bits)) - 1);
  for (int i = 0; i < 256; ++i) lut[i] = static_cast<uint8_t>(i & mask);
  return apply_lut(in, lut);
}

Image adjust_brightness(const Image& in, double factor) {
  return blend(Image(in.width, in.height), in, factor);
}

Image adjust_contrast(const Image& in, double factor) {
  int64_t sum = 0;
  for (size_t i = 0; i < in.pixels.size(); i += 3) sum += pil_luma(&in.pixels[i]);
  const double mean = in.empty() ? 0.0 : static_cast<double>(sum) / static_cast<double>(in.width * in.height);
  Image gray(in.width, in.height);
  std::fill(gray.pixels.begin(), gray.pixels.end(), static_cast<uint8_t>(mean + 0.5));
  return blend(gray, in, factor);
}

Image adjust_saturation(const Image& in, double factor) {
  Image gray(in.width, in.height);
  for (size_t i = 0; i < in.pixels.size(); i += 3) std::fill_n(&gray.pixels[i], 3, pil_luma(&in.pixels[i]));
  return blend(gray, in, factor);
}

Image adjust_sharpness(const Image& in, double factor) { return blend(smooth(in), in, factor); }

Image adjust_hue(const Image& in, double hue_factor) {
  if (!(hue_factor >= -0.5 && hue_factor <= 0.5))
    throw std::invalid_argument("adjust_hue: hue_factor must be in [-0.5, 0.5], got " +
                                std::to_string(hue_factor));
  // np.uint8(hue_factor * 255): truncation, negative values wrap modulo 256.
  const auto shift = static_cast<uint8_t>(static_cast<int>(hue_factor * 255) & 255);
  Image out(in.width, in.height);
  uint8_t hsv[3];
  for (size_t i = 0; i < in.pixels.size(); i += 3) {
    rgb_to_hsv(&in.pixels[i], hsv);
    hsv[0] = static_cast<uint8_t>(hsv[0] + shift);
    hsv_to_rgb(hsv, &out.pixels[i]);
  }
  return out;
}

}  // namespace automm
