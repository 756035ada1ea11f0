// Semantic segmentation's metrics and losses, as AutoMM computes them
// (optim/metrics/semantic_seg_metrics.py, optim/losses/structure_loss.py, and
// Hugging Face's Mask2FormerLoss that AutoMM uses for multi-class masks).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <torch/torch.h>

namespace automm {

// ---- Metrics. Binary metrics take prob [N, H, W] (or [N, 1, H, W]; foreground
// probabilities in [0, 1]) and gt of the same shape ({0, 1}); each is computed
// per image and averaged over the N images, as AutoMM's metric wrappers do.
// Everything is computed in float64 (AutoMM runs sm / em / fm / mae in numpy on
// its float32 tensors and iou / ber in torchmetrics' float32, so its values
// differ from these by float32 rounding).
//
// sm, em, fm and mae first prepare each image as AutoMM's _prepare_data does:
// pred = (prob * 255) / 255, min-max normalised to [0, 1] unless constant;
// gt = gt * 255 > 128.

// torchmetrics' binary JaccardIndex of prob > 0.5 against gt (an image whose
// union is empty scores 0, torchmetrics' zero_division default).
double binary_iou(const torch::Tensor& prob, const torch::Tensor& gt);
// Balanced error rate: 1 - macro recall of prob*255 > 125 against gt*255 > 125
// (torchmetrics' multiclass Accuracy, 2 classes, macro, samplewise: a class with
// no pixel in either map is left out of the mean).
double balanced_error_rate(const torch::Tensor& prob, const torch::Tensor& gt);
// S-measure (alpha 0.5): object- and region-aware structural similarity. An
// image whose score is NaN (a single foreground or background pixel, an empty
// or one-pixel quadrant) scores 0, as AutoMM's max(0, sm) makes it.
double s_measure(const torch::Tensor& prob, const torch::Tensor& gt);
// E-measure as AutoMM's "em" reports it: the mean E-measure over the 256
// thresholds 0..255 of uint8(pred * 255) >= t (Emeasure's "curve" averaged over
// the images, then over the thresholds), not the adaptive-threshold E-measure.
double e_measure(const torch::Tensor& prob, const torch::Tensor& gt);
// F-measure as AutoMM's "fm" reports it: the weighted F-measure (Margolin et
// al., WeightedFmeasure, beta^2 = 0.3) with scipy's exact Euclidean distance
// transform and a 7x7 Gaussian (sigma 5), not the adaptive-threshold
// F-measure. An image without foreground scores 0.
double f_measure(const torch::Tensor& prob, const torch::Tensor& gt);
// Mean absolute error between the prepared prediction and gt.
double mean_absolute_error(const torch::Tensor& prob, const torch::Tensor& gt);

// AutoMM's Multiclass_IoU over a dataset, updated one image at a time as its
// evaluate does: pred [N, H, W] int64 class indices in [0, num_classes) (the
// argmax of semantic_scores), target [N, H, W] int64. Per-class intersection and
// union are accumulated over every image, IoU = inter / (union + 2.22e-16),
// averaged over all num_classes classes (an absent class counts 0). As in
// AutoMM, a target outside [0, num_classes) (the ignore label 255) is no class's
// label, yet the prediction there still counts in its class's union (AutoMM's
// `target + 1 > 0` mask only drops negative targets, which count nowhere).
double multiclass_iou(const torch::Tensor& pred, const torch::Tensor& target, int64_t num_classes);

// Every segmentation metric by name, sorted: ber, em, fm, iou, mae, sm.
std::vector<std::string> segmentation_metric_names();
bool is_segmentation_metric(const std::string& name);
// Throws std::invalid_argument naming the known metrics for an unknown name.
bool segmentation_greater_is_better(const std::string& name);

// ---- Losses

// AutoMM's structure_loss of mask logits [N, 1, H, W] against gt [N, 1, H, W]
// ({0, 1}; [N, H, W] is read as one channel): weight = 1 + 5 |avg_pool31(gt) -
// gt|; the BCE term is the plain mean BCE-with-logits over the batch (AutoMM
// passes reduce="none", which PyTorch reads as a mean); the weighted IoU term
// per image; the loss is their mean.
torch::Tensor structure_loss(const torch::Tensor& logits, const torch::Tensor& gt);

// Hugging Face's Mask2FormerLoss (modeling_mask2former.py) as AutoMM builds it,
// Mask2FormerLoss(Mask2FormerConfig(num_labels=K), weight_dict): Hungarian
// matching of the T mask queries to each image's target masks on the cost
// cost_mask * sigmoid-CE + cost_class * (-p(class)) + cost_dice * dice at
// num_points random points; then cross-entropy on the classes (unmatched
// queries target "no object", weighted no_object_weight), and sigmoid-CE and
// dice on importance-sampled points of the matched masks, both divided by
// max(1, number of target masks in the batch).
//
// The loss is the UNWEIGHTED sum loss_cross_entropy + loss_mask + loss_dice:
// Mask2FormerLoss stores its weight_dict but never applies it (only
// Mask2FormerForUniversalSegmentation.get_loss_dict does), and AutoMM sums the
// returned dict as is, so AutoMM's optim.mask2former_loss.*_weight keys (10, 5,
// 5) change nothing. No distributed averaging of the mask count: HF averages it
// through accelerate's PartialState only, which AutoMM's Lightning fit never sets up.
struct Mask2FormerLossOptions {
  // Matching costs: the matcher's cost_class is fixed to 1, cost_mask and
  // cost_dice are Mask2FormerConfig's mask_weight and dice_weight defaults.
  double cost_class = 1.0;
  double cost_mask = 5.0;
  double cost_dice = 5.0;
  double no_object_weight = 0.1;          // Mask2FormerConfig.no_object_weight
  int64_t num_points = 12544;             // train_num_points
  double oversample_ratio = 3.0;          // candidates: int(num_points * oversample_ratio)
  double importance_sample_ratio = 0.75;  // int(ratio * num_points) most uncertain candidates
};

// The random points (x, y in [0, 1]^2, grid_sample's order) that Mask2FormerLoss
// draws, in the order it draws them.
struct Mask2FormerPoints {
  torch::Tensor matcher;      // [N, num_points, 2]: image i's matching points
  torch::Tensor oversampled;  // [M, int(num_points * oversample_ratio), 2]: candidates per matched mask
  torch::Tensor random;       // [M, num_points - int(importance_sample_ratio * num_points), 2]
};
// Draws them from LibTorch's default generator exactly as HF does (one
// torch.rand(1, P, 2) per image, then the candidates, then the random points),
// so the same seed gives HF's points. M = sum_i min(T, G_i) matched masks.
Mask2FormerPoints draw_mask2former_points(int64_t batch_size, int64_t matched_masks,
                                          const Mask2FormerLossOptions& options = {});

struct Mask2FormerLossTerms {
  torch::Tensor cross_entropy, mask, dice;  // scalars, each unweighted
  // AutoMM's sum, in the order of HF's dict (float32 sums depend on it).
  torch::Tensor total() const { return mask + dice + cross_entropy; }
};

// masks: [N, T, H, W] mask logits; classes: [N, T, K + 1] class logits (the
// last one "no object"); mask_labels[i]: [G_i, H, W] {0, 1}, one binary mask
// per class present in image i (G_i may be 0); class_labels[i]: [G_i] int64
// those classes in [0, K). Random points come from LibTorch's default generator.
torch::Tensor mask2former_loss(const torch::Tensor& masks, const torch::Tensor& classes,
                               const std::vector<torch::Tensor>& mask_labels,
                               const std::vector<torch::Tensor>& class_labels,
                               const Mask2FormerLossOptions& options = {});
// The same with the given points (tests, reproducible runs).
Mask2FormerLossTerms mask2former_loss_terms(const torch::Tensor& masks, const torch::Tensor& classes,
                                            const std::vector<torch::Tensor>& mask_labels,
                                            const std::vector<torch::Tensor>& class_labels,
                                            const Mask2FormerPoints& points,
                                            const Mask2FormerLossOptions& options = {});

// Hungarian assignment minimising cost [rows, cols] (scipy's
// linear_sum_assignment: the same shortest augmenting path algorithm, so ties
// are broken as scipy breaks them): (row indices, col indices), min(rows, cols)
// pairs, rows ascending. Throws std::invalid_argument on NaN or -inf entries or
// when no finite assignment exists.
std::pair<std::vector<int64_t>, std::vector<int64_t>> linear_sum_assignment(const torch::Tensor& cost);

// AutoMM's semantic inference of multi-class outputs: softmax(classes)[..., :K]
// weighted sigmoid(masks), summed over queries: [N, K, H, W].
torch::Tensor semantic_scores(const torch::Tensor& masks, const torch::Tensor& classes);

}  // namespace automm
