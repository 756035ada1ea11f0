// Mixup / CutMix (src/data/mixup.h): mixed images, boxes, swapped text and
// tabular inputs and soft targets against a reference written here; what each
// mode and key draws; the soft-target loss.
#include <gtest/gtest.h>

#include <random>

#include "automm/config.h"
#include "data/mixup.h"
#include "optim/losses.h"
#include "test_util.h"

namespace automm {
namespace {

using testing::contains;
using testing::error_of;
using torch::indexing::Slice;

Batch make_batch(int64_t rows, uint64_t seed) {
  torch::manual_seed(seed);
  Batch batch;
  batch.images["timm_image"] = {torch::rand({rows, 2, 3, 12, 10}), torch::ones({rows, 2})};
  batch.numerical = torch::randn({rows, 3});
  batch.categorical = torch::randint(0, 5, {rows, 2}, torch::kInt64);
  batch.text["hf_text"] = {torch::randint(5, 50, {rows, 7}, torch::kInt64), torch::zeros({rows, 7}, torch::kInt64),
                           torch::ones({rows, 7}, torch::kInt64)};
  batch.targets.dense["label"] = torch::randint(0, 4, {rows}, torch::kInt64);
  return batch;
}

MixupOptions options_with(const std::string& mode, double mixup_alpha, double cutmix_alpha) {
  MixupOptions o;
  o.mode = mode;
  o.mixup_alpha = mixup_alpha;
  o.cutmix_alpha = cutmix_alpha;
  return o;
}

// The reference: row by row, what timm's Mixup and AutoMM's rule do for the draw.
void expect_mixed_as_reference(const Batch& before, const Batch& after, const MixupDraw& draw) {
  const int64_t rows = before.numerical.size(0);
  const torch::Tensor& x = before.images.at("timm_image").images;
  const torch::Tensor& y = after.images.at("timm_image").images;
  for (int64_t i = 0; i < rows; ++i) {
    const int64_t j = rows - 1 - i;
    ASSERT_EQ(draw.partner[i], j);
    const double lambda = draw.lambda[i];
    const auto [y0, y1, x0, x1] = draw.box[i];
    torch::Tensor expected = x[i].clone();
    if (lambda != 1.0) {
      if (y1 > y0 && x1 > x0) {
        expected.index_put_({"...", Slice(y0, y1), Slice(x0, x1)}, x[j].index({"...", Slice(y0, y1), Slice(x0, x1)}));
        // correct_lam: lambda is the share of the row's own pixels.
        EXPECT_DOUBLE_EQ(lambda, 1.0 - static_cast<double>((y1 - y0) * (x1 - x0)) / (12.0 * 10.0));
      } else {
        expected = x[i] * lambda + x[j] * (1.0 - lambda);
      }
    }
    EXPECT_TRUE(torch::equal(y[i], expected)) << "row " << i;
    const int64_t source = lambda <= 0.5 ? j : i;
    EXPECT_TRUE(torch::equal(after.numerical[i], before.numerical[source])) << "row " << i;
    EXPECT_TRUE(torch::equal(after.categorical[i], before.categorical[source]));
    EXPECT_TRUE(torch::equal(after.text.at("hf_text").input_ids[i], before.text.at("hf_text").input_ids[source]));
  }
  // Soft targets: lambda * smooth(onehot(y_i)) + (1 - lambda) * smooth(onehot(y_j)), smoothing 0.1, 4 classes.
  const torch::Tensor targets = mixup_targets(before.targets.at("label"), 4, draw, 0.1);
  for (int64_t i = 0; i < rows; ++i) {
    const int64_t own = before.targets.at("label")[i].item<int64_t>();
    const int64_t other = before.targets.at("label")[rows - 1 - i].item<int64_t>();
    for (int64_t c = 0; c < 4; ++c) {
      const double a = c == own ? 0.925 : 0.025, b = c == other ? 0.925 : 0.025;
      EXPECT_NEAR(targets[i][c].item<double>(), draw.lambda[i] * a + (1 - draw.lambda[i]) * b, 1e-6);
    }
    EXPECT_NEAR(targets[i].sum().item<double>(), 1.0, 1e-6);
  }
}

TEST(Mixup, EveryModeMatchesTheReference) {
  for (const std::string mode : {"batch", "pair", "elem"}) {
    for (const auto& [mixup_alpha, cutmix_alpha] : std::vector<std::pair<double, double>>{{0.8, 0}, {0, 1.0}, {0.8, 1.0}}) {
      for (uint64_t seed = 0; seed < 4; ++seed) {
        SCOPED_TRACE(mode + " mixup " + std::to_string(mixup_alpha) + " cutmix " + std::to_string(cutmix_alpha));
        const Batch before = make_batch(7, seed);
        Batch after = make_batch(7, seed);
        std::mt19937_64 rng(seed);
        const MixupDraw draw = draw_mixup(options_with(mode, mixup_alpha, cutmix_alpha), 7, 12, 10, rng);
        apply_mixup(after, draw);
        expect_mixed_as_reference(before, after, draw);
        if (mode == "batch")
          for (double l : draw.lambda) EXPECT_EQ(l, draw.lambda[0]);
        if (mode == "pair") {
          for (int64_t i = 0; i < 7; ++i) EXPECT_EQ(draw.lambda[i], draw.lambda[6 - i]);
          EXPECT_EQ(draw.lambda[3], 1.0) << "an odd batch's middle row has no pair";
        }
      }
    }
  }
}

TEST(Mixup, DrawsFollowTheKeys) {
  std::mt19937_64 rng(1);
  // Mixup only: Beta(0.8, 0.8) lambdas, mean 1/2, no boxes.
  double sum = 0;
  for (int i = 0; i < 4000; ++i) {
    const MixupDraw d = draw_mixup(options_with("batch", 0.8, 0.0), 2, 12, 10, rng);
    sum += d.lambda[0];
    EXPECT_EQ(d.box[0][1], d.box[0][0]);
  }
  EXPECT_NEAR(sum / 4000, 0.5, 0.02);
  // prob 0: nothing mixes.
  MixupOptions never = options_with("elem", 0.8, 1.0);
  never.prob = 0.0;
  for (double l : draw_mixup(never, 8, 12, 10, rng).lambda) EXPECT_EQ(l, 1.0);
  // switch_prob 1 with both on: always CutMix.
  MixupOptions cut = options_with("elem", 0.8, 1.0);
  cut.switch_prob = 1.0;
  int boxes = 0;
  for (int i = 0; i < 200; ++i) {
    const MixupDraw d = draw_mixup(cut, 1, 12, 10, rng);
    if (d.lambda[0] != 1.0) {
      ++boxes;
      EXPECT_GT(d.box[0][1], d.box[0][0]);
    }
  }
  EXPECT_GT(boxes, 150);
  // cutmix_minmax: box sides drawn in [min, max) of the image side.
  MixupOptions minmax = options_with("elem", 0.0, 0.0);
  minmax.cutmix_minmax = std::array<double, 2>{0.3, 0.6};
  for (int i = 0; i < 200; ++i) {
    const MixupDraw d = draw_mixup(minmax, 1, 20, 30, rng);
    const auto [y0, y1, x0, x1] = d.box[0];
    EXPECT_GE(y1 - y0, 6);
    EXPECT_LT(y1 - y0, 12);
    EXPECT_GE(x1 - x0, 9);
    EXPECT_LT(x1 - x0, 18);
    EXPECT_DOUBLE_EQ(d.lambda[0], 1.0 - (y1 - y0) * (x1 - x0) / 600.0);
  }
}

TEST(Mixup, KeysAndErrors) {
  Config config;
  EXPECT_FALSE(mixup_options(config).has_value());
  config.merge({{"data.mixup.turn_on", true},
                {"data.mixup.mode", "pair"},
                {"data.mixup.cutmix_minmax", Json::array({0.2, 0.7})},
                {"data.mixup.label_smoothing", 0.3}});
  const auto o = mixup_options(config);
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(o->mode, "pair");
  EXPECT_EQ(o->turn_off_epoch, 5);
  EXPECT_DOUBLE_EQ((*o->cutmix_minmax)[1], 0.7);
  EXPECT_DOUBLE_EQ(o->label_smoothing, 0.3);
  Config bad;
  bad.merge({{"data.mixup.turn_on", true}, {"data.mixup.cutmix_minmax", Json::array({0.7, 0.2})}});
  EXPECT_TRUE(contains(error_of([&] { mixup_options(bad); }), "cutmix_minmax"));
  Config none;
  none.merge({{"data.mixup.turn_on", true}, {"data.mixup.mixup_alpha", 0}, {"data.mixup.cutmix_alpha", 0}});
  EXPECT_TRUE(contains(error_of([&] { mixup_options(none); }), "nothing would mix"));
  EXPECT_TRUE(contains(error_of([&] { Config().merge({{"data.mixup.mode", "row"}}); }), "elem"));
}

TEST(Mixup, SoftTargetCrossEntropy) {
  torch::manual_seed(3);
  const torch::Tensor logits = torch::randn({5, 4});
  const torch::Tensor labels = torch::tensor({0, 3, 2, 2, 1}, torch::kInt64);
  const torch::Tensor onehot = torch::one_hot(labels, 4).to(torch::kFloat32);
  EXPECT_NEAR(soft_target_cross_entropy(logits, onehot).item<double>(),
              torch::nn::functional::cross_entropy(logits, labels).item<double>(), 1e-6);
  const torch::Tensor soft = torch::softmax(torch::randn({5, 4}), 1);
  double expected = 0;
  const torch::Tensor log_p = torch::log_softmax(logits, 1);
  for (int64_t i = 0; i < 5; ++i)
    for (int64_t c = 0; c < 4; ++c) expected -= soft[i][c].item<double>() * log_p[i][c].item<double>();
  EXPECT_NEAR(soft_target_cross_entropy(logits, soft).item<double>(), expected / 5, 1e-6);
}

}  // namespace
}  // namespace automm
