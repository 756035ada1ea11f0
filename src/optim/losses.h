// The losses of optim.loss_func (AutoMM's optim/losses/), for the tasks to pick from.
#pragma once

#include <torch/torch.h>

#include "automm/config.h"

namespace automm {

// Cross-entropy (optim.label_smoothing) or focal loss (optim.focal_loss.*) of
// logits [n, classes] against class indices [n].
torch::Tensor classification_loss(const torch::Tensor& logits, const torch::Tensor& labels, const Config& config);
// mean over rows of -sum_c target_c log softmax(logits)_c, for class mixtures [n, classes].
torch::Tensor soft_target_cross_entropy(const torch::Tensor& logits, const torch::Tensor& targets);

// Relational knowledge distillation (Park et al., CVPR 2019; AutoMM's
// optim/losses/rkd_loss.py) between student and teacher features [n, d]:
// distance_weight * smooth_l1(pairwise distances / their mean over distinct
// pairs) + angle_weight * smooth_l1(cosines of the angles at every row between
// the directions to every pair of rows). The teacher's side takes no gradient.
torch::Tensor rkd_loss(const torch::Tensor& student, const torch::Tensor& teacher, double distance_weight,
                       double angle_weight);
// MSE, or BCE on a sigmoid for loss_func = bce (labels in [0, 1]), of outputs
// [n] or [n, 1] against values [n].
torch::Tensor regression_loss(const torch::Tensor& outputs, const torch::Tensor& values, const Config& config);
// Regression outputs as values [n]: a sigmoid under loss_func = bce.
torch::Tensor regression_outputs(const torch::Tensor& outputs, const Config& config);

}  // namespace automm
