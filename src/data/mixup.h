// Mixup / CutMix (AutoMM's data/mixup.py on timm's Mixup): images of a training
// batch blended with, or cut into by, their partner row's images; the targets
// become the matching mixture of smoothed one-hot vectors.
//
// Row i's partner is row n-1-i (the batch flipped), as timm. mode "batch" draws
// one lambda for the batch, "pair" one per pair (i, n-1-i), "elem" one per row.
// CutMix pastes a box of the partner's image and corrects lambda to the box's
// actual share (timm's correct_lam). Text and tabular inputs cannot be blended:
// a row keeps its own when lambda > 0.5 and takes its partner's otherwise, the
// rule AutoMM's mixup_others computes (and then drops, so in AutoMM those
// inputs never change).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "automm/config.h"
#include "data/batch.h"

namespace automm {

// The Targets entry that carries the mixed class targets [rows, classes] of a
// mixed training batch; classification losses use it instead of "label".
constexpr const char* kSoftLabelTarget = "soft_label";

struct MixupOptions {
  double mixup_alpha = 0.8;
  double cutmix_alpha = 1.0;
  std::optional<std::array<double, 2>> cutmix_minmax;
  double prob = 1.0;
  double switch_prob = 0.5;
  std::string mode = "batch";
  double label_smoothing = 0.1;
  int64_t turn_off_epoch = 5;
};
// data.mixup.*; nullopt when data.mixup.turn_on is false or nothing mixes
// (both alphas 0 and no cutmix_minmax).
std::optional<MixupOptions> mixup_options(const Config& config);

// What was drawn for one batch: per row its lambda (the share of its own
// image), its partner, and the CutMix box {y0, y1, x0, x1} (y1 == y0 = none).
struct MixupDraw {
  std::vector<double> lambda;
  std::vector<int64_t> partner;
  std::vector<std::array<int64_t, 4>> box;
};
MixupDraw draw_mixup(const MixupOptions& options, int64_t rows, int64_t height, int64_t width, std::mt19937_64& rng);

// Mixes every image model's images with the same draw, and swaps text and
// tabular inputs as the header says.
void apply_mixup(Batch& batch, const MixupDraw& draw);

// lambda * onehot(label) + (1 - lambda) * onehot(partner's label), each
// smoothed: off = smoothing / classes, on = 1 - smoothing + off. [rows, classes].
torch::Tensor mixup_targets(const torch::Tensor& labels, int64_t num_classes, const MixupDraw& draw, double smoothing);

}  // namespace automm
