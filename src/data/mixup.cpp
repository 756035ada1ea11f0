#include "data/mixup.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace automm {
namespace {

double beta(double alpha, std::mt19937_64& rng) {
  std::gamma_distribution<double> gamma(alpha, 1.0);
  const double a = gamma(rng), b = gamma(rng);
  return a + b > 0 ? a / (a + b) : 0.5;
}

double uniform(std::mt19937_64& rng) { return std::uniform_real_distribution<double>(0.0, 1.0)(rng); }

// numpy's randint(low, high): [low, high); low when the range is empty.
int64_t randint(int64_t low, int64_t high, std::mt19937_64& rng) {
  if (high <= low) return low;
  return std::uniform_int_distribution<int64_t>(low, high - 1)(rng);
}

// timm's _params_per_batch / _params_per_elem for one draw: (lambda, cutmix).
std::pair<double, bool> draw_lambda(const MixupOptions& o, std::mt19937_64& rng) {
  if (uniform(rng) >= o.prob) return {1.0, false};
  const double cutmix_alpha = o.cutmix_minmax ? 1.0 : o.cutmix_alpha;
  if (o.mixup_alpha > 0 && cutmix_alpha > 0) {
    const bool cutmix = uniform(rng) < o.switch_prob;
    return {beta(cutmix ? cutmix_alpha : o.mixup_alpha, rng), cutmix};
  }
  if (o.mixup_alpha > 0) return {beta(o.mixup_alpha, rng), false};
  return {beta(cutmix_alpha, rng), true};
}

// timm's rand_bbox / rand_bbox_minmax, then correct_lam: lambda = 1 - box share.
std::array<int64_t, 4> cutmix_box(const MixupOptions& o, double* lambda, int64_t h, int64_t w,
                                  std::mt19937_64& rng) {
  int64_t y0, y1, x0, x1;
  if (o.cutmix_minmax) {
    const auto [lo, hi] = *o.cutmix_minmax;
    const int64_t cut_h = randint(static_cast<int64_t>(h * lo), static_cast<int64_t>(h * hi), rng);
    const int64_t cut_w = randint(static_cast<int64_t>(w * lo), static_cast<int64_t>(w * hi), rng);
    y0 = randint(0, h - cut_h, rng);
    x0 = randint(0, w - cut_w, rng);
    y1 = y0 + cut_h;
    x1 = x0 + cut_w;
  } else {
    const double ratio = std::sqrt(1.0 - *lambda);
    const int64_t cut_h = static_cast<int64_t>(h * ratio), cut_w = static_cast<int64_t>(w * ratio);
    const int64_t cy = randint(0, h, rng), cx = randint(0, w, rng);
    y0 = std::clamp<int64_t>(cy - cut_h / 2, 0, h);
    y1 = std::clamp<int64_t>(cy + cut_h / 2, 0, h);
    x0 = std::clamp<int64_t>(cx - cut_w / 2, 0, w);
    x1 = std::clamp<int64_t>(cx + cut_w / 2, 0, w);
  }
  *lambda = 1.0 - static_cast<double>((y1 - y0) * (x1 - x0)) / static_cast<double>(h * w);
  return {y0, y1, x0, x1};
}

// Rows i take row partner[i]'s values where `take` is set (index_select, then where).
torch::Tensor take_rows(const torch::Tensor& x, const torch::Tensor& partner, const torch::Tensor& take) {
  if (!x.defined()) return x;
  auto shape = std::vector<int64_t>(x.dim(), 1);
  shape[0] = x.size(0);
  return torch::where(take.view(shape), x.index_select(0, partner), x);
}

}  // namespace

std::optional<MixupOptions> mixup_options(const Config& config) {
  if (!config.get_bool("data.mixup.turn_on")) return std::nullopt;
  MixupOptions o;
  o.mixup_alpha = config.get_double("data.mixup.mixup_alpha");
  o.cutmix_alpha = config.get_double("data.mixup.cutmix_alpha");
  const Json& minmax = config.get("data.mixup.cutmix_minmax");
  if (!minmax.is_null()) {
    const auto values = minmax.get<std::vector<double>>();
    if (values.size() != 2 || !(0 < values[0] && values[0] < values[1] && values[1] <= 1))
      throw std::invalid_argument("data.mixup.cutmix_minmax must be [min, max] with 0 < min < max <= 1, got " +
                                  minmax.dump());
    o.cutmix_minmax = std::array<double, 2>{values[0], values[1]};
  }
  o.prob = config.get_double("data.mixup.prob");
  o.switch_prob = config.get_double("data.mixup.switch_prob");
  o.mode = config.get_string("data.mixup.mode");
  o.label_smoothing = config.get_double("data.mixup.label_smoothing");
  o.turn_off_epoch = config.get_int("data.mixup.turn_off_epoch");
  if (o.mixup_alpha <= 0 && o.cutmix_alpha <= 0 && !o.cutmix_minmax)
    throw std::invalid_argument(
        "data.mixup.turn_on is true but data.mixup.mixup_alpha and cutmix_alpha are both 0: nothing would mix");
  return o;
}

