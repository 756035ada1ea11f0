// Semantic segmentation metrics as AutoMM computes them; see segmentation.h.
#include "optim/segmentation.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <numeric>
#include <stdexcept>

namespace automm {
namespace {

// numpy's np.spacing(1), the epsilon of AutoMM's SOD metrics.
constexpr double kEps = 2.220446049250313e-16;

std::string shape_of(const torch::Tensor& t) {
  std::string out = "[";
  for (int64_t d = 0; d < t.dim(); ++d) out += (d ? ", " : "") + std::to_string(t.size(d));
  return out + "]";
}

// numpy's float64 add.reduce, which AutoMM's means and sums go through: the
// values in C order, in chunks of numpy's 8192-element buffer, each summed
// pairwise (eight interleaved partial sums up to 128 values), the chunks added
// in order. S-measure's SSIM branches on exact zeros, so the order matters.
double pairwise_sum(const double* v, int64_t n) {
  if (n < 8) {
    double sum = 0;
    for (int64_t i = 0; i < n; ++i) sum += v[i];
    return sum;
  }
  if (n <= 128) {
    double r[8];
    std::copy(v, v + 8, r);
    int64_t i = 8;
    for (; i < n - n % 8; i += 8)
      for (int j = 0; j < 8; ++j) r[j] += v[i + j];
    double sum = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
    for (; i < n; ++i) sum += v[i];
    return sum;
  }
  int64_t half = n / 2;
  half -= half % 8;
  return pairwise_sum(v, half) + pairwise_sum(v + half, n - half);
}

double numpy_sum(const std::vector<double>& values) {
  constexpr int64_t kBuffer = 8192;
  const auto n = static_cast<int64_t>(values.size());
  double sum = 0;
  for (int64_t begin = 0; begin < n; begin += kBuffer)
    sum += pairwise_sum(values.data() + begin, std::min(kBuffer, n - begin));
  return sum;
}

// np.mean: NaN for no values, as numpy's.
double numpy_mean(const std::vector<double>& values) {
  return numpy_sum(values) / static_cast<double>(values.size());
}

// One image of a binary metric's batch: float64 values, row-major [h, w].
struct BinaryImage {
  int64_t h = 0, w = 0;
  const double* prob = nullptr;
  const double* gt = nullptr;
};

// prob and gt as contiguous float64 [N, H, W] CPU tensors ([N, 1, H, W] accepted).
std::pair<torch::Tensor, torch::Tensor> binary_inputs(const torch::Tensor& prob, const torch::Tensor& gt,
                                                      const char* metric) {
  auto flatten = [&](const torch::Tensor& t, const char* what) {
    if (t.dim() == 4 && t.size(1) == 1) return t.squeeze(1);
    if (t.dim() != 3)
      throw std::invalid_argument(std::string(metric) + ": " + what +
                                  " must be [N, H, W] or [N, 1, H, W], got " + shape_of(t));
    return t;
  };
  torch::Tensor p = flatten(prob, "prob"), g = flatten(gt, "gt");
  if (p.sizes() != g.sizes())
    throw std::invalid_argument(std::string(metric) + ": prob " + shape_of(prob) + " and gt " + shape_of(gt) +
                                " differ in shape");
  if (p.size(0) == 0 || p.size(1) == 0 || p.size(2) == 0)
    throw std::invalid_argument(std::string(metric) + ": needs at least one non-empty image, got " +
                                shape_of(prob));
  auto to_double = [](const torch::Tensor& t) {
    return t.detach().to(torch::kCPU, torch::kDouble).contiguous();
  };
  return {to_double(p), to_double(g)};
}

// Calls per_image(image) for each image and returns the mean, as AutoMM's
// wrappers average the per-image scores.
template <typename PerImage>
double mean_over_images(const torch::Tensor& prob, const torch::Tensor& gt, const char* metric,
                        PerImage per_image) {
  const auto [p, g] = binary_inputs(prob, gt, metric);
  const int64_t n = p.size(0), h = p.size(1), w = p.size(2);
  std::vector<double> scores;
  for (int64_t i = 0; i < n; ++i)
    scores.push_back(
        per_image(BinaryImage{h, w, p.data_ptr<double>() + i * h * w, g.data_ptr<double>() + i * h * w}));
  return numpy_mean(scores);
}

// AutoMM's _prepare_data on pred = prob * 255 and gt * 255: the prediction back
// in [0, 1] and min-max normalised unless constant, the mask binarised at 128.
struct PreparedImage {
  int64_t h = 0, w = 0;
  std::vector<double> pred;
  std::vector<uint8_t> gt;
  int64_t size() const { return h * w; }
};

PreparedImage prepare(const BinaryImage& image) {
  PreparedImage out;
  out.h = image.h;
  out.w = image.w;
  const int64_t size = image.h * image.w;
  out.pred.resize(size);
  out.gt.resize(size);
  for (int64_t i = 0; i < size; ++i) {
    out.pred[i] = image.prob[i] * 255 / 255;
    out.gt[i] = image.gt[i] * 255 > 128;
  }
  const auto [lo, hi] = std::minmax_element(out.pred.begin(), out.pred.end());
  const double min = *lo, max = *hi;
  if (max != min)
    for (double& v : out.pred) v = (v - min) / (max - min);
  return out;
}

int64_t count_foreground(const PreparedImage& image) {
  return std::count(image.gt.begin(), image.gt.end(), uint8_t{1});
}

// ---- S-measure (Fan et al. 2017), AutoMM's Smeasure with alpha 0.5.

// 2x / (x^2 + 1 + sigma_x + eps) of the values (sigma with ddof 1: NaN for a
// single value, as numpy's std).
double s_object(const std::vector<double>& values) {
  const double mean = numpy_mean(values);
  std::vector<double> squares;
  for (double v : values) squares.push_back((v - mean) * (v - mean));
  const double sigma = std::sqrt(numpy_sum(squares) / static_cast<double>(values.size() - 1));
  return 2 * mean / (mean * mean + 1 + sigma + kEps);
}

double object_score(const PreparedImage& image) {
  // pred * gt where gt holds, (1 - pred) * (1 - gt) where it does not.
  std::vector<double> foreground, background;
  for (int64_t i = 0; i < image.size(); ++i) {
    if (image.gt[i])
      foreground.push_back(image.pred[i]);
    else
      background.push_back(1 - image.pred[i]);
  }
  const double u = static_cast<double>(foreground.size()) / static_cast<double>(image.size());
  return u * s_object(foreground) + (1 - u) * s_object(background);
}

// SSIM of the block rows [r0, r1) x cols [c0, c1) (NaN when it has fewer than two pixels).
double block_ssim(const PreparedImage& image, int64_t r0, int64_t r1, int64_t c0, int64_t c1) {
  std::vector<double> pred, gt;
  for (int64_t r = r0; r < r1; ++r)
    for (int64_t c = c0; c < c1; ++c) {
      pred.push_back(image.pred[r * image.w + c]);
      gt.push_back(image.gt[r * image.w + c]);
    }
  const double n = static_cast<double>(pred.size());
  const double x = numpy_mean(pred), y = numpy_mean(gt);
  std::vector<double> xx(pred.size()), yy(pred.size()), xy(pred.size());
  for (size_t i = 0; i < pred.size(); ++i) {
    const double dx = pred[i] - x, dy = gt[i] - y;
    xx[i] = dx * dx, yy[i] = dy * dy, xy[i] = dx * dy;
  }
  const double sigma_x = numpy_sum(xx) / (n - 1), sigma_y = numpy_sum(yy) / (n - 1);
  const double sigma_xy = numpy_sum(xy) / (n - 1);
  const double alpha = 4 * x * y * sigma_xy;
  const double beta = (x * x + y * y) * (sigma_x + sigma_y);
  if (alpha != 0) return alpha / (beta + kEps);  // NaN != 0 too, as in numpy
  return beta == 0 ? 1.0 : 0.0;
}

double region_score(const PreparedImage& image) {
  const int64_t h = image.h, w = image.w;
  double row_sum = 0, col_sum = 0;
  int64_t n = 0;
  for (int64_t r = 0; r < h; ++r)
    for (int64_t c = 0; c < w; ++c)
      if (image.gt[r * w + c]) row_sum += static_cast<double>(r), col_sum += static_cast<double>(c), ++n;
  // The centroid rounded half to even (np.round), plus one as in the MATLAB original.
  const int64_t x = static_cast<int64_t>(std::nearbyint(col_sum / static_cast<double>(n))) + 1;
  const int64_t y = static_cast<int64_t>(std::nearbyint(row_sum / static_cast<double>(n))) + 1;
  const double area = static_cast<double>(h * w);
  const double w1 = static_cast<double>(x * y) / area;
  const double w2 = static_cast<double>(y * (w - x)) / area;
  const double w3 = static_cast<double>((h - y) * x) / area;
  const double w4 = 1 - w1 - w2 - w3;
  return w1 * block_ssim(image, 0, y, 0, x) + w2 * block_ssim(image, 0, y, x, w) +
         w3 * block_ssim(image, y, h, 0, x) + w4 * block_ssim(image, y, h, x, w);
}

double s_measure_image(const BinaryImage& raw) {
  const PreparedImage image = prepare(raw);
  const double size = static_cast<double>(image.size());
  const double y = static_cast<double>(count_foreground(image)) / size;
  const double mean_pred = numpy_mean(image.pred);
  if (y == 0) return 1 - mean_pred;
  if (y == 1) return mean_pred;
  const double sm = 0.5 * object_score(image) + 0.5 * region_score(image);
  return sm > 0 ? sm : 0.0;  // Python's max(0, sm): NaN and negatives give 0
}

// ---- E-measure (Fan et al. 2018): AutoMM's Emeasure curve over 256 thresholds.

std::array<double, 256> e_measure_curve(const BinaryImage& raw) {
  const PreparedImage image = prepare(raw);
  const int64_t size = image.size();
  std::array<int64_t, 256> fg_hist{}, bg_hist{};
  for (int64_t i = 0; i < size; ++i) {
    const auto level = static_cast<uint8_t>(image.pred[i] * 255);  // numpy's astype(uint8) truncates
    (image.gt[i] ? fg_hist : bg_hist)[level]++;
  }
  const int64_t gt_fg = count_foreground(image);
  const double denominator = static_cast<double>(size - 1) + kEps;
  std::array<double, 256> curve{};
  int64_t fg_fg = 0, fg_bg = 0;    // predicted foreground on gt foreground / background
  for (int k = 0; k < 256; ++k) {  // threshold 255 - k: pred >= threshold is foreground
    fg_fg += fg_hist[255 - k];
    fg_bg += bg_hist[255 - k];
    const int64_t pred_fg = fg_fg + fg_bg, pred_bg = size - pred_fg;
    double enhanced_sum;
    if (gt_fg == 0) {
      enhanced_sum = static_cast<double>(pred_bg);
    } else if (gt_fg == size) {
      enhanced_sum = static_cast<double>(pred_fg);
    } else {
      const int64_t bg_fg = gt_fg - fg_fg, bg_bg = pred_bg - bg_fg;
      const double mean_pred = static_cast<double>(pred_fg) / static_cast<double>(size);
      const double mean_gt = static_cast<double>(gt_fg) / static_cast<double>(size);
      const double pred_values[2] = {1 - mean_pred, 0 - mean_pred};  // demeaned foreground, background
      const double gt_values[2] = {1 - mean_gt, 0 - mean_gt};
      const int64_t parts[4] = {fg_fg, fg_bg, bg_fg, bg_bg};
      enhanced_sum = 0;
      for (int part = 0; part < 4; ++part) {
        const double a = pred_values[part / 2], b = gt_values[part % 2];
        const double align = 2 * (a * b) / (a * a + b * b + kEps);
        const double enhanced = (align + 1) * (align + 1) / 4;
        enhanced_sum += enhanced * static_cast<double>(parts[part]);
      }
    }
    curve[k] = enhanced_sum / denominator;
  }
  return curve;
}

// ---- Weighted F-measure (Margolin et al. 2014), AutoMM's WeightedFmeasure.

// A pixel's nearest foreground pixel (row, col); row -1 while none is known.
using Feature = std::array<int64_t, 2>;

// One pass of Maurer's exact Euclidean feature transform along a line: f[i] is
// the nearest feature found so far for the line's i-th pixel, `axis` the axis
// the line runs along and `fixed` the line's coordinate on the other axis.
// Follows scipy.ndimage's _VoronoiFT step by step, so that equidistant
// features resolve to the same one as in scipy (the error map is read there).
std::vector<Feature> voronoi_line(const std::vector<Feature>& f, int axis, int64_t fixed) {
  const int other = 1 - axis;
  auto off_line2 = [&](const Feature& p) {
    const double t = static_cast<double>(p[other] - fixed);
    return t * t;
  };
  std::vector<int64_t> stack;  // features whose Voronoi cells cross the line, in order
  for (int64_t i = 0; i < static_cast<int64_t>(f.size()); ++i) {
    if (f[i][0] < 0) continue;
    const double w2 = off_line2(f[i]);
    while (stack.size() >= 2) {
      const Feature& last = f[stack[stack.size() - 1]];
      const Feature& before = f[stack[stack.size() - 2]];
      const double a = static_cast<double>(last[axis] - before[axis]);
      const double b = static_cast<double>(f[i][axis] - last[axis]);
      const double c = a + b;
      if (c * off_line2(last) - b * off_line2(before) - a * w2 - a * b * c <= 0.0) break;
      stack.pop_back();
    }
    stack.push_back(i);
  }
  if (stack.empty()) return f;
  auto distance2 = [&](const Feature& p, int64_t i) {
    const double along = static_cast<double>(p[axis] - i);
    return along * along + off_line2(p);
  };
  std::vector<Feature> out(f.size());
  size_t k = 0;
  for (int64_t i = 0; i < static_cast<int64_t>(f.size()); ++i) {
    double best = distance2(f[stack[k]], i);
    while (k + 1 < stack.size()) {
      const double next = distance2(f[stack[k + 1]], i);
      if (best <= next) break;
      best = next;
      ++k;
    }
    out[i] = f[stack[k]];
  }
  return out;
}

// The nearest foreground pixel of every pixel ([h * w], row-major): scipy's
// distance_transform_edt(gt == 0, return_indices=True) indices.
std::vector<Feature> nearest_foreground(const std::vector<uint8_t>& gt, int64_t h, int64_t w) {
  std::vector<Feature> features(h * w, Feature{-1, 0});
  std::vector<Feature> line(h);
  for (int64_t c = 0; c < w; ++c) {  // along the columns (axis 0) first
    for (int64_t r = 0; r < h; ++r) line[r] = gt[r * w + c] ? Feature{r, c} : Feature{-1, 0};
    line = voronoi_line(line, 0, c);
    for (int64_t r = 0; r < h; ++r) features[r * w + c] = line[r];
  }
  line.resize(w);
  for (int64_t r = 0; r < h; ++r) {  // then along the rows
    for (int64_t c = 0; c < w; ++c) line[c] = features[r * w + c];
    line = voronoi_line(line, 1, r);
    for (int64_t c = 0; c < w; ++c) features[r * w + c] = line[c];
  }
  return features;
}

// MATLAB's fspecial('gaussian', [7 7], 5), as AutoMM's matlab_style_gauss2D.
std::array<double, 49> gaussian_7x7() {
  std::array<double, 49> k{};
  for (int y = -3; y <= 3; ++y)
    for (int x = -3; x <= 3; ++x)
      k[(y + 3) * 7 + x + 3] = std::exp(-static_cast<double>(x * x + y * y) / 50.0);
  const double max = *std::max_element(k.begin(), k.end());
  for (double& v : k)
    if (v < std::numeric_limits<double>::epsilon() * max) v = 0;
  const double sum = numpy_sum(std::vector<double>(k.begin(), k.end()));
  if (sum != 0)
    for (double& v : k) v /= sum;
  return k;
}

double weighted_f_measure_image(const BinaryImage& raw) {
  constexpr double kBeta = 0.3;
  const PreparedImage image = prepare(raw);
  const int64_t h = image.h, w = image.w, size = image.size();
  const int64_t foreground = count_foreground(image);
  if (foreground == 0) return 0;
  const std::vector<Feature> nearest = nearest_foreground(image.gt, h, w);
  std::vector<double> error(size), spread(size);
  for (int64_t i = 0; i < size; ++i) error[i] = std::abs(image.pred[i] - image.gt[i]);
  for (int64_t i = 0; i < size; ++i)  // background reads the error at its nearest foreground pixel
    spread[i] = image.gt[i] ? error[i] : error[nearest[i][0] * w + nearest[i][1]];
  static const std::array<double, 49> kernel = gaussian_7x7();
  std::vector<double> tp_errors, fp_weighted;  // the weighted errors on gt foreground / background
  for (int64_t r = 0; r < h; ++r)
    for (int64_t c = 0; c < w; ++c) {
      const int64_t i = r * w + c;
      double blurred = 0;  // scipy.ndimage.convolve, zero outside the image
      for (int dy = -3; dy <= 3; ++dy)
        for (int dx = -3; dx <= 3; ++dx) {
          const int64_t rr = r + dy, cc = c + dx;
          if (rr >= 0 && rr < h && cc >= 0 && cc < w)
            blurred += kernel[(dy + 3) * 7 + dx + 3] * spread[rr * w + cc];
        }
      const double min_error = image.gt[i] && blurred < error[i] ? blurred : error[i];
      if (image.gt[i]) {
        tp_errors.push_back(min_error);
      } else {
        const double dr = static_cast<double>(nearest[i][0] - r), dc = static_cast<double>(nearest[i][1] - c);
        const double distance = std::sqrt(dr * dr + dc * dc);
        fp_weighted.push_back(min_error * (2 - std::exp(std::log(0.5) / 5 * distance)));
      }
    }
  const double tp_weighted = static_cast<double>(foreground) - numpy_sum(tp_errors);
  const double fp = numpy_sum(fp_weighted);
  const double recall = 1 - numpy_mean(tp_errors);
  const double precision = tp_weighted / (tp_weighted + fp + kEps);
  return (1 + kBeta) * recall * precision / (recall + kBeta * precision + kEps);
}

// ---- Binary confusion counts.

struct Confusion {
  int64_t tp = 0, fp = 0, fn = 0, tn = 0;
};

template <typename PredIsPositive, typename GtIsPositive>
Confusion confusion(const BinaryImage& image, PredIsPositive pred_positive, GtIsPositive gt_positive) {
  Confusion out;
  for (int64_t i = 0; i < image.h * image.w; ++i) {
    const bool p = pred_positive(image.prob[i]), g = gt_positive(image.gt[i]);
    if (p && g)
      ++out.tp;
    else if (p)
      ++out.fp;
    else if (g)
      ++out.fn;
    else
      ++out.tn;
  }
  return out;
}

double safe_divide(double num, double den) { return den != 0 ? num / den : 0.0; }

}  // namespace

double binary_iou(const torch::Tensor& prob, const torch::Tensor& gt) {
  return mean_over_images(prob, gt, "binary_iou", [](const BinaryImage& image) {
    const Confusion c = confusion(
        image, [](double p) { return p > 0.5; }, [](double g) { return g > 0.5; });
    return safe_divide(static_cast<double>(c.tp), static_cast<double>(c.tp + c.fp + c.fn));
  });
}

double balanced_error_rate(const torch::Tensor& prob, const torch::Tensor& gt) {
  return mean_over_images(prob, gt, "balanced_error_rate", [](const BinaryImage& image) {
    auto positive = [](double v) { return v * 255 > 125; };
    const Confusion c = confusion(image, positive, positive);
    // Per class (foreground, background): recall, and whether the class appears at all.
    const double recall[2] = {safe_divide(static_cast<double>(c.tp), static_cast<double>(c.tp + c.fn)),
                              safe_divide(static_cast<double>(c.tn), static_cast<double>(c.tn + c.fp))};
    const double present[2] = {c.tp + c.fp + c.fn > 0 ? 1.0 : 0.0, c.tn + c.fn + c.fp > 0 ? 1.0 : 0.0};
    const double accuracy =
        safe_divide(recall[0] * present[0] + recall[1] * present[1], present[0] + present[1]);
    return 1 - accuracy;
  });
}

double s_measure(const torch::Tensor& prob, const torch::Tensor& gt) {
  return mean_over_images(prob, gt, "s_measure", s_measure_image);
}

double e_measure(const torch::Tensor& prob, const torch::Tensor& gt) {
  const auto [p, g] = binary_inputs(prob, gt, "e_measure");
  const int64_t n = p.size(0), h = p.size(1), w = p.size(2);
  std::vector<double> mean_curve(256, 0.0);  // over the images, then over the thresholds
  for (int64_t i = 0; i < n; ++i) {
    const auto curve = e_measure_curve(
        BinaryImage{h, w, p.data_ptr<double>() + i * h * w, g.data_ptr<double>() + i * h * w});
    for (int k = 0; k < 256; ++k) mean_curve[k] += curve[k];
  }
  for (double& v : mean_curve) v /= static_cast<double>(n);
  return numpy_mean(mean_curve);
}

double f_measure(const torch::Tensor& prob, const torch::Tensor& gt) {
  return mean_over_images(prob, gt, "f_measure", weighted_f_measure_image);
}

double mean_absolute_error(const torch::Tensor& prob, const torch::Tensor& gt) {
  return mean_over_images(prob, gt, "mean_absolute_error", [](const BinaryImage& raw) {
    const PreparedImage image = prepare(raw);
    std::vector<double> errors(image.size());
    for (int64_t i = 0; i < image.size(); ++i) errors[i] = std::abs(image.pred[i] - image.gt[i]);
    return numpy_mean(errors);
  });
}

double multiclass_iou(const torch::Tensor& pred, const torch::Tensor& target, int64_t num_classes) {
  if (num_classes < 1) throw std::invalid_argument("multiclass_iou: num_classes must be >= 1");
  if (pred.sizes() != target.sizes() || pred.dim() != 3)
    throw std::invalid_argument("multiclass_iou: pred and target must both be [N, H, W], got " +
                                shape_of(pred) + " and " + shape_of(target));
  const torch::Tensor p = pred.detach().to(torch::kCPU, torch::kLong).contiguous();
  const torch::Tensor t = target.detach().to(torch::kCPU, torch::kLong).contiguous();
  const int64_t* pv = p.data_ptr<int64_t>();
  const int64_t* tv = t.data_ptr<int64_t>();
  std::vector<double> inter(num_classes, 0), pred_area(num_classes, 0), label_area(num_classes, 0);
  for (int64_t i = 0; i < p.numel(); ++i) {
    if (pv[i] < 0 || pv[i] >= num_classes)
      throw std::invalid_argument("multiclass_iou: predicted class " + std::to_string(pv[i]) +
                                  " is outside [0, " + std::to_string(num_classes) + ")");
    if (tv[i] < 0) continue;  // AutoMM zeroes the prediction where target + 1 <= 0
    pred_area[pv[i]] += 1;
    if (tv[i] < num_classes) {
      label_area[tv[i]] += 1;
      if (tv[i] == pv[i]) inter[pv[i]] += 1;
    }
  }
  double sum = 0;
  for (int64_t c = 0; c < num_classes; ++c)
    sum += inter[c] / (2.220446049250313e-16 + (pred_area[c] + label_area[c] - inter[c]));
  return sum / static_cast<double>(num_classes);
}

std::vector<std::string> segmentation_metric_names() { return {"ber", "em", "fm", "iou", "mae", "sm"}; }

bool is_segmentation_metric(const std::string& name) {
  const auto names = segmentation_metric_names();
  return std::find(names.begin(), names.end(), name) != names.end();
}

bool segmentation_greater_is_better(const std::string& name) {
  if (!is_segmentation_metric(name)) {
    std::string known;
    for (const auto& n : segmentation_metric_names()) known += (known.empty() ? "" : ", ") + n;
    throw std::invalid_argument("unknown segmentation metric '" + name + "' (known: " + known + ")");
  }
  return name != "ber" && name != "mae";
}

}  // namespace automm
