#include <stdexcept>

#include "optim/losses.h"

namespace automm {
namespace F = torch::nn::functional;
namespace {

// Focal loss (Lin et al.): -alpha_y (1 - p_y)^gamma log p_y, averaged.
torch::Tensor focal_loss(const torch::Tensor& logits, const torch::Tensor& labels, const Config& config) {
  const double gamma = config.get_double("optim.focal_loss.gamma");
  auto log_p = torch::log_softmax(logits, 1).gather(1, labels.unsqueeze(1)).squeeze(1);
  auto loss = -torch::pow(1.0 - log_p.exp(), gamma) * log_p;
  if (!config.is_null("optim.focal_loss.alpha")) {
    std::vector<double> alpha = config.get("optim.focal_loss.alpha").get<std::vector<double>>();
    if (static_cast<int64_t>(alpha.size()) != logits.size(1))
      throw std::invalid_argument("optim.focal_loss.alpha has " + std::to_string(alpha.size()) +
                                  " weights but the problem has " + std::to_string(logits.size(1)) + " classes");
    auto weights = torch::tensor(alpha, logits.options());
    loss = loss * weights.index_select(0, labels);
  }
  return loss.mean();
}

}  // namespace

torch::Tensor classification_loss(const torch::Tensor& logits, const torch::Tensor& labels, const Config& config) {
  const std::string loss_func = config.get_string("optim.loss_func");
  if (loss_func == "bce") throw std::invalid_argument("optim.loss_func = bce is for regression labels in [0, 1]");
  if (loss_func == "structure_loss" || loss_func == "mask2former_loss")
    throw std::invalid_argument("optim.loss_func = " + loss_func + " is for problem_type semantic_segmentation");
  if (loss_func == "focal_loss") return focal_loss(logits, labels, config);
  return F::cross_entropy(logits, labels,
                          F::CrossEntropyFuncOptions().label_smoothing(config.get_double("optim.label_smoothing")));
}

torch::Tensor soft_target_cross_entropy(const torch::Tensor& logits, const torch::Tensor& targets) {
  return (-targets.to(logits.dtype()) * torch::log_softmax(logits, 1)).sum(1).mean();
}

namespace {

// Euclidean distances [n, n], zero on the diagonal (AutoMM's RKDLoss.pdist).
torch::Tensor pairwise_distances(const torch::Tensor& x) {
  const torch::Tensor square = x.pow(2).sum(1);
  torch::Tensor d = (square.unsqueeze(1) + square.unsqueeze(0) - 2 * torch::mm(x, x.t())).clamp_min(1e-12).sqrt();
  return d * (1 - torch::eye(x.size(0), x.options()));
}

torch::Tensor normalized_distances(const torch::Tensor& x) {
  const torch::Tensor d = pairwise_distances(x);
  return d / d.masked_select(d > 0).mean();
}

torch::Tensor angles(const torch::Tensor& x) {
  const torch::Tensor directions = F::normalize(x.unsqueeze(0) - x.unsqueeze(1), F::NormalizeFuncOptions().dim(2));
  return torch::bmm(directions, directions.transpose(1, 2)).view(-1);
}

}  // namespace

torch::Tensor rkd_loss(const torch::Tensor& student, const torch::Tensor& teacher, double distance_weight,
                       double angle_weight) {
  torch::Tensor loss = torch::zeros({}, student.options());
  if (distance_weight > 0) {
    torch::Tensor target;
    {
      torch::NoGradGuard no_grad;
      target = normalized_distances(teacher);
    }
    loss = loss + distance_weight * F::smooth_l1_loss(normalized_distances(student), target);
  }
  if (angle_weight > 0) {
    torch::Tensor target;
    {
      torch::NoGradGuard no_grad;
      target = angles(teacher);
    }
    loss = loss + angle_weight * F::smooth_l1_loss(angles(student), target);
  }
  return loss;
}

torch::Tensor regression_loss(const torch::Tensor& outputs, const torch::Tensor& values, const Config& config) {
  const std::string loss_func = config.get_string("optim.loss_func");
  if (loss_func == "focal_loss") throw std::invalid_argument("optim.loss_func = focal_loss is for classification");
  if (loss_func == "structure_loss" || loss_func == "mask2former_loss")
    throw std::invalid_argument("optim.loss_func = " + loss_func + " is for problem_type semantic_segmentation");
  auto predicted = outputs.reshape({-1});
  if (loss_func == "bce") return F::binary_cross_entropy_with_logits(predicted, values.to(predicted.dtype()));
  return F::mse_loss(predicted, values.to(predicted.dtype()));
}

torch::Tensor regression_outputs(const torch::Tensor& outputs, const Config& config) {
  auto values = outputs.reshape({-1});
  return config.get_string("optim.loss_func") == "bce" ? torch::sigmoid(values) : values;
}

}  // namespace automm