MixupDraw draw_mixup(const MixupOptions& options, int64_t rows, int64_t height, int64_t width, std::mt19937_64& rng) {
  MixupDraw draw;
  draw.lambda.assign(rows, 1.0);
  draw.box.assign(rows, {0, 0, 0, 0});
  for (int64_t i = 0; i < rows; ++i) draw.partner.push_back(rows - 1 - i);
  auto one = [&](int64_t i) {
    auto [lambda, cutmix] = draw_lambda(options, rng);
    if (lambda != 1.0 && cutmix) draw.box[i] = cutmix_box(options, &lambda, height, width, rng);
    draw.lambda[i] = lambda;
  };
  if (options.mode == "batch") {
    one(0);
    for (int64_t i = 1; i < rows; ++i) {
      draw.lambda[i] = draw.lambda[0];
      draw.box[i] = draw.box[0];
    }
  } else if (options.mode == "pair") {
    for (int64_t i = 0; i < rows / 2; ++i) {  // an odd batch's middle row has no pair and stays as it is
      one(i);
      draw.lambda[rows - 1 - i] = draw.lambda[i];
      draw.box[rows - 1 - i] = draw.box[i];
    }
  } else {
    for (int64_t i = 0; i < rows; ++i) one(i);
  }
  return draw;
}

void apply_mixup(Batch& batch, const MixupDraw& draw) {
  torch::NoGradGuard no_grad;
  const int64_t rows = static_cast<int64_t>(draw.lambda.size());
  const torch::Tensor partner = torch::tensor(draw.partner, torch::kInt64);
  for (auto& [name, images] : batch.images) {
    const torch::Tensor original = images.images.clone();  // [rows, slots, 3, H, W]
    for (int64_t i = 0; i < rows; ++i) {
      const double lambda = draw.lambda[i];
      if (lambda == 1.0) continue;
      const auto& [y0, y1, x0, x1] = draw.box[i];
      const torch::Tensor other = original[draw.partner[i]];
      if (y1 > y0 && x1 > x0) {  // CutMix (an empty box left lambda at 1)
        using torch::indexing::Slice;
        images.images[i].index_put_({"...", Slice(y0, y1), Slice(x0, x1)},
                                    other.index({"...", Slice(y0, y1), Slice(x0, x1)}));
      } else {
        images.images[i].copy_(original[i] * lambda + other * (1.0 - lambda));
      }
    }
  }
  std::vector<uint8_t> take(rows);
  for (int64_t i = 0; i < rows; ++i) take[i] = draw.lambda[i] <= 0.5;  // Python's round(0.5) == 0
  const torch::Tensor take_mask = torch::tensor(std::vector<int64_t>(take.begin(), take.end())).to(torch::kBool);
  batch.numerical = take_rows(batch.numerical, partner, take_mask);
  batch.categorical = take_rows(batch.categorical, partner, take_mask);
  for (auto& [name, text] : batch.text) {
    text.input_ids = take_rows(text.input_ids, partner, take_mask);
    text.token_type_ids = take_rows(text.token_type_ids, partner, take_mask);
    text.attention_mask = take_rows(text.attention_mask, partner, take_mask);
  }
}

torch::Tensor mixup_targets(const torch::Tensor& labels, int64_t num_classes, const MixupDraw& draw, double smoothing) {
  const double off = smoothing / static_cast<double>(num_classes), on = 1.0 - smoothing + off;
  const torch::Tensor index = labels.to(torch::kInt64).view({-1, 1});
  const torch::Tensor own = torch::full({index.size(0), num_classes}, off).scatter_(1, index, on);
  const torch::Tensor other = own.index_select(0, torch::tensor(draw.partner, torch::kInt64));
  const torch::Tensor lambda = torch::tensor(draw.lambda, torch::kFloat64).to(torch::kFloat32).view({-1, 1});
  return own * lambda + other * (1.0 - lambda);
}

}  // namespace automm
